# tests/img: helper programs for the disk image shell tests. They live outside
# $(BUILD)/tests/ because the runner executes everything there.
IMG_TOOLS := $(BUILD)/tools/img/crashwriter

$(BUILD)/tools/img/%: tests/img/%.c $(LIBK)
	@mkdir -p $(dir $@)
	@echo "  TOOL    $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) $< -o $@ $(LIBK) $(LIBS)

TEST_BINS += $(IMG_TOOLS)

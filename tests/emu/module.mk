# Differential test harness for the x86-64 emulator (tests/emu/): one program,
# $(BUILD)/tests/emu/test_emudiff, run by tests/run.sh like every test program.
# emu_stub.c becomes a fall-back archive linked after libkestrel.a (one member per function),
# so the harness links while accel/emu is still missing functions.

EMU_TEST_SRCS := $(filter-out tests/emu/emu_stub.c,$(sort $(wildcard tests/emu/*.c)))
EMU_TEST_OBJS := $(EMU_TEST_SRCS:%.c=$(BUILD)/obj/%.o)
EMU_STUB_FNS  := emu_cpu_create emu_cpu_destroy emu_reset_long_mode emu_set_state \
		 emu_get_state emu_map_flat emu_run emu_cpuid
EMU_STUB_OBJS := $(EMU_STUB_FNS:%=$(BUILD)/obj/tests/emu/stub/%.o)
EMU_STUB_LIB  := $(BUILD)/obj/tests/emu/libemustub.a
EMU_TEST_BIN  := $(BUILD)/tests/emu/test_emudiff

$(BUILD)/obj/tests/emu/stub/%.o: tests/emu/emu_stub.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -DSTUB_$* -c $< -o $@

$(EMU_STUB_LIB): $(EMU_STUB_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(EMU_TEST_BIN): $(EMU_TEST_OBJS) $(LIBK) $(EMU_STUB_LIB)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(EMU_TEST_OBJS) $(LIBK) $(EMU_STUB_LIB) $(LIBS)

TEST_BINS += $(EMU_TEST_BIN)
-include $(EMU_TEST_OBJS:.o=.d)

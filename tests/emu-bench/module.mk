# emu-bench: accel/emu vs the host on three loops (a benchmark, not a test: it is built
# into $(BUILD)/bench/, which the test runner does not look at).
EMU_BENCH := $(BUILD)/bench/emu-bench

$(BUILD)/bench/emu-bench-loops.bin: tests/emu-bench/loops.asm
	@mkdir -p $(dir $@)
	@echo "  NASM    $@"
	$(Q)nasm -f bin -o $@ $<

$(EMU_BENCH): tests/emu-bench/emu-bench.c $(LIBK) $(BUILD)/bench/emu-bench-loops.bin
	@mkdir -p $(dir $@)
	@echo "  BENCH   $@"
	$(Q)$(CC) $(CFLAGS) -Iinclude $< -o $@ $(LIBK) $(LIBS)

.PHONY: emu-bench
emu-bench: $(EMU_BENCH)

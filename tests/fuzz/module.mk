# tests/fuzz: libFuzzer targets (make fuzz, clang, into build-fuzz/) and a regression run of
# their corpus built with the normal compiler, so make check feeds every corpus file to the
# same entry point.
FUZZ_DIR     := build-fuzz
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
	-std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Iinclude -Itests/fuzz
# the parts of the tree the qcow2 target needs
FUZZ_QCOW2_SRCS := $(wildcard block/*.c) util/log.c tests/fuzz/fuzz_qcow2_entry.c \
	tests/fuzz/fuzz_qcow2.c

fuzz: $(FUZZ_DIR)/fuzz_qcow2

$(FUZZ_DIR)/fuzz_qcow2: $(FUZZ_QCOW2_SRCS) $(wildcard include/block/*.h) tests/fuzz/fuzz_qcow2.h
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_QCOW2_SRCS) -o $@ -lz -lzstd -lpthread
	@echo "  run: $@ -max_total_time=60 tests/fuzz/corpus/qcow2"

$(BUILD)/tests/fuzz/corpus_qcow2: tests/fuzz/corpus_qcow2.c tests/fuzz/fuzz_qcow2_entry.c \
		tests/fuzz/fuzz_qcow2.h $(LIBK)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests/fuzz tests/fuzz/corpus_qcow2.c \
		tests/fuzz/fuzz_qcow2_entry.c -o $@ $(LIBK) $(LIBS)

TEST_BINS += $(BUILD)/tests/fuzz/corpus_qcow2

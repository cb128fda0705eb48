# tests/fuzz: libFuzzer targets (make fuzz, clang, into build-fuzz/) and a regression run of
# their corpus built with the normal compiler, so make check feeds every corpus file to the
# same entry point.
#
# A target NAME is tests/fuzz/fuzz_NAME_entry.c (the harness: fuzz_NAME_one(), shared),
# fuzz_NAME.c (LLVMFuzzerTestOneInput), fuzz_NAME.h, a corpus in tests/fuzz/corpus/NAME and
# corpus_NAME.c (the make check runner).
FUZZ_DIR     := build-fuzz
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer \
	-std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Iinclude -Itests/fuzz
# the parts of the tree the qcow2 target needs
FUZZ_QCOW2_SRCS := $(wildcard block/*.c) util/log.c tests/fuzz/fuzz_qcow2_entry.c \
	tests/fuzz/fuzz_qcow2.c

# The other targets link the whole library, built once with the fuzzer's instrumentation.
# UBSan aborts (the fuzzer reports it) instead of printing and going on.
FUZZ_LIB_CFLAGS := -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE \
	-D_FILE_OFFSET_BITS=64 -DKESTREL_VERSION='"$(VERSION)"' -Iinclude -Wno-unused-parameter
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_LIB      := $(FUZZ_DIR)/libkestrel.a
FUZZ_TARGETS  := virtqueue virtio_dev qmp
FUZZ_HDRS      = $(wildcard include/*/*.h) $(wildcard tests/fuzz/*.h) vmm/qmp_int.h

fuzz: $(FUZZ_DIR)/fuzz_qcow2 $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

$(FUZZ_DIR)/fuzz_qcow2: $(FUZZ_QCOW2_SRCS) $(wildcard include/block/*.h) tests/fuzz/fuzz_qcow2.h
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) $(PKG_CFLAGS) $(FUZZ_QCOW2_SRCS) -o $@ $(LIBS)
	@echo "  run: $@ -max_total_time=60 tests/fuzz/corpus/qcow2"

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	$(Q)$(FUZZ_CC) $(FUZZ_LIB_CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	@rm -f $@
	@echo "  AR      $@"
	$(Q)ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_%_entry.c $(FUZZ_LIB) $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fno-sanitize-recover=undefined $(PKG_CFLAGS) \
		tests/fuzz/fuzz_$*.c tests/fuzz/fuzz_$*_entry.c -o $@ $(FUZZ_LIB) $(LIBS)
	@echo "  run: $@ -close_fd_mask=2 -max_total_time=180 tests/fuzz/corpus/$*"

$(BUILD)/tests/fuzz/corpus_qcow2: tests/fuzz/corpus_qcow2.c tests/fuzz/fuzz_qcow2_entry.c \
		tests/fuzz/fuzz_qcow2.h $(LIBK)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests/fuzz tests/fuzz/corpus_qcow2.c \
		tests/fuzz/fuzz_qcow2_entry.c -o $@ $(LIBK) $(LIBS)

$(BUILD)/tests/fuzz/corpus_%: tests/fuzz/corpus_%.c tests/fuzz/fuzz_%_entry.c \
		tests/fuzz/corpus_run.c $(LIBK) $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -Itests/fuzz tests/fuzz/corpus_$*.c \
		tests/fuzz/fuzz_$*_entry.c tests/fuzz/corpus_run.c -o $@ $(LIBK) $(LIBS)

TEST_BINS += $(BUILD)/tests/fuzz/corpus_qcow2 $(FUZZ_TARGETS:%=$(BUILD)/tests/fuzz/corpus_%)

-include $(FUZZ_LIB_OBJS:.o=.d)

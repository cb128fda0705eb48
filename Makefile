# Kestrel — top-level build.
#
# Sources are discovered, not listed: every .c below the layer directories goes into
# build/libkestrel.a, main.c links it into build/kestrel, and each tests/unit/test_*.c
# becomes a cmocka binary. A test directory may add rules in its own tests/<dir>/module.mk.
#
#   make            build/kestrel
#   make asan       build-asan/kestrel with ASAN+UBSAN (tests: make check BUILD=build-asan)
#   make guest      build/guest/: Debian kernel + busybox initramfs for the integration tests
#   make demo       deps, build, guest, then boot it on this terminal
#   make check      deps, build, guest, every test; ends with "N passed, N failed"
#   make bench      figures comparing Kestrel and QEMU, and qcow2 with raw (not a test)
#   make fuzz       libFuzzer targets (clang)
#   make format     clang-format in place; make format-check is part of make check

BUILD   ?= build
# make Q= shows full command lines
Q       ?= @
CC      ?= gcc
VERSION := 0.1.0

LAYERS  := util core accel hw virtio block net vmm cmd
PKGS    := json-c liburing libseccomp zlib libzstd slirp

CFLAGS_BASE := -std=gnu11 -g -Wall -Wextra -Werror -Wno-unused-parameter \
	-Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
	-fno-strict-aliasing -fstack-protector-strong -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 \
	-DKESTREL_VERSION='"$(VERSION)"' -Iinclude
OPT     ?= -O2
CFLAGS  ?=
CFLAGS  += $(CFLAGS_BASE) $(OPT) $(SAN_FLAGS)
LDFLAGS += $(SAN_FLAGS)
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
LIBS    := $(PKG_LIBS) -lpthread -lm

LIB_SRCS := $(sort $(shell find $(LAYERS) -name '*.c' 2>/dev/null))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/main.o
KESTREL  := $(BUILD)/kestrel
LIBK     := $(BUILD)/libkestrel.a

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)

.PHONY: all asan guest demo check check-long test bench fuzz format format-check deps clean
all: $(KESTREL)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(LIBK): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@rm -f $@
	@echo "  AR      $@"
	$(Q)ar rcs $@ $^

$(KESTREL): $(MAIN_OBJ) $(LIBK)
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(MAIN_OBJ) $(LIBK) $(LIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(LIBK)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(CFLAGS) $(PKG_CFLAGS) -MMD -MP $< -o $@ $(LIBK) $(LIBS) -lcmocka

# Test directories add their own binaries to TEST_BINS (and rules) here.
TEST_BINS := $(UNIT_BINS)
-include $(wildcard tests/*/module.mk)

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 all tests \
		SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

deps:
	@./scripts/deps.sh

guest: deps
	@./scripts/make-guest.sh $(BUILD)/guest

demo: deps
	@$(MAKE) --no-print-directory all
	@./scripts/make-guest.sh $(BUILD)/guest
	@./scripts/demo.sh $(BUILD)

# "make check" = set-up + every test. Sub-makes so deps are in place before pkg-config runs.
check: deps
	@$(MAKE) --no-print-directory all tests
	@./scripts/make-guest.sh $(BUILD)/guest
	@./tests/run.sh $(BUILD)

check-long: deps
	@$(MAKE) --no-print-directory all tests
	@KESTREL_LONG=1 ./tests/run.sh $(BUILD)

.PHONY: tests
tests: $(TEST_BINS)

bench: deps
	@$(MAKE) --no-print-directory all
	@./scripts/make-guest.sh $(BUILD)/guest
	@./scripts/bench.sh $(BUILD)
	@./scripts/bench-img.sh $(BUILD)

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRCS)
format-check:
	@clang-format --dry-run --Werror $(FORMAT_SRCS)

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJS:.o=.d) $(MAIN_OBJ:.o=.d) $(UNIT_BINS:=.d)

/* The qcow2 fuzz entry point (tests/fuzz/fuzz_qcow2_entry.c). */
#ifndef KESTREL_TESTS_FUZZ_QCOW2_H
#define KESTREL_TESTS_FUZZ_QCOW2_H

#include <stddef.h>
#include <stdint.h>

int fuzz_qcow2_one(const uint8_t *data, size_t size);

#endif

/* The QMP fuzz entry point (tests/fuzz/fuzz_qmp_entry.c). */
#ifndef KESTREL_TESTS_FUZZ_QMP_H
#define KESTREL_TESTS_FUZZ_QMP_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_QMP_SEP	0xff /* ends one write of the client */
#define FUZZ_QMP_SWITCH 0xfd /* a write that starts with it goes to the other client */
#define FUZZ_QMP_BIG	0xfe /* 0xfe 0xfe: first a request of 1 MiB + 64 KiB (once) */

/* Input: what clients write to the monitor socket, split at FUZZ_QMP_SEP into separate
 * writes; the server runs its event loop between writes until it has read everything.
 * Two clients may be connected (FUZZ_QMP_SWITCH); FUZZ_QMP_BIG makes a request past the
 * 1 MiB limit reachable from a small input. Every line the server sends must be a JSON
 * object (strict JSON); nothing may crash or leak. */
int fuzz_qmp_one(const uint8_t *data, size_t size);

#endif

/* Pieces every fuzz target's entry point shares: the failed-check report and the op stream a
 * target reads its steps from. A target defines FUZZ_NAME before including this. */
#ifndef KESTREL_TESTS_FUZZ_OPS_H
#define KESTREL_TESTS_FUZZ_OPS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A property the code under test must keep: report it and abort, which libFuzzer (and the
 * corpus regression run) turn into a failure with the input kept. */
#define FUZZ_CHECK(cond, ...)                                                                 \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, FUZZ_NAME ": check failed: " #cond ": " __VA_ARGS__); \
			fputc('\n', stderr);                                                  \
			abort();                                                              \
		}                                                                             \
	} while (0)

/* The fuzzer's bytes as a stream of operands; past the end everything reads as 0. */
struct fuzz_ops {
	const uint8_t *p, *end;
};

static inline uint8_t fuzz_u8(struct fuzz_ops *o)
{
	return o->p < o->end ? *o->p++ : 0;
}

static inline uint16_t fuzz_u16(struct fuzz_ops *o)
{
	uint16_t lo = fuzz_u8(o);
	return (uint16_t)(lo | fuzz_u8(o) << 8);
}

static inline uint32_t fuzz_u32(struct fuzz_ops *o)
{
	uint32_t lo = fuzz_u16(o);
	return lo | (uint32_t)fuzz_u16(o) << 16;
}

#endif

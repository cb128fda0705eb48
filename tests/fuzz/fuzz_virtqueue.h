/* The virtqueue fuzz entry point (tests/fuzz/fuzz_virtqueue_entry.c). */
#ifndef KESTREL_TESTS_FUZZ_VIRTQUEUE_H
#define KESTREL_TESTS_FUZZ_VIRTQUEUE_H

#include <stddef.h>
#include <stdint.h>

/* Guest RAM the input describes: one region at 0, and a small one right after it so that a
 * buffer straddling the two (contiguous guest addresses, separate host mappings) is tried. */
#define FUZZ_VQ_RAM	 (64u << 10)
#define FUZZ_VQ_RAM2	 4096u
#define FUZZ_VQ_HDR	 17
#define FUZZ_VQ_MAX_SIZE 1024 /* VQ_MAX_SIZE: every size the transport lets a driver try */

/* Input: FUZZ_VQ_HDR bytes of header, then the op stream, then the RAM image.
 *   0      flags: bit 0 INDIRECT_DESC, bit 1 EVENT_IDX
 *   1..2   queue size (le16, any value: vq_enable judges it)
 *   3..6   desc address (le32), 7..10 avail, 11..14 used
 *   15..16 length of the op stream (le16)
 * The ops (see fuzz_virtqueue_entry.c) pop, push, unpop, poke RAM between device steps the
 * way a racing driver would, reset/re-enable and save/load; the RAM image fills region 0
 * from address 0 (the rest is zero). */
int fuzz_virtqueue_one(const uint8_t *data, size_t size);

#endif

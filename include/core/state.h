/* Device state save/load: a flat byte stream with typed little-endian fields.
 *
 * Each device has `int xxx_save(const struct xxx *, struct state_buf *)` and
 * `int xxx_load(struct xxx *, struct state_buf *)` next to it, writing a version byte first.
 * Readers never trust the stream: every get checks that the bytes are there and a load
 * validates values before applying them (a snapshot file is user input). */
#ifndef KESTREL_CORE_STATE_H
#define KESTREL_CORE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct state_buf {
	uint8_t *data;
	size_t len, cap; /* writer: bytes written; reader: total length */
	size_t pos;	 /* reader position */
	bool error;	 /* sticky: an allocation failed or a read ran past the end */
};

void state_init_writer(struct state_buf *s);
void state_init_reader(struct state_buf *s, const void *data, size_t len);
void state_free(struct state_buf *s);

void state_put_u8(struct state_buf *s, uint8_t v);
void state_put_u16(struct state_buf *s, uint16_t v);
void state_put_u32(struct state_buf *s, uint32_t v);
void state_put_u64(struct state_buf *s, uint64_t v);
void state_put_bytes(struct state_buf *s, const void *p, size_t n);

/* On underrun these return 0 / leave *p zeroed and set s->error. */
uint8_t state_get_u8(struct state_buf *s);
uint16_t state_get_u16(struct state_buf *s);
uint32_t state_get_u32(struct state_buf *s);
uint64_t state_get_u64(struct state_buf *s);
void state_get_bytes(struct state_buf *s, void *p, size_t n);

/* 0 if no error so far, else -EINVAL (reader) or -ENOMEM (writer). */
int state_status(const struct state_buf *s);

#endif

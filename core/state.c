/* Device state streams (see state.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/state.h"

void state_init_writer(struct state_buf *s)
{
	memset(s, 0, sizeof(*s));
}

void state_init_reader(struct state_buf *s, const void *data, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->data = (uint8_t *)data;
	s->len = len;
	s->cap = 0; /* cap 0 marks a reader: state_free leaves the caller's data alone */
}

void state_free(struct state_buf *s)
{
	if (s->cap)
		free(s->data);
	memset(s, 0, sizeof(*s));
}

void state_put_bytes(struct state_buf *s, const void *p, size_t n)
{
	if (s->error)
		return;
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 256;
		while (cap < s->len + n)
			cap *= 2;
		uint8_t *d = realloc(s->data, cap);
		if (!d) {
			s->error = true;
			return;
		}
		s->data = d;
		s->cap = cap;
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
}

void state_get_bytes(struct state_buf *s, void *p, size_t n)
{
	if (s->error || n > s->len - s->pos) {
		s->error = true;
		memset(p, 0, n);
		return;
	}
	memcpy(p, s->data + s->pos, n);
	s->pos += n;
}

/* Fields are little-endian whatever the host, so a stream moves between machines. */
#define STATE_INT(bits)                                               \
	void state_put_u##bits(struct state_buf *s, uint##bits##_t v) \
	{                                                             \
		uint8_t b[bits / 8];                                  \
		for (unsigned i = 0; i < bits / 8; i++)               \
			b[i] = (uint8_t)(v >> (8 * i));               \
		state_put_bytes(s, b, sizeof(b));                     \
	}                                                             \
	uint##bits##_t state_get_u##bits(struct state_buf *s)         \
	{                                                             \
		uint8_t b[bits / 8];                                  \
		uint##bits##_t v = 0;                                 \
		state_get_bytes(s, b, sizeof(b));                     \
		for (unsigned i = 0; i < bits / 8; i++)               \
			v |= (uint##bits##_t)b[i] << (8 * i);         \
		return v;                                             \
	}
STATE_INT(8)
STATE_INT(16)
STATE_INT(32)
STATE_INT(64)

int state_status(const struct state_buf *s)
{
	if (!s->error)
		return 0;
	return s->cap ? -ENOMEM : -EINVAL;
}

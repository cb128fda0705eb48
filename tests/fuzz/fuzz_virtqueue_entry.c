/* Fuzz entry for the split virtqueue (virtio/virtqueue.c): everything a hostile driver
 * controls about a queue. The input is a header (size, ring addresses, INDIRECT_DESC and
 * EVENT_IDX), a stream of device and driver steps, and the guest RAM image (format in
 * fuzz_virtqueue.h). Guest RAM is two malloc'd buffers of exactly the region sizes, so ASAN
 * reports any byte the queue code or a device using its chains would touch outside RAM; on
 * top of that every chain vq_pop() hands out is checked here (each buffer inside one region,
 * lengths adding up, no more buffers than the queue or VQ_MAX_SEGS), and the loop that drains
 * the queue at the end must stop. Shared by the libFuzzer target and the corpus runner. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_virtqueue.h"
#include "util/endian.h"
#include "virtio/virtqueue.h"

#define FUZZ_NAME "fuzz_virtqueue"
#include "fuzz_ops.h"

#define MAX_HELD   4
#define COPY_LIMIT (64u << 10) /* bytes a step copies in or out of one chain */
#define DRAIN_MAX  (1u << 16)  /* pops of the final drain: far more than any ring can hold */

enum {
	OP_CONSUME,   /* pop a chain, read it, fill it, push it */
	OP_HOLD,      /* pop a chain and keep it (a device with requests in flight) */
	OP_PUSH_HELD, /* le32 len: return every held chain at once (vq_fill + vq_flush) */
	OP_UNPOP,     /* give the held chains back (legal only right after popping them) */
	OP_POKE,      /* le16 addr, u8 n, n bytes: the driver writes guest RAM */
	OP_NOTIFY,    /* vq_should_notify, vq_has_avail */
	OP_COPY,      /* u8 which, le16 off, le16 len: partial copies in and out of a held chain */
	OP_RESET,     /* le16 size: vq_reset, reprogram, vq_enable (the driver's reset) */
	OP_SAVE_LOAD, /* vq_save then vq_load of the same state (migration) */
	OP_LOAD,      /* u8 n, n bytes: vq_load of a stream that may be anything */
	OP_PUBLISH,   /* u8 k, k x le16 head: add k entries to the available ring */
	OP_DESC,      /* le16 i, le16 addr, le16 len, u8 flags, le16 next: write descriptor i */
	OP_COUNT
};

struct ctx {
	struct guest_mem gm;
	uint8_t *ram, *ram2;
	struct virtqueue vq;
	struct fuzz_ops ops;
	bool indirect, event_idx;
	uint16_t size;
	uint64_t desc, avail, used;
	unsigned nheld;
	unsigned held_run;  /* the last held_run pops were all held (vq_unpop may undo them) */
	uint16_t avail_idx; /* the driver's next available index, for OP_PUBLISH */
	unsigned pops;
};

static struct vq_elem held[MAX_HELD], elem;
static uint8_t scratch[COPY_LIMIT];

static bool inside(const uint8_t *base, size_t size, const uint8_t *p, uint32_t len)
{
	return p >= base && p <= base + size && len <= (size_t)(base + size - p);
}

/* What vq_pop() promises about a chain it returned. */
static void check_elem(const struct ctx *c, const struct vq_elem *e)
{
	unsigned n = e->n_out + e->n_in;
	uint64_t out = 0, in = 0;
	FUZZ_CHECK(n >= 1 && n <= VQ_MAX_SEGS && n <= c->vq.size, "%u buffers, queue of %u", n,
		   c->vq.size);
	FUZZ_CHECK(e->head < c->vq.size, "head %u, queue of %u", e->head, c->vq.size);
	for (unsigned s = 0; s < n; s++) {
		const struct vq_seg *g = &e->seg[s];
		FUZZ_CHECK(g->len > 0, "buffer %u is empty", s);
		FUZZ_CHECK(inside(c->ram, FUZZ_VQ_RAM, g->ptr, g->len) ||
			       inside(c->ram2, FUZZ_VQ_RAM2, g->ptr, g->len),
			   "buffer %u (%u bytes) is not inside one RAM region", s, g->len);
		if (s < e->n_out)
			out += g->len;
		else
			in += g->len;
	}
	FUZZ_CHECK(out == e->out_len && in == e->in_len, "lengths %llu/%llu vs %llu/%llu",
		   (unsigned long long)out, (unsigned long long)in, (unsigned long long)e->out_len,
		   (unsigned long long)e->in_len);
}

/* A device's use of a chain: read what the driver wrote, fill what it may write. The copies
 * go through vq_elem_read/vq_elem_write, so ASAN sees every byte they touch. */
static uint32_t consume(const struct vq_elem *e)
{
	size_t out = e->out_len < COPY_LIMIT ? e->out_len : COPY_LIMIT;
	size_t in = e->in_len < COPY_LIMIT ? e->in_len : COPY_LIMIT;
	FUZZ_CHECK(vq_elem_read(e, 0, scratch, out) == out, "short read");
	/* The last byte of each buffer too, past the copy limit. */
	size_t off = 0;
	for (unsigned s = 0; s < e->n_out + e->n_in; s++) {
		uint8_t b;
		bool w = s >= e->n_out;
		if (s == e->n_out)
			off = 0;
		off += e->seg[s].len;
		if (w)
			FUZZ_CHECK(vq_elem_write(e, off - 1, &b, 1) == 1, "last byte");
		else
			FUZZ_CHECK(vq_elem_read(e, off - 1, &b, 1) == 1, "last byte");
	}
	FUZZ_CHECK(vq_elem_read(e, e->out_len, scratch, 1) == 0, "read past the chain");
	memset(scratch, 0xa5, in);
	FUZZ_CHECK(vq_elem_write(e, 0, scratch, in) == in, "short write");
	FUZZ_CHECK(vq_elem_write(e, e->in_len, scratch, 1) == 0, "write past the chain");
	return (uint32_t)e->in_len;
}

static int pop(struct ctx *c, struct vq_elem *e)
{
	int r = vq_pop(&c->vq, e);
	FUZZ_CHECK(r == 0 || r == 1 || r == -22, "vq_pop returned %d", r);
	if (r == 1) {
		check_elem(c, e);
		c->pops++;
	}
	return r;
}

static void program(struct ctx *c)
{
	vq_reset(&c->vq);
	c->vq.size = c->size;
	c->vq.desc = c->desc;
	c->vq.avail = c->avail;
	c->vq.used = c->used;
	c->vq.indirect = c->indirect;
	c->vq.event_idx = c->event_idx;
	(void)!vq_enable(&c->vq);
	c->nheld = c->held_run = 0;
	c->avail_idx = 0;
}

static void guest_write(struct ctx *c, uint64_t addr, const void *p, size_t n)
{
	/* Byte by byte: a write may cross from one region into the other, or leave RAM. */
	for (size_t i = 0; i < n; i++)
		(void)!gm_write(&c->gm, addr + i, (const uint8_t *)p + i, 1);
}

static void step(struct ctx *c, unsigned op)
{
	switch (op) {
	case OP_CONSUME:
		if (pop(c, &elem) == 1) {
			vq_push(&c->vq, elem.head, consume(&elem));
			c->held_run = 0;
		}
		break;
	case OP_HOLD:
		if (c->nheld < MAX_HELD && pop(c, &held[c->nheld]) == 1) {
			c->nheld++;
			c->held_run++;
		}
		break;
	case OP_PUSH_HELD: {
		uint32_t len = fuzz_u32(&c->ops);
		for (unsigned i = 0; i < c->nheld; i++)
			(void)!vq_fill(&c->vq, i, held[i].head,
				       len < held[i].in_len ? len : (uint32_t)held[i].in_len);
		vq_flush(&c->vq, c->nheld);
		c->nheld = c->held_run = 0;
		break;
	}
	case OP_UNPOP:
		if (c->nheld && c->held_run == c->nheld) {
			vq_unpop(&c->vq, c->nheld);
			c->nheld = c->held_run = 0;
		}
		break;
	case OP_POKE: {
		uint16_t addr = fuzz_u16(&c->ops);
		uint8_t n = fuzz_u8(&c->ops);
		uint8_t buf[256];
		for (unsigned i = 0; i < n; i++)
			buf[i] = fuzz_u8(&c->ops);
		guest_write(c, addr, buf, n);
		break;
	}
	case OP_NOTIFY:
		(void)vq_should_notify(&c->vq);
		(void)vq_has_avail(&c->vq);
		break;
	case OP_COPY: {
		unsigned which = fuzz_u8(&c->ops);
		size_t off = fuzz_u16(&c->ops), len = fuzz_u16(&c->ops);
		if (which >= c->nheld)
			break;
		const struct vq_elem *e = &held[which];
		size_t n = vq_elem_read(e, off, scratch, len);
		size_t want =
		    off < e->out_len ? (e->out_len - off < len ? e->out_len - off : len) : 0;
		FUZZ_CHECK(n == want, "read %zu of %zu at %zu (expected %zu)", n, len, off, want);
		n = vq_elem_write(e, off, scratch, len);
		want = off < e->in_len ? (e->in_len - off < len ? e->in_len - off : len) : 0;
		FUZZ_CHECK(n == want, "wrote %zu of %zu at %zu (expected %zu)", n, len, off, want);
		break;
	}
	case OP_RESET:
		c->size = fuzz_u16(&c->ops);
		program(c);
		break;
	case OP_SAVE_LOAD: {
		struct state_buf s;
		state_init_writer(&s);
		if (vq_save(&c->vq, &s) == 0) {
			struct state_buf r;
			state_init_reader(&r, s.data, s.len);
			struct virtqueue before = c->vq;
			int ret = vq_load(&c->vq, &r);
			/* A state the queue saved itself always loads back, unchanged where saved. */
			FUZZ_CHECK(ret == 0, "own state did not load: %d", ret);
			FUZZ_CHECK(c->vq.last_avail == before.last_avail &&
				       c->vq.used_idx == before.used_idx &&
				       c->vq.size == before.size && c->vq.enabled == before.enabled,
				   "state changed in a round trip");
		}
		state_free(&s);
		break;
	}
	case OP_LOAD: {
		uint8_t n = fuzz_u8(&c->ops);
		uint8_t buf[256];
		for (unsigned i = 0; i < n; i++)
			buf[i] = fuzz_u8(&c->ops);
		struct state_buf r;
		state_init_reader(&r, buf, n);
		if (vq_load(&c->vq, &r) == 0)
			c->nheld = c->held_run = 0;
		break;
	}
	case OP_PUBLISH: {
		unsigned k = fuzz_u8(&c->ops);
		uint16_t qs = c->vq.size ? c->vq.size : 1;
		for (unsigned i = 0; i < k; i++) {
			uint16_t head = fuzz_u16(&c->ops);
			guest_write(c, c->vq.avail + 4 + 2u * ((uint16_t)(c->avail_idx + i) % qs),
				    &head, 2);
		}
		c->avail_idx = (uint16_t)(c->avail_idx + k);
		guest_write(c, c->vq.avail + 2, &c->avail_idx, 2);
		break;
	}
	case OP_DESC: {
		uint16_t i = fuzz_u16(&c->ops);
		struct vring_desc d = {.addr = fuzz_u16(&c->ops), .len = fuzz_u16(&c->ops)};
		d.flags = fuzz_u8(&c->ops);
		d.next = fuzz_u16(&c->ops);
		guest_write(c, c->vq.desc + 16u * i, &d, sizeof(d));
		break;
	}
	}
}

int fuzz_virtqueue_one(const uint8_t *data, size_t size)
{
	if (size < FUZZ_VQ_HDR)
		return 0;
	struct ctx c = {0};
	c.indirect = data[0] & 1;
	c.event_idx = data[0] & 2;
	c.size = le16_load(data + 1);
	c.desc = le32_load(data + 3);
	c.avail = le32_load(data + 7);
	c.used = le32_load(data + 11);
	size_t nops = le16_load(data + 15);
	const uint8_t *rest = data + FUZZ_VQ_HDR;
	size_t left = size - FUZZ_VQ_HDR;
	if (nops > left)
		nops = left;
	c.ops.p = rest;
	c.ops.end = rest + nops;
	rest += nops;
	left -= nops;

	c.ram = calloc(1, FUZZ_VQ_RAM);
	c.ram2 = calloc(1, FUZZ_VQ_RAM2);
	if (!c.ram || !c.ram2)
		goto out;
	memcpy(c.ram, rest, left < FUZZ_VQ_RAM ? left : FUZZ_VQ_RAM);
	c.gm.regions[0] = (struct gm_region){.gpa = 0, .size = FUZZ_VQ_RAM, .host = c.ram};
	c.gm.regions[1] =
	    (struct gm_region){.gpa = FUZZ_VQ_RAM, .size = FUZZ_VQ_RAM2, .host = c.ram2};
	c.gm.nr_regions = 2;
	c.gm.ram_size = FUZZ_VQ_RAM + FUZZ_VQ_RAM2;
	vq_init(&c.vq, &c.gm, 0, FUZZ_VQ_MAX_SIZE);
	program(&c);

	while (c.ops.p < c.ops.end)
		step(&c, fuzz_u8(&c.ops) % OP_COUNT);
	/* Then what a device does on a doorbell: take chains until there are none or the queue
	 * breaks. Nothing writes guest RAM now but the device (used entries, a fixed fill
	 * pattern), so this ends within a ring's worth of entries; DRAIN_MAX pops mean it did
	 * not. */
	for (unsigned n = 0;; n++) {
		FUZZ_CHECK(n < DRAIN_MAX, "the queue never ran dry (%u pops)", n);
		if (pop(&c, &elem) != 1)
			break;
		vq_push(&c.vq, elem.head, consume(&elem));
		(void)vq_should_notify(&c.vq);
	}
out:
	free(c.ram);
	free(c.ram2);
	return 0;
}

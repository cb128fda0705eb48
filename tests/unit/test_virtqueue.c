/* Unit tests for the split virtqueue (virtio/virtqueue.c): descriptor chains built in a
 * guest_mem, good ones and every kind of malformed one. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "virtio/virtqueue.h"

#define RAM   (1u << 20)
#define QSZ   16
#define DESC  0x1000
#define AVAIL 0x2000
#define USED  0x3000
#define DATA  0x10000

struct fx {
	struct guest_mem gm;
	struct virtqueue vq;
	uint16_t avail_idx;
	struct vq_elem e;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_int_equal(gm_add_ram(&f->gm, 0, RAM, "ram"), 0);
	vq_init(&f->vq, &f->gm, 0, QSZ);
	f->vq.desc = DESC;
	f->vq.avail = AVAIL;
	f->vq.used = USED;
	assert_int_equal(vq_enable(&f->vq), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	gm_destroy(&f->gm);
	free(f);
	return 0;
}

static void put_desc(struct fx *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
	assert_int_equal(gm_write(&f->gm, table + 16u * i, &d, sizeof(d)), 0);
}

static void offer(struct fx *f, uint16_t head)
{
	uint16_t slot = f->avail_idx % QSZ;
	assert_int_equal(gm_write(&f->gm, AVAIL + 4 + 2u * slot, &head, 2), 0);
	f->avail_idx++;
	assert_int_equal(gm_write(&f->gm, AVAIL + 2, &f->avail_idx, 2), 0);
}

static uint16_t rd16(struct fx *f, uint64_t a)
{
	uint16_t v;
	assert_int_equal(gm_read(&f->gm, a, &v, 2), 0);
	return v;
}

static uint32_t rd32(struct fx *f, uint64_t a)
{
	uint32_t v;
	assert_int_equal(gm_read(&f->gm, a, &v, 4), 0);
	return v;
}

static void expect_bad(struct fx *f)
{
	assert_int_equal(vq_pop(&f->vq, &f->e), -EINVAL);
	assert_true(f->vq.broken);
	/* Once broken, it stays so: no more chains are taken. */
	assert_int_equal(vq_pop(&f->vq, &f->e), -EINVAL);
}

static void good_chain(void **state)
{
	struct fx *f = *state;
	assert_int_equal(vq_pop(&f->vq, &f->e), 0);
	const char msg[] = "hello, virtqueue";
	assert_int_equal(gm_write(&f->gm, DATA, msg, 6), 0);
	assert_int_equal(gm_write(&f->gm, DATA + 0x100, msg + 6, sizeof(msg) - 6), 0);
	put_desc(f, DESC, 5, DATA, 6, VRING_DESC_F_NEXT, 2);
	put_desc(f, DESC, 2, DATA + 0x100, sizeof(msg) - 6, VRING_DESC_F_NEXT, 9);
	put_desc(f, DESC, 9, DATA + 0x200, 3, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	put_desc(f, DESC, 0, DATA + 0x300, 100, VRING_DESC_F_WRITE, 0);
	offer(f, 5);
	assert_true(vq_has_avail(&f->vq));
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_false(vq_has_avail(&f->vq));
	assert_int_equal(f->e.head, 5);
	assert_int_equal(f->e.n_out, 2);
	assert_int_equal(f->e.n_in, 2);
	assert_int_equal(f->e.out_len, sizeof(msg));
	assert_int_equal(f->e.in_len, 103);
	char buf[64] = {0};
	assert_int_equal(vq_elem_read(&f->e, 0, buf, sizeof(buf)), sizeof(msg));
	assert_string_equal(buf, msg);
	assert_int_equal(vq_elem_read(&f->e, 4, buf, 4), 4);
	assert_memory_equal(buf, "o, v", 4);
	/* A write that spans both writable buffers. */
	assert_int_equal(vq_elem_write(&f->e, 1, "abcdef", 6), 6);
	char out[8] = {0};
	assert_int_equal(gm_read(&f->gm, DATA + 0x201, out, 2), 0);
	assert_memory_equal(out, "ab", 2);
	assert_int_equal(gm_read(&f->gm, DATA + 0x300, out, 4), 0);
	assert_memory_equal(out, "cdef", 4);
	assert_int_equal(vq_elem_write(&f->e, 100, "xyzw", 4), 3);
	/* Used ring. */
	assert_int_equal(vq_push(&f->vq, 5, 7), 0);
	assert_int_equal(rd16(f, USED + 2), 1);
	assert_int_equal(rd32(f, USED + 4), 5);
	assert_int_equal(rd32(f, USED + 8), 7);
	assert_true(vq_should_notify(&f->vq));
	/* The driver asks for no interrupts. */
	uint16_t fl = VRING_AVAIL_F_NO_INTERRUPT;
	assert_int_equal(gm_write(&f->gm, AVAIL, &fl, 2), 0);
	assert_false(vq_should_notify(&f->vq));
	assert_int_equal(vq_pop(&f->vq, &f->e), 0);
}

static void loop_rejected(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, DATA, 8, VRING_DESC_F_NEXT, 1);
	put_desc(f, DESC, 1, DATA, 8, VRING_DESC_F_NEXT, 2);
	put_desc(f, DESC, 2, DATA, 8, VRING_DESC_F_NEXT, 0);
	offer(f, 0);
	expect_bad(f);
}

static void self_loop_rejected(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 3, DATA, 8, VRING_DESC_F_NEXT, 3);
	offer(f, 3);
	expect_bad(f);
}

static void longest_chain_ok(void **state)
{
	struct fx *f = *state;
	for (unsigned i = 0; i < QSZ; i++)
		put_desc(f, DESC, i, DATA + 16 * i, 16, i + 1 < QSZ ? VRING_DESC_F_NEXT : 0,
			 (uint16_t)(i + 1));
	offer(f, 0);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.n_out, QSZ);
}

static void next_out_of_table(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, DATA, 8, VRING_DESC_F_NEXT, QSZ);
	offer(f, 0);
	expect_bad(f);
}

static void buffer_outside_ram(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, RAM + 0x1000, 8, 0, 0);
	offer(f, 0);
	expect_bad(f);
}

static void buffer_straddles_end(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, RAM - 8, 16, VRING_DESC_F_WRITE, 0);
	offer(f, 0);
	expect_bad(f);
}

static void buffer_wraps(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, ~0ULL - 3, 16, 0, 0);
	offer(f, 0);
	expect_bad(f);
}

static void zero_length(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, DATA, 8, VRING_DESC_F_NEXT, 1);
	put_desc(f, DESC, 1, DATA, 0, 0, 0);
	offer(f, 0);
	expect_bad(f);
}

static void wrong_direction(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, DATA, 8, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	put_desc(f, DESC, 1, DATA, 8, 0, 0);
	offer(f, 0);
	expect_bad(f);
}

static void bad_head_and_index(void **state)
{
	struct fx *f = *state;
	offer(f, QSZ);
	expect_bad(f);
}

static void avail_index_jump(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, DATA, 8, 0, 0);
	uint16_t idx = QSZ + 1;
	assert_int_equal(gm_write(&f->gm, AVAIL + 2, &idx, 2), 0);
	expect_bad(f);
}

static void indirect_ok(void **state)
{
	struct fx *f = *state;
	f->vq.indirect = true;
	uint64_t tbl = 0x5000;
	put_desc(f, tbl, 0, DATA, 4, VRING_DESC_F_NEXT, 2);
	put_desc(f, tbl, 2, DATA + 16, 1, VRING_DESC_F_WRITE, 0);
	put_desc(f, DESC, 7, tbl, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	offer(f, 7);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.head, 7);
	assert_int_equal(f->e.n_out, 1);
	assert_int_equal(f->e.n_in, 1);
	/* A direct descriptor may lead into an indirect one (the table's last). */
	put_desc(f, DESC, 1, DATA, 4, VRING_DESC_F_NEXT, 7);
	offer(f, 1);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(f->e.n_out, 2);
	assert_int_equal(f->e.n_in, 1);
}

static void indirect_not_negotiated(void **state)
{
	struct fx *f = *state;
	put_desc(f, 0x5000, 0, DATA, 4, 0, 0);
	put_desc(f, DESC, 0, 0x5000, 16, VRING_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_bad(f);
}

static void indirect_nested(void **state)
{
	struct fx *f = *state;
	f->vq.indirect = true;
	put_desc(f, 0x5000, 0, 0x6000, 16, VRING_DESC_F_INDIRECT, 0);
	put_desc(f, 0x6000, 0, DATA, 4, 0, 0);
	put_desc(f, DESC, 0, 0x5000, 16, VRING_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_bad(f);
}

static void indirect_with_next(void **state)
{
	struct fx *f = *state;
	f->vq.indirect = true;
	put_desc(f, 0x5000, 0, DATA, 4, 0, 0);
	put_desc(f, DESC, 0, 0x5000, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	put_desc(f, DESC, 1, DATA, 4, 0, 0);
	offer(f, 0);
	expect_bad(f);
}

static void indirect_bad_len(void **state)
{
	struct fx *f = *state;
	f->vq.indirect = true;
	put_desc(f, DESC, 0, 0x5000, 24, VRING_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_bad(f);
}

static void indirect_too_long(void **state)
{
	struct fx *f = *state;
	f->vq.indirect = true;
	for (unsigned i = 0; i <= QSZ; i++)
		put_desc(f, 0x5000, i, DATA, 4, i < QSZ ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	put_desc(f, DESC, 0, 0x5000, (QSZ + 1) * 16, VRING_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_bad(f);
}

static void indirect_outside_ram(void **state)
{
	struct fx *f = *state;
	f->vq.indirect = true;
	put_desc(f, DESC, 0, RAM - 16, 32, VRING_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_bad(f);
}

static void indirect_loop_and_index(void **state)
{
	struct fx *f = *state;
	f->vq.indirect = true;
	put_desc(f, 0x5000, 0, DATA, 4, VRING_DESC_F_NEXT, 1);
	put_desc(f, 0x5000, 1, DATA, 4, VRING_DESC_F_NEXT, 0);
	put_desc(f, DESC, 0, 0x5000, 32, VRING_DESC_F_INDIRECT, 0);
	offer(f, 0);
	expect_bad(f);
	vq_reset(&f->vq);
	f->vq.desc = DESC;
	f->vq.avail = AVAIL;
	f->vq.used = USED;
	f->vq.indirect = true;
	assert_int_equal(vq_enable(&f->vq), 0);
	f->avail_idx = 0;
	assert_int_equal(gm_write(&f->gm, AVAIL + 2, &f->avail_idx, 2), 0);
	put_desc(f, 0x5000, 1, DATA, 4, VRING_DESC_F_NEXT, 2); /* next past a 2-entry table */
	offer(f, 0);
	expect_bad(f);
}

static void too_many_segments(void **state)
{
	(void)state;
	/* A queue larger than VQ_MAX_SEGS: a chain of VQ_MAX_SEGS + 1 buffers is refused. */
	struct guest_mem gm = {0};
	struct virtqueue vq;
	static struct vq_elem e;
	assert_int_equal(gm_add_ram(&gm, 0, RAM, "ram"), 0);
	vq_init(&vq, &gm, 1, 512);
	vq.desc = 0x10000;
	vq.avail = 0x1000;
	vq.used = 0x20000;
	assert_int_equal(vq_enable(&vq), 0);
	for (unsigned i = 0; i <= VQ_MAX_SEGS; i++) {
		struct vring_desc d = {
		    .addr = DATA, .len = 1, .flags = VRING_DESC_F_NEXT, .next = (uint16_t)(i + 1)};
		if (i == VQ_MAX_SEGS)
			d.flags = 0;
		assert_int_equal(gm_write(&gm, 0x10000 + 16 * i, &d, 16), 0);
	}
	uint16_t one = 1;
	assert_int_equal(gm_write(&gm, 0x1000 + 2, &one, 2), 0);
	assert_int_equal(vq_pop(&vq, &e), -EINVAL);
	gm_destroy(&gm);
}

static void enable_checks(void **state)
{
	struct fx *f = *state;
	struct virtqueue *vq = &f->vq;
	vq->size = 12;
	assert_int_equal(vq_enable(vq), -EINVAL);
	vq->size = 32;
	assert_int_equal(vq_enable(vq), -EINVAL);
	vq->size = 8;
	vq->desc = DESC + 8;
	assert_int_equal(vq_enable(vq), -EINVAL);
	vq->desc = RAM - 64; /* 8 * 16 bytes would run past RAM */
	assert_int_equal(vq_enable(vq), -EINVAL);
	vq->desc = DESC;
	vq->used = USED + 2;
	assert_int_equal(vq_enable(vq), -EINVAL);
	vq->used = RAM - 8;
	assert_int_equal(vq_enable(vq), -EINVAL);
	vq->used = USED;
	assert_int_equal(vq_enable(vq), 0);
}

static void event_idx(void **state)
{
	struct fx *f = *state;
	f->vq.event_idx = true;
	/* Empty: the device asks to be kicked at the next entry. */
	assert_int_equal(vq_pop(&f->vq, &f->e), 0);
	assert_int_equal(rd16(f, USED + 4 + 8 * QSZ), 0);
	for (unsigned i = 0; i < 3; i++) {
		put_desc(f, DESC, i, DATA, 4, VRING_DESC_F_WRITE, 0);
		offer(f, (uint16_t)i);
	}
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(rd16(f, USED + 4 + 8 * QSZ), 3);
	/* used_event = 1: an interrupt once the used index passes 1. */
	uint16_t ev = 1;
	assert_int_equal(gm_write(&f->gm, AVAIL + 4 + 2 * QSZ, &ev, 2), 0);
	assert_int_equal(vq_push(&f->vq, 0, 4), 0);
	assert_true(vq_should_notify(&f->vq)); /* first one always */
	assert_int_equal(vq_push(&f->vq, 1, 4), 0);
	assert_true(vq_should_notify(&f->vq)); /* crossed 1 -> 2 */
	assert_int_equal(vq_push(&f->vq, 2, 4), 0);
	assert_false(vq_should_notify(&f->vq)); /* driver did not ask */
}

static void save_load(void **state)
{
	struct fx *f = *state;
	put_desc(f, DESC, 0, DATA, 4, 0, 0);
	offer(f, 0);
	assert_int_equal(vq_pop(&f->vq, &f->e), 1);
	assert_int_equal(vq_push(&f->vq, 0, 0), 0);
	struct state_buf s, r;
	state_init_writer(&s);
	assert_int_equal(vq_save(&f->vq, &s), 0);
	struct virtqueue v2;
	vq_init(&v2, &f->gm, 0, QSZ);
	state_init_reader(&r, s.data, s.len);
	assert_int_equal(vq_load(&v2, &r), 0);
	assert_true(v2.enabled);
	assert_int_equal(v2.last_avail, 1);
	assert_int_equal(v2.used_idx, 1);
	/* A stream whose rings point outside RAM is refused. */
	s.data[6] = 0xff; /* desc address high byte... */
	s.data[12] = 0xff;
	state_init_reader(&r, s.data, s.len);
	assert_int_equal(vq_load(&v2, &r), -EINVAL);
	state_free(&s);
}

/* Random rings and tables (a fixed seed, so failures repeat): whatever vq_pop accepts lies in
 * guest RAM, in order, within the bounds; everything else is refused without a crash (under
 * ASAN this also checks that nothing outside RAM is read). */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static uint64_t rnd_addr(void)
{
	switch (rnd() % 4) {
	case 0:
		return DATA + rnd() % 0x1000;
	case 1:
		return 0x5000 + 16 * (rnd() % 4); /* an indirect table area */
	case 2:
		return RAM - rnd() % 0x100;
	default:
		return rnd();
	}
}

static void random_chains(void **state)
{
	struct fx *f = *state;
	const uint8_t *ram = gm_ptr(&f->gm, 0, RAM);
	unsigned accepted = 0, refused = 0;
	for (unsigned iter = 0; iter < 20000; iter++) {
		f->vq.indirect = rnd() & 1;
		for (unsigned i = 0; i < QSZ; i++)
			put_desc(f, DESC, i, rnd_addr(),
				 (uint32_t)(rnd() % 3 ? rnd() % 0x200 : rnd()),
				 (uint16_t)(rnd() & 7), (uint16_t)(rnd() % (QSZ + 2)));
		for (unsigned i = 0; i < 8; i++)
			put_desc(f, 0x5000, i, rnd_addr(), (uint32_t)(rnd() % 0x100),
				 (uint16_t)(rnd() & 7), (uint16_t)(rnd() % 10));
		offer(f, (uint16_t)(rnd() % (QSZ + 1)));
		int r = vq_pop(&f->vq, &f->e);
		if (r == 1) {
			accepted++;
			assert_true(f->e.n_out + f->e.n_in <= VQ_MAX_SEGS);
			assert_true(f->e.n_out + f->e.n_in <= QSZ);
			for (unsigned s = 0; s < f->e.n_out + f->e.n_in; s++) {
				assert_true(f->e.seg[s].len > 0);
				assert_true(f->e.seg[s].ptr >= ram);
				assert_true(f->e.seg[s].ptr + f->e.seg[s].len <= ram + RAM);
			}
			assert_int_equal(vq_push(&f->vq, f->e.head, 0), 0);
		} else {
			assert_int_equal(r, -EINVAL);
			refused++;
			vq_reset(&f->vq);
			f->vq.desc = DESC;
			f->vq.avail = AVAIL;
			f->vq.used = USED;
			assert_int_equal(vq_enable(&f->vq), 0);
			f->avail_idx = 0;
			assert_int_equal(gm_write(&f->gm, AVAIL + 2, &f->avail_idx, 2), 0);
		}
	}
	/* Both outcomes happen, so the walk is exercised both ways. */
	assert_true(accepted > 100);
	assert_true(refused > 100);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(good_chain),
	    T(loop_rejected),
	    T(self_loop_rejected),
	    T(longest_chain_ok),
	    T(next_out_of_table),
	    T(buffer_outside_ram),
	    T(buffer_straddles_end),
	    T(buffer_wraps),
	    T(zero_length),
	    T(wrong_direction),
	    T(bad_head_and_index),
	    T(avail_index_jump),
	    T(indirect_ok),
	    T(indirect_not_negotiated),
	    T(indirect_nested),
	    T(indirect_with_next),
	    T(indirect_bad_len),
	    T(indirect_too_long),
	    T(indirect_outside_ram),
	    T(indirect_loop_and_index),
	    cmocka_unit_test(too_many_segments),
	    T(enable_checks),
	    T(event_idx),
	    T(save_load),
	    T(random_chains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for the block layer and the qcow2 driver: random I/O against an in-memory
 * model (small clusters, tiny L2 cache, compressed writes, zeroes, discard), refcount table
 * growth, snapshots, and every bad-image case refused with a message naming the problem. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_tmpdir.h"

#include "block/block.h"
#include "core/guest_mem.h"
#include "util/error.h"
#include "virtio/blk.h"

static int setup(void **state)
{
	return tmpdir_create("kestrel-qcow2");
}

static int teardown(void **state)
{
	return tmpdir_remove();
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void make_qcow2(const char *path, uint64_t size, uint32_t cs, int rbits)
{
	struct blk_create_opts o = {
	    .format = BLK_FMT_QCOW2, .size = size, .cluster_size = cs, .refcount_bits = rbits};
	assert_int_equal(blk_create(path, &o), 0);
}

static void expect_clean(struct blk *b)
{
	struct blk_check_result r;
	assert_int_equal(blk_check(b, 0, &r), 0);
	assert_int_equal(r.corruptions, 0);
	assert_int_equal(r.leaks, 0);
	assert_int_equal(r.check_errors, 0);
}

/* Random writes, zeroes, discards and compressed writes, checked against a model. */
static void random_io_cache(uint32_t cs, int rbits, size_t l2_cache, enum blk_cache cache)
{
	const uint64_t size = 8 << 20;
	const char *p = tmp("rand.qcow2");
	make_qcow2(p, size, cs, rbits);
	struct blk_open_opts oo = {.l2_cache_bytes = l2_cache, .cache = cache};
	struct blk *b;
	int ret = blk_open(&b, p, &oo);
	if (ret == -EINVAL && cache == BLK_CACHE_NONE)
		skip(); /* no O_DIRECT on this file system */
	assert_int_equal(ret, 0);
	uint8_t *model = calloc(1, size), *buf = malloc(1 << 20);
	assert_non_null(model);
	for (int i = 0; i < 400; i++) {
		uint64_t off = rnd() % size;
		uint64_t len = 1 + rnd() % (256 << 10);
		if (off + len > size)
			len = size - off;
		int op = (int)(rnd() % 10);
		if (op < 5) {
			uint8_t v = (uint8_t)rnd();
			memset(buf, v, len);
			for (uint64_t k = 0; k < len; k += 97)
				buf[k] = (uint8_t)(k ^ v);
			assert_int_equal(blk_pwrite(b, off, buf, len), 0);
			memcpy(model + off, buf, len);
		} else if (op == 5) {
			assert_int_equal(blk_write_zeroes(b, off, len, 0), 0);
			memset(model + off, 0, len);
		} else if (op == 6) {
			assert_int_equal(blk_discard(b, off, len), 0);
			memset(model + off, 0, len);
		} else if (op == 7) {
			uint64_t c = (off / cs) * cs;
			uint64_t n = cs;
			if (c + n > size)
				n = size - c;
			memset(buf, (int)(rnd() & 3), n); /* compressible */
			assert_int_equal(blk_pwrite_compressed(b, c, buf, n), 0);
			memcpy(model + c, buf, n);
		} else if (op == 8) {
			assert_int_equal(blk_flush(b), 0);
		} else {
			assert_int_equal(blk_pread(b, off, buf, len), 0);
			assert_memory_equal(buf, model + off, len);
		}
	}
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		assert_int_equal(blk_pread(b, off, buf, 1 << 20), 0);
		assert_memory_equal(buf, model + off, 1 << 20);
	}
	expect_clean(b);
	blk_close(b);
	assert_int_equal(blk_open(&b, p, NULL), 0);
	for (uint64_t off = 0; off < size; off += 1 << 20) {
		assert_int_equal(blk_pread(b, off, buf, 1 << 20), 0);
		assert_memory_equal(buf, model + off, 1 << 20);
	}
	expect_clean(b);
	blk_close(b);
	free(model);
	free(buf);
}

static void random_io(uint32_t cs, int rbits, size_t l2_cache)
{
	random_io_cache(cs, rbits, l2_cache, BLK_CACHE_UNSAFE); /* no fdatasync: fast */
}

/* cache=none: O_DIRECT, metadata updates go through aligned bounce buffers */
static void rw_model_direct(void **state)
{
	random_io_cache(65536, 16, 0, BLK_CACHE_NONE);
}

static void rw_model_64k(void **state)
{
	random_io(65536, 16, 0);
}

static void rw_model_4k_small_cache(void **state)
{
	random_io(4096, 16, 4096);
}

static void rw_model_512_refcount1(void **state)
{
	random_io(512, 1, 2048);
}

static void rw_model_refcount64(void **state)
{
	random_io(4096, 64, 16384);
}

/* 512-byte clusters with 64-bit refcounts: one refcount table cluster covers only 4096
 * clusters, so filling a larger disk must grow the table. */
static void reftable_growth(void **state)
{
	const char *p = tmp("grow.qcow2");
	make_qcow2(p, 1 << 20, 512, 64);
	struct blk *b;
	assert_int_equal(blk_open(&b, p, NULL), 0);
	assert_int_equal(blk_resize(b, 6 << 20), 0);
	uint8_t *buf = malloc(1 << 20);
	for (int i = 0; i < 6; i++) {
		memset(buf, i + 1, 1 << 20);
		assert_int_equal(blk_pwrite(b, (uint64_t)i << 20, buf, 1 << 20), 0);
	}
	expect_clean(b);
	blk_close(b);
	assert_int_equal(blk_open(&b, p, NULL), 0);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(blk_pread(b, (uint64_t)i << 20, buf, 1 << 20), 0);
		assert_int_equal(buf[0], i + 1);
		assert_int_equal(buf[(1 << 20) - 1], i + 1);
	}
	expect_clean(b);
	blk_close(b);
	free(buf);
}

static void snapshots(void **state)
{
	const char *p = tmp("snap.qcow2");
	make_qcow2(p, 4 << 20, 4096, 16);
	struct blk *b;
	uint8_t buf[8192];
	assert_int_equal(blk_open(&b, p, NULL), 0);
	memset(buf, 1, sizeof(buf));
	assert_int_equal(blk_pwrite(b, 0, buf, sizeof(buf)), 0);
	assert_int_equal(blk_snapshot_create(b, "one"), 0);
	assert_int_equal(blk_snapshot_create(b, "one"), -EEXIST);
	memset(buf, 2, sizeof(buf));
	assert_int_equal(blk_pwrite(b, 4096, buf, sizeof(buf)), 0);
	expect_clean(b);
	assert_int_equal(blk_snapshot_apply(b, "one"), 0);
	expect_clean(b);
	assert_int_equal(blk_pread(b, 0, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 1);
	assert_int_equal(buf[8191], 1);
	assert_int_equal(blk_pread(b, 8192, buf, 4096), 0);
	assert_int_equal(buf[0], 0);
	struct blk_snapshot_info *l;
	assert_int_equal(blk_snapshot_list(b, &l), 1);
	assert_string_equal(l[0].name, "one");
	free(l);
	assert_int_equal(blk_snapshot_delete(b, "one"), 0);
	assert_int_equal(blk_snapshot_delete(b, "one"), -ENOENT);
	expect_clean(b);
	blk_close(b);
}

static void backing_chain(void **state)
{
	const char *base = tmp("base.qcow2"), *top = tmp("top.qcow2");
	make_qcow2(base, 1 << 20, 65536, 16);
	struct blk *b;
	uint8_t buf[4096];
	assert_int_equal(blk_open(&b, base, NULL), 0);
	memset(buf, 7, sizeof(buf));
	assert_int_equal(blk_pwrite(b, 0, buf, sizeof(buf)), 0);
	blk_close(b);
	struct blk_create_opts o = {.format = BLK_FMT_QCOW2,
				    .size = 2 << 20,
				    .backing_file = "base.qcow2",
				    .backing_format = "qcow2"};
	assert_int_equal(blk_create(top, &o), 0);
	assert_int_equal(blk_open(&b, top, NULL), 0);
	/* partial write: the rest of the cluster comes from the backing file */
	memset(buf, 9, 100);
	assert_int_equal(blk_pwrite(b, 1000, buf, 100), 0);
	assert_int_equal(blk_pread(b, 0, buf, sizeof(buf)), 0);
	assert_int_equal(buf[999], 7);
	assert_int_equal(buf[1000], 9);
	assert_int_equal(buf[1100], 7);
	/* discard over a backed cluster must read zeros, not the backing data */
	assert_int_equal(blk_discard(b, 0, 65536), 0);
	assert_int_equal(blk_pread(b, 0, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 0);
	/* past the end of the smaller backing file */
	assert_int_equal(blk_pread(b, (1 << 20) + 10, buf, 100), 0);
	assert_int_equal(buf[0], 0);
	struct blk_status st;
	assert_int_equal(blk_chain_status(b, 128 << 10, 4096, &st), 0);
	assert_int_equal(st.depth, 1); /* looked up to the base, which has nothing there */
	assert_int_equal(st.flags & (BLK_STATUS_ALLOCATED | BLK_STATUS_ZERO), BLK_STATUS_ZERO);
	expect_clean(b);
	blk_close(b);
}

static void raw_driver(void **state)
{
	const char *p = tmp("r.raw");
	struct blk_create_opts o = {.format = BLK_FMT_RAW, .size = 1 << 20};
	assert_int_equal(blk_create(p, &o), 0);
	for (int cache = 0; cache < 2; cache++) {
		struct blk_open_opts oo = {.cache = cache ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK};
		struct blk *b;
		int ret = blk_open(&b, p, &oo);
		if (ret == -EINVAL && cache) /* no O_DIRECT on this filesystem */
			continue;
		assert_int_equal(ret, 0);
		uint8_t buf[1000], out[1000];
		memset(buf, 0x5a + cache, sizeof(buf));
		assert_int_equal(blk_pwrite(b, 4095, buf, sizeof(buf)), 0); /* unaligned */
		assert_int_equal(blk_pread(b, 4095, out, sizeof(out)), 0);
		assert_memory_equal(buf, out, sizeof(buf));
		assert_int_equal(blk_pread(b, (1 << 20) - 10, out, 11), -EINVAL);
		assert_int_equal(blk_flush(b), 0);
		blk_close(b);
	}
}

/* ---- bad images ---- */

static void patch(const char *p, uint64_t off, const void *data, size_t len)
{
	int fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, data, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void patch64(const char *p, uint64_t off, uint64_t v)
{
	v = htobe64(v);
	patch(p, off, &v, 8);
}

static void patch32(const char *p, uint64_t off, uint32_t v)
{
	v = htobe32(v);
	patch(p, off, &v, 4);
}

static uint64_t read64(const char *p, uint64_t off)
{
	uint64_t v = 0;
	int fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &v, 8, (off_t)off), 8);
	close(fd);
	return be64toh(v);
}

/* A 1 MiB image with one written cluster (so an L2 table exists). */
static const char *good_image(void)
{
	const char *p = tmp("bad.qcow2");
	make_qcow2(p, 1 << 20, 65536, 16);
	struct blk *b;
	assert_int_equal(blk_open(&b, p, NULL), 0);
	uint8_t buf[512];
	memset(buf, 3, sizeof(buf));
	assert_int_equal(blk_pwrite(b, 0, buf, sizeof(buf)), 0);
	blk_close(b);
	return p;
}

static void expect_open_error(const char *p, const char *msg)
{
	struct blk *b = NULL;
	struct blk_open_opts oo = {.format = BLK_FMT_QCOW2};
	int ret = blk_open(&b, p, &oo);
	if (ret == 0)
		blk_close(b);
	assert_true(ret < 0);
	if (!strstr(blk_last_error(), msg))
		fail_msg("error '%s' does not mention '%s'", blk_last_error(), msg);
}

static void expect_read_error(const char *p, const char *msg)
{
	struct blk *b = NULL;
	assert_int_equal(blk_open(&b, p, NULL), 0);
	uint8_t buf[512];
	assert_int_equal(blk_pread(b, 0, buf, sizeof(buf)), -EIO);
	if (!strstr(blk_last_error(), msg))
		fail_msg("error '%s' does not mention '%s'", blk_last_error(), msg);
	assert_int_equal(blk_pwrite(b, 0, buf, sizeof(buf)), -EIO);
	blk_close(b);
}

static uint64_t l2_of(const char *p)
{
	return read64(p, read64(p, 40)) & 0x00fffffffffffe00ull;
}

static void bad_truncated(void **state)
{
	const char *p = good_image();
	assert_int_equal(truncate(p, 50), 0);
	expect_open_error(p, "truncated");
	p = good_image();
	assert_int_equal(truncate(p, 100000), 0); /* the L1 table is gone */
	expect_open_error(p, "outside the image");
}

static void bad_magic_version(void **state)
{
	const char *p = good_image();
	patch32(p, 0, 0x12345678);
	expect_open_error(p, "bad magic");
	p = good_image();
	patch32(p, 4, 9);
	expect_open_error(p, "version 9");
}

static void bad_sizes(void **state)
{
	const char *p = good_image();
	patch64(p, 24, 1ull << 62);
	expect_open_error(p, "absurd virtual size");
	p = good_image();
	patch32(p, 36, 0x7fffffff);
	expect_open_error(p, "absurd L1 table size");
	p = good_image();
	patch64(p, 24, 1ull << 40); /* L1 of 1 entry cannot map 1 TiB */
	expect_open_error(p, "too small");
	p = good_image();
	patch32(p, 20, 30);
	expect_open_error(p, "cluster size");
	p = good_image();
	patch32(p, 96, 7);
	expect_open_error(p, "refcount order");
	p = good_image();
	patch32(p, 56, 100000);
	expect_open_error(p, "absurd refcount table size");
}

static void bad_l1(void **state)
{
	const char *p = good_image();
	patch64(p, 40, 1ull << 40);
	expect_open_error(p, "L1 table");
	p = good_image();
	patch64(p, 40, 12345);
	expect_open_error(p, "not cluster aligned");
	p = good_image();
	patch64(p, read64(p, 40), (1ull << 40) | (1ull << 63));
	expect_open_error(p, "outside the image file");
	p = good_image();
	patch64(p, read64(p, 40), read64(p, 48) | (1ull << 63)); /* L2 = refcount table */
	expect_open_error(p, "overlaps the refcount table");
	p = good_image();
	patch64(p, read64(p, 40), 65536 * 0 + 512); /* unaligned, inside the header */
	expect_open_error(p, "L2 table");
}

static void bad_l2(void **state)
{
	const char *p = good_image();
	patch64(p, l2_of(p), (1ull << 40) | (1ull << 63));
	expect_read_error(p, "outside the image file");
	p = good_image();
	patch64(p, l2_of(p), read64(p, 48) | (1ull << 63));
	expect_read_error(p, "overlaps the refcount table");
	p = good_image();
	patch64(p, l2_of(p), read64(p, 40) | (1ull << 63));
	expect_read_error(p, "overlaps the active L1 table");
	p = good_image();
	patch64(p, l2_of(p), 65536 + 4096);
	expect_read_error(p, "not cluster aligned");
	p = good_image();
	patch64(p, l2_of(p), (1ull << 62) | (1ull << 50)); /* compressed, past the end */
	expect_read_error(p, "compressed cluster");
	p = good_image();
	uint64_t rb = read64(p, read64(p, 48));
	patch64(p, l2_of(p), rb | (1ull << 63));
	expect_read_error(p, "overlaps a refcount block");
}

/* Metadata pointing into metadata that only a write would clobber (issue 6 audit): the write
 * is refused with -EIO, the table stays intact and the image is marked corrupt. */
static void expect_refused_write(const char *p, uint64_t woff, const char *msg, uint64_t keep_off)
{
	uint64_t before = read64(p, keep_off);
	struct blk *b = NULL;
	assert_int_equal(blk_open(&b, p, NULL), 0);
	uint8_t buf[512];
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(blk_pwrite(b, woff, buf, sizeof(buf)), -EIO);
	if (!strstr(blk_last_error(), msg))
		fail_msg("error '%s' does not mention '%s'", blk_last_error(), msg);
	/* once corrupt, every later write is refused */
	assert_int_equal(blk_pwrite(b, 512 << 10, buf, sizeof(buf)), -EIO);
	blk_close(b);
	assert_true(read64(p, keep_off) == before);
	assert_true(read64(p, 72) & 2); /* incompatible bit 1: corrupt */
	expect_open_error(p, "marked corrupt");
	struct blk_open_opts ro = {.readonly = true};
	assert_int_equal(blk_open(&b, p, &ro), 0);
	blk_close(b);
}

static void bad_meta_overlap(void **state)
{
	/* an L2 entry pointing at its own L2 table (COPIED, so written in place) */
	const char *p = good_image();
	uint64_t l2 = l2_of(p);
	patch64(p, l2, l2 | (1ull << 63));
	expect_refused_write(p, 0, "overlaps an active L2 table", l2);
	/* an L2 entry pointing at a snapshot's L1 table */
	p = good_image();
	struct blk *b;
	assert_int_equal(blk_open(&b, p, NULL), 0);
	assert_int_equal(blk_snapshot_create(b, "s1"), 0);
	blk_close(b);
	uint64_t snl1 = read64(p, read64(p, 64));
	patch64(p, l2_of(p), snl1 | (1ull << 63));
	expect_refused_write(p, 0, "overlaps a snapshot L1 table", snl1);
	/* refcounts that call the L2 table free: the allocator must not hand it out */
	p = good_image();
	l2 = l2_of(p);
	uint64_t rb = read64(p, read64(p, 48));
	uint16_t zero = 0;
	patch(p, rb + 2 * (l2 >> 16), &zero, 2);
	expect_refused_write(p, 64 << 10, "overlaps an active L2 table", l2);
}

static void bad_refcount_table(void **state)
{
	const char *p = good_image();
	patch64(p, read64(p, 48), 1ull << 40);
	expect_open_error(p, "refcount block 0");
	p = good_image();
	patch64(p, 48, 1ull << 40);
	expect_open_error(p, "refcount table");
	p = good_image();
	patch64(p, read64(p, 48), read64(p, 40)); /* refcount block = L1 table */
	expect_open_error(p, "overlaps the active L1 table");
}

static void bad_features(void **state)
{
	const char *p = good_image();
	patch64(p, 72, 1ull << 10);
	expect_open_error(p, "unsupported incompatible qcow2 feature(s): bit 10");
	p = good_image();
	patch64(p, 72, 1ull << 4);
	expect_open_error(p, "extended L2");
	p = good_image();
	patch64(p, 72, 1ull << 2);
	expect_open_error(p, "external data file");
	p = good_image();
	patch32(p, 32, 1);
	expect_open_error(p, "encrypted");
	p = good_image();
	patch64(p, 72, 1ull << 1); /* corrupt: read-only is allowed, read-write is not */
	expect_open_error(p, "marked corrupt");
	struct blk *b;
	struct blk_open_opts ro = {.readonly = true};
	assert_int_equal(blk_open(&b, p, &ro), 0);
	blk_close(b);
}

static void bad_snapshot_table(void **state)
{
	const char *p = good_image();
	patch32(p, 60, 1);
	patch64(p, 64, 1ull << 40);
	expect_open_error(p, "snapshot table");
	p = good_image();
	patch32(p, 60, 1000000);
	expect_open_error(p, "absurd number of snapshots");
}

static void bad_backing(void **state)
{
	const char *a = tmp("loop-a.qcow2"), *bp = tmp("loop-b.qcow2");
	struct blk_create_opts o = {.format = BLK_FMT_QCOW2,
				    .size = 1 << 20,
				    .backing_file = "loop-b.qcow2",
				    .backing_format = "qcow2"};
	make_qcow2(bp, 1 << 20, 65536, 16);
	assert_int_equal(blk_create(a, &o), 0);
	/* b -> a: a loop */
	struct blk *b;
	struct blk_open_opts nb = {.no_backing = true};
	assert_int_equal(blk_open(&b, bp, &nb), 0);
	assert_int_equal(blk_set_backing(b, "loop-a.qcow2", "qcow2"), 0);
	blk_close(b);
	expect_open_error(a, "backing file loop");
	/* an image that is its own backing file */
	const char *self = tmp("self.qcow2");
	o.backing_file = "self.qcow2";
	assert_int_equal(blk_create(self, &o), 0);
	expect_open_error(self, "backing file loop");
	/* missing backing file */
	const char *m = tmp("missing.qcow2");
	o.backing_file = "does-not-exist.qcow2";
	assert_int_equal(blk_create(m, &o), 0);
	expect_open_error(m, "not found");
	/* backing name pointing outside the header cluster */
	const char *p = good_image();
	patch64(p, 8, 1ull << 20);
	patch32(p, 16, 10);
	expect_open_error(p, "backing file name");
}

/* Several threads on one handle: each fills its own region in scattered 4 KiB writes
 * (allocations race with in-place writes and reads of the others). */
struct thr {
	struct blk *b;
	int idx;
	int err;
};

#define THR_REGION (1u << 20)

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	uint8_t buf[4096], back[4096];
	uint64_t base = (uint64_t)t->idx * THR_REGION;
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t k = 0; k < THR_REGION / 4096; k++) {
			uint32_t blk = (k * 97 + (uint32_t)t->idx) % (THR_REGION / 4096);
			memset(buf, t->idx * 16 + pass, sizeof(buf));
			if (blk_pwrite(t->b, base + blk * 4096ull, buf, sizeof(buf)) < 0 ||
			    blk_pread(t->b, base + blk * 4096ull, back, sizeof(back)) < 0 ||
			    memcmp(buf, back, sizeof(buf)))
				t->err++;
		}
	return NULL;
}

static void threads(void **state)
{
	const char *p = tmp("thr.qcow2");
	make_qcow2(p, 4 * THR_REGION, 65536, 16);
	struct blk *b;
	assert_int_equal(blk_open(&b, p, NULL), 0);
	pthread_t th[4];
	struct thr t[4];
	for (int i = 0; i < 4; i++) {
		t[i] = (struct thr){.b = b, .idx = i};
		assert_int_equal(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].err, 0);
	}
	uint8_t buf[4096];
	for (int i = 0; i < 4; i++) {
		assert_int_equal(blk_pread(b, (uint64_t)i * THR_REGION + 8192, buf, sizeof(buf)),
				 0);
		assert_int_equal(buf[0], i * 16 + 1);
	}
	expect_clean(b);
	blk_close(b);
}

/* Discard deallocates: the clusters go back to the host file system. */
static void discard_frees_space(void **state)
{
	const char *p = tmp("disc.qcow2");
	make_qcow2(p, 16 << 20, 65536, 16);
	struct blk *b;
	assert_int_equal(blk_open(&b, p, NULL), 0);
	uint8_t *buf = malloc(8 << 20);
	memset(buf, 0x77, 8 << 20);
	assert_int_equal(blk_pwrite(b, 0, buf, 8 << 20), 0);
	assert_int_equal(blk_flush(b), 0);
	struct blk_info before, after;
	assert_int_equal(blk_get_info(b, &before), 0);
	assert_int_equal(blk_discard(b, 0, 8 << 20), 0);
	assert_int_equal(blk_get_info(b, &after), 0);
	assert_true(after.disk_size + (7 << 20) < before.disk_size);
	struct blk_status st;
	assert_int_equal(blk_block_status(b, 0, 8 << 20, &st), 0);
	assert_int_equal(st.flags & BLK_STATUS_DATA, 0);
	assert_int_equal(blk_pread(b, 4096, buf, 4096), 0);
	assert_int_equal(buf[0], 0);
	expect_clean(b);
	blk_close(b);
	free(buf);
}

/* --disk ...,l2-cache-size=SIZE reaches the driver through virtio-blk. */
static void l2_cache_size_option(void **state)
{
	const char *p = tmp("cache.qcow2");
	make_qcow2(p, 64ull << 30, 65536, 16); /* 128 L2 tables */
	struct guest_mem gm = {0};
	struct virtio_blk vb;
	struct error err = {0};
	struct blk_info i;
	struct virtio_blk_opts o = {.path = p, .format = BLK_FMT_QCOW2, .l2_cache_bytes = 4 << 20};
	assert_int_equal(virtio_blk_init(&vb, &o, 0, &gm, &err), 0);
	assert_int_equal(blk_get_info(vb.blk, &i), 0);
	assert_int_equal(i.l2_cache_bytes, 4 << 20);
	virtio_blk_destroy(&vb);
	o.l2_cache_bytes = 0; /* default: 1 MiB */
	assert_int_equal(virtio_blk_init(&vb, &o, 0, &gm, &err), 0);
	assert_int_equal(blk_get_info(vb.blk, &i), 0);
	assert_int_equal(i.l2_cache_bytes, 1 << 20);
	virtio_blk_destroy(&vb);
	o.l2_cache_bytes = 1ull << 30; /* more than the image has tables: capped at 128 */
	assert_int_equal(virtio_blk_init(&vb, &o, 0, &gm, &err), 0);
	assert_int_equal(blk_get_info(vb.blk, &i), 0);
	assert_int_equal(i.l2_cache_bytes, 128 * 65536);
	virtio_blk_destroy(&vb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rw_model_64k),
	    cmocka_unit_test(rw_model_direct),
	    cmocka_unit_test(rw_model_4k_small_cache),
	    cmocka_unit_test(rw_model_512_refcount1),
	    cmocka_unit_test(rw_model_refcount64),
	    cmocka_unit_test(reftable_growth),
	    cmocka_unit_test(snapshots),
	    cmocka_unit_test(backing_chain),
	    cmocka_unit_test(raw_driver),
	    cmocka_unit_test(threads),
	    cmocka_unit_test(discard_frees_space),
	    cmocka_unit_test(bad_truncated),
	    cmocka_unit_test(bad_magic_version),
	    cmocka_unit_test(bad_sizes),
	    cmocka_unit_test(bad_l1),
	    cmocka_unit_test(bad_l2),
	    cmocka_unit_test(bad_meta_overlap),
	    cmocka_unit_test(l2_cache_size_option),
	    cmocka_unit_test(bad_refcount_table),
	    cmocka_unit_test(bad_features),
	    cmocka_unit_test(bad_snapshot_table),
	    cmocka_unit_test(bad_backing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

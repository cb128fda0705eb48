/* Unit tests for asynchronous block I/O (block/aio.c): many requests in flight through
 * io_uring, completion by eventfd, O_DIRECT with unaligned buffers and ranges (bounce buffers
 * and the driver's read-modify-write), short transfers continued, end of file, host errors,
 * read-only images, the synchronous fallback (forced), qcow2's mapped reads and writes, drain.
 *
 * Where io_uring cannot be set up here (kernel too old, io_uring_disabled, seccomp), the tests
 * that are about io_uring are a SKIP with the reason; where the file system has no O_DIRECT,
 * so is the cache=none test. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_tmpdir.h"

#include "block/aio.h"
#include "block/block.h"

#define DISK (4u << 20)

static int setup(void **state)
{
	return tmpdir_create("kestrel-aio");
}

static int teardown(void **state)
{
	return tmpdir_remove();
}

/* The byte at disk offset `off` of the pattern images start with. */
static uint8_t pat(uint64_t off)
{
	return (uint8_t)((off * 7) ^ (off >> 9));
}

static void make_image(const char *path, uint64_t size)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(size);
	for (uint64_t i = 0; i < size; i++)
		buf[i] = pat(i);
	assert_int_equal(pwrite(fd, buf, size, 0), (ssize_t)size);
	free(buf);
	close(fd);
}

static struct blk *open_image(const char *path, enum blk_format fmt, enum blk_cache cache, bool ro)
{
	struct blk_open_opts o = {.format = fmt, .cache = cache, .readonly = ro};
	struct blk *b;
	assert_int_equal(blk_open(&b, path, &o), 0);
	return b;
}

/* A request with its own buffers and a record of its completion. */
struct treq {
	struct blk_aio_req r;
	struct iovec iov[4];
	int ret;
	int completions;
};

static void treq_done(struct blk_aio_req *r, int ret)
{
	struct treq *t = (struct treq *)r;
	t->ret = ret;
	t->completions++;
}

static void treq_init(struct treq *t, enum blk_aio_op op, uint64_t off)
{
	memset(t, 0, sizeof(*t));
	t->r.op = op;
	t->r.off = off;
	t->r.iov = t->iov;
	t->r.done = treq_done;
	t->ret = 1; /* not completed */
}

static unsigned pending(struct treq *t, unsigned n)
{
	unsigned left = 0;
	for (unsigned i = 0; i < n; i++)
		left += t[i].completions == 0;
	return left;
}

/* Waits on the completion eventfd, as an iothread does, until every request completed. */
static void wait_all(struct blk_aio *a, struct treq *t, unsigned n)
{
	for (int spins = 0; pending(t, n) && spins < 5000; spins++) {
		struct pollfd p = {.fd = blk_aio_fd(a), .events = POLLIN};
		if (p.fd >= 0)
			poll(&p, 1, 10);
		blk_aio_poll(a);
	}
	assert_int_equal(pending(t, n), 0);
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(t[i].completions, 1);
}

static struct blk_aio *new_aio(struct blk *b, unsigned flags)
{
	struct blk_aio *a;
	assert_int_equal(blk_aio_new(b, 64, flags, &a), 0);
	return a;
}

/* io_uring for this image, or a SKIP naming why not. */
static struct blk_aio *uring_or_skip(struct blk *b)
{
	struct blk_aio *a = new_aio(b, 0);
	if (!blk_aio_uses_uring(a)) {
		FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
		int disabled = -1;
		if (f) {
			if (fscanf(f, "%d", &disabled) != 1)
				disabled = -1;
			fclose(f);
		}
		print_message("SKIP reason: io_uring_queue_init fails here "
			      "(/proc/sys/kernel/io_uring_disabled: %d)\n",
			      disabled);
		blk_aio_free(a);
		blk_close(b);
		skip();
	}
	return a;
}

/* 64 writes in flight at once (each in two pieces), then 64 reads of them, all completing
 * through the eventfd; and the data is in the file. */
static void many_in_flight(void **state)
{
	const char *path = tmp("many.raw");
	make_image(path, DISK);
	struct blk *b = open_image(path, BLK_FMT_RAW, BLK_CACHE_WRITEBACK, false);
	struct blk_aio *a = uring_or_skip(b);
	enum { N = 64, SZ = 8192 };
	static struct treq t[N];
	static uint8_t data[N][SZ], back[N][SZ];
	for (unsigned i = 0; i < N; i++) {
		for (unsigned k = 0; k < SZ; k++)
			data[i][k] = (uint8_t)(i * 31 + k);
		treq_init(&t[i], BLK_AIO_WRITE, (uint64_t)(N - i) * 3 * SZ); /* descending */
		t[i].iov[0] = (struct iovec){data[i], 1000};
		t[i].iov[1] = (struct iovec){data[i] + 1000, SZ - 1000};
		t[i].r.iovcnt = 2;
		blk_aio_submit(a, &t[i].r);
	}
	assert_int_equal(blk_aio_inflight(a), N);
	assert_int_equal(pending(t, N), N); /* nothing completes before the kick */
	blk_aio_kick(a);
	wait_all(a, t, N);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(t[i].ret, 0);
	for (unsigned i = 0; i < N; i++) {
		treq_init(&t[i], BLK_AIO_READ, (uint64_t)(N - i) * 3 * SZ);
		t[i].iov[0] = (struct iovec){back[i], SZ};
		t[i].r.iovcnt = 1;
		blk_aio_submit(a, &t[i].r);
	}
	blk_aio_kick(a);
	wait_all(a, t, N);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(t[i].ret, 0);
		assert_int_equal(t[i].r.len, SZ);
		assert_memory_equal(back[i], data[i], SZ);
	}
	struct blk_aio_stats st;
	blk_aio_get_stats(a, &st);
	assert_int_equal(st.uring, 2 * N);
	assert_int_equal(st.sync, 0);
	assert_int_equal(st.max_inflight, N);
	assert_int_equal(blk_aio_inflight(a), 0);
	blk_aio_free(a);
	blk_close(b);
	/* On disk, seen through another descriptor. */
	int fd = open(path, O_RDONLY);
	uint8_t chk[SZ];
	assert_int_equal(pread(fd, chk, SZ, 5 * 3 * SZ), SZ);
	assert_memory_equal(chk, data[N - 5], SZ);
	close(fd);
}

/* The context's depth bounds what is in flight: blk_aio_full() says when to stop. */
static void depth_limit(void **state)
{
	const char *path = tmp("depth.raw");
	make_image(path, DISK);
	struct blk *b = open_image(path, BLK_FMT_RAW, BLK_CACHE_WRITEBACK, false);
	struct blk_aio *a;
	assert_int_equal(blk_aio_new(b, 8, 0, &a), 0);
	if (!blk_aio_uses_uring(a)) {
		print_message("SKIP reason: no io_uring here\n");
		blk_aio_free(a);
		blk_close(b);
		skip();
	}
	struct treq t[8];
	uint8_t buf[8][512];
	for (unsigned i = 0; i < 8; i++) {
		assert_false(blk_aio_full(a));
		treq_init(&t[i], BLK_AIO_READ, i * 512);
		t[i].iov[0] = (struct iovec){buf[i], 512};
		t[i].r.iovcnt = 1;
		blk_aio_submit(a, &t[i].r);
	}
	assert_true(blk_aio_full(a));
	/* drain: kicks and waits, without anyone polling the eventfd */
	blk_aio_drain(a);
	assert_false(blk_aio_full(a));
	assert_int_equal(pending(t, 8), 0);
	for (unsigned i = 0; i < 8; i++) {
		assert_int_equal(t[i].ret, 0);
		assert_int_equal(buf[i][3], pat(i * 512 + 3));
	}
	blk_aio_free(a);
	blk_close(b);
}

/* Whether this file system takes O_DIRECT at all. */
static bool direct_ok(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* cache=none: aligned requests go straight to the kernel; an unaligned buffer is bounced
 * (read and write); an unaligned range is bounced for reads and served by the driver's
 * read-modify-write for writes. All of them give the right bytes. */
static void direct_unaligned(void **state)
{
	const char *path = tmp("direct.raw");
	make_image(path, DISK);
	if (!direct_ok(path)) {
		print_message("SKIP reason: %s: no O_DIRECT on this file system\n", dir);
		skip();
	}
	struct blk *b = open_image(path, BLK_FMT_RAW, BLK_CACHE_NONE, false);
	struct blk_aio *a = uring_or_skip(b);
	struct blk_aio_stats st;
	uint8_t *mem = NULL;
	assert_int_equal(posix_memalign((void **)&mem, 4096, 64 << 10), 0);
	struct treq t;

	/* Aligned read: no bounce. */
	treq_init(&t, BLK_AIO_READ, 8192);
	t.iov[0] = (struct iovec){mem, 4096};
	t.r.iovcnt = 1;
	blk_aio_submit(a, &t.r);
	blk_aio_kick(a);
	wait_all(a, &t, 1);
	assert_int_equal(t.ret, 0);
	for (unsigned k = 0; k < 4096; k++)
		assert_int_equal(mem[k], pat(8192 + k));
	blk_aio_get_stats(a, &st);
	assert_int_equal(st.bounced, 0);
	assert_int_equal(st.uring, 1);

	/* Read into an odd address, in two pieces: bounced. */
	treq_init(&t, BLK_AIO_READ, 4096);
	t.iov[0] = (struct iovec){mem + 1, 1000};
	t.iov[1] = (struct iovec){mem + 2001, 3096};
	t.r.iovcnt = 2;
	blk_aio_submit(a, &t.r);
	blk_aio_kick(a);
	wait_all(a, &t, 1);
	assert_int_equal(t.ret, 0);
	for (unsigned k = 0; k < 1000; k++)
		assert_int_equal(mem[1 + k], pat(4096 + k));
	for (unsigned k = 0; k < 3096; k++)
		assert_int_equal(mem[2001 + k], pat(4096 + 1000 + k));
	blk_aio_get_stats(a, &st);
	assert_int_equal(st.bounced, 1);

	/* Read of an unaligned range (offset 100, 300 bytes): bounced through the covering
	 * block. */
	treq_init(&t, BLK_AIO_READ, 100);
	t.iov[0] = (struct iovec){mem + 8192, 300};
	t.r.iovcnt = 1;
	blk_aio_submit(a, &t.r);
	blk_aio_kick(a);
	wait_all(a, &t, 1);
	assert_int_equal(t.ret, 0);
	for (unsigned k = 0; k < 300; k++)
		assert_int_equal(mem[8192 + k], pat(100 + k));
	blk_aio_get_stats(a, &st);
	assert_int_equal(st.bounced, 2);

	/* Write of whole blocks from an odd address: bounced, asynchronous. */
	uint8_t src[4096];
	for (unsigned k = 0; k < sizeof(src); k++)
		src[k] = (uint8_t)(k * 13 + 5);
	memcpy(mem + 16384 + 3, src, sizeof(src));
	treq_init(&t, BLK_AIO_WRITE, 65536);
	t.iov[0] = (struct iovec){mem + 16384 + 3, 4096};
	t.r.iovcnt = 1;
	blk_aio_submit(a, &t.r);
	blk_aio_kick(a);
	wait_all(a, &t, 1);
	assert_int_equal(t.ret, 0);
	blk_aio_get_stats(a, &st);
	assert_int_equal(st.bounced, 3);
	assert_int_equal(st.sync, 0);

	/* Write of part of a block: the driver's read-modify-write, synchronously. */
	treq_init(&t, BLK_AIO_WRITE, 70000);
	t.iov[0] = (struct iovec){src, 333};
	t.r.iovcnt = 1;
	blk_aio_submit(a, &t.r);
	assert_int_equal(t.completions, 1); /* done before submit returned */
	assert_int_equal(t.ret, 0);
	blk_aio_get_stats(a, &st);
	assert_int_equal(st.sync, 1);
	blk_aio_free(a);
	blk_close(b);

	int fd = open(path, O_RDONLY);
	uint8_t chk[8192];
	assert_int_equal(pread(fd, chk, sizeof(chk), 65536), (ssize_t)sizeof(chk));
	close(fd);
	assert_memory_equal(chk, src, 4096);
	assert_memory_equal(chk + (70000 - 65536), src, 333);
	assert_int_equal(chk[(70000 - 65536) - 1], pat(70000 - 1));
	assert_int_equal(chk[(70000 - 65536) + 333], pat(70000 + 333));
	free(mem);
}

/* A file that shrank under an open image: the read is short (continued once), then meets the
 * end of the file, and the rest reads as zeros, as blk_pread does. */
static void short_read_eof(void **state)
{
	const char *path = tmp("short.raw");
	make_image(path, 1 << 20);
	struct blk *b = open_image(path, BLK_FMT_RAW, BLK_CACHE_WRITEBACK, false);
	struct blk_aio *a = uring_or_skip(b);
	assert_int_equal(truncate(path, 512 << 10), 0);
	static uint8_t buf[8192];
	memset(buf, 0xee, sizeof(buf));
	struct treq t;
	treq_init(&t, BLK_AIO_READ, (512 << 10) - 4096);
	t.iov[0] = (struct iovec){buf, 5000};
	t.iov[1] = (struct iovec){buf + 5000, 3192};
	t.r.iovcnt = 2;
	blk_aio_submit(a, &t.r);
	blk_aio_kick(a);
	wait_all(a, &t, 1);
	assert_int_equal(t.ret, 0);
	for (unsigned k = 0; k < 4096; k++)
		assert_int_equal(buf[k], pat((512 << 10) - 4096 + k));
	for (unsigned k = 4096; k < sizeof(buf); k++)
		assert_int_equal(buf[k], 0);
	struct blk_aio_stats st;
	blk_aio_get_stats(a, &st);
	assert_int_equal(st.resubmitted, 1);
	blk_aio_free(a);
	blk_close(b);
}

/* A write the host refuses (file size limit): a short write is continued, then the error
 * comes back as -EFBIG with a message naming the file; the process is fine. */
static void host_write_error(void **state)
{
	const char *path = tmp("efbig.raw");
	make_image(path, 64 << 10);
	struct blk *b = open_image(path, BLK_FMT_RAW, BLK_CACHE_WRITEBACK, false);
	struct blk_aio *a = uring_or_skip(b);
	assert_int_equal(blk_resize(b, 1 << 20), 0);
	struct rlimit old, lim;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = (struct rlimit){.rlim_cur = 128 << 10, .rlim_max = old.rlim_max};
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	static uint8_t buf[8192];
	struct treq t[2];
	treq_init(&t[0], BLK_AIO_WRITE, (128 << 10) - 4096); /* crosses the limit */
	t[0].iov[0] = (struct iovec){buf, 8192};
	t[0].r.iovcnt = 1;
	treq_init(&t[1], BLK_AIO_WRITE, 4096); /* below it: fine */
	t[1].iov[0] = (struct iovec){buf, 4096};
	t[1].r.iovcnt = 1;
	blk_aio_submit(a, &t[0].r);
	blk_aio_submit(a, &t[1].r);
	blk_aio_kick(a);
	wait_all(a, t, 2);
	setrlimit(RLIMIT_FSIZE, &old);
	assert_int_equal(t[0].ret, -EFBIG);
	assert_non_null(strstr(blk_last_error(), "efbig.raw"));
	assert_int_equal(t[1].ret, 0);
	struct blk_aio_stats st;
	blk_aio_get_stats(a, &st);
	assert_int_equal(st.resubmitted, 1);
	blk_aio_free(a);
	blk_close(b);
}

/* Requests that are refused before any I/O complete at once with the block layer's errors. */
static void refused(void **state)
{
	const char *path = tmp("ro.raw");
	make_image(path, 1 << 20);
	struct blk *b = open_image(path, BLK_FMT_RAW, BLK_CACHE_WRITEBACK, true);
	struct blk_aio *a = new_aio(b, 0);
	uint8_t buf[512];
	struct treq t;
	treq_init(&t, BLK_AIO_WRITE, 0);
	t.iov[0] = (struct iovec){buf, 512};
	t.r.iovcnt = 1;
	blk_aio_submit(a, &t.r);
	assert_int_equal(t.completions, 1);
	assert_int_equal(t.ret, -EROFS);
	treq_init(&t, BLK_AIO_DISCARD, 0);
	t.r.len = 4096;
	blk_aio_submit(a, &t.r);
	assert_int_equal(t.ret, -EROFS);
	treq_init(&t, BLK_AIO_READ, (1 << 20) - 256);
	t.iov[0] = (struct iovec){buf, 512};
	t.r.iovcnt = 1;
	blk_aio_submit(a, &t.r);
	assert_int_equal(t.completions, 1);
	assert_int_equal(t.ret, -EINVAL);
	assert_non_null(strstr(blk_last_error(), "past the end"));
	/* A flush of a read-only image succeeds. */
	treq_init(&t, BLK_AIO_FLUSH, 0);
	blk_aio_submit(a, &t.r);
	blk_aio_drain(a);
	assert_int_equal(t.completions, 1);
	assert_int_equal(t.ret, 0);
	assert_int_equal(blk_aio_inflight(a), 0);
	blk_aio_free(a);
	blk_close(b);
}

/* Flush through the ring; discard and write-zeroes (synchronous, fallocate) read back zeros. */
static void flush_discard_zeroes(void **state)
{
	const char *path = tmp("fdz.raw");
	make_image(path, 1 << 20);
	struct blk *b = open_image(path, BLK_FMT_RAW, BLK_CACHE_WRITEBACK, false);
	struct blk_aio *a = new_aio(b, 0);
	struct treq t[3];
	treq_init(&t[0], BLK_AIO_FLUSH, 0);
	treq_init(&t[1], BLK_AIO_DISCARD, 65536);
	t[1].r.len = 65536;
	treq_init(&t[2], BLK_AIO_WRITE_ZEROES, 4096);
	t[2].r.len = 512;
	t[2].r.flags = 0;
	for (unsigned i = 0; i < 3; i++)
		blk_aio_submit(a, &t[i].r);
	blk_aio_kick(a);
	wait_all(a, t, 3);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(t[i].ret, 0);
	struct blk_aio_stats st;
	blk_aio_get_stats(a, &st);
	assert_int_equal(st.sync, 2);
	assert_int_equal(st.uring, blk_aio_uses_uring(a) ? 1 : 0);
	uint8_t chk[512], zero[512] = {0};
	assert_int_equal(blk_pread(b, 65536 + 4096, chk, 512), 0);
	assert_memory_equal(chk, zero, 512);
	assert_int_equal(blk_pread(b, 4096, chk, 512), 0);
	assert_memory_equal(chk, zero, 512);
	assert_int_equal(blk_pread(b, 4096 + 512, chk, 1), 0);
	assert_int_equal(chk[0], pat(4096 + 512));
	blk_aio_free(a);
	blk_close(b);
}

/* Without io_uring (forced here; qcow2 always): every request completes inside
 * blk_aio_submit, there is no eventfd, and the data is right. */
static void sync_fallback(void **state)
{
	const char *raw = tmp("sync.raw");
	const char *qc = tmp("sync.qcow2");
	make_image(raw, 1 << 20);
	struct blk_create_opts co = {.format = BLK_FMT_QCOW2, .size = 1 << 20};
	assert_int_equal(blk_create(qc, &co), 0);
	struct blk *bs[2] = {open_image(raw, BLK_FMT_RAW, BLK_CACHE_WRITEBACK, false),
			     open_image(qc, BLK_FMT_QCOW2, BLK_CACHE_WRITEBACK, false)};
	for (unsigned n = 0; n < 2; n++) {
		struct blk_aio *a = new_aio(bs[n], BLK_AIO_FORCE_SYNC);
		assert_false(blk_aio_uses_uring(a));
		assert_int_equal(blk_aio_fd(a), -1);
		uint8_t w[3000], r[3000];
		for (unsigned k = 0; k < sizeof(w); k++)
			w[k] = (uint8_t)(k + n);
		struct treq t;
		treq_init(&t, BLK_AIO_WRITE, 12345);
		t.iov[0] = (struct iovec){w, 1000};
		t.iov[1] = (struct iovec){w + 1000, 2000};
		t.r.iovcnt = 2;
		blk_aio_submit(a, &t.r);
		assert_int_equal(t.completions, 1);
		assert_int_equal(t.ret, 0);
		treq_init(&t, BLK_AIO_READ, 12345);
		t.iov[0] = (struct iovec){r, 3000};
		t.r.iovcnt = 1;
		blk_aio_submit(a, &t.r);
		assert_int_equal(t.completions, 1);
		assert_int_equal(t.ret, 0);
		assert_memory_equal(r, w, sizeof(w));
		assert_int_equal(blk_aio_poll(a), 0);
		struct blk_aio_stats st;
		blk_aio_get_stats(a, &st);
		assert_int_equal(st.sync, 2);
		assert_int_equal(st.uring, 0);
		blk_aio_free(a);
		blk_close(bs[n]);
	}
}

/* qcow2 through io_uring: reads and writes of clusters already in place go to the kernel at
 * the offset the driver maps them to; allocating writes, unallocated reads and flushes are the
 * driver's; a discard waits for the requests in flight; the image stays consistent. */
static void qcow2_mapped(void **state)
{
	const char *path = tmp("mapped.qcow2");
	struct blk_create_opts co = {.format = BLK_FMT_QCOW2, .size = DISK};
	assert_int_equal(blk_create(path, &co), 0);
	struct blk *b = open_image(path, BLK_FMT_QCOW2, BLK_CACHE_WRITEBACK, false);
	struct blk_aio *a = uring_or_skip(b);
	enum { N = 32, SZ = 8192, STRIDE = 65536 };
	static struct treq t[N + 1];
	static uint8_t data[N][SZ], back[N][SZ];
	struct blk_aio_stats st;

	/* 1. First writes allocate: the driver serves them. */
	for (unsigned i = 0; i < N; i++) {
		memset(data[i], 0x40 + i, SZ);
		treq_init(&t[i], BLK_AIO_WRITE, (uint64_t)i * STRIDE + 512);
		t[i].iov[0] = (struct iovec){data[i], SZ};
		t[i].r.iovcnt = 1;
		blk_aio_submit(a, &t[i].r);
	}
	blk_aio_kick(a);
	wait_all(a, t, N);
	blk_aio_get_stats(a, &st);
	assert_int_equal(st.sync, N);
	assert_int_equal(st.mapped, 0);

	/* 2. Overwrites in place and reads: through the io_uring, all in flight at once. */
	for (unsigned i = 0; i < N; i++) {
		for (unsigned k = 0; k < SZ; k++)
			data[i][k] = (uint8_t)(i * 13 + k);
		treq_init(&t[i], BLK_AIO_WRITE, (uint64_t)i * STRIDE + 512);
		t[i].iov[0] = (struct iovec){data[i], 3000};
		t[i].iov[1] = (struct iovec){data[i] + 3000, SZ - 3000};
		t[i].r.iovcnt = 2;
		blk_aio_submit(a, &t[i].r);
	}
	assert_int_equal(blk_aio_inflight(a), N);
	blk_aio_kick(a);
	wait_all(a, t, N);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(t[i].ret, 0);
		treq_init(&t[i], BLK_AIO_READ, (uint64_t)i * STRIDE + 512);
		t[i].iov[0] = (struct iovec){back[i], SZ};
		t[i].r.iovcnt = 1;
		blk_aio_submit(a, &t[i].r);
	}
	blk_aio_kick(a);
	wait_all(a, t, N);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(t[i].ret, 0);
		assert_memory_equal(back[i], data[i], SZ);
	}
	blk_aio_get_stats(a, &st);
	assert_int_equal(st.mapped, 2 * N);
	assert_int_equal(st.sync, N);

	/* 3. Unallocated clusters read as zeros (the driver's path); a read that spans an
	 *    allocated and an unallocated cluster too. */
	uint8_t z[SZ];
	treq_init(&t[0], BLK_AIO_READ, 3u << 20);
	t[0].iov[0] = (struct iovec){z, SZ};
	t[0].r.iovcnt = 1;
	blk_aio_submit(a, &t[0].r);
	assert_int_equal(t[0].completions, 1);
	for (unsigned k = 0; k < SZ; k++)
		assert_int_equal(z[k], 0);
	treq_init(&t[0], BLK_AIO_READ, (uint64_t)(N - 1) * STRIDE + STRIDE - 100);
	t[0].iov[0] = (struct iovec){z, 200};
	t[0].r.iovcnt = 1;
	blk_aio_submit(a, &t[0].r);
	assert_int_equal(t[0].completions, 1);
	assert_int_equal(t[0].ret, 0);
	blk_aio_get_stats(a, &st);
	assert_int_equal(st.sync, N + 2);

	/* 4. A discard waits for the writes in flight before it frees anything. */
	for (unsigned i = 0; i < 8; i++) {
		treq_init(&t[i], BLK_AIO_WRITE, (uint64_t)i * STRIDE + 512);
		t[i].iov[0] = (struct iovec){data[i], SZ};
		t[i].r.iovcnt = 1;
		blk_aio_submit(a, &t[i].r);
	}
	treq_init(&t[N], BLK_AIO_DISCARD, 0);
	t[N].r.len = STRIDE;
	blk_aio_submit(a, &t[N].r);
	assert_int_equal(t[N].completions, 1);
	assert_int_equal(t[N].ret, 0);
	assert_int_equal(pending(t, 8), 0); /* all finished before the discard ran */
	assert_int_equal(blk_aio_inflight(a), 0);
	treq_init(&t[0], BLK_AIO_READ, 512);
	t[0].iov[0] = (struct iovec){z, SZ};
	t[0].r.iovcnt = 1;
	blk_aio_submit(a, &t[0].r);
	blk_aio_kick(a);
	wait_all(a, t, 1);
	for (unsigned k = 0; k < SZ; k++)
		assert_int_equal(z[k], 0);

	/* 5. Flush is the driver's (metadata first); the image is consistent afterwards. */
	treq_init(&t[0], BLK_AIO_FLUSH, 0);
	blk_aio_submit(a, &t[0].r);
	assert_int_equal(t[0].completions, 1);
	assert_int_equal(t[0].ret, 0);
	blk_aio_free(a);
	struct blk_check_result cr;
	assert_int_equal(blk_check(b, 0, &cr), 0);
	assert_int_equal(cr.corruptions, 0);
	assert_int_equal(cr.leaks, 0);
	blk_close(b);

	/* 6. What was written is in the file, read back by the synchronous path. */
	b = open_image(path, BLK_FMT_QCOW2, BLK_CACHE_WRITEBACK, true);
	for (unsigned i = 1; i < N; i++) {
		assert_int_equal(blk_pread(b, (uint64_t)i * STRIDE + 512, back[i], SZ), 0);
		assert_memory_equal(back[i], data[i], SZ);
	}
	blk_close(b);
}

/* Random batches of non-overlapping reads, writes, discards and write-zeroes on qcow2, many
 * in flight, against a model of the disk; then the whole disk and a consistency check. */
static void qcow2_mapped_random(void **state)
{
	const char *path = tmp("random.qcow2");
	struct blk_create_opts co = {.format = BLK_FMT_QCOW2, .size = DISK, .cluster_size = 4096};
	assert_int_equal(blk_create(path, &co), 0);
	struct blk *b = open_image(path, BLK_FMT_QCOW2, BLK_CACHE_WRITEBACK, false);
	struct blk_aio *a = uring_or_skip(b);
	enum { BATCH = 16, SLOT = DISK / BATCH, MAXLEN = 3 * 4096 };
	static uint8_t model[DISK], bufs[BATCH][MAXLEN];
	static struct treq t[BATCH];
	uint64_t seed = 12345;
	for (unsigned round = 0; round < 300; round++) {
		for (unsigned i = 0; i < BATCH; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			unsigned len = 1 + (unsigned)(seed >> 20) % MAXLEN;
			uint64_t off = (uint64_t)i * SLOT + (seed >> 40) % (SLOT - MAXLEN);
			unsigned kind = (unsigned)(seed >> 8) % 8; /* mostly reads and writes */
			enum blk_aio_op op = kind < 3	? BLK_AIO_READ
					     : kind < 6 ? BLK_AIO_WRITE
					     : kind < 7 ? BLK_AIO_DISCARD
							: BLK_AIO_WRITE_ZEROES;
			treq_init(&t[i], op, off);
			if (op == BLK_AIO_READ || op == BLK_AIO_WRITE) {
				if (op == BLK_AIO_WRITE)
					for (unsigned k = 0; k < len; k++)
						bufs[i][k] = (uint8_t)(round + i + k * 3);
				t[i].iov[0] = (struct iovec){bufs[i], len};
				t[i].r.iovcnt = 1;
			} else {
				t[i].r.len = len;
			}
			blk_aio_submit(a, &t[i].r);
		}
		blk_aio_kick(a);
		wait_all(a, t, BATCH);
		for (unsigned i = 0; i < BATCH; i++) {
			struct blk_aio_req *r = &t[i].r;
			assert_int_equal(t[i].ret, 0);
			if (r->op == BLK_AIO_READ)
				assert_memory_equal(bufs[i], model + r->off, r->len);
			else if (r->op == BLK_AIO_WRITE)
				memcpy(model + r->off, bufs[i], r->len);
			else
				memset(model + r->off, 0, r->len); /* both read back as zeros */
		}
	}
	struct blk_aio_stats st;
	blk_aio_get_stats(a, &st);
	assert_true(st.mapped > 0); /* the io_uring carried some of the reads and writes */
	assert_true(st.sync > 0);
	blk_aio_free(a);
	static uint8_t all[DISK];
	assert_int_equal(blk_pread(b, 0, all, DISK), 0);
	assert_memory_equal(all, model, DISK);
	struct blk_check_result cr;
	assert_int_equal(blk_check(b, 0, &cr), 0);
	assert_int_equal(cr.corruptions, 0);
	assert_int_equal(cr.leaks, 0);
	blk_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(many_in_flight),	    cmocka_unit_test(depth_limit),
	    cmocka_unit_test(direct_unaligned),	    cmocka_unit_test(short_read_eof),
	    cmocka_unit_test(host_write_error),	    cmocka_unit_test(refused),
	    cmocka_unit_test(flush_discard_zeroes), cmocka_unit_test(sync_fallback),
	    cmocka_unit_test(qcow2_mapped),	    cmocka_unit_test(qcow2_mapped_random),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

/* Asynchronous block I/O over io_uring, with a synchronous fallback (see include/block/aio.h).
 *
 * io_uring: io_uring_setup(2), io_uring_enter(2), liburing's io_uring_prep_readv/writev/fsync,
 * io_uring_register_eventfd. The ring has DEPTH submission entries and (the kernel's default)
 * twice as many completion entries; at most DEPTH requests are in flight, and each has at most
 * one entry in the ring at a time, so the completion queue can never overflow.
 *
 * Every request counts as in flight from blk_aio_submit() until its done() callback, whichever
 * way it is served, so blk_aio_drain() has one thing to wait for.
 */
#include <errno.h>
#include <liburing.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define LOG_SUBSYS "block-aio"
#include "util/log.h"
#include "block/aio.h"
#include "block/driver.h"

#define MAX_DEPTH 4096u

struct blk_aio {
	struct blk *blk;
	bool uring;
	struct io_uring ring;
	int efd; /* signalled by the kernel for each completion */
	struct blk_aio_file file;
	unsigned depth;
	unsigned inflight;
	unsigned queued; /* prepared entries the kernel has not been given yet */
	bool submit_warned;
	struct blk_aio_stats stats;
};

static void drain_to(struct blk_aio *a, unsigned level);

static const char *op_name(enum blk_aio_op op)
{
	switch (op) {
	case BLK_AIO_READ:
		return "read";
	case BLK_AIO_WRITE:
		return "write";
	case BLK_AIO_FLUSH:
		return "flush";
	case BLK_AIO_DISCARD:
		return "discard";
	case BLK_AIO_WRITE_ZEROES:
		return "write-zeroes";
	}
	return "?";
}

int blk_aio_new(struct blk *b, unsigned depth, unsigned flags, struct blk_aio **out)
{
	struct blk_aio *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->blk = b;
	a->efd = -1;
	a->depth = depth ? depth : BLK_AIO_DEFAULT_DEPTH;
	if (a->depth > MAX_DEPTH)
		a->depth = MAX_DEPTH;
	*out = a;
	if (flags & BLK_AIO_FORCE_SYNC)
		return 0;
	if (!b->drv->aio_file || b->drv->aio_file(b, &a->file) < 0 ||
	    (a->file.mapped && !b->drv->aio_map)) {
		log_debug("%s: format %s has no asynchronous path: synchronous I/O", b->path,
			  b->drv->name);
		return 0;
	}
	int ret = io_uring_queue_init(a->depth, &a->ring, 0);
	if (ret < 0) {
		log_info("%s: io_uring is unavailable (%s): synchronous I/O", b->path,
			 strerror(-ret));
		return 0;
	}
	a->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ret = a->efd < 0 ? -errno : io_uring_register_eventfd(&a->ring, a->efd);
	if (ret < 0) {
		log_info("%s: cannot get io_uring completion events (%s): synchronous I/O", b->path,
			 strerror(-ret));
		if (a->efd >= 0)
			close(a->efd);
		a->efd = -1;
		io_uring_queue_exit(&a->ring);
		return 0;
	}
	a->uring = true;
	log_debug("%s: io_uring with %u entries%s", b->path, a->depth,
		  a->file.direct ? ", O_DIRECT" : "");
	return 0;
}

void blk_aio_free(struct blk_aio *a)
{
	if (!a)
		return;
	blk_aio_drain(a);
	if (a->uring) {
		io_uring_queue_exit(&a->ring);
		close(a->efd);
	}
	free(a);
}

int blk_aio_fd(const struct blk_aio *a)
{
	return a->uring ? a->efd : -1;
}

bool blk_aio_uses_uring(const struct blk_aio *a)
{
	return a->uring;
}

bool blk_aio_full(const struct blk_aio *a)
{
	return a->inflight >= a->depth;
}

unsigned blk_aio_inflight(const struct blk_aio *a)
{
	return a->inflight;
}

void blk_aio_get_stats(const struct blk_aio *a, struct blk_aio_stats *st)
{
	*st = a->stats;
}

/* --- completion ---------------------------------------------------------------------------- */

static void finish(struct blk_aio *a, struct blk_aio_req *r, int ret)
{
	if (r->bounce) {
		if (ret == 0 && r->op == BLK_AIO_READ) {
			const uint8_t *src = (const uint8_t *)r->bounce + r->bounce_skip;
			for (unsigned i = 0; i < r->iovcnt; i++) {
				memcpy(r->iov[i].iov_base, src, r->iov[i].iov_len);
				src += r->iov[i].iov_len;
			}
		}
		free(r->bounce);
		r->bounce = NULL;
	}
	if (ret < 0 && r->io_iov) /* the synchronous path leaves the driver's own message */
		blk_set_error("%s: %s of %llu bytes at offset %llu failed: %s", a->blk->path,
			      op_name(r->op), (unsigned long long)r->len,
			      (unsigned long long)r->off, strerror(-ret));
	a->inflight--;
	r->done(r, ret);
}

/* --- synchronous path ---------------------------------------------------------------------- */

static int sync_rw(struct blk *b, struct blk_aio_req *r)
{
	uint64_t pos = r->off;
	for (unsigned i = 0; i < r->iovcnt; i++) {
		int ret = r->op == BLK_AIO_READ
			      ? blk_pread(b, pos, r->iov[i].iov_base, r->iov[i].iov_len)
			      : blk_pwrite(b, pos, r->iov[i].iov_base, r->iov[i].iov_len);
		if (ret < 0)
			return ret;
		pos += r->iov[i].iov_len;
	}
	return 0;
}

static void serve_sync(struct blk_aio *a, struct blk_aio_req *r)
{
	struct blk *b = a->blk;
	int ret = 0;
	a->stats.sync++;
	blk_clear_error();
	switch (r->op) {
	case BLK_AIO_READ:
	case BLK_AIO_WRITE:
		ret = sync_rw(b, r);
		break;
	case BLK_AIO_FLUSH:
		ret = blk_flush(b);
		break;
	case BLK_AIO_DISCARD:
		ret = blk_discard(b, r->off, r->len);
		break;
	case BLK_AIO_WRITE_ZEROES:
		ret = blk_write_zeroes(b, r->off, r->len, r->flags);
		break;
	}
	if (ret < 0 && !blk_last_error()[0])
		blk_set_error("%s: %s of %llu bytes at offset %llu failed: %s", b->path,
			      op_name(r->op), (unsigned long long)r->len,
			      (unsigned long long)r->off, strerror(-ret));
	finish(a, r, ret);
}

/* --- io_uring path ------------------------------------------------------------------------- */

/* Puts R's next transfer in the submission queue; false if there is no room at all. */
static bool queue_sqe(struct blk_aio *a, struct blk_aio_req *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);
	if (!sqe) {
		blk_aio_kick(a);
		sqe = io_uring_get_sqe(&a->ring);
		if (!sqe)
			return false;
	}
	switch (r->op) {
	case BLK_AIO_READ:
		io_uring_prep_readv(sqe, a->file.fd, r->io_iov, r->io_iovcnt,
				    r->io_off + r->io_done);
		break;
	case BLK_AIO_WRITE:
		io_uring_prep_writev(sqe, a->file.fd, r->io_iov, r->io_iovcnt,
				     r->io_off + r->io_done);
		break;
	default:
		io_uring_prep_fsync(sqe, a->file.fd, IORING_FSYNC_DATASYNC);
		break;
	}
	io_uring_sqe_set_data(sqe, r);
	a->queued++;
	return true;
}

static bool iov_aligned(const struct blk_aio_file *f, const struct blk_aio_req *r)
{
	if ((r->io_off | r->len) & (f->off_align - 1))
		return false;
	for (unsigned i = 0; i < r->iovcnt; i++)
		if (((uintptr_t)r->iov[i].iov_base | r->iov[i].iov_len) & (f->mem_align - 1))
			return false;
	return true;
}

/* O_DIRECT with unaligned memory or an unaligned range: read the covering aligned range into
 * an aligned buffer (copied out in finish()), or write whole blocks from one. Returns false
 * when the request must be served synchronously instead (a partial-block write needs
 * read-modify-write, which the driver does under its lock; or no memory). */
static bool setup_bounce(struct blk_aio *a, struct blk_aio_req *r)
{
	uint64_t align =
	    a->file.off_align > a->file.mem_align ? a->file.off_align : a->file.mem_align;
	uint64_t at = r->io_off; /* where the bytes are in the file */
	uint64_t start = at & ~(align - 1);
	uint64_t end = (at + r->len + align - 1) & ~(align - 1);
	if (r->op == BLK_AIO_WRITE && (start != at || end != at + r->len))
		return false;
	void *buf;
	if (posix_memalign(&buf, align, end - start))
		return false;
	if (r->op == BLK_AIO_WRITE) {
		uint8_t *dst = buf;
		for (unsigned i = 0; i < r->iovcnt; i++) {
			memcpy(dst, r->iov[i].iov_base, r->iov[i].iov_len);
			dst += r->iov[i].iov_len;
		}
	}
	r->bounce = buf;
	r->bounce_skip = at - start;
	r->bounce_iov = (struct iovec){.iov_base = buf, .iov_len = end - start};
	r->io_iov = &r->bounce_iov;
	r->io_iovcnt = 1;
	r->io_off = start;
	r->io_len = end - start;
	a->stats.bounced++;
	return true;
}

static int check_request(struct blk_aio *a, struct blk_aio_req *r)
{
	struct blk *b = a->blk;
	if (r->op == BLK_AIO_READ || r->op == BLK_AIO_WRITE) {
		uint64_t len = 0;
		for (unsigned i = 0; i < r->iovcnt; i++)
			len += r->iov[i].iov_len;
		r->len = len;
	}
	if (r->op == BLK_AIO_FLUSH)
		return 0;
	if (r->op != BLK_AIO_READ && b->readonly) {
		blk_set_error("%s: image is open read-only", b->path);
		return -EROFS;
	}
	if (r->off > b->size || r->len > b->size - r->off) {
		blk_set_error("%s: request at %llu+%llu is past the end of the disk (%llu bytes)",
			      b->path, (unsigned long long)r->off, (unsigned long long)r->len,
			      (unsigned long long)b->size);
		return -EINVAL;
	}
	return 0;
}

/* Where R's bytes are in the mapped file: 1 and *AT when in one run of data clusters that R
 * can read, or overwrite in place; 0 when the driver must serve R itself; -errno. */
static int mapped_at(struct blk_aio *a, struct blk_aio_req *r, uint64_t *at)
{
	struct blk *b = a->blk;
	return b->drv->aio_map(b, r->op == BLK_AIO_WRITE, r->off, r->len, at);
}

void blk_aio_submit(struct blk_aio *a, struct blk_aio_req *r)
{
	r->io_iov = NULL;
	r->io_iovcnt = 0;
	r->io_done = 0;
	r->bounce = NULL;
	a->inflight++;
	blk_clear_error();
	int ret = check_request(a, r);
	if (ret < 0) {
		finish(a, r, ret);
		return;
	}
	if (!a->uring) {
		serve_sync(a, r);
		return;
	}
	if (r->op == BLK_AIO_DISCARD || r->op == BLK_AIO_WRITE_ZEROES) {
		/* On a mapped file these may free clusters that requests in flight still read or
		 * write (and the clusters could be reused for metadata): let those finish first. */
		if (a->file.mapped)
			drain_to(a, 1);
		serve_sync(a, r);
		return;
	}
	if (r->op == BLK_AIO_FLUSH && a->file.mapped) {
		serve_sync(a, r); /* the driver writes back its metadata, then syncs */
		return;
	}
	if (r->op == BLK_AIO_FLUSH && (a->file.flush_noop || a->blk->readonly)) {
		finish(a, r, 0);
		return;
	}
	if ((r->op == BLK_AIO_READ || r->op == BLK_AIO_WRITE) && r->len == 0) {
		finish(a, r, 0);
		return;
	}
	uint64_t at = r->off;
	if (a->file.mapped) {
		/* A format driver: its flush also writes back cached metadata, and only data
		 * already in place (no allocation, copy-on-write or backing file) goes around it. */
		int m = mapped_at(a, r, &at);
		if (m <= 0) {
			if (m < 0) {
				finish(a, r, m);
				return;
			}
			serve_sync(a, r);
			return;
		}
		a->stats.mapped++;
	}
	r->io_iov = r->iov;
	r->io_iovcnt = r->iovcnt;
	r->io_off = at;
	r->io_len = r->len;
	if (r->op != BLK_AIO_FLUSH && a->file.direct && !iov_aligned(&a->file, r) &&
	    !setup_bounce(a, r)) {
		r->io_iov = NULL;
		serve_sync(a, r);
		return;
	}
	if (!queue_sqe(a, r)) {
		if (r->bounce) {
			free(r->bounce);
			r->bounce = NULL;
		}
		r->io_iov = NULL;
		serve_sync(a, r);
		return;
	}
	a->stats.uring++;
	if (a->inflight > a->stats.max_inflight)
		a->stats.max_inflight = a->inflight;
}

void blk_aio_kick(struct blk_aio *a)
{
	if (!a->uring || !a->queued)
		return;
	int ret = io_uring_submit(&a->ring);
	if (ret >= 0) {
		a->queued = (unsigned)ret >= a->queued ? 0 : a->queued - (unsigned)ret;
		return;
	}
	/* The entries stay in the submission queue; the next kick (or drain) retries. */
	if (!a->submit_warned && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
		log_warn("%s: io_uring submission failed: %s", a->blk->path, strerror(-ret));
	a->submit_warned = true;
}

/* Skips N transferred bytes of R's kernel-side iovec (after a short transfer). */
static void advance(struct blk_aio_req *r, uint64_t n)
{
	while (n && r->io_iovcnt) {
		struct iovec *v = r->io_iov;
		if (n < v->iov_len) {
			v->iov_base = (uint8_t *)v->iov_base + n;
			v->iov_len -= n;
			return;
		}
		n -= v->iov_len;
		r->io_iov++;
		r->io_iovcnt--;
	}
}

static void zero_rest(struct blk_aio_req *r)
{
	for (unsigned i = 0; i < r->io_iovcnt; i++)
		memset(r->io_iov[i].iov_base, 0, r->io_iov[i].iov_len);
}

static void requeue(struct blk_aio *a, struct blk_aio_req *r)
{
	if (!queue_sqe(a, r))
		finish(a, r, -EAGAIN); /* cannot happen: this request's own entry was freed */
}

static void complete_cqe(struct blk_aio *a, struct blk_aio_req *r, int res)
{
	if (res == -EINTR || res == -EAGAIN) {
		requeue(a, r);
		return;
	}
	if (res < 0 || r->op == BLK_AIO_FLUSH) {
		finish(a, r, res < 0 ? res : 0);
		return;
	}
	uint64_t n = (uint64_t)res, left = r->io_len - r->io_done;
	if (n > left)
		n = left;
	r->io_done += n;
	if (r->io_done == r->io_len) {
		finish(a, r, 0);
		return;
	}
	advance(r, n);
	if (n == 0) {
		/* End of file: reads see zeros there; a write that cannot progress fails. */
		if (r->op == BLK_AIO_READ) {
			zero_rest(r);
			finish(a, r, 0);
		} else {
			finish(a, r, -EIO);
		}
		return;
	}
	a->stats.resubmitted++;
	requeue(a, r);
}

unsigned blk_aio_poll(struct blk_aio *a)
{
	if (!a->uring)
		return 0;
	uint64_t v;
	/* Reset the eventfd first: a completion posted after this signals it again. */
	if (read(a->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("%s: reading the completion eventfd: %s", a->blk->path, strerror(errno));
	unsigned n = 0;
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&a->ring, &cqe) == 0) {
		struct blk_aio_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&a->ring, cqe);
		n++;
		if (r)
			complete_cqe(a, r, res);
	}
	blk_aio_kick(a); /* resubmitted short transfers */
	return n;
}

/* Waits until at most LEVEL requests are in flight (the caller's own, counted since submit). */
static void drain_to(struct blk_aio *a, unsigned level)
{
	while (a->uring && a->inflight > level) {
		int ret = io_uring_submit_and_wait(&a->ring, 1);
		if (ret >= 0)
			a->queued = 0;
		else if (ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			log_warn("%s: waiting for %u requests in flight: %s", a->blk->path,
				 a->inflight, strerror(-ret));
			usleep(1000);
		}
		blk_aio_poll(a);
	}
}

void blk_aio_drain(struct blk_aio *a)
{
	drain_to(a, 0);
}

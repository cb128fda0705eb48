/* Asynchronous block I/O: many requests in flight on one disk, completed as they finish.
 *
 * A `struct blk_aio` is a submission context for one open image, used by one thread at a time
 * (virtio-blk: its iothread, or whoever holds the device lock). For drivers that keep the
 * disk's bytes in one host file (raw), reads, writes and flushes go to the kernel through an
 * io_uring (liburing): READV/WRITEV/FSYNC(DATASYNC), one submission for a whole batch, and an
 * eventfd that becomes readable when completions wait. A format driver (qcow2) can take part
 * too: reads and writes of data that is already in place in its file (allocated, not shared,
 * not compressed, one contiguous run) go through the io_uring at the offset the driver maps
 * them to; the rest (allocating writes, copy-on-write, backing files, compressed clusters) and
 * its flushes (which write back cached metadata) it serves itself. Everything else is served
 * synchronously through the block layer (block/block.h) and completed before blk_aio_submit()
 * returns: discard and write-zeroes (fallocate; on a format driver only once the requests in
 * flight have finished, as clusters may be freed), drivers without an async path, and every
 * request when io_uring is unavailable (old kernel, seccomp, io_uring_disabled) or not wanted.
 *
 * With cache=none (O_DIRECT) buffers, offsets and lengths must be aligned to the file's
 * direct-I/O alignment: an unaligned request is bounced through an aligned buffer (reads, and
 * writes of whole blocks from unaligned memory) or, for a write that covers part of a block,
 * served synchronously by the driver's read-modify-write.
 *
 * Short transfers are resubmitted for the rest; a read that meets the end of the file reads
 * zeros there (as blk_pread does); a write that makes no progress fails with -EIO. A failed
 * request leaves its message in blk_last_error() on the completing thread.
 */
#ifndef KESTREL_BLOCK_AIO_H
#define KESTREL_BLOCK_AIO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block/block.h"

enum blk_aio_op {
	BLK_AIO_READ,
	BLK_AIO_WRITE,
	BLK_AIO_FLUSH,
	BLK_AIO_DISCARD,
	BLK_AIO_WRITE_ZEROES,
};

struct blk_aio;
struct blk_aio_req;

/* RET: 0 or -errno. Called on the thread that polls (or submits, for synchronous requests);
 * the request and its buffers belong to the caller again. */
typedef void blk_aio_done_fn(struct blk_aio_req *req, int ret);

struct blk_aio_req {
	/* Filled in by the caller; iov must stay valid until completion and its entries may be
	 * advanced in place (after a short transfer). */
	enum blk_aio_op op;
	uint64_t off;	   /* bytes */
	uint64_t len;	   /* DISCARD, WRITE_ZEROES: bytes; READ, WRITE: set from iov */
	struct iovec *iov; /* READ, WRITE */
	unsigned iovcnt;
	unsigned flags; /* WRITE_ZEROES: BLK_ZERO_MAY_UNMAP */
	blk_aio_done_fn *done;

	/* Private to block/aio.c */
	struct iovec *io_iov; /* what the kernel is given: iov, or bounce_iov */
	unsigned io_iovcnt;
	uint64_t io_off, io_len, io_done;
	void *bounce;
	uint64_t bounce_skip; /* where the request's bytes start in the bounce buffer */
	struct iovec bounce_iov;
};

/* Counters for tests and -v logs. */
struct blk_aio_stats {
	uint64_t uring;	      /* requests that went through the io_uring */
	uint64_t mapped;      /* of those, reads and writes placed by the format driver (qcow2) */
	uint64_t sync;	      /* requests served synchronously */
	uint64_t bounced;     /* O_DIRECT requests bounced through an aligned buffer */
	uint64_t resubmitted; /* short transfers continued */
	unsigned max_inflight;
};

#define BLK_AIO_DEFAULT_DEPTH 256u
#define BLK_AIO_FORCE_SYNC    1u /* do not use io_uring even where it works */

/* Creates the context for B with room for DEPTH requests in flight (0: the default). Never
 * fails for lack of io_uring (it falls back, with one log_info line); -ENOMEM only. */
int blk_aio_new(struct blk *b, unsigned depth, unsigned flags, struct blk_aio **out)
    __attribute__((warn_unused_result));
/* Waits for the requests in flight (completing them), then frees. */
void blk_aio_free(struct blk_aio *a);

/* Starts REQ. It may complete (REQ->done called) before this returns. Requests handed to the
 * io_uring wait in its submission queue until blk_aio_kick(). */
void blk_aio_submit(struct blk_aio *a, struct blk_aio_req *req);
/* Hands every queued request to the kernel. */
void blk_aio_kick(struct blk_aio *a);
/* Completes the requests that have finished; returns how many. Never blocks. */
unsigned blk_aio_poll(struct blk_aio *a);
/* Kicks, then waits until nothing is in flight, completing everything. */
void blk_aio_drain(struct blk_aio *a);

/* An eventfd readable when completions wait (poll it, then call blk_aio_poll); -1 when every
 * request completes synchronously. */
int blk_aio_fd(const struct blk_aio *a);
bool blk_aio_uses_uring(const struct blk_aio *a);
/* No room for another request until some complete (the caller should stop submitting). */
bool blk_aio_full(const struct blk_aio *a);
unsigned blk_aio_inflight(const struct blk_aio *a);
void blk_aio_get_stats(const struct blk_aio *a, struct blk_aio_stats *st);

#endif

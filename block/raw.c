/* Raw image driver: the disk is the file, byte for byte. Also the "file" layer under
 * qcow2. Uses pread/pwrite on one fd (no lock, so I/O threads run in parallel); with
 * cache=none the fd is O_DIRECT and unaligned requests go through aligned bounce buffers
 * (read-modify-write for writes). The alignment O_DIRECT needs comes from statx(2)
 * STATX_DIOALIGN (Linux 6.1), else 4096, which every device accepts. Holes are found with
 * SEEK_DATA/SEEK_HOLE (lseek(2)) and made with fallocate(2) PUNCH_HOLE. The fd is also handed to
 * block/aio.c, which reads and writes it through io_uring. Creation preallocates as qemu
 * does: falloc with posix_fallocate(3), full by writing zeros.
 *
 * Image locking, compatible with QEMU's (its block/file-posix.c describes the scheme): the
 * open file description holds OFD read locks on single bytes of the file, byte 100 + i for
 * each permission i it uses and byte 200 + i for each permission it does not let others
 * have; permissions are bit 0 consistent read, 1 write, 2 write unchanged, 3 resize. An
 * open first takes its bytes, then looks (F_OFD_GETLK) for another holder of 200 + i for
 * a permission it uses, or of 100 + i for one it does not share: either is a conflict and
 * the open fails with -EAGAIN. A reader uses read and shares neither write nor resize (as
 * qemu-img info); a writer uses read, write and resize and shares neither (as a running
 * QEMU); a force-share (-U) reader only uses read. File systems without OFD locks go
 * without. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_SUBSYS "raw"
#include "util/log.h"
#include "block/driver.h"

#define RAW_DIRECT_ALIGN 4096u /* when the kernel does not say */

#define LOCK_PERM_BASE	 100
#define LOCK_SHARED_BASE 200
#define PERM_READ	 1u /* consistent read */
#define PERM_WRITE	 2u
#define PERM_RESIZE	 8u
#define PERM_BITS	 4

static const char *const perm_name[PERM_BITS] = {"consistent read", "write", "write unchanged",
						 "resize"};

static int lock_byte(int fd, off_t byte)
{
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* 1 if another open file description holds a lock on BYTE, 0 if not, or -errno. */
static int byte_held(int fd, off_t byte)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = byte, .l_len = 1};
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

/* Takes FD's image locks (see the top of the file); -EAGAIN with a message on a conflict. */
static int image_lock(int fd, const char *path, bool readonly, bool share)
{
	unsigned perm = readonly ? PERM_READ : PERM_READ | PERM_WRITE | PERM_RESIZE;
	unsigned unshared = share ? 0 : PERM_WRITE | PERM_RESIZE;
	int ret = 0;
	for (int i = 0; i < PERM_BITS && ret == 0; i++) {
		if (perm & (1u << i))
			ret = lock_byte(fd, LOCK_PERM_BASE + i);
		if (ret == 0 && (unshared & (1u << i)))
			ret = lock_byte(fd, LOCK_SHARED_BASE + i);
	}
	if (ret == -EINVAL || ret == -ENOTSUP || ret == -ENOLCK) {
		log_debug("%s: no OFD locks on this file system (%s): not locked", path,
			  strerror(-ret));
		return 0;
	}
	for (int i = 0; i < PERM_BITS && ret == 0; i++) {
		const char *shared = NULL;
		if ((perm & (1u << i)) && byte_held(fd, LOCK_SHARED_BASE + i) > 0)
			shared = "";
		else if ((unshared & (1u << i)) && byte_held(fd, LOCK_PERM_BASE + i) > 0)
			shared = "shared ";
		if (!shared)
			continue;
		blk_set_error("%s: failed to get %s\"%s\" lock: is another process (a running VM, "
			      "qemu-img) using the image?%s",
			      path, shared, perm_name[i],
			      readonly && !share ? " (-U reads it anyway)" : "");
		ret = -EAGAIN;
	}
	return ret;
}

struct raw {
	int fd;
	bool direct;
	bool is_blockdev;
	unsigned mem_align, off_align; /* O_DIRECT: buffers; offsets and lengths */
	pthread_mutex_t rmw_lock;      /* unaligned O_DIRECT writes only */
};

static bool is_aligned(const struct raw *r, uint64_t off, const void *buf, size_t len)
{
	return ((off | len) & (r->off_align - 1)) == 0 &&
	       ((uintptr_t)buf & (r->mem_align - 1)) == 0 && (len & (r->mem_align - 1)) == 0;
}

/* The alignments O_DIRECT needs on FD: powers of two, at least 512. */
static void direct_alignment(int fd, unsigned *mem, unsigned *off)
{
	struct statx sx;
	*mem = *off = RAW_DIRECT_ALIGN;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) < 0 ||
	    !(sx.stx_mask & STATX_DIOALIGN) || !sx.stx_dio_offset_align)
		return;
	unsigned m = sx.stx_dio_mem_align, o = sx.stx_dio_offset_align;
	if ((m & (m - 1)) || (o & (o - 1)) || o > (1u << 20) || m > (1u << 20))
		return;
	*mem = m < 512 ? 512 : m;
	*off = o < 512 ? 512 : o;
}

/* Full read; bytes past the end of the file read as zeros. */
static int full_pread(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int full_pwrite(int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int raw_pread(struct blk *b, uint64_t off, void *buf, size_t len)
{
	struct raw *r = b->opaque;
	if (!r->direct || is_aligned(r, off, buf, len))
		return full_pread(r->fd, buf, len, off);
	uint64_t a = r->off_align > r->mem_align ? r->off_align : r->mem_align;
	uint64_t start = off & ~(a - 1);
	uint64_t end = (off + len + a - 1) & ~(a - 1);
	void *bounce;
	if (posix_memalign(&bounce, a, end - start))
		return -ENOMEM;
	int ret = full_pread(r->fd, bounce, end - start, start);
	if (ret == 0)
		memcpy(buf, (uint8_t *)bounce + (off - start), len);
	free(bounce);
	return ret;
}

static int raw_pwrite(struct blk *b, uint64_t off, const void *buf, size_t len)
{
	struct raw *r = b->opaque;
	int ret;
	if (!r->direct || is_aligned(r, off, buf, len))
		return full_pwrite(r->fd, buf, len, off);
	uint64_t a = r->off_align > r->mem_align ? r->off_align : r->mem_align;
	uint64_t start = off & ~(a - 1);
	uint64_t end = (off + len + a - 1) & ~(a - 1);
	void *bounce;
	if (posix_memalign(&bounce, a, end - start))
		return -ENOMEM;
	pthread_mutex_lock(&r->rmw_lock);
	if (start != off || (off + len) != end)
		ret = full_pread(r->fd, bounce, end - start, start);
	else
		ret = 0;
	if (ret == 0) {
		memcpy((uint8_t *)bounce + (off - start), buf, len);
		ret = full_pwrite(r->fd, bounce, end - start, start);
	}
	pthread_mutex_unlock(&r->rmw_lock);
	free(bounce);
	return ret;
}

static int raw_flush(struct blk *b)
{
	struct raw *r = b->opaque;
	if (b->cache == BLK_CACHE_UNSAFE)
		return 0;
	if (fdatasync(r->fd) < 0)
		return -errno;
	return 0;
}

/* Zeros over [OFF, OFF+LEN): through B (which handles O_DIRECT alignment) when given, else
 * with plain pwrites on FD (a file being created, not open as a blk yet). */
static int write_zero_buf(struct blk *b, int fd, uint64_t off, uint64_t len)
{
	size_t chunk = 1 << 20;
	void *z;
	if (posix_memalign(&z, RAW_DIRECT_ALIGN, chunk))
		return -ENOMEM;
	memset(z, 0, chunk);
	int ret = 0;
	while (len && ret == 0) {
		size_t n = len < chunk ? (size_t)len : chunk;
		ret = b ? raw_pwrite(b, off, z, n) : full_pwrite(fd, z, n, off);
		off += n;
		len -= n;
	}
	free(z);
	return ret;
}

static int raw_write_zeroes(struct blk *b, uint64_t off, uint64_t len, unsigned flags)
{
	struct raw *r = b->opaque;
	if (!r->is_blockdev) {
		int mode = (flags & BLK_ZERO_MAY_UNMAP) ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
							: FALLOC_FL_ZERO_RANGE;
		if (fallocate(r->fd, mode, (off_t)off, (off_t)len) == 0)
			return 0;
		if (mode == FALLOC_FL_ZERO_RANGE &&
		    fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			      (off_t)len) == 0)
			return 0;
	}
	return write_zero_buf(b, -1, off, len);
}

static int raw_discard(struct blk *b, uint64_t off, uint64_t len)
{
	return raw_write_zeroes(b, off, len, BLK_ZERO_MAY_UNMAP);
}

static uint64_t fd_length(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return 0;
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz = 0;
		if (ioctl(fd, BLKGETSIZE64, &sz) < 0)
			return 0;
		return sz;
	}
	return (uint64_t)st.st_size;
}

uint64_t blk_raw_file_length(struct blk *b)
{
	struct raw *r = b->opaque;
	return fd_length(r->fd);
}

uint64_t blk_raw_allocated(struct blk *b)
{
	struct raw *r = b->opaque;
	struct stat st;
	if (fstat(r->fd, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

int blk_raw_truncate(struct blk *b, uint64_t len)
{
	struct raw *r = b->opaque;
	if (r->is_blockdev)
		return len <= fd_length(r->fd) ? 0 : -ENOSPC;
	if (ftruncate(r->fd, (off_t)len) < 0)
		return -errno;
	return 0;
}

static int raw_resize(struct blk *b, uint64_t new_size)
{
	int ret = blk_raw_truncate(b, new_size);
	if (ret < 0) {
		blk_set_error("%s: cannot resize: %s", b->path, strerror(-ret));
		return ret;
	}
	b->size = new_size;
	return 0;
}

static int raw_block_status(struct blk *b, uint64_t off, uint64_t len, struct blk_status *st)
{
	struct raw *r = b->opaque;
	st->len = len;
	st->flags = BLK_STATUS_ALLOCATED | BLK_STATUS_DATA | BLK_STATUS_OFFSET;
	st->host_offset = off;
	if (r->is_blockdev)
		return 0;
	off_t data = lseek(r->fd, (off_t)off, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO) { /* a hole up to the end of the file */
			st->flags = BLK_STATUS_ALLOCATED | BLK_STATUS_ZERO;
			return 0;
		}
		return 0; /* SEEK_DATA unsupported: everything is data */
	}
	if ((uint64_t)data > off) {
		uint64_t n = (uint64_t)data - off;
		st->len = n < len ? n : len;
		st->flags = BLK_STATUS_ALLOCATED | BLK_STATUS_ZERO;
		return 0;
	}
	off_t hole = lseek(r->fd, (off_t)off, SEEK_HOLE);
	if (hole > (off_t)off) {
		uint64_t n = (uint64_t)hole - off;
		st->len = n < len ? n : len;
	}
	return 0;
}

static int raw_get_info(struct blk *b, struct blk_info *info)
{
	info->disk_size = blk_raw_allocated(b);
	info->file_length = blk_raw_file_length(b);
	return 0;
}

static int raw_open(struct blk *b, const struct blk_open_opts *o, int depth)
{
	int flags = (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	if (o->cache == BLK_CACHE_NONE)
		flags |= O_DIRECT;
	int fd = open(b->path, flags);
	if (fd < 0) {
		int e = errno;
		blk_set_error("%s: cannot open: %s", b->path, strerror(e));
		return -e;
	}
	int ret = image_lock(fd, b->path, o->readonly, o->force_share);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	struct raw *r = calloc(1, sizeof(*r));
	if (!r) {
		close(fd);
		return -ENOMEM;
	}
	struct stat st;
	if (fstat(fd, &st) == 0)
		r->is_blockdev = S_ISBLK(st.st_mode);
	r->fd = fd;
	r->direct = o->cache == BLK_CACHE_NONE;
	r->mem_align = r->off_align = 1;
	if (r->direct)
		direct_alignment(fd, &r->mem_align, &r->off_align);
	pthread_mutex_init(&r->rmw_lock, NULL);
	b->opaque = r;
	b->size = fd_length(fd);
	return 0;
}

static void raw_close(struct blk *b)
{
	struct raw *r = b->opaque;
	if (!r)
		return;
	close(r->fd);
	pthread_mutex_destroy(&r->rmw_lock);
	free(r);
	b->opaque = NULL;
}

/* See blk_raw_preallocate(). */
static int fd_preallocate(int fd, const char *path, uint64_t off, uint64_t len,
			  enum blk_prealloc mode)
{
	int ret = 0;
	if (mode == BLK_PREALLOC_FALLOC) {
		/* posix_fallocate: where the file system has no fallocate, glibc writes */
		ret = -posix_fallocate(fd, (off_t)off, (off_t)len);
	} else if (mode == BLK_PREALLOC_FULL) {
		ret = write_zero_buf(NULL, fd, off, len);
	}
	if (ret < 0)
		blk_set_error("%s: cannot preallocate: %s", path, strerror(-ret));
	return ret;
}

int blk_raw_preallocate(struct blk *b, uint64_t off, uint64_t len, enum blk_prealloc mode)
{
	struct raw *r = b->opaque;
	return fd_preallocate(r->fd, b->path, off, len, mode);
}

static int raw_create(const char *path, const struct blk_create_opts *o)
{
	if (o->backing_file) {
		blk_set_error("%s: raw images cannot have a backing file", path);
		return -EINVAL;
	}
	if (o->prealloc == BLK_PREALLOC_METADATA) {
		blk_set_error("%s: preallocation=metadata is for qcow2 images only (raw: off, "
			      "falloc, full)",
			      path);
		return -EINVAL;
	}
	/* Not O_TRUNC: an image someone holds must not be emptied under them. */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		blk_set_error("%s: cannot create: %s", path, strerror(e));
		return -e;
	}
	int ret = image_lock(fd, path, false, false);
	if (ret == 0 && (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)o->size) < 0)) {
		ret = -errno;
		blk_set_error("%s: cannot set size: %s", path, strerror(-ret));
	}
	if (ret == 0 && o->size)
		ret = fd_preallocate(fd, path, 0, o->size, o->prealloc);
	close(fd);
	return ret;
}

/* As qemu's raw driver: the disk is the file, so both sizes are the disk size (of the
 * source or as asked), rounded up to whole 512-byte sectors as qemu sees every image. */
static int raw_measure(const struct blk_create_opts *o, struct blk *in, struct blk_measure *m)
{
	uint64_t size = in ? blk_size(in) : o->size;
	if (size > UINT64_MAX - 511) {
		blk_set_error("size too large");
		return -EINVAL;
	}
	size = (size + 511) & ~511ull;
	m->required = m->fully_allocated = size;
	return 0;
}

static int raw_aio_file(struct blk *b, struct blk_aio_file *f)
{
	struct raw *r = b->opaque;
	f->fd = r->fd;
	f->direct = r->direct;
	f->mem_align = r->mem_align;
	f->off_align = r->off_align;
	f->flush_noop = b->cache == BLK_CACHE_UNSAFE;
	return 0;
}

const struct blk_driver blk_raw_driver = {
    .name = "raw",
    .format = BLK_FMT_RAW,
    .open = raw_open,
    .close = raw_close,
    .pread = raw_pread,
    .pwrite = raw_pwrite,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_zeroes = raw_write_zeroes,
    .resize = raw_resize,
    .block_status = raw_block_status,
    .get_info = raw_get_info,
    .create = raw_create,
    .measure = raw_measure,
    .aio_file = raw_aio_file,
};

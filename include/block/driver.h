/* Block layer internals: the driver vtable that block/block.c dispatches to, and the
 * generic handle. Only block/ includes this. */
#ifndef KESTREL_BLOCK_DRIVER_H
#define KESTREL_BLOCK_DRIVER_H

#include <sys/types.h>

#include "block/block.h"

/* What block/aio.c needs to do a driver's reads, writes and flushes itself, with io_uring:
 * the host file that holds the disk's bytes one for one (raw). */
struct blk_aio_file {
	int fd;
	bool direct;	    /* O_DIRECT: buffers, offsets and lengths must be aligned */
	unsigned mem_align; /* buffer address and segment length alignment (direct) */
	unsigned off_align; /* file offset and total length alignment (direct) */
	bool flush_noop;    /* cache=unsafe: flushes succeed without syncing */
	bool mapped;	    /* a format's file: offsets come from the driver's aio_map */
};

struct blk_driver {
	const char *name;
	enum blk_format format;
	/* Returns true if the first bytes of a file look like this format. */
	bool (*probe)(const uint8_t *buf, size_t len);
	int (*open)(struct blk *b, const struct blk_open_opts *o, int depth);
	void (*close)(struct blk *b);
	int (*pread)(struct blk *b, uint64_t off, void *buf, size_t len);
	int (*pwrite)(struct blk *b, uint64_t off, const void *buf, size_t len);
	int (*pwrite_compressed)(struct blk *b, uint64_t off, const void *buf, size_t len);
	int (*flush)(struct blk *b);
	int (*discard)(struct blk *b, uint64_t off, uint64_t len);
	int (*write_zeroes)(struct blk *b, uint64_t off, uint64_t len, unsigned flags);
	int (*resize)(struct blk *b, uint64_t new_size);
	int (*block_status)(struct blk *b, uint64_t off, uint64_t len, struct blk_status *st);
	int (*get_info)(struct blk *b, struct blk_info *info);
	int (*create)(const char *path, const struct blk_create_opts *o);
	/* See blk_measure(); IN may be NULL (then O->size is the disk size). */
	int (*measure)(const struct blk_create_opts *o, struct blk *in, struct blk_measure *m);
	int (*check)(struct blk *b, unsigned fix, struct blk_check_result *r);
	int (*snapshot_list)(struct blk *b, struct blk_snapshot_info **list);
	int (*snapshot_create)(struct blk *b, const char *name);
	int (*snapshot_apply)(struct blk *b, const char *name);
	int (*snapshot_delete)(struct blk *b, const char *name);
	int (*set_backing)(struct blk *b, const char *backing, const char *fmt);
	int (*make_empty)(struct blk *b);
	/* Optional: the file for asynchronous I/O (see struct blk_aio_file); without it, or
	 * when it returns an error, block/aio.c serves requests synchronously. */
	int (*aio_file)(struct blk *b, struct blk_aio_file *f);
	/* With a mapped aio_file: where the LEN bytes at guest offset OFF are in that file, if
	 * they are one run that can be read (WRITE false) or overwritten in place (WRITE true)
	 * without any metadata change: 1 and *HOST set. 0 when the driver must serve the request
	 * itself (unallocated, zero, compressed, shared with a snapshot, in the backing file, or
	 * not contiguous); -errno when the metadata cannot be read. */
	int (*aio_map)(struct blk *b, bool write, uint64_t off, uint64_t len, uint64_t *host);
};

struct blk {
	const struct blk_driver *drv;
	void *opaque;
	char *path;
	bool readonly;
	enum blk_cache cache;
	uint64_t size;	     /* virtual size */
	struct blk *backing; /* owned; NULL if none */
	int depth;	     /* 0 for the image the user opened */
	dev_t dev;
	ino_t ino;
	struct blk *child_of; /* the image that opened this one as backing (loop check) */
};

extern const struct blk_driver blk_raw_driver;
extern const struct blk_driver blk_qcow2_driver;

/* Opens PATH as a backing file (read-only) below PARENT; checks depth and loops. */
int blk_open_backing(struct blk *parent, const char *path, enum blk_format fmt,
		     const struct blk_open_opts *o, struct blk **out);
/* Opens the raw file under a format driver (qcow2's "file" child) with O's readonly,
 * cache and force_share. */
int blk_open_file(const char *path, const struct blk_open_opts *o, struct blk **out);
/* Raw file helpers used by format drivers. */
uint64_t blk_raw_file_length(struct blk *b);
uint64_t blk_raw_allocated(struct blk *b);
int blk_raw_truncate(struct blk *b, uint64_t len);
/* Makes [OFF, OFF+LEN) of the file take space: MODE falloc reserves it (fallocate(2)),
 * full writes zeros over it; the file grows to cover it. Sets blk_set_error on failure. */
int blk_raw_preallocate(struct blk *b, uint64_t off, uint64_t len, enum blk_prealloc mode);

#define BLK_MAX_CHAIN_DEPTH 32

#endif

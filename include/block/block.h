/* Block driver interface: disk images (raw, qcow2) behind one handle.
 *
 * Users: `kestrel img` and, later, virtio-blk from its iothreads. A `struct blk` may be
 * used from several threads at once: raw pread/pwrite do not serialize, qcow2 takes a
 * per-image mutex around metadata. Offsets and lengths are bytes with any alignment (the
 * driver does read-modify-write where the medium needs it). Every function that can fail
 * returns a negative errno; the last error's text (naming the file and the problem) is
 * kept per thread and returned by blk_last_error().
 */
#ifndef KESTREL_BLOCK_BLOCK_H
#define KESTREL_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum blk_format { BLK_FMT_PROBE = 0, BLK_FMT_RAW, BLK_FMT_QCOW2 };

enum blk_cache {
	BLK_CACHE_WRITEBACK = 0, /* page cache; flush = fdatasync */
	BLK_CACHE_NONE,		 /* O_DIRECT with aligned bounce buffers; flush = fdatasync */
	BLK_CACHE_UNSAFE, /* page cache, flushes ignored (scratch images, convert -t unsafe) */
};

struct blk_open_opts {
	enum blk_format format; /* BLK_FMT_PROBE looks at the first bytes */
	bool readonly;
	enum blk_cache cache;
	size_t l2_cache_bytes;		/* qcow2 L2 cache size; 0 = default (1 MiB) */
	bool no_backing;		/* do not open backing files (info, rebase -u) */
	enum blk_format backing_format; /* for a backing file without a format hint */
	/* Opened for `img check`: an image marked corrupt opens writable for repair (the flag
	 * is cleared once a repair leaves no corruption). */
	bool check;
	/* Image locks (QEMU's scheme, see block/raw.c): every open takes OFD byte-range locks
	 * on the image file and its backing files, and is refused with -EAGAIN when another
	 * process (Kestrel, QEMU, qemu-img) holds the image in a conflicting way: a writer
	 * excludes every other user but -U readers. force_share (qemu-img -U, read-only
	 * opens only) reads an image someone else is writing. */
	bool force_share;
};

struct blk;

/* Opens PATH. Backing files of qcow2 images are opened read-only, recursively (depth and
 * loops checked). */
int blk_open(struct blk **out, const char *path, const struct blk_open_opts *opts)
    __attribute__((warn_unused_result));
void blk_close(struct blk *b);

int blk_pread(struct blk *b, uint64_t off, void *buf, size_t len)
    __attribute__((warn_unused_result));
int blk_pwrite(struct blk *b, uint64_t off, const void *buf, size_t len)
    __attribute__((warn_unused_result));
/* Writes whole clusters compressed (qcow2 only): OFF cluster aligned, LEN one cluster (or
 * the tail of the disk). Data that does not compress is written plainly. */
int blk_pwrite_compressed(struct blk *b, uint64_t off, const void *buf, size_t len)
    __attribute__((warn_unused_result));
int blk_flush(struct blk *b) __attribute__((warn_unused_result));
/* Deallocates: afterwards the range reads as zeros (qcow2: zero flag or unallocated when
 * there is no backing file; raw: hole punched). Partial clusters are zeroed in place. */
int blk_discard(struct blk *b, uint64_t off, uint64_t len) __attribute__((warn_unused_result));
#define BLK_ZERO_MAY_UNMAP 1u
int blk_write_zeroes(struct blk *b, uint64_t off, uint64_t len, unsigned flags)
    __attribute__((warn_unused_result));
int blk_resize(struct blk *b, uint64_t new_size) __attribute__((warn_unused_result));

/* Allocation status of [off, off+len): fills *st for the longest prefix with one status. */
#define BLK_STATUS_DATA	      1u /* reads come from stored data */
#define BLK_STATUS_ZERO	      2u /* reads return zeros */
#define BLK_STATUS_ALLOCATED  4u /* this layer decides the content (not its backing) */
#define BLK_STATUS_OFFSET     8u /* host_offset is valid (plain data in the image file) */
#define BLK_STATUS_COMPRESSED 16u
struct blk_status {
	uint64_t len;
	unsigned flags;
	uint64_t host_offset;
	int depth; /* chain status only: 0 = top layer, 1 = its backing file... */
};
/* This layer only. */
int blk_block_status(struct blk *b, uint64_t off, uint64_t len, struct blk_status *st)
    __attribute__((warn_unused_result));
/* Whole backing chain: the layer that decides the content, or ZERO past every layer. */
int blk_chain_status(struct blk *b, uint64_t off, uint64_t len, struct blk_status *st)
    __attribute__((warn_unused_result));

struct blk_info {
	const char *format; /* "raw", "qcow2" */
	uint64_t virtual_size;
	uint64_t disk_size;    /* bytes allocated on the host */
	uint64_t file_length;  /* apparent length of the file */
	uint32_t cluster_size; /* 0 for raw */
	int qcow2_version;
	uint32_t refcount_bits;
	const char *compression; /* "zlib", "zstd" */
	bool dirty, corrupt, lazy_refcounts, extended_l2;
	const char *backing_file;   /* as stored in the image, NULL if none */
	const char *backing_format; /* NULL if not stored */
	int nb_snapshots;
	uint64_t l2_cache_bytes; /* qcow2: the L2 table cache in use (whole tables) */
};
int blk_get_info(struct blk *b, struct blk_info *info);
uint64_t blk_size(struct blk *b);
const char *blk_path(struct blk *b);
const char *blk_format_name(struct blk *b);
struct blk *blk_backing(struct blk *b);
uint32_t blk_cluster_size(struct blk *b); /* 0 for raw */

/* Text of the last error on this thread ("" if none). */
const char *blk_last_error(void);
void blk_clear_error(void);
void blk_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Image creation. */
enum blk_prealloc {
	BLK_PREALLOC_OFF = 0,
	BLK_PREALLOC_METADATA, /* qcow2: every L2 table and data cluster allocated, sparse */
	BLK_PREALLOC_FALLOC,   /* as metadata (qcow2), and the data space fallocate(2)d */
	BLK_PREALLOC_FULL,     /* as metadata (qcow2), and zeros written over the data */
};
struct blk_create_opts {
	enum blk_format format;
	uint64_t size;
	uint32_t cluster_size; /* qcow2; 0 = 64 KiB */
	int compression_type;  /* 0 zlib, 1 zstd */
	int refcount_bits;     /* 0 = 16 */
	int version;	       /* 0 = 3 */
	bool lazy_refcounts;
	const char *backing_file;
	const char *backing_format; /* NULL = probe when opened */
	enum blk_prealloc prealloc;
};
int blk_create(const char *path, const struct blk_create_opts *o)
    __attribute__((warn_unused_result));
enum blk_format blk_format_parse(const char *name); /* -1 if unknown */
/* "off", "metadata", "falloc", "full"; -1 if unknown. */
int blk_prealloc_parse(const char *name);
const char *blk_prealloc_name(enum blk_prealloc mode);

/* What an image of format O->format made with options O needs on the host, as qemu-img
 * measure computes it: REQUIRED for the data of IN (or, without IN, an empty disk of
 * O->size bytes) and FULLY_ALLOCATED when every cluster is allocated. HAS_BITMAPS (qcow2 v3
 * out of a qcow2 IN): the size of the persistent bitmaps IN would bring, always 0 here. */
struct blk_measure {
	uint64_t required, fully_allocated;
	bool has_bitmaps;
	uint64_t bitmaps;
};
int blk_measure(const struct blk_create_opts *o, struct blk *in, struct blk_measure *m)
    __attribute__((warn_unused_result));

/* Consistency check (qcow2; raw has nothing to check). */
#define BLK_CHECK_FIX_LEAKS  1u
#define BLK_CHECK_FIX_ERRORS 2u
#define BLK_CHECK_QUIET	     4u /* no per-problem lines on stderr, counts only */
struct blk_check_result {
	uint64_t corruptions, leaks, check_errors;
	uint64_t corruptions_fixed, leaks_fixed;
	uint64_t allocated_clusters, total_clusters, compressed_clusters, fragmented_clusters;
	uint64_t image_end_offset;
};
int blk_check(struct blk *b, unsigned fix, struct blk_check_result *r);

/* Internal snapshots (qcow2). */
struct blk_snapshot_info {
	char id[32];
	char name[256];
	uint64_t vm_state_size;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t disk_size;
	uint64_t icount; /* UINT64_MAX: not recorded */
};
/* *list is malloc'd (free it); returns the count or -errno. */
int blk_snapshot_list(struct blk *b, struct blk_snapshot_info **list);
int blk_snapshot_create(struct blk *b, const char *name);
int blk_snapshot_apply(struct blk *b, const char *name_or_id);
int blk_snapshot_delete(struct blk *b, const char *name_or_id);

/* Deallocates everything so the backing file shows through (after "img commit"). */
int blk_make_empty(struct blk *b);

/* Rewrites the backing file name and format in the header only (rebase -u). */
int blk_set_backing(struct blk *b, const char *backing, const char *backing_fmt);

#endif

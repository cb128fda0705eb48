/* qcow2 driver internals, shared by block/qcow2*.c and the unit tests / fuzzer.
 * Format: QEMU's docs/interop/qcow2.txt (versions 2 and 3). All on-disk numbers are big
 * endian. */
#ifndef KESTREL_BLOCK_QCOW2_H
#define KESTREL_BLOCK_QCOW2_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "block/driver.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

/* Header field offsets (qcow2.txt "Header"). */
#define QCOW2_HDR_BACKING_OFFSET  8
#define QCOW2_HDR_SIZE		  24
#define QCOW2_HDR_L1_SIZE	  36
#define QCOW2_HDR_REFTABLE_OFFSET 48
#define QCOW2_HDR_NB_SNAPSHOTS	  60
#define QCOW2_HDR_INCOMPAT	  72
#define QCOW2_HDR_V2_LENGTH	  72
#define QCOW2_HDR_V3_MIN_LENGTH	  104
#define QCOW2_HDR_V3_LENGTH	  112 /* with compression_type and padding */

#define QCOW2_INCOMPAT_DIRTY	   (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT	   (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE   (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2	   (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN \
	(QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_COMPRESSION)
#define QCOW2_COMPAT_LAZY_REFCOUNTS (1ull << 0)

#define QCOW2_EXT_END		0x00000000u
#define QCOW2_EXT_BACKING_FMT	0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_DATA_FILE	0x44415441u

#define QCOW2_OFLAG_COPIED     (1ull << 63)
#define QCOW2_OFLAG_COMPRESSED (1ull << 62)
#define QCOW2_OFLAG_ZERO       (1ull << 0)
#define QCOW2_OFFSET_MASK      0x00fffffffffffe00ull
#define QCOW2_L1E_RESERVED     0x7f000000000001ffull
#define QCOW2_L2E_RESERVED     0x3f000000000001feull
#define QCOW2_REFT_OFFSET_MASK 0xfffffffffffffe00ull

#define QCOW2_MIN_CLUSTER_BITS	 9
#define QCOW2_MAX_CLUSTER_BITS	 21
#define QCOW2_MAX_L1_BYTES	 (32u << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20)
#define QCOW2_MAX_SNAPSHOTS	 65536
#define QCOW2_MAX_BACKING_NAME	 1023
#define QCOW2_MAX_SIZE		 (1ull << 61) /* 2 EiB; anything bigger is refused */

#define QCOW2_COMPRESS_ZLIB 0
#define QCOW2_COMPRESS_ZSTD 1

/* Parsed and validated header. */
struct qcow2_header {
	uint32_t version;
	uint64_t backing_offset;
	uint32_t backing_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_offset;
	uint64_t reftable_offset;
	uint32_t reftable_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompat, compat, autoclear;
	uint32_t refcount_order;
	uint32_t header_length;
	uint8_t compression_type;
	bool l1_invalid; /* check mode: the L1 table is outside the file or overlaps the
			  * refcount table (it is then not read) */
};

/* Validates the fixed header in BUF (the first LEN bytes of a file FILE_SIZE bytes long).
 * On failure sets blk_set_error() with a message naming the problem. CHECK (opening for
 * `img check`): an L1 table outside the file or over the refcount table sets l1_invalid
 * instead of failing. */
int qcow2_parse_header(const uint8_t *buf, size_t len, uint64_t file_size, struct qcow2_header *h,
		       const char *path, bool check);

struct qcow2_cache_entry {
	uint64_t offset; /* 0 = empty slot */
	uint64_t *table; /* big-endian entries, as on disk */
	uint64_t lru;
	bool dirty;
};

struct qcow2_cache {
	struct qcow2_cache_entry *e;
	int n;
	uint64_t tick;
};

struct qcow2_snapshot {
	uint64_t l1_offset;
	uint32_t l1_size;
	char *id, *name;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint32_t vm_state_size;
	uint32_t extra_size;
	uint8_t *extra; /* extra data as stored (preserved on rewrite) */
	uint64_t disk_size;
	uint64_t icount;
};

struct qcow2_ext {
	uint32_t type, len;
	uint8_t *data;
};

struct qcow2 {
	struct blk *file;
	pthread_mutex_t lock;
	/* Held for reading by data I/O done outside `lock`, for writing while clusters are
	 * released, so a cluster is never freed and reused under an in-flight request. Taken
	 * (either way) only while holding `lock`. */
	pthread_rwlock_t io_lock;
	struct qcow2_header h;
	uint32_t cluster_size, cluster_bits;
	uint32_t l2_entries, l2_bits;
	uint32_t rb_entries; /* refcount entries per refcount block */
	uint32_t refcount_bits;
	uint64_t refcount_max;
	uint64_t *l1; /* host-endian copy of the active L1 table */
	uint32_t l1_size;
	uint64_t *reftable;	   /* host-endian */
	uint32_t reftable_size;	   /* entries */
	uint64_t *refblock_sorted; /* sorted refblock offsets for the overlap check */
	uint32_t nb_refblocks;
	/* Also for the overlap check: the active L2 tables (sorted offsets; qcow2_l2_index_*
	 * keep it as L1 entries change) and the snapshots' L1 tables (sorted by offset, with
	 * the running maximum of their ends, so one binary search finds any overlap). */
	uint64_t *l2_sorted;
	uint32_t nb_l2, l2_cap;
	uint64_t *snap_l1_start, *snap_l1_maxend;
	uint32_t nb_snap_l1;
	struct qcow2_snapshot *snaps;
	uint32_t nb_snaps;
	uint64_t snapshots_size; /* bytes of the snapshot table */
	char *backing_file, *backing_fmt;
	struct qcow2_ext *exts; /* unknown extensions, kept when the header is rewritten */
	int nb_exts;
	char feature_names[64][48]; /* incompatible feature names from the feature table */
	struct qcow2_cache l2_cache, rb_cache;
	uint64_t file_end;    /* bytes: the file's length, grown as we allocate */
	uint64_t free_hint;   /* cluster index: every cluster below it is in use */
	bool need_sync;	      /* data or refcounts written since the last sync */
	uint64_t comp_next;   /* byte offset where the next compressed cluster may go, 0 = none */
	uint8_t *cbuf;	      /* one decompressed cluster */
	uint64_t cbuf_offset; /* L2 entry it holds, 0 = none */
	bool check_quiet;     /* check prints no per-cluster lines (repair on open) */
	/* Opened for `img check`: tables that would refuse a normal open are tolerated. Each
	 * problem found at open is kept here and reported (and counted) by the check; a
	 * refcount table entry that was unusable is dropped in memory (REFT_IDX), so its
	 * refcounts read as 0, and counts as repaired once a repair gave it a new block. */
	struct qcow2_open_problem {
		char msg[200];
		int64_t reft_idx; /* -1: not a refcount table entry; QCOW2_PROBLEM_FIXED */
	} * problems;
	uint32_t nb_problems;
#define QCOW2_PROBLEM_FIXED (-2)
	uint64_t alloc_floor; /* cluster index: allocate at or above it (0 = anywhere) */
	/* The file takes clearly less space than the clusters in use (qemu's test for
	 * preallocated metadata, made at the first block status of an allocated cluster):
	 * allocated clusters may be holes, so block status asks the file which parts read as
	 * zeros. */
	bool sparse_checked, sparse_file;
};

/* Cluster mapping for a guest offset. */
enum qcow2_ctype { QCOW2_UNALLOC, QCOW2_ZERO, QCOW2_NORMAL, QCOW2_COMPRESSED };

/* qcow2.c */
int qcow2_file_read(struct qcow2 *s, uint64_t off, void *buf, size_t len);
int qcow2_file_write(struct qcow2 *s, uint64_t off, const void *buf, size_t len);
int qcow2_sync(struct qcow2 *s);
int qcow2_check_meta_offset(struct qcow2 *s, uint64_t off, uint64_t len, const char *what);
/* Checks that newly allocated clusters [off, off+len) hold no metadata (refcounts that say
 * a metadata cluster is free); signals corruption and returns -EIO if they do. */
int qcow2_check_new_clusters(struct qcow2 *s, uint64_t off, uint64_t len);
/* Marks the image corrupt (incompatible bit 1) after metadata pointing into metadata was
 * found on a writable image, as qemu does: later writes are refused, and the image only
 * opens read-only until `img check -r all` repairs it. WHY names the problem (logged). */
void qcow2_signal_corruption(struct qcow2 *s, const char *why);
/* Rebuilds the active-L2 and snapshot-L1 parts of the overlap index from s->l1 and
 * s->snaps (after the snapshot list or the whole active L1 changed). */
int qcow2_rebuild_meta_index(struct qcow2 *s);
int qcow2_l2_load(struct qcow2 *s, uint64_t l2_off, int *slot);
int qcow2_cache_flush(struct qcow2 *s);
void qcow2_cache_drop(struct qcow2_cache *c, uint64_t offset);
int qcow2_write_l1_entry(struct qcow2 *s, uint32_t idx);
int qcow2_update_header_field(struct qcow2 *s, uint32_t off, const void *data, size_t len);
int qcow2_rewrite_header(struct qcow2 *s);

/* qcow2_refcount.c */
int qcow2_get_refcount(struct qcow2 *s, uint64_t cluster, uint64_t *rc);
int qcow2_update_refcount(struct qcow2 *s, uint64_t off, uint64_t len, int64_t addend);
int qcow2_set_refcount(struct qcow2 *s, uint64_t cluster, uint64_t value);
int qcow2_alloc_clusters(struct qcow2 *s, uint64_t n, uint64_t *off);
void qcow2_rebuild_refblock_index(struct qcow2 *s);
uint64_t qcow2_rb_get(const struct qcow2 *s, const void *block, uint32_t i);
void qcow2_rb_set(const struct qcow2 *s, void *block, uint32_t i, uint64_t v);

/* qcow2_snapshot.c */
int qcow2_read_snapshots(struct qcow2 *s);
void qcow2_free_snapshots(struct qcow2 *s);
int qcow2_snapshot_list(struct blk *b, struct blk_snapshot_info **list);
int qcow2_snapshot_create(struct blk *b, const char *name);
int qcow2_snapshot_apply(struct blk *b, const char *name);
int qcow2_snapshot_delete(struct blk *b, const char *name);
int qcow2_fix_copied(struct qcow2 *s);

/* qcow2_check.c */
int qcow2_check(struct blk *b, unsigned fix, struct blk_check_result *r);

#endif

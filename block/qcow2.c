/* qcow2 image driver: header and extensions, L1/L2 mapping with an LRU L2 cache, reads
 * (plain, zero, compressed zlib/zstd, backing file), writes with cluster allocation and
 * copy-on-write, discard, write-zeroes, compressed writes, resize, creation (with
 * preallocation) and qemu-img measure's size estimate.
 * Format: QEMU docs/interop/qcow2.txt, versions 2 and 3.
 *
 * Crash safety (what a SIGKILL or power cut at any point may leave): a new cluster's
 * refcount is written before anything points at it, and its data before the L2 entry;
 * dirty L2 tables are only written after a sync of the data and refcounts (need_sync);
 * a new L2 table is written and synced before the L1 entry points at it; clusters that lose
 * a reference are only decremented after the table that dropped them is on disk. So a crash
 * can leave clusters with a refcount nobody uses (leaks), never a reference to a cluster
 * whose refcount is too low. Every offset read from the image is checked before use. */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define LOG_SUBSYS "qcow2"
#include "util/log.h"
#include "util/endian.h"
#include "block/qcow2.h"

#define DEFAULT_L2_CACHE_BYTES (1u << 20)
#define RB_CACHE_ENTRIES       8

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* ---- file access ---- */

int qcow2_file_read(struct qcow2 *s, uint64_t off, void *buf, size_t len)
{
	return blk_raw_driver.pread(s->file, off, buf, len);
}

int qcow2_file_write(struct qcow2 *s, uint64_t off, const void *buf, size_t len)
{
	int ret = blk_raw_driver.pwrite(s->file, off, buf, len);
	if (ret < 0) {
		blk_set_error("%s: write at %llu failed: %s", s->file->path,
			      (unsigned long long)off, strerror(-ret));
		return ret;
	}
	if (off + len > s->file_end)
		s->file_end = off + len;
	return 0;
}

int qcow2_sync(struct qcow2 *s)
{
	s->need_sync = false;
	return blk_raw_driver.flush(s->file);
}

/* ---- header ---- */

int qcow2_parse_header(const uint8_t *buf, size_t len, uint64_t file_size, struct qcow2_header *h,
		       const char *path, bool check)
{
	memset(h, 0, sizeof(*h));
	if (len < QCOW2_HDR_V2_LENGTH || file_size < QCOW2_HDR_V2_LENGTH) {
		blk_set_error("%s: truncated image: %llu bytes is shorter than a qcow2 header",
			      path, (unsigned long long)file_size);
		return -EINVAL;
	}
	if (be32_load(buf) != QCOW2_MAGIC) {
		blk_set_error("%s: not a qcow2 image (bad magic)", path);
		return -EINVAL;
	}
	h->version = be32_load(buf + 4);
	if (h->version != 2 && h->version != 3) {
		blk_set_error("%s: unsupported qcow2 version %u", path, h->version);
		return -ENOTSUP;
	}
	h->backing_offset = be64_load(buf + 8);
	h->backing_size = be32_load(buf + 16);
	h->cluster_bits = be32_load(buf + 20);
	h->size = be64_load(buf + 24);
	h->crypt_method = be32_load(buf + 32);
	h->l1_size = be32_load(buf + 36);
	h->l1_offset = be64_load(buf + 40);
	h->reftable_offset = be64_load(buf + 48);
	h->reftable_clusters = be32_load(buf + 56);
	h->nb_snapshots = be32_load(buf + 60);
	h->snapshots_offset = be64_load(buf + 64);
	h->refcount_order = 4;
	h->header_length = QCOW2_HDR_V2_LENGTH;
	if (h->version == 3) {
		if (len < QCOW2_HDR_V3_MIN_LENGTH || file_size < QCOW2_HDR_V3_MIN_LENGTH) {
			blk_set_error("%s: truncated image: version 3 header incomplete", path);
			return -EINVAL;
		}
		h->incompat = be64_load(buf + 72);
		h->compat = be64_load(buf + 80);
		h->autoclear = be64_load(buf + 88);
		h->refcount_order = be32_load(buf + 96);
		h->header_length = be32_load(buf + 100);
		if (h->header_length < QCOW2_HDR_V3_MIN_LENGTH) {
			blk_set_error("%s: header length %u is too small", path, h->header_length);
			return -EINVAL;
		}
		if (h->header_length > 104 && len >= 105)
			h->compression_type = buf[104];
	}
	if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS || h->cluster_bits > QCOW2_MAX_CLUSTER_BITS) {
		blk_set_error("%s: unsupported cluster size 2^%u (512 B to 2 MiB allowed)", path,
			      h->cluster_bits);
		return -EINVAL;
	}
	uint64_t cs = 1ull << h->cluster_bits;
	if (h->header_length > cs) {
		blk_set_error("%s: header length %u is larger than a cluster", path,
			      h->header_length);
		return -EINVAL;
	}
	if (h->crypt_method) {
		blk_set_error("%s: encrypted images (method %u) are not supported", path,
			      h->crypt_method);
		return -ENOTSUP;
	}
	if (h->refcount_order > 6) {
		blk_set_error("%s: refcount order %u is invalid (at most 6)", path,
			      h->refcount_order);
		return -EINVAL;
	}
	if (h->size > QCOW2_MAX_SIZE) {
		blk_set_error("%s: absurd virtual size %llu bytes", path,
			      (unsigned long long)h->size);
		return -EINVAL;
	}
	if (h->incompat & QCOW2_INCOMPAT_EXTL2) {
		blk_set_error("%s: images with extended L2 entries (subclusters) are not supported",
			      path);
		return -ENOTSUP;
	}
	if (h->incompat & QCOW2_INCOMPAT_DATA_FILE) {
		blk_set_error("%s: images with an external data file are not supported", path);
		return -ENOTSUP;
	}
	if (h->compression_type > QCOW2_COMPRESS_ZSTD) {
		blk_set_error("%s: unknown compression type %u", path, h->compression_type);
		return -ENOTSUP;
	}
	if (h->compression_type != 0 && !(h->incompat & QCOW2_INCOMPAT_COMPRESSION)) {
		blk_set_error(
		    "%s: compression type %u set without the compression-type feature bit", path,
		    h->compression_type);
		return -EINVAL;
	}
	/* L1 must cover the virtual size, and not absurdly more. */
	uint64_t l2_entries = cs / 8;
	uint64_t per_l1 = l2_entries * cs;
	uint64_t need_l1 = (h->size + per_l1 - 1) / per_l1;
	if ((uint64_t)h->l1_size < need_l1) {
		blk_set_error("%s: L1 table of %u entries is too small for %llu bytes", path,
			      h->l1_size, (unsigned long long)h->size);
		return -EINVAL;
	}
	if ((uint64_t)h->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
		blk_set_error("%s: absurd L1 table size (%u entries)", path, h->l1_size);
		return -EINVAL;
	}
	if (h->l1_size && (h->l1_offset & (cs - 1))) {
		blk_set_error("%s: L1 table offset 0x%llx is not cluster aligned", path,
			      (unsigned long long)h->l1_offset);
		return -EINVAL;
	}
	if (h->l1_size &&
	    (h->l1_offset == 0 || h->l1_offset > file_size ||
	     (uint64_t)h->l1_size * 8 > file_size - h->l1_offset) &&
	    check) {
		h->l1_invalid = true;
	} else if (h->l1_size && (h->l1_offset == 0 || h->l1_offset > file_size ||
				  (uint64_t)h->l1_size * 8 > file_size - h->l1_offset)) {
		blk_set_error("%s: L1 table (offset 0x%llx, %u entries) is outside the image "
			      "(file is %llu bytes)",
			      path, (unsigned long long)h->l1_offset, h->l1_size,
			      (unsigned long long)file_size);
		return -EINVAL;
	}
	if (h->reftable_offset & (cs - 1)) {
		blk_set_error("%s: refcount table offset 0x%llx is not cluster aligned", path,
			      (unsigned long long)h->reftable_offset);
		return -EINVAL;
	}
	if (h->reftable_clusters == 0 ||
	    (uint64_t)h->reftable_clusters * cs > QCOW2_MAX_REFTABLE_BYTES) {
		blk_set_error("%s: absurd refcount table size (%u clusters)", path,
			      h->reftable_clusters);
		return -EINVAL;
	}
	if (h->reftable_offset == 0 || h->reftable_offset > file_size ||
	    (uint64_t)h->reftable_clusters * cs > file_size - h->reftable_offset) {
		blk_set_error(
		    "%s: refcount table (offset 0x%llx, %u clusters) is outside the image "
		    "(file is %llu bytes)",
		    path, (unsigned long long)h->reftable_offset, h->reftable_clusters,
		    (unsigned long long)file_size);
		return -EINVAL;
	}
	if (h->l1_size && h->l1_offset < h->reftable_offset + (uint64_t)h->reftable_clusters * cs &&
	    h->reftable_offset < h->l1_offset + (uint64_t)h->l1_size * 8 && check) {
		h->l1_invalid = true;
	} else if (h->l1_size &&
		   h->l1_offset < h->reftable_offset + (uint64_t)h->reftable_clusters * cs &&
		   h->reftable_offset < h->l1_offset + (uint64_t)h->l1_size * 8) {
		blk_set_error("%s: L1 table overlaps the refcount table", path);
		return -EINVAL;
	}
	if (h->backing_offset) {
		if (h->backing_size == 0 || h->backing_size > QCOW2_MAX_BACKING_NAME ||
		    h->backing_offset >= cs || h->backing_size > cs - h->backing_offset ||
		    h->backing_offset + h->backing_size > file_size) {
			blk_set_error("%s: backing file name (offset %llu, %u bytes) is invalid or "
				      "outside the header cluster",
				      path, (unsigned long long)h->backing_offset, h->backing_size);
			return -EINVAL;
		}
	}
	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS) {
		blk_set_error("%s: absurd number of snapshots (%u)", path, h->nb_snapshots);
		return -EINVAL;
	}
	if (h->nb_snapshots && ((h->snapshots_offset & 7) || h->snapshots_offset == 0 ||
				h->snapshots_offset >= file_size)) {
		blk_set_error("%s: snapshot table offset 0x%llx is invalid or outside the image",
			      path, (unsigned long long)h->snapshots_offset);
		return -EINVAL;
	}
	return 0;
}

static void feature_name(struct qcow2 *s, int bit, char *out, size_t n)
{
	if (s->feature_names[bit][0])
		snprintf(out, n, "'%s' (bit %d)", s->feature_names[bit], bit);
	else
		snprintf(out, n, "bit %d", bit);
}

/* Header extensions follow the header up to the end of the first cluster (or up to the
 * backing file name). Unknown ones are kept and written back unchanged. */
static int read_extensions(struct qcow2 *s, const uint8_t *hdr, const char *path)
{
	uint64_t off = s->h.header_length;
	uint64_t end = s->cluster_size;
	if (s->h.backing_offset && s->h.backing_offset < end)
		end = s->h.backing_offset;
	if (s->h.version == 2)
		off = QCOW2_HDR_V2_LENGTH;
	while (off + 8 <= end) {
		uint32_t type = be32_load(hdr + off);
		uint32_t len = be32_load(hdr + off + 4);
		off += 8;
		if (type == QCOW2_EXT_END)
			break;
		if (len > end - off) {
			blk_set_error("%s: header extension 0x%08x (%u bytes) runs past the header "
				      "cluster",
				      path, type, len);
			return -EINVAL;
		}
		const uint8_t *d = hdr + off;
		if (type == QCOW2_EXT_BACKING_FMT) {
			free(s->backing_fmt);
			s->backing_fmt = strndup((const char *)d, len < 31 ? len : 31);
			if (!s->backing_fmt)
				return -ENOMEM;
		} else {
			if (type == QCOW2_EXT_FEATURE_TABLE) {
				for (uint32_t i = 0; i + 48 <= len; i += 48) {
					if (d[i] == 0 && d[i + 1] < 64) {
						memcpy(s->feature_names[d[i + 1]], d + i + 2, 46);
						s->feature_names[d[i + 1]][46] = 0;
					}
				}
			}
			struct qcow2_ext *n = realloc(s->exts, (s->nb_exts + 1) * sizeof(*n));
			if (!n)
				return -ENOMEM;
			s->exts = n;
			n[s->nb_exts].type = type;
			n[s->nb_exts].len = len;
			n[s->nb_exts].data = malloc(len ? len : 1);
			if (!n[s->nb_exts].data)
				return -ENOMEM;
			memcpy(n[s->nb_exts].data, d, len);
			s->nb_exts++;
		}
		off += round_up(len, 8);
	}
	return 0;
}

/* Serializes the header cluster from s->h, the backing names and kept extensions. */
static int build_header(struct qcow2 *s, uint8_t *buf)
{
	struct qcow2_header *h = &s->h;
	uint32_t cs = s->cluster_size;
	memset(buf, 0, cs);
	be32_store(buf, QCOW2_MAGIC);
	be32_store(buf + 4, h->version);
	be32_store(buf + 20, h->cluster_bits);
	be64_store(buf + 24, h->size);
	be32_store(buf + 32, 0);
	be32_store(buf + 36, h->l1_size);
	be64_store(buf + 40, h->l1_offset);
	be64_store(buf + 48, h->reftable_offset);
	be32_store(buf + 56, h->reftable_clusters);
	be32_store(buf + 60, h->nb_snapshots);
	be64_store(buf + 64, h->snapshots_offset);
	uint64_t off = QCOW2_HDR_V2_LENGTH;
	if (h->version == 3) {
		if (h->header_length < QCOW2_HDR_V3_LENGTH)
			h->header_length = QCOW2_HDR_V3_LENGTH;
		be64_store(buf + 72, h->incompat);
		be64_store(buf + 80, h->compat);
		be64_store(buf + 88, h->autoclear);
		be32_store(buf + 96, h->refcount_order);
		be32_store(buf + 100, h->header_length);
		buf[104] = h->compression_type;
		off = h->header_length;
	}
	off = round_up(off, 8);
	size_t blen = s->backing_file ? strlen(s->backing_file) : 0;
	if (s->backing_fmt && s->backing_file) {
		size_t flen = strlen(s->backing_fmt);
		if (off + 8 + round_up(flen, 8) > cs)
			goto err_full;
		be32_store(buf + off, QCOW2_EXT_BACKING_FMT);
		be32_store(buf + off + 4, (uint32_t)flen);
		memcpy(buf + off + 8, s->backing_fmt, flen);
		off += 8 + round_up(flen, 8);
	}
	for (int i = 0; i < s->nb_exts; i++) {
		if (off + 8 + round_up(s->exts[i].len, 8) > cs)
			goto err_full;
		be32_store(buf + off, s->exts[i].type);
		be32_store(buf + off + 4, s->exts[i].len);
		memcpy(buf + off + 8, s->exts[i].data, s->exts[i].len);
		off += 8 + round_up(s->exts[i].len, 8);
	}
	if (off + 8 + blen > cs)
		goto err_full;
	off += 8; /* end-of-extensions marker: all zeros */
	if (blen) {
		if (blen > QCOW2_MAX_BACKING_NAME)
			goto err_full;
		memcpy(buf + off, s->backing_file, blen);
		h->backing_offset = off;
		h->backing_size = (uint32_t)blen;
	} else {
		h->backing_offset = 0;
		h->backing_size = 0;
	}
	be64_store(buf + 8, h->backing_offset);
	be32_store(buf + 16, h->backing_size);
	return 0;
err_full:
	blk_set_error("header extensions and backing file name do not fit in one cluster");
	return -ENOSPC;
}

int qcow2_rewrite_header(struct qcow2 *s)
{
	uint8_t *buf = malloc(s->cluster_size);
	if (!buf)
		return -ENOMEM;
	int ret = build_header(s, buf);
	if (ret == 0)
		ret = qcow2_sync(s);
	if (ret == 0)
		ret = qcow2_file_write(s, 0, buf, s->cluster_size);
	if (ret == 0)
		ret = qcow2_sync(s);
	free(buf);
	return ret;
}

int qcow2_update_header_field(struct qcow2 *s, uint32_t off, const void *data, size_t len)
{
	return qcow2_file_write(s, off, data, len);
}

/* ---- metadata overlap checks ---- */

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return blen && alen && a < b + blen && b < a + alen;
}

/* First index in the sorted array A[0..n) whose value is >= V. */
static uint32_t lower_bound(const uint64_t *a, uint32_t n, uint64_t v)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (a[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Whether a cluster-sized table at one of the sorted offsets A[0..n), other than SELF,
 * overlaps [off, off+len). */
static bool tables_hit(struct qcow2 *s, const uint64_t *a, uint32_t n, uint64_t off, uint64_t len,
		       uint64_t self)
{
	uint64_t first = off >= s->cluster_size ? off - (s->cluster_size - 1) : 0;
	for (uint32_t i = lower_bound(a, n, first); i < n && a[i] < off + len; i++)
		if (a[i] != self && overlaps(off, len, a[i], s->cluster_size))
			return true;
	return false;
}

#define META_NEW 1u /* clusters being allocated: they may lie past the end of the file */

/* Whether [off, off+len) lies outside the file or on the header, the active L1 table or the
 * refcount table: what the header itself places. */
static const char *header_conflict(struct qcow2 *s, uint64_t off, uint64_t len, unsigned flags)
{
	uint64_t cs = s->cluster_size;
	if (!(flags & META_NEW) &&
	    (off > round_up(s->file_end, cs) || len > round_up(s->file_end, cs) - off))
		return "is outside the image file";
	if (overlaps(off, len, 0, cs))
		return "overlaps the image header";
	if (overlaps(off, len, s->h.l1_offset, (uint64_t)s->l1_size * 8))
		return "overlaps the active L1 table";
	if (overlaps(off, len, s->h.reftable_offset, (uint64_t)s->h.reftable_clusters * cs))
		return "overlaps the refcount table";
	return NULL;
}

/* What metadata [off, off+len) overlaps, or NULL. SELF_L2 is an L2 table that is allowed
 * (the one being loaded). */
static const char *meta_conflict(struct qcow2 *s, uint64_t off, uint64_t len, unsigned flags,
				 uint64_t self_l2)
{
	const char *why = header_conflict(s, off, len, flags);
	if (why)
		return why;
	if (overlaps(off, len, s->h.snapshots_offset, s->snapshots_size))
		return "overlaps the snapshot table";
	if (tables_hit(s, s->refblock_sorted, s->nb_refblocks, off, len, 0))
		return "overlaps a refcount block";
	if (tables_hit(s, s->l2_sorted, s->nb_l2, off, len, self_l2))
		return "overlaps an active L2 table";
	/* Snapshot L1 tables: the last one starting before the range's end reaches into it if
	 * the furthest end among those starting before it does. */
	uint32_t k = lower_bound(s->snap_l1_start, s->nb_snap_l1, off + len);
	if (k && s->snap_l1_maxend[k - 1] > off)
		return "overlaps a snapshot L1 table";
	return NULL;
}

static int meta_check(struct qcow2 *s, uint64_t off, uint64_t len, const char *what, unsigned flags,
		      uint64_t self_l2)
{
	if (off & (s->cluster_size - 1)) {
		blk_set_error("%s: %s at offset 0x%llx is not cluster aligned", s->file->path, what,
			      (unsigned long long)off);
		return -EIO;
	}
	const char *why = meta_conflict(s, off, len, flags, self_l2);
	if (why) {
		blk_set_error("%s: %s at offset 0x%llx %s (file is %llu bytes)", s->file->path,
			      what, (unsigned long long)off, why, (unsigned long long)s->file_end);
		return -EIO;
	}
	return 0;
}

int qcow2_check_meta_offset(struct qcow2 *s, uint64_t off, uint64_t len, const char *what)
{
	return meta_check(s, off, len, what, 0, 0);
}

int qcow2_check_new_clusters(struct qcow2 *s, uint64_t off, uint64_t len)
{
	int ret = meta_check(s, off, len, "newly allocated cluster", META_NEW, 0);
	if (ret < 0)
		qcow2_signal_corruption(s, blk_last_error());
	return ret;
}

void qcow2_signal_corruption(struct qcow2 *s, const char *why)
{
	if (s->h.incompat & QCOW2_INCOMPAT_CORRUPT)
		return; /* reported once */
	s->h.incompat |= QCOW2_INCOMPAT_CORRUPT;
	if (s->file->readonly || s->h.version < 3) {
		log_error("%s; image is corrupt, further writes refused", why);
		return;
	}
	log_error("%s; marking the image corrupt (repair it with 'kestrel img check -r all')", why);
	uint8_t f[8];
	be64_store(f, s->h.incompat);
	if (qcow2_update_header_field(s, QCOW2_HDR_INCOMPAT, f, 8) < 0 || qcow2_sync(s) < 0)
		log_error("%s: cannot write the corrupt flag", s->file->path);
}

static int refuse_if_corrupt(struct blk *b, struct qcow2 *s)
{
	if (!(s->h.incompat & QCOW2_INCOMPAT_CORRUPT))
		return 0;
	blk_set_error("%s: image is marked corrupt; writes are refused until it is repaired",
		      b->path);
	return -EIO;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int l2_index_reserve(struct qcow2 *s)
{
	if (s->nb_l2 < s->l2_cap)
		return 0;
	uint32_t cap = s->l2_cap ? s->l2_cap * 2 : 64;
	uint64_t *n = realloc(s->l2_sorted, (size_t)cap * 8);
	if (!n)
		return -ENOMEM;
	s->l2_sorted = n;
	s->l2_cap = cap;
	return 0;
}

/* Adds or removes one active L2 table offset (the array stays sorted). */
static int l2_index_add(struct qcow2 *s, uint64_t off)
{
	if (l2_index_reserve(s) < 0)
		return -ENOMEM;
	uint32_t i = lower_bound(s->l2_sorted, s->nb_l2, off);
	memmove(s->l2_sorted + i + 1, s->l2_sorted + i, (size_t)(s->nb_l2 - i) * 8);
	s->l2_sorted[i] = off;
	s->nb_l2++;
	return 0;
}

static void l2_index_remove(struct qcow2 *s, uint64_t off)
{
	uint32_t i = lower_bound(s->l2_sorted, s->nb_l2, off);
	if (i == s->nb_l2 || s->l2_sorted[i] != off)
		return;
	memmove(s->l2_sorted + i, s->l2_sorted + i + 1, (size_t)(s->nb_l2 - i - 1) * 8);
	s->nb_l2--;
}

struct l1_range {
	uint64_t start, end;
};

static int cmp_range(const void *a, const void *b)
{
	return cmp_u64(&((const struct l1_range *)a)->start, &((const struct l1_range *)b)->start);
}

int qcow2_rebuild_meta_index(struct qcow2 *s)
{
	s->nb_l2 = 0;
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t l2 = s->l1[i] & QCOW2_OFFSET_MASK;
		if (!l2)
			continue;
		if (l2_index_reserve(s) < 0)
			return -ENOMEM;
		s->l2_sorted[s->nb_l2++] = l2;
	}
	if (s->nb_l2)
		qsort(s->l2_sorted, s->nb_l2, 8, cmp_u64);
	free(s->snap_l1_start);
	free(s->snap_l1_maxend);
	s->snap_l1_start = s->snap_l1_maxend = NULL;
	s->nb_snap_l1 = 0;
	if (!s->nb_snaps)
		return 0;
	struct l1_range *r = calloc(s->nb_snaps, sizeof(*r));
	s->snap_l1_start = calloc(s->nb_snaps, 8);
	s->snap_l1_maxend = calloc(s->nb_snaps, 8);
	if (!r || !s->snap_l1_start || !s->snap_l1_maxend) {
		free(r);
		return -ENOMEM;
	}
	uint32_t n = 0;
	for (uint32_t i = 0; i < s->nb_snaps; i++)
		if (s->snaps[i].l1_size)
			r[n++] = (struct l1_range){s->snaps[i].l1_offset,
						   s->snaps[i].l1_offset +
						       (uint64_t)s->snaps[i].l1_size * 8};
	qsort(r, n, sizeof(*r), cmp_range);
	uint64_t maxend = 0;
	for (uint32_t i = 0; i < n; i++) {
		s->snap_l1_start[i] = r[i].start;
		maxend = r[i].end > maxend ? r[i].end : maxend;
		s->snap_l1_maxend[i] = maxend;
	}
	s->nb_snap_l1 = n;
	free(r);
	return 0;
}

/* ---- table caches ---- */

static int cache_init(struct qcow2_cache *c, int n, size_t table_size)
{
	c->e = calloc((size_t)n, sizeof(*c->e));
	if (!c->e)
		return -ENOMEM;
	c->n = n;
	for (int i = 0; i < n; i++) {
		c->e[i].table = malloc(table_size);
		if (!c->e[i].table)
			return -ENOMEM;
	}
	return 0;
}

static void cache_destroy(struct qcow2_cache *c)
{
	for (int i = 0; c->e && i < c->n; i++)
		free(c->e[i].table);
	free(c->e);
	c->e = NULL;
}

static int cache_find(struct qcow2_cache *c, uint64_t offset)
{
	for (int i = 0; i < c->n; i++)
		if (c->e[i].offset == offset) {
			c->e[i].lru = ++c->tick;
			return i;
		}
	return -1;
}

void qcow2_cache_drop(struct qcow2_cache *c, uint64_t offset)
{
	for (int i = 0; i < c->n; i++)
		if (c->e[i].offset == offset) {
			c->e[i].offset = 0;
			c->e[i].dirty = false;
		}
}

static int l2_writeback(struct qcow2 *s, int slot)
{
	struct qcow2_cache_entry *e = &s->l2_cache.e[slot];
	int ret;
	if (!e->dirty)
		return 0;
	if (s->need_sync) { /* data and refcounts before the L2 entries that point at them */
		ret = qcow2_sync(s);
		if (ret < 0)
			return ret;
	}
	ret = qcow2_file_write(s, e->offset, e->table, s->cluster_size);
	if (ret < 0)
		return ret;
	e->dirty = false;
	return 0;
}

int qcow2_cache_flush(struct qcow2 *s)
{
	for (int i = 0; i < s->l2_cache.n; i++) {
		int ret = l2_writeback(s, i);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* A free slot in the L2 cache (least recently used; written back if dirty). */
static int l2_victim(struct qcow2 *s)
{
	struct qcow2_cache *c = &s->l2_cache;
	int v = 0;
	for (int i = 0; i < c->n; i++) {
		if (c->e[i].offset == 0) {
			v = i;
			break;
		}
		if (c->e[i].lru < c->e[v].lru)
			v = i;
	}
	int ret = l2_writeback(s, v);
	if (ret < 0)
		return ret;
	c->e[v].offset = 0;
	return v;
}

int qcow2_l2_load(struct qcow2 *s, uint64_t l2_off, int *slot)
{
	int i = cache_find(&s->l2_cache, l2_off);
	if (i >= 0) {
		*slot = i;
		return 0;
	}
	int ret = meta_check(s, l2_off, s->cluster_size, "L2 table", 0, l2_off);
	if (ret < 0)
		return ret;
	i = l2_victim(s);
	if (i < 0)
		return i;
	struct qcow2_cache_entry *e = &s->l2_cache.e[i];
	ret = qcow2_file_read(s, l2_off, e->table, s->cluster_size);
	if (ret < 0) {
		blk_set_error("%s: cannot read L2 table at 0x%llx: %s", s->file->path,
			      (unsigned long long)l2_off, strerror(-ret));
		return ret;
	}
	e->offset = l2_off;
	e->dirty = false;
	e->lru = ++s->l2_cache.tick;
	*slot = i;
	return 0;
}

int qcow2_write_l1_entry(struct qcow2 *s, uint32_t idx)
{
	uint8_t b[8];
	be64_store(b, s->l1[idx]);
	return qcow2_file_write(s, s->h.l1_offset + (uint64_t)idx * 8, b, 8);
}

/* ---- mapping ---- */

struct mapping {
	enum qcow2_ctype type;
	uint64_t entry; /* raw L2 entry of the first cluster */
	uint64_t host;	/* NORMAL: host offset of the requested byte */
	uint64_t bytes; /* contiguous bytes with the same mapping */
	bool writable;	/* NORMAL and refcount 1 (COPIED) */
};

static int classify(struct qcow2 *s, uint64_t e, uint64_t l2_off, uint32_t idx,
		    enum qcow2_ctype *type)
{
	if (e & QCOW2_OFLAG_COMPRESSED) {
		uint32_t x = 62 - (s->cluster_bits - 8);
		uint64_t coff = e & ((1ull << x) - 1);
		if (coff < s->cluster_size || coff >= s->file_end) {
			blk_set_error(
			    "%s: L2 table at 0x%llx entry %u: compressed cluster at 0x%llx "
			    "is outside the image or in the header",
			    s->file->path, (unsigned long long)l2_off, idx,
			    (unsigned long long)coff);
			return -EIO;
		}
		*type = QCOW2_COMPRESSED;
		return 0;
	}
	if (s->h.version >= 3 && (e & QCOW2_OFLAG_ZERO)) {
		*type = QCOW2_ZERO;
		return 0;
	}
	uint64_t host = e & QCOW2_OFFSET_MASK;
	if (e & QCOW2_L2E_RESERVED & ~1ull) {
		blk_set_error("%s: L2 table at 0x%llx entry %u has reserved bits set (0x%llx)",
			      s->file->path, (unsigned long long)l2_off, idx,
			      (unsigned long long)e);
		return -EIO;
	}
	if (!host) {
		*type = QCOW2_UNALLOC;
		return 0;
	}
	char what[96];
	snprintf(what, sizeof(what), "data cluster (L2 table 0x%llx entry %u)",
		 (unsigned long long)l2_off, idx);
	int ret = qcow2_check_meta_offset(s, host, s->cluster_size, what);
	if (ret < 0)
		return ret;
	*type = QCOW2_NORMAL;
	return 0;
}

static int get_mapping(struct qcow2 *s, uint64_t voff, uint64_t max, struct mapping *m)
{
	uint64_t cs = s->cluster_size;
	uint64_t in = voff & (cs - 1);
	uint64_t l2_span = (uint64_t)s->l2_entries << s->cluster_bits;
	uint64_t l1_idx = voff / l2_span;
	uint32_t l2_idx = (uint32_t)((voff >> s->cluster_bits) & (s->l2_entries - 1));
	uint64_t to_table_end = l2_span - (voff % l2_span);
	if (max > to_table_end)
		max = to_table_end;
	memset(m, 0, sizeof(*m));
	if (l1_idx >= s->l1_size || !(s->l1[l1_idx] & QCOW2_OFFSET_MASK)) {
		m->type = QCOW2_UNALLOC;
		m->bytes = max;
		return 0;
	}
	uint64_t l2_off = s->l1[l1_idx] & QCOW2_OFFSET_MASK;
	int slot;
	int ret = qcow2_l2_load(s, l2_off, &slot);
	if (ret == -EIO)
		qcow2_signal_corruption(s, blk_last_error());
	if (ret < 0)
		return ret;
	const uint64_t *t = s->l2_cache.e[slot].table;
	uint64_t e = be64toh(t[l2_idx]);
	ret = classify(s, e, l2_off, l2_idx, &m->type);
	if (ret == -EIO)
		qcow2_signal_corruption(s, blk_last_error());
	if (ret < 0)
		return ret;
	m->entry = e;
	m->writable = m->type == QCOW2_NORMAL && (e & QCOW2_OFLAG_COPIED);
	uint64_t host0 = e & QCOW2_OFFSET_MASK;
	if (m->type == QCOW2_NORMAL)
		m->host = host0 + in;
	uint64_t bytes = cs - in;
	if (m->type != QCOW2_COMPRESSED) {
		uint32_t i = l2_idx + 1;
		while (bytes < max && i < s->l2_entries) {
			uint64_t e2 = be64toh(t[i]);
			enum qcow2_ctype t2;
			if (classify(s, e2, l2_off, i, &t2) < 0 || t2 != m->type)
				break;
			if (t2 == QCOW2_NORMAL &&
			    ((e2 & QCOW2_OFFSET_MASK) != host0 + (uint64_t)(i - l2_idx) * cs ||
			     (e2 & QCOW2_OFLAG_COPIED) != (e & QCOW2_OFLAG_COPIED)))
				break;
			if (t2 == QCOW2_ZERO && (e2 & QCOW2_OFFSET_MASK) &&
			    (e & QCOW2_OFFSET_MASK) == 0)
				break;
			if (t2 == QCOW2_ZERO && !(e2 & QCOW2_OFFSET_MASK) &&
			    (e & QCOW2_OFFSET_MASK))
				break;
			bytes += cs;
			i++;
		}
	}
	m->bytes = bytes < max ? bytes : max;
	return 0;
}

/* ---- compressed clusters ---- */

static void compressed_range(struct qcow2 *s, uint64_t e, uint64_t *coff, uint64_t *csize)
{
	uint32_t x = 62 - (s->cluster_bits - 8);
	*coff = e & ((1ull << x) - 1);
	uint64_t nsec = ((e >> x) & ((1ull << (s->cluster_bits - 8)) - 1)) + 1;
	*csize = nsec * 512 - (*coff & 511);
}

static int decompress(struct qcow2 *s, const uint8_t *in, size_t inlen, uint8_t *out)
{
	size_t cs = s->cluster_size;
	if (s->h.compression_type == QCOW2_COMPRESS_ZSTD) {
		ZSTD_DCtx *d = ZSTD_createDCtx();
		if (!d)
			return -ENOMEM;
		ZSTD_inBuffer ib = {in, inlen, 0};
		ZSTD_outBuffer ob = {out, cs, 0};
		int ret = 0;
		while (ob.pos < cs) {
			size_t r = ZSTD_decompressStream(d, &ob, &ib);
			if (ZSTD_isError(r)) {
				ret = -EIO;
				break;
			}
			if (r == 0 || (ib.pos == ib.size && ob.pos < cs)) {
				if (ob.pos < cs)
					ret = -EIO;
				break;
			}
		}
		ZSTD_freeDCtx(d);
		return ret;
	}
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, -12) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)cs;
	int r = inflate(&z, Z_FINISH);
	int ret = 0;
	if ((r != Z_STREAM_END && r != Z_BUF_ERROR) || z.total_out != cs)
		ret = -EIO;
	inflateEnd(&z);
	return ret;
}

/* Decompresses the cluster described by L2 entry E into s->cbuf (lock held). */
static int read_compressed(struct qcow2 *s, uint64_t e)
{
	if (s->cbuf_offset == e)
		return 0;
	uint64_t coff, csize;
	compressed_range(s, e, &coff, &csize);
	if (coff >= s->file_end) {
		blk_set_error("%s: compressed cluster at 0x%llx is outside the image",
			      s->file->path, (unsigned long long)coff);
		return -EIO;
	}
	if (csize > s->file_end - coff)
		csize = s->file_end - coff;
	uint8_t *tmp = malloc(csize ? csize : 1);
	if (!tmp)
		return -ENOMEM;
	int ret = qcow2_file_read(s, coff, tmp, csize);
	if (ret == 0)
		ret = decompress(s, tmp, csize, s->cbuf);
	free(tmp);
	if (ret < 0) {
		s->cbuf_offset = 0;
		blk_set_error("%s: compressed cluster at 0x%llx (%llu bytes) does not decompress",
			      s->file->path, (unsigned long long)coff, (unsigned long long)csize);
		return -EIO;
	}
	s->cbuf_offset = e;
	return 0;
}

/* Returns the compressed size, or 0 if the data does not compress below one cluster. */
static size_t compress_cluster(struct qcow2 *s, const uint8_t *in, size_t len, uint8_t *out,
			       size_t outcap)
{
	if (s->h.compression_type == QCOW2_COMPRESS_ZSTD) {
		size_t r = ZSTD_compress(out, outcap, in, len, 3);
		if (ZSTD_isError(r) || r >= outcap)
			return 0;
		return r;
	}
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)outcap;
	int r = deflate(&z, Z_FINISH);
	size_t n = z.total_out;
	deflateEnd(&z);
	if (r != Z_STREAM_END || n >= outcap)
		return 0;
	return n;
}

/* ---- reads ---- */

static int read_backing(struct blk *b, uint64_t off, uint8_t *buf, uint64_t len)
{
	struct blk *bk = b->backing;
	if (!bk || off >= bk->size) {
		memset(buf, 0, len);
		return 0;
	}
	uint64_t n = len;
	if (n > bk->size - off)
		n = bk->size - off;
	int ret = blk_pread(bk, off, buf, n);
	if (ret < 0)
		return ret;
	if (n < len)
		memset(buf + n, 0, len - n);
	return 0;
}

/* Reads guest bytes through mapping M (lock held; released around plain data I/O by the
 * caller). */
static int read_mapped(struct blk *b, struct qcow2 *s, const struct mapping *m, uint64_t voff,
		       uint8_t *buf, uint64_t n)
{
	switch (m->type) {
	case QCOW2_UNALLOC:
		return read_backing(b, voff, buf, n);
	case QCOW2_ZERO:
		memset(buf, 0, n);
		return 0;
	case QCOW2_COMPRESSED: {
		int ret = read_compressed(s, m->entry);
		if (ret < 0)
			return ret;
		memcpy(buf, s->cbuf + (voff & (s->cluster_size - 1)), n);
		return 0;
	}
	case QCOW2_NORMAL:
		return qcow2_file_read(s, m->host, buf, n);
	}
	return -EIO;
}

static int qcow2_pread(struct blk *b, uint64_t off, void *vbuf, size_t len)
{
	struct qcow2 *s = b->opaque;
	uint8_t *buf = vbuf;
	while (len) {
		struct mapping m;
		pthread_mutex_lock(&s->lock);
		int ret = get_mapping(s, off, len, &m);
		if (ret == 0 && m.type == QCOW2_COMPRESSED)
			ret = read_mapped(b, s, &m, off, buf, m.bytes);
		if (ret == 0 && m.type != QCOW2_COMPRESSED)
			pthread_rwlock_rdlock(&s->io_lock);
		pthread_mutex_unlock(&s->lock);
		if (ret < 0)
			return ret;
		if (m.type != QCOW2_COMPRESSED) {
			ret = read_mapped(b, s, &m, off, buf, m.bytes);
			pthread_rwlock_unlock(&s->io_lock);
			if (ret < 0)
				return ret;
		}
		off += m.bytes;
		buf += m.bytes;
		len -= m.bytes;
	}
	return 0;
}

/* ---- writes ---- */

struct pending_free {
	uint64_t off, len;
};

struct write_ctx {
	struct pending_free *frees;
	size_t nfrees, cap;
};

static int defer_free(struct write_ctx *w, uint64_t off, uint64_t len)
{
	if (w->nfrees == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		struct pending_free *n = realloc(w->frees, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		w->frees = n;
		w->cap = cap;
	}
	w->frees[w->nfrees++] = (struct pending_free){off, len};
	return 0;
}

static int defer_free_entry(struct qcow2 *s, struct write_ctx *w, uint64_t e)
{
	if (e & QCOW2_OFLAG_COMPRESSED) {
		uint64_t coff, csize;
		compressed_range(s, e, &coff, &csize);
		return defer_free(w, coff, csize);
	}
	uint64_t host = e & QCOW2_OFFSET_MASK;
	if (host)
		return defer_free(w, host, s->cluster_size);
	return 0;
}

/* Drops the references in W once the tables that no longer hold them are on disk. */
static int finish_frees(struct qcow2 *s, struct write_ctx *w)
{
	int ret = 0;
	if (w->nfrees) {
		ret = qcow2_cache_flush(s);
		if (ret == 0)
			ret = qcow2_sync(s);
		pthread_rwlock_wrlock(&s->io_lock); /* wait for I/O to the clusters being freed */
		for (size_t i = 0; i < w->nfrees && ret == 0; i++)
			ret = qcow2_update_refcount(s, w->frees[i].off, w->frees[i].len, -1);
		/* Give the space of clusters nobody uses any more back to the host. */
		for (size_t i = 0; i < w->nfrees && ret == 0; i++) {
			uint64_t cs = s->cluster_size;
			uint64_t c0 = w->frees[i].off / cs,
				 c1 = (w->frees[i].off + w->frees[i].len - 1) / cs;
			for (uint64_t c = c0; c <= c1; c++) {
				uint64_t rc;
				if (qcow2_get_refcount(s, c, &rc) == 0 && rc == 0 &&
				    c * cs < s->file_end)
					(void)!blk_raw_driver.discard(s->file, c * cs, cs);
			}
		}
		pthread_rwlock_unlock(&s->io_lock);
	}
	free(w->frees);
	w->frees = NULL;
	w->nfrees = w->cap = 0;
	return ret;
}

/* Makes the L2 table for L1 index IDX writable (allocating it, or copying it if a snapshot
 * shares it) and returns its cache slot. */
static int prepare_l2(struct qcow2 *s, uint64_t idx, int *slot)
{
	uint64_t l1e = s->l1[idx];
	uint64_t old = l1e & QCOW2_OFFSET_MASK;
	int ret;
	if (old && (l1e & QCOW2_OFLAG_COPIED))
		return qcow2_l2_load(s, old, slot);
	uint8_t *t = calloc(1, s->cluster_size);
	if (!t)
		return -ENOMEM;
	if (old) {
		ret = qcow2_l2_load(s, old, slot);
		if (ret < 0)
			goto out;
		memcpy(t, s->l2_cache.e[*slot].table, s->cluster_size);
	}
	uint64_t n;
	ret = qcow2_alloc_clusters(s, 1, &n);
	if (ret < 0)
		goto out;
	ret = qcow2_file_write(s, n, t, s->cluster_size);
	if (ret == 0)
		ret = qcow2_sync(s); /* table and its refcount before the L1 entry */
	if (ret < 0)
		goto out;
	s->l1[idx] = n | QCOW2_OFLAG_COPIED;
	ret = qcow2_write_l1_entry(s, (uint32_t)idx);
	if (ret < 0)
		goto out;
	if (old)
		l2_index_remove(s, old);
	ret = l2_index_add(s, n);
	if (ret < 0)
		goto out;
	if (old) {
		ret = qcow2_sync(s);
		if (ret == 0)
			ret = qcow2_update_refcount(s, old, s->cluster_size, -1);
		if (ret < 0)
			goto out;
	}
	int v = l2_victim(s);
	if (v < 0) {
		ret = v;
		goto out;
	}
	struct qcow2_cache_entry *e = &s->l2_cache.e[v];
	memcpy(e->table, t, s->cluster_size);
	e->offset = n;
	e->dirty = false;
	e->lru = ++s->l2_cache.tick;
	*slot = v;
out:
	free(t);
	return ret;
}

static void l2_set(struct qcow2 *s, int slot, uint64_t voff, uint64_t e)
{
	uint32_t i = (uint32_t)((voff >> s->cluster_bits) & (s->l2_entries - 1));
	s->l2_cache.e[slot].table[i] = htobe64(e);
	s->l2_cache.e[slot].dirty = true;
}

/* Fills the bytes of the guest cluster at CVOFF outside [from, to) from its old content. */
static int fill_cow(struct blk *b, struct qcow2 *s, uint64_t cvoff, uint8_t *cbuf, uint64_t from,
		    uint64_t to)
{
	uint64_t cs = s->cluster_size;
	struct mapping m;
	int ret = get_mapping(s, cvoff, cs, &m);
	if (ret < 0)
		return ret;
	if (m.type == QCOW2_ZERO || (m.type == QCOW2_UNALLOC && !b->backing)) {
		/* (no backing opened: only "img commit" writes such an image, whole clusters) */
		memset(cbuf, 0, from);
		memset(cbuf + to, 0, cs - to);
		return 0;
	}
	uint8_t *old = malloc(cs);
	if (!old)
		return -ENOMEM;
	uint64_t vlen = cs;
	if (cvoff + vlen > b->size)
		vlen = b->size - cvoff;
	memset(old, 0, cs);
	ret = read_mapped(b, s, &m, cvoff, old, vlen);
	if (ret == 0) {
		memcpy(cbuf, old, from);
		memcpy(cbuf + to, old + to, cs - to);
	}
	free(old);
	return ret;
}

/* Allocates new clusters for the guest range [off, off+len) (within one L2 table, all with
 * mapping M), writes DATA (NULL = zeros) and points the L2 entries at them. */
static int write_alloc(struct blk *b, struct qcow2 *s, struct write_ctx *w, uint64_t off,
		       const uint8_t *data, uint64_t len)
{
	uint64_t cs = s->cluster_size;
	uint64_t cstart = off & ~(cs - 1);
	uint64_t cend = round_up(off + len, cs);
	uint64_t n = (cend - cstart) / cs;
	uint64_t l1_idx = off / ((uint64_t)s->l2_entries << s->cluster_bits);
	int slot, ret;
	uint8_t *cbuf = NULL;

	/* Old content for partial head/tail clusters, read before anything changes. */
	uint64_t head = off - cstart, tail_end = (off + len) - (cend - cs);
	bool head_partial = head != 0 || (n == 1 && tail_end != cs);
	bool tail_partial = n > 1 && tail_end != cs;
	cbuf = malloc(cs * 2);
	if (!cbuf)
		return -ENOMEM;
	if (head_partial) {
		uint64_t to = n == 1 ? head + len : cs;
		ret = fill_cow(b, s, cstart, cbuf, head, to);
		if (ret < 0)
			goto out;
		if (data)
			memcpy(cbuf + head, data, to - head);
		else
			memset(cbuf + head, 0, to - head);
	}
	if (tail_partial) {
		ret = fill_cow(b, s, cend - cs, cbuf + cs, 0, tail_end);
		if (ret < 0)
			goto out;
		if (data)
			memcpy(cbuf + cs, data + (len - tail_end), tail_end);
		else
			memset(cbuf + cs, 0, tail_end);
	}
	ret = prepare_l2(s, l1_idx, &slot);
	if (ret < 0)
		goto out;
	uint64_t host;
	ret = qcow2_alloc_clusters(s, n, &host);
	if (ret < 0)
		goto out;
	/* Data: head cluster, middle clusters, tail cluster. */
	uint64_t pos = 0; /* cluster index within the run */
	if (head_partial) {
		ret = qcow2_file_write(s, host, cbuf, cs);
		if (ret < 0)
			goto out;
		pos = 1;
	}
	uint64_t mid_end = tail_partial ? n - 1 : n;
	if (mid_end > pos) {
		uint64_t dstart = cstart + pos * cs - off; /* offset into DATA */
		uint64_t bytes = (mid_end - pos) * cs;
		if (data) {
			ret = qcow2_file_write(s, host + pos * cs, data + dstart, bytes);
		} else {
			uint8_t *z = calloc(1, bytes);
			ret = z ? qcow2_file_write(s, host + pos * cs, z, bytes) : -ENOMEM;
			free(z);
		}
		if (ret < 0)
			goto out;
	}
	if (tail_partial) {
		ret = qcow2_file_write(s, host + (n - 1) * cs, cbuf + cs, cs);
		if (ret < 0)
			goto out;
	}
	s->need_sync = true;
	/* Point the L2 entries at the new clusters; the old ones are dropped later. */
	uint64_t *t = s->l2_cache.e[slot].table;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t v = cstart + i * cs;
		uint32_t li = (uint32_t)((v >> s->cluster_bits) & (s->l2_entries - 1));
		uint64_t old = be64toh(t[li]);
		ret = defer_free_entry(s, w, old);
		if (ret < 0)
			goto out;
		l2_set(s, slot, v, (host + i * cs) | QCOW2_OFLAG_COPIED);
	}
	if (s->cbuf_offset)
		s->cbuf_offset = 0;
out:
	free(cbuf);
	return ret;
}

static int write_locked(struct blk *b, struct qcow2 *s, struct write_ctx *w, uint64_t off,
			const uint8_t *buf, uint64_t len)
{
	while (len) {
		struct mapping m;
		int ret = get_mapping(s, off, len, &m);
		if (ret < 0)
			return ret;
		if (m.writable && buf) {
			ret = qcow2_file_write(s, m.host, buf, m.bytes);
		} else if (m.writable) {
			uint8_t *z = calloc(1, m.bytes);
			ret = z ? qcow2_file_write(s, m.host, z, m.bytes) : -ENOMEM;
			free(z);
		} else {
			ret = write_alloc(b, s, w, off, buf, m.bytes);
		}
		if (ret < 0)
			return ret;
		off += m.bytes;
		if (buf)
			buf += m.bytes;
		len -= m.bytes;
	}
	return 0;
}

static int qcow2_pwrite(struct blk *b, uint64_t off, const void *vbuf, size_t len)
{
	struct qcow2 *s = b->opaque;
	const uint8_t *buf = vbuf;
	struct write_ctx w = {0};
	int ret = 0;
	pthread_mutex_lock(&s->lock);
	ret = refuse_if_corrupt(b, s);
	while (len && ret == 0) {
		struct mapping m;
		ret = get_mapping(s, off, len, &m);
		if (ret < 0)
			break;
		if (m.writable) {
			/* Allocated and ours alone: plain write, without holding the lock. */
			pthread_rwlock_rdlock(&s->io_lock);
			pthread_mutex_unlock(&s->lock);
			ret = blk_raw_driver.pwrite(s->file, m.host, buf, m.bytes);
			pthread_rwlock_unlock(&s->io_lock);
			pthread_mutex_lock(&s->lock);
		} else {
			ret = write_alloc(b, s, &w, off, buf, m.bytes);
		}
		if (ret < 0)
			break;
		off += m.bytes;
		buf += m.bytes;
		len -= m.bytes;
	}
	int r2 = finish_frees(s, &w);
	if (ret == 0)
		ret = r2;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int qcow2_pwrite_compressed(struct blk *b, uint64_t off, const void *buf, size_t len)
{
	struct qcow2 *s = b->opaque;
	uint64_t cs = s->cluster_size;
	if ((off & (cs - 1)) || (len != cs && off + len != b->size) || len > cs) {
		blk_set_error("%s: compressed writes must cover exactly one cluster", b->path);
		return -EINVAL;
	}
	uint8_t *in = (uint8_t *)buf, *padded = NULL;
	if (len < cs) {
		padded = calloc(1, cs);
		if (!padded)
			return -ENOMEM;
		memcpy(padded, buf, len);
		in = padded;
	}
	uint8_t *out = malloc(cs);
	if (!out) {
		free(padded);
		return -ENOMEM;
	}
	size_t clen = compress_cluster(s, in, cs, out, cs - 512);
	struct write_ctx w = {0};
	int ret = 0;
	pthread_mutex_lock(&s->lock);
	ret = refuse_if_corrupt(b, s);
	if (ret < 0)
		goto out;
	if (clen == 0) {
		ret = write_locked(b, s, &w, off, buf, len);
		goto out;
	}
	uint64_t l1_idx = off / ((uint64_t)s->l2_entries << s->cluster_bits);
	int slot;
	ret = prepare_l2(s, l1_idx, &slot);
	if (ret < 0)
		goto out;
	/* Pack after the previous compressed cluster if it fits in that host cluster. */
	uint64_t coff = s->comp_next;
	if (!coff || (coff & (cs - 1)) == 0 || (coff & (cs - 1)) + clen > cs) {
		uint64_t n = (clen + cs - 1) / cs;
		ret = qcow2_alloc_clusters(s, n, &coff);
		if (ret < 0)
			goto out;
	} else {
		ret = qcow2_update_refcount(s, coff & ~(cs - 1), 1, 1);
		if (ret < 0)
			goto out;
	}
	ret = qcow2_file_write(s, coff, out, clen);
	if (ret < 0)
		goto out;
	s->comp_next = coff + clen;
	s->need_sync = true;
	uint32_t x = 62 - (s->cluster_bits - 8);
	uint64_t nsec = ((coff + clen - 1) >> 9) - (coff >> 9) + 1;
	uint64_t e = QCOW2_OFLAG_COMPRESSED | ((nsec - 1) << x) | coff;
	uint32_t li = (uint32_t)((off >> s->cluster_bits) & (s->l2_entries - 1));
	ret = defer_free_entry(s, &w, be64toh(s->l2_cache.e[slot].table[li]));
	if (ret < 0)
		goto out;
	l2_set(s, slot, off, e);
	s->cbuf_offset = 0;
out:;
	int r2 = finish_frees(s, &w);
	if (ret == 0)
		ret = r2;
	pthread_mutex_unlock(&s->lock);
	free(out);
	free(padded);
	return ret;
}

enum zero_mode {
	ZERO_KEEP,    /* zero flag, keep preallocated clusters */
	ZERO_UNMAP,   /* reads as zero, clusters freed */
	ZERO_DEALLOC, /* unallocated: the backing file shows through (make_empty) */
};

/* Zeroes or deallocates whole clusters [off, off+len) (cluster aligned). */
static int zero_clusters(struct blk *b, struct qcow2 *s, struct write_ctx *w, uint64_t off,
			 uint64_t len, enum zero_mode mode)
{
	uint64_t cs = s->cluster_size;
	bool has_backing = s->backing_file != NULL;
	while (len) {
		uint64_t l2_span = (uint64_t)s->l2_entries << s->cluster_bits;
		uint64_t l1_idx = off / l2_span;
		uint64_t n = l2_span - off % l2_span;
		if (n > len)
			n = len;
		struct mapping m;
		int ret = get_mapping(s, off, n, &m);
		if (ret < 0)
			return ret;
		n = m.bytes;
		bool done;
		if (mode == ZERO_DEALLOC)
			done = m.type == QCOW2_UNALLOC;
		else
			done = (m.type == QCOW2_UNALLOC && !has_backing) ||
			       (m.type == QCOW2_ZERO &&
				(mode == ZERO_UNMAP || (m.entry & QCOW2_OFFSET_MASK)));
		if (!done && s->h.version < 3 && mode != ZERO_DEALLOC) {
			ret = write_locked(b, s, w, off, NULL, n); /* no zero flag in v2 */
			if (ret < 0)
				return ret;
			goto next;
		}
		if (!done) {
			int slot;
			ret = prepare_l2(s, l1_idx, &slot);
			if (ret < 0)
				return ret;
			uint64_t *t = s->l2_cache.e[slot].table;
			for (uint64_t v = off; v < off + n; v += cs) {
				uint32_t li =
				    (uint32_t)((v >> s->cluster_bits) & (s->l2_entries - 1));
				uint64_t old = be64toh(t[li]);
				uint64_t ne;
				bool keep = mode == ZERO_KEEP && !(old & QCOW2_OFLAG_COMPRESSED) &&
					    (old & QCOW2_OFLAG_COPIED) && (old & QCOW2_OFFSET_MASK);
				if (keep) {
					ne = (old & (QCOW2_OFFSET_MASK | QCOW2_OFLAG_COPIED)) |
					     QCOW2_OFLAG_ZERO;
				} else {
					ret = defer_free_entry(s, w, old);
					if (ret < 0)
						return ret;
					if (mode == ZERO_DEALLOC)
						ne = 0;
					else if (mode == ZERO_UNMAP && !has_backing)
						ne = 0;
					else
						ne = QCOW2_OFLAG_ZERO;
				}
				l2_set(s, slot, v, ne);
			}
			s->cbuf_offset = 0;
		}
next:
		off += n;
		len -= n;
	}
	return 0;
}

static int zero_range(struct blk *b, uint64_t off, uint64_t len, enum zero_mode mode)
{
	struct qcow2 *s = b->opaque;
	uint64_t cs = s->cluster_size;
	struct write_ctx w = {0};
	int ret = 0;
	pthread_mutex_lock(&s->lock);
	ret = refuse_if_corrupt(b, s);
	if (ret < 0)
		goto done;
	uint64_t a = round_up(off, cs);
	uint64_t e = (off + len) & ~(cs - 1);
	if (off + len == b->size)
		e = round_up(b->size, cs); /* the partial last cluster counts as whole */
	if (a >= e) {
		if (mode != ZERO_DEALLOC)
			ret = write_locked(b, s, &w, off, NULL, len);
	} else {
		if (a > off && mode != ZERO_DEALLOC)
			ret = write_locked(b, s, &w, off, NULL, a - off);
		if (ret == 0)
			ret = zero_clusters(b, s, &w, a, e - a, mode);
		if (ret == 0 && off + len > e && mode != ZERO_DEALLOC)
			ret = write_locked(b, s, &w, e, NULL, off + len - e);
	}
done:;
	int r2 = finish_frees(s, &w);
	if (ret == 0)
		ret = r2;
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int qcow2_discard(struct blk *b, uint64_t off, uint64_t len)
{
	return zero_range(b, off, len, ZERO_UNMAP);
}

static int qcow2_write_zeroes(struct blk *b, uint64_t off, uint64_t len, unsigned flags)
{
	return zero_range(b, off, len, (flags & BLK_ZERO_MAY_UNMAP) ? ZERO_UNMAP : ZERO_KEEP);
}

static int qcow2_make_empty(struct blk *b)
{
	return zero_range(b, 0, b->size, ZERO_DEALLOC);
}

static int qcow2_flush(struct blk *b)
{
	struct qcow2 *s = b->opaque;
	pthread_mutex_lock(&s->lock);
	int ret = qcow2_cache_flush(s);
	if (ret == 0)
		ret = qcow2_sync(s);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ---- resize ---- */

static int qcow2_resize(struct blk *b, uint64_t new_size)
{
	struct qcow2 *s = b->opaque;
	uint64_t cs = s->cluster_size;
	int ret = 0;
	if (new_size > QCOW2_MAX_SIZE) {
		blk_set_error("%s: size %llu is too large", b->path, (unsigned long long)new_size);
		return -EINVAL;
	}
	ret = refuse_if_corrupt(b, s);
	if (ret < 0)
		return ret;
	if (new_size & 511) { /* as qemu: the qcow2 size is kept in whole sectors */
		blk_set_error("%s: the new size must be a multiple of 512 (%llu is not)", b->path,
			      (unsigned long long)new_size);
		return -EINVAL;
	}
	if (new_size < b->size) {
		if (s->nb_snaps) {
			blk_set_error("%s: cannot shrink an image with internal snapshots",
				      b->path);
			return -ENOTSUP;
		}
		ret = qcow2_discard(
		    b, round_up(new_size, cs) < b->size ? round_up(new_size, cs) : b->size,
		    b->size -
			(round_up(new_size, cs) < b->size ? round_up(new_size, cs) : b->size));
		if (ret < 0)
			return ret;
	}
	pthread_mutex_lock(&s->lock);
	uint64_t per_l1 = (uint64_t)s->l2_entries * cs;
	uint64_t need = (new_size + per_l1 - 1) / per_l1;
	if (need * 8 > QCOW2_MAX_L1_BYTES) {
		blk_set_error("%s: size %llu needs too large an L1 table", b->path,
			      (unsigned long long)new_size);
		ret = -EINVAL;
		goto out;
	}
	if (need > s->l1_size) {
		uint64_t old_bytes = round_up((uint64_t)s->l1_size * 8, cs);
		uint64_t *nl1 = calloc(1, round_up(need * 8, cs));
		if (!nl1) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(nl1, s->l1, (size_t)s->l1_size * 8);
		uint8_t *disk = calloc(1, round_up(need * 8, cs));
		uint64_t noff = 0;
		ret = disk ? 0 : -ENOMEM;
		if (ret == 0 && (need * 8 > old_bytes || !s->h.l1_offset))
			ret = qcow2_alloc_clusters(s, round_up(need * 8, cs) / cs, &noff);
		else if (ret == 0)
			noff = s->h.l1_offset; /* still fits in the clusters it has */
		if (ret == 0) {
			for (uint64_t i = 0; i < need; i++)
				be64_store(disk + i * 8, nl1[i]);
			ret = qcow2_file_write(s, noff, disk, round_up(need * 8, cs));
		}
		if (ret == 0)
			ret = qcow2_sync(s);
		if (ret == 0) {
			uint8_t f[12];
			be32_store(f, (uint32_t)need);
			be64_store(f + 4, noff);
			ret = qcow2_update_header_field(s, QCOW2_HDR_L1_SIZE, f, 12);
		}
		if (ret == 0)
			ret = qcow2_sync(s);
		free(disk);
		if (ret < 0) {
			free(nl1);
			goto out;
		}
		uint64_t old_off = s->h.l1_offset;
		free(s->l1);
		s->l1 = nl1;
		s->l1_size = (uint32_t)need;
		s->h.l1_size = (uint32_t)need;
		s->h.l1_offset = noff;
		if (old_off && noff != old_off)
			ret = qcow2_update_refcount(s, old_off, old_bytes, -1);
		if (ret < 0)
			goto out;
	}
	uint8_t f[8];
	be64_store(f, new_size);
	ret = qcow2_update_header_field(s, QCOW2_HDR_SIZE, f, 8);
	if (ret == 0)
		ret = qcow2_sync(s);
	if (ret == 0) {
		s->h.size = new_size;
		b->size = new_size;
	}
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ---- status and info ---- */

/* Decides s->sparse_file as qemu does: the clusters with a refcount (up to the end of the
 * file) are at least max(10/9, 2 more than) the clusters' worth of space the file takes. */
static int detect_sparse_file(struct qcow2 *s)
{
	uint64_t cs = s->cluster_size;
	uint64_t real = blk_raw_allocated(s->file) / cs;
	uint64_t threshold = real * 10 / 9 > real + 2 ? real * 10 / 9 : real + 2;
	uint64_t end = (blk_raw_file_length(s->file) + cs - 1) / cs, count = 0;
	for (uint64_t c = 0; c < end && count < threshold; c++) {
		uint64_t rc;
		int ret = qcow2_get_refcount(s, c, &rc);
		if (ret < 0)
			return ret;
		count += rc != 0;
	}
	s->sparse_file = count >= threshold;
	s->sparse_checked = true;
	return 0;
}

static int qcow2_block_status(struct blk *b, uint64_t off, uint64_t len, struct blk_status *st)
{
	struct qcow2 *s = b->opaque;
	struct mapping m;
	pthread_mutex_lock(&s->lock);
	int ret = get_mapping(s, off, len, &m);
	if (ret == 0 && m.type == QCOW2_NORMAL && !s->sparse_checked)
		ret = detect_sparse_file(s);
	pthread_mutex_unlock(&s->lock);
	if (ret < 0)
		return ret;
	st->len = m.bytes;
	switch (m.type) {
	case QCOW2_UNALLOC:
		st->flags = 0;
		break;
	case QCOW2_ZERO:
		st->flags = BLK_STATUS_ALLOCATED | BLK_STATUS_ZERO;
		break;
	case QCOW2_NORMAL:
		st->flags = BLK_STATUS_ALLOCATED | BLK_STATUS_DATA | BLK_STATUS_OFFSET;
		st->host_offset = m.host;
		if (s->sparse_file) {
			/* a hole in the file under allocated clusters (preallocation=metadata)
			 * reads as zeros, as qemu reports it */
			struct blk_status fst;
			ret = blk_raw_driver.block_status(s->file, m.host, m.bytes, &fst);
			if (ret < 0)
				return ret;
			st->len = fst.len;
			if (fst.flags & BLK_STATUS_ZERO)
				st->flags |= BLK_STATUS_ZERO;
		}
		break;
	case QCOW2_COMPRESSED:
		st->flags = BLK_STATUS_ALLOCATED | BLK_STATUS_DATA | BLK_STATUS_COMPRESSED;
		break;
	}
	return 0;
}

static int qcow2_get_info(struct blk *b, struct blk_info *info)
{
	struct qcow2 *s = b->opaque;
	info->disk_size = blk_raw_allocated(s->file);
	info->file_length = blk_raw_file_length(s->file);
	info->cluster_size = s->cluster_size;
	info->qcow2_version = (int)s->h.version;
	info->refcount_bits = s->refcount_bits;
	info->compression = s->h.compression_type == QCOW2_COMPRESS_ZSTD ? "zstd" : "zlib";
	info->dirty = s->h.incompat & QCOW2_INCOMPAT_DIRTY;
	info->corrupt = s->h.incompat & QCOW2_INCOMPAT_CORRUPT;
	info->lazy_refcounts = s->h.compat & QCOW2_COMPAT_LAZY_REFCOUNTS;
	info->backing_file = s->backing_file;
	info->backing_format = s->backing_fmt;
	info->nb_snapshots = (int)s->nb_snaps;
	info->l2_cache_bytes = (uint64_t)s->l2_cache.n * s->cluster_size;
	return 0;
}

/* ---- open / close ---- */

static void qcow2_free(struct qcow2 *s)
{
	if (!s)
		return;
	cache_destroy(&s->l2_cache);
	cache_destroy(&s->rb_cache);
	qcow2_free_snapshots(s);
	for (int i = 0; i < s->nb_exts; i++)
		free(s->exts[i].data);
	free(s->exts);
	free(s->l1);
	free(s->reftable);
	free(s->refblock_sorted);
	free(s->l2_sorted);
	free(s->snap_l1_start);
	free(s->snap_l1_maxend);
	free(s->problems);
	free(s->backing_file);
	free(s->backing_fmt);
	free(s->cbuf);
	if (s->file)
		blk_close(s->file);
	pthread_mutex_destroy(&s->lock);
	pthread_rwlock_destroy(&s->io_lock);
	free(s);
}

static bool qcow2_probe(const uint8_t *buf, size_t len)
{
	return len >= 8 && be32_load(buf) == QCOW2_MAGIC;
}

/* Check mode: records a problem found at open for the check to report. */
static void open_problem(struct qcow2 *s, int64_t reft_idx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void open_problem(struct qcow2 *s, int64_t reft_idx, const char *fmt, ...)
{
	struct qcow2_open_problem *n =
	    realloc(s->problems, (s->nb_problems + 1) * sizeof(*s->problems));
	if (!n)
		return;
	s->problems = n;
	n += s->nb_problems++;
	n->reft_idx = reft_idx;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(n->msg, sizeof(n->msg), fmt, ap);
	va_end(ap);
}

/* Why refcount block RB (from the refcount table) cannot be used, or NULL. */
static const char *bad_refblock(struct qcow2 *s, uint64_t rb)
{
	if (rb & (s->cluster_size - 1))
		return "is not cluster aligned";
	return header_conflict(s, rb, s->cluster_size, 0);
}

/* Loads the active L1 and the refcount table and checks every entry. A normal open refuses
 * a bad entry; CHECK keeps going: bad refcount table entries are dropped in memory (their
 * refcounts read as 0) and every problem is recorded, L2 pointers are left to the check. */
static int load_tables(struct qcow2 *s, const char *path, bool check)
{
	uint64_t cs = s->cluster_size;
	int ret;
	s->l1_size = s->h.l1_invalid ? 0 : s->h.l1_size;
	if (s->h.l1_invalid) {
		/* Nothing may be written through a table that is not read: treated as marked
		 * corrupt (in memory). */
		s->h.incompat |= QCOW2_INCOMPAT_CORRUPT;
		open_problem(s, -1,
			     "L1 table (offset 0x%llx, %u entries) is outside the image file or "
			     "overlaps the refcount table",
			     (unsigned long long)s->h.l1_offset, s->h.l1_size);
	}
	s->l1 = calloc(1, round_up((uint64_t)s->l1_size * 8, cs) + 8);
	if (!s->l1)
		return -ENOMEM;
	if (s->l1_size) {
		ret = qcow2_file_read(s, s->h.l1_offset, s->l1, (size_t)s->l1_size * 8);
		if (ret < 0)
			return ret;
	}
	for (uint32_t i = 0; i < s->l1_size; i++)
		s->l1[i] = be64toh(s->l1[i]);
	s->reftable_size = (uint32_t)(s->h.reftable_clusters * cs / 8);
	s->reftable = malloc((size_t)s->reftable_size * 8);
	if (!s->reftable)
		return -ENOMEM;
	ret = qcow2_file_read(s, s->h.reftable_offset, s->reftable, (size_t)s->reftable_size * 8);
	if (ret < 0)
		return ret;
	for (uint32_t i = 0; i < s->reftable_size; i++) {
		uint64_t e = be64toh(s->reftable[i]);
		const char *why = NULL;
		if (e & ~QCOW2_REFT_OFFSET_MASK)
			why = "has reserved bits set";
		else if (e)
			why = bad_refblock(s, e);
		s->reftable[i] = e;
		if (!why)
			continue;
		if (!check) {
			blk_set_error("%s: refcount block %u at offset 0x%llx %s (file is %llu "
				      "bytes)",
				      path, i, (unsigned long long)e, why,
				      (unsigned long long)s->file_end);
			return -EINVAL;
		}
		open_problem(s, i, "refcount block %u at offset 0x%llx %s", i,
			     (unsigned long long)e, why);
		s->reftable[i] = 0;
	}
	qcow2_rebuild_refblock_index(s);
	for (uint32_t i = 1; i < s->nb_refblocks; i++) {
		uint64_t dup = s->refblock_sorted[i];
		if (dup != s->refblock_sorted[i - 1] || (i > 1 && dup == s->refblock_sorted[i - 2]))
			continue;
		if (!check) {
			blk_set_error(
			    "%s: two refcount table entries point to the same refcount block "
			    "at 0x%llx",
			    path, (unsigned long long)dup);
			return -EINVAL;
		}
		/* Keep the first entry that points there, drop the others. */
		bool first = true;
		for (uint32_t t = 0; t < s->reftable_size; t++) {
			if (s->reftable[t] != dup)
				continue;
			if (!first) {
				open_problem(s, t,
					     "refcount block %u at offset 0x%llx is also another "
					     "entry's refcount block",
					     t, (unsigned long long)dup);
				s->reftable[t] = 0;
			}
			first = false;
		}
	}
	if (s->nb_problems) {
		qcow2_rebuild_refblock_index(s);
		/* Refcounts of the dropped blocks' clusters read as 0: a repair must not take
		 * them for free space. */
		s->alloc_floor = round_up(s->file_end, cs) / cs;
	}
	for (uint32_t i = 0; i < s->l1_size && !check; i++) {
		uint64_t e = s->l1[i];
		if (e & QCOW2_L1E_RESERVED) {
			blk_set_error("%s: L1 entry %u has reserved bits set (0x%llx)", path, i,
				      (unsigned long long)e);
			return -EINVAL;
		}
		uint64_t l2 = e & QCOW2_OFFSET_MASK;
		if (!l2)
			continue;
		char what[64];
		snprintf(what, sizeof(what), "L2 table of L1 entry %u", i);
		ret = qcow2_check_meta_offset(s, l2, cs, what);
		if (ret < 0)
			return -EINVAL;
	}
	return 0;
}

static int open_backing(struct blk *b, struct qcow2 *s, const struct blk_open_opts *o)
{
	char path[4096];
	const char *name = s->backing_file;
	if (name[0] != '/' && strchr(b->path, '/')) {
		const char *slash = strrchr(b->path, '/');
		snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - b->path), b->path, name);
	} else {
		snprintf(path, sizeof(path), "%s", name);
	}
	enum blk_format fmt = o->backing_format;
	if (s->backing_fmt) {
		fmt = blk_format_parse(s->backing_fmt);
		if ((int)fmt < 0) {
			blk_set_error("%s: unknown backing file format '%s'", b->path,
				      s->backing_fmt);
			return -ENOTSUP;
		}
	}
	struct blk_open_opts bo = *o;
	bo.backing_format = BLK_FMT_PROBE;
	return blk_open_backing(b, path, fmt, &bo, &b->backing);
}

static int qcow2_open(struct blk *b, const struct blk_open_opts *o, int depth)
{
	struct qcow2 *s = calloc(1, sizeof(*s));
	int ret;
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	pthread_rwlock_init(&s->io_lock, NULL);
	b->opaque = s;
	ret = blk_open_file(b->path, o, &s->file);
	if (ret < 0)
		goto err;
	s->file_end = blk_raw_file_length(s->file);
	uint8_t first[4096];
	memset(first, 0, sizeof(first));
	ret = qcow2_file_read(s, 0, first, sizeof(first));
	if (ret < 0)
		goto err;
	size_t have = s->file_end < sizeof(first) ? (size_t)s->file_end : sizeof(first);
	ret = qcow2_parse_header(first, have, s->file_end, &s->h, b->path, o->check);
	if (ret < 0)
		goto err;
	s->cluster_bits = s->h.cluster_bits;
	s->cluster_size = 1u << s->cluster_bits;
	s->l2_bits = s->cluster_bits - 3;
	s->l2_entries = s->cluster_size / 8;
	s->refcount_bits = 1u << s->h.refcount_order;
	s->refcount_max = s->refcount_bits == 64 ? UINT64_MAX : (1ull << s->refcount_bits) - 1;
	s->rb_entries = s->cluster_size * 8 / s->refcount_bits;
	if (s->file_end < s->cluster_size && s->file_end < s->h.header_length) {
		blk_set_error("%s: truncated image", b->path);
		ret = -EINVAL;
		goto err;
	}
	uint8_t *hdr = calloc(1, s->cluster_size);
	if (!hdr) {
		ret = -ENOMEM;
		goto err;
	}
	ret = qcow2_file_read(s, 0, hdr, s->cluster_size);
	if (ret == 0)
		ret = read_extensions(s, hdr, b->path);
	if (ret == 0 && s->h.backing_offset) {
		s->backing_file =
		    strndup((const char *)hdr + s->h.backing_offset, s->h.backing_size);
		if (!s->backing_file)
			ret = -ENOMEM;
	}
	free(hdr);
	if (ret < 0)
		goto err;
	uint64_t unknown = s->h.incompat & ~QCOW2_INCOMPAT_KNOWN;
	if (unknown) {
		char names[256] = "";
		for (int bit = 0; bit < 64; bit++)
			if (unknown & (1ull << bit)) {
				char one[80];
				feature_name(s, bit, one, sizeof(one));
				if (strlen(names) + strlen(one) + 3 < sizeof(names)) {
					if (names[0])
						strcat(names, ", ");
					strcat(names, one);
				}
			}
		blk_set_error("%s: unsupported incompatible qcow2 feature(s): %s", b->path, names);
		ret = -ENOTSUP;
		goto err;
	}
	if ((s->h.incompat & QCOW2_INCOMPAT_CORRUPT) && !o->readonly && !o->check) {
		blk_set_error("%s: image is marked corrupt; open it read-only or repair it",
			      b->path);
		ret = -EIO;
		goto err;
	}
	ret = load_tables(s, b->path, o->check);
	if (ret < 0)
		goto err;
	ret = qcow2_read_snapshots(s);
	if (ret == 0)
		ret = qcow2_rebuild_meta_index(s);
	if (ret < 0)
		goto err;
	size_t l2_bytes = o->l2_cache_bytes ? o->l2_cache_bytes : DEFAULT_L2_CACHE_BYTES;
	int n = (int)(l2_bytes / s->cluster_size);
	if (n < 4)
		n = 4;
	if (n > 65536)
		n = 65536;
	if ((uint32_t)n > s->l1_size && s->l1_size >= 4)
		n = (int)s->l1_size; /* more than every L2 table of the image is of no use */
	ret = cache_init(&s->l2_cache, n, s->cluster_size);
	if (ret == 0)
		ret = cache_init(&s->rb_cache, RB_CACHE_ENTRIES, s->cluster_size);
	if (ret < 0)
		goto err;
	s->cbuf = malloc(s->cluster_size);
	if (!s->cbuf) {
		ret = -ENOMEM;
		goto err;
	}
	s->free_hint = 1;
	b->size = s->h.size;
	if (s->backing_file && !o->no_backing) {
		ret = open_backing(b, s, o);
		if (ret < 0)
			goto err;
	}
	if (!o->readonly && !o->check) {
		if (s->h.incompat & QCOW2_INCOMPAT_DIRTY) {
			/* Refcounts may be stale (lazy refcounts): rebuild them, then clear. */
			struct blk_check_result r;
			log_info("%s: image was not closed cleanly, repairing refcounts", b->path);
			s->check_quiet = true;
			ret = qcow2_check(b, BLK_CHECK_FIX_LEAKS | BLK_CHECK_FIX_ERRORS, &r);
			s->check_quiet = false;
			if (ret < 0)
				goto err;
			s->h.incompat &= ~QCOW2_INCOMPAT_DIRTY;
			uint8_t f[8];
			be64_store(f, s->h.incompat);
			ret = qcow2_update_header_field(s, QCOW2_HDR_INCOMPAT, f, 8);
			if (ret == 0)
				ret = qcow2_sync(s);
			if (ret < 0)
				goto err;
		}
		if (s->h.version >= 3 && s->h.autoclear) {
			/* Bitmaps and other autoclear extensions go stale when we write. */
			uint8_t f[8] = {0};
			s->h.autoclear = 0;
			ret = qcow2_update_header_field(s, 88, f, 8);
			if (ret < 0)
				goto err;
		}
	}
	(void)depth;
	return 0;
err:
	if (b->backing) {
		blk_close(b->backing);
		b->backing = NULL;
	}
	qcow2_free(s);
	b->opaque = NULL;
	return ret;
}

static void qcow2_close(struct blk *b)
{
	struct qcow2 *s = b->opaque;
	if (!s)
		return;
	if (!b->readonly) {
		int ret = qcow2_flush(b);
		if (ret < 0)
			log_error("%s: flush on close failed: %s", b->path, strerror(-ret));
	}
	qcow2_free(s);
	b->opaque = NULL;
}

/* ---- backing file change ---- */

static int qcow2_set_backing(struct blk *b, const char *backing, const char *fmt)
{
	struct qcow2 *s = b->opaque;
	pthread_mutex_lock(&s->lock);
	char *nb = backing && *backing ? strdup(backing) : NULL;
	char *nf = fmt && nb ? strdup(fmt) : NULL;
	char *ob = s->backing_file, *of = s->backing_fmt;
	s->backing_file = nb;
	s->backing_fmt = nf;
	int ret = qcow2_rewrite_header(s);
	if (ret < 0) {
		s->backing_file = ob;
		s->backing_fmt = of;
		free(nb);
		free(nf);
	} else {
		free(ob);
		free(of);
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* ---- create ---- */

/* The cluster layout of a new image: header, refcount table, refcount blocks, L1 table,
 * and with preallocation every L2 table and then every data cluster, in that order. */
struct create_layout {
	struct qcow2 *s; /* cluster and refcount geometry (for qcow2_rb_set) */
	uint64_t total;	 /* clusters in use */
	uint64_t rt_clusters, nrb, l1_clusters, n_l2, n_data;
	uint64_t rt_off, rb_off, l1_off, l2_off, data_off;
};

enum create_region { REGION_REFBLOCKS, REGION_L1, REGION_L2 };

/* Fills cluster I of REGION (zeroed by the caller). */
static void create_fill(const struct create_layout *l, enum create_region region, uint64_t i,
			uint8_t *c)
{
	struct qcow2 *s = l->s;
	uint64_t cs = s->cluster_size, per;
	switch (region) {
	case REGION_REFBLOCKS:
		/* every cluster of the layout is used once */
		for (uint64_t k = i * s->rb_entries; k < l->total && k < (i + 1) * s->rb_entries;
		     k++)
			qcow2_rb_set(s, c, (uint32_t)(k - i * s->rb_entries), 1);
		break;
	case REGION_L1:
		per = cs / 8;
		for (uint64_t k = i * per; k < l->n_l2 && k < (i + 1) * per; k++)
			be64_store(c + (k - i * per) * 8,
				   (l->l2_off + k * cs) | QCOW2_OFLAG_COPIED);
		break;
	case REGION_L2:
		per = s->l2_entries;
		for (uint64_t k = i * per; k < l->n_data && k < (i + 1) * per; k++)
			be64_store(c + (k - i * per) * 8,
				   (l->data_off + k * cs) | QCOW2_OFLAG_COPIED);
		break;
	}
}

/* Writes COUNT clusters of REGION at OFF, up to BUFSIZE bytes (whole clusters) at a time. */
static int create_write(struct blk *f, const struct create_layout *l, enum create_region region,
			uint64_t off, uint64_t count, uint8_t *buf, size_t bufsize)
{
	uint64_t cs = l->s->cluster_size, per = bufsize / cs;
	for (uint64_t i = 0; i < count;) {
		uint64_t n = count - i < per ? count - i : per;
		memset(buf, 0, n * cs);
		for (uint64_t k = 0; k < n; k++)
			create_fill(l, region, i + k, buf + k * cs);
		int ret = blk_raw_driver.pwrite(f, off + i * cs, buf, n * cs);
		if (ret < 0)
			return ret;
		i += n;
	}
	return 0;
}

/* Writes the image: header and refcount table from HEAD, the other metadata generated a
 * buffer at a time, then the data clusters as O->prealloc asks (metadata: the file only
 * grows over them, so they are holes that read as zeros). */
static int create_write_image(const char *path, const struct blk_create_opts *o,
			      const struct create_layout *l, const uint8_t *head)
{
	uint64_t cs = l->s->cluster_size;
	size_t bufsize = cs > (1u << 20) ? cs : (1u << 20);
	uint8_t *buf = malloc(bufsize);
	if (!buf)
		return -ENOMEM;
	int ret = blk_raw_driver.create(path, &(struct blk_create_opts){.format = BLK_FMT_RAW});
	if (ret < 0) {
		free(buf);
		return ret;
	}
	struct blk *f;
	ret = blk_open_file(path, &(struct blk_open_opts){0}, &f);
	if (ret < 0) {
		free(buf);
		return ret;
	}
	ret = blk_raw_driver.pwrite(f, 0, head, (1 + l->rt_clusters) * cs);
	if (ret == 0)
		ret = create_write(f, l, REGION_REFBLOCKS, l->rb_off, l->nrb, buf, bufsize);
	if (ret == 0)
		ret = create_write(f, l, REGION_L1, l->l1_off, l->l1_clusters, buf, bufsize);
	if (ret == 0)
		ret = create_write(f, l, REGION_L2, l->l2_off, l->n_l2, buf, bufsize);
	if (ret < 0)
		blk_set_error("%s: cannot write the new image: %s", path, strerror(-ret));
	uint64_t data_len = l->n_data * cs;
	if (ret == 0 && data_len) {
		if (o->prealloc == BLK_PREALLOC_METADATA) {
			ret = blk_raw_truncate(f, l->data_off + data_len);
			if (ret < 0)
				blk_set_error("%s: cannot set the file size: %s", path,
					      strerror(-ret));
		} else {
			ret = blk_raw_preallocate(f, l->data_off, data_len, o->prealloc);
		}
	}
	if (ret == 0)
		ret = blk_raw_driver.flush(f);
	blk_close(f);
	free(buf);
	return ret;
}

static int qcow2_create(const char *path, const struct blk_create_opts *o)
{
	uint32_t cs = o->cluster_size ? o->cluster_size : 65536;
	int ret;
	if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1))) {
		blk_set_error("%s: cluster size must be a power of two from 512 to 2M", path);
		return -EINVAL;
	}
	int rbits = o->refcount_bits ? o->refcount_bits : 16;
	int order = 0;
	while ((1 << order) < rbits)
		order++;
	if ((1 << order) != rbits || order > 6) {
		blk_set_error("%s: refcount bits must be a power of two up to 64", path);
		return -EINVAL;
	}
	int version = o->version ? o->version : 3;
	if (version == 2 && (order != 4 || o->compression_type || o->lazy_refcounts)) {
		blk_set_error("%s: qcow2 version 2 supports only 16-bit refcounts and zlib", path);
		return -EINVAL;
	}
	if (o->size > QCOW2_MAX_SIZE) {
		blk_set_error("%s: size too large", path);
		return -EINVAL;
	}
	/* As qemu: preallocated clusters would hide the backing file (only subclusters of
	 * extended L2 entries, which we do not write, can avoid that). */
	if (o->prealloc != BLK_PREALLOC_OFF && o->backing_file) {
		blk_set_error("%s: preallocation cannot be used with a backing file", path);
		return -EINVAL;
	}
	struct qcow2 *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	uint32_t bits = 0;
	while ((1u << bits) < cs)
		bits++;
	s->cluster_size = cs;
	s->cluster_bits = bits;
	s->l2_entries = cs / 8;
	s->refcount_bits = (uint32_t)rbits;
	s->rb_entries = cs * 8 / (uint32_t)rbits;
	uint64_t l2e = cs / 8;
	uint64_t l1_size = (o->size + l2e * cs - 1) / (l2e * cs);
	uint8_t *head = NULL;
	if (l1_size * 8 > QCOW2_MAX_L1_BYTES) {
		blk_set_error("%s: size too large for cluster size %u", path, cs);
		ret = -EINVAL;
		goto out;
	}
	struct create_layout l = {.s = s};
	uint64_t rb_entries = s->rb_entries;
	/* an empty disk has no L1 clusters (its L1 offset is the end of the file) */
	l.l1_clusters = (l1_size * 8 + cs - 1) / cs;
	uint64_t data_clusters = (o->size + cs - 1) / cs;
	if (o->prealloc != BLK_PREALLOC_OFF) {
		l.n_l2 = l1_size;
		l.n_data = data_clusters;
	}
	/* Size the refcount table for a fully allocated disk plus its metadata, so it does
	 * not have to grow in normal use. */
	uint64_t guess = data_clusters + data_clusters / l2e + l.l1_clusters + 16;
	uint64_t rt_entries = guess / rb_entries + 2;
	l.rt_clusters = (rt_entries * 8 + cs - 1) / cs;
	if (l.rt_clusters * cs > QCOW2_MAX_REFTABLE_BYTES)
		l.rt_clusters = QCOW2_MAX_REFTABLE_BYTES / cs;
	/* Enough refcount blocks for every cluster of the layout (themselves included), and
	 * a refcount table that holds them: grow both until they stop growing. */
	l.nrb = 1;
	for (bool grew = true; grew;) {
		grew = false;
		uint64_t clusters = 1 + l.rt_clusters + l.nrb + l.l1_clusters + l.n_l2 + l.n_data;
		uint64_t need_rb = (clusters + rb_entries - 1) / rb_entries;
		uint64_t need_rt = (need_rb * 8 + cs - 1) / cs;
		if (need_rb > l.nrb) {
			l.nrb = need_rb;
			grew = true;
		}
		if (need_rt > l.rt_clusters) {
			l.rt_clusters = need_rt;
			grew = true;
		}
	}
	if (l.rt_clusters * cs > QCOW2_MAX_REFTABLE_BYTES) {
		blk_set_error("%s: size too large to preallocate with cluster size %u", path, cs);
		ret = -EINVAL;
		goto out;
	}
	l.rt_off = cs;
	l.rb_off = l.rt_off + l.rt_clusters * cs;
	l.l1_off = l.rb_off + l.nrb * cs;
	l.l2_off = l.l1_off + l.l1_clusters * cs;
	l.data_off = l.l2_off + l.n_l2 * cs;
	l.total = 1 + l.rt_clusters + l.nrb + l.l1_clusters + l.n_l2 + l.n_data;

	s->h.version = (uint32_t)version;
	s->h.cluster_bits = bits;
	s->h.size = o->size;
	s->h.l1_size = (uint32_t)l1_size;
	s->h.l1_offset = l.l1_off;
	s->h.reftable_offset = l.rt_off;
	s->h.reftable_clusters = (uint32_t)l.rt_clusters;
	s->h.refcount_order = (uint32_t)order;
	s->h.header_length = version == 3 ? QCOW2_HDR_V3_LENGTH : QCOW2_HDR_V2_LENGTH;
	s->h.compression_type = (uint8_t)o->compression_type;
	if (o->compression_type)
		s->h.incompat |= QCOW2_INCOMPAT_COMPRESSION;
	if (o->lazy_refcounts)
		s->h.compat |= QCOW2_COMPAT_LAZY_REFCOUNTS;
	if (o->backing_file) {
		s->backing_file = strdup(o->backing_file);
		if (o->backing_format)
			s->backing_fmt = strdup(o->backing_format);
	}
	head = calloc(1 + l.rt_clusters, cs);
	if (!head) {
		ret = -ENOMEM;
		goto out;
	}
	ret = build_header(s, head);
	if (ret < 0) {
		blk_set_error("%s: %s", path, blk_last_error());
		goto out;
	}
	for (uint64_t i = 0; i < l.nrb; i++)
		be64_store(head + l.rt_off + i * 8, l.rb_off + i * cs);
	ret = create_write_image(path, o, &l, head);
out:
	free(head);
	free(s->backing_file);
	free(s->backing_fmt);
	pthread_mutex_destroy(&s->lock);
	free(s);
	return ret;
}

/* ---- measure ---- */

/* Refcount table and block clusters that count CLUSTERS clusters and themselves: grown
 * until they stop growing (each refcount block adds clusters to count, and so may the
 * table that lists the blocks). */
static uint64_t refcount_meta_clusters(uint64_t clusters, uint64_t cs, uint32_t refcount_bits)
{
	uint64_t per_block = cs * 8 / refcount_bits, per_table_cluster = cs / 8;
	uint64_t blocks = 0, table = 0;
	for (;;) {
		uint64_t nb = (clusters + blocks + table + per_block - 1) / per_block;
		uint64_t nt = (nb + per_table_cluster - 1) / per_table_cluster;
		if (nb == blocks && nt == table)
			return blocks + table;
		blocks = nb;
		table = nt;
	}
}

/* Bytes of a fully allocated image of SIZE (cluster aligned) bytes, counted as qemu
 * counts them: a header cluster, L2 tables for whole L1 entries, whole L1 clusters, the
 * refcount structures for all of that, and the data. */
static uint64_t fully_allocated_size(uint64_t size, uint64_t cs, uint32_t refcount_bits)
{
	uint64_t l2_per_table = cs / 8;
	uint64_t l2_entries = round_up(size / cs, l2_per_table);
	uint64_t l1_entries = round_up(l2_entries / l2_per_table, cs / 8);
	uint64_t meta = cs + l2_entries * 8 + l1_entries * 8;
	meta += refcount_meta_clusters((meta + size) / cs, cs, refcount_bits) * cs;
	return meta + size;
}

/* As qemu-img measure: the metadata of a fully allocated image is always counted; the
 * data clusters only where IN has data (every one with a backing file, whose content we
 * cannot know, or with falloc/full preallocation). */
static int qcow2_measure(const struct blk_create_opts *o, struct blk *in, struct blk_measure *m)
{
	uint64_t cs = o->cluster_size ? o->cluster_size : 65536;
	uint32_t rbits = o->refcount_bits ? (uint32_t)o->refcount_bits : 16;
	int version = o->version ? o->version : 3;
	if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1))) {
		blk_set_error("cluster size must be a power of two from 512 to 2M");
		return -EINVAL;
	}
	if ((rbits & (rbits - 1)) || rbits > 64 || (version == 2 && rbits != 16)) {
		blk_set_error("refcount bits must be a power of two up to 64 (16 for compat=0.10)");
		return -EINVAL;
	}
	/* a source's size in whole sectors, as qemu sees every image */
	uint64_t in_size = in ? round_up(blk_size(in), 512) : o->size;
	if (in_size > QCOW2_MAX_SIZE) {
		blk_set_error("size too large");
		return -EINVAL;
	}
	uint64_t size = round_up(in_size, cs);
	uint64_t l2_tables = (size / cs + cs / 8 - 1) / (cs / 8);
	if (l2_tables * 8 > QCOW2_MAX_L1_BYTES) {
		blk_set_error("the image size is too large (try a larger cluster size)");
		return -EINVAL;
	}
	uint64_t data = 0;
	if (in && o->backing_file) {
		data = size;
	} else if (in) {
		uint64_t end = blk_size(in);
		for (uint64_t off = 0; off < end;) {
			struct blk_status st;
			int ret = blk_chain_status(in, off, end - off, &st);
			if (ret < 0)
				return ret;
			uint64_t n = st.len;
			if (!(st.flags & BLK_STATUS_ZERO) && (st.flags & BLK_STATUS_DATA)) {
				/* the rest of the last cluster counts too (and is skipped) */
				n = round_up(off + n, cs) - off;
				data += off % cs + n;
			}
			off += n;
		}
	}
	if (o->prealloc == BLK_PREALLOC_FALLOC || o->prealloc == BLK_PREALLOC_FULL)
		data = size;
	m->fully_allocated = fully_allocated_size(size, cs, rbits);
	m->required = m->fully_allocated - size + data;
	m->has_bitmaps = version >= 3 && in && in->drv == &blk_qcow2_driver;
	m->bitmaps = 0; /* we keep no persistent bitmaps */
	return 0;
}

/* ---- asynchronous I/O (block/aio.c) ---- */

/* Data already in place goes through the io_uring on the image file itself. */
static int qcow2_aio_file(struct blk *b, struct blk_aio_file *f)
{
	struct qcow2 *s = b->opaque;
	if (!s->file->drv->aio_file || s->file->drv->aio_file(s->file, f) < 0)
		return -ENOTSUP;
	f->mapped = true;
	return 0;
}

static int qcow2_aio_map(struct blk *b, bool write, uint64_t off, uint64_t len, uint64_t *host)
{
	struct qcow2 *s = b->opaque;
	struct mapping m;
	pthread_mutex_lock(&s->lock);
	int ret = get_mapping(s, off, len, &m);
	if (ret == 0 && m.type == QCOW2_NORMAL && m.bytes >= len &&
	    (!write || (m.writable && !(s->h.incompat & QCOW2_INCOMPAT_CORRUPT)))) {
		*host = m.host;
		ret = 1;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

const struct blk_driver blk_qcow2_driver = {
    .name = "qcow2",
    .format = BLK_FMT_QCOW2,
    .probe = qcow2_probe,
    .open = qcow2_open,
    .close = qcow2_close,
    .pread = qcow2_pread,
    .pwrite = qcow2_pwrite,
    .pwrite_compressed = qcow2_pwrite_compressed,
    .flush = qcow2_flush,
    .discard = qcow2_discard,
    .write_zeroes = qcow2_write_zeroes,
    .resize = qcow2_resize,
    .block_status = qcow2_block_status,
    .get_info = qcow2_get_info,
    .create = qcow2_create,
    .measure = qcow2_measure,
    .check = qcow2_check,
    .snapshot_list = qcow2_snapshot_list,
    .snapshot_create = qcow2_snapshot_create,
    .snapshot_apply = qcow2_snapshot_apply,
    .snapshot_delete = qcow2_snapshot_delete,
    .set_backing = qcow2_set_backing,
    .make_empty = qcow2_make_empty,
    .aio_file = qcow2_aio_file,
    .aio_map = qcow2_aio_map,
};

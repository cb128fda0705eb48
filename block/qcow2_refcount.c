/* qcow2 refcounts: reading and updating refcount entries (refcount_order 0..6), cluster
 * allocation, new refcount blocks and refcount table growth.
 * Format: QEMU docs/interop/qcow2.txt "Cluster mapping" / refcount table and blocks.
 *
 * Refcount blocks are written through (only the bytes that change), so a refcount is on
 * disk before any table points at the cluster; callers sync before writing those tables.
 * A new refcount block is made self-describing when it covers itself, and a grown refcount
 * table is complete and synced before the header switches to it. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOG_SUBSYS "qcow2"
#include "util/log.h"
#include "block/qcow2.h"

uint64_t qcow2_rb_get(const struct qcow2 *s, const void *block, uint32_t i)
{
	const uint8_t *p = block;
	uint32_t bits = s->refcount_bits;
	if (bits < 8)
		return (p[i * bits / 8] >> ((i * bits) % 8)) & ((1u << bits) - 1);
	uint32_t n = bits / 8;
	uint64_t v = 0;
	for (uint32_t k = 0; k < n; k++)
		v = (v << 8) | p[(size_t)i * n + k];
	return v;
}

void qcow2_rb_set(const struct qcow2 *s, void *block, uint32_t i, uint64_t v)
{
	uint8_t *p = block;
	uint32_t bits = s->refcount_bits;
	if (bits < 8) {
		uint32_t sh = (i * bits) % 8;
		uint8_t mask = (uint8_t)(((1u << bits) - 1) << sh);
		p[i * bits / 8] = (uint8_t)((p[i * bits / 8] & ~mask) | ((v << sh) & mask));
		return;
	}
	uint32_t n = bits / 8;
	for (uint32_t k = 0; k < n; k++)
		p[(size_t)i * n + (n - 1 - k)] = (uint8_t)(v >> (8 * k));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void qcow2_rebuild_refblock_index(struct qcow2 *s)
{
	free(s->refblock_sorted);
	s->refblock_sorted = malloc(((size_t)s->reftable_size + 1) * 8);
	s->nb_refblocks = 0;
	if (!s->refblock_sorted)
		return;
	for (uint32_t i = 0; i < s->reftable_size; i++)
		if (s->reftable[i])
			s->refblock_sorted[s->nb_refblocks++] = s->reftable[i];
	qsort(s->refblock_sorted, s->nb_refblocks, 8, cmp_u64);
}

/* Loads the refcount block at OFF into the refcount cache. */
static int rb_load(struct qcow2 *s, uint64_t off, uint8_t **block)
{
	struct qcow2_cache *c = &s->rb_cache;
	for (int i = 0; i < c->n; i++)
		if (c->e[i].offset == off) {
			c->e[i].lru = ++c->tick;
			*block = (uint8_t *)c->e[i].table;
			return 0;
		}
	int v = 0;
	for (int i = 0; i < c->n; i++) {
		if (c->e[i].offset == 0) {
			v = i;
			break;
		}
		if (c->e[i].lru < c->e[v].lru)
			v = i;
	}
	c->e[v].offset = 0;
	int ret = qcow2_file_read(s, off, c->e[v].table, s->cluster_size);
	if (ret < 0) {
		blk_set_error("%s: cannot read refcount block at 0x%llx", s->file->path,
			      (unsigned long long)off);
		return ret;
	}
	c->e[v].offset = off;
	c->e[v].lru = ++c->tick;
	*block = (uint8_t *)c->e[v].table;
	return 0;
}

int qcow2_get_refcount(struct qcow2 *s, uint64_t cluster, uint64_t *rc)
{
	uint64_t t = cluster / s->rb_entries;
	*rc = 0;
	if (t >= s->reftable_size || !s->reftable[t])
		return 0;
	uint8_t *block;
	int ret = rb_load(s, s->reftable[t], &block);
	if (ret < 0)
		return ret;
	*rc = qcow2_rb_get(s, block, (uint32_t)(cluster % s->rb_entries));
	return 0;
}

/* Writes the bytes of BLOCK (at OFF on disk) that hold entries [first, last]. */
static int rb_write_range(struct qcow2 *s, uint64_t off, const uint8_t *block, uint32_t first,
			  uint32_t last)
{
	uint64_t b0 = (uint64_t)first * s->refcount_bits / 8;
	uint64_t b1 = ((uint64_t)last + 1) * s->refcount_bits;
	b1 = (b1 + 7) / 8;
	s->need_sync = true;
	return qcow2_file_write(s, off + b0, block + b0, b1 - b0);
}

/* The first free cluster at or after START that does not need a refcount block... any
 * cluster: clusters with no refcount block are free. */
static int find_free(struct qcow2 *s, uint64_t n, uint64_t *out)
{
	uint64_t c = s->free_hint ? s->free_hint : 1;
	if (c < s->alloc_floor)
		c = s->alloc_floor;
	uint64_t run = 0, start = c;
	bool hint_set = false;
	for (;;) {
		uint64_t t = c / s->rb_entries;
		if (t >= s->reftable_size || !s->reftable[t]) {
			/* Whole block missing: every cluster it would cover is free. */
			if (!hint_set) {
				s->free_hint = c;
				hint_set = true;
			}
			if (run == 0)
				start = c;
			uint64_t block_end = (t + 1) * s->rb_entries;
			run += block_end - c;
			c = block_end;
			if (run >= n)
				break;
			continue;
		}
		uint64_t rc;
		int ret = qcow2_get_refcount(s, c, &rc);
		if (ret < 0)
			return ret;
		if (rc == 0) {
			if (!hint_set) {
				s->free_hint = c;
				hint_set = true;
			}
			if (run == 0)
				start = c;
			run++;
			c++;
			if (run >= n)
				break;
		} else {
			run = 0;
			c++;
		}
		if (c > (QCOW2_MAX_SIZE >> s->cluster_bits)) {
			blk_set_error("%s: no free clusters", s->file->path);
			return -ENOSPC;
		}
	}
	*out = start;
	return 0;
}

static int grow_reftable(struct qcow2 *s, uint64_t need_idx);

/* Makes sure refcount table entry T has a refcount block. */
static int ensure_refblock(struct qcow2 *s, uint64_t t)
{
	uint64_t cs = s->cluster_size;
	int ret;
	for (int tries = 0; tries < 64; tries++) {
		if (t >= s->reftable_size) {
			ret = grow_reftable(s, t);
			if (ret < 0)
				return ret;
			continue;
		}
		if (s->reftable[t])
			return 0;
		uint64_t r;
		ret = find_free(s, 1, &r);
		if (ret < 0)
			return ret;
		uint64_t rt = r / s->rb_entries;
		if (rt < s->reftable_size && s->reftable[rt]) {
			/* R is described by an existing block: count it there. */
			ret = qcow2_update_refcount(s, r * cs, cs, 1);
			if (ret < 0)
				return ret;
		} else if (rt != t) {
			/* R's own block is missing too: make that one first, then retry. */
			ret = ensure_refblock(s, rt);
			if (ret < 0)
				return ret;
			continue;
		}
		ret = qcow2_check_new_clusters(s, r * cs, cs);
		if (ret < 0)
			return ret;
		uint8_t *blk = calloc(1, cs);
		if (!blk)
			return -ENOMEM;
		if (rt == t) /* the new block describes itself */
			qcow2_rb_set(s, blk, (uint32_t)(r % s->rb_entries), 1);
		ret = qcow2_file_write(s, r * cs, blk, cs);
		free(blk);
		if (ret == 0)
			ret =
			    qcow2_sync(s); /* the block before the table entry that points at it */
		if (ret < 0)
			return ret;
		s->reftable[t] = r * cs;
		uint64_t be = htobe64(r * cs);
		ret = qcow2_file_write(s, s->h.reftable_offset + t * 8, &be, 8);
		if (ret < 0) {
			s->reftable[t] = 0;
			return ret;
		}
		s->need_sync = true;
		qcow2_rebuild_refblock_index(s);
		return 0;
	}
	blk_set_error("%s: cannot place a new refcount block", s->file->path);
	return -EIO;
}

/* Replaces the refcount table with a larger one at the end of the file. The new table and
 * any refcount blocks needed to describe it are written and synced before the header
 * points at them; the old table is freed afterwards. */
static int grow_reftable(struct qcow2 *s, uint64_t need_idx)
{
	uint64_t cs = s->cluster_size;
	uint64_t per_cluster = cs / 8;
	uint64_t p = (s->file_end + cs - 1) / cs; /* first cluster of the new table */
	uint64_t rc;
	int ret;
	/* Clusters past the end of the file should be free; skip any that are not. */
	for (;;) {
		ret = qcow2_get_refcount(s, p, &rc);
		if (ret < 0)
			return ret;
		if (rc == 0)
			break;
		p++;
	}
	uint64_t entries = need_idx + 1;
	if (entries > QCOW2_MAX_REFTABLE_BYTES / 8) {
		blk_set_error("%s: refcount table would exceed %u bytes", s->file->path,
			      QCOW2_MAX_REFTABLE_BYTES);
		return -ENOSPC;
	}
	if (entries < (uint64_t)s->reftable_size * 3 / 2 + 1)
		entries = (uint64_t)s->reftable_size * 3 / 2 + 1;
	uint64_t nclusters = 0, nblocks = 0;
	for (int iter = 0; iter < 16; iter++) {
		uint64_t end = p + nclusters + nblocks; /* clusters [p, end) are new metadata */
		uint64_t last_t = (end ? end - 1 : 0) / s->rb_entries;
		if (entries < last_t + 1)
			entries = last_t + 1;
		entries = (entries + per_cluster - 1) / per_cluster * per_cluster;
		uint64_t nc = entries / per_cluster;
		/* Blocks needed for [p, p+nc+nb) that do not exist yet. */
		uint64_t nb = 0;
		uint64_t e2 = p + nc + nblocks;
		for (uint64_t t = p / s->rb_entries; t <= (e2 - 1) / s->rb_entries; t++)
			if (t >= s->reftable_size || !s->reftable[t])
				nb++;
		if (nc == nclusters && nb == nblocks)
			break;
		nclusters = nc;
		nblocks = nb;
	}
	if (nclusters * cs > QCOW2_MAX_REFTABLE_BYTES) {
		blk_set_error("%s: refcount table would exceed %u bytes", s->file->path,
			      QCOW2_MAX_REFTABLE_BYTES);
		return -ENOSPC;
	}
	uint64_t end = p + nclusters + nblocks;
	uint64_t *nt = calloc(1, nclusters * cs);
	uint8_t *blocks = calloc(1, (nblocks ? nblocks : 1) * cs);
	if (!nt || !blocks) {
		free(nt);
		free(blocks);
		return -ENOMEM;
	}
	memcpy(nt, s->reftable, (size_t)s->reftable_size * 8);
	/* Assign the new blocks (after the table) and fill their entries. */
	uint64_t bi = 0;
	for (uint64_t t = p / s->rb_entries; t <= (end - 1) / s->rb_entries; t++) {
		if (t < s->reftable_size && s->reftable[t])
			continue;
		nt[t] = (p + nclusters + bi) * cs;
		uint64_t c0 = t * s->rb_entries > p ? t * s->rb_entries : p;
		uint64_t c1 = (t + 1) * s->rb_entries < end ? (t + 1) * s->rb_entries : end;
		for (uint64_t c = c0; c < c1; c++)
			qcow2_rb_set(s, blocks + bi * cs, (uint32_t)(c % s->rb_entries), 1);
		bi++;
	}
	/* Clusters of the new area covered by existing blocks: count them there now (until the
	 * header switches they are merely leaked). */
	for (uint64_t c = p; c < end; c++) {
		uint64_t t = c / s->rb_entries;
		if (t < s->reftable_size && s->reftable[t]) {
			ret = qcow2_update_refcount(s, c * cs, cs, 1);
			if (ret < 0)
				goto out;
		}
	}
	if (nblocks) {
		ret = qcow2_file_write(s, (p + nclusters) * cs, blocks, nblocks * cs);
		if (ret < 0)
			goto out;
	}
	for (uint64_t i = 0; i < entries; i++)
		nt[i] = htobe64(nt[i]);
	ret = qcow2_file_write(s, p * cs, nt, nclusters * cs);
	if (ret == 0)
		ret = qcow2_sync(s);
	if (ret < 0)
		goto out;
	uint8_t f[12];
	uint64_t off_be = htobe64(p * cs);
	uint32_t cl_be = htobe32((uint32_t)nclusters);
	memcpy(f, &off_be, 8);
	memcpy(f + 8, &cl_be, 4);
	ret = qcow2_update_header_field(s, QCOW2_HDR_REFTABLE_OFFSET, f, 12);
	if (ret == 0)
		ret = qcow2_sync(s);
	if (ret < 0)
		goto out;
	uint64_t old_off = s->h.reftable_offset, old_clusters = s->h.reftable_clusters;
	for (uint64_t i = 0; i < entries; i++)
		nt[i] = be64toh(nt[i]);
	free(s->reftable);
	s->reftable = nt;
	nt = NULL;
	s->reftable_size = (uint32_t)entries;
	s->h.reftable_offset = p * cs;
	s->h.reftable_clusters = (uint32_t)nclusters;
	qcow2_rebuild_refblock_index(s);
	ret = qcow2_update_refcount(s, old_off, old_clusters * cs, -1);
out:
	free(nt);
	free(blocks);
	return ret;
}

static int update_one_block(struct qcow2 *s, uint64_t t, uint64_t c0, uint64_t c1, int64_t addend,
			    bool absolute, uint64_t value)
{
	uint8_t *block;
	int ret = rb_load(s, s->reftable[t], &block);
	if (ret < 0)
		return ret;
	uint64_t rb_off = s->reftable[t];
	uint32_t first = (uint32_t)(c0 % s->rb_entries),
		 last = (uint32_t)((c1 - 1) % s->rb_entries);
	for (uint64_t c = c0; c < c1; c++) {
		uint32_t i = (uint32_t)(c % s->rb_entries);
		uint64_t old = qcow2_rb_get(s, block, i);
		uint64_t nv;
		if (absolute) {
			nv = value;
		} else if (addend < 0) {
			if (old < (uint64_t)-addend) {
				blk_set_error(
				    "%s: refcount of cluster 0x%llx would drop below zero",
				    s->file->path, (unsigned long long)(c << s->cluster_bits));
				return -EIO;
			}
			nv = old - (uint64_t)-addend;
		} else {
			if (s->refcount_max - old < (uint64_t)addend) {
				blk_set_error("%s: refcount of cluster 0x%llx would overflow",
					      s->file->path,
					      (unsigned long long)(c << s->cluster_bits));
				return -EIO;
			}
			nv = old + (uint64_t)addend;
		}
		if (nv > s->refcount_max)
			return -EINVAL;
		qcow2_rb_set(s, block, i, nv);
		if (nv == 0) {
			/* A freed cluster may have been an L2 table: forget it. */
			qcow2_cache_drop(&s->l2_cache, c << s->cluster_bits);
			if (c < s->free_hint)
				s->free_hint = c;
			s->comp_next = 0;
		}
	}
	ret = rb_write_range(s, rb_off, block, first, last);
	if (ret < 0) /* the cached block no longer matches the disk */
		qcow2_cache_drop(&s->rb_cache, rb_off);
	return ret;
}

static int update_range(struct qcow2 *s, uint64_t off, uint64_t len, int64_t addend, bool absolute,
			uint64_t value)
{
	if (len == 0)
		return 0;
	/* Refcounts only ever change for clusters in the file or just being appended to it;
	 * anything further out comes from a corrupt table entry. */
	uint64_t cs = s->cluster_size;
	uint64_t limit = ((s->file_end + cs - 1) & ~(cs - 1)) + 4 * (uint64_t)s->rb_entries * cs;
	if (off > limit || len > QCOW2_MAX_SIZE) {
		blk_set_error("%s: refcount update for 0x%llx+%llu beyond the end of the image",
			      s->file->path, (unsigned long long)off, (unsigned long long)len);
		return -EIO;
	}
	uint64_t c = off >> s->cluster_bits;
	uint64_t cend = ((off + len - 1) >> s->cluster_bits) + 1;
	while (c < cend) {
		uint64_t t = c / s->rb_entries;
		int ret = ensure_refblock(s, t);
		if (ret < 0)
			return ret;
		uint64_t bend = (t + 1) * s->rb_entries;
		if (bend > cend)
			bend = cend;
		ret = update_one_block(s, t, c, bend, addend, absolute, value);
		if (ret < 0)
			return ret;
		c = bend;
	}
	return 0;
}

int qcow2_update_refcount(struct qcow2 *s, uint64_t off, uint64_t len, int64_t addend)
{
	return update_range(s, off, len, addend, false, 0);
}

int qcow2_set_refcount(struct qcow2 *s, uint64_t cluster, uint64_t value)
{
	return update_range(s, cluster << s->cluster_bits, 1, 0, true, value);
}

int qcow2_alloc_clusters(struct qcow2 *s, uint64_t n, uint64_t *off)
{
	uint64_t c;
	for (int tries = 0; tries < 8; tries++) {
		int ret = find_free(s, n, &c);
		if (ret < 0)
			return ret;
		/* Making refcount blocks may use clusters: check the run is still free. */
		bool still_free = true;
		for (uint64_t t = c / s->rb_entries; t <= (c + n - 1) / s->rb_entries; t++) {
			ret = ensure_refblock(s, t);
			if (ret < 0)
				return ret;
		}
		for (uint64_t i = 0; i < n && still_free; i++) {
			uint64_t rc;
			ret = qcow2_get_refcount(s, c + i, &rc);
			if (ret < 0)
				return ret;
			still_free = rc == 0;
		}
		if (!still_free)
			continue;
		/* Refcounts that call metadata free must not make us write over it. */
		ret = qcow2_check_new_clusters(s, c << s->cluster_bits, n << s->cluster_bits);
		if (ret < 0)
			return ret;
		uint64_t end = (c + n) << s->cluster_bits;
		if (end > s->file_end) {
			/* Grow the file first (a crash then leaves only a longer file), and so
			 * offset checks accept the new clusters. */
			ret = blk_raw_truncate(s->file, end);
			if (ret < 0)
				return ret;
			s->file_end = end;
		}
		ret = qcow2_update_refcount(s, c << s->cluster_bits, n << s->cluster_bits, 1);
		if (ret < 0)
			return ret;
		if (c == s->free_hint)
			s->free_hint = c + n;
		*off = c << s->cluster_bits;
		return 0;
	}
	blk_set_error("%s: cluster allocation did not converge", s->file->path);
	return -EIO;
}

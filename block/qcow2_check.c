/* qcow2 consistency check and repair: recomputes every cluster's reference count from the
 * metadata (header, L1/L2 tables of the active image and of every snapshot, refcount
 * table and blocks, snapshot table) and compares it with the stored refcounts; checks that
 * every pointer is aligned and inside the file, and that COPIED flags of the active tables
 * match refcount == 1 (qcow2.txt "Cluster mapping").
 * A stored refcount above the computed one is a leak (harmless); below it is an error. */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_SUBSYS "qcow2"
#include "util/log.h"
#include "util/endian.h"
#include "block/qcow2.h"

#define MAX_REPORTED 50

struct check {
	struct qcow2 *s;
	uint32_t *refs; /* computed references per cluster */
	uint64_t nclusters;
	struct blk_check_result *r;
	unsigned reported;
};

static void report(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(struct check *c, const char *fmt, ...)
{
	if (c->reported++ < MAX_REPORTED && !c->s->check_quiet) {
		va_list ap;
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
}

#define ULL(x) ((unsigned long long)(x))

/* Counts one reference to every cluster of [off, off+len). */
static void add_ref(struct check *c, uint64_t off, uint64_t len)
{
	struct qcow2 *s = c->s;
	if (!len)
		return;
	uint64_t first = off >> s->cluster_bits, last = (off + len - 1) >> s->cluster_bits;
	for (uint64_t k = first; k <= last; k++) {
		if (k >= c->nclusters) {
			report(
			    c,
			    "ERROR: reference to cluster %llu beyond the image end (%llu clusters)",
			    ULL(k), ULL(c->nclusters));
			c->r->corruptions++;
			continue;
		}
		if (c->refs[k] != UINT32_MAX)
			c->refs[k]++;
	}
}

static bool bad_offset(struct check *c, uint64_t off, const char *what)
{
	struct qcow2 *s = c->s;
	if ((off & (s->cluster_size - 1)) || (off >> s->cluster_bits) >= c->nclusters || off == 0) {
		if (c->reported++ < MAX_REPORTED && !s->check_quiet)
			fprintf(stderr,
				"ERROR: %s offset 0x%llx is unaligned or outside the image\n", what,
				(unsigned long long)off);
		c->r->corruptions++;
		return true;
	}
	return false;
}

static int read_table(struct qcow2 *s, uint64_t off, size_t bytes, uint64_t **out)
{
	uint64_t *t = malloc(bytes ? bytes : 8);
	if (!t)
		return -ENOMEM;
	int ret = qcow2_file_read(s, off, t, bytes);
	if (ret < 0) {
		free(t);
		return ret;
	}
	for (size_t i = 0; i < bytes / 8; i++)
		t[i] = be64toh(t[i]);
	*out = t;
	return 0;
}

static int walk_l1(struct check *c, const uint64_t *l1, uint32_t l1_size, bool active)
{
	struct qcow2 *s = c->s;
	uint64_t cs = s->cluster_size;
	uint64_t *l2 = malloc(cs);
	if (!l2)
		return -ENOMEM;
	for (uint32_t i = 0; i < l1_size; i++) {
		uint64_t l2_off = l1[i] & QCOW2_OFFSET_MASK;
		if (l1[i] & QCOW2_L1E_RESERVED) {
			report(c, "ERROR: L1 entry %u has reserved bits set (0x%llx)", i,
			       ULL(l1[i]));
			c->r->corruptions++;
		}
		if (!l2_off)
			continue;
		if (bad_offset(c, l2_off, "L2 table"))
			continue;
		add_ref(c, l2_off, cs);
		/* Through the cache: it may hold newer, not yet written entries. */
		int slot;
		int ret = qcow2_l2_load(s, l2_off, &slot);
		if (ret < 0) {
			report(c, "ERROR: %s", blk_last_error());
			c->r->corruptions++;
			continue;
		}
		memcpy(l2, s->l2_cache.e[slot].table, cs);
		for (uint32_t j = 0; j < s->l2_entries; j++) {
			uint64_t e = be64toh(l2[j]);
			if (!e)
				continue;
			if (e & QCOW2_OFLAG_COMPRESSED) {
				uint32_t x = 62 - (s->cluster_bits - 8);
				uint64_t coff = e & ((1ull << x) - 1);
				uint64_t nsec =
				    ((e >> x) & ((1ull << (s->cluster_bits - 8)) - 1)) + 1;
				uint64_t csize = nsec * 512 - (coff & 511);
				if (e & QCOW2_OFLAG_COPIED) {
					report(c,
					       "ERROR: compressed cluster entry %u of L2 0x%llx "
					       "has COPIED set",
					       j, ULL(l2_off));
					c->r->corruptions++;
				}
				if ((coff >> s->cluster_bits) >= c->nclusters || coff < cs) {
					report(c,
					       "ERROR: compressed cluster at 0x%llx (L2 0x%llx "
					       "entry %u) outside the image",
					       ULL(coff), ULL(l2_off), j);
					c->r->corruptions++;
					continue;
				}
				if (((coff + csize - 1) >> s->cluster_bits) >= c->nclusters)
					csize = (c->nclusters << s->cluster_bits) - coff;
				add_ref(c, coff, csize);
				c->r->compressed_clusters++;
				c->r->allocated_clusters++;
				continue;
			}
			if (e & QCOW2_L2E_RESERVED & ~1ull) {
				report(c,
				       "ERROR: L2 0x%llx entry %u has reserved bits set (0x%llx)",
				       ULL(l2_off), j, ULL(e));
				c->r->corruptions++;
				continue;
			}
			uint64_t host = e & QCOW2_OFFSET_MASK;
			if (!host)
				continue;
			if (bad_offset(c, host, "data cluster"))
				continue;
			add_ref(c, host, cs);
			if (active)
				c->r->allocated_clusters++;
		}
	}
	free(l2);
	return 0;
}

/* COPIED flags of the active tables must say refcount == 1. */
static int check_copied(struct check *c, unsigned fix)
{
	struct qcow2 *s = c->s;
	bool l1_dirty = false;
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t l2_off = s->l1[i] & QCOW2_OFFSET_MASK;
		if (!l2_off || (l2_off >> s->cluster_bits) >= c->nclusters ||
		    (l2_off & (s->cluster_size - 1)))
			continue;
		uint64_t rc;
		int ret = qcow2_get_refcount(s, l2_off >> s->cluster_bits, &rc);
		if (ret < 0)
			return ret;
		bool copied = s->l1[i] & QCOW2_OFLAG_COPIED;
		if ((rc == 1) != copied) {
			report(
			    c,
			    "%s OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%llx refcount=%llu",
			    (fix & BLK_CHECK_FIX_ERRORS) ? "Repairing" : "ERROR", i, ULL(s->l1[i]),
			    ULL(rc));
			if (fix & BLK_CHECK_FIX_ERRORS) {
				s->l1[i] = rc == 1 ? (l2_off | QCOW2_OFLAG_COPIED) : l2_off;
				l1_dirty = true;
				c->r->corruptions_fixed++;
			} else {
				c->r->corruptions++;
			}
		}
		int slot;
		ret = qcow2_l2_load(s, l2_off, &slot);
		if (ret < 0)
			continue;
		for (uint32_t j = 0; j < s->l2_entries; j++) {
			uint64_t e = be64toh(s->l2_cache.e[slot].table[j]);
			uint64_t host = e & QCOW2_OFFSET_MASK;
			if ((e & QCOW2_OFLAG_COMPRESSED) || !host ||
			    (host >> s->cluster_bits) >= c->nclusters)
				continue;
			ret = qcow2_get_refcount(s, host >> s->cluster_bits, &rc);
			if (ret < 0)
				return ret;
			copied = e & QCOW2_OFLAG_COPIED;
			if ((rc == 1) != copied) {
				report(c,
				       "%s OFLAG_COPIED data cluster: l2_entry=%llx refcount=%llu",
				       (fix & BLK_CHECK_FIX_ERRORS) ? "Repairing" : "ERROR", ULL(e),
				       ULL(rc));
				if (fix & BLK_CHECK_FIX_ERRORS) {
					ret = qcow2_l2_load(s, l2_off, &slot);
					if (ret < 0)
						return ret;
					uint64_t ne = rc == 1 ? (e | QCOW2_OFLAG_COPIED)
							      : (e & ~QCOW2_OFLAG_COPIED);
					s->l2_cache.e[slot].table[j] = htobe64(ne);
					s->l2_cache.e[slot].dirty = true;
					c->r->corruptions_fixed++;
				} else {
					c->r->corruptions++;
				}
			}
		}
	}
	if (l1_dirty) {
		for (uint32_t i = 0; i < s->l1_size; i++) {
			int ret = qcow2_write_l1_entry(s, i);
			if (ret < 0)
				return ret;
		}
	}
	return qcow2_cache_flush(s);
}

/* One pass. Returns 1 if a repair changed the refcount structure (run again). */
static int check_pass(struct blk *b, unsigned fix, struct blk_check_result *r)
{
	struct qcow2 *s = b->opaque;
	uint64_t cs = s->cluster_size;
	struct check c = {.s = s, .r = r};
	int ret;
	memset(r, 0, sizeof(*r));
	uint64_t file_clusters = (s->file_end + cs - 1) / cs;
	c.nclusters = file_clusters;
	uint64_t covered = 0; /* clusters that have a refcount block */
	for (uint32_t t = 0; t < s->reftable_size; t++)
		if (s->reftable[t])
			covered = (uint64_t)(t + 1) * s->rb_entries;
	uint64_t scan = covered > file_clusters ? covered : file_clusters;
	c.refs = calloc(scan ? scan : 1, sizeof(uint32_t));
	if (!c.refs)
		return -ENOMEM;

	/* What the open found (check mode): a dropped refcount table entry is repaired once
	 * a repair gave that entry a new block. */
	for (uint32_t i = 0; i < s->nb_problems; i++) {
		const struct qcow2_open_problem *p = &s->problems[i];
		if (p->reft_idx == QCOW2_PROBLEM_FIXED ||
		    (p->reft_idx >= 0 && s->reftable[p->reft_idx]))
			continue;
		report(&c, "ERROR %s", p->msg);
		r->corruptions++;
	}
	add_ref(&c, 0, cs);
	add_ref(&c, s->h.l1_offset, (uint64_t)s->l1_size * 8);
	add_ref(&c, s->h.reftable_offset, (uint64_t)s->h.reftable_clusters * cs);
	for (uint32_t i = 0; i < s->reftable_size; i++)
		if (s->reftable[i] && !bad_offset(&c, s->reftable[i], "refcount block"))
			add_ref(&c, s->reftable[i], cs);
	add_ref(&c, s->h.snapshots_offset, s->snapshots_size);
	ret = walk_l1(&c, s->l1, s->l1_size, true);
	if (ret < 0)
		goto out;
	for (uint32_t i = 0; i < s->nb_snaps; i++) {
		struct qcow2_snapshot *sn = &s->snaps[i];
		if (!sn->l1_size)
			continue;
		if (bad_offset(&c, sn->l1_offset, "snapshot L1 table"))
			continue;
		add_ref(&c, sn->l1_offset, (uint64_t)sn->l1_size * 8);
		uint64_t *l1;
		ret = read_table(s, sn->l1_offset, (size_t)sn->l1_size * 8, &l1);
		if (ret < 0)
			goto out;
		ret = walk_l1(&c, l1, sn->l1_size, false);
		free(l1);
		if (ret < 0)
			goto out;
	}

	uint32_t nb_refblocks = s->nb_refblocks;
	uint64_t highest = 0;
	for (uint64_t k = 0; k < scan; k++) {
		uint64_t stored;
		ret = qcow2_get_refcount(s, k, &stored);
		if (ret < 0) {
			r->check_errors++;
			continue;
		}
		uint64_t computed = c.refs[k];
		if (stored || computed)
			highest = k;
		if (stored == computed)
			continue;
		bool leak = stored > computed;
		bool fixing = (leak && (fix & BLK_CHECK_FIX_LEAKS)) ||
			      (!leak && (fix & BLK_CHECK_FIX_ERRORS));
		if (c.reported++ < MAX_REPORTED && !s->check_quiet)
			fprintf(stderr, "%s cluster %llu refcount=%llu reference=%llu\n",
				fixing ? "Repairing"
				: leak ? "Leaked"
				       : "ERROR",
				(unsigned long long)k, (unsigned long long)stored,
				(unsigned long long)computed);
		if (fixing) {
			if (computed > s->refcount_max)
				computed = s->refcount_max;
			ret = qcow2_set_refcount(s, k, computed);
			if (ret < 0) {
				r->check_errors++;
				goto count;
			}
			if (leak)
				r->leaks_fixed++;
			else
				r->corruptions_fixed++;
			if (s->nb_refblocks != nb_refblocks) { /* new refcount block: recount */
				ret = 1;
				goto out;
			}
			continue;
		}
count:
		if (leak)
			r->leaks++;
		else
			r->corruptions++;
	}
	ret = check_copied(&c, fix);
	if (ret < 0)
		goto out;
	if (c.reported > MAX_REPORTED && !s->check_quiet)
		fprintf(stderr, "(%u more problems not shown)\n", c.reported - MAX_REPORTED);
	r->total_clusters = (b->size + cs - 1) / cs;
	r->image_end_offset = (highest + 1) * cs;
	if (fix)
		s->free_hint = 1;
	ret = 0;
out:
	free(c.refs);
	return ret;
}

int qcow2_check(struct blk *b, unsigned fix, struct blk_check_result *r)
{
	struct qcow2 *s = b->opaque;
	int ret;
	pthread_mutex_lock(&s->lock);
	pthread_rwlock_wrlock(&s->io_lock);
	bool was_quiet = s->check_quiet;
	if (fix & BLK_CHECK_QUIET)
		s->check_quiet = true;
	fix &= ~BLK_CHECK_QUIET;
	ret = qcow2_cache_flush(s);
	if (ret < 0)
		goto out;
	if (!fix) {
		ret = check_pass(b, 0, r);
		goto out;
	}
	uint64_t leaks_fixed = 0, corr_fixed = 0;
	/* New refcount blocks go past the end of the file: refcounts that read 0 may belong
	 * to clusters in use (a missing or dropped refcount block). */
	uint64_t floor = s->alloc_floor,
		 end = (s->file_end + s->cluster_size - 1) >> s->cluster_bits;
	if (end > s->alloc_floor)
		s->alloc_floor = end;
	/* Refcount table entries dropped at open (unusable blocks) are cleared on disk; the
	 * passes below give their clusters new blocks where anything is in use. */
	for (uint32_t i = 0; i < s->nb_problems && (fix & BLK_CHECK_FIX_ERRORS); i++) {
		struct qcow2_open_problem *p = &s->problems[i];
		if (p->reft_idx < 0 || s->reftable[p->reft_idx])
			continue;
		uint64_t zero = 0;
		ret =
		    qcow2_file_write(s, s->h.reftable_offset + (uint64_t)p->reft_idx * 8, &zero, 8);
		if (ret < 0)
			goto out_floor;
		if (!s->check_quiet)
			fprintf(stderr, "Repairing refcount table entry %lld: %s\n",
				(long long)p->reft_idx, p->msg);
		p->reft_idx = QCOW2_PROBLEM_FIXED;
		corr_fixed++;
	}
	for (int pass = 0; pass < 8; pass++) {
		ret = check_pass(b, fix, r);
		leaks_fixed += r->leaks_fixed;
		corr_fixed += r->corruptions_fixed;
		if (ret <= 0)
			break;
	}
	if (ret < 0)
		goto out_floor;
	ret = qcow2_sync(s);
	if (ret < 0)
		goto out_floor;
	/* What is left after the repair. */
	ret = check_pass(b, 0, r);
	r->leaks_fixed = leaks_fixed;
	r->corruptions_fixed = corr_fixed;
	if (ret == 0 && (fix & BLK_CHECK_FIX_ERRORS) && !r->corruptions && !r->check_errors &&
	    (s->h.incompat & (QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY))) {
		/* Repaired: the image may be written again (as qemu-img check -r all), and its
		 * refcounts are right, so a dirty flag goes too. */
		uint8_t f[8];
		s->h.incompat &= ~(QCOW2_INCOMPAT_CORRUPT | QCOW2_INCOMPAT_DIRTY);
		be64_store(f, s->h.incompat);
		ret = qcow2_update_header_field(s, QCOW2_HDR_INCOMPAT, f, 8);
		if (ret == 0)
			ret = qcow2_sync(s);
	}
out_floor:
	s->alloc_floor = floor;
out:
	s->check_quiet = was_quiet;
	pthread_rwlock_unlock(&s->io_lock);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

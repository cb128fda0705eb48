/* qcow2 internal snapshots: reading the snapshot table, create, apply (revert), delete,
 * and the COPIED-flag fix-up that follows refcount changes.
 * Format: QEMU docs/interop/qcow2.txt "Snapshots" (table entries: L1 offset/size, id and
 * name strings, dates, VM state size, extra data with the 64-bit VM state size and the
 * disk size in version 3).
 *
 * Order of updates, so that a crash leaves leaks at worst: refcounts of everything a
 * snapshot will share are raised first; tables are written next; the header switches to a
 * new, synced snapshot table in one write; references are dropped last. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_SUBSYS "qcow2"
#include "util/log.h"
#include "util/endian.h"
#include "block/qcow2.h"

#define SNAP_MAX_EXTRA 1024
#define SNAP_MAX_TABLE (64u << 20)

void qcow2_free_snapshots(struct qcow2 *s)
{
	for (uint32_t i = 0; i < s->nb_snaps; i++) {
		free(s->snaps[i].id);
		free(s->snaps[i].name);
		free(s->snaps[i].extra);
	}
	free(s->snaps);
	s->snaps = NULL;
	s->nb_snaps = 0;
}

int qcow2_read_snapshots(struct qcow2 *s)
{
	const char *path = s->file->path;
	uint64_t off = s->h.snapshots_offset;
	uint64_t cs = s->cluster_size;
	int ret;
	s->snapshots_size = 0;
	if (!s->h.nb_snapshots)
		return 0;
	s->snaps = calloc(s->h.nb_snapshots, sizeof(*s->snaps));
	if (!s->snaps)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->h.nb_snapshots; i++) {
		uint8_t f[40];
		if (off + 40 > s->file_end || off - s->h.snapshots_offset > SNAP_MAX_TABLE) {
			blk_set_error("%s: snapshot table entry %u is outside the image", path, i);
			return -EINVAL;
		}
		ret = qcow2_file_read(s, off, f, 40);
		if (ret < 0)
			return ret;
		struct qcow2_snapshot *sn = &s->snaps[i];
		s->nb_snaps = i + 1;
		sn->l1_offset = be64_load(f);
		sn->l1_size = be32_load(f + 8);
		uint16_t id_len = be16_load(f + 12), name_len = be16_load(f + 14);
		sn->date_sec = be32_load(f + 16);
		sn->date_nsec = be32_load(f + 20);
		sn->vm_clock_nsec = be64_load(f + 24);
		sn->vm_state_size = be32_load(f + 32);
		sn->extra_size = be32_load(f + 36);
		sn->disk_size = s->h.size;
		if (sn->extra_size > SNAP_MAX_EXTRA) {
			blk_set_error("%s: snapshot %u has %u bytes of extra data (too many)", path,
				      i, sn->extra_size);
			return -EINVAL;
		}
		if ((sn->l1_offset & (cs - 1)) || (uint64_t)sn->l1_size * 8 > QCOW2_MAX_L1_BYTES ||
		    (sn->l1_size && (sn->l1_offset < cs || sn->l1_offset > s->file_end ||
				     (uint64_t)sn->l1_size * 8 > s->file_end - sn->l1_offset))) {
			blk_set_error(
			    "%s: snapshot %u L1 table (offset 0x%llx, %u entries) is invalid "
			    "or outside the image",
			    path, i, (unsigned long long)sn->l1_offset, sn->l1_size);
			return -EINVAL;
		}
		off += 40;
		uint64_t var = (uint64_t)sn->extra_size + id_len + name_len;
		if (off + var > s->file_end) {
			blk_set_error("%s: snapshot table entry %u runs past the end of the image",
				      path, i);
			return -EINVAL;
		}
		sn->extra = malloc(sn->extra_size ? sn->extra_size : 1);
		sn->id = calloc(1, (size_t)id_len + 1);
		sn->name = calloc(1, (size_t)name_len + 1);
		if (!sn->extra || !sn->id || !sn->name)
			return -ENOMEM;
		ret = qcow2_file_read(s, off, sn->extra, sn->extra_size);
		if (ret == 0)
			ret = qcow2_file_read(s, off + sn->extra_size, sn->id, id_len);
		if (ret == 0)
			ret = qcow2_file_read(s, off + sn->extra_size + id_len, sn->name, name_len);
		if (ret < 0)
			return ret;
		if (sn->extra_size >= 16)
			sn->disk_size = be64_load(sn->extra + 8);
		sn->icount = sn->extra_size >= 24 ? be64_load(sn->extra + 16) : UINT64_MAX;
		off += var;
		off = (off + 7) & ~7ull;
	}
	s->snapshots_size = off - s->h.snapshots_offset;
	for (uint32_t i = 0; i < s->nb_snaps; i++) {
		struct qcow2_snapshot *sn = &s->snaps[i];
		uint64_t len = (uint64_t)sn->l1_size * 8;
		if (len && sn->l1_offset < s->h.snapshots_offset + s->snapshots_size &&
		    s->h.snapshots_offset < sn->l1_offset + len) {
			blk_set_error("%s: snapshot %u L1 table overlaps the snapshot table", path,
				      i);
			return -EINVAL;
		}
	}
	return 0;
}

int qcow2_snapshot_list(struct blk *b, struct blk_snapshot_info **list)
{
	struct qcow2 *s = b->opaque;
	*list = calloc(s->nb_snaps ? s->nb_snaps : 1, sizeof(**list));
	if (!*list)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->nb_snaps; i++) {
		struct blk_snapshot_info *o = &(*list)[i];
		struct qcow2_snapshot *sn = &s->snaps[i];
		snprintf(o->id, sizeof(o->id), "%s", sn->id);
		snprintf(o->name, sizeof(o->name), "%s", sn->name);
		o->vm_state_size = sn->vm_state_size;
		if (sn->extra_size >= 8)
			o->vm_state_size = be64_load(sn->extra);
		o->date_sec = sn->date_sec;
		o->date_nsec = sn->date_nsec;
		o->vm_clock_nsec = sn->vm_clock_nsec;
		o->disk_size = sn->disk_size;
		o->icount = sn->icount;
	}
	return (int)s->nb_snaps;
}

static int find_snapshot(struct qcow2 *s, const char *name)
{
	for (uint32_t i = 0; i < s->nb_snaps; i++)
		if (!strcmp(s->snaps[i].id, name))
			return (int)i;
	for (uint32_t i = 0; i < s->nb_snaps; i++)
		if (!strcmp(s->snaps[i].name, name))
			return (int)i;
	return -1;
}

static int read_l1(struct qcow2 *s, uint64_t off, uint32_t n, uint64_t **out)
{
	uint64_t *l1 = calloc((size_t)n + 1, 8);
	if (!l1)
		return -ENOMEM;
	int ret = qcow2_file_read(s, off, l1, (size_t)n * 8);
	if (ret < 0) {
		free(l1);
		return ret;
	}
	for (uint32_t i = 0; i < n; i++)
		l1[i] = be64toh(l1[i]);
	*out = l1;
	return 0;
}

/* Adds ADDEND to the refcount of every cluster reachable from L1 (its L2 tables and their
 * data). With CLEAR_COPIED the L2 entries and L1 entries lose their COPIED flags. */
static int tree_refcount(struct qcow2 *s, uint64_t *l1, uint32_t l1_size, int addend,
			 bool clear_copied)
{
	uint64_t cs = s->cluster_size;
	for (uint32_t i = 0; i < l1_size; i++) {
		uint64_t l2 = l1[i] & QCOW2_OFFSET_MASK;
		if (!l2)
			continue;
		int slot;
		int ret = qcow2_l2_load(s, l2, &slot);
		if (ret < 0)
			return ret;
		uint64_t *t = s->l2_cache.e[slot].table;
		bool changed = false;
		for (uint32_t j = 0; j < s->l2_entries; j++) {
			uint64_t e = be64toh(t[j]);
			if (!e)
				continue;
			if (e & QCOW2_OFLAG_COMPRESSED) {
				uint32_t x = 62 - (s->cluster_bits - 8);
				uint64_t coff = e & ((1ull << x) - 1);
				uint64_t nsec =
				    ((e >> x) & ((1ull << (s->cluster_bits - 8)) - 1)) + 1;
				uint64_t csize = nsec * 512 - (coff & 511);
				ret = qcow2_update_refcount(s, coff, csize, addend);
			} else if (e & QCOW2_OFFSET_MASK) {
				ret = qcow2_update_refcount(s, e & QCOW2_OFFSET_MASK, cs, addend);
			}
			if (ret < 0)
				return ret;
			if (clear_copied && (e & QCOW2_OFLAG_COPIED)) {
				/* The table may have been evicted by the refcount update. */
				ret = qcow2_l2_load(s, l2, &slot);
				if (ret < 0)
					return ret;
				t = s->l2_cache.e[slot].table;
				t[j] = htobe64(e & ~QCOW2_OFLAG_COPIED);
				s->l2_cache.e[slot].dirty = true;
				changed = true;
			}
		}
		(void)changed;
		ret = qcow2_update_refcount(s, l2, cs, addend);
		if (ret < 0)
			return ret;
		if (clear_copied)
			l1[i] &= ~QCOW2_OFLAG_COPIED;
	}
	return 0;
}

static int write_active_l1(struct qcow2 *s)
{
	uint64_t cs = s->cluster_size;
	size_t bytes = (size_t)((uint64_t)s->l1_size * 8);
	if (!bytes)
		return 0;
	uint8_t *buf = malloc(bytes);
	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->l1_size; i++)
		be64_store(buf + (size_t)i * 8, s->l1[i]);
	int ret = qcow2_file_write(s, s->h.l1_offset, buf, bytes);
	free(buf);
	(void)cs;
	return ret;
}

/* Serializes the snapshot table, writes it to new clusters and switches the header to it,
 * then frees the old table. */
static int write_snapshot_table(struct qcow2 *s, struct qcow2_snapshot *snaps, uint32_t n)
{
	uint64_t cs = s->cluster_size;
	uint64_t size = 0;
	for (uint32_t i = 0; i < n; i++)
		size +=
		    (40 + snaps[i].extra_size + strlen(snaps[i].id) + strlen(snaps[i].name) + 7) &
		    ~7ull;
	uint8_t *buf = calloc(1, size ? size : 1);
	if (!buf)
		return -ENOMEM;
	uint64_t off = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct qcow2_snapshot *sn = &snaps[i];
		uint8_t *p = buf + off;
		size_t il = strlen(sn->id), nl = strlen(sn->name);
		be64_store(p, sn->l1_offset);
		be32_store(p + 8, sn->l1_size);
		be16_store(p + 12, (uint16_t)il);
		be16_store(p + 14, (uint16_t)nl);
		be32_store(p + 16, sn->date_sec);
		be32_store(p + 20, sn->date_nsec);
		be64_store(p + 24, sn->vm_clock_nsec);
		be32_store(p + 32, sn->vm_state_size);
		be32_store(p + 36, sn->extra_size);
		memcpy(p + 40, sn->extra, sn->extra_size);
		memcpy(p + 40 + sn->extra_size, sn->id, il);
		memcpy(p + 40 + sn->extra_size + il, sn->name, nl);
		off += (40 + sn->extra_size + il + nl + 7) & ~7ull;
	}
	uint64_t new_off = 0;
	int ret = 0;
	if (size) {
		ret = qcow2_alloc_clusters(s, (size + cs - 1) / cs, &new_off);
		if (ret == 0)
			ret = qcow2_file_write(s, new_off, buf, size);
	}
	free(buf);
	if (ret == 0)
		ret = qcow2_sync(s);
	if (ret < 0)
		return ret;
	uint8_t f[12];
	be32_store(f, n);
	be64_store(f + 4, new_off);
	ret = qcow2_update_header_field(s, QCOW2_HDR_NB_SNAPSHOTS, f, 12);
	if (ret == 0)
		ret = qcow2_sync(s);
	if (ret < 0)
		return ret;
	uint64_t old_off = s->h.snapshots_offset, old_size = s->snapshots_size;
	s->h.snapshots_offset = new_off;
	s->h.nb_snapshots = n;
	s->snapshots_size = size;
	if (old_size)
		ret = qcow2_update_refcount(s, old_off, old_size, -1);
	return ret;
}

int qcow2_fix_copied(struct qcow2 *s)
{
	bool l1_changed = false;
	for (uint32_t i = 0; i < s->l1_size; i++) {
		uint64_t l2 = s->l1[i] & QCOW2_OFFSET_MASK;
		if (!l2)
			continue;
		uint64_t rc;
		int ret = qcow2_get_refcount(s, l2 >> s->cluster_bits, &rc);
		if (ret < 0)
			return ret;
		uint64_t want = rc == 1 ? (l2 | QCOW2_OFLAG_COPIED) : l2;
		if (want != s->l1[i]) {
			s->l1[i] = want;
			l1_changed = true;
		}
		int slot;
		ret = qcow2_l2_load(s, l2, &slot);
		if (ret < 0)
			return ret;
		for (uint32_t j = 0; j < s->l2_entries; j++) {
			uint64_t e = be64toh(s->l2_cache.e[slot].table[j]);
			uint64_t host = e & QCOW2_OFFSET_MASK;
			if ((e & QCOW2_OFLAG_COMPRESSED) || !host)
				continue;
			ret = qcow2_get_refcount(s, host >> s->cluster_bits, &rc);
			if (ret < 0)
				return ret;
			uint64_t ne =
			    rc == 1 ? (e | QCOW2_OFLAG_COPIED) : (e & ~QCOW2_OFLAG_COPIED);
			if (ne != e) {
				ret = qcow2_l2_load(s, l2, &slot);
				if (ret < 0)
					return ret;
				s->l2_cache.e[slot].table[j] = htobe64(ne);
				s->l2_cache.e[slot].dirty = true;
			}
		}
	}
	int ret = qcow2_cache_flush(s);
	if (ret == 0 && l1_changed)
		ret = write_active_l1(s);
	if (ret == 0)
		ret = qcow2_sync(s);
	return ret;
}

int qcow2_snapshot_create(struct blk *b, const char *name)
{
	struct qcow2 *s = b->opaque;
	uint64_t cs = s->cluster_size;
	int ret;
	if (!name || !*name || strlen(name) > 255) {
		blk_set_error("%s: invalid snapshot name", b->path);
		return -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	if (find_snapshot(s, name) >= 0) {
		blk_set_error("%s: a snapshot named '%s' already exists", b->path, name);
		ret = -EEXIST;
		goto out;
	}
	if (s->nb_snaps >= QCOW2_MAX_SNAPSHOTS) {
		ret = -ENOSPC;
		goto out;
	}
	ret = qcow2_cache_flush(s);
	if (ret == 0)
		ret = qcow2_sync(s);
	if (ret < 0)
		goto out;
	/* 1. Everything the active image references gains a reference (the snapshot). */
	ret = tree_refcount(s, s->l1, s->l1_size, 1, true);
	if (ret == 0)
		ret = qcow2_cache_flush(s);
	if (ret < 0)
		goto out;
	/* 2. The snapshot's copy of the L1 table. */
	uint64_t l1_bytes = (uint64_t)s->l1_size * 8;
	uint64_t l1_off = 0;
	if (l1_bytes) {
		uint8_t *buf = malloc(l1_bytes);
		if (!buf) {
			ret = -ENOMEM;
			goto out;
		}
		for (uint32_t i = 0; i < s->l1_size; i++)
			be64_store(buf + (size_t)i * 8, s->l1[i]);
		ret = qcow2_alloc_clusters(s, (l1_bytes + cs - 1) / cs, &l1_off);
		if (ret == 0)
			ret = qcow2_file_write(s, l1_off, buf, l1_bytes);
		free(buf);
		if (ret < 0)
			goto out;
	}
	ret = write_active_l1(s); /* COPIED flags cleared */
	if (ret < 0)
		goto out;
	/* 3. The new table entry. */
	struct qcow2_snapshot *n = calloc(s->nb_snaps + 1, sizeof(*n));
	if (!n) {
		ret = -ENOMEM;
		goto out;
	}
	if (s->nb_snaps)
		memcpy(n, s->snaps, s->nb_snaps * sizeof(*n));
	struct qcow2_snapshot *sn = &n[s->nb_snaps];
	unsigned long max_id = 0;
	for (uint32_t i = 0; i < s->nb_snaps; i++) {
		unsigned long v = strtoul(s->snaps[i].id, NULL, 10);
		if (v > max_id)
			max_id = v;
	}
	char idbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%lu", max_id + 1);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	sn->l1_offset = l1_off;
	sn->l1_size = s->l1_size;
	sn->id = strdup(idbuf);
	sn->name = strdup(name);
	sn->date_sec = (uint32_t)ts.tv_sec;
	sn->date_nsec = (uint32_t)ts.tv_nsec;
	sn->disk_size = b->size;
	sn->extra_size = s->h.version >= 3 ? 16 : 0;
	sn->extra = calloc(1, 16);
	if (!sn->id || !sn->name || !sn->extra) {
		free(sn->id);
		free(sn->name);
		free(sn->extra);
		free(n);
		ret = -ENOMEM;
		goto out;
	}
	be64_store(sn->extra + 8, b->size);
	ret = write_snapshot_table(s, n, s->nb_snaps + 1);
	if (ret < 0) {
		free(sn->id);
		free(sn->name);
		free(sn->extra);
		free(n);
		goto out;
	}
	free(s->snaps);
	s->snaps = n;
	s->nb_snaps++;
	ret = qcow2_rebuild_meta_index(s);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int qcow2_snapshot_apply(struct blk *b, const char *name)
{
	struct qcow2 *s = b->opaque;
	uint64_t cs = s->cluster_size;
	uint64_t *snl1 = NULL, *old = NULL;
	int ret;
	pthread_mutex_lock(&s->lock);
	pthread_rwlock_wrlock(&s->io_lock); /* clusters will be freed */
	int i = find_snapshot(s, name);
	if (i < 0) {
		blk_set_error("%s: no snapshot '%s'", b->path, name);
		ret = -ENOENT;
		goto out;
	}
	struct qcow2_snapshot *sn = &s->snaps[i];
	uint64_t cap = ((uint64_t)s->l1_size * 8 + cs - 1) / cs * cs / 8;
	if (sn->l1_size > cap) {
		blk_set_error(
		    "%s: snapshot '%s' has a larger L1 table than the image; not supported",
		    b->path, name);
		ret = -ENOTSUP;
		goto out;
	}
	ret = qcow2_cache_flush(s);
	if (ret == 0)
		ret = qcow2_sync(s);
	if (ret == 0)
		ret = read_l1(s, sn->l1_offset, sn->l1_size, &snl1);
	if (ret < 0)
		goto out;
	ret = tree_refcount(s, snl1, sn->l1_size, 1, false);
	if (ret == 0)
		ret = qcow2_sync(s);
	if (ret < 0)
		goto out;
	old = s->l1;
	uint32_t old_size = s->l1_size;
	uint64_t *nl1 = calloc(1, cap * 8 + 8);
	if (!nl1) {
		ret = -ENOMEM;
		goto out;
	}
	for (uint32_t k = 0; k < sn->l1_size; k++)
		nl1[k] = snl1[k] & ~QCOW2_OFLAG_COPIED;
	uint32_t new_size = sn->l1_size > old_size ? sn->l1_size : old_size;
	s->l1 = nl1;
	s->l1_size = new_size;
	ret = qcow2_rebuild_meta_index(s);
	if (ret == 0)
		ret = write_active_l1(s);
	if (ret == 0 && new_size != s->h.l1_size) {
		uint8_t f[4];
		be32_store(f, new_size);
		ret = qcow2_update_header_field(s, QCOW2_HDR_L1_SIZE, f, 4);
		s->h.l1_size = new_size;
	}
	if (ret == 0 && sn->disk_size != b->size) {
		uint8_t f[8];
		be64_store(f, sn->disk_size);
		ret = qcow2_update_header_field(s, QCOW2_HDR_SIZE, f, 8);
		if (ret == 0) {
			b->size = sn->disk_size;
			s->h.size = sn->disk_size;
		}
	}
	if (ret == 0)
		ret = qcow2_sync(s);
	if (ret < 0)
		goto out;
	/* The old active tree loses its reference. */
	ret = tree_refcount(s, old, old_size, -1, false);
	if (ret == 0)
		ret = qcow2_fix_copied(s);
	s->cbuf_offset = 0;
out:
	free(old);
	free(snl1);
	pthread_rwlock_unlock(&s->io_lock);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

int qcow2_snapshot_delete(struct blk *b, const char *name)
{
	struct qcow2 *s = b->opaque;
	uint64_t cs = s->cluster_size;
	uint64_t *snl1 = NULL;
	int ret;
	pthread_mutex_lock(&s->lock);
	pthread_rwlock_wrlock(&s->io_lock); /* clusters will be freed */
	int i = find_snapshot(s, name);
	if (i < 0) {
		blk_set_error("%s: no snapshot '%s'", b->path, name);
		ret = -ENOENT;
		goto out;
	}
	struct qcow2_snapshot gone = s->snaps[i];
	ret = qcow2_cache_flush(s);
	if (ret == 0)
		ret = read_l1(s, gone.l1_offset, gone.l1_size, &snl1);
	if (ret < 0)
		goto out;
	struct qcow2_snapshot *n = calloc(s->nb_snaps, sizeof(*n));
	if (!n) {
		ret = -ENOMEM;
		goto out;
	}
	uint32_t k = 0;
	for (uint32_t j = 0; j < s->nb_snaps; j++)
		if ((int)j != i)
			n[k++] = s->snaps[j];
	ret = write_snapshot_table(s, n, k);
	if (ret < 0) {
		free(n);
		goto out;
	}
	free(s->snaps);
	s->snaps = n;
	s->nb_snaps = k;
	ret = qcow2_rebuild_meta_index(s);
	if (ret == 0)
		ret = tree_refcount(s, snl1, gone.l1_size, -1, false);
	if (ret == 0 && gone.l1_size)
		ret = qcow2_update_refcount(s, gone.l1_offset,
					    ((uint64_t)gone.l1_size * 8 + cs - 1) / cs * cs, -1);
	free(gone.id);
	free(gone.name);
	free(gone.extra);
	if (ret == 0)
		ret = qcow2_fix_copied(s);
out:
	free(snl1);
	pthread_rwlock_unlock(&s->io_lock);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

/* Block layer: opens an image with the right driver (probing the format), checks
 * request ranges, and dispatches to the driver. Backing chains are opened here so the
 * depth limit and loop detection live in one place. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_SUBSYS "block"
#include "util/log.h"
#include "block/driver.h"

static __thread char last_error[512];

const char *blk_last_error(void)
{
	return last_error;
}

void blk_clear_error(void)
{
	last_error[0] = 0;
}

void blk_set_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	log_debug("%s", last_error);
}

static const struct blk_driver *const drivers[] = {&blk_qcow2_driver, &blk_raw_driver};

enum blk_format blk_format_parse(const char *name)
{
	if (!strcmp(name, "raw"))
		return BLK_FMT_RAW;
	if (!strcmp(name, "qcow2"))
		return BLK_FMT_QCOW2;
	return (enum blk_format) - 1;
}

static const struct blk_driver *driver_for(enum blk_format f)
{
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (drivers[i]->format == f)
			return drivers[i];
	return NULL;
}

static int probe(const char *path, const struct blk_driver **out)
{
	uint8_t buf[512];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		blk_set_error("%s: %s", path, strerror(e));
		return -e;
	}
	ssize_t n = pread(fd, buf, sizeof(buf), 0);
	close(fd);
	if (n < 0) {
		blk_set_error("%s: cannot read: %s", path, strerror(errno));
		return -EIO;
	}
	*out = &blk_raw_driver;
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (drivers[i]->probe && drivers[i]->probe(buf, (size_t)n)) {
			*out = drivers[i];
			break;
		}
	return 0;
}

static int open_common(struct blk **out, const char *path, const struct blk_open_opts *opts,
		       int depth, struct blk *parent)
{
	const struct blk_driver *drv = NULL;
	int ret;

	if (depth > BLK_MAX_CHAIN_DEPTH) {
		blk_set_error("%s: backing chain longer than %d images", path, BLK_MAX_CHAIN_DEPTH);
		return -ELOOP;
	}
	struct stat st;
	if (stat(path, &st) < 0) {
		int e = errno;
		blk_set_error("%s: %s", path, strerror(e));
		return -e;
	}
	for (struct blk *p = parent; p; p = p->child_of)
		if (p->dev == st.st_dev && p->ino == st.st_ino) {
			blk_set_error("%s: backing file loop: this image is already in the chain "
				      "(opened as %s)",
				      path, p->path);
			return -ELOOP;
		}
	if (opts->format == BLK_FMT_PROBE) {
		ret = probe(path, &drv);
		if (ret < 0)
			return ret;
	} else {
		drv = driver_for(opts->format);
		if (!drv) {
			blk_set_error("%s: unknown image format", path);
			return -EINVAL;
		}
	}
	struct blk *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->drv = drv;
	b->path = strdup(path);
	b->readonly = opts->readonly;
	b->cache = opts->cache;
	b->depth = depth;
	b->dev = st.st_dev;
	b->ino = st.st_ino;
	b->child_of = parent;
	if (!b->path) {
		free(b);
		return -ENOMEM;
	}
	ret = drv->open(b, opts, depth);
	if (ret < 0) {
		free(b->path);
		free(b);
		return ret;
	}
	*out = b;
	return 0;
}

int blk_open(struct blk **out, const char *path, const struct blk_open_opts *opts)
{
	struct blk_open_opts def = {0};
	last_error[0] = 0;
	if (opts && opts->force_share && !opts->readonly) {
		blk_set_error("%s: force-share (-U) can only be used with read-only opens", path);
		return -EINVAL;
	}
	return open_common(out, path, opts ? opts : &def, 0, NULL);
}

int blk_open_backing(struct blk *parent, const char *path, enum blk_format fmt,
		     const struct blk_open_opts *o, struct blk **out)
{
	struct blk_open_opts bo = *o;
	bo.readonly = true;
	bo.format = fmt;
	int ret = open_common(out, path, &bo, parent->depth + 1, parent);
	if (ret == -ENOENT)
		blk_set_error("%s: backing file '%s' of '%s' not found", path, path, parent->path);
	return ret;
}

int blk_open_file(const char *path, const struct blk_open_opts *o, struct blk **out)
{
	struct blk_open_opts fo = {.format = BLK_FMT_RAW,
				   .readonly = o->readonly,
				   .cache = o->cache,
				   .force_share = o->force_share};
	struct blk *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->drv = &blk_raw_driver;
	b->path = strdup(path);
	b->readonly = o->readonly;
	b->cache = o->cache;
	if (!b->path) {
		free(b);
		return -ENOMEM;
	}
	int ret = blk_raw_driver.open(b, &fo, 0);
	if (ret < 0) {
		free(b->path);
		free(b);
		return ret;
	}
	*out = b;
	return 0;
}

void blk_close(struct blk *b)
{
	if (!b)
		return;
	if (b->drv->close)
		b->drv->close(b);
	blk_close(b->backing);
	free(b->path);
	free(b);
}

static int check_range(struct blk *b, uint64_t off, uint64_t len)
{
	if (off > b->size || len > b->size - off) {
		blk_set_error("%s: request at %llu+%llu is past the end of the disk (%llu bytes)",
			      b->path, (unsigned long long)off, (unsigned long long)len,
			      (unsigned long long)b->size);
		return -EINVAL;
	}
	return 0;
}

static int check_write(struct blk *b, uint64_t off, uint64_t len)
{
	if (b->readonly) {
		blk_set_error("%s: image is open read-only", b->path);
		return -EROFS;
	}
	return check_range(b, off, len);
}

int blk_pread(struct blk *b, uint64_t off, void *buf, size_t len)
{
	int ret = check_range(b, off, len);
	if (ret < 0 || len == 0)
		return ret;
	return b->drv->pread(b, off, buf, len);
}

int blk_pwrite(struct blk *b, uint64_t off, const void *buf, size_t len)
{
	int ret = check_write(b, off, len);
	if (ret < 0 || len == 0)
		return ret;
	return b->drv->pwrite(b, off, buf, len);
}

int blk_pwrite_compressed(struct blk *b, uint64_t off, const void *buf, size_t len)
{
	int ret = check_write(b, off, len);
	if (ret < 0 || len == 0)
		return ret;
	if (!b->drv->pwrite_compressed) {
		blk_set_error("%s: format %s does not support compression", b->path, b->drv->name);
		return -ENOTSUP;
	}
	return b->drv->pwrite_compressed(b, off, buf, len);
}

int blk_flush(struct blk *b)
{
	if (b->readonly)
		return 0;
	return b->drv->flush(b);
}

int blk_discard(struct blk *b, uint64_t off, uint64_t len)
{
	int ret = check_write(b, off, len);
	if (ret < 0 || len == 0)
		return ret;
	return b->drv->discard(b, off, len);
}

int blk_write_zeroes(struct blk *b, uint64_t off, uint64_t len, unsigned flags)
{
	int ret = check_write(b, off, len);
	if (ret < 0 || len == 0)
		return ret;
	return b->drv->write_zeroes(b, off, len, flags);
}

int blk_resize(struct blk *b, uint64_t new_size)
{
	if (b->readonly) {
		blk_set_error("%s: image is open read-only", b->path);
		return -EROFS;
	}
	return b->drv->resize(b, new_size);
}

int blk_block_status(struct blk *b, uint64_t off, uint64_t len, struct blk_status *st)
{
	int ret = check_range(b, off, len);
	if (ret < 0)
		return ret;
	memset(st, 0, sizeof(*st));
	if (len == 0)
		return 0;
	return b->drv->block_status(b, off, len, st);
}

int blk_chain_status(struct blk *b, uint64_t off, uint64_t len, struct blk_status *st)
{
	int depth = 0;
	int ret;
	for (;;) {
		ret = blk_block_status(b, off, len, st);
		if (ret < 0)
			return ret;
		st->depth = depth;
		if ((st->flags & BLK_STATUS_ALLOCATED) || !b->backing)
			break;
		/* Unallocated here: the backing file decides, and past its end reads are zero. */
		len = st->len;
		struct blk *bk = b->backing;
		if (off >= bk->size) {
			st->flags = BLK_STATUS_ZERO;
			st->depth = depth + 1;
			return 0;
		}
		if (len > bk->size - off)
			len = bk->size - off;
		b = bk;
		depth++;
	}
	if (!b->backing && !(st->flags & BLK_STATUS_ALLOCATED))
		st->flags |= BLK_STATUS_ZERO;
	return 0;
}

int blk_get_info(struct blk *b, struct blk_info *info)
{
	memset(info, 0, sizeof(*info));
	info->format = b->drv->name;
	info->virtual_size = b->size;
	return b->drv->get_info(b, info);
}

uint64_t blk_size(struct blk *b)
{
	return b->size;
}

const char *blk_path(struct blk *b)
{
	return b->path;
}

const char *blk_format_name(struct blk *b)
{
	return b->drv->name;
}

struct blk *blk_backing(struct blk *b)
{
	return b->backing;
}

uint32_t blk_cluster_size(struct blk *b)
{
	struct blk_info i;
	if (blk_get_info(b, &i) < 0)
		return 0;
	return i.cluster_size;
}

int blk_create(const char *path, const struct blk_create_opts *o)
{
	const struct blk_driver *drv = driver_for(o->format ? o->format : BLK_FMT_RAW);
	last_error[0] = 0;
	if (!drv || !drv->create) {
		blk_set_error("%s: cannot create images of this format", path);
		return -ENOTSUP;
	}
	/* Sizes are whole 512-byte sectors, rounded up as qemu-img does: qemu reads a qcow2
	 * image's size in sectors, so an unaligned one would lose its tail there. */
	struct blk_create_opts ro = *o;
	if (ro.size > UINT64_MAX - 511) {
		blk_set_error("%s: size too large", path);
		return -EINVAL;
	}
	ro.size = (ro.size + 511) & ~511ull;
	return drv->create(path, &ro);
}

static const char *const prealloc_names[] = {
    [BLK_PREALLOC_OFF] = "off",
    [BLK_PREALLOC_METADATA] = "metadata",
    [BLK_PREALLOC_FALLOC] = "falloc",
    [BLK_PREALLOC_FULL] = "full",
};

int blk_prealloc_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(prealloc_names) / sizeof(prealloc_names[0]); i++)
		if (!strcmp(name, prealloc_names[i]))
			return (int)i;
	return -1;
}

const char *blk_prealloc_name(enum blk_prealloc mode)
{
	return prealloc_names[mode];
}

int blk_measure(const struct blk_create_opts *o, struct blk *in, struct blk_measure *m)
{
	const struct blk_driver *drv = driver_for(o->format ? o->format : BLK_FMT_RAW);
	last_error[0] = 0;
	memset(m, 0, sizeof(*m));
	if (!drv || !drv->measure) {
		blk_set_error("cannot measure images of this format");
		return -ENOTSUP;
	}
	return drv->measure(o, in, m);
}

int blk_check(struct blk *b, unsigned fix, struct blk_check_result *r)
{
	memset(r, 0, sizeof(*r));
	if (!b->drv->check)
		return 0;
	if ((fix & ~BLK_CHECK_QUIET) && b->readonly) {
		blk_set_error("%s: image is open read-only, cannot repair", b->path);
		return -EROFS;
	}
	return b->drv->check(b, fix, r);
}

static int no_snapshots(struct blk *b)
{
	blk_set_error("%s: format %s has no internal snapshots", b->path, b->drv->name);
	return -ENOTSUP;
}

int blk_snapshot_list(struct blk *b, struct blk_snapshot_info **list)
{
	*list = NULL;
	if (!b->drv->snapshot_list)
		return no_snapshots(b);
	return b->drv->snapshot_list(b, list);
}

int blk_snapshot_create(struct blk *b, const char *name)
{
	if (!b->drv->snapshot_create)
		return no_snapshots(b);
	if (b->readonly)
		return -EROFS;
	return b->drv->snapshot_create(b, name);
}

int blk_snapshot_apply(struct blk *b, const char *name)
{
	if (!b->drv->snapshot_apply)
		return no_snapshots(b);
	if (b->readonly)
		return -EROFS;
	return b->drv->snapshot_apply(b, name);
}

int blk_snapshot_delete(struct blk *b, const char *name)
{
	if (!b->drv->snapshot_delete)
		return no_snapshots(b);
	if (b->readonly)
		return -EROFS;
	return b->drv->snapshot_delete(b, name);
}

int blk_set_backing(struct blk *b, const char *backing, const char *fmt)
{
	if (!b->drv->set_backing) {
		blk_set_error("%s: format %s cannot have a backing file", b->path, b->drv->name);
		return -ENOTSUP;
	}
	if (b->readonly)
		return -EROFS;
	return b->drv->set_backing(b, backing, fmt);
}

int blk_make_empty(struct blk *b)
{
	if (!b->drv->make_empty) {
		blk_set_error("%s: format %s cannot be emptied", b->path, b->drv->name);
		return -ENOTSUP;
	}
	if (b->readonly)
		return -EROFS;
	return b->drv->make_empty(b);
}

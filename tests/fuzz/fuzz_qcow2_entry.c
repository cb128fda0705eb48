/* Fuzz entry for the qcow2 header/metadata parser and the paths that trust it: the input
 * is an image file. It is opened read-only (header, extensions, L1, refcount table,
 * snapshot table), read, mapped and checked; then opened read-write and written to
 * (allocation, COW, discard, compressed writes, refcount updates); then opened as
 * `img check` opens it (bad tables tolerated), checked, and repaired and written to. Nothing
 * may crash, read
 * or write out of bounds, or loop without bound. Backing files are not opened (a fuzzed
 * name could point anywhere). Shared by the libFuzzer target and the corpus runner. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/block.h"
#include "fuzz_qcow2.h"

static int image_fd(const uint8_t *data, size_t size, char *path, size_t n)
{
	int fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	snprintf(path, n, "/proc/self/fd/%d", fd);
	return fd;
}

static void exercise(struct blk *b, bool rw)
{
	uint64_t size = blk_size(b);
	static uint8_t buf[65536];
	struct blk_info info;
	blk_get_info(b, &info);
	/* A few reads at the start, the middle and the end of the disk. */
	uint64_t offs[3] = {0, size / 2, size > sizeof(buf) ? size - sizeof(buf) : 0};
	for (int i = 0; i < 3; i++) {
		uint64_t len = size - offs[i] < sizeof(buf) ? size - offs[i] : sizeof(buf);
		if (blk_pread(b, offs[i], buf, len) < 0)
			continue;
	}
	/* Allocation map, bounded. */
	uint64_t off = 0;
	for (int i = 0; i < 64 && off < size; i++) {
		struct blk_status st;
		if (blk_chain_status(b, off, size - off, &st) < 0 || st.len == 0)
			break;
		off += st.len;
	}
	struct blk_snapshot_info *l = NULL;
	if (blk_snapshot_list(b, &l) <= 0) {
		free(l);
		l = NULL;
	}
	if (rw) {
		memset(buf, 0x5a, sizeof(buf));
		if (size >= 8192) {
			(void)!blk_pwrite(b, 1000, buf, 5000);
			(void)!blk_discard(b, 0, 4096);
			(void)!blk_write_zeroes(b, size / 2 & ~4095ull, 4096, 0);
			uint32_t cs = blk_cluster_size(b);
			if (cs && size >= 2ull * cs && cs <= sizeof(buf))
				(void)!blk_pwrite_compressed(b, cs, buf, cs);
		}
		(void)!blk_flush(b);
		/* Snapshots walk every table of the image, shared or not. */
		if (blk_snapshot_create(b, "fuzz") == 0) {
			(void)!blk_pwrite(b, 0, buf, size < sizeof(buf) ? size : sizeof(buf));
			(void)!blk_snapshot_apply(b, "fuzz");
			(void)!blk_snapshot_delete(b, "fuzz");
		}
		if (l && l[0].id[0]) /* a snapshot that came with the image */
			(void)!blk_snapshot_delete(b, l[0].id);
	}
	free(l);
	struct blk_check_result r;
	(void)!blk_check(b, BLK_CHECK_QUIET, &r);
}

int fuzz_qcow2_one(const uint8_t *data, size_t size)
{
	char path[64];
	/* read-only, read-write, check (read-only), check -r all (then written to) */
	for (int pass = 0; pass < 4; pass++) {
		int fd = image_fd(data, size, path, sizeof(path));
		if (fd < 0)
			return 0;
		struct blk_open_opts oo = {.format = BLK_FMT_QCOW2,
					   .readonly = pass == 0 || pass == 2,
					   .no_backing = true,
					   .l2_cache_bytes = 4096,
					   .check = pass >= 2};
		struct blk *b;
		if (blk_open(&b, path, &oo) == 0) {
			struct blk_check_result r;
			if (pass == 3)
				(void)!blk_check(
				    b, BLK_CHECK_FIX_LEAKS | BLK_CHECK_FIX_ERRORS | BLK_CHECK_QUIET,
				    &r);
			exercise(b, pass & 1);
			blk_close(b);
		}
		close(fd);
	}
	return 0;
}

/* Crash-test helper for qcow2 (used by tests/img/test_crash.sh).
 *
 *   crashwriter write IMG LOG SEED   random writes/zeroes/discards/compressed writes and
 *                                    flushes until killed; each op is logged before it is
 *                                    issued, each completed flush after it returns
 *   crashwriter verify IMG LOG       replays the log: every sector whose last write was
 *                                    followed by a completed flush must read back exactly;
 *                                    sectors written after the last flush of a run may hold
 *                                    either version
 * Ops are in 512-byte sectors so every sector's content names the op that wrote it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"

#define SECTOR 512u

static void fill_sector(uint8_t *p, uint64_t id, uint64_t sector)
{
	uint64_t x = id * 0x9e3779b97f4a7c15ull ^ (sector + 1) * 0xc2b2ae3d27d4eb4full;
	for (unsigned i = 0; i < SECTOR; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
	memcpy(p, &id, 8);
	memcpy(p + 8, &sector, 8);
}

static uint64_t rng;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void logline(int fd, const char *s)
{
	size_t n = strlen(s);
	if (write(fd, s, n) != (ssize_t)n)
		exit(2);
}

static int do_write(const char *img, const char *logp, uint64_t seed)
{
	rng = seed * 2654435761u + 1;
	struct blk_open_opts oo = {.l2_cache_bytes = 16384};
	struct blk *b;
	if (blk_open(&b, img, &oo) < 0) {
		fprintf(stderr, "crashwriter: %s\n", blk_last_error());
		return 1;
	}
	int lfd = open(logp, O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (lfd < 0)
		return 1;
	uint64_t nsec = blk_size(b) / SECTOR;
	uint32_t cs = blk_cluster_size(b);
	uint8_t *buf = malloc(256 * SECTOR);
	char line[128];
	logline(lfd, "S\n");
	for (uint64_t i = 1;; i++) {
		uint64_t id = (seed << 24) | i;
		int op = (int)(rnd() % 20);
		uint64_t s = rnd() % nsec, n = 1 + rnd() % 256;
		if (s + n > nsec)
			n = nsec - s;
		int ret;
		if (op < 11) {
			for (uint64_t k = 0; k < n; k++)
				fill_sector(buf + k * SECTOR, id, s + k);
			snprintf(line, sizeof(line), "W %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", id,
				 s, n);
			logline(lfd, line);
			ret = blk_pwrite(b, s * SECTOR, buf, n * SECTOR);
		} else if (op < 13) {
			snprintf(line, sizeof(line), "Z %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", id,
				 s, n);
			logline(lfd, line);
			ret = blk_write_zeroes(b, s * SECTOR, n * SECTOR,
					       op == 12 ? BLK_ZERO_MAY_UNMAP : 0);
		} else if (op < 14) {
			snprintf(line, sizeof(line), "Z %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", id,
				 s, n);
			logline(lfd, line);
			ret = blk_discard(b, s * SECTOR, n * SECTOR);
		} else if (op < 15 && cs) {
			uint64_t spc = cs / SECTOR;
			s = s / spc * spc;
			n = spc;
			if (s + n > nsec)
				continue;
			for (uint64_t k = 0; k < n; k++) {
				fill_sector(buf + k * SECTOR, id, s + k);
				memset(buf + k * SECTOR + 16, 0, SECTOR - 16); /* compressible */
			}
			snprintf(line, sizeof(line), "C %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", id,
				 s, n);
			logline(lfd, line);
			ret = blk_pwrite_compressed(b, s * SECTOR, buf, n * SECTOR);
		} else {
			ret = blk_flush(b);
			if (ret == 0)
				logline(lfd, "F\n");
		}
		if (ret < 0) {
			fprintf(stderr, "crashwriter: op failed: %s (%s)\n", strerror(-ret),
				blk_last_error());
			return 1;
		}
	}
}

struct op {
	char kind;
	uint64_t id, s, n;
};

static int do_verify(const char *img, const char *logp)
{
	struct blk_open_opts oo = {.readonly = true};
	struct blk *b;
	if (blk_open(&b, img, &oo) < 0) {
		fprintf(stderr, "verify: cannot open: %s\n", blk_last_error());
		return 1;
	}
	uint64_t nsec = blk_size(b) / SECTOR;
	/* per sector: id of the durable content (0 = zeros), kind, uncertain flag */
	uint64_t *id = calloc(nsec, 8);
	char *kind = calloc(nsec, 1);
	uint8_t *unc = calloc(nsec, 1);
	if (!id || !kind || !unc)
		return 1;
	FILE *f = fopen(logp, "r"); /* missing: the writer was killed before its first op */
	struct op *pend = NULL;
	size_t np = 0, cap = 0;
	char line[256];
	uint64_t flushes = 0, ops = 0;
	while (f && fgets(line, sizeof(line), f)) {
		if (!strchr(line, '\n'))
			break; /* torn last line */
		if (line[0] == 'S' || line[0] == 'K') {
			/* a run ended without a flush: its pending ops may or may not be there */
			for (size_t i = 0; i < np; i++)
				for (uint64_t k = 0; k < pend[i].n; k++)
					unc[pend[i].s + k] = 1;
			np = 0;
		} else if (line[0] == 'F') {
			for (size_t i = 0; i < np; i++)
				for (uint64_t k = 0; k < pend[i].n; k++) {
					uint64_t s = pend[i].s + k;
					id[s] = pend[i].kind == 'Z' ? 0 : pend[i].id;
					kind[s] = pend[i].kind;
					unc[s] = 0;
				}
			np = 0;
			flushes++;
		} else {
			struct op o;
			if (sscanf(line, "%c %" SCNu64 " %" SCNu64 " %" SCNu64, &o.kind, &o.id,
				   &o.s, &o.n) != 4 ||
			    o.s + o.n > nsec)
				continue;
			if (np == cap) {
				cap = cap ? cap * 2 : 256;
				pend = realloc(pend, cap * sizeof(*pend));
			}
			pend[np++] = o;
			ops++;
		}
	}
	if (f)
		fclose(f);
	/* Ops after the last flush of the run that was just killed. */
	for (size_t i = 0; i < np; i++)
		for (uint64_t k = 0; k < pend[i].n; k++)
			unc[pend[i].s + k] = 1;
	uint8_t *buf = malloc(1 << 20), exp[SECTOR];
	uint64_t bad = 0, checked = 0;
	for (uint64_t s0 = 0; s0 < nsec; s0 += (1 << 20) / SECTOR) {
		uint64_t n = nsec - s0 < (1 << 20) / SECTOR ? nsec - s0 : (1 << 20) / SECTOR;
		int ret = blk_pread(b, s0 * SECTOR, buf, n * SECTOR);
		if (ret < 0) {
			fprintf(stderr, "verify: read failed: %s\n", blk_last_error());
			return 1;
		}
		for (uint64_t k = 0; k < n; k++) {
			uint64_t s = s0 + k;
			if (unc[s])
				continue;
			checked++;
			memset(exp, 0, SECTOR);
			if (id[s]) {
				fill_sector(exp, id[s], s);
				if (kind[s] == 'C')
					memset(exp + 16, 0, SECTOR - 16);
			}
			if (memcmp(exp, buf + k * SECTOR, SECTOR)) {
				if (bad++ < 10)
					fprintf(stderr,
						"verify: sector %" PRIu64
						" lost (expected op %" PRIx64 ")\n",
						s, id[s]);
			}
		}
	}
	blk_close(b);
	free(buf);
	free(pend);
	free(id);
	free(kind);
	free(unc);
	printf("verify: %" PRIu64 " ops, %" PRIu64 " flushes, %" PRIu64 " sectors checked, %" PRIu64
	       " lost\n",
	       ops, flushes, checked, bad);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "write"))
		return do_write(argv[2], argv[3], strtoull(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "verify"))
		return do_verify(argv[2], argv[3]);
	fprintf(stderr, "usage: crashwriter write IMG LOG SEED | verify IMG LOG\n");
	return 2;
}

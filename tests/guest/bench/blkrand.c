/* 4 KiB random-read benchmark for the guest side of make bench (a minimal fio "randread"):
 *
 *   blkrand DEV SECONDS THREADS
 *
 * THREADS threads each read 4 KiB at random 4 KiB-aligned offsets of DEV with O_DIRECT, one
 * request at a time (so THREADS is the queue depth the device sees), until SECONDS have passed,
 * then it prints "reads N seconds S". Busybox has no way to read at random offsets without a
 * process per read, whose cost would swamp the I/O; this is built statically on the host
 * (tests/guest/bench/blk_bench.sh) and carried into the guest on a second disk. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

#define BLOCK	    4096u
#define MAX_THREADS 64

struct worker {
	pthread_t tid;
	int fd;
	uint64_t blocks;
	double end;
	uint64_t seed;
	uint64_t reads;
	int err;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	void *buf;
	if (posix_memalign(&buf, BLOCK, BLOCK)) {
		w->err = ENOMEM;
		return NULL;
	}
	while (now() < w->end) {
		/* Check the clock every 16 reads: reading it costs a VM exit on some clocksources. */
		for (int i = 0; i < 16; i++) {
			uint64_t blk = next_rand(&w->seed) % w->blocks;
			if (pread(w->fd, buf, BLOCK, (off_t)(blk * BLOCK)) != BLOCK) {
				w->err = errno ? errno : EIO;
				free(buf);
				return NULL;
			}
			w->reads++;
		}
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: blkrand DEV SECONDS THREADS\n");
		return 2;
	}
	double secs = atof(argv[2]);
	int threads = atoi(argv[3]);
	if (secs <= 0 || threads < 1 || threads > MAX_THREADS) {
		fprintf(stderr, "blkrand: SECONDS > 0 and 1 <= THREADS <= %d\n", MAX_THREADS);
		return 2;
	}
	int fd = open(argv[1], O_RDONLY | O_DIRECT);
	if (fd < 0) {
		fprintf(stderr, "blkrand: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	uint64_t size = 0;
	if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
		off_t end = lseek(fd, 0, SEEK_END);
		size = end > 0 ? (uint64_t)end : 0;
	}
	if (size < BLOCK) {
		fprintf(stderr, "blkrand: %s: smaller than one block\n", argv[1]);
		return 1;
	}
	static struct worker w[MAX_THREADS];
	double start = now();
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){.fd = fd,
				       .blocks = size / BLOCK,
				       .end = start + secs,
				       .seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1)};
		if (pthread_create(&w[i].tid, NULL, work, &w[i])) {
			fprintf(stderr, "blkrand: cannot start thread %d\n", i);
			return 1;
		}
	}
	uint64_t reads = 0;
	int err = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		reads += w[i].reads;
		if (w[i].err)
			err = w[i].err;
	}
	double took = now() - start;
	if (err) {
		fprintf(stderr, "blkrand: read failed: %s\n", strerror(err));
		return 1;
	}
	printf("reads %llu seconds %.3f\n", (unsigned long long)reads, took);
	return 0;
}

/* virtio-blk (virtio 1.2 section 5.2): a disk image behind a virtio PCI function.
 *
 * Requests are served on the device's own iothread: a doorbell write only kicks an eventfd;
 * the iothread takes every available request of every queue and starts it through the block
 * layer's asynchronous interface (block/aio.h: io_uring for raw images, synchronous for qcow2
 * or where io_uring is unavailable), then sleeps on the doorbell and the completion eventfd.
 * Requests complete in whatever order the host finishes them (each has its own head in the used
 * ring). All queue and io_uring work happens with the device lock held. A device reset (driver
 * or machine) waits for the requests in flight and completes nothing into the reset queues.
 *
 * Supported: read, write, flush, get-id, discard (with discard=on), write-zeroes, several
 * queues (VIRTIO_BLK_F_MQ), read-only disks (VIRTIO_BLK_F_RO, writes fail with IOERR). A
 * failing host read or write answers IOERR.
 */
#ifndef KESTREL_VIRTIO_BLK_H
#define KESTREL_VIRTIO_BLK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "block/aio.h"
#include "block/block.h"
#include "util/error.h"
#include "virtio/virtio.h"

#define VIRTIO_BLK_F_SEG_MAX	  2
#define VIRTIO_BLK_F_RO		  5
#define VIRTIO_BLK_F_BLK_SIZE	  6
#define VIRTIO_BLK_F_FLUSH	  9
#define VIRTIO_BLK_F_MQ		  12
#define VIRTIO_BLK_F_DISCARD	  13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN		  0
#define VIRTIO_BLK_T_OUT	  1
#define VIRTIO_BLK_T_FLUSH	  4
#define VIRTIO_BLK_T_GET_ID	  8
#define VIRTIO_BLK_T_DISCARD	  11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_CONFIG_SIZE 60
#define VIRTIO_BLK_ID_BYTES    20
#define VIRTIO_BLK_QUEUE_SIZE  256
#define VIRTIO_BLK_MAX_QUEUES  8

struct virtio_blk_opts {
	const char *path;
	enum blk_format format; /* BLK_FMT_PROBE: look at the image */
	bool readonly;
	enum blk_cache cache;
	bool discard;
	unsigned num_queues;   /* 0 or 1: one queue */
	bool sync_io;	       /* aio=sync: no io_uring */
	size_t l2_cache_bytes; /* l2-cache-size: qcow2 L2 table cache; 0 = default */
};

struct virtio_blk_req;

struct virtio_blk {
	struct virtio_pci vp;
	struct blk *blk;
	bool readonly, discard;
	uint64_t sectors;
	uint8_t config[VIRTIO_BLK_CONFIG_SIZE];
	char id[VIRTIO_BLK_ID_BYTES + 1];
	char name[16]; /* "virtio-blk0" */

	int kick_fd; /* eventfd the doorbell writes */
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	struct blk_aio *aio;
	struct virtio_blk_req *free_reqs; /* recycled request slots */
	bool quiescing;			  /* reset: completions are dropped */
	bool paused; /* the VM is stopped: no request is taken until resume (lock held) */
	unsigned unsignalled[VIRTIO_BLK_MAX_QUEUES]; /* used entries since the last interrupt */
	/* Tests: the iothread leaves completions waiting (to reset with requests in flight). */
	atomic_bool hold_completions;
	/* Counters (lock held) */
	uint64_t nr_requests, nr_errors;
	uint64_t nr_dropped; /* finished during a reset, not returned to the driver */
};

/* Open the image and build the PCI function; `index` names it (virtio-blk<index>, serial
 * "kestrel-disk<index>"). The iothread starts here. Returns 0 or -errno with err set. */
int virtio_blk_init(struct virtio_blk *vb, const struct virtio_blk_opts *o, unsigned index,
		    const struct guest_mem *gm, struct error *err)
    __attribute__((warn_unused_result));
void virtio_blk_destroy(struct virtio_blk *vb);
/* Serve all pending requests now, on the calling thread (tests; the iothread does this). */
void virtio_blk_process(struct virtio_blk *vb);
/* Wait for the requests in flight and return them to the driver (before saving the device
 * state, say: the saved rings then hold no request the device has taken but not answered;
 * the vCPUs must be stopped so that no new ones come). */
void virtio_blk_drain(struct virtio_blk *vb);
/* The VM stops (main thread, vCPUs parked): the requests in flight are answered now, and none
 * is taken from the rings until virtio_blk_resume(), which then serves what was posted
 * meanwhile. Between the two the device neither touches guest memory nor interrupts. */
void virtio_blk_pause(struct virtio_blk *vb);
void virtio_blk_resume(struct virtio_blk *vb);

#endif

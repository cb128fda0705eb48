/* virtio-blk device (virtio 1.2 section 5.2: 5.2.4 config layout, 5.2.6 request format,
 * 5.2.6.1-2 device requirements). See include/virtio/blk.h.
 */
#define LOG_SUBSYS "virtio-blk"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/endian.h"
#include "virtio/blk.h"

#define SECTOR_SHIFT	9
#define HDR_LEN		16
#define SEG_LEN		16 /* discard / write-zeroes segment */
#define MAX_DWZ_SECTORS (1u << 22)
#define MAX_REQ_BYTES	(1u << 30) /* data bytes in one read or write request */

/* A request between vq_pop() and vq_push(). The block layer's request comes first so its
 * completion callback finds the rest. */
struct virtio_blk_req {
	struct blk_aio_req aio;
	struct virtio_blk *vb;
	struct virtio_blk_req *next_free;
	unsigned q;
	uint32_t type;
	uint64_t sector;
	uint32_t written; /* bytes written into the chain, the status byte included */
	struct vq_elem elem;
	struct iovec iov[VQ_MAX_SEGS];
};

static struct virtio_blk_req *req_get(struct virtio_blk *vb)
{
	struct virtio_blk_req *rq = vb->free_reqs;
	if (rq) {
		vb->free_reqs = rq->next_free;
		return rq;
	}
	rq = malloc(sizeof(*rq));
	if (rq)
		rq->vb = vb;
	return rq;
}

static void req_put(struct virtio_blk *vb, struct virtio_blk_req *rq)
{
	rq->next_free = vb->free_reqs;
	vb->free_reqs = rq;
}

/* Bytes [off, off+len) of the chain's data (out or in side) as an iovec; returns its count. */
static unsigned chain_iov(const struct vq_elem *e, bool in, size_t off, size_t len,
			  struct iovec *iov)
{
	unsigned first = in ? e->n_out : 0, last = in ? e->n_out + e->n_in : e->n_out, n = 0;
	for (unsigned s = first; s < last && len && n < VQ_MAX_SEGS; s++) {
		const struct vq_seg *g = &e->seg[s];
		if (off >= g->len) {
			off -= g->len;
			continue;
		}
		size_t k = g->len - off < len ? g->len - off : len;
		iov[n++] = (struct iovec){.iov_base = g->ptr + off, .iov_len = k};
		len -= k;
		off = 0;
	}
	return n;
}

/* The block layer's message if it left one, else the errno's. */
static const char *io_error(int ret)
{
	const char *msg = blk_last_error();
	return msg && msg[0] ? msg : strerror(-ret);
}

static const char *type_name(uint32_t type)
{
	switch (type) {
	case VIRTIO_BLK_T_IN:
		return "read";
	case VIRTIO_BLK_T_OUT:
		return "write";
	case VIRTIO_BLK_T_FLUSH:
		return "flush";
	case VIRTIO_BLK_T_DISCARD:
		return "discard";
	case VIRTIO_BLK_T_WRITE_ZEROES:
		return "write-zeroes";
	}
	return "request";
}

static bool in_range(struct virtio_blk *vb, uint64_t sector, uint64_t bytes)
{
	uint64_t nsec = bytes >> SECTOR_SHIFT;
	return !(bytes & ((1u << SECTOR_SHIFT) - 1)) && sector <= vb->sectors &&
	       nsec <= vb->sectors - sector;
}

/* Lock held. Interrupt the driver for what queue q returned since the last time. */
static void signal_queue(struct virtio_blk *vb, unsigned q)
{
	if (vb->unsignalled[q]) {
		vb->unsignalled[q] = 0;
		virtio_notify_queue(&vb->vp.vdev, q);
	}
}

/* Lock held. Return the chain with its status; a reset under way drops it instead (the ring
 * it came from is gone). */
static void complete(struct virtio_blk *vb, struct virtio_blk_req *rq, uint8_t status)
{
	vb->nr_requests++;
	if (status != VIRTIO_BLK_S_OK)
		vb->nr_errors++;
	if (vb->quiescing) {
		vb->nr_dropped++;
		req_put(vb, rq);
		return;
	}
	vq_elem_write(&rq->elem, rq->elem.in_len - 1, &status, 1);
	vq_push(&vb->vp.vdev.vqs[rq->q], rq->elem.head, rq->written);
	/* Let the guest see completions while a long batch goes on. */
	if (++vb->unsignalled[rq->q] >= 32)
		signal_queue(vb, rq->q);
	req_put(vb, rq);
}

/* Completion of the block layer's part (lock held: the aio context is only used under it). */
static void io_done(struct blk_aio_req *a, int ret)
{
	struct virtio_blk_req *rq = (struct virtio_blk_req *)a;
	struct virtio_blk *vb = rq->vb;
	if (ret) {
		if (!vb->quiescing)
			log_warn("%s: %s at sector %llu failed: %s", vb->name, type_name(rq->type),
				 (unsigned long long)rq->sector, io_error(ret));
		complete(vb, rq, VIRTIO_BLK_S_IOERR);
		return;
	}
	if (rq->type == VIRTIO_BLK_T_IN)
		rq->written += (uint32_t)a->len;
	complete(vb, rq, VIRTIO_BLK_S_OK);
}

static void start_io(struct virtio_blk *vb, struct virtio_blk_req *rq, enum blk_aio_op op,
		     uint64_t off, uint64_t len, unsigned flags)
{
	rq->aio.op = op;
	rq->aio.off = off;
	rq->aio.len = len;
	rq->aio.flags = flags;
	rq->aio.iov = rq->iov;
	rq->aio.done = io_done;
	blk_aio_submit(vb->aio, &rq->aio);
}

/* Discard or write-zeroes: checks the one segment; returns a status to complete with now, or
 * -1 when the request went to the block layer. */
static int start_discard_wz(struct virtio_blk *vb, struct virtio_blk_req *rq)
{
	const struct vq_elem *e = &rq->elem;
	if (rq->type == VIRTIO_BLK_T_DISCARD && !vb->discard)
		return VIRTIO_BLK_S_UNSUPP;
	if (vb->readonly)
		return VIRTIO_BLK_S_IOERR;
	size_t data = e->out_len - HDR_LEN;
	if (data == 0 || data % SEG_LEN || data / SEG_LEN > 1)
		return VIRTIO_BLK_S_UNSUPP; /* max_*_seg is 1 */
	uint8_t seg[SEG_LEN];
	if (vq_elem_read(e, HDR_LEN, seg, SEG_LEN) != SEG_LEN)
		return VIRTIO_BLK_S_IOERR;
	uint64_t sector;
	uint32_t num, flags;
	memcpy(&sector, seg, 8);
	memcpy(&num, seg + 8, 4);
	memcpy(&flags, seg + 12, 4);
	if (num > MAX_DWZ_SECTORS || !in_range(vb, sector, (uint64_t)num << SECTOR_SHIFT))
		return VIRTIO_BLK_S_IOERR;
	/* Only the unmap flag (bit 0), and only for write-zeroes, is defined. */
	if ((rq->type == VIRTIO_BLK_T_DISCARD && flags) || (flags & ~1u))
		return VIRTIO_BLK_S_UNSUPP;
	rq->sector = sector;
	rq->aio.iovcnt = 0;
	if (rq->type == VIRTIO_BLK_T_DISCARD)
		start_io(vb, rq, BLK_AIO_DISCARD, sector << SECTOR_SHIFT,
			 (uint64_t)num << SECTOR_SHIFT, 0);
	else
		start_io(vb, rq, BLK_AIO_WRITE_ZEROES, sector << SECTOR_SHIFT,
			 (uint64_t)num << SECTOR_SHIFT,
			 (flags & 1) && vb->discard ? BLK_ZERO_MAY_UNMAP : 0);
	return -1;
}

/* Lock held. Starts one popped request; it completes now or when the block layer is done.
 * Returns -EINVAL (the request is not consumed) for a chain that is not a request at all: no
 * header, no status byte, data the wrong way round. */
static int start_request(struct virtio_blk *vb, struct virtio_blk_req *rq)
{
	const struct vq_elem *e = &rq->elem;
	uint8_t hdr[HDR_LEN];
	if (e->out_len < HDR_LEN || e->in_len < 1 || vq_elem_read(e, 0, hdr, HDR_LEN) != HDR_LEN) {
		log_guest_error("%s: request without header or status byte", vb->name);
		return -EINVAL;
	}
	memcpy(&rq->type, hdr, 4);
	memcpy(&rq->sector, hdr + 8, 8);
	rq->written = 1;
	size_t in_data = e->in_len - 1; /* the status byte is the last writable byte */
	size_t out_data = e->out_len - HDR_LEN;
	if (in_data > MAX_REQ_BYTES || out_data > MAX_REQ_BYTES) {
		complete(vb, rq, VIRTIO_BLK_S_IOERR); /* no driver sends that much */
		return 0;
	}
	int st = VIRTIO_BLK_S_OK;
	switch (rq->type) {
	case VIRTIO_BLK_T_IN:
		if (out_data) {
			log_guest_error("%s: read request with device-readable data", vb->name);
			return -EINVAL;
		}
		if (!in_range(vb, rq->sector, in_data)) {
			st = VIRTIO_BLK_S_IOERR;
			break;
		}
		rq->aio.iovcnt = chain_iov(e, true, 0, in_data, rq->iov);
		start_io(vb, rq, BLK_AIO_READ, rq->sector << SECTOR_SHIFT, in_data, 0);
		return 0;
	case VIRTIO_BLK_T_OUT:
		if (in_data) {
			log_guest_error("%s: write request with device-writable data", vb->name);
			return -EINVAL;
		}
		if (vb->readonly || !in_range(vb, rq->sector, out_data)) {
			st = VIRTIO_BLK_S_IOERR;
			break;
		}
		rq->aio.iovcnt = chain_iov(e, false, HDR_LEN, out_data, rq->iov);
		start_io(vb, rq, BLK_AIO_WRITE, rq->sector << SECTOR_SHIFT, out_data, 0);
		return 0;
	case VIRTIO_BLK_T_FLUSH:
		if (vb->readonly)
			break;
		rq->aio.iovcnt = 0;
		start_io(vb, rq, BLK_AIO_FLUSH, 0, 0, 0);
		return 0;
	case VIRTIO_BLK_T_GET_ID: {
		size_t n = in_data < VIRTIO_BLK_ID_BYTES ? in_data : VIRTIO_BLK_ID_BYTES;
		uint8_t id[VIRTIO_BLK_ID_BYTES] = {0};
		memcpy(id, vb->id, strnlen(vb->id, VIRTIO_BLK_ID_BYTES));
		rq->written += (uint32_t)vq_elem_write(e, 0, id, n);
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		st = start_discard_wz(vb, rq);
		if (st < 0)
			return 0;
		break;
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	complete(vb, rq, (uint8_t)st);
	return 0;
}

/* Lock held. Starts every available request of every queue (while the block layer has room),
 * hands them to the kernel in one go, and interrupts for what completed meanwhile. */
static void take_requests(struct virtio_blk *vb)
{
	struct virtio_dev *vd = &vb->vp.vdev;
	for (unsigned q = 0; q < vd->num_queues && virtio_dev_running(vd); q++) {
		struct virtqueue *vq = &vd->vqs[q];
		int r = 0;
		while (!blk_aio_full(vb->aio)) {
			struct virtio_blk_req *rq = req_get(vb);
			if (!rq) {
				log_warn("%s: out of memory for requests", vb->name);
				break;
			}
			r = vq_pop(vq, &rq->elem);
			if (r <= 0) {
				req_put(vb, rq);
				break;
			}
			rq->q = q;
			r = start_request(vb, rq);
			if (r < 0) {
				req_put(vb, rq);
				break;
			}
		}
		if (r < 0) {
			virtio_set_needs_reset(vd);
			break;
		}
	}
	blk_aio_kick(vb->aio);
	for (unsigned q = 0; q < vd->num_queues; q++)
		signal_queue(vb, q);
}

/* Lock held. */
static void service(struct virtio_blk *vb)
{
	if (vb->paused)
		return; /* the doorbell is remembered: resume kicks the iothread */
	if (!atomic_load(&vb->hold_completions))
		blk_aio_poll(vb->aio);
	take_requests(vb);
}

void virtio_blk_process(struct virtio_blk *vb)
{
	pthread_mutex_lock(&vb->vp.vdev.lock);
	service(vb);
	pthread_mutex_unlock(&vb->vp.vdev.lock);
}

void virtio_blk_drain(struct virtio_blk *vb)
{
	pthread_mutex_lock(&vb->vp.vdev.lock);
	blk_aio_drain(vb->aio);
	for (unsigned q = 0; q < vb->vp.vdev.num_queues; q++)
		signal_queue(vb, q);
	pthread_mutex_unlock(&vb->vp.vdev.lock);
}

void virtio_blk_pause(struct virtio_blk *vb)
{
	pthread_mutex_lock(&vb->vp.vdev.lock);
	vb->paused = true;
	unsigned n = blk_aio_inflight(vb->aio);
	blk_aio_drain(vb->aio);
	for (unsigned q = 0; q < vb->vp.vdev.num_queues; q++)
		signal_queue(vb, q);
	pthread_mutex_unlock(&vb->vp.vdev.lock);
	if (n)
		log_debug("%s: pause answered %u requests in flight", vb->name, n);
}

void virtio_blk_resume(struct virtio_blk *vb)
{
	pthread_mutex_lock(&vb->vp.vdev.lock);
	vb->paused = false;
	pthread_mutex_unlock(&vb->vp.vdev.lock);
	/* Doorbells rung while paused were read and dropped by the iothread: serve every
	 * queue now. */
	uint64_t one = 1;
	if (write(vb->kick_fd, &one, sizeof(one)) < 0)
		log_warn("%s: cannot kick the iothread: %s", vb->name, strerror(errno));
}

static void *iothread(void *arg)
{
	struct virtio_blk *vb = arg;
	int aio_fd = blk_aio_fd(vb->aio);
	while (!atomic_load(&vb->stop)) {
		struct pollfd p[2] = {
		    {.fd = vb->kick_fd, .events = POLLIN},
		    {.fd = atomic_load(&vb->hold_completions) ? -1 : aio_fd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		uint64_t v;
		if (read(vb->kick_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			break;
		if (atomic_load(&vb->stop))
			break;
		virtio_blk_process(vb);
	}
	return NULL;
}

/* The driver or the machine resets the device (lock held): wait for what is in flight, whose
 * buffers are still guest RAM (never unmapped at reset), and return none of it. */
static void blk_reset(struct virtio_dev *vd)
{
	struct virtio_blk *vb = vd->opaque;
	unsigned n = blk_aio_inflight(vb->aio);
	vb->quiescing = true;
	blk_aio_drain(vb->aio);
	vb->quiescing = false;
	memset(vb->unsignalled, 0, sizeof(vb->unsignalled));
	if (n)
		log_debug("%s: reset waited for %u requests in flight", vb->name, n);
}

static void blk_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_blk *vb = vd->opaque;
	uint64_t one = 1;
	if (write(vb->kick_fd, &one, sizeof(one)) < 0)
		log_warn("%s: cannot kick the iothread: %s", vb->name, strerror(errno));
}

static const struct virtio_dev_ops blk_ops = {.notify = blk_notify, .reset = blk_reset};

static void build_config(struct virtio_blk *vb, unsigned nq)
{
	uint8_t *c = vb->config;
	memset(c, 0, sizeof(vb->config));
	le64_store(c + 0, vb->sectors);
	le32_store(c + 12, VQ_MAX_SEGS - 2); /* seg_max: header and status take two */
	le32_store(c + 20, 512);	     /* blk_size */
	le16_store(c + 34, (uint16_t)nq);
	le32_store(c + 36, MAX_DWZ_SECTORS); /* max_discard_sectors */
	le32_store(c + 40, 1);		     /* max_discard_seg */
	le32_store(c + 44, 1);		     /* discard_sector_alignment */
	le32_store(c + 48, MAX_DWZ_SECTORS); /* max_write_zeroes_sectors */
	le32_store(c + 52, 1);		     /* max_write_zeroes_seg */
	c[56] = vb->discard;		     /* write_zeroes_may_unmap */
}

int virtio_blk_init(struct virtio_blk *vb, const struct virtio_blk_opts *o, unsigned index,
		    const struct guest_mem *gm, struct error *err)
{
	memset(vb, 0, sizeof(*vb));
	vb->kick_fd = -1;
	snprintf(vb->name, sizeof(vb->name), "virtio-blk%u", index);
	snprintf(vb->id, sizeof(vb->id), "kestrel-disk%u", index);
	struct blk_open_opts bo = {.format = o->format,
				   .readonly = o->readonly,
				   .cache = o->cache,
				   .l2_cache_bytes = o->l2_cache_bytes};
	int ret = blk_open(&vb->blk, o->path, &bo);
	if (ret)
		return error_set(err, ret, "--disk %s: %s", o->path, blk_last_error());
	ret = blk_aio_new(vb->blk, BLK_AIO_DEFAULT_DEPTH, o->sync_io ? BLK_AIO_FORCE_SYNC : 0,
			  &vb->aio);
	if (ret) {
		error_set(err, ret, "%s: out of memory", vb->name);
		goto err_blk;
	}
	log_info("%s: %s (%s%s), %s I/O", vb->name, o->path, blk_format_name(vb->blk),
		 o->cache == BLK_CACHE_NONE ? ", cache=none" : "",
		 blk_aio_uses_uring(vb->aio) ? "io_uring" : "synchronous");
	vb->readonly = o->readonly;
	vb->discard = o->discard && !o->readonly;
	vb->sectors = blk_size(vb->blk) >> SECTOR_SHIFT;
	unsigned nq = o->num_queues ? o->num_queues : 1;
	if (nq > VIRTIO_BLK_MAX_QUEUES)
		nq = VIRTIO_BLK_MAX_QUEUES;
	build_config(vb, nq);
	uint64_t f = 1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_BLK_SIZE |
		     1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	if (nq > 1)
		f |= 1ULL << VIRTIO_BLK_F_MQ;
	if (vb->readonly)
		f |= 1ULL << VIRTIO_BLK_F_RO;
	if (vb->discard)
		f |= 1ULL << VIRTIO_BLK_F_DISCARD;
	virtio_dev_init(&vb->vp.vdev, vb->name, VIRTIO_ID_BLOCK, f, nq, VIRTIO_BLK_QUEUE_SIZE, gm,
			vb->config, sizeof(vb->config), &blk_ops, vb);
	vb->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vb->kick_fd < 0) {
		ret = error_set(err, -errno, "%s: eventfd: %s", vb->name, strerror(errno));
		goto err_blk;
	}
	vb->vp.vdev.notify_fd = vb->kick_fd;	  /* the iothread drains every queue on a kick */
	ret = virtio_pci_init(&vb->vp, 0x018000); /* mass storage, other */
	if (ret) {
		error_set(err, ret, "%s: cannot build the PCI function", vb->name);
		goto err_fd;
	}
	ret = -pthread_create(&vb->thread, NULL, iothread, vb);
	if (ret) {
		error_set(err, ret, "%s: cannot start its iothread", vb->name);
		goto err_fd;
	}
	vb->thread_started = true;
	char tname[16];
	snprintf(tname, sizeof(tname), "iothread%u", index);
	pthread_setname_np(vb->thread, tname);
	return 0;

err_fd:
	close(vb->kick_fd);
	vb->kick_fd = -1;
err_blk:
	blk_aio_free(vb->aio);
	vb->aio = NULL;
	blk_close(vb->blk);
	vb->blk = NULL;
	return ret;
}

void virtio_blk_destroy(struct virtio_blk *vb)
{
	if (vb->thread_started) {
		atomic_store(&vb->stop, true);
		uint64_t one = 1;
		if (write(vb->kick_fd, &one, sizeof(one)) < 0)
			log_warn("%s: cannot stop the iothread", vb->name);
		pthread_join(vb->thread, NULL);
		vb->thread_started = false;
	}
	if (vb->aio) {
		struct blk_aio_stats st;
		pthread_mutex_lock(&vb->vp.vdev.lock);
		vb->quiescing = true;
		blk_aio_drain(vb->aio);
		vb->quiescing = false;
		pthread_mutex_unlock(&vb->vp.vdev.lock);
		blk_aio_get_stats(vb->aio, &st);
		log_info("%s: %llu requests (%llu failed); io_uring %llu, synchronous %llu, "
			 "bounced %llu, continued %llu; at most %u in flight",
			 vb->name, (unsigned long long)vb->nr_requests,
			 (unsigned long long)vb->nr_errors, (unsigned long long)st.uring,
			 (unsigned long long)st.sync, (unsigned long long)st.bounced,
			 (unsigned long long)st.resubmitted, st.max_inflight);
		blk_aio_free(vb->aio);
		vb->aio = NULL;
	}
	while (vb->free_reqs) {
		struct virtio_blk_req *rq = vb->free_reqs;
		vb->free_reqs = rq->next_free;
		free(rq);
	}
	if (vb->kick_fd >= 0)
		close(vb->kick_fd);
	vb->kick_fd = -1;
	if (vb->blk) {
		if (!vb->readonly && blk_flush(vb->blk))
			log_warn("%s: final flush failed: %s", vb->name, blk_last_error());
		blk_close(vb->blk);
		vb->blk = NULL;
	}
	virtio_pci_destroy(&vb->vp);
}

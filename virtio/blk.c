/* virtio-blk device (virtio 1.2 section 5.2: 5.2.4 config layout, 5.2.6 request format,
 * 5.2.6.1-2 device requirements). See include/virtio/blk.h.
 */
#define LOG_SUBSYS "virtio-blk"
#include <errno.h>
#include <poll.h>
#include <stdio.h>
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

/* Bytes [off, off+len) of the chain's data (out or in side), as host segments; calls fn per
 * piece and stops at its first error. */
static int for_each_piece(const struct vq_elem *e, bool in, size_t off, size_t len,
			  int (*fn)(void *ctx, uint8_t *p, size_t n, uint64_t pos), void *ctx,
			  uint64_t pos)
{
	unsigned first = in ? e->n_out : 0, last = in ? e->n_out + e->n_in : e->n_out;
	for (unsigned s = first; s < last && len; s++) {
		const struct vq_seg *g = &e->seg[s];
		if (off >= g->len) {
			off -= g->len;
			continue;
		}
		size_t n = g->len - off < len ? g->len - off : len;
		int ret = fn(ctx, g->ptr + off, n, pos);
		if (ret)
			return ret;
		pos += n;
		len -= n;
		off = 0;
	}
	return 0;
}

static int piece_read(void *ctx, uint8_t *p, size_t n, uint64_t pos)
{
	return blk_pread(ctx, pos, p, n);
}

static int piece_write(void *ctx, uint8_t *p, size_t n, uint64_t pos)
{
	return blk_pwrite(ctx, pos, p, n);
}

/* The block layer's message if it left one, else the errno's. */
static const char *io_error(int ret)
{
	const char *msg = blk_last_error();
	return msg && msg[0] ? msg : strerror(-ret);
}

static bool in_range(struct virtio_blk *vb, uint64_t sector, uint64_t bytes)
{
	uint64_t nsec = bytes >> SECTOR_SHIFT;
	return !(bytes & ((1u << SECTOR_SHIFT) - 1)) && sector <= vb->sectors &&
	       nsec <= vb->sectors - sector;
}

static uint8_t do_discard_wz(struct virtio_blk *vb, const struct vq_elem *e, uint32_t type)
{
	if (type == VIRTIO_BLK_T_DISCARD && !vb->discard)
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
	if ((type == VIRTIO_BLK_T_DISCARD && flags) || (flags & ~1u))
		return VIRTIO_BLK_S_UNSUPP;
	uint64_t off = sector << SECTOR_SHIFT, len = (uint64_t)num << SECTOR_SHIFT;
	int ret = type == VIRTIO_BLK_T_DISCARD
		      ? blk_discard(vb->blk, off, len)
		      : blk_write_zeroes(vb->blk, off, len,
					 (flags & 1) && vb->discard ? BLK_ZERO_MAY_UNMAP : 0);
	if (ret) {
		log_warn("%s: %s at sector %llu failed: %s", vb->name,
			 type == VIRTIO_BLK_T_DISCARD ? "discard" : "write-zeroes",
			 (unsigned long long)sector, io_error(ret));
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

/* Serve one request; returns the bytes written into the chain, or -EINVAL for a chain that
 * is not a request at all (no header, no status byte, data the wrong way round). */
static int do_request(struct virtio_blk *vb, const struct vq_elem *e)
{
	uint8_t hdr[HDR_LEN];
	if (e->out_len < HDR_LEN || e->in_len < 1 || vq_elem_read(e, 0, hdr, HDR_LEN) != HDR_LEN) {
		log_guest_error("%s: request without header or status byte", vb->name);
		return -EINVAL;
	}
	uint32_t type;
	uint64_t sector;
	memcpy(&type, hdr, 4);
	memcpy(&sector, hdr + 8, 8);
	size_t in_data = e->in_len - 1; /* the status byte is the last writable byte */
	size_t out_data = e->out_len - HDR_LEN;
	if (in_data > MAX_REQ_BYTES || out_data > MAX_REQ_BYTES) {
		uint8_t st = VIRTIO_BLK_S_IOERR; /* no driver sends that much: not worth serving */
		vq_elem_write(e, e->in_len - 1, &st, 1);
		vb->nr_errors++;
		return 1;
	}
	uint8_t status = VIRTIO_BLK_S_OK;
	uint32_t written = 1;
	int ret;
	switch (type) {
	case VIRTIO_BLK_T_IN:
		if (out_data) {
			log_guest_error("%s: read request with device-readable data", vb->name);
			return -EINVAL;
		}
		if (!in_range(vb, sector, in_data)) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		ret = for_each_piece(e, true, 0, in_data, piece_read, vb->blk,
				     sector << SECTOR_SHIFT);
		if (ret) {
			log_warn("%s: read at sector %llu failed: %s", vb->name,
				 (unsigned long long)sector, io_error(ret));
			status = VIRTIO_BLK_S_IOERR;
		} else {
			written += (uint32_t)in_data;
		}
		break;
	case VIRTIO_BLK_T_OUT:
		if (in_data) {
			log_guest_error("%s: write request with device-writable data", vb->name);
			return -EINVAL;
		}
		if (vb->readonly || !in_range(vb, sector, out_data)) {
			status = VIRTIO_BLK_S_IOERR;
			break;
		}
		ret = for_each_piece(e, false, HDR_LEN, out_data, piece_write, vb->blk,
				     sector << SECTOR_SHIFT);
		if (ret) {
			log_warn("%s: write at sector %llu failed: %s", vb->name,
				 (unsigned long long)sector, io_error(ret));
			status = VIRTIO_BLK_S_IOERR;
		}
		break;
	case VIRTIO_BLK_T_FLUSH:
		ret = vb->readonly ? 0 : blk_flush(vb->blk);
		if (ret) {
			log_warn("%s: flush failed: %s", vb->name, io_error(ret));
			status = VIRTIO_BLK_S_IOERR;
		}
		break;
	case VIRTIO_BLK_T_GET_ID: {
		size_t n = in_data < VIRTIO_BLK_ID_BYTES ? in_data : VIRTIO_BLK_ID_BYTES;
		uint8_t id[VIRTIO_BLK_ID_BYTES] = {0};
		memcpy(id, vb->id, strnlen(vb->id, VIRTIO_BLK_ID_BYTES));
		written += (uint32_t)vq_elem_write(e, 0, id, n);
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		status = do_discard_wz(vb, e, type);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	if (status != VIRTIO_BLK_S_OK)
		vb->nr_errors++;
	vq_elem_write(e, e->in_len - 1, &status, 1);
	return (int)written;
}

/* Lock held. */
static void drain(struct virtio_blk *vb)
{
	struct virtio_dev *vd = &vb->vp.vdev;
	for (unsigned q = 0; q < vd->num_queues && virtio_dev_running(vd); q++) {
		struct virtqueue *vq = &vd->vqs[q];
		unsigned done = 0;
		int r;
		while ((r = vq_pop(vq, &vb->elem)) > 0) {
			int w = do_request(vb, &vb->elem);
			if (w < 0) {
				r = w;
				break;
			}
			vq_push(vq, vb->elem.head, (uint32_t)w);
			vb->nr_requests++;
			/* Let the guest see completions while a long batch goes on. */
			if (++done % 32 == 0)
				virtio_notify_queue(vd, q);
		}
		if (r < 0) {
			virtio_set_needs_reset(vd);
			break;
		}
		if (done)
			virtio_notify_queue(vd, q);
	}
}

void virtio_blk_process(struct virtio_blk *vb)
{
	pthread_mutex_lock(&vb->vp.vdev.lock);
	drain(vb);
	pthread_mutex_unlock(&vb->vp.vdev.lock);
}

static void *iothread(void *arg)
{
	struct virtio_blk *vb = arg;
	while (!atomic_load(&vb->stop)) {
		struct pollfd p = {.fd = vb->kick_fd, .events = POLLIN};
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
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

static void blk_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_blk *vb = vd->opaque;
	uint64_t one = 1;
	if (write(vb->kick_fd, &one, sizeof(one)) < 0)
		log_warn("%s: cannot kick the iothread: %s", vb->name, strerror(errno));
}

static const struct virtio_dev_ops blk_ops = {.notify = blk_notify};

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
	struct blk_open_opts bo = {.format = o->format, .readonly = o->readonly, .cache = o->cache};
	int ret = blk_open(&vb->blk, o->path, &bo);
	if (ret)
		return error_set(err, ret, "--disk %s: %s", o->path, blk_last_error());
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

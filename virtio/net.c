/* virtio-net device (virtio 1.2 section 5.1: 5.1.3 feature bits, 5.1.4 config layout, 5.1.6
 * device operation: 5.1.6.2 transmit, 5.1.6.3/5.1.6.4 receive and mergeable buffers).
 * See include/virtio/net.h for the threading and what is offered.
 */
#define LOG_SUBSYS "virtio-net"
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "util/endian.h"
#include "util/log.h"
#include "virtio/net.h"

#define HDR_LEN	     sizeof(struct virtio_net_hdr)
#define ETH_HLEN     14
#define TX_BATCH     256 /* chains sent per kick before receive gets a turn */
#define TX_IRQ_EVERY 64	 /* a transmit interrupt this often within a long batch */

_Static_assert(sizeof(struct virtio_net_hdr) == NET_VNET_HDR_LEN, "virtio_net_hdr is 12 bytes");

/* --- transmit (5.1.6.2) -------------------------------------------------------------------- */

/* The chain's readable bytes from `skip` on, as an iovec into guest RAM; returns its count. */
static unsigned chain_iov(const struct vq_elem *e, size_t skip, struct iovec *iov)
{
	unsigned n = 0;
	for (unsigned s = 0; s < e->n_out; s++) {
		const struct vq_seg *g = &e->seg[s];
		if (skip >= g->len) {
			skip -= g->len;
			continue;
		}
		iov[n].iov_base = g->ptr + skip;
		iov[n].iov_len = g->len - skip;
		n++;
		skip = 0;
	}
	return n;
}

/* Backend thread, lock held: hand every waiting transmit chain to the backend. */
static void tx(struct virtio_net *vn)
{
	struct virtio_dev *vd = &vn->vp.vdev;
	struct virtqueue *vq = &vd->vqs[VIRTIO_NET_TX];
	struct net_backend *nb = vn->nb;
	const struct vq_elem *e = &vn->elem;
	unsigned done = 0;
	int r;
	while ((r = vq_pop(vq, &vn->elem)) > 0) {
		if (e->n_in) {
			log_guest_error("%s: transmit chain with device-writable buffers",
					vn->name);
			r = -EINVAL;
			break;
		}
		if (e->out_len < HDR_LEN) {
			log_guest_error("%s: transmit chain of %llu bytes, shorter than the header",
					vn->name, (unsigned long long)e->out_len);
			r = -EINVAL;
			break;
		}
		uint64_t frame = e->out_len - HDR_LEN;
		if (frame < ETH_HLEN || frame > NET_MAX_FRAME) {
			log_guest_error("%s: transmit frame of %llu bytes dropped", vn->name,
					(unsigned long long)frame);
			vn->tx_dropped++;
		} else {
			/* A backend with a vnet header gets the guest's header as it is. */
			size_t skip = nb->vnet_hdr_len ? 0 : HDR_LEN;
			unsigned n = chain_iov(e, skip, vn->tx_iov);
			net_backend_send(nb, vn->tx_iov, n, e->out_len - skip);
			vn->tx_frames++;
			vn->tx_bytes += frame;
		}
		vq_push(vq, e->head, 0);
		if (++done % TX_IRQ_EVERY == 0)
			virtio_notify_queue(vd, VIRTIO_NET_TX);
		if (done == TX_BATCH) {
			net_backend_kick(nb); /* come back for the rest after receive's turn */
			break;
		}
	}
	if (r < 0)
		virtio_set_needs_reset(vd);
	else if (done % TX_IRQ_EVERY)
		virtio_notify_queue(vd, VIRTIO_NET_TX);
}

/* --- receive (5.1.6.3, 5.1.6.4) ------------------------------------------------------------ */

/* Host address of writable byte `off` of a chain (NULL past its end). */
static uint8_t *in_byte(const struct vq_elem *e, size_t off)
{
	for (unsigned s = e->n_out; s < e->n_out + e->n_in; s++) {
		if (off < e->seg[s].len)
			return e->seg[s].ptr + off;
		off -= e->seg[s].len;
	}
	return NULL;
}

/* Lock held. Put one frame into receive buffers: 1 done (or dropped), 0 not enough buffers
 * now (nothing consumed). */
static int rx_locked(struct virtio_net *vn, struct virtio_net_hdr *hdr, const uint8_t *payload,
		     size_t plen)
{
	struct virtio_dev *vd = &vn->vp.vdev;
	struct virtqueue *vq = &vd->vqs[VIRTIO_NET_RX];
	const struct vq_elem *e = &vn->elem;
	if (vn->paused)
		return 0; /* kept by the backend until resume kicks it */
	if (!virtio_dev_running(vd) || !vq->enabled) {
		vn->rx_dropped++; /* no driver: the frame is lost, as on a link that is down */
		return 1;
	}
	bool mrg = virtio_has_feature(vd, VIRTIO_NET_F_MRG_RXBUF);
	/* Checksum flags mean nothing to a driver that did not ask for them (5.1.6.4.1). */
	if (!virtio_has_feature(vd, VIRTIO_NET_F_GUEST_CSUM))
		hdr->flags = 0;
	hdr->num_buffers = 0;
	uint8_t *num_buffers[2] = {NULL, NULL};
	size_t poff = 0;
	unsigned nbufs = 0;
	do {
		if (nbufs == vq->size) {
			/* Every buffer of the ring together cannot hold it: never will. */
			log_guest_error("%s: %u receive buffers hold less than a %zu-byte frame",
					vn->name, nbufs, plen);
			vq_unpop(vq, nbufs);
			vn->rx_dropped++;
			return 1;
		}
		int r = vq_pop(vq, &vn->elem);
		if (r == 0) {
			vq_unpop(vq, nbufs);
			return 0;
		}
		if (r > 0 && e->n_out) {
			log_guest_error("%s: receive chain with device-readable buffers", vn->name);
			r = -EINVAL;
		} else if (r > 0 && nbufs == 0 && e->in_len < HDR_LEN) {
			log_guest_error("%s: receive chain of %llu bytes cannot hold the header",
					vn->name, (unsigned long long)e->in_len);
			r = -EINVAL;
		}
		if (r < 0) {
			virtio_set_needs_reset(vd);
			vn->rx_dropped++;
			return 1;
		}
		size_t start = 0;
		if (nbufs == 0) {
			vq_elem_write(e, 0, hdr, HDR_LEN);
			num_buffers[0] = in_byte(e, offsetof(struct virtio_net_hdr, num_buffers));
			num_buffers[1] =
			    in_byte(e, offsetof(struct virtio_net_hdr, num_buffers) + 1);
			start = HDR_LEN;
		}
		size_t n = vq_elem_write(e, start, payload + poff, plen - poff);
		poff += n;
		vn->rx_used[nbufs].head = e->head;
		vn->rx_used[nbufs].len = (uint32_t)(start + n);
		nbufs++;
		if (!mrg && poff < plen) {
			log_guest_error(
			    "%s: a %zu-byte frame does not fit a %llu-byte receive buffer",
			    vn->name, plen, (unsigned long long)e->in_len);
			vq_unpop(vq, 1);
			vn->rx_dropped++;
			return 1;
		}
	} while (poff < plen);
	/* Without MRG_RXBUF num_buffers is 1 too (5.1.6.4.1). */
	*num_buffers[0] = (uint8_t)nbufs;
	*num_buffers[1] = (uint8_t)(nbufs >> 8);
	for (unsigned i = 0; i < nbufs; i++)
		vq_fill(vq, i, vn->rx_used[i].head, vn->rx_used[i].len);
	vq_flush(vq, nbufs);
	vn->rx_frames++;
	vn->rx_bytes += plen;
	virtio_notify_queue(vd, VIRTIO_NET_RX);
	return 1;
}

/* net_peer.receive: backend thread. */
static int net_receive(void *opaque, const uint8_t *frame, size_t len)
{
	struct virtio_net *vn = opaque;
	struct virtio_dev *vd = &vn->vp.vdev;
	struct virtio_net_hdr hdr = {.gso_type = VIRTIO_NET_HDR_GSO_NONE};
	size_t hl = vn->nb->vnet_hdr_len;
	if (len < hl + ETH_HLEN) {
		vn->rx_dropped++;
		return 1;
	}
	if (hl)
		memcpy(&hdr, frame, HDR_LEN);
	pthread_mutex_lock(&vd->lock);
	int ret = rx_locked(vn, &hdr, frame + hl, len - hl);
	pthread_mutex_unlock(&vd->lock);
	return ret;
}

/* net_peer.kick: backend thread. Transmit; the backend then offers kept frames again. */
static void net_kick(void *opaque)
{
	struct virtio_net *vn = opaque;
	struct virtio_dev *vd = &vn->vp.vdev;
	pthread_mutex_lock(&vd->lock);
	if (virtio_dev_running(vd) && !vn->paused)
		tx(vn);
	pthread_mutex_unlock(&vd->lock);
}

void virtio_net_pause(struct virtio_net *vn)
{
	pthread_mutex_lock(&vn->vp.vdev.lock);
	vn->paused = true;
	pthread_mutex_unlock(&vn->vp.vdev.lock);
}

void virtio_net_resume(struct virtio_net *vn)
{
	pthread_mutex_lock(&vn->vp.vdev.lock);
	vn->paused = false;
	pthread_mutex_unlock(&vn->vp.vdev.lock);
	net_backend_kick(vn->nb); /* transmit what waits; kept frames go first */
}

/* --- virtio_dev_ops ------------------------------------------------------------------------ */

/* A doorbell that did not go through the ioeventfd (emulated mode, odd widths). */
static void net_notify(struct virtio_dev *vd, unsigned q)
{
	struct virtio_net *vn = vd->opaque;
	net_backend_kick(vn->nb);
}

static void set_offloads(struct virtio_net *vn, unsigned offloads)
{
	struct net_backend *nb = vn->nb;
	if (nb->offloads && nb->ops->set_offload)
		nb->ops->set_offload(nb, offloads);
}

static void net_driver_ok(struct virtio_dev *vd)
{
	struct virtio_net *vn = vd->opaque;
	unsigned o = 0;
	if (virtio_has_feature(vd, VIRTIO_NET_F_GUEST_CSUM))
		o |= NET_OFFLOAD_CSUM;
	if (virtio_has_feature(vd, VIRTIO_NET_F_GUEST_TSO4))
		o |= NET_OFFLOAD_TSO4;
	if (virtio_has_feature(vd, VIRTIO_NET_F_GUEST_TSO6))
		o |= NET_OFFLOAD_TSO6;
	if (virtio_has_feature(vd, VIRTIO_NET_F_GUEST_ECN))
		o |= NET_OFFLOAD_TSO_ECN;
	set_offloads(vn, o);
	net_backend_kick(vn->nb); /* frames kept from before may go now */
}

static void net_reset(struct virtio_dev *vd)
{
	set_offloads(vd->opaque, 0);
}

static const struct virtio_dev_ops net_ops = {
    .notify = net_notify,
    .reset = net_reset,
    .driver_ok = net_driver_ok,
};

int virtio_net_init(struct virtio_net *vn, struct net_backend *nb, const uint8_t *mac,
		    unsigned index, const struct guest_mem *gm, struct error *err)
{
	memset(vn, 0, sizeof(*vn));
	vn->nb = nb;
	snprintf(vn->name, sizeof(vn->name), "virtio-net%u", index);
	uint8_t m[6] = {0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + index)};
	if (mac)
		memcpy(m, mac, sizeof(m));
	memcpy(vn->config, m, sizeof(m));
	le16_store(vn->config + 6, VIRTIO_NET_S_LINK_UP);
	le16_store(vn->config + 8, 1); /* max_virtqueue_pairs */
	uint64_t f =
	    1ULL << VIRTIO_NET_F_MAC | 1ULL << VIRTIO_NET_F_STATUS | 1ULL << VIRTIO_NET_F_MRG_RXBUF;
	if (nb->offloads && nb->vnet_hdr_len == NET_VNET_HDR_LEN)
		f |= 1ULL << VIRTIO_NET_F_CSUM | 1ULL << VIRTIO_NET_F_GUEST_CSUM |
		     1ULL << VIRTIO_NET_F_GUEST_TSO4 | 1ULL << VIRTIO_NET_F_GUEST_TSO6 |
		     1ULL << VIRTIO_NET_F_GUEST_ECN | 1ULL << VIRTIO_NET_F_HOST_TSO4 |
		     1ULL << VIRTIO_NET_F_HOST_TSO6 | 1ULL << VIRTIO_NET_F_HOST_ECN;
	virtio_dev_init(&vn->vp.vdev, vn->name, VIRTIO_ID_NET, f, 2, VIRTIO_NET_QUEUE_SIZE, gm,
			vn->config, sizeof(vn->config), &net_ops, vn);
	vn->vp.vdev.notify_fd = nb->kick_fd; /* both doorbells wake the backend's thread */
	struct net_peer peer = {.receive = net_receive, .kick = net_kick, .opaque = vn};
	net_backend_set_peer(nb, &peer);
	int ret = virtio_pci_init(&vn->vp, 0x020000); /* network controller, Ethernet */
	if (ret) {
		net_backend_destroy(nb);
		vn->nb = NULL;
		return error_set(err, ret, "%s: cannot build the PCI function", vn->name);
	}
	log_info("%s: %s backend, MAC %02x:%02x:%02x:%02x:%02x:%02x", vn->name, nb->ops->kind, m[0],
		 m[1], m[2], m[3], m[4], m[5]);
	return 0;
}

void virtio_net_destroy(struct virtio_net *vn)
{
	if (vn->nb) {
		log_info("%s: rx %llu frames %llu bytes (%llu dropped), tx %llu frames %llu bytes "
			 "(%llu dropped)",
			 vn->name, (unsigned long long)vn->rx_frames,
			 (unsigned long long)vn->rx_bytes, (unsigned long long)vn->rx_dropped,
			 (unsigned long long)vn->tx_frames, (unsigned long long)vn->tx_bytes,
			 (unsigned long long)vn->tx_dropped);
		net_backend_destroy(vn->nb); /* its thread first: it uses the device */
		vn->nb = NULL;
	}
	virtio_pci_destroy(&vn->vp);
}

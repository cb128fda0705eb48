/* virtio-net (virtio 1.2 section 5.1): one receiveq/transmitq pair in front of a network
 * backend (include/net/net.h).
 *
 * Both queues are served on the backend's thread ("net0"): the doorbells of both queues
 * signal the backend's kick eventfd (a KVM ioeventfd where there is one), and the kick
 * handler sends every pending transmit chain to the backend; the backend hands received
 * frames to the device, which fills receive buffers under the device lock. With
 * VIRTIO_NET_F_MRG_RXBUF a frame may span several receive chains (num_buffers in its
 * header); they are published to the driver together. When the guest has posted no (or not
 * enough) buffers, the frame waits in the backend until the next receive-queue doorbell.
 *
 * Offered features: MAC, STATUS (always LINK_UP), MRG_RXBUF; checksum and TSO offloads only
 * over a backend whose frames carry a virtio_net_hdr (tap), never over slirp, so the device
 * never has to complete a checksum itself.
 */
#ifndef KESTREL_VIRTIO_NET_H
#define KESTREL_VIRTIO_NET_H

#include <stdint.h>

#include "net/net.h"
#include "util/error.h"
#include "virtio/virtio.h"

#define VIRTIO_ID_NET 1

#define VIRTIO_NET_F_CSUM	0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC	5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN	9
#define VIRTIO_NET_F_HOST_TSO4	11
#define VIRTIO_NET_F_HOST_TSO6	12
#define VIRTIO_NET_F_HOST_ECN	13
#define VIRTIO_NET_F_MRG_RXBUF	15
#define VIRTIO_NET_F_STATUS	16

#define VIRTIO_NET_S_LINK_UP 1

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE	    0

#define VIRTIO_NET_RX	       0
#define VIRTIO_NET_TX	       1
#define VIRTIO_NET_QUEUE_SIZE  256
#define VIRTIO_NET_CONFIG_SIZE 10 /* mac[6], status, max_virtqueue_pairs */
#define VIRTIO_NET_MAX_NICS    4

/* The virtio_net_hdr every frame starts with (5.1.6), 12 bytes with VERSION_1. */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

struct virtio_net {
	struct virtio_pci vp;
	struct net_backend *nb; /* owned */
	uint8_t config[VIRTIO_NET_CONFIG_SIZE];
	char name[16]; /* "virtio-net0" */

	/* Backend thread, device lock held */
	struct vq_elem elem;
	struct iovec tx_iov[VQ_MAX_SEGS];
	struct {
		uint16_t head;
		uint32_t len;
	} rx_used[VQ_MAX_SIZE]; /* chains one received frame filled, published together */
	uint64_t tx_frames, tx_bytes, rx_frames, rx_bytes, rx_dropped, tx_dropped;
	bool paused; /* the VM is stopped: no transmit, received frames wait in the backend */
};

/* Build the PCI function around the backend `nb` (taken over: destroyed with the device, or
 * here on failure). mac: NULL for 52:54:00:12:34:56 + index. The backend's thread is not
 * started: call net_backend_start(vn->nb) once the device is plugged. */
int virtio_net_init(struct virtio_net *vn, struct net_backend *nb, const uint8_t *mac,
		    unsigned index, const struct guest_mem *gm, struct error *err)
    __attribute__((warn_unused_result));
/* The VM stops / goes on (main thread): while paused the device sends nothing and fills no
 * receive buffer (frames stay in the backend, which stops reading its host side once one
 * waits); resume sends what the guest queued and delivers what waited. */
void virtio_net_pause(struct virtio_net *vn);
void virtio_net_resume(struct virtio_net *vn);
/* Stops the backend's thread first, then takes the function down. */
void virtio_net_destroy(struct virtio_net *vn);

#endif

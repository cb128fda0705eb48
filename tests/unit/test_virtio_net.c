/* Device tests for virtio-net (virtio/net.c) and the network backends (net/net.c, slirp.c,
 * tap.c) with no CPU: the small driver in virtio_driver.h walks the PCI capabilities,
 * negotiates features, puts rings and buffers in a guest_mem and rings doorbells through the
 * MMIO bus, as the Linux driver does. The backend's loop is stepped by hand (net_backend_run_once) unless a test
 * starts its thread, so every step is deterministic.
 *
 * A fake backend records what the device transmits; the test hands it received frames with
 * net_backend_deliver(). libslirp is exercised for real (ARP, DHCP, a hostfwd connection
 * reaching the guest side as a SYN), and a real tap device inside a private network namespace
 * when the test may create one (root), else that test is a SKIP with the reason. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "hw/pci.h"
#include "net/net.h"
#include "virtio/net.h"

#define SLOT	   3
#define QSIZE	   64
#define HDR	   12
#define BASE	   (FEAT(VIRTIO_F_VERSION_1) | FEAT(VIRTIO_F_EVENT_IDX))
#define MRG	   FEAT(VIRTIO_NET_F_MRG_RXBUF)
#define ETH_P_TEST 0x88b5 /* IEEE local experimental ethertype */

struct fake {
	uint8_t sent[16][2048];
	size_t sent_len[16];
	unsigned nsent;
	unsigned fills;
	bool last_rx;
	unsigned offloads, offload_calls;
};

#define DRV_DEVICE_FIELDS      \
	struct virtio_net net; \
	struct fake fake;
#include "virtio_driver.h"

/* --- the fake backend ----------------------------------------------------------------------- */

static void fake_send(struct net_backend *nb, const struct iovec *iov, unsigned iovcnt, size_t len)
{
	struct fake *f = nb->priv;
	if (f->nsent >= 16)
		return;
	size_t off = 0;
	for (unsigned i = 0; i < iovcnt && off < sizeof(f->sent[0]); i++) {
		size_t n = iov[i].iov_len;
		if (n > sizeof(f->sent[0]) - off)
			n = sizeof(f->sent[0]) - off;
		memcpy(f->sent[f->nsent] + off, iov[i].iov_base, n);
		off += n;
	}
	assert_int_equal(off, len);
	f->sent_len[f->nsent++] = len;
}

static void fake_poll_fill(struct net_backend *nb, int *timeout_ms, bool rx)
{
	struct fake *f = nb->priv;
	f->fills++;
	f->last_rx = rx;
}

static void fake_poll_done(struct net_backend *nb, bool err)
{
}

static int fake_set_offload(struct net_backend *nb, unsigned offloads)
{
	struct fake *f = nb->priv;
	f->offloads = offloads;
	f->offload_calls++;
	return 0;
}

static void fake_destroy(struct net_backend *nb)
{
}

static const struct net_backend_ops fake_ops = {
    .kind = "fake",
    .send = fake_send,
    .poll_fill = fake_poll_fill,
    .poll_done = fake_poll_done,
    .set_offload = fake_set_offload,
    .destroy = fake_destroy,
};

/* --- the driver ------------------------------------------------------------------------------ */

/* Guest RAM, the PCI host and the device around backend nb; finds the capabilities. */
static struct drv *drv_new(struct net_backend *nb, const uint8_t *mac)
{
	struct drv *d = calloc(1, sizeof(*d));
	assert_non_null(d);
	drv_init(d);
	struct error err = {0};
	assert_int_equal(virtio_net_init(&d->net, nb, mac, 0, &d->gm, &err), 0);
	drv_probe(d, &d->net.vp.pci, SLOT);
	d->next_buf = BUF;
	return d;
}

static struct drv *drv_new_fake(bool vnet_hdr, const uint8_t *mac)
{
	struct fake tmp = {0};
	struct net_backend *nb = net_backend_new(&fake_ops, NULL, 0, NULL);
	assert_non_null(nb);
	if (vnet_hdr) {
		nb->vnet_hdr_len = NET_VNET_HDR_LEN;
		nb->offloads = true;
	}
	struct drv *d = drv_new(nb, mac);
	d->fake = tmp;
	nb->priv = &d->fake;
	return d;
}

static void drv_free(struct drv *d)
{
	virtio_net_destroy(&d->net);
	drv_fini(d);
	free(d);
}

/* Queue q at its full size from the device, with QSIZE entries and zeroed rings. */
static void net_setup_queue(struct drv *d, unsigned q, uint16_t vec)
{
	wr(d, d->common + VIRTIO_PCI_Q_SELECT, 2, q);
	assert_int_equal(rd(d, d->common + VIRTIO_PCI_Q_SIZE, 2), VIRTIO_NET_QUEUE_SIZE);
	setup_queue(d, q, QSIZE, vec);
	d->avail_idx[q] = d->used_seen[q] = d->next_desc[q] = 0;
	uint8_t zero[0x3000] = {0};
	assert_int_equal(gm_write(&d->gm, RING(q), zero, sizeof(zero)), 0);
}

/* Reset, negotiate `want`, MSI-X (config 0, RX 1, TX 2), both queues, DRIVER_OK. */
static void start(struct drv *d, uint64_t want)
{
	assert_true(negotiate(d, want) & VIRTIO_STATUS_FEATURES_OK);
	msix_on(d, 3, 0x40);
	wr(d, d->common + VIRTIO_PCI_MSIX_CONFIG, 2, 0);
	net_setup_queue(d, VIRTIO_NET_RX, 1);
	net_setup_queue(d, VIRTIO_NET_TX, 2);
	driver_ok(d);
	assert_int_equal(status(d), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
					VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	d->next_buf = BUF;
}

/* One step of the backend's loop, as its thread would take it. */
static void pump(struct drv *d)
{
	net_backend_run_once(d->net.nb, 0);
}

/* Post n receive chains of one `len`-byte buffer each; returns the first buffer's address
 * (they follow each other in RAM). */
static uint64_t post_rx(struct drv *d, unsigned n, uint32_t len)
{
	uint64_t first = 0;
	for (unsigned i = 0; i < n; i++) {
		struct buf b = {galloc(d, len), len, true};
		if (!i)
			first = b.addr;
		post(d, VIRTIO_NET_RX, &b, 1);
	}
	return first;
}

static void make_frame(uint8_t *f, size_t len, uint8_t seed)
{
	static const uint8_t hdr[14] = {0xff,
					0xff,
					0xff,
					0xff,
					0xff,
					0xff,
					0x52,
					0x54,
					0x00,
					0x12,
					0x34,
					0x56,
					ETH_P_TEST >> 8,
					ETH_P_TEST & 0xff};
	memcpy(f, hdr, 14);
	for (size_t i = 14; i < len; i++)
		f[i] = (uint8_t)(seed + i * 13);
}

/* --- tests ----------------------------------------------------------------------------------- */

static void net_config_and_features(void **state)
{
	struct drv *d = drv_new_fake(false, NULL);
	assert_int_equal(cfg_rd(d, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_rd(d, PCI_DEVICE_ID, 2), 0x1041);
	assert_int_equal(cfg_rd(d, 0x08, 4) >> 8, 0x020000); /* class: Ethernet controller */
	uint8_t mac[6];
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)rd(d, d->device + i, 1);
	static const uint8_t want_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
	assert_memory_equal(mac, want_mac, 6);
	assert_int_equal(rd(d, d->device + 6, 2), VIRTIO_NET_S_LINK_UP);
	assert_int_equal(rd(d, d->device + 8, 2), 1); /* max_virtqueue_pairs */
	assert_int_equal(rd(d, d->common + VIRTIO_PCI_NUM_QUEUES, 2), 2);
	uint64_t f = features(d);
	assert_true(f & FEAT(VIRTIO_NET_F_MAC));
	assert_true(f & FEAT(VIRTIO_NET_F_STATUS));
	assert_true(f & MRG);
	assert_true(f & FEAT(VIRTIO_F_VERSION_1));
	/* No offloads over a backend without a vnet header (slirp): the device would have to
	 * complete checksums itself. */
	assert_false(f & FEAT(VIRTIO_NET_F_CSUM));
	assert_false(f & FEAT(VIRTIO_NET_F_GUEST_CSUM));
	assert_false(f & FEAT(VIRTIO_NET_F_HOST_TSO4));
	assert_false(f & FEAT(VIRTIO_NET_F_GUEST_TSO4));
	/* Device config is read-only. */
	wr(d, d->device, 1, 0xaa);
	assert_int_equal(rd(d, d->device, 1), 0x52);
	drv_free(d);
}

static void net_offload_features(void **state)
{
	static const uint8_t mac[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
	struct drv *d = drv_new_fake(true, mac);
	assert_int_equal(rd(d, d->device + 5, 1), 0x55);
	uint64_t f = features(d);
	uint64_t off = FEAT(VIRTIO_NET_F_CSUM) | FEAT(VIRTIO_NET_F_GUEST_CSUM) |
		       FEAT(VIRTIO_NET_F_GUEST_TSO4) | FEAT(VIRTIO_NET_F_GUEST_TSO6) |
		       FEAT(VIRTIO_NET_F_HOST_TSO4) | FEAT(VIRTIO_NET_F_HOST_TSO6);
	assert_int_equal(f & off, off);
	/* DRIVER_OK tells the backend what the guest takes; a reset takes it back. */
	start(d, BASE | MRG | FEAT(VIRTIO_NET_F_GUEST_CSUM) | FEAT(VIRTIO_NET_F_GUEST_TSO4));
	assert_int_equal(d->fake.offloads, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4);
	wr(d, d->common + VIRTIO_PCI_STATUS, 1, 0);
	assert_int_equal(d->fake.offloads, 0);

	/* Over a vnet-header backend the guest's header goes along with the frame, and the
	 * backend's header comes to the guest (num_buffers set by the device). */
	start(d, BASE | MRG | FEAT(VIRTIO_NET_F_CSUM) | FEAT(VIRTIO_NET_F_GUEST_CSUM));
	uint8_t pkt[HDR + 60];
	memset(pkt, 0, HDR);
	pkt[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	pkt[6] = 34; /* csum_start */
	pkt[8] = 6;  /* csum_offset */
	make_frame(pkt + HDR, 60, 1);
	struct buf b = {galloc(d, sizeof(pkt)), sizeof(pkt), false};
	assert_int_equal(gm_write(&d->gm, b.addr, pkt, sizeof(pkt)), 0);
	post(d, VIRTIO_NET_TX, &b, 1);
	kick(d, VIRTIO_NET_TX);
	pump(d);
	assert_int_equal(d->fake.nsent, 1);
	assert_int_equal(d->fake.sent_len[0], sizeof(pkt));
	assert_memory_equal(d->fake.sent[0], pkt, sizeof(pkt));

	uint64_t rx = post_rx(d, 1, 2048);
	pkt[0] = VIRTIO_NET_HDR_F_DATA_VALID;
	pkt[10] = 0x77; /* num_buffers from the backend: overwritten */
	net_backend_deliver(d->net.nb, pkt, sizeof(pkt));
	uint16_t head;
	uint32_t len;
	assert_true(next_used(d, VIRTIO_NET_RX, &head, &len));
	assert_int_equal(len, sizeof(pkt));
	uint8_t got[sizeof(pkt)];
	read_guest(d, rx, got, sizeof(got));
	assert_int_equal(got[0], VIRTIO_NET_HDR_F_DATA_VALID);
	assert_int_equal(got[10] | got[11] << 8, 1);
	assert_memory_equal(got + HDR, pkt + HDR, 60);
	drv_free(d);
}

static void net_tx(void **state)
{
	struct drv *d = drv_new_fake(false, NULL);
	start(d, BASE | MRG);
	uint8_t frame[60];
	make_frame(frame, sizeof(frame), 3);
	/* Header alone, then the frame in two pieces. */
	uint64_t h = galloc(d, HDR), p1 = galloc(d, 20), p2 = galloc(d, 40);
	uint8_t hdr[HDR] = {0};
	assert_int_equal(gm_write(&d->gm, h, hdr, HDR), 0);
	assert_int_equal(gm_write(&d->gm, p1, frame, 20), 0);
	assert_int_equal(gm_write(&d->gm, p2, frame + 20, 40), 0);
	struct buf c1[3] = {{h, HDR, false}, {p1, 20, false}, {p2, 40, false}};
	uint16_t head1 = post(d, VIRTIO_NET_TX, c1, 3);
	/* Header and frame in one buffer, as Linux sends them. */
	uint64_t one = galloc(d, HDR + 60);
	assert_int_equal(gm_write(&d->gm, one, hdr, HDR), 0);
	frame[20] ^= 0xff;
	assert_int_equal(gm_write(&d->gm, one + HDR, frame, 60), 0);
	struct buf c2 = {one, HDR + 60, false};
	uint16_t head2 = post(d, VIRTIO_NET_TX, &c2, 1);
	unsigned msi = d->rec.n;
	kick(d, VIRTIO_NET_TX);
	assert_int_equal(d->fake.nsent, 0); /* the doorbell only wakes the backend's loop */
	pump(d);
	assert_int_equal(d->fake.nsent, 2);
	assert_int_equal(d->fake.sent_len[0], 60);
	assert_int_equal(d->fake.sent_len[1], 60);
	assert_memory_equal(d->fake.sent[1], frame, 60);
	frame[20] ^= 0xff;
	assert_memory_equal(d->fake.sent[0], frame, 60);
	uint16_t head;
	uint32_t len;
	assert_true(next_used(d, VIRTIO_NET_TX, &head, &len));
	assert_int_equal(head, head1);
	assert_int_equal(len, 0);
	assert_true(next_used(d, VIRTIO_NET_TX, &head, &len));
	assert_int_equal(head, head2);
	assert_true(d->rec.n > msi);
	assert_int_equal(d->rec.data, 0x42); /* the TX queue's vector */
	assert_int_equal(d->net.tx_frames, 2);
	/* A runt (no Ethernet header) is dropped, its chain still returned. */
	struct buf runt = {galloc(d, HDR + 6), HDR + 6, false};
	post(d, VIRTIO_NET_TX, &runt, 1);
	kick(d, VIRTIO_NET_TX);
	pump(d);
	assert_int_equal(d->fake.nsent, 2);
	assert_true(next_used(d, VIRTIO_NET_TX, &head, &len));
	assert_int_equal(d->net.tx_dropped, 1);
	assert_false(status(d) & VIRTIO_STATUS_NEEDS_RESET);
	drv_free(d);
}

static void net_rx_single_buffers(void **state)
{
	struct drv *d = drv_new_fake(false, NULL);
	start(d, BASE); /* no MRG_RXBUF: one chain per frame */
	uint64_t b0 = post_rx(d, 2, 1526);
	uint8_t frame[100];
	make_frame(frame, sizeof(frame), 9);
	unsigned msi = d->rec.n;
	net_backend_deliver(d->net.nb, frame, sizeof(frame));
	uint16_t head;
	uint32_t len;
	assert_true(next_used(d, VIRTIO_NET_RX, &head, &len));
	assert_int_equal(head, 0);
	assert_int_equal(len, HDR + sizeof(frame));
	uint8_t got[HDR + sizeof(frame)];
	read_guest(d, b0, got, sizeof(got));
	static const uint8_t want_hdr[HDR] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
	assert_memory_equal(got, want_hdr, HDR); /* no flags, GSO_NONE, num_buffers 1 */
	assert_memory_equal(got + HDR, frame, sizeof(frame));
	assert_true(d->rec.n > msi);
	assert_int_equal(d->rec.data, 0x41); /* the RX queue's vector */
	/* Too big for a buffer without MRG_RXBUF: dropped, the buffer stays for the next. */
	uint8_t big[2000];
	make_frame(big, sizeof(big), 1);
	net_backend_deliver(d->net.nb, big, sizeof(big));
	assert_false(next_used(d, VIRTIO_NET_RX, &head, &len));
	assert_int_equal(d->net.rx_dropped, 1);
	net_backend_deliver(d->net.nb, frame, sizeof(frame));
	assert_true(next_used(d, VIRTIO_NET_RX, &head, &len));
	assert_int_equal(head, 1);
	assert_int_equal(len, HDR + sizeof(frame));
	assert_int_equal(d->net.rx_frames, 2);
	drv_free(d);
}

static void net_rx_mergeable(void **state)
{
	struct drv *d = drv_new_fake(false, NULL);
	start(d, BASE | MRG);
	/* Chains of 256 bytes; the second is two descriptors of 100 + 156. */
	uint64_t a[6];
	struct buf b = {galloc(d, 256), 256, true};
	a[0] = b.addr;
	uint16_t heads[6];
	heads[0] = post(d, VIRTIO_NET_RX, &b, 1);
	struct buf two[2] = {{galloc(d, 100), 100, true}, {galloc(d, 156), 156, true}};
	a[1] = two[0].addr;
	heads[1] = post(d, VIRTIO_NET_RX, two, 2);
	for (unsigned i = 2; i < 6; i++) {
		b.addr = a[i] = galloc(d, 256);
		heads[i] = post(d, VIRTIO_NET_RX, &b, 1);
	}
	uint8_t frame[1000];
	make_frame(frame, sizeof(frame), 5);
	net_backend_deliver(d->net.nb, frame, sizeof(frame));
	/* 12 + 1000 bytes = 256 + 256 + 256 + 244, made visible at once. */
	assert_int_equal(used_idx(d, VIRTIO_NET_RX), 4);
	static const uint32_t want_len[4] = {256, 256, 256, 244};
	uint8_t got[HDR + sizeof(frame)];
	size_t off = 0;
	for (unsigned i = 0; i < 4; i++) {
		uint16_t head;
		uint32_t len;
		assert_true(next_used(d, VIRTIO_NET_RX, &head, &len));
		assert_int_equal(head, heads[i]);
		assert_int_equal(len, want_len[i]);
		if (i == 1) {
			read_guest(d, two[0].addr, got + off, 100);
			read_guest(d, two[1].addr, got + off + 100, len - 100);
		} else {
			read_guest(d, a[i], got + off, len);
		}
		off += len;
	}
	assert_int_equal(off, sizeof(got));
	assert_int_equal(got[10] | got[11] << 8, 4); /* num_buffers */
	assert_memory_equal(got + HDR, frame, sizeof(frame));
	/* A small frame takes one of the two chains left. */
	net_backend_deliver(d->net.nb, frame, 60);
	uint16_t head;
	uint32_t len;
	assert_true(next_used(d, VIRTIO_NET_RX, &head, &len));
	assert_int_equal(head, heads[4]);
	assert_int_equal(len, HDR + 60);
	read_guest(d, a[4], got, HDR);
	assert_int_equal(got[10] | got[11] << 8, 1);
	drv_free(d);
}

static void net_rx_waits_for_buffers(void **state)
{
	struct drv *d = drv_new_fake(false, NULL);
	start(d, BASE | MRG);
	struct net_backend *nb = d->net.nb;
	uint8_t fa[300], fb[80];
	make_frame(fa, sizeof(fa), 1);
	make_frame(fb, sizeof(fb), 2);
	/* No buffers: both frames wait in the backend, in order, and its loop stops reading
	 * input (no spinning, no dropping) until the guest rings the receive doorbell. */
	net_backend_deliver(nb, fa, sizeof(fa));
	net_backend_deliver(nb, fb, sizeof(fb));
	assert_int_equal(nb->rxq_len, 2);
	assert_int_equal(used_idx(d, VIRTIO_NET_RX), 0);
	pump(d);
	assert_false(d->fake.last_rx);
	assert_int_equal(nb->rxq_len, 2);
	/* EVENT_IDX: the device asked to be kicked at the next buffer. */
	assert_int_equal(avail_event(d, VIRTIO_NET_RX), 0);

	/* One 256-byte buffer is not enough for 312 bytes: nothing is taken. */
	uint64_t b0 = post_rx(d, 1, 256);
	kick(d, VIRTIO_NET_RX);
	pump(d);
	assert_int_equal(used_idx(d, VIRTIO_NET_RX), 0);
	assert_int_equal(nb->rxq_len, 2);
	assert_int_equal(avail_event(d, VIRTIO_NET_RX), 1);
	assert_int_equal(d->net.rx_dropped, 0);

	/* Enough now: A takes two chains, B the third. */
	post_rx(d, 3, 256);
	kick(d, VIRTIO_NET_RX);
	pump(d);
	assert_int_equal(nb->rxq_len, 0);
	assert_int_equal(used_idx(d, VIRTIO_NET_RX), 3);
	uint8_t got[HDR + 300];
	read_guest(d, b0, got, 256);
	read_guest(d, b0 + 256, got + 256, sizeof(got) - 256);
	assert_int_equal(got[10], 2);
	assert_memory_equal(got + HDR, fa, sizeof(fa));
	read_guest(d, b0 + 512, got, HDR + sizeof(fb));
	assert_int_equal(got[10], 1);
	assert_memory_equal(got + HDR, fb, sizeof(fb));
	pump(d);
	assert_true(d->fake.last_rx); /* reading input again */
	assert_int_equal(d->net.rx_frames, 2);
	assert_int_equal(nb->rx_dropped, 0);
	drv_free(d);
}

static void net_rx_before_driver_ok(void **state)
{
	struct drv *d = drv_new_fake(false, NULL);
	uint8_t f[64];
	make_frame(f, sizeof(f), 0);
	net_backend_deliver(d->net.nb, f, sizeof(f));
	assert_int_equal(d->net.rx_dropped, 1); /* no driver: dropped, not kept forever */
	assert_int_equal(d->net.nb->rxq_len, 0);
	drv_free(d);
}

static void expect_needs_reset(struct drv *d, const char *what)
{
	if (!(status(d) & VIRTIO_STATUS_NEEDS_RESET))
		fail_msg("%s: NEEDS_RESET not set", what);
}

static void net_bad_chains(void **state)
{
	struct drv *d = drv_new_fake(false, NULL);
	uint8_t f[64];
	make_frame(f, sizeof(f), 0);

	/* TX: a device-writable buffer. */
	start(d, BASE | MRG);
	struct buf w[2] = {{galloc(d, 64), 64, false}, {galloc(d, 64), 64, true}};
	post(d, VIRTIO_NET_TX, w, 2);
	unsigned msi = d->rec.n;
	kick(d, VIRTIO_NET_TX);
	pump(d);
	expect_needs_reset(d, "TX chain with a writable buffer");
	assert_true(d->rec.n > msi);
	assert_int_equal(d->rec.data, 0x40); /* config-change vector */
	assert_int_equal(d->fake.nsent, 0);
	/* Stopped: a later good chain is not processed until the driver resets. */
	struct buf good = {galloc(d, HDR + 64), HDR + 64, false};
	post(d, VIRTIO_NET_TX, &good, 1);
	kick(d, VIRTIO_NET_TX);
	pump(d);
	assert_int_equal(d->fake.nsent, 0);

	/* TX: shorter than the header. */
	start(d, BASE | MRG);
	struct buf s = {galloc(d, 8), 8, false};
	post(d, VIRTIO_NET_TX, &s, 1);
	kick(d, VIRTIO_NET_TX);
	pump(d);
	expect_needs_reset(d, "TX chain shorter than the header");

	/* TX: a buffer outside guest RAM. */
	start(d, BASE | MRG);
	struct buf out = {RAM - 16, 64, false};
	post(d, VIRTIO_NET_TX, &out, 1);
	kick(d, VIRTIO_NET_TX);
	pump(d);
	expect_needs_reset(d, "TX buffer outside RAM");

	/* RX: a device-readable buffer. */
	start(d, BASE | MRG);
	struct buf r = {galloc(d, 256), 256, false};
	post(d, VIRTIO_NET_RX, &r, 1);
	net_backend_deliver(d->net.nb, f, sizeof(f));
	expect_needs_reset(d, "RX chain with a readable buffer");
	assert_int_equal(d->net.nb->rxq_len, 0);
	net_backend_deliver(d->net.nb, f, sizeof(f)); /* after NEEDS_RESET: dropped, no crash */
	assert_int_equal(d->net.nb->rxq_len, 0);

	/* RX: a first buffer too small for the header. */
	start(d, BASE | MRG);
	post_rx(d, 1, 8);
	net_backend_deliver(d->net.nb, f, sizeof(f));
	expect_needs_reset(d, "RX buffer smaller than the header");

	/* RX: a descriptor loop. */
	start(d, BASE | MRG);
	struct vring_desc loop = {.addr = galloc(d, 64),
				  .len = 64,
				  .flags = VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
				  .next = 0};
	assert_int_equal(gm_write(&d->gm, RING(VIRTIO_NET_RX), &loop, 16), 0);
	uint16_t zero = 0, one = 1;
	assert_int_equal(gm_write(&d->gm, RING(VIRTIO_NET_RX) + 0x1000 + 4, &zero, 2), 0);
	assert_int_equal(gm_write(&d->gm, RING(VIRTIO_NET_RX) + 0x1000 + 2, &one, 2), 0);
	net_backend_deliver(d->net.nb, f, sizeof(f));
	expect_needs_reset(d, "RX descriptor loop");

	/* After a reset the device works again. */
	start(d, BASE | MRG);
	assert_false(status(d) & VIRTIO_STATUS_NEEDS_RESET);
	uint8_t pkt[HDR + 64] = {0};
	make_frame(pkt + HDR, 64, 4);
	good.addr = galloc(d, sizeof(pkt));
	assert_int_equal(gm_write(&d->gm, good.addr, pkt, sizeof(pkt)), 0);
	post(d, VIRTIO_NET_TX, &good, 1);
	kick(d, VIRTIO_NET_TX);
	pump(d);
	assert_int_equal(d->fake.nsent, 1);
	assert_memory_equal(d->fake.sent[0], pkt + HDR, 64);
	drv_free(d);
}

static void net_opts(void **state)
{
	struct net_opts o;
	struct error err = {0};
	assert_int_equal(net_opts_parse("user", &o, &err), 0);
	assert_int_equal(o.kind, NET_USER);
	assert_int_equal(ntohl(o.net.s_addr), 0x0a000200);
	assert_int_equal(ntohl(o.mask.s_addr), 0xffffff00);
	assert_int_equal(net_opts_parse("user,hostfwd=tcp::2222-:22,hostfwd=udp:127.0.0.1:"
					"5353-10.0.2.20:53,net=10.0.0.0/16,mac=02:00:00:aa:"
					"bb:cc",
					&o, &err),
			 0);
	assert_int_equal(o.nr_hostfwd, 2);
	assert_true(o.has_mac);
	assert_memory_equal(o.mac, ((uint8_t[]){0x02, 0, 0, 0xaa, 0xbb, 0xcc}), 6);
	assert_false(o.hostfwd[0].udp);
	assert_int_equal(o.hostfwd[0].host_addr.s_addr, htonl(INADDR_ANY));
	assert_int_equal(o.hostfwd[0].host_port, 2222);
	assert_int_equal(o.hostfwd[0].guest_addr.s_addr, 0);
	assert_int_equal(o.hostfwd[0].guest_port, 22);
	assert_true(o.hostfwd[1].udp);
	assert_int_equal(ntohl(o.hostfwd[1].host_addr.s_addr), 0x7f000001);
	assert_int_equal(ntohl(o.hostfwd[1].guest_addr.s_addr), 0x0a000214);
	/* net= comes after the rule: the guest address is checked at the end. */
	assert_int_equal(
	    net_opts_parse("user,hostfwd=tcp::1-10.0.2.20:2,net=192.168.0.0/16", &o, &err),
	    -EINVAL);
	assert_non_null(strstr(err.msg, "outside the guest network"));
	assert_int_equal(ntohl(o.net.s_addr), 0xc0a80000);
	assert_int_equal(ntohl(o.mask.s_addr), 0xffff0000);
	assert_int_equal(net_opts_parse("tap,ifname=tap7", &o, &err), 0);
	assert_string_equal(o.ifname, "tap7");
	static const char *const bad[] = {
	    "",
	    "socket",
	    "user,hostfwd=tcp::0-:22",
	    "user,hostfwd=tcp::22",
	    "user,hostfwd=sctp::1-:2",
	    "user,hostfwd=tcp:300.1.1.1:1-:2",
	    "user,hostfwd=tcp::1-:2x",
	    "user,net=10.0.2.1/24",
	    "user,net=10.0.2.0/28",
	    "user,mac=52:54:00:12:34",
	    "user,mac=53:54:00:12:34:56",
	    "user,ifname=x",
	    "user,bogus",
	    "tap",
	    "tap,ifname=waytoolonginterfacename",
	    "tap,hostfwd=tcp::1-:2",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		if (net_opts_parse(bad[i], &o, &err) != -EINVAL || !err.msg[0])
			fail_msg("'%s' was accepted", bad[i]);
		assert_null(strchr(err.msg, '\n'));
	}
}

/* --- libslirp, for real --------------------------------------------------------------------- */

static uint16_t ip_csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

/* Send hdr+frame from the guest and step the loop until a frame of `ethertype` (and IP
 * protocol `proto` if not 0) comes back; copies it (without the header) to out. */
static size_t slirp_exchange(struct drv *d, const uint8_t *frame, size_t len, uint16_t ethertype,
			     uint8_t proto, uint8_t *out)
{
	if (frame) {
		uint64_t a = galloc(d, HDR + len);
		uint8_t hdr[HDR] = {0};
		assert_int_equal(gm_write(&d->gm, a, hdr, HDR), 0);
		assert_int_equal(gm_write(&d->gm, a + HDR, frame, len), 0);
		struct buf b = {a, (uint32_t)(HDR + len), false};
		post(d, VIRTIO_NET_TX, &b, 1);
		kick(d, VIRTIO_NET_TX);
	}
	for (int i = 0; i < 300; i++) {
		net_backend_run_once(d->net.nb, 10);
		uint16_t head;
		uint32_t ulen;
		while (next_used(d, VIRTIO_NET_RX, &head, &ulen)) {
			struct vring_desc desc;
			assert_int_equal(
			    gm_read(&d->gm, RING(VIRTIO_NET_RX) + 16 * head, &desc, 16), 0);
			assert_true(ulen <= desc.len && ulen >= HDR + 14);
			read_guest(d, desc.addr + HDR, out, ulen - HDR);
			post_rx(d, 1, 2048); /* replace the buffer */
			kick(d, VIRTIO_NET_RX);
			if ((out[12] << 8 | out[13]) == ethertype && (!proto || out[23] == proto))
				return ulen - HDR;
		}
	}
	fail_msg("no frame of type %#x came back from slirp", ethertype);
	return 0;
}

static void net_slirp(void **state)
{
	/* A free port for the hostfwd rule. */
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	socklen_t sl = sizeof(sa);
	assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
	unsigned port = ntohs(sa.sin_port);
	close(ls);
	char opt[128];
	snprintf(opt, sizeof(opt), "user,hostfwd=tcp:127.0.0.1:%u-:80", port);
	struct net_opts o;
	struct error err = {0};
	assert_int_equal(net_opts_parse(opt, &o, &err), 0);
	struct net_backend *nb;
	if (net_backend_create(&nb, &o, 0, &err))
		fail_msg("slirp backend: %s", err.msg);
	struct drv *d = drv_new(nb, NULL);
	start(d, BASE | MRG);
	post_rx(d, 16, 2048);
	uint8_t out[2048];

	/* ARP: who has 10.0.2.2? tell 10.0.2.15 */
	uint8_t arp[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34,
			   0x56, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6,	   4,	 0x00, 0x01};
	memcpy(arp + 22, guest_mac, 6);
	memcpy(arp + 28, (uint8_t[]){10, 0, 2, 15}, 4);
	memcpy(arp + 38, (uint8_t[]){10, 0, 2, 2}, 4);
	size_t n = slirp_exchange(d, arp, sizeof(arp), 0x0806, 0, out);
	assert_true(n >= 42);
	assert_int_equal(out[21], 2); /* reply */
	assert_memory_equal(out + 28, ((uint8_t[]){10, 0, 2, 2}), 4);
	assert_memory_equal(out, guest_mac, 6);

	/* DHCPDISCOVER: the offer is 10.0.2.15. */
	uint8_t dhcp[14 + 20 + 8 + 236 + 312] = {0}; /* a full-size BOOTP message */
	memset(dhcp, 0xff, 6);
	memcpy(dhcp + 6, guest_mac, 6);
	dhcp[12] = 0x08;
	uint8_t *ip = dhcp + 14, *udp = ip + 20, *bootp = udp + 8;
	size_t iplen = sizeof(dhcp) - 14;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(iplen >> 8);
	ip[3] = (uint8_t)iplen;
	ip[8] = 64;
	ip[9] = 17;
	memset(ip + 16, 0xff, 4);
	uint16_t c = ip_csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	udp[1] = 68;
	udp[3] = 67;
	udp[4] = (uint8_t)((iplen - 20) >> 8);
	udp[5] = (uint8_t)(iplen - 20);
	bootp[0] = 1; /* BOOTREQUEST */
	bootp[1] = 1;
	bootp[2] = 6;
	memcpy(bootp + 4, "\x12\x34\x56\x78", 4);
	memcpy(bootp + 28, guest_mac, 6);
	memcpy(bootp + 236, "\x63\x82\x53\x63\x35\x01\x01\xff", 8); /* cookie, DISCOVER, end */
	n = slirp_exchange(d, dhcp, sizeof(dhcp), 0x0800, 17, out);
	assert_true(n >= 14 + 20 + 8 + 240);
	assert_int_equal(out[14 + 20 + 1], 67); /* from the server port */
	assert_int_equal(out[14 + 20 + 3], 68); /* to the client port */
	assert_memory_equal(out + 14 + 20 + 8 + 16, ((uint8_t[]){10, 0, 2, 15}), 4); /* yiaddr */

	/* A connection to the hostfwd port reaches the guest as a SYN to port 80. */
	int cs = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	sa.sin_port = htons((uint16_t)port);
	int r = connect(cs, (struct sockaddr *)&sa, sizeof(sa));
	assert_true(r == 0 || errno == EINPROGRESS);
	n = slirp_exchange(d, NULL, 0, 0x0800, 6, out);
	assert_true(n >= 14 + 20 + 20);
	assert_memory_equal(out + 14 + 16, ((uint8_t[]){10, 0, 2, 15}), 4);
	assert_int_equal(out[14 + 20 + 2] << 8 | out[14 + 20 + 3], 80);
	assert_true(out[14 + 20 + 13] & 0x02); /* SYN */
	close(cs);
	assert_false(status(d) & VIRTIO_STATUS_NEEDS_RESET);
	drv_free(d);
}

/* The loop on its own thread: a TX frame (ARP) is answered into RX buffers without the test
 * stepping anything. */
static void net_slirp_thread(void **state)
{
	struct net_opts o;
	struct error err = {0};
	assert_int_equal(net_opts_parse("user", &o, &err), 0);
	struct net_backend *nb;
	assert_int_equal(net_backend_create(&nb, &o, 1, &err), 0);
	struct drv *d = drv_new(nb, NULL);
	assert_int_equal(net_backend_start(nb, &err), 0);
	start(d, BASE | MRG);
	uint64_t rx = post_rx(d, 1, 2048);
	kick(d, VIRTIO_NET_RX);
	uint8_t arp[60] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34,
			   0x56, 0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6,	   4,	 0x00, 0x01};
	memcpy(arp + 22, guest_mac, 6);
	memcpy(arp + 28, (uint8_t[]){10, 0, 2, 15}, 4);
	memcpy(arp + 38, (uint8_t[]){10, 0, 2, 3}, 4); /* the DNS server answers ARP too */
	uint64_t a = galloc(d, HDR + sizeof(arp));
	uint8_t hdr[HDR] = {0};
	assert_int_equal(gm_write(&d->gm, a, hdr, HDR), 0);
	assert_int_equal(gm_write(&d->gm, a + HDR, arp, sizeof(arp)), 0);
	struct buf b = {a, HDR + sizeof(arp), false};
	post(d, VIRTIO_NET_TX, &b, 1);
	kick(d, VIRTIO_NET_TX);
	int i;
	for (i = 0; i < 2000 && used_idx(d, VIRTIO_NET_RX) == 0; i++)
		usleep(1000);
	assert_int_equal(used_idx(d, VIRTIO_NET_RX), 1);
	uint8_t out[HDR + 42];
	read_guest(d, rx, out, sizeof(out));
	assert_int_equal(out[HDR + 12] << 8 | out[HDR + 13], 0x0806);
	assert_memory_equal(out + HDR + 28, ((uint8_t[]){10, 0, 2, 3}), 4);
	drv_free(d); /* stops the thread */
}

/* --- a real tap device ---------------------------------------------------------------------- */

static void net_tap(void **state)
{
	/* A private network namespace: the tap and its traffic stay inside this process. */
	if (unshare(CLONE_NEWNET) < 0) {
		print_message("SKIP reason: cannot make a network namespace for a tap (%s; needs "
			      "root)\n",
			      strerror(errno));
		skip();
	}
	if (access("/dev/net/tun", R_OK | W_OK) < 0) {
		print_message("SKIP reason: /dev/net/tun: %s\n", strerror(errno));
		skip();
	}
	struct net_opts o;
	struct error err = {0};
	assert_int_equal(net_opts_parse("tap,ifname=kt-tap0", &o, &err), 0);
	struct net_backend *nb;
	if (net_backend_create(&nb, &o, 0, &err)) {
		print_message("SKIP reason: %s\n", err.msg);
		skip();
	}
	assert_int_equal(nb->vnet_hdr_len, NET_VNET_HDR_LEN);
	/* Bring the interface up (IPv6 off: no router solicitations in the way). */
	FILE *f = fopen("/proc/sys/net/ipv6/conf/kt-tap0/disable_ipv6", "w");
	if (f) {
		fputs("1\n", f);
		fclose(f);
	}
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr = {0};
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "kt-tap0");
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
	int ps = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_TEST));
	assert_true(ps >= 0);
	struct sockaddr_ll ll = {.sll_family = AF_PACKET,
				 .sll_protocol = htons(ETH_P_TEST),
				 .sll_ifindex = (int)if_nametoindex("kt-tap0")};
	assert_int_equal(bind(ps, (struct sockaddr *)&ll, sizeof(ll)), 0);

	struct drv *d = drv_new(nb, NULL);
	uint64_t f_all = features(d);
	assert_true(f_all & FEAT(VIRTIO_NET_F_CSUM));
	assert_true(f_all & FEAT(VIRTIO_NET_F_HOST_TSO4));
	/* The host kernel accepts the offloads a guest may ask for. */
	assert_int_equal(nb->ops->set_offload(nb, NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 |
						      NET_OFFLOAD_TSO6 | NET_OFFLOAD_TSO_ECN),
			 0);
	start(d, BASE | MRG | FEAT(VIRTIO_NET_F_CSUM) | FEAT(VIRTIO_NET_F_GUEST_CSUM));

	/* Guest -> tap: the packet socket on the interface sees the frame, header consumed. */
	uint8_t pkt[HDR + 60] = {0};
	make_frame(pkt + HDR, 60, 7);
	uint64_t a = galloc(d, sizeof(pkt));
	assert_int_equal(gm_write(&d->gm, a, pkt, sizeof(pkt)), 0);
	struct buf b = {a, sizeof(pkt), false};
	post(d, VIRTIO_NET_TX, &b, 1);
	kick(d, VIRTIO_NET_TX);
	pump(d);
	struct pollfd pfd = {.fd = ps, .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	uint8_t got[2048];
	ssize_t n = recv(ps, got, sizeof(got), 0);
	assert_int_equal(n, 60);
	assert_memory_equal(got, pkt + HDR, 60);

	/* Host -> guest: a frame sent on the interface lands in a receive buffer. */
	uint64_t rx = post_rx(d, 4, 2048);
	kick(d, VIRTIO_NET_RX);
	uint8_t frame[100];
	make_frame(frame, sizeof(frame), 11);
	memcpy(frame, guest_mac, 6);
	assert_int_equal(sendto(ps, frame, sizeof(frame), 0, (struct sockaddr *)&ll, sizeof(ll)),
			 sizeof(frame));
	for (int i = 0; i < 100 && used_idx(d, VIRTIO_NET_RX) == 0; i++)
		net_backend_run_once(nb, 20);
	uint16_t head;
	uint32_t len;
	assert_true(next_used(d, VIRTIO_NET_RX, &head, &len));
	assert_int_equal(len, HDR + sizeof(frame));
	read_guest(d, rx, got, len);
	assert_int_equal(got[10] | got[11] << 8, 1);
	assert_memory_equal(got + HDR, frame, sizeof(frame));
	close(ps);
	drv_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(net_opts),
	    cmocka_unit_test(net_config_and_features),
	    cmocka_unit_test(net_offload_features),
	    cmocka_unit_test(net_tx),
	    cmocka_unit_test(net_rx_single_buffers),
	    cmocka_unit_test(net_rx_mergeable),
	    cmocka_unit_test(net_rx_waits_for_buffers),
	    cmocka_unit_test(net_rx_before_driver_ok),
	    cmocka_unit_test(net_bad_chains),
	    cmocka_unit_test(net_slirp),
	    cmocka_unit_test(net_slirp_thread),
	    cmocka_unit_test(net_tap), /* last: it moves the process into its own netns */
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

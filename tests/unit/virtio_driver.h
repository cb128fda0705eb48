/* A small virtio "guest driver" for the device tests with no CPU (tests/unit/test_virtio.c,
 * test_virtio_net.c): guest RAM, an I/O bus pair and a PCI host around one virtio PCI
 * function; it walks the capabilities, negotiates features, places split rings in guest
 * memory, posts descriptor chains, rings doorbells through the MMIO bus and reads the used
 * rings, as the Linux driver does. An interrupt router records what the device raises.
 *
 * A test file defines DRV_DEVICE_FIELDS, the members its devices add to struct drv, before it
 * includes this header:
 *	#define DRV_DEVICE_FIELDS struct virtio_net net;
 *	#include "virtio_driver.h"
 *
 * Guest memory layout: RAM bytes of RAM from 0; queue q's rings at RING(q) (descriptor table,
 * avail ring +0x1000, used ring +0x2000); buffers from BUF. */
#ifndef KESTREL_TEST_VIRTIO_DRIVER_H
#define KESTREL_TEST_VIRTIO_DRIVER_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <cmocka.h>

#include "hw/pci.h"
#include "virtio/virtio.h"

#define RAM	       (4u << 20)
#define RING(q)	       (0x10000u + 0x4000u * (q)) /* desc; avail +0x1000; used +0x2000 */
#define BUF	       0x100000u
#define FEAT(b)	       (1ULL << (b))
#define DRV_MAX_QUEUES 4

/* --- the interrupt recorder --------------------------------------------------------------- */

struct msi_rec {
	unsigned n; /* MSIs sent */
	uint64_t addr;
	uint32_t data; /* of the last one */
	bool line[32]; /* INTx line levels by GSI */
};

static inline void rec_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct msi_rec *m = opaque;
	__atomic_store_n(&m->addr, addr, __ATOMIC_SEQ_CST);
	__atomic_store_n(&m->data, data, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&m->n, 1, __ATOMIC_SEQ_CST);
}

static inline void rec_line(void *opaque, unsigned gsi, bool level)
{
	struct msi_rec *m = opaque;
	if (gsi < 32)
		__atomic_store_n(&m->line[gsi], level, __ATOMIC_SEQ_CST);
}

static const struct irq_router_ops rec_ops = {.set_line = rec_line, .send_msi = rec_msi};

/* --- the driver --------------------------------------------------------------------------- */

#ifndef DRV_DEVICE_FIELDS
#define DRV_DEVICE_FIELDS
#endif

struct drv {
	struct guest_mem gm;
	struct io_bus pio, mmio;
	struct irq_router irq;
	struct msi_rec rec;
	struct pci_host host;
	unsigned slot;	     /* the function's PCI slot */
	uint64_t bar4, msix; /* BAR 4 (virtio structures), BAR 1 (MSI-X table) */
	unsigned common, isr, device, notify, notify_mult, pcicfg;
	uint16_t qsize[DRV_MAX_QUEUES], avail_idx[DRV_MAX_QUEUES], used_seen[DRV_MAX_QUEUES];
	uint16_t next_desc[DRV_MAX_QUEUES]; /* where post() puts the next chain */
	uint64_t next_buf;		    /* where galloc() takes the next buffer */
	DRV_DEVICE_FIELDS
};

/* PCI config space of the function. */
static inline uint32_t cfg_rd(struct drv *d, unsigned reg, unsigned size)
{
	return pci_host_cfg_read(&d->host, 0, d->slot << 3, reg, size);
}

static inline void cfg_wr(struct drv *d, unsigned reg, unsigned size, uint32_t v)
{
	pci_host_cfg_write(&d->host, 0, d->slot << 3, reg, size, v);
}

/* BAR 4, at offset off. */
static inline uint64_t rd(struct drv *d, uint64_t off, unsigned size)
{
	uint64_t v = 0;
	assert_true(io_bus_read(&d->mmio, d->bar4 + off, size, &v));
	return v;
}

static inline void wr(struct drv *d, uint64_t off, unsigned size, uint64_t v)
{
	assert_true(io_bus_write(&d->mmio, d->bar4 + off, size, v));
}

/* Guest RAM, the buses and the PCI host; the device is added by drv_probe(). */
static inline void drv_init(struct drv *d)
{
	assert_int_equal(gm_add_ram(&d->gm, 0, RAM, "ram"), 0);
	io_bus_init(&d->pio, "io");
	io_bus_init(&d->mmio, "memory");
	d->irq.ops = &rec_ops;
	d->irq.opaque = &d->rec;
	assert_int_equal(pci_host_init(&d->host, &d->pio, &d->mmio, &d->irq, 0, 0), 0);
}

/* Undoes drv_init(), after the device is destroyed (it does not free d). */
static inline void drv_fini(struct drv *d)
{
	pci_host_destroy(&d->host); /* releases the function's irqfds: before it is freed */
	io_bus_destroy(&d->pio);
	io_bus_destroy(&d->mmio);
	gm_destroy(&d->gm);
}

/* Add the function at `slot` and find the virtio capabilities, as virtio_pci_modern_probe
 * does; turns on memory decoding and bus mastering. */
static inline void drv_probe(struct drv *d, struct pci_dev *pd, unsigned slot)
{
	uint64_t next = 0xc0000000;
	d->slot = slot;
	assert_int_equal(pci_host_add(&d->host, pd, slot, &next), 0);
	assert_int_equal(cfg_rd(d, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_rd(d, PCI_REVISION, 1), 1);
	unsigned seen = 0;
	for (unsigned p = cfg_rd(d, PCI_CAP_PTR, 1); p; p = cfg_rd(d, p + 1, 1)) {
		if (cfg_rd(d, p, 1) != PCI_CAP_ID_VENDOR)
			continue;
		unsigned type = cfg_rd(d, p + 3, 1), bar = cfg_rd(d, p + 4, 1);
		unsigned off = cfg_rd(d, p + 8, 4);
		seen |= 1u << type;
		if (type == VIRTIO_PCI_CAP_PCI_CFG) {
			d->pcicfg = p;
			continue;
		}
		assert_int_equal(bar, 4);
		if (type == VIRTIO_PCI_CAP_COMMON)
			d->common = off;
		else if (type == VIRTIO_PCI_CAP_ISR)
			d->isr = off;
		else if (type == VIRTIO_PCI_CAP_DEVICE)
			d->device = off;
		else if (type == VIRTIO_PCI_CAP_NOTIFY) {
			d->notify = off;
			d->notify_mult = cfg_rd(d, p + 16, 4);
			assert_int_equal(cfg_rd(d, p + 2, 1), 20);
		}
	}
	assert_int_equal(seen, 0x3e);
	d->bar4 = (cfg_rd(d, PCI_BAR0 + 16, 4) & ~0xfu) | (uint64_t)cfg_rd(d, PCI_BAR0 + 20, 4)
							      << 32;
	d->msix = cfg_rd(d, PCI_BAR0 + 4, 4) & ~0xfu;
	cfg_wr(d, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_MASTER);
}

/* Enable MSI-X with vectors 0..nvec-1 to the LAPIC, vector v sending data0 + v. */
static inline void msix_on(struct drv *d, unsigned nvec, uint32_t data0)
{
	unsigned p = cfg_rd(d, PCI_CAP_PTR, 1);
	assert_int_equal(cfg_rd(d, p, 1), PCI_CAP_ID_MSIX);
	cfg_wr(d, p + 2, 2, PCI_MSIX_CTRL_ENABLE);
	for (unsigned v = 0; v < nvec; v++) {
		io_bus_write(&d->mmio, d->msix + 16 * v, 4, 0xfee00000);
		io_bus_write(&d->mmio, d->msix + 16 * v + 8, 4, data0 + v);
		io_bus_write(&d->mmio, d->msix + 16 * v + 12, 4, 0);
	}
}

/* The 64 feature bits the device offers. */
static inline uint64_t features(struct drv *d)
{
	wr(d, d->common + VIRTIO_PCI_DFSELECT, 4, 0);
	uint64_t f = rd(d, d->common + VIRTIO_PCI_DF, 4);
	wr(d, d->common + VIRTIO_PCI_DFSELECT, 4, 1);
	return f | rd(d, d->common + VIRTIO_PCI_DF, 4) << 32;
}

static inline uint8_t status(struct drv *d)
{
	return (uint8_t)rd(d, d->common + VIRTIO_PCI_STATUS, 1);
}

/* Reset, then the status dance up to FEATURES_OK with `want` & offered; returns the status
 * read back. */
static inline uint8_t negotiate(struct drv *d, uint64_t want)
{
	uint64_t c = d->common;
	wr(d, c + VIRTIO_PCI_STATUS, 1, 0);
	wr(d, c + VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(d, c + VIRTIO_PCI_STATUS, 1, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	want &= features(d);
	wr(d, c + VIRTIO_PCI_GFSELECT, 4, 0);
	wr(d, c + VIRTIO_PCI_GF, 4, (uint32_t)want);
	wr(d, c + VIRTIO_PCI_GFSELECT, 4, 1);
	wr(d, c + VIRTIO_PCI_GF, 4, (uint32_t)(want >> 32));
	wr(d, c + VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	return status(d);
}

/* Queue q with `size` entries at RING(q), interrupts on MSI-X vector vec; enabled. */
static inline void setup_queue(struct drv *d, unsigned q, uint16_t size, uint16_t vec)
{
	uint64_t c = d->common;
	wr(d, c + VIRTIO_PCI_Q_SELECT, 2, q);
	assert_true(rd(d, c + VIRTIO_PCI_Q_SIZE, 2) >= size);
	wr(d, c + VIRTIO_PCI_Q_SIZE, 2, size);
	wr(d, c + VIRTIO_PCI_Q_MSIX, 2, vec);
	assert_int_equal(rd(d, c + VIRTIO_PCI_Q_MSIX, 2), vec);
	wr(d, c + VIRTIO_PCI_Q_DESCLO, 8, RING(q)); /* a 64-bit write, split by the device */
	wr(d, c + VIRTIO_PCI_Q_AVAILLO, 4, RING(q) + 0x1000);
	wr(d, c + VIRTIO_PCI_Q_AVAILHI, 4, 0);
	wr(d, c + VIRTIO_PCI_Q_USEDLO, 4, RING(q) + 0x2000);
	wr(d, c + VIRTIO_PCI_Q_USEDHI, 4, 0);
	wr(d, c + VIRTIO_PCI_Q_ENABLE, 2, 1);
	assert_int_equal(rd(d, c + VIRTIO_PCI_Q_ENABLE, 2), 1);
	d->qsize[q] = size;
}

static inline void driver_ok(struct drv *d)
{
	wr(d, d->common + VIRTIO_PCI_STATUS, 1,
	   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
	       VIRTIO_STATUS_DRIVER_OK);
}

/* --- guest memory ------------------------------------------------------------------------- */

/* len bytes of guest RAM from BUF upwards (16-byte aligned), never freed. */
static inline uint64_t galloc(struct drv *d, uint32_t len)
{
	uint64_t a = d->next_buf;
	d->next_buf += (len + 15) & ~15u;
	assert_true(d->next_buf < RAM);
	return a;
}

static inline void read_guest(struct drv *d, uint64_t a, void *buf, size_t len)
{
	assert_int_equal(gm_read(&d->gm, a, buf, len), 0);
}

static inline uint8_t peek8(struct drv *d, uint64_t a)
{
	uint8_t v;
	read_guest(d, a, &v, 1);
	return v;
}

/* --- rings -------------------------------------------------------------------------------- */

struct buf {
	uint64_t addr;
	uint32_t len;
	bool write; /* device-writable */
};

/* Offer a chain of n buffers at descriptors first..first+n-1 (round the table), without
 * ringing the doorbell. */
static inline void offer(struct drv *d, unsigned q, uint16_t first, const struct buf *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((first + i) % d->qsize[q]);
		struct vring_desc desc = {.addr = b[i].addr,
					  .len = b[i].len,
					  .flags =
					      (uint16_t)((b[i].write ? VRING_DESC_F_WRITE : 0) |
							 (i + 1 < n ? VRING_DESC_F_NEXT : 0)),
					  .next = (uint16_t)((idx + 1) % d->qsize[q])};
		assert_int_equal(gm_write(&d->gm, RING(q) + 16u * idx, &desc, 16), 0);
	}
	uint16_t slot = d->avail_idx[q] % d->qsize[q];
	assert_int_equal(gm_write(&d->gm, RING(q) + 0x1000 + 4 + 2 * slot, &first, 2), 0);
	d->avail_idx[q]++;
	assert_int_equal(gm_write(&d->gm, RING(q) + 0x1000 + 2, &d->avail_idx[q], 2), 0);
}

/* Offer a chain with the descriptors after the last chain's, without ringing; its head. */
static inline uint16_t post(struct drv *d, unsigned q, const struct buf *b, unsigned n)
{
	uint16_t head = d->next_desc[q];
	offer(d, q, head, b, n);
	d->next_desc[q] = (uint16_t)((head + n) % d->qsize[q]);
	return head;
}

/* Ring queue q's doorbell. */
static inline void kick(struct drv *d, unsigned q)
{
	wr(d, d->notify + q * d->notify_mult, 2, q);
}

/* Offer a chain at descriptors 0..n-1 and ring the doorbell. */
static inline void submit(struct drv *d, unsigned q, const struct buf *b, unsigned n)
{
	offer(d, q, 0, b, n);
	kick(d, q);
}

static inline uint16_t used_idx(struct drv *d, unsigned q)
{
	uint16_t idx;
	read_guest(d, RING(q) + 0x2000 + 2, &idx, 2);
	return idx;
}

/* The next used entry of q: returns false when there is none. */
static inline bool next_used(struct drv *d, unsigned q, uint16_t *head, uint32_t *len)
{
	if (used_idx(d, q) == d->used_seen[q])
		return false;
	unsigned slot = d->used_seen[q] % d->qsize[q];
	uint32_t id;
	read_guest(d, RING(q) + 0x2000 + 4 + 8 * slot, &id, 4);
	read_guest(d, RING(q) + 0x2000 + 8 + 8 * slot, len, 4);
	*head = (uint16_t)id;
	d->used_seen[q]++;
	return true;
}

/* The next used entry of queue q, waiting up to 5 s for it (an iothread works in the
 * background): its id, and its length as the result (-1: none came). */
static inline int wait_used_id(struct drv *d, unsigned q, uint16_t *id)
{
	for (int i = 0; i < 5000; i++) {
		uint32_t len;
		if (next_used(d, q, id, &len))
			return (int)len;
		usleep(1000);
	}
	return -1;
}

/* The same, for its length alone. */
static inline int wait_used(struct drv *d, unsigned q)
{
	uint16_t id;
	return wait_used_id(d, q, &id);
}

/* The used ring's avail_event field (VIRTIO_F_EVENT_IDX). */
static inline uint16_t avail_event(struct drv *d, unsigned q)
{
	uint16_t v;
	read_guest(d, RING(q) + 0x2000 + 4 + 8 * d->qsize[q], &v, 2);
	return v;
}

#endif

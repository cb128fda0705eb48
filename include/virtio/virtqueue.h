/* Split virtqueues (virtio 1.2 section 2.7): the device side.
 *
 * vq_pop() takes the next available chain and validates every descriptor before a device
 * sees it: each buffer lies inside guest RAM (gm_ptr with its length), no zero lengths, no
 * index outside the table, no loops (a walk is bounded by the table size), no readable
 * buffer after a writable one, indirect tables only when negotiated, not nested, not with
 * NEXT, a whole number of descriptors inside RAM and no longer than the queue. A bad chain
 * makes the queue "broken": the caller marks the device NEEDS_RESET and stops using it.
 *
 * One thread at a time per queue (the device's lock or its iothread). The host is x86,
 * little-endian like the rings, so ring fields are read in place.
 */
#ifndef KESTREL_VIRTIO_VIRTQUEUE_H
#define KESTREL_VIRTIO_VIRTQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/guest_mem.h"
#include "core/state.h"

#define VQ_MAX_SIZE 1024
#define VQ_MAX_SEGS 256 /* buffers per chain a device accepts */

#define VRING_DESC_F_NEXT	   1
#define VRING_DESC_F_WRITE	   2
#define VRING_DESC_F_INDIRECT	   4
#define VRING_AVAIL_F_NO_INTERRUPT 1

#define VIRTIO_MSI_NO_VECTOR 0xffff

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vq_seg {
	uint8_t *ptr; /* host address, checked to hold len bytes of guest RAM */
	uint32_t len;
};

/* One chain: out (device-readable) segments first, then in (device-writable) ones. */
struct vq_elem {
	uint16_t head;
	unsigned n_out, n_in;
	uint64_t out_len, in_len; /* bytes */
	struct vq_seg seg[VQ_MAX_SEGS];
};

struct virtqueue {
	const struct guest_mem *gm;
	unsigned index;
	uint16_t max_size; /* what the device offers */
	/* Programmed by the driver through the transport */
	uint16_t size;
	bool enabled;
	uint16_t msix_vector;
	uint64_t desc, avail, used;
	/* Negotiated */
	bool event_idx, indirect;
	/* Device state */
	uint16_t last_avail; /* next avail entry to take */
	uint16_t used_idx;   /* next used entry to fill */
	uint16_t signalled_used;
	bool signalled_valid;
	bool broken;
};

void vq_init(struct virtqueue *vq, const struct guest_mem *gm, unsigned index, uint16_t max_size);
/* Back to what a device reset leaves: disabled, size = max_size, no addresses. */
void vq_reset(struct virtqueue *vq);
/* Check the ring addresses and size when the driver enables the queue: 0 or -EINVAL. */
int vq_enable(struct virtqueue *vq) __attribute__((warn_unused_result));

/* 1: *e holds the next chain; 0: nothing available; -EINVAL: a malformed chain or ring
 * (logged as a guest error, the queue is broken from then on). */
int vq_pop(struct virtqueue *vq, struct vq_elem *e) __attribute__((warn_unused_result));
/* Return a chain with `len` bytes written into its device-writable buffers. */
int vq_push(struct virtqueue *vq, uint16_t head, uint32_t len);
/* The same in two steps, for a device that returns several chains at once (virtio-net's
 * mergeable receive buffers: the driver must see all buffers of a packet together):
 * vq_fill() writes used entry `i` after the last published one, vq_flush() publishes n. */
int vq_fill(struct virtqueue *vq, unsigned i, uint16_t head, uint32_t len);
void vq_flush(struct virtqueue *vq, unsigned n);
/* Hand the last n chains vq_pop() returned back to the available ring, unused (the device
 * found it cannot finish with them yet; the next vq_pop() returns them again). */
void vq_unpop(struct virtqueue *vq, unsigned n);
/* Whether the driver wants an interrupt for what was pushed since the last one. */
bool vq_should_notify(struct virtqueue *vq);
/* Whether entries are waiting (for a device that needs buffers, like a console's RX). */
bool vq_has_avail(struct virtqueue *vq);

/* Copy between a chain's buffers and a flat buffer: `off` counts from the first out
 * (resp. in) segment. Return the bytes copied (short at the end of the chain). */
size_t vq_elem_read(const struct vq_elem *e, size_t off, void *buf, size_t len);
size_t vq_elem_write(const struct vq_elem *e, size_t off, const void *buf, size_t len);

int vq_save(const struct virtqueue *vq, struct state_buf *s);
int vq_load(struct virtqueue *vq, struct state_buf *s);

#endif

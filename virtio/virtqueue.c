/* Split virtqueue, device side, with full chain validation (see include/virtio/virtqueue.h).
 *
 * Virtio 1.2: 2.7.5 (descriptor table), 2.7.5.3 (indirect descriptors), 2.7.6 (available
 * ring), 2.7.7 (used_event / avail_event suppression), 2.7.8 (used ring), 2.7.10 (the
 * VIRTIO_F_EVENT_IDX rule vring_need_event).
 */
#define LOG_SUBSYS "virtqueue"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/log.h"
#include "virtio/virtqueue.h"

/* Ring layouts (split): avail = flags, idx, ring[size], used_event;
 * used = flags, idx, {id, len}[size], avail_event. */
#define AVAIL_SIZE(n) (4u + 2u * (n) + 2u)
#define USED_SIZE(n)  (4u + 8u * (n) + 2u)

void vq_init(struct virtqueue *vq, const struct guest_mem *gm, unsigned index, uint16_t max_size)
{
	memset(vq, 0, sizeof(*vq));
	vq->gm = gm;
	vq->index = index;
	vq->max_size = max_size;
	vq_reset(vq);
}

void vq_reset(struct virtqueue *vq)
{
	vq->size = vq->max_size;
	vq->enabled = false;
	vq->msix_vector = VIRTIO_MSI_NO_VECTOR;
	vq->desc = vq->avail = vq->used = 0;
	vq->event_idx = vq->indirect = false;
	vq->last_avail = vq->used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->broken = false;
}

__attribute__((format(printf, 2, 3))) static int vq_fail(struct virtqueue *vq, const char *fmt,
							 ...);

int vq_enable(struct virtqueue *vq)
{
	uint16_t n = vq->size;
	if (n == 0 || n > vq->max_size || (n & (n - 1)))
		return vq_fail(vq, "queue size %u is not a power of two up to %u", n, vq->max_size);
	if ((vq->desc & 15) || (vq->avail & 1) || (vq->used & 3))
		return vq_fail(vq, "misaligned rings (desc %#llx avail %#llx used %#llx)",
			       (unsigned long long)vq->desc, (unsigned long long)vq->avail,
			       (unsigned long long)vq->used);
	if (!gm_ptr(vq->gm, vq->desc, 16u * n) || !gm_ptr(vq->gm, vq->avail, AVAIL_SIZE(n)) ||
	    !gm_ptr(vq->gm, vq->used, USED_SIZE(n)))
		return vq_fail(vq, "rings outside guest RAM (desc %#llx avail %#llx used %#llx)",
			       (unsigned long long)vq->desc, (unsigned long long)vq->avail,
			       (unsigned long long)vq->used);
	vq->enabled = true;
	vq->broken = false;
	return 0;
}

static int vq_fail(struct virtqueue *vq, const char *fmt, ...)
{
	if (log_guest_errors_enabled()) {
		char msg[256];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		log_guest_error("queue %u: %s", vq->index, msg);
	}
	vq->broken = true;
	return -EINVAL;
}

/* Host pointers to the rings; the addresses were checked at enable, but RAM lookups are
 * cheap and this keeps every access checked. */
static uint16_t *avail_ring(struct virtqueue *vq)
{
	return gm_ptr(vq->gm, vq->avail, AVAIL_SIZE(vq->size));
}

static uint8_t *used_ring(struct virtqueue *vq)
{
	return gm_ptr(vq->gm, vq->used, USED_SIZE(vq->size));
}

static uint16_t load16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

bool vq_has_avail(struct virtqueue *vq)
{
	uint16_t *av = avail_ring(vq);
	if (!vq->enabled || vq->broken || !av)
		return false;
	return load16(&av[1]) != vq->last_avail;
}

static void set_avail_event(struct virtqueue *vq, uint16_t v)
{
	uint8_t *u = used_ring(vq);
	if (u)
		__atomic_store_n((uint16_t *)(u + 4 + 8u * vq->size), v, __ATOMIC_RELEASE);
}

/* Walk the chain at `head` into *e. */
static int walk_chain(struct virtqueue *vq, uint16_t head, struct vq_elem *e)
{
	const uint8_t *table = gm_ptr(vq->gm, vq->desc, 16u * vq->size);
	unsigned n = vq->size, i = head, visited = 0, total = 0;
	bool indirect = false;
	if (!table)
		return vq_fail(vq, "descriptor table outside guest RAM");
	e->head = head;
	e->n_out = e->n_in = 0;
	e->out_len = e->in_len = 0;
	for (;;) {
		struct vring_desc d;
		if (i >= n)
			return vq_fail(vq, "chain at %u: descriptor index %u past a table of %u",
				       head, i, n);
		if (visited++ >= n)
			return vq_fail(vq, "chain at %u: loop (more than %u descriptors)", head, n);
		memcpy(&d, table + 16u * i, sizeof(d));
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vq->indirect)
				return vq_fail(
				    vq, "chain at %u: indirect descriptor not negotiated", head);
			if (indirect)
				return vq_fail(vq, "chain at %u: nested indirect table", head);
			if (d.flags & VRING_DESC_F_NEXT)
				return vq_fail(vq, "chain at %u: indirect descriptor with NEXT",
					       head);
			if (d.len == 0 || d.len % 16 || d.len / 16 > vq->size)
				return vq_fail(vq, "chain at %u: indirect table of %u bytes", head,
					       d.len);
			table = gm_ptr(vq->gm, d.addr, d.len);
			if (!table)
				return vq_fail(vq,
					       "chain at %u: indirect table %#llx+%u outside RAM",
					       head, (unsigned long long)d.addr, d.len);
			indirect = true;
			n = d.len / 16;
			i = 0;
			visited = 0;
			continue;
		}
		if (d.len == 0)
			return vq_fail(vq, "chain at %u: zero-length buffer", head);
		uint8_t *p = gm_ptr(vq->gm, d.addr, d.len);
		if (!p)
			return vq_fail(vq, "chain at %u: buffer %#llx+%u outside guest RAM", head,
				       (unsigned long long)d.addr, d.len);
		if (++total > vq->size || e->n_out + e->n_in >= VQ_MAX_SEGS)
			return vq_fail(vq, "chain at %u: more than %u buffers", head,
				       total > vq->size ? vq->size : VQ_MAX_SEGS);
		e->seg[e->n_out + e->n_in] = (struct vq_seg){.ptr = p, .len = d.len};
		if (d.flags & VRING_DESC_F_WRITE) {
			e->n_in++;
			e->in_len += d.len;
		} else {
			if (e->n_in)
				return vq_fail(
				    vq, "chain at %u: readable buffer after a writable one", head);
			e->n_out++;
			e->out_len += d.len;
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

int vq_pop(struct virtqueue *vq, struct vq_elem *e)
{
	if (!vq->enabled || vq->broken)
		return vq->broken ? -EINVAL : 0;
	uint16_t *av = avail_ring(vq);
	if (!av)
		return vq_fail(vq, "available ring outside guest RAM");
	uint16_t idx = load16(&av[1]);
	if (idx == vq->last_avail) {
		if (!vq->event_idx)
			return 0;
		/* Ask for a kick at the next entry, then look again: the driver may have added
		 * one before it saw the new avail_event. */
		set_avail_event(vq, vq->last_avail);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		idx = load16(&av[1]);
		if (idx == vq->last_avail)
			return 0;
	}
	if ((uint16_t)(idx - vq->last_avail) > vq->size)
		return vq_fail(vq, "available index %u is %u entries ahead of %u", idx,
			       (uint16_t)(idx - vq->last_avail), vq->last_avail);
	uint16_t head = av[2 + vq->last_avail % vq->size];
	if (head >= vq->size)
		return vq_fail(vq, "available head %u past a queue of %u", head, vq->size);
	int ret = walk_chain(vq, head, e);
	if (ret)
		return ret;
	vq->last_avail++;
	if (vq->event_idx)
		set_avail_event(vq, vq->last_avail);
	return 1;
}

int vq_fill(struct virtqueue *vq, unsigned i, uint16_t head, uint32_t len)
{
	uint8_t *u = used_ring(vq);
	if (!vq->enabled || !u || i >= vq->size)
		return -EINVAL;
	uint8_t *ent = u + 4 + 8u * ((uint16_t)(vq->used_idx + i) % vq->size);
	uint32_t id = head;
	memcpy(ent, &id, 4);
	memcpy(ent + 4, &len, 4);
	return 0;
}

void vq_flush(struct virtqueue *vq, unsigned n)
{
	uint8_t *u = used_ring(vq);
	if (!vq->enabled || !u)
		return;
	vq->used_idx = (uint16_t)(vq->used_idx + n);
	__atomic_store_n((uint16_t *)(u + 2), vq->used_idx, __ATOMIC_RELEASE);
}

int vq_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	int ret = vq_fill(vq, 0, head, len);
	if (!ret)
		vq_flush(vq, 1);
	return ret;
}

void vq_unpop(struct virtqueue *vq, unsigned n)
{
	vq->last_avail = (uint16_t)(vq->last_avail - n);
}

bool vq_should_notify(struct virtqueue *vq)
{
	uint16_t *av = avail_ring(vq);
	if (!vq->enabled || !av)
		return false;
	/* The used index store must be visible before we read the driver's wishes. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(load16(&av[0]) & VRING_AVAIL_F_NO_INTERRUPT);
	uint16_t old = vq->signalled_used, now = vq->used_idx;
	bool valid = vq->signalled_valid;
	vq->signalled_used = now;
	vq->signalled_valid = true;
	uint16_t event = load16(&av[2 + vq->size]);
	return !valid || (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

size_t vq_elem_read(const struct vq_elem *e, size_t off, void *buf, size_t len)
{
	size_t done = 0;
	for (unsigned s = 0; s < e->n_out && done < len; s++) {
		const struct vq_seg *g = &e->seg[s];
		if (off >= g->len) {
			off -= g->len;
			continue;
		}
		size_t n = g->len - off < len - done ? g->len - off : len - done;
		memcpy((uint8_t *)buf + done, g->ptr + off, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t vq_elem_write(const struct vq_elem *e, size_t off, const void *buf, size_t len)
{
	size_t done = 0;
	for (unsigned s = e->n_out; s < e->n_out + e->n_in && done < len; s++) {
		const struct vq_seg *g = &e->seg[s];
		if (off >= g->len) {
			off -= g->len;
			continue;
		}
		size_t n = g->len - off < len - done ? g->len - off : len - done;
		memcpy(g->ptr + off, (const uint8_t *)buf + done, n);
		done += n;
		off = 0;
	}
	return done;
}

#define VQ_STATE_VERSION 1

int vq_save(const struct virtqueue *vq, struct state_buf *s)
{
	state_put_u8(s, VQ_STATE_VERSION);
	state_put_u16(s, vq->size);
	state_put_u8(s, vq->enabled);
	state_put_u16(s, vq->msix_vector);
	state_put_u64(s, vq->desc);
	state_put_u64(s, vq->avail);
	state_put_u64(s, vq->used);
	state_put_u8(s, (uint8_t)(vq->event_idx | vq->indirect << 1));
	state_put_u16(s, vq->last_avail);
	state_put_u16(s, vq->used_idx);
	return state_status(s);
}

int vq_load(struct virtqueue *vq, struct state_buf *s)
{
	if (state_get_u8(s) != VQ_STATE_VERSION)
		return -EINVAL;
	struct virtqueue v = *vq;
	v.size = state_get_u16(s);
	bool enabled = state_get_u8(s);
	v.msix_vector = state_get_u16(s);
	v.desc = state_get_u64(s);
	v.avail = state_get_u64(s);
	v.used = state_get_u64(s);
	uint8_t f = state_get_u8(s);
	v.event_idx = f & 1;
	v.indirect = f & 2;
	v.last_avail = state_get_u16(s);
	v.used_idx = state_get_u16(s);
	v.signalled_valid = false;
	v.enabled = false;
	v.broken = false;
	if (state_status(s))
		return -EINVAL;
	if (enabled && vq_enable(&v))
		return -EINVAL;
	*vq = v;
	return 0;
}

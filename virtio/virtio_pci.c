/* Virtio over PCI, modern interface only (virtio 1.2 section 4.1), and the generic device
 * state machine (section 2.1 status, 2.2 features, 3.1 initialisation, 2.4 reset).
 * See include/virtio/virtio.h for the BAR layout and the locking rules.
 */
#define LOG_SUBSYS "virtio-pci"
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "util/log.h"
#include "virtio/virtio.h"

#define CAP_LEN	       16
#define NOTIFY_CAP_LEN 20

void virtio_dev_init(struct virtio_dev *vd, const char *name, uint16_t device_id, uint64_t features,
		     unsigned num_queues, uint16_t queue_size, const struct guest_mem *gm,
		     uint8_t *config, unsigned config_len, const struct virtio_dev_ops *ops,
		     void *opaque)
{
	memset(vd, 0, sizeof(*vd));
	pthread_mutex_init(&vd->lock, NULL);
	vd->name = name;
	vd->device_id = device_id;
	vd->host_features = features | 1ULL << VIRTIO_F_VERSION_1 | 1ULL << VIRTIO_F_INDIRECT_DESC |
			    1ULL << VIRTIO_F_EVENT_IDX;
	vd->num_queues = num_queues < VIRTIO_MAX_QUEUES ? num_queues : VIRTIO_MAX_QUEUES;
	vd->gm = gm;
	vd->config = config;
	vd->config_len = config_len;
	vd->ops = ops;
	vd->opaque = opaque;
	vd->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
	vd->notify_fd = -1;
	for (unsigned q = 0; q < vd->num_queues; q++)
		vq_init(&vd->vqs[q], gm, q, queue_size);
}

bool virtio_has_feature(const struct virtio_dev *vd, unsigned bit)
{
	return vd->guest_features & (1ULL << bit);
}

bool virtio_dev_running(const struct virtio_dev *vd)
{
	return (vd->status & VIRTIO_STATUS_DRIVER_OK) && !(vd->status & VIRTIO_STATUS_NEEDS_RESET);
}

/* --- interrupts -------------------------------------------------------------------------- */

static void virtio_raise(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
	if (pci_msix_enabled(&vp->pci)) {
		if (vector != VIRTIO_MSI_NO_VECTOR)
			pci_msix_notify(&vp->pci, vector);
		return;
	}
	pthread_mutex_lock(&vp->isr_lock);
	vp->isr |= isr_bit;
	pci_intx_set(&vp->pci, true);
	pthread_mutex_unlock(&vp->isr_lock);
}

void virtio_notify_queue(struct virtio_dev *vd, unsigned q)
{
	if (q >= vd->num_queues || !vq_should_notify(&vd->vqs[q]))
		return;
	virtio_raise(virtio_pci_of(vd), vd->vqs[q].msix_vector, 1);
}

void virtio_set_needs_reset(struct virtio_dev *vd)
{
	if (vd->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	log_guest_error("%s: device needs reset", vd->name);
	vd->status |= VIRTIO_STATUS_NEEDS_RESET;
	if (vd->status & VIRTIO_STATUS_DRIVER_OK)
		virtio_raise(virtio_pci_of(vd), vd->config_msix_vector, 2);
}

/* --- reset and status -------------------------------------------------------------------- */

/* Lock held. */
static void dev_reset(struct virtio_pci *vp)
{
	struct virtio_dev *vd = &vp->vdev;
	if (vd->ops->reset)
		vd->ops->reset(vd);
	vd->status = 0;
	vd->guest_features = 0;
	vd->dfselect = vd->gfselect = 0;
	vd->queue_select = 0;
	vd->config_msix_vector = VIRTIO_MSI_NO_VECTOR;
	for (unsigned q = 0; q < vd->num_queues; q++)
		vq_reset(&vd->vqs[q]);
	pthread_mutex_lock(&vp->isr_lock);
	vp->isr = 0;
	pci_intx_set(&vp->pci, false);
	pthread_mutex_unlock(&vp->isr_lock);
}

static void write_status(struct virtio_pci *vp, uint8_t val)
{
	struct virtio_dev *vd = &vp->vdev;
	if (val == 0) {
		dev_reset(vp);
		return;
	}
	if ((val & VIRTIO_STATUS_FEATURES_OK) && !(vd->status & VIRTIO_STATUS_FEATURES_OK)) {
		uint64_t extra = vd->guest_features & ~vd->host_features;
		if (extra || !virtio_has_feature(vd, VIRTIO_F_VERSION_1)) {
			log_guest_error("%s: refusing features %#llx (offered %#llx)", vd->name,
					(unsigned long long)vd->guest_features,
					(unsigned long long)vd->host_features);
			val &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		}
	}
	if ((val & VIRTIO_STATUS_DRIVER_OK) && !(val & VIRTIO_STATUS_FEATURES_OK)) {
		log_guest_error("%s: DRIVER_OK without FEATURES_OK", vd->name);
		val &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
	}
	bool became_ok = (val & VIRTIO_STATUS_DRIVER_OK) && !(vd->status & VIRTIO_STATUS_DRIVER_OK);
	/* NEEDS_RESET is the device's to set; the driver cannot clear it except by reset. */
	vd->status = (uint8_t)((val & ~VIRTIO_STATUS_NEEDS_RESET) |
			       (vd->status & VIRTIO_STATUS_NEEDS_RESET));
	if (became_ok && vd->ops->driver_ok)
		vd->ops->driver_ok(vd);
}

/* --- common configuration ---------------------------------------------------------------- */

static struct virtqueue *selected_vq(struct virtio_dev *vd)
{
	return vd->queue_select < vd->num_queues ? &vd->vqs[vd->queue_select] : NULL;
}

static uint32_t common_read(struct virtio_pci *vp, unsigned off)
{
	struct virtio_dev *vd = &vp->vdev;
	struct virtqueue *vq = selected_vq(vd);
	switch (off) {
	case VIRTIO_PCI_DFSELECT:
		return vd->dfselect;
	case VIRTIO_PCI_DF:
		return vd->dfselect < 2 ? (uint32_t)(vd->host_features >> (32 * vd->dfselect)) : 0;
	case VIRTIO_PCI_GFSELECT:
		return vd->gfselect;
	case VIRTIO_PCI_GF:
		return vd->gfselect < 2 ? (uint32_t)(vd->guest_features >> (32 * vd->gfselect)) : 0;
	case VIRTIO_PCI_MSIX_CONFIG:
		return vd->config_msix_vector;
	case VIRTIO_PCI_NUM_QUEUES:
		return vd->num_queues;
	case VIRTIO_PCI_STATUS:
		return vd->status;
	case VIRTIO_PCI_CFG_GEN:
		return vd->config_generation;
	case VIRTIO_PCI_Q_SELECT:
		return vd->queue_select;
	case VIRTIO_PCI_Q_SIZE:
		return vq ? vq->size : 0;
	case VIRTIO_PCI_Q_MSIX:
		return vq ? vq->msix_vector : VIRTIO_MSI_NO_VECTOR;
	case VIRTIO_PCI_Q_ENABLE:
		return vq ? vq->enabled : 0;
	case VIRTIO_PCI_Q_NOFF:
		return vq ? vd->queue_select : 0;
	case VIRTIO_PCI_Q_DESCLO:
		return vq ? (uint32_t)vq->desc : 0;
	case VIRTIO_PCI_Q_DESCHI:
		return vq ? (uint32_t)(vq->desc >> 32) : 0;
	case VIRTIO_PCI_Q_AVAILLO:
		return vq ? (uint32_t)vq->avail : 0;
	case VIRTIO_PCI_Q_AVAILHI:
		return vq ? (uint32_t)(vq->avail >> 32) : 0;
	case VIRTIO_PCI_Q_USEDLO:
		return vq ? (uint32_t)vq->used : 0;
	case VIRTIO_PCI_Q_USEDHI:
		return vq ? (uint32_t)(vq->used >> 32) : 0;
	}
	return 0;
}

static uint16_t checked_vector(struct virtio_pci *vp, uint16_t v)
{
	/* A vector the function does not have reads back as NO_VECTOR (4.1.5.1.2.1). */
	return v < vp->pci.msix_vecs ? v : VIRTIO_MSI_NO_VECTOR;
}

static void set_half(uint64_t *reg, bool high, uint32_t v)
{
	if (high)
		*reg = (*reg & 0xffffffffULL) | (uint64_t)v << 32;
	else
		*reg = (*reg & ~0xffffffffULL) | v;
}

static void queue_enable(struct virtio_dev *vd, struct virtqueue *vq)
{
	vq->event_idx = virtio_has_feature(vd, VIRTIO_F_EVENT_IDX);
	vq->indirect = virtio_has_feature(vd, VIRTIO_F_INDIRECT_DESC);
	if (vq_enable(vq))
		log_guest_error("%s: queue %u cannot be enabled", vd->name, vq->index);
}

static void common_write(struct virtio_pci *vp, unsigned off, uint32_t val)
{
	struct virtio_dev *vd = &vp->vdev;
	struct virtqueue *vq = selected_vq(vd);
	/* Queue registers are frozen while the queue is enabled (only the driver's reset
	 * changes them back), and feature bits once FEATURES_OK is set. */
	bool vq_writable = vq && !vq->enabled;
	switch (off) {
	case VIRTIO_PCI_DFSELECT:
		vd->dfselect = val;
		return;
	case VIRTIO_PCI_GFSELECT:
		vd->gfselect = val;
		return;
	case VIRTIO_PCI_GF:
		if (vd->gfselect < 2 && !(vd->status & VIRTIO_STATUS_FEATURES_OK))
			set_half(&vd->guest_features, vd->gfselect == 1, val);
		return;
	case VIRTIO_PCI_MSIX_CONFIG:
		vd->config_msix_vector = checked_vector(vp, (uint16_t)val);
		return;
	case VIRTIO_PCI_STATUS:
		write_status(vp, (uint8_t)val);
		return;
	case VIRTIO_PCI_Q_SELECT:
		vd->queue_select = (uint16_t)val;
		return;
	case VIRTIO_PCI_Q_SIZE:
		if (vq_writable)
			vq->size = (uint16_t)val;
		return;
	case VIRTIO_PCI_Q_MSIX:
		if (vq)
			vq->msix_vector = checked_vector(vp, (uint16_t)val);
		return;
	case VIRTIO_PCI_Q_ENABLE:
		if (vq_writable && val == 1)
			queue_enable(vd, vq);
		return;
	case VIRTIO_PCI_Q_DESCLO:
	case VIRTIO_PCI_Q_DESCHI:
		if (vq_writable)
			set_half(&vq->desc, off == VIRTIO_PCI_Q_DESCHI, val);
		return;
	case VIRTIO_PCI_Q_AVAILLO:
	case VIRTIO_PCI_Q_AVAILHI:
		if (vq_writable)
			set_half(&vq->avail, off == VIRTIO_PCI_Q_AVAILHI, val);
		return;
	case VIRTIO_PCI_Q_USEDLO:
	case VIRTIO_PCI_Q_USEDHI:
		if (vq_writable)
			set_half(&vq->used, off == VIRTIO_PCI_Q_USEDHI, val);
		return;
	}
	log_guest_error("%s: write to read-only common config offset %#x", vd->name, off);
}

/* Registers are 1, 2 or 4 bytes wide at natural offsets; a 64-bit field is two 32-bit
 * registers. Accesses of other widths are split or merged by register. */
static unsigned common_reg_width(unsigned off)
{
	if (off < VIRTIO_PCI_MSIX_CONFIG || off >= VIRTIO_PCI_Q_DESCLO)
		return 4;
	if (off == VIRTIO_PCI_STATUS || off == VIRTIO_PCI_CFG_GEN)
		return 1;
	return 2;
}

/* --- BAR 4 ------------------------------------------------------------------------------- */

static uint64_t bar_read(void *opaque, uint64_t offset, unsigned size)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *vd = &vp->vdev;
	uint64_t v = 0;
	if (offset < VIRTIO_PCI_ISR_OFF) {
		if (offset + size > VIRTIO_PCI_COMMON_SIZE)
			return 0;
		unsigned reg = (unsigned)offset & ~(common_reg_width((unsigned)offset) - 1);
		pthread_mutex_lock(&vd->lock);
		uint64_t r = common_read(vp, reg);
		if (size == 8)
			r |= (uint64_t)common_read(vp, reg + 4) << 32;
		pthread_mutex_unlock(&vd->lock);
		v = r >> (8 * (offset - reg));
	} else if (offset < VIRTIO_PCI_DEVICE_OFF) {
		if (offset != VIRTIO_PCI_ISR_OFF)
			return 0;
		/* Reading the ISR acknowledges it and lowers INTx (4.1.4.5). */
		pthread_mutex_lock(&vp->isr_lock);
		v = vp->isr;
		vp->isr = 0;
		pci_intx_set(&vp->pci, false);
		pthread_mutex_unlock(&vp->isr_lock);
	} else if (offset < VIRTIO_PCI_NOTIFY_OFF) {
		uint64_t o = offset - VIRTIO_PCI_DEVICE_OFF;
		pthread_mutex_lock(&vd->lock);
		for (unsigned i = 0; i < size && o + i < vd->config_len; i++)
			v |= (uint64_t)vd->config[o + i] << (8 * i);
		pthread_mutex_unlock(&vd->lock);
	}
	if (size < 8)
		v &= (1ULL << (8 * size)) - 1;
	return v;
}

static void bar_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *vd = &vp->vdev;
	if (offset < VIRTIO_PCI_ISR_OFF) {
		if (offset + size > VIRTIO_PCI_COMMON_SIZE)
			return;
		unsigned off = (unsigned)offset;
		unsigned w = common_reg_width(off);
		pthread_mutex_lock(&vd->lock);
		if (size == 8 && w == 4 && !(off & 7)) {
			common_write(vp, off, (uint32_t)value);
			common_write(vp, off + 4, (uint32_t)(value >> 32));
		} else if (size == w && !(off & (w - 1))) {
			common_write(vp, off, (uint32_t)value);
		} else {
			log_guest_error("%s: %u-byte write to common config offset %#x", vd->name,
					size, off);
		}
		pthread_mutex_unlock(&vd->lock);
	} else if (offset >= VIRTIO_PCI_NOTIFY_OFF) {
		unsigned q = (unsigned)(offset - VIRTIO_PCI_NOTIFY_OFF) / VIRTIO_PCI_NOTIFY_MULT;
		if (q < vd->num_queues && vd->ops->notify)
			vd->ops->notify(vd, q);
		else
			log_guest_error("%s: notify for queue %u of %u", vd->name, q,
					vd->num_queues);
	} else if (offset >= VIRTIO_PCI_DEVICE_OFF) {
		uint64_t o = offset - VIRTIO_PCI_DEVICE_OFF;
		pthread_mutex_lock(&vd->lock);
		if (vd->ops->config_write && o < vd->config_len) {
			unsigned n = 0;
			for (; n < size && o + n < vd->config_len; n++)
				vd->config[o + n] = (uint8_t)(value >> (8 * n));
			vd->ops->config_write(vd, (unsigned)o, n);
		}
		pthread_mutex_unlock(&vd->lock);
	}
}

/* BAR 4's parts as QEMU's info mtree names them: virtio-pci-{common,isr,device,notify}-DEV. */
static unsigned bar_subregions(void *opaque, struct io_subregion *out, unsigned max)
{
	struct virtio_pci *vp = opaque;
	static const struct {
		const char *what;
		uint64_t off;
	} parts[] = {{"common", VIRTIO_PCI_COMMON_OFF},
		     {"isr", VIRTIO_PCI_ISR_OFF},
		     {"device", VIRTIO_PCI_DEVICE_OFF},
		     {"notify", VIRTIO_PCI_NOTIFY_OFF}};
	unsigned n = 0;
	for (; n < 4 && n < max; n++) {
		out[n].offset = parts[n].off;
		out[n].len = 0x1000;
		snprintf(out[n].name, sizeof(out[n].name), "virtio-pci-%s-%s", parts[n].what,
			 vp->vdev.name);
	}
	return n;
}

static const struct io_ops bar_ops = {
    .read = bar_read, .write = bar_write, .subregions = bar_subregions};

/* VIRTIO_PCI_CAP_PCI_CFG (4.1.4.9): the driver puts bar, offset and length in the capability,
 * then reads or writes pci_cfg_data (cap + 16) to access that BAR 4 location. */
static bool pci_cfg_window(struct virtio_pci *vp, unsigned off, unsigned size, uint32_t *boff,
			   unsigned *blen)
{
	unsigned c = vp->pci_cfg_cap;
	if (!c || off != c + 16u || size != 4)
		return false;
	const uint8_t *cfg = vp->pci.cfg;
	uint32_t o = (uint32_t)cfg[c + 8] | (uint32_t)cfg[c + 9] << 8 |
		     (uint32_t)cfg[c + 10] << 16 | (uint32_t)cfg[c + 11] << 24;
	unsigned len = cfg[c + 12];
	if (cfg[c + 4] != VIRTIO_PCI_CFG_BAR || (len != 1 && len != 2 && len != 4) ||
	    o > VIRTIO_PCI_BAR_SIZE - len) {
		log_guest_error("%s: PCI cfg window bar %u offset %#x length %u", vp->vdev.name,
				cfg[c + 4], o, len);
		return false;
	}
	*boff = o;
	*blen = len;
	return true;
}

static void pci_cfg_read_hook(struct pci_dev *d, unsigned off, unsigned size, uint32_t *val)
{
	struct virtio_pci *vp = (struct virtio_pci *)((char *)d - offsetof(struct virtio_pci, pci));
	uint32_t boff;
	unsigned blen;
	if (pci_cfg_window(vp, off, size, &boff, &blen))
		*val = (uint32_t)bar_read(vp, boff, blen);
}

static void pci_cfg_write_hook(struct pci_dev *d, unsigned off, unsigned size)
{
	struct virtio_pci *vp = (struct virtio_pci *)((char *)d - offsetof(struct virtio_pci, pci));
	uint32_t boff;
	unsigned blen;
	if (!pci_cfg_window(vp, off, size, &boff, &blen))
		return;
	const uint8_t *p = &d->cfg[off];
	uint32_t v =
	    (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	bar_write(vp, boff, v, blen);
}

/* Doorbells follow BAR 4: 2-byte writes (what drivers use) to a queue's notify address go
 * to the device's eventfd without an exit; other widths still exit and reach bar_write. */
static void bar_moved_hook(struct pci_dev *d, unsigned bar, bool mapped, uint64_t addr)
{
	struct virtio_pci *vp = (struct virtio_pci *)((char *)d - offsetof(struct virtio_pci, pci));
	struct virtio_dev *vd = &vp->vdev;
	struct pci_host *h = d->host;
	if (bar != VIRTIO_PCI_CFG_BAR || vd->notify_fd < 0 || !h || !h->ioeventfd)
		return;
	if (mapped) {
		unsigned n = 0;
		for (unsigned q = 0; q < vd->num_queues; q++) {
			uint64_t a = addr + VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT;
			if (h->ioeventfd(h->ioeventfd_opaque, a, 2, vd->notify_fd, true))
				break;
			n++;
		}
		vp->ioeventfds = n;
		if (n)
			log_info("%s: %u doorbells on ioeventfd at %#llx", vd->name, n,
				 (unsigned long long)(addr + VIRTIO_PCI_NOTIFY_OFF));
	} else {
		for (unsigned q = 0; q < vp->ioeventfds; q++)
			h->ioeventfd(h->ioeventfd_opaque,
				     addr + VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT, 2,
				     vd->notify_fd, false);
		vp->ioeventfds = 0;
	}
}

static const struct pci_dev_ops virtio_pci_dev_ops = {.config_read = pci_cfg_read_hook,
						      .config_write = pci_cfg_write_hook,
						      .bar_moved = bar_moved_hook};

/* --- PCI function ------------------------------------------------------------------------ */

static int add_vendor_cap(struct pci_dev *d, uint8_t type, uint32_t off, uint32_t len,
			  unsigned cap_len)
{
	int c = pci_dev_add_cap(d, PCI_CAP_ID_VENDOR, cap_len);
	if (c < 0)
		return c;
	d->cfg[c + 2] = (uint8_t)cap_len;
	d->cfg[c + 3] = type;
	d->cfg[c + 4] = VIRTIO_PCI_CFG_BAR;
	pci_cfg_set32(d->cfg, c + 8, off);
	pci_cfg_set32(d->cfg, c + 12, len);
	return c;
}

int virtio_pci_init(struct virtio_pci *vp, uint32_t class_code)
{
	struct virtio_dev *vd = &vp->vdev;
	struct pci_dev *d = &vp->pci;
	pthread_mutex_init(&vp->isr_lock, NULL);
	vp->isr = 0;
	pci_dev_init(d, vd->name, VIRTIO_PCI_VENDOR, VIRTIO_PCI_DEVICE_BASE + vd->device_id,
		     class_code, 1);
	pci_dev_set_subsys(d, VIRTIO_PCI_VENDOR, 0x1100);
	int ret = pci_dev_add_bar(d, VIRTIO_PCI_CFG_BAR, PCI_BAR_MEM64, true, VIRTIO_PCI_BAR_SIZE,
				  &bar_ops, vp, vd->name);
	if (!ret)
		ret = pci_dev_init_msix(d, vd->num_queues + 1, VIRTIO_PCI_MSIX_BAR);
	if (ret)
		return ret;
	int c;
	if ((c = add_vendor_cap(d, VIRTIO_PCI_CAP_COMMON, VIRTIO_PCI_COMMON_OFF, 0x1000, CAP_LEN)) <
		0 ||
	    (c = add_vendor_cap(d, VIRTIO_PCI_CAP_ISR, VIRTIO_PCI_ISR_OFF, 0x1000, CAP_LEN)) < 0 ||
	    (c = add_vendor_cap(d, VIRTIO_PCI_CAP_DEVICE, VIRTIO_PCI_DEVICE_OFF, 0x1000, CAP_LEN)) <
		0)
		return c;
	c = add_vendor_cap(d, VIRTIO_PCI_CAP_NOTIFY, VIRTIO_PCI_NOTIFY_OFF, 0x1000, NOTIFY_CAP_LEN);
	if (c < 0)
		return c;
	pci_cfg_set32(d->cfg, c + 16, VIRTIO_PCI_NOTIFY_MULT);
	c = add_vendor_cap(d, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, CAP_LEN + 4);
	if (c < 0)
		return c;
	d->cfg[c + 4] = 0;
	d->wmask[c + 4] = 0xff;			     /* bar */
	pci_cfg_set32(d->wmask, c + 8, 0xffffffff);  /* offset */
	pci_cfg_set32(d->wmask, c + 12, 0xffffffff); /* length */
	pci_cfg_set32(d->wmask, c + 16, 0xffffffff); /* pci_cfg_data */
	vp->pci_cfg_cap = (uint8_t)c;
	d->ops = &virtio_pci_dev_ops;
	return 0;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	pci_dev_destroy(&vp->pci);
	pthread_mutex_destroy(&vp->isr_lock);
	pthread_mutex_destroy(&vp->vdev.lock);
}

void virtio_pci_reset(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->vdev.lock);
	dev_reset(vp);
	pthread_mutex_unlock(&vp->vdev.lock);
}

/* --- save / load ------------------------------------------------------------------------- */

#define VIRTIO_STATE_VERSION 1

int virtio_dev_save(struct virtio_dev *vd, struct state_buf *s)
{
	pthread_mutex_lock(&vd->lock);
	state_put_u8(s, VIRTIO_STATE_VERSION);
	state_put_u64(s, vd->guest_features);
	state_put_u8(s, vd->status);
	state_put_u16(s, vd->config_msix_vector);
	state_put_u32(s, vd->num_queues);
	for (unsigned q = 0; q < vd->num_queues; q++)
		vq_save(&vd->vqs[q], s);
	pthread_mutex_unlock(&vd->lock);
	return state_status(s);
}

int virtio_dev_load(struct virtio_dev *vd, struct state_buf *s)
{
	if (state_get_u8(s) != VIRTIO_STATE_VERSION)
		return -EINVAL;
	uint64_t features = state_get_u64(s);
	uint8_t status = state_get_u8(s);
	uint16_t vec = state_get_u16(s);
	uint32_t nq = state_get_u32(s);
	/* A driver may write feature bits the device does not offer; the device refuses
	 * FEATURES_OK then (write_status) but keeps the bits, so only a state that claims
	 * FEATURES_OK with them is impossible. */
	if (state_status(s) || nq != vd->num_queues ||
	    ((features & ~vd->host_features) && (status & VIRTIO_STATUS_FEATURES_OK)))
		return -EINVAL;
	pthread_mutex_lock(&vd->lock);
	int ret = 0;
	for (unsigned q = 0; q < nq && !ret; q++)
		ret = vq_load(&vd->vqs[q], s);
	if (!ret) {
		vd->guest_features = features;
		vd->status = status;
		vd->config_msix_vector = vec;
	}
	pthread_mutex_unlock(&vd->lock);
	return ret;
}

int virtio_pci_save(struct virtio_pci *vp, struct state_buf *s)
{
	int ret = pci_dev_save(&vp->pci, s);
	if (!ret)
		ret = virtio_dev_save(&vp->vdev, s);
	pthread_mutex_lock(&vp->isr_lock);
	state_put_u8(s, vp->isr);
	pthread_mutex_unlock(&vp->isr_lock);
	return ret ? ret : state_status(s);
}

int virtio_pci_load(struct virtio_pci *vp, struct state_buf *s)
{
	int ret = pci_dev_load(&vp->pci, s);
	if (!ret)
		ret = virtio_dev_load(&vp->vdev, s);
	uint8_t isr = state_get_u8(s);
	if (ret || state_status(s) || (isr & ~3u))
		return ret ? ret : -EINVAL;
	pthread_mutex_lock(&vp->isr_lock);
	vp->isr = isr;
	pci_intx_set(&vp->pci, isr != 0);
	pthread_mutex_unlock(&vp->isr_lock);
	return 0;
}

/* PCI host bridge, configuration space, BARs, INTx and MSI-X (see include/hw/pci.h).
 *
 * PCI Local Bus Specification 3.0: 3.2.2.3.2 (CONFIG_ADDRESS at 0xCF8, CONFIG_DATA at 0xCFC),
 * 6.2.5.1 (BAR sizing: write all ones, read back the size mask), 6.7 (capability list),
 * 6.8.2 (MSI-X capability, table and PBA); PCI Express Base 4.0 7.2.2 (ECAM layout).
 */
#define LOG_SUBSYS "pci"
#include <errno.h>
#include <string.h>

#include "hw/pci.h"
#include "pci_irqfd.h"
#include "util/log.h"

#define PCI_CFG_ENABLE	  0x80000000u
#define MSIX_PBA_OFFSET	  0x800
#define MSIX_BAR_SIZE	  0x1000
#define MSIX_ENTRY_MASKED 1u

/* --- config space ------------------------------------------------------------------------ */

static uint32_t get32(const uint8_t *p, unsigned off)
{
	return (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
	       (uint32_t)p[off + 3] << 24;
}

unsigned pci_slot_gsi(unsigned slot, unsigned pin)
{
	/* The usual swizzle: neighbouring slots' INTA# land on different lines. */
	return PCI_INTX_GSI_BASE + (slot + pin) % PCI_INTX_GSI_NUM;
}

void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint8_t revision)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->irq_lock, NULL);
	pci_irqfd_init(d);
	d->name = name;
	pci_cfg_set16(d->cfg, PCI_VENDOR_ID, vendor);
	pci_cfg_set16(d->cfg, PCI_DEVICE_ID, device);
	d->cfg[PCI_REVISION] = revision;
	d->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	d->cfg[PCI_CLASS_PROG + 1] = (uint8_t)(class_code >> 8);
	d->cfg[PCI_CLASS_PROG + 2] = (uint8_t)(class_code >> 16);
	d->cfg[PCI_HEADER_TYPE] = 0;
	pci_cfg_set16(d->wmask, PCI_COMMAND,
		      PCI_CMD_IO | PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_DISABLE);
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
	d->next_cap = 0x40;
}

void pci_dev_set_subsys(struct pci_dev *d, uint16_t vendor, uint16_t id)
{
	pci_cfg_set16(d->cfg, PCI_SUBSYS_VENDOR, vendor);
	pci_cfg_set16(d->cfg, PCI_SUBSYS_ID, id);
}

int pci_dev_add_bar(struct pci_dev *d, unsigned idx, enum pci_bar_type type, bool prefetch,
		    uint64_t size, const struct io_ops *ops, void *opaque, const char *name)
{
	if (idx >= PCI_NUM_BARS || (type == PCI_BAR_MEM64 && idx == PCI_NUM_BARS - 1))
		return -EINVAL;
	if (size & (size - 1) || size < (type == PCI_BAR_IO ? 4u : 16u) ||
	    (type == PCI_BAR_IO && size > 256) || (type == PCI_BAR_MEM32 && size > 1ULL << 31) ||
	    type == PCI_BAR_NONE || !ops)
		return -EINVAL;
	if (d->bars[idx].type != PCI_BAR_NONE ||
	    (idx > 0 && d->bars[idx - 1].type == PCI_BAR_MEM64))
		return -EBUSY;
	if (type == PCI_BAR_MEM64 && d->bars[idx + 1].type != PCI_BAR_NONE)
		return -EBUSY;
	struct pci_bar *b = &d->bars[idx];
	*b = (struct pci_bar){.type = type,
			      .prefetch = prefetch,
			      .size = size,
			      .ops = ops,
			      .opaque = opaque,
			      .name = name};
	unsigned off = PCI_BAR0 + 4 * idx;
	uint64_t mask = ~(size - 1);
	uint32_t low;
	if (type == PCI_BAR_IO) {
		low = 0x1;
		pci_cfg_set32(d->wmask, off, (uint32_t)mask & ~0x3u);
	} else {
		low = (type == PCI_BAR_MEM64 ? 0x4 : 0x0) | (prefetch ? 0x8 : 0x0);
		pci_cfg_set32(d->wmask, off, (uint32_t)mask & ~0xfu);
		if (type == PCI_BAR_MEM64)
			pci_cfg_set32(d->wmask, off + 4, (uint32_t)(mask >> 32));
	}
	pci_cfg_set32(d->cfg, off, low);
	return 0;
}

int pci_dev_add_cap(struct pci_dev *d, uint8_t id, unsigned len)
{
	unsigned off = (d->next_cap + 3u) & ~3u;
	if (len < 2 || off + len > PCI_CFG_SIZE)
		return -ENOSPC;
	d->cfg[off] = id;
	d->cfg[off + 1] = 0;
	if (d->last_cap)
		d->cfg[d->last_cap + 1] = (uint8_t)off;
	else
		d->cfg[PCI_CAP_PTR] = (uint8_t)off;
	d->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	d->last_cap = (uint8_t)off;
	d->next_cap = (uint8_t)(off + len < PCI_CFG_SIZE ? off + len : 0xff);
	return (int)off;
}

static uint64_t bar_address(const struct pci_dev *d, unsigned i)
{
	const struct pci_bar *b = &d->bars[i];
	uint32_t lo = get32(d->cfg, PCI_BAR0 + 4 * i);
	switch (b->type) {
	case PCI_BAR_IO:
		return lo & ~0x3u;
	case PCI_BAR_MEM32:
		return lo & ~0xfu;
	case PCI_BAR_MEM64:
		return (lo & ~0xfull) | (uint64_t)get32(d->cfg, PCI_BAR0 + 4 * i + 4) << 32;
	default:
		return 0;
	}
}

/* Map, move or unmap BAR i to follow its register and the command register. */
static void bar_update(struct pci_dev *d, unsigned i)
{
	struct pci_bar *b = &d->bars[i];
	struct pci_host *h = d->host;
	if (b->type == PCI_BAR_NONE || !h)
		return;
	bool io = b->type == PCI_BAR_IO;
	uint16_t cmd = pci_cfg_get16(d, PCI_COMMAND);
	uint64_t addr = bar_address(d, i);
	uint64_t limit = io ? 0x10000 : b->type == PCI_BAR_MEM32 ? 1ULL << 32 : 1ULL << 52;
	uint64_t all_ones = ~(b->size - 1) & (io ? 0xfffcu : limit - 1);
	bool on = (cmd & (io ? PCI_CMD_IO : PCI_CMD_MEM)) && addr != 0 && addr <= limit - b->size &&
		  addr != all_ones; /* in the middle of sizing: not an address */
	struct io_bus *bus = io ? h->pio : h->mmio;
	if (!on) {
		if (b->handle > 0) {
			if (d->ops && d->ops->bar_moved)
				d->ops->bar_moved(d, i, false, b->mapped);
			io_bus_remove(bus, b->handle);
			b->handle = 0;
			log_debug("%s: BAR%u unmapped", d->name, i);
		}
		return;
	}
	if (b->handle > 0) {
		if (b->mapped == addr)
			return;
		if (d->ops && d->ops->bar_moved)
			d->ops->bar_moved(d, i, false, b->mapped);
		if (io_bus_move(bus, b->handle, addr) == 0) {
			b->mapped = addr;
			if (d->ops && d->ops->bar_moved)
				d->ops->bar_moved(d, i, true, addr);
			log_debug("%s: BAR%u moved to %#llx", d->name, i, (unsigned long long)addr);
			return;
		}
		io_bus_remove(bus, b->handle);
		b->handle = 0;
	}
	int ret = io_bus_register(bus, addr, b->size, b->ops, b->opaque, b->name);
	if (ret < 0) {
		log_warn("%s: cannot map BAR%u at %#llx: %s", d->name, i, (unsigned long long)addr,
			 strerror(-ret));
		return;
	}
	b->handle = ret;
	b->mapped = addr;
	log_debug("%s: BAR%u mapped at %#llx", d->name, i, (unsigned long long)addr);
	if (d->ops && d->ops->bar_moved)
		d->ops->bar_moved(d, i, true, addr);
}

static void bars_update(struct pci_dev *d)
{
	for (unsigned i = 0; i < PCI_NUM_BARS; i++)
		bar_update(d, i);
}

/* Put the INTx wish on the line unless INTX_DISABLE; irq_lock held. */
static void intx_apply(struct pci_dev *d)
{
	bool out = d->intx_level && !(pci_cfg_get16(d, PCI_COMMAND) & PCI_CMD_INTX_DISABLE) &&
		   !d->msix_enabled;
	if (out != d->intx_out && d->host) {
		d->intx_out = out;
		if (!pci_irqfd_intx(d, out))
			irq_line_set(d->host->irq, d->gsi, out);
	}
}

static void msix_send(struct pci_dev *d, unsigned vec)
{
	const uint8_t *e = &d->msix_table[vec * 16];
	uint64_t addr = get32(e, 0) | (uint64_t)get32(e, 4) << 32;
	if (d->host && !pci_irqfd_msix(d, vec, addr, get32(e, 8)))
		msi_send(d->host->irq, addr, get32(e, 8));
}

/* Deliver pending vectors no longer masked; irq_lock held. */
static void msix_flush_pending(struct pci_dev *d)
{
	if (!d->msix_enabled || d->msix_masked)
		return;
	for (unsigned v = 0; v < d->msix_vecs; v++) {
		uint64_t bit = 1ULL << (v % 64);
		if (!(d->msix_pba[v / 64] & bit) ||
		    (get32(d->msix_table, v * 16 + 12) & MSIX_ENTRY_MASKED))
			continue;
		d->msix_pba[v / 64] &= ~bit;
		msix_send(d, v);
	}
}

static void msix_ctrl_update(struct pci_dev *d)
{
	if (!d->msix_vecs)
		return;
	uint16_t ctrl = pci_cfg_get16(d, d->msix_cap + 2);
	pthread_mutex_lock(&d->irq_lock);
	d->msix_enabled = ctrl & PCI_MSIX_CTRL_ENABLE;
	d->msix_masked = ctrl & PCI_MSIX_CTRL_MASK;
	msix_flush_pending(d);
	intx_apply(d);
	pthread_mutex_unlock(&d->irq_lock);
}

static bool overlaps(unsigned off, unsigned size, unsigned start, unsigned len)
{
	return off < start + len && start < off + size;
}

static uint32_t dev_cfg_read(struct pci_dev *d, unsigned off, unsigned size)
{
	uint32_t v = 0;
	if (off >= PCI_CFG_SIZE)
		return 0; /* conventional device: no extended space */
	pthread_mutex_lock(&d->irq_lock);
	for (unsigned i = 0; i < size && off + i < PCI_CFG_SIZE; i++) {
		uint8_t byte = d->cfg[off + i];
		if (off + i == PCI_STATUS)
			byte = (byte & ~PCI_STATUS_INTX) | (d->intx_level ? PCI_STATUS_INTX : 0);
		v |= (uint32_t)byte << (8 * i);
	}
	pthread_mutex_unlock(&d->irq_lock);
	if (d->ops && d->ops->config_read)
		d->ops->config_read(d, off, size, &v);
	return v;
}

static void dev_cfg_write(struct pci_dev *d, unsigned off, unsigned size, uint32_t val)
{
	if (off >= PCI_CFG_SIZE)
		return;
	if (off + size > PCI_CFG_SIZE)
		size = PCI_CFG_SIZE - off;
	/* Under irq_lock too: iothreads read COMMAND.INTX_DISABLE when they signal INTx. */
	pthread_mutex_lock(&d->irq_lock);
	for (unsigned i = 0; i < size; i++) {
		uint8_t m = d->wmask[off + i];
		d->cfg[off + i] = (uint8_t)((d->cfg[off + i] & ~m) | ((val >> (8 * i)) & m));
	}
	pthread_mutex_unlock(&d->irq_lock);
	if (overlaps(off, size, PCI_COMMAND, 2)) {
		bars_update(d);
		pthread_mutex_lock(&d->irq_lock);
		intx_apply(d);
		pthread_mutex_unlock(&d->irq_lock);
	} else if (overlaps(off, size, PCI_BAR0, 4 * PCI_NUM_BARS)) {
		bars_update(d);
	}
	if (d->msix_vecs && overlaps(off, size, d->msix_cap + 2, 2))
		msix_ctrl_update(d);
	if (d->ops && d->ops->config_write)
		d->ops->config_write(d, off, size);
}

static struct pci_dev *find_dev(struct pci_host *h, unsigned bus, unsigned devfn)
{
	if (bus != 0 || (devfn & 7) != 0)
		return NULL;
	return h->devs[devfn >> 3];
}

uint32_t pci_host_cfg_read(struct pci_host *h, unsigned bus, unsigned devfn, unsigned off,
			   unsigned size)
{
	uint32_t ones = size >= 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
	pthread_mutex_lock(&h->lock);
	struct pci_dev *d = find_dev(h, bus, devfn);
	uint32_t v = d ? dev_cfg_read(d, off, size) : ones;
	pthread_mutex_unlock(&h->lock);
	return v;
}

void pci_host_cfg_write(struct pci_host *h, unsigned bus, unsigned devfn, unsigned off,
			unsigned size, uint32_t val)
{
	pthread_mutex_lock(&h->lock);
	struct pci_dev *d = find_dev(h, bus, devfn);
	if (d)
		dev_cfg_write(d, off, size, val);
	pthread_mutex_unlock(&h->lock);
}

/* --- 0xcf8 / 0xcfc ----------------------------------------------------------------------- */

static uint64_t cfg_addr_read(void *opaque, uint64_t offset, unsigned size)
{
	struct pci_host *h = opaque;
	pthread_mutex_lock(&h->lock);
	uint32_t v = h->config_address;
	pthread_mutex_unlock(&h->lock);
	return v >> (8 * offset);
}

static void cfg_addr_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
	struct pci_host *h = opaque;
	/* Only dword accesses latch (byte writes to 0xcf9 are the reset register). */
	if (offset != 0 || size != 4)
		return;
	pthread_mutex_lock(&h->lock);
	h->config_address = (uint32_t)value & 0x80fffffcu;
	pthread_mutex_unlock(&h->lock);
}

static bool cfg_data_target(struct pci_host *h, uint64_t offset, unsigned *bus, unsigned *devfn,
			    unsigned *reg)
{
	pthread_mutex_lock(&h->lock);
	uint32_t a = h->config_address;
	pthread_mutex_unlock(&h->lock);
	if (!(a & PCI_CFG_ENABLE))
		return false;
	*bus = (a >> 16) & 0xff;
	*devfn = (a >> 8) & 0xff;
	*reg = (a & 0xfc) + (unsigned)offset;
	return true;
}

static uint64_t cfg_data_read(void *opaque, uint64_t offset, unsigned size)
{
	struct pci_host *h = opaque;
	unsigned bus, devfn, reg;
	if (!cfg_data_target(h, offset, &bus, &devfn, &reg))
		return 0xffffffffu;
	return pci_host_cfg_read(h, bus, devfn, reg, size);
}

static void cfg_data_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
	struct pci_host *h = opaque;
	unsigned bus, devfn, reg;
	if (cfg_data_target(h, offset, &bus, &devfn, &reg))
		pci_host_cfg_write(h, bus, devfn, reg, size, (uint32_t)value);
}

static const struct io_ops cfg_addr_ops = {.read = cfg_addr_read, .write = cfg_addr_write};
static const struct io_ops cfg_data_ops = {.read = cfg_data_read, .write = cfg_data_write};

/* --- ECAM -------------------------------------------------------------------------------- */

static uint64_t ecam_read(void *opaque, uint64_t offset, unsigned size)
{
	struct pci_host *h = opaque;
	unsigned bus = (unsigned)(offset >> 20), devfn = (offset >> 12) & 0xff;
	unsigned reg = offset & 0xfff;
	if (size == 8)
		return pci_host_cfg_read(h, bus, devfn, reg, 4) |
		       (uint64_t)pci_host_cfg_read(h, bus, devfn, reg + 4, 4) << 32;
	return pci_host_cfg_read(h, bus, devfn, reg, size);
}

static void ecam_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
	struct pci_host *h = opaque;
	unsigned bus = (unsigned)(offset >> 20), devfn = (offset >> 12) & 0xff;
	unsigned reg = offset & 0xfff;
	if (size == 8) {
		pci_host_cfg_write(h, bus, devfn, reg, 4, (uint32_t)value);
		pci_host_cfg_write(h, bus, devfn, reg + 4, 4, (uint32_t)(value >> 32));
		return;
	}
	pci_host_cfg_write(h, bus, devfn, reg, size, (uint32_t)value);
}

static const struct io_ops ecam_ops = {.read = ecam_read, .write = ecam_write};

/* --- MSI-X table and PBA ----------------------------------------------------------------- */

static uint64_t msix_read(void *opaque, uint64_t offset, unsigned size)
{
	struct pci_dev *d = opaque;
	uint64_t v = 0;
	pthread_mutex_lock(&d->irq_lock);
	for (unsigned i = 0; i < size; i++) {
		uint64_t o = offset + i;
		uint8_t byte = 0;
		if (o < d->msix_vecs * 16u)
			byte = d->msix_table[o];
		else if (o >= MSIX_PBA_OFFSET && o < MSIX_PBA_OFFSET + (d->msix_vecs + 7) / 8)
			byte = (uint8_t)(d->msix_pba[(o - MSIX_PBA_OFFSET) / 8] >>
					 (8 * ((o - MSIX_PBA_OFFSET) % 8)));
		v |= (uint64_t)byte << (8 * i);
	}
	pthread_mutex_unlock(&d->irq_lock);
	return v;
}

static void msix_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
	struct pci_dev *d = opaque;
	if (offset >= d->msix_vecs * 16u) {
		if (offset < MSIX_PBA_OFFSET)
			log_guest_error("%s: MSI-X write past the table at %#llx", d->name,
					(unsigned long long)offset);
		return; /* the PBA is read-only */
	}
	pthread_mutex_lock(&d->irq_lock);
	for (unsigned i = 0; i < size && offset + i < d->msix_vecs * 16u; i++) {
		uint64_t o = offset + i;
		/* Only bit 0 of Vector Control is defined; the rest are reserved (read 0). */
		if (o % 16 == 12) {
			d->msix_table[o] = (uint8_t)(value >> (8 * i)) & MSIX_ENTRY_MASKED;
		} else if (o % 16 < 12) {
			d->msix_table[o] = (uint8_t)(value >> (8 * i));
			pci_irqfd_msix_changed(d, (unsigned)(o / 16));
		}
	}
	msix_flush_pending(d);
	pthread_mutex_unlock(&d->irq_lock);
}

static unsigned msix_subregions(void *opaque, struct io_subregion *out, unsigned max)
{
	struct pci_dev *d = opaque;
	if (max < 2)
		return 0;
	out[0] =
	    (struct io_subregion){.offset = 0, .len = d->msix_vecs * 16u, .name = "msix-table"};
	out[1] = (struct io_subregion){
	    .offset = MSIX_PBA_OFFSET, .len = (d->msix_vecs + 63) / 64 * 8, .name = "msix-pba"};
	return 2;
}

static const struct io_ops msix_ops = {
    .read = msix_read, .write = msix_write, .subregions = msix_subregions};

int pci_dev_init_msix(struct pci_dev *d, unsigned nvec, unsigned bar_idx)
{
	if (nvec == 0 || nvec > PCI_MSIX_MAX_VEC || d->msix_vecs)
		return -EINVAL;
	int ret = pci_dev_add_bar(d, bar_idx, PCI_BAR_MEM32, false, MSIX_BAR_SIZE, &msix_ops, d,
				  "msix-table");
	if (ret)
		return ret;
	int cap = pci_dev_add_cap(d, PCI_CAP_ID_MSIX, 12);
	if (cap < 0)
		return cap;
	d->msix_vecs = nvec;
	d->msix_cap = (uint8_t)cap;
	d->msix_bar = bar_idx;
	pci_cfg_set16(d->cfg, cap + 2, (uint16_t)(nvec - 1));
	pci_cfg_set16(d->wmask, cap + 2, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_MASK);
	pci_cfg_set32(d->cfg, cap + 4, bar_idx);		   /* table at offset 0 */
	pci_cfg_set32(d->cfg, cap + 8, MSIX_PBA_OFFSET | bar_idx); /* PBA */
	for (unsigned v = 0; v < nvec; v++)
		d->msix_table[v * 16 + 12] = MSIX_ENTRY_MASKED;
	return 0;
}

bool pci_msix_enabled(struct pci_dev *d)
{
	pthread_mutex_lock(&d->irq_lock);
	bool on = d->msix_enabled;
	pthread_mutex_unlock(&d->irq_lock);
	return on;
}

bool pci_msix_notify(struct pci_dev *d, unsigned vec)
{
	pthread_mutex_lock(&d->irq_lock);
	bool ok = d->msix_enabled && vec < d->msix_vecs;
	if (ok) {
		if (d->msix_masked || (get32(d->msix_table, vec * 16 + 12) & MSIX_ENTRY_MASKED))
			d->msix_pba[vec / 64] |= 1ULL << (vec % 64);
		else
			msix_send(d, vec);
	}
	pthread_mutex_unlock(&d->irq_lock);
	return ok;
}

void pci_intx_set(struct pci_dev *d, bool level)
{
	pthread_mutex_lock(&d->irq_lock);
	d->intx_level = level;
	intx_apply(d);
	pthread_mutex_unlock(&d->irq_lock);
}

/* --- host -------------------------------------------------------------------------------- */

int pci_host_init(struct pci_host *h, struct io_bus *pio, struct io_bus *mmio,
		  struct irq_router *irq, uint64_t ecam_base, unsigned buses)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	h->pio = pio;
	h->mmio = mmio;
	h->irq = irq;
	h->next_io = 0xc000;
	int ret = io_bus_register(pio, 0xcf8, 4, &cfg_addr_ops, h, "pci-conf-idx");
	if (ret < 0)
		return ret;
	ret = io_bus_register(pio, 0xcfc, 4, &cfg_data_ops, h, "pci-conf-data");
	if (ret < 0)
		return ret;
	if (ecam_base) {
		if (buses == 0 || buses > 256)
			return -EINVAL;
		ret = io_bus_register(mmio, ecam_base, (uint64_t)buses * PCI_ECAM_BUS_SZ, &ecam_ops,
				      h, "pcie-mmcfg-mmio");
		if (ret < 0)
			return ret;
		h->ecam_base = ecam_base;
		h->ecam_buses = buses;
	}
	/* Host bridge: Red Hat's "QEMU PCIe host bridge" id, class 06.00 (host bridge). */
	pci_dev_init(&h->bridge, "pci-host", 0x1b36, 0x0008, 0x060000, 0);
	pci_cfg_set16(h->bridge.wmask, PCI_COMMAND, 0);
	h->bridge.wmask[PCI_INTERRUPT_LINE] = 0;
	memcpy(h->bridge.cfg_reset, h->bridge.cfg, PCI_CFG_SIZE);
	h->bridge.host = h;
	h->devs[0] = &h->bridge;
	return 0;
}

void pci_dev_destroy(struct pci_dev *d)
{
	pci_irqfd_release(d);
	struct pci_host *h = d->host;
	if (h) {
		pthread_mutex_lock(&h->lock);
		if (d->slot < PCI_MAX_DEVS && h->devs[d->slot] == d)
			h->devs[d->slot] = NULL;
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_destroy(&d->irq_lock);
}

void pci_host_destroy(struct pci_host *h)
{
	/* Devices still on the bus (the bridge, or ones their owner did not destroy). */
	for (unsigned s = 0; s < PCI_MAX_DEVS; s++) {
		if (!h->devs[s])
			continue;
		pci_irqfd_release(h->devs[s]);
		pthread_mutex_destroy(&h->devs[s]->irq_lock);
	}
	pthread_mutex_destroy(&h->lock);
}

int pci_host_add(struct pci_host *h, struct pci_dev *d, unsigned slot, uint64_t *next_mmio)
{
	if (slot == 0 || slot >= PCI_MAX_DEVS)
		return -EINVAL;
	if (h->devs[slot])
		return -EBUSY;
	d->host = h;
	d->slot = slot;
	d->gsi = pci_slot_gsi(slot, 0);
	d->cfg[PCI_INTERRUPT_PIN] = 1; /* INTA# */
	d->cfg[PCI_INTERRUPT_LINE] = (uint8_t)d->gsi;
	/* Assign BARs, largest first so that alignment wastes nothing. */
	for (;;) {
		int best = -1;
		for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
			struct pci_bar *b = &d->bars[i];
			if (b->type == PCI_BAR_NONE || bar_address(d, i))
				continue;
			if (best < 0 || b->size > d->bars[best].size)
				best = (int)i;
		}
		if (best < 0)
			break;
		struct pci_bar *b = &d->bars[best];
		unsigned off = PCI_BAR0 + 4 * (unsigned)best;
		uint64_t addr;
		if (b->type == PCI_BAR_IO) {
			addr = (h->next_io + b->size - 1) & ~(b->size - 1);
			h->next_io = (uint16_t)(addr + b->size);
		} else {
			addr = (*next_mmio + b->size - 1) & ~(b->size - 1);
			*next_mmio = addr + b->size;
		}
		pci_cfg_set32(d->cfg, off, get32(d->cfg, off) | (uint32_t)addr);
		if (b->type == PCI_BAR_MEM64)
			pci_cfg_set32(d->cfg, off + 4, (uint32_t)(addr >> 32));
	}
	memcpy(d->cfg_reset, d->cfg, PCI_CFG_SIZE);
	pthread_mutex_lock(&h->lock);
	h->devs[slot] = d;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

static void dev_reset(struct pci_dev *d)
{
	pci_irqfd_release(d); /* the VM the fds were bound to is about to go */
	pthread_mutex_lock(&d->irq_lock);
	memcpy(d->cfg, d->cfg_reset, PCI_CFG_SIZE);
	memset(d->msix_pba, 0, sizeof(d->msix_pba));
	memset(d->msix_table, 0, sizeof(d->msix_table));
	for (unsigned v = 0; v < d->msix_vecs; v++)
		d->msix_table[v * 16 + 12] = MSIX_ENTRY_MASKED;
	d->msix_enabled = d->msix_masked = false;
	d->intx_level = false;
	intx_apply(d);
	pthread_mutex_unlock(&d->irq_lock);
	bars_update(d);
}

void pci_host_reset(struct pci_host *h)
{
	pthread_mutex_lock(&h->lock);
	h->config_address = 0;
	for (unsigned s = 0; s < PCI_MAX_DEVS; s++)
		if (h->devs[s])
			dev_reset(h->devs[s]);
	pthread_mutex_unlock(&h->lock);
}

void pci_host_attach_irqfds(struct pci_host *h)
{
	pthread_mutex_lock(&h->lock);
	for (unsigned s = 1; s < PCI_MAX_DEVS; s++)
		if (h->devs[s])
			pci_irqfd_attach_intx(h->devs[s]);
	pthread_mutex_unlock(&h->lock);
}

/* --- save / load ------------------------------------------------------------------------- */

#define PCI_STATE_VERSION 1

int pci_dev_save(struct pci_dev *d, struct state_buf *s)
{
	state_put_u8(s, PCI_STATE_VERSION);
	state_put_bytes(s, d->cfg, PCI_CFG_SIZE);
	pthread_mutex_lock(&d->irq_lock);
	state_put_u8(s, d->intx_level);
	state_put_u32(s, d->msix_vecs);
	state_put_bytes(s, d->msix_table, d->msix_vecs * 16u);
	for (unsigned i = 0; i < PCI_MSIX_MAX_VEC / 64; i++)
		state_put_u64(s, d->msix_pba[i]);
	pthread_mutex_unlock(&d->irq_lock);
	return state_status(s);
}

int pci_dev_load(struct pci_dev *d, struct state_buf *s)
{
	uint8_t cfg[PCI_CFG_SIZE], table[PCI_MSIX_MAX_VEC * 16];
	uint64_t pba[PCI_MSIX_MAX_VEC / 64];
	if (state_get_u8(s) != PCI_STATE_VERSION)
		return -EINVAL;
	state_get_bytes(s, cfg, sizeof(cfg));
	bool level = state_get_u8(s);
	uint32_t nvec = state_get_u32(s);
	if (state_status(s) || nvec != d->msix_vecs)
		return -EINVAL;
	state_get_bytes(s, table, nvec * 16u);
	for (unsigned i = 0; i < PCI_MSIX_MAX_VEC / 64; i++)
		pba[i] = state_get_u64(s);
	if (state_status(s))
		return -EINVAL;
	/* Read-only bytes come from the device model, not from the stream. */
	pthread_mutex_lock(&d->irq_lock);
	for (unsigned i = 0; i < PCI_CFG_SIZE; i++)
		d->cfg[i] = (uint8_t)((d->cfg_reset[i] & ~d->wmask[i]) | (cfg[i] & d->wmask[i]));
	memcpy(d->msix_table, table, nvec * 16u);
	memcpy(d->msix_pba, pba, sizeof(pba));
	d->intx_level = level;
	pthread_mutex_unlock(&d->irq_lock);
	bars_update(d);
	msix_ctrl_update(d);
	pthread_mutex_lock(&d->irq_lock);
	intx_apply(d);
	pthread_mutex_unlock(&d->irq_lock);
	return 0;
}

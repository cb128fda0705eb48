/* PCI host bridge and devices on bus 0: configuration space (0xCF8/0xCFC and ECAM), BARs
 * mapped on the buses while the command register enables decoding, a capability list,
 * INTx lines and MSI-X.
 *
 * PCI Local Bus Specification 3.0 (6.1 header, 6.2.5 BARs, 6.7 capabilities, 6.8.2 MSI-X),
 * PCI Express Base 4.0 7.2.2 (ECAM). Only bus 0, function 0 of each device exists; reads of
 * anything else return all ones, as a bus with no device answering does.
 *
 * Locking: config-space accesses come from vCPU threads and are serialised by the host's
 * lock. MSI-X state has its own lock per device because devices signal vectors from their
 * iothreads while a vCPU writes the table.
 */
#ifndef KESTREL_HW_PCI_H
#define KESTREL_HW_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/io_bus.h"
#include "core/irq.h"
#include "core/state.h"

#define PCI_CFG_SIZE	 256
#define PCI_MAX_DEVS	 32
#define PCI_NUM_BARS	 6
#define PCI_ECAM_BUS_SZ	 (1u << 20)
#define PCI_MSIX_MAX_VEC 128 /* table in the first 2 KiB of its BAR, PBA at 0x800 */

/* Config-space registers (type 0 header) */
#define PCI_VENDOR_ID	   0x00
#define PCI_DEVICE_ID	   0x02
#define PCI_COMMAND	   0x04
#define PCI_STATUS	   0x06
#define PCI_REVISION	   0x08
#define PCI_CLASS_PROG	   0x09
#define PCI_HEADER_TYPE	   0x0e
#define PCI_BAR0	   0x10
#define PCI_SUBSYS_VENDOR  0x2c
#define PCI_SUBSYS_ID	   0x2e
#define PCI_CAP_PTR	   0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN  0x3d

#define PCI_CMD_IO	     0x0001
#define PCI_CMD_MEM	     0x0002
#define PCI_CMD_MASTER	     0x0004
#define PCI_CMD_INTX_DISABLE 0x0400
#define PCI_STATUS_INTX	     0x0008
#define PCI_STATUS_CAP_LIST  0x0010

#define PCI_CAP_ID_MSIX	  0x11
#define PCI_CAP_ID_VENDOR 0x09

#define PCI_MSIX_CTRL_ENABLE 0x8000
#define PCI_MSIX_CTRL_MASK   0x4000

#define PCI_INTX_GSI_BASE 16 /* INTx lines: IOAPIC inputs 16-23 */
#define PCI_INTX_GSI_NUM  8

enum pci_bar_type { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar {
	enum pci_bar_type type;
	bool prefetch;
	uint64_t size; /* power of two: >= 16 for memory, >= 4 for I/O */
	const struct io_ops *ops;
	void *opaque;
	const char *name;
	int handle;	 /* on the bus while > 0 */
	uint64_t mapped; /* address where it is mapped while handle > 0 */
};

struct pci_dev;

struct pci_dev_ops {
	/* Optional: called after a config write was applied (the bytes are in cfg[]). */
	void (*config_write)(struct pci_dev *d, unsigned off, unsigned size);
	/* Optional: may replace *val, the bytes [off, off+size) about to be returned. */
	void (*config_read)(struct pci_dev *d, unsigned off, unsigned size, uint32_t *val);
	/* Optional: BAR `bar` stops decoding at addr (mapped false) or starts at addr (true). */
	void (*bar_moved)(struct pci_dev *d, unsigned bar, bool mapped, uint64_t addr);
};

struct pci_host;

/* The interrupt fast path a machine may offer (KVM's irqfd; hw/pci_irqfd.c uses it): an MSI-X
 * vector becomes an eventfd bound to a GSI routed to its message, INTx an eventfd bound
 * level-triggered to the pin's GSI with a resample eventfd the guest's EOI signals. Every op
 * returns 0 (msi_route: the GSI) or -errno; -ENOTSUP when the accelerator has no such thing,
 * and the devices then keep to irq_line_set()/msi_send(). */
struct pci_irqfd_ops {
	/* Route (addr, data) to a GSI: gsi < 0 allocates one, else it is updated. */
	int (*msi_route)(void *opaque, int gsi, uint64_t addr, uint32_t data);
	void (*msi_route_free)(void *opaque, int gsi);
	int (*irqfd)(void *opaque, unsigned gsi, int fd, int resample_fd, bool assign);
	/* Main thread only: call cb(arg, events) there whenever fd is readable / stop. */
	int (*watch)(void *opaque, int fd, void (*cb)(void *arg, uint32_t events), void *arg);
	void (*unwatch)(void *opaque, int fd);
};

struct pci_dev {
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];	 /* writable bits */
	uint8_t cfg_reset[PCI_CFG_SIZE]; /* cfg as "firmware" left it: restored at reset */
	uint8_t next_cap;		 /* where the next capability goes */
	uint8_t last_cap;		 /* offset of the last capability, 0 if none */
	struct pci_bar bars[PCI_NUM_BARS];
	unsigned slot;
	const char *name;
	const struct pci_dev_ops *ops;
	void *opaque;
	struct pci_host *host;

	/* INTx */
	unsigned gsi;
	bool intx_level; /* the device's wish; the line is also gated by INTX_DISABLE */
	bool intx_out;	 /* what was last put on the line */

	/* MSI-X */
	pthread_mutex_t irq_lock; /* INTx and MSI-X state (iothreads signal, vCPUs program) */
	unsigned msix_vecs;	  /* 0: no MSI-X */
	uint8_t msix_cap;
	unsigned msix_bar;
	uint8_t msix_table[PCI_MSIX_MAX_VEC * 16];
	uint64_t msix_pba[PCI_MSIX_MAX_VEC / 64];
	bool msix_enabled, msix_masked; /* copies of the control bits, under irq_lock */

	/* irqfd fast path (hw/pci_irqfd.c), under irq_lock; -1: not set up */
	int msix_fd[PCI_MSIX_MAX_VEC];
	int msix_gsi[PCI_MSIX_MAX_VEC];
	uint64_t msix_stale[PCI_MSIX_MAX_VEC / 64]; /* vector's address/data changed since routed */
	bool irqfd_off;				    /* setting one up failed: exits from now on */
	bool irqfd_said;			    /* the -v line about MSI-X irqfds was printed */
	int intx_fd, intx_resample_fd;
};

struct pci_host {
	pthread_mutex_t lock;
	struct io_bus *pio, *mmio;
	struct irq_router *irq;
	uint64_t ecam_base; /* 0: no ECAM */
	unsigned ecam_buses;
	uint32_t config_address; /* 0xcf8 */
	uint16_t next_io;	 /* where the next I/O BAR goes */
	struct pci_dev *devs[PCI_MAX_DEVS];
	struct pci_dev bridge; /* 00:00.0 */
	/* Optional doorbell fast path (KVM ioeventfd): a guest write of len bytes to addr
	 * signals fd without an exit. Returns 0 or -errno; NULL: not available. */
	int (*ioeventfd)(void *opaque, uint64_t addr, unsigned len, int fd, bool assign);
	void *ioeventfd_opaque;
	/* Optional interrupt fast path (KVM irqfd); NULL: not available. */
	const struct pci_irqfd_ops *irqfd;
	void *irqfd_opaque;
};

/* The host bridge registers 0xcf8/0xcfc on pio and, if ecam_base, ECAM for `buses` buses on
 * mmio; it is device 00:00.0 itself. Returns 0 or -errno. */
int pci_host_init(struct pci_host *h, struct io_bus *pio, struct io_bus *mmio,
		  struct irq_router *irq, uint64_t ecam_base, unsigned buses)
    __attribute__((warn_unused_result));
void pci_host_destroy(struct pci_host *h);
/* Take a device off its host and release what it holds (irqfds, locks); before its memory
 * goes. Its BARs stay on the buses, which are destroyed after the devices. */
void pci_dev_destroy(struct pci_dev *d);
/* Put every device back as firmware left it (BARs assigned, decoding off, MSI-X off). */
void pci_host_reset(struct pci_host *h);
/* Main thread, once the accelerator's VM exists (at boot and after each reset): bind every
 * device's INTx to a level-triggered irqfd with resamplefd where h->irqfd allows. MSI-X
 * vectors get theirs on first use. pci_host_reset() releases both. */
void pci_host_attach_irqfds(struct pci_host *h);
/* The GSI a slot's INTA# is wired to (the _PRT routes follow the same rule). */
unsigned pci_slot_gsi(unsigned slot, unsigned pin);

/* Config space as the CPU sees it: bus/dev/fn/offset; unknown functions read all ones. */
uint32_t pci_host_cfg_read(struct pci_host *h, unsigned bus, unsigned devfn, unsigned off,
			   unsigned size);
void pci_host_cfg_write(struct pci_host *h, unsigned bus, unsigned devfn, unsigned off,
			unsigned size, uint32_t val);

/* Device set-up, before pci_host_add(). */
void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint8_t revision);
void pci_dev_set_subsys(struct pci_dev *d, uint16_t vendor, uint16_t id);
int pci_dev_add_bar(struct pci_dev *d, unsigned idx, enum pci_bar_type type, bool prefetch,
		    uint64_t size, const struct io_ops *ops, void *opaque, const char *name)
    __attribute__((warn_unused_result));
/* Appends a capability of `len` bytes (id, next, then len-2 bytes the caller fills in
 * d->cfg and, where writable, d->wmask). Returns its offset or -ENOSPC. */
int pci_dev_add_cap(struct pci_dev *d, uint8_t id, unsigned len);
/* MSI-X with nvec vectors, the table at offset 0 of BAR bar_idx (a 4 KiB 32-bit memory BAR
 * the PCI code creates) and the PBA at 0x800. Returns 0 or -errno. */
int pci_dev_init_msix(struct pci_dev *d, unsigned nvec, unsigned bar_idx)
    __attribute__((warn_unused_result));
/* Plug at slot (1-31); assigns BARs from *next_mmio (advanced, kept aligned) like firmware.
 * The devices must outlive the host. */
int pci_host_add(struct pci_host *h, struct pci_dev *d, unsigned slot, uint64_t *next_mmio)
    __attribute__((warn_unused_result));

/* Interrupts from the device. */
void pci_intx_set(struct pci_dev *d, bool level);
bool pci_msix_enabled(struct pci_dev *d);
/* Deliver (or mark pending if masked) vector `vec`; false if MSI-X is off or vec is
 * out of range, so the caller may fall back to INTx. */
bool pci_msix_notify(struct pci_dev *d, unsigned vec);

/* Read-modify helpers for devices' own config bytes. */
static inline uint16_t pci_cfg_get16(const struct pci_dev *d, unsigned off)
{
	return (uint16_t)(d->cfg[off] | d->cfg[off + 1] << 8);
}
static inline void pci_cfg_set16(uint8_t *p, unsigned off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}
static inline void pci_cfg_set32(uint8_t *p, unsigned off, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[off + i] = (uint8_t)(v >> (8 * i));
}

int pci_dev_save(struct pci_dev *d, struct state_buf *s);
/* Restores config space and MSI-X state and remaps BARs. */
int pci_dev_load(struct pci_dev *d, struct state_buf *s);

#endif

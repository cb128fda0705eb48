/* Virtio devices over the modern (1.x) PCI transport.
 *
 * Virtio 1.2 section 2 (device status, feature bits, virtqueues) and 4.1 (virtio over PCI:
 * vendor capabilities 4.1.4, common configuration 4.1.4.3, notifications 4.1.4.4, ISR
 * 4.1.4.5, device configuration 4.1.4.6, MSI-X vectors 4.1.5.1.2). Only VERSION_1 drivers are
 * accepted (no legacy I/O BAR).
 *
 * A device (virtio/blk.c, rng.c, console.c) embeds a struct virtio_pci, fills a struct
 * virtio_dev with its id, features, queues, config bytes and ops, and registers it on the
 * PCI host. Layout of BAR 4 (64-bit, 16 KiB, as QEMU lays it out): common config at 0x0000,
 * ISR at 0x1000, device config at 0x2000, notifications at 0x3000 (4 bytes per queue).
 * MSI-X table and PBA are in BAR 1.
 *
 * Locking: vdev->lock guards status, features, queue registers and the device's use of its
 * queues; a device holds it while it works on a queue. Queue notifications (a vCPU writing
 * the doorbell) call ops->notify WITHOUT the lock, so a device may just kick its iothread.
 * ops->reset is called WITH the lock held. The ISR and INTx line have their own lock.
 */
#ifndef KESTREL_VIRTIO_VIRTIO_H
#define KESTREL_VIRTIO_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/guest_mem.h"
#include "core/state.h"
#include "hw/pci.h"
#include "virtio/virtqueue.h"

#define VIRTIO_MAX_QUEUES 16

#define VIRTIO_ID_BLOCK	  2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG	  4

#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER	  0x02
#define VIRTIO_STATUS_DRIVER_OK	  0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED	  0x80

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

#define VIRTIO_PCI_VENDOR      0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define VIRTIO_PCI_CFG_BAR     4
#define VIRTIO_PCI_MSIX_BAR    1
#define VIRTIO_PCI_COMMON_OFF  0x0000
#define VIRTIO_PCI_ISR_OFF     0x1000
#define VIRTIO_PCI_DEVICE_OFF  0x2000
#define VIRTIO_PCI_NOTIFY_OFF  0x3000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_PCI_BAR_SIZE    0x4000
#define VIRTIO_PCI_CAP_COMMON  1
#define VIRTIO_PCI_CAP_NOTIFY  2
#define VIRTIO_PCI_CAP_ISR     3
#define VIRTIO_PCI_CAP_DEVICE  4
#define VIRTIO_PCI_CAP_PCI_CFG 5

/* Common configuration registers (4.1.4.3) */
#define VIRTIO_PCI_DFSELECT    0x00
#define VIRTIO_PCI_DF	       0x04
#define VIRTIO_PCI_GFSELECT    0x08
#define VIRTIO_PCI_GF	       0x0c
#define VIRTIO_PCI_MSIX_CONFIG 0x10
#define VIRTIO_PCI_NUM_QUEUES  0x12
#define VIRTIO_PCI_STATUS      0x14
#define VIRTIO_PCI_CFG_GEN     0x15
#define VIRTIO_PCI_Q_SELECT    0x16
#define VIRTIO_PCI_Q_SIZE      0x18
#define VIRTIO_PCI_Q_MSIX      0x1a
#define VIRTIO_PCI_Q_ENABLE    0x1c
#define VIRTIO_PCI_Q_NOFF      0x1e
#define VIRTIO_PCI_Q_DESCLO    0x20
#define VIRTIO_PCI_Q_DESCHI    0x24
#define VIRTIO_PCI_Q_AVAILLO   0x28
#define VIRTIO_PCI_Q_AVAILHI   0x2c
#define VIRTIO_PCI_Q_USEDLO    0x30
#define VIRTIO_PCI_Q_USEDHI    0x34
#define VIRTIO_PCI_COMMON_SIZE 0x38

struct virtio_dev;

struct virtio_dev_ops {
	/* A vCPU rang queue q's doorbell (lock NOT held). */
	void (*notify)(struct virtio_dev *vd, unsigned q);
	/* The driver reset the device (lock held): forget in-flight work. Optional. */
	void (*reset)(struct virtio_dev *vd);
	/* The driver set DRIVER_OK (lock held). Optional. */
	void (*driver_ok)(struct virtio_dev *vd);
	/* The driver wrote device config bytes [off, off+len) (lock held). Optional; without
	 * it device config is read-only. */
	void (*config_write)(struct virtio_dev *vd, unsigned off, unsigned len);
};

struct virtio_dev {
	pthread_mutex_t lock;
	const char *name;
	uint16_t device_id;
	const struct virtio_dev_ops *ops;
	void *opaque;
	const struct guest_mem *gm;

	uint64_t host_features, guest_features;
	uint32_t dfselect, gfselect;
	uint8_t status;
	uint8_t config_generation;
	uint16_t config_msix_vector;
	uint16_t queue_select;
	unsigned num_queues;
	struct virtqueue vqs[VIRTIO_MAX_QUEUES];
	uint8_t *config; /* the device's config structure, little-endian */
	unsigned config_len;
	/* An eventfd a doorbell may signal directly (the host's ioeventfd fast path) instead
	 * of calling ops->notify; -1: none. Set by the device before PCI registration. */
	int notify_fd;
};

struct virtio_pci {
	struct pci_dev pci;
	struct virtio_dev vdev;
	uint8_t pci_cfg_cap;
	unsigned ioeventfds;
	/* doorbells currently handled by the host's ioeventfd */ /* VIRTIO_PCI_CAP_PCI_CFG: a window into BAR 4 through config space */
	pthread_mutex_t isr_lock;
	uint8_t isr; /* bit 0 queue interrupt, bit 1 config change (INTx mode) */
};

/* Fill in the generic part; VERSION_1, INDIRECT_DESC and EVENT_IDX are added to features. */
void virtio_dev_init(struct virtio_dev *vd, const char *name, uint16_t device_id, uint64_t features,
		     unsigned num_queues, uint16_t queue_size, const struct guest_mem *gm,
		     uint8_t *config, unsigned config_len, const struct virtio_dev_ops *ops,
		     void *opaque);
/* Build the PCI function (ids, class, capabilities, BARs, MSI-X with one vector per queue
 * plus config) around vp->vdev, initialised before. Returns 0 or -errno. */
int virtio_pci_init(struct virtio_pci *vp, uint32_t class_code) __attribute__((warn_unused_result));
void virtio_pci_destroy(struct virtio_pci *vp);
/* Machine reset: the device as after power-on (calls ops->reset). */
void virtio_pci_reset(struct virtio_pci *vp);

static inline struct virtio_pci *virtio_pci_of(struct virtio_dev *vd)
{
	return (struct virtio_pci *)((char *)vd - __builtin_offsetof(struct virtio_pci, vdev));
}

/* Lock held. Interrupt the driver for queue q if it wants one (after vq_push calls). */
void virtio_notify_queue(struct virtio_dev *vd, unsigned q);
/* Lock held. A device error: NEEDS_RESET and a config-change interrupt; the device stops
 * using its queues until the driver resets it. */
void virtio_set_needs_reset(struct virtio_dev *vd);
/* Lock held. The device can process queues (DRIVER_OK and not NEEDS_RESET). */
bool virtio_dev_running(const struct virtio_dev *vd);
bool virtio_has_feature(const struct virtio_dev *vd, unsigned bit);

int virtio_dev_save(struct virtio_dev *vd, struct state_buf *s);
int virtio_dev_load(struct virtio_dev *vd, struct state_buf *s);
/* The whole function: PCI config and MSI-X state, virtio state, ISR. The device's own
 * config bytes and backends are rebuilt from the command line, not saved. */
int virtio_pci_save(struct virtio_pci *vp, struct state_buf *s);
int virtio_pci_load(struct virtio_pci *vp, struct state_buf *s);

#endif

/* Private to hw/pci.c and hw/pci_irqfd.c: the irqfd fast path behind PCI interrupts. */
#ifndef KESTREL_HW_PCI_IRQFD_H
#define KESTREL_HW_PCI_IRQFD_H

#include <stdbool.h>
#include <stdint.h>

struct pci_dev;

/* From pci_dev_init: no fds yet. */
void pci_irqfd_init(struct pci_dev *d);
/* irq_lock held. Deliver vector vec through its irqfd (set up on first use); false: not
 * possible, deliver it through an exit. */
bool pci_irqfd_msix(struct pci_dev *d, unsigned vec, uint64_t addr, uint32_t data);
/* irq_lock held. The guest rewrote vector vec's address or data. */
void pci_irqfd_msix_changed(struct pci_dev *d, unsigned vec);
/* irq_lock held. The INTx output changed to `out`; false: no irqfd, use irq_line_set(). */
bool pci_irqfd_intx(struct pci_dev *d, bool out);
/* Main thread, irq_lock NOT held. */
void pci_irqfd_attach_intx(struct pci_dev *d);
void pci_irqfd_release(struct pci_dev *d);

#endif

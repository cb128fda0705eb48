/* Interrupt routing. Devices raise interrupts only through irq_line_set() and msi_send();
 * the router behind them is the accelerator's (KVM's in-kernel irqchip) or the emulated
 * PIC/IOAPIC/LAPIC in emulated mode, or a recorder in device tests. */
#ifndef KESTREL_CORE_IRQ_H
#define KESTREL_CORE_IRQ_H

#include <stdbool.h>
#include <stdint.h>

struct irq_router_ops {
	/* Set the level of a GSI (ISA IRQs 0-15 are GSIs 0-15; PCI INTx lines 16-23). */
	void (*set_line)(void *opaque, unsigned gsi, bool level);
	/* Deliver a message-signalled interrupt (PCI MSI/MSI-X). */
	void (*send_msi)(void *opaque, uint64_t addr, uint32_t data);
};

struct irq_router {
	const struct irq_router_ops *ops;
	void *opaque;
};

static inline void irq_line_set(struct irq_router *r, unsigned gsi, bool level)
{
	if (r && r->ops && r->ops->set_line)
		r->ops->set_line(r->opaque, gsi, level);
}

/* An edge on an ISA line: raise, then lower. */
static inline void irq_pulse(struct irq_router *r, unsigned gsi)
{
	irq_line_set(r, gsi, true);
	irq_line_set(r, gsi, false);
}

static inline void msi_send(struct irq_router *r, uint64_t addr, uint32_t data)
{
	if (r && r->ops && r->ops->send_msi)
		r->ops->send_msi(r->opaque, addr, data);
}

#endif

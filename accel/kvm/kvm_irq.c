/* KVM interrupt routing and fast paths: the GSI routing table, ioeventfds, irqfds (with
 * resamplefd for level-triggered INTx) and GSI routes for MSI (api.rst: KVM_IOEVENTFD,
 * KVM_IRQFD, KVM_SET_GSI_ROUTING).
 *
 * The table is ours from VM creation on, because KVM's default one sends GSI 0 (where the
 * in-kernel PIT interrupts) to IOAPIC pin 0, while a PC wires the timer to pin 2 and our MADT
 * says so (interrupt source override IRQ0 -> GSI2): with the default, Linux reports "8254 timer
 * not connected to IO-APIC" and falls back to the 8259. So: ISA IRQs 0-15 go to the 8259s
 * (except the cascade, 2) and to the IOAPIC with IRQ 0 on pin 2; GSIs 16-23 to the IOAPIC;
 * MSI routes take GSIs from 24 up. KVM_SET_GSI_ROUTING replaces the whole table each time. */
#define LOG_SUBSYS "kvm"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm_int.h"
#include "util/log.h"

#define IOAPIC_PINS   24
#define PIC_IRQS      16
#define FIRST_MSI_GSI IOAPIC_PINS

static bool has_cap(struct kvm_state *k, long cap)
{
	return ioctl(k->vm_fd, KVM_CHECK_EXTENSION, cap) > 0;
}

int kvm_ioeventfd_set(struct accel *a, const struct accel_ioeventfd *ev, bool assign)
{
	struct kvm_state *k = a->priv;
	if (!has_cap(k, KVM_CAP_IOEVENTFD))
		return -ENOTSUP;
	struct kvm_ioeventfd io = {
	    .datamatch = ev->data,
	    .addr = ev->addr,
	    .len = ev->len,
	    .fd = ev->fd,
	    .flags = (ev->pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
		     (ev->match_data ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0) |
		     (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};
	if (ioctl(k->vm_fd, KVM_IOEVENTFD, &io) < 0) {
		int err = errno;
		log_warn("KVM_IOEVENTFD %s %s %#llx: %s", assign ? "assign" : "deassign",
			 ev->pio ? "port" : "mmio", (unsigned long long)ev->addr, strerror(err));
		return -err;
	}
	return 0;
}

int kvm_irqfd_set(struct accel *a, unsigned gsi, int fd, int resample_fd, bool assign)
{
	struct kvm_state *k = a->priv;
	if (!has_cap(k, KVM_CAP_IRQFD) || (resample_fd >= 0 && !has_cap(k, KVM_CAP_IRQFD_RESAMPLE)))
		return -ENOTSUP;
	struct kvm_irqfd irqfd = {.fd = fd, .gsi = gsi};
	if (!assign)
		irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
	else if (resample_fd >= 0) {
		irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
		irqfd.resamplefd = resample_fd;
	}
	if (ioctl(k->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		int err = errno;
		log_warn("KVM_IRQFD %s gsi %u: %s", assign ? "assign" : "deassign", gsi,
			 strerror(err));
		return -err;
	}
	return 0;
}

/* The routing table KVM gets: the default irqchip routes, then every MSI route in use. */
static int commit_routes(struct kvm_state *k)
{
	unsigned n = 0, max = PIC_IRQS + IOAPIC_PINS + KVM_MAX_MSI_ROUTES;
	struct kvm_irq_routing *r =
	    calloc(1, sizeof(*r) + max * sizeof(struct kvm_irq_routing_entry));
	if (!r)
		return -ENOMEM;
	for (unsigned gsi = 0; gsi < IOAPIC_PINS; gsi++) {
		if (gsi < PIC_IRQS)
			r->entries[n++] = (struct kvm_irq_routing_entry){
			    .gsi = gsi,
			    .type = KVM_IRQ_ROUTING_IRQCHIP,
			    .u.irqchip = {gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
					  gsi % 8},
			};
		r->entries[n++] = (struct kvm_irq_routing_entry){
		    .gsi = gsi,
		    .type = KVM_IRQ_ROUTING_IRQCHIP,
		    .u.irqchip = {KVM_IRQCHIP_IOAPIC, gsi},
		};
	}
	for (unsigned i = 0; i < KVM_MAX_MSI_ROUTES; i++) {
		if (!k->msi_routes[i].used)
			continue;
		r->entries[n++] = (struct kvm_irq_routing_entry){
		    .gsi = FIRST_MSI_GSI + i,
		    .type = KVM_IRQ_ROUTING_MSI,
		    .u.msi = {.address_lo = (uint32_t)k->msi_routes[i].addr,
			      .address_hi = (uint32_t)(k->msi_routes[i].addr >> 32),
			      .data = k->msi_routes[i].data},
		};
	}
	r->nr = n;
	int ret = ioctl(k->vm_fd, KVM_SET_GSI_ROUTING, r) < 0 ? -errno : 0;
	if (ret)
		log_warn("KVM_SET_GSI_ROUTING with %u routes: %s", n, strerror(-ret));
	free(r);
	return ret;
}

int kvm_routing_init(struct kvm_state *k)
{
	if (!has_cap(k, KVM_CAP_IRQ_ROUTING))
		return 0; /* keep KVM's defaults; the timer falls back to the 8259 */
	pthread_mutex_lock(&k->routes_lock);
	int ret = commit_routes(k);
	pthread_mutex_unlock(&k->routes_lock);
	return ret;
}

int kvm_msi_route_set(struct accel *a, int gsi, uint64_t addr, uint32_t data)
{
	struct kvm_state *k = a->priv;
	if (!has_cap(k, KVM_CAP_IRQ_ROUTING))
		return -ENOTSUP;
	pthread_mutex_lock(&k->routes_lock);
	int slot = gsi - FIRST_MSI_GSI, ret;
	if (gsi < 0) {
		for (slot = 0; slot < KVM_MAX_MSI_ROUTES && k->msi_routes[slot].used; slot++)
			;
		if (slot == KVM_MAX_MSI_ROUTES) {
			pthread_mutex_unlock(&k->routes_lock);
			return -ENOSPC;
		}
	} else if (slot < 0 || slot >= KVM_MAX_MSI_ROUTES || !k->msi_routes[slot].used) {
		pthread_mutex_unlock(&k->routes_lock);
		return -EINVAL;
	}
	struct kvm_msi_route old = k->msi_routes[slot];
	k->msi_routes[slot] = (struct kvm_msi_route){.used = true, .addr = addr, .data = data};
	ret = commit_routes(k);
	if (ret)
		k->msi_routes[slot] = old;
	pthread_mutex_unlock(&k->routes_lock);
	return ret ? ret : FIRST_MSI_GSI + slot;
}

void kvm_msi_route_free(struct accel *a, int gsi)
{
	struct kvm_state *k = a->priv;
	int slot = gsi - FIRST_MSI_GSI;
	if (slot < 0 || slot >= KVM_MAX_MSI_ROUTES)
		return;
	pthread_mutex_lock(&k->routes_lock);
	if (k->msi_routes[slot].used) {
		k->msi_routes[slot].used = false;
		commit_routes(k);
	}
	pthread_mutex_unlock(&k->routes_lock);
}

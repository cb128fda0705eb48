/* PCI interrupts through the accelerator's irqfds (include/hw/pci.h, struct pci_irqfd_ops).
 *
 * MSI-X: each vector gets, on its first delivery, an eventfd bound to a GSI whose route holds
 * the vector's address/data; delivering is then one eventfd write from whichever thread
 * completes the work (an iothread), with no ioctl and no vCPU exit. A guest rewrite of the
 * vector marks the route stale; it is updated before the next delivery, so a message always
 * goes where the table says at the time it is sent. Masking stays ours (the PBA), as before.
 *
 * INTx: the pin's GSI gets an eventfd bound level-triggered with a resample eventfd (KVM's
 * KVM_IRQFD_FLAG_RESAMPLE). Writing the eventfd asserts the line; the line drops by itself when
 * the guest EOIs the interrupt, and the resample fd tells us so: if the device still asserts
 * (the driver has not read the ISR yet, or new work came), we assert again. Deasserting is a
 * no-op, as on real level-triggered hardware seen through an EOI-resampled line.
 *
 * Any failure (no irqfd in this accelerator, no GSI left) turns the device back to
 * irq_line_set()/msi_send() for good, which is also what emulated mode and qtest use. */
#define LOG_SUBSYS "pci"
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "hw/pci.h"
#include "pci_irqfd.h"
#include "util/log.h"

static void signal_fd(int fd)
{
	uint64_t one = 1;
	if (write(fd, &one, sizeof(one)) != sizeof(one))
		log_warn("irqfd write: %s", strerror(errno));
}

void pci_irqfd_init(struct pci_dev *d)
{
	for (unsigned v = 0; v < PCI_MSIX_MAX_VEC; v++)
		d->msix_fd[v] = d->msix_gsi[v] = -1;
	d->intx_fd = d->intx_resample_fd = -1;
}

static const struct pci_irqfd_ops *ops_of(struct pci_dev *d, void **opaque)
{
	if (!d->host || !d->host->irqfd || d->irqfd_off)
		return NULL;
	*opaque = d->host->irqfd_opaque;
	return d->host->irqfd;
}

static void give_up(struct pci_dev *d, const char *what, int err)
{
	d->irqfd_off = true;
	/* -ENOTSUP is the normal case without KVM: not worth more than a debug line. */
	if (err == -ENOTSUP)
		log_debug("%s: no irqfd here, interrupts through exits", d->name);
	else
		log_info("%s: %s: %s; interrupts through exits from now on", d->name, what,
			 strerror(-err));
}

static int new_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

bool pci_irqfd_msix(struct pci_dev *d, unsigned vec, uint64_t addr, uint32_t data)
{
	void *o;
	const struct pci_irqfd_ops *ops = ops_of(d, &o);
	if (!ops)
		return false;
	uint64_t bit = 1ULL << (vec % 64);
	if (d->msix_fd[vec] < 0) {
		int fd = new_eventfd();
		if (fd < 0) {
			give_up(d, "eventfd", fd);
			return false;
		}
		int gsi = ops->msi_route(o, -1, addr, data);
		int ret = gsi < 0 ? gsi : ops->irqfd(o, (unsigned)gsi, fd, -1, true);
		if (ret) {
			if (gsi >= 0)
				ops->msi_route_free(o, gsi);
			close(fd);
			give_up(d, "MSI-X irqfd", ret);
			return false;
		}
		d->msix_fd[vec] = fd;
		d->msix_gsi[vec] = gsi;
		d->msix_stale[vec / 64] &= ~bit;
		if (!d->irqfd_said) {
			d->irqfd_said = true;
			log_info("%s: MSI-X vectors on irqfds (vector %u: GSI %d)", d->name, vec,
				 gsi);
		}
	} else if (d->msix_stale[vec / 64] & bit) {
		int ret = ops->msi_route(o, d->msix_gsi[vec], addr, data);
		if (ret < 0)
			return false; /* this one through an exit; retried next time */
		d->msix_stale[vec / 64] &= ~bit;
	}
	signal_fd(d->msix_fd[vec]);
	return true;
}

void pci_irqfd_msix_changed(struct pci_dev *d, unsigned vec)
{
	if (d->msix_fd[vec] >= 0)
		d->msix_stale[vec / 64] |= 1ULL << (vec % 64);
}

bool pci_irqfd_intx(struct pci_dev *d, bool out)
{
	if (d->intx_fd < 0)
		return false;
	if (out)
		signal_fd(d->intx_fd);
	return true;
}

/* Main thread: the guest EOI'd the line, which KVM then lowered. */
static void intx_resampled(void *arg, uint32_t events)
{
	struct pci_dev *d = arg;
	(void)events;
	pthread_mutex_lock(&d->irq_lock);
	if (d->intx_resample_fd >= 0) {
		eventfd_drain(d->intx_resample_fd);
		if (d->intx_out)
			signal_fd(d->intx_fd);
	}
	pthread_mutex_unlock(&d->irq_lock);
}

void pci_irqfd_attach_intx(struct pci_dev *d)
{
	void *o;
	const struct pci_irqfd_ops *ops = ops_of(d, &o);
	if (!ops || d->intx_fd >= 0 || !d->cfg[PCI_INTERRUPT_PIN])
		return;
	int fd = new_eventfd(), rfd = new_eventfd(), ret;
	if (fd < 0 || rfd < 0) {
		ret = fd < 0 ? fd : rfd;
		goto fail;
	}
	ret = ops->irqfd(o, d->gsi, fd, rfd, true);
	if (ret)
		goto fail;
	ret = ops->watch(o, rfd, intx_resampled, d);
	if (ret) {
		ops->irqfd(o, d->gsi, fd, rfd, false);
		goto fail;
	}
	log_info("%s: INTx on a resampled irqfd (GSI %u)", d->name, d->gsi);
	pthread_mutex_lock(&d->irq_lock);
	d->intx_fd = fd;
	d->intx_resample_fd = rfd;
	if (d->intx_out) { /* asserted the old way: move the level over to the irqfd */
		irq_line_set(d->host->irq, d->gsi, false);
		signal_fd(fd);
	}
	pthread_mutex_unlock(&d->irq_lock);
	return;
fail:
	if (fd >= 0)
		close(fd);
	if (rfd >= 0)
		close(rfd);
	give_up(d, "INTx irqfd", ret);
}

void pci_irqfd_release(struct pci_dev *d)
{
	void *o = d->host ? d->host->irqfd_opaque : NULL;
	const struct pci_irqfd_ops *ops = d->host ? d->host->irqfd : NULL;
	pthread_mutex_lock(&d->irq_lock);
	for (unsigned v = 0; v < PCI_MSIX_MAX_VEC; v++) {
		if (d->msix_fd[v] < 0)
			continue;
		if (ops) {
			ops->irqfd(o, (unsigned)d->msix_gsi[v], d->msix_fd[v], -1, false);
			ops->msi_route_free(o, d->msix_gsi[v]);
		}
		close(d->msix_fd[v]);
		d->msix_fd[v] = d->msix_gsi[v] = -1;
	}
	memset(d->msix_stale, 0, sizeof(d->msix_stale));
	if (d->intx_fd >= 0) {
		if (ops) {
			ops->unwatch(o, d->intx_resample_fd);
			ops->irqfd(o, d->gsi, d->intx_fd, d->intx_resample_fd, false);
		}
		close(d->intx_fd);
		close(d->intx_resample_fd);
		d->intx_fd = d->intx_resample_fd = -1;
	}
	/* A fresh VM comes with a fresh chance (the failure may have been a full table). */
	d->irqfd_off = false;
	d->irqfd_said = false;
	pthread_mutex_unlock(&d->irq_lock);
}

/* Device tests for the PCI host (hw/pci.c), driven through the port and MMIO buses with no
 * CPU: config cycles on 0xcf8/0xcfc and ECAM, BAR sizing and mapping, capability walk,
 * MSI-X table/PBA, INTx and save/load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "hw/pci.h"
#include "test_hw_common.h"

#define ECAM 0xe0000000ULL

struct msi_rec {
	unsigned n;
	uint64_t addr[8];
	uint32_t data[8];
	struct irq_rec lines;
};

static void rec_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct msi_rec *m = opaque;
	if (m->n < 8) {
		m->addr[m->n] = addr;
		m->data[m->n] = data;
	}
	m->n++;
}

static void rec_line(void *opaque, unsigned gsi, bool level)
{
	struct msi_rec *m = opaque;
	rec_set_line(&m->lines, gsi, level);
}

static const struct irq_router_ops msi_rec_ops = {.set_line = rec_line, .send_msi = rec_msi};

/* A BAR that remembers the last access. */
struct fake_bar {
	uint64_t last_off, last_val;
	unsigned reads, writes;
};

static uint64_t fake_read(void *opaque, uint64_t off, unsigned size)
{
	struct fake_bar *f = opaque;
	f->reads++;
	f->last_off = off;
	return 0x1234;
}

static void fake_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	struct fake_bar *f = opaque;
	f->writes++;
	f->last_off = off;
	f->last_val = v;
}

static const struct io_ops fake_ops = {.read = fake_read, .write = fake_write};

struct fixture {
	struct io_bus pio, mmio;
	struct irq_router irq;
	struct msi_rec rec;
	struct pci_host host;
	struct pci_dev dev;
	struct fake_bar bar0, bar2, bar5;
	uint64_t next_mmio;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	io_bus_init(&f->pio, "io");
	io_bus_init(&f->mmio, "memory");
	f->irq.ops = &msi_rec_ops;
	f->irq.opaque = &f->rec;
	assert_int_equal(pci_host_init(&f->host, &f->pio, &f->mmio, &f->irq, ECAM, 4), 0);
	pci_dev_init(&f->dev, "test-dev", 0x1af4, 0x1042, 0x018000, 1);
	pci_dev_set_subsys(&f->dev, 0x1af4, 0x1100);
	assert_int_equal(
	    pci_dev_add_bar(&f->dev, 0, PCI_BAR_MEM32, false, 0x1000, &fake_ops, &f->bar0, "bar0"),
	    0);
	assert_int_equal(
	    pci_dev_add_bar(&f->dev, 2, PCI_BAR_MEM64, true, 0x4000, &fake_ops, &f->bar2, "bar2"),
	    0);
	assert_int_equal(
	    pci_dev_add_bar(&f->dev, 5, PCI_BAR_IO, false, 0x20, &fake_ops, &f->bar5, "bar5"), 0);
	assert_int_equal(pci_dev_init_msix(&f->dev, 4, 1), 0);
	int cap = pci_dev_add_cap(&f->dev, PCI_CAP_ID_VENDOR, 16);
	assert_true(cap > 0);
	f->dev.cfg[cap + 2] = 16;
	f->next_mmio = 0xc0000000;
	assert_int_equal(pci_host_add(&f->host, &f->dev, 3, &f->next_mmio), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	pci_host_destroy(&f->host);
	io_bus_destroy(&f->pio);
	io_bus_destroy(&f->mmio);
	free(f);
	return 0;
}

static uint32_t cf8_read(struct fixture *f, unsigned dev, unsigned fn, unsigned reg, unsigned size)
{
	uint64_t v = 0;
	io_bus_write(&f->pio, 0xcf8, 4, 0x80000000u | dev << 11 | fn << 8 | (reg & 0xfc));
	io_bus_read(&f->pio, 0xcfc + (reg & 3), size, &v);
	return (uint32_t)v;
}

static void cf8_write(struct fixture *f, unsigned dev, unsigned reg, unsigned size, uint32_t v)
{
	io_bus_write(&f->pio, 0xcf8, 4, 0x80000000u | dev << 11 | (reg & 0xfc));
	io_bus_write(&f->pio, 0xcfc + (reg & 3), size, v);
}

static uint32_t ecam_read(struct fixture *f, unsigned bus, unsigned dev, unsigned reg,
			  unsigned size)
{
	uint64_t v = 0;
	io_bus_read(&f->mmio, ECAM + ((uint64_t)bus << 20 | dev << 15 | reg), size, &v);
	return (uint32_t)v;
}

static void ecam_write(struct fixture *f, unsigned dev, unsigned reg, unsigned size, uint32_t v)
{
	io_bus_write(&f->mmio, ECAM + (dev << 15 | reg), size, v);
}

static void config_cycles(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(cf8_read(f, 3, 0, 0, 4), 0x10421af4);
	assert_int_equal(cf8_read(f, 3, 0, 2, 2), 0x1042);
	assert_int_equal(cf8_read(f, 3, 0, 0x0b, 1), 0x01); /* class 01 */
	assert_int_equal(cf8_read(f, 3, 0, 0x2c, 4), 0x11001af4);
	assert_int_equal(cf8_read(f, 3, 0, PCI_INTERRUPT_PIN, 1), 1);
	assert_int_equal(cf8_read(f, 3, 0, PCI_INTERRUPT_LINE, 1), pci_slot_gsi(3, 0));
	/* Host bridge at 00:00.0; empty slots and other functions read all ones. */
	assert_int_equal(cf8_read(f, 0, 0, 0x0a, 2), 0x0600);
	assert_int_equal(cf8_read(f, 4, 0, 0, 4), 0xffffffffu);
	assert_int_equal(cf8_read(f, 3, 1, 0, 4), 0xffffffffu);
	assert_int_equal(cf8_read(f, 4, 0, 0, 2), 0xffff);
	/* The same through ECAM, including another bus (empty) and extended space. */
	assert_int_equal(ecam_read(f, 0, 3, 0, 4), 0x10421af4);
	assert_int_equal(ecam_read(f, 0, 3, 0x0e, 1), 0);
	assert_int_equal(ecam_read(f, 1, 3, 0, 4), 0xffffffffu);
	assert_int_equal(ecam_read(f, 0, 3, 0x100, 4), 0);
	/* Read-only registers ignore writes; with the enable bit clear, data reads ones. */
	cf8_write(f, 3, 0, 4, 0);
	assert_int_equal(cf8_read(f, 3, 0, 0, 4), 0x10421af4);
	uint64_t v;
	io_bus_write(&f->pio, 0xcf8, 4, 3 << 11);
	io_bus_read(&f->pio, 0xcfc, 4, &v);
	assert_int_equal(v, 0xffffffffu);
	io_bus_read(&f->pio, 0xcf8, 4, &v);
	assert_int_equal(v, 3 << 11);
}

static void bar_sizing(void **state)
{
	struct fixture *f = *state;
	/* Firmware-style assignment: 64-bit BAR2 (largest) first, then BAR0 and BAR1. */
	uint32_t b0 = cf8_read(f, 3, 0, PCI_BAR0, 4);
	uint32_t b2 = cf8_read(f, 3, 0, PCI_BAR0 + 8, 4);
	assert_int_equal(b2 & 0xf, 0xc); /* 64-bit prefetchable */
	assert_int_equal(b2 & ~0xfu, 0xc0000000u);
	assert_int_equal(cf8_read(f, 3, 0, PCI_BAR0 + 12, 4), 0);
	assert_int_equal(b0 & 0xf, 0);
	assert_int_equal(b0 & 0xfff, 0);
	assert_true((b0 & ~0xfu) >= 0xc0004000u);
	assert_int_equal(cf8_read(f, 3, 0, PCI_BAR0 + 20, 4) & 3, 1); /* I/O */

	cf8_write(f, 3, PCI_BAR0, 4, 0xffffffff);
	assert_int_equal(cf8_read(f, 3, 0, PCI_BAR0, 4), 0xfffff000u);
	cf8_write(f, 3, PCI_BAR0 + 8, 4, 0xffffffff);
	cf8_write(f, 3, PCI_BAR0 + 12, 4, 0xffffffff);
	assert_int_equal(cf8_read(f, 3, 0, PCI_BAR0 + 8, 4), 0xffffc00cu);
	assert_int_equal(cf8_read(f, 3, 0, PCI_BAR0 + 12, 4), 0xffffffffu);
	cf8_write(f, 3, PCI_BAR0 + 20, 4, 0xffffffff);
	assert_int_equal(cf8_read(f, 3, 0, PCI_BAR0 + 20, 4), 0xffffffe1u);
	/* Unused BARs read 0 whatever is written (BAR3 is BAR2's upper half, BAR4 unused). */
	cf8_write(f, 3, PCI_BAR0 + 16, 4, 0xffffffff);
	assert_int_equal(cf8_read(f, 3, 0, PCI_BAR0 + 16, 4), 0);
	/* Expansion ROM absent. */
	cf8_write(f, 3, 0x30, 4, 0xffffffff);
	assert_int_equal(cf8_read(f, 3, 0, 0x30, 4), 0);
	/* The sizing pattern is never mapped, even with decoding on. */
	cf8_write(f, 3, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_IO);
	assert_int_equal(f->dev.bars[0].handle, 0);
	assert_int_equal(f->dev.bars[2].handle, 0);
	assert_int_equal(f->dev.bars[5].handle, 0);
}

static void bar_mapping(void **state)
{
	struct fixture *f = *state;
	uint64_t v;
	uint32_t b0 = cf8_read(f, 3, 0, PCI_BAR0, 4) & ~0xfu;
	/* Decoding off: nothing answers. */
	assert_false(io_bus_read(&f->mmio, b0 + 8, 4, &v));
	cf8_write(f, 3, PCI_COMMAND, 2, PCI_CMD_MEM);
	assert_true(io_bus_read(&f->mmio, b0 + 8, 4, &v));
	assert_int_equal(v, 0x1234);
	assert_int_equal(f->bar0.last_off, 8);
	/* The guest moves BAR0: the old address goes dead, the new one answers. */
	cf8_write(f, 3, PCI_BAR0, 4, 0xd0000000);
	assert_false(io_bus_read(&f->mmio, b0 + 8, 4, &v));
	assert_true(io_bus_write(&f->mmio, 0xd0000010, 4, 77));
	assert_int_equal(f->bar0.last_off, 0x10);
	assert_int_equal(f->bar0.last_val, 77);
	/* 64-bit BAR above 4 GiB: low half first, then high half. */
	cf8_write(f, 3, PCI_BAR0 + 8, 4, 0x00000000);
	cf8_write(f, 3, PCI_BAR0 + 12, 4, 0x1);
	assert_true(io_bus_read(&f->mmio, 0x100000000ULL + 0x3ff8, 8, &v));
	assert_int_equal(f->bar2.last_off, 0x3ff8);
	/* I/O BAR decodes only with COMMAND.IO. */
	uint32_t io = cf8_read(f, 3, 0, PCI_BAR0 + 20, 4) & ~3u;
	assert_false(io_bus_read(&f->pio, io + 4, 1, &v));
	cf8_write(f, 3, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_IO);
	assert_true(io_bus_read(&f->pio, io + 4, 1, &v));
	assert_int_equal(f->bar5.last_off, 4);
	/* A 32-bit BAR at 0 is not an address. */
	cf8_write(f, 3, PCI_BAR0, 4, 0);
	assert_int_equal(f->dev.bars[0].handle, 0);
	/* Turning MEM off unmaps everything in memory space. */
	cf8_write(f, 3, PCI_COMMAND, 2, PCI_CMD_IO);
	assert_false(io_bus_read(&f->mmio, 0x100000000ULL, 4, &v));
	/* Reset: firmware addresses back, decoding off. */
	pci_host_reset(&f->host);
	assert_int_equal(cf8_read(f, 3, 0, PCI_BAR0, 4) & ~0xfu, b0);
	assert_int_equal(cf8_read(f, 3, 0, PCI_COMMAND, 2), 0);
	assert_false(io_bus_read(&f->pio, io + 4, 1, &v));
}

static void capability_walk(void **state)
{
	struct fixture *f = *state;
	assert_true(cf8_read(f, 3, 0, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	unsigned ptr = cf8_read(f, 3, 0, PCI_CAP_PTR, 1);
	uint8_t ids[8];
	unsigned n = 0;
	while (ptr && n < 8) {
		assert_int_equal(ptr & 3, 0);
		assert_true(ptr >= 0x40);
		ids[n++] = (uint8_t)ecam_read(f, 0, 3, ptr, 1);
		ptr = ecam_read(f, 0, 3, ptr + 1, 1);
	}
	assert_int_equal(n, 2);
	assert_int_equal(ids[0], PCI_CAP_ID_MSIX);
	assert_int_equal(ids[1], PCI_CAP_ID_VENDOR);
	/* Host bridge has no capabilities. */
	assert_int_equal(cf8_read(f, 0, 0, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
	/* A full config space refuses more. */
	struct pci_dev d;
	pci_dev_init(&d, "x", 1, 2, 0, 0);
	int last = 0, ret;
	while ((ret = pci_dev_add_cap(&d, 0x09, 64)) > 0)
		last = ret;
	assert_int_equal(ret, -ENOSPC);
	assert_int_equal(last, 0xc0);
	pthread_mutex_destroy(&d.irq_lock);
}

static void msix(void **state)
{
	struct fixture *f = *state;
	unsigned cap = cf8_read(f, 3, 0, PCI_CAP_PTR, 1);
	assert_int_equal(ecam_read(f, 0, 3, cap + 2, 2), 3); /* table size 4 */
	assert_int_equal(ecam_read(f, 0, 3, cap + 4, 4), 1); /* BIR 1, offset 0 */
	assert_int_equal(ecam_read(f, 0, 3, cap + 8, 4), 0x801);
	uint32_t tbl = cf8_read(f, 3, 0, PCI_BAR0 + 4, 4) & ~0xfu;
	ecam_write(f, 3, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_MASTER);
	uint64_t v;
	/* Entries start masked. */
	assert_true(io_bus_read(&f->mmio, tbl + 12, 4, &v));
	assert_int_equal(v, 1);
	/* Not enabled: notify refuses, the caller falls back to INTx. */
	assert_false(pci_msix_notify(&f->dev, 0));
	ecam_write(f, 3, cap + 2, 2, PCI_MSIX_CTRL_ENABLE);
	assert_true(pci_msix_enabled(&f->dev));
	/* Program vector 1 with a 64-bit write and a 32-bit data write. */
	io_bus_write(&f->mmio, tbl + 16, 8, 0xfee01000ULL);
	io_bus_write(&f->mmio, tbl + 24, 4, 0x4041);
	io_bus_read(&f->mmio, tbl + 16, 4, &v);
	assert_int_equal(v, 0xfee01000u);
	/* Masked: pending bit, no message. */
	assert_true(pci_msix_notify(&f->dev, 1));
	assert_int_equal(f->rec.n, 0);
	io_bus_read(&f->mmio, tbl + 0x800, 8, &v);
	assert_int_equal(v, 2);
	/* Unmask: the pending message goes out and the bit clears. */
	io_bus_write(&f->mmio, tbl + 28, 4, 0);
	assert_int_equal(f->rec.n, 1);
	assert_int_equal(f->rec.addr[0], 0xfee01000ULL);
	assert_int_equal(f->rec.data[0], 0x4041);
	io_bus_read(&f->mmio, tbl + 0x800, 8, &v);
	assert_int_equal(v, 0);
	assert_true(pci_msix_notify(&f->dev, 1));
	assert_int_equal(f->rec.n, 2);
	/* Function mask holds it; clearing the mask delivers. */
	ecam_write(f, 3, cap + 2, 2, PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_MASK);
	assert_true(pci_msix_notify(&f->dev, 1));
	assert_int_equal(f->rec.n, 2);
	ecam_write(f, 3, cap + 2, 2, PCI_MSIX_CTRL_ENABLE);
	assert_int_equal(f->rec.n, 3);
	/* Out-of-range vector, writes past the table and to the PBA are ignored. */
	assert_false(pci_msix_notify(&f->dev, 4));
	io_bus_write(&f->mmio, tbl + 64, 4, 0xdead);
	io_bus_write(&f->mmio, tbl + 0x800, 8, ~0ULL);
	io_bus_read(&f->mmio, tbl + 0x800, 8, &v);
	assert_int_equal(v, 0);
	io_bus_read(&f->mmio, tbl + 64, 4, &v);
	assert_int_equal(v, 0);
	/* Reserved vector-control bits read 0. */
	io_bus_write(&f->mmio, tbl + 12, 4, 0xfffffffe);
	io_bus_read(&f->mmio, tbl + 12, 4, &v);
	assert_int_equal(v, 0);
	/* Table size field is read-only. */
	ecam_write(f, 3, cap + 2, 2, PCI_MSIX_CTRL_ENABLE | 0x7ff);
	assert_int_equal(ecam_read(f, 0, 3, cap + 2, 2), PCI_MSIX_CTRL_ENABLE | 3);
}

static void intx(void **state)
{
	struct fixture *f = *state;
	unsigned gsi = pci_slot_gsi(3, 0);
	assert_true(gsi >= 16 && gsi < 24);
	pci_intx_set(&f->dev, true);
	assert_true(f->rec.lines.level[gsi]);
	assert_true(cf8_read(f, 3, 0, PCI_STATUS, 2) & PCI_STATUS_INTX);
	cf8_write(f, 3, PCI_COMMAND, 2, PCI_CMD_INTX_DISABLE);
	assert_false(f->rec.lines.level[gsi]);
	assert_true(cf8_read(f, 3, 0, PCI_STATUS, 2) & PCI_STATUS_INTX);
	cf8_write(f, 3, PCI_COMMAND, 2, 0);
	assert_true(f->rec.lines.level[gsi]);
	pci_intx_set(&f->dev, false);
	assert_false(f->rec.lines.level[gsi]);
	assert_false(cf8_read(f, 3, 0, PCI_STATUS, 2) & PCI_STATUS_INTX);
	/* Enabling MSI-X masks INTx. */
	unsigned cap = cf8_read(f, 3, 0, PCI_CAP_PTR, 1);
	pci_intx_set(&f->dev, true);
	ecam_write(f, 3, cap + 2, 2, PCI_MSIX_CTRL_ENABLE);
	assert_false(f->rec.lines.level[gsi]);
	ecam_write(f, 3, cap + 2, 2, 0);
	assert_true(f->rec.lines.level[gsi]);
}

/* A fake irqfd provider: records routes and bindings the way KVM would hold them. */
struct fake_irqfd {
	int next_gsi;
	uint64_t route_addr[64];
	uint32_t route_data[64];
	int bound_fd[64], resample_fd[64];
	int fail_routes; /* msi_route fails with -ENOSPC while set */
	void (*cb)(void *arg, uint32_t events);
	void *cb_arg;
	int watched_fd;
};

static int fake_msi_route(void *opaque, int gsi, uint64_t addr, uint32_t data)
{
	struct fake_irqfd *k = opaque;
	if (k->fail_routes)
		return -ENOSPC;
	if (gsi < 0)
		gsi = k->next_gsi++;
	k->route_addr[gsi] = addr;
	k->route_data[gsi] = data;
	return gsi;
}

static void fake_msi_route_free(void *opaque, int gsi)
{
	struct fake_irqfd *k = opaque;
	k->route_addr[gsi] = 0;
}

static int fake_bind(void *opaque, unsigned gsi, int fd, int resample_fd, bool assign)
{
	struct fake_irqfd *k = opaque;
	k->bound_fd[gsi] = assign ? fd : -1;
	k->resample_fd[gsi] = assign ? resample_fd : -1;
	return 0;
}

static int fake_watch(void *opaque, int fd, void (*cb)(void *arg, uint32_t events), void *arg)
{
	struct fake_irqfd *k = opaque;
	k->cb = cb;
	k->cb_arg = arg;
	k->watched_fd = fd;
	return 0;
}

static void fake_unwatch(void *opaque, int fd)
{
	struct fake_irqfd *k = opaque;
	if (k->watched_fd == fd)
		k->cb = NULL;
}

static const struct pci_irqfd_ops fake_irqfd_ops = {
    .msi_route = fake_msi_route,
    .msi_route_free = fake_msi_route_free,
    .irqfd = fake_bind,
    .watch = fake_watch,
    .unwatch = fake_unwatch,
};

/* How many times fd was signalled since the last call (0 if never). */
static uint64_t fd_count(int fd)
{
	uint64_t n = 0;
	if (fd < 0 || read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static void irqfd(void **state)
{
	struct fixture *f = *state;
	struct fake_irqfd k = {.next_gsi = 24, .watched_fd = -1};
	for (unsigned i = 0; i < 64; i++)
		k.bound_fd[i] = k.resample_fd[i] = -1;
	f->host.irqfd = &fake_irqfd_ops;
	f->host.irqfd_opaque = &k;
	unsigned cap = cf8_read(f, 3, 0, PCI_CAP_PTR, 1);
	uint32_t tbl = cf8_read(f, 3, 0, PCI_BAR0 + 4, 4) & ~0xfu;
	ecam_write(f, 3, PCI_COMMAND, 2, PCI_CMD_MEM | PCI_CMD_MASTER);
	ecam_write(f, 3, cap + 2, 2, PCI_MSIX_CTRL_ENABLE);
	io_bus_write(&f->mmio, tbl + 16, 8, 0xfee01000ULL);
	io_bus_write(&f->mmio, tbl + 24, 4, 0x4041);
	io_bus_write(&f->mmio, tbl + 28, 4, 0);

	/* First delivery: a GSI routed to the vector's message, bound to an eventfd that is
	 * signalled; no exit-path message. */
	assert_true(pci_msix_notify(&f->dev, 1));
	assert_int_equal(f->rec.n, 0);
	assert_int_equal(k.route_addr[24], 0xfee01000ULL);
	assert_int_equal(k.route_data[24], 0x4041);
	assert_true(k.bound_fd[24] >= 0);
	assert_int_equal(fd_count(k.bound_fd[24]), 1);
	assert_true(pci_msix_notify(&f->dev, 1));
	assert_true(pci_msix_notify(&f->dev, 1));
	assert_int_equal(fd_count(k.bound_fd[24]), 2);
	assert_int_equal(k.next_gsi, 25); /* reused, not re-allocated */

	/* The guest retargets the vector: the route follows before the next delivery. */
	io_bus_write(&f->mmio, tbl + 24, 4, 0x4051);
	assert_int_equal(k.route_data[24], 0x4041);
	assert_true(pci_msix_notify(&f->dev, 1));
	assert_int_equal(k.route_data[24], 0x4051);
	assert_int_equal(fd_count(k.bound_fd[24]), 1);

	/* Masked: pending bit, no signal; unmask delivers through the fd. */
	io_bus_write(&f->mmio, tbl + 28, 4, 1);
	assert_true(pci_msix_notify(&f->dev, 1));
	assert_int_equal(fd_count(k.bound_fd[24]), 0);
	io_bus_write(&f->mmio, tbl + 28, 4, 0);
	assert_int_equal(fd_count(k.bound_fd[24]), 1);
	assert_int_equal(f->rec.n, 0);

	/* No route left for another vector: that device falls back to exits. */
	io_bus_write(&f->mmio, tbl + 0, 8, 0xfee00000ULL);
	io_bus_write(&f->mmio, tbl + 8, 4, 0x4031);
	io_bus_write(&f->mmio, tbl + 12, 4, 0);
	k.fail_routes = 1;
	assert_true(pci_msix_notify(&f->dev, 0));
	assert_int_equal(f->rec.n, 1);
	assert_int_equal(f->rec.data[0], 0x4031);
	k.fail_routes = 0;

	/* A reset releases everything: the VM the fds were bound to goes away. */
	pci_host_reset(&f->host);
	assert_int_equal(k.bound_fd[24], -1);
	assert_int_equal(k.route_addr[24], 0);

	/* INTx: a level-triggered irqfd with a resample fd. */
	unsigned gsi = pci_slot_gsi(3, 0);
	pci_host_attach_irqfds(&f->host);
	int ifd = k.bound_fd[gsi];
	assert_true(ifd >= 0);
	assert_true(k.resample_fd[gsi] >= 0);
	assert_true(k.cb != NULL);
	assert_int_equal(k.watched_fd, k.resample_fd[gsi]);
	pci_intx_set(&f->dev, true);
	assert_int_equal(fd_count(ifd), 1);
	assert_false(f->rec.lines.level[gsi]); /* not through the exit path */
	/* The guest EOIs while the device still asserts: asserted again. */
	uint64_t one = 1;
	assert_int_equal(write(k.resample_fd[gsi], &one, 8), 8);
	k.cb(k.cb_arg, 1);
	assert_int_equal(fd_count(ifd), 1);
	/* Deasserted (the driver read the ISR), then EOI: nothing more. */
	pci_intx_set(&f->dev, false);
	assert_int_equal(write(k.resample_fd[gsi], &one, 8), 8);
	k.cb(k.cb_arg, 1);
	assert_int_equal(fd_count(ifd), 0);
	/* INTX_DISABLE gates it like the exit path. */
	cf8_write(f, 3, PCI_COMMAND, 2, PCI_CMD_INTX_DISABLE);
	pci_intx_set(&f->dev, true);
	assert_int_equal(fd_count(ifd), 0);
	pci_host_reset(&f->host);
	assert_int_equal(k.bound_fd[gsi], -1);
	assert_null(k.cb);
}

static void save_load(void **state)
{
	struct fixture *f = *state;
	unsigned cap = cf8_read(f, 3, 0, PCI_CAP_PTR, 1);
	cf8_write(f, 3, PCI_BAR0, 4, 0xd0000000);
	cf8_write(f, 3, PCI_COMMAND, 2, PCI_CMD_MEM);
	ecam_write(f, 3, cap + 2, 2, PCI_MSIX_CTRL_ENABLE);
	uint32_t tbl = cf8_read(f, 3, 0, PCI_BAR0 + 4, 4) & ~0xfu;
	io_bus_write(&f->mmio, tbl + 32, 4, 0xfee00000);
	struct state_buf s;
	state_init_writer(&s);
	assert_int_equal(pci_dev_save(&f->dev, &s), 0);
	pci_host_reset(&f->host);
	assert_int_equal(f->dev.bars[0].handle, 0);
	struct state_buf r;
	state_init_reader(&r, s.data, s.len);
	assert_int_equal(pci_dev_load(&f->dev, &r), 0);
	uint64_t v;
	assert_true(io_bus_read(&f->mmio, 0xd0000000, 4, &v));
	assert_true(pci_msix_enabled(&f->dev));
	io_bus_read(&f->mmio, tbl + 32, 4, &v);
	assert_int_equal(v, 0xfee00000u);
	/* Truncated stream: refused. */
	state_init_reader(&r, s.data, s.len - 9);
	assert_int_equal(pci_dev_load(&f->dev, &r), -EINVAL);
	state_free(&s);
}

static void bad_setup(void **state)
{
	(void)state;
	struct pci_dev d;
	pci_dev_init(&d, "x", 1, 2, 0, 0);
	assert_int_equal(pci_dev_add_bar(&d, 0, PCI_BAR_MEM32, false, 0x1001, &fake_ops, NULL, "x"),
			 -EINVAL);
	assert_int_equal(pci_dev_add_bar(&d, 5, PCI_BAR_MEM64, false, 0x1000, &fake_ops, NULL, "x"),
			 -EINVAL);
	assert_int_equal(pci_dev_add_bar(&d, 0, PCI_BAR_MEM64, false, 0x1000, &fake_ops, NULL, "x"),
			 0);
	assert_int_equal(pci_dev_add_bar(&d, 1, PCI_BAR_MEM32, false, 0x1000, &fake_ops, NULL, "x"),
			 -EBUSY);
	assert_int_equal(pci_dev_init_msix(&d, 0, 2), -EINVAL);
	assert_int_equal(pci_dev_init_msix(&d, PCI_MSIX_MAX_VEC + 1, 2), -EINVAL);
	pthread_mutex_destroy(&d.irq_lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(config_cycles, setup, teardown),
	    cmocka_unit_test_setup_teardown(bar_sizing, setup, teardown),
	    cmocka_unit_test_setup_teardown(bar_mapping, setup, teardown),
	    cmocka_unit_test_setup_teardown(capability_walk, setup, teardown),
	    cmocka_unit_test_setup_teardown(msix, setup, teardown),
	    cmocka_unit_test_setup_teardown(intx, setup, teardown),
	    cmocka_unit_test_setup_teardown(irqfd, setup, teardown),
	    cmocka_unit_test_setup_teardown(save_load, setup, teardown),
	    cmocka_unit_test(bad_setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

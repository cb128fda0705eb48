/* The "pc" machine: memory map, legacy devices, ACPI and SMBIOS tables, and direct kernel
 * boot. It builds the machine a Linux guest expects from a PC, minus the firmware.
 *
 * Guest-physical memory map:
 *   0x00000000 - low_ram_end      RAM (at most 3 GiB; the rest goes above 4 GiB)
 *   0x0009fc00 - 0x000fffff       reserved in e820: EBDA, ACPI tables (0xe0000), SMBIOS (0xf0000)
 *   0xc0000000 - 0xdfffffff       PCI hole: 32-bit BARs (virtio devices, slots 1...)
 *   0xe0000000 - 0xefffffff       PCI ECAM (MCFG), 256 buses
 *   0xfec00000                    IOAPIC        0xfee00000  LAPIC
 *   0xfffbc000 - 0xfffbffff       KVM's private pages (identity map, TSS)
 *   0x100000000 -                 RAM above 4 GiB
 */
#define LOG_SUBSYS "pc"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "util/log.h"
#include "virtio/console.h"
#include "virtio/rng.h"
#include "vmm/acpi.h"
#include "vmm/smbios.h"
#include "vmm/vm.h"

#define PC_PCI_HOLE_START 0xc0000000ULL
#define PC_4G		  0x100000000ULL
#define PC_KVM_PRIVATE	  0xfffbc000ULL
#define PC_KVM_PRIVATE_SZ 0x4000ULL
#define PC_PCI_MMIO_BASE  PC_PCI_HOLE_START
#define PC_PCI_MMIO_SIZE  0x20000000ULL
#define PC_ECAM_BASE	  0xe0000000ULL
#define PC_PCI_IO_BASE	  0xc000
#define PC_PCI_IO_SIZE	  0x4000

static uint64_t pc_clock_ns(void *opaque)
{
	struct vm *vm = opaque;
	return vclock_now(&vm->clock);
}

static void pc_poweroff(void *opaque)
{
	vm_request(opaque, VM_REQ_POWEROFF, 0);
}

static void pc_reset(void *opaque)
{
	vm_request(opaque, VM_REQ_RESET, 0);
}

static void pc_debug_exit(void *opaque, int code)
{
	vm_request(opaque, VM_REQ_EXIT, code);
}

static const struct i8042_ops pc_i8042_ops = {.reset = pc_reset};

static int pc_memory(struct vm *vm, struct error *err)
{
	uint64_t mem = vm->cfg.mem_size;
	uint64_t low = mem < PC_PCI_HOLE_START ? mem : PC_PCI_HOLE_START;
	int ret = gm_add_ram(&vm->mem, 0, low, "pc.ram");
	if (!ret && mem > low)
		ret = gm_add_ram(&vm->mem, PC_4G, mem - low, "pc.ram-high");
	if (ret)
		return error_set(err, ret, "cannot allocate %llu MiB of guest RAM: %s",
				 (unsigned long long)(mem >> 20), strerror(-ret));
	vm->low_ram_end = low;
	/* A kernel without CONFIG_KSM says EINVAL: the guest runs the same, so only a note. */
	if (!vm->cfg.no_mem_merge && (ret = gm_set_mergeable(&vm->mem)))
		log_info("guest RAM not mergeable (KSM): %s", strerror(-ret));
	return 0;
}

static size_t pc_hvc_input(void *opaque, const uint8_t *buf, size_t len)
{
	struct vm *vm = opaque;
	return virtio_console_input(vm->vcon, buf, len);
}

/* hvc0 posted receive buffers (vCPU thread): input waiting for them can go. */
static void pc_hvc_rx_ready(void *opaque)
{
	struct vm *vm = opaque;
	console_input_space(&vm->console);
}

/* Linux's /dev/console is the last console= on its command line: when that is hvc0, typing
 * should reach hvc0 from the start. */
static bool cmdline_console_is_hvc(const char *cmdline)
{
	const char *last = NULL;
	for (const char *p = cmdline; p && (p = strstr(p, "console=")); p += 8)
		if (p == cmdline || p[-1] == ' ')
			last = p + 8;
	return last && strncmp(last, "hvc", 3) == 0;
}

static void pc_hvc_write(void *opaque, const uint8_t *buf, size_t len)
{
	struct vm *vm = opaque;
	struct serial8250_backend be = console_backend(&vm->console);
	if (be.write)
		be.write(be.opaque, buf, len);
}

/* Doorbell fast path for the PCI devices: KVM's ioeventfd where the accelerator has one. */
/* The accelerator's ops while its VM exists; NULL with none, or between two resets. */
static const struct accel_ops *pc_live_accel(struct vm *vm)
{
	const struct accel_ops *ops = vm->accel.ops;
	return ops && vm->accel.priv ? ops : NULL;
}

static int pc_ioeventfd(void *opaque, uint64_t addr, unsigned len, int fd, bool assign)
{
	struct vm *vm = opaque;
	const struct accel_ops *ops = pc_live_accel(vm);
	if (!ops || !ops->ioeventfd_set)
		return -ENOTSUP;
	struct accel_ioeventfd ev = {.addr = addr, .len = (uint8_t)len, .fd = fd};
	return ops->ioeventfd_set(&vm->accel, &ev, assign);
}

/* Interrupt fast path for the PCI devices: KVM's irqfds and MSI routes, where the accelerator
 * has them (hw/pci_irqfd.c falls back to exits on -ENOTSUP). */
static int pc_msi_route(void *opaque, int gsi, uint64_t addr, uint32_t data)
{
	struct vm *vm = opaque;
	const struct accel_ops *ops = pc_live_accel(vm);
	if (!ops || !ops->msi_route_set)
		return -ENOTSUP;
	return ops->msi_route_set(&vm->accel, gsi, addr, data);
}

static void pc_msi_route_free(void *opaque, int gsi)
{
	struct vm *vm = opaque;
	const struct accel_ops *ops = pc_live_accel(vm);
	if (ops && ops->msi_route_free)
		ops->msi_route_free(&vm->accel, gsi);
}

static int pc_irqfd(void *opaque, unsigned gsi, int fd, int resample_fd, bool assign)
{
	struct vm *vm = opaque;
	const struct accel_ops *ops = pc_live_accel(vm);
	if (!ops || !ops->irqfd_set)
		return -ENOTSUP;
	return ops->irqfd_set(&vm->accel, gsi, fd, resample_fd, assign);
}

static int pc_irq_watch(void *opaque, int fd, void (*cb)(void *arg, uint32_t events), void *arg)
{
	struct vm *vm = opaque;
	return event_loop_add_fd(&vm->loop, fd, EPOLLIN, cb, arg);
}

static void pc_irq_unwatch(void *opaque, int fd)
{
	struct vm *vm = opaque;
	event_loop_del_fd(&vm->loop, fd);
}

static const struct pci_irqfd_ops pc_irqfd_ops = {
    .msi_route = pc_msi_route,
    .msi_route_free = pc_msi_route_free,
    .irqfd = pc_irqfd,
    .watch = pc_irq_watch,
    .unwatch = pc_irq_unwatch,
};

void pc_machine_accel_ready(struct vm *vm)
{
	pci_host_attach_irqfds(&vm->pci);
}

/* A virtio-net NIC with the backend --net asked for; its network thread starts here. */
static int pc_nic(struct vm *vm, unsigned i, unsigned slot, uint64_t *next, struct error *err)
{
	const struct net_opts *o = &vm->cfg.nets[i];
	struct net_backend *nb;
	int ret = net_backend_create(&nb, o, i, err);
	if (ret)
		return ret;
	vm->net[i] = calloc(1, sizeof(*vm->net[i]));
	if (!vm->net[i]) {
		net_backend_destroy(nb);
		return error_set(err, -ENOMEM, "out of memory");
	}
	ret = virtio_net_init(vm->net[i], nb, o->has_mac ? o->mac : NULL, i, &vm->mem, err);
	if (ret) {
		free(vm->net[i]);
		vm->net[i] = NULL;
		return ret;
	}
	ret = pci_host_add(&vm->pci, &vm->net[i]->vp.pci, slot, next);
	if (ret)
		return error_set(err, ret, "cannot plug virtio-net%u", i);
	return net_backend_start(vm->net[i]->nb, err);
}

/* PCI host and the virtio devices, one slot each from 1 on. */
static int pc_pci(struct vm *vm, struct error *err)
{
	uint64_t next = PC_PCI_MMIO_BASE;
	unsigned slot = 1;
	int ret = pci_host_init(&vm->pci, &vm->pio, &vm->mmio, &vm->accel.irq, PC_ECAM_BASE, 256);
	if (ret)
		return error_set(err, ret, "cannot register the PCI host bridge");
	vm->pci.ioeventfd = pc_ioeventfd;
	vm->pci.ioeventfd_opaque = vm;
	vm->pci.irqfd = &pc_irqfd_ops;
	vm->pci.irqfd_opaque = vm;
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++) {
		struct virtio_blk_opts o = vm->cfg.disks[i];
		o.num_queues =
		    vm->nr_vcpus < VIRTIO_BLK_MAX_QUEUES ? vm->nr_vcpus : VIRTIO_BLK_MAX_QUEUES;
		vm->blk[i] = calloc(1, sizeof(*vm->blk[i]));
		if (!vm->blk[i])
			return error_set(err, -ENOMEM, "out of memory");
		ret = virtio_blk_init(vm->blk[i], &o, i, &vm->mem, err);
		if (ret) {
			free(vm->blk[i]);
			vm->blk[i] = NULL;
			return ret;
		}
		ret = pci_host_add(&vm->pci, &vm->blk[i]->vp.pci, slot++, &next);
		if (ret)
			return error_set(err, ret, "cannot plug virtio-blk%u", i);
	}
	if (vm->cfg.rng) {
		vm->rng = calloc(1, sizeof(*vm->rng));
		if (!vm->rng || virtio_rng_init(vm->rng, &vm->mem) ||
		    pci_host_add(&vm->pci, &vm->rng->vp.pci, slot++, &next))
			return error_set(err, -ENOMEM, "cannot create virtio-rng");
	}
	if (vm->cfg.serial_virtio) {
		vm->vcon = calloc(1, sizeof(*vm->vcon));
		if (!vm->vcon || virtio_console_init(vm->vcon, &vm->mem, pc_hvc_write, vm) ||
		    pci_host_add(&vm->pci, &vm->vcon->vp.pci, slot++, &next))
			return error_set(err, -ENOMEM, "cannot create virtio-console");
		vm->vcon->rx_ready = pc_hvc_rx_ready;
		console_set_hvc(&vm->console, pc_hvc_input, vm,
				cmdline_console_is_hvc(vm->cfg.cmdline));
	}
	for (unsigned i = 0; i < vm->cfg.nr_nets; i++) {
		ret = pc_nic(vm, i, slot++, &next, err);
		if (ret)
			return ret;
	}
	if (next > PC_PCI_MMIO_BASE + PC_PCI_MMIO_SIZE)
		return error_set(err, -ENOSPC, "too many PCI devices for the PCI hole");
	return 0;
}

int pc_machine_create(struct vm *vm, struct error *err)
{
	int ret = pc_memory(vm, err);
	if (ret)
		return ret;

	struct serial8250_backend be = console_backend(&vm->console);
	serial8250_init(&vm->com1, SERIAL8250_COM1_BASE, SERIAL8250_COM1_IRQ, &vm->accel.irq, &be);
	ret = serial8250_register(&vm->com1, &vm->pio);
	if (ret)
		return error_set(err, ret, "cannot register COM1");

	struct acpi_pm_config pmc;
	acpi_pm_config_default(&pmc);
	pmc.irq = &vm->accel.irq;
	pmc.clock_ns = pc_clock_ns;
	pmc.clock_opaque = vm;
	pmc.poweroff = pc_poweroff;
	pmc.reset = pc_reset;
	pmc.cb_opaque = vm;
	ret = acpi_pm_init(&vm->pm, &pmc, &vm->pio);
	if (ret)
		return error_set(err, ret, "cannot register the ACPI PM registers");

	i8042_init(&vm->kbd, &vm->accel.irq, &pc_i8042_ops, vm);
	ret = i8042_register(&vm->kbd, &vm->pio);
	if (ret)
		return error_set(err, ret, "cannot register the i8042");

	rtc_cmos_init(&vm->rtc, &vm->clock, &vm->timers, &vm->accel.irq, RTC_CMOS_HOST_TIME);
	rtc_cmos_set_mem_size(&vm->rtc, vm->low_ram_end, vm->cfg.mem_size - vm->low_ram_end);
	ret = rtc_cmos_register(&vm->rtc, &vm->pio);
	if (ret)
		return error_set(err, ret, "cannot register the RTC");

	if (vm->cfg.debug_exit) {
		debug_exit_init(&vm->debug_exit, DEBUG_EXIT_PORT, pc_debug_exit, vm);
		ret = debug_exit_register(&vm->debug_exit, &vm->pio);
		if (ret)
			return error_set(err, ret, "cannot register the debug-exit port");
	}
	ret = port80_register(&vm->pio);
	if (ret)
		return error_set(err, ret, "cannot register port 0x80");
	return pc_pci(vm, err);
}

void pc_machine_reset(struct vm *vm)
{
	serial8250_reset(&vm->com1);
	acpi_pm_reset(&vm->pm);
	i8042_reset(&vm->kbd);
	rtc_cmos_reset(&vm->rtc); /* keeps the time and CMOS RAM, as a real reset does */
	for (unsigned i = 0; i < VM_MAX_DISKS; i++)
		if (vm->blk[i])
			virtio_pci_reset(&vm->blk[i]->vp);
	if (vm->rng)
		virtio_pci_reset(&vm->rng->vp);
	if (vm->vcon)
		virtio_pci_reset(&vm->vcon->vp);
	for (unsigned i = 0; i < VM_MAX_NICS; i++)
		if (vm->net[i])
			virtio_pci_reset(&vm->net[i]->vp);
	pci_host_reset(&vm->pci);
}

/* The VM stops: the devices that work outside the vCPU threads (disk iothreads, network
 * threads, console input) stop touching guest memory and raising interrupts. virtio-rng and
 * virtio-console's output work on the vCPU threads, which are parked already. */
static void pc_devices_pause(struct vm *vm, bool pause)
{
	for (unsigned i = 0; i < VM_MAX_DISKS; i++)
		if (vm->blk[i])
			(pause ? virtio_blk_pause : virtio_blk_resume)(vm->blk[i]);
	for (unsigned i = 0; i < VM_MAX_NICS; i++)
		if (vm->net[i])
			(pause ? virtio_net_pause : virtio_net_resume)(vm->net[i]);
	(pause ? console_pause : console_resume)(&vm->console);
}

void pc_machine_pause(struct vm *vm)
{
	pc_devices_pause(vm, true);
}

void pc_machine_resume(struct vm *vm)
{
	pc_devices_pause(vm, false);
}

void pc_machine_destroy(struct vm *vm)
{
	for (unsigned i = 0; i < VM_MAX_NICS; i++) {
		if (vm->net[i]) {
			virtio_net_destroy(vm->net[i]);
			free(vm->net[i]);
			vm->net[i] = NULL;
		}
	}
	for (unsigned i = 0; i < VM_MAX_DISKS; i++) {
		if (vm->blk[i]) {
			virtio_blk_destroy(vm->blk[i]);
			free(vm->blk[i]);
			vm->blk[i] = NULL;
		}
	}
	if (vm->rng) {
		virtio_rng_destroy(vm->rng);
		free(vm->rng);
		vm->rng = NULL;
	}
	if (vm->vcon) {
		virtio_console_destroy(vm->vcon);
		free(vm->vcon);
		vm->vcon = NULL;
	}
	pci_host_destroy(&vm->pci);
	rtc_cmos_destroy(&vm->rtc);
	i8042_destroy(&vm->kbd);
	acpi_pm_destroy(&vm->pm);
	serial8250_destroy(&vm->com1);
}

static int pc_e820(struct vm *vm, struct e820_map *m)
{
	int ret = 0;
	memset(m, 0, sizeof(*m));
	ret |= e820_add(m, 0, BOOT_EBDA_START, E820_RAM);
	ret |= e820_add(m, BOOT_EBDA_START, 0x100000 - BOOT_EBDA_START, E820_RESERVED);
	ret |= e820_add(m, 0x100000, vm->low_ram_end - 0x100000, E820_RAM);
	ret |= e820_add(m, PC_KVM_PRIVATE, PC_KVM_PRIVATE_SZ, E820_RESERVED);
	if (vm->cfg.mem_size > vm->low_ram_end)
		ret |= e820_add(m, PC_4G, vm->cfg.mem_size - vm->low_ram_end, E820_RAM);
	return ret;
}

static int pc_acpi(struct vm *vm, uint64_t *rsdp, struct error *err)
{
	struct acpi_config ac;
	acpi_config_pc_defaults(&ac, vm->nr_vcpus);
	ac.pm1a_evt_port = vm->pm.cfg.evt_port;
	ac.pm1a_cnt_port = vm->pm.cfg.cnt_port;
	ac.pm_tmr_port = vm->pm.cfg.tmr_port;
	ac.sci_irq = vm->pm.cfg.sci_gsi;
	ac.reset_port = vm->pm.cfg.reset_port;
	ac.reset_value = ACPI_PM_RESET_VALUE;
	ac.s5_slp_typ = ACPI_PM_SLP_TYP_S5;
	ac.i8042_aux = true; /* the i8042 answers on its AUX port (PS/2 mouse, IRQ 12) */
	struct acpi_pci_route routes[PCI_MAX_DEVS];
	ac.has_pci = true;
	ac.ecam_base = PC_ECAM_BASE;
	ac.ecam_bus_start = 0;
	ac.ecam_bus_end = 255;
	ac.pci_io = (struct acpi_window){PC_PCI_IO_BASE, PC_PCI_IO_SIZE};
	ac.pci_mmio32 = (struct acpi_window){PC_PCI_MMIO_BASE, PC_PCI_MMIO_SIZE};
	for (unsigned slot = 0; slot < PCI_MAX_DEVS; slot++) {
		routes[slot].slot = (uint8_t)slot;
		for (unsigned pin = 0; pin < 4; pin++)
			routes[slot].gsi[pin] = pci_slot_gsi(slot, pin);
	}
	ac.pci_routes = routes;
	ac.npci_routes = PCI_MAX_DEVS;
	uint8_t *buf = gm_ptr(&vm->mem, BOOT_ACPI_ADDR, BOOT_ACPI_SIZE);
	if (!buf)
		return error_set(err, -ENOMEM, "guest RAM too small for ACPI tables");
	int ret = acpi_build(&ac, buf, BOOT_ACPI_SIZE, BOOT_ACPI_ADDR, rsdp);
	if (ret < 0)
		return error_set(err, ret, "cannot build the ACPI tables: %s", strerror(-ret));
	log_debug("ACPI tables: %d bytes at %#x", ret, BOOT_ACPI_ADDR);
	return 0;
}

static int pc_smbios(struct vm *vm, struct error *err)
{
	struct smbios_config sc;
	smbios_config_defaults(&sc);
	sc.cores = vm->nr_vcpus;
	sc.ram_below_4g = vm->low_ram_end;
	sc.ram_above_4g = vm->cfg.mem_size - vm->low_ram_end;
	sc.has_uuid = vm->cfg.uuid && smbios_parse_uuid(vm->cfg.uuid, sc.uuid) == 0;
	uint8_t *buf = gm_ptr(&vm->mem, BOOT_SMBIOS_ADDR, BOOT_SMBIOS_SIZE);
	if (!buf)
		return error_set(err, -ENOMEM, "guest RAM too small for SMBIOS tables");
	int ret = smbios_build(&sc, buf, BOOT_SMBIOS_SIZE, BOOT_SMBIOS_ADDR);
	if (ret < 0)
		return error_set(err, ret, "cannot build the SMBIOS tables: %s", strerror(-ret));
	return 0;
}

int pc_machine_load(struct vm *vm, struct boot_cpu_state *st, struct error *err)
{
	struct e820_map e820;
	uint64_t rsdp = 0;
	if (pc_e820(vm, &e820))
		return error_set(err, -E2BIG, "memory map has too many entries");
	int ret = pc_acpi(vm, &rsdp, err);
	if (!ret)
		ret = pc_smbios(vm, err);
	if (ret)
		return ret;
	struct boot_config bc = {
	    .cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "",
	    .rsdp_addr = rsdp,
	    .e820 = &e820,
	    .low_ram_end = vm->low_ram_end,
	};
	return boot_setup(&vm->mem, &bc, &vm->images, st, err);
}

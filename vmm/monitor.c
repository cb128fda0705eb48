/* The human monitor (HMP) commands for QMP's human-monitor-command. Output follows the
 * layout of QEMU's HMP "info" commands (QEMU docs/system/monitor.rst, hmp-commands-info.hx)
 * where a tool might parse it: "info mtree" address-space trees, "info ramblock" columns.
 */
#define LOG_SUBSYS "monitor"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "vmm/monitor.h"
#include "vmm/qmp.h"
#include "vmm/vm.h"

/* --- run control ------------------------------------------------------------------------- */

const char *monitor_run_state_name(struct vm *vm)
{
	switch (vm->state) {
	case VM_STATE_PRELAUNCH:
		return "prelaunch";
	case VM_STATE_RUNNING:
		return "running";
	case VM_STATE_PAUSED:
		return "paused";
	case VM_STATE_SHUTDOWN:
		return "shutdown";
	}
	return "unknown";
}

void monitor_vm_stop(struct vm *vm)
{
	if (vm->state != VM_STATE_RUNNING)
		return;
	vm_pause(vm);
	qmp_emit_event(vm->qmp, "STOP", NULL);
}

void monitor_vm_cont(struct vm *vm)
{
	/* From "paused", and from "prelaunch" (-S, or after a reset of a shut-down VM). */
	if (vm->state != VM_STATE_PAUSED && vm->state != VM_STATE_PRELAUNCH)
		return;
	vm_resume(vm);
	qmp_emit_event(vm->qmp, "RESUME", NULL);
}

/* --- info mtree -------------------------------------------------------------------------- */

struct mtree_ctx {
	FILE *out;
	const char *kind;
};

static int mtree_range(const struct io_range *r, void *arg)
{
	struct mtree_ctx *c = arg;
	fprintf(c->out, "    %016" PRIx64 "-%016" PRIx64 " (prio %d, %s): %s\n", r->base,
		r->base + r->len - 1, r->priority, c->kind, r->name ? r->name : "?");
	struct io_subregion sub[8];
	unsigned n = r->ops->subregions ? r->ops->subregions(r->opaque, sub, 8) : 0;
	for (unsigned i = 0; i < n && i < 8; i++)
		fprintf(c->out, "      %016" PRIx64 "-%016" PRIx64 " (prio 0, %s): %s\n",
			r->base + sub[i].offset, r->base + sub[i].offset + sub[i].len - 1, c->kind,
			sub[i].name);
	return 0;
}

static void info_mtree(struct vm *vm, FILE *out, void *opaque)
{
	struct mtree_ctx c = {out, "ram"};
	fprintf(out, "address-space: memory\n");
	fprintf(out, "  0000000000000000-ffffffffffffffff (prio -1, i/o): system\n");
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		const struct gm_region *r = &vm->mem.regions[i];
		fprintf(out, "    %016" PRIx64 "-%016" PRIx64 " (prio 0, ram): %s\n", r->gpa,
			r->gpa + r->size - 1, r->name ? r->name : "ram");
	}
	c.kind = "i/o";
	io_bus_foreach(&vm->mmio, mtree_range, &c);
	fprintf(out, "\naddress-space: I/O\n");
	fprintf(out, "  0000000000000000-000000000000ffff (prio 0, i/o): io\n");
	io_bus_foreach(&vm->pio, mtree_range, &c);
}

/* --- info ramblock ----------------------------------------------------------------------- */

static void info_ramblock(struct vm *vm, FILE *out, void *opaque)
{
	fprintf(out, "%24s %8s %18s %18s %18s\n", "Block Name", "PSize", "Offset", "Used", "Total");
	uint64_t offset = 0;
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		const struct gm_region *r = &vm->mem.regions[i];
		fprintf(out, "%24s %8s 0x%016" PRIx64 " 0x%016" PRIx64 " 0x%016" PRIx64 "\n",
			r->name ? r->name : "ram", "4 KiB", offset, r->size, r->size);
		offset += r->size;
	}
}

/* --- info registers ---------------------------------------------------------------------- */

static void info_registers(struct vm *vm, FILE *out, void *opaque)
{
	struct monitor *m = opaque;
	unsigned first = m->cpu, last = m->cpu;
	if (m->nr_args > 0 && !strcmp(m->args[0], "-a")) {
		first = 0;
		last = vm->nr_vcpus - 1;
	} else if (m->nr_args > 0) {
		char *end;
		unsigned long n = strtoul(m->args[0], &end, 10);
		if (*end || end == m->args[0] || m->args[0][0] == '-') {
			fprintf(out, "info registers: '%s' is not -a or a CPU number\n",
				m->args[0]);
			return;
		}
		if (n >= vm->nr_vcpus) {
			fprintf(out, "CPU#%lu not available\n", n); /* QEMU's words */
			return;
		}
		first = last = (unsigned)n;
	}
	if (!vm->accel.ops || !vm->accel.ops->vcpu_dump) {
		fprintf(out, "no register state\n");
		return;
	}
	/* The vCPUs must be out of guest mode to read their state; no STOP event for that. */
	bool was_running = vm->state == VM_STATE_RUNNING;
	if (was_running)
		vm_pause(vm);
	char *buf = malloc(8192);
	for (unsigned i = first; buf && i <= last && i < vm->nr_vcpus; i++) {
		int n = vm->accel.ops->vcpu_dump(&vm->vcpus[i].vcpu, buf, 8192);
		if (n > 0)
			fputs(buf, out);
		else
			fprintf(out, "CPU#%u: registers unavailable (%s)\n", i, strerror(-n));
	}
	free(buf);
	if (was_running)
		vm_resume(vm);
}

/* --- info qtree: the devices, found through the ranges they registered ------------------- */

struct qtree_ctx {
	FILE *out;
	const char *bus;
	const void *seen[64];
	unsigned nr_seen;
	struct vm *vm;
};

static int qtree_list_ranges(const struct io_range *r, void *arg)
{
	struct qtree_ctx *c = arg;
	if (r->opaque == c->seen[c->nr_seen - 1])
		fprintf(c->out, "      %s %#" PRIx64 "/%#" PRIx64 " (%s)\n", c->bus, r->base,
			r->len, r->name ? r->name : "?");
	return 0;
}

static int qtree_device(const struct io_range *r, void *arg)
{
	struct qtree_ctx *c = arg;
	for (unsigned i = 0; i < c->nr_seen; i++)
		if (c->seen[i] == r->opaque)
			return 0;
	if (c->nr_seen == 64)
		return 1;
	c->seen[c->nr_seen++] = r->opaque;
	fprintf(c->out, "  dev: %s\n", r->name ? r->name : "?");
	struct io_bus *bus = !strcmp(c->bus, "ioport") ? &c->vm->pio : &c->vm->mmio;
	io_bus_foreach(bus, qtree_list_ranges, c);
	return 0;
}

static void info_qtree(struct vm *vm, FILE *out, void *opaque)
{
	struct qtree_ctx c = {.out = out, .bus = "ioport", .vm = vm};
	fprintf(out, "bus: main-system-bus\n  type System\n");
	io_bus_foreach(&vm->pio, qtree_device, &c);
	c.bus = "mmio";
	io_bus_foreach(&vm->mmio, qtree_device, &c);
}

/* --- small ones -------------------------------------------------------------------------- */

static const char *pci_class_name(uint8_t base, uint8_t sub)
{
	static const struct {
		uint8_t base, sub;
		const char *name;
	} names[] = {
	    {0x01, 0x00, "SCSI controller"},	 {0x01, 0x80, "Storage controller"},
	    {0x02, 0x00, "Ethernet controller"}, {0x06, 0x00, "Host bridge"},
	    {0x06, 0x01, "ISA bridge"},		 {0x07, 0x80, "Communication controller"},
	};
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].base == base && names[i].sub == sub)
			return names[i].name;
	return NULL;
}

static uint32_t cfg_le(const uint8_t *cfg, unsigned off, unsigned size)
{
	uint32_t v = 0;
	for (unsigned i = 0; i < size; i++)
		v |= (uint32_t)cfg[off + i] << (8 * i);
	return v;
}

/* QEMU's "info pci" layout: one block per function with ids, IRQ and BARs. */
static void info_pci(struct vm *vm, FILE *out, void *opaque)
{
	struct pci_host *h = &vm->pci;
	if (!h->pio) /* the machine has no PCI host */
		return;
	pthread_mutex_lock(&h->lock);
	for (unsigned slot = 0; slot < PCI_MAX_DEVS; slot++) {
		const struct pci_dev *d = h->devs[slot];
		if (!d)
			continue;
		const uint8_t *c = d->cfg;
		const char *cls = pci_class_name(c[0x0b], c[0x0a]);
		fprintf(out, "  Bus  0, device %3u, function 0:\n", slot);
		if (cls)
			fprintf(out, "    %s: ", cls);
		else
			fprintf(out, "    Class %04x: ", cfg_le(c, 0x0a, 2));
		fprintf(out, "PCI device %04x:%04x\n", cfg_le(c, PCI_VENDOR_ID, 2),
			cfg_le(c, PCI_DEVICE_ID, 2));
		fprintf(out, "      PCI subsystem %04x:%04x\n", cfg_le(c, PCI_SUBSYS_VENDOR, 2),
			cfg_le(c, PCI_SUBSYS_ID, 2));
		if (c[PCI_INTERRUPT_PIN])
			fprintf(out, "      IRQ %u, pin %c\n", c[PCI_INTERRUPT_LINE],
				'A' + c[PCI_INTERRUPT_PIN] - 1);
		for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
			const struct pci_bar *bar = &d->bars[i];
			if (bar->type == PCI_BAR_NONE)
				continue;
			uint64_t addr = cfg_le(c, PCI_BAR0 + 4 * i, 4);
			if (bar->type == PCI_BAR_MEM64)
				addr |= (uint64_t)cfg_le(c, PCI_BAR0 + 4 * i + 4, 4) << 32;
			addr &= bar->type == PCI_BAR_IO ? ~(uint64_t)3 : ~(uint64_t)15;
			char kind[40];
			if (bar->type == PCI_BAR_IO)
				snprintf(kind, sizeof(kind), "I/O");
			else
				snprintf(kind, sizeof(kind), "%s bit %smemory",
					 bar->type == PCI_BAR_MEM64 ? "64" : "32",
					 bar->prefetch ? "prefetchable " : "");
			fprintf(out, "      BAR%u: %s at %#" PRIx64 " [%#" PRIx64 "]%s.\n", i, kind,
				addr, addr + bar->size - 1,
				bar->handle > 0 ? "" : " (not decoding)");
		}
		fprintf(out, "      id \"%s\"\n", d->name ? d->name : "");
	}
	pthread_mutex_unlock(&h->lock);
}

static void info_status(struct vm *vm, FILE *out, void *opaque)
{
	fprintf(out, "VM status: %s\n", monitor_run_state_name(vm));
}

static void info_version(struct vm *vm, FILE *out, void *opaque)
{
	fprintf(out, "%s (kestrel)\n", KESTREL_VERSION);
}

static void info_name(struct vm *vm, FILE *out, void *opaque)
{
	if (vm->cfg.name)
		fprintf(out, "%s\n", vm->cfg.name);
}

static void info_cpus(struct vm *vm, FILE *out, void *opaque)
{
	const struct monitor *m = opaque;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		fprintf(out, "%c CPU #%u: thread_id=%d\n", i == m->cpu ? '*' : ' ', i,
			atomic_load(&vm->vcpus[i].tid));
}

static void info_kvm(struct vm *vm, FILE *out, void *opaque)
{
	bool on = vm->accel.ops && !strcmp(vm->accel.ops->name, "kvm");
	fprintf(out, "kvm support: %s\n", on ? "enabled" : "disabled");
}

void monitor_init(struct monitor *m, struct vm *vm)
{
	memset(m, 0, sizeof(*m));
	m->vm = vm;
	monitor_add_info(m, "mtree", "show the memory and I/O address spaces", info_mtree, NULL);
	monitor_add_info(m, "ramblock", "show the RAM blocks", info_ramblock, NULL);
	monitor_add_info(m, "registers", "show the current vCPU's registers (-a: all, N: CPU N)",
			 info_registers, m);
	monitor_add_info(m, "qtree", "show the device tree", info_qtree, NULL);
	monitor_add_info(m, "pci", "show the PCI devices", info_pci, NULL);
	monitor_add_info(m, "status", "show the VM's run state", info_status, NULL);
	monitor_add_info(m, "version", "show the version", info_version, NULL);
	monitor_add_info(m, "name", "show the VM's name", info_name, NULL);
	monitor_add_info(m, "cpus", "show the vCPUs (* marks the current one)", info_cpus, m);
	monitor_add_info(m, "kvm", "show whether KVM is in use", info_kvm, NULL);
}

int monitor_add_info(struct monitor *m, const char *name, const char *help, monitor_info_fn fn,
		     void *opaque)
{
	struct monitor_info *slot = NULL;
	for (unsigned i = 0; i < m->nr_info; i++)
		if (!strcmp(m->info[i].name, name))
			slot = &m->info[i];
	if (!slot) {
		if (m->nr_info == MONITOR_MAX_INFO)
			return -ENOSPC;
		slot = &m->info[m->nr_info++];
	}
	*slot = (struct monitor_info){name, help, fn, opaque};
	return 0;
}

/* --- command line ------------------------------------------------------------------------ */

static void help(struct monitor *m, FILE *out)
{
	fprintf(out, "cont|c -- resume emulation\n"
		     "help|? -- list the commands\n"
		     "info [subcommand] -- show the state of the VM\n"
		     "quit|q -- quit the VM\n"
		     "stop -- stop emulation\n"
		     "system_powerdown -- press the ACPI power button\n"
		     "system_reset -- reset the system\n");
}

static int run(struct monitor *m, char **w, int nw, FILE *out)
{
	struct vm *vm = m->vm;
	const char *c = w[0];
	if (!strcmp(c, "info")) {
		if (nw < 2) {
			for (unsigned i = 0; i < m->nr_info; i++)
				fprintf(out, "info %s -- %s\n", m->info[i].name, m->info[i].help);
			return 0;
		}
		for (unsigned i = 0; i < m->nr_info; i++)
			if (!strcmp(m->info[i].name, w[1])) {
				m->args = w + 2;
				m->nr_args = nw - 2;
				m->info[i].fn(vm, out, m->info[i].opaque);
				m->args = NULL;
				m->nr_args = 0;
				return 0;
			}
		fprintf(out, "unknown info subcommand '%s' (see 'info')\n", w[1]);
		return -ENOENT;
	}
	if (!strcmp(c, "help") || !strcmp(c, "?")) {
		help(m, out);
	} else if (!strcmp(c, "stop")) {
		monitor_vm_stop(vm);
	} else if (!strcmp(c, "cont") || !strcmp(c, "c")) {
		monitor_vm_cont(vm);
	} else if (!strcmp(c, "system_reset")) {
		vm_request_host(vm, VM_REQ_RESET, 0, "host-qmp-system-reset");
		vm_handle_request(vm);
	} else if (!strcmp(c, "system_powerdown")) {
		acpi_pm_power_button(&vm->pm);
		qmp_emit_event(vm->qmp, "POWERDOWN", NULL);
	} else if (!strcmp(c, "quit") || !strcmp(c, "q")) {
		vm_request_host(vm, VM_REQ_EXIT, 0, "host-qmp-quit");
	} else {
		fprintf(out, "unknown command: '%s'\n", c);
		return -ENOENT;
	}
	return 0;
}

int monitor_hmp(struct monitor *m, const char *line, char **out)
{
	size_t size = 0;
	*out = NULL;
	FILE *f = open_memstream(out, &size);
	if (!f)
		return -ENOMEM;
	char *copy = strdup(line);
	char *w[8], *save = NULL;
	int nw = 0, ret = 0;
	for (char *t = copy ? strtok_r(copy, " \t\r\n", &save) : NULL; t && nw < 8;
	     t = strtok_r(NULL, " \t\r\n", &save))
		w[nw++] = t;
	if (!copy)
		ret = -ENOMEM;
	else if (nw)
		ret = run(m, w, nw, f);
	free(copy);
	fclose(f);
	if (!*out)
		return -ENOMEM;
	return ret;
}

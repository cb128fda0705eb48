/* The human monitor (HMP) behind QMP's human-monitor-command: "info mtree", "info ramblock",
 * "info registers", "info qtree", "info pci", ... and the run-control commands, as text.
 *
 * "info" subcommands are a table a subsystem can extend (monitor_add_info): "pci" prints
 * nothing until the PCI host registers its own provider.
 */
#ifndef KESTREL_VMM_MONITOR_H
#define KESTREL_VMM_MONITOR_H

#include <stdio.h>

struct vm;

typedef void (*monitor_info_fn)(struct vm *vm, FILE *out, void *opaque);

#define MONITOR_MAX_INFO 32

struct monitor_info {
	const char *name, *help;
	monitor_info_fn fn;
	void *opaque;
};

struct monitor {
	struct vm *vm;
	struct monitor_info info[MONITOR_MAX_INFO];
	unsigned nr_info;
	/* The command being run: its current CPU (human-monitor-command's cpu-index, else 0)
	 * and the words after "info NAME", for the providers that take arguments. */
	unsigned cpu;
	char **args;
	int nr_args;
};

void monitor_init(struct monitor *m, struct vm *vm);
/* Add "info NAME"; an existing NAME is replaced. Returns 0 or -ENOSPC. */
int monitor_add_info(struct monitor *m, const char *name, const char *help, monitor_info_fn fn,
		     void *opaque);
/* Run one command line; *out gets the text (malloc'd, caller frees). Returns 0, or -ENOENT
 * for an unknown command (the text says so), -ENOMEM. m->cpu is the current CPU ("info
 * registers" shows it alone, as QEMU; "info registers -a" all, "info registers N" CPU N). */
int monitor_hmp(struct monitor *m, const char *line, char **out);

/* Run control with the QMP events that go with it (main thread). */
void monitor_vm_stop(struct vm *vm);
void monitor_vm_cont(struct vm *vm);
const char *monitor_run_state_name(struct vm *vm);

#endif

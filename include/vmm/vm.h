/* A virtual machine: configuration, guest memory, buses, accelerator, vCPU threads, devices,
 * and its lifecycle (boot, pause/resume, reset, poweroff).
 *
 * Threads: the main thread runs the event loop (console, timers, monitor) and is the only one
 * that changes the VM's run state; vCPU threads run guest code and post requests (reset,
 * poweroff, exit) with vm_request(), which stops the vCPUs and wakes the main thread. */
#ifndef KESTREL_VMM_VM_H
#define KESTREL_VMM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "accel/accel.h"
#include "core/clock.h"
#include "core/event_loop.h"
#include "core/guest_mem.h"
#include "core/io_bus.h"
#include "core/timer.h"
#include "hw/acpi_pm.h"
#include "hw/debug_exit.h"
#include "hw/i8042.h"
#include "hw/pci.h"
#include "hw/rtc_cmos.h"
#include "hw/serial8250.h"
#include "vmm/boot.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "vmm/console.h"

/* xAPIC IDs are 8 bits and 0xff is the broadcast ID: 255 vCPUs (0-254) without x2APIC. */
#define VM_MAX_VCPUS 255
#define VM_MAX_DISKS 8
#define VM_MAX_NICS  VIRTIO_NET_MAX_NICS

struct qmp_server;
struct qtest;

enum accel_kind { ACCEL_AUTO, ACCEL_KVM, ACCEL_EMU, ACCEL_QTEST };

struct vm_config {
	const char *kernel, *initrd, *cmdline;
	uint64_t mem_size;
	unsigned nr_cpus;
	bool no_reboot;
	bool start_paused; /* -S: vCPUs parked, status "prelaunch" until cont */
	bool no_shutdown;  /* a guest poweroff stops the VM ("shutdown") instead of exiting */
	bool debug_exit;
	enum accel_kind accel;
	struct console_config console;
	const char *name;
	const char *qtest; /* --accel qtest: "unix:PATH" or "stdio" for the qtest protocol */
	/* virtio devices on the PCI bus (--disk, --rng, --serial-virtio) */
	struct virtio_blk_opts disks[VM_MAX_DISKS];
	unsigned nr_disks;
	bool rng;
	bool serial_virtio; /* virtio-console: the guest's hvc0 writes to the console */
	bool no_mem_merge;  /* --mem-merge off: guest RAM not offered to KSM */
	const char *uuid;   /* --uuid: SMBIOS system UUID and query-uuid (checked by cmd/run.c) */
	struct net_opts nets[VM_MAX_NICS]; /* --net: virtio-net NICs */
	unsigned nr_nets;
};

enum vm_request {
	VM_REQ_NONE,
	VM_REQ_RESET, /* guest reboot: reset, or exit 0 with --no-reboot */
	VM_REQ_TRIPLE_FAULT,
	VM_REQ_POWEROFF, /* guest powered off: exit 0 */
	VM_REQ_EXIT,	 /* exit with vm->exit_code (debug-exit, Ctrl-a x, signal) */
	VM_REQ_ERROR,	 /* a vCPU failed: exit 1 */
};

enum vm_run_state { VM_STATE_PRELAUNCH, VM_STATE_RUNNING, VM_STATE_PAUSED, VM_STATE_SHUTDOWN };

struct vm_vcpu {
	struct vcpu vcpu;
	pthread_t thread;
	bool thread_started;
	atomic_bool parked;
	atomic_int tid; /* the thread's Linux id (query-cpus-fast), 0 before it runs */
	struct vm *vm;
};

struct vm {
	struct vm_config cfg;
	struct guest_mem mem;
	uint64_t low_ram_end; /* RAM below the PCI hole */
	struct io_bus pio, mmio;
	struct accel accel;
	struct vm_vcpu *vcpus;
	unsigned nr_vcpus;

	struct vclock clock;
	struct timer_list timers;
	struct event_loop loop;
	struct console console;
	struct boot_images images;

	/* Devices of the pc machine (vmm/pc.c) */
	struct serial8250 com1;
	struct acpi_pm pm;
	struct i8042 kbd;
	struct rtc_cmos rtc;
	struct debug_exit debug_exit;
	struct pci_host pci;
	struct virtio_blk *blk[VM_MAX_DISKS];
	struct virtio_rng *rng;
	struct virtio_console *vcon;
	struct virtio_net *net[VM_MAX_NICS];

	/* Run control */
	pthread_mutex_t run_lock;
	pthread_cond_t run_cond;
	atomic_bool stop_vcpus;	 /* vCPU threads return */
	atomic_bool pause_vcpus; /* vCPU threads park */
	atomic_int request;	 /* enum vm_request, first one wins */
	int request_fd;		 /* eventfd: a request is pending */
	int signal_fd;		 /* signalfd for SIGINT/SIGTERM/SIGHUP, while vm_run runs */
	int exit_code;
	enum vm_run_state state;
	unsigned reset_count;
	const char *request_reason; /* QMP cause of the pending request; NULL: the guest's */

	struct qmp_server *qmp; /* the QMP monitor (--qmp), NULL without one */
	struct qtest *qtest;	/* --accel qtest: the test protocol server */
};

/* Validate the configuration, create everything and load the kernel. Errors are printed as
 * one line; returns 0 or -errno. */
int vm_create(struct vm *vm, const struct vm_config *cfg, struct error *err)
    __attribute__((warn_unused_result));
/* Start the vCPUs and run the event loop until the VM ends; returns the exit code. */
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);

/* From any thread: ask the main thread to reset / power off / exit. */
void vm_request(struct vm *vm, enum vm_request req, int exit_code);
/* The same on the host's behalf; reason is QMP's ShutdownCause ("host-qmp-quit", ...). */
void vm_request_host(struct vm *vm, enum vm_request req, int exit_code, const char *reason);
/* Main thread only: carry out the pending request now rather than on the next turn of the
 * event loop. QMP's system_reset uses it so that, as with QEMU, the RESET event reaches the
 * client before the command's return. */
void vm_handle_request(struct vm *vm);
/* Main thread only. Pause parks the vCPUs, stops guest time and quiesces the devices (between
 * pause and resume nothing touches guest memory or raises an interrupt); resume starts a
 * paused VM or one created with start_paused ("prelaunch"). */
void vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);

/* The pc machine (vmm/pc.c). */
int pc_machine_create(struct vm *vm, struct error *err);
/* Load firmware tables and the kernel into freshly zeroed RAM; sets the boot vCPU state. */
int pc_machine_load(struct vm *vm, struct boot_cpu_state *st, struct error *err);
void pc_machine_reset(struct vm *vm);
/* The VM stops / goes on (main thread, vCPUs parked): the devices' pause hooks. */
void pc_machine_pause(struct vm *vm);
void pc_machine_resume(struct vm *vm);
/* The accelerator's VM exists (boot, and after each reset): bind the devices' interrupts to
 * its irqfds. */
void pc_machine_accel_ready(struct vm *vm);
void pc_machine_destroy(struct vm *vm);

#endif

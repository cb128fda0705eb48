/* The accelerator interface: one vtable that KVM and the emulator both implement.
 *
 * The machine (vmm/) creates an accelerator, maps guest RAM into it, creates vCPUs and runs
 * each on its own thread through vcpu_run(), which returns one exit at a time. The generic
 * vCPU loop (vmm/vcpu.c) dispatches exits to the I/O buses; devices never see the accelerator.
 */
#ifndef KESTREL_ACCEL_ACCEL_H
#define KESTREL_ACCEL_ACCEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/irq.h"

struct accel;
struct vcpu;

enum vcpu_exit_reason {
	VCPU_EXIT_NONE,	    /* nothing to do (interrupted, spurious): run again */
	VCPU_EXIT_IO,	    /* port I/O: dispatch on the pio bus */
	VCPU_EXIT_MMIO,	    /* MMIO outside RAM: dispatch on the mmio bus */
	VCPU_EXIT_HLT,	    /* HLT with no interrupt pending (only without in-kernel irqchip) */
	VCPU_EXIT_SHUTDOWN, /* triple fault */
	VCPU_EXIT_RESET,    /* the accelerator saw a reset request (PSCI-like system event) */
	VCPU_EXIT_POWEROFF, /* the accelerator saw a poweroff request */
	VCPU_EXIT_KICKED,   /* vcpu_kick() interrupted the run: check pause/stop requests */
	VCPU_EXIT_ERROR,    /* unrecoverable: entry failure, internal error; message logged */
};

struct vcpu_exit {
	enum vcpu_exit_reason reason;
	union {
		struct {
			uint16_t port;
			uint8_t size; /* 1, 2 or 4 */
			bool write;
			uint32_t count; /* >1 for string I/O: `count` accesses, packed */
			uint8_t *data;	/* size * count bytes, owned by the accelerator */
		} io;
		struct {
			uint64_t addr;
			uint8_t size; /* 1..8 */
			bool write;
			uint8_t *data; /* size bytes, owned by the accelerator */
		} mmio;
	};
};

/* Register state the boot loaders hand to the boot vCPU. */
enum boot_cpu_mode {
	BOOT_MODE_LONG64, /* long mode, identity paging at cr3, flat 64-bit CS */
	BOOT_MODE_PROT32, /* 32-bit protected mode, flat segments, paging off */
};

struct boot_cpu_state {
	enum boot_cpu_mode mode;
	uint64_t rip, rsp, rax, rbx, rsi;
	uint64_t cr3;	   /* BOOT_MODE_LONG64 */
	uint64_t gdt_base; /* a GDT in guest memory with flat code/data segments */
	uint16_t gdt_limit;
	uint16_t code_sel, data_sel; /* selectors of those segments in that GDT */
};

/* A doorbell the accelerator watches itself: a guest write to addr (of len bytes, and of
 * `data` when match_data) signals fd instead of exiting to the VMM (KVM_IOEVENTFD). */
struct accel_ioeventfd {
	uint64_t addr;
	uint8_t len; /* 1, 2, 4 or 8; 0 matches any length (MMIO only) */
	bool pio;
	bool match_data;
	uint64_t data;
	int fd; /* an eventfd */
};

struct accel_ops {
	const char *name; /* "kvm", "emu" */
	/* Create the VM: interrupt controllers and timers the accelerator provides. */
	int (*init)(struct accel *a);
	void (*destroy)(struct accel *a);
	/* Map host memory as guest RAM at gpa. */
	int (*map_ram)(struct accel *a, uint64_t gpa, uint64_t size, void *host);
	/* The upper bound on vCPUs this accelerator can run. */
	unsigned (*max_vcpus)(struct accel *a);
	int (*vcpu_create)(struct accel *a, struct vcpu *v);
	void (*vcpu_destroy)(struct vcpu *v);
	/* Set up the boot vCPU's registers (the others wait for INIT/SIPI). */
	int (*vcpu_set_boot_state)(struct vcpu *v, const struct boot_cpu_state *st);
	/* Run until one exit; fills *exit. Called only on the vCPU's own thread. Finishing a
	 * VCPU_EXIT_IO/MMIO read means filling exit->io.data / exit->mmio.data before the next
	 * vcpu_run. */
	int (*vcpu_run)(struct vcpu *v, struct vcpu_exit *exit);
	/* Make a running vcpu_run return VCPU_EXIT_KICKED soon; safe from any thread. */
	void (*vcpu_kick)(struct vcpu *v);
	/* Print the vCPU's registers, like QEMU's "info registers" (vCPU stopped or parked). */
	int (*vcpu_dump)(struct vcpu *v, char *buf, size_t len);

	/* Optional: stop / restart the guest's paravirtual clock while the VM is paused, so a
	 * resumed guest sees no time jump (all vCPUs are parked around these calls). */
	void (*clock_pause)(struct accel *a);
	void (*clock_resume)(struct accel *a);

	/* Optional fast paths: NULL where the accelerator has none, and -ENOTSUP where the
	 * host lacks them; a device then keeps to exits and irq_line_set()/msi_send(). */
	int (*ioeventfd_set)(struct accel *a, const struct accel_ioeventfd *ev, bool assign);
	/* Writing `fd` raises `gsi`. With resample_fd >= 0 the GSI is level-triggered: it
	 * stays asserted until the guest EOIs it, then resample_fd is signalled so the device
	 * can assert it again if its line is still high (PCI INTx). */
	int (*irqfd_set)(struct accel *a, unsigned gsi, int fd, int resample_fd, bool assign);
	/* Route an MSI message to a GSI an irqfd can target: gsi < 0 allocates one, else the
	 * route is updated (the guest reprogrammed the vector). Returns the GSI or -errno. */
	int (*msi_route_set)(struct accel *a, int gsi, uint64_t addr, uint32_t data);
	void (*msi_route_free)(struct accel *a, int gsi);
};

struct accel {
	const struct accel_ops *ops;
	unsigned nr_vcpus;     /* what the machine asks for; set before init */
	struct irq_router irq; /* where devices' interrupts go */
	void *priv;	       /* the accelerator's own state */
};

struct vcpu {
	struct accel *accel;
	unsigned index; /* 0 = boot processor; also the APIC id */
	void *priv;	/* the accelerator's per-vCPU state */
};

extern const struct accel_ops kvm_accel_ops;

/* Whether KVM can be used here: 0, or -errno with a reason in `why` (for the error
 * message --accel auto/kvm prints). */
int kvm_available(char *why, unsigned long why_len);

#endif

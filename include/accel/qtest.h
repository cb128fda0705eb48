/* The qtest accelerator and test protocol: a VM with no CPU whose devices a test drives.
 *
 * A test connects to a socket ("unix:PATH", kestrel listening) or talks over stdin/stdout
 * ("stdio") and sends one command per line, as QEMU's qtest protocol defines them
 * (QEMU docs/devel/qtest.rst, softmmu/qtest.c):
 *   outb/outw/outl PORT VALUE, inb/inw/inl PORT          port I/O on the pio bus
 *   writeb/w/l/q ADDR VALUE, readb/w/l/q ADDR            memory: RAM, else the mmio bus
 *   read ADDR SIZE, write ADDR SIZE 0xHEX, memset ADDR SIZE BYTE (memread/memwrite too)
 *   clock_step [NS], clock_set NS                        the virtual clock; returns "OK NOW"
 *   irq_intercept_in NAME                                then "IRQ raise N" / "IRQ lower N"
 *   endianness                                           "OK little"
 * Answers are "OK[ VALUE]" or "FAIL reason"; IRQ lines arrive asynchronously in between.
 *
 * The accelerator (qtest_accel_ops) has vCPUs that never run guest code: vcpu_run blocks
 * until kicked. Its interrupt router records every GSI level change and forwards changes to
 * the client once it asked for them. The VM's vclock runs on qtest_clock_source(): guest
 * time moves only with clock_step / clock_set, which then run the expired timers.
 *
 * The machine sets accel->priv to the struct qtest before init (init keeps it).
 */
#ifndef KESTREL_ACCEL_QTEST_H
#define KESTREL_ACCEL_QTEST_H

#include <stdint.h>

#include "accel/accel.h"
#include "core/clock.h"
#include "core/event_loop.h"
#include "core/guest_mem.h"
#include "core/io_bus.h"
#include "core/timer.h"
#include "util/error.h"

struct qtest;

/* What the protocol reaches; all pointers stay valid for the qtest's lifetime. */
struct qtest_env {
	struct io_bus *pio, *mmio;
	struct guest_mem *mem;
	struct vclock *clock;
	struct timer_list *timers;
	struct event_loop *loop;
	/* Optional: the stdio client reached end of input (the VM should end). */
	void (*closed)(void *opaque);
	void *closed_opaque;
};

/* Parse spec ("unix:PATH", "stdio", or "none" for a VM driven over QMP alone) and open
 * its socket (listening). Nothing is registered yet. */
int qtest_create(struct qtest **out, const char *spec, const struct qtest_env *env,
		 struct error *err) __attribute__((warn_unused_result));
/* Register on the event loop (after it was initialised). Returns 0 or -errno. */
int qtest_start(struct qtest *q) __attribute__((warn_unused_result));
void qtest_destroy(struct qtest *q);

/* The manual clock source: opaque is the struct qtest. */
uint64_t qtest_clock_source(void *opaque);

extern const struct accel_ops qtest_accel_ops;

#endif

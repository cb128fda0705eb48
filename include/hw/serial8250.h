/* 8250/16550A UART (NS/TI PC16550D), the PC's COM ports; the guest's serial console.
 *
 * Threads and locking: the port I/O handlers run on vCPU threads, serial8250_receive() /
 * serial8250_can_receive() on the main thread. Each UART has its own mutex.
 * - backend.write is called WITH the UART lock held (so output keeps the guest's order
 *   across vCPUs): it must not call back into the UART. It should not block for long.
 * - backend.rx_space is called WITHOUT the lock, on a vCPU thread, when the guest made room
 *   in the RX FIFO after the backend was refused bytes (can_receive() said 0 or receive()
 *   took fewer than offered): the backend may call serial8250_receive() from it, or just
 *   wake the main loop.
 * - irq_line_set() is called with the lock held (the router never calls back into a
 *   device).
 */
#ifndef KESTREL_HW_SERIAL8250_H
#define KESTREL_HW_SERIAL8250_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/irq.h"

struct io_bus;
struct state_buf;

#define SERIAL8250_FIFO_SIZE 16
#define SERIAL8250_COM1_BASE 0x3f8
#define SERIAL8250_COM1_IRQ  4

struct serial8250_backend {
	/* Bytes the guest transmitted. */
	void (*write)(void *opaque, const uint8_t *buf, size_t len);
	/* Optional: the RX FIFO has room again. */
	void (*rx_space)(void *opaque);
	void *opaque;
};

struct serial8250 {
	pthread_mutex_t lock;
	uint16_t base;
	unsigned irq;
	struct irq_router *irq_router;
	struct serial8250_backend backend;

	/* Registers */
	uint8_t ier, lcr, mcr, lsr, msr, scr, fcr;
	uint16_t divisor;
	/* RX FIFO (a one-byte holding register when FIFOs are off) */
	uint8_t rx_fifo[SERIAL8250_FIFO_SIZE];
	unsigned rx_head, rx_count;
	bool thr_ipending; /* THRE interrupt pending (cleared by IIR read or THR write) */
	bool irq_level;	   /* level currently driven on the IRQ line */
	bool rx_blocked;   /* the backend was refused bytes: call rx_space when room appears */
};

/* base: I/O port (0x3f8 for COM1); irq: ISA line (4). backend may be NULL (output dropped). */
void serial8250_init(struct serial8250 *s, uint16_t base, unsigned irq, struct irq_router *router,
		     const struct serial8250_backend *backend);
void serial8250_destroy(struct serial8250 *s);
/* Register the 8 ports at base on the port I/O bus. */
int serial8250_register(struct serial8250 *s, struct io_bus *pio);
/* Power-on state (registers; the backend stays). */
void serial8250_reset(struct serial8250 *s);

/* Feed received bytes; returns how many were taken (the rest did not fit the FIFO). */
size_t serial8250_receive(struct serial8250 *s, const uint8_t *buf, size_t len);
/* How many bytes serial8250_receive() would take now. */
size_t serial8250_can_receive(struct serial8250 *s);
/* A break condition on the receive line (a zero character with LSR.BI and a line status
 * interrupt; Linux takes it as magic SysRq on a console). False when the FIFO is full. */
bool serial8250_send_break(struct serial8250 *s);

int serial8250_save(struct serial8250 *s, struct state_buf *out);
int serial8250_load(struct serial8250 *s, struct state_buf *in);

#endif

/* Device tests for the 16550A UART (hw/serial8250.c), driven through the port bus: Linux's
 * autoconfig probe sequence, loopback, FIFO and trigger levels, IIR priorities, the THRE
 * interrupt rules, the IRQ line gated by OUT2, line breaks, backpressure and save/load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>

#include "core/state.h"
#include "hw/serial8250.h"
#include "test_hw_common.h"

#define BASE 0x3f8
#define IRQ  4
enum { RBR = BASE, IER, IIR, LCR, MCR, LSR, MSR, SCR };
#define FCR IIR

struct fixture {
	struct io_bus bus;
	struct irq_rec rec;
	struct irq_router router;
	struct serial8250 uart;
	uint8_t out[256];
	size_t out_len;
	unsigned rx_space_calls;
};

static void be_write(void *opaque, const uint8_t *buf, size_t len)
{
	struct fixture *f = opaque;
	for (size_t i = 0; i < len && f->out_len < sizeof(f->out); i++)
		f->out[f->out_len++] = buf[i];
}

static void be_rx_space(void *opaque)
{
	struct fixture *f = opaque;
	f->rx_space_calls++;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	io_bus_init(&f->bus, "io");
	irq_rec_init(&f->rec, &f->router);
	struct serial8250_backend be = {.write = be_write, .rx_space = be_rx_space, .opaque = f};
	serial8250_init(&f->uart, BASE, IRQ, &f->router, &be);
	assert_int_equal(serial8250_register(&f->uart, &f->bus), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	serial8250_destroy(&f->uart);
	io_bus_destroy(&f->bus);
	free(f);
	return 0;
}

/* The sequence Linux's autoconfig() runs, in order. */
static void linux_autoconfig_probe(void **state)
{
	struct fixture *f = *state;
	struct io_bus *b = &f->bus;

	/* IER read-back: only bits 0-3 exist. */
	outb(b, IER, 0);
	assert_int_equal(inb(b, IER), 0);
	outb(b, IER, 0x0f);
	assert_int_equal(inb(b, IER), 0x0f);
	outb(b, IER, 0);
	/* Loopback test: OUT2|RTS looped back read as DCD|CTS in the MSR top nibble. */
	uint8_t save_mcr = inb(b, MCR);
	outb(b, MCR, 0x10 | 0x0a);
	assert_int_equal(inb(b, MSR) & 0xf0, 0x90);
	outb(b, MCR, save_mcr);
	/* FIFO enable -> IIR bits 6-7 = 11: a 16550A. */
	outb(b, LCR, 0);
	outb(b, FCR, 0x01);
	assert_int_equal(inb(b, IIR) >> 6, 3);
	/* No EFR at LCR=0xBF: offset 2 still reads IIR (non-zero). */
	outb(b, LCR, 0xbf);
	assert_int_not_equal(inb(b, IIR), 0);
	/* No 64-byte FIFO (IIR bit 5 stays 0 with FCR bit 5 set). */
	outb(b, LCR, 0);
	outb(b, FCR, 0x21);
	assert_int_equal((inb(b, IIR) >> 5) & 1, 0);
	outb(b, LCR, 0x80);
	outb(b, FCR, 0x21);
	assert_int_equal((inb(b, IIR) >> 5) & 1, 0);
	/* No UUE bit (IER bit 6) as on XScale UARTs. */
	outb(b, LCR, 0);
	outb(b, IER, 0x40);
	assert_int_equal(inb(b, IER) & 0x40, 0);
	/* Divisor latch: 115200 baud. */
	outb(b, LCR, 0x83);
	outb(b, RBR, 1);
	outb(b, IER, 0);
	assert_int_equal(inb(b, RBR), 1);
	assert_int_equal(inb(b, IER), 0);
	outb(b, LCR, 0x03);
	/* Scratch register. */
	outb(b, SCR, 0x5a);
	assert_int_equal(inb(b, SCR), 0x5a);
	assert_int_equal(inb(b, LSR) & 0x60, 0x60); /* THRE and TEMT */
	assert_int_equal(f->out_len, 0);
}

static void transmit_and_loopback(void **state)
{
	struct fixture *f = *state;
	struct io_bus *b = &f->bus;

	outb(b, RBR, 'h');
	outb(b, RBR, 'i');
	assert_int_equal(f->out_len, 2);
	assert_memory_equal(f->out, "hi", 2);
	/* In loopback TX goes to RX, not to the backend. */
	outb(b, MCR, 0x10);
	outb(b, RBR, 'x');
	assert_int_equal(f->out_len, 2);
	assert_int_equal(inb(b, LSR) & 1, 1);
	assert_int_equal(inb(b, RBR), 'x');
	assert_int_equal(inb(b, LSR) & 1, 0);
	/* Outside data is not accepted in loopback. */
	assert_int_equal(serial8250_can_receive(&f->uart), 0);
	assert_int_equal(serial8250_receive(&f->uart, (const uint8_t *)"z", 1), 0);
	/* Non-FIFO mode: a second byte overruns the one-byte holding register. */
	outb(b, RBR, '1');
	outb(b, RBR, '2');
	assert_int_equal(inb(b, LSR) & 0x03, 0x03); /* DR and OE */
	assert_int_equal(inb(b, LSR) & 0x02, 0);    /* OE clears on read */
	assert_int_equal(inb(b, RBR), '1');
	/* MSR mirrors MCR outputs, with delta bits. */
	inb(b, MSR);
	outb(b, MCR, 0x10 | 0x01 | 0x04); /* DTR, OUT1 */
	uint8_t msr = inb(b, MSR);
	assert_int_equal(msr & 0xf0, 0x20 | 0x40); /* DSR, RI */
	assert_int_equal(msr & 0x02, 0x02);	   /* DDSR */
	outb(b, MCR, 0x10);
	msr = inb(b, MSR);
	assert_int_equal(msr & 0x04, 0x04); /* TERI: RI went 1 -> 0 */
	/* Leaving loopback: the modem lines read as connected. The receiver that refused
	 * bytes above is told there is room again. */
	unsigned calls = f->rx_space_calls;
	outb(b, MCR, 0x0b);
	assert_int_equal(inb(b, MSR) & 0xf0, 0xb0);
	assert_int_equal(f->rx_space_calls, calls + 1);
}

static void fifo_and_trigger(void **state)
{
	struct fixture *f = *state;
	struct io_bus *b = &f->bus;
	uint8_t data[20];
	for (int i = 0; i < 20; i++)
		data[i] = 'a' + i;

	outb(b, FCR, 0x01 | 0x80); /* FIFO on, trigger 8 */
	assert_int_equal(serial8250_can_receive(&f->uart), 16);
	assert_int_equal(serial8250_receive(&f->uart, data, 4), 4);
	outb(b, IER, 0x01);
	assert_int_equal(inb(b, IIR), 0xcc); /* below trigger: character timeout */
	assert_int_equal(serial8250_receive(&f->uart, data + 4, 16), 12); /* FIFO full */
	assert_int_equal(inb(b, IIR), 0xc4);				  /* RDA */
	assert_int_equal(serial8250_can_receive(&f->uart), 0);
	unsigned calls = f->rx_space_calls;
	for (int i = 0; i < 16; i++)
		assert_int_equal(inb(b, RBR), 'a' + i);
	assert_int_equal(f->rx_space_calls, calls + 1); /* refused bytes: told once */
	assert_int_equal(inb(b, IIR), 0xc1);
	assert_int_equal(inb(b, LSR) & 1, 0);
	/* RX FIFO reset. */
	serial8250_receive(&f->uart, data, 3);
	outb(b, FCR, 0x01 | 0x02);
	assert_int_equal(inb(b, LSR) & 1, 0);
	/* FIFO off: one byte of room. */
	outb(b, FCR, 0);
	assert_int_equal(inb(b, IIR) & 0xc0, 0);
	assert_int_equal(serial8250_receive(&f->uart, data, 3), 1);
	assert_int_equal(inb(b, IIR), 0x04);
	/* A reset empties the FIFO: a refused backend hears about it. */
	calls = f->rx_space_calls;
	serial8250_reset(&f->uart);
	assert_int_equal(f->rx_space_calls, calls + 1);
	assert_int_equal(inb(b, LSR) & 1, 0);
}

static void iir_priorities_and_irq(void **state)
{
	struct fixture *f = *state;
	struct io_bus *b = &f->bus;

	outb(b, MCR, 0x08); /* OUT2: IRQ gate open */
	assert_false(f->rec.level[IRQ]);
	/* THRE: raised when ETBEI is enabled with THR empty. */
	outb(b, IER, 0x02);
	assert_true(f->rec.level[IRQ]);
	assert_int_equal(inb(b, IIR), 0x02);
	/* Reading IIR acknowledged it. */
	assert_int_equal(inb(b, IIR), 0x01);
	assert_false(f->rec.level[IRQ]);
	/* A THR write re-arms it (transmitted at once). */
	outb(b, RBR, '.');
	assert_true(f->rec.level[IRQ]);
	/* Modem status is below THRE... */
	outb(b, IER, 0x0f);
	outb(b, MCR, 0x18); /* loopback: MSR changes -> deltas; IRQ gated off */
	assert_false(f->rec.level[IRQ]);
	outb(b, MCR, 0x08);
	assert_true(f->rec.level[IRQ]);
	assert_int_equal(inb(b, IIR), 0x02); /* THRE before MS */
	assert_int_equal(inb(b, IIR), 0x00); /* then MS */
	inb(b, MSR);
	assert_int_equal(inb(b, IIR), 0x01);
	assert_false(f->rec.level[IRQ]);
	/* ...received data above THRE, line status above all. */
	outb(b, RBR, '.'); /* THRE pending again */
	serial8250_receive(&f->uart, (const uint8_t *)"q", 1);
	assert_int_equal(inb(b, IIR), 0x04);
	outb(b, MCR, 0x18);
	outb(b, RBR, 'r'); /* loopback, holding register full: overrun */
	outb(b, MCR, 0x08);
	assert_int_equal(inb(b, IIR), 0x06);
	inb(b, LSR);
	assert_int_equal(inb(b, IIR), 0x04);
	inb(b, RBR);
	inb(b, MSR);
	assert_int_equal(inb(b, IIR), 0x02);
	/* Without OUT2 the line stays low even with an interrupt pending. */
	outb(b, RBR, '.');
	outb(b, MCR, 0x00);
	assert_false(f->rec.level[IRQ]);
	assert_int_equal(inb(b, IIR), 0x02);
	/* Disabling ETBEI drops a pending THRE. */
	outb(b, MCR, 0x08);
	outb(b, RBR, '.');
	assert_true(f->rec.level[IRQ]);
	outb(b, IER, 0x00);
	assert_false(f->rec.level[IRQ]);
}

/* A break (the console's C-a b): a zero character with LSR.BI and a line status interrupt,
 * as Linux's 8250 driver expects for magic SysRq; BI clears on the LSR read. */
static void line_break(void **state)
{
	struct fixture *f = *state;
	struct io_bus *b = &f->bus;
	outb(b, FCR, 0x01);
	outb(b, MCR, 0x08);
	outb(b, IER, 0x05); /* ERBFI | ELSI */
	assert_true(serial8250_send_break(&f->uart));
	assert_true(f->rec.level[IRQ]);
	assert_int_equal(inb(b, IIR) & 0x0f, 0x06); /* line status first */
	uint8_t lsr = inb(b, LSR);
	assert_int_equal(lsr & 0x11, 0x11);	 /* BI | DR */
	assert_int_equal(inb(b, LSR) & 0x10, 0); /* cleared by the read */
	assert_int_equal(inb(b, RBR), 0);
	assert_int_equal(inb(b, LSR) & 0x01, 0);
	assert_false(f->rec.level[IRQ]);
	/* In loopback the line is not connected: no break. */
	outb(b, MCR, 0x18);
	assert_false(serial8250_send_break(&f->uart));
	outb(b, MCR, 0x08);
	/* A full FIFO has no room for the break character. */
	uint8_t full[16] = {0};
	assert_int_equal(serial8250_receive(&f->uart, full, sizeof(full)), 16);
	assert_false(serial8250_send_break(&f->uart));
}

/* serial8250_do_startup: THRE must be re-asserted each time ETBEI goes 0 -> 1. */
static void linux_thre_test(void **state)
{
	struct fixture *f = *state;
	struct io_bus *b = &f->bus;
	outb(b, IER, 0x02);
	uint8_t iir1 = inb(b, IIR);
	outb(b, IER, 0);
	outb(b, IER, 0x02);
	uint8_t iir = inb(b, IIR);
	outb(b, IER, 0);
	assert_int_equal(iir1 & 1, 0);
	assert_int_equal(iir & 1, 0);
}

/* Random register traffic must never crash or break the FIFO invariants. */
static void random_io(void **state)
{
	struct fixture *f = *state;
	unsigned seed = 12345;
	for (int i = 0; i < 200000; i++) {
		seed = seed * 1103515245 + 12345;
		uint16_t port = BASE + ((seed >> 16) & 7);
		uint8_t val = seed >> 24;
		if (seed & 0x100)
			outb(&f->bus, port, val);
		else
			inb(&f->bus, port);
		if ((seed & 0xf000) == 0)
			serial8250_receive(&f->uart, &val, 1);
		assert_true(f->uart.rx_count <= SERIAL8250_FIFO_SIZE);
		assert_true(f->uart.rx_head < SERIAL8250_FIFO_SIZE);
		assert_int_equal(f->rec.level[IRQ], f->uart.irq_level);
	}
}

/* The console thread feeds bytes while a vCPU thread drains them: every byte arrives, in
 * order (run under TSAN for the locking). */
#define STREAM_LEN 20000

static void *feeder(void *arg)
{
	struct fixture *f = arg;
	for (unsigned i = 0; i < STREAM_LEN;) {
		uint8_t b = (uint8_t)(i * 7);
		if (serial8250_receive(&f->uart, &b, 1))
			i++;
		else
			sched_yield();
	}
	return NULL;
}

static void threaded_rx(void **state)
{
	struct fixture *f = *state;
	pthread_t th;
	outb(&f->bus, FCR, 0xc1);
	pthread_create(&th, NULL, feeder, f);
	for (unsigned i = 0; i < STREAM_LEN;) {
		if (!(inb(&f->bus, LSR) & 1)) {
			sched_yield();
			continue;
		}
		assert_int_equal(inb(&f->bus, RBR), (uint8_t)(i * 7));
		i++;
	}
	pthread_join(th, NULL);
}

static void save_load(void **state)
{
	struct fixture *f = *state;
	struct io_bus *b = &f->bus;
	struct state_buf sb;

	outb(b, LCR, 0x83);
	outb(b, RBR, 3);
	outb(b, LCR, 0x03);
	outb(b, FCR, 0x41);
	outb(b, IER, 0x05);
	outb(b, MCR, 0x0b);
	outb(b, SCR, 0x77);
	serial8250_receive(&f->uart, (const uint8_t *)"abc", 3);
	assert_true(f->rec.level[IRQ]);

	state_init_writer(&sb);
	assert_int_equal(serial8250_save(&f->uart, &sb), 0);

	struct irq_rec rec2;
	struct irq_router router2;
	irq_rec_init(&rec2, &router2);
	struct serial8250 u2;
	struct io_bus bus2;
	io_bus_init(&bus2, "io");
	serial8250_init(&u2, BASE, IRQ, &router2, NULL);
	serial8250_register(&u2, &bus2);
	struct state_buf rd;
	state_init_reader(&rd, sb.data, sb.len);
	assert_int_equal(serial8250_load(&u2, &rd), 0);
	assert_true(rec2.level[IRQ]);
	assert_int_equal(inb(&bus2, SCR), 0x77);
	assert_int_equal(inb(&bus2, IIR), 0xcc); /* 3 bytes, below trigger 4 */
	assert_int_equal(inb(&bus2, RBR), 'a');
	assert_int_equal(inb(&bus2, RBR), 'b');
	assert_int_equal(inb(&bus2, RBR), 'c');
	outb(&bus2, LCR, 0x83);
	assert_int_equal(inb(&bus2, RBR), 3);

	/* Truncated and corrupt streams are refused. */
	state_init_reader(&rd, sb.data, sb.len - 2);
	assert_int_equal(serial8250_load(&u2, &rd), -EINVAL);
	sb.data[11] = 200; /* rx_count */
	state_init_reader(&rd, sb.data, sb.len);
	assert_int_equal(serial8250_load(&u2, &rd), -EINVAL);
	state_free(&sb);
	serial8250_destroy(&u2);
	io_bus_destroy(&bus2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(linux_autoconfig_probe, setup, teardown),
	    cmocka_unit_test_setup_teardown(transmit_and_loopback, setup, teardown),
	    cmocka_unit_test_setup_teardown(fifo_and_trigger, setup, teardown),
	    cmocka_unit_test_setup_teardown(iir_priorities_and_irq, setup, teardown),
	    cmocka_unit_test_setup_teardown(linux_thre_test, setup, teardown),
	    cmocka_unit_test_setup_teardown(line_break, setup, teardown),
	    cmocka_unit_test_setup_teardown(save_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(random_io, setup, teardown),
	    cmocka_unit_test_setup_teardown(threaded_rx, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

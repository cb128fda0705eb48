/* Device tests for the MC146818A RTC/CMOS (hw/rtc_cmos.c) on a fake clock: time in BCD and
 * binary, 12/24 hours, the SET bit, UIP, Linux's set-time sequence with the divider reset,
 * register C, periodic/alarm/update interrupts on IRQ 8, CMOS RAM over reset, the memory
 * size bytes and save/load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/state.h"
#include "hw/rtc_cmos.h"
#include "test_hw_common.h"

#define T0   1709251198LL /* 2024-02-29 23:59:58 UTC, a Thursday */
#define IRQ  8
#define SEC  1000000000ULL
#define MSEC 1000000ULL

struct fixture {
	struct io_bus bus;
	struct irq_rec rec;
	struct irq_router router;
	struct vclock clock;
	struct timer_list timers;
	struct rtc_cmos rtc;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	fake_now_ns = 0;
	io_bus_init(&f->bus, "io");
	irq_rec_init(&f->rec, &f->router);
	vclock_init_source(&f->clock, fake_clock, NULL);
	timer_list_init(&f->timers, &f->clock);
	rtc_cmos_init(&f->rtc, &f->clock, &f->timers, &f->router, T0);
	assert_int_equal(rtc_cmos_register(&f->rtc, &f->bus), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	rtc_cmos_destroy(&f->rtc);
	timer_list_destroy(&f->timers);
	vclock_destroy(&f->clock);
	io_bus_destroy(&f->bus);
	free(f);
	return 0;
}

static uint8_t cmos_read(struct fixture *f, uint8_t idx)
{
	outb(&f->bus, 0x70, idx);
	return inb(&f->bus, 0x71);
}

static void cmos_write(struct fixture *f, uint8_t idx, uint8_t v)
{
	outb(&f->bus, 0x70, idx);
	outb(&f->bus, 0x71, v);
}

/* Move the fake clock forward by ns, running each timer at its deadline. Returns the
 * number of callbacks run. */
static unsigned advance(struct fixture *f, uint64_t ns)
{
	uint64_t target = fake_now_ns + ns;
	unsigned ran = 0;
	for (;;) {
		uint64_t next = timer_list_next_deadline(&f->timers);
		if (next > target)
			break;
		if (next > fake_now_ns)
			fake_now_ns = next;
		ran += timer_list_run_expired(&f->timers, vclock_now(&f->clock));
	}
	fake_now_ns = target;
	return ran;
}

static void time_bcd_and_rollover(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(cmos_read(f, 0x0b), 0x02); /* BCD, 24 h */
	assert_int_equal(cmos_read(f, 0x00), 0x58);
	assert_int_equal(cmos_read(f, 0x02), 0x59);
	assert_int_equal(cmos_read(f, 0x04), 0x23);
	assert_int_equal(cmos_read(f, 0x06), 5); /* Thursday, 1 = Sunday */
	assert_int_equal(cmos_read(f, 0x07), 0x29);
	assert_int_equal(cmos_read(f, 0x08), 0x02);
	assert_int_equal(cmos_read(f, 0x09), 0x24);
	assert_int_equal(cmos_read(f, 0x32), 0x20);
	assert_int_equal(cmos_read(f, 0x0d), 0x80); /* VRT */
	advance(f, 2 * SEC);			    /* leap day rolls into March */
	assert_int_equal(cmos_read(f, 0x00), 0x00);
	assert_int_equal(cmos_read(f, 0x04), 0x00);
	assert_int_equal(cmos_read(f, 0x06), 6);
	assert_int_equal(cmos_read(f, 0x07), 0x01);
	assert_int_equal(cmos_read(f, 0x08), 0x03);
	assert_int_equal(rtc_cmos_get_time(&f->rtc), T0 + 2);
	/* Paused VM: the clock stands still. */
	vclock_pause(&f->clock);
	fake_now_ns += 10 * SEC;
	assert_int_equal(cmos_read(f, 0x00), 0x00);
	vclock_resume(&f->clock);
	fake_now_ns += SEC;
	assert_int_equal(cmos_read(f, 0x00), 0x01);
}

static void time_binary_12h(void **state)
{
	struct fixture *f = *state;
	cmos_write(f, 0x0b, 0x04); /* binary, 12 h */
	assert_int_equal(cmos_read(f, 0x00), 58);
	assert_int_equal(cmos_read(f, 0x02), 59);
	assert_int_equal(cmos_read(f, 0x04), 0x80 | 11); /* 11 PM */
	assert_int_equal(cmos_read(f, 0x09), 24);
	assert_int_equal(cmos_read(f, 0x32), 20);
	advance(f, 2 * SEC);
	assert_int_equal(cmos_read(f, 0x04), 12); /* midnight is 12 AM */
	cmos_write(f, 0x0b, 0x00);		  /* BCD, 12 h */
	assert_int_equal(cmos_read(f, 0x04), 0x12);
}

static void set_bit_freezes(void **state)
{
	struct fixture *f = *state;
	cmos_write(f, 0x0b, 0x82); /* SET */
	cmos_write(f, 0x00, 0x30);
	cmos_write(f, 0x02, 0x15);
	cmos_write(f, 0x04, 0x10);
	cmos_write(f, 0x07, 0x04);
	cmos_write(f, 0x08, 0x07);
	cmos_write(f, 0x09, 0x26);
	advance(f, 5 * SEC);
	assert_int_equal(cmos_read(f, 0x00), 0x30); /* frozen while SET */
	assert_int_equal(cmos_read(f, 0x0a) & 0x80, 0);
	cmos_write(f, 0x0b, 0x02);
	assert_int_equal(rtc_cmos_get_time(&f->rtc), 1783160130LL); /* 2026-07-04 10:15:30 */
	advance(f, SEC);
	assert_int_equal(cmos_read(f, 0x00), 0x31);
	assert_int_equal(cmos_read(f, 0x06), 0x07); /* a Saturday */
}

/* mc146818_set_time(): SET, divider reset, write the time, restore B then A. */
static void linux_set_time_sequence(void **state)
{
	struct fixture *f = *state;
	uint8_t b = cmos_read(f, 0x0b), a = cmos_read(f, 0x0a);
	assert_int_equal(a, 0x26);
	cmos_write(f, 0x0b, b | 0x80);
	cmos_write(f, 0x0a, a | 0x70);
	cmos_write(f, 0x09, 0x30);
	cmos_write(f, 0x08, 0x01);
	cmos_write(f, 0x07, 0x01);
	cmos_write(f, 0x04, 0x00);
	cmos_write(f, 0x02, 0x00);
	cmos_write(f, 0x00, 0x00);
	cmos_write(f, 0x0b, b);
	advance(f, 3 * SEC);
	assert_int_equal(cmos_read(f, 0x00), 0x00); /* divider still in reset */
	cmos_write(f, 0x0a, a);
	advance(f, 499 * MSEC);
	assert_int_equal(cmos_read(f, 0x00), 0x00);
	advance(f, 1 * MSEC); /* first update 500 ms after the divider restarts */
	assert_int_equal(cmos_read(f, 0x00), 0x01);
	assert_int_equal(rtc_cmos_get_time(&f->rtc), 1893456001LL); /* 2030-01-01 00:00:01 */
}

static void uip_window(void **state)
{
	struct fixture *f = *state;
	/* The clock's seconds start at vclock 0. */
	fake_now_ns = 500 * MSEC;
	assert_int_equal(cmos_read(f, 0x0a) & 0x80, 0);
	fake_now_ns = SEC - 200000; /* 200 us before the update */
	assert_int_equal(cmos_read(f, 0x0a) & 0x80, 0x80);
	assert_int_equal(cmos_read(f, 0x00), 0x58); /* not updated yet */
	fake_now_ns = SEC;
	assert_int_equal(cmos_read(f, 0x0a) & 0x80, 0);
	assert_int_equal(cmos_read(f, 0x00), 0x59);
	/* No UIP while SET holds the clock. */
	cmos_write(f, 0x0b, 0x82);
	fake_now_ns = 2 * SEC - 100000;
	assert_int_equal(cmos_read(f, 0x0a) & 0x80, 0);
}

static void periodic_interrupt(void **state)
{
	struct fixture *f = *state;
	cmos_write(f, 0x0a, 0x2f); /* 2 Hz */
	cmos_write(f, 0x0b, 0x42); /* PIE */
	assert_int_equal(cmos_read(f, 0x0c), 0);
	assert_int_equal(timer_list_next_deadline(&f->timers), 500 * MSEC);
	assert_false(f->rec.level[IRQ]);
	advance(f, 500 * MSEC);
	assert_true(f->rec.level[IRQ]);
	assert_int_equal(cmos_read(f, 0x0c), 0xc0); /* IRQF | PF */
	assert_false(f->rec.level[IRQ]);	    /* reading C lowers the line */
	assert_int_equal(cmos_read(f, 0x0c), 0);
	unsigned ran = advance(f, 2 * SEC);
	assert_int_equal(f->rec.raises[IRQ], 2); /* stays high until C is read */
	assert_int_equal(ran, 1);		 /* and the timer waits for that read */
	assert_true(timer_list_next_deadline(&f->timers) == TIMER_NEVER);
	cmos_read(f, 0x0c);
	/* 1024 Hz: 10 ms is about 10 ticks, each raising the line after a C read. */
	cmos_write(f, 0x0a, 0x26);
	unsigned before = f->rec.raises[IRQ];
	for (int i = 0; i < 10; i++) {
		advance(f, 976563);
		cmos_read(f, 0x0c);
	}
	assert_in_range(f->rec.raises[IRQ] - before, 9, 11);
	/* PIE off: no timer, but PF still shows in C. */
	cmos_write(f, 0x0b, 0x02);
	assert_true(timer_list_next_deadline(&f->timers) == TIMER_NEVER);
	cmos_read(f, 0x0c);
	fake_now_ns += 5 * MSEC;
	assert_int_equal(cmos_read(f, 0x0c), 0x40); /* PF, no IRQF */
	assert_false(f->rec.level[IRQ]);
}

static void update_and_alarm_interrupts(void **state)
{
	struct fixture *f = *state;
	/* Update-ended: once a second. */
	cmos_write(f, 0x0b, 0x12);
	advance(f, SEC);
	assert_true(f->rec.level[IRQ]);
	assert_int_equal(cmos_read(f, 0x0c) & 0xb0, 0x90); /* IRQF | UF (PF runs on its own) */
	assert_int_equal(cmos_read(f, 0x00), 0x59);
	/* Alarm at 00:00:03 with "don't care" hours: fires at 00:00:03 only. */
	cmos_write(f, 0x0b, 0x22);
	cmos_write(f, 0x01, 0x03);
	cmos_write(f, 0x03, 0x00);
	cmos_write(f, 0x05, 0xff);
	cmos_read(f, 0x0c);
	advance(f, 3 * SEC); /* now 00:00:02 */
	assert_false(f->rec.level[IRQ]);
	advance(f, SEC);
	assert_true(f->rec.level[IRQ]);
	assert_int_equal(cmos_read(f, 0x00), 0x03);
	assert_int_equal(cmos_read(f, 0x0c) & 0xa0, 0xa0); /* IRQF | AF */
	advance(f, 60 * SEC);
	assert_false(f->rec.level[IRQ]); /* next match is an hour away */
	/* All three "don't care": every second. */
	cmos_write(f, 0x01, 0xc0);
	cmos_write(f, 0x03, 0xc0);
	cmos_write(f, 0x05, 0xc0);
	cmos_read(f, 0x0c);
	advance(f, SEC);
	assert_true(f->rec.level[IRQ]);
	/* SET stops updates and clears UIE. */
	cmos_write(f, 0x0b, 0x92);
	assert_int_equal(cmos_read(f, 0x0b), 0x82);
	cmos_read(f, 0x0c);
	advance(f, 3 * SEC);
	assert_false(f->rec.level[IRQ]);
	assert_int_equal(cmos_read(f, 0x0c) & 0xb0, 0); /* no UF, AF, IRQF */
}

static void nvram_survives_reset(void **state)
{
	struct fixture *f = *state;
	cmos_write(f, 0x50, 0x07);
	outb(&f->bus, 0x72, 0x10);
	outb(&f->bus, 0x73, 0xab);
	cmos_write(f, 0x0b, 0x72); /* PIE AIE UIE */
	rtc_cmos_reset(&f->rtc);
	assert_int_equal(cmos_read(f, 0x50), 0x07);
	outb(&f->bus, 0x72, 0x10);
	assert_int_equal(inb(&f->bus, 0x73), 0xab);
	assert_int_equal(rtc_cmos_peek(&f->rtc, 0x90), 0xab);
	assert_int_equal(cmos_read(f, 0x0b), 0x02); /* enables cleared */
	assert_true(timer_list_next_deadline(&f->timers) == TIMER_NEVER);
	assert_int_equal(cmos_read(f, 0x00), 0x58); /* time kept */
	/* Bit 7 of the index masks NMI and does not change the register. */
	outb(&f->bus, 0x70, 0x80 | 0x50);
	assert_true(f->rtc.nmi_masked);
	assert_int_equal(inb(&f->bus, 0x71), 0x07);
}

static void memory_size_bytes(void **state)
{
	struct fixture *f = *state;
	const uint64_t MiB = 1 << 20;
	rtc_cmos_set_mem_size(&f->rtc, 3072 * MiB, 2048 * MiB);
	assert_int_equal(cmos_read(f, 0x15) | cmos_read(f, 0x16) << 8, 640);
	assert_int_equal(cmos_read(f, 0x17) | cmos_read(f, 0x18) << 8, 0xffff);
	assert_int_equal(cmos_read(f, 0x30) | cmos_read(f, 0x31) << 8, 0xffff);
	assert_int_equal(cmos_read(f, 0x34) | cmos_read(f, 0x35) << 8, (3072 - 16) * 16);
	assert_int_equal(cmos_read(f, 0x5b) | cmos_read(f, 0x5c) << 8 | cmos_read(f, 0x5d) << 16,
			 2048 * 16);
	rtc_cmos_set_mem_size(&f->rtc, 32 * MiB, 0);
	assert_int_equal(cmos_read(f, 0x17) | cmos_read(f, 0x18) << 8, 31 * 1024);
	assert_int_equal(cmos_read(f, 0x34) | cmos_read(f, 0x35) << 8, 16 * 16);
	assert_int_equal(cmos_read(f, 0x5b), 0);
}

/* Random index/data traffic with the clock moving: no crash, the IRQ line follows C. */
static void random_io(void **state)
{
	struct fixture *f = *state;
	unsigned seed = 4242;
	for (int i = 0; i < 100000; i++) {
		seed = seed * 1103515245 + 12345;
		uint8_t val = seed >> 24;
		switch ((seed >> 16) & 3) {
		case 0:
			outb(&f->bus, 0x70 + ((seed >> 8) & 2), val);
			break;
		case 1:
			outb(&f->bus, 0x71 + ((seed >> 8) & 2), val);
			break;
		case 2:
			inb(&f->bus, 0x71 + ((seed >> 8) & 2));
			break;
		case 3:
			advance(f, (seed >> 4) & 0xfffff);
			break;
		}
		assert_int_equal(f->rec.level[IRQ], f->rtc.irq_level);
		assert_int_equal(!!(f->rtc.cmos[0x0c] & 0x80), f->rtc.irq_level);
	}
}

static void save_load(void **state)
{
	struct fixture *f = *state;
	struct state_buf sb;
	cmos_write(f, 0x50, 0x42);
	cmos_write(f, 0x0a, 0x2f);
	cmos_write(f, 0x0b, 0x42);
	advance(f, 500 * MSEC);
	assert_true(f->rec.level[IRQ]);
	outb(&f->bus, 0x70, 0x0c);
	state_init_writer(&sb);
	assert_int_equal(rtc_cmos_save(&f->rtc, &sb), 0);

	/* A second RTC on the same clock with another time: the load replaces it all. */
	struct irq_rec rec2;
	struct irq_router router2;
	irq_rec_init(&rec2, &router2);
	struct rtc_cmos r2;
	struct io_bus bus2;
	io_bus_init(&bus2, "io");
	rtc_cmos_init(&r2, &f->clock, &f->timers, &router2, 0);
	rtc_cmos_register(&r2, &bus2);
	struct state_buf rd;
	state_init_reader(&rd, sb.data, sb.len);
	assert_int_equal(rtc_cmos_load(&r2, &rd), 0);
	assert_true(rec2.level[IRQ]);
	assert_int_equal(inb(&bus2, 0x71), 0xc0); /* index 0x0c restored: C */
	assert_int_equal(rtc_cmos_get_time(&r2), T0);
	outb(&bus2, 0x70, 0x50);
	assert_int_equal(inb(&bus2, 0x71), 0x42);
	assert_true(timer_pending(&r2.periodic_timer));

	state_init_reader(&rd, sb.data, sb.len - 1);
	assert_int_equal(rtc_cmos_load(&r2, &rd), -EINVAL);
	sb.data[1 + 256] = 0x80; /* index out of range */
	state_init_reader(&rd, sb.data, sb.len);
	assert_int_equal(rtc_cmos_load(&r2, &rd), -EINVAL);
	state_free(&sb);
	rtc_cmos_destroy(&r2);
	io_bus_destroy(&bus2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(time_bcd_and_rollover, setup, teardown),
	    cmocka_unit_test_setup_teardown(time_binary_12h, setup, teardown),
	    cmocka_unit_test_setup_teardown(set_bit_freezes, setup, teardown),
	    cmocka_unit_test_setup_teardown(linux_set_time_sequence, setup, teardown),
	    cmocka_unit_test_setup_teardown(uip_window, setup, teardown),
	    cmocka_unit_test_setup_teardown(periodic_interrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(update_and_alarm_interrupts, setup, teardown),
	    cmocka_unit_test_setup_teardown(nvram_survives_reset, setup, teardown),
	    cmocka_unit_test_setup_teardown(memory_size_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(save_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(random_io, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

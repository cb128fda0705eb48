/* Device tests for hw/acpi_pm.c, driven through the port I/O bus with a recording IRQ router
 * and a made-up clock: PM1 status/enable (write-1-to-clear, SCI level), PM1 control (SCI_EN,
 * S5 -> poweroff), the PM timer, the reset register, save/load and concurrent access. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/io_bus.h"
#include "core/irq.h"
#include "core/state.h"
#include "hw/acpi_pm.h"

struct rig {
	struct io_bus io;
	struct irq_router irq;
	struct acpi_pm pm;
	pthread_mutex_t lock; /* the recorder is called from several threads in one test */
	bool level[32];
	unsigned edges[32]; /* level changes seen per GSI */
	uint64_t now_ns;
	unsigned poweroffs, resets;
};

static void rec_set_line(void *opaque, unsigned gsi, bool level)
{
	struct rig *r = opaque;
	pthread_mutex_lock(&r->lock);
	if (gsi < 32) {
		if (r->level[gsi] != level)
			r->edges[gsi]++;
		r->level[gsi] = level;
	}
	pthread_mutex_unlock(&r->lock);
}

static const struct irq_router_ops rec_ops = {.set_line = rec_set_line};

static uint64_t clock_ns(void *opaque)
{
	return ((struct rig *)opaque)->now_ns;
}

static void on_poweroff(void *opaque)
{
	((struct rig *)opaque)->poweroffs++;
}

static void on_reset(void *opaque)
{
	((struct rig *)opaque)->resets++;
}

static int setup(void **state)
{
	static struct rig r;
	memset(&r, 0, sizeof(r));
	pthread_mutex_init(&r.lock, NULL);
	io_bus_init(&r.io, "io");
	r.irq = (struct irq_router){.ops = &rec_ops, .opaque = &r};
	struct acpi_pm_config cfg;
	acpi_pm_config_default(&cfg);
	cfg.irq = &r.irq;
	cfg.clock_ns = clock_ns;
	cfg.clock_opaque = &r;
	cfg.poweroff = on_poweroff;
	cfg.reset = on_reset;
	cfg.cb_opaque = &r;
	if (acpi_pm_init(&r.pm, &cfg, &r.io))
		return -1;
	*state = &r;
	return 0;
}

static int teardown(void **state)
{
	struct rig *r = *state;
	acpi_pm_destroy(&r->pm);
	io_bus_destroy(&r->io);
	pthread_mutex_destroy(&r->lock);
	return 0;
}

static uint64_t in(struct rig *r, uint16_t port, unsigned size)
{
	uint64_t v = 0;
	assert_true(io_bus_read(&r->io, port, size, &v));
	return v;
}

static void out(struct rig *r, uint16_t port, unsigned size, uint64_t v)
{
	assert_true(io_bus_write(&r->io, port, size, v));
}

static void power_button_sci(void **state)
{
	struct rig *r = *state;
	/* Not enabled yet: status only, no SCI. */
	acpi_pm_power_button(&r->pm);
	assert_int_equal(in(r, 0x600, 2), ACPI_PM1_PWRBTN);
	assert_false(r->level[9]);
	/* Enabling it with the status pending raises the SCI at once (level-triggered). */
	out(r, 0x602, 2, ACPI_PM1_PWRBTN);
	assert_true(r->level[9]);
	assert_int_equal(in(r, 0x600, 4), ACPI_PM1_PWRBTN | ACPI_PM1_PWRBTN << 16);
	/* Writing 0s or other bits clears nothing. */
	out(r, 0x600, 2, 0);
	out(r, 0x600, 2, ACPI_PM1_TMR | ACPI_PM1_GBL);
	assert_int_equal(in(r, 0x600, 2) & ACPI_PM1_PWRBTN, ACPI_PM1_PWRBTN);
	assert_true(r->level[9]);
	/* Write 1 to clear, as a byte at offset 1 (bit 8 is bit 0 of the high byte). */
	out(r, 0x601, 1, 0x01);
	assert_int_equal(in(r, 0x600, 2) & ACPI_PM1_PWRBTN, 0);
	assert_false(r->level[9]);
	/* Pressed again with the event enabled: SCI; cleared with a word write: lowered. */
	acpi_pm_power_button(&r->pm);
	assert_true(r->level[9]);
	out(r, 0x600, 2, ACPI_PM1_PWRBTN);
	assert_false(r->level[9]);
	assert_int_equal(r->edges[9], 4);
	/* Disabling the event with the status set lowers the line too. */
	acpi_pm_power_button(&r->pm);
	assert_true(r->level[9]);
	out(r, 0x603, 1, 0);
	assert_false(r->level[9]);
	/* Reserved enable bits do not stick. */
	out(r, 0x602, 2, 0xffff);
	assert_int_equal(in(r, 0x602, 2), ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN |
					      ACPI_PM1_SLPBTN | ACPI_PM1_RTC);
}

static void control_and_s5(void **state)
{
	struct rig *r = *state;
	assert_int_equal(in(r, 0x604, 2), ACPI_PM1_CNT_SCI_EN); /* ACPI always enabled */
	out(r, 0x604, 2, 0);
	assert_int_equal(in(r, 0x604, 2) & ACPI_PM1_CNT_SCI_EN, ACPI_PM1_CNT_SCI_EN);
	/* ACPICA writes SLP_TYP first, then SLP_TYP|SLP_EN. */
	out(r, 0x604, 2, ACPI_PM_SLP_TYP_S5 << 10);
	assert_int_equal(r->poweroffs, 0);
	assert_int_equal(in(r, 0x604, 2), (ACPI_PM_SLP_TYP_S5 << 10) | ACPI_PM1_CNT_SCI_EN);
	out(r, 0x604, 2, (ACPI_PM_SLP_TYP_S5 << 10) | ACPI_PM1_CNT_SLP_EN);
	assert_int_equal(r->poweroffs, 1);
	assert_int_equal(in(r, 0x604, 2) & ACPI_PM1_CNT_SLP_EN, 0); /* write-only */
	/* Another sleep type: logged, nothing happens. */
	out(r, 0x604, 2, (3 << 10) | ACPI_PM1_CNT_SLP_EN);
	assert_int_equal(r->poweroffs, 1);
	assert_int_equal(r->resets, 0);
	/* A byte write of the high half with SLP_TYP=5 and SLP_EN also powers off. */
	out(r, 0x605, 1, (ACPI_PM_SLP_TYP_S5 << 2) | (1 << 5));
	assert_int_equal(r->poweroffs, 2);
}

static void pm_timer(void **state)
{
	struct rig *r = *state;
	assert_int_equal(in(r, 0x608, 4), 0);
	r->now_ns = 1000000000; /* one second */
	assert_int_equal(in(r, 0x608, 4), ACPI_PM_TIMER_HZ);
	assert_int_equal(in(r, 0x609, 1), (ACPI_PM_TIMER_HZ >> 8) & 0xff);
	assert_int_equal(in(r, 0x608, 2), ACPI_PM_TIMER_HZ & 0xffff);
	/* 24 bits wide: 2^24 + 5 ticks read as 5 (the time for n ticks is n / 3.579545 MHz). */
	r->now_ns = (uint64_t)(((1ULL << 24) + 5) * 1000000000ULL + ACPI_PM_TIMER_HZ - 1) /
		    ACPI_PM_TIMER_HZ;
	assert_int_equal(in(r, 0x608, 4), 5);
	/* Monotonic over a long run (no overflow in the ns -> ticks conversion). */
	r->now_ns = 365ULL * 24 * 3600 * 1000000000ULL;
	uint32_t a = (uint32_t)in(r, 0x608, 4);
	r->now_ns += 1000;
	uint32_t b = (uint32_t)in(r, 0x608, 4);
	assert_int_equal((b - a) & 0xffffff, 3); /* 1 us = 3.58 ticks */
	/* Writes to the timer are ignored. */
	out(r, 0x608, 4, 0);
	assert_int_equal(in(r, 0x608, 4), b);
}

static void timer_status(void **state)
{
	struct rig *r = *state;
	assert_int_equal(in(r, 0x600, 2) & ACPI_PM1_TMR, 0);
	/* Bit 23 of the counter changes after 2^23 ticks (about 2.34 s). */
	r->now_ns = 2340000000ULL;
	assert_int_equal(in(r, 0x600, 2) & ACPI_PM1_TMR, 0);
	r->now_ns = 2350000000ULL;
	assert_int_equal(in(r, 0x600, 2) & ACPI_PM1_TMR, ACPI_PM1_TMR);
	out(r, 0x600, 2, ACPI_PM1_TMR);
	assert_int_equal(in(r, 0x600, 2) & ACPI_PM1_TMR, 0);
	/* With TMR_EN set, the SCI follows TMR_STS. */
	out(r, 0x602, 2, ACPI_PM1_TMR);
	r->now_ns = 4700000000ULL;
	assert_int_equal(in(r, 0x600, 2) & ACPI_PM1_TMR, ACPI_PM1_TMR);
	assert_true(r->level[9]);
	out(r, 0x600, 2, ACPI_PM1_TMR);
	assert_false(r->level[9]);
}

static uint64_t cfg_read(void *opaque, uint64_t off, unsigned size)
{
	return 0x80000000;
}

static void cfg_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
	*(uint64_t *)opaque = v;
}

static const struct io_ops cfg_ops = {.read = cfg_read, .write = cfg_write};

static void reset_register(void **state)
{
	struct rig *r = *state;
	uint64_t pci_addr = 0;
	/* A PCI host's CONFIG_ADDRESS dword at 0xcf8 around our byte at 0xcf9. */
	assert_true(io_bus_register(&r->io, 0xcf8, 4, &cfg_ops, &pci_addr, "pci-cfg-addr") > 0);
	out(r, 0xcf9, 1, 0x02); /* SYS_RST alone: stored, no reset */
	assert_int_equal(r->resets, 0);
	assert_int_equal(in(r, 0xcf9, 1), 0x02);
	out(r, 0xcf8, 4, 0x80000800); /* goes to the PCI host */
	assert_int_equal(pci_addr, 0x80000800);
	assert_int_equal(in(r, 0xcf8, 4), 0x80000000);
	assert_int_equal(r->resets, 0);
	out(r, 0xcf9, 1, ACPI_PM_RESET_VALUE);
	assert_int_equal(r->resets, 1);
	assert_int_equal(in(r, 0xcf9, 1), 0x02); /* RST_CPU reads back 0 */
	out(r, 0xcf9, 1, 0x0e);
	assert_int_equal(r->resets, 2);
	/* Machine reset puts the registers back. */
	acpi_pm_power_button(&r->pm);
	out(r, 0x602, 2, ACPI_PM1_PWRBTN);
	assert_true(r->level[9]);
	acpi_pm_reset(&r->pm);
	assert_false(r->level[9]);
	assert_int_equal(in(r, 0x600, 4), 0);
	assert_int_equal(in(r, 0xcf9, 1), 0);
}

static void save_load(void **state)
{
	struct rig *r = *state;
	struct state_buf s;
	out(r, 0x602, 2, ACPI_PM1_PWRBTN | ACPI_PM1_RTC);
	acpi_pm_power_button(&r->pm);
	out(r, 0x604, 2, 1 << 1); /* BM_RLD */
	out(r, 0xcf9, 1, 0x02);
	state_init_writer(&s);
	assert_int_equal(acpi_pm_save(&r->pm, &s), 0);
	struct state_buf copy = s;

	/* After a reset, loading brings the registers and the SCI level back. */
	acpi_pm_reset(&r->pm);
	assert_false(r->level[9]);
	struct state_buf rd;
	state_init_reader(&rd, copy.data, copy.len);
	assert_int_equal(acpi_pm_load(&r->pm, &rd), 0);
	assert_true(r->level[9]);
	assert_int_equal(in(r, 0x600, 4),
			 ACPI_PM1_PWRBTN | (uint32_t)(ACPI_PM1_PWRBTN | ACPI_PM1_RTC) << 16);
	assert_int_equal(in(r, 0x604, 2), (1 << 1) | ACPI_PM1_CNT_SCI_EN);
	assert_int_equal(in(r, 0xcf9, 1), 0x02);

	/* Truncated, wrong version, or bad values: refused, state untouched. */
	for (size_t n = 0; n < copy.len; n++) {
		state_init_reader(&rd, copy.data, n);
		assert_int_not_equal(acpi_pm_load(&r->pm, &rd), 0);
	}
	uint8_t bad[32];
	memcpy(bad, copy.data, copy.len);
	bad[0] = 99;
	state_init_reader(&rd, bad, copy.len);
	assert_int_equal(acpi_pm_load(&r->pm, &rd), -EINVAL);
	memcpy(bad, copy.data, copy.len);
	bad[4] = 0xff; /* PM1_EN high byte: reserved bits */
	state_init_reader(&rd, bad, copy.len);
	assert_int_equal(acpi_pm_load(&r->pm, &rd), -EINVAL);
	assert_int_equal(in(r, 0x602, 2), ACPI_PM1_PWRBTN | ACPI_PM1_RTC);
	state_free(&s);
}

static void *presser(void *arg)
{
	struct rig *r = arg;
	for (int i = 0; i < 20000; i++)
		acpi_pm_power_button(&r->pm);
	return NULL;
}

static void concurrent_button(void **state)
{
	struct rig *r = *state;
	pthread_t t;
	out(r, 0x602, 2, ACPI_PM1_PWRBTN);
	assert_int_equal(pthread_create(&t, NULL, presser, r), 0);
	for (int i = 0; i < 20000; i++) {
		uint64_t sts = in(r, 0x600, 2);
		if (sts & ACPI_PM1_PWRBTN)
			out(r, 0x600, 2, ACPI_PM1_PWRBTN);
	}
	pthread_join(t, NULL);
	/* Whatever the interleaving, the line matches the registers at the end. */
	bool pending = in(r, 0x600, 2) & ACPI_PM1_PWRBTN;
	assert_int_equal(r->level[9], pending);
	out(r, 0x600, 2, ACPI_PM1_PWRBTN);
	assert_false(r->level[9]);
}

static void init_errors(void **state)
{
	struct io_bus io;
	struct acpi_pm pm;
	struct acpi_pm_config cfg;
	io_bus_init(&io, "io");
	acpi_pm_config_default(&cfg);
	cfg.tmr_port = 0;
	assert_int_equal(acpi_pm_init(&pm, &cfg, &io), -EINVAL);
	/* No reset port, no irq router, no clock: still works (timer reads 0). */
	acpi_pm_config_default(&cfg);
	cfg.reset_port = 0;
	assert_int_equal(acpi_pm_init(&pm, &cfg, &io), 0);
	acpi_pm_power_button(&pm);
	uint64_t v;
	assert_true(io_bus_read(&io, 0x608, 4, &v));
	assert_int_equal(v, 0);
	assert_false(io_bus_read(&io, 0xcf9, 1, &v));
	acpi_pm_destroy(&pm);
	assert_false(io_bus_read(&io, 0x600, 2, &v)); /* unregistered */
	io_bus_destroy(&io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(power_button_sci, setup, teardown),
	    cmocka_unit_test_setup_teardown(control_and_s5, setup, teardown),
	    cmocka_unit_test_setup_teardown(pm_timer, setup, teardown),
	    cmocka_unit_test_setup_teardown(timer_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(reset_register, setup, teardown),
	    cmocka_unit_test_setup_teardown(save_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(concurrent_button, setup, teardown),
	    cmocka_unit_test(init_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

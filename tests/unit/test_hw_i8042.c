/* Device tests for the i8042 controller, PS/2 keyboard and mouse (hw/i8042.c) and the key
 * map (hw/keymap.c): self-test, command byte, interface tests, reset pulse, key events to
 * translated and raw scancodes with IRQ 1, keyboard and mouse commands, Linux's AUX
 * loopback test on IRQ 12, and save/load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/state.h"
#include "hw/i8042.h"
#include "hw/keymap.h"
#include "test_hw_common.h"

#define DATA 0x60
#define CMD  0x64

struct fixture {
	struct io_bus bus;
	struct irq_rec rec;
	struct irq_router router;
	struct i8042 kbc;
	unsigned resets;
	int a20;
};

static void on_reset(void *opaque)
{
	struct fixture *f = opaque;
	f->resets++;
	i8042_reset(&f->kbc); /* the machine resets its devices from here: must not deadlock */
}

static void on_a20(void *opaque, bool enabled)
{
	struct fixture *f = opaque;
	f->a20 = enabled;
}

static const struct i8042_ops ops = {.reset = on_reset, .a20 = on_a20};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	io_bus_init(&f->bus, "io");
	irq_rec_init(&f->rec, &f->router);
	f->a20 = -1;
	i8042_init(&f->kbc, &f->router, &ops, f);
	assert_int_equal(i8042_register(&f->kbc, &f->bus), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	i8042_destroy(&f->kbc);
	io_bus_destroy(&f->bus);
	free(f);
	return 0;
}

static uint8_t status(struct fixture *f)
{
	return inb(&f->bus, CMD);
}

/* Read one byte that must be there. */
static uint8_t read_data(struct fixture *f)
{
	assert_true(status(f) & 0x01);
	return inb(&f->bus, DATA);
}

static void expect_bytes(struct fixture *f, const uint8_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(read_data(f), want[i]);
	assert_int_equal(status(f) & 0x01, 0);
}

static void command(struct fixture *f, uint8_t c)
{
	outb(&f->bus, CMD, c);
}

static void self_test_and_command_byte(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(status(f) & 0x01, 0);
	command(f, 0xaa);
	assert_int_equal(status(f) & 0x0d, 0x0d); /* OBF, SYS, last write was a command */
	assert_int_equal(read_data(f), 0x55);
	command(f, 0x20);
	assert_int_equal(read_data(f), 0x65); /* XLATE, AUXDIS, SYS, KBDINT */
	command(f, 0x60);
	outb(&f->bus, DATA, 0x44);
	assert_int_equal(status(f) & 0x08, 0); /* last write was data */
	unsigned raises = f->rec.raises[1];
	assert_int_equal(raises, 2); /* the two replies so far, with KBDINT on */
	command(f, 0x20);
	assert_int_equal(read_data(f), 0x44);
	command(f, 0xab);
	assert_int_equal(read_data(f), 0x00);
	command(f, 0xa9);
	assert_int_equal(read_data(f), 0x00);
	/* RAM beyond the command byte. */
	command(f, 0x65);
	outb(&f->bus, DATA, 0x99);
	command(f, 0x25);
	assert_int_equal(read_data(f), 0x99);
	/* Disable/enable bits show in the command byte. */
	command(f, 0xad);
	command(f, 0xa8);
	command(f, 0x20);
	assert_int_equal(read_data(f), 0x54);
	command(f, 0xae);
	command(f, 0xa7);
	command(f, 0x20);
	assert_int_equal(read_data(f), 0x64);
	/* Controller replies do not raise IRQ 1 while KBDINT is off (0x44, 0x54, 0x64). */
	assert_int_equal(f->rec.raises[1], raises);
}

static void reset_and_output_port(void **state)
{
	struct fixture *f = *state;
	command(f, 0xff); /* pulse nothing */
	assert_int_equal(f->resets, 0);
	command(f, 0xfe);
	assert_int_equal(f->resets, 1);
	command(f, 0xd0);
	assert_int_equal(read_data(f) & 0x03, 0x03); /* reset line up, A20 on */
	command(f, 0xd1);
	outb(&f->bus, DATA, 0x01); /* A20 off */
	assert_int_equal(f->a20, 0);
	assert_int_equal(f->resets, 1);
	command(f, 0xd1);
	outb(&f->bus, DATA, 0x02); /* reset line low, A20 on */
	assert_int_equal(f->resets, 2);
	assert_int_equal(f->a20, 1);
}

static void key_events_translated(void **state)
{
	struct fixture *f = *state;
	int a = keymap_lookup_qcode("a"), up = keymap_lookup_qcode("up");
	int prt = keymap_lookup_qcode("print"), pause = keymap_lookup_qcode("pause");
	assert_int_equal(i8042_key_event(&f->kbc, a, true), 0);
	assert_true(f->rec.level[1]);
	assert_int_equal(read_data(f), 0x1e);
	assert_false(f->rec.level[1]);
	assert_int_equal(i8042_key_event(&f->kbc, a, false), 0);
	expect_bytes(f, (const uint8_t[]){0x9e}, 1);
	i8042_key_event(&f->kbc, up, true);
	i8042_key_event(&f->kbc, up, false);
	expect_bytes(f, (const uint8_t[]){0xe0, 0x48, 0xe0, 0xc8}, 4);
	/* Each byte is a new edge on IRQ 1. */
	assert_int_equal(f->rec.raises[1], 6);
	i8042_key_event(&f->kbc, prt, true);
	i8042_key_event(&f->kbc, prt, false);
	expect_bytes(f, (const uint8_t[]){0xe0, 0x2a, 0xe0, 0x37, 0xe0, 0xb7, 0xe0, 0xaa}, 8);
	assert_int_equal(i8042_key_event(&f->kbc, pause, true), 0);
	assert_int_equal(i8042_key_event(&f->kbc, pause, false), 0);
	expect_bytes(f, (const uint8_t[]){0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5}, 6);
	/* F7 (set 2 0x83) translates to set 1 0x41. */
	i8042_key_event(&f->kbc, keymap_lookup_qcode("f7"), true);
	expect_bytes(f, (const uint8_t[]){0x41}, 1);
	assert_int_equal(i8042_key_event(&f->kbc, keymap_lookup_qcode("again"), true), -ENOENT);
	assert_int_equal(i8042_key_event(&f->kbc, 9999, true), -ENOENT);
}

static void key_events_raw_and_gating(void **state)
{
	struct fixture *f = *state;
	int ctrl = keymap_lookup_qcode("ctrl_r");
	command(f, 0x60);
	outb(&f->bus, DATA, 0x05); /* no translation, SYS, KBDINT */
	i8042_key_event(&f->kbc, ctrl, true);
	i8042_key_event(&f->kbc, ctrl, false);
	expect_bytes(f, (const uint8_t[]){0xe0, 0x14, 0xe0, 0xf0, 0x14}, 5);
	/* Keyboard interface disabled: bytes wait, and come out when re-enabled. */
	command(f, 0xad);
	i8042_key_event(&f->kbc, keymap_lookup_qcode("esc"), true);
	assert_int_equal(status(f) & 0x01, 0);
	assert_false(f->rec.level[1]);
	command(f, 0xae);
	assert_true(f->rec.level[1]);
	expect_bytes(f, (const uint8_t[]){0x76}, 1);
	/* KBDINT off: data but no interrupt. */
	command(f, 0x60);
	outb(&f->bus, DATA, 0x04);
	i8042_key_event(&f->kbc, keymap_lookup_qcode("esc"), false);
	assert_false(f->rec.level[1]);
	expect_bytes(f, (const uint8_t[]){0xf0, 0x76}, 2);
	/* A full buffer refuses whole sequences only. */
	int n = 0;
	while (i8042_key_event(&f->kbc, keymap_lookup_qcode("delete"), true) == 0)
		n++;
	assert_int_equal(n, 32); /* 2 bytes each; the first went to the output buffer */
	assert_int_equal(i8042_key_event(&f->kbc, keymap_lookup_qcode("delete"), true), -ENOSPC);
}

static void keyboard_commands(void **state)
{
	struct fixture *f = *state;
	outb(&f->bus, DATA, 0xf2); /* identify, translated: 0x83 reads as 0x41 */
	expect_bytes(f, (const uint8_t[]){0xfa, 0xab, 0x41}, 3);
	outb(&f->bus, DATA, 0xff);
	expect_bytes(f, (const uint8_t[]){0xfa, 0xaa}, 2);
	outb(&f->bus, DATA, 0xed);
	outb(&f->bus, DATA, 0x07);
	expect_bytes(f, (const uint8_t[]){0xfa, 0xfa}, 2);
	assert_int_equal(f->kbc.kbd_leds, 7);
	outb(&f->bus, DATA, 0xf3);
	outb(&f->bus, DATA, 0x20);
	expect_bytes(f, (const uint8_t[]){0xfa, 0xfa}, 2);
	outb(&f->bus, DATA, 0xee);
	expect_bytes(f, (const uint8_t[]){0xee}, 1);
	outb(&f->bus, DATA, 0x01); /* not a command */
	expect_bytes(f, (const uint8_t[]){0xfe}, 1);
	outb(&f->bus, DATA, 0xf5); /* disable scanning */
	expect_bytes(f, (const uint8_t[]){0xfa}, 1);
	assert_int_equal(i8042_key_event(&f->kbc, keymap_lookup_qcode("a"), true), -EAGAIN);
	outb(&f->bus, DATA, 0xf4);
	expect_bytes(f, (const uint8_t[]){0xfa}, 1);
	assert_int_equal(i8042_key_event(&f->kbc, keymap_lookup_qcode("a"), true), 0);
	expect_bytes(f, (const uint8_t[]){0x1e}, 1);
	/* Untranslated: identify is 0x83, scancode set query answers 2. */
	command(f, 0x60);
	outb(&f->bus, DATA, 0x05);
	outb(&f->bus, DATA, 0xf2);
	expect_bytes(f, (const uint8_t[]){0xfa, 0xab, 0x83}, 3);
	outb(&f->bus, DATA, 0xf0);
	outb(&f->bus, DATA, 0x00);
	expect_bytes(f, (const uint8_t[]){0xfa, 0xfa, 0x02}, 3);
	/* Set 1 selected, no controller translation: the keyboard sends set 1 itself. */
	outb(&f->bus, DATA, 0xf0);
	outb(&f->bus, DATA, 0x01);
	expect_bytes(f, (const uint8_t[]){0xfa, 0xfa}, 2);
	i8042_key_event(&f->kbc, keymap_lookup_qcode("a"), true);
	i8042_key_event(&f->kbc, keymap_lookup_qcode("a"), false);
	expect_bytes(f, (const uint8_t[]){0x1e, 0x9e}, 2);
}

/* i8042_check_aux(): AUX loopback must come back as AUX data, and on IRQ 12 once the
 * aux interrupt is enabled. */
static void linux_aux_loop_test(void **state)
{
	struct fixture *f = *state;
	command(f, 0xd3);
	outb(&f->bus, DATA, 0x5a);
	assert_int_equal(status(f) & 0x21, 0x21);
	assert_int_equal(inb(&f->bus, DATA), 0x5a);
	assert_int_equal(f->rec.raises[12], 0); /* AUXINT off */
	command(f, 0xa8);
	command(f, 0x60);
	outb(&f->bus, DATA, 0x47); /* XLATE SYS AUXINT KBDINT */
	command(f, 0xd3);
	outb(&f->bus, DATA, 0xa5);
	assert_true(f->rec.level[12]);
	assert_false(f->rec.level[1]);
	assert_int_equal(inb(&f->bus, DATA), 0xa5);
	assert_false(f->rec.level[12]);
}

/* What Linux does at boot, in order: i8042_controller_check/selftest/init, check_aux, port
 * enable, atkbd_probe/atkbd_activate and the start of psmouse_probe. */
static void linux_boot_sequence(void **state)
{
	struct fixture *f = *state;
	struct io_bus *b = &f->bus;
	/* i8042_flush: nothing pending. */
	assert_int_equal(status(f) & 0x01, 0);
	command(f, 0xaa);
	assert_int_equal(read_data(f), 0x55);
	command(f, 0x20);
	uint8_t ctr = read_data(f);
	assert_true(ctr & 0x40);       /* BIOS left translation on: Linux keeps it */
	assert_true(status(f) & 0x10); /* keylock not active */
	ctr = (ctr | 0x10) & ~0x01;    /* disable kbd interface and interrupt */
	command(f, 0x60);
	outb(b, DATA, ctr);
	/* i8042_check_aux */
	command(f, 0xd3);
	outb(b, DATA, 0x5a);
	assert_int_equal(status(f) & 0x21, 0x21);
	assert_int_equal(inb(b, DATA), 0x5a);
	ctr |= 0x20; /* toggle aux off... */
	command(f, 0x60);
	outb(b, DATA, ctr);
	command(f, 0x20);
	assert_int_equal(read_data(f) & 0x20, 0x20);
	ctr &= ~0x20; /* ...and on */
	command(f, 0x60);
	outb(b, DATA, ctr);
	command(f, 0x20);
	assert_int_equal(read_data(f) & 0x20, 0);
	ctr = (ctr & ~0x20) | 0x02; /* i8042_enable_aux_port */
	command(f, 0x60);
	outb(b, DATA, ctr);
	unsigned irq12 = f->rec.raises[12];
	command(f, 0xd3);
	outb(b, DATA, 0xa5);
	assert_int_equal(f->rec.raises[12], irq12 + 1);
	assert_int_equal(status(f) & 0x21, 0x21);
	assert_int_equal(inb(b, DATA), 0xa5);
	/* i8042_enable_kbd_port */
	ctr = (ctr & ~0x10) | 0x01;
	command(f, 0x60);
	outb(b, DATA, ctr);
	/* atkbd_probe: GETID, one interrupt per byte */
	unsigned irq1 = f->rec.raises[1];
	outb(b, DATA, 0xf2);
	expect_bytes(f, (const uint8_t[]){0xfa, 0xab, 0x41}, 3);
	assert_int_equal(f->rec.raises[1], irq1 + 3);
	/* atkbd_activate: SETLEDS 0, SETREP, ENABLE */
	outb(b, DATA, 0xed);
	outb(b, DATA, 0x00);
	outb(b, DATA, 0xf3);
	outb(b, DATA, 0x00);
	outb(b, DATA, 0xf4);
	expect_bytes(f, (const uint8_t[]){0xfa, 0xfa, 0xfa, 0xfa, 0xfa}, 5);
	/* psmouse_probe: GETID must be 0x00/0x03/0x04, then RESET_DIS */
	command(f, 0xd4);
	outb(b, DATA, 0xf2);
	expect_bytes(f, (const uint8_t[]){0xfa, 0x00}, 2);
	command(f, 0xd4);
	outb(b, DATA, 0xf6);
	expect_bytes(f, (const uint8_t[]){0xfa}, 1);
	/* Typing now reaches the guest as set 1. */
	i8042_key_event(&f->kbc, keymap_lookup_qcode("ret"), true);
	expect_bytes(f, (const uint8_t[]){0x1c}, 1);
}

static void mouse_commands(void **state)
{
	struct fixture *f = *state;
	command(f, 0xa8);
	command(f, 0xd4);
	outb(&f->bus, DATA, 0xff);
	assert_int_equal(status(f) & 0x21, 0x21);
	expect_bytes(f, (const uint8_t[]){0xfa, 0xaa, 0x00}, 3);
	command(f, 0xd4);
	outb(&f->bus, DATA, 0xf2);
	expect_bytes(f, (const uint8_t[]){0xfa, 0x00}, 2);
	command(f, 0xd4);
	outb(&f->bus, DATA, 0xf3);
	command(f, 0xd4);
	outb(&f->bus, DATA, 200);
	command(f, 0xd4);
	outb(&f->bus, DATA, 0xf4);
	command(f, 0xd4);
	outb(&f->bus, DATA, 0xe9);
	expect_bytes(f, (const uint8_t[]){0xfa, 0xfa, 0xfa, 0xfa, 0x20, 0x02, 200}, 7);
	command(f, 0xd4);
	outb(&f->bus, DATA, 0x12);
	expect_bytes(f, (const uint8_t[]){0xfe}, 1);
	/* Reporting is on (F4 above): motion packets. */
	assert_int_equal(i8042_mouse_event(&f->kbc, 5, -3, 1), 0);
	expect_bytes(f, (const uint8_t[]){0x29, 0x05, 0xfd}, 3);
	assert_int_equal(i8042_mouse_event(&f->kbc, -1000, 1000, 0), 0);
	expect_bytes(f, (const uint8_t[]){0x18, 0x01, 0xff}, 3);
	/* Aux interface disabled: the reply waits. */
	command(f, 0xa7);
	command(f, 0xd4);
	outb(&f->bus, DATA, 0xf5);
	assert_int_equal(status(f) & 0x01, 0);
	command(f, 0xa8);
	expect_bytes(f, (const uint8_t[]){0xfa}, 1);
	assert_int_equal(i8042_mouse_event(&f->kbc, 1, 1, 0), -EAGAIN); /* F5: reporting off */
}

static void keymap_names(void **state)
{
	uint8_t seq[KEYMAP_MAX_SEQ];
	assert_int_equal(keymap_lookup_qcode("unmapped"), 0);
	assert_int_equal(keymap_lookup_qcode("shift"), 1);
	assert_int_equal(keymap_lookup_qcode("a"), 36);
	assert_int_equal(keymap_lookup_qcode("f24"), keymap_count() - 1);
	assert_int_equal(keymap_lookup_qcode("nosuchkey"), -ENOENT);
	assert_int_equal(keymap_lookup_qcode(NULL), -ENOENT);
	assert_string_equal(keymap_qcode_name(keymap_lookup_qcode("kp_1")), "kp_1");
	assert_null(keymap_qcode_name(-1));
	struct {
		const char *name;
		bool down;
		int len;
		uint8_t bytes[6];
	} cases[] = {
	    {"a", true, 1, {0x1c}},
	    {"ctrl", true, 1, {0x14}},
	    {"alt", false, 2, {0xf0, 0x11}},
	    {"delete", true, 2, {0xe0, 0x71}},
	    {"delete", false, 3, {0xe0, 0xf0, 0x71}},
	    {"ret", true, 1, {0x5a}},
	    {"f1", true, 1, {0x05}},
	    {"kp_1", true, 1, {0x69}},
	    {"kp_enter", true, 2, {0xe0, 0x5a}},
	    {"meta_l", true, 2, {0xe0, 0x1f}},
	    {"sysrq", true, 4, {0xe0, 0x12, 0xe0, 0x7c}},
	    {"lang1", false, 0, {0}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n =
		    keymap_set2_sequence(keymap_lookup_qcode(cases[i].name), cases[i].down, seq);
		assert_int_equal(n, cases[i].len);
		assert_memory_equal(seq, cases[i].bytes, n);
	}
	/* Every mapped key's set 1 make code (via translation) is unique among plain keys. */
	uint8_t seen[128] = {0};
	for (int k = 1; k < keymap_count(); k++) {
		int n = keymap_set2_sequence(k, true, seq);
		if (n != 1 || seq[0] >= 0x80 || !strcmp(keymap_qcode_name(k), "asterisk"))
			continue;
		uint8_t s1 = keymap_set2_to_set1(seq[0]);
		assert_int_equal(seen[s1 & 0x7f], 0);
		seen[s1 & 0x7f] = 1;
	}
}

/* Random controller/keyboard/mouse traffic and key events must never crash, deadlock (the
 * reset callback re-enters) or overflow a queue. */
static void random_io(void **state)
{
	struct fixture *f = *state;
	unsigned seed = 777;
	for (int i = 0; i < 200000; i++) {
		seed = seed * 1103515245 + 12345;
		uint8_t val = seed >> 24;
		switch ((seed >> 16) & 3) {
		case 0:
			outb(&f->bus, DATA, val);
			break;
		case 1:
			if (val != 0xfe && (val & 0xf1) != 0xf0) /* skip most resets */
				outb(&f->bus, CMD, val);
			break;
		case 2:
			inb(&f->bus, DATA);
			break;
		case 3:
			i8042_key_event(&f->kbc, val % (keymap_count() + 2), seed & 0x100);
			break;
		}
		assert_true(f->kbc.kbd_q.count <= I8042_QUEUE_SIZE);
		assert_true(f->kbc.aux_q.count <= I8042_QUEUE_SIZE);
		assert_true(f->kbc.ctrl_q.count <= I8042_QUEUE_SIZE);
		assert_int_equal(f->rec.level[1], f->kbc.irq1_level);
		assert_int_equal(f->rec.level[12], f->kbc.irq12_level);
	}
}

static void save_load(void **state)
{
	struct fixture *f = *state;
	struct state_buf sb;
	command(f, 0x60);
	outb(&f->bus, DATA, 0x47);
	outb(&f->bus, DATA, 0xed); /* LEDs command waiting for its argument */
	read_data(f);
	i8042_key_event(&f->kbc, keymap_lookup_qcode("b"), true);
	i8042_key_event(&f->kbc, keymap_lookup_qcode("b"), false);
	state_init_writer(&sb);
	assert_int_equal(i8042_save(&f->kbc, &sb), 0);

	struct irq_rec rec2;
	struct irq_router router2;
	irq_rec_init(&rec2, &router2);
	struct i8042 k2;
	struct io_bus bus2;
	io_bus_init(&bus2, "io");
	i8042_init(&k2, &router2, NULL, NULL);
	i8042_register(&k2, &bus2);
	struct state_buf rd;
	state_init_reader(&rd, sb.data, sb.len);
	assert_int_equal(i8042_load(&k2, &rd), 0);
	assert_true(rec2.level[1]);
	assert_int_equal(inb(&bus2, DATA), 0x30);
	assert_int_equal(inb(&bus2, DATA), 0xb0);
	outb(&bus2, DATA, 0x02); /* the LEDs argument */
	assert_int_equal(inb(&bus2, DATA), 0xfa);
	assert_int_equal(k2.kbd_leds, 2);

	state_init_reader(&rd, sb.data, sb.len - 1);
	assert_int_equal(i8042_load(&k2, &rd), -EINVAL);
	state_free(&sb);
	i8042_destroy(&k2);
	io_bus_destroy(&bus2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(self_test_and_command_byte, setup, teardown),
	    cmocka_unit_test_setup_teardown(reset_and_output_port, setup, teardown),
	    cmocka_unit_test_setup_teardown(key_events_translated, setup, teardown),
	    cmocka_unit_test_setup_teardown(key_events_raw_and_gating, setup, teardown),
	    cmocka_unit_test_setup_teardown(keyboard_commands, setup, teardown),
	    cmocka_unit_test_setup_teardown(linux_aux_loop_test, setup, teardown),
	    cmocka_unit_test_setup_teardown(linux_boot_sequence, setup, teardown),
	    cmocka_unit_test_setup_teardown(mouse_commands, setup, teardown),
	    cmocka_unit_test(keymap_names),
	    cmocka_unit_test_setup_teardown(save_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(random_io, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

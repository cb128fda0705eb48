/* Device tests for the debug-exit port and port 0x80 (hw/debug_exit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/state.h"
#include "hw/debug_exit.h"
#include "test_hw_common.h"

struct exits {
	int code[4];
	int n;
};

static void on_exit_cb(void *opaque, int code)
{
	struct exits *e = opaque;
	if (e->n < 4)
		e->code[e->n++] = code;
}

static void exit_codes(void **state)
{
	struct io_bus bus;
	struct debug_exit d;
	struct exits e = {0};
	uint64_t v;
	io_bus_init(&bus, "io");
	debug_exit_init(&d, DEBUG_EXIT_PORT, on_exit_cb, &e);
	assert_int_equal(debug_exit_register(&d, &bus), 0);
	outb(&bus, 0xf4, 0x00);
	io_bus_write(&bus, 0xf4, 4, 0x31);
	io_bus_write(&bus, 0xf4, 2, 0x1ff);
	io_bus_write(&bus, 0xf4, 4, 0xffffffff);
	assert_int_equal(e.n, 4);
	assert_int_equal(e.code[0], 1);
	assert_int_equal(e.code[1], 0x63);
	assert_int_equal(e.code[2], 0x3ff);
	assert_true(e.code[3] > 0); /* never negative */
	assert_true(io_bus_read(&bus, 0xf4, 1, &v));
	assert_int_equal(v, 0xff);
	/* Save/load carry a version byte only. */
	struct state_buf sb, rd;
	state_init_writer(&sb);
	assert_int_equal(debug_exit_save(&d, &sb), 0);
	state_init_reader(&rd, sb.data, sb.len);
	assert_int_equal(debug_exit_load(&d, &rd), 0);
	state_init_reader(&rd, sb.data, 0);
	assert_int_equal(debug_exit_load(&d, &rd), -EINVAL);
	state_free(&sb);
	io_bus_destroy(&bus);
}

static void post_port(void **state)
{
	struct io_bus bus;
	uint64_t v = 0;
	io_bus_init(&bus, "io");
	assert_int_equal(port80_register(&bus), 0);
	assert_true(io_bus_write(&bus, 0x80, 1, 0x42)); /* claimed */
	assert_true(io_bus_read(&bus, 0x80, 1, &v));
	assert_int_equal(v, 0xff);
	assert_false(io_bus_read(&bus, 0x81, 1, &v));
	io_bus_destroy(&bus);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(exit_codes),
	    cmocka_unit_test(post_port),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for core/: guest memory bounds checks and I/O bus dispatch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sys/epoll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "core/guest_mem.h"
#include "core/io_bus.h"

static void gm_bounds(void **state)
{
	struct guest_mem gm = {0};
	assert_int_equal(gm_add_ram(&gm, 0, 1 << 20, "ram"), 0);
	assert_int_equal(gm_add_ram(&gm, 1ULL << 32, 1 << 20, "ram-high"), 0);
	uint8_t buf[16] = {1, 2, 3};
	assert_int_equal(gm_write(&gm, 0x1000, buf, 3), 0);
	assert_non_null(gm_ptr(&gm, (1 << 20) - 16, 16));
	assert_null(gm_ptr(&gm, (1 << 20) - 15, 16));	   /* crosses the end */
	assert_null(gm_ptr(&gm, 1 << 20, 1));		   /* just past the end */
	assert_null(gm_ptr(&gm, 0x1000, UINT64_MAX));	   /* length wraps */
	assert_null(gm_ptr(&gm, UINT64_MAX - 2, 8));	   /* address wraps */
	assert_non_null(gm_ptr(&gm, (1ULL << 32) + 5, 8)); /* second region */
	assert_int_equal(gm_read(&gm, (1 << 20) - 2, buf, 4), -14 /* EFAULT */);
	assert_int_equal(gm_read(&gm, 0x1000, buf + 8, 3), 0);
	assert_memory_equal(buf, buf + 8, 3);
	gm_destroy(&gm);
}

/* RAM of 2 MiB or more starts on a 2 MiB boundary (THP), and every byte of it is usable. */
static void gm_huge_aligned(void **state)
{
	struct guest_mem gm = {0};
	for (uint64_t mib = 2; mib <= 66; mib += 32) {
		assert_int_equal(gm_add_ram(&gm, mib << 30, mib << 20, "ram"), 0);
		struct gm_region *r = &gm.regions[gm.nr_regions - 1];
		assert_int_equal((uintptr_t)r->host & ((2u << 20) - 1), 0);
		memset(r->host, 0xa5, r->size); /* faults if a trim took too much */
	}
	gm_destroy(&gm);
}

struct dev {
	uint64_t last_off, last_val;
	unsigned last_size;
	int tag;
};

static uint64_t dev_read(void *opaque, uint64_t off, unsigned size)
{
	struct dev *d = opaque;
	d->last_off = off;
	d->last_size = size;
	return 0x1122334455667788ULL + d->tag;
}

static void dev_write(void *opaque, uint64_t off, uint64_t val, unsigned size)
{
	struct dev *d = opaque;
	d->last_off = off;
	d->last_val = val;
	d->last_size = size;
}

static const struct io_ops dev_ops = {.read = dev_read, .write = dev_write};

static void bus_dispatch(void **state)
{
	struct io_bus bus;
	struct dev a = {.tag = 0}, b = {.tag = 1}, c = {.tag = 2};
	uint64_t v;
	io_bus_init(&bus, "io");
	int ha = io_bus_register(&bus, 0x3f8, 8, &dev_ops, &a, "serial");
	assert_true(ha > 0);
	assert_true(io_bus_register(&bus, 0x60, 1, &dev_ops, &b, "kbd") > 0);
	assert_true(io_bus_read(&bus, 0x3fd, 1, &v));
	assert_int_equal(v, 0x88);
	assert_int_equal(a.last_off, 5);
	assert_false(io_bus_read(&bus, 0x400, 2, &v)); /* nothing there: all ones */
	assert_int_equal(v, 0xffff);
	assert_true(io_bus_write(&bus, 0x60, 1, 0x1ff));
	assert_int_equal(b.last_val, 0xff); /* value cut to the access size */
	/* A higher-priority range over part of another wins there, and only there. */
	assert_true(io_bus_register_prio(&bus, 0x3fa, 2, &dev_ops, &c, "overlay", 1) > 0);
	assert_true(io_bus_read(&bus, 0x3fb, 1, &v));
	assert_int_equal(v, 0x8a);
	assert_true(io_bus_read(&bus, 0x3fc, 1, &v));
	assert_int_equal(v, 0x88);
	/* Moving and removing by handle. */
	assert_int_equal(io_bus_move(&bus, ha, 0x2f8), 0);
	assert_true(io_bus_read(&bus, 0x2f8, 1, &v));
	assert_int_equal(v, 0x88);
	assert_int_equal(io_bus_remove(&bus, ha), 0);
	assert_false(io_bus_read(&bus, 0x2f8, 1, &v));
	assert_int_equal(io_bus_remove(&bus, ha), -2 /* ENOENT */);
	io_bus_destroy(&bus);
}

static void on_fd(void *opaque, uint32_t events)
{
	int *fd = opaque;
	eventfd_drain(fd[0]);
	fd[1]++;
}

static void on_timer(void *opaque)
{
	(*(int *)opaque)++;
}

static void *stop_later(void *arg)
{
	usleep(20000);
	event_loop_stop(arg);
	return NULL;
}

static void loop_dispatch(void **state)
{
	struct vclock vc;
	struct timer_list tl;
	struct event_loop el;
	vclock_init(&vc);
	timer_list_init(&tl, &vc);
	assert_int_equal(event_loop_init(&el, &tl), 0);

	/* An fd callback runs once per readiness, and not after removal. */
	int fd[2] = {eventfd(0, EFD_NONBLOCK), 0};
	assert_int_equal(event_loop_add_fd(&el, fd[0], EPOLLIN, on_fd, fd), 0);
	event_loop_run_once(&el, 0);
	assert_int_equal(fd[1], 0);
	uint64_t one = 1;
	assert_int_equal(write(fd[0], &one, 8), 8);
	event_loop_run_once(&el, 100);
	assert_int_equal(fd[1], 1);
	event_loop_del_fd(&el, fd[0]);
	assert_int_equal(write(fd[0], &one, 8), 8);
	event_loop_run_once(&el, 0);
	assert_int_equal(fd[1], 1);

	/* A virtual-clock timer wakes the loop through its timerfd, not before its time. */
	int fired = 0;
	struct timer t;
	timer_init(&t, &tl, on_timer, &fired);
	uint64_t start = vclock_now(&vc);
	timer_mod(&t, start + 30 * NSEC_PER_MSEC);
	while (!fired)
		event_loop_run_once(&el, 1000);
	assert_true(vclock_now(&vc) - start >= 30 * NSEC_PER_MSEC);
	assert_int_equal(fired, 1);

	/* event_loop_stop() from another thread ends event_loop_run(). */
	pthread_t th;
	pthread_create(&th, NULL, stop_later, &el);
	event_loop_run(&el);
	pthread_join(th, NULL);

	close(fd[0]);
	event_loop_destroy(&el);
	timer_list_destroy(&tl);
	vclock_destroy(&vc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(gm_bounds),
	    cmocka_unit_test(gm_huge_aligned),
	    cmocka_unit_test(bus_dispatch),
	    cmocka_unit_test(loop_dispatch),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}

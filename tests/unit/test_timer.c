/* Unit tests for core/clock and core/timer: virtual clock pause/resume on a fake source,
 * timer ordering, re-arming from a callback, deletion and the notify hook. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>

#include <errno.h>

#include "core/clock.h"
#include "core/state.h"
#include "core/timer.h"

static uint64_t fake_ns;

static uint64_t fake_source(void *opaque)
{
	(void)opaque;
	return fake_ns;
}

static void vclock_pause_resume(void **state)
{
	struct vclock vc;
	fake_ns = 5000;
	vclock_init_source(&vc, fake_source, NULL);
	assert_int_equal(vclock_now(&vc), 0);
	fake_ns += 100;
	assert_int_equal(vclock_now(&vc), 100);
	vclock_pause(&vc);
	vclock_pause(&vc); /* idempotent */
	assert_true(vclock_paused(&vc));
	fake_ns += 1000000;
	assert_int_equal(vclock_now(&vc), 100); /* stands still while paused */
	vclock_resume(&vc);
	assert_int_equal(vclock_now(&vc), 100); /* continues where it stopped */
	fake_ns += 50;
	assert_int_equal(vclock_now(&vc), 150);
	vclock_set(&vc, 1000000000);
	assert_int_equal(vclock_now(&vc), 1000000000);
	vclock_pause(&vc);
	vclock_set(&vc, 7);
	assert_int_equal(vclock_now(&vc), 7);
	/* Save/load round trip, and a stream that is cut short. */
	struct state_buf sb, rd;
	state_init_writer(&sb);
	assert_int_equal(vclock_save(&vc, &sb), 0);
	vclock_set(&vc, 99);
	state_init_reader(&rd, sb.data, sb.len);
	assert_int_equal(vclock_load(&vc, &rd), 0);
	assert_int_equal(vclock_now(&vc), 7);
	state_init_reader(&rd, sb.data, sb.len - 1);
	assert_int_equal(vclock_load(&vc, &rd), -EINVAL);
	state_free(&sb);
	vclock_destroy(&vc);
}

static void host_clocks(void **state)
{
	uint64_t a = clock_monotonic_ns(), b = clock_monotonic_ns();
	assert_true(b >= a);
	/* Realtime is after 2020-01-01. */
	assert_true(clock_realtime_ns() > 1577836800ULL * NSEC_PER_SEC);
}

struct rec {
	int log[16];
	int n;
};

struct tctx {
	struct timer t;
	struct rec *rec;
	int id;
	int rearm; /* re-arm this many more times, period 10 */
	struct timer *victim;
};

static void record_cb(void *opaque)
{
	struct tctx *c = opaque;
	if (c->rec->n < 16)
		c->rec->log[c->rec->n++] = c->id;
	if (c->victim)
		timer_del(c->victim);
	if (c->rearm > 0) {
		c->rearm--;
		timer_mod(&c->t, timer_list_now(c->t.list) + 10);
	}
}

static void timer_ordering(void **state)
{
	struct timer_list tl;
	struct rec rec = {0};
	struct tctx c[4];
	timer_list_init(&tl, NULL);
	assert_true(timer_list_next_deadline(&tl) == TIMER_NEVER);
	uint64_t deadlines[4] = {300, 100, 200, 100};
	for (int i = 0; i < 4; i++) {
		c[i] = (struct tctx){.rec = &rec, .id = i};
		timer_init(&c[i].t, &tl, record_cb, &c[i]);
		timer_mod(&c[i].t, deadlines[i]);
	}
	assert_int_equal(timer_list_next_deadline(&tl), 100);
	assert_int_equal(timer_list_run_expired(&tl, 99), 0);
	/* Equal deadlines run in arming order. */
	assert_int_equal(timer_list_run_expired(&tl, 150), 2);
	assert_int_equal(rec.log[0], 1);
	assert_int_equal(rec.log[1], 3);
	/* Moving a timer earlier re-sorts it. */
	timer_mod(&c[0].t, 150);
	assert_int_equal(timer_list_next_deadline(&tl), 150);
	assert_int_equal(timer_list_run_expired(&tl, 1000), 2);
	assert_int_equal(rec.log[2], 0);
	assert_int_equal(rec.log[3], 2);
	assert_false(timer_pending(&c[0].t));
	assert_true(timer_list_next_deadline(&tl) == TIMER_NEVER);
	timer_list_destroy(&tl);
}

static void rearm_from_callback(void **state)
{
	struct vclock vc;
	struct timer_list tl;
	struct rec rec = {0};
	fake_ns = 0;
	vclock_init_source(&vc, fake_source, NULL);
	timer_list_init(&tl, &vc);
	struct tctx c = {.rec = &rec, .id = 7, .rearm = 2};
	timer_init(&c.t, &tl, record_cb, &c);
	timer_mod(&c.t, 10);
	fake_ns = 10;
	assert_int_equal(timer_list_run_expired(&tl, vclock_now(&vc)), 1);
	assert_true(timer_pending(&c.t));
	assert_int_equal(timer_deadline(&c.t), 20);
	fake_ns = 20;
	assert_int_equal(timer_list_run_expired(&tl, vclock_now(&vc)), 1);
	fake_ns = 30;
	assert_int_equal(timer_list_run_expired(&tl, vclock_now(&vc)), 1);
	assert_false(timer_pending(&c.t)); /* rearm count used up */
	assert_int_equal(rec.n, 3);
	timer_list_destroy(&tl);
	vclock_destroy(&vc);
}

static void zero_period_rearm(void *opaque)
{
	struct timer *t = opaque;
	timer_mod(t, 0); /* always in the past */
}

static void runaway_timer_bounded(void **state)
{
	struct timer_list tl;
	struct timer t;
	timer_list_init(&tl, NULL);
	timer_init(&t, &tl, zero_period_rearm, &t);
	timer_mod(&t, 0);
	unsigned ran = timer_list_run_expired(&tl, 5);
	assert_true(ran > 1 && ran <= 1024);
	timer_del(&t);
	timer_list_destroy(&tl);
}

static void deletion(void **state)
{
	struct timer_list tl;
	struct rec rec = {0};
	struct tctx a = {.rec = &rec, .id = 1}, b = {.rec = &rec, .id = 2};
	struct tctx c = {.rec = &rec, .id = 3};
	timer_list_init(&tl, NULL);
	timer_init(&a.t, &tl, record_cb, &a);
	timer_init(&b.t, &tl, record_cb, &b);
	timer_init(&c.t, &tl, record_cb, &c);
	timer_mod(&a.t, 10);
	timer_mod(&b.t, 20);
	timer_mod(&c.t, 30);
	timer_del(&b.t);
	timer_del(&b.t); /* deleting twice is harmless */
	assert_false(timer_pending(&b.t));
	/* A callback deleting a later timer that is already expired keeps it from running. */
	a.victim = &c.t;
	assert_int_equal(timer_list_run_expired(&tl, 100), 1);
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.log[0], 1);
	timer_mod(&b.t, TIMER_NEVER); /* same as delete */
	assert_true(timer_list_next_deadline(&tl) == TIMER_NEVER);
	timer_list_destroy(&tl);
}

static int notified;

static void count_notify(void *opaque)
{
	(void)opaque;
	__atomic_fetch_add(&notified, 1, __ATOMIC_RELAXED); /* also called from threads */
}

static void notify_self_rearm(void *opaque)
{
	struct timer *t = opaque;
	timer_mod(t, 500); /* a new earliest deadline, but set by the runner: no notify */
}

static void notify_hook(void **state)
{
	struct timer_list tl;
	struct timer a, b;
	timer_list_init(&tl, NULL);
	timer_list_set_notify(&tl, count_notify, NULL);
	notified = 0;
	timer_init(&a, &tl, notify_self_rearm, &a);
	timer_init(&b, &tl, notify_self_rearm, &b);
	timer_mod(&a, 100);
	assert_int_equal(notified, 1); /* new earliest */
	timer_mod(&b, 200);
	assert_int_equal(notified, 1); /* not earliest */
	timer_mod(&b, 50);
	assert_int_equal(notified, 2); /* earlier than before */
	timer_mod(&b, 50);
	assert_int_equal(notified, 2); /* unchanged earliest */
	timer_del(&a);
	assert_int_equal(timer_list_run_expired(&tl, 50), 1);
	assert_int_equal(notified, 2); /* re-armed by the runner itself */
	assert_int_equal(timer_list_next_deadline(&tl), 500);
	timer_list_destroy(&tl);
}

static void noop_cb(void *opaque)
{
	(void)opaque;
}

static void main_loop_timeout(void **state)
{
	struct vclock vc;
	struct timer_list tl;
	struct timer t;
	fake_ns = 1000;
	vclock_init_source(&vc, fake_source, NULL);
	timer_list_init(&tl, &vc);
	timer_init(&t, &tl, noop_cb, NULL);
	assert_int_equal(timer_list_timeout_ms(&tl), -1);
	timer_mod(&t, 2500000); /* 2.5 ms from now */
	assert_int_equal(timer_list_timeout_ns(&tl), 2500000);
	assert_int_equal(timer_list_timeout_ms(&tl), 3); /* rounded up */
	vclock_pause(&vc);
	assert_int_equal(timer_list_timeout_ms(&tl), -1); /* paused: nothing expires */
	vclock_resume(&vc);
	fake_ns += 3000000;
	assert_int_equal(timer_list_timeout_ms(&tl), 0);
	timer_list_destroy(&tl);
	vclock_destroy(&vc);
}

/* Threads arming and deleting their timers while the "main loop" runs them. */
struct stress {
	struct timer_list *tl;
	struct timer t[4];
	int fired;
	pthread_mutex_t lock;
};

static void stress_cb(void *opaque)
{
	struct stress *st = opaque;
	pthread_mutex_lock(&st->lock);
	st->fired++;
	pthread_mutex_unlock(&st->lock);
}

static void *stress_thread(void *arg)
{
	struct stress *st = arg;
	unsigned seed = (unsigned)(uintptr_t)pthread_self();
	for (int i = 0; i < 20000; i++) {
		seed = seed * 1103515245 + 12345;
		struct timer *t = &st->t[(seed >> 8) & 3];
		if (seed & 0x10000)
			timer_mod(t, (seed >> 12) & 0xff);
		else
			timer_del(t);
	}
	return NULL;
}

static void concurrent_mod_and_run(void **state)
{
	struct timer_list tl;
	struct stress st = {.tl = &tl};
	pthread_t th[2];
	timer_list_init(&tl, NULL);
	timer_list_set_notify(&tl, count_notify, NULL);
	pthread_mutex_init(&st.lock, NULL);
	for (int i = 0; i < 4; i++)
		timer_init(&st.t[i], &tl, stress_cb, &st);
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, stress_thread, &st);
	unsigned ran = 0;
	for (int i = 0; i < 20000; i++)
		ran += timer_list_run_expired(&tl, i & 0xff);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	ran += timer_list_run_expired(&tl, UINT64_MAX - 1);
	assert_int_equal(ran, st.fired);
	assert_true(timer_list_next_deadline(&tl) == TIMER_NEVER);
	pthread_mutex_destroy(&st.lock);
	timer_list_destroy(&tl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(vclock_pause_resume),
	    cmocka_unit_test(host_clocks),
	    cmocka_unit_test(timer_ordering),
	    cmocka_unit_test(rearm_from_callback),
	    cmocka_unit_test(runaway_timer_bounded),
	    cmocka_unit_test(deletion),
	    cmocka_unit_test(notify_hook),
	    cmocka_unit_test(main_loop_timeout),
	    cmocka_unit_test(concurrent_mod_and_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

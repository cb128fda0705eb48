/* Timers on the virtual clock.
 *
 * A `struct timer_list` holds armed timers sorted by deadline (guest ns, see clock.h). The
 * main loop sleeps until timer_list_next_deadline() and then calls
 * timer_list_run_expired(tl, vclock_now()). Devices arm their timers from any thread.
 *
 * Locking rules:
 * - The list has its own mutex; it is never held while a callback or the notify hook runs,
 *   so a callback may re-arm or delete any timer, including its own.
 * - A device may call timer_mod/timer_del while holding its own lock; callbacks take the
 *   device lock themselves. The notify hook is called from timer_mod, possibly with some
 *   device lock held: it must only wake the main loop (write an eventfd), never call into
 *   a device.
 * - timer_del does not wait for a callback already running on another thread: a callback
 *   may still run once after timer_del returns, so callbacks check the device's state
 *   under the device lock instead of assuming they are wanted.
 */
#ifndef KESTREL_CORE_TIMER_H
#define KESTREL_CORE_TIMER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/clock.h"

#define TIMER_NEVER UINT64_MAX

struct timer_list;
typedef void (*timer_cb)(void *opaque);

struct timer {
	struct timer_list *list;
	timer_cb cb;
	void *opaque;
	uint64_t deadline; /* guest ns; meaningful while pending */
	bool pending;
	struct timer *next; /* in the list, sorted by deadline */
};

struct timer_list {
	pthread_mutex_t lock;
	struct vclock *clock; /* the clock deadlines refer to (may be NULL in tests) */
	struct timer *head;
	/* Called (without the list lock) when a timer_mod makes an earlier first deadline,
	 * unless the caller is the thread running timer_list_run_expired (it recomputes
	 * the deadline after the callbacks anyway). */
	void (*notify)(void *opaque);
	void *notify_opaque;
	pthread_t runner; /* thread inside timer_list_run_expired, valid while running */
	bool running;
};

void timer_list_init(struct timer_list *tl, struct vclock *clock);
void timer_list_destroy(struct timer_list *tl);
void timer_list_set_notify(struct timer_list *tl, void (*notify)(void *opaque), void *opaque);
/* The list's clock, now (0 if it has none). */
uint64_t timer_list_now(struct timer_list *tl);

/* Earliest pending deadline, TIMER_NEVER when no timer is armed. */
uint64_t timer_list_next_deadline(struct timer_list *tl);
/* How long the main loop may sleep: -1 when no timer is armed or the list's clock is
 * paused (nothing can expire), 0 when a timer is due, else the ns until the first deadline.
 * Needs a list with a clock. */
int64_t timer_list_timeout_ns(struct timer_list *tl);
/* The same in ms for epoll_wait(), rounded up so the loop never wakes before the deadline. */
int timer_list_timeout_ms(struct timer_list *tl);
/* Run every timer whose deadline <= now, earliest first, each once; timers re-armed by a
 * callback for a deadline <= now run again in the same call only up to a bound (so a
 * zero-period timer cannot livelock the caller). Returns how many callbacks ran. */
unsigned timer_list_run_expired(struct timer_list *tl, uint64_t now);

void timer_init(struct timer *t, struct timer_list *tl, timer_cb cb, void *opaque);
/* Arm (or re-arm) for deadline_ns; TIMER_NEVER is the same as timer_del. */
void timer_mod(struct timer *t, uint64_t deadline_ns);
void timer_del(struct timer *t);
bool timer_pending(struct timer *t);
/* The armed deadline, TIMER_NEVER when not armed. */
uint64_t timer_deadline(struct timer *t);

#endif

/* Timers on the virtual clock: a mutex-protected list sorted by deadline (see timer.h).
 * A VM has a handful of timers (RTC, PIT, LAPIC timers, a few device timeouts), so a
 * sorted singly linked list beats a heap in simplicity and is as fast at this size. */
#define LOG_SUBSYS "timer"
#include <string.h>

#include "core/timer.h"
#include "util/log.h"

/* Upper bound of callbacks per timer_list_run_expired call, against a timer that keeps
 * re-arming itself in the past. */
#define RUN_EXPIRED_MAX 1024

void timer_list_init(struct timer_list *tl, struct vclock *clock)
{
	memset(tl, 0, sizeof(*tl));
	pthread_mutex_init(&tl->lock, NULL);
	tl->clock = clock;
}

void timer_list_destroy(struct timer_list *tl)
{
	pthread_mutex_lock(&tl->lock);
	for (struct timer *t = tl->head; t; t = t->next)
		t->pending = false;
	tl->head = NULL;
	pthread_mutex_unlock(&tl->lock);
	pthread_mutex_destroy(&tl->lock);
}

void timer_list_set_notify(struct timer_list *tl, void (*notify)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&tl->lock);
	tl->notify = notify;
	tl->notify_opaque = opaque;
	pthread_mutex_unlock(&tl->lock);
}

uint64_t timer_list_now(struct timer_list *tl)
{
	return tl->clock ? vclock_now(tl->clock) : 0;
}

uint64_t timer_list_next_deadline(struct timer_list *tl)
{
	pthread_mutex_lock(&tl->lock);
	uint64_t d = tl->head ? tl->head->deadline : TIMER_NEVER;
	pthread_mutex_unlock(&tl->lock);
	return d;
}

int64_t timer_list_timeout_ns(struct timer_list *tl)
{
	uint64_t deadline = timer_list_next_deadline(tl);
	if (deadline == TIMER_NEVER || !tl->clock || vclock_paused(tl->clock))
		return -1;
	uint64_t now = vclock_now(tl->clock);
	if (deadline <= now)
		return 0;
	uint64_t left = deadline - now;
	return left > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)left;
}

int timer_list_timeout_ms(struct timer_list *tl)
{
	int64_t ns = timer_list_timeout_ns(tl);
	if (ns <= 0)
		return (int)ns;
	int64_t ms = (ns + (int64_t)NSEC_PER_MSEC - 1) / (int64_t)NSEC_PER_MSEC;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

void timer_init(struct timer *t, struct timer_list *tl, timer_cb cb, void *opaque)
{
	memset(t, 0, sizeof(*t));
	t->list = tl;
	t->cb = cb;
	t->opaque = opaque;
	t->deadline = TIMER_NEVER;
}

/* Called with the list lock held. */
static void unlink_locked(struct timer_list *tl, struct timer *t)
{
	if (!t->pending)
		return;
	for (struct timer **pp = &tl->head; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	t->next = NULL;
	t->pending = false;
}

void timer_mod(struct timer *t, uint64_t deadline_ns)
{
	struct timer_list *tl = t->list;
	void (*notify)(void *) = NULL;
	void *notify_opaque = NULL;

	if (deadline_ns == TIMER_NEVER) {
		timer_del(t);
		return;
	}
	pthread_mutex_lock(&tl->lock);
	uint64_t old_first = tl->head ? tl->head->deadline : TIMER_NEVER;
	unlink_locked(tl, t);
	t->deadline = deadline_ns;
	/* Insert after every timer with the same or an earlier deadline: equal deadlines
	 * run in the order they were armed. */
	struct timer **pp = &tl->head;
	while (*pp && (*pp)->deadline <= deadline_ns)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
	t->pending = true;
	bool self = tl->running && pthread_equal(tl->runner, pthread_self());
	if (tl->head == t && deadline_ns < old_first && !self) {
		notify = tl->notify;
		notify_opaque = tl->notify_opaque;
	}
	pthread_mutex_unlock(&tl->lock);
	if (notify)
		notify(notify_opaque);
}

void timer_del(struct timer *t)
{
	struct timer_list *tl = t->list;

	pthread_mutex_lock(&tl->lock);
	unlink_locked(tl, t);
	t->deadline = TIMER_NEVER;
	pthread_mutex_unlock(&tl->lock);
}

bool timer_pending(struct timer *t)
{
	pthread_mutex_lock(&t->list->lock);
	bool p = t->pending;
	pthread_mutex_unlock(&t->list->lock);
	return p;
}

uint64_t timer_deadline(struct timer *t)
{
	pthread_mutex_lock(&t->list->lock);
	uint64_t d = t->pending ? t->deadline : TIMER_NEVER;
	pthread_mutex_unlock(&t->list->lock);
	return d;
}

unsigned timer_list_run_expired(struct timer_list *tl, uint64_t now)
{
	unsigned ran = 0;

	pthread_mutex_lock(&tl->lock);
	tl->runner = pthread_self();
	tl->running = true;
	while (tl->head && tl->head->deadline <= now && ran < RUN_EXPIRED_MAX) {
		struct timer *t = tl->head;
		tl->head = t->next;
		t->next = NULL;
		t->pending = false;
		t->deadline = TIMER_NEVER;
		timer_cb cb = t->cb;
		void *opaque = t->opaque;
		pthread_mutex_unlock(&tl->lock);
		cb(opaque);
		ran++;
		pthread_mutex_lock(&tl->lock);
	}
	if (ran == RUN_EXPIRED_MAX && tl->head && tl->head->deadline <= now)
		log_debug("%u timer callbacks in one pass, deferring the rest", ran);
	tl->running = false;
	pthread_mutex_unlock(&tl->lock);
	return ran;
}

/* epoll-based main loop with virtual-clock timers (see event_loop.h). */
#define LOG_SUBSYS "loop"
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "util/log.h"

void eventfd_drain(int fd)
{
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof(v));
	(void)r;
}

static void on_wake(void *opaque, uint32_t events)
{
	struct event_loop *el = opaque;
	eventfd_drain(el->wake_fd);
}

static void on_timerfd(void *opaque, uint32_t events)
{
	struct event_loop *el = opaque;
	eventfd_drain(el->timer_fd);
}

static void timers_notify(void *opaque)
{
	event_loop_wake(opaque);
}

int event_loop_init(struct event_loop *el, struct timer_list *timers)
{
	memset(el, 0, sizeof(*el));
	for (unsigned i = 0; i < EVENT_LOOP_MAX_FDS; i++)
		el->fds[i].fd = -1;
	el->timers = timers;
	el->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	el->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	el->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (el->epoll_fd < 0 || el->wake_fd < 0 || el->timer_fd < 0) {
		int err = -errno;
		event_loop_destroy(el);
		return err;
	}
	int ret = event_loop_add_fd(el, el->wake_fd, EPOLLIN, on_wake, el);
	if (!ret)
		ret = event_loop_add_fd(el, el->timer_fd, EPOLLIN, on_timerfd, el);
	if (ret) {
		event_loop_destroy(el);
		return ret;
	}
	if (timers)
		timer_list_set_notify(timers, timers_notify, el);
	return 0;
}

void event_loop_destroy(struct event_loop *el)
{
	if (el->timers)
		timer_list_set_notify(el->timers, NULL, NULL);
	if (el->epoll_fd >= 0)
		close(el->epoll_fd);
	if (el->wake_fd >= 0)
		close(el->wake_fd);
	if (el->timer_fd >= 0)
		close(el->timer_fd);
	el->epoll_fd = el->wake_fd = el->timer_fd = -1;
}

int event_loop_add_fd(struct event_loop *el, int fd, uint32_t events, event_fd_cb cb, void *opaque)
{
	for (unsigned i = 0; i < EVENT_LOOP_MAX_FDS; i++) {
		if (el->fds[i].fd != -1)
			continue;
		struct epoll_event ev = {.events = events, .data.u32 = i};
		if (epoll_ctl(el->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
			return -errno;
		el->fds[i].fd = fd;
		el->fds[i].cb = cb;
		el->fds[i].opaque = opaque;
		return 0;
	}
	return -ENOSPC;
}

int event_loop_mod_fd(struct event_loop *el, int fd, uint32_t events)
{
	for (unsigned i = 0; i < EVENT_LOOP_MAX_FDS; i++) {
		if (el->fds[i].fd != fd)
			continue;
		struct epoll_event ev = {.events = events, .data.u32 = i};
		return epoll_ctl(el->epoll_fd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
	}
	return -ENOENT;
}

void event_loop_del_fd(struct event_loop *el, int fd)
{
	for (unsigned i = 0; i < EVENT_LOOP_MAX_FDS; i++) {
		if (el->fds[i].fd != fd)
			continue;
		epoll_ctl(el->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
		el->fds[i].fd = -1;
		el->fds[i].cb = NULL;
	}
}

/* Arm the timerfd for the first virtual-clock deadline; returns false if none. */
static void arm_timerfd(struct event_loop *el)
{
	struct itimerspec its = {0};
	if (el->timers) {
		uint64_t deadline = timer_list_next_deadline(el->timers);
		if (deadline != TIMER_NEVER) {
			uint64_t now = timer_list_now(el->timers);
			uint64_t delta = deadline > now ? deadline - now : 1;
			its.it_value.tv_sec = delta / NSEC_PER_SEC;
			its.it_value.tv_nsec = delta % NSEC_PER_SEC;
		}
	}
	timerfd_settime(el->timer_fd, 0, &its, NULL);
}

void event_loop_run_once(struct event_loop *el, int timeout_ms)
{
	struct epoll_event evs[16];
	arm_timerfd(el);
	int n = epoll_wait(el->epoll_fd, evs, 16, timeout_ms);
	if (n < 0 && errno != EINTR)
		log_error("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		unsigned slot = evs[i].data.u32;
		if (slot < EVENT_LOOP_MAX_FDS && el->fds[slot].cb)
			el->fds[slot].cb(el->fds[slot].opaque, evs[i].events);
	}
	if (el->timers)
		timer_list_run_expired(el->timers, timer_list_now(el->timers));
}

void event_loop_run(struct event_loop *el)
{
	while (!__atomic_load_n(&el->stop, __ATOMIC_ACQUIRE))
		event_loop_run_once(el, -1);
}

void event_loop_stop(struct event_loop *el)
{
	__atomic_store_n(&el->stop, true, __ATOMIC_RELEASE);
	event_loop_wake(el);
}

void event_loop_wake(struct event_loop *el)
{
	uint64_t one = 1;
	ssize_t r = write(el->wake_fd, &one, sizeof(one));
	(void)r;
}

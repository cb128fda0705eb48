/* The main thread's event loop: file descriptors (console, QMP sockets, eventfds) and the
 * virtual-clock timers, on epoll + one timerfd. Other threads wake it with event_loop_wake()
 * or through an eventfd they registered. */
#ifndef KESTREL_CORE_EVENT_LOOP_H
#define KESTREL_CORE_EVENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/timer.h"

typedef void (*event_fd_cb)(void *opaque, uint32_t events);

#define EVENT_LOOP_MAX_FDS 64

struct event_loop {
	int epoll_fd;
	int wake_fd;  /* eventfd: wakes epoll_wait so new timer deadlines are seen */
	int timer_fd; /* timerfd armed for the next virtual-clock deadline */
	struct timer_list *timers;
	bool stop;
	struct {
		int fd;
		event_fd_cb cb;
		void *opaque;
	} fds[EVENT_LOOP_MAX_FDS];
};

int event_loop_init(struct event_loop *el, struct timer_list *timers)
    __attribute__((warn_unused_result));
void event_loop_destroy(struct event_loop *el);
/* events: EPOLLIN / EPOLLOUT. Returns 0 or -errno. */
int event_loop_add_fd(struct event_loop *el, int fd, uint32_t events, event_fd_cb cb, void *opaque);
int event_loop_mod_fd(struct event_loop *el, int fd, uint32_t events);
void event_loop_del_fd(struct event_loop *el, int fd);
/* Run until event_loop_stop(); each iteration handles ready fds and expired timers. */
void event_loop_run(struct event_loop *el);
/* Handle what is ready within timeout_ms (-1: block); for tests and single steps. */
void event_loop_run_once(struct event_loop *el, int timeout_ms);
void event_loop_stop(struct event_loop *el);
/* Safe from any thread. */
void event_loop_wake(struct event_loop *el);
/* Read an eventfd (or timerfd) to reset it, in its readiness callback. */
void eventfd_drain(int fd);

#endif

/* Host console: the guest's serial console on stdio (raw terminal, QEMU-style Ctrl-a
 * escapes), in a file, or discarded. */
#define LOG_SUBSYS "console"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "vmm/console.h"

#define CTRL_A 0x01

/* The one terminal we may have put in raw mode, for the exit and fatal-signal paths. */
static struct console *raw_console;

static void restore_at_exit(void)
{
	if (raw_console)
		console_restore(raw_console);
}

static void fatal_signal(int sig)
{
	/* tcsetattr is async-signal-safe; then die of the same signal. */
	if (raw_console && raw_console->raw)
		tcsetattr(raw_console->in_fd, TCSANOW, &raw_console->saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

int console_open(struct console *c, const struct console_config *cfg, struct error *err)
{
	memset(c, 0, sizeof(*c));
	c->cfg = *cfg;
	c->in_fd = -1;
	c->out_fd = -1;
	c->rx_space_fd = -1;
	switch (cfg->kind) {
	case CONSOLE_NONE:
		return 0;
	case CONSOLE_FILE:
		c->out_fd = open(cfg->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (c->out_fd < 0)
			return error_set(err, -errno, "cannot open console file '%s': %s",
					 cfg->path, strerror(errno));
		return 0;
	case CONSOLE_STDIO:
		break;
	}
	c->in_fd = STDIN_FILENO;
	c->out_fd = STDOUT_FILENO;
	if (isatty(c->in_fd) && tcgetattr(c->in_fd, &c->saved) == 0) {
		struct termios t = c->saved;
		/* Raw input (the guest does its own line editing and echo) but keep output
		 * post-processing off too: the guest's serial console sends \r\n itself. */
		cfmakeraw(&t);
		if (tcsetattr(c->in_fd, TCSANOW, &t) == 0) {
			c->raw = true;
			raw_console = c;
			atexit(restore_at_exit);
			signal(SIGSEGV, fatal_signal);
			signal(SIGBUS, fatal_signal);
			signal(SIGABRT, fatal_signal);
			signal(SIGFPE, fatal_signal);
		}
	}
	return 0;
}

void console_restore(struct console *c)
{
	if (c->raw) {
		tcsetattr(c->in_fd, TCSANOW, &c->saved);
		c->raw = false;
	}
}

static void write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* output closed: drop, the guest must not stall on it */
		p += n;
		len -= n;
	}
}

/* UART backend: guest output. Called on a vCPU thread with the UART lock held. */
static void console_write(void *opaque, const uint8_t *buf, size_t len)
{
	struct console *c = opaque;
	if (c->out_fd >= 0)
		write_all(c->out_fd, buf, len);
}

void console_input_space(struct console *c)
{
	uint64_t one = 1;
	if (c->rx_space_fd >= 0 && c->pending_len) {
		ssize_t r = write(c->rx_space_fd, &one, sizeof(one));
		(void)r;
	}
}

/* UART backend: the RX FIFO has room again (vCPU thread): let the main loop refill it. */
static void console_rx_space(void *opaque)
{
	console_input_space(opaque);
}

void console_set_hvc(struct console *c,
		     size_t (*input)(void *opaque, const uint8_t *buf, size_t len), void *opaque,
		     bool to_hvc)
{
	c->hvc_input = input;
	c->hvc_opaque = opaque;
	c->to_hvc = input && to_hvc;
}

struct serial8250_backend console_backend(struct console *c)
{
	return (struct serial8250_backend){
	    .write = console_write, .rx_space = console_rx_space, .opaque = c};
}

static void set_input_paused(struct console *c, bool paused)
{
	if (c->in_paused == paused || c->in_fd < 0)
		return;
	c->in_paused = paused;
	event_loop_mod_fd(c->loop, c->in_fd, paused ? 0 : EPOLLIN);
}

/* Push pending input into the current sink (UART FIFO or hvc0's receive buffers) as far as it
 * takes it; the rest waits for console_input_space(). */
static void pump(struct console *c)
{
	if (c->vm_paused) {
		/* Nothing reaches the guest; stdin is still read (Ctrl-a x) while there is room. */
		set_input_paused(c, c->pending_len == sizeof(c->pending));
		return;
	}
	size_t n = c->to_hvc ? c->hvc_input(c->hvc_opaque, c->pending, c->pending_len)
			     : serial8250_receive(c->uart, c->pending, c->pending_len);
	memmove(c->pending, c->pending + n, c->pending_len - n);
	c->pending_len -= n;
	set_input_paused(c, c->pending_len > 0);
}

void console_pause(struct console *c)
{
	c->vm_paused = true;
}

void console_resume(struct console *c)
{
	c->vm_paused = false;
	if (c->uart)
		pump(c);
}

static void print_help(struct console *c)
{
	static const char help[] =
	    "\r\n"
	    "C-a h    print this help\r\n"
	    "C-a x    exit Kestrel\r\n"
	    "C-a b    send a break to ttyS0 (Linux: magic SysRq with the next key)\r\n"
	    "C-a c    switch input between ttyS0 and hvc0 (--serial-virtio)\r\n"
	    "C-a C-a  send C-a to the guest\r\n";
	write_all(STDERR_FILENO, help, sizeof(help) - 1);
	if (c->hvc_input) {
		const char *msg = c->to_hvc ? "input goes to hvc0\r\n" : "input goes to ttyS0\r\n";
		write_all(STDERR_FILENO, msg, strlen(msg));
	}
}

static void on_input(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	uint8_t buf[sizeof(c->pending)];
	ssize_t n = read(c->in_fd, buf, sizeof(buf) - c->pending_len);
	if (n <= 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		/* EOF (e.g. </dev/null) or error: the guest just gets no more input. */
		event_loop_del_fd(c->loop, c->in_fd);
		c->in_fd = -1;
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		uint8_t ch = buf[i];
		if (c->escape) {
			c->escape = false;
			if (ch == 'x') {
				static const char msg[] = "\r\nkestrel: terminated by C-a x\r\n";
				write_all(STDERR_FILENO, msg, sizeof(msg) - 1);
				if (c->quit)
					c->quit(c->quit_opaque);
				return;
			}
			if (ch == 'h' || ch == '?') {
				print_help(c);
				continue;
			}
			if (ch == 'b') {
				pump(c); /* what was typed before the break comes first */
				if (!c->pending_len && c->uart)
					serial8250_send_break(c->uart);
				continue;
			}
			if (ch == 'c' && c->hvc_input) {
				/* Input typed so far goes where it was meant to go. */
				pump(c);
				c->to_hvc = !c->to_hvc;
				const char *msg = c->to_hvc ? "\r\n[kestrel: input to hvc0]\r\n"
							    : "\r\n[kestrel: input to ttyS0]\r\n";
				write_all(STDERR_FILENO, msg, strlen(msg));
				continue;
			}
			if (ch != CTRL_A)
				continue; /* unknown escape: swallowed, like QEMU */
		} else if (ch == CTRL_A) {
			c->escape = true;
			continue;
		}
		c->pending[c->pending_len++] = ch;
	}
	pump(c);
}

static void on_rx_space(void *opaque, uint32_t events)
{
	struct console *c = opaque;
	eventfd_drain(c->rx_space_fd);
	pump(c);
}

int console_attach(struct console *c, struct serial8250 *uart, struct event_loop *loop,
		   void (*quit)(void *opaque), void *opaque)
{
	c->uart = uart;
	c->loop = loop;
	c->quit = quit;
	c->quit_opaque = opaque;
	if (c->in_fd < 0)
		return 0;
	c->rx_space_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->rx_space_fd < 0)
		return -errno;
	int ret = event_loop_add_fd(loop, c->rx_space_fd, EPOLLIN, on_rx_space, c);
	if (ret)
		return ret;
	ret = event_loop_add_fd(loop, c->in_fd, EPOLLIN, on_input, c);
	if (ret == -EPERM) {
		/* A regular file on stdin cannot be polled: treat it as no input. */
		c->in_fd = -1;
		return 0;
	}
	return ret;
}

void console_close(struct console *c)
{
	console_restore(c);
	if (raw_console == c)
		raw_console = NULL;
	if (c->loop && c->in_fd >= 0)
		event_loop_del_fd(c->loop, c->in_fd);
	if (c->rx_space_fd >= 0) {
		if (c->loop)
			event_loop_del_fd(c->loop, c->rx_space_fd);
		close(c->rx_space_fd);
	}
	if (c->cfg.kind == CONSOLE_FILE && c->out_fd >= 0)
		close(c->out_fd);
	c->rx_space_fd = c->out_fd = c->in_fd = -1;
}

/* Fuzz entry for the QMP monitor's input path (vmm/qmp.c: framing, the json-c tokener,
 * request checks and dispatch; vmm/qmp_cmds.c and vmm/monitor.c: the commands, HMP
 * included) as a client reaches it: bytes on the monitor's unix socket. Input format in
 * fuzz_qmp.h.
 *
 * Each run builds a VM without vCPUs or an accelerator (buses, RAM, clock, event loop, the
 * PM block and the keyboard controller, which system_powerdown and send-key use), starts the
 * QMP server on a socket of its own, connects, writes the input and pumps the event loop
 * until the server has read it all, reading every reply. Every line the server sends must
 * be a strict JSON object. Then the clients hang up and the server and the VM are torn down,
 * so LSan sees whatever a request leaked. Shared by the libFuzzer target and the corpus
 * runner. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz_qmp.h"
#include "vmm/qmp.h"
#include "vmm/vm.h"
#include "../../vmm/qmp_int.h"

#define FUZZ_NAME "fuzz_qmp"
#include "fuzz_ops.h"

#define PUMP_MAX  20000 /* event loop turns per write: far more than any input needs */
#define BIG_CHUNK (16u << 10)

struct client {
	int fd;
	char *in; /* what the server sent, not yet a whole line */
	size_t len, cap;
	unsigned lines;
};

struct ctx {
	struct vm vm;
	struct irq_router irq;
	struct qmp_server *srv;
	char path[108];
	struct client cl[2];
	unsigned cur;
};

static void nop_line(void *opaque, unsigned gsi, bool level)
{
}

static void nop_msi(void *opaque, uint64_t addr, uint32_t data)
{
}

static const struct irq_router_ops nop_irq = {.set_line = nop_line, .send_msi = nop_msi};

static uint64_t clock_ns(void *opaque)
{
	return vclock_now(opaque);
}

/* Check and drop the whole lines received so far. */
static void check_lines(struct client *c)
{
	size_t start = 0;
	for (;;) {
		char *nl = memchr(c->in + start, '\n', c->len - start);
		if (!nl)
			break;
		size_t n = (size_t)(nl - (c->in + start));
		FUZZ_CHECK(n >= 1 && c->in[start + n - 1] == '\r', "a line not ended by CRLF");
		/* The whole line (without its CRLF) is one JSON object, strict JSON: UTF-8, no
		 * NaN or Infinity (the server's own strict parser; json-c's takes those). */
		struct json_object *o = NULL;
		char why[200] = "";
		FUZZ_CHECK(!qmp_json_parse(c->in + start, n - 1, &o, why, sizeof(why)) &&
			       json_object_is_type(o, json_type_object),
			   "the server sent a line that is not a JSON object (%s): %.*s", why,
			   (int)n, c->in + start);
		json_object_put(o);
		if (getenv("FUZZ_QMP_DEBUG"))
			fprintf(stderr, "%d< %.*s\n", c->fd, (int)n - 1, c->in + start);
		c->lines++;
		start += n + 1;
	}
	memmove(c->in, c->in + start, c->len - start);
	c->len -= start;
}

static void drain(struct client *c)
{
	if (c->fd < 0)
		return;
	for (;;) {
		if (c->cap - c->len < 65536 + 1) {
			size_t cap = c->cap ? c->cap * 2 : 131072;
			char *p = realloc(c->in, cap);
			FUZZ_CHECK(p, "out of memory");
			c->in = p;
			c->cap = cap;
		}
		ssize_t n = recv(c->fd, c->in + c->len, 65536, MSG_DONTWAIT);
		if (n <= 0)
			break;
		c->len += (size_t)n;
		c->in[c->len] = '\0';
		check_lines(c);
	}
}

/* Bytes the server has not read yet from any client. */
static bool server_busy(struct ctx *x)
{
	for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
		struct qmp_client *sc = x->srv->clients[i];
		int avail = 0;
		if (sc && !sc->dead && ioctl(sc->fd, FIONREAD, &avail) == 0 && avail > 0)
			return true;
		if (sc && !sc->dead && sc->out_len)
			return true;
	}
	return false;
}

static void pump(struct ctx *x)
{
	for (int i = 0; i < PUMP_MAX; i++) {
		event_loop_run_once(&x->vm.loop, 0);
		drain(&x->cl[0]);
		drain(&x->cl[1]);
		if (!server_busy(x)) {
			/* One more turn for events (a hang-up, an accept) that were pending. */
			event_loop_run_once(&x->vm.loop, 0);
			drain(&x->cl[0]);
			drain(&x->cl[1]);
			return;
		}
	}
	FUZZ_CHECK(0, "the server never finished reading its input");
}

static void connect_client(struct ctx *x, unsigned i)
{
	struct client *c = &x->cl[i];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", x->path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(c->fd >= 0, "socket: %s", strerror(errno));
	FUZZ_CHECK(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
		   strerror(errno));
	pump(x); /* accept, greeting */
}

/* Write it all, letting the server read (and answer) while the socket is full. */
static void send_all(struct ctx *x, const uint8_t *p, size_t n)
{
	struct client *c = &x->cl[x->cur];
	if (c->fd < 0)
		connect_client(x, x->cur);
	while (n) {
		ssize_t w = send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_loop_run_once(&x->vm.loop, 0);
			drain(c);
			continue;
		}
		if (w <= 0) {
			/* The server closed this connection (a request too large): connect
			 * again for the rest. */
			drain(c);
			close(c->fd);
			c->fd = -1;
			c->len = 0;
			connect_client(x, x->cur);
			continue;
		}
		p += w;
		n -= (size_t)w;
	}
}

/* A request just past the 1 MiB limit: a string member of 1 MiB. Its content is fixed:
 * fuzzed content there would mostly make one error reply per line, thousands of them per
 * megabyte, and the fuzzer would spend its time on those. */
static void send_big(struct ctx *x)
{
	static uint8_t chunk[BIG_CHUNK];
	static const char head[] = "{\"execute\":\"query-name\",\"id\":\"";
	memset(chunk, 'a', sizeof(chunk));
	send_all(x, (const uint8_t *)head, sizeof(head) - 1);
	size_t total = QMP_MAX_REQUEST + 65536; /* the server reads 8 KiB at a time */
	for (size_t sent = 0; sent < total; sent += BIG_CHUNK)
		send_all(x, chunk, total - sent < BIG_CHUNK ? total - sent : BIG_CHUNK);
}

static bool vm_init(struct ctx *x)
{
	struct vm *vm = &x->vm;
	vm->cfg.name = "fuzz";
	vm->cfg.mem_size = 1 << 20;
	vm->request_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vm->signal_fd = -1;
	pthread_mutex_init(&vm->run_lock, NULL);
	pthread_cond_init(&vm->run_cond, NULL);
	vclock_init(&vm->clock);
	timer_list_init(&vm->timers, &vm->clock);
	io_bus_init(&vm->pio, "io");
	io_bus_init(&vm->mmio, "memory");
	if (vm->request_fd < 0 || event_loop_init(&vm->loop, &vm->timers) ||
	    gm_add_ram(&vm->mem, 0, 1 << 20, "pc.ram"))
		return false;
	/* Two vCPUs that never run: query-cpus-fast and info cpus list them. */
	vm->vcpus = calloc(2, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return false;
	vm->nr_vcpus = 2;
	x->irq = (struct irq_router){.ops = &nop_irq};
	struct acpi_pm_config pc;
	acpi_pm_config_default(&pc);
	pc.irq = &x->irq;
	pc.clock_ns = clock_ns;
	pc.clock_opaque = &vm->clock;
	if (acpi_pm_init(&vm->pm, &pc, &vm->pio))
		return false;
	i8042_init(&vm->kbd, &x->irq, NULL, NULL);
	vm->state = VM_STATE_RUNNING;
	return true;
}

static void vm_fini(struct ctx *x)
{
	struct vm *vm = &x->vm;
	if (vm->pm.io)
		acpi_pm_destroy(&vm->pm);
	i8042_destroy(&vm->kbd);
	free(vm->vcpus);
	event_loop_destroy(&vm->loop);
	io_bus_destroy(&vm->pio);
	io_bus_destroy(&vm->mmio);
	gm_destroy(&vm->mem);
	timer_list_destroy(&vm->timers);
	vclock_destroy(&vm->clock);
	if (vm->request_fd >= 0)
		close(vm->request_fd);
}

int fuzz_qmp_one(const uint8_t *data, size_t size)
{
	struct ctx *x = calloc(1, sizeof(*x));
	if (!x)
		return 0;
	x->cl[0].fd = x->cl[1].fd = -1;
	x->vm.request_fd = -1;
	struct error err = {0};
	snprintf(x->path, sizeof(x->path), "/tmp/kestrel-fuzz-qmp-%d.sock", getpid());
	char spec[160];
	snprintf(spec, sizeof(spec), "unix:%s,server=on,wait=off", x->path);
	if (!vm_init(x) || qmp_server_create(&x->srv, &x->vm, spec, &err))
		goto out;
	x->vm.qmp = x->srv;
	connect_client(x, 0);

	size_t start = 0;
	bool big = false;
	while (start < size) {
		const uint8_t *sep = memchr(data + start, FUZZ_QMP_SEP, size - start);
		size_t end = sep ? (size_t)(sep - data) : size;
		const uint8_t *msg = data + start;
		size_t n = end - start;
		if (n && msg[0] == FUZZ_QMP_SWITCH) {
			x->cur ^= 1;
			msg++;
			n--;
		}
		if (n >= 2 && msg[0] == FUZZ_QMP_BIG && msg[1] == FUZZ_QMP_BIG && !big) {
			send_big(x);
			big = true; /* once per input: each costs a megabyte of parsing */
			msg += 2;
			n -= 2;
		}
		if (n) {
			send_all(x, msg, n);
		}
		pump(x);
		start = end + 1;
	}
	/* Hang up; the server notices and frees the clients. */
	for (unsigned i = 0; i < 2; i++) {
		if (x->cl[i].fd >= 0)
			close(x->cl[i].fd);
		x->cl[i].fd = -1;
	}
	pump(x);
	for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++)
		FUZZ_CHECK(!x->srv->clients[i], "client %u still there after it hung up", i);
out:
	for (unsigned i = 0; i < 2; i++) {
		if (x->cl[i].fd >= 0)
			close(x->cl[i].fd);
		free(x->cl[i].in);
	}
	qmp_server_destroy(x->srv);
	vm_fini(x);
	free(x);
	return 0;
}

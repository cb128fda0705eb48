/* The qtest accelerator (no CPU) and the qtest protocol server, after QEMU's qtest
 * (docs/devel/qtest.rst and the protocol description in QEMU's softmmu/qtest.c): a test sends
 * one command per line and reads "OK ..." / "FAIL ..." answers and "IRQ raise|lower N"
 * notifications. See include/accel/qtest.h for the command list.
 *
 * Everything here runs on the main thread except vcpu_run/vcpu_kick (vCPU threads, any
 * thread) and the interrupt router, which a device may call from any thread: the router
 * and the output share q->lock.
 *
 * A socket client's output never blocks: what the socket does not take is queued and sent
 * as the client reads (EPOLLOUT, armed by the main thread; other threads ask for it through
 * out_kick_fd); a client that lets more than QTEST_MAX_OUTPUT wait is dropped, so a stuck
 * test cannot hang the main loop. (stdio keeps blocking writes: the test owns that pipe.)
 */
#define LOG_SUBSYS "qtest"
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "accel/qtest.h"
#include "util/log.h"

#define QTEST_MAX_LINE	 (1u << 20) /* write of 512 KiB in hex */
#define QTEST_MAX_IRQ	 256
#define QTEST_MAX_WORDS	 8
#define QTEST_MAX_ACCESS (1u << 20)  /* read/write/memset size */
#define QTEST_MAX_OUTPUT (32u << 20) /* queued for a socket client that does not read */

struct qtest {
	struct qtest_env env;
	int listen_fd;	 /* unix socket, -1 for stdio */
	char *unix_path; /* unlinked on destroy */
	int in_fd, out_fd;
	bool client_registered;
	char *line; /* partial input line */
	size_t line_len, line_cap;

	_Atomic uint64_t clock_ns; /* the manual clock source */

	pthread_mutex_t lock; /* irq_levels, intercept, output */
	int irq_levels[QTEST_MAX_IRQ];
	bool intercept;
	/* A socket client's queued output (lock held) */
	char *out;
	size_t out_len, out_cap;
	bool out_dead;	 /* over QTEST_MAX_OUTPUT: the main thread drops the client */
	bool want_out;	 /* EPOLLOUT armed (main thread) */
	int out_kick_fd; /* eventfd: the main thread should arm EPOLLOUT or drop the client */
};

struct qtest_vcpu {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool kicked;
};

/* --- output ------------------------------------------------------------------------------ */

/* Lock held: send what the socket takes now; the rest stays queued. */
static void flush_locked(struct qtest *q)
{
	while (q->out_len && q->out_fd >= 0) {
		ssize_t n = send(q->out_fd, q->out, q->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* Gone: the hang-up is seen on the input side; what was queued is lost. */
			if (n < 0 && errno != EAGAIN)
				q->out_len = 0;
			return;
		}
		memmove(q->out, q->out + n, q->out_len - (size_t)n);
		q->out_len -= (size_t)n;
	}
}

/* Lock held, any thread: queue for the socket client and send what can go now. */
static void queue_locked(struct qtest *q, const char *buf, size_t len)
{
	if (q->out_dead)
		return;
	if (q->out_len + len > QTEST_MAX_OUTPUT) {
		q->out_dead = true;
		q->out_len = 0;
	} else {
		if (q->out_len + len > q->out_cap) {
			size_t cap = q->out_cap ? q->out_cap : 4096;
			while (cap < q->out_len + len)
				cap *= 2;
			char *p = realloc(q->out, cap);
			if (!p) {
				q->out_dead = true;
				goto kick;
			}
			q->out = p;
			q->out_cap = cap;
		}
		memcpy(q->out + q->out_len, buf, len);
		q->out_len += len;
		flush_locked(q);
		if (!q->out_len || q->want_out)
			return;
	}
kick:;
	uint64_t one = 1;
	ssize_t r = write(q->out_kick_fd, &one, sizeof(one));
	(void)r;
}

/* Write all of buf; called with q->lock held. A client that went away loses the rest. */
static void out_locked(struct qtest *q, const char *buf, size_t len)
{
	if (q->listen_fd >= 0) {
		if (q->out_fd >= 0)
			queue_locked(q, buf, len);
		return;
	}
	while (len && q->out_fd >= 0) {
		ssize_t n = write(q->out_fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = q->out_fd, .events = POLLOUT};
			if (poll(&p, 1, 5000) <= 0)
				return;
			continue;
		}
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

__attribute__((format(printf, 2, 3))) static void reply(struct qtest *q, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	pthread_mutex_lock(&q->lock);
	out_locked(q, msg, (size_t)n);
	pthread_mutex_unlock(&q->lock);
	free(msg);
}

/* --- interrupt router -------------------------------------------------------------------- */

static void qtest_set_line(void *opaque, unsigned gsi, bool level)
{
	struct qtest *q = opaque;
	if (gsi >= QTEST_MAX_IRQ)
		return;
	pthread_mutex_lock(&q->lock);
	if (q->irq_levels[gsi] != (int)level) {
		q->irq_levels[gsi] = level;
		if (q->intercept) {
			char buf[32];
			int n = snprintf(buf, sizeof(buf), "IRQ %s %u\n", level ? "raise" : "lower",
					 gsi);
			out_locked(q, buf, (size_t)n);
		}
	}
	pthread_mutex_unlock(&q->lock);
}

static void qtest_send_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct qtest *q = opaque;
	pthread_mutex_lock(&q->lock);
	if (q->intercept) {
		char buf[64];
		int n = snprintf(buf, sizeof(buf), "MSI 0x%" PRIx64 " 0x%x\n", addr, data);
		out_locked(q, buf, (size_t)n);
	}
	pthread_mutex_unlock(&q->lock);
}

static const struct irq_router_ops qtest_irq_ops = {
    .set_line = qtest_set_line,
    .send_msi = qtest_send_msi,
};

/* --- accelerator ------------------------------------------------------------------------- */

static int qtest_init(struct accel *a)
{
	if (!a->priv)
		return -EINVAL; /* the machine sets priv to its struct qtest */
	a->irq.ops = &qtest_irq_ops;
	a->irq.opaque = a->priv;
	return 0;
}

static void qtest_accel_destroy(struct accel *a)
{
	/* priv belongs to the machine; it stays for the next init after a reset. */
}

static int qtest_map_ram(struct accel *a, uint64_t gpa, uint64_t size, void *host)
{
	return 0;
}

static unsigned qtest_max_vcpus(struct accel *a)
{
	return 256;
}

static int qtest_vcpu_create(struct accel *a, struct vcpu *v)
{
	struct qtest_vcpu *qv = calloc(1, sizeof(*qv));
	if (!qv)
		return -ENOMEM;
	pthread_mutex_init(&qv->lock, NULL);
	pthread_cond_init(&qv->cond, NULL);
	v->priv = qv;
	return 0;
}

static void qtest_vcpu_destroy(struct vcpu *v)
{
	struct qtest_vcpu *qv = v->priv;
	if (!qv)
		return;
	pthread_mutex_destroy(&qv->lock);
	pthread_cond_destroy(&qv->cond);
	free(qv);
	v->priv = NULL;
}

static int qtest_vcpu_set_boot_state(struct vcpu *v, const struct boot_cpu_state *st)
{
	return 0;
}

/* No guest code: wait for a kick (pause, stop) and report it. */
static int qtest_vcpu_run(struct vcpu *v, struct vcpu_exit *exit)
{
	struct qtest_vcpu *qv = v->priv;
	pthread_mutex_lock(&qv->lock);
	while (!qv->kicked)
		pthread_cond_wait(&qv->cond, &qv->lock);
	qv->kicked = false;
	pthread_mutex_unlock(&qv->lock);
	exit->reason = VCPU_EXIT_KICKED;
	return 0;
}

static void qtest_vcpu_kick(struct vcpu *v)
{
	struct qtest_vcpu *qv = v->priv;
	pthread_mutex_lock(&qv->lock);
	qv->kicked = true;
	pthread_cond_signal(&qv->cond);
	pthread_mutex_unlock(&qv->lock);
}

static int qtest_vcpu_dump(struct vcpu *v, char *buf, size_t len)
{
	int n = snprintf(buf, len, "CPU#%u\n(qtest accelerator: no CPU state)\n", v->index);
	return n < (int)len ? n : (int)len - 1;
}

const struct accel_ops qtest_accel_ops = {
    .name = "qtest",
    .init = qtest_init,
    .destroy = qtest_accel_destroy,
    .map_ram = qtest_map_ram,
    .max_vcpus = qtest_max_vcpus,
    .vcpu_create = qtest_vcpu_create,
    .vcpu_destroy = qtest_vcpu_destroy,
    .vcpu_set_boot_state = qtest_vcpu_set_boot_state,
    .vcpu_run = qtest_vcpu_run,
    .vcpu_kick = qtest_vcpu_kick,
    .vcpu_dump = qtest_vcpu_dump,
};

uint64_t qtest_clock_source(void *opaque)
{
	struct qtest *q = opaque;
	return atomic_load(&q->clock_ns);
}

/* --- commands ---------------------------------------------------------------------------- */

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;
	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || *end)
		return false;
	*v = x;
	return true;
}

/* Guest-physical access: RAM if the whole range is RAM, else the MMIO bus (<= 8 bytes). */
static bool mem_access(struct qtest *q, uint64_t addr, void *buf, uint64_t len, bool write)
{
	void *p = gm_ptr(q->env.mem, addr, len);
	if (p) {
		if (write)
			memcpy(p, buf, len);
		else
			memcpy(buf, p, len);
		return true;
	}
	if (len > 8 || (len & (len - 1)))
		return false;
	uint64_t v = 0;
	if (write) {
		memcpy(&v, buf, len);
		io_bus_write(q->env.mmio, addr, (unsigned)len, v);
	} else {
		io_bus_read(q->env.mmio, addr, (unsigned)len, &v);
		memcpy(buf, &v, len);
	}
	return true;
}

/* Move guest time to dest, stopping at every timer deadline on the way so periodic timers
 * fire as often as they would have (QEMU's qtest_clock_warp). */
static uint64_t clock_warp(struct qtest *q, uint64_t dest)
{
	struct vclock *vc = q->env.clock;
	for (unsigned guard = 0; guard < 1000000; guard++) {
		uint64_t now = vclock_now(vc);
		if (now >= dest || vclock_paused(vc))
			break;
		uint64_t next = timer_list_next_deadline(q->env.timers);
		uint64_t to = next < dest && next > now ? next : dest;
		atomic_fetch_add(&q->clock_ns, to - now);
		timer_list_run_expired(q->env.timers, vclock_now(vc));
	}
	timer_list_run_expired(q->env.timers, vclock_now(vc));
	event_loop_wake(q->env.loop);
	return vclock_now(vc);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void cmd_pio(struct qtest *q, char **w, int nw)
{
	unsigned size = w[0][strlen(w[0]) - 1] == 'b' ? 1 : w[0][strlen(w[0]) - 1] == 'w' ? 2 : 4;
	bool out = w[0][0] == 'o';
	uint64_t port, value = 0;
	if (nw != (out ? 3 : 2) || !parse_u64(w[1], &port) || port > 0xffff ||
	    (out && !parse_u64(w[2], &value))) {
		reply(q, "FAIL usage: %s PORT%s\n", w[0], out ? " VALUE" : "");
		return;
	}
	if (out) {
		io_bus_write(q->env.pio, port, size, value);
		reply(q, "OK\n");
		return;
	}
	uint64_t v = 0;
	io_bus_read(q->env.pio, port, size, &v);
	v &= size == 4 ? 0xffffffffull : (1ull << (size * 8)) - 1;
	reply(q, "OK 0x%04" PRIx64 "\n", v);
}

static void cmd_mmio(struct qtest *q, char **w, int nw)
{
	char c = w[0][strlen(w[0]) - 1];
	unsigned size = c == 'b' ? 1 : c == 'w' ? 2 : c == 'l' ? 4 : 8;
	bool write = w[0][0] == 'w';
	uint64_t addr, value = 0;
	if (nw != (write ? 3 : 2) || !parse_u64(w[1], &addr) ||
	    (write && !parse_u64(w[2], &value))) {
		reply(q, "FAIL usage: %s ADDR%s\n", w[0], write ? " VALUE" : "");
		return;
	}
	if (!mem_access(q, addr, &value, size, write)) {
		reply(q, "FAIL bad address\n");
		return;
	}
	if (write)
		reply(q, "OK\n");
	else
		reply(q, "OK 0x%016" PRIx64 "\n",
		      size == 8 ? value : value & (((uint64_t)1 << (size * 8)) - 1));
}

static void cmd_read(struct qtest *q, char **w, int nw)
{
	uint64_t addr, len;
	if (nw != 3 || !parse_u64(w[1], &addr) || !parse_u64(w[2], &len) || len == 0 ||
	    len > QTEST_MAX_ACCESS) {
		reply(q, "FAIL usage: read ADDR SIZE (1..%u)\n", QTEST_MAX_ACCESS);
		return;
	}
	uint8_t *data = malloc(len);
	char *hex = malloc(2 * len + 5);
	if (!data || !hex || !mem_access(q, addr, data, len, false)) {
		reply(q, "FAIL %s\n", data && hex ? "bad address" : "out of memory");
		goto out;
	}
	static const char digits[] = "0123456789abcdef";
	memcpy(hex, "OK 0x", 5);
	size_t n = 5;
	for (uint64_t i = 0; i < len; i++) {
		hex[n++] = digits[data[i] >> 4];
		hex[n++] = digits[data[i] & 15];
	}
	pthread_mutex_lock(&q->lock);
	out_locked(q, hex, n);
	out_locked(q, "\n", 1);
	pthread_mutex_unlock(&q->lock);
out:
	free(data);
	free(hex);
}

static void cmd_write(struct qtest *q, char **w, int nw)
{
	uint64_t addr, len;
	const char *hex = nw == 4 ? w[3] : NULL;
	if (nw != 4 || !parse_u64(w[1], &addr) || !parse_u64(w[2], &len) || len == 0 ||
	    len > QTEST_MAX_ACCESS || strncmp(hex, "0x", 2)) {
		reply(q, "FAIL usage: write ADDR SIZE 0xDATA\n");
		return;
	}
	hex += 2;
	size_t hl = strlen(hex);
	uint8_t *data = calloc(1, len);
	if (!data) {
		reply(q, "FAIL out of memory\n");
		return;
	}
	/* Shorter data is zero-filled at the end, as in QEMU. */
	for (uint64_t i = 0; i < len && 2 * i + 1 < hl; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			reply(q, "FAIL bad hex data\n");
			free(data);
			return;
		}
		data[i] = (uint8_t)(hi << 4 | lo);
	}
	if (mem_access(q, addr, data, len, true))
		reply(q, "OK\n");
	else
		reply(q, "FAIL bad address\n");
	free(data);
}

static void cmd_memset(struct qtest *q, char **w, int nw)
{
	uint64_t addr, len, pattern;
	if (nw != 4 || !parse_u64(w[1], &addr) || !parse_u64(w[2], &len) ||
	    !parse_u64(w[3], &pattern) || len > QTEST_MAX_ACCESS) {
		reply(q, "FAIL usage: memset ADDR SIZE VALUE\n");
		return;
	}
	if (len == 0) {
		reply(q, "OK\n");
		return;
	}
	uint8_t *data = malloc(len);
	if (!data) {
		reply(q, "FAIL out of memory\n");
		return;
	}
	memset(data, (int)(pattern & 0xff), len);
	if (mem_access(q, addr, data, len, true))
		reply(q, "OK\n");
	else
		reply(q, "FAIL bad address\n");
	free(data);
}

static void cmd_clock(struct qtest *q, char **w, int nw)
{
	uint64_t now = vclock_now(q->env.clock), arg = 0, dest;
	bool step = !strcmp(w[0], "clock_step");
	if (nw > 2 || (nw == 2 && !parse_u64(w[1], &arg)) || (!step && nw != 2)) {
		reply(q, "FAIL usage: %s\n", step ? "clock_step [NS]" : "clock_set NS");
		return;
	}
	if (step && nw == 1) {
		/* To the next deadline; nothing armed: time stays. */
		dest = timer_list_next_deadline(q->env.timers);
		if (dest == TIMER_NEVER || dest < now)
			dest = now;
	} else if (step) {
		dest = arg > UINT64_MAX / 2 - now ? UINT64_MAX / 2 : now + arg;
	} else {
		dest = arg;
	}
	reply(q, "OK %" PRIu64 "\n", clock_warp(q, dest));
}

static void process_line(struct qtest *q, char *line)
{
	char *w[QTEST_MAX_WORDS + 1], *save = NULL;
	int nw = 0;
	for (char *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
		if (nw == QTEST_MAX_WORDS) {
			reply(q, "FAIL too many words\n");
			return;
		}
		w[nw++] = t;
	}
	if (nw == 0)
		return;
	const char *c = w[0];
	if (!strcmp(c, "outb") || !strcmp(c, "outw") || !strcmp(c, "outl") || !strcmp(c, "inb") ||
	    !strcmp(c, "inw") || !strcmp(c, "inl"))
		cmd_pio(q, w, nw);
	else if (!strcmp(c, "writeb") || !strcmp(c, "writew") || !strcmp(c, "writel") ||
		 !strcmp(c, "writeq") || !strcmp(c, "readb") || !strcmp(c, "readw") ||
		 !strcmp(c, "readl") || !strcmp(c, "readq"))
		cmd_mmio(q, w, nw);
	else if (!strcmp(c, "read") || !strcmp(c, "memread"))
		cmd_read(q, w, nw);
	else if (!strcmp(c, "write") || !strcmp(c, "memwrite"))
		cmd_write(q, w, nw);
	else if (!strcmp(c, "memset"))
		cmd_memset(q, w, nw);
	else if (!strcmp(c, "clock_step") || !strcmp(c, "clock_set"))
		cmd_clock(q, w, nw);
	else if (!strcmp(c, "irq_intercept_in") || !strcmp(c, "irq_intercept_out")) {
		if (nw != 2) {
			reply(q, "FAIL usage: %s NAME\n", c);
			return;
		}
		/* One interrupt router: every GSI the machine's devices drive. */
		pthread_mutex_lock(&q->lock);
		q->intercept = true;
		pthread_mutex_unlock(&q->lock);
		reply(q, "OK\n");
	} else if (!strcmp(c, "endianness"))
		reply(q, "OK little\n");
	else
		reply(q, "FAIL Unknown command '%.64s'\n", c);
}

/* --- connection -------------------------------------------------------------------------- */

static void drop_client(struct qtest *q)
{
	if (q->client_registered)
		event_loop_del_fd(q->env.loop, q->in_fd);
	q->client_registered = false;
	pthread_mutex_lock(&q->lock);
	if (q->listen_fd >= 0) { /* a socket client: in_fd == out_fd */
		close(q->in_fd);
		q->out_fd = -1;
	}
	q->out_len = 0;
	q->out_dead = false;
	q->want_out = false;
	q->intercept = false;
	pthread_mutex_unlock(&q->lock);
	q->in_fd = -1;
	q->line_len = 0;
}

/* Main thread: EPOLLOUT for what is queued (off again once it is all sent). */
static void set_want_out(struct qtest *q, bool want)
{
	if (want != q->want_out && q->in_fd >= 0 &&
	    !event_loop_mod_fd(q->env.loop, q->in_fd, EPOLLIN | (want ? EPOLLOUT : 0)))
		q->want_out = want;
}

/* out_kick_fd: another thread queued output the socket did not take, or a client went over
 * QTEST_MAX_OUTPUT. */
static void on_out_kick(void *opaque, uint32_t events)
{
	struct qtest *q = opaque;
	eventfd_drain(q->out_kick_fd);
	pthread_mutex_lock(&q->lock);
	bool dead = q->out_dead && q->out_fd >= 0;
	if (!dead)
		set_want_out(q, q->out_len > 0);
	pthread_mutex_unlock(&q->lock);
	if (dead) {
		log_warn("qtest client does not read its answers (over %u MiB queued); dropping it",
			 QTEST_MAX_OUTPUT >> 20);
		drop_client(q);
	}
}

static void on_client(void *opaque, uint32_t events)
{
	struct qtest *q = opaque;
	if (events & EPOLLOUT) {
		pthread_mutex_lock(&q->lock);
		flush_locked(q);
		set_want_out(q, q->out_len > 0);
		pthread_mutex_unlock(&q->lock);
		if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
			return;
	}
	char buf[4096];
	ssize_t n = read(q->in_fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		log_info("qtest client disconnected");
		bool stdio = q->listen_fd < 0;
		drop_client(q);
		/* stdin is not coming back: a piped test script ends the VM by closing it. */
		if (stdio && q->env.closed)
			q->env.closed(q->env.closed_opaque);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		if (buf[i] == '\n') {
			q->line[q->line_len] = '\0';
			process_line(q, q->line);
			q->line_len = 0;
			if (q->in_fd < 0)
				return;
			continue;
		}
		if (q->line_len + 1 >= q->line_cap) {
			size_t cap = q->line_cap * 2;
			char *p = cap <= QTEST_MAX_LINE ? realloc(q->line, cap) : NULL;
			if (!p) {
				reply(q, "FAIL line longer than %u bytes\n", QTEST_MAX_LINE);
				drop_client(q);
				return;
			}
			q->line = p;
			q->line_cap = cap;
		}
		q->line[q->line_len++] = buf[i];
	}
}

static void on_accept(void *opaque, uint32_t events)
{
	struct qtest *q = opaque;
	int fd = accept4(q->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (q->in_fd >= 0) { /* one test at a time */
		static const char busy[] = "FAIL another qtest client is connected\n";
		ssize_t r = write(fd, busy, sizeof(busy) - 1);
		(void)r;
		close(fd);
		return;
	}
	q->in_fd = q->out_fd = fd;
	if (event_loop_add_fd(q->env.loop, fd, EPOLLIN, on_client, q)) {
		close(fd);
		q->in_fd = q->out_fd = -1;
		return;
	}
	q->client_registered = true;
}

int qtest_create(struct qtest **out, const char *spec, const struct qtest_env *env,
		 struct error *err)
{
	struct qtest *q = calloc(1, sizeof(*q));
	if (!q)
		return error_set(err, -ENOMEM, "out of memory");
	q->env = *env;
	q->listen_fd = q->in_fd = q->out_fd = q->out_kick_fd = -1;
	q->line_cap = 4096;
	q->line = malloc(q->line_cap);
	atomic_store(&q->clock_ns, 0);
	pthread_mutex_init(&q->lock, NULL);
	int ret;
	if (!q->line) {
		ret = error_set(err, -ENOMEM, "out of memory");
		goto err_free;
	}
	if (!strcmp(spec, "none")) {
		/* QMP only: nothing to listen on */
	} else if (!strcmp(spec, "stdio")) {
		q->in_fd = STDIN_FILENO;
		q->out_fd = STDOUT_FILENO;
	} else if (!strncmp(spec, "unix:", 5) && spec[5]) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		const char *path = spec + 5;
		size_t plen = strcspn(path, ",");
		if (plen >= sizeof(sa.sun_path)) {
			ret = error_set(err, -ENAMETOOLONG, "--qtest: socket path too long");
			goto err_free;
		}
		memcpy(sa.sun_path, path, plen);
		q->unix_path = strndup(path, plen);
		q->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		unlink(q->unix_path);
		if (q->listen_fd < 0 || bind(q->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		    listen(q->listen_fd, 2)) {
			ret = error_set(err, -errno, "--qtest: cannot listen on %s: %s",
					q->unix_path, strerror(errno));
			goto err_free;
		}
	} else {
		ret = error_set(err, -EINVAL, "--qtest: '%s' is not unix:PATH or stdio", spec);
		goto err_free;
	}
	*out = q;
	return 0;

err_free:
	if (q->listen_fd >= 0)
		close(q->listen_fd);
	free(q->unix_path);
	free(q->line);
	pthread_mutex_destroy(&q->lock);
	free(q);
	return ret;
}

int qtest_start(struct qtest *q)
{
	if (q->listen_fd >= 0) {
		q->out_kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->out_kick_fd < 0)
			return -errno;
		int ret = event_loop_add_fd(q->env.loop, q->out_kick_fd, EPOLLIN, on_out_kick, q);
		return ret ? ret
			   : event_loop_add_fd(q->env.loop, q->listen_fd, EPOLLIN, on_accept, q);
	}
	if (q->in_fd < 0)
		return 0;
	int ret = event_loop_add_fd(q->env.loop, q->in_fd, EPOLLIN, on_client, q);
	if (!ret)
		q->client_registered = true;
	return ret;
}

void qtest_destroy(struct qtest *q)
{
	/* The event loop is already gone: only close. */
	if (q->listen_fd >= 0) {
		if (q->in_fd >= 0)
			close(q->in_fd);
		close(q->listen_fd);
		unlink(q->unix_path);
	}
	if (q->out_kick_fd >= 0)
		close(q->out_kick_fd);
	free(q->out);
	free(q->unix_path);
	free(q->line);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

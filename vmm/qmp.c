/* QMP server: listener, clients, framing and dispatch, events. Protocol per QEMU's
 * docs/interop/qmp-spec.rst (greeting, capabilities negotiation, commands, errors, events);
 * the commands themselves are in vmm/qmp_cmds.c.
 *
 * A client's input goes through a strict JSON framer and parser (vmm/qmp_json.c): several
 * requests may arrive in one read and one request over many. A request longer than
 * QMP_MAX_REQUEST bytes gets a GenericError and the connection is closed (the stream cannot be
 * resynchronised inside a value); a value that is not JSON gets QEMU's GenericError "JSON parse
 * error, ...", and after a byte no JSON may hold the rest of that line is dropped. Only valid
 * JSON is ever sent back (an "id" is echoed as parsed; text that is not UTF-8 is not). Output is
 * queued per client and written as the socket takes it; a client that stops reading while
 * more than QMP_MAX_OUTPUT bytes wait is disconnected, so it cannot hold the VM up.
 */
#define LOG_SUBSYS "qmp"
#include <errno.h>
#include <json-c/json.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/log.h"
#include "vmm/qmp.h"
#include "qmp_int.h"
#include "vmm/vm.h"

#define QMP_MAX_OUTPUT (8u << 20)

/* --- output ------------------------------------------------------------------------------ */

static void client_flush(struct qmp_client *cl)
{
	while (cl->out_len && !cl->dead) {
		ssize_t n = send(cl->fd, cl->out, cl->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			cl->dead = true; /* gone mid-reply: drop what is left */
			return;
		}
		memmove(cl->out, cl->out + n, cl->out_len - (size_t)n);
		cl->out_len -= (size_t)n;
	}
	bool want = cl->out_len > 0;
	if (want != cl->want_out && !cl->dead) {
		event_loop_mod_fd(&cl->srv->vm->loop, cl->fd, EPOLLIN | (want ? EPOLLOUT : 0));
		cl->want_out = want;
	}
}

static char *sanitize_utf8(const char *s, size_t len)
{
	char *o = malloc(len + 1);
	uint32_t cp;
	for (size_t i = 0; o && i < len;) {
		size_t k = qmp_utf8_decode((const unsigned char *)s + i, len - i, &cp);
		if (k) {
			memcpy(o + i, s + i, k);
			i += k;
		} else {
			o[i++] = '?';
		}
	}
	if (o)
		o[len] = '\0';
	return o;
}

static void client_send(struct qmp_client *cl, struct json_object *obj)
{
	if (cl->dead)
		return;
	const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t len = strlen(s);
	char *fixed = NULL;
	if (!qmp_utf8_valid(s, len)) {
		/* Only valid JSON leaves the server: a text cut inside a UTF-8 sequence (a long
		 * name in an error message) gets '?' for the bytes that are not UTF-8. */
		fixed = sanitize_utf8(s, len);
		if (!fixed) {
			cl->dead = true;
			return;
		}
		s = fixed;
	}
	if (cl->out_len + len + 2 > QMP_MAX_OUTPUT) {
		log_warn("QMP client does not read its replies; disconnecting it");
		cl->dead = true;
		free(fixed);
		return;
	}
	if (cl->out_len + len + 2 > cl->out_cap) {
		size_t cap = cl->out_cap ? cl->out_cap : 4096;
		while (cap < cl->out_len + len + 2)
			cap *= 2;
		char *p = realloc(cl->out, cap);
		if (!p) {
			cl->dead = true;
			free(fixed);
			return;
		}
		cl->out = p;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, s, len);
	memcpy(cl->out + cl->out_len + len, "\r\n", 2);
	cl->out_len += len + 2;
	free(fixed);
	client_flush(cl);
}

static void client_free(struct qmp_client *cl)
{
	struct qmp_server *s = cl->srv;
	event_loop_del_fd(&s->vm->loop, cl->fd);
	close(cl->fd);
	qmp_json_free(&cl->in);
	free(cl->out);
	for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++)
		if (s->clients[i] == cl)
			s->clients[i] = NULL;
	free(cl);
}

/* Free the clients that failed; never called from inside a client's own handler while it
 * still uses the client. */
static void reap(struct qmp_server *s)
{
	for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++)
		if (s->clients[i] && s->clients[i]->dead)
			client_free(s->clients[i]);
}

static struct json_object *timestamp(void)
{
	uint64_t ns = clock_realtime_ns();
	struct json_object *t = json_object_new_object();
	json_object_object_add(t, "seconds", json_object_new_int64((int64_t)(ns / NSEC_PER_SEC)));
	json_object_object_add(t, "microseconds",
			       json_object_new_int64((int64_t)(ns % NSEC_PER_SEC / 1000)));
	return t;
}

void qmp_emit_event(struct qmp_server *s, const char *name, struct json_object *data)
{
	if (!s) {
		json_object_put(data);
		return;
	}
	struct json_object *ev = json_object_new_object();
	json_object_object_add(ev, "event", json_object_new_string(name));
	if (data) /* QEMU leaves "data" out of events that carry none (STOP, RESUME, ...) */
		json_object_object_add(ev, "data", data);
	json_object_object_add(ev, "timestamp", timestamp());
	for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++)
		if (s->clients[i] && s->clients[i]->negotiated)
			client_send(s->clients[i], ev);
	json_object_put(ev);
	if (!s->in_handler)
		reap(s);
}

void qmp_emit_shutdown(struct qmp_server *s, const char *name, bool guest, const char *reason)
{
	if (!s)
		return;
	struct json_object *d = json_object_new_object();
	json_object_object_add(d, "guest", json_object_new_boolean(guest));
	json_object_object_add(d, "reason", json_object_new_string(reason));
	qmp_emit_event(s, name, d);
}

/* --- requests ---------------------------------------------------------------------------- */

void qmp_error(struct qmp_ctx *c, const char *cls, const char *fmt, ...)
{
	va_list ap;
	c->err_class = cls;
	va_start(ap, fmt);
	vsnprintf(c->err_desc, sizeof(c->err_desc), fmt, ap);
	va_end(ap);
}

/* The request's "id", whatever JSON it is (null too), goes back with its answer. */
static void add_id(struct json_object *r, struct json_object *req)
{
	struct json_object *id;
	if (req && json_object_object_get_ex(req, "id", &id))
		json_object_object_add(r, "id", json_object_get(id));
}

/* desc may hold NULs (a client's name quoted): len bytes of it. */
static void send_error_len(struct qmp_client *cl, struct json_object *req, const char *cls,
			   const char *desc, size_t len)
{
	struct json_object *r = json_object_new_object();
	struct json_object *e = json_object_new_object();
	json_object_object_add(e, "class", json_object_new_string(cls));
	json_object_object_add(e, "desc", json_object_new_string_len(desc, (int)len));
	json_object_object_add(r, "error", e);
	add_id(r, req);
	client_send(cl, r);
	json_object_put(r);
}

static void send_error(struct qmp_client *cl, struct json_object *req, const char *cls,
		       const char *desc)
{
	send_error_len(cl, req, cls, desc, strlen(desc));
}

static bool type_ok(struct json_object *v, enum qmp_arg_type t)
{
	switch (t) {
	case QMP_ARG_STR:
		return json_object_is_type(v, json_type_string);
	case QMP_ARG_INT:
		return json_object_is_type(v, json_type_int);
	case QMP_ARG_BOOL:
		return json_object_is_type(v, json_type_boolean);
	case QMP_ARG_ARRAY:
		return json_object_is_type(v, json_type_array);
	case QMP_ARG_OBJECT:
		return json_object_is_type(v, json_type_object);
	}
	return false;
}

/* Arguments against the command's table: no unknown ones, required ones there, types. */
static bool check_args(struct qmp_ctx *c, const struct qmp_command *cmd, struct json_object *args)
{
	json_object_object_foreach(args, key, val)
	{
		const struct qmp_arg *a = cmd->args;
		while (a && a->name && strcmp(a->name, key))
			a++;
		if (!a || !a->name) {
			qmp_error(c, "GenericError", "Parameter '%s' is unexpected", key);
			return false;
		}
		if (!type_ok(val, a->type)) {
			qmp_error(c, "GenericError",
				  "Invalid parameter type for '%s', expected: %s", key,
				  qmp_arg_type_name(a->type, false));
			return false;
		}
	}
	for (const struct qmp_arg *a = cmd->args; a && a->name; a++)
		if (!a->optional && !json_object_object_get_ex(args, a->name, NULL)) {
			qmp_error(c, "GenericError", "Parameter '%s' is missing", a->name);
			return false;
		}
	return true;
}

static void handle_request(struct qmp_client *cl, struct json_object *req)
{
	struct qmp_server *s = cl->srv;
	struct json_object *exec = NULL, *args = NULL;
	if (!json_object_is_type(req, json_type_object)) {
		send_error(cl, NULL, "GenericError", "QMP input must be a JSON object");
		return;
	}
	json_object_object_foreach(req, key, val)
	{
		(void)val;
		if (strcmp(key, "execute") && strcmp(key, "arguments") && strcmp(key, "id")) {
			char desc[160];
			snprintf(desc, sizeof(desc), "QMP input member '%.100s' is unexpected",
				 key);
			send_error(cl, req, "GenericError", desc);
			return;
		}
	}
	if (!json_object_object_get_ex(req, "execute", &exec)) {
		send_error(cl, req, "GenericError", "QMP input lacks member 'execute'");
		return;
	}
	if (!json_object_is_type(exec, json_type_string)) {
		send_error(cl, req, "GenericError", "QMP input member 'execute' must be a string");
		return;
	}
	if (json_object_object_get_ex(req, "arguments", &args) &&
	    !json_object_is_type(args, json_type_object)) {
		send_error(cl, req, "GenericError",
			   "QMP input member 'arguments' must be an object");
		return;
	}
	const char *name = json_object_get_string(exec);
	bool is_caps = !strcmp(name, "qmp_capabilities");
	if (!cl->negotiated && !is_caps) {
		send_error(cl, req, "CommandNotFound",
			   "Expecting capabilities negotiation with 'qmp_capabilities'");
		return;
	}
	if (cl->negotiated && is_caps) {
		send_error(cl, req, "CommandNotFound",
			   "Capabilities negotiation is already complete, command ignored");
		return;
	}
	/* A name with a NUL in it ("query-status\u0000x") is no command's name. */
	size_t nlen = (size_t)json_object_get_string_len(exec);
	const struct qmp_command *cmd = strlen(name) == nlen ? qmp_find_command(name) : NULL;
	if (!cmd) {
		/* Built by hand: the name may hold NULs, quoted as they are (QEMU does). */
		char desc[160];
		size_t k = nlen < 100 ? nlen : 100, n = sizeof("The command ") - 1;
		memcpy(desc, "The command ", n);
		memcpy(desc + n, name, k);
		n += k;
		n += (size_t)snprintf(desc + n, sizeof(desc) - n, " has not been found");
		send_error_len(cl, req, "CommandNotFound", desc, n);
		return;
	}
	struct qmp_ctx c = {.srv = s, .client = cl, .vm = s->vm};
	struct json_object *empty = NULL;
	if (!args)
		args = empty = json_object_new_object();
	struct json_object *ret = NULL;
	if (check_args(&c, cmd, args))
		ret = cmd->fn(&c, args);
	json_object_put(empty);
	if (c.err_class) {
		json_object_put(ret);
		send_error(cl, req, c.err_class, c.err_desc);
		return;
	}
	struct json_object *r = json_object_new_object();
	json_object_object_add(r, "return", ret ? ret : json_object_new_object());
	add_id(r, req);
	client_send(cl, r);
	json_object_put(r);
}

/* Feed one read's bytes to the client's JSON framer; every complete value is a request. */
static void client_input(struct qmp_client *cl, const char *buf, size_t len)
{
	size_t off = 0;
	while (off < len && !cl->dead) {
		struct json_object *obj;
		size_t used;
		char err[200];
		enum qmp_json_status st =
		    qmp_json_feed(&cl->in, buf + off, len - off, &used, &obj, err, sizeof(err));
		off += used;
		switch (st) {
		case QMP_JSON_MORE:
			return;
		case QMP_JSON_TOO_BIG:
			send_error(cl, NULL, "GenericError",
				   "JSON request too large (limit 1 MiB); closing");
			client_flush(cl);
			cl->dead = true;
			return;
		case QMP_JSON_ERROR:
			send_error(cl, NULL, "GenericError", err);
			break;
		case QMP_JSON_VALUE:
			handle_request(cl, obj);
			json_object_put(obj);
			break;
		}
	}
}

static void on_client(void *opaque, uint32_t events)
{
	struct qmp_client *cl = opaque;
	struct qmp_server *s = cl->srv;
	s->in_handler = true;
	if (events & EPOLLOUT)
		client_flush(cl);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		char buf[8192];
		ssize_t n = recv(cl->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			cl->dead = true;
		else if (n > 0)
			client_input(cl, buf, (size_t)n);
	}
	s->in_handler = false;
	reap(s);
}

static void send_greeting(struct qmp_client *cl)
{
	unsigned major = 0, minor = 0, micro = 0;
	sscanf(KESTREL_VERSION, "%u.%u.%u", &major, &minor, &micro);
	struct json_object *v = json_object_new_object();
	json_object_object_add(v, "major", json_object_new_int((int)major));
	json_object_object_add(v, "minor", json_object_new_int((int)minor));
	json_object_object_add(v, "micro", json_object_new_int((int)micro));
	struct json_object *ver = json_object_new_object();
	json_object_object_add(ver, "qemu", v);
	json_object_object_add(ver, "package", json_object_new_string("kestrel-" KESTREL_VERSION));
	struct json_object *q = json_object_new_object();
	json_object_object_add(q, "version", ver);
	json_object_object_add(q, "capabilities", json_object_new_array());
	struct json_object *g = json_object_new_object();
	json_object_object_add(g, "QMP", q);
	client_send(cl, g);
	json_object_put(g);
}

static void on_accept(void *opaque, uint32_t events)
{
	struct qmp_listener *l = opaque;
	struct qmp_server *s = l->srv;
	int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	unsigned slot = QMP_MAX_CLIENTS;
	for (unsigned i = 0; i < QMP_MAX_CLIENTS && slot == QMP_MAX_CLIENTS; i++)
		if (!s->clients[i])
			slot = i;
	struct qmp_client *cl = slot < QMP_MAX_CLIENTS ? calloc(1, sizeof(*cl)) : NULL;
	if (!cl) {
		log_warn("QMP: refusing a client (%u connected)", QMP_MAX_CLIENTS);
		close(fd);
		return;
	}
	cl->srv = s;
	cl->fd = fd;
	if (event_loop_add_fd(&s->vm->loop, fd, EPOLLIN, on_client, cl)) {
		free(cl);
		close(fd);
		return;
	}
	s->clients[slot] = cl;
	send_greeting(cl);
	reap(s);
}

/* --- listener ---------------------------------------------------------------------------- */

/* "on"/"off" for KEY=VALUE; a bare KEY is on (QEMU's old "server"). */
static int on_off(const char *key, const char *val, bool *out, struct error *err)
{
	if (!val || !strcmp(val, "on"))
		*out = true;
	else if (!strcmp(val, "off"))
		*out = false;
	else
		return error_set(err, -EINVAL, "--qmp: %s=%s is not on or off", key, val);
	return 0;
}

int qmp_spec_parse(const char *spec, struct qmp_spec *out, struct error *err)
{
	memset(out, 0, sizeof(*out));
	char buf[512];
	if (strlen(spec) >= sizeof(buf))
		return error_set(err, -EINVAL, "--qmp: '%.40s...' is too long", spec);
	snprintf(buf, sizeof(buf), "%s", spec);
	char *save = NULL, *addr = strtok_r(buf, ",", &save);
	if (!addr)
		addr = buf;
	if (!strncmp(addr, "unix:", 5)) {
		struct sockaddr_un sa;
		if (!addr[5] || strlen(addr + 5) >= sizeof(sa.sun_path))
			return error_set(err, -EINVAL,
					 "--qmp: unix:PATH needs a path of 1 to %zu bytes",
					 sizeof(sa.sun_path) - 1);
		snprintf(out->path, sizeof(out->path), "%s", addr + 5);
	} else if (!strncmp(addr, "tcp:", 4)) {
		/* tcp:HOST:PORT, tcp::PORT (loopback), tcp:[IPV6]:PORT */
		char *host = addr + 4, *colon;
		if (*host == '[') {
			char *close = strchr(host, ']');
			if (!close || close[1] != ':')
				return error_set(err, -EINVAL,
						 "--qmp: '%s' is not tcp:[IPV6-ADDRESS]:PORT",
						 addr);
			*close = '\0';
			host++;
			colon = close + 1;
		} else {
			colon = strrchr(host, ':');
			if (!colon)
				return error_set(err, -EINVAL,
						 "--qmp: '%s' is not tcp:HOST:PORT (HOST may be "
						 "empty: loopback)",
						 addr);
			*colon = '\0';
		}
		if (!colon[1] || strlen(colon + 1) >= sizeof(out->port) ||
		    strlen(host) >= sizeof(out->host))
			return error_set(err, -EINVAL, "--qmp: '%s' needs a port", spec);
		out->tcp = true;
		snprintf(out->host, sizeof(out->host), "%s", host[0] ? host : "127.0.0.1");
		snprintf(out->port, sizeof(out->port), "%s", colon + 1);
	} else {
		return error_set(err, -EINVAL,
				 "--qmp: '%s' is not unix:PATH or tcp:[HOST]:PORT (see 'kestrel "
				 "run --help')",
				 spec);
	}
	bool server = true;
	for (char *opt; (opt = strtok_r(NULL, ",", &save));) {
		char *val = strchr(opt, '=');
		if (val)
			*val++ = '\0';
		int r = 0;
		if (!strcmp(opt, "server"))
			r = on_off(opt, val, &server, err);
		else if (!strcmp(opt, "wait"))
			r = on_off(opt, val, &out->wait, err);
		else if (!strcmp(opt, "nowait") && !val)
			out->wait = false;
		else
			r = error_set(err, -EINVAL,
				      "--qmp: unknown option '%s' (server=on, wait=on|off)", opt);
		if (r)
			return r;
	}
	if (!server)
		return error_set(err, -EINVAL,
				 "--qmp: server=off (connecting to a client) is not supported: the "
				 "monitor listens, server=on");
	return 0;
}

static int listen_unix(struct qmp_listener *l, const struct qmp_spec *sp, struct error *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sp->path);
	l->unix_path = strdup(sp->path);
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (!l->unix_path || l->fd < 0)
		return error_set(err, -errno, "--qmp: socket: %s", strerror(errno));
	unlink(l->unix_path);
	if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(l->fd, 8))
		return error_set(err, -errno, "--qmp: cannot listen on %s: %s", l->unix_path,
				 strerror(errno));
	return 0;
}

static int listen_tcp(struct qmp_listener *l, const struct qmp_spec *sp, struct error *err)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai = NULL;
	int r = getaddrinfo(sp->host, sp->port, &hints, &ai);
	if (r)
		return error_set(err, -EINVAL, "--qmp: %s:%s: %s", sp->host, sp->port,
				 gai_strerror(r));
	l->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	int ret = 0;
	if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l->fd, ai->ai_addr, ai->ai_addrlen) || listen(l->fd, 8))
		ret = error_set(err, -errno, "--qmp: cannot listen on %s:%s: %s", sp->host,
				sp->port, strerror(errno));
	freeaddrinfo(ai);
	return ret;
}

static void listener_close(struct qmp_server *s, struct qmp_listener *l, bool registered)
{
	if (registered)
		event_loop_del_fd(&s->vm->loop, l->fd);
	if (l->fd >= 0)
		close(l->fd);
	if (l->unix_path)
		unlink(l->unix_path);
	free(l->unix_path);
	l->unix_path = NULL;
	l->fd = -1;
}

int qmp_server_listen(struct qmp_server *s, const char *spec, struct error *err)
{
	struct qmp_spec sp;
	int ret = qmp_spec_parse(spec, &sp, err);
	if (ret)
		return ret;
	if (s->nr_listeners == QMP_MAX_LISTENERS)
		return error_set(err, -ENOSPC, "--qmp: at most %d monitors", QMP_MAX_LISTENERS);
	struct qmp_listener *l = &s->listeners[s->nr_listeners];
	*l = (struct qmp_listener){.srv = s, .fd = -1};
	ret = sp.tcp ? listen_tcp(l, &sp, err) : listen_unix(l, &sp, err);
	if (!ret) {
		ret = event_loop_add_fd(&s->vm->loop, l->fd, EPOLLIN, on_accept, l);
		if (ret)
			error_set(err, ret, "--qmp: cannot watch the socket");
	}
	if (ret) {
		listener_close(s, l, false);
		return ret;
	}
	s->nr_listeners++;
	if (sp.wait) {
		/* wait=on, as QEMU: nothing runs until the first client is there. */
		bool v6 = sp.tcp && strchr(sp.host, ':');
		if (sp.tcp)
			fprintf(stderr, "kestrel: waiting for a QMP client on tcp:%s%s%s:%s\n",
				v6 ? "[" : "", sp.host, v6 ? "]" : "", sp.port);
		else
			fprintf(stderr, "kestrel: waiting for a QMP client on unix:%s\n", sp.path);
		struct pollfd p = {.fd = l->fd, .events = POLLIN};
		while (poll(&p, 1, -1) < 0 && errno == EINTR)
			;
		on_accept(l, EPOLLIN);
	}
	return 0;
}

int qmp_server_create(struct qmp_server **out, struct vm *vm, const char *spec, struct error *err)
{
	struct qmp_server *s = calloc(1, sizeof(*s));
	if (!s)
		return error_set(err, -ENOMEM, "out of memory");
	s->vm = vm;
	monitor_init(&s->mon, vm);
	int ret = qmp_server_listen(s, spec, err);
	if (ret) {
		free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void qmp_server_destroy(struct qmp_server *s)
{
	if (!s)
		return;
	qmp_keys_cancel(s);
	/* The last replies and the SHUTDOWN event: give each client up to a second. */
	uint64_t until = clock_monotonic_ns() + NSEC_PER_SEC;
	for (unsigned i = 0; i < QMP_MAX_CLIENTS; i++) {
		struct qmp_client *cl = s->clients[i];
		while (cl && cl->out_len && !cl->dead && clock_monotonic_ns() < until) {
			struct pollfd p = {.fd = cl->fd, .events = POLLOUT};
			if (poll(&p, 1, 100) < 0)
				break;
			client_flush(cl);
		}
		if (cl)
			client_free(cl);
	}
	for (unsigned i = 0; i < s->nr_listeners; i++)
		listener_close(s, &s->listeners[i], true);
	free(s);
}

int qmp_add_info(struct qmp_server *s, const char *name, const char *help, monitor_info_fn fn,
		 void *opaque)
{
	return monitor_add_info(&s->mon, name, help, fn, opaque);
}

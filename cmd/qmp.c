/* kestrel qmp: a small QMP client (QEMU docs/interop/qmp-spec.rst).
 *
 *   kestrel qmp SOCKET COMMAND [JSON-ARGS]   one command; prints the reply, exit 0 / 1
 *   kestrel qmp SOCKET                       interactive shell (line editor with history,
 *                                            kept in ~/.kestrel_qmp_history)
 *   kestrel qmp --wait EVENT SOCKET [...]    also wait for an event (after the command)
 *
 * SOCKET is a path, unix:PATH or tcp:HOST:PORT. In the shell, a line is "COMMAND [JSON]",
 * or an HMP line ("info mtree", "hmp stop") sent as human-monitor-command; events are
 * printed as they arrive.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"

#define HISTORY_MAX  100
#define HISTORY_FILE ".kestrel_qmp_history" /* in $HOME */
#define LINE_MAX_LEN 4096
#define MESSAGE_MAX  (64 << 20)

struct qmp_conn {
	int fd;
	char *buf; /* received, not yet parsed */
	size_t len, cap;
	bool print_events;
	const char *wait_event; /* set: remember when it arrives */
	bool wait_seen;
};

static void qmp_usage(FILE *out)
{
	fprintf(out,
		"Usage: kestrel qmp [OPTIONS] SOCKET [COMMAND [JSON-ARGS]]\n"
		"\n"
		"Talk to a VM's QMP monitor (kestrel run --qmp unix:SOCKET).\n"
		"SOCKET is a path, unix:PATH, tcp:HOST:PORT or tcp:[IPV6]:PORT.\n"
		"\n"
		"  With COMMAND: run it, print the reply (the 'return' value, or the error\n"
		"  on stderr) and exit 0 on success, 1 on error. JSON-ARGS is an object,\n"
		"  e.g. kestrel qmp k.sock send-key "
		"'{\"keys\":[{\"type\":\"qcode\",\"data\":\"a\"}]}'\n"
		"  Without COMMAND: an interactive shell; lines are COMMAND [JSON-ARGS], or HMP\n"
		"  lines starting with 'info' or 'hmp' (sent as human-monitor-command); on a\n"
		"  terminal, history is kept in $HOME/.kestrel_qmp_history.\n"
		"\n"
		"  -e, --events       print events (one JSON object per line)\n"
		"  -w, --wait EVENT   after the command (if any), wait for EVENT and print it\n"
		"  -t, --timeout SEC  give up after SEC seconds (default 30; 0 = never)\n"
		"  -h, --help         this help\n");
}

static int connect_socket(const char *spec)
{
	if (!strncmp(spec, "tcp:", 4)) {
		/* tcp:HOST:PORT, tcp::PORT (loopback), tcp:[IPV6]:PORT; ",options" ignored */
		char buf[256];
		snprintf(buf, sizeof(buf), "%s", spec + 4);
		buf[strcspn(buf, ",")] = '\0';
		char *host = buf, *colon = strrchr(buf, ':');
		if (buf[0] == '[') {
			char *close = strchr(buf, ']');
			colon = close && close[1] == ':' ? close + 1 : NULL;
			if (close)
				*close = '\0';
			host = buf + 1;
		}
		if (!colon) {
			fprintf(stderr, "kestrel qmp: '%s' is not tcp:HOST:PORT\n", spec);
			return -1;
		}
		*colon = '\0';
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
		int r = getaddrinfo(host[0] ? host : "127.0.0.1", colon + 1, &hints, &ai);
		if (r) {
			fprintf(stderr, "kestrel qmp: %s: %s\n", spec, gai_strerror(r));
			return -1;
		}
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			fprintf(stderr, "kestrel qmp: cannot connect to %s: %s\n", spec,
				strerror(errno));
			if (fd >= 0)
				close(fd);
			fd = -1;
		}
		freeaddrinfo(ai);
		return fd;
	}
	const char *path = strncmp(spec, "unix:", 5) ? spec : spec + 5;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t plen = strcspn(path, ",");
	if (plen == 0 || plen >= sizeof(sa.sun_path)) {
		fprintf(stderr, "kestrel qmp: bad socket path '%s'\n", path);
		return -1;
	}
	memcpy(sa.sun_path, path, plen);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "kestrel qmp: cannot connect to %.*s: %s\n", (int)plen, path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The next message; NULL on EOF, error or when deadline (monotonic s, 0 = none) passes. */
static struct json_object *conn_read(struct qmp_conn *c, time_t deadline)
{
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl) {
			*nl = '\0';
			struct json_object *o = json_tokener_parse(c->buf);
			size_t used = (size_t)(nl - c->buf) + 1;
			memmove(c->buf, c->buf + used, c->len - used);
			c->len -= used;
			if (o)
				return o;
			continue;
		}
		if (c->len + 1 >= c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 65536;
			char *p = cap <= MESSAGE_MAX ? realloc(c->buf, cap) : NULL;
			if (!p) {
				fprintf(stderr, "kestrel qmp: message longer than %d bytes\n",
					MESSAGE_MAX);
				return NULL;
			}
			c->buf = p;
			c->cap = cap;
		}
		int timeout = -1;
		if (deadline) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			if (ts.tv_sec >= deadline)
				return NULL;
			timeout = (int)(deadline - ts.tv_sec) * 1000;
		}
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int r = poll(&p, 1, timeout);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return NULL;
		ssize_t n = read(c->fd, c->buf + c->len, c->cap - c->len - 1);
		if (n <= 0)
			return NULL;
		c->len += (size_t)n;
	}
}

static void print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
}

/* An event arrived: print it if asked, note the one we wait for. */
static void handle_event(struct qmp_conn *c, struct json_object *o)
{
	struct json_object *name;
	bool is_wait = c->wait_event && json_object_object_get_ex(o, "event", &name) &&
		       !strcmp(json_object_get_string(name), c->wait_event);
	if (c->print_events || is_wait)
		print_json(o);
	if (is_wait)
		c->wait_seen = true;
}

/* Send one request and return its reply (events on the way are handled). */
static struct json_object *conn_execute(struct qmp_conn *c, const char *cmd,
					struct json_object *args, time_t deadline)
{
	struct json_object *req = json_object_new_object();
	json_object_object_add(req, "execute", json_object_new_string(cmd));
	if (args)
		json_object_object_add(req, "arguments", json_object_get(args));
	const char *s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(s);
	bool ok = true;
	for (size_t off = 0; off < len && ok;) {
		ssize_t n = send(c->fd, s + off, len - off, MSG_NOSIGNAL);
		ok = n > 0;
		off += n > 0 ? (size_t)n : 0;
	}
	ok = ok && send(c->fd, "\n", 1, MSG_NOSIGNAL) == 1;
	json_object_put(req);
	if (!ok)
		return NULL;
	for (;;) {
		struct json_object *o = conn_read(c, deadline);
		if (!o || !json_object_object_get_ex(o, "event", NULL))
			return o;
		handle_event(c, o);
		json_object_put(o);
	}
}

/* Print a reply: the return value (a string as raw text), or the error; 0 or 1. */
static int print_reply(struct json_object *r)
{
	struct json_object *v, *cls, *desc;
	if (json_object_object_get_ex(r, "return", &v)) {
		if (json_object_is_type(v, json_type_string))
			fputs(json_object_get_string(v), stdout);
		else
			print_json(v);
		fflush(stdout);
		return 0;
	}
	if (json_object_object_get_ex(r, "error", &v)) {
		json_object_object_get_ex(v, "class", &cls);
		json_object_object_get_ex(v, "desc", &desc);
		fprintf(stderr, "error: %s: %s\n", cls ? json_object_get_string(cls) : "?",
			desc ? json_object_get_string(desc) : "?");
		return 1;
	}
	print_json(r);
	return 1;
}

static time_t deadline_after(long secs)
{
	if (secs <= 0)
		return 0;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + secs;
}

/* Split "COMMAND [JSON]" or an HMP line; runs it; returns 0/1, or -1 when the connection
 * is gone. */
static int run_line(struct qmp_conn *c, const char *line, long timeout)
{
	while (*line == ' ' || *line == '\t')
		line++;
	if (!*line)
		return 0;
	struct json_object *args = NULL;
	char cmd[128];
	const char *rest = line + strcspn(line, " \t");
	size_t clen = (size_t)(rest - line);
	if (clen >= sizeof(cmd)) {
		fprintf(stderr, "error: command name too long\n");
		return 1;
	}
	memcpy(cmd, line, clen);
	cmd[clen] = '\0';
	while (*rest == ' ' || *rest == '\t')
		rest++;
	if (!strcmp(cmd, "info") || !strcmp(cmd, "hmp")) {
		args = json_object_new_object();
		json_object_object_add(args, "command-line",
				       json_object_new_string(!strcmp(cmd, "info") ? line : rest));
		snprintf(cmd, sizeof(cmd), "human-monitor-command");
	} else if (*rest) {
		enum json_tokener_error jerr;
		args = json_tokener_parse_verbose(rest, &jerr);
		if (!args || !json_object_is_type(args, json_type_object)) {
			fprintf(stderr, "error: arguments must be a JSON object (%s)\n",
				args ? "not an object" : json_tokener_error_desc(jerr));
			json_object_put(args);
			return 1;
		}
	}
	struct json_object *r = conn_execute(c, cmd, args, deadline_after(timeout));
	json_object_put(args);
	if (!r) {
		fprintf(stderr, "kestrel qmp: no reply (connection closed or timed out)\n");
		return -1;
	}
	int ret = print_reply(r);
	json_object_put(r);
	return ret;
}

/* --- interactive shell ------------------------------------------------------------------- */

struct editor {
	char line[LINE_MAX_LEN];
	size_t len, pos;
	char *history[HISTORY_MAX];
	int nr_hist, hist_pos;
	bool tty;
	struct termios saved;
};

static const char prompt[] = "(kestrel) ";

static void ed_redraw(struct editor *e)
{
	printf("\r\033[K%s%.*s", prompt, (int)e->len, e->line);
	if (e->len > e->pos)
		printf("\033[%zuD", e->len - e->pos);
	fflush(stdout);
}

static void ed_set(struct editor *e, const char *s)
{
	snprintf(e->line, sizeof(e->line), "%s", s);
	e->len = e->pos = strlen(e->line);
}

static void ed_add_history(struct editor *e, const char *s)
{
	if (!*s || (e->nr_hist && !strcmp(e->history[e->nr_hist - 1], s)))
		return;
	if (e->nr_hist == HISTORY_MAX) {
		free(e->history[0]);
		memmove(e->history, e->history + 1, sizeof(e->history[0]) * (HISTORY_MAX - 1));
		e->nr_hist--;
	}
	e->history[e->nr_hist++] = strdup(s);
}

/* $HOME/.kestrel_qmp_history (malloc'd), or NULL without a HOME. */
static char *history_path(void)
{
	const char *home = getenv("HOME");
	char *path = NULL;
	if (!home || !*home || asprintf(&path, "%s/%s", home, HISTORY_FILE) < 0)
		return NULL;
	return path;
}

/* The saved history, oldest first; a missing or unreadable file is no history. */
static void history_load(struct editor *e, const char *path)
{
	FILE *f = path ? fopen(path, "r") : NULL;
	char line[LINE_MAX_LEN];
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		ed_add_history(e, line);
	}
	if (f)
		fclose(f);
	e->hist_pos = e->nr_hist;
}

/* Written to a temporary file renamed over the old one; failure (no HOME, read-only home)
 * only loses the history. */
static void history_save(const struct editor *e, const char *path)
{
	char *tmp = NULL;
	if (!path || asprintf(&tmp, "%s.%d", path, (int)getpid()) < 0)
		return;
	FILE *f = fopen(tmp, "w");
	bool ok = f != NULL;
	for (int i = 0; ok && i < e->nr_hist; i++)
		ok = fprintf(f, "%s\n", e->history[i]) >= 0;
	if (f && fclose(f))
		ok = false;
	if (!ok || rename(tmp, path))
		unlink(tmp);
	free(tmp);
}

/* One key; returns 1 when a line is complete, -1 on end of input, 0 otherwise. */
static int ed_key(struct editor *e, int fd)
{
	unsigned char ch;
	if (read(fd, &ch, 1) != 1)
		return -1;
	switch (ch) {
	case '\r':
	case '\n':
		e->line[e->len] = '\0';
		printf("\r\n");
		return 1;
	case 4: /* Ctrl-D */
		if (e->len == 0)
			return -1;
		if (e->pos < e->len) {
			memmove(e->line + e->pos, e->line + e->pos + 1, e->len - e->pos - 1);
			e->len--;
		}
		break;
	case 3: /* Ctrl-C: drop the line */
		e->len = e->pos = 0;
		printf("^C\r\n");
		break;
	case 1: /* Ctrl-A */
		e->pos = 0;
		break;
	case 5: /* Ctrl-E */
		e->pos = e->len;
		break;
	case 21: /* Ctrl-U */
		memmove(e->line, e->line + e->pos, e->len - e->pos);
		e->len -= e->pos;
		e->pos = 0;
		break;
	case 127:
	case 8:
		if (e->pos > 0) {
			memmove(e->line + e->pos - 1, e->line + e->pos, e->len - e->pos);
			e->pos--;
			e->len--;
		}
		break;
	case 27: { /* ESC [ A/B/C/D */
		unsigned char seq[2];
		if (read(fd, seq, 1) != 1 || seq[0] != '[' || read(fd, seq + 1, 1) != 1)
			break;
		if (seq[1] == 'A' && e->hist_pos > 0)
			ed_set(e, e->history[--e->hist_pos]);
		else if (seq[1] == 'B' && e->hist_pos < e->nr_hist) {
			e->hist_pos++;
			ed_set(e, e->hist_pos < e->nr_hist ? e->history[e->hist_pos] : "");
		} else if (seq[1] == 'C' && e->pos < e->len)
			e->pos++;
		else if (seq[1] == 'D' && e->pos > 0)
			e->pos--;
		break;
	}
	default:
		if (ch >= 32 && e->len + 1 < sizeof(e->line)) {
			memmove(e->line + e->pos + 1, e->line + e->pos, e->len - e->pos);
			e->line[e->pos++] = (char)ch;
			e->len++;
		}
	}
	ed_redraw(e);
	return 0;
}

static int shell(struct qmp_conn *c, long timeout)
{
	struct editor e = {0};
	e.tty = isatty(STDIN_FILENO);
	c->print_events = true;
	/* History only for a person at a terminal: piped scripts leave none. */
	char *hist_path = e.tty ? history_path() : NULL;
	history_load(&e, hist_path);
	if (e.tty) {
		struct termios raw;
		tcgetattr(STDIN_FILENO, &e.saved);
		raw = e.saved;
		raw.c_lflag &= ~(ICANON | ECHO | ISIG);
		raw.c_iflag &= ~(ICRNL | IXON);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
		printf("Connected. Commands: query-commands, info mtree, stop, cont, ... "
		       "Ctrl-D quits.\r\n");
		ed_redraw(&e);
	}
	FILE *in = e.tty ? NULL : stdin;
	int status = 0;
	for (;;) {
		struct pollfd p[2] = {{.fd = STDIN_FILENO, .events = POLLIN},
				      {.fd = c->fd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents) {
			struct json_object *o = conn_read(c, deadline_after(1));
			if (!o) {
				printf("%sconnection closed\n", e.tty ? "\r\033[K" : "");
				break;
			}
			if (e.tty)
				printf("\r\033[K");
			handle_event(c, o);
			json_object_put(o);
			if (e.tty)
				ed_redraw(&e);
		}
		if (!p[0].revents)
			continue;
		char buf[LINE_MAX_LEN];
		const char *line;
		if (e.tty) {
			int r = ed_key(&e, STDIN_FILENO);
			if (r < 0)
				break;
			if (r == 0)
				continue;
			ed_add_history(&e, e.line);
			e.hist_pos = e.nr_hist;
			/* Cooked output while the command runs. */
			tcsetattr(STDIN_FILENO, TCSANOW, &e.saved);
			snprintf(buf, sizeof(buf), "%s", e.line);
			line = buf;
		} else {
			if (!fgets(buf, sizeof(buf), in))
				break;
			buf[strcspn(buf, "\r\n")] = '\0';
			line = buf;
		}
		if (!strcmp(line, "quit-shell") || !strcmp(line, "exit"))
			break;
		int r = run_line(c, line, timeout);
		if (r)
			status = 1;
		if (r < 0)
			break;
		if (e.tty) {
			struct termios raw = e.saved;
			raw.c_lflag &= ~(ICANON | ECHO | ISIG);
			raw.c_iflag &= ~(ICRNL | IXON);
			tcsetattr(STDIN_FILENO, TCSANOW, &raw);
			e.len = e.pos = 0;
			ed_redraw(&e);
		}
	}
	if (e.tty) {
		tcsetattr(STDIN_FILENO, TCSANOW, &e.saved);
		printf("\n");
	}
	if (hist_path)
		history_save(&e, hist_path);
	free(hist_path);
	for (int i = 0; i < e.nr_hist; i++)
		free(e.history[i]);
	return status;
}

int cmd_qmp(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"events", no_argument, NULL, 'e'},
	    {"wait", required_argument, NULL, 'w'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct qmp_conn c = {.fd = -1};
	long timeout = 30;
	int opt;
	opterr = 0;
	optind = 1;
	/* '+': stop at the first operand, so JSON arguments are never taken for options. */
	while ((opt = getopt_long(argc, argv, "+ew:t:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			c.print_events = true;
			break;
		case 'w':
			c.wait_event = optarg;
			break;
		case 't': {
			char *end;
			timeout = strtol(optarg, &end, 10);
			if (*end || timeout < 0) {
				fprintf(stderr, "kestrel qmp: --timeout: '%s' is not seconds\n",
					optarg);
				return 1;
			}
			break;
		}
		case 'h':
			qmp_usage(stdout);
			return 0;
		default:
			fprintf(stderr,
				"kestrel qmp: unknown option '%s' (see 'kestrel qmp --help')\n",
				argv[optind - 1]);
			return 1;
		}
	}
	if (optind >= argc) {
		qmp_usage(stderr);
		return 1;
	}
	if (argc - optind > 3) {
		fprintf(stderr, "kestrel qmp: too many arguments (quote the JSON arguments)\n");
		return 1;
	}
	c.fd = connect_socket(argv[optind]);
	if (c.fd < 0)
		return 1;
	int ret = 1;
	time_t deadline = deadline_after(timeout);
	struct json_object *g = conn_read(&c, deadline);
	if (!g || !json_object_object_get_ex(g, "QMP", NULL)) {
		fprintf(stderr, "kestrel qmp: no QMP greeting from %s\n", argv[optind]);
		goto out;
	}
	json_object_put(g);
	struct json_object *r = conn_execute(&c, "qmp_capabilities", NULL, deadline);
	if (!r || !json_object_object_get_ex(r, "return", NULL)) {
		fprintf(stderr, "kestrel qmp: capabilities negotiation failed\n");
		json_object_put(r);
		goto out;
	}
	json_object_put(r);

	if (optind + 1 < argc) {
		char line[LINE_MAX_LEN];
		snprintf(line, sizeof(line), "%s %s", argv[optind + 1],
			 optind + 2 < argc ? argv[optind + 2] : "");
		ret = run_line(&c, line, timeout) ? 1 : 0;
	} else if (!c.wait_event && !c.print_events) {
		ret = shell(&c, timeout);
		goto out;
	} else {
		ret = 0;
	}
	if (ret == 0 && (c.wait_event || (c.print_events && optind + 1 >= argc))) {
		/* Events until the one we wait for, or until the VM closes the connection. */
		deadline = deadline_after(timeout);
		while (!c.wait_seen) {
			struct json_object *o = conn_read(&c, deadline);
			if (!o)
				break;
			if (json_object_object_get_ex(o, "event", NULL))
				handle_event(&c, o);
			json_object_put(o);
		}
		if (c.wait_event && !c.wait_seen) {
			fprintf(stderr,
				"kestrel qmp: no %s event (connection closed or timed out)\n",
				c.wait_event);
			ret = 1;
		}
	}
out:
	close(c.fd);
	free(c.buf);
	return ret;
}

/* QMP server internals shared by vmm/qmp.c (transport) and vmm/qmp_cmds.c (commands). */
#ifndef KESTREL_VMM_QMP_INT_H
#define KESTREL_VMM_QMP_INT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/monitor.h"
#include "vmm/qmp.h"

#define QMP_MAX_KEYS	   16	/* keys in one send-key, as virsh send-key allows */
#define QMP_JSON_MAX_DEPTH 1024 /* arrays and objects in one another, as QEMU allows */

/* One client's input being framed into JSON values (vmm/qmp_json.c). */
struct qmp_json {
	char *buf; /* the bytes of the value so far (whitespace folded to one space) */
	size_t len, cap;
	unsigned depth; /* open arrays and objects */
	char quote;	/* inside a string: its quote character */
	bool escape;	/* inside a string, after a backslash */
	bool scalar;	/* a top-level number or keyword: it ends at a delimiter */
	bool skip_line; /* after an error: input is dropped up to the next newline */
};

enum qmp_json_status {
	QMP_JSON_MORE,	  /* all input taken, no value complete yet */
	QMP_JSON_VALUE,	  /* a value (*out; NULL is JSON null) */
	QMP_JSON_ERROR,	  /* not JSON: err is the error's desc, in QEMU's words */
	QMP_JSON_TOO_BIG, /* one value longer than QMP_MAX_REQUEST (or out of memory) */
};

/* Take input up to the end of one value or error; *used is how much of it was taken. */
enum qmp_json_status qmp_json_feed(struct qmp_json *j, const char *in, size_t len, size_t *used,
				   struct json_object **out, char *err, size_t errlen);
void qmp_json_reset(struct qmp_json *j);
void qmp_json_free(struct qmp_json *j);
/* Parse exactly one value filling s[0..n). Returns 0 (*out, NULL for null) or -EINVAL. */
int qmp_json_parse(const char *s, size_t n, struct json_object **out, char *err, size_t errlen);
/* One well-formed UTF-8 sequence at s (no overlong form, surrogate or value past U+10FFFF):
 * its length, with the code point in *cp; 0 if there is none. */
size_t qmp_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
bool qmp_utf8_valid(const char *s, size_t n);

struct qmp_client {
	struct qmp_server *srv;
	int fd;
	bool negotiated;
	bool dead;     /* failed or asked to close: freed by reap() */
	bool want_out; /* EPOLLOUT registered */
	struct qmp_json in;
	char *out; /* queued output */
	size_t out_len, out_cap;
};

/* Keys a send-key pressed, released when the timerfd fires (hold-time). */
struct qmp_key_release {
	struct qmp_server *srv;
	int timer_fd;
	int nr;
	int keys[QMP_MAX_KEYS];
	struct qmp_key_release *next;
};

/* One --qmp socket; all of a server's listeners share its clients and events. */
struct qmp_listener {
	struct qmp_server *srv;
	int fd;
	char *unix_path; /* unlinked on destroy */
};

struct qmp_server {
	struct vm *vm;
	struct qmp_listener listeners[QMP_MAX_LISTENERS];
	unsigned nr_listeners;
	struct qmp_client *clients[QMP_MAX_CLIENTS];
	struct monitor mon;
	bool in_handler; /* inside a client's handler: reap afterwards */
	struct qmp_key_release *releases;
};

/* One command's execution: the handler reports an error with qmp_error(). */
struct qmp_ctx {
	struct qmp_server *srv;
	struct qmp_client *client;
	struct vm *vm;
	const char *err_class; /* NULL: success */
	char err_desc[256];
};

enum qmp_arg_type { QMP_ARG_STR, QMP_ARG_INT, QMP_ARG_BOOL, QMP_ARG_ARRAY, QMP_ARG_OBJECT };
/* "integer" for an error message; "int" (schema) for query-qmp-schema. */
const char *qmp_arg_type_name(enum qmp_arg_type t, bool schema);

struct qmp_arg {
	const char *name;
	enum qmp_arg_type type;
	bool optional;
};

struct qmp_command {
	const char *name;
	/* Returns the "return" value (NULL: {}), or sets an error through qmp_error(). */
	struct json_object *(*fn)(struct qmp_ctx *c, struct json_object *args);
	const struct qmp_arg *args; /* NULL-name terminated; NULL: no arguments */
	const char *ret_type;	    /* query-qmp-schema's name of the return type */
};

/* The events the server sends (query-events, query-qmp-schema), NULL-name terminated. */
struct qmp_event_info {
	const char *name;
	const char *arg_type; /* query-qmp-schema's name of its "data" type */
};
extern const struct qmp_event_info qmp_events[];

const struct qmp_command *qmp_find_command(const char *name);
/* NULL-terminated list of every command, for query-commands. */
extern const struct qmp_command qmp_commands[];

__attribute__((format(printf, 3, 4))) void qmp_error(struct qmp_ctx *c, const char *cls,
						     const char *fmt, ...);
/* Drop pending key releases (server teardown). */
void qmp_keys_cancel(struct qmp_server *s);

#endif

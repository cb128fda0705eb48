/* QMP server internals shared by vmm/qmp.c (transport) and vmm/qmp_cmds.c (commands). */
#ifndef KESTREL_VMM_QMP_INT_H
#define KESTREL_VMM_QMP_INT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "vmm/monitor.h"
#include "vmm/qmp.h"

#define QMP_MAX_KEYS 16 /* keys in one send-key, as virsh send-key allows */

struct qmp_client {
	struct qmp_server *srv;
	int fd;
	bool negotiated;
	bool dead;     /* failed or asked to close: freed by reap() */
	bool want_out; /* EPOLLOUT registered */
	struct json_tokener *tok;
	size_t req_bytes; /* bytes of the request being parsed so far */
	char *out;	  /* queued output */
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

struct qmp_server {
	struct vm *vm;
	int listen_fd;
	char *unix_path; /* unlinked on destroy */
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
};

const struct qmp_command *qmp_find_command(const char *name);
/* NULL-terminated list of every command, for query-commands. */
extern const struct qmp_command qmp_commands[];

__attribute__((format(printf, 3, 4))) void qmp_error(struct qmp_ctx *c, const char *cls,
						     const char *fmt, ...);
/* Drop pending key releases (server teardown). */
void qmp_keys_cancel(struct qmp_server *s);

#endif

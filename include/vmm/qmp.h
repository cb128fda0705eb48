/* The QMP monitor: QEMU's machine protocol (JSON over a stream socket) for a running VM.
 *
 * Protocol as QEMU documents it (docs/interop/qmp-spec.rst): the server greets with
 * {"QMP": {"version": ..., "capabilities": []}}, the client negotiates with qmp_capabilities,
 * then sends {"execute": NAME, "arguments": {...}, "id": ANY} and gets {"return": ...} or
 * {"error": {"class": ..., "desc": ...}} with the same id; events are
 * {"event": NAME, "data": {...}, "timestamp": {"seconds": S, "microseconds": US}}.
 *
 * Everything runs on the main thread (the VM's event loop): the listener, the clients, the
 * commands and the events. Several clients may be connected at once; each gets every event.
 */
#ifndef KESTREL_VMM_QMP_H
#define KESTREL_VMM_QMP_H

#include <stdbool.h>
#include <stdio.h>

#include "util/error.h"
#include "vmm/monitor.h"

struct vm;
struct qmp_server;
struct json_object;

/* Largest request a client may send; a longer one gets an error and the connection closes. */
#define QMP_MAX_REQUEST (1u << 20)
/* Clients connected at once on one server; the next is refused. */
#define QMP_MAX_CLIENTS 8

/* --qmp sockets (monitors) on one server: their clients share the limit and get every event. */
#define QMP_MAX_LISTENERS 4

/* A parsed --qmp: "unix:PATH" or "tcp:HOST:PORT" / "tcp::PORT" (127.0.0.1) /
 * "tcp:[IPV6]:PORT", then options: server=on (the only mode; "server" alone too), wait=on|off
 * (default off; on: block until the first client connects, as QEMU), "nowait". */
struct qmp_spec {
	bool tcp;
	char path[108];
	char host[256], port[16];
	bool wait;
};

/* Returns 0, or -EINVAL with a one-line message (unknown option, server=off, ...). */
int qmp_spec_parse(const char *spec, struct qmp_spec *out, struct error *err)
    __attribute__((warn_unused_result));
/* A server listening on spec (see qmp_spec_parse); registers on vm->loop. With wait=on it
 * returns once the first client is connected (greeted). Returns 0 or -errno with err set. */
int qmp_server_create(struct qmp_server **out, struct vm *vm, const char *spec, struct error *err)
    __attribute__((warn_unused_result));
/* One more socket (another --qmp) for the same server. */
int qmp_server_listen(struct qmp_server *s, const char *spec, struct error *err)
    __attribute__((warn_unused_result));
/* Send what is still queued (bounded wait), close the clients and the listener. */
void qmp_server_destroy(struct qmp_server *s);

/* Emit an event to every negotiated client; takes ownership of data (may be NULL). No-op
 * when s is NULL. */
void qmp_emit_event(struct qmp_server *s, const char *name, struct json_object *data);
/* SHUTDOWN and RESET carry {"guest": bool, "reason": ShutdownCause}. */
void qmp_emit_shutdown(struct qmp_server *s, const char *name, bool guest, const char *reason);

/* An "info NAME" provider for human-monitor-command (info pci once PCI lands). A provider
 * registered under an existing name replaces it. Returns 0 or -ENOSPC. */
int qmp_add_info(struct qmp_server *s, const char *name, const char *help, monitor_info_fn fn,
		 void *opaque);

#endif

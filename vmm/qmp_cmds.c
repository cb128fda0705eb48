/* QMP commands: negotiation, queries, run control, send-key and human-monitor-command.
 * Names, arguments and return shapes follow QEMU's QAPI schema (QEMU qapi/ control.json,
 * run-state, machine, misc, ui for send-key/KeyValue, block, machine for query-cpus-fast).
 */
#define LOG_SUBSYS "qmp"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "block/block.h"
#include "hw/keymap.h"
#include "qmp_int.h"
#include "util/log.h"
#include "vmm/vm.h"

#define SEND_KEY_DEFAULT_HOLD_MS 100

static struct json_object *cmd_qmp_capabilities(struct qmp_ctx *c, struct json_object *args)
{
	struct json_object *enable;
	if (json_object_object_get_ex(args, "enable", &enable) &&
	    json_object_array_length(enable) > 0) {
		/* json-c gives NULL for a JSON null element: no %s of NULL. */
		const char *cap = json_object_get_string(json_object_array_get_idx(enable, 0));
		qmp_error(c, "GenericError", "Capability '%s' not available", cap ? cap : "null");
		return NULL;
	}
	c->client->negotiated = true;
	return NULL;
}

static struct json_object *cmd_query_version(struct qmp_ctx *c, struct json_object *args)
{
	unsigned major = 0, minor = 0, micro = 0;
	sscanf(KESTREL_VERSION, "%u.%u.%u", &major, &minor, &micro);
	struct json_object *v = json_object_new_object();
	json_object_object_add(v, "major", json_object_new_int((int)major));
	json_object_object_add(v, "minor", json_object_new_int((int)minor));
	json_object_object_add(v, "micro", json_object_new_int((int)micro));
	struct json_object *r = json_object_new_object();
	json_object_object_add(r, "qemu", v);
	json_object_object_add(r, "package", json_object_new_string("kestrel-" KESTREL_VERSION));
	return r;
}

/* [{"name": NAME}, ...] (CommandInfo, EventInfo) */
static void add_name(struct json_object *list, const char *name)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_array_add(list, o);
}

static struct json_object *cmd_query_commands(struct qmp_ctx *c, struct json_object *args)
{
	struct json_object *r = json_object_new_array();
	for (const struct qmp_command *cmd = qmp_commands; cmd->name; cmd++)
		add_name(r, cmd->name);
	return r;
}

static struct json_object *cmd_query_status(struct qmp_ctx *c, struct json_object *args)
{
	struct json_object *r = json_object_new_object();
	json_object_object_add(r, "running",
			       json_object_new_boolean(c->vm->state == VM_STATE_RUNNING));
	json_object_object_add(r, "singlestep", json_object_new_boolean(false));
	json_object_object_add(r, "status", json_object_new_string(monitor_run_state_name(c->vm)));
	return r;
}

static struct json_object *cmd_query_name(struct qmp_ctx *c, struct json_object *args)
{
	struct json_object *r = json_object_new_object();
	if (c->vm->cfg.name)
		json_object_object_add(r, "name", json_object_new_string(c->vm->cfg.name));
	return r;
}

static struct json_object *cmd_query_uuid(struct qmp_ctx *c, struct json_object *args)
{
	/* Without --uuid, the nil UUID, as QEMU reports without -uuid. */
	const char *u = c->vm->cfg.uuid ? c->vm->cfg.uuid : "00000000-0000-0000-0000-000000000000";
	struct json_object *r = json_object_new_object();
	json_object_object_add(r, "UUID", json_object_new_string(u));
	return r;
}

static struct json_object *cmd_stop(struct qmp_ctx *c, struct json_object *args)
{
	monitor_vm_stop(c->vm);
	return NULL;
}

static struct json_object *cmd_cont(struct qmp_ctx *c, struct json_object *args)
{
	if (c->vm->state == VM_STATE_SHUTDOWN) { /* --no-shutdown: system_reset first */
		qmp_error(c, "GenericError", "Resetting the Virtual Machine is required");
		return NULL;
	}
	monitor_vm_cont(c->vm);
	return NULL;
}

static struct json_object *cmd_system_reset(struct qmp_ctx *c, struct json_object *args)
{
	vm_request_host(c->vm, VM_REQ_RESET, 0, "host-qmp-system-reset");
	vm_handle_request(c->vm); /* the RESET event before the return, as QEMU */
	return NULL;
}

static struct json_object *cmd_system_powerdown(struct qmp_ctx *c, struct json_object *args)
{
	acpi_pm_power_button(&c->vm->pm);
	qmp_emit_event(c->srv, "POWERDOWN", NULL);
	return NULL;
}

static struct json_object *cmd_quit(struct qmp_ctx *c, struct json_object *args)
{
	vm_request_host(c->vm, VM_REQ_EXIT, 0, "host-qmp-quit");
	return NULL;
}

/* --- send-key ---------------------------------------------------------------------------- */

/* A "number" key is QEMU's QKeyCode number space for send-key: the XT (set 1) scancode,
 * with 0x80 added for E0-prefixed keys; map it back to a keycode through the set 2 table. */
static int keycode_from_number(int64_t qnum)
{
	for (int k = 1; k < keymap_count(); k++) {
		uint8_t seq[KEYMAP_MAX_SEQ];
		int n = keymap_set2_sequence(k, true, seq);
		int num = -1;
		if (n == 1)
			num = keymap_set2_to_set1(seq[0]);
		else if (n == 2 && seq[0] == 0xe0)
			num = 0x80 | keymap_set2_to_set1(seq[1]);
		if (num == qnum)
			return k;
	}
	return -ENOENT;
}

static void release_keys(struct qmp_server *s, struct qmp_key_release *r, bool send)
{
	for (int i = r->nr - 1; send && i >= 0; i--)
		i8042_key_event(&s->vm->kbd, r->keys[i], false);
	event_loop_del_fd(&s->vm->loop, r->timer_fd);
	close(r->timer_fd);
	for (struct qmp_key_release **p = &s->releases; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			break;
		}
	free(r);
}

static void on_key_release(void *opaque, uint32_t events)
{
	struct qmp_key_release *r = opaque;
	release_keys(r->srv, r, true);
}

void qmp_keys_cancel(struct qmp_server *s)
{
	while (s->releases)
		release_keys(s, s->releases, true);
}

static int parse_key(struct qmp_ctx *c, struct json_object *key, unsigned idx)
{
	struct json_object *type, *data;
	if (!json_object_is_type(key, json_type_object) ||
	    !json_object_object_get_ex(key, "type", &type) ||
	    !json_object_object_get_ex(key, "data", &data) ||
	    !json_object_is_type(type, json_type_string)) {
		qmp_error(c, "GenericError",
			  "keys[%u]: expected {\"type\": \"qcode\"|\"number\", \"data\": ...}",
			  idx);
		return -EINVAL;
	}
	const char *t = json_object_get_string(type);
	int k = -ENOENT;
	if (!strcmp(t, "qcode") && json_object_is_type(data, json_type_string)) {
		k = keymap_lookup_qcode(json_object_get_string(data));
		if (k <= 0) {
			qmp_error(c, "GenericError",
				  "Parameter 'keys[%u].data' does not accept value '%s'", idx,
				  json_object_get_string(data));
			return -EINVAL;
		}
	} else if (!strcmp(t, "number") && json_object_is_type(data, json_type_int)) {
		k = keycode_from_number(json_object_get_int64(data));
		if (k <= 0) {
			qmp_error(c, "GenericError", "keys[%u]: no key has number %lld", idx,
				  (long long)json_object_get_int64(data));
			return -EINVAL;
		}
	} else {
		qmp_error(c, "GenericError",
			  "keys[%u]: 'type' must be qcode (string data) or "
			  "number (integer data)",
			  idx);
		return -EINVAL;
	}
	return k;
}

static struct json_object *cmd_send_key(struct qmp_ctx *c, struct json_object *args)
{
	struct json_object *keys, *hold;
	json_object_object_get_ex(args, "keys", &keys);
	size_t n = json_object_array_length(keys);
	int64_t hold_ms = SEND_KEY_DEFAULT_HOLD_MS;
	if (json_object_object_get_ex(args, "hold-time", &hold))
		hold_ms = json_object_get_int64(hold);
	if (n == 0 || n > QMP_MAX_KEYS) {
		qmp_error(c, "GenericError", "send-key takes 1 to %d keys", QMP_MAX_KEYS);
		return NULL;
	}
	if (hold_ms < 0 || hold_ms > 60000) {
		qmp_error(c, "GenericError", "hold-time must be 0..60000 ms");
		return NULL;
	}
	struct qmp_key_release *r = calloc(1, sizeof(*r));
	if (!r) {
		qmp_error(c, "GenericError", "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		int k = parse_key(c, json_object_array_get_idx(keys, i), (unsigned)i);
		if (k < 0) {
			free(r);
			return NULL;
		}
		r->keys[r->nr++] = k;
	}
	r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = {
	    .it_value = {.tv_sec = hold_ms / 1000, .tv_nsec = (hold_ms % 1000) * 1000000 + 1}};
	if (r->timer_fd < 0 || timerfd_settime(r->timer_fd, 0, &its, NULL) ||
	    event_loop_add_fd(&c->vm->loop, r->timer_fd, EPOLLIN, on_key_release, r)) {
		if (r->timer_fd >= 0)
			close(r->timer_fd);
		free(r);
		qmp_error(c, "GenericError", "cannot arm the key release timer");
		return NULL;
	}
	/* Pressed in order now, released in reverse order after hold-time (like QEMU). A guest
	 * that has not enabled its keyboard yet simply misses them, as on real hardware. */
	for (int i = 0; i < r->nr; i++) {
		int ret = i8042_key_event(&c->vm->kbd, r->keys[i], true);
		if (ret)
			log_debug("send-key: key %d not queued: %s", r->keys[i], strerror(-ret));
	}
	r->srv = c->srv;
	r->next = c->srv->releases;
	c->srv->releases = r;
	return NULL;
}

/* --- queries about the machine ----------------------------------------------------------- */

static struct json_object *cmd_query_cpus_fast(struct qmp_ctx *c, struct json_object *args)
{
	struct json_object *r = json_object_new_array();
	for (unsigned i = 0; i < c->vm->nr_vcpus; i++) {
		int tid = atomic_load(&c->vm->vcpus[i].tid);
		struct json_object *o = json_object_new_object();
		char path[64];
		snprintf(path, sizeof(path), "/machine/unattached/device[%u]", i);
		struct json_object *props = json_object_new_object();
		json_object_object_add(props, "core-id", json_object_new_int((int)i));
		json_object_object_add(props, "thread-id", json_object_new_int(0));
		json_object_object_add(props, "socket-id", json_object_new_int(0));
		json_object_object_add(o, "cpu-index", json_object_new_int((int)i));
		json_object_object_add(o, "qom-path", json_object_new_string(path));
		json_object_object_add(o, "thread-id", json_object_new_int(tid ? tid : getpid()));
		json_object_object_add(o, "props", props);
		json_object_object_add(o, "target", json_object_new_string("x86_64"));
		json_object_array_add(r, o);
	}
	return r;
}

static struct json_object *cmd_query_kvm(struct qmp_ctx *c, struct json_object *args)
{
	char why[256];
	struct json_object *r = json_object_new_object();
	bool on = c->vm->accel.ops && !strcmp(c->vm->accel.ops->name, "kvm");
	json_object_object_add(r, "enabled", json_object_new_boolean(on));
	json_object_object_add(r, "present",
			       json_object_new_boolean(on || kvm_available(why, sizeof(why)) == 0));
	return r;
}

/* One BlockInfo per --disk (QEMU qapi/block-core.json BlockInfo, BlockDeviceInfo). */
static struct json_object *cmd_query_block(struct qmp_ctx *c, struct json_object *args)
{
	struct json_object *r = json_object_new_array();
	for (unsigned i = 0; i < c->vm->cfg.nr_disks && i < VM_MAX_DISKS; i++) {
		struct virtio_blk *vb = c->vm->blk[i];
		if (!vb || !vb->blk)
			continue;
		const char *path = blk_path(vb->blk), *fmt = blk_format_name(vb->blk);
		unsigned depth = 0;
		for (struct blk *b = blk_backing(vb->blk); b && depth < 64; b = blk_backing(b))
			depth++;
		struct json_object *image = json_object_new_object();
		json_object_object_add(image, "filename", json_object_new_string(path ? path : ""));
		json_object_object_add(image, "format", json_object_new_string(fmt ? fmt : ""));
		json_object_object_add(image, "virtual-size",
				       json_object_new_uint64(blk_size(vb->blk)));
		struct json_object *ins = json_object_new_object();
		json_object_object_add(ins, "file", json_object_new_string(path ? path : ""));
		json_object_object_add(ins, "ro", json_object_new_boolean(vb->readonly));
		json_object_object_add(ins, "drv", json_object_new_string(fmt ? fmt : ""));
		json_object_object_add(ins, "encrypted", json_object_new_boolean(false));
		json_object_object_add(ins, "backing_file_depth", json_object_new_int((int)depth));
		json_object_object_add(ins, "image", image);
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "device", json_object_new_string(vb->name));
		json_object_object_add(o, "qdev", json_object_new_string(vb->name));
		json_object_object_add(o, "locked", json_object_new_boolean(false));
		json_object_object_add(o, "removable", json_object_new_boolean(false));
		json_object_object_add(o, "type", json_object_new_string("unknown"));
		json_object_object_add(o, "inserted", ins);
		json_object_array_add(r, o);
	}
	return r;
}

static struct json_object *cmd_query_memory_size_summary(struct qmp_ctx *c,
							 struct json_object *args)
{
	struct json_object *r = json_object_new_object();
	json_object_object_add(r, "base-memory", json_object_new_uint64(c->vm->cfg.mem_size));
	json_object_object_add(r, "plugged-memory", json_object_new_uint64(0));
	return r;
}

static struct json_object *cmd_hmp(struct qmp_ctx *c, struct json_object *args)
{
	struct json_object *line, *cpu;
	json_object_object_get_ex(args, "command-line", &line);
	unsigned cpu_index = 0;
	if (json_object_object_get_ex(args, "cpu-index", &cpu)) {
		int64_t n = json_object_get_int64(cpu);
		if (n < 0 || n >= (int64_t)c->vm->nr_vcpus) {
			qmp_error(c, "GenericError", "Parameter 'cpu-index' expects a CPU number");
			return NULL;
		}
		cpu_index = (unsigned)n;
	}
	char *out = NULL;
	c->srv->mon.cpu = cpu_index; /* for this command only, as QEMU's */
	int ret = monitor_hmp(&c->srv->mon, json_object_get_string(line), &out);
	c->srv->mon.cpu = 0;
	if (ret == -ENOMEM) {
		free(out);
		qmp_error(c, "GenericError", "out of memory");
		return NULL;
	}
	/* Like QEMU, an unknown HMP command is text in a successful return. */
	struct json_object *r = json_object_new_string(out ? out : "");
	free(out);
	return r;
}

static const struct qmp_arg caps_args[] = {{"enable", QMP_ARG_ARRAY, true}, {NULL, 0, false}};
static const struct qmp_arg send_key_args[] = {
    {"keys", QMP_ARG_ARRAY, false}, {"hold-time", QMP_ARG_INT, true}, {NULL, 0, false}};
static const struct qmp_arg hmp_args[] = {
    {"command-line", QMP_ARG_STR, false}, {"cpu-index", QMP_ARG_INT, true}, {NULL, 0, false}};

/* --- introspection ----------------------------------------------------------------------- */

const struct qmp_event_info qmp_events[] = {
    {"SHUTDOWN", "ShutdownInfo"},
    {"POWERDOWN", "0"},
    {"RESET", "ShutdownInfo"},
    {"STOP", "0"},
    {"RESUME", "0"},
    {NULL, NULL},
};

/* query-events (QEMU's EventInfo list; QEMU itself dropped the command in 6.0 for
 * query-qmp-schema, older clients still ask). */
static struct json_object *cmd_query_events(struct qmp_ctx *c, struct json_object *args)
{
	struct json_object *r = json_object_new_array();
	for (const struct qmp_event_info *e = qmp_events; e->name; e++)
		add_name(r, e->name);
	return r;
}

/* The types the commands and events refer to, as QEMU's SchemaInfo (qapi/introspect.json):
 * builtins, objects, enums, arrays. Names are ours (QEMU's are masked numbers as well). */
static const char schema_types[] =
    "["
    "{\"name\":\"str\",\"meta-type\":\"builtin\",\"json-type\":\"string\"},"
    "{\"name\":\"int\",\"meta-type\":\"builtin\",\"json-type\":\"int\"},"
    "{\"name\":\"bool\",\"meta-type\":\"builtin\",\"json-type\":\"boolean\"},"
    "{\"name\":\"any\",\"meta-type\":\"builtin\",\"json-type\":\"value\"},"
    "{\"name\":\"[any]\",\"meta-type\":\"array\",\"element-type\":\"any\"},"
    "{\"name\":\"0\",\"meta-type\":\"object\",\"members\":[]},"
    "{\"name\":\"VersionTriple\",\"meta-type\":\"object\",\"members\":["
    "{\"name\":\"major\",\"type\":\"int\"},{\"name\":\"minor\",\"type\":\"int\"},"
    "{\"name\":\"micro\",\"type\":\"int\"}]},"
    "{\"name\":\"VersionInfo\",\"meta-type\":\"object\",\"members\":["
    "{\"name\":\"qemu\",\"type\":\"VersionTriple\"},{\"name\":\"package\",\"type\":\"str\"}]},"
    "{\"name\":\"CommandInfo\",\"meta-type\":\"object\",\"members\":["
    "{\"name\":\"name\",\"type\":\"str\"}]},"
    "{\"name\":\"[CommandInfo]\",\"meta-type\":\"array\",\"element-type\":\"CommandInfo\"},"
    "{\"name\":\"EventInfo\",\"meta-type\":\"object\",\"members\":["
    "{\"name\":\"name\",\"type\":\"str\"}]},"
    "{\"name\":\"[EventInfo]\",\"meta-type\":\"array\",\"element-type\":\"EventInfo\"},"
    "{\"name\":\"RunState\",\"meta-type\":\"enum\",\"members\":[{\"name\":\"prelaunch\"},"
    "{\"name\":\"running\"},{\"name\":\"paused\"},{\"name\":\"shutdown\"}],"
    "\"values\":[\"prelaunch\",\"running\",\"paused\",\"shutdown\"]},"
    "{\"name\":\"StatusInfo\",\"meta-type\":\"object\",\"members\":["
    "{\"name\":\"running\",\"type\":\"bool\"},{\"name\":\"singlestep\",\"type\":\"bool\"},"
    "{\"name\":\"status\",\"type\":\"RunState\"}]},"
    "{\"name\":\"NameInfo\",\"meta-type\":\"object\",\"members\":["
    "{\"name\":\"name\",\"type\":\"str\",\"default\":null}]},"
    "{\"name\":\"UuidInfo\",\"meta-type\":\"object\",\"members\":["
    "{\"name\":\"UUID\",\"type\":\"str\"}]},"
    "{\"name\":\"KvmInfo\",\"meta-type\":\"object\",\"members\":["
    "{\"name\":\"enabled\",\"type\":\"bool\"},{\"name\":\"present\",\"type\":\"bool\"}]},"
    "{\"name\":\"MemoryInfo\",\"meta-type\":\"object\",\"members\":["
    "{\"name\":\"base-memory\",\"type\":\"int\"},"
    "{\"name\":\"plugged-memory\",\"type\":\"int\",\"default\":null}]},"
    "{\"name\":\"ShutdownCause\",\"meta-type\":\"enum\",\"members\":[{\"name\":\"none\"},"
    "{\"name\":\"host-error\"},{\"name\":\"host-qmp-quit\"},{\"name\":\"host-qmp-system-reset\"},"
    "{\"name\":\"host-signal\"},{\"name\":\"host-ui\"},{\"name\":\"guest-shutdown\"},"
    "{\"name\":\"guest-reset\"},{\"name\":\"guest-panic\"}],"
    "\"values\":[\"none\",\"host-error\",\"host-qmp-quit\",\"host-qmp-system-reset\","
    "\"host-signal\",\"host-ui\",\"guest-shutdown\",\"guest-reset\",\"guest-panic\"]},"
    "{\"name\":\"ShutdownInfo\",\"meta-type\":\"object\",\"members\":["
    "{\"name\":\"guest\",\"type\":\"bool\"},{\"name\":\"reason\",\"type\":\"ShutdownCause\"}]}"
    "]";

const char *qmp_arg_type_name(enum qmp_arg_type t, bool schema)
{
	/* [type] = {what an error message calls it, its query-qmp-schema type} */
	static const char *const names[][2] = {
	    [QMP_ARG_STR] = {"string", "str"},	  [QMP_ARG_INT] = {"integer", "int"},
	    [QMP_ARG_BOOL] = {"boolean", "bool"}, [QMP_ARG_ARRAY] = {"array", "[any]"},
	    [QMP_ARG_OBJECT] = {"object", "any"},
	};
	return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t][schema] : "any";
}

static struct json_object *schema_entry(const char *name, const char *meta)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "meta-type", json_object_new_string(meta));
	return o;
}

/* query-qmp-schema: every command (its arguments from the table check_args() uses) and
 * every event, and the types they name; enough for a client that looks for a command. */
static struct json_object *cmd_query_qmp_schema(struct qmp_ctx *c, struct json_object *args)
{
	struct json_object *r = json_tokener_parse(schema_types);
	if (!r) {
		qmp_error(c, "GenericError", "out of memory");
		return NULL;
	}
	for (const struct qmp_command *cmd = qmp_commands; cmd->name; cmd++) {
		char arg_type[96] = "0";
		if (cmd->args) {
			snprintf(arg_type, sizeof(arg_type), "q_obj_%s-arg", cmd->name);
			struct json_object *members = json_object_new_array();
			for (const struct qmp_arg *a = cmd->args; a->name; a++) {
				struct json_object *m = json_object_new_object();
				json_object_object_add(m, "name", json_object_new_string(a->name));
				json_object_object_add(
				    m, "type",
				    json_object_new_string(qmp_arg_type_name(a->type, true)));
				if (a->optional)
					json_object_object_add(m, "default", NULL);
				json_object_array_add(members, m);
			}
			struct json_object *t = schema_entry(arg_type, "object");
			json_object_object_add(t, "members", members);
			json_object_array_add(r, t);
		}
		struct json_object *o = schema_entry(cmd->name, "command");
		json_object_object_add(o, "arg-type", json_object_new_string(arg_type));
		json_object_object_add(o, "ret-type", json_object_new_string(cmd->ret_type));
		json_object_array_add(r, o);
	}
	for (const struct qmp_event_info *e = qmp_events; e->name; e++) {
		struct json_object *o = schema_entry(e->name, "event");
		json_object_object_add(o, "arg-type", json_object_new_string(e->arg_type));
		json_object_array_add(r, o);
	}
	return r;
}

const struct qmp_command qmp_commands[] = {
    {"qmp_capabilities", cmd_qmp_capabilities, caps_args, "0"},
    {"query-version", cmd_query_version, NULL, "VersionInfo"},
    {"query-commands", cmd_query_commands, NULL, "[CommandInfo]"},
    {"query-events", cmd_query_events, NULL, "[EventInfo]"},
    {"query-qmp-schema", cmd_query_qmp_schema, NULL, "[any]"},
    {"query-status", cmd_query_status, NULL, "StatusInfo"},
    {"query-name", cmd_query_name, NULL, "NameInfo"},
    {"query-uuid", cmd_query_uuid, NULL, "UuidInfo"},
    {"query-cpus-fast", cmd_query_cpus_fast, NULL, "[any]"},
    {"query-kvm", cmd_query_kvm, NULL, "KvmInfo"},
    {"query-block", cmd_query_block, NULL, "[any]"},
    {"query-memory-size-summary", cmd_query_memory_size_summary, NULL, "MemoryInfo"},
    {"stop", cmd_stop, NULL, "0"},
    {"cont", cmd_cont, NULL, "0"},
    {"system_reset", cmd_system_reset, NULL, "0"},
    {"system_powerdown", cmd_system_powerdown, NULL, "0"},
    {"quit", cmd_quit, NULL, "0"},
    {"send-key", cmd_send_key, send_key_args, "0"},
    {"human-monitor-command", cmd_hmp, hmp_args, "str"},
    {NULL, NULL, NULL, NULL},
};

const struct qmp_command *qmp_find_command(const char *name)
{
	for (const struct qmp_command *cmd = qmp_commands; cmd->name; cmd++)
		if (!strcmp(cmd->name, name))
			return cmd;
	return NULL;
}

/* QMP server and HMP monitor in-process: a hand-built VM (buses, RAM, clock, event loop, no
 * vCPUs), a real unix socket, and the event loop pumped by the test. Checks framing, the
 * negotiation rules, errors, events and the pluggable "info" table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/monitor.h"
#include "vmm/qmp.h"
#include "vmm/vm.h"

struct fixture {
	struct vm vm;
	struct qmp_server *srv;
	char path[108];
	int fd;
	char buf[65536];
	size_t len;
};

static uint64_t nop_read(void *opaque, uint64_t off, unsigned size)
{
	return 0;
}

static void nop_write(void *opaque, uint64_t off, uint64_t v, unsigned size)
{
}

static const struct io_ops nop_ops = {.read = nop_read, .write = nop_write};

/* The next line from the server, pumping the event loop while waiting. */
static const char *next_line(struct fixture *f)
{
	static char line[65536];
	for (int spins = 0; spins < 2000; spins++) {
		char *nl = memchr(f->buf, '\n', f->len);
		if (nl) {
			size_t n = (size_t)(nl - f->buf);
			memcpy(line, f->buf, n);
			line[n] = '\0';
			if (n && line[n - 1] == '\r')
				line[n - 1] = '\0';
			memmove(f->buf, nl + 1, f->len - n - 1);
			f->len -= n + 1;
			return line;
		}
		event_loop_run_once(&f->vm.loop, 1);
		ssize_t r = recv(f->fd, f->buf + f->len, sizeof(f->buf) - f->len, MSG_DONTWAIT);
		if (r > 0)
			f->len += (size_t)r;
		if (r == 0)
			return NULL;
	}
	return NULL;
}

static void send_str(struct fixture *f, const char *s)
{
	assert_int_equal(send(f->fd, s, strlen(s), 0), (ssize_t)strlen(s));
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct error err = {0};
	f->vm.cfg.name = "unit";
	f->vm.cfg.mem_size = 16 << 20;
	pthread_mutex_init(&f->vm.run_lock, NULL);
	pthread_cond_init(&f->vm.run_cond, NULL);
	vclock_init(&f->vm.clock);
	timer_list_init(&f->vm.timers, &f->vm.clock);
	assert_int_equal(event_loop_init(&f->vm.loop, &f->vm.timers), 0);
	io_bus_init(&f->vm.pio, "io");
	io_bus_init(&f->vm.mmio, "memory");
	assert_int_equal(gm_add_ram(&f->vm.mem, 0, 16 << 20, "pc.ram"), 0);
	assert_true(io_bus_register(&f->vm.pio, 0x3f8, 8, &nop_ops, f, "serial") > 0);
	assert_true(io_bus_register(&f->vm.mmio, 0xfed00000, 0x400, &nop_ops, &f->len, "hpet") > 0);
	f->vm.state = VM_STATE_RUNNING;
	snprintf(f->path, sizeof(f->path), "/tmp/kestrel-unit-qmp-%d.sock", getpid());
	char spec[160];
	snprintf(spec, sizeof(spec), "unix:%s,server=on,wait=off", f->path);
	assert_int_equal(qmp_server_create(&f->srv, &f->vm, spec, &err), 0);
	f->vm.qmp = f->srv;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	f->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	close(f->fd);
	qmp_server_destroy(f->srv);
	event_loop_destroy(&f->vm.loop);
	io_bus_destroy(&f->vm.pio);
	io_bus_destroy(&f->vm.mmio);
	gm_destroy(&f->vm.mem);
	timer_list_destroy(&f->vm.timers);
	vclock_destroy(&f->vm.clock);
	free(f);
	return 0;
}

static void test_negotiation_and_framing(void **state)
{
	struct fixture *f = *state;
	const char *l = next_line(f);
	assert_non_null(l);
	assert_non_null(strstr(l, "{\"QMP\":{\"version\":"));
	send_str(f, "{\"execute\":\"query-status\"}\n");
	assert_non_null(strstr(next_line(f), "\"CommandNotFound\""));
	/* Two requests in one write, the second split across two writes. */
	send_str(f, "{\"execute\":\"qmp_capabilities\",\"id\":1}{\"execute\":\"query-na");
	assert_string_equal(next_line(f), "{\"return\":{},\"id\":1}");
	send_str(f, "me\",\"id\":2}\r\n");
	assert_string_equal(next_line(f), "{\"return\":{\"name\":\"unit\"},\"id\":2}");
	send_str(f, "{\"execute\":\"qmp_capabilities\"}\n");
	assert_non_null(strstr(next_line(f), "already complete"));
}

static void negotiate(struct fixture *f)
{
	assert_non_null(next_line(f));
	send_str(f, "{\"execute\":\"qmp_capabilities\"}\n");
	assert_string_equal(next_line(f), "{\"return\":{}}");
}

static void test_errors(void **state)
{
	struct fixture *f = *state;
	negotiate(f);
	send_str(f, "{\"execute\":\n");
	send_str(f, "}\n");
	assert_non_null(strstr(next_line(f), "\"GenericError\""));
	send_str(f, "{\"execute\":\"query-name\",\"id\":\"x\"}\n");
	assert_string_equal(next_line(f), "{\"return\":{\"name\":\"unit\"},\"id\":\"x\"}");
	send_str(f, "17\n");
	assert_non_null(strstr(next_line(f), "must be a JSON object"));
	send_str(f,
		 "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":[]}}\n");
	assert_non_null(strstr(next_line(f), "Invalid parameter type for 'command-line'"));
	send_str(f, "{\"execute\":\"send-key\"}\n");
	assert_non_null(strstr(next_line(f), "Parameter 'keys' is missing"));
	send_str(f, "{\"execute\":\"nope\",\"id\":[1]}\n");
	assert_string_equal(next_line(f),
			    "{\"error\":{\"class\":\"CommandNotFound\",\"desc\":\"The "
			    "command nope has not been found\"},\"id\":[1]}");
	/* Nested deeper than the parser allows (1024, as QEMU): an error, the connection
	 * survives. */
	char deep[1200];
	memset(deep, '[', 1100);
	strcpy(deep + 1100, "\n");
	send_str(f, deep);
	assert_non_null(strstr(next_line(f), "\"GenericError\""));
	send_str(f, "{\"execute\":\"query-name\"}\n");
	assert_string_equal(next_line(f), "{\"return\":{\"name\":\"unit\"}}");
}

static void test_stop_cont_events(void **state)
{
	struct fixture *f = *state;
	negotiate(f);
	send_str(f, "{\"execute\":\"stop\"}\n");
	const char *l = next_line(f);
	assert_non_null(strstr(l, "{\"event\":\"STOP\",\"timestamp\":{\"seconds\":"));
	assert_string_equal(next_line(f), "{\"return\":{}}");
	assert_int_equal(f->vm.state, VM_STATE_PAUSED);
	assert_true(vclock_paused(&f->vm.clock));
	send_str(f, "{\"execute\":\"query-status\"}\n");
	assert_string_equal(
	    next_line(f),
	    "{\"return\":{\"running\":false,\"singlestep\":false,\"status\":\"paused\"}}");
	send_str(f, "{\"execute\":\"cont\"}\n");
	assert_non_null(strstr(next_line(f), "\"RESUME\""));
	assert_string_equal(next_line(f), "{\"return\":{}}");
	assert_false(vclock_paused(&f->vm.clock));
	qmp_emit_shutdown(f->srv, "SHUTDOWN", false, "host-qmp-quit");
	assert_non_null(
	    strstr(next_line(f), "\"data\":{\"guest\":false,\"reason\":\"host-qmp-quit\"}"));
}

static void custom_pci(struct vm *vm, FILE *out, void *opaque)
{
	fprintf(out, "Bus 0, device 0: %s\n", (const char *)opaque);
}

static void test_hmp(void **state)
{
	struct fixture *f = *state;
	struct monitor m;
	char *out;
	monitor_init(&m, &f->vm);
	assert_int_equal(monitor_hmp(&m, "info mtree", &out), 0);
	assert_non_null(strstr(out, "0000000000000000-0000000000ffffff (prio 0, ram): pc.ram"));
	assert_non_null(strstr(out, "00000000fed00000-00000000fed003ff (prio 0, i/o): hpet"));
	assert_non_null(strstr(out, "00000000000003f8-00000000000003ff (prio 0, i/o): serial"));
	free(out);
	assert_int_equal(monitor_hmp(&m, "info ramblock", &out), 0);
	assert_non_null(strstr(out, "pc.ram"));
	free(out);
	assert_int_equal(monitor_hmp(&m, "info qtree", &out), 0);
	assert_non_null(strstr(out, "dev: serial"));
	assert_non_null(strstr(out, "dev: hpet"));
	free(out);
	assert_int_equal(monitor_hmp(&m, "info pci", &out), 0);
	assert_string_equal(out, "");
	free(out);
	assert_int_equal(monitor_add_info(&m, "pci", "PCI", custom_pci, "host bridge"), 0);
	assert_int_equal(monitor_hmp(&m, "info pci", &out), 0);
	assert_string_equal(out, "Bus 0, device 0: host bridge\n");
	free(out);
	assert_int_equal(monitor_hmp(&m, "info bogus", &out), -ENOENT);
	free(out);
	assert_int_equal(monitor_hmp(&m, "   ", &out), 0);
	assert_string_equal(out, "");
	free(out);
	static char names[MONITOR_MAX_INFO][16]; /* the table keeps the pointers */
	for (int i = 0; i < MONITOR_MAX_INFO; i++) {
		snprintf(names[i], sizeof(names[i]), "x%d", i);
		if (monitor_add_info(&m, names[i], "x", custom_pci, NULL) == -ENOSPC)
			break;
	}
	assert_int_equal(monitor_add_info(&m, "overflow", "x", custom_pci, NULL), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_negotiation_and_framing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stop_cont_events, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hmp, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

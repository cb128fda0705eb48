/* kestrel run: parse the command line into a vm_config, create the VM and run it.
 * Every mistake in the options is one clear line on stderr and exit code 1. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "util/daemon.h"
#include "util/log.h"
#include "util/size.h"
#include "vmm/qmp.h"
#include "vmm/smbios.h"
#include "vmm/vm.h"

#define DEFAULT_MEM (512ULL << 20)
#define MIN_MEM	    (16ULL << 20)
#define MAX_MEM	    (1ULL << 40)

static void run_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: kestrel run --kernel FILE [OPTIONS]\n"
	    "\n"
	    "Boot a virtual machine from a kernel image (Linux bzImage, PVH ELF or multiboot).\n"
	    "\n"
	    "  --kernel FILE          kernel to boot\n"
	    "  --initrd FILE          initial ramdisk (initramfs)\n"
	    "  --cmdline STR          kernel command line (alias: --append)\n"
	    "  --mem SIZE             guest RAM, e.g. 512M, 2G (default 512M; a bare number is "
	    "MiB)\n"
	    "  --mem-merge on|off     offer guest RAM to KSM (MADV_MERGEABLE; default on, as "
	    "QEMU)\n"
	    "  --cpus N               number of vCPUs (default 1)\n"
	    "  --accel auto|kvm|emu|qtest\n"
	    "                         accelerator (default auto: KVM if /dev/kvm works; qtest:\n"
	    "                         no CPU and no kernel, devices driven by a test)\n"
	    "  --qtest unix:PATH|stdio\n"
	    "                         the qtest protocol socket (with --accel qtest)\n"
	    "  --qmp unix:PATH|tcp:[HOST]:PORT|tcp:[IPV6]:PORT[,server=on][,wait=on|off]\n"
	    "                         QMP monitor socket (HOST defaults to 127.0.0.1); wait=on\n"
	    "                         waits for a client before the VM starts (default off);\n"
	    "                         repeat for more monitors (up to 4)\n"
	    "  --console stdio|none|file:PATH\n"
	    "                         where the serial console goes (default stdio)\n"
	    "  --no-reboot            exit when the guest reboots instead of resetting it\n"
	    "  -S, --paused           start with the vCPUs stopped (status prelaunch) until the\n"
	    "                         QMP 'cont'\n"
	    "  --no-shutdown          a guest poweroff stops the VM (status shutdown) instead of\n"
	    "                         exiting: 'system_reset' then 'cont' boots it again\n"
	    "  --debug-exit           a write of V to port 0xf4 exits with code (V << 1) | 1\n"
	    "  --name NAME            a name for the VM (shown by the monitor)\n"
	    "  --uuid UUID            the VM's UUID (SMBIOS system UUID, query-uuid)\n"
	    "  --disk PATH[,format=raw|qcow2][,readonly=on][,cache=none|writeback][,discard=on]\n"
	    "        [,aio=io_uring|sync][,l2-cache-size=SIZE]\n"
	    "                         a virtio-blk disk (repeat for more, up to 8); raw and\n"
	    "                         qcow2 images use io_uring where the kernel allows\n"
	    "                         (aio=sync: never)\n"
	    "  --rng                  a virtio-rng device (the guest's /dev/hwrng)\n"
	    "  --serial-virtio        a virtio-console: the guest's hvc0 writes to the console\n"
	    "  --net user[,hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT]...\n"
	    "        [,net=10.0.2.0/24][,mac=52:54:00:12:34:56]\n"
	    "                         a virtio-net NIC on user-mode networking (libslirp):\n"
	    "                         DHCP gives the guest .15, the host is .2, DNS .3; hostfwd\n"
	    "                         listens on all host addresses unless HOSTADDR is given\n"
	    "  --net tap,ifname=NAME[,mac=...]\n"
	    "                         a virtio-net NIC on a host tap device (with offloads)\n"
	    "                         (repeat --net for more NICs, up to 4)\n"
	    "  --daemonize            run in the background once the VM and its monitor are set\n"
	    "                         up (needs --console none or file:PATH)\n"
	    "  --pidfile PATH         write the process id to PATH (locked while running)\n"
	    "  -d guest-errors        log guest errors (devices programmed wrongly)\n"
	    "  -v, --verbose          more log output (repeat for debug)\n"
	    "  -h, --help             this help\n"
	    "\n"
	    "On the console, C-a x exits and C-a h lists the other keys.\n");
}

__attribute__((format(printf, 1, 2))) static int bad_option(const char *fmt, ...)
{
	va_list ap;
	fputs("kestrel: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_MEM,
	OPT_CPUS,
	OPT_ACCEL,
	OPT_CONSOLE,
	OPT_NO_REBOOT,
	OPT_DEBUG_EXIT,
	OPT_NAME,
	OPT_QMP,
	OPT_QTEST,
	OPT_DISK,
	OPT_RNG,
	OPT_SERIAL_VIRTIO,
	OPT_MEM_MERGE,
	OPT_UUID,
	OPT_NET,
	OPT_DAEMONIZE,
	OPT_NO_SHUTDOWN,
	OPT_PIDFILE,
};

static const struct option run_options[] = {
    {"kernel", required_argument, NULL, OPT_KERNEL},
    {"initrd", required_argument, NULL, OPT_INITRD},
    {"cmdline", required_argument, NULL, OPT_CMDLINE},
    {"append", required_argument, NULL, OPT_CMDLINE},
    {"mem", required_argument, NULL, OPT_MEM},
    {"memory", required_argument, NULL, OPT_MEM},
    {"cpus", required_argument, NULL, OPT_CPUS},
    {"smp", required_argument, NULL, OPT_CPUS},
    {"accel", required_argument, NULL, OPT_ACCEL},
    {"console", required_argument, NULL, OPT_CONSOLE},
    {"no-reboot", no_argument, NULL, OPT_NO_REBOOT},
    {"no-shutdown", no_argument, NULL, OPT_NO_SHUTDOWN},
    {"paused", no_argument, NULL, 'S'},
    {"debug-exit", no_argument, NULL, OPT_DEBUG_EXIT},
    {"name", required_argument, NULL, OPT_NAME},
    {"qmp", required_argument, NULL, OPT_QMP},
    {"qtest", required_argument, NULL, OPT_QTEST},
    {"disk", required_argument, NULL, OPT_DISK},
    {"drive", required_argument, NULL, OPT_DISK},
    {"rng", no_argument, NULL, OPT_RNG},
    {"serial-virtio", no_argument, NULL, OPT_SERIAL_VIRTIO},
    {"mem-merge", required_argument, NULL, OPT_MEM_MERGE},
    {"uuid", required_argument, NULL, OPT_UUID},
    {"net", required_argument, NULL, OPT_NET},
    {"daemonize", no_argument, NULL, OPT_DAEMONIZE},
    {"pidfile", required_argument, NULL, OPT_PIDFILE},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_mem(const char *arg, uint64_t *mem)
{
	int ret = size_parse(arg, 1ULL << 20, mem);
	if (ret)
		return bad_option("--mem: '%s' is not a size (examples: 512M, 2G)", arg);
	if (*mem < MIN_MEM)
		return bad_option("--mem %s is too small: a guest needs at least 16 MiB", arg);
	if (*mem > MAX_MEM)
		return bad_option("--mem %s is too large: at most 1 TiB", arg);
	if (*mem & 0xfffff)
		return bad_option("--mem %s is not a whole number of MiB", arg);
	return 0;
}

static int parse_cpus(const char *arg, unsigned *cpus)
{
	char *end;
	errno = 0;
	long n = strtol(arg, &end, 10);
	if (errno || end == arg || *end || n < 1 || n > VM_MAX_VCPUS)
		return bad_option("--cpus: '%s' is not a number of vCPUs between 1 and %d", arg,
				  VM_MAX_VCPUS);
	*cpus = (unsigned)n;
	return 0;
}

static int parse_accel(const char *arg, enum accel_kind *accel)
{
	if (!strcmp(arg, "auto"))
		*accel = ACCEL_AUTO;
	else if (!strcmp(arg, "kvm"))
		*accel = ACCEL_KVM;
	else if (!strcmp(arg, "emu") || !strcmp(arg, "tcg"))
		*accel = ACCEL_EMU;
	else if (!strcmp(arg, "qtest"))
		*accel = ACCEL_QTEST;
	else
		return bad_option("--accel: unknown accelerator '%s' (auto, kvm, emu or qtest)",
				  arg);
	return 0;
}

static int parse_console(const char *arg, struct console_config *c)
{
	if (!strcmp(arg, "stdio"))
		c->kind = CONSOLE_STDIO;
	else if (!strcmp(arg, "none"))
		c->kind = CONSOLE_NONE;
	else if (!strncmp(arg, "file:", 5) && arg[5]) {
		c->kind = CONSOLE_FILE;
		c->path = arg + 5;
	} else
		return bad_option("--console: '%s' is not stdio, none or file:PATH", arg);
	return 0;
}

/* --disk PATH[,key=value...]: the string is cut in place (it is argv's). */
static int parse_disk(char *arg, struct vm_config *cfg)
{
	if (cfg->nr_disks >= VM_MAX_DISKS)
		return bad_option("--disk: at most %d disks", VM_MAX_DISKS);
	struct virtio_blk_opts *d = &cfg->disks[cfg->nr_disks];
	*d = (struct virtio_blk_opts){.format = BLK_FMT_PROBE, .cache = BLK_CACHE_WRITEBACK};
	char *save = NULL, *tok = strtok_r(arg, ",", &save);
	if (!tok || !*tok)
		return bad_option("--disk needs a path");
	d->path = tok;
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *val = strchr(tok, '=');
		if (!val)
			return bad_option("--disk: '%s' is not KEY=VALUE", tok);
		*val++ = '\0';
		if (!strcmp(tok, "format")) {
			if (!strcmp(val, "raw"))
				d->format = BLK_FMT_RAW;
			else if (!strcmp(val, "qcow2"))
				d->format = BLK_FMT_QCOW2;
			else
				return bad_option("--disk: format '%s' is not raw or qcow2", val);
		} else if (!strcmp(tok, "readonly") || !strcmp(tok, "discard")) {
			bool on = !strcmp(val, "on");
			if (!on && strcmp(val, "off"))
				return bad_option("--disk: %s=%s is not on or off", tok, val);
			if (!strcmp(tok, "readonly"))
				d->readonly = on;
			else
				d->discard = on;
		} else if (!strcmp(tok, "cache")) {
			if (!strcmp(val, "none"))
				d->cache = BLK_CACHE_NONE;
			else if (!strcmp(val, "writeback"))
				d->cache = BLK_CACHE_WRITEBACK;
			else
				return bad_option("--disk: cache=%s is not none or writeback", val);
		} else if (!strcmp(tok, "l2-cache-size")) {
			/* QEMU's option: bytes (K, M, G suffixes) of qcow2 L2 tables to cache */
			uint64_t n;
			if (size_parse(val, 1, &n) < 0 || n == 0 || n > (4ull << 30))
				return bad_option(
				    "--disk: l2-cache-size=%s is not a size from 1 to 4G", val);
			d->l2_cache_bytes = (size_t)n;
		} else if (!strcmp(tok, "aio")) {
			if (!strcmp(val, "io_uring") || !strcmp(val, "sync"))
				d->sync_io = !strcmp(val, "sync");
			else
				return bad_option("--disk: aio=%s is not io_uring or sync", val);
		} else {
			return bad_option("--disk: unknown option '%s' (format, readonly, cache, "
					  "discard, aio, l2-cache-size)",
					  tok);
		}
	}
	cfg->nr_disks++;
	return 0;
}

static int parse_net(const char *arg, struct vm_config *cfg)
{
	if (cfg->nr_nets >= VM_MAX_NICS)
		return bad_option("--net: at most %d NICs", VM_MAX_NICS);
	struct error err = {0};
	if (net_opts_parse(arg, &cfg->nets[cfg->nr_nets], &err))
		return bad_option("%s", err.msg);
	cfg->nr_nets++;
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct vm_config cfg = {
	    .mem_size = DEFAULT_MEM,
	    .nr_cpus = 1,
	    .accel = ACCEL_AUTO,
	    .console = {.kind = CONSOLE_STDIO},
	    .cmdline = "",
	};
	int verbose = 0, opt;
	const char *qmp[QMP_MAX_LISTENERS], *pidfile = NULL;
	unsigned nr_qmp = 0;
	bool daemonize = false;

	opterr = 0; /* we print our own messages */
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":hvSd:", run_options, NULL)) != -1) {
		int bad = 0;
		switch (opt) {
		case OPT_KERNEL:
			cfg.kernel = optarg;
			break;
		case OPT_INITRD:
			cfg.initrd = optarg;
			break;
		case OPT_CMDLINE:
			cfg.cmdline = optarg;
			break;
		case OPT_MEM:
			bad = parse_mem(optarg, &cfg.mem_size);
			break;
		case OPT_CPUS:
			bad = parse_cpus(optarg, &cfg.nr_cpus);
			break;
		case OPT_ACCEL:
			bad = parse_accel(optarg, &cfg.accel);
			break;
		case OPT_CONSOLE:
			bad = parse_console(optarg, &cfg.console);
			break;
		case OPT_NO_REBOOT:
			cfg.no_reboot = true;
			break;
		case OPT_NO_SHUTDOWN:
			cfg.no_shutdown = true;
			break;
		case 'S':
			cfg.start_paused = true;
			break;
		case OPT_DEBUG_EXIT:
			cfg.debug_exit = true;
			break;
		case OPT_UUID: {
			uint8_t u[16];
			if (smbios_parse_uuid(optarg, u))
				bad = bad_option("--uuid %s is not a UUID "
						 "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
						 optarg);
			for (char *p = optarg; *p; p++) /* shown as QEMU shows it */
				*p = (char)tolower((unsigned char)*p);
			cfg.uuid = optarg;
			break;
		}
		case OPT_NAME:
			cfg.name = optarg;
			break;
		case OPT_QMP: {
			struct qmp_spec sp;
			struct error e = {0};
			if (nr_qmp == QMP_MAX_LISTENERS)
				bad = bad_option("--qmp: at most %d monitors", QMP_MAX_LISTENERS);
			else if (qmp_spec_parse(optarg, &sp, &e))
				bad = bad_option("%s", e.msg);
			else
				qmp[nr_qmp++] = optarg;
			break;
		}
		case OPT_QTEST:
			cfg.qtest = optarg;
			break;
		case OPT_DISK:
			bad = parse_disk(optarg, &cfg);
			break;
		case OPT_RNG:
			cfg.rng = true;
			break;
		case OPT_SERIAL_VIRTIO:
			cfg.serial_virtio = true;
			break;
		case OPT_MEM_MERGE:
			if (!strcmp(optarg, "on") || !strcmp(optarg, "off"))
				cfg.no_mem_merge = !strcmp(optarg, "off");
			else
				bad = bad_option("--mem-merge: '%s' is not on or off", optarg);
			break;
		case OPT_NET:
			bad = parse_net(optarg, &cfg);
			break;
		case OPT_DAEMONIZE:
			daemonize = true;
			break;
		case OPT_PIDFILE:
			pidfile = optarg;
			break;
		case 'd':
			if (strcmp(optarg, "guest-errors"))
				bad =
				    bad_option("-d: unknown log item '%s' (guest-errors)", optarg);
			else
				log_set_guest_errors(true);
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			run_usage(stdout);
			return 0;
		case ':':
			return bad_option("option '%s' needs a value", argv[optind - 1]);
		default:
			return bad_option("unknown option '%s' (see 'kestrel run --help')",
					  argv[optind - 1]);
		}
		if (bad)
			return 1;
	}
	if (optind < argc)
		return bad_option("unexpected argument '%s' (see 'kestrel run --help')",
				  argv[optind]);
	if (cfg.qtest && cfg.accel != ACCEL_QTEST)
		return bad_option("--qtest needs --accel qtest");
	if (cfg.qtest && !strcmp(cfg.qtest, "stdio") && cfg.console.kind == CONSOLE_STDIO)
		cfg.console.kind = CONSOLE_NONE; /* stdio carries the qtest protocol */
	if (!cfg.kernel && cfg.accel != ACCEL_QTEST)
		return bad_option("no kernel given: use --kernel FILE (see 'kestrel run --help')");
	if (daemonize &&
	    (cfg.console.kind == CONSOLE_STDIO || (cfg.qtest && !strcmp(cfg.qtest, "stdio"))))
		return bad_option("--daemonize needs --console none or file:PATH (and no --qtest "
				  "stdio): a daemon has no terminal");
	if (verbose)
		log_set_level(verbose > 1 ? LOG_DEBUG : LOG_INFO);

	static struct vm vm; /* large; and signal paths reach it after main's frame is gone */
	struct error err = {0};
	/* Before anything starts a thread; errors until daemon_ready() still reach this stderr. */
	if ((daemonize && daemon_start(&err)) || (pidfile && pidfile_create(pidfile, &err))) {
		fprintf(stderr, "kestrel: %s\n", err.msg);
		return 1;
	}
	if (vm_create(&vm, &cfg, &err)) {
		fprintf(stderr, "kestrel: %s\n", err.msg[0] ? err.msg : strerror(-err.code));
		pidfile_remove();
		return 1;
	}
	int bad_qmp = nr_qmp ? qmp_server_create(&vm.qmp, &vm, qmp[0], &err) : 0;
	for (unsigned i = 1; i < nr_qmp && !bad_qmp; i++)
		bad_qmp = qmp_server_listen(vm.qmp, qmp[i], &err);
	if (bad_qmp) {
		qmp_server_destroy(vm.qmp);
		vm.qmp = NULL;
		fprintf(stderr, "kestrel: %s\n", err.msg);
		vm_destroy(&vm);
		pidfile_remove();
		return 1;
	}
	daemon_ready();
	int code = vm_run(&vm);
	qmp_server_destroy(vm.qmp);
	vm.qmp = NULL;
	vm_destroy(&vm);
	pidfile_remove();
	return code;
}

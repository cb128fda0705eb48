/* Linux reads our ACPI tables: Debian's guest kernel boots under QEMU's q35 machine (TCG) with
 * the RSDP pointed at tables built by acpi_build() (acpi_rsdp= on the command line, the tables
 * loaded into reserved RAM), and the checks are on what the kernel made of them: PM timer and
 * S5 from the FADT, the MADT's IOAPIC and overrides, MCFG, the PCI root, PNP devices from the
 * DSDT, fw_cfg from QEMU0002, no ACPI errors, and a poweroff through PM1a_CNT.
 *
 * q35's fixed hardware matches the pc defaults (PM1a at 0x600, reset at 0xcf9, SCI 9, ECAM at
 * 0xb0000000), except that QEMU's PM device takes SLP_TYP 0 for S5: the config says so. Until
 * Kestrel's own machine boots Linux, this is the end-to-end check of the table builder.
 * Skipped, with the reason, without qemu-system-x86_64, the guest kernel ($KESTREL_GUEST, from
 * make guest) or
 * busybox-static. */
#include <errno.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/acpi.h"

#define TABLES_GPA 0x7000000

static char dir[64];
static char *log_text;	/* the guest's serial output */
static int qemu_status; /* exit status of qemu */
static const char *skip_reason;
static bool have_fw_cfg_ko;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char init_script[] =
    "#!/bin/busybox sh\n"
    "/bin/busybox --install -s /bin\n"
    "mount -t proc proc /proc; mount -t sysfs sys /sys\n"
    "[ -f /qemu_fw_cfg.ko ] && insmod /qemu_fw_cfg.ko\n"
    "echo '=== dmesg'; dmesg\n"
    "echo '=== acpi'; ls /sys/bus/acpi/devices\n"
    "echo '=== pnp'; cat /sys/bus/pnp/devices/*/id\n"
    "echo '=== fw_cfg'; ls -1 /sys/firmware/qemu_fw_cfg 2>&1\n"
    "echo '=== clocksource'; cat "
    "/sys/devices/system/clocksource/clocksource0/available_clocksource\n"
    "echo '=== ioports'; cat /proc/ioports\n"
    "echo '=== end'\n"
    "poweroff -f\n";

static int boot(void **state)
{
	/* The test guest: $KESTREL_GUEST (tests/run.sh sets it), else $KESTREL_BUILD/guest. */
	char gdir[512], kernel[600], fwcfg[600];
	if (getenv("KESTREL_GUEST"))
		snprintf(gdir, sizeof(gdir), "%s", getenv("KESTREL_GUEST"));
	else
		snprintf(gdir, sizeof(gdir), "%s/guest",
			 getenv("KESTREL_BUILD") ? getenv("KESTREL_BUILD") : "build");
	snprintf(kernel, sizeof(kernel), "%s/vmlinuz", gdir);
	snprintf(fwcfg, sizeof(fwcfg), "%s/modules/qemu_fw_cfg.ko", gdir);
	if (sh("command -v qemu-system-x86_64 >/dev/null 2>&1")) {
		skip_reason = "qemu-system-x86_64 not installed";
		return 0;
	}
	char *abs = realpath(kernel, NULL); /* qemu runs in the temporary directory */
	if (!abs || access(abs, R_OK)) {
		free(abs);
		skip_reason = "no guest kernel (make guest)";
		return 0;
	}
	snprintf(kernel, sizeof(kernel), "%s", abs);
	free(abs);
	if (access("/bin/busybox", X_OK) || sh("command -v cpio >/dev/null 2>&1")) {
		skip_reason = "busybox-static or cpio not installed";
		return 0;
	}

	strcpy(dir, "/tmp/kestrel-acpi-linux-XXXXXX");
	if (!mkdtemp(dir))
		return -1;

	/* The tables */
	static uint8_t buf[65536];
	struct acpi_config c;
	acpi_config_pc_defaults(&c, 2);
	c.s5_slp_typ = 0;
	c.has_pci = true;
	c.ecam_base = 0xb0000000;
	c.pci_io = (struct acpi_window){0, 0x10000};
	c.pci_mmio32 = (struct acpi_window){0xc0000000, 0x3ec00000};
	c.fw_cfg_port = 0x510;
	c.i8042_aux = true;
	uint64_t rsdp;
	int used = acpi_build(&c, buf, sizeof(buf), TABLES_GPA, &rsdp);
	if (used < 0)
		return -1;
	char path[128];
	snprintf(path, sizeof(path), "%s/tables.bin", dir);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, (size_t)used, f) != (size_t)used)
		return -1;
	fclose(f);

	/* The initramfs: busybox and a script that prints what the kernel found */
	if (sh("mkdir -p %s/root/bin %s/root/proc %s/root/sys && cp /bin/busybox %s/root/bin/", dir,
	       dir, dir, dir))
		return -1;
	snprintf(path, sizeof(path), "%s/root/init", dir);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(init_script, f);
	fclose(f);
	have_fw_cfg_ko = !access(fwcfg, R_OK) && !sh("cp %s %s/root/", fwcfg, dir);
	if (sh("chmod +x %s/root/init && cd %s/root && find . | cpio -o -H newc 2>/dev/null | "
	       "gzip >../initrd.gz",
	       dir, dir))
		return -1;

	/* memmap= keeps the kernel off the tables; nokaslr keeps it below them. */
	qemu_status = sh("cd %s && timeout 180 qemu-system-x86_64 -M q35 -accel tcg -m 512 -smp 2 "
			 "-nodefaults -nographic -serial file:serial.log -no-reboot "
			 "-kernel %s -initrd initrd.gz "
			 "-append 'console=ttyS0 quiet nokaslr memmap=64K$0x%x acpi_rsdp=0x%llx' "
			 "-device loader,file=tables.bin,addr=0x%x,force-raw=on >qemu.log 2>&1",
			 dir, kernel, TABLES_GPA, (unsigned long long)rsdp, TABLES_GPA);
	snprintf(path, sizeof(path), "%s/serial.log", dir);
	f = fopen(path, "rb");
	if (!f)
		return -1;
	log_text = calloc(1, 1 << 20);
	if (!log_text)
		return -1;
	size_t n = fread(log_text, 1, (1 << 20) - 1, f);
	fclose(f);
	/* The serial console writes CRLF line ends: keep the LFs. */
	size_t w = 0;
	for (size_t r = 0; r < n; r++)
		if (log_text[r] != '\r')
			log_text[w++] = log_text[r];
	log_text[w] = 0;
	print_message("# qemu exited with %d after the guest printed %zu bytes (log in %s)\n",
		      qemu_status, n, dir);
	return 0;
}

static int cleanup(void **state)
{
	/* Keep the directory when something failed, for a look at serial.log. */
	if (dir[0] && log_text && qemu_status == 0 && !getenv("KESTREL_KEEP_TMP") &&
	    strstr(log_text, "=== end") && !strstr(log_text, "ACPI Error") &&
	    !strstr(log_text, "ACPI BIOS Error"))
		sh("rm -rf %s", dir);
	free(log_text);
	return 0;
}

static void need_boot(void)
{
	if (skip_reason) {
		print_message("# %s\n", skip_reason);
		skip();
	}
	assert_non_null(log_text);
}

static void expect_in_log(const char *const *want, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (!strstr(log_text, want[i]))
			print_message("# not in the guest's output: \"%s\"\n", want[i]);
		assert_non_null(strstr(log_text, want[i]));
	}
}

static void tables_found(void **state)
{
	need_boot();
	static const char *const want[] = {
	    "ACPI: RSDP 0x0000000007000000 000024 (v02 KESTRL)",
	    "ACPI: XSDT 0x",
	    "ACPI: FACP 0x",
	    "ACPI: DSDT 0x",
	    "ACPI: FACS 0x",
	    "ACPI: APIC 0x",
	    "ACPI: MCFG 0x",
	    "=== end",
	};
	expect_in_log(want, sizeof(want) / sizeof(want[0]));
	assert_null(strstr(log_text, "ACPI Error"));
	assert_null(strstr(log_text, "ACPI BIOS Error"));
	assert_null(strstr(log_text, "ACPI Warning"));
}

static void fadt_madt_mcfg(void **state)
{
	need_boot();
	static const char *const want[] = {
	    "ACPI: PM-Timer IO Port: 0x608",
	    "IOAPIC[0]: apic_id 0, version 32, address 0xfec00000, GSI 0-23",
	    "ACPI: INT_SRC_OVR (bus 0 bus_irq 9 global_irq 9 high level)",
	    "ACPI: INT_SRC_OVR (bus 0 bus_irq 0 global_irq 2 high edge)",
	    "smpboot: Allowing 2 CPUs",
	    "PCI: MMCONFIG for domain 0000 [bus 00-ff] at [mem 0xb0000000-0xbfffffff]",
	    "ACPI: PM: (supports S0 S5)",
	    "ACPI PM1a_EVT_BLK",
	    "ACPI PM1a_CNT_BLK",
	    "ACPI PM_TMR",
	    "acpi_pm",
	};
	expect_in_log(want, sizeof(want) / sizeof(want[0]));
}

static void dsdt_devices(void **state)
{
	need_boot();
	static const char *const want[] = {
	    "ACPI: PCI Root Bridge [PCI0] (domain 0000 [bus 00-ff])",
	    "pci_bus 0000:00: root bus resource [io  0x0000-0x0cf7 window]",
	    "pci_bus 0000:00: root bus resource [io  0x0d00-0xffff window]",
	    "pci_bus 0000:00: root bus resource [mem 0xc0000000-0xfebfffff window]",
	    "pnp: PnP ACPI: found 5 devices",
	    "i8042: PNP: PS/2 Controller [PNP0303:KBD,PNP0f13:MOU] at 0x60,0x64 irq 1,12",
	    "ACPI0007:01",
	    "PNP0501",
	    "PNP0b00",
	    "PNP0c02",
	    "QEMU0002:00",
	    "LNXPWRBN:00", /* the fixed power button from the FADT */
	    "0510-051b : QEMU0002:00",
	};
	expect_in_log(want, sizeof(want) / sizeof(want[0]));
	/* The driver binds to QEMU0002 and fills /sys/firmware/qemu_fw_cfg. */
	if (have_fw_cfg_ko)
		assert_non_null(strstr(log_text, "=== fw_cfg\nby_key"));
	else
		print_message(
		    "# no qemu_fw_cfg.ko in the guest directory: fw_cfg binding not checked\n");
}

static void poweroff_s5(void **state)
{
	need_boot();
	/* poweroff -f: SLP_TYP from \_S5 and SLP_EN written to PM1a_CNT; QEMU exits with 0. */
	assert_int_equal(qemu_status, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tables_found),
	    cmocka_unit_test(fadt_madt_mcfg),
	    cmocka_unit_test(dsdt_devices),
	    cmocka_unit_test(poweroff_s5),
	};
	return cmocka_run_group_tests(tests, boot, cleanup);
}

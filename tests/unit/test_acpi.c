/* Unit tests for vmm/acpi.c: every table's length and checksum, the RSDP/RSDT/XSDT pointer
 * chain, FADT and MADT fields, error returns, and the strong check: iasl (acpica-tools)
 * disassembles the DSDT, FADT, MADT and MCFG without complaint, shows the expected devices
 * and fields, and recompiles them to the same bytes we wrote. */
#include <errno.h>
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

#define GPA  0xe0000
#define SIZE 0x10000

static uint8_t buf[SIZE];

static const struct acpi_virtio_mmio vmmio[] = {
    {.base = 0xd0000000, .size = 0x200, .gsi = 12},
    {.base = 0xd0000200, .size = 0x200, .gsi = 13},
};

static const struct acpi_pci_route routes[] = {
    {.slot = 1, .gsi = {16, 17, 18, 19}},
    {.slot = 2, .gsi = {17, 18, 19, 16}},
    {.slot = 3, .gsi = {18, 19, 16, 17}},
};

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static unsigned rd16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

/* The configuration the pc machine will use, with PCI. */
static void full_config(struct acpi_config *c, unsigned ncpus)
{
	acpi_config_pc_defaults(c, ncpus);
	c->has_pci = true;
	c->ecam_base = 0xb0000000;
	c->pci_io = (struct acpi_window){0, 0x10000};
	c->pci_mmio32 = (struct acpi_window){0xc0000000, 0x3ec00000};
	c->pci_mmio64 = (struct acpi_window){0x8000000000ULL, 0x8000000000ULL};
	c->pci_routes = routes;
	c->npci_routes = 3;
	c->serial[1] = (struct acpi_serial){.port = 0x2f8, .irq = 3};
	c->nserial = 2;
	c->fw_cfg_port = 0x510;
	c->virtio_mmio = vmmio;
	c->nvirtio_mmio = 2;
}

static const struct acpi_table_ref *find(const struct acpi_table_ref *t, int n, const char *sig)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(t[i].sig, sig))
			return &t[i];
	return NULL;
}

static int build_and_list(const struct acpi_config *c, struct acpi_table_ref *t, int *ntables)
{
	uint64_t rsdp = 0;
	memset(buf, 0xa5, sizeof(buf)); /* the builder must not rely on a zeroed buffer */
	int used = acpi_build(c, buf, sizeof(buf), GPA, &rsdp);
	assert_true(used > 0);
	assert_int_equal(rsdp, GPA);
	*ntables = acpi_list_tables(buf, (size_t)used, GPA, t, 16);
	assert_true(*ntables > 0);
	return used;
}

static void check_all_tables(const struct acpi_table_ref *t, int n, int used)
{
	for (int i = 0; i < n; i++) {
		const uint8_t *p = buf + t[i].offset;
		assert_true(t[i].offset + t[i].len <= (size_t)used);
		if (!strcmp(t[i].sig, "RSDP")) {
			assert_int_equal(t[i].offset % 16, 0);
			assert_int_equal(acpi_checksum(p, 20), 0);
			assert_int_equal(acpi_checksum(p, 36), 0);
			assert_int_equal(p[15], 2);
			assert_int_equal(rd32(p + 20), 36);
		} else if (!strcmp(t[i].sig, "FACS")) {
			assert_int_equal((GPA + t[i].offset) % 64, 0);
			assert_int_equal(t[i].len, 64);
		} else {
			assert_int_equal(acpi_checksum(p, t[i].len), 0);
			assert_memory_equal(p + 10, "KESTRL", 6);
			assert_memory_equal(p + 16, "KESTREL ", 8);
		}
	}
}

static void tables_lengths_checksums(void **state)
{
	struct acpi_config c;
	struct acpi_table_ref t[16];
	int n;
	full_config(&c, 4);
	int used = build_and_list(&c, t, &n);
	assert_int_equal(n, 8); /* RSDP RSDT XSDT FACP DSDT FACS APIC MCFG */
	check_all_tables(t, n, used);
	const char *sigs[] = {"RSDP", "RSDT", "XSDT", "FACP", "DSDT", "FACS", "APIC", "MCFG"};
	for (unsigned i = 0; i < 8; i++)
		assert_non_null(find(t, n, sigs[i]));
	assert_int_equal(find(t, n, "FACP")->len, 276);
	assert_int_equal(find(t, n, "APIC")->len, 44 + 4 * 8 + 12 + 2 * 10 + 6);
	assert_int_equal(find(t, n, "MCFG")->len, 60);
	assert_int_equal(find(t, n, "RSDT")->len, 36 + 3 * 4);
	assert_int_equal(find(t, n, "XSDT")->len, 36 + 3 * 8);
	/* RSDT and XSDT point at the same tables, in the same order. */
	const uint8_t *r = buf + find(t, n, "RSDT")->offset, *x = buf + find(t, n, "XSDT")->offset;
	for (int i = 0; i < 3; i++)
		assert_int_equal(rd32(r + 36 + 4 * i), rd64(x + 36 + 8 * i));
	/* Nothing past the returned length was written. */
	for (size_t i = (size_t)used; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xa5);
	print_message("# tables: %d bytes; DSDT %zu, FADT %zu, MADT %zu, MCFG %zu\n", used,
		      find(t, n, "DSDT")->len, find(t, n, "FACP")->len, find(t, n, "APIC")->len,
		      find(t, n, "MCFG")->len);

	/* Without PCI: no MCFG, and the DSDT has no PCI0. */
	acpi_config_pc_defaults(&c, 1);
	used = build_and_list(&c, t, &n);
	assert_int_equal(n, 7);
	check_all_tables(t, n, used);
	assert_null(find(t, n, "MCFG"));
	const struct acpi_table_ref *d = find(t, n, "DSDT");
	assert_null(memmem(buf + d->offset, d->len, "PCI0", 4));
	assert_non_null(memmem(buf + d->offset, d->len, "COM1", 4));
}

static void fadt_fields(void **state)
{
	struct acpi_config c;
	struct acpi_table_ref t[16];
	int n;
	full_config(&c, 2);
	build_and_list(&c, t, &n);
	const uint8_t *f = buf + find(t, n, "FACP")->offset;
	assert_int_equal(f[8], 6); /* revision */
	assert_int_equal(rd32(f + 36), GPA + find(t, n, "FACS")->offset);
	assert_int_equal(rd32(f + 40), GPA + find(t, n, "DSDT")->offset);
	assert_int_equal(rd64(f + 132), 0); /* only one FACS pointer may be set */
	assert_int_equal(rd64(f + 140), rd32(f + 40));
	assert_int_equal(rd16(f + 46), 9); /* SCI_INT */
	assert_int_equal(rd32(f + 48), 0); /* SMI_CMD: ACPI always enabled */
	assert_int_equal(rd32(f + 56), 0x600);
	assert_int_equal(rd32(f + 64), 0x604);
	assert_int_equal(rd32(f + 76), 0x608);
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[91], 4);
	uint32_t flags = rd32(f + 112);
	assert_true(flags & (1u << 10));  /* RESET_REG_SUP */
	assert_false(flags & (1u << 4));  /* PWR_BUTTON clear: fixed power button */
	assert_false(flags & (1u << 20)); /* not HW_REDUCED */
	assert_true(rd16(f + 109) & 2);	  /* IAPC_BOOT_ARCH: 8042 */
	static const uint8_t reset_gas[12] = {1, 8, 0, 1, 0xf9, 0x0c};
	assert_memory_equal(f + 116, reset_gas, 12);
	assert_int_equal(f[128], 6);
	/* X_ blocks agree with the legacy ones. */
	static const uint8_t evt[12] = {1, 32, 0, 2, 0x00, 0x06},
			     cnt[12] = {1, 16, 0, 2, 0x04, 0x06},
			     tmr[12] = {1, 32, 0, 3, 0x08, 0x06};
	assert_memory_equal(f + 148, evt, 12);
	assert_memory_equal(f + 172, cnt, 12);
	assert_memory_equal(f + 208, tmr, 12);
	/* \_S5 carries the SLP_TYP the PM device acts on. */
	const struct acpi_table_ref *d = find(t, n, "DSDT");
	static const uint8_t s5[] = {0x08, '_',	 'S',  '5',  '_',  0x12,
				     0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05};
	assert_non_null(memmem(buf + d->offset, d->len, s5, sizeof(s5)));

	/* No i8042: flag clear; no reset port: RESET_REG_SUP clear. */
	c.i8042 = false;
	c.reset_port = 0;
	build_and_list(&c, t, &n);
	f = buf + find(t, n, "FACP")->offset;
	assert_false(rd16(f + 109) & 2);
	assert_false(rd32(f + 112) & (1u << 10));
}

/* Counts MADT entries by type; checks each entry's length fits. */
static void madt_count(const uint8_t *m, unsigned counts[16])
{
	uint32_t len = rd32(m + 4);
	memset(counts, 0, 16 * sizeof(unsigned));
	for (uint32_t o = 44; o < len;) {
		assert_true(m[o + 1] >= 2 && o + m[o + 1] <= len);
		if (m[o] < 16)
			counts[m[o]]++;
		o += m[o + 1];
	}
}

static void madt_entries(void **state)
{
	struct acpi_config c;
	struct acpi_table_ref t[16];
	unsigned counts[16];
	int n;
	full_config(&c, 8);
	build_and_list(&c, t, &n);
	const uint8_t *m = buf + find(t, n, "APIC")->offset;
	assert_int_equal(rd32(m + 36), 0xfee00000);
	assert_int_equal(rd32(m + 40), 1); /* PCAT_COMPAT */
	madt_count(m, counts);
	assert_int_equal(counts[0], 8);
	assert_int_equal(counts[1], 1);
	assert_int_equal(counts[2], 2);
	assert_int_equal(counts[4], 1);
	for (unsigned i = 0; i < 8; i++) {
		const uint8_t *e = m + 44 + 8 * i;
		assert_int_equal(e[3], i);	  /* APIC id */
		assert_int_equal(rd32(e + 4), 1); /* enabled */
	}
	const uint8_t *io = m + 44 + 64;
	assert_int_equal(io[0], 1);
	assert_int_equal(rd32(io + 4), 0xfec00000);
	assert_int_equal(rd32(io + 8), 0);
	const uint8_t *sci = io + 12, *pit = io + 22;
	assert_int_equal(sci[3], 9);
	assert_int_equal(rd32(sci + 4), 9);
	assert_int_equal(rd16(sci + 8), 0x0d); /* level, active high */
	assert_int_equal(pit[3], 0);
	assert_int_equal(rd32(pit + 4), 2);

	/* 300 vCPUs: APIC ids from 255 need x2APIC entries. */
	full_config(&c, 300);
	build_and_list(&c, t, &n);
	madt_count(buf + find(t, n, "APIC")->offset, counts);
	assert_int_equal(counts[0], 255);
	assert_int_equal(counts[9], 45);
	assert_int_equal(counts[10], 1);
}

static void errors(void **state)
{
	struct acpi_config c;
	uint64_t rsdp;
	full_config(&c, 4);
	int used = acpi_build(&c, buf, sizeof(buf), GPA, &rsdp);
	assert_true(used > 0);
	/* Every size short of what is needed is -ENOSPC, and the exact size works. */
	for (size_t sz = 0; sz < (size_t)used; sz += (sz < 64 ? 1 : 37))
		assert_int_equal(acpi_build(&c, buf, sz, GPA, &rsdp), -ENOSPC);
	assert_int_equal(acpi_build(&c, buf, (size_t)used - 1, GPA, &rsdp), -ENOSPC);
	assert_int_equal(acpi_build(&c, buf, (size_t)used, GPA, &rsdp), used);

	assert_int_equal(acpi_build(&c, buf, sizeof(buf), GPA + 8, &rsdp), -EINVAL);
	assert_int_equal(acpi_build(&c, buf, sizeof(buf), 0xfffff000, &rsdp), -EINVAL);
	struct acpi_config bad = c;
	bad.ncpus = 0;
	assert_int_equal(acpi_build(&bad, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
	bad = c;
	bad.sci_irq = 16;
	assert_int_equal(acpi_build(&bad, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
	static const struct acpi_pci_route bad_gsi = {.slot = 4, .gsi = {16, 17, 18, 24}};
	bad = c;
	bad.pci_routes = &bad_gsi;
	bad.npci_routes = 1;
	assert_int_equal(acpi_build(&bad, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
	static const struct acpi_pci_route bad_slot = {.slot = 32, .gsi = {16, 17, 18, 19}};
	bad.pci_routes = &bad_slot;
	assert_int_equal(acpi_build(&bad, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
	bad = c;
	bad.serial[0].irq = 16;
	assert_int_equal(acpi_build(&bad, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
	static const struct acpi_virtio_mmio bad_mmio = {
	    .base = 0xfffffe00, .size = 0x400, .gsi = 5};
	bad = c;
	bad.virtio_mmio = &bad_mmio;
	bad.nvirtio_mmio = 1;
	assert_int_equal(acpi_build(&bad, buf, sizeof(buf), GPA, &rsdp), -EINVAL);
	bad = c;
	bad.pci_mmio32 = (struct acpi_window){0xf0000000, 0x20000000};
	assert_int_equal(acpi_build(&bad, buf, sizeof(buf), GPA, &rsdp), -EINVAL);

	/* acpi_list_tables on corrupted tables stays inside the buffer (run under ASAN: the copy
	 * is allocated at its exact size). */
	used = acpi_build(&c, buf, sizeof(buf), GPA, &rsdp);
	uint8_t *copy = malloc((size_t)used);
	assert_non_null(copy);
	srand(1);
	for (int iter = 0; iter < 3000; iter++) {
		memcpy(copy, buf, (size_t)used);
		for (int k = 0; k < 1 + iter % 4; k++) {
			/* aim at the pointers and lengths most of the time */
			static const size_t hot[] = {16, 17, 24, 25, 28};
			size_t at = (iter & 1) ? hot[rand() % 5] : (size_t)rand() % (size_t)used;
			copy[at] = (uint8_t)rand();
		}
		struct acpi_table_ref t[16];
		int n = acpi_list_tables(copy, (size_t)used, GPA, t, 16);
		for (int k = 0; k < n; k++)
			assert_true(t[k].offset + t[k].len <= (size_t)used);
	}
	free(copy);

	/* acpi_list_tables on garbage does not read out of bounds. */
	uint8_t junk[64] = "RSD PTR ";
	junk[16] = 0xff;
	assert_int_equal(acpi_list_tables(junk, sizeof(junk), GPA, NULL, 0), -EINVAL);
}

/* ---- iasl ---- */

static char tmpdir[64];

static int run(const char *cmd, char *out, size_t outsz)
{
	char full[512];
	snprintf(full, sizeof(full), "cd %s && %s 2>&1", tmpdir, cmd);
	FILE *p = popen(full, "r");
	if (!p)
		return -1;
	size_t n = fread(out, 1, outsz - 1, p);
	out[n] = 0;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *name, size_t *len)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *p = calloc(1, (size_t)n + 1);
	if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	if (len)
		*len = (size_t)n;
	return p;
}

static void spit(const char *name, const void *p, size_t n)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

static unsigned count_str(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* Disassemble SIG.dat, check the listing has every string in want[], recompile it and compare
 * the bytes after the header (iasl writes its own compiler id) with ours. */
static char *iasl_roundtrip(const struct acpi_table_ref *t, const char *const *want, unsigned nwant)
{
	static char out[16384];
	char cmd[128], name[16];
	snprintf(name, sizeof(name), "%s.dat", t->sig);
	spit(name, buf + t->offset, t->len);
	snprintf(cmd, sizeof(cmd), "iasl -d %s", name);
	int rc = run(cmd, out, sizeof(out));
	if (rc != 0)
		print_message("%s\n", out);
	assert_int_equal(rc, 0);
	snprintf(name, sizeof(name), "%s.dsl", t->sig);
	char *dsl = slurp(name, NULL);
	assert_non_null(dsl);
	assert_null(strstr(dsl, "Incorrect checksum"));
	assert_null(strstr(dsl, "**** ")); /* iasl flags bad fields with asterisks */
	for (unsigned i = 0; i < nwant; i++) {
		if (!strstr(dsl, want[i]))
			print_message("# %s: \"%s\" not in the disassembly\n", t->sig, want[i]);
		assert_non_null(strstr(dsl, want[i]));
	}
	snprintf(cmd, sizeof(cmd), "iasl %s.dsl", t->sig);
	rc = run(cmd, out, sizeof(out));
	if (rc != 0 || !strstr(out, "0 Errors, 0 Warnings"))
		print_message("%s\n", out);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(out, "0 Errors, 0 Warnings"));
	size_t len;
	snprintf(name, sizeof(name), "%s.aml", t->sig);
	char *aml = slurp(name, &len);
	assert_non_null(aml);
	assert_int_equal(len, t->len);
	assert_memory_equal(aml + 36, buf + t->offset + 36, t->len - 36);
	free(aml);
	return dsl;
}

static void iasl_check(void **state)
{
	if (system("command -v iasl >/dev/null 2>&1") != 0) {
		print_message("# iasl not installed (Debian package acpica-tools)\n");
		skip();
	}
	strcpy(tmpdir, "/tmp/kestrel-acpi-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));

	struct acpi_config c;
	struct acpi_table_ref t[16];
	int n;
	full_config(&c, 4);
	c.i8042_aux = true;
	build_and_list(&c, t, &n);

	static const char *const dsdt_want[] = {
	    "Name (_S5, Package (0x04)",
	    "Name (_S0, Package (0x04)",
	    "Scope (_SB)",
	    "Device (C003)",
	    "\"ACPI0007\"",
	    "Device (PCI0)",
	    "EisaId (\"PNP0A08\")",
	    "EisaId (\"PNP0A03\")",
	    "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode",
	    "0x0CF7,             // Range Maximum",
	    "0x0D00,             // Range Minimum",
	    "0xFEBFFFFF,         // Range Maximum",
	    "0x000000FFFFFFFFFF, // Range Maximum",
	    "Name (_PRT, Package (0x0C)",
	    "0x0003FFFF",
	    "Device (MRES)",
	    "EisaId (\"PNP0C02\")",
	    "0x10000000,         // Address Length",
	    "Device (COM1)",
	    "Device (COM2)",
	    "EisaId (\"PNP0501\")",
	    "0x03F8,             // Range Minimum",
	    "0x02F8,             // Range Minimum",
	    "Method (_STA, 0, NotSerialized)",
	    "Device (KBD)",
	    "EisaId (\"PNP0303\")",
	    "Device (MOU)",
	    "EisaId (\"PNP0F13\")",
	    "Device (RTC)",
	    "EisaId (\"PNP0B00\")",
	    "Device (FWCF)",
	    "Name (_HID, \"QEMU0002\")",
	    "0x0510,             // Range Minimum",
	    "Device (VR01)",
	    "Name (_HID, \"LNRO0005\")",
	    "0xD0000200,         // Address Base",
	    "Interrupt (ResourceConsumer, Level, ActiveHigh, Exclusive, ,, )",
	    "0x0000000D,",
	};
	char *dsl =
	    iasl_roundtrip(find(t, n, "DSDT"), dsdt_want, sizeof(dsdt_want) / sizeof(dsdt_want[0]));
	assert_int_equal(count_str(dsl, "Package (0x04)"), 2 + 12);
	free(dsl);

	static const char *const fadt_want[] = {
	    "Revision : 06",
	    "SCI Interrupt : 0009",
	    "SMI Command Port : 00000000",
	    "PM1A Event Block Address : 00000600",
	    "PM1A Control Block Address : 00000604",
	    "PM Timer Block Address : 00000608",
	    "8042 Present on ports 60/64 (V2) : 1",
	    "Control Method Power Button (V1) : 0",
	    "Reset Register Supported (V2) : 1",
	    "Hardware Reduced (V5) : 0",
	    "Address : 0000000000000CF9",
	    "Value to cause reset : 06",
	};
	free(iasl_roundtrip(find(t, n, "FACP"), fadt_want,
			    sizeof(fadt_want) / sizeof(fadt_want[0])));

	static const char *const madt_want[] = {
	    "Local Apic Address : FEE00000",	   "PC-AT Compatibility : 1",
	    "Subtable Type : 01 [I/O APIC]",	   "Address : FEC00000",
	    "Subtable Type : 04 [Local APIC NMI]",
	};
	dsl =
	    iasl_roundtrip(find(t, n, "APIC"), madt_want, sizeof(madt_want) / sizeof(madt_want[0]));
	assert_int_equal(count_str(dsl, "[Processor Local APIC]"), 4);
	assert_int_equal(count_str(dsl, "[Interrupt Source Override]"), 2);
	free(dsl);

	static const char *const mcfg_want[] = {"Base Address : 00000000B0000000",
						"End Bus Number : FF"};
	free(iasl_roundtrip(find(t, n, "MCFG"), mcfg_want, 2));

	/* 300 vCPUs: the x2APIC entries and a DSDT with 300 processor devices. */
	full_config(&c, 300);
	build_and_list(&c, t, &n);
	static const char *const big_want[] = {"Device (C12B)"};
	free(iasl_roundtrip(find(t, n, "DSDT"), big_want, 1));
	dsl = iasl_roundtrip(find(t, n, "APIC"), NULL, 0);
	assert_int_equal(count_str(dsl, "[Processor Local x2APIC]"), 45);
	free(dsl);
}

static int iasl_cleanup(void **state)
{
	char cmd[128];
	if (!tmpdir[0])
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tables_lengths_checksums),
	    cmocka_unit_test(fadt_fields),
	    cmocka_unit_test(madt_entries),
	    cmocka_unit_test(errors),
	    cmocka_unit_test_teardown(iasl_check, iasl_cleanup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

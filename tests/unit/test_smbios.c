/* Unit tests for vmm/smbios.c: parse the entry points and walk the structure table back
 * (types, lengths, string sets, handles, checksums, memory sizes), errors, and decode a
 * dump of it with dmidecode --from-dump when dmidecode is installed. */
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

#include "vmm/smbios.h"

#define GPA  0xf0000
#define SIZE 0x10000

static uint8_t buf[SIZE];

static unsigned rd16(const uint8_t *p)
{
	return p[0] | p[1] << 8;
}

static uint32_t rd32(const uint8_t *p)
{
	return rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

#define MAX_STRUCTS 600

struct parsed {
	unsigned n;
	const uint8_t *s[MAX_STRUCTS]; /* formatted areas */
	const char *strings[MAX_STRUCTS][16];
	unsigned nstr[MAX_STRUCTS];
	size_t max_size;
	size_t table_len;
};

/* Walk the table as dmi_scan does; every structure must be well formed. */
static void parse(const uint8_t *b, int used, struct parsed *out)
{
	memset(out, 0, sizeof(*out));
	assert_memory_equal(b, "_SM3_", 5);
	assert_int_equal(b[6], 0x18);
	assert_int_equal(sum(b, 0x18), 0);
	assert_int_equal(b[7], 3);
	uint64_t addr = rd64(b + 16);
	size_t max = rd32(b + 12);
	assert_true(addr >= GPA && addr - GPA + max <= (uint64_t)used);
	const uint8_t *p = b + (addr - GPA), *endp = p + max;
	uint16_t handles[MAX_STRUCTS];
	for (;;) {
		assert_true(out->n < MAX_STRUCTS);
		assert_true(p + 4 <= endp);
		unsigned len = p[1];
		assert_true(len >= 4 && p + len + 2 <= endp);
		unsigned i = out->n++;
		out->s[i] = p;
		handles[i] = (uint16_t)rd16(p + 2);
		for (unsigned j = 0; j < i; j++)
			assert_int_not_equal(handles[j], handles[i]); /* unique */
		const char *q = (const char *)p + len;
		if (!q[0]) {
			assert_int_equal(q[1], 0); /* no strings: two NULs */
			q += 2;
		} else {
			while (*q) {
				assert_true(out->nstr[i] < 16);
				out->strings[i][out->nstr[i]++] = q;
				q += strlen(q) + 1;
				assert_true((const uint8_t *)q < endp);
			}
			q++;
		}
		size_t ssize = (size_t)((const uint8_t *)q - p);
		if (ssize > out->max_size)
			out->max_size = ssize;
		p = (const uint8_t *)q;
		if (out->s[i][0] == 127)
			break;
	}
	assert_ptr_equal(p, endp); /* type 127 is last and the size is exact */
	out->table_len = max;

	/* The 32-bit entry point describes the same table. */
	const uint8_t *e = b + 32;
	assert_memory_equal(e, "_SM_", 4);
	assert_int_equal(e[5], 0x1f);
	assert_int_equal(sum(e, 0x1f), 0);
	assert_memory_equal(e + 16, "_DMI_", 5);
	assert_int_equal(sum(e + 16, 15), 0);
	assert_int_equal(e[6], 2);
	assert_int_equal(e[7], 8);
	assert_int_equal(rd16(e + 8), out->max_size);
	assert_int_equal(rd16(e + 22), max);
	assert_int_equal(rd32(e + 24), addr);
	assert_int_equal(rd16(e + 28), out->n);
	assert_int_equal(e[30], 0x28);
}

/* The string a formatted-area byte refers to; NULL for 0, fails if out of range. */
static const char *sref(const struct parsed *ps, unsigned i, unsigned off)
{
	unsigned idx = ps->s[i][off];
	if (!idx)
		return NULL;
	assert_true(idx <= ps->nstr[i]);
	return ps->strings[i][idx - 1];
}

static unsigned count_type(const struct parsed *ps, uint8_t type, unsigned *first)
{
	unsigned n = 0;
	for (unsigned i = 0; i < ps->n; i++)
		if (ps->s[i][0] == type) {
			if (!n && first)
				*first = i;
			n++;
		}
	return n;
}

static const uint8_t test_uuid[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
				      0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};

static void machine_config(struct smbios_config *c)
{
	smbios_config_defaults(c);
	c->serial = "KS-0001";
	c->has_uuid = true;
	memcpy(c->uuid, test_uuid, 16);
	c->sockets = 2;
	c->cores = 4;
	c->threads = 2;
	c->cpuid_eax = 0x000a0f10;
	c->cpuid_edx = 0x178bfbff;
	c->ram_below_4g = 3ULL << 30;		     /* 3 GiB, then the PCI hole */
	c->ram_above_4g = (33ULL << 30) + (5 << 20); /* 33 GiB + 5 MiB */
}

static void structures(void **state)
{
	struct smbios_config c;
	struct parsed *ps = malloc(sizeof(*ps));
	unsigned i = 0;
	machine_config(&c);
	memset(buf, 0xa5, sizeof(buf));
	int used = smbios_build(&c, buf, sizeof(buf), GPA);
	assert_true(used > 64);
	parse(buf, used, ps);
	print_message("# SMBIOS: %d bytes, %u structures, table %zu bytes\n", used, ps->n,
		      ps->table_len);

	assert_int_equal(count_type(ps, 0, &i), 1);
	assert_int_equal(ps->s[i][1], 0x18);
	assert_string_equal(sref(ps, i, 4), "Kestrel");
	assert_string_equal(sref(ps, i, 5), KESTREL_VERSION);
	assert_non_null(sref(ps, i, 8));
	assert_true(rd64(ps->s[i] + 0x0a) & (1 << 3)); /* characteristics not supported */
	assert_true(ps->s[i][0x12] & 1);	       /* ACPI */

	assert_int_equal(count_type(ps, 1, &i), 1);
	assert_string_equal(sref(ps, i, 4), "Kestrel");
	assert_string_equal(sref(ps, i, 5), "Kestrel");
	assert_string_equal(sref(ps, i, 7), "KS-0001");
	static const uint8_t wire_uuid[16] = {0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66,
					      0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
	assert_memory_equal(ps->s[i] + 8, wire_uuid, 16);
	assert_int_equal(ps->s[i][0x18], 6); /* power switch */
	assert_null(sref(ps, i, 0x19));	     /* no SKU given: string 0 */

	assert_int_equal(count_type(ps, 3, NULL), 1);
	assert_int_equal(count_type(ps, 4, &i), 2);
	assert_string_equal(sref(ps, i, 4), "CPU 0");
	assert_string_equal(sref(ps, i + 1, 4), "CPU 1");
	assert_int_equal(ps->s[i][0x23], 4);
	assert_int_equal(ps->s[i][0x25], 8);
	assert_int_equal(rd16(ps->s[i] + 0x2e), 8);
	assert_int_equal(rd32(ps->s[i] + 8), 0x000a0f10);

	/* 36 GiB + 5 MiB in 16 GiB DIMMs: 16 + 16 + 4 GiB 5 MiB. */
	assert_int_equal(count_type(ps, 16, &i), 1);
	assert_int_equal(rd16(ps->s[i] + 0x0d), 3);
	assert_int_equal(rd32(ps->s[i] + 7), (36ULL << 20) + 5 * 1024);
	uint16_t array = (uint16_t)rd16(ps->s[i] + 2);
	assert_int_equal(count_type(ps, 17, &i), 3);
	uint64_t mib = 0;
	for (unsigned k = 0; k < 3; k++) {
		assert_int_equal(rd16(ps->s[i + k] + 4), array);
		mib += rd16(ps->s[i + k] + 12);
	}
	assert_int_equal(mib, 36 * 1024 + 5);
	assert_int_equal(count_type(ps, 19, &i), 2);
	assert_int_equal(rd32(ps->s[i] + 4), 0);
	assert_int_equal(rd32(ps->s[i] + 8), (3ULL << 20) - 1);
	assert_int_equal(rd32(ps->s[i + 1] + 4), 4ULL << 20);
	assert_int_equal(rd32(ps->s[i + 1] + 8), (4ULL << 20) + (33ULL << 20) + 5 * 1024 - 1);
	assert_int_equal(count_type(ps, 32, &i), 1);
	assert_int_equal(ps->s[i][10], 0); /* no errors */
	assert_int_equal(count_type(ps, 127, NULL), 1);
	for (size_t k = (size_t)used; k < sizeof(buf); k++)
		assert_int_equal(buf[k], 0xa5);

	/* Minimal machine, no RAM given: no memory structures, still well formed. */
	smbios_config_defaults(&c);
	c.family = ""; /* empty: left out */
	used = smbios_build(&c, buf, sizeof(buf), GPA);
	parse(buf, used, ps);
	assert_int_equal(count_type(ps, 16, NULL), 0);
	assert_int_equal(count_type(ps, 1, &i), 1);
	assert_null(sref(ps, i, 0x1a));
	free(ps);
}

static void large_tables(void **state)
{
	struct smbios_config c;
	struct parsed *ps = malloc(sizeof(*ps));
	machine_config(&c);
	c.sockets = 255;
	c.cores = 300; /* above 255: the byte fields say 0xff, the word fields the count */
	c.threads = 1;
	c.ram_above_4g = 4000ULL << 30;
	int used = smbios_build(&c, buf, sizeof(buf), GPA);
	assert_true(used > 0);
	parse(buf, used, ps);
	unsigned i = 0;
	assert_int_equal(count_type(ps, 4, &i), 255);
	assert_int_equal(ps->s[i][0x23], 0xff);
	assert_int_equal(rd16(ps->s[i] + 0x2a), 300);
	assert_int_equal(count_type(ps, 17, NULL), 251); /* 4003 GiB / 16 GiB, rounded up */
	assert_int_equal(count_type(ps, 16, &i), 1);
	assert_int_equal(rd32(ps->s[i] + 7), 0x80000000); /* >= 2 TiB: extended capacity */
	assert_int_equal(rd64(ps->s[i] + 0x0f), 4003ULL << 30);
	free(ps);
}

static void errors(void **state)
{
	struct smbios_config c;
	machine_config(&c);
	int used = smbios_build(&c, buf, sizeof(buf), GPA);
	assert_true(used > 0);
	for (size_t sz = 0; sz < (size_t)used; sz += 7)
		assert_int_equal(smbios_build(&c, buf, sz, GPA), -ENOSPC);
	assert_int_equal(smbios_build(&c, buf, (size_t)used - 1, GPA), -ENOSPC);
	assert_int_equal(smbios_build(&c, buf, (size_t)used, GPA), used);
	assert_int_equal(smbios_build(&c, buf, sizeof(buf), GPA + 4), -EINVAL);
	struct smbios_config bad = c;
	bad.sockets = 0;
	assert_int_equal(smbios_build(&bad, buf, sizeof(buf), GPA), -EINVAL);
	bad = c;
	bad.ram_below_4g = 5ULL << 30;
	assert_int_equal(smbios_build(&bad, buf, sizeof(buf), GPA), -EINVAL);
	bad = c;
	bad.ram_above_4g = 5ULL << 40;
	assert_int_equal(smbios_build(&bad, buf, sizeof(buf), GPA), -EINVAL);

	uint8_t u[16];
	assert_int_equal(smbios_parse_uuid("00112233-4455-6677-8899-AABBccddeeff", u), 0);
	assert_memory_equal(u, test_uuid, 16);
	assert_int_equal(smbios_parse_uuid("00112233-4455-6677-8899-aabbccddeef", u), -EINVAL);
	assert_int_equal(smbios_parse_uuid("0011223304455-6677-8899-aabbccddeeff", u), -EINVAL);
	assert_int_equal(smbios_parse_uuid("00112233-4455-6677-8899-aabbccddeefg", u), -EINVAL);
}

/* dmidecode --dump-bin format: the entry point at offset 0 with its table address set to 32
 * (and its checksum redone), the structure table at offset 32. */
static void write_dump(const char *path, const uint8_t *b, bool legacy)
{
	uint8_t head[32] = {0};
	const uint8_t *table;
	size_t tlen;
	if (legacy) {
		memcpy(head, b + 32, 0x1f);
		table = b + (rd32(head + 24) - GPA);
		tlen = rd16(head + 22);
		memset(head + 24, 0, 4);
		head[24] = 32;
		head[21] = 0;
		head[21] = (uint8_t)-sum(head + 16, 15);
		head[4] = 0;
		head[4] = (uint8_t)-sum(head, 0x1f);
	} else {
		memcpy(head, b, 0x18);
		table = b + (rd64(head + 16) - GPA);
		tlen = rd32(head + 12);
		memset(head + 16, 0, 8);
		head[16] = 32;
		head[5] = 0;
		head[5] = (uint8_t)-sum(head, 0x18);
	}
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(head, 1, 32, f), 32);
	assert_int_equal(fwrite(table, 1, tlen, f), tlen);
	fclose(f);
}

static char *run_dmidecode(const char *args)
{
	static char out[65536];
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "dmidecode %s 2>&1", args);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	int st = pclose(p);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		print_message("%s\n", out);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return out;
}

static void dmidecode_check(void **state)
{
	const char *dmi = NULL;
	if (!system("command -v dmidecode >/dev/null 2>&1"))
		dmi = "dmidecode";
	else if (!access("/usr/sbin/dmidecode", X_OK))
		dmi = "/usr/sbin/dmidecode";
	if (!dmi) {
		print_message("# dmidecode not installed (Debian package dmidecode)\n");
		skip();
	}
	if (strcmp(dmi, "dmidecode"))
		setenv("PATH", "/usr/sbin:/sbin:/usr/bin:/bin", 1);

	struct smbios_config c;
	machine_config(&c);
	int used = smbios_build(&c, buf, sizeof(buf), GPA);
	assert_true(used > 0);
	char path[] = "/tmp/kestrel-smbios-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);

	static const char *const want[] = {
	    "Vendor: Kestrel",
	    "Version: " KESTREL_VERSION,
	    "System is a virtual machine",
	    "ACPI is supported",
	    "Manufacturer: Kestrel",
	    "Product Name: Kestrel",
	    "Serial Number: KS-0001",
	    "UUID: 00112233-4455-6677-8899-aabbccddeeff",
	    "Wake-up Type: Power Switch",
	    "Socket Designation: CPU 0",
	    "Socket Designation: CPU 1",
	    "Core Count: 4",
	    "Thread Count: 8",
	    "Maximum Capacity: 36",
	    "Number Of Devices: 3",
	    "Size: 16 GB",
	    "Locator: DIMM 2",
	    "Ending Address: 0x000BFFFFFFF",
	    "Starting Address: 0x00100000000",
	    "Status: No errors detected",
	    "End Of Table",
	};
	char args[128];
	for (int legacy = 0; legacy < 2; legacy++) {
		write_dump(path, buf, legacy);
		snprintf(args, sizeof(args), "--from-dump %s", path);
		char *out = run_dmidecode(args);
		for (unsigned k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
			if (!strstr(out, want[k]))
				print_message("# \"%s\" not in dmidecode's output:\n%s\n", want[k],
					      out);
			assert_non_null(strstr(out, want[k]));
		}
		assert_null(strstr(out, "OUT OF SPEC"));
		assert_null(strstr(out, "Invalid"));
		assert_null(strstr(out, "Wrong"));
		assert_null(strstr(out, "<BAD INDEX>"));
		assert_null(strstr(out, "truncated"));
		assert_non_null(
		    strstr(out, legacy ? "SMBIOS 2.8 present" : "SMBIOS 3.0.0 present"));
	}

	/* As the guest finds it: dmidecode scans 0xF0000-0xFFFFF of a 1 MiB memory image for the
	 * anchor, as Linux's dmi_scan does, and follows the real guest-physical table address. */
	static uint8_t mem[1 << 20];
	memcpy(mem + GPA, buf, (size_t)used);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(mem, 1, sizeof(mem), f), sizeof(mem));
	fclose(f);
	snprintf(args, sizeof(args), "--dev-mem %s --no-sysfs", path);
	char *out = run_dmidecode(args);
	assert_non_null(strstr(out, "SMBIOS 3.0.0 present."));
	assert_non_null(strstr(out, "Table at 0x000F0040."));
	assert_non_null(strstr(out, "Product Name: Kestrel"));
	assert_non_null(strstr(out, "End Of Table"));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(structures),
	    cmocka_unit_test(large_tables),
	    cmocka_unit_test(errors),
	    cmocka_unit_test(dmidecode_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SMBIOS table builder, following DMTF DSP0134 (SMBIOS Reference Specification) 3.x:
 * 5.2.1 32-bit entry point (2.1), 5.2.2 64-bit entry point (3.0), 6.1.2 structure header and
 * 6.1.3 text strings, 7.1 BIOS (type 0), 7.2 system (1), 7.4 chassis (3), 7.5 processor (4),
 * 7.17 physical memory array (16), 7.18 memory device (17), 7.20 memory array mapped address
 * (19), 7.33 system boot (32), 7.45 end of table (127).
 *
 * Both entry points describe the same table: Linux looks for "_SM3_" first, older tools for
 * "_SM_". The 32-bit one can only describe a table of up to 64 KiB; past that (hundreds of
 * sockets) only the 64-bit one is written.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define LOG_SUBSYS "smbios"
#include "util/log.h"
#include "vmm/smbios.h"

#define EP3_LEN	  0x18
#define EP2_LEN	  0x1f
#define EP2_OFF	  32
#define TABLE_OFF 64
#define DIMM_MAX  (16ULL << 30) /* one type 17 per 16 GiB, as PC firmware reports DIMMs */
#define KIB	  1024ULL
#define MIB	  (1024ULL * 1024)

/* Handles: type << 8 | instance, so every structure's handle says what it is. */
#define HANDLE(type, n) ((uint16_t)((type) << 8 | (n)))

struct sm {
	uint8_t *buf;
	size_t size, len;
	bool full;
	size_t start; /* current structure */
	unsigned nstr;
	unsigned count;	      /* structures written */
	size_t max_struct;    /* largest structure, with its strings */
	uint8_t scratch[256]; /* where fields go once the buffer is full (an error at the end) */
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return (uint8_t)-s;
}

/* Start a structure with a formatted area of len bytes (header included), zeroed. Returns a
 * pointer to it, or a scratch area once the buffer is full (checked at the end). */
static uint8_t *begin(struct sm *s, uint8_t type, uint8_t len, uint16_t handle)
{
	s->start = s->len;
	s->nstr = 0;
	if (s->full || s->size - s->len < len) {
		s->full = true;
		memset(s->scratch, 0, sizeof(s->scratch));
		return s->scratch;
	}
	uint8_t *p = s->buf + s->len;
	memset(p, 0, len);
	p[0] = type;
	p[1] = len;
	put16(p + 2, handle);
	s->len += len;
	return p;
}

/* Append a string to the current structure; returns its number, 0 for NULL or "". */
static uint8_t str(struct sm *s, const char *v)
{
	if (!v || !*v || s->nstr == 255)
		return 0;
	size_t n = strlen(v) + 1;
	if (s->full || s->size - s->len < n) {
		s->full = true;
		return 0;
	}
	memcpy(s->buf + s->len, v, n);
	s->len += n;
	return (uint8_t)++s->nstr;
}

static void end(struct sm *s)
{
	/* The string set ends with an extra NUL; with no strings the area is two NULs. */
	size_t n = s->nstr ? 1 : 2;
	if (s->full || s->size - s->len < n) {
		s->full = true;
		return;
	}
	memset(s->buf + s->len, 0, n);
	s->len += n;
	s->count++;
	if (s->len - s->start > s->max_struct)
		s->max_struct = s->len - s->start;
}

static const char *or_default(const char *v, const char *def)
{
	return v ? v : def;
}

static void type0_bios(struct sm *s, const struct smbios_config *cfg)
{
	const char *ver = or_default(cfg->bios_version, KESTREL_VERSION);
	unsigned major = 0, minor = 0;
	uint8_t *p = begin(s, 0, 0x18, HANDLE(0, 0));
	p[4] = str(s, or_default(cfg->bios_vendor, "Kestrel"));
	p[5] = str(s, ver);
	put16(p + 6, 0xe800); /* starting segment: nothing is there, it is a field PCs fill */
	p[8] = str(s, or_default(cfg->bios_date, "01/01/2026"));
	p[9] = 0;		    /* ROM size (n + 1) * 64 KiB */
	put64(p + 0x0a, 1ULL << 3); /* BIOS characteristics not supported */
	p[0x12] = 1 << 0;	    /* extension byte 1: ACPI supported */
	p[0x13] = 1 << 4;	    /* extension byte 2: this is a virtual machine */
	if (sscanf(ver, "%u.%u", &major, &minor) == 2 && major < 255 && minor < 255) {
		p[0x14] = (uint8_t)major;
		p[0x15] = (uint8_t)minor;
	} else {
		p[0x14] = p[0x15] = 0xff; /* not supported */
	}
	p[0x16] = p[0x17] = 0xff; /* no embedded controller */
	end(s);
}

static void type1_system(struct sm *s, const struct smbios_config *cfg)
{
	uint8_t *p = begin(s, 1, 0x1b, HANDLE(1, 0));
	p[4] = str(s, or_default(cfg->manufacturer, "Kestrel"));
	p[5] = str(s, or_default(cfg->product, "Kestrel"));
	p[6] = str(s, or_default(cfg->version, KESTREL_VERSION));
	p[7] = str(s, cfg->serial);
	if (cfg->has_uuid) {
		/* Since 2.6 the first three fields are little-endian (section 7.2.1). */
		const uint8_t *u = cfg->uuid;
		uint8_t *d = p + 8;
		d[0] = u[3], d[1] = u[2], d[2] = u[1], d[3] = u[0];
		d[4] = u[5], d[5] = u[4];
		d[6] = u[7], d[7] = u[6];
		memcpy(d + 8, u + 8, 8);
	}
	p[0x18] = 0x06; /* wake-up type: power switch */
	p[0x19] = str(s, cfg->sku);
	p[0x1a] = str(s, or_default(cfg->family, "Kestrel"));
	end(s);
}

static void type3_chassis(struct sm *s, const struct smbios_config *cfg)
{
	uint8_t *p = begin(s, 3, 0x16, HANDLE(3, 0));
	p[4] = str(s, or_default(cfg->manufacturer, "Kestrel"));
	p[5] = 0x01; /* type: other */
	p[6] = str(s, or_default(cfg->version, KESTREL_VERSION));
	p[7] = str(s, cfg->serial);
	p[9] = 0x03;  /* boot-up state: safe */
	p[10] = 0x03; /* power supply state: safe */
	p[11] = 0x03; /* thermal state: safe */
	p[12] = 0x02; /* security status: unknown */
	/* OEM-defined 0, height 0, no power cords given, no contained elements, no SKU */
	end(s);
}

static void type4_cpus(struct sm *s, const struct smbios_config *cfg)
{
	unsigned threads = cfg->cores * cfg->threads;
	uint16_t chars = 1 << 2; /* 64-bit capable */
	if (cfg->cores > 1)
		chars |= 1 << 3; /* multi-core */
	if (cfg->threads > 1)
		chars |= 1 << 4; /* hardware threads */
	for (unsigned i = 0; i < cfg->sockets; i++) {
		char name[24];
		snprintf(name, sizeof(name), "CPU %u", i);
		uint8_t *p = begin(s, 4, 0x30, HANDLE(4, i));
		p[4] = str(s, name);
		p[5] = 0x03; /* central processor */
		p[6] = 0xfe; /* family: see family 2 */
		p[7] = str(s, or_default(cfg->manufacturer, "Kestrel"));
		put32(p + 8, cfg->cpuid_eax);
		put32(p + 12, cfg->cpuid_edx);
		p[0x10] = str(s, "Kestrel virtual CPU");
		put16(p + 0x14, (uint16_t)cfg->cpu_mhz); /* max speed */
		put16(p + 0x16, (uint16_t)cfg->cpu_mhz); /* current speed */
		p[0x18] = 0x41;				 /* socket populated, CPU enabled */
		p[0x19] = 0x01;				 /* upgrade: other */
		put16(p + 0x1a, 0xffff);		 /* no cache information */
		put16(p + 0x1c, 0xffff);
		put16(p + 0x1e, 0xffff);
		p[0x23] = cfg->cores > 255 ? 0xff : (uint8_t)cfg->cores;
		p[0x24] = p[0x23];
		p[0x25] = threads > 255 ? 0xff : (uint8_t)threads;
		put16(p + 0x26, chars);
		put16(p + 0x28, 0x0001); /* family 2: other */
		put16(p + 0x2a, (uint16_t)cfg->cores);
		put16(p + 0x2c, (uint16_t)cfg->cores);
		put16(p + 0x2e, (uint16_t)threads);
		end(s);
	}
}

static unsigned dimm_count(const struct smbios_config *cfg)
{
	uint64_t ram = cfg->ram_below_4g + cfg->ram_above_4g;
	return (unsigned)((ram + DIMM_MAX - 1) / DIMM_MAX);
}

static void type16_17_memory(struct sm *s, const struct smbios_config *cfg)
{
	uint64_t ram = cfg->ram_below_4g + cfg->ram_above_4g;
	unsigned ndimm = dimm_count(cfg);
	uint8_t *p = begin(s, 16, 0x17, HANDLE(16, 0));
	p[4] = 0x03; /* location: system board */
	p[5] = 0x03; /* use: system memory */
	p[6] = 0x03; /* error correction: none */
	if (ram / KIB < 0x80000000ULL) {
		put32(p + 7, (uint32_t)(ram / KIB)); /* maximum capacity, KiB */
	} else {
		put32(p + 7, 0x80000000); /* see extended maximum capacity, bytes */
		put64(p + 0x0f, ram);
	}
	put16(p + 0x0b, 0xfffe); /* no memory error information */
	put16(p + 0x0d, (uint16_t)ndimm);
	end(s);

	uint64_t left = ram;
	for (unsigned i = 0; i < ndimm; i++) {
		uint64_t sz = left < DIMM_MAX ? left : DIMM_MAX;
		uint64_t mib = (sz + MIB - 1) / MIB;
		char loc[24];
		left -= sz;
		snprintf(loc, sizeof(loc), "DIMM %u", i);
		p = begin(s, 17, 0x28, HANDLE(17, i));
		put16(p + 4, HANDLE(16, 0));  /* physical memory array */
		put16(p + 6, 0xfffe);	      /* no error information */
		put16(p + 8, 64);	      /* total width */
		put16(p + 10, 64);	      /* data width */
		put16(p + 12, (uint16_t)mib); /* size in MiB (< 32 GiB, so no extended size) */
		p[14] = 0x09;		      /* form factor: DIMM */
		p[16] = str(s, loc);
		p[18] = 0x07;	       /* memory type: RAM */
		put16(p + 19, 1 << 1); /* type detail: other */
		p[0x17] = str(s, or_default(cfg->manufacturer, "Kestrel"));
		end(s);
	}
}

static void type19_map(struct sm *s, unsigned idx, uint64_t base, uint64_t len)
{
	uint8_t *p = begin(s, 19, 0x1f, HANDLE(19, idx));
	uint64_t last = base + len - 1;
	if (last / KIB < 0xffffffffULL) {
		put32(p + 4, (uint32_t)(base / KIB));
		put32(p + 8, (uint32_t)(last / KIB));
	} else {
		/* extended addresses, in bytes */
		put32(p + 4, 0xffffffff);
		put32(p + 8, 0xffffffff);
		put64(p + 0x0f, base);
		put64(p + 0x17, last);
	}
	put16(p + 12, HANDLE(16, 0));
	p[14] = 1; /* partition width: devices per row */
	end(s);
}

static void type32_boot(struct sm *s)
{
	begin(s, 32, 0x0b, HANDLE(32, 0)); /* reserved bytes and status 0: no errors */
	end(s);
}

static void type127_end(struct sm *s)
{
	begin(s, 127, 4, HANDLE(127, 0));
	end(s);
}

void smbios_config_defaults(struct smbios_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->sockets = cfg->cores = cfg->threads = 1;
	cfg->cpu_mhz = 2000;
}

int smbios_build(const struct smbios_config *cfg, uint8_t *buf, size_t size, uint64_t buf_gpa)
{
	struct sm s = {.buf = buf, .size = size, .len = TABLE_OFF};

	if (!cfg->sockets || !cfg->cores || !cfg->threads || cfg->sockets > 255 ||
	    cfg->cores > 0xfffe || cfg->threads > 0xfffe ||
	    (uint64_t)cfg->cores * cfg->threads > 0xfffe || cfg->cpu_mhz > 0xffff) {
		log_error("SMBIOS: CPU topology or speed out of range");
		return -EINVAL;
	}
	if ((buf_gpa & 15) || buf_gpa + size > 1ULL << 32) {
		log_error("SMBIOS: table area must be 16-byte aligned and below 4 GiB");
		return -EINVAL;
	}
	if (cfg->ram_below_4g > 1ULL << 32 || cfg->ram_above_4g > 255 * DIMM_MAX ||
	    dimm_count(cfg) > 255) {
		log_error(
		    "SMBIOS: RAM sizes out of range (at most 4 GiB below 4 GiB, 4 TiB in all)");
		return -EINVAL;
	}
	if (size < TABLE_OFF)
		return -ENOSPC;
	memset(buf, 0, TABLE_OFF);

	type0_bios(&s, cfg);
	type1_system(&s, cfg);
	type3_chassis(&s, cfg);
	type4_cpus(&s, cfg);
	if (cfg->ram_below_4g + cfg->ram_above_4g) {
		unsigned n19 = 0;
		type16_17_memory(&s, cfg);
		if (cfg->ram_below_4g)
			type19_map(&s, n19++, 0, cfg->ram_below_4g);
		if (cfg->ram_above_4g)
			type19_map(&s, n19++, 1ULL << 32, cfg->ram_above_4g);
	}
	type32_boot(&s);
	type127_end(&s);
	if (s.full) {
		log_error("SMBIOS tables do not fit in %zu bytes", size);
		return -ENOSPC;
	}

	size_t table_len = s.len - TABLE_OFF;
	uint8_t *ep = buf;
	memcpy(ep, "_SM3_", 5);
	ep[6] = EP3_LEN;
	ep[7] = 3; /* SMBIOS 3.0 */
	ep[8] = 0;
	ep[9] = 0;			     /* docrev */
	ep[10] = 0x01;			     /* entry point revision: 3.0 format */
	put32(ep + 12, (uint32_t)table_len); /* structure table maximum size */
	put64(ep + 16, buf_gpa + TABLE_OFF);
	ep[5] = checksum(ep, EP3_LEN);

	if (table_len <= 0xffff && s.count <= 0xffff) {
		ep = buf + EP2_OFF;
		memcpy(ep, "_SM_", 4);
		ep[5] = EP2_LEN;
		ep[6] = 2; /* SMBIOS 2.8 */
		ep[7] = 8;
		put16(ep + 8, (uint16_t)s.max_struct);
		memcpy(ep + 16, "_DMI_", 5);
		put16(ep + 22, (uint16_t)table_len);
		put32(ep + 24, (uint32_t)(buf_gpa + TABLE_OFF));
		put16(ep + 28, (uint16_t)s.count);
		ep[30] = 0x28; /* BCD revision 2.8 */
		ep[21] = checksum(ep + 16, EP2_LEN - 16);
		ep[4] = checksum(ep, EP2_LEN);
	} else {
		log_info("SMBIOS table of %zu bytes: only the 64-bit entry point describes it",
			 table_len);
	}
	return (int)s.len;
}

int smbios_parse_uuid(const char *str_uuid, uint8_t out[16])
{
	/* 8-4-4-4-12 hex digits */
	static const int dash_at[] = {8, 13, 18, 23};
	unsigned n = 0, d = 0;
	if (strlen(str_uuid) != 36)
		return -EINVAL;
	for (unsigned i = 0; i < 36; i++) {
		char c = str_uuid[i];
		if (d < 4 && (int)i == dash_at[d]) {
			if (c != '-')
				return -EINVAL;
			d++;
			continue;
		}
		unsigned v;
		if (c >= '0' && c <= '9')
			v = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = (unsigned)(c - 'A' + 10);
		else
			return -EINVAL;
		if (n % 2 == 0)
			out[n / 2] = (uint8_t)(v << 4);
		else
			out[n / 2] |= (uint8_t)v;
		n++;
	}
	return 0;
}

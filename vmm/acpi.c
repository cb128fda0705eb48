/* ACPI table builder for the pc machine.
 *
 * ACPI 6.4 chapter 5: RSDP (5.2.5.3), system description header (5.2.6), RSDT (5.2.7),
 * XSDT (5.2.8), FADT revision 6 (5.2.9, table 5.9), FACS (5.2.10), MADT (5.2.12: local APIC
 * 5.2.12.2, I/O APIC 5.2.12.3, interrupt source override 5.2.12.5, local APIC NMI 5.2.12.7,
 * local x2APIC 5.2.12.12); MCFG from the PCI Firmware Specification 3.2 section 4.1.2; the
 * DSDT's AML comes from vmm/aml.c. Device names follow the PNP ids Linux's ACPI PNP layer
 * binds (PNP0A08/PNP0A03 PCI root, PNP0501 UART, PNP0303 keyboard, PNP0F13 mouse, PNP0B00
 * RTC, PNP0C02 motherboard resources, QEMU0002 fw_cfg, ACPI0007 processor).
 *
 * The layout in the buffer: RSDP first (16-byte aligned, found by the 0xE0000-0xFFFFF scan),
 * then the FACS (64-byte aligned), DSDT, FADT, MADT, MCFG, RSDT and XSDT. The FADT is full
 * hardware (not HW_REDUCED): PM1a blocks and the PM timer live in hw/acpi_pm.c, SMI_CMD is 0
 * so the OS finds ACPI already enabled, and the power button is the fixed-feature one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define LOG_SUBSYS "acpi"
#include "hw/acpi_pm.h"
#include "util/log.h"
#include "vmm/acpi.h"
#include "vmm/aml.h"

#define HDR_LEN	      36
#define RSDP_LEN      36
#define FACS_LEN      64
#define FADT_LEN      276
#define MAX_CPUS      1024
#define CREATOR_ID    "KSTL"
#define CREATOR_REV   1
#define OEM_REVISION  1
#define PCI_CFG_PORT  0xcf8 /* CONFIG_ADDRESS/CONFIG_DATA, 8 ports, owned by the host bridge */
#define FW_CFG_PORTS  0x0c
#define ECAM_BUS_SIZE (1u << 20)

/* FADT flags (ACPI 6.4 table 5.10) */
#define FADT_WBINVD	   (1u << 0)
#define FADT_PROC_C1	   (1u << 2)
#define FADT_SLP_BUTTON	   (1u << 5) /* set: no fixed sleep button */
#define FADT_RESET_REG_SUP (1u << 10)
/* IA-PC boot architecture flags (table 5.11) */
#define BOOT_LEGACY_DEVICES  (1u << 0)
#define BOOT_8042	     (1u << 1)
#define BOOT_VGA_NOT_PRESENT (1u << 2)
/* MADT */
#define MADT_PCAT_COMPAT (1u << 0)
#define MADT_LAPIC	 0
#define MADT_IOAPIC	 1
#define MADT_ISO	 2
#define MADT_LAPIC_NMI	 4
#define MADT_X2APIC	 9
#define MADT_X2APIC_NMI	 10
#define MPS_EDGE_HIGH	 0x0005 /* polarity 01 active high, trigger 01 edge */
#define MPS_LEVEL_HIGH	 0x000d /* polarity 01 active high, trigger 11 level */
/* Generic address structure (5.2.3.2) */
#define GAS_SYSTEM_IO 1

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

uint8_t acpi_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)-sum;
}

/* A padded, fixed-width identifier (OEM id, table id): shorter is padded with spaces. */
static void put_id(uint8_t *p, const char *s, size_t width)
{
	size_t n = strnlen(s, width);
	memcpy(p, s, n);
	memset(p + n, ' ', width - n);
}

/* Bump allocator over the caller's buffer. */
struct out {
	uint8_t *buf;
	size_t size, len;
	uint64_t gpa;
	const struct acpi_config *cfg;
};

/* Returns the offset of n zeroed bytes aligned to align, or -ENOSPC. */
static long take(struct out *o, size_t n, size_t align)
{
	size_t off = (o->len + align - 1) & ~(align - 1);
	if (off > o->size || n > o->size - off)
		return -ENOSPC;
	memset(o->buf + o->len, 0, off + n - o->len);
	o->len = off + n;
	return (long)off;
}

static uint64_t gpa_of(const struct out *o, long off)
{
	return o->gpa + (uint64_t)off;
}

static void header(struct out *o, long off, const char *sig, uint32_t len, uint8_t rev)
{
	uint8_t *p = o->buf + off;
	memcpy(p, sig, 4);
	put32(p + 4, len);
	p[8] = rev;
	put_id(p + 10, o->cfg->oem_id ? o->cfg->oem_id : "KESTRL", 6);
	put_id(p + 16, o->cfg->oem_table_id ? o->cfg->oem_table_id : "KESTREL ", 8);
	put32(p + 24, OEM_REVISION);
	memcpy(p + 28, CREATOR_ID, 4);
	put32(p + 32, CREATOR_REV);
}

static void finish(struct out *o, long off)
{
	uint8_t *p = o->buf + off;
	p[9] = 0;
	p[9] = acpi_checksum(p, get32(p + 4));
}

static void gas_io(uint8_t *p, uint16_t port, uint8_t bits, uint8_t access)
{
	p[0] = GAS_SYSTEM_IO;
	p[1] = bits;
	p[2] = 0;      /* bit offset */
	p[3] = access; /* 1 byte, 2 word, 3 dword */
	put64(p + 4, port);
}

/* ---- DSDT ---- */

static void aml_named_int(struct aml *a, const char *name, uint64_t v)
{
	aml_name(a, name);
	aml_integer(a, v);
}

static void aml_hid(struct aml *a, const char *eisaid)
{
	aml_name(a, "_HID");
	aml_eisaid(a, eisaid);
}

static void dsdt_sleep_states(struct aml *a, const struct acpi_config *cfg)
{
	/* \_Sx: Package {SLP_TYPa, SLP_TYPb, reserved, reserved} (section 7.4.2) */
	const struct {
		const char *name;
		uint8_t typ;
	} states[] = {{"_S0", ACPI_PM_SLP_TYP_S0}, {"_S5", cfg->s5_slp_typ}};
	for (unsigned i = 0; i < 2; i++) {
		aml_name(a, states[i].name);
		aml_package_begin(a);
		aml_integer(a, states[i].typ);
		aml_integer(a, states[i].typ);
		aml_integer(a, 0);
		aml_integer(a, 0);
		aml_end(a);
	}
}

static void dsdt_pci_crs(struct aml *a, const struct acpi_config *cfg)
{
	aml_name(a, "_CRS");
	aml_rt_begin(a);
	aml_rt_word_bus(a, cfg->ecam_bus_start, cfg->ecam_bus_end);
	if (cfg->pci_io.size) {
		uint64_t lo = cfg->pci_io.base, hi = cfg->pci_io.base + cfg->pci_io.size - 1;
		if (lo <= PCI_CFG_PORT + 7 && hi >= PCI_CFG_PORT) {
			/* The host bridge decodes CONFIG_ADDRESS/DATA itself: a consumer range. */
			aml_rt_io(a, PCI_CFG_PORT, 8);
			if (lo < PCI_CFG_PORT)
				aml_rt_word_io(a, (uint16_t)lo, PCI_CFG_PORT - 1);
			if (hi > PCI_CFG_PORT + 7)
				aml_rt_word_io(a, PCI_CFG_PORT + 8, (uint16_t)hi);
		} else {
			aml_rt_word_io(a, (uint16_t)lo, (uint16_t)hi);
		}
	}
	if (cfg->pci_mmio32.size)
		aml_rt_dword_mem(a, (uint32_t)cfg->pci_mmio32.base,
				 (uint32_t)(cfg->pci_mmio32.base + cfg->pci_mmio32.size - 1),
				 false);
	if (cfg->pci_mmio64.size)
		aml_rt_qword_mem(a, cfg->pci_mmio64.base,
				 cfg->pci_mmio64.base + cfg->pci_mmio64.size - 1, false);
	aml_end(a);
}

static void dsdt_pci_prt(struct aml *a, const struct acpi_config *cfg)
{
	/* _PRT (section 6.2.13): {Address = slot << 16 | 0xffff, Pin 0-3, Source 0, GSI}: with
	 * a zero Source the entry names a global system interrupt, level/active-low. */
	aml_name(a, "_PRT");
	aml_package_begin(a);
	for (unsigned r = 0; r < cfg->npci_routes; r++) {
		const struct acpi_pci_route *rt = &cfg->pci_routes[r];
		for (unsigned pin = 0; pin < 4; pin++) {
			aml_package_begin(a);
			aml_integer(a, (uint64_t)rt->slot << 16 | 0xffff);
			aml_integer(a, pin);
			aml_integer(a, 0);
			aml_integer(a, rt->gsi[pin]);
			aml_end(a);
		}
	}
	aml_end(a);
}

static void dsdt_pci(struct aml *a, const struct acpi_config *cfg)
{
	aml_device_begin(a, "PCI0");
	aml_hid(a, "PNP0A08"); /* PCI Express root... */
	aml_name(a, "_CID");
	aml_eisaid(a, "PNP0A03"); /* ...compatible with a plain PCI root bus */
	aml_named_int(a, "_UID", 0);
	aml_named_int(a, "_SEG", 0);
	aml_named_int(a, "_BBN", cfg->ecam_bus_start);
	dsdt_pci_crs(a, cfg);
	if (cfg->npci_routes)
		dsdt_pci_prt(a, cfg);
	aml_end(a);

	if (cfg->ecam_base) {
		/* Linux uses MCFG only if the ECAM range is reserved by the firmware, in the e820
		 * map or as a motherboard resource; this is the latter. */
		uint64_t base = cfg->ecam_base + (uint64_t)cfg->ecam_bus_start * ECAM_BUS_SIZE;
		uint64_t len =
		    (uint64_t)(cfg->ecam_bus_end - cfg->ecam_bus_start + 1) * ECAM_BUS_SIZE;
		aml_device_begin(a, "MRES");
		aml_hid(a, "PNP0C02");
		aml_named_int(a, "_UID", 1);
		aml_name(a, "_CRS");
		aml_rt_begin(a);
		if (base + len <= 1ULL << 32)
			aml_rt_mem32_fixed(a, (uint32_t)base, (uint32_t)len, true);
		else
			aml_rt_qword_mem(a, base, base + len - 1, false);
		aml_end(a);
		aml_end(a);
	}
}

static void dsdt_legacy(struct aml *a, const struct acpi_config *cfg)
{
	for (unsigned i = 0; i < cfg->nserial; i++) {
		char name[5];
		snprintf(name, sizeof(name), "COM%u", (i + 1) % 10);
		aml_device_begin(a, name);
		aml_hid(a, "PNP0501");
		aml_named_int(a, "_UID", i + 1);
		aml_method_begin(a, "_STA", 0, false);
		aml_return(a);
		aml_integer(a, 0x0f); /* present, enabled, shown, functioning */
		aml_end(a);
		aml_name(a, "_CRS");
		aml_rt_begin(a);
		aml_rt_io(a, cfg->serial[i].port, 8);
		aml_rt_irq(a, cfg->serial[i].irq);
		aml_end(a);
		aml_end(a);
	}
	if (cfg->i8042) {
		aml_device_begin(a, "KBD");
		aml_hid(a, "PNP0303");
		aml_name(a, "_CRS");
		aml_rt_begin(a);
		aml_rt_io(a, 0x60, 1);
		aml_rt_io(a, 0x64, 1);
		aml_rt_irq(a, 1);
		aml_end(a);
		aml_end(a);
	}
	if (cfg->i8042 && cfg->i8042_aux) {
		aml_device_begin(a, "MOU");
		aml_hid(a, "PNP0F13");
		aml_name(a, "_CRS");
		aml_rt_begin(a);
		aml_rt_irq(a, 12);
		aml_end(a);
		aml_end(a);
	}
	if (cfg->rtc) {
		aml_device_begin(a, "RTC");
		aml_hid(a, "PNP0B00");
		aml_name(a, "_CRS");
		aml_rt_begin(a);
		aml_rt_io(a, 0x70, 2);
		aml_rt_irq(a, 8);
		aml_end(a);
		aml_end(a);
	}
	if (cfg->fw_cfg_port) {
		aml_device_begin(a, "FWCF");
		aml_name(a, "_HID");
		aml_string(a, "QEMU0002");
		aml_named_int(a, "_STA", 0x0b); /* present, enabled, functioning, not shown */
		aml_name(a, "_CRS");
		aml_rt_begin(a);
		aml_rt_io(a, cfg->fw_cfg_port, FW_CFG_PORTS);
		aml_end(a);
		aml_end(a);
	}
}

static void dsdt_virtio_mmio(struct aml *a, const struct acpi_config *cfg)
{
	for (unsigned i = 0; i < cfg->nvirtio_mmio; i++) {
		const struct acpi_virtio_mmio *v = &cfg->virtio_mmio[i];
		char name[5];
		snprintf(name, sizeof(name), "VR%02u", i % 100);
		aml_device_begin(a, name);
		aml_name(a, "_HID");
		aml_string(a, "LNRO0005");
		aml_named_int(a, "_UID", i);
		aml_name(a, "_CRS");
		aml_rt_begin(a);
		aml_rt_mem32_fixed(a, v->base, v->size, true);
		aml_rt_ext_irq(a, v->gsi, true, false, false);
		aml_end(a);
		aml_end(a);
	}
}

static void dsdt_cpus(struct aml *a, const struct acpi_config *cfg)
{
	/* Processor devices whose _UID matches the MADT's processor UIDs. */
	for (unsigned i = 0; i < cfg->ncpus; i++) {
		char name[5];
		snprintf(name, sizeof(name), "C%03X", i & 0xfff); /* MAX_CPUS fits */
		aml_device_begin(a, name);
		aml_name(a, "_HID");
		aml_string(a, "ACPI0007");
		aml_named_int(a, "_UID", i);
		aml_end(a);
	}
}

static long build_dsdt(struct out *o)
{
	const struct acpi_config *cfg = o->cfg;
	struct aml a;
	long off;

	aml_init(&a);
	dsdt_sleep_states(&a, cfg);
	aml_scope_begin(&a, "_SB"); /* at the root: no \\ needed */
	dsdt_cpus(&a, cfg);
	if (cfg->has_pci)
		dsdt_pci(&a, cfg);
	dsdt_legacy(&a, cfg);
	dsdt_virtio_mmio(&a, cfg);
	aml_end(&a);
	int ret = aml_status(&a);
	if (ret) {
		log_error("building the DSDT failed: %s", strerror(-ret));
		aml_free(&a);
		return ret;
	}
	off = take(o, HDR_LEN + a.len, 16);
	if (off >= 0) {
		/* revision 2: integers are 64 bits */
		header(o, off, "DSDT", (uint32_t)(HDR_LEN + a.len), 2);
		memcpy(o->buf + off + HDR_LEN, a.data, a.len);
		finish(o, off);
	}
	aml_free(&a);
	return off;
}

/* ---- fixed tables ---- */

static long build_facs(struct out *o)
{
	long off = take(o, FACS_LEN, 64);
	if (off < 0)
		return off;
	uint8_t *p = o->buf + off;
	memcpy(p, "FACS", 4);
	put32(p + 4, FACS_LEN);
	p[32] = 2; /* version */
	return off;
}

static long build_fadt(struct out *o, long facs, long dsdt)
{
	const struct acpi_config *cfg = o->cfg;
	long off = take(o, FADT_LEN, 16);
	if (off < 0)
		return off;
	uint8_t *p = o->buf + off;
	uint32_t flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON; /* PWR_BUTTON clear: fixed */
	uint16_t boot = BOOT_VGA_NOT_PRESENT;

	header(o, off, "FACP", FADT_LEN, 6);
	put32(p + 36, (uint32_t)gpa_of(o, facs));
	put32(p + 40, (uint32_t)gpa_of(o, dsdt));
	p[45] = 0; /* preferred PM profile: unspecified */
	put16(p + 46, cfg->sci_irq);
	put32(p + 48, 0); /* SMI_CMD: no SMM, ACPI is always enabled; ACPI_ENABLE/DISABLE 0 */
	put32(p + 56, cfg->pm1a_evt_port);
	put32(p + 64, cfg->pm1a_cnt_port);
	put32(p + 76, cfg->pm_tmr_port);
	p[88] = ACPI_PM_EVT_LEN;
	p[89] = ACPI_PM_CNT_LEN;
	p[91] = ACPI_PM_TMR_LEN;
	put16(p + 96, 101);  /* P_LVL2_LAT > 100: C2 not supported */
	put16(p + 98, 1001); /* P_LVL3_LAT > 1000: C3 not supported */
	p[108] = cfg->rtc_century;
	if (cfg->i8042)
		boot |= BOOT_8042;
	if (cfg->i8042 || cfg->rtc || cfg->nserial)
		boot |= BOOT_LEGACY_DEVICES;
	put16(p + 109, boot);
	if (cfg->reset_port) {
		flags |= FADT_RESET_REG_SUP;
		gas_io(p + 116, cfg->reset_port, 8, 1);
		p[128] = cfg->reset_value;
	}
	put32(p + 112, flags);
	p[131] = 0; /* FADT minor version: 6.0 */
	/* X_FIRMWARE_CTRL stays 0: the spec allows only one of the two FACS pointers. */
	put64(p + 140, gpa_of(o, dsdt));
	gas_io(p + 148, cfg->pm1a_evt_port, 8 * ACPI_PM_EVT_LEN, 2);
	gas_io(p + 172, cfg->pm1a_cnt_port, 8 * ACPI_PM_CNT_LEN, 2);
	gas_io(p + 208, cfg->pm_tmr_port, 8 * ACPI_PM_TMR_LEN, 3);
	memcpy(p + 268, "KESTREL ", 8); /* hypervisor vendor identity */
	finish(o, off);
	return off;
}

static long build_madt(struct out *o)
{
	const struct acpi_config *cfg = o->cfg;
	unsigned n_x2 = cfg->ncpus > 255 ? cfg->ncpus - 255 : 0;
	unsigned n_x = cfg->ncpus - n_x2;
	/* header + LAPIC address + flags, LAPICs, x2APICs, IOAPIC, 2 overrides, NMIs */
	unsigned n_iso = cfg->irq0_to_gsi2 ? 2 : 1;
	size_t len = HDR_LEN + 8 + 8 * n_x + 16 * n_x2 + 12 + 10 * n_iso + 6 + (n_x2 ? 12 : 0);
	long off = take(o, len, 16);
	if (off < 0)
		return off;
	uint8_t *p = o->buf + off, *e = p + HDR_LEN + 8;

	header(o, off, "APIC", (uint32_t)len, 4);
	put32(p + 36, cfg->lapic_addr);
	put32(p + 40, MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < cfg->ncpus; i++) {
		if (i < 255) { /* APIC id 0xff is the broadcast id: x2APIC entries from there */
			e[0] = MADT_LAPIC;
			e[1] = 8;
			e[2] = (uint8_t)i; /* processor UID */
			e[3] = (uint8_t)i; /* APIC id */
			put32(e + 4, 1);   /* enabled */
			e += 8;
		} else {
			e[0] = MADT_X2APIC;
			e[1] = 16;
			put32(e + 4, i); /* x2APIC id */
			put32(e + 8, 1);
			put32(e + 12, i); /* UID */
			e += 16;
		}
	}
	e[0] = MADT_IOAPIC;
	e[1] = 12;
	e[2] = cfg->ioapic_id;
	put32(e + 4, cfg->ioapic_addr);
	put32(e + 8, cfg->ioapic_gsi_base);
	e += 12;
	/* The SCI is level, active high; the PIT's IRQ 0 is wired to IOAPIC pin 2. */
	const struct {
		uint8_t irq;
		uint32_t gsi;
		uint16_t flags;
	} iso[2] = {{cfg->sci_irq, cfg->sci_irq, MPS_LEVEL_HIGH}, {0, 2, MPS_EDGE_HIGH}};
	for (unsigned i = 0; i < n_iso; i++) {
		e[0] = MADT_ISO;
		e[1] = 10;
		e[2] = 0; /* ISA */
		e[3] = iso[i].irq;
		put32(e + 4, iso[i].gsi);
		put16(e + 8, iso[i].flags);
		e += 10;
	}
	/* LINT1 of every processor is NMI. */
	e[0] = MADT_LAPIC_NMI;
	e[1] = 6;
	e[2] = 0xff; /* all processors */
	put16(e + 3, 0);
	e[5] = 1; /* LINT1 */
	e += 6;
	if (n_x2) {
		e[0] = MADT_X2APIC_NMI;
		e[1] = 12;
		put32(e + 4, 0xffffffff);
		e[8] = 1;
		e += 12;
	}
	finish(o, off);
	return off;
}

static long build_mcfg(struct out *o)
{
	const struct acpi_config *cfg = o->cfg;
	size_t len = HDR_LEN + 8 + 16;
	long off = take(o, len, 16);
	if (off < 0)
		return off;
	uint8_t *p = o->buf + off;
	header(o, off, "MCFG", (uint32_t)len, 1);
	put64(p + 44, cfg->ecam_base); /* the address of bus 0, even if the range starts later */
	put16(p + 52, 0);	       /* segment */
	p[54] = cfg->ecam_bus_start;
	p[55] = cfg->ecam_bus_end;
	finish(o, off);
	return off;
}

static long build_rsdt(struct out *o, const long *tables, unsigned n, bool x)
{
	unsigned w = x ? 8 : 4;
	size_t len = HDR_LEN + (size_t)w * n;
	long off = take(o, len, 16);
	if (off < 0)
		return off;
	header(o, off, x ? "XSDT" : "RSDT", (uint32_t)len, 1);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = o->buf + off + HDR_LEN + (size_t)w * i;
		if (x)
			put64(e, gpa_of(o, tables[i]));
		else
			put32(e, (uint32_t)gpa_of(o, tables[i]));
	}
	finish(o, off);
	return off;
}

/* NULL if the configuration can be described, else what is wrong with it. */
static const char *check_config(const struct acpi_config *cfg, size_t size, uint64_t gpa)
{
	if (cfg->ncpus < 1 || cfg->ncpus > MAX_CPUS)
		return "number of vCPUs out of range";
	if ((gpa & 15) || gpa + size > 1ULL << 32)
		return "table area not 16-byte aligned or not below 4 GiB";
	if (cfg->sci_irq > 15 || !cfg->pm1a_evt_port || !cfg->pm1a_cnt_port || !cfg->pm_tmr_port)
		return "SCI IRQ above 15 or a PM block port missing";
	if (cfg->s5_slp_typ > 7 || cfg->ioapic_pins < 16 || cfg->ioapic_pins > 240)
		return "SLP_TYP or IOAPIC pin count out of range";
	if (cfg->nserial > ACPI_MAX_SERIAL)
		return "too many serial ports";
	for (unsigned i = 0; i < cfg->nserial; i++)
		if (cfg->serial[i].irq > 15 || cfg->serial[i].port > 0xfff8)
			return "serial port address or IRQ out of range";
	if (cfg->nvirtio_mmio > ACPI_MAX_VIRTIO_MMIO || (cfg->nvirtio_mmio && !cfg->virtio_mmio))
		return "too many virtio-mmio devices";
	for (unsigned i = 0; i < cfg->nvirtio_mmio; i++) {
		const struct acpi_virtio_mmio *v = &cfg->virtio_mmio[i];
		if (!v->size || (uint64_t)v->base + v->size > 1ULL << 32 ||
		    v->gsi < cfg->ioapic_gsi_base ||
		    v->gsi >= cfg->ioapic_gsi_base + cfg->ioapic_pins)
			return "virtio-mmio device range or GSI out of range";
	}
	if (!cfg->has_pci)
		return NULL;
	if (cfg->ecam_bus_end < cfg->ecam_bus_start)
		return "PCI bus range empty";
	if (cfg->pci_io.size && cfg->pci_io.base + cfg->pci_io.size > 0x10000)
		return "PCI I/O window beyond 0xffff";
	if (cfg->pci_mmio32.size && cfg->pci_mmio32.base + cfg->pci_mmio32.size > 1ULL << 32)
		return "PCI 32-bit window beyond 4 GiB";
	if (cfg->pci_mmio64.size &&
	    cfg->pci_mmio64.base + cfg->pci_mmio64.size < cfg->pci_mmio64.base)
		return "PCI 64-bit window wraps";
	if (cfg->npci_routes > 32 || (cfg->npci_routes && !cfg->pci_routes))
		return "too many PCI routes";
	for (unsigned r = 0; r < cfg->npci_routes; r++) {
		if (cfg->pci_routes[r].slot > 31)
			return "PCI route slot above 31";
		for (unsigned pin = 0; pin < 4; pin++) {
			uint32_t gsi = cfg->pci_routes[r].gsi[pin];
			if (gsi < cfg->ioapic_gsi_base ||
			    gsi >= cfg->ioapic_gsi_base + cfg->ioapic_pins)
				return "PCI route GSI not an IOAPIC input";
		}
	}
	return NULL;
}

void acpi_config_pc_defaults(struct acpi_config *cfg, unsigned ncpus)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ncpus = ncpus;
	cfg->lapic_addr = 0xfee00000;
	cfg->ioapic_id = 0; /* the in-kernel IOAPIC's id; APIC ids of vCPUs may share it */
	cfg->ioapic_addr = 0xfec00000;
	cfg->ioapic_gsi_base = 0;
	cfg->ioapic_pins = 24;
	cfg->irq0_to_gsi2 = true;
	cfg->pm1a_evt_port = ACPI_PM_EVT_PORT;
	cfg->pm1a_cnt_port = ACPI_PM_CNT_PORT;
	cfg->pm_tmr_port = ACPI_PM_TMR_PORT;
	cfg->sci_irq = ACPI_PM_SCI_IRQ;
	cfg->reset_port = ACPI_PM_RESET_PORT;
	cfg->reset_value = ACPI_PM_RESET_VALUE;
	cfg->s5_slp_typ = ACPI_PM_SLP_TYP_S5;
	cfg->rtc_century = 0x32;
	cfg->serial[0] = (struct acpi_serial){.port = 0x3f8, .irq = 4};
	cfg->nserial = 1;
	cfg->i8042 = true;
	cfg->rtc = true;
	cfg->ecam_bus_start = 0;
	cfg->ecam_bus_end = 255;
}

int acpi_build(const struct acpi_config *cfg, uint8_t *buf, size_t size, uint64_t buf_gpa,
	       uint64_t *rsdp_gpa)
{
	struct out o = {.buf = buf, .size = size, .gpa = buf_gpa, .cfg = cfg};
	long rsdp = 0, facs = 0, dsdt = 0, fadt = 0, madt = 0, mcfg = 0, rsdt = 0, xsdt = 0;
	long tables[3];
	unsigned n = 0;

	const char *why = check_config(cfg, size, buf_gpa);
	if (why) {
		log_error("cannot build ACPI tables: %s", why);
		return -EINVAL;
	}
	if ((rsdp = take(&o, RSDP_LEN, 16)) < 0 || (facs = build_facs(&o)) < 0 ||
	    (dsdt = build_dsdt(&o)) < 0 || (fadt = build_fadt(&o, facs, dsdt)) < 0 ||
	    (madt = build_madt(&o)) < 0)
		goto err_space;
	tables[n++] = fadt;
	tables[n++] = madt;
	if (cfg->has_pci && cfg->ecam_base) {
		if ((mcfg = build_mcfg(&o)) < 0)
			goto err_space;
		tables[n++] = mcfg;
	}
	if ((rsdt = build_rsdt(&o, tables, n, false)) < 0 ||
	    (xsdt = build_rsdt(&o, tables, n, true)) < 0)
		goto err_space;

	uint8_t *p = buf + rsdp;
	memcpy(p, "RSD PTR ", 8);
	put_id(p + 9, cfg->oem_id ? cfg->oem_id : "KESTRL", 6);
	p[15] = 2; /* revision: ACPI 2.0+ with XSDT */
	put32(p + 16, (uint32_t)gpa_of(&o, rsdt));
	put32(p + 20, RSDP_LEN);
	put64(p + 24, gpa_of(&o, xsdt));
	p[8] = acpi_checksum(p, 20);
	p[32] = acpi_checksum(p, RSDP_LEN);
	if (rsdp_gpa)
		*rsdp_gpa = gpa_of(&o, rsdp);
	log_debug("ACPI tables: %zu bytes at 0x%llx", o.len, (unsigned long long)buf_gpa);
	return (int)o.len;

err_space:
	/* build_dsdt() reports its own -EINVAL/-ENOMEM; everything else is a full buffer. */
	if (dsdt == -EINVAL || dsdt == -ENOMEM || dsdt == -E2BIG)
		return (int)dsdt;
	log_error("ACPI tables do not fit in %zu bytes", size);
	return -ENOSPC;
}

/* ---- reading a built buffer back ---- */

static int add_ref(const uint8_t *buf, size_t size, uint64_t gpa, uint64_t addr,
		   struct acpi_table_ref *out, unsigned max, unsigned *n, bool facs)
{
	if (addr < gpa || addr - gpa > size || size - (addr - gpa) < (facs ? 8 : HDR_LEN))
		return -EINVAL;
	size_t off = (size_t)(addr - gpa);
	uint32_t len = get32(buf + off + 4);
	if (len < (facs ? 8 : HDR_LEN) || len > size - off)
		return -EINVAL;
	if (*n < max) {
		memcpy(out[*n].sig, buf + off, 4);
		out[*n].sig[4] = 0;
		out[*n].offset = off;
		out[*n].len = len;
	}
	(*n)++;
	return 0;
}

int acpi_list_tables(const uint8_t *buf, size_t size, uint64_t buf_gpa, struct acpi_table_ref *out,
		     unsigned max)
{
	unsigned n = 0;
	if (size < RSDP_LEN || memcmp(buf, "RSD PTR ", 8))
		return -EINVAL;
	if (max) {
		memcpy(out[0].sig, "RSDP", 5);
		out[0].offset = 0;
		out[0].len = RSDP_LEN;
	}
	n = 1;
	if (add_ref(buf, size, buf_gpa, get32(buf + 16), out, max, &n, false))
		return -EINVAL;
	uint64_t xsdt = get64(buf + 24);
	if (add_ref(buf, size, buf_gpa, xsdt, out, max, &n, false))
		return -EINVAL;
	size_t xo = (size_t)(xsdt - buf_gpa);
	uint32_t xlen = get32(buf + xo + 4);
	for (size_t e = HDR_LEN; e + 8 <= xlen; e += 8) {
		uint64_t addr = get64(buf + xo + e);
		if (add_ref(buf, size, buf_gpa, addr, out, max, &n, false))
			return -EINVAL;
		size_t to = (size_t)(addr - buf_gpa);
		if (!memcmp(buf + to, "FACP", 4) && get32(buf + to + 4) >= 148) {
			uint64_t facs = get64(buf + to + 132);
			if (!facs)
				facs = get32(buf + to + 36);
			if (add_ref(buf, size, buf_gpa, get64(buf + to + 140), out, max, &n,
				    false) ||
			    add_ref(buf, size, buf_gpa, facs, out, max, &n, true))
				return -EINVAL;
		}
	}
	return (int)(n < max ? n : max);
}

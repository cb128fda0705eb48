/* ACPI tables for the pc machine: RSDP, RSDT, XSDT, FADT, FACS, MADT, MCFG and a DSDT.
 *
 * ACPI 6.4 chapter 5 (5.2.5 RSDP, 5.2.7 RSDT, 5.2.8 XSDT, 5.2.9 FADT, 5.2.10 FACS,
 * 5.2.12 MADT) and the PCI Firmware Specification 3.2 section 4.1.2 (MCFG). The machine
 * describes what it has in struct acpi_config; acpi_build() turns it into tables laid out in
 * one buffer that the guest sees at a given guest-physical address.
 */
#ifndef KESTREL_VMM_ACPI_H
#define KESTREL_VMM_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_SERIAL 4

struct acpi_serial {
	uint16_t port; /* 8 ports from here */
	uint8_t irq;   /* ISA IRQ, edge, active high */
};

/* A PCI slot's INTA#-INTD# wired to IOAPIC inputs (for _PRT). */
struct acpi_pci_route {
	uint8_t slot;	 /* device number 0-31 on bus 0 */
	uint32_t gsi[4]; /* pins A, B, C, D: level, active low, as PCI INTx lines are */
};

struct acpi_window {
	uint64_t base, size; /* size 0: absent */
};

#define ACPI_MAX_VIRTIO_MMIO 32

/* A virtio-mmio transport: Linux binds these only from ACPI (LNRO0005) or the command line,
 * and the guest kernel has the command-line way turned off. */
struct acpi_virtio_mmio {
	uint32_t base, size;
	uint32_t gsi; /* level, active high */
};

struct acpi_config {
	unsigned ncpus; /* APIC ids 0..ncpus-1, all enabled */
	uint32_t lapic_addr;
	uint8_t ioapic_id;
	uint32_t ioapic_addr, ioapic_gsi_base;
	unsigned ioapic_pins;
	/* ISA IRQ 0 (the PIT) is wired to IOAPIC input 2, as on PCs (an interrupt source
	 * override). The irqchip's GSI routing must agree: GSI 2 for the PIT. */
	bool irq0_to_gsi2;

	/* Fixed hardware (hw/acpi_pm.h) */
	uint16_t pm1a_evt_port, pm1a_cnt_port, pm_tmr_port;
	uint8_t sci_irq;     /* ISA IRQ; mapped to the same GSI, level, active high */
	uint16_t reset_port; /* 0: no reset register */
	uint8_t reset_value;
	uint8_t s5_slp_typ;  /* what PM1_CNT.SLP_TYP means S5 to the PM device */
	uint8_t rtc_century; /* CMOS index of the century byte, 0 if none */

	/* PCI root bridge \_SB.PCI0 (absent when has_pci is false). */
	bool has_pci;
	uint64_t ecam_base;		      /* 0: no MCFG */
	uint8_t ecam_bus_start, ecam_bus_end; /* also the root's bus range */
	struct acpi_window pci_io;	      /* I/O ports; 0xcf8-0xcff is cut out for the host */
	struct acpi_window pci_mmio32;	      /* the hole below 4 GiB */
	struct acpi_window pci_mmio64;	      /* optional, above RAM */
	const struct acpi_pci_route *pci_routes;
	unsigned npci_routes;

	/* Legacy devices, described in the DSDT for PNP enumeration. */
	struct acpi_serial serial[ACPI_MAX_SERIAL];
	unsigned nserial;
	bool i8042;	      /* PNP0303 keyboard at 0x60/0x64, IRQ 1 */
	bool i8042_aux;	      /* PNP0F13 mouse, IRQ 12 */
	bool rtc;	      /* PNP0B00 at 0x70, IRQ 8 */
	uint16_t fw_cfg_port; /* 0: none; else QEMU0002 at port, 0x0c ports */
	const struct acpi_virtio_mmio *virtio_mmio;
	unsigned nvirtio_mmio;

	const char *oem_id;	  /* 6 chars, default "KESTRL" */
	const char *oem_table_id; /* 8 chars, default "KESTREL " */
};

/* The pc machine's defaults for ncpus vCPUs: LAPIC/IOAPIC addresses, PM ports, SCI 9, reset
 * 0xcf9/0x06, COM1 at 0x3f8 IRQ 4, i8042, RTC. No PCI: the caller sets has_pci and the windows. */
void acpi_config_pc_defaults(struct acpi_config *cfg, unsigned ncpus);

/* Write every table into buf (size bytes, seen by the guest at buf_gpa, which must be 16-byte
 * aligned and below 4 GiB). The RSDP is first, at buf_gpa, for the BIOS-area scan; its address
 * is also returned in *rsdp_gpa for boot_params.acpi_rsdp_addr.
 * Returns the number of bytes used, -ENOSPC if buf is too small, -EINVAL for a bad config. */
int acpi_build(const struct acpi_config *cfg, uint8_t *buf, size_t size, uint64_t buf_gpa,
	       uint64_t *rsdp_gpa) __attribute__((warn_unused_result));

/* Where one table ended up; for tests and "info acpi"-style dumps. */
struct acpi_table_ref {
	char sig[5];
	size_t offset, len; /* in buf */
};
/* Walk the RSDP/XSDT (and FADT for DSDT/FACS) of a built buffer; returns the number of tables
 * found (up to max) or -EINVAL if a pointer leads outside buf. */
int acpi_list_tables(const uint8_t *buf, size_t size, uint64_t buf_gpa, struct acpi_table_ref *out,
		     unsigned max);

/* The 8-bit sum that makes a table's bytes add up to zero. */
uint8_t acpi_checksum(const uint8_t *p, size_t len);

#endif

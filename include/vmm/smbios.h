/* SMBIOS tables for the pc machine (DMTF DSP0134 3.x): a 64-bit "_SM3_" entry point and a
 * 32-bit "_SM_"/"_DMI_" entry point in front of one structure table with types 0, 1, 3, 4,
 * 16, 17, 19, 32 and 127. Linux's dmi_scan finds either by scanning 0xF0000-0xFFFFF.
 */
#ifndef KESTREL_VMM_SMBIOS_H
#define KESTREL_VMM_SMBIOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct smbios_config {
	/* NULL strings take the defaults: "Kestrel", KESTREL_VERSION, a fixed date. An empty
	 * string leaves the field out (string number 0). */
	const char *bios_vendor, *bios_version, *bios_date; /* date "mm/dd/yyyy" */
	const char *manufacturer, *product, *version, *serial, *sku, *family;
	bool has_uuid;
	uint8_t uuid[16]; /* in the order it is written, 00112233-4455-6677-8899-aabbccddeeff */

	unsigned sockets, cores, threads; /* cores per socket, threads per core */
	uint32_t cpuid_eax, cpuid_edx;	  /* CPUID leaf 1, for type 4's processor ID */
	unsigned cpu_mhz;

	uint64_t ram_below_4g, ram_above_4g; /* bytes; above starts at 4 GiB */
};

/* Defaults: one socket of one core, 2000 MHz, no RAM; the caller fills in the machine. */
void smbios_config_defaults(struct smbios_config *cfg);

/* Write the entry points and the table into buf (seen by the guest at buf_gpa, 16-byte aligned,
 * below 4 GiB): "_SM3_" at offset 0, "_SM_" at offset 32, the structures from offset 64.
 * Returns the bytes used, -ENOSPC if buf is too small, -EINVAL for a bad config. */
int smbios_build(const struct smbios_config *cfg, uint8_t *buf, size_t size, uint64_t buf_gpa)
    __attribute__((warn_unused_result));

/* Parse "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex, either case). 0 or -EINVAL. */
int smbios_parse_uuid(const char *s, uint8_t out[16]);

#endif

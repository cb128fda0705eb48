/* Direct kernel boot: Linux bzImage (64-bit boot protocol), PVH ELF and multiboot v1.
 *
 * The loaders write the kernel, initrd, command line, memory map and boot structures into
 * guest RAM and describe the boot vCPU's registers; they never touch the accelerator, so KVM
 * and the emulator boot the same way. Everything they read from the image is validated:
 * a bad file gets a message naming the problem, never an out-of-bounds access.
 *
 * Low memory used while booting (all inside RAM, reclaimed by the guest later):
 *   0x00500  GDT                       0x06000  PVH start_info / multiboot info
 *   0x07000  Linux boot_params          0x09000  identity-mapping page tables (4 GiB)
 *   0x20000  kernel command line        0xe0000  ACPI tables    0xf0000  SMBIOS
 */
#ifndef KESTREL_VMM_BOOT_H
#define KESTREL_VMM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "accel/accel.h"
#include "core/guest_mem.h"
#include "util/error.h"

#define BOOT_GDT_ADDR	     0x500
#define BOOT_INFO_ADDR	     0x6000
#define BOOT_PARAMS_ADDR     0x7000
#define BOOT_PAGE_TABLE_ADDR 0x9000
#define BOOT_CMDLINE_ADDR    0x20000
#define BOOT_CMDLINE_MAX     0x10000
#define BOOT_ACPI_ADDR	     0xe0000
#define BOOT_ACPI_SIZE	     0x10000
#define BOOT_SMBIOS_ADDR     0xf0000
#define BOOT_SMBIOS_SIZE     0x10000
#define BOOT_EBDA_START	     0x9fc00

/* Selectors in the boot GDT: Linux's boot protocol wants __BOOT_CS = 0x10, __BOOT_DS = 0x18. */
#define BOOT_SEL_CODE64 0x10
#define BOOT_SEL_DATA	0x18
#define BOOT_SEL_CODE32 0x20

enum e820_type { E820_RAM = 1, E820_RESERVED = 2, E820_ACPI = 3, E820_NVS = 4 };

#define E820_MAX 32
struct e820_map {
	unsigned nr;
	struct {
		uint64_t addr, size;
		uint32_t type;
	} entries[E820_MAX];
};

int e820_add(struct e820_map *m, uint64_t addr, uint64_t size, enum e820_type type);

enum kernel_format { KERNEL_BZIMAGE, KERNEL_PVH, KERNEL_MULTIBOOT, KERNEL_UNKNOWN };

struct boot_images {
	uint8_t *kernel, *initrd;
	size_t kernel_size, initrd_size;
	enum kernel_format format;
	const char *kernel_path;
};

struct boot_config {
	const char *cmdline; /* never NULL; "" for none */
	uint64_t rsdp_addr;  /* 0 if there are no ACPI tables */
	const struct e820_map *e820;
	uint64_t low_ram_end; /* end of RAM below 4 GiB */
};

/* Read the kernel and initrd files and identify the kernel's format (once; the images are
 * reused on every reboot). */
int boot_images_load(struct boot_images *img, const char *kernel, const char *initrd,
		     struct error *err) __attribute__((warn_unused_result));
void boot_images_free(struct boot_images *img);
const char *kernel_format_name(enum kernel_format f);

/* Lay the images out in guest RAM and fill *st for the boot vCPU. */
int boot_setup(const struct guest_mem *gm, const struct boot_config *cfg,
	       const struct boot_images *img, struct boot_cpu_state *st, struct error *err)
    __attribute__((warn_unused_result));

/* The individual protocols (vmm/boot_*.c), called by boot_setup. */
int boot_linux(const struct guest_mem *gm, const struct boot_config *cfg,
	       const struct boot_images *img, struct boot_cpu_state *st, struct error *err);
int boot_pvh(const struct guest_mem *gm, const struct boot_config *cfg,
	     const struct boot_images *img, struct boot_cpu_state *st, struct error *err);
int boot_multiboot(const struct guest_mem *gm, const struct boot_config *cfg,
		   const struct boot_images *img, struct boot_cpu_state *st, struct error *err);

/* Helpers shared by the protocols (vmm/boot.c). */
bool bzimage_probe(const uint8_t *k, size_t size);
bool pvh_probe(const uint8_t *k, size_t size);
bool multiboot_probe(const uint8_t *k, size_t size);
int boot_write_gdt(const struct guest_mem *gm, struct boot_cpu_state *st);
int boot_write_page_tables(const struct guest_mem *gm, struct boot_cpu_state *st);
/* Place the initrd as high as possible below `limit`, above `min_addr`, page aligned. */
int boot_place_initrd(const struct guest_mem *gm, const struct boot_images *img, uint64_t min_addr,
		      uint64_t limit, uint64_t *addr, struct error *err);
int boot_write_cmdline(const struct guest_mem *gm, const char *cmdline, size_t max_len,
		       struct error *err);

#endif

/* Direct kernel boot: format detection and what the protocols share (GDT, identity page
 * tables, initrd placement, command line, e820). */
#define LOG_SUBSYS "boot"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/file.h"
#include "util/log.h"
#include "vmm/boot.h"
#include "vmm/elf.h"

#define KERNEL_MAX_SIZE (512ULL << 20)
#define INITRD_MAX_SIZE (4ULL << 30)
#define PAGE_SIZE	4096ULL

int e820_add(struct e820_map *m, uint64_t addr, uint64_t size, enum e820_type type)
{
	if (m->nr >= E820_MAX)
		return -ENOSPC;
	if (size == 0)
		return 0;
	m->entries[m->nr].addr = addr;
	m->entries[m->nr].size = size;
	m->entries[m->nr].type = type;
	m->nr++;
	return 0;
}

const char *kernel_format_name(enum kernel_format f)
{
	switch (f) {
	case KERNEL_BZIMAGE:
		return "Linux bzImage";
	case KERNEL_PVH:
		return "PVH ELF";
	case KERNEL_MULTIBOOT:
		return "multiboot";
	default:
		return "unknown";
	}
}

int boot_images_load(struct boot_images *img, const char *kernel, const char *initrd,
		     struct error *err)
{
	memset(img, 0, sizeof(*img));
	img->kernel_path = kernel;
	int ret =
	    file_read_all(kernel, "kernel", KERNEL_MAX_SIZE, &img->kernel, &img->kernel_size, err);
	if (ret)
		return ret;
	/* bzImage first: its setup header is unambiguous. A PVH vmlinux is an ELF with the Xen
	 * entry note; a multiboot kernel has its header in the first 8 KiB. */
	if (bzimage_probe(img->kernel, img->kernel_size))
		img->format = KERNEL_BZIMAGE;
	else if (pvh_probe(img->kernel, img->kernel_size))
		img->format = KERNEL_PVH;
	else if (multiboot_probe(img->kernel, img->kernel_size))
		img->format = KERNEL_MULTIBOOT;
	else {
		boot_images_free(img);
		return error_set(err, -ENOEXEC,
				 "'%s' is not a kernel Kestrel can boot (expected a Linux bzImage, "
				 "a PVH ELF or a multiboot kernel)",
				 kernel);
	}
	if (initrd) {
		ret = file_read_all(initrd, "initrd", INITRD_MAX_SIZE, &img->initrd,
				    &img->initrd_size, err);
		if (ret) {
			boot_images_free(img);
			return ret;
		}
	}
	log_debug("kernel %s: %s, %zu bytes", kernel, kernel_format_name(img->format),
		  img->kernel_size);
	return 0;
}

void boot_images_free(struct boot_images *img)
{
	free(img->kernel);
	free(img->initrd);
	img->kernel = img->initrd = NULL;
}

int boot_setup(const struct guest_mem *gm, const struct boot_config *cfg,
	       const struct boot_images *img, struct boot_cpu_state *st, struct error *err)
{
	memset(st, 0, sizeof(*st));
	int ret = boot_write_gdt(gm, st);
	if (ret)
		return error_set(err, ret, "guest RAM too small for the boot GDT");
	switch (img->format) {
	case KERNEL_BZIMAGE:
		return boot_linux(gm, cfg, img, st, err);
	case KERNEL_PVH:
		return boot_pvh(gm, cfg, img, st, err);
	case KERNEL_MULTIBOOT:
		return boot_multiboot(gm, cfg, img, st, err);
	default:
		return error_set(err, -ENOEXEC, "unknown kernel format");
	}
}

/* Null, null, 64-bit code (0x10), data (0x18), 32-bit code (0x20): all flat, DPL 0. */
int boot_write_gdt(const struct guest_mem *gm, struct boot_cpu_state *st)
{
	static const uint64_t gdt[] = {
	    0,
	    0,
	    0x00af9b000000ffffULL, /* code: P, S, type 0xb, L, G */
	    0x00cf93000000ffffULL, /* data: P, S, type 0x3, D/B, G */
	    0x00cf9b000000ffffULL, /* code: P, S, type 0xb, D/B, G */
	};
	st->gdt_base = BOOT_GDT_ADDR;
	st->gdt_limit = sizeof(gdt) - 1;
	st->data_sel = BOOT_SEL_DATA;
	return gm_write(gm, BOOT_GDT_ADDR, gdt, sizeof(gdt));
}

/* Identity-map the first 4 GiB with 2 MiB pages: PML4 -> one PDPT -> four page directories.
 * Enough for any kernel loaded below 4 GiB; the kernel builds its own tables at once. */
int boot_write_page_tables(const struct guest_mem *gm, struct boot_cpu_state *st)
{
	const uint64_t pml4 = BOOT_PAGE_TABLE_ADDR, pdpt = pml4 + PAGE_SIZE, pd = pdpt + PAGE_SIZE;
	uint64_t *p = gm_ptr(gm, pml4, 6 * PAGE_SIZE);
	if (!p)
		return -EFAULT;
	memset(p, 0, 6 * PAGE_SIZE);
	p[0] = pdpt | 0x3; /* present, writable */
	uint64_t *pdpte = p + 512;
	for (unsigned i = 0; i < 4; i++)
		pdpte[i] = (pd + i * PAGE_SIZE) | 0x3;
	uint64_t *pde = p + 1024;
	for (unsigned i = 0; i < 4 * 512; i++)
		pde[i] = ((uint64_t)i << 21) | 0x83; /* present, writable, 2 MiB page */
	st->cr3 = pml4;
	return 0;
}

int boot_place_initrd(const struct guest_mem *gm, const struct boot_images *img, uint64_t min_addr,
		      uint64_t limit, uint64_t *addr, struct error *err)
{
	if (!img->initrd) {
		*addr = 0;
		return 0;
	}
	uint64_t size = img->initrd_size;
	if (limit < min_addr || size > limit - min_addr)
		return error_set(err, -ENOMEM,
				 "initrd (%llu MiB) does not fit in guest memory below %llu MiB "
				 "after the kernel; give the VM more memory with --mem",
				 (unsigned long long)(size >> 20),
				 (unsigned long long)(limit >> 20));
	uint64_t at = (limit - size) & ~(PAGE_SIZE - 1);
	if (at < min_addr || gm_write(gm, at, img->initrd, size))
		return error_set(err, -ENOMEM,
				 "initrd (%llu MiB) does not fit in guest memory; give the VM "
				 "more memory with --mem",
				 (unsigned long long)(size >> 20));
	*addr = at;
	return 0;
}

int boot_write_cmdline(const struct guest_mem *gm, const char *cmdline, size_t max_len,
		       struct error *err)
{
	size_t len = strlen(cmdline);
	if (len > max_len || len >= BOOT_CMDLINE_MAX)
		return error_set(
		    err, -E2BIG,
		    "kernel command line is %zu bytes; this kernel accepts at most %zu", len,
		    max_len < BOOT_CMDLINE_MAX ? max_len : BOOT_CMDLINE_MAX - 1);
	if (gm_write(gm, BOOT_CMDLINE_ADDR, cmdline, len + 1))
		return error_set(err, -EFAULT, "guest RAM too small for the command line");
	return 0;
}

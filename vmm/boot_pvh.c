/* PVH direct boot (Xen's "x86/HVM direct boot ABI", docs/misc/pvh.pandoc, and
 * xen/include/public/arch-x86/hvm/start_info.h): an ELF kernel whose XEN_ELFNOTE_PHYS32_ENTRY
 * note gives a 32-bit entry point, entered in flat protected mode, paging off, with EBX
 * pointing at an hvm_start_info structure. Linux vmlinux has it with CONFIG_PVH=y. */
#define LOG_SUBSYS "boot"
#include <errno.h>
#include <string.h>

#include "util/log.h"
#include "vmm/boot.h"
#include "vmm/elf.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC		 0x336ec578

struct hvm_start_info {
	uint32_t magic;
	uint32_t version; /* 1: has memmap fields */
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

/* start_info at BOOT_INFO_ADDR, then the module list, then the memory map: one 4 KiB page. */
#define MODLIST_ADDR (BOOT_INFO_ADDR + 0x40)
#define MEMMAP_ADDR  (BOOT_INFO_ADDR + 0x80)

static const uint8_t *pvh_entry_note(const uint8_t *k, size_t size, size_t *len)
{
	if (elf_check(k, size, NULL) < 0)
		return NULL;
	return elf_find_note(k, size, "Xen", XEN_ELFNOTE_PHYS32_ENTRY, len);
}

bool pvh_probe(const uint8_t *k, size_t size)
{
	size_t len;
	return pvh_entry_note(k, size, &len) != NULL;
}

int boot_pvh(const struct guest_mem *gm, const struct boot_config *cfg,
	     const struct boot_images *img, struct boot_cpu_state *st, struct error *err)
{
	size_t len;
	const uint8_t *note = pvh_entry_note(img->kernel, img->kernel_size, &len);
	if (!note || (len != 4 && len != 8))
		return error_set(err, -ENOEXEC, "'%s': malformed PVH entry note", img->kernel_path);
	uint64_t entry = 0;
	memcpy(&entry, note, len);
	if (entry >= 0x100000000ULL)
		return error_set(err, -ENOEXEC, "'%s': PVH entry %#llx is above 4 GiB",
				 img->kernel_path, (unsigned long long)entry);

	uint64_t lo, hi;
	int ret = elf_load(gm, img->kernel, img->kernel_size, &lo, &hi, err);
	if (ret)
		return ret;
	ret = boot_write_cmdline(gm, cfg->cmdline, BOOT_CMDLINE_MAX - 1, err);
	if (ret)
		return ret;
	uint64_t initrd_addr;
	ret = boot_place_initrd(gm, img, hi, cfg->low_ram_end, &initrd_addr, err);
	if (ret)
		return ret;

	struct hvm_start_info si = {
	    .magic = HVM_START_MAGIC,
	    .version = 1,
	    .cmdline_paddr = BOOT_CMDLINE_ADDR,
	    .rsdp_paddr = cfg->rsdp_addr,
	    .memmap_paddr = MEMMAP_ADDR,
	    .memmap_entries = cfg->e820->nr,
	};
	if (img->initrd) {
		struct hvm_modlist_entry mod = {.paddr = initrd_addr, .size = img->initrd_size};
		si.nr_modules = 1;
		si.modlist_paddr = MODLIST_ADDR;
		if (gm_write(gm, MODLIST_ADDR, &mod, sizeof(mod)))
			return error_set(err, -EFAULT, "guest RAM too small for PVH structures");
	}
	if (MEMMAP_ADDR + cfg->e820->nr * sizeof(struct hvm_memmap_entry) > BOOT_INFO_ADDR + 0x1000)
		return error_set(err, -E2BIG, "memory map has too many entries");
	for (unsigned i = 0; i < cfg->e820->nr; i++) {
		struct hvm_memmap_entry e = {.addr = cfg->e820->entries[i].addr,
					     .size = cfg->e820->entries[i].size,
					     .type = cfg->e820->entries[i].type};
		if (gm_write(gm, MEMMAP_ADDR + i * sizeof(e), &e, sizeof(e)))
			return error_set(err, -EFAULT, "guest RAM too small for PVH structures");
	}
	if (gm_write(gm, BOOT_INFO_ADDR, &si, sizeof(si)))
		return error_set(err, -EFAULT, "guest RAM too small for PVH structures");

	st->mode = BOOT_MODE_PROT32;
	st->code_sel = BOOT_SEL_CODE32;
	st->rip = entry;
	st->rbx = BOOT_INFO_ADDR;
	log_debug("PVH kernel %#llx-%#llx, entry %#llx", (unsigned long long)lo,
		  (unsigned long long)hi, (unsigned long long)entry);
	return 0;
}

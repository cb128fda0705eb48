/* Multiboot v1 (the Multiboot Specification 0.6.96): a header in the first 8 KiB of the
 * image; the kernel is loaded from its ELF program headers or, with flag 16, from the
 * header's address fields, and entered in 32-bit protected mode with EAX = 0x2BADB002 and
 * EBX pointing at the multiboot information structure. kvm-unit-tests and many hobby
 * kernels use it. The initrd, if any, is module 0. */
#define LOG_SUBSYS "boot"
#include <errno.h>
#include <string.h>

#include "util/log.h"
#include "vmm/boot.h"
#include "vmm/elf.h"

#define MB_HEADER_MAGIC	    0x1badb002
#define MB_BOOTLOADER_MAGIC 0x2badb002
#define MB_SEARCH_LEN	    8192
#define MB_FLAG_PAGE_ALIGN  (1u << 0)
#define MB_FLAG_MEMINFO	    (1u << 1)
#define MB_FLAG_VIDEO	    (1u << 2)
#define MB_FLAG_AOUT_KLUDGE (1u << 16)

#define MBI_MEM	    (1u << 0)
#define MBI_CMDLINE (1u << 2)
#define MBI_MODS    (1u << 3)
#define MBI_MMAP    (1u << 6)
#define MBI_LOADER  (1u << 9)

struct mb_header {
	uint32_t magic, flags, checksum;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr, config_table, boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe[6];
} __attribute__((packed));

struct mb_module {
	uint32_t mod_start, mod_end, string, reserved;
};

struct mb_mmap_entry {
	uint32_t size; /* of the rest of the entry: 20 */
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

/* Layout in the boot-info page. */
#define MBI_ADDR       BOOT_INFO_ADDR
#define MB_MODS_ADDR   (BOOT_INFO_ADDR + 0x100)
#define MB_LOADER_ADDR (BOOT_INFO_ADDR + 0x180)
#define MB_MMAP_ADDR   (BOOT_INFO_ADDR + 0x200)
#define MB_EMPTY_STR   (BOOT_INFO_ADDR + 0x1ff)

static const struct mb_header *find_header(const uint8_t *k, size_t size, size_t *offset)
{
	size_t limit = size < MB_SEARCH_LEN ? size : MB_SEARCH_LEN;
	for (size_t off = 0; off + sizeof(struct mb_header) <= limit; off += 4) {
		const struct mb_header *h = (const void *)(k + off);
		if (h->magic == MB_HEADER_MAGIC &&
		    (uint32_t)(h->magic + h->flags + h->checksum) == 0) {
			*offset = off;
			return h;
		}
	}
	return NULL;
}

bool multiboot_probe(const uint8_t *k, size_t size)
{
	size_t off;
	return find_header(k, size, &off) != NULL;
}

/* Flag 16: load [load_addr, load_end_addr) from the file position that corresponds to
 * header_addr, and zero up to bss_end_addr. */
static int load_aout_kludge(const struct guest_mem *gm, const struct boot_images *img,
			    const struct mb_header *h, size_t hdr_off, uint64_t *end,
			    struct error *err)
{
	if (h->header_addr < h->load_addr || h->header_addr - h->load_addr > hdr_off)
		return error_set(err, -ENOEXEC, "'%s': inconsistent multiboot load addresses",
				 img->kernel_path);
	size_t file_off = hdr_off - (h->header_addr - h->load_addr);
	uint64_t load_end =
	    h->load_end_addr ? h->load_end_addr : h->load_addr + (img->kernel_size - file_off);
	if (load_end < h->load_addr || load_end - h->load_addr > img->kernel_size - file_off)
		return error_set(err, -ENOEXEC, "'%s': multiboot load range exceeds the file",
				 img->kernel_path);
	uint64_t bss_end = h->bss_end_addr > load_end ? h->bss_end_addr : load_end;
	uint8_t *dst = gm_ptr(gm, h->load_addr, bss_end - h->load_addr);
	if (!dst)
		return error_set(err, -ENOMEM, "'%s': multiboot image does not fit in guest RAM",
				 img->kernel_path);
	memcpy(dst, img->kernel + file_off, load_end - h->load_addr);
	memset(dst + (load_end - h->load_addr), 0, bss_end - load_end);
	*end = bss_end;
	return 0;
}

int boot_multiboot(const struct guest_mem *gm, const struct boot_config *cfg,
		   const struct boot_images *img, struct boot_cpu_state *st, struct error *err)
{
	size_t hdr_off;
	const struct mb_header *h = find_header(img->kernel, img->kernel_size, &hdr_off);
	uint64_t entry, end;
	int ret;

	if (!h)
		return error_set(err, -ENOEXEC, "'%s': no multiboot header", img->kernel_path);
	/* Bits 0-15 are requirements: refuse the ones we do not know (video mode is optional
	 * for us: no framebuffer, which the spec allows us to report by not setting it). */
	if (h->flags & 0xfff8)
		return error_set(err, -ENOEXEC,
				 "'%s': multiboot header requires unsupported "
				 "features (flags %#x)",
				 img->kernel_path, h->flags);
	if (h->flags & MB_FLAG_AOUT_KLUDGE) {
		if (hdr_off + sizeof(*h) > img->kernel_size)
			return error_set(err, -ENOEXEC, "'%s': multiboot header truncated",
					 img->kernel_path);
		ret = load_aout_kludge(gm, img, h, hdr_off, &end, err);
		entry = h->entry_addr;
	} else {
		uint64_t lo;
		ret = elf_load(gm, img->kernel, img->kernel_size, &lo, &end, err);
		entry = ret ? 0 : elf_entry(img->kernel);
	}
	if (ret)
		return ret;

	ret = boot_write_cmdline(gm, cfg->cmdline, BOOT_CMDLINE_MAX - 1, err);
	if (ret)
		return ret;

	struct mb_info mbi = {0};
	mbi.flags = MBI_MEM | MBI_CMDLINE | MBI_MMAP | MBI_LOADER;
	mbi.cmdline = BOOT_CMDLINE_ADDR;
	/* mem_lower: KiB below 640 KiB; mem_upper: KiB of RAM contiguous from 1 MiB. */
	mbi.mem_lower = BOOT_EBDA_START >> 10;
	uint64_t upper = cfg->low_ram_end > 0x100000 ? cfg->low_ram_end - 0x100000 : 0;
	mbi.mem_upper = (uint32_t)(upper >> 10);

	static const char loader[] = "Kestrel";
	if (gm_write(gm, MB_LOADER_ADDR, loader, sizeof(loader)) ||
	    gm_write(gm, MB_EMPTY_STR, "", 1))
		return error_set(err, -EFAULT, "guest RAM too small for multiboot info");
	mbi.boot_loader_name = MB_LOADER_ADDR;

	if (img->initrd) {
		uint64_t align_end = (end + 0xfff) & ~0xfffULL;
		uint64_t mod_addr;
		ret = boot_place_initrd(gm, img, align_end, cfg->low_ram_end, &mod_addr, err);
		if (ret)
			return ret;
		struct mb_module mod = {.mod_start = (uint32_t)mod_addr,
					.mod_end = (uint32_t)(mod_addr + img->initrd_size),
					.string = MB_EMPTY_STR};
		if (gm_write(gm, MB_MODS_ADDR, &mod, sizeof(mod)))
			return error_set(err, -EFAULT, "guest RAM too small for multiboot info");
		mbi.flags |= MBI_MODS;
		mbi.mods_count = 1;
		mbi.mods_addr = MB_MODS_ADDR;
	}

	if (MB_MMAP_ADDR + cfg->e820->nr * sizeof(struct mb_mmap_entry) > BOOT_INFO_ADDR + 0x1000)
		return error_set(err, -E2BIG, "memory map has too many entries");
	for (unsigned i = 0; i < cfg->e820->nr; i++) {
		struct mb_mmap_entry e = {.size = 20,
					  .addr = cfg->e820->entries[i].addr,
					  .len = cfg->e820->entries[i].size,
					  .type = cfg->e820->entries[i].type};
		if (gm_write(gm, MB_MMAP_ADDR + i * sizeof(e), &e, sizeof(e)))
			return error_set(err, -EFAULT, "guest RAM too small for multiboot info");
	}
	mbi.mmap_addr = MB_MMAP_ADDR;
	mbi.mmap_length = cfg->e820->nr * sizeof(struct mb_mmap_entry);
	if (gm_write(gm, MBI_ADDR, &mbi, sizeof(mbi)))
		return error_set(err, -EFAULT, "guest RAM too small for multiboot info");

	st->mode = BOOT_MODE_PROT32;
	st->code_sel = BOOT_SEL_CODE32;
	st->rip = entry;
	st->rax = MB_BOOTLOADER_MAGIC;
	st->rbx = MBI_ADDR;
	log_debug("multiboot kernel entry %#llx", (unsigned long long)entry);
	return 0;
}

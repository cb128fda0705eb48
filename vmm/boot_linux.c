/* Linux bzImage, 64-bit boot protocol (Documentation/arch/x86/boot.rst): the setup header
 * goes into boot_params (the "zero page"), the protected-mode kernel is loaded at its
 * preferred address and entered at +0x200 in long mode with RSI pointing at boot_params. */
#define LOG_SUBSYS "boot"
#include <asm/bootparam.h>
#include <errno.h>
#include <string.h>

#include "util/endian.h"
#include "util/log.h"
#include "vmm/boot.h"

#define SETUP_HDR_OFFSET    0x1f1
#define HDRS_MAGIC	    0x53726448 /* "HdrS" */
#define MIN_PROTOCOL	    0x020c     /* xloadflags, and with it the 64-bit entry point */
#define DEFAULT_LOAD_ADDR   0x1000000ULL
#define LOADER_TYPE_UNKNOWN 0xff

bool bzimage_probe(const uint8_t *k, size_t size)
{
	return size >= 0x264 && le16_load(k + 0x1fe) == 0xaa55 &&
	       le32_load(k + 0x202) == HDRS_MAGIC;
}

int boot_linux(const struct guest_mem *gm, const struct boot_config *cfg,
	       const struct boot_images *img, struct boot_cpu_state *st, struct error *err)
{
	const uint8_t *k = img->kernel;
	struct boot_params bp;
	int ret;

	memset(&bp, 0, sizeof(bp));
	/* The setup header runs from 0x1f1 to 0x202 + the byte at 0x201. */
	size_t hdr_len = 0x202 + k[0x201] - SETUP_HDR_OFFSET;
	if (hdr_len > sizeof(bp.hdr))
		hdr_len = sizeof(bp.hdr);
	if (SETUP_HDR_OFFSET + hdr_len > img->kernel_size)
		return error_set(err, -ENOEXEC, "'%s': setup header truncated", img->kernel_path);
	memcpy(&bp.hdr, k + SETUP_HDR_OFFSET, hdr_len);

	if (bp.hdr.version < MIN_PROTOCOL || !(bp.hdr.xloadflags & XLF_KERNEL_64))
		return error_set(err, -ENOEXEC,
				 "'%s': boot protocol %u.%02u without a 64-bit entry point; "
				 "Kestrel needs protocol 2.12 or later (Linux 3.8+, 64-bit)",
				 img->kernel_path, bp.hdr.version >> 8, bp.hdr.version & 0xff);

	unsigned setup_sects = bp.hdr.setup_sects ? bp.hdr.setup_sects : 4;
	size_t kernel_off = (setup_sects + 1) * 512ULL;
	if (kernel_off >= img->kernel_size)
		return error_set(err, -ENOEXEC,
				 "'%s': no protected-mode kernel after the setup code",
				 img->kernel_path);
	size_t kernel_len = img->kernel_size - kernel_off;
	/* syssize (16-byte units) is how much protected-mode kernel the build wrote: less in the
	 * file means a truncated copy, which would only crash the guest while decompressing. */
	if ((uint64_t)bp.hdr.syssize * 16 > kernel_len)
		return error_set(
		    err, -ENOEXEC,
		    "'%s' is truncated: its header says %llu bytes of kernel after the "
		    "setup code, the file has %zu",
		    img->kernel_path, (unsigned long long)bp.hdr.syssize * 16, kernel_len);

	uint64_t load = bp.hdr.pref_address ? bp.hdr.pref_address : DEFAULT_LOAD_ADDR;
	if (load < 0x100000 || (load & 0xfff))
		load = DEFAULT_LOAD_ADDR;
	/* init_size: what the kernel needs from its load address while it decompresses. */
	uint64_t need = bp.hdr.init_size > kernel_len ? bp.hdr.init_size : kernel_len;
	if (load + need > cfg->low_ram_end || gm_write(gm, load, k + kernel_off, kernel_len))
		return error_set(err, -ENOMEM,
				 "kernel needs %llu MiB of RAM from %llu MiB; give the VM more "
				 "memory with --mem",
				 (unsigned long long)(need >> 20),
				 (unsigned long long)(load >> 20));

	size_t cmdline_max = bp.hdr.cmdline_size ? bp.hdr.cmdline_size : 255;
	ret = boot_write_cmdline(gm, cfg->cmdline, cmdline_max, err);
	if (ret)
		return ret;

	uint64_t initrd_limit = cfg->low_ram_end;
	if (bp.hdr.initrd_addr_max && bp.hdr.initrd_addr_max + 1ULL < initrd_limit)
		initrd_limit = bp.hdr.initrd_addr_max + 1ULL;
	uint64_t initrd_addr;
	ret = boot_place_initrd(gm, img, load + need, initrd_limit, &initrd_addr, err);
	if (ret)
		return ret;

	bp.hdr.type_of_loader = LOADER_TYPE_UNKNOWN;
	bp.hdr.loadflags |= CAN_USE_HEAP | LOADED_HIGH;
	bp.hdr.heap_end_ptr = 0xfe00;
	bp.hdr.vid_mode = 0xffff; /* "normal" */
	bp.hdr.cmd_line_ptr = BOOT_CMDLINE_ADDR;
	bp.hdr.code32_start = (uint32_t)load;
	bp.hdr.ramdisk_image = (uint32_t)initrd_addr;
	bp.hdr.ramdisk_size = (uint32_t)img->initrd_size;
	bp.acpi_rsdp_addr = cfg->rsdp_addr;

	if (cfg->e820->nr > E820_MAX_ENTRIES_ZEROPAGE)
		return error_set(err, -E2BIG, "memory map has too many entries");
	for (unsigned i = 0; i < cfg->e820->nr; i++) {
		bp.e820_table[i].addr = cfg->e820->entries[i].addr;
		bp.e820_table[i].size = cfg->e820->entries[i].size;
		bp.e820_table[i].type = cfg->e820->entries[i].type;
	}
	bp.e820_entries = cfg->e820->nr;

	if (gm_write(gm, BOOT_PARAMS_ADDR, &bp, sizeof(bp)) || boot_write_page_tables(gm, st))
		return error_set(err, -EFAULT, "guest RAM too small for the boot structures");

	st->mode = BOOT_MODE_LONG64;
	st->code_sel = BOOT_SEL_CODE64;
	st->rip = load + 0x200; /* startup_64 */
	st->rsi = BOOT_PARAMS_ADDR;
	log_debug("bzImage protocol %u.%02u loaded at %#llx (%zu bytes), initrd at %#llx",
		  bp.hdr.version >> 8, bp.hdr.version & 0xff, (unsigned long long)load, kernel_len,
		  (unsigned long long)initrd_addr);
	return 0;
}

/* Unit tests for the direct-boot loaders (vmm/boot*.c, vmm/elf.c) on synthetic images:
 * what lands in guest RAM, the boot vCPU state, and the refusals of malformed images. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <asm/bootparam.h>
#include <elf.h>

#include "vmm/boot.h"
#include "vmm/elf.h"

#define MEM (256ULL << 20)

struct fixture {
	struct guest_mem gm;
	struct e820_map e820;
	struct boot_config cfg;
	struct boot_images img;
	struct boot_cpu_state st;
	struct error err;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_int_equal(gm_add_ram(&f->gm, 0, MEM, "ram"), 0);
	assert_int_equal(e820_add(&f->e820, 0, BOOT_EBDA_START, E820_RAM), 0);
	assert_int_equal(e820_add(&f->e820, 0x100000, MEM - 0x100000, E820_RAM), 0);
	f->cfg = (struct boot_config){.cmdline = "console=ttyS0 hello",
				      .rsdp_addr = 0xe0000,
				      .e820 = &f->e820,
				      .low_ram_end = MEM};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	gm_destroy(&f->gm);
	boot_images_free(&f->img);
	free(f);
	return 0;
}

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* A bzImage: 4 setup sectors + boot sector, then a 8 KiB "kernel" of 0xcc bytes. */
static void make_bzimage(struct boot_images *img, uint16_t version, uint16_t xloadflags)
{
	size_t size = 5 * 512 + 8192;
	uint8_t *k = calloc(1, size);
	k[0x1f1] = 4;			 /* setup_sects */
	put16(k + 0x1fe, 0xaa55);	 /* boot_flag */
	k[0x201] = 0x6a;		 /* jump: header ends at 0x26c */
	memcpy(k + 0x202, "HdrS", 4);	 /* magic */
	put16(k + 0x206, version);	 /* version */
	k[0x211] = 0x01;		 /* loadflags: LOADED_HIGH */
	put32(k + 0x22c, 0x7fffffff);	 /* initrd_addr_max */
	put32(k + 0x238, 255);		 /* cmdline_size */
	put16(k + 0x236, xloadflags);	 /* xloadflags */
	put64(k + 0x258, 0x1000000);	 /* pref_address */
	put32(k + 0x1f4, 8192 / 16);	 /* syssize: the whole kernel below */
	put32(k + 0x260, 0x400000);	 /* init_size: 4 MiB */
	memset(k + 5 * 512, 0xcc, 8192); /* the protected-mode kernel */
	img->kernel = k;
	img->kernel_size = size;
	img->kernel_path = "test-bzImage";
	img->format = bzimage_probe(k, size) ? KERNEL_BZIMAGE : KERNEL_UNKNOWN;
}

static void bzimage_boot(void **state)
{
	struct fixture *f = *state;
	make_bzimage(&f->img, 0x020f, 1);
	assert_int_equal(f->img.format, KERNEL_BZIMAGE);
	f->img.initrd_size = 3 * 4096 + 17;
	f->img.initrd = malloc(f->img.initrd_size);
	memset(f->img.initrd, 0x5a, f->img.initrd_size);

	assert_int_equal(boot_setup(&f->gm, &f->cfg, &f->img, &f->st, &f->err), 0);
	assert_int_equal(f->st.mode, BOOT_MODE_LONG64);
	assert_int_equal(f->st.rip, 0x1000200);
	assert_int_equal(f->st.rsi, BOOT_PARAMS_ADDR);
	assert_int_equal(f->st.code_sel, 0x10);
	assert_int_equal(f->st.data_sel, 0x18);

	struct boot_params bp;
	assert_int_equal(gm_read(&f->gm, BOOT_PARAMS_ADDR, &bp, sizeof(bp)), 0);
	assert_int_equal(bp.hdr.type_of_loader, 0xff);
	assert_true(bp.hdr.loadflags & CAN_USE_HEAP);
	assert_int_equal(bp.hdr.cmd_line_ptr, BOOT_CMDLINE_ADDR);
	assert_int_equal(bp.acpi_rsdp_addr, 0xe0000);
	assert_int_equal(bp.e820_entries, 2);
	assert_int_equal(bp.e820_table[1].addr, 0x100000);
	assert_int_equal(bp.e820_table[1].type, E820_RAM);
	/* The initrd: page aligned, after the kernel's init_size, at the top of RAM, intact. */
	assert_int_equal(bp.hdr.ramdisk_size, f->img.initrd_size);
	assert_int_equal(bp.hdr.ramdisk_image & 0xfff, 0);
	assert_true(bp.hdr.ramdisk_image >= 0x1000000 + 0x400000);
	assert_true(bp.hdr.ramdisk_image + f->img.initrd_size <= MEM);
	assert_true(bp.hdr.ramdisk_image + f->img.initrd_size > MEM - 4096);
	assert_memory_equal(gm_ptr(&f->gm, bp.hdr.ramdisk_image, f->img.initrd_size), f->img.initrd,
			    f->img.initrd_size);

	char cmdline[64];
	assert_int_equal(gm_read(&f->gm, BOOT_CMDLINE_ADDR, cmdline, sizeof(cmdline)), 0);
	assert_string_equal(cmdline, "console=ttyS0 hello");
	/* The kernel proper at its preferred address. */
	assert_int_equal(*(uint8_t *)gm_ptr(&f->gm, 0x1000000, 1), 0xcc);
	assert_int_equal(*(uint8_t *)gm_ptr(&f->gm, 0x1000000 + 8191, 1), 0xcc);

	/* Identity map: PML4[0] -> PDPT, PD entry n maps n * 2 MiB. */
	uint64_t *pt = gm_ptr(&f->gm, f->st.cr3, 6 * 4096);
	assert_non_null(pt);
	assert_int_equal(pt[0] & ~0xfffULL, f->st.cr3 + 4096);
	assert_int_equal(pt[1024 + 3] & ~0xfffULL, 3ULL << 21);
	assert_int_equal(pt[1024 + 2047] & ~0xfffULL, 2047ULL << 21);
	assert_true(pt[1024 + 5] & 0x80); /* PS */

	/* The boot GDT: 64-bit code at 0x10. */
	uint64_t gdt[5];
	assert_int_equal(gm_read(&f->gm, f->st.gdt_base, gdt, sizeof(gdt)), 0);
	assert_true(gdt[2] & (1ULL << 53)); /* L */
	assert_int_equal(f->st.gdt_limit, sizeof(gdt) - 1);
}

static void bzimage_refusals(void **state)
{
	struct fixture *f = *state;
	make_bzimage(&f->img, 0x0204, 0);
	assert_int_equal(boot_setup(&f->gm, &f->cfg, &f->img, &f->st, &f->err), -ENOEXEC);
	assert_non_null(strstr(f->err.msg, "64-bit entry"));
	boot_images_free(&f->img);

	make_bzimage(&f->img, 0x020f, 1);
	char *long_cmdline = malloc(300);
	memset(long_cmdline, 'x', 299);
	long_cmdline[299] = 0;
	f->cfg.cmdline = long_cmdline;
	assert_int_equal(boot_setup(&f->gm, &f->cfg, &f->img, &f->st, &f->err), -E2BIG);
	assert_non_null(strstr(f->err.msg, "at most 255"));
	f->cfg.cmdline = "";
	free(long_cmdline);

	/* A truncated copy: the header promises more kernel than the file holds. */
	size_t full = f->img.kernel_size;
	f->img.kernel_size -= 16;
	assert_int_equal(boot_setup(&f->gm, &f->cfg, &f->img, &f->st, &f->err), -ENOEXEC);
	assert_non_null(strstr(f->err.msg, "truncated"));
	f->img.kernel_size = full;

	/* Kernel init_size beyond RAM. */
	f->cfg.low_ram_end = 0x1000000 + 0x100000;
	assert_int_equal(boot_setup(&f->gm, &f->cfg, &f->img, &f->st, &f->err), -ENOMEM);
	assert_non_null(strstr(f->err.msg, "--mem"));
	f->cfg.low_ram_end = MEM;

	/* An initrd larger than what is left. */
	f->img.initrd_size = MEM;
	f->img.initrd = calloc(1, f->img.initrd_size);
	assert_int_equal(boot_setup(&f->gm, &f->cfg, &f->img, &f->st, &f->err), -ENOMEM);
	assert_non_null(strstr(f->err.msg, "initrd"));
}

/* An ELF64 with one PT_LOAD at paddr 0x200000 and a PT_NOTE carrying the PVH entry. */
static uint8_t *make_pvh_elf(size_t *size, uint64_t load_paddr, uint64_t filesz)
{
	size_t note_off = 0x200, code_off = 0x1000;
	*size = code_off + filesz;
	uint8_t *img = calloc(1, *size);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)img;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 2;
	eh->e_entry = 0xffffffff81000000ULL;
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(*eh));
	ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
			     .p_offset = code_off,
			     .p_paddr = load_paddr,
			     .p_filesz = filesz,
			     .p_memsz = filesz + 0x3000};
	ph[1] = (Elf64_Phdr){.p_type = PT_NOTE, .p_offset = note_off, .p_filesz = 20};
	/* namesz 4 ("Xen\0"), descsz 4, type 18, name, desc = entry */
	put32(img + note_off, 4);
	put32(img + note_off + 4, 4);
	put32(img + note_off + 8, 18);
	memcpy(img + note_off + 12, "Xen", 4);
	put32(img + note_off + 16, (uint32_t)load_paddr + 0x40);
	memset(img + code_off, 0x90, filesz);
	return img;
}

static void pvh_boot(void **state)
{
	struct fixture *f = *state;
	f->img.kernel = make_pvh_elf(&f->img.kernel_size, 0x200000, 0x2000);
	f->img.kernel_path = "test-vmlinux";
	assert_false(bzimage_probe(f->img.kernel, f->img.kernel_size));
	assert_true(pvh_probe(f->img.kernel, f->img.kernel_size));
	f->img.format = KERNEL_PVH;
	f->img.initrd_size = 4096;
	f->img.initrd = calloc(1, 4096);
	/* Dirty the bss first: the loader must zero it. */
	memset(gm_ptr(&f->gm, 0x202000, 0x3000), 0xee, 0x3000);

	assert_int_equal(boot_setup(&f->gm, &f->cfg, &f->img, &f->st, &f->err), 0);
	assert_int_equal(f->st.mode, BOOT_MODE_PROT32);
	assert_int_equal(f->st.rip, 0x200040);
	assert_int_equal(f->st.rbx, BOOT_INFO_ADDR);
	assert_int_equal(f->st.code_sel, BOOT_SEL_CODE32);
	uint32_t si[4];
	uint64_t si64[4];
	assert_int_equal(gm_read(&f->gm, BOOT_INFO_ADDR, si, sizeof(si)), 0);
	assert_int_equal(si[0], 0x336ec578); /* magic */
	assert_int_equal(si[1], 1);	     /* version */
	assert_int_equal(si[3], 1);	     /* one module: the initrd */
	assert_int_equal(gm_read(&f->gm, BOOT_INFO_ADDR + 16, si64, sizeof(si64)), 0);
	assert_int_equal(si64[1], BOOT_CMDLINE_ADDR); /* cmdline_paddr */
	assert_int_equal(si64[2], 0xe0000);	      /* rsdp_paddr */
	uint32_t memmap_entries;
	assert_int_equal(gm_read(&f->gm, BOOT_INFO_ADDR + 48, &memmap_entries, 4), 0);
	assert_int_equal(memmap_entries, 2);
	assert_int_equal(*(uint8_t *)gm_ptr(&f->gm, 0x200000, 1), 0x90);
	assert_int_equal(*(uint8_t *)gm_ptr(&f->gm, 0x204fff, 1), 0); /* bss zeroed */
}

static void elf_refusals(void **state)
{
	struct fixture *f = *state;
	size_t size;
	uint8_t *img = make_pvh_elf(&size, 0x200000, 0x2000);
	Elf64_Phdr *ph = (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr));

	/* A segment whose file range runs past the end of the file. */
	ph[0].p_filesz = size;
	assert_int_equal(elf_check(img, size, &f->err), -ENOEXEC);
	assert_non_null(strstr(f->err.msg, "outside the file"));
	ph[0].p_filesz = 0x2000;

	/* memsz < filesz */
	ph[0].p_memsz = 1;
	assert_int_equal(elf_check(img, size, &f->err), -ENOEXEC);
	ph[0].p_memsz = 0x5000;

	/* A segment outside guest RAM. */
	ph[0].p_paddr = MEM - 0x1000;
	uint64_t lo, hi;
	assert_int_equal(elf_load(&f->gm, img, size, &lo, &hi, &f->err), -ENOMEM);
	ph[0].p_paddr = UINT64_MAX - 0x100; /* and one whose end wraps around */
	assert_int_equal(elf_load(&f->gm, img, size, &lo, &hi, &f->err), -ENOMEM);
	ph[0].p_paddr = 0x200000;

	/* Program headers past the end of the file; a truncated header. */
	((Elf64_Ehdr *)img)->e_phnum = 60000;
	assert_int_equal(elf_check(img, size, &f->err), -ENOEXEC);
	assert_int_equal(elf_check(img, 40, &f->err), -ENOEXEC);
	/* A note whose sizes lie: no entry found rather than an overread. */
	((Elf64_Ehdr *)img)->e_phnum = 2;
	put32(img + 0x200 + 4, 0x7fffffff);
	assert_false(pvh_probe(img, size));
	free(img);
}

/* A multiboot kernel using the a.out kludge (flag 16), the form hobby kernels use. */
static void multiboot_boot(void **state)
{
	struct fixture *f = *state;
	size_t size = 0x3000;
	uint8_t *k = calloc(1, size);
	uint32_t hdr_off = 0x40, load = 0x100000;
	uint32_t flags = (1u << 16) | (1u << 1);
	put32(k + hdr_off, 0x1badb002);
	put32(k + hdr_off + 4, flags);
	put32(k + hdr_off + 8, -(0x1badb002 + flags));
	put32(k + hdr_off + 12, load + hdr_off);       /* header_addr */
	put32(k + hdr_off + 16, load);		       /* load_addr */
	put32(k + hdr_off + 20, load + size);	       /* load_end_addr */
	put32(k + hdr_off + 24, load + size + 0x1000); /* bss_end_addr */
	put32(k + hdr_off + 28, load + 0x100);	       /* entry */
	k[0x100] = 0xf4;
	f->img.kernel = k;
	f->img.kernel_size = size;
	f->img.kernel_path = "test-multiboot";
	assert_true(multiboot_probe(k, size));
	f->img.format = KERNEL_MULTIBOOT;

	assert_int_equal(boot_setup(&f->gm, &f->cfg, &f->img, &f->st, &f->err), 0);
	assert_int_equal(f->st.rax, 0x2badb002);
	assert_int_equal(f->st.rbx, BOOT_INFO_ADDR);
	assert_int_equal(f->st.rip, load + 0x100);
	assert_int_equal(*(uint8_t *)gm_ptr(&f->gm, load + 0x100, 1), 0xf4);
	uint32_t mbi[12];
	assert_int_equal(gm_read(&f->gm, BOOT_INFO_ADDR, mbi, sizeof(mbi)), 0);
	assert_true(mbi[0] & (1u << 0));		  /* mem_* valid */
	assert_true(mbi[0] & (1u << 6));		  /* mmap valid */
	assert_int_equal(mbi[1], BOOT_EBDA_START >> 10);  /* mem_lower, KiB */
	assert_int_equal(mbi[2], (MEM - 0x100000) >> 10); /* mem_upper, KiB */
	assert_int_equal(mbi[4], BOOT_CMDLINE_ADDR);	  /* cmdline */
	assert_int_equal(mbi[11], 2 * 24);		  /* mmap_length */

	/* Required feature bits we do not know are refused. */
	put32(k + hdr_off + 4, flags | (1u << 5));
	put32(k + hdr_off + 8, -(0x1badb002 + (flags | (1u << 5))));
	assert_int_equal(boot_setup(&f->gm, &f->cfg, &f->img, &f->st, &f->err), -ENOEXEC);
	assert_non_null(strstr(f->err.msg, "unsupported"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(bzimage_boot, setup, teardown),
	    cmocka_unit_test_setup_teardown(bzimage_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(pvh_boot, setup, teardown),
	    cmocka_unit_test_setup_teardown(elf_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(multiboot_boot, setup, teardown),
	};
	return cmocka_run_group_tests_name("boot", tests, NULL, NULL);
}

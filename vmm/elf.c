/* Bounds-checked ELF reading (System V ABI, "ELF header" and "Program header" chapters). */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "vmm/elf.h"

bool elf_is_elf(const uint8_t *img, size_t size)
{
	return size >= EI_NIDENT && !memcmp(img, ELFMAG, SELFMAG);
}

static bool is64(const uint8_t *img)
{
	return img[EI_CLASS] == ELFCLASS64;
}

int elf_check(const uint8_t *img, size_t size, struct error *err)
{
	if (!elf_is_elf(img, size))
		return error_set(err, -ENOEXEC, "not an ELF file");
	if (img[EI_DATA] != ELFDATA2LSB)
		return error_set(err, -ENOEXEC, "ELF file is not little-endian");
	uint64_t phoff, phentsize, phnum;
	if (img[EI_CLASS] == ELFCLASS64) {
		if (size < sizeof(Elf64_Ehdr))
			return error_set(err, -ENOEXEC, "ELF header truncated");
		const Elf64_Ehdr *eh = (const void *)img;
		phoff = eh->e_phoff;
		phentsize = eh->e_phentsize;
		phnum = eh->e_phnum;
		if (phentsize != sizeof(Elf64_Phdr))
			return error_set(err, -ENOEXEC, "bad ELF program header size %u",
					 (unsigned)phentsize);
	} else if (img[EI_CLASS] == ELFCLASS32) {
		if (size < sizeof(Elf32_Ehdr))
			return error_set(err, -ENOEXEC, "ELF header truncated");
		const Elf32_Ehdr *eh = (const void *)img;
		phoff = eh->e_phoff;
		phentsize = eh->e_phentsize;
		phnum = eh->e_phnum;
		if (phentsize != sizeof(Elf32_Phdr))
			return error_set(err, -ENOEXEC, "bad ELF program header size %u",
					 (unsigned)phentsize);
	} else {
		return error_set(err, -ENOEXEC, "unknown ELF class %u", img[EI_CLASS]);
	}
	if (phnum == 0 || phoff > size || phnum * phentsize > size - phoff)
		return error_set(err, -ENOEXEC, "ELF program headers lie outside the file");
	for (unsigned i = 0; i < phnum; i++) {
		struct elf_segment s;
		elf_segment(img, i, &s);
		if (s.type != PT_LOAD && s.type != PT_NOTE)
			continue;
		if (s.offset > size || s.filesz > size - s.offset)
			return error_set(err, -ENOEXEC,
					 "ELF segment %u (offset %#llx, %llu bytes) lies outside "
					 "the file",
					 i, (unsigned long long)s.offset,
					 (unsigned long long)s.filesz);
		if (s.type == PT_LOAD && s.memsz < s.filesz)
			return error_set(err, -ENOEXEC, "ELF segment %u: memsz < filesz", i);
	}
	return (int)phnum;
}

uint64_t elf_entry(const uint8_t *img)
{
	if (is64(img))
		return ((const Elf64_Ehdr *)img)->e_entry;
	return ((const Elf32_Ehdr *)img)->e_entry;
}

void elf_segment(const uint8_t *img, unsigned i, struct elf_segment *seg)
{
	if (is64(img)) {
		const Elf64_Ehdr *eh = (const void *)img;
		const Elf64_Phdr *ph = (const void *)(img + eh->e_phoff + i * sizeof(*ph));
		*seg = (struct elf_segment){ph->p_type,	  ph->p_paddr, ph->p_vaddr,
					    ph->p_filesz, ph->p_memsz, ph->p_offset};
	} else {
		const Elf32_Ehdr *eh = (const void *)img;
		const Elf32_Phdr *ph = (const void *)(img + eh->e_phoff + i * sizeof(*ph));
		*seg = (struct elf_segment){ph->p_type,	  ph->p_paddr, ph->p_vaddr,
					    ph->p_filesz, ph->p_memsz, ph->p_offset};
	}
}

static size_t align4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

const uint8_t *elf_find_note(const uint8_t *img, size_t size, const char *name, uint32_t type,
			     size_t *desc_len)
{
	int phnum = elf_check(img, size, NULL);
	size_t name_len = strlen(name) + 1;
	for (int i = 0; i < phnum; i++) {
		struct elf_segment s;
		elf_segment(img, i, &s);
		if (s.type != PT_NOTE)
			continue;
		const uint8_t *p = img + s.offset, *end = p + s.filesz;
		/* Each note: namesz, descsz, type, name (padded to 4), desc (padded to 4). */
		while ((size_t)(end - p) >= 12) {
			uint32_t namesz, descsz, ntype;
			memcpy(&namesz, p, 4);
			memcpy(&descsz, p + 4, 4);
			memcpy(&ntype, p + 8, 4);
			p += 12;
			if (align4(namesz) > (size_t)(end - p))
				break;
			const uint8_t *nm = p;
			p += align4(namesz);
			if (align4(descsz) > (size_t)(end - p))
				break;
			if (ntype == type && namesz == name_len && !memcmp(nm, name, name_len)) {
				*desc_len = descsz;
				return p;
			}
			p += align4(descsz);
		}
	}
	return NULL;
}

int elf_load(const struct guest_mem *gm, const uint8_t *img, size_t size, uint64_t *lowest,
	     uint64_t *highest, struct error *err)
{
	int phnum = elf_check(img, size, err);
	if (phnum < 0)
		return phnum;
	uint64_t lo = UINT64_MAX, hi = 0;
	for (int i = 0; i < phnum; i++) {
		struct elf_segment s;
		elf_segment(img, i, &s);
		if (s.type != PT_LOAD || s.memsz == 0)
			continue;
		uint8_t *dst = gm_ptr(gm, s.paddr, s.memsz);
		if (!dst)
			return error_set(err, -ENOMEM,
					 "ELF segment %d at %#llx (%llu KiB) does not fit in guest "
					 "RAM",
					 i, (unsigned long long)s.paddr,
					 (unsigned long long)(s.memsz >> 10));
		memcpy(dst, img + s.offset, s.filesz);
		memset(dst + s.filesz, 0, s.memsz - s.filesz);
		if (s.paddr < lo)
			lo = s.paddr;
		if (s.paddr + s.memsz > hi)
			hi = s.paddr + s.memsz;
	}
	if (hi == 0)
		return error_set(err, -ENOEXEC, "ELF file has nothing to load");
	*lowest = lo;
	*highest = hi;
	return 0;
}

/* Minimal, bounds-checked ELF32/ELF64 reading for kernel loaders (PVH, multiboot). */
#ifndef KESTREL_VMM_ELF_H
#define KESTREL_VMM_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/guest_mem.h"
#include "util/error.h"

struct elf_segment {
	uint32_t type;
	uint64_t paddr, vaddr, filesz, memsz, offset;
};

/* Validates the ELF header and every program header (sizes, offsets within the file).
 * Returns the number of program headers or a negative error. */
int elf_check(const uint8_t *img, size_t size, struct error *err);
bool elf_is_elf(const uint8_t *img, size_t size);
uint64_t elf_entry(const uint8_t *img);
/* Program header i (after a successful elf_check). */
void elf_segment(const uint8_t *img, unsigned i, struct elf_segment *seg);
/* Find a note `name`/`type` in the PT_NOTE segments; returns its descriptor or NULL. */
const uint8_t *elf_find_note(const uint8_t *img, size_t size, const char *name, uint32_t type,
			     size_t *desc_len);
/* Copy every PT_LOAD segment to guest RAM at its physical address and zero its bss. */
int elf_load(const struct guest_mem *gm, const uint8_t *img, size_t size, uint64_t *lowest,
	     uint64_t *highest, struct error *err);

#endif

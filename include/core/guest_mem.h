/* Guest physical memory: RAM regions backed by host mappings, reached only through
 * accessors that check the address *and* the length. */
#ifndef KESTREL_CORE_GUEST_MEM_H
#define KESTREL_CORE_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

#define GM_MAX_REGIONS 8

struct gm_region {
	uint64_t gpa;  /* guest physical base */
	uint64_t size; /* bytes */
	uint8_t *host; /* host mapping of the whole region */
	const char *name;
};

struct guest_mem {
	struct gm_region regions[GM_MAX_REGIONS];
	unsigned nr_regions;
	uint64_t ram_size; /* total RAM bytes over all regions */
};

/* Map anonymous memory for [gpa, gpa+size) and add it as a region. Returns 0 or -errno. */
int gm_add_ram(struct guest_mem *gm, uint64_t gpa, uint64_t size, const char *name)
    __attribute__((warn_unused_result));
/* Offer every RAM region to KSM (MADV_MERGEABLE), as QEMU's mem-merge=on does: identical
 * pages of guests on one host are shared once ksmd runs. Returns 0 or -errno. */
int gm_set_mergeable(struct guest_mem *gm);
void gm_destroy(struct guest_mem *gm);

/* Host pointer to [gpa, gpa+len) if it lies entirely inside one RAM region, else NULL. */
void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
/* Copy to/from guest RAM. Return 0, or -EFAULT if any byte is outside RAM. */
int gm_read(const struct guest_mem *gm, uint64_t gpa, void *buf, uint64_t len)
    __attribute__((warn_unused_result));
int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *buf, uint64_t len)
    __attribute__((warn_unused_result));

#endif

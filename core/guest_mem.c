/* Guest physical memory regions and their bounds-checked accessors. */
#define LOG_SUBSYS "mem"
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "core/guest_mem.h"
#include "util/log.h"

#define HUGE_2M (2ull << 20)

/* Anonymous memory starting on a 2 MiB boundary: guest and host huge pages then line up, so
 * transparent huge pages can back the guest's 2 MiB pages (Linux before 6.7 does not align
 * large anonymous mappings by itself). Over-map by 2 MiB and give back both ends. */
static void *map_aligned(uint64_t size)
{
	const int prot = PROT_READ | PROT_WRITE;
	const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
	if (size < HUGE_2M || size + HUGE_2M < size)
		return mmap(NULL, size, prot, flags, -1, 0);
	uint8_t *raw = mmap(NULL, size + HUGE_2M, prot, flags, -1, 0);
	if (raw == MAP_FAILED)
		return MAP_FAILED;
	uint8_t *host = (uint8_t *)(((uintptr_t)raw + HUGE_2M - 1) & ~(uintptr_t)(HUGE_2M - 1));
	if (host > raw)
		munmap(raw, host - raw);
	size_t tail = (raw + size + HUGE_2M) - (host + size);
	if (tail)
		munmap(host + size, tail);
	return host;
}

int gm_add_ram(struct guest_mem *gm, uint64_t gpa, uint64_t size, const char *name)
{
	if (gm->nr_regions >= GM_MAX_REGIONS || size == 0 || gpa + size < gpa)
		return -EINVAL;
	void *host = map_aligned(size);
	if (host == MAP_FAILED)
		return -errno;
	/* Transparent huge pages cut TLB misses for the guest; a hint, so failure is fine. */
	madvise(host, size, MADV_HUGEPAGE);
	gm->regions[gm->nr_regions++] =
	    (struct gm_region){.gpa = gpa, .size = size, .host = host, .name = name};
	gm->ram_size += size;
	return 0;
}

int gm_set_mergeable(struct guest_mem *gm)
{
	for (unsigned i = 0; i < gm->nr_regions; i++)
		if (madvise(gm->regions[i].host, gm->regions[i].size, MADV_MERGEABLE))
			return -errno;
	return 0;
}

void gm_destroy(struct guest_mem *gm)
{
	for (unsigned i = 0; i < gm->nr_regions; i++)
		munmap(gm->regions[i].host, gm->regions[i].size);
	memset(gm, 0, sizeof(*gm));
}

void *gm_ptr(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->regions[i];
		/* Written so that neither gpa + len nor gpa - r->gpa can wrap. */
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->host + (gpa - r->gpa);
	}
	return NULL;
}

int gm_read(const struct guest_mem *gm, uint64_t gpa, void *buf, uint64_t len)
{
	void *p = gm_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(buf, p, len);
	return 0;
}

int gm_write(const struct guest_mem *gm, uint64_t gpa, const void *buf, uint64_t len)
{
	void *p = gm_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, buf, len);
	return 0;
}

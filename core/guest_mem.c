/* Guest physical memory regions and their bounds-checked accessors. */
#define LOG_SUBSYS "mem"
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "core/guest_mem.h"
#include "util/log.h"

int gm_add_ram(struct guest_mem *gm, uint64_t gpa, uint64_t size, const char *name)
{
	if (gm->nr_regions >= GM_MAX_REGIONS || size == 0 || gpa + size < gpa)
		return -EINVAL;
	void *host = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
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

/* Port and MMIO dispatch over copy-on-write snapshots of sorted ranges (see io_bus.h). */
#define LOG_SUBSYS "iobus"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/io_bus.h"
#include "util/log.h"

struct io_map {
	struct io_map *next_retired;
	unsigned nr;
	struct io_range ranges[]; /* sorted by base, then by priority (higher first) */
};

static struct io_map *map_alloc(unsigned nr)
{
	struct io_map *m = calloc(1, sizeof(*m) + nr * sizeof(struct io_range));
	if (m)
		m->nr = nr;
	return m;
}

void io_bus_init(struct io_bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
	bus->map = map_alloc(0);
	pthread_mutex_init(&bus->lock, NULL);
	bus->next_id = 1;
}

void io_bus_destroy(struct io_bus *bus)
{
	struct io_map *m = bus->retired;
	while (m) {
		struct io_map *next = m->next_retired;
		free(m);
		m = next;
	}
	free(bus->map);
	bus->map = NULL;
	bus->retired = NULL;
	pthread_mutex_destroy(&bus->lock);
}

static int range_cmp(const void *a, const void *b)
{
	const struct io_range *x = a, *y = b;
	if (x->base != y->base)
		return x->base < y->base ? -1 : 1;
	return y->priority - x->priority;
}

/* Publish a new snapshot; caller holds bus->lock. Takes ownership of `m`. */
static void publish(struct io_bus *bus, struct io_map *m)
{
	qsort(m->ranges, m->nr, sizeof(m->ranges[0]), range_cmp);
	struct io_map *old = bus->map;
	bus->map = m;
	old->next_retired = bus->retired;
	bus->retired = old;
}

int io_bus_register_prio(struct io_bus *bus, uint64_t base, uint64_t len, const struct io_ops *ops,
			 void *opaque, const char *name, int priority)
{
	if (len == 0 || base + len - 1 < base || !ops)
		return -EINVAL;
	pthread_mutex_lock(&bus->lock);
	struct io_map *old = bus->map;
	struct io_map *m = map_alloc(old->nr + 1);
	if (!m) {
		pthread_mutex_unlock(&bus->lock);
		return -ENOMEM;
	}
	memcpy(m->ranges, old->ranges, old->nr * sizeof(old->ranges[0]));
	int id = bus->next_id++;
	m->ranges[old->nr] = (struct io_range){.base = base,
					       .len = len,
					       .ops = ops,
					       .opaque = opaque,
					       .name = name,
					       .priority = priority,
					       .id = id};
	publish(bus, m);
	pthread_mutex_unlock(&bus->lock);
	return id;
}

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, const struct io_ops *ops,
		    void *opaque, const char *name)
{
	return io_bus_register_prio(bus, base, len, ops, opaque, name, 0);
}

/* Copy the current map, apply fn to the range with `handle`, publish. */
static int modify(struct io_bus *bus, int handle, uint64_t new_base, bool remove)
{
	pthread_mutex_lock(&bus->lock);
	struct io_map *old = bus->map;
	struct io_map *m = map_alloc(old->nr);
	int ret = -ENOENT;
	if (!m) {
		pthread_mutex_unlock(&bus->lock);
		return -ENOMEM;
	}
	unsigned n = 0;
	for (unsigned i = 0; i < old->nr; i++) {
		struct io_range r = old->ranges[i];
		if (r.id == (unsigned)handle) {
			ret = 0;
			if (remove)
				continue;
			if (new_base + r.len - 1 < new_base) {
				ret = -EINVAL;
			} else {
				r.base = new_base;
			}
		}
		m->ranges[n++] = r;
	}
	m->nr = n;
	if (ret == 0)
		publish(bus, m);
	else
		free(m);
	pthread_mutex_unlock(&bus->lock);
	return ret;
}

int io_bus_move(struct io_bus *bus, int handle, uint64_t new_base)
{
	return modify(bus, handle, new_base, false);
}

int io_bus_remove(struct io_bus *bus, int handle)
{
	return modify(bus, handle, 0, true);
}

/* The highest-priority range containing addr, or NULL. Ranges are few (tens), so after a
 * binary search for the last range starting at or below addr a short backward scan finds
 * overlapping ones. */
static const struct io_range *lookup(const struct io_map *m, uint64_t addr)
{
	unsigned lo = 0, hi = m->nr;
	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (m->ranges[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	const struct io_range *best = NULL;
	for (unsigned i = lo; i-- > 0;) {
		const struct io_range *r = &m->ranges[i];
		if (addr - r->base < r->len && (!best || r->priority > best->priority))
			best = r;
	}
	return best;
}

static uint64_t size_mask(unsigned size)
{
	return size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1;
}

bool io_bus_read(struct io_bus *bus, uint64_t addr, unsigned size, uint64_t *value)
{
	const struct io_range *r = lookup(bus->map, addr);
	if (!r || !r->ops->read) {
		*value = size_mask(size);
		return r != NULL;
	}
	*value = r->ops->read(r->opaque, addr - r->base, size) & size_mask(size);
	return true;
}

bool io_bus_write(struct io_bus *bus, uint64_t addr, unsigned size, uint64_t value)
{
	const struct io_range *r = lookup(bus->map, addr);
	if (!r)
		return false;
	if (r->ops->write)
		r->ops->write(r->opaque, addr - r->base, value & size_mask(size), size);
	return true;
}

int io_bus_foreach(struct io_bus *bus, int (*fn)(const struct io_range *r, void *arg), void *arg)
{
	const struct io_map *m = bus->map;
	for (unsigned i = 0; i < m->nr; i++) {
		int ret = fn(&m->ranges[i], arg);
		if (ret)
			return ret;
	}
	return 0;
}

void io_bus_dump(struct io_bus *bus, FILE *out, int indent)
{
	const struct io_map *m = bus->map;
	for (unsigned i = 0; i < m->nr; i++) {
		const struct io_range *r = &m->ranges[i];
		fprintf(out, "%*s%016" PRIx64 "-%016" PRIx64 " (prio %d, i/o): %s\n", indent, "",
			r->base, r->base + r->len - 1, r->priority, r->name ? r->name : "?");
	}
}

/* The I/O buses: port I/O (16-bit address space) and MMIO (guest physical addresses).
 *
 * A device registers ranges with an ops table and an opaque pointer; an exit from the
 * accelerator is dispatched to the range that owns the address. Lookups run on vCPU threads
 * without a lock: the range table is an immutable snapshot replaced as a whole when a range
 * is added, moved or removed (a PCI BAR reprogrammed by the guest), and old snapshots stay
 * allocated until the bus is destroyed, so a vCPU still reading one never touches freed
 * memory. Devices themselves outlive the bus (no hot-unplug), so `opaque` stays valid.
 */
#ifndef KESTREL_CORE_IO_BUS_H
#define KESTREL_CORE_IO_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* A named part of a range, for "info mtree" only (dispatch does not look at it). */
struct io_subregion {
	uint64_t offset, len;
	char name[64];
};

struct io_ops {
	/* size is 1, 2, 4 or 8; offset is relative to the range's base. */
	uint64_t (*read)(void *opaque, uint64_t offset, unsigned size);
	void (*write)(void *opaque, uint64_t offset, uint64_t value, unsigned size);
	/* Optional: fill at most max parts of the range (as QEMU's subregions show them), in
	 * address order; returns how many. */
	unsigned (*subregions)(void *opaque, struct io_subregion *out, unsigned max);
};

struct io_range {
	uint64_t base, len;
	const struct io_ops *ops;
	void *opaque;
	const char *name;
	int priority; /* on overlap the higher priority wins (like QEMU's subregion priority) */
	unsigned id;  /* stable handle for move/remove */
};

struct io_map; /* immutable sorted snapshot */

struct io_bus {
	const char *name; /* "io" or "memory", as info mtree prints it */
	struct io_map *_Atomic map;
	pthread_mutex_t lock;	/* serialises writers */
	struct io_map *retired; /* old snapshots, freed with the bus */
	unsigned next_id;
};

void io_bus_init(struct io_bus *bus, const char *name);
void io_bus_destroy(struct io_bus *bus);

/* Register [base, base+len). Returns a handle (> 0) for io_bus_move/remove, or -errno. */
int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, const struct io_ops *ops,
		    void *opaque, const char *name);
int io_bus_register_prio(struct io_bus *bus, uint64_t base, uint64_t len, const struct io_ops *ops,
			 void *opaque, const char *name, int priority);
int io_bus_move(struct io_bus *bus, int handle, uint64_t new_base);
int io_bus_remove(struct io_bus *bus, int handle);

/* Dispatch an access. Returns true if a range took it; an unclaimed read returns all ones,
 * like an ISA/PCI bus with nothing answering. Accesses that straddle the end of a range are
 * cut to the part inside it. */
bool io_bus_read(struct io_bus *bus, uint64_t addr, unsigned size, uint64_t *value);
bool io_bus_write(struct io_bus *bus, uint64_t addr, unsigned size, uint64_t value);

/* Print the ranges, one per line, as "  base-end (prio N): name". */
void io_bus_dump(struct io_bus *bus, FILE *out, int indent);
/* Iterate over the ranges in address order; stop when fn returns non-zero. */
int io_bus_foreach(struct io_bus *bus, int (*fn)(const struct io_range *r, void *arg), void *arg);

#endif

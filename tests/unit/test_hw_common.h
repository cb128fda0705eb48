/* Helpers shared by the device tests (tests/unit/test_hw_*.c): an irq_router that records
 * line levels, byte-wide port accessors on an io_bus and a fake clock source. */
#ifndef KESTREL_TEST_HW_COMMON_H
#define KESTREL_TEST_HW_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/io_bus.h"
#include "core/irq.h"

struct irq_rec {
	bool level[32];
	unsigned raises[32]; /* rising edges seen per line */
	unsigned sets;	     /* set_line calls */
};

static inline void rec_set_line(void *opaque, unsigned gsi, bool level)
{
	struct irq_rec *r = opaque;
	if (gsi >= 32)
		return;
	if (level && !r->level[gsi])
		r->raises[gsi]++;
	r->level[gsi] = level;
	r->sets++;
}

static const struct irq_router_ops rec_ops __attribute__((unused)) = {.set_line = rec_set_line};

static inline void irq_rec_init(struct irq_rec *rec, struct irq_router *router)
{
	memset(rec, 0, sizeof(*rec));
	router->ops = &rec_ops;
	router->opaque = rec;
}

static inline uint8_t inb(struct io_bus *bus, uint16_t port)
{
	uint64_t v = 0;
	io_bus_read(bus, port, 1, &v);
	return (uint8_t)v;
}

static inline void outb(struct io_bus *bus, uint16_t port, uint8_t v)
{
	io_bus_write(bus, port, 1, v);
}

static uint64_t fake_now_ns __attribute__((unused));

static inline uint64_t fake_clock(void *opaque)
{
	(void)opaque;
	return fake_now_ns;
}

#endif

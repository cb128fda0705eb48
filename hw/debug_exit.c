/* Debug-exit port, modelled on QEMU's isa-debug-exit device (docs: "-device
 * isa-debug-exit,iobase=0xf4,iosize=0x04"), and the POST diagnostic port 0x80 of the
 * IBM PC/AT. See debug_exit.h. */
#define LOG_SUBSYS "debug-exit"
#include <errno.h>

#include "core/io_bus.h"
#include "core/state.h"
#include "hw/debug_exit.h"
#include "util/log.h"

#define STATE_VERSION 1

static uint64_t debug_exit_read(void *opaque, uint64_t offset, unsigned size)
{
	return UINT64_MAX; /* nothing to read: like an empty bus */
}

static void debug_exit_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
	struct debug_exit *d = opaque;
	/* The value as the guest wrote it (the bus cut it to the access size); a 32-bit
	 * value shifted left still fits: keep the low 31 bits of the code positive. */
	int code = (int)(((uint32_t)value << 1 | 1) & 0x7fffffff);

	log_info("guest wrote 0x%llx to the debug-exit port: exit code %d",
		 (unsigned long long)value, code);
	if (d->exit)
		d->exit(d->opaque, code);
}

static const struct io_ops debug_exit_ops = {
    .read = debug_exit_read,
    .write = debug_exit_write,
};

void debug_exit_init(struct debug_exit *d, uint16_t port, void (*exit_cb)(void *opaque, int code),
		     void *opaque)
{
	d->port = port;
	d->exit = exit_cb;
	d->opaque = opaque;
}

int debug_exit_register(struct debug_exit *d, struct io_bus *pio)
{
	int ret = io_bus_register(pio, d->port, DEBUG_EXIT_SIZE, &debug_exit_ops, d, "debug-exit");
	return ret < 0 ? ret : 0;
}

static uint64_t port80_read(void *opaque, uint64_t offset, unsigned size)
{
	return UINT64_MAX;
}

static void port80_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
}

static const struct io_ops port80_ops = {
    .read = port80_read,
    .write = port80_write,
};

int port80_register(struct io_bus *pio)
{
	int ret = io_bus_register(pio, PORT80_PORT, 1, &port80_ops, NULL, "port80");
	return ret < 0 ? ret : 0;
}

int debug_exit_save(const struct debug_exit *d, struct state_buf *out)
{
	state_put_u8(out, STATE_VERSION);
	return state_status(out);
}

int debug_exit_load(struct debug_exit *d, struct state_buf *in)
{
	if (state_get_u8(in) != STATE_VERSION)
		return -EINVAL;
	return state_status(in);
}

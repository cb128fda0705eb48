/* The debug-exit port (QEMU's isa-debug-exit) and the POST code port 0x80.
 *
 * A guest write of V to the debug-exit port asks the VMM to exit with status (V << 1) | 1,
 * so a test guest can report a result with one `out` instruction (and no status it picks
 * can be mistaken for a clean 0). Port 0x80 is where firmware and Linux's slow-down
 * `outb_p` write: it swallows writes and reads as 0xff.
 *
 * The exit callback runs on the vCPU thread that wrote, without any device lock held.
 */
#ifndef KESTREL_HW_DEBUG_EXIT_H
#define KESTREL_HW_DEBUG_EXIT_H

#include <stdint.h>

struct io_bus;
struct state_buf;

#define DEBUG_EXIT_PORT 0xf4
#define DEBUG_EXIT_SIZE 4
#define PORT80_PORT	0x80

struct debug_exit {
	uint16_t port;
	void (*exit)(void *opaque, int code);
	void *opaque;
};

void debug_exit_init(struct debug_exit *d, uint16_t port, void (*exit_cb)(void *opaque, int code),
		     void *opaque);
/* Register the 4-byte debug-exit range. */
int debug_exit_register(struct debug_exit *d, struct io_bus *pio);
/* Register port 0x80 (stateless). */
int port80_register(struct io_bus *pio);

/* No guest-visible state; these only write/check a version byte so every device has them. */
int debug_exit_save(const struct debug_exit *d, struct state_buf *out);
int debug_exit_load(struct debug_exit *d, struct state_buf *in);

#endif

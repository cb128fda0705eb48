/* i8042 keyboard controller (ports 0x60/0x64) with a PS/2 keyboard (IRQ 1) and a minimal
 * PS/2 mouse (IRQ 12) behind it.
 *
 * Threads and locking: port I/O on vCPU threads, i8042_key_event() on the main thread (QMP
 * send-key, console), one mutex per controller. irq_line_set() is called with it held (the
 * router never calls back into a device). The `reset` and `a20` callbacks are called
 * WITHOUT the lock, after the port access finished: they may reset the machine, which
 * calls i8042_reset() on this device.
 */
#ifndef KESTREL_HW_I8042_H
#define KESTREL_HW_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/irq.h"

struct io_bus;
struct state_buf;

#define I8042_DATA_PORT	   0x60
#define I8042_COMMAND_PORT 0x64
#define I8042_KBD_IRQ	   1
#define I8042_AUX_IRQ	   12
#define I8042_QUEUE_SIZE   64

struct i8042_ops {
	/* The guest pulsed the reset line (command 0xFE, or output port bit 0 cleared). */
	void (*reset)(void *opaque);
	/* Optional: the guest switched the A20 gate (output port bit 1). */
	void (*a20)(void *opaque, bool enabled);
};

/* A byte FIFO; `aux` entries in the controller queue go out as mouse data. */
struct i8042_queue {
	uint8_t data[I8042_QUEUE_SIZE];
	uint8_t aux[I8042_QUEUE_SIZE]; /* used by the controller queue only */
	unsigned head, count;
};

struct i8042 {
	pthread_mutex_t lock;
	struct irq_router *irq_router;
	const struct i8042_ops *ops;
	void *opaque;

	/* Controller */
	uint8_t ram[32]; /* internal RAM; ram[0] is the command byte */
	uint8_t outport;
	uint8_t pending_cmd; /* controller command waiting for its data byte, 0 if none */
	bool last_write_cmd; /* status bit 3: last write went to 0x64 */
	uint8_t obuf;	     /* output buffer */
	bool obf, obuf_aux;
	bool xlate_break; /* translating: an F0 was swallowed, OR 0x80 into the next byte */
	struct i8042_queue ctrl_q;
	bool irq1_level, irq12_level;

	/* Keyboard */
	struct i8042_queue kbd_q;
	uint8_t kbd_pending_cmd; /* ED/F0/F3 waiting for an argument */
	uint8_t kbd_last;	 /* for the Resend command */
	bool kbd_scanning;
	uint8_t kbd_set, kbd_leds, kbd_typematic;

	/* Mouse */
	struct i8042_queue aux_q;
	uint8_t aux_pending_cmd; /* E8/F3 waiting for an argument */
	bool aux_reporting, aux_remote, aux_scaling21;
	uint8_t aux_rate, aux_resolution;
};

void i8042_init(struct i8042 *k, struct irq_router *router, const struct i8042_ops *ops,
		void *opaque);
void i8042_destroy(struct i8042 *k);
/* Register ports 0x60 and 0x64. */
int i8042_register(struct i8042 *k, struct io_bus *pio);
/* Power-on state as a BIOS leaves it: translation on, keyboard interrupt on, mouse off. */
void i8042_reset(struct i8042 *k);

/* A key went down or up; keycode from hw/keymap.h. Returns 0, -ENOENT for a key without
 * a scancode, -EAGAIN while the keyboard does not scan (disabled by the guest) or -ENOSPC
 * when its buffer is full. */
int i8042_key_event(struct i8042 *k, int keycode, bool down);

/* Relative mouse motion (dx right, dy up, PS/2 convention) and buttons (bit 0 left, 1 right,
 * 2 middle). Sent as one 3-byte packet while the guest enabled reporting; motion beyond
 * +-255 is clamped. Returns 0, -EAGAIN when reporting is off or -ENOSPC when full. */
int i8042_mouse_event(struct i8042 *k, int dx, int dy, unsigned buttons);

int i8042_save(struct i8042 *k, struct state_buf *out);
int i8042_load(struct i8042 *k, struct state_buf *in);

#endif

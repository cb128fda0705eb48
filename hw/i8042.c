/* i8042 keyboard controller with a PS/2 keyboard and a minimal PS/2 mouse.
 *
 * Follows the IBM PS/2 Hardware Interface Technical Reference ("Keyboard/Auxiliary Device
 * Controller": status register, command byte, controller commands 0x20-0xFF, output port)
 * and the PS/2 keyboard and mouse command sets from the same reference.
 *
 * Guests that stress it: Linux's i8042 driver (flush, self-test 0xAA, CTR read/write, the
 * AUX loopback test 0xD3 that must come back with the AUX status bit and on IRQ 12, port
 * enable/disable), atkbd (GETID 0xF2, SETLEDS, scancode set, typematic, enable) and psmouse
 * (reset, GETID, status request, rate sequences).
 *
 * Data leaves through one output buffer. When it is empty, it is refilled from the
 * controller's own replies first, then the keyboard, then the mouse; a device whose
 * interface is disabled in the command byte keeps its bytes. Keyboard bytes pass through
 * the set 2 -> set 1 translation when command byte bit 6 is set, as on real hardware
 * (that includes replies: GETID's 0x83 reads as 0x41).
 */
#define LOG_SUBSYS "i8042"
#include <errno.h>
#include <string.h>

#include "core/io_bus.h"
#include "core/state.h"
#include "hw/i8042.h"
#include "hw/keymap.h"
#include "util/log.h"

/* Status register */
#define STR_OBF	    0x01
#define STR_SYS	    0x04
#define STR_CMD	    0x08
#define STR_UNLOCK  0x10
#define STR_AUXDATA 0x20

/* Command byte */
#define CTR_KBDINT  0x01
#define CTR_AUXINT  0x02
#define CTR_SYS	    0x04
#define CTR_KBDDIS  0x10
#define CTR_AUXDIS  0x20
#define CTR_XLATE   0x40
#define CTR_DEFAULT (CTR_XLATE | CTR_AUXDIS | CTR_SYS | CTR_KBDINT)

/* Output port */
#define OUT_RESET_N 0x01 /* low resets the CPU */
#define OUT_A20	    0x02
#define OUT_KBD_OBF 0x10
#define OUT_AUX_OBF 0x20

/* Replies */
#define ACK	  0xfa
#define RESEND	  0xfe
#define BAT_OK	  0xaa
#define ECHO	  0xee
#define MOUSE_ID  0x00
#define SELF_TEST 0x55

#define STATE_VERSION 1

/* --- queues ------------------------------------------------------------------------- */

static bool q_push(struct i8042_queue *q, uint8_t v, bool aux)
{
	if (q->count >= I8042_QUEUE_SIZE)
		return false;
	unsigned i = (q->head + q->count) % I8042_QUEUE_SIZE;
	q->data[i] = v;
	q->aux[i] = aux;
	q->count++;
	return true;
}

static uint8_t q_pop(struct i8042_queue *q, bool *aux)
{
	uint8_t v = q->data[q->head];
	if (aux)
		*aux = q->aux[q->head];
	q->head = (q->head + 1) % I8042_QUEUE_SIZE;
	q->count--;
	return v;
}

static void q_clear(struct i8042_queue *q)
{
	q->head = 0;
	q->count = 0;
}

static unsigned q_space(const struct i8042_queue *q)
{
	return I8042_QUEUE_SIZE - q->count;
}

/* --- output buffer and IRQs ---------------------------------------------------------- */

static uint8_t ctr(const struct i8042 *k)
{
	return k->ram[0];
}

static void update_irq(struct i8042 *k, bool force)
{
	bool kbd = k->obf && !k->obuf_aux && (ctr(k) & CTR_KBDINT);
	bool aux = k->obf && k->obuf_aux && (ctr(k) & CTR_AUXINT);
	if (force || kbd != k->irq1_level) {
		k->irq1_level = kbd;
		irq_line_set(k->irq_router, I8042_KBD_IRQ, kbd);
	}
	if (force || aux != k->irq12_level) {
		k->irq12_level = aux;
		irq_line_set(k->irq_router, I8042_AUX_IRQ, aux);
	}
}

/* Take the next keyboard byte, translated if the command byte says so. Returns false if
 * nothing can go out yet (an F0 with its byte still to come). */
static bool next_kbd_byte(struct i8042 *k, uint8_t *out)
{
	while (k->kbd_q.count) {
		uint8_t b = q_pop(&k->kbd_q, NULL);
		if (!(ctr(k) & CTR_XLATE)) {
			*out = b;
			return true;
		}
		if (b == 0xf0) {
			k->xlate_break = true;
			continue;
		}
		*out = keymap_set2_to_set1(b) | (k->xlate_break ? 0x80 : 0);
		k->xlate_break = false;
		return true;
	}
	return false;
}

static void refill(struct i8042 *k)
{
	if (k->obf)
		return;
	if (k->ctrl_q.count) {
		bool aux;
		k->obuf = q_pop(&k->ctrl_q, &aux);
		k->obuf_aux = aux;
		k->obf = true;
	} else if (!(ctr(k) & CTR_KBDDIS) && next_kbd_byte(k, &k->obuf)) {
		k->obuf_aux = false;
		k->obf = true;
	} else if (!(ctr(k) & CTR_AUXDIS) && k->aux_q.count) {
		k->obuf = q_pop(&k->aux_q, NULL);
		k->obuf_aux = true;
		k->obf = true;
	}
}

static void ctrl_reply(struct i8042 *k, uint8_t v, bool aux)
{
	if (!q_push(&k->ctrl_q, v, aux))
		log_guest_error("controller reply 0x%02x dropped: %u unread replies", v,
				I8042_QUEUE_SIZE);
}

static void kbd_reply(struct i8042 *k, uint8_t v)
{
	if (q_push(&k->kbd_q, v, false))
		k->kbd_last = v;
}

static void aux_reply(struct i8042 *k, uint8_t v)
{
	q_push(&k->aux_q, v, false);
}

/* --- keyboard ------------------------------------------------------------------------ */

static void kbd_defaults(struct i8042 *k)
{
	k->kbd_set = 2;
	k->kbd_typematic = 0x2b; /* 10.9 cps, 500 ms */
	k->kbd_pending_cmd = 0;
}

static void kbd_command(struct i8042 *k, uint8_t v)
{
	/* An argument for ED/F0/F3; a byte >= 0xED is a new command instead. */
	if (k->kbd_pending_cmd && v < 0xed) {
		uint8_t cmd = k->kbd_pending_cmd;
		k->kbd_pending_cmd = 0;
		switch (cmd) {
		case 0xed:
			k->kbd_leds = v & 0x07;
			kbd_reply(k, ACK);
			return;
		case 0xf3:
			k->kbd_typematic = v & 0x7f;
			kbd_reply(k, ACK);
			return;
		case 0xf0:
			if (v == 0) {
				kbd_reply(k, ACK);
				kbd_reply(k, k->kbd_set);
			} else if (v <= 3) {
				if (v != 2)
					log_info("guest selected scancode set %u; keys are sent in "
						 "set 2%s",
						 v, v == 1 ? " translated to set 1" : "");
				k->kbd_set = v;
				kbd_reply(k, ACK);
			} else {
				kbd_reply(k, RESEND);
			}
			return;
		}
	}
	k->kbd_pending_cmd = 0;
	switch (v) {
	case 0xff: /* reset and self-test */
		q_clear(&k->kbd_q);
		kbd_defaults(k);
		k->kbd_leds = 0;
		k->kbd_scanning = true;
		kbd_reply(k, ACK);
		kbd_reply(k, BAT_OK);
		break;
	case 0xfe: /* resend */
		q_push(&k->kbd_q, k->kbd_last, false);
		break;
	case 0xf2: /* identify: MF2 keyboard */
		kbd_reply(k, ACK);
		kbd_reply(k, 0xab);
		kbd_reply(k, 0x83);
		break;
	case 0xf4:
		k->kbd_scanning = true;
		kbd_reply(k, ACK);
		break;
	case 0xf5: /* disable: defaults, clear buffer, stop scanning */
		q_clear(&k->kbd_q);
		kbd_defaults(k);
		k->kbd_scanning = false;
		kbd_reply(k, ACK);
		break;
	case 0xf6: /* defaults, clear buffer, keep scanning */
		q_clear(&k->kbd_q);
		kbd_defaults(k);
		kbd_reply(k, ACK);
		break;
	case 0xee:
		kbd_reply(k, ECHO);
		break;
	case 0xed:
	case 0xf0:
	case 0xf3:
		k->kbd_pending_cmd = v;
		kbd_reply(k, ACK);
		break;
	case 0xf7: /* set 3 key attributes: accepted and ignored */
	case 0xf8:
	case 0xf9:
	case 0xfa:
	case 0xfb:
	case 0xfc:
	case 0xfd:
		kbd_reply(k, ACK);
		break;
	default:
		log_guest_error("unknown keyboard command 0x%02x", v);
		kbd_reply(k, RESEND);
		break;
	}
}

/* --- mouse --------------------------------------------------------------------------- */

static void aux_defaults(struct i8042 *k)
{
	k->aux_rate = 100;
	k->aux_resolution = 2; /* 4 counts/mm */
	k->aux_scaling21 = false;
	k->aux_reporting = false;
	k->aux_remote = false;
	k->aux_pending_cmd = 0;
}

static void aux_command(struct i8042 *k, uint8_t v)
{
	if (k->aux_pending_cmd) {
		uint8_t cmd = k->aux_pending_cmd;
		k->aux_pending_cmd = 0;
		if (cmd == 0xf3)
			k->aux_rate = v;
		else
			k->aux_resolution = v & 3;
		aux_reply(k, ACK);
		return;
	}
	switch (v) {
	case 0xff:
		q_clear(&k->aux_q);
		aux_defaults(k);
		aux_reply(k, ACK);
		aux_reply(k, BAT_OK);
		aux_reply(k, MOUSE_ID);
		break;
	case 0xf6:
		aux_defaults(k);
		aux_reply(k, ACK);
		break;
	case 0xf5:
		k->aux_reporting = false;
		aux_reply(k, ACK);
		break;
	case 0xf4:
		k->aux_reporting = true;
		aux_reply(k, ACK);
		break;
	case 0xf2:
		aux_reply(k, ACK);
		aux_reply(k, MOUSE_ID);
		break;
	case 0xf3:
	case 0xe8:
		k->aux_pending_cmd = v;
		aux_reply(k, ACK);
		break;
	case 0xe6:
	case 0xe7:
		k->aux_scaling21 = v == 0xe7;
		aux_reply(k, ACK);
		break;
	case 0xea:
	case 0xf0:
		k->aux_remote = v == 0xf0;
		aux_reply(k, ACK);
		break;
	case 0xe9: /* status: mode/enable/scaling/buttons, resolution, rate */
		aux_reply(k, ACK);
		aux_reply(k, (k->aux_remote ? 0x40 : 0) | (k->aux_reporting ? 0x20 : 0) |
				 (k->aux_scaling21 ? 0x10 : 0));
		aux_reply(k, k->aux_resolution);
		aux_reply(k, k->aux_rate);
		break;
	case 0xeb: /* read data: no movement, no buttons */
		aux_reply(k, ACK);
		aux_reply(k, 0x08);
		aux_reply(k, 0);
		aux_reply(k, 0);
		break;
	case 0xec: /* wrap mode is not emulated: acknowledge and stay in stream mode */
	case 0xee:
		aux_reply(k, ACK);
		break;
	default:
		log_guest_error("unknown mouse command 0x%02x", v);
		aux_reply(k, RESEND);
		break;
	}
}

/* --- controller ---------------------------------------------------------------------- */

struct deferred {
	bool reset;
	bool a20_changed, a20;
};

static void write_outport(struct i8042 *k, uint8_t v, struct deferred *d)
{
	uint8_t old = k->outport;
	k->outport = v | OUT_RESET_N; /* the reset line comes back up after the pulse */
	if (!(v & OUT_RESET_N))
		d->reset = true;
	if ((old ^ v) & OUT_A20) {
		d->a20_changed = true;
		d->a20 = v & OUT_A20;
	}
}

static void controller_command(struct i8042 *k, uint8_t cmd, struct deferred *d)
{
	if (cmd >= 0x20 && cmd <= 0x3f) {
		ctrl_reply(k, k->ram[cmd & 0x1f], false);
		return;
	}
	if ((cmd >= 0x60 && cmd <= 0x7f) || cmd == 0xd1 || cmd == 0xd2 || cmd == 0xd3 ||
	    cmd == 0xd4) {
		k->pending_cmd = cmd;
		return;
	}
	if (cmd >= 0xf0) {
		/* Pulse output port bits 0-3 low for those cleared in the command. */
		if (!(cmd & 0x01))
			d->reset = true;
		return;
	}
	switch (cmd) {
	case 0xa4: /* password installed? no */
		ctrl_reply(k, 0xf1, false);
		break;
	case 0xa7:
		k->ram[0] |= CTR_AUXDIS;
		break;
	case 0xa8:
		k->ram[0] &= ~CTR_AUXDIS;
		break;
	case 0xa9: /* aux interface test: no error */
	case 0xab: /* keyboard interface test: no error */
		ctrl_reply(k, 0x00, false);
		break;
	case 0xaa:
		k->ram[0] |= CTR_SYS;
		ctrl_reply(k, SELF_TEST, false);
		break;
	case 0xad:
		k->ram[0] |= CTR_KBDDIS;
		break;
	case 0xae:
		k->ram[0] &= ~CTR_KBDDIS;
		break;
	case 0xc0: /* input port: keyboard not locked */
		ctrl_reply(k, 0x80, false);
		break;
	case 0xd0: /* output port, with the live OBF lines */
		ctrl_reply(k,
			   (k->outport & ~(OUT_KBD_OBF | OUT_AUX_OBF)) |
			       (k->obf && !k->obuf_aux ? OUT_KBD_OBF : 0) |
			       (k->obf && k->obuf_aux ? OUT_AUX_OBF : 0),
			   false);
		break;
	case 0xdd:
		write_outport(k, k->outport & ~OUT_A20, d);
		break;
	case 0xdf:
		write_outport(k, k->outport | OUT_A20, d);
		break;
	case 0xe0: /* test inputs */
		ctrl_reply(k, 0x00, false);
		break;
	default:
		log_guest_error("unknown controller command 0x%02x", cmd);
		break;
	}
}

static void data_write(struct i8042 *k, uint8_t v, struct deferred *d)
{
	uint8_t cmd = k->pending_cmd;
	k->pending_cmd = 0;
	if (cmd >= 0x60 && cmd <= 0x7f) {
		k->ram[cmd & 0x1f] = v;
		return;
	}
	switch (cmd) {
	case 0xd1:
		write_outport(k, v, d);
		break;
	case 0xd2: /* as if from the keyboard, untranslated */
		ctrl_reply(k, v, false);
		break;
	case 0xd3: /* as if from the mouse: Linux's AUX loopback test */
		ctrl_reply(k, v, true);
		break;
	case 0xd4:
		aux_command(k, v);
		break;
	default:
		kbd_command(k, v);
		break;
	}
}

static uint8_t port_read(struct i8042 *k, bool data_port)
{
	uint8_t v;

	pthread_mutex_lock(&k->lock);
	if (data_port) {
		v = k->obuf; /* an empty buffer reads the last byte again */
		k->obf = false;
		/* Drop the line before the next byte raises it: the PIC is edge-triggered and
		 * Linux takes one byte per interrupt. */
		update_irq(k, false);
		refill(k);
	} else {
		v = (k->obf ? STR_OBF : 0) | (ctr(k) & CTR_SYS ? STR_SYS : 0) |
		    (k->last_write_cmd ? STR_CMD : 0) | STR_UNLOCK |
		    (k->obf && k->obuf_aux ? STR_AUXDATA : 0);
	}
	update_irq(k, false);
	pthread_mutex_unlock(&k->lock);
	return v;
}

static void port_write(struct i8042 *k, bool data_port, uint8_t v)
{
	struct deferred d = {0};

	pthread_mutex_lock(&k->lock);
	if (data_port) {
		k->last_write_cmd = false;
		data_write(k, v, &d);
	} else {
		k->last_write_cmd = true;
		k->pending_cmd = 0;
		controller_command(k, v, &d);
	}
	refill(k);
	update_irq(k, false);
	pthread_mutex_unlock(&k->lock);

	if (d.a20_changed && k->ops && k->ops->a20)
		k->ops->a20(k->opaque, d.a20);
	if (d.reset) {
		log_info("guest pulsed the reset line");
		if (k->ops && k->ops->reset)
			k->ops->reset(k->opaque);
	}
}

static uint64_t data_read(void *opaque, uint64_t offset, unsigned size)
{
	return port_read(opaque, true);
}

static void data_port_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
	port_write(opaque, true, value & 0xff);
}

static uint64_t status_read(void *opaque, uint64_t offset, unsigned size)
{
	return port_read(opaque, false);
}

static void command_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
	port_write(opaque, false, value & 0xff);
}

/* Two one-port ranges: 0x61-0x63 between them belong to other devices. */
static const struct io_ops data_ops = {
    .read = data_read,
    .write = data_port_write,
};

static const struct io_ops command_ops = {
    .read = status_read,
    .write = command_write,
};

int i8042_register(struct i8042 *k, struct io_bus *pio)
{
	int ret = io_bus_register(pio, I8042_DATA_PORT, 1, &data_ops, k, "i8042-data");
	if (ret < 0)
		return ret;
	ret = io_bus_register(pio, I8042_COMMAND_PORT, 1, &command_ops, k, "i8042-cmd");
	return ret < 0 ? ret : 0;
}

static void reset_locked(struct i8042 *k)
{
	memset(k->ram, 0, sizeof(k->ram));
	k->ram[0] = CTR_DEFAULT;
	k->outport = OUT_RESET_N | OUT_A20;
	k->pending_cmd = 0;
	k->last_write_cmd = false;
	k->obuf = 0;
	k->obf = false;
	k->obuf_aux = false;
	k->xlate_break = false;
	q_clear(&k->ctrl_q);
	q_clear(&k->kbd_q);
	q_clear(&k->aux_q);
	kbd_defaults(k);
	k->kbd_leds = 0;
	k->kbd_last = 0;
	k->kbd_scanning = true;
	aux_defaults(k);
	update_irq(k, false);
}

void i8042_init(struct i8042 *k, struct irq_router *router, const struct i8042_ops *ops,
		void *opaque)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->irq_router = router;
	k->ops = ops;
	k->opaque = opaque;
	reset_locked(k);
}

void i8042_destroy(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

void i8042_reset(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	reset_locked(k);
	pthread_mutex_unlock(&k->lock);
}

int i8042_key_event(struct i8042 *k, int keycode, bool down)
{
	uint8_t seq[KEYMAP_MAX_SEQ];
	int n = keymap_set2_sequence(keycode, down, seq);
	int ret = 0;

	if (n < 0)
		return n;
	pthread_mutex_lock(&k->lock);
	if (!k->kbd_scanning) {
		ret = -EAGAIN;
	} else if (q_space(&k->kbd_q) < (unsigned)n) {
		ret = -ENOSPC; /* never half a sequence */
	} else {
		for (int i = 0; i < n; i++) {
			/* Set 1 without the controller's translation: the keyboard translates. */
			if (k->kbd_set == 1 && !(ctr(k) & CTR_XLATE)) {
				if (seq[i] == 0xf0 && i + 1 < n) {
					q_push(&k->kbd_q, keymap_set2_to_set1(seq[++i]) | 0x80,
					       false);
					continue;
				}
				q_push(&k->kbd_q, keymap_set2_to_set1(seq[i]), false);
				continue;
			}
			q_push(&k->kbd_q, seq[i], false);
		}
		refill(k);
		update_irq(k, false);
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}

static int clamp_motion(int v)
{
	return v > 255 ? 255 : v < -255 ? -255 : v;
}

int i8042_mouse_event(struct i8042 *k, int dx, int dy, unsigned buttons)
{
	int ret = 0;

	dx = clamp_motion(dx);
	dy = clamp_motion(dy);
	pthread_mutex_lock(&k->lock);
	if (!k->aux_reporting || k->aux_remote) {
		ret = -EAGAIN;
	} else if (q_space(&k->aux_q) < 3) {
		ret = -ENOSPC;
	} else {
		/* Byte 0: Y sign, X sign, always-1, buttons; then X and Y, 9-bit two's complement. */
		uint8_t b0 = 0x08 | (buttons & 7) | (dx < 0 ? 0x10 : 0) | (dy < 0 ? 0x20 : 0);
		q_push(&k->aux_q, b0, false);
		q_push(&k->aux_q, (uint8_t)dx, false);
		q_push(&k->aux_q, (uint8_t)dy, false);
		refill(k);
		update_irq(k, false);
	}
	pthread_mutex_unlock(&k->lock);
	return ret;
}

/* --- save/load ----------------------------------------------------------------------- */

static void put_queue(struct state_buf *out, const struct i8042_queue *q)
{
	state_put_u8(out, q->count);
	for (unsigned i = 0; i < q->count; i++) {
		unsigned j = (q->head + i) % I8042_QUEUE_SIZE;
		state_put_u8(out, q->data[j]);
		state_put_u8(out, q->aux[j]);
	}
}

static int get_queue(struct state_buf *in, struct i8042_queue *q)
{
	unsigned n = state_get_u8(in);
	if (n > I8042_QUEUE_SIZE)
		return -EINVAL;
	q_clear(q);
	for (unsigned i = 0; i < n; i++) {
		uint8_t v = state_get_u8(in), aux = state_get_u8(in);
		if (aux > 1)
			return -EINVAL;
		q_push(q, v, aux);
	}
	return state_status(in);
}

int i8042_save(struct i8042 *k, struct state_buf *out)
{
	pthread_mutex_lock(&k->lock);
	state_put_u8(out, STATE_VERSION);
	state_put_bytes(out, k->ram, sizeof(k->ram));
	state_put_u8(out, k->outport);
	state_put_u8(out, k->pending_cmd);
	state_put_u8(out, k->last_write_cmd);
	state_put_u8(out, k->obuf);
	state_put_u8(out, k->obf);
	state_put_u8(out, k->obuf_aux);
	state_put_u8(out, k->xlate_break);
	put_queue(out, &k->ctrl_q);
	put_queue(out, &k->kbd_q);
	state_put_u8(out, k->kbd_pending_cmd);
	state_put_u8(out, k->kbd_last);
	state_put_u8(out, k->kbd_scanning);
	state_put_u8(out, k->kbd_set);
	state_put_u8(out, k->kbd_leds);
	state_put_u8(out, k->kbd_typematic);
	put_queue(out, &k->aux_q);
	state_put_u8(out, k->aux_pending_cmd);
	state_put_u8(out, k->aux_reporting);
	state_put_u8(out, k->aux_remote);
	state_put_u8(out, k->aux_scaling21);
	state_put_u8(out, k->aux_rate);
	state_put_u8(out, k->aux_resolution);
	pthread_mutex_unlock(&k->lock);
	return state_status(out);
}

int i8042_load(struct i8042 *k, struct state_buf *in)
{
	struct i8042 tmp; /* parsed and checked here, applied only if all is well */

	memset(&tmp, 0, sizeof(tmp));
	if (state_get_u8(in) != STATE_VERSION)
		return -EINVAL;
	state_get_bytes(in, tmp.ram, sizeof(tmp.ram));
	tmp.outport = state_get_u8(in);
	tmp.pending_cmd = state_get_u8(in);
	uint8_t flags[4];
	flags[0] = state_get_u8(in);
	tmp.obuf = state_get_u8(in);
	flags[1] = state_get_u8(in);
	flags[2] = state_get_u8(in);
	flags[3] = state_get_u8(in);
	if (get_queue(in, &tmp.ctrl_q) || get_queue(in, &tmp.kbd_q))
		return -EINVAL;
	tmp.kbd_pending_cmd = state_get_u8(in);
	tmp.kbd_last = state_get_u8(in);
	uint8_t scanning = state_get_u8(in);
	tmp.kbd_set = state_get_u8(in);
	tmp.kbd_leds = state_get_u8(in);
	tmp.kbd_typematic = state_get_u8(in);
	if (get_queue(in, &tmp.aux_q))
		return -EINVAL;
	tmp.aux_pending_cmd = state_get_u8(in);
	uint8_t aflags[3] = {state_get_u8(in), state_get_u8(in), state_get_u8(in)};
	tmp.aux_rate = state_get_u8(in);
	tmp.aux_resolution = state_get_u8(in);
	if (state_status(in))
		return -EINVAL;
	for (int i = 0; i < 4; i++)
		if (flags[i] > 1)
			return -EINVAL;
	if (scanning > 1 || aflags[0] > 1 || aflags[1] > 1 || aflags[2] > 1 || tmp.kbd_set < 1 ||
	    tmp.kbd_set > 3 || tmp.aux_resolution > 3)
		return -EINVAL;
	if (tmp.kbd_pending_cmd && tmp.kbd_pending_cmd != 0xed && tmp.kbd_pending_cmd != 0xf0 &&
	    tmp.kbd_pending_cmd != 0xf3)
		return -EINVAL;
	if (tmp.aux_pending_cmd && tmp.aux_pending_cmd != 0xe8 && tmp.aux_pending_cmd != 0xf3)
		return -EINVAL;

	pthread_mutex_lock(&k->lock);
	memcpy(k->ram, tmp.ram, sizeof(k->ram));
	k->outport = tmp.outport;
	k->pending_cmd = tmp.pending_cmd;
	k->last_write_cmd = flags[0];
	k->obuf = tmp.obuf;
	k->obf = flags[1];
	k->obuf_aux = flags[2];
	k->xlate_break = flags[3];
	k->ctrl_q = tmp.ctrl_q;
	k->kbd_q = tmp.kbd_q;
	k->kbd_pending_cmd = tmp.kbd_pending_cmd;
	k->kbd_last = tmp.kbd_last;
	k->kbd_scanning = scanning;
	k->kbd_set = tmp.kbd_set;
	k->kbd_leds = tmp.kbd_leds;
	k->kbd_typematic = tmp.kbd_typematic;
	k->aux_q = tmp.aux_q;
	k->aux_pending_cmd = tmp.aux_pending_cmd;
	k->aux_reporting = aflags[0];
	k->aux_remote = aflags[1];
	k->aux_scaling21 = aflags[2];
	k->aux_rate = tmp.aux_rate;
	k->aux_resolution = tmp.aux_resolution;
	refill(k);
	update_irq(k, true);
	pthread_mutex_unlock(&k->lock);
	return 0;
}

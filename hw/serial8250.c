/* 8250/16550A UART, after the TI/National PC16550D datasheet ("PC16550D Universal
 * Asynchronous Receiver/Transmitter with FIFOs"): section 8 (registers), table II
 * (interrupt identification and priorities), 8.6 (FIFO operation), 8.5 (loopback).
 *
 * Guests that stress it: Linux's 8250 driver probes the chip in autoconfig() (IER
 * read-back, the MCR loopback test expecting MSR = DCD|CTS for OUT2|RTS, FCR/IIR bits 6-7
 * for a 16550A, EFR/64-byte-FIFO/UUE bits that a plain 16550A does not have), then tests
 * the THRE interrupt in serial8250_do_startup() and finally runs the console polled (LSR)
 * and the tty interrupt-driven.
 *
 * Simplifications, all invisible to a driver that follows the datasheet:
 * - transmission takes no time: THR and the transmitter are empty again right after a
 *   write (LSR THRE and TEMT always 1), the byte goes straight to the backend;
 * - the character timeout interrupt (IIR 0xC) is reported as soon as the RX FIFO holds
 *   data below the trigger level, instead of after 4 character times, which gives
 *   interactive input the lowest latency;
 * - no parity/framing errors or breaks are generated; overrun happens only in loopback
 *   mode (the backend asks serial8250_can_receive() first).
 */
#define LOG_SUBSYS "uart"
#include <errno.h>
#include <string.h>

#include "core/io_bus.h"
#include "core/state.h"
#include "hw/serial8250.h"
#include "util/log.h"

/* Register offsets */
enum {
	REG_RBR_THR_DLL = 0,
	REG_IER_DLM = 1,
	REG_IIR_FCR = 2,
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* transmitter holding register empty */
#define IER_ELSI  0x04 /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK  0x0f

#define IIR_NONE     0x01
#define IIR_MS	     0x00
#define IIR_THRE     0x02
#define IIR_RDA	     0x04
#define IIR_RLS	     0x06
#define IIR_TIMEOUT  0x0c
#define IIR_FIFO_ENA 0xc0

#define FCR_ENABLE    0x01
#define FCR_RX_RESET  0x02
#define FCR_TX_RESET  0x04
#define FCR_DMA_MODE  0x08
#define FCR_TRIG_MASK 0xc0

#define LCR_DLAB 0x80

#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR	 0x01
#define LSR_OE	 0x02
#define LSR_PE	 0x04
#define LSR_FE	 0x08
#define LSR_BI	 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_ERRS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS   0x01
#define MSR_DDSR   0x02
#define MSR_TERI   0x04
#define MSR_DDCD   0x08
#define MSR_DELTAS 0x0f
#define MSR_CTS	   0x10
#define MSR_DSR	   0x20
#define MSR_RI	   0x40
#define MSR_DCD	   0x80
/* Outside loopback the other end is always "there": carrier, data set ready, clear to send. */
#define MSR_LINES_CONNECTED (MSR_DCD | MSR_DSR | MSR_CTS)

#define STATE_VERSION 1

static bool fifo_enabled(const struct serial8250 *s)
{
	return s->fcr & FCR_ENABLE;
}

static unsigned rx_capacity(const struct serial8250 *s)
{
	return fifo_enabled(s) ? SERIAL8250_FIFO_SIZE : 1;
}

static unsigned rx_trigger_level(const struct serial8250 *s)
{
	static const unsigned levels[4] = {1, 4, 8, 14};
	return levels[(s->fcr & FCR_TRIG_MASK) >> 6];
}

/* The highest-priority pending interrupt, as IIR bits 0-3 (datasheet table IV). */
static uint8_t pending_iid(const struct serial8250 *s)
{
	if ((s->ier & IER_ELSI) && (s->lsr & LSR_ERRS))
		return IIR_RLS;
	if ((s->ier & IER_ERBFI) && s->rx_count) {
		if (!fifo_enabled(s) || s->rx_count >= rx_trigger_level(s))
			return IIR_RDA;
		return IIR_TIMEOUT;
	}
	if ((s->ier & IER_ETBEI) && s->thr_ipending)
		return IIR_THRE;
	if ((s->ier & IER_EDSSI) && (s->msr & MSR_DELTAS))
		return IIR_MS;
	return IIR_NONE;
}

/* PC wiring: the INTR output reaches the interrupt controller through a gate driven by
 * OUT2; in loopback mode the OUT2 pin is forced inactive, so the line is low. */
static void sync_irq(struct serial8250 *s, bool force)
{
	bool level = pending_iid(s) != IIR_NONE && (s->mcr & MCR_OUT2) && !(s->mcr & MCR_LOOP);
	if (force || level != s->irq_level) {
		s->irq_level = level;
		irq_line_set(s->irq_router, s->irq, level);
	}
}

static void update_irq(struct serial8250 *s)
{
	sync_irq(s, false);
}

/* Called with the lock held after the guest took bytes out of the RX FIFO: tells the
 * caller to notify the backend if it was refused bytes before. */
static bool take_rx_blocked(struct serial8250 *s)
{
	if (!s->rx_blocked || s->rx_count >= rx_capacity(s) || (s->mcr & MCR_LOOP))
		return false;
	s->rx_blocked = false;
	return true;
}

/* MSR status bits for the current MCR; in loopback they mirror the MCR outputs. */
static uint8_t msr_lines(const struct serial8250 *s)
{
	if (!(s->mcr & MCR_LOOP))
		return MSR_LINES_CONNECTED;
	uint8_t v = 0;
	if (s->mcr & MCR_RTS)
		v |= MSR_CTS;
	if (s->mcr & MCR_DTR)
		v |= MSR_DSR;
	if (s->mcr & MCR_OUT1)
		v |= MSR_RI;
	if (s->mcr & MCR_OUT2)
		v |= MSR_DCD;
	return v;
}

static void set_msr_lines(struct serial8250 *s, uint8_t lines)
{
	uint8_t old = s->msr & ~MSR_DELTAS, changed = old ^ lines;
	uint8_t deltas = s->msr & MSR_DELTAS;
	if (changed & MSR_CTS)
		deltas |= MSR_DCTS;
	if (changed & MSR_DSR)
		deltas |= MSR_DDSR;
	if (changed & MSR_DCD)
		deltas |= MSR_DDCD;
	if ((old & MSR_RI) && !(lines & MSR_RI)) /* trailing edge only */
		deltas |= MSR_TERI;
	s->msr = lines | deltas;
}

static void rx_clear(struct serial8250 *s)
{
	s->rx_head = 0;
	s->rx_count = 0;
}

/* Returns false on overrun. */
static bool rx_push(struct serial8250 *s, uint8_t byte)
{
	if (s->rx_count >= rx_capacity(s)) {
		s->lsr |= LSR_OE;
		return false;
	}
	s->rx_fifo[(s->rx_head + s->rx_count) % SERIAL8250_FIFO_SIZE] = byte;
	s->rx_count++;
	return true;
}

static uint8_t rx_pop(struct serial8250 *s)
{
	if (!s->rx_count)
		return 0;
	uint8_t b = s->rx_fifo[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL8250_FIFO_SIZE;
	s->rx_count--;
	return b;
}

static void reset_locked(struct serial8250 *s)
{
	s->ier = 0;
	s->lcr = 0;
	s->mcr = 0;
	s->lsr = LSR_THRE | LSR_TEMT;
	s->msr = MSR_LINES_CONNECTED;
	s->scr = 0;
	s->fcr = 0;
	s->divisor = 12; /* 9600 baud from the 1.8432 MHz clock */
	rx_clear(s);
	s->thr_ipending = false;
	update_irq(s);
}

void serial8250_init(struct serial8250 *s, uint16_t base, unsigned irq, struct irq_router *router,
		     const struct serial8250_backend *backend)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->base = base;
	s->irq = irq;
	s->irq_router = router;
	if (backend)
		s->backend = *backend;
	reset_locked(s);
}

void serial8250_destroy(struct serial8250 *s)
{
	pthread_mutex_destroy(&s->lock);
}

void serial8250_reset(struct serial8250 *s)
{
	pthread_mutex_lock(&s->lock);
	reset_locked(s);
	bool room_again = take_rx_blocked(s); /* the FIFO was emptied */
	pthread_mutex_unlock(&s->lock);
	if (room_again && s->backend.rx_space)
		s->backend.rx_space(s->backend.opaque);
}

static uint8_t lsr_value(const struct serial8250 *s)
{
	return (s->lsr & ~LSR_DR) | (s->rx_count ? LSR_DR : 0) | LSR_THRE | LSR_TEMT;
}

static uint64_t serial_read(void *opaque, uint64_t offset, unsigned size)
{
	struct serial8250 *s = opaque;
	uint8_t v = 0xff;
	bool room_again = false;

	pthread_mutex_lock(&s->lock);
	switch (offset) {
	case REG_RBR_THR_DLL:
		if (s->lcr & LCR_DLAB) {
			v = s->divisor & 0xff;
			break;
		}
		v = rx_pop(s);
		room_again = take_rx_blocked(s);
		break;
	case REG_IER_DLM:
		v = (s->lcr & LCR_DLAB) ? s->divisor >> 8 : s->ier;
		break;
	case REG_IIR_FCR: {
		uint8_t iid = pending_iid(s);
		/* Reading IIR acknowledges a THRE interrupt when it is the one reported. */
		if (iid == IIR_THRE)
			s->thr_ipending = false;
		v = iid | (fifo_enabled(s) ? IIR_FIFO_ENA : 0);
		break;
	}
	case REG_LCR:
		v = s->lcr;
		break;
	case REG_MCR:
		v = s->mcr;
		break;
	case REG_LSR:
		v = lsr_value(s);
		s->lsr &= ~LSR_ERRS; /* error bits clear on read */
		break;
	case REG_MSR:
		v = s->msr;
		s->msr &= ~MSR_DELTAS;
		break;
	case REG_SCR:
		v = s->scr;
		break;
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);

	if (room_again && s->backend.rx_space)
		s->backend.rx_space(s->backend.opaque);
	return v;
}

static void write_fcr(struct serial8250 *s, uint8_t val)
{
	bool was_enabled = fifo_enabled(s);
	if (!(val & FCR_ENABLE)) {
		/* Turning the FIFOs off clears them; the other bits need bit 0 set. */
		if (was_enabled)
			rx_clear(s);
		s->fcr = 0;
		return;
	}
	if (!was_enabled || (val & FCR_RX_RESET))
		rx_clear(s);
	/* TX reset: the transmit FIFO is always empty here. */
	s->fcr = val & (FCR_ENABLE | FCR_DMA_MODE | FCR_TRIG_MASK);
}

static void serial_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
	struct serial8250 *s = opaque;
	uint8_t val = value & 0xff;
	bool room_again = false;

	pthread_mutex_lock(&s->lock);
	switch (offset) {
	case REG_RBR_THR_DLL:
		if (s->lcr & LCR_DLAB) {
			s->divisor = (s->divisor & 0xff00) | val;
			break;
		}
		s->thr_ipending = false;
		if (s->mcr & MCR_LOOP)
			rx_push(s, val);
		else if (s->backend.write)
			s->backend.write(s->backend.opaque, &val, 1);
		/* Sent at once: THR is empty again, which is a new THRE interrupt. */
		s->thr_ipending = true;
		break;
	case REG_IER_DLM:
		if (s->lcr & LCR_DLAB) {
			s->divisor = (s->divisor & 0x00ff) | (uint16_t)val << 8;
			break;
		}
		if (val & ~IER_MASK)
			log_guest_error("IER bits 0x%02x do not exist on a 16550A",
					val & ~IER_MASK);
		/* Enabling ETBEI while THR is empty raises THRE at once (datasheet 8.4; Linux
		 * checks it in serial8250_do_startup). */
		if ((val & IER_ETBEI) && !(s->ier & IER_ETBEI))
			s->thr_ipending = true;
		if (!(val & IER_ETBEI))
			s->thr_ipending = false;
		s->ier = val & IER_MASK;
		break;
	case REG_IIR_FCR:
		write_fcr(s, val);
		room_again = take_rx_blocked(s);
		break;
	case REG_LCR:
		s->lcr = val;
		break;
	case REG_MCR:
		s->mcr = val & MCR_MASK;
		set_msr_lines(s, msr_lines(s));
		room_again = take_rx_blocked(s); /* leaving loopback reconnects the receiver */
		break;
	case REG_LSR:
	case REG_MSR:
		log_guest_error("write 0x%02x to read-only %s", val,
				offset == REG_LSR ? "LSR" : "MSR");
		break;
	case REG_SCR:
		s->scr = val;
		break;
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);

	if (room_again && s->backend.rx_space)
		s->backend.rx_space(s->backend.opaque);
}

static const struct io_ops serial_ops = {
    .read = serial_read,
    .write = serial_write,
};

int serial8250_register(struct serial8250 *s, struct io_bus *pio)
{
	int ret = io_bus_register(pio, s->base, 8, &serial_ops, s, "serial");
	return ret < 0 ? ret : 0;
}

size_t serial8250_can_receive(struct serial8250 *s)
{
	pthread_mutex_lock(&s->lock);
	/* In loopback the receiver is disconnected from the outside. */
	size_t n = (s->mcr & MCR_LOOP) ? 0 : rx_capacity(s) - s->rx_count;
	if (!n)
		s->rx_blocked = true;
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t serial8250_receive(struct serial8250 *s, const uint8_t *buf, size_t len)
{
	size_t taken = 0;

	pthread_mutex_lock(&s->lock);
	if (!(s->mcr & MCR_LOOP)) {
		while (taken < len && s->rx_count < rx_capacity(s))
			rx_push(s, buf[taken++]);
	}
	if (taken < len)
		s->rx_blocked = true;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return taken;
}

bool serial8250_send_break(struct serial8250 *s)
{
	pthread_mutex_lock(&s->lock);
	bool room = !(s->mcr & MCR_LOOP) && s->rx_count < rx_capacity(s);
	if (room) {
		/* A break reads as a zero character with BI set (datasheet, LSR bit 4). */
		rx_push(s, 0);
		s->lsr |= LSR_BI;
		update_irq(s);
	}
	pthread_mutex_unlock(&s->lock);
	return room;
}

int serial8250_save(struct serial8250 *s, struct state_buf *out)
{
	pthread_mutex_lock(&s->lock);
	state_put_u8(out, STATE_VERSION);
	state_put_u8(out, s->ier);
	state_put_u8(out, s->lcr);
	state_put_u8(out, s->mcr);
	state_put_u8(out, s->lsr & LSR_ERRS);
	state_put_u8(out, s->msr);
	state_put_u8(out, s->scr);
	state_put_u8(out, s->fcr);
	state_put_u16(out, s->divisor);
	state_put_u8(out, s->thr_ipending);
	state_put_u8(out, s->rx_count);
	for (unsigned i = 0; i < s->rx_count; i++)
		state_put_u8(out, s->rx_fifo[(s->rx_head + i) % SERIAL8250_FIFO_SIZE]);
	pthread_mutex_unlock(&s->lock);
	return state_status(out);
}

int serial8250_load(struct serial8250 *s, struct state_buf *in)
{
	uint8_t fifo[SERIAL8250_FIFO_SIZE];

	if (state_get_u8(in) != STATE_VERSION)
		return -EINVAL;
	uint8_t ier = state_get_u8(in), lcr = state_get_u8(in), mcr = state_get_u8(in);
	uint8_t lsr = state_get_u8(in), msr = state_get_u8(in), scr = state_get_u8(in);
	uint8_t fcr = state_get_u8(in);
	uint16_t divisor = state_get_u16(in);
	uint8_t thr_ipending = state_get_u8(in), rx_count = state_get_u8(in);
	if (state_status(in) || (ier & ~IER_MASK) || (mcr & ~MCR_MASK) || (lsr & ~LSR_ERRS) ||
	    (fcr & ~(FCR_ENABLE | FCR_DMA_MODE | FCR_TRIG_MASK)) || thr_ipending > 1 ||
	    rx_count > ((fcr & FCR_ENABLE) ? SERIAL8250_FIFO_SIZE : 1))
		return -EINVAL;
	state_get_bytes(in, fifo, rx_count);
	if (state_status(in))
		return -EINVAL;

	pthread_mutex_lock(&s->lock);
	s->ier = ier;
	s->lcr = lcr;
	s->mcr = mcr;
	s->lsr = lsr | LSR_THRE | LSR_TEMT;
	s->msr = msr;
	s->scr = scr;
	s->fcr = fcr;
	s->divisor = divisor;
	s->thr_ipending = thr_ipending;
	memcpy(s->rx_fifo, fifo, rx_count);
	s->rx_head = 0;
	s->rx_count = rx_count;
	sync_irq(s, true); /* the line may have had any level before the load */
	pthread_mutex_unlock(&s->lock);
	return 0;
}

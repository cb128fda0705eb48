/* MC146818A real-time clock plus CMOS RAM, after the Motorola MC146818A datasheet:
 * "Address map" (registers 0x00-0x0d), "Register A" (UIP, DV2-0 divider, RS3-0 rate),
 * "Register B" (SET, PIE, AIE, UIE, SQWE, DM, 24/12, DSE), "Register C" (IRQF, PF, AF, UF,
 * cleared by reading), "Register D" (VRT), "Update cycle" (UIP rises 244 us before an
 * update) and the periodic rate table. Byte 0x32 is the century (ACPI FADT CENTURY) and the
 * memory-size bytes follow the IBM PC/AT BIOS and SeaBIOS conventions.
 *
 * Guests that stress it: Linux's mc146818_get_time()/mc146818_set_time() (UIP handshake,
 * SET bit, divider reset around a time change, BCD and binary) and the rtc-cmos driver
 * (periodic, alarm and update interrupts on IRQ 8, reading C in its handler).
 *
 * Time never advances by a counter: the clock is base_sec plus the virtual clock elapsed
 * since base_vns, so nothing runs while no interrupt is enabled. Flags the guest did not
 * enable (PF/UF/AF with PIE/UIE/AIE off) are computed when register C is read.
 */
#define LOG_SUBSYS "rtc"
#include <errno.h>
#include <string.h>
#include <time.h>

#include "core/io_bus.h"
#include "core/state.h"
#include "hw/rtc_cmos.h"
#include "util/log.h"

enum {
	REG_SEC = 0x00,
	REG_SEC_ALARM = 0x01,
	REG_MIN = 0x02,
	REG_MIN_ALARM = 0x03,
	REG_HOUR = 0x04,
	REG_HOUR_ALARM = 0x05,
	REG_WDAY = 0x06,
	REG_MDAY = 0x07,
	REG_MONTH = 0x08,
	REG_YEAR = 0x09,
	REG_A = 0x0a,
	REG_B = 0x0b,
	REG_C = 0x0c,
	REG_D = 0x0d,
};

#define A_UIP	     0x80
#define A_DV_MASK    0x70
#define A_DV_NORMAL  0x20 /* 32.768 kHz time base */
#define A_DV_RESET   0x60 /* 11x: divider chain held in reset */
#define A_RS_MASK    0x0f
#define B_SET	     0x80
#define B_PIE	     0x40
#define B_AIE	     0x20
#define B_UIE	     0x10
#define B_SQWE	     0x08
#define B_DM_BINARY  0x04
#define B_24H	     0x02
#define B_DSE	     0x01
#define C_IRQF	     0x80
#define C_PF	     0x40
#define C_AF	     0x20
#define C_UF	     0x10
#define D_VRT	     0x80
#define HOUR_PM	     0x80
#define ALARM_ANY    0xc0 /* alarm "don't care": both top bits set */
#define UIP_LEAD_NS  244000
#define TIME_BASE_HZ 32768

#define STATE_VERSION 1

static bool divider_running(const struct rtc_cmos *rtc)
{
	return (rtc->cmos[REG_A] & A_DV_MASK) == A_DV_NORMAL;
}

/* The time registers advance only while the divider runs and SET is clear. */
static bool clock_running(const struct rtc_cmos *rtc)
{
	return divider_running(rtc) && !(rtc->cmos[REG_B] & B_SET);
}

static int64_t now_vns(struct rtc_cmos *rtc)
{
	return (int64_t)vclock_now(rtc->clock);
}

/* --- time <-> registers ------------------------------------------------------------- */

static uint8_t to_reg(const struct rtc_cmos *rtc, int v)
{
	if (rtc->cmos[REG_B] & B_DM_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) % 10) << 4 | (v % 10));
}

static int from_reg(const struct rtc_cmos *rtc, uint8_t v)
{
	if (rtc->cmos[REG_B] & B_DM_BINARY)
		return v;
	return (v >> 4) * 10 + (v & 0x0f); /* garbage in, garbage out, but never UB */
}

static uint8_t hour_to_reg(const struct rtc_cmos *rtc, int hour)
{
	if (rtc->cmos[REG_B] & B_24H)
		return to_reg(rtc, hour);
	int h12 = hour % 12 ? hour % 12 : 12;
	return to_reg(rtc, h12) | (hour >= 12 ? HOUR_PM : 0);
}

static int hour_from_reg(const struct rtc_cmos *rtc, uint8_t v)
{
	if (rtc->cmos[REG_B] & B_24H)
		return from_reg(rtc, v);
	int h = from_reg(rtc, v & ~HOUR_PM) % 12;
	return h + ((v & HOUR_PM) ? 12 : 0);
}

/* Write a UTC time into the time registers in the current format. */
static void time_to_regs(struct rtc_cmos *rtc, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm))
		memset(&tm, 0, sizeof(tm));
	int year = tm.tm_year + 1900;
	rtc->cmos[REG_SEC] = to_reg(rtc, tm.tm_sec);
	rtc->cmos[REG_MIN] = to_reg(rtc, tm.tm_min);
	rtc->cmos[REG_HOUR] = hour_to_reg(rtc, tm.tm_hour);
	rtc->cmos[REG_WDAY] = to_reg(rtc, tm.tm_wday + 1); /* 1 = Sunday */
	rtc->cmos[REG_MDAY] = to_reg(rtc, tm.tm_mday);
	rtc->cmos[REG_MONTH] = to_reg(rtc, tm.tm_mon + 1);
	rtc->cmos[REG_YEAR] = to_reg(rtc, year % 100);
	rtc->cmos[RTC_CMOS_CENTURY] = to_reg(rtc, year / 100);
}

/* Read the time registers back as a UTC time; out-of-range fields are normalised the way
 * timegm() does (the guest may have written anything). */
static int64_t regs_to_time(const struct rtc_cmos *rtc)
{
	struct tm tm = {0};
	int century = from_reg(rtc, rtc->cmos[RTC_CMOS_CENTURY]);
	int year = from_reg(rtc, rtc->cmos[REG_YEAR]) % 100;
	if (century < 19 || century > 29) /* not kept by the guest: pick the likely one */
		century = year < 70 ? 20 : 19;
	tm.tm_year = century * 100 + year - 1900;
	tm.tm_mon = from_reg(rtc, rtc->cmos[REG_MONTH]) - 1;
	tm.tm_mday = from_reg(rtc, rtc->cmos[REG_MDAY]);
	tm.tm_hour = hour_from_reg(rtc, rtc->cmos[REG_HOUR]);
	tm.tm_min = from_reg(rtc, rtc->cmos[REG_MIN]);
	tm.tm_sec = from_reg(rtc, rtc->cmos[REG_SEC]);
	return (int64_t)timegm(&tm);
}

/* Current clock time in whole seconds (while running). */
static int64_t current_sec(const struct rtc_cmos *rtc, int64_t now)
{
	return rtc->base_sec + (now - rtc->base_vns) / (int64_t)NSEC_PER_SEC;
}

static int64_t ns_into_second(const struct rtc_cmos *rtc, int64_t now)
{
	return (now - rtc->base_vns) % (int64_t)NSEC_PER_SEC;
}

/* --- interrupts --------------------------------------------------------------------- */

/* Divider cycles (at 32.768 kHz) per periodic interrupt, 0 if off (rate table). */
static uint64_t periodic_cycles(const struct rtc_cmos *rtc)
{
	unsigned rs = rtc->cmos[REG_A] & A_RS_MASK;
	if (!rs || !divider_running(rtc))
		return 0;
	if (rs <= 2)
		return 1ULL << (rs + 6); /* 1: 256 Hz, 2: 128 Hz */
	return 1ULL << (rs - 1);	 /* 3: 8192 Hz ... 15: 2 Hz */
}

/* Index of the last periodic tick at or before `now` since base_vns. */
static int64_t periodic_index(const struct rtc_cmos *rtc, uint64_t cycles, int64_t now)
{
	unsigned __int128 elapsed = (unsigned __int128)(now - rtc->base_vns);
	return (int64_t)(elapsed * TIME_BASE_HZ / ((unsigned __int128)cycles * NSEC_PER_SEC));
}

static int64_t periodic_tick_time(const struct rtc_cmos *rtc, uint64_t cycles, int64_t index)
{
	unsigned __int128 ns = (unsigned __int128)index * cycles * NSEC_PER_SEC;
	/* Round up so that periodic_index(tick time) == index. */
	return rtc->base_vns + (int64_t)((ns + TIME_BASE_HZ - 1) / TIME_BASE_HZ);
}

static bool alarm_matches(const struct rtc_cmos *rtc, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm))
		return false;
	uint8_t s = rtc->cmos[REG_SEC_ALARM], m = rtc->cmos[REG_MIN_ALARM];
	uint8_t h = rtc->cmos[REG_HOUR_ALARM];
	return ((s & ALARM_ANY) == ALARM_ANY || s == to_reg(rtc, tm.tm_sec)) &&
	       ((m & ALARM_ANY) == ALARM_ANY || m == to_reg(rtc, tm.tm_min)) &&
	       ((h & ALARM_ANY) == ALARM_ANY || h == hour_to_reg(rtc, tm.tm_hour));
}

/* Set PF/UF/AF for what happened between flags_vns and now. */
static void update_flags(struct rtc_cmos *rtc, int64_t now)
{
	int64_t from = rtc->flags_vns;
	if (now <= from)
		return;
	uint64_t cycles = periodic_cycles(rtc);
	if (cycles && periodic_index(rtc, cycles, now) > periodic_index(rtc, cycles, from))
		rtc->cmos[REG_C] |= C_PF;
	if (clock_running(rtc)) {
		int64_t s_from = current_sec(rtc, from), s_now = current_sec(rtc, now);
		if (s_now > s_from) {
			rtc->cmos[REG_C] |= C_UF;
			/* Check every second that ended, at most a day's worth (the alarm can
			 * match at most once a second, and a day covers every pattern). */
			int64_t first = s_now - s_from > 86400 ? s_now - 86400 : s_from + 1;
			for (int64_t t = first; t <= s_now; t++) {
				if (alarm_matches(rtc, t)) {
					rtc->cmos[REG_C] |= C_AF;
					break;
				}
			}
		}
	}
	rtc->flags_vns = now;
}

static void update_irq(struct rtc_cmos *rtc, bool force)
{
	uint8_t c = rtc->cmos[REG_C] & (C_PF | C_AF | C_UF);
	uint8_t en = rtc->cmos[REG_B] & (B_PIE | B_AIE | B_UIE); /* same bit positions */
	bool level = c & en;
	if (level)
		rtc->cmos[REG_C] |= C_IRQF;
	else
		rtc->cmos[REG_C] &= ~C_IRQF;
	if (force || level != rtc->irq_level) {
		rtc->irq_level = level;
		irq_line_set(rtc->irq_router, rtc->irq, level);
	}
}

/* Arm the timers for the enabled interrupts. A flag that is already set stays set until
 * the guest reads C, so its timer waits for that read (the read re-arms): a guest that
 * leaves an 8 kHz periodic interrupt unacknowledged costs nothing. */
static void rearm(struct rtc_cmos *rtc, int64_t now)
{
	uint8_t b = rtc->cmos[REG_B], c = rtc->cmos[REG_C];
	uint64_t cycles = periodic_cycles(rtc);
	if (cycles && (b & B_PIE) && !(c & C_PF)) {
		int64_t next =
		    periodic_tick_time(rtc, cycles, periodic_index(rtc, cycles, now) + 1);
		timer_mod(&rtc->periodic_timer, (uint64_t)next);
	} else {
		timer_del(&rtc->periodic_timer);
	}
	bool want_update = (b & B_UIE) && !(c & C_UF);
	bool want_alarm = (b & B_AIE) && !(c & C_AF);
	if (clock_running(rtc) && (want_update || want_alarm)) {
		int64_t next = now - ns_into_second(rtc, now) + (int64_t)NSEC_PER_SEC;
		timer_mod(&rtc->second_timer, (uint64_t)next);
	} else {
		timer_del(&rtc->second_timer);
	}
}

static void timer_fired(void *opaque)
{
	struct rtc_cmos *rtc = opaque;
	pthread_mutex_lock(&rtc->lock);
	int64_t now = now_vns(rtc);
	update_flags(rtc, now);
	update_irq(rtc, false);
	rearm(rtc, now);
	pthread_mutex_unlock(&rtc->lock);
}

/* --- clock state changes ------------------------------------------------------------ */

/* The clock stops (SET set or divider reset): freeze the time into the registers. */
static void freeze(struct rtc_cmos *rtc, int64_t now)
{
	time_to_regs(rtc, current_sec(rtc, now));
}

/* The clock starts again from the registers. `phase_ns` is how far into its second the
 * divider chain is now. */
static void thaw(struct rtc_cmos *rtc, int64_t now, int64_t phase_ns)
{
	rtc->base_sec = regs_to_time(rtc);
	rtc->base_vns = now - phase_ns;
	rtc->flags_vns = now;
}

static void set_time_locked(struct rtc_cmos *rtc, int64_t t, int64_t now)
{
	if (clock_running(rtc)) {
		rtc->base_sec = t;
		rtc->base_vns = now;
		rtc->flags_vns = now;
	} else {
		time_to_regs(rtc, t);
	}
}

static bool is_time_reg(unsigned idx)
{
	return idx <= REG_YEAR || idx == RTC_CMOS_CENTURY;
}

static void write_reg_a(struct rtc_cmos *rtc, uint8_t val, int64_t now)
{
	bool was_running = clock_running(rtc), div_was = divider_running(rtc);
	int64_t phase = div_was ? ns_into_second(rtc, now) : 0;

	if (was_running)
		freeze(rtc, now);
	rtc->cmos[REG_A] = val & ~A_UIP;
	unsigned dv = val & A_DV_MASK;
	if (dv != A_DV_NORMAL && (dv & A_DV_RESET) != A_DV_RESET)
		log_guest_error("divider setting 0x%02x: only 32.768 kHz (010) runs the clock", dv);
	if (divider_running(rtc)) {
		/* Leaving divider reset: the first update comes 500 ms later (datasheet). */
		if (!div_was)
			phase = NSEC_PER_SEC / 2;
		rtc->base_vns = now - phase; /* whole seconds dropped: only the phase matters */
		if (clock_running(rtc))
			thaw(rtc, now, phase);
	}
}

static void write_reg_b(struct rtc_cmos *rtc, uint8_t val, int64_t now)
{
	bool was_running = clock_running(rtc);
	int64_t phase = divider_running(rtc) ? ns_into_second(rtc, now) : 0;
	/* Setting SET clears UIE (datasheet, register B). */
	if (val & B_SET)
		val &= ~B_UIE;
	if (was_running && (val & B_SET))
		freeze(rtc, now); /* base_vns keeps the divider phase for the thaw */
	/* DM and 24/12 only change how the registers are read from now on; a frozen clock
	 * keeps its register bytes (the guest sets the format together with SET). */
	rtc->cmos[REG_B] = val;
	if (!was_running && clock_running(rtc))
		thaw(rtc, now, phase);
}

/* --- port I/O ----------------------------------------------------------------------- */

static uint8_t read_reg(struct rtc_cmos *rtc, unsigned idx)
{
	int64_t now = now_vns(rtc);

	if (is_time_reg(idx) && clock_running(rtc))
		time_to_regs(rtc, current_sec(rtc, now));
	switch (idx) {
	case REG_A: {
		uint8_t v = rtc->cmos[REG_A] & ~A_UIP;
		if (clock_running(rtc) &&
		    ns_into_second(rtc, now) >= (int64_t)(NSEC_PER_SEC - UIP_LEAD_NS))
			v |= A_UIP;
		return v;
	}
	case REG_C: {
		update_flags(rtc, now);
		update_irq(rtc, false);
		uint8_t v = rtc->cmos[REG_C];
		rtc->cmos[REG_C] = 0;
		update_irq(rtc, false);
		rearm(rtc, now);
		return v;
	}
	case REG_D:
		return D_VRT;
	default:
		return rtc->cmos[idx];
	}
}

static void write_reg(struct rtc_cmos *rtc, unsigned idx, uint8_t val)
{
	int64_t now = now_vns(rtc);

	/* Account for events under the old settings before anything changes. */
	update_flags(rtc, now);
	if (is_time_reg(idx)) {
		if (clock_running(rtc)) {
			/* Writing a running clock: takes effect as if set with SET. */
			int64_t phase = ns_into_second(rtc, now);
			time_to_regs(rtc, current_sec(rtc, now));
			rtc->cmos[idx] = val;
			thaw(rtc, now, phase);
		} else {
			rtc->cmos[idx] = val;
		}
	} else {
		switch (idx) {
		case REG_A:
			write_reg_a(rtc, val, now);
			break;
		case REG_B:
			write_reg_b(rtc, val, now);
			break;
		case REG_C:
		case REG_D:
			log_guest_error("write 0x%02x to read-only register %s", val,
					idx == REG_C ? "C" : "D");
			break;
		default:
			rtc->cmos[idx] = val;
			break;
		}
	}
	update_irq(rtc, false);
	rearm(rtc, now);
}

static uint64_t rtc_read(void *opaque, uint64_t offset, unsigned size)
{
	struct rtc_cmos *rtc = opaque;
	uint8_t v = 0xff;

	pthread_mutex_lock(&rtc->lock);
	switch (offset) {
	case 1:
		v = read_reg(rtc, rtc->index);
		break;
	case 3:
		v = rtc->cmos[128 + rtc->ext_index];
		break;
	default: /* the index ports are write-only */
		break;
	}
	pthread_mutex_unlock(&rtc->lock);
	return v;
}

static void rtc_write(void *opaque, uint64_t offset, uint64_t value, unsigned size)
{
	struct rtc_cmos *rtc = opaque;
	uint8_t val = value & 0xff;

	pthread_mutex_lock(&rtc->lock);
	switch (offset) {
	case 0:
		rtc->index = val & 0x7f;
		rtc->nmi_masked = val & 0x80;
		break;
	case 1:
		write_reg(rtc, rtc->index, val);
		break;
	case 2:
		rtc->ext_index = val & 0x7f;
		break;
	case 3:
		rtc->cmos[128 + rtc->ext_index] = val;
		break;
	}
	pthread_mutex_unlock(&rtc->lock);
}

static const struct io_ops rtc_ops = {
    .read = rtc_read,
    .write = rtc_write,
};

int rtc_cmos_register(struct rtc_cmos *rtc, struct io_bus *pio)
{
	int ret = io_bus_register(pio, RTC_CMOS_BASE, 4, &rtc_ops, rtc, "rtc");
	return ret < 0 ? ret : 0;
}

/* --- public API ---------------------------------------------------------------------- */

void rtc_cmos_init(struct rtc_cmos *rtc, struct vclock *clock, struct timer_list *timers,
		   struct irq_router *router, int64_t base_utc_sec)
{
	memset(rtc, 0, sizeof(*rtc));
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->clock = clock;
	rtc->timers = timers;
	rtc->irq_router = router;
	rtc->irq = RTC_CMOS_IRQ;
	timer_init(&rtc->periodic_timer, timers, timer_fired, rtc);
	timer_init(&rtc->second_timer, timers, timer_fired, rtc);
	rtc->cmos[REG_A] = A_DV_NORMAL | 0x06; /* 32.768 kHz, 1024 Hz periodic rate */
	rtc->cmos[REG_B] = B_24H;	       /* BCD, 24 hours */
	rtc->cmos[REG_D] = D_VRT;
	int64_t now = now_vns(rtc);
	if (base_utc_sec == RTC_CMOS_HOST_TIME) {
		uint64_t real = clock_realtime_ns();
		rtc->base_sec = (int64_t)(real / NSEC_PER_SEC);
		/* Keep the host's phase so the guest's seconds tick with the host's. */
		rtc->base_vns = now - (int64_t)(real % NSEC_PER_SEC);
	} else {
		rtc->base_sec = base_utc_sec;
		rtc->base_vns = now;
	}
	rtc->flags_vns = now;
	time_to_regs(rtc, current_sec(rtc, now));
}

void rtc_cmos_destroy(struct rtc_cmos *rtc)
{
	timer_del(&rtc->periodic_timer);
	timer_del(&rtc->second_timer);
	pthread_mutex_destroy(&rtc->lock);
}

void rtc_cmos_reset(struct rtc_cmos *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	int64_t now = now_vns(rtc);
	rtc->cmos[REG_B] &= ~(B_PIE | B_AIE | B_UIE | B_SQWE);
	rtc->cmos[REG_C] = 0;
	rtc->flags_vns = now;
	update_irq(rtc, false);
	rearm(rtc, now);
	pthread_mutex_unlock(&rtc->lock);
}

void rtc_cmos_set_mem_size(struct rtc_cmos *rtc, uint64_t below_4g, uint64_t above_4g)
{
	const uint64_t KiB = 1024, MiB = 1024 * KiB;
	uint64_t ext_kib = below_4g > MiB ? (below_4g - MiB) / KiB : 0;
	uint64_t above_16m = below_4g > 16 * MiB ? (below_4g - 16 * MiB) / (64 * KiB) : 0;
	uint64_t high = above_4g / (64 * KiB);

	if (ext_kib > 0xffff)
		ext_kib = 0xffff;
	if (above_16m > 0xffff)
		above_16m = 0xffff;
	if (high > 0xffffff)
		high = 0xffffff;
	pthread_mutex_lock(&rtc->lock);
	rtc->cmos[0x15] = 640 & 0xff; /* base memory: 640 KiB */
	rtc->cmos[0x16] = 640 >> 8;
	rtc->cmos[0x17] = rtc->cmos[0x30] = ext_kib & 0xff; /* KiB above 1 MiB */
	rtc->cmos[0x18] = rtc->cmos[0x31] = ext_kib >> 8;
	rtc->cmos[0x34] = above_16m & 0xff; /* 64 KiB units above 16 MiB */
	rtc->cmos[0x35] = above_16m >> 8;
	rtc->cmos[0x5b] = high & 0xff; /* 64 KiB units above 4 GiB */
	rtc->cmos[0x5c] = (high >> 8) & 0xff;
	rtc->cmos[0x5d] = high >> 16;
	pthread_mutex_unlock(&rtc->lock);
}

void rtc_cmos_set_time(struct rtc_cmos *rtc, int64_t utc_sec)
{
	pthread_mutex_lock(&rtc->lock);
	int64_t now = now_vns(rtc);
	update_flags(rtc, now);
	set_time_locked(rtc, utc_sec, now);
	rearm(rtc, now);
	pthread_mutex_unlock(&rtc->lock);
}

int64_t rtc_cmos_get_time(struct rtc_cmos *rtc)
{
	pthread_mutex_lock(&rtc->lock);
	int64_t t = clock_running(rtc) ? current_sec(rtc, now_vns(rtc)) : regs_to_time(rtc);
	pthread_mutex_unlock(&rtc->lock);
	return t;
}

uint8_t rtc_cmos_peek(struct rtc_cmos *rtc, unsigned addr)
{
	pthread_mutex_lock(&rtc->lock);
	uint8_t v = addr < RTC_CMOS_SIZE ? rtc->cmos[addr] : 0xff;
	pthread_mutex_unlock(&rtc->lock);
	return v;
}

void rtc_cmos_poke(struct rtc_cmos *rtc, unsigned addr, uint8_t val)
{
	pthread_mutex_lock(&rtc->lock);
	if (addr < RTC_CMOS_SIZE && addr > REG_D)
		rtc->cmos[addr] = val;
	pthread_mutex_unlock(&rtc->lock);
}

int rtc_cmos_save(struct rtc_cmos *rtc, struct state_buf *out)
{
	pthread_mutex_lock(&rtc->lock);
	state_put_u8(out, STATE_VERSION);
	state_put_bytes(out, rtc->cmos, sizeof(rtc->cmos));
	state_put_u8(out, rtc->index);
	state_put_u8(out, rtc->ext_index);
	state_put_u8(out, rtc->nmi_masked);
	state_put_u64(out, (uint64_t)rtc->base_sec);
	state_put_u64(out, (uint64_t)rtc->base_vns);
	state_put_u64(out, (uint64_t)rtc->flags_vns);
	pthread_mutex_unlock(&rtc->lock);
	return state_status(out);
}

int rtc_cmos_load(struct rtc_cmos *rtc, struct state_buf *in)
{
	uint8_t cmos[RTC_CMOS_SIZE];

	if (state_get_u8(in) != STATE_VERSION)
		return -EINVAL;
	state_get_bytes(in, cmos, sizeof(cmos));
	uint8_t index = state_get_u8(in), ext_index = state_get_u8(in), nmi = state_get_u8(in);
	int64_t base_sec = (int64_t)state_get_u64(in);
	int64_t base_vns = (int64_t)state_get_u64(in);
	int64_t flags_vns = (int64_t)state_get_u64(in);
	if (state_status(in) || index > 0x7f || ext_index > 0x7f || nmi > 1 ||
	    (cmos[REG_C] & 0x0f) || cmos[REG_D] != D_VRT)
		return -EINVAL;
	/* Keep the arithmetic in range for any clock time a VM can reach (~290 years). */
	const int64_t limit = INT64_C(1) << 62;
	if (base_sec < -limit || base_sec > limit || base_vns < -limit || base_vns > limit ||
	    flags_vns < -limit || flags_vns > limit)
		return -EINVAL;

	pthread_mutex_lock(&rtc->lock);
	memcpy(rtc->cmos, cmos, sizeof(cmos));
	rtc->cmos[REG_A] &= ~A_UIP;
	rtc->index = index;
	rtc->ext_index = ext_index;
	rtc->nmi_masked = nmi;
	rtc->base_sec = base_sec;
	rtc->base_vns = base_vns;
	rtc->flags_vns = flags_vns;
	int64_t now = now_vns(rtc);
	if (rtc->base_vns > now)
		rtc->base_vns = now;
	if (rtc->flags_vns > now)
		rtc->flags_vns = now;
	update_irq(rtc, true);
	rearm(rtc, now);
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}

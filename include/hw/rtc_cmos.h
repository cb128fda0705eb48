/* MC146818A real-time clock and CMOS RAM, ports 0x70/0x71 (+ 0x72/0x73 upper bank), IRQ 8.
 *
 * The clock runs on the VM's virtual clock from a base UTC time, so it stops while the VM
 * is paused. CMOS RAM (everything but the clock registers) survives rtc_cmos_reset(): it is
 * non-volatile on a PC.
 *
 * Threads and locking: port I/O on vCPU threads, timer callbacks on the main loop thread;
 * one mutex per RTC. timer_mod/timer_del and irq_line_set are called with it held (neither
 * calls back into the device). No other callbacks.
 */
#ifndef KESTREL_HW_RTC_CMOS_H
#define KESTREL_HW_RTC_CMOS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/irq.h"
#include "core/timer.h"

struct io_bus;
struct state_buf;

#define RTC_CMOS_BASE	   0x70
#define RTC_CMOS_IRQ	   8
#define RTC_CMOS_SIZE	   256 /* 128 bytes behind 0x70/0x71, 128 behind 0x72/0x73 */
#define RTC_CMOS_HOST_TIME INT64_MIN
/* Well-known CMOS bytes */
#define RTC_CMOS_CENTURY 0x32

struct rtc_cmos {
	pthread_mutex_t lock;
	struct vclock *clock;
	struct timer_list *timers;
	struct irq_router *irq_router;
	unsigned irq;

	uint8_t cmos[RTC_CMOS_SIZE]; /* 0x00-0x0d clock registers, the rest RAM */
	uint8_t index;		     /* 0x70: 0-127 */
	uint8_t ext_index;	     /* 0x72: 0-127 (byte 128 + ext_index) */
	bool nmi_masked;	     /* 0x70 bit 7 */

	/* While the clock runs, its time is base_sec + (vclock - base_vns) / 1e9; while it is
	 * stopped (SET bit, divider in reset) the time registers in cmos[] hold it. */
	int64_t base_sec;
	int64_t base_vns;
	int64_t flags_vns; /* interrupt flags are up to date until this vclock time */
	bool irq_level;

	struct timer periodic_timer; /* armed while PIE is set */
	struct timer second_timer;   /* armed while UIE or AIE is set */
};

/* base_utc_sec: the clock's start time, RTC_CMOS_HOST_TIME for the host's time now. */
void rtc_cmos_init(struct rtc_cmos *rtc, struct vclock *clock, struct timer_list *timers,
		   struct irq_router *router, int64_t base_utc_sec);
void rtc_cmos_destroy(struct rtc_cmos *rtc);
int rtc_cmos_register(struct rtc_cmos *rtc, struct io_bus *pio);
/* The RESET pin: interrupt enables and flags cleared; time and CMOS RAM kept. */
void rtc_cmos_reset(struct rtc_cmos *rtc);

/* Fill in the memory-size bytes BIOSes read: below_4g and above_4g are the RAM sizes in
 * bytes below and above the 4 GiB line. */
void rtc_cmos_set_mem_size(struct rtc_cmos *rtc, uint64_t below_4g, uint64_t above_4g);
/* Set the clock (UTC seconds). */
void rtc_cmos_set_time(struct rtc_cmos *rtc, int64_t utc_sec);
/* The clock's current time (UTC seconds), as the guest would read it. */
int64_t rtc_cmos_get_time(struct rtc_cmos *rtc);
/* Direct CMOS RAM access (0-255) for the machine and tests. */
uint8_t rtc_cmos_peek(struct rtc_cmos *rtc, unsigned addr);
void rtc_cmos_poke(struct rtc_cmos *rtc, unsigned addr, uint8_t val);

/* load must run after the vclock has been restored: it re-arms timers against it. */
int rtc_cmos_save(struct rtc_cmos *rtc, struct state_buf *out);
int rtc_cmos_load(struct rtc_cmos *rtc, struct state_buf *in);

#endif

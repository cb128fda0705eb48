/* Host clocks and the virtual clock.
 *
 * Everything a guest can observe (RTC, PIT, LAPIC timer, TSC in emulated mode, device
 * timers) reads one `struct vclock`: guest time in nanoseconds since the VM started. It runs
 * with the host's CLOCK_MONOTONIC while the VM runs and stands still while it is paused, so
 * a paused VM does not see time jump and its timers do not fire.
 *
 * Tests give a vclock a fake source (vclock_init_source) and move time by hand.
 */
#ifndef KESTREL_CORE_CLOCK_H
#define KESTREL_CORE_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define NSEC_PER_SEC  1000000000ULL
#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_USEC 1000ULL

/* Host CLOCK_MONOTONIC in ns. */
uint64_t clock_monotonic_ns(void);
/* Host CLOCK_REALTIME in ns since the Unix epoch (UTC). */
uint64_t clock_realtime_ns(void);

/* A source of host time in ns; must be monotonic. */
typedef uint64_t (*clock_source_fn)(void *opaque);

struct vclock {
	pthread_mutex_t lock;
	clock_source_fn source; /* clock_monotonic_ns unless a test gave its own */
	void *source_opaque;
	uint64_t offset;    /* while running: guest ns = source() - offset */
	uint64_t paused_at; /* while paused: the guest ns it stands at */
	bool paused;
};

/* Start a vclock at 0, running, on CLOCK_MONOTONIC. */
void vclock_init(struct vclock *vc);
/* The same on another source (tests: a variable the test advances). */
void vclock_init_source(struct vclock *vc, clock_source_fn source, void *opaque);
void vclock_destroy(struct vclock *vc);

/* Guest time in ns since VM start. Never goes backwards. */
uint64_t vclock_now(struct vclock *vc);
/* Stop / restart guest time. Both are idempotent. */
void vclock_pause(struct vclock *vc);
void vclock_resume(struct vclock *vc);
bool vclock_paused(struct vclock *vc);
/* Set guest time (snapshot restore). Keeps the paused/running state. */
void vclock_set(struct vclock *vc, uint64_t guest_ns);

struct state_buf;
/* Guest time into / out of a snapshot stream. Load before the devices: their timers are
 * re-armed against the restored clock. */
int vclock_save(struct vclock *vc, struct state_buf *out);
int vclock_load(struct vclock *vc, struct state_buf *in);

#endif

/* Host clocks and the virtual clock that stops while the VM is paused (see clock.h). */
#include <errno.h>
#include <time.h>

#include "core/clock.h"
#include "core/state.h"

#define STATE_VERSION 1

static uint64_t read_clock(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t clock_monotonic_ns(void)
{
	return read_clock(CLOCK_MONOTONIC);
}

uint64_t clock_realtime_ns(void)
{
	return read_clock(CLOCK_REALTIME);
}

static uint64_t monotonic_source(void *opaque)
{
	(void)opaque;
	return clock_monotonic_ns();
}

void vclock_init_source(struct vclock *vc, clock_source_fn source, void *opaque)
{
	pthread_mutex_init(&vc->lock, NULL);
	vc->source = source ? source : monotonic_source;
	vc->source_opaque = opaque;
	vc->paused = false;
	vc->paused_at = 0;
	vc->offset = vc->source(vc->source_opaque);
}

void vclock_init(struct vclock *vc)
{
	vclock_init_source(vc, NULL, NULL);
}

void vclock_destroy(struct vclock *vc)
{
	pthread_mutex_destroy(&vc->lock);
}

/* Called with vc->lock held. */
static uint64_t now_locked(struct vclock *vc)
{
	if (vc->paused)
		return vc->paused_at;
	return vc->source(vc->source_opaque) - vc->offset;
}

uint64_t vclock_now(struct vclock *vc)
{
	pthread_mutex_lock(&vc->lock);
	uint64_t now = now_locked(vc);
	pthread_mutex_unlock(&vc->lock);
	return now;
}

void vclock_pause(struct vclock *vc)
{
	pthread_mutex_lock(&vc->lock);
	if (!vc->paused) {
		vc->paused_at = now_locked(vc);
		vc->paused = true;
	}
	pthread_mutex_unlock(&vc->lock);
}

void vclock_resume(struct vclock *vc)
{
	pthread_mutex_lock(&vc->lock);
	if (vc->paused) {
		/* Pick the offset so that guest time continues from where it stopped. */
		vc->offset = vc->source(vc->source_opaque) - vc->paused_at;
		vc->paused = false;
	}
	pthread_mutex_unlock(&vc->lock);
}

bool vclock_paused(struct vclock *vc)
{
	pthread_mutex_lock(&vc->lock);
	bool paused = vc->paused;
	pthread_mutex_unlock(&vc->lock);
	return paused;
}

void vclock_set(struct vclock *vc, uint64_t guest_ns)
{
	pthread_mutex_lock(&vc->lock);
	if (vc->paused)
		vc->paused_at = guest_ns;
	else
		vc->offset = vc->source(vc->source_opaque) - guest_ns;
	pthread_mutex_unlock(&vc->lock);
}

int vclock_save(struct vclock *vc, struct state_buf *out)
{
	state_put_u8(out, STATE_VERSION);
	state_put_u64(out, vclock_now(vc));
	return state_status(out);
}

int vclock_load(struct vclock *vc, struct state_buf *in)
{
	if (state_get_u8(in) != STATE_VERSION)
		return -EINVAL;
	uint64_t ns = state_get_u64(in);
	/* Past ~146 years of guest time arithmetic elsewhere would overflow int64. */
	if (state_status(in) || ns > (uint64_t)INT64_MAX / 2)
		return -EINVAL;
	vclock_set(vc, ns);
	return 0;
}

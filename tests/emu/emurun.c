/* Differential test harness: the emulator side. Runs a test case in accel/emu through its
 * public API only (include/accel/emu/emu.h): a fresh CPU per case (so no decoded-instruction
 * cache survives between cases), code and data mapped flat at the same addresses as in the
 * native child, the case's state loaded with emu_set_state(), and emu_run() up to the end
 * marker. emurun_batch() does a batch in a forked child, so an emulator that crashes (or a
 * sanitizer that stops it) costs one case, reported with its reproducer, not the run.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "accel/emu/emu.h"
#include "emudiff.h"

/* The longest sequence the generator builds retires far fewer instructions than this (REP
 * iterations count once each at most 64 times); more means the emulator is looping. */
#define EMU_MAX_INSNS 100000

struct emurun {
	uint8_t *code;
	uint8_t *data;
};

static struct emurun er;

static int emurun_buffers(void)
{
	if (er.code)
		return 0;
	if (posix_memalign((void **)&er.code, 4096, CODE_SIZE) ||
	    posix_memalign((void **)&er.data, 4096, DATA_SIZE))
		return -1;
	return 0;
}

bool emurun_available(void)
{
	struct emu_cpu *cpu = emu_cpu_create();

	if (!cpu)
		return false;
	emu_cpu_destroy(cpu);
	return emurun_buffers() == 0;
}

/* Whether the emulated CPU's CPUID sets bit `bit` of register reg (0 EAX .. 3 EDX) in leaf
 * leaf/subleaf, a leaf beyond the maximum it reports (leaf 0 / 0x80000000 EAX, leaf 7's
 * subleaf count in 7.0 EAX) counting as all zeros. */
bool emurun_cpuid_has(uint32_t leaf, uint32_t subleaf, unsigned reg, unsigned bit)
{
	static struct emu_cpu *cpu;
	uint32_t r[4];

	if (!cpu)
		cpu = emu_cpu_create();
	if (!cpu || reg > 3 || bit > 31)
		return false;
	emu_cpuid(cpu, leaf & 0x80000000u, 0, r);
	if (leaf > r[0])
		return false;
	if (leaf == 7) {
		emu_cpuid(cpu, 7, 0, r);
		if (subleaf > r[0])
			return false;
	}
	emu_cpuid(cpu, leaf, subleaf, r);
	return (r[reg] >> bit) & 1;
}

static void to_emu(const struct mstate *m, struct emu_state *st)
{
	int i;

	memcpy(st->gpr, m->gpr, sizeof(st->gpr));
	st->rip = m->rip;
	st->rflags = m->rflags;
	for (i = 0; i < 16; i++)
		memcpy(st->xmm[i], m->fx + FX_XMM + 16 * i, 16);
	memcpy(&st->mxcsr, m->fx + FX_MXCSR, 4);
	memcpy(&st->fcw, m->fx + FX_FCW, 2);
	memcpy(&st->fsw, m->fx + FX_FSW, 2);
	st->ftw_abridged = m->fx[FX_FTW];
	memcpy(&st->fop, m->fx + FX_FOP, 2);
	memcpy(&st->fip, m->fx + FX_FIP, 8);
	memcpy(&st->fdp, m->fx + FX_FDP, 8);
	for (i = 0; i < 8; i++)
		memcpy(st->st[i], m->fx + FX_ST + 16 * i, 16);
}

static void from_emu(const struct emu_state *st, struct mstate *m)
{
	int i;

	memset(m, 0, sizeof(*m));
	memcpy(m->gpr, st->gpr, sizeof(m->gpr));
	m->rip = st->rip;
	m->rflags = st->rflags;
	for (i = 0; i < 16; i++)
		memcpy(m->fx + FX_XMM + 16 * i, st->xmm[i], 16);
	memcpy(m->fx + FX_MXCSR, &st->mxcsr, 4);
	memcpy(m->fx + FX_FCW, &st->fcw, 2);
	memcpy(m->fx + FX_FSW, &st->fsw, 2);
	m->fx[FX_FTW] = st->ftw_abridged;
	memcpy(m->fx + FX_FOP, &st->fop, 2);
	memcpy(m->fx + FX_FIP, &st->fip, 8);
	memcpy(m->fx + FX_FDP, &st->fdp, 8);
	for (i = 0; i < 8; i++)
		memcpy(m->fx + FX_ST + 16 * i, st->st[i], 16);
}

void emurun_case(const struct tcase *c, struct outcome *o)
{
	struct emu_state st;
	struct emu_event ev;
	struct emu_cpu *cpu;
	enum emu_stop stop;
	uint64_t end_rip, retired = 0;
	uint64_t limit = c->single_step ? 1 : EMU_MAX_INSNS;

	memset(o, 0, offsetof(struct outcome, mem));
	o->end = END_CRASH;
	if (emurun_buffers()) {
		snprintf(o->why, sizeof(o->why), "out of memory");
		return;
	}
	cpu = emu_cpu_create();
	if (!cpu) {
		snprintf(o->why, sizeof(o->why), "emu_cpu_create failed");
		return;
	}
	memset(er.code, 0xcc, CODE_SIZE);
	memcpy(er.code + c->code_off, c->code, c->code_len);
	memcpy(er.data, c->mem, DATA_SIZE);
	emu_reset_long_mode(cpu);
	if (emu_map_flat(cpu, CODE_BASE, er.code, CODE_SIZE, true) ||
	    emu_map_flat(cpu, DATA_BASE, er.data, DATA_SIZE, true)) {
		snprintf(o->why, sizeof(o->why), "emu_map_flat failed");
		goto out;
	}
	emu_get_state(cpu, &st);
	st.cr0 |= 1ULL << 18; /* CR0.AM, as Linux runs the native side: EFLAGS.AC means #AC */
	to_emu(&c->in, &st);
	st.rip = CODE_BASE + c->code_off;
	emu_set_state(cpu, &st);
	end_rip = c->single_step ? UINT64_MAX : CODE_BASE + c->code_off + c->code_len;
	memset(&ev, 0, sizeof(ev));
	stop = emu_run(cpu, limit, end_rip, &ev, &retired);
	emu_get_state(cpu, &st);
	from_emu(&st, &o->st);
	o->retired = retired;
	switch (stop) {
	case EMU_STOP_RIP:
		o->end = END_DONE;
		break;
	case EMU_STOP_INSN_LIMIT:
		if (c->single_step) {
			o->end = END_DONE;
			break;
		}
		o->end = END_OTHER;
		snprintf(o->why, sizeof(o->why), "instruction limit (%llu retired)",
			 (unsigned long long)retired);
		break;
	case EMU_STOP_EXCEPTION:
		o->end = END_EXCEPTION;
		o->vector = ev.vector;
		o->err = ev.has_error_code ? ev.error_code : 0;
		o->fault_addr = ev.fault_addr;
		break;
	case EMU_STOP_HLT:
		o->end = END_OTHER;
		snprintf(o->why, sizeof(o->why), "stopped at HLT");
		break;
	case EMU_STOP_IO:
		o->end = END_OTHER;
		snprintf(o->why, sizeof(o->why), "stopped for I/O or unmapped memory");
		break;
	default:
		o->end = END_OTHER;
		snprintf(o->why, sizeof(o->why), "unknown stop reason %d", (int)stop);
		break;
	}
out:
	memcpy(o->mem, er.data, DATA_SIZE);
	emu_cpu_destroy(cpu);
}

/* Shared with the batch child: where it has got to, then the outcomes. */
struct emurun_shared {
	volatile int progress;
};

static struct emurun_shared *eshared;
static struct outcome *eouts;
static int ecap;

struct outcome *emurun_outcomes(int cap)
{
	size_t sz = 64 + (size_t)cap * sizeof(struct outcome);
	uint8_t *p;

	if (cap <= ecap)
		return eouts;
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	eshared = (struct emurun_shared *)p;
	eouts = (struct outcome *)(p + 64);
	ecap = cap;
	return eouts;
}

void emurun_batch(const struct tcase *cases, int n)
{
	int start = 0, i;

	fflush(NULL);
	while (start < n) {
		int status = 0;
		pid_t pid;

		eshared->progress = start;
		pid = fork();
		if (pid < 0) { /* no process to spare: run here */
			for (i = start; i < n; i++)
				emurun_case(&cases[i], &eouts[i]);
			return;
		}
		if (pid == 0) {
			for (i = start; i < n; i++) {
				eshared->progress = i;
				if ((i - start) % 16 == 0)
					alarm(30);
				emurun_case(&cases[i], &eouts[i]);
			}
			eshared->progress = n;
			fflush(NULL);
			_exit(0);
		}
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			return;
		start = eshared->progress;
		if (start >= n)
			return;
		memset(&eouts[start], 0, offsetof(struct outcome, mem));
		eouts[start].end = END_CRASH;
		if (WIFSIGNALED(status))
			snprintf(eouts[start].why, sizeof(eouts[start].why),
				 "emulator process killed by signal %d%s", WTERMSIG(status),
				 WTERMSIG(status) == SIGALRM ? " (hang)" : "");
		else
			snprintf(eouts[start].why, sizeof(eouts[start].why),
				 "emulator process exited with %d (sanitizer report?)",
				 WEXITSTATUS(status));
		start++;
	}
}

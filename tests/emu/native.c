/* Differential test harness: the native runner. Runs test cases on the host CPU.
 *
 * One child process per batch (fork), so a case that corrupts the process or hangs costs one
 * batch, not the run. In the child, code and data live at the same fixed addresses as in the
 * emulator (CODE_BASE, DATA_BASE). A case is entered through a signal: the child executes
 * int3, the SIGTRAP handler writes the case's registers, RFLAGS and FXSAVE image into the
 * ucontext, and sigreturn loads them all at once and jumps to the code (Linux restores the
 * FP/SSE part of the signal frame with FXRSTOR/XRSTOR and takes the arithmetic flags, DF and
 * TF from it). The case ends at an int3 (or, single-stepping, at the TF trap), or with an
 * exception: the handler copies the ucontext (GPRs, RIP, RFLAGS, FXSAVE image, trap number,
 * error code, fault address) and siglongjmp()s back. Handlers run on an alternate stack
 * because the case owns RSP. The vector is the ucontext's trap number: the hardware vector
 * (SDM vol. 3, 6.3.1), not a guess from the signal number.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "emudiff.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define NO_ASAN __attribute__((no_sanitize_address))
#else
#define NO_ASAN
#endif

/* ASAN must leave the signals a case raises to us (set before main runs). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "handle_segv=0:handle_sigbus=0:handle_sigill=0:handle_sigfpe=0:"
	       "allow_user_segv_handler=1:use_sigaltstack=0";
}

enum { PH_IDLE, PH_LOAD, PH_RUN };

/* Shared with the child: where it has got to. */
struct native_shared {
	volatile int progress;
};

struct native_child {
	volatile int phase;
	const struct tcase *cur;
	struct outcome *out;
	sigjmp_buf jb;
	uint8_t *code;
	uint8_t *data;
};

static struct native_child child;
static struct native_shared *shared;
static struct tcase *batch_cases;
static struct outcome *batch_out;
static int batch_cap;

/* emu_gpr order -> ucontext greg index */
static const int greg_of[16] = {
    REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
    REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
};

#define FL_AC 0x40000ULL

static void load_state(ucontext_t *uc)
{
	const struct tcase *c = child.cur;
	greg_t *g = uc->uc_mcontext.gregs;
	uint8_t *fx = (uint8_t *)uc->uc_mcontext.fpregs;
	uint64_t fl;
	int i;

	for (i = 0; i < 16; i++)
		g[greg_of[i]] = (greg_t)c->in.gpr[i];
	g[REG_RIP] = (greg_t)(CODE_BASE + c->code_off);
	fl = (uint64_t)g[REG_EFL] & ~(FL_CMP | FL_TF | FL_AC);
	fl |= c->in.rflags & FL_CMP;
	if (c->single_step)
		fl |= FL_TF;
	g[REG_EFL] = (greg_t)fl;
	/* Keep MXCSR_MASK and the software-available bytes (the kernel's xstate magic). */
	memcpy(fx, c->in.fx, FX_MXMASK);
	memcpy(fx + FX_ST, c->in.fx + FX_ST, FX_USED - FX_ST);
}

static void capture_state(int sig, siginfo_t *si, ucontext_t *uc)
{
	struct outcome *o = child.out;
	greg_t *g = uc->uc_mcontext.gregs;
	int i;

	for (i = 0; i < 16; i++)
		o->st.gpr[i] = (uint64_t)g[greg_of[i]];
	o->st.rip = (uint64_t)g[REG_RIP];
	o->st.rflags = (uint64_t)g[REG_EFL] & ~FL_TF;
	memcpy(o->st.fx, uc->uc_mcontext.fpregs, sizeof(o->st.fx));
	o->vector = (int)g[REG_TRAPNO];
	o->err = (uint32_t)g[REG_ERR];
	o->fault_addr = (sig == SIGSEGV || sig == SIGBUS) ? (uint64_t)si->si_addr : 0;
	if (sig == SIGTRAP && o->vector == 3 &&
	    o->st.rip == CODE_BASE + child.cur->code_off + child.cur->code_len + 1 &&
	    !child.cur->single_step) {
		o->end = END_DONE;
		o->st.rip--; /* report the address of the end marker, as the emulator does */
	} else if (sig == SIGTRAP && o->vector == 1 && child.cur->single_step) {
		o->end = END_DONE;
	} else {
		o->end = END_EXCEPTION;
	}
}

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;

	/* A case may have set EFLAGS.AC (POPF); the kernel keeps it for the handler, and with
	 * CR0.AM set any misaligned access in here would raise #AC. */
	__asm__ volatile("pushfq; andq $~0x40000, (%%rsp); popfq" ::: "memory", "cc");
	if (child.phase == PH_LOAD && sig == SIGTRAP) {
		load_state(uc);
		child.phase = PH_RUN;
		return;
	}
	if (child.phase == PH_RUN) {
		capture_state(sig, si, uc);
		child.phase = PH_IDLE;
		siglongjmp(child.jb, 1);
	}
	/* A fault in the harness itself: die, the parent reports it. */
	_exit(100 + sig);
}

#if defined(__SANITIZE_ADDRESS__)
/* Under ASAN the process has the shadow of the low 2 GiB mapped read-write at 2 GiB-2.25 GiB
 * (x86-64: [0x7fff8000, 0x8fff7000)), exactly where a case's stray access lands: a 32-bit
 * displacement or an index scaled by 4 from the data area. The host would then execute what
 * faults in the emulator, which maps nothing but the case's code and data. Nothing in the
 * child needs that shadow except for the case's own pages, which it only touches through
 * copy_out()/copy_in() below, uninstrumented: so the whole low shadow is made inaccessible,
 * and the address space the case sees below 4 GiB is the emulator's. */
static int hide_low_shadow(void)
{
	size_t scale, offset;
	uintptr_t lo, hi;

	__asan_get_shadow_mapping(&scale, &offset);
	lo = (offset + 4095) & ~(uintptr_t)4095;
	hi = (offset + (offset >> scale)) & ~(uintptr_t)4095;
	if (hi <= lo || lo <= DATA_BASE + DATA_SIZE)
		return -1; /* not the layout this was written for */
	return mprotect((void *)lo, hi - lo, PROT_NONE);
}
#endif

/* Copies to and from the case's pages: without ASAN checks (the shadow of those pages is
 * hidden, see hide_low_shadow) and in 8-byte volatile steps, so the compiler does not turn
 * them into a memcpy call, which ASAN intercepts. n is a multiple of 8, both 8-aligned. */
NO_ASAN static void copy_words(void *dst, const void *src, size_t n)
{
	volatile uint64_t *d = dst;
	const volatile uint64_t *s = src;
	size_t i;

	for (i = 0; i < n / 8; i++)
		d[i] = s[i];
}

static int child_setup(void)
{
	static const int sigs[] = {SIGTRAP, SIGSEGV, SIGBUS, SIGILL, SIGFPE};
	struct sigaction sa;
	stack_t ss;
	void *guard;
	size_t i;

	child.code = mmap((void *)CODE_BASE, CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (child.code != (void *)CODE_BASE)
		return 2;
	guard = mmap((void *)(CODE_BASE + CODE_SIZE), 4096, PROT_NONE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (guard != (void *)(CODE_BASE + CODE_SIZE))
		return 3; /* something lives where the guard page must be */
	munmap(guard, 4096);
	child.data = mmap((void *)DATA_BASE, DATA_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (child.data != (void *)DATA_BASE)
		return 4;
	ss.ss_sp = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ss.ss_sp == MAP_FAILED)
		return 5;
	ss.ss_size = 1 << 16;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL))
		return 6;
#if defined(__SANITIZE_ADDRESS__)
	if (hide_low_shadow())
		return 8;
#endif
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL))
			return 7;
	return 0;
}

static void child_run_one(const struct tcase *c, struct outcome *o)
{
	uint8_t code[CODE_SIZE] __attribute__((aligned(8)));

	memset(code, 0xcc, sizeof(code));
	memcpy(code + c->code_off, c->code, c->code_len);
	copy_words(child.code, code, CODE_SIZE);
	copy_words(child.data, c->mem, DATA_SIZE);
	child.cur = c;
	child.out = o;
	o->end = END_CRASH;
	o->why[0] = 0;
	if (sigsetjmp(child.jb, 1) == 0) {
		child.phase = PH_LOAD;
		__asm__ volatile("int3" ::: "memory");
		_exit(9); /* not reached: the handler jumps to the case */
	}
	copy_words(o->mem, child.data, DATA_SIZE);
}

static void child_main(int start, int n)
{
	int rc = child_setup();
	int i;

	if (rc)
		_exit(rc);
	for (i = start; i < n; i++) {
		shared->progress = i;
		if ((i - start) % 64 == 0)
			alarm(10);
		child_run_one(&batch_cases[i], &batch_out[i]);
	}
	shared->progress = n;
	_exit(0);
}

/* Shared buffers for up to cap cases; the caller fills native_cases() and reads
 * native_outcomes() after native_run(). */
static int native_alloc(int cap)
{
	size_t sz = sizeof(struct native_shared) + 64 + (size_t)cap * sizeof(struct tcase) +
		    (size_t)cap * sizeof(struct outcome);
	uint8_t *p;

	if (cap <= batch_cap)
		return 0;
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	shared = (struct native_shared *)p;
	batch_cases = (struct tcase *)(p + 64);
	batch_out = (struct outcome *)(p + 64 + (size_t)cap * sizeof(struct tcase));
	batch_cap = cap;
	return 0;
}

struct tcase *native_cases(int cap)
{
	if (native_alloc(cap))
		return NULL;
	return batch_cases;
}

struct outcome *native_outcomes(void)
{
	return batch_out;
}

void native_run(int n)
{
	int start = 0;

	fflush(NULL);
	while (start < n) {
		int status = 0;
		pid_t pid;

		shared->progress = start;
		pid = fork();
		if (pid < 0) {
			for (; start < n; start++) {
				batch_out[start].end = END_CRASH;
				snprintf(batch_out[start].why, sizeof(batch_out[start].why),
					 "fork: %s", strerror(errno));
			}
			return;
		}
		if (pid == 0)
			child_main(start, n);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			return;
		/* The child died at case "progress": mark it and go on after it. */
		start = shared->progress;
		if (start >= n)
			return;
		batch_out[start].end = END_CRASH;
		if (WIFSIGNALED(status))
			snprintf(batch_out[start].why, sizeof(batch_out[start].why),
				 "native child killed by signal %d%s", WTERMSIG(status),
				 WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
		else
			snprintf(batch_out[start].why, sizeof(batch_out[start].why),
				 "native child exited with %d", WEXITSTATUS(status));
		start++;
	}
}

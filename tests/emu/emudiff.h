/* Differential test harness for the x86-64 emulator (issue 7): shared definitions.
 *
 * A test case is a short instruction sequence plus a full initial machine state (GPRs, RIP,
 * RFLAGS, the FXSAVE image with x87/SSE state, and the data area). It runs on the host CPU in
 * a child process (native.c) and in accel/emu (emurun.c); main.c compares the outcomes.
 * Instruction encodings follow the Intel SDM vol. 2 (chapter 2, "Instruction Format") and
 * the opcode maps of its appendix A; undefined flags follow each instruction's "Flags
 * Affected" section (gen.c).
 */
#ifndef KESTREL_TESTS_EMUDIFF_H
#define KESTREL_TESTS_EMUDIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fixed addresses, the same natively and in the emulator so pointers match. */
#define CODE_BASE 0x10000000ULL
#define CODE_SIZE 0x1000ULL /* the page after it stays unmapped: a guard page */
#define DATA_BASE 0x20000000ULL
#define DATA_SIZE 0x2000ULL

/* Data area layout (offsets from DATA_BASE). */
#define WIN_LO	  0x800 /* memory operands point into [WIN_LO, WIN_HI) */
#define WIN_HI	  0x1000
#define STACK_TOP 0x1800 /* initial RSP is a little below this */
#define STACK_LOW 0x1000

#define CODE_MAX  256
#define MAX_INSNS 8
#define MAX_MEMU  8

/* RFLAGS bits */
#define FL_CF	  0x001ULL
#define FL_PF	  0x004ULL
#define FL_AF	  0x010ULL
#define FL_ZF	  0x040ULL
#define FL_SF	  0x080ULL
#define FL_TF	  0x100ULL
#define FL_IF	  0x200ULL
#define FL_DF	  0x400ULL
#define FL_OF	  0x800ULL
#define FL_STATUS (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)
#define FL_ALL6	  FL_STATUS
/* What the comparison looks at: the six status flags and DF. */
#define FL_CMP (FL_STATUS | FL_DF)

/* FXSAVE image offsets (SDM vol. 1, 10.5.1 "FXSAVE Area") */
#define FX_FCW	  0
#define FX_FSW	  2
#define FX_FTW	  4
#define FX_FOP	  6
#define FX_FIP	  8
#define FX_FDP	  16
#define FX_MXCSR  24
#define FX_MXMASK 28
#define FX_ST	  32  /* ST(i) at 32 + 16 * i, 10 bytes used */
#define FX_XMM	  160 /* XMMi at 160 + 16 * i */
#define FX_USED	  416 /* bytes the processor defines */

/* Register numbers, in encoding order (the same as enum emu_gpr). */
enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

struct mstate {
	uint64_t gpr[16];
	uint64_t rip;
	uint64_t rflags;
	uint8_t fx[512] __attribute__((aligned(16)));
};

/* How a run ended. */
enum run_end {
	END_DONE,      /* reached the end marker (or, single-stepping, the next instruction) */
	END_EXCEPTION, /* an exception: vector/err/fault_addr valid, state before the insn */
	END_OTHER,     /* emulator: stopped for another reason (I/O, HLT, insn limit) */
	END_CRASH,     /* native child died or timed out; emulator: not available */
};

struct outcome {
	int end;
	int vector;
	uint32_t err;
	uint64_t fault_addr;
	uint64_t retired;
	char why[64]; /* END_OTHER / END_CRASH: what happened */
	struct mstate st;
	uint8_t mem[DATA_SIZE];
};

struct mem_range {
	uint16_t off, len;
};

struct tcase {
	uint64_t seed;
	uint64_t num;
	int cls;
	bool single_step;  /* decoder fuzz: run one instruction with TF=1 */
	uint32_t code_off; /* offset of code[0] in the code page */
	uint32_t code_len; /* bytes of code, not counting the end marker */
	uint8_t code[CODE_MAX];
	int n_insns;
	uint16_t insn_off[MAX_INSNS];
	const char *insn_name[MAX_INSNS];
	struct mstate in;
	uint8_t mem[DATA_SIZE];
	/* What the comparison ignores (undefined per the SDM for this sequence). */
	uint64_t fl_undef;
	uint16_t gpr_undef;
	uint16_t fsw_undef;
	/* The same, as they stood before instruction i (used when instruction i faults). */
	uint64_t fl_undef_at[MAX_INSNS];
	uint16_t gpr_undef_at[MAX_INSNS];
	uint16_t fsw_undef_at[MAX_INSNS];
	int n_memu;
	struct mem_range memu[MAX_MEMU];
	/* Fuzz: the instruction length the generator built. */
	uint32_t fuzz_len;
};

/* gen.c */
uint64_t rng_next(uint64_t *s);
void case_generate(struct tcase *c, uint64_t seed, uint64_t num, int cls);
void case_describe_insn(const struct tcase *c, int i, char *buf, size_t len);
bool host_has(const char *feature);

/* native.c: shared buffers for up to cap cases (filled by the caller), then run the first
 * n of them in a forked child; native_outcomes()[i] is filled for each. */
struct tcase *native_cases(int cap);
struct outcome *native_outcomes(void);
void native_run(int n);

/* emurun.c: one case here, or a batch in a forked child into shared emurun_outcomes() */
bool emurun_available(void);
void emurun_case(const struct tcase *c, struct outcome *out);
struct outcome *emurun_outcomes(int cap);
void emurun_batch(const struct tcase *cases, int n);
bool emurun_cpuid_has(uint32_t leaf, uint32_t subleaf, unsigned reg, unsigned bit);

/* Seed to start a case's generator from. */
uint64_t case_seed(uint64_t seed, uint64_t num);

#endif

/* The x86-64 interpreter's private interface: CPU state, decoded instructions, lazy flags,
 * memory access and the dispatch convention shared by the files of accel/emu.
 *
 * Follows the Intel SDM vol. 1 ch. 3 (execution environment) and vol. 2 ch. 2 (instruction
 * format). Execution model: a block of up to EMU_BLOCK_MAX decoded instructions is run by
 * tail-calling one handler per instruction (all handlers share one signature, as blink does).
 * A handler does every access that can fault before it changes any state, so an exception
 * (raised by longjmp back to emu_run) leaves the state as before the instruction.
 */
#ifndef KESTREL_ACCEL_EMU_EMU_INTERNAL_H
#define KESTREL_ACCEL_EMU_EMU_INTERNAL_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "accel/emu/emu.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Exception vectors (SDM vol. 3 table 6-1). */
enum {
	EXC_DE = 0,
	EXC_DB = 1,
	EXC_BP = 3,
	EXC_OF = 4,
	EXC_UD = 6,
	EXC_NM = 7,
	EXC_GP = 13,
	EXC_SS = 12,
	EXC_PF = 14,
	EXC_MF = 16,
	EXC_AC = 17,
	EXC_XM = 19,
};

/* RFLAGS bits. */
#define FL_CF	 0x0001u
#define FL_PF	 0x0004u
#define FL_AF	 0x0010u
#define FL_ZF	 0x0040u
#define FL_SF	 0x0080u
#define FL_TF	 0x0100u
#define FL_IF	 0x0200u
#define FL_DF	 0x0400u
#define FL_OF	 0x0800u
#define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)

/* Lazy flags: the last flag-setting operation and its operands (SDM vol. 1 3.4.3). */
enum lf_op {
	LF_EAGER, /* arithmetic flags are in cpu->rflags */
	LF_ADD,	  /* res = a + b */
	LF_ADC,	  /* res = a + b + cf */
	LF_SUB,	  /* res = a - b (also CMP, NEG with a = 0) */
	LF_SBB,	  /* res = a - b - cf */
	LF_LOGIC, /* res; CF = OF = AF = 0 */
	LF_INC,	  /* res = a + 1, CF kept in cf */
	LF_DEC,	  /* res = a - 1, CF kept in cf */
	LF_SHL,	  /* res = a << b (b = masked count, non-zero) */
	LF_SHR,	  /* res = a >> b */
	LF_SAR,	  /* res = (signed)a >> b */
};

/* Register numbers in decoded instructions. Byte registers AH..BH (no REX) are 16..19. */
#define REG_NONE 0xff
#define REG_RIP	 0xfe
#define REG_AH	 16

struct emu_cpu;
struct insn;
typedef void (*emu_handler)(struct emu_cpu *cpu, const struct insn *in);

/* One decoded instruction. Operand fields are interpreted by the handler. */
struct insn {
	emu_handler fn;
	uint64_t imm;  /* immediate, or branch target for relative branches */
	uint64_t rip;  /* address of the instruction */
	int32_t disp;  /* displacement (RIP-relative: from the next instruction) */
	uint8_t len;   /* bytes */
	uint8_t size;  /* operand size: 1, 2, 4, 8 (16 for 128-bit) */
	uint8_t asize; /* address size: 4 or 8 */
	uint8_t reg;   /* ModRM.reg with REX.R (byte regs: see REG_AH) */
	uint8_t rm;    /* ModRM.rm with REX.B when it names a register */
	uint8_t base;  /* memory base register, REG_RIP or REG_NONE */
	uint8_t index; /* memory index register or REG_NONE */
	uint8_t scale; /* shift count for the index */
	uint8_t seg;   /* effective segment (enum emu_sreg) */
	uint8_t mem;   /* operand is memory (ModRM.mod != 3) */
	uint8_t rep;   /* 0, 0xf3 (REP/REPE) or 0xf2 (REPNE) */
	uint8_t op;    /* opcode or sub-operation selector */
	uint8_t op2;   /* second selector (condition code, prefix class) */
	uint8_t pfx;   /* PFX_* bits */
	uint8_t ib;    /* low byte of the immediate (SSE) */
	uint16_t aux;  /* x87: the FOP value (opcode bits 10-8, ModRM) */
};

#define PFX_LOCK   0x01
#define PFX_66	   0x02
#define PFX_REX	   0x04
#define PFX_REXW   0x08
#define PFX_NOWAIT 0x40 /* x87 control instruction that does not check pending exceptions */
#define PFX_END	   0x80 /* ends its block (branches, HLT, mode changes) */

#define EMU_BLOCK_MAX 48

struct emu_block {
	uint64_t rip; /* first instruction */
	uint64_t end; /* first byte after the last instruction */
	struct emu_block *next;
	/* Blocks that followed this one before (block chaining: the run loop tries these
	 * before the hash table). Only used while both are live. */
	struct emu_block *succ[2];
	uint32_t n;    /* instructions, not counting the terminating sentinel */
	uint32_t live; /* cleared when its page was written */
	struct insn insns[];
};

struct emu_region {
	uint64_t base, size;
	uint8_t *host;
	uint8_t *code; /* one byte per 4 KiB page: decoded code lives there */
	bool writable;
};

/* MXCSR bits that can be written: as this AMD-style CPU has them, with DAZ and MM. */
#define EMU_MXCSR_MASK 0x2ffffu

#define EMU_MAX_REGIONS 16
#define EMU_HASH_BITS	14
#define EMU_ARENA_SIZE	(32u << 20)

union emu_xmm {
	uint8_t b[16];
	uint16_t w[8];
	uint32_t d[4];
	uint64_t q[2];
	int8_t sb[16];
	int16_t sw[8];
	int32_t sd[4];
	int64_t sq[2];
	float f[4];
	double f64[2];
} __attribute__((aligned(16)));

struct emu_cpu {
	uint64_t gpr[16];
	uint64_t rip;
	/* Lazy flags. rflags holds every non-arithmetic bit always, and the arithmetic bits
	 * when lf_op == LF_EAGER. */
	uint64_t lf_res, lf_a, lf_b;
	uint32_t lf_op;
	uint32_t lf_size;
	uint32_t lf_cf;
	uint64_t rflags;
	/* alignment checking is on: CPL 3, CR0.AM and RFLAGS.AC (SDM vol. 3 6.15, #AC) */
	uint32_t ac_check;

	/* Set to make the running block return to emu_run after the current instruction
	 * (single-stepping, self-modifying code, HLT). */
	uint32_t exit_req;
	const struct insn *exit_insn;  /* the instruction after which it returned */
	const struct insn *budget_end; /* the last instruction emu_run may retire, or NULL */
	const struct insn *fault_insn;
	struct emu_event ev;
	jmp_buf fault_jmp;
	int stop; /* -1 = keep running, else enum emu_stop */

	union emu_xmm xmm[16];
	uint32_t mxcsr;
	uint32_t mx_loaded;  /* what the host MXCSR holds during emu_run (0: unknown) */
	uint32_t host_mxcsr; /* the host's own, restored when emu_run returns */
	uint32_t mx_lazy;    /* guest flags may still sit in the host MXCSR */

	/* x87: physical registers (80-bit in the low 10 bytes) */
	uint8_t fpr[8][16];
	uint16_t fcw, fsw; /* fsw's TOP field is kept in ftop */
	uint16_t ftw;	   /* full 2-bit-per-register tag word */
	uint16_t fop;
	unsigned ftop;
	uint64_t fip, fdp;

	struct emu_segment seg[6];
	uint64_t cr0, cr2, cr3, cr4, cr8, efer;
	uint64_t kernel_gs_base;
	uint64_t tsc_offset;

	/* flat memory */
	struct emu_region regions[EMU_MAX_REGIONS];
	unsigned nregions;
	struct emu_region *last_region;

	/* decoded-block cache */
	struct emu_block *hash[1u << EMU_HASH_BITS];
	uint8_t *arena;
	size_t arena_used;
	uint64_t flushes;
	struct emu_block *prev_block; /* the block run last (block chaining) */
	uint64_t prev_flushes;	      /* cpu->flushes when it ran */
	uint64_t invalidations;	      /* pages whose blocks were dropped after a write */
};

/* --- memory (cpu.c) --- */
__attribute__((noreturn)) void emu_raise(struct emu_cpu *cpu, const struct insn *in, int vector,
					 uint32_t error_code, bool has_error);
__attribute__((noreturn)) void emu_raise_fault(struct emu_cpu *cpu, const struct insn *in,
					       uint64_t addr, bool write);
void emu_code_written(struct emu_cpu *cpu, struct emu_region *r, uint64_t off, uint64_t len);
void emu_flush_blocks(struct emu_cpu *cpu);

/* Host pointer for [addr, addr+len) or raise #GP/#PF. len <= 4096. */
static inline void *emu_mem(struct emu_cpu *cpu, const struct insn *in, uint64_t addr, uint64_t len,
			    bool write)
{
	struct emu_region *r = cpu->last_region;
	uint64_t off = addr - r->base;
	if (unlikely(cpu->ac_check) && len <= 8 && (addr & (len - 1)))
		emu_raise(cpu, in, EXC_AC, 0, true);
	if (unlikely(off >= r->size || r->size - off < len)) {
		unsigned i;
		r = NULL;
		for (i = 0; i < cpu->nregions; i++) {
			struct emu_region *c = &cpu->regions[i];
			off = addr - c->base;
			if (off < c->size && c->size - off >= len) {
				r = c;
				break;
			}
		}
		if (!r)
			emu_raise_fault(cpu, in, addr, write);
		cpu->last_region = r;
	}
	if (write) {
		if (unlikely(!r->writable))
			emu_raise_fault(cpu, in, addr, write);
		if (unlikely(r->code[off >> 12] | r->code[(off + len - 1) >> 12]))
			emu_code_written(cpu, r, off, len);
	}
	return r->host + off;
}

static inline uint64_t emu_ld(struct emu_cpu *cpu, const struct insn *in, uint64_t addr,
			      unsigned size)
{
	const void *p = emu_mem(cpu, in, addr, size, false);
	switch (size) {
	case 1:
		return *(const uint8_t *)p;
	case 2: {
		uint16_t v;
		memcpy(&v, p, 2);
		return v;
	}
	case 4: {
		uint32_t v;
		memcpy(&v, p, 4);
		return v;
	}
	default: {
		uint64_t v;
		memcpy(&v, p, 8);
		return v;
	}
	}
}

static inline void emu_st_ptr(void *p, uint64_t v, unsigned size)
{
	switch (size) {
	case 1:
		*(uint8_t *)p = (uint8_t)v;
		break;
	case 2: {
		uint16_t x = (uint16_t)v;
		memcpy(p, &x, 2);
		break;
	}
	case 4: {
		uint32_t x = (uint32_t)v;
		memcpy(p, &x, 4);
		break;
	}
	default:
		memcpy(p, &v, 8);
		break;
	}
}

static inline uint64_t emu_ld_ptr(const void *p, unsigned size)
{
	switch (size) {
	case 1:
		return *(const uint8_t *)p;
	case 2: {
		uint16_t v;
		memcpy(&v, p, 2);
		return v;
	}
	case 4: {
		uint32_t v;
		memcpy(&v, p, 4);
		return v;
	}
	default: {
		uint64_t v;
		memcpy(&v, p, 8);
		return v;
	}
	}
}

static inline void emu_st(struct emu_cpu *cpu, const struct insn *in, uint64_t addr, uint64_t v,
			  unsigned size)
{
	emu_st_ptr(emu_mem(cpu, in, addr, size, true), v, size);
}

/* Canonical check then address: raise #GP(0) (#SS(0) for the stack) for non-canonical. */
static inline uint64_t emu_canon(struct emu_cpu *cpu, const struct insn *in, uint64_t addr,
				 bool stack)
{
	if (unlikely((uint64_t)((int64_t)(addr << 16) >> 16) != addr))
		emu_raise(cpu, in, stack ? EXC_SS : EXC_GP, 0, true);
	return addr;
}

/* Effective linear address of the memory operand. */
static inline uint64_t emu_ea(struct emu_cpu *cpu, const struct insn *in)
{
	uint64_t a = (uint64_t)(int64_t)in->disp;
	if (in->base < 16)
		a += cpu->gpr[in->base];
	else if (in->base == REG_RIP)
		a += in->rip + in->len;
	if (in->index != REG_NONE)
		a += cpu->gpr[in->index] << in->scale;
	if (in->asize == 4)
		a = (uint32_t)a;
	if (in->seg >= EMU_FS)
		a += cpu->seg[in->seg].base;
	return emu_canon(cpu, in, a, false);
}

/* --- registers --- */
static inline uint64_t size_mask(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

static inline uint64_t reg_read(const struct emu_cpu *cpu, unsigned r, unsigned size)
{
	if (size == 1) {
		if (r >= REG_AH)
			return (uint8_t)(cpu->gpr[r - REG_AH] >> 8);
		return (uint8_t)cpu->gpr[r];
	}
	return cpu->gpr[r] & size_mask(size);
}

static inline void reg_write(struct emu_cpu *cpu, unsigned r, uint64_t v, unsigned size)
{
	switch (size) {
	case 1:
		if (r >= REG_AH)
			cpu->gpr[r - REG_AH] =
			    (cpu->gpr[r - REG_AH] & ~0xff00ull) | ((v & 0xff) << 8);
		else
			cpu->gpr[r] = (cpu->gpr[r] & ~0xffull) | (v & 0xff);
		break;
	case 2:
		cpu->gpr[r] = (cpu->gpr[r] & ~0xffffull) | (v & 0xffff);
		break;
	case 4:
		cpu->gpr[r] = (uint32_t)v;
		break;
	default:
		cpu->gpr[r] = v;
		break;
	}
}

static inline int64_t sext(uint64_t v, unsigned size)
{
	switch (size) {
	case 1:
		return (int8_t)v;
	case 2:
		return (int16_t)v;
	case 4:
		return (int32_t)v;
	default:
		return (int64_t)v;
	}
}

/* Collect SIMD exception flags left in the host MXCSR into the guest's (see sse.c). */
static inline void emu_mxcsr_sync(struct emu_cpu *cpu)
{
	uint32_t m;
	if (!cpu->mx_lazy)
		return;
	asm volatile("stmxcsr %0" : "=m"(m));
	cpu->mxcsr |= m & 0x3f;
	cpu->mx_lazy = 0;
}

/* --- flags (flags.c) --- */
uint64_t emu_flags_get(const struct emu_cpu *cpu);
void emu_flags_set(struct emu_cpu *cpu, uint64_t rflags);
/* Recompute cpu->ac_check after RFLAGS, CR0 or CPL changed. */
void emu_update_ac(struct emu_cpu *cpu);
bool emu_cond(const struct emu_cpu *cpu, unsigned cc);
/* Materialise the arithmetic flags into cpu->rflags and switch to LF_EAGER. */
static inline void flags_eager(struct emu_cpu *cpu)
{
	if (cpu->lf_op != LF_EAGER) {
		cpu->rflags = emu_flags_get(cpu);
		cpu->lf_op = LF_EAGER;
	}
}

/* CF alone, without materialising the other flags (ADC, INC, DEC need it). */
static inline bool flag_cf(const struct emu_cpu *cpu)
{
	uint64_t mask;
	switch (cpu->lf_op) {
	case LF_EAGER:
		return cpu->rflags & FL_CF;
	case LF_LOGIC:
		return false;
	case LF_INC:
	case LF_DEC:
		return cpu->lf_cf;
	case LF_ADD:
		mask = size_mask(cpu->lf_size);
		return (cpu->lf_res & mask) < (cpu->lf_a & mask);
	case LF_SUB:
		mask = size_mask(cpu->lf_size);
		return (cpu->lf_a & mask) < (cpu->lf_b & mask);
	default:
		return emu_cond(cpu, 2);
	}
}

static inline void lf_set(struct emu_cpu *cpu, enum lf_op op, unsigned size, uint64_t res,
			  uint64_t a, uint64_t b)
{
	cpu->lf_op = op;
	cpu->lf_size = size;
	cpu->lf_res = res;
	cpu->lf_a = a;
	cpu->lf_b = b;
}

static inline unsigned parity8(uint64_t v)
{
	return !__builtin_parity((unsigned)(v & 0xff));
}

/* --- dispatch --- */
void emu_exit_after(struct emu_cpu *cpu, const struct insn *in);

/* Continue with the next instruction of the block: a tail call, so a block runs as one
 * chain of jumps. Returns to emu_run when an exit was requested. */
static inline void dispatch_next(struct emu_cpu *cpu, const struct insn *in)
{
	if (unlikely(cpu->exit_req)) {
		emu_exit_after(cpu, in);
		return;
	}
	in++;
	in->fn(cpu, in);
}

/* Leave the block to a new RIP (taken branches). */
static inline void dispatch_jump(struct emu_cpu *cpu, const struct insn *in, uint64_t target)
{
	(void)in;
	cpu->rip = target;
}

/* --- decoder (decode.c) --- */
/* Decode one instruction at rip from bytes[0..avail). Returns its length, or 0 when the
 * bytes end before the instruction does (a fetch fault). An invalid encoding decodes to a
 * handler that raises #UD or #GP when executed. */
unsigned emu_decode(uint64_t rip, const uint8_t *bytes, unsigned avail, struct insn *in);

/* Opcode maps for the selectors. */
enum { MAP_1B, MAP_0F, MAP_0F38, MAP_0F3A };

/* Handler selection, one per instruction file: given the decoded operands of opcode opc in
 * map, set in->fn (and in->op/op2) and return true, or return false for an invalid
 * encoding. mand is the mandatory prefix for SSE maps (0, 0x66, 0xf3, 0xf2). */
bool emu_select_int(struct insn *in, unsigned map, unsigned opc, unsigned modrm_reg);
bool emu_select_sse(struct insn *in, unsigned map, unsigned opc, unsigned mand);
bool emu_select_x87(struct insn *in, unsigned opc, unsigned modrm);
void emu_op_fwait(struct emu_cpu *cpu, const struct insn *in);
/* 0F AE /0 FXSAVE, /1 FXRSTOR (x87.c) */
bool emu_select_fxsave(struct insn *in, unsigned modrm_reg);

/* Shared handlers. */
void emu_op_ud(struct emu_cpu *cpu, const struct insn *in);
void emu_op_gp(struct emu_cpu *cpu, const struct insn *in);
void emu_op_fetch_fault(struct emu_cpu *cpu, const struct insn *in);

/* Byte-register number for ModRM register field r (AH..BH without REX). */
static inline uint8_t byte_reg(const struct insn *in, unsigned r)
{
	if (!(in->pfx & PFX_REX) && r >= 4 && r < 8)
		return (uint8_t)(REG_AH + r - 4);
	return (uint8_t)r;
}

/* SSE/x87 availability checks (CR0.EM/TS, CR4.OSFXSR) */
void emu_sse_check(struct emu_cpu *cpu, const struct insn *in);
void emu_fpu_check(struct emu_cpu *cpu, const struct insn *in);
uint64_t emu_rdtsc(const struct emu_cpu *cpu);

/* Extensions the emulator runs on the host's own instructions, so it offers them only when
 * the host has them (cpu.c). */
enum emu_host_feature {
	EMU_HOST_RDRAND,
	EMU_HOST_RDSEED,
	EMU_HOST_AES,
	EMU_HOST_SHA,
	EMU_HOST_ADX,
	EMU_HOST_PCLMUL,
};
bool emu_host_has(enum emu_host_feature f);

#endif

/* x87 FPU instructions (D8-DF), FWAIT, and FXSAVE/FXRSTOR.
 *
 * Follows the Intel SDM vol. 1 ch. 8 (x87 FPU: stack, tags, status/control words, exception
 * handling, 8.1.10 pointers), 10.5 (FXSAVE area) and vol. 2 for each instruction.
 * Each x87 instruction runs as the very same instruction on the host FPU: a stub per
 * encoding (generated below with .rept) does FXRSTOR of the guest's x87 state, the
 * instruction on a copy of its memory operand, FXSAVE. The host computes with the guest's
 * precision and rounding control and every exception masked, so results are exactly the
 * hardware's (80-bit); the emulator then applies the guest's masks: an unmasked invalid,
 * zero-divide or denormal leaves registers unchanged, any unmasked exception sets ES/B and
 * the next waiting x87 instruction raises #MF. Instructions that touch EFLAGS or general
 * registers (FCOMI, FCMOV, FNSTSW AX) and the control ones are done in C.
 */
#include "accel/emu/emu_internal.h"

#define HANDLER(name) static void name(struct emu_cpu *cpu, const struct insn *in)

/* FXSAVE layout (64-bit form) */
struct fxarea {
	uint16_t fcw, fsw;
	uint8_t ftw, rsvd;
	uint16_t fop;
	uint64_t fip, fdp;
	uint32_t mxcsr, mxcsr_mask;
	uint8_t st[8][16];
	uint8_t xmm[16][16];
	uint8_t avail[96];
} __attribute__((aligned(16)));

/* Stubs: key k at emu_x87_stubs + 16 * k. Register forms: k = (opc - 0xd8) * 64 + modrm -
 * 0xc0; memory forms: k = 512 + (opc - 0xd8) * 8 + reg, operand at [rdi]. rsi = FXSAVE
 * area. */
asm(".pushsection .text.emu_x87, \"ax\", @progbits\n"
    ".balign 16\n"
    ".globl emu_x87_stubs\n"
    ".hidden emu_x87_stubs\n"
    "emu_x87_stubs:\n"
    ".irp op, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf\n"
    ".set emu_x87_m, 0xc0\n"
    ".rept 64\n"
    ".balign 16\n"
    "fxrstor64 (%rsi)\n"
    ".byte \\op, emu_x87_m\n"
    "fxsave64 (%rsi)\n"
    "ret\n"
    ".set emu_x87_m, emu_x87_m + 1\n"
    ".endr\n"
    ".endr\n"
    ".irp op, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf\n"
    ".set emu_x87_r, 0\n"
    ".rept 8\n"
    ".balign 16\n"
    "fxrstor64 (%rsi)\n"
    ".byte \\op, (emu_x87_r << 3) | 7\n"
    "fxsave64 (%rsi)\n"
    "ret\n"
    ".set emu_x87_r, emu_x87_r + 1\n"
    ".endr\n"
    ".endr\n"
    ".popsection\n");

extern const uint8_t emu_x87_stubs[];
typedef void (*x87_stub)(void *mem, struct fxarea *fx);

#define FSW_ES 0x0080
#define FSW_B  0x8000
#define FSW_C0 0x0100
#define FSW_C1 0x0200
#define FSW_C2 0x0400
#define FSW_C3 0x4000

/* in->op: x87 class; in->op2: memory operand bytes; in->imm: stub key */
enum {
	X_ARITH,   /* generic: run the stub */
	X_STORE,   /* generic with a memory destination */
	X_FCOMI,   /* FCOMI & co: the stub is the FCOM form; flags to EFLAGS */
	X_FCMOV,   /* in C */
	X_FSTSWAX, /* FNSTSW AX */
	X_FSTCW,   /* FNSTCW m16 */
	X_FLDCW,   /* FLDCW m16 */
	X_CTRL,	   /* FNINIT FNCLEX FLDENV FRSTOR FNSAVE FNSTENV: FSW taken as the stub leaves it */
	X_NOP,	   /* FNOP-like non-waiting no-ops (FNENI, FNDISI, FNSETPM) */
	X_FSTSWM,  /* FNSTSW m16 */
};

static unsigned tag_of(const uint8_t *r)
{
	uint64_t mant;
	unsigned exp;
	memcpy(&mant, r, 8);
	exp = (r[8] | (r[9] << 8)) & 0x7fff;
	if (exp == 0x7fff)
		return 2;
	if (exp == 0)
		return mant ? 2 : 1;
	return (mant >> 63) ? 0 : 2;
}

static void to_fxarea(const struct emu_cpu *cpu, struct fxarea *fx)
{
	unsigned i;
	fx->fcw = cpu->fcw;
	fx->fsw = (uint16_t)((cpu->fsw & ~0x3800) | ((cpu->ftop & 7) << 11));
	fx->ftw = 0;
	for (i = 0; i < 8; i++) {
		if (((cpu->ftw >> (2 * i)) & 3) != 3)
			fx->ftw |= (uint8_t)(1u << i);
		memcpy(fx->st[i], cpu->fpr[(cpu->ftop + i) & 7], 16);
	}
	fx->rsvd = 0;
	fx->fop = cpu->fop;
	fx->fip = cpu->fip;
	fx->fdp = cpu->fdp;
	fx->mxcsr = cpu->mxcsr;
	fx->mxcsr_mask = EMU_MXCSR_MASK;
}

/* registers, TOP and tags from an FXSAVE area (not FCW, pointers or MXCSR) */
static void from_fxarea_regs(struct emu_cpu *cpu, const struct fxarea *fx)
{
	unsigned i;
	cpu->ftop = (fx->fsw >> 11) & 7;
	for (i = 0; i < 8; i++) {
		memset(cpu->fpr[(cpu->ftop + i) & 7], 0, 16);
		memcpy(cpu->fpr[(cpu->ftop + i) & 7], fx->st[i], 10);
	}
	cpu->ftw = 0;
	for (i = 0; i < 8; i++) {
		unsigned t = (fx->ftw >> i) & 1 ? tag_of(cpu->fpr[i]) : 3;
		cpu->ftw |= (uint16_t)(t << (2 * i));
	}
}

static void host_run(unsigned key, void *mem, struct fxarea *fx)
{
	uint16_t host_fcw;
	uint32_t host_mxcsr;
	x87_stub stub = (x87_stub)(uintptr_t)(emu_x87_stubs + 16 * key);
	asm volatile("fnstcw %0" : "=m"(host_fcw));
	asm volatile("stmxcsr %0" : "=m"(host_mxcsr));
	fx->mxcsr = host_mxcsr;
	stub(mem, fx);
	asm volatile("fninit\n\tfldcw %0" : : "m"(host_fcw));
	asm volatile("ldmxcsr %0" : : "m"(host_mxcsr));
}

static bool is_waiting(const struct insn *in)
{
	return !(in->pfx & PFX_NOWAIT);
}

static void fpu_enter(struct emu_cpu *cpu, const struct insn *in)
{
	emu_fpu_check(cpu, in);
	if (is_waiting(in) && (cpu->fsw & FSW_ES))
		emu_raise(cpu, in, EXC_MF, 0, false);
}

static void set_pointers(struct emu_cpu *cpu, const struct insn *in, uint64_t addr)
{
	cpu->fip = in->rip;
	cpu->fdp = addr;
	cpu->fop = in->aux;
}

HANDLER(op_x87)
{
	struct fxarea fx;
	uint8_t buf[112] __attribute__((aligned(16)));
	unsigned n = in->op2, key = (unsigned)in->imm;
	uint16_t old_fsw = cpu->fsw, old_fcw = cpu->fcw, old_fop = cpu->fop, raised;
	uint64_t old_fip = cpu->fip, old_fdp = cpu->fdp;
	uint64_t addr = 0;
	uint8_t *dst = NULL;

	fpu_enter(cpu, in);
	memset(buf, 0, sizeof(buf));
	if (in->mem) {
		addr = emu_ea(cpu, in);
		if (in->op == X_STORE || (in->op == X_CTRL && (in->pfx & PFX_NOWAIT)))
			dst = emu_mem(cpu, in, addr, n, true);
		else if (in->op != X_FSTCW && in->op != X_FSTSWM)
			memcpy(buf, emu_mem(cpu, in, addr, n, false), n);
	}
	switch (in->op) {
	case X_FSTSWAX:
		reg_write(cpu, EMU_RAX, (cpu->fsw & ~0x3800u) | ((cpu->ftop & 7) << 11), 2);
		dispatch_next(cpu, in);
		return;
	case X_FSTSWM:
		emu_st(cpu, in, addr, (cpu->fsw & ~0x3800u) | ((cpu->ftop & 7) << 11), 2);
		dispatch_next(cpu, in);
		return;
	case X_FSTCW:
		emu_st(cpu, in, addr, cpu->fcw, 2);
		dispatch_next(cpu, in);
		return;
	case X_FLDCW:
		cpu->fcw = (uint16_t)((emu_ld_ptr(buf, 2) & 0x1f3f) | 0x40);
		/* unmasking a pending exception makes it pending for #MF */
		if (cpu->fsw & 0x3f & ~cpu->fcw)
			cpu->fsw |= FSW_ES | FSW_B;
		else
			cpu->fsw &= (uint16_t) ~(FSW_ES | FSW_B);
		dispatch_next(cpu, in);
		return;
	case X_NOP:
		dispatch_next(cpu, in);
		return;
	case X_FCMOV: {
		unsigned i = in->rm & 7;
		unsigned src = (cpu->ftop + i) & 7, top = cpu->ftop & 7;
		if (((cpu->ftw >> (2 * src)) & 3) == 3 || ((cpu->ftw >> (2 * top)) & 3) == 3) {
			/* stack underflow */
			cpu->fsw = (uint16_t)((cpu->fsw & ~FSW_C1) | 0x41);
			if (!(cpu->fcw & 1)) {
				cpu->fsw |= FSW_ES | FSW_B;
			} else {
				static const uint8_t indef[10] = {0, 0, 0,    0,    0,
								  0, 0, 0xc0, 0xff, 0xff};
				memset(cpu->fpr[top], 0, 16);
				memcpy(cpu->fpr[top], indef, 10);
				cpu->ftw =
				    (uint16_t)((cpu->ftw & ~(3u << (2 * top))) | (2u << (2 * top)));
			}
		} else {
			if (emu_cond(cpu, in->ib)) {
				memcpy(cpu->fpr[top], cpu->fpr[src], 16);
				cpu->ftw = (uint16_t)((cpu->ftw & ~(3u << (2 * top))) |
						      (((cpu->ftw >> (2 * src)) & 3) << (2 * top)));
			}
		}
		set_pointers(cpu, in, 0);
		dispatch_next(cpu, in);
		return;
	}
	default:
		break;
	}

	to_fxarea(cpu, &fx);
	if (in->op != X_CTRL)
		fx.fsw &= (uint16_t) ~(0x7f | FSW_ES | FSW_B);
	if (dst)
		memcpy(buf, dst, n); /* a store that does not happen leaves memory as it was */
	host_run(key, buf, &fx);

	if (in->op == X_CTRL) {
		/* FNINIT FNCLEX FLDENV FRSTOR FNSAVE FNSTENV */
		from_fxarea_regs(cpu, &fx);
		cpu->fsw = fx.fsw & ~0x3800;
		switch (in->ib) {
		case 0: /* FNINIT, FNSAVE */
			cpu->fcw = 0x37f;
			cpu->fop = 0;
			cpu->fip = cpu->fdp = 0;
			break;
		case 1: /* FNSTENV: masks all exceptions afterwards */
			cpu->fcw |= 0x3f;
			break;
		case 2: /* FLDENV, FRSTOR: control word and pointers from memory */
			cpu->fcw = (uint16_t)((emu_ld_ptr(buf, 2) & 0x1f3f) | 0x40);
			cpu->fip = emu_ld_ptr(buf + 12, 4);
			cpu->fop = (uint16_t)((emu_ld_ptr(buf + 16, 4) >> 16) & 0x7ff);
			cpu->fdp = emu_ld_ptr(buf + 20, 4);
			if (cpu->fsw & 0x3f & ~cpu->fcw)
				cpu->fsw |= FSW_ES | FSW_B;
			else
				cpu->fsw &= (uint16_t) ~(FSW_ES | FSW_B);
			break;
		default: /* FNCLEX */
			break;
		}
		if (dst) {
			/* FNSTENV/FNSAVE stored the host's view: put the guest's control word
			 * and pointers in (32-bit protected-mode layout) */
			emu_st_ptr(buf, old_fcw, 2);
			emu_st_ptr(buf + 12, old_fip, 4);
			emu_st_ptr(buf + 16,
				   cpu->seg[EMU_CS].selector | ((uint64_t)(old_fop & 0x7ff) << 16),
				   4);
			emu_st_ptr(buf + 20, old_fdp, 4);
			emu_st_ptr(buf + 24, cpu->seg[EMU_DS].selector, 4);
			memcpy(dst, buf, n);
		}
		dispatch_next(cpu, in);
		return;
	}

	/* The host ran with the guest's control word, so unmasked exceptions behaved as on
	 * hardware (no result for invalid/denormal/zero-divide, bias-adjusted results, ES
	 * and B set); the flags were cleared before, so they are this instruction's. */
	raised = fx.fsw & 0x7f;
	if (in->op == X_FCOMI) {
		uint16_t c = fx.fsw;
		flags_eager(cpu);
		cpu->rflags &= ~(uint64_t)FL_ARITH;
		if (c & FSW_C0)
			cpu->rflags |= FL_CF;
		if (c & FSW_C2)
			cpu->rflags |= FL_PF;
		if (c & FSW_C3)
			cpu->rflags |= FL_ZF;
	}
	from_fxarea_regs(cpu, &fx);
	cpu->fsw = (uint16_t)((fx.fsw & ~0x3800) | (old_fsw & 0x7f));
	if (in->op == X_FCOMI) {
		/* FCOMI leaves C0/C2/C3 alone, and C1 unless the stack faulted */
		uint16_t keep = FSW_C0 | FSW_C2 | FSW_C3 | ((raised & 0x40) ? 0 : FSW_C1);
		cpu->fsw = (uint16_t)((cpu->fsw & ~keep) | (old_fsw & keep));
	}
	if (dst)
		memcpy(dst, buf, n);
	set_pointers(cpu, in, addr);
	dispatch_next(cpu, in);
}

void emu_op_fwait(struct emu_cpu *cpu, const struct insn *in)
{
	emu_fpu_check(cpu, in);
	if (cpu->fsw & FSW_ES)
		emu_raise(cpu, in, EXC_MF, 0, false);
	dispatch_next(cpu, in);
}

/* --- FXSAVE / FXRSTOR --- */

HANDLER(op_fxsave)
{
	struct fxarea fx;
	uint64_t a;
	uint8_t *p;
	emu_fpu_check(cpu, in);
	a = emu_ea(cpu, in);
	if (a & 15)
		emu_raise(cpu, in, EXC_GP, 0, true);
	p = emu_mem(cpu, in, a, 512, !in->op);
	if (in->op) {
		/* FXRSTOR */
		memcpy(&fx, p, 512);
		if (fx.mxcsr & ~EMU_MXCSR_MASK)
			emu_raise(cpu, in, EXC_GP, 0, true);
		cpu->fcw = (fx.fcw & 0x1f3f) | 0x40; /* bits 13-15 read as 0, bit 6 as 1 */
		from_fxarea_regs(cpu, &fx);
		cpu->fsw = fx.fsw & ~0x3800;
		/* ES and B follow from the flags and the masks */
		if (cpu->fsw & 0x3f & ~cpu->fcw)
			cpu->fsw |= FSW_ES | FSW_B;
		else
			cpu->fsw &= (uint16_t) ~(FSW_ES | FSW_B);
		cpu->fop = fx.fop & 0x7ff;
		if (in->pfx & PFX_REXW) {
			cpu->fip = fx.fip;
			cpu->fdp = fx.fdp;
		} else {
			cpu->fip = (uint32_t)fx.fip;
			cpu->fdp = (uint32_t)fx.fdp;
		}
		cpu->mxcsr = fx.mxcsr;
		cpu->mx_loaded = 0;
		cpu->mx_lazy = 0;
		memcpy(cpu->xmm, fx.xmm, sizeof(fx.xmm));
	} else {
		emu_mxcsr_sync(cpu);
		memcpy(&fx, p, 512); /* reserved and available bytes are left as they are */
		to_fxarea(cpu, &fx);
		if (!(in->pfx & PFX_REXW)) {
			/* 32-bit pointer format: offsets, and FCS/FDS stored as zero (deprecated,
			 * as current CPUs do) */
			fx.fip = (uint32_t)cpu->fip;
			fx.fdp = (uint32_t)cpu->fdp;
		}
		memcpy(fx.xmm, cpu->xmm, sizeof(fx.xmm));
		memcpy(p, &fx, 416);
	}
	dispatch_next(cpu, in);
}

bool emu_select_fxsave(struct insn *in, unsigned modrm_reg)
{
	if (modrm_reg > 1)
		return false;
	in->fn = op_fxsave;
	in->op = (uint8_t)modrm_reg;
	return true;
}

/* ------------------------------------------------------------------------------------ */
/* Selector */

static bool reg_form_valid(unsigned opc, unsigned m)
{
	switch (opc) {
	case 0xd9:
		if (m >= 0xd1 && m <= 0xd7)
			return false;
		return !(m == 0xe2 || m == 0xe3 || m == 0xe6 || m == 0xe7 || m == 0xef);
	case 0xda:
		return m < 0xe0 || m == 0xe9;
	case 0xdb:
		return m < 0xe5 || (m >= 0xe8 && m < 0xf8);
	case 0xdd:
		return m < 0xf0;
	case 0xde:
		return m != 0xd8 && !(m >= 0xda && m <= 0xdf);
	case 0xdf:
		return m < 0xe1 || (m >= 0xe8 && m < 0xf8);
	default:
		return true;
	}
}

/* memory operand size, or 0 for an invalid /reg */
static unsigned mem_size(unsigned opc, unsigned r, bool o16)
{
	switch (opc) {
	case 0xd8:
	case 0xda:
		return 4;
	case 0xdc:
		return 8;
	case 0xde:
		return 2;
	case 0xd9:
		switch (r) {
		case 0:
		case 2:
		case 3:
			return 4;
		case 4:
		case 6:
			return o16 ? 14 : 28;
		case 5:
		case 7:
			return 2;
		default:
			return 0;
		}
	case 0xdb:
		switch (r) {
		case 0:
		case 1:
		case 2:
		case 3:
			return 4;
		case 5:
		case 7:
			return 10;
		default:
			return 0;
		}
	case 0xdd:
		switch (r) {
		case 0:
		case 1:
		case 2:
		case 3:
			return 8;
		case 4:
		case 6:
			return o16 ? 94 : 108;
		case 7:
			return 2;
		default:
			return 0;
		}
	default: /* DF */
		switch (r) {
		case 0:
		case 1:
		case 2:
		case 3:
			return 2;
		case 4:
		case 6:
			return 10;
		default:
			return 8;
		}
	}
}

bool emu_select_x87(struct insn *in, unsigned opc, unsigned modrm)
{
	unsigned r = (modrm >> 3) & 7;
	if (in->pfx & PFX_LOCK)
		return false;
	in->fn = op_x87;
	in->op = X_ARITH;
	in->aux = (uint16_t)(((opc & 7) << 8) | modrm);
	if (in->mem) {
		unsigned n = mem_size(opc, r, in->pfx & PFX_66);
		if (!n)
			return false;
		in->op2 = (uint8_t)n;
		in->imm = 512 + (opc - 0xd8) * 8 + r;
		switch (opc) {
		case 0xd9:
			if (r == 2 || r == 3)
				in->op = X_STORE;
			else if (r == 4) {
				in->op = X_CTRL;
				in->ib = 2;
			} else if (r == 5)
				in->op = X_FLDCW;
			else if (r == 6) {
				in->op = X_CTRL;
				in->ib = 1;
				in->pfx |= PFX_NOWAIT;
			} else if (r == 7) {
				in->op = X_FSTCW;
				in->pfx |= PFX_NOWAIT;
			}
			break;
		case 0xdb:
			if (r == 1 || r == 2 || r == 3 || r == 7)
				in->op = X_STORE;
			break;
		case 0xdd:
			if (r == 1 || r == 2 || r == 3)
				in->op = X_STORE;
			else if (r == 4) {
				in->op = X_CTRL;
				in->ib = 2;
			} else if (r == 6) {
				in->op = X_CTRL;
				in->ib = 0;
				in->pfx |= PFX_NOWAIT;
			} else if (r == 7) {
				in->op = X_FSTSWM;
				in->pfx |= PFX_NOWAIT;
			}
			break;
		case 0xdf:
			if (r == 1 || r == 2 || r == 3 || r == 6 || r == 7)
				in->op = X_STORE;
			break;
		default:
			break;
		}
		return true;
	}
	if (!reg_form_valid(opc, modrm))
		return false;
	in->imm = (opc - 0xd8) * 64 + (modrm - 0xc0);
	switch (opc) {
	case 0xda:
		if (modrm < 0xe0) {
			static const uint8_t cc[4] = {2, 4, 6, 10}; /* B E BE U(P) */
			in->op = X_FCMOV;
			in->ib = cc[(modrm >> 3) & 3];
		}
		break;
	case 0xdb:
		if (modrm < 0xe0) {
			static const uint8_t cc[4] = {3, 5, 7, 11}; /* NB NE NBE NU */
			in->op = X_FCMOV;
			in->ib = cc[(modrm >> 3) & 3];
		} else if (modrm == 0xe0 || modrm == 0xe1 || modrm == 0xe4) {
			in->op = X_NOP;
			in->pfx |= PFX_NOWAIT;
		} else if (modrm == 0xe2 || modrm == 0xe3) {
			in->op = X_CTRL;
			in->ib = modrm == 0xe3 ? 0 : 3;
			in->pfx |= PFX_NOWAIT;
		} else {
			/* FUCOMI (E8) / FCOMI (F0) -> FUCOM (DD E0+i) / FCOM (D8 D0+i) */
			in->op = X_FCOMI;
			in->imm = modrm < 0xf0 ? 5 * 64 + 0x20 + (modrm & 7)
					       : 0 * 64 + 0x10 + (modrm & 7);
		}
		break;
	case 0xdf:
		if (modrm == 0xe0) {
			in->op = X_FSTSWAX;
			in->pfx |= PFX_NOWAIT;
		} else if (modrm >= 0xe8) {
			/* FUCOMIP / FCOMIP -> FUCOMP (DD E8+i) / FCOMP (D8 D8+i) */
			in->op = X_FCOMI;
			in->imm = modrm < 0xf0 ? 5 * 64 + 0x28 + (modrm & 7)
					       : 0 * 64 + 0x18 + (modrm & 7);
		}
		break;
	default:
		break;
	}
	return true;
}

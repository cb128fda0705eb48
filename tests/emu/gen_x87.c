/* Differential test harness: x87 arithmetic, loads/stores, FXSAVE/FXRSTOR, LDMXCSR/STMXCSR.
 *
 * Encodings from the Intel SDM vol. 2 appendix A.4 (escape opcodes D8-DF); condition-code
 * bits C0-C3 that an instruction leaves undefined (its "FPU Flags Affected") are collected in
 * tcase.fsw_undef. Transcendental instructions (FSIN, FCOS, FPTAN, FPATAN, F2XM1, FYL2X,
 * FYL2XP1, FSINCOS) are not generated: their results are implementation specific. FNSTENV
 * and FNSAVE are not generated either: AMD stores FIP/FDP/FOP only while an exception is
 * pending, so the images differ by design. FXSAVE images are compared except FOP/FIP/FDP,
 * MXCSR_MASK and the reserved bytes 416-463 (SDM vol. 1, 10.5.1).
 */
#include <string.h>

#include "gen.h"

#define C0    0x0100
#define C1    0x0200
#define C2    0x0400
#define C3    0x4000
#define CC    (C0 | C1 | C2 | C3)
#define CC023 (C0 | C2 | C3)

enum { X_ARITH, X_LDST };

/* How an instruction leaves C0-C3. */
enum { K_ARITH, K_CMP, K_ALLU, K_INIT, K_FCOMI, K_STSW };

struct x87_op {
	const char *name;
	uint8_t grp;
	uint8_t op;    /* D8-DF */
	int8_t digit;  /* memory form /digit, or -1 for a register form */
	uint8_t modrm; /* register form: base ModRM byte (C0..), +i when stack_i */
	bool stack_i;
	uint8_t msize;
	uint8_t kind;
	uint64_t fl_read;
	const char *feat;
};

#define M(n, g, o, d, s, k)                         \
	{                                           \
		n, g, o, d, 0, false, s, k, 0, NULL \
	}
#define R(n, g, o, m, k)                            \
	{                                           \
		n, g, o, -1, m, true, 0, k, 0, NULL \
	}
#define R1(n, g, o, m, k)                            \
	{                                            \
		n, g, o, -1, m, false, 0, k, 0, NULL \
	}
#define RF(n, g, o, m, k, f)                        \
	{                                           \
		n, g, o, -1, m, true, 0, k, f, NULL \
	}
#define MF(n, g, o, d, s, k, x)                  \
	{                                        \
		n, g, o, d, 0, false, s, k, 0, x \
	}

static const struct x87_op x87_ops[] = {
    M("fadd m32", X_ARITH, 0xd8, 0, 4, K_ARITH),
    M("fmul m32", X_ARITH, 0xd8, 1, 4, K_ARITH),
    M("fcom m32", X_ARITH, 0xd8, 2, 4, K_CMP),
    M("fcomp m32", X_ARITH, 0xd8, 3, 4, K_CMP),
    M("fsub m32", X_ARITH, 0xd8, 4, 4, K_ARITH),
    M("fsubr m32", X_ARITH, 0xd8, 5, 4, K_ARITH),
    M("fdiv m32", X_ARITH, 0xd8, 6, 4, K_ARITH),
    M("fdivr m32", X_ARITH, 0xd8, 7, 4, K_ARITH),
    M("fadd m64", X_ARITH, 0xdc, 0, 8, K_ARITH),
    M("fmul m64", X_ARITH, 0xdc, 1, 8, K_ARITH),
    M("fcom m64", X_ARITH, 0xdc, 2, 8, K_CMP),
    M("fsub m64", X_ARITH, 0xdc, 4, 8, K_ARITH),
    M("fsubr m64", X_ARITH, 0xdc, 5, 8, K_ARITH),
    M("fdiv m64", X_ARITH, 0xdc, 6, 8, K_ARITH),
    M("fdivr m64", X_ARITH, 0xdc, 7, 8, K_ARITH),
    M("fiadd m32", X_ARITH, 0xda, 0, 4, K_ARITH),
    M("fimul m32", X_ARITH, 0xda, 1, 4, K_ARITH),
    M("ficom m32", X_ARITH, 0xda, 2, 4, K_CMP),
    M("fisub m32", X_ARITH, 0xda, 4, 4, K_ARITH),
    M("fidivr m32", X_ARITH, 0xda, 7, 4, K_ARITH),
    M("fiadd m16", X_ARITH, 0xde, 0, 2, K_ARITH),
    M("fimul m16", X_ARITH, 0xde, 1, 2, K_ARITH),
    M("ficomp m16", X_ARITH, 0xde, 3, 2, K_CMP),
    M("fisubr m16", X_ARITH, 0xde, 5, 2, K_ARITH),
    M("fidiv m16", X_ARITH, 0xde, 6, 2, K_ARITH),
    R("fadd st, st(i)", X_ARITH, 0xd8, 0xc0, K_ARITH),
    R("fmul st, st(i)", X_ARITH, 0xd8, 0xc8, K_ARITH),
    R("fcom st(i)", X_ARITH, 0xd8, 0xd0, K_CMP),
    R("fcomp st(i)", X_ARITH, 0xd8, 0xd8, K_CMP),
    R("fsub st, st(i)", X_ARITH, 0xd8, 0xe0, K_ARITH),
    R("fsubr st, st(i)", X_ARITH, 0xd8, 0xe8, K_ARITH),
    R("fdiv st, st(i)", X_ARITH, 0xd8, 0xf0, K_ARITH),
    R("fdivr st, st(i)", X_ARITH, 0xd8, 0xf8, K_ARITH),
    R("fadd st(i), st", X_ARITH, 0xdc, 0xc0, K_ARITH),
    R("fmul st(i), st", X_ARITH, 0xdc, 0xc8, K_ARITH),
    R("fsubr st(i), st", X_ARITH, 0xdc, 0xe0, K_ARITH),
    R("fsub st(i), st", X_ARITH, 0xdc, 0xe8, K_ARITH),
    R("fdivr st(i), st", X_ARITH, 0xdc, 0xf0, K_ARITH),
    R("fdiv st(i), st", X_ARITH, 0xdc, 0xf8, K_ARITH),
    R("faddp", X_ARITH, 0xde, 0xc0, K_ARITH),
    R("fmulp", X_ARITH, 0xde, 0xc8, K_ARITH),
    R("fsubrp", X_ARITH, 0xde, 0xe0, K_ARITH),
    R("fsubp", X_ARITH, 0xde, 0xe8, K_ARITH),
    R("fdivrp", X_ARITH, 0xde, 0xf0, K_ARITH),
    R("fdivp", X_ARITH, 0xde, 0xf8, K_ARITH),
    R1("fcompp", X_ARITH, 0xde, 0xd9, K_CMP),
    R1("fchs", X_ARITH, 0xd9, 0xe0, K_ARITH),
    R1("fabs", X_ARITH, 0xd9, 0xe1, K_ARITH),
    R1("ftst", X_ARITH, 0xd9, 0xe4, K_CMP),
    R1("fxam", X_ARITH, 0xd9, 0xe5, K_CMP),
    R1("fsqrt", X_ARITH, 0xd9, 0xfa, K_ARITH),
    R1("frndint", X_ARITH, 0xd9, 0xfc, K_ARITH),
    R1("fscale", X_ARITH, 0xd9, 0xfd, K_ARITH),
    R1("fprem", X_ARITH, 0xd9, 0xf8, K_CMP),
    R1("fprem1", X_ARITH, 0xd9, 0xf5, K_CMP),
    R1("fxtract", X_ARITH, 0xd9, 0xf4, K_ARITH),
    R("fucom st(i)", X_ARITH, 0xdd, 0xe0, K_CMP),
    R("fucomp st(i)", X_ARITH, 0xdd, 0xe8, K_CMP),
    R1("fucompp", X_ARITH, 0xda, 0xe9, K_CMP),
    R("fucomi", X_ARITH, 0xdb, 0xe8, K_FCOMI),
    R("fcomi", X_ARITH, 0xdb, 0xf0, K_FCOMI),
    R("fucomip", X_ARITH, 0xdf, 0xe8, K_FCOMI),
    R("fcomip", X_ARITH, 0xdf, 0xf0, K_FCOMI),
    /* loads, stores, stack, control */
    M("fld m32", X_LDST, 0xd9, 0, 4, K_ARITH),
    M("fst m32", X_LDST, 0xd9, 2, 4, K_ARITH),
    M("fstp m32", X_LDST, 0xd9, 3, 4, K_ARITH),
    M("fldcw", X_LDST, 0xd9, 5, 2, K_ALLU),
    M("fnstcw", X_LDST, 0xd9, 7, 2, K_ALLU),
    M("fld m64", X_LDST, 0xdd, 0, 8, K_ARITH),
    MF("fisttp m64", X_LDST, 0xdd, 1, 8, K_ARITH, "sse3"),
    M("fst m64", X_LDST, 0xdd, 2, 8, K_ARITH),
    M("fstp m64", X_LDST, 0xdd, 3, 8, K_ARITH),
    M("fnstsw m16", X_LDST, 0xdd, 7, 2, K_STSW),
    M("fild m32", X_LDST, 0xdb, 0, 4, K_ARITH),
    MF("fisttp m32", X_LDST, 0xdb, 1, 4, K_ARITH, "sse3"),
    M("fist m32", X_LDST, 0xdb, 2, 4, K_ARITH),
    M("fistp m32", X_LDST, 0xdb, 3, 4, K_ARITH),
    M("fld m80", X_LDST, 0xdb, 5, 10, K_ARITH),
    M("fstp m80", X_LDST, 0xdb, 7, 10, K_ARITH),
    M("fild m16", X_LDST, 0xdf, 0, 2, K_ARITH),
    MF("fisttp m16", X_LDST, 0xdf, 1, 2, K_ARITH, "sse3"),
    M("fist m16", X_LDST, 0xdf, 2, 2, K_ARITH),
    M("fistp m16", X_LDST, 0xdf, 3, 2, K_ARITH),
    M("fild m64", X_LDST, 0xdf, 5, 8, K_ARITH),
    M("fistp m64", X_LDST, 0xdf, 7, 8, K_ARITH),
    R("fld st(i)", X_LDST, 0xd9, 0xc0, K_ARITH),
    R("fxch", X_LDST, 0xd9, 0xc8, K_ARITH),
    R("fst st(i)", X_LDST, 0xdd, 0xd0, K_ARITH),
    R("fstp st(i)", X_LDST, 0xdd, 0xd8, K_ARITH),
    R("ffree", X_LDST, 0xdd, 0xc0, K_ALLU),
    R1("fld1", X_LDST, 0xd9, 0xe8, K_ARITH),
    R1("fldl2t", X_LDST, 0xd9, 0xe9, K_ARITH),
    R1("fldl2e", X_LDST, 0xd9, 0xea, K_ARITH),
    R1("fldpi", X_LDST, 0xd9, 0xeb, K_ARITH),
    R1("fldlg2", X_LDST, 0xd9, 0xec, K_ARITH),
    R1("fldln2", X_LDST, 0xd9, 0xed, K_ARITH),
    R1("fldz", X_LDST, 0xd9, 0xee, K_ARITH),
    R1("fdecstp", X_LDST, 0xd9, 0xf6, K_ALLU),
    R1("fincstp", X_LDST, 0xd9, 0xf7, K_ALLU),
    R1("fnop", X_LDST, 0xd9, 0xd0, K_ALLU),
    RF("fcmovb", X_LDST, 0xda, 0xc0, K_ARITH, FL_CF),
    RF("fcmove", X_LDST, 0xda, 0xc8, K_ARITH, FL_ZF),
    RF("fcmovbe", X_LDST, 0xda, 0xd0, K_ARITH, FL_CF | FL_ZF),
    RF("fcmovu", X_LDST, 0xda, 0xd8, K_ARITH, FL_PF),
    RF("fcmovnb", X_LDST, 0xdb, 0xc0, K_ARITH, FL_CF),
    RF("fcmovne", X_LDST, 0xdb, 0xc8, K_ARITH, FL_ZF),
    RF("fcmovnbe", X_LDST, 0xdb, 0xd0, K_ARITH, FL_CF | FL_ZF),
    RF("fcmovnu", X_LDST, 0xdb, 0xd8, K_ARITH, FL_PF),
    R1("fnclex", X_LDST, 0xdb, 0xe2, K_ALLU),
    R1("fninit", X_LDST, 0xdb, 0xe3, K_INIT),
    R1("fnstsw ax", X_LDST, 0xdf, 0xe0, K_STSW),
};

#define N_X87_OPS (int)(sizeof(x87_ops) / sizeof(x87_ops[0]))

void x87_init(struct gen *g)
{
	const char *name = gen_classes[g->c->cls].name;

	g->aux = strcmp(name, "x87 load/store") ? X_ARITH : X_LDST;
	x87_random(g, false);
	mxcsr_random(g, false);
}

static void fsw_effect(struct gen *g, int kind)
{
	struct tcase *c = g->c;

	switch (kind) {
	case K_ARITH:
		c->fsw_undef = (uint16_t)((c->fsw_undef & ~C1) | CC023);
		break;
	case K_CMP:
		c->fsw_undef &= (uint16_t)~CC;
		break;
	case K_ALLU:
	case K_STSW:
		c->fsw_undef |= CC;
		break;
	case K_INIT:
		c->fsw_undef = 0;
		break;
	case K_FCOMI:
		c->fsw_undef &= (uint16_t)~C1;
		c->fl_undef &= ~FL_ALL6;
		break;
	}
}

static int gen_x87_group(struct gen *g, int grp)
{
	const struct x87_op *op;
	struct enc e;
	int tries = 0;

	do {
		op = &x87_ops[rnd(g, N_X87_OPS)];
		if (++tries > 1000)
			return -1;
	} while (op->grp != grp || (op->feat && !host_has(op->feat)));
	if (op->fl_read & g->c->fl_undef)
		return -1;
	/* storing the status word with undefined condition codes would store them */
	if (op->kind == K_STSW && (g->c->fsw_undef & CC))
		return -1;
	if (op->kind == K_STSW && op->digit < 0 && !reg_writable(g, RAX))
		return -1;
	enc_init(&e, op->name);
	e.op = op->op;
	if (op->digit >= 0) {
		e.has_modrm = true;
		e.reg = op->digit;
		pick_mem(g, &e.rm, op->msize, 1, false);
		if (op->op == 0xd9 && op->digit == 5 && chance(g, 80)) {
			/* fldcw: a control word with a random rounding/precision mode */
			uint16_t cw = (uint16_t)(0x037f & ~0x0f00) | (uint16_t)(rnd(g, 16) << 8);

			if (chance(g, 5))
				cw &= (uint16_t)~rnd(g, 64);
			mem_set_initial(g, &e.rm, cw, 2);
		}
		if (emit(g, &e))
			return -1;
	} else {
		uint8_t b[2] = {op->op, (uint8_t)(op->modrm + (op->stack_i ? rnd(g, 8) : 0))};

		if (emit_raw(g, b, 2, op->name))
			return -1;
		if (op->kind == K_STSW)
			mark_written(g, RAX);
	}
	fsw_effect(g, op->kind);
	return 0;
}

int gen_x87(struct gen *g)
{
	/* the load/store class also mixes in some arithmetic to make values to store */
	if (g->aux == X_LDST && chance(g, 25))
		return gen_x87_group(g, X_ARITH);
	return gen_x87_group(g, g->aux);
}

/* An FXSAVE image in memory for FXRSTOR: random x87/SSE state with a valid MXCSR (a few
 * percent with reserved bits set, which must #GP). */
static void fx_image(struct gen *g, uint64_t ea)
{
	uint8_t *p = g->c->mem + (ea - DATA_BASE);
	uint32_t mx;
	int i;

	for (i = 0; i < 8; i++) {
		f80_value(g, p + FX_ST + 16 * i);
		memset(p + FX_ST + 16 * i + 10, 0, 6);
	}
	for (i = 0; i < 16; i++)
		xmm_random(g, p + FX_XMM + 16 * i);
	{
		uint16_t fcw = (uint16_t)(0x037f & ~0x0f00) | (uint16_t)(rnd(g, 16) << 8);
		uint16_t fsw = (uint16_t)(rnd(g, 8) << 11) | (uint16_t)(rnd(g, 16) << 8 & 0x4700);

		memcpy(p + FX_FCW, &fcw, 2);
		memcpy(p + FX_FSW, &fsw, 2);
	}
	p[FX_FTW] = (uint8_t)rnd(g, 256);
	p[FX_FTW + 1] = 0;
	mx = 0x1f80 | (uint32_t)rnd(g, 4) << 13 | (uint32_t)rnd(g, 64);
	if (chance(g, 4))
		mx |= 1u << (18 + rnd(g, 14));
	memcpy(p + FX_MXCSR, &mx, 4);
}

int gen_fxsave(struct gen *g)
{
	struct enc e;
	int kind = (int)rnd(g, 7);

	if (kind >= 4)
		return gen_x87_group(g, kind == 6 ? X_LDST : X_ARITH);
	enc_init(&e, "");
	e.map = 1;
	e.op = 0xae;
	e.has_modrm = true;
	e.reg = kind;
	e.w = chance(g, 30);
	switch (kind) {
	case 0: /* fxsave */
		if (g->c->n_memu + 3 > MAX_MEMU)
			return -1;
		e.name = e.w ? "fxsave64" : "fxsave";
		pick_mem(g, &e.rm, 512, chance(g, 97) ? 16 : 1, false);
		if (emit(g, &e))
			return -1;
		{
			struct opnd m = e.rm;

			/* FOP, FIP, FDP (and FSW while its condition codes are undefined) */
			m.ea = e.rm.ea + ((g->c->fsw_undef & CC) ? 2 : 6);
			mark_mem_undef(g, &m, (g->c->fsw_undef & CC) ? 22 : 18);
			m.ea = e.rm.ea + FX_MXMASK;
			mark_mem_undef(g, &m, 4);
			m.ea = e.rm.ea + FX_USED;
			mark_mem_undef(g, &m, 464 - FX_USED);
		}
		/* later loads could read those undefined bytes: FXSAVE ends the sequence */
		g->done = true;
		return 0;
	case 1: /* fxrstor */
		e.name = e.w ? "fxrstor64" : "fxrstor";
		pick_mem(g, &e.rm, 512, chance(g, 97) ? 16 : 1, false);
		if (emit(g, &e))
			return -1;
		fx_image(g, e.rm.ea & ~15ULL);
		g->c->fsw_undef = 0;
		return 0;
	case 2: { /* ldmxcsr */
		uint32_t mx = 0x1f80 | (uint32_t)rnd(g, 4) << 13 | (uint32_t)rnd(g, 64);

		if (chance(g, 20))
			mx &= ~((uint32_t)rnd(g, 64) << 7);
		if (chance(g, 20))
			mx |= (uint32_t)rnd(g, 2) << 15 | (uint32_t)rnd(g, 2) << 6;
		if (chance(g, 4))
			mx |= 1u << (18 + rnd(g, 14));
		e.w = false;
		e.name = "ldmxcsr";
		pick_mem(g, &e.rm, 4, 1, false);
		if (emit(g, &e))
			return -1;
		mem_set_initial(g, &e.rm, mx, 4);
		return 0;
	}
	default: /* stmxcsr */
		e.w = false;
		e.name = "stmxcsr";
		pick_mem(g, &e.rm, 4, 1, false);
		return emit(g, &e);
	}
}

/* Differential test harness: the case generator (integer part, encoder, initial state).
 *
 * Builds a random instruction sequence of one class with a random initial state biased to
 * edge values. Encodings follow the Intel SDM vol. 2, chapter 2 (prefixes, REX, ModRM, SIB,
 * displacement, immediate) and appendix A (opcode maps). Every memory operand is built to
 * land in the data window [WIN_LO, WIN_HI); registers used to address memory (pbase, pindex)
 * are never written by the sequence. Flags an instruction leaves undefined ("Flags Affected"
 * in each SDM vol. 2 entry) are collected in tcase.fl_undef, and an instruction that reads
 * flags is never placed after one that left those flags undefined. Instructions whose
 * undefined behaviour depends on operand values (shift counts, BSF/BSR of zero, SHLD/SHRD
 * counts above the width) may only come first, where the operand values are the initial
 * state the generator chose.
 */
#include <cpuid.h>
#include <stdio.h>
#include <string.h>

#include "gen.h"

uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t case_seed(uint64_t seed, uint64_t num)
{
	uint64_t s = seed ^ (num * 0xd6e8feb86659fd93ULL);

	rng_next(&s);
	return rng_next(&s);
}

uint64_t rnd(struct gen *g, uint64_t n)
{
	return n ? rng_next(g->rng) % n : 0;
}

bool chance(struct gen *g, int percent)
{
	return (int)rnd(g, 100) < percent;
}

uint64_t width_mask(int bits)
{
	return bits >= 64 ? ~0ULL : (1ULL << bits) - 1;
}

/* A value biased to the edges of a bits-wide integer. */
uint64_t edge_value(struct gen *g, int bits)
{
	uint64_t m = width_mask(bits), sign = 1ULL << (bits - 1), v;

	switch (rnd(g, 14)) {
	case 0:
		return 0;
	case 1:
		return 1;
	case 2:
		return m;
	case 3:
		return sign;
	case 4:
		return sign - 1;
	case 5:
		return (1ULL << rnd(g, bits)) & m;
	case 6:
		return ((1ULL << rnd(g, bits)) - 1) & m;
	case 7:
		return (sign + 1) & m;
	case 8:
		return rnd(g, 256);
	case 9:
		return (0 - rnd(g, 256)) & m;
	default:
		v = rng_next(g->rng);
		return v & m;
	}
}

/* A full 64-bit register value: random upper part, edge-biased low part. */
static uint64_t reg_value(struct gen *g)
{
	static const int widths[] = {8, 16, 32, 64};
	int w = widths[rnd(g, 4)];
	uint64_t hi = chance(g, 30) ? 0 : (chance(g, 20) ? ~0ULL : rng_next(g->rng));

	return (hi & ~width_mask(w)) | edge_value(g, w);
}

bool host_has(const char *f)
{
	unsigned a, b, c, d, ext_c = 0, ext_d = 0, l7b = 0;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return false;
	if (__get_cpuid_max(0, NULL) >= 7) {
		unsigned a7, c7, d7;
		__cpuid_count(7, 0, a7, l7b, c7, d7);
	}
	if (__get_cpuid_max(0x80000000, NULL) >= 0x80000001) {
		unsigned ea, eb;
		__get_cpuid(0x80000001, &ea, &eb, &ext_c, &ext_d);
	}
	if (!strcmp(f, "sse3"))
		return c & bit_SSE3;
	if (!strcmp(f, "ssse3"))
		return c & bit_SSSE3;
	if (!strcmp(f, "sse4.1"))
		return c & bit_SSE4_1;
	if (!strcmp(f, "sse4.2"))
		return c & bit_SSE4_2;
	if (!strcmp(f, "popcnt"))
		return c & bit_POPCNT;
	if (!strcmp(f, "movbe"))
		return c & bit_MOVBE;
	if (!strcmp(f, "cx16"))
		return c & bit_CMPXCHG16B;
	if (!strcmp(f, "pclmul"))
		return c & bit_PCLMUL;
	if (!strcmp(f, "lzcnt"))
		return ext_c & bit_LZCNT;
	if (!strcmp(f, "lahf"))
		return ext_c & bit_LAHF_LM;
	if (!strcmp(f, "bmi1"))
		return l7b & bit_BMI;
	return false;
}

/* --- registers and operands ------------------------------------------------------------ */

bool reg_writable(struct gen *g, int r)
{
	return r != RSP && r != RBP && r != g->pbase && r != g->pindex;
}

int pick_dst(struct gen *g)
{
	int r;

	do
		r = (int)rnd(g, 16);
	while (!reg_writable(g, r));
	return r;
}

int pick_src(struct gen *g)
{
	return (int)rnd(g, 16);
}

/* Value of a GPR operand in the initial state (only meaningful while not yet written). */
uint64_t reg_initial(struct gen *g, int r, int bits, bool high8)
{
	uint64_t v = g->c->in.gpr[high8 ? r & 3 : r];

	if (high8)
		v >>= 8;
	return v & width_mask(bits);
}

uint64_t mem_initial(struct gen *g, const struct opnd *m, int bytes)
{
	uint64_t v = 0;

	memcpy(&v, g->c->mem + (m->ea - DATA_BASE), bytes > 8 ? 8 : bytes);
	return v & width_mask(bytes * 8);
}

void mem_set_initial(struct gen *g, const struct opnd *m, uint64_t v, int bytes)
{
	memcpy(g->c->mem + (m->ea - DATA_BASE), &v, bytes > 8 ? 8 : bytes);
}

void mark_written(struct gen *g, int r)
{
	g->written |= (uint16_t)(1u << r);
}

/* A memory operand of size bytes at an address aligned to align (power of two), in the
 * window; with allow_misalign, a few percent are deliberately misaligned. With norex only
 * forms that need no REX bit (RIP-relative, absolute) are used. */
void pick_mem(struct gen *g, struct opnd *o, int size, int align, bool norex)
{
	struct tcase *c = g->c;
	uint64_t pb = c->in.gpr[g->pbase], pi = c->in.gpr[g->pindex];
	uint64_t lo = DATA_BASE + WIN_LO, hi = DATA_BASE + WIN_HI - (uint64_t)size;
	uint64_t ea;
	int form, tries;

	if (align < 1)
		align = 1;
	memset(o, 0, sizeof(*o));
	o->mem = true;
	o->base = -1;
	o->index = -1;
	o->scale = 1;
	for (tries = 0; tries < 8; tries++) {
		form = norex ? 4 + (int)rnd(g, 2) : (int)rnd(g, 7);
		o->base = -1;
		o->index = -1;
		o->scale = 1 << rnd(g, 4);
		o->addr32 = chance(g, 10);
		switch (form) {
		case 0: /* [base + disp8] */
		case 6: /* [base] */
			o->base = g->pbase;
			ea = pb + (form == 6 ? 0 : (uint64_t)(int64_t)(int8_t)rnd(g, 256));
			break;
		case 1: /* [base + disp32] */
			o->base = g->pbase;
			ea = lo + rnd(g, hi - lo + 1);
			break;
		case 2: /* [base + index*scale + disp] */
			o->base = g->pbase;
			o->index = g->pindex;
			ea = chance(g, 50) ? pb + pi * (uint64_t)o->scale +
						 (uint64_t)(int64_t)(int8_t)rnd(g, 256)
					   : lo + rnd(g, hi - lo + 1);
			break;
		case 3: /* [index*scale + disp32] */
			o->index = g->pindex;
			ea = lo + rnd(g, hi - lo + 1);
			break;
		case 4: /* [rip + disp32] */
			o->base = BASE_RIP;
			ea = lo + rnd(g, hi - lo + 1);
			break;
		default: /* [disp32] */
			ea = lo + rnd(g, hi - lo + 1);
			break;
		}
		ea &= ~(uint64_t)(align - 1);
		if (ea >= lo && ea <= hi)
			break;
		if (tries == 7) {
			o->base = BASE_RIP;
			o->index = -1;
			ea = (lo + rnd(g, hi - lo + 1)) & ~(uint64_t)(align - 1);
		}
	}
	o->ea = ea;
	{
		uint64_t b = o->base >= 0 ? c->in.gpr[o->base] : 0;
		uint64_t ix = o->index >= 0 ? c->in.gpr[o->index] * (uint64_t)o->scale : 0;
		int64_t d = (int64_t)(ea - b - ix);

		o->disp = (int32_t)d;
		o->dispsz = (d >= -128 && d <= 127 && o->base >= 0) ? (d == 0 ? 0 : 1) : 4;
		if (o->base < 0)
			o->dispsz = 4;
	}
	if (o->base == BASE_RIP)
		o->dispsz = 4;
}

/* Randomly a register (of 16) or a memory operand. */
void pick_rm(struct gen *g, struct opnd *o, bool dst, int size, int align, int mem_pct)
{
	if (chance(g, mem_pct)) {
		pick_mem(g, o, size, align, false);
	} else {
		memset(o, 0, sizeof(*o));
		o->reg = dst ? pick_dst(g) : pick_src(g);
	}
}

/* --- encoder ---------------------------------------------------------------------------- */

static void put8(struct gen *g, uint8_t b)
{
	if (g->len < CODE_MAX - 1)
		g->c->code[g->len] = b;
	g->len++;
}

static void put_n(struct gen *g, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		put8(g, (uint8_t)(v >> (8 * i)));
}

static void record_insn(struct tcase *c, uint32_t start, const char *name)
{
	int i = c->n_insns++;

	c->insn_off[i] = (uint16_t)start;
	c->insn_name[i] = name;
	c->fl_undef_at[i] = c->fl_undef;
	c->gpr_undef_at[i] = c->gpr_undef;
	c->fsw_undef_at[i] = c->fsw_undef;
}

int emit(struct gen *g, const struct enc *e)
{
	struct tcase *c = g->c;
	uint32_t start = g->len;
	int rex = 0x40, i, x_idx;
	bool need_rex;
	const struct opnd *m = &e->rm;
	uint32_t disp_pos = 0;

	if (c->n_insns >= MAX_INSNS)
		return -1;
	if (e->w)
		rex |= 8;
	if (e->has_modrm && (e->reg & 8))
		rex |= 4;
	if (e->has_modrm && m->mem) {
		if (m->index >= 0 && (m->index & 8))
			rex |= 2;
		if (m->base >= 0 && (m->base & 8))
			rex |= 1;
	} else if (e->has_modrm && (m->reg & 8)) {
		rex |= 1;
	}
	if (e->opreg >= 0 && (e->opreg & 8))
		rex |= 1;
	need_rex = rex != 0x40 || e->rex;
	if (need_rex && e->norex)
		return -1;
	if (e->has_modrm && m->mem && m->addr32)
		put8(g, 0x67);
	for (i = 0; i < e->npfx; i++)
		put8(g, e->pfx[i]);
	if (need_rex)
		put8(g, (uint8_t)rex);
	if (e->map >= 1)
		put8(g, 0x0f);
	if (e->map == 2)
		put8(g, 0x38);
	if (e->map == 3)
		put8(g, 0x3a);
	put8(g, (uint8_t)(e->op + (e->opreg >= 0 ? (e->opreg & 7) : 0)));
	if (e->has_modrm) {
		int reg = e->reg & 7;

		if (!m->mem) {
			put8(g, (uint8_t)(0xc0 | reg << 3 | (m->reg & 7)));
		} else if (m->base == BASE_RIP) {
			put8(g, (uint8_t)(reg << 3 | 5));
			disp_pos = g->len;
			put_n(g, 0, 4);
		} else {
			int mod, dsz = m->dispsz;
			bool sib = m->index >= 0 || m->base < 0 || (m->base & 7) == 4;

			if (m->base < 0) {
				mod = 0;
				dsz = 4;
			} else {
				if (dsz == 0 && (m->base & 7) == 5)
					dsz = 1;
				mod = dsz == 0 ? 0 : (dsz == 1 ? 1 : 2);
			}
			put8(g, (uint8_t)(mod << 6 | reg << 3 | (sib ? 4 : (m->base & 7))));
			if (sib) {
				int ss = m->scale == 8	 ? 3
					 : m->scale == 4 ? 2
					 : m->scale == 2 ? 1
							 : 0;

				x_idx = m->index >= 0 ? (m->index & 7) : 4;
				if (m->index < 0)
					ss = 0;
				put8(g, (uint8_t)(ss << 6 | x_idx << 3 |
						  (m->base >= 0 ? (m->base & 7) : 5)));
			}
			put_n(g, (uint64_t)(int64_t)m->disp, dsz);
		}
	}
	put_n(g, e->imm, e->immsz);
	if (g->len >= CODE_MAX - 16)
		return -1;
	if (disp_pos) {
		uint64_t next = CODE_BASE + c->code_off + g->len;
		int32_t d = (int32_t)(int64_t)(m->ea - next);

		memcpy(c->code + disp_pos, &d, 4);
	}
	record_insn(c, start, e->name);
	return 0;
}

/* Raw bytes as one instruction (for forms the encoder does not need to build). */
int emit_raw(struct gen *g, const uint8_t *b, int n, const char *name)
{
	struct tcase *c = g->c;
	int i;

	if (c->n_insns >= MAX_INSNS || g->len + n >= CODE_MAX - 16)
		return -1;
	record_insn(c, g->len, name);
	for (i = 0; i < n; i++)
		put8(g, b[i]);
	return 0;
}

void enc_init(struct enc *e, const char *name)
{
	memset(e, 0, sizeof(*e));
	e->opreg = -1;
	e->name = name;
}

void enc_pfx(struct enc *e, uint8_t p)
{
	if (e->npfx < 4)
		e->pfx[e->npfx++] = p;
}

/* Operand size: 16 adds 66, 64 sets REX.W. */
void enc_osize(struct enc *e, int bits)
{
	if (bits == 16)
		enc_pfx(e, 0x66);
	if (bits == 64)
		e->w = true;
}

void mark_mem_undef(struct gen *g, const struct opnd *m, int len)
{
	struct tcase *c = g->c;

	if (c->n_memu < MAX_MEMU) {
		c->memu[c->n_memu].off = (uint16_t)(m->ea - DATA_BASE);
		c->memu[c->n_memu].len = (uint16_t)len;
		c->n_memu++;
	} else {
		c->memu[MAX_MEMU - 1].off = 0;
		c->memu[MAX_MEMU - 1].len = DATA_SIZE;
	}
}

/* --- initial state ---------------------------------------------------------------------- */

static uint64_t pick_pointer_regs(struct gen *g)
{
	g->pbase = R8 + (int)rnd(g, 8);
	do
		g->pindex = R8 + (int)rnd(g, 8);
	while (g->pindex == g->pbase);
	return 0;
}

/* Floating-point lane values biased to the edges (IEEE 754 binary32/binary64). */
uint32_t f32_value(struct gen *g)
{
	static const uint32_t sp[] = {
	    0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000,
	    0x7fc00000, 0xffc00000, 0x7fa00000, 0x7f800001, 0x00000001, 0x807fffff,
	    0x00800000, 0x7f7fffff, 0xff7fffff, 0x4f000000, 0xcf000000, 0x3f000000,
	    0x4b000000, 0x3fc00000, 0x5f000000, 0xdf000000, 0x34000000, 0x00400000,
	};
	uint32_t v;

	if (chance(g, 45))
		return sp[rnd(g, sizeof(sp) / sizeof(sp[0]))];
	if (chance(g, 30)) /* small integers and halves: rounding cases */
		return (uint32_t)(0x3f800000 + (rnd(g, 24) << 23) + (rnd(g, 8) << 20)) |
		       (chance(g, 50) ? 0x80000000u : 0);
	v = (uint32_t)rng_next(g->rng);
	return v;
}

uint64_t f64_value(struct gen *g)
{
	static const uint64_t sp[] = {
	    0x0000000000000000ULL, 0x8000000000000000ULL, 0x3ff0000000000000ULL,
	    0xbff0000000000000ULL, 0x7ff0000000000000ULL, 0xfff0000000000000ULL,
	    0x7ff8000000000000ULL, 0xfff8000000000000ULL, 0x7ff4000000000000ULL,
	    0x7ff0000000000001ULL, 0x0000000000000001ULL, 0x800fffffffffffffULL,
	    0x0010000000000000ULL, 0x7fefffffffffffffULL, 0x41e0000000000000ULL,
	    0xc1e0000000000000ULL, 0x43e0000000000000ULL, 0xc3e0000000000000ULL,
	    0x3fe0000000000000ULL, 0x4330000000000000ULL, 0x41dfffffffc00000ULL,
	    0x3ff8000000000000ULL, 0x47efffffe0000000ULL, 0x36a0000000000000ULL,
	};

	if (chance(g, 45))
		return sp[rnd(g, sizeof(sp) / sizeof(sp[0]))];
	if (chance(g, 30))
		return (0x3ff0000000000000ULL + (rnd(g, 64) << 52) + (rnd(g, 16) << 48)) |
		       (chance(g, 50) ? 0x8000000000000000ULL : 0);
	return rng_next(g->rng);
}

void xmm_random(struct gen *g, uint8_t *x)
{
	int i;

	switch (rnd(g, 5)) {
	case 0:
		for (i = 0; i < 4; i++) {
			uint32_t v = f32_value(g);
			memcpy(x + 4 * i, &v, 4);
		}
		break;
	case 1:
		for (i = 0; i < 2; i++) {
			uint64_t v = f64_value(g);
			memcpy(x + 8 * i, &v, 8);
		}
		break;
	case 2: {
		static const int w[] = {8, 16, 32, 64};
		int bits = w[rnd(g, 4)];

		for (i = 0; i < 16 / (bits / 8); i++) {
			uint64_t v = edge_value(g, bits);
			memcpy(x + (bits / 8) * i, &v, (size_t)bits / 8);
		}
		break;
	}
	case 3: /* small values: shift counts, string-compare lengths, characters */
		for (i = 0; i < 16; i++)
			x[i] = (uint8_t)(chance(g, 70) ? 'a' + rnd(g, 6) : rnd(g, 256));
		if (chance(g, 40))
			memset(x + 1 + rnd(g, 15), 0, 1);
		if (chance(g, 30)) {
			memset(x, 0, 16);
			x[0] = (uint8_t)rnd(g, 80);
		}
		break;
	default:
		for (i = 0; i < 16; i++)
			x[i] = (uint8_t)rng_next(g->rng);
		break;
	}
}

void mxcsr_random(struct gen *g, bool unmask_some)
{
	uint32_t m = 0x1f80;

	m |= (uint32_t)rnd(g, 4) << 13; /* RC */
	if (chance(g, 20))
		m |= 1u << 15; /* FTZ */
	if (chance(g, 20))
		m |= 1u << 6; /* DAZ */
	if (chance(g, 30))
		m |= (uint32_t)rnd(g, 64); /* sticky exception flags */
	if (unmask_some && chance(g, 5))
		m &= ~((uint32_t)rnd(g, 64) << 7);
	memcpy(g->c->in.fx + FX_MXCSR, &m, 4);
}

/* An 80-bit extended value biased to the edges. */
void f80_value(struct gen *g, uint8_t *p)
{
	uint64_t mant;
	uint16_t se;

	switch (rnd(g, 10)) {
	case 0:
		mant = 0;
		se = 0;
		break;
	case 1:
		mant = 1ULL << 63;
		se = 0x7fff; /* inf */
		break;
	case 2:
		mant = 3ULL << 62;
		se = 0x7fff; /* QNaN */
		break;
	case 3:
		mant = (1ULL << 63) | 1;
		se = 0x7fff; /* SNaN */
		break;
	case 4:
		mant = rng_next(g->rng) >> 1;
		se = 0; /* denormal */
		break;
	case 5: /* integer-valued */
		mant = (1ULL << 63) | (rnd(g, 1024) << 53);
		se = (uint16_t)(0x3fff + rnd(g, 12));
		break;
	case 6: /* unnormal / pseudo values: invalid encodings */
		mant = rng_next(g->rng) >> 1;
		se = (uint16_t)(0x3fff + rnd(g, 8));
		break;
	default:
		mant = rng_next(g->rng) | (1ULL << 63);
		se = (uint16_t)(0x3fff - 64 + rnd(g, 128));
		break;
	}
	if (chance(g, 50))
		se |= 0x8000;
	memcpy(p, &mant, 8);
	memcpy(p + 8, &se, 2);
}

/* x87 state: a random stack of n values (TOP = 8 - n), random control word. */
void x87_random(struct gen *g, bool masked)
{
	uint8_t *fx = g->c->in.fx;
	int n = (int)rnd(g, 9), i, top = (8 - n) & 7;
	uint16_t fcw = 0x037f, fsw;
	uint8_t ftw = 0;

	if (chance(g, 50))
		top = (int)rnd(g, 8);
	fcw = (uint16_t)((fcw & ~0x0f00) | (rnd(g, 4) << 10) | (rnd(g, 4) << 8));
	if (chance(g, 25))
		fcw = (fcw & ~0x0300) | 0x0300; /* extended precision, the Linux default */
	if (!masked && chance(g, 5))
		fcw &= (uint16_t)~rnd(g, 64);
	fsw = (uint16_t)(top << 11);
	if (chance(g, 30))
		fsw |= (uint16_t)(rnd(g, 16) << 8 & 0x4700);
	for (i = 0; i < 8; i++) {
		f80_value(g, fx + FX_ST + 16 * i);
		memset(fx + FX_ST + 16 * i + 10, 0, 6);
		if (i < n)
			ftw |= (uint8_t)(1u << ((top + i) & 7));
	}
	memcpy(fx + FX_FCW, &fcw, 2);
	memcpy(fx + FX_FSW, &fsw, 2);
	fx[FX_FTW] = ftw;
}

static void state_init(struct gen *g)
{
	struct tcase *c = g->c;
	uint8_t *fx = c->in.fx;
	uint16_t fcw = 0x037f;
	uint32_t mxcsr = 0x1f80;
	int i;

	pick_pointer_regs(g);
	for (i = 0; i < 16; i++)
		c->in.gpr[i] = reg_value(g);
	c->in.gpr[RSP] = DATA_BASE + STACK_TOP - 8 * rnd(g, 16);
	c->in.gpr[RBP] = DATA_BASE + 0x1400 + 8 * rnd(g, 64);
	c->in.gpr[g->pbase] = DATA_BASE + 0xa00 + rnd(g, 0x400);
	if (chance(g, 50))
		c->in.gpr[g->pbase] &= ~0xfULL;
	c->in.gpr[g->pindex] = (uint64_t)((int64_t)rnd(g, 48) - 16);
	c->in.rip = CODE_BASE + c->code_off;
	c->in.rflags = 0x202 | (rng_next(g->rng) & FL_STATUS);
	memset(fx, 0, sizeof(c->in.fx));
	memcpy(fx + FX_FCW, &fcw, 2);
	memcpy(fx + FX_MXCSR, &mxcsr, 4);
	for (i = 0; i < 8; i++) {
		f80_value(g, fx + FX_ST + 16 * i);
		memset(fx + FX_ST + 16 * i + 10, 0, 6);
	}
	for (i = 0; i < 16; i++)
		xmm_random(g, fx + FX_XMM + 16 * i);
	for (i = 0; i < (int)DATA_SIZE; i++)
		c->mem[i] = (uint8_t)(i * 7 + 0x11);
	for (i = WIN_LO; i < WIN_HI; i += 8) {
		uint64_t v;

		switch (rnd(g, 4)) {
		case 0:
			v = edge_value(g, 8 << rnd(g, 4));
			break;
		case 1:
			v = f64_value(g);
			break;
		case 2:
			v = (uint64_t)f32_value(g) | (uint64_t)f32_value(g) << 32;
			break;
		default:
			v = rng_next(g->rng);
			break;
		}
		memcpy(c->mem + i, &v, 8);
	}
}

void case_generate(struct tcase *c, uint64_t seed, uint64_t num, int cls)
{
	uint64_t rng = case_seed(seed, num);
	const struct gen_class *gc = &gen_classes[cls];
	struct gen g;
	int n, i, tries;

	memset(c, 0, offsetof(struct tcase, mem));
	c->seed = seed;
	c->num = num;
	c->cls = cls;
	memset(&g, 0, sizeof(g));
	g.c = c;
	g.rng = &rng;
	state_init(&g);
	if (gc->init)
		gc->init(&g);
	if (gc->whole) {
		gc->whole(&g);
		return;
	}
	n = 1 + (int)rnd(&g, gc->max_insns ? (uint64_t)gc->max_insns : 3);
	for (i = 0; i < n && !g.done; i++) {
		for (tries = 0; tries < 32; tries++) {
			struct gen save = g;
			int ninsn = c->n_insns, nmemu = c->n_memu;
			uint64_t fu = c->fl_undef;
			uint16_t gu = c->gpr_undef, su = c->fsw_undef;

			g.first = c->n_insns == 0;
			if (gc->gen(&g) == 0)
				break;
			g = save;
			c->n_insns = ninsn;
			c->n_memu = nmemu;
			c->fl_undef = fu;
			c->gpr_undef = gu;
			c->fsw_undef = su;
		}
	}
	c->code_len = g.len;
	c->code[g.len] = 0xcc;
}

void case_describe_insn(const struct tcase *c, int i, char *buf, size_t len)
{
	uint32_t end = i + 1 < c->n_insns ? c->insn_off[i + 1] : c->code_len;
	size_t o = 0;
	uint32_t k;

	for (k = c->insn_off[i]; k < end && o + 4 < len; k++)
		o += (size_t)snprintf(buf + o, len - o, "%02x", c->code[k]);
	snprintf(buf + o, len - o, " (%s)", c->insn_name[i] ? c->insn_name[i] : "?");
}

/* Differential test harness: integer instruction classes.
 *
 * ALU, shifts/rotates, multiply/divide, unary, sign/zero extension, exchange, bit
 * operations, SETcc/CMOVcc, branches, LEA, string and stack instructions. Opcodes from the
 * Intel SDM vol. 2 appendix A; undefined flags from each instruction's "Flags Affected"
 * (vol. 2 chapters 3-4) and "Undefined" columns of vol. 1 appendix A (EFLAGS cross-reference).
 */
#include <string.h>

#include "gen.h"

struct op {
	const char *name;
	int map;
	uint8_t op;
	int bits;
	int digit; /* /digit, or -1 for a register in ModRM.reg */
	bool rm_w, reg_w;
	int mem_pct;
	int align;
	int immsz;
	uint64_t imm;
	bool lock;
	uint8_t pfx; /* mandatory prefix (F2/F3) or 0 */
	bool no_osize;
	bool rm_regonly, rm_memonly;
	int msize; /* memory operand size if not bits / 8 */
};

static int pick_reg(struct gen *g, bool w, int bits, bool rex8)
{
	for (;;) {
		int r = (bits == 8 && !rex8) ? (int)rnd(g, 8) : (int)rnd(g, 16);
		int gp = (bits == 8 && !rex8 && r >= 4) ? r - 4 : r;

		if (!w || reg_writable(g, gp))
			return r;
	}
}

static int gpr_of(int r, int bits, bool rex8)
{
	return (bits == 8 && !rex8 && r >= 4 && r < 8) ? r - 4 : r;
}

/* Value of a register operand in the initial state. */
static uint64_t opnd_initial(struct gen *g, const struct opnd *o, int bits, bool rex8)
{
	if (o->mem)
		return mem_initial(g, o, bits / 8);
	return reg_initial(g, gpr_of(o->reg, bits, rex8), bits,
			   bits == 8 && !rex8 && o->reg >= 4 && o->reg < 8);
}

static void set_reg_initial(struct gen *g, int r, int bits, bool rex8, uint64_t v)
{
	int gp = gpr_of(r, bits, rex8);
	uint64_t *p = &g->c->in.gpr[gp];

	/* the stack and address registers keep their pointers */
	if (!reg_writable(g, gp))
		return;
	if (bits == 8 && !rex8 && r >= 4 && r < 8)
		*p = (*p & ~0xff00ULL) | (v & 0xff) << 8;
	else
		*p = (*p & ~width_mask(bits)) | (v & width_mask(bits));
}

static void set_opnd_initial(struct gen *g, const struct opnd *o, int bits, bool rex8, uint64_t v)
{
	if (o->mem)
		mem_set_initial(g, o, v, bits / 8);
	else
		set_reg_initial(g, o->reg, bits, rex8, v);
}

static int emit_op(struct gen *g, const struct op *o, struct enc *e, bool *rex8p)
{
	bool rex8 = false;
	int msize = o->msize ? o->msize : o->bits / 8;

	enc_init(e, o->name);
	e->map = o->map;
	e->op = o->op;
	e->has_modrm = true;
	if (o->lock)
		enc_pfx(e, 0xf0);
	if (!o->no_osize)
		enc_osize(e, o->bits);
	if (o->pfx)
		enc_pfx(e, o->pfx);
	if (o->bits == 8) {
		rex8 = chance(g, 50);
		if (rex8)
			e->rex = true;
		else
			e->norex = true;
	}
	if (!o->rm_regonly && (o->rm_memonly || chance(g, o->mem_pct))) {
		pick_mem(g, &e->rm, msize, o->align, o->bits == 8 && !rex8);
	} else {
		e->rm.mem = false;
		e->rm.reg = pick_reg(g, o->rm_w, o->bits, rex8);
	}
	e->reg = o->digit >= 0 ? o->digit : pick_reg(g, o->reg_w, o->bits, rex8);
	e->immsz = o->immsz;
	e->imm = o->imm;
	if (emit(g, e))
		return -1;
	if (o->rm_w && !e->rm.mem)
		mark_written(g, gpr_of(e->rm.reg, o->bits, rex8));
	if (o->reg_w && o->digit < 0)
		mark_written(g, gpr_of(e->reg, o->bits, rex8));
	if (rex8p)
		*rex8p = rex8;
	return 0;
}

static void flags_set(struct gen *g, uint64_t written, uint64_t undef)
{
	g->c->fl_undef = (g->c->fl_undef & ~written) | undef;
}

static bool flags_readable(struct gen *g, uint64_t read)
{
	return !(g->c->fl_undef & read);
}

static int pick_bits(struct gen *g, int mask)
{
	static const int b[] = {8, 16, 32, 64};
	int i;

	do
		i = (int)rnd(g, 4);
	while (!(mask & (1 << i)));
	return b[i];
}

static uint64_t imm_for(struct gen *g, int immsz)
{
	return edge_value(g, immsz * 8);
}

/* --- ALU: add or adc sbb and sub xor cmp, test, mov ---------------------------------------- */

static const char *const alu_names[8][4] = {
    {"add 8", "add 16", "add 32", "add 64"}, {"or 8", "or 16", "or 32", "or 64"},
    {"adc 8", "adc 16", "adc 32", "adc 64"}, {"sbb 8", "sbb 16", "sbb 32", "sbb 64"},
    {"and 8", "and 16", "and 32", "and 64"}, {"sub 8", "sub 16", "sub 32", "sub 64"},
    {"xor 8", "xor 16", "xor 32", "xor 64"}, {"cmp 8", "cmp 16", "cmp 32", "cmp 64"},
};

static int bidx(int bits)
{
	return bits == 8 ? 0 : bits == 16 ? 1 : bits == 32 ? 2 : 3;
}

static int gen_alu_bits(struct gen *g, int bits)
{
	struct op o;
	struct enc e;
	int aop = (int)rnd(g, 8), form = (int)rnd(g, 8);
	int isz = bits == 8 ? 1 : bits == 16 ? 2 : 4;
	uint64_t undef = (aop == 1 || aop == 4 || aop == 6) ? FL_AF : 0;
	bool cf_in = aop == 2 || aop == 3;

	memset(&o, 0, sizeof(o));
	o.bits = bits;
	o.mem_pct = 35;
	o.name = alu_names[aop][bidx(bits)];
	if (cf_in && !flags_readable(g, FL_CF))
		return -1;
	switch (form) {
	case 0: /* r/m, r */
	case 1: /* r, r/m */
		o.op = (uint8_t)(aop * 8 + (form == 1 ? 2 : 0) + (bits == 8 ? 0 : 1));
		o.digit = -1;
		o.rm_w = form == 0 && aop != 7;
		o.reg_w = form == 1 && aop != 7;
		o.lock = form == 0 && aop != 7 && chance(g, 15);
		if (o.lock)
			o.rm_memonly = true;
		if (emit_op(g, &o, &e, NULL))
			return -1;
		break;
	case 2: { /* AL/AX/EAX/RAX, imm */
		enc_init(&e, o.name);
		enc_osize(&e, bits);
		e.op = (uint8_t)(aop * 8 + (bits == 8 ? 4 : 5));
		e.immsz = isz;
		e.imm = imm_for(g, isz);
		if (!reg_writable(g, RAX) || emit(g, &e))
			return -1;
		if (aop != 7)
			mark_written(g, RAX);
		break;
	}
	case 3: /* 80/81 /op, imm */
	case 4: /* 83 /op, imm8 (82 for 8 bits: #UD in 64-bit mode) */
		o.op = form == 3 ? (bits == 8 ? 0x80 : 0x81) : (bits == 8 ? 0x82 : 0x83);
		if (form == 4 && bits == 8 && !chance(g, 10))
			o.op = 0x80;
		o.digit = aop;
		o.rm_w = aop != 7;
		o.immsz = form == 3 ? isz : 1;
		o.imm = imm_for(g, o.immsz);
		o.lock = aop != 7 && chance(g, 15);
		if (o.lock)
			o.rm_memonly = true;
		if (emit_op(g, &o, &e, NULL))
			return -1;
		break;
	case 5: /* test */
		o.name = bits == 8 ? "test 8" : "test";
		undef = FL_AF;
		if (chance(g, 50)) {
			o.op = bits == 8 ? 0x84 : 0x85;
			o.digit = -1;
		} else {
			o.op = bits == 8 ? 0xf6 : 0xf7;
			o.digit = 0;
			o.immsz = isz;
			o.imm = imm_for(g, isz);
		}
		if (emit_op(g, &o, &e, NULL))
			return -1;
		break;
	default: /* mov */
		o.name = bits == 8 ? "mov 8" : "mov";
		if (form == 6) {
			bool store = chance(g, 50);

			o.op = (uint8_t)((store ? 0x88 : 0x8a) + (bits == 8 ? 0 : 1));
			o.digit = -1;
			o.rm_w = store;
			o.reg_w = !store;
			if (emit_op(g, &o, &e, NULL))
				return -1;
		} else if (chance(g, 50)) {
			o.op = bits == 8 ? 0xc6 : 0xc7;
			o.digit = 0;
			o.rm_w = true;
			o.immsz = isz;
			o.imm = imm_for(g, isz);
			if (emit_op(g, &o, &e, NULL))
				return -1;
		} else { /* B0+r / B8+r, imm64 with REX.W */
			int r = pick_reg(g, true, bits, bits == 8 ? chance(g, 50) : true);

			enc_init(&e, bits == 64 ? "mov r64, imm64" : "mov r, imm");
			enc_osize(&e, bits);
			e.op = bits == 8 ? 0xb0 : 0xb8;
			e.opreg = r;
			e.immsz = bits == 64 ? 8 : isz;
			e.imm = e.immsz == 8 ? edge_value(g, 64) : imm_for(g, isz);
			if (bits == 8 && r >= 4 && r < 8)
				e.rex = chance(g, 50);
			if (bits == 8 && r >= 4 && r < 8 && !e.rex && !reg_writable(g, r - 4))
				return -1;
			if (bits == 8 && e.rex && !reg_writable(g, r))
				return -1;
			if (emit(g, &e))
				return -1;
			mark_written(g, (bits == 8 && !e.rex && r >= 4 && r < 8) ? r - 4 : r);
		}
		return 0;
	}
	flags_set(g, FL_ALL6, undef);
	return 0;
}

static int gen_alu8(struct gen *g)
{
	return gen_alu_bits(g, 8);
}
static int gen_alu16(struct gen *g)
{
	return gen_alu_bits(g, 16);
}
static int gen_alu32(struct gen *g)
{
	return gen_alu_bits(g, 32);
}
static int gen_alu64(struct gen *g)
{
	return gen_alu_bits(g, 64);
}

/* --- shifts and rotates --------------------------------------------------------------------- */

static const char *const shift_names[8] = {"rol", "ror", "rcl",	    "rcr",
					   "shl", "shr", "sal(/6)", "sar"};

/* Flags left undefined by group-2 op sop of width bits with masked count cnt. */
static uint64_t shift_undef(int sop, int bits, unsigned cnt)
{
	uint64_t u = 0;

	if (cnt == 0)
		return 0;
	if (sop <= 3) { /* rotates: OF only defined for a count of 1 */
		if (cnt != 1)
			u |= FL_OF;
		return u;
	}
	u |= FL_AF;
	if (cnt != 1)
		u |= FL_OF;
	if (cnt >= (unsigned)bits)
		u |= FL_CF; /* 8/16-bit shifts by the width or more */
	return u;
}

static uint64_t shift_written(int sop, unsigned cnt)
{
	if (cnt == 0)
		return 0;
	return sop <= 3 ? (FL_CF | FL_OF) : FL_ALL6;
}

static int gen_shift(struct gen *g)
{
	struct op o;
	struct enc e;
	int bits = pick_bits(g, 0xf), sop, kind = (int)rnd(g, 4);
	unsigned cmask = bits == 64 ? 0x3f : 0x1f, cnt;
	bool rex8;

	do
		sop = (int)rnd(g, 8);
	while (sop == 6); /* /6 is not documented by Intel */
	memset(&o, 0, sizeof(o));
	o.bits = bits;
	o.mem_pct = 30;
	o.digit = sop;
	o.rm_w = true;
	o.name = shift_names[sop];
	if ((sop == 2 || sop == 3) && !flags_readable(g, FL_CF))
		return -1;
	if (kind == 3) { /* SHLD/SHRD */
		bool right = chance(g, 50), by_cl = chance(g, 50);

		if (bits == 8)
			bits = 32;
		o.bits = bits;
		o.map = 1;
		o.op = (uint8_t)((right ? 0xac : 0xa4) + (by_cl ? 1 : 0));
		o.digit = -1;
		o.name =
		    right ? (by_cl ? "shrd cl" : "shrd imm") : (by_cl ? "shld cl" : "shld imm");
		if (by_cl && (!g->first || (g->written & (1u << RCX))))
			return -1;
		if (!by_cl) {
			o.immsz = 1;
			o.imm = chance(g, 70) ? rnd(g, (uint64_t)bits + 2) : rnd(g, 256);
		}
		if (emit_op(g, &o, &e, NULL))
			return -1;
		if (by_cl) {
			if (chance(g, 60))
				g->c->in.gpr[RCX] =
				    (g->c->in.gpr[RCX] & ~0xffULL) | rnd(g, (uint64_t)bits + 2);
			cnt = (unsigned)(g->c->in.gpr[RCX] & cmask);
		} else {
			cnt = (unsigned)(o.imm & cmask);
		}
		if (cnt == 0)
			return 0;
		if (cnt > (unsigned)bits) { /* 16-bit only: result and flags undefined */
			flags_set(g, FL_ALL6, FL_ALL6);
			if (e.rm.mem)
				mark_mem_undef(g, &e.rm, bits / 8);
			else
				g->c->gpr_undef |= (uint16_t)(1u << e.rm.reg);
			g->done = true;
			return 0;
		}
		flags_set(g, FL_ALL6, FL_AF | (cnt != 1 ? FL_OF : 0));
		return 0;
	}
	if (kind == 0) { /* by 1 */
		o.op = bits == 8 ? 0xd0 : 0xd1;
		cnt = 1;
	} else if (kind == 1) { /* by imm8 */
		o.op = bits == 8 ? 0xc0 : 0xc1;
		o.immsz = 1;
		o.imm = chance(g, 70) ? rnd(g, (uint64_t)bits + 2) : rnd(g, 256);
		cnt = (unsigned)(o.imm & cmask);
	} else { /* by CL: the count is the initial CL, so only first */
		if (!g->first || (g->written & (1u << RCX)))
			return -1;
		o.op = bits == 8 ? 0xd2 : 0xd3;
		cnt = 0;
	}
	if (emit_op(g, &o, &e, &rex8))
		return -1;
	if (kind == 2) {
		if (chance(g, 60))
			g->c->in.gpr[RCX] =
			    (g->c->in.gpr[RCX] & ~0xffULL) | rnd(g, (uint64_t)bits + 2);
		cnt = (unsigned)(g->c->in.gpr[RCX] & cmask);
	}
	flags_set(g, shift_written(sop, cnt), shift_undef(sop, bits, cnt));
	return 0;
}

/* --- multiply and divide -------------------------------------------------------------------- */

static int gen_muldiv(struct gen *g)
{
	struct op o;
	struct enc e;
	int bits = pick_bits(g, 0xf), kind = (int)rnd(g, 7);
	bool rex8;

	memset(&o, 0, sizeof(o));
	o.bits = bits;
	o.mem_pct = 30;
	if (kind <= 1) { /* mul, imul one-operand */
		if (!reg_writable(g, RAX) || !reg_writable(g, RDX))
			return -1;
		o.op = bits == 8 ? 0xf6 : 0xf7;
		o.digit = kind == 0 ? 4 : 5;
		o.name = kind == 0 ? "mul" : "imul (1 op)";
		if (emit_op(g, &o, &e, NULL))
			return -1;
		mark_written(g, RAX);
		if (bits != 8)
			mark_written(g, RDX);
		flags_set(g, FL_ALL6, FL_SF | FL_ZF | FL_AF | FL_PF);
		return 0;
	}
	if (kind <= 3) { /* imul r, r/m; imul r, r/m, imm */
		if (bits == 8)
			bits = 16 << rnd(g, 3);
		o.bits = bits;
		o.digit = -1;
		o.reg_w = true;
		if (kind == 2) {
			o.map = 1;
			o.op = 0xaf;
			o.name = "imul r, r/m";
		} else if (chance(g, 50)) {
			o.op = 0x6b;
			o.immsz = 1;
			o.imm = edge_value(g, 8);
			o.name = "imul r, r/m, imm8";
		} else {
			o.op = 0x69;
			o.immsz = bits == 16 ? 2 : 4;
			o.imm = edge_value(g, o.immsz * 8);
			o.name = "imul r, r/m, imm";
		}
		if (emit_op(g, &o, &e, NULL))
			return -1;
		flags_set(g, FL_ALL6, FL_SF | FL_ZF | FL_AF | FL_PF);
		return 0;
	}
	/* div, idiv: first, so the dividend and divisor are chosen here */
	if (!g->first)
		return -1;
	o.op = bits == 8 ? 0xf6 : 0xf7;
	o.digit = kind == 4 || kind == 6 ? 6 : 7;
	o.name = o.digit == 6 ? "div" : "idiv";
	if (emit_op(g, &o, &e, &rex8))
		return -1;
	{
		uint64_t m = width_mask(bits), d;
		int what = (int)rnd(g, 10);

		if (what == 0) {
			d = 0;
		} else {
			d = edge_value(g, bits);
			if (d == 0)
				d = 1;
		}
		set_opnd_initial(g, &e.rm, bits, rex8, d);
		d = opnd_initial(g, &e.rm, bits, rex8); /* the divisor may be RDX/RAX itself */
		if (what >= 2 && d) {
			/* a high half that does not overflow: unsigned below the divisor, or the
			 * sign extension of the low half for idiv */
			uint64_t lo = edge_value(g, bits), hi;

			if (o.digit == 6)
				hi = rnd(g, d);
			else
				hi = (lo >> (bits - 1)) & 1 ? m : 0;
			if (bits == 8) {
				g->c->in.gpr[RAX] = (g->c->in.gpr[RAX] & ~0xffffULL) | (lo & 0xff) |
						    (hi & 0xff) << 8;
			} else {
				set_reg_initial(g, RAX, bits, true, lo);
				set_reg_initial(g, RDX, bits, true, hi);
			}
			/* writing RAX/RDX may have changed a divisor held in them */
			if (!e.rm.mem && gpr_of(e.rm.reg, bits, rex8) != RAX &&
			    gpr_of(e.rm.reg, bits, rex8) != RDX)
				set_opnd_initial(g, &e.rm, bits, rex8, d);
		}
	}
	mark_written(g, RAX);
	mark_written(g, RDX);
	flags_set(g, FL_ALL6, FL_ALL6);
	return 0;
}

/* --- unary ---------------------------------------------------------------------------------- */

static int gen_unary(struct gen *g)
{
	struct op o;
	struct enc e;
	int bits = pick_bits(g, 0xf), kind = (int)rnd(g, 4);
	static const char *const names[] = {"not", "neg", "inc", "dec"};

	memset(&o, 0, sizeof(o));
	o.bits = bits;
	o.mem_pct = 35;
	o.rm_w = true;
	o.name = names[kind];
	if (kind <= 1) {
		o.op = bits == 8 ? 0xf6 : 0xf7;
		o.digit = 2 + kind;
	} else {
		o.op = bits == 8 ? 0xfe : 0xff;
		o.digit = kind - 2;
	}
	o.lock = chance(g, 15);
	if (o.lock)
		o.rm_memonly = true;
	if (emit_op(g, &o, &e, NULL))
		return -1;
	if (kind == 1)
		flags_set(g, FL_ALL6, 0);
	else if (kind >= 2)
		flags_set(g, FL_ALL6 & ~FL_CF, 0);
	return 0;
}

/* --- sign/zero extension, byte swap --------------------------------------------------------- */

static int gen_extend(struct gen *g)
{
	struct op o;
	struct enc e;
	int kind = (int)rnd(g, 7);

	memset(&o, 0, sizeof(o));
	o.mem_pct = 35;
	o.digit = -1;
	o.reg_w = true;
	o.map = 1;
	switch (kind) {
	case 0: /* movzx/movsx r, r/m8: built by hand below */
		goto movx8;
	case 1: /* movzx/movsx r, r/m16 */
	{
		bool sx = chance(g, 50);

		o.op = sx ? 0xbf : 0xb7;
		o.name = sx ? "movsx r, r/m16" : "movzx r, r/m16";
		o.bits = 32 << rnd(g, 2);
		o.msize = 2;
		return emit_op(g, &o, &e, NULL);
	}
	case 2: /* movsxd r64, r/m32 */
		o.op = 0x63;
		o.map = 0;
		o.bits = 64;
		o.msize = 4;
		o.name = "movsxd";
		return emit_op(g, &o, &e, NULL);
	case 3: { /* cbw/cwde/cdqe, cwd/cdq/cqo */
		int bits = 16 << rnd(g, 3);
		bool d = chance(g, 50);

		if (!reg_writable(g, RAX) || !reg_writable(g, RDX))
			return -1;
		enc_init(&e, d ? "cwd/cdq/cqo" : "cbw/cwde/cdqe");
		enc_osize(&e, bits);
		e.op = d ? 0x99 : 0x98;
		if (emit(g, &e))
			return -1;
		mark_written(g, d ? RDX : RAX);
		return 0;
	}
	case 4: { /* bswap r32/r64 */
		int r = pick_dst(g);

		enc_init(&e, "bswap");
		e.map = 1;
		e.op = 0xc8;
		e.opreg = r;
		e.w = chance(g, 50);
		if (emit(g, &e))
			return -1;
		mark_written(g, r);
		return 0;
	}
	case 5: /* movbe */
		if (!host_has("movbe"))
			return -1;
		o.map = 2;
		o.bits = 16 << rnd(g, 3);
		o.rm_memonly = true;
		if (chance(g, 50)) {
			o.op = 0xf0;
			o.name = "movbe r, m";
		} else {
			o.op = 0xf1;
			o.name = "movbe m, r";
			o.reg_w = false;
			o.rm_w = true;
		}
		return emit_op(g, &o, &e, NULL);
	default: /* movzx/movsx with an 8-bit source, built by hand */
movx8 : {
	int dbits = 16 << rnd(g, 3), rd = pick_dst(g);
	bool sx = chance(g, 50), rex8 = chance(g, 50);

	enc_init(&e, sx ? "movsx r, r/m8" : "movzx r, r/m8");
	enc_osize(&e, dbits);
	e.map = 1;
	e.op = sx ? 0xbe : 0xb6;
	e.has_modrm = true;
	e.reg = rd;
	if (rex8)
		e.rex = true;
	else
		e.norex = true;
	if (chance(g, 35))
		pick_mem(g, &e.rm, 1, 1, !rex8);
	else
		e.rm.reg = pick_reg(g, false, 8, rex8);
	if (emit(g, &e))
		return -1;
	mark_written(g, rd);
	return 0;
}
	}
}

/* --- exchange and compare-exchange ---------------------------------------------------------- */

static int gen_xchg(struct gen *g)
{
	struct op o;
	struct enc e;
	int bits = pick_bits(g, 0xf), kind = (int)rnd(g, 6);
	bool rex8;

	memset(&o, 0, sizeof(o));
	o.bits = bits;
	o.mem_pct = 50;
	o.digit = -1;
	switch (kind) {
	case 0: /* xchg r/m, r */
		o.op = bits == 8 ? 0x86 : 0x87;
		o.rm_w = o.reg_w = true;
		o.name = "xchg";
		return emit_op(g, &o, &e, NULL);
	case 1: { /* xchg rAX, r (90+r) */
		int r = pick_dst(g);

		if (bits == 8)
			bits = 32;
		if (r == RAX && bits == 32)
			return -1; /* 90 is NOP; xchg eax, eax would zero-extend */
		enc_init(&e, "xchg rax, r");
		enc_osize(&e, bits);
		e.op = 0x90;
		e.opreg = r;
		if (emit(g, &e))
			return -1;
		mark_written(g, r);
		mark_written(g, RAX);
		return 0;
	}
	case 2: /* xadd */
		o.map = 1;
		o.op = bits == 8 ? 0xc0 : 0xc1;
		o.rm_w = o.reg_w = true;
		o.lock = chance(g, 30);
		o.rm_memonly = o.lock;
		o.name = "xadd";
		if (emit_op(g, &o, &e, NULL))
			return -1;
		flags_set(g, FL_ALL6, 0);
		return 0;
	case 3: /* cmpxchg */
		if (!reg_writable(g, RAX))
			return -1;
		o.map = 1;
		o.op = bits == 8 ? 0xb0 : 0xb1;
		o.rm_w = true;
		o.lock = chance(g, 30);
		o.rm_memonly = o.lock;
		o.name = "cmpxchg";
		if (emit_op(g, &o, &e, &rex8))
			return -1;
		if (g->first && chance(g, 50)) /* equal: the exchange happens */
			set_reg_initial(g, RAX, bits, true, opnd_initial(g, &e.rm, bits, rex8));
		mark_written(g, RAX);
		flags_set(g, FL_ALL6, 0);
		return 0;
	default: { /* cmpxchg8b / cmpxchg16b */
		bool b16 = kind == 5 && host_has("cx16");
		int size = b16 ? 16 : 8;

		if (!reg_writable(g, RAX) || !reg_writable(g, RDX))
			return -1;
		enc_init(&e, b16 ? "cmpxchg16b" : "cmpxchg8b");
		if (chance(g, 30))
			enc_pfx(&e, 0xf0);
		e.map = 1;
		e.op = 0xc7;
		e.has_modrm = true;
		e.reg = 1;
		e.w = b16;
		pick_mem(g, &e.rm, size, chance(g, 95) ? size : 1, false);
		if (emit(g, &e))
			return -1;
		if (g->first && chance(g, 50)) {
			uint64_t lo = mem_initial(g, &e.rm, 8), hi;

			memcpy(&hi, g->c->mem + (e.rm.ea - DATA_BASE) + (b16 ? 8 : 4), 8);
			if (b16) {
				g->c->in.gpr[RAX] = lo;
				g->c->in.gpr[RDX] = hi;
			} else {
				set_reg_initial(g, RAX, 32, true, lo);
				set_reg_initial(g, RDX, 32, true, lo >> 32);
			}
		}
		mark_written(g, RAX);
		mark_written(g, RDX);
		flags_set(g, FL_ZF, 0);
		return 0;
	}
	}
}

/* --- bit operations -------------------------------------------------------------------------- */

static int gen_bitops(struct gen *g)
{
	struct op o;
	struct enc e;
	int bits = 16 << rnd(g, 3), kind = (int)rnd(g, 5);
	bool rex8;

	memset(&o, 0, sizeof(o));
	o.bits = bits;
	o.mem_pct = 35;
	if (kind <= 1) { /* bt/bts/btr/btc with a register or imm8 bit offset */
		int bop = (int)rnd(g, 4);
		static const char *const n[2][4] = {{"bt r", "bts r", "btr r", "btc r"},
						    {"bt imm", "bts imm", "btr imm", "btc imm"}};

		o.name = n[kind][bop];
		o.map = 1;
		o.rm_w = bop != 0;
		o.lock = bop != 0 && chance(g, 15);
		o.rm_memonly = o.lock;
		if (kind == 0) {
			o.op = (uint8_t)(0xa3 + 8 * bop);
			o.digit = -1;
			/* a register offset addresses a bit string beyond the operand in memory:
			 * choose it first, so it is known */
			if (!g->first)
				o.rm_regonly = true;
		} else {
			o.op = 0xba;
			o.digit = 4 + bop;
			o.immsz = 1;
			o.imm = chance(g, 70) ? rnd(g, (uint64_t)bits) : rnd(g, 256);
		}
		if (o.rm_memonly && o.rm_regonly)
			return -1;
		if (emit_op(g, &o, &e, NULL))
			return -1;
		if (kind == 0 && e.rm.mem) {
			/* a signed bit offset within +-0x200 bits keeps it in the window */
			int64_t off = (int64_t)rnd(g, 0x400) - 0x200;
			uint64_t ea = e.rm.ea + (uint64_t)((off >> 3) & ~(int64_t)(bits / 8 - 1));

			if (ea < DATA_BASE + 0x100 || ea + 8 > DATA_BASE + DATA_SIZE)
				off = 0;
			set_reg_initial(g, e.reg, 64, true, (uint64_t)off);
			if (e.reg == g->pbase || e.reg == g->pindex || e.reg == RSP || e.reg == RBP)
				return -1;
		}
		/* OF SF AF PF undefined; ZF: Intel leaves it unaffected, AMD undefined */
		flags_set(g, FL_ALL6, FL_OF | FL_SF | FL_AF | FL_PF | FL_ZF);
		return 0;
	}
	o.map = 1;
	o.digit = -1;
	o.reg_w = true;
	if (kind == 2) { /* bsf/bsr: first, to know whether the source is zero */
		bool rev = chance(g, 50);

		if (!g->first)
			return -1;
		o.op = rev ? 0xbd : 0xbc;
		o.name = rev ? "bsr" : "bsf";
		if (emit_op(g, &o, &e, &rex8))
			return -1;
		if (chance(g, 20))
			set_opnd_initial(g, &e.rm, bits, rex8, 0);
		if (opnd_initial(g, &e.rm, bits, rex8) == 0) {
			g->c->gpr_undef |= (uint16_t)(1u << e.reg);
			g->done = true;
		}
		flags_set(g, FL_ALL6, FL_ALL6 & ~FL_ZF);
		return 0;
	}
	o.pfx = 0xf3;
	if (kind == 3) { /* lzcnt; not tzcnt: without BMI1 in our CPUID, F3 0F BC is BSF */
		if (!host_has("lzcnt"))
			return -1;
		o.op = 0xbd;
		o.name = "lzcnt";
		if (emit_op(g, &o, &e, NULL))
			return -1;
		flags_set(g, FL_ALL6, FL_OF | FL_SF | FL_AF | FL_PF);
		return 0;
	}
	if (!host_has("popcnt"))
		return -1;
	o.op = 0xb8;
	o.name = "popcnt";
	if (emit_op(g, &o, &e, NULL))
		return -1;
	flags_set(g, FL_ALL6, 0);
	return 0;
}

/* --- SETcc, CMOVcc, flag instructions -------------------------------------------------------- */

static const uint64_t cc_reads[16] = {
    FL_OF,
    FL_OF,
    FL_CF,
    FL_CF,
    FL_ZF,
    FL_ZF,
    FL_CF | FL_ZF,
    FL_CF | FL_ZF,
    FL_SF,
    FL_SF,
    FL_PF,
    FL_PF,
    FL_SF | FL_OF,
    FL_SF | FL_OF,
    FL_ZF | FL_SF | FL_OF,
    FL_ZF | FL_SF | FL_OF,
};

static int gen_setcc(struct gen *g)
{
	struct op o;
	struct enc e;
	int kind = (int)rnd(g, 6), cc = (int)rnd(g, 16);

	memset(&o, 0, sizeof(o));
	o.map = 1;
	o.mem_pct = 35;
	if (kind <= 1 && !flags_readable(g, cc_reads[cc]))
		return -1;
	if (kind == 0) {
		o.op = (uint8_t)(0x90 + cc);
		o.bits = 8;
		o.no_osize = true;
		o.digit = 0;
		o.rm_w = true;
		o.name = "setcc";
		return emit_op(g, &o, &e, NULL);
	}
	if (kind == 1) {
		o.op = (uint8_t)(0x40 + cc);
		o.bits = 16 << rnd(g, 3);
		o.digit = -1;
		o.reg_w = true;
		o.name = "cmovcc";
		return emit_op(g, &o, &e, NULL);
	}
	if (kind == 2) { /* an ALU op to make fresh flags */
		return gen_alu_bits(g, pick_bits(g, 0xf));
	}
	{
		static const struct {
			uint8_t op;
			const char *name;
			uint64_t rd, wr;
		} f[] = {
		    {0x9f, "lahf", FL_SF | FL_ZF | FL_AF | FL_PF | FL_CF, 0},
		    {0x9e, "sahf", 0, FL_SF | FL_ZF | FL_AF | FL_PF | FL_CF},
		    {0xf5, "cmc", FL_CF, FL_CF},
		    {0xf8, "clc", 0, FL_CF},
		    {0xf9, "stc", 0, FL_CF},
		    {0xfc, "cld", 0, 0},
		    {0xfd, "std", 0, 0},
		};
		int i = (int)rnd(g, 7);

		if (!flags_readable(g, f[i].rd))
			return -1;
		if ((i == 0 && !reg_writable(g, RAX)) || (i <= 1 && !host_has("lahf")))
			return -1;
		if (emit_raw(g, &f[i].op, 1, f[i].name))
			return -1;
		if (i == 0)
			mark_written(g, RAX);
		flags_set(g, f[i].wr, 0);
		return 0;
	}
}

/* --- branches: forward Jcc/JMP, LOOP/JRCXZ, CALL/RET, indirect JMP ----------------------------- */

/* A simple flag-defining filler instruction that branches skip over. */
static int gen_filler(struct gen *g)
{
	uint64_t before = g->c->fl_undef;
	int r = gen_alu_bits(g, 32 << rnd(g, 2));

	/* the filler may be skipped: flags it defines are not defined for sure */
	g->c->fl_undef |= before;
	return r;
}

static void patch_rel(struct gen *g, uint32_t at, int size, uint32_t from, uint32_t to)
{
	int32_t d = (int32_t)to - (int32_t)from;

	if (size == 1)
		g->c->code[at] = (uint8_t)(int8_t)d;
	else
		memcpy(g->c->code + at, &d, 4);
}

static int gen_branch(struct gen *g)
{
	int kind = (int)rnd(g, 6), cc = (int)rnd(g, 16);
	uint8_t b[8];
	uint32_t at;
	int n = 0, dsz;

	switch (kind) {
	case 0: /* jcc rel8 / rel32 */
	case 1: /* jmp rel8 / rel32 */
		if (kind == 0 && !flags_readable(g, cc_reads[cc]))
			return -1;
		dsz = chance(g, 50) ? 1 : 4;
		if (kind == 0 && dsz == 1)
			b[n++] = (uint8_t)(0x70 + cc);
		else if (kind == 0) {
			b[n++] = 0x0f;
			b[n++] = (uint8_t)(0x80 + cc);
		} else
			b[n++] = dsz == 1 ? 0xeb : 0xe9;
		memset(b + n, 0, (size_t)dsz);
		at = g->len + (uint32_t)n;
		if (emit_raw(g, b, n + dsz, kind ? "jmp rel" : "jcc rel"))
			return -1;
		if (gen_filler(g))
			return -1;
		patch_rel(g, at, dsz, at + (uint32_t)dsz, g->len);
		return 0;
	case 2: { /* loop / loope / loopne / jrcxz (with 67: ecx) */
		int which = (int)rnd(g, 4);
		static const char *const names[] = {"loopne", "loope", "loop", "jrcxz"};

		if ((which == 0 || which == 1) && !flags_readable(g, FL_ZF))
			return -1;
		if (which != 3 && !reg_writable(g, RCX))
			return -1;
		if (chance(g, 15))
			b[n++] = 0x67;
		b[n++] = (uint8_t)(0xe0 + which);
		b[n++] = 0;
		at = g->len + (uint32_t)n - 1;
		if (g->first && chance(g, 30))
			g->c->in.gpr[RCX] = rnd(g, 3);
		if (emit_raw(g, b, n, names[which]))
			return -1;
		if (which != 3)
			mark_written(g, RCX);
		if (gen_filler(g))
			return -1;
		patch_rel(g, at, 1, at + 1, g->len);
		return 0;
	}
	case 3: { /* call L; jmp E; L: filler; ret [imm16]; E: */
		uint32_t call_at, jmp_at, l, ret_imm = chance(g, 30) ? 8 * (uint32_t)rnd(g, 3) : 0;

		b[0] = 0xe8;
		memset(b + 1, 0, 4);
		call_at = g->len + 1;
		if (emit_raw(g, b, 5, "call rel32"))
			return -1;
		b[0] = 0xeb;
		b[1] = 0;
		jmp_at = g->len + 1;
		if (emit_raw(g, b, 2, "jmp rel8"))
			return -1;
		l = g->len;
		if (gen_filler(g))
			return -1;
		if (ret_imm) {
			b[0] = 0xc2;
			b[1] = (uint8_t)ret_imm;
			b[2] = 0;
			if (emit_raw(g, b, 3, "ret imm16"))
				return -1;
		} else {
			b[0] = 0xc3;
			if (emit_raw(g, b, 1, "ret"))
				return -1;
		}
		patch_rel(g, call_at, 4, call_at + 4, l);
		patch_rel(g, jmp_at, 1, jmp_at + 1, g->len);
		return 0;
	}
	case 4: { /* mov r, target; jmp r / call r */
		int r = pick_dst(g);
		struct enc e;
		uint32_t imm_at;

		enc_init(&e, "mov r64, imm64");
		e.w = true;
		e.op = 0xb8;
		e.opreg = r;
		e.immsz = 8;
		if (emit(g, &e))
			return -1;
		imm_at = g->len - 8;
		mark_written(g, r);
		enc_init(&e, "jmp r/m64");
		e.op = 0xff;
		e.has_modrm = true;
		e.reg = 4;
		e.rm.reg = r;
		if (emit(g, &e))
			return -1;
		if (gen_filler(g))
			return -1;
		{
			uint64_t t = CODE_BASE + g->c->code_off + g->len;
			memcpy(g->c->code + imm_at, &t, 8);
		}
		return 0;
	}
	default: /* flags for the branches to test */
		return gen_alu_bits(g, pick_bits(g, 0xf));
	}
}

/* --- LEA: every addressing form, with any registers ------------------------------------------ */

static int gen_lea(struct gen *g)
{
	struct enc e;
	int bits = 16 << rnd(g, 3), rd = pick_dst(g), form = (int)rnd(g, 6);
	struct opnd *m = &e.rm;

	enc_init(&e, "lea");
	enc_osize(&e, bits);
	e.op = 0x8d;
	e.has_modrm = true;
	e.reg = rd;
	m->mem = true;
	m->base = -1;
	m->index = -1;
	m->scale = 1 << rnd(g, 4);
	m->addr32 = chance(g, 25);
	m->dispsz = (int)rnd(g, 3);
	m->dispsz = m->dispsz == 2 ? 4 : m->dispsz;
	m->disp = m->dispsz == 1 ? (int8_t)rnd(g, 256) : (int32_t)edge_value(g, 32);
	switch (form) {
	case 0:
		m->base = (int)rnd(g, 16);
		break;
	case 1:
	case 2:
		m->base = (int)rnd(g, 16);
		do
			m->index = (int)rnd(g, 16);
		while (m->index == RSP);
		break;
	case 3:
		do
			m->index = (int)rnd(g, 16);
		while (m->index == RSP);
		m->dispsz = 4;
		break;
	case 4:
		m->base = BASE_RIP;
		m->dispsz = 4;
		m->ea = CODE_BASE + (uint64_t)(int64_t)(int32_t)edge_value(g, 32);
		break;
	default:
		m->dispsz = 4;
		break;
	}
	if (m->dispsz == 0 && m->base >= 0)
		m->disp = 0;
	if (emit(g, &e))
		return -1;
	mark_written(g, rd);
	return 0;
}

/* --- string instructions --------------------------------------------------------------------- */

static void string_init(struct gen *g)
{
	struct tcase *c = g->c;

	c->in.gpr[RSI] = DATA_BASE + 0x900 + rnd(g, 0x600);
	c->in.gpr[RDI] = DATA_BASE + 0x900 + rnd(g, 0x600);
	if (chance(g, 30)) { /* overlapping moves */
		c->in.gpr[RDI] = c->in.gpr[RSI] + rnd(g, 16) - 8;
	}
	c->in.gpr[RCX] = chance(g, 20) ? rnd(g, 3) : rnd(g, 65);
	if (chance(g, 50))
		c->in.rflags |= FL_DF;
	else
		c->in.rflags &= ~FL_DF;
	/* make equal runs for cmps/scas */
	if (chance(g, 50))
		memmove(c->mem + (c->in.gpr[RDI] - DATA_BASE),
			c->mem + (c->in.gpr[RSI] - DATA_BASE), rnd(g, 64));
}

static int gen_string(struct gen *g)
{
	static const struct {
		uint8_t op;
		const char *name;
		bool cmp, rsi, rdi, rax_w;
	} s[] = {
	    {0xa4, "movs", false, true, true, false}, {0xaa, "stos", false, false, true, false},
	    {0xac, "lods", false, true, false, true}, {0xa6, "cmps", true, true, true, false},
	    {0xae, "scas", true, false, true, false},
	};
	int i = (int)rnd(g, 6), bits = pick_bits(g, 0xf), rep;
	uint8_t b[6];
	int n = 0;
	bool a32 = chance(g, 15);

	if (i == 5) { /* cld / std between string instructions */
		b[0] = chance(g, 50) ? 0xfc : 0xfd;
		return emit_raw(g, b, 1, b[0] == 0xfc ? "cld" : "std");
	}
	if (g->c->n_insns > 0 && a32 != (g->aux == 1))
		a32 = g->aux == 1; /* keep one address size per sequence */
	g->aux = a32 ? 1 : 2;
	if (a32 && g->first && chance(g, 30)) /* with 67 the count is ECX alone */
		g->c->in.gpr[RCX] |= 0xffffffff00000000ULL;
	rep = (int)rnd(g, 3); /* 0: none, 1: F3, 2: F2 */
	if (!s[i].cmp && rep == 2)
		rep = 1;
	if (s[i].rax_w && rep && chance(g, 50))
		rep = 0;
	if (a32)
		b[n++] = 0x67;
	if (bits == 16)
		b[n++] = 0x66;
	if (rep)
		b[n++] = rep == 1 ? 0xf3 : 0xf2;
	if (bits == 64)
		b[n++] = 0x48;
	b[n++] = (uint8_t)(s[i].op + (bits == 8 ? 0 : 1));
	if (emit_raw(g, b, n, s[i].name))
		return -1;
	if (s[i].cmp)
		flags_set(g, FL_ALL6, 0);
	return 0;
}

/* --- stack: push/pop, pushf/popf, enter/leave ------------------------------------------------- */

static int gen_stack(struct gen *g)
{
	struct enc e;
	int kind = (int)rnd(g, 10), r;
	uint8_t b[8];

	if (kind == 9 && chance(g, 70)) /* keep #AC cases to a few percent */
		kind = (int)rnd(g, 3);

	if (g->stack_depth > 6 && kind <= 2)
		kind = 3;
	switch (kind) {
	case 0: /* push r (66: 16-bit) */
		r = pick_src(g);
		enc_init(&e, "push r");
		if (chance(g, 15))
			enc_pfx(&e, 0x66);
		e.op = 0x50;
		e.opreg = r;
		g->stack_depth++;
		return emit(g, &e);
	case 1: /* push imm8 / imm32 */
		b[0] = chance(g, 50) ? 0x6a : 0x68;
		{
			uint64_t v = edge_value(g, 32);
			memcpy(b + 1, &v, 4);
		}
		g->stack_depth++;
		return emit_raw(g, b, b[0] == 0x6a ? 2 : 5, "push imm");
	case 2: /* push r/m64 */
		enc_init(&e, "push r/m");
		e.op = 0xff;
		e.has_modrm = true;
		e.reg = 6;
		pick_rm(g, &e.rm, false, 8, 1, 70);
		g->stack_depth++;
		return emit(g, &e);
	case 3: /* pop r */
		r = pick_dst(g);
		enc_init(&e, "pop r");
		if (chance(g, 15))
			enc_pfx(&e, 0x66);
		e.op = 0x58;
		e.opreg = r;
		if (emit(g, &e))
			return -1;
		mark_written(g, r);
		return 0;
	case 4: /* pop r/m64 */
		enc_init(&e, "pop r/m");
		e.op = 0x8f;
		e.has_modrm = true;
		e.reg = 0;
		pick_rm(g, &e.rm, true, 8, 1, 70);
		if (emit(g, &e))
			return -1;
		if (!e.rm.mem)
			mark_written(g, e.rm.reg);
		return 0;
	case 5: { /* push imm32 with status flags; popf */
		uint32_t v = (uint32_t)(0x202 | (rng_next(g->rng) & (FL_STATUS | FL_DF)));

		b[0] = 0x68;
		memcpy(b + 1, &v, 4);
		if (emit_raw(g, b, 5, "push imm32 (flags)"))
			return -1;
		b[0] = 0x9d;
		if (emit_raw(g, b, 1, "popf"))
			return -1;
		flags_set(g, FL_ALL6, 0);
		return 0;
	}
	case 9: { /* alignment check: EFLAGS.AC via popf, then a maybe-misaligned access: #AC */
		uint32_t v = (uint32_t)(0x40202 | (rng_next(g->rng) & (FL_STATUS | FL_DF)));

		b[0] = 0x68;
		memcpy(b + 1, &v, 4);
		if (emit_raw(g, b, 5, "push imm32 (flags with AC)"))
			return -1;
		b[0] = 0x9d;
		if (emit_raw(g, b, 1, "popf (AC)"))
			return -1;
		flags_set(g, FL_ALL6, 0);
		return gen_alu_bits(g, pick_bits(g, 0xe));
	}
	case 6: /* pushf */
		if (!flags_readable(g, FL_ALL6))
			return -1;
		b[0] = 0x9c;
		g->stack_depth++;
		return emit_raw(g, b, 1, "pushf");
	case 7: { /* enter size, level */
		uint16_t size = (uint16_t)(8 * rnd(g, 16));
		uint8_t level = (uint8_t)(chance(g, 60) ? 0 : rnd(g, 4));

		if (level > 0 && g->rbp_bad)
			return -1;
		b[0] = 0xc8;
		memcpy(b + 1, &size, 2);
		b[3] = level;
		if (emit_raw(g, b, 4, "enter"))
			return -1;
		g->rbp_bad = false;
		g->stack_depth += 2 + level;
		return 0;
	}
	default: /* leave */
		if (g->rbp_bad)
			return -1;
		b[0] = 0xc9;
		if (emit_raw(g, b, 1, "leave"))
			return -1;
		g->rbp_bad = true;
		return 0;
	}
}

/* --- mixed: integer, SSE and x87 instructions in one sequence ----------------------------------- */

static void mixed_init(struct gen *g)
{
	mxcsr_random(g, false);
	x87_random(g, true);
}

static int gen_mixed(struct gen *g)
{
	int save = g->aux, r;

	switch (rnd(g, 9)) {
	case 0:
		return gen_alu_bits(g, pick_bits(g, 0xf));
	case 1:
		return gen_shift(g);
	case 2:
		return gen_unary(g);
	case 3:
		return gen_setcc(g);
	case 4:
		return gen_branch(g);
	case 5:
		return gen_bitops(g);
	case 6: /* any SSE group (gen_sse skips what the host lacks) */
		g->aux = (int)rnd(g, 7);
		r = gen_sse(g);
		g->aux = save;
		return r;
	case 7: /* x87 arithmetic or load/store */
		g->aux = (int)rnd(g, 2);
		r = gen_x87(g);
		g->aux = save;
		return r;
	default:
		return gen_muldiv(g);
	}
}

/* --- self-modifying code ---------------------------------------------------------------------
 * A loop whose body rewrites one of its own instructions (an immediate or an opcode byte)
 * with a RIP-relative store, or rewrites the instruction right after the store. x86 makes
 * such stores visible to the following instruction fetches (SDM vol. 3, 11.6
 * "Self-Modifying Code"), so the results show whether the emulator's decoded-instruction
 * cache noticed the write. */

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static const uint8_t eax_alu_ops[] = {0x05, 0x2d, 0x35, 0x25, 0x0d}; /* add sub xor and or */

void smc_whole(struct gen *g)
{
	struct tcase *c = g->c;
	uint8_t b[16];
	uint32_t top, at;
	int iters = 2 + (int)rnd(g, 2), kind = (int)rnd(g, 4);
	static const int vregs[] = {RBX, RDX, RSI, RDI};
	int vreg = vregs[rnd(g, 4)];
	uint8_t op1 = eax_alu_ops[rnd(g, 5)], op2 = eax_alu_ops[rnd(g, 5)];

	b[0] = 0xb9; /* mov ecx, iters */
	put32(b + 1, (uint32_t)iters);
	emit_raw(g, b, 5, "mov ecx, imm32");
	top = g->len;
	if (kind == 3) { /* the store rewrites the opcode of the very next instruction */
		b[0] = 0xc6;
		b[1] = 0x05;
		put32(b + 2, 0);
		b[6] = op2;
		emit_raw(g, b, 7, "mov byte [rip+0], imm8 (next opcode)");
		b[0] = op1;
		put32(b + 1, (uint32_t)rng_next(g->rng));
		emit_raw(g, b, 5, "alu eax, imm32 (rewritten)");
	} else {
		b[0] = op1;
		put32(b + 1, (uint32_t)rng_next(g->rng));
		emit_raw(g, b, 5, "alu eax, imm32 (rewritten)");
		at = g->len;
		if (kind == 0) { /* mov [rip+d], r32 over the imm32 */
			b[0] = 0x89;
			b[1] = (uint8_t)((vreg & 7) << 3 | 5);
			put32(b + 2, (uint32_t)((int32_t)(top + 1) - (int32_t)(at + 6)));
			emit_raw(g, b, 6, "mov [rip+d], r32 (code)");
		} else if (kind == 1) { /* mov byte [rip+d], imm8 over the opcode */
			b[0] = 0xc6;
			b[1] = 0x05;
			put32(b + 2, (uint32_t)((int32_t)top - (int32_t)(at + 7)));
			b[6] = op2;
			emit_raw(g, b, 7, "mov byte [rip+d], imm8 (code)");
		} else { /* xor byte [rip+d], imm8 on an immediate byte */
			b[0] = 0x80;
			b[1] = 0x35;
			put32(b + 2, (uint32_t)((int32_t)(top + 1 + (uint32_t)rnd(g, 4)) -
						(int32_t)(at + 7)));
			b[6] = (uint8_t)(1 + rnd(g, 255));
			emit_raw(g, b, 7, "xor byte [rip+d], imm8 (code)");
		}
	}
	b[0] = 0xe2; /* loop top */
	b[1] = (uint8_t)(int8_t)((int32_t)top - (int32_t)(g->len + 2));
	emit_raw(g, b, 2, "loop (back)");
	c->fl_undef = FL_AF; /* AND/OR/XOR leave AF undefined */
	c->code_len = g->len;
	c->code[g->len] = 0xcc;
}

/* --- class table ----------------------------------------------------------------------------- */

const struct gen_class gen_classes[] = {
    {"alu8", NULL, 4, NULL, gen_alu8, NULL},
    {"alu16", NULL, 4, NULL, gen_alu16, NULL},
    {"alu32", NULL, 4, NULL, gen_alu32, NULL},
    {"alu64", NULL, 4, NULL, gen_alu64, NULL},
    {"shift/rotate", NULL, 3, NULL, gen_shift, NULL},
    {"mul/div", NULL, 3, NULL, gen_muldiv, NULL},
    {"inc/dec/neg/not", NULL, 4, NULL, gen_unary, NULL},
    {"extend/bswap/movbe", NULL, 4, NULL, gen_extend, NULL},
    {"xchg/xadd/cmpxchg", NULL, 3, NULL, gen_xchg, NULL},
    {"bit ops", NULL, 3, NULL, gen_bitops, NULL},
    {"setcc/cmovcc/flags", NULL, 5, NULL, gen_setcc, NULL},
    {"branches", NULL, 3, NULL, gen_branch, NULL},
    {"lea", NULL, 4, NULL, gen_lea, NULL},
    {"string", NULL, 3, string_init, gen_string, NULL},
    {"stack", NULL, 6, NULL, gen_stack, NULL},
    {"sse moves", NULL, 3, sse_init, gen_sse, NULL},
    {"sse logic/int", NULL, 3, sse_init, gen_sse, NULL},
    {"sse fp arith", NULL, 3, sse_init, gen_sse, NULL},
    {"sse conversions", NULL, 3, sse_init, gen_sse, NULL},
    {"sse3/ssse3", "ssse3", 3, sse_init, gen_sse, NULL},
    {"sse4.1", "sse4.1", 3, sse_init, gen_sse, NULL},
    {"sse4.2/crc32/pclmul", "sse4.2", 3, sse_init, gen_sse, NULL},
    {"x87 arith", NULL, 3, x87_init, gen_x87, NULL},
    {"x87 load/store", NULL, 3, x87_init, gen_x87, NULL},
    {"fxsave/fxrstor/mxcsr", NULL, 3, x87_init, gen_fxsave, NULL},
    {"mixed int/sse/x87", NULL, 6, mixed_init, gen_mixed, NULL},
    {"self-modifying code", NULL, 1, NULL, NULL, smc_whole},
    {"decoder fuzz", NULL, 1, NULL, NULL, fuzz_whole},
};

const int gen_nclasses = sizeof(gen_classes) / sizeof(gen_classes[0]);

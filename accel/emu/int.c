/* Integer instructions of x86-64: ALU, shifts and rotates, multiply/divide, bit operations,
 * data movement, stack, control transfer, string operations, flags and the few system
 * instructions the bare CPU needs (CPUID, RDTSC, fences, HLT), plus their selector.
 *
 * Follows the Intel SDM vol. 2 (instruction reference) and vol. 1 ch. 7 (general-purpose
 * instructions). Every handler does its faulting accesses (memory translation, #DE checks)
 * before changing any register, flag or memory byte, so faults are precise.
 */
#include "accel/emu/emu_internal.h"

#define HANDLER(name) static void name(struct emu_cpu *cpu, const struct insn *in)

enum { ALU_ADD, ALU_OR, ALU_ADC, ALU_SBB, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP };

static inline unsigned cpl(const struct emu_cpu *cpu)
{
	return cpu->seg[EMU_CS].selector & 3;
}

static inline uint64_t next_rip(const struct insn *in)
{
	return in->rip + in->len;
}

static inline uint64_t lea_addr(const struct emu_cpu *cpu, const struct insn *in)
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
	return a;
}

/* The arithmetic core: result (masked to size), lazy flags recorded. */
static inline uint64_t alu(struct emu_cpu *cpu, unsigned op, unsigned size, uint64_t a, uint64_t b)
{
	uint64_t mask = size_mask(size), r, c;
	a &= mask;
	b &= mask;
	switch (op) {
	case ALU_ADD:
		r = (a + b) & mask;
		lf_set(cpu, LF_ADD, size, r, a, b);
		return r;
	case ALU_OR:
		r = a | b;
		lf_set(cpu, LF_LOGIC, size, r, a, b);
		return r;
	case ALU_ADC:
		c = flag_cf(cpu);
		r = (a + b + c) & mask;
		lf_set(cpu, LF_ADC, size, r, a, b);
		cpu->lf_cf = (uint32_t)c;
		return r;
	case ALU_SBB:
		c = flag_cf(cpu);
		r = (a - b - c) & mask;
		lf_set(cpu, LF_SBB, size, r, a, b);
		cpu->lf_cf = (uint32_t)c;
		return r;
	case ALU_AND:
		r = a & b;
		lf_set(cpu, LF_LOGIC, size, r, a, b);
		return r;
	case ALU_XOR:
		r = a ^ b;
		lf_set(cpu, LF_LOGIC, size, r, a, b);
		return r;
	default: /* SUB, CMP */
		r = (a - b) & mask;
		lf_set(cpu, LF_SUB, size, r, a, b);
		return r;
	}
}

/* ALU with the operation fixed at compile time, in the forms the decoder picks. */
#define DEF_ALU(name, OP)                                                                      \
	HANDLER(name##_rr)                                                                     \
	{                                                                                      \
		uint64_t r = alu(cpu, OP, in->size, reg_read(cpu, in->rm, in->size),           \
				 reg_read(cpu, in->reg, in->size));                            \
		if (OP != ALU_CMP)                                                             \
			reg_write(cpu, in->rm, r, in->size);                                   \
		dispatch_next(cpu, in);                                                        \
	}                                                                                      \
	HANDLER(name##_ri)                                                                     \
	{                                                                                      \
		uint64_t r = alu(cpu, OP, in->size, reg_read(cpu, in->rm, in->size), in->imm); \
		if (OP != ALU_CMP)                                                             \
			reg_write(cpu, in->rm, r, in->size);                                   \
		dispatch_next(cpu, in);                                                        \
	}                                                                                      \
	HANDLER(name##_mr)                                                                     \
	{                                                                                      \
		void *p = emu_mem(cpu, in, emu_ea(cpu, in), in->size, OP != ALU_CMP);          \
		uint64_t r = alu(cpu, OP, in->size, emu_ld_ptr(p, in->size),                   \
				 reg_read(cpu, in->reg, in->size));                            \
		if (OP != ALU_CMP)                                                             \
			emu_st_ptr(p, r, in->size);                                            \
		dispatch_next(cpu, in);                                                        \
	}                                                                                      \
	HANDLER(name##_mi)                                                                     \
	{                                                                                      \
		void *p = emu_mem(cpu, in, emu_ea(cpu, in), in->size, OP != ALU_CMP);          \
		uint64_t r = alu(cpu, OP, in->size, emu_ld_ptr(p, in->size), in->imm);         \
		if (OP != ALU_CMP)                                                             \
			emu_st_ptr(p, r, in->size);                                            \
		dispatch_next(cpu, in);                                                        \
	}                                                                                      \
	HANDLER(name##_rr64)                                                                   \
	{                                                                                      \
		uint64_t r = alu(cpu, OP, 8, cpu->gpr[in->rm], cpu->gpr[in->reg]);             \
		if (OP != ALU_CMP)                                                             \
			cpu->gpr[in->rm] = r;                                                  \
		dispatch_next(cpu, in);                                                        \
	}                                                                                      \
	HANDLER(name##_ri64)                                                                   \
	{                                                                                      \
		uint64_t r = alu(cpu, OP, 8, cpu->gpr[in->rm], in->imm);                       \
		if (OP != ALU_CMP)                                                             \
			cpu->gpr[in->rm] = r;                                                  \
		dispatch_next(cpu, in);                                                        \
	}                                                                                      \
	HANDLER(name##_rr32)                                                                   \
	{                                                                                      \
		uint64_t r = alu(cpu, OP, 4, cpu->gpr[in->rm], cpu->gpr[in->reg]);             \
		if (OP != ALU_CMP)                                                             \
			cpu->gpr[in->rm] = r;                                                  \
		dispatch_next(cpu, in);                                                        \
	}                                                                                      \
	HANDLER(name##_ri32)                                                                   \
	{                                                                                      \
		uint64_t r = alu(cpu, OP, 4, cpu->gpr[in->rm], in->imm);                       \
		if (OP != ALU_CMP)                                                             \
			cpu->gpr[in->rm] = r;                                                  \
		dispatch_next(cpu, in);                                                        \
	}                                                                                      \
	HANDLER(name##_rm)                                                                     \
	{                                                                                      \
		uint64_t b = emu_ld(cpu, in, emu_ea(cpu, in), in->size);                       \
		uint64_t r = alu(cpu, OP, in->size, reg_read(cpu, in->reg, in->size), b);      \
		if (OP != ALU_CMP)                                                             \
			reg_write(cpu, in->reg, r, in->size);                                  \
		dispatch_next(cpu, in);                                                        \
	}

DEF_ALU(op_add, ALU_ADD)
DEF_ALU(op_or, ALU_OR)
DEF_ALU(op_adc, ALU_ADC)
DEF_ALU(op_sbb, ALU_SBB)
DEF_ALU(op_and, ALU_AND)
DEF_ALU(op_sub, ALU_SUB)
DEF_ALU(op_xor, ALU_XOR)
DEF_ALU(op_cmp, ALU_CMP)

static const emu_handler alu_rr[8] = {op_add_rr, op_or_rr,  op_adc_rr, op_sbb_rr,
				      op_and_rr, op_sub_rr, op_xor_rr, op_cmp_rr};
static const emu_handler alu_ri[8] = {op_add_ri, op_or_ri,  op_adc_ri, op_sbb_ri,
				      op_and_ri, op_sub_ri, op_xor_ri, op_cmp_ri};
static const emu_handler alu_mr[8] = {op_add_mr, op_or_mr,  op_adc_mr, op_sbb_mr,
				      op_and_mr, op_sub_mr, op_xor_mr, op_cmp_mr};
static const emu_handler alu_mi[8] = {op_add_mi, op_or_mi,  op_adc_mi, op_sbb_mi,
				      op_and_mi, op_sub_mi, op_xor_mi, op_cmp_mi};
static const emu_handler alu_rr64[8] = {op_add_rr64, op_or_rr64,  op_adc_rr64, op_sbb_rr64,
					op_and_rr64, op_sub_rr64, op_xor_rr64, op_cmp_rr64};
static const emu_handler alu_ri64[8] = {op_add_ri64, op_or_ri64,  op_adc_ri64, op_sbb_ri64,
					op_and_ri64, op_sub_ri64, op_xor_ri64, op_cmp_ri64};
static const emu_handler alu_rr32[8] = {op_add_rr32, op_or_rr32,  op_adc_rr32, op_sbb_rr32,
					op_and_rr32, op_sub_rr32, op_xor_rr32, op_cmp_rr32};
static const emu_handler alu_ri32[8] = {op_add_ri32, op_or_ri32,  op_adc_ri32, op_sbb_ri32,
					op_and_ri32, op_sub_ri32, op_xor_ri32, op_cmp_ri32};
static const emu_handler alu_rm[8] = {op_add_rm, op_or_rm,  op_adc_rm, op_sbb_rm,
				      op_and_rm, op_sub_rm, op_xor_rm, op_cmp_rm};

/* --- TEST, INC/DEC, NOT/NEG --- */

HANDLER(op_test_r)
{
	uint64_t r =
	    reg_read(cpu, in->rm, in->size) & (in->op ? in->imm : reg_read(cpu, in->reg, in->size));
	lf_set(cpu, LF_LOGIC, in->size, r & size_mask(in->size), 0, 0);
	dispatch_next(cpu, in);
}

HANDLER(op_test_m)
{
	uint64_t r = emu_ld(cpu, in, emu_ea(cpu, in), in->size) &
		     (in->op ? in->imm : reg_read(cpu, in->reg, in->size));
	lf_set(cpu, LF_LOGIC, in->size, r & size_mask(in->size), 0, 0);
	dispatch_next(cpu, in);
}

/* op: 0 INC, 1 DEC, 2 NOT, 3 NEG */
static inline uint64_t unary(struct emu_cpu *cpu, unsigned op, unsigned size, uint64_t a)
{
	uint64_t mask = size_mask(size), r;
	uint32_t cf;
	switch (op) {
	case 0:
		cf = flag_cf(cpu);
		r = (a + 1) & mask;
		lf_set(cpu, LF_INC, size, r, a & mask, 1);
		cpu->lf_cf = cf;
		return r;
	case 1:
		cf = flag_cf(cpu);
		r = (a - 1) & mask;
		lf_set(cpu, LF_DEC, size, r, a & mask, 1);
		cpu->lf_cf = cf;
		return r;
	case 2:
		return ~a & mask;
	default:
		r = (0 - a) & mask;
		lf_set(cpu, LF_SUB, size, r, 0, a & mask);
		return r;
	}
}

HANDLER(op_unary_r)
{
	reg_write(cpu, in->rm, unary(cpu, in->op, in->size, reg_read(cpu, in->rm, in->size)),
		  in->size);
	dispatch_next(cpu, in);
}

HANDLER(op_unary_m)
{
	void *p = emu_mem(cpu, in, emu_ea(cpu, in), in->size, true);
	emu_st_ptr(p, unary(cpu, in->op, in->size, emu_ld_ptr(p, in->size)), in->size);
	dispatch_next(cpu, in);
}

HANDLER(op_inc64_r)
{
	uint64_t a = cpu->gpr[in->rm];
	uint32_t cf = flag_cf(cpu);
	lf_set(cpu, LF_INC, 8, a + 1, a, 1);
	cpu->lf_cf = cf;
	cpu->gpr[in->rm] = a + 1;
	dispatch_next(cpu, in);
}

HANDLER(op_dec64_r)
{
	uint64_t a = cpu->gpr[in->rm];
	uint32_t cf = flag_cf(cpu);
	lf_set(cpu, LF_DEC, 8, a - 1, a, 1);
	cpu->lf_cf = cf;
	cpu->gpr[in->rm] = a - 1;
	dispatch_next(cpu, in);
}

/* --- shifts and rotates (group 2) --- */

static void set_szp(struct emu_cpu *cpu, uint64_t r, unsigned size)
{
	uint64_t f = cpu->rflags & ~(uint64_t)(FL_SF | FL_ZF | FL_PF);
	r &= size_mask(size);
	if (!r)
		f |= FL_ZF;
	if (r >> (size * 8 - 1))
		f |= FL_SF;
	if (parity8(r))
		f |= FL_PF;
	cpu->rflags = f;
}

static inline void set_flag(struct emu_cpu *cpu, uint64_t bit, bool v)
{
	if (v)
		cpu->rflags |= bit;
	else
		cpu->rflags &= ~bit;
}

/* SHL/SHR/SAR with lazy flags; c is the masked count, non-zero. Counts up to 31 on 8- and
 * 16-bit operands shift everything out (the result is 0 or the sign). */
static inline uint64_t shift_lazy(struct emu_cpu *cpu, unsigned op, unsigned size, uint64_t a,
				  unsigned c)
{
	uint64_t r;
	switch (op) {
	case 5:
		r = a >> c;
		lf_set(cpu, LF_SHR, size, r, a, c);
		return r;
	case 7:
		r = (uint64_t)(sext(a, size) >> c) & size_mask(size);
		lf_set(cpu, LF_SAR, size, r, a, c);
		return r;
	default:
		r = (a << c) & size_mask(size);
		lf_set(cpu, LF_SHL, size, r, a, c);
		return r;
	}
}

/* op: ModRM.reg (0 ROL 1 ROR 2 RCL 3 RCR 4 SHL 5 SHR 6 SAL 7 SAR) */
static uint64_t shift(struct emu_cpu *cpu, unsigned op, unsigned size, uint64_t a, unsigned count)
{
	unsigned w = size * 8;
	uint64_t mask = size_mask(size), sign = 1ull << (w - 1), r;
	unsigned c = count & (size == 8 ? 63 : 31), i;
	bool cf;

	a &= mask;
	if (!c)
		return a;
	if (op >= 4)
		return shift_lazy(cpu, op, size, a, c);
	flags_eager(cpu);
	switch (op) {
	case 0: /* ROL */
		i = c % w;
		r = i ? ((a << i) | (a >> (w - i))) & mask : a;
		set_flag(cpu, FL_CF, r & 1);
		set_flag(cpu, FL_OF, !!(r & sign) ^ (r & 1));
		return r;
	case 1: /* ROR */
		i = c % w;
		r = i ? ((a >> i) | (a << (w - i))) & mask : a;
		set_flag(cpu, FL_CF, r & sign);
		set_flag(cpu, FL_OF, !!(r & sign) ^ !!(r & (sign >> 1)));
		return r;
	case 2: /* RCL */
		if (size < 4)
			c %= w + 1;
		cf = cpu->rflags & FL_CF;
		r = a;
		for (i = 0; i < c; i++) {
			bool out = r & sign;
			r = ((r << 1) | cf) & mask;
			cf = out;
		}
		set_flag(cpu, FL_CF, cf);
		set_flag(cpu, FL_OF, !!(r & sign) ^ cf);
		return r;
	case 3: /* RCR */
		if (size < 4)
			c %= w + 1;
		cf = cpu->rflags & FL_CF;
		r = a;
		for (i = 0; i < c; i++) {
			bool out = r & 1;
			r = (r >> 1) | (cf ? sign : 0);
			cf = out;
		}
		set_flag(cpu, FL_CF, cf);
		set_flag(cpu, FL_OF, !!(r & sign) ^ !!(r & (sign >> 1)));
		return r;
	default:
		return 0; /* shifts are handled by the caller */
	}
}

static unsigned shift_count(const struct emu_cpu *cpu, const struct insn *in)
{
	return in->op2 == 1   ? 1
	       : in->op2 == 2 ? (unsigned)(cpu->gpr[EMU_RCX] & 0xff)
			      : (unsigned)(in->imm & 0xff);
}

HANDLER(op_shift_r)
{
	uint64_t r =
	    shift(cpu, in->op, in->size, reg_read(cpu, in->rm, in->size), shift_count(cpu, in));
	reg_write(cpu, in->rm, r, in->size);
	dispatch_next(cpu, in);
}

HANDLER(op_shift64_ri)
{
	unsigned c = (unsigned)in->imm & 63;
	if (c)
		cpu->gpr[in->rm] = shift_lazy(cpu, in->op, 8, cpu->gpr[in->rm], c);
	dispatch_next(cpu, in);
}

HANDLER(op_shift_m)
{
	void *p = emu_mem(cpu, in, emu_ea(cpu, in), in->size, true);
	uint64_t r = shift(cpu, in->op, in->size, emu_ld_ptr(p, in->size), shift_count(cpu, in));
	emu_st_ptr(p, r, in->size);
	dispatch_next(cpu, in);
}

/* SHLD/SHRD: op 0 = left, 1 = right; op2 1 = count in CL */
static uint64_t shiftd(struct emu_cpu *cpu, unsigned right, unsigned size, uint64_t a, uint64_t b,
		       unsigned count)
{
	unsigned w = size * 8, c = count & (size == 8 ? 63 : 31);
	uint64_t mask = size_mask(size), sign = 1ull << (w - 1), r;
	bool cf;
	a &= mask;
	b &= mask;
	if (!c)
		return a;
	flags_eager(cpu);
	if (size == 2 && c > 16) {
		/* undefined result; model a 48-bit funnel as common CPUs do */
		unsigned __int128 v;
		if (!right) {
			v = ((unsigned __int128)a << 32) | (b << 16) | a;
			r = (uint64_t)(v >> (48 - c)) & mask;
			cf = (uint64_t)(v >> (48 - c)) >> 16 & 1;
		} else {
			v = ((unsigned __int128)a << 32) | (b << 16) | a;
			v = ((unsigned __int128)a) | ((unsigned __int128)b << 16) |
			    ((unsigned __int128)a << 32);
			r = (uint64_t)(v >> c) & mask;
			cf = (uint64_t)(v >> (c - 1)) & 1;
		}
	} else if (!right) {
		unsigned __int128 v = ((unsigned __int128)a << w) | b;
		r = (uint64_t)(v >> (w - c)) & mask;
		cf = (a >> (w - c)) & 1;
	} else {
		unsigned __int128 v = ((unsigned __int128)b << w) | a;
		r = (uint64_t)(v >> c) & mask;
		cf = (a >> (c - 1)) & 1;
	}
	set_flag(cpu, FL_CF, cf);
	set_flag(cpu, FL_OF, !!((r ^ a) & sign));
	set_szp(cpu, r, size);
	cpu->rflags &= ~(uint64_t)FL_AF;
	return r;
}

HANDLER(op_shiftd)
{
	unsigned c = in->op2 ? (unsigned)(cpu->gpr[EMU_RCX] & 0xff) : (unsigned)(in->imm & 0xff);
	uint64_t b = reg_read(cpu, in->reg, in->size);
	if (in->mem) {
		void *p = emu_mem(cpu, in, emu_ea(cpu, in), in->size, true);
		emu_st_ptr(p, shiftd(cpu, in->op, in->size, emu_ld_ptr(p, in->size), b, c),
			   in->size);
	} else {
		reg_write(cpu, in->rm,
			  shiftd(cpu, in->op, in->size, reg_read(cpu, in->rm, in->size), b, c),
			  in->size);
	}
	dispatch_next(cpu, in);
}

/* --- multiply and divide --- */

static void mul_flags(struct emu_cpu *cpu, bool overflow, uint64_t low, unsigned size)
{
	flags_eager(cpu);
	set_flag(cpu, FL_CF, overflow);
	set_flag(cpu, FL_OF, overflow);
	set_szp(cpu, low, size);
	cpu->rflags &= ~(uint64_t)FL_AF;
}

static uint64_t rd_e(struct emu_cpu *cpu, const struct insn *in, unsigned size)
{
	if (in->mem)
		return emu_ld(cpu, in, emu_ea(cpu, in), size);
	return reg_read(cpu, in->rm, size);
}

/* F6/F7 /4../7: op 4 MUL 5 IMUL 6 DIV 7 IDIV */
HANDLER(op_muldiv)
{
	unsigned size = in->size, w = size * 8;
	uint64_t src = rd_e(cpu, in, size), mask = size_mask(size);
	uint64_t a = cpu->gpr[EMU_RAX] & mask, d = cpu->gpr[EMU_RDX] & mask;
	unsigned __int128 ua =
	    size == 1 ? (cpu->gpr[EMU_RAX] & 0xffff) : (((unsigned __int128)d << w) | a);

	switch (in->op) {
	case 4: {
		unsigned __int128 p = (unsigned __int128)a * src;
		uint64_t lo = (uint64_t)p & mask, hi = (uint64_t)(p >> w) & mask;
		if (size == 1) {
			reg_write(cpu, EMU_RAX, (uint64_t)p & 0xffff, 2);
		} else {
			reg_write(cpu, EMU_RAX, lo, size);
			reg_write(cpu, EMU_RDX, hi, size);
		}
		mul_flags(cpu, hi != 0, lo, size);
		break;
	}
	case 5: {
		__int128 p = (__int128)sext(a, size) * sext(src, size);
		uint64_t lo = (uint64_t)p & mask, hi = (uint64_t)(p >> w) & mask;
		if (size == 1)
			reg_write(cpu, EMU_RAX, (uint64_t)p & 0xffff, 2);
		else {
			reg_write(cpu, EMU_RAX, lo, size);
			reg_write(cpu, EMU_RDX, hi, size);
		}
		mul_flags(cpu, p != (__int128)sext(lo, size), lo, size);
		break;
	}
	case 6: {
		unsigned __int128 q, r;
		if (!src)
			emu_raise(cpu, in, EXC_DE, 0, false);
		q = ua / src;
		r = ua % src;
		if (q > mask)
			emu_raise(cpu, in, EXC_DE, 0, false);
		if (size == 1) {
			reg_write(cpu, EMU_RAX, (uint64_t)q | ((uint64_t)r << 8), 2);
		} else {
			reg_write(cpu, EMU_RAX, (uint64_t)q, size);
			reg_write(cpu, EMU_RDX, (uint64_t)r, size);
		}
		break;
	}
	default: {
		__int128 n, s = sext(src, size), q, r;
		if (size == 1)
			n = (int16_t)ua;
		else if (size == 8)
			n = (__int128)ua;
		else
			n = (__int128)(int64_t)(uint64_t)((uint64_t)ua << (64 - 2 * w)) >>
			    (64 - 2 * w);
		if (!s)
			emu_raise(cpu, in, EXC_DE, 0, false);
		if (size == 8 && s == -1 && n == (__int128)((unsigned __int128)1 << 127))
			emu_raise(cpu, in, EXC_DE, 0, false);
		q = n / s;
		r = n % s;
		if (q != (__int128)sext((uint64_t)q & mask, size))
			emu_raise(cpu, in, EXC_DE, 0, false);
		if (size == 1) {
			reg_write(cpu, EMU_RAX, ((uint64_t)q & 0xff) | (((uint64_t)r & 0xff) << 8),
				  2);
		} else {
			reg_write(cpu, EMU_RAX, (uint64_t)q, size);
			reg_write(cpu, EMU_RDX, (uint64_t)r, size);
		}
		break;
	}
	}
	dispatch_next(cpu, in);
}

/* IMUL Gv, Ev (op 0) and IMUL Gv, Ev, imm (op 1) */
HANDLER(op_imul2)
{
	unsigned size = in->size;
	uint64_t src = rd_e(cpu, in, size);
	int64_t b = in->op ? (int64_t)in->imm : sext(reg_read(cpu, in->reg, size), size);
	__int128 p = (__int128)sext(src, size) * sext((uint64_t)b, size);
	uint64_t lo = (uint64_t)p & size_mask(size);
	reg_write(cpu, in->reg, lo, size);
	mul_flags(cpu, p != (__int128)sext(lo, size), lo, size);
	dispatch_next(cpu, in);
}

/* --- data movement --- */

HANDLER(op_mov64_rr)
{
	cpu->gpr[in->rm] = cpu->gpr[in->reg];
	dispatch_next(cpu, in);
}

HANDLER(op_mov32_rr)
{
	cpu->gpr[in->rm] = (uint32_t)cpu->gpr[in->reg];
	dispatch_next(cpu, in);
}

HANDLER(op_mov_rr)
{
	reg_write(cpu, in->rm, reg_read(cpu, in->reg, in->size), in->size);
	dispatch_next(cpu, in);
}

HANDLER(op_mov64_rm)
{
	cpu->gpr[in->reg] = emu_ld(cpu, in, emu_ea(cpu, in), 8);
	dispatch_next(cpu, in);
}

HANDLER(op_mov_rm)
{
	reg_write(cpu, in->reg, emu_ld(cpu, in, emu_ea(cpu, in), in->size), in->size);
	dispatch_next(cpu, in);
}

HANDLER(op_mov64_mr)
{
	emu_st(cpu, in, emu_ea(cpu, in), cpu->gpr[in->reg], 8);
	dispatch_next(cpu, in);
}

HANDLER(op_mov_mr)
{
	emu_st(cpu, in, emu_ea(cpu, in), reg_read(cpu, in->reg, in->size), in->size);
	dispatch_next(cpu, in);
}

HANDLER(op_mov_ri)
{
	reg_write(cpu, in->rm, in->imm, in->size);
	dispatch_next(cpu, in);
}

HANDLER(op_mov_mi)
{
	emu_st(cpu, in, emu_ea(cpu, in), in->imm, in->size);
	dispatch_next(cpu, in);
}

/* A0-A3: moffs forms; op 0 = load to rAX, 1 = store */
HANDLER(op_mov_moffs)
{
	uint64_t a = in->imm;
	if (in->asize == 4)
		a = (uint32_t)a;
	if (in->seg >= EMU_FS)
		a += cpu->seg[in->seg].base;
	a = emu_canon(cpu, in, a, false);
	if (in->op)
		emu_st(cpu, in, a, cpu->gpr[EMU_RAX], in->size);
	else
		reg_write(cpu, EMU_RAX, emu_ld(cpu, in, a, in->size), in->size);
	dispatch_next(cpu, in);
}

/* MOVZX/MOVSX/MOVSXD: op2 = source size, op 1 = sign-extend */
HANDLER(op_movx)
{
	uint64_t v = rd_e(cpu, in, in->op2);
	if (in->op)
		v = (uint64_t)sext(v, in->op2);
	reg_write(cpu, in->reg, v, in->size);
	dispatch_next(cpu, in);
}

HANDLER(op_lea)
{
	reg_write(cpu, in->reg, lea_addr(cpu, in), in->size);
	dispatch_next(cpu, in);
}

HANDLER(op_lea64_bd)
{
	cpu->gpr[in->reg] = cpu->gpr[in->base] + (uint64_t)(int64_t)in->disp;
	dispatch_next(cpu, in);
}

HANDLER(op_xchg)
{
	uint64_t b = reg_read(cpu, in->reg, in->size);
	if (in->mem) {
		void *p = emu_mem(cpu, in, emu_ea(cpu, in), in->size, true);
		uint64_t a = emu_ld_ptr(p, in->size);
		emu_st_ptr(p, b, in->size);
		reg_write(cpu, in->reg, a, in->size);
	} else {
		uint64_t a = reg_read(cpu, in->rm, in->size);
		reg_write(cpu, in->rm, b, in->size);
		reg_write(cpu, in->reg, a, in->size);
	}
	dispatch_next(cpu, in);
}

HANDLER(op_cmov)
{
	uint64_t v = rd_e(cpu, in, in->size);
	if (emu_cond(cpu, in->op2))
		reg_write(cpu, in->reg, v, in->size);
	else if (in->size == 4)
		cpu->gpr[in->reg] = (uint32_t)cpu->gpr[in->reg];
	dispatch_next(cpu, in);
}

HANDLER(op_setcc)
{
	uint64_t v = emu_cond(cpu, in->op2);
	if (in->mem)
		emu_st(cpu, in, emu_ea(cpu, in), v, 1);
	else
		reg_write(cpu, in->rm, v, 1);
	dispatch_next(cpu, in);
}

HANDLER(op_cbw)
{
	/* op 0: CBW/CWDE/CDQE; op 1: CWD/CDQ/CQO */
	unsigned size = in->size;
	uint64_t a = cpu->gpr[EMU_RAX];
	if (!in->op) {
		reg_write(cpu, EMU_RAX, (uint64_t)sext(a, size / 2), size);
	} else {
		uint64_t s = sext(a, size) < 0 ? ~0ull : 0;
		reg_write(cpu, EMU_RDX, s, size);
	}
	dispatch_next(cpu, in);
}

HANDLER(op_bswap)
{
	if (in->size == 8)
		cpu->gpr[in->rm] = __builtin_bswap64(cpu->gpr[in->rm]);
	else if (in->size == 4)
		cpu->gpr[in->rm] = __builtin_bswap32((uint32_t)cpu->gpr[in->rm]);
	else
		reg_write(cpu, in->rm, 0, 2); /* undefined; zero as current CPUs do */
	dispatch_next(cpu, in);
}

static uint64_t bswap_n(uint64_t v, unsigned size)
{
	switch (size) {
	case 2:
		return __builtin_bswap16((uint16_t)v);
	case 4:
		return __builtin_bswap32((uint32_t)v);
	default:
		return __builtin_bswap64(v);
	}
}

/* MOVBE: op 0 = load into reg, 1 = store */
HANDLER(op_movbe)
{
	uint64_t a = emu_ea(cpu, in);
	if (in->op)
		emu_st(cpu, in, a, bswap_n(reg_read(cpu, in->reg, in->size), in->size), in->size);
	else
		reg_write(cpu, in->reg, bswap_n(emu_ld(cpu, in, a, in->size), in->size), in->size);
	dispatch_next(cpu, in);
}

HANDLER(op_xlat)
{
	uint64_t a = cpu->gpr[EMU_RBX] + (cpu->gpr[EMU_RAX] & 0xff);
	if (in->asize == 4)
		a = (uint32_t)a;
	if (in->seg >= EMU_FS)
		a += cpu->seg[in->seg].base;
	reg_write(cpu, EMU_RAX, emu_ld(cpu, in, emu_canon(cpu, in, a, false), 1), 1);
	dispatch_next(cpu, in);
}

/* --- bit operations --- */

/* BT/BTS/BTR/BTC: op 0..3; op2 1 = bit offset from imm */
HANDLER(op_bt)
{
	unsigned size = in->size, w = size * 8;
	int64_t off =
	    in->op2 ? (int64_t)(in->imm & (w - 1)) : sext(reg_read(cpu, in->reg, size), size);
	uint64_t v, bit;
	void *p = NULL;
	if (in->mem) {
		uint64_t a = emu_ea(cpu, in);
		if (!in->op2) {
			int64_t q = off >> (size == 8 ? 6 : size == 4 ? 5 : 4);
			a += (uint64_t)(q * (int64_t)size);
			if (in->asize == 4)
				a = (uint32_t)a;
			a = emu_canon(cpu, in, a, false);
		}
		p = emu_mem(cpu, in, a, size, in->op != 0);
		v = emu_ld_ptr(p, size);
	} else {
		v = reg_read(cpu, in->rm, size);
	}
	bit = 1ull << ((uint64_t)off & (w - 1));
	flags_eager(cpu);
	set_flag(cpu, FL_CF, v & bit);
	switch (in->op) {
	case 1:
		v |= bit;
		break;
	case 2:
		v &= ~bit;
		break;
	case 3:
		v ^= bit;
		break;
	default:
		dispatch_next(cpu, in);
		return;
	}
	if (p)
		emu_st_ptr(p, v, size);
	else
		reg_write(cpu, in->rm, v, size);
	dispatch_next(cpu, in);
}

/* op 0 BSF, 1 BSR, 2 TZCNT, 3 LZCNT, 4 POPCNT */
HANDLER(op_bitscan)
{
	unsigned size = in->size, w = size * 8;
	uint64_t v = rd_e(cpu, in, size), r;
	flags_eager(cpu);
	switch (in->op) {
	case 0:
	case 1:
		if (!v) {
			cpu->rflags |= FL_ZF;
			dispatch_next(cpu, in);
			return;
		}
		r = in->op == 0 ? (uint64_t)__builtin_ctzll(v)
				: (uint64_t)(63 - __builtin_clzll(v));
		cpu->rflags &= ~(uint64_t)FL_ZF;
		reg_write(cpu, in->reg, r, size);
		break;
	case 2:
	case 3:
		if (!v)
			r = w;
		else if (in->op == 2)
			r = (uint64_t)__builtin_ctzll(v);
		else
			r = (uint64_t)(__builtin_clzll(v) - (64 - (int)w));
		set_flag(cpu, FL_CF, !v);
		set_flag(cpu, FL_ZF, !r);
		reg_write(cpu, in->reg, r, size);
		break;
	default:
		r = (uint64_t)__builtin_popcountll(v);
		cpu->rflags &= ~(uint64_t)FL_ARITH;
		set_flag(cpu, FL_ZF, !v);
		reg_write(cpu, in->reg, r, size);
		break;
	}
	dispatch_next(cpu, in);
}

/* --- exchange and compare --- */

HANDLER(op_xadd)
{
	unsigned size = in->size;
	uint64_t b = reg_read(cpu, in->reg, size), a, r;
	if (in->mem) {
		void *p = emu_mem(cpu, in, emu_ea(cpu, in), size, true);
		a = emu_ld_ptr(p, size);
		r = alu(cpu, ALU_ADD, size, a, b);
		emu_st_ptr(p, r, size);
		reg_write(cpu, in->reg, a, size);
	} else {
		a = reg_read(cpu, in->rm, size);
		r = alu(cpu, ALU_ADD, size, a, b);
		reg_write(cpu, in->reg, a, size);
		reg_write(cpu, in->rm, r, size);
	}
	dispatch_next(cpu, in);
}

HANDLER(op_cmpxchg)
{
	unsigned size = in->size;
	uint64_t acc = reg_read(cpu, EMU_RAX, size), src = reg_read(cpu, in->reg, size), d;
	if (in->mem) {
		void *p = emu_mem(cpu, in, emu_ea(cpu, in), size, true);
		d = emu_ld_ptr(p, size);
		alu(cpu, ALU_CMP, size, acc, d);
		if (acc == d) {
			emu_st_ptr(p, src, size);
		} else {
			emu_st_ptr(p, d, size);
			reg_write(cpu, EMU_RAX, d, size);
		}
	} else {
		d = reg_read(cpu, in->rm, size);
		alu(cpu, ALU_CMP, size, acc, d);
		if (acc == d)
			reg_write(cpu, in->rm, src, size);
		else
			reg_write(cpu, EMU_RAX, d, size);
	}
	dispatch_next(cpu, in);
}

/* CMPXCHG8B / CMPXCHG16B (REX.W) */
HANDLER(op_cmpxchg8b)
{
	uint64_t a = emu_ea(cpu, in);
	if (in->size == 8) {
		uint64_t lo, hi;
		uint8_t *p;
		if (a & 15)
			emu_raise(cpu, in, EXC_GP, 0, true);
		p = emu_mem(cpu, in, a, 16, true);
		memcpy(&lo, p, 8);
		memcpy(&hi, p + 8, 8);
		flags_eager(cpu);
		if (lo == cpu->gpr[EMU_RAX] && hi == cpu->gpr[EMU_RDX]) {
			memcpy(p, &cpu->gpr[EMU_RBX], 8);
			memcpy(p + 8, &cpu->gpr[EMU_RCX], 8);
			cpu->rflags |= FL_ZF;
		} else {
			cpu->gpr[EMU_RAX] = lo;
			cpu->gpr[EMU_RDX] = hi;
			cpu->rflags &= ~(uint64_t)FL_ZF;
		}
	} else {
		uint8_t *p = emu_mem(cpu, in, a, 8, true);
		uint64_t v, cmp = (cpu->gpr[EMU_RDX] << 32) | (uint32_t)cpu->gpr[EMU_RAX];
		memcpy(&v, p, 8);
		flags_eager(cpu);
		if (v == cmp) {
			uint64_t n = (cpu->gpr[EMU_RCX] << 32) | (uint32_t)cpu->gpr[EMU_RBX];
			memcpy(p, &n, 8);
			cpu->rflags |= FL_ZF;
		} else {
			cpu->gpr[EMU_RAX] = (uint32_t)v;
			cpu->gpr[EMU_RDX] = v >> 32;
			cpu->rflags &= ~(uint64_t)FL_ZF;
		}
	}
	dispatch_next(cpu, in);
}

/* --- stack --- */

static inline void *push_slot(struct emu_cpu *cpu, const struct insn *in, unsigned size,
			      uint64_t *new_rsp)
{
	uint64_t a = cpu->gpr[EMU_RSP] - size;
	*new_rsp = a;
	return emu_mem(cpu, in, emu_canon(cpu, in, a, true), size, true);
}

HANDLER(op_push_r)
{
	uint64_t sp;
	void *p = push_slot(cpu, in, in->size, &sp);
	emu_st_ptr(p, cpu->gpr[in->rm], in->size);
	cpu->gpr[EMU_RSP] = sp;
	dispatch_next(cpu, in);
}

HANDLER(op_push_i)
{
	uint64_t sp;
	void *p = push_slot(cpu, in, in->size, &sp);
	emu_st_ptr(p, in->imm, in->size);
	cpu->gpr[EMU_RSP] = sp;
	dispatch_next(cpu, in);
}

HANDLER(op_push_m)
{
	uint64_t v = emu_ld(cpu, in, emu_ea(cpu, in), in->size), sp;
	void *p = push_slot(cpu, in, in->size, &sp);
	emu_st_ptr(p, v, in->size);
	cpu->gpr[EMU_RSP] = sp;
	dispatch_next(cpu, in);
}

static inline uint64_t pop_peek(struct emu_cpu *cpu, const struct insn *in, unsigned size)
{
	return emu_ld(cpu, in, emu_canon(cpu, in, cpu->gpr[EMU_RSP], true), size);
}

HANDLER(op_pop_r)
{
	uint64_t v = pop_peek(cpu, in, in->size);
	cpu->gpr[EMU_RSP] += in->size;
	reg_write(cpu, in->rm, v, in->size);
	dispatch_next(cpu, in);
}

HANDLER(op_pop_m)
{
	uint64_t v = pop_peek(cpu, in, in->size), old = cpu->gpr[EMU_RSP], addr;
	void *p;
	/* the destination address is computed with RSP already incremented; undo that
	 * before anything can fault so the fault is precise */
	cpu->gpr[EMU_RSP] = old + in->size;
	addr = lea_addr(cpu, in);
	cpu->gpr[EMU_RSP] = old;
	if (in->seg >= EMU_FS)
		addr += cpu->seg[in->seg].base;
	p = emu_mem(cpu, in, emu_canon(cpu, in, addr, false), in->size, true);
	emu_st_ptr(p, v, in->size);
	cpu->gpr[EMU_RSP] = old + in->size;
	dispatch_next(cpu, in);
}

HANDLER(op_push_sreg)
{
	uint64_t sp;
	void *p = push_slot(cpu, in, in->size, &sp);
	emu_st_ptr(p, cpu->seg[in->op].selector, in->size);
	cpu->gpr[EMU_RSP] = sp;
	dispatch_next(cpu, in);
}

HANDLER(op_pushf)
{
	uint64_t sp;
	void *p = push_slot(cpu, in, in->size, &sp);
	emu_st_ptr(p, emu_flags_get(cpu) & ~0x30000ull, in->size); /* VM, RF read as 0 */
	cpu->gpr[EMU_RSP] = sp;
	dispatch_next(cpu, in);
}

HANDLER(op_popf)
{
	uint64_t v = pop_peek(cpu, in, in->size), old = emu_flags_get(cpu);
	uint64_t chg = FL_ARITH | FL_TF | FL_DF | 0x4000 /* NT */ | 0x40000 /* AC */ | 0x200000;
	if (cpl(cpu) == 0)
		chg |= FL_IF | 0x3000;
	else if (cpl(cpu) <= ((old >> 12) & 3))
		chg |= FL_IF;
	if (in->size == 2)
		chg &= 0xffff;
	cpu->gpr[EMU_RSP] += in->size;
	emu_flags_set(cpu, (old & ~chg) | (v & chg));
	dispatch_next(cpu, in);
}

HANDLER(op_lahf)
{
	reg_write(cpu, REG_AH, emu_flags_get(cpu) & 0xd7, 1);
	dispatch_next(cpu, in);
}

HANDLER(op_sahf)
{
	uint64_t f = emu_flags_get(cpu);
	uint64_t ah = (cpu->gpr[EMU_RAX] >> 8) & 0xd5;
	emu_flags_set(cpu, (f & ~0xd5ull) | ah);
	dispatch_next(cpu, in);
}

/* CLC STC CMC CLD STD CLI STI: op selects */
HANDLER(op_flagop)
{
	flags_eager(cpu);
	switch (in->op) {
	case 0xf5:
		cpu->rflags ^= FL_CF;
		break;
	case 0xf8:
		cpu->rflags &= ~(uint64_t)FL_CF;
		break;
	case 0xf9:
		cpu->rflags |= FL_CF;
		break;
	case 0xfa:
	case 0xfb:
		if (cpl(cpu) > ((cpu->rflags >> 12) & 3))
			emu_raise(cpu, in, EXC_GP, 0, true);
		set_flag(cpu, FL_IF, in->op == 0xfb);
		break;
	case 0xfc:
		cpu->rflags &= ~(uint64_t)FL_DF;
		break;
	default:
		cpu->rflags |= FL_DF;
		break;
	}
	dispatch_next(cpu, in);
}

HANDLER(op_enter)
{
	unsigned size = in->size, level = (unsigned)(in->imm >> 16) & 31, i;
	uint64_t alloc = in->imm & 0xffff, rsp = cpu->gpr[EMU_RSP], rbp = cpu->gpr[EMU_RBP];
	uint64_t frame = rsp - size, sp = frame;
	/* check every access first */
	emu_mem(cpu, in, emu_canon(cpu, in, frame, true), size, true);
	for (i = 1; i < level; i++) {
		emu_mem(cpu, in, emu_canon(cpu, in, rbp - i * size, true), size, false);
		emu_mem(cpu, in, emu_canon(cpu, in, frame - i * size, true), size, true);
	}
	if (level)
		emu_mem(cpu, in, emu_canon(cpu, in, frame - level * size, true), size, true);
	emu_canon(cpu, in, frame - level * size - alloc, true);
	emu_st(cpu, in, frame, rbp, size);
	for (i = 1; i < level; i++) {
		sp -= size;
		emu_st(cpu, in, sp, emu_ld(cpu, in, rbp - i * size, size), size);
	}
	if (level) {
		sp -= size;
		emu_st(cpu, in, sp, frame, size);
	}
	reg_write(cpu, EMU_RBP, frame, size);
	cpu->gpr[EMU_RSP] = sp - alloc;
	dispatch_next(cpu, in);
}

HANDLER(op_leave)
{
	uint64_t v = emu_ld(cpu, in, emu_canon(cpu, in, cpu->gpr[EMU_RBP], true), in->size);
	cpu->gpr[EMU_RSP] = cpu->gpr[EMU_RBP] + in->size;
	reg_write(cpu, EMU_RBP, v, in->size);
	dispatch_next(cpu, in);
}

/* --- control transfer --- */

/* A branch to a non-canonical address faults at the branch (#GP(0)). */
static inline uint64_t target(struct emu_cpu *cpu, const struct insn *in, uint64_t t)
{
	return emu_canon(cpu, in, t, false);
}

HANDLER(op_jmp)
{
	cpu->rip = target(cpu, in, in->imm);
}

HANDLER(op_jcc)
{
	cpu->rip = emu_cond(cpu, in->op2) ? target(cpu, in, in->imm) : next_rip(in);
}

HANDLER(op_jmp_e)
{
	uint64_t t = target(cpu, in, rd_e(cpu, in, 8));
	cpu->rip = t;
}

HANDLER(op_call)
{
	uint64_t sp;
	void *p;
	target(cpu, in, in->imm);
	p = push_slot(cpu, in, 8, &sp);
	emu_st_ptr(p, next_rip(in), 8);
	cpu->gpr[EMU_RSP] = sp;
	cpu->rip = in->imm;
}

HANDLER(op_call_e)
{
	uint64_t t = target(cpu, in, rd_e(cpu, in, 8)), sp;
	void *p = push_slot(cpu, in, 8, &sp);
	emu_st_ptr(p, next_rip(in), 8);
	cpu->gpr[EMU_RSP] = sp;
	cpu->rip = t;
}

HANDLER(op_ret)
{
	uint64_t t = target(cpu, in, pop_peek(cpu, in, 8));
	cpu->gpr[EMU_RSP] += 8 + in->imm;
	cpu->rip = t;
}

/* LOOPNE LOOPE LOOP JRCXZ: op 0..3 */
HANDLER(op_loop)
{
	uint64_t mask = in->asize == 4 ? 0xffffffffull : ~0ull;
	uint64_t c = cpu->gpr[EMU_RCX] & mask;
	bool take;
	if (in->op == 3) {
		take = !c;
	} else {
		c = (c - 1) & mask;
		if (in->asize == 4)
			cpu->gpr[EMU_RCX] = c;
		else
			cpu->gpr[EMU_RCX] = c;
		take = c != 0;
		if (in->op == 0)
			take = take && !emu_cond(cpu, 4);
		else if (in->op == 1)
			take = take && emu_cond(cpu, 4);
	}
	cpu->rip = take ? target(cpu, in, in->imm) : next_rip(in);
}

/* --- string operations --- */

static inline uint64_t str_addr(struct emu_cpu *cpu, const struct insn *in, unsigned reg, bool src)
{
	uint64_t a = cpu->gpr[reg];
	if (in->asize == 4)
		a = (uint32_t)a;
	if (src && in->seg >= EMU_FS)
		a += cpu->seg[in->seg].base;
	return emu_canon(cpu, in, a, false);
}

static inline void str_adv(struct emu_cpu *cpu, const struct insn *in, unsigned reg, int64_t delta)
{
	if (in->asize == 4)
		cpu->gpr[reg] = (uint32_t)(cpu->gpr[reg] + (uint64_t)delta);
	else
		cpu->gpr[reg] += (uint64_t)delta;
}

static inline uint64_t rcx_val(const struct emu_cpu *cpu, const struct insn *in)
{
	return in->asize == 4 ? (uint32_t)cpu->gpr[EMU_RCX] : cpu->gpr[EMU_RCX];
}

static inline void rcx_dec(struct emu_cpu *cpu, const struct insn *in)
{
	str_adv(cpu, in, EMU_RCX, -1);
}

/* One iteration of op (0xa4 MOVS, a6 CMPS, aa STOS, ac LODS, ae SCAS). Returns whether
 * REPE/REPNE stop after it. */
static bool str_once(struct emu_cpu *cpu, const struct insn *in)
{
	unsigned size = in->size;
	int64_t d = (cpu->rflags & FL_DF) ? -(int64_t)size : (int64_t)size;
	uint64_t v, w;
	switch (in->op) {
	case 0xa4: {
		const void *s = emu_mem(cpu, in, str_addr(cpu, in, EMU_RSI, true), size, false);
		void *t = emu_mem(cpu, in, str_addr(cpu, in, EMU_RDI, false), size, true);
		memmove(t, s, size);
		str_adv(cpu, in, EMU_RSI, d);
		str_adv(cpu, in, EMU_RDI, d);
		return false;
	}
	case 0xa6:
		v = emu_ld(cpu, in, str_addr(cpu, in, EMU_RSI, true), size);
		w = emu_ld(cpu, in, str_addr(cpu, in, EMU_RDI, false), size);
		alu(cpu, ALU_CMP, size, v, w);
		str_adv(cpu, in, EMU_RSI, d);
		str_adv(cpu, in, EMU_RDI, d);
		return in->rep == 0xf3 ? v != w : v == w;
	case 0xaa:
		emu_st(cpu, in, str_addr(cpu, in, EMU_RDI, false), cpu->gpr[EMU_RAX], size);
		str_adv(cpu, in, EMU_RDI, d);
		return false;
	case 0xac:
		v = emu_ld(cpu, in, str_addr(cpu, in, EMU_RSI, true), size);
		reg_write(cpu, EMU_RAX, v, size);
		str_adv(cpu, in, EMU_RSI, d);
		return false;
	default:
		v = reg_read(cpu, EMU_RAX, size);
		w = emu_ld(cpu, in, str_addr(cpu, in, EMU_RDI, false), size);
		alu(cpu, ALU_CMP, size, v, w);
		str_adv(cpu, in, EMU_RDI, d);
		return in->rep == 0xf3 ? v != w : v == w;
	}
}

/* REP MOVS/STOS forward, up to the next page boundary of either side: one bulk copy.
 * Returns the elements done (0: do one iteration the slow way). */
static uint64_t str_bulk(struct emu_cpu *cpu, const struct insn *in, uint64_t n)
{
	unsigned size = in->size;
	uint64_t di = str_addr(cpu, in, EMU_RDI, false), bytes, elems;
	bytes = 4096 - (di & 4095);
	if (in->op == 0xa4) {
		uint64_t si = str_addr(cpu, in, EMU_RSI, true);
		uint64_t b2 = 4096 - (si & 4095);
		if (b2 < bytes)
			bytes = b2;
		elems = bytes / size;
		if (elems > n)
			elems = n;
		bytes = elems * size;
		if (!elems || (di > si && di - si < bytes))
			return 0; /* overlapping forward copy replicates: element by element */
		{
			const void *s = emu_mem(cpu, in, si, bytes, false);
			void *t = emu_mem(cpu, in, di, bytes, true);
			memmove(t, s, bytes);
		}
		str_adv(cpu, in, EMU_RSI, (int64_t)bytes);
	} else {
		uint8_t *t;
		uint64_t i, v = cpu->gpr[EMU_RAX];
		elems = bytes / size;
		if (elems > n)
			elems = n;
		bytes = elems * size;
		if (!elems)
			return 0;
		t = emu_mem(cpu, in, di, bytes, true);
		if (size == 1)
			memset(t, (int)(v & 0xff), bytes);
		else
			for (i = 0; i < elems; i++)
				emu_st_ptr(t + i * size, v, size);
	}
	str_adv(cpu, in, EMU_RDI, (int64_t)bytes);
	return elems;
}

HANDLER(op_string)
{
	if (!in->rep) {
		str_once(cpu, in);
		dispatch_next(cpu, in);
		return;
	}
	for (;;) {
		uint64_t n = rcx_val(cpu, in);
		if (!n)
			break;
		if ((in->op == 0xa4 || in->op == 0xaa) && !(cpu->rflags & FL_DF) && n >= 8 &&
		    in != cpu->budget_end && !cpu->ac_check) {
			uint64_t done = str_bulk(cpu, in, n);
			if (done) {
				str_adv(cpu, in, EMU_RCX, -(int64_t)done);
				continue;
			}
		}
		{
			bool stop = str_once(cpu, in);
			rcx_dec(cpu, in);
			if ((in->op == 0xa6 || in->op == 0xae) && stop)
				break;
		}
		if (unlikely(in == cpu->budget_end) && rcx_val(cpu, in)) {
			/* the instruction budget ends here (single-stepping): return after
			 * one iteration with RIP still at the instruction, as a trap between
			 * iterations would see it */
			cpu->rip = in->rip;
			cpu->exit_insn = in;
			return;
		}
	}
	dispatch_next(cpu, in);
}

/* --- system-ish --- */

HANDLER(op_nop)
{
	dispatch_next(cpu, in);
}

HANDLER(op_hlt)
{
	if (cpl(cpu))
		emu_raise(cpu, in, EXC_GP, 0, true);
	cpu->rip = next_rip(in);
	cpu->stop = EMU_STOP_HLT;
}

HANDLER(op_io)
{
	/* port I/O belongs to the system part: stop before the instruction. Without an I/O
	 * permission bitmap, CPL > IOPL means #GP. */
	if (cpl(cpu) > ((emu_flags_get(cpu) >> 12) & 3))
		emu_raise(cpu, in, EXC_GP, 0, true);
	cpu->fault_insn = in;
	longjmp(cpu->fault_jmp, 2);
}

HANDLER(op_int)
{
	/* INT3 (op 3), INT1 (1), INT n: no IDT delivery in the bare CPU; report the vector */
	emu_raise(cpu, in, (int)in->op, 0, false);
}

HANDLER(op_cpuid)
{
	uint32_t out[4];
	emu_cpuid(cpu, (uint32_t)cpu->gpr[EMU_RAX], (uint32_t)cpu->gpr[EMU_RCX], out);
	cpu->gpr[EMU_RAX] = out[0];
	cpu->gpr[EMU_RBX] = out[1];
	cpu->gpr[EMU_RCX] = out[2];
	cpu->gpr[EMU_RDX] = out[3];
	dispatch_next(cpu, in);
}

HANDLER(op_rdtsc)
{
	uint64_t t;
	if ((cpu->cr4 & 4) && cpl(cpu)) /* CR4.TSD */
		emu_raise(cpu, in, EXC_GP, 0, true);
	t = emu_rdtsc(cpu);
	cpu->gpr[EMU_RAX] = (uint32_t)t;
	cpu->gpr[EMU_RDX] = t >> 32;
	if (in->op)
		cpu->gpr[EMU_RCX] = 0; /* IA32_TSC_AUX */
	dispatch_next(cpu, in);
}

/* LAR/LSL: the bare CPU has no descriptor tables yet, so every selector is reported as not
 * accessible (ZF = 0, destination unchanged). The system part looks the GDT up. */
HANDLER(op_lar_lsl)
{
	if (in->mem)
		emu_ld(cpu, in, emu_ea(cpu, in), 2);
	flags_eager(cpu);
	cpu->rflags &= ~(uint64_t)FL_ZF;
	dispatch_next(cpu, in);
}

HANDLER(op_adx)
{
	uint64_t fl, bit = in->op ? FL_OF : FL_CF, a, b, r, c;
	b = rd_e(cpu, in, in->size);
	fl = emu_flags_get(cpu);
	a = reg_read(cpu, in->reg, in->size);
	c = (fl & bit) ? 1 : 0;
	if (in->size == 8) {
		unsigned __int128 t = (unsigned __int128)a + b + c;
		r = (uint64_t)t;
		c = (uint64_t)(t >> 64);
	} else {
		uint64_t t = a + b + c;
		r = (uint32_t)t;
		c = t >> 32;
	}
	reg_write(cpu, in->reg, r, in->size);
	emu_flags_set(cpu, (fl & ~bit) | (c ? bit : 0));
	dispatch_next(cpu, in);
}

/* RDRAND/RDSEED (op 1): the host's generator (advertised only where the host has it) */
HANDLER(op_rdrand)
{
	uint64_t v = 0;
	unsigned char ok = 0;
	if (in->op) {
		asm volatile("rdseed %0; setc %1" : "=r"(v), "=qm"(ok) : : "cc");
	} else {
		asm volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok) : : "cc");
	}
	v &= size_mask(in->size);
	reg_write(cpu, in->rm, ok ? v : 0, in->size);
	emu_flags_set(cpu, (emu_flags_get(cpu) & ~(uint64_t)FL_ARITH) | (ok ? FL_CF : 0));
	dispatch_next(cpu, in);
}

HANDLER(op_clflush)
{
	emu_mem(cpu, in, emu_ea(cpu, in), 1, false);
	dispatch_next(cpu, in);
}

HANDLER(op_swapgs)
{
	uint64_t t;
	if (cpl(cpu))
		emu_raise(cpu, in, EXC_GP, 0, true);
	t = cpu->seg[EMU_GS].base;
	cpu->seg[EMU_GS].base = cpu->kernel_gs_base;
	cpu->kernel_gs_base = t;
	dispatch_next(cpu, in);
}

HANDLER(op_mov_from_sreg)
{
	uint64_t v = cpu->seg[in->op].selector;
	if (in->mem)
		emu_st(cpu, in, emu_ea(cpu, in), v, 2);
	else
		reg_write(cpu, in->rm, v, in->size == 2 ? 2 : in->size);
	dispatch_next(cpu, in);
}

/* CRC32C (SSE4.2): op2 = source size */
static uint32_t crc32c(uint32_t crc, uint64_t v, unsigned size)
{
	unsigned i, j;
	for (i = 0; i < size; i++) {
		crc ^= (uint8_t)(v >> (8 * i));
		for (j = 0; j < 8; j++)
			crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
	}
	return crc;
}

HANDLER(op_crc32)
{
	uint64_t v = rd_e(cpu, in, in->op2);
	cpu->gpr[in->reg] = crc32c((uint32_t)cpu->gpr[in->reg], v, in->op2);
	dispatch_next(cpu, in);
}

/* ------------------------------------------------------------------------------------ */
/* Selector */

static void sel(struct insn *in, emu_handler fn)
{
	in->fn = fn;
}

static void sel_end(struct insn *in, emu_handler fn)
{
	in->fn = fn;
	in->pfx |= PFX_END;
}

static void byte_regs(struct insn *in)
{
	in->size = 1;
	in->reg = byte_reg(in, in->reg);
	if (!in->mem)
		in->rm = byte_reg(in, in->rm);
}

/* Operand size for instructions that default to 64 bits (stack, near branches). */
static void size64(struct insn *in)
{
	in->size = (in->pfx & PFX_66) && !(in->pfx & PFX_REXW) ? 2 : 8;
}

static bool lock_ok(const struct insn *in, bool allowed)
{
	if (!(in->pfx & PFX_LOCK))
		return true;
	return allowed && in->mem;
}

static void sel_alu_rr(struct insn *in, unsigned op)
{
	sel(in, in->size == 8 ? alu_rr64[op] : in->size == 4 ? alu_rr32[op] : alu_rr[op]);
}

static void select_alu_imm(struct insn *in, unsigned op)
{
	if (in->mem)
		sel(in, alu_mi[op]);
	else
		sel(in, in->size == 8 ? alu_ri64[op] : in->size == 4 ? alu_ri32[op] : alu_ri[op]);
}

static bool select_alu(struct insn *in, unsigned op, unsigned form)
{
	bool lk = op != ALU_CMP;
	switch (form) {
	case 0:
	case 1:
		if (!lock_ok(in, lk))
			return false;
		if (form == 0)
			byte_regs(in);
		if (in->mem)
			sel(in, alu_mr[op]);
		else
			sel_alu_rr(in, op);
		return true;
	case 2:
	case 3:
		if (in->pfx & PFX_LOCK)
			return false;
		if (form == 2)
			byte_regs(in);
		if (in->mem) {
			sel(in, alu_rm[op]);
		} else {
			/* Gx, Ex with register source: swap so rm is the destination */
			uint8_t t = in->rm;
			in->rm = in->reg;
			in->reg = t;
			sel_alu_rr(in, op);
		}
		return true;
	default: /* 4, 5: AL/eAX, imm */
		if (in->pfx & PFX_LOCK)
			return false;
		in->rm = EMU_RAX;
		in->mem = 0;
		if (form == 4)
			in->size = 1;
		select_alu_imm(in, op);
		return true;
	}
}

static bool select_1b(struct insn *in, unsigned opc, unsigned r)
{
	bool lock = in->pfx & PFX_LOCK;

	if (opc < 0x40) {
		if ((opc & 7) >= 6)
			return false; /* segment push/pop, BCD: invalid in 64-bit mode */
		return select_alu(in, opc >> 3, opc & 7);
	}
	/* everything below that is not a read-modify-write memory form refuses LOCK */
	switch (opc) {
	case 0x80:
	case 0x81:
	case 0x83:
		if (!lock_ok(in, r != ALU_CMP))
			return false;
		if (opc == 0x80)
			byte_regs(in);
		select_alu_imm(in, r);
		return true;
	case 0x86:
	case 0x87:
		if (!lock_ok(in, true))
			return false;
		if (opc == 0x86)
			byte_regs(in);
		sel(in, op_xchg);
		return true;
	case 0xf6:
	case 0xf7:
		if (!lock_ok(in, r == 2 || r == 3))
			return false;
		if (opc == 0xf6)
			byte_regs(in);
		in->op = (uint8_t)r;
		if (r < 2) {
			in->op = 1;
			sel(in, in->mem ? op_test_m : op_test_r);
		} else if (r < 4) {
			sel(in, in->mem ? op_unary_m : op_unary_r);
		} else {
			sel(in, op_muldiv);
		}
		return true;
	case 0xfe:
		if (r > 1 || !lock_ok(in, true))
			return false;
		byte_regs(in);
		in->op = (uint8_t)r;
		sel(in, in->mem ? op_unary_m : op_unary_r);
		return true;
	case 0xff:
		if (r < 2) {
			if (!lock_ok(in, true))
				return false;
			in->op = (uint8_t)r;
			if (in->mem)
				sel(in, op_unary_m);
			else if (in->size == 8)
				sel(in, r ? op_dec64_r : op_inc64_r);
			else
				sel(in, op_unary_r);
			return true;
		}
		if (lock)
			return false;
		switch (r) {
		case 2:
			in->size = 8;
			sel_end(in, op_call_e);
			return true;
		case 4:
			in->size = 8;
			sel_end(in, op_jmp_e);
			return true;
		case 6:
			size64(in);
			sel(in, in->mem ? op_push_m : op_push_r);
			return true;
		case 3:
		case 5: /* far CALL/JMP: not in the bare CPU */
			if (!in->mem)
				return false;
			sel_end(in, emu_op_gp);
			return true;
		default:
			return false;
		}
	default:
		break;
	}
	if (lock)
		return false;

	if (opc >= 0x50 && opc <= 0x57) {
		size64(in);
		sel(in, op_push_r);
		return true;
	}
	if (opc >= 0x58 && opc <= 0x5f) {
		size64(in);
		sel(in, op_pop_r);
		return true;
	}
	if (opc >= 0x70 && opc <= 0x7f) {
		in->op2 = opc & 15;
		sel_end(in, op_jcc);
		return true;
	}
	if (opc >= 0x91 && opc <= 0x97) {
		in->reg = EMU_RAX;
		sel(in, op_xchg);
		return true;
	}
	if (opc >= 0xb0 && opc <= 0xb7) {
		in->size = 1;
		in->rm = byte_reg(in, in->rm);
		sel(in, op_mov_ri);
		return true;
	}
	if (opc >= 0xb8 && opc <= 0xbf) {
		sel(in, op_mov_ri);
		return true;
	}
	switch (opc) {
	case 0x63:
		/* MOVSXD; without REX.W it is a plain 32-bit move */
		in->op = in->size == 8;
		in->op2 = in->size == 2 ? 2 : 4;
		sel(in, op_movx);
		return true;
	case 0x68:
	case 0x6a:
		size64(in);
		sel(in, op_push_i);
		return true;
	case 0x69:
	case 0x6b:
		in->op = 1;
		sel(in, op_imul2);
		return true;
	case 0x6c:
	case 0x6d:
	case 0x6e:
	case 0x6f:
	case 0xe4:
	case 0xe5:
	case 0xe6:
	case 0xe7:
	case 0xec:
	case 0xed:
	case 0xee:
	case 0xef:
		sel_end(in, op_io);
		return true;
	case 0x84:
	case 0x85:
		if (opc == 0x84)
			byte_regs(in);
		in->op = 0;
		sel(in, in->mem ? op_test_m : op_test_r);
		return true;
	case 0x88:
	case 0x89:
		if (opc == 0x88)
			byte_regs(in);
		if (in->mem)
			sel(in, in->size == 8 ? op_mov64_mr : op_mov_mr);
		else
			sel(in, in->size == 8	? op_mov64_rr
				: in->size == 4 ? op_mov32_rr
						: op_mov_rr);
		return true;
	case 0x8a:
	case 0x8b:
		if (opc == 0x8a)
			byte_regs(in);
		if (in->mem) {
			sel(in, in->size == 8 ? op_mov64_rm : op_mov_rm);
		} else {
			uint8_t t = in->rm;
			in->rm = in->reg;
			in->reg = t;
			sel(in, in->size == 8	? op_mov64_rr
				: in->size == 4 ? op_mov32_rr
						: op_mov_rr);
		}
		return true;
	case 0x8c:
		if ((in->reg & 7) > 5)
			return false;
		in->op = in->reg & 7;
		sel(in, op_mov_from_sreg);
		return true;
	case 0x8d:
		if (!in->mem)
			return false;
		if (in->size == 8 && in->asize == 8 && in->base < 16 && in->index == REG_NONE)
			sel(in, op_lea64_bd);
		else
			sel(in, op_lea);
		return true;
	case 0x8e:
		sel_end(in, emu_op_gp); /* segment loads: system part */
		return true;
	case 0x8f:
		size64(in);
		if (r)
			return false;
		sel(in, in->mem ? op_pop_m : op_pop_r);
		return true;
	case 0x90:
		if (in->pfx & PFX_REX && (in->rm & 8)) {
			in->reg = EMU_RAX;
			sel(in, op_xchg);
		} else {
			sel(in, op_nop); /* NOP, PAUSE (F3 90) */
		}
		return true;
	case 0x98:
	case 0x99:
		in->op = opc & 1;
		sel(in, op_cbw);
		return true;
	case 0x9b:
		sel(in, emu_op_fwait);
		return true;
	case 0x9c:
		size64(in);
		sel(in, op_pushf);
		return true;
	case 0x9d:
		size64(in);
		sel_end(in, op_popf);
		return true;
	case 0x9e:
		sel(in, op_sahf);
		return true;
	case 0x9f:
		sel(in, op_lahf);
		return true;
	case 0xa0:
	case 0xa1:
	case 0xa2:
	case 0xa3:
		if (!(opc & 1))
			in->size = 1;
		in->op = (opc >> 1) & 1;
		sel(in, op_mov_moffs);
		return true;
	case 0xa4:
	case 0xa5:
	case 0xa6:
	case 0xa7:
	case 0xaa:
	case 0xab:
	case 0xac:
	case 0xad:
	case 0xae:
	case 0xaf:
		if (!(opc & 1))
			in->size = 1;
		in->op = opc & 0xfe;
		if (in->rep && (in->op == 0xa4 || in->op == 0xaa || in->op == 0xac))
			in->rep = 0xf3;
		sel(in, op_string);
		return true;
	case 0xa8:
	case 0xa9:
		if (opc == 0xa8)
			in->size = 1;
		in->rm = EMU_RAX;
		in->op = 1;
		sel(in, op_test_r);
		return true;
	case 0xc0:
	case 0xc1:
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3:
		if (!(opc & 1))
			byte_regs(in);
		in->op = (uint8_t)r;
		in->op2 = opc >= 0xd2 ? 2 : opc >= 0xd0 ? 1 : 0;
		sel(in, in->mem ? op_shift_m : op_shift_r);
		if (!in->mem && in->size == 8 && in->op2 != 2 && r >= 4) {
			if (in->op2 == 1)
				in->imm = 1;
			in->op2 = 0;
			sel(in, op_shift64_ri);
		}
		return true;
	case 0xc2:
	case 0xc3:
		if (opc == 0xc3)
			in->imm = 0;
		else
			in->imm &= 0xffff;
		sel_end(in, op_ret);
		return true;
	case 0xc6:
	case 0xc7:
		if (r)
			return false;
		if (opc == 0xc6)
			byte_regs(in);
		sel(in, in->mem ? op_mov_mi : op_mov_ri);
		return true;
	case 0xc8:
		size64(in);
		sel(in, op_enter);
		return true;
	case 0xc9:
		size64(in);
		sel(in, op_leave);
		return true;
	case 0xca:
	case 0xcb:
	case 0xcf: /* far return, IRET: system part */
		sel_end(in, emu_op_gp);
		return true;
	case 0xcc:
		in->op = EXC_BP;
		sel_end(in, op_int);
		return true;
	case 0xcd:
		in->op = (uint8_t)in->imm;
		sel_end(in, op_int);
		return true;
	case 0xf1:
		in->op = EXC_DB;
		sel_end(in, op_int);
		return true;
	case 0xd7:
		sel(in, op_xlat);
		return true;
	case 0xe0:
	case 0xe1:
	case 0xe2:
	case 0xe3:
		in->op = opc & 3;
		/* As measured on AMD hosts: REP/REPNE turn LOOPcc into LOOPE/LOOPNE, the way
		 * they qualify CMPS/SCAS. */
		if (in->op < 2 && in->rep)
			in->op = in->rep == 0xf3 ? 1 : 0;
		sel_end(in, op_loop);
		return true;
	case 0xe8:
		sel_end(in, op_call);
		return true;
	case 0xe9:
	case 0xeb:
		sel_end(in, op_jmp);
		return true;
	case 0xf4:
		sel_end(in, op_hlt);
		return true;
	case 0xf5:
	case 0xf8:
	case 0xf9:
	case 0xfa:
	case 0xfb:
	case 0xfc:
	case 0xfd:
		in->op = (uint8_t)opc;
		sel(in, op_flagop);
		return true;
	default:
		return false;
	}
}

static bool select_0f(struct insn *in, unsigned opc, unsigned r)
{
	bool lock = in->pfx & PFX_LOCK;

	switch (opc) {
	case 0xb0:
	case 0xb1:
		if (!lock_ok(in, true))
			return false;
		if (opc == 0xb0)
			byte_regs(in);
		sel(in, op_cmpxchg);
		return true;
	case 0xc0:
	case 0xc1:
		if (!lock_ok(in, true))
			return false;
		if (opc == 0xc0)
			byte_regs(in);
		sel(in, op_xadd);
		return true;
	case 0xab:
	case 0xb3:
	case 0xbb:
		if (!lock_ok(in, true))
			return false;
		in->op = opc == 0xab ? 1 : opc == 0xb3 ? 2 : 3;
		sel(in, op_bt);
		return true;
	case 0xba:
		if (r < 4 || !lock_ok(in, r > 4))
			return false;
		in->op = (uint8_t)(r - 4);
		in->op2 = 1;
		sel(in, op_bt);
		return true;
	case 0xc7:
		if (r == 1 && in->mem) {
			if (!lock_ok(in, true))
				return false;
			in->size = in->pfx & PFX_REXW ? 8 : 4;
			sel(in, op_cmpxchg8b);
			return true;
		}
		if ((r == 6 || r == 7) && !in->mem && !in->rep && !lock &&
		    emu_host_has(r == 6 ? EMU_HOST_RDRAND : EMU_HOST_RDSEED)) {
			in->op = (uint8_t)(r == 7);
			sel(in, op_rdrand);
			return true;
		}
		return false; /* RDPID not advertised */
	default:
		break;
	}
	if (lock)
		return false;

	if (opc >= 0x40 && opc <= 0x4f) {
		in->op2 = opc & 15;
		sel(in, op_cmov);
		return true;
	}
	if (opc >= 0x80 && opc <= 0x8f) {
		in->op2 = opc & 15;
		sel_end(in, op_jcc);
		return true;
	}
	if (opc >= 0x90 && opc <= 0x9f) {
		in->op2 = opc & 15;
		in->rm = byte_reg(in, in->rm);
		sel(in, op_setcc);
		return true;
	}
	if (opc >= 0xc8 && opc <= 0xcf) {
		sel(in, op_bswap);
		return true;
	}
	switch (opc) {
	case 0x02:
	case 0x03:
		sel(in, op_lar_lsl);
		return true;
	case 0x00: /* SLDT/STR/LLDT/LTR/VERR/VERW */
	case 0x06: /* CLTS */
	case 0x08:
	case 0x09: /* INVD, WBINVD */
	case 0x20:
	case 0x21:
	case 0x22:
	case 0x23: /* MOV CR/DR */
	case 0x30:
	case 0x32:
	case 0x33: /* WRMSR RDMSR RDPMC */
	case 0x05:
	case 0x07: /* SYSCALL/SYSRET: system part */
		sel_end(in, emu_op_gp);
		return true;
	case 0x01:
		if (!in->mem) {
			unsigned m = in->rm & 7;
			if (r == 7 && m == 1) { /* RDTSCP */
				in->op = 1;
				sel(in, op_rdtsc);
				return true;
			}
			if (r == 7 && m == 0) {
				sel(in, op_swapgs);
				return true;
			}
			if (r == 2 && m == 0) /* XGETBV: no XSAVE */
				return false;
			if (r == 1 && (m == 0 || m == 1)) /* MONITOR/MWAIT: not advertised */
				return false;
			if (r == 1 && (m == 2 || m == 3)) /* CLAC/STAC: no SMAP */
				return false;
			if (r == 4 || r == 6) { /* SMSW/LMSW register forms */
				sel_end(in, emu_op_gp);
				return true;
			}
			return false;
		}
		if (r == 5)
			return false;
		sel_end(in, emu_op_gp); /* SGDT/SIDT/LGDT/LIDT/SMSW/LMSW/INVLPG: system part */
		return true;
	case 0x0b:
	case 0xb9:
	case 0xff:
		return false; /* UD2, UD1, UD0 */
	case 0x0d:
		if (!in->mem)
			return false; /* PREFETCH needs a memory operand */
		sel(in, op_nop);
		return true;
	case 0x18:
	case 0x19:
	case 0x1a:
	case 0x1b:
	case 0x1c:
	case 0x1d:
	case 0x1e:
	case 0x1f:
		sel(in, op_nop); /* prefetch and hint NOPs, ENDBR */
		return true;
	case 0x31:
		in->op = 0;
		sel(in, op_rdtsc);
		return true;
	case 0xa2:
		sel(in, op_cpuid);
		return true;
	case 0xa3:
		in->op = 0;
		sel(in, op_bt);
		return true;
	case 0xa4:
	case 0xa5:
	case 0xac:
	case 0xad:
		in->op = opc >= 0xac;
		in->op2 = opc & 1;
		sel(in, op_shiftd);
		return true;
	case 0xa0:
	case 0xa8:
		size64(in);
		in->op = opc == 0xa0 ? EMU_FS : EMU_GS;
		sel(in, op_push_sreg);
		return true;
	case 0xa1:
	case 0xa9:
		sel_end(in, emu_op_gp);
		return true;
	case 0xae:
		if (in->mem) {
			if (r == 7 && !in->rep) {
				sel(in, op_clflush);
				return true;
			}
			return false; /* FXSAVE & co are selected by sse.c */
		}
		if (in->rep)
			return false; /* RDFSBASE & co: FSGSBASE not advertised */
		if (r >= 5) {
			sel(in, op_nop); /* LFENCE MFENCE SFENCE */
			return true;
		}
		return false;
	case 0xaf:
		in->op = 0;
		sel(in, op_imul2);
		return true;
	case 0xb6:
	case 0xb7:
	case 0xbe:
	case 0xbf:
		in->op = opc >= 0xbe;
		in->op2 = (opc & 1) ? 2 : 1;
		if (in->op2 == 1 && !in->mem)
			in->rm = byte_reg(in, in->rm);
		sel(in, op_movx);
		return true;
	case 0xb8:
		if (in->rep != 0xf3)
			return false;
		in->op = 4;
		sel(in, op_bitscan);
		return true;
	case 0xbc:
	case 0xbd:
		/* F3 0F BD is LZCNT (ABM, in CPUID 80000001h). F3 0F BC would be TZCNT, but that is
		 * BMI1, which our CPUID does not offer: a CPU without BMI1 runs it as BSF, and so
		 * do we (software that probed CPUID and found no BMI1 may rely on that). */
		in->op = (opc & 1) + (in->rep == 0xf3 && (opc & 1) ? 2 : 0);
		sel(in, op_bitscan);
		return true;
	default:
		return false;
	}
}

static bool select_0f38(struct insn *in, unsigned opc)
{
	if (in->pfx & PFX_LOCK)
		return false;
	if (opc == 0xf6 && (in->rep == 0xf3 || (in->pfx & PFX_66)) && !(in->rep == 0xf2) &&
	    emu_host_has(EMU_HOST_ADX)) {
		/* ADCX (66) / ADOX (F3): add with carry through CF or OF only */
		in->op = in->rep == 0xf3;
		in->size = in->pfx & PFX_REXW ? 8 : 4;
		sel(in, op_adx);
		return true;
	}
	if (opc != 0xf0 && opc != 0xf1)
		return false;
	if (in->rep == 0xf2) {
		/* CRC32 Gd, Eb / Ev */
		if (opc == 0xf0) {
			in->op2 = 1;
			if (!in->mem)
				in->rm = byte_reg(in, in->rm);
		} else {
			in->op2 = in->size;
		}
		sel(in, op_crc32);
		return true;
	}
	if (in->rep || !in->mem)
		return false;
	in->op = opc & 1;
	sel(in, op_movbe);
	return true;
}

bool emu_select_int(struct insn *in, unsigned map, unsigned opc, unsigned modrm_reg)
{
	switch (map) {
	case MAP_1B:
		return select_1b(in, opc, modrm_reg);
	case MAP_0F:
		return select_0f(in, opc, modrm_reg);
	case MAP_0F38:
		return select_0f38(in, opc);
	default:
		return false;
	}
}

/* SSE, SSE2, SSE3, SSSE3, SSE4.1, SSE4.2 and MMX instructions, and their selector.
 *
 * Follows the Intel SDM vol. 1 ch. 9-12 (MMX, SSE, SSE2, SSE3/SSSE3/SSE4) and vol. 2 for each
 * instruction; MXCSR per vol. 1 10.2.3 and SIMD floating-point exceptions per 11.5.
 * Floating-point and most integer SIMD operations run as the same host instruction on
 * copies of the operands, with the guest's MXCSR loaded (all exceptions masked) so rounding,
 * DAZ/FTZ, NaN propagation and the exception flags come out exactly as the hardware gives
 * them; an exception the guest left unmasked then raises #XM (or #UD without
 * CR4.OSXMMEXCPT) with the destination unchanged. Shuffles and lane moves that take an
 * immediate are written in C. MMX runs the SSE2 form on the low 64 bits.
 */
#include "accel/emu/emu_internal.h"

#define HANDLER(name) static void name(struct emu_cpu *cpu, const struct insn *in)

typedef long long v2di __attribute__((vector_size(16)));
typedef void (*sse_fn)(v2di *d, const v2di *s);
typedef void (*sse_fni)(v2di *d, const v2di *s, unsigned imm);

/* in->op: memory operand kind */
enum { M128A, M128U, M64, M32, M16, M8 };
/* in->op2 bits */
#define SF_FP	  0x01 /* runs under the guest MXCSR */
#define SF_MMX	  0x02 /* operands are MMX registers */
#define SF_MMXPK  0x04 /* MMX pack: both operands in one XMM */
#define SF_MMXHI  0x08 /* MMX unpack-high: use the high halves */
#define SF_SRCGPR 0x10 /* source is a general register (cvtsi2ss) */

/* in->aux of floating-point arithmetic whose result can overflow or underflow: the
 * operation, which fp_post() recomputes when OM or UM is clear, and its element format */
enum {
	FK_NONE,
	FK_ADD,
	FK_SUB,
	FK_MUL,
	FK_DIV,
	FK_ADDSUB, /* even elements subtract, odd ones add */
	FK_HADD,   /* pairs of adjacent elements, destination's then source's */
	FK_HSUB,
	FK_CVT, /* double to float */
	FK_DPPS,
	FK_DPPD,
};
#define FK_KIND	  0x0f
#define FK_F64	  0x10 /* double elements (FK_CVT: the source's) */
#define FK_SCALAR 0x20 /* only the low element */

#define MXCSR_MM 0x20000u

static inline v2di *xr(struct emu_cpu *cpu, unsigned r)
{
	return (v2di *)&cpu->xmm[r];
}

static inline uint64_t mm_get(const struct emu_cpu *cpu, unsigned r)
{
	uint64_t v;
	memcpy(&v, cpu->fpr[r & 7], 8);
	return v;
}

/* An MMX instruction makes the x87 stack all valid with TOP = 0 (SDM vol. 1 9.5.1). */
static inline void mm_enter(struct emu_cpu *cpu)
{
	cpu->ftop = 0;
	cpu->ftw = 0;
}

static inline void mm_set(struct emu_cpu *cpu, unsigned r, uint64_t v)
{
	memcpy(cpu->fpr[r & 7], &v, 8);
	cpu->fpr[r & 7][8] = 0xff;
	cpu->fpr[r & 7][9] = 0xff;
}

static void mmx_check(struct emu_cpu *cpu, const struct insn *in)
{
	if (cpu->cr0 & 4)
		emu_raise(cpu, in, EXC_UD, 0, false);
	if (cpu->cr0 & 8)
		emu_raise(cpu, in, EXC_NM, 0, false);
}

static uint64_t mem_addr_aligned(struct emu_cpu *cpu, const struct insn *in, unsigned align)
{
	uint64_t a = emu_ea(cpu, in);
	/* MXCSR.MM (AMD misaligned SSE mode) lifts the alignment check */
	if ((a & (align - 1)) && !(cpu->mxcsr & MXCSR_MM))
		emu_raise(cpu, in, EXC_GP, 0, true);
	return a;
}

/* The source operand as 16 bytes (memory: the kind's size, zero above). */
static v2di sse_src(struct emu_cpu *cpu, const struct insn *in)
{
	v2di v = {0, 0};
	uint64_t a;
	if (!in->mem) {
		if (in->op2 & SF_MMX) {
			v[0] = (long long)mm_get(cpu, in->rm);
			return v;
		}
		return *xr(cpu, in->rm);
	}
	switch (in->op) {
	case M128A:
		a = mem_addr_aligned(cpu, in, 16);
		memcpy(&v, emu_mem(cpu, in, a, 16, false), 16);
		break;
	case M128U:
		memcpy(&v, emu_mem(cpu, in, emu_ea(cpu, in), 16, false), 16);
		break;
	case M64:
		memcpy(&v, emu_mem(cpu, in, emu_ea(cpu, in), 8, false), 8);
		break;
	case M32:
		memcpy(&v, emu_mem(cpu, in, emu_ea(cpu, in), 4, false), 4);
		break;
	case M16:
		memcpy(&v, emu_mem(cpu, in, emu_ea(cpu, in), 2, false), 2);
		break;
	default:
		memcpy(&v, emu_mem(cpu, in, emu_ea(cpu, in), 1, false), 1);
		break;
	}
	return v;
}

/* --- MXCSR --- */

/* The host MXCSR holds the guest's control bits with every exception masked while
 * emu_run runs (cpu->mx_loaded says what is loaded). When the guest masks every exception
 * too, flags may accumulate in the host register across instructions: they are sticky in
 * the guest as well, and anything that lowers guest flags (LDMXCSR, FXRSTOR, set_state)
 * forces a reload. With an exception unmasked, flags are cleared before each instruction
 * so that the ones it raises are known. */
static inline void fp_enter(struct emu_cpu *cpu, uint32_t *saved)
{
	uint32_t want = (cpu->mxcsr & ~0x3fu) | 0x1f80u;
	(void)saved;
	if (likely((cpu->mxcsr & 0x1f80) == 0x1f80)) {
		/* all masked: flags may collect in the host register (emu_mxcsr_sync) */
		if (unlikely(cpu->mx_loaded != want)) {
			emu_mxcsr_sync(cpu);
			asm volatile("ldmxcsr %0" : : "m"(want));
			cpu->mx_loaded = want;
		}
		cpu->mx_lazy = 1;
		return;
	}
	emu_mxcsr_sync(cpu);
	asm volatile("ldmxcsr %0" : : "m"(want));
	cpu->mx_loaded = want;
}

/* The flags this instruction raised, when they are needed now (an exception is unmasked);
 * otherwise 0 and they are collected later. */
static inline uint32_t fp_leave(struct emu_cpu *cpu)
{
	uint32_t m;
	if (likely(cpu->mx_lazy))
		return 0;
	asm volatile("stmxcsr %0" : "=m"(m));
	return m & 0x3f;
}

/* SDM vol. 1 11.5.2-3: invalid, denormal and divide-by-zero are detected before the result
 * is computed; when one of them is unmasked only those flags are set and the instruction
 * faults. Otherwise the flags of every element are set (for overflow and underflow with
 * OM or UM clear, fp_post() has made them exact) and an unmasked one faults, the
 * destination unchanged. */
static void fp_commit(struct emu_cpu *cpu, const struct insn *in, uint32_t flags)
{
	uint32_t unmasked = flags & ~(cpu->mxcsr >> 7) & 0x3f;
	if (likely(!unmasked)) {
		cpu->mxcsr |= flags;
		return;
	}
	if (unmasked & 0x07)
		flags &= 0x07;
	cpu->mxcsr |= flags;
	emu_raise(cpu, in, (cpu->cr4 & 0x400) ? EXC_XM : EXC_UD, 0, false);
}

static uint32_t fp_post(const struct emu_cpu *cpu, const struct insn *in, uint32_t flags,
			const v2di *dst, const v2di *src);
static void fp_dp_commit(struct emu_cpu *cpu, const struct insn *in, const v2di *dst,
			 const v2di *src);

/* The flags need fp_post(): OM or UM clear, on an operation that can overflow or
 * underflow. */
static inline bool fp_post_needed(const struct emu_cpu *cpu, const struct insn *in)
{
	return unlikely((cpu->mxcsr & 0xc00) != 0xc00) && in->aux;
}

/* --- host operations: d = d OP s --- */

#define HOSTOP(name, mnem)                                         \
	static void name(v2di *d, const v2di *s)                   \
	{                                                          \
		asm volatile(mnem " %1, %0" : "+x"(*d) : "x"(*s)); \
	}
/* clang-format off */
HOSTOP(h_addps, "addps")
HOSTOP(h_addpd, "addpd")
HOSTOP(h_addss, "addss")
HOSTOP(h_addsd, "addsd")
HOSTOP(h_subps, "subps")
HOSTOP(h_subpd, "subpd")
HOSTOP(h_subss, "subss")
HOSTOP(h_subsd, "subsd")
HOSTOP(h_mulps, "mulps")
HOSTOP(h_mulpd, "mulpd")
HOSTOP(h_mulss, "mulss")
HOSTOP(h_mulsd, "mulsd")
HOSTOP(h_divps, "divps")
HOSTOP(h_divpd, "divpd")
HOSTOP(h_divss, "divss")
HOSTOP(h_divsd, "divsd")
HOSTOP(h_minps, "minps")
HOSTOP(h_minpd, "minpd")
HOSTOP(h_minss, "minss")
HOSTOP(h_minsd, "minsd")
HOSTOP(h_maxps, "maxps")
HOSTOP(h_maxpd, "maxpd")
HOSTOP(h_maxss, "maxss")
HOSTOP(h_maxsd, "maxsd")
HOSTOP(h_sqrtps, "sqrtps")
HOSTOP(h_sqrtpd, "sqrtpd")
HOSTOP(h_sqrtss, "sqrtss")
HOSTOP(h_sqrtsd, "sqrtsd")
HOSTOP(h_rsqrtps, "rsqrtps")
HOSTOP(h_rsqrtss, "rsqrtss")
HOSTOP(h_rcpps, "rcpps")
HOSTOP(h_rcpss, "rcpss")
HOSTOP(h_andps, "andps")
HOSTOP(h_andnps, "andnps")
HOSTOP(h_orps, "orps")
HOSTOP(h_xorps, "xorps")
HOSTOP(h_unpcklps, "unpcklps")
HOSTOP(h_unpckhps, "unpckhps")
HOSTOP(h_unpcklpd, "unpcklpd")
HOSTOP(h_unpckhpd, "unpckhpd")
HOSTOP(h_cvtps2pd, "cvtps2pd")
HOSTOP(h_cvtpd2ps, "cvtpd2ps")
HOSTOP(h_cvtss2sd, "cvtss2sd")
HOSTOP(h_cvtsd2ss, "cvtsd2ss")
HOSTOP(h_cvtdq2ps, "cvtdq2ps")
HOSTOP(h_cvtps2dq, "cvtps2dq")
HOSTOP(h_cvttps2dq, "cvttps2dq")
HOSTOP(h_cvttpd2dq, "cvttpd2dq")
HOSTOP(h_cvtdq2pd, "cvtdq2pd")
HOSTOP(h_cvtpd2dq, "cvtpd2dq")
HOSTOP(h_addsubps, "addsubps")
HOSTOP(h_addsubpd, "addsubpd")
HOSTOP(h_haddps, "haddps")
HOSTOP(h_haddpd, "haddpd")
HOSTOP(h_hsubps, "hsubps")
HOSTOP(h_hsubpd, "hsubpd")
HOSTOP(h_movsldup, "movsldup")
HOSTOP(h_movshdup, "movshdup")
HOSTOP(h_punpcklbw, "punpcklbw")
HOSTOP(h_punpcklwd, "punpcklwd")
HOSTOP(h_punpckldq, "punpckldq")
HOSTOP(h_packsswb, "packsswb")
HOSTOP(h_pcmpgtb, "pcmpgtb")
HOSTOP(h_pcmpgtw, "pcmpgtw")
HOSTOP(h_pcmpgtd, "pcmpgtd")
HOSTOP(h_packuswb, "packuswb")
HOSTOP(h_punpckhbw, "punpckhbw")
HOSTOP(h_punpckhwd, "punpckhwd")
HOSTOP(h_punpckhdq, "punpckhdq")
HOSTOP(h_packssdw, "packssdw")
HOSTOP(h_punpcklqdq, "punpcklqdq")
HOSTOP(h_punpckhqdq, "punpckhqdq")
HOSTOP(h_pcmpeqb, "pcmpeqb")
HOSTOP(h_pcmpeqw, "pcmpeqw")
HOSTOP(h_pcmpeqd, "pcmpeqd")
HOSTOP(h_psrlw, "psrlw")
HOSTOP(h_psrld, "psrld")
HOSTOP(h_psrlq, "psrlq")
HOSTOP(h_paddq, "paddq")
HOSTOP(h_pmullw, "pmullw")
HOSTOP(h_psubusb, "psubusb")
HOSTOP(h_psubusw, "psubusw")
HOSTOP(h_pminub, "pminub")
HOSTOP(h_pand, "pand")
HOSTOP(h_paddusb, "paddusb")
HOSTOP(h_paddusw, "paddusw")
HOSTOP(h_pmaxub, "pmaxub")
HOSTOP(h_pandn, "pandn")
HOSTOP(h_pavgb, "pavgb")
HOSTOP(h_psraw, "psraw")
HOSTOP(h_psrad, "psrad")
HOSTOP(h_pavgw, "pavgw")
HOSTOP(h_pmulhuw, "pmulhuw")
HOSTOP(h_pmulhw, "pmulhw")
HOSTOP(h_psubsb, "psubsb")
HOSTOP(h_psubsw, "psubsw")
HOSTOP(h_pminsw, "pminsw")
HOSTOP(h_por, "por")
HOSTOP(h_paddsb, "paddsb")
HOSTOP(h_paddsw, "paddsw")
HOSTOP(h_pmaxsw, "pmaxsw")
HOSTOP(h_pxor, "pxor")
HOSTOP(h_psllw, "psllw")
HOSTOP(h_pslld, "pslld")
HOSTOP(h_psllq, "psllq")
HOSTOP(h_pmuludq, "pmuludq")
HOSTOP(h_pmaddwd, "pmaddwd")
HOSTOP(h_psadbw, "psadbw")
HOSTOP(h_psubb, "psubb")
HOSTOP(h_psubw, "psubw")
HOSTOP(h_psubd, "psubd")
HOSTOP(h_psubq, "psubq")
HOSTOP(h_paddb, "paddb")
HOSTOP(h_paddw, "paddw")
HOSTOP(h_paddd, "paddd")
HOSTOP(h_pshufb, "pshufb")
HOSTOP(h_phaddw, "phaddw")
HOSTOP(h_phaddd, "phaddd")
HOSTOP(h_phaddsw, "phaddsw")
HOSTOP(h_phsubw, "phsubw")
HOSTOP(h_phsubd, "phsubd")
HOSTOP(h_phsubsw, "phsubsw")
HOSTOP(h_psignb, "psignb")
HOSTOP(h_psignw, "psignw")
HOSTOP(h_pmulhrsw, "pmulhrsw")
HOSTOP(h_pabsb, "pabsb")
HOSTOP(h_pabsd, "pabsd")
HOSTOP(h_pmovsxwq, "pmovsxwq")
HOSTOP(h_pcmpeqq, "pcmpeqq")
HOSTOP(h_pmovzxbw, "pmovzxbw")
HOSTOP(h_pmovzxbd, "pmovzxbd")
HOSTOP(h_pmovzxwd, "pmovzxwd")
HOSTOP(h_pmovzxwq, "pmovzxwq")
HOSTOP(h_pmovzxdq, "pmovzxdq")
HOSTOP(h_pcmpgtq, "pcmpgtq")
HOSTOP(h_pminsb, "pminsb")
HOSTOP(h_pminsd, "pminsd")
HOSTOP(h_pminuw, "pminuw")
HOSTOP(h_pminud, "pminud")
HOSTOP(h_pmaxsb, "pmaxsb")
HOSTOP(h_pmaxsd, "pmaxsd")
HOSTOP(h_pmaxuw, "pmaxuw")
HOSTOP(h_pmaxud, "pmaxud")
HOSTOP(h_pmulld, "pmulld")
HOSTOP(h_phminposuw, "phminposuw")
HOSTOP(h_pabsw, "pabsw")
HOSTOP(h_packusdw, "packusdw")
HOSTOP(h_pmaddubsw, "pmaddubsw")
HOSTOP(h_pmovsxbd, "pmovsxbd")
HOSTOP(h_pmovsxbq, "pmovsxbq")
HOSTOP(h_pmovsxbw, "pmovsxbw")
HOSTOP(h_pmovsxdq, "pmovsxdq")
HOSTOP(h_pmovsxwd, "pmovsxwd")
HOSTOP(h_pmovzxbq, "pmovzxbq")
HOSTOP(h_pmuldq, "pmuldq")
HOSTOP(h_psignd, "psignd")
/* clang-format on */

/* AES-NI and SHA: offered only when the host has them */
HOSTOP(h_aesenc, "aesenc")
HOSTOP(h_aesenclast, "aesenclast")
HOSTOP(h_aesdec, "aesdec")
HOSTOP(h_aesdeclast, "aesdeclast")
HOSTOP(h_aesimc, "aesimc")
HOSTOP(h_sha1nexte, "sha1nexte")
HOSTOP(h_sha1msg1, "sha1msg1")
HOSTOP(h_sha1msg2, "sha1msg2")
HOSTOP(h_sha256msg1, "sha256msg1")
HOSTOP(h_sha256msg2, "sha256msg2")

/* --- generic two-operand handler --- */

HANDLER(op_sse_bin)
{
	sse_fn fn = (sse_fn)(uintptr_t)in->imm;
	v2di s, d;
	if (in->op2 & SF_MMX) {
		mmx_check(cpu, in);
		s = sse_src(cpu, in);
		d = (v2di){(long long)mm_get(cpu, in->reg), 0};
		if (in->op2 & SF_MMXPK) {
			d[1] = s[0];
			s = d;
		} else if (in->op2 & SF_MMXHI) {
			d[0] = (long long)((uint64_t)d[0] >> 32);
			s[0] = (long long)((uint64_t)s[0] >> 32);
		}
		fn(&d, &s);
		mm_enter(cpu);
		mm_set(cpu, in->reg, (uint64_t)d[0]);
		dispatch_next(cpu, in);
		return;
	}
	emu_sse_check(cpu, in);
	s = sse_src(cpu, in);
	d = *xr(cpu, in->reg);
	if (in->op2 & SF_FP) {
		uint32_t saved, fl;
		fp_enter(cpu, &saved);
		fn(&d, &s);
		fl = fp_leave(cpu);
		if (fp_post_needed(cpu, in))
			fl = fp_post(cpu, in, fl, xr(cpu, in->reg), &s);
		fp_commit(cpu, in, fl);
	} else {
		fn(&d, &s);
	}
	*xr(cpu, in->reg) = d;
	dispatch_next(cpu, in);
}

/* with an immediate, in C */
HANDLER(op_sse_bini)
{
	sse_fni fn = (sse_fni)(uintptr_t)in->imm;
	v2di s, d;
	if (in->op2 & SF_MMX) {
		mmx_check(cpu, in);
		s = sse_src(cpu, in);
		d = (v2di){(long long)mm_get(cpu, in->reg), 0};
		fn(&d, &s, in->ib);
		mm_enter(cpu);
		mm_set(cpu, in->reg, (uint64_t)d[0]);
		dispatch_next(cpu, in);
		return;
	}
	emu_sse_check(cpu, in);
	s = sse_src(cpu, in);
	d = *xr(cpu, in->reg);
	if (in->op2 & SF_FP) {
		uint32_t saved;
		fp_enter(cpu, &saved);
		fn(&d, &s, in->ib);
		if (unlikely((cpu->mxcsr & 0x1f80) != 0x1f80) && in->aux)
			fp_dp_commit(cpu, in, xr(cpu, in->reg), &s); /* DPPS, DPPD */
		else
			fp_commit(cpu, in, fp_leave(cpu));
	} else {
		fn(&d, &s, in->ib);
	}
	*xr(cpu, in->reg) = d;
	dispatch_next(cpu, in);
}

/* --- shuffles and lane operations with an immediate --- */

static void c_pshufd(v2di *d, const v2di *s, unsigned imm)
{
	union emu_xmm a, r;
	unsigned i;
	memcpy(&a, s, 16);
	for (i = 0; i < 4; i++)
		r.d[i] = a.d[(imm >> (2 * i)) & 3];
	memcpy(d, &r, 16);
}

static void c_pshufhw(v2di *d, const v2di *s, unsigned imm)
{
	union emu_xmm a, r;
	unsigned i;
	memcpy(&a, s, 16);
	r = a;
	for (i = 0; i < 4; i++)
		r.w[4 + i] = a.w[4 + ((imm >> (2 * i)) & 3)];
	memcpy(d, &r, 16);
}

static void c_pshuflw(v2di *d, const v2di *s, unsigned imm)
{
	union emu_xmm a, r;
	unsigned i;
	memcpy(&a, s, 16);
	r = a;
	for (i = 0; i < 4; i++)
		r.w[i] = a.w[(imm >> (2 * i)) & 3];
	memcpy(d, &r, 16);
}

static void c_pshufw(v2di *d, const v2di *s, unsigned imm)
{
	c_pshuflw(d, s, imm);
}

static void c_shufps(v2di *d, const v2di *s, unsigned imm)
{
	union emu_xmm a, b, r;
	memcpy(&a, d, 16);
	memcpy(&b, s, 16);
	r.d[0] = a.d[imm & 3];
	r.d[1] = a.d[(imm >> 2) & 3];
	r.d[2] = b.d[(imm >> 4) & 3];
	r.d[3] = b.d[(imm >> 6) & 3];
	memcpy(d, &r, 16);
}

static void c_shufpd(v2di *d, const v2di *s, unsigned imm)
{
	v2di r = {(*d)[imm & 1], (*s)[(imm >> 1) & 1]};
	*d = r;
}

static void c_pshufb_mmx(v2di *d, const v2di *s)
{
	uint8_t a[8], b[8], r[8];
	unsigned i;
	memcpy(a, d, 8);
	memcpy(b, s, 8);
	for (i = 0; i < 8; i++)
		r[i] = (b[i] & 0x80) ? 0 : a[b[i] & 7];
	memcpy(d, r, 8);
}

static void c_palignr(v2di *d, const v2di *s, unsigned imm)
{
	uint8_t buf[48] = {0}, r[16];
	memcpy(buf, s, 16);
	memcpy(buf + 16, d, 16);
	if (imm > 32)
		imm = 32;
	memcpy(r, buf + imm, 16);
	memcpy(d, r, 16);
}

static void c_palignr_mmx(v2di *d, const v2di *s, unsigned imm)
{
	uint8_t buf[24] = {0};
	uint64_t r;
	memcpy(buf, s, 8);
	memcpy(buf + 8, d, 8);
	if (imm > 16)
		imm = 16;
	memcpy(&r, buf + imm, 8);
	(*d)[0] = (long long)r;
}

static void c_blendps(v2di *d, const v2di *s, unsigned imm)
{
	union emu_xmm a, b;
	unsigned i;
	memcpy(&a, d, 16);
	memcpy(&b, s, 16);
	for (i = 0; i < 4; i++)
		if (imm & (1u << i))
			a.d[i] = b.d[i];
	memcpy(d, &a, 16);
}

static void c_blendpd(v2di *d, const v2di *s, unsigned imm)
{
	if (imm & 1)
		(*d)[0] = (*s)[0];
	if (imm & 2)
		(*d)[1] = (*s)[1];
}

static void c_pblendw(v2di *d, const v2di *s, unsigned imm)
{
	union emu_xmm a, b;
	unsigned i;
	memcpy(&a, d, 16);
	memcpy(&b, s, 16);
	for (i = 0; i < 8; i++)
		if (imm & (1u << i))
			a.w[i] = b.w[i];
	memcpy(d, &a, 16);
}

static void c_insertps(v2di *d, const v2di *s, unsigned imm)
{
	union emu_xmm a, b;
	unsigned i;
	memcpy(&a, d, 16);
	memcpy(&b, s, 16);
	a.d[(imm >> 4) & 3] = b.d[(imm >> 6) & 3];
	for (i = 0; i < 4; i++)
		if (imm & (1u << i))
			a.d[i] = 0;
	memcpy(d, &a, 16);
}

static void c_mpsadbw(v2di *d, const v2di *s, unsigned imm)
{
	union emu_xmm a, b, r;
	unsigned i, j, so = (imm & 3) * 4, dof = ((imm >> 2) & 1) * 4;
	memcpy(&a, d, 16);
	memcpy(&b, s, 16);
	for (i = 0; i < 8; i++) {
		unsigned sum = 0;
		for (j = 0; j < 4; j++) {
			int x = a.b[dof + i + j] - b.b[so + j];
			sum += (unsigned)(x < 0 ? -x : x);
		}
		r.w[i] = (uint16_t)sum;
	}
	memcpy(d, &r, 16);
}

static void c_pclmulqdq(v2di *d, const v2di *s, unsigned imm)
{
	switch (imm & 0x11) {
	case 0x00:
		asm("pclmulqdq $0x00, %1, %0" : "+x"(*d) : "x"(*s));
		break;
	case 0x01:
		asm("pclmulqdq $0x01, %1, %0" : "+x"(*d) : "x"(*s));
		break;
	case 0x10:
		asm("pclmulqdq $0x10, %1, %0" : "+x"(*d) : "x"(*s));
		break;
	default:
		asm("pclmulqdq $0x11, %1, %0" : "+x"(*d) : "x"(*s));
		break;
	}
}

/* SHA1RNDS4: imm 0-3 */
static void c_sha1rnds4(v2di *d, const v2di *s, unsigned imm)
{
	switch (imm & 3) {
	case 0:
		asm("sha1rnds4 $0, %1, %0" : "+x"(*d) : "x"(*s));
		break;
	case 1:
		asm("sha1rnds4 $1, %1, %0" : "+x"(*d) : "x"(*s));
		break;
	case 2:
		asm("sha1rnds4 $2, %1, %0" : "+x"(*d) : "x"(*s));
		break;
	default:
		asm("sha1rnds4 $3, %1, %0" : "+x"(*d) : "x"(*s));
		break;
	}
}

/* AESKEYGENASSIST: the round constant is the immediate */
#define AESKG_CASE(n)                                                        \
	case n:                                                              \
		asm("aeskeygenassist $" #n ", %1, %0" : "=x"(*d) : "x"(*s)); \
		break;
#define AESKG_C4(n)  AESKG_CASE(n) AESKG_CASE(n + 1) AESKG_CASE(n + 2) AESKG_CASE(n + 3)
#define AESKG_C16(n) AESKG_C4(n) AESKG_C4(n + 4) AESKG_C4(n + 8) AESKG_C4(n + 12)
#define AESKG_C64(n) AESKG_C16(n) AESKG_C16(n + 16) AESKG_C16(n + 32) AESKG_C16(n + 48)

static void c_aeskeygenassist(v2di *d, const v2di *s, unsigned imm)
{
	switch (imm & 0xff) {
		AESKG_C64(0)
		AESKG_C64(64)
		AESKG_C64(128)
		AESKG_C64(192)
	}
}

/* CMPPS & co: the predicate is the immediate (0-7) */
#define CMPOP(name, mnem)                                                      \
	static void name(v2di *d, const v2di *s, unsigned imm)                 \
	{                                                                      \
		switch (imm & 7) {                                             \
		case 0:                                                        \
			asm volatile(mnem " $0, %1, %0" : "+x"(*d) : "x"(*s)); \
			break;                                                 \
		case 1:                                                        \
			asm volatile(mnem " $1, %1, %0" : "+x"(*d) : "x"(*s)); \
			break;                                                 \
		case 2:                                                        \
			asm volatile(mnem " $2, %1, %0" : "+x"(*d) : "x"(*s)); \
			break;                                                 \
		case 3:                                                        \
			asm volatile(mnem " $3, %1, %0" : "+x"(*d) : "x"(*s)); \
			break;                                                 \
		case 4:                                                        \
			asm volatile(mnem " $4, %1, %0" : "+x"(*d) : "x"(*s)); \
			break;                                                 \
		case 5:                                                        \
			asm volatile(mnem " $5, %1, %0" : "+x"(*d) : "x"(*s)); \
			break;                                                 \
		case 6:                                                        \
			asm volatile(mnem " $6, %1, %0" : "+x"(*d) : "x"(*s)); \
			break;                                                 \
		default:                                                       \
			asm volatile(mnem " $7, %1, %0" : "+x"(*d) : "x"(*s)); \
			break;                                                 \
		}                                                              \
	}
CMPOP(c_cmpps, "cmpps")
CMPOP(c_cmppd, "cmppd")
CMPOP(c_cmpss, "cmpss")
CMPOP(c_cmpsd, "cmpsd")

/* ROUNDPS & co: imm bits 0-3 */
#define RND1(mnem, n)                                                       \
	case n:                                                             \
		asm volatile(mnem " $" #n ", %1, %0" : "+x"(*d) : "x"(*s)); \
		break;
#define RNDOP(name, mnem)                                      \
	static void name(v2di *d, const v2di *s, unsigned imm) \
	{                                                      \
		switch (imm & 15) {                            \
			RND1(mnem, 0)                          \
			RND1(mnem, 1)                          \
			RND1(mnem, 2)                          \
			RND1(mnem, 3)                          \
			RND1(mnem, 4)                          \
			RND1(mnem, 5)                          \
			RND1(mnem, 6)                          \
			RND1(mnem, 7)                          \
			RND1(mnem, 8)                          \
			RND1(mnem, 9)                          \
			RND1(mnem, 10)                         \
			RND1(mnem, 11)                         \
			RND1(mnem, 12)                         \
			RND1(mnem, 13)                         \
			RND1(mnem, 14)                         \
			RND1(mnem, 15)                         \
		}                                              \
	}
RNDOP(c_roundps, "roundps")
RNDOP(c_roundpd, "roundpd")
RNDOP(c_roundss, "roundss")
RNDOP(c_roundsd, "roundsd")

/* DPPS/DPPD: products under the mask, summed pairwise, each step rounded by the host */
static float f_mul(float a, float b)
{
	asm volatile("mulss %1, %0" : "+x"(a) : "x"(b));
	return a;
}

static float f_add(float a, float b)
{
	asm volatile("addss %1, %0" : "+x"(a) : "x"(b));
	return a;
}

static double d_mul(double a, double b)
{
	asm volatile("mulsd %1, %0" : "+x"(a) : "x"(b));
	return a;
}

static double d_add(double a, double b)
{
	asm volatile("addsd %1, %0" : "+x"(a) : "x"(b));
	return a;
}

static void c_dpps(v2di *d, const v2di *s, unsigned imm)
{
	union emu_xmm a, b, r;
	float t[4], sum;
	unsigned i;
	memcpy(&a, d, 16);
	memcpy(&b, s, 16);
	for (i = 0; i < 4; i++)
		t[i] = (imm & (16u << i)) ? f_mul(a.f[i], b.f[i]) : 0.0f;
	sum = f_add(f_add(t[0], t[1]), f_add(t[2], t[3]));
	for (i = 0; i < 4; i++)
		r.f[i] = (imm & (1u << i)) ? sum : 0.0f;
	memcpy(d, &r, 16);
}

static void c_dppd(v2di *d, const v2di *s, unsigned imm)
{
	union emu_xmm a, b, r;
	double t[2], sum;
	unsigned i;
	memcpy(&a, d, 16);
	memcpy(&b, s, 16);
	for (i = 0; i < 2; i++)
		t[i] = (imm & (16u << i)) ? d_mul(a.f64[i], b.f64[i]) : 0.0;
	sum = d_add(t[0], t[1]);
	for (i = 0; i < 2; i++)
		r.f64[i] = (imm & (1u << i)) ? sum : 0.0;
	memcpy(d, &r, 16);
}

/* --- overflow and underflow with OM or UM clear --- */

/* With OE or UE unmasked the flags depend on the result rounded to the destination's
 * precision with an unbounded exponent, r (SDM vol. 1 4.9.1.4-6, 11.5.2.4-6; the AMD64 APM
 * and its formal model, Russinoff's "sse-round", say the same): overflow (|r| above the
 * largest finite value) sets OE, and PE only when r is inexact; underflow (r non-zero and
 * below the smallest normal) sets UE whether or not r is exact, and PE when it is not. The
 * host computed with every exception masked, which sets PE for any overflow and for a
 * denormalisation loss, and UE only for an inexact tiny result. So the elements are
 * recomputed here, one operation at a time, by the x87 with precision control set to the
 * element's precision: its 15-bit exponent holds any sum, product or quotient of doubles,
 * so it rounds exactly as "with unbounded exponent", and FSW.PE tells whether r is exact. */

#define MX_OE  0x08u
#define MX_UE  0x10u
#define MX_PE  0x20u
#define MX_DAZ 0x40u
#define MX_OM  0x400u
#define MX_UM  0x800u
#define MX_FZ  0x8000u

static uint64_t daz(uint32_t mxcsr, uint64_t v, bool f64)
{
	if (!(mxcsr & MX_DAZ))
		return v;
	if (f64)
		return (v & 0x7ff0000000000000ull) ? v : v & (1ull << 63);
	return (v & 0x7f800000u) ? v : v & 0x80000000u;
}

/* a OP b (FK_CVT: a alone) rounded by the x87 as described above; *r gets the 80-bit
 * result, the return value is the x87 status word. */
static uint16_t x87_round(unsigned op, uint64_t a, uint64_t b, bool f64, unsigned pc, unsigned rc,
			  uint8_t r[16])
{
	uint16_t cw = (uint16_t)(0x7f | (pc << 8) | (rc << 10)), host_cw, sw = 0;
	uint32_t fa = (uint32_t)a, fb = (uint32_t)b;
	asm volatile("fnstcw %0\n\tfninit\n\tfldcw %1" : "=m"(host_cw) : "m"(cw));
#define X87_OP(load, insn, lhs, rhs)                                    \
	asm volatile(load " %2\n\t" insn " %3\n\tfstpt %0\n\tfnstsw %1" \
		     : "=m"(*(uint8_t(*)[10])r), "=m"(sw)               \
		     : "m"(lhs), "m"(rhs))
	if (op == FK_CVT) {
		static const uint64_t one = 0x3ff0000000000000ull;
		X87_OP("fldl", "fmull", a, one);
	} else if (f64) {
		switch (op) {
		case FK_ADD:
			X87_OP("fldl", "faddl", a, b);
			break;
		case FK_SUB:
			X87_OP("fldl", "fsubl", a, b);
			break;
		case FK_MUL:
			X87_OP("fldl", "fmull", a, b);
			break;
		default:
			X87_OP("fldl", "fdivl", a, b);
			break;
		}
	} else {
		switch (op) {
		case FK_ADD:
			X87_OP("flds", "fadds", fa, fb);
			break;
		case FK_SUB:
			X87_OP("flds", "fsubs", fa, fb);
			break;
		case FK_MUL:
			X87_OP("flds", "fmuls", fa, fb);
			break;
		default:
			X87_OP("flds", "fdivs", fa, fb);
			break;
		}
	}
#undef X87_OP
	asm volatile("fninit\n\tfldcw %0" : : "m"(host_cw));
	return sw;
}

/* The MXCSR flags one operation of float (f64 false) or double elements raises after the
 * computation (the operands' own flags, IE/DE/ZE, come from the host). FK_CVT: a is a
 * double, the result a float. */
static uint32_t fp_step(uint32_t mxcsr, unsigned op, uint64_t a, uint64_t b, bool f64)
{
	bool f64_res = f64 && op != FK_CVT;
	int emax = f64_res ? 1024 : 128, emin = f64_res ? -1022 : -126;
	int lsb_min = f64_res ? -1074 : -149;
	uint8_t r[16] __attribute__((aligned(16)));
	uint64_t mant;
	uint16_t se, sw;
	bool inexact;
	int e;

	sw = x87_round(op, daz(mxcsr, a, f64), daz(mxcsr, b, f64), f64, f64_res ? 2 : 0,
		       (mxcsr >> 13) & 3, r);
	inexact = sw & 0x20;
	memcpy(&mant, r, 8);
	memcpy(&se, r + 8, 2);
	if ((se & 0x7fff) == 0x7fff || !mant)
		return 0; /* a NaN, an infinity or an exact zero: no post-computation flag */
	e = (se & 0x7fff) - 16383;
	if (e >= emax) /* |r| >= 2^emax: above the largest finite value */
		return MX_OE | ((mxcsr & MX_OM) || inexact ? MX_PE : 0);
	if (e < emin) {
		if (!(mxcsr & MX_UM))
			return MX_UE | (inexact ? MX_PE : 0);
		/* masked: flushed to zero, or denormalised; UE and PE unless that is exact */
		if (!(mxcsr & MX_FZ) && !inexact && e - 63 + __builtin_ctzll(mant) >= lsb_min)
			return 0;
		return MX_UE | MX_PE;
	}
	return inexact ? MX_PE : 0;
}

static uint64_t elem(const union emu_xmm *x, unsigned i, bool f64)
{
	return f64 ? x->q[i] : x->d[i];
}

static uint32_t f_bits(float f)
{
	uint32_t v;
	memcpy(&v, &f, 4);
	return v;
}

static uint64_t d_bits(double f)
{
	uint64_t v;
	memcpy(&v, &f, 8);
	return v;
}

/* One multiplication or addition of DPPS/DPPD on the host, alone, with every exception
 * masked: *res gets its result, the return value its flags, the post-computation ones made
 * exact by fp_step() when OM or UM is clear. */
static uint32_t dp_op(uint32_t mxcsr, unsigned op, uint64_t a, uint64_t b, bool f64, uint64_t *res)
{
	uint32_t want = (mxcsr & ~0x3fu) | 0x1f80u, m;
	asm volatile("ldmxcsr %0" : : "m"(want));
	if (f64) {
		double x, y;
		memcpy(&x, &a, 8);
		memcpy(&y, &b, 8);
		*res = d_bits(op == FK_MUL ? d_mul(x, y) : d_add(x, y));
	} else {
		float x, y;
		uint32_t xa = (uint32_t)a, xb = (uint32_t)b;
		memcpy(&x, &xa, 4);
		memcpy(&y, &xb, 4);
		*res = f_bits(op == FK_MUL ? f_mul(x, y) : f_add(x, y));
	}
	asm volatile("stmxcsr %0" : "=m"(m));
	m &= 0x3f;
	if ((mxcsr & (MX_OM | MX_UM)) != (MX_OM | MX_UM))
		m = (m & 0x07) | fp_step(mxcsr, op, a, b, f64);
	return m;
}

/* DPPS/DPPD with an exception unmasked. The instruction runs in stages, the selected
 * multiplications, then each level of additions, and "exceptions are determined separately
 * for each add and multiply" (SDM vol. 2, DPPS): as measured, a stage whose operands raise
 * an unmasked IE/DE ends the instruction with the flags of the stages before and those
 * operand flags; a stage with an unmasked result exception (OE/UE/PE) ends it with every
 * flag so far; later stages add nothing. Their operands are the masked results of the stage
 * before (an overflowed product is an infinity, a tiny one a denormal). */
static void fp_dp_commit(struct emu_cpu *cpu, const struct insn *in, const v2di *dst,
			 const v2di *src)
{
	uint32_t mx = cpu->mxcsr, unmasked = ~(mx >> 7) & 0x3f, fl = 0, pre = 0, post = 0, f;
	bool f64 = in->aux & FK_F64;
	unsigned i, n = f64 ? 2 : 4, imm = in->ib;
	union emu_xmm a, b;
	uint64_t t[4];

	memcpy(&a, dst, 16);
	memcpy(&b, src, 16);
	for (i = 0; i < n; i++) {
		t[i] = 0; /* +0.0 */
		if (imm & (16u << i)) {
			f = dp_op(mx, FK_MUL, elem(&a, i, f64), elem(&b, i, f64), f64, &t[i]);
			pre |= f & 0x07;
			post |= f & 0x38;
		}
	}
	for (;;) {
		if (pre & unmasked) {
			fl |= pre;
			break;
		}
		fl |= pre | post;
		if ((post & unmasked) || n == 1)
			break;
		pre = post = 0;
		for (i = 0; i < n / 2; i++) {
			f = dp_op(mx, FK_ADD, t[2 * i], t[2 * i + 1], f64, &t[i]);
			pre |= f & 0x07;
			post |= f & 0x38;
		}
		n /= 2;
	}
	cpu->mxcsr |= fl;
	if (fl & unmasked)
		emu_raise(cpu, in, (cpu->cr4 & 0x400) ? EXC_XM : EXC_UD, 0, false);
}

/* The exact flags of an instruction that ran on the host with every exception masked and
 * raised flags (its IE/DE/ZE are right as they are), with OM or UM clear: for packed
 * operations the OR over the elements (SDM vol. 1 11.5.1). Cold: only a guest that unmasks
 * overflow or underflow comes here. */
static __attribute__((cold, noinline)) uint32_t fp_post(const struct emu_cpu *cpu,
							const struct insn *in, uint32_t flags,
							const v2di *dst, const v2di *src)
{
	unsigned kind = in->aux & FK_KIND, i, n, half;
	bool f64 = in->aux & FK_F64;
	uint32_t mx = cpu->mxcsr, post = 0;
	union emu_xmm d, s;

	if (flags & ~(mx >> 7) & 0x07)
		return flags; /* an unmasked pre-computation exception: no result is computed */
	memcpy(&d, dst, 16);
	memcpy(&s, src, 16);
	n = (in->aux & FK_SCALAR) ? 1 : (f64 && kind != FK_CVT) ? 2 : 4;
	half = n / 2;
	switch (kind) {
	case FK_CVT:
		for (i = 0; i < ((in->aux & FK_SCALAR) ? 1u : 2u); i++)
			post |= fp_step(mx, FK_CVT, s.q[i], 0, true);
		break;
	case FK_ADDSUB:
		for (i = 0; i < n; i++)
			post |= fp_step(mx, (i & 1) ? FK_ADD : FK_SUB, elem(&d, i, f64),
					elem(&s, i, f64), f64);
		break;
	case FK_HADD:
	case FK_HSUB:
		for (i = 0; i < n; i++) {
			const union emu_xmm *x = i < half ? &d : &s;
			unsigned j = 2 * (i % half);
			post |= fp_step(mx, kind == FK_HADD ? FK_ADD : FK_SUB, elem(x, j, f64),
					elem(x, j + 1, f64), f64);
		}
		break;
	default:
		for (i = 0; i < n; i++)
			post |= fp_step(mx, kind, elem(&d, i, f64), elem(&s, i, f64), f64);
		break;
	}
	return (flags & 0x07) | post;
}

/* --- moves --- */

/* full 16-byte load into xmm[reg] (MOVAPS/MOVUPS/MOVDQA/MOVDQU/LDDQU/MOVNTDQA) */
HANDLER(op_movx_load)
{
	v2di v;
	emu_sse_check(cpu, in);
	v = sse_src(cpu, in);
	*xr(cpu, in->reg) = v;
	dispatch_next(cpu, in);
}

/* 16-byte store of xmm[reg] (register form: xmm[rm] = xmm[reg]) */
HANDLER(op_movx_store)
{
	emu_sse_check(cpu, in);
	if (in->mem) {
		uint64_t a = in->op == M128A ? mem_addr_aligned(cpu, in, 16) : emu_ea(cpu, in);
		memcpy(emu_mem(cpu, in, a, 16, true), xr(cpu, in->reg), 16);
	} else {
		*xr(cpu, in->rm) = *xr(cpu, in->reg);
	}
	dispatch_next(cpu, in);
}

/* MOVSS/MOVSD load: memory zero-extends, register merges the low element */
HANDLER(op_movs_load)
{
	unsigned n = in->op == M32 ? 4 : 8;
	emu_sse_check(cpu, in);
	if (in->mem) {
		v2di v = sse_src(cpu, in);
		*xr(cpu, in->reg) = v;
	} else {
		memcpy(xr(cpu, in->reg), xr(cpu, in->rm), n);
	}
	dispatch_next(cpu, in);
}

/* Store the low (op2 0) or high (op2 1) n bytes of xmm[reg]; register form per op */
HANDLER(op_movs_store)
{
	unsigned n = in->op == M32 ? 4 : 8;
	const uint8_t *src = cpu->xmm[in->reg].b + (in->op2 ? 8 : 0);
	emu_sse_check(cpu, in);
	if (in->mem) {
		memcpy(emu_mem(cpu, in, emu_ea(cpu, in), n, true), src, n);
	} else {
		memcpy(xr(cpu, in->rm), src, n); /* MOVSS/MOVSD xmm, xmm (store form) */
	}
	dispatch_next(cpu, in);
}

/* MOVLPS/MOVHPS/MOVLPD/MOVHPD loads (op2 0 low, 1 high), MOVHLPS/MOVLHPS register forms */
HANDLER(op_movhl_load)
{
	uint64_t v;
	emu_sse_check(cpu, in);
	if (in->mem)
		memcpy(&v, emu_mem(cpu, in, emu_ea(cpu, in), 8, false), 8);
	else
		v = cpu->xmm[in->rm].q[in->op2 ? 0 : 1]; /* MOVLHPS : MOVHLPS */
	cpu->xmm[in->reg].q[in->op2] = v;
	dispatch_next(cpu, in);
}

HANDLER(op_movddup)
{
	v2di v;
	emu_sse_check(cpu, in);
	v = sse_src(cpu, in);
	v[1] = v[0];
	*xr(cpu, in->reg) = v;
	dispatch_next(cpu, in);
}

/* MOVD/MOVQ xmm, r/m (op2 1: from a register) */
HANDLER(op_movd_to_xmm)
{
	uint64_t v;
	unsigned n = in->size == 8 ? 8 : 4;
	emu_sse_check(cpu, in);
	if (in->mem)
		v = emu_ld(cpu, in, emu_ea(cpu, in), n);
	else
		v = n == 8 ? cpu->gpr[in->rm] : (uint32_t)cpu->gpr[in->rm];
	cpu->xmm[in->reg].q[0] = v;
	cpu->xmm[in->reg].q[1] = 0;
	dispatch_next(cpu, in);
}

HANDLER(op_movd_from_xmm)
{
	unsigned n = in->size == 8 ? 8 : 4;
	uint64_t v = cpu->xmm[in->reg].q[0];
	emu_sse_check(cpu, in);
	if (in->mem)
		emu_st(cpu, in, emu_ea(cpu, in), v, n);
	else
		cpu->gpr[in->rm] = n == 8 ? v : (uint32_t)v;
	dispatch_next(cpu, in);
}

/* MOVQ xmm, xmm/m64 (F3 0F 7E): zero the upper half */
HANDLER(op_movq_load)
{
	v2di v;
	emu_sse_check(cpu, in);
	v = sse_src(cpu, in);
	v[1] = 0;
	*xr(cpu, in->reg) = v;
	dispatch_next(cpu, in);
}

/* MOVQ xmm/m64, xmm (66 0F D6) */
HANDLER(op_movq_store)
{
	emu_sse_check(cpu, in);
	if (in->mem) {
		emu_st(cpu, in, emu_ea(cpu, in), cpu->xmm[in->reg].q[0], 8);
	} else {
		cpu->xmm[in->rm].q[0] = cpu->xmm[in->reg].q[0];
		cpu->xmm[in->rm].q[1] = 0;
	}
	dispatch_next(cpu, in);
}

/* MMX moves: op 0 MOVD mm, r/m; 1 MOVD r/m, mm; 2 MOVQ mm, mm/m64; 3 MOVQ mm/m64, mm;
 * 4 MOVDQ2Q mm, xmm; 5 MOVQ2DQ xmm, mm */
HANDLER(op_mmx_mov)
{
	uint64_t v;
	unsigned n = in->size == 8 ? 8 : 4;
	mmx_check(cpu, in);
	switch (in->op) {
	case 0:
		if (in->mem)
			v = emu_ld(cpu, in, emu_ea(cpu, in), n);
		else
			v = n == 8 ? cpu->gpr[in->rm] : (uint32_t)cpu->gpr[in->rm];
		mm_enter(cpu);
		mm_set(cpu, in->reg, v);
		break;
	case 1:
		v = mm_get(cpu, in->reg);
		if (in->mem)
			emu_st(cpu, in, emu_ea(cpu, in), v, n);
		else
			cpu->gpr[in->rm] = n == 8 ? v : (uint32_t)v;
		mm_enter(cpu);
		break;
	case 2:
		v = in->mem ? emu_ld(cpu, in, emu_ea(cpu, in), 8) : mm_get(cpu, in->rm);
		mm_enter(cpu);
		mm_set(cpu, in->reg, v);
		break;
	case 3:
		v = mm_get(cpu, in->reg);
		if (in->mem)
			emu_st(cpu, in, emu_ea(cpu, in), v, 8);
		mm_enter(cpu);
		if (!in->mem)
			mm_set(cpu, in->rm, v);
		break;
	case 4:
		emu_sse_check(cpu, in);
		mm_enter(cpu);
		mm_set(cpu, in->reg, cpu->xmm[in->rm].q[0]);
		break;
	default:
		emu_sse_check(cpu, in);
		v = mm_get(cpu, in->rm);
		mm_enter(cpu);
		cpu->xmm[in->reg].q[0] = v;
		cpu->xmm[in->reg].q[1] = 0;
		break;
	}
	dispatch_next(cpu, in);
}

HANDLER(op_emms)
{
	mmx_check(cpu, in);
	cpu->ftw = 0xffff;
	dispatch_next(cpu, in);
}

/* MOVMSKPS (op 0), MOVMSKPD (1), PMOVMSKB (2, op2 SF_MMX for mm) */
HANDLER(op_movmsk)
{
	union emu_xmm v;
	unsigned i, m = 0;
	if (in->op2 & SF_MMX) {
		mmx_check(cpu, in);
		v.q[0] = mm_get(cpu, in->rm);
		for (i = 0; i < 8; i++)
			m |= (unsigned)(v.b[i] >> 7) << i;
		mm_enter(cpu);
		cpu->gpr[in->reg] = m;
		dispatch_next(cpu, in);
		return;
	}
	emu_sse_check(cpu, in);
	v = cpu->xmm[in->rm];
	switch (in->op) {
	case 0:
		for (i = 0; i < 4; i++)
			m |= (v.d[i] >> 31) << i;
		break;
	case 1:
		for (i = 0; i < 2; i++)
			m |= (unsigned)(v.q[i] >> 63) << i;
		break;
	default:
		for (i = 0; i < 16; i++)
			m |= (unsigned)(v.b[i] >> 7) << i;
		break;
	}
	cpu->gpr[in->reg] = m;
	dispatch_next(cpu, in);
}

/* MOVNTI m32/m64, r */
HANDLER(op_movnti)
{
	emu_st(cpu, in, emu_ea(cpu, in), cpu->gpr[in->reg], in->size == 8 ? 8 : 4);
	dispatch_next(cpu, in);
}

/* MASKMOVDQU xmm1, xmm2: bytes of xmm1 where xmm2's byte has bit 7 set go to [RDI] */
HANDLER(op_maskmov)
{
	uint64_t a = cpu->gpr[EMU_RDI];
	uint8_t *p;
	unsigned i;
	if (in->op2 & SF_MMX) {
		uint64_t v, m;
		mmx_check(cpu, in);
		v = mm_get(cpu, in->reg);
		m = mm_get(cpu, in->rm);
		if (in->asize == 4)
			a = (uint32_t)a;
		if (in->seg >= EMU_FS)
			a += cpu->seg[in->seg].base;
		p = emu_mem(cpu, in, emu_canon(cpu, in, a, false), 8, true);
		for (i = 0; i < 8; i++)
			if ((m >> (8 * i + 7)) & 1)
				p[i] = (uint8_t)(v >> (8 * i));
		mm_enter(cpu);
		dispatch_next(cpu, in);
		return;
	}
	emu_sse_check(cpu, in);
	if (in->asize == 4)
		a = (uint32_t)a;
	if (in->seg >= EMU_FS)
		a += cpu->seg[in->seg].base;
	p = emu_mem(cpu, in, emu_canon(cpu, in, a, false), 16, true);
	for (i = 0; i < 16; i++)
		if (cpu->xmm[in->rm].b[i] & 0x80)
			p[i] = cpu->xmm[in->reg].b[i];
	dispatch_next(cpu, in);
}

/* --- conversions with general registers --- */

/* CVTSI2SS/SD xmm, r/m32/64: op 0 ss, 1 sd */
HANDLER(op_cvtsi2f)
{
	uint64_t v;
	v2di d;
	uint32_t saved;
	emu_sse_check(cpu, in);
	if (in->mem)
		v = emu_ld(cpu, in, emu_ea(cpu, in), in->size == 8 ? 8 : 4);
	else
		v = cpu->gpr[in->rm];
	d = *xr(cpu, in->reg);
	fp_enter(cpu, &saved);
	if (in->size == 8) {
		if (in->op)
			asm volatile("cvtsi2sdq %1, %0" : "+x"(d) : "r"(v));
		else
			asm volatile("cvtsi2ssq %1, %0" : "+x"(d) : "r"(v));
	} else {
		uint32_t w = (uint32_t)v;
		if (in->op)
			asm volatile("cvtsi2sdl %1, %0" : "+x"(d) : "r"(w));
		else
			asm volatile("cvtsi2ssl %1, %0" : "+x"(d) : "r"(w));
	}
	fp_commit(cpu, in, fp_leave(cpu));
	*xr(cpu, in->reg) = d;
	dispatch_next(cpu, in);
}

/* CVT(T)SS2SI / CVT(T)SD2SI r32/64, xmm/m: op bit 0 = sd, bit 1 = truncate */
HANDLER(op_cvtf2si)
{
	v2di s;
	uint64_t r;
	uint32_t saved;
	emu_sse_check(cpu, in);
	s = sse_src(cpu, in);
	fp_enter(cpu, &saved);
	if (in->size == 8) {
		switch (in->ib & 3) {
		case 0:
			asm volatile("cvtss2si %1, %0" : "=r"(r) : "x"(s));
			break;
		case 1:
			asm volatile("cvtsd2si %1, %0" : "=r"(r) : "x"(s));
			break;
		case 2:
			asm volatile("cvttss2si %1, %0" : "=r"(r) : "x"(s));
			break;
		default:
			asm volatile("cvttsd2si %1, %0" : "=r"(r) : "x"(s));
			break;
		}
	} else {
		uint32_t w;
		switch (in->ib & 3) {
		case 0:
			asm volatile("cvtss2si %1, %0" : "=r"(w) : "x"(s));
			break;
		case 1:
			asm volatile("cvtsd2si %1, %0" : "=r"(w) : "x"(s));
			break;
		case 2:
			asm volatile("cvttss2si %1, %0" : "=r"(w) : "x"(s));
			break;
		default:
			asm volatile("cvttsd2si %1, %0" : "=r"(w) : "x"(s));
			break;
		}
		r = w;
	}
	fp_commit(cpu, in, fp_leave(cpu));
	cpu->gpr[in->reg] = r;
	dispatch_next(cpu, in);
}

/* MMX conversions via their SSE2 forms: op 0 CVTPI2PS, 1 CVTPI2PD, 2 CVTPS2PI, 3 CVTTPS2PI,
 * 4 CVTPD2PI, 5 CVTTPD2PI */
HANDLER(op_cvt_mmx)
{
	v2di s, d;
	uint32_t saved;
	emu_sse_check(cpu, in);
	mmx_check(cpu, in);
	if (in->ib < 2) {
		if (in->mem)
			s = (v2di){(long long)emu_ld(cpu, in, emu_ea(cpu, in), 8), 0};
		else
			s = (v2di){(long long)mm_get(cpu, in->rm), 0};
	} else {
		s = sse_src(cpu, in);
	}
	d = *xr(cpu, in->reg);
	fp_enter(cpu, &saved);
	switch (in->ib) {
	case 0: {
		v2di t = s;
		h_cvtdq2ps(&t, &s);
		d[0] = t[0];
		break;
	}
	case 1:
		h_cvtdq2pd(&d, &s);
		break;
	case 2:
		h_cvtps2dq(&d, &s);
		break;
	case 3:
		h_cvttps2dq(&d, &s);
		break;
	case 4:
		h_cvtpd2dq(&d, &s);
		break;
	default:
		h_cvttpd2dq(&d, &s);
		break;
	}
	fp_commit(cpu, in, fp_leave(cpu));
	if (in->ib < 2) {
		*xr(cpu, in->reg) = d;
	} else {
		mm_enter(cpu);
		mm_set(cpu, in->reg, (uint64_t)d[0]);
	}
	dispatch_next(cpu, in);
}

/* COMISS/UCOMISS/COMISD/UCOMISD: op bit 0 = double, bit 1 = unordered-quiet */
HANDLER(op_comis)
{
	v2di s, d;
	uint64_t fl;
	uint32_t saved;
	emu_sse_check(cpu, in);
	s = sse_src(cpu, in);
	d = *xr(cpu, in->reg);
	fp_enter(cpu, &saved);
	switch (in->ib & 3) {
	case 0:
		asm volatile("comiss %1, %2\n\tpushfq\n\tpopq %0"
			     : "=r"(fl)
			     : "x"(s), "x"(d)
			     : "cc");
		break;
	case 1:
		asm volatile("comisd %1, %2\n\tpushfq\n\tpopq %0"
			     : "=r"(fl)
			     : "x"(s), "x"(d)
			     : "cc");
		break;
	case 2:
		asm volatile("ucomiss %1, %2\n\tpushfq\n\tpopq %0"
			     : "=r"(fl)
			     : "x"(s), "x"(d)
			     : "cc");
		break;
	default:
		asm volatile("ucomisd %1, %2\n\tpushfq\n\tpopq %0"
			     : "=r"(fl)
			     : "x"(s), "x"(d)
			     : "cc");
		break;
	}
	fp_commit(cpu, in, fp_leave(cpu));
	flags_eager(cpu);
	cpu->rflags = (cpu->rflags & ~(uint64_t)FL_ARITH) | (fl & (FL_ZF | FL_PF | FL_CF));
	dispatch_next(cpu, in);
}

/* SHA256RNDS2 xmm1, xmm2/m128, <XMM0> */
HANDLER(op_sha256rnds2)
{
	v2di s, d, k;
	emu_sse_check(cpu, in);
	s = sse_src(cpu, in);
	d = *xr(cpu, in->reg);
	k = *xr(cpu, 0);
	asm("sha256rnds2 %2, %1, %0" : "+x"(d) : "x"(s), "Yz"(k));
	*xr(cpu, in->reg) = d;
	dispatch_next(cpu, in);
}

/* PTEST */
HANDLER(op_ptest)
{
	v2di s, d;
	emu_sse_check(cpu, in);
	s = sse_src(cpu, in);
	d = *xr(cpu, in->reg);
	flags_eager(cpu);
	cpu->rflags &= ~(uint64_t)FL_ARITH;
	if (!((d[0] & s[0]) | (d[1] & s[1])))
		cpu->rflags |= FL_ZF;
	if (!((~d[0] & s[0]) | (~d[1] & s[1])))
		cpu->rflags |= FL_CF;
	dispatch_next(cpu, in);
}

/* BLENDVPS/BLENDVPD/PBLENDVB with the implicit XMM0 mask: op = element size */
HANDLER(op_blendv)
{
	union emu_xmm s, d, m = cpu->xmm[0];
	unsigned i;
	v2di sv;
	emu_sse_check(cpu, in);
	sv = sse_src(cpu, in);
	memcpy(&s, &sv, 16);
	d = cpu->xmm[in->reg];
	switch (in->ib) {
	case 1:
		for (i = 0; i < 16; i++)
			if (m.b[i] & 0x80)
				d.b[i] = s.b[i];
		break;
	case 4:
		for (i = 0; i < 4; i++)
			if (m.d[i] >> 31)
				d.d[i] = s.d[i];
		break;
	default:
		for (i = 0; i < 2; i++)
			if (m.q[i] >> 63)
				d.q[i] = s.q[i];
		break;
	}
	cpu->xmm[in->reg] = d;
	dispatch_next(cpu, in);
}

/* shifts by immediate (0F 71-73): op = host shift by register count, or byte shifts */
HANDLER(op_shift_imm)
{
	sse_fn fn = (sse_fn)(uintptr_t)in->imm;
	v2di cnt = {in->ib, 0};
	if (in->op2 & SF_MMX) {
		v2di d = {(long long)mm_get(cpu, in->rm), 0};
		mmx_check(cpu, in);
		fn(&d, &cnt);
		mm_enter(cpu);
		mm_set(cpu, in->rm, (uint64_t)d[0]);
	} else {
		emu_sse_check(cpu, in);
		fn(xr(cpu, in->rm), &cnt);
	}
	dispatch_next(cpu, in);
}

static void c_psrldq(v2di *d, const v2di *cnt)
{
	uint8_t b[32] = {0};
	unsigned n = (unsigned)(*cnt)[0];
	if (n > 16)
		n = 16;
	memcpy(b, d, 16);
	memcpy(d, b + n, 16);
}

static void c_pslldq(v2di *d, const v2di *cnt)
{
	uint8_t b[32] = {0};
	unsigned n = (unsigned)(*cnt)[0];
	if (n > 16)
		n = 16;
	memcpy(b + 16, d, 16);
	memcpy(d, b + 16 - n, 16);
}

/* PINSRW/PINSRB/PINSRD/PINSRQ: op = element bytes */
HANDLER(op_pinsr)
{
	uint64_t v;
	unsigned n = in->op;
	if (in->mem)
		v = emu_ld(cpu, in, emu_ea(cpu, in), n);
	else
		v = cpu->gpr[in->rm];
	if (in->op2 & SF_MMX) {
		uint64_t m;
		mmx_check(cpu, in);
		m = mm_get(cpu, in->reg);
		unsigned sh = (in->ib & 3) * 16;
		m = (m & ~(0xffffull << sh)) | ((v & 0xffff) << sh);
		mm_enter(cpu);
		mm_set(cpu, in->reg, m);
		dispatch_next(cpu, in);
		return;
	}
	emu_sse_check(cpu, in);
	{
		unsigned idx = in->ib & (16 / n - 1);
		emu_st_ptr(cpu->xmm[in->reg].b + idx * n, v, n);
	}
	dispatch_next(cpu, in);
}

/* PEXTRW/PEXTRB/PEXTRD/PEXTRQ/EXTRACTPS: op = element bytes; the register form writes a
 * zero-extended GPR */
HANDLER(op_pextr)
{
	unsigned n = in->op;
	uint64_t v;
	if (in->op2 & SF_MMX) {
		mmx_check(cpu, in);
		v = (mm_get(cpu, in->rm) >> ((in->ib & 3) * 16)) & 0xffff;
		mm_enter(cpu);
		cpu->gpr[in->reg] = v;
		dispatch_next(cpu, in);
		return;
	}
	emu_sse_check(cpu, in);
	v = emu_ld_ptr(cpu->xmm[in->reg].b + (in->ib & (16 / n - 1)) * n, n);
	if (in->mem)
		emu_st(cpu, in, emu_ea(cpu, in), v, n);
	else
		cpu->gpr[in->rm] = v;
	dispatch_next(cpu, in);
}

/* PEXTRW r32, xmm, imm8 (0F C5): register operands the other way round */
HANDLER(op_pextrw_c5)
{
	emu_sse_check(cpu, in);
	cpu->gpr[in->reg] = cpu->xmm[in->rm].w[in->ib & 7];
	dispatch_next(cpu, in);
}

/* --- SSE4.2 string compares: the host instruction, immediate by table --- */

#define PCMP_CASE(n)                                                                        \
	case n:                                                                             \
		switch (kind) {                                                             \
		case 0:                                                                     \
			asm volatile("pcmpestrm $" #n ", %[s], %[d]\n\tpushfq\n\tpopq %[f]" \
				     : "=Yz"(res), [f] "=r"(fl)                             \
				     : [d] "x"(d), [s] "x"(s), "a"(la), "d"(ld)             \
				     : "cc");                                               \
			break;                                                              \
		case 1:                                                                     \
			asm volatile("pcmpestri $" #n ", %[s], %[d]\n\tpushfq\n\tpopq %[f]" \
				     : "=c"(idx), [f] "=r"(fl)                              \
				     : [d] "x"(d), [s] "x"(s), "a"(la), "d"(ld)             \
				     : "cc");                                               \
			break;                                                              \
		case 2:                                                                     \
			asm volatile("pcmpistrm $" #n ", %[s], %[d]\n\tpushfq\n\tpopq %[f]" \
				     : "=Yz"(res), [f] "=r"(fl)                             \
				     : [d] "x"(d), [s] "x"(s)                               \
				     : "cc");                                               \
			break;                                                              \
		default:                                                                    \
			asm volatile("pcmpistri $" #n ", %[s], %[d]\n\tpushfq\n\tpopq %[f]" \
				     : "=c"(idx), [f] "=r"(fl)                              \
				     : [d] "x"(d), [s] "x"(s)                               \
				     : "cc");                                               \
			break;                                                              \
		}                                                                           \
		break;
#define PCMP_C4(n)  PCMP_CASE(n) PCMP_CASE(n + 1) PCMP_CASE(n + 2) PCMP_CASE(n + 3)
#define PCMP_C16(n) PCMP_C4(n) PCMP_C4(n + 4) PCMP_C4(n + 8) PCMP_C4(n + 12)
#define PCMP_C64(n) PCMP_C16(n) PCMP_C16(n + 16) PCMP_C16(n + 32) PCMP_C16(n + 48)

/* op: 0 PCMPESTRM, 1 PCMPESTRI, 2 PCMPISTRM, 3 PCMPISTRI */
HANDLER(op_pcmpstr)
{
	v2di s, d, res = {0, 0};
	uint64_t fl = 0;
	uint32_t idx = 0;
	unsigned kind = in->op2 >> 5;
	long long la, ld;
	emu_sse_check(cpu, in);
	s = sse_src(cpu, in);
	d = *xr(cpu, in->reg);
	/* explicit lengths: EAX/EDX, or RAX/RDX with REX.W, saturated by the instruction */
	la = in->size == 8 ? (long long)cpu->gpr[EMU_RAX] : (int32_t)cpu->gpr[EMU_RAX];
	ld = in->size == 8 ? (long long)cpu->gpr[EMU_RDX] : (int32_t)cpu->gpr[EMU_RDX];
	if (la > 16)
		la = 16;
	if (la < -16)
		la = -16;
	if (ld > 16)
		ld = 16;
	if (ld < -16)
		ld = -16;
	switch (in->ib) {
		PCMP_C64(0)
		PCMP_C64(64)
		PCMP_C64(128)
		PCMP_C64(192)
	}
	if (kind & 1)
		cpu->gpr[EMU_RCX] = idx;
	else
		*xr(cpu, 0) = res;
	flags_eager(cpu);
	cpu->rflags = (cpu->rflags & ~(uint64_t)FL_ARITH) | (fl & (FL_CF | FL_ZF | FL_SF | FL_OF));
	dispatch_next(cpu, in);
}

/* --- LDMXCSR / STMXCSR --- */

HANDLER(op_ldmxcsr)
{
	uint32_t v;
	emu_sse_check(cpu, in);
	v = (uint32_t)emu_ld(cpu, in, emu_ea(cpu, in), 4);
	if (v & ~EMU_MXCSR_MASK)
		emu_raise(cpu, in, EXC_GP, 0, true);
	cpu->mxcsr = v;
	cpu->mx_loaded = 0;
	cpu->mx_lazy = 0;
	dispatch_next(cpu, in);
}

HANDLER(op_stmxcsr)
{
	emu_sse_check(cpu, in);
	emu_mxcsr_sync(cpu);
	emu_st(cpu, in, emu_ea(cpu, in), cpu->mxcsr, 4);
	dispatch_next(cpu, in);
}

/* ------------------------------------------------------------------------------------ */
/* Selector */

static bool bin(struct insn *in, sse_fn fn, unsigned mem, unsigned flags)
{
	in->fn = op_sse_bin;
	in->imm = (uint64_t)(uintptr_t)fn;
	in->op = (uint8_t)mem;
	in->op2 = (uint8_t)flags;
	return true;
}

static bool bini(struct insn *in, sse_fni fn, unsigned mem, unsigned flags)
{
	in->fn = op_sse_bini;
	in->imm = (uint64_t)(uintptr_t)fn;
	in->op = (uint8_t)mem;
	in->op2 = (uint8_t)flags;
	return true;
}

static bool simple(struct insn *in, emu_handler fn, unsigned mem, unsigned op2)
{
	in->fn = fn;
	in->op = (uint8_t)mem;
	in->op2 = (uint8_t)op2;
	return true;
}

/* 4-way choice by mandatory prefix: none, 66, F3, F2 (fn NULL = invalid) */
static bool fp4(struct insn *in, unsigned mand, sse_fn ps, sse_fn pd, sse_fn ss, sse_fn sd)
{
	switch (mand) {
	case 0:
		return ps && bin(in, ps, M128A, SF_FP);
	case 0x66:
		return pd && bin(in, pd, M128A, SF_FP);
	case 0xf3:
		return ss && bin(in, ss, M32, SF_FP);
	default:
		return sd && bin(in, sd, M64, SF_FP);
	}
}

/* arithmetic that can overflow or underflow: fp4, and what fp_post() recomputes */
static bool fp4k(struct insn *in, unsigned mand, unsigned kind, sse_fn ps, sse_fn pd, sse_fn ss,
		 sse_fn sd)
{
	static const uint8_t fmt[4] = {0, FK_F64, FK_SCALAR, FK_F64 | FK_SCALAR};
	if (!fp4(in, mand, ps, pd, ss, sd))
		return false;
	in->aux = (uint16_t)(kind | fmt[mand == 0 ? 0 : mand == 0x66 ? 1 : mand == 0xf3 ? 2 : 3]);
	return true;
}

/* packed-only arithmetic of SSE3 (66: double, F2: float) */
static bool fp_pk(struct insn *in, unsigned mand, unsigned kind, sse_fn ps, sse_fn pd)
{
	if (mand != 0x66 && mand != 0xf2)
		return false;
	bin(in, mand == 0x66 ? pd : ps, M128A, SF_FP);
	in->aux = (uint16_t)(kind | (mand == 0x66 ? FK_F64 : 0));
	return true;
}

/* integer op with an MMX (no prefix) and an SSE2 (66) form */
static bool intop(struct insn *in, unsigned mand, sse_fn fn)
{
	if (mand == 0x66)
		return bin(in, fn, M128A, 0);
	if (mand == 0) {
		in->reg &= 7;
		in->rm &= 7;
		return bin(in, fn, M64, SF_MMX);
	}
	return false;
}

static bool select_0f(struct insn *in, unsigned opc, unsigned mand)
{
	unsigned r = in->reg & 7;

	switch (opc) {
	case 0x10:
		if (mand == 0xf3 || mand == 0xf2)
			return simple(in, op_movs_load, mand == 0xf3 ? M32 : M64, 0);
		return simple(in, op_movx_load, M128U, 0);
	case 0x11:
		if (mand == 0xf3 || mand == 0xf2)
			return simple(in, op_movs_store, mand == 0xf3 ? M32 : M64, 0);
		return simple(in, op_movx_store, M128U, 0);
	case 0x12:
		if (mand == 0xf2)
			return simple(in, op_movddup, M64, 0);
		if (mand == 0xf3)
			return bin(in, h_movsldup, M128A, 0);
		if (mand == 0x66 && !in->mem)
			return false;
		return simple(in, op_movhl_load, M64, 0);
	case 0x16:
		if (mand == 0xf3)
			return bin(in, h_movshdup, M128A, 0);
		if (mand == 0xf2 || (mand == 0x66 && !in->mem))
			return false;
		return simple(in, op_movhl_load, M64, 1);
	case 0x13:
	case 0x17:
		if (!in->mem || mand == 0xf3 || mand == 0xf2)
			return false;
		return simple(in, op_movs_store, M64, opc == 0x17);
	case 0x14:
		return mand == 0 ? bin(in, h_unpcklps, M128A, 0)
				 : mand == 0x66 && bin(in, h_unpcklpd, M128A, 0);
	case 0x15:
		return mand == 0 ? bin(in, h_unpckhps, M128A, 0)
				 : mand == 0x66 && bin(in, h_unpckhpd, M128A, 0);
	case 0x28:
		if (mand >= 0xf2)
			return false;
		return simple(in, op_movx_load, M128A, 0);
	case 0x29:
		if (mand >= 0xf2)
			return false;
		return simple(in, op_movx_store, M128A, 0);
	case 0x2b:
		if ((mand >= 0xf2) || !in->mem)
			return false;
		return simple(in, op_movx_store, M128A, 0);
	case 0x2a:
		if (mand == 0xf3 || mand == 0xf2) {
			in->fn = op_cvtsi2f;
			in->op = mand == 0xf2;
			return true;
		}
		if (!in->mem)
			in->rm &= 7;
		in->ib = mand == 0x66;
		return simple(in, op_cvt_mmx, M64, 0);
	case 0x2c:
	case 0x2d:
		if (mand == 0xf3 || mand == 0xf2) {
			in->ib = (uint8_t)((mand == 0xf2) | (opc == 0x2c ? 2 : 0));
			return simple(in, op_cvtf2si, mand == 0xf2 ? M64 : M32, 0);
		}
		in->reg &= 7;
		in->ib = (uint8_t)((mand == 0x66 ? 4 : 2) + (opc == 0x2c));
		return simple(in, op_cvt_mmx, mand == 0x66 ? M128A : M64, 0);
	case 0x2e:
	case 0x2f:
		if (mand >= 0xf2)
			return false;
		in->ib = (uint8_t)((mand == 0x66) | (opc == 0x2e ? 2 : 0));
		return simple(in, op_comis, mand == 0x66 ? M64 : M32, 0);
	case 0x50:
		if (in->mem || (mand >= 0xf2))
			return false;
		return simple(in, op_movmsk, mand == 0x66, 0);
	case 0x51:
		return fp4(in, mand, h_sqrtps, h_sqrtpd, h_sqrtss, h_sqrtsd);
	case 0x52:
		return fp4(in, mand, h_rsqrtps, NULL, h_rsqrtss, NULL);
	case 0x53:
		return fp4(in, mand, h_rcpps, NULL, h_rcpss, NULL);
	case 0x54:
		return !(mand >= 0xf2) && bin(in, h_andps, M128A, 0);
	case 0x55:
		return !(mand >= 0xf2) && bin(in, h_andnps, M128A, 0);
	case 0x56:
		return !(mand >= 0xf2) && bin(in, h_orps, M128A, 0);
	case 0x57:
		return !(mand >= 0xf2) && bin(in, h_xorps, M128A, 0);
	case 0x58:
		return fp4k(in, mand, FK_ADD, h_addps, h_addpd, h_addss, h_addsd);
	case 0x59:
		return fp4k(in, mand, FK_MUL, h_mulps, h_mulpd, h_mulss, h_mulsd);
	case 0x5a:
		if (mand == 0)
			return bin(in, h_cvtps2pd, M64, SF_FP);
		if (!fp4(in, mand, NULL, h_cvtpd2ps, h_cvtss2sd, h_cvtsd2ss))
			return false;
		if (mand == 0x66)
			in->aux = FK_CVT | FK_F64;
		else if (mand == 0xf2)
			in->aux = FK_CVT | FK_F64 | FK_SCALAR;
		return true;
	case 0x5b:
		if (mand == 0xf2)
			return false;
		return bin(in,
			   mand == 0	  ? h_cvtdq2ps
			   : mand == 0x66 ? h_cvtps2dq
					  : h_cvttps2dq,
			   M128A, SF_FP);
	case 0x5c:
		return fp4k(in, mand, FK_SUB, h_subps, h_subpd, h_subss, h_subsd);
	case 0x5d:
		return fp4(in, mand, h_minps, h_minpd, h_minss, h_minsd);
	case 0x5e:
		return fp4k(in, mand, FK_DIV, h_divps, h_divpd, h_divss, h_divsd);
	case 0x5f:
		return fp4(in, mand, h_maxps, h_maxpd, h_maxss, h_maxsd);
	case 0x60:
		return intop(in, mand, h_punpcklbw) && (in->op2 != SF_MMX || (in->op = M32, true));
	case 0x61:
		return intop(in, mand, h_punpcklwd) && (in->op2 != SF_MMX || (in->op = M32, true));
	case 0x62:
		return intop(in, mand, h_punpckldq) && (in->op2 != SF_MMX || (in->op = M32, true));
	case 0x63:
		return intop(in, mand, h_packsswb) && (in->op2 |= in->op2 ? SF_MMXPK : 0, true);
	case 0x64:
		return intop(in, mand, h_pcmpgtb);
	case 0x65:
		return intop(in, mand, h_pcmpgtw);
	case 0x66:
		return intop(in, mand, h_pcmpgtd);
	case 0x67:
		return intop(in, mand, h_packuswb) && (in->op2 |= in->op2 ? SF_MMXPK : 0, true);
	case 0x68:
		return intop(in, mand, h_punpcklbw) &&
		       (in->op2 == 0 ? (in->imm = (uintptr_t)h_punpckhbw, true)
				     : (in->op2 |= SF_MMXHI, true));
	case 0x69:
		return intop(in, mand, h_punpcklwd) &&
		       (in->op2 == 0 ? (in->imm = (uintptr_t)h_punpckhwd, true)
				     : (in->op2 |= SF_MMXHI, true));
	case 0x6a:
		return intop(in, mand, h_punpckldq) &&
		       (in->op2 == 0 ? (in->imm = (uintptr_t)h_punpckhdq, true)
				     : (in->op2 |= SF_MMXHI, true));
	case 0x6b:
		return intop(in, mand, h_packssdw) && (in->op2 |= in->op2 ? SF_MMXPK : 0, true);
	case 0x6c:
		return mand == 0x66 && bin(in, h_punpcklqdq, M128A, 0);
	case 0x6d:
		return mand == 0x66 && bin(in, h_punpckhqdq, M128A, 0);
	case 0x6e:
		if (mand == 0x66)
			return simple(in, op_movd_to_xmm, 0, 0);
		if (mand)
			return false;
		in->reg &= 7;
		return simple(in, op_mmx_mov, 0, 0);
	case 0x6f:
		if (mand == 0x66)
			return simple(in, op_movx_load, M128A, 0);
		if (mand == 0xf3)
			return simple(in, op_movx_load, M128U, 0);
		if (mand)
			return false;
		in->reg &= 7;
		in->rm &= in->mem ? 0xff : 7;
		return simple(in, op_mmx_mov, 2, 0);
	case 0x7e:
		if (mand == 0x66)
			return simple(in, op_movd_from_xmm, 0, 0);
		if (mand == 0xf3)
			return simple(in, op_movq_load, M64, 0);
		if (mand)
			return false;
		in->reg &= 7;
		return simple(in, op_mmx_mov, 1, 0);
	case 0x7f:
		if (mand == 0x66)
			return simple(in, op_movx_store, M128A, 0);
		if (mand == 0xf3)
			return simple(in, op_movx_store, M128U, 0);
		if (mand)
			return false;
		in->reg &= 7;
		in->rm &= in->mem ? 0xff : 7;
		return simple(in, op_mmx_mov, 3, 0);
	case 0x70:
		switch (mand) {
		case 0x66:
			return bini(in, c_pshufd, M128A, 0);
		case 0xf3:
			return bini(in, c_pshufhw, M128A, 0);
		case 0xf2:
			return bini(in, c_pshuflw, M128A, 0);
		default:
			in->reg &= 7;
			in->rm &= in->mem ? 0xff : 7;
			return bini(in, c_pshufw, M64, SF_MMX);
		}
	case 0x71:
	case 0x72:
	case 0x73: {
		static const sse_fn tab[3][8] = {
		    {NULL, NULL, h_psrlw, NULL, h_psraw, NULL, h_psllw, NULL},
		    {NULL, NULL, h_psrld, NULL, h_psrad, NULL, h_pslld, NULL},
		    {NULL, NULL, h_psrlq, c_psrldq, NULL, NULL, h_psllq, c_pslldq},
		};
		sse_fn fn = tab[opc - 0x71][r];
		if (!in->mem && fn && (mand == 0x66 || (mand == 0 && (r & 1) == 0))) {
			if (mand == 0)
				in->rm &= 7;
			in->fn = op_shift_imm;
			in->imm = (uint64_t)(uintptr_t)fn;
			in->op2 = mand == 0 ? SF_MMX : 0;
			return true;
		}
		return false;
	}
	case 0x74:
		return intop(in, mand, h_pcmpeqb);
	case 0x75:
		return intop(in, mand, h_pcmpeqw);
	case 0x76:
		return intop(in, mand, h_pcmpeqd);
	case 0x77:
		return mand == 0 && simple(in, op_emms, 0, 0);
	case 0x7c:
		return fp_pk(in, mand, FK_HADD, h_haddps, h_haddpd);
	case 0x7d:
		return fp_pk(in, mand, FK_HSUB, h_hsubps, h_hsubpd);
	case 0xae:
		if (!in->mem || in->rep)
			return false;
		if (r == 2)
			return simple(in, op_ldmxcsr, 0, 0);
		if (r == 3)
			return simple(in, op_stmxcsr, 0, 0);
		return emu_select_fxsave(in, r);
	case 0xc2:
		switch (mand) {
		case 0:
			return bini(in, c_cmpps, M128A, SF_FP);
		case 0x66:
			return bini(in, c_cmppd, M128A, SF_FP);
		case 0xf3:
			return bini(in, c_cmpss, M32, SF_FP);
		default:
			return bini(in, c_cmpsd, M64, SF_FP);
		}
	case 0xc3:
		if (!in->mem || mand)
			return false;
		return simple(in, op_movnti, 0, 0);
	case 0xc4:
		if (mand == 0x66)
			return simple(in, op_pinsr, 2, 0);
		if (mand)
			return false;
		in->reg &= 7;
		return simple(in, op_pinsr, 2, SF_MMX);
	case 0xc5:
		if (in->mem)
			return false;
		if (mand == 0x66)
			return simple(in, op_pextrw_c5, 0, 0);
		if (mand)
			return false;
		in->rm &= 7; /* PEXTRW r32, mm, imm8 */
		return simple(in, op_pextr, 2, SF_MMX);
	case 0xc6:
		if (mand == 0)
			return bini(in, c_shufps, M128A, 0);
		return mand == 0x66 && bini(in, c_shufpd, M128A, 0);
	case 0xd0:
		return fp_pk(in, mand, FK_ADDSUB, h_addsubps, h_addsubpd);
	case 0xd6:
		if (mand == 0x66)
			return simple(in, op_movq_store, 0, 0);
		if (in->mem)
			return false;
		if (mand == 0xf2) {
			in->reg &= 7;
			return simple(in, op_mmx_mov, 4, 0);
		}
		if (mand == 0xf3) {
			in->rm &= 7;
			return simple(in, op_mmx_mov, 5, 0);
		}
		return false;
	case 0xd7:
		if (in->mem)
			return false;
		if (mand == 0x66)
			return simple(in, op_movmsk, 2, 0);
		if (mand)
			return false;
		in->rm &= 7;
		return simple(in, op_movmsk, 2, SF_MMX);
	case 0xe6:
		switch (mand) {
		case 0x66:
			return bin(in, h_cvttpd2dq, M128A, SF_FP);
		case 0xf3:
			return bin(in, h_cvtdq2pd, M64, SF_FP);
		case 0xf2:
			return bin(in, h_cvtpd2dq, M128A, SF_FP);
		default:
			return false;
		}
	case 0xe7:
		if (!in->mem)
			return false;
		if (mand == 0x66)
			return simple(in, op_movx_store, M128A, 0);
		if (mand)
			return false;
		in->reg &= 7;
		return simple(in, op_mmx_mov, 3, 0);
	case 0xf0:
		return mand == 0xf2 && in->mem && simple(in, op_movx_load, M128U, 0);
	case 0xf7:
		if (in->mem)
			return false;
		if (mand == 0x66)
			return simple(in, op_maskmov, 0, 0);
		if (mand)
			return false;
		in->reg &= 7;
		in->rm &= 7;
		return simple(in, op_maskmov, 0, SF_MMX);
	default:
		break;
	}
	if (opc >= 0xd1 && opc <= 0xfe) {
		static const sse_fn tab[0x30] = {
		    [0x01] = h_psrlw,  [0x02] = h_psrld,   [0x03] = h_psrlq,   [0x04] = h_paddq,
		    [0x05] = h_pmullw, [0x08] = h_psubusb, [0x09] = h_psubusw, [0x0a] = h_pminub,
		    [0x0b] = h_pand,   [0x0c] = h_paddusb, [0x0d] = h_paddusw, [0x0e] = h_pmaxub,
		    [0x0f] = h_pandn,  [0x10] = h_pavgb,   [0x11] = h_psraw,   [0x12] = h_psrad,
		    [0x13] = h_pavgw,  [0x14] = h_pmulhuw, [0x15] = h_pmulhw,  [0x18] = h_psubsb,
		    [0x19] = h_psubsw, [0x1a] = h_pminsw,  [0x1b] = h_por,     [0x1c] = h_paddsb,
		    [0x1d] = h_paddsw, [0x1e] = h_pmaxsw,  [0x1f] = h_pxor,    [0x21] = h_psllw,
		    [0x22] = h_pslld,  [0x23] = h_psllq,   [0x24] = h_pmuludq, [0x25] = h_pmaddwd,
		    [0x26] = h_psadbw, [0x28] = h_psubb,   [0x29] = h_psubw,   [0x2a] = h_psubd,
		    [0x2b] = h_psubq,  [0x2c] = h_paddb,   [0x2d] = h_paddw,   [0x2e] = h_paddd,
		};
		sse_fn fn = tab[opc - 0xd0];
		return fn && intop(in, mand, fn);
	}
	return false;
}

static bool select_0f38(struct insn *in, unsigned opc, unsigned mand)
{
	static const sse_fn ssse3[0x20] = {
	    [0x00] = h_pshufb,	  [0x01] = h_phaddw, [0x02] = h_phaddd, [0x03] = h_phaddsw,
	    [0x04] = h_pmaddubsw, [0x05] = h_phsubw, [0x06] = h_phsubd, [0x07] = h_phsubsw,
	    [0x08] = h_psignb,	  [0x09] = h_psignw, [0x0a] = h_psignd, [0x0b] = h_pmulhrsw,
	    [0x1c] = h_pabsb,	  [0x1d] = h_pabsw,  [0x1e] = h_pabsd,
	};
	static const sse_fn sse41[0x50] = {
	    [0x20] = h_pmovsxbw, [0x21] = h_pmovsxbd,	[0x22] = h_pmovsxbq, [0x23] = h_pmovsxwd,
	    [0x24] = h_pmovsxwq, [0x25] = h_pmovsxdq,	[0x28] = h_pmuldq,   [0x29] = h_pcmpeqq,
	    [0x2b] = h_packusdw, [0x30] = h_pmovzxbw,	[0x31] = h_pmovzxbd, [0x32] = h_pmovzxbq,
	    [0x33] = h_pmovzxwd, [0x34] = h_pmovzxwq,	[0x35] = h_pmovzxdq, [0x37] = h_pcmpgtq,
	    [0x38] = h_pminsb,	 [0x39] = h_pminsd,	[0x3a] = h_pminuw,   [0x3b] = h_pminud,
	    [0x3c] = h_pmaxsb,	 [0x3d] = h_pmaxsd,	[0x3e] = h_pmaxuw,   [0x3f] = h_pmaxud,
	    [0x40] = h_pmulld,	 [0x41] = h_phminposuw,
	};
	if (opc < 0x20 && ssse3[opc]) {
		if (mand == 0x66)
			return bin(in, ssse3[opc], M128A, 0);
		if (mand == 0) {
			/* MMX forms: horizontal ones on both operands packed in one XMM */
			in->reg &= 7;
			in->rm &= in->mem ? 0xff : 7;
			if (opc == 0x00)
				return bin(in, c_pshufb_mmx, M64, SF_MMX);
			return bin(in, ssse3[opc], M64,
				   SF_MMX |
				       (opc >= 0x01 && opc <= 0x07 && opc != 0x04 ? SF_MMXPK : 0));
		}
		return false;
	}
	if (mand == 0 && emu_host_has(EMU_HOST_SHA)) {
		switch (opc) {
		case 0xc8:
			return bin(in, h_sha1nexte, M128U, 0);
		case 0xc9:
			return bin(in, h_sha1msg1, M128U, 0);
		case 0xca:
			return bin(in, h_sha1msg2, M128U, 0);
		case 0xcb:
			return simple(in, op_sha256rnds2, M128U, 0);
		case 0xcc:
			return bin(in, h_sha256msg1, M128U, 0);
		case 0xcd:
			return bin(in, h_sha256msg2, M128U, 0);
		default:
			break;
		}
	}
	if (mand != 0x66)
		return false;
	if (opc >= 0xdb && opc <= 0xdf && emu_host_has(EMU_HOST_AES)) {
		static const sse_fn aes[5] = {h_aesimc, h_aesenc, h_aesenclast, h_aesdec,
					      h_aesdeclast};
		return bin(in, aes[opc - 0xdb], M128A, 0);
	}
	switch (opc) {
	case 0x10:
		in->ib = 1;
		return simple(in, op_blendv, M128A, 0);
	case 0x14:
		in->ib = 4;
		return simple(in, op_blendv, M128A, 0);
	case 0x15:
		in->ib = 8;
		return simple(in, op_blendv, M128A, 0);
	case 0x17:
		return simple(in, op_ptest, M128A, 0);
	case 0x2a:
		return in->mem && simple(in, op_movx_load, M128A, 0);
	default:
		break;
	}
	if (opc < 0x50 && sse41[opc]) {
		unsigned m = M128A;
		switch (opc) {
		case 0x20:
		case 0x23:
		case 0x25:
		case 0x30:
		case 0x33:
		case 0x35:
			m = M64;
			break;
		case 0x21:
		case 0x24:
		case 0x31:
		case 0x34:
			m = M32;
			break;
		case 0x22:
		case 0x32:
			m = M16;
			break;
		default:
			break;
		}
		return bin(in, sse41[opc], m, 0);
	}
	return false;
}

static bool select_0f3a(struct insn *in, unsigned opc, unsigned mand)
{
	if (opc == 0xcc && mand == 0 && emu_host_has(EMU_HOST_SHA))
		return bini(in, c_sha1rnds4, M128U, 0);
	if (opc == 0xdf && mand == 0x66 && emu_host_has(EMU_HOST_AES))
		return bini(in, c_aeskeygenassist, M128A, 0);
	if (opc == 0x0f) {
		if (mand == 0x66)
			return bini(in, c_palignr, M128A, 0);
		if (mand)
			return false;
		in->reg &= 7;
		in->rm &= in->mem ? 0xff : 7;
		return bini(in, c_palignr_mmx, M64, SF_MMX);
	}
	if (mand != 0x66)
		return false;
	switch (opc) {
	case 0x08:
		return bini(in, c_roundps, M128A, SF_FP);
	case 0x09:
		return bini(in, c_roundpd, M128A, SF_FP);
	case 0x0a:
		return bini(in, c_roundss, M32, SF_FP);
	case 0x0b:
		return bini(in, c_roundsd, M64, SF_FP);
	case 0x0c:
		return bini(in, c_blendps, M128A, 0);
	case 0x0d:
		return bini(in, c_blendpd, M128A, 0);
	case 0x0e:
		return bini(in, c_pblendw, M128A, 0);
	case 0x14:
		return simple(in, op_pextr, 1, 0);
	case 0x15:
		return simple(in, op_pextr, 2, 0);
	case 0x16:
		return simple(in, op_pextr, in->size == 8 ? 8 : 4, 0);
	case 0x17:
		return simple(in, op_pextr, 4, 0);
	case 0x20:
		return simple(in, op_pinsr, 1, 0);
	case 0x21:
		if (in->mem)
			in->ib &= 0x3f; /* a memory source is the element itself */
		return bini(in, c_insertps, M32, 0);
	case 0x44: /* runs on the host's own instruction: offered when the host has it */
		return emu_host_has(EMU_HOST_PCLMUL) && bini(in, c_pclmulqdq, M128A, 0);
	case 0x22:
		return simple(in, op_pinsr, in->size == 8 ? 8 : 4, 0);
	case 0x40:
		in->aux = FK_DPPS;
		return bini(in, c_dpps, M128A, SF_FP);
	case 0x41:
		in->aux = FK_DPPD | FK_F64;
		return bini(in, c_dppd, M128A, SF_FP);
	case 0x42:
		return bini(in, c_mpsadbw, M128A, 0);
	case 0x60:
	case 0x61:
	case 0x62:
	case 0x63:
		return simple(in, op_pcmpstr, M128U, (opc - 0x60) << 5);
	default:
		return false;
	}
}

bool emu_select_sse(struct insn *in, unsigned map, unsigned opc, unsigned mand)
{
	if (in->pfx & PFX_LOCK)
		return false;
	switch (map) {
	case MAP_0F:
		return select_0f(in, opc, mand);
	case MAP_0F38:
		return select_0f38(in, opc, mand);
	case MAP_0F3A:
		return select_0f3a(in, opc, mand);
	default:
		return false;
	}
}

/* Differential test harness: SSE, SSE2, SSE3, SSSE3, SSE4.1, SSE4.2 (+CRC32, PCLMULQDQ).
 *
 * One table of legacy-encoded (non-VEX) instructions: mandatory prefix, opcode map, opcode,
 * memory operand size and operand kinds, from the Intel SDM vol. 2 appendix A.3 and each
 * instruction's entry. A 16-byte memory operand must be 16-byte aligned unless the
 * instruction says otherwise (SDM vol. 1, 11.6.7 / 12.10.3); a few percent of cases are
 * misaligned on purpose to check #GP. MXCSR gets a random rounding mode, FTZ/DAZ and
 * sticky flags; in the fp classes a few cases unmask exceptions to check #XM.
 */
#include <string.h>

#include "gen.h"

enum { SG_MOV, SG_INT, SG_FP, SG_CVT, SG_S3, SG_S41, SG_S42 };

#define F_IMM	  0x0001 /* imm8 */
#define F_U	  0x0002 /* 16-byte memory operand may be misaligned */
#define F_MEMONLY 0x0004
#define F_REGONLY 0x0008
#define F_GREG	  0x0010 /* ModRM.reg is a GPR destination */
#define F_GRM	  0x0020 /* ModRM.rm, as a register, is a GPR */
#define F_RMW	  0x0040 /* the rm operand is written */
#define F_W	  0x0080 /* REX.W selects a 64-bit GPR operand */
#define F_FLAGS	  0x0100 /* writes all six status flags (defined) */
#define F_ECX	  0x0200 /* writes ECX */
#define F_XMM0W	  0x0400 /* writes XMM0 */
#define F_PRED	  0x0800 /* imm8 is a compare predicate 0-7 */
#define F_DIGIT	  0x1000 /* ModRM.reg is an opcode extension (digit in .digit) */

struct sse_op {
	const char *name;
	uint8_t grp, pfx, map, op;
	uint8_t msize;
	uint16_t flags;
	int8_t digit;
	const char *feat;
};

#define OP(n, g, p, m, o, s, f)              \
	{                                    \
		n, g, p, m, o, s, f, 0, NULL \
	}
#define OPX(n, g, p, m, o, s, f, x)       \
	{                                 \
		n, g, p, m, o, s, f, 0, x \
	}
#define OPD(n, g, o, d)                                                    \
	{                                                                  \
		n, g, 0x66, 1, o, 16, F_IMM | F_REGONLY | F_DIGIT, d, NULL \
	}

static const struct sse_op sse_ops[] = {
    /* moves */
    OP("movups", SG_MOV, 0, 1, 0x10, 16, F_U),
    OP("movups st", SG_MOV, 0, 1, 0x11, 16, F_U | F_RMW),
    OP("movupd", SG_MOV, 0x66, 1, 0x10, 16, F_U),
    OP("movupd st", SG_MOV, 0x66, 1, 0x11, 16, F_U | F_RMW),
    OP("movaps", SG_MOV, 0, 1, 0x28, 16, 0),
    OP("movaps st", SG_MOV, 0, 1, 0x29, 16, F_RMW),
    OP("movapd", SG_MOV, 0x66, 1, 0x28, 16, 0),
    OP("movapd st", SG_MOV, 0x66, 1, 0x29, 16, F_RMW),
    OP("movdqa", SG_MOV, 0x66, 1, 0x6f, 16, 0),
    OP("movdqa st", SG_MOV, 0x66, 1, 0x7f, 16, F_RMW),
    OP("movdqu", SG_MOV, 0xf3, 1, 0x6f, 16, F_U),
    OP("movdqu st", SG_MOV, 0xf3, 1, 0x7f, 16, F_U | F_RMW),
    OP("movss", SG_MOV, 0xf3, 1, 0x10, 4, 0),
    OP("movss st", SG_MOV, 0xf3, 1, 0x11, 4, F_RMW),
    OP("movsd", SG_MOV, 0xf2, 1, 0x10, 8, 0),
    OP("movsd st", SG_MOV, 0xf2, 1, 0x11, 8, F_RMW),
    OP("movlps", SG_MOV, 0, 1, 0x12, 8, F_MEMONLY),
    OP("movlps st", SG_MOV, 0, 1, 0x13, 8, F_MEMONLY | F_RMW),
    OP("movhlps", SG_MOV, 0, 1, 0x12, 16, F_REGONLY),
    OP("movhps", SG_MOV, 0, 1, 0x16, 8, F_MEMONLY),
    OP("movhps st", SG_MOV, 0, 1, 0x17, 8, F_MEMONLY | F_RMW),
    OP("movlhps", SG_MOV, 0, 1, 0x16, 16, F_REGONLY),
    OP("movlpd", SG_MOV, 0x66, 1, 0x12, 8, F_MEMONLY),
    OP("movlpd st", SG_MOV, 0x66, 1, 0x13, 8, F_MEMONLY | F_RMW),
    OP("movhpd", SG_MOV, 0x66, 1, 0x16, 8, F_MEMONLY),
    OP("movhpd st", SG_MOV, 0x66, 1, 0x17, 8, F_MEMONLY | F_RMW),
    OP("movd/movq xmm, r/m", SG_MOV, 0x66, 1, 0x6e, 4, F_GRM | F_W),
    OP("movd/movq r/m, xmm", SG_MOV, 0x66, 1, 0x7e, 4, F_GRM | F_W | F_RMW),
    OP("movq xmm, xmm/m64", SG_MOV, 0xf3, 1, 0x7e, 8, 0),
    OP("movq xmm/m64, xmm", SG_MOV, 0x66, 1, 0xd6, 8, F_RMW),
    OP("movmskps", SG_MOV, 0, 1, 0x50, 16, F_GREG | F_REGONLY),
    OP("movmskpd", SG_MOV, 0x66, 1, 0x50, 16, F_GREG | F_REGONLY),
    OP("pmovmskb", SG_MOV, 0x66, 1, 0xd7, 16, F_GREG | F_REGONLY),
    OP("movntps", SG_MOV, 0, 1, 0x2b, 16, F_MEMONLY | F_RMW),
    OP("movntpd", SG_MOV, 0x66, 1, 0x2b, 16, F_MEMONLY | F_RMW),
    OP("movntdq", SG_MOV, 0x66, 1, 0xe7, 16, F_MEMONLY | F_RMW),
    OP("unpcklps", SG_MOV, 0, 1, 0x14, 16, 0),
    OP("unpckhps", SG_MOV, 0, 1, 0x15, 16, 0),
    OP("unpcklpd", SG_MOV, 0x66, 1, 0x14, 16, 0),
    OP("unpckhpd", SG_MOV, 0x66, 1, 0x15, 16, 0),
    OP("shufps", SG_MOV, 0, 1, 0xc6, 16, F_IMM),
    OP("shufpd", SG_MOV, 0x66, 1, 0xc6, 16, F_IMM),
    OP("pshufd", SG_MOV, 0x66, 1, 0x70, 16, F_IMM),
    OP("pshufhw", SG_MOV, 0xf3, 1, 0x70, 16, F_IMM),
    OP("pshuflw", SG_MOV, 0xf2, 1, 0x70, 16, F_IMM),
    OP("pinsrw", SG_MOV, 0x66, 1, 0xc4, 2, F_GRM | F_IMM),
    OP("pextrw", SG_MOV, 0x66, 1, 0xc5, 16, F_GREG | F_REGONLY | F_IMM),
    /* logic and integer SIMD */
    OP("andps", SG_INT, 0, 1, 0x54, 16, 0),
    OP("andnps", SG_INT, 0, 1, 0x55, 16, 0),
    OP("orps", SG_INT, 0, 1, 0x56, 16, 0),
    OP("xorps", SG_INT, 0, 1, 0x57, 16, 0),
    OP("andpd", SG_INT, 0x66, 1, 0x54, 16, 0),
    OP("andnpd", SG_INT, 0x66, 1, 0x55, 16, 0),
    OP("orpd", SG_INT, 0x66, 1, 0x56, 16, 0),
    OP("xorpd", SG_INT, 0x66, 1, 0x57, 16, 0),
    OP("pand", SG_INT, 0x66, 1, 0xdb, 16, 0),
    OP("pandn", SG_INT, 0x66, 1, 0xdf, 16, 0),
    OP("por", SG_INT, 0x66, 1, 0xeb, 16, 0),
    OP("pxor", SG_INT, 0x66, 1, 0xef, 16, 0),
    OP("paddb", SG_INT, 0x66, 1, 0xfc, 16, 0),
    OP("paddw", SG_INT, 0x66, 1, 0xfd, 16, 0),
    OP("paddd", SG_INT, 0x66, 1, 0xfe, 16, 0),
    OP("paddq", SG_INT, 0x66, 1, 0xd4, 16, 0),
    OP("psubb", SG_INT, 0x66, 1, 0xf8, 16, 0),
    OP("psubw", SG_INT, 0x66, 1, 0xf9, 16, 0),
    OP("psubd", SG_INT, 0x66, 1, 0xfa, 16, 0),
    OP("psubq", SG_INT, 0x66, 1, 0xfb, 16, 0),
    OP("paddsb", SG_INT, 0x66, 1, 0xec, 16, 0),
    OP("paddsw", SG_INT, 0x66, 1, 0xed, 16, 0),
    OP("paddusb", SG_INT, 0x66, 1, 0xdc, 16, 0),
    OP("paddusw", SG_INT, 0x66, 1, 0xdd, 16, 0),
    OP("psubsb", SG_INT, 0x66, 1, 0xe8, 16, 0),
    OP("psubsw", SG_INT, 0x66, 1, 0xe9, 16, 0),
    OP("psubusb", SG_INT, 0x66, 1, 0xd8, 16, 0),
    OP("psubusw", SG_INT, 0x66, 1, 0xd9, 16, 0),
    OP("pmullw", SG_INT, 0x66, 1, 0xd5, 16, 0),
    OP("pmulhw", SG_INT, 0x66, 1, 0xe5, 16, 0),
    OP("pmulhuw", SG_INT, 0x66, 1, 0xe4, 16, 0),
    OP("pmuludq", SG_INT, 0x66, 1, 0xf4, 16, 0),
    OP("pmaddwd", SG_INT, 0x66, 1, 0xf5, 16, 0),
    OP("pavgb", SG_INT, 0x66, 1, 0xe0, 16, 0),
    OP("pavgw", SG_INT, 0x66, 1, 0xe3, 16, 0),
    OP("pminub", SG_INT, 0x66, 1, 0xda, 16, 0),
    OP("pmaxub", SG_INT, 0x66, 1, 0xde, 16, 0),
    OP("pminsw", SG_INT, 0x66, 1, 0xea, 16, 0),
    OP("pmaxsw", SG_INT, 0x66, 1, 0xee, 16, 0),
    OP("psadbw", SG_INT, 0x66, 1, 0xf6, 16, 0),
    OP("pcmpeqb", SG_INT, 0x66, 1, 0x74, 16, 0),
    OP("pcmpeqw", SG_INT, 0x66, 1, 0x75, 16, 0),
    OP("pcmpeqd", SG_INT, 0x66, 1, 0x76, 16, 0),
    OP("pcmpgtb", SG_INT, 0x66, 1, 0x64, 16, 0),
    OP("pcmpgtw", SG_INT, 0x66, 1, 0x65, 16, 0),
    OP("pcmpgtd", SG_INT, 0x66, 1, 0x66, 16, 0),
    OP("packsswb", SG_INT, 0x66, 1, 0x63, 16, 0),
    OP("packuswb", SG_INT, 0x66, 1, 0x67, 16, 0),
    OP("packssdw", SG_INT, 0x66, 1, 0x6b, 16, 0),
    OP("punpcklbw", SG_INT, 0x66, 1, 0x60, 16, 0),
    OP("punpcklwd", SG_INT, 0x66, 1, 0x61, 16, 0),
    OP("punpckldq", SG_INT, 0x66, 1, 0x62, 16, 0),
    OP("punpckhbw", SG_INT, 0x66, 1, 0x68, 16, 0),
    OP("punpckhwd", SG_INT, 0x66, 1, 0x69, 16, 0),
    OP("punpckhdq", SG_INT, 0x66, 1, 0x6a, 16, 0),
    OP("punpcklqdq", SG_INT, 0x66, 1, 0x6c, 16, 0),
    OP("punpckhqdq", SG_INT, 0x66, 1, 0x6d, 16, 0),
    OP("psrlw", SG_INT, 0x66, 1, 0xd1, 16, 0),
    OP("psrld", SG_INT, 0x66, 1, 0xd2, 16, 0),
    OP("psrlq", SG_INT, 0x66, 1, 0xd3, 16, 0),
    OP("psraw", SG_INT, 0x66, 1, 0xe1, 16, 0),
    OP("psrad", SG_INT, 0x66, 1, 0xe2, 16, 0),
    OP("psllw", SG_INT, 0x66, 1, 0xf1, 16, 0),
    OP("pslld", SG_INT, 0x66, 1, 0xf2, 16, 0),
    OP("psllq", SG_INT, 0x66, 1, 0xf3, 16, 0),
    OPD("psrlw imm", SG_INT, 0x71, 2),
    OPD("psraw imm", SG_INT, 0x71, 4),
    OPD("psllw imm", SG_INT, 0x71, 6),
    OPD("psrld imm", SG_INT, 0x72, 2),
    OPD("psrad imm", SG_INT, 0x72, 4),
    OPD("pslld imm", SG_INT, 0x72, 6),
    OPD("psrlq imm", SG_INT, 0x73, 2),
    OPD("psrldq imm", SG_INT, 0x73, 3),
    OPD("psllq imm", SG_INT, 0x73, 6),
    OPD("pslldq imm", SG_INT, 0x73, 7),
    /* floating-point arithmetic */
    OP("sqrtps", SG_FP, 0, 1, 0x51, 16, 0),
    OP("sqrtpd", SG_FP, 0x66, 1, 0x51, 16, 0),
    OP("sqrtss", SG_FP, 0xf3, 1, 0x51, 4, 0),
    OP("sqrtsd", SG_FP, 0xf2, 1, 0x51, 8, 0),
    OP("addps", SG_FP, 0, 1, 0x58, 16, 0),
    OP("addpd", SG_FP, 0x66, 1, 0x58, 16, 0),
    OP("addss", SG_FP, 0xf3, 1, 0x58, 4, 0),
    OP("addsd", SG_FP, 0xf2, 1, 0x58, 8, 0),
    OP("mulps", SG_FP, 0, 1, 0x59, 16, 0),
    OP("mulpd", SG_FP, 0x66, 1, 0x59, 16, 0),
    OP("mulss", SG_FP, 0xf3, 1, 0x59, 4, 0),
    OP("mulsd", SG_FP, 0xf2, 1, 0x59, 8, 0),
    OP("subps", SG_FP, 0, 1, 0x5c, 16, 0),
    OP("subpd", SG_FP, 0x66, 1, 0x5c, 16, 0),
    OP("subss", SG_FP, 0xf3, 1, 0x5c, 4, 0),
    OP("subsd", SG_FP, 0xf2, 1, 0x5c, 8, 0),
    OP("minps", SG_FP, 0, 1, 0x5d, 16, 0),
    OP("minpd", SG_FP, 0x66, 1, 0x5d, 16, 0),
    OP("minss", SG_FP, 0xf3, 1, 0x5d, 4, 0),
    OP("minsd", SG_FP, 0xf2, 1, 0x5d, 8, 0),
    OP("divps", SG_FP, 0, 1, 0x5e, 16, 0),
    OP("divpd", SG_FP, 0x66, 1, 0x5e, 16, 0),
    OP("divss", SG_FP, 0xf3, 1, 0x5e, 4, 0),
    OP("divsd", SG_FP, 0xf2, 1, 0x5e, 8, 0),
    OP("maxps", SG_FP, 0, 1, 0x5f, 16, 0),
    OP("maxpd", SG_FP, 0x66, 1, 0x5f, 16, 0),
    OP("maxss", SG_FP, 0xf3, 1, 0x5f, 4, 0),
    OP("maxsd", SG_FP, 0xf2, 1, 0x5f, 8, 0),
    OP("cmpps", SG_FP, 0, 1, 0xc2, 16, F_IMM | F_PRED),
    OP("cmppd", SG_FP, 0x66, 1, 0xc2, 16, F_IMM | F_PRED),
    OP("cmpss", SG_FP, 0xf3, 1, 0xc2, 4, F_IMM | F_PRED),
    OP("cmpsd", SG_FP, 0xf2, 1, 0xc2, 8, F_IMM | F_PRED),
    OP("comiss", SG_FP, 0, 1, 0x2f, 4, F_FLAGS),
    OP("ucomiss", SG_FP, 0, 1, 0x2e, 4, F_FLAGS),
    OP("comisd", SG_FP, 0x66, 1, 0x2f, 8, F_FLAGS),
    OP("ucomisd", SG_FP, 0x66, 1, 0x2e, 8, F_FLAGS),
    /* conversions */
    OP("cvtps2pd", SG_CVT, 0, 1, 0x5a, 8, 0),
    OP("cvtpd2ps", SG_CVT, 0x66, 1, 0x5a, 16, 0),
    OP("cvtss2sd", SG_CVT, 0xf3, 1, 0x5a, 4, 0),
    OP("cvtsd2ss", SG_CVT, 0xf2, 1, 0x5a, 8, 0),
    OP("cvtdq2ps", SG_CVT, 0, 1, 0x5b, 16, 0),
    OP("cvtps2dq", SG_CVT, 0x66, 1, 0x5b, 16, 0),
    OP("cvttps2dq", SG_CVT, 0xf3, 1, 0x5b, 16, 0),
    OP("cvtdq2pd", SG_CVT, 0xf3, 1, 0xe6, 8, 0),
    OP("cvtpd2dq", SG_CVT, 0xf2, 1, 0xe6, 16, 0),
    OP("cvttpd2dq", SG_CVT, 0x66, 1, 0xe6, 16, 0),
    OP("cvtsi2ss", SG_CVT, 0xf3, 1, 0x2a, 4, F_GRM | F_W),
    OP("cvtsi2sd", SG_CVT, 0xf2, 1, 0x2a, 4, F_GRM | F_W),
    OP("cvttss2si", SG_CVT, 0xf3, 1, 0x2c, 4, F_GREG | F_W),
    OP("cvtss2si", SG_CVT, 0xf3, 1, 0x2d, 4, F_GREG | F_W),
    OP("cvttsd2si", SG_CVT, 0xf2, 1, 0x2c, 8, F_GREG | F_W),
    OP("cvtsd2si", SG_CVT, 0xf2, 1, 0x2d, 8, F_GREG | F_W),
    /* SSE3, SSSE3 */
    OPX("addsubps", SG_S3, 0xf2, 1, 0xd0, 16, 0, "sse3"),
    OPX("addsubpd", SG_S3, 0x66, 1, 0xd0, 16, 0, "sse3"),
    OPX("haddps", SG_S3, 0xf2, 1, 0x7c, 16, 0, "sse3"),
    OPX("haddpd", SG_S3, 0x66, 1, 0x7c, 16, 0, "sse3"),
    OPX("hsubps", SG_S3, 0xf2, 1, 0x7d, 16, 0, "sse3"),
    OPX("hsubpd", SG_S3, 0x66, 1, 0x7d, 16, 0, "sse3"),
    OPX("movddup", SG_S3, 0xf2, 1, 0x12, 8, 0, "sse3"),
    OPX("movshdup", SG_S3, 0xf3, 1, 0x16, 16, 0, "sse3"),
    OPX("movsldup", SG_S3, 0xf3, 1, 0x12, 16, 0, "sse3"),
    OPX("lddqu", SG_S3, 0xf2, 1, 0xf0, 16, F_MEMONLY | F_U, "sse3"),
    OPX("pshufb", SG_S3, 0x66, 2, 0x00, 16, 0, "ssse3"),
    OPX("phaddw", SG_S3, 0x66, 2, 0x01, 16, 0, "ssse3"),
    OPX("phaddd", SG_S3, 0x66, 2, 0x02, 16, 0, "ssse3"),
    OPX("phaddsw", SG_S3, 0x66, 2, 0x03, 16, 0, "ssse3"),
    OPX("pmaddubsw", SG_S3, 0x66, 2, 0x04, 16, 0, "ssse3"),
    OPX("phsubw", SG_S3, 0x66, 2, 0x05, 16, 0, "ssse3"),
    OPX("phsubd", SG_S3, 0x66, 2, 0x06, 16, 0, "ssse3"),
    OPX("phsubsw", SG_S3, 0x66, 2, 0x07, 16, 0, "ssse3"),
    OPX("psignb", SG_S3, 0x66, 2, 0x08, 16, 0, "ssse3"),
    OPX("psignw", SG_S3, 0x66, 2, 0x09, 16, 0, "ssse3"),
    OPX("psignd", SG_S3, 0x66, 2, 0x0a, 16, 0, "ssse3"),
    OPX("pmulhrsw", SG_S3, 0x66, 2, 0x0b, 16, 0, "ssse3"),
    OPX("pabsb", SG_S3, 0x66, 2, 0x1c, 16, 0, "ssse3"),
    OPX("pabsw", SG_S3, 0x66, 2, 0x1d, 16, 0, "ssse3"),
    OPX("pabsd", SG_S3, 0x66, 2, 0x1e, 16, 0, "ssse3"),
    OPX("palignr", SG_S3, 0x66, 3, 0x0f, 16, F_IMM, "ssse3"),
    /* SSE4.1 */
    OPX("pblendvb", SG_S41, 0x66, 2, 0x10, 16, 0, "sse4.1"),
    OPX("blendvps", SG_S41, 0x66, 2, 0x14, 16, 0, "sse4.1"),
    OPX("blendvpd", SG_S41, 0x66, 2, 0x15, 16, 0, "sse4.1"),
    OPX("ptest", SG_S41, 0x66, 2, 0x17, 16, F_FLAGS, "sse4.1"),
    OPX("pmovsxbw", SG_S41, 0x66, 2, 0x20, 8, 0, "sse4.1"),
    OPX("pmovsxbd", SG_S41, 0x66, 2, 0x21, 4, 0, "sse4.1"),
    OPX("pmovsxbq", SG_S41, 0x66, 2, 0x22, 2, 0, "sse4.1"),
    OPX("pmovsxwd", SG_S41, 0x66, 2, 0x23, 8, 0, "sse4.1"),
    OPX("pmovsxwq", SG_S41, 0x66, 2, 0x24, 4, 0, "sse4.1"),
    OPX("pmovsxdq", SG_S41, 0x66, 2, 0x25, 8, 0, "sse4.1"),
    OPX("pmuldq", SG_S41, 0x66, 2, 0x28, 16, 0, "sse4.1"),
    OPX("pcmpeqq", SG_S41, 0x66, 2, 0x29, 16, 0, "sse4.1"),
    OPX("movntdqa", SG_S41, 0x66, 2, 0x2a, 16, F_MEMONLY, "sse4.1"),
    OPX("packusdw", SG_S41, 0x66, 2, 0x2b, 16, 0, "sse4.1"),
    OPX("pmovzxbw", SG_S41, 0x66, 2, 0x30, 8, 0, "sse4.1"),
    OPX("pmovzxbd", SG_S41, 0x66, 2, 0x31, 4, 0, "sse4.1"),
    OPX("pmovzxbq", SG_S41, 0x66, 2, 0x32, 2, 0, "sse4.1"),
    OPX("pmovzxwd", SG_S41, 0x66, 2, 0x33, 8, 0, "sse4.1"),
    OPX("pmovzxwq", SG_S41, 0x66, 2, 0x34, 4, 0, "sse4.1"),
    OPX("pmovzxdq", SG_S41, 0x66, 2, 0x35, 8, 0, "sse4.1"),
    OPX("pminsb", SG_S41, 0x66, 2, 0x38, 16, 0, "sse4.1"),
    OPX("pminsd", SG_S41, 0x66, 2, 0x39, 16, 0, "sse4.1"),
    OPX("pminuw", SG_S41, 0x66, 2, 0x3a, 16, 0, "sse4.1"),
    OPX("pminud", SG_S41, 0x66, 2, 0x3b, 16, 0, "sse4.1"),
    OPX("pmaxsb", SG_S41, 0x66, 2, 0x3c, 16, 0, "sse4.1"),
    OPX("pmaxsd", SG_S41, 0x66, 2, 0x3d, 16, 0, "sse4.1"),
    OPX("pmaxuw", SG_S41, 0x66, 2, 0x3e, 16, 0, "sse4.1"),
    OPX("pmaxud", SG_S41, 0x66, 2, 0x3f, 16, 0, "sse4.1"),
    OPX("pmulld", SG_S41, 0x66, 2, 0x40, 16, 0, "sse4.1"),
    OPX("phminposuw", SG_S41, 0x66, 2, 0x41, 16, 0, "sse4.1"),
    OPX("roundps", SG_S41, 0x66, 3, 0x08, 16, F_IMM, "sse4.1"),
    OPX("roundpd", SG_S41, 0x66, 3, 0x09, 16, F_IMM, "sse4.1"),
    OPX("roundss", SG_S41, 0x66, 3, 0x0a, 4, F_IMM, "sse4.1"),
    OPX("roundsd", SG_S41, 0x66, 3, 0x0b, 8, F_IMM, "sse4.1"),
    OPX("blendps", SG_S41, 0x66, 3, 0x0c, 16, F_IMM, "sse4.1"),
    OPX("blendpd", SG_S41, 0x66, 3, 0x0d, 16, F_IMM, "sse4.1"),
    OPX("pblendw", SG_S41, 0x66, 3, 0x0e, 16, F_IMM, "sse4.1"),
    OPX("pextrb", SG_S41, 0x66, 3, 0x14, 1, F_IMM | F_GRM | F_RMW, "sse4.1"),
    OPX("pextrw m", SG_S41, 0x66, 3, 0x15, 2, F_IMM | F_GRM | F_RMW, "sse4.1"),
    OPX("pextrd/q", SG_S41, 0x66, 3, 0x16, 4, F_IMM | F_GRM | F_RMW | F_W, "sse4.1"),
    OPX("extractps", SG_S41, 0x66, 3, 0x17, 4, F_IMM | F_GRM | F_RMW, "sse4.1"),
    OPX("pinsrb", SG_S41, 0x66, 3, 0x20, 1, F_IMM | F_GRM, "sse4.1"),
    OPX("insertps", SG_S41, 0x66, 3, 0x21, 4, F_IMM, "sse4.1"),
    OPX("pinsrd/q", SG_S41, 0x66, 3, 0x22, 4, F_IMM | F_GRM | F_W, "sse4.1"),
    OPX("dpps", SG_S41, 0x66, 3, 0x40, 16, F_IMM, "sse4.1"),
    OPX("dppd", SG_S41, 0x66, 3, 0x41, 16, F_IMM, "sse4.1"),
    OPX("mpsadbw", SG_S41, 0x66, 3, 0x42, 16, F_IMM, "sse4.1"),
    /* SSE4.2, PCLMULQDQ (CRC32 is built separately) */
    OPX("pcmpgtq", SG_S42, 0x66, 2, 0x37, 16, 0, "sse4.2"),
    OPX("pcmpestrm", SG_S42, 0x66, 3, 0x60, 16, F_IMM | F_W | F_FLAGS | F_XMM0W, "sse4.2"),
    OPX("pcmpestri", SG_S42, 0x66, 3, 0x61, 16, F_IMM | F_W | F_FLAGS | F_ECX, "sse4.2"),
    OPX("pcmpistrm", SG_S42, 0x66, 3, 0x62, 16, F_IMM | F_FLAGS | F_XMM0W, "sse4.2"),
    OPX("pcmpistri", SG_S42, 0x66, 3, 0x63, 16, F_IMM | F_FLAGS | F_ECX, "sse4.2"),
    OPX("pclmulqdq", SG_S42, 0x66, 3, 0x44, 16, F_IMM, "pclmul"),
};

#define N_SSE_OPS (int)(sizeof(sse_ops) / sizeof(sse_ops[0]))

static const char *const group_names[] = {
    "sse moves",  "sse logic/int", "sse fp arith",	  "sse conversions",
    "sse3/ssse3", "sse4.1",	   "sse4.2/crc32/pclmul",
};

void sse_init(struct gen *g)
{
	const char *name = gen_classes[g->c->cls].name;
	int i;

	g->aux = SG_MOV;
	for (i = 0; i < 7; i++)
		if (!strcmp(name, group_names[i]))
			g->aux = i;
	mxcsr_random(g, g->aux == SG_FP || g->aux == SG_CVT || g->aux == SG_S41 || g->aux == SG_S3);
	if ((g->aux == SG_FP || g->aux == SG_CVT || g->aux == SG_S41 || g->aux == SG_S3) &&
	    chance(g, 10)) {
		/* overflow and/or underflow unmasked: the flags then depend on the result
		 * rounded with unbounded exponent (SDM vol. 1 4.9.1.4-6) */
		uint32_t m;

		memcpy(&m, g->c->in.fx + FX_MXCSR, 4);
		m &= ~((uint32_t)(1 + rnd(g, 3)) << 10);
		memcpy(g->c->in.fx + FX_MXCSR, &m, 4);
	}
	if (g->aux == SG_S42) { /* pcmpestr lengths in EAX/EDX: small, sometimes negative */
		if (chance(g, 80))
			g->c->in.gpr[RAX] = (uint64_t)((int64_t)rnd(g, 40) - 20);
		if (chance(g, 80))
			g->c->in.gpr[RDX] = (uint64_t)((int64_t)rnd(g, 40) - 20);
	}
}

static int gen_crc32(struct gen *g)
{
	struct enc e;
	int bits = 8 << rnd(g, 4), rd = pick_dst(g);
	bool rex8 = chance(g, 50);

	enc_init(&e, bits == 8 ? "crc32 r, r/m8" : "crc32 r, r/m");
	if (bits == 16)
		enc_pfx(&e, 0x66);
	enc_pfx(&e, 0xf2);
	e.map = 2;
	e.op = bits == 8 ? 0xf0 : 0xf1;
	e.has_modrm = true;
	e.reg = rd;
	e.w = bits == 64 || (bits == 8 && chance(g, 30));
	if (bits == 8) {
		if (rex8)
			e.rex = true;
		else
			e.norex = true;
	}
	if (chance(g, 35)) {
		pick_mem(g, &e.rm, bits / 8, 1, bits == 8 && !rex8);
	} else {
		e.rm.reg = (int)rnd(g, (bits == 8 && !rex8) ? 8 : 16);
	}
	if (emit(g, &e))
		return -1;
	mark_written(g, rd);
	return 0;
}

int gen_sse(struct gen *g)
{
	const struct sse_op *op;
	struct enc e;
	int tries = 0, msize;
	bool w;

	if (g->aux == SG_S42 && chance(g, 25))
		return gen_crc32(g);
	do {
		op = &sse_ops[rnd(g, N_SSE_OPS)];
		if (++tries > 1000)
			return -1;
	} while (op->grp != g->aux || (op->feat && !host_has(op->feat)));
	enc_init(&e, op->name);
	if (op->pfx)
		enc_pfx(&e, op->pfx);
	e.map = op->map;
	e.op = op->op;
	e.has_modrm = true;
	w = (op->flags & F_W) && chance(g, 50);
	e.w = w;
	msize = op->msize;
	if ((op->flags & F_W) && (op->flags & (F_GRM | F_GREG)) && w && msize == 4)
		msize = 8;
	if (op->flags & F_DIGIT)
		e.reg = op->digit;
	else if (op->flags & F_GREG)
		e.reg = pick_dst(g);
	else
		e.reg = (int)rnd(g, 16);
	if (!(op->flags & F_REGONLY) && ((op->flags & F_MEMONLY) || chance(g, 35))) {
		int align = (msize == 16 && !(op->flags & F_U)) ? 16 : 1;

		if (align == 16 && chance(g, 3))
			align = 1; /* may be misaligned: #GP */
		pick_mem(g, &e.rm, msize, align, false);
	} else if (op->flags & F_GRM) {
		e.rm.reg = (op->flags & F_RMW) ? pick_dst(g) : pick_src(g);
	} else {
		e.rm.reg = (int)rnd(g, 16);
	}
	if (op->flags & F_IMM) {
		e.immsz = 1;
		e.imm = rnd(g, 256);
		if ((op->flags & F_PRED) && chance(g, 97))
			e.imm &= 7;
		if (op->flags & F_DIGIT && chance(g, 70))
			e.imm = rnd(g, 20);
	}
	if (emit(g, &e))
		return -1;
	if ((op->flags & F_GREG))
		mark_written(g, e.reg);
	if ((op->flags & F_GRM) && (op->flags & F_RMW) && !e.rm.mem)
		mark_written(g, e.rm.reg);
	if (op->flags & F_ECX)
		mark_written(g, RCX);
	if (op->flags & F_FLAGS)
		g->c->fl_undef &= ~FL_ALL6;
	return 0;
}

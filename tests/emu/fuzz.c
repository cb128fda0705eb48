/* Differential test harness: decoder fuzz. Random instructions built from valid parts:
 * legacy prefixes, REX, an opcode from the one-byte, 0F, 0F 38 or 0F 3A map, ModRM, SIB,
 * displacement and immediate, each present as the opcode map says (Intel SDM vol. 2,
 * appendix A, 64-bit mode). The generator knows the length L it built.
 *
 * main.c runs each instruction natively twice, single-stepped (TF) and placed so that it ends
 * exactly at the end of the code page, in front of an unmapped guard page: once whole, and
 * once with only its first L-1 bytes before the guard page. The CPU fetches only the bytes
 * an instruction needs, so "whole executes or faults on its own, truncated faults fetching
 * the guard page" proves the host's length is L. The emulator must then do the same: give
 * the host's exception vector (or execute, reaching the host's RIP), and fault on the
 * truncated copy. Opcodes that would change the harness's own process (system calls, FS/GS
 * segment changes, far transfers, PKRU, FSGSBASE writes) or that are privileged are left out;
 * so are VEX/EVEX/XOP prefixes, and 3DNow!/SSE4a forms whose length differs by vendor.
 */
#include <string.h>

#include "gen.h"

/* One-byte map, 64-bit mode. */
enum {
	O_NONE = 0,   /* no operands after the opcode */
	O_M = 1,      /* ModRM */
	O_I8 = 2,     /* imm8 */
	O_IZ = 4,     /* imm16/32 by operand size */
	O_IV = 8,     /* imm16/32/64 by operand size (B8+r) */
	O_IW = 16,    /* imm16 */
	O_MOFFS = 32, /* 64-bit (67: 32-bit) absolute address */
	O_X = 64,     /* not generated */
	O_BR = 128,   /* branch: no 66 prefix (AMD and Intel differ) */
	O_F6 = 256,   /* F6/F7: imm only for /0 and /1 */
};

static uint16_t map1(uint8_t op)
{
	if (op < 0x40 && (op & 7) <= 5) {
		static const uint16_t t[6] = {O_M, O_M, O_M, O_M, O_I8, O_IZ};
		return t[op & 7];
	}
	if (op < 0x40) /* 06 07 0E 16 17 1E 1F 27 2F 37 3F: invalid; 26 2E 36 3E prefixes; 0F */
		return (op == 0x26 || op == 0x2e || op == 0x36 || op == 0x3e || op == 0x0f)
			   ? O_X
			   : O_NONE;
	if (op < 0x50)
		return O_X; /* REX */
	if (op < 0x60)
		return O_NONE;
	switch (op) {
	case 0x60:
	case 0x61:
		return O_NONE;
	case 0x62: /* EVEX */
		return O_X;
	case 0x63:
		return O_M;
	case 0x64:
	case 0x65:
	case 0x66:
	case 0x67:
		return O_X;
	case 0x68:
		return O_IZ;
	case 0x69:
		return O_M | O_IZ;
	case 0x6a:
		return O_I8;
	case 0x6b:
		return O_M | O_I8;
	case 0x80:
	case 0x83:
	case 0xc0:
	case 0xc1:
	case 0xc6:
		return O_M | O_I8;
	case 0x81:
	case 0xc7:
		return O_M | O_IZ;
	/* invalid in 64-bit mode (#UD), but the host still fetches their legacy operands */
	case 0x82:
		return O_M | O_I8;
	case 0x9a:
	case 0xea:
		return O_IZ | O_IW;
	case 0xd4:
	case 0xd5:
		return O_I8;
	case 0xd6:
	case 0xce:
		return O_NONE;
	case 0x8e: /* mov sreg */
	case 0xc4:
	case 0xc5: /* VEX */
	case 0xca:
	case 0xcb: /* far return */
	case 0xcc:
	case 0xcd:
	case 0xcf:
	case 0xf1:
	case 0xf4:
	case 0xfa:
	case 0xfb:
	case 0xf0:
	case 0xf2:
	case 0xf3:
		return O_X;
	case 0xa0:
	case 0xa1:
	case 0xa2:
	case 0xa3:
		return O_MOFFS;
	case 0xa8:
		return O_I8;
	case 0xa9:
		return O_IZ;
	case 0xc2:
		return O_IW | O_BR;
	case 0xc3:
		return O_BR;
	case 0xc8:
		return O_IW | O_I8;
	case 0xe8:
	case 0xe9:
		return O_IZ | O_BR;
	case 0xeb:
		return O_I8 | O_BR;
	case 0xf6:
	case 0xf7:
		return O_M | O_F6;
	}
	if (op >= 0x6c && op <= 0x6f) /* ins/outs */
		return O_X;
	if (op >= 0x70 && op <= 0x7f)
		return O_I8 | O_BR;
	if (op >= 0x84 && op <= 0x8f)
		return O_M;
	if (op >= 0x90 && op <= 0x9f)
		return O_NONE;
	if (op >= 0xa4 && op <= 0xaf)
		return O_NONE;
	if (op >= 0xb0 && op <= 0xb7)
		return O_I8;
	if (op >= 0xb8 && op <= 0xbf)
		return O_IV;
	if (op == 0xc9 || op == 0xd7 || op == 0xf5 || (op >= 0xf8 && op <= 0xfd))
		return O_NONE;
	if (op >= 0xd0 && op <= 0xdf)
		return O_M;
	if (op >= 0xe0 && op <= 0xe3)
		return O_I8 | O_BR;
	if (op >= 0xe4 && op <= 0xe7)
		return O_X; /* in/out */
	if (op >= 0xec && op <= 0xef)
		return O_X;
	if (op == 0xfe || op == 0xff)
		return O_M;
	return O_X;
}

/* 0F map */
static uint16_t map2(uint8_t op)
{
	switch (op) {
	case 0x00: /* system groups, syscall/sysret/sysenter/sysexit, privileged */
	case 0x01:
	case 0x05:
	case 0x06:
	case 0x07:
	case 0x08:
	case 0x09:
	case 0x30:
	case 0x32:
	case 0x33:
	case 0x34:
	case 0x35:
	case 0x37:
	case 0x0f: /* 3DNow! */
	case 0x38:
	case 0x3a: /* escapes, handled by the caller */
	case 0x78:
	case 0x79: /* SSE4a EXTRQ/INSERTQ on AMD, VMREAD/VMWRITE on Intel */
	case 0xa1:
	case 0xa9: /* pop fs/gs */
	case 0xb2:
	case 0xb4:
	case 0xb5: /* lss/lfs/lgs */
	case 0xaa:
	case 0xae: /* FSGSBASE writes, fences, FXSAVE group */
	case 0xff: /* UD0: ModRM on Intel only */
		return O_X;
	case 0x20:
	case 0x21:
	case 0x22:
	case 0x23:
		return O_X;
	case 0x04:
	case 0x0a:
	case 0x0b:
	case 0x0c:
	case 0x0e:
	case 0x24:
	case 0x25:
	case 0x26:
	case 0x27:
	case 0x31:
	case 0x36:
	case 0x39:
	case 0x3b:
	case 0x3c:
	case 0x3d:
	case 0x3e:
	case 0x3f:
	case 0x77:
	case 0x7a:
	case 0x7b:
	case 0xa0:
	case 0xa2:
	case 0xa6:
	case 0xa7:
	case 0xa8:
		return O_NONE;
	case 0x70:
	case 0x71:
	case 0x72:
	case 0x73:
	case 0xa4:
	case 0xac:
	case 0xba:
	case 0xc2:
	case 0xc4:
	case 0xc5:
	case 0xc6:
		return O_M | O_I8;
	}
	if (op >= 0x80 && op <= 0x8f)
		return O_IZ | O_BR;
	if (op >= 0xc8 && op <= 0xcf)
		return O_NONE;
	return O_M;
}

static const uint8_t legacy_prefixes[] = {0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x3e, 0x26, 0x36};

void fuzz_whole(struct gen *g)
{
	struct tcase *c = g->c;
	uint8_t b[32];
	int n = 0, i, npfx = (int)rnd(g, 4), map = (int)rnd(g, 10);
	bool p66 = false, p67 = false, rexw = false;
	uint16_t f;
	uint8_t op = 0;

	/* registers point into the data area so most memory operands are valid */
	for (i = 0; i < 16; i++)
		if (i != RSP)
			c->in.gpr[i] = DATA_BASE + WIN_LO + rnd(g, 0x600);
	c->in.gpr[RCX] = rnd(g, 4); /* REP counts: the TF trap comes after each iteration */
	c->in.rflags &= ~FL_DF;
	map = map < 5 ? 0 : map < 8 ? 1 : map < 9 ? 2 : 3;
	for (;;) {
		op = (uint8_t)rnd(g, 256);
		f = map == 0 ? map1(op) : map == 1 ? map2(op) : (O_M | (map == 3 ? O_I8 : 0));
		if (map == 0 && op == 0xff)
			f |= O_BR;
		if (!(f & O_X))
			break;
	}
	for (i = 0; i < npfx; i++) {
		uint8_t p = legacy_prefixes[rnd(g, sizeof(legacy_prefixes))];

		if (p == 0x66 && (f & O_BR))
			continue;
		p66 |= p == 0x66;
		p67 |= p == 0x67;
		b[n++] = p;
	}
	if (chance(g, 5)) /* too long: #GP */
		while (n < 12)
			b[n++] = 0x3e;
	if (chance(g, 40)) {
		uint8_t rex = (uint8_t)(0x40 | rnd(g, 16));

		rexw = rex & 8;
		b[n++] = rex;
	}
	if (map >= 1)
		b[n++] = 0x0f;
	if (map == 2)
		b[n++] = 0x38;
	if (map == 3)
		b[n++] = 0x3a;
	b[n++] = op;
	if (f & O_M) {
		uint8_t modrm = (uint8_t)rnd(g, 256);
		int mod = modrm >> 6, rm = modrm & 7;

		if (map == 0 && op == 0xff && (((modrm >> 3) & 7) == 3 || ((modrm >> 3) & 7) == 5))
			modrm ^= 0x08; /* no far call/jmp */
		if (map == 0 && op == 0xfe && ((modrm >> 3) & 7) > 1)
			modrm &= (uint8_t)~0x30;
		if (map == 0 && op == 0x8f) /* 8F /1-7 is the XOP prefix on AMD */
			modrm &= (uint8_t)~0x38;
		b[n++] = modrm;
		if (mod != 3 && rm == 4) {
			uint8_t sib = (uint8_t)rnd(g, 256);

			b[n++] = sib;
			if (mod == 0 && (sib & 7) == 5) {
				uint32_t d = chance(g, 70) ? (uint32_t)rnd(g, 0x100)
							   : (uint32_t)rng_next(g->rng);
				if (chance(g, 50))
					d = (uint32_t)(DATA_BASE + WIN_LO + rnd(g, 0x400));
				memcpy(b + n, &d, 4);
				n += 4;
			}
		}
		if (mod == 0 && rm == 5) { /* RIP-relative */
			uint32_t d = chance(g, 70) ? (uint32_t)(DATA_BASE - CODE_BASE - CODE_SIZE +
								WIN_LO + rnd(g, 0x400))
						   : (uint32_t)rng_next(g->rng);
			memcpy(b + n, &d, 4);
			n += 4;
		} else if (mod == 1) {
			b[n++] = (uint8_t)rnd(g, 256);
		} else if (mod == 2) {
			uint32_t d =
			    chance(g, 70) ? (uint32_t)rnd(g, 0x200) : (uint32_t)rng_next(g->rng);
			memcpy(b + n, &d, 4);
			n += 4;
		}
		if ((f & O_F6) && ((modrm >> 3) & 7) <= 1)
			f |= op == 0xf6 ? O_I8 : O_IZ;
	}
	if (f & O_IW) {
		b[n++] = (uint8_t)rnd(g, 256);
		b[n++] = (uint8_t)rnd(g, 2);
	}
	if (f & O_I8)
		b[n++] = (uint8_t)rnd(g, 256);
	if (f & (O_IZ | O_IV)) {
		int sz = (f & O_IV) && rexw ? 8 : (p66 && !(f & O_BR) && !rexw) ? 2 : 4;

		if ((f & O_IZ) && p66 && !rexw && !(f & O_BR))
			sz = 2;
		for (i = 0; i < sz; i++)
			b[n++] = (uint8_t)rnd(g, 256);
	}
	if (f & O_MOFFS) {
		uint64_t a = chance(g, 80) ? DATA_BASE + WIN_LO + rnd(g, 0x400) : rng_next(g->rng);
		int sz = p67 ? 4 : 8;

		memcpy(b + n, &a, (size_t)sz);
		n += sz;
	}
	c->fuzz_len = (uint32_t)n;
	c->single_step = true;
	c->code_off = (uint32_t)(CODE_SIZE - (uint32_t)n);
	c->code_len = (uint32_t)n;
	memcpy(c->code, b, (size_t)n);
	c->n_insns = 1;
	c->insn_off[0] = 0;
	c->insn_name[0] = "fuzz";
	c->in.rip = CODE_BASE + c->code_off;
}

/* --- which CPUID feature an encoding needs --- */

/* The CPUID bits of the extensions whose encodings the fuzz can produce beyond the
 * x86-64 baseline (SDM vol. 2 each instruction's "CPUID Feature Flag" column, vol. 2
 * table 3-8 and the AMD64 APM vol. 3 appendix E). MMX/SSE/SSE2/SSE3 opcodes of the 0F map
 * are not listed: every x86-64 CPU has them, the emulated one included. */
const struct fuzz_feat fuzz_feats[] = {
    [FF_SSSE3] = {"SSSE3", 1, 0, 2, 9},
    [FF_SSE41] = {"SSE4.1", 1, 0, 2, 19},
    [FF_SSE42] = {"SSE4.2", 1, 0, 2, 20},
    [FF_PCLMUL] = {"PCLMULQDQ", 1, 0, 2, 1},
    [FF_VMX] = {"VMX", 1, 0, 2, 5},
    [FF_CX16] = {"CMPXCHG16B", 1, 0, 2, 13},
    [FF_MOVBE] = {"MOVBE", 1, 0, 2, 22},
    [FF_POPCNT] = {"POPCNT", 1, 0, 2, 23},
    [FF_AES] = {"AES", 1, 0, 2, 25},
    [FF_RDRAND] = {"RDRAND", 1, 0, 2, 30},
    [FF_CX8] = {"CMPXCHG8B", 1, 0, 3, 8},
    [FF_INVPCID] = {"INVPCID", 7, 0, 1, 10},
    [FF_RDSEED] = {"RDSEED", 7, 0, 1, 18},
    [FF_ADX] = {"ADX", 7, 0, 1, 19},
    [FF_SHA] = {"SHA", 7, 0, 1, 29},
    [FF_CET_SS] = {"CET_SS", 7, 0, 2, 7},
    [FF_GFNI] = {"GFNI", 7, 0, 2, 8},
    [FF_RDPID] = {"RDPID", 7, 0, 2, 22},
    [FF_KL] = {"KEYLOCKER", 7, 0, 2, 23},
    [FF_MOVDIRI] = {"MOVDIRI", 7, 0, 2, 27},
    [FF_MOVDIR64B] = {"MOVDIR64B", 7, 0, 2, 28},
    [FF_ENQCMD] = {"ENQCMD", 7, 0, 2, 29},
    [FF_UINTR] = {"UINTR", 7, 0, 3, 5},
    [FF_RAO_INT] = {"RAO-INT", 7, 1, 0, 3},
    [FF_HRESET] = {"HRESET", 7, 1, 0, 22},
    [FF_XSAVEC] = {"XSAVEC", 0xd, 1, 0, 1},
    [FF_XSAVES] = {"XSAVES", 0xd, 1, 0, 3},
    [FF_3DNOW] = {"3DNow!", 0x80000001, 0, 3, 31},
    [FF_SSE4A] = {"SSE4a", 0x80000001, 0, 2, 6},
};

/* Mandatory-prefix classes: none, 66, F3, F2 (the last of F2/F3 wins over 66). */
#define P0   1
#define P66  2
#define PF3  4
#define PF2  8
#define PANY (P0 | P66 | PF3 | PF2)

enum { MOD_ANY, MOD_MEM, MOD_REG };
enum { W_ANY, W_0, W_1 };

struct feat_enc {
	uint8_t map; /* 1: 0F, 2: 0F 38, 3: 0F 3A */
	uint8_t lo, hi;
	uint8_t pfx;  /* P* bits */
	int8_t reg;   /* ModRM.reg, or -1 */
	uint8_t mod;  /* MOD_* */
	uint8_t w;    /* W_* */
	uint8_t feat; /* FF_* */
};

static const struct feat_enc feat_encs[] = {
    /* 0F 38 */
    {2, 0x00, 0x0b, P0 | P66, -1, MOD_ANY, W_ANY, FF_SSSE3},
    {2, 0x1c, 0x1e, P0 | P66, -1, MOD_ANY, W_ANY, FF_SSSE3},
    {2, 0x10, 0x10, P66, -1, MOD_ANY, W_ANY, FF_SSE41},
    {2, 0x14, 0x15, P66, -1, MOD_ANY, W_ANY, FF_SSE41},
    {2, 0x17, 0x17, P66, -1, MOD_ANY, W_ANY, FF_SSE41},
    {2, 0x20, 0x25, P66, -1, MOD_ANY, W_ANY, FF_SSE41},
    {2, 0x28, 0x2b, P66, -1, MOD_ANY, W_ANY, FF_SSE41},
    {2, 0x30, 0x35, P66, -1, MOD_ANY, W_ANY, FF_SSE41},
    {2, 0x37, 0x37, P66, -1, MOD_ANY, W_ANY, FF_SSE42},
    {2, 0x38, 0x41, P66, -1, MOD_ANY, W_ANY, FF_SSE41},
    {2, 0x80, 0x81, P66, -1, MOD_MEM, W_ANY, FF_VMX}, /* INVEPT, INVVPID */
    {2, 0x82, 0x82, P66, -1, MOD_MEM, W_ANY, FF_INVPCID},
    {2, 0xc8, 0xcd, P0, -1, MOD_ANY, W_ANY, FF_SHA},
    {2, 0xcf, 0xcf, P66, -1, MOD_ANY, W_ANY, FF_GFNI},
    {2, 0xd8, 0xdf, PF3, -1, MOD_ANY, W_ANY, FF_KL},
    {2, 0xdb, 0xdf, P66, -1, MOD_ANY, W_ANY, FF_AES},
    {2, 0xf0, 0xf1, PF2, -1, MOD_ANY, W_ANY, FF_SSE42}, /* CRC32 */
    {2, 0xf0, 0xf1, P0 | P66, -1, MOD_MEM, W_ANY, FF_MOVBE},
    {2, 0xf5, 0xf5, P66, -1, MOD_MEM, W_ANY, FF_CET_SS},    /* WRUSS */
    {2, 0xf6, 0xf6, P0, -1, MOD_MEM, W_ANY, FF_CET_SS},	    /* WRSS */
    {2, 0xf6, 0xf6, P66 | PF3, -1, MOD_ANY, W_ANY, FF_ADX}, /* ADCX, ADOX */
    {2, 0xf8, 0xf8, P66, -1, MOD_MEM, W_ANY, FF_MOVDIR64B},
    {2, 0xf8, 0xf8, PF2 | PF3, -1, MOD_MEM, W_ANY, FF_ENQCMD},
    {2, 0xf9, 0xf9, P0, -1, MOD_MEM, W_ANY, FF_MOVDIRI},
    {2, 0xfa, 0xfb, PF3, -1, MOD_REG, W_ANY, FF_KL}, /* ENCODEKEY128/256 */
    {2, 0xfc, 0xfc, PANY, -1, MOD_MEM, W_ANY, FF_RAO_INT},
    /* 0F 3A */
    {3, 0x0f, 0x0f, P0 | P66, -1, MOD_ANY, W_ANY, FF_SSSE3},
    {3, 0x08, 0x0e, P66, -1, MOD_ANY, W_ANY, FF_SSE41},
    {3, 0x14, 0x17, P66, -1, MOD_ANY, W_ANY, FF_SSE41},
    {3, 0x20, 0x22, P66, -1, MOD_ANY, W_ANY, FF_SSE41},
    {3, 0x40, 0x42, P66, -1, MOD_ANY, W_ANY, FF_SSE41},
    {3, 0x44, 0x44, P66, -1, MOD_ANY, W_ANY, FF_PCLMUL},
    {3, 0x60, 0x63, P66, -1, MOD_ANY, W_ANY, FF_SSE42},
    {3, 0xcc, 0xcc, P0, -1, MOD_ANY, W_ANY, FF_SHA},
    {3, 0xce, 0xcf, P66, -1, MOD_ANY, W_ANY, FF_GFNI},
    {3, 0xdf, 0xdf, P66, -1, MOD_ANY, W_ANY, FF_AES},
    {3, 0xf0, 0xf0, PF3, -1, MOD_REG, W_ANY, FF_HRESET},
    /* 0F */
    {1, 0x0e, 0x0e, PANY, -1, MOD_ANY, W_ANY, FF_3DNOW},      /* FEMMS */
    {1, 0x2b, 0x2b, PF3 | PF2, -1, MOD_MEM, W_ANY, FF_SSE4A}, /* MOVNTSS, MOVNTSD */
    {1, 0xb8, 0xb8, PF3, -1, MOD_ANY, W_ANY, FF_POPCNT},
    {1, 0xc7, 0xc7, PANY, 1, MOD_MEM, W_0, FF_CX8},
    {1, 0xc7, 0xc7, PANY, 1, MOD_MEM, W_1, FF_CX16},
    {1, 0xc7, 0xc7, P0, 3, MOD_MEM, W_ANY, FF_XSAVES}, /* XRSTORS */
    {1, 0xc7, 0xc7, P0, 4, MOD_MEM, W_ANY, FF_XSAVEC},
    {1, 0xc7, 0xc7, P0, 5, MOD_MEM, W_ANY, FF_XSAVES},
    {1, 0xc7, 0xc7, P0 | P66 | PF3, 6, MOD_MEM, W_ANY, FF_VMX}, /* VMPTRLD VMCLEAR VMXON */
    {1, 0xc7, 0xc7, P0, 7, MOD_MEM, W_ANY, FF_VMX},		/* VMPTRST */
    {1, 0xc7, 0xc7, P0 | P66, 6, MOD_REG, W_ANY, FF_RDRAND},
    {1, 0xc7, 0xc7, PF3, 6, MOD_REG, W_ANY, FF_UINTR}, /* SENDUIPI */
    {1, 0xc7, 0xc7, P0 | P66, 7, MOD_REG, W_ANY, FF_RDSEED},
    {1, 0xc7, 0xc7, PF3, 7, MOD_REG, W_ANY, FF_RDPID},
};

int fuzz_feature(const struct tcase *c)
{
	const uint8_t *b = c->code;
	unsigned n = c->fuzz_len, i = 0, map = 0, pfx;
	uint8_t last_rep = 0, op, modrm;
	bool p66 = false, rexw = false;
	size_t k;

	for (; i < n; i++) {
		uint8_t x = b[i];

		if (x == 0xf2 || x == 0xf3)
			last_rep = x;
		else if (x == 0x66)
			p66 = true;
		else if (!(x == 0x67 || x == 0xf0 || x == 0x2e || x == 0x3e || x == 0x26 ||
			   x == 0x36 || x == 0x64 || x == 0x65))
			break;
	}
	if (i < n && (b[i] & 0xf0) == 0x40) { /* REX: only right before the opcode counts */
		rexw = b[i] & 8;
		i++;
	}
	if (i + 1 >= n || b[i] != 0x0f)
		return -1;
	i++;
	map = 1;
	if (b[i] == 0x38 || b[i] == 0x3a) {
		map = b[i] == 0x38 ? 2 : 3;
		i++;
	}
	if (i >= n)
		return -1;
	op = b[i++];
	modrm = i < n ? b[i] : 0;
	pfx = last_rep == 0xf3 ? PF3 : last_rep == 0xf2 ? PF2 : p66 ? P66 : P0;
	for (k = 0; k < sizeof(feat_encs) / sizeof(feat_encs[0]); k++) {
		const struct feat_enc *e = &feat_encs[k];

		if (e->map != map || op < e->lo || op > e->hi || !(e->pfx & pfx))
			continue;
		if ((map >= 2 || e->reg >= 0 || e->mod != MOD_ANY) && i >= n)
			continue; /* no ModRM */
		if (e->reg >= 0 && ((modrm >> 3) & 7) != e->reg)
			continue;
		if ((e->mod == MOD_MEM && modrm >= 0xc0) || (e->mod == MOD_REG && modrm < 0xc0))
			continue;
		if ((e->w == W_0 && rexw) || (e->w == W_1 && !rexw))
			continue;
		return e->feat;
	}
	return -1;
}

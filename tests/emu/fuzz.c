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

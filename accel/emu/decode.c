/* x86-64 instruction decoder: prefixes, REX, opcode maps, ModRM/SIB, displacement and
 * immediate, for 64-bit mode.
 *
 * Follows the Intel SDM vol. 2 ch. 2 (instruction format), appendix A (opcode maps) and
 * 2.3 (VEX). Lengths are found here from tables; which handler runs and which encodings are
 * invalid is decided by the selectors of the instruction files (int.c, sse.c, x87.c).
 * Rules: at most 15 bytes (#GP(0) beyond), REX only counts right before the opcode, the
 * last of F2/F3 wins, LOCK only on read-modify-write memory forms (checked by the
 * selectors), VEX/EVEX raise #UD because AVX is not advertised.
 */
#include "accel/emu/emu_internal.h"

/* Immediate kinds. */
enum {
	I_NONE,
	I_B,   /* 8 bits */
	I_W,   /* 16 bits */
	I_Z,   /* 16 or 32 bits by operand size */
	I_V,   /* 16, 32 or 64 bits by operand size (MOV r, imm) */
	I_MO,  /* moffs: address size */
	I_ENT, /* ENTER: imm16, imm8 */
	I_J8,  /* rel8 */
	I_J32, /* rel32 */
	I_GRP, /* F6/F7: imm only for /0 and /1 */
	I_FAR, /* ptr16:16/32 of the far CALL/JMP that are invalid in 64-bit mode: the length
		* still counts for the 15-byte limit */
};

#define M 0x80 /* has ModRM */

/* One-byte map: ModRM flag | immediate kind. */
static const uint8_t map1[256] = {
    /* clang-format off */
	/* 00 */ M, M, M, M, I_B, I_Z, 0, 0, M, M, M, M, I_B, I_Z, 0, 0,
	/* 10 */ M, M, M, M, I_B, I_Z, 0, 0, M, M, M, M, I_B, I_Z, 0, 0,
	/* 20 */ M, M, M, M, I_B, I_Z, 0, 0, M, M, M, M, I_B, I_Z, 0, 0,
	/* 30 */ M, M, M, M, I_B, I_Z, 0, 0, M, M, M, M, I_B, I_Z, 0, 0,
	/* 40 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 50 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 60 */ 0, 0, M, M, 0, 0, 0, 0, I_Z, M | I_Z, I_B, M | I_B, 0, 0, 0, 0,
	/* 70 */ I_J8, I_J8, I_J8, I_J8, I_J8, I_J8, I_J8, I_J8, I_J8, I_J8, I_J8, I_J8, I_J8, I_J8, I_J8, I_J8,
	/* 80 */ M | I_B, M | I_Z, M | I_B, M | I_B, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 90 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, I_FAR, 0, 0, 0, 0, 0,
	/* A0 */ I_MO, I_MO, I_MO, I_MO, 0, 0, 0, 0, I_B, I_Z, 0, 0, 0, 0, 0, 0,
	/* B0 */ I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_V, I_V, I_V, I_V, I_V, I_V, I_V, I_V,
	/* C0 */ M | I_B, M | I_B, I_W, 0, 0, 0, M | I_B, M | I_Z, I_ENT, 0, I_W, 0, 0, I_B, 0, 0,
	/* D0 */ M, M, M, M, I_B, I_B, 0, 0, M, M, M, M, M, M, M, M,
	/* E0 */ I_J8, I_J8, I_J8, I_J8, I_B, I_B, I_B, I_B, I_J32, I_J32, I_FAR, I_J8, 0, 0, 0, 0,
	/* F0 */ 0, 0, 0, 0, 0, 0, M | I_GRP, M | I_GRP, 0, 0, 0, 0, 0, 0, M, M,
    /* clang-format on */
};

/* Two-byte map (0F xx). UD1 (B9) and UD0 (FF) take no ModRM, as on AMD. */
static const uint8_t map0f[256] = {
    /* clang-format off */
	/* 00 */ M, M, M, M, 0, 0, 0, 0, 0, 0, 0, 0, 0, M, 0, 0,
	/* 10 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 20 */ M, M, M, M, 0, 0, 0, 0, M, M, M, M, M, M, M, M,
	/* 30 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 40 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 50 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 60 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 70 */ M | I_B, M | I_B, M | I_B, M | I_B, M, M, M, 0, M, M, 0, 0, M, M, M, M,
	/* 80 */ I_J32, I_J32, I_J32, I_J32, I_J32, I_J32, I_J32, I_J32, I_J32, I_J32, I_J32, I_J32, I_J32, I_J32, I_J32, I_J32,
	/* 90 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* A0 */ 0, 0, 0, M, M | I_B, M, 0, 0, 0, 0, 0, M, M | I_B, M, M, M,
	/* B0 */ M, M, M, M, M, M, M, M, M, 0, M | I_B, M, M, M, M, M,
	/* C0 */ M, M, M | I_B, M, M | I_B, M | I_B, M | I_B, M, 0, 0, 0, 0, 0, 0, 0, 0,
	/* D0 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* E0 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,
	/* F0 */ M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, 0,
    /* clang-format on */
};

#undef M

static unsigned imm_bytes(unsigned kind, unsigned osize, unsigned asize, unsigned modrm_reg)
{
	switch (kind) {
	case I_B:
	case I_J8:
		return 1;
	case I_W:
		return 2;
	case I_Z:
		return osize == 2 ? 2 : 4;
	case I_V:
		return osize;
	case I_MO:
		return asize;
	case I_ENT:
		return 3;
	case I_J32:
		return 4;
	case I_FAR:
		return osize == 2 ? 4 : 6;
	case I_GRP:
		return modrm_reg < 2 ? 1 : 0; /* size fixed up by caller for F7 */
	default:
		return 0;
	}
}

static uint64_t read_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	unsigned i;
	for (i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static unsigned finish_invalid(struct insn *in, unsigned len, emu_handler fn)
{
	in->fn = fn;
	in->len = (uint8_t)len;
	in->pfx |= PFX_END;
	return len;
}

unsigned emu_decode(uint64_t rip, const uint8_t *bytes, unsigned avail, struct insn *in)
{
	unsigned pos = 0, rex = 0, seg = EMU_DS, map = MAP_1B, opc, b, mand = 0;
	unsigned modrm = 0, attr, ib;
	bool has_modrm;

	memset(in, 0, sizeof(*in));
	in->rip = rip;
	in->base = REG_NONE;
	in->index = REG_NONE;
	in->asize = 8;
	in->size = 4;

#define NEED(n)                                                              \
	do {                                                                 \
		if (pos + (n) > 15)                                          \
			return finish_invalid(in, pos ? pos : 1, emu_op_gp); \
		if (pos + (n) > avail)                                       \
			return 0;                                            \
	} while (0)

	/* legacy prefixes and REX */
	for (;;) {
		NEED(1);
		b = bytes[pos];
		switch (b) {
		case 0x66:
			in->pfx |= PFX_66;
			in->size = 2;
			if (!mand)
				mand = 0x66;
			rex = 0;
			pos++;
			continue;
		case 0x67:
			in->asize = 4;
			rex = 0;
			pos++;
			continue;
		case 0xf0:
			in->pfx |= PFX_LOCK;
			rex = 0;
			pos++;
			continue;
		case 0xf2:
		case 0xf3:
			in->rep = (uint8_t)b;
			mand = b;
			rex = 0;
			pos++;
			continue;
		case 0x26:
		case 0x2e:
		case 0x36:
		case 0x3e:
			rex = 0;
			pos++;
			continue; /* ignored in 64-bit mode */
		case 0x64:
			seg = EMU_FS;
			rex = 0;
			pos++;
			continue;
		case 0x65:
			seg = EMU_GS;
			rex = 0;
			pos++;
			continue;
		default:
			break;
		}
		if ((b & 0xf0) == 0x40) {
			rex = b;
			pos++;
			continue;
		}
		break;
	}
	if (rex) {
		in->pfx |= PFX_REX;
		if (rex & 8) {
			in->pfx |= PFX_REXW;
			in->size = 8;
		}
	}
	in->seg = (uint8_t)seg;

	/* opcode */
	NEED(1);
	opc = bytes[pos++];
	if (opc == 0x0f) {
		NEED(1);
		opc = bytes[pos++];
		map = MAP_0F;
		if (opc == 0x38 || opc == 0x3a) {
			map = opc == 0x38 ? MAP_0F38 : MAP_0F3A;
			NEED(1);
			opc = bytes[pos++];
		}
	} else if (opc == 0xc4 || opc == 0xc5 || opc == 0x62 || opc == 0x8f) {
		/* VEX (C4/C5), EVEX (62) and XOP (8F with ModRM.reg != 0): in 64-bit mode these
		 * are always the prefix forms. Not advertised, so #UD. 8F /0 is POP r/m. */
		if (opc != 0x8f) {
			NEED(1);
			return finish_invalid(in, pos + 1, emu_op_ud);
		}
		NEED(1);
		if (((bytes[pos] >> 3) & 7) != 0)
			return finish_invalid(in, pos + 1, emu_op_ud);
	}

	switch (map) {
	case MAP_1B:
		attr = map1[opc];
		break;
	case MAP_0F:
		attr = map0f[opc];
		break;
	case MAP_0F38:
		attr = 0x80;
		break;
	default:
		attr = 0x80 | I_B;
		break;
	}
	has_modrm = attr & 0x80;

	if (has_modrm) {
		unsigned mod, rm;
		NEED(1);
		modrm = bytes[pos++];
		mod = modrm >> 6;
		rm = modrm & 7;
		in->reg = (uint8_t)(((modrm >> 3) & 7) | ((rex & 4) << 1));
		if (mod == 3) {
			in->rm = (uint8_t)(rm | ((rex & 1) << 3));
		} else {
			in->mem = 1;
			if (rm == 4) {
				unsigned sib, base, idx;
				NEED(1);
				sib = bytes[pos++];
				in->scale = (uint8_t)(sib >> 6);
				idx = ((sib >> 3) & 7) | ((rex & 2) << 2);
				base = sib & 7;
				if (idx != 4)
					in->index = (uint8_t)idx;
				if (base == 5 && mod == 0) {
					NEED(4);
					in->disp = (int32_t)read_le(bytes + pos, 4);
					pos += 4;
				} else {
					in->base = (uint8_t)(base | ((rex & 1) << 3));
				}
			} else if (rm == 5 && mod == 0) {
				in->base = REG_RIP;
				NEED(4);
				in->disp = (int32_t)read_le(bytes + pos, 4);
				pos += 4;
			} else {
				in->base = (uint8_t)(rm | ((rex & 1) << 3));
			}
			if (mod == 1) {
				NEED(1);
				in->disp = (int8_t)bytes[pos++];
			} else if (mod == 2) {
				NEED(4);
				in->disp = (int32_t)read_le(bytes + pos, 4);
				pos += 4;
			}
		}
	} else {
		in->rm = (uint8_t)((opc & 7) | ((rex & 1) << 3));
	}

	/* immediate */
	{
		unsigned kind = attr & 0x7f;
		ib = imm_bytes(kind, in->size, in->asize, (modrm >> 3) & 7);
		if (kind == I_GRP && ib && opc == 0xf7)
			ib = in->size == 2 ? 2 : 4;
		if (ib) {
			NEED(ib);
			in->imm = read_le(bytes + pos, ib);
			/* sign-extend Z/B immediates; the handler truncates to operand size */
			if (kind == I_J8 || kind == I_B)
				in->imm = (uint64_t)(int64_t)(int8_t)in->imm;
			else if (kind == I_J32 || ((kind == I_Z || kind == I_GRP) && ib == 4))
				in->imm = (uint64_t)(int64_t)(int32_t)in->imm;
			else if ((kind == I_Z || kind == I_GRP) && ib == 2)
				in->imm = (uint64_t)(int64_t)(int16_t)in->imm;
			pos += ib;
		}
		/* unsigned 8-bit immediates where the instruction wants them */
		if (kind == I_B &&
		    ((map == MAP_1B &&
		      ((opc >= 0xb0 && opc <= 0xb7) || (opc >= 0xe4 && opc <= 0xe7) ||
		       opc == 0xcd || opc == 0xc0 || opc == 0xc1)) ||
		     map != MAP_1B))
			in->imm &= 0xff;
		in->ib = (uint8_t)in->imm;
		if (kind == I_J8 || kind == I_J32)
			in->imm += rip + pos;
	}
#undef NEED
	in->len = (uint8_t)pos;

	{
		bool ok;
		if (map == MAP_1B && opc >= 0xd8 && opc <= 0xdf)
			ok = emu_select_x87(in, opc, modrm);
		else if (map == MAP_1B)
			ok = emu_select_int(in, map, opc, (modrm >> 3) & 7);
		else
			ok = emu_select_int(in, map, opc, (modrm >> 3) & 7) ||
			     emu_select_sse(in, map, opc, mand);
		if (!ok) {
			in->fn = emu_op_ud;
			in->pfx |= PFX_END;
		}
	}
	return pos;
}

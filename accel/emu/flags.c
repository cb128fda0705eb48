/* Lazy arithmetic flags: materialise CF/PF/AF/ZF/SF/OF from the last flag-setting
 * operation, and evaluate condition codes (with fast paths for CMP/SUB and logic ops).
 *
 * Follows the Intel SDM vol. 1 3.4.3.1 (status flags) and appendix B (condition codes).
 */
#include "accel/emu/emu_internal.h"

#define RFLAGS_VALID 0x3f7fd7ull

uint64_t emu_flags_get(const struct emu_cpu *cpu)
{
	uint64_t f = cpu->rflags | 2;
	uint64_t mask, sign, res, a, b, cf, of, af;

	if (cpu->lf_op == LF_EAGER)
		return f;
	f &= ~(uint64_t)FL_ARITH;
	mask = size_mask(cpu->lf_size);
	sign = 1ull << (cpu->lf_size * 8 - 1);
	res = cpu->lf_res & mask;
	a = cpu->lf_a & mask;
	b = cpu->lf_op >= LF_SHL ? cpu->lf_b : cpu->lf_b & mask;
	af = (a ^ b ^ res) & FL_AF;
	switch (cpu->lf_op) {
	case LF_ADD:
		cf = res < a;
		of = (a ^ res) & (b ^ res) & sign;
		break;
	case LF_ADC:
		cf = cpu->lf_cf ? res <= a : res < a;
		of = (a ^ res) & (b ^ res) & sign;
		break;
	case LF_SUB:
		cf = a < b;
		of = (a ^ b) & (a ^ res) & sign;
		break;
	case LF_SBB:
		cf = cpu->lf_cf ? a <= b : a < b;
		of = (a ^ b) & (a ^ res) & sign;
		break;
	case LF_INC:
		cf = cpu->lf_cf;
		of = (a ^ res) & (b ^ res) & sign;
		break;
	case LF_DEC:
		cf = cpu->lf_cf;
		of = (a ^ b) & (a ^ res) & sign;
		break;
	case LF_SHL:
		cf = cpu->lf_b <= cpu->lf_size * 8 ? (a >> (cpu->lf_size * 8 - cpu->lf_b)) & 1 : 0;
		of = !!(res & sign) ^ cf;
		af = 0;
		break;
	case LF_SHR:
		cf = (a >> (cpu->lf_b - 1)) & 1;
		of = a & sign;
		af = 0;
		break;
	case LF_SAR:
		cf = (uint64_t)(sext(a, cpu->lf_size) >> (cpu->lf_b - 1)) & 1;
		of = 0;
		af = 0;
		break;
	default: /* LF_LOGIC */
		cf = 0;
		of = 0;
		af = 0;
		break;
	}
	if (cf)
		f |= FL_CF;
	if (of)
		f |= FL_OF;
	f |= af;
	if (!res)
		f |= FL_ZF;
	if (res & sign)
		f |= FL_SF;
	if (parity8(res))
		f |= FL_PF;
	return f;
}

void emu_update_ac(struct emu_cpu *cpu)
{
	cpu->ac_check =
	    (cpu->rflags & 0x40000) && (cpu->cr0 & 0x40000) && (cpu->seg[EMU_CS].selector & 3) == 3;
}

void emu_flags_set(struct emu_cpu *cpu, uint64_t rflags)
{
	cpu->rflags = (rflags & RFLAGS_VALID) | 2;
	cpu->lf_op = LF_EAGER;
	emu_update_ac(cpu);
}

static bool cond_from(uint64_t f, unsigned cc)
{
	bool r;
	switch (cc >> 1) {
	case 0:
		r = f & FL_OF;
		break;
	case 1:
		r = f & FL_CF;
		break;
	case 2:
		r = f & FL_ZF;
		break;
	case 3:
		r = f & (FL_CF | FL_ZF);
		break;
	case 4:
		r = f & FL_SF;
		break;
	case 5:
		r = f & FL_PF;
		break;
	case 6:
		r = !(f & FL_SF) != !(f & FL_OF);
		break;
	default:
		r = (f & FL_ZF) || (!(f & FL_SF) != !(f & FL_OF));
		break;
	}
	return r ^ (cc & 1);
}

bool emu_cond(const struct emu_cpu *cpu, unsigned cc)
{
	uint64_t mask, a, b, res;
	bool r;

	if (cpu->lf_op != LF_EAGER && ((cc >> 1) == 2 || (cc >> 1) == 4)) {
		mask = size_mask(cpu->lf_size);
		res = cpu->lf_res & mask;
		r = (cc >> 1) == 2 ? !res : res >> (cpu->lf_size * 8 - 1);
		return r ^ (cc & 1);
	}
	switch (cpu->lf_op) {
	case LF_SUB:
		mask = size_mask(cpu->lf_size);
		a = cpu->lf_a & mask;
		b = cpu->lf_b & mask;
		switch (cc >> 1) {
		case 1:
			r = a < b;
			break;
		case 2:
			r = a == b;
			break;
		case 3:
			r = a <= b;
			break;
		case 6:
			r = sext(a, cpu->lf_size) < sext(b, cpu->lf_size);
			break;
		case 7:
			r = sext(a, cpu->lf_size) <= sext(b, cpu->lf_size);
			break;
		default:
			return cond_from(emu_flags_get(cpu), cc);
		}
		return r ^ (cc & 1);
	case LF_LOGIC:
		mask = size_mask(cpu->lf_size);
		res = cpu->lf_res & mask;
		switch (cc >> 1) {
		case 0:
		case 1:
			r = false;
			break;
		case 2:
		case 3:
			r = res == 0;
			break;
		case 4:
		case 6:
			r = sext(res, cpu->lf_size) < 0;
			break;
		case 7:
			r = sext(res, cpu->lf_size) <= 0;
			break;
		default:
			return cond_from(emu_flags_get(cpu), cc);
		}
		return r ^ (cc & 1);
	default:
		return cond_from(emu_flags_get(cpu), cc);
	}
}

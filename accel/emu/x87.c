/* x87 (stub while being written). */
#include "accel/emu/emu_internal.h"

bool emu_select_x87(struct insn *in, unsigned opc, unsigned modrm)
{
	return false;
}

/* SSE..SSE4.2 and MMX (stub while being written). */
#include "accel/emu/emu_internal.h"

bool emu_select_sse(struct insn *in, unsigned map, unsigned opc, unsigned mand)
{
	return false;
}

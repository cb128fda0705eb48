/* Differential test harness: stand-ins for accel/emu functions that are not built yet.
 *
 * Linked after libkestrel.a as a separate archive with one function per member, so the
 * linker takes a stub only for a function libkestrel.a does not define. With the stub
 * emu_cpu_create() returning NULL the harness reports "emulator not available" for every
 * class instead of failing to build. Compiled once per function with -DSTUB_<name>.
 */
#include <errno.h>
#include <string.h>

#include "accel/emu/emu.h"

#if defined(STUB_emu_cpu_create)
struct emu_cpu *emu_cpu_create(void)
{
	return NULL;
}
#elif defined(STUB_emu_cpu_destroy)
void emu_cpu_destroy(struct emu_cpu *cpu)
{
	(void)cpu;
}
#elif defined(STUB_emu_reset_long_mode)
void emu_reset_long_mode(struct emu_cpu *cpu)
{
	(void)cpu;
}
#elif defined(STUB_emu_set_state)
void emu_set_state(struct emu_cpu *cpu, const struct emu_state *st)
{
	(void)cpu;
	(void)st;
}
#elif defined(STUB_emu_get_state)
void emu_get_state(const struct emu_cpu *cpu, struct emu_state *st)
{
	(void)cpu;
	memset(st, 0, sizeof(*st));
}
#elif defined(STUB_emu_map_flat)
int emu_map_flat(struct emu_cpu *cpu, uint64_t addr, void *host, uint64_t size, bool writable)
{
	(void)cpu;
	(void)addr;
	(void)host;
	(void)size;
	(void)writable;
	return -ENOSYS;
}
#elif defined(STUB_emu_cpuid)
void emu_cpuid(const struct emu_cpu *cpu, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
	(void)cpu;
	(void)leaf;
	(void)subleaf;
	memset(out, 0, 4 * sizeof(out[0]));
}
#elif defined(STUB_emu_run)
enum emu_stop emu_run(struct emu_cpu *cpu, uint64_t max_insns, uint64_t stop_rip,
		      struct emu_event *ev, uint64_t *retired)
{
	(void)cpu;
	(void)max_insns;
	(void)stop_rip;
	(void)retired;
	ev->vector = 6;
	return EMU_STOP_EXCEPTION;
}
#endif

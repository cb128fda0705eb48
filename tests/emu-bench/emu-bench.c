/* emu-bench: runs three loops (ALU-heavy, memcpy/strlen-heavy, floating point) in accel/emu
 * and natively on the host, and prints millions of instructions per second side by side.
 * Not a test: `make build/bench/emu-bench && build/bench/emu-bench [iterations-scale]`.
 *
 * Times are CPU time of the running thread. The loops are in loops.asm (assembled by nasm at build time into loops.bin next to this
 * binary). The native instruction count is the emulator's retired count for the same loop
 * and input, since the code is deterministic.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "accel/emu/emu.h"

#define CODE_ADDR  0x400000ull
#define DATA_ADDR  0x1000000ull
#define DATA_SIZE  0x10000ull
#define STACK_ADDR 0x2000000ull
#define STACK_SIZE 0x10000ull
#define RET_ADDR   0x3000000ull

/* CPU time of this thread: the machine may be shared, and wall time would count the
 * time other processes ran. */
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint8_t *load_loops(size_t *len)
{
	char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
	FILE *f;
	uint8_t *buf;
	if (n <= 0)
		return NULL;
	path[n] = 0;
	strcpy(strrchr(path, '/') + 1, "emu-bench-loops.bin");
	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "emu-bench: cannot open %s\n", path);
		return NULL;
	}
	buf = malloc(65536);
	*len = fread(buf, 1, 65536, f);
	fclose(f);
	return buf;
}

struct result {
	double secs;
	uint64_t insns;
	uint64_t rax;
};

static int run_emu(const uint8_t *code, size_t len, uint32_t entry, uint32_t iters,
		   struct result *r)
{
	struct emu_cpu *cpu = emu_cpu_create();
	uint8_t *cmem = calloc(1, 0x10000), *data = calloc(1, DATA_SIZE),
		*stack = calloc(1, STACK_SIZE);
	struct emu_state st;
	struct emu_event ev;
	enum emu_stop s;
	double t0;
	int ret = 0;
	uint64_t ra = RET_ADDR;

	memcpy(cmem, code, len);
	emu_map_flat(cpu, CODE_ADDR, cmem, 0x10000, false);
	emu_map_flat(cpu, DATA_ADDR, data, DATA_SIZE, true);
	emu_map_flat(cpu, STACK_ADDR, stack, STACK_SIZE, true);
	memcpy(stack + STACK_SIZE - 64, &ra, 8);
	emu_get_state(cpu, &st);
	st.rip = CODE_ADDR + entry;
	st.gpr[EMU_RSP] = STACK_ADDR + STACK_SIZE - 64;
	st.gpr[EMU_RDI] = DATA_ADDR;
	st.gpr[EMU_RSI] = iters;
	emu_set_state(cpu, &st);
	t0 = now();
	s = emu_run(cpu, UINT64_MAX, RET_ADDR, &ev, &r->insns);
	r->secs = now() - t0;
	emu_get_state(cpu, &st);
	r->rax = st.gpr[EMU_RAX];
	if (s != EMU_STOP_RIP) {
		fprintf(stderr, "emu-bench: emulator stopped with %d (vector %d) at %#llx\n", s,
			ev.vector, (unsigned long long)st.rip);
		ret = -1;
	}
	emu_cpu_destroy(cpu);
	free(cmem);
	free(data);
	free(stack);
	return ret;
}

static void run_native(const uint8_t *code, size_t len, uint32_t entry, uint32_t iters,
		       struct result *r)
{
	uint8_t *x = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE | PROT_EXEC,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t *data = calloc(1, DATA_SIZE);
	uint64_t (*fn)(void *, uint32_t);
	double t0;
	memcpy(x, code, len);
	fn = (uint64_t(*)(void *, uint32_t))(void *)(x + entry);
	t0 = now();
	r->rax = fn(data, iters);
	r->secs = now() - t0;
	munmap(x, 0x10000);
	free(data);
}

int main(int argc, char **argv)
{
	static const char *names[3] = {"alu", "memcpy/strlen", "fp (sse2)"};
	static const uint32_t base_iters[3] = {20000000, 20000, 5000000};
	double scale = argc > 1 ? atof(argv[1]) : 1.0;
	size_t len;
	uint8_t *code = load_loops(&len);
	int i, rc = 0;
	if (!code)
		return 1;
	printf("%-16s %12s %10s %10s %10s %8s\n", "loop", "insns", "emu MIPS", "host MIPS", "emu s",
	       "slowdown");
	for (i = 0; i < 3; i++) {
		uint32_t entry, iters = (uint32_t)(base_iters[i] * scale);
		struct result e, n;
		memcpy(&entry, code + 4 * i, 4);
		if (run_emu(code, len, entry, iters, &e)) {
			rc = 1;
			continue;
		}
		run_native(code, len, entry, iters, &n);
		printf("%-16s %12llu %10.1f %10.1f %10.3f %7.1fx%s\n", names[i],
		       (unsigned long long)e.insns, e.insns / e.secs / 1e6, e.insns / n.secs / 1e6,
		       e.secs, e.secs / n.secs, e.rax == n.rax ? "" : "  RESULT MISMATCH");
		if (e.rax != n.rax)
			rc = 1;
	}
	free(code);
	return rc;
}

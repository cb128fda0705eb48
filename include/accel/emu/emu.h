/* The x86-64 CPU emulator: public interface.
 *
 * This header is what the rest of Kestrel and the tests see of accel/emu. The bare CPU
 * (issue 7) runs with flat memory: linear address == physical address, backed by host
 * buffers given with emu_map_flat(). Paging, the soft TLB and the device side come with the
 * system part; they extend this interface without changing what is here.
 */
#ifndef KESTREL_ACCEL_EMU_EMU_H
#define KESTREL_ACCEL_EMU_EMU_H

#include <stdbool.h>
#include <stdint.h>

enum emu_gpr {
	EMU_RAX,
	EMU_RCX,
	EMU_RDX,
	EMU_RBX,
	EMU_RSP,
	EMU_RBP,
	EMU_RSI,
	EMU_RDI,
	EMU_R8,
	EMU_R9,
	EMU_R10,
	EMU_R11,
	EMU_R12,
	EMU_R13,
	EMU_R14,
	EMU_R15,
};

enum emu_sreg { EMU_ES, EMU_CS, EMU_SS, EMU_DS, EMU_FS, EMU_GS };

struct emu_segment {
	uint16_t selector;
	uint64_t base;
	uint32_t limit;
	uint16_t attr; /* descriptor bits 40-47 and 52-55, as VMX/SVM pack them */
};

/* Architectural state, in the layout tests and save/load use. Not the emulator's internal
 * representation: flags are lazy inside, materialised here. */
struct emu_state {
	uint64_t gpr[16];
	uint64_t rip;
	uint64_t rflags;
	struct emu_segment seg[6];
	uint64_t cr0, cr2, cr3, cr4, cr8, efer;
	uint64_t fs_base, gs_base, kernel_gs_base;
	/* SSE */
	uint8_t xmm[16][16];
	uint32_t mxcsr;
	/* x87, as FXSAVE lays it out (st[i] is ST(i), 80-bit, little-endian, in the low 10
	 * bytes) */
	uint16_t fcw, fsw;
	uint8_t ftw_abridged; /* FXSAVE's 8-bit tag word: bit i set = physical reg i valid */
	uint16_t fop;
	uint64_t fip, fdp;
	uint8_t st[8][16];
};

/* Why emu_run() returned. */
enum emu_stop {
	EMU_STOP_INSN_LIMIT, /* max_insns retired */
	EMU_STOP_RIP,	     /* RIP reached stop_rip (that instruction not executed) */
	EMU_STOP_HLT,	     /* HLT executed; RIP points after it */
	EMU_STOP_EXCEPTION,  /* an exception was raised; state is as before the faulting insn */
	EMU_STOP_IO,	     /* port I/O or unmapped-memory access (system part) */
};

struct emu_event {
	uint8_t vector; /* EMU_STOP_EXCEPTION: #DE=0, #UD=6, #GP=13, #PF=14, ... */
	bool has_error_code;
	uint32_t error_code;
	uint64_t fault_addr; /* #PF: the linear address (CR2) */
};

struct emu_cpu;

struct emu_cpu *emu_cpu_create(void);
void emu_cpu_destroy(struct emu_cpu *cpu);

/* Reset to a 64-bit flat user-mode-like state: long mode, CS L=1, DS/ES/SS/FS/GS base 0,
 * CR0.PE/PG/MP/NE/AM, CR4.OSFXSR/OSXMMEXCPT, EFER.LME/LMA/SCE, MXCSR 0x1f80, FCW 0x37f.
 * CPL is 3 (CS 0x33, SS 0x2b, IOPL 0): privileged instructions raise #GP as in a process. */
void emu_reset_long_mode(struct emu_cpu *cpu);
/* Also drops every decoded block: the caller may have rewritten guest memory. */
void emu_set_state(struct emu_cpu *cpu, const struct emu_state *st);
void emu_get_state(const struct emu_cpu *cpu, struct emu_state *st);

/* Back [addr, addr+size) with host memory (flat: linear == physical). Code in it may be
 * written by the guest; the decoded-instruction cache notices. Returns 0 or -errno. */
int emu_map_flat(struct emu_cpu *cpu, uint64_t addr, void *host, uint64_t size, bool writable);

/* Run until one of the stop conditions; *ev is filled for EMU_STOP_EXCEPTION. Use
 * stop_rip = UINT64_MAX for none. Returns the reason and counts retired instructions in
 * *retired if non-NULL. */
enum emu_stop emu_run(struct emu_cpu *cpu, uint64_t max_insns, uint64_t stop_rip,
		      struct emu_event *ev, uint64_t *retired);

/* CPUID as the emulated CPU reports it (the policy of what it implements). */
void emu_cpuid(const struct emu_cpu *cpu, uint32_t leaf, uint32_t subleaf, uint32_t out[4]);

#endif

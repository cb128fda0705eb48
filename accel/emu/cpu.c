/* The x86-64 interpreter's CPU object: creation and reset, architectural state in and out,
 * flat memory, the decoded-block cache, the run loop and the CPUID policy.
 *
 * Follows the Intel SDM vol. 3 ch. 9 (processor state after reset, here a long-mode
 * flavour of it), vol. 2 CPUID (leaf layout) and ch. 6 (exception classes: faults leave
 * the state as before the instruction). Decoded blocks are keyed by guest physical address
 * (== linear in flat mode); a write to a page that holds decoded code drops the cache and
 * ends the running block after the writing instruction, so self-modifying code works.
 */
#define LOG_SUBSYS "emu"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "accel/emu/emu_internal.h"
#include "util/log.h"

/* --- exceptions --- */

void emu_raise(struct emu_cpu *cpu, const struct insn *in, int vector, uint32_t error_code,
	       bool has_error)
{
	memset(&cpu->ev, 0, sizeof(cpu->ev));
	cpu->ev.vector = (uint8_t)vector;
	cpu->ev.error_code = error_code;
	cpu->ev.has_error_code = has_error;
	cpu->fault_insn = in;
	longjmp(cpu->fault_jmp, 1);
}

void emu_raise_fault(struct emu_cpu *cpu, const struct insn *in, uint64_t addr, bool write)
{
	uint32_t err = (write ? 2u : 0u) | ((cpu->seg[EMU_CS].selector & 3) == 3 ? 4u : 0u);
	memset(&cpu->ev, 0, sizeof(cpu->ev));
	cpu->ev.vector = EXC_PF;
	cpu->ev.error_code = err;
	cpu->ev.has_error_code = true;
	cpu->ev.fault_addr = addr;
	cpu->fault_insn = in;
	longjmp(cpu->fault_jmp, 1);
}

void emu_op_ud(struct emu_cpu *cpu, const struct insn *in)
{
	emu_raise(cpu, in, EXC_UD, 0, false);
}

void emu_op_gp(struct emu_cpu *cpu, const struct insn *in)
{
	emu_raise(cpu, in, EXC_GP, 0, true);
}

void emu_op_fetch_fault(struct emu_cpu *cpu, const struct insn *in)
{
	uint64_t addr = in->imm;
	if ((uint64_t)((int64_t)(addr << 16) >> 16) != addr)
		emu_raise(cpu, in, EXC_GP, 0, true);
	memset(&cpu->ev, 0, sizeof(cpu->ev));
	cpu->ev.vector = EXC_PF;
	cpu->ev.error_code = 0x10 | ((cpu->seg[EMU_CS].selector & 3) == 3 ? 4u : 0u);
	cpu->ev.has_error_code = true;
	cpu->ev.fault_addr = addr;
	cpu->fault_insn = in;
	longjmp(cpu->fault_jmp, 1);
}

void emu_sse_check(struct emu_cpu *cpu, const struct insn *in)
{
	if ((cpu->cr0 & 4) || !(cpu->cr4 & 0x200)) /* CR0.EM, CR4.OSFXSR */
		emu_raise(cpu, in, EXC_UD, 0, false);
	if (cpu->cr0 & 8) /* CR0.TS */
		emu_raise(cpu, in, EXC_NM, 0, false);
}

void emu_fpu_check(struct emu_cpu *cpu, const struct insn *in)
{
	if (cpu->cr0 & 0xc) /* CR0.EM or TS */
		emu_raise(cpu, in, EXC_NM, 0, false);
}

uint64_t emu_rdtsc(const struct emu_cpu *cpu)
{
	return __builtin_ia32_rdtsc() + cpu->tsc_offset;
}

/* --- decoded-block cache --- */

static unsigned block_hash(uint64_t rip)
{
	return (unsigned)((rip ^ (rip >> EMU_HASH_BITS) ^ (rip >> 28)) &
			  ((1u << EMU_HASH_BITS) - 1));
}

void emu_flush_blocks(struct emu_cpu *cpu)
{
	unsigned i;
	memset(cpu->hash, 0, sizeof(cpu->hash));
	cpu->arena_used = 0;
	for (i = 0; i < cpu->nregions; i++) {
		struct emu_region *r = &cpu->regions[i];
		memset(r->code, 0, (r->size + 4095) >> 12);
	}
	cpu->flushes++;
}

/* Drop every decoded block with an instruction byte in [lo, lo + 4096). Their memory stays
 * in the arena (the running block may be one of them) until the next full flush. */
static void invalidate_page(struct emu_cpu *cpu, uint64_t lo)
{
	unsigned h;
	for (h = 0; h < (1u << EMU_HASH_BITS); h++) {
		struct emu_block **pp = &cpu->hash[h];
		while (*pp) {
			struct emu_block *b = *pp;
			if (b->rip < lo + 4096 && b->end > lo) {
				b->live = 0;
				*pp = b->next;
			} else
				pp = &b->next;
		}
	}
}

/* A write hit a page that holds decoded code: forget that page's blocks, and end the
 * running block after the writing instruction so the new bytes are decoded. */
void emu_code_written(struct emu_cpu *cpu, struct emu_region *r, uint64_t off, uint64_t len)
{
	uint64_t p;
	for (p = off >> 12; p <= (off + len - 1) >> 12; p++) {
		if (!r->code[p])
			continue;
		invalidate_page(cpu, r->base + (p << 12));
		r->code[p] = 0;
	}
	cpu->exit_req = 1;
	cpu->invalidations++;
}

/* The sentinel after the last instruction of a block that does not end in a branch. */
static void op_block_end(struct emu_cpu *cpu, const struct insn *in)
{
	cpu->rip = in->rip;
}

void emu_exit_after(struct emu_cpu *cpu, const struct insn *in)
{
	cpu->rip = in->rip + in->len;
	cpu->exit_insn = in;
}

static struct emu_region *find_region(struct emu_cpu *cpu, uint64_t addr)
{
	unsigned i;
	for (i = 0; i < cpu->nregions; i++) {
		struct emu_region *r = &cpu->regions[i];
		if (addr - r->base < r->size)
			return r;
	}
	return NULL;
}

/* Copy up to 15 code bytes at addr (across adjacent regions); returns how many. */
static unsigned fetch_bytes(struct emu_cpu *cpu, uint64_t addr, uint8_t *buf)
{
	unsigned got = 0;
	while (got < 15) {
		struct emu_region *r = find_region(cpu, addr + got);
		uint64_t off, n;
		if (!r)
			break;
		off = addr + got - r->base;
		n = r->size - off;
		if (n > 15 - got)
			n = 15 - got;
		memcpy(buf + got, r->host + off, n);
		r->code[off >> 12] = 1;
		r->code[(off + n - 1) >> 12] = 1;
		got += (unsigned)n;
	}
	return got;
}

static struct emu_block *translate(struct emu_cpu *cpu, uint64_t rip)
{
	size_t need = sizeof(struct emu_block) + (EMU_BLOCK_MAX + 1) * sizeof(struct insn);
	struct emu_block *blk;
	uint64_t addr = rip;
	unsigned n = 0, h;

	if (cpu->arena_used + need > EMU_ARENA_SIZE)
		emu_flush_blocks(cpu);
	blk = (struct emu_block *)(cpu->arena + cpu->arena_used);
	while (n < EMU_BLOCK_MAX) {
		uint8_t buf[16];
		struct insn *in = &blk->insns[n];
		unsigned avail = fetch_bytes(cpu, addr, buf);
		unsigned len = emu_decode(addr, buf, avail, in);
		if (!len) {
			if (n)
				break;
			/* first instruction cannot be fetched: fault when it runs */
			memset(in, 0, sizeof(*in));
			in->fn = emu_op_fetch_fault;
			in->rip = addr;
			in->imm = addr + avail;
			in->pfx = PFX_END;
			n = 1;
			break;
		}
		n++;
		addr += len;
		if (in->pfx & PFX_END)
			break;
		if ((addr ^ rip) & ~0xfffull)
			break;
	}
	memset(&blk->insns[n], 0, sizeof(struct insn));
	blk->insns[n].fn = op_block_end;
	blk->insns[n].rip = addr;
	blk->rip = rip;
	blk->end = addr;
	blk->n = n;
	blk->live = 1;
	blk->succ[0] = blk->succ[1] = NULL;
	h = block_hash(rip);
	blk->next = cpu->hash[h];
	cpu->hash[h] = blk;
	cpu->arena_used += sizeof(struct emu_block) + (n + 1) * sizeof(struct insn);
	cpu->arena_used = (cpu->arena_used + 15) & ~(size_t)15;
	return blk;
}

static inline struct emu_block *lookup(struct emu_cpu *cpu, uint64_t rip)
{
	struct emu_block *b = cpu->hash[block_hash(rip)];
	while (b && b->rip != rip)
		b = b->next;
	return b;
}

/* --- run loop --- */

enum emu_stop emu_run(struct emu_cpu *cpu, uint64_t max_insns, uint64_t stop_rip,
		      struct emu_event *ev, uint64_t *retired)
{
	struct emu_block *volatile blk = NULL;
	volatile uint64_t done = 0;
	enum emu_stop why;

	cpu->stop = -1;
	cpu->exit_req = 0;
	cpu->prev_block = NULL;
	asm volatile("stmxcsr %0" : "=m"(cpu->host_mxcsr));
	cpu->mx_loaded = 0;
	cpu->mx_lazy = 0;
	switch (setjmp(cpu->fault_jmp)) {
	case 0:
		break;
	case 2: /* stop before an I/O instruction */
		done += (uint64_t)(cpu->fault_insn - blk->insns);
		cpu->rip = cpu->fault_insn->rip;
		cpu->exit_req = 0;
		why = EMU_STOP_IO;
		goto out;
	default: {
		const struct insn *in = cpu->fault_insn;
		done += (uint64_t)(in - blk->insns);
		cpu->rip = in->rip;
		cpu->exit_req = 0;
		if (ev)
			*ev = cpu->ev;
		why = EMU_STOP_EXCEPTION;
		goto out;
	}
	}
	for (;;) {
		struct emu_block *b;
		uint64_t left = max_insns - done;
		if (!left) {
			why = EMU_STOP_INSN_LIMIT;
			break;
		}
		if (cpu->rip == stop_rip) {
			why = EMU_STOP_RIP;
			break;
		}
		b = NULL;
		struct emu_block *prev = cpu->prev_block;
		if (prev && cpu->prev_flushes == cpu->flushes) {
			struct emu_block *s0 = prev->succ[0], *s1 = prev->succ[1];
			if (s0 && s0->rip == cpu->rip && s0->live)
				b = s0;
			else if (s1 && s1->rip == cpu->rip && s1->live)
				b = s1;
		}
		if (!b) {
			b = lookup(cpu, cpu->rip);
			if (!b)
				b = translate(cpu, cpu->rip);
			/* a translation may have flushed the arena, prev with it */
			if (prev && cpu->prev_flushes == cpu->flushes)
				prev->succ[prev->succ[0] && prev->succ[0]->live ? 1 : 0] = b;
		}
		blk = b;
		cpu->prev_block = b;
		cpu->prev_flushes = cpu->flushes;
		cpu->budget_end = left <= b->n ? &b->insns[left - 1] : NULL;
		cpu->exit_req = left < b->n || (stop_rip > b->rip && stop_rip < b->end);
		cpu->exit_insn = NULL;
		b->insns[0].fn(cpu, &b->insns[0]);
		if (cpu->exit_insn)
			done += (uint64_t)(cpu->exit_insn - b->insns) + 1;
		else
			done += b->n;
		cpu->exit_req = 0;
		if (unlikely(cpu->stop >= 0)) {
			why = (enum emu_stop)cpu->stop;
			break;
		}
	}
out:
	emu_mxcsr_sync(cpu);
	if (cpu->mx_loaded)
		asm volatile("ldmxcsr %0" : : "m"(cpu->host_mxcsr));
	if (retired)
		*retired = done;
	return why;
}

/* --- state --- */

struct emu_cpu *emu_cpu_create(void)
{
	struct emu_cpu *cpu;
	if (posix_memalign((void **)&cpu, 64, sizeof(*cpu)))
		return NULL;
	memset(cpu, 0, sizeof(*cpu));
	cpu->arena =
	    mmap(NULL, EMU_ARENA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (cpu->arena == MAP_FAILED) {
		free(cpu);
		return NULL;
	}
	emu_reset_long_mode(cpu);
	return cpu;
}

void emu_cpu_destroy(struct emu_cpu *cpu)
{
	unsigned i;
	if (!cpu)
		return;
	for (i = 0; i < cpu->nregions; i++)
		free(cpu->regions[i].code);
	munmap(cpu->arena, EMU_ARENA_SIZE);
	free(cpu);
}

void emu_reset_long_mode(struct emu_cpu *cpu)
{
	unsigned i;
	memset(cpu->gpr, 0, sizeof(cpu->gpr));
	cpu->rip = 0;
	cpu->rflags = 2;
	cpu->lf_op = LF_EAGER;
	cpu->ac_check = 0;
	for (i = 0; i < 6; i++) {
		cpu->seg[i].selector = 0x2b;
		cpu->seg[i].base = 0;
		cpu->seg[i].limit = 0xffffffff;
		cpu->seg[i].attr = 0xcf3; /* data RW accessed, S, DPL 3, P, D/B, G */
	}
	/* CPL 3, as a user process sees it (selectors as Linux uses them) */
	cpu->seg[EMU_CS].selector = 0x33;
	cpu->seg[EMU_CS].attr = 0xafb; /* code XR accessed, S, DPL 3, P, L, G */
	cpu->cr0 = 0x80040033;	       /* PG AM NE ET MP PE */
	cpu->cr2 = cpu->cr3 = cpu->cr8 = 0;
	cpu->cr4 = 0x620;  /* OSXMMEXCPT OSFXSR PAE */
	cpu->efer = 0x501; /* LMA LME SCE */
	cpu->kernel_gs_base = 0;
	memset(cpu->xmm, 0, sizeof(cpu->xmm));
	cpu->mxcsr = 0x1f80;
	memset(cpu->fpr, 0, sizeof(cpu->fpr));
	cpu->fcw = 0x37f;
	cpu->fsw = 0;
	cpu->ftop = 0;
	cpu->ftw = 0xffff;
	cpu->fop = 0;
	cpu->fip = cpu->fdp = 0;
	emu_flush_blocks(cpu);
}

/* x87 tag of an 80-bit value (SDM vol. 1 8.1.7): 0 valid, 1 zero, 2 special. */
static unsigned fp_tag_of(const uint8_t *r)
{
	uint64_t mant;
	unsigned exp;
	memcpy(&mant, r, 8);
	exp = (r[8] | (r[9] << 8)) & 0x7fff;
	if (exp == 0x7fff)
		return 2;
	if (exp == 0)
		return mant ? 2 : 1;
	return (mant >> 63) ? 0 : 2;
}

void emu_get_state(const struct emu_cpu *cpu, struct emu_state *st)
{
	unsigned i;
	memset(st, 0, sizeof(*st));
	memcpy(st->gpr, cpu->gpr, sizeof(st->gpr));
	st->rip = cpu->rip;
	st->rflags = emu_flags_get(cpu);
	memcpy(st->seg, cpu->seg, sizeof(st->seg));
	st->cr0 = cpu->cr0;
	st->cr2 = cpu->cr2;
	st->cr3 = cpu->cr3;
	st->cr4 = cpu->cr4;
	st->cr8 = cpu->cr8;
	st->efer = cpu->efer;
	st->fs_base = cpu->seg[EMU_FS].base;
	st->gs_base = cpu->seg[EMU_GS].base;
	st->kernel_gs_base = cpu->kernel_gs_base;
	memcpy(st->xmm, cpu->xmm, sizeof(st->xmm));
	st->mxcsr = cpu->mxcsr;
	st->fcw = cpu->fcw;
	st->fsw = (uint16_t)((cpu->fsw & ~0x3800) | ((cpu->ftop & 7) << 11));
	st->ftw_abridged = 0;
	for (i = 0; i < 8; i++) {
		if (((cpu->ftw >> (2 * i)) & 3) != 3)
			st->ftw_abridged |= (uint8_t)(1u << i);
		memcpy(st->st[i], cpu->fpr[(cpu->ftop + i) & 7], 10);
	}
	st->fop = cpu->fop;
	st->fip = cpu->fip;
	st->fdp = cpu->fdp;
}

void emu_set_state(struct emu_cpu *cpu, const struct emu_state *st)
{
	unsigned i;
	memcpy(cpu->gpr, st->gpr, sizeof(cpu->gpr));
	cpu->rip = st->rip;
	emu_flags_set(cpu, st->rflags);
	memcpy(cpu->seg, st->seg, sizeof(cpu->seg));
	cpu->seg[EMU_FS].base = st->fs_base;
	cpu->seg[EMU_GS].base = st->gs_base;
	cpu->cr0 = st->cr0;
	cpu->cr2 = st->cr2;
	cpu->cr3 = st->cr3;
	cpu->cr4 = st->cr4;
	cpu->cr8 = st->cr8;
	cpu->efer = st->efer;
	cpu->kernel_gs_base = st->kernel_gs_base;
	emu_update_ac(cpu);
	memcpy(cpu->xmm, st->xmm, sizeof(cpu->xmm));
	cpu->mxcsr = st->mxcsr;
	cpu->fcw = st->fcw;
	cpu->ftop = (st->fsw >> 11) & 7;
	cpu->fsw = st->fsw & ~0x3800;
	cpu->ftw = 0;
	for (i = 0; i < 8; i++) {
		uint8_t *r = cpu->fpr[(cpu->ftop + i) & 7];
		memset(r, 0, 16);
		memcpy(r, st->st[i], 10);
	}
	for (i = 0; i < 8; i++) {
		unsigned tag = (st->ftw_abridged >> i) & 1 ? fp_tag_of(cpu->fpr[i]) : 3;
		cpu->ftw |= (uint16_t)(tag << (2 * i));
	}
	cpu->fop = st->fop;
	cpu->fip = st->fip;
	cpu->fdp = st->fdp;
	/* The caller may have rewritten guest memory behind our back (tests do): start
	 * decoding afresh. */
	emu_flush_blocks(cpu);
}

int emu_map_flat(struct emu_cpu *cpu, uint64_t addr, void *host, uint64_t size, bool writable)
{
	struct emu_region *r;
	unsigned i;
	if (!size || !host || addr + size < addr)
		return -EINVAL;
	if (cpu->nregions >= EMU_MAX_REGIONS)
		return -ENOSPC;
	for (i = 0; i < cpu->nregions; i++) {
		struct emu_region *o = &cpu->regions[i];
		if (addr < o->base + o->size && o->base < addr + size)
			return -EEXIST;
	}
	r = &cpu->regions[cpu->nregions];
	r->code = calloc((size + 4095) >> 12, 1);
	if (!r->code)
		return -ENOMEM;
	r->base = addr;
	r->size = size;
	r->host = host;
	r->writable = writable;
	cpu->nregions++;
	if (!cpu->last_region)
		cpu->last_region = r;
	emu_flush_blocks(cpu);
	return 0;
}

/* --- CPUID policy --- */

bool emu_host_has(enum emu_host_feature f)
{
	uint32_t a = 1, b, c = 0, d;
	switch (f) {
	case EMU_HOST_RDRAND:
	case EMU_HOST_AES:
	case EMU_HOST_PCLMUL:
		asm("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
		return c & (f == EMU_HOST_AES	   ? 1u << 25
			    : f == EMU_HOST_PCLMUL ? 1u << 1
						   : 1u << 30);
	default:
		a = 7;
		asm("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
		return b & (f == EMU_HOST_RDSEED ? 1u << 18
			    : f == EMU_HOST_SHA	 ? 1u << 29
						 : 1u << 19);
	}
}

static void put_str(uint32_t *out, const char *s)
{
	memcpy(out, s, 4);
}

void emu_cpuid(const struct emu_cpu *cpu, uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
	static const char brand[48] = "Kestrel emulated x86-64-v2 CPU";
	(void)cpu;
	out[0] = out[1] = out[2] = out[3] = 0;
	switch (leaf) {
	case 0:
		out[0] = 7;
		put_str(&out[1], "Kest"); /* EBX EDX ECX: "KestrelEmu64" */
		put_str(&out[3], "relE");
		put_str(&out[2], "mu64");
		break;
	case 1:
		out[0] = 0x000206a7;  /* family 6 */
		out[1] = 0x00010800;  /* CLFLUSH line 64 bytes, 1 logical CPU, APIC id 0 */
		out[2] = (1u << 0) |  /* SSE3 */
			 (1u << 9) |  /* SSSE3 */
			 (1u << 13) | /* CMPXCHG16B */
			 (1u << 19) | (1u << 20) |			  /* SSE4.1, SSE4.2 */
			 (1u << 22) | (1u << 23) |			  /* MOVBE, POPCNT */
			 (emu_host_has(EMU_HOST_RDRAND) ? 1u << 30 : 0) | /* RDRAND */
			 (emu_host_has(EMU_HOST_AES) ? 1u << 25 : 0) |	  /* AES-NI */
			 (emu_host_has(EMU_HOST_PCLMUL) ? 1u << 1 : 0) |  /* PCLMULQDQ */
			 (1u << 31);					  /* hypervisor */
		out[3] = (1u << 0) | (1u << 3) | (1u << 4) |		  /* FPU PSE TSC */
			 (1u << 5) | (1u << 6) | (1u << 8) |		  /* MSR PAE CX8 */
			 (1u << 9) | (1u << 13) | (1u << 15) |		  /* APIC PGE CMOV */
			 (1u << 16) | (1u << 19) | (1u << 23) |		  /* PAT CLFSH MMX */
			 (1u << 24) | (1u << 25) | (1u << 26);		  /* FXSR SSE SSE2 */
		break;
	case 7:
		if (subleaf == 0)
			out[1] = (emu_host_has(EMU_HOST_RDSEED) ? 1u << 18 : 0) |
				 (emu_host_has(EMU_HOST_ADX) ? 1u << 19 : 0) |
				 (emu_host_has(EMU_HOST_SHA) ? 1u << 29 : 0);
		break;
	case 0x40000000:
		out[0] = 0x40000000;
		put_str(&out[1], "Kest");
		put_str(&out[2], "relE");
		put_str(&out[3], "mu64");
		break;
	case 0x80000000:
		out[0] = 0x80000008;
		break;
	case 0x80000001:
		/* LAHF/SAHF in 64-bit mode, LZCNT, misaligned SSE mode (MXCSR.MM) */
		out[2] = (1u << 0) | (1u << 5) | (1u << 7);
		out[3] =
		    (1u << 11) | (1u << 20) | (1u << 27) | (1u << 29); /* SYSCALL NX RDTSCP LM */
		break;
	case 0x80000002:
	case 0x80000003:
	case 0x80000004:
		memcpy(out, brand + 16 * (leaf - 0x80000002), 16);
		break;
	case 0x80000008:
		out[0] = 0x3028; /* 48-bit linear, 40-bit physical */
		break;
	default:
		break;
	}
}

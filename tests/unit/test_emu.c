/* Unit tests for accel/emu, the x86-64 interpreter: hand-written edge cases of the integer
 * instructions, faults (precise: state as before the instruction), decoder rules (#UD for
 * LOCK and VEX, #GP beyond 15 bytes), self-modifying code, stop conditions and CPUID.
 * Machine code is given as bytes with the assembly in a comment (nasm syntax).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "accel/emu/emu.h"

#define MEM_BASE 0x100000ull
#define MEM_SIZE 0x100000ull
#define CODE	 MEM_BASE
#define DATA	 (MEM_BASE + 0x80000)
#define STACK	 (MEM_BASE + 0xf0000)

#define FL_CF 0x1
#define FL_PF 0x4
#define FL_AF 0x10
#define FL_ZF 0x40
#define FL_SF 0x80
#define FL_DF 0x400
#define FL_OF 0x800

struct fix {
	struct emu_cpu *cpu;
	uint8_t *mem;
	struct emu_state st;
	struct emu_event ev;
	uint64_t retired;
};

static struct fix *fx_new(void)
{
	struct fix *f = calloc(1, sizeof(*f));
	f->cpu = emu_cpu_create();
	f->mem = calloc(1, MEM_SIZE);
	assert_non_null(f->cpu);
	assert_int_equal(emu_map_flat(f->cpu, MEM_BASE, f->mem, MEM_SIZE, true), 0);
	emu_get_state(f->cpu, &f->st);
	f->st.gpr[4] = STACK;
	return f;
}

static void fx_free(struct fix *f)
{
	emu_cpu_destroy(f->cpu);
	free(f->mem);
	free(f);
}

static uint8_t *at(struct fix *f, uint64_t addr)
{
	return f->mem + (addr - MEM_BASE);
}

/* Load code at CODE, run until its end; state in f->st afterwards. */
static enum emu_stop run(struct fix *f, const uint8_t *code, size_t n)
{
	enum emu_stop s;
	memcpy(at(f, CODE), code, n);
	f->st.rip = CODE;
	emu_set_state(f->cpu, &f->st);
	s = emu_run(f->cpu, 1000000, CODE + n, &f->ev, &f->retired);
	emu_get_state(f->cpu, &f->st);
	return s;
}

static void alu_flags(void **state)
{
	struct fix *f = fx_new();
	/* mov eax, 0x7fffffff; add eax, 1 */
	static const uint8_t c1[] = {0xb8, 0xff, 0xff, 0xff, 0x7f, 0x83, 0xc0, 0x01};
	assert_int_equal(run(f, c1, sizeof(c1)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[0], 0x80000000u);
	assert_int_equal(f->st.rflags & (FL_OF | FL_SF | FL_ZF | FL_CF | FL_AF | FL_PF),
			 FL_OF | FL_SF | FL_AF | FL_PF);
	assert_int_equal(f->retired, 2);
	/* xor eax, eax; sub eax, 1 (borrow) ; sbb ebx, ebx */
	static const uint8_t c2[] = {0x31, 0xc0, 0x83, 0xe8, 0x01, 0x19, 0xdb};
	f->st.gpr[3] = 5;
	assert_int_equal(run(f, c2, sizeof(c2)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[0], 0xffffffffu);
	assert_int_equal(f->st.gpr[3], 0xffffffffu);
	assert_true(f->st.rflags & FL_CF);
	/* loop: xor eax,eax; mov ecx,10; l: add eax,ecx; dec ecx; jnz l */
	static const uint8_t c3[] = {0x31, 0xc0, 0xb9, 0x0a, 0x00, 0x00, 0x00,
				     0x01, 0xc8, 0xff, 0xc9, 0x75, 0xfa};
	assert_int_equal(run(f, c3, sizeof(c3)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[0], 55);
	assert_int_equal(f->retired, 2 + 30);
	fx_free(f);
}

static void div_faults(void **state)
{
	struct fix *f = fx_new();
	/* mov rax, INT64_MIN; cqo; mov rcx, -1; idiv rcx */
	static const uint8_t c[] = {0x48, 0xb8, 0,    0,    0,	  0,	0,    0,
				    0,	  0x80, 0x48, 0x99, 0x48, 0xc7, 0xc1, 0xff,
				    0xff, 0xff, 0xff, 0x48, 0xf7, 0xf9};
	f->st.rflags = 0x202 | FL_CF;
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 0);
	assert_int_equal(f->st.rip, CODE + 19); /* at the IDIV, nothing of it done */
	assert_int_equal(f->st.gpr[0], 0x8000000000000000ull);
	assert_int_equal(f->st.gpr[2], ~0ull);
	assert_int_equal(f->retired, 3);
	/* div by zero: xor ecx, ecx; div ecx */
	static const uint8_t c2[] = {0x31, 0xc9, 0xf7, 0xf1};
	assert_int_equal(run(f, c2, sizeof(c2)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 0);
	/* 8-bit: mov ax, 0x8000; mov cl, 0xff; idiv cl -> quotient 128 overflows */
	static const uint8_t c3[] = {0x66, 0xb8, 0x00, 0x80, 0xb1, 0xff, 0xf6, 0xf9};
	assert_int_equal(run(f, c3, sizeof(c3)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 0);
	/* mov eax, -7; cdq; mov ecx, 2; idiv ecx -> -3 rem -1 */
	static const uint8_t c4[] = {0xb8, 0xf9, 0xff, 0xff, 0xff, 0x99, 0xb9,
				     0x02, 0x00, 0x00, 0x00, 0xf7, 0xf9};
	assert_int_equal(run(f, c4, sizeof(c4)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[0], 0xfffffffdu);
	assert_int_equal(f->st.gpr[2], 0xffffffffu);
	fx_free(f);
}

static void shifts(void **state)
{
	struct fix *f = fx_new();
	/* mov eax,1; shl eax,33 (count masked to 1); mov ebx,1; shl rbx,63;
	 * mov cl,9; mov dl,0x81; shl dl,cl (count 9 >= width 8) */
	static const uint8_t c[] = {0xb8, 0x01, 0x00, 0x00, 0x00, 0xc1, 0xe0, 0x21,
				    0xbb, 0x01, 0x00, 0x00, 0x00, 0x48, 0xc1, 0xe3,
				    0x3f, 0xb1, 0x09, 0xb2, 0x81, 0xd2, 0xe2};
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[0], 2);
	assert_int_equal(f->st.gpr[3], 0x8000000000000000ull);
	assert_int_equal(f->st.gpr[2] & 0xff, 0);
	assert_true(f->st.rflags & FL_ZF);
	/* count 0 leaves flags alone: stc; xor ecx,ecx; shl eax,cl */
	static const uint8_t c2[] = {0xf9, 0x31, 0xc9, 0xd3, 0xe0};
	assert_int_equal(run(f, c2, sizeof(c2)), EMU_STOP_RIP);
	assert_true(f->st.rflags & FL_ZF); /* from the xor */
	/* sar: mov eax,0x80000000; sar eax,31 -> -1, CF = 0 */
	static const uint8_t c3[] = {0xb8, 0x00, 0x00, 0x00, 0x80, 0xc1, 0xf8, 0x1f};
	assert_int_equal(run(f, c3, sizeof(c3)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[0], 0xffffffffu);
	assert_false(f->st.rflags & FL_CF);
	fx_free(f);
}

static void rotate_through_carry(void **state)
{
	struct fix *f = fx_new();
	/* stc; mov al,0x80; rcl al,1 -> al=1, CF=1, OF = MSB^CF = 1 */
	static const uint8_t c[] = {0xf9, 0xb0, 0x80, 0xd0, 0xd0};
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[0] & 0xff, 1);
	assert_true(f->st.rflags & FL_CF);
	assert_true(f->st.rflags & FL_OF);
	/* clc; mov bl,1; mov cl,9; rcr bl,cl: 9-bit rotate by 9 is the identity */
	static const uint8_t c2[] = {0xf8, 0xb3, 0x01, 0xb1, 0x09, 0xd2, 0xdb};
	assert_int_equal(run(f, c2, sizeof(c2)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[3] & 0xff, 1);
	assert_false(f->st.rflags & FL_CF);
	/* clc; mov bl,1; rcr bl,1 -> 0, CF=1 */
	static const uint8_t c3[] = {0xf8, 0xb3, 0x01, 0xd0, 0xdb};
	assert_int_equal(run(f, c3, sizeof(c3)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[3] & 0xff, 0);
	assert_true(f->st.rflags & FL_CF);
	/* stc; mov rax, 1; rcr rax, 1 -> 0x8000000000000000, CF=1 */
	static const uint8_t c4[] = {0xf9, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x48, 0xd1, 0xd8};
	assert_int_equal(run(f, c4, sizeof(c4)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[0], 0x8000000000000000ull);
	assert_true(f->st.rflags & FL_CF);
	fx_free(f);
}

static void bit_scan(void **state)
{
	struct fix *f = fx_new();
	/* mov ebx,0x1234; xor ecx,ecx; bsf rbx,rcx (zero: ZF, rbx kept); mov edx,0x80;
	 * bsr rax,rdx */
	static const uint8_t c[] = {0xbb, 0x34, 0x12, 0x00, 0x00, 0x31, 0xc9, 0x48, 0x0f, 0xbc,
				    0xd9, 0xba, 0x80, 0x00, 0x00, 0x00, 0x48, 0x0f, 0xbd, 0xc2};
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[3], 0x1234);
	assert_int_equal(f->st.gpr[0], 7);
	assert_false(f->st.rflags & FL_ZF);
	/* xor ecx,ecx; bsf rbx,rcx alone: ZF set */
	static const uint8_t c2[] = {0x31, 0xc9, 0xff, 0xc1, 0xff, 0xc9, 0x48, 0x0f, 0xbc, 0xd9};
	assert_int_equal(run(f, c2, sizeof(c2)), EMU_STOP_RIP);
	assert_true(f->st.rflags & FL_ZF);
	/* popcnt and lzcnt of 0 */
	/* xor ecx,ecx; popcnt eax,ecx; lzcnt edx,ecx */
	static const uint8_t c3[] = {0x31, 0xc9, 0xf3, 0x0f, 0xb8, 0xc1, 0xf3, 0x0f, 0xbd, 0xd1};
	assert_int_equal(run(f, c3, sizeof(c3)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[0], 0);
	assert_int_equal(f->st.gpr[2], 32);
	assert_true(f->st.rflags & FL_CF);
	/* Without BMI1 in CPUID, F3 0F BC is BSF, not TZCNT: mov ebx,0x1234; mov ecx,0x30;
	 * rep bsf ebx,ecx -> 4; xor ecx,ecx; rep bsf ebx,ecx -> ZF, ebx unchanged (TZCNT: 32) */
	static const uint8_t c4[] = {0xbb, 0x34, 0x12, 0x00, 0x00, 0xb9, 0x30, 0x00,
				     0x00, 0x00, 0xf3, 0x0f, 0xbc, 0xd9, 0x89, 0xd8,
				     0x31, 0xc9, 0xf3, 0x0f, 0xbc, 0xd9};
	assert_int_equal(run(f, c4, sizeof(c4)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[0], 4);
	assert_int_equal(f->st.gpr[3], 4);
	assert_true(f->st.rflags & FL_ZF);
	fx_free(f);
}

static void strings(void **state)
{
	struct fix *f = fx_new();
	unsigned i;
	/* std; mov esi,DATA+7; mov edi,DATA+0x100f; mov ecx,8; rep movsb; cld;
	 * mov edi,DATA+0x2000; mov rax,0x1122334455667788; mov ecx,3; rep stosq */
	static const uint8_t c[] = {
	    0xfd, 0xbe, 0x07, 0x00, 0x18, 0x00, 0xbf, 0x0f, 0x10, 0x18, 0x00, 0xb9, 0x08, 0x00,
	    0x00, 0x00, 0xf3, 0xa4, 0xfc, 0xbf, 0x00, 0x20, 0x18, 0x00, 0x48, 0xb8, 0x88, 0x77,
	    0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0xb9, 0x03, 0x00, 0x00, 0x00, 0xf3, 0x48, 0xab};
	for (i = 0; i < 8; i++)
		at(f, DATA)[i] = (uint8_t)(i + 1);
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_RIP);
	for (i = 0; i < 8; i++)
		assert_int_equal(at(f, DATA + 0x1008)[i], i + 1);
	assert_int_equal(f->st.gpr[6], DATA - 1);
	assert_int_equal(f->st.gpr[7], DATA + 0x2018);
	assert_int_equal(f->st.gpr[1], 0);
	for (i = 0; i < 3; i++)
		assert_memory_equal(at(f, DATA + 0x2000 + 8 * i),
				    "\x88\x77\x66\x55\x44\x33\x22\x11", 8);
	assert_int_equal(f->retired, 10);
	/* repne scasb: strlen. mov edi,DATA+0x3000; xor eax,eax; mov rcx,-1; repne scasb */
	static const uint8_t c2[] = {0xbf, 0x00, 0x30, 0x18, 0x00, 0x31, 0xc0, 0x48,
				     0xc7, 0xc1, 0xff, 0xff, 0xff, 0xff, 0xf2, 0xae};
	memcpy(at(f, DATA + 0x3000), "hello", 6);
	assert_int_equal(run(f, c2, sizeof(c2)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[1], (uint64_t)-7);
	assert_int_equal(f->st.gpr[7], DATA + 0x3006);
	/* a fault in the middle of rep movsb: registers show the progress made */
	/* mov esi, DATA; mov rdi, MEM_BASE+MEM_SIZE-2; mov ecx, 5; rep movsb */
	static const uint8_t c3[] = {0xbe, 0x00, 0x00, 0x18, 0x00, 0xbf, 0xfe, 0xff, 0x1f,
				     0x00, 0xb9, 0x05, 0x00, 0x00, 0x00, 0xf3, 0xa4};
	assert_int_equal(run(f, c3, sizeof(c3)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 14);
	assert_int_equal(f->ev.fault_addr, MEM_BASE + MEM_SIZE);
	assert_int_equal(f->st.gpr[1], 3);
	assert_int_equal(f->st.rip, CODE + 15);
	fx_free(f);
}

static void cmpxchg16b_align(void **state)
{
	struct fix *f = fx_new();
	/* mov edi, DATA+8; lock cmpxchg16b [rdi] */
	static const uint8_t c[] = {0xbf, 0x08, 0x00, 0x18, 0x00, 0xf0, 0x48, 0x0f, 0xc7, 0x0f};
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 13);
	assert_int_equal(f->st.rip, CODE + 5);
	/* aligned: equal compare stores rcx:rbx */
	static const uint8_t c2[] = {0xbf, 0x10, 0x00, 0x18, 0x00, 0xf0, 0x48, 0x0f, 0xc7, 0x0f};
	f->st.gpr[0] = 1;
	f->st.gpr[2] = 2;
	f->st.gpr[3] = 3;
	f->st.gpr[1] = 4;
	memcpy(at(f, DATA + 0x10), "\x01\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0", 16);
	assert_int_equal(run(f, c2, sizeof(c2)), EMU_STOP_RIP);
	assert_true(f->st.rflags & FL_ZF);
	assert_int_equal(at(f, DATA + 0x10)[0], 3);
	assert_int_equal(at(f, DATA + 0x18)[0], 4);
	fx_free(f);
}

static void decoder_rules(void **state)
{
	struct fix *f = fx_new();
	/* lock add eax, ebx: LOCK on a register form */
	static const uint8_t c1[] = {0xf0, 0x01, 0xd8};
	assert_int_equal(run(f, c1, sizeof(c1)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 6);
	/* vaddps ymm0, ymm1, ymm2: VEX without AVX */
	static const uint8_t c2[] = {0xc5, 0xf4, 0x58, 0xc2};
	assert_int_equal(run(f, c2, sizeof(c2)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 6);
	/* 14 x 66 + 90 = 15 bytes: fine; 15 x 66 + 90 = 16 bytes: #GP */
	uint8_t c3[16];
	memset(c3, 0x66, sizeof(c3));
	c3[14] = 0x90;
	assert_int_equal(run(f, c3, 15), EMU_STOP_RIP);
	c3[14] = 0x66;
	c3[15] = 0x90;
	assert_int_equal(run(f, c3, 16), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 13);
	/* ud2 */
	static const uint8_t c4[] = {0x0f, 0x0b};
	assert_int_equal(run(f, c4, sizeof(c4)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 6);
	/* hlt at CPL 3: #GP */
	static const uint8_t c5[] = {0xf4};
	assert_int_equal(run(f, c5, sizeof(c5)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 13);
	/* nopw 0x0(%rax,%rax,1) with prefixes: the long NOPs */
	static const uint8_t c6[] = {0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00,
				     0x00, 0x00, 0x0f, 0x1f, 0x40, 0x00, 0xf3, 0x90};
	assert_int_equal(run(f, c6, sizeof(c6)), EMU_STOP_RIP);
	assert_int_equal(f->retired, 3);
	/* lock rdrand ebp: LOCK is not allowed on RDRAND (found by the decoder fuzz) */
	static const uint8_t c7[] = {0xf0, 0x0f, 0xc7, 0xf5};
	assert_int_equal(run(f, c7, sizeof(c7)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 6);
	fx_free(f);
}

static void precise_faults(void **state)
{
	struct fix *f = fx_new();
	/* mov esp, 0x10; push rax: #PF, RSP unchanged */
	static const uint8_t c[] = {0xbc, 0x10, 0x00, 0x00, 0x00, 0x50};
	f->st.rflags = 0x202;
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 14);
	assert_int_equal(f->ev.fault_addr, 8);
	assert_int_equal(f->ev.error_code, 6); /* write, user */
	assert_int_equal(f->st.gpr[4], 0x10);
	assert_int_equal(f->st.rip, CODE + 5);
	/* add [rbx], eax with rbx non-canonical: #GP(0), flags untouched */
	static const uint8_t c2[] = {0x01, 0x03};
	f->st.gpr[3] = 0x0000800000000000ull;
	f->st.rflags = 0x202 | FL_CF | FL_ZF;
	assert_int_equal(run(f, c2, sizeof(c2)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 13);
	assert_int_equal(f->st.rflags & (FL_CF | FL_ZF), FL_CF | FL_ZF);
	/* jump to an unmapped address: fetch fault there */
	static const uint8_t c3[] = {0xff, 0xe3}; /* jmp rbx */
	f->st.gpr[3] = 0x5000;
	assert_int_equal(run(f, c3, sizeof(c3)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 14);
	assert_int_equal(f->ev.fault_addr, 0x5000);
	assert_int_equal(f->st.rip, 0x5000);
	fx_free(f);
}

static void self_modifying(void **state)
{
	struct fix *f = fx_new();
	/* lea rdi,[rel target]; mov byte [rdi],0x90; target: int3; mov eax,7 */
	static const uint8_t c[] = {0x48, 0x8d, 0x3d, 0x03, 0x00, 0x00, 0x00, 0xc6,
				    0x07, 0x90, 0xcc, 0xb8, 0x07, 0x00, 0x00, 0x00};
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[0], 7);
	assert_int_equal(f->retired, 4);
	fx_free(f);
}

static void stop_conditions(void **state)
{
	struct fix *f = fx_new();
	/* 5 x inc eax */
	static const uint8_t c[] = {0xff, 0xc0, 0xff, 0xc0, 0xff, 0xc0, 0xff, 0xc0, 0xff, 0xc0};
	memcpy(at(f, CODE), c, sizeof(c));
	f->st.rip = CODE;
	emu_set_state(f->cpu, &f->st);
	assert_int_equal(emu_run(f->cpu, 3, UINT64_MAX, &f->ev, &f->retired), EMU_STOP_INSN_LIMIT);
	assert_int_equal(f->retired, 3);
	emu_get_state(f->cpu, &f->st);
	assert_int_equal(f->st.rip, CODE + 6);
	assert_int_equal(f->st.gpr[0], 3);
	assert_int_equal(emu_run(f->cpu, 100, CODE + 8, &f->ev, &f->retired), EMU_STOP_RIP);
	assert_int_equal(f->retired, 1);
	emu_get_state(f->cpu, &f->st);
	assert_int_equal(f->st.gpr[0], 4);
	/* HLT at CPL 0 */
	static const uint8_t h[] = {0xf4};
	f->st.seg[EMU_CS].selector = 0x08;
	assert_int_equal(run(f, h, sizeof(h)), EMU_STOP_HLT);
	assert_int_equal(f->st.rip, CODE + 1);
	/* in al, 0x60 at CPL 0: stops for I/O before the instruction */
	static const uint8_t io[] = {0x90, 0xe4, 0x60};
	assert_int_equal(run(f, io, sizeof(io)), EMU_STOP_IO);
	assert_int_equal(f->st.rip, CODE + 1);
	assert_int_equal(f->retired, 1);
	fx_free(f);
}

static void cpuid_policy(void **state)
{
	struct fix *f = fx_new();
	uint32_t r[4];
	emu_cpuid(f->cpu, 1, 0, r);
	assert_true(r[2] & (1u << 20));	 /* SSE4.2 */
	assert_true(r[2] & (1u << 23));	 /* POPCNT */
	assert_true(r[2] & (1u << 13));	 /* CX16 */
	assert_true(r[2] & (1u << 31));	 /* hypervisor */
	assert_false(r[2] & (1u << 28)); /* AVX */
	assert_false(r[2] & (1u << 26)); /* XSAVE */
	assert_true(r[3] & (1u << 26));	 /* SSE2 */
	/* PCLMULQDQ runs on the host's instruction: advertised exactly when the host has it,
	 * and #UD when it is not advertised */
	assert_int_equal(!!(r[2] & (1u << 1)), !!__builtin_cpu_supports("pclmul"));
	if (!(r[2] & (1u << 1))) {
		/* pclmulqdq xmm0, xmm1, 0 */
		static const uint8_t pcl[] = {0x66, 0x0f, 0x3a, 0x44, 0xc1, 0x00};
		assert_int_equal(run(f, pcl, sizeof(pcl)), EMU_STOP_EXCEPTION);
		assert_int_equal(f->ev.vector, 6);
	}
	emu_cpuid(f->cpu, 7, 0, r);
	assert_int_equal(r[1] & ((1u << 5) | (1u << 3) | (1u << 8)), 0); /* no AVX2, BMI1/2 */
	/* cpuid instruction: mov eax, 0x80000001; cpuid */
	static const uint8_t c[] = {0xb8, 0x01, 0x00, 0x00, 0x80, 0x0f, 0xa2};
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_RIP);
	assert_true(f->st.gpr[EMU_RDX] & (1u << 29)); /* LM */
	fx_free(f);
}

static void put_f32(uint8_t *p, float v)
{
	memcpy(p, &v, 4);
}

static void sse_basic(void **state)
{
	struct fix *f = fx_new();
	uint8_t *d = at(f, DATA);
	uint32_t w;
	/* movaps xmm0,[rdi]; addps xmm0,[rdi+16]; pshufd xmm1,xmm0,0x1b; pmovmskb eax,xmm1;
	 * cvttss2si ecx,xmm0 */
	static const uint8_t c[] = {0x0f, 0x28, 0x07, 0x0f, 0x58, 0x47, 0x10, 0x66, 0x0f, 0x70,
				    0xc8, 0x1b, 0x66, 0x0f, 0xd7, 0xc1, 0xf3, 0x0f, 0x2c, 0xc8};
	put_f32(d, 1);
	put_f32(d + 4, 2);
	put_f32(d + 8, 3);
	put_f32(d + 12, 4);
	put_f32(d + 16, 0.5f);
	put_f32(d + 20, 0.5f);
	put_f32(d + 24, 0.5f);
	put_f32(d + 28, -10);
	f->st.gpr[EMU_RDI] = DATA;
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_RIP);
	memcpy(&w, f->st.xmm[1], 4);
	assert_int_equal(w, 0xc0c00000u);	      /* -6.0f moved to lane 0 */
	assert_int_equal(f->st.gpr[EMU_RAX], 0x400c); /* sign bits of bytes 2, 3 and 14 */
	assert_int_equal(f->st.gpr[EMU_RCX], 1);
	/* misaligned movaps: #GP(0) */
	f->st.gpr[EMU_RDI] = DATA + 8;
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 13);
	assert_int_equal(f->st.rip, CODE);
	fx_free(f);
}

static void mxcsr_rounding_and_xm(void **state)
{
	struct fix *f = fx_new();
	uint8_t *d = at(f, DATA);
	uint32_t v = 0x7f80, r;
	/* ldmxcsr [rdi+32]; movss xmm2,[rdi+36]; divss xmm2,[rdi+40]; stmxcsr [rdi+44] */
	static const uint8_t c[] = {0x0f, 0xae, 0x57, 0x20, 0xf3, 0x0f, 0x10, 0x57, 0x24,
				    0xf3, 0x0f, 0x5e, 0x57, 0x28, 0x0f, 0xae, 0x5f, 0x2c};
	memcpy(d + 32, &v, 4); /* round toward zero */
	put_f32(d + 36, 1);
	put_f32(d + 40, 3);
	f->st.gpr[EMU_RDI] = DATA;
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_RIP);
	memcpy(&r, f->st.xmm[2], 4);
	assert_int_equal(r, 0x3eaaaaaau); /* nearest-even would give ...ab */
	memcpy(&r, d + 44, 4);
	assert_int_equal(r, 0x7fa0u); /* PE raised */
	/* unmasked divide-by-zero: #XM, destination unchanged, ZE set */
	/* ldmxcsr [rdi+32]; divss xmm2,[rdi+40] */
	static const uint8_t c2[] = {0x0f, 0xae, 0x57, 0x20, 0xf3, 0x0f, 0x5e, 0x57, 0x28};
	v = 0x1d80;
	memcpy(d + 32, &v, 4);
	put_f32(d + 40, 0);
	put_f32(f->st.xmm[2], 1);
	assert_int_equal(run(f, c2, sizeof(c2)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 19);
	assert_int_equal(f->st.rip, CODE + 4);
	assert_int_equal(f->st.mxcsr, 0x1d84);
	memcpy(&r, f->st.xmm[2], 4);
	assert_int_equal(r, 0x3f800000u);
	fx_free(f);
}

/* One SSE instruction on xmm0 (destination) and xmm1 under mxcsr: returns the MXCSR after
 * it and sets *vector to the exception it raised (-1 if none). An instruction that faults
 * leaves xmm0 as it was. */
static uint32_t sse_one(struct fix *f, const uint8_t *code, size_t n, uint32_t mxcsr,
			const void *x0, const void *x1, int *vector)
{
	uint8_t before[16];
	f->st.mxcsr = mxcsr;
	memcpy(f->st.xmm[0], x0, 16);
	memcpy(f->st.xmm[1], x1, 16);
	memcpy(before, x0, 16);
	*vector = -1;
	if (run(f, code, n) == EMU_STOP_EXCEPTION) {
		*vector = f->ev.vector;
		assert_int_equal(f->st.rip, CODE);
		assert_memory_equal(f->st.xmm[0], before, 16);
	}
	return f->st.mxcsr;
}

static void f32x4(uint32_t out[4], uint32_t a, uint32_t b, uint32_t c, uint32_t d)
{
	out[0] = a;
	out[1] = b;
	out[2] = c;
	out[3] = d;
}

/* Overflow and underflow with OM or UM clear (SDM vol. 1 4.9.1.4-6, 11.5.2.4-5): the flags
 * follow the result rounded with unbounded exponent, r. Overflow: OE, and PE only if r is
 * inexact. Underflow: UE even when r is exact, PE only if it is not (whatever PM says, and
 * FTZ does not apply). Masked, PE comes with every overflow and UE/PE with a
 * denormalisation loss. Values and flags as an AMD Zen host gives them. */
static void sse_unmasked_overflow_underflow(void **state)
{
	struct fix *f = fx_new();
	static const uint8_t mulss[] = {0xf3, 0x0f, 0x59, 0xc1};    /* mulss xmm0, xmm1 */
	static const uint8_t mulps[] = {0x0f, 0x59, 0xc1};	    /* mulps xmm0, xmm1 */
	static const uint8_t cvtsd2ss[] = {0xf2, 0x0f, 0x5a, 0xc1}; /* cvtsd2ss xmm0, xmm1 */
	static const uint8_t haddps[] = {0xf2, 0x0f, 0x7c, 0xc1};   /* haddps xmm0, xmm1 */
	static const uint8_t divsd[] = {0xf2, 0x0f, 0x5e, 0xc1};    /* divsd xmm0, xmm1 */
	static const uint8_t dppd[] = {0x66, 0x0f, 0x3a, 0x41, 0xc1, 0x31}; /* dppd x0,x1,0x31 */
	uint32_t a[4], b[4];
	uint64_t p[2], q[2];
	int vec;

	/* 2^127 * 2^127 = 2^254: exact, so OE alone; masked: OE|PE and +inf */
	f32x4(a, 0x7f000000, 0, 0, 0);
	f32x4(b, 0x7f000000, 0, 0, 0);
	assert_int_equal(sse_one(f, mulss, sizeof(mulss), 0x1b80, a, b, &vec), 0x1b88);
	assert_int_equal(vec, 19);
	assert_int_equal(sse_one(f, mulss, sizeof(mulss), 0x1f80, a, b, &vec), 0x1fa8);
	assert_int_equal(vec, -1);
	assert_memory_equal(f->st.xmm[0], (uint32_t[]){0x7f800000}, 4);
	/* (1 + 2^-23)^2 * 2^254 needs 47 bits: OE|PE */
	f32x4(a, 0x7f000001, 0, 0, 0);
	f32x4(b, 0x7f000001, 0, 0, 0);
	assert_int_equal(sse_one(f, mulss, sizeof(mulss), 0x1b80, a, b, &vec), 0x1ba8);
	assert_int_equal(vec, 19);
	/* 2^-100 * 2^-40: exact and tiny. UM clear: UE alone (also with FTZ, also with PM
	 * clear); masked: no flag at all, the denormal 2^-140 is stored */
	f32x4(a, 0x0d800000, 0, 0, 0);
	f32x4(b, 0x2b800000, 0, 0, 0);
	assert_int_equal(sse_one(f, mulss, sizeof(mulss), 0x1780, a, b, &vec), 0x1790);
	assert_int_equal(vec, 19);
	assert_int_equal(sse_one(f, mulss, sizeof(mulss), 0x9780, a, b, &vec), 0x9790);
	assert_int_equal(sse_one(f, mulss, sizeof(mulss), 0x0380, a, b, &vec), 0x0390);
	assert_int_equal(vec, 19);
	assert_int_equal(sse_one(f, mulss, sizeof(mulss), 0x1f80, a, b, &vec), 0x1f80);
	assert_int_equal(vec, -1);
	assert_memory_equal(f->st.xmm[0], (uint32_t[]){0x00000200}, 4);
	/* (1 + 2^-23) * 2^-140: exact with 24 bits, not as a denormal. UM clear: UE alone;
	 * masked: UE|PE (denormalisation loss) */
	f32x4(a, 0x0d800001, 0, 0, 0);
	assert_int_equal(sse_one(f, mulss, sizeof(mulss), 0x1780, a, b, &vec), 0x1790);
	assert_int_equal(sse_one(f, mulss, sizeof(mulss), 0x0f80, a, b, &vec), 0x0fb0);
	assert_int_equal(vec, 19); /* PE unmasked */
	/* packed: the flags are the OR over the elements; an exact overflow in element 0 and
	 * an inexact normal product in element 2 give OE|PE, and nothing is stored */
	f32x4(a, 0x7f000000, 0x3f800000, 0x3f800001, 0);
	f32x4(b, 0x40000000, 0x3f800000, 0x3f800001, 0);
	assert_int_equal(sse_one(f, mulps, sizeof(mulps), 0x1b80, a, b, &vec), 0x1ba8);
	assert_int_equal(vec, 19);
	f32x4(a, 0x7f000000, 0x3f800000, 0x3f800000, 0);
	assert_int_equal(sse_one(f, mulps, sizeof(mulps), 0x1b80, a, b, &vec), 0x1b88);
	/* HADDPS: 2^-130 + 2^-140 is exact and tiny: UE (and DE for the denormal operands) */
	f32x4(a, 0x00080000, 0x00000200, 0, 0);
	f32x4(b, 0, 0, 0, 0);
	assert_int_equal(sse_one(f, haddps, sizeof(haddps), 0x1780, a, b, &vec), 0x1792);
	assert_int_equal(vec, 19);
	/* CVTSD2SS: 2^128 is an exact overflow, DBL_MAX an inexact one, under any rounding */
	p[0] = 0;
	p[1] = 0;
	q[0] = 0x47f0000000000000ull;
	q[1] = 0;
	assert_int_equal(sse_one(f, cvtsd2ss, sizeof(cvtsd2ss), 0x5b80, p, q, &vec), 0x5b88);
	q[0] = 0x7fefffffffffffffull;
	assert_int_equal(sse_one(f, cvtsd2ss, sizeof(cvtsd2ss), 0x5b80, p, q, &vec), 0x5ba8);
	/* a tiny double quotient that is exact: 2^-1000 / 2^60 */
	p[0] = 0x0170000000000000ull;
	q[0] = 0x43b0000000000000ull;
	assert_int_equal(sse_one(f, divsd, sizeof(divsd), 0x1780, p, q, &vec), 0x1790);
	assert_int_equal(sse_one(f, divsd, sizeof(divsd), 0x1f80, p, q, &vec), 0x1f80);
	/* DPPD runs in stages (multiplications, then the addition), each with its own flags:
	 * (1 + 2^-52) * 2^-1022 * 2^-24 underflows inexactly (masked: UE|PE) and the addition
	 * of that denormal to 1.0 raises DE and PE. DM clear: the flags of the products and the
	 * addition's DE; PM clear: it stops after the products; UM clear: UE alone (the product
	 * is exact with 53 bits) */
	p[0] = 0x0010000000000001ull;
	p[1] = 0x3ff0000000000000ull;
	q[0] = 0x3e70000000000000ull;
	q[1] = 0x3ff0000000000000ull;
	assert_int_equal(sse_one(f, dppd, sizeof(dppd), 0x1f80, p, q, &vec), 0x1fb2);
	assert_int_equal(vec, -1);
	assert_int_equal(sse_one(f, dppd, sizeof(dppd), 0x1e80, p, q, &vec), 0x1eb2);
	assert_int_equal(vec, 19);
	assert_int_equal(sse_one(f, dppd, sizeof(dppd), 0x0f80, p, q, &vec), 0x0fb0);
	assert_int_equal(vec, 19);
	assert_int_equal(sse_one(f, dppd, sizeof(dppd), 0x1780, p, q, &vec), 0x1790);
	assert_int_equal(vec, 19);
	/* without CR4.OSXMMEXCPT the unmasked exception is #UD */
	f32x4(a, 0x7f000000, 0, 0, 0);
	f32x4(b, 0x7f000000, 0, 0, 0);
	f->st.cr4 &= ~(1ull << 10);
	assert_int_equal(sse_one(f, mulss, sizeof(mulss), 0x1b80, a, b, &vec), 0x1b88);
	assert_int_equal(vec, 6);
	fx_free(f);
}

static void x87_extended(void **state)
{
	struct fix *f = fx_new();
	uint8_t *d = at(f, DATA);
	/* fld tword [rdi]; fld tword [rdi+16]; faddp st1,st0; fstp tword [rdi+32]; fld1; fldz;
	 * fdivp st1,st0; fnstsw ax; fstp st0; fwait */
	static const uint8_t c[] = {0xdb, 0x2f, 0xdb, 0x6f, 0x10, 0xde, 0xc1,
				    0xdb, 0x7f, 0x20, 0xd9, 0xe8, 0xd9, 0xee,
				    0xde, 0xf9, 0xdf, 0xe0, 0xdd, 0xd8, 0x9b};
	/* 1 + 2^-62 and 1.0: the sum 2 + 2^-62 needs the 64-bit significand */
	static const uint8_t a[10] = {2, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f};
	static const uint8_t b[10] = {0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f};
	static const uint8_t sum[10] = {1, 0, 0, 0, 0, 0, 0, 0x80, 0x00, 0x40};
	memcpy(d, a, 10);
	memcpy(d + 16, b, 10);
	f->st.gpr[EMU_RDI] = DATA;
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_RIP);
	assert_memory_equal(d + 32, sum, 10);
	assert_true(f->st.gpr[EMU_RAX] & 4); /* ZE from 1/0, masked */
	assert_int_equal((f->st.fsw >> 11) & 7, 0);
	assert_int_equal(f->st.ftw_abridged, 0);
	/* unmasked zero-divide: pending, #MF at the next waiting instruction (fwait) */
	f->st.fcw = 0x37b;
	f->st.fsw = 0;
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 16);
	assert_int_equal(f->st.rip, CODE + 18); /* fstp st0 is a waiting instruction */
	fx_free(f);
}

static void fxsave_image(void **state)
{
	struct fix *f = fx_new();
	uint8_t *d = at(f, DATA);
	uint32_t v;
	uint16_t w;
	/* fxsave [rdi]; fxrstor [rdi+512] */
	static const uint8_t c[] = {0x0f, 0xae, 0x07, 0x0f, 0xae, 0x8f, 0x00, 0x02, 0x00, 0x00};
	f->st.gpr[EMU_RDI] = DATA;
	memset(f->st.xmm[5], 0xa5, 16);
	v = 0x40000; /* reserved MXCSR bit in the image to restore */
	memcpy(d + 512 + 24, &v, 4);
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 13);
	assert_int_equal(f->st.rip, CODE + 3);
	memcpy(&w, d, 2);
	assert_int_equal(w, 0x37f);
	memcpy(&v, d + 24, 4);
	assert_int_equal(v, 0x1f80);
	memcpy(&v, d + 28, 4);
	assert_int_equal(v, 0x2ffff);
	assert_int_equal(d[160 + 5 * 16], 0xa5);
	/* misaligned: #GP */
	f->st.gpr[EMU_RDI] = DATA + 8;
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_EXCEPTION);
	assert_int_equal(f->ev.vector, 13);
	assert_int_equal(f->st.rip, CODE);
	fx_free(f);
}

static void sse42_strings(void **state)
{
	struct fix *f = fx_new();
	uint8_t *d = at(f, DATA);
	/* movdqu xmm1,[rdi]; pcmpistri xmm1,[rdi+16],0x0c (equal ordered: substring search) */
	static const uint8_t c[] = {0xf3, 0x0f, 0x6f, 0x0f, 0x66, 0x0f,
				    0x3a, 0x63, 0x4f, 0x10, 0x0c};
	memset(d, 0, 32);
	memcpy(d, "world", 5);
	memcpy(d + 16, "hello world", 11);
	f->st.gpr[EMU_RDI] = DATA;
	assert_int_equal(run(f, c, sizeof(c)), EMU_STOP_RIP);
	assert_int_equal(f->st.gpr[EMU_RCX], 6);
	assert_true(f->st.rflags & FL_CF);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(alu_flags),	cmocka_unit_test(div_faults),
	    cmocka_unit_test(shifts),		cmocka_unit_test(rotate_through_carry),
	    cmocka_unit_test(bit_scan),		cmocka_unit_test(strings),
	    cmocka_unit_test(cmpxchg16b_align), cmocka_unit_test(decoder_rules),
	    cmocka_unit_test(precise_faults),	cmocka_unit_test(self_modifying),
	    cmocka_unit_test(stop_conditions),	cmocka_unit_test(cpuid_policy),
	    cmocka_unit_test(sse_basic),	cmocka_unit_test(mxcsr_rounding_and_xm),
	    cmocka_unit_test(x87_extended),	cmocka_unit_test(fxsave_image),
	    cmocka_unit_test(sse42_strings),	cmocka_unit_test(sse_unmasked_overflow_underflow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

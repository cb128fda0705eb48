/* Differential test harness: generator internals shared by gen*.c (encoder, operand and
 * value helpers, class table). See gen.c for the rules every generator follows.
 */
#ifndef KESTREL_TESTS_EMU_GEN_H
#define KESTREL_TESTS_EMU_GEN_H

#include "emudiff.h"

#define BASE_RIP (-2)

struct opnd {
	bool mem;
	int reg; /* register operand */
	/* memory operand */
	int base, index, scale; /* base: -1 none, BASE_RIP; index: -1 none */
	int32_t disp;
	int dispsz;
	bool addr32;
	uint64_t ea;
};

struct enc {
	const char *name;
	uint8_t pfx[4];
	int npfx;
	bool w, rex, norex;
	int map; /* 0: one-byte, 1: 0F, 2: 0F 38, 3: 0F 3A */
	uint8_t op;
	int opreg; /* +r register in the opcode, or -1 */
	bool has_modrm;
	int reg; /* ModRM.reg: register or /digit */
	struct opnd rm;
	int immsz;
	uint64_t imm;
};

struct gen {
	struct tcase *c;
	uint64_t *rng;
	uint32_t len;	  /* bytes emitted */
	bool first;	  /* generating the first instruction */
	uint16_t written; /* GPRs written so far */
	int pbase, pindex;
	bool rbp_bad; /* RBP no longer points into the stack area */
	int stack_depth;
	int aux;   /* class-private */
	bool done; /* an undefined value was produced: nothing may follow that could read it */
};

struct gen_class {
	const char *name;
	const char *feature; /* host CPUID feature needed, or NULL */
	int max_insns;	     /* per sequence (default 3) */
	void (*init)(struct gen *g);
	int (*gen)(struct gen *g);    /* one instruction (or a small group); 0 or -1 to retry */
	void (*whole)(struct gen *g); /* builds the whole case instead of gen */
};

extern const struct gen_class gen_classes[];
extern const int gen_nclasses;

uint64_t rnd(struct gen *g, uint64_t n);
bool chance(struct gen *g, int percent);
uint64_t width_mask(int bits);
uint64_t edge_value(struct gen *g, int bits);
bool reg_writable(struct gen *g, int r);
int pick_dst(struct gen *g);
int pick_src(struct gen *g);
uint64_t reg_initial(struct gen *g, int r, int bits, bool high8);
uint64_t mem_initial(struct gen *g, const struct opnd *m, int bytes);
void mem_set_initial(struct gen *g, const struct opnd *m, uint64_t v, int bytes);
void mark_written(struct gen *g, int r);
void pick_mem(struct gen *g, struct opnd *o, int size, int align, bool norex);
void pick_rm(struct gen *g, struct opnd *o, bool dst, int size, int align, int mem_pct);
int emit(struct gen *g, const struct enc *e);
int emit_raw(struct gen *g, const uint8_t *b, int n, const char *name);
void enc_init(struct enc *e, const char *name);
void enc_pfx(struct enc *e, uint8_t p);
void enc_osize(struct enc *e, int bits);
void mark_mem_undef(struct gen *g, const struct opnd *m, int len);
uint32_t f32_value(struct gen *g);
uint64_t f64_value(struct gen *g);
void xmm_random(struct gen *g, uint8_t *x);
void mxcsr_random(struct gen *g, bool unmask_some);
void f80_value(struct gen *g, uint8_t *p);
void x87_random(struct gen *g, bool masked);

/* Class generators outside gen_int.c */
int gen_sse(struct gen *g);
void sse_init(struct gen *g);
int gen_x87(struct gen *g);
void x87_init(struct gen *g);
int gen_fxsave(struct gen *g);
void fuzz_whole(struct gen *g);

/* fuzz.c: the CPUID feature an encoding of the decoder fuzz belongs to, so the comparison can
 * follow the emulated CPU's CPUID policy (an extension it does not advertise must #UD) */
enum {
	FF_SSSE3,
	FF_SSE41,
	FF_SSE42,
	FF_PCLMUL,
	FF_VMX,
	FF_CX16,
	FF_MOVBE,
	FF_POPCNT,
	FF_AES,
	FF_RDRAND,
	FF_CX8,
	FF_INVPCID,
	FF_RDSEED,
	FF_ADX,
	FF_SHA,
	FF_CET_SS,
	FF_GFNI,
	FF_RDPID,
	FF_KL,
	FF_MOVDIRI,
	FF_MOVDIR64B,
	FF_ENQCMD,
	FF_UINTR,
	FF_RAO_INT,
	FF_HRESET,
	FF_XSAVEC,
	FF_XSAVES,
	FF_3DNOW,
	FF_SSE4A,
	FF_COUNT
};

struct fuzz_feat {
	const char *name;
	uint32_t leaf, subleaf;
	uint8_t reg; /* 0 EAX, 1 EBX, 2 ECX, 3 EDX */
	uint8_t bit;
};

extern const struct fuzz_feat fuzz_feats[FF_COUNT];
/* FF_* of the fuzz case's instruction, or -1 for the baseline and the non-0F maps */
int fuzz_feature(const struct tcase *c);
void smc_whole(struct gen *g);

#endif

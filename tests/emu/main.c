/* Differential test harness for the x86-64 emulator (issue 7): driver.
 *
 * For each instruction class, generates cases from a fixed seed, runs them natively
 * (native.c) and in accel/emu (emurun.c), compares GPRs, RIP, RFLAGS (less the flags the SDM
 * leaves undefined), x87 and SSE state, MXCSR, the data area and the exception vector, and
 * prints one TAP line per class. Without options it runs the fixed-seed subset that
 * `make check` uses; KESTREL_LONG=1 (make check-long) runs 100 times more.
 *
 *   test_emudiff [--seed S] [--count N] [--class NAME] [--selftest] [--case SEED:N] [-v]
 *
 * --selftest runs every case natively twice and checks that the host is deterministic
 * (no emulator needed); --case re-runs one case verbosely (the reproducer in a failure line).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "emudiff.h"
#include "gen.h"

#define DEFAULT_SEED 0x4b6573747265ULL
#define BATCH	     512
#define FUZZ_CLASS   (gen_nclasses - 1)

struct opts {
	uint64_t seed;
	uint64_t count; /* cases per class */
	const char *only;
	bool selftest;
	bool verbose;
	bool one_case;
	uint64_t case_num;
};

static const char *const gpr_names[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
					  "r8",	 "r9",	"r10", "r11", "r12", "r13", "r14", "r15"};

struct diff {
	char *buf;
	size_t len, used;
	int n;
	int max_items;
};

static void diff_add(struct diff *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void diff_add(struct diff *d, const char *fmt, ...)
{
	va_list ap;

	d->n++;
	if (d->n > d->max_items || d->used + 2 >= d->len)
		return;
	if (d->used)
		d->used += (size_t)snprintf(d->buf + d->used, d->len - d->used, "; ");
	if (d->used >= d->len)
		return;
	va_start(ap, fmt);
	d->used += (size_t)vsnprintf(d->buf + d->used, d->len - d->used, fmt, ap);
	va_end(ap);
	if (d->used > d->len)
		d->used = d->len;
}

static const char *end_str(const struct outcome *o, char *b, size_t n)
{
	switch (o->end) {
	case END_DONE:
		return "completed";
	case END_EXCEPTION:
		snprintf(b, n, "exception %d", o->vector);
		return b;
	case END_OTHER:
		snprintf(b, n, "stopped: %s", o->why);
		return b;
	default:
		snprintf(b, n, "crash: %s", o->why);
		return b;
	}
}

static int insn_at(const struct tcase *c, uint64_t rip)
{
	int i;

	for (i = 0; i < c->n_insns; i++)
		if (CODE_BASE + c->code_off + c->insn_off[i] == rip)
			return i;
	return -1;
}

static bool in_memu(const struct tcase *c, uint32_t off)
{
	int i;

	for (i = 0; i < c->n_memu; i++)
		if (off >= c->memu[i].off && off < (uint32_t)c->memu[i].off + c->memu[i].len)
			return true;
	return false;
}

/* Compare outcome o against the reference ref (native) for case c. */
static int compare(const struct tcase *c, const struct outcome *ref, const struct outcome *o,
		   struct diff *d)
{
	uint64_t flm = FL_CMP & ~c->fl_undef;
	uint16_t gu = c->gpr_undef, fsu = c->fsw_undef;
	char b1[96], b2[96];
	int i;

	if (ref->end == END_EXCEPTION && o->end == END_OTHER && ref->vector == 14 &&
	    strstr(o->why, "unmapped")) {
		/* the flat emulator reports an unmapped access as a stop, the host as #PF */
	} else if (ref->end != o->end || (ref->end == END_EXCEPTION && ref->vector != o->vector)) {
		int kn = ref->end == END_EXCEPTION ? insn_at(c, ref->st.rip) : -1;
		int ke = o->end == END_EXCEPTION ? insn_at(c, o->st.rip) : -1;

		diff_add(d, "end: native %s%s%.0d, emulator %s%s%.0d", end_str(ref, b1, sizeof(b1)),
			 kn >= 0 ? " at instruction " : "", kn >= 0 ? kn + 1 : 0,
			 end_str(o, b2, sizeof(b2)), ke >= 0 ? " at instruction " : "",
			 ke >= 0 ? ke + 1 : 0);
		return d->n;
	}
	if (ref->end == END_EXCEPTION) {
		int k = insn_at(c, ref->st.rip);

		if (k >= 0) {
			flm = FL_CMP & ~c->fl_undef_at[k];
			gu = c->gpr_undef_at[k];
			fsu = c->fsw_undef_at[k];
		}
		if (ref->vector == 14 && o->end == END_EXCEPTION &&
		    ref->fault_addr != o->fault_addr)
			diff_add(d, "#PF address native %#llx emulator %#llx",
				 (unsigned long long)ref->fault_addr,
				 (unsigned long long)o->fault_addr);
	}
	for (i = 0; i < 16; i++)
		if (!(gu & (1u << i)) && ref->st.gpr[i] != o->st.gpr[i])
			diff_add(d, "%s native %#llx emulator %#llx", gpr_names[i],
				 (unsigned long long)ref->st.gpr[i],
				 (unsigned long long)o->st.gpr[i]);
	if (ref->st.rip != o->st.rip)
		diff_add(d, "rip native %#llx emulator %#llx", (unsigned long long)ref->st.rip,
			 (unsigned long long)o->st.rip);
	if ((ref->st.rflags ^ o->st.rflags) & flm)
		diff_add(d, "rflags native %#llx emulator %#llx (compared bits %#llx)",
			 (unsigned long long)(ref->st.rflags & FL_CMP),
			 (unsigned long long)(o->st.rflags & FL_CMP), (unsigned long long)flm);
	{
		const uint8_t *a = ref->st.fx, *b = o->st.fx;
		uint16_t fa, fb;
		uint32_t ma, mb;

		memcpy(&fa, a + FX_FCW, 2);
		memcpy(&fb, b + FX_FCW, 2);
		if (fa != fb)
			diff_add(d, "fcw native %#x emulator %#x", fa, fb);
		memcpy(&fa, a + FX_FSW, 2);
		memcpy(&fb, b + FX_FSW, 2);
		/* An unmasked x87 exception is pending (ES): the SDM leaves C0-C3 alone for an
		 * unmasked invalid-operation in compares, AMD hardware writes them. */
		if (fa & 0x80)
			fsu |= 0x4700;
		if ((fa ^ fb) & ~fsu)
			diff_add(d, "fsw native %#x emulator %#x (ignoring %#x)", fa, fb, fsu);
		if (a[FX_FTW] != b[FX_FTW])
			diff_add(d, "ftw native %#x emulator %#x", a[FX_FTW], b[FX_FTW]);
		memcpy(&ma, a + FX_MXCSR, 4);
		memcpy(&mb, b + FX_MXCSR, 4);
		if (ma != mb)
			diff_add(d, "mxcsr native %#x emulator %#x", ma, mb);
		for (i = 0; i < 8; i++)
			if (memcmp(a + FX_ST + 16 * i, b + FX_ST + 16 * i, 10)) {
				uint64_t m1, m2;
				uint16_t e1, e2;

				memcpy(&m1, a + FX_ST + 16 * i, 8);
				memcpy(&m2, b + FX_ST + 16 * i, 8);
				memcpy(&e1, a + FX_ST + 16 * i + 8, 2);
				memcpy(&e2, b + FX_ST + 16 * i + 8, 2);
				diff_add(d, "st(%d) native %04x:%016llx emulator %04x:%016llx", i,
					 e1, (unsigned long long)m1, e2, (unsigned long long)m2);
			}
		for (i = 0; i < 16; i++)
			if (memcmp(a + FX_XMM + 16 * i, b + FX_XMM + 16 * i, 16)) {
				uint64_t x1[2], x2[2];

				memcpy(x1, a + FX_XMM + 16 * i, 16);
				memcpy(x2, b + FX_XMM + 16 * i, 16);
				diff_add(d, "xmm%d native %016llx%016llx emulator %016llx%016llx",
					 i, (unsigned long long)x1[1], (unsigned long long)x1[0],
					 (unsigned long long)x2[1], (unsigned long long)x2[0]);
			}
	}
	for (i = 0; i < (int)DATA_SIZE; i++) {
		if (ref->mem[i] != o->mem[i] && !in_memu(c, (uint32_t)i)) {
			int j = i;

			while (j + 1 < (int)DATA_SIZE && j - i < 15 &&
			       ref->mem[j + 1] != o->mem[j + 1])
				j++;
			diff_add(d, "memory at %#llx (%d bytes) native %02x.. emulator %02x..",
				 (unsigned long long)(DATA_BASE + (uint64_t)i), j - i + 1,
				 ref->mem[i], o->mem[i]);
			i = j;
		}
	}
	return d->n;
}

/* Decoder fuzz: classify the native pair (whole, truncated). Returns false when the
 * generator's length disagrees with the host's (then the case is not used). */
static bool fuzz_native_ok(const struct tcase *c, const struct outcome *whole,
			   const struct outcome *trunc)
{
	uint64_t guard = CODE_BASE + CODE_SIZE;
	bool whole_fetch = whole->end == END_EXCEPTION && whole->vector == 14 &&
			   whole->fault_addr == guard && (whole->err & 0x10);
	bool trunc_fetch = trunc->end == END_EXCEPTION && trunc->vector == 14 &&
			   trunc->fault_addr == guard && (trunc->err & 0x10);

	if (whole->end == END_CRASH || trunc->end == END_CRASH || whole_fetch)
		return false;
	if (whole->end == END_EXCEPTION && (whole->vector == 6 || c->fuzz_len > 15))
		return true; /* invalid or too long: no length to compare */
	return trunc_fetch;
}

/* The FF_* feature of a fuzz case when the emulated CPU does not advertise it (its CPUID
 * bit is clear), else -1: such an encoding must raise #UD on the emulated CPU whatever the
 * host, which may have the extension, does with it. */
static int fuzz_unadvertised(const struct tcase *c)
{
	static signed char adv[FF_COUNT]; /* 0 unknown, 1 advertised, -1 not */
	int ft = fuzz_feature(c);

	if (ft < 0 || c->fuzz_len > 15)
		return -1; /* beyond 15 bytes: #GP whatever the opcode (SDM vol. 2 2.1, vol. 3 6.15) */
	if (!adv[ft]) {
		const struct fuzz_feat *f = &fuzz_feats[ft];

		adv[ft] = emurun_cpuid_has(f->leaf, f->subleaf, f->reg, f->bit) ? 1 : -1;
	}
	return adv[ft] < 0 ? ft : -1;
}

/* unadv: the FF_* feature the encoding needs and the emulated CPU does not advertise, or -1 */
static int fuzz_compare(const struct tcase *c, const struct outcome *whole,
			const struct outcome *o_whole, const struct outcome *o_trunc, int unadv,
			struct diff *d)
{
	uint64_t guard = CODE_BASE + CODE_SIZE;
	char b1[96], b2[96];

	if (unadv >= 0) {
		if (o_whole->end != END_EXCEPTION || o_whole->vector != 6)
			diff_add(d, "%s is not in the emulated CPUID, so #UD is right; emulator %s",
				 fuzz_feats[unadv].name, end_str(o_whole, b1, sizeof(b1)));
	} else if (whole->end == END_DONE) {
		if (o_whole->end != END_DONE)
			diff_add(d, "native executed (length %u), emulator %s", c->fuzz_len,
				 end_str(o_whole, b1, sizeof(b1)));
		else if (o_whole->st.rip != whole->st.rip)
			diff_add(d, "rip after it: native %#llx emulator %#llx (length %u)",
				 (unsigned long long)whole->st.rip,
				 (unsigned long long)o_whole->st.rip, c->fuzz_len);
	} else if (!(whole->vector == 14 && o_whole->end == END_OTHER) &&
		   (o_whole->end != END_EXCEPTION || o_whole->vector != whole->vector)) {
		diff_add(d, "native %s, emulator %s", end_str(whole, b1, sizeof(b1)),
			 end_str(o_whole, b2, sizeof(b2)));
	}
	if (unadv < 0 && o_whole->end == END_EXCEPTION && o_whole->vector == 14 &&
	    o_whole->fault_addr == guard)
		diff_add(d, "emulator fetched past the end of the %u-byte instruction",
			 c->fuzz_len);
	if (o_trunc->end == END_CRASH)
		diff_add(d, "emulator, cut to %u bytes: %s", c->fuzz_len - 1,
			 end_str(o_trunc, b1, sizeof(b1)));
	if (!(whole->end == END_EXCEPTION && (whole->vector == 6 || c->fuzz_len > 15)) &&
	    o_trunc->end == END_DONE)
		diff_add(d, "emulator executed the instruction cut to %u bytes (host needs %u)",
			 c->fuzz_len - 1, c->fuzz_len);
	return d->n;
}

static void make_trunc(const struct tcase *whole, struct tcase *t)
{
	memcpy(t, whole, sizeof(*t));
	t->code_len = whole->fuzz_len - 1;
	t->code_off = (uint32_t)(CODE_SIZE - t->code_len);
	t->in.rip = CODE_BASE + t->code_off;
}

static void describe_case(const struct tcase *c, char *buf, size_t len)
{
	size_t o = 0;
	int i;

	o += (size_t)snprintf(buf + o, len - o, "--case %#llx:%llu:", (unsigned long long)c->seed,
			      (unsigned long long)c->num);
	for (i = 0; i < c->n_insns && o + 8 < len; i++) {
		buf[o++] = ' ';
		buf[o] = 0;
		case_describe_insn(c, i, buf + o, len - o);
		o += strlen(buf + o);
	}
}

struct class_result {
	uint64_t cases, mismatches, native_bad, emu_ud, emu_crash, skipped;
	/* decoder fuzz: encodings of extensions the emulated CPU does not advertise, judged
	 * against #UD where the host did something else (by feature, and by host outcome:
	 * [32] executed, else the vector) */
	uint64_t rejudged, rejudged_feat[FF_COUNT], rejudged_vec[33];
	uint64_t native_vec[33]; /* native outcomes: [32] completed, else by vector */
	char first[1024];
};

static struct outcome *emu_out;
static struct outcome *ref_copy;

const char *__ubsan_default_options(void);

/* UBSan stops the process at the first error (-fno-sanitize-recover): show where. */
const char *__ubsan_default_options(void)
{
	return "print_stacktrace=1";
}

static void record_first(struct class_result *r, const struct tcase *c, const char *diff)
{
	char desc[512];

	if (r->first[0])
		return;
	describe_case(c, desc, sizeof(desc));
	snprintf(r->first, sizeof(r->first), "%s; %s", desc, diff);
}

static void run_class(const struct opts *op, int cls, struct class_result *r, bool have_emu)
{
	bool fuzz = cls == FUZZ_CLASS;
	int per = fuzz ? BATCH / 2 : BATCH;
	uint64_t done = 0, count = op->count;
	struct tcase *cases = native_cases(BATCH);
	struct outcome *nat = native_outcomes();
	struct outcome *eouts = emurun_outcomes(BATCH);

	pid_t epid;

	memset(r, 0, sizeof(*r));
	if (fuzz)
		count *= 2;
	while (done < count) {
		int n = (int)(count - done < (uint64_t)per ? count - done : (uint64_t)per), i, tot;

		for (i = 0; i < n; i++) {
			uint64_t num =
			    (done + (uint64_t)i) * (uint64_t)gen_nclasses + (uint64_t)cls;

			if (fuzz) {
				case_generate(&cases[2 * i], op->seed, num, cls);
				make_trunc(&cases[2 * i], &cases[2 * i + 1]);
			} else {
				case_generate(&cases[i], op->seed, num, cls);
			}
		}
		tot = fuzz ? 2 * n : n;
		/* the emulator side runs in a second process, alongside the native one: both
		 * write to shared memory, and the machine has two cores */
		epid = -1;
		if (!op->selftest && have_emu) {
			fflush(NULL);
			epid = fork();
			if (epid == 0) {
				emurun_batch(cases, tot);
				_exit(0);
			}
			if (epid < 0)
				emurun_batch(cases, tot);
		}
		native_run(tot);
		if (op->selftest || done == 0) {
			/* determinism: the same cases again must give the same outcomes */
			memcpy(ref_copy, nat, (size_t)tot * sizeof(*nat));
			native_run(tot);
			for (i = 0; i < tot; i++) {
				char buf[512];
				struct diff d = {buf, sizeof(buf), 0, 0, 3};

				buf[0] = 0;
				if (ref_copy[i].end == END_CRASH || nat[i].end == END_CRASH) {
					r->native_bad++;
					snprintf(buf, sizeof(buf), "native run failed: %s",
						 ref_copy[i].end == END_CRASH ? ref_copy[i].why
									      : nat[i].why);
					record_first(r, &cases[i], buf);
					continue;
				}
				if (fuzz ? (ref_copy[i].end != nat[i].end ||
					    ref_copy[i].vector != nat[i].vector ||
					    ref_copy[i].st.rip != nat[i].st.rip)
					 : compare(&cases[i], &ref_copy[i], &nat[i], &d) != 0) {
					/* (fuzz: RDTSC, RDRAND and the like make only the outcome
					 * and RIP comparable) */
					if (fuzz)
						snprintf(buf, sizeof(buf),
							 "native outcome changed");
					r->native_bad++;
					record_first(r, &cases[i], buf);
				}
			}
		}
		if (epid > 0) {
			int st = 0;

			while (waitpid(epid, &st, 0) < 0 && errno == EINTR)
				;
			if (!WIFEXITED(st) || WEXITSTATUS(st))
				for (i = 0; i < tot; i++) {
					eouts[i].end = END_CRASH;
					snprintf(eouts[i].why, sizeof(eouts[i].why),
						 "emulator batch process failed (status %#x)", st);
				}
		}
		for (i = 0; i < n; i++) {
			char buf[512];
			struct diff d = {buf, sizeof(buf), 0, 0, 3};
			const struct tcase *c = fuzz ? &cases[2 * i] : &cases[i];
			struct outcome *eo = &eouts[fuzz ? 2 * i : i];

			buf[0] = 0;
			r->cases++;
			if (fuzz) {
				if (!fuzz_native_ok(c, &nat[2 * i], &nat[2 * i + 1])) {
					r->skipped++;
					if (op->verbose && r->skipped <= 40) {
						char desc[256], b1[96], b2[96];

						describe_case(c, desc, sizeof(desc));
						printf(
						    "#   length? %s: whole %s (%#llx), cut %s "
						    "(%#llx)\n",
						    desc, end_str(&nat[2 * i], b1, sizeof(b1)),
						    (unsigned long long)nat[2 * i].fault_addr,
						    end_str(&nat[2 * i + 1], b2, sizeof(b2)),
						    (unsigned long long)nat[2 * i + 1].fault_addr);
					}
					continue;
				}
			} else if (nat[i].end == END_CRASH) {
				r->native_bad++;
				snprintf(buf, sizeof(buf), "native run failed: %s", nat[i].why);
				record_first(r, c, buf);
				continue;
			}
			if (nat[fuzz ? 2 * i : i].end == END_DONE)
				r->native_vec[32]++;
			else if (nat[fuzz ? 2 * i : i].vector >= 0 &&
				 nat[fuzz ? 2 * i : i].vector < 32)
				r->native_vec[nat[fuzz ? 2 * i : i].vector]++;
			if (op->selftest || !have_emu)
				continue;
			if (fuzz) {
				int unadv = fuzz_unadvertised(c);
				const struct outcome *w = &nat[2 * i];

				if (unadv >= 0 && !(w->end == END_EXCEPTION && w->vector == 6)) {
					int v = w->end == END_EXCEPTION ? w->vector : 32;

					r->rejudged++;
					r->rejudged_feat[unadv]++;
					r->rejudged_vec[v >= 0 && v < 32 ? v : 32]++;
				}
				fuzz_compare(c, w, eo, eo + 1, unadv, &d);
			} else {
				compare(c, &nat[i], eo, &d);
			}
			if (d.n) {
				r->mismatches++;
				if (eo->end == END_EXCEPTION && eo->vector == 6)
					r->emu_ud++;
				if (eo->end == END_CRASH || (fuzz && eo[1].end == END_CRASH))
					r->emu_crash++;
				record_first(r, c, buf);
				if (op->verbose) {
					char desc[512];

					describe_case(c, desc, sizeof(desc));
					printf("#   mismatch %s; %s\n", desc, buf);
				}
			}
		}
		done += (uint64_t)n;
	}
}

/* Comparator self-check: an outcome compared with itself has no difference, and one changed
 * in any compared place (a GPR, RIP, a compared flag, x87/SSE state, MXCSR, a data byte,
 * the exception vector) has one. Guards against a comparison that passes everything. */
static int comparator_selfcheck(const struct opts *op, int tapn)
{
	struct tcase *cases = native_cases(BATCH);
	struct outcome *nat = native_outcomes();
	uint64_t rng = op->seed ^ 0x5e1fc4ec;
	int i, n = BATCH, missed = 0, false_diff = 0, tried = 0;
	char first[256] = "";

	for (i = 0; i < n; i++)
		case_generate(&cases[i], op->seed, 1000003ULL * (uint64_t)i + 7,
			      i % (gen_nclasses - 1));
	native_run(n);
	for (i = 0; i < n; i++) {
		struct outcome *o = &emu_out[0];
		const struct tcase *c = &cases[i];
		char buf[256];
		struct diff d = {buf, sizeof(buf), 0, 0, 2};
		int what = (int)(rng_next(&rng) % 8), k;
		uint64_t bit = 1ULL << (rng_next(&rng) % 64);

		if (nat[i].end == END_CRASH)
			continue;
		memcpy(o, &nat[i], sizeof(*o));
		if (compare(c, &nat[i], o, &d))
			false_diff++;
		switch (what) {
		case 0:
			k = (int)(rng_next(&rng) % 16);
			if (c->gpr_undef & (1u << k))
				continue;
			o->st.gpr[k] ^= bit;
			break;
		case 1:
			o->st.rip ^= 1;
			break;
		case 2:
			if (!(FL_CMP & ~c->fl_undef))
				continue;
			do
				bit = 1ULL << (rng_next(&rng) % 12);
			while (!(bit & FL_CMP & ~c->fl_undef));
			o->st.rflags ^= bit;
			break;
		case 3:
			o->st.fx[FX_XMM + rng_next(&rng) % 256] ^= 0x10;
			break;
		case 4:
			o->st.fx[FX_ST + 16 * (rng_next(&rng) % 8) + rng_next(&rng) % 10] ^= 1;
			break;
		case 5:
			o->st.fx[FX_MXCSR] ^= 0x20;
			break;
		case 6:
			k = (int)(rng_next(&rng) % DATA_SIZE);
			if (in_memu(c, (uint32_t)k))
				continue;
			o->mem[k] ^= 0x80;
			break;
		default:
			o->end = o->end == END_DONE ? END_EXCEPTION : END_DONE;
			o->vector = 13;
			break;
		}
		tried++;
		d.n = 0;
		d.used = 0;
		buf[0] = 0;
		if (!compare(c, &nat[i], o, &d)) {
			missed++;
			if (!first[0])
				snprintf(first, sizeof(first), "case %llu change %d not detected",
					 (unsigned long long)c->num, what);
		}
	}
	if (missed || false_diff) {
		printf("not ok %d - comparator self-check: %d of %d changes missed, %d false "
		       "differences; %s\n",
		       tapn, missed, tried, false_diff, first);
		return 1;
	}
	printf("ok %d - comparator self-check: %d changed outcomes all detected, %d identical "
	       "ones all equal\n",
	       tapn, tried, n);
	return 0;
}

/* "; native: 262 end in #DE, 1 #PF" for the TAP line: which exceptions the class exercised. */
static void faults_str(const struct class_result *r, char *buf, size_t len)
{
	static const char *const names[32] = {
	    [0] = "#DE",  [6] = "#UD",	[13] = "#GP", [14] = "#PF",
	    [16] = "#MF", [17] = "#AC", [19] = "#XM"};
	size_t o = 0;
	int v, n = 0;

	buf[0] = 0;
	for (v = 0; v < 32 && o + 24 < len; v++) {
		if (!r->native_vec[v])
			continue;
		o += (size_t)snprintf(
		    buf + o, len - o, n ? ", %llu %s" : "; native: %llu end in %s",
		    (unsigned long long)r->native_vec[v], names[v] ? names[v] : "another vector");
		n++;
	}
}

/* "# decoder fuzz: 41 encodings of extensions the emulated CPU does not advertise expected
 * #UD where the host did not (host: 30 executed, 11 #GP): GFNI 25, MOVDIRI 16" */
static void print_rejudged(const struct class_result *r)
{
	int v, f, n = 0;

	printf("# decoder fuzz: %llu encodings of extensions the emulated CPU does not advertise "
	       "expected #UD where the host did not (host:",
	       (unsigned long long)r->rejudged);
	if (r->rejudged_vec[32])
		printf(" %llu executed", (unsigned long long)r->rejudged_vec[32]), n++;
	for (v = 0; v < 32; v++)
		if (r->rejudged_vec[v])
			printf("%s %llu vector %d", n++ ? "," : "",
			       (unsigned long long)r->rejudged_vec[v], v);
	printf(")");
	for (f = 0, n = 0; f < FF_COUNT; f++)
		if (r->rejudged_feat[f])
			printf("%s %s %llu", n++ ? "," : ":", fuzz_feats[f].name,
			       (unsigned long long)r->rejudged_feat[f]);
	printf("\n");
}

static bool class_supported(int cls, const char **why)
{
	const struct gen_class *gc = &gen_classes[cls];

	if (gc->feature && !host_has(gc->feature)) {
		*why = gc->feature;
		return false;
	}
	return true;
}

static int run_all(const struct opts *op)
{
	bool have_emu = !op->selftest && emurun_available();
	int cls, tapn = 0, failed = 0;
	uint64_t total = 0, total_mm = 0;
	time_t t0 = time(NULL);

	printf("# seed %#llx, %llu cases per class%s\n", (unsigned long long)op->seed,
	       (unsigned long long)op->count, op->selftest ? ", native self-test" : "");
	if (!op->selftest && !have_emu)
		printf("# emulator not available (emu_cpu_create() failed): every class fails\n");
	for (cls = 0; cls < gen_nclasses; cls++) {
		struct class_result r;
		const char *why;
		const char *name = gen_classes[cls].name;

		if (op->only && !strstr(name, op->only))
			continue;
		tapn++;
		if (!class_supported(cls, &why)) {
			printf("ok %d - %s # SKIP host CPU lacks %s\n", tapn, name, why);
			continue;
		}
		run_class(op, cls, &r, have_emu);
		total += r.cases;
		total_mm += r.mismatches;
		if (op->selftest) {
			if (r.native_bad) {
				failed = 1;
				printf("not ok %d - %s native self-test: %llu of %llu cases not "
				       "deterministic or failed; first: %s\n",
				       tapn, name, (unsigned long long)r.native_bad,
				       (unsigned long long)r.cases, r.first);
			} else {
				printf("ok %d - %s native self-test: %llu cases deterministic%s\n",
				       tapn, name, (unsigned long long)r.cases,
				       r.skipped ? " (some skipped)" : "");
			}
		} else if (!have_emu) {
			failed = 1;
			printf("not ok %d - %s: %llu cases, emulator not available (native side "
			       "ran; %llu native failures)\n",
			       tapn, name, (unsigned long long)r.cases,
			       (unsigned long long)r.native_bad);
		} else if (r.mismatches || r.native_bad) {
			failed = 1;
			printf("not ok %d - %s: %llu mismatches of %llu cases (%llu emulator #UD, "
			       "%llu emulator crashes, %llu native failures%s); first: %s\n",
			       tapn, name, (unsigned long long)r.mismatches,
			       (unsigned long long)r.cases, (unsigned long long)r.emu_ud,
			       (unsigned long long)r.emu_crash, (unsigned long long)r.native_bad,
			       r.skipped ? ", length-table skips counted in cases" : "", r.first);
		} else {
			char f[160];

			faults_str(&r, f, sizeof(f));
			printf("ok %d - %s: %llu cases%s\n", tapn, name,
			       (unsigned long long)r.cases, f);
		}
		if (op->verbose) {
			int v;

			printf("#   native outcomes: %llu completed",
			       (unsigned long long)r.native_vec[32]);
			for (v = 0; v < 32; v++)
				if (r.native_vec[v])
					printf(", %llu vector %d",
					       (unsigned long long)r.native_vec[v], v);
			printf("\n");
		}
		if (cls == FUZZ_CLASS && r.skipped)
			printf("# decoder fuzz: %llu of %llu generated encodings not used (host "
			       "length differed from the generator's table, or the host died)\n",
			       (unsigned long long)r.skipped, (unsigned long long)r.cases);
		if (cls == FUZZ_CLASS && r.rejudged)
			print_rejudged(&r);
		fflush(stdout);
	}
	if (!op->only)
		failed |= comparator_selfcheck(op, ++tapn);
	printf("# %llu cases, %llu mismatches, %lld s\n", (unsigned long long)total,
	       (unsigned long long)total_mm, (long long)(time(NULL) - t0));
	printf("1..%d\n", tapn);
	return failed;
}

static void dump_state(const char *what, const struct mstate *m)
{
	int i;
	uint32_t mx;
	uint16_t fcw, fsw;

	printf("%s:\n", what);
	for (i = 0; i < 16; i++)
		printf("  %-3s %016llx%s", gpr_names[i], (unsigned long long)m->gpr[i],
		       i % 4 == 3 ? "\n" : "");
	memcpy(&mx, m->fx + FX_MXCSR, 4);
	memcpy(&fcw, m->fx + FX_FCW, 2);
	memcpy(&fsw, m->fx + FX_FSW, 2);
	printf("  rip %016llx rflags %08llx mxcsr %08x fcw %04x fsw %04x ftw %02x\n",
	       (unsigned long long)m->rip, (unsigned long long)m->rflags, mx, fcw, fsw,
	       m->fx[FX_FTW]);
	for (i = 0; i < 16; i++) {
		uint64_t x[2];

		memcpy(x, m->fx + FX_XMM + 16 * i, 16);
		printf("  xmm%-2d %016llx%016llx%s", i, (unsigned long long)x[1],
		       (unsigned long long)x[0], i % 2 == 1 ? "\n" : "");
	}
}

static int run_one(const struct opts *op)
{
	int cls = (int)(op->case_num % (uint64_t)gen_nclasses), i, n;
	bool fuzz = cls == FUZZ_CLASS;
	struct tcase *cases = native_cases(BATCH);
	struct outcome *nat = native_outcomes();
	char buf[4096], b1[96];
	struct diff d = {buf, sizeof(buf), 0, 0, 1000};

	case_generate(&cases[0], op->seed, op->case_num, cls);
	n = 1;
	if (fuzz) {
		make_trunc(&cases[0], &cases[1]);
		n = 2;
	}
	printf("case %#llx:%llu, class %s, %d instruction(s) at %#llx:\n",
	       (unsigned long long)op->seed, (unsigned long long)op->case_num,
	       gen_classes[cls].name, cases[0].n_insns,
	       (unsigned long long)(CODE_BASE + cases[0].code_off));
	for (i = 0; i < cases[0].n_insns; i++) {
		case_describe_insn(&cases[0], i, buf, sizeof(buf));
		printf("  +%-3u %s\n", cases[0].insn_off[i], buf);
	}
	printf("ignored: rflags %#llx, gprs %#x, fsw %#x, %d memory ranges\n",
	       (unsigned long long)cases[0].fl_undef, cases[0].gpr_undef, cases[0].fsw_undef,
	       cases[0].n_memu);
	dump_state("initial", &cases[0].in);
	native_run(n);
	printf("native: %s\n", end_str(&nat[0], b1, sizeof(b1)));
	if (nat[0].end == END_EXCEPTION)
		printf("  vector %d err %#x addr %#llx\n", nat[0].vector, nat[0].err,
		       (unsigned long long)nat[0].fault_addr);
	dump_state("native final", &nat[0].st);
	if (fuzz)
		printf("native, cut to %u bytes: %s (addr %#llx)\n", cases[1].code_len,
		       end_str(&nat[1], b1, sizeof(b1)), (unsigned long long)nat[1].fault_addr);
	if (!emurun_available()) {
		printf("emulator not available\n");
		return 1;
	}
	emurun_case(&cases[0], &emu_out[0]);
	printf("emulator: %s, %llu retired\n", end_str(&emu_out[0], b1, sizeof(b1)),
	       (unsigned long long)emu_out[0].retired);
	dump_state("emulator final", &emu_out[0].st);
	buf[0] = 0;
	if (fuzz) {
		int unadv = fuzz_unadvertised(&cases[0]);

		emurun_case(&cases[1], &emu_out[1]);
		printf("emulator, cut: %s\n", end_str(&emu_out[1], b1, sizeof(b1)));
		if (unadv >= 0)
			printf("encoding of %s, which the emulated CPU does not advertise: #UD "
			       "expected\n",
			       fuzz_feats[unadv].name);
		fuzz_compare(&cases[0], &nat[0], &emu_out[0], &emu_out[1], unadv, &d);
	} else {
		compare(&cases[0], &nat[0], &emu_out[0], &d);
	}
	printf("%s\n", d.n ? buf : "no differences");
	return d.n ? 1 : 0;
}

static int parse_case(const char *s, struct opts *op)
{
	char *end;

	op->seed = strtoull(s, &end, 0);
	if (*end != ':')
		return -1;
	op->case_num = strtoull(end + 1, &end, 0);
	if (*end && *end != ':')
		return -1;
	op->one_case = true;
	return 0;
}

int main(int argc, char **argv)
{
	struct opts op = {.seed = DEFAULT_SEED, .count = 4000};
	const char *lng = getenv("KESTREL_LONG");
	int i;

	if (lng && *lng && strcmp(lng, "0"))
		op.count = 400000;
#if defined(__SANITIZE_ADDRESS__)
	/* ASAN+UBSAN builds (fork included) are several times slower: a smaller subset */
	op.count /= 8;
#endif
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			op.seed = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			op.count = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--class") && i + 1 < argc) {
			op.only = argv[++i];
		} else if (!strcmp(argv[i], "--selftest")) {
			op.selftest = true;
		} else if (!strcmp(argv[i], "-v")) {
			op.verbose = true;
		} else if (!strcmp(argv[i], "--case") && i + 1 < argc) {
			if (parse_case(argv[++i], &op)) {
				fprintf(stderr, "--case wants SEED:N\n");
				return 2;
			}
		} else {
			fprintf(stderr,
				"usage: %s [--seed S] [--count N] [--class NAME] [--selftest] "
				"[--case SEED:N]\n",
				argv[0]);
			return 2;
		}
	}
	emu_out = calloc(2, sizeof(*emu_out));
	ref_copy = calloc(BATCH, sizeof(*ref_copy));
	if (!emu_out || !ref_copy || !native_cases(BATCH)) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	i = op.one_case ? run_one(&op) : run_all(&op);
	free(emu_out);
	free(ref_copy);
	return i;
}

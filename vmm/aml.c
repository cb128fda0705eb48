/* AML byte-code builder (ACPI 6.4 chapter 20 for the encoding, section 6.4 for resources).
 *
 * Why lengths are filled in at the end: a PkgLength is 1 to 4 bytes depending on the size of
 * what follows, which is not known when a Device or Package is opened. aml_end() measures
 * the body and inserts the smallest PkgLength (and a package's element count, a buffer's
 * size) in front of it, moving the body once. DSDTs are a few KiB, so the moves cost nothing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/aml.h"

/* Opcodes, ACPI 6.4 section 20.3 */
enum {
	AML_ZERO = 0x00,
	AML_ONE = 0x01,
	AML_NAME_OP = 0x08,
	AML_BYTE_PREFIX = 0x0a,
	AML_WORD_PREFIX = 0x0b,
	AML_DWORD_PREFIX = 0x0c,
	AML_STRING_PREFIX = 0x0d,
	AML_QWORD_PREFIX = 0x0e,
	AML_SCOPE_OP = 0x10,
	AML_BUFFER_OP = 0x11,
	AML_PACKAGE_OP = 0x12,
	AML_METHOD_OP = 0x14,
	AML_DUAL_NAME_PREFIX = 0x2e,
	AML_MULTI_NAME_PREFIX = 0x2f,
	AML_EXT_OP_PREFIX = 0x5b,
	AML_DEVICE_OP = 0x82, /* after AML_EXT_OP_PREFIX */
	AML_ROOT_CHAR = 0x5c,
	AML_PARENT_PREFIX = 0x5e,
	AML_RETURN_OP = 0xa4,
	AML_ONES = 0xff,
};

/* Resource descriptor tags, ACPI 6.4 sections 6.4.2 and 6.4.3 */
enum {
	RES_IRQ = 0x22,		/* small item 0x4, length 2 (no flags) or 3 */
	RES_IO = 0x47,		/* small item 0x8, length 7 */
	RES_END_TAG = 0x79,	/* small item 0xf, length 1 */
	RES_MEM32_FIXED = 0x86, /* large item 0x06 */
	RES_DWORD_ADDR = 0x87,
	RES_WORD_ADDR = 0x88,
	RES_EXT_IRQ = 0x89,
	RES_QWORD_ADDR = 0x8a,
};

/* Address space resource types and general flags, ACPI 6.4 table 6.44 */
enum {
	ADDR_TYPE_MEM = 0,
	ADDR_TYPE_IO = 1,
	ADDR_TYPE_BUS = 2,
	ADDR_GEN_MIN_FIXED = 1 << 2,
	ADDR_GEN_MAX_FIXED = 1 << 3,
};

enum frame_kind { FRAME_SCOPE, FRAME_DEVICE, FRAME_METHOD, FRAME_PACKAGE, FRAME_BUFFER, FRAME_RT };

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->data);
	memset(a, 0, sizeof(*a));
}

int aml_status(const struct aml *a)
{
	if (a->error)
		return a->error;
	return a->depth ? -EINVAL : 0; /* a construct left open */
}

static void fail(struct aml *a, int err)
{
	if (!a->error)
		a->error = err;
}

static bool reserve(struct aml *a, size_t extra)
{
	if (a->error)
		return false;
	if (a->len + extra <= a->cap)
		return true;
	size_t cap = a->cap ? a->cap : 256;
	while (cap < a->len + extra)
		cap *= 2;
	uint8_t *p = realloc(a->data, cap);
	if (!p) {
		fail(a, -ENOMEM);
		return false;
	}
	a->data = p;
	a->cap = cap;
	return true;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (!reserve(a, n))
		return;
	memcpy(a->data + a->len, p, n);
	a->len += n;
}

static void put8(struct aml *a, uint8_t v)
{
	aml_bytes(a, &v, 1);
}

static void put_le(struct aml *a, uint64_t v, unsigned n)
{
	uint8_t b[8];
	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, b, n);
}

/* A data object directly inside a package is one of its elements. */
static void count_element(struct aml *a)
{
	if (a->depth && a->stack[a->depth - 1].kind == FRAME_PACKAGE)
		a->stack[a->depth - 1].elements++;
}

int aml_encode_pkglength(size_t body_len, uint8_t out[4])
{
	/* One byte holds 0-63; with n follow bytes the first byte keeps 4 bits and each follow
	 * byte 8 more, so 2 bytes reach 2^12-1, 3 bytes 2^20-1 and 4 bytes 2^28-1. The value
	 * includes the PkgLength bytes themselves (section 20.2.4). */
	if (body_len + 1 <= 0x3f) {
		out[0] = (uint8_t)(body_len + 1);
		return 1;
	}
	for (unsigned n = 2; n <= 4; n++) {
		size_t total = body_len + n;
		if (total >= ((size_t)1 << (4 + 8 * (n - 1))))
			continue;
		out[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
		for (unsigned i = 1; i < n; i++)
			out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
		return (int)n;
	}
	return -E2BIG;
}

/* The integer encoding of section 20.2.3 into out[9]; returns its length. */
static unsigned encode_integer(uint64_t v, uint8_t out[9])
{
	unsigned n;
	if (v == 0 || v == 1) {
		out[0] = v ? AML_ONE : AML_ZERO;
		return 1;
	}
	if (v == UINT64_MAX) {
		out[0] = AML_ONES;
		return 1;
	}
	if (v <= 0xff) {
		out[0] = AML_BYTE_PREFIX;
		n = 1;
	} else if (v <= 0xffff) {
		out[0] = AML_WORD_PREFIX;
		n = 2;
	} else if (v <= 0xffffffff) {
		out[0] = AML_DWORD_PREFIX;
		n = 4;
	} else {
		out[0] = AML_QWORD_PREFIX;
		n = 8;
	}
	for (unsigned i = 0; i < n; i++)
		out[1 + i] = (uint8_t)(v >> (8 * i));
	return n + 1;
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t b[9];
	count_element(a);
	aml_bytes(a, b, encode_integer(v, b));
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *p = s; *p; p++) {
		/* AsciiCharList is 0x01-0x7f */
		if ((unsigned char)*p > 0x7f) {
			fail(a, -EINVAL);
			return;
		}
	}
	count_element(a);
	put8(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

void aml_eisaid(struct aml *a, const char *id)
{
	/* Three upper-case letters of 5 bits each (A = 1) then four hex digits, stored big-endian
	 * (section 19.6.35, EISAID). */
	if (strlen(id) != 7) {
		fail(a, -EINVAL);
		return;
	}
	uint32_t v = 0;
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			fail(a, -EINVAL);
			return;
		}
		v = (v << 5) | (uint32_t)(id[i] - 0x40);
	}
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else {
			fail(a, -EINVAL);
			return;
		}
		v = (v << 4) | d;
	}
	count_element(a);
	uint8_t b[5] = {AML_DWORD_PREFIX, (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
			(uint8_t)v};
	aml_bytes(a, b, sizeof(b));
}

static bool seg_char_ok(char c, bool first)
{
	if (c == '_' || (c >= 'A' && c <= 'Z'))
		return true;
	return !first && c >= '0' && c <= '9';
}

void aml_name_string(struct aml *a, const char *path)
{
	uint8_t segs[255][4];
	unsigned nseg = 0;
	const char *p = path;

	if (a->error)
		return;
	if (*p == '\\') {
		put8(a, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == '^') {
			put8(a, AML_PARENT_PREFIX);
			p++;
		}
	}
	while (*p) {
		unsigned n = 0;
		if (nseg == 255) {
			fail(a, -E2BIG);
			return;
		}
		while (*p && *p != '.') {
			if (n == 4 || !seg_char_ok(*p, n == 0)) {
				fail(a, -EINVAL);
				return;
			}
			segs[nseg][n++] = (uint8_t)*p++;
		}
		if (n == 0) { /* empty segment: "..", a leading or a trailing dot */
			fail(a, -EINVAL);
			return;
		}
		while (n < 4)
			segs[nseg][n++] = '_';
		nseg++;
		if (*p == '.') {
			p++;
			if (!*p) {
				fail(a, -EINVAL);
				return;
			}
		}
	}
	if (nseg == 0)
		put8(a, 0x00); /* NullName: "\\" alone is the root */
	else if (nseg == 2)
		put8(a, AML_DUAL_NAME_PREFIX);
	else if (nseg > 2) {
		put8(a, AML_MULTI_NAME_PREFIX);
		put8(a, (uint8_t)nseg);
	}
	aml_bytes(a, segs, 4 * (size_t)nseg);
}

void aml_name_ref(struct aml *a, const char *path)
{
	count_element(a);
	aml_name_string(a, path);
}

void aml_name(struct aml *a, const char *path)
{
	put8(a, AML_NAME_OP);
	aml_name_string(a, path);
}

void aml_return(struct aml *a)
{
	put8(a, AML_RETURN_OP);
}

static void push(struct aml *a, enum frame_kind kind)
{
	if (a->error)
		return;
	if (a->depth == AML_MAX_DEPTH) {
		fail(a, -E2BIG);
		return;
	}
	a->stack[a->depth++] = (struct aml_frame){.pkg_pos = a->len, .kind = kind};
}

void aml_scope_begin(struct aml *a, const char *path)
{
	put8(a, AML_SCOPE_OP);
	push(a, FRAME_SCOPE);
	aml_name_string(a, path);
}

void aml_device_begin(struct aml *a, const char *path)
{
	put8(a, AML_EXT_OP_PREFIX);
	put8(a, AML_DEVICE_OP);
	push(a, FRAME_DEVICE);
	aml_name_string(a, path);
}

void aml_method_begin(struct aml *a, const char *path, unsigned nargs, bool serialized)
{
	if (nargs > 7) {
		fail(a, -EINVAL);
		return;
	}
	put8(a, AML_METHOD_OP);
	push(a, FRAME_METHOD);
	aml_name_string(a, path);
	put8(a, (uint8_t)(nargs | (serialized ? 1u << 3 : 0))); /* MethodFlags, SyncLevel 0 */
}

void aml_package_begin(struct aml *a)
{
	count_element(a);
	put8(a, AML_PACKAGE_OP);
	push(a, FRAME_PACKAGE);
}

void aml_buffer_begin(struct aml *a)
{
	count_element(a);
	put8(a, AML_BUFFER_OP);
	push(a, FRAME_BUFFER);
}

void aml_rt_begin(struct aml *a)
{
	count_element(a);
	put8(a, AML_BUFFER_OP);
	push(a, FRAME_RT);
}

void aml_end(struct aml *a)
{
	uint8_t hdr[4 + 9];
	unsigned prefix_len = 0;
	uint8_t prefix[9];

	if (a->error)
		return;
	if (a->depth == 0) {
		fail(a, -EINVAL);
		return;
	}
	struct aml_frame *f = &a->stack[a->depth - 1];
	if (f->kind == FRAME_RT) {
		/* End Tag; a zero checksum means "treat as valid" (section 6.4.2.9) */
		uint8_t end[2] = {RES_END_TAG, 0};
		aml_bytes(a, end, 2);
		if (a->error)
			return;
	}
	size_t body = a->len - f->pkg_pos;
	if (f->kind == FRAME_PACKAGE) {
		if (f->elements > 255) { /* would need a VarPackage; nothing here is that big */
			fail(a, -E2BIG);
			return;
		}
		prefix[0] = (uint8_t)f->elements;
		prefix_len = 1;
	} else if (f->kind == FRAME_BUFFER || f->kind == FRAME_RT) {
		prefix_len = encode_integer(body, prefix);
	}
	int n = aml_encode_pkglength(body + prefix_len, hdr);
	if (n < 0) {
		fail(a, n);
		return;
	}
	memcpy(hdr + n, prefix, prefix_len);
	size_t ins = (size_t)n + prefix_len;
	if (!reserve(a, ins))
		return;
	memmove(a->data + f->pkg_pos + ins, a->data + f->pkg_pos, body);
	memcpy(a->data + f->pkg_pos, hdr, ins);
	a->len += ins;
	a->depth--;
}

static bool in_rt(struct aml *a)
{
	if (a->depth && a->stack[a->depth - 1].kind == FRAME_RT)
		return true;
	fail(a, -EINVAL);
	return false;
}

void aml_rt_io(struct aml *a, uint16_t base, uint8_t len)
{
	if (!in_rt(a))
		return;
	/* Decode16, min == max == base, alignment 1 */
	uint8_t d[8] = {
	    RES_IO, 0x01, (uint8_t)base, (uint8_t)(base >> 8), (uint8_t)base, (uint8_t)(base >> 8),
	    0x01,   len};
	aml_bytes(a, d, sizeof(d));
}

void aml_rt_irq(struct aml *a, unsigned irq)
{
	if (irq > 15) {
		fail(a, -EINVAL);
		return;
	}
	if (!in_rt(a))
		return;
	uint16_t mask = (uint16_t)(1u << irq);
	uint8_t d[3] = {RES_IRQ, (uint8_t)mask, (uint8_t)(mask >> 8)};
	aml_bytes(a, d, sizeof(d));
}

void aml_rt_irq_flags(struct aml *a, unsigned irq, bool level, bool low, bool shared)
{
	if (irq > 15) {
		fail(a, -EINVAL);
		return;
	}
	if (!in_rt(a))
		return;
	uint16_t mask = (uint16_t)(1u << irq);
	/* bit 0 edge (1) / level (0), bit 3 active low, bit 4 shared */
	uint8_t flags = (uint8_t)((level ? 0 : 1) | (low ? 1 << 3 : 0) | (shared ? 1 << 4 : 0));
	uint8_t d[4] = {RES_IRQ | 1, (uint8_t)mask, (uint8_t)(mask >> 8), flags};
	aml_bytes(a, d, sizeof(d));
}

static void large_hdr(struct aml *a, uint8_t tag, uint16_t len)
{
	uint8_t d[3] = {tag, (uint8_t)len, (uint8_t)(len >> 8)};
	aml_bytes(a, d, sizeof(d));
}

void aml_rt_ext_irq(struct aml *a, uint32_t gsi, bool level, bool low, bool shared)
{
	if (!in_rt(a))
		return;
	/* bit 0 consumer, bit 1 edge (1) / level (0), bit 2 active low, bit 3 shared */
	uint8_t flags =
	    (uint8_t)(1 | (level ? 0 : 1 << 1) | (low ? 1 << 2 : 0) | (shared ? 1 << 3 : 0));
	large_hdr(a, RES_EXT_IRQ, 6);
	put8(a, flags);
	put8(a, 1); /* one interrupt */
	put_le(a, gsi, 4);
}

void aml_rt_mem32_fixed(struct aml *a, uint32_t base, uint32_t len, bool writable)
{
	if (!in_rt(a))
		return;
	large_hdr(a, RES_MEM32_FIXED, 9);
	put8(a, writable ? 1 : 0);
	put_le(a, base, 4);
	put_le(a, len, 4);
}

/* Word/DWord/QWord address space descriptors share one layout (section 6.4.3.5): type,
 * general flags, type-specific flags, then granularity, min, max, translation and length,
 * each `width` bytes. */
static void addr_space(struct aml *a, uint8_t tag, unsigned width, uint8_t type, uint8_t tflags,
		       uint64_t min, uint64_t max)
{
	if (!in_rt(a))
		return;
	if (max < min) {
		fail(a, -EINVAL);
		return;
	}
	large_hdr(a, tag, (uint16_t)(3 + 5 * width));
	put8(a, type);
	put8(a, ADDR_GEN_MIN_FIXED | ADDR_GEN_MAX_FIXED); /* producer, positive decode */
	put8(a, tflags);
	put_le(a, 0, width); /* granularity */
	put_le(a, min, width);
	put_le(a, max, width);
	put_le(a, 0, width); /* translation offset */
	put_le(a, max - min + 1, width);
}

void aml_rt_word_bus(struct aml *a, uint16_t min, uint16_t max)
{
	addr_space(a, RES_WORD_ADDR, 2, ADDR_TYPE_BUS, 0, min, max);
}

void aml_rt_word_io(struct aml *a, uint16_t min, uint16_t max)
{
	addr_space(a, RES_WORD_ADDR, 2, ADDR_TYPE_IO, 0x03 /* EntireRange */, min, max);
}

/* Memory type-specific flags: bit 0 read-write; bits 1-2 are 0 non-cacheable, 3 prefetchable */
void aml_rt_dword_mem(struct aml *a, uint32_t min, uint32_t max, bool prefetchable)
{
	addr_space(a, RES_DWORD_ADDR, 4, ADDR_TYPE_MEM, prefetchable ? 0x07 : 0x01, min, max);
}

void aml_rt_qword_mem(struct aml *a, uint64_t min, uint64_t max, bool prefetchable)
{
	if (min == 0 && max == UINT64_MAX) { /* length would wrap to 0 */
		fail(a, -EINVAL);
		return;
	}
	addr_space(a, RES_QWORD_ADDR, 8, ADDR_TYPE_MEM, prefetchable ? 0x07 : 0x01, min, max);
}

/* Unit tests for vmm/aml.c: PkgLength encoding at every size boundary, integer encodings,
 * name strings, EISA ids, packages, methods, resource descriptors and error handling.
 * The whole-DSDT check against iasl is in test_acpi.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/aml.h"

/* Decode a PkgLength as an AML interpreter does (ACPI 6.4 section 20.2.4). */
static size_t decode_pkglength(const uint8_t *p, unsigned *nbytes)
{
	unsigned follow = p[0] >> 6;
	*nbytes = follow + 1;
	if (!follow)
		return p[0] & 0x3f;
	size_t v = p[0] & 0x0f;
	for (unsigned i = 1; i <= follow; i++)
		v |= (size_t)p[i] << (4 + 8 * (i - 1));
	return v;
}

static void pkglength_edges(void **state)
{
	uint8_t b[4];
	/* body length, expected encoded size */
	const struct {
		size_t body;
		int n;
	} cases[] = {
	    {0, 1},
	    {1, 1},
	    {62, 1},
	    {63, 2},
	    {64, 2},
	    {4093, 2},
	    {4094, 3},
	    {4095, 3},
	    {(1 << 20) - 4, 3},
	    {(1 << 20) - 3, 4},
	    {(1 << 28) - 5, 4},
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = aml_encode_pkglength(cases[i].body, b);
		assert_int_equal(n, cases[i].n);
		unsigned nb;
		size_t v = decode_pkglength(b, &nb);
		assert_int_equal(nb, (unsigned)n);
		assert_int_equal(v, cases[i].body + (size_t)n); /* counts its own bytes */
		if (n > 1)
			assert_int_equal(b[0] & 0x30, 0); /* bits 4-5 reserved in multi-byte form */
	}
	assert_int_equal(aml_encode_pkglength(62, b), 1);
	assert_int_equal(b[0], 0x3f);
	assert_int_equal(aml_encode_pkglength(63, b), 2);
	assert_int_equal(b[0], 0x41); /* 65 = 0x41: low nibble 1, one follow byte */
	assert_int_equal(b[1], 0x04);
	assert_int_equal(aml_encode_pkglength((1 << 28) - 4, b), -E2BIG);
}

/* A Buffer of k bytes: its PkgLength must cover exactly the rest of the output. */
static void buffer_sizes(void **state)
{
	const size_t sizes[] = {0,
				1,
				57,
				58,
				59,
				60,
				61,
				4085,
				4086,
				4087,
				4088,
				4089,
				65536,
				(1 << 20) - 8,
				(1 << 20) - 2,
				1 << 21};
	uint8_t *fill = calloc(1, 1 << 21);
	assert_non_null(fill);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct aml a;
		aml_init(&a);
		aml_buffer_begin(&a);
		aml_bytes(&a, fill, sizes[i]);
		aml_end(&a);
		assert_int_equal(aml_status(&a), 0);
		assert_int_equal(a.data[0], 0x11); /* BufferOp */
		unsigned nb;
		size_t len = decode_pkglength(a.data + 1, &nb);
		assert_int_equal(len, a.len - 1);
		/* BufferSize follows as an integer */
		const uint8_t *bs = a.data + 1 + nb;
		uint64_t n;
		if (bs[0] == 0x00)
			n = 0;
		else if (bs[0] == 0x01)
			n = 1;
		else if (bs[0] == 0x0a)
			n = bs[1];
		else if (bs[0] == 0x0b)
			n = bs[1] | bs[2] << 8;
		else {
			assert_int_equal(bs[0], 0x0c);
			n = bs[1] | bs[2] << 8 | (uint64_t)bs[3] << 16 | (uint64_t)bs[4] << 24;
		}
		assert_int_equal(n, sizes[i]);
		aml_free(&a);
	}
	free(fill);
}

static void expect(struct aml *a, const void *bytes, size_t n)
{
	assert_int_equal(aml_status(a), 0);
	assert_int_equal(a->len, n);
	assert_memory_equal(a->data, bytes, n);
	aml_free(a);
	aml_init(a);
}

static void integers(void **state)
{
	struct aml a;
	aml_init(&a);
	aml_integer(&a, 0);
	expect(&a, "\x00", 1);
	aml_integer(&a, 1);
	expect(&a, "\x01", 1);
	aml_integer(&a, UINT64_MAX);
	expect(&a, "\xff", 1);
	aml_integer(&a, 2);
	expect(&a, "\x0a\x02", 2);
	aml_integer(&a, 0xff);
	expect(&a, "\x0a\xff", 2);
	aml_integer(&a, 0x100);
	expect(&a, "\x0b\x00\x01", 3);
	aml_integer(&a, 0xffff);
	expect(&a, "\x0b\xff\xff", 3);
	aml_integer(&a, 0x10000);
	expect(&a, "\x0c\x00\x00\x01\x00", 5);
	aml_integer(&a, 0xffffffff);
	expect(&a, "\x0c\xff\xff\xff\xff", 5);
	aml_integer(&a, 0x100000000ULL);
	expect(&a, "\x0e\x00\x00\x00\x00\x01\x00\x00\x00", 9);
	aml_string(&a, "QEMU0002");
	expect(&a, "\x0dQEMU0002\x00", 10);
	aml_free(&a);
}

static void names(void **state)
{
	struct aml a;
	aml_init(&a);
	aml_name_string(&a, "_HID");
	expect(&a, "_HID", 4);
	aml_name_string(&a, "KBD");
	expect(&a, "KBD_", 4);
	aml_name_string(&a, "\\_SB.PCI0");
	expect(&a, "\\\x2e_SB_PCI0", 10);
	aml_name_string(&a, "\\_SB.PCI0.S08");
	expect(&a, "\\\x2f\x03_SB_PCI0S08_", 15);
	aml_name_string(&a, "^^LNKA");
	expect(&a, "^^LNKA", 6);
	aml_name_string(&a, "\\");
	expect(&a, "\\\x00", 2);
	aml_eisaid(&a, "PNP0A03");
	expect(&a, "\x0c\x41\xd0\x0a\x03", 5);
	aml_eisaid(&a, "PNP0501");
	expect(&a, "\x0c\x41\xd0\x05\x01", 5);
	aml_name(&a, "_UID");
	aml_integer(&a, 2);
	expect(&a, "\x08_UID\x0a\x02", 7);

	/* Bad names fail and stay failed. */
	const char *bad[] = {"abcd", "TOOLONG", "A..B", ".ABC", "ABC.", "1ABC", "\\^A", "A-B"};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_name_string(&a, bad[i]);
		assert_int_equal(aml_status(&a), -EINVAL);
		aml_integer(&a, 5); /* ignored after the error */
		assert_int_equal(aml_status(&a), -EINVAL);
		aml_free(&a);
		aml_init(&a);
	}
	aml_eisaid(&a, "pnp0a03");
	assert_int_equal(aml_status(&a), -EINVAL);
	aml_free(&a);
}

static void packages_and_methods(void **state)
{
	struct aml a;
	aml_init(&a);
	/* Package{1, Package{2, "s"}, 0x300}: element counts are per level */
	aml_package_begin(&a);
	aml_integer(&a, 1);
	aml_package_begin(&a);
	aml_integer(&a, 2);
	aml_string(&a, "s");
	aml_end(&a);
	aml_integer(&a, 0x300);
	aml_end(&a);
	static const uint8_t pkg[] = {0x12, 0x0e, 0x03, 0x01, 0x12, 0x07, 0x02, 0x0a,
				      0x02, 0x0d, 's',	0x00, 0x0b, 0x00, 0x03};
	expect(&a, pkg, sizeof(pkg));

	/* Method(_STA, 0, NotSerialized) { Return (0x0F) } */
	aml_method_begin(&a, "_STA", 0, false);
	aml_return(&a);
	aml_integer(&a, 0x0f);
	aml_end(&a);
	expect(&a, "\x14\x09_STA\x00\xa4\x0a\x0f", 10);
	aml_method_begin(&a, "_PS0", 1, true);
	aml_end(&a);
	expect(&a, "\x14\x06_PS0\x09", 7);

	/* Device(\_SB.COM1) { Name(_HID, EisaId("PNP0501")) } inside Scope(\) */
	aml_scope_begin(&a, "\\");
	aml_device_begin(&a, "\\_SB.COM1");
	aml_name(&a, "_HID");
	aml_eisaid(&a, "PNP0501");
	aml_end(&a);
	aml_end(&a);
	static const uint8_t dev[] = {0x10, 0x1a, '\\', 0x00, 0x5b, 0x82, 0x15, '\\', 0x2e,
				      '_',  'S',  'B',	'_',  'C',  'O',  'M',	'1',  0x08,
				      '_',  'H',  'I',	'D',  0x0c, 0x41, 0xd0, 0x05, 0x01};
	expect(&a, dev, sizeof(dev));
	aml_free(&a);
}

static void package_element_limit(void **state)
{
	struct aml a;
	aml_init(&a);
	aml_package_begin(&a);
	for (int i = 0; i < 255; i++)
		aml_integer(&a, 0);
	aml_end(&a);
	assert_int_equal(aml_status(&a), 0);
	assert_int_equal(a.data[a.len - 256], 255); /* NumElements just before the elements */
	aml_package_begin(&a);
	for (int i = 0; i < 256; i++)
		aml_integer(&a, 0);
	aml_end(&a);
	assert_int_equal(aml_status(&a), -E2BIG);
	aml_free(&a);
}

static void resources(void **state)
{
	struct aml a;
	aml_init(&a);
	aml_rt_begin(&a);
	aml_rt_io(&a, 0x3f8, 8);
	aml_rt_irq(&a, 4);
	aml_end(&a);
	/* Buffer(0x0D){IO(Decode16,0x3f8,0x3f8,1,8), IRQNoFlags(){4}, EndTag} */
	static const uint8_t rt[] = {0x11, 0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8,
				     0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00};
	expect(&a, rt, sizeof(rt));

	aml_rt_begin(&a);
	aml_rt_word_bus(&a, 0, 0xff);
	aml_rt_dword_mem(&a, 0xc0000000, 0xfebfffff, false);
	aml_rt_qword_mem(&a, 1ULL << 39, (1ULL << 40) - 1, true);
	aml_rt_ext_irq(&a, 40, true, true, true);
	aml_rt_irq_flags(&a, 9, true, false, true);
	aml_rt_mem32_fixed(&a, 0xb0000000, 0x10000000, true);
	aml_end(&a);
	assert_int_equal(aml_status(&a), 0);
	const uint8_t *d = a.data + 5; /* BufferOp, 2-byte PkgLength, BytePrefix size */
	/* WordBusNumber: tag 0x88, length 13, type 2, producer MinFixed MaxFixed, len 0x100 */
	assert_int_equal(d[0], 0x88);
	assert_int_equal(d[1], 13);
	assert_int_equal(d[3], 2);
	assert_int_equal(d[4], 0x0c);
	assert_int_equal(d[14] | d[15] << 8, 0x100);
	d += 16;
	assert_int_equal(d[0], 0x87); /* DWordMemory, length 23, RW non-cacheable */
	assert_int_equal(d[1], 23);
	assert_int_equal(d[5], 0x01);
	assert_int_equal(d[22] | d[23] << 8 | d[24] << 16 | (uint32_t)d[25] << 24, 0x3ec00000);
	d += 26;
	assert_int_equal(d[0], 0x8a); /* QWordMemory, length 43, prefetchable */
	assert_int_equal(d[1], 43);
	assert_int_equal(d[5], 0x07);
	assert_int_equal(d[38 + 4], 0x80); /* length 2^39: byte 4 of the length field */
	d += 46;
	/* Extended interrupt: consumer, level, active low, shared; one GSI */
	static const uint8_t ext[] = {0x89, 6, 0, 0x0d, 1, 40, 0, 0, 0};
	assert_memory_equal(d, ext, sizeof(ext));
	d += sizeof(ext);
	static const uint8_t irqf[] = {0x23, 0x00, 0x02, 0x10};
	assert_memory_equal(d, irqf, sizeof(irqf));
	d += sizeof(irqf);
	static const uint8_t m32[] = {0x86, 9, 0, 1, 0, 0, 0, 0xb0, 0, 0, 0, 0x10};
	assert_memory_equal(d, m32, sizeof(m32));
	d += sizeof(m32);
	assert_int_equal(d[0], 0x79);
	assert_int_equal(d + 2, a.data + a.len);
	aml_free(&a);

	/* Descriptors outside a ResourceTemplate, bad IRQs and empty ranges are errors. */
	aml_init(&a);
	aml_rt_io(&a, 0x60, 1);
	assert_int_equal(aml_status(&a), -EINVAL);
	aml_free(&a);
	aml_init(&a);
	aml_rt_begin(&a);
	aml_rt_irq(&a, 16);
	assert_int_equal(aml_status(&a), -EINVAL);
	aml_free(&a);
	aml_init(&a);
	aml_rt_begin(&a);
	aml_rt_word_io(&a, 0x100, 0xff);
	assert_int_equal(aml_status(&a), -EINVAL);
	aml_free(&a);
}

static void nesting_errors(void **state)
{
	struct aml a;
	aml_init(&a);
	aml_end(&a); /* nothing open */
	assert_int_equal(aml_status(&a), -EINVAL);
	aml_free(&a);
	aml_init(&a);
	aml_device_begin(&a, "DEV");
	assert_int_equal(aml_status(&a), -EINVAL); /* left open */
	aml_end(&a);
	assert_int_equal(aml_status(&a), 0);
	aml_free(&a);
	aml_init(&a);
	for (int i = 0; i <= AML_MAX_DEPTH; i++)
		aml_package_begin(&a);
	assert_int_equal(aml_status(&a), -E2BIG);
	aml_free(&a);
	aml_init(&a);
	aml_method_begin(&a, "MTH", 8, false);
	assert_int_equal(aml_status(&a), -EINVAL);
	aml_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pkglength_edges),
	    cmocka_unit_test(buffer_sizes),
	    cmocka_unit_test(integers),
	    cmocka_unit_test(names),
	    cmocka_unit_test(packages_and_methods),
	    cmocka_unit_test(package_element_limit),
	    cmocka_unit_test(resources),
	    cmocka_unit_test(nesting_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

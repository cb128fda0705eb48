/* A small AML (ACPI Machine Language) byte-code builder for the DSDT.
 *
 * Follows ACPI 6.4 chapter 20 "ACPI Machine Language (AML) Specification" (name strings 20.2.2,
 * package length 20.2.4, data objects 20.2.3, named objects 20.2.5.2) and chapter 6.4
 * "Resource Data Types for ACPI" for the ResourceTemplate descriptors.
 *
 * The builder appends to a growing byte buffer. Constructs that carry a PkgLength (Scope,
 * Device, Method, Package, Buffer/ResourceTemplate) are opened with *_begin() and closed with
 * aml_end(); the length, and for packages the element count, are filled in at aml_end() with
 * the smallest encoding. Errors are sticky: after the first failure every call is a no-op and
 * aml_status() returns it, so a caller checks once at the end.
 *
 *	aml_scope_begin(a, "\\_SB");
 *	aml_device_begin(a, "COM1");
 *	aml_name(a, "_HID"); aml_eisaid(a, "PNP0501");
 *	aml_name(a, "_CRS"); aml_rt_begin(a); aml_rt_io(a, 0x3f8, 8); aml_rt_irq(a, 4); aml_end(a);
 *	aml_end(a); aml_end(a);
 */
#ifndef KESTREL_VMM_AML_H
#define KESTREL_VMM_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16

struct aml_frame {
	size_t pkg_pos;	   /* where the PkgLength goes (just after the opcode) */
	unsigned kind;	   /* what aml_end() closes */
	unsigned elements; /* packages: elements emitted directly inside */
};

struct aml {
	uint8_t *data;
	size_t len, cap;
	struct aml_frame stack[AML_MAX_DEPTH];
	unsigned depth;
	int error; /* sticky negative errno */
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
/* 0, or the first error: -ENOMEM, -EINVAL (bad name, unbalanced end), -E2BIG (too deep/long). */
int aml_status(const struct aml *a);

/* Encode a PkgLength for a body of body_len bytes (the PkgLength counts itself) into out[4].
 * Returns the number of bytes (1-4), or -E2BIG if the total does not fit in 28 bits. */
int aml_encode_pkglength(size_t body_len, uint8_t out[4]);

/* Raw bytes (the caller knows the encoding). */
void aml_bytes(struct aml *a, const void *p, size_t n);

/* Data objects; inside a package each counts as one element. */
void aml_integer(struct aml *a, uint64_t v); /* Zero/One/Ones or the smallest prefix */
void aml_string(struct aml *a, const char *s);
void aml_eisaid(struct aml *a, const char *id); /* "PNP0A03" as a compressed EISA id DWord */
/* A name used as a data object (a reference), e.g. a _PRT source "^LNKA". */
void aml_name_ref(struct aml *a, const char *path);

/* A NameString: "\\_SB.PCI0", "^FOO", "_HID"; segments of 1-4 of [A-Z0-9_] padded with '_'. */
void aml_name_string(struct aml *a, const char *path);

/* Name(path, <next data object>) */
void aml_name(struct aml *a, const char *path);
/* Return(<next term>) */
void aml_return(struct aml *a);

void aml_scope_begin(struct aml *a, const char *path);
void aml_device_begin(struct aml *a, const char *path);
void aml_method_begin(struct aml *a, const char *path, unsigned nargs, bool serialized);
void aml_package_begin(struct aml *a);
void aml_buffer_begin(struct aml *a); /* Buffer(){bytes}: add bytes with aml_bytes */
void aml_end(struct aml *a);

/* ResourceTemplate(): a Buffer whose aml_end() appends the End Tag. */
void aml_rt_begin(struct aml *a);

/* Resource descriptors (ACPI 6.4 section 6.4.2 small, 6.4.3 large); only inside aml_rt_begin. */
void aml_rt_io(struct aml *a, uint16_t base, uint8_t len); /* IO(Decode16,b,b,1,len) */
void aml_rt_irq(struct aml *a, unsigned irq);		   /* IRQNoFlags(){irq} */
void aml_rt_irq_flags(struct aml *a, unsigned irq, bool level, bool low, bool shared);
void aml_rt_ext_irq(struct aml *a, uint32_t gsi, bool level, bool low, bool shared);
void aml_rt_mem32_fixed(struct aml *a, uint32_t base, uint32_t len, bool writable);
/* Address space descriptors, all ResourceProducer, MinFixed, MaxFixed, PosDecode. */
void aml_rt_word_bus(struct aml *a, uint16_t min, uint16_t max);
void aml_rt_word_io(struct aml *a, uint16_t min, uint16_t max);
void aml_rt_dword_mem(struct aml *a, uint32_t min, uint32_t max, bool prefetchable);
void aml_rt_qword_mem(struct aml *a, uint64_t min, uint64_t max, bool prefetchable);

#endif

/* Unit tests for accel/kvm/kvm_cpuid.c: the per-vCPU rewrite of KVM's supported CPUID
 * (APIC IDs, topology leaves, hypervisor bit and signature), including the field widths
 * at the largest --cpus. No /dev/kvm needed: only the entry rewrite is tested. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "../../accel/kvm/kvm_int.h" /* internal: the tested function is not public */

static struct kvm_cpuid_entry2 patched(uint32_t fn, uint32_t index, unsigned apic_id, unsigned nr)
{
	/* Host-like input: leaf 4 with a cache type, leaf 1 with family bits in EBX[15:0]. */
	struct kvm_cpuid_entry2 e = {.function = fn, .index = index};
	if (fn == 0x1)
		e.ebx = 0x00000800; /* CLFLUSH line size 8 */
	if (fn == 0x4)
		e.eax = 0x121; /* level 1 data cache */
	kvm_cpuid_patch_entry(&e, apic_id, nr);
	return e;
}

static void leaf1_apic_id_and_count(void **state)
{
	(void)state;
	struct kvm_cpuid_entry2 e = patched(0x1, 0, 3, 4);
	assert_int_equal(e.ebx >> 24, 3);
	assert_int_equal((e.ebx >> 16) & 0xff, 4);
	assert_int_equal(e.ebx & 0xffff, 0x800); /* the rest of EBX is kept */
	assert_true(e.ecx & (1u << 31));	 /* hypervisor */
	assert_true(e.edx & (1u << 28));	 /* HTT: several logical CPUs */

	e = patched(0x1, 0, 0, 1);
	assert_false(e.edx & (1u << 28));

	/* The logical-processor count is 8 bits: 255 vCPUs must not spill into the APIC ID. */
	e = patched(0x1, 0, 7, 255);
	assert_int_equal(e.ebx >> 24, 7);
	assert_int_equal((e.ebx >> 16) & 0xff, 255);
}

static void leaf4_cores(void **state)
{
	(void)state;
	struct kvm_cpuid_entry2 e = patched(0x4, 0, 0, 4);
	assert_int_equal(e.eax >> 26, 3);
	assert_int_equal(e.eax & 0x3fff, 0x121);
	e = patched(0x4, 0, 0, 255); /* 6 bits: at most 64 cores */
	assert_int_equal(e.eax >> 26, 63);
}

static void leaf_b_topology(void **state)
{
	(void)state;
	struct kvm_cpuid_entry2 smt = patched(0xb, 0, 5, 6);
	struct kvm_cpuid_entry2 core = patched(0xb, 1, 5, 6);
	struct kvm_cpuid_entry2 end = patched(0xb, 2, 5, 6);
	assert_int_equal(smt.edx, 5);
	assert_int_equal(smt.eax, 0); /* one thread per core: no SMT bits */
	assert_int_equal(smt.ebx, 1);
	assert_int_equal((smt.ecx >> 8) & 0xff, 1); /* level type SMT */
	assert_int_equal(core.eax, 3);		    /* 6 cores need 3 APIC-ID bits */
	assert_int_equal(core.ebx, 6);
	assert_int_equal((core.ecx >> 8) & 0xff, 2); /* level type core */
	assert_int_equal((end.ecx >> 8) & 0xff, 0);  /* invalid: the list ends */
	assert_int_equal(end.ecx & 0xff, 2);
}

static void amd_topology(void **state)
{
	(void)state;
	/* Every vCPU is its own core: Linux reads core_id from 8000001Eh EBX[7:0] on AMD. */
	for (unsigned id = 0; id < 4; id++) {
		struct kvm_cpuid_entry2 e = patched(0x8000001e, 0, id, 4);
		assert_int_equal(e.eax, id);
		assert_int_equal(e.ebx & 0xff, id);
		assert_int_equal((e.ebx >> 8) & 0xff, 0); /* threads per core - 1 */
	}
	struct kvm_cpuid_entry2 e = patched(0x80000008, 0, 0, 4);
	assert_int_equal(e.ecx & 0xff, 3);	  /* NC: cores - 1 */
	assert_int_equal((e.ecx >> 12) & 0xf, 2); /* ApicIdSize */
}

static void kvm_signature(void **state)
{
	(void)state;
	struct kvm_cpuid_entry2 e = patched(0x40000000, 0, 0, 1);
	char sig[13] = {0};
	memcpy(sig, &e.ebx, 4);
	memcpy(sig + 4, &e.ecx, 4);
	memcpy(sig + 8, &e.edx, 4);
	assert_string_equal(sig, "KVMKVMKVM");
	assert_true(e.eax >= 0x40000001);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(leaf1_apic_id_and_count), cmocka_unit_test(leaf4_cores),
	    cmocka_unit_test(leaf_b_topology),	       cmocka_unit_test(amd_topology),
	    cmocka_unit_test(kvm_signature),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

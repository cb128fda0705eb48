/* CPUID policy under KVM: what KVM_GET_SUPPORTED_CPUID offers, with the hypervisor bit,
 * KVM's paravirt signature and a topology of N single-threaded cores in one package.
 * Topology leaves per Intel SDM vol. 2A "CPUID" (leaves 01h, 04h, 0Bh, 1Fh) and AMD APM
 * vol. 3 (80000008h, 8000001Eh). */
#define LOG_SUBSYS "kvm"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm_int.h"
#include "util/log.h"

#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT	       (1u << 28)

int kvm_cpuid_init(struct kvm_state *k)
{
	for (unsigned nent = 128; nent <= 4096; nent *= 2) {
		struct kvm_cpuid2 *c =
		    calloc(1, sizeof(*c) + nent * sizeof(struct kvm_cpuid_entry2));
		if (!c)
			return -ENOMEM;
		c->nent = nent;
		if (ioctl(k->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			k->cpuid = c;
			return 0;
		}
		int err = errno;
		free(c);
		if (err != E2BIG) {
			log_error("KVM_GET_SUPPORTED_CPUID: %s", strerror(err));
			return -err;
		}
	}
	return -E2BIG;
}

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

/* Rewrite one supported-CPUID entry for the vCPU with `apic_id` out of `nr` vCPUs. */
void kvm_cpuid_patch_entry(struct kvm_cpuid_entry2 *e, unsigned apic_id, unsigned nr)
{
	switch (e->function) {
	case 0x1:
		/* EBX[23:16]: addressable logical processors in the package, 8 bits wide. */
		e->ebx = (e->ebx & 0x0000ffff) | ((nr > 0xff ? 0xff : nr) << 16) | (apic_id << 24);
		e->ecx |= CPUID_1_ECX_HYPERVISOR;
		if (nr > 1)
			e->edx |= CPUID_1_EDX_HTT;
		else
			e->edx &= ~CPUID_1_EDX_HTT;
		break;
	case 0x4:
		/* Cores per package - 1 in EAX[31:26]; each cache private to one thread. */
		if (e->eax & 0x1f)
			e->eax = (e->eax & 0x3fff) | ((nr > 64 ? 63 : nr - 1) << 26);
		break;
	case 0xb:
	case 0x1f:
		e->edx = apic_id;
		if (e->index == 0) { /* SMT level: one thread per core */
			e->eax = 0;
			e->ebx = 1;
			e->ecx = (1u << 8) | 0;
		} else if (e->index == 1) { /* core level: nr cores */
			e->eax = bits_for(nr);
			e->ebx = nr;
			e->ecx = (2u << 8) | 1;
		} else {
			e->eax = e->ebx = 0;
			e->ecx = e->index;
		}
		break;
	case 0x40000000:
		/* "KVMKVMKVM\0\0\0": the guest's kvmclock and paravirt features key on it. */
		e->ebx = 0x4b4d564b;
		e->ecx = 0x564b4d56;
		e->edx = 0x0000004d;
		if (e->eax < 0x40000001)
			e->eax = 0x40000001;
		break;
	case 0x80000008:
		e->ecx = (e->ecx & ~0xffu & ~0xf000u) | (nr - 1) | (bits_for(nr) << 12);
		break;
	case 0x8000001e:
		/* Extended APIC ID; core ID in EBX[7:0] with one thread per core (EBX[15:8] = 0);
		 * node 0 of one. Linux (family 17h+) takes each CPU's core_id from EBX[7:0]. */
		e->eax = apic_id;
		e->ebx = apic_id & 0xff;
		e->ecx = 0;
		break;
	}
}

int kvm_cpuid_setup(struct kvm_state *k, struct vcpu *v, unsigned nr_vcpus)
{
	struct kvm_vcpu_state *vs = v->priv;
	size_t sz = sizeof(*k->cpuid) + k->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
	struct kvm_cpuid2 *c = malloc(sz);
	if (!c)
		return -ENOMEM;
	memcpy(c, k->cpuid, sz);
	for (unsigned i = 0; i < c->nent; i++)
		kvm_cpuid_patch_entry(&c->entries[i], v->index, nr_vcpus);
	int ret = ioctl(vs->fd, KVM_SET_CPUID2, c) < 0 ? -errno : 0;
	if (ret)
		log_error("KVM_SET_CPUID2 on vCPU %u: %s", v->index, strerror(-ret));
	free(c);
	return ret;
}

/* State shared between the KVM accelerator's files; nothing outside accel/kvm sees it. */
#ifndef KESTREL_ACCEL_KVM_INT_H
#define KESTREL_ACCEL_KVM_INT_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>

#include "accel/accel.h"

/* MSI routes beyond the IOAPIC's 24 GSIs: enough for every MSI-X vector of a few dozen
 * devices; KVM's own limit is 4096 GSIs. */
#define KVM_MAX_MSI_ROUTES 1000

struct kvm_msi_route {
	bool used;
	uint64_t addr;
	uint32_t data;
};

struct kvm_state {
	int kvm_fd, vm_fd;
	int run_mmap_size;
	unsigned nr_slots;
	struct kvm_cpuid2 *cpuid; /* what KVM supports, patched per vCPU at creation */
	uint64_t paused_clock;	  /* kvmclock ns saved by clock_pause */
	bool clock_saved;
	pthread_mutex_t routes_lock;
	struct kvm_msi_route msi_routes[KVM_MAX_MSI_ROUTES]; /* GSI 24 + index */
};

struct kvm_vcpu_state {
	int fd;
	struct kvm_run *run;
	pthread_t thread; /* the thread running it, for kicks */
	atomic_bool has_thread;
};

int kvm_cpuid_init(struct kvm_state *k);
void kvm_cpuid_patch_entry(struct kvm_cpuid_entry2 *e, unsigned apic_id, unsigned nr);
int kvm_cpuid_setup(struct kvm_state *k, struct vcpu *v, unsigned nr_vcpus);

int kvm_vcpu_create(struct accel *a, struct vcpu *v);
void kvm_vcpu_destroy(struct vcpu *v);
int kvm_vcpu_set_boot_state(struct vcpu *v, const struct boot_cpu_state *st);
int kvm_vcpu_run(struct vcpu *v, struct vcpu_exit *exit);
void kvm_vcpu_kick(struct vcpu *v);
int kvm_vcpu_dump(struct vcpu *v, char *buf, size_t len);

int kvm_routing_init(struct kvm_state *k);
int kvm_ioeventfd_set(struct accel *a, const struct accel_ioeventfd *ev, bool assign);
int kvm_irqfd_set(struct accel *a, unsigned gsi, int fd, int resample_fd, bool assign);
int kvm_msi_route_set(struct accel *a, int gsi, uint64_t addr, uint32_t data);
void kvm_msi_route_free(struct accel *a, int gsi);

#endif

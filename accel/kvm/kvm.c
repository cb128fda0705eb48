/* KVM accelerator: VM, memory slots, in-kernel irqchip and PIT, interrupt routing.
 * Follows Documentation/virt/kvm/api.rst. vCPUs are in kvm_vcpu.c. */
#define LOG_SUBSYS "kvm"
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_int.h"
#include "util/log.h"

/* Three pages the VMX code needs below 4 GiB and outside RAM (unused on AMD). They sit
 * just below where a BIOS ROM would be mapped, inside the PCI hole no BAR uses. */
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL
#define KVM_TSS_ADDR	      0xfffbd000ULL

/* Whether the CPU advertises hardware virtualisation. A /dev/kvm without it is a
 * software-only KVM (PVM and the like) that cannot boot a stock kernel: a guest started on
 * it makes no progress, so it must not be picked as if it were the real thing. */
static bool cpu_has_hw_virt(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[4096];
	bool found = false;
	if (!f)
		return true; /* cannot tell: let KVM itself decide */
	while (!found && fgets(line, sizeof(line), f))
		if (!strncmp(line, "flags", 5))
			found = strstr(line, " vmx") || strstr(line, " svm");
	fclose(f);
	return found;
}

int kvm_available(char *why, unsigned long why_len)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		const char *hint = err == ENOENT   ? " (no KVM in this kernel, or a VM without "
						     "nested virtualisation)"
				   : err == EACCES ? " (add this user to the 'kvm' group)"
						   : "";
		snprintf(why, why_len, "/dev/kvm: %s%s", strerror(err), hint);
		return -err;
	}
	int version = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (version != KVM_API_VERSION) {
		snprintf(why, why_len, "/dev/kvm: unsupported KVM API version %d", version);
		return -ENOTSUP;
	}
	if (!cpu_has_hw_virt()) {
		snprintf(why, why_len,
			 "/dev/kvm exists but the CPU has no VMX or SVM, so it is a "
			 "software-only KVM that cannot run a stock kernel");
		return -ENOTSUP;
	}
	return 0;
}

static void kvm_set_line(void *opaque, unsigned gsi, bool level)
{
	struct kvm_state *k = opaque;
	struct kvm_irq_level irq = {.irq = gsi, .level = level};
	if (ioctl(k->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_warn("KVM_IRQ_LINE gsi %u level %d: %s", gsi, level, strerror(errno));
}

static void kvm_send_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct kvm_state *k = opaque;
	struct kvm_msi msi = {
	    .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data};
	if (ioctl(k->vm_fd, KVM_SIGNAL_MSI, &msi) < 0)
		log_warn("KVM_SIGNAL_MSI addr %#llx data %#x: %s", (unsigned long long)addr, data,
			 strerror(errno));
}

static const struct irq_router_ops kvm_irq_ops = {
    .set_line = kvm_set_line,
    .send_msi = kvm_send_msi,
};

static int kvm_init(struct accel *a)
{
	struct kvm_state *k = calloc(1, sizeof(*k));
	int ret;
	if (!k)
		return -ENOMEM;
	k->kvm_fd = -1;
	k->vm_fd = -1;
	pthread_mutex_init(&k->routes_lock, NULL);

	k->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->kvm_fd < 0) {
		ret = -errno;
		log_error("cannot open /dev/kvm: %s", strerror(errno));
		goto err;
	}
	k->vm_fd = ioctl(k->kvm_fd, KVM_CREATE_VM, 0);
	if (k->vm_fd < 0) {
		ret = -errno;
		log_error("KVM_CREATE_VM: %s", strerror(errno));
		goto err;
	}
	k->run_mmap_size = ioctl(k->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (k->run_mmap_size <= 0) {
		ret = -EINVAL;
		log_error("KVM_GET_VCPU_MMAP_SIZE failed");
		goto err;
	}
	if (ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) <= 0) {
		ret = -ENOTSUP;
		log_error("this KVM lacks KVM_CAP_IMMEDIATE_EXIT (Linux 4.11+ is needed)");
		goto err;
	}
	if (ioctl(k->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) {
		ret = -errno;
		log_error("KVM_SET_TSS_ADDR: %s", strerror(errno));
		goto err;
	}
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
	if (ioctl(k->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		log_debug("KVM_SET_IDENTITY_MAP_ADDR: %s (harmless on AMD)", strerror(errno));
	if (ioctl(k->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		ret = -errno;
		log_error("KVM_CREATE_IRQCHIP: %s", strerror(errno));
		goto err;
	}
	/* The speaker port is not emulated; a dummy keeps port 0x61 reads sane. */
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
	if (ioctl(k->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		ret = -errno;
		log_error("KVM_CREATE_PIT2: %s", strerror(errno));
		goto err;
	}
	ret = kvm_routing_init(k);
	if (ret < 0)
		goto err;
	ret = kvm_cpuid_init(k);
	if (ret < 0)
		goto err;

	a->priv = k;
	a->irq = (struct irq_router){.ops = &kvm_irq_ops, .opaque = k};
	return 0;
err:
	if (k->vm_fd >= 0)
		close(k->vm_fd);
	if (k->kvm_fd >= 0)
		close(k->kvm_fd);
	pthread_mutex_destroy(&k->routes_lock);
	free(k->cpuid);
	free(k);
	return ret;
}

static void kvm_destroy(struct accel *a)
{
	struct kvm_state *k = a->priv;
	if (!k)
		return;
	/* Devices outlive this VM (a reset builds a new one) and lower their lines while they
	 * reset: until the next init their interrupts go nowhere instead of into freed state. */
	a->irq = (struct irq_router){0};
	close(k->vm_fd);
	close(k->kvm_fd);
	pthread_mutex_destroy(&k->routes_lock);
	free(k->cpuid);
	free(k);
	a->priv = NULL;
}

static int kvm_map_ram(struct accel *a, uint64_t gpa, uint64_t size, void *host)
{
	struct kvm_state *k = a->priv;
	struct kvm_userspace_memory_region region = {
	    .slot = k->nr_slots,
	    .guest_phys_addr = gpa,
	    .memory_size = size,
	    .userspace_addr = (uintptr_t)host,
	};
	if (ioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
		int err = errno;
		log_error("KVM_SET_USER_MEMORY_REGION gpa %#llx size %#llx: %s",
			  (unsigned long long)gpa, (unsigned long long)size, strerror(err));
		return -err;
	}
	k->nr_slots++;
	return 0;
}

static unsigned kvm_max_vcpus(struct accel *a)
{
	struct kvm_state *k = a->priv;
	int n = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (n <= 0)
		n = ioctl(k->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	return n > 0 ? (unsigned)n : 4; /* the API document's floor */
}

/* kvmclock across a pause, as the guest must see it: standing still. KVM_SET_CLOCK makes
 * the clock continue from the saved value instead of the host time that passed. */
static void kvm_clock_pause(struct accel *a)
{
	struct kvm_state *k = a->priv;
	struct kvm_clock_data data = {0};
	if (ioctl(k->vm_fd, KVM_GET_CLOCK, &data) < 0) {
		log_warn("KVM_GET_CLOCK: %s; the guest clock will jump on resume", strerror(errno));
		return;
	}
	k->paused_clock = data.clock;
	k->clock_saved = true;
}

static void kvm_clock_resume(struct accel *a)
{
	struct kvm_state *k = a->priv;
	if (!k->clock_saved)
		return;
	struct kvm_clock_data data = {.clock = k->paused_clock};
	if (ioctl(k->vm_fd, KVM_SET_CLOCK, &data) < 0)
		log_warn("KVM_SET_CLOCK: %s", strerror(errno));
	k->clock_saved = false;
}

const struct accel_ops kvm_accel_ops = {
    .name = "kvm",
    .init = kvm_init,
    .destroy = kvm_destroy,
    .map_ram = kvm_map_ram,
    .max_vcpus = kvm_max_vcpus,
    .vcpu_create = kvm_vcpu_create,
    .vcpu_destroy = kvm_vcpu_destroy,
    .vcpu_set_boot_state = kvm_vcpu_set_boot_state,
    .vcpu_run = kvm_vcpu_run,
    .vcpu_kick = kvm_vcpu_kick,
    .vcpu_dump = kvm_vcpu_dump,
    .clock_pause = kvm_clock_pause,
    .clock_resume = kvm_clock_resume,
    .ioeventfd_set = kvm_ioeventfd_set,
    .irqfd_set = kvm_irqfd_set,
    .msi_route_set = kvm_msi_route_set,
    .msi_route_free = kvm_msi_route_free,
};

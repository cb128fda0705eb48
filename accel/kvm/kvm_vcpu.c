/* KVM vCPUs: creation, boot register state, the KVM_RUN call and kicks.
 * Kicks use KVM_CAP_IMMEDIATE_EXIT plus a signal, so a kick that lands just before KVM_RUN
 * is not lost (api.rst, "immediate_exit"). */
#define LOG_SUBSYS "kvm"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_int.h"
#include "util/log.h"

#define KICK_SIGNAL SIGUSR1

#define APIC_LVT_LINT0	   0x350
#define APIC_LVT_LINT1	   0x360
#define APIC_MODE_NMI	   0x4
#define APIC_MODE_EXTINT   0x7
#define APIC_LVT_MODE_MASK 0x700

static void kick_handler(int sig)
{
	(void)sig; /* its only job is to interrupt KVM_RUN with EINTR */
}

static void install_kick_handler_once(void)
{
	struct sigaction sa = {.sa_handler = kick_handler};
	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL); /* no SA_RESTART: KVM_RUN must return */
}

static void install_kick_handler(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, install_kick_handler_once);
}

/* LINT0 as ExtINT and LINT1 as NMI, the wiring of a PC: the 8259's output reaches the
 * boot CPU before the guest programs its IOAPIC. */
static int setup_lapic_lints(struct kvm_vcpu_state *vs)
{
	struct kvm_lapic_state lapic;
	if (ioctl(vs->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	uint32_t *lint0 = (uint32_t *)&lapic.regs[APIC_LVT_LINT0];
	uint32_t *lint1 = (uint32_t *)&lapic.regs[APIC_LVT_LINT1];
	*lint0 = (*lint0 & ~APIC_LVT_MODE_MASK) | (APIC_MODE_EXTINT << 8);
	*lint1 = (*lint1 & ~APIC_LVT_MODE_MASK) | (APIC_MODE_NMI << 8);
	if (ioctl(vs->fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}

int kvm_vcpu_create(struct accel *a, struct vcpu *v)
{
	struct kvm_state *k = a->priv;
	struct kvm_vcpu_state *vs = calloc(1, sizeof(*vs));
	int ret;
	if (!vs)
		return -ENOMEM;
	install_kick_handler();
	vs->fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, v->index);
	if (vs->fd < 0) {
		ret = -errno;
		log_error("KVM_CREATE_VCPU %u: %s", v->index, strerror(errno));
		goto err_free;
	}
	vs->run = mmap(NULL, k->run_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vs->fd, 0);
	if (vs->run == MAP_FAILED) {
		ret = -errno;
		log_error("mmap of vCPU %u's kvm_run: %s", v->index, strerror(errno));
		goto err_close;
	}
	v->priv = vs;
	v->accel = a;
	ret = kvm_cpuid_setup(k, v, a->nr_vcpus);
	if (ret)
		goto err_unmap;
	ret = setup_lapic_lints(vs);
	if (ret) {
		log_error("setting up vCPU %u's LAPIC: %s", v->index, strerror(-ret));
		goto err_unmap;
	}
	return 0;
err_unmap:
	munmap(vs->run, k->run_mmap_size);
err_close:
	close(vs->fd);
err_free:
	free(vs);
	v->priv = NULL;
	return ret;
}

void kvm_vcpu_destroy(struct vcpu *v)
{
	struct kvm_vcpu_state *vs = v->priv;
	struct kvm_state *k = v->accel->priv;
	if (!vs)
		return;
	munmap(vs->run, k->run_mmap_size);
	close(vs->fd);
	free(vs);
	v->priv = NULL;
}

static void flat_segment(struct kvm_segment *s, uint16_t sel, bool code, bool long64)
{
	*s = (struct kvm_segment){
	    .base = 0,
	    .limit = 0xffffffff,
	    .selector = sel,
	    .type = code ? 0xb : 0x3, /* execute/read accessed, or read/write accessed */
	    .present = 1,
	    .dpl = 0,
	    .db = long64 && code ? 0 : 1,
	    .s = 1,
	    .l = long64 && code,
	    .g = 1,
	};
}

int kvm_vcpu_set_boot_state(struct vcpu *v, const struct boot_cpu_state *st)
{
	struct kvm_vcpu_state *vs = v->priv;
	struct kvm_sregs sregs;
	bool long64 = st->mode == BOOT_MODE_LONG64;

	if (ioctl(vs->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	flat_segment(&sregs.cs, st->code_sel, true, long64);
	flat_segment(&sregs.ds, st->data_sel, false, long64);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = st->gdt_base;
	sregs.gdt.limit = st->gdt_limit;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = 0x11; /* PE | ET */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (long64) {
		sregs.cr0 |= 0x80000000; /* PG */
		sregs.cr3 = st->cr3;
		sregs.cr4 |= 0x20;   /* PAE */
		sregs.efer |= 0x500; /* LME | LMA */
	}
	if (ioctl(vs->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	struct kvm_regs regs = {
	    .rflags = 0x2,
	    .rip = st->rip,
	    .rsp = st->rsp,
	    .rax = st->rax,
	    .rbx = st->rbx,
	    .rsi = st->rsi,
	};
	if (ioctl(vs->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;

	struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
	if (ioctl(vs->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	return 0;
}

int kvm_vcpu_run(struct vcpu *v, struct vcpu_exit *exit)
{
	struct kvm_vcpu_state *vs = v->priv;
	struct kvm_run *run = vs->run;

	if (!atomic_load(&vs->has_thread)) {
		vs->thread = pthread_self();
		atomic_store(&vs->has_thread, true);
	}
	exit->reason = VCPU_EXIT_NONE;
	if (ioctl(vs->fd, KVM_RUN, 0) < 0) {
		int err = errno;
		run->immediate_exit = 0;
		if (err == EINTR || err == EAGAIN) {
			exit->reason = VCPU_EXIT_KICKED;
			return 0;
		}
		log_error("KVM_RUN on vCPU %u: %s", v->index, strerror(err));
		exit->reason = VCPU_EXIT_ERROR;
		return -err;
	}

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		exit->reason = VCPU_EXIT_IO;
		exit->io.port = run->io.port;
		exit->io.size = run->io.size;
		exit->io.write = run->io.direction == KVM_EXIT_IO_OUT;
		exit->io.count = run->io.count;
		exit->io.data = (uint8_t *)run + run->io.data_offset;
		break;
	case KVM_EXIT_MMIO:
		exit->reason = VCPU_EXIT_MMIO;
		exit->mmio.addr = run->mmio.phys_addr;
		exit->mmio.size = run->mmio.len;
		exit->mmio.write = run->mmio.is_write;
		exit->mmio.data = run->mmio.data;
		break;
	case KVM_EXIT_HLT:
		exit->reason = VCPU_EXIT_HLT;
		break;
	case KVM_EXIT_SHUTDOWN:
		exit->reason = VCPU_EXIT_SHUTDOWN;
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
			exit->reason = VCPU_EXIT_RESET;
		else
			exit->reason = VCPU_EXIT_POWEROFF;
		break;
	case KVM_EXIT_INTR:
		exit->reason = VCPU_EXIT_KICKED;
		break;
	case KVM_EXIT_FAIL_ENTRY:
		log_error("vCPU %u: VM entry failed, hardware reason %#llx", v->index,
			  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		exit->reason = VCPU_EXIT_ERROR;
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		log_error("vCPU %u: KVM internal error, suberror %u", v->index,
			  run->internal.suberror);
		exit->reason = VCPU_EXIT_ERROR;
		break;
	default:
		log_warn("vCPU %u: unhandled KVM exit reason %u", v->index, run->exit_reason);
		exit->reason = VCPU_EXIT_NONE;
		break;
	}
	return 0;
}

void kvm_vcpu_kick(struct vcpu *v)
{
	struct kvm_vcpu_state *vs = v->priv;
	if (!vs)
		return;
	vs->run->immediate_exit = 1;
	if (atomic_load(&vs->has_thread))
		pthread_kill(vs->thread, KICK_SIGNAL);
}

static int dump_seg(char *buf, size_t len, const char *name, const struct kvm_segment *s)
{
	return snprintf(buf, len, "%-3s=%04x %016llx %08x %02x%s%s%s\n", name, s->selector,
			(unsigned long long)s->base, s->limit, s->type, s->present ? " P" : "",
			s->l ? " L" : "", s->db ? " DB" : "");
}

int kvm_vcpu_dump(struct vcpu *v, char *buf, size_t len)
{
	struct kvm_vcpu_state *vs = v->priv;
	struct kvm_regs r;
	struct kvm_sregs s;
	if (!vs || ioctl(vs->fd, KVM_GET_REGS, &r) < 0 || ioctl(vs->fd, KVM_GET_SREGS, &s) < 0)
		return -EIO;
	size_t n = snprintf(buf, len,
			    "CPU#%u\n"
			    "RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx\n"
			    "RSI=%016llx RDI=%016llx RBP=%016llx RSP=%016llx\n"
			    "R8 =%016llx R9 =%016llx R10=%016llx R11=%016llx\n"
			    "R12=%016llx R13=%016llx R14=%016llx R15=%016llx\n"
			    "RIP=%016llx RFL=%08llx\n",
			    v->index, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8,
			    r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags);
	const struct kvm_segment *segs[] = {&s.es, &s.cs, &s.ss,  &s.ds,
					    &s.fs, &s.gs, &s.ldt, &s.tr};
	static const char *const names[] = {"ES", "CS", "SS", "DS", "FS", "GS", "LDT", "TR"};
	for (unsigned i = 0; i < 8 && n < len; i++)
		n += dump_seg(buf + n, len - n, names[i], segs[i]);
	if (n < len)
		n += snprintf(buf + n, len - n,
			      "GDT=     %016llx %08x\nIDT=     %016llx %08x\n"
			      "CR0=%08llx CR2=%016llx CR3=%016llx CR4=%08llx\nEFER=%016llx "
			      "APIC_BASE=%016llx\n",
			      s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit, s.cr0, s.cr2, s.cr3,
			      s.cr4, s.efer, s.apic_base);
	return n < len ? (int)n : (int)len - 1;
}

/* VM lifecycle: creation, vCPU threads and their exit loop, requests from the guest,
 * pause/resume, reset by rebuilding the accelerator's VM, and shutdown. */
#define LOG_SUBSYS "vm"
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "accel/qtest.h"
#include "util/log.h"
#include "vmm/qmp.h"
#include "vmm/vm.h"

/* --- vCPU threads ------------------------------------------------------------------------ */

static void handle_io(struct vm *vm, struct vcpu_exit *e)
{
	for (uint32_t i = 0; i < e->io.count; i++) {
		uint8_t *p = e->io.data + (size_t)i * e->io.size;
		uint64_t v = 0;
		if (e->io.write) {
			memcpy(&v, p, e->io.size);
			if (!io_bus_write(&vm->pio, e->io.port, e->io.size, v))
				log_debug("write to unclaimed port %#x", e->io.port);
		} else {
			io_bus_read(&vm->pio, e->io.port, e->io.size, &v);
			memcpy(p, &v, e->io.size);
		}
	}
}

static void handle_mmio(struct vm *vm, struct vcpu_exit *e)
{
	uint64_t v = 0;
	if (e->mmio.size == 0 || e->mmio.size > 8)
		return;
	if (e->mmio.write) {
		memcpy(&v, e->mmio.data, e->mmio.size);
		if (!io_bus_write(&vm->mmio, e->mmio.addr, e->mmio.size, v))
			log_guest_error("write to unclaimed MMIO address %#llx",
					(unsigned long long)e->mmio.addr);
	} else {
		if (!io_bus_read(&vm->mmio, e->mmio.addr, e->mmio.size, &v))
			log_guest_error("read from unclaimed MMIO address %#llx",
					(unsigned long long)e->mmio.addr);
		memcpy(e->mmio.data, &v, e->mmio.size);
	}
}

/* Wait while the VM is paused; returns false when the thread should end. */
static bool park_if_paused(struct vm_vcpu *vv)
{
	struct vm *vm = vv->vm;
	if (!atomic_load(&vm->pause_vcpus))
		return !atomic_load(&vm->stop_vcpus);
	pthread_mutex_lock(&vm->run_lock);
	atomic_store(&vv->parked, true);
	pthread_cond_broadcast(&vm->run_cond);
	while (atomic_load(&vm->pause_vcpus) && !atomic_load(&vm->stop_vcpus))
		pthread_cond_wait(&vm->run_cond, &vm->run_lock);
	atomic_store(&vv->parked, false);
	pthread_mutex_unlock(&vm->run_lock);
	return !atomic_load(&vm->stop_vcpus);
}

static void *vcpu_thread(void *arg)
{
	struct vm_vcpu *vv = arg;
	struct vm *vm = vv->vm;
	struct vcpu *v = &vv->vcpu;
	const struct accel_ops *ops = vm->accel.ops;
	struct vcpu_exit e;

	atomic_store(&vv->tid, (int)gettid());
	while (park_if_paused(vv)) {
		if (ops->vcpu_run(v, &e) < 0 && e.reason != VCPU_EXIT_ERROR)
			e.reason = VCPU_EXIT_ERROR;
		switch (e.reason) {
		case VCPU_EXIT_IO:
			handle_io(vm, &e);
			break;
		case VCPU_EXIT_MMIO:
			handle_mmio(vm, &e);
			break;
		case VCPU_EXIT_SHUTDOWN:
			vm_request(vm, VM_REQ_TRIPLE_FAULT, 0);
			break;
		case VCPU_EXIT_RESET:
			vm_request(vm, VM_REQ_RESET, 0);
			break;
		case VCPU_EXIT_POWEROFF:
			vm_request(vm, VM_REQ_POWEROFF, 0);
			break;
		case VCPU_EXIT_ERROR:
			vm_request(vm, VM_REQ_ERROR, 1);
			return NULL;
		case VCPU_EXIT_HLT:
			/* Only without an in-kernel irqchip; the emulator handles its own HLT. */
			usleep(1000);
			break;
		case VCPU_EXIT_KICKED:
		case VCPU_EXIT_NONE:
			break;
		}
	}
	return NULL;
}

static void block_signals_for_vcpu(sigset_t *old)
{
	/* vCPU threads take only the kick signal; SIGINT/SIGTERM/SIGHUP go to the main
	 * thread's signalfd. */
	sigset_t all;
	sigfillset(&all);
	sigdelset(&all, SIGUSR1);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	pthread_sigmask(SIG_SETMASK, &all, old);
}

static int start_vcpus(struct vm *vm)
{
	sigset_t old;
	block_signals_for_vcpu(&old);
	atomic_store(&vm->stop_vcpus, false);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vm_vcpu *vv = &vm->vcpus[i];
		int ret = pthread_create(&vv->thread, NULL, vcpu_thread, vv);
		if (ret) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			log_error("cannot start vCPU %u's thread: %s", i, strerror(ret));
			return -ret;
		}
		vv->thread_started = true;
		char name[32]; /* the kernel keeps 15 characters: "CPU 255/KVM" fits */
		snprintf(name, sizeof(name), "CPU %u/%s", i,
			 strcmp(vm->accel.ops->name, "kvm") ? "EMU" : "KVM");
		name[15] = '\0';
		pthread_setname_np(vv->thread, name);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}

static void kick_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i].vcpu.priv)
			vm->accel.ops->vcpu_kick(&vm->vcpus[i].vcpu);
}

static void stop_vcpus(struct vm *vm)
{
	atomic_store(&vm->stop_vcpus, true);
	pthread_mutex_lock(&vm->run_lock);
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
	kick_all(vm);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vm_vcpu *vv = &vm->vcpus[i];
		if (vv->thread_started) {
			/* A vCPU may have been between its stop check and KVM_RUN when kicked
			 * the first time; kicks are cheap, so repeat until it is gone. */
			while (pthread_tryjoin_np(vv->thread, NULL) == EBUSY) {
				vm->accel.ops->vcpu_kick(&vv->vcpu);
				usleep(200);
			}
			vv->thread_started = false;
		}
	}
}

void vm_request_host(struct vm *vm, enum vm_request req, int exit_code, const char *reason)
{
	int none = VM_REQ_NONE;
	/* The first request wins, except that the host's exit (QMP quit, a signal) replaces a
	 * pending guest reset or poweroff: it must end the VM whatever the guest asked. */
	bool won = atomic_compare_exchange_strong(&vm->request, &none, (int)req);
	if (!won && req == VM_REQ_EXIT && reason && none != VM_REQ_EXIT && none != VM_REQ_ERROR)
		won = atomic_compare_exchange_strong(&vm->request, &none, (int)req);
	if (won) {
		vm->exit_code = exit_code;
		vm->request_reason = reason;
		atomic_store(&vm->stop_vcpus, true);
		kick_all(vm);
		uint64_t one = 1;
		ssize_t r = write(vm->request_fd, &one, sizeof(one));
		(void)r;
	}
}

/* The vCPUs are parked (or gone): guest time stands still and the devices stop. */
static void quiesce(struct vm *vm)
{
	vclock_pause(&vm->clock);
	if (vm->accel.ops && vm->accel.ops->clock_pause)
		vm->accel.ops->clock_pause(&vm->accel);
	pc_machine_pause(vm);
}

static void unquiesce(struct vm *vm)
{
	vclock_resume(&vm->clock);
	if (vm->accel.ops && vm->accel.ops->clock_resume)
		vm->accel.ops->clock_resume(&vm->accel);
	pc_machine_resume(vm);
}

void vm_pause(struct vm *vm)
{
	if (vm->state != VM_STATE_RUNNING)
		return;
	atomic_store(&vm->pause_vcpus, true);
	kick_all(vm);
	pthread_mutex_lock(&vm->run_lock);
	for (;;) {
		bool all = true;
		for (unsigned i = 0; i < vm->nr_vcpus; i++)
			if (vm->vcpus[i].thread_started && !atomic_load(&vm->vcpus[i].parked))
				all = false;
		if (all || atomic_load(&vm->stop_vcpus))
			break;
		pthread_mutex_unlock(&vm->run_lock);
		kick_all(vm);
		usleep(100);
		pthread_mutex_lock(&vm->run_lock);
	}
	pthread_mutex_unlock(&vm->run_lock);
	quiesce(vm);
	vm->state = VM_STATE_PAUSED;
}

void vm_resume(struct vm *vm)
{
	if (vm->state != VM_STATE_PAUSED && vm->state != VM_STATE_PRELAUNCH)
		return;
	unquiesce(vm);
	pthread_mutex_lock(&vm->run_lock);
	atomic_store(&vm->pause_vcpus, false);
	pthread_cond_broadcast(&vm->run_cond);
	pthread_mutex_unlock(&vm->run_lock);
	vm->state = VM_STATE_RUNNING;
}

void vm_request(struct vm *vm, enum vm_request req, int exit_code)
{
	vm_request_host(vm, req, exit_code, NULL);
}

/* --- accelerator VM: created at boot and again at every reset ---------------------------- */

static void accel_teardown(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		if (vm->vcpus[i].vcpu.priv)
			vm->accel.ops->vcpu_destroy(&vm->vcpus[i].vcpu);
	vm->accel.ops->destroy(&vm->accel);
}

static int accel_setup(struct vm *vm, struct error *err)
{
	struct accel *a = &vm->accel;
	int ret = a->ops->init(a);
	if (ret)
		return error_set(err, ret, "cannot create the %s VM: %s", a->ops->name,
				 strerror(-ret));
	unsigned max = a->ops->max_vcpus(a);
	if (vm->nr_vcpus > max) {
		a->ops->destroy(a);
		return error_set(err, -EINVAL, "--cpus %u is more than %s supports here (%u)",
				 vm->nr_vcpus, a->ops->name, max);
	}
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		const struct gm_region *r = &vm->mem.regions[i];
		ret = a->ops->map_ram(a, r->gpa, r->size, r->host);
		if (ret) {
			a->ops->destroy(a);
			return error_set(err, ret, "cannot map guest RAM: %s", strerror(-ret));
		}
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vm_vcpu *vv = &vm->vcpus[i];
		vv->vcpu.index = i;
		vv->vcpu.accel = a;
		vv->vm = vm;
		ret = a->ops->vcpu_create(a, &vv->vcpu);
		if (ret) {
			accel_teardown(vm);
			return error_set(err, ret, "cannot create vCPU %u: %s", i, strerror(-ret));
		}
	}
	pc_machine_accel_ready(vm);
	return 0;
}

/* Fresh RAM, firmware tables and kernel, then the boot vCPU's registers. */
static int set_boot_state(struct vm *vm, const struct boot_cpu_state *st, struct error *err)
{
	int ret = vm->accel.ops->vcpu_set_boot_state(&vm->vcpus[0].vcpu, st);
	if (ret)
		return error_set(err, ret, "cannot set the boot vCPU's registers: %s",
				 strerror(-ret));
	return 0;
}

static void zero_ram(struct vm *vm)
{
	/* Private anonymous memory: dropping the pages gives zero pages back, cheaply. */
	for (unsigned i = 0; i < vm->mem.nr_regions; i++)
		madvise(vm->mem.regions[i].host, vm->mem.regions[i].size, MADV_DONTNEED);
}

static int vm_reset(struct vm *vm)
{
	struct error err = {0};
	stop_vcpus(vm);
	/* Only now: a second vCPU may have posted a request while the first was handled. */
	atomic_store(&vm->request, VM_REQ_NONE);
	/* Devices first, while the old VM still takes their interrupts: their reset quiesces
	 * the iothreads, which must not signal into an accelerator being torn down. */
	pc_machine_reset(vm);
	accel_teardown(vm);
	zero_ram(vm);
	vm->reset_count++;
	struct boot_cpu_state st;
	bool qtest = vm->cfg.accel == ACCEL_QTEST; /* no kernel, no CPU state */
	int ret = qtest ? 0 : pc_machine_load(vm, &st, &err);
	if (!ret)
		ret = accel_setup(vm, &err);
	if (!ret && !qtest)
		ret = set_boot_state(vm, &st, &err);
	if (!ret)
		ret = start_vcpus(vm);
	if (ret) {
		log_error("reset failed: %s", err.msg[0] ? err.msg : strerror(-ret));
		return ret;
	}
	return 0;
}

/* --- main thread ------------------------------------------------------------------------- */

/* --no-shutdown: the vCPUs were told to stop by the request; the VM stays, stopped, with
 * status "shutdown" until system_reset (then "prelaunch") and cont, or quit. As QEMU, a
 * STOP event follows the SHUTDOWN one. */
static void stay_shut_down(struct vm *vm)
{
	bool was_running = vm->state == VM_STATE_RUNNING;
	stop_vcpus(vm);
	atomic_store(&vm->pause_vcpus, true); /* the vCPUs a reset starts wait for cont */
	if (was_running)
		quiesce(vm);
	vm->state = VM_STATE_SHUTDOWN;
	/* Only now: system_reset and quit must be able to post theirs. */
	atomic_store(&vm->request, VM_REQ_NONE);
	if (was_running)
		qmp_emit_event(vm->qmp, "STOP", NULL);
}

static void on_request(struct vm *vm)
{
	int req = atomic_load(&vm->request);
	const char *reason = vm->request_reason; /* QMP events: who asked and why */
	bool guest = !reason;
	switch (req) {
	case VM_REQ_NONE:
		return;
	case VM_REQ_TRIPLE_FAULT:
		log_warn("the guest triple-faulted%s", vm->cfg.no_reboot ? "" : "; resetting");
		/* fall through */
	case VM_REQ_RESET:
		reason = reason ? reason : "guest-reset";
		/* A VM stopped by --no-shutdown leaves that state only through a reset. */
		if (vm->cfg.no_reboot && vm->state != VM_STATE_SHUTDOWN) {
			vm->exit_code = 0;
			break;
		}
		if (vm_reset(vm) == 0) {
			qmp_emit_shutdown(vm->qmp, "RESET", guest, reason);
			if (vm->state == VM_STATE_SHUTDOWN)
				vm->state = VM_STATE_PRELAUNCH; /* as QEMU: cont starts it */
			return;
		}
		vm->exit_code = 1;
		req = VM_REQ_ERROR; /* not something --no-shutdown keeps the VM after */
		break;
	case VM_REQ_POWEROFF:
		vm->exit_code = 0;
		reason = reason ? reason : "guest-shutdown";
		break;
	case VM_REQ_ERROR:
		guest = false;
		reason = "host-error";
		break;
	default:
		reason = reason ? reason : "guest-shutdown";
		break;
	}
	qmp_emit_shutdown(vm->qmp, "SHUTDOWN", guest, reason);
	/* --no-shutdown: what the guest did (poweroff, or a reboot that --no-reboot made one)
	 * stops the VM; the host's quit, a signal or an error still end it. */
	if (vm->cfg.no_shutdown &&
	    (req == VM_REQ_POWEROFF || req == VM_REQ_RESET || req == VM_REQ_TRIPLE_FAULT)) {
		stay_shut_down(vm);
		return;
	}
	vm->state = VM_STATE_SHUTDOWN;
	event_loop_stop(&vm->loop);
}

void vm_handle_request(struct vm *vm)
{
	/* Only a VM vm_create made (the QMP fuzz target drives the commands on a bare one; its
	 * request stays on the eventfd, which nobody reads) */
	if (vm->accel.ops)
		on_request(vm);
}

static void on_request_fd(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	eventfd_drain(vm->request_fd);
	on_request(vm);
}

static void on_signal(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	struct signalfd_siginfo si;
	if (read(vm->signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_info("terminating on signal %u", si.ssi_signo);
	if (log_get_level() >= LOG_DEBUG && vm->accel.ops->vcpu_dump) {
		vm_pause(vm);
		for (unsigned i = 0; i < vm->nr_vcpus; i++) {
			char buf[2048];
			if (vm->accel.ops->vcpu_dump(&vm->vcpus[i].vcpu, buf, sizeof(buf)) > 0)
				fputs(buf, stderr);
		}
	}
	/* Like QEMU: a VM ended by a signal exits 0 after a clean teardown. */
	vm_request_host(vm, VM_REQ_EXIT, 0, "host-signal");
}

static void console_quit(void *opaque)
{
	vm_request_host(opaque, VM_REQ_EXIT, 0, "host-ui");
}

int vm_run(struct vm *vm)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	vm->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (vm->signal_fd < 0 ||
	    event_loop_add_fd(&vm->loop, vm->signal_fd, EPOLLIN, on_signal, vm)) {
		log_error("cannot set up signal handling: %s", strerror(errno));
		return 1;
	}
	if (event_loop_add_fd(&vm->loop, vm->request_fd, EPOLLIN, on_request_fd, vm) ||
	    console_attach(&vm->console, &vm->com1, &vm->loop, console_quit, vm)) {
		log_error("cannot set up the event loop");
		return 1;
	}
	if (vm->cfg.start_paused) {
		/* -S: the vCPU threads start parked, guest time and devices stopped. */
		atomic_store(&vm->pause_vcpus, true);
		quiesce(vm);
		vm->state = VM_STATE_PRELAUNCH;
	} else {
		vm->state = VM_STATE_RUNNING;
	}
	if (start_vcpus(vm)) {
		stop_vcpus(vm);
		return 1;
	}
	event_loop_run(&vm->loop);
	stop_vcpus(vm);
	vm->state = VM_STATE_SHUTDOWN;
	event_loop_del_fd(&vm->loop, vm->signal_fd);
	close(vm->signal_fd);
	vm->signal_fd = -1;
	return vm->exit_code;
}

/* --- creation ---------------------------------------------------------------------------- */

static int select_accel(struct vm *vm, struct error *err)
{
	char why[256];
	switch (vm->cfg.accel) {
	case ACCEL_KVM:
		if (kvm_available(why, sizeof(why)))
			return error_set(err, -ENODEV, "KVM is unavailable: %s", why);
		vm->accel.ops = &kvm_accel_ops;
		return 0;
	case ACCEL_QTEST:
		vm->accel.ops = &qtest_accel_ops;
		vm->accel.priv = vm->qtest;
		return 0;
	case ACCEL_EMU:
		return error_set(err, -ENOTSUP,
				 "emulated mode (--accel emu) is not available in this build yet");
	case ACCEL_AUTO:
		if (kvm_available(why, sizeof(why)) == 0) {
			vm->accel.ops = &kvm_accel_ops;
			return 0;
		}
		return error_set(err, -ENODEV,
				 "KVM is unavailable (%s) and emulated mode is not available in "
				 "this build yet",
				 why);
	}
	return error_set(err, -EINVAL, "unknown accelerator");
}

int vm_create(struct vm *vm, const struct vm_config *cfg, struct error *err)
{
	int ret;
	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	vm->nr_vcpus = cfg->nr_cpus;
	pthread_mutex_init(&vm->run_lock, NULL);
	pthread_cond_init(&vm->run_cond, NULL);
	prctl(PR_SET_NAME, "kestrel");

	/* The user's files and the guest's layout are checked before the accelerator is
	 * chosen, so a bad option gets its own message whatever the host can run. */
	bool qtest = cfg->accel == ACCEL_QTEST; /* no kernel: a test drives the devices */
	if (!qtest) {
		ret = boot_images_load(&vm->images, cfg->kernel, cfg->initrd, err);
		if (ret)
			return ret;
	}
	vm->accel.nr_vcpus = vm->nr_vcpus;
	vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		ret = error_set(err, -ENOMEM, "out of memory");
		goto err_images;
	}

	if (qtest) {
		struct qtest_env env = {&vm->pio,    &vm->mmio, &vm->mem,     &vm->clock,
					&vm->timers, &vm->loop, console_quit, vm};
		ret = qtest_create(&vm->qtest, cfg->qtest ? cfg->qtest : "none", &env, err);
		if (ret)
			goto err_vcpus;
		vclock_init_source(&vm->clock, qtest_clock_source, vm->qtest);
	} else {
		vclock_init(&vm->clock);
	}
	timer_list_init(&vm->timers, &vm->clock);
	ret = event_loop_init(&vm->loop, &vm->timers);
	if (ret) {
		error_set(err, ret, "cannot create the event loop: %s", strerror(-ret));
		goto err_clock;
	}
	if (vm->qtest) {
		ret = qtest_start(vm->qtest);
		if (ret) {
			error_set(err, ret, "cannot start the qtest server: %s", strerror(-ret));
			event_loop_destroy(&vm->loop);
			goto err_clock;
		}
	}
	io_bus_init(&vm->pio, "io");
	io_bus_init(&vm->mmio, "memory");
	vm->request_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->request_fd < 0) {
		ret = error_set(err, -errno, "cannot create an eventfd: %s", strerror(errno));
		goto err_loop;
	}
	ret = console_open(&vm->console, &cfg->console, err);
	if (ret)
		goto err_loop;

	ret = pc_machine_create(vm, err);
	if (ret)
		goto err_console;
	struct boot_cpu_state st;
	ret = qtest ? 0 : pc_machine_load(vm, &st, err);
	if (ret)
		goto err_machine;
	ret = select_accel(vm, err);
	if (ret)
		goto err_machine;
	ret = accel_setup(vm, err);
	if (ret)
		goto err_machine;
	ret = qtest ? 0 : set_boot_state(vm, &st, err);
	if (ret)
		goto err_accel;
	return 0;

err_accel:
	accel_teardown(vm);
err_machine:
	pc_machine_destroy(vm);
err_console:
	console_close(&vm->console);
	gm_destroy(&vm->mem);
err_loop:
	if (vm->request_fd >= 0)
		close(vm->request_fd);
	io_bus_destroy(&vm->pio);
	io_bus_destroy(&vm->mmio);
	event_loop_destroy(&vm->loop);
err_clock:
	timer_list_destroy(&vm->timers);
	vclock_destroy(&vm->clock);
err_vcpus:
	if (vm->qtest)
		qtest_destroy(vm->qtest);
	free(vm->vcpus);
err_images:
	boot_images_free(&vm->images);
	return ret;
}

void vm_destroy(struct vm *vm)
{
	/* As in vm_reset: devices first, so no iothread or network thread signals an
	 * interrupt into the accelerator while it is torn down. */
	pc_machine_reset(vm);
	accel_teardown(vm);
	console_close(&vm->console);
	pc_machine_destroy(vm);
	io_bus_destroy(&vm->pio);
	io_bus_destroy(&vm->mmio);
	close(vm->request_fd);
	event_loop_destroy(&vm->loop);
	timer_list_destroy(&vm->timers);
	vclock_destroy(&vm->clock);
	if (vm->qtest)
		qtest_destroy(vm->qtest);
	gm_destroy(&vm->mem);
	free(vm->vcpus);
	boot_images_free(&vm->images);
}

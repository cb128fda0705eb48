# Helpers for the host-side guest cases (tests/guest/cases/*.sh). POSIX sh: the cases run on
# the host where /dev/kvm works, or inside the nested L1 guest under busybox ash
# (tests/nested/l1.sh), so no bash-isms here.
#
# A case is a script run as
#   sh CASE.sh setup   on the build host, before anything boots (build test artifacts into
#                      $KT_ART; tools like nasm exist only here). Optional: print nothing.
#   sh CASE.sh run     where the VMM runs; prints one TAP line per check, unnumbered:
#                      "ok - what", "not ok - what", "ok - what # SKIP why"; diagnostics as "# ..."
# A comment line "# kt-needs: qemu" in a case asks the nested harness to carry QEMU into L1.
#
# Environment (set by tests/nested/run-cases.sh or tests/nested/l1.sh):
#   KESTREL      the kestrel binary          KT_GUEST  dir with vmlinuz, initramfs.cpio.gz
#   KT_ART       artifacts made by setup     KT_OUT    a writable dir for logs
#   KT_TIMEOUT   seconds one VM run may take (default 120)
#   KT_QEMU      qemu-system-x86_64 to use for the reference runs (VMM=qemu)

KT_TIMEOUT=${KT_TIMEOUT:-120}
KT_OUT=${KT_OUT:-/tmp}
KT_QEMU=${KT_QEMU:-qemu-system-x86_64}

kt_ok() { echo "ok - $*"; }
kt_fail() { echo "not ok - $*"; }
kt_skip() { echo "ok - $1 # SKIP $2"; }
kt_diag() { awk '{ print "# " $0 }'; } # awk: a last line without \n still ends
# kt_expect NAME ACTUAL EXPECTED: ok when equal, else a failure saying both
kt_expect() {
	if [ "$2" = "$3" ]; then kt_ok "$1"; else kt_fail "$1 (got '$2', want '$3')"; fi
}

# A random token for the kernel command line, so a case knows the output is from its own run.
kt_token() {
	echo "kt$(tr -d '-' </proc/sys/kernel/random/uuid | cut -c1-12)"
}

# kt_vm LOG VMM ARGS...: run a VMM with a timeout, stdout (the serial console) to LOG, stderr to
# LOG.err, stdin from /dev/null (or the text in $KT_INPUT, written when LOG shows $KT_INPUT_AFTER).
# Sets KT_RC (exit status), KT_SECS, KT_TIMEDOUT (0/1), KT_STALLED (0/1: the console stayed
# silent for $KT_STALL s before the guest's /init, and the VMM was stopped).
# VMM is "kestrel" ($KESTREL with ARGS) or "qemu" ($KT_QEMU with ARGS).
KT_STALL=${KT_STALL:-90}
kt_vm() {
	kt_vm_once "$@"
	# Nested only: an L2 Linux with several vCPUs now and then triple-faults or stops dead
	# early in its boot (SMP bring-up, ACPI/PCI set-up) under L1's emulated SVM. It is L1's
	# doing: QEMU as the L2 VMM fails the same way in the same L1 (README, "KVM without
	# /dev/kvm"). Before /init nothing has touched the case's disks, so the boot is simply
	# tried again, said out loud, up to three times in all; the console of each failed try is
	# kept as LOG.tryN.
	_try=1
	while [ "${KT_IN_L1:-0}" = 1 ] && [ $_try -lt 3 ] && _why=$(kt_l1_fault "$1"); do
		echo "# $(basename "$1"): $_why in nested L1, try $_try of 3" \
			"(last line: $(tail -n 1 "$1" | cut -c1-100)); booting once more"
		cp "$1" "$1.try$_try"
		_try=$((_try + 1))
		kt_vm_once "$@"
	done
}

# kt_l1_fault LOG: says why, and succeeds, when a Linux guest's run ended before its /init the
# way L1's faults end it: a triple fault, or a console that stalled.
kt_l1_fault() {
	grep -q "Linux version" "$1" && ! grep -q "KESTREL-INIT-START" "$1" || return 1
	if grep -q "triple-faulted" "$1.err" 2>/dev/null; then
		echo "the guest triple-faulted before /init"
	elif [ "$KT_STALLED" = 1 ]; then
		echo "the guest's console stalled for ${KT_STALL}s before /init"
	else
		return 1
	fi
}

# kt_stall_watch PID LOG: stop PID when LOG has not grown for $KT_STALL seconds while the guest
# has not reached /init (a hung early boot; after /init a case may be quiet for long).
kt_stall_watch() {
	_size=-1 _quiet=0
	while kill -0 "$1" 2>/dev/null; do
		grep -q "KESTREL-INIT-START" "$2" 2>/dev/null && return 0
		_now=$(wc -c <"$2" 2>/dev/null || echo 0)
		if [ "$_now" = "$_size" ]; then _quiet=$((_quiet + 2)); else _quiet=0 _size=$_now; fi
		if [ $_quiet -ge "$KT_STALL" ]; then
			: >"$2.stalled"
			kill "$1" 2>/dev/null
			return 0
		fi
		sleep 2
	done
}

kt_vm_once() {
	_log=$1 _vmm=$2
	shift 2
	case "$_vmm" in
	kestrel) set -- "$KESTREL" "$@" ;;
	qemu) set -- "$KT_QEMU" "$@" ;;
	*) set -- "$_vmm" "$@" ;;
	esac
	echo "$*" >"$_log.cmd"
	rm -f "$_log.stalled"
	_t0=$(cut -d' ' -f1 /proc/uptime)
	_in=/dev/null _writer=
	if [ -n "${KT_INPUT:-}" ]; then
		# Typed on the VMM's stdin (a FIFO), once the console shows $KT_INPUT_AFTER: input
		# sent before the guest listens may be dropped by the guest, as on a real line.
		rm -f "$_log.in"
		mkfifo "$_log.in"
		_in=$_log.in
		(
			exec 3>"$_log.in" # waits for the VMM to open its end
			_n=0
			while [ -n "${KT_INPUT_AFTER:-}" ] && [ $_n -lt "$KT_TIMEOUT" ] &&
				! grep -q "$KT_INPUT_AFTER" "$_log" 2>/dev/null; do
				sleep 1
				_n=$((_n + 1))
			done
			printf '%s' "$KT_INPUT" >&3
		) &
		_writer=$!
	fi
	timeout -k 5 "$KT_TIMEOUT" "$@" >"$_log" 2>"$_log.err" <"$_in" &
	_pid=$!
	kt_stall_watch "$_pid" "$_log" &
	_watch=$!
	wait "$_pid" 2>/dev/null # no "Terminated" line when the stall watch stopped it
	KT_RC=$?
	kill "$_watch" 2>/dev/null
	# Only our own jobs: a case may have servers of its own running in the background.
	wait "$_watch" 2>/dev/null
	[ -n "${KT_INPUT:-}" ] && wait "$_writer" 2>/dev/null
	rm -f "$_log.in"
	KT_STALLED=0
	[ -f "$_log.stalled" ] && KT_STALLED=1
	_t1=$(cut -d' ' -f1 /proc/uptime)
	KT_SECS=$(awk -v a="$_t0" -v b="$_t1" 'BEGIN { printf "%.1f", b - a }')
	KT_TIMEDOUT=0
	# coreutils timeout exits 124, busybox's with the signal status; the clock decides.
	if [ "$KT_RC" -eq 124 ] || awk -v s="$KT_SECS" -v t="$KT_TIMEOUT" 'BEGIN { exit !(s >= t) }'; then
		KT_TIMEDOUT=1
	fi
	# The guest's tty turns \n into \r\n.
	tr -d '\r' <"$_log" >"$_log.tmp" && mv "$_log.tmp" "$_log"
	# TCG/KVM feature warnings from QEMU are noise.
	grep -v "doesn't support requested feature" "$_log.err" >"$_log.tmp" 2>/dev/null
	mv "$_log.tmp" "$_log.err"
}

# kt_show LOG: the end of a run's console output and its stderr, as TAP diagnostics
kt_show() {
	echo "command: $(cat "$1.cmd" 2>/dev/null)" | kt_diag
	echo "exit status $KT_RC after ${KT_SECS}s; last console lines:" | kt_diag
	tail -n 15 "$1" | kt_diag
	if [ -s "$1.err" ]; then
		echo "stderr:" | kt_diag
		tail -n 5 "$1.err" | kt_diag
	fi
}

# kt_end LOG: how a run ended, for a failure message (the summary shows only that line): the
# guest triple-faulted or not, and its last console line.
kt_end() {
	_last=$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 | cut -c1-120)
	if grep -q "triple-faulted" "$1.err" 2>/dev/null; then
		echo "the guest triple-faulted after: $_last"
	else
		echo "last console line: $_last"
	fi
}

# kt_get LOG KEY: value of the last "KT KEY=value" line (may follow kernel noise on a line)
kt_get() {
	sed -n "s/.*KT $2=//p" "$1" | tail -n 1
}

# kt_ran NAME LOG [EXPECTED_RC [TIMEOUT_HINT]]: the run's verdict as one TAP line; false when it
# failed.
# A run that timed out or exited with another status than EXPECTED_RC (default 0) fails.
kt_ran() {
	_want=${3:-0}
	if [ "${KT_STALLED:-0}" = 1 ]; then
		kt_fail "$1: the guest's console stalled for ${KT_STALL}s before /init and the VMM was stopped"
		kt_show "$2"
		return 1
	fi
	if [ "$KT_TIMEDOUT" = 1 ]; then
		if [ -n "${4:-}" ]; then
			kt_fail "$1: timed out after ${KT_TIMEOUT}s ($4)"
		elif grep -q KESTREL-INIT-START "$2"; then
			kt_fail "$1: timed out after ${KT_TIMEOUT}s (guest reached /init, did not power off)"
		else
			kt_fail "$1: timed out after ${KT_TIMEOUT}s (guest never reached /init)"
		fi
		kt_show "$2"
		return 1
	fi
	# --no-reboot turns a triple fault into an exit with status 0, which is not a pass
	# (KT_FAULT_OK=1: the case wants one).
	if [ "${KT_FAULT_OK:-0}" != 1 ] && grep -q "triple-faulted" "$2.err" 2>/dev/null; then
		kt_fail "$1: $(kt_end "$2")"
		kt_show "$2"
		return 1
	fi
	if [ "$KT_RC" -ne "$_want" ]; then
		_err=$(head -n 1 "$2.err")
		kt_fail "$1: exit status $KT_RC, want $_want${_err:+ (stderr: $_err)}"
		kt_show "$2"
		return 1
	fi
	kt_ok "$1: exit status $_want in ${KT_SECS}s"
	return 0
}

# kt_boot_case NAME VMM CPUS: boot the test guest's "boot" script and check what it saw.
kt_boot_case() {
	_name=$1 _vmm=$2 _cpus=$3
	_log=$KT_OUT/$_name.log
	_tok=$(kt_token)
	_cmdline="console=ttyS0 kestrel.test=boot $_tok"
	_mem_kb=524288
	if [ "$_vmm" = kestrel ]; then
		kt_vm "$_log" kestrel run --kernel "$KT_GUEST/vmlinuz" \
			--initrd "$KT_GUEST/initramfs.cpio.gz" --cmdline "$_cmdline" --mem 512M \
			--cpus "$_cpus" --no-reboot --console stdio
	else
		kt_vm "$_log" qemu $KT_QEMU_ARGS -smp "$_cpus" -m 512 -no-reboot \
			-kernel "$KT_GUEST/vmlinuz" -initrd "$KT_GUEST/initramfs.cpio.gz" \
			-append "$_cmdline"
	fi
	_host_date=$(date -u +%s)
	_ok=1
	kt_ran "$_name" "$_log" || _ok=0
	if ! grep -q "KT boot-done" "$_log"; then
		[ $_ok = 1 ] && kt_show "$_log"
		kt_fail "$_name: guest ran the boot script (no 'KT boot-done' line; $(kt_end "$_log"))"
		return
	fi
	kt_expect "$_name: nproc = --cpus" "$(kt_get "$_log" nproc)" "$_cpus"
	_mt=$(kt_get "$_log" memtotal_kb)
	# The kernel keeps its image, page tables and early reservations out of MemTotal: allow up
	# to 96 MiB of the 512 MiB (Debian's 6.1 shows about 455 MiB under QEMU).
	if [ -n "$_mt" ] && [ "$_mt" -le $_mem_kb ] && [ "$_mt" -ge $((_mem_kb - 98304)) ]; then
		kt_ok "$_name: MemTotal ${_mt} kB fits --mem 512M"
	else
		kt_fail "$_name: MemTotal '${_mt}' kB not within 416..512 MiB for --mem 512M"
	fi
	case "$(kt_get "$_log" cmdline)" in
	*"$_tok"*) kt_ok "$_name: /proc/cmdline has the token" ;;
	*) kt_fail "$_name: /proc/cmdline lacks token $_tok (got '$(kt_get "$_log" cmdline)')" ;;
	esac
	_tables=" $(kt_get "$_log" acpi_tables) "
	_missing=
	for _t in APIC FACP DSDT; do
		case "$_tables" in *" $_t "*) ;; *) _missing="$_missing $_t" ;; esac
	done
	if [ -z "$_missing" ]; then
		kt_ok "$_name: ACPI tables APIC FACP DSDT present"
	else
		kt_fail "$_name: ACPI tables missing:$_missing (guest saw:$_tables)"
	fi
	if [ "$_vmm" = kestrel ]; then
		kt_expect "$_name: DMI product_name" "$(kt_get "$_log" product_name)" Kestrel
	fi
	_gd=$(kt_get "$_log" date)
	if [ -n "$_gd" ] && [ $((_gd - _host_date)) -le 120 ] && [ $((_host_date - _gd)) -le 120 ]; then
		kt_ok "$_name: guest clock within 120 s of the host's"
	else
		kt_fail "$_name: guest date '$_gd' vs host $_host_date: more than 120 s apart"
	fi
	# The CMOS RTC read directly (kvmclock could carry the date above on its own).
	_re=$(kt_get "$_log" rtc_epoch)
	if [ -n "$_re" ] && [ $((_re - _host_date)) -le 120 ] && [ $((_host_date - _re)) -le 120 ]; then
		kt_ok "$_name: CMOS RTC ($(kt_get "$_log" rtc_name)) within 120 s of the host's UTC"
	else
		kt_fail "$_name: CMOS RTC since_epoch '$_re' vs host $_host_date: more than 120 s apart"
	fi
	kt_expect "$_name: the guest detected KVM" "$(kt_get "$_log" hypervisor)" KVM
	case " $(kt_get "$_log" clocksource) " in
	*" kvm-clock "*) kt_ok "$_name: kvm-clock offered" ;;
	*) kt_fail "$_name: no kvm-clock (clocksources: $(kt_get "$_log" clocksource))" ;;
	esac
	# One core per vCPU, each with its own core_id (CPUID leaves 0Bh / 8000001Eh).
	_want_ids=$(awk -v n="$_cpus" 'BEGIN { for (i = 0; i < n; i++) printf "%d ", i }')
	kt_expect "$_name: core_id per vCPU" "$(kt_get "$_log" core_ids)" "$_want_ids"
}

# kt_reboot_case NAME VMM: the guest counts boots in CMOS NVRAM and reboots twice, through the
# i8042 reset line and then the ACPI reset register, then powers off.
kt_reboot_case() {
	_name=$1 _vmm=$2
	_log=$KT_OUT/$_name.log
	_cmdline="console=ttyS0 kestrel.test=reboot $(kt_token)"
	_limit=$KT_TIMEOUT
	KT_TIMEOUT=$((KT_TIMEOUT * 3)) # three boots in one run
	if [ "$_vmm" = kestrel ]; then
		kt_vm "$_log" kestrel run --kernel "$KT_GUEST/vmlinuz" \
			--initrd "$KT_GUEST/initramfs.cpio.gz" --cmdline "$_cmdline" --mem 512M \
			--cpus 1 --console stdio -v
	else
		kt_vm "$_log" qemu $KT_QEMU_ARGS -smp 1 -m 512 \
			-kernel "$KT_GUEST/vmlinuz" -initrd "$KT_GUEST/initramfs.cpio.gz" \
			-append "$_cmdline"
	fi
	kt_ran "$_name" "$_log"
	_r=$?
	KT_TIMEOUT=$_limit
	_b1=$(grep -c "KT BOOT 1" "$_log")
	_b2=$(grep -c "KT BOOT 2" "$_log")
	_b3=$(grep -c "KT BOOT 3" "$_log")
	if [ "$_b1" -ge 1 ] && [ "$_b2" -ge 1 ] && [ "$_b3" -ge 1 ]; then
		kt_ok "$_name: BOOT 1, 2 and 3 (CMOS NVRAM survived two resets)"
	else
		[ $_r = 0 ] && kt_show "$_log"
		kt_fail "$_name: saw BOOT 1 x$_b1, BOOT 2 x$_b2, BOOT 3 x$_b3 (want all three)"
	fi
	[ "$_vmm" = kestrel ] || return 0
	# Which way each reset came in, in order, from Kestrel's -v log.
	_how=$(sed -n -e 's/.*\(guest pulsed the reset line\).*/i8042/p' \
		-e 's/.*\(guest reset through the reset register\).*/acpi/p' "$_log.err" | tr '\n' ' ')
	kt_expect "$_name: resets through the i8042 line, then the ACPI reset register" "$_how" \
		"i8042 acpi "
}

# kt_multiboot_case NAME VMM: boot $KT_ART/multiboot-hello.elf (cases/multiboot.sh setup) with a
# debug-exit port; the kernel writes 0x21, so the VMM exits with (0x21 << 1) | 1 = 67.
kt_multiboot_case() {
	_name=$1 _vmm=$2
	_log=$KT_OUT/$_name.log
	_elf=$KT_ART/multiboot-hello.elf
	if [ ! -f "$_elf" ]; then
		kt_fail "$_name: $_elf was not built (nasm/ld in the case's setup failed)"
		return
	fi
	if [ "$_vmm" = kestrel ]; then
		kt_vm "$_log" kestrel run --kernel "$_elf" --mem 64M --cpus 1 --debug-exit \
			--console stdio
	else
		kt_vm "$_log" qemu $KT_QEMU_ARGS -m 64 -kernel "$_elf" \
			-device isa-debug-exit,iobase=0xf4,iosize=0x04
	fi
	kt_ran "$_name" "$_log" 67 "the VMM did not exit on the debug-exit write"
	_r=$?
	if grep -q "KESTREL-MULTIBOOT hello" "$_log"; then
		kt_ok "$_name: the kernel's line on COM1 reached stdout"
	else
		[ $_r = 0 ] && kt_show "$_log"
		kt_fail "$_name: no 'KESTREL-MULTIBOOT hello' line on stdout"
	fi
}

# --- network cases (tests/net/cases/) ----------------------------------------------------------
kt_now() { cut -d' ' -f1 /proc/uptime; }
kt_secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; } # FROM TO
kt_rate() { # BYTES SECS
	awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f KiB/s", n / 1024 / s; else print "?" }'
}
# kt_http_get HOST PORT PATH OUT: GET http://HOST:PORT/PATH into OUT, headers included (busybox nc:
# busybox wget is not in every environment these cases run in).
kt_http_get() {
	printf 'GET /%s HTTP/1.0\r\n\r\n' "$3" |
		"$(command -v busybox || echo busybox)" nc -w 30 "$1" "$2" >"$4" 2>/dev/null
}
# kt_fetch_from_guest HOST PORT DIR: the host half of a transfer test, run in the background. The
# guest's httpd appears after its boot: retry (up to ~5 min) until /f (1 MiB) comes whole, write
# its md5 to DIR/f.md5, time it again (DIR/f.secs) and /big (DIR/big.bytes, DIR/big.secs), then
# tell the guest by creating DIR/www/fetched, which it polls on the host's server.
kt_fetch_from_guest() {
	_i=0
	while [ $_i -lt 150 ]; do
		kt_http_get "$1" "$2" f "$3/f.resp"
		if [ "$(wc -c <"$3/f.resp")" -gt 1048576 ] && head -n 1 "$3/f.resp" | grep -q ' 200 '; then
			tail -c 1048576 "$3/f.resp" | md5sum | cut -d' ' -f1 >"$3/f.md5"
			_t0=$(kt_now)
			kt_http_get "$1" "$2" f "$3/f.resp"
			_t1=$(kt_now)
			[ "$(wc -c <"$3/f.resp")" -gt 1048576 ] && kt_secs "$_t0" "$_t1" >"$3/f.secs"
			_t0=$(kt_now)
			kt_http_get "$1" "$2" big "$3/big.resp"
			_t1=$(kt_now)
			wc -c <"$3/big.resp" >"$3/big.bytes"
			kt_secs "$_t0" "$_t1" >"$3/big.secs"
			rm -f "$3/big.resp"
			: >"$3/www/fetched"
			return 0
		fi
		_i=$((_i + 1))
		sleep 2
	done
	return 1
}

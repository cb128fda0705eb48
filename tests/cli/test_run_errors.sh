#!/bin/bash
# kestrel run: every bad input gets one clear line on stderr and exit code 1, never a crash.
# Runs on any host: the checks happen before an accelerator is needed.
. "$(dirname "$0")/../lib/tap.sh"
K=${KESTREL:?}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
KERNEL=${KESTREL_GUEST:-${KESTREL_BUILD:?}/guest}/vmlinuz

. "$(dirname "$0")/../lib/cli.sh" # expect_error

"$K" >"$T/out" 2>"$T/err" </dev/null
rc=$?
if [ $rc -eq 1 ] && grep -q "Usage: kestrel COMMAND" "$T/err"; then tap_ok "no command: usage, exit 1"; else
	tap_fail "no command: exit $rc"; fi
expect_error "unknown command" "unknown command 'frobnicate'" frobnicate
expect_error "run without --kernel" "no kernel given" run
expect_error "missing kernel file" "cannot open kernel '$T/nope': No such file" run --kernel "$T/nope"
expect_error "kernel is a directory" "is not a regular file" run --kernel "$T"
: >"$T/empty"
expect_error "empty kernel" "kernel '$T/empty' is empty" run --kernel "$T/empty"
head -c 100000 /dev/urandom >"$T/random"
expect_error "not a kernel" "is not a kernel Kestrel can boot" run --kernel "$T/random"
expect_error "malformed --uuid" "--uuid 1234 is not a UUID" run --kernel "$T/random" --uuid 1234
# A setup header that claims a bzImage but stops right after it.
python3 - "$T/trunc" <<'PY'
import sys, struct
b = bytearray(0x264)
b[0x1fe:0x200] = b"\x55\xaa"; b[0x202:0x206] = b"HdrS"
struct.pack_into("<H", b, 0x206, 0x20f); b[0x1f1] = 4; b[0x201] = 0x62
b[0x236] = 1  # xloadflags: 64-bit entry
open(sys.argv[1], "wb").write(b)
PY
expect_error "truncated bzImage" "no protected-mode kernel|truncated" run --kernel "$T/trunc"
python3 - "$T/old" <<'PY'
import sys, struct
b = bytearray(0x4000)
b[0x1fe:0x200] = b"\x55\xaa"; b[0x202:0x206] = b"HdrS"
struct.pack_into("<H", b, 0x206, 0x204); b[0x1f1] = 4; b[0x201] = 0x62
open(sys.argv[1], "wb").write(b)
PY
expect_error "32-bit-only bzImage" "boot protocol 2.04 without a 64-bit entry" run --kernel "$T/old"
# Root reads any file: as root, the case runs kestrel as nobody (setpriv), from a directory
# nobody may enter, so the only thing refused is reading the kernel itself.
U=$(mktemp -d) && chmod 755 "$U" && cp "$K" "$U/kestrel" && cp "$T/random" "$U/unreadable" &&
	chmod 000 "$U/unreadable"
if [ "$(id -u)" -ne 0 ]; then
	expect_error "unreadable kernel" "Permission denied" run --kernel "$U/unreadable"
elif command -v setpriv >/dev/null; then
	K_SAVED=$K
	K="setpriv --reuid=65534 --regid=65534 --clear-groups $U/kestrel"
	# shellcheck disable=SC2086 # K is a command with arguments here
	expect_error "unreadable kernel (as nobody)" "Permission denied" run --kernel "$U/unreadable"
	K=$K_SAVED
else
	tap_skip "unreadable kernel" "running as root without setpriv (util-linux) to drop to nobody"
fi
rm -rf "$U"
expect_error "unknown option" "unknown option '--bogus'" run --bogus
expect_error "option without its value" "option '--mem' needs a value" run --kernel "$T/random" --mem
expect_error "--mem not a size" "--mem: 'lots' is not a size" run --kernel "$T/random" --mem lots
expect_error "--mem too small" "--mem 1M is too small" run --kernel "$T/random" --mem 1M
expect_error "--mem too large" "--mem 2T is too large" run --kernel "$T/random" --mem 2T
expect_error "--cpus 0" "--cpus: '0' is not a number of vCPUs between 1 and 255" run --kernel "$T/random" --cpus 0
expect_error "--cpus not a number" "--cpus: 'two'" run --kernel "$T/random" --cpus two
expect_error "--cpus above the limit" "--cpus: '256'" run --kernel "$T/random" --cpus 256
expect_error "--accel unknown" "unknown accelerator 'xen'" run --kernel "$T/random" --accel xen
expect_error "--console unknown" "--console: 'tty9'" run --kernel "$T/random" --console tty9
expect_error "stray argument" "unexpected argument 'extra'" run --kernel "$T/random" extra
# --net: each mistake is named, before anything is created.
expect_error "--net without a type" "--net: unknown type 'bogus'" run --kernel "$T/random" --net bogus
expect_error "--net tap without ifname" "--net tap needs ifname=NAME" run --kernel "$T/random" --net tap
expect_error "--net hostfwd port out of range" "host port is not a number 1..65535" \
	run --kernel "$T/random" --net "user,hostfwd=tcp::70000-:22"
expect_error "--net hostfwd malformed" "hostfwd=tcp:2222:22 is not" \
	run --kernel "$T/random" --net "user,hostfwd=tcp:2222:22"
expect_error "--net unknown key" "--net user: unknown option 'speed'" \
	run --kernel "$T/random" --net "user,speed=10"
expect_error "--net bad mac" "mac=52:54:00:12:34 is not" run --kernel "$T/random" --net "user,mac=52:54:00:12:34"
expect_error "--net multicast mac" "is a multicast address" \
	run --kernel "$T/random" --net "user,mac=01:00:5e:00:00:01"
expect_error "--net bad network" "net=10.0.2.1/24 has host bits set" \
	run --kernel "$T/random" --net "user,net=10.0.2.1/24"
expect_error "five --net" "--net: at most 4 NICs" run --kernel "$T/random" --net user --net user \
	--net user --net user --net user
# A hostfwd port another process holds: one line naming the port (qtest: no kernel needed).
if command -v python3 >/dev/null; then
	python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); sys.stdout.close(); time.sleep(20)' >"$T/port" &
	holder=$!
	for _ in 1 2 3 4 5 6 7 8 9 10; do [ -s "$T/port" ] && break; sleep 0.2; done
	port=$(cat "$T/port")
	expect_error "--net hostfwd on a port in use" "cannot listen on tcp 127.0.0.1:$port for hostfwd" \
		run --accel qtest --qtest "unix:$T/qtest.sock" --net "user,hostfwd=tcp:127.0.0.1:$port-:80"
	kill $holder 2>/dev/null
else
	tap_skip "--net hostfwd on a port in use" "python3 not installed"
fi

if [ -f "$KERNEL" ]; then
	expect_error "missing initrd" "cannot open initrd '$T/nope'" \
		run --kernel "$KERNEL" --initrd "$T/nope"
	head -c $((120 << 20)) /dev/zero >"$T/big-initrd"
	expect_error "initrd larger than memory" "initrd \(120 MiB\) does not fit" \
		run --kernel "$KERNEL" --initrd "$T/big-initrd" --mem 100M
	expect_error "kernel larger than memory" "kernel needs [0-9]+ MiB" run --kernel "$KERNEL" --mem 16M
	expect_error "command line too long" "kernel command line is 5000 bytes" \
		run --kernel "$KERNEL" --cmdline "$(head -c 5000 /dev/zero | tr '\0' x)"
	expect_error "console file in a missing directory" "cannot open console file" \
		run --kernel "$KERNEL" --console "file:$T/no/such/dir/log"
else
	for n in "missing initrd" "initrd larger than memory" "kernel larger than memory" "command line too long" \
		"console file in a missing directory"; do
		tap_skip "$n" "no test guest kernel at $KERNEL (make guest)"
	done
fi

"$K" --version >"$T/out" 2>&1
tap_check "--version prints the version" grep -qE '^kestrel [0-9]+\.[0-9]+' "$T/out"
"$K" run --help >"$T/out" 2>&1
tap_check "run --help lists the options" grep -q -- '--no-reboot' "$T/out"
# Without a usable KVM the run stops with one line saying why, once the kernel has been read
# (the test guest's kernel, from make guest).
GUEST_KERNEL=${KESTREL_GUEST:-${KESTREL_BUILD:-build}/guest}/vmlinuz
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qw -e vmx -e svm /proc/cpuinfo; then
	tap_skip "--accel auto/kvm without KVM" "this host has a usable /dev/kvm"
elif [ ! -f "$GUEST_KERNEL" ]; then
	tap_skip "--accel auto/kvm without KVM" "no test guest kernel at $GUEST_KERNEL (make guest)"
else
	expect_error "--accel auto without KVM: one line, exit 1" "KVM is unavailable" \
		run --kernel "$GUEST_KERNEL" --accel auto --console none
	expect_error "--accel kvm without KVM: one line, exit 1" "KVM is unavailable" \
		run --kernel "$GUEST_KERNEL" --accel kvm --console none
fi
expect_error "--accel bogus" "--accel" run --kernel "$T/random" --accel bogus
tap_done

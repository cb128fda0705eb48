#!/bin/bash
# The console puts a terminal in raw mode and must give it back on every exit path. Runs kestrel
# on a pseudo-terminal (python3's pty) and compares the terminal's settings before and after.
. "$(dirname "$0")/../lib/tap.sh"
K=${KESTREL:?}
KERNEL=${KESTREL_GUEST:-${KESTREL_BUILD:?}/guest}/vmlinuz
if [ ! -f "$KERNEL" ]; then
	tap_skip "terminal restored" "no test guest kernel at $KERNEL (make guest)"
	tap_done
fi
# ptyrun.py ARGS...: run kestrel on a fresh pty in cooked mode; print "same" when the pty's
# termios after the exit equals what it was before, else "changed", then the exit status.
cat >"${TMPDIR:-/tmp}/kt-ptyrun.py" <<'PY'
import os, pty, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
before = termios.tcgetattr(fd)
out = b""
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
after = termios.tcgetattr(fd)
print("same" if before == after else "changed", os.waitstatus_to_exitcode(status))
sys.stderr.write(out.decode(errors="replace"))
PY
py=${TMPDIR:-/tmp}/kt-ptyrun.py

# An error after the console went raw: the VM cannot start (no usable accelerator here, or an
# impossible accelerator request), so kestrel exits 1 through its error path.
r=$(python3 "$py" "$K" run --kernel "$KERNEL" --accel emu 2>/dev/null)
tap_check "terminal restored after a start-up error (got: $r)" [ "$r" = "same 1" ]
# A bad option before anything is set up: nothing to restore, and nothing broken.
r=$(python3 "$py" "$K" run --kernel "$KERNEL" --mem nonsense 2>/dev/null)
tap_check "terminal untouched by an option error (got: $r)" [ "$r" = "same 1" ]
rm -f "$py"
tap_done

#!/bin/bash
# Run states with devices (qtest, no KVM): stop quiesces virtio-blk, virtio-net and console
# input until cont; -S (prelaunch); --no-shutdown; the same sequences as QEMU where installed.
. "$(dirname "$0")/../lib/tap.sh"
if ! command -v python3 >/dev/null; then
	tap_skip "run-state tests" "python3 is not installed"
	tap_done
fi
exec timeout 180 python3 "$(dirname "$0")/qmp_runstate.py"

#!/bin/bash
# QMP host tests: Python's standard library talks QMP to `kestrel run --accel qtest` VMs
# (protocol, negotiation, queries, run control, events, errors, bad input). No KVM needed.
. "$(dirname "$0")/../lib/tap.sh"
if ! command -v python3 >/dev/null; then
	tap_skip "QMP protocol tests" "python3 is not installed"
	tap_done
fi
exec timeout 300 python3 "$(dirname "$0")/qmp_protocol.py"

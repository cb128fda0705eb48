#!/bin/bash
# Device tests over the qtest protocol (--accel qtest, no CPU): UART, RTC, i8042 + send-key.
. "$(dirname "$0")/../lib/tap.sh"
if ! command -v python3 >/dev/null; then
	tap_skip "qtest device tests" "python3 is not installed"
	tap_done
fi
exec timeout 300 python3 "$(dirname "$0")/qtest_devices.py"

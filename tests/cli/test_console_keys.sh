#!/bin/bash
# The console as a user meets it on a terminal: typed keys reach the UART, C-a h / C-a x,
# SIGTERM and SIGINT, and the terminal restored after each (tests/cli/console_pty.py).
# Needs no KVM and no guest: the VM runs with --accel qtest.
exec python3 "$(dirname "$0")/console_pty.py" "${KESTREL:?}"

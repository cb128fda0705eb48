#!/bin/bash
# Machine-level PCI and virtio tests over the qtest protocol (--accel qtest, no CPU): the pc
# machine's PCI bus, virtio-blk/rng/console driven like a guest driver, INTx and MSI-X.
. "$(dirname "$0")/../lib/tap.sh"
if ! command -v python3 >/dev/null; then
	tap_skip "qtest virtio tests" "python3 is not installed"
	tap_done
fi
exec timeout 120 python3 "$(dirname "$0")/qtest_virtio.py"

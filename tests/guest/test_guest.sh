#!/bin/bash
# Guest integration tests (make check): boot the Debian test guest with kestrel run and check
# what the guest saw (tests/guest/cases/*.sh), natively where /dev/kvm works, otherwise in one
# nested-KVM L1 guest (tests/nested/). The qemu_reference case runs the same checks with QEMU as
# the VMM, which tells a Kestrel bug apart from a harness or environment problem.
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../nested/run-cases.sh" -n guest "$here"/cases/*.sh

#!/bin/bash
# virtio-net guest acceptance (make check): boots the test guest with --net user and a hostfwd
# rule (tests/net/cases/net.sh, natively where /dev/kvm works, else in the nested-KVM L1; see
# tests/nested/README.md) and checks DHCP, an HTTP fetch each way with md5s, and the doorbells on
# ioeventfds; and the same over a tap in L1 (tests/net/cases/net_tap.sh: static addresses, md5s
# both ways, TSO through the vnet header). Prints numbered TAP; transfer times are diagnostics.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
exec "$root/tests/nested/run-cases.sh" -n net "$here"/cases/*.sh

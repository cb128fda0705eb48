#!/bin/sh
# Guest side of the signal case (tests/guest/cases/signals.sh): announce, then stay up until the
# VMM is stopped from outside.
echo "KT idle"
while :; do sleep 3600; done

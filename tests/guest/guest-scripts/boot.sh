#!/bin/sh
# Guest side of the boot acceptance test (tests/guest/cases/boot_*.sh checks these lines).
# One "KT key=value" line per fact, then power off through ACPI.
echo "KT nproc=$(nproc)"
echo "KT cpuinfo_processors=$(grep -c '^processor' /proc/cpuinfo)"
echo "KT memtotal_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
echo "KT cmdline=$(cat /proc/cmdline)"
echo "KT acpi_tables=$(ls /sys/firmware/acpi/tables 2>/dev/null | tr '\n' ' ')"
echo "KT product_name=$(cat /sys/class/dmi/id/product_name 2>/dev/null)"
echo "KT sys_vendor=$(cat /sys/class/dmi/id/sys_vendor 2>/dev/null)"
# The kernel set the system time from the CMOS RTC at boot (CONFIG_RTC_HCTOSYS); kvmclock
# would give the same date, so the RTC is also read on its own, through rtc_cmos.
echo "KT date=$(date -u +%s)"
echo "KT rtc_epoch=$(cat /sys/class/rtc/rtc0/since_epoch 2>/dev/null)"
echo "KT rtc_name=$(cat /sys/class/rtc/rtc0/name 2>/dev/null)"
# Topology as the guest derived it from CPUID (each vCPU its own core) and the hypervisor.
echo "KT core_ids=$(cat /sys/devices/system/cpu/cpu*/topology/core_id 2>/dev/null | sort -n | tr '\n' ' ')"
echo "KT hypervisor=$(dmesg | sed -n 's/.*Hypervisor detected: *//p' | head -n 1)"
echo "KT clocksource=$(cat /sys/devices/system/clocksource/clocksource0/available_clocksource 2>/dev/null)"
echo "KT boot-done"
poweroff -f

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
# The kernel set the system time from the CMOS RTC at boot (CONFIG_RTC_HCTOSYS).
echo "KT date=$(date -u +%s)"
echo "KT boot-done"
poweroff -f

#!/bin/sh
# Guest side of the reboot test: a boot counter in CMOS NVRAM byte 0x50, which survives a VM
# reset (index register 0x70, data register 0x71, reached through /dev/port).
# First boot: "KT BOOT 1", reboot through the i8042; second: "KT BOOT 2", reboot through the ACPI
# reset register; third: "KT BOOT 3", clear the byte, poweroff.
OFFSET=80 # 0x50: free NVRAM, outside the checksummed 0x10-0x2d range
MAGIC=165 # 0xa5

cmos_index() {
	printf "\\$(printf %03o "$1")" | dd of=/dev/port bs=1 seek=112 count=1 conv=notrunc 2>/dev/null
}
cmos_read() {
	cmos_index "$1"
	dd if=/dev/port bs=1 skip=113 count=1 2>/dev/null | od -An -tu1 | tr -d ' \n'
}
cmos_write() {
	cmos_index "$1"
	printf "\\$(printf %03o "$2")" | dd of=/dev/port bs=1 seek=113 count=1 conv=notrunc 2>/dev/null
}

# Each reboot takes another path into the VMM: Linux's "kbd" method pulses the i8042 reset line
# (0xfe to port 0x64), "acpi" writes the FADT reset register.
reboot_by() {
	if [ -w /sys/kernel/reboot/type ]; then
		echo "$1" >/sys/kernel/reboot/type
		echo "KT reboot_type=$(cat /sys/kernel/reboot/type)"
	else
		echo "KT reboot_type=unavailable"
	fi
	reboot -f
}

v=$(cmos_read $OFFSET)
echo "KT cmos_0x50=$v"
case "$v" in
"$MAGIC")
	echo "KT BOOT 2"
	cmos_write $OFFSET $((MAGIC + 1))
	reboot_by acpi
	;;
"$((MAGIC + 1))")
	echo "KT BOOT 3"
	cmos_write $OFFSET 0
	poweroff -f
	;;
*)
	echo "KT BOOT 1"
	cmos_write $OFFSET $MAGIC
	w=$(cmos_read $OFFSET)
	[ "$w" = "$MAGIC" ] || echo "KT cmos-write-failed read-back=$w"
	reboot_by kbd
	;;
esac

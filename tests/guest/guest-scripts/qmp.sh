#!/bin/sh
# Guest side of the QMP case (tests/guest/cases/qmp.sh): the host stops and resumes the VM,
# sends keys and presses the ACPI power button over QMP; this script makes each visible.
#   "KT tick N UPTIME"        every 0.5 s: stops while the VM is paused, UPTIME shows the jump
#   "KT key code=C value=V"   every key event of the AT keyboard (evdev), C is a Linux KEY_*
#   "KT acpid-power-button"   busybox acpid ran the power button handler, which powers off
# Ctrl-Alt-Del: a signal to init instead of the kernel's immediate reboot (the default until
# an init turns it off), so the key combination can be observed without ending the run.
echo 0 >/proc/sys/kernel/ctrl-alt-del
mkdir -p /etc/acpi/PWRF
cat >/etc/acpi/PWRF/00000080 <<'HANDLER'
#!/bin/sh
echo "KT acpid-power-button" >/dev/console
sync
poweroff -f
HANDLER
chmod +x /etc/acpi/PWRF/00000080
# busybox acpid reads the power button's input device (button.ko + evdev.ko) and runs
# /etc/acpi/PWRF/00000080 for KEY_POWER.
acpid -c /etc/acpi -l /tmp/acpid.log
echo "KT acpid=$(pidof acpid)"
echo "KT power_button_input=$(cat /sys/class/input/input*/name 2>/dev/null | grep -c 'Power Button')"

kbd=
for d in /sys/class/input/event*; do
	case "$(cat "$d/device/name" 2>/dev/null)" in
	AT*keyboard*) kbd=/dev/input/${d##*/} ;;
	esac
done
echo "KT kbd=$kbd"
if [ -n "$kbd" ]; then
	# One struct input_event (24 bytes on x86-64) per read: u16 words 9, 10, 11 are type,
	# code and the low half of value. fd 3 stays open so no event is lost between reads.
	(
		exec 3<"$kbd"
		while :; do
			set -- $(dd bs=24 count=1 <&3 2>/dev/null | od -An -tu2 -v | tr '\n' ' ')
			if [ $# -lt 12 ]; then
				sleep 1
				continue
			fi
			[ "$9" = 1 ] && echo "KT key code=${10} value=${11}"
		done
	) &
fi

i=0
while :; do
	i=$((i + 1))
	echo "KT tick $i $(cut -d' ' -f1 /proc/uptime)"
	[ $i = 2 ] && echo "KT qmp-ready"
	usleep 500000
done

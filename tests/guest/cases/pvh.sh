#!/bin/sh
# PVH boot: the ELF vmlinux inside Debian's bzImage (extracted on the build host) carries the
# XEN_ELFNOTE_PHYS32_ENTRY note; Kestrel enters it in 32-bit protected mode with an
# hvm_start_info (command line, initrd module, memory map, RSDP). The guest runs the "boot" script.
. "$KT_LIB"
case "$1" in
setup)
	python3 "$KT_ROOT/tests/guest/extract-vmlinux.py" "${KT_GUEST:-$KESTREL_BUILD/guest}/vmlinuz" \
		"$KT_ART/vmlinux"
	exit
	;;
run) ;;
*) exit 0 ;;
esac
log=$KT_OUT/pvh.log
if [ ! -f "$KT_ART/vmlinux" ]; then
	kt_fail "pvh: vmlinux was not extracted from the bzImage on the build host"
	exit 0
fi
tok=$(kt_token)
kt_vm "$log" kestrel run --kernel "$KT_ART/vmlinux" --initrd "$KT_GUEST/initramfs.cpio.gz" \
	--cmdline "console=ttyS0 kestrel.test=boot $tok" --mem 512M --cpus 2 --no-reboot \
	--console stdio
kt_ran pvh "$log" || exit 0
if grep -q "KT boot-done" "$log"; then
	kt_ok "pvh: the guest ran its boot script"
else
	kt_show "$log"
	kt_fail "pvh: no 'KT boot-done' line ($(kt_end "$log"))"
fi
kt_expect "pvh: nproc" "$(kt_get "$log" nproc)" 2
case "$(kt_get "$log" cmdline)" in
*"$tok"*) kt_ok "pvh: command line from hvm_start_info" ;;
*) kt_fail "pvh: /proc/cmdline lacks the token" ;;
esac
case " $(kt_get "$log" acpi_tables) " in
*" FACP "*) kt_ok "pvh: ACPI tables found through start_info's RSDP" ;;
*) kt_fail "pvh: no FACP table (guest saw: $(kt_get "$log" acpi_tables))" ;;
esac

#!/bin/sh
# A guest triple fault: with --no-reboot Kestrel exits 0 and says the guest triple-faulted;
# without it, the VM is reset and the kernel boots a second time, which then exits.
# The kernel is tests/guest/multiboot/triple.asm, assembled on the build host.
. "$KT_LIB"
case "$1" in
setup)
	nasm -f elf32 -o "$KT_ART/triple.o" "$KT_ROOT/tests/guest/multiboot/triple.asm" &&
		ld -m elf_i386 --no-warn-rwx-segments -T "$KT_ROOT/tests/guest/multiboot/link.ld" \
			-o "$KT_ART/triple.elf" "$KT_ART/triple.o"
	exit
	;;
run) ;;
*) exit 0 ;;
esac
elf=$KT_ART/triple.elf
KT_FAULT_OK=1 # kt_ran: the triple fault is what this case is about
if [ ! -f "$elf" ]; then
	kt_fail "triple-fault: $elf was not built (nasm/ld in the case's setup failed)"
	exit 0
fi
log=$KT_OUT/triple-noreboot.log
kt_vm "$log" kestrel run --kernel "$elf" --mem 32M --no-reboot --console stdio
if kt_ran "triple-fault --no-reboot" "$log"; then
	if grep -q "triple-faulted" "$log.err"; then
		kt_ok "triple-fault --no-reboot: says the guest triple-faulted"
	else
		kt_fail "triple-fault --no-reboot: no message on stderr ($(head -c 200 "$log.err"))"
	fi
	kt_expect "triple-fault --no-reboot: one boot" "$(grep -c KESTREL-TRIPLE "$log")" 1
fi
# Without --no-reboot the triple fault resets the VM; the second boot (it counts boots in CMOS
# NVRAM) exits through the debug-exit port with status 85.
log=$KT_OUT/triple-reset.log
kt_vm "$log" kestrel run --kernel "$elf" --mem 32M --debug-exit --console stdio
if kt_ran "triple-fault reset" "$log" 85 "no second boot reached the debug-exit port"; then
	if grep -q "KESTREL-TRIPLE boot 1" "$log" && grep -q "KESTREL-TRIPLE boot 2" "$log"; then
		kt_ok "triple-fault: the VM was reset and booted again (boot 1, then boot 2)"
	else
		kt_fail "triple-fault: want boot 1 then boot 2 on the console"
		kt_show "$log"
	fi
fi

#!/bin/sh
# Multiboot v1: a tiny 32-bit ELF kernel (tests/guest/multiboot/hello.asm) prints a line on
# COM1 and writes 0x21 to the debug-exit port 0xf4; with --debug-exit Kestrel exits with
# (0x21 << 1) | 1 = 67. Setup assembles it on the build host (nasm, ld).
. "$KT_LIB"
case "$1" in
setup)
	src=$KT_ROOT/tests/guest/multiboot/hello.asm
	elf=$KT_ART/multiboot-hello.elf
	# unchanged sources: keep the ELF (and so the nested L1 initramfs) as it is
	[ "$elf" -nt "$src" ] && [ "$elf" -nt "$KT_ROOT/tests/guest/multiboot/link.ld" ] && exit 0
	nasm -f elf32 -o "$KT_ART/multiboot-hello.o" "$src" &&
		ld -m elf_i386 --no-warn-rwx-segments -T "$KT_ROOT/tests/guest/multiboot/link.ld" -o "$KT_ART/multiboot-hello.elf" \
			"$KT_ART/multiboot-hello.o"
	exit
	;;
run) ;;
*) exit 0 ;;
esac
kt_multiboot_case multiboot kestrel

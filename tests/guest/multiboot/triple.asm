; A multiboot v1 kernel that triple-faults on purpose (tests/guest/cases/triple_fault.sh).
;
; It counts its boots in CMOS NVRAM byte 0x38 (kept across a reset, cleared at power-on) and
; prints "KESTREL-TRIPLE boot N" on COM1. On the first boot it loads an IDT with limit 0 and
; executes INT3: the #BP cannot be delivered (#GP), nor can the #GP (#DF), nor the #DF: a
; triple fault, i.e. a shutdown, which the VMM turns into a reset or, with --no-reboot, an
; exit. On the second boot it writes 0x2a to the debug-exit port, so the VMM exits with
; status (0x2a << 1) | 1 = 85: exactly one reset, whatever the timing.

bits 32

MB_MAGIC equ 0x1BADB002
MB_FLAGS equ 0
COM1 equ 0x3f8
CMOS_INDEX equ 0x70
CMOS_DATA equ 0x71
BOOT_COUNT equ 0x38             ; an NVRAM byte no firmware of ours uses
DEBUG_EXIT equ 0xf4

section .multiboot progbits alloc noexec nowrite align=4
	dd MB_MAGIC
	dd MB_FLAGS
	dd -(MB_MAGIC + MB_FLAGS)

section .text
global _start
_start:
	cli
	mov al, BOOT_COUNT
	out CMOS_INDEX, al
	in al, CMOS_DATA
	inc al
	mov bl, al                  ; bl = this boot's number
	mov al, BOOT_COUNT
	out CMOS_INDEX, al
	mov al, bl
	out CMOS_DATA, al
	add [digit], bl             ; '0' + boot number (1..9 is all the test needs)
	mov esi, msg
	mov dx, COM1
.next_char:
	lodsb
	test al, al
	jz .printed
	out dx, al
	jmp .next_char
.printed:
	cmp bl, 1
	jne .exit
	lidt [null_idt]
	int3
.exit:
	mov al, 0x2a
	out DEBUG_EXIT, al
.halt:                          ; reached only without --debug-exit
	hlt
	jmp .halt

section .data
null_idt:
	dw 0                    ; limit 0: no vector can be delivered
	dd 0
msg:
	db "KESTREL-TRIPLE boot "
digit:
	db "0", 13, 10, 0

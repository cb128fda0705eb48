; A multiboot v1 kernel that triple-faults on purpose (tests/guest/cases/triple_fault.sh).
;
; It prints one line on COM1, loads an IDT with limit 0 and executes INT3: the #BP cannot be
; delivered (#GP), nor can the #GP (#DF), nor the #DF: a triple fault, i.e. a shutdown, which
; the VMM turns into a reset (the kernel boots and prints again) or, with --no-reboot, an exit.

bits 32

MB_MAGIC equ 0x1BADB002
MB_FLAGS equ 0
COM1 equ 0x3f8

section .multiboot progbits alloc noexec nowrite align=4
	dd MB_MAGIC
	dd MB_FLAGS
	dd -(MB_MAGIC + MB_FLAGS)

section .text
global _start
_start:
	cli
	mov esi, msg
	mov dx, COM1
.next_char:
	lodsb
	test al, al
	jz .fault
	out dx, al
	jmp .next_char
.fault:
	lidt [null_idt]
	int3
.halt:                          ; never reached
	hlt
	jmp .halt

section .data
null_idt:
	dw 0                    ; limit 0: no vector can be delivered
	dd 0
msg:
	db "KESTREL-TRIPLE boot", 13, 10, 0

; A minimal multiboot v1 kernel for the Kestrel integration tests (tests/guest/cases/multiboot.sh).
;
; Multiboot Specification 0.6.96, section 3.1 (OS image header) and 3.2 (machine state): the
; loader enters _start in 32-bit protected mode, paging off, EAX = 0x2BADB002, EBX = boot info.
; The kernel prints one line on COM1 (8250 at 0x3f8, polling LSR bit 5 "THR empty" a bounded
; number of times) and writes EXIT_VALUE to the debug-exit port 0xf4, which makes the VMM exit
; with status (EXIT_VALUE << 1) | 1 = 67. A wrong loader magic exits with BAD_MAGIC_VALUE (69).

bits 32

MB_MAGIC equ 0x1BADB002
MB_FLAGS equ 0                  ; ELF image: no a.out kludge, no memory/video requests
MB_LOADER_MAGIC equ 0x2BADB002
COM1 equ 0x3f8
COM1_LSR equ COM1 + 5
LSR_THR_EMPTY equ 0x20
DEBUG_EXIT equ 0xf4
EXIT_VALUE equ 0x21
BAD_MAGIC_VALUE equ 0x22

section .multiboot progbits alloc noexec nowrite align=4
	dd MB_MAGIC
	dd MB_FLAGS
	dd -(MB_MAGIC + MB_FLAGS)

section .text
global _start
_start:
	cli
	mov esp, stack_top
	mov edi, EXIT_VALUE
	mov esi, msg_hello
	cmp eax, MB_LOADER_MAGIC
	je .next_char
	mov edi, BAD_MAGIC_VALUE
	mov esi, msg_bad_magic
.next_char:
	lodsb
	test al, al
	jz .done
	mov bl, al
	mov ecx, 100000         ; bounded wait: a UART that never sets THRE must not hang us
.wait_thre:
	mov dx, COM1_LSR
	in al, dx
	test al, LSR_THR_EMPTY
	jnz .send
	loop .wait_thre
.send:
	mov al, bl
	mov dx, COM1
	out dx, al
	jmp .next_char
.done:
	mov eax, edi
	out DEBUG_EXIT, al
.halt:                          ; only reached if the VMM has no debug-exit device
	hlt
	jmp .halt

section .rodata
msg_hello:
	db "KESTREL-MULTIBOOT hello from a multiboot v1 kernel", 13, 10, 0
msg_bad_magic:
	db "KESTREL-MULTIBOOT bad loader magic in EAX", 13, 10, 0

section .bss
align 16
stack:
	resb 4096
stack_top:

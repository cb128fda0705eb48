; Benchmark loops for emu-bench, run both natively and in accel/emu.
; System V convention: rdi = 64 KiB data buffer, esi = iterations. Position independent.
bits 64
	dd alu - $$, mem - $$, fp - $$, 0

align 64
; ALU-heavy: register arithmetic, logic, shifts, LEA, compare and branch.
alu:
	push rbx
	push r12
	mov ecx, esi
	mov eax, 1
	mov ebx, 3
	xor edx, edx
	xor r8d, r8d
	mov r9d, 7
	xor r12d, r12d
.l:	add rax, rbx
	xor rdx, rax
	sub rbx, rdx
	and r8, rax
	or r9, rdx
	shl r9, 1
	lea r10, [rax + rbx * 2 + 8]
	inc r12
	add r8, r10
	sar r10, 3
	mov r11, r10
	cmp r11, rax
	dec ecx
	jnz .l
	mov rax, r12
	pop r12
	pop rbx
	ret

align 64
; memcpy/strlen-heavy: rep movsq of 2 KiB, then a byte-at-a-time strlen of a 200-byte
; string, then a word-copy loop.
mem:
	push rbx
	mov r8, rdi
	mov r9d, esi
	; build a NUL-terminated 200-byte string at r8+0x8000
	lea rdi, [r8 + 0x8000]
	mov ecx, 200
	mov al, 'a'
	rep stosb
	mov byte [rdi], 0
.l:	lea rsi, [r8]
	lea rdi, [r8 + 0x4000]
	mov ecx, 256
	rep movsq
	lea rdx, [r8 + 0x8000]
	xor eax, eax
.s:	cmp byte [rdx + rax], 0
	je .sd
	inc rax
	jmp .s
.sd:	xor ecx, ecx
.c:	mov rbx, [r8 + rcx * 8]
	mov [r8 + rcx * 8 + 0x2000], rbx
	add ecx, 1
	cmp ecx, 64
	jb .c
	dec r9d
	jnz .l
	pop rbx
	ret

align 64
; floating point: scalar and packed SSE2 doubles (a polynomial and a dot product).
fp:
	mov ecx, esi
	mov rax, 0x3ff0000000000000 ; 1.0
	movq xmm0, rax
	mov rax, 0x3fe0000000000000 ; 0.5
	movq xmm1, rax
	movapd xmm2, xmm0
	xorpd xmm3, xmm3
	movapd xmm4, xmm0
	unpcklpd xmm4, xmm1
	xorpd xmm5, xmm5
.l:	mulsd xmm2, xmm1
	addsd xmm2, xmm0
	movapd xmm6, xmm4
	mulpd xmm6, xmm4
	addpd xmm5, xmm6
	subsd xmm3, xmm2
	sqrtsd xmm7, xmm2
	divsd xmm7, xmm0
	addsd xmm3, xmm7
	cvtsi2sd xmm6, ecx
	addsd xmm3, xmm6
	dec ecx
	jnz .l
	movq rax, xmm3
	ret

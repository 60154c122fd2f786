/*
 * gotpcrel: what position-independent code emits to reach a symbol, a
 * relocation through the GOT (R_X86_64_REX_GOTPCRELX), which Linux's x86-64
 * loader does not know.
 */
	.section .modinfo, "a"
	.asciz "name=gotpcrel"
	.text
	.globl	gotpcrel_read
gotpcrel_read:
	movq	page_offset_base@GOTPCREL(%rip), %rax
	movq	(%rax), %rax
	ret

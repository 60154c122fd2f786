/*
 * smallmodel: what gcc's default code model (-mcmodel=small) emits for an
 * address, a zero-extended 32-bit immediate (R_X86_64_32), which no kernel
 * address fits: Linux's "likely not compiled with -mcmodel=kernel".
 */
	.section .modinfo, "a"
	.asciz "name=smallmodel"
	.text
	.globl	smallmodel_addr
smallmodel_addr:
	movl	$page_offset_base, %eax
	ret

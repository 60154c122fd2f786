/*
 * types: one field of each relocation type apply_relocate_add handles, for
 * the loader's tests. Each is labelled, so a test finds it by symbol.
 */
	.section .modinfo, "a"
	.asciz "name=types"

	.text
	.globl	types_code
types_code:
t_pc32:	movq	page_offset_base(%rip), %rax	/* R_X86_64_PC32 */
t_plt32: call	physmap_console_write@PLT	/* R_X86_64_PLT32 */
t_32s:	movq	$types_data, %rax		/* R_X86_64_32S */
	.reloc	., R_X86_64_NONE, page_offset_base
	ret

	.data
	.globl	types_data
types_data:
t_64:	.quad	page_offset_base + 8		/* R_X86_64_64 */
t_pc64:	.quad	physmap_console_write - .	/* R_X86_64_PC64 */
t_32:	.long	types_small			/* R_X86_64_32 */

	.globl	types_small
	.set	types_small, 0x7fff1234		/* SHN_ABS */

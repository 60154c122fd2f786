/* wx: a section both writable and executable, which Linux refuses. */
	.section .modinfo, "a"
	.asciz "name=wx"
	.section .wxcode, "awx", @progbits
	.globl	wx_code
wx_code:
	ret

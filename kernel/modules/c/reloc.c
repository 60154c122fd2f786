/*
 * reloc: a module that reaches the kernel through every relocation gcc
 * emits for the kernel code model (-mcmodel=kernel, -fno-pic), and exports
 * a function and a variable to the module "deps".
 *
 * Each reloc_* function, called with no argument, returns one value the
 * kernel can check against its own:
 *
 *   reloc_pc32      page_offset_base, read RIP-relative: R_X86_64_PC32
 *   reloc_plt32     what physmap_console_write returned, called: R_X86_64_PLT32
 *   reloc_abs64     the first entry of a table of absolute pointers, the
 *                   kernel address of page_offset_base: R_X86_64_64
 *   reloc_abs32s    the address of reloc_words as a sign-extended 32-bit
 *                   immediate: R_X86_64_32S
 *   reloc_index32s  reloc_words[reloc_index], addressed as a sign-extended
 *                   32-bit displacement: R_X86_64_32S
 *   reloc_ro_after_init  page_offset_base as init saved it
 */
#include "physmap_module.h"

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("reaches the kernel through PC32, PLT32, 64 and 32S relocations");

static const char reloc_banner[] = "reloc: init\n";
static const char reloc_probe[] = "reloc: called\n";

/* Module data reached through 32S: the four values are arbitrary marks. */
unsigned long reloc_words[4] = {
	0x72656c6f63300000UL, 0x72656c6f63310000UL,
	0x72656c6f63320000UL, 0x72656c6f63330000UL,
};

/* Volatile, so gcc indexes reloc_words with it instead of folding. */
volatile unsigned long reloc_index = 2;

/* Absolute pointers: each entry is an R_X86_64_64 relocation in .data. */
unsigned long *reloc_table[2] = { &page_offset_base, &reloc_words[1] };

/* Set by init, read-only afterwards. */
unsigned long reloc_saved_pob __ro_after_init;

unsigned long reloc_pc32(void)
{
	return page_offset_base;
}

unsigned long reloc_plt32(void)
{
	return physmap_console_write(reloc_probe, sizeof(reloc_probe) - 1);
}

unsigned long reloc_abs64(void)
{
	return (unsigned long)reloc_table[0];
}

unsigned long reloc_abs32s(void)
{
	return (unsigned long)&reloc_words[0];
}

unsigned long reloc_index32s(void)
{
	return reloc_words[reloc_index];
}

unsigned long reloc_ro_after_init(void)
{
	return reloc_saved_pob;
}

/* Exported: page_offset_base + x, and a count of the calls deps makes. */
unsigned long reloc_calls;
EXPORT_SYMBOL(reloc_calls);

unsigned long reloc_add(unsigned long x)
{
	return page_offset_base + x;
}
EXPORT_SYMBOL(reloc_add);

/*
 * init checks one relocation kind against another before the kernel checks
 * any: the R_X86_64_64 pointer to page_offset_base must be the address the
 * 32S immediate gives, and the word it points at the value PC32 reads.
 */
static int reloc_init(void)
{
	if ((unsigned long)reloc_table[0] != (unsigned long)&page_offset_base)
		return -EINVAL;
	if (*reloc_table[0] != page_offset_base)
		return -EINVAL;
	reloc_saved_pob = page_offset_base;
	physmap_console_write(reloc_banner, sizeof(reloc_banner) - 1);
	return 0;
}
module_init(reloc_init);

static void reloc_exit(void)
{
	reloc_calls = 0;
}
module_exit(reloc_exit);

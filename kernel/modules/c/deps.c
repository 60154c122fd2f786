/*
 * deps: a module that uses what the module "reloc" exports, so it cannot
 * load before reloc (modprobe's dependency order), and reloc cannot unload
 * while deps is loaded.
 *
 * deps_call returns reloc_add(DEPS_ADDEND), which is page_offset_base +
 * DEPS_ADDEND, and counts itself in reloc's exported reloc_calls.
 */
#include "physmap_module.h"

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("calls the function the module reloc exports");

#define DEPS_ADDEND 0x44455053UL /* "DEPS" */

extern unsigned long reloc_add(unsigned long x);
extern unsigned long reloc_calls;

static const char deps_banner[] = "deps: init\n";

unsigned long deps_call(void)
{
	reloc_calls++;
	return reloc_add(DEPS_ADDEND);
}

static int deps_init(void)
{
	physmap_console_write(deps_banner, sizeof(deps_banner) - 1);
	return 0;
}
module_init(deps_init);

static void deps_exit(void)
{
}
module_exit(deps_exit);

/* undef: a module that uses a symbol nothing exports. */
#include "physmap_module.h"

extern unsigned long no_such_symbol;

unsigned long undef_read(void)
{
	return no_such_symbol + page_offset_base;
}

/* bigbss: a module whose .bss (2 GiB) is larger than the module area. */
#include "physmap_module.h"

static char bigbss_area[2UL << 30];

unsigned long bigbss_addr(void)
{
	return (unsigned long)&bigbss_area[1];
}

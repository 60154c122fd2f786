/* initsec: init code in .init.text, as Linux's __init puts it. */
#include "physmap_module.h"

__attribute__((__section__(".init.text"))) static int initsec_init(void)
{
	return 0;
}
module_init(initsec_init);

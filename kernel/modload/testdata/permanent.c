/* permanent: a module with init and no exit, which cannot be unloaded. */
#include "physmap_module.h"

static int permanent_init(void)
{
	return 0;
}
module_init(permanent_init);

/* placeholder: being written */
#include "util/err.h"
int rk_placeholder_node(void);
int rk_placeholder_node(void)
{
    return 0;
}

/* placeholder: being written */
#include "util/err.h"
int rk_placeholder_admin(void);
int rk_placeholder_admin(void)
{
    return 0;
}

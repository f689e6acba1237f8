/* placeholder: being written */
#include "util/err.h"
int rk_placeholder_config(void);
int rk_placeholder_config(void)
{
    return 0;
}

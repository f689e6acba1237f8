/* placeholder: being written */
#include "util/err.h"
int rk_placeholder_toml(void);
int rk_placeholder_toml(void)
{
    return 0;
}

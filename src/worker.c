/* placeholder: being written */
#include "util/err.h"
int rk_placeholder_worker(void);
int rk_placeholder_worker(void)
{
    return 0;
}

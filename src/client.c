/* placeholder: being written */
#include "util/err.h"
int rk_placeholder_client(void);
int rk_placeholder_client(void)
{
    return 0;
}

/* placeholder: being written */
#include "util/err.h"
int rk_placeholder_proto(void);
int rk_placeholder_proto(void)
{
    return 0;
}

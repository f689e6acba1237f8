/* placeholder: being written */
#include "util/err.h"
int rk_placeholder_server(void);
int rk_placeholder_server(void)
{
    return 0;
}

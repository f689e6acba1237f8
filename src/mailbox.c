/* placeholder: being written */
#include "util/err.h"
int rk_placeholder_mailbox(void);
int rk_placeholder_mailbox(void)
{
    return 0;
}

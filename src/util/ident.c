/* Identifier validation (ident.h). */
#include "util/ident.h"

static bool ident_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

bool rk_ident_valid(const char *s, size_t len, size_t *bad)
{
    size_t at = len;
    if (len >= 1 && len <= RK_IDENT_MAX)
        for (at = 0; at < len && ident_char((unsigned char)s[at]); at++)
            ;
    if (bad)
        *bad = at;
    return at == len && len >= 1 && len <= RK_IDENT_MAX;
}

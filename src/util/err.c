/* Text for ringkv's error codes; -errno values fall through to strerror. */
#include "util/err.h"

#include <string.h>

static const char *const texts[] = {
    [1] = "not found",
    [2] = "stored data is corrupt",
    [3] = "no space left on device",
    [4] = "a newer version is already stored",
    [5] = "too large",
    [6] = "writes are disabled after an I/O error",
    [7] = "data dir is locked",
    [8] = "invalid argument",
    [9] = "malformed message",
    [10] = "unsupported",
    [11] = "busy",
    [12] = "quorum not met",
    [13] = "timed out",
    [14] = "refused",
    [15] = "rate limited",
};

const char *rk_strerror(int code)
{
    if (code >= 0)
        return "success";
    if (code <= -RK_EBASE - 1 && code > RK_ELAST) {
        int i = -code - RK_EBASE;
        return texts[i];
    }
    /* strerror() is thread-safe in glibc for valid codes (static table). */
    return strerror(-code);
}

/* placeholder: being written */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
uint8_t *rk_fuzz_seed(size_t *len);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)data, (void)size;
    return 0;
}
uint8_t *rk_fuzz_seed(size_t *len)
{
    *len = 1;
    return calloc(1, 1);
}

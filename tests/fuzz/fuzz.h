/* What every fuzz target provides and may use. A target defines
 * LLVMFuzzerTestOneInput (the libFuzzer entry) and rk_fuzz_seed (one valid
 * input, malloc'd, that the replay driver mutates); CHECK aborts on a
 * broken property so both libFuzzer and the replay driver report it. */
#ifndef RK_FUZZ_H
#define RK_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
uint8_t *rk_fuzz_seed(size_t *len);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#endif

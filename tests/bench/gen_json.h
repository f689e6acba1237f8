/* Deterministic JSON-like values for the benchmarks: user records with field
 * names, numbers and short strings, so a compressor meets the redundancy of
 * a real document store instead of random bytes (incompressible) or one
 * repeated byte (trivially compressible). */
#ifndef RK_BENCH_GEN_JSON_H
#define RK_BENCH_GEN_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Fill buf with exactly len bytes forming one valid JSON object generated
 * from seed: the same (seed, len) always gives the same bytes. Fields are
 * added while they fit; the rest is a padding string field, or spaces when
 * fewer than 8 bytes remain. len < 2 gives spaces. Thread-safe. */
void rk_genjson_fill(char *buf, size_t len, uint64_t seed);

/* A bijective 64-bit mix (splitmix64's finaliser): distinct inputs give
 * distinct outputs, so it turns counters into unique random-looking keys. */
uint64_t rk_genjson_mix(uint64_t x);

#endif

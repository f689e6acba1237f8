/* Clocks. Wall time (ms since the Unix epoch) stamps expiry and tombstone
 * age; monotonic time measures intervals. */
#ifndef RK_UTIL_CLOCK_H
#define RK_UTIL_CLOCK_H

#include <stdint.h>

uint64_t rk_clock_wall_ms(void);
uint64_t rk_clock_mono_ns(void);

#endif

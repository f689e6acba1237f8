/* The reaper watch (contract in reapwatch.h). Its state is static: a probe
 * may still be queued in nng when the server is gone, and its callback must
 * find valid memory whenever it runs. */
#include "server/reapwatch.h"

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <stdatomic.h>

#define PROBE_SLEEP_MS (24 * 3600 * 1000) /* never ends by itself: only the reaper ends it */

static atomic_ullong sent, done; /* probes handed to the reaper, probes it freed */
static uint64_t sent_ns;         /* when the outstanding probe was sent (main thread) */

static void on_reaped(void *arg)
{
    (void)arg;
    atomic_fetch_add(&done, 1);
}

void rk_reapwatch_probe(uint64_t now_ns)
{
    nng_aio *aio;
    if (atomic_load(&done) != atomic_load(&sent) || nng_aio_alloc(&aio, on_reaped, NULL) != 0)
        return;
    atomic_fetch_add(&sent, 1);
    sent_ns = now_ns;
    nng_sleep_aio(PROBE_SLEEP_MS, aio);
    nng_aio_reap(aio);
}

bool rk_reapwatch_stuck(uint64_t now_ns, uint64_t limit_ns)
{
    return atomic_load(&done) != atomic_load(&sent) && now_ns - sent_ns > limit_ns;
}

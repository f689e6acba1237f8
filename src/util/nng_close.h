/* nng_close() with a time limit. nng 1.5.2 can deadlock closing a socket
 * whose dialer is reconnecting at that moment (nanomsg/nng#1543, fixed
 * after 1.5.2): the call never returns. A daemon must still stop, so the
 * close runs on a helper thread; if it has not returned within limit_ms we
 * go on without it and the socket is reclaimed when the process exits. */
#ifndef RK_NNG_CLOSE_H
#define RK_NNG_CLOSE_H

#include <nng/nng.h>
#include <stdbool.h>

/* True if s closed within limit_ms; false (logged, with what) if it is
 * stuck or no thread could be started (then it was not closed). */
bool rk_nng_close_bounded(nng_socket s, unsigned limit_ms, const char *what);

#endif

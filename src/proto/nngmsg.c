/* Encoding a message into an nng message's body (proto.h). */
#include "proto/proto.h"
#include "util/err.h"

#include <errno.h>
#include <nng/nng.h>

int rk_proto_msg_encode(nng_msg *msg, const struct rk_msg *m)
{
    size_t n = rk_proto_size(m);
    if (n == 0)
        return RK_ETOOLARGE; /* body over 4 GiB: cannot be encoded */
    if (nng_msg_realloc(msg, n) != 0)
        return -ENOMEM;
    rk_proto_encode(m, nng_msg_body(msg));
    return 0;
}

/* Serving a peer's RBATCH (proto.h): one message carrying many replica
 * requests, whose keys may belong to any of this node's workers.
 *
 * The receiving worker splits the batch into parts, one nng message per
 * frame, and routes each like a request of its own (served here, or
 * posted to the owning worker's mailbox). A part's reply goes through the
 * owner's normal reply path, so a write's answer still waits for the
 * commit (and sync) that made it durable; instead of going to a socket it
 * comes back here. The worker that brings in the last part's reply sends
 * the whole batch's reply, whichever thread it is on.
 *
 * A part carries a 16-byte nng header: [0x80000000 | index][rid][batch].
 * A peer controls every byte of what it sends, header included (extra
 * backtrace words make a 16-byte header too), so a part is recognised by
 * where it came from first: it was made here, it has no pipe
 * (rk_msg_is_internal); only then is its header read.
 *
 * Threads: split on the receiving worker; parts done on any worker.
 */
#ifndef RK_BATCH_H
#define RK_BATCH_H

#include "proto/proto.h"
#include "server/worker.h"

#include <nng/nng.h>
#include <stdbool.h>

/* Split msg (an RBATCH request, decoded as req) and pass every part to
 * route(arg, part), which owns it from then on. 0: msg belongs to the
 * batch, answered when its last part is. RK_EMALFORMED (frames do not
 * tile the value, or more than RK_PROTO_MAX_FRAMES) or -ENOMEM: nothing was routed, msg is
 * untouched. */
int rk_batch_split(struct rk_shared *sh, nng_msg *msg, const struct rk_msg *req,
                   void (*route)(void *arg, nng_msg *part), void *arg);

/* Did m come from this process rather than from a socket? nng stamps every
 * message it receives with the pipe it came on (ids 1..2^31-1 in 1.5.2); a
 * message made with nng_msg_alloc has pipe id 0. Nothing a peer sends can
 * change that, so it alone may decide whether a header is trusted. (The
 * raw id is read: nng_pipe_id() maps 0 to -1.) */
static inline bool rk_msg_is_internal(nng_msg *m)
{
    return nng_msg_get_pipe(m).id == 0;
}

/* When the batch part belongs to was received (its rk_reply_stamp). */
uint64_t rk_batch_part_received_ns(nng_msg *part);

/* Is m a batch part (its body, once answered, is the part's reply)? Only
 * an internal message can be one. */
bool rk_batch_is_part(nng_msg *m);

/* The part's body now holds its reply (answered: true), or it could not
 * be answered (false: the coordinator will time that request out). Takes
 * part. The last part sends the batch's reply. */
void rk_batch_part_done(nng_msg *part, bool answered);

#endif

/* What a worker keeps of the requests it answers, per operation: a
 * latency histogram (µs from the request's receipt on any worker to its
 * reply) and a count of replies per status. Operations: the client data
 * requests PUT, GET and DEL, and the replica requests peers send, RPUT and
 * RGET (alone or as parts of an RBATCH). Admin requests and the replica
 * requests a node's own coordinator answers locally are not kept here.
 *
 * One writer, the worker; published with its other counters
 * (rk_worker_stats) and summed over workers by rk_admin_sum_stats, so the
 * same figures feed STATS, OVERVIEW and /metrics.
 */
#ifndef RK_SERVER_OPSTATS_H
#define RK_SERVER_OPSTATS_H

#include "proto/proto.h"
#include "util/histo.h"

#include <stdint.h>

enum rk_opstat {
    RK_OPSTAT_PUT,
    RK_OPSTAT_GET,
    RK_OPSTAT_DEL,
    RK_OPSTAT_RPUT, /* replica write */
    RK_OPSTAT_RGET, /* replica read */
    RK_OPSTAT_N
};
#define RK_OPSTAT_CLIENT_N 3 /* the first three are client requests */

struct rk_opstats {
    struct rk_histo latency[RK_OPSTAT_N];
    uint64_t results[RK_OPSTAT_N][RK_ST_COUNT]; /* replies by status */
};

/* The kept operation of an opcode, or -1 when it is not kept. */
int rk_opstat_of(uint8_t opcode);

/* Its label: "put", "get", "del" (client), "write", "read" (replica). */
const char *rk_opstat_name(enum rk_opstat k);

/* A reply with this status, us after its request's receipt. A status this
 * version does not know counts as INTERNAL. */
void rk_opstats_record(struct rk_opstats *o, enum rk_opstat k, uint16_t status, uint64_t us);

/* A reply message's own header (proto.h: opcode byte 3, status bytes
 * 6-7) recorded, when its opcode is kept; len is the body's length. */
void rk_opstats_record_reply(struct rk_opstats *o, const uint8_t *body, size_t len, uint64_t us);

/* Add from's figures to into's. */
void rk_opstats_merge(struct rk_opstats *into, const struct rk_opstats *from);

/* The client requests' histograms merged into *out (zeroed first). */
void rk_opstats_client_latency(const struct rk_opstats *o, struct rk_histo *out);

#endif

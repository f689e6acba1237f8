/* Holdings: which partitions this node has a complete copy of (docs/TRANSFERS.md §2).
 *
 * A node reads a partition's "not found" as evidence only if it holds the
 * partition; a node that became an owner of a partition it does not hold
 * yet is *pending* for it until a transfer copied the partition to it.
 * Each node keeps its own holdings (a bitmap, saved in DATA_DIR/holdings)
 * and sends them in every gossip message (gossip_wire.h), so every node
 * knows every member's holdings, one gossip interval old at worst.
 *
 * Genesis: a brand-new cluster has no holder anywhere. The first time
 * every member agrees on the member set (gossip.h, rk_gossip_agreed) with
 * at least cluster.expect_nodes members alive, each marks the partitions
 * whose preference list it is in as held, and records the member set's
 * digest and the time as its genesis. A node whose own genesis is unset
 * joins a genesis of the same member set only if it was made after this
 * process started (a peer that was quicker to notice the agreement); a
 * genesis made before (this node's data dir was wiped, or it is new to
 * an existing cluster) makes it pending for its partitions instead.
 *
 * Pure: no threads or sockets; the gossip loop owns the tables.
 */
#ifndef RK_HOLDINGS_H
#define RK_HOLDINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RK_HOLDINGS_FILE "holdings"

struct rk_holdings {
    uint32_t parts;
    uint64_t version;        /* raised on every change: wall ms, strictly increasing */
    uint64_t genesis_digest; /* member set digest of the genesis; 0: none */
    uint64_t genesis_ms;     /* when it was made (wall ms of the node that made it) */
    uint8_t *held;           /* parts bits */
};

/* Wire encoding (inside the gossip envelope), little-endian:
 *   parts u32, version u64, genesis_digest u64, genesis_ms u64,
 *   held bitmap ((parts + 7) / 8 bytes). */
#define RK_HOLDINGS_WIRE_FIXED 28u
static inline size_t rk_holdings_wire_len(uint32_t parts)
{
    return RK_HOLDINGS_WIRE_FIXED + (parts + 7u) / 8u;
}

/* All clear, version 0. 0 or -ENOMEM. */
int rk_holdings_init(struct rk_holdings *h, uint32_t parts);
void rk_holdings_fini(struct rk_holdings *h);
/* dst = src (dst initialised, same parts). */
void rk_holdings_copy(struct rk_holdings *dst, const struct rk_holdings *src);

static inline bool rk_holdings_has(const struct rk_holdings *h, uint32_t p)
{
    return p < h->parts && (h->held[p / 8] >> (p % 8) & 1u);
}
void rk_holdings_set(struct rk_holdings *h, uint32_t p, bool on);
uint32_t rk_holdings_count(const struct rk_holdings *h);

/* A new version after a change: max(version + 1, now_ms). */
void rk_holdings_bump(struct rk_holdings *h, uint64_t now_ms);

/* Encode into buf (rk_holdings_wire_len bytes). */
void rk_holdings_encode(const struct rk_holdings *h, uint8_t *buf);
/* Decode len bytes into h (initialised with the same parts): 0, or
 * RK_EMALFORMED (wrong length or partition count). */
int rk_holdings_decode(struct rk_holdings *h, const uint8_t *buf, size_t len);

/* DATA_DIR/holdings: magic, the wire encoding, crc32c. Load: 0,
 * RK_ENOTFOUND (no file: a first start), RK_ECORRUPT (bad checksum or
 * another partition count; the caller refuses to start) or -errno. */
int rk_holdings_load(struct rk_holdings *h, const char *dir);
int rk_holdings_save(const struct rk_holdings *h, const char *dir);

#endif

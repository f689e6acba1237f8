/* What gossip learned of the other members' holdings and placement
 * (holdings.h, docs/TRANSFERS.md §2): per member, the holdings and the
 * placement digest of its last message. Owned by the gossip loop.
 *
 * Agreement: every member that is up (alive, suspect or leaving) sent us
 * the placement digest we compute ourselves, i.e. it places partitions
 * over the same members as we do. Until then a new owner of a partition
 * may not yet be known to some coordinator, whose writes would skip it:
 * transfers wait for agreement (and a request timeout more, for the
 * writes already in flight), and so does the genesis.
 */
#ifndef RK_PEERHOLD_H
#define RK_PEERHOLD_H

#include "cluster/holdings.h"
#include "cluster/members.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rk_peerhold;

int rk_peerhold_create(struct rk_peerhold **out, uint32_t parts);
void rk_peerhold_free(struct rk_peerhold *ph);

/* What member id's message said: its placement digest, and its holdings
 * encoded (NULL: an older peer that sends none). true when either changed
 * (a view to rebuild). RK_EMALFORMED for holdings that do not decode
 * (nothing changed), -ENOMEM. */
int rk_peerhold_take(struct rk_peerhold *ph, const char *id, uint64_t place, const uint8_t *hold,
                     size_t len, bool *changed);

/* Member id's holdings, NULL while unknown. */
const struct rk_holdings *rk_peerhold_get(const struct rk_peerhold *ph, const char *id);

/* The others' holdings as last heard, in DATA_DIR/holdings.peers, so a
 * restarted node routes by them from its first request instead of
 * counting no one as a holder until it hears each member again (a cache:
 * a stale entry can only make a replica refuse what it no longer holds,
 * which the coordinator counts as a failure, never as an answer). Save:
 * 0 or -errno. Load: 0, RK_ENOTFOUND, RK_ECORRUPT (nothing taken). */
#define RK_PEERHOLD_FILE "holdings.peers"
int rk_peerhold_save(const struct rk_peerhold *ph, const char *dir);
int rk_peerhold_load(struct rk_peerhold *ph, const char *dir);

/* Forget members no longer in t (reaped). */
void rk_peerhold_prune(struct rk_peerhold *ph, const struct rk_members *t);

/* The placement digest of t: its members not LEFT, each with whether it
 * is LEAVING, in id order. */
uint64_t rk_place_digest(const struct rk_members *t);

/* Does every up member of t other than self agree with place? If not,
 * who gets the id of one that does not (or whose digest is unknown). */
bool rk_peerhold_agreed(const struct rk_peerhold *ph, const struct rk_members *t, uint64_t place,
                        char *who, size_t len);

#endif

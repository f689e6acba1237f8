/* The gossip message: an envelope with the sender's cluster settings and
 * table digest, then a member table (members.h wire format). Pure codec,
 * no I/O; the decoder is a fuzz target (tests/fuzz/fuzz_gossip_wire.c).
 *
 * Version 2, integers little-endian:
 *   magic u16 0x4752 ("RG" on the wire), version u8 (= 2), kind u8
 *   partitions u32, replicas u32, name_len u8 (1..63), name bytes (no NUL)
 *   digest u64   rk_members_digest() of the sender's table
 *   place u64    the sender's placement digest (rk_gossip_agreed, gossip.h)
 *   hold_len u32 (<= RK_GOSSIP_HOLD_MAX), then the sender's holdings
 *                (holdings.h wire encoding)
 *   table        rk_members_encode() bytes; the sender's own entry first
 * A version 1 envelope (no place, no holdings) is still accepted: its
 * sender's holdings stay unknown (it is pending everywhere it owns).
 * Version 3 is version 2 from a node with a cluster secret: the message
 * ends, after the table, with the secret's trailer (util/auth.h), whose
 * MAC covers every byte before it. The receiver checks and strips the
 * trailer before decoding; a node with a secret takes nothing else, and a
 * node without one takes no version 3.
 *
 * Kinds: SURVEY carries the surveyor's whole table. An ANSWER carries the
 * responder's whole table when its digest differs from the survey's, else
 * only the responder's own entry (the surveyor already knows the rest).
 * The settings travel in the clear so that a mismatch can be named
 * ("cluster.partitions: theirs 128, ours 256"), not only detected.
 */
#ifndef RK_GOSSIP_WIRE_H
#define RK_GOSSIP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define RK_GOSSIP_MAGIC    0x4752u
#define RK_GOSSIP_VERSION  2u
#define RK_GOSSIP_SIGNED   3u /* version 2 + the secret's trailer at the end */
#define RK_GOSSIP_NAME_MAX 63
#define RK_GOSSIP_HOLD_MAX (28u + 65536u / 8u) /* holdings of cluster.partitions' bound */
#define RK_GOSSIP_HDR_MAX                                                                          \
    (2u + 1u + 1u + 4u + 4u + 1u + RK_GOSSIP_NAME_MAX + 8u + 8u + 4u + RK_GOSSIP_HOLD_MAX)

enum rk_gossip_kind { RK_GOSSIP_SURVEY = 0, RK_GOSSIP_ANSWER = 1 };

struct rk_gossip_env {
    uint8_t kind;
    uint32_t partitions, replicas;
    char name[RK_GOSSIP_NAME_MAX + 1]; /* NUL-terminated, non-empty */
    uint64_t digest;
    uint64_t place;      /* 0 in a version 1 envelope */
    const uint8_t *hold; /* the holdings bytes (borrowed from the message); NULL: none */
    uint32_t hold_len;
};

/* Writes the envelope to buf (>= RK_GOSSIP_HDR_MAX bytes), hold_len
 * bytes of e->hold included, as version 2 (the signer rewrites the
 * version byte, offset 2, to RK_GOSSIP_SIGNED); returns its length, or 0
 * if the name is empty or too long or the holdings too long. */
size_t rk_gossip_env_encode(const struct rk_gossip_env *e, uint8_t *buf);

/* Reads an envelope from the start of buf; *used gets its length (the
 * table starts there). 0, RK_EMALFORMED (short, bad magic or kind, bad
 * name) or RK_EUNSUPPORTED (another version). */
int rk_gossip_env_decode(const uint8_t *buf, size_t len, struct rk_gossip_env *e, size_t *used);

/* Compares the cluster settings of two envelopes. NULL if they match, else
 * the first differing setting's key ("cluster.name", "cluster.partitions",
 * "cluster.replicas") with both values written to theirs / ours (each at
 * least RK_GOSSIP_NAME_MAX + 1 bytes). */
const char *rk_gossip_env_mismatch(const struct rk_gossip_env *their,
                                   const struct rk_gossip_env *our, char *theirs, char *ours);

#endif

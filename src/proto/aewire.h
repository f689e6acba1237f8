/* Anti-entropy wire bodies (AE_ROOT, AE_KEYS): what two replicas of a
 * partition send each other to find which keys differ. Pure functions on
 * caller-owned buffers, no allocation and no nng, so any thread may call
 * them; the decoders face the network and are fuzzed (fuzz_aewire.c).
 *
 * An AE message is an ordinary proto.h message (header, then fields) whose
 * only field is VALUE = one body below, like RBATCH's frames: nothing in
 * rk_msg changes, and an older node answers the new opcodes UNSUPPORTED.
 * Bodies are little-endian and open with a format byte (RK_AEW_FORMAT); a
 * reserved byte or flag bit that is not zero is MALFORMED, so a later
 * format can give them a meaning without being misread.
 *
 * AE_ROOT request, 272 bytes exactly:
 *   0 format u8 | 1 flags u8 (0) | 2 partition u16 | 4 reserved u32 (0)
 *   8 root u64 | 16 mids[32] u64        the initiator's tree
 * AE_ROOT reply, 16 + 256 * popcount(mask) bytes (at most 8,208):
 *   0 format u8 | 1 flags u8 (0) | 2 partition u16 | 4 mask u32
 *   8 root u64 | 16 for each bit m of mask, ascending: leaves of mid m [32] u64
 *   mask bit m = the responder's mid m differs from the request's.
 * AE_KEYS request, 12 + 2 n + cursor klen bytes:
 *   0 format u8 | 1 flags u8 (bit 0: cursor has a key) | 2 partition u16
 *   4 n u16 (1..1024) | 6 cursor pos u16 (< n) | 8 cursor klen u16
 *   10 reserved u16 (0) | 12 leaves[n] u16, strictly ascending, < 1024
 *   | cursor key
 *   Entries wanted: those of leaves[pos..n-1], in that order; in
 *   leaves[pos] only keys after the cursor key when it has one.
 * AE_KEYS reply, 12 + entries + cursor klen bytes (at most RK_AEW_BODY_MAX):
 *   0 format u8 | 1 flags u8 (bit 0: cursor has a key, bit 1: done)
 *   2 partition u16 | 4 count u16 (<= 4096) | 6 cursor pos u16
 *   8 cursor klen u16 | 10 reserved u16 (0) | count entries | cursor key
 *   entry: 0 leaf u16 | 2 klen u16 | 4 flags u8 (bit 0: tombstone)
 *          5 version u64 | 13 expiry_ms u64 | 21 key
 *   Entries go in request order of their leaves and, inside a leaf, in
 *   ascending key order (rk_aew_key_cmp). Not done: ask again with the
 *   reply's cursor. Done: cursor pos and klen are 0, no cursor key.
 * What the codec checks: sizes, counts, ranges, zero reserved bits, the
 * request's leaf order. How a reply relates to its request (leaves asked,
 * key order, cursor progress) is checked by the exchange (aexchange.c).
 */
#ifndef RK_PROTO_AEWIRE_H
#define RK_PROTO_AEWIRE_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto/proto.h"

#define RK_AEW_FORMAT 1u

/* The tree's shape (ae-design.md): 1024 leaves under 32 mid nodes of 32. */
#define RK_AEW_MIDS   32u
#define RK_AEW_FANOUT 32u
#define RK_AEW_LEAVES (RK_AEW_MIDS * RK_AEW_FANOUT)

/* Largest AE message, header included: a reply is built and parsed inside
 * one loop turn of a worker that also serves clients, and 256 KiB is
 * ~30 us of copying and ~2 ms of a 1 Gb/s link, so one exchange never
 * holds a loop or the peer socket for long; yet it carries 4096 entries
 * of 40-byte keys, so an in-sync leaf of a large partition needs one round
 * trip. It also stays far below RK_PROTO_MAX_MSG. */
#define RK_AEW_MSG_MAX (256u << 10)
/* Entries per AE_KEYS reply: at ~64 bytes per entry (21 + a typical key)
 * this binds at about the same point as the byte limit, and it bounds the
 * comparisons one reply costs the initiator's loop whatever the key size.
 * It also fits the u16 count. */
#define RK_AEW_MAX_ENTRIES 4096u

/* An AE message's prefix: proto header, then the VALUE field's tag u8 and
 * len u32; the body follows. */
#define RK_AEW_PREFIX   (RK_PROTO_HDR + 5u)
#define RK_AEW_BODY_MAX (RK_AEW_MSG_MAX - RK_AEW_PREFIX)

#define RK_AEW_ROOT_REQ_SIZE 272u
#define RK_AEW_ROOT_REP_HDR  16u
#define RK_AEW_KEYS_HDR      12u
#define RK_AEW_ENTRY_HDR     21u

/* Largest AE_KEYS request: every leaf and a cursor key of the largest size
 * storage allows (a u16 length, as in the record header). */
#define RK_AEW_KEY_MAX      65535u
#define RK_AEW_KEYS_REQ_MAX (RK_AEW_KEYS_HDR + 2u * RK_AEW_LEAVES + RK_AEW_KEY_MAX)

enum { RK_AEW_CUR_KEY = 1u << 0, RK_AEW_DONE = 1u << 1 };
enum { RK_AEW_TOMBSTONE = 1u << 0 };

/* The fixed parts, pinned: peers of different versions read them. The
 * codec reads and writes bytes little-endian itself, not through these. */
struct __attribute__((packed)) rk_aew_root_hdr {
    uint8_t format, flags;
    uint16_t partition;
    uint32_t mask; /* reserved (0) in the request */
    uint64_t root;
};
struct __attribute__((packed)) rk_aew_keys_hdr {
    uint8_t format, flags;
    uint16_t partition, count, cur_pos, cur_klen, reserved;
};
struct __attribute__((packed)) rk_aew_entry_hdr {
    uint16_t leaf, klen;
    uint8_t flags;
    uint64_t version, expiry_ms;
};
static_assert(sizeof(struct rk_aew_root_hdr) == RK_AEW_ROOT_REP_HDR, "AE_ROOT layout");
static_assert(offsetof(struct rk_aew_root_hdr, root) == 8, "AE_ROOT layout");
static_assert(RK_AEW_ROOT_REQ_SIZE == RK_AEW_ROOT_REP_HDR + 8 * RK_AEW_MIDS, "AE_ROOT layout");
static_assert(sizeof(struct rk_aew_keys_hdr) == RK_AEW_KEYS_HDR, "AE_KEYS layout");
static_assert(offsetof(struct rk_aew_keys_hdr, cur_klen) == 8, "AE_KEYS layout");
static_assert(sizeof(struct rk_aew_entry_hdr) == RK_AEW_ENTRY_HDR, "AE_KEYS entry layout");
static_assert(offsetof(struct rk_aew_entry_hdr, expiry_ms) == 13, "AE_KEYS entry layout");
/* A reply always has room for one entry of the largest key plus a cursor
 * of that key, so a responder can always make progress. */
static_assert(RK_AEW_KEYS_HDR + RK_AEW_ENTRY_HDR + 2u * RK_AEW_KEY_MAX <= RK_AEW_BODY_MAX,
              "one largest entry fits a reply");
static_assert(RK_AEW_KEYS_REQ_MAX <= RK_AEW_BODY_MAX, "the largest AE_KEYS request fits");
static_assert(RK_AEW_MAX_ENTRIES <= UINT16_MAX, "count is a u16");

struct rk_aew_root_req {
    uint16_t partition;
    uint64_t root;
    uint64_t mids[RK_AEW_MIDS];
};

/* leaves[m] is meaningful only for the mids m in mask. */
struct rk_aew_root_rep {
    uint16_t partition;
    uint32_t mask;
    uint64_t root;
    uint64_t leaves[RK_AEW_MIDS][RK_AEW_FANOUT];
};

/* Where an AE_KEYS answer resumes: leaves[pos], after key when has_key.
 * key is borrowed (the decoded buffer, or the caller's). */
struct rk_aew_cursor {
    uint16_t pos, klen;
    bool has_key;
    const uint8_t *key;
};

struct rk_aew_keys_req {
    uint16_t partition, nleaves;
    uint16_t leaves[RK_AEW_LEAVES];
    struct rk_aew_cursor cur;
};

/* One entry: a key's index state, no value. key is borrowed. */
struct rk_aew_entry {
    uint16_t leaf, klen;
    bool tombstone;
    uint64_t version, expiry_ms;
    const uint8_t *key;
};

/* A decoded AE_KEYS reply: entries stay encoded (borrowed from the
 * decoded buffer, already checked) and are read with rk_aew_entry_next. */
struct rk_aew_keys_rep {
    uint16_t partition, count;
    bool done;
    struct rk_aew_cursor cur;
    const uint8_t *entries;
    size_t entries_len;
};

/* The order of keys inside a leaf, on the wire and in the tree's scans:
 * bytewise, a prefix before the longer key. <0, 0, >0 like memcmp. */
static inline int rk_aew_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0 || alen == blen)
        return c;
    return alen < blen ? -1 : 1;
}

/* Encoders write the body at dst (which holds the size they return, at
 * most RK_AEW_BODY_MAX); they take our own values, so a bad one (a mid not
 * in mask, a klen over RK_AEW_KEY_MAX, unsorted leaves) is an RK_ASSERT. */
size_t rk_aew_root_req_encode(uint8_t *dst, const struct rk_aew_root_req *r);
size_t rk_aew_root_rep_encode(uint8_t *dst, const struct rk_aew_root_rep *r);
size_t rk_aew_keys_req_encode(uint8_t *dst, const struct rk_aew_keys_req *r);
size_t rk_aew_keys_req_size(const struct rk_aew_keys_req *r);

/* Decoders read exactly len bytes: 0, or RK_EMALFORMED (wrong size, format,
 * reserved bits, counts, ranges; *r is then unspecified). Pointers in *r
 * borrow from body. */
int rk_aew_root_req_decode(const uint8_t *body, size_t len, struct rk_aew_root_req *r);
int rk_aew_root_rep_decode(const uint8_t *body, size_t len, struct rk_aew_root_rep *r);
int rk_aew_keys_req_decode(const uint8_t *body, size_t len, struct rk_aew_keys_req *r);
int rk_aew_keys_rep_decode(const uint8_t *body, size_t len, struct rk_aew_keys_rep *r);

/* The entry at *off of a decoded reply (start with *off = 0): 1 with *e
 * filled and *off moved on, 0 after the last. */
int rk_aew_entry_next(const struct rk_aew_keys_rep *r, size_t *off, struct rk_aew_entry *e);

/* Building an AE_KEYS reply entry by entry into buf[0..cap), cap at most
 * RK_AEW_BODY_MAX. add refuses (RK_ETOOLARGE, nothing written) an entry
 * past max_entries or one that would leave no room for a cursor of its
 * key; finish writes the header and the cursor (whose key, if any, must
 * be one that was added, or shorter) and returns the body size. */
struct rk_aew_keys_builder {
    uint8_t *buf;
    size_t cap, len;     /* len: header + entries written so far */
    uint16_t count, max; /* max: entries allowed, <= RK_AEW_MAX_ENTRIES */
    uint16_t partition;
    uint16_t longest; /* the longest key added: the cursor fits it */
};
void rk_aew_keys_begin(struct rk_aew_keys_builder *b, uint8_t *buf, size_t cap, uint16_t partition,
                       uint16_t max_entries);
int rk_aew_keys_add(struct rk_aew_keys_builder *b, const struct rk_aew_entry *e);
size_t rk_aew_keys_finish(struct rk_aew_keys_builder *b, bool done,
                          const struct rk_aew_cursor *cur);

/* Write the prefix of an AE message (proto header + VALUE field header)
 * at msg, whose body of body_len bytes lies at msg + RK_AEW_PREFIX; returns
 * the whole message's size. rk_proto_decode reads it back as a message
 * with one VALUE field. */
size_t rk_aew_wrap(uint8_t *msg, uint8_t opcode, uint16_t flags, uint16_t status, uint32_t id,
                   size_t body_len);

/* The body of a decoded AE message m: 0 with *body and *len set; the
 * reply's own error when m is a reply of status other than OK
 * (rk_proto_error); RK_EMALFORMED when m is not an AE message of opcode op
 * and direction reply, has no VALUE, or its id differs from id (checked
 * only for replies). */
int rk_aew_body(const struct rk_msg *m, uint8_t op, bool reply, uint32_t id, const uint8_t **body,
                size_t *len);

#endif

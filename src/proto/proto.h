/* ringkv wire protocol, version 1: one binary message format for client,
 * admin and (later) peer traffic. Pure functions, no I/O; the decoder is a
 * fuzz target (tests/fuzz/fuzz_proto.c).
 *
 * Every message is a 16-byte header followed by fields, all little-endian:
 *
 *   offset size field
 *   0      2    magic    0x4B52 ("RK" on the wire)
 *   2      1    version  RK_PROTO_VERSION; another value gets UNSUPPORTED
 *   3      1    opcode   enum rk_op
 *   4      2    flags    RK_MSG_REPLY on replies
 *   6      2    status   enum rk_status (0 in requests)
 *   8      4    id       chosen by the requester, echoed in the reply
 *   12     4    body_len bytes after the header; must be exactly the rest
 *
 *   body: fields, each [tag u8][len u32][len bytes], any order, each tag at
 *   most once. Unknown tags are skipped (newer peers may add fields); a
 *   known tag with the wrong length, a repeated tag, or a field running past
 *   the end is MALFORMED. Integer fields are 8 bytes (u64) except R and W
 *   (1 byte).
 *
 * Requests and replies by opcode (fields in brackets are optional):
 *   PUT     req: KEY VALUE [TTL_MS] [R] [W]        rep: VERSION
 *   GET     req: KEY [R]                            rep: VALUE VERSION [EXPIRY_MS]
 *   DEL     req: KEY [W]                            rep: VERSION
 *   STATUS, STATS, HEALTH, READY
 *           req: -                                  rep: TEXT (one JSON object)
 *           HEALTH/READY answer OK for "yes" and UNAVAILABLE for "no" (the
 *           JSON's "reason" says why), so probes need not parse JSON.
 *   ECHO    req: anything                           rep: the same fields (transport benchmark)
 *   MEMBERS req: -                                  rep: TEXT (the member table as JSON)
 *   JOIN    req: KEY (a seed's gossip address)      rep: TEXT
 *   LEAVE   req: -                                  rep: TEXT; the node announces its
 *           departure, then stops
 *   REMOVE  req: KEY (node id) [FORCE]              rep: TEXT; NOT_FOUND for an unknown
 *           id, REFUSED for this node itself or (without FORCE) a member not
 *           dead or left
 *   LOCATE  req: KEY                                rep: TEXT (partition, preference list)
 *   RING    req: -                                  rep: TEXT (partitions per member)
 *   AE      req: [KEY = a partition, in decimal]    rep: TEXT (anti-entropy progress:
 *           the node's round and totals, then every partition it holds, or
 *           only that one); MALFORMED for a partition out of range
 *   REPAIR  req: [KEY = a partition, in decimal]    rep: TEXT; marks that partition
 *           (or, without KEY, every partition the node holds) to go first
 *           in anti-entropy; MALFORMED out of range, REFUSED for a partition
 *           the node holds no replica of
 *           With HINT (node to node; KEY required): the node HINT names
 *           dropped a hint of that partition and holds no replica of it;
 *           the receiver, a replica, marks it ("hint") and saves the mark
 *           before it answers OK
 *   PARTS, TRANSFERS
 *           req: -                                  rep: TEXT (per partition: keys and
 *           bytes stored here; the partitions this node is receiving)
 *   OVERVIEW req: [KEY = "placement"]               rep: TEXT (one compact JSON object:
 *           the node's state, counters, latency histogram, partition bitmaps,
 *           hints, anti-entropy, transfers and last events; with KEY, the
 *           placement of every partition too; server/overview.h lists its
 *           fields); MALFORMED for any other KEY
 * Peer requests (node to node, on the same socket; listen.peer):
 *   RPUT    req: KEY [VALUE] VERSION [EXPIRY_MS] [TOMBSTONE] [HINT]
 *           With HINT (sloppy quorum) the receiver is a fallback: it keeps the
 *           write as a hint for the named node and hands it off later.
 *           rep: VERSION (the stored
 *           one, which may be newer: a stale replica write is acknowledged, not
 *           refused); REFUSED for a version too far in the future
 *   RGET    req: KEY                                rep: VALUE VERSION [EXPIRY_MS]
 *           [TOMBSTONE], or NOT_FOUND when the replica has nothing
 *   RBATCH  req: VALUE = frames                     rep: VALUE = frames
 *           A frame is [rid u32][one encoded message]; the message's own
 *           header gives its length. A request's frames are RPUT/RGET
 *           requests; the reply has one frame per request frame, in any
 *           order, each carrying its request's rid and its reply. Every
 *           replica request goes in one: a coordinator sends one message
 *           per peer per loop turn, whatever the number of requests.
 *   AE_ROOT req: VALUE = AE body                    rep: VALUE = AE body
 *   AE_KEYS req: VALUE = AE body                    rep: VALUE = AE body
 *           Anti-entropy between two replicas of a partition; the bodies'
 *           layouts, limits and checks are in aewire.h. Every reply fits
 *           RK_AEW_MSG_MAX (256 KiB).
 * GET with TRACE: the reply's TEXT is a JSON object naming the coordinator
 * and each replica asked with the version it returned (or missing/error).
 * Any reply whose status is not OK may carry TEXT: a one-line error message.
 */
#ifndef RK_PROTO_H
#define RK_PROTO_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RK_PROTO_MAGIC   0x4B52u
#define RK_PROTO_VERSION 1u
#define RK_PROTO_HDR     16u

/* Largest message a client or a coordinator accepts (NNG_OPT_RECVMAXSZ):
 * a max-size value plus headers fits many times over, and a hostile or
 * confused peer cannot make us allocate without bound (nng 1.5.2's
 * default is unlimited). */
#define RK_PROTO_MAX_MSG (80u << 20)

/* Frames one RBATCH may carry: a receiver refuses more (coordinators send
 * at most 128), so one message cannot make it allocate a part for each of
 * millions of tiny frames. */
#define RK_PROTO_MAX_FRAMES 4096u

/* Pins the layout above; its fields are in host order, so the codec reads
 * and writes the bytes little-endian itself rather than through this. */
struct __attribute__((packed)) rk_proto_hdr {
    uint16_t magic;
    uint8_t version;
    uint8_t opcode;
    uint16_t flags;
    uint16_t status;
    uint32_t id;
    uint32_t body_len;
};
static_assert(sizeof(struct rk_proto_hdr) == RK_PROTO_HDR, "wire header layout");
static_assert(offsetof(struct rk_proto_hdr, id) == 8, "wire header layout");
static_assert(offsetof(struct rk_proto_hdr, body_len) == 12, "wire header layout");

enum rk_op {
    RK_OP_PUT = 1,
    RK_OP_GET = 2,
    RK_OP_DEL = 3,
    RK_OP_STATUS = 16,
    RK_OP_STATS = 17,
    RK_OP_HEALTH = 18,
    RK_OP_READY = 19,
    RK_OP_ECHO = 20,
    RK_OP_MEMBERS = 21,
    RK_OP_JOIN = 22,
    RK_OP_LEAVE = 23,
    RK_OP_REMOVE = 24,
    RK_OP_LOCATE = 25,
    RK_OP_RING = 26,
    RK_OP_AE = 27,        /* anti-entropy progress */
    RK_OP_REPAIR = 28,    /* mark partitions for anti-entropy first */
    RK_OP_PARTS = 29,     /* keys and bytes per partition this node stores */
    RK_OP_TRANSFERS = 30, /* partitions this node is receiving (kvctl transfers) */
    RK_OP_OVERVIEW = 31,  /* everything a dashboard shows of the node, in one reply */
    RK_OP_RPUT = 32,      /* peer: store a replica at the coordinator's version */
    RK_OP_RGET = 33,      /* peer: read a replica, tombstones included */
    RK_OP_RBATCH = 34,    /* peer: several RPUT/RGET in one message (frames) */
    RK_OP_AE_ROOT = 35,   /* peer: anti-entropy, compare a partition's tree top (aewire.h) */
    RK_OP_AE_KEYS = 36,   /* peer: anti-entropy, the entries of differing leaves (aewire.h) */
};

enum { RK_MSG_REPLY = 1u << 0 };

/* Reply status codes. Stable: scripts and other versions depend on them. */
enum rk_status {
    RK_ST_OK = 0,
    RK_ST_NOT_FOUND = 1,
    RK_ST_MALFORMED = 2,
    RK_ST_UNSUPPORTED = 3,
    RK_ST_BUSY = 4,
    RK_ST_TOO_LARGE = 5,
    RK_ST_NO_SPACE = 6,
    RK_ST_READONLY = 7,
    RK_ST_STALE = 8,
    RK_ST_QUORUM = 9,
    RK_ST_TIMEOUT = 10,
    RK_ST_INTERNAL = 11,
    RK_ST_UNAVAILABLE = 12,  /* shutting down, or not ready */
    RK_ST_REFUSED = 13,      /* a valid request the node will not carry out (TEXT says why) */
    RK_ST_RATE_LIMITED = 14, /* the client is over limits.client_rate; RETRY_MS says when */
};
/* One past the last status this version knows: a new status moves it, and
 * proto.c's table of names refuses to build until the status has a row. */
#define RK_ST_COUNT (RK_ST_RATE_LIMITED + 1)

enum rk_tag {
    RK_TAG_KEY = 1,
    RK_TAG_VALUE = 2,
    RK_TAG_VERSION = 3,    /* u64 */
    RK_TAG_TTL_MS = 4,     /* u64, relative */
    RK_TAG_EXPIRY_MS = 5,  /* u64, absolute wall ms */
    RK_TAG_TEXT = 6,       /* UTF-8: error line or JSON object */
    RK_TAG_R = 7,          /* u8 */
    RK_TAG_W = 8,          /* u8 */
    RK_TAG_FORCE = 9,      /* u8, 1 = override a safety check (REMOVE) */
    RK_TAG_TOMBSTONE = 10, /* u8, 1 = the record is a delete (RPUT, RGET reply) */
    RK_TAG_TRACE = 11,     /* u8, 1 = GET: reply TEXT describes each replica's answer */
    RK_TAG_HINT = 12,      /* RPUT to a fallback node: the node id the write is meant for */
    RK_TAG_RETRY_MS = 13,  /* u64, a RATE_LIMITED reply: ms until the client may send again */
    RK_TAG_AUTH = 14,      /* 48 bytes, always the last field: the cluster secret's
                            * trailer (util/auth.h), ts_ms | nonce | HMAC of every byte
                            * of the message before the HMAC itself */
};

/* A decoded message. Byte fields point into the buffer that was decoded
 * (borrowed: valid as long as that buffer). has_* says which were present. */
struct rk_msg {
    uint8_t opcode;
    uint16_t flags;
    uint16_t status;
    uint32_t id;
    const uint8_t *key, *val, *text, *hint;
    const uint8_t *auth; /* the AUTH field's 48 bytes: they end the message */
    uint32_t klen, vlen, tlen, hlen;
    uint64_t version, ttl_ms, expiry_ms, retry_ms;
    uint8_t r, w, force, tombstone, trace;
    bool has_force, has_tombstone, has_trace, has_hint, has_key, has_val, has_text, has_version,
        has_ttl, has_expiry, has_r, has_w, has_retry, has_auth;
};

/* Decode len bytes. 0 on success. RK_EMALFORMED for a bad magic, a short
 * message, a body_len that disagrees with len, or a bad field.
 * RK_EUNSUPPORTED for another protocol version or an unknown opcode: then
 * m->opcode and m->id are still filled so the reply can echo them.
 * Checks run in this order: length >= 16 and magic (MALFORMED, m all zero);
 * version (UNSUPPORTED); body_len (MALFORMED); opcode (UNSUPPORTED); fields
 * (MALFORMED; also an AUTH field that is not 48 bytes or not last). Once
 * the magic matched, opcode, flags, status and id are
 * filled on every return, so a MALFORMED reply can echo the id too; on an
 * error no body field is set. Decode does not check which fields an opcode
 * requires (ECHO carries anything): handlers test has_*. */
int rk_proto_decode(const void *buf, size_t len, struct rk_msg *m);

/* Bytes rk_proto_encode will write for m (header included), or 0 if m
 * cannot be encoded: its body would exceed body_len's UINT32_MAX bytes. */
size_t rk_proto_size(const struct rk_msg *m);

/* Encode m (the has_* fields choose what goes out, in tag order) into buf,
 * which holds at least rk_proto_size(m) bytes. Returns the bytes written:
 * rk_proto_size(m), so 0 (nothing written) when m cannot be encoded. */
size_t rk_proto_encode(const struct rk_msg *m, void *buf);

/* Replace msg's body with the encoding of m; its header (raw routing) is
 * kept. 0, RK_ETOOLARGE (m cannot be encoded) or -ENOMEM; msg is then
 * unchanged. Any thread (proto/nngmsg.c: the codec itself needs no nng). */
typedef struct nng_msg nng_msg;
int rk_proto_msg_encode(nng_msg *msg, const struct rk_msg *m);

/* Sign msg, whose body is one encoded message without AUTH (the encoder
 * never writes one): append the AUTH field, grow body_len by it and seal
 * it with k at wall time now_ms (auth.h). 0, -ENOMEM, or RK_ETOOLARGE
 * when the body is not a message or would pass body_len's bound. */
struct rk_auth_key;
int rk_proto_msg_seal(nng_msg *msg, const struct rk_auth_key *k, uint64_t now_ms);

/* Whether buf[0..len), decoded as m, proves the secret: MISSING without
 * an AUTH field, else rk_auth_check (replay: also refuse a MAC seen
 * before). a must be on. */
struct rk_auth;
int rk_proto_auth_check(struct rk_auth *a, const void *buf, size_t len, const struct rk_msg *m,
                        bool replay);

/* The sending and receiving ends node-to-node traffic shares (a: the
 * node's, NULL or off = no secret). sign: rk_proto_msg_seal with a's rpc
 * key at the wall clock's now; 0 when off. reply_trusted: true when a is
 * off or the reply in msg's body proves the secret; else it is counted
 * (channel "reply") and logged naming source, and must be dropped: only a
 * holder of the secret can acknowledge a write. */
int rk_proto_msg_sign(nng_msg *msg, struct rk_auth *a);
bool rk_proto_reply_trusted(struct rk_auth *a, nng_msg *msg, const char *source);

/* Batch frames (RBATCH): [rid u32][message]. frame_size: bytes a frame
 * of m takes (0 if m cannot be encoded); frame_put writes it to dst and
 * returns that size. frame_next reads the frame at *off of buf[0..len):
 * 1 with *rid, *msg, *mlen set and *off moved past it; 0 at the end;
 * RK_EMALFORMED when what is left is not a whole frame (the message
 * itself is not decoded: the caller does that). */
size_t rk_proto_frame_size(const struct rk_msg *m);
size_t rk_proto_frame_put(uint8_t *dst, uint32_t rid, const struct rk_msg *m);
int rk_proto_frame_next(const uint8_t *buf, size_t len, size_t *off, uint32_t *rid,
                        const uint8_t **msg, size_t *mlen);

/* Admin arguments in KEY (proto/args.c), the one reader of each.
 * partition: KEY as a partition number, 1 to 10 decimal digits (leading
 * zeros allowed) below partitions: 1 with *part; 0 when there is no KEY;
 * RK_EMALFORMED otherwise. text: KEY as a C string of printable ASCII
 * without spaces (node ids, addresses): true with out filled, false when
 * absent, empty, not shorter than cap, or of another byte. seed: a is
 * tcp://HOST:PORT with a non-empty HOST and a decimal port 1..65535. */
int rk_proto_arg_partition(const struct rk_msg *m, uint32_t partitions, uint32_t *part);
bool rk_proto_arg_text(const struct rk_msg *m, char *out, size_t cap);
bool rk_proto_arg_seed(const char *a);

/* Status code for an engine error (RK_E* / -errno), and back. Each RK_E*
 * with a status maps to it, -ESHUTDOWN to UNAVAILABLE, any other error to
 * INTERNAL. Back: INTERNAL and statuses unknown to this version give -EIO,
 * UNAVAILABLE gives -ESHUTDOWN; rk_proto_status(rk_proto_error(st)) == st
 * for every status defined above. */
enum rk_status rk_proto_status(int err);
int rk_proto_error(enum rk_status st);

/* Short stable name of a status ("OK", "NOT_FOUND", "BUSY", ...);
 * "UNKNOWN" for a status this version does not know. Static, any thread. */
const char *rk_proto_status_name(enum rk_status st);

/* What a status means for a user and what to do, one line without a final
 * period ("quorum not met; check that enough replicas are up"), for a reply
 * that carries no TEXT of its own; "unexpected status" for a status this
 * version does not know. Static, any thread. */
const char *rk_proto_status_advice(enum rk_status st);

#endif

/* The cluster secret: file checks, keys, trailers, refusals (auth.h). */
#include "util/auth.h"
#include "util/clock.h"
#include "util/le.h"
#include "util/log.h"
#include "util/replay.h"

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/md.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static void hmac(const uint8_t *key, size_t klen, const uint8_t *msg, size_t len,
                 uint8_t out[RK_AUTH_MAC])
{
    const mbedtls_md_info_t *sha = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
    /* Only fails for a bad md_info, which SHA-256 is not. */
    (void)mbedtls_md_hmac(sha, key, klen, msg, len, out);
}

static int read_all(int fd, uint8_t *out, size_t want)
{
    size_t got = 0;
    while (got < want) {
        ssize_t n = read(fd, out + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

/* The file's kind, size and mode: NULL if fit for a secret, else
 * what is wrong (into why). */
static const char *unfit(const struct stat *st, char *why, size_t len)
{
    if (!S_ISREG(st->st_mode))
        return "is not a regular file";
    if (st->st_size < (off_t)RK_AUTH_SECRET_MIN) {
        snprintf(why, len,
                 "holds %lld bytes, fewer than %u (make one with: head -c 64 /dev/urandom > FILE)",
                 (long long)st->st_size, RK_AUTH_SECRET_MIN);
        return why;
    }
    if (st->st_size > (off_t)RK_AUTH_SECRET_MAX) {
        snprintf(why, len, "holds %lld bytes, more than %u (a secret, not a document)",
                 (long long)st->st_size, RK_AUTH_SECRET_MAX);
        return why;
    }
    if (st->st_mode & 077) {
        snprintf(why, len, "is readable or writable by others (mode %04o); chmod 600 it",
                 (unsigned)(st->st_mode & 07777));
        return why;
    }
    return NULL;
}

int rk_auth_secret_read(const char *path, uint8_t *out, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, errlen, "security.secret_file %s: %s", path,
                 errno == ELOOP ? "is a symbolic link; name the file itself" : strerror(errno));
        return -1;
    }
    struct stat st;
    char why[160];
    const char *bad = fstat(fd, &st) != 0 ? strerror(errno) : unfit(&st, why, sizeof(why));
    if (!bad && read_all(fd, out, (size_t)st.st_size) != 0)
        bad = "could not be read whole";
    close(fd);
    if (bad) {
        snprintf(err, errlen, "security.secret_file %s: %s", path, bad);
        return -1;
    }
    *len = (size_t)st.st_size;
    return 0;
}

void rk_auth_derive(const uint8_t *secret, size_t len, const char *purpose, struct rk_auth_key *out)
{
    char label[64];
    int n = snprintf(label, sizeof(label), "ringkv/%s/1", purpose);
    hmac(secret, len, (const uint8_t *)label, (size_t)n, out->k);
}

int rk_auth_key_from_file(const char *path, const char *purpose, struct rk_auth_key *out, char *err,
                          size_t errlen)
{
    uint8_t secret[RK_AUTH_SECRET_MAX];
    size_t len;
    if (rk_auth_secret_read(path, secret, &len, err, errlen) < 0)
        return -1;
    rk_auth_derive(secret, len, purpose, out);
    memset(secret, 0, sizeof(secret));
    return 0;
}

int rk_auth_init(struct rk_auth *a, const char *path, uint64_t window_ms, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->log_mu, NULL);
    if (!path || !path[0])
        return 0;
    uint8_t secret[RK_AUTH_SECRET_MAX];
    size_t len;
    if (rk_auth_secret_read(path, secret, &len, err, errlen) < 0)
        return -1;
    rk_auth_derive(secret, len, "rpc", &a->rpc);
    rk_auth_derive(secret, len, "gossip", &a->gossip);
    memset(secret, 0, sizeof(secret));
    a->window_ms = window_ms;
    a->seen = rk_replay_new(window_ms);
    if (!a->seen) {
        snprintf(err, errlen, "security.secret_file: out of memory");
        return -1;
    }
    a->on = true;
    return 0;
}

void rk_auth_fini(struct rk_auth *a)
{
    rk_replay_free(a->seen);
    a->seen = NULL;
    a->on = false;
    memset(&a->rpc, 0, sizeof(a->rpc));
    memset(&a->gossip, 0, sizeof(a->gossip));
    pthread_mutex_destroy(&a->log_mu);
}

/* Unique with overwhelming odds; secrecy is not needed (the MAC covers
 * it), so a per-thread generator seeded once from the kernel does. */
static uint64_t nonce(void)
{
    static _Thread_local uint64_t state;
    if (state == 0 && getrandom(&state, sizeof(state), 0) != sizeof(state))
        state = rk_clock_mono_ns() ^ (uint64_t)(uintptr_t)&state;
    state += 0x9E3779B97F4A7C15ull; /* splitmix64 */
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void rk_auth_seal(const struct rk_auth_key *k, uint8_t *msg, size_t len, uint64_t ts_ms)
{
    uint8_t *t = msg + len - RK_AUTH_TRAILER;
    rk_le_put64(t, ts_ms);
    rk_le_put64(t + 8, nonce());
    hmac(k->k, sizeof(k->k), msg, len - RK_AUTH_MAC, t + 16);
}

static bool same_mac(const uint8_t *a, const uint8_t *b)
{
    uint8_t d = 0;
    for (size_t i = 0; i < RK_AUTH_MAC; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

enum rk_auth_verdict rk_auth_check_mac(const struct rk_auth_key *k, const uint8_t *msg, size_t len,
                                       uint64_t now_ms, uint64_t window_ms)
{
    if (len < RK_AUTH_TRAILER)
        return RK_AUTH_BAD_MAC;
    uint8_t mac[RK_AUTH_MAC];
    hmac(k->k, sizeof(k->k), msg, len - RK_AUTH_MAC, mac);
    if (!same_mac(mac, msg + len - RK_AUTH_MAC))
        return RK_AUTH_BAD_MAC;
    uint64_t ts = rk_le_get64(msg + len - RK_AUTH_TRAILER);
    uint64_t apart = ts > now_ms ? ts - now_ms : now_ms - ts;
    return apart > window_ms ? RK_AUTH_STALE : RK_AUTH_OK;
}

enum rk_auth_verdict rk_auth_check(struct rk_auth *a, const struct rk_auth_key *k,
                                   const uint8_t *msg, size_t len, bool replay)
{
    uint64_t now = rk_clock_wall_ms();
    enum rk_auth_verdict v = rk_auth_check_mac(k, msg, len, now, a->window_ms);
    if (v != RK_AUTH_OK || !replay)
        return v;
    switch (rk_replay_take(a->seen, msg + len - RK_AUTH_MAC, now)) {
    case RK_REPLAY_NEW:
        return RK_AUTH_OK;
    case RK_REPLAY_SEEN:
        return RK_AUTH_REPLAY;
    case RK_REPLAY_FULL:
        break;
    }
    /* No room to remember it: taking it unchecked would open a replay,
     * so it is refused like one (the sender retries or times out). */
    return RK_AUTH_REPLAY;
}

static const char *const reason_names[RK_AUTH_NREASONS] = {"ok",    "missing", "bad_mac",
                                                           "stale", "replay",  "no_secret"};
static const char *const channel_names[RK_AUTH_NCHANNELS] = {"peer", "admin", "client", "reply",
                                                             "gossip"};

const char *rk_auth_reason_name(enum rk_auth_verdict v)
{
    return (unsigned)v < RK_AUTH_NREASONS ? reason_names[v] : "unknown";
}

const char *rk_auth_channel_name(enum rk_auth_channel ch)
{
    return (unsigned)ch < RK_AUTH_NCHANNELS ? channel_names[ch] : "unknown";
}

const char *rk_auth_reason_text(enum rk_auth_verdict v)
{
    switch (v) {
    case RK_AUTH_MISSING:
        return "authentication failed: the message is not signed with the cluster secret "
               "(kvctl: --secret-file FILE or $KVCTL_SECRET_FILE)";
    case RK_AUTH_BAD_MAC:
        return "authentication failed: bad signature (another cluster secret, or the message "
               "was changed on the way)";
    case RK_AUTH_STALE:
        return "authentication failed: the message's time is too far from this node's clock "
               "(clocks apart, a message queued while this node was unreachable, or one "
               "captured earlier)";
    case RK_AUTH_REPLAY:
        return "authentication failed: this message was received before (replayed)";
    case RK_AUTH_NO_SECRET:
        return "the sender proves a cluster secret and this node has none "
               "(security.secret_file)";
    default:
        return "authentication failed";
    }
}

void rk_auth_refused(struct rk_auth *a, enum rk_auth_channel ch, enum rk_auth_verdict why,
                     const char *source)
{
    if ((unsigned)ch >= RK_AUTH_NCHANNELS || (unsigned)why >= RK_AUTH_NREASONS)
        return;
    atomic_fetch_add(&a->refused[ch][why], 1);
    const char *src = source && source[0] ? source : "?";
    uint64_t skipped = 0;
    pthread_mutex_lock(&a->log_mu);
    bool due = rk_log_due_from(a->log, sizeof(a->log) / sizeof(a->log[0]), src, rk_clock_wall_ms(),
                               &skipped);
    pthread_mutex_unlock(&a->log_mu);
    if (due)
        rk_warn("security", "refused a %s message from %s: %s; %llu more refused from it since",
                rk_auth_channel_name(ch), src, rk_auth_reason_text(why),
                (unsigned long long)skipped);
}

/* Synchronous ringkv client over one nng req0 socket (see client.h).
 * The socket dials without blocking, so a node that is down shows up as a
 * timeout that names the address, and nng keeps redialling in the meantime.
 * Pipe notifications tell "never connected" from "connected, no answer". */
#include "client/client.h"
#include "client/ajson.h"
#include "util/auth.h"
#include "util/clock.h"
#include "util/nng_close.h"
#include "util/tls.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "util/err.h"

/* Redial quickly after a node restarts (nng's default waits 0.4-0.9 s),
 * but back off to at most 1 s against a node that stays down. */
#define RECONN_MIN_MS  100
#define RECONN_MAX_MS  1000
#define CLOSE_LIMIT_MS 1000 /* see nng_close.h */
#define PROBE_MS       200  /* a TCP connect on a LAN takes well under a millisecond */

#define MAX_ADDRS 16 /* in one -a list */

struct rk_client {
    nng_socket sock;
    bool sock_open;
    const char *addr;       /* the address in use: addrs[cur] */
    char *addrs[MAX_ADDRS]; /* each tcp://HOST:PORT (or another nng URL as given) */
    size_t naddrs, cur;
    struct rk_tls *tls; /* rk_client_set_tls; NULL = plain TCP */
    bool tls_written;   /* an address was written tls+tcp:// (kept as tcp://) */
    int timeout_ms;
    uint8_t r, w;
    uint32_t next_id;
    nng_msg *reply; /* the last reply: rk_client_call() views borrow from it */
    bool signing;   /* key below signs every request */
    struct rk_auth_key key;
    enum rk_status last_status;
    atomic_uint pipes_added; /* written by nng's threads (pipe_event) */
    atomic_uint pipes_removed;
    unsigned pipes_before_tls; /* pipes_added when TLS was set: plain ones are not "ever" */
    char err[512];
};

static void seterr(struct rk_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void seterr(struct rk_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

const char *rk_client_fmt_ms(uint64_t ms, char *buf, size_t n)
{
    if (ms >= 60000 && ms % 60000 == 0)
        snprintf(buf, n, "%llum", (unsigned long long)(ms / 60000));
    else if (ms >= 1000 && ms % 1000 == 0)
        snprintf(buf, n, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, n, "%llums", (unsigned long long)ms);
    return buf;
}

int rk_client_parse_ms(const char *s, uint64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}};
    size_t n = strspn(s, "0123456789.");
    char *end;
    if (n == 0 || s[0] == '.')
        return RK_EINVAL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end != s + n) /* rejects "1e3s", "0x10s", "1.2.3s" */
        return RK_EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) != 0)
            continue;
        double t = v * units[i].ms;
        if (!(t > 0) || t > 1e12) /* zero, or beyond 30 years */
            return RK_EINVAL;
        uint64_t u = (uint64_t)t;
        *ms = (double)u < t ? u + 1 : u;
        return 0;
    }
    return RK_EINVAL;
}

static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    struct rk_client *c = arg;
    if (ev == NNG_PIPE_EV_ADD_POST)
        atomic_fetch_add(&c->pipes_added, 1);
    else if (ev == NNG_PIPE_EV_REM_POST)
        atomic_fetch_add(&c->pipes_removed, 1);
}

static int set_socket_options(struct rk_client *c)
{
    nng_duration t = c->timeout_ms;
    int rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, RK_CLIENT_MAX_MSG);
    if (rv == 0)
        rv = nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, t);
    if (rv == 0)
        rv = nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, t);
    /* Never resend. A resend could only duplicate a slow write; and with
     * resending on, a pipe lost mid-request (e.g. a request over the node's
     * size limit) makes req0 resend on every reconnect, after which
     * nng_close() hung in 7 of 30 runs on nng 1.5.2. Without it the call
     * fails at once with NNG_ECONNRESET (0 of 30 hangs). */
    if (rv == 0)
        rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if (rv == 0)
        rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, RECONN_MIN_MS);
    if (rv == 0)
        rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, RECONN_MAX_MS);
    if (rv == 0)
        rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, pipe_event, c);
    if (rv == 0)
        rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_event, c);
    return rv;
}

/* A dialer for c->addr, over TLS when c has it (tls+tcp://). An address
 * written tls+tcp:// without TLS set is not dialled: send_request says so. */
static int dial(struct rk_client *c)
{
    nng_dialer d;
    char url[600];
    if (c->tls_written && !c->tls)
        return 0;
    int rv = rk_tls_url(c->addr, c->tls != NULL, url, sizeof url) ? NNG_EADDRINVAL : 0;
    if (rv == 0)
        rv = nng_dialer_create(&d, c->sock, url);
    if (rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL) {
        seterr(c, "bad address '%s': %s (use HOST:PORT or tcp://HOST:PORT, e.g. 127.0.0.1:7400)",
               c->addr, nng_strerror(rv));
        return RK_EINVAL;
    }
    if (rv == 0)
        rv = nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, RK_CLIENT_MAX_MSG);
    if (rv == 0 && c->tls)
        rv = rk_tls_dialer(d, c->tls);
    if (rv == 0)
        rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        seterr(c, "cannot dial %s: %s", c->addr, nng_strerror(rv));
        return rv == NNG_ENOMEM ? -ENOMEM : -EIO;
    }
    return 0;
}

/* A fresh socket dialling addrs[i] (the previous one, if any, closed).
 * The pipe counters carry on: closing a socket removes its pipes, so
 * "added != removed" still means a connection is up. */
static int aim(struct rk_client *c, size_t i)
{
    if (c->sock_open && !rk_nng_close_bounded(c->sock, CLOSE_LIMIT_MS, "client"))
        return seterr(c, "closing the connection to %s hung", c->addr), -EIO;
    c->sock_open = false;
    c->cur = i;
    c->addr = c->addrs[i];
    int rv = nng_req0_open(&c->sock);
    if (rv != 0) {
        seterr(c, "cannot open a request socket: %s", nng_strerror(rv));
        return rv == NNG_ENOMEM ? -ENOMEM : -EIO;
    }
    c->sock_open = true;
    rv = set_socket_options(c);
    if (rv != 0) {
        seterr(c, "cannot set socket options: %s", nng_strerror(rv));
        return -EIO;
    }
    return dial(c);
}

int rk_client_norm_addr(const char *in, size_t len, char *out, size_t outlen)
{
    bool url = false;
    for (size_t i = 0; i + 2 < len && !url; i++)
        url = in[i] == ':' && in[i + 1] == '/' && in[i + 2] == '/';
    int n = snprintf(out, outlen, "%s%.*s", url ? "" : "tcp://", (int)len, in);
    return len == 0 || n < 0 || (size_t)n >= outlen ? RK_EINVAL : 0;
}

/* Split the comma-separated list into c->addrs, each normalised. */
static int split_addrs(struct rk_client *c, const char *list)
{
    for (const char *p = list;; p++) {
        size_t n = strcspn(p, ",");
        char w[512], a[512];
        if (c->naddrs == MAX_ADDRS) {
            seterr(c, "too many addresses in '%s': at most %d", list, MAX_ADDRS);
            return RK_EINVAL;
        }
        if (rk_client_norm_addr(p, n, w, sizeof w) != 0 || rk_tls_url(w, false, a, sizeof a)) {
            seterr(
                c,
                "bad address list '%s': an empty or overlong entry (use HOST:PORT[,HOST:PORT...])",
                list);
            return RK_EINVAL;
        }
        c->tls_written |= rk_tls_url_is_tls(w); /* kept as tcp://, dialled per c->tls */
        c->addrs[c->naddrs] = strdup(a);
        if (!c->addrs[c->naddrs])
            return -ENOMEM;
        c->naddrs++;
        p += n;
        if (!*p)
            return 0;
    }
}

int rk_client_open(struct rk_client **out, const char *addr, int timeout_ms)
{
    struct rk_client *c = calloc(1, sizeof *c);
    *out = NULL;
    if (c == NULL)
        return -ENOMEM;
    c->addr = "";
    c->timeout_ms = timeout_ms;
    c->last_status = RK_ST_OK;
    *out = c;
    int rv = split_addrs(c, addr);
    if (rv == -ENOMEM) {
        rk_client_close(c);
        *out = NULL;
        return rv;
    }
    if (rv != 0)
        return rv;
    c->addr = c->addrs[0];
    if (timeout_ms <= 0) {
        seterr(c, "bad timeout %d ms: must be > 0", timeout_ms);
        return RK_EINVAL;
    }
    rv = aim(c, 0);
    /* Every address is checked now, by nng itself (a dialer made and
     * closed unstarted), so a typo in the second is not found only when
     * the first is down. */
    for (size_t i = 1; i < c->naddrs && rv == 0; i++) {
        nng_dialer d;
        int e = nng_dialer_create(&d, c->sock, c->addrs[i]);
        if (e == 0)
            nng_dialer_close(d);
        else if (e == NNG_EADDRINVAL || e == NNG_ENOTSUP || e == NNG_EINVAL)
            rv = RK_EINVAL;
        else
            rv = e == NNG_ENOMEM ? -ENOMEM : -EIO;
        if (rv != 0)
            seterr(c,
                   "bad address '%s': %s (use HOST:PORT or tcp://HOST:PORT, e.g. 127.0.0.1:7400)",
                   c->addrs[i], nng_strerror(e));
    }
    return rv;
}

void rk_client_close(struct rk_client *c)
{
    if (c == NULL)
        return;
    /* A close stuck in nng (nng_close.h) may still call pipe_event with c
     * later: then c is left allocated rather than freed under it. */
    if (c->sock_open && !rk_nng_close_bounded(c->sock, CLOSE_LIMIT_MS, "client"))
        return;
    if (c->reply != NULL)
        nng_msg_free(c->reply);
    for (size_t i = 0; i < c->naddrs; i++)
        free(c->addrs[i]);
    rk_tls_free(c->tls);
    free(c);
}

int rk_client_set_tls(struct rk_client *c, const char *ca, const char *cert, const char *key)
{
    struct rk_tls *t;
    char err[sizeof c->err - 16];
    if ((cert && cert[0]) != (key && key[0])) {
        seterr(c, "TLS: a client certificate needs its key and a key its certificate "
                  "(--tls-cert with --tls-key)");
        return RK_EINVAL;
    }
    if (rk_tls_new(&t, cert, key, ca, err, sizeof err) != 0) {
        seterr(c, "TLS: %s", err);
        return RK_EINVAL;
    }
    rk_tls_free(c->tls);
    c->tls = t;
    /* The dial so far was plain: its connection is closed, and not one a
     * timeout's line may count as "connected". */
    if (c->sock_open && !rk_nng_close_bounded(c->sock, CLOSE_LIMIT_MS, "client"))
        return seterr(c, "closing the connection to %s hung", c->addr), -EIO;
    c->sock_open = false;
    c->pipes_before_tls = atomic_load(&c->pipes_added);
    return aim(c, c->cur);
}

int rk_client_set_quorum(struct rk_client *c, unsigned r, unsigned w)
{
    if (r > 255 || w > 255) {
        seterr(c, "bad quorum r=%u w=%u: at most 255", r, w);
        return RK_EINVAL;
    }
    c->r = (uint8_t)r;
    c->w = (uint8_t)w;
    return 0;
}

void rk_client_set_key(struct rk_client *c, const struct rk_auth_key *k)
{
    c->signing = k != NULL;
    if (k)
        c->key = *k;
}

const char *rk_client_error(const struct rk_client *c)
{
    return c->err;
}

const char *rk_client_addr(const struct rk_client *c)
{
    return c->addr;
}

enum rk_status rk_client_last_status(const struct rk_client *c)
{
    return c->last_status;
}

/* Split "tcp://HOST:PORT" ("tcp://[V6]:PORT") into host and port. */
static bool split_tcp(const char *addr, char *host, size_t hlen, char *port, size_t plen)
{
    if (strncmp(addr, "tcp://", 6) != 0)
        return false;
    const char *h = addr + 6, *colon = strrchr(h, ':');
    if (!colon || colon == h || !colon[1])
        return false;
    size_t n = (size_t)(colon - h);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n >= hlen || strlen(colon + 1) >= plen)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    snprintf(port, plen, "%s", colon + 1);
    return true;
}

/* What a plain TCP probe of a node's address found (tcp_probe). */
enum probe {
    PROBE_UNKNOWN, /* not tcp://, or the name does not resolve */
    PROBE_REFUSED, /* refused, or nothing within PROBE_MS */
    PROBE_SILENT,  /* TCP accepted, no SP handshake back */
    PROBE_CLOSED,  /* TCP accepted, then closed on our SP header: a TLS listener */
    PROBE_REP,     /* answers as an SP rep0 socket (a ringkv client port) */
    PROBE_OTHER,   /* answers as another SP protocol (*proto) */
};

/* Connect to host:port within ms; a socket fd or -1. */
static int probe_connect(const char *host, const char *port, int ms)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -2;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = errno;
        socklen_t el = sizeof(err);
        if (err != EINPROGRESS || poll(&p, 1, ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

/* After a timeout with no connection ever made: what is at addr? A node
 * paused with SIGSTOP (or wedged before its loops run) still completes TCP
 * handshakes from its listen backlog but never the SP handshake, and a
 * port of another SP protocol (gossip) drops nng's pipe: nng reports no
 * pipe in every case. One plain connect and an SP header tell them apart. */
static enum probe tcp_probe(const char *addr, int ms, unsigned *proto)
{
    static const uint8_t req0_hdr[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
    char host[256], port[16];
    uint8_t hdr[8];
    if (!split_tcp(addr, host, sizeof(host), port, sizeof(port)))
        return PROBE_UNKNOWN;
    int fd = probe_connect(host, port, ms);
    if (fd < 0)
        return fd == -2 ? PROBE_UNKNOWN : PROBE_REFUSED;
    enum probe r = PROBE_SILENT;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t got = -1;
    if (write(fd, req0_hdr, sizeof(req0_hdr)) == (ssize_t)sizeof(req0_hdr) && poll(&p, 1, ms) == 1)
        got = recv(fd, hdr, sizeof(hdr), MSG_WAITALL);
    if (got == (ssize_t)sizeof(hdr) && memcmp(hdr, "\0SP\0", 4) == 0) {
        *proto = (unsigned)hdr[4] << 8 | hdr[5];
        r = *proto == 0x31 ? PROBE_REP : PROBE_OTHER;
    } else if (got == 0 || (got < 0 && errno == ECONNRESET)) {
        r = PROBE_CLOSED; /* a TLS listener reads our header as a bad record and hangs up */
    }
    close(fd);
    return r;
}

/* Whether every address host resolves to refuses a TCP connect (or has
 * no route) within ms: nothing listens there. A connect still pending
 * after ms, or an address that is not tcp://, is not judged (false). */
static bool refused_now(const char *addr, int ms)
{
    char host[256], port[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (!split_tcp(addr, host, sizeof(host), port, sizeof(port)) ||
        getaddrinfo(host, port, &hints, &ai) != 0)
        return false;
    bool refused = true;
    for (struct addrinfo *a = ai; a && refused; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int err = fd < 0 ? errno : connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
        if (err == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            socklen_t el = sizeof(err);
            if (poll(&p, 1, ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
                err = ETIMEDOUT;
        }
        refused = err == ECONNREFUSED || err == ENETUNREACH || err == EHOSTUNREACH;
        if (fd >= 0)
            close(fd);
    }
    freeaddrinfo(ai);
    return refused;
}

/* Before a request with no connection up (none yet, or the last one
 * lost): an address that refuses a plain connect is passed over for the
 * next of the list, and when every one refuses the call fails at once,
 * not after the timeout (nng would only keep redialling). Costs one TCP
 * connect per request made while unconnected. */
static int reach(struct rk_client *c)
{
    if (atomic_load(&c->pipes_added) != atomic_load(&c->pipes_removed))
        return 0;
    int ms = c->timeout_ms < PROBE_MS ? c->timeout_ms : PROBE_MS;
    for (size_t k = 0;; k++) {
        if (!refused_now(c->addr, ms))
            return 0;
        if (k + 1 >= c->naddrs)
            break;
        int rv = aim(c, (c->cur + 1) % c->naddrs);
        if (rv != 0)
            return rv;
    }
    if (c->naddrs > 1)
        seterr(c, "every address refused the connection (the last: %s; is ringkvd running?)",
               c->addr);
    else
        seterr(c, "%s refused the connection (is ringkvd running there?)", c->addr);
    return -ECONNREFUSED;
}

/* Send msg; a send that timed out never left this client (req0 hands a
 * request to a connection or keeps it), so the next address of the list
 * is tried, each at most once. nng owns msg only on success. */
static int send_request(struct rk_client *c, nng_msg *msg)
{
    if (c->tls_written && !c->tls) {
        seterr(c, "%s was written tls+tcp://: TLS needs the node's CA (kvctl --tls-ca FILE)",
               c->addr);
        return RK_EINVAL;
    }
    int rv = reach(c);
    if (rv != 0)
        return rv;
    for (size_t tries = 1;; tries++) {
        rv = nng_sendmsg(c->sock, msg, 0);
        if (rv != NNG_ETIMEDOUT || tries >= c->naddrs)
            return rv;
        rv = aim(c, (c->cur + 1) % c->naddrs);
        if (rv != 0)
            return rv;
    }
}

/* The line for a timeout: what the connection did tells the likely cause. */
static void timeout_error(struct rk_client *c, bool ever, bool dropped, const char *t)
{
    unsigned proto = 0;
    enum probe pr = ever ? PROBE_UNKNOWN : tcp_probe(c->addr, PROBE_MS, &proto);
    if (!c->tls && pr == PROBE_CLOSED)
        seterr(c, "%s: TLS handshake failed (is the node using TLS? pass --tls-ca)", c->addr);
    else if (c->tls && pr == PROBE_REP)
        seterr(c,
               "%s: TLS handshake failed: the node answers without TLS (drop --tls-ca, or is "
               "this the right address?)",
               c->addr);
    else if (c->tls && pr == PROBE_CLOSED)
        seterr(c,
               "%s: TLS handshake failed: the node's certificate is not from the --tls-ca CA, "
               "or the node wants a client certificate from its CA (--tls-cert, --tls-key)",
               c->addr);
    else if (pr == PROBE_SILENT)
        seterr(c,
               "no answer from %s within %s: the node accepted the connection but did not "
               "answer (paused, overloaded or stuck? check its log, or allow a longer timeout)",
               c->addr, t);
    else if (pr == PROBE_OTHER)
        seterr(c,
               "%s is not a ringkv client port: it speaks SP protocol 0x%02x, not rep0 (the "
               "gossip port? clients use listen.client or listen.peer)",
               c->addr, proto);
    else if (!ever && pr != PROBE_REP)
        seterr(c, "no answer from %s within %s: not connected (is ringkvd running there?)", c->addr,
               t);
    else if (dropped)
        seterr(c,
               "no answer from %s within %s: the connection dropped during the request "
               "(node restarted, or the request is over its message size limit)",
               c->addr, t);
    else
        seterr(c,
               "no answer from %s within %s: connected, but the node did not reply "
               "(overloaded or stuck? check its log, or allow a longer timeout)",
               c->addr, t);
}

/* An nng error from send/recv → our code and a line that says what to do.
 * removed_before: pipes_removed when the call started. */
static int transport_error(struct rk_client *c, int rv, unsigned removed_before)
{
    char t[32];
    rk_client_fmt_ms((uint64_t)c->timeout_ms, t, sizeof t);
    bool ever = atomic_load(&c->pipes_added) > c->pipes_before_tls;
    bool dropped = atomic_load(&c->pipes_removed) != removed_before;
    switch (rv) {
    case NNG_ETIMEDOUT:
        timeout_error(c, ever, dropped, t);
        return RK_ETIMEDOUT;
    case NNG_ECONNREFUSED:
        seterr(c, "%s refused the connection (is ringkvd running there?)", c->addr);
        return -ECONNREFUSED;
    case NNG_ECONNRESET:
    case NNG_ECONNSHUT:
    case NNG_ECLOSED:
        seterr(c,
               "connection to %s lost during the request (node restarted or stopping, or the "
               "request is over the node's message size limit, or the reply over this "
               "client's %u MiB)",
               c->addr, RK_CLIENT_MAX_MSG >> 20);
        return -ECONNRESET;
    case NNG_EMSGSIZE:
        seterr(c, "message to or from %s is over the %u MiB limit", c->addr,
               RK_CLIENT_MAX_MSG >> 20);
        return RK_ETOOLARGE;
    case NNG_ENOMEM:
        seterr(c, "out of memory talking to %s", c->addr);
        return -ENOMEM;
    default:
        seterr(c, "request to %s failed: %s", c->addr, nng_strerror(rv));
        return -EIO;
    }
}

/* The "message" of a TEXT that is a JSON object carrying one (admin
 * replies: {"message":"no member x ..."}), into c->err; false otherwise. */
static bool json_message(struct rk_client *c, const struct rk_msg *rep)
{
    struct rk_ajson *doc;
    if (rep->tlen == 0 || rep->text[0] != '{' ||
        rk_ajson_parse(&doc, (const char *)rep->text, rep->tlen, RK_AJSON_ONE_LINE) != 0)
        return false;
    const struct rk_ajson_val *m = rk_ajson_member(rk_ajson_root(doc), "message");
    bool ok = rk_ajson_type(m) == RK_AJSON_STRING;
    if (ok)
        rk_ajson_copy_text(c->err, sizeof c->err, m);
    rk_ajson_free(doc);
    return ok;
}

/* The node's TEXT (its "message" if it is a JSON object with one; control
 * bytes blanked) if it sent one, else a hint. */
static void status_error(struct rk_client *c, const struct rk_msg *rep)
{
    if (rep->has_text && json_message(c, rep))
        return;
    if (rep->has_text && rep->tlen > 0) {
        size_t n = rep->tlen < sizeof c->err - 1 ? rep->tlen : sizeof c->err - 1;
        for (size_t i = 0; i < n; i++)
            c->err[i] = rep->text[i] < 0x20 ? ' ' : (char)rep->text[i];
        c->err[n] = '\0';
        return;
    }
    seterr(c, "%s answered %s: %s", c->addr, rk_proto_status_name(rep->status),
           rk_proto_status_advice(rep->status));
}

/* Decode and check that the reply answers the request we sent. */
static int check_reply(struct rk_client *c, const struct rk_msg *req, struct rk_msg *rep)
{
    const uint8_t *b = nng_msg_body(c->reply);
    size_t len = nng_msg_len(c->reply);
    int rv = rk_proto_decode(b, len, rep);
    if (rv == RK_EUNSUPPORTED && len >= RK_PROTO_HDR && b[2] != RK_PROTO_VERSION) {
        seterr(c, "%s speaks ringkv protocol version %u, this client version %u (upgrade one)",
               c->addr, b[2], RK_PROTO_VERSION);
        return -EPROTO;
    }
    if (rv != 0) {
        seterr(c, "malformed reply from %s (%zu bytes; is that a ringkvd port?)", c->addr, len);
        return -EPROTO;
    }
    if (!(rep->flags & RK_MSG_REPLY) || rep->id != req->id || rep->opcode != req->opcode) {
        seterr(c, "reply from %s does not match the request (op %u id %u, sent op %u id %u)",
               c->addr, rep->opcode, rep->id, req->opcode, req->id);
        return -EPROTO;
    }
    return 0;
}

int rk_client_call(struct rk_client *c, const struct rk_msg *req, struct rk_msg *rep)
{
    struct rk_msg m = *req;
    nng_msg *msg;
    m.id = ++c->next_id;
    c->last_status = RK_ST_OK;
    if (c->reply != NULL) {
        nng_msg_free(c->reply);
        c->reply = NULL;
    }
    size_t size = rk_proto_size(&m);
    if (size == 0) {
        seterr(c, "request to %s is over the protocol's 4 GiB message limit", c->addr);
        return RK_ETOOLARGE;
    }
    if (nng_msg_alloc(&msg, size) != 0) {
        seterr(c, "out of memory for a request to %s", c->addr);
        return -ENOMEM;
    }
    rk_proto_encode(&m, nng_msg_body(msg));
    if (c->signing && rk_proto_msg_seal(msg, &c->key, rk_clock_wall_ms()) != 0) {
        nng_msg_free(msg);
        seterr(c, "out of memory for a request to %s", c->addr);
        return -ENOMEM;
    }
    unsigned removed = atomic_load(&c->pipes_removed);
    int rv = send_request(c, msg);
    if (rv != 0) {
        nng_msg_free(msg); /* nng takes the message only on success */
        return rv < 0 ? rv : transport_error(c, rv, removed);
    }
    rv = nng_recvmsg(c->sock, &c->reply, 0);
    if (rv != 0) {
        c->reply = NULL;
        return transport_error(c, rv, removed);
    }
    rv = check_reply(c, &m, rep);
    if (rv != 0)
        return rv;
    c->last_status = rep->status;
    if (rep->status == RK_ST_OK)
        return 0;
    status_error(c, rep);
    rv = rk_proto_error(rep->status);
    return rv < 0 ? rv : -EPROTO;
}

/* Keys and values travel with u32 lengths; larger cannot be encoded. */
static int check_len(struct rk_client *c, size_t klen, size_t vlen)
{
    if (klen <= RK_CLIENT_MAX_MSG && vlen <= RK_CLIENT_MAX_MSG)
        return 0;
    seterr(c, "%s of %zu bytes is over the client's %u MiB message limit",
           klen > RK_CLIENT_MAX_MSG ? "key" : "value", klen > vlen ? klen : vlen,
           RK_CLIENT_MAX_MSG >> 20);
    return RK_ETOOLARGE;
}

int rk_client_put(struct rk_client *c, const void *key, size_t klen, const void *val, size_t vlen,
                  uint64_t ttl_ms, uint64_t *version)
{
    struct rk_msg m = {.opcode = RK_OP_PUT,
                       .key = key,
                       .klen = (uint32_t)klen,
                       .has_key = true,
                       .val = val,
                       .vlen = (uint32_t)vlen,
                       .has_val = true};
    struct rk_msg rep;
    int rv = check_len(c, klen, vlen);
    if (rv != 0)
        return rv;
    m.ttl_ms = ttl_ms;
    m.has_ttl = ttl_ms > 0;
    m.w = c->w;
    m.has_w = c->w > 0;
    rv = rk_client_call(c, &m, &rep);
    if (rv == 0 && version != NULL)
        *version = rep.has_version ? rep.version : 0;
    return rv;
}

/* A malloc'd NUL-terminated copy of n bytes at p (the NUL not counted), or
 * NULL with the error line set. what names the bytes for that line. */
static char *dup_bytes(struct rk_client *c, const void *p, size_t n, const char *what)
{
    char *copy = malloc(n + 1);
    if (copy == NULL) {
        seterr(c, "out of memory for a %zu-byte %s", n, what);
        return NULL;
    }
    if (n > 0)
        memcpy(copy, p, n);
    copy[n] = '\0';
    return copy;
}

int rk_client_get(struct rk_client *c, const void *key, size_t klen, void **val, size_t *vlen,
                  uint64_t *version, uint64_t *expiry_ms)
{
    return rk_client_get_ex(c, key, klen, false, val, vlen, version, expiry_ms, NULL);
}

int rk_client_get_ex(struct rk_client *c, const void *key, size_t klen, bool trace, void **val,
                     size_t *vlen, uint64_t *version, uint64_t *expiry_ms, char **text)
{
    struct rk_msg m = {.opcode = RK_OP_GET, .key = key, .klen = (uint32_t)klen, .has_key = true};
    struct rk_msg rep;
    *val = NULL;
    *vlen = 0;
    if (text != NULL)
        *text = NULL;
    int rv = check_len(c, klen, 0);
    if (rv != 0)
        return rv;
    m.r = c->r;
    m.has_r = c->r > 0;
    m.trace = 1;
    m.has_trace = trace;
    rv = rk_client_call(c, &m, &rep);
    if (rv != 0 && rk_client_last_status(c) == RK_ST_OK)
        return rv; /* transport error: no reply to look at */
    if (text != NULL && rep.has_text && (*text = dup_bytes(c, rep.text, rep.tlen, "trace")) == NULL)
        return -ENOMEM;
    if (rv != 0)
        return rv;
    if (!rep.has_val) {
        seterr(c, "reply from %s to GET carries no value (not a ringkvd, or a ringkvd bug)",
               c->addr);
        return -EPROTO;
    }
    if ((*val = dup_bytes(c, rep.val, rep.vlen, "value")) == NULL)
        return -ENOMEM;
    *vlen = rep.vlen;
    if (version != NULL)
        *version = rep.has_version ? rep.version : 0;
    if (expiry_ms != NULL)
        *expiry_ms = rep.has_expiry ? rep.expiry_ms : 0;
    return 0;
}

int rk_client_del(struct rk_client *c, const void *key, size_t klen, uint64_t *version)
{
    struct rk_msg m = {.opcode = RK_OP_DEL, .key = key, .klen = (uint32_t)klen, .has_key = true};
    struct rk_msg rep;
    int rv = check_len(c, klen, 0);
    if (rv != 0)
        return rv;
    m.w = c->w;
    m.has_w = c->w > 0;
    rv = rk_client_call(c, &m, &rep);
    if (rv == 0 && version != NULL)
        *version = rep.has_version ? rep.version : 0;
    return rv;
}

/* Admin opcodes, and whether each takes an argument (KEY): needs one, or
 * may take one (AE and REPAIR: a partition). */
static bool admin_op(enum rk_op op, bool *needs_arg, bool *may_arg)
{
    *needs_arg = op == RK_OP_JOIN || op == RK_OP_REMOVE || op == RK_OP_LOCATE;
    *may_arg = *needs_arg || op == RK_OP_AE || op == RK_OP_REPAIR || op == RK_OP_OVERVIEW;
    switch (op) {
    case RK_OP_STATUS:
    case RK_OP_STATS:
    case RK_OP_HEALTH:
    case RK_OP_READY:
    case RK_OP_MEMBERS:
    case RK_OP_JOIN:
    case RK_OP_LEAVE:
    case RK_OP_REMOVE:
    case RK_OP_LOCATE:
    case RK_OP_RING:
    case RK_OP_AE:
    case RK_OP_REPAIR:
    case RK_OP_PARTS:
    case RK_OP_TRANSFERS:
    case RK_OP_OVERVIEW:
        return true;
    default:
        return false;
    }
}

int rk_client_admin_arg(struct rk_client *c, enum rk_op op, const char *arg, bool force,
                        char **json)
{
    struct rk_msg m = {.opcode = (uint8_t)op, .force = 1, .has_force = force};
    struct rk_msg rep;
    bool needs_arg, may_arg;
    *json = NULL;
    if (!admin_op(op, &needs_arg, &may_arg)) {
        seterr(c, "opcode %d is not an admin request", (int)op);
        return RK_EINVAL;
    }
    if ((needs_arg && !arg) || (!may_arg && arg)) {
        seterr(c, "admin opcode %d %s an argument", (int)op, needs_arg ? "needs" : "takes no");
        return RK_EINVAL;
    }
    if (arg != NULL) {
        int rv = check_len(c, strlen(arg), 0);
        if (rv != 0)
            return rv;
        m.key = (const uint8_t *)arg;
        m.klen = (uint32_t)strlen(arg);
        m.has_key = true;
    }
    int rv = rk_client_call(c, &m, &rep);
    if (rv != 0 && rk_client_last_status(c) == RK_ST_OK)
        return rv; /* transport error: no reply to look at */
    const char *text = rep.has_text ? (const char *)rep.text : (rv == 0 ? "{}" : NULL);
    size_t n = rep.has_text ? rep.tlen : (text != NULL ? strlen(text) : 0);
    if (text == NULL)
        return rv;
    *json = dup_bytes(c, text, n, "reply");
    return *json != NULL ? rv : -ENOMEM;
}

int rk_client_admin(struct rk_client *c, enum rk_op op, char **json)
{
    return rk_client_admin_arg(c, op, NULL, false, json);
}

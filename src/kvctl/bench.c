/* kvctl bench: a closed-loop load generator. N clients share req0
 * sockets, 32 to a socket (see CLIENTS_PER_SOCKET); each is an nng_ctx +
 * nng_aio pair driven by its aio callback
 * (send → receive → next request), so N requests are always outstanding
 * and no thread is spent per client. Latencies of successful requests go
 * into one log-bucketed histogram of atomic counters (< 1% relative error
 * from 1 µs to 60 s), which the main thread reads for the progress line
 * and the report.
 *
 * Per client:   issue() ──send──▶ client_cb(sending) ──recv──▶ client_cb()
 *                  ▲                                               │
 *                  └──────── after(): record, then issue() ◀──────┘
 * A client stops (finish()) when the run's end time passes, when the
 * preload runs out of keys, or when its socket closes. */
#include "kvctl/bench.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "client/client.h"
#include "kvctl/cli.h"
#include "proto/proto.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/tls.h"

/* Histogram: values below 256 µs have exact buckets; above, each power of
 * two is split into 128 buckets, so a bucket is at most 1/128 (0.8%) of its
 * value wide. 60 s < 2^26 µs needs shifts up to 26 - 8 = 18. */
#define HIST_SUB_BITS  8
#define HIST_SUB       (1u << HIST_SUB_BITS)
#define HIST_HALF      (HIST_SUB / 2)
#define HIST_MAX_SHIFT 18u
#define HIST_BUCKETS   (HIST_MAX_SHIFT * HIST_HALF + HIST_SUB)
#define HIST_MAX_US    60000000ull

#define NS_PER_S    1000000000ull
#define MAX_CLIENTS 10000 /* a few MiB of contexts; far past what one node serves */
#define PROBE_KEYS  3     /* keys looked up to decide whether to preload */
#define PREFIX_MAX  64    /* --prefix bytes */
#define KEY_DIGITS  10    /* a key is the prefix and the index in 10 digits */
#define KEY_MAX     (PREFIX_MAX + KEY_DIGITS)
#define VAL_KEY_OFF 10 /* where a key's digits go in a value: after {"id":"key */

/* Error classes: reply statuses 0..15 (15 = any higher), then failures
 * without a usable reply. */
enum {
    ERR_STATUS_N = 16,
    ERR_NO_REPLY = ERR_STATUS_N,
    ERR_BAD_REPLY,
    ERR_CONN_LOST,
    ERR_TRANSPORT,
    ERR_N
};

/* PH_PRELOAD puts and PH_CLEANUP deletes every key once, in order; PH_RUN
 * is the measured mix. */
enum phase { PH_PRELOAD, PH_RUN, PH_CLEANUP };

struct bench;

struct bclient {
    struct bench *b;
    nng_ctx ctx;
    nng_aio *aio;
    bool sending; /* the aio carries a send (else a receive) */
    uint8_t op;
    uint32_t id;
    uint64_t rng, t0;
    uint8_t *val; /* value_size bytes of JSON-like text */
};

struct bench {
    struct rk_kvctl_opts o;
    char workload; /* 'a', 'b', 'c', or 'w' (100% put) */
    unsigned get_pct, clients;
    uint64_t duration_ms;
    uint32_t keys, value_size;
    char prefix[PREFIX_MAX + 1]; /* every key the bench writes starts with it */
    char addr[512];              /* the one of -a that answered the probe, as a URL */
    uint32_t klen;               /* strlen(prefix) + KEY_DIGITS */
    bool raw, cleanup;
    struct rk_tls *tls; /* --tls-ca ...: the sockets dial tls+tcp:// */
    nng_socket *socks;  /* one per CLIENTS_PER_SOCKET clients */
    unsigned nsocks;
    struct bclient *cl;
    enum phase phase;
    uint64_t t_start_ns, t_end_ns;
    atomic_bool stop;
    atomic_uint active;
    atomic_uint_fast64_t next_key, ops, errs[ERR_N], max_us;
    atomic_uint_fast64_t hist[HIST_BUCKETS];
};

static uint64_t now_ns(void)
{
    return rk_clock_mono_ns();
}

static uint64_t rng_next(uint64_t *s) /* xorshift64*: cheap, per client */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* ---- histogram ---- */

static unsigned hist_index(uint64_t us)
{
    if (us > HIST_MAX_US)
        us = HIST_MAX_US;
    if (us < HIST_SUB)
        return (unsigned)us;
    unsigned shift = (unsigned)(63 - __builtin_clzll(us)) - (HIST_SUB_BITS - 1);
    return shift * HIST_HALF + (unsigned)(us >> shift);
}

/* The middle of bucket i (its only value below HIST_SUB). */
static uint64_t hist_value(unsigned i)
{
    if (i < HIST_SUB)
        return i;
    unsigned shift = i / HIST_HALF - 1;
    uint64_t low = (uint64_t)(i - shift * HIST_HALF) << shift;
    return low + ((1ull << shift) >> 1);
}

static void hist_add(struct bench *b, uint64_t us)
{
    atomic_fetch_add_explicit(&b->hist[hist_index(us)], 1, memory_order_relaxed);
    uint64_t m = atomic_load_explicit(&b->max_us, memory_order_relaxed);
    while (us > m && !atomic_compare_exchange_weak(&b->max_us, &m, us))
        ;
}

/* Quantiles q[0..n) (ascending) into out[], from a snapshot of the counts. */
static void hist_quantiles(struct bench *b, const double *q, uint64_t *out, size_t n)
{
    static uint64_t snap[HIST_BUCKETS]; /* main thread only */
    uint64_t total = 0, seen = 0, max = atomic_load(&b->max_us);
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        total += snap[i] = atomic_load_explicit(&b->hist[i], memory_order_relaxed);
    size_t k = 0;
    for (unsigned i = 0; i < HIST_BUCKETS && k < n; i++) {
        seen += snap[i];
        while (k < n && total > 0 && (double)seen >= q[k] * (double)total) {
            uint64_t v = hist_value(i);
            out[k++] = v > max ? max : v;
        }
    }
    while (k < n)
        out[k++] = total > 0 ? max : 0;
}

/* ---- one client's state machine (runs on nng's threads) ---- */

static void finish(struct bclient *k)
{
    atomic_fetch_sub(&k->b->active, 1);
}

static void fmt_key(const struct bench *b, char *buf, uint64_t idx)
{
    snprintf(buf, KEY_MAX + 1, "%s%010u", b->prefix, (unsigned)idx);
}

/* Fill m with this client's next request; false when the preload is done. */
static bool next_request(struct bclient *k, struct rk_msg *m, char *key)
{
    struct bench *b = k->b;
    uint64_t idx;
    if (b->raw) {
        *m = (struct rk_msg){
            .opcode = RK_OP_ECHO, .val = k->val, .vlen = b->value_size, .has_val = true};
        return true;
    }
    if (b->phase != PH_RUN) {
        idx = atomic_fetch_add(&b->next_key, 1);
        if (idx >= b->keys)
            return false;
        m->opcode = b->phase == PH_PRELOAD ? RK_OP_PUT : RK_OP_DEL;
    } else {
        uint64_t r = rng_next(&k->rng);
        idx = (r >> 32) % b->keys;
        m->opcode = (r & 0xFFFF) % 100 < b->get_pct ? RK_OP_GET : RK_OP_PUT;
    }
    fmt_key(b, key, idx);
    m->key = (const uint8_t *)key, m->klen = b->klen, m->has_key = true;
    if (m->opcode == RK_OP_GET) {
        m->r = (uint8_t)b->o.r, m->has_r = b->o.r > 0;
        return true;
    }
    m->w = (uint8_t)b->o.w, m->has_w = b->o.w > 0;
    if (m->opcode == RK_OP_DEL)
        return true;
    if (b->value_size >= VAL_KEY_OFF + KEY_DIGITS)
        memcpy(k->val + VAL_KEY_OFF, key + b->klen - KEY_DIGITS, KEY_DIGITS);
    m->val = k->val, m->vlen = b->value_size, m->has_val = true;
    return true;
}

static void issue(struct bclient *k)
{
    struct rk_msg m = {0};
    char key[KEY_MAX + 1];
    nng_msg *msg;
    if (!next_request(k, &m, key)) {
        finish(k);
        return;
    }
    m.id = ++k->id;
    if (nng_msg_alloc(&msg, rk_proto_size(&m)) != 0) {
        atomic_fetch_add(&k->b->errs[ERR_TRANSPORT], 1);
        finish(k); /* out of memory: this client stops, the others go on */
        return;
    }
    rk_proto_encode(&m, nng_msg_body(msg));
    if (k->b->o.secret && rk_proto_msg_seal(msg, k->b->o.secret, rk_clock_wall_ms()) != 0) {
        nng_msg_free(msg);
        atomic_fetch_add(&k->b->errs[ERR_TRANSPORT], 1);
        finish(k);
        return;
    }
    k->op = m.opcode;
    k->sending = true;
    k->t0 = now_ns();
    nng_aio_set_msg(k->aio, msg);
    nng_ctx_send(k->ctx, k->aio);
}

/* Classify one outcome: an OK reply counts as an op with its latency. */
static void record(struct bclient *k, int rv, nng_msg *msg, uint64_t now)
{
    struct bench *b = k->b;
    struct rk_msg rep;
    unsigned cls;
    if (rv == NNG_ETIMEDOUT)
        cls = ERR_NO_REPLY;
    else if (rv == NNG_ECONNRESET || rv == NNG_ECONNSHUT)
        cls = ERR_CONN_LOST;
    else if (rv != 0)
        cls = ERR_TRANSPORT;
    else if (rk_proto_decode(nng_msg_body(msg), nng_msg_len(msg), &rep) != 0 ||
             !(rep.flags & RK_MSG_REPLY) || rep.id != k->id || rep.opcode != k->op)
        cls = ERR_BAD_REPLY;
    else
        cls = rep.status < ERR_STATUS_N ? rep.status : ERR_STATUS_N - 1;
    if (cls != RK_ST_OK) {
        atomic_fetch_add_explicit(&b->errs[cls], 1, memory_order_relaxed);
        return;
    }
    atomic_fetch_add_explicit(&b->ops, 1, memory_order_relaxed);
    hist_add(b, (now - k->t0 + 500) / 1000);
}

static void after(struct bclient *k, int rv, nng_msg *msg)
{
    struct bench *b = k->b;
    uint64_t now = now_ns();
    bool closed = rv == NNG_ECLOSED || rv == NNG_ECANCELED || atomic_load(&b->stop);
    if (!closed && now <= b->t_end_ns) /* completions after the end are not measured */
        record(k, rv, msg, now);
    if (msg != NULL)
        nng_msg_free(msg);
    if (closed || now >= b->t_end_ns)
        finish(k);
    else
        issue(k);
}

static void client_cb(void *arg)
{
    struct bclient *k = arg;
    int rv = nng_aio_result(k->aio);
    if (k->sending && rv != 0) {
        nng_msg_free(nng_aio_get_msg(k->aio)); /* a failed send leaves it with us */
        nng_aio_set_msg(k->aio, NULL);
        after(k, rv, NULL);
    } else if (k->sending) {
        k->sending = false;
        nng_ctx_recv(k->ctx, k->aio);
    } else {
        after(k, rv, rv == 0 ? nng_aio_get_msg(k->aio) : NULL);
    }
}

/* ---- setup ---- */

/* JSON-like text: {"id":"key0000000000","bio":"words words ..."} cut or
 * padded to n bytes, so that storage compression meets realistic data. */
static void value_init(uint8_t *v, uint32_t n, uint64_t *rng)
{
    static const char *const words[] = {"alpha",   "bravo", "charlie", "delta",    "echo",
                                        "foxtrot", "golf",  "hotel",   "india",    "juliet",
                                        "kilo",    "lima",  "mike",    "november", "oscar"};
    static const char head[] = "{\"id\":\"key0000000000\",\"bio\":\"";
    uint32_t i = 0;
    for (; i < n && i < sizeof head - 1; i++)
        v[i] = (uint8_t)head[i];
    while (i < n) {
        const char *w = words[rng_next(rng) % (sizeof words / sizeof words[0])];
        for (size_t j = 0; w[j] != '\0' && i < n; j++)
            v[i++] = (uint8_t)w[j];
        if (i < n)
            v[i++] = ' ';
    }
    if (n >= sizeof head + 1) {
        v[n - 2] = '"';
        v[n - 1] = '}';
    }
}

/* Clients share a connection up to this many: ringkvd's raw rep socket
 * (nng 1.5.2) queues at most 64 replies per connection and drops the rest,
 * so more outstanding requests on one connection would lose answers. */
#define CLIENTS_PER_SOCKET 32

static int open_one(struct bench *b, nng_socket *sock)
{
    nng_dialer d;
    char url[sizeof b->addr + 8];
    int rv = rk_tls_url(b->addr, b->tls != NULL, url, sizeof url) ? NNG_EADDRINVAL : 0;
    if (rv == 0)
        rv = nng_req0_open(sock);
    if (rv == 0)
        rv = nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, RK_CLIENT_MAX_MSG);
    if (rv == 0) /* never resend: see client.c (duplicates, a close hang in 1.5.2) */
        rv = nng_socket_set_ms(*sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if (rv == 0)
        rv = nng_socket_set_ms(*sock, NNG_OPT_RECONNMINT, 100);
    if (rv == 0)
        rv = nng_dialer_create(&d, *sock, url);
    if (rv == 0)
        rv = nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, RK_CLIENT_MAX_MSG);
    if (rv == 0 && b->tls)
        rv = rk_tls_dialer(d, b->tls);
    if (rv == 0)
        rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    if (rv != 0)
        rk_kvctl_err("bench: cannot set up a socket to %s: %s", b->addr, nng_strerror(rv));
    return rv;
}

static int open_socket(struct bench *b)
{
    unsigned n = (b->clients + CLIENTS_PER_SOCKET - 1) / CLIENTS_PER_SOCKET;
    char err[600];
    /* The files were checked by the probe's client: this cannot fail but
     * for memory. */
    if (b->o.tls_ca &&
        rk_tls_new(&b->tls, b->o.tls_cert, b->o.tls_key, b->o.tls_ca, err, sizeof err) != 0) {
        rk_kvctl_err("bench: %s", err);
        return NNG_EINVAL;
    }
    b->socks = calloc(n ? n : 1, sizeof(*b->socks));
    if (b->socks == NULL)
        return NNG_ENOMEM;
    for (; b->nsocks < n; b->nsocks++) {
        int rv = open_one(b, &b->socks[b->nsocks]);
        if (rv != 0)
            return rv;
    }
    return 0;
}

static int open_clients(struct bench *b)
{
    uint64_t seed = now_ns() ^ (uint64_t)getpid() << 32;
    b->cl = calloc(b->clients, sizeof *b->cl);
    if (b->cl == NULL)
        return NNG_ENOMEM;
    for (unsigned i = 0; i < b->clients; i++) {
        struct bclient *k = &b->cl[i];
        k->b = b;
        k->rng = (seed + i) * 0x9E3779B97F4A7C15ull | 1;
        k->val = malloc(b->value_size > 0 ? b->value_size : 1);
        if (k->val == NULL)
            return NNG_ENOMEM;
        value_init(k->val, b->value_size, &k->rng);
        int rv = nng_ctx_open(&k->ctx, b->socks[i / CLIENTS_PER_SOCKET]);
        if (rv == 0)
            rv = nng_ctx_set_ms(k->ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
        if (rv == 0)
            rv = nng_aio_alloc(&k->aio, client_cb, k);
        if (rv != 0)
            return rv;
        nng_aio_set_timeout(k->aio, (nng_duration)b->o.timeout_ms);
    }
    return 0;
}

static void close_all(struct bench *b)
{
    for (unsigned i = 0; b->cl != NULL && i < b->clients; i++)
        if (b->cl[i].aio != NULL)
            nng_aio_stop(b->cl[i].aio);
    for (unsigned i = 0; i < b->nsocks; i++)
        nng_close(b->socks[i]); /* closes the contexts */
    free(b->socks);
    rk_tls_free(b->tls);
    for (unsigned i = 0; b->cl != NULL && i < b->clients; i++) {
        if (b->cl[i].aio != NULL)
            nng_aio_free(b->cl[i].aio);
        free(b->cl[i].val);
    }
    free(b->cl);
}

/* ---- running a phase, with a progress line every second ---- */

static uint64_t total_errors(struct bench *b)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < ERR_N; i++)
        n += atomic_load(&b->errs[i]);
    return n;
}

static void reset_counters(struct bench *b)
{
    atomic_store(&b->ops, 0);
    atomic_store(&b->max_us, 0);
    for (unsigned i = 0; i < ERR_N; i++)
        atomic_store(&b->errs[i], 0);
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        atomic_store(&b->hist[i], 0);
}

static void progress(struct bench *b, uint64_t now, uint64_t *last_ops, bool tty)
{
    char line[160];
    uint64_t ops = atomic_load(&b->ops), p99;
    double secs = (double)(now - b->t_start_ns) / NS_PER_S;
    if (b->phase != PH_RUN) {
        snprintf(line, sizeof line, "bench: %s %llu/%u keys, %llu ops/s, %llu errors",
                 b->phase == PH_PRELOAD ? "preloading" : "deleting", (unsigned long long)ops,
                 b->keys, (unsigned long long)(ops - *last_ops),
                 (unsigned long long)total_errors(b));
    } else {
        hist_quantiles(b, (const double[]){0.99}, &p99, 1);
        snprintf(line, sizeof line, "bench: %3.0f/%llu s  %8llu ops/s  %llu errors  p99 %llu us",
                 secs, (unsigned long long)(b->duration_ms / 1000),
                 (unsigned long long)(ops - *last_ops), (unsigned long long)total_errors(b),
                 (unsigned long long)p99);
    }
    *last_ops = ops;
    if (tty)
        fprintf(stderr, "\r%s\033[K", line);
    else
        fprintf(stderr, "%s\n", line);
}

/* Stop the clients still waiting after the grace period. */
static void cancel_all(struct bench *b)
{
    atomic_store(&b->stop, true);
    for (unsigned i = 0; i < b->clients; i++)
        nng_aio_cancel(b->cl[i].aio);
}

static void run_phase(struct bench *b, enum phase ph)
{
    bool tty = isatty(STDERR_FILENO);
    uint64_t last_ops = 0, grace = (b->o.timeout_ms + 2000) * 1000000ull;
    reset_counters(b);
    atomic_store(&b->next_key, 0); /* the preload and the cleanup each walk every key */
    b->phase = ph;
    b->t_start_ns = now_ns();
    b->t_end_ns = ph == PH_RUN ? b->t_start_ns + b->duration_ms * 1000000ull : UINT64_MAX;
    uint64_t tick = b->t_start_ns + NS_PER_S, seen_ops = 0, seen_at = b->t_start_ns;
    atomic_store(&b->active, b->clients);
    for (unsigned i = 0; i < b->clients; i++)
        issue(&b->cl[i]);
    while (atomic_load(&b->active) > 0) {
        nng_msleep(20);
        uint64_t now = now_ns();
        /* The preload has no end time: give up when nothing succeeds for a
         * whole timeout (the node went away), rather than wait per key. */
        uint64_t ops = atomic_load(&b->ops);
        if (ops != seen_ops) {
            seen_ops = ops;
            seen_at = now;
        } else if (ph != PH_RUN && now > seen_at + grace && !atomic_load(&b->stop)) {
            cancel_all(b);
        }
        if (now >= tick && now < b->t_end_ns) {
            progress(b, now, &last_ops, tty);
            tick += NS_PER_S;
        }
        if (ph == PH_RUN && now > b->t_end_ns + grace && !atomic_load(&b->stop))
            cancel_all(b);
    }
    for (unsigned i = 0; i < b->clients; i++)
        nng_aio_wait(b->cl[i].aio); /* callbacks have returned: safe to reuse */
    if (tty && now_ns() >= b->t_start_ns + NS_PER_S)
        fputs("\r\033[K", stderr);
}

/* ---- probe, preload decision, report ---- */

/* One synchronous request first: an unreachable node is one clear error
 * line instead of N clients timing out. Sets *need_preload. */
static int probe(struct bench *b, bool *need_preload)
{
    struct rk_client *c;
    char key[KEY_MAX + 1];
    int rv = rk_kvctl_client_open(&c, &b->o, b->o.addr);
    *need_preload = false;
    if (rv == 0 && (rv = rk_kvctl_client_tls(c, &b->o, "bench")) != 0) {
        rk_client_close(c); /* the line is out */
        return rv;
    }
    if (rv == 0 && b->raw) {
        struct rk_msg m = {.opcode = RK_OP_ECHO,
                           .val = (const uint8_t *)"ping",
                           .vlen = 4,
                           .has_val = true},
                      rep;
        rv = rk_client_call(c, &m, &rep);
    }
    const uint64_t idx[PROBE_KEYS] = {0, b->keys / 2, b->keys - 1};
    for (unsigned i = 0; rv == 0 && !b->raw && b->get_pct > 0 && i < PROBE_KEYS && !*need_preload;
         i++) {
        void *v;
        size_t vlen;
        fmt_key(b, key, idx[i]);
        rv = rk_client_get(c, key, b->klen, &v, &vlen, NULL, NULL);
        free(v);
        *need_preload = rv == RK_ENOTFOUND;
        rv = rv == RK_ENOTFOUND ? 0 : rv;
    }
    if (rv != 0)
        rk_kvctl_err("bench: %s", c != NULL ? rk_client_error(c) : "out of memory");
    else
        snprintf(b->addr, sizeof b->addr, "%s", rk_client_addr(c));
    rk_client_close(c);
    return rv;
}

static const char *err_name(unsigned cls)
{
    static const char *const extra[] = {"no_reply", "bad_reply", "conn_lost", "transport"};
    if (cls == ERR_STATUS_N - 1)
        return "OTHER_STATUS";
    return cls < ERR_STATUS_N ? rk_proto_status_name((enum rk_status)cls)
                              : extra[cls - ERR_STATUS_N];
}

static const char *workload_name(const struct bench *b)
{
    static const char *const names[] = {"a (50% get, 50% put)", "b (95% get, 5% put)",
                                        "c (100% get)"};
    if (b->workload == 'w')
        return "w (100% put)";
    return b->raw ? "raw (ECHO)" : names[b->workload - 'a'];
}

static void report_json(struct bench *b, double secs, const uint64_t *q)
{
    uint64_t ops = atomic_load(&b->ops);
    printf("{\"workload\":\"%s\",\"clients\":%u,\"duration_s\":%.3f,\"keys\":%u,"
           "\"value_size\":%u,\"ops\":%llu,\"ops_per_s\":%.1f,\"errors\":{",
           b->raw ? "raw" : (char[]){b->workload, '\0'}, b->clients, secs, b->keys, b->value_size,
           (unsigned long long)ops, (double)ops / secs);
    const char *sep = "";
    for (unsigned i = 0; i < ERR_N; i++) {
        uint64_t n = atomic_load(&b->errs[i]);
        if (n > 0)
            printf("%s\"%s\":%llu", sep, err_name(i), (unsigned long long)n);
        sep = n > 0 ? "," : sep;
    }
    printf("},\"latency_us\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,"
           "\"max\":%llu}}\n",
           (unsigned long long)q[0], (unsigned long long)q[1], (unsigned long long)q[2],
           (unsigned long long)q[3], (unsigned long long)q[4]);
}

static void report_text(struct bench *b, double secs, const uint64_t *q)
{
    uint64_t ops = atomic_load(&b->ops);
    if (b->raw)
        printf("workload:    %s, %u-byte values\n", workload_name(b), b->value_size);
    else
        printf("workload:    %s, %u keys, %u-byte values\n", workload_name(b), b->keys,
               b->value_size);
    printf("clients:     %u\nduration:    %.1f s\n", b->clients, secs);
    printf("ops:         %llu (%.0f ops/s)\nerrors:     ", (unsigned long long)ops,
           (double)ops / secs);
    if (total_errors(b) == 0)
        fputs(" none", stdout);
    for (unsigned i = 0; i < ERR_N; i++) {
        uint64_t n = atomic_load(&b->errs[i]);
        if (n > 0)
            printf(" %s %llu", err_name(i), (unsigned long long)n);
    }
    printf("\nlatency us:  p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  max %llu\n",
           (unsigned long long)q[0], (unsigned long long)q[1], (unsigned long long)q[2],
           (unsigned long long)q[3], (unsigned long long)q[4]);
}

static int report(struct bench *b)
{
    static const double qs[] = {0.50, 0.90, 0.99, 0.999, 1.0};
    uint64_t q[5];
    double secs = (double)b->duration_ms / 1000;
    hist_quantiles(b, qs, q, 5);
    q[4] = atomic_load(&b->max_us);
    if (b->o.json)
        report_json(b, secs, q);
    else
        report_text(b, secs, q);
    if (atomic_load(&b->ops) > 0)
        return RK_EXIT_OK;
    rk_kvctl_err("bench: no request succeeded against %s (%llu errors); check the node's log",
                 b->addr, (unsigned long long)total_errors(b));
    return RK_EXIT_CLUSTER;
}

/* ---- arguments and main ---- */

static void bench_usage(FILE *f)
{
    fputs("usage: kvctl [-a ADDR] [--json] [--timeout DUR] bench [--workload a|b|c|w]\n"
          "             [--clients N] [--duration DUR] [--keys K] [--value-size B]\n"
          "             [--prefix P] [--cleanup] [--raw]\n"
          "\n"
          "Closed-loop load: N clients, each with one request outstanding.\n"
          "  --workload W    a = 50% get / 50% put, b = 95/5, c = 100% get,\n"
          "                  w = 100% put (default a)\n"
          "  --clients N     concurrent requests (default 32)\n"
          "  --duration DUR  measured time (default 10s)\n"
          "  --keys K        keys P0000000000.. chosen uniformly (default 100000);\n"
          "                  preloaded once if they are not there yet\n"
          "  --prefix P      every key the bench reads or writes starts with P\n"
          "                  (default \"bench:\"), so it leaves other keys alone\n"
          "  --cleanup       after the run, delete the K keys it may have written\n"
          "  --value-size B  bytes of JSON-like text per value (default 100)\n"
          "  --raw           ECHO requests carrying B bytes instead: the transport ceiling\n"
          "                  (against ringkvd or tests/bench/echo_server)\n"
          "Prints ops/s, errors by status and latency percentiles (--json: one object).\n",
          f);
}

/* A bench option with a value; 1 applied, 0 not one, -1 error printed. */
static int bench_opt(struct bench *b, int argc, char **argv, int *i)
{
    const char *v;
    uint64_t u;
    int rv;
    if ((rv = rk_kvctl_opt_value("--workload", argc, argv, i, &v)) > 0) {
        if (strlen(v) != 1 || ((v[0] < 'a' || v[0] > 'c') && v[0] != 'w'))
            return rk_kvctl_err("bench: bad --workload '%s': use a, b, c or w", v), -1;
        b->workload = v[0];
        b->get_pct = v[0] == 'a' ? 50 : v[0] == 'b' ? 95 : v[0] == 'c' ? 100 : 0;
    } else if (rv == 0 && (rv = rk_kvctl_opt_value("--clients", argc, argv, i, &v)) > 0) {
        if (rk_kvctl_parse_uint(v, 1, MAX_CLIENTS, &u) != 0)
            return rk_kvctl_err("bench: bad --clients '%s': use 1 to %d", v, MAX_CLIENTS), -1;
        b->clients = (unsigned)u;
    } else if (rv == 0 && (rv = rk_kvctl_opt_value("--duration", argc, argv, i, &v)) > 0) {
        if (rk_client_parse_ms(v, &b->duration_ms) != 0)
            return rk_kvctl_err("bench: bad --duration '%s': use e.g. 10s, 1m", v), -1;
    } else if (rv == 0 && (rv = rk_kvctl_opt_value("--keys", argc, argv, i, &v)) > 0) {
        if (rk_kvctl_parse_uint(v, 1, UINT32_MAX, &u) != 0)
            return rk_kvctl_err("bench: bad --keys '%s': use 1 to %u", v, UINT32_MAX), -1;
        b->keys = (uint32_t)u;
    } else if (rv == 0 && (rv = rk_kvctl_opt_value("--prefix", argc, argv, i, &v)) > 0) {
        if (strlen(v) > PREFIX_MAX)
            return rk_kvctl_err("bench: --prefix '%.20s...' is over %d bytes", v, PREFIX_MAX), -1;
        snprintf(b->prefix, sizeof b->prefix, "%s", v);
    } else if (rv == 0 && (rv = rk_kvctl_opt_value("--value-size", argc, argv, i, &v)) > 0) {
        if (rk_kvctl_parse_uint(v, 0, RK_CLIENT_MAX_MSG / 2, &u) != 0)
            return rk_kvctl_err("bench: bad --value-size '%s': use 0 to %u bytes", v,
                                RK_CLIENT_MAX_MSG / 2),
                   -1;
        b->value_size = (uint32_t)u;
    }
    return rv;
}

/* 0 parsed, 1 help printed, -1 error printed. */
static int bench_parse(struct bench *b, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            bench_usage(stdout);
            return 1;
        }
        if (strcmp(s, "--raw") == 0 || strcmp(s, "--cleanup") == 0) {
            *(s[2] == 'r' ? &b->raw : &b->cleanup) = true;
            continue;
        }
        int rv = rk_kvctl_global_opt(&b->o, argc, argv, &i);
        if (rv == 0)
            rv = bench_opt(b, argc, argv, &i);
        if (rv == 0)
            rk_kvctl_err("bench: unknown argument '%s' (see kvctl bench --help)", s);
        if (rv <= 0)
            return -1;
    }
    return 0;
}

/* --cleanup: every key of the run deleted (a tombstone each, as any
 * delete); how many is said on stderr. */
static void cleanup(struct bench *b)
{
    run_phase(b, PH_CLEANUP);
    uint64_t ok = atomic_load(&b->ops), failed = total_errors(b);
    fprintf(stderr, "bench: deleted %llu of %u keys under \"%s\"%s\n", (unsigned long long)ok,
            b->keys, b->prefix, failed ? " (some failed: run again with --cleanup)" : "");
}

static int preload(struct bench *b)
{
    fprintf(stderr, "bench: preloading %u keys of %u bytes\n", b->keys, b->value_size);
    run_phase(b, PH_PRELOAD);
    uint64_t ok = atomic_load(&b->ops), failed = total_errors(b);
    if (failed == 0)
        return 0;
    rk_kvctl_err("bench: preload stored %llu of %u keys (%llu failed)%s", (unsigned long long)ok,
                 b->keys, (unsigned long long)failed,
                 ok == 0 ? "; check the node's log" : "; going on");
    return ok == 0 ? -1 : 0;
}

int rk_bench_main(const struct rk_kvctl_opts *o, int argc, char **argv)
{
    struct bench *b = calloc(1, sizeof *b);
    bool need_preload;
    int code = RK_EXIT_USAGE;
    if (b == NULL) {
        rk_kvctl_err("bench: out of memory");
        return RK_EXIT_CLUSTER;
    }
    b->o = *o;
    b->workload = 'a';
    b->get_pct = 50;
    b->clients = 32;
    b->duration_ms = 10000;
    b->keys = 100000;
    b->value_size = 100;
    snprintf(b->prefix, sizeof b->prefix, "bench:");
    int rv = bench_parse(b, argc, argv);
    if (rv == 0 && b->raw && b->cleanup) {
        rk_kvctl_err("bench: --raw writes no keys; --cleanup has nothing to delete");
        rv = -1;
    }
    if (rv != 0) {
        free(b);
        return rv > 0 ? RK_EXIT_OK : RK_EXIT_USAGE;
    }
    b->klen = (uint32_t)strlen(b->prefix) + KEY_DIGITS;
    if (!b->raw)
        fprintf(stderr, "bench: keys \"%s0000000000\" to \"%s%010u\" (--prefix)%s\n", b->prefix,
                b->prefix, b->keys - 1, b->cleanup ? ", deleted afterwards (--cleanup)" : "");
    rv = probe(b, &need_preload);
    if (rv != 0) {
        free(b);
        return rk_kvctl_exit_code(rv);
    }
    code = RK_EXIT_CLUSTER;
    if (open_socket(b) != 0) {
        free(b);
        return code;
    }
    rv = open_clients(b);
    if (rv != 0)
        rk_kvctl_err("bench: cannot set up %u clients: %s", b->clients, nng_strerror(rv));
    else if (!need_preload || preload(b) == 0) {
        run_phase(b, PH_RUN);
        code = report(b);
        if (b->cleanup)
            cleanup(b);
    }
    close_all(b);
    free(b);
    return code;
}

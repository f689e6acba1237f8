/* Worker thread (worker.h): its life cycle, timers, background storage
 * work and shutdown. Serving is in serve.c, the reply path in reply.c.
 *
 *   loop about to block ─► rk_reply_on_prepare: commit staged puts, fix
 *                          failed write replies, send every queued reply
 */
#include "server/worker_int.h"
#include "server/node.h"
#include "cluster/antientropy.h"
#include "cluster/coord.h"
#include "cluster/hints.h"
#include "cluster/view.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/events.h"
#include "util/fsutil.h"
#include "util/log.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAILBOX_CAP 8192 /* forwarded requests waiting for this worker */
#define TICK_S      0.1  /* heartbeat, stats and background-work cadence */

/* ---- timers, background work, control ---- */

/* Mark what `kvctl repair` asked for. Caller holds stats_lock. */
static void ae_drain_locked(struct rk_worker *w)
{
    for (uint32_t p = w->idx; w->ae_nreq && p < w->sh->partitions; p += w->sh->nworkers) {
        if (!(w->ae_req[p / 8] >> (p % 8) & 1u))
            continue;
        w->ae_req[p / 8] &= (uint8_t) ~(1u << (p % 8));
        w->ae_nreq--;
        rk_aeprogress_mark(w->ae, p, RK_AE_MARK_REQUEST, w->ae_req_ms);
    }
}

/* Drop what the main loop asked for (rk_worker_drop_request), unless the
 * view says this node holds or owns the partition again. Between batches
 * only (a request waits for the next tick otherwise). Caller holds
 * stats_lock. */
static void drop_drain_locked(struct rk_worker *w)
{
    if (!w->drop_nreq || rk_storage_staged(w->store))
        return;
    struct rk_view *v = rk_view_acquire(&w->sh->views);
    for (uint32_t p = w->idx; v && w->drop_nreq && p < w->sh->partitions; p += w->sh->nworkers) {
        if (!(w->drop_req[p / 8] >> (p % 8) & 1u))
            continue;
        w->drop_req[p / 8] &= (uint8_t) ~(1u << (p % 8));
        w->drop_nreq--;
        if (rk_view_holds(v, p) || rk_view_owns(v, p))
            continue;
        int64_t n = rk_storage_drop_partition(w->store, (uint16_t)p);
        if (n > 0)
            rk_info("transfers", "partition %u: dropped this node's copy (%lld keys)", p,
                    (long long)n);
    }
    rk_view_release(v);
}

/* Take requests in and republish the progress when it changed; returns
 * the copy it replaced (the caller closes it once the lock is released).
 * Caller holds stats_lock. Request, mark and copy happen under one hold,
 * so a reader never sees a requested mark vanish and come back; the
 * initiator's live figures are taken in the same hold, so an exchange that
 * just ended is counted once, in the progress or live, never in both or
 * neither. */
static struct rk_aeprogress *ae_publish_locked(struct rk_worker *w, uint64_t now)
{
    struct rk_aeprogress *copy = NULL, *old = NULL;
    ae_drain_locked(w);
    drop_drain_locked(w);
    uint64_t gen = rk_aeprogress_generation(w->ae);
    if (gen != w->ae_pub_gen && rk_aeprogress_clone(&copy, w->ae) == 0) {
        old = w->ae_pub;
        w->ae_pub = copy;
        w->ae_pub_gen = gen;
    }
    if (w->aed) /* NULL at shutdown: nothing is served any more */
        rk_ae_stats(w->aed, &w->ae_live);
    w->ae_pub_ms = now;
    return old;
}

/* Save the progress when a save is due (always when force_save). */
static void ae_save(struct rk_worker *w, bool force_save, uint64_t now)
{
    if (!force_save && !rk_aeprogress_save_due(w->ae, now))
        return;
    int rc = rk_aeprogress_save(w->ae, now);
    if (rc < 0) /* at most one line per save interval: a failed save stays due */
        rk_warn("worker", "worker %u: saving anti-entropy progress: %s (retrying)", w->idx,
                rk_strerror(rc));
}

/* At shutdown: the progress as it stands, published and saved. */
static void ae_final(struct rk_worker *w)
{
    uint64_t now = rk_clock_wall_ms();
    pthread_mutex_lock(&w->stats_lock);
    struct rk_aeprogress *old = ae_publish_locked(w, now);
    pthread_mutex_unlock(&w->stats_lock);
    rk_aeprogress_close(old);
    ae_save(w, true, now);
}

/* Publish what other threads read: the counters, and the anti-entropy
 * progress and live figures (ae_publish_locked), in ONE hold of the lock.
 * A dropped hint's mark leaves the hint store's ae-marks in the same turn
 * of the loop that counts it taken or forwarded (antientropy.c:
 * marks_take, on_mark_reply); published together, a reader that sees it
 * gone from hints.partitions_marked sees it counted in
 * antientropy.hint_marks_*, never the one without the other. Then the
 * progress is saved when a save is due. */
static void publish(struct rk_worker *w)
{
    uint64_t now = rk_clock_wall_ms();
    pthread_mutex_lock(&w->stats_lock);
    w->pub = w->stats;
    rk_storage_stats(w->store, &w->pub.storage);
    if (w->coord)
        rk_coord_stats(w->coord, &w->pub.coord);
    if (w->hints)
        rk_hints_stats(w->hints, &w->pub.hints);
    w->pub.ae_trees_bytes = rk_aetrees_bytes(&w->trees);
    size_t nt = w->hints && w->pub.hints.pending
                    ? rk_hints_targets(w->hints, w->hint_targets, RK_WORKER_HINT_TARGETS)
                    : 0;
    w->nhint_targets = nt < RK_WORKER_HINT_TARGETS ? nt : RK_WORKER_HINT_TARGETS;
    struct rk_aeprogress *old = ae_publish_locked(w, now);
    pthread_mutex_unlock(&w->stats_lock);
    rk_aeprogress_close(old);
    ae_save(w, false, now);
}

/* How late this tick fired: a turn of the loop took that long. */
static void measure_lag(struct rk_worker *w, uint64_t now_ns)
{
    uint64_t due = w->tick_ns + (uint64_t)(TICK_S * 1e9);
    w->lag_ms = w->tick_ns && now_ns > due ? (uint32_t)((now_ns - due) / 1000000u) : 0;
    w->tick_ns = now_ns;
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct rk_worker *w = t->data;
    uint64_t now_ns = rk_clock_mono_ns();
    measure_lag(w, now_ns);
    atomic_store(&w->heartbeat, now_ns);
    publish(w);
    if (!ev_is_active(&w->bg))
        ev_idle_start(w->loop, &w->bg); /* index files and merges, when idle */
}

/* fsync = "interval": make written data durable within fsync_interval. */
static void on_syncer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    struct rk_worker *w = t->data;
    if (rk_storage_sync_due_ms(w->store) == 0)
        rk_storage_sync(w->store);
}

static void on_idle(struct ev_loop *loop, ev_idle *i, int revents)
{
    (void)revents;
    struct rk_worker *w = i->data;
    int rc = rk_storage_step(w->store);
    if (rc <= 0)
        ev_idle_stop(loop, i);
}

static void finish(struct rk_worker *w)
{
    rk_mailbox_fini(&w->mb); /* serves what other workers forwarded */
    rk_ae_destroy(w->aed);   /* the exchange under way is recorded as aborted */
    w->aed = NULL;
    rk_coord_destroy(w->coord); /* answers what still waits for replicas */
    w->coord = NULL;
    rk_reply_hinted_w(w);
    rk_hints_close(w->hints); /* commits and syncs the hints it took */
    w->hints = NULL;
    rk_reply_on_prepare(w->loop, &w->flush, 0);
    rk_sync_drain_w(w);
    ae_final(w); /* shutdown: the round and its counters as they stand */
    ev_prepare_stop(w->loop, &w->flush);
    ev_idle_stop(w->loop, &w->bg);
    ev_timer_stop(w->loop, &w->tick);
    ev_timer_stop(w->loop, &w->syncer);
    ev_async_stop(w->loop, &w->sync.done_w);
    int rc = rk_storage_close(w->store);
    w->store = NULL;
    if (rc < 0)
        rk_error("worker", "closing storage of worker %u: %s", w->idx, rk_strerror(rc));
    ev_break(w->loop, EVBREAK_ALL);
}

static void on_ctl(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)revents;
    struct rk_worker *w = a->data;
    int cmd = atomic_exchange(&w->cmd, CTL_NONE);
    if (cmd == CTL_STOP_RX) {
        ev_io_stop(loop, &w->rx);
        atomic_fetch_add(&w->sh->rx_stopped, 1);
    } else if (cmd == CTL_EXIT) {
        finish(w);
    }
}

/* ---- life cycle ---- */

static void *thread_main(void *arg)
{
    struct rk_worker *w = arg;
    ev_run(w->loop, 0);
    return NULL;
}

/* data_dir/<kind>-<idx>: this worker's own store ("worker") or hint store
 * ("hints"). data_dir holds under 1 KiB (config.h): it fits. */
static void worker_dir(const struct rk_worker *w, const char *kind, char dir[RK_PATH_MAX])
{
    snprintf(dir, RK_PATH_MAX, "%s/%s-%u", w->sh->cfg.data_dir, kind, w->idx);
}

/* ---- damage found by storage (storage.h): partitions to refill ---- */

/* Mark the partitions of this worker that d names (every one when all) for
 * anti-entropy, for why. How many were marked. */
static uint32_t mark_damaged(struct rk_worker *w, const struct rk_storage_damage *d, bool all,
                             unsigned why)
{
    uint64_t now = rk_clock_wall_ms();
    uint32_t n = 0;
    for (uint32_t p = w->idx; p < w->sh->partitions; p += w->sh->nworkers)
        if (all || (d->partitions[p / 8] >> (p % 8) & 1u))
            n += rk_aeprogress_mark(w->ae, p, why, now) == 0;
    return n;
}

/* The data store lost records (a segment moved aside by --repair) or found
 * some it cannot read (a corrupt block met by a read): their partitions go
 * first in anti-entropy, which copies the records back from the other
 * replicas. The trees cannot see an unreadable record (they hash what the
 * index says), so for a CORRUPT mark the exchange also pulls the keys
 * storage cannot read (antientropy.c). At most once per block or segment. */
static void on_store_damage(void *arg, const struct rk_storage_damage *d)
{
    struct rk_worker *w = arg;
    bool lost = d->kind == RK_DAMAGE_QUARANTINED;
    uint32_t n =
        mark_damaged(w, d, d->all_partitions, lost ? RK_AE_MARK_SEGMENT : RK_AE_MARK_CORRUPT);
    rk_warn("worker",
            "worker %u: %s segment %016llx offset=%llu: %llu records %s; %u partitions "
            "marked for anti-entropy%s",
            w->idx, lost ? "moved aside" : "corrupt block in", (unsigned long long)d->segment,
            (unsigned long long)d->offset, (unsigned long long)d->records,
            lost ? "lost" : "unreadable here", n,
            d->all_partitions ? " (every one: no index file names the records lost)" : "");
}

/* Hints lost to damage: whose keys they held is not known (a hint's
 * partition field is its target's), so every partition of this worker is
 * marked as for a dropped hint. */
static void on_hints_damage(void *arg, const struct rk_storage_damage *d)
{
    struct rk_worker *w = arg;
    uint32_t n = mark_damaged(w, d, true, RK_AE_MARK_HINT);
    rk_warn("worker",
            "worker %u: hint store %s segment %016llx offset=%llu: %llu hints %s; %u "
            "partitions marked for anti-entropy",
            w->idx, d->kind == RK_DAMAGE_QUARANTINED ? "moved aside" : "found a corrupt block in",
            (unsigned long long)d->segment, (unsigned long long)d->offset,
            (unsigned long long)d->records,
            d->kind == RK_DAMAGE_QUARANTINED ? "lost" : "unreadable", n);
}

/* A store of this worker: every block verified at open (bit rot refuses
 * the start, or is moved aside with --repair), damage reported to fn. */
static void store_opts(struct rk_worker *w, struct rk_storage_opts *o, rk_storage_damage_fn fn)
{
    rk_node_storage_opts(&w->sh->cfg, o);
    o->verify = true;
    o->repair = w->sh->repair;
    o->on_damage = fn;
    o->damage_arg = w;
}

/* After a store refused to open (err says why): damage (RK_ECORRUPT)
 * also says how to start anyway, on the same line. */
static void advise_repair(int rc, char *err, size_t errlen)
{
    size_t n = strnlen(err, errlen);
    if (rc == RK_ECORRUPT && n < errlen)
        snprintf(
            err + n, errlen - n,
            "; restart with --repair (ringkvd run -c FILE --repair) to move the damaged "
            "segment aside: anti-entropy then copies its records back from the other replicas");
}

/* The data store's purge watermark (rk_storage_opts.purge_before_ms; on
 * this loop, inside rk_storage_step): the partition's anti-entropy
 * watermark over its other replicas, picked as the initiator picks them
 * (antientropy.c, part_replicas), less cluster.max_clock_skew, since a
 * tombstone's version comes from its coordinator's clock and exchanges are
 * timed by ours. No other replica (a cluster of one, replicas = 1):
 * nothing to wait for. No view yet, or this node no longer a replica (no
 * exchange of its own runs for the partition): held. */
static uint64_t purge_before(void *arg, uint16_t partition)
{
    struct rk_worker *w = arg;
    const char *peers[RK_RING_REPLICAS_MAX];
    struct rk_view *v = w->ae ? rk_view_acquire(&w->sh->views) : NULL;
    if (!v)
        return 0;
    const struct rk_view_part *vp = &v->part[partition];
    size_t np = 0;
    for (size_t i = 0; i < vp->nserve; i++)
        if (vp->serve[i] != v->self)
            peers[np++] = v->m[vp->serve[i]].id;
    uint64_t wm = rk_aeprogress_watermark(w->ae, partition, peers, np);
    rk_view_release(v); /* after the watermark: ids point into the view's ring */
    uint64_t skew = w->sh->cfg.max_clock_skew_ms;
    return wm == UINT64_MAX ? wm : wm > skew ? wm - skew : 0;
}

static int open_store(struct rk_worker *w, char *err, size_t errlen)
{
    char dir[RK_PATH_MAX];
    worker_dir(w, "worker", dir);
    struct rk_storage_opts o;
    struct rk_storage_report rep;
    store_opts(w, &o, on_store_damage);
    o.purge_before_ms = purge_before; /* the data store only: hints are no replica */
    o.purge_arg = w;
    int rc = rk_storage_open(&w->store, dir, &o, &rep);
    if (rc < 0) {
        snprintf(err, errlen, "%s", rep.error[0] ? rep.error : rk_strerror(rc));
        advise_repair(rc, err, errlen);
        return rc;
    }
    if (rep.torn_bytes || rep.quarantined)
        rk_warn("worker", "worker %u recovered: torn_bytes=%llu quarantined=%u records_lost=%llu",
                w->idx, (unsigned long long)rep.torn_bytes, rep.quarantined,
                (unsigned long long)rep.records_lost);
    else if (w->sh->repair)
        rk_info("worker", "worker %u: --repair: every segment verified, none damaged", w->idx);
    return 0;
}

/* Build the anti-entropy trees of this worker's partitions from the index
 * just recovered, then follow every later change of the data store (not the
 * hint store: hints are not this node's replicas). */
static int build_trees(struct rk_worker *w)
{
    uint64_t keys = 0;
    int rc = rk_aetrees_init(&w->trees, w->sh->partitions, w->sh->nworkers, w->idx);
    if (rc == 0)
        rc = rk_aetrees_build(&w->trees, w->store, rk_clock_wall_ms(), false, &keys);
    if (rc < 0)
        return rc;
    rk_storage_set_observer(w->store, rk_aetrees_observe, &w->trees);
    w->stats.ae_tree_build_ms = w->trees.build_ms;
    rk_info("worker", "anti-entropy trees: %u partitions, %llu keys, %llu ms (worker %u)",
            w->trees.n, (unsigned long long)keys, (unsigned long long)w->trees.build_ms, w->idx);
    if (w->trees.foreign)
        rk_warn("worker", "worker %u holds %llu entries of partitions it does not own: ignored",
                w->idx, (unsigned long long)w->trees.foreign);
    return 0;
}

struct rk_aetree *rk_worker_aetree_w(struct rk_worker *w, uint32_t partition, uint64_t now_ms)
{
    struct rk_aetree *t = rk_aetrees_get(&w->trees, partition);
    if (t && rk_aetree_stale(t, now_ms) &&
        rk_aetrees_build(&w->trees, w->store, now_ms, true, NULL) < 0)
        return NULL;
    return t;
}

static int open_hints(struct rk_worker *w, char *err, size_t errlen)
{
    char dir[RK_PATH_MAX];
    worker_dir(w, "hints", dir);
    struct rk_storage_opts o;
    store_opts(w, &o, on_hints_damage);
    int rc = rk_hints_open(&w->hints, dir, &o, w->sh->partitions, w->sh->cfg.hints_max_bytes,
                           w->sh->cfg.hints_max_age_ms, err, errlen);
    advise_repair(rc, err, errlen);
    return rc;
}

/* The progress lives beside the worker's segments (data_dir/worker-N):
 * the partitions it describes are the ones whose data is there. Opened
 * before the store, so damage found at open marks it (on_store_damage). */
static int open_ae(struct rk_worker *w, char *err, size_t errlen)
{
    char dir[RK_PATH_MAX];
    worker_dir(w, "worker", dir);
    uint32_t parts = w->sh->partitions;
    int rc = rk_fs_mkdir(dir);
    if (rc == 0)
        rc = rk_aeprogress_open(&w->ae, dir, parts, w->sh->nworkers, w->idx);
    if (rc == 0)
        rc = rk_aeprogress_clone(&w->ae_pub, w->ae);
    if (rc == 0 && (!(w->xf_ready = calloc((parts + 7) / 8, 1)) ||
                    !(w->drop_req = calloc((parts + 7) / 8, 1))))
        rc = -ENOMEM;
    if (rc == 0 && !(w->ae_req = calloc((parts + 7) / 8, 1)))
        rc = -ENOMEM;
    if (rc < 0)
        snprintf(err, errlen, "worker %u: anti-entropy progress: %s", w->idx, rk_strerror(rc));
    w->ae_pub_gen = w->ae ? rk_aeprogress_generation(w->ae) : 0;
    return rc;
}

static void watchers_init(struct rk_worker *w, int fd)
{
    ev_io_init(&w->rx, rk_serve_on_rx, fd, EV_READ);
    ev_prepare_init(&w->flush, rk_reply_on_prepare);
    ev_timer_init(&w->tick, on_tick, TICK_S, TICK_S);
    double si = (double)w->sh->cfg.fsync_interval_ms / 1000.0;
    ev_timer_init(&w->syncer, on_syncer, si, si);
    ev_idle_init(&w->bg, on_idle);
    ev_async_init(&w->ctl, on_ctl);
    ev_async_init(&w->sync.done_w, rk_sync_on_done);
    w->sync.done_w.data = w;
    ev_async_start(w->loop, &w->sync.done_w);
    w->rx.data = w->flush.data = w->tick.data = w->syncer.data = w->bg.data = w->ctl.data = w;
    ev_io_start(w->loop, &w->rx);
    ev_prepare_start(w->loop, &w->flush);
    ev_timer_start(w->loop, &w->tick);
    if (w->sh->cfg.fsync == RK_FSYNC_INTERVAL)
        ev_timer_start(w->loop, &w->syncer);
    ev_async_start(w->loop, &w->ctl);
}

static int make_coord(struct rk_worker *w)
{
    const struct rk_config *c = &w->sh->cfg;
    struct rk_coord_env env = {.replicas = c->replicas,
                               .read_quorum = c->read_quorum,
                               .write_quorum = c->write_quorum,
                               .request_timeout_ms = c->request_timeout_ms,
                               .hlc = &w->sh->hlc,
                               .views = &w->sh->views,
                               .hints = w->hints,
                               .auth = &w->sh->auth,
                               .reply = rk_serve_coord_reply,
                               .local = rk_serve_local,
                               .arg = w};
    return rk_coord_create(&w->coord, w->loop, &env);
}

static struct rk_aetree *worker_tree(void *arg, uint32_t partition, uint64_t now_ms)
{
    return rk_worker_aetree_w(arg, partition, now_ms);
}

/* rk_ae_load_fn: this worker's load, for the initiator's back-off. The
 * lag is the larger of the last tick's lateness and how long the loop has
 * been busy in this turn. */
static void worker_load(void *arg, struct rk_ae_load *out)
{
    struct rk_worker *w = arg;
    pthread_mutex_lock(&w->mb.lock);
    out->queued = w->mb.count;
    pthread_mutex_unlock(&w->mb.lock);
    out->inflight = atomic_load(&w->sh->inflight);
    out->inflight_max = atomic_load(&w->sh->max_inflight);
    double turn_ms = (ev_time() - ev_now(w->loop)) * 1000.0;
    out->lag_ms = turn_ms > w->lag_ms ? (uint32_t)turn_ms : w->lag_ms;
}

/* The initiator finished a transfer (antientropy.h): kept for the main
 * loop, which marks the partition held. */
static void xfer_ready(void *arg, uint32_t part)
{
    struct rk_worker *w = arg;
    pthread_mutex_lock(&w->stats_lock);
    if (!(w->xf_ready[part / 8] >> (part % 8) & 1u)) {
        w->xf_ready[part / 8] |= (uint8_t)(1u << (part % 8));
        w->xf_nready++;
    }
    pthread_mutex_unlock(&w->stats_lock);
}

size_t rk_worker_take_ready(struct rk_worker *w, uint32_t *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&w->stats_lock);
    for (uint32_t p = w->idx; w->xf_nready && n < cap && p < w->sh->partitions;
         p += w->sh->nworkers) {
        if (!(w->xf_ready[p / 8] >> (p % 8) & 1u))
            continue;
        w->xf_ready[p / 8] &= (uint8_t) ~(1u << (p % 8));
        w->xf_nready--;
        out[n++] = p;
    }
    pthread_mutex_unlock(&w->stats_lock);
    return n;
}

void rk_worker_drop_request(struct rk_worker *w, uint32_t part)
{
    if (part >= w->sh->partitions || part % w->sh->nworkers != w->idx)
        return;
    pthread_mutex_lock(&w->stats_lock);
    if (!(w->drop_req[part / 8] >> (part % 8) & 1u)) {
        w->drop_req[part / 8] |= (uint8_t)(1u << (part % 8));
        w->drop_nreq++;
    }
    pthread_mutex_unlock(&w->stats_lock);
}

int64_t rk_worker_drop_now(struct rk_worker *w, uint32_t part)
{
    return rk_storage_drop_partition(w->store, (uint16_t)part);
}

/* The node's anti-entropy round is done once every worker finished it:
 * the lowest round the workers finished. Recorded once, as an event, by
 * whichever worker brings it up (compare-and-swap on ae_round_told). The
 * figures are each worker's last finished round, summed. */
static void node_round_check(struct rk_shared *sh)
{
    uint64_t done = UINT64_MAX, keys = 0;
    uint32_t parts = 0;
    for (uint32_t i = 0; i < sh->nworkers; i++) {
        struct rk_worker *x = sh->workers[i];
        pthread_mutex_lock(&x->stats_lock);
        done = x->round_done < done ? x->round_done : done;
        parts += x->round_parts;
        keys += x->round_keys;
        pthread_mutex_unlock(&x->stats_lock);
    }
    uint64_t told = atomic_load(&sh->ae_round_told);
    while (done != UINT64_MAX && done > told) {
        if (atomic_compare_exchange_weak(&sh->ae_round_told, &told, done)) {
            rk_event(RK_EVENT_AE, "round %llu done: %u partitions, %llu keys repaired",
                     (unsigned long long)done, parts, (unsigned long long)keys);
            return;
        }
    }
}

/* rk_ae_env.round_done: this worker finished round s->round. */
static void ae_round_done(void *arg, const struct rk_aeprogress_summary *s)
{
    struct rk_worker *w = arg;
    pthread_mutex_lock(&w->stats_lock);
    w->round_done = s->round;
    w->round_parts = s->compared;
    w->round_keys = s->pulled + s->pushed;
    pthread_mutex_unlock(&w->stats_lock);
    node_round_check(w->sh);
}

static int make_ae(struct rk_worker *w)
{
    struct rk_shared *sh = w->sh;
    struct rk_ae_env env = {.loop = w->loop,
                            .partitions = sh->partitions,
                            .nworkers = sh->nworkers,
                            .worker = w->idx,
                            .replicas = sh->cfg.replicas,
                            .request_timeout_ms = sh->cfg.request_timeout_ms,
                            .self = sh->node_id,
                            .views = &sh->views,
                            .hlc = &sh->hlc,
                            .auth = &sh->auth,
                            .store = w->store,
                            .tree = worker_tree,
                            .tree_arg = w,
                            .progress = w->ae,
                            .pace = {&sh->ae.enabled, &sh->ae.interval_ms,
                                     &sh->ae.max_keys_per_second, &sh->ae.max_bytes_per_second},
                            .budget = &sh->ae_budget,
                            .load = worker_load,
                            .load_arg = w,
                            .hint_marks = rk_hints_marks(w->hints),
                            .xfer_ready = xfer_ready,
                            .xfer = &sh->xfer,
                            .xfer_arg = w,
                            .round_done = ae_round_done,
                            .round_arg = w};
    return rk_ae_create(&w->aed, &env);
}

int rk_worker_create(struct rk_worker **out, struct rk_shared *sh, uint32_t idx, char *err,
                     size_t errlen)
{
    struct rk_worker *w = calloc(1, sizeof(*w));
    int fd;
    if (!w)
        return -ENOMEM;
    w->sh = sh;
    w->idx = idx;
    pthread_mutex_init(&w->stats_lock, NULL);
    pthread_mutex_init(&w->sync.mu, NULL);
    pthread_cond_init(&w->sync.cv, NULL);
    w->sync.fd = -1;
    w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    int rc = w->loop ? 0 : -ENOMEM;
    if (rc == 0)
        rc = rk_mailbox_init(&w->mb, w->loop, MAILBOX_CAP, rk_serve_on_mail, w);
    if (rc == 0)
        rc = open_ae(w, err, errlen);
    if (rc == 0)
        rc = open_store(w, err, errlen);
    if (rc == 0)
        rc = build_trees(w);
    if (rc == 0)
        rc = open_hints(w, err, errlen);
    if (rc == 0)
        rc = make_coord(w);
    if (rc == 0)
        rc = make_ae(w);
    if (rc == 0 && nng_socket_get_int(sh->sock, NNG_OPT_RECVFD, &fd) != 0)
        rc = -EIO;
    if (rc < 0) {
        if (!err[0])
            snprintf(err, errlen, "worker %u: %s", idx, rk_strerror(rc));
        rk_worker_destroy(w);
        return rc;
    }
    watchers_init(w, fd);
    atomic_store(&w->heartbeat, rk_clock_mono_ns());
    publish(w); /* marks set at open are shown from the first request on */
    *out = w;
    return 0;
}

int rk_worker_start(struct rk_worker *w, bool pin)
{
    int rc = pthread_create(&w->sync.th, NULL, rk_sync_main, w);
    if (rc != 0)
        return -rc;
    w->sync.started = true;
    rc = pthread_create(&w->thread, NULL, thread_main, w);
    if (rc != 0)
        return -rc;
    w->started = true;
    char name[16];
    snprintf(name, sizeof(name), "rk-worker-%u", w->idx);
    pthread_setname_np(w->thread, name);
    if (pin) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((int)(w->idx % (uint32_t)(ncpu > 0 ? ncpu : 1)), &set);
        rc = pthread_setaffinity_np(w->thread, sizeof(set), &set);
        if (rc != 0)
            rk_warn("worker", "cannot pin worker %u: %s", w->idx, strerror(rc));
    }
    return 0;
}

void rk_worker_stop_rx(struct rk_worker *w)
{
    atomic_store(&w->cmd, CTL_STOP_RX);
    ev_async_send(w->loop, &w->ctl);
}

void rk_worker_exit(struct rk_worker *w)
{
    atomic_store(&w->cmd, CTL_EXIT);
    ev_async_send(w->loop, &w->ctl);
}

int rk_worker_join(struct rk_worker *w)
{
    if (!w->started)
        return 0;
    w->started = false;
    return -pthread_join(w->thread, NULL);
}

void rk_worker_destroy(struct rk_worker *w)
{
    if (!w)
        return;
    if (w->store)
        rk_storage_close(w->store);
    rk_ae_destroy(w->aed);      /* only if the thread never ran finish() */
    rk_coord_destroy(w->coord); /* only if the thread never ran finish() */
    rk_hints_close(w->hints);
    if (w->loop) {
        rk_mailbox_fini(&w->mb);
        ev_loop_destroy(w->loop);
    }
    if (w->sync.started) {
        pthread_mutex_lock(&w->sync.mu);
        w->sync.quit = true;
        pthread_cond_signal(&w->sync.cv);
        pthread_mutex_unlock(&w->sync.mu);
        pthread_join(w->sync.th, NULL);
    }
    pthread_mutex_destroy(&w->sync.mu);
    pthread_cond_destroy(&w->sync.cv);
    rk_replies_free(&w->out);
    rk_replies_free(&w->held);
    rk_replies_free(&w->hinted);
    rk_replies_free(&w->syncing);
    rk_aetrees_fini(&w->trees); /* after storage closed: a merge finished by close reports */
    rk_aeprogress_close(w->ae);
    rk_aeprogress_close(w->ae_pub);
    free(w->ae_req);
    free(w->xf_ready);
    free(w->drop_req);
    pthread_mutex_destroy(&w->stats_lock);
    free(w);
}

uint64_t rk_worker_heartbeat(const struct rk_worker *w)
{
    return atomic_load(&w->heartbeat);
}

void rk_worker_partition_size(struct rk_worker *w, uint16_t partition, uint64_t *keys,
                              uint64_t *bytes)
{
    rk_storage_partition_size(w->store, partition, keys, bytes);
}

void rk_worker_stats(struct rk_worker *w, struct rk_worker_stats *out)
{
    pthread_mutex_lock(&w->stats_lock);
    *out = w->pub;
    pthread_mutex_unlock(&w->stats_lock);
}

size_t rk_worker_hint_targets(struct rk_worker *w, struct rk_hints_target *out, size_t cap)
{
    pthread_mutex_lock(&w->stats_lock);
    size_t n = w->nhint_targets < cap ? w->nhint_targets : cap;
    memcpy(out, w->hint_targets, n * sizeof(*out));
    pthread_mutex_unlock(&w->stats_lock);
    return n;
}

void rk_worker_ae_read(struct rk_worker *w, void (*fn)(const struct rk_worker_ae *ae, void *arg),
                       void *arg)
{
    pthread_mutex_lock(&w->stats_lock);
    struct rk_worker_ae ae = {w->ae_pub, w->ae_live, w->ae_pub_ms};
    fn(&ae, arg);
    pthread_mutex_unlock(&w->stats_lock);
}

int rk_worker_ae_request(struct rk_worker *w, uint32_t part, uint64_t now_ms)
{
    if (part >= w->sh->partitions || part % w->sh->nworkers != w->idx)
        return RK_EINVAL;
    pthread_mutex_lock(&w->stats_lock);
    if (!(w->ae_req[part / 8] >> (part % 8) & 1u)) {
        w->ae_req[part / 8] |= (uint8_t)(1u << (part % 8));
        w->ae_nreq++;
    }
    w->ae_req_ms = now_ms;
    rk_aeprogress_mark(w->ae_pub, part, RK_AE_MARK_REQUEST, now_ms);
    pthread_mutex_unlock(&w->stats_lock);
    return 0;
}

void rk_xfer_limits_set(struct rk_xfer_limits *x, const struct rk_config *c)
{
    atomic_store(&x->max_concurrent, c->xfer_max_concurrent);
    atomic_store(&x->max_bytes_per_second, c->xfer_max_bytes_per_second);
}

void rk_ae_pace_set(struct rk_ae_pace *p, const struct rk_config *c)
{
    atomic_store(&p->enabled, c->ae_enabled);
    atomic_store(&p->interval_ms, c->ae_interval_ms);
    atomic_store(&p->max_keys_per_second, c->ae_max_keys_per_second);
    atomic_store(&p->max_bytes_per_second, c->ae_max_bytes_per_second);
}

/* Unit tests of what the storage engine says about damage (storage.h,
 * "damage reports"): verify refusing bit rot behind an index file, repair
 * naming the partitions a quarantined segment held (from its index file,
 * else "every partition"), a segment with a damaged header moved aside, a
 * corrupt block met by reads reported once with its partitions, and
 * rk_storage_unreadable listing the records that cannot be read until a
 * put at their version replaces them.
 *
 * Compression is off, so a block's payload is its records as written and
 * the tests read which keys a block holds straight from the file. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SF_TAG "storage-damage"
#include "storage_fixture.h"

#include "storage/record.h" /* rk_rec_decode: the records of a block */

#define KEYS  1200u
#define PARTS 64u
#define BITS  (RK_STORAGE_PARTITIONS_MAX / 8)

/* What on_damage was told: every call counted, the last one kept. */
struct seen {
    int calls;
    struct rk_storage_damage last;
    uint8_t parts[BITS]; /* the last call's bitmap */
};

static void on_damage(void *arg, const struct rk_storage_damage *d)
{
    struct seen *s = arg;
    s->calls++;
    s->last = *d;
    memcpy(s->parts, d->partitions, BITS);
    s->last.partitions = s->parts;
}

static void damage_opts(struct rk_storage_opts *o, struct seen *seen)
{
    test_opts(o);
    o->segment_size = 64 << 10;
    o->compression = false; /* blocks hold their records as written */
    o->repack_below = 0;    /* and stay where they were written */
    o->on_damage = on_damage;
    o->damage_arg = seen;
}

static bool is_tomb_id(uint32_t id)
{
    return id % 97 == 5;
}

static bool is_expiring_id(uint32_t id)
{
    return id % 89 == 7;
}

#define EXPIRY_IN_MS 5000 /* of the expiring keys, from the build's clock */

/* Every key written once, partition by partition (partition = id % PARTS)
 * in batches of 20, so a segment holds a run of partitions, not all of
 * them; with expiring, some keys are deletes and some expire soon. Closed
 * cleanly: every sealed segment has its index file. */
static void build(const char *dir, struct tu_model *m, bool expiring)
{
    struct rk_storage_opts o;
    damage_opts(&o, NULL);
    o.on_damage = NULL;
    tu_model_init(m, KEYS, PARTS, 100, 400);
    rk_storage *s = open_ok(dir, &o, NULL);
    uint32_t ops = 0;
    for (uint32_t p = 0; p < PARTS; p++) {
        for (uint32_t id = p; id < KEYS; id += PARTS) {
            if (expiring && is_tomb_id(id))
                assert_rc(tu_del(s, m, id, next_ver()), 0);
            else
                assert_rc(tu_put(s, m, id, next_ver(),
                                 expiring && is_expiring_id(id) ? now_ms + EXPIRY_IN_MS : 0),
                          0);
            commit_every(s, &ops, 20);
        }
    }
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(rk_storage_close(s), 0);
}

/* A sealed segment of dir that is not the newest (which = -1: the middle
 * one, else that index), with its index file. */
static struct tu_seg pick_segment(const char *dir, int which)
{
    struct tu_seg segs[64];
    int n = tu_segments(dir, segs, 64);
    if (n < 4)
        fail_msg("expected several 64 KiB segments in %s, found %d", dir, n);
    int i = which < 0 ? n / 2 : which;
    assert_true(i < n);
    if (access(segs[i].index_file, F_OK) != 0)
        fail_msg("%s has no index file", segs[i].name);
    return segs[i];
}

/* The records of one block (compression off: the payload is raw). */
struct blk_recs {
    uint32_t n;
    uint32_t ids[256];
    uint16_t parts[256];
    bool tomb[256];
};

static void block_records(const char *path, const struct tu_block *b, struct blk_recs *out)
{
    assert_false(b->flags & TU_BLOCK_LZ4);
    uint8_t *raw = malloc(b->stored_len);
    assert_non_null(raw);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, (long)(b->off + TU_BLOCK_HEADER), SEEK_SET), 0);
    assert_int_equal(fread(raw, 1, b->stored_len, f), b->stored_len);
    fclose(f);
    out->n = 0;
    for (uint32_t off = 0, i = 0; i < b->count; i++) {
        struct rk_rec_hdr h;
        const uint8_t *k, *v;
        int len = rk_rec_decode(raw, b->stored_len, off, &h, &k, &v);
        assert_true(len > 0 && out->n < 256);
        char key[TU_KEY_CAP] = "";
        memcpy(key, k, h.klen < TU_KEY_CAP - 1 ? h.klen : TU_KEY_CAP - 1);
        assert_int_equal(sscanf(key, "key-%" SCNu32, &out->ids[out->n]), 1);
        out->parts[out->n] = h.partition;
        out->tomb[out->n] = (h.flags & RK_REC_TOMBSTONE) != 0;
        out->n++;
        off += (uint32_t)len;
    }
    free(raw);
}

static void set_bit(uint8_t *bits, uint32_t i)
{
    bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

static bool bit(const uint8_t *bits, uint32_t i)
{
    return bits[i / 8] >> (i % 8) & 1u;
}

/* The blocks of a segment file (at most cap), failing when there are none. */
static int blocks_of(const struct tu_seg *g, struct tu_block *b, int cap)
{
    int n = tu_blocks(g->path, b, cap);
    if (n < 3)
        fail_msg("%s has %d blocks: too few for these tests", g->name, n);
    return n;
}

/* Partitions of every record of segment g into parts; the record count.
 * in_seg[id] is set for the keys it holds. */
static uint64_t segment_records(const struct tu_seg *g, uint8_t *parts, bool *in_seg)
{
    struct tu_block b[256];
    int n = blocks_of(g, b, 256);
    uint64_t records = 0;
    for (int i = 0; i < n; i++) {
        struct blk_recs r;
        block_records(g->path, &b[i], &r);
        for (uint32_t j = 0; j < r.n; j++) {
            set_bit(parts, r.parts[j]);
            if (in_seg)
                in_seg[r.ids[j]] = true;
        }
        records += r.n;
    }
    return records;
}

/* got must equal want over the PARTS partitions. */
static void assert_parts(const uint8_t *got, const uint8_t *want, const char *what)
{
    for (uint32_t p = 0; p < PARTS; p++)
        if (bit(got, p) != bit(want, p))
            fail_msg("%s: partition %" PRIu32 " is %s, expected %s", what, p,
                     bit(got, p) ? "named" : "not named", bit(want, p) ? "named" : "not named");
}

/* How many of the PARTS partitions are set. */
static uint32_t count_parts(const uint8_t *bits)
{
    uint32_t n = 0;
    for (uint32_t p = 0; p < PARTS; p++)
        n += bit(bits, p);
    return n;
}

/* Flip a bit in the middle of block b's payload: its checksum fails, its
 * header stays sane. */
static void flip_payload(const struct tu_seg *g, const struct tu_block *b)
{
    assert_rc(tu_flip_bit(g->path, b->off + TU_BLOCK_HEADER + b->stored_len / 2, 3), 0);
}

/* ---- open: verify and repair ---- */

static void test_verify_finds_bit_rot_behind_an_index_file(void **state)
{
    struct fx *f = *state;
    char data[600], clean[600];
    fx_path(f, "data", data, sizeof(data), true);
    fx_path(f, "clean", clean, sizeof(clean), false);
    build(data, &f->m, false);
    assert_rc(tu_copy_dir(data, clean), 0);
    struct tu_seg g = pick_segment(data, -1);
    struct tu_block b[256];
    int nb = blocks_of(&g, b, 256);
    flip_payload(&g, &b[nb / 2]);

    /* Without verify the index file is trusted: the block is not read. */
    struct seen seen = {0};
    struct rk_storage_opts o;
    damage_opts(&o, &seen);
    struct rk_storage_report rep;
    rk_storage *s = open_ok(data, &o, &rep);
    assert_true(rep.from_index_files >= 4);
    assert_rc(rk_storage_close(s), 0);

    /* With verify it is, and the open is refused naming file and offset. */
    o.verify = true;
    assert_rc(tu_open(&s, data, &o, &rep), RK_ECORRUPT);
    char off[64];
    snprintf(off, sizeof(off), "corrupt block at offset %" PRIu64, b[nb / 2].off);
    if (!strstr(rep.error, g.name) || !strstr(rep.error, off))
        fail_msg("rep.error \"%s\" does not name %s and \"%s\"", rep.error, g.name, off);
    assert_int_equal(seen.calls, 0); /* nothing was moved aside */
    assert_int_equal(rep.quarantined, 0);
    assert_true(access(g.path, F_OK) == 0);

    /* A sound store opens with verify, everything in it. */
    s = open_ok(clean, &o, &rep);
    assert_int_equal(rep.keys, KEYS);
    assert_model(s, &f->m, 0);
    assert_rc(rk_storage_close(s), 0);
    assert_int_equal(seen.calls, 0);
    f->ok = true;
}

/* Open dir with repair, expecting one segment (g) moved aside. */
static rk_storage *repair_open(const char *dir, struct seen *seen, const struct tu_seg *g,
                               struct rk_storage_report *rep)
{
    struct rk_storage_opts o;
    damage_opts(&o, seen);
    o.repair = true;
    rk_storage *s = open_ok(dir, &o, rep);
    assert_int_equal(rep->quarantined, 1);
    assert_int_equal(seen->calls, 1);
    assert_int_equal(seen->last.kind, RK_DAMAGE_QUARANTINED);
    assert_int_equal(seen->last.segment, g->id);
    assert_int_equal(seen->last.records, rep->records_lost);
    char aside[1100];
    snprintf(aside, sizeof(aside), "%s.corrupt", g->path);
    assert_true(access(g->path, F_OK) != 0);
    assert_true(access(aside, F_OK) == 0);
    assert_true(access(g->index_file, F_OK) != 0);
    return s;
}

/* After repair: the keys of the segment moved aside are gone, the others
 * are intact. */
static void assert_only_lost(rk_storage *s, const struct tu_model *m, const bool *in_seg)
{
    char why[1024];
    for (uint32_t id = 0; id < KEYS; id++) {
        char key[TU_KEY_CAP];
        struct rk_record r;
        int rc = rk_storage_get(s, key, tu_key(key, id), 0, &r);
        if (in_seg[id] && rc != RK_ENOTFOUND)
            fail_msg("key-%07" PRIu32 " was only in the segment moved aside: get = %d", id, rc);
        if (!in_seg[id] && tu_check_key(s, m, id, now_ms, 0, why, sizeof(why)) != 0)
            fail_msg("a key outside the segment moved aside: %s", why);
    }
}

static void test_repair_names_partitions_from_the_index_file(void **state)
{
    struct fx *f = *state;
    build(f->dir, &f->m, false);
    struct tu_seg g = pick_segment(f->dir, -1);
    uint8_t want[BITS] = {0};
    bool *in_seg = f->buf = calloc(KEYS, sizeof(bool));
    uint64_t records = segment_records(&g, want, in_seg);
    uint32_t named = count_parts(want);
    if (named == 0 || named == PARTS)
        fail_msg("%s holds %" PRIu32 " of %u partitions: the test needs some, not all", g.name,
                 named, PARTS);
    struct tu_block b[256];
    blocks_of(&g, b, 256);
    flip_payload(&g, &b[1]);

    struct seen seen = {0};
    struct rk_storage_report rep;
    rk_storage *s = repair_open(f->dir, &seen, &g, &rep);
    assert_int_equal(rep.records_lost, records);
    assert_false(seen.last.all_partitions);
    assert_int_equal(seen.last.offset, b[1].off);
    assert_parts(seen.parts, want, "partitions named by the index file");
    assert_only_lost(s, &f->m, in_seg);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

static void test_repair_without_index_file_reports_every_partition(void **state)
{
    struct fx *f = *state;
    build(f->dir, &f->m, false);
    struct tu_seg g = pick_segment(f->dir, -1);
    uint8_t want[BITS] = {0};
    bool *in_seg = f->buf = calloc(KEYS, sizeof(bool));
    uint64_t records = segment_records(&g, want, in_seg);
    struct tu_block b[256];
    int nb = blocks_of(&g, b, 256);
    flip_payload(&g, &b[nb / 2]);
    assert_int_equal(unlink(g.index_file), 0);

    struct seen seen = {0};
    struct rk_storage_report rep;
    rk_storage *s = repair_open(f->dir, &seen, &g, &rep);
    /* The damaged block's records cannot be named: any partition may have
     * lost one. Those the scan read are named, and only those. */
    assert_true(seen.last.all_partitions);
    assert_int_equal(rep.records_lost, records);
    for (uint32_t p = 0; p < PARTS; p++)
        if (bit(seen.parts, p) && !bit(want, p))
            fail_msg("partition %" PRIu32 " named, but %s holds none of it", p, g.name);
    assert_true(count_parts(seen.parts) > 0);
    assert_only_lost(s, &f->m, in_seg);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

static void test_repair_moves_a_segment_with_a_damaged_header_aside(void **state)
{
    struct fx *f = *state;
    build(f->dir, &f->m, false);
    struct tu_seg segs[64];
    int n = tu_segments(f->dir, segs, 64);
    /* The newest file is the empty active segment: without it the damaged
     * segment has the highest id, which a new segment must not reuse. */
    struct tu_block none[1];
    assert_int_equal(tu_blocks(segs[n - 1].path, none, 1), 0);
    assert_int_equal(unlink(segs[n - 1].path), 0);
    n--;
    struct tu_seg g = pick_segment(f->dir, n - 1);
    uint8_t want[BITS] = {0};
    bool *in_seg = f->buf = calloc(KEYS, sizeof(bool));
    uint64_t records = segment_records(&g, want, in_seg);
    assert_rc(tu_flip_bit(g.path, 2, 5), 0); /* in the magic */

    struct seen seen = {0};
    struct rk_storage_opts o;
    damage_opts(&o, &seen);
    struct rk_storage_report rep;
    rk_storage *s;
    assert_rc(tu_open(&s, f->dir, &o, &rep), RK_ECORRUPT);
    if (!strstr(rep.error, g.name) || !strstr(rep.error, "bad header"))
        fail_msg("rep.error \"%s\" does not say %s has a bad header", rep.error, g.name);

    s = repair_open(f->dir, &seen, &g, &rep);
    assert_false(seen.last.all_partitions); /* its index file is intact */
    assert_parts(seen.parts, want, "partitions of a segment with a bad header");
    assert_int_equal(rep.records_lost, records);
    assert_int_equal(rep.segments, (uint32_t)n - 1);
    assert_only_lost(s, &f->m, in_seg);
    /* New segments never take the name of the one moved aside. */
    put_ids(s, &f->m, 0, 400, 1);
    assert_rc(rk_storage_close(s), 0);
    int m = tu_segments(f->dir, segs, 64);
    assert_true(m >= n - 1);
    for (int i = 0; i < m; i++)
        if (segs[i].id == g.id)
            fail_msg("a new segment reused the id of %s, which was moved aside", g.name);
    char aside[1100];
    snprintf(aside, sizeof(aside), "%s.corrupt", g.path);
    assert_true(access(aside, F_OK) == 0);
    f->ok = true;
}

/* ---- damage found while serving ---- */

static int get_id(rk_storage *s, uint32_t id)
{
    char key[TU_KEY_CAP];
    struct rk_record r;
    return rk_storage_get(s, key, tu_key(key, id), 0, &r);
}

/* The first record of r that is not a tombstone. */
static uint32_t first_live(const struct blk_recs *r)
{
    for (uint32_t i = 0; i < r->n; i++)
        if (!r->tomb[i])
            return i;
    fail_msg("a block of tombstones only");
    return 0;
}

static void test_a_corrupt_block_is_reported_once_with_its_partitions(void **state)
{
    struct fx *f = *state;
    build(f->dir, &f->m, false);
    struct tu_seg g = pick_segment(f->dir, -1);
    struct tu_block b[256];
    int nb = blocks_of(&g, b, 256);
    struct blk_recs r1, r2;
    block_records(g.path, &b[0], &r1);
    block_records(g.path, &b[nb - 1], &r2);
    assert_true(r1.n >= 2 && r2.n >= 1);
    uint8_t want1[BITS] = {0}, want2[BITS] = {0};
    for (uint32_t i = 0; i < r1.n; i++)
        set_bit(want1, r1.parts[i]);
    for (uint32_t i = 0; i < r2.n; i++)
        set_bit(want2, r2.parts[i]);
    flip_payload(&g, &b[0]);
    flip_payload(&g, &b[nb - 1]);

    struct seen seen = {0};
    struct rk_storage_opts o;
    damage_opts(&o, &seen);
    rk_storage *s = open_ok(f->dir, &o, NULL); /* through the index files: not seen yet */
    assert_int_equal(seen.calls, 0);
    struct tu_log log = {0};
    tu_log_capture(&log);

    assert_rc(get_id(s, r1.ids[0]), RK_ECORRUPT);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.last.kind, RK_DAMAGE_UNREADABLE);
    assert_int_equal(seen.last.segment, g.id);
    assert_int_equal(seen.last.offset, b[0].off);
    assert_int_equal(seen.last.records, r1.n);
    assert_false(seen.last.all_partitions);
    assert_parts(seen.parts, want1, "partitions of the corrupt block");

    /* Once per block: further reads of it say nothing more. */
    assert_rc(get_id(s, r1.ids[1]), RK_ECORRUPT);
    assert_rc(get_id(s, r1.ids[0]), RK_ECORRUPT);
    assert_int_equal(seen.calls, 1);

    /* An iteration with values meets both blocks: the second is new. */
    struct rk_storage_iter it;
    struct rk_record rec;
    int rc, errors = 0;
    rk_storage_iter_init(&it, -1, true);
    while ((rc = rk_storage_iter_next(s, &it, &rec)) != 0)
        errors += rc == RK_ECORRUPT;
    assert_int_equal(errors, r1.n + r2.n);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(seen.last.offset, b[nb - 1].off);
    assert_parts(seen.parts, want2, "partitions of the second corrupt block");

    /* One log line for the segment, not one per block or read. */
    const char *p = log.buf ? strstr(log.buf, "corrupt block in") : NULL;
    if (!p || strstr(p + 1, "corrupt block in") || !strstr(log.buf, g.name))
        fail_msg("want one \"corrupt block in ... %s\" line, log:\n%s", g.name,
                 log.buf ? log.buf : "");

    /* A put at the record's own version replaces it, without a report. */
    uint32_t id = r1.ids[first_live(&r1)];
    assert_rc(tu_put(s, &f->m, id, f->m.kv[id].version, 0), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_rc(get_id(s, id), 0);
    assert_int_equal(seen.calls, 2);
    tu_log_release(&log);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

/* rk_storage_visit_fn: note the id of each record reported. */
struct walk {
    bool *got;
    uint32_t n;
    uint16_t partition;
    bool wrong_partition;
};

static void collect(void *arg, const struct rk_record *r)
{
    struct walk *w = arg;
    char key[TU_KEY_CAP] = "";
    uint32_t id;
    memcpy(key, r->key, r->klen < TU_KEY_CAP - 1 ? r->klen : TU_KEY_CAP - 1);
    assert_int_equal(sscanf(key, "key-%" SCNu32, &id), 1);
    assert_true(id < KEYS);
    w->wrong_partition |= r->partition != w->partition;
    w->got[id] = true;
    w->n++;
}

/* Walk every partition; got[id] is set for each record reported, and the
 * total returned (each partition's count checked against its return). */
static uint32_t walk_all(rk_storage *s, bool *got)
{
    uint32_t total = 0;
    memset(got, 0, KEYS * sizeof(bool));
    for (uint32_t p = 0; p < PARTS; p++) {
        struct walk w = {.got = got, .partition = (uint16_t)p};
        int64_t n = rk_storage_unreadable(s, (uint16_t)p, collect, &w);
        assert_true(n >= 0);
        assert_int_equal((uint64_t)n, w.n);
        assert_false(w.wrong_partition);
        total += w.n;
    }
    return total;
}

/* want[id] for the records of r that a reader needs: not tombstones, not
 * expired (the expiring keys have, when the walks run). */
static void want_live(const struct blk_recs *r, bool *want)
{
    for (uint32_t i = 0; i < r->n; i++)
        if (!r->tomb[i] && !is_expiring_id(r->ids[i]))
            want[r->ids[i]] = true;
}

static void assert_same_ids(const bool *got, const bool *want, const char *what)
{
    for (uint32_t id = 0; id < KEYS; id++)
        if (got[id] != want[id])
            fail_msg("%s: key-%07" PRIu32 " %s", what, id,
                     got[id] ? "reported, but it is readable (or not live)"
                             : "not reported, but it cannot be read");
}

static void test_unreadable_lists_what_cannot_be_read(void **state)
{
    struct fx *f = *state;
    build(f->dir, &f->m, true);
    struct tu_seg a = pick_segment(f->dir, -1), other = pick_segment(f->dir, 0);
    assert_true(a.id != other.id);
    struct tu_block ab[256], ob[256];
    int na = blocks_of(&a, ab, 256), no = blocks_of(&other, ob, 256);
    struct blk_recs a1, a2, o1;
    block_records(a.path, &ab[0], &a1);      /* found by a get */
    block_records(a.path, &ab[na - 1], &a2); /* near it, not read yet */
    block_records(other.path, &ob[no / 2], &o1);
    flip_payload(&a, &ab[0]);
    flip_payload(&a, &ab[na - 1]);
    flip_payload(&other, &ob[no / 2]);
    bool *want = calloc(KEYS, sizeof(bool)), *got = f->buf = calloc(KEYS, sizeof(bool));
    assert_non_null(want);
    assert_non_null(got);
    want_live(&a1, want);
    want_live(&a2, want);
    bool tombs_or_expiring = false;
    for (uint32_t i = 0; i < a1.n; i++)
        tombs_or_expiring |= a1.tomb[i] || is_expiring_id(a1.ids[i]);
    for (uint32_t i = 0; i < a2.n; i++)
        tombs_or_expiring |= a2.tomb[i] || is_expiring_id(a2.ids[i]);

    struct seen seen = {0};
    struct rk_storage_opts o;
    damage_opts(&o, &seen);
    rk_storage *s = open_ok(f->dir, &o, NULL);
    now_ms += 2 * EXPIRY_IN_MS;            /* the expiring keys are gone: nothing to read */
    assert_int_equal(walk_all(s, got), 0); /* no damage known: nothing read */
    assert_rc(get_id(s, a1.ids[first_live(&a1)]), RK_ECORRUPT);
    assert_int_equal(seen.calls, 1);

    /* The walk reads the damaged segment: the block found and its
     * neighbour, never the segment where no read met damage yet. */
    uint32_t n = walk_all(s, got);
    assert_same_ids(got, want, "first walk");
    assert_int_equal(seen.calls, 2); /* the neighbour, found by the walk */
    assert_int_equal(seen.last.offset, ab[na - 1].off);
    assert_int_equal(walk_all(s, got), n);
    assert_same_ids(got, want, "second walk");
    assert_int_equal(seen.calls, 2);
    print_message("%" PRIu32 " unreadable records in 2 blocks (%s tombstones or expired ones)\n", n,
                  tombs_or_expiring ? "with" : "without");

    /* Puts at their own versions replace them: nothing left to report. */
    for (uint32_t id = 0; id < KEYS; id++)
        if (want[id])
            assert_rc(tu_put(s, &f->m, id, f->m.kv[id].version, f->m.kv[id].expiry), 0);
    assert_rc(rk_storage_commit(s), 0);
    assert_int_equal(walk_all(s, got), 0);
    for (uint32_t id = 0; id < KEYS; id++)
        if (want[id])
            assert_rc(get_id(s, id), 0);

    /* Damage in the other segment is reported once a read meets it, and
     * from then on the walk finds it too. */
    uint32_t oid = o1.ids[first_live(&o1)];
    assert_rc(get_id(s, oid), RK_ECORRUPT);
    assert_int_equal(seen.calls, 3);
    memset(want, 0, KEYS * sizeof(bool));
    want_live(&o1, want);
    walk_all(s, got);
    assert_same_ids(got, want, "walk after the other segment's damage was found");
    free(want);
    assert_rc(rk_storage_close(s), 0);
    f->ok = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_verify_finds_bit_rot_behind_an_index_file),
        FX_TEST(test_repair_names_partitions_from_the_index_file),
        FX_TEST(test_repair_without_index_file_reports_every_partition),
        FX_TEST(test_repair_moves_a_segment_with_a_damaged_header_aside),
        FX_TEST(test_a_corrupt_block_is_reported_once_with_its_partitions),
        FX_TEST(test_unreadable_lists_what_cannot_be_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Opening and closing a store: lock, load every segment (through its index
 * file when valid, else by scanning its blocks), cut a torn tail off the
 * newest segment, refuse or quarantine corruption, start the active
 * segment; and on close, commit, sync, seal and write the index files.
 *
 * Failure cases handled at open:
 * - no index file / damaged one     → scan the segment (checksums verified)
 * - torn batch at the end of newest → cut it, log file, offset and bytes
 * - bad block anywhere else, or a valid committed block after a bad one
 *                                   → RK_ECORRUPT naming file and offset;
 *                                     with repair: file renamed *.corrupt
 * - bad block in a segment with a valid index file → not seen at open
 *                                     unless verify or repair (then as above)
 * - bad segment header             → RK_ECORRUPT; with repair: *.corrupt
 * Every segment moved aside is reported to on_damage with the partitions
 * it held (storage.h).
 * - leftover *.tmp (merge outputs, index files) → removed: never complete
 */
#include "storage/storage_int.h"
#include "util/err.h"
#include "util/grow.h"
#include "util/fsutil.h"
#include "util/io.h"
#include "util/log.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Merge a record found on disk into the index: the newest version wins,
 * and at an equal version the one met later. Records are met in log order
 * (load_all), and a put that won a version tie (rk_record_rank) was
 * appended after the record it replaced, while one that lost was never
 * written; so the later record is the winner, found without reading
 * values, which index files do not hold. Other equal versions are the same
 * record twice (a merge output beside its input after a crash): either
 * will do. */
static int load_record(rk_storage *s, uint32_t slot, uint32_t block, uint32_t off,
                       const struct rk_index_file_ent *h, const uint8_t *key)
{
    uint32_t hash = rk_index_hash(key, h->klen);
    uint32_t id = rk_index_find(&s->ix, key, h->klen, hash);
    if (id == RK_IX_NONE) {
        int rc = rk_index_insert(&s->ix, key, h->klen, hash, h->partition, &id);
        if (rc < 0)
            return rc;
    } else if (h->version < rk_index_entry(&s->ix, id)->version) {
        return 0;
    } else if (rk_index_set_partition(&s->ix, id, h->partition) < 0) {
        return -ENOMEM;
    }
    struct rk_ix_entry *e = rk_index_entry(&s->ix, id);
    e->version = h->version;
    e->seg = slot;
    e->block = block;
    e->off = off;
    e->len = h->len;
    e->expiry_s = h->expiry_ms ? (uint32_t)((h->expiry_ms + 999) / 1000) : 0;
    e->flags = h->flags;
    return 0;
}

static void set_bit(uint8_t *bits, uint32_t i)
{
    bits[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* Walk an index file twice: first to check its structure, then to load it, so
 * a bad index file never leaves half its entries in the index. When only
 * checking (slot unused), the partitions of its entries go to parts if
 * given. */
static int load_index_file(rk_storage *s, uint32_t slot, const uint8_t *buf, size_t len, bool apply,
                           uint8_t *parts)
{
    struct rk_index_file_hdr ih;
    memcpy(&ih, buf, sizeof(ih));
    size_t pos = sizeof(ih), end = len - 8;
    for (uint64_t i = 0; i < ih.count; i++) {
        struct rk_index_file_ent ie;
        if (end - pos < sizeof(ie))
            return RK_ECORRUPT;
        memcpy(&ie, buf + pos, sizeof(ie));
        pos += sizeof(ie);
        if (end - pos < ie.klen || ie.klen == 0 || ie.block >= ih.seg_end)
            return RK_ECORRUPT;
        if (apply) {
            int rc = load_record(s, slot, ie.block, ie.off, &ie, buf + pos);
            if (rc < 0)
                return rc;
        } else if (parts) {
            set_bit(parts, ie.partition);
        }
        pos += ie.klen;
    }
    if (pos != end)
        return RK_ECORRUPT;
    if (apply) {
        struct seg *g = &s->segs[slot];
        g->end = ih.seg_end;
        g->rec_bytes = ih.rec_bytes;
        g->raw_bytes = ih.raw_bytes;
        g->nblocks = ih.nblocks;
    }
    return 0;
}

static int try_index_file(rk_storage *s, uint32_t slot, uint64_t size)
{
    char path[RK_PATH_MAX];
    rk_seg_path(path, sizeof(path), s->dir, s->segs[slot].id, "rkh");
    uint8_t *buf;
    size_t len;
    int rc = rk_index_file_load(path, s->segs[slot].id, &buf, &len);
    if (rc == -ENOENT)
        return rc;
    if (rc == 0) {
        struct rk_index_file_hdr ih;
        memcpy(&ih, buf, sizeof(ih));
        rc = ih.seg_end <= size ? load_index_file(s, slot, buf, len, false, NULL) : RK_ECORRUPT;
        if (rc == 0)
            rc = load_index_file(s, slot, buf, len, true, NULL);
        free(buf);
    }
    if (rc == RK_ECORRUPT)
        rk_warn("storage", "index file %s is damaged; scanning its segment instead", path);
    return rc;
}

/* Records of blocks whose batch has not shown its commit block yet. */
struct pending {
    uint8_t *buf;
    size_t len, cap;
};

static int pending_add(struct pending *p, uint64_t block, const struct rk_blk_hdr *h,
                       const uint8_t *raw)
{
    size_t need = p->len + 16 + h->raw_len;
    if (rk_grow(&p->buf, &p->cap, need, 1, 65536, 0) < 0)
        return -ENOMEM;
    uint32_t meta[4] = {(uint32_t)block, h->raw_len, h->count, 0};
    memcpy(p->buf + p->len, meta, 16);
    memcpy(p->buf + p->len + 16, raw, h->raw_len);
    p->len = need;
    return 0;
}

/* Apply the records of a committed batch (or of one verified pass: then
 * their partitions are noted in parts, when given). */
static int pending_apply(rk_storage *s, uint32_t slot, struct pending *p, bool apply,
                         uint64_t *records, uint64_t *rec_bytes, uint8_t *parts)
{
    for (size_t pos = 0; pos < p->len;) {
        uint32_t meta[4];
        memcpy(meta, p->buf + pos, 16);
        const uint8_t *raw = p->buf + pos + 16;
        uint32_t off = 0;
        for (uint32_t i = 0; i < meta[2]; i++) {
            struct rk_rec_hdr h;
            const uint8_t *k, *v;
            int n = rk_rec_decode(raw, meta[1], off, &h, &k, &v);
            if (n >= 0 && h.klen == 0)
                n = RK_ECORRUPT;
            if (n < 0)
                return n;
            struct rk_index_file_ent ie = {.version = h.version,
                                           .expiry_ms = h.expiry_ms,
                                           .len = (uint32_t)n,
                                           .klen = h.klen,
                                           .partition = h.partition,
                                           .flags = h.flags};
            if (apply) {
                int rc = load_record(s, slot, meta[0], off, &ie, k);
                if (rc < 0)
                    return rc;
            } else if (parts) {
                set_bit(parts, h.partition);
            }
            off += (uint32_t)n;
            (*records)++;
            *rec_bytes += (uint32_t)n;
        }
        pos += 16 + meta[1];
        if (apply) {
            s->segs[slot].nblocks++;
            s->segs[slot].raw_bytes += meta[1];
        }
    }
    p->len = 0;
    return 0;
}

struct scan_result {
    uint64_t end;     /* end of the committed data */
    uint64_t bad_off; /* where reading stopped */
    uint64_t records;
    uint64_t torn; /* bytes past end that are not zeros */
    bool corrupt;
    uint8_t *parts; /* verifying: partitions of the records read (NULL: not wanted) */
};

/* A block whose header is sane but whose payload fails its checksum: note
 * it, count its records, and step over it. */
static bool skip_bad_block(struct rk_blkreader *r, uint64_t at, struct scan_result *res)
{
    struct rk_blk_hdr h;
    if (rk_io_pread(r->fd, &h, sizeof(h), at) < 0 ||
        rk_blk_check_hdr(&h, r->limit - at - sizeof(h)) != 0)
        return false;
    if (!res->corrupt)
        res->bad_off = at;
    res->corrupt = true;
    res->records += h.count;
    r->off = at + sizeof(h) + h.stored_len;
    return true;
}

/* Read every block of a segment, verifying checksums; apply records of
 * committed batches when apply is set. */
static int scan_blocks(rk_storage *s, uint32_t slot, uint64_t size, bool apply,
                       struct scan_result *res)
{
    struct seg *g = &s->segs[slot];
    struct rk_blkreader r;
    struct pending p = {0};
    uint64_t rec_bytes = 0;
    uint8_t *parts = res->parts;
    memset(res, 0, sizeof(*res));
    res->parts = parts;
    res->end = sizeof(struct rk_seg_hdr);
    int rc = rk_blkreader_init(&r, g->fd, sizeof(struct rk_seg_hdr), size);
    while (rc == 0) {
        struct rk_blk_hdr h;
        const uint8_t *raw;
        uint64_t at = r.off;
        int n = rk_blkreader_next(&r, &h, &raw);
        if (n == RK_ECORRUPT && !apply && skip_bad_block(&r, at, res))
            continue; /* verifying: count what a damaged segment held */
        if (n <= 0) {
            if (!res->corrupt)
                res->bad_off = at;
            rc = n == RK_ECORRUPT ? 0 : n;
            break;
        }
        rc = pending_add(&p, at, &h, raw);
        if (rc == 0 && (h.flags & RK_BLK_COMMIT)) {
            rc = pending_apply(s, slot, &p, apply, &res->records, &rec_bytes, apply ? NULL : parts);
            if (rc == RK_ECORRUPT) { /* checksum fine, records not: still corrupt */
                res->bad_off = at;
                res->corrupt = true;
                rc = 0;
                break;
            }
            res->end = r.off;
        }
    }
    free(p.buf);
    rk_blkreader_fini(&r);
    if (rc < 0)
        return rc;
    uint64_t last_nz;
    bool valid_after;
    rc = rk_seg_tail_scan(g->fd, res->end, size, &last_nz, &valid_after);
    if (rc < 0)
        return rc;
    res->torn = last_nz - res->end;
    if (valid_after && !res->corrupt) {
        res->corrupt = true;
        res->bad_off = res->end;
    }
    if (apply)
        g->rec_bytes = rec_bytes;
    return 0;
}

static void report_error(struct rk_storage_report *rep, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void report_error(struct rk_storage_report *rep, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->error, sizeof(rep->error), fmt, ap);
    va_end(ap);
}

/* The partitions of the entries of segment id's index file into parts,
 * and how many entries it lists: true when it loads and checks whole. */
static bool index_file_parts(rk_storage *s, uint64_t id, uint8_t *parts, uint64_t *count)
{
    char ixf[RK_PATH_MAX];
    rk_seg_path(ixf, sizeof(ixf), s->dir, id, "rkh");
    uint8_t *buf;
    size_t len;
    if (rk_index_file_load(ixf, id, &buf, &len) != 0)
        return false;
    struct rk_index_file_hdr ih;
    memcpy(&ih, buf, sizeof(ih));
    bool ok = load_index_file(s, UINT32_MAX, buf, len, false, parts) == 0;
    *count = ih.count;
    free(buf);
    return ok;
}

/* Move segment id aside as *.rks.corrupt (never deleted: an operator may
 * want it), remove its index file, log and count the records lost and tell
 * on_damage which partitions held them: the index file's entries when it
 * loads (it knows best), else the partitions of the records a scan read
 * (scanned, may be NULL) and "any partition". records: what a scan counted
 * (the index file's count wins when higher). */
static int quarantine(rk_storage *s, uint64_t id, struct rk_storage_report *rep, uint64_t records,
                      uint64_t bad_off, const uint8_t *scanned)
{
    char from[RK_PATH_MAX], to[RK_PATH_MAX], ixf[RK_PATH_MAX];
    uint8_t *parts = calloc(RK_STORAGE_PARTITIONS_MAX / 8, 1);
    if (!parts)
        return -ENOMEM;
    uint64_t listed = 0;
    bool named = index_file_parts(s, id, parts, &listed);
    if (named && listed > records)
        records = listed;
    if (!named) {
        memset(parts, 0, RK_STORAGE_PARTITIONS_MAX / 8); /* a partial walk proves nothing */
        if (scanned)
            memcpy(parts, scanned, RK_STORAGE_PARTITIONS_MAX / 8);
    }
    rk_seg_path(from, sizeof(from), s->dir, id, "rks");
    rk_seg_path(ixf, sizeof(ixf), s->dir, id, "rkh");
    rk_seg_path(to, sizeof(to), s->dir, id, "rks.corrupt");
    if (rename(from, to) < 0) {
        int e = -errno;
        free(parts);
        return e;
    }
    unlink(ixf);
    rk_error("storage",
             "segment %s is corrupt at offset %llu: moved to %s; %llu records lost "
             "here%s (anti-entropy refills them from replicas)",
             from, (unsigned long long)bad_off, to, (unsigned long long)records,
             named ? "" : ", of partitions no index file names");
    rep->quarantined++;
    rep->records_lost += records;
    if (s->o.on_damage) {
        struct rk_storage_damage d = {.kind = RK_DAMAGE_QUARANTINED,
                                      .segment = id,
                                      .offset = bad_off,
                                      .records = records,
                                      .partitions = parts,
                                      .all_partitions = !named};
        s->o.on_damage(s->o.damage_arg, &d);
    }
    free(parts);
    return rk_fs_sync_dir(s->dir);
}

/* quarantine() a loaded segment and free its slot. */
static int quarantine_slot(rk_storage *s, uint32_t slot, struct rk_storage_report *rep,
                           const struct scan_result *res)
{
    struct seg *g = &s->segs[slot];
    int rc = quarantine(s, g->id, rep, res->records, res->bad_off, res->parts);
    if (rc < 0)
        return rc;
    close(g->fd);
    memset(g, 0, sizeof(*g));
    g->fd = -1;
    return 0;
}

static bool has_index_file(const rk_storage *s, uint64_t id)
{
    char path[RK_PATH_MAX];
    rk_seg_path(path, sizeof(path), s->dir, id, "rkh");
    return access(path, F_OK) == 0;
}

/* Verify every block of a segment before anything of it is loaded (repair,
 * or verify when an index file would otherwise skip reading its blocks; a
 * segment without one is verified by the scan that loads it). 0 when it
 * may be loaded, 1 when it was moved aside, or an error (RK_ECORRUPT with
 * rep->error filled). */
static int verify_segment(rk_storage *s, uint32_t slot, uint64_t size, bool newest,
                          struct rk_storage_report *rep)
{
    struct seg *g = &s->segs[slot];
    if (!s->o.repair && !(s->o.verify && has_index_file(s, g->id)))
        return 0;
    struct scan_result res = {.parts = NULL};
    if (s->o.repair && !(res.parts = calloc(RK_STORAGE_PARTITIONS_MAX / 8, 1)))
        return -ENOMEM;
    int rc = scan_blocks(s, slot, size, false, &res);
    if (rc == 0 && (res.corrupt || (res.torn && !newest))) {
        if (s->o.repair) {
            rc = quarantine_slot(s, slot, rep, &res);
            rc = rc < 0 ? rc : 1;
        } else {
            char path[RK_PATH_MAX];
            rk_seg_path(path, sizeof(path), s->dir, g->id, "rks");
            report_error(rep, "segment %s: corrupt block at offset %llu (checksum mismatch)", path,
                         (unsigned long long)res.bad_off);
            rc = RK_ECORRUPT;
        }
    }
    free(res.parts);
    return rc;
}

/* Load one segment. newest: the segment that was active, whose tail may be
 * torn by a crash. */
static int load_segment(rk_storage *s, uint32_t slot, uint64_t size, bool newest,
                        struct rk_storage_report *rep)
{
    struct seg *g = &s->segs[slot];
    char path[RK_PATH_MAX];
    rk_seg_path(path, sizeof(path), s->dir, g->id, "rks");
    struct scan_result res = {.parts = NULL};
    int rc = verify_segment(s, slot, size, newest, rep); /* before trusting anything */
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (try_index_file(s, slot, size) == 0) {
        g->state = SEG_INDEXED;
        rep->from_index_files++;
        return 0;
    }
    rc = scan_blocks(s, slot, size, true, &res);
    if (rc < 0)
        return rc;
    rep->scanned++;
    if (res.corrupt || (res.torn && !newest)) {
        report_error(rep, "segment %s: corrupt block at offset %llu (checksum mismatch)", path,
                     (unsigned long long)res.bad_off);
        return RK_ECORRUPT;
    }
    if (res.torn) {
        rk_warn("storage", "cut torn tail file=%s offset=%llu dropped=%llu bytes", path,
                (unsigned long long)res.end, (unsigned long long)res.torn);
        rep->torn_bytes += res.torn;
    }
    g->end = res.end;
    g->state = SEG_SEALED;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Segment ids present in dir, ascending; stray .tmp files are removed. */
static int list_segments(const char *dir, uint64_t **ids, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned long long id;
        char ext[16];
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".tmp") == 0) {
            char p[RK_PATH_MAX];
            if (rk_fs_path(p, dir, de->d_name) == 0)
                unlink(p);
            continue;
        }
        if (sscanf(de->d_name, "seg-%16llx.%15s", &id, ext) != 2 || strcmp(ext, "rks") != 0)
            continue;
        if (rk_grow(ids, &cap, *n + 1, sizeof(**ids), 64, 0) < 0) {
            closedir(d);
            return -ENOMEM;
        }
        (*ids)[(*n)++] = id;
    }
    closedir(d);
    if (*n > 1)
        qsort(*ids, *n, sizeof(uint64_t), cmp_u64);
    return 0;
}

/* Open every segment file; *sizes gets their file sizes by slot. */
static int open_segments(rk_storage *s, const uint64_t *ids, size_t n, uint64_t *sizes,
                         struct rk_storage_report *rep)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t slot;
        int rc = rk_storage_seg_slot(s, &slot);
        if (rc < 0)
            return rc;
        char path[RK_PATH_MAX];
        rk_seg_path(path, sizeof(path), s->dir, ids[i], "rks");
        struct rk_seg_hdr h;
        rc = rk_seg_open(path, &s->segs[slot].fd, &h, &sizes[slot]);
        if (rc == 0 && h.id != ids[i])
            rc = RK_ECORRUPT;
        if (ids[i] >= s->next_id) /* never reuse the name, even of a file moved aside */
            s->next_id = ids[i] + 1;
        if (rc == RK_ECORRUPT && s->o.repair) { /* nothing in it can be placed: all of it goes */
            if (s->segs[slot].fd >= 0)
                close(s->segs[slot].fd);
            s->segs[slot].fd = -1; /* the slot stays free */
            rc = quarantine(s, ids[i], rep, 0, 0, NULL);
            if (rc < 0) {
                report_error(rep, "move %s aside: %s", path, rk_strerror(rc));
                return rc;
            }
            continue;
        }
        if (rc < 0) {
            report_error(rep, "segment %s: %s", path,
                         rc == RK_ECORRUPT ? "bad header" : rk_strerror(rc));
            return rc;
        }
        struct seg *g = &s->segs[slot];
        g->id = h.id;
        g->order = h.order;
        g->flags = h.flags;
        g->state = SEG_SEALED;
        if (h.order >= s->next_order)
            s->next_order = h.order + 1;
    }
    return 0;
}

/* Live and tombstone totals per segment, from the loaded index. */
static void account_all(rk_storage *s)
{
    for (uint32_t id = 0; id < s->ix.high; id++) {
        const struct rk_ix_entry *e = rk_index_entry(&s->ix, id);
        if (e->key)
            rk_storage_account(s, e, +1);
    }
}

static int cmp_log_order(const void *a, const void *b, void *arg)
{
    const struct seg *x = &((const struct seg *)arg)[*(const uint32_t *)a];
    const struct seg *y = &((const struct seg *)arg)[*(const uint32_t *)b];
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Load every segment in log order: by order, then id. Not by id alone: a
 * merge output gets a new id but holds data as old as its inputs (its order
 * is their largest), and the segment that was active during the merge (a
 * lower id, a higher order) may hold a tie-winning put that superseded a
 * record the merge had already copied; that put must be met last. An
 * output shares its order only with its own inputs, and has a higher id:
 * it holds nothing they supersede. Within a segment, records are met in
 * file order (scan) or once per key (index file: the current entries). */
static int load_all(rk_storage *s, const uint64_t *sizes, uint32_t newest,
                    struct rk_storage_report *rep)
{
    uint32_t *seq = malloc((s->nsegs + 1) * sizeof(uint32_t));
    if (!seq)
        return -ENOMEM;
    for (uint32_t i = 0; i < s->nsegs; i++)
        seq[i] = i;
    if (s->nsegs > 1)
        qsort_r(seq, s->nsegs, sizeof(uint32_t), cmp_log_order, s->segs);
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < s->nsegs; i++)
        if (s->segs[seq[i]].state != SEG_FREE) /* free: its file was moved aside */
            rc = load_segment(s, seq[i], sizes[seq[i]], seq[i] == newest, rep);
    free(seq);
    return rc;
}

static int recover(rk_storage *s, struct rk_storage_report *rep)
{
    uint64_t *ids = NULL;
    size_t n = 0;
    int rc = list_segments(s->dir, &ids, &n);
    if (rc < 0) {
        report_error(rep, "list %s: %s", s->dir, rk_strerror(rc));
        return rc;
    }
    uint64_t *sizes = calloc(n + 1, sizeof(uint64_t));
    rc = sizes ? open_segments(s, ids, n, sizes, rep) : -ENOMEM;
    uint32_t newest = UINT32_MAX;
    for (uint32_t i = 0; rc == 0 && i < s->nsegs; i++)
        if (s->segs[i].state != SEG_FREE && !(s->segs[i].flags & RK_SEG_F_MERGED))
            newest = i; /* slots were filled in id order */
    if (rc == 0)
        rc = load_all(s, sizes, newest, rep);
    free(ids);
    free(sizes);
    if (rc < 0)
        return rc;
    account_all(s);
    for (uint32_t i = 0; i < s->nsegs; i++)
        rep->segments += s->segs[i].state != SEG_FREE;
    if (newest != UINT32_MAX && s->segs[newest].state == SEG_SEALED &&
        s->segs[newest].end == sizeof(struct rk_seg_hdr)) {
        s->segs[newest].state = SEG_ACTIVE; /* empty: reuse it */
        s->active = newest;
        return 0;
    }
    if (newest != UINT32_MAX && s->segs[newest].state == SEG_SEALED) {
        rc = rk_storage_seal_file(s, newest);
        if (rc < 0) {
            report_error(rep, "seal %s: %s", s->dir, rk_strerror(rc));
            return rc;
        }
    }
    rc = rk_storage_new_active(s);
    if (rc < 0)
        report_error(rep, "create segment in %s: %s", s->dir, rk_strerror(rc));
    return rc;
}

static void destroy(rk_storage *s)
{
    if (s->merge)
        rk_merge_abort(s);
    if (s->ij.on)
        rk_index_file_abort(&s->ij.w);
    for (uint32_t i = 0; i < s->nsegs; i++)
        if (s->segs[i].fd >= 0)
            close(s->segs[i].fd);
    free(s->segs);
    rk_index_fini(&s->ix);
    rk_cache_fini(&s->cache);
    free(s->wbuf);
    free(s->blk);
    free(s->closed);
    free(s->undo);
    free(s->bad);
    free(s->psize);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s->dir);
    free(s);
}

int rk_storage_open(rk_storage **out, const char *dir, const struct rk_storage_opts *opts,
                    struct rk_storage_report *rep_in)
{
    struct rk_storage_report dummy;
    struct rk_storage_report *rep = rep_in ? rep_in : &dummy;
    memset(rep, 0, sizeof(*rep));
    rk_storage *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->lock_fd = -1;
    s->o = *opts;
    if (s->o.segment_size > UINT32_MAX / 2)
        s->o.segment_size = UINT32_MAX / 2; /* block offsets are 32-bit */
    s->dir = strdup(dir);
    s->psize = calloc(RK_STORAGE_PARTITIONS_MAX, sizeof(*s->psize));
    int rc = s->dir && s->psize ? 0 : -ENOMEM;
    /* Every file the engine names is dir + at most RK_STORAGE_NAME_MAX. */
    if (rc == 0 && strlen(dir) + RK_STORAGE_NAME_MAX >= RK_PATH_MAX)
        rc = -ENAMETOOLONG;
    if (rc == 0)
        rc = rk_fs_mkdir(dir);
    if (rc < 0)
        report_error(rep, "create data dir %s: %s", dir, rk_strerror(rc));
    if (rc == 0)
        rc = rk_fs_lock_dir(dir, &s->lock_fd, rep->error, sizeof(rep->error));
    if (rc == 0)
        rc = rk_index_init(&s->ix);
    if (rc == 0)
        rc = rk_cache_init(&s->cache, s->o.block_cache_size);
    if (rc == 0)
        rc = recover(s, rep);
    if (rc < 0) {
        destroy(s);
        return rc;
    }
    rep->keys = s->ix.used - s->ntomb;
    rk_info("storage", "opened %s segments=%u from_index_files=%u scanned=%u keys=%llu", dir,
            rep->segments, rep->from_index_files, rep->scanned, (unsigned long long)rep->keys);
    *out = s;
    return 0;
}

int rk_storage_close(rk_storage *s)
{
    int rc = rk_storage_commit(s);
    if (s->merge)
        rk_merge_abort(s);
    int rc2 = s->werr ? 0 : rk_storage_datasync(s);
    if (rc == 0)
        rc = rc2;
    struct seg *a = &s->segs[s->active];
    if (!s->werr && a->end > sizeof(struct rk_seg_hdr)) {
        rc2 = rk_storage_seal_file(s, s->active);
        if (rc2 == 0)
            a->state = SEG_SEALED;
        if (rc == 0)
            rc = rc2;
    }
    if (!s->werr) {
        rc2 = rk_storage_index_flush(s);
        if (rc == 0)
            rc = rc2;
    }
    destroy(s);
    return rc;
}

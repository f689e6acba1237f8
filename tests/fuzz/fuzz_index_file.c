/* Fuzz target for a segment's index file (.rkh, segment.h), which
 * recovery trusts instead of reading the segment once its checksum holds:
 * a real segment of known records is laid down with the input as its
 * index file, and the store is opened and read whole. The first input
 * byte is a mode: bit 0 makes the index file the rest of the input plus
 * its XXH3 checksum, and bit 1 then also sets its header's magic, format
 * and segment id (so mutations reach the entries); without bit 0 the rest
 * is the file as it lies on disk. Bit 2 opens with verify on.
 *
 * Properties: opening and reading never crash, hang, leak or read out of
 * bounds, whatever the index file says. An index file whose checksum does
 * not hold is ignored, and the store serves exactly the records of the
 * segment. One whose checksum holds is trusted for what it lists (keys,
 * versions, tombstones), but a value is only ever served from a record the
 * segment really holds under that key and version: a lie about where a
 * record lies is corruption, reported as an error, never another value. */
#include "fuzz.h"
#include "storage/segment.h"
#include "storage/storage.h"
#include "util/err.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#define NREC     60
#define SEG_SIZE 4096 /* one segment holds every record */

static char keys[NREC][16], vals[NREC][32];
static uint8_t *seg_file, *index_file;
static size_t seg_len, index_len;
static uint64_t ref_digest;

static void record(int i, struct rk_record *r)
{
    int kl = snprintf(keys[i], sizeof(keys[i]), "key-%d", i % 40);
    int vl = snprintf(vals[i], sizeof(vals[i]), "{\"n\":%d}", i);
    *r = (struct rk_record){.key = keys[i],
                            .klen = (uint32_t)kl,
                            .val = vals[i],
                            .vlen = (uint32_t)vl,
                            .version = (uint64_t)(i + 1) << 16,
                            .tombstone = i % 13 == 0,
                            .partition = (uint16_t)(i % 7)};
}

static void options(struct rk_storage_opts *o, bool verify)
{
    rk_storage_opts_default(o);
    o->fsync = RK_FSYNC_NEVER;
    o->segment_size = SEG_SIZE;
    o->verify = verify;
}

/* Is r one of the records written (key, version, value or tombstone)? */
static bool written(const struct rk_record *r)
{
    for (int i = 0; i < NREC; i++) {
        struct rk_record w;
        record(i, &w);
        if (w.klen == r->klen && memcmp(w.key, r->key, r->klen) == 0 && w.version == r->version &&
            w.tombstone == r->tombstone &&
            (r->tombstone || (w.vlen == r->vlen && memcmp(w.val, r->val, r->vlen) == 0)))
            return true;
    }
    return false;
}

/* Reads the store at dir whole: an order-free digest of what it serves.
 * Every record served was written, but for a tombstone named by a trusted
 * index file (whose keys the segment need not hold). */
static uint64_t read_all(const char *dir, bool verify, bool trusted)
{
    struct rk_storage_opts o;
    options(&o, verify);
    rk_storage *s;
    int rc = rk_storage_open(&s, dir, &o, NULL);
    CHECK(rc == 0);
    struct rk_storage_iter it;
    struct rk_record r;
    uint64_t digest = 0;
    rk_storage_iter_init(&it, -1, true);
    while ((rc = rk_storage_iter_next(s, &it, &r)) != 0) {
        CHECK(rc == 1 || rc == RK_ECORRUPT);
        if (rc != 1)
            continue;
        CHECK(written(&r) || (trusted && r.tombstone));
        uint64_t h = XXH3_64bits_withSeed(r.key, r.klen, r.version ^ r.tombstone);
        digest += XXH3_64bits_withSeed(r.val, r.vlen, h);
    }
    rk_storage_close(s);
    return digest;
}

/* The reference segment and its index file, made once. */
static void init(void)
{
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/ref", rk_fuzz_dir());
    CHECK(mkdir(dir, 0700) == 0);
    struct rk_storage_opts o;
    options(&o, false);
    rk_storage *s;
    CHECK(rk_storage_open(&s, dir, &o, NULL) == 0);
    for (int i = 0; i < NREC; i++) {
        struct rk_record r;
        record(i, &r);
        CHECK(rk_storage_put(s, &r, NULL) == 0);
        if (i % 10 == 9)
            CHECK(rk_storage_commit(s) == 0);
    }
    CHECK(rk_storage_close(s) == 0); /* indexes the segment */
    seg_file = rk_fuzz_get_file("ref/seg-0000000000000000.rks", &seg_len);
    index_file = rk_fuzz_get_file("ref/seg-0000000000000000.rkh", &index_len);
    CHECK(seg_file && index_file && index_len > sizeof(struct rk_index_file_hdr) + 8);
    ref_digest = read_all(dir, false, true);
    rk_fuzz_clear();
    CHECK(mkdir(dir, 0700) == 0);
    rk_fuzz_put_file("ref/seg-0000000000000000.rks", seg_file, seg_len);
    CHECK(read_all(dir, true, true) == ref_digest); /* scanned: the same records */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!seg_file)
        init();
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    size_t n = size - 1, len = mode & 1 ? n + 8 : n;
    uint8_t *f = malloc(len ? len : 1);
    CHECK(f != NULL);
    memcpy(f, data + 1, n);
    if ((mode & 3) == 3 && n >= sizeof(struct rk_index_file_hdr)) {
        struct rk_index_file_hdr h;
        memcpy(&h, f, sizeof(h));
        h.magic = RK_INDEX_FILE_MAGIC, h.format = 1, h.seg_id = 0;
        memcpy(f, &h, sizeof(h));
    }
    if (mode & 1) {
        uint64_t sum = XXH3_64bits(f, n);
        memcpy(f + n, &sum, 8);
    }
    rk_fuzz_clear();
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/s", rk_fuzz_dir());
    CHECK(mkdir(dir, 0700) == 0);
    rk_fuzz_put_file("s/seg-0000000000000000.rks", seg_file, seg_len);
    rk_fuzz_put_file("s/seg-0000000000000000.rkh", f, len);
    uint64_t sum = 0;
    if (len >= 8)
        memcpy(&sum, f + len - 8, 8);
    bool trusted = len >= 8 && XXH3_64bits(f, len - 8) == sum;
    uint64_t d = read_all(dir, (mode & 4) != 0, trusted);
    if (!trusted || (len == index_len && memcmp(f, index_file, len) == 0))
        CHECK(d == ref_digest);
    free(f);
    return 0;
}

/* The real index file without its checksum, after mode 1. */
uint8_t *rk_fuzz_seed(size_t *len)
{
    if (!seg_file)
        init();
    uint8_t *b = malloc(index_len - 8 + 1);
    if (!b)
        return NULL;
    b[0] = 1;
    memcpy(b + 1, index_file, index_len - 8);
    *len = index_len - 7;
    return b;
}

/* The seed, the same with the header fixed up and with verify, and the
 * file as it lies on disk. */
void rk_fuzz_corpus(rk_fuzz_put_fn *put)
{
    size_t len;
    uint8_t *b = rk_fuzz_seed(&len);
    if (!b)
        return;
    put("checksummed", b, len);
    b[0] = 3;
    put("checksummed-header", b, len);
    b[0] = 7;
    put("checksummed-verify", b, len);
    free(b);
    b = malloc(index_len + 1);
    if (!b)
        return;
    b[0] = 0;
    memcpy(b + 1, index_file, index_len);
    put("as-on-disk", b, index_len + 1);
    free(b);
}

/* The storage tests' model (storage_model.h). */
#include "storage_model.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the model ---- */

void tu_model_init(struct tu_model *m, uint32_t n, uint32_t partitions, uint32_t minlen,
                   uint32_t maxlen)
{
    m->n = n;
    m->partitions = partitions ? partitions : 1;
    m->minlen = minlen;
    m->maxlen = maxlen < TU_VAL_CAP ? maxlen : TU_VAL_CAP;
    m->kv = calloc(n, sizeof(m->kv[0]));
}

void tu_model_free(struct tu_model *m)
{
    free(m->kv);
    m->kv = NULL;
}

void tu_model_copy(struct tu_model *dst, const struct tu_model *src)
{
    *dst = *src;
    dst->kv = malloc(src->n * sizeof(src->kv[0]));
    memcpy(dst->kv, src->kv, src->n * sizeof(src->kv[0]));
}

uint32_t tu_key(char *buf, uint32_t id)
{
    return (uint32_t)snprintf(buf, TU_KEY_CAP, "key-%07" PRIu32, id);
}

uint32_t tu_val(const struct tu_model *m, char *buf, uint32_t id, uint64_t version)
{
    uint64_t seed = tu_hash(&id, sizeof(id), 14695981039346656037ull);
    seed = tu_hash(&version, sizeof(version), seed);
    uint32_t span = m->maxlen - m->minlen + 1;
    uint32_t len = m->minlen + (uint32_t)(seed % span);
    tu_json(buf, len, seed);
    return len;
}

int tu_put(rk_storage *s, struct tu_model *m, uint32_t id, uint64_t version, uint64_t expiry)
{
    char key[TU_KEY_CAP];
    static char val[TU_VAL_CAP];
    struct rk_record r = {0};
    r.key = key;
    r.klen = tu_key(key, id);
    r.val = val;
    r.vlen = tu_val(m, val, id, version);
    r.version = version;
    r.expiry_ms = expiry;
    r.partition = (uint16_t)(id % m->partitions);
    int rc = rk_storage_put(s, &r, NULL);
    if (rc == 0)
        m->kv[id] = (struct tu_kv){version, expiry, true, false};
    return rc;
}

int tu_del(rk_storage *s, struct tu_model *m, uint32_t id, uint64_t version)
{
    char key[TU_KEY_CAP];
    uint32_t klen = tu_key(key, id);
    int rc = rk_storage_del(s, key, klen, (uint16_t)(id % m->partitions), version, NULL);
    if (rc == 0)
        m->kv[id] = (struct tu_kv){version, 0, true, true};
    return rc;
}

static bool expired(const struct tu_kv *kv, uint64_t now)
{
    return kv->expiry != 0 && kv->expiry < now;
}

int tu_check_key(rk_storage *s, const struct tu_model *m, uint32_t id, uint64_t now, unsigned flags,
                 char *why, size_t whylen)
{
    const struct tu_kv *kv = &m->kv[id];
    char key[TU_KEY_CAP];
    static char val[TU_VAL_CAP];
    uint32_t klen = tu_key(key, id);
    struct rk_record r;
    int rc = rk_storage_get(s, key, klen, 0, &r);
    bool gone = !kv->present || kv->tomb || expired(kv, now);
    if (gone) {
        if (rc != RK_ENOTFOUND) {
            snprintf(why, whylen, "%s: get = %d (%s) version %" PRIu64 ", want not found", key, rc,
                     rk_strerror(rc), rc == 0 ? r.version : 0);
            return -1;
        }
        if (!kv->present || !kv->tomb)
            return 0;
        rc = rk_storage_get(s, key, klen, RK_GET_TOMBSTONES, &r);
        if (rc == RK_ENOTFOUND && (flags & TU_CHECK_PURGED_OK))
            return 0;
        if (rc != 0 || !r.tombstone || r.version != kv->version) {
            snprintf(why, whylen,
                     "%s: get(TOMBSTONES) = %d (%s) tombstone %d version %" PRIu64
                     ", want tombstone version %" PRIu64,
                     key, rc, rk_strerror(rc), rc == 0 && r.tombstone, rc == 0 ? r.version : 0,
                     kv->version);
            return -1;
        }
        return 0;
    }
    if (rc != 0) {
        snprintf(why, whylen, "%s: get = %d (%s), want version %" PRIu64, key, rc, rk_strerror(rc),
                 kv->version);
        return -1;
    }
    uint32_t vlen = tu_val(m, val, id, kv->version);
    if (r.version != kv->version || r.tombstone || r.vlen != vlen ||
        (vlen && memcmp(r.val, val, vlen) != 0) || r.klen != klen ||
        memcmp(r.key, key, klen) != 0 || r.expiry_ms != kv->expiry ||
        r.partition != id % m->partitions) {
        snprintf(why, whylen,
                 "%s: got version %" PRIu64 " vlen %" PRIu32 " expiry %" PRIu64
                 " partition %u tombstone %d; want version %" PRIu64 " vlen %" PRIu32
                 " expiry %" PRIu64 " partition %u (or value bytes differ)",
                 key, r.version, r.vlen, r.expiry_ms, (unsigned)r.partition, r.tombstone,
                 kv->version, vlen, kv->expiry, (unsigned)(id % m->partitions));
        return -1;
    }
    return 0;
}

int tu_check(rk_storage *s, const struct tu_model *m, uint64_t now, unsigned flags, char *why,
             size_t whylen)
{
    for (uint32_t id = 0; id < m->n; id++) {
        if (tu_check_key(s, m, id, now, flags, why, whylen) < 0)
            return -1;
    }
    return 0;
}

uint32_t tu_live(const struct tu_model *m, uint64_t now)
{
    uint32_t n = 0;
    for (uint32_t id = 0; id < m->n; id++) {
        const struct tu_kv *kv = &m->kv[id];
        n += kv->present && !kv->tomb && !expired(kv, now);
    }
    return n;
}

/* ---- opening a store ---- */

int tu_open(rk_storage **s, const char *dir, const struct rk_storage_opts *o,
            struct rk_storage_report *rep)
{
    *s = NULL;
    memset(rep, 0, sizeof(*rep));
    return rk_storage_open(s, dir, o, rep);
}

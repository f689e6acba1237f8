/* The storage tests' model (test_storage*.c and their children): keys
 * "key-<id>" with values derived from (id, version), writes recorded as
 * they succeed, and a check of a store against the model. Links the
 * storage layer; testutil.h has what every layer's tests share. */
#ifndef RK_STORAGE_MODEL_H
#define RK_STORAGE_MODEL_H

#include "storage/storage.h"
#include "testutil.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- the model: keys "key-<id>", values derived from (id, version) ---- */

#define TU_KEY_CAP 32
#define TU_VAL_CAP 8192

struct tu_kv {
    uint64_t version;
    uint64_t expiry;
    bool present; /* ever written and not known to be purged */
    bool tomb;
};

struct tu_model {
    uint32_t n;
    uint32_t partitions; /* partition of id = id % partitions */
    uint32_t minlen, maxlen;
    struct tu_kv *kv;
};

void tu_model_init(struct tu_model *m, uint32_t n, uint32_t partitions, uint32_t minlen,
                   uint32_t maxlen);
void tu_model_free(struct tu_model *m);
void tu_model_copy(struct tu_model *dst, const struct tu_model *src);

uint32_t tu_key(char *buf, uint32_t id);
/* The value of (id, version): fills buf (TU_VAL_CAP) and returns its length. */
uint32_t tu_val(const struct tu_model *m, char *buf, uint32_t id, uint64_t version);

/* Stage a put / delete of id and record it in the model when it succeeds.
 * Returns what rk_storage_put returned. */
int tu_put(rk_storage *s, struct tu_model *m, uint32_t id, uint64_t version, uint64_t expiry);
int tu_del(rk_storage *s, struct tu_model *m, uint32_t id, uint64_t version);

#define TU_CHECK_PURGED_OK 1u /* tombstones and expired records may be gone */

/* Compare every key of m with s at wall time now. Returns 0, or -1 with a
 * one-line explanation in why. */
int tu_check(rk_storage *s, const struct tu_model *m, uint64_t now, unsigned flags, char *why,
             size_t whylen);
/* The same for one key. */
int tu_check_key(rk_storage *s, const struct tu_model *m, uint32_t id, uint64_t now, unsigned flags,
                 char *why, size_t whylen);
/* Live (present, not a tombstone, not expired at now) keys of m. */
uint32_t tu_live(const struct tu_model *m, uint64_t now);

/* ---- opening a store ---- */

/* rk_storage_open with *s and *rep cleared first (rep is always filled). */
int tu_open(rk_storage **s, const char *dir, const struct rk_storage_opts *o,
            struct rk_storage_report *rep);

#endif

/* A fake anti-entropy tree's entries, shared by test_aexchange and the
 * aexchange fuzz target: the entry, its order (leaf, then key, as a scan
 * returns them) and the scan contract (cluster/antientropy.h
 * rk_ae_tree_ops.scan) walked over a sorted array. Header only: the unit
 * test and the fuzz target each keep their own tree around it. */
#ifndef RK_TESTS_AE_FAKE_H
#define RK_TESTS_AE_FAKE_H

#include "cluster/aexchange.h"
#include "proto/aewire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fent {
    char key[24];
    uint16_t klen, leaf;
    uint64_t version, expiry;
    bool tomb;
};

/* qsort order: leaf, then key. */
static inline int fent_cmp(const void *a, const void *b)
{
    const struct fent *x = a, *y = b;
    if (x->leaf != y->leaf)
        return x->leaf < y->leaf ? -1 : 1;
    return rk_aew_key_cmp((const uint8_t *)x->key, x->klen, (const uint8_t *)y->key, y->klen);
}

/* Visit the entries of e[0..n) (sorted by fent_cmp) in the ascending
 * leaves[0..nl), skipping those of the first leaf up to and including
 * key `after`, until visit returns true. */
static inline void fent_scan(const struct fent *e, size_t n, const uint16_t *leaves, uint16_t nl,
                             const uint8_t *after, uint16_t alen, rk_ae_visit_fn visit, void *varg)
{
    uint16_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const struct fent *f = &e[i];
        while (at < nl && leaves[at] < f->leaf)
            at++;
        if (at == nl)
            break;
        if (f->leaf != leaves[at] ||
            (at == 0 && after &&
             rk_aew_key_cmp((const uint8_t *)f->key, f->klen, after, alen) <= 0))
            continue;
        struct rk_aew_entry x = {.key = (const uint8_t *)f->key,
                                 .klen = f->klen,
                                 .leaf = f->leaf,
                                 .version = f->version,
                                 .tombstone = f->tomb,
                                 .expiry_ms = f->expiry};
        if (visit(varg, &x))
            break;
    }
}

#endif

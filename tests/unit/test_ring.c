/* Partition ring: partition_of is XXH3 & mask; the ring is the same for any
 * order of the same ids; preference lists have min(replicas, n) distinct
 * members and match a brute-force model of the documented derivation;
 * primaries are balanced; adding a node moves about 1/(M+1) of the
 * partitions and only to the new node; walks extend preference lists; bad
 * arguments are refused. Deterministic: every id is fixed, nothing random.
 * Includes ring.c to test the token tie-break, which real ids cannot reach. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "../../src/cluster/ring.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

struct ids {
    size_t n;
    char buf[RK_RING_MEMBERS_MAX][RK_RING_ID_MAX + 1];
    const char *p[RK_RING_MEMBERS_MAX];
};

/* "node-1" .. "node-n". */
static struct ids *node_ids(size_t n)
{
    struct ids *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(s->buf[i], sizeof(s->buf[i]), "node-%zu", i + 1);
        s->p[i] = s->buf[i];
    }
    return s;
}

static struct rk_ring *build(const struct ids *s, uint32_t partitions, uint32_t replicas)
{
    struct rk_ring *r = NULL;
    assert_int_equal(rk_ring_build(&r, s->p, s->n, partitions, replicas), 0);
    assert_non_null(r);
    return r;
}

static bool list_has(const char *const *list, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], id) == 0)
            return true;
    return false;
}

static void assert_distinct(const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal(list[i], list[j]);
}

/* ---- 1. partition_of ---- */

static void test_partition_of(void **state)
{
    (void)state;
    static const uint32_t parts[] = {1, 2, 256, 4096, 65536};
    const uint8_t bin[] = {0, 1, 2, 0xff, 0};
    for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
        uint32_t P = parts[k];
        assert_int_equal(rk_ring_partition_of("", 0, P), XXH3_64bits("", 0) & (P - 1));
        assert_int_equal(rk_ring_partition_of("hello", 5, P), XXH3_64bits("hello", 5) & (P - 1));
        assert_int_equal(rk_ring_partition_of(bin, sizeof(bin), P),
                         XXH3_64bits(bin, sizeof(bin)) & (P - 1));
        for (int i = 0; i < 2000; i++) {
            char key[32];
            int l = snprintf(key, sizeof(key), "key-%d", i);
            uint32_t got = rk_ring_partition_of(key, (size_t)l, P);
            assert_true(got < P);
            assert_int_equal(got, XXH3_64bits(key, (size_t)l) & (P - 1));
        }
    }
    /* Pinned: a key's partition is on disk and on the wire. */
    assert_int_equal(XXH3_64bits("hello", 5) & 255, rk_ring_partition_of("hello", 5, 256));
}

/* ---- 2. order independence ---- */

static void test_same_set_any_order_same_ring(void **state)
{
    (void)state;
    const char *fwd[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"};
    const char *rev[] = {"golf", "foxtrot", "echo", "delta", "charlie", "bravo", "alpha"};
    const char *mix[] = {"delta", "alpha", "golf", "charlie", "foxtrot", "echo", "bravo"};
    const char *const *orders[] = {fwd, rev, mix};
    struct rk_ring *r[3];
    for (int o = 0; o < 3; o++)
        assert_int_equal(rk_ring_build(&r[o], orders[o], 7, 1024, 3), 0);
    for (size_t i = 0; i < 7; i++) {
        assert_string_equal(rk_ring_member_id(r[0], i), fwd[i]); /* sorted */
        assert_string_equal(rk_ring_member_id(r[1], i), fwd[i]);
        assert_string_equal(rk_ring_member_id(r[2], i), fwd[i]);
    }
    assert_null(rk_ring_member_id(r[0], 7));
    for (uint32_t p = 0; p < 1024; p++) {
        const char *a[3], *b[3], *c[3];
        assert_int_equal(rk_ring_preference(r[0], p, a, 3), 3);
        assert_int_equal(rk_ring_preference(r[1], p, b, 3), 3);
        assert_int_equal(rk_ring_preference(r[2], p, c, 3), 3);
        for (int k = 0; k < 3; k++) {
            assert_string_equal(a[k], b[k]);
            assert_string_equal(a[k], c[k]);
        }
    }
    assert_int_equal(rk_ring_digest(r[0]), rk_ring_digest(r[1]));
    assert_int_equal(rk_ring_digest(r[0]), rk_ring_digest(r[2]));

    /* Another member set, or other settings, give another digest. */
    struct rk_ring *s;
    assert_int_equal(rk_ring_build(&s, fwd, 6, 1024, 3), 0);
    assert_int_not_equal(rk_ring_digest(s), rk_ring_digest(r[0]));
    rk_ring_free(s);
    assert_int_equal(rk_ring_build(&s, fwd, 7, 1024, 2), 0);
    assert_int_not_equal(rk_ring_digest(s), rk_ring_digest(r[0]));
    rk_ring_free(s);
    for (int o = 0; o < 3; o++)
        rk_ring_free(r[o]);
}

/* ---- 3. preference lists ---- */

static void check_lists(size_t n, uint32_t P, uint32_t R)
{
    struct ids *s = node_ids(n);
    struct rk_ring *r = build(s, P, R);
    size_t want = n < R ? n : R;
    assert_int_equal(rk_ring_members(r), n);
    assert_int_equal(rk_ring_partitions(r), P);
    assert_int_equal(rk_ring_replicas(r), R);
    uint64_t prim = 0, repl = 0;
    uint32_t mine_p[64] = {0}, mine_r[64] = {0};
    for (uint32_t p = 0; p < P; p++) {
        const char *list[RK_RING_REPLICAS_MAX + 1];
        assert_int_equal(rk_ring_preference(r, p, list, RK_RING_REPLICAS_MAX + 1), want);
        assert_distinct(list, want);
        for (size_t k = 0; k < want; k++) {
            size_t m = 0;
            while (strcmp(rk_ring_member_id(r, m), list[k]) != 0)
                m++;
            mine_p[m] += k == 0;
            mine_r[m]++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t a, b;
        rk_ring_counts(r, i, &a, &b);
        assert_int_equal(a, mine_p[i]);
        assert_int_equal(b, mine_r[i]);
        prim += a;
        repl += b;
    }
    assert_int_equal(prim, n ? P : 0);
    assert_int_equal(repl, (uint64_t)P * want);
    rk_ring_free(r);
    free(s);
}

static void test_preference_lists(void **state)
{
    (void)state;
    static const size_t ns[] = {0, 1, 2, 3, 4, 5, 16, 40};
    static const uint32_t rs[] = {1, 2, 3, 5, 16};
    for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++)
        for (size_t j = 0; j < sizeof(rs) / sizeof(rs[0]); j++)
            check_lists(ns[i], 256, rs[j]);

    /* The named cases. */
    struct rk_ring *r;
    const char *list[4] = {0};
    assert_int_equal(rk_ring_build(&r, NULL, 0, 256, 3), 0);
    for (uint32_t p = 0; p < 256; p++)
        assert_int_equal(rk_ring_preference(r, p, list, 4), 0);
    assert_int_equal(rk_ring_walk(r, 0, list, 4), 0);
    uint32_t a = 1, b = 1;
    rk_ring_counts(r, 0, &a, &b);
    assert_true(a == 0 && b == 0);
    rk_ring_free(r);

    const char *one[] = {"solo"};
    assert_int_equal(rk_ring_build(&r, one, 1, 256, 3), 0);
    for (uint32_t p = 0; p < 256; p++) {
        assert_int_equal(rk_ring_preference(r, p, list, 4), 1);
        assert_string_equal(list[0], "solo");
    }
    rk_ring_counts(r, 0, &a, &b);
    assert_true(a == 256 && b == 256);
    rk_ring_free(r);

    const char *two[] = {"b", "a"};
    assert_int_equal(rk_ring_build(&r, two, 2, 256, 3), 0);
    for (uint32_t p = 0; p < 256; p++) {
        assert_int_equal(rk_ring_preference(r, p, list, 4), 2);
        assert_string_not_equal(list[0], list[1]);
    }
    /* cap bounds what is written; out of range is empty. */
    assert_int_equal(rk_ring_preference(r, 0, list, 1), 1);
    assert_int_equal(rk_ring_preference(r, 0, NULL, 0), 0);
    assert_int_equal(rk_ring_preference(r, 256, list, 4), 0);
    assert_int_equal(rk_ring_walk(r, 256, list, 4), 0);
    rk_ring_free(r);

    /* One partition: position 0. */
    assert_int_equal(rk_ring_build(&r, two, 2, 1, 1), 0);
    assert_int_equal(rk_ring_preference(r, 0, list, 4), 1);
    rk_ring_free(r);
}

/* Brute force of the derivation in ring.h, sharing no code with ring.c:
 * every token of every member computed afresh, sorted by (value, id), the
 * start found by linear search. Pins the placement every node must agree
 * on. */
struct ref_token {
    uint64_t val;
    const char *id;
};

static int cmp_ref(const void *a, const void *b)
{
    const struct ref_token *x = a, *y = b;
    if (x->val != y->val)
        return x->val < y->val ? -1 : 1;
    return strcmp(x->id, y->id);
}

static void test_matches_reference_model(void **state)
{
    (void)state;
    const char *ids[] = {"zeta", "a", "node-7", "x-y-z", "M"};
    enum { N = 5, P = 64, R = 3, SHIFT = 58 /* 64 - log2(P) */, T = N * RK_RING_VNODES };
    static struct ref_token tok[T];
    for (int m = 0; m < N; m++)
        for (uint32_t i = 0; i < RK_RING_VNODES; i++) {
            uint8_t buf[64 + 4];
            size_t l = strlen(ids[m]);
            memcpy(buf, ids[m], l);
            buf[l] = (uint8_t)i, buf[l + 1] = (uint8_t)(i >> 8);
            buf[l + 2] = (uint8_t)(i >> 16), buf[l + 3] = (uint8_t)(i >> 24);
            tok[m * RK_RING_VNODES + i] = (struct ref_token){XXH3_64bits(buf, l + 4), ids[m]};
        }
    qsort(tok, T, sizeof(tok[0]), cmp_ref);
    struct rk_ring *r;
    assert_int_equal(rk_ring_build(&r, ids, N, P, R), 0);
    for (uint32_t p = 0; p < P; p++) {
        uint64_t pos = (uint64_t)p << SHIFT;
        int t = 0;
        while (t < T && tok[t].val < pos)
            t++;
        const char *want[R];
        size_t k = 0;
        for (int j = 0; k < R; j++) {
            const char *id = tok[(t + j) % T].id;
            if (!list_has(want, k, id))
                want[k++] = id;
        }
        const char *got[R];
        assert_int_equal(rk_ring_preference(r, p, got, R), R);
        for (int i = 0; i < R; i++)
            assert_string_equal(got[i], want[i]);
    }
    rk_ring_free(r);
}

/* Equal token values from different members are ordered by id (member
 * index), whatever order they arrive in; the walk then meets the smaller
 * id first. Real ids never collide in practice, so this uses ring.c's
 * statics directly. */
static void test_token_collision_tie_break(void **state)
{
    (void)state;
    struct token t[] = {{500, 2}, {100, 1}, {100, 0}, {100, 2}, {50, 1}};
    qsort(t, 5, sizeof(t[0]), cmp_token);
    const struct token want[] = {{50, 1}, {100, 0}, {100, 1}, {100, 2}, {500, 2}};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(t[i].value, want[i].value);
        assert_int_equal(t[i].member, want[i].member);
    }
    struct rk_ring r = {.partitions = 1, .replicas = 3, .n = 3, .plen = 3, .ntok = 5, .tok = t};
    uint16_t out[3];
    assert_int_equal(walk_idx(&r, 0, out, 3), 3); /* position 0: from {50, 1} */
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 0);
    assert_int_equal(out[2], 2);
    r.partitions = 2; /* partition 1 at 2^63: past every token, wraps */
    assert_int_equal(walk_idx(&r, 1, out, 3), 3);
    assert_int_equal(out[0], 1);
    assert_int_equal(first_at_or_after(&r, 100), 1);
    assert_int_equal(first_at_or_after(&r, 101), 4);
    assert_int_equal(first_at_or_after(&r, 501), 0);
}

/* ---- 4. balance ---- */

static void test_balance(void **state)
{
    (void)state;
    static const size_t ns[] = {3, 5, 9, 15};
    const uint32_t P = 4096;
    for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
        struct ids *s = node_ids(ns[k]);
        struct rk_ring *r = build(s, P, 3);
        double fair = (double)P / (double)ns[k], lo = 1e9, hi = 0;
        for (size_t i = 0; i < ns[k]; i++) {
            uint32_t a, b;
            rk_ring_counts(r, i, &a, &b);
            double ratio = a / fair;
            lo = ratio < lo ? ratio : lo;
            hi = ratio > hi ? ratio : hi;
        }
        print_message("balance: %2zu members, %u partitions: primaries %.3f .. %.3f of fair\n",
                      ns[k], P, lo, hi);
        assert_true(lo >= 0.6 && hi <= 1.4);
        rk_ring_free(r);
        free(s);
    }
}

/* ---- 5. movement ---- */

/* Rings of node-1..node-M and node-1..node-(M+1), P partitions: whatever
 * changed must involve the new node. Returns the fraction of partitions
 * whose primary changed. */
static double moved(size_t M, uint32_t P, uint32_t R)
{
    struct ids *s = node_ids(M + 1);
    const char *added = s->p[M];
    s->n = M;
    struct rk_ring *before = build(s, P, R);
    s->n = M + 1;
    struct rk_ring *after = build(s, P, R);
    uint32_t changed = 0;
    for (uint32_t p = 0; p < P; p++) {
        const char *a[RK_RING_REPLICAS_MAX] = {0}, *b[RK_RING_REPLICAS_MAX] = {0};
        size_t na = rk_ring_preference(before, p, a, R), nb = rk_ring_preference(after, p, b, R);
        if (strcmp(a[0], b[0]) != 0) {
            assert_string_equal(b[0], added); /* (a) nothing moves between old nodes */
            changed++;
        }
        bool same = na == nb;
        for (size_t k = 0; same && k < na; k++)
            same = strcmp(a[k], b[k]) == 0;
        if (!same) /* (c) a changed list changed by gaining the new node */
            assert_true(list_has(b, nb, added));
        /* Old members keep their relative order: the new node is inserted. */
        size_t j = 0;
        for (size_t k = 0; k < nb; k++)
            if (strcmp(b[k], added) != 0)
                assert_string_equal(b[k], a[j++]);
    }
    rk_ring_free(before);
    rk_ring_free(after);
    free(s);
    return (double)changed / P;
}

/* (a) and (c) hold exactly, and are checked at both sizes. (b) is asserted
 * at 4096 partitions: at 256 the moved count is a sample of ~256/(M+1)
 * partitions whose spread (±25% at M = 15) no V can shrink, and with these
 * fixed ids 13 -> 14 moves 32 of 256 (1.75 x) while its ring share is
 * 1.07 x fair. The 256 figures are printed, not asserted. */
static void test_movement_on_join(void **state)
{
    (void)state;
    for (size_t M = 3; M <= 15; M++) {
        double fair = 1.0 / (double)(M + 1);
        double f256 = moved(M, 256, 3), f4096 = moved(M, 4096, 3);
        print_message("movement: %2zu -> %2zu members: %.4f moved at 4096 partitions "
                      "(%.2f x 1/(M+1)); %.4f at 256 (%.2f x)\n",
                      M, M + 1, f4096, f4096 / fair, f256, f256 / fair);
        assert_true(f4096 >= 0.5 * fair && f4096 <= 1.5 * fair);
    }
    /* Whole preference lists with more replicas, and a bigger cluster. */
    moved(4, 1024, 5);
    moved(40, 1024, 3);
}

/* The digest follows its documented layout (recomputed here through the
 * public API), and is pinned: every node must compute this ring. A change
 * of the pinned value (V, token derivation, positions, tie-break or digest
 * layout) is a protocol change that mixed-version clusters would not
 * survive. */
static void test_digest_layout_and_pinned(void **state)
{
    (void)state;
    struct ids *s = node_ids(3);
    struct rk_ring *r = build(s, 256, 3);
    const uint8_t head[8] = {0, 1, 0, 0, 3, 0, 0, 0}; /* 256, 3 as u32 LE */
    uint64_t h = XXH3_64bits(head, sizeof(head));
    for (size_t i = 0; i < 3; i++) {
        uint8_t buf[1 + RK_RING_ID_MAX];
        const char *id = rk_ring_member_id(r, i);
        buf[0] = (uint8_t)strlen(id);
        memcpy(buf + 1, id, buf[0]);
        h = XXH3_64bits_withSeed(buf, 1u + buf[0], h);
    }
    for (uint32_t p = 0; p < 256; p++) {
        const char *list[3];
        uint8_t buf[6];
        assert_int_equal(rk_ring_preference(r, p, list, 3), 3);
        for (size_t k = 0; k < 3; k++) {
            uint16_t m = 0;
            while (strcmp(rk_ring_member_id(r, m), list[k]) != 0)
                m++;
            buf[2 * k] = (uint8_t)m;
            buf[2 * k + 1] = (uint8_t)(m >> 8);
        }
        h = XXH3_64bits_withSeed(buf, sizeof(buf), h);
    }
    assert_int_equal(rk_ring_digest(r), h);
    print_message("digest of node-1..node-3, 256 partitions, 3 replicas: 0x%016llx\n",
                  (unsigned long long)rk_ring_digest(r));
    assert_int_equal(rk_ring_digest(r), UINT64_C(0x721e709cef274d96));
    rk_ring_free(r);
    free(s);
}

/* ---- 6. walk ---- */

static void test_walk(void **state)
{
    (void)state;
    static const size_t ns[] = {1, 2, 3, 7, 20};
    for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++) {
        size_t n = ns[k];
        struct ids *s = node_ids(n);
        struct rk_ring *r = build(s, 256, 3);
        size_t plen = n < 3 ? n : 3;
        for (uint32_t p = 0; p < 256; p++) {
            const char *w[32], *pref[3];
            assert_int_equal(rk_ring_walk(r, p, w, 32), n);
            assert_distinct(w, n);
            for (size_t i = 0; i < n; i++)
                assert_true(list_has(w, n, s->p[i]));
            assert_int_equal(rk_ring_preference(r, p, pref, 3), plen);
            for (size_t i = 0; i < plen; i++)
                assert_string_equal(w[i], pref[i]);
            /* cap stops the walk early, with the same prefix. */
            const char *w2[2];
            assert_int_equal(rk_ring_walk(r, p, w2, 2), n < 2 ? n : 2);
            for (size_t i = 0; i < (n < 2 ? n : 2); i++)
                assert_string_equal(w2[i], w[i]);
        }
        rk_ring_free(r);
        free(s);
    }
}

/* ---- 7. bad arguments ---- */

static void test_bad_arguments(void **state)
{
    (void)state;
    const char *ok[] = {"a", "b"};
    struct rk_ring *r = (struct rk_ring *)1;
    assert_int_equal(rk_ring_build(&r, ok, 2, 3, 3), RK_EINVAL);
    assert_null(r);
    assert_int_equal(rk_ring_build(&r, ok, 2, 0, 3), RK_EINVAL);
    assert_int_equal(rk_ring_build(&r, ok, 2, 2 * RK_RING_PARTITIONS_MAX, 3), RK_EINVAL);
    assert_int_equal(rk_ring_build(&r, ok, 2, 256, 0), RK_EINVAL);
    assert_int_equal(rk_ring_build(&r, ok, 2, 256, 17), RK_EINVAL);
    assert_int_equal(rk_ring_build(NULL, ok, 2, 256, 3), RK_EINVAL);
    assert_int_equal(rk_ring_build(&r, NULL, 2, 256, 3), RK_EINVAL);

    const char *dup[] = {"a", "b", "a"};
    r = (struct rk_ring *)1;
    assert_int_equal(rk_ring_build(&r, dup, 3, 256, 3), RK_EINVAL);
    assert_null(r);
    const char *empty[] = {"a", ""};
    assert_int_equal(rk_ring_build(&r, empty, 2, 256, 3), RK_EINVAL);
    const char *null_id[] = {"a", NULL};
    assert_int_equal(rk_ring_build(&r, null_id, 2, 256, 3), RK_EINVAL);

    char id63[64], id64[65];
    memset(id63, 'x', 63);
    id63[63] = '\0';
    memset(id64, 'x', 64);
    id64[64] = '\0';
    const char *long_ok[] = {id63};
    const char *too_long[] = {"a", id64};
    assert_int_equal(rk_ring_build(&r, too_long, 2, 256, 3), RK_EINVAL);
    assert_int_equal(rk_ring_build(&r, long_ok, 1, 256, 3), 0);
    rk_ring_free(r);

    struct ids *s = node_ids(RK_RING_MEMBERS_MAX);
    assert_int_equal(rk_ring_build(&r, s->p, RK_RING_MEMBERS_MAX + 1, 256, 3), RK_EINVAL);
    free(s);
    rk_ring_free(NULL);
}

/* At the bounds: 1024 members, 65536 partitions, 16 replicas. */
static void test_largest_ring(void **state)
{
    (void)state;
    struct ids *s = node_ids(RK_RING_MEMBERS_MAX);
    struct rk_ring *r = build(s, RK_RING_PARTITIONS_MAX, RK_RING_REPLICAS_MAX);
    uint64_t prim = 0, repl = 0;
    for (size_t i = 0; i < RK_RING_MEMBERS_MAX; i++) {
        uint32_t a, b;
        rk_ring_counts(r, i, &a, &b);
        prim += a;
        repl += b;
    }
    assert_int_equal(prim, RK_RING_PARTITIONS_MAX);
    assert_int_equal(repl, (uint64_t)RK_RING_PARTITIONS_MAX * RK_RING_REPLICAS_MAX);
    const char *w[RK_RING_MEMBERS_MAX];
    assert_int_equal(rk_ring_walk(r, 12345, w, RK_RING_MEMBERS_MAX), RK_RING_MEMBERS_MAX);
    rk_ring_free(r);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_of),
        cmocka_unit_test(test_same_set_any_order_same_ring),
        cmocka_unit_test(test_preference_lists),
        cmocka_unit_test(test_matches_reference_model),
        cmocka_unit_test(test_token_collision_tie_break),
        cmocka_unit_test(test_balance),
        cmocka_unit_test(test_movement_on_join),
        cmocka_unit_test(test_digest_layout_and_pinned),
        cmocka_unit_test(test_walk),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_largest_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

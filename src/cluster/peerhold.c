/* Other members' holdings and placement digests (peerhold.h). A linear
 * table: at most RK_MEMBERS_MAX entries, looked up once per gossip
 * message and once per member when a view is built. */
#include "cluster/peerhold.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/le.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct entry {
    char id[RK_MEMBER_ID_MAX + 1];
    uint64_t place;
    bool known; /* h holds what the member last sent */
    struct rk_holdings h;
};

struct rk_peerhold {
    uint32_t parts;
    struct entry *e;
    size_t n, cap;
    struct rk_holdings tmp;
};

int rk_peerhold_create(struct rk_peerhold **out, uint32_t parts)
{
    struct rk_peerhold *ph = calloc(1, sizeof(*ph));
    if (!ph || rk_holdings_init(&ph->tmp, parts) < 0) {
        free(ph);
        return -ENOMEM;
    }
    ph->parts = parts;
    *out = ph;
    return 0;
}

void rk_peerhold_free(struct rk_peerhold *ph)
{
    if (!ph)
        return;
    for (size_t i = 0; i < ph->n; i++)
        rk_holdings_fini(&ph->e[i].h);
    rk_holdings_fini(&ph->tmp);
    free(ph->e);
    free(ph);
}

static struct entry *find(const struct rk_peerhold *ph, const char *id)
{
    for (size_t i = 0; i < ph->n; i++)
        if (strcmp(ph->e[i].id, id) == 0)
            return &ph->e[i];
    return NULL;
}

static struct entry *add(struct rk_peerhold *ph, const char *id)
{
    if (ph->n == ph->cap) {
        size_t cap = ph->cap ? ph->cap * 2 : 16;
        struct entry *ne = realloc(ph->e, cap * sizeof(*ne));
        if (!ne)
            return NULL;
        ph->e = ne, ph->cap = cap;
    }
    struct entry *e = &ph->e[ph->n];
    memset(e, 0, sizeof(*e));
    if (rk_holdings_init(&e->h, ph->parts) < 0)
        return NULL;
    snprintf(e->id, sizeof(e->id), "%s", id);
    ph->n++;
    return e;
}

int rk_peerhold_take(struct rk_peerhold *ph, const char *id, uint64_t place, const uint8_t *hold,
                     size_t len, bool *changed)
{
    *changed = false;
    if (hold && rk_holdings_decode(&ph->tmp, hold, len) < 0)
        return RK_EMALFORMED;
    struct entry *e = find(ph, id);
    if (!e && !(e = add(ph, id)))
        return -ENOMEM;
    if (e->place != place)
        *changed = true;
    e->place = place;
    if (hold && (!e->known || e->h.version != ph->tmp.version)) {
        rk_holdings_copy(&e->h, &ph->tmp);
        e->known = true;
        *changed = true;
    }
    return 0;
}

const struct rk_holdings *rk_peerhold_get(const struct rk_peerhold *ph, const char *id)
{
    const struct entry *e = find(ph, id);
    return e && e->known ? &e->h : NULL;
}

void rk_peerhold_prune(struct rk_peerhold *ph, const struct rk_members *t)
{
    for (size_t i = 0; i < ph->n;) {
        if (rk_members_find(t, ph->e[i].id)) {
            i++;
            continue;
        }
        rk_holdings_fini(&ph->e[i].h);
        ph->e[i] = ph->e[--ph->n];
    }
}

uint64_t rk_place_digest(const struct rk_members *t)
{
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < t->n; i++) {
        const struct rk_member *m = &t->m[i];
        if (m->state == RK_MEMBER_LEFT)
            continue;
        uint8_t leaving = m->state == RK_MEMBER_LEAVING;
        h = XXH3_64bits_withSeed(m->id, strlen(m->id), h);
        h = XXH3_64bits_withSeed(&leaving, 1, h);
    }
    return h;
}

bool rk_peerhold_agreed(const struct rk_peerhold *ph, const struct rk_members *t, uint64_t place,
                        char *who, size_t len)
{
    for (size_t i = 0; i < t->n; i++) {
        const struct rk_member *m = &t->m[i];
        if (i == t->self || (m->state != RK_MEMBER_ALIVE && m->state != RK_MEMBER_SUSPECT &&
                             m->state != RK_MEMBER_LEAVING))
            continue;
        const struct entry *e = find(ph, m->id);
        if (!e || e->place != place) {
            snprintf(who, len, "%s", m->id);
            return false;
        }
    }
    return true;
}

/* File: magic u32, count u32, then per entry: id_len u8, id, the holdings
 * wire encoding; then XXH3 of all before. */
#define PEERS_MAGIC 0x31525050u /* "PPR1" */

int rk_peerhold_save(const struct rk_peerhold *ph, const char *dir)
{
    size_t wl = rk_holdings_wire_len(ph->parts), cap = 16, n = 0;
    for (size_t i = 0; i < ph->n; i++)
        cap += ph->e[i].known ? 1 + strlen(ph->e[i].id) + wl : 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    size_t o = 8;
    for (size_t i = 0; i < ph->n; i++) {
        const struct entry *e = &ph->e[i];
        if (!e->known)
            continue;
        size_t il = strlen(e->id);
        buf[o] = (uint8_t)il;
        memcpy(buf + o + 1, e->id, il);
        rk_holdings_encode(&e->h, buf + o + 1 + il);
        o += 1 + il + wl;
        n++;
    }
    rk_le_put32(buf, PEERS_MAGIC);
    rk_le_put32(buf + 4, (uint32_t)n);
    rk_le_put64(buf + o, XXH3_64bits(buf, o));
    int rc = rk_fs_write_file(dir, RK_PEERHOLD_FILE, buf, o + 8);
    free(buf);
    return rc;
}

/* The entries of a file read into buf (len bytes, checksum checked): each
 * id (1..RK_MEMBER_ID_MAX bytes, no NUL, as save writes it) and holdings
 * of our partition count, and nothing after the last. Only checked when
 * take is false; taken when true, so a file is taken whole or not at all.
 * 0, RK_ECORRUPT or -ENOMEM. */
static int load_entries(struct rk_peerhold *ph, const uint8_t *buf, size_t len, bool take)
{
    size_t wl = rk_holdings_wire_len(ph->parts), o = 8, end = len - 8;
    uint32_t n = rk_le_get32(buf + 4);
    for (uint32_t k = 0; k < n; k++) {
        size_t il = o < end ? buf[o] : 0;
        if (il == 0 || il > RK_MEMBER_ID_MAX || end - o < 1 + il + wl || memchr(buf + o + 1, 0, il))
            return RK_ECORRUPT;
        const uint8_t *hold = buf + o + 1 + il;
        int rc;
        if (take) {
            char id[RK_MEMBER_ID_MAX + 1];
            bool changed;
            memcpy(id, buf + o + 1, il);
            id[il] = '\0';
            rc = rk_peerhold_take(ph, id, 0, hold, wl, &changed);
        } else {
            rc = rk_holdings_decode(&ph->tmp, hold, wl);
        }
        if (rc < 0)
            return rc == RK_EMALFORMED ? RK_ECORRUPT : rc;
        o += 1 + il + wl;
    }
    return o == end ? 0 : RK_ECORRUPT;
}

int rk_peerhold_load(struct rk_peerhold *ph, const char *dir)
{
    char path[RK_PATH_MAX];
    size_t wl = rk_holdings_wire_len(ph->parts), cap = 16 + RK_MEMBERS_MAX * (64 + wl), len;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    int rc = rk_fs_path(path, dir, RK_PEERHOLD_FILE);
    if (rc == 0)
        rc = rk_fs_read_file(path, buf, cap, &len);
    if (rc == -ENOENT)
        rc = RK_ENOTFOUND;
    else if (rc == 0 && (len < 16 || rk_le_get32(buf) != PEERS_MAGIC ||
                         rk_le_get64(buf + len - 8) != XXH3_64bits(buf, len - 8)))
        rc = RK_ECORRUPT;
    if (rc == 0)
        rc = load_entries(ph, buf, len, false);
    if (rc == 0)
        rc = load_entries(ph, buf, len, true);
    free(buf);
    return rc;
}

/* Fuzz target for a data dir's stamp files, read at every start by
 * rk_node_open (server/node.h): NODE_ID (the node's id) and LAYOUT (the
 * workers and partitions the data was laid out for). The first input byte
 * is a mode: bit 0 writes NODE_ID, bit 1 writes LAYOUT, bit 2 sets node.id
 * in the config; the rest is NODE_ID's bytes, a NUL, then LAYOUT's.
 *
 * Properties: no crash, leak or out-of-bounds read; a refusal is one
 * non-empty line and leaves no lock held; a start that succeeds holds the
 * lock, names a valid id that the NODE_ID file begins with (or the
 * configured one when there was none), with a LAYOUT that says what this
 * start wants, and a second start over what the first left finds the
 * same id. */
#include "fuzz.h"
#include "server/node.h"
#include "util/ident.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WORKERS 2
#define WANT    "workers=2 partitions=256"

static const char *data_dir(void)
{
    static char d[600];
    snprintf(d, sizeof(d), "%s/data", rk_fuzz_dir());
    return d;
}

static void put(const char *name, const uint8_t *b, size_t n)
{
    char rel[64];
    snprintf(rel, sizeof(rel), "data/%s", name);
    rk_fuzz_put_file(rel, b, n);
}

/* Opens the data dir: rk_node_open's code, with its properties checked. */
static int open_dir(const struct rk_config *c, char *id, size_t idlen)
{
    char err[512] = "";
    int fd = -1;
    int rc = rk_node_open(c, WORKERS, id, idlen, &fd, err, sizeof(err));
    if (rc < 0) {
        CHECK(err[0] != '\0' && strchr(err, '\n') == NULL && fd == -1);
        return rc;
    }
    CHECK(rc == 0 && fd >= 0 && rk_ident_valid(id, strlen(id), NULL));
    close(fd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    const uint8_t *ids = data + 1, *nul = memchr(ids, 0, size - 1);
    size_t idn = nul ? (size_t)(nul - ids) : size - 1;
    const uint8_t *lay = nul ? nul + 1 : data + size;
    size_t layn = (size_t)(data + size - lay);
    rk_fuzz_clear();
    CHECK(mkdir(data_dir(), 0700) == 0);
    if (mode & 1)
        put("NODE_ID", ids, idn);
    if (mode & 2)
        put("LAYOUT", lay, layn);
    static struct rk_config c;
    rk_config_defaults(&c);
    snprintf(c.data_dir, sizeof(c.data_dir), "%s", data_dir());
    if (mode & 4)
        snprintf(c.node_id, sizeof(c.node_id), "node-1");
    char id[128], again[128];
    if (open_dir(&c, id, sizeof(id)) < 0)
        return 0;
    if (mode & 1)
        CHECK(strlen(id) <= idn && memcmp(id, ids, strlen(id)) == 0);
    else if (mode & 4)
        CHECK(strcmp(id, "node-1") == 0);
    size_t n;
    uint8_t *layout = rk_fuzz_get_file("data/LAYOUT", &n);
    CHECK(layout != NULL && n >= strlen(WANT) && memcmp(layout, WANT, strlen(WANT)) == 0);
    free(layout);
    CHECK(open_dir(&c, again, sizeof(again)) == 0 && strcmp(id, again) == 0);
    return 0;
}

/* Both files as a first start writes them, with node.id set. */
uint8_t *rk_fuzz_seed(size_t *len)
{
    static const char text[] = "\x07node-1\n\0" WANT "\n";
    uint8_t *b = malloc(sizeof(text) - 1);
    if (b) {
        memcpy(b, text, sizeof(text) - 1);
        *len = sizeof(text) - 1;
    }
    return b;
}

/* The seed; a first start (no files); an id without a newline and no
 * node.id; a layout written for other settings. */
void rk_fuzz_corpus(rk_fuzz_put_fn *put_file)
{
    static const struct {
        const char *name, *text;
        size_t len;
    } c[] = {
#define ENTRY(n, t) {n, t, sizeof(t) - 1}
        ENTRY("both-stamped", "\x07node-1\n\0" WANT "\n"),
        ENTRY("first-start", "\x04"),
        ENTRY("id-no-newline", "\x03node-7\0" WANT),
        ENTRY("other-layout", "\x07node-1\n\0workers=4 partitions=1024\n"),
#undef ENTRY
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        put_file(c[i].name, (const uint8_t *)c[i].text, c[i].len);
}

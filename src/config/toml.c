/* TOML reader (contract in toml.h). One pass of recursive descent over the
 * bytes. Values live in an arena owned by the document, so freeing it, or
 * giving up at the first error, is one walk over a few chunks. Duplicate
 * keys are found through one hash table over (parent, key), which keeps the
 * parse linear in the input however many keys a table has. */
#include "config/toml.h"
#include "util/err.h"
#include "util/grow.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Arrays and inline tables recurse once per level: bound it so hostile
 * input cannot pick our stack depth. Configs nest two levels at most. */
#define MAX_DEPTH 64
/* Parts of one dotted key or header; the parts live on the stack. */
#define MAX_KEY_PARTS 32
/* Arena chunk size: a typical config fits in one or two chunks. */
#define CHUNK_SIZE 16384

/* How a table came to exist decides what may extend it later (TOML 1.0):
 * a [header] may complete an implicit table but never repeat, dotted keys
 * may only extend tables that dotted keys created, an inline table is
 * closed for good at its '}'. */
enum {
    T_HEADER = 1,   /* defined by its own [header] */
    T_IMPLICIT = 2, /* created as a prefix of a header: [a] by [a.b] */
    T_DOTTED = 4,   /* created by a dotted key: a by a.b = 1 */
    T_INLINE = 8,   /* an inline table { ... } */
    T_SEALED = 16,  /* an inline table after its '}' */
};

struct node {
    struct rk_toml_value v; /* first member: a value pointer is a node pointer */
    struct node *last;      /* last child, to append in document order */
    unsigned flags;
};

struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct rk_toml_doc {
    struct chunk *chunks;
    struct node root;
};

struct keypart {
    const char *s; /* arena copy, NUL-terminated */
    size_t len;
    size_t off; /* where it is written */
    uint32_t line, col;
};

struct parser {
    const char *name;
    const unsigned char *s;
    size_t n, pos;
    size_t start;   /* 3 after a BOM, else 0 */
    uint32_t line;  /* line of pos */
    size_t bol;     /* offset where that line begins */
    size_t col_bol; /* column cache: on the line beginning at col_bol, */
    size_t col_off; /* the character at col_off */
    uint32_t col;   /* is in column col + 1 */
    struct rk_toml_doc *doc;
    struct node **ht; /* keyed nodes by (parent, key) */
    size_t ht_cap, ht_used;
    char *tmp; /* scratch: a string's bytes, a number's digits */
    size_t tmp_len, tmp_cap;
    char *err;
    size_t errlen;
    int depth;
};

/* ---- memory ---- */

static void *arena_alloc(struct rk_toml_doc *d, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct chunk *c = d->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = d->chunks;
        d->chunks = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void rk_toml_free(rk_toml_doc *doc)
{
    if (!doc)
        return;
    struct chunk *c = doc->chunks;
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    free(doc);
}

/* ---- positions and errors ---- */

static uint32_t count_cols(const unsigned char *s, size_t from, size_t to)
{
    uint32_t c = 0;
    for (size_t i = from; i < to; i++)
        c += (s[i] & 0xC0) != 0x80; /* continuation bytes share a column */
    return c;
}

/* Line and column of offset off. Offsets on the current line (all but some
 * error positions) use a cache, so recording every value's position stays
 * linear even on one very long line. */
static void where(struct parser *p, size_t off, uint32_t *line, uint32_t *col)
{
    if (off < p->bol) {
        uint32_t l = 1;
        size_t b = p->start;
        for (size_t i = p->start; i < off; i++)
            if (p->s[i] == '\n')
                l++, b = i + 1;
        *line = l;
        *col = 1 + count_cols(p->s, b, off);
        return;
    }
    if (p->col_bol != p->bol || off < p->col_off) {
        p->col_bol = p->col_off = p->bol;
        p->col = 0;
    }
    p->col += count_cols(p->s, p->col_off, off);
    p->col_off = off;
    *line = p->line;
    *col = p->col + 1;
}

__attribute__((format(printf, 3, 4))) static int fail(struct parser *p, size_t off, const char *fmt,
                                                      ...)
{
    if (!p->errlen)
        return RK_EMALFORMED;
    uint32_t line, col;
    where(p, off, &line, &col);
    int n = snprintf(p->err, p->errlen, "%s:%u:%u: ", p->name, line, col);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return RK_EMALFORMED;
}

static int oom(struct parser *p)
{
    if (p->errlen)
        snprintf(p->err, p->errlen, "%s: out of memory", p->name);
    return -ENOMEM;
}

/* Decode one UTF-8 character; its length, or 0 if the bytes are not valid
 * UTF-8 (overlong forms and surrogates included). */
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned c = s[0];
    int k;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        k = 2, v = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        k = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4)
        k = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n < (size_t)k)
        return 0;
    for (int i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return k;
}

static int utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The character at off, for messages: 'x', end of line, U+0007, byte 0xFF. */
static const char *describe(const struct parser *p, size_t off, char *buf, size_t size)
{
    if (off >= p->n)
        return "end of file";
    unsigned c = p->s[off];
    if (c == '\n' || (c == '\r' && off + 1 < p->n && p->s[off + 1] == '\n'))
        return "end of line";
    uint32_t cp;
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, size, "'%c'", c);
    else if (utf8_decode(p->s + off, p->n - off, &cp))
        snprintf(buf, size, "U+%04X", (unsigned)cp);
    else
        snprintf(buf, size, "byte 0x%02X", c);
    return buf;
}

/* ---- characters ---- */

static int peek(const struct parser *p)
{
    return p->pos < p->n ? p->s[p->pos] : -1;
}

static bool starts(const struct parser *p, const char *lit)
{
    size_t k = strlen(lit);
    return p->n - p->pos >= k && memcmp(p->s + p->pos, lit, k) == 0;
}

static bool is_bare(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* lit at pos, not followed by a bare-key character ("true", not "trueish"). */
static bool word_is(const struct parser *p, const char *lit)
{
    size_t k = strlen(lit);
    return starts(p, lit) && (p->pos + k >= p->n || !is_bare(p->s[p->pos + k]));
}

static bool is_newline(const struct parser *p)
{
    int c = peek(p);
    return c == '\n' || (c == '\r' && p->pos + 1 < p->n && p->s[p->pos + 1] == '\n');
}

/* Consume "\n" or "\r\n" (is_newline must hold). Every newline consumed
 * goes through here, which keeps line numbers right. */
static void eat_newline(struct parser *p)
{
    if (p->s[p->pos] == '\r')
        p->pos++;
    p->pos++;
    p->line++;
    p->bol = p->pos;
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t'))
        p->pos++;
}

/* Validate the character at pos inside a string or comment: its length, or
 * an error for invalid UTF-8 and control characters (TOML allows only tab;
 * in basic strings the others must be escaped). */
static int text_char(struct parser *p, const char *in)
{
    uint32_t cp;
    int k = utf8_decode(p->s + p->pos, p->n - p->pos, &cp);
    if (!k)
        return fail(p, p->pos, "invalid UTF-8 (byte 0x%02X) in %s", p->s[p->pos], in);
    if ((cp < 0x20 && cp != '\t') || cp == 0x7F)
        return fail(p, p->pos, "control character U+%04X is not allowed in %s%s", (unsigned)cp, in,
                    strcmp(in, "a string") ? "" : " (write it as an escape, e.g. \\n or \\u0007)");
    return k;
}

static int tmp_put(struct parser *p, const void *b, size_t n)
{
    if (rk_grow(&p->tmp, &p->tmp_cap, p->tmp_len + n + 1, 1, 256, 0) < 0) /* + NUL */
        return oom(p);
    memcpy(p->tmp + p->tmp_len, b, n);
    p->tmp_len += n;
    p->tmp[p->tmp_len] = '\0';
    return 0;
}

/* Copy one validated character of string text to tmp. */
static int put_char(struct parser *p)
{
    int k = text_char(p, "a string");
    if (k < 0)
        return k;
    int rc = tmp_put(p, p->s + p->pos, (size_t)k);
    p->pos += (size_t)k;
    return rc;
}

static int skip_comment(struct parser *p)
{
    p->pos++; /* '#' */
    while (p->pos < p->n && !is_newline(p)) {
        int k = text_char(p, "a comment");
        if (k < 0)
            return k;
        p->pos += (size_t)k;
    }
    return 0;
}

/* Whitespace, comments and newlines, as allowed between array elements. */
static int skip_blank(struct parser *p)
{
    for (;;) {
        skip_ws(p);
        if (peek(p) == '#') {
            int rc = skip_comment(p);
            if (rc)
                return rc;
        }
        if (!is_newline(p))
            return 0;
        eat_newline(p);
    }
}

/* After a value or header only a comment may follow on its line. */
static int end_of_line(struct parser *p, const char *after)
{
    skip_ws(p);
    if (peek(p) == '#') {
        int rc = skip_comment(p);
        if (rc)
            return rc;
    }
    if (p->pos >= p->n)
        return 0;
    if (is_newline(p)) {
        eat_newline(p);
        return 0;
    }
    char b[24];
    return fail(p, p->pos, "expected end of line after %s, found %s", after,
                describe(p, p->pos, b, sizeof(b)));
}

/* ---- strings ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int unicode_escape(struct parser *p, int digits)
{
    size_t at = p->pos;
    char u = (char)p->s[at + 1];
    uint32_t cp = 0;
    for (int i = 0; i < digits; i++) {
        size_t o = at + 2 + (size_t)i;
        int h = o < p->n ? hexval(p->s[o]) : -1;
        if (h < 0)
            return fail(p, at, "\\%c needs %d hex digits, as in \\%c%s", u, digits, u,
                        digits == 4 ? "00E9" : "0001F600");
        cp = cp << 4 | (uint32_t)h;
    }
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return fail(p, at,
                    "\\%c%.*s is not a Unicode scalar value (surrogates and values past "
                    "10FFFF are not allowed)",
                    u, digits, (const char *)p->s + at + 2);
    p->pos += 2 + (size_t)digits;
    char out[4];
    return tmp_put(p, out, (size_t)utf8_encode(cp, out));
}

/* A backslash escape in a basic string (pos at the backslash). */
static int escape(struct parser *p)
{
    static const char from[] = "btnfr\"\\", to[] = "\b\t\n\f\r\"\\";
    size_t at = p->pos;
    int e = at + 1 < p->n ? p->s[at + 1] : -1;
    const char *m = e > 0 ? strchr(from, e) : NULL;
    if (m) {
        p->pos += 2;
        return tmp_put(p, &to[m - from], 1);
    }
    if (e == 'u' || e == 'U')
        return unicode_escape(p, e == 'u' ? 4 : 8);
    char b[24], d[24];
    if (e >= 0x21 && e < 0x7f)
        snprintf(b, sizeof(b), "\\%c", e);
    else
        snprintf(b, sizeof(b), "\\ followed by %s", describe(p, at + 1, d, sizeof(d)));
    return fail(p, at,
                "invalid escape %s (valid: \\\" \\\\ \\b \\f \\n \\r \\t \\uXXXX "
                "\\UXXXXXXXX)",
                b);
}

static int basic_string(struct parser *p)
{
    size_t open = p->pos++;
    p->tmp_len = 0;
    for (;;) {
        if (p->pos >= p->n || is_newline(p))
            return fail(p, open, "unterminated string: no closing \" on its line");
        int c = p->s[p->pos], rc;
        if (c == '"') {
            p->pos++;
            return 0;
        }
        rc = c == '\\' ? escape(p) : put_char(p);
        if (rc < 0)
            return rc;
    }
}

static int literal_string(struct parser *p)
{
    size_t open = p->pos++;
    p->tmp_len = 0;
    for (;;) {
        if (p->pos >= p->n || is_newline(p))
            return fail(p, open, "unterminated string: no closing ' on its line");
        if (p->s[p->pos] == '\'') {
            p->pos++;
            return 0;
        }
        int rc = put_char(p);
        if (rc < 0)
            return rc;
    }
}

/* A run of quote characters q inside a multi-line string: up to two are
 * text; three close the string, and up to two more just before them are
 * text too (""""" ends in ""). Returns 1 when closed. */
static int ml_quotes(struct parser *p, char q)
{
    size_t k = 0;
    while (p->pos + k < p->n && p->s[p->pos + k] == (unsigned char)q)
        k++;
    if (k > 5)
        return fail(p, p->pos,
                    "three or more %c in a row inside a multi-line string must be "
                    "escaped or split",
                    q);
    size_t text = k < 3 ? k : k - 3;
    char qq[2] = {q, q};
    int rc = tmp_put(p, qq, text);
    p->pos += k;
    return rc < 0 ? rc : k >= 3;
}

/* A backslash ending a line in a multi-line basic string: it and all
 * whitespace and newlines after it vanish. Returns 1 if pos was one. */
static int line_ending_backslash(struct parser *p)
{
    size_t save = p->pos;
    p->pos++;
    skip_ws(p);
    if (!is_newline(p)) {
        p->pos = save;
        return 0;
    }
    while (is_newline(p)) {
        eat_newline(p);
        skip_ws(p);
    }
    return 1;
}

/* Multi-line basic (q = '"', escapes) or literal (q = '\'') string. */
static int ml_string(struct parser *p, char q)
{
    size_t open = p->pos;
    p->pos += 3;
    p->tmp_len = 0;
    if (is_newline(p)) /* a newline right after the opening quotes is dropped */
        eat_newline(p);
    for (;;) {
        if (p->pos >= p->n)
            return fail(p, open, "unterminated multi-line string: no closing %c%c%c", q, q, q);
        int c = p->s[p->pos], rc;
        if (c == q) {
            rc = ml_quotes(p, q);
            if (rc == 1)
                return 0;
        } else if (q == '"' && c == '\\') {
            rc = line_ending_backslash(p) ? 0 : escape(p);
        } else if (is_newline(p)) {
            eat_newline(p);
            rc = tmp_put(p, "\n", 1);
        } else {
            rc = put_char(p);
        }
        if (rc < 0)
            return rc;
    }
}

static char *arena_str(struct parser *p, const char *s, size_t n)
{
    char *d = arena_alloc(p->doc, n + 1);
    if (!d) {
        oom(p);
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* ---- the tree ---- */

static uint64_t key_hash(const struct node *parent, const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)(uintptr_t)parent; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)k[i];
        h *= 0x100000001b3ull;
    }
    return h ^ h >> 32;
}

static struct node *ht_find(const struct parser *p, const struct node *parent, const char *k,
                            size_t n)
{
    if (!p->ht_cap)
        return NULL;
    size_t mask = p->ht_cap - 1;
    for (size_t i = key_hash(parent, k, n) & mask;; i = (i + 1) & mask) {
        struct node *e = p->ht[i];
        if (!e)
            return NULL;
        if (e->v.parent == &parent->v && e->v.key_len == n && memcmp(e->v.key, k, n) == 0)
            return e;
    }
}

static void ht_insert(struct node **ht, size_t cap, struct node *e)
{
    size_t i = key_hash((const struct node *)e->v.parent, e->v.key, e->v.key_len) & (cap - 1);
    while (ht[i])
        i = (i + 1) & (cap - 1);
    ht[i] = e;
}

static int ht_add(struct parser *p, struct node *e)
{
    if ((p->ht_used + 1) * 2 > p->ht_cap) { /* at most half full: short probes */
        size_t cap = p->ht_cap ? p->ht_cap * 2 : 64;
        struct node **ht = calloc(cap, sizeof(*ht));
        if (!ht)
            return oom(p);
        for (size_t i = 0; i < p->ht_cap; i++)
            if (p->ht[i])
                ht_insert(ht, cap, p->ht[i]);
        free(p->ht);
        p->ht = ht;
        p->ht_cap = cap;
    }
    ht_insert(p->ht, p->ht_cap, e);
    p->ht_used++;
    return 0;
}

/* A new child of parent (keyed by k, or an array element when k is NULL),
 * appended in document order, its value starting at (line, col). */
static struct node *add_child(struct parser *p, struct node *parent, const struct keypart *k,
                              uint32_t line, uint32_t col)
{
    struct node *e = arena_alloc(p->doc, sizeof(*e));
    if (!e) {
        oom(p);
        return NULL;
    }
    e->v.line = line;
    e->v.col = col;
    e->v.parent = &parent->v;
    if (k) {
        e->v.key = k->s;
        e->v.key_len = k->len;
        e->v.key_line = k->line;
        e->v.key_col = k->col;
        if (ht_add(p, e))
            return NULL;
    }
    if (parent->last)
        parent->last->v.next = &e->v;
    else
        parent->v.first = &e->v;
    parent->last = e;
    parent->v.count++;
    return e;
}

static const char *a_type(enum rk_toml_type t)
{
    static const char *const s[] = {"a table",    "an array", "a string",
                                    "an integer", "a float",  "a boolean"};
    return s[t];
}

/* ---- keys ---- */

static int key_part(struct parser *p, struct keypart *kp)
{
    int c = peek(p), rc = 0;
    if (c == '"' || c == '\'') {
        if (starts(p, c == '"' ? "\"\"\"" : "'''"))
            return fail(p, p->pos, "a key cannot be a multi-line string");
        rc = c == '"' ? basic_string(p) : literal_string(p);
    } else {
        size_t start = p->pos;
        while (p->pos < p->n && is_bare(p->s[p->pos]))
            p->pos++;
        char b[24];
        if (p->pos == start)
            return fail(p, start, "expected a key, found %s", describe(p, start, b, sizeof(b)));
        p->tmp_len = 0;
        rc = tmp_put(p, p->s + start, p->pos - start);
    }
    if (rc)
        return rc;
    kp->len = p->tmp_len;
    kp->s = arena_str(p, p->tmp ? p->tmp : "", p->tmp_len);
    return kp->s ? 0 : -ENOMEM;
}

/* A key, dotted or not, and the whitespace after it. */
static int parse_key(struct parser *p, struct keypart *k, int *nk)
{
    int n = 0;
    for (;;) {
        if (n == MAX_KEY_PARTS)
            return fail(p, p->pos, "a key may have at most %d dotted parts", MAX_KEY_PARTS);
        struct keypart *kp = &k[n++];
        kp->off = p->pos;
        where(p, p->pos, &kp->line, &kp->col);
        int rc = key_part(p, kp);
        if (rc)
            return rc;
        skip_ws(p);
        if (peek(p) != '.')
            break;
        p->pos++;
        skip_ws(p);
    }
    *nk = n;
    return 0;
}

/* 0 if table c may be entered by a key of kind how, else the error. */
static int cannot_enter(struct parser *p, const struct node *c, const struct keypart *k,
                        unsigned how)
{
    char path[256];
    bool dotted_ok = how != T_DOTTED || (c->flags & T_DOTTED);
    if (c->v.type == RK_TOML_TABLE && !(c->flags & T_SEALED) && dotted_ok)
        return 0;
    rk_toml_path(&c->v, path, sizeof(path));
    if (c->v.type != RK_TOML_TABLE)
        return fail(p, k->off, "key \"%s\" is already %s (line %u), not a table", path,
                    a_type(c->v.type), c->v.line);
    if (c->flags & T_SEALED)
        return fail(p, k->off, "key \"%s\" is an inline table (line %u) and cannot be extended",
                    path, c->v.line);
    return fail(p, k->off, "table [%s] is defined at line %u; a dotted key cannot add to it", path,
                c->v.line);
}

/* Step from table *t into its sub-table k, creating it (flagged how) when
 * absent. how is T_DOTTED for dotted keys, T_IMPLICIT for header prefixes. */
static int descend(struct parser *p, struct node **t, const struct keypart *k, unsigned how)
{
    struct node *c = ht_find(p, *t, k->s, k->len);
    if (c) {
        int rc = cannot_enter(p, c, k, how);
        if (rc)
            return rc;
    } else {
        if (!(c = add_child(p, *t, k, k->line, k->col)))
            return -ENOMEM;
        c->v.type = RK_TOML_TABLE;
        c->flags = how;
    }
    *t = c;
    return 0;
}

/* ---- values ---- */

static int parse_value(struct parser *p, struct node *v);

/* What follows '=' is not a value. A bare word gets a suggestion, since a string
 * without quotes is the likeliest mistake in a config (level = info). */
static int no_value(struct parser *p, size_t at)
{
    size_t e = at;
    while (e < p->n && is_bare(p->s[e]))
        e++;
    if (e > at && e - at <= 64)
        return fail(p, at, "expected a value, found %.*s (strings need quotes: \"%.*s\")",
                    (int)(e - at), (const char *)p->s + at, (int)(e - at), (const char *)p->s + at);
    char b[24];
    return fail(p, at, "expected a value, found %s", describe(p, at, b, sizeof(b)));
}

/* Digits of base with single underscores between them, appended to tmp;
 * their count in *count. */
static int digit_run(struct parser *p, int base, size_t *count)
{
    size_t n = 0;
    for (;;) {
        int c = peek(p), d = c < 0 ? -1 : hexval(c);
        if (d >= 0 && d < base) {
            char ch = (char)c;
            int rc = tmp_put(p, &ch, 1);
            if (rc)
                return rc;
            n++;
            p->pos++;
            continue;
        }
        if (c != '_')
            break;
        int next = p->pos + 1 < p->n ? hexval(p->s[p->pos + 1]) : -1;
        if (n == 0 || next < 0 || next >= base)
            return fail(p, p->pos, "an underscore in a number must stand between two digits");
        p->pos++;
    }
    *count = n;
    return 0;
}

static int overflow(struct parser *p, size_t start)
{
    size_t len = p->pos - start;
    return fail(p, start,
                "integer %.*s%s does not fit in 64 bits "
                "(-9223372036854775808..9223372036854775807)",
                (int)(len > 40 ? 40 : len), (const char *)p->s + start, len > 40 ? "..." : "");
}

/* 0x, 0o, 0b integers (pos at the 0); never negative in TOML. */
static int radix_int(struct parser *p, struct node *v)
{
    size_t start = p->pos;
    char r = (char)p->s[p->pos + 1];
    int base = r == 'x' ? 16 : r == 'o' ? 8 : 2;
    size_t n;
    p->pos += 2;
    p->tmp_len = 0;
    int rc = digit_run(p, base, &n);
    if (rc)
        return rc;
    if (n == 0)
        return fail(p, p->pos, "expected %s digits after 0%c",
                    base == 16  ? "hex"
                    : base == 8 ? "octal"
                                : "binary",
                    r);
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t d = (uint64_t)hexval(p->tmp[i]);
        if (x > ((uint64_t)INT64_MAX - d) / (uint64_t)base)
            return overflow(p, start);
        x = x * (uint64_t)base + d;
    }
    v->v.type = RK_TOML_INT;
    v->v.i = (int64_t)x;
    return 0;
}

static int int_value(struct parser *p, struct node *v, size_t start, bool neg)
{
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, x = 0;
    for (const char *d = p->tmp + neg; *d; d++) {
        uint64_t k = (uint64_t)(*d - '0');
        if (x > (lim - k) / 10)
            return overflow(p, start);
        x = x * 10 + k;
    }
    v->v.type = RK_TOML_INT;
    v->v.i = !neg ? (int64_t)x : x == lim ? INT64_MIN : -(int64_t)x;
    return 0;
}

/* Fraction and exponent of a decimal float, appended to tmp. Sets *is_float
 * when there was either. */
static int float_tail(struct parser *p, bool *is_float)
{
    size_t n;
    int rc = 0;
    if (peek(p) == '.') {
        *is_float = true;
        p->pos++;
        if ((rc = tmp_put(p, ".", 1)) || (rc = digit_run(p, 10, &n)))
            return rc;
        if (n == 0)
            return fail(p, p->pos, "expected a digit after the decimal point");
    }
    if (peek(p) == 'e' || peek(p) == 'E') {
        *is_float = true;
        p->pos++;
        if ((rc = tmp_put(p, "e", 1)))
            return rc;
        if ((peek(p) == '+' || peek(p) == '-') && (rc = tmp_put(p, p->s + p->pos++, 1)))
            return rc;
        if ((rc = digit_run(p, 10, &n)))
            return rc;
        if (n == 0)
            return fail(p, p->pos, "expected a digit in the exponent");
    }
    return 0;
}

/* A decimal integer or float; pos after the sign, start at the sign. */
static int decimal(struct parser *p, struct node *v, size_t start, bool neg)
{
    size_t at = p->pos, n;
    p->tmp_len = 0;
    int rc = neg ? tmp_put(p, "-", 1) : 0;
    if (rc || (rc = digit_run(p, 10, &n)))
        return rc;
    if (n == 0)
        return at == start ? no_value(p, start) : fail(p, start, "expected a digit after the sign");
    int c = peek(p);
    if (at == start && ((c == '-' && n == 4) || (c == ':' && n == 2)))
        return fail(p, start, "dates and times are not supported");
    if (n > 1 && p->s[at] == '0')
        return fail(p, at, "leading zeros are not allowed in a number");
    bool is_float = false;
    if ((rc = float_tail(p, &is_float)))
        return rc;
    if (!is_float)
        return int_value(p, v, start, neg);
    v->v.type = RK_TOML_FLOAT;
    v->v.f = strtod(p->tmp, NULL); /* the daemon never leaves the "C" locale */
    if (isinf(v->v.f))
        return fail(p, start, "float %.*s is out of range",
                    (int)(p->pos - start > 40 ? 40 : p->pos - start), (const char *)p->s + start);
    return 0;
}

static int parse_number(struct parser *p, struct node *v)
{
    size_t start = p->pos;
    int c = peek(p);
    bool neg = c == '-';
    if (c == '+' || c == '-')
        p->pos++;
    if (word_is(p, "inf") || word_is(p, "nan")) {
        bool inf = p->s[p->pos] == 'i';
        v->v.type = RK_TOML_FLOAT;
        v->v.f = inf ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
        p->pos += 3;
        return 0;
    }
    if (peek(p) == '0' && p->pos + 1 < p->n && p->s[p->pos + 1] &&
        strchr("xob", p->s[p->pos + 1])) {
        if (p->pos != start)
            return fail(p, start, "hex, octal and binary integers cannot have a sign");
        return radix_int(p, v);
    }
    return decimal(p, v, start, neg);
}

/* The tmp bytes as the string value of v. */
static int string_value(struct parser *p, struct node *v, int rc)
{
    if (rc)
        return rc;
    v->v.type = RK_TOML_STRING;
    v->v.len = p->tmp_len;
    v->v.str = arena_str(p, p->tmp ? p->tmp : "", p->tmp_len);
    return v->v.str ? 0 : -ENOMEM;
}

static int parse_array(struct parser *p, struct node *a)
{
    size_t open = p->pos++;
    char b[24];
    a->v.type = RK_TOML_ARRAY;
    if (++p->depth > MAX_DEPTH)
        return fail(p, open, "arrays and inline tables nested more than %d deep", MAX_DEPTH);
    for (;;) {
        int rc = skip_blank(p);
        if (rc)
            return rc;
        if (p->pos >= p->n)
            return fail(p, open, "unterminated array: no closing ]");
        if (p->s[p->pos] == ']')
            break;
        uint32_t line, col;
        where(p, p->pos, &line, &col);
        struct node *e = add_child(p, a, NULL, line, col);
        if (!e)
            return -ENOMEM;
        if ((rc = parse_value(p, e)) || (rc = skip_blank(p)))
            return rc;
        if (peek(p) == ']')
            break;
        if (p->pos >= p->n)
            return fail(p, open, "unterminated array: no closing ]");
        if (peek(p) != ',')
            return fail(p, p->pos, "expected , or ] after an array element, found %s",
                        describe(p, p->pos, b, sizeof(b)));
        p->pos++;
    }
    p->pos++;
    p->depth--;
    return 0;
}

static int keyval(struct parser *p, struct node *tbl);

/* { k = v, ... } on one line, no trailing comma (TOML 1.0). */
static int parse_inline(struct parser *p, struct node *t)
{
    size_t open = p->pos++;
    char b[24];
    t->v.type = RK_TOML_TABLE;
    t->flags = T_INLINE;
    if (++p->depth > MAX_DEPTH)
        return fail(p, open, "arrays and inline tables nested more than %d deep", MAX_DEPTH);
    skip_ws(p);
    while (peek(p) != '}') {
        if (p->pos >= p->n || is_newline(p))
            return fail(p, open, "unterminated inline table: no closing } on its line");
        int rc = keyval(p, t);
        if (rc)
            return rc;
        skip_ws(p);
        if (peek(p) == '}')
            break;
        if (p->pos >= p->n || is_newline(p))
            return fail(p, open, "unterminated inline table: no closing } on its line");
        if (peek(p) != ',')
            return fail(p, p->pos, "expected , or } in an inline table, found %s",
                        describe(p, p->pos, b, sizeof(b)));
        p->pos++;
        skip_ws(p);
        if (peek(p) == '}')
            return fail(p, p->pos, "an inline table cannot end with a comma");
    }
    p->pos++;
    t->flags |= T_SEALED;
    p->depth--;
    return 0;
}

static int parse_value(struct parser *p, struct node *v)
{
    int c = peek(p);
    if (c == '"')
        return string_value(p, v, starts(p, "\"\"\"") ? ml_string(p, '"') : basic_string(p));
    if (c == '\'')
        return string_value(p, v, starts(p, "'''") ? ml_string(p, '\'') : literal_string(p));
    if (c == '[')
        return parse_array(p, v);
    if (c == '{')
        return parse_inline(p, v);
    if (word_is(p, "true") || word_is(p, "false")) {
        v->v.type = RK_TOML_BOOL;
        v->v.b = c == 't';
        p->pos += v->v.b ? 4 : 5;
        return 0;
    }
    if (c == '+' || c == '-' || (c >= '0' && c <= '9') || word_is(p, "inf") || word_is(p, "nan")) {
        size_t start = p->pos;
        int rc = parse_number(p, v);
        if (rc == 0 && p->pos < p->n && is_bare(p->s[p->pos]))
            return no_value(p, start); /* 5m, 10s: an unquoted duration */
        return rc;
    }
    return no_value(p, p->pos);
}

/* ---- document ---- */

static int dup_key(struct parser *p, const struct node *old, const struct keypart *k)
{
    char path[256];
    rk_toml_path(&old->v, path, sizeof(path));
    if (old->v.type == RK_TOML_TABLE && !(old->flags & T_INLINE))
        return fail(p, k->off,
                    "key \"%s\" is already a table (line %u); it cannot be set to a value", path,
                    old->v.line);
    return fail(p, k->off, "duplicate key \"%s\" (first set at line %u)", path, old->v.key_line);
}

/* key = value, in table tbl (the current [table] or an inline table). */
static int keyval(struct parser *p, struct node *tbl)
{
    struct keypart k[MAX_KEY_PARTS];
    int nk, rc;
    char b[24];
    if ((rc = parse_key(p, k, &nk)))
        return rc;
    struct node *t = tbl;
    for (int i = 0; i < nk - 1; i++)
        if ((rc = descend(p, &t, &k[i], T_DOTTED)))
            return rc;
    struct keypart *last = &k[nk - 1];
    struct node *old = ht_find(p, t, last->s, last->len);
    if (old)
        return dup_key(p, old, last);
    if (peek(p) != '=')
        return fail(p, p->pos, "expected = after the key, found %s",
                    describe(p, p->pos, b, sizeof(b)));
    p->pos++;
    skip_ws(p);
    uint32_t line, col;
    where(p, p->pos, &line, &col);
    struct node *v = add_child(p, t, last, line, col);
    return v ? parse_value(p, v) : -ENOMEM;
}

/* The last part of a [header]: new, or an implicit table now defined. */
static int define_table(struct parser *p, struct node *t, const struct keypart *k, uint32_t line,
                        uint32_t col, struct node **out)
{
    struct node *c = ht_find(p, t, k->s, k->len);
    char path[256];
    if (!c) {
        if (!(c = add_child(p, t, k, line, col)))
            return -ENOMEM;
        c->v.type = RK_TOML_TABLE;
    } else {
        rk_toml_path(&c->v, path, sizeof(path));
        if (c->v.type != RK_TOML_TABLE)
            return fail(p, k->off, "key \"%s\" is already %s (line %u), not a table", path,
                        a_type(c->v.type), c->v.line);
        if (c->flags & T_HEADER)
            return fail(p, k->off, "table [%s] is defined twice (first at line %u)", path,
                        c->v.line);
        if (!(c->flags & T_IMPLICIT))
            return fail(p, k->off, "table [%s] is already defined at line %u by %s", path,
                        c->v.line, c->flags & T_INLINE ? "an inline table" : "dotted keys");
        c->v.line = line, c->v.col = col;
        c->v.key_line = k->line, c->v.key_col = k->col;
    }
    c->flags = T_HEADER;
    *out = c;
    return 0;
}

static int header(struct parser *p, struct node **cur)
{
    size_t open = p->pos++;
    uint32_t line, col;
    struct keypart k[MAX_KEY_PARTS];
    int nk, rc;
    char b[24];
    where(p, open, &line, &col);
    if (peek(p) == '[')
        return fail(p, open, "arrays of tables ([[...]]) are not supported");
    skip_ws(p);
    if ((rc = parse_key(p, k, &nk)))
        return rc;
    if (peek(p) != ']')
        return fail(p, p->pos, "expected ] to close the table header, found %s",
                    describe(p, p->pos, b, sizeof(b)));
    p->pos++;
    struct node *t = &p->doc->root;
    for (int i = 0; i < nk - 1; i++)
        if ((rc = descend(p, &t, &k[i], T_IMPLICIT)))
            return rc;
    return define_table(p, t, &k[nk - 1], line, col, cur);
}

static int parse_doc(struct parser *p)
{
    struct node *cur = &p->doc->root;
    while (p->pos < p->n) {
        skip_ws(p);
        int c = peek(p), rc;
        if (c == '[') {
            rc = header(p, &cur);
            rc = rc ? rc : end_of_line(p, "the table header");
        } else if (c == '#' || c < 0 || is_newline(p)) {
            rc = end_of_line(p, "a comment");
        } else {
            rc = keyval(p, cur);
            rc = rc ? rc : end_of_line(p, "the value");
        }
        if (rc)
            return rc;
    }
    return 0;
}

int rk_toml_parse(rk_toml_doc **out, const char *name, const char *buf, size_t len, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    struct parser p = {.name = name,
                       .s = (const unsigned char *)buf,
                       .n = len,
                       .line = 1,
                       .err = err,
                       .errlen = errlen};
    p.doc = calloc(1, sizeof(*p.doc));
    if (!p.doc)
        return oom(&p);
    p.doc->root.v.type = RK_TOML_TABLE;
    p.doc->root.v.line = p.doc->root.v.col = 1;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) /* a BOM some editors add */
        p.pos = p.bol = p.start = p.col_bol = p.col_off = 3;
    int rc = parse_doc(&p);
    free(p.ht);
    free(p.tmp);
    if (rc) {
        rk_toml_free(p.doc);
        return rc;
    }
    *out = p.doc;
    return 0;
}

/* Whole file into a malloc'd buffer; 0, -errno or RK_ETOOLARGE. */
static int read_all(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    int rc = b ? 0 : -ENOMEM;
    while (rc == 0) {
        if (n == cap && cap > RK_TOML_MAX_FILE) {
            rc = RK_ETOOLARGE;
            break;
        }
        if (n == cap && (rc = rk_grow(&b, &cap, n + 1, 1, cap, 0)) < 0)
            break;
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno != EINTR)
            rc = -errno;
        else if (r == 0)
            break;
        else if (r > 0)
            n += (size_t)r;
    }
    close(fd);
    if (rc == 0 && n > RK_TOML_MAX_FILE)
        rc = RK_ETOOLARGE;
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    *len = n;
    return 0;
}

int rk_toml_parse_file(rk_toml_doc **out, const char *path, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = read_all(path, &buf, &len);
    if (rc == RK_ETOOLARGE && errlen)
        snprintf(err, errlen, "%s: larger than %u MiB; is this a config file?", path,
                 RK_TOML_MAX_FILE >> 20);
    else if (rc && errlen)
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    if (rc)
        return rc;
    rc = rk_toml_parse(out, path, buf, len, err, errlen);
    free(buf);
    return rc;
}

/* ---- queries ---- */

const struct rk_toml_value *rk_toml_root(const rk_toml_doc *doc)
{
    return &doc->root.v;
}

static const struct rk_toml_value *get_n(const struct rk_toml_value *t, const char *key, size_t n)
{
    if (!t || t->type != RK_TOML_TABLE)
        return NULL;
    for (const struct rk_toml_value *c = t->first; c; c = c->next)
        if (c->key_len == n && memcmp(c->key, key, n) == 0)
            return c;
    return NULL;
}

const struct rk_toml_value *rk_toml_get(const struct rk_toml_value *t, const char *key)
{
    return get_n(t, key, strlen(key));
}

const struct rk_toml_value *rk_toml_lookup(const struct rk_toml_value *t, const char *path)
{
    for (;;) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        t = get_n(t, path, n);
        if (!t || !dot)
            return t;
        path = dot + 1;
    }
}

const char *rk_toml_type_name(enum rk_toml_type type)
{
    static const char *const s[] = {"table", "array", "string", "integer", "float", "boolean"};
    return (unsigned)type < 6 ? s[type] : "?";
}

/* ---- printing ---- */

/* The escaped form of the character at s (n bytes left) in piece; its
 * length. Bytes that are not UTF-8 print as U+FFFD. */
static size_t quote_piece(const unsigned char *s, size_t n, char piece[12], size_t *used)
{
    static const char from[] = "\"\\\b\t\n\f\r", to[] = "\"\\btnfr";
    uint32_t cp;
    int k = utf8_decode(s, n, &cp);
    *used = k ? (size_t)k : 1;
    if (!k) {
        memcpy(piece, "\\uFFFD", 6);
        return 6;
    }
    const char *m = s[0] ? memchr(from, s[0], sizeof(from) - 1) : NULL;
    if (m) {
        piece[0] = '\\';
        piece[1] = to[m - from];
        return 2;
    }
    if (cp < 0x20 || cp == 0x7F)
        return (size_t)snprintf(piece, 12, "\\u%04X", (unsigned)(cp & 0xFF));
    memcpy(piece, s, (size_t)k);
    return (size_t)k;
}

size_t rk_toml_quote(char *buf, size_t size, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    char piece[12];
    size_t total = 2, used, o = 0;
    for (size_t i = 0; i < len; i += used)
        total += quote_piece(u + i, len - i, piece, &used);
    if (!size)
        return total;
    bool cut = total > size - 1;
    /* Cut: keep room for the closing `..."` and the NUL. */
    size_t budget = !cut ? size - 1 : size > 5 ? size - 5 : 0;
    if (o < budget)
        buf[o++] = '"';
    for (size_t i = 0; i < len; i += used) {
        size_t k = quote_piece(u + i, len - i, piece, &used);
        if (o + k > budget - (cut ? 0 : 1))
            break;
        memcpy(buf + o, piece, k);
        o += k;
    }
    const char *end = cut ? "...\"" : "\"";
    for (; *end && o < size - 1; end++)
        buf[o++] = *end;
    buf[o] = '\0';
    return total;
}

struct out {
    char *buf;
    size_t size, len;
};

static void out_put(struct out *o, const char *s, size_t n)
{
    if (o->len + 1 < o->size) {
        size_t room = o->size - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void path_part(struct out *o, const struct rk_toml_value *x, bool first)
{
    char b[160];
    if (!x->key) { /* an array element: its index */
        size_t i = 0;
        for (const struct rk_toml_value *c = x->parent->first; c && c != x; c = c->next)
            i++;
        int k = snprintf(b, sizeof(b), "[%zu]", i);
        out_put(o, b, (size_t)k);
        return;
    }
    if (!first)
        out_put(o, ".", 1);
    bool bare = x->key_len > 0;
    for (size_t i = 0; i < x->key_len && bare; i++)
        bare = is_bare((unsigned char)x->key[i]);
    if (bare)
        out_put(o, x->key, x->key_len);
    else {
        rk_toml_quote(b, sizeof(b), x->key, x->key_len); /* a long key is cut: fine here */
        out_put(o, b, strlen(b));
    }
}

size_t rk_toml_path(const struct rk_toml_value *v, char *buf, size_t size)
{
    enum { MAX_SHOWN = 64 }; /* deeper paths show their last parts only */
    const struct rk_toml_value *chain[MAX_SHOWN];
    int n = 0;
    bool cut = false;
    for (const struct rk_toml_value *x = v; x && x->parent; x = x->parent) {
        if (n == MAX_SHOWN) {
            cut = true;
            break;
        }
        chain[n++] = x;
    }
    struct out o = {buf, size, 0};
    if (cut)
        out_put(&o, "...", 3);
    for (int i = n - 1; i >= 0; i--)
        path_part(&o, chain[i], i == n - 1);
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return o.len;
}

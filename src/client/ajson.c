/* The admin-JSON reader (see ajson.h). One parser runs twice: the first
 * pass over the caller's text only validates and counts values; the second,
 * over the document's own copy, fills an array of exactly that many values
 * in pre-order (a container, then its children) and their decoded text.
 * So a document is one allocation that never grows, and a value's next
 * sibling is a fixed distance ahead of it. */
#include "client/ajson.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

struct rk_ajson_val {
    const char *raw; /* the value as written, inside doc->text */
    size_t raw_len;
    const char *key; /* decoded member name in doc->strs; NULL outside an object */
    size_t key_len;
    const char *text; /* scalars: decoded string or text as written; containers: NULL,
                         or "[]" / "{}" when empty */
    size_t text_len;
    size_t count; /* containers: members or elements, which follow at this + 1 */
    size_t next;  /* values from this one to its next sibling; 0 for the last */
    enum rk_ajson_type type;
};

struct rk_ajson {
    size_t nvals;
    char *text;                 /* a NUL-terminated copy of the input */
    char *strs;                 /* decoded names and texts, each NUL-terminated */
    size_t strs_used;           /* bytes of strs taken; at most len + nvals (see store) */
    struct rk_ajson_val vals[]; /* vals[0] is the root */
};

struct parser {
    const char *s;
    size_t i, n;
    struct rk_ajson *doc; /* NULL on the counting pass */
    size_t nvals;         /* values seen so far: the next one's index */
    int depth;
    unsigned flags;
};

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static unsigned hex4(const char *s)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++)
        v = v << 4 | (unsigned)hexval(s[k]); /* the scanner let only hex digits through */
    return v;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void skip_ws(struct parser *p)
{
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\r' || p->s[p->i] == '\n'))
        p->i++;
}

static bool at(const struct parser *p, char c)
{
    return p->i < p->n && p->s[p->i] == c;
}

/* ---- scanning: validate one token and step over it ---- */

/* The string at p->i (which is '"'). */
static bool scan_string(struct parser *p)
{
    p->i++;
    while (p->i < p->n) {
        unsigned char c = (unsigned char)p->s[p->i++];
        if (c == '"')
            return true;
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue;
        if (p->i >= p->n)
            return false;
        c = (unsigned char)p->s[p->i++];
        if (c == 'u') {
            if (p->n - p->i < 4)
                return false;
            for (int k = 0; k < 4; k++)
                if (hexval(p->s[p->i++]) < 0)
                    return false;
        } else if (c == '\0' || strchr("\"\\/bfnrt", c) == NULL) {
            return false;
        }
    }
    return false;
}

static bool scan_digits(struct parser *p)
{
    size_t start = p->i;
    while (p->i < p->n && is_digit(p->s[p->i]))
        p->i++;
    return p->i > start;
}

/* RFC 8259: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static bool scan_number(struct parser *p)
{
    if (at(p, '-'))
        p->i++;
    if (at(p, '0'))
        p->i++;
    else if (!scan_digits(p))
        return false;
    if (at(p, '.')) {
        p->i++;
        if (!scan_digits(p))
            return false;
    }
    if (at(p, 'e') || at(p, 'E')) {
        p->i++;
        if (at(p, '+') || at(p, '-'))
            p->i++;
        if (!scan_digits(p))
            return false;
    }
    return true;
}

static bool scan_literal(struct parser *p, enum rk_ajson_type *t)
{
    static const struct {
        const char *word;
        enum rk_ajson_type type;
    } lits[] = {{"true", RK_AJSON_BOOL}, {"false", RK_AJSON_BOOL}, {"null", RK_AJSON_NULL}};
    for (size_t k = 0; k < sizeof lits / sizeof lits[0]; k++) {
        size_t len = strlen(lits[k].word);
        if (p->n - p->i >= len && memcmp(p->s + p->i, lits[k].word, len) == 0) {
            p->i += len;
            *t = lits[k].type;
            return true;
        }
    }
    return false;
}

/* ---- decoding (second pass only) ---- */

static size_t utf8_put(char *d, unsigned cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | cp >> 6), d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | cp >> 12), d[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | cp >> 18), d[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    d[2] = (char)(0x80 | (cp >> 6 & 0x3F)), d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The \u escape at s (left bytes of the string from its backslash, all
 * scanned) into d + *o; a high surrogate takes a following low one with it.
 * Returns the bytes of s consumed: 6, or 12 for a pair. */
static size_t decode_u(const char *s, size_t left, char *d, size_t *o, unsigned flags)
{
    unsigned cp = hex4(s + 2);
    size_t used = 6;
    if (cp >= 0xD800 && cp <= 0xDBFF && left >= 12 && s[6] == '\\' && s[7] == 'u') {
        unsigned lo = hex4(s + 8);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            used = 12;
        }
    }
    bool unpaired = cp >= 0xD800 && cp <= 0xDFFF;
    if ((flags & RK_AJSON_ONE_LINE) && (cp < 0x20 || unpaired)) {
        memcpy(d + *o, s, used);
        *o += used;
    } else {
        *o += utf8_put(d + *o, unpaired ? 0xFFFD : cp);
    }
    return used;
}

/* The body s[0, n) of a scanned string into d (room for n + 1: no escape
 * decodes longer than it is written). Returns the decoded length. */
static size_t decode(const char *s, size_t n, char *d, unsigned flags)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            d[o++] = s[i++];
        } else if (s[i + 1] == 'u') {
            i += decode_u(s + i, n - i, d, &o, flags);
        } else {
            char c = to[strchr(from, s[i + 1]) - from];
            if (c < 0x20 && (flags & RK_AJSON_ONE_LINE)) /* keep "\n" visible as such */
                d[o++] = '\\', d[o++] = s[i + 1];
            else
                d[o++] = c;
            i += 2;
        }
    }
    d[o] = '\0';
    return o;
}

/* Copy (decoding string bodies) n bytes at s into the document's strs.
 * Each value stores at most its raw length + 1 and each name its raw
 * length - 1, so strs never needs more than len + nvals bytes. */
static const char *store(struct parser *p, const char *s, size_t n, bool is_str, size_t *len)
{
    char *d = p->doc->strs + p->doc->strs_used;
    if (is_str) {
        *len = decode(s, n, d, p->flags);
    } else {
        memcpy(d, s, n);
        d[n] = '\0';
        *len = n;
    }
    p->doc->strs_used += *len + 1;
    return d;
}

/* ---- parsing ---- */

static int parse_value(struct parser *p, const char *key, size_t key_len);

/* A member's name and its colon; *key is set on the second pass. */
static int parse_name(struct parser *p, const char **key, size_t *key_len)
{
    skip_ws(p);
    size_t start = p->i;
    if (!at(p, '"') || !scan_string(p))
        return -1;
    if (p->doc != NULL)
        *key = store(p, p->s + start + 1, p->i - start - 2, true, key_len);
    skip_ws(p);
    if (!at(p, ':'))
        return -1;
    p->i++;
    return 0;
}

static void set_val(struct parser *p, size_t idx, struct rk_ajson_val v)
{
    v.next = p->doc->vals[idx].next; /* set by the parent before: keep it */
    p->doc->vals[idx] = v;
}

/* The array or object at p->i, which becomes value idx. */
static int parse_container(struct parser *p, size_t idx, const char *key, size_t key_len)
{
    size_t start = p->i, count = 0, prev = 0;
    char close = p->s[p->i] == '[' ? ']' : '}';
    if (++p->depth > RK_AJSON_MAX_DEPTH)
        return -1;
    p->i++;
    skip_ws(p);
    for (bool more = !at(p, close); more; count++) {
        const char *k = NULL;
        size_t klen = 0, child = p->nvals;
        if ((close == '}' && parse_name(p, &k, &klen) != 0) || parse_value(p, k, klen) != 0)
            return -1;
        if (p->doc != NULL && count > 0)
            p->doc->vals[prev].next = child - prev;
        prev = child;
        skip_ws(p);
        more = at(p, ',');
        if (!more && !at(p, close))
            return -1;
        if (more)
            p->i++;
    }
    p->i++; /* the close */
    p->depth--;
    if (p->doc != NULL)
        set_val(p, idx,
                (struct rk_ajson_val){.type = close == ']' ? RK_AJSON_ARRAY : RK_AJSON_OBJECT,
                                      .raw = p->s + start,
                                      .raw_len = p->i - start,
                                      .key = key,
                                      .key_len = key_len,
                                      .count = count,
                                      .text = count > 0      ? NULL
                                              : close == ']' ? "[]"
                                                             : "{}",
                                      .text_len = count > 0 ? 0 : 2});
    return 0;
}

/* One value of any type, with its member name (second pass) if it has one. */
static int parse_value(struct parser *p, const char *key, size_t key_len)
{
    skip_ws(p);
    if (p->i >= p->n)
        return -1;
    size_t idx = p->nvals++, start = p->i;
    char c = p->s[p->i];
    enum rk_ajson_type t = RK_AJSON_NONE;
    bool ok;
    if (c == '{' || c == '[')
        return parse_container(p, idx, key, key_len);
    if (c == '"')
        t = RK_AJSON_STRING, ok = scan_string(p);
    else if (c == '-' || is_digit(c))
        t = RK_AJSON_NUMBER, ok = scan_number(p);
    else
        ok = scan_literal(p, &t);
    if (!ok)
        return -1;
    if (p->doc == NULL)
        return 0;
    struct rk_ajson_val v = {
        .type = t, .raw = p->s + start, .raw_len = p->i - start, .key = key, .key_len = key_len};
    bool is_str = t == RK_AJSON_STRING;
    v.text = store(p, v.raw + is_str, v.raw_len - 2 * is_str, is_str, &v.text_len);
    set_val(p, idx, v);
    return 0;
}

static int parse_all(struct parser *p)
{
    if (parse_value(p, NULL, 0) != 0)
        return -1;
    skip_ws(p);
    return p->i == p->n ? 0 : -1;
}

int rk_ajson_parse(struct rk_ajson **out, const char *text, size_t len, unsigned flags)
{
    struct parser p = {.s = text, .n = len, .flags = flags};
    *out = NULL;
    if (parse_all(&p) != 0)
        return RK_EMALFORMED;
    /* nvals <= len (a value takes a byte at least): the sum cannot wrap
     * below this bound. */
    if (len > (SIZE_MAX - sizeof(struct rk_ajson) - 2) / (sizeof(struct rk_ajson_val) + 3))
        return -ENOMEM;
    size_t vals = p.nvals * sizeof(struct rk_ajson_val);
    struct rk_ajson *d = calloc(1, sizeof *d + vals + (len + 1) + (len + p.nvals + 1));
    if (d == NULL)
        return -ENOMEM;
    d->nvals = p.nvals;
    d->text = (char *)d->vals + vals;
    memcpy(d->text, text, len);
    d->text[len] = '\0';
    d->strs = d->text + len + 1;
    struct parser q = {.s = d->text, .n = len, .doc = d, .flags = flags};
    if (parse_all(&q) != 0 || q.nvals != p.nvals) { /* same bytes, same parser: not expected */
        free(d);
        return RK_EMALFORMED;
    }
    *out = d;
    return 0;
}

void rk_ajson_free(struct rk_ajson *doc)
{
    free(doc);
}

/* ---- access ---- */

const struct rk_ajson_val *rk_ajson_root(const struct rk_ajson *doc)
{
    return doc != NULL ? &doc->vals[0] : NULL;
}

enum rk_ajson_type rk_ajson_type(const struct rk_ajson_val *v)
{
    return v != NULL ? v->type : RK_AJSON_NONE;
}

size_t rk_ajson_count(const struct rk_ajson_val *v)
{
    return v != NULL ? v->count : 0;
}

const struct rk_ajson_val *rk_ajson_first(const struct rk_ajson_val *v)
{
    return v != NULL && v->count > 0 ? v + 1 : NULL;
}

const struct rk_ajson_val *rk_ajson_next(const struct rk_ajson_val *v)
{
    return v != NULL && v->next > 0 ? v + v->next : NULL;
}

static const struct rk_ajson_val *member_n(const struct rk_ajson_val *obj, const char *name,
                                           size_t n)
{
    if (rk_ajson_type(obj) != RK_AJSON_OBJECT)
        return NULL;
    for (const struct rk_ajson_val *c = rk_ajson_first(obj); c != NULL; c = rk_ajson_next(c))
        if (c->key_len == n && memcmp(c->key, name, n) == 0)
            return c;
    return NULL;
}

const struct rk_ajson_val *rk_ajson_member(const struct rk_ajson_val *obj, const char *name)
{
    return member_n(obj, name, strlen(name));
}

const struct rk_ajson_val *rk_ajson_index(const struct rk_ajson_val *arr, size_t k)
{
    if (rk_ajson_type(arr) != RK_AJSON_ARRAY || k >= arr->count)
        return NULL;
    const struct rk_ajson_val *c = rk_ajson_first(arr);
    while (k-- > 0)
        c = rk_ajson_next(c);
    return c;
}

/* One step of a path: name s[0, n) in an object, a decimal index in an array. */
static const struct rk_ajson_val *step(const struct rk_ajson_val *v, const char *s, size_t n)
{
    size_t k = 0;
    if (rk_ajson_type(v) == RK_AJSON_OBJECT)
        return member_n(v, s, n);
    if (rk_ajson_type(v) != RK_AJSON_ARRAY || n == 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]) || k > v->count) /* beyond the count: no such element */
            return NULL;
        k = k * 10 + (size_t)(s[i] - '0');
    }
    return rk_ajson_index(v, k);
}

const struct rk_ajson_val *rk_ajson_path(const struct rk_ajson_val *v, const char *path)
{
    for (;;) {
        size_t n = strcspn(path, ".");
        v = step(v, path, n);
        if (v == NULL || path[n] == '\0')
            return v;
        path += n + 1;
    }
}

const char *rk_ajson_key(const struct rk_ajson_val *v, size_t *len)
{
    if (v == NULL || v->key == NULL)
        return NULL;
    if (len != NULL)
        *len = v->key_len;
    return v->key;
}

const char *rk_ajson_str(const struct rk_ajson_val *v, size_t *len)
{
    if (rk_ajson_type(v) != RK_AJSON_STRING)
        return NULL;
    if (len != NULL)
        *len = v->text_len;
    return v->text;
}

const char *rk_ajson_text(const struct rk_ajson_val *v)
{
    return v != NULL ? v->text : NULL;
}

const char *rk_ajson_raw(const struct rk_ajson_val *v, size_t *len)
{
    if (v == NULL)
        return NULL;
    *len = v->raw_len;
    return v->raw;
}

int rk_ajson_u64(const struct rk_ajson_val *v, uint64_t *out)
{
    uint64_t u = 0;
    if (rk_ajson_type(v) != RK_AJSON_NUMBER)
        return RK_EINVAL;
    for (size_t i = 0; i < v->text_len; i++) {
        unsigned d = (unsigned)(v->text[i] - '0');
        if (d > 9) /* '-', '.', 'e': not a whole non-negative number as written */
            return RK_EINVAL;
        if (u > (UINT64_MAX - d) / 10)
            return -ERANGE;
        u = u * 10 + d;
    }
    *out = u;
    return 0;
}

int rk_ajson_double(const struct rk_ajson_val *v, double *out)
{
    if (rk_ajson_type(v) != RK_AJSON_NUMBER)
        return RK_EINVAL;
    errno = 0;
    double d = strtod(v->text, NULL);
    if (errno == ERANGE && isinf(d)) /* underflow to 0 or a denormal is fine */
        return -ERANGE;
    *out = d;
    return 0;
}

int rk_ajson_bool(const struct rk_ajson_val *v, bool *out)
{
    if (rk_ajson_type(v) != RK_AJSON_BOOL)
        return RK_EINVAL;
    *out = v->text[0] == 't';
    return 0;
}

uint64_t rk_ajson_u64_or0(const struct rk_ajson_val *v)
{
    uint64_t x = 0;
    return rk_ajson_u64(v, &x) == 0 ? x : 0;
}

void rk_ajson_copy_text(char *dst, size_t cap, const struct rk_ajson_val *v)
{
    const char *s = rk_ajson_text(v);
    snprintf(dst, cap, "%s", s ? s : "");
}

void rk_ajson_compact(const char *s, size_t n, struct rk_jbuf *out)
{
    bool in_str = false;
    size_t run = 0; /* start of the bytes not yet copied */
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str && c == '\\' && i + 1 < n) {
            i++; /* an escaped quote does not end the string */
            continue;
        }
        if (c == '"')
            in_str = !in_str;
        if (!in_str && (c == ' ' || c == '\t' || c == '\r' || c == '\n')) {
            rk_jaddn(out, s + run, i - run);
            run = i + 1;
        }
    }
    rk_jaddn(out, s + run, n - run);
}

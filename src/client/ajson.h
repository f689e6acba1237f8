/* A reader for the JSON of the admin API (STATUS, STATS, MEMBERS, RING,
 * LOCATE, a GET's trace ...), shared by kvctl and the dashboard. It parses
 * a whole reply into a read-only tree at once; lookups then return
 * borrowed views into it, valid until rk_ajson_free. Replies come from the
 * network: the parser reads only the len bytes it is given, bounds its
 * nesting, and refuses anything that is not one RFC 8259 value.
 *
 * Threads: a document is immutable after rk_ajson_parse, so any number of
 * threads may read one at once; freeing it is its owner's.
 *
 * NULL in, NULL out: every accessor taking a value accepts NULL and returns
 * NULL (or 0, RK_EINVAL, RK_AJSON_NONE), so lookups chain without checks:
 *   rk_ajson_text(rk_ajson_path(rk_ajson_root(d), "members.0.state"))
 */
#ifndef RK_CLIENT_AJSON_H
#define RK_CLIENT_AJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/jbuf.h"

/* Containers nested deeper than this are refused: admin replies nest 2-3
 * levels, and the bound keeps the parser's recursion off a hostile stack. */
#define RK_AJSON_MAX_DEPTH 64

enum rk_ajson_type {
    RK_AJSON_NONE = 0, /* what rk_ajson_type(NULL) says */
    RK_AJSON_NULL,
    RK_AJSON_BOOL,
    RK_AJSON_NUMBER,
    RK_AJSON_STRING,
    RK_AJSON_ARRAY,
    RK_AJSON_OBJECT,
};

/* rk_ajson_parse flags. */
enum {
    /* Decode strings and member names for a one-line display: control
     * characters (\n, \t, \u0001 ...) and unpaired surrogates stay as the
     * escape the text had, so a value never breaks a line or a table.
     * Without it strings decode exactly (\n is a newline, \u0000 a NUL
     * byte) and an unpaired surrogate becomes U+FFFD. */
    RK_AJSON_ONE_LINE = 1u << 0,
};

struct rk_ajson;     /* a parsed document (opaque) */
struct rk_ajson_val; /* one value in it (opaque) */

/* Parse len bytes of text (no NUL needed; the text is copied, so the
 * caller may free it at once). Returns 0 and *out, to release with
 * rk_ajson_free; RK_EMALFORMED if text is not exactly one JSON value with
 * optional whitespace around it (a NUL byte, invalid escape, bad number,
 * control byte in a string, trailing text, nesting beyond
 * RK_AJSON_MAX_DEPTH); -ENOMEM. Bytes >= 0x20 inside strings are kept as
 * they are: the node writes UTF-8 and the reader does not police it. */
int rk_ajson_parse(struct rk_ajson **out, const char *text, size_t len, unsigned flags);

/* Release a document and every view into it. NULL is a no-op. */
void rk_ajson_free(struct rk_ajson *doc);

/* The top value of doc (never NULL for a parsed doc). */
const struct rk_ajson_val *rk_ajson_root(const struct rk_ajson *doc);

enum rk_ajson_type rk_ajson_type(const struct rk_ajson_val *v);

/* Members of an object or elements of an array; 0 for anything else. */
size_t rk_ajson_count(const struct rk_ajson_val *v);

/* Iteration in document order: the first member or element of a
 * container, then each next one; NULL after the last (or for a scalar).
 *   for (c = rk_ajson_first(v); c != NULL; c = rk_ajson_next(c)) */
const struct rk_ajson_val *rk_ajson_first(const struct rk_ajson_val *v);
const struct rk_ajson_val *rk_ajson_next(const struct rk_ajson_val *v);

/* The first member of object obj named name (compared after decoding, so
 * "a\u0062" matches "ab"); NULL if absent or obj is not an object. */
const struct rk_ajson_val *rk_ajson_member(const struct rk_ajson_val *obj, const char *name);

/* Element k of array arr; NULL if out of range or arr is not an array. */
const struct rk_ajson_val *rk_ajson_index(const struct rk_ajson_val *arr, size_t k);

/* The value at a dotted path below v: each step a member name in an object
 * or a decimal index in an array ("members.0.id", "storage.puts"). NULL if
 * any step is missing. A name containing '.' needs rk_ajson_member. */
const struct rk_ajson_val *rk_ajson_path(const struct rk_ajson_val *v, const char *path);

/* The decoded name of v when v is an object's member, NUL-terminated, with
 * its length in *len (may be NULL; exact decoding may hold NUL bytes); NULL
 * for an array element or the root. */
const char *rk_ajson_key(const struct rk_ajson_val *v, size_t *len);

/* The decoded string (as rk_ajson_key); NULL if v is not a string. */
const char *rk_ajson_str(const struct rk_ajson_val *v, size_t *len);

/* v as one piece of text, NUL-terminated, for display and comparison: a
 * string decoded (as rk_ajson_str), a number or literal as written
 * ("12", "-1.5e3", "true", "null"), an empty array or object "[]" or
 * "{}"; NULL for a container with something in it. */
const char *rk_ajson_text(const struct rk_ajson_val *v);

/* v's JSON text exactly as the document had it (not NUL-terminated), its
 * length in *len; a container's includes its inner whitespace. */
const char *rk_ajson_raw(const struct rk_ajson_val *v, size_t *len);

/* A number that is a whole number in [0, UINT64_MAX], written without
 * fraction or exponent ("0", "18446744073709551615"). Returns 0 and *out;
 * RK_EINVAL for another type, a negative or non-integer number; -ERANGE
 * above UINT64_MAX. */
int rk_ajson_u64(const struct rk_ajson_val *v, uint64_t *out);

/* A number as a double (strtod of its text: the C locale's '.' assumed).
 * Returns 0 and *out; RK_EINVAL if v is not a number; -ERANGE if it
 * overflows a double. */
int rk_ajson_double(const struct rk_ajson_val *v, double *out);

/* true or false. Returns 0 and *out; RK_EINVAL for any other value. */
int rk_ajson_bool(const struct rk_ajson_val *v, bool *out);

/* For display, where a missing field shows as nothing: v's rk_ajson_u64
 * value, or 0 when it has none. */
uint64_t rk_ajson_u64_or0(const struct rk_ajson_val *v);

/* rk_ajson_text(v) copied into dst (cap bytes, cut to fit), "" when v has
 * no text. */
void rk_ajson_copy_text(char *dst, size_t cap, const struct rk_ajson_val *v);

/* Append JSON text s[0, n) to out without the whitespace between tokens
 * (strings are kept byte for byte): one line for `--json` output. s must
 * be valid JSON (a document's text, or rk_ajson_raw of a value); out
 * reports running out of memory through out->oom. */
void rk_ajson_compact(const char *s, size_t n, struct rk_jbuf *out);

#endif

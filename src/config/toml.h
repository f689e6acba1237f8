/* A small TOML reader for configuration files: parses a whole document into
 * a read-only tree whose every value carries the line and column it was
 * written at, so callers can point at the exact spot of a bad setting.
 * Pure and re-entrant (no globals): any thread may parse, a document is
 * then owned by whoever holds it. Depends on libc only; it is a fuzz target.
 *
 * Supported (TOML 1.0): tables [a] [a.b], bare/quoted/dotted keys, inline
 * tables { a = 1 }, basic strings with every escape (\" \\ \b \t \n \f \r
 * \uXXXX \UXXXXXXXX, stored as UTF-8), literal strings, multi-line basic and
 * literal strings, integers (sign, underscores, 0x 0o 0b), floats (incl.
 * inf, nan), booleans, arrays (multi-line, trailing comma, comments), and
 * # comments. Not supported, reported as errors: arrays of tables [[a]] and
 * dates/times, which no ringkv setting uses.
 *
 * Rejected with an error: duplicate keys, tables defined twice (or extended
 * against TOML's rules), bad escapes, unterminated strings/arrays, missing
 * values, anything but a comment after a value, control characters and
 * invalid UTF-8, integers outside int64, floats outside double. */
#ifndef RK_TOML_H
#define RK_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rk_toml_doc rk_toml_doc;

enum rk_toml_type {
    RK_TOML_TABLE,
    RK_TOML_ARRAY,
    RK_TOML_STRING,
    RK_TOML_INT,
    RK_TOML_FLOAT,
    RK_TOML_BOOL,
};

/* One node of the tree. Read-only for callers; every pointer in it is owned
 * by the document and valid until rk_toml_free(). Lines and columns are
 * 1-based; columns count UTF-8 characters (a tab is one column). */
struct rk_toml_value {
    enum rk_toml_type type;
    /* First character of the value; for a table its [header], or the key
     * that created it (a.b = 1 creates table a at "a"). */
    uint32_t line, col;
    /* First character of its key as written (the last part of a dotted
     * key); 0 for the root and for array elements. */
    uint32_t key_line, key_col;
    /* NUL-terminated; NULL for the root and for array elements. key_len is
     * more than strlen(key) only if the key holds an escaped NUL (\u0000). */
    const char *key;
    size_t key_len;
    const struct rk_toml_value *parent; /* NULL for the root */
    const struct rk_toml_value *next;   /* next sibling, in document order */

    /* RK_TOML_STRING: NUL-terminated UTF-8; len is exact (may contain NUL). */
    const char *str;
    size_t len;
    int64_t i; /* RK_TOML_INT */
    double f;  /* RK_TOML_FLOAT */
    bool b;    /* RK_TOML_BOOL */
    /* RK_TOML_TABLE and RK_TOML_ARRAY: children in document order. */
    const struct rk_toml_value *first;
    size_t count;
};

/* Parse len bytes of buf (no NUL needed; a leading UTF-8 BOM is skipped).
 * name is used only in messages. Returns 0 with *out set (free it with
 * rk_toml_free), RK_EMALFORMED with one line "NAME:LINE:COL: message" in err
 * (LINE and COL of the offending character), or -ENOMEM. err may be NULL
 * when errlen is 0; it is always NUL-terminated otherwise. */
int rk_toml_parse(rk_toml_doc **out, const char *name, const char *buf, size_t len, char *err,
                  size_t errlen);

/* Read and parse the file at path. As rk_toml_parse, plus -errno with
 * "PATH: reason" when it cannot be read, and RK_ETOOLARGE past
 * RK_TOML_MAX_FILE bytes (a config is a few KiB; the cap bounds the memory
 * a wrong path, such as a log file, can take: under 100 bytes per byte). */
#define RK_TOML_MAX_FILE (1u << 20)
int rk_toml_parse_file(rk_toml_doc **out, const char *path, char *err, size_t errlen);

/* Free the document and every value in it. NULL is a no-op. */
void rk_toml_free(rk_toml_doc *doc);

/* The root table of a parsed document. */
const struct rk_toml_value *rk_toml_root(const rk_toml_doc *doc);

/* The child of table t named key (exact bytes up to the NUL), or NULL if t
 * is not a table or has no such key. Linear in the table's size. */
const struct rk_toml_value *rk_toml_get(const struct rk_toml_value *t, const char *key);

/* Follow a dotted path of bare keys from t ("storage.fsync"), or NULL. */
const struct rk_toml_value *rk_toml_lookup(const struct rk_toml_value *t, const char *path);

/* "table", "array", "string", "integer", "float" or "boolean". */
const char *rk_toml_type_name(enum rk_toml_type type);

/* Write v's full key path ("storage.fsync", "cluster.seeds[2]", quoted
 * parts where a key is not bare: a."b c") to buf, NUL-terminated and
 * truncated to size. Returns the length it would have had (as snprintf). */
size_t rk_toml_path(const struct rk_toml_value *v, char *buf, size_t size);

/* Write s (len bytes) to buf as a TOML basic string with its quotes,
 * escaping quotes, backslashes and control characters (bytes that are not
 * UTF-8 become \uFFFD), so any bytes print as one safe line. Past size-1
 * bytes it is cut and ends in `..."`. Returns the length of the whole
 * quoted form (as snprintf: a result >= size means it was cut). */
size_t rk_toml_quote(char *buf, size_t size, const char *s, size_t len);

#endif

/* Identifiers that travel between nodes and into logs (node ids): a
 * documented character set, so an id can never carry a line break, a
 * terminal escape or a quote into a log line, a file name or JSON. */
#ifndef RK_UTIL_IDENT_H
#define RK_UTIL_IDENT_H

#include <stdbool.h>
#include <stddef.h>

/* Longest node id, in bytes (a u8 length on the gossip wire, and room for
 * a fully qualified host name's first labels). */
#define RK_IDENT_MAX 63

/* The set, said once for every error message that names it. */
#define RK_IDENT_CHARSET "letters, digits, '.', '_' and '-'"

/* Is s[0..len) a valid identifier: 1..RK_IDENT_MAX bytes, each a letter,
 * digit, '.', '_' or '-'? If not and bad is not NULL, *bad gets the offset
 * of the first offending byte (len itself when the length is wrong). */
bool rk_ident_valid(const char *s, size_t len, size_t *bad);

#endif

/* RK_ASSERT: a check of one of ringkv's own invariants, kept in release
 * builds (unlike assert(), which NDEBUG removes: RelWithDebInfo, the
 * default build, defines it). A violated one logs
 *     error assert: FILE:LINE: assertion failed: EXPR
 * through the logger and aborts, so the core and the journal both say
 * which rule broke. Only for our own state: input from disk or the
 * network is never asserted on (it returns RK_ECORRUPT / RK_EMALFORMED).
 * Keep the expression cheap and free of side effects. Any thread. */
#ifndef RK_UTIL_ASSERT_H
#define RK_UTIL_ASSERT_H

#define RK_ASSERT(e) ((e) ? (void)0 : rk_assert_fail(__FILE__, __LINE__, #e))

/* Log the failed check and abort(); never returns. */
_Noreturn void rk_assert_fail(const char *file, int line, const char *expr);

#endif

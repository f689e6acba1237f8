/* Error codes. Functions return 0 or a negative code: system errors as
 * -errno, ringkv's own codes in a reserved range below -10000 so they can
 * never collide with an errno value. */
#ifndef RK_UTIL_ERR_H
#define RK_UTIL_ERR_H

enum {
    RK_EBASE = 10000,
    RK_ENOTFOUND = -(RK_EBASE + 1),  /* key absent, deleted or expired */
    RK_ECORRUPT = -(RK_EBASE + 2),   /* checksum or structure mismatch in stored data */
    RK_ENOSPACE = -(RK_EBASE + 3),   /* the disk is full; nothing was written */
    RK_ESTALE = -(RK_EBASE + 4),     /* a put older than (or equal to) the stored version */
    RK_ETOOLARGE = -(RK_EBASE + 5),  /* key or value over the configured limit */
    RK_EREADONLY = -(RK_EBASE + 6),  /* writes refused after an unrecoverable I/O error */
    RK_ELOCKED = -(RK_EBASE + 7),    /* data dir locked by another process */
    RK_EINVAL = -(RK_EBASE + 8),     /* bad argument */
    RK_EMALFORMED = -(RK_EBASE + 9), /* bad wire input */
    RK_EUNSUPPORTED = -(RK_EBASE + 10),
    RK_EBUSY = -(RK_EBASE + 11),
    RK_EQUORUM = -(RK_EBASE + 12),
    RK_ETIMEDOUT = -(RK_EBASE + 13),
    RK_EREFUSED = -(RK_EBASE + 14),     /* a request the node will not carry out as asked */
    RK_ERATELIMITED = -(RK_EBASE + 15), /* the client is over its request rate */
    RK_ELAST = -(RK_EBASE + 16),
};

/* A static one-line description of code (ours or -errno). Thread-safe. */
const char *rk_strerror(int code);

#endif

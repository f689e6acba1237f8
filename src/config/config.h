/* Node configuration: one table row per key (name, type, default, check),
 * loaded from TOML (src/toml.h), validated, and compared on reload.
 * etc/ringkv.toml documents every key with its default. Not thread-safe:
 * the main thread owns the config; workers get copies of what they need. */
#ifndef RK_CONFIG_H
#define RK_CONFIG_H

#include "util/fsync.h"
#include "util/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RK_CONFIG_MAX_SEEDS 64

/* The largest values the storage format can hold, as config limits: the
 * config is a leaf and does not include storage.h; server/node.c checks
 * at compile time that these equal the engine's own. */
#define RK_CONFIG_KEY_MAX        65535u      /* storage: 16-bit key length */
#define RK_CONFIG_VALUE_MAX      (64u << 20) /* storage: one record fits one block */
#define RK_CONFIG_PARTITIONS_MAX 65536u      /* storage: 16-bit partition field */

struct rk_config {
    /* [node] */
    char node_id[64];    /* "" = the host name (persisted in data_dir on first start) */
    char data_dir[1024]; /* default "./ringkv-data" */
    uint32_t workers;    /* 0 = one per online core */
    bool pin_workers;    /* default true */
    /* [listen] */
    char listen_client[256]; /* "tcp://0.0.0.0:7400" */
    char listen_peer[256];   /* "tcp://0.0.0.0:7401" */
    char listen_gossip[256]; /* "tcp://0.0.0.0:7402" */
    char listen_http[256];   /* "127.0.0.1:7480"; "" = off */
    char advertise[256];     /* "127.0.0.1" */
    /* [cluster] */
    char cluster_name[64]; /* "default" */
    char seeds[RK_CONFIG_MAX_SEEDS][256];
    uint32_t nseeds;               /* default: one seed, "tcp://127.0.0.1:7402" */
    uint32_t partitions;           /* 256; a power of two, 1..65536 */
    uint32_t replicas;             /* 3 */
    uint32_t read_quorum;          /* 2; 1..replicas */
    uint32_t write_quorum;         /* 2; 1..replicas */
    uint32_t expect_nodes;         /* 3 */
    uint64_t auto_remove_after_ms; /* 0 = off */
    uint64_t request_timeout_ms;   /* 1000: a replica that has not answered by then failed */
    uint64_t max_clock_skew_ms;    /* 500: peer versions further ahead are refused */
    /* [gossip] */
    uint64_t gossip_interval_ms; /* 1000 */
    uint64_t suspect_after_ms;   /* 3000 */
    uint64_t dead_after_ms;      /* 10000; > suspect_after */
    /* [storage] */
    enum rk_fsync fsync;         /* "always" */
    uint64_t fsync_interval_ms;  /* 10 */
    uint64_t segment_size;       /* "64MiB"; 1 MiB .. 1 GiB */
    bool compression;            /* "lz4" → true, "none" → false */
    uint32_t max_key_size;       /* "1KiB"; 1 .. 65535 */
    uint32_t max_value_size;     /* "1MiB"; 0 .. 64 MiB */
    uint64_t tombstone_grace_ms; /* "24h"; longer than hints.max_age and antientropy.interval */
    /* [hints] */
    uint64_t hints_max_bytes;  /* "64MiB" per target node */
    uint64_t hints_max_age_ms; /* "3h" */
    /* [antientropy] */
    bool ae_enabled;                  /* true: replicas compare and repair on their own */
    uint64_t ae_interval_ms;          /* 30000 */
    uint32_t ae_max_keys_per_second;  /* 50000 */
    uint64_t ae_max_bytes_per_second; /* "32MiB"; 0 = no byte budget */
    /* [transfers] */
    uint32_t xfer_max_concurrent;       /* 2: partitions received at once */
    uint64_t xfer_max_bytes_per_second; /* "64MiB"; 0 = no limit */
    /* [limits] */
    uint32_t max_inflight;    /* 10000; >= 1 */
    uint32_t client_rate;     /* requests/s per client address; 0 = off */
    uint32_t client_burst;    /* the most at once; 0 = client_rate */
    uint32_t max_connections; /* 256 per listening address; 1 .. 65536 */
    /* [security] */
    char secret_file[1024], tls_cert[1024], tls_key[1024], tls_ca[1024];
    bool client_auth;           /* client data requests prove the secret too */
    bool allow_unauthenticated; /* accept other hosts without a secret */
    /* [log] */
    enum rk_log_level log_level;   /* "info" */
    enum rk_log_format log_format; /* "text" */
};

/* Fill c with the built-in defaults (the values above). */
void rk_config_defaults(struct rk_config *c);

/* The defaults of a node run without a config file: a cluster of one, so
 * cluster.replicas, read_quorum, write_quorum and expect_nodes are 1 (the
 * documented defaults, 3/2/2/3, describe the cluster a config file sets
 * up; a quorum of 2 could never be met by one node). */
void rk_config_single_node(struct rk_config *c);

/* Load path over the defaults and validate. 0, or -1 with one line in err:
 * "FILE:LINE:COL: message" for syntax errors and for keys (unknown key:
 * `unknown key "storage.fsnyc" (did you mean "storage.fsync"?)`), or
 * "FILE: message" when the file cannot be read or for cross-key checks
 * (e.g. `cluster.write_quorum = 4 is more than cluster.replicas = 3`);
 * the storage.tombstone_grace rule points at the line of the grace, or of
 * the key it must be longer than, when the file sets one of them.
 * Keys missing from the file keep their defaults (not c's old values); on
 * error c is left unchanged, so a failed reload keeps the running config. */
int rk_config_load(struct rk_config *c, const char *path, char *err, size_t errlen);

/* Check path as rk_config_load would, going on after each error: every
 * error found is one "FILE:LINE:COL: message" line (newline-terminated) of
 * errs, as many as fit in len. Returns the number of errors (0: the file
 * loads). A TOML syntax error ends the check at it (1 error); the
 * cross-key rules are checked only when every key is valid. */
int rk_config_check(const char *path, char *errs, size_t len);

/* rk_config_load on len bytes of buf; name stands for the file in messages. */
int rk_config_load_buf(struct rk_config *c, const char *name, const char *buf, size_t len,
                       char *err, size_t errlen);

/* Check cross-key constraints of a filled config (load does this). 0 or -1
 * with err. */
int rk_config_validate(const struct rk_config *c, char *err, size_t errlen);

/* listen.http as the URL nng's HTTP server takes: "HOST:PORT" or
 * "http://HOST:PORT" (a name, IPv4, or [IPv6] host; port 1-65535) into
 * url as "http://HOST:PORT"; "" (off) gives "". 0, or -1 with one line in
 * err. The one parser of the key: validation and the server use it. */
int rk_config_http_url(const char *listen, char *url, size_t len, char *err, size_t errlen);

/* Compare a running config with a reloaded one. Applies nothing: writes to
 * `live` the names of changed keys that can change at runtime (log.level,
 * limits.*, antientropy.*), comma-separated, and to `restart` those that
 * need a restart. Both empty when nothing changed. Lists that do not fit
 * are cut (all names together take under 1 KiB). */
void rk_config_diff(const struct rk_config *old, const struct rk_config *neu, char *live,
                    size_t live_len, char *restart, size_t restart_len);

/* Digest of the settings that should be equal on every node of a cluster
 * (all but node.*, listen.*, security.* and cluster.seeds), for spotting
 * configuration drift across members. Stable across hosts and builds. */
uint64_t rk_config_digest(const struct rk_config *c);

/* Dotted name of the i-th setting ("node.id", ...) in table order, or NULL
 * past the last: lets tests and tools walk every setting. */
const char *rk_config_key_name(size_t i);

#endif

/* libmeridian: the embeddable C client of a Meridian cluster.
 *
 * A connection (meridian *) knows some node addresses, learns the range map
 * (which Paxos group holds which keys, and its leader) from any of them, and
 * routes every request to the right group's leader or nearest replica,
 * refreshing the map on "not leader" or "wrong range" answers by itself.
 *
 * Transactions:
 *  - Read-write (meridian_begin): reads take shared locks at the leaders and
 *    see the latest committed data; writes are buffered here (and read back by
 *    the transaction's own reads) and sent at commit; a transaction over one
 *    group commits there, over several groups by two-phase commit with one of
 *    them as coordinator. Commit returns the commit timestamp. Deadlocks are
 *    avoided by wound-wait: an older transaction wounds a younger one, whose
 *    next call fails with MERIDIAN_ABORTED.
 *  - Read-only (meridian_begin_ro): lock-free snapshot reads at one timestamp
 *    (strong, exact staleness, bounded staleness or a given timestamp); never
 *    aborted by writers.
 *  - meridian_run retries a callback on retryable failures with jittered
 *    backoff until a deadline: the usual way to run a read-write transaction.
 *
 * Keys and values are byte strings of any bytes: a key is 1..MERIDIAN_KEY_MAX
 * bytes whose first byte is not 0 (keys starting with byte 0 are the
 * cluster's own; MERIDIAN_INVALID), a value 0..MERIDIAN_VALUE_MAX bytes;
 * meridian_check_key/_value tell beforehand. Keys order as bytes (memcmp,
 * then a prefix before the longer key).
 *
 * Threads: a connection and its transactions must be used by one thread at a
 * time (like SQLite's multi-thread mode); separate connections are
 * independent and may be used from different threads at once. Error messages
 * belong to the connection (meridian_errmsg), valid until its next call.
 *
 * Memory: values returned are malloc'd; release them with meridian_free.
 *
 * Signals: a node that closes a connection while the library writes to it
 * would raise SIGPIPE, which kills a process by default; the first
 * meridian_open therefore sets SIGPIPE to ignored when it still has the
 * default action (an application's own handler is left alone), so such a
 * write is a failed call instead. */
#ifndef MERIDIAN_H
#define MERIDIAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MERIDIAN_VERSION "0.1.0"

/* The library exports only the functions declared here. */
#if defined(MERIDIAN_BUILDING) && defined(__GNUC__)
#define MERIDIAN_API __attribute__((visibility("default")))
#else
#define MERIDIAN_API
#endif

/* Result codes. */
enum {
    MERIDIAN_OK = 0,
    MERIDIAN_ERROR = 1,       /* anything else; see meridian_errmsg */
    MERIDIAN_NOTFOUND = 2,    /* get: no such key (not an error of the transaction) */
    MERIDIAN_ABORTED = 3,     /* retryable: wounded, leader moved, lock lost, ... */
    MERIDIAN_UNAVAILABLE = 4, /* no leader reachable in time; retryable */
    MERIDIAN_UNKNOWN = 5,     /* commit: the outcome could not be learned (it may have
                               * committed); never retried by meridian_run */
    MERIDIAN_STALE = 6,       /* read below the garbage-collection horizon, or bounded
                               * staleness not met by any replica */
    MERIDIAN_INVALID = 7,     /* misuse: bad arguments, a finished transaction, ... */
    MERIDIAN_NOMEM = 8,
    MERIDIAN_TIMEOUT = 9, /* meridian_run's deadline passed */
};

/* The limits every key and value is checked against before anything is sent. */
#define MERIDIAN_KEY_MAX   4096
#define MERIDIAN_VALUE_MAX (1024 * 1024)

typedef struct meridian meridian;
typedef struct meridian_txn meridian_txn;

typedef struct meridian_options {
    const char *addrs;      /* comma-separated "host:port" of one or more nodes (required) */
    const char *certs_dir;  /* ca.crt and client.root.crt/.key (`meridian cert
                             * create-client --user root`), else client.crt/.key */
    int insecure;           /* 1: plain TCP, certs_dir ignored (clusters started --insecure) */
    int64_t timeout_ms;     /* one request's timeout; 0 = 10000 */
    int strong_any_replica; /* 1: strong read-only transactions read at any replica (each
                             * waits until its safe time passes the read timestamp), which
                             * spreads the load; 0: at the groups' leaders (the default) */
    const char *user;       /* with certs_dir: use client.<user>.crt/.key (`meridian cert
                             * create-client --user <user>`); NULL: root, else client */
} meridian_options;

/* Opens a connection and fetches the range map. On failure *out is still set
 * (unless MERIDIAN_NOMEM) so meridian_errmsg can tell why; close it. */
MERIDIAN_API int meridian_open(const meridian_options *opts, meridian **out);
MERIDIAN_API void meridian_close(meridian *db);

/* The message of the connection's last failure ("" after success). */
MERIDIAN_API const char *meridian_errmsg(const meridian *db);
/* A short fixed name for a code ("aborted", ...). */
MERIDIAN_API const char *meridian_errstr(int rc);

/* Checks a key (1..MERIDIAN_KEY_MAX bytes, the first not 0) or a value
 * (0..MERIDIAN_VALUE_MAX bytes): the very check meridian_get, _put, _delete
 * and _scan make before sending anything. MERIDIAN_OK, or MERIDIAN_INVALID
 * with the reason ("key of 9000 bytes, over the 4096-byte limit", "key starts
 * with byte 0 ...") written to why (whylen bytes, NUL-terminated; why may be
 * NULL). Needs no connection; thread-safe. */
MERIDIAN_API int meridian_check_key(const void *key, size_t klen, char *why, size_t whylen);
MERIDIAN_API int meridian_check_value(const void *val, size_t vlen, char *why, size_t whylen);

/* ---- read-write transactions ---- */

MERIDIAN_API int meridian_begin(meridian *db, meridian_txn **out);

/* A transaction's age: its priority under wound-wait (ns since the epoch when its work first
 * began; older wins), 0 for an invalid handle. meridian_begin_aged starts a read-write
 * transaction with the age of an earlier attempt of the same work (age 0: now, as
 * meridian_begin), so that a caller retrying by hand keeps it, as meridian_run's retries do:
 * a transaction that keeps losing grows older than its rivals and eventually wins. Nodes refuse
 * an age more than an hour away from their clocks (MERIDIAN_INVALID at the first request). */
MERIDIAN_API int64_t meridian_txn_age(const meridian_txn *t);
MERIDIAN_API int meridian_begin_aged(meridian *db, int64_t age, meridian_txn **out);

/* Reads one key: MERIDIAN_OK with a malloc'd copy (*val may be NULL when
 * *vlen is 0), or MERIDIAN_NOTFOUND. */
MERIDIAN_API int meridian_get(meridian_txn *t, const void *key, size_t klen, void **val,
                              size_t *vlen);
/* meridian_get that also tells (version_ts optional) the commit timestamp of
 * the version read: 0 when it is the transaction's own buffered write, or
 * when not found. */
MERIDIAN_API int meridian_get_version(meridian_txn *t, const void *key, size_t klen, void **val,
                                      size_t *vlen, int64_t *version_ts);
/* meridian_get for a key the transaction will write (a read-modify-write): the read takes
 * the exclusive lock the write needs (SQL's SELECT ... FOR UPDATE), so concurrent
 * read-modify-writes of one key queue, oldest first, instead of all reading it and the
 * younger ones being wounded at commit. Read-write transactions only (MERIDIAN_INVALID in a
 * read-only one). */
MERIDIAN_API int meridian_get_for_update(meridian_txn *t, const void *key, size_t klen, void **val,
                                         size_t *vlen);
MERIDIAN_API int meridian_put(meridian_txn *t, const void *key, size_t klen, const void *val,
                              size_t vlen);
MERIDIAN_API int meridian_delete(meridian_txn *t, const void *key, size_t klen);

/* Rows of [start, end) in key order (end NULL/0 = to the end of the key
 * space), at most limit (0 = no limit); fn returns non-zero to stop early.
 * In a read-write transaction the range is locked (no phantoms) and the
 * transaction's own writes are merged in. Nodes answer a scan in pages (at
 * most 10000 rows or about 4 MiB each) and the scan follows them to the end
 * transparently: a read-only transaction reads every page at its one
 * timestamp; a read-write one locks the whole rest of [start, end) in the
 * group with its first page there, so later pages see no phantoms either. */
typedef int (*meridian_row_fn)(void *arg, const void *key, size_t klen, const void *val,
                               size_t vlen);
MERIDIAN_API int meridian_scan(meridian_txn *t, const void *start, size_t slen, const void *end,
                               size_t elen, size_t limit, meridian_row_fn fn, void *arg);

/* Commits (ts optional: the commit timestamp, ns since the epoch) and frees t,
 * whatever the result. A transaction that neither read nor wrote commits at
 * once (*ts = 0); one that only read still validates its read locks at the
 * leaders. A read-only transaction's *ts is its read timestamp. Any failure
 * of an earlier call fails the commit with that code (and releases the
 * locks). Writes too large to send to a group (one request is at most 16 MiB)
 * fail with MERIDIAN_INVALID before anything is sent; writes over a
 * group's log entry size (about 6 MiB) with MERIDIAN_ERROR ("too_large");
 * neither commits, and neither is worth retrying. */
MERIDIAN_API int meridian_commit(meridian_txn *t, int64_t *ts);
/* Abandons t (releasing its locks) and frees it. */
MERIDIAN_API void meridian_rollback(meridian_txn *t);

/* A commit deadline for read-write transaction t: it commits at a timestamp strictly below ts
 * (ns since the epoch, the cluster's TrueTime) or not at all. A commit whose timestamp would
 * be ts or later is aborted where the timestamp is decided (the group's leader, or the
 * coordinator of a two-phase commit), nothing of it applied, and meridian_commit returns
 * MERIDIAN_ABORTED with "commit deadline passed" in meridian_errmsg. For what is valid only
 * below a known time: F1's schema leases (a transaction that used a cached schema must commit
 * before the lease ends). 0 clears it. MERIDIAN_INVALID for a read-only transaction, a
 * negative ts, or a finished transaction. */
MERIDIAN_API int meridian_set_commit_before(meridian_txn *t, int64_t ts);

/* The commit wait of the connection's last successful commit, in ns: from the moment the
 * leader (the coordinator of a two-phase commit) proposed the record that assigned the commit
 * timestamp until that timestamp had certainly passed (TT.after), which it waits for before
 * answering (Spanner §4.1.2; it overlaps replication, so it is not all added latency). 0
 * before any commit, after a read-only or empty one, and when the outcome was learned by
 * asking the coordinator rather than from the commit's answer. */
MERIDIAN_API int64_t meridian_commit_wait_ns(const meridian *db);

/* The transaction's id (1..2^62-1), as the nodes know it (their logs,
 * `op status`): what a user needs to look up a transaction whose commit
 * returned MERIDIAN_UNKNOWN. 0 for an invalid or finished handle (read it
 * before meridian_commit; inside meridian_run, in the callback: each attempt
 * is a new transaction with a new id). */
MERIDIAN_API uint64_t meridian_txn_id(const meridian_txn *t);

/* ---- read-only transactions ---- */

typedef enum {
    MERIDIAN_STRONG = 0,          /* sees every transaction committed before it began */
    MERIDIAN_EXACT_STALENESS = 1, /* at now - ns */
    MERIDIAN_MAX_STALENESS = 2,   /* at most ns old, from the nearest replica, no waiting */
    MERIDIAN_AT_TIMESTAMP = 3,    /* at timestamp ns */
} meridian_bound;

MERIDIAN_API int meridian_begin_ro(meridian *db, meridian_bound bound, int64_t ns,
                                   meridian_txn **out);
/* The timestamp the read-only transaction reads at (chosen at its first read;
 * 0 before). */
MERIDIAN_API int64_t meridian_read_ts(const meridian_txn *t);

/* ---- the retrying runner ---- */

/* Runs fn in a fresh read-write transaction and commits it; on
 * MERIDIAN_ABORTED or MERIDIAN_UNAVAILABLE (from fn or the commit) rolls back
 * and retries after a jittered, growing backoff, until deadline_ms has passed
 * (then MERIDIAN_TIMEOUT; 0 = 30 s). fn returns MERIDIAN_OK to commit, anything
 * else to roll back and return that code (retried if it is retryable). fn
 * must not commit or roll back t itself (refused with MERIDIAN_INVALID).
 * Every retry keeps the first attempt's age, so it wins under wound-wait
 * eventually. ts optional. A commit deadline that passed is MERIDIAN_ABORTED
 * and retried like any abort; each attempt is a new transaction without one,
 * so a deadline is fn's to set (meridian_set_commit_before) on every attempt,
 * afresh: a caller whose deadline cannot move (a lease that ended) returns an
 * error from fn to stop. */
typedef int (*meridian_txn_fn)(meridian_txn *t, void *arg);
MERIDIAN_API int meridian_run(meridian *db, int64_t deadline_ms, meridian_txn_fn fn, void *arg,
                              int64_t *ts);

/* ---- the range map ---- */

/* A range of keys [start, end) and the Paxos group that holds it (a tablet). */
typedef struct meridian_range {
    void *start; /* inclusive; slen 0 = the first key */
    size_t slen;
    void *end; /* exclusive; elen 0 = no end */
    size_t elen;
    uint64_t group;  /* the group's id */
    char *leader;    /* "host:port" of its leader as last learned; "" when unknown */
    char **replicas; /* "host:port" of each replica */
    size_t nreplicas;
} meridian_range;

/* The ranges that overlap [start, end) (end NULL/0: to the end of the key
 * space), in key order, as the connection knows them, fetched from the
 * cluster first when refresh is 1 (or when it knows none). *out is malloc'd:
 * release it with meridian_free_ranges. MERIDIAN_OK, MERIDIAN_UNAVAILABLE
 * (no node answered), MERIDIAN_INVALID or MERIDIAN_NOMEM. */
MERIDIAN_API int meridian_ranges(meridian *db, const void *start, size_t slen, const void *end,
                                 size_t elen, int refresh, meridian_range **out, size_t *n);
MERIDIAN_API void meridian_free_ranges(meridian_range *r, size_t n);

MERIDIAN_API void meridian_free(void *p);

#ifdef __cplusplus
}
#endif
#endif

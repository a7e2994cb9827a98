/* bench-contention: the interface between the driver (bench_contention.c: client threads, hot
 * keys, timing, the table) and the systems it measures (bc_meridian.c over libmeridian's
 * meridian_run on a cluster the launcher starts; bc_pg.c, PostgreSQL with SERIALIZABLE on a
 * private server). Every system runs the same transaction, the list-append shape of the
 * consistency harness: read two hot keys, append a unique token to one or both (a
 * read-modify-write of a comma-separated list, trimmed to its last BC_KEEP tokens), retried on
 * retryable failures with the same backoff until a deadline. */
#ifndef BC_H
#define BC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"

#define BC_KEEP    32 /* tokens a list keeps (so values stay small whatever the run's length) */
#define BC_REASONS 6  /* failure classes counted per cell (bc_reason) */

/* Why an attempt failed (the previous attempt's message, classified by the system). */
typedef enum {
    BC_R_WOUND = 0, /* meridian: wounded by an older transaction; pg: serialization failure */
    BC_R_PREPARE,   /* meridian: a participant could not prepare / 2PC aborted */
    BC_R_TIMEOUT,   /* a request timed out (the client's request timeout) */
    BC_R_LEADER,    /* leadership moved, not leader, unavailable; pg: deadlock detected */
    BC_R_OTHER,
    BC_R_UNKNOWN, /* the reason was not visible */
} bc_reason;

extern const char *const bc_reason_names[BC_REASONS];

/* One transaction: read keys[0] and keys[1], append `token` to keys[0] and, when nappend is 2,
 * to keys[1]. */
typedef struct bc_txn {
    const char *keys[2];
    int nappend;
    const char *token;
} bc_txn;

/* What one transaction cost: attempts made (1 = no retry), and per failed attempt its
 * reason. */
typedef struct bc_outcome {
    unsigned attempts;
    uint64_t reasons[BC_REASONS];
    char last_error[200]; /* the final failure, when the transaction did not commit */
} bc_outcome;

typedef struct bc_client bc_client; /* a system's per-thread connection */

/* A system under test. Calls on one client come from one thread; different clients from
 * different threads at once. */
typedef struct bc_system {
    const char *name;
    /* Creates the cell's K keys (names from key_name) with an empty list. */
    int (*prepare)(void *sys, const char *const *keys, int nkeys, mr_err *err);
    int (*open)(void *sys, bc_client **out, mr_err *err);
    /* Runs t, retried as the system does until deadline_ms: MR_OK when committed; *o gets the
     * attempts (and reasons). */
    int (*run)(bc_client *c, const bc_txn *t, int64_t deadline_ms, bc_outcome *o);
    void (*close)(bc_client *c);
    void *sys;
} bc_system;

/* The value after an append: `old` (len bytes, may be NULL) with token added, the oldest
 * tokens dropped beyond BC_KEEP. malloc'd (NULL without memory). */
char *bc_append(const char *old, size_t len, const char *token);

/* The runner's backoff, the same for every system: client/mer_run.c's (base 20 ms, doubling
 * to a 1 s cap, "equal jitter": half fixed, half uniform). */
int64_t bc_backoff_ms(unsigned attempt, uint64_t r);

/* The systems. Each start returns MR_OK and fills *sys, or an error (a system that cannot run
 * here says why and the driver skips it). */
typedef struct bc_meridian_opts {
    const char *bin; /* the meridian binary */
    int nodes, groups;
    const char *lease;
    int64_t timeout_ms; /* libmeridian's request timeout */
    const char *dir;    /* keep the cluster's run directory here (NULL: a temporary one) */
} bc_meridian_opts;
int bc_meridian_start(const bc_meridian_opts *o, bc_system *sys, mr_err *err);
void bc_meridian_stop(bc_system *sys);
/* The key of id in a meridian cell: "r<id mod groups>/c<cell>/<id>" (the ranges the cluster
 * was split at, as the harness names its keys). */
void bc_meridian_key(const bc_system *sys, int cell, int id, char *buf, size_t len);
/* The cluster's run directory (node logs n<i>.log). */
const char *bc_meridian_dir(const bc_system *sys);

#ifdef BC_HAVE_PG
int bc_pg_start(const char *bindir, bc_system *sys, mr_err *err);
void bc_pg_stop(bc_system *sys);
#endif

#endif

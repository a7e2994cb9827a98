/* The transactional workloads' common part: worker threads that each own a libmeridian
 * connection (include/meridian.h) and run one operation at a time, the key naming that spreads
 * a workload's keys over the data groups' ranges, and the mapping of libmeridian's result
 * codes to Jepsen outcomes.
 *
 * Threads: libmeridian calls block, so each logical client process is a thread with its own
 * connection (a connection is used by one thread at a time). Operations are recorded through
 * hj_record (locked, stamped with the harness's clock). Stopping is asked from the loop
 * thread; each worker finishes its operation in flight (libmeridian's request timeout bounds
 * it), runs the workload's `finish` step (the set workload's final read), closes its connection
 * and exits; the last one wakes the loop, which joins them and calls on_done.
 *
 * Outcomes (Jepsen's rules):
 *   ok    the commit (or the read-only transaction) succeeded;
 *   fail  certainly not committed: a failure before commit (the transaction is rolled back:
 *         nothing was sent for commit; the workloads try such an operation again a few
 *         times), a commit answered MERIDIAN_ABORTED or MERIDIAN_INVALID (never retried: an
 *         operation is committed at most once), or the workload's own refusal (a transfer that
 * would overdraw); read-only operations that fail are fail too (they change nothing); info  a
 * commit answered MERIDIAN_UNKNOWN, MERIDIAN_UNAVAILABLE, MERIDIAN_TIMEOUT, MERIDIAN_ERROR or
 * MERIDIAN_NOMEM: it may have committed. The worker's process is retired (id += concurrency) and
 * its connection reopened. */
#ifndef HJ_TXN_H
#define HJ_TXN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jepsen/harness/hj_workload.h"
#include "meridian.h"

typedef struct hj_txn_pool hj_txn_pool;

typedef struct hj_txn_worker {
    hj_txn_pool *pool;
    int index;
    int64_t process;
    meridian *db; /* NULL until opened (reopened after an info outcome) */
    hj_rng rng;
    pthread_t th;
    bool started;
} hj_txn_worker;

typedef struct hj_txn_workload {
    /* Once, before the workers start, on the caller's thread with its own connection
     * (e.g. the bank's opening balances); NULL if none. Not recorded in the history. */
    int (*setup)(void *wl, meridian *db, mr_err *err);
    /* One operation: invoke, run, complete (hj_txn_worker's helpers record). */
    void (*step)(void *wl, hj_txn_worker *w);
    /* After stop was asked, once per worker, before its connection closes; NULL if none. */
    void (*finish)(void *wl, hj_txn_worker *w);
    /* Just before the worker's connection closes (after an info outcome, at exit, or when the
     * pool is freed): lets the workload drop what it built over it (a SQL session); NULL if
     * none. */
    void (*closing)(void *wl, hj_txn_worker *w);
    void *wl;
} hj_txn_workload;

/* Starts env->concurrency workers. *out is freed by hj_txn_pool_free. */
int hj_txn_pool_start(const hj_client_env *env, const hj_txn_workload *tw, hj_txn_pool **out,
                      mr_err *err);
/* Asks the workers to stop; on_done(ud) runs on env->loop once all have exited. */
void hj_txn_pool_stop(hj_txn_pool *p, void (*on_done)(void *ud), void *ud);
/* After on_done (or when start failed half-way: joins what runs). */
void hj_txn_pool_free(hj_txn_pool *p);

const hj_client_env *hj_txn_env(const hj_txn_worker *w);
/* True once stop was asked. */
bool hj_txn_stopping(const hj_txn_worker *w);

/* Opens a connection for the caller's own use (setup, final reads). */
int hj_txn_open(const hj_client_env *env, meridian **db, mr_err *err);
/* The worker's connection, opened on demand; NULL (and a short nap) when the cluster cannot be
 * reached. */
meridian *hj_txn_db(hj_txn_worker *w);

/* Records an invoke / a completion for the worker's process; an info completion retires the
 * process and closes the connection (a fresh process gets a fresh connection). `value` is
 * stolen. */
void hj_txn_invoke(hj_txn_worker *w, const char *f, json_t *value);
void hj_txn_complete(hj_txn_worker *w, jp_type type, const char *f, json_t *value);

/* Appends "time process what: code: libmeridian's message" to the run directory's
 * clients.log (the history keeps outcomes only; this keeps why). */
void hj_txn_log(hj_txn_worker *w, const char *what, int rc, meridian *db);

/* Appends "time process <printf line>" to clients.log (workloads over other APIs: SQL). */
void hj_txn_note(hj_txn_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The outcome of a commit's result code (see above). */
jp_type hj_txn_commit_outcome(int rc);
/* True for codes worth another attempt of the same operation before commit (nothing was
 * committed): aborted, unavailable. */
bool hj_txn_retryable(int rc);

/* A workload key: "r<range>/<kind>/<id>", where range = id mod env->keys (the data groups);
 * the split points that make range r its own group are "r01", "r02", ... (hj_split_at). */
void hj_txn_key(const hj_client_env *env, const char *kind, long long id, char *buf, size_t len);
/* The start and end of kind's keys in range r: [r<r>/<kind>/, r<r>/<kind>0). */
void hj_txn_range(int r, const char *kind, char *start, char *end, size_t len);

/* Waits the worker's pause between operations (about env->rate ops/s over all workers);
 * false when stop was asked meanwhile. */
bool hj_txn_pause(hj_txn_worker *w);
/* Waits before retry number `attempt` (0-based) of an operation, as meridian_run does: 5 ms
 * doubling to 1 s, half of it random ("equal jitter"), so rivals that collided do not collide
 * again in step; false when stop was asked meanwhile. Retries begin with the first attempt's
 * age (meridian_begin_aged), so the operation wins under wound-wait eventually. */
bool hj_txn_backoff(hj_txn_worker *w, unsigned attempt);

#endif

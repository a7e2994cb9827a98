/* The lock table of a tablet leader: shared and exclusive locks on keys and
 * key ranges, with wound-wait deadlock avoidance (Spanner §4.2.1; Rosenkrantz,
 * Stearns & Lewis 1978). Pure: no I/O, no clock, no allocation failures hidden.
 *
 * Rules:
 *  - S is compatible with S; every other pair of overlapping locks from two
 *    transactions conflicts. A point lock covers one key; a range lock covers
 *    [start, end) in byte order (end NULL = unbounded), so scans are protected
 *    from phantoms. A transaction's own locks never conflict with each other.
 *  - Age is the priority: a smaller `prio` (the transaction's start timestamp)
 *    is older; ties break by the smaller id.
 *  - Wound-wait: a request that conflicts with a younger, still-active holder
 *    wounds it (the younger transaction is aborted and its locks released at
 *    once); a request that conflicts with an older holder, or a prepared one
 *    (which can no longer abort), waits. So an active transaction never waits
 *    for a younger active one, and the waits-for graph has no cycle.
 *  - Waiters are granted oldest first; a new request does not overtake an
 *    older waiting request that it conflicts with.
 *  - Push: a prepared holder cannot be wounded here, but a two-phase commit's
 *    participant is prepared before its coordinator decides, and may be waiting
 *    at another group (its coordinator's locks, another participant's), so a
 *    wait for a younger prepared holder can close a cycle through other groups
 *    that no one table sees. Such holders are reported in tl_out.pushed: the
 *    caller asks their coordinators to wound them, which aborts them unless the
 *    decision to commit is already made (then they finish without waiting for
 *    anything). Every cycle of waits across tables contains such an edge (every
 *    other edge points to an older transaction), so none outlives its push
 *    (CockroachDB's transaction push, Spanner's wound delivered to every
 *    participant).
 *
 * Memory: the table copies keys; tl_out arrays are owned by the caller's
 * tl_out (free with tl_out_free). */
#ifndef TL_H
#define TL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"

typedef enum { TL_SHARED = 1, TL_EXCLUSIVE = 2 } tl_mode;

typedef enum {
    TL_GRANTED = 0, /* the lock is held */
    TL_WAIT,        /* queued; a later tl_out.granted entry names this request */
    TL_WOUNDED,     /* the transaction was wounded: abort it, then tl_release it */
} tl_result;

typedef enum { TL_ACTIVE = 0, TL_PREPARED, TL_WOUNDED_STATE } tl_txn_state;

/* What a call changed besides its own result. */
typedef struct tl_grant {
    uint64_t txn;
    uint64_t req; /* the id tl_acquire returned for the waiting request */
} tl_grant;

typedef struct tl_out {
    uint64_t *wounded; /* transactions wounded by this call: tell them to abort */
    size_t nwounded, cap_wounded;
    tl_grant *granted; /* waiting requests granted by this call */
    size_t ngranted, cap_granted;
    uint64_t *pushed; /* prepared holders an older request waits for: push their coordinators */
    size_t npushed, cap_pushed;
} tl_out;

void tl_out_reset(tl_out *o); /* empties, keeps capacity */
void tl_out_free(tl_out *o);

typedef struct tl_table tl_table;

tl_table *tl_new(void); /* NULL when out of memory */
void tl_free(tl_table *t);

/* A lock request. `end` NULL with `range` true means unbounded; with `range`
 * false the request locks the single key `start`. Keys up to TL_KEY_MAX bytes. */
#define TL_KEY_MAX (64 * 1024)
typedef struct tl_lock {
    tl_mode mode;
    bool range;
    const uint8_t *start;
    size_t start_len;
    const uint8_t *end;
    size_t end_len;
} tl_lock;

/* Acquires `lk` for transaction `txn` of age `prio` (the first call registers
 * the transaction; later calls must pass the same prio). On TL_GRANTED or
 * TL_WAIT, *req_id identifies the request. `out` collects wounds and grants
 * this call caused (it is not reset). Returns a tl_result, or -MR_EINVAL /
 * -MR_ENOMEM with err set for bad input. */
int tl_acquire(tl_table *t, uint64_t txn, int64_t prio, const tl_lock *lk, uint64_t *req_id,
               tl_out *out, mr_err *err);

/* Marks `txn` prepared: it can no longer be wounded. Fails with MR_EABORTED if it
 * was wounded, MR_ENOTFOUND if unknown, MR_EINVAL if it still waits for a lock. */
int tl_prepare(tl_table *t, uint64_t txn, mr_err *err);

/* Releases every lock and waiting request of `txn` and forgets it (commit,
 * abort, or after a wound). Grants that follow are added to `out`. */
void tl_release(tl_table *t, uint64_t txn, tl_out *out);

/* Introspection (tests, status). */
bool tl_known(const tl_table *t, uint64_t txn);
tl_txn_state tl_state(const tl_table *t, uint64_t txn);
size_t tl_held(const tl_table *t, uint64_t txn);    /* granted locks */
size_t tl_waiting(const tl_table *t, uint64_t txn); /* waiting requests */
size_t tl_count(const tl_table *t);                 /* all requests */

/* Checks the table's invariants: no two granted conflicting locks of different
 * transactions; no active transaction waits on a younger active holder; the
 * waits-for graph is acyclic. 0 or MR_ECORRUPT with a description. */
int tl_check(const tl_table *t, mr_err *err);

/* Negative controls for tests: deliberately broken variants that tl_check and
 * the property tests must catch. */
typedef enum {
    TL_CORRECT = 0,
    TL_MUTANT_NO_WOUND,      /* an older request waits for a younger holder */
    TL_MUTANT_IGNORE_RANGES, /* range locks conflict with nothing (phantoms) */
    TL_MUTANT_NO_PUSH,       /* younger prepared holders are not reported (tl_out.pushed) */
} tl_mutant;
void tl_set_mutant(tl_table *t, tl_mutant m);

#endif

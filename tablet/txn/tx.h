/* The timing rules of Spanner's transactions (Corbett et al., OSDI 2012, §4.1.2-§4.2.4) as
 * pure functions: no I/O, no clock reads, no allocation. The caller passes the TrueTime
 * interval it read (TT.now()) and the replica's timestamps; the functions say which
 * timestamp to use and whether a replica may act now. Shared by the simulator
 * (tests/sim/sim_txn.c) and the node (tablet/node/nd_txn*.c, nd_read.c), so both obey one
 * statement of the rules, and each rule is unit-tested at its edges (tests/txn/test_tx.c).
 *
 * Timestamps are int64 nanoseconds since the epoch, like tt_interval. TX_TS_INF stands for
 * "no bound" (a replica with no prepared transaction has t_tm_safe = +inf). Every function
 * saturates instead of overflowing. */
#ifndef TX_H
#define TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "truetime/tt.h"

#define TX_TS_INF INT64_MAX

/* ---- Safe time (§4.1.3) ---- */

/* t_tm_safe: one below the smallest prepare timestamp of the transactions this replica has
 * prepared but not yet seen decided (a prepared transaction may still commit at any s >= its
 * prepare timestamp), or TX_TS_INF when there are none. `prepare_ts` may be NULL when n = 0. */
int64_t tx_tm_safe(const int64_t *prepare_ts, size_t n);

/* t_safe = min(t_paxos_safe, t_tm_safe): a replica can serve a read at t iff t <= t_safe.
 * t_paxos_safe is the largest timestamp of an applied Paxos write (every later write gets a
 * larger one). */
int64_t tx_safe_time(int64_t paxos_safe, int64_t tm_safe);

/* ---- Snapshot reads and read-only transactions (§4.1.3, §4.2.2) ---- */

/* A replica returns a read at t only once TT.after(t) on its own clock, besides t <= t_safe.
 *
 * Why: in Spanner the leader lets no replica apply a commit record before its commit wait
 * is over (§4.2.1), so any data a read can see is already in the past. Here every replica
 * applies a record as soon as it learns it is chosen, while the leader may still be
 * waiting: a strong read at a replica whose clock runs ahead (within its bound) could
 * return a commit at s before s has passed, and a later strong read at a replica whose
 * clock runs behind, at a TT.now().latest still below s, would miss it -- two read-only
 * transactions out of real-time order (meridian-sim-txn found exactly this, G-single-realtime,
 * with a fast leader and a 50 ms bound). Waiting for TT.after(t) at the reader (at most 2ε,
 * overlapping the wait for safe time) makes everything a read returns older than true time
 * at its return, which is the guarantee the leader's commit wait gives in Spanner. */
bool tx_read_visible(tt_interval now, int64_t t);

typedef enum {
    TX_READ_STRONG = 0,      /* s_read = TT.now().latest (or LastTS at a caught-up leader) */
    TX_READ_EXACT_STALENESS, /* s_read = TT.now().latest - staleness */
    TX_READ_BOUNDED,         /* the freshest servable now, if no older than latest - staleness */
    TX_READ_AT,              /* s_read = ts */
} tx_read_mode;

typedef struct tx_read_bound {
    tx_read_mode mode;
    int64_t staleness_ns; /* EXACT_STALENESS, BOUNDED: >= 0 */
    int64_t ts;           /* AT: >= 1 */
} tx_read_bound;

/* What the serving replica knows about itself. */
typedef struct tx_replica_time {
    int64_t paxos_safe; /* largest applied Paxos timestamp (0: nothing applied) */
    int64_t tm_safe;    /* tx_tm_safe() of its prepared transactions; TX_TS_INF when none */
    /* It leads the group with a valid lease and has applied a record it proposed in its own
     * ballot (so every predecessor's write that can still count is applied: the slot the
     * core was to fill next when it won is not enough, see tests/sim/sim_txn.c
     * leader_records). Then a strong read with no prepared transaction may use LastTS, the
     * last applied timestamp, instead of TT.now().latest (§4.2.2): every acknowledged write
     * is applied there, and nothing later can get a smaller timestamp. */
    bool leader_caught_up;
} tx_replica_time;

typedef enum {
    TX_SERVE_NOW = 0, /* s_read <= t_safe and TT.after(s_read): read at s_read now */
    TX_SERVE_WAIT,    /* wait until t_safe reaches s_read and TT.after(s_read) (or try another
                         replica) */
    TX_SERVE_BEHIND,  /* bounded staleness: this replica's safe time is too old; go elsewhere */
    TX_SERVE_INVALID, /* a negative staleness, a timestamp below 1 */
} tx_serve;

/* Chooses the read timestamp for `b` at a replica whose TrueTime reads `now`, stores it in
 * *s_read (left 0 for BEHIND and INVALID), and says whether the replica can serve it now.
 * Bounded staleness reads at min(t_safe, TT.now().earliest - 1), the freshest timestamp
 * servable without waiting, and is BEHIND when that is older than latest - staleness. */
tx_serve tx_read_plan(const tx_read_bound *b, tt_interval now, const tx_replica_time *r,
                      int64_t *s_read);

/* A replica waiting with a read at s_read may serve it once its safe time reaches it and
 * TT.after(s_read) on its clock. */
bool tx_can_serve(int64_t s_read, tt_interval now, const tx_replica_time *r);

/* ---- Read-write transactions (§4.1.2, §4.2.1) ---- */

/* The commit timestamp a leader assigns: s = max(TT.now().latest, last_assigned + 1, every
 * prepare timestamp) -- above everything the leader assigned before (monotonicity across
 * its slots), no earlier than TT.now().latest (the start rule: s is not below the true time
 * of the commit request), and for two-phase commit not below any participant's prepare
 * timestamp. `prepare_ts` may be NULL when n = 0 (a single-group commit). */
int64_t tx_commit_ts(tt_interval now, int64_t last_assigned, const int64_t *prepare_ts, size_t n);

/* A participant's prepare timestamp: max(TT.now().latest, last_assigned + 1). */
int64_t tx_prepare_ts(tt_interval now, int64_t last_assigned);

/* Disjointness (§4.1.2): a leader may only assign s inside its lease, lease_start <= s <
 * lease_end, where lease_end is the true-time bound of the lease (px_status.lease_end) and
 * lease_start is above every timestamp of earlier leaders (0: not tracked). */
bool tx_ts_in_lease(int64_t s, int64_t lease_start, int64_t lease_end);

/* Commit wait (§4.1.2): no client may see a commit at s before TT.after(s), i.e. s < earliest:
 * then s has certainly passed in true time, and every transaction that starts later gets a
 * larger timestamp. */
bool tx_commit_wait_done(tt_interval now, int64_t s);

/* How much longer, on the local clock, commit wait for s has to run (0 when done): the
 * least d with TT.after(s) once the interval moved forward by d. A host re-checks
 * tx_commit_wait_done then (its bound may have grown meanwhile). */
int64_t tx_commit_wait_left(tt_interval now, int64_t s);

/* ---- Version garbage collection ---- */

/* The GC horizon: min(TT.now().earliest - retention, t_safe). Versions a read at or above it
 * needs are kept; it never passes safe time, so a replica can still apply every write it has
 * not seen (all have larger timestamps) and every prepared transaction (their commit
 * timestamps exceed t_tm_safe). Never below 0. */
int64_t tx_gc_horizon(tt_interval now, int64_t retention_ns, int64_t safe);

#endif

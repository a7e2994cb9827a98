/* The coordinator's side of two-phase commit (Spanner §4.2.1), as pure
 * bookkeeping with no I/O: which participant groups have voted, with which
 * prepare timestamps, and the verdict; and the codec of the decision record a
 * coordinator group keeps in its Paxos-replicated state.
 *
 * The node (tablet/node/nd_2pc.c) drives it: the coordinator group's leader
 * receives the client's commit with the participant list, takes its own
 * exclusive locks, collects a PREPARED vote (ok + prepare timestamp) from
 * every other participant's leader, and once all said yes commits at
 * s > max(prepare timestamps) (px_node_promise) and >= TT.now().latest (the
 * slot's stamp), logs the decision, waits until TT.after(s), then tells the
 * participants. Any "no", a wound before the decision, or a timeout aborts. */
#ifndef CO_H
#define CO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"

#define CO_MAX_PARTS 32 /* participant groups of one transaction, the coordinator's included */

typedef enum { CO_WAITING = 0, CO_COMMIT = 1, CO_ABORT = 2 } co_verdict;

typedef struct co_votes {
    uint64_t self; /* the coordinator group */
    uint64_t parts[CO_MAX_PARTS];
    uint32_t nparts;
    uint64_t voted;         /* bit i: parts[i] voted yes (the coordinator counts as voted) */
    bool refused;           /* someone voted no */
    int64_t max_prepare_ts; /* the largest prepare timestamp among the yes votes */
} co_votes;

/* Starts the tally: parts must hold self, no duplicates, no group 0, at most
 * CO_MAX_PARTS. MR_EINVAL with a message otherwise. */
int co_init(co_votes *v, uint64_t self, const uint64_t *parts, size_t nparts, mr_err *err);

/* One participant's vote; votes from non-participants and repeats are
 * ignored (a yes after a no changes nothing). Returns the verdict so far. */
co_verdict co_vote(co_votes *v, uint64_t from, bool ok, int64_t prepare_ts);

co_verdict co_verdict_of(const co_votes *v);

/* The decision record (big-endian, common/mr_codec.h): u8 commit, i64 ts, u32 nparts,
 * nparts x u64. */
typedef struct co_decision {
    bool commit;
    int64_t ts;
    uint32_t nparts;
    uint64_t parts[CO_MAX_PARTS];
} co_decision;

#define CO_DECISION_MAX (1 + 8 + 4 + 8 * CO_MAX_PARTS)

/* Encodes into buf (CO_DECISION_MAX bytes); returns the length. */
size_t co_decision_encode(const co_decision *d, uint8_t *buf);
/* MR_OK, or MR_ECORRUPT for a malformed record. */
int co_decision_decode(const uint8_t *buf, size_t len, co_decision *d, mr_err *err);

#endif

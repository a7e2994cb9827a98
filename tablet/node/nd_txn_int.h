/* Internals shared by the node's transaction modules (nd_txn.c, nd_txn_apply.c, nd_2pc.c,
 * nd_read.c, nd_gc.c): the transaction and prepared-state types, and the steps one module
 * asks of another. Not a public interface. */
#ifndef ND_TXN_INT_H
#define ND_TXN_INT_H

#include "coordinator/co.h"
#include "tablet/node/nd_int.h"

#define ND_SAFE_IDLE    (250 * MR_NS_PER_MS)
#define ND_TXN_IDLE     (10 * MR_NS_PER_S) /* a client that vanished */
#define ND_SNAPWAIT_MAX (2 * MR_NS_PER_S)
#define ND_VOTE_TIMEOUT (5 * MR_NS_PER_S) /* coordinator: votes must come by then */
#define ND_QUERY_EVERY  (1 * MR_NS_PER_S) /* participant: ask about a decision */
/* participant: the first question, this long after PREPARE applied (then every ND_QUERY_EVERY):
 * an abort that was lost on the way costs this, not a second */
#define ND_QUERY_FIRST   (200 * MR_NS_PER_MS)
#define ND_DELIVER_EVERY (500 * MR_NS_PER_MS) /* coordinator: resend an unacked commit */
#define ND_READ_MARGIN   (250 * MR_NS_PER_MS) /* a parked read is answered this early (at most) */
#define ND_PUSH_EVERY    (100 * MR_NS_PER_MS) /* participant: repeat a push (one was lost?) */
/* coordinator: a push (an older request waits for its locks) aborts a transaction still
 * waiting for votes only this long after its commit came (nd_txn_locked, "voting") */
#define ND_VOTING_GRACE (50 * MR_NS_PER_MS)

typedef enum {
    TXN_IDLE = 0,
    TXN_READ_WAIT,
    TXN_LOCKING,    /* commit: taking exclusive locks */
    TXN_VOTING,     /* coordinator: locks held, waiting for the participants' votes */
    TXN_COMMITTING, /* the commit record (single group, or coordinator) is proposed */
    TXN_WAITING,    /* applied; commit wait */
    TXN_PREPARING,  /* participant: PREPARE proposed */
    TXN_PREPARED,   /* participant: prepared, waiting for the decision */
    TXN_DECIDING,   /* participant: DECIDE proposed */
} txn_state;

/* Past the point of no return here: the lock table cannot wound it. */
static inline bool txn_sealed(txn_state s)
{
    return s == TXN_COMMITTING || s == TXN_WAITING || s == TXN_PREPARING || s == TXN_PREPARED ||
           s == TXN_DECIDING;
}

struct nd_txn {
    uint64_t id;
    int64_t prio;
    int64_t last_active;
    txn_state state;
    bool wounded;
    /* the request being served if has_reply; after its answer, still the connection of the
     * last request (notify_wounded) */
    net_reply_to reply_to;
    bool has_reply;
    uint8_t *key; /* a parked read: the key (klen bytes) */
    size_t klen;
    bool scan;    /* ... a scan of [key, end) */
    uint8_t *end; /* its end (elen bytes; 0: the range's end) */
    size_t elen;
    long limit;
    uint8_t *body; /* the commit record, while its locks are taken */
    size_t blen;
    uint32_t locks_pending;
    uint32_t nreads; /* reads served under locks at this leader */
    /* monotonic ns the commit record (single group, or COMMIT2) was proposed: its timestamp
     * is assigned then, or a little later if the log's window is full; commit wait runs from
     * there (commit_done) */
    int64_t wait_from;
    int64_t commit_ts;
    int64_t commit_before; /* deciding leader: commit below this timestamp or abort (0: none) */
    uv_timer_t *timer;     /* commit wait */
    /* Two-phase commit. */
    uint64_t coord;    /* the coordinator group; 0 = a single-group transaction */
    co_votes *co;      /* at the coordinator: the participants and their votes */
    int64_t commit_at; /* monotonic ns the commit request came */
    /* participant: the coordinator's abort came while PREPARE was in flight; DECIDE (abort) is
     * logged as soon as PREPARE applies (nd_txn_apply.c) */
    bool abort_decided;
    int64_t read_deadline; /* a parked read: monotonic ns its client stops waiting (0: unsaid) */
    int64_t pushed_at; /* participant: monotonic ns its coordinator was last asked to wound it */
    int64_t push_due;  /* coordinator, voting: pushed; aborted at this monotonic ns (0: not) */
    /* test-only (nd_fault.c, hold_prepare_ms): a PREPARE held back until held_until, as if
     * its replication were slow */
    uint8_t *held;
    size_t held_len;
    int64_t held_until;
    uint8_t *spans; /* the read locks taken here: per span u32 klen, key, u32 elen (or
                     * UINT32_MAX for a point read), end; carried by PREPARE */
    size_t spans_len, spans_cap;
    nd_group *g;
    nd_node *n;
    nd_txn *next;
};

struct nd_snapwait {
    net_reply_to reply_to;
    int64_t ts;
    int64_t need;  /* served once safe_ts reaches it (see snap_ready) */
    bool ahead;    /* ts is still ahead of TT.now().latest: need is not known yet */
    nd_enc result; /* the answer (has_result), held until TT.after(vis) */
    bool has_result;
    int64_t vis;
    int64_t deadline;
    uint8_t *key, *end; /* klen, elen bytes */
    size_t klen, elen;
    long limit; /* 0: a point read, else a scan */
    nd_snapwait *next;
};

struct nd_read_timer {
    uv_timer_t h; /* first: the handle's address is the struct's */
    nd_node *n;
    uint64_t gid;
};

/* A prepared, undecided transaction of this group, as its PREPARE record
 * left it in the MVCC store. */
struct nd_prepared {
    uint64_t txn, coord;
    int64_t ts;   /* the prepare timestamp */
    uint8_t *val; /* [i64 ts][u64 coord][u32 spans len][spans][u32 nwrites][writes] */
    size_t len;
    int64_t last_query; /* leader: monotonic ns it last asked the coordinator */
    nd_prepared *next;
};

/* A vote that reached the coordinator's leader before the client's commit. */
struct nd_vote {
    uint64_t txn, from;
    bool ok;
    int64_t ts, at;
    nd_vote *next;
};

/* A commit decision the coordinator's leader is delivering. */
struct nd_delivery {
    uint64_t txn;
    co_decision d;
    uint64_t acked; /* bit i: d.parts[i] has logged it */
    int64_t next_send;
    int tries;
    bool confirm; /* asked again before the decision is collected (nd_forget_step) */
    nd_delivery *next;
};

/* A 2PC message for a group this node hosts, delivered from the loop. */
struct nd_local {
    uint8_t type;
    uint8_t *buf; /* the encoded message (nd_peer.h) */
    size_t len;
    nd_local *next;
};

/* System records in a group's MVCC store live under keys no client can
 * write (client keys are NUL-free, these start with NUL): "\0p/<txn>" a
 * prepared transaction, "\0d/<txn>" a coordinator's decision. */
#define SYS_KEY_LEN 19

/* What applying one record asks of this node once the slot is stored. */
typedef struct rec_effect {
    uint8_t kind;
    uint64_t txn;
    bool skipped;   /* a record that changed nothing (a decision already made, ...) */
    bool deadline;  /* its commit deadline passed: aborted (ND_OP_TXN_BEFORE, _COMMIT2_BEFORE) */
    uint64_t coord; /* DECIDE: the coordinator group to acknowledge to */
    uint8_t *prep_val;
    size_t prep_len;
    co_decision d;    /* DECIDE: commit + ts */
    uint64_t *forgot; /* FORGET: the decisions it deletes, sorted (malloc'd) */
    size_t nforgot;
} rec_effect;

typedef struct apply_acc {
    mv_txn *txns;
    mv_write **owned; /* arrays to free */
    size_t nt, nowned;
    uint8_t *keys; /* SYS_KEY_LEN per record */
    mv_write *sys; /* one per record */
    uint8_t **bufs;
} apply_acc;

/* Steps one module asks of another, by the file that defines them (documented there). */

/* nd_txn.c */
int nd_raise_floor_from_store(nd_group *g, mr_err *err);
/* A participant (group from) acknowledges txn's commit decision to its coordinator. */
void nd_send_ack(nd_node *n, uint64_t txn, uint64_t coord, uint64_t from);
void nd_txn_finish(nd_node *n, nd_group *g, nd_txn *t);
nd_txn *nd_txn_find(nd_group *g, uint64_t id);
/* Sends e (consumed) as the answer to t's request, if one waits. */
void nd_txn_reply(nd_node *n, nd_txn *t, nd_enc e);
/* A CommitReply of group: committed at ts after wait_ns of commit wait, or (prepared) a
 * participant prepared at ts. */
nd_enc nd_commit_reply(uint64_t group, int64_t ts, bool prepared, int64_t wait_ns);
nd_enc nd_read_key(nd_group *g, const void *key, size_t klen, int64_t ts, bool with_ts,
                   int64_t *vis);
void nd_txn_locked(nd_node *n, nd_group *g, nd_txn *t);
/* Aborts t here: answers its request, releases its locks, forgets it. */
void nd_txn_abort(nd_node *n, nd_group *g, nd_txn *t, const char *why, tl_out *out);
/* nd_txn_abort for t's commit deadline (ND_DEADLINE_PASSED), counted. */
void nd_txn_deadline_abort(nd_node *n, nd_group *g, nd_txn *t);
void nd_handle_out(nd_node *n, nd_group *g, tl_out *out);
/* The commit record's writes (encode_writes, nd_txn.c); *w is the caller's to free. */
int decode_writes(const uint8_t *b, size_t len, mv_write **w, size_t *n);
void nd_txn_commit_wait(nd_node *n, nd_txn *t);
bool nd_leads_with_log(nd_node *n, nd_group *g);

/* nd_txn_apply.c */
void nd_sys_key(char *k, char kind, uint64_t txn);
nd_prepared *nd_prepared_find(nd_group *g, uint64_t txn);
int nd_prepared_writes(const nd_prepared *p, mv_write **w, size_t *nw);
void nd_prepared_clear(nd_group *g);
int nd_load_prepared(nd_group *g, mr_err *err);
bool nd_decision_lookup(nd_group *g, uint64_t txn, co_decision *d);
bool nd_decision_forgotten(nd_group *g, uint64_t txn);

/* nd_2pc.c */
bool nd_px_is_leader(const nd_group *g);
/* Coordinator leader: logs "aborted" as txn's decision unless one is logged already (the
 * first decision logged wins), so late votes and questions find it. */
void nd_propose_abort2(nd_node *n, nd_group *g, uint64_t txn);
/* Coordinator leader: an older request waits for t's locks (a push, here or from a
 * participant). Aborts t unless its votes are all that it waits for (TXN_VOTING): then it
 * gets until ND_VOTING_GRACE after its commit came (nd_txn_locked). */
void nd_push_coordinator(nd_node *n, nd_group *g, nd_txn *t);
void nd_send_vote(nd_node *n, nd_group *g, uint64_t txn, uint64_t coord, bool ok, int64_t ts);
/* Participant leader: an older transaction waits here for prepared t's locks; ask t's
 * coordinator to wound it (rate-limited per transaction). */
void nd_push(nd_node *n, nd_group *g, nd_txn *t);
/* The coordinator (group coord) sends txn's decision to participant group to. */
void nd_send_decision(nd_node *n, uint64_t txn, uint64_t to, uint64_t coord, bool commit,
                      int64_t ts);
void nd_send_decisions(nd_node *n, nd_group *g, uint64_t txn, const co_votes *co, bool commit,
                       int64_t ts);
void nd_deliveries_clear(nd_group *g);
void nd_votes_clear(nd_group *g);
void nd_lock_prepared(nd_node *n, nd_group *g);
bool nd_coordinator_known(const nd_node *n, uint64_t coord, uint64_t self, const uint64_t *parts,
                          size_t nparts);
void nd_refuse_2pc(nd_node *n, nd_group *g, uint64_t txn, const uint64_t *parts, size_t nparts);
int nd_coordinate(nd_group *g, nd_txn *t, const uint64_t *parts, size_t nparts, mr_err *err);
void nd_on_status(nd_node *n, const net_message *m, nd_group *g, uint64_t txn, int64_t prio);
void nd_tick_2pc(nd_node *n, nd_group *g, int64_t now);

/* nd_read.c */
void nd_on_read_timer_closed(uv_handle_t *h);
void nd_snapwait_free(nd_snapwait *w);
int64_t nd_safe_time(const nd_group *g);
/* Does g hold key, or (scan) every key of [key, end) (elen 0: to +infinity)? */
bool nd_span_in_range(const nd_group *g, const void *key, size_t klen, bool scan, const void *end,
                      size_t elen);
void nd_reply_wrong_range(nd_node *n, net_reply_to to, const nd_group *g, const void *key,
                          size_t klen);
/* A read at ts: a point read of key, or (scan) one page of [key, end) (klen 0: from the
 * range's start; elen 0: to its end) of at most limit rows. */
nd_enc nd_read_at(nd_group *g, const void *key, size_t klen, bool scan, const void *end,
                  size_t elen, long limit, int64_t ts, int64_t *vis);
void nd_serve_snapwaits(nd_node *n, nd_group *g, bool expire);
void nd_propose_safe(nd_node *n, nd_group *g);
void nd_ask_for_safe_time(nd_node *n, nd_group *g, bool answered);
void nd_on_snapread(nd_node *n, const net_message *m, const Meridian__SnapReadRequest *o);

/* nd_gc.c */
void nd_count_decisions(nd_group *g);
bool nd_stage_forget(nd_group *g, apply_acc *a, rec_effect *fx, size_t i, int64_t ts,
                     const uint8_t *b, size_t bl);
void nd_decisions_applied(nd_group *g, const rec_effect *fx, size_t nrec);
void nd_forget_ready_add(nd_group *g, uint64_t txn);
bool nd_status_forgotten(nd_node *n, nd_group *g, uint64_t txn, int64_t prio);
void nd_forget_step(nd_node *n, nd_group *g, int64_t now);
void nd_gc_step(nd_node *n, nd_group *g, int64_t now);

#endif

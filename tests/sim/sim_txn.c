/* meridian-sim-txn: transactions over the simulated world of sim_world.c, checked for strict
 * serializability (real-time order included) by the project's Elle list-append checker.
 *
 * Every replica of every group applies its chosen log to a real MVCC store (tablet/mvcc, an
 * SQLite ":memory:" database, rebuilt by the core's replay after a crash) and keeps its
 * safe time and its two-phase commit state (prepared transactions, coordinator decisions);
 * each group leader runs the real wound-wait lock table (tablet/lock). The timing rules are
 * tablet/txn's: safe time, read timestamps, commit wait, the GC horizon.
 *
 * Clients run two kinds of transactions over a few keys per group, every appended value
 * unique, recorded in a Jepsen history (jepsen/history.h):
 *  - read-write (Spanner §4.2.1): reads take shared locks at the leader of the key's group and
 *    see the latest committed list; appends are buffered (each needs the key's current list,
 *    read under a lock first). One group: at commit the leader takes exclusive locks, marks
 *    the transaction prepared, and proposes one commit record ('C') with the new lists; its
 *    timestamp is its slot's; once applied at the leader, commit wait runs until TT.after(s),
 *    then the locks go and the client hears ok. Several groups: two-phase commit as the node
 *    runs it (tablet/node/nd_2pc.c): the client sends the commit to every participant's
 *    leader; each participant takes its exclusive locks, logs PREPARE ('P': its writes and
 *    read keys) at its prepare timestamp and votes to the coordinator group (one of the
 *    participants); the coordinator's leader takes its locks, counts the votes
 *    (coordinator/co.h), promises to stamp its next slot above every prepare timestamp
 *    (px_node_promise), logs COMMIT2 ('K': its writes and the decision) at s, waits until
 *    TT.after(s), answers the client and sends the decision; each participant logs DECIDE
 *    ('D'), applies the prepared writes at s and releases its locks. A no vote, a wound before
 *    the decision or a vote timeout aborts. Every 2PC state is in the logs: a new participant
 *    leader re-takes the locks of prepared transactions, a prepared participant that hears
 *    nothing asks the coordinator group, whose leader answers from its decision or logs
 *    ABORT2 ('A') when it knows nothing; the first decision logged wins.
 *  - read-only, lock-free at *any* replica (followers and the spare host included, each with
 *    its own clock error), over keys of every group, at s_read = TT.now().latest of the
 *    serving host, once every group's safe time there -- min(t_paxos_safe, t_tm_safe), the
 *    latter held below the prepare timestamps of undecided transactions -- reaches s_read
 *    (§4.2.2). An idle leader proposes a SAFE record every SAFE_EVERY.
 * A transaction whose commit may or may not be chosen (its leader crashed or lost
 * leadership, the client timed out) is recorded info, never ok or fail; one that certainly
 * did not commit is fail. Leaders of participants and coordinators are crashed on purpose
 * between PREPARE and COMMIT during the fault phase.
 *
 * Checks: Elle on the history; every snapshot read against the committed versions at its
 * timestamp, when served and again at the end; atomicity (every participant of a committed
 * two-phase commit applied its writes at the coordinator's s, none of an aborted one did,
 * clients' ok and fail agree, and every caught-up replica's store holds exactly the
 * committed appends); after the heal no replica may keep a prepared transaction. As it
 * runs: no replica applies a write at or below the safe time it declared, and no leader
 * grants a lock over a prepared transaction's.
 *
 * With --clocks beyond (clocks lying beyond the bound) only real-time order may suffer:
 * real-time cycles are tallied, anything else is a violation.
 *
 * Negative controls (--break, each must be caught): skip-commit-wait, no-read-wait,
 * no-safe-wait, no-read-locks, info-as-fail, early-leader (see README.md); for two-phase
 * commit: no-promise (the coordinator commits at its slot's stamp, not above the prepare
 * timestamps), forget-prepared (a participant group drops its prepared transactions on a
 * leader change), no-relock (a new participant leader does not re-take their locks),
 * no-tm-safe (prepared transactions do not hold safe time), no-ts-floor (a group's stamps
 * need not exceed the commit timestamps it applied). */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "coordinator/co.h"
#include "jepsen/elle.h"
#include "jepsen/history.h"
#include "tablet/lock/tl.h"
#include "tablet/mvcc/mv.h"
#include "tablet/txn/tx.h"
#include "tests/sim/sim_world.h"

#define KEYS_PER_GROUP 3
#define NKEYS          (MAX_GROUPS * KEYS_PER_GROUP)
#define MAX_OPS        4
#define SAFE_EVERY     (20 * MS) /* an idle leader's SAFE record period */
#define GC_EVERY       (200 * MS)
#define RETENTION      (800 * MS) /* short, so GC runs during the seed */
#define RW_TIMEOUT     (3000 * MS)
#define RO_TIMEOUT     (1000 * MS)
#define VOTE_TIMEOUT   (1000 * MS) /* the coordinator aborts without every vote (node: 5 s) */
#define QUERY_EVERY    (300 * MS)  /* a prepared participant asks (node: 1 s) */
#define DELIVER_EVERY  (100 * MS)  /* a commit decision is resent until acknowledged */
#define TICK_2PC       (50 * MS)

/* Clock errors: every host's wanders inside the bound (as in meridian-sim); or h1's is pinned
 * near the top of its bound (its timestamps run ahead of everyone's clock, yet its interval
 * still contains true time); or, besides, every other host's near the bottom; or (beyond) h1's
 * pinned 3 bounds fast and h2's 2 bounds slow: clocks that lie, which only real-time order
 * may suffer from (serializability must hold under any clock). */
enum { CLOCKS_WANDER = 0, CLOCKS_FAST_HOST, CLOCKS_SPREAD, CLOCKS_BEYOND };

typedef struct txn_opts {
    int clients;
    int clocks;   /* CLOCKS_* */
    double cross; /* share of read-write transactions over several groups */
    double aim;   /* chance of an aimed crash between PREPARE and COMMIT, per prepare */
    int stale;    /* percent of read-only transactions that are stale reads */
    bool skip_commit_wait, no_safe_wait, no_read_locks, no_read_wait, info_as_fail;
    bool early_leader, no_promise, forget_prepared, no_relock, no_tm_safe, no_ts_floor;
    bool promise_reads; /* a ready leader serves reads by promising (the node's strong reads) */
    const char *history_dir; /* where a failing seed's history goes (JSON lines) */
} txn_opts;

/* ---------------------------------------------------------------- state */

typedef enum {
    T_NEW,        /* not yet invoked */
    T_ACTIVE,     /* running micro-ops at the leaders */
    T_LOCKWAIT,   /* waiting for a lock (part.wait_*) */
    T_COMMITTING, /* commit record proposed (one group), or commit sent (several) */
    T_WAITING,    /* one group: applied at the leader at commit_ts; commit wait */
    T_RO_WAIT,    /* read-only: waiting for safe time and TT.after(s_read) */
    T_DONE,
    T_NSTATES
} txn_state;

/* The allowed transitions, checked on every one (a bit per target state). */
static const unsigned txn_next[T_NSTATES] = {
    [T_NEW] = 1u << T_ACTIVE | 1u << T_RO_WAIT,
    [T_ACTIVE] = 1u << T_LOCKWAIT | 1u << T_COMMITTING | 1u << T_DONE,
    [T_LOCKWAIT] = 1u << T_ACTIVE | 1u << T_DONE,
    [T_COMMITTING] = 1u << T_WAITING | 1u << T_DONE,
    [T_WAITING] = 1u << T_DONE,
    [T_RO_WAIT] = 1u << T_DONE,
};

/* A read-write transaction at one group's leader table (server side: it outlives the
 * client's interest, e.g. a prepared participant after the client timed out). Valid only
 * while that table is the one of epoch `epoch`. */
typedef enum {
    P_NONE,       /* never touched this group */
    P_OPEN,       /* micro-ops (reads under shared locks) */
    P_LOCKING,    /* commit received: taking exclusive locks */
    P_VOTING,     /* coordinator: locked, collecting votes */
    P_PREPARING,  /* participant: PREPARE proposed */
    P_PREPARED,   /* participant: PREPARE applied here; voted */
    P_DECIDING,   /* participant: DECIDE proposed */
    P_COMMITTING, /* one group 'C', or coordinator 'K', proposed */
    P_WAITING,    /* coordinator: COMMIT2 applied, commit wait */
    P_GONE,       /* this leader table is done with it */
} part_state;

typedef struct part {
    part_state st;
    int h;          /* the leader's host */
    uint64_t epoch; /* ... and its leader table */
    int held[KEYS_PER_GROUP];
    int lock_step;
    bool lockwait;
    int wait_key, wait_mode;
    co_votes co;         /* coordinator */
    uint32_t early_mask; /* coordinator: votes before the commit (bit per group) */
    bool early_ok[MAX_GROUPS];
    int64_t early_ts[MAX_GROUPS];
    int64_t last_query, decide_at;
    uint64_t acked; /* coordinator: participants that logged the commit (bit per group) */
    int tries;
    bool delivering;
    int64_t applied_ts; /* the first replica to apply this group's log applied the writes at */
    bool forgotten;     /* --break forget-prepared: the group dropped its prepared state */
} part;

typedef struct micro_op {
    bool append;
    int key; /* global key number: group * KEYS_PER_GROUP + i */
    int64_t v;
} micro_op;

typedef struct keylist {
    int64_t *v;
    size_t n;
} keylist;

typedef struct txn {
    uint64_t id;
    int client;
    int64_t process;
    bool ro;
    jp_type outcome; /* what the client heard (T_DONE) */
    txn_state state;
    int g, h;     /* read-write: the coordinator (or only) group; read-only: the host */
    uint64_t gen; /* read-only: the serving host's incarnation; one group: the leader's */
    int nops, next;
    micro_op op[MAX_OPS];
    keylist read[MAX_OPS]; /* what each read returned */
    keylist cur[NKEYS];    /* read-write: current list per key (with own appends) */
    bool known[NKEYS];     /* cur[k] has been read */
    bool written[NKEYS];   /* cur[k] carries own appends */
    int nparts;
    part part[MAX_GROUPS];
    int waiting_g;   /* micro-op lock wait: the group */
    uint8_t decided; /* the coordinator group's log: 0 nothing, 1 commit, 2 abort */
    int64_t dec_s;
    int64_t prio, commit_ts, s_read;
    tx_read_bound bound; /* read-only: strong (in the history), or stale (checked apart) */
} txn;

typedef struct lead {
    bool active;
    uint64_t epoch;
    px_ballot ballot;
    uint64_t marker;      /* proposal id of its own first SAFE record (0: none yet) */
    int64_t marker_at;    /* when it was proposed */
    bool marker_applied;  /* ... and applied here: the predecessors' log is all in */
    uint64_t next_at_win; /* the slot the core was to fill next when it won (early-leader) */
    tl_table *tl;
    int64_t last_propose;
    int64_t lease_end; /* the furthest lease end this leadership had after any step */
} lead;

/* A prepared, undecided transaction in a replica's state (from a PREPARE record). */
typedef struct prep {
    uint64_t txn;
    int coord;
    int64_t ts;    /* the prepare timestamp */
    uint8_t rkeys; /* read keys (bit per key of the group) */
    uint8_t *w;    /* its writes as in the record: u32 n, then n (key, value) */
    size_t wlen;
} prep;

typedef struct decision {
    uint64_t txn;
    bool commit;
    int64_t s;
} decision;

typedef struct rep {
    mv_store *mv;
    int64_t paxos_safe; /* largest applied timestamp */
    prep *prep;
    size_t nprep;
    decision *dec; /* coordinator group: the first decision logged per transaction */
    size_t ndec;
} rep;

typedef struct client {
    int64_t process;
    txn *cur; /* outstanding transaction, NULL when idle */
} client;

/* The committed versions of one key, in apply order, for checking snapshot reads. */
typedef struct version {
    int64_t ts;
    keylist list;
} version;

typedef struct oracle_key {
    version *v;
    size_t n;
} oracle_key;

/* A two-phase commit message between leaders (to every replica of a group; only a ready
 * leader acts). */
enum { M_VOTE = 1, M_QUERY, M_DECISION, M_ACK };

typedef struct msg {
    int type;
    uint64_t txn;
    int from_g, to_g, to_h;
    uint64_t to_gen;
    bool ok; /* VOTE: yes; DECISION: commit */
    int64_t ts;
} msg;

typedef struct app {
    const txn_opts *o;
    oracle_key *oracle;               /* per key */
    uint64_t oracle_upto[MAX_GROUPS]; /* slots recorded into it */
    jp_history hist;
    txn **txns;
    size_t ntxns, cap;
    msg *msgs;
    size_t nmsgs, msgcap;
    client *clients;
    int nclients;
    int64_t next_process, next_value;
    uint64_t next_epoch;
    lead lead[MAX_HOSTS][MAX_GROUPS];
    rep rep[MAX_HOSTS][MAX_GROUPS];
    long ok_rw, ok_ro, fail, info, wounds, safe_records, stale, stale_reads, behind;
    long below_prepare;
    long ok_2pc, commits_2pc, aborts_2pc, prepares, crashes_aimed, queries, abort_logged, relocks;
} app;

enum {
    A_STEP = 1,
    A_RESUME,
    A_COMMIT_WAIT,
    A_TIMEOUT,
    A_CLIENT,
    A_SAFE_TICK,
    A_MARKER,
    A_GC_TICK,
    A_COMMIT_AT, /* app_id: txn << 4 | group: the client's commit reaches that group */
    A_PART_LOCK, /* app_id: txn << 4 | group: an exclusive lock was granted there */
    A_VOTE_TIMEOUT,
    A_COORD_WAIT, /* coordinator commit wait */
    A_MSG,        /* app_id: index into msgs */
    A_2PC_TICK,   /* app_id: group */
};

static long tot_stale_reads, tot_behind;
/* --clocks beyond: seeds whose only anomalies need real-time order, and how many of each. */
static long tot_rt_seeds;
static long tot_promise_reads; /* --promise-reads: group reads ready only by the promise */
static struct {
    char name[40];
    long n;
} rt_kinds[16];
static int n_rt_kinds;

static void rt_kind_add(const char *name)
{
    int i = 0;
    while (i < n_rt_kinds && strcmp(rt_kinds[i].name, name))
        i++;
    if (i == n_rt_kinds) {
        if (n_rt_kinds == 16)
            return;
        snprintf(rt_kinds[n_rt_kinds++].name, sizeof rt_kinds[0].name, "%s", name);
    }
    rt_kinds[i].n++;
}
static long tot_ok_rw, tot_ok_ro, tot_fail, tot_info, tot_wounds, tot_stale, tot_anomalies,
    tot_unknown;
static long tot_ok_2pc, tot_commits_2pc, tot_aborts_2pc, tot_prepares, tot_crashes_aimed,
    tot_queries, tot_abort_logged, tot_relocks, tot_below_prepare;

static app *A(world *w)
{
    return w->app_state;
}

static const txn_opts *O(world *w)
{
    return A(w)->o;
}

static void app_event(world *w, int kind, uint64_t id, int64_t delay)
{
    sim_ev ev = {.t = w->now + delay, .kind = EV_APP, .app_kind = kind, .app_id = id};
    push_ev(w, ev);
}

static int64_t net_delay(void)
{
    return rnd_range(MS / 5, 3 * MS);
}

/* ---------------------------------------------------------------- encodings */

static void key_name(int key, char *buf, size_t n)
{
    snprintf(buf, n, "g%d.k%d", key / KEYS_PER_GROUP, key % KEYS_PER_GROUP);
}

/* A list value in the store: little-endian int64s. */
static uint8_t *list_encode(const keylist *l, size_t *len)
{
    *len = l->n * 8;
    uint8_t *b = xcalloc(1, *len);
    for (size_t i = 0; i < l->n; i++)
        for (int k = 0; k < 8; k++)
            b[i * 8 + (size_t)k] = (uint8_t)((uint64_t)l->v[i] >> (8 * k));
    return b;
}

static void list_decode(const uint8_t *b, size_t len, keylist *l)
{
    l->n = len / 8;
    l->v = xcalloc(l->n, sizeof *l->v);
    for (size_t i = 0; i < l->n; i++) {
        uint64_t x = 0;
        for (int k = 7; k >= 0; k--)
            x = x << 8 | b[i * 8 + (size_t)k];
        l->v[i] = (int64_t)x;
    }
}

static void list_copy(keylist *dst, const keylist *src)
{
    free(dst->v);
    dst->n = src->n;
    dst->v = xcalloc(src->n + 1, sizeof *dst->v);
    if (src->n)
        memcpy(dst->v, src->v, src->n * sizeof *src->v);
}

static void list_push(keylist *l, int64_t v)
{
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = v;
}

static json_t *list_json(const keylist *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_integer(l->v[i]));
    return a;
}

/* Records of a slot: 'S' (SAFE, no writes) or 'C' u64 txn, u32 n, then n times
 * (u16 key length, key, u32 value length, value). */
typedef struct wbuf {
    uint8_t *b;
    size_t n, cap;
} wbuf;

static void wb_put(wbuf *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->b = xrealloc(w->b, w->cap);
    }
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void wb_uint(wbuf *w, uint64_t v, int bytes)
{
    uint8_t b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    wb_put(w, b, (size_t)bytes);
}

static bool rd_uint(const uint8_t **p, const uint8_t *end, int bytes, uint64_t *v)
{
    if (end - *p < bytes)
        return false;
    *v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        *v = *v << 8 | (*p)[i];
    *p += bytes;
    return true;
}

/* A write set in a record: u32 n, then n times (u16 key length, key, u32 value length,
 * value): the written keys of group g with the transaction's new lists. */
static void put_writes(wbuf *b, const txn *t, int g)
{
    int n = 0;
    for (int i = 0; i < KEYS_PER_GROUP; i++)
        n += t->written[g * KEYS_PER_GROUP + i];
    wb_uint(b, (uint64_t)n, 4);
    for (int i = 0; i < KEYS_PER_GROUP; i++) {
        int k = g * KEYS_PER_GROUP + i;
        if (!t->written[k])
            continue;
        char name[32];
        key_name(k, name, sizeof name);
        size_t vl;
        uint8_t *v = list_encode(&t->cur[k], &vl);
        wb_uint(b, strlen(name), 2);
        wb_put(b, name, strlen(name));
        wb_uint(b, vl, 4);
        wb_put(b, v, vl);
        free(v);
    }
}

/* Decodes a write set into a malloc'd array borrowing from the buffer; *q moves past it. */
static bool get_writes(const uint8_t **q, const uint8_t *end, mv_write **ws, size_t *nw)
{
    uint64_t n;
    *ws = NULL;
    *nw = 0;
    if (!rd_uint(q, end, 4, &n) || n > KEYS_PER_GROUP)
        return false;
    *ws = xcalloc(n + 1, sizeof **ws);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t kl, vl;
        if (!rd_uint(q, end, 2, &kl) || end - *q < (ptrdiff_t)kl)
            return false;
        (*ws)[i] = (mv_write){.op = MV_PUT, .key = *q, .key_len = kl};
        *q += kl;
        if (!rd_uint(q, end, 4, &vl) || end - *q < (ptrdiff_t)vl)
            return false;
        (*ws)[i].value = *q;
        (*ws)[i].len = vl;
        *q += vl;
    }
    *nw = n;
    return true;
}

static void txn_to(world *w, txn *t, txn_state next)
{
    if (!(txn_next[t->state] & 1u << next))
        violate(w, "txn %" PRIu64 ": state %d -> %d is not a transition", t->id, t->state, next);
    t->state = next;
}

/* ---------------------------------------------------------------- history */

static json_t *txn_value(const txn *t, bool with_reads)
{
    json_t *a = json_array();
    for (int i = 0; i < t->nops; i++) {
        char k[32];
        key_name(t->op[i].key, k, sizeof k);
        if (t->op[i].append)
            json_array_append_new(a, json_pack("[s, s, I]", "append", k, (json_int_t)t->op[i].v));
        else
            json_array_append_new(a, json_pack("[s, s, o]", "r", k,
                                               with_reads ? list_json(&t->read[i]) : json_null()));
    }
    return a;
}

static void record(world *w, int64_t process, jp_type type, json_t *value)
{
    mr_err err = {0};
    if (jp_history_record(&A(w)->hist, process, type, "txn", NULL, value, w->now - T0, &err))
        violate(w, "history: %s", mr_err_msg(&err));
}

/* The client hears the outcome. An info retires the process (Jepsen): the client goes on
 * under a new one. */
static void finish_txn(world *w, txn *t, jp_type type)
{
    if (t->state == T_DONE)
        return;
    app *a = A(w);
    txn_to(w, t, T_DONE);
    if (type == JP_INFO && a->o->info_as_fail) /* negative control: claims what it cannot know */
        type = JP_FAIL;
    t->outcome = type;
    if (t->bound.mode == TX_READ_STRONG)
        record(w, t->process, type, txn_value(t, type == JP_OK));
    if (type == JP_OK)
        t->ro ? a->ok_ro++ : a->ok_rw++;
    else if (type == JP_FAIL)
        a->fail++;
    else
        a->info++;
    client *c = &a->clients[t->client];
    if (type == JP_INFO)
        c->process = a->next_process++;
    c->cur = NULL;
    trace(w, "txn %" PRIu64 " %s: %s", t->id, t->ro ? "ro" : "rw", jp_type_name(type));
    if (!w->healed)
        app_event(w, A_CLIENT, (uint64_t)t->client, rnd_range(MS, 30 * MS));
}

/* ---------------------------------------------------------------- leaders and locks */

static lead *lead_of(world *w, int h, int g)
{
    return &A(w)->lead[h][g];
}

static void lead_drop(world *w, int h, int g, bool crashed);

/* May the leader table of (h, g) serve transactions now? It leads in the table's ballot
 * with a valid lease and its first own record is applied (see leader_records). */
static bool lead_ready(world *w, int h, int g)
{
    if (h < 0)
        return false;
    lead *l = lead_of(w, h, g);
    replica *r = &w->hosts[h].r[g];
    if (!l->active || !w->hosts[h].up || !r->node)
        return false;
    px_status st;
    px_node_status(r->node, &st);
    return st.state == PX_LEADER && px_ballot_cmp(st.ballot, l->ballot) == 0 &&
           px_node_lease_valid(r->node, host_tt(w, h)) &&
           (O(w)->early_leader ? r->app.applied + 1 >= l->next_at_win : l->marker_applied);
}

static txn *txn_by_id(world *w, uint64_t id)
{
    return id >= 1 && id <= A(w)->ntxns ? A(w)->txns[id - 1] : NULL;
}

/* The transaction's state at group g, if the leader table (h, g) holds it. */
static part *part_here(world *w, txn *t, int g, int h)
{
    if (!t || t->ro || g < 0 || g >= w->ngroups || h < 0)
        return NULL;
    part *p = &t->part[g];
    lead *l = lead_of(w, h, g);
    return p->st != P_NONE && p->st != P_GONE && p->h == h && l->active && p->epoch == l->epoch
               ? p
               : NULL;
}

static bool two_phase(const txn *t)
{
    return t->nparts > 1;
}

static void lock_out(world *w, int h, int g, tl_out *out);

/* The leader table (h, g) is done with t: its locks go. */
static void part_release(world *w, txn *t, int g)
{
    part *p = &t->part[g];
    if (!part_here(w, t, g, p->h)) {
        if (p->st != P_NONE)
            p->st = P_GONE;
        return;
    }
    p->st = P_GONE;
    lead *l = lead_of(w, p->h, g);
    tl_out out = {0};
    tl_release(l->tl, t->id, &out);
    lock_out(w, p->h, g, &out);
    tl_out_free(&out);
}

/* The client gives up before its commit (or a one-group commit failed for sure): every
 * group it touched drops it. */
static void client_abort(world *w, txn *t, jp_type outcome)
{
    finish_txn(w, t, outcome);
    for (int g = 0; g < w->ngroups; g++) /* a group its commit reached decides for itself */
        if (t->part[g].st == P_OPEN || (!two_phase(t) && t->part[g].st != P_NONE))
            part_release(w, t, g);
}

static void send_group(world *w, int from_h, int to_g, msg m);
static void coord_abort(world *w, txn *t);
static void part_lock_step(world *w, txn *t, int g);

/* Participant g cannot prepare: it drops the transaction and votes no. */
static void part_refuse(world *w, txn *t, int g)
{
    int h = t->part[g].h;
    part_release(w, t, g);
    send_group(w, h, t->g,
               (msg){.type = M_VOTE, .txn = t->id, .from_g = g, .to_g = t->g, .ok = false});
}

/* t was wounded at (h, g): it aborts there (it was not prepared: a prepared transaction
 * cannot be wounded). */
static void wounded(world *w, txn *t, int g)
{
    part *p = &t->part[g];
    trace(w, "txn %" PRIu64 " wounded at g%d", t->id, g);
    if (p->st == P_OPEN && (t->state == T_COMMITTING || t->state == T_DONE))
        part_release(w, t, g); /* its commit, when it comes, finds nothing here: no */
    else if (p->st == P_OPEN)
        client_abort(w, t, JP_FAIL);
    else if (p->st == P_LOCKING && g != t->g)
        part_refuse(w, t, g);
    else if ((p->st == P_LOCKING || p->st == P_VOTING) && g == t->g)
        coord_abort(w, t);
    else
        violate(w, "txn %" PRIu64 " wounded at g%d in state %d", t->id, g, p->st);
}

/* Wounds and grants of one lock-table call: wounded transactions abort; granted waiters
 * resume. */
static void lock_out(world *w, int h, int g, tl_out *out)
{
    lead *l = lead_of(w, h, g);
    for (size_t i = 0; i < out->nwounded; i++) {
        txn *t = txn_by_id(w, out->wounded[i]);
        A(w)->wounds++;
        tl_release(l->tl, out->wounded[i], out);
        if (part_here(w, t, g, h))
            wounded(w, t, g);
    }
    for (size_t i = 0; i < out->ngranted; i++) {
        txn *t = txn_by_id(w, out->granted[i].txn);
        part *p = part_here(w, t, g, h);
        if (!p || !p->lockwait)
            continue;
        p->lockwait = false;
        p->held[p->wait_key] = p->wait_mode;
        if (t->state == T_LOCKWAIT && t->waiting_g == g && p->st == P_OPEN) {
            txn_to(w, t, T_ACTIVE);
            app_event(w, A_RESUME, t->id, 0);
        } else if (p->st == P_LOCKING) {
            app_event(w, A_PART_LOCK, t->id << 4 | (uint64_t)g, 0);
        }
    }
    tl_out_reset(out);
    mr_err err = {0};
    if (l->tl && tl_check(l->tl, &err))
        violate(w, "h%d g%d lock table: %s", h + 1, g, mr_err_msg(&err));
}

/* Leadership of (h, g) ended (deposed, abdicated, crashed): its lock table goes, and with
 * it every transaction state it held. What the client hears: a transaction whose commit
 * record was proposed may still commit (info); one applied and in commit wait has committed
 * and is acknowledged when the wait ends, unless the host crashed; a coordinator that had
 * not proposed its decision lets nobody commit (fail: a later leader knows nothing of it
 * and aborts it); a prepared participant stays prepared in the log. */
static void lead_drop(world *w, int h, int g, bool crashed)
{
    lead *l = lead_of(w, h, g);
    if (!l->active)
        return;
    trace(w, "h%d g%d leader table dropped%s", h + 1, g, crashed ? " (crash)" : "");
    for (size_t i = 0; i < A(w)->ntxns; i++) {
        txn *t = A(w)->txns[i];
        part *p = part_here(w, t, g, h);
        if (!p)
            continue;
        part_state st = p->st;
        p->st = P_GONE;
        if (st == P_OPEN && t->state != T_DONE && t->state != T_COMMITTING) {
            client_abort(w, t, JP_FAIL);
        } else if (g == t->g) { /* the coordinator, or the only group */
            if (st == P_COMMITTING || (crashed && (st == P_WAITING || t->state == T_WAITING)))
                finish_txn(w, t, JP_INFO);
            else if (st == P_WAITING || t->state == T_WAITING)
                p->st = st; /* committed: commit wait goes on without the lease */
            else if (st == P_LOCKING || st == P_VOTING || st == P_OPEN)
                finish_txn(w, t, JP_FAIL);
        }
    }
    l->active = false;
    tl_free(l->tl);
    l->tl = NULL;
}

static void txn_stepped(world *w, int h, int g)
{
    lead *l = lead_of(w, h, g);
    px_status st;
    px_node_status(w->hosts[h].r[g].node, &st);
    if (l->active && (st.state != PX_LEADER || px_ballot_cmp(st.ballot, l->ballot) != 0))
        lead_drop(w, h, g, false);
    if (l->active && st.lease_end > l->lease_end)
        l->lease_end = st.lease_end;
    if (!l->active && st.state == PX_LEADER) {
        l->active = true;
        l->epoch = ++A(w)->next_epoch;
        l->ballot = st.ballot;
        l->marker = 0;
        l->marker_applied = false;
        l->next_at_win = st.next_slot;
        l->last_propose = w->now;
        l->lease_end = st.lease_end;
        l->tl = tl_new();
        if (!l->tl) {
            fprintf(stderr, "sim: out of memory\n");
            exit(3);
        }
        trace(w, "h%d g%d leader table", h + 1, g);
        app_event(w, A_MARKER, (uint64_t)g, 0); /* its first own record, at once */
    }
}

/* ---------------------------------------------------------------- two-phase commit state */

static prep *prep_find(rep *r, uint64_t id)
{
    for (size_t i = 0; i < r->nprep; i++)
        if (r->prep[i].txn == id)
            return &r->prep[i];
    return NULL;
}

static decision *dec_find(rep *r, uint64_t id)
{
    for (size_t i = 0; i < r->ndec; i++)
        if (r->dec[i].txn == id)
            return &r->dec[i];
    return NULL;
}

static void rep_clear_2pc(rep *r)
{
    for (size_t i = 0; i < r->nprep; i++)
        free(r->prep[i].w);
    free(r->prep);
    free(r->dec);
    r->prep = NULL;
    r->dec = NULL;
    r->nprep = r->ndec = 0;
}

/* The lock a prepared transaction needs on key i of group g: 2 exclusive (it writes it), 1
 * shared (it read it), 0 none. */
static int prep_mode(const prep *pr, int g, int i)
{
    char name[32];
    key_name(g * KEYS_PER_GROUP + i, name, sizeof name);
    const uint8_t *q = pr->w;
    mv_write *ws;
    size_t nw;
    int mode = pr->rkeys & 1u << i ? 1 : 0;
    if (get_writes(&q, pr->w + pr->wlen, &ws, &nw))
        for (size_t j = 0; j < nw; j++)
            if (ws[j].key_len == strlen(name) && !memcmp(ws[j].key, name, ws[j].key_len))
                mode = 2;
    free(ws);
    return mode;
}

/* A new leader takes the locks of every prepared transaction of its replica (writes
 * exclusive, reads shared) before serving anyone, and asks their coordinators soon. */
static void relock_prepared(world *w, int h, int g)
{
    rep *r = &A(w)->rep[h][g];
    lead *l = lead_of(w, h, g);
    if (!l->active)
        return;
    for (size_t i = 0; i < r->nprep; i++) {
        prep *pr = &r->prep[i];
        txn *t = txn_by_id(w, pr->txn);
        if (!t || part_here(w, t, g, h))
            continue;
        if (O(w)->forget_prepared) {
            /* Negative control: the prepared state does not survive the leader change (as if
             * it lived in the old leader's memory only): every replica drops it. */
            trace(w, "h%d g%d forgets prepared txn %" PRIu64, h + 1, g, t->id);
            t->part[g].forgotten = true;
            for (int x = 0; x < w->nhosts; x++) {
                rep *rx = &A(w)->rep[x][g];
                prep *px = prep_find(rx, t->id);
                if (px) {
                    free(px->w);
                    *px = rx->prep[--rx->nprep];
                }
            }
            i--;
            continue;
        }
        part *p = &t->part[g];
        memset(p->held, 0, sizeof p->held);
        p->lockwait = false;
        p->h = h;
        p->epoch = l->epoch;
        p->st = P_PREPARED;
        p->last_query = w->now - QUERY_EVERY; /* ask now */
        A(w)->relocks++;
        if (O(w)->no_relock) /* negative control: the locks are not taken again */
            continue;
        const uint8_t *q = pr->w, *end = pr->w + pr->wlen;
        mv_write *ws;
        size_t nw;
        if (!get_writes(&q, end, &ws, &nw)) {
            free(ws);
            violate(w, "h%d g%d: malformed prepared record", h + 1, g);
            return;
        }
        tl_out out = {0};
        mr_err err = {0};
        uint64_t req;
        for (int k = 0; k < KEYS_PER_GROUP; k++) {
            char name[32];
            key_name(g * KEYS_PER_GROUP + k, name, sizeof name);
            bool wr = false;
            for (size_t j = 0; j < nw; j++)
                wr |= ws[j].key_len == strlen(name) && !memcmp(ws[j].key, name, ws[j].key_len);
            if (!wr && !(pr->rkeys & 1u << k))
                continue;
            tl_lock lk = {.mode = wr ? TL_EXCLUSIVE : TL_SHARED,
                          .start = (const uint8_t *)name,
                          .start_len = strlen(name)};
            int rc = tl_acquire(l->tl, t->id, INT64_MIN + 2, &lk, &req, &out, &err);
            if (rc != TL_GRANTED)
                violate(w, "h%d g%d: prepared txn %" PRIu64 " not granted %s again (%d)", h + 1, g,
                        t->id, name, rc);
            p->held[k] = lk.mode;
        }
        free(ws);
        int prc = tl_prepare(l->tl, t->id, &err);
        if (prc && prc != MR_ENOTFOUND)
            violate(w, "h%d g%d: prepared txn %" PRIu64 ": %s", h + 1, g, t->id, mr_err_msg(&err));
        lock_out(w, h, g, &out);
        tl_out_free(&out);
        trace(w, "h%d g%d re-took the locks of prepared txn %" PRIu64, h + 1, g, t->id);
    }
}

/* ---------------------------------------------------------------- messages between leaders */

/* To every host (each holds a replica of group to_g; the one leading it acts, whatever
 * configuration change is under way), over the faulty network (partitions, loss,
 * duplication, delays); a replica on the sender's host gets it at once. */
static void send_group(world *w, int from_h, int to_g, msg m)
{
    app *a = A(w);
    if (from_h < 0 || !w->hosts[from_h].up)
        return;
    for (int h = 0; h < w->nhosts; h++) {
        if (!w->hosts[h].up)
            continue;
        if (h != from_h && (w->blocked[from_h][h] || chance(w->loss)))
            continue;
        if (a->nmsgs == a->msgcap) {
            a->msgcap = a->msgcap ? 2 * a->msgcap : 256;
            a->msgs = xrealloc(a->msgs, a->msgcap * sizeof *a->msgs);
        }
        m.to_g = to_g;
        m.to_h = h;
        m.to_gen = w->hosts[h].gen;
        a->msgs[a->nmsgs] = m;
        app_event(w, A_MSG, a->nmsgs, h == from_h ? 0 : net_delay());
        if (h != from_h && chance(w->dup)) /* duplicated, maybe reordered */
            app_event(w, A_MSG, a->nmsgs, net_delay());
        a->nmsgs++;
    }
}

static void send_decisions(world *w, txn *t, bool commit, int64_t s)
{
    part *p = &t->part[t->g];
    for (int g = 0; g < w->ngroups; g++)
        if (g != t->g && t->part[g].st != P_NONE && !(p->acked & 1ull << g))
            send_group(
                w, p->h, g,
                (msg){.type = M_DECISION, .txn = t->id, .from_g = t->g, .ok = commit, .ts = s});
}

static tx_replica_time replica_time(world *w, int h, int g);

static int propose(world *w, int h, int g, wbuf *b)
{
    uint64_t pid = sim_new_proposal(w, g, b->b, b->n);
    lead_of(w, h, g)->last_propose = w->now;
    int rc = sim_submit_at(w, g, pid, h, b->b, b->n);
    free(b->b);
    return rc;
}

/* The coordinator aborts before its decision is logged: the client hears so (certain: no
 * COMMIT2 was proposed, and a later leader knows nothing of it), the participants at once. */
static void coord_abort(world *w, txn *t)
{
    trace(w, "txn %" PRIu64 " coordinator aborts", t->id);
    A(w)->aborts_2pc++;
    send_decisions(w, t, false, 0);
    part_release(w, t, t->g);
    finish_txn(w, t, JP_FAIL);
}

/* All votes are in and the coordinator holds its locks: COMMIT2 above every prepare
 * timestamp. */
static void coord_commit(world *w, txn *t)
{
    part *p = &t->part[t->g];
    int h = p->h, g = t->g;
    lead *l = lead_of(w, h, g);
    mr_err err = {0};
    int prc = tl_prepare(l->tl, t->id, &err);
    if (prc && prc != MR_ENOTFOUND) {
        coord_abort(w, t);
        return;
    }
    if (!O(w)->no_promise &&
        px_node_promise(w->hosts[h].r[g].node, host_tt(w, h), p->co.max_prepare_ts, &err)) {
        trace(w, "txn %" PRIu64 " cannot commit above the prepare timestamps: %s", t->id,
              mr_err_msg(&err));
        coord_abort(w, t);
        return;
    }
    wbuf b = {0};
    uint8_t c = 'K';
    wb_put(&b, &c, 1);
    wb_uint(&b, t->id, 8);
    wb_uint(&b, p->co.nparts, 1);
    for (uint32_t i = 0; i < p->co.nparts; i++)
        wb_uint(&b, p->co.parts[i] - 1, 1);
    put_writes(&b, t, g);
    p->st = P_COMMITTING;
    int rc = propose(w, h, g, &b);
    if (rc && p->st == P_COMMITTING) {
        coord_abort(w, t); /* not queued: it can never be chosen */
        return;
    }
    trace(w, "txn %" PRIu64 " COMMIT2 proposed at h%d g%d above %" PRId64, t->id, h + 1, g,
          p->co.max_prepare_ts - T0);
    /* Aimed fault: the coordinator's leader dies between the votes and the decision. */
    if (!w->healed && chance(O(w)->aim * 2 / 3)) {
        A(w)->crashes_aimed++;
        sim_ev ev = {.t = w->now + rnd_range(0, 2 * MS),
                     .kind = EV_CRASH,
                     .host = h,
                     .gen = w->hosts[h].gen};
        push_ev(w, ev);
    }
}

static void coord_check(world *w, txn *t)
{
    part *p = &t->part[t->g];
    co_verdict v = co_verdict_of(&p->co);
    if (v == CO_ABORT)
        coord_abort(w, t);
    else if (v == CO_COMMIT && p->st == P_VOTING)
        coord_commit(w, t);
}

/* Coordinator leader: a vote, or a prepared participant's question (which carries its vote). */
static void on_vote(world *w, const msg *m)
{
    int h = m->to_h, g = m->to_g;
    rep *r = &A(w)->rep[h][g];
    txn *t = txn_by_id(w, m->txn);
    decision *d = dec_find(r, m->txn);
    if (d) {
        send_group(
            w, h, m->from_g,
            (msg){.type = M_DECISION, .txn = m->txn, .from_g = g, .ok = d->commit, .ts = d->s});
        return;
    }
    part *p = t && t->g == g ? part_here(w, t, g, h) : NULL;
    if (p && (p->st == P_LOCKING || p->st == P_VOTING)) {
        co_vote(&p->co, (uint64_t)m->from_g + 1, m->ok, m->ts);
        coord_check(w, t);
        return;
    }
    if (p && p->st == P_OPEN) { /* before the client's commit: kept until it comes */
        p->early_mask |= 1u << m->from_g;
        p->early_ok[m->from_g] = m->ok;
        p->early_ts[m->from_g] = m->ts;
        return;
    }
    if (p)
        return; /* committing: the decision follows */
    if (m->type == M_QUERY) {
        /* Asked, and this leader knows nothing of it (the client's commit never came here,
         * or a previous leader lost it): abort for good; the first decision logged wins. */
        wbuf b = {0};
        uint8_t c = 'A';
        wb_put(&b, &c, 1);
        wb_uint(&b, m->txn, 8);
        A(w)->abort_logged++;
        trace(w, "txn %" PRIu64 " unknown at coordinator h%d g%d: ABORT2", m->txn, h + 1, g);
        (void)propose(w, h, g, &b);
    }
}

/* Participant leader: the coordinator's decision. */
static void on_decision(world *w, const msg *m)
{
    int h = m->to_h, g = m->to_g;
    rep *r = &A(w)->rep[h][g];
    txn *t = txn_by_id(w, m->txn);
    part *p = t ? part_here(w, t, g, h) : NULL;
    if (prep_find(r, m->txn)) {
        if (!p || (p->st == P_DECIDING && w->now - p->decide_at < 4 * QUERY_EVERY))
            return; /* logging it already */
        wbuf b = {0};
        uint8_t c = 'D';
        wb_put(&b, &c, 1);
        wb_uint(&b, m->txn, 8);
        wb_uint(&b, m->ok, 1);
        wb_uint(&b, (uint64_t)m->ts, 8);
        p->st = P_DECIDING;
        p->decide_at = w->now;
        if (propose(w, h, g, &b) && p->st == P_DECIDING)
            p->st = P_PREPARED;
        return;
    }
    if (p && !m->ok && (p->st == P_OPEN || p->st == P_LOCKING))
        part_release(w, t, g);
    if (m->ok) /* not prepared here, so already decided and logged: say so */
        send_group(w, h, m->from_g, (msg){.type = M_ACK, .txn = m->txn, .from_g = g});
}

static void on_ack(world *w, const msg *m)
{
    txn *t = txn_by_id(w, m->txn);
    if (t && !t->ro && t->g == m->to_g)
        t->part[t->g].acked |= 1ull << m->from_g;
}

static void on_msg(world *w, const msg *m)
{
    static const char *const names[] = {"", "vote", "question", "decision", "ack"};
    trace(w, "txn %" PRIu64 " %s g%d -> h%d g%d (ok %d)%s", m->txn, names[m->type], m->from_g,
          m->to_h + 1, m->to_g, m->ok, lead_ready(w, m->to_h, m->to_g) ? "" : ", not a leader");
    if (!w->hosts[m->to_h].up || w->hosts[m->to_h].gen != m->to_gen ||
        !lead_ready(w, m->to_h, m->to_g))
        return; /* not for a leader there: the sender retries or asks again */
    relock_prepared(w, m->to_h, m->to_g);
    switch (m->type) {
    case M_VOTE:
    case M_QUERY:
        on_vote(w, m);
        break;
    case M_DECISION:
        on_decision(w, m);
        break;
    case M_ACK:
        on_ack(w, m);
        break;
    }
}

/* Every 2PC_TICK at a ready leader: prepared transactions that heard nothing ask their
 * coordinator group; a coordinator resends commit decisions not yet acknowledged. */
static void tick_2pc(world *w, int g)
{
    int h = leader_of(w, g);
    if (!lead_ready(w, h, g))
        return;
    relock_prepared(w, h, g);
    rep *r = &A(w)->rep[h][g];
    for (size_t i = 0; i < r->nprep; i++) {
        txn *t = txn_by_id(w, r->prep[i].txn);
        part *p = part_here(w, t, g, h);
        if (!p || w->now - p->last_query < QUERY_EVERY)
            continue;
        p->last_query = w->now;
        A(w)->queries++;
        send_group(
            w, h, r->prep[i].coord,
            (msg){.type = M_QUERY, .txn = t->id, .from_g = g, .ok = true, .ts = r->prep[i].ts});
    }
    for (size_t i = 0; i < A(w)->ntxns; i++) {
        txn *t = A(w)->txns[i];
        part *p = &t->part[g];
        if (t->ro || t->g != g || !p->delivering || p->h != h)
            continue;
        uint64_t all = 0;
        for (int k = 0; k < w->ngroups; k++)
            if (t->part[k].st != P_NONE)
                all |= 1ull << k;
        if ((p->acked & all) == all || ++p->tries > 20) {
            p->delivering = false; /* the participants will ask */
            continue;
        }
        if (p->tries % (int)(DELIVER_EVERY / TICK_2PC) == 0)
            send_decisions(w, t, true, t->dec_s);
    }
}

/* ---------------------------------------------------------------- replicas */

static void txn_replica_start(world *w, int h, int g)
{
    rep *r = &A(w)->rep[h][g];
    mr_err err = {0};
    if (mv_open(":memory:", NULL, &r->mv, &err))
        violate(w, "h%d g%d mvcc open: %s", h + 1, g, mr_err_msg(&err));
    r->paxos_safe = 0;
    rep_clear_2pc(r);
}

static void txn_replica_stop(world *w, int h, int g)
{
    rep *r = &A(w)->rep[h][g];
    lead_drop(w, h, g, true);
    mv_close(r->mv);
    r->mv = NULL;
    rep_clear_2pc(r);
    /* A read-only transaction served here dies with the host: it changed nothing. */
    for (size_t i = 0; i < A(w)->ntxns; i++) {
        txn *t = A(w)->txns[i];
        if (t->ro && t->state == T_RO_WAIT && t->h == h)
            finish_txn(w, t, JP_FAIL);
    }
}

/* One group's own transaction reached its leader's store at s: commit wait begins. */
static void committed_here(world *w, int h, int g, txn *t, int64_t s)
{
    lead *l = lead_of(w, h, g);
    part *p = part_here(w, t, g, h);
    if (!p || p->st != P_COMMITTING || t->state != T_COMMITTING)
        return;
    /* The core stamped the slot inside the lease it had then (a later membership change
     * may shorten the lease it reports now): below the furthest lease end seen. */
    if (!tx_ts_in_lease(s, 0, l->lease_end))
        violate(w,
                "h%d g%d committed txn %" PRIu64 " at %" PRId64 " outside its lease (end %" PRId64
                ")",
                h + 1, g, t->id, s - T0, l->lease_end - T0);
    t->commit_ts = s;
    p->st = P_WAITING;
    txn_to(w, t, T_WAITING);
    app_event(w, A_COMMIT_WAIT, t->id, 0);
}

/* The first replica to apply a slot records its writes as the committed versions (every
 * replica applies the same log: the world checks agreement). */
static void oracle_add(world *w, const mv_write *wr, int64_t ts)
{
    int gi, ki;
    char k[32];
    size_t n = wr->key_len < sizeof k ? wr->key_len : sizeof k - 1;
    memcpy(k, wr->key, n);
    k[n] = 0;
    if (sscanf(k, "g%d.k%d", &gi, &ki) != 2 || gi < 0 || gi >= w->ngroups || ki < 0 ||
        ki >= KEYS_PER_GROUP) {
        violate(w, "commit record writes an unknown key '%s'", k);
        return;
    }
    oracle_key *o = &A(w)->oracle[gi * KEYS_PER_GROUP + ki];
    o->v = xrealloc(o->v, (o->n + 1) * sizeof *o->v);
    o->v[o->n].ts = ts;
    list_decode(wr->value, wr->len, &o->v[o->n].list);
    o->n++;
}

/* The committed list of `key` as of `ts`: the last version applied with a timestamp <= ts
 * (within a slot, a later write at the same timestamp wins). */
static const keylist *oracle_at(world *w, int key, int64_t ts)
{
    static const keylist empty = {0};
    const oracle_key *o = &A(w)->oracle[key];
    const keylist *best = &empty;
    int64_t best_ts = INT64_MIN;
    for (size_t i = 0; i < o->n; i++)
        if (o->v[i].ts <= ts && o->v[i].ts >= best_ts) {
            best = &o->v[i].list;
            best_ts = o->v[i].ts;
        }
    return best;
}

/* What the leader does once a record of the slot is applied. */
typedef struct effect {
    uint8_t kind;
    uint64_t txn;
    bool skipped;
    int coord; /* DECIDE: the coordinator group */
} effect;

static void react(world *w, int h, int g, const effect *fx, int64_t ts)
{
    txn *t = txn_by_id(w, fx->txn);
    part *p = part_here(w, t, g, h);
    switch (fx->kind) {
    case 'C':
        committed_here(w, h, g, t, ts);
        break;
    case 'P':
        if (p && p->st == P_PREPARING && !fx->skipped) {
            p->st = P_PREPARED;
            p->last_query = w->now;
            A(w)->prepares++;
            trace(w, "txn %" PRIu64 " prepared at h%d g%d at %" PRId64 ", votes", t->id, h + 1, g,
                  ts - T0);
            send_group(w, h, t->g,
                       (msg){.type = M_VOTE, .txn = t->id, .from_g = g, .ok = true, .ts = ts});
            /* Aimed fault: a participant's leader, or the coordinator's, dies between
             * PREPARE and COMMIT. */
            if (!w->healed && chance(O(w)->aim)) {
                int ch = chance(0.5) ? h : leader_of(w, t->g);
                if (ch >= 0) {
                    A(w)->crashes_aimed++;
                    sim_ev ev = {.t = w->now + rnd_range(0, 3 * MS),
                                 .kind = EV_CRASH,
                                 .host = ch,
                                 .gen = w->hosts[ch].gen};
                    push_ev(w, ev);
                }
            }
        }
        break;
    case 'D':
        if (fx->skipped)
            break;
        if (p)
            part_release(w, t, g);
        if (lead_of(w, h, g)->active)
            send_group(w, h, fx->coord, (msg){.type = M_ACK, .txn = fx->txn, .from_g = g});
        break;
    case 'K':
        if (!p || p->st != P_COMMITTING || g != t->g)
            break;
        if (fx->skipped) { /* ABORT2 came first: certain */
            coord_abort(w, t);
            break;
        }
        if (!tx_ts_in_lease(ts, 0, lead_of(w, h, g)->lease_end))
            violate(w, "h%d g%d COMMIT2 of txn %" PRIu64 " outside its lease", h + 1, g, t->id);
        t->commit_ts = ts;
        p->st = P_WAITING;
        A(w)->commits_2pc++;
        if (ts <= p->co.max_prepare_ts) { /* only under --break no-promise */
            A(w)->below_prepare++;
            trace(w, "txn %" PRIu64 " commits at %" PRId64 ", not above a prepare at %" PRId64,
                  t->id, ts - T0, p->co.max_prepare_ts - T0);
        }
        app_event(w, A_COORD_WAIT, t->id, 0);
        break;
    case 'A':
        if (p && g == t->g && !fx->skipped &&
            (p->st == P_OPEN || p->st == P_LOCKING || p->st == P_VOTING))
            coord_abort(w, t);
        break;
    }
}

/* The 2PC records of a voided slot were never chosen: their proposers learn it for sure. */
static void voided_here(world *w, int h, int g, uint8_t kind, txn *t)
{
    part *p = part_here(w, t, g, h);
    if (!p)
        return;
    if (kind == 'P' && p->st == P_PREPARING)
        part_refuse(w, t, g);
    else if (kind == 'K' && p->st == P_COMMITTING && g == t->g)
        coord_abort(w, t);
    else if (kind == 'C' && p->st == P_COMMITTING && g == t->g && t->state == T_COMMITTING)
        client_abort(w, t, JP_FAIL);
    else if (kind == 'D' && p->st == P_DECIDING)
        p->st = P_PREPARED;
}

static void txn_apply(world *w, int h, int g, const px_entry *e, bool voided)
{
    rep *r = &A(w)->rep[h][g];
    app *a = A(w);
    if (e->slot > a->oracle_upto[g] + 1) {
        violate(w, "h%d g%d applies slot %" PRIu64 " before anyone applied %" PRIu64, h + 1, g,
                e->slot, a->oracle_upto[g] + 1);
        return;
    }
    bool first = e->slot == a->oracle_upto[g] + 1;
    if (first)
        a->oracle_upto[g] = e->slot;
    if (e->kind != PX_ENTRY_DATA || !r->mv)
        return;
    /* The safe time this replica declared before the slot: it may have served reads up to
     * it, so no write may land at or below it (a two-phase commit's s is above every
     * prepare timestamp, hence above t_tm_safe). */
    tx_replica_time before = replica_time(w, h, g);
    int64_t safe_before = tx_safe_time(before.paxos_safe, before.tm_safe);
    /* Decode every record of the slot: all writes go in one store transaction, each at its
     * own timestamp (the slot's, or a decided two-phase commit's s). */
    enum { MAXR = 64 };
    mv_txn txs[MAXR];
    mv_write *ws[MAXR];
    effect fx[MAXR];
    uint8_t *dead[MAXR]; /* prepared records' buffers, freed after the store applied */
    size_t nt = 0, nfx = 0, ndead = 0;
    uint32_t off = 0, plen;
    const uint8_t *p;
    while (px_batch_next(e->data, e->len, &off, &p, &plen) == 1) {
        const uint8_t *q = p + PROP_BYTES, *end = p + plen;
        lead *l = lead_of(w, h, g);
        if (q < end && *q == 'S' && !voided && l->active && l->marker == sim_proposal_id(p)) {
            l->marker_applied = true;
            trace(w, "h%d g%d leader's first record applied at slot %" PRIu64, h + 1, g, e->slot);
        }
        if (nt == MAXR || nfx == MAXR) {
            violate(w, "g%d slot %" PRIu64 ": more than %d records in a slot", g, e->slot, MAXR);
            break;
        }
        if (q >= end || *q == 'S')
            continue;
        uint8_t kind = *q++;
        uint64_t id;
        if (!rd_uint(&q, end, 8, &id)) {
            violate(w, "g%d slot %" PRIu64 ": malformed record", g, e->slot);
            break;
        }
        txn *t = txn_by_id(w, id);
        if (voided) {
            voided_here(w, h, g, kind, t);
            continue;
        }
        effect *f = &fx[nfx++];
        *f = (effect){.kind = kind, .txn = id};
        bool ok = true;
        size_t nw = 0;
        ws[nt] = NULL;
        int64_t wts = e->ts;
        bool stage = false;
        switch (kind) {
        case 'C':
            ok = get_writes(&q, end, &ws[nt], &nw);
            stage = true;
            break;
        case 'P': { /* u8 coord, u8 read keys, writes */
            uint64_t coord, rk;
            const uint8_t *wstart;
            ok = rd_uint(&q, end, 1, &coord) && rd_uint(&q, end, 1, &rk);
            wstart = q;
            ok = ok && get_writes(&q, end, &ws[nt], &nw);
            free(ws[nt]);
            ws[nt] = NULL;
            if (!ok)
                break;
            if (prep_find(r, id) || (t && t->part[g].forgotten)) {
                f->skipped = true;
                break;
            }
            r->prep = xrealloc(r->prep, (r->nprep + 1) * sizeof *r->prep);
            r->prep[r->nprep++] = (prep){.txn = id,
                                         .coord = (int)coord,
                                         .ts = e->ts,
                                         .rkeys = (uint8_t)rk,
                                         .w = dup_bytes(wstart, (size_t)(q - wstart)),
                                         .wlen = (size_t)(q - wstart)};
            break;
        }
        case 'D': { /* u8 commit, i64 s */
            uint64_t commit, s;
            ok = rd_uint(&q, end, 1, &commit) && rd_uint(&q, end, 8, &s);
            prep *pr = ok ? prep_find(r, id) : NULL;
            if (!pr) {
                f->skipped = true;
                break;
            }
            f->coord = pr->coord;
            const uint8_t *wq = pr->w;
            if (commit == 1) {
                ok = get_writes(&wq, pr->w + pr->wlen, &ws[nt], &nw);
                stage = true;
                wts = (int64_t)s;
            }
            dead[ndead++] = pr->w;
            *pr = r->prep[--r->nprep];
            break;
        }
        case 'K': { /* u8 nparts, parts, writes */
            uint64_t np, pg;
            ok = rd_uint(&q, end, 1, &np) && np <= MAX_GROUPS;
            for (uint64_t i = 0; ok && i < np; i++)
                ok = rd_uint(&q, end, 1, &pg);
            ok = ok && get_writes(&q, end, &ws[nt], &nw);
            if (!ok)
                break;
            if (dec_find(r, id)) { /* the first decision logged wins */
                f->skipped = true;
                break;
            }
            r->dec = xrealloc(r->dec, (r->ndec + 1) * sizeof *r->dec);
            r->dec[r->ndec++] = (decision){.txn = id, .commit = true, .s = e->ts};
            stage = true;
            if (first && t) {
                t->decided = 1;
                t->dec_s = e->ts;
            }
            break;
        }
        case 'A':
            if (dec_find(r, id)) {
                f->skipped = true;
                break;
            }
            r->dec = xrealloc(r->dec, (r->ndec + 1) * sizeof *r->dec);
            r->dec[r->ndec++] = (decision){.txn = id, .commit = false};
            if (first && t)
                t->decided = 2;
            break;
        default:
            ok = false;
        }
        if (!ok) {
            free(ws[nt]);
            violate(w, "g%d slot %" PRIu64 ": malformed '%c' record", g, e->slot, kind);
            break;
        }
        if (!stage) {
            free(ws[nt]);
            continue;
        }
        if (wts <= safe_before) {
            free(ws[nt]);
            violate(w,
                    "safe time: h%d g%d applies the writes of txn %" PRIu64 " ('%c') at %" PRId64
                    ", not above the safe time %" PRId64 " it declared",
                    h + 1, g, id, kind, wts - T0, safe_before - T0);
            break;
        }
        txs[nt] = (mv_txn){.commit_ts = wts, .w = ws[nt], .n = nw};
        nt++;
        if (first && t && !t->ro) {
            if (t->part[g].applied_ts)
                violate(w, "txn %" PRIu64 " applied twice in g%d", id, g);
            t->part[g].applied_ts = wts;
        }
    }
    if (nt && !w->violation[0]) {
        mr_err err = {0};
        int rc = mv_apply_txns(r->mv, e->slot, txs, nt, &err);
        if (rc && rc != MR_EEXIST)
            violate(w, "h%d g%d slot %" PRIu64 " mvcc apply: %s", h + 1, g, e->slot,
                    mr_err_msg(&err));
    }
    for (size_t i = 0; i < nt; i++) {
        for (size_t j = 0; first && j < txs[i].n; j++)
            oracle_add(w, &txs[i].w[j], txs[i].commit_ts);
        free(ws[i]);
    }
    for (size_t i = 0; i < ndead; i++)
        free(dead[i]);
    if (voided)
        return;
    /* Every later stamp of this group exceeds every commit timestamp applied here (a DECIDE
     * applies at the coordinator's s, above its slot's stamp), on every replica, before the
     * locks go: as nd_txn_apply_slot. */
    int64_t top = e->ts;
    for (size_t i = 0; i < nt; i++)
        if (txs[i].commit_ts > top)
            top = txs[i].commit_ts;
    if (top > e->ts && !O(w)->no_ts_floor)
        px_node_raise_ts_floor(w->hosts[h].r[g].node, top);
    if (e->ts > r->paxos_safe)
        r->paxos_safe = e->ts;
    for (size_t i = 0; i < nfx && !w->violation[0]; i++)
        react(w, h, g, &fx[i], e->ts);
    if (!w->violation[0] && lead_ready(w, h, g))
        relock_prepared(w, h, g);
}

static int snap_sink(void *arg, const void *buf, size_t len)
{
    wb_put(arg, buf, len);
    return 0;
}

/* A replica's snapshot: safe time, the prepared transactions and decisions, then the store. */
static void txn_snapshot(world *w, int h, int g, uint8_t **buf, size_t *len)
{
    rep *r = &A(w)->rep[h][g];
    wbuf b = {0};
    wb_uint(&b, (uint64_t)r->paxos_safe, 8);
    wb_uint(&b, r->nprep, 4);
    for (size_t i = 0; i < r->nprep; i++) {
        prep *p = &r->prep[i];
        wb_uint(&b, p->txn, 8);
        wb_uint(&b, (uint64_t)p->coord, 1);
        wb_uint(&b, (uint64_t)p->ts, 8);
        wb_uint(&b, p->rkeys, 1);
        wb_uint(&b, p->wlen, 4);
        wb_put(&b, p->w, p->wlen);
    }
    wb_uint(&b, r->ndec, 4);
    for (size_t i = 0; i < r->ndec; i++) {
        wb_uint(&b, r->dec[i].txn, 8);
        wb_uint(&b, r->dec[i].commit, 1);
        wb_uint(&b, (uint64_t)r->dec[i].s, 8);
    }
    mr_err err = {0};
    if (r->mv && mv_snapshot_write(r->mv, MV_SNAP_ALL, snap_sink, &b, &err))
        violate(w, "h%d g%d mvcc snapshot: %s", h + 1, g, mr_err_msg(&err));
    *buf = b.b;
    *len = b.n;
}

static void txn_install(world *w, int h, int g, const px_snapshot_meta *m, const uint8_t *b,
                        size_t len)
{
    rep *r = &A(w)->rep[h][g];
    const uint8_t *q = b, *end = b + len;
    uint64_t safe = 0, n = 0, v = 0, c = 0, ts = 0, rk = 0, wl = 0;
    mr_err err = {0};
    bool ok = rd_uint(&q, end, 8, &safe) && rd_uint(&q, end, 4, &n);
    rep_clear_2pc(r);
    for (uint64_t i = 0; ok && i < n; i++) {
        ok = rd_uint(&q, end, 8, &v) && rd_uint(&q, end, 1, &c) && rd_uint(&q, end, 8, &ts) &&
             rd_uint(&q, end, 1, &rk) && rd_uint(&q, end, 4, &wl) && end - q >= (ptrdiff_t)wl;
        if (!ok)
            break;
        txn *t = txn_by_id(w, v);
        if (t && t->part[g].forgotten) { /* --break forget-prepared */
            q += wl;
            continue;
        }
        r->prep = xrealloc(r->prep, (r->nprep + 1) * sizeof *r->prep);
        r->prep[r->nprep++] = (prep){.txn = v,
                                     .coord = (int)c,
                                     .ts = (int64_t)ts,
                                     .rkeys = (uint8_t)rk,
                                     .w = dup_bytes(q, wl),
                                     .wlen = wl};
        q += wl;
    }
    ok = ok && rd_uint(&q, end, 4, &n);
    for (uint64_t i = 0; ok && i < n; i++) {
        ok = rd_uint(&q, end, 8, &v) && rd_uint(&q, end, 1, &c) && rd_uint(&q, end, 8, &ts);
        if (!ok)
            break;
        r->dec = xrealloc(r->dec, (r->ndec + 1) * sizeof *r->dec);
        r->dec[r->ndec++] = (decision){.txn = v, .commit = c == 1, .s = (int64_t)ts};
    }
    if (!ok || !r->mv || mv_snapshot_load(r->mv, q, (size_t)(end - q), &err)) {
        violate(w, "h%d g%d mvcc snapshot install: %s", h + 1, g, mr_err_msg(&err));
        return;
    }
    r->paxos_safe = (int64_t)safe > m->last_ts ? (int64_t)safe : m->last_ts;
    int64_t top;
    if (mv_max_ts(r->mv, &top, &err)) {
        violate(w, "h%d g%d mvcc max timestamp: %s", h + 1, g, mr_err_msg(&err));
        return;
    }
    if (!O(w)->no_ts_floor) /* writes at a coordinator's s lie above the snapshot's slots */
        px_node_raise_ts_floor(w->hosts[h].r[g].node, top);
}

/* ---------------------------------------------------------------- read-write transactions */

/* Reads key k at its group's leader at the latest applied state (it holds a lock on it). */
static bool read_latest(world *w, txn *t, int k)
{
    int g = k / KEYS_PER_GROUP;
    rep *r = &A(w)->rep[t->part[g].h][g];
    char name[32];
    key_name(k, name, sizeof name);
    mv_version v = {0};
    mr_err err = {0};
    int rc = mv_get(r->mv, name, strlen(name), MV_TS_MAX, &v, &err);
    free(t->cur[k].v);
    t->cur[k] = (keylist){0};
    if (rc == 0) {
        list_decode(v.value, v.len, &t->cur[k]);
        free(v.value);
    } else if (rc != MR_ENOTFOUND) {
        violate(w, "h%d g%d read %s: %s", t->part[g].h + 1, g, name, mr_err_msg(&err));
        return false;
    }
    t->known[k] = true;
    return true;
}

/* Takes a lock on key k at its group's leader; true when granted (false: waiting, or the
 * transaction ended there). */
static bool lock_key(world *w, txn *t, int k, tl_mode mode)
{
    int g = k / KEYS_PER_GROUP, i = k % KEYS_PER_GROUP;
    part *p = &t->part[g];
    if (p->held[i] >= (int)mode)
        return true;
    lead *l = lead_of(w, p->h, g);
    char name[32];
    key_name(k, name, sizeof name);
    tl_lock lk = {.mode = mode, .start = (const uint8_t *)name, .start_len = strlen(name)};
    tl_out out = {0};
    uint64_t req;
    mr_err err = {0};
    int rc = tl_acquire(l->tl, t->id, t->prio, &lk, &req, &out, &err);
    lock_out(w, p->h, g, &out);
    tl_out_free(&out);
    if (rc < 0) {
        violate(w, "lock table: %s", mr_err_msg(&err));
        return false;
    }
    if (!part_here(w, t, g, p->h)) /* wounded meanwhile */
        return false;
    if (rc == TL_WOUNDED) {
        wounded(w, t, g);
        return false;
    }
    if (rc == TL_WAIT) {
        p->lockwait = true;
        p->wait_key = i;
        p->wait_mode = (int)mode;
        return false;
    }
    p->held[i] = (int)mode;
    /* Mutual exclusion with the prepared transactions of the leader's replica. */
    rep *r = &A(w)->rep[p->h][g];
    for (size_t j = 0; j < r->nprep; j++) {
        int pm = r->prep[j].txn == t->id ? 0 : prep_mode(&r->prep[j], g, i);
        if (pm == 2 || (pm == 1 && mode == TL_EXCLUSIVE))
            violate(w,
                    "lock: h%d g%d granted txn %" PRIu64
                    " %s lock on %s, which prepared txn %" PRIu64 " holds",
                    p->h + 1, g, t->id, mode == TL_EXCLUSIVE ? "an exclusive" : "a shared", name,
                    r->prep[j].txn);
    }
    return true;
}

/* One group: the commit record through Paxos. */
static void propose_commit(world *w, txn *t)
{
    part *p = &t->part[t->g];
    lead *l = lead_of(w, p->h, t->g);
    mr_err err = {0};
    int prc = tl_prepare(l->tl, t->id, &err);
    if (prc && prc != MR_ENOTFOUND) {
        client_abort(w, t, JP_FAIL);
        return;
    }
    wbuf b = {0};
    uint8_t c = 'C';
    wb_put(&b, &c, 1);
    wb_uint(&b, t->id, 8);
    put_writes(&b, t, t->g);
    /* COMMITTING first: should the step end this leadership, the record may still be
     * chosen, and lead_drop must call the outcome unknown. */
    txn_to(w, t, T_COMMITTING);
    p->st = P_COMMITTING;
    t->h = p->h;
    t->gen = w->hosts[p->h].gen;
    int rc = propose(w, p->h, t->g, &b);
    if (rc && t->state == T_COMMITTING) {
        client_abort(w, t, JP_FAIL); /* not queued: it can never be chosen */
        return;
    }
    trace(w, "txn %" PRIu64 " commit proposed at h%d g%d", t->id, p->h + 1, t->g);
}

/* Participant g (not the coordinator) holds its locks: PREPARE with its writes and read
 * keys, at its slot's timestamp, which is the prepare timestamp. */
static void propose_prepare(world *w, txn *t, int g)
{
    part *p = &t->part[g];
    lead *l = lead_of(w, p->h, g);
    mr_err err = {0};
    int prc = tl_prepare(l->tl, t->id, &err);
    if (prc && prc != MR_ENOTFOUND) {
        part_refuse(w, t, g);
        return;
    }
    wbuf b = {0};
    uint8_t c = 'P';
    wb_put(&b, &c, 1);
    wb_uint(&b, t->id, 8);
    wb_uint(&b, (uint64_t)t->g, 1);
    uint64_t rk = 0;
    for (int i = 0; i < KEYS_PER_GROUP; i++)
        if (p->held[i] == TL_SHARED || (p->held[i] && t->known[g * KEYS_PER_GROUP + i]))
            rk |= 1u << i;
    wb_uint(&b, rk, 1);
    put_writes(&b, t, g);
    p->st = P_PREPARING;
    int rc = propose(w, p->h, g, &b);
    if (rc && p->st == P_PREPARING) {
        part_refuse(w, t, g);
        return;
    }
    trace(w, "txn %" PRIu64 " PREPARE proposed at h%d g%d", t->id, p->h + 1, g);
}

/* Commit at group g: exclusive locks on its written keys, in key order; then PREPARE, or at
 * the coordinator the wait for the votes. */
static void part_lock_step(world *w, txn *t, int g)
{
    part *p = part_here(w, t, g, t->part[g].h);
    if (!p || p->st != P_LOCKING || p->lockwait)
        return;
    if (!lead_ready(w, p->h, g)) {
        if (g == t->g)
            coord_abort(w, t);
        else
            part_refuse(w, t, g);
        return;
    }
    while (p->lock_step < KEYS_PER_GROUP) {
        int k = g * KEYS_PER_GROUP + p->lock_step;
        if (t->written[k] && !lock_key(w, t, k, TL_EXCLUSIVE))
            return;
        p->lock_step++;
    }
    if (g != t->g) {
        propose_prepare(w, t, g);
    } else {
        p->st = P_VOTING;
        coord_check(w, t);
    }
}

/* The client's commit reaches group g's leader. */
static void commit_at(world *w, txn *t, int g)
{
    part *p = &t->part[g];
    if (!part_here(w, t, g, p->h) || p->st != P_OPEN || !lead_ready(w, p->h, g)) {
        /* That leader is gone (its locks with it): a new one knows nothing and refuses. */
        if (g == t->g) {
            finish_txn(w, t, JP_FAIL); /* no COMMIT2 can ever be logged for it */
            part_release(w, t, g);
            /* The leader that refuses it tells every participant at once (as the node does
             * since 0622b62), so a prepared one need not wait to ask. */
            int h = leader_of(w, g);
            for (int k = 0; k < w->ngroups && lead_ready(w, h, g); k++)
                if (k != g && t->part[k].st != P_NONE)
                    send_group(w, h, k,
                               (msg){.type = M_DECISION, .txn = t->id, .from_g = g, .ok = false});
        } else {
            part_release(w, t, g);
            int h = leader_of(w, g);
            if (lead_ready(w, h, g))
                send_group(w, h, t->g,
                           (msg){.type = M_VOTE, .txn = t->id, .from_g = g, .ok = false});
        }
        return;
    }
    p->st = P_LOCKING;
    if (g == t->g) {
        uint64_t parts[MAX_GROUPS];
        size_t np = 0;
        for (int k = 0; k < w->ngroups; k++)
            if (t->part[k].st != P_NONE)
                parts[np++] = (uint64_t)k + 1;
        mr_err err = {0};
        if (co_init(&p->co, (uint64_t)g + 1, parts, np, &err)) {
            violate(w, "co_init: %s", mr_err_msg(&err));
            return;
        }
        for (int k = 0; k < w->ngroups; k++)
            if (p->early_mask & 1u << k)
                co_vote(&p->co, (uint64_t)k + 1, p->early_ok[k], p->early_ts[k]);
        app_event(w, A_VOTE_TIMEOUT, t->id, VOTE_TIMEOUT);
    }
    part_lock_step(w, t, g);
}

/* The first touch of group g: its leader, which must be ready. */
static bool join_group(world *w, txn *t, int g)
{
    part *p = &t->part[g];
    if (p->st != P_NONE)
        return true;
    int h = leader_of(w, g);
    if (!lead_ready(w, h, g))
        return false;
    relock_prepared(w, h, g); /* before serving anyone (its lease may just have come) */
    if (w->violation[0])
        return false;
    p->st = P_OPEN;
    p->h = h;
    p->epoch = lead_of(w, h, g)->epoch;
    t->nparts++;
    if (!t->prio)
        t->prio = host_tt(w, h).latest; /* wound-wait age: the start timestamp */
    return true;
}

/* Runs the transaction's next steps at its leaders until it waits or commits. */
static void rw_step(world *w, txn *t)
{
    if (t->state != T_ACTIVE)
        return;
    bool locks = !O(w)->no_read_locks;
    while (t->next < t->nops) {
        micro_op *m = &t->op[t->next];
        int g = m->key / KEYS_PER_GROUP;
        if (!join_group(w, t, g) || !part_here(w, t, g, t->part[g].h) ||
            !lead_ready(w, t->part[g].h, g)) {
            client_abort(w, t, JP_FAIL); /* never proposed */
            return;
        }
        /* A read, or an append to a key not yet known: its current list, under a shared
         * lock (the lock is what keeps it current until commit). */
        if (!t->known[m->key]) {
            if (locks && !lock_key(w, t, m->key, TL_SHARED)) {
                if (t->state == T_ACTIVE && t->part[g].lockwait) {
                    t->waiting_g = g;
                    txn_to(w, t, T_LOCKWAIT);
                }
                return;
            }
            if (!read_latest(w, t, m->key))
                return;
        }
        if (m->append) {
            list_push(&t->cur[m->key], m->v);
            t->written[m->key] = true;
        } else {
            list_copy(&t->read[t->next], &t->cur[m->key]);
        }
        t->next++;
        if (t->next < t->nops) { /* the client sends the next micro-op */
            app_event(w, A_STEP, t->id, 2 * net_delay());
            return;
        }
    }
    if (two_phase(t)) {
        /* Two-phase commit: the commit goes to every participant's leader at once. */
        txn_to(w, t, T_COMMITTING);
        for (int g = 0; g < w->ngroups; g++)
            if (t->part[g].st != P_NONE)
                app_event(w, A_COMMIT_AT, t->id << 4 | (uint64_t)g, net_delay());
        trace(w, "txn %" PRIu64 " commit sent, coordinator g%d, %d participants", t->id, t->g,
              t->nparts);
        return;
    }
    /* One group: exclusive locks on the written keys, in key order, then the record. */
    t->g = t->op[0].key / KEYS_PER_GROUP;
    part *p = &t->part[t->g];
    while (p->lock_step < KEYS_PER_GROUP) {
        int k = t->g * KEYS_PER_GROUP + p->lock_step;
        if (t->written[k] && !lock_key(w, t, k, TL_EXCLUSIVE)) {
            if (t->state == T_ACTIVE && p->lockwait) {
                t->waiting_g = t->g;
                txn_to(w, t, T_LOCKWAIT);
            }
            return;
        }
        p->lock_step++;
    }
    propose_commit(w, t);
}

/* Commit wait (§4.1.2): acknowledge only once TT.after(s) on the leader's clock. */
static void commit_wait(world *w, txn *t)
{
    if (!t || t->state != T_WAITING)
        return;
    if (!w->hosts[t->h].up || w->hosts[t->h].gen != t->gen) {
        finish_txn(w, t, JP_INFO); /* committed, but the client lost its leader */
        return;
    }
    tt_interval now = host_tt(w, t->h);
    if (!O(w)->skip_commit_wait && !tx_commit_wait_done(now, t->commit_ts)) {
        app_event(w, A_COMMIT_WAIT, t->id, tx_commit_wait_left(now, t->commit_ts));
        return;
    }
    finish_txn(w, t, JP_OK);
    part_release(w, t, t->g);
}

/* The coordinator's commit wait; then the client hears ok and the participants the
 * decision (resent until acknowledged). */
static void coord_wait(world *w, txn *t)
{
    if (!t || t->part[t->g].st != P_WAITING)
        return;
    part *p = &t->part[t->g];
    int h = p->h;
    if (!w->hosts[h].up) {
        finish_txn(w, t, JP_INFO);
        return;
    }
    tt_interval now = host_tt(w, h);
    if (!O(w)->skip_commit_wait && !tx_commit_wait_done(now, t->commit_ts)) {
        app_event(w, A_COORD_WAIT, t->id, tx_commit_wait_left(now, t->commit_ts));
        return;
    }
    if (t->state == T_COMMITTING) {
        A(w)->ok_2pc++;
        finish_txn(w, t, JP_OK);
    }
    part_release(w, t, t->g);
    p->acked = 1ull << t->g;
    p->delivering = true;
    p->tries = 0;
    send_decisions(w, t, true, t->commit_ts);
}

/* ---------------------------------------------------------------- read-only transactions */

static tx_replica_time replica_time(world *w, int h, int g)
{
    /* t_tm_safe: below the prepare timestamps of the undecided transactions. */
    rep *r = &A(w)->rep[h][g];
    int64_t ts[64];
    size_t n = 0;
    for (size_t i = 0; i < r->nprep; i++) {
        if (n == 64) { /* keep the smallest so far in the last place */
            if (r->prep[i].ts < ts[63])
                ts[63] = r->prep[i].ts;
        } else {
            ts[n++] = r->prep[i].ts;
        }
    }
    return (tx_replica_time){.paxos_safe = r->paxos_safe,
                             .tm_safe = O(w)->no_tm_safe ? TX_TS_INF : tx_tm_safe(ts, n)};
}

static const char *const mode_name[] = {
    [TX_READ_STRONG] = "strong",
    [TX_READ_EXACT_STALENESS] = "exact staleness",
    [TX_READ_BOUNDED] = "bounded staleness",
    [TX_READ_AT] = "at a timestamp",
};

static void ro_try(world *w, txn *t)
{
    if (t->state != T_RO_WAIT)
        return;
    if (!t->s_read) {
        /* The request arrived: the read timestamp by mode at the serving host (strong:
         * TT.now().latest, §4.2.2), against the lowest safe time of the groups it reads. */
        tx_replica_time rt = {.paxos_safe = INT64_MAX, .tm_safe = tx_tm_safe(NULL, 0)};
        for (int i = 0; i < t->nops; i++) {
            tx_replica_time gi = replica_time(w, t->h, t->op[i].key / KEYS_PER_GROUP);
            if (gi.paxos_safe < rt.paxos_safe)
                rt.paxos_safe = gi.paxos_safe;
            if (gi.tm_safe < rt.tm_safe)
                rt.tm_safe = gi.tm_safe;
        }
        tx_serve sv = tx_read_plan(&t->bound, host_tt(w, t->h), &rt, &t->s_read);
        trace(w, "txn %" PRIu64 " %s read, s_read %" PRId64 "%s", t->id, mode_name[t->bound.mode],
              t->s_read - T0, sv == TX_SERVE_BEHIND ? ": behind" : "");
        if (sv == TX_SERVE_BEHIND || sv == TX_SERVE_INVALID) {
            A(w)->behind++;
            finish_txn(w, t, JP_FAIL);
            return;
        }
    }
    for (int i = 0; i < t->nops; i++) {
        int g = t->op[i].key / KEYS_PER_GROUP;
        tx_replica_time rt = replica_time(w, t->h, g);
        /* --promise-reads, as the node's on_snapread: a ready leader promises to stamp every
         * later write above s_read (px_node_promise), so it needs only what it already
         * assigned applied. */
        px_status st;
        if (O(w)->promise_reads && t->s_read > rt.paxos_safe && lead_ready(w, t->h, g)) {
            px_node_status(w->hosts[t->h].r[g].node, &st);
            mr_err perr;
            if (px_node_promise(w->hosts[t->h].r[g].node, host_tt(w, t->h), t->s_read, &perr) ==
                    0 &&
                rt.paxos_safe >= (st.last_ts < t->s_read ? st.last_ts : t->s_read)) {
                if (rt.paxos_safe < t->s_read)
                    tot_promise_reads++;
                rt.paxos_safe = t->s_read;
            }
        }
        if (!O(w)->no_safe_wait && !tx_can_serve(t->s_read, host_tt(w, t->h), &rt) &&
            !(O(w)->no_read_wait && t->s_read <= tx_safe_time(rt.paxos_safe, rt.tm_safe))) {
            app_event(w, A_STEP, t->id, MS);
            return;
        }
    }
    for (int i = 0; i < t->nops; i++) {
        int g = t->op[i].key / KEYS_PER_GROUP;
        char k[32];
        key_name(t->op[i].key, k, sizeof k);
        mv_version v = {0};
        mr_err err = {0};
        int rc = mv_get(A(w)->rep[t->h][g].mv, k, strlen(k), t->s_read, &v, &err);
        if (rc == MR_ESTALE) {
            /* It waited for safe time so long that GC passed s_read: a clean error, never a
             * wrong answer. */
            A(w)->stale++;
            finish_txn(w, t, JP_FAIL);
            return;
        }
        if (rc == 0) {
            list_decode(v.value, v.len, &t->read[i]);
            free(v.value);
        } else if (rc != MR_ENOTFOUND) {
            violate(w, "h%d g%d read-only read of %s at %" PRId64 ": %s", t->h + 1, g, k,
                    t->s_read - T0, mr_err_msg(&err));
            return;
        }
        /* Any mode: a snapshot read returns exactly what was committed at s_read. */
        const keylist *want = oracle_at(w, t->op[i].key, t->s_read);
        if (want->n != t->read[i].n ||
            (want->n && memcmp(want->v, t->read[i].v, want->n * sizeof *want->v))) {
            violate(w,
                    "snapshot read (%s) of %s at %" PRId64 " at h%d returned %zu values, "
                    "committed then: %zu",
                    mode_name[t->bound.mode], k, t->s_read - T0, t->h + 1, t->read[i].n, want->n);
            return;
        }
    }
    if (t->bound.mode != TX_READ_STRONG)
        A(w)->stale_reads++;
    finish_txn(w, t, JP_OK);
}

/* ---------------------------------------------------------------- clients */

static txn *new_txn(world *w, int c)
{
    app *a = A(w);
    if (a->ntxns == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 256;
        a->txns = xrealloc(a->txns, a->cap * sizeof *a->txns);
    }
    txn *t = xcalloc(1, sizeof *t);
    a->txns[a->ntxns++] = t;
    t->id = a->ntxns;
    t->client = c;
    t->process = a->clients[c].process;
    return t;
}

/* A random up host that is a replica of every group (the chosen configuration: a spare
 * host's cores hear no log and could never serve), leader or follower alike; -1 if none. */
static int ro_host(world *w)
{
    int cand[MAX_HOSTS], n = 0;
    for (int h = 0; h < w->nhosts; h++) {
        bool member = w->hosts[h].up;
        for (int g = 0; g < w->ngroups && member; g++)
            member = px_config_has(&w->g[g].cfgs[w->g[g].ncfgs - 1].config, (px_node_id)h + 1);
        if (member)
            cand[n++] = h;
    }
    return n ? cand[rnd() % (uint64_t)n] : -1;
}

static void client_start(world *w, int c)
{
    app *a = A(w);
    if (a->clients[c].cur || w->healed)
        return;
    bool ro = chance(0.4);
    int g = (int)rnd_range(0, w->ngroups - 1);
    int h = -1;
    /* Read-write over several groups (two-phase commit): keys of two or three groups, the
     * coordinator one of them. */
    int groups[MAX_GROUPS], ng = 1;
    groups[0] = g;
    if (!ro && w->ngroups > 1 && chance(a->o->cross)) {
        int want = w->ngroups > 2 && chance(0.3) ? 3 : 2;
        while (ng < want) {
            int x = (int)rnd_range(0, w->ngroups - 1), dup = 0;
            for (int i = 0; i < ng; i++)
                dup |= groups[i] == x;
            if (!dup)
                groups[ng++] = x;
        }
    }
    if (ro) {
        h = ro_host(w);
        if (h < 0) {
            app_event(w, A_CLIENT, (uint64_t)c, 10 * MS);
            return;
        }
    } else if (!lead_ready(w, leader_of(w, g), g)) { /* no leader to talk to yet */
        app_event(w, A_CLIENT, (uint64_t)c, 10 * MS);
        return;
    }
    txn *t = new_txn(w, c);
    t->ro = ro;
    t->g = g;
    t->h = h;
    if (h >= 0)
        t->gen = w->hosts[h].gen;
    t->nops = (int)rnd_range(ng, MAX_OPS);
    bool appends = false;
    for (int i = 0; i < t->nops; i++) {
        int kg =
            ro ? (int)rnd_range(0, w->ngroups - 1) : groups[i < ng ? i : (int)rnd_range(0, ng - 1)];
        t->op[i].key = kg * KEYS_PER_GROUP + (int)rnd_range(0, KEYS_PER_GROUP - 1);
        t->op[i].append = !ro && (chance(0.5) || (i == t->nops - 1 && !appends));
        appends |= t->op[i].append;
        if (t->op[i].append)
            t->op[i].v = ++a->next_value;
    }
    if (ng > 1) /* the coordinator: one of the participants */
        t->g = groups[rnd_range(0, ng - 1)];
    if (ro) {
        /* Strong reads go into the history; stale ones (not strictly serializable by
         * design) are checked against the committed versions only. */
        int64_t r = rnd_range(0, 99), st = a->o->stale;
        if (r < st / 2)
            t->bound =
                (tx_read_bound){.mode = TX_READ_BOUNDED, .staleness_ns = rnd_range(0, 300 * MS)};
        else if (r < st)
            t->bound = (tx_read_bound){.mode = TX_READ_EXACT_STALENESS,
                                       .staleness_ns = rnd_range(0, 100 * MS)};
    }
    a->clients[c].cur = t;
    if (t->bound.mode == TX_READ_STRONG)
        record(w, t->process, JP_INVOKE, txn_value(t, false));
    if (ro) {
        txn_to(w, t, T_RO_WAIT);
        trace(w, "txn %" PRIu64 " ro at h%d", t->id, h + 1);
        app_event(w, A_STEP, t->id, net_delay());
        app_event(w, A_TIMEOUT, t->id, RO_TIMEOUT);
    } else {
        txn_to(w, t, T_ACTIVE);
        trace(w, "txn %" PRIu64 " rw over %d group(s), coordinator g%d, %d ops", t->id, ng, t->g,
              t->nops);
        app_event(w, A_STEP, t->id, net_delay());
        app_event(w, A_TIMEOUT, t->id, RW_TIMEOUT);
    }
}

static void on_timeout(world *w, txn *t)
{
    if (!t || t->state == T_DONE)
        return;
    if (t->ro)
        finish_txn(w, t, JP_FAIL);
    else if (t->state == T_COMMITTING || t->state == T_WAITING)
        finish_txn(w, t, JP_INFO); /* the client stops waiting; the record may yet commit */
    else
        client_abort(w, t, JP_FAIL);
}

/* An idle leader's SAFE record keeps followers' safe time moving (Spanner's leaders do so
 * every 8 s; the node every 250 ms). */
static void propose_safe(world *w, int h, int g)
{
    uint8_t s = 'S';
    uint64_t pid = sim_new_proposal(w, g, &s, 1);
    lead_of(w, h, g)->last_propose = w->now;
    A(w)->safe_records++;
    if (!lead_of(w, h, g)->marker_applied) {
        lead_of(w, h, g)->marker = pid;
        lead_of(w, h, g)->marker_at = w->now;
    }
    sim_submit_at(w, g, pid, h, &s, 1);
}

/* A new leader serves transactions only once a record of its own, proposed in its ballot,
 * is applied: every slot below is then decided and applied (its predecessors' writes are
 * protected by no lock here), and a predecessor's value Paxos may still choose above it
 * carries an older timestamp, so the core voids it. (The slot the core will fill next when
 * it wins is not enough: a promise arriving after the election can report a predecessor's
 * value for a slot above it, which the leader then proposes in its ballot.) */
static void leader_records(world *w, int g)
{
    int h = leader_of(w, g);
    lead *l = h >= 0 ? lead_of(w, h, g) : NULL;
    replica *r = h >= 0 ? &w->hosts[h].r[g] : NULL;
    if (l && l->active && !l->marker_applied && !O(w)->early_leader &&
        px_node_lease_valid(r->node, host_tt(w, h)) &&
        (!l->marker || w->now - l->marker_at >= 10 * SAFE_EVERY))
        propose_safe(w, h, g);
    else if (l && lead_ready(w, h, g) && w->now - l->last_propose >= SAFE_EVERY)
        propose_safe(w, h, g);
}

/* Every replica collects versions below min(TT.now().earliest - retention, t_safe). */
static void gc_tick(world *w, int h)
{
    for (int g = 0; g < w->ngroups && w->hosts[h].up; g++) {
        rep *r = &A(w)->rep[h][g];
        if (!r->mv)
            continue;
        tx_replica_time rt = replica_time(w, h, g);
        int64_t horizon =
            tx_gc_horizon(host_tt(w, h), RETENTION, tx_safe_time(rt.paxos_safe, rt.tm_safe));
        mr_err err = {0};
        if (horizon > mv_horizon(r->mv) && mv_gc(r->mv, horizon, 1000, NULL, &err))
            violate(w, "h%d g%d gc: %s", h + 1, g, mr_err_msg(&err));
    }
    app_event(w, A_GC_TICK, (uint64_t)h, GC_EVERY);
}

static void txn_event(world *w, const sim_ev *ev)
{
    txn *t = txn_by_id(w, ev->app_id);
    switch (ev->app_kind) {
    case A_STEP:
    case A_RESUME:
        if (t && t->ro)
            ro_try(w, t);
        else if (t)
            rw_step(w, t);
        break;
    case A_COMMIT_WAIT:
        commit_wait(w, t);
        break;
    case A_TIMEOUT:
        on_timeout(w, t);
        break;
    case A_CLIENT:
        client_start(w, (int)ev->app_id);
        break;
    case A_SAFE_TICK:
        leader_records(w, (int)ev->app_id);
        app_event(w, A_SAFE_TICK, ev->app_id, SAFE_EVERY / 2);
        break;
    case A_MARKER:
        leader_records(w, (int)ev->app_id);
        break;
    case A_GC_TICK:
        gc_tick(w, (int)ev->app_id);
        break;
    case A_COMMIT_AT:
    case A_PART_LOCK:
        t = txn_by_id(w, ev->app_id >> 4);
        if (t && ev->app_kind == A_COMMIT_AT)
            commit_at(w, t, (int)(ev->app_id & 15));
        else if (t)
            part_lock_step(w, t, (int)(ev->app_id & 15));
        break;
    case A_VOTE_TIMEOUT:
        if (t && !t->ro) {
            part *p = part_here(w, t, t->g, t->part[t->g].h);
            if (p && (p->st == P_LOCKING || p->st == P_VOTING)) {
                trace(w, "txn %" PRIu64 " vote timeout", t->id);
                coord_abort(w, t);
            }
        }
        break;
    case A_COORD_WAIT:
        coord_wait(w, t);
        break;
    case A_MSG: {
        msg m = A(w)->msgs[ev->app_id]; /* a copy: handling may grow the array */
        on_msg(w, &m);
        break;
    }
    case A_2PC_TICK:
        tick_2pc(w, (int)ev->app_id);
        app_event(w, A_2PC_TICK, ev->app_id, TICK_2PC);
        break;
    }
}

/* ---------------------------------------------------------------- the run */

static const txn_opts *g_opts;

static void txn_init(world *w)
{
    app *a = xcalloc(1, sizeof *a);
    w->app_state = a;
    a->o = g_opts;
    jp_history_init(&a->hist);
    a->oracle = xcalloc((size_t)w->ngroups * KEYS_PER_GROUP, sizeof *a->oracle);
    a->nclients = a->o->clients;
    a->clients = xcalloc((size_t)a->nclients, sizeof *a->clients);
    for (int c = 0; c < a->nclients; c++) {
        a->clients[c].process = a->next_process++;
        app_event(w, A_CLIENT, (uint64_t)c, rnd_range(200 * MS, 400 * MS));
    }
    for (int g = 0; g < w->ngroups; g++) {
        app_event(w, A_SAFE_TICK, (uint64_t)g, SAFE_EVERY);
        app_event(w, A_2PC_TICK, (uint64_t)g, TICK_2PC);
    }
    for (int h = 0; h < w->nhosts; h++)
        app_event(w, A_GC_TICK, (uint64_t)h, GC_EVERY);
    if (a->o->clocks == CLOCKS_BEYOND) {
        w->hosts[0].clock_err = 3 * w->bound;
        w->hosts[1].clock_err = -2 * w->bound;
        w->hosts[0].pinned = w->hosts[1].pinned = true;
        w->clocks_lie = true;
    } else if (a->o->clocks != CLOCKS_WANDER) {
        w->hosts[0].clock_err = w->bound - w->bound / 20;
        w->hosts[0].pinned = true;
    }
    for (int h = 1; h < w->nhosts && a->o->clocks == CLOCKS_SPREAD; h++) {
        w->hosts[h].clock_err = -(w->bound - w->bound / 20);
        w->hosts[h].pinned = true;
    }
}

/* Done once every client is idle and no member replica keeps a prepared transaction (after
 * the heal, recovery must resolve every one: the world reports a liveness failure if not). */
static bool txn_done(world *w)
{
    for (int c = 0; c < A(w)->nclients; c++)
        if (A(w)->clients[c].cur)
            return false;
    for (int g = 0; g < w->ngroups; g++) {
        /* A ready leader (so it applied its predecessors' log) that applied all that was
         * chosen, ... */
        int l = leader_of(w, g);
        if (!lead_ready(w, l, g) || w->hosts[l].r[g].app.applied < A(w)->oracle_upto[g])
            return false;
        /* ... and no member replica holds a prepared transaction. */
        const px_config *c = &w->g[g].cfgs[w->g[g].ncfgs - 1].config;
        for (int h = 0; h < w->nhosts; h++)
            if (w->hosts[h].up && px_config_has(c, (px_node_id)h + 1) && A(w)->rep[h][g].nprep)
                return false;
    }
    return true;
}

static bool list_has(const keylist *l, int64_t v)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == v)
            return true;
    return false;
}

/* Atomicity of two-phase commit and agreement of every replica's store with the decisions. */
static void check_atomicity(world *w, bool healthy)
{
    app *a = A(w);
    for (size_t i = 0; i < a->ntxns && !w->violation[0]; i++) {
        txn *t = a->txns[i];
        if (t->ro)
            continue;
        bool any = false;
        for (int g = 0; g < w->ngroups; g++)
            any |= t->part[g].applied_ts != 0;
        if (two_phase(t))
            for (int g = 0; g < w->ngroups && !w->violation[0]; g++) {
                if (t->part[g].st == P_NONE)
                    continue;
                int64_t got = t->part[g].applied_ts;
                if (t->decided == 1 && healthy && !got)
                    violate(w,
                            "atomicity: txn %" PRIu64 " committed at %" PRId64
                            " but g%d never applied it",
                            t->id, t->dec_s - T0, g);
                else if (t->decided == 1 && got && got != t->dec_s)
                    violate(w,
                            "atomicity: txn %" PRIu64 " committed at %" PRId64
                            " but g%d applied it at %" PRId64,
                            t->id, t->dec_s - T0, g, got - T0);
                else if (t->decided != 1 && got)
                    violate(w,
                            "atomicity: txn %" PRIu64 " %s, but g%d applied its writes at %" PRId64,
                            t->id, t->decided ? "aborted" : "never decided", g, got - T0);
            }
        if (w->violation[0])
            break;
        if (t->state == T_DONE && t->outcome == JP_OK && !any)
            violate(w, "atomicity: txn %" PRIu64 " acknowledged ok, applied nowhere", t->id);
        else if (t->state == T_DONE && t->outcome == JP_FAIL && any)
            violate(w, "atomicity: txn %" PRIu64 " reported failed, but applied", t->id);
    }
    /* Every caught-up member replica's store: each key's latest list holds exactly the
     * appends of the transactions applied in its group, and each committed append is there
     * at its transaction's timestamp (unless collected). */
    for (int g = 0; g < w->ngroups && !w->violation[0] && healthy; g++) {
        const px_config *c = &w->g[g].cfgs[w->g[g].ncfgs - 1].config;
        for (int h = 0; h < w->nhosts && !w->violation[0]; h++) {
            rep *r = &a->rep[h][g];
            if (!w->hosts[h].up || !r->mv || !px_config_has(c, (px_node_id)h + 1) ||
                w->hosts[h].r[g].app.applied < a->oracle_upto[g])
                continue;
            for (int ki = 0; ki < KEYS_PER_GROUP && !w->violation[0]; ki++) {
                int k = g * KEYS_PER_GROUP + ki;
                char name[32];
                key_name(k, name, sizeof name);
                mv_version v = {0};
                mr_err err = {0};
                keylist l = {0};
                if (mv_get(r->mv, name, strlen(name), MV_TS_MAX, &v, &err) == 0) {
                    list_decode(v.value, v.len, &l);
                    free(v.value);
                }
                size_t want = 0;
                for (size_t i = 0; i < a->ntxns && !w->violation[0]; i++) {
                    txn *t = a->txns[i];
                    if (t->ro)
                        continue;
                    for (int o = 0; o < t->nops; o++) {
                        if (!t->op[o].append || t->op[o].key != k)
                            continue;
                        bool in = list_has(&l, t->op[o].v);
                        bool applied = t->part[g].applied_ts != 0;
                        want += applied;
                        if (in != applied) {
                            violate(
                                w, "h%d g%d store: %s %s value %" PRId64 " of txn %" PRIu64 " (%s)",
                                h + 1, g, name, in ? "holds" : "lacks", t->op[o].v, t->id,
                                applied ? "applied" : "not applied");
                            break;
                        }
                        if (!applied)
                            continue;
                        mv_version at = {0};
                        int rc =
                            mv_get(r->mv, name, strlen(name), t->part[g].applied_ts, &at, &err);
                        if (rc == 0) {
                            keylist al = {0};
                            list_decode(at.value, at.len, &al);
                            if (!list_has(&al, t->op[o].v))
                                violate(w,
                                        "h%d g%d store: %s at %" PRId64 " lacks value %" PRId64
                                        " of txn %" PRIu64,
                                        h + 1, g, name, t->part[g].applied_ts - T0, t->op[o].v,
                                        t->id);
                            free(al.v);
                            free(at.value);
                        } else if (rc != MR_ESTALE) {
                            violate(w, "h%d g%d store: %s at %" PRId64 ": nothing", h + 1, g, name,
                                    t->part[g].applied_ts - T0);
                        }
                    }
                }
                if (!w->violation[0] && want != l.n)
                    violate(w, "h%d g%d store: %s holds %zu values, %zu committed", h + 1, g, name,
                            l.n, want);
                free(l.v);
            }
        }
    }
}

/* Every snapshot read again, against the versions committed by the end: a version applied
 * after the read at a timestamp at or below it would have been missed. */
static void check_reads_again(world *w)
{
    app *a = A(w);
    for (size_t i = 0; i < a->ntxns && !w->violation[0]; i++) {
        txn *t = a->txns[i];
        if (!t->ro || t->state != T_DONE || t->outcome != JP_OK)
            continue;
        for (int o = 0; o < t->nops; o++) {
            const keylist *want = oracle_at(w, t->op[o].key, t->s_read);
            if (want->n != t->read[o].n ||
                (want->n && memcmp(want->v, t->read[o].v, want->n * sizeof *want->v))) {
                char k[32];
                key_name(t->op[o].key, k, sizeof k);
                violate(w,
                        "snapshot read (%s) of %s at %" PRId64 " at h%d returned %zu values, "
                        "committed at that timestamp by the end: %zu",
                        mode_name[t->bound.mode], k, t->s_read - T0, t->h + 1, t->read[o].n,
                        want->n);
                return;
            }
        }
    }
}

/* Checks the history, also after a liveness failure (healthy false): what completed must
 * still be strictly serializable. */
static void txn_finish(world *w, bool healthy)
{
    app *a = A(w);
    if (w->violation[0])
        return;
    jp_result r;
    mr_err err = {0};
    if (jp_check_list_append(&a->hist, NULL, &r, &err)) {
        violate(w, "checker: %s", mr_err_msg(&err));
        return;
    }
    /* Clocks beyond the bound may cost real-time order, never serializability: real-time
     * cycles are tallied, every other anomaly is a violation. */
    bool rt_only = r.valid == JP_INVALID;
    for (size_t i = 0; rt_only && i < r.n; i++)
        rt_only = jp_anomaly_is_realtime(r.anomalies[i].name);
    if (rt_only && a->o->clocks == CLOCKS_BEYOND) {
        tot_rt_seeds++;
        for (size_t i = 0; i < r.n; i++)
            rt_kind_add(r.anomalies[i].name);
    } else if (r.valid == JP_INVALID) {
        tot_anomalies++;
        char names[400] = "";
        for (size_t i = 0; i < r.n && strlen(names) < 300; i++)
            if (!strstr(names, r.anomalies[i].name)) {
                strcat(names, " ");
                strcat(names, r.anomalies[i].name);
            }
        violate(w, "not strictly serializable (%zu anomalies:%s), %s", r.n, names,
                rt_only ? "only in real-time order" : "nor serializable");
        printf("seed %" PRIu64 ": list-append checker over %zu operations:\n", w->seed, a->hist.n);
        jp_result_print(&r, stdout, 1);
        if (a->o->history_dir) {
            char path[512];
            snprintf(path, sizeof path, "%s/sim-txn-seed-%" PRIu64 ".jsonl", a->o->history_dir,
                     w->seed);
            FILE *f = fopen(path, "w");
            if (f && jp_history_write_jsonl(&a->hist, f, &err) == 0)
                printf("  history: %s\n", path);
            if (f)
                fclose(f);
        }
    } else if (r.valid == JP_UNKNOWN) {
        tot_unknown++;
        printf("seed %" PRIu64 ": checker verdict unknown: %s\n", w->seed,
               r.unknown_reason ? r.unknown_reason : "?");
    }
    jp_result_free(&r);
    if (!w->violation[0])
        check_reads_again(w);
    if (!w->violation[0])
        check_atomicity(w, healthy);
    for (int g = 0; g < w->ngroups && !healthy; g++)
        for (int h = 0; h < w->nhosts; h++)
            for (size_t i = 0; w->hosts[h].up && i < a->rep[h][g].nprep; i++)
                trace(w, "after the heal h%d g%d still holds txn %" PRIu64 " prepared", h + 1, g,
                      a->rep[h][g].prep[i].txn);
}

static void txn_free(world *w)
{
    app *a = A(w);
    tot_ok_rw += a->ok_rw;
    tot_ok_ro += a->ok_ro;
    tot_fail += a->fail;
    tot_info += a->info;
    tot_wounds += a->wounds;
    tot_stale += a->stale;
    tot_stale_reads += a->stale_reads;
    tot_behind += a->behind;
    tot_ok_2pc += a->ok_2pc;
    tot_commits_2pc += a->commits_2pc;
    tot_aborts_2pc += a->aborts_2pc;
    tot_prepares += a->prepares;
    tot_crashes_aimed += a->crashes_aimed;
    tot_queries += a->queries;
    tot_abort_logged += a->abort_logged;
    tot_relocks += a->relocks;
    tot_below_prepare += a->below_prepare;
    for (size_t i = 0; i < a->ntxns; i++) {
        txn *t = a->txns[i];
        for (int k = 0; k < MAX_OPS; k++)
            free(t->read[k].v);
        for (int k = 0; k < NKEYS; k++)
            free(t->cur[k].v);
        free(t);
    }
    free(a->txns);
    for (int k = 0; k < w->ngroups * KEYS_PER_GROUP; k++) {
        for (size_t i = 0; i < a->oracle[k].n; i++)
            free(a->oracle[k].v[i].list.v);
        free(a->oracle[k].v);
    }
    free(a->oracle);
    for (int h = 0; h < MAX_HOSTS; h++)
        for (int g = 0; g < MAX_GROUPS; g++) {
            tl_free(a->lead[h][g].tl);
            mv_close(a->rep[h][g].mv);
            rep_clear_2pc(&a->rep[h][g]);
        }
    free(a->msgs);
    jp_history_free(&a->hist);
    free(a->clients);
    free(a);
    w->app_state = NULL;
}

static void txn_report(void)
{
    if (g_opts->promise_reads)
        printf("promise reads: %ld group reads ready only by a leader's promise\n",
               tot_promise_reads);
    if (g_opts->clocks == CLOCKS_BEYOND) {
        printf("clocks beyond the bound: %ld seeds with real-time anomalies only (allowed):",
               tot_rt_seeds);
        for (int i = 0; i < n_rt_kinds; i++)
            printf(" %s %ld", rt_kinds[i].name, rt_kinds[i].n);
        printf("\n");
    }
    printf("transactions: %ld read-write ok, %ld read-only ok (%ld of them stale reads), %ld "
           "failed, %ld indeterminate, %ld wounds, %ld reads below the GC horizon, %ld bounded "
           "reads behind; checker: %ld seeds with anomalies, %ld unknown\n",
           tot_ok_rw, tot_ok_ro, tot_stale_reads, tot_fail, tot_info, tot_wounds, tot_stale,
           tot_behind, tot_anomalies, tot_unknown);
    printf("two-phase commit: %ld acknowledged ok, %ld COMMIT2 applied at a coordinator leader, "
           "%ld coordinator aborts, %ld prepares, %ld ABORT2 for unknown transactions, %ld "
           "re-locked by a new leader, %ld participant questions, %ld aimed crashes, %ld "
           "commits not above a prepare timestamp\n",
           tot_ok_2pc, tot_commits_2pc, tot_aborts_2pc, tot_prepares, tot_abort_logged, tot_relocks,
           tot_queries, tot_crashes_aimed, tot_below_prepare);
}

/* ---------------------------------------------------------------- command line */

static txn_opts topts = {.clients = 6, .cross = 0.5, .aim = 0.06, .stale = 20};

static int txn_arg(sim_opts *o, const char *a, const char *val)
{
    long long v;
    if (!strcmp(a, "--clients")) {
        if (mr_parse_int(val, 1, 64, &v)) {
            fprintf(stderr, "meridian-sim-txn: --clients: want 1..64, got '%s'\n", val);
            return 2;
        }
        topts.clients = (int)v;
    } else if (!strcmp(a, "--clocks")) {
        if (!strcmp(val, "wander"))
            topts.clocks = CLOCKS_WANDER;
        else if (!strcmp(val, "fast-host"))
            topts.clocks = CLOCKS_FAST_HOST;
        else if (!strcmp(val, "spread"))
            topts.clocks = CLOCKS_SPREAD;
        else if (!strcmp(val, "beyond"))
            topts.clocks = CLOCKS_BEYOND;
        else {
            fprintf(stderr,
                    "meridian-sim-txn: --clocks: want wander, fast-host, spread or beyond, got "
                    "'%s'\n",
                    val);
            return 2;
        }
    } else if (!strcmp(a, "--cross")) {
        if (mr_parse_int(val, 0, 100, &v)) {
            fprintf(stderr, "meridian-sim-txn: --cross: want 0..100 (percent), got '%s'\n", val);
            return 2;
        }
        topts.cross = (double)v / 100;
    } else if (!strcmp(a, "--stale")) {
        if (mr_parse_int(val, 0, 100, &v)) {
            fprintf(stderr, "meridian-sim-txn: --stale: want 0..100 (percent), got '%s'\n", val);
            return 2;
        }
        topts.stale = (int)v;
    } else if (!strcmp(a, "--aim")) {
        if (mr_parse_int(val, 0, 100, &v)) {
            fprintf(stderr, "meridian-sim-txn: --aim: want 0..100 (percent), got '%s'\n", val);
            return 2;
        }
        topts.aim = (double)v / 100;
    } else if (!strcmp(a, "--promise-reads")) {
        if (strcmp(val, "0") && strcmp(val, "1")) {
            fprintf(stderr, "meridian-sim-txn: --promise-reads: want 0 or 1, got '%s'\n", val);
            return 2;
        }
        topts.promise_reads = val[0] == '1';
    } else if (!strcmp(a, "--history-dir")) {
        topts.history_dir = val;
        return 0;
    } else if (!strcmp(a, "--break")) {
        if (!strcmp(val, "skip-commit-wait"))
            topts.skip_commit_wait = true;
        else if (!strcmp(val, "no-safe-wait"))
            topts.no_safe_wait = true;
        else if (!strcmp(val, "no-read-locks"))
            topts.no_read_locks = true;
        else if (!strcmp(val, "no-read-wait"))
            topts.no_read_wait = true;
        else if (!strcmp(val, "info-as-fail"))
            topts.info_as_fail = true;
        else if (!strcmp(val, "early-leader"))
            topts.early_leader = true;
        else if (!strcmp(val, "no-promise"))
            topts.no_promise = true;
        else if (!strcmp(val, "forget-prepared"))
            topts.forget_prepared = true;
        else if (!strcmp(val, "no-relock"))
            topts.no_relock = true;
        else if (!strcmp(val, "no-tm-safe"))
            topts.no_tm_safe = true;
        else if (!strcmp(val, "no-ts-floor"))
            topts.no_ts_floor = true;
        else {
            fprintf(stderr,
                    "meridian-sim-txn: --break: unknown '%s' (skip-commit-wait, no-safe-wait, "
                    "no-read-locks, no-read-wait, info-as-fail, early-leader, no-promise, "
                    "forget-prepared, no-relock, no-tm-safe, no-ts-floor)\n",
                    val);
            return 2;
        }
    } else {
        return 1;
    }
    size_t k = strlen(o->replay);
    snprintf(o->replay + k, sizeof o->replay - k, " %s %s", a, val);
    return 0;
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: meridian-sim-txn --seeds N [--seed S] [--replicas 3|5] [--groups G]\n"
           "                        [--steps K] [--bound DUR] [--clients C] [--clocks MODE]\n"
           "                        [--cross PCT] [--aim PCT] [--break NAME] [--mutant NAME]\n"
           "                        [--trace]\n"
           "Runs read-write transactions (locks at the leaders, commit through Paxos, two-phase\n"
           "commit across groups, commit wait) and read-only ones (lock-free at any replica, at\n"
           "TT.now().latest, after safe time) over G groups of the real Paxos core, MVCC store\n"
           "and lock table, with faults for K steps, then heals; checks the Paxos invariants\n"
           "after every step, the history for strict serializability with the Elle list-append\n"
           "checker, snapshot reads, the atomicity of two-phase commits, and that no prepared\n"
           "transaction outlives the heal.\n"
           "  --seeds N, --seed S, --replicas R, --groups G (default 2), --steps K (default\n"
           "  20000), --bound DUR (default random per seed, 0.5-8ms), --mutant NAME, --trace:\n"
           "                 as meridian-sim\n"
           "  --clients C    concurrent clients (default 6)\n"
           "  --clocks MODE  wander: every host's error wanders inside the bound (default);\n"
           "                 fast-host: h1's pinned near the top of its bound; spread: also\n"
           "                 every other host's near the bottom; beyond: h1's 3 bounds fast\n"
           "                 and h2's 2 bounds slow (lying clocks: real-time anomalies are\n"
           "                 tallied, any other is a violation)\n"
           "  --cross PCT    read-write transactions over several groups, percent (default 50)\n"
           "  --aim PCT      chance of crashing a participant's or the coordinator's leader right\n"
           "                 after a PREPARE is applied, percent (default 6; during faults only)\n"
           "  --break NAME   a broken variant that must be caught: skip-commit-wait,\n"
           "                 no-safe-wait, no-read-locks, no-read-wait, info-as-fail,\n"
           "                 early-leader (rare: seed 647 of 3000), no-promise,\n"
           "                 forget-prepared, no-relock (rare), no-tm-safe, no-ts-floor\n"
           "                 (a group's stamps may fall below a 2PC's s it applied)\n"
           "  --promise-reads 1  a ready leader serves a read-only transaction's reads by\n"
           "                 promising to stamp later writes above s_read (px_node_promise),\n"
           "                 needing only what it assigned applied, as the node's strong reads\n"
           "  --history-dir D  write each invalid seed's history to D/sim-txn-seed-S.jsonl\n"
           "Prints, last, 'seeds: N, violations: V, liveness failures: L'; exit status 1 if\n"
           "V or L is non-zero, 2 on bad arguments.\n");
}

int main(int argc, char **argv)
{
    static const sim_app txn_app = {
        .prog = "meridian-sim-txn",
        .init = txn_init,
        .replica_start = txn_replica_start,
        .replica_stop = txn_replica_stop,
        .apply = txn_apply,
        .snapshot = txn_snapshot,
        .install = txn_install,
        .stepped = txn_stepped,
        .event = txn_event,
        .done = txn_done,
        .finish = txn_finish,
        .free = txn_free,
        .report = txn_report,
    };
    mr_log_set_level(MR_LOG_WARN); /* one "created store" line per replica start is noise */
    /* Transactions take many events each: 20000 fault-phase events are about 4 s. */
    sim_opts o = {.seeds = 0, .seed = 1, .replicas = 3, .groups = 2, .steps = 20000};
    g_opts = &topts;
    return sim_main(argc, argv, &txn_app, &o, txn_arg, usage);
}

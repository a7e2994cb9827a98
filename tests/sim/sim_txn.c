/* meridian-sim-txn: transactions over the simulated world of sim_world.c, checked for strict
 * serializability (real-time order included) by the project's Elle list-append checker.
 *
 * Every replica of every group applies its chosen log to a real MVCC store (tablet/mvcc, an
 * SQLite ":memory:" database, rebuilt by the core's replay after a crash) and keeps its
 * safe time; each group leader runs the real wound-wait lock table (tablet/lock). The timing
 * rules are tablet/txn's: safe time, read timestamps, commit wait, the GC horizon.
 *
 * Clients run two kinds of transactions over a few keys per group, every appended value
 * unique, recorded in a Jepsen history (jepsen/history.h):
 *  - read-write, at one group's leader (Spanner §4.2.1): reads take shared locks and see the
 *    latest committed list; appends are buffered (each needs the key's current list, read
 *    under a lock first); at commit the leader takes exclusive locks, marks the transaction
 *    prepared, and proposes one commit record with the new lists through Paxos; the record's
 *    timestamp is its slot's; once it is applied at the leader, commit wait runs until
 *    TT.after(s), then the locks go and the client hears ok.
 *  - read-only, lock-free at *any* replica (followers and the spare host included, each with
 *    its own clock error), over keys of every group, at s_read = TT.now().latest of the
 *    serving host, once every group's safe time there reaches s_read (§4.2.2). An idle
 *    leader proposes a SAFE record every SAFE_EVERY so followers' safe time keeps up.
 * A transaction whose commit record may or may not be chosen (its leader crashed or lost
 * leadership, the client timed out) is recorded info, never ok or fail; one that never
 * proposed is fail.
 *
 * Negative controls (--break, each must be reported invalid by the checker):
 * skip-commit-wait acknowledges a commit as soon as it is applied, before TT.after(s): with
 * --clocks fast-host (h1's clock pinned near the top of its bound) the checker sees
 * real-time anomalies. no-read-wait serves reads once safe time allows, without waiting for
 * TT.after(s_read) (see tx_read_visible); no-safe-wait serves read-only transactions at
 * once; no-read-locks reads without shared locks; info-as-fail reports unknown outcomes as
 * failures; early-leader lets a new leader serve from the slot its core was to fill next
 * when it won (see leader_records). The lock table's own invariants (tl_check) are checked after
 * every call.
 *
 * Built for two-phase commit to come: the commit record carries the transaction id and its
 * writes per group; prepare timestamps would enter tx_tm_safe and tx_commit_ts. */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "jepsen/elle.h"
#include "jepsen/history.h"
#include "tablet/lock/tl.h"
#include "tablet/mvcc/mv.h"
#include "tablet/txn/tx.h"
#include "tests/sim/sim_world.h"

#define KEYS_PER_GROUP 3
#define MAX_OPS        4
#define SAFE_EVERY     (20 * MS) /* an idle leader's SAFE record period */
#define GC_EVERY       (200 * MS)
#define RETENTION      (800 * MS) /* short, so GC runs during the seed */
#define RW_TIMEOUT     (3000 * MS)
#define RO_TIMEOUT     (1000 * MS)

/* Clock errors: every host's wanders inside the bound (as in meridian-sim); or h1's is pinned
 * near the top of its bound (its timestamps run ahead of everyone's clock, yet its interval
 * still contains true time); or, besides, every other host's near the bottom. */
enum { CLOCKS_WANDER = 0, CLOCKS_FAST_HOST, CLOCKS_SPREAD };

typedef struct txn_opts {
    int clients;
    int clocks; /* CLOCKS_* */
    bool skip_commit_wait, no_safe_wait, no_read_locks, no_read_wait, info_as_fail;
    bool early_leader;
    const char *history_dir; /* where a failing seed's history goes (JSON lines) */
} txn_opts;

/* ---------------------------------------------------------------- state */

typedef enum {
    T_NEW,        /* not yet invoked */
    T_ACTIVE,     /* running micro-ops at the leader */
    T_LOCKWAIT,   /* waiting for a lock (req) */
    T_COMMITTING, /* commit record proposed */
    T_WAITING,    /* applied at the leader at commit_ts; commit wait */
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
    txn_state state;
    int g, h;       /* group (read-write) and serving host */
    uint64_t epoch; /* read-write: the leader table's epoch it runs in */
    int nops, next;
    micro_op op[MAX_OPS];
    keylist read[MAX_OPS];        /* what each read returned */
    keylist cur[KEYS_PER_GROUP];  /* read-write: current list per key of g (with own appends) */
    bool known[KEYS_PER_GROUP];   /* cur[i] has been read */
    bool written[KEYS_PER_GROUP]; /* cur[i] carries own appends */
    int lock_step;                /* commit: next key to lock exclusively */
    int held[KEYS_PER_GROUP];     /* lock mode held per key (0: none) */
    int wait_key, wait_mode;      /* the lock request being waited for */
    uint64_t gen;                 /* the serving host's incarnation */
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

typedef struct rep {
    mv_store *mv;
    int64_t paxos_safe; /* largest applied timestamp */
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

typedef struct app {
    const txn_opts *o;
    oracle_key *oracle;               /* per key */
    uint64_t oracle_upto[MAX_GROUPS]; /* slots recorded into it */
    jp_history hist;
    txn **txns;
    size_t ntxns, cap;
    client *clients;
    int nclients;
    int64_t next_process, next_value;
    uint64_t next_epoch;
    lead lead[MAX_HOSTS][MAX_GROUPS];
    rep rep[MAX_HOSTS][MAX_GROUPS];
    long ok_rw, ok_ro, fail, info, wounds, safe_records, stale, stale_reads, behind;
} app;

enum { A_STEP = 1, A_RESUME, A_COMMIT_WAIT, A_TIMEOUT, A_CLIENT, A_SAFE_TICK, A_MARKER, A_GC_TICK };

static long tot_stale_reads, tot_behind;
static long tot_ok_rw, tot_ok_ro, tot_fail, tot_info, tot_wounds, tot_stale, tot_anomalies,
    tot_unknown;

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

/* A live read-write transaction of this leader table. */
static bool txn_here(const txn *t, const lead *l, int h)
{
    return t && !t->ro && t->state != T_DONE && t->h == h && l->active && t->epoch == l->epoch;
}

/* Wounds and grants of one lock-table call: wounded transactions abort (they never
 * proposed: a prepared one cannot be wounded); granted waiters resume. */
static void lock_out(world *w, int h, int g, tl_out *out)
{
    lead *l = lead_of(w, h, g);
    for (size_t i = 0; i < out->nwounded; i++) {
        txn *t = txn_by_id(w, out->wounded[i]);
        A(w)->wounds++;
        if (txn_here(t, l, h)) {
            trace(w, "txn %" PRIu64 " wounded", t->id);
            finish_txn(w, t, JP_FAIL);
        }
        tl_release(l->tl, out->wounded[i], out);
    }
    for (size_t i = 0; i < out->ngranted; i++) {
        txn *t = txn_by_id(w, out->granted[i].txn);
        if (txn_here(t, l, h) && t->state == T_LOCKWAIT) {
            txn_to(w, t, T_ACTIVE);
            t->held[t->wait_key] = t->wait_mode;
            app_event(w, A_RESUME, t->id, 0);
        }
    }
    tl_out_reset(out);
    mr_err err = {0};
    if (tl_check(l->tl, &err))
        violate(w, "h%d g%d lock table: %s", h + 1, g, mr_err_msg(&err));
}

static void abort_at_leader(world *w, txn *t, jp_type outcome)
{
    lead *l = lead_of(w, t->h, t->g);
    bool here = txn_here(t, l, t->h);
    finish_txn(w, t, outcome);
    if (here) {
        tl_out out = {0};
        tl_release(l->tl, t->id, &out);
        lock_out(w, t->h, t->g, &out);
        tl_out_free(&out);
    }
}

/* Leadership of (h, g) ended (deposed, abdicated, crashed): its lock table goes. A
 * transaction whose record was proposed may still commit: info. One applied and in commit
 * wait has committed; it is acknowledged when the wait ends, unless the host crashed. */
static void lead_drop(world *w, int h, int g, bool crashed)
{
    lead *l = lead_of(w, h, g);
    if (!l->active)
        return;
    trace(w, "h%d g%d leader table dropped%s", h + 1, g, crashed ? " (crash)" : "");
    for (size_t i = 0; i < A(w)->ntxns; i++) {
        txn *t = A(w)->txns[i];
        if (!txn_here(t, l, h))
            continue;
        if (t->state == T_COMMITTING || (t->state == T_WAITING && crashed))
            finish_txn(w, t, JP_INFO);
        else if (t->state != T_WAITING)
            finish_txn(w, t, JP_FAIL);
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

/* ---------------------------------------------------------------- replicas */

static void txn_replica_start(world *w, int h, int g)
{
    rep *r = &A(w)->rep[h][g];
    mr_err err = {0};
    if (mv_open(":memory:", NULL, &r->mv, &err))
        violate(w, "h%d g%d mvcc open: %s", h + 1, g, mr_err_msg(&err));
    r->paxos_safe = 0;
}

static void txn_replica_stop(world *w, int h, int g)
{
    rep *r = &A(w)->rep[h][g];
    lead_drop(w, h, g, true);
    mv_close(r->mv);
    r->mv = NULL;
    /* A read-only transaction served here dies with the host: it changed nothing. */
    for (size_t i = 0; i < A(w)->ntxns; i++) {
        txn *t = A(w)->txns[i];
        if (t->ro && t->state == T_RO_WAIT && t->h == h)
            finish_txn(w, t, JP_FAIL);
    }
}

/* The leader's own transaction reached its store at s: commit wait begins. */
static void committed_here(world *w, int h, int g, uint64_t id, int64_t s)
{
    lead *l = lead_of(w, h, g);
    txn *t = txn_by_id(w, id);
    if (!txn_here(t, l, h) || t->state != T_COMMITTING)
        return;
    /* The core stamped the slot inside the lease it had then (a later membership change
     * may shorten the lease it reports now): below the furthest lease end seen. */
    if (!tx_ts_in_lease(s, 0, l->lease_end))
        violate(w,
                "h%d g%d committed txn %" PRIu64 " at %" PRId64 " outside its lease (end %" PRId64
                ")",
                h + 1, g, id, s - T0, l->lease_end - T0);
    t->commit_ts = s;
    txn_to(w, t, T_WAITING);
    app_event(w, A_COMMIT_WAIT, id, 0);
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
    if (voided || e->kind != PX_ENTRY_DATA || !r->mv)
        return;
    /* Decode every commit record of the slot: all apply in one store transaction at the
     * slot's timestamp. */
    mv_txn txs[64];
    mv_write *ws[64];
    uint64_t ids[64];
    size_t nt = 0;
    uint32_t off = 0, plen;
    const uint8_t *p;
    while (px_batch_next(e->data, e->len, &off, &p, &plen) == 1) {
        const uint8_t *q = p + PROP_BYTES, *end = p + plen;
        lead *l = lead_of(w, h, g);
        if (q < end && *q == 'S' && l->active && l->marker == sim_proposal_id(p)) {
            l->marker_applied = true;
            trace(w, "h%d g%d leader's first record applied at slot %" PRIu64, h + 1, g, e->slot);
        }
        if (nt == 64) {
            violate(w, "g%d slot %" PRIu64 ": more than 64 records in a slot", g, e->slot);
            break;
        }
        if (q >= end || *q++ != 'C')
            continue;
        uint64_t id, n;
        if (!rd_uint(&q, end, 8, &id) || !rd_uint(&q, end, 4, &n) || n > KEYS_PER_GROUP) {
            violate(w, "g%d slot %" PRIu64 ": malformed commit record", g, e->slot);
            break;
        }
        ws[nt] = xcalloc(n, sizeof *ws[nt]);
        for (uint64_t i = 0; i < n; i++) {
            uint64_t kl, vl;
            if (!rd_uint(&q, end, 2, &kl) || end - q < (ptrdiff_t)kl) {
                violate(w, "g%d slot %" PRIu64 ": malformed commit record", g, e->slot);
                break;
            }
            ws[nt][i] = (mv_write){.op = MV_PUT, .key = q, .key_len = kl};
            q += kl;
            if (!rd_uint(&q, end, 4, &vl) || end - q < (ptrdiff_t)vl) {
                violate(w, "g%d slot %" PRIu64 ": malformed commit record", g, e->slot);
                break;
            }
            ws[nt][i].value = q;
            ws[nt][i].len = vl;
            q += vl;
        }
        txs[nt] = (mv_txn){.commit_ts = e->ts, .w = ws[nt], .n = n};
        ids[nt++] = id;
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
            oracle_add(w, &ws[i][j], e->ts);
        free(ws[i]);
    }
    if (e->ts > r->paxos_safe)
        r->paxos_safe = e->ts;
    for (size_t i = 0; i < nt && !w->violation[0]; i++)
        committed_here(w, h, g, ids[i], e->ts);
}

static int snap_sink(void *arg, const void *buf, size_t len)
{
    wb_put(arg, buf, len);
    return 0;
}

static void txn_snapshot(world *w, int h, int g, uint8_t **buf, size_t *len)
{
    rep *r = &A(w)->rep[h][g];
    wbuf b = {0};
    wb_uint(&b, (uint64_t)r->paxos_safe, 8);
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
    const uint8_t *q = b;
    uint64_t safe;
    mr_err err = {0};
    if (!rd_uint(&q, b + len, 8, &safe) || !r->mv || mv_snapshot_load(r->mv, q, len - 8, &err)) {
        violate(w, "h%d g%d mvcc snapshot install: %s", h + 1, g, mr_err_msg(&err));
        return;
    }
    r->paxos_safe = (int64_t)safe > m->last_ts ? (int64_t)safe : m->last_ts;
}

/* ---------------------------------------------------------------- read-write transactions */

static int key_index(const txn *t, int key)
{
    return key - t->g * KEYS_PER_GROUP;
}

/* Reads key i of the group at the leader's latest applied state (it holds a lock on it). */
static bool read_latest(world *w, txn *t, int i)
{
    rep *r = &A(w)->rep[t->h][t->g];
    char k[32];
    key_name(t->g * KEYS_PER_GROUP + i, k, sizeof k);
    mv_version v = {0};
    mr_err err = {0};
    int rc = mv_get(r->mv, k, strlen(k), MV_TS_MAX, &v, &err);
    free(t->cur[i].v);
    t->cur[i] = (keylist){0};
    if (rc == 0) {
        list_decode(v.value, v.len, &t->cur[i]);
        free(v.value);
    } else if (rc != MR_ENOTFOUND) {
        violate(w, "h%d g%d read %s: %s", t->h + 1, t->g, k, mr_err_msg(&err));
        return false;
    }
    t->known[i] = true;
    return true;
}

/* Takes a lock on key i; true when granted (false: waiting, or the transaction ended). */
static bool lock_key(world *w, txn *t, int i, tl_mode mode)
{
    if (t->held[i] >= (int)mode)
        return true;
    lead *l = lead_of(w, t->h, t->g);
    char k[32];
    key_name(t->g * KEYS_PER_GROUP + i, k, sizeof k);
    tl_lock lk = {.mode = mode, .start = (const uint8_t *)k, .start_len = strlen(k)};
    tl_out out = {0};
    uint64_t req;
    mr_err err = {0};
    int rc = tl_acquire(l->tl, t->id, t->prio, &lk, &req, &out, &err);
    lock_out(w, t->h, t->g, &out);
    tl_out_free(&out);
    if (rc < 0) {
        violate(w, "lock table: %s", mr_err_msg(&err));
        return false;
    }
    if (t->state == T_DONE) /* wounded meanwhile */
        return false;
    if (rc == TL_WOUNDED) {
        abort_at_leader(w, t, JP_FAIL);
        return false;
    }
    if (rc == TL_WAIT) {
        txn_to(w, t, T_LOCKWAIT);
        t->wait_key = i;
        t->wait_mode = (int)mode;
        return false;
    }
    t->held[i] = (int)mode;
    return true;
}

static void propose_commit(world *w, txn *t)
{
    lead *l = lead_of(w, t->h, t->g);
    mr_err err = {0};
    if (tl_prepare(l->tl, t->id, &err)) {
        abort_at_leader(w, t, JP_FAIL);
        return;
    }
    wbuf b = {0};
    uint8_t c = 'C';
    wb_put(&b, &c, 1);
    wb_uint(&b, t->id, 8);
    int n = 0;
    for (int i = 0; i < KEYS_PER_GROUP; i++)
        n += t->written[i];
    wb_uint(&b, (uint64_t)n, 4);
    for (int i = 0; i < KEYS_PER_GROUP; i++) {
        if (!t->written[i])
            continue;
        char k[32];
        key_name(t->g * KEYS_PER_GROUP + i, k, sizeof k);
        size_t vl;
        uint8_t *v = list_encode(&t->cur[i], &vl);
        wb_uint(&b, strlen(k), 2);
        wb_put(&b, k, strlen(k));
        wb_uint(&b, vl, 4);
        wb_put(&b, v, vl);
        free(v);
    }
    uint64_t pid = sim_new_proposal(w, t->g, b.b, b.n);
    /* COMMITTING first: should the step end this leadership, the record may still be
     * chosen, and lead_drop must call the outcome unknown. */
    txn_to(w, t, T_COMMITTING);
    l->last_propose = w->now;
    int rc = sim_submit_at(w, t->g, pid, t->h, b.b, b.n);
    free(b.b);
    if (rc && t->state == T_COMMITTING) {
        abort_at_leader(w, t, JP_FAIL); /* not queued: it can never be chosen */
        return;
    }
    trace(w, "txn %" PRIu64 " commit proposed at h%d g%d", t->id, t->h + 1, t->g);
}

/* Runs the transaction's next steps at its leader until it waits or proposes. */
static void rw_step(world *w, txn *t)
{
    if (t->state != T_ACTIVE)
        return;
    if (!lead_ready(w, t->h, t->g)) {
        abort_at_leader(w, t, JP_FAIL); /* never proposed */
        return;
    }
    bool locks = !O(w)->no_read_locks;
    while (t->next < t->nops) {
        micro_op *m = &t->op[t->next];
        int i = key_index(t, m->key);
        /* A read, or an append to a key not yet known: its current list, under a shared
         * lock (the lock is what keeps it current until commit). */
        if (!t->known[i]) {
            if (locks && !lock_key(w, t, i, TL_SHARED))
                return;
            if (!read_latest(w, t, i))
                return;
        }
        if (m->append) {
            list_push(&t->cur[i], m->v);
            t->written[i] = true;
        } else {
            list_copy(&t->read[t->next], &t->cur[i]);
        }
        t->next++;
        if (t->next < t->nops) { /* the client sends the next micro-op */
            app_event(w, A_STEP, t->id, 2 * net_delay());
            return;
        }
    }
    /* Commit: exclusive locks on the written keys, oldest-first by key. */
    while (t->lock_step < KEYS_PER_GROUP) {
        int i = t->lock_step;
        if (t->written[i] && !lock_key(w, t, i, TL_EXCLUSIVE))
            return;
        t->lock_step++;
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
    lead *l = lead_of(w, t->h, t->g);
    bool here = txn_here(t, l, t->h);
    finish_txn(w, t, JP_OK);
    if (here) {
        tl_out out = {0};
        tl_release(l->tl, t->id, &out);
        lock_out(w, t->h, t->g, &out);
        tl_out_free(&out);
    }
}

/* ---------------------------------------------------------------- read-only transactions */

static tx_replica_time replica_time(world *w, int h, int g)
{
    /* No two-phase commit yet: nothing is ever prepared-but-undecided at a replica. */
    return (tx_replica_time){.paxos_safe = A(w)->rep[h][g].paxos_safe,
                             .tm_safe = tx_tm_safe(NULL, 0)};
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
    int h;
    if (ro) {
        h = ro_host(w);
        if (h < 0) {
            app_event(w, A_CLIENT, (uint64_t)c, 10 * MS);
            return;
        }
    } else {
        h = leader_of(w, g);
        if (h < 0 || !lead_ready(w, h, g)) { /* no leader to talk to yet: try again later */
            app_event(w, A_CLIENT, (uint64_t)c, 10 * MS);
            return;
        }
    }
    txn *t = new_txn(w, c);
    t->ro = ro;
    t->g = g;
    t->h = h;
    t->gen = w->hosts[h].gen;
    t->nops = (int)rnd_range(1, MAX_OPS);
    bool appends = false;
    for (int i = 0; i < t->nops; i++) {
        int kg = ro ? (int)rnd_range(0, w->ngroups - 1) : g;
        t->op[i].key = kg * KEYS_PER_GROUP + (int)rnd_range(0, KEYS_PER_GROUP - 1);
        t->op[i].append = !ro && (chance(0.5) || (i == t->nops - 1 && !appends));
        appends |= t->op[i].append;
        if (t->op[i].append)
            t->op[i].v = ++a->next_value;
    }
    if (ro) {
        /* Strong reads go into the history; stale ones (not strictly serializable by
         * design) are checked against the committed versions only. */
        int64_t r = rnd_range(0, 9);
        if (r == 8)
            t->bound =
                (tx_read_bound){.mode = TX_READ_BOUNDED, .staleness_ns = rnd_range(0, 300 * MS)};
        else if (r == 9)
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
        lead *l = lead_of(w, h, g);
        t->epoch = l->epoch;
        t->prio = host_tt(w, h).latest; /* wound-wait age: the start timestamp */
        txn_to(w, t, T_ACTIVE);
        trace(w, "txn %" PRIu64 " rw at h%d g%d, %d ops", t->id, h + 1, g, t->nops);
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
        abort_at_leader(w, t, JP_FAIL);
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
    for (int g = 0; g < w->ngroups; g++)
        app_event(w, A_SAFE_TICK, (uint64_t)g, SAFE_EVERY);
    for (int h = 0; h < w->nhosts; h++)
        app_event(w, A_GC_TICK, (uint64_t)h, GC_EVERY);
    if (a->o->clocks != CLOCKS_WANDER) {
        w->hosts[0].clock_err = w->bound - w->bound / 20;
        w->hosts[0].pinned = true;
    }
    for (int h = 1; h < w->nhosts && a->o->clocks == CLOCKS_SPREAD; h++) {
        w->hosts[h].clock_err = -(w->bound - w->bound / 20);
        w->hosts[h].pinned = true;
    }
}

static bool txn_done(world *w)
{
    for (int c = 0; c < A(w)->nclients; c++)
        if (A(w)->clients[c].cur)
            return false;
    return true;
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
    if (r.valid == JP_INVALID) {
        tot_anomalies++;
        char names[400] = "";
        for (size_t i = 0; i < r.n && strlen(names) < 300; i++)
            if (!strstr(names, r.anomalies[i].name)) {
                strcat(names, " ");
                strcat(names, r.anomalies[i].name);
            }
        violate(w, "not strictly serializable (%zu anomalies:%s)", r.n, names);
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
    for (size_t i = 0; i < a->ntxns; i++) {
        txn *t = a->txns[i];
        for (int k = 0; k < MAX_OPS; k++)
            free(t->read[k].v);
        for (int k = 0; k < KEYS_PER_GROUP; k++)
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
        }
    jp_history_free(&a->hist);
    free(a->clients);
    free(a);
    w->app_state = NULL;
}

static void txn_report(void)
{
    printf("transactions: %ld read-write ok, %ld read-only ok (%ld of them stale reads), %ld "
           "failed, %ld indeterminate, %ld wounds, %ld reads below the GC horizon, %ld bounded "
           "reads behind; checker: %ld seeds with anomalies, %ld unknown\n",
           tot_ok_rw, tot_ok_ro, tot_stale_reads, tot_fail, tot_info, tot_wounds, tot_stale,
           tot_behind, tot_anomalies, tot_unknown);
}

/* ---------------------------------------------------------------- command line */

static txn_opts topts = {.clients = 6};

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
        else {
            fprintf(stderr,
                    "meridian-sim-txn: --clocks: want wander, fast-host or spread, got '%s'\n",
                    val);
            return 2;
        }
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
        else {
            fprintf(stderr,
                    "meridian-sim-txn: --break: unknown '%s' (skip-commit-wait, no-safe-wait, "
                    "no-read-locks, no-read-wait, info-as-fail, early-leader)\n",
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
    fprintf(f,
            "usage: meridian-sim-txn --seeds N [--seed S] [--replicas 3|5] [--groups G]\n"
            "                        [--steps K] [--bound DUR] [--clients C] [--clocks MODE]\n"
            "                        [--break NAME] [--mutant NAME] [--trace]\n"
            "Runs read-write transactions (locks at the leader, commit through Paxos, commit\n"
            "wait) and read-only ones (lock-free at any replica, at TT.now().latest, after safe\n"
            "time) over G groups of the real Paxos core, MVCC store and lock table, with faults\n"
            "for K steps, then heals; checks the Paxos invariants after every step and the\n"
            "history for strict serializability with the Elle list-append checker.\n"
            "  --seeds N, --seed S, --replicas R, --groups G (default 2), --steps K (default\n"
            "  20000), --bound DUR (default random per seed, 0.5-8ms), --mutant NAME, --trace:\n"
            "                 as meridian-sim\n"
            "  --clients C    concurrent clients (default 6)\n"
            "  --clocks MODE  wander: every host's error wanders inside the bound (default);\n"
            "                 fast-host: h1's pinned near the top of its bound; spread: also\n"
            "                 every other host's near the bottom\n"
            "  --break NAME   a broken variant that must be caught: skip-commit-wait,\n"
            "                 no-safe-wait, no-read-locks, no-read-wait, info-as-fail,\n"
            "                 early-leader (rare: seed 647 of 3000)\n"
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

/* One replica of one Multi-Paxos group: the step(event) -> actions state machine.
 *
 * Sections: memory and actions; the log; configurations and quorums; leases; phase 1
 * (candidate and acceptor sides); phase 2; learning and snapshots; timers; the entry points.
 *
 * Membership change (why it is safe). A CONFIG entry chosen at slot c takes effect at slot
 * c + alpha (Lamport, "Paxos Made Simple" §3: "the leader can get alpha commands ahead").
 * The leader never proposes beyond commit + alpha, so the configuration of every slot it
 * proposes is already decided. Phase 2 for slot s needs a majority of config_at(s); phase 1
 * is per slot too: the leader proposes s only once its promise set holds a majority of
 * config_at(s) (it sends PREPARE with its same ballot to new members when they appear), and
 * it takes the value of s only from members of config_at(s). Leases and leadership need a
 * majority of every configuration governing the window (commit, commit + alpha]. Changes are
 * one add or one remove at a time (replace = add then remove) and only one is pending at a
 * time, so majorities of consecutive configurations intersect, which keeps leases of
 * successive leaders disjoint across a change. A leader refuses to remove itself (transfer
 * leadership first). */
#include "tablet/paxos/px.h"

#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_RING  64
#define LEARN_CHUNK 256
#define MAX_CFGS    32
#define SLOT_SANITY (1ull << 24)

typedef struct rec {
    bool present, chosen;
    bool voided; /* committed with a timestamp not above an earlier slot's: a no-op */
    px_ballot ballot;
    int64_t ts;
    uint8_t kind;
    uint32_t len;
    uint8_t *data;     /* owned */
    uint64_t acks;     /* leader: members that accepted it in the current ballot */
    uint64_t self_seq; /* leader: persist batch of its own acceptance */
} rec;

typedef struct report {
    uint64_t slot;
    px_node_id node;
    px_ballot ballot;
    int64_t ts;
    uint8_t kind;
    uint32_t len;
    uint8_t *data; /* owned */
} report;

typedef struct prop {
    uint8_t *data; /* owned */
    uint32_t len;
} prop;

struct px_node {
    px_options o;
    px_state state;
    bool started;
    uint64_t rng;
    tt_interval now;

    /* acceptor state (promised is durable) */
    px_ballot promised;
    px_ballot max_seen;
    px_node_id leader_hint;
    px_ballot vote_ballot; /* lease vote: who holds it ... */
    int64_t vote_until;    /* ... until TT.after(vote_until) on our clock */
    int64_t grace_until;   /* after a restart: no vote for a new node before TT.after(this) */
    int64_t election_deadline;

    /* log */
    uint64_t log_start; /* slot of log[0] */
    rec *log;
    size_t log_len, log_cap;
    uint64_t commit, applied, snap_requested;
    int64_t last_ts;   /* largest timestamp anywhere in our log */
    int64_t commit_ts; /* largest timestamp of a non-void entry at or below commit */
    px_snapshot_meta snap_meta;
    uint8_t *snap;
    uint32_t snap_len;
    px_config_at cfgs[MAX_CFGS];
    uint32_t ncfgs;

    /* candidate / leader */
    uint64_t promised_set;
    report *reports;
    size_t nreports, reports_cap;
    uint64_t recovery_end; /* slots below are recovered, at or above are new */
    uint64_t proposed_upto;
    int64_t lease_end;
    uint64_t lease_seq, ballot_first_seq;
    int64_t lease_sent[LEASE_RING];
    int64_t vote_start[PX_MAX_NODE_ID + 1];
    uint64_t peer_commit[PX_MAX_NODE_ID + 1];
    int64_t last_hb;
    int64_t s_max;
    prop *queue;
    size_t qhead, qlen, qcap;
    bool cfg_wanted;
    px_config cfg_next;
    uint64_t cfg_slot; /* slot of our pending CONFIG entry, 0 if none */

    /* persistence */
    uint64_t persist_seq, durable_seq;
    bool batch_has_persist;

    /* the current batch */
    px_action *acts;
    size_t nacts, acts_cap;
    void **grave; /* freed at the start of the next call */
    size_t ngrave, grave_cap;
    bool oom;
    uint64_t *accept_slots; /* slots proposed in this step (arena) */
    size_t naccept, accept_cap;
};

/* ---------------------------------------------------------------- memory and actions */

static void grave_push(px_node *n, void *p)
{
    if (!p)
        return;
    if (n->ngrave == n->grave_cap) {
        size_t cap = n->grave_cap ? 2 * n->grave_cap : 64;
        void **g = realloc(n->grave, cap * sizeof *g);
        if (!g) {
            /* Cannot defer: leaking beats a dangling pointer in the batch. */
            n->oom = true;
            return;
        }
        n->grave = g;
        n->grave_cap = cap;
    }
    n->grave[n->ngrave++] = p;
}

static void grave_flush(px_node *n)
{
    for (size_t i = 0; i < n->ngrave; i++)
        free(n->grave[i]);
    n->ngrave = 0;
}

/* Memory valid until the next call into the node. */
static void *arena(px_node *n, size_t size)
{
    void *p = calloc(1, size ? size : 1);
    if (!p) {
        n->oom = true;
        return NULL;
    }
    grave_push(n, p);
    return p;
}

static px_action *act(px_node *n, px_action_kind kind)
{
    static px_action dummy;
    if (n->nacts == n->acts_cap) {
        size_t cap = n->acts_cap ? 2 * n->acts_cap : 32;
        px_action *a = realloc(n->acts, cap * sizeof *a);
        if (!a) {
            n->oom = true;
            memset(&dummy, 0, sizeof dummy);
            return &dummy;
        }
        n->acts = a;
        n->acts_cap = cap;
    }
    px_action *a = &n->acts[n->nacts++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    return a;
}

static px_persist *persist(px_node *n, px_persist_kind kind)
{
    px_action *a = act(n, PX_ACT_PERSIST);
    a->persist.kind = kind;
    if (!n->batch_has_persist) {
        n->batch_has_persist = true;
        n->persist_seq++;
    }
    return &a->persist;
}

static px_msg *msg_to(px_node *n, px_node_id to, px_msg_type type)
{
    px_action *a = act(n, PX_ACT_SEND);
    a->to = to;
    a->msg.type = (uint8_t)type;
    a->msg.group = n->o.group;
    a->msg.from = n->o.self;
    return &a->msg;
}

static uint64_t rnd(px_node *n)
{
    /* xorshift64*: deterministic per seed, no global state. */
    uint64_t x = n->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    n->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* ---------------------------------------------------------------- named states */

const char *px_state_name(px_state s)
{
    static const char *const names[PX_NSTATES] = {"follower", "candidate", "leader", "abdicating"};
    return s < PX_NSTATES ? names[s] : "?";
}

/* Allowed transitions (see px.h). Checked on every change. */
static const bool allowed[PX_NSTATES][PX_NSTATES] = {
    [PX_FOLLOWER] = {[PX_CANDIDATE] = true},
    [PX_CANDIDATE] = {[PX_CANDIDATE] = true, [PX_LEADER] = true, [PX_FOLLOWER] = true},
    [PX_LEADER] = {[PX_ABDICATING] = true, [PX_FOLLOWER] = true},
    [PX_ABDICATING] = {[PX_FOLLOWER] = true},
};

static void reports_clear(px_node *n);
static void queue_clear(px_node *n);

static void set_state(px_node *n, px_state to)
{
    /* Checked in every build (NDEBUG too): a forbidden transition is a bug in this file,
     * never the result of input, and continuing would risk safety. */
    if (!allowed[n->state][to]) {
        fprintf(stderr, "px: node %u: forbidden transition %s -> %s\n", n->o.self,
                px_state_name(n->state), px_state_name(to));
        abort();
    }
    n->state = to;
    if (to == PX_FOLLOWER || to == PX_ABDICATING) {
        reports_clear(n);
        queue_clear(n);
        n->cfg_wanted = false;
        n->cfg_slot = 0;
    }
    if (to != PX_LEADER)
        n->lease_end = to == PX_ABDICATING ? n->lease_end : 0;
}

/* ---------------------------------------------------------------- the log */

static rec *rec_at(px_node *n, uint64_t slot)
{
    if (slot < n->log_start || slot - n->log_start >= n->log_len)
        return NULL;
    return &n->log[slot - n->log_start];
}

/* The record for `slot`, growing the log; NULL below log_start or when out of memory. */
static rec *rec_get(px_node *n, uint64_t slot)
{
    if (slot < n->log_start)
        return NULL;
    size_t idx = slot - n->log_start;
    if (idx >= n->log_cap) {
        size_t cap = n->log_cap ? n->log_cap : 64;
        while (cap <= idx)
            cap *= 2;
        rec *l = realloc(n->log, cap * sizeof *l);
        if (!l) {
            n->oom = true;
            return NULL;
        }
        memset(l + n->log_cap, 0, (cap - n->log_cap) * sizeof *l);
        n->log = l;
        n->log_cap = cap;
    }
    if (idx >= n->log_len)
        n->log_len = idx + 1;
    return &n->log[idx];
}

static uint64_t log_last(const px_node *n)
{
    return n->log_start + n->log_len - 1; /* log_start - 1 when empty */
}

static px_entry rec_entry(uint64_t slot, const rec *r)
{
    px_entry e = {.slot = slot,
                  .ballot = r->ballot,
                  .ts = r->ts,
                  .kind = r->kind,
                  .len = r->len,
                  .data = r->data};
    return e;
}

/* Stores an entry (copying its bytes) and emits its persist action. */
static rec *log_store(px_node *n, uint64_t slot, px_ballot b, int64_t ts, uint8_t kind,
                      const uint8_t *data, uint32_t len, bool chosen)
{
    rec *r = rec_get(n, slot);
    if (!r)
        return NULL;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        n->oom = true;
        return NULL;
    }
    if (len)
        memcpy(copy, data, len);
    grave_push(n, r->data);
    r->present = true;
    r->chosen = chosen;
    r->ballot = b;
    r->ts = ts;
    r->kind = kind;
    r->len = len;
    r->data = copy;
    r->acks = 0;
    r->self_seq = 0;
    if (ts > n->last_ts)
        n->last_ts = ts;
    px_persist *p = persist(n, PX_PERSIST_ENTRY);
    p->entry = rec_entry(slot, r);
    return r;
}

/* Drops records below `slot` (they are covered by the snapshot). */
static void log_drop_below(px_node *n, uint64_t slot)
{
    if (slot <= n->log_start)
        return;
    uint64_t k = slot - n->log_start;
    if (k > n->log_len)
        k = n->log_len;
    if (k > 0) {
        for (uint64_t i = 0; i < k; i++)
            grave_push(n, n->log[i].data);
        memmove(n->log, n->log + k, (n->log_len - k) * sizeof *n->log);
        memset(n->log + (n->log_len - k), 0, k * sizeof *n->log);
        n->log_len -= k;
    }
    n->log_start = slot;
}

/* ---------------------------------------------------------------- configurations */

static void add_config(px_node *n, uint64_t effect, const px_config *c)
{
    for (uint32_t i = 0; i < n->ncfgs; i++)
        if (n->cfgs[i].effect_slot == effect)
            return;
    /* Forget configurations no slot at or above the commit point can use. */
    while (n->ncfgs >= 2 && n->cfgs[1].effect_slot <= n->commit + 1 &&
           n->cfgs[1].effect_slot <= n->snap_meta.slot + 1)
        memmove(n->cfgs, n->cfgs + 1, --n->ncfgs * sizeof *n->cfgs);
    if (n->ncfgs == MAX_CFGS)
        memmove(n->cfgs, n->cfgs + 1, --n->ncfgs * sizeof *n->cfgs);
    uint32_t i = n->ncfgs;
    while (i > 0 && n->cfgs[i - 1].effect_slot > effect) {
        n->cfgs[i] = n->cfgs[i - 1];
        i--;
    }
    n->cfgs[i].effect_slot = effect;
    n->cfgs[i].config = *c;
    n->ncfgs++;
}

/* The configuration governing `slot`: the latest one in effect at or before it. */
static const px_config *cfg_at(const px_node *n, uint64_t slot)
{
    const px_config *c = &n->cfgs[0].config;
    for (uint32_t i = 0; i < n->ncfgs; i++)
        if (n->cfgs[i].effect_slot <= slot)
            c = &n->cfgs[i].config;
    return c;
}

/* Configurations governing the window (commit, commit + alpha]: at most a few. */
static uint32_t window_cfgs(const px_node *n, const px_config **out, uint32_t max)
{
    uint32_t k = 0;
    uint64_t lo = n->commit + 1, hi = n->commit + n->o.alpha;
    for (uint32_t i = 0; i < n->ncfgs && k < max; i++) {
        uint64_t from = n->cfgs[i].effect_slot;
        uint64_t to = i + 1 < n->ncfgs ? n->cfgs[i + 1].effect_slot - 1 : UINT64_MAX;
        if (to >= lo && from <= hi)
            out[k++] = &n->cfgs[i].config;
    }
    if (k == 0 && n->ncfgs > 0)
        out[k++] = cfg_at(n, lo);
    return k;
}

static uint64_t cfg_mask(const px_config *c)
{
    uint64_t m = 0;
    for (uint32_t i = 0; i < c->n; i++)
        m |= 1ull << c->nodes[i];
    return m;
}

static uint64_t window_mask(const px_node *n)
{
    const px_config *w[MAX_CFGS];
    uint32_t k = window_cfgs(n, w, MAX_CFGS);
    uint64_t m = 0;
    for (uint32_t i = 0; i < k; i++)
        m |= cfg_mask(w[i]);
    return m;
}

/* A majority (Paxos Made Simple §2.2); the short-quorum mutant takes one less. */
static uint32_t quorum(const px_node *n, const px_config *c)
{
    uint32_t q = c->n / 2 + 1;
    if (n->o.mutant == PX_MUTANT_SHORT_QUORUM && q > 1)
        q--;
    return q;
}

static bool has_quorum(const px_node *n, const px_config *c, uint64_t set)
{
    return (uint32_t)__builtin_popcountll(set & cfg_mask(c)) >= quorum(n, c);
}

static bool window_quorum(const px_node *n, uint64_t set)
{
    const px_config *w[MAX_CFGS];
    uint32_t k = window_cfgs(n, w, MAX_CFGS);
    for (uint32_t i = 0; i < k; i++)
        if (!has_quorum(n, w[i], set))
            return false;
    return k > 0;
}

/* ---------------------------------------------------------------- leases (Spanner §4.1.1) */

/* A vote counted from the TT.earliest at which the request was sent holds, in true time,
 * at least until that instant + lease: the voter keeps it until TT.after(its receive-time
 * latest + lease). The lease is the q-th most recent vote of every window configuration. */
static void lease_recompute(px_node *n)
{
    const px_config *w[MAX_CFGS];
    uint32_t k = window_cfgs(n, w, MAX_CFGS);
    int64_t end = k ? INT64_MAX : 0;
    for (uint32_t i = 0; i < k; i++) {
        int64_t v[PX_MAX_NODES];
        uint32_t m = w[i]->n;
        for (uint32_t j = 0; j < m; j++)
            v[j] = n->vote_start[w[i]->nodes[j]];
        for (uint32_t a = 1; a < m; a++) /* insertion sort, descending */
            for (uint32_t b = a; b > 0 && v[b] > v[b - 1]; b--) {
                int64_t t = v[b];
                v[b] = v[b - 1];
                v[b - 1] = t;
            }
        uint32_t q = quorum(n, w[i]);
        int64_t vq = v[q - 1];
        end = vq == 0 ? 0 : min64(end, vq + n->o.lease_ns);
    }
    n->lease_end = end;
}

static bool lease_valid(const px_node *n)
{
    return n->state == PX_LEADER && n->lease_end > 0 && n->now.latest < n->lease_end;
}

/* Records that `from` voted for our ballot in answer to request `seq`. */
static void lease_vote(px_node *n, px_node_id from, uint64_t seq)
{
    if (seq < n->ballot_first_seq || seq > n->lease_seq || n->lease_seq - seq >= LEASE_RING)
        return;
    n->vote_start[from] = max64(n->vote_start[from], n->lease_sent[seq % LEASE_RING]);
}

/* A new lease request: remembers when (TT.earliest) it leaves, and renews our own vote. */
static uint64_t lease_request(px_node *n)
{
    uint64_t seq = ++n->lease_seq;
    n->lease_sent[seq % LEASE_RING] = n->now.earliest;
    n->vote_ballot = n->promised;
    n->vote_until = n->now.latest + n->o.lease_ns;
    n->vote_start[n->o.self] = n->now.earliest;
    return seq;
}

/* May this replica give its lease vote (and promise) to `b`? Not while a vote for another
 * node may still hold, nor during the post-restart grace (Spanner §4.1.1: disjointness). */
static bool vote_free_for(const px_node *n, px_ballot b)
{
    if (n->o.mutant == PX_MUTANT_NO_LEASE_WAIT)
        return true;
    if (n->vote_ballot.node != b.node && !tt_interval_after(n->now, n->vote_until))
        return false;
    if (n->promised.node != b.node && !tt_interval_after(n->now, n->grace_until))
        return false;
    return true;
}

static void grant_vote(px_node *n, px_ballot b)
{
    n->vote_ballot = b;
    n->vote_until = n->now.latest + n->o.lease_ns;
}

/* ---------------------------------------------------------------- commit, apply, snapshots */

static void reset_election(px_node *n)
{
    int64_t e = n->o.election_ns;
    n->election_deadline = n->now.earliest + e + (int64_t)(rnd(n) % (uint64_t)(e + 1));
}

static void apply_upto_commit(px_node *n)
{
    while (n->applied < n->commit) {
        rec *r = rec_at(n, n->applied + 1);
        if (!r || !r->present)
            break; /* cannot happen: commit only covers present records */
        px_action *a = act(n, PX_ACT_APPLY);
        a->entry = rec_entry(n->applied + 1, r);
        a->voided = r->voided;
        n->applied++;
    }
    if (n->o.snapshot_every && n->applied >= n->snap_meta.slot + n->o.snapshot_every &&
        n->snap_requested <= n->snap_meta.slot) {
        px_action *a = act(n, PX_ACT_TAKE_SNAPSHOT);
        a->slot = n->applied;
        n->snap_requested = n->applied;
    }
}

/* Timestamps must increase in slot order across leaders (Spanner §4.1.2). Leases and the
 * s_max wait make every leader's fresh stamps exceed its predecessors', but Paxos may
 * still choose, after a newer leader's slots, an older leader's value that only a minority
 * had accepted (a later leader re-proposes it, P2c). Such an entry carries a stamp not
 * above an earlier slot's; every replica sees the same chosen log, so all of them void it
 * the same way: it is applied as a no-op (its client was never answered and retries). */
static void commit_one(px_node *n, rec *r)
{
    r->voided = false;
    if (r->kind == PX_ENTRY_NOOP)
        return;
    if (r->ts <= n->commit_ts) {
        r->voided = true;
        return;
    }
    n->commit_ts = r->ts;
}

/* Moves the commit point over contiguous chosen records, registering configurations. */
static void advance_commit(px_node *n)
{
    uint64_t old = n->commit;
    for (;;) {
        rec *r = rec_at(n, n->commit + 1);
        if (!r || !r->present || !r->chosen)
            break;
        n->commit++;
        commit_one(n, r);
        if (r->kind == PX_ENTRY_CONFIG && !r->voided) {
            px_config c;
            if (px_config_decode(r->data, r->len, &c, NULL) == 0)
                add_config(n, n->commit + n->o.alpha, &c);
        }
    }
    if (n->commit > old) {
        persist(n, PX_PERSIST_COMMIT)->commit = n->commit;
        if (n->proposed_upto < n->commit)
            n->proposed_upto = n->commit;
        if (n->cfg_slot && n->cfg_slot <= n->commit)
            n->cfg_slot = 0;
        apply_upto_commit(n);
    }
}

static void build_meta(px_node *n, uint64_t slot, px_snapshot_meta *m)
{
    memset(m, 0, sizeof *m);
    m->slot = slot;
    m->last_ts = n->snap_meta.last_ts;
    for (uint64_t s = n->log_start; s <= slot; s++) {
        rec *r = rec_at(n, s);
        if (r && r->present && r->ts > m->last_ts)
            m->last_ts = r->ts;
    }
    uint32_t first = 0;
    for (uint32_t i = 0; i < n->ncfgs; i++)
        if (n->cfgs[i].effect_slot <= slot + 1)
            first = i;
    for (uint32_t i = first; i < n->ncfgs && m->nconfigs < PX_SNAP_CONFIGS; i++)
        m->configs[m->nconfigs++] = n->cfgs[i];
}

/* Installs a snapshot newer than our commit point (from a peer). */
static void install_snapshot(px_node *n, const px_snapshot_meta *meta, const uint8_t *snap,
                             uint32_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) {
        n->oom = true;
        return;
    }
    if (len)
        memcpy(copy, snap, len);
    grave_push(n, n->snap);
    n->snap = copy;
    n->snap_len = len;
    n->snap_meta = *meta;
    log_drop_below(n, meta->slot + 1);
    px_persist *p = persist(n, PX_PERSIST_SNAPSHOT);
    p->meta = *meta;
    p->snap = n->snap;
    p->snap_len = len;
    persist(n, PX_PERSIST_TRUNCATE)->upto = meta->slot;
    n->ncfgs = 0;
    for (uint32_t i = 0; i < meta->nconfigs; i++)
        add_config(n, meta->configs[i].effect_slot, &meta->configs[i].config);
    n->commit = meta->slot;
    n->applied = meta->slot;
    if (n->proposed_upto < n->commit)
        n->proposed_upto = n->commit;
    n->last_ts = max64(n->last_ts, meta->last_ts);
    n->commit_ts = meta->last_ts;
    persist(n, PX_PERSIST_COMMIT)->commit = n->commit;
    px_action *a = act(n, PX_ACT_INSTALL_SNAPSHOT);
    a->meta = *meta;
    a->snap = n->snap;
    a->snap_len = len;
    advance_commit(n);
}

/* The application's snapshot as of applied slot `slot`: persist it, then truncate the log
 * behind it, keeping log_keep entries for cheap catch-up of near laggards. */
static int take_snapshot(px_node *n, uint64_t slot, const uint8_t *data, uint32_t len, mr_err *err)
{
    if (slot <= n->snap_meta.slot)
        return 0; /* stale: a newer snapshot was installed meanwhile */
    if (slot > n->applied || slot < n->log_start)
        return mr_errf(err, MR_EINVAL, "snapshot at slot %llu: applied %llu, log from %llu",
                       (unsigned long long)slot, (unsigned long long)n->applied,
                       (unsigned long long)n->log_start);
    px_snapshot_meta m;
    build_meta(n, slot, &m);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return mr_errf(err, MR_ENOMEM, "snapshot copy");
    if (len)
        memcpy(copy, data, len);
    grave_push(n, n->snap);
    n->snap = copy;
    n->snap_len = len;
    n->snap_meta = m;
    px_persist *p = persist(n, PX_PERSIST_SNAPSHOT);
    p->meta = m;
    p->snap = n->snap;
    p->snap_len = len;
    if (slot > n->o.log_keep) {
        uint64_t upto = slot - n->o.log_keep;
        if (upto >= n->log_start) {
            log_drop_below(n, upto + 1);
            persist(n, PX_PERSIST_TRUNCATE)->upto = upto;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- phase 1, candidate side */

static void reports_clear(px_node *n)
{
    for (size_t i = 0; i < n->nreports; i++)
        free(n->reports[i].data);
    n->nreports = 0;
}

static void report_add(px_node *n, px_node_id from, const px_entry *e)
{
    if (n->nreports == n->reports_cap) {
        size_t cap = n->reports_cap ? 2 * n->reports_cap : 64;
        report *r = realloc(n->reports, cap * sizeof *r);
        if (!r) {
            n->oom = true;
            return;
        }
        n->reports = r;
        n->reports_cap = cap;
    }
    uint8_t *copy = malloc(e->len ? e->len : 1);
    if (!copy) {
        n->oom = true;
        return;
    }
    if (e->len)
        memcpy(copy, e->data, e->len);
    report *r = &n->reports[n->nreports++];
    r->slot = e->slot;
    r->node = from;
    r->ballot = e->ballot;
    r->ts = e->ts;
    r->kind = e->kind;
    r->len = e->len;
    r->data = copy;
    if (e->slot >= n->recovery_end)
        n->recovery_end = e->slot + 1;
}

static void queue_clear(px_node *n)
{
    for (size_t i = 0; i < n->qlen; i++)
        free(n->queue[(n->qhead + i) % n->qcap].data);
    n->qhead = n->qlen = 0;
}

static void send_prepare(px_node *n, px_node_id to)
{
    px_msg *m = msg_to(n, to, PX_MSG_PREPARE);
    m->ballot = n->promised;
    m->slot = n->commit + 1;
    m->commit = n->commit;
    m->lease_seq = lease_request(n);
}

static void maybe_lead(px_node *n);

/* Phase 1a, once per leader change, for every slot above our commit point. */
static void campaign(px_node *n)
{
    uint64_t round = n->max_seen.round > n->promised.round ? n->max_seen.round : n->promised.round;
    px_ballot b = {round + 1, n->o.self};
    set_state(n, PX_CANDIDATE);
    reports_clear(n);
    n->promised = b;
    n->max_seen = b;
    n->leader_hint = 0;
    persist(n, PX_PERSIST_PROMISE)->promise = b;
    n->promised_set = 1ull << n->o.self;
    n->ballot_first_seq = n->lease_seq + 1;
    memset(n->vote_start, 0, sizeof n->vote_start);
    memset(n->peer_commit, 0, sizeof n->peer_commit);
    n->recovery_end = n->commit + 1;
    n->proposed_upto = n->commit;
    n->lease_end = 0;
    /* Our own accepted values are a report like any other. */
    for (uint64_t s = n->commit + 1; s <= log_last(n); s++) {
        rec *r = rec_at(n, s);
        if (r && r->present && r->chosen) {
            n->recovery_end = s + 1;
        } else if (r && r->present) {
            px_entry e = rec_entry(s, r);
            report_add(n, n->o.self, &e);
        }
    }
    uint64_t m = window_mask(n) & ~(1ull << n->o.self);
    if (!m)
        lease_request(n);
    for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++)
        if (m & (1ull << id))
            send_prepare(n, id);
    n->last_hb = n->now.earliest;
    reset_election(n);
    maybe_lead(n); /* a one-member configuration */
}

static void maybe_lead(px_node *n)
{
    if (n->state != PX_CANDIDATE || !window_quorum(n, n->promised_set))
        return;
    set_state(n, PX_LEADER);
    n->leader_hint = n->o.self;
    n->last_hb = INT64_MIN; /* heartbeat (lease renewal) at once */
    lease_recompute(n);
}

/* Phase 1b received by the candidate (or by a leader from a late or new member). */
static void on_promise(px_node *n, const px_msg *m)
{
    if (px_ballot_cmp(m->ballot, n->promised) != 0 ||
        (n->state != PX_CANDIDATE && n->state != PX_LEADER))
        return;
    if (m->commit > n->peer_commit[m->from])
        n->peer_commit[m->from] = m->commit;
    if (!m->ok)
        return; /* lease still held elsewhere, or a higher ballot: handled by the caller */
    lease_vote(n, m->from, m->lease_seq);
    if (n->promised_set & (1ull << m->from)) {
        if (n->state == PX_LEADER)
            lease_recompute(n);
        return;
    }
    n->promised_set |= 1ull << m->from;
    if (m->meta.slot > n->commit && n->state == PX_CANDIDATE)
        install_snapshot(n, &m->meta, m->snap, m->snap_len);
    for (uint32_t i = 0; i < m->nentries; i++) {
        const px_entry *e = &m->entries[i];
        bool chosen = false;
        for (uint32_t j = 0; j < m->nslots; j++)
            if (m->slots[j] == e->slot)
                chosen = true;
        if (e->slot <= n->proposed_upto)
            continue; /* decided, or already proposed in our ballot from a full quorum */
        if (chosen) {
            rec *r = rec_at(n, e->slot);
            if (!r || !r->chosen)
                log_store(n, e->slot, e->ballot, e->ts, e->kind, e->data, e->len, true);
            if (e->slot >= n->recovery_end)
                n->recovery_end = e->slot + 1;
        } else {
            report_add(n, m->from, e);
        }
    }
    advance_commit(n);
    if (n->recovery_end <= n->commit)
        n->recovery_end = n->commit + 1;
    if (n->state == PX_LEADER)
        lease_recompute(n);
    maybe_lead(n);
}

/* ---------------------------------------------------------------- phase 1, acceptor side */

static void step_down(px_node *n, px_ballot seen)
{
    if (px_ballot_cmp(seen, n->max_seen) > 0)
        n->max_seen = seen;
    if (n->state != PX_FOLLOWER && px_ballot_cmp(seen, n->promised) > 0)
        set_state(n, PX_FOLLOWER);
}

/* Adopts a higher ballot seen in an accept, heartbeat or learn: a promise never to accept
 * anything lower, durable before any reply (Paxos Made Simple §2.2, P1a). */
static void raise_promise(px_node *n, px_ballot b)
{
    step_down(n, b);
    n->promised = b;
    persist(n, PX_PERSIST_PROMISE)->promise = b;
}

static void on_prepare(px_node *n, const px_msg *m)
{
    int c = px_ballot_cmp(m->ballot, n->promised);
    bool grant = c > 0 || (c == 0 && n->state == PX_FOLLOWER);
    if (grant && c > 0 && !vote_free_for(n, m->ballot))
        grant = false;
    uint64_t from = m->slot > n->log_start ? m->slot : n->log_start;
    size_t cnt = 0;
    for (uint64_t s = from; grant && s <= log_last(n); s++) {
        rec *x = rec_at(n, s);
        if (x && x->present)
            cnt++;
    }
    /* A partial report would be unsafe (P2c needs every accepted value): a candidate that
     * far behind must catch up first, so refuse. */
    if (cnt > PX_MSG_MAX_ENTRIES)
        grant = false;
    if (px_ballot_cmp(m->ballot, n->max_seen) > 0)
        n->max_seen = m->ballot;
    if (grant) {
        if (c > 0) {
            step_down(n, m->ballot);
            n->promised = m->ballot;
            /* P1b: the promise is durable before the reply leaves (durability rule). */
            if (n->o.mutant != PX_MUTANT_NO_PERSIST_PROMISE)
                persist(n, PX_PERSIST_PROMISE)->promise = m->ballot;
        }
        grant_vote(n, m->ballot);
        n->leader_hint = m->from;
        reset_election(n);
    }
    px_entry *es = NULL;
    uint64_t *cs = NULL;
    size_t k = 0, nch = 0;
    if (grant) {
        es = arena(n, cnt * sizeof *es);
        cs = arena(n, cnt * sizeof *cs);
        if (!es || !cs)
            return;
        for (uint64_t s = from; s <= log_last(n) && k < cnt; s++) {
            rec *x = rec_at(n, s);
            if (x && x->present) {
                es[k++] = rec_entry(s, x);
                if (x->chosen)
                    cs[nch++] = s;
            }
        }
    }
    px_msg *r = msg_to(n, m->from, PX_MSG_PROMISE);
    r->ballot = m->ballot;
    r->lease_seq = m->lease_seq;
    r->ok = grant;
    r->promised = n->promised;
    r->commit = n->commit;
    r->log_start = n->log_start;
    if (!grant)
        return;
    if (m->slot < n->log_start && n->snap_meta.slot > 0) {
        r->meta = n->snap_meta;
        r->snap = n->snap;
        r->snap_len = n->snap_len;
    }
    r->entries = es;
    r->nentries = (uint32_t)k;
    r->slots = cs;
    r->nslots = (uint32_t)nch;
}

/* ---------------------------------------------------------------- phase 2 */

static bool self_counts(const px_node *n, const rec *r)
{
    return r->self_seq == 0 || n->durable_seq >= r->self_seq;
}

static void check_chosen(px_node *n, uint64_t slot)
{
    rec *r = rec_at(n, slot);
    if (!r || !r->present || r->chosen || px_ballot_cmp(r->ballot, n->promised) != 0)
        return;
    uint64_t acks = r->acks;
    if (!self_counts(n, r))
        acks &= ~(1ull << n->o.self);
    if (has_quorum(n, cfg_at(n, slot), acks))
        r->chosen = true;
}

static void propose_slot(px_node *n, uint64_t s, int64_t ts, uint8_t kind, const uint8_t *data,
                         uint32_t len)
{
    rec *r = log_store(n, s, n->promised, ts, kind, data, len, false);
    if (!r)
        return;
    r->acks = 1ull << n->o.self;
    r->self_seq = n->persist_seq;
    if (n->naccept == n->accept_cap) {
        size_t cap = n->accept_cap ? 2 * n->accept_cap : 64;
        uint64_t *a = realloc(n->accept_slots, cap * sizeof *a);
        if (!a) {
            n->oom = true;
            return;
        }
        n->accept_slots = a;
        n->accept_cap = cap;
    }
    n->accept_slots[n->naccept++] = s;
}

/* Sends ACCEPTs for `slots` to every member of their configurations that has not acked. */
static void send_accepts(px_node *n, const uint64_t *slots, size_t ns)
{
    if (!ns)
        return;
    uint64_t dests = 0;
    for (size_t i = 0; i < ns; i++)
        dests |= cfg_mask(cfg_at(n, slots[i]));
    dests &= ~(1ull << n->o.self);
    for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++) {
        if (!(dests & (1ull << id)))
            continue;
        px_entry *es = arena(n, ns * sizeof *es);
        if (!es)
            return;
        uint32_t k = 0;
        for (size_t i = 0; i < ns && k < PX_MSG_MAX_ENTRIES; i++) {
            rec *r = rec_at(n, slots[i]);
            if (r && r->present && !(r->acks & (1ull << id)) &&
                px_config_has(cfg_at(n, slots[i]), id))
                es[k++] = rec_entry(slots[i], r);
        }
        if (!k)
            continue;
        px_msg *m = msg_to(n, id, PX_MSG_ACCEPT);
        m->ballot = n->promised;
        m->commit = n->commit;
        m->entries = es;
        m->nentries = k;
    }
}

/* The value for recovered slot s (phase 1 result): the highest-ballot value reported by a
 * member of config_at(s), else a no-op (Paxos Made Simple §2.2, P2c). */
static const report *best_report(const px_node *n, uint64_t s)
{
    if (n->o.mutant == PX_MUTANT_NO_REPROPOSE)
        return NULL;
    const px_config *c = cfg_at(n, s);
    const report *best = NULL;
    for (size_t i = 0; i < n->nreports; i++) {
        const report *r = &n->reports[i];
        if (r->slot == s && px_config_has(c, r->node) &&
            (!best || px_ballot_cmp(r->ballot, best->ballot) > 0))
            best = r;
    }
    return best;
}

static bool config_pending(const px_node *n)
{
    if (n->cfg_slot)
        return true;
    for (uint32_t i = 0; i < n->ncfgs; i++)
        if (n->cfgs[i].effect_slot > n->commit + 1)
            return true;
    return false;
}

/* Fills slots up to commit + alpha: recovered values first, then new proposals, each new
 * slot stamped max(TT.now().latest, last + 1) inside the lease (Spanner §4.1.2). */
static void pump(px_node *n)
{
    if (n->state != PX_LEADER)
        return;
    n->naccept = 0;
    while (n->proposed_upto < n->commit + n->o.alpha) {
        uint64_t s = n->proposed_upto + 1;
        const px_config *c = cfg_at(n, s);
        if (!has_quorum(n, c, n->promised_set))
            break; /* wait for promises from the new members (sent on heartbeat) */
        rec *r = rec_at(n, s);
        if (s < n->recovery_end) {
            if (!(r && r->present && r->chosen)) {
                const report *b = best_report(n, s);
                if (b)
                    propose_slot(n, s, b->ts, b->kind, b->data, b->len);
                else
                    propose_slot(n, s, 0, PX_ENTRY_NOOP, NULL, 0);
            }
            n->proposed_upto = s;
            continue;
        }
        if (!lease_valid(n))
            break;
        int64_t ts = max64(n->now.latest, n->last_ts + 1);
        if (ts >= n->lease_end)
            break; /* the stamp must lie inside our lease; wait for renewal */
        if (n->cfg_wanted && !config_pending(n)) {
            uint8_t buf[PX_CONFIG_WIRE_MAX];
            uint32_t l = px_config_encode(&n->cfg_next, buf);
            propose_slot(n, s, ts, PX_ENTRY_CONFIG, buf, l);
            n->cfg_wanted = false;
            n->cfg_slot = s;
        } else if (n->qlen) {
            size_t k = n->qlen < n->o.max_batch ? n->qlen : n->o.max_batch;
            size_t total = 0;
            for (size_t i = 0; i < k; i++)
                total += 4 + n->queue[(n->qhead + i) % n->qcap].len;
            uint8_t *buf = arena(n, total);
            if (!buf)
                break;
            size_t off = 0;
            for (size_t i = 0; i < k; i++) {
                prop *p = &n->queue[(n->qhead + i) % n->qcap];
                for (int j = 0; j < 4; j++)
                    buf[off + j] = (uint8_t)(p->len >> (8 * j));
                memcpy(buf + off + 4, p->data, p->len);
                off += 4 + p->len;
                free(p->data);
            }
            n->qhead = (n->qhead + k) % n->qcap;
            n->qlen -= k;
            propose_slot(n, s, ts, PX_ENTRY_DATA, buf, (uint32_t)total);
        } else {
            break;
        }
        n->s_max = max64(n->s_max, ts);
        n->proposed_upto = s;
    }
    for (size_t i = 0; i < n->naccept; i++)
        check_chosen(n, n->accept_slots[i]);
    send_accepts(n, n->accept_slots, n->naccept);
    n->naccept = 0;
    advance_commit(n);
}

/* Learns chosen slots from a leader's commit point: a record accepted in the leader's own
 * ballot holds the value that leader proposed, which is the chosen one. */
static void learn_commit(px_node *n, px_ballot b, uint64_t commit)
{
    uint64_t hi = commit < log_last(n) ? commit : log_last(n);
    for (uint64_t s = n->commit + 1; s <= hi; s++) {
        rec *r = rec_at(n, s);
        if (r && r->present && !r->chosen && px_ballot_cmp(r->ballot, b) == 0)
            r->chosen = true;
    }
    advance_commit(n);
}

static void on_accept(px_node *n, const px_msg *m)
{
    int c = px_ballot_cmp(m->ballot, n->promised);
    if (c < 0 || (c == 0 && n->state != PX_FOLLOWER && m->from != n->o.self)) {
        px_msg *r = msg_to(n, m->from, PX_MSG_ACCEPTED);
        r->ballot = m->ballot;
        r->ok = false;
        r->promised = n->promised;
        r->commit = n->commit;
        return;
    }
    if (c > 0)
        raise_promise(n, m->ballot);
    n->leader_hint = m->from;
    reset_election(n);
    uint64_t *acked = arena(n, (m->nentries ? m->nentries : 1) * sizeof *acked);
    if (!acked)
        return;
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->nentries; i++) {
        const px_entry *e = &m->entries[i];
        rec *r = rec_at(n, e->slot);
        if (e->slot < n->log_start || (r && r->present && r->chosen)) {
            acked[k++] = e->slot; /* already chosen here: same value (P2c) */
            continue;
        }
        if (e->slot - n->log_start >= SLOT_SANITY)
            continue; /* far behind: catch up by LEARN/SNAPSHOT first */
        if (log_store(n, e->slot, m->ballot, e->ts, e->kind, e->data, e->len, false))
            acked[k++] = e->slot;
    }
    learn_commit(n, m->ballot, m->commit);
    px_msg *r = msg_to(n, m->from, PX_MSG_ACCEPTED);
    r->ballot = m->ballot;
    r->ok = true;
    r->promised = n->promised;
    r->commit = n->commit;
    r->slots = acked;
    r->nslots = k;
}

static void on_accepted(px_node *n, const px_msg *m)
{
    if (n->state != PX_LEADER || px_ballot_cmp(m->ballot, n->promised) != 0 || !m->ok)
        return;
    n->peer_commit[m->from] = max64((int64_t)n->peer_commit[m->from], (int64_t)m->commit);
    for (uint32_t i = 0; i < m->nslots; i++) {
        uint64_t s = m->slots[i];
        rec *r = rec_at(n, s);
        if (s <= n->commit || s > n->proposed_upto || !r || !r->present ||
            px_ballot_cmp(r->ballot, n->promised) != 0)
            continue;
        r->acks |= 1ull << m->from;
        check_chosen(n, s);
    }
    advance_commit(n);
    pump(n);
}

/* ---------------------------------------------------------------- heartbeats and learning */

static void send_learn(px_node *n, px_node_id to)
{
    uint64_t from = n->peer_commit[to] + 1;
    if (from > n->commit)
        return;
    if (from < n->log_start) {
        if (n->snap_meta.slot == 0)
            return;
        px_msg *m = msg_to(n, to, PX_MSG_SNAPSHOT);
        m->ballot = n->promised;
        m->commit = n->commit;
        m->meta = n->snap_meta;
        m->snap = n->snap;
        m->snap_len = n->snap_len;
        return;
    }
    uint64_t to_slot = n->commit < from + LEARN_CHUNK - 1 ? n->commit : from + LEARN_CHUNK - 1;
    px_entry *es = arena(n, (size_t)(to_slot - from + 1) * sizeof *es);
    if (!es)
        return;
    uint32_t k = 0;
    for (uint64_t s = from; s <= to_slot; s++) {
        rec *r = rec_at(n, s);
        if (r && r->present)
            es[k++] = rec_entry(s, r);
    }
    px_msg *m = msg_to(n, to, PX_MSG_LEARN);
    m->ballot = n->promised;
    m->commit = n->commit;
    m->entries = es;
    m->nentries = k;
}

static void heartbeat(px_node *n)
{
    n->last_hb = n->now.earliest;
    uint64_t members = window_mask(n) & ~(1ull << n->o.self);
    uint64_t seq = lease_request(n);
    lease_recompute(n);
    for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++) {
        if (!(members & (1ull << id)))
            continue;
        if (!(n->promised_set & (1ull << id))) {
            send_prepare(n, id); /* a new member, or one that missed phase 1 */
        } else {
            px_msg *m = msg_to(n, id, PX_MSG_HEARTBEAT);
            m->ballot = n->promised;
            m->commit = n->commit;
            m->lease_seq = seq;
        }
        if (n->peer_commit[id] < n->commit)
            send_learn(n, id);
    }
    /* Retransmit unacknowledged accepts (messages may be lost). */
    size_t cnt = 0;
    uint64_t *ss = NULL;
    if (n->proposed_upto > n->commit) {
        ss = arena(n, (size_t)(n->proposed_upto - n->commit) * sizeof *ss);
        for (uint64_t s = n->commit + 1; ss && s <= n->proposed_upto; s++) {
            rec *r = rec_at(n, s);
            if (r && r->present && !r->chosen)
                ss[cnt++] = s;
        }
    }
    send_accepts(n, ss, cnt);
}

static void on_heartbeat(px_node *n, const px_msg *m)
{
    int c = px_ballot_cmp(m->ballot, n->promised);
    bool ok = c >= 0 && (c > 0 || n->state == PX_FOLLOWER);
    if (ok && !vote_free_for(n, m->ballot))
        ok = false;
    if (ok) {
        if (c > 0)
            raise_promise(n, m->ballot);
        grant_vote(n, m->ballot);
        n->leader_hint = m->from;
        reset_election(n);
        learn_commit(n, m->ballot, m->commit);
    } else if (px_ballot_cmp(m->ballot, n->max_seen) > 0) {
        n->max_seen = m->ballot;
    }
    px_msg *r = msg_to(n, m->from, PX_MSG_HEARTBEAT_ACK);
    r->ballot = m->ballot;
    r->ok = ok;
    r->promised = n->promised;
    r->lease_seq = m->lease_seq;
    r->commit = n->commit;
}

static void on_heartbeat_ack(px_node *n, const px_msg *m)
{
    if (n->state != PX_LEADER || px_ballot_cmp(m->ballot, n->promised) != 0)
        return;
    n->peer_commit[m->from] = m->commit;
    if (m->ok) {
        lease_vote(n, m->from, m->lease_seq);
        lease_recompute(n);
    }
    if (m->commit < n->commit)
        send_learn(n, m->from);
    pump(n);
}

static void on_learn(px_node *n, const px_msg *m)
{
    if (n->state != PX_FOLLOWER) {
        /* A leader learns only from its own quorums (see learn_commit); a higher ballot
         * means we are deposed. */
        if (px_ballot_cmp(m->ballot, n->promised) <= 0)
            return;
        step_down(n, m->ballot);
        if (n->state != PX_FOLLOWER)
            return;
    }
    if (m->type == PX_MSG_SNAPSHOT) {
        if (m->meta.slot > n->commit)
            install_snapshot(n, &m->meta, m->snap, m->snap_len);
        return;
    }
    for (uint32_t i = 0; i < m->nentries; i++) {
        const px_entry *e = &m->entries[i];
        if (e->slot <= n->commit || e->slot < n->log_start || e->slot > m->commit)
            continue;
        rec *r = rec_at(n, e->slot);
        if (r && r->present && r->chosen)
            continue;
        log_store(n, e->slot, e->ballot, e->ts, e->kind, e->data, e->len, true);
    }
    advance_commit(n);
}

static void on_release(px_node *n, const px_msg *m)
{
    if (px_ballot_cmp(n->vote_ballot, m->ballot) == 0 && m->from == m->ballot.node)
        n->vote_until = INT64_MIN;
    if (n->leader_hint == m->from)
        n->leader_hint = 0;
}

/* ---------------------------------------------------------------- timers */

static bool may_campaign(const px_node *n)
{
    if (!(window_mask(n) & (1ull << n->o.self)))
        return false;
    px_ballot me = {n->promised.round + 1, n->o.self};
    return vote_free_for(n, me);
}

static void on_tick(px_node *n)
{
    switch (n->state) {
    case PX_FOLLOWER:
    case PX_CANDIDATE:
        if (n->now.earliest >= n->election_deadline) {
            if (may_campaign(n))
                campaign(n);
            else
                reset_election(n);
        } else if (n->state == PX_CANDIDATE && n->last_hb != INT64_MIN &&
                   n->now.earliest - n->last_hb >= n->o.heartbeat_ns) {
            n->last_hb = n->now.earliest;
            uint64_t m = window_mask(n) & ~n->promised_set;
            for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++)
                if (m & (1ull << id))
                    send_prepare(n, id);
        }
        break;
    case PX_LEADER:
        if (n->last_hb == INT64_MIN || n->now.earliest - n->last_hb >= n->o.heartbeat_ns)
            heartbeat(n);
        pump(n);
        break;
    case PX_ABDICATING:
        /* Spanner §4.1.1: before abdicating, wait until TT.after(s_max). */
        if (n->o.mutant == PX_MUTANT_NO_LEASE_WAIT || tt_interval_after(n->now, n->s_max)) {
            uint64_t m = window_mask(n) & ~(1ull << n->o.self);
            for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++)
                if (m & (1ull << id)) {
                    px_msg *r = msg_to(n, id, PX_MSG_RELEASE);
                    r->ballot = n->promised;
                }
            n->vote_until = INT64_MIN;
            set_state(n, PX_FOLLOWER);
            n->leader_hint = 0;
            n->election_deadline = n->now.earliest + 2 * n->o.election_ns;
        }
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------- input validation */

static int check_ballot(px_ballot b, const char *what, mr_err *err)
{
    if (b.node > PX_MAX_NODE_ID || (b.round == 0) != (b.node == 0))
        return mr_errf(err, MR_EINVAL, "%s ballot (%llu,%u) out of range", what,
                       (unsigned long long)b.round, b.node);
    return 0;
}

static int validate_msg(const px_node *n, const px_msg *m, mr_err *err)
{
    if (m->type == 0 || m->type >= PX_MSG_MAX)
        return mr_errf(err, MR_EINVAL, "message type %u", m->type);
    if (m->group != n->o.group)
        return mr_errf(err, MR_EINVAL, "%s for group %llu, this is group %llu",
                       px_msg_type_name(m->type), (unsigned long long)m->group,
                       (unsigned long long)n->o.group);
    if (m->from < 1 || m->from > PX_MAX_NODE_ID || m->from == n->o.self)
        return mr_errf(err, MR_EINVAL, "%s from node %u", px_msg_type_name(m->type), m->from);
    if (check_ballot(m->ballot, "message", err) || check_ballot(m->promised, "promised", err))
        return MR_EINVAL;
    if (m->ballot.round == 0)
        return mr_errf(err, MR_EINVAL, "%s without a ballot", px_msg_type_name(m->type));
    if ((m->type == PX_MSG_PREPARE || m->type == PX_MSG_ACCEPT || m->type == PX_MSG_HEARTBEAT) &&
        m->ballot.node != m->from)
        return mr_errf(err, MR_EINVAL, "%s from %u with ballot of node %u",
                       px_msg_type_name(m->type), m->from, m->ballot.node);
    if (m->nentries > PX_MSG_MAX_ENTRIES || m->nslots > PX_MSG_MAX_ENTRIES ||
        (m->nentries && !m->entries) || (m->nslots && !m->slots) ||
        m->meta.nconfigs > PX_SNAP_CONFIGS || (m->snap_len && !m->snap))
        return mr_errf(err, MR_EINVAL, "%s with bad counts", px_msg_type_name(m->type));
    uint64_t prev = 0;
    for (uint32_t i = 0; i < m->nentries; i++) {
        const px_entry *e = &m->entries[i];
        if (e->slot <= prev)
            return mr_errf(err, MR_EINVAL, "%s: entry slots not increasing at %llu",
                           px_msg_type_name(m->type), (unsigned long long)e->slot);
        prev = e->slot;
        if (e->slot > UINT64_MAX / 4 || e->kind > PX_ENTRY_CONFIG ||
            e->len > PX_MSG_MAX_ENTRY_BYTES || (e->len && !e->data))
            return mr_errf(err, MR_EINVAL, "%s: bad entry at slot %llu", px_msg_type_name(m->type),
                           (unsigned long long)e->slot);
        if (check_ballot(e->ballot, "entry", err))
            return MR_EINVAL;
        if (e->kind == PX_ENTRY_CONFIG) {
            px_config c;
            if (px_config_decode(e->data, e->len, &c, err))
                return mr_err_wrap(err, "slot %llu", (unsigned long long)e->slot), MR_EINVAL;
        }
        if (m->type == PX_MSG_ACCEPT && e->slot > m->commit + n->o.alpha)
            return mr_errf(err, MR_EINVAL, "ACCEPT slot %llu beyond commit %llu + alpha",
                           (unsigned long long)e->slot, (unsigned long long)m->commit);
        if (m->type == PX_MSG_PROMISE && e->slot > m->commit + SLOT_SANITY)
            return mr_errf(err, MR_EINVAL, "PROMISE slot %llu out of range",
                           (unsigned long long)e->slot);
    }
    for (uint32_t i = 0; i < m->meta.nconfigs; i++)
        if (px_config_validate(&m->meta.configs[i].config, err))
            return mr_err_wrap(err, "snapshot config"), MR_EINVAL;
    if ((m->type == PX_MSG_SNAPSHOT) && (m->meta.slot == 0 || m->meta.nconfigs == 0))
        return mr_errf(err, MR_EINVAL, "SNAPSHOT without slot or configuration");
    if (m->type == PX_MSG_PROMISE && m->meta.slot > 0 && m->meta.nconfigs == 0)
        return mr_errf(err, MR_EINVAL, "PROMISE snapshot without configuration");
    return 0;
}

/* ---------------------------------------------------------------- entry points */

void px_options_default(px_options *o)
{
    px_options z = {0};
    z.group = o->group;
    z.self = o->self;
    z.config = o->config;
    z.lease_ns = 2000000000LL;
    z.heartbeat_ns = z.lease_ns / 4;
    z.election_ns = z.lease_ns;
    z.alpha = 16;
    z.max_batch = 64;
    z.max_queue = 4096;
    z.snapshot_every = 0;
    z.log_keep = 32;
    z.seed = 1;
    *o = z;
}

int px_node_create(const px_options *opts, px_node **out, mr_err *err)
{
    *out = NULL;
    if (opts->self < 1 || opts->self > PX_MAX_NODE_ID)
        return mr_errf(err, MR_EINVAL, "node id %u out of range 1..%d", opts->self, PX_MAX_NODE_ID);
    if (px_config_validate(&opts->config, err))
        return mr_err_wrap(err, "bootstrap configuration");
    if (opts->lease_ns <= 0 || opts->heartbeat_ns <= 0 || opts->heartbeat_ns >= opts->lease_ns ||
        opts->election_ns <= 0)
        return mr_errf(err, MR_EINVAL, "timers: want 0 < heartbeat < lease, election > 0");
    if (opts->alpha < 1 || opts->alpha > 4096 || opts->max_batch < 1 || opts->max_queue < 1)
        return mr_errf(err, MR_EINVAL, "alpha %u, max_batch %u, max_queue %u out of range",
                       opts->alpha, opts->max_batch, opts->max_queue);
    if (opts->log_keep < opts->alpha)
        return mr_errf(err, MR_EINVAL, "log_keep %llu below alpha %u",
                       (unsigned long long)opts->log_keep, opts->alpha);
    px_node *n = calloc(1, sizeof *n);
    if (!n)
        return mr_errf(err, MR_ENOMEM, "px_node");
    n->o = *opts;
    n->rng = opts->seed * 0x9E3779B97F4A7C15ull + opts->self + 1;
    n->log_start = 1;
    n->state = PX_FOLLOWER;
    n->vote_until = INT64_MIN;
    add_config(n, 1, &opts->config);
    *out = n;
    return 0;
}

int px_node_restore(px_node *n, const px_durable *d, mr_err *err)
{
    if (n->started)
        return mr_errf(err, MR_EINVAL, "restore after start");
    if (check_ballot(d->promise, "durable promise", err))
        return MR_ECORRUPT;
    n->promised = d->promise;
    n->max_seen = d->promise;
    if (d->meta.slot > 0) {
        if (d->meta.nconfigs == 0 || d->meta.nconfigs > PX_SNAP_CONFIGS)
            return mr_errf(err, MR_ECORRUPT, "snapshot at %llu with %u configurations",
                           (unsigned long long)d->meta.slot, d->meta.nconfigs);
        n->snap = malloc(d->snap_len ? d->snap_len : 1);
        if (!n->snap)
            return mr_errf(err, MR_ENOMEM, "snapshot copy");
        if (d->snap_len)
            memcpy(n->snap, d->snap, d->snap_len);
        n->snap_len = d->snap_len;
        n->snap_meta = d->meta;
        n->log_start = d->meta.slot + 1;
        n->commit = n->applied = d->meta.slot;
        n->last_ts = d->meta.last_ts;
        n->commit_ts = d->meta.last_ts;
        n->ncfgs = 0;
        for (uint32_t i = 0; i < d->meta.nconfigs; i++)
            add_config(n, d->meta.configs[i].effect_slot, &d->meta.configs[i].config);
    }
    for (size_t i = 0; i < d->nentries; i++) {
        const px_entry *e = &d->entries[i];
        if (e->slot < n->log_start)
            continue;
        if (e->slot - n->log_start >= SLOT_SANITY || e->kind > PX_ENTRY_CONFIG)
            return mr_errf(err, MR_ECORRUPT, "durable entry at slot %llu",
                           (unsigned long long)e->slot);
        rec *r = rec_get(n, e->slot);
        uint8_t *copy = malloc(e->len ? e->len : 1);
        if (!r || !copy) {
            free(copy);
            return mr_errf(err, MR_ENOMEM, "restoring the log");
        }
        if (e->len)
            memcpy(copy, e->data, e->len);
        free(r->data);
        *r = (rec){.present = true,
                   .chosen = e->slot <= d->commit,
                   .ballot = e->ballot,
                   .ts = e->ts,
                   .kind = e->kind,
                   .len = e->len,
                   .data = copy};
        n->last_ts = max64(n->last_ts, e->ts);
    }
    /* The commit point covers only records we actually hold. */
    for (;;) {
        rec *r = rec_at(n, n->commit + 1);
        if (!r || !r->present || !r->chosen)
            break;
        n->commit++;
        commit_one(n, r);
        if (r->kind == PX_ENTRY_CONFIG && !r->voided) {
            px_config c;
            if (px_config_decode(r->data, r->len, &c, err))
                return mr_err_wrap(err, "durable slot %llu", (unsigned long long)n->commit),
                       MR_ECORRUPT;
            add_config(n, n->commit + n->o.alpha, &c);
        }
    }
    n->proposed_upto = n->commit;
    return 0;
}

static void batch_begin(px_node *n)
{
    grave_flush(n);
    n->nacts = 0;
    n->batch_has_persist = false;
    n->oom = false;
}

static void batch_end(px_node *n, px_batch *out)
{
    out->actions = n->acts;
    out->n = n->nacts;
    out->persist_seq = n->batch_has_persist ? n->persist_seq : 0;
}

int px_node_start(px_node *n, tt_interval now, px_batch *out, mr_err *err)
{
    batch_begin(n);
    batch_end(n, out);
    if (n->started)
        return mr_errf(err, MR_EINVAL, "node already started");
    n->started = true;
    n->now = now;
    /* Votes are not persisted: we may have voted just before a crash (Spanner §4.1.1). */
    n->grace_until =
        n->o.mutant == PX_MUTANT_NO_LEASE_WAIT ? INT64_MIN : now.latest + n->o.lease_ns;
    uint64_t c = n->commit;
    if (n->snap_meta.slot > 0) {
        px_action *a = act(n, PX_ACT_INSTALL_SNAPSHOT);
        a->meta = n->snap_meta;
        a->snap = n->snap;
        a->snap_len = n->snap_len;
    }
    n->applied = n->snap_meta.slot;
    n->commit = c;
    apply_upto_commit(n);
    reset_election(n);
    batch_end(n, out);
    return n->oom ? mr_errf(err, MR_ENOMEM, "start") : 0;
}

int px_step(px_node *n, tt_interval now, const px_event *ev, px_batch *out, mr_err *err)
{
    batch_begin(n);
    batch_end(n, out);
    if (!n->started)
        return mr_errf(err, MR_EINVAL, "px_step before px_node_start");
    if (now.earliest > now.latest)
        return mr_errf(err, MR_EINVAL, "TrueTime interval [%lld, %lld] is empty",
                       (long long)now.earliest, (long long)now.latest);
    n->now = now;
    int rc = 0;
    switch (ev->kind) {
    case PX_EV_TICK:
        on_tick(n);
        break;
    case PX_EV_RECEIVE: {
        const px_msg *m = ev->msg;
        if (!m)
            return mr_errf(err, MR_EINVAL, "RECEIVE without a message");
        if (validate_msg(n, m, err)) {
            mr_err_wrap(err, "node %u rejects a message", n->o.self);
            if (err)
                err->code = MR_EINVAL;
            return MR_EINVAL;
        }
        /* Replies that reveal a higher ballot depose a leader or candidate. */
        if ((m->type == PX_MSG_PROMISE || m->type == PX_MSG_ACCEPTED ||
             m->type == PX_MSG_HEARTBEAT_ACK) &&
            !m->ok && px_ballot_cmp(m->promised, n->promised) > 0)
            step_down(n, m->promised);
        switch (m->type) {
        case PX_MSG_PREPARE:
            on_prepare(n, m);
            break;
        case PX_MSG_PROMISE:
            on_promise(n, m);
            pump(n);
            break;
        case PX_MSG_ACCEPT:
            on_accept(n, m);
            break;
        case PX_MSG_ACCEPTED:
            on_accepted(n, m);
            break;
        case PX_MSG_HEARTBEAT:
            on_heartbeat(n, m);
            break;
        case PX_MSG_HEARTBEAT_ACK:
            on_heartbeat_ack(n, m);
            break;
        case PX_MSG_LEARN:
        case PX_MSG_SNAPSHOT:
            on_learn(n, m);
            break;
        case PX_MSG_RELEASE:
            on_release(n, m);
            break;
        default:
            break;
        }
        break;
    }
    case PX_EV_PROPOSE:
        if (ev->len > PX_MSG_MAX_ENTRY_BYTES / 2 || (ev->len && !ev->data)) {
            rc = mr_errf(err, MR_EINVAL, "proposal of %u bytes", ev->len);
            break;
        }
        if (n->state != PX_LEADER) {
            rc = mr_errf(err, MR_ENOTLEADER, "node %u is %s (leader hint %u)", n->o.self,
                         px_state_name(n->state), n->leader_hint);
            break;
        }
        if (n->qlen >= n->o.max_queue) {
            rc = mr_errf(err, MR_EFULL, "%zu proposals queued", n->qlen);
            break;
        }
        if (n->qlen == n->qcap) {
            size_t cap = n->qcap ? 2 * n->qcap : 64;
            prop *q = malloc(cap * sizeof *q);
            if (!q) {
                rc = mr_errf(err, MR_ENOMEM, "proposal queue");
                break;
            }
            for (size_t i = 0; i < n->qlen; i++)
                q[i] = n->queue[(n->qhead + i) % n->qcap];
            free(n->queue);
            n->queue = q;
            n->qcap = cap;
            n->qhead = 0;
        }
        {
            prop *p = &n->queue[(n->qhead + n->qlen) % n->qcap];
            p->data = malloc(ev->len ? ev->len : 1);
            if (!p->data) {
                rc = mr_errf(err, MR_ENOMEM, "proposal copy");
                break;
            }
            if (ev->len)
                memcpy(p->data, ev->data, ev->len);
            p->len = ev->len;
            n->qlen++;
        }
        pump(n);
        break;
    case PX_EV_PERSISTED:
        if (ev->seq > n->persist_seq) {
            rc = mr_errf(err, MR_EINVAL, "persisted %llu, only %llu issued",
                         (unsigned long long)ev->seq, (unsigned long long)n->persist_seq);
            break;
        }
        if (ev->seq > n->durable_seq)
            n->durable_seq = ev->seq;
        if (n->state == PX_LEADER) {
            for (uint64_t s = n->commit + 1; s <= n->proposed_upto; s++)
                check_chosen(n, s);
            advance_commit(n);
            pump(n);
        }
        break;
    case PX_EV_SNAPSHOT:
        if (ev->len && !ev->data) {
            rc = mr_errf(err, MR_EINVAL, "snapshot without bytes");
            break;
        }
        rc = take_snapshot(n, ev->slot, ev->data, ev->len, err);
        break;
    case PX_EV_CONFIG: {
        if (px_config_validate(&ev->config, err)) {
            rc = mr_err_wrap(err, "membership change");
            break;
        }
        if (n->state != PX_LEADER) {
            rc = mr_errf(err, MR_ENOTLEADER, "membership change: node %u is %s", n->o.self,
                         px_state_name(n->state));
            break;
        }
        if (config_pending(n) || n->cfg_wanted) {
            rc = mr_errf(err, MR_EUNAVAIL, "membership change: another one is pending");
            break;
        }
        if (!px_config_has(&ev->config, n->o.self)) {
            rc = mr_errf(err, MR_EINVAL, "membership change: the leader cannot remove itself");
            break;
        }
        const px_config *cur = cfg_at(n, n->commit + n->o.alpha);
        uint64_t a = cfg_mask(cur), b = cfg_mask(&ev->config);
        if (__builtin_popcountll(a ^ b) != 1) {
            rc =
                mr_errf(err, MR_EINVAL, "membership change must add or remove exactly one replica");
            break;
        }
        n->cfg_wanted = true;
        n->cfg_next = ev->config;
        pump(n);
        break;
    }
    case PX_EV_ABDICATE:
        if (n->state != PX_LEADER) {
            rc = mr_errf(err, MR_ENOTLEADER, "abdicate: node %u is %s", n->o.self,
                         px_state_name(n->state));
            break;
        }
        n->lease_end = min64(n->lease_end, n->now.earliest);
        set_state(n, PX_ABDICATING);
        on_tick(n);
        break;
    case PX_EV_CAMPAIGN:
        if (n->state == PX_FOLLOWER || n->state == PX_CANDIDATE) {
            if (may_campaign(n))
                campaign(n);
            else
                rc = mr_errf(err, MR_EUNAVAIL, "campaign: lease vote still held");
        }
        break;
    default:
        rc = mr_errf(err, MR_EINVAL, "unknown event %d", (int)ev->kind);
    }
    if (n->state == PX_LEADER)
        lease_recompute(n);
    batch_end(n, out);
    if (n->oom && !rc)
        rc = mr_errf(err, MR_ENOMEM, "node %u: out of memory in step", n->o.self);
    return rc;
}

void px_node_status(const px_node *n, px_status *st)
{
    memset(st, 0, sizeof *st);
    st->state = n->state;
    st->ballot = n->promised;
    st->leader = n->state == PX_LEADER ? n->o.self : n->leader_hint;
    st->lease_valid = lease_valid(n);
    st->lease_end = n->state == PX_LEADER || n->state == PX_ABDICATING ? n->lease_end : 0;
    st->commit = n->commit;
    st->applied = n->applied;
    st->next_slot = n->proposed_upto + 1;
    st->log_start = n->log_start;
    st->last_ts = n->last_ts;
    st->s_max = n->s_max;
    st->queued = n->qlen;
}

bool px_node_lease_valid(const px_node *n, tt_interval now)
{
    return n->state == PX_LEADER && n->lease_end > 0 && now.latest < n->lease_end;
}

void px_node_destroy(px_node *n)
{
    if (!n)
        return;
    grave_flush(n);
    for (size_t i = 0; i < n->log_len; i++)
        free(n->log[i].data);
    free(n->log);
    reports_clear(n);
    free(n->reports);
    queue_clear(n);
    free(n->queue);
    free(n->snap);
    free(n->acts);
    free(n->grave);
    free(n->accept_slots);
    free(n);
}

/* One replica of one Multi-Paxos group: the step(event) -> actions state machine. This
 * file holds the entry points, the action buffer, the named states, the timers and input
 * validation. The protocol parts live beside it: px_phase1.c (PREPARE / PROMISE),
 * px_phase2.c (ACCEPT / ACCEPTED, pipelining, batching, timestamps), px_learn.c
 * (heartbeats, LEARN, SNAPSHOT, RELEASE), px_lease.c (leases), px_log.c (log, commit,
 * snapshots), px_config.c (membership and quorums). */
#include "tablet/paxos/px_int.h"

#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- memory and actions */

void pxi_grave_push(px_node *n, void *p)
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

void pxi_grave_flush(px_node *n)
{
    for (size_t i = 0; i < n->ngrave; i++)
        free(n->grave[i]);
    n->ngrave = 0;
}

/* Memory valid until the next call into the node. */
void *pxi_arena(px_node *n, size_t size)
{
    void *p = calloc(1, size ? size : 1);
    if (!p) {
        n->oom = true;
        return NULL;
    }
    pxi_grave_push(n, p);
    return p;
}

px_action *pxi_act(px_node *n, px_action_kind kind)
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

px_persist *pxi_persist(px_node *n, px_persist_kind kind)
{
    px_action *a = pxi_act(n, PX_ACT_PERSIST);
    a->persist.kind = kind;
    if (!n->batch_has_persist) {
        n->batch_has_persist = true;
        n->persist_seq++;
    }
    return &a->persist;
}

px_msg *pxi_msg_to(px_node *n, px_node_id to, px_msg_type type)
{
    px_action *a = pxi_act(n, PX_ACT_SEND);
    a->to = to;
    a->msg.type = (uint8_t)type;
    a->msg.group = n->o.group;
    a->msg.from = n->o.self;
    return &a->msg;
}

uint64_t pxi_rnd(px_node *n)
{
    /* xorshift64*: deterministic per seed, no global state. */
    uint64_t x = n->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    n->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
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

void pxi_set_state(px_node *n, px_state to)
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
        pxi_reports_clear(n);
        pxi_queue_clear(n);
        n->cfg_wanted = false;
        n->cfg_slot = 0;
    }
    if (to != PX_LEADER)
        n->lease_end = to == PX_ABDICATING ? n->lease_end : 0;
}

/* ---------------------------------------------------------------- timers */

static int64_t election_jitter(px_node *n)
{
    int64_t j = n->o.jitter_ns ? n->o.jitter_ns : n->o.election_ns;
    return (int64_t)(pxi_rnd(n) % (uint64_t)(j + 1));
}

void pxi_reset_election(px_node *n)
{
    n->probing = false; /* heard from a leader or candidate, or campaigning: ask no more */
    n->election_deadline = n->now.earliest + n->o.election_ns + election_jitter(n);
}

/* The election timeout passed but a lease vote (or the post-restart grace) still binds this
 * replica: campaign once it runs out (with fresh jitter) rather than a whole timeout later. */
static void defer_election(px_node *n)
{
    int64_t until = INT64_MIN;
    if (n->vote_ballot.node != n->o.self)
        until = n->vote_until;
    if (n->promised.node != n->o.self && n->grace_until > until)
        until = n->grace_until;
    if (n->ineligible || !(pxi_window_mask(n) & (1ull << n->o.self)) || until < n->now.earliest)
        pxi_reset_election(n);
    else /* free once TT.after(until): earliest > until */
        n->election_deadline = until + 1 + election_jitter(n);
}

bool pxi_may_campaign(const px_node *n)
{
    if (n->ineligible)
        return false;
    if (!(pxi_window_mask(n) & (1ull << n->o.self)))
        return false;
    px_ballot me = {n->promised.round + 1, n->o.self};
    return pxi_vote_free_for(n, me);
}

/* A campaign that failed (timed out, or a higher ballot showed up) gives back
 * the votes it holds: its own, and those others gave it, with a RELEASE, so
 * they can vote for another candidate now rather than when the votes run out.
 * Safe because no lease ever counted them: the candidate never led in this
 * ballot, and late promises for it are ignored. (With clocks spread in a wide
 * bound, candidates otherwise kept splitting the votes at every expiry; sim
 * seeds 547 and 106 with --clocks spread --bound 50ms.) Call before leaving
 * PX_CANDIDATE, while n->promised is still the campaign's ballot. */
void pxi_abandon_campaign(px_node *n)
{
    uint64_t m = pxi_window_mask(n) & ~(1ull << n->o.self);
    for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++)
        if (m & (1ull << id)) {
            px_msg *r = pxi_msg_to(n, id, PX_MSG_RELEASE);
            r->ballot = n->promised;
            r->ok = true; /* only this campaign's votes: see pxi_on_release */
        }
    if (n->vote_ballot.node == n->o.self)
        n->vote_until = n->led_vote_until;
}

void pxi_on_tick(px_node *n)
{
    switch (n->state) {
    case PX_FOLLOWER:
    case PX_CANDIDATE:
        if (n->state == PX_CANDIDATE && n->now.earliest >= n->election_deadline) {
            /* The campaign failed. Step back and take back the self-vote it gave: no lease
             * ever counted it (we never led in this ballot, and late promises for it are
             * now ignored), so other candidates can win instead of all of them holding
             * their own votes forever. */
            pxi_abandon_campaign(n);
            pxi_set_state(n, PX_FOLLOWER);
            pxi_reset_election(n);
        } else if (n->now.earliest >= n->election_deadline) {
            if (pxi_may_campaign(n))
                pxi_probe(n, false);
            else
                defer_election(n);
        } else if (n->state == PX_FOLLOWER && n->probing &&
                   n->now.earliest - n->probe_sent >= n->o.heartbeat_ns / 4) {
            pxi_probe(n, true);
        } else if (n->state == PX_CANDIDATE && n->last_hb != INT64_MIN &&
                   n->now.earliest - n->last_hb >= n->o.heartbeat_ns / 4) {
            /* Asked again soon: a voter whose vote for the old leader ran out just after
             * our first PREPARE refused it. */
            n->last_hb = n->now.earliest;
            uint64_t m = pxi_window_mask(n) & ~n->promised_set;
            for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++)
                if (m & (1ull << id))
                    pxi_send_prepare(n, id);
        }
        break;
    case PX_LEADER:
        if (n->lease_end > 0 && n->now.earliest >= n->lease_end + n->o.heartbeat_ns) {
            /* The lease ran out a heartbeat ago and no quorum renewed it: cut off from a
             * majority (a partition), this leader can neither stamp nor serve, and would
             * hold its clients' requests until they time out. Step down: the host fails
             * what is in flight (outcome unknown) and redirects the rest, and the majority's
             * new leader, elected meanwhile, serves them. Stepping down is always safe. */
            pxi_set_state(n, PX_FOLLOWER);
            n->leader_hint = 0;
            pxi_reset_election(n);
            break;
        }
        if (n->last_hb == INT64_MIN || n->now.earliest - n->last_hb >= n->o.heartbeat_ns)
            pxi_heartbeat(n);
        pxi_pump(n);
        break;
    case PX_ABDICATING:
        /* Spanner §4.1.1: before abdicating, wait until TT.after(s_max). */
        if (n->o.mutant == PX_MUTANT_NO_LEASE_WAIT || tt_interval_after(n->now, n->s_max)) {
            uint64_t m = pxi_window_mask(n) & ~(1ull << n->o.self);
            for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++)
                if (m & (1ull << id)) {
                    px_msg *r = pxi_msg_to(n, id, PX_MSG_RELEASE);
                    r->ballot = n->promised;
                }
            n->vote_until = INT64_MIN;
            n->vote_floor = INT64_MIN;
            n->led_vote_until = INT64_MIN;
            pxi_set_state(n, PX_FOLLOWER);
            n->leader_hint = 0;
            n->election_deadline = n->now.earliest + 2 * n->o.election_ns;
        }
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------- input validation */

int pxi_check_ballot(px_ballot b, const char *what, mr_err *err)
{
    if (b.node > PX_MAX_NODE_ID || (b.round == 0) != (b.node == 0))
        return mr_errf(err, MR_EINVAL, "%s ballot (%llu,%u) out of range", what,
                       (unsigned long long)b.round, b.node);
    return 0;
}

int pxi_validate_msg(const px_node *n, const px_msg *m, mr_err *err)
{
    if (m->type == 0 || m->type >= PX_MSG_MAX)
        return mr_errf(err, MR_EINVAL, "message type %u", m->type);
    if (m->group != n->o.group)
        return mr_errf(err, MR_EINVAL, "%s for group %llu, this is group %llu",
                       px_msg_type_name(m->type), (unsigned long long)m->group,
                       (unsigned long long)n->o.group);
    if (m->from < 1 || m->from > PX_MAX_NODE_ID || m->from == n->o.self)
        return mr_errf(err, MR_EINVAL, "%s from node %u", px_msg_type_name(m->type), m->from);
    if (pxi_check_ballot(m->ballot, "message", err) ||
        pxi_check_ballot(m->promised, "promised", err))
        return MR_EINVAL;
    if (m->ballot.round == 0)
        return mr_errf(err, MR_EINVAL, "%s without a ballot", px_msg_type_name(m->type));
    if ((m->type == PX_MSG_PREPARE || m->type == PX_MSG_ACCEPT || m->type == PX_MSG_HEARTBEAT ||
         m->type == PX_MSG_PROBE) &&
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
        if (pxi_check_ballot(e->ballot, "entry", err))
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
    if (m->type == PX_MSG_SNAPSHOT ? (uint64_t)m->snap_off + m->snap_len > m->snap_total
                                   : m->snap_off != 0 || m->snap_total != m->snap_len)
        return mr_errf(err, MR_EINVAL, "%s: snapshot bytes %u+%u of %u", px_msg_type_name(m->type),
                       m->snap_off, m->snap_len, m->snap_total);
    if (m->type == PX_MSG_PROMISE && m->meta.slot > 0 && m->meta.nconfigs == 0)
        return mr_errf(err, MR_EINVAL, "PROMISE snapshot without configuration");
    return 0;
}

/* ---------------------------------------------------------------- entry points */

uint32_t px_node_max_proposal(const px_node *n)
{
    return pxi_max_entry(n) - 4; /* a batch of one: [u32 length][proposal] */
}

void px_options_default(px_options *o)
{
    px_options z = {0};
    z.group = o->group;
    z.self = o->self;
    z.config = o->config;
    px_options_set_lease(&z, 2000000000LL);
    z.alpha = 16;
    z.max_batch = 64;
    z.max_msg_bytes = PX_MSG_DEFAULT_MAX_BYTES;
    z.max_queue = 4096;
    z.snapshot_every = 0;
    z.log_keep = 32;
    z.seed = 1;
    *o = z;
}

void px_options_set_lease(px_options *o, int64_t lease_ns)
{
    o->lease_ns = lease_ns;
    o->heartbeat_ns = lease_ns / 4;
    o->election_ns = lease_ns;
    o->jitter_ns = lease_ns / 4;
}

const px_options *px_node_options(const px_node *n)
{
    return &n->o;
}

int px_node_create(const px_options *opts, px_node **out, mr_err *err)
{
    *out = NULL;
    if (opts->self < 1 || opts->self > PX_MAX_NODE_ID)
        return mr_errf(err, MR_EINVAL, "node id %u out of range 1..%d", opts->self, PX_MAX_NODE_ID);
    if (px_config_validate(&opts->config, err))
        return mr_err_wrap(err, "bootstrap configuration");
    if (opts->lease_ns <= 0 || opts->heartbeat_ns <= 0 || opts->heartbeat_ns >= opts->lease_ns ||
        opts->election_ns <= 0 || opts->jitter_ns < 0)
        return mr_errf(err, MR_EINVAL,
                       "timers: want 0 < heartbeat < lease, election > 0, jitter >= 0");
    if (opts->alpha < 1 || opts->alpha > 4096 || opts->max_batch < 1 || opts->max_queue < 1)
        return mr_errf(err, MR_EINVAL, "alpha %u, max_batch %u, max_queue %u out of range",
                       opts->alpha, opts->max_batch, opts->max_queue);
    if (opts->max_msg_bytes &&
        (opts->max_msg_bytes < 4096 || opts->max_msg_bytes > PX_MSG_MAX_ENTRY_BYTES))
        return mr_errf(err, MR_EINVAL, "max_msg_bytes %u out of range 4096..%u",
                       opts->max_msg_bytes, PX_MSG_MAX_ENTRY_BYTES);
    if (opts->log_keep < opts->alpha)
        return mr_errf(err, MR_EINVAL, "log_keep %llu below alpha %u",
                       (unsigned long long)opts->log_keep, opts->alpha);
    px_node *n = calloc(1, sizeof *n);
    if (!n)
        return mr_errf(err, MR_ENOMEM, "px_node");
    n->o = *opts;
    if (!n->o.max_msg_bytes)
        n->o.max_msg_bytes = PX_MSG_DEFAULT_MAX_BYTES;
    n->rng = opts->seed * 0x9E3779B97F4A7C15ull + opts->self + 1;
    n->log_start = 1;
    n->state = PX_FOLLOWER;
    n->vote_until = INT64_MIN;
    n->vote_floor = INT64_MIN;
    n->led_vote_until = INT64_MIN;
    n->min_next = opts->ts_floor;
    pxi_add_config(n, 1, &opts->config);
    *out = n;
    return 0;
}

int px_node_restore(px_node *n, const px_durable *d, mr_err *err)
{
    if (n->started)
        return mr_errf(err, MR_EINVAL, "restore after start");
    if (pxi_check_ballot(d->promise, "durable promise", err))
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
            pxi_add_config(n, d->meta.configs[i].effect_slot, &d->meta.configs[i].config);
    }
    for (size_t i = 0; i < d->nentries; i++) {
        const px_entry *e = &d->entries[i];
        if (e->slot < n->log_start)
            continue;
        if (e->slot - n->log_start >= SLOT_SANITY || e->kind > PX_ENTRY_CONFIG)
            return mr_errf(err, MR_ECORRUPT, "durable entry at slot %llu",
                           (unsigned long long)e->slot);
        rec *r = pxi_rec_get(n, e->slot);
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
        rec *r = pxi_rec_at(n, n->commit + 1);
        if (!r || !r->present || !r->chosen)
            break;
        n->commit++;
        pxi_commit_one(n, r);
        if (r->kind == PX_ENTRY_CONFIG && !r->voided) {
            px_config c;
            if (px_config_decode(r->data, r->len, &c, err))
                return mr_err_wrap(err, "durable slot %llu", (unsigned long long)n->commit),
                       MR_ECORRUPT;
            pxi_add_config(n, n->commit + n->o.alpha, &c);
        }
    }
    n->proposed_upto = n->commit;
    return 0;
}

void pxi_batch_begin(px_node *n)
{
    pxi_grave_flush(n);
    n->nacts = 0;
    n->batch_has_persist = false;
    n->oom = false;
}

void pxi_batch_end(px_node *n, px_batch *out)
{
    out->actions = n->acts;
    out->n = n->nacts;
    out->persist_seq = n->batch_has_persist ? n->persist_seq : 0;
}

int px_node_start(px_node *n, tt_interval now, px_batch *out, mr_err *err)
{
    pxi_batch_begin(n);
    pxi_batch_end(n, out);
    if (n->started)
        return mr_errf(err, MR_EINVAL, "node already started");
    n->started = true;
    n->now = now;
    /* Votes are not persisted: we may have voted just before a crash (Spanner §4.1.1). A
     * replica with no durable promise never voted (every vote goes with a promise, durable
     * before the vote leaves): a new group's replicas may vote at once. */
    n->grace_until = n->o.mutant == PX_MUTANT_NO_LEASE_WAIT || n->promised.round == 0
                         ? INT64_MIN
                         : now.latest + n->o.lease_ns;
    uint64_t c = n->commit;
    if (n->snap_meta.slot > 0) {
        px_action *a = pxi_act(n, PX_ACT_INSTALL_SNAPSHOT);
        a->meta = n->snap_meta;
        a->snap = n->snap;
        a->snap_len = n->snap_len;
    }
    n->applied = n->snap_meta.slot;
    n->commit = c;
    pxi_apply_upto_commit(n);
    pxi_reset_election(n);
    pxi_batch_end(n, out);
    return n->oom ? mr_errf(err, MR_ENOMEM, "start") : 0;
}

int px_step(px_node *n, tt_interval now, const px_event *ev, px_batch *out, mr_err *err)
{
    pxi_batch_begin(n);
    pxi_batch_end(n, out);
    if (!n->started)
        return mr_errf(err, MR_EINVAL, "px_step before px_node_start");
    if (now.earliest > now.latest)
        return mr_errf(err, MR_EINVAL, "TrueTime interval [%lld, %lld] is empty",
                       (long long)now.earliest, (long long)now.latest);
    n->now = now;
    int rc = 0;
    switch (ev->kind) {
    case PX_EV_TICK:
        pxi_on_tick(n);
        break;
    case PX_EV_RECEIVE: {
        const px_msg *m = ev->msg;
        if (!m)
            return mr_errf(err, MR_EINVAL, "RECEIVE without a message");
        if (pxi_validate_msg(n, m, err)) {
            mr_err_wrap(err, "node %u rejects a message", n->o.self);
            if (err)
                err->code = MR_EINVAL;
            return MR_EINVAL;
        }
        /* Replies that reveal a higher ballot depose a leader or candidate. */
        if ((m->type == PX_MSG_PROMISE || m->type == PX_MSG_ACCEPTED ||
             m->type == PX_MSG_HEARTBEAT_ACK) &&
            !m->ok && px_ballot_cmp(m->promised, n->promised) > 0)
            pxi_step_down(n, m->promised);
        switch (m->type) {
        case PX_MSG_PREPARE:
            pxi_on_prepare(n, m);
            break;
        case PX_MSG_PROMISE:
            pxi_on_promise(n, m);
            pxi_pump(n);
            break;
        case PX_MSG_ACCEPT:
            pxi_on_accept(n, m);
            break;
        case PX_MSG_ACCEPTED:
            pxi_on_accepted(n, m);
            break;
        case PX_MSG_HEARTBEAT:
            pxi_on_heartbeat(n, m);
            break;
        case PX_MSG_HEARTBEAT_ACK:
            pxi_on_heartbeat_ack(n, m);
            break;
        case PX_MSG_LEARN:
        case PX_MSG_SNAPSHOT:
            pxi_on_learn(n, m);
            break;
        case PX_MSG_RELEASE:
            pxi_on_release(n, m);
            break;
        case PX_MSG_PROBE:
            pxi_on_probe(n, m);
            break;
        case PX_MSG_PROBE_ACK:
            pxi_on_probe_ack(n, m);
            break;
        default:
            break;
        }
        break;
    }
    case PX_EV_PROPOSE:
        if (ev->len > px_node_max_proposal(n) || (ev->len && !ev->data)) {
            rc = mr_errf(err, MR_EINVAL, "proposal of %u bytes (at most %u)", ev->len,
                         px_node_max_proposal(n));
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
        pxi_pump(n);
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
                pxi_check_chosen(n, s);
            pxi_advance_commit(n);
            pxi_pump(n);
        }
        break;
    case PX_EV_SNAPSHOT:
        if (ev->len && !ev->data) {
            rc = mr_errf(err, MR_EINVAL, "snapshot without bytes");
            break;
        }
        rc = pxi_take_snapshot(n, ev->slot, ev->data, ev->len, err);
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
        if (pxi_config_pending(n) || n->cfg_wanted) {
            rc = mr_errf(err, MR_EUNAVAIL, "membership change: another one is pending");
            break;
        }
        if (!px_config_has(&ev->config, n->o.self)) {
            rc = mr_errf(err, MR_EINVAL, "membership change: the leader cannot remove itself");
            break;
        }
        const px_config *cur = pxi_cfg_at(n, n->commit + n->o.alpha);
        uint64_t a = pxi_cfg_mask(cur), b = pxi_cfg_mask(&ev->config);
        if (__builtin_popcountll(a ^ b) != 1) {
            rc =
                mr_errf(err, MR_EINVAL, "membership change must add or remove exactly one replica");
            break;
        }
        n->cfg_wanted = true;
        n->cfg_next = ev->config;
        pxi_pump(n);
        break;
    }
    case PX_EV_ABDICATE:
        if (n->state != PX_LEADER) {
            rc = mr_errf(err, MR_ENOTLEADER, "abdicate: node %u is %s", n->o.self,
                         px_state_name(n->state));
            break;
        }
        n->lease_end = min64(n->lease_end, n->now.earliest);
        pxi_set_state(n, PX_ABDICATING);
        pxi_on_tick(n);
        break;
    case PX_EV_CAMPAIGN:
        if (n->state == PX_FOLLOWER || n->state == PX_CANDIDATE) {
            if (pxi_may_campaign(n))
                pxi_campaign(n);
            else
                rc = mr_errf(err, MR_EUNAVAIL, "campaign: lease vote still held");
        }
        break;
    default:
        rc = mr_errf(err, MR_EINVAL, "unknown event %d", (int)ev->kind);
    }
    if (n->state == PX_LEADER)
        pxi_lease_recompute(n);
    pxi_batch_end(n, out);
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
    st->lease_valid = pxi_lease_valid(n);
    st->lease_end = n->state == PX_LEADER || n->state == PX_ABDICATING ? n->lease_end : 0;
    st->commit = n->commit;
    st->applied = n->applied;
    st->next_slot = n->proposed_upto + 1;
    st->log_start = n->log_start;
    st->last_ts = n->last_ts;
    st->s_max = n->s_max;
    st->queued = n->qlen;
}

void px_node_set_eligible(px_node *n, bool eligible)
{
    n->ineligible = !eligible;
}

int px_node_promise(px_node *n, tt_interval now, int64_t ts, mr_err *err)
{
    if (!px_node_lease_valid(n, now))
        return mr_errf(err, MR_ENOTLEADER, "not the leader with a valid lease");
    if (ts >= n->lease_end)
        return mr_errf(err, MR_EINVAL, "timestamp %lld is past the lease end %lld", (long long)ts,
                       (long long)n->lease_end);
    if (ts > n->min_next)
        n->min_next = ts;
    if (ts > n->s_max)
        n->s_max = ts; /* abdication waits TT.after(s_max): reads at ts are covered too */
    return MR_OK;
}

void px_node_raise_ts_floor(px_node *n, int64_t ts)
{
    if (ts > n->min_next)
        n->min_next = ts;
}

bool px_node_lease_valid(const px_node *n, tt_interval now)
{
    return n->state == PX_LEADER && n->lease_end > 0 && now.latest < n->lease_end;
}

void px_node_destroy(px_node *n)
{
    if (!n)
        return;
    pxi_grave_flush(n);
    for (size_t i = 0; i < n->log_len; i++)
        free(n->log[i].data);
    free(n->log);
    pxi_reports_clear(n);
    free(n->reports);
    pxi_queue_clear(n);
    free(n->queue);
    free(n->snap);
    free(n->rx_snap);
    free(n->acts);
    free(n->grave);
    free(n->accept_slots);
    free(n);
}

/* Replicas: starting a group's core, stepping it, handling its actions, framing proposals. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "net/transport.h"
#include "tablet/logstore/ls_paxos.h"
#include "tablet/node/nd_http.h"
#include "tablet/node/nd_metrics.h"
#include "tablet/paxos/px.h"
#include "truetime/tt.h"

#include "tablet/node/nd_int.h"
#include "tablet/node/nd_peer.h"
#include "tablet/node/nd_validate.h"

/* Groups are kept sorted by id (the cluster description lists them in order). */
nd_group *nd_find_group(nd_node *n, uint64_t id)
{
    size_t lo = 0, hi = n->ngroups;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (n->groups[mid]->id == id)
            return n->groups[mid];
        if (n->groups[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Starts the replicas the range map gives this node but it does not run yet
 * (groups split off a parent here): from the loop, never inside an apply. */
void nd_start_new_groups(nd_node *n)
{
    for (size_t i = 0; i < n->nranges; i++) {
        const nd_range *r = &n->ranges[i];
        if (!px_config_has(&r->replicas, n->self) || r->absent || nd_find_group(n, r->group))
            continue;
        /* Starting replays the group's log, which may split it and reload the
         * map under us: copy what is needed, then look from the top again. */
        px_config replicas = r->replicas;
        uint64_t gid = r->group, parent = r->parent;
        int64_t floor = r->floor_ts;
        mr_err err;
        if (nd_start_group(n, gid, &replicas, floor, &err) != MR_OK) {
            nd_fatal(n, "starting a split-off group", &err);
            return;
        }
        /* The parent's leader campaigns for the child at once: its keys are unserved until
         * the child has a leader, and nobody else would campaign before an election timeout
         * (a new group's replicas never voted, so they may vote now: px_node_start). */
        nd_group *pg = parent ? nd_find_group(n, parent) : NULL, *cg = nd_find_group(n, gid);
        px_status pst = {0};
        if (pg)
            px_node_status(pg->px, &pst);
        if (cg && pst.state == PX_LEADER) {
            px_event camp = {.kind = PX_EV_CAMPAIGN};
            if (nd_step(n, cg, &camp, &err) != MR_OK)
                MR_DEBUG("node", "group=%llu split off %llu: no campaign yet: %s",
                         (unsigned long long)gid, (unsigned long long)parent, mr_err_msg(&err));
        }
        i = (size_t)-1;
    }
}

/* Handles one batch of actions from group g's core. */
static void handle_batch(nd_node *n, nd_group *g, const px_batch *b)
{
    if (b->n == 0)
        return;
    mr_err err;
    if (b->persist_seq) {
        if (ls_px_stage(n->store, g->id, b->actions, b->n, &err) != MR_OK) {
            nd_fatal(n, "staging Paxos state", &err);
            return;
        }
        n->dirty = true;
        g->rep.persist_seq = b->persist_seq;
    }
    for (size_t i = 0; i < b->n; i++) {
        const px_action *a = &b->actions[i];
        switch (a->kind) {
        case PX_ACT_SEND:
            nd_queue_send(n, a->to, &a->msg);
            break;
        case PX_ACT_APPLY:
            if (a->voided)
                nd_chain_void(n, g, &a->entry);
            else
                nd_chain_apply(n, g, &a->entry);
            break;
        case PX_ACT_TAKE_SNAPSHOT:
            g->rep.want_snapshot = true;
            g->rep.snapshot_slot = a->slot;
            break;
        case PX_ACT_INSTALL_SNAPSHOT:
            MR_INFO("node", "group=%llu installing a snapshot of %u bytes",
                    (unsigned long long)g->id, a->snap_len);
            if (nd_chain_install(n, g, a->snap, a->snap_len) != 0) {
                /* Going on would leave this replica's tablet behind its log:
                 * stop; a restart asks for the snapshot again. */
                mr_err e;
                mr_errf(&e, MR_ECORRUPT,
                        "group %llu: a snapshot of %u bytes could not be installed",
                        (unsigned long long)g->id, a->snap_len);
                nd_fatal(n, "installing a snapshot", &e);
            }
            break;
        case PX_ACT_PERSIST:
            break;
        }
    }
}

struct nd_deferred {
    uint8_t *prop;
    uint32_t len;
    nd_deferred *next;
};

/* Proposals made while the group's action batch is being handled (an apply
 * that releases locks lets the next transaction propose): the batch lives in
 * the core until the next call into it, so they wait until it is done. */
static void run_deferred(nd_node *n, nd_group *g)
{
    while (g->rep.deferred && !n->fatal && !g->rep.in_batch) {
        nd_deferred *d = g->rep.deferred;
        g->rep.deferred = d->next;
        if (!g->rep.deferred)
            g->rep.deferred_tail = NULL;
        px_event ev = {.kind = PX_EV_PROPOSE, .data = d->prop, .len = d->len};
        mr_err err;
        if (nd_step(n, g, &ev, &err) != MR_OK && d->len >= ND_PROP_HDR + 8 &&
            nd_op_is_txn(d->prop[12])) {
            if (g->lead.inflight)
                g->lead.inflight--;
            nd_txn_voided(n, g, d->prop[12], get64(d->prop + ND_PROP_HDR));
        }
        free(d->prop);
        free(d);
    }
}

void nd_free_deferred(nd_group *g)
{
    while (g->rep.deferred) {
        nd_deferred *d = g->rep.deferred;
        g->rep.deferred = d->next;
        free(d->prop);
        free(d);
    }
    g->rep.deferred_tail = NULL;
}

int nd_step(nd_node *n, nd_group *g, const px_event *ev, mr_err *err)
{
    px_batch b;
    int rc = px_step(g->px, tt_now(n->clock), ev, &b, err);
    g->rep.in_batch++;
    handle_batch(n, g, &b);
    g->rep.in_batch--;
    /* The batch is only valid until the next call into this core. */
    while (g->rep.want_snapshot && !n->fatal) {
        g->rep.want_snapshot = false;
        uint32_t slen;
        uint8_t *snap = nd_chain_snapshot(n, g, &slen);
        if (!snap)
            break;
        px_event sev = {.kind = PX_EV_SNAPSHOT, .data = snap, .len = slen, .slot = g->sm.slot};
        MR_DEBUG("node", "group=%llu snapshot at slot %llu: %u bytes", (unsigned long long)g->id,
                 (unsigned long long)g->sm.slot, slen);
        mr_err e2;
        px_batch b2;
        if (px_step(g->px, tt_now(n->clock), &sev, &b2, &e2) != MR_OK)
            MR_WARN("node", "group=%llu snapshot refused: %s", (unsigned long long)g->id,
                    mr_err_msg(&e2));
        free(snap); /* the core copied it */
        g->rep.in_batch++;
        handle_batch(n, g, &b2);
        g->rep.in_batch--;
    }
    run_deferred(n, g);
    return rc;
}

/* Starts this node's replica of group gid. floor: the group was split off
 * another at that timestamp, and every timestamp it assigns exceeds it. */
int nd_start_group(nd_node *n, uint64_t gid, const px_config *config, int64_t floor, mr_err *err)
{
    if (nd_find_group(n, gid))
        return mr_errf(err, MR_ECORRUPT, "group %llu is listed twice", (unsigned long long)gid);
    /* Groups are reached by pointer from transactions and timers: each lives
     * at a fixed address; the array of pointers may move. */
    nd_group **ng = realloc(n->groups, (n->ngroups + 1) * sizeof *ng);
    if (!ng)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    n->groups = ng;
    nd_group *g = calloc(1, sizeof *g);
    if (!g)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    g->id = gid;
    g->config = *config;
    for (size_t i = 0; i < n->nranges; i++)
        if (n->ranges[i].group == gid) {
            g->has_range = true;
            if (nd_bytes_set(&g->range_start, n->ranges[i].start.p, n->ranges[i].start.len) ||
                nd_bytes_set(&g->range_end, n->ranges[i].end.p, n->ranges[i].end.len)) {
                nd_bytes_free(&g->range_start);
                nd_bytes_free(&g->range_end);
                free(g);
                return mr_errf(err, MR_ENOMEM, "out of memory");
            }
        }
    g->sm.hash = 1469598103934665603ull;
    /* A split-off group's store is complete through its floor, and every
     * write it will take is stamped above: reads at or below are safe. */
    g->read.safe_ts = floor;
    px_options o;
    px_options_default(&o);
    o.group = gid;
    o.self = n->self;
    o.config = *config;
    if (n->lease_ns) /* the heartbeat and election timers follow the lease */
        px_options_set_lease(&o, n->lease_ns);
    o.snapshot_every = 1000;
    /* Test-only: compact the log sooner, so catch-up by snapshot is exercised. */
    if (n->test.snapshot_every) {
        o.snapshot_every = n->test.snapshot_every;
        o.log_keep = o.alpha; /* the least the core accepts */
    }
    /* Test-only: small Paxos messages, so snapshots travel in many chunks and
     * catch-up in many LEARNs without megabytes of data. */
    if (n->test.px_msg_max)
        o.max_msg_bytes = n->test.px_msg_max;
    o.seed = (uint64_t)mr_monotonic_ns() ^ (gid << 32) ^ n->self;
    o.ts_floor = floor;
    int rc = px_node_create(&o, &g->px, err);
    if (rc == MR_OK) {
        rc = nd_txn_group_open(n, g, err);
        if (rc == MR_OK) {
            ls_px_state st;
            rc = ls_px_load(n->store, gid, &st, err);
            if (rc == MR_OK) {
                rc = px_node_restore(g->px, &st.d, err);
                ls_px_state_free(&st);
            }
        }
        if (rc) {
            px_node_destroy(g->px);
            nd_txn_group_close(n, g);
        }
    }
    if (rc) {
        nd_bytes_free(&g->range_start);
        nd_bytes_free(&g->range_end);
        free(g);
        return rc;
    }
    /* Kept sorted by id (nd_find_group): split-off groups may start out of order. */
    size_t at = n->ngroups;
    while (at > 0 && n->groups[at - 1]->id > gid)
        at--;
    memmove(n->groups + at + 1, n->groups + at, (n->ngroups - at) * sizeof *n->groups);
    n->groups[at] = g;
    n->ngroups++;
    px_batch b;
    rc = px_node_start(g->px, tt_now(n->clock), &b, err);
    if (rc)
        return rc;
    handle_batch(n, g, &b);
    MR_INFO("node", "replica started group=%llu self=%u replicas=%u applied=%llu",
            (unsigned long long)gid, n->self, config->n, (unsigned long long)g->sm.slot);
    return MR_OK;
}

void nd_on_px(nd_node *n, const net_message *m)
{
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__PxBundle *b = (const Meridian__PxBundle *)nd_peer_receive(n, m, &a);
    mr_err err;
    if (!b) {
        pr_arena_free(&a);
        return;
    }
    px_node_id from = b->from;
    if (n->partitioned & (1ull << from)) {
        pr_arena_free(&a);
        return;
    }
    n->peers[from].last_seen = mr_monotonic_ns();
    n->peers[from].clock_status = (uint8_t)b->clock_status;
    n->peers[from].clock_eps = b->epsilon_ns;
    n->stats.px_in += b->n_msgs;
    for (size_t i = 0; i < b->n_msgs; i++) {
        px_msg msg;
        if (px_msg_decode(b->msgs[i].data, b->msgs[i].len, &msg, &err) == MR_OK) {
            nd_group *g = nd_find_group(n, msg.group);
            if (g) {
                px_event ev = {.kind = PX_EV_RECEIVE, .msg = &msg};
                if (nd_step(n, g, &ev, &err) != MR_OK)
                    MR_DEBUG("node", "group=%llu rejected %s from %u: %s",
                             (unsigned long long)msg.group, px_msg_type_name(msg.type), from,
                             mr_err_msg(&err));
            }
            px_msg_free(&msg);
        } else {
            n->stats.malformed++;
            MR_WARN("node", "malformed Paxos message from node %u: %s", from, mr_err_msg(&err));
        }
    }
    pr_arena_free(&a);
}

int nd_propose_raw(nd_node *n, nd_group *g, uint64_t seq, uint8_t kind, const uint8_t *body,
                   size_t blen, mr_err *err)
{
    uint8_t *prop = malloc(ND_PROP_HDR + blen);
    if (!prop)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    put32(prop, n->self);
    put64(prop + 4, seq);
    prop[12] = kind;
    if (blen)
        memcpy(prop + ND_PROP_HDR, body, blen);
    if (nd_op_is_txn(kind))
        g->lead.inflight++;
    if (g->rep.in_batch) { /* see run_deferred */
        nd_deferred *d = malloc(sizeof *d);
        if (!d) {
            free(prop);
            if (nd_op_is_txn(kind))
                g->lead.inflight--;
            return mr_errf(err, MR_ENOMEM, "out of memory");
        }
        *d = (nd_deferred){prop, (uint32_t)(ND_PROP_HDR + blen), NULL};
        if (g->rep.deferred_tail)
            g->rep.deferred_tail->next = d;
        else
            g->rep.deferred = d;
        g->rep.deferred_tail = d;
        g->lead.last_propose = mr_monotonic_ns();
        return MR_OK;
    }
    px_event ev = {.kind = PX_EV_PROPOSE, .data = prop, .len = (uint32_t)(ND_PROP_HDR + blen)};
    int rc = nd_step(n, g, &ev, err);
    free(prop);
    if (rc == MR_OK)
        g->lead.last_propose = mr_monotonic_ns();
    else if (nd_op_is_txn(kind) && g->lead.inflight)
        g->lead.inflight--;
    return rc;
}

/* Proposes [node][seq][kind][body] to group gid; the client is answered when
 * the proposal is applied here (nd_chain_apply), or now with the reason it cannot be. */
void nd_propose_op(nd_node *n, const net_message *m, uint64_t gid, uint8_t kind,
                   const uint8_t *body, size_t blen)
{
    nd_group *g = nd_find_group(n, gid);
    if (!g)
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__NO_GROUP,
                              "this node holds no replica of the group");
    uint64_t seq = ++n->next_seq;
    mr_err err;
    int rc = nd_propose_raw(n, g, seq, kind, body, blen, &err);
    if (rc != MR_OK) {
        px_status st;
        px_node_status(g->px, &st);
        const char *leader =
            st.leader && st.leader <= PX_MAX_NODE_ID ? n->peers[st.leader].addr : "";
        /* Refused before anything was proposed: not leading, the queue full (retryable), a
         * proposal over the entry size. */
        Meridian__ErrorCode code = rc == MR_ENOTLEADER ? MERIDIAN__ERROR_CODE__NOT_LEADER
                                   : rc == MR_EFULL    ? MERIDIAN__ERROR_CODE__BUSY
                                   : rc == MR_EINVAL   ? MERIDIAN__ERROR_CODE__TOO_LARGE
                                   : rc == MR_ENOMEM   ? MERIDIAN__ERROR_CODE__NO_MEMORY
                                                       : MERIDIAN__ERROR_CODE__UNAVAILABLE;
        nd_send_reply(n, m->reply_to,
                      nd_enc_error(code, mr_err_msg(&err), rc == MR_EFULL, leader, 0));
        return;
    }
    if (n->npending == n->cap_pending) {
        size_t cap = n->cap_pending ? 2 * n->cap_pending : 64;
        nd_pending *p = realloc(n->pending, cap * sizeof *p);
        if (!p)
            return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__NO_MEMORY, "out of memory");
        n->pending = p;
        n->cap_pending = cap;
    }
    int64_t now = mr_monotonic_ns();
    n->pending[n->npending++] = (nd_pending){gid, seq, m->reply_to, now, now + ND_PROPOSE_TIMEOUT};
}

/* The loop and group commit: one fsync for every group, then one frame per peer; the tick. */
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

void nd_fatal(nd_node *n, const char *what, const mr_err *err)
{
    /* A persist that cannot be stored breaks the order the core relies on: the
     * safe reaction is to stop this process, losing only what was not durable. */
    MR_ERROR("node", "fatal: %s: %s; stopping", what, mr_err_msg(err));
    n->fatal = true;
    uv_stop(n->loop);
}

size_t nd_bundle_cut(const uint8_t *buf, size_t len, size_t off, size_t max_payload,
                     uint32_t *count)
{
    size_t end = off, bytes = ND_PX_HDR;
    *count = 0;
    while (len - end >= 4) {
        size_t item = get32(buf + end), z = 4 + item;
        if (z > len - end || (*count && bytes + nd_px_item_bytes(item) > max_payload))
            break;
        bytes += nd_px_item_bytes(item);
        end += z;
        (*count)++;
    }
    return end;
}

/* Sends the items of q->buf[off, end) (count of them) to node `to` as one PxBundle. */
static void send_bundle(nd_node *n, px_node_id to, const nd_outq *q, size_t off, size_t end,
                        uint32_t count, tt_status clock_status, int64_t clock_eps)
{
    ProtobufCBinaryData *msgs = count ? malloc(count * sizeof *msgs) : NULL;
    if (count && !msgs)
        return; /* dropped: Paxos tolerates message loss */
    for (uint32_t i = 0; i < count; i++) {
        uint32_t z = get32(q->buf + off);
        msgs[i] = (ProtobufCBinaryData){z, q->buf + off + 4};
        off += 4 + (size_t)z;
    }
    Meridian__PxBundle b;
    meridian__px_bundle__init(&b);
    b.from = n->self;
    b.clock_status = (uint32_t)clock_status;
    b.epsilon_ns = clock_eps;
    b.n_msgs = count;
    b.msgs = msgs;
    uint8_t *frame;
    size_t total;
    mr_err err;
    if (nd_peer_encode(&b.base, &frame, &total, &err) == MR_OK) {
        n->stats.px_out += count;
        if (net_transport_send(n->tr, n->peers[to].addr, ND_MSG_PX, frame, (uint32_t)total, &err) !=
            MR_OK)
            MR_DEBUG("node", "to node %u: %s", to, mr_err_msg(&err));
        free(frame);
    } else {
        MR_ERROR("node", "bundle of %u Paxos messages to node %u: %s", count, to, mr_err_msg(&err));
    }
    free(msgs);
}

void nd_queue_send(nd_node *n, px_node_id to, const px_msg *m)
{
    if (to < 1 || to > PX_MAX_NODE_ID || !n->peers[to].addr[0])
        return;
    uint8_t *buf;
    size_t len;
    mr_err err;
    if (px_msg_encode(m, &buf, &len, &err) != MR_OK) {
        MR_ERROR("node", "cannot encode %s: %s", px_msg_type_name(m->type), mr_err_msg(&err));
        return;
    }
    if (ND_PX_HDR + nd_px_item_bytes(len) > ND_PX_FRAME_MAX) {
        /* The core caps its messages well below this (px_options.max_msg_bytes). */
        MR_ERROR("node", "%s of %zu bytes to node %u does not fit a frame: dropped",
                 px_msg_type_name(m->type), len, to);
        free(buf);
        return;
    }
    nd_outq *q = &n->out[to];
    if (q->len + len + 4 > q->cap) {
        size_t cap = (q->len + len + 4) * 2;
        uint8_t *nb = realloc(q->buf, cap);
        if (!nb) {
            free(buf);
            return; /* dropped: Paxos tolerates message loss */
        }
        q->buf = nb;
        q->cap = cap;
    }
    put32(q->buf + q->len, (uint32_t)len);
    memcpy(q->buf + q->len + 4, buf, len);
    q->len += len + 4;
    q->count++;
    free(buf);
}

/* Makes staged persists durable (one fsync for every group), tells each core,
 * then sends the queued messages: one frame per peer. */
void nd_flush(nd_node *n)
{
    for (int round = 0; round < 8 && nd_txn_run_local(n); round++)
        ;
    for (int round = 0; n->dirty && round < 8 && !n->fatal; round++) {
        mr_err err;
        int64_t t0 = mr_monotonic_ns();
        if (ls_sync(n->store, &err) != MR_OK) {
            nd_fatal(n, "syncing the Paxos log", &err);
            return;
        }
        int64_t took = mr_monotonic_ns() - t0;
        nd_hist_observe(&n->stats.fsync_latency, took);
        if (took > 50 * MR_NS_PER_MS) /* every group on this node waited that long */
            MR_DEBUG("node", "slow group commit: fsync took %lld ms",
                     (long long)(took / MR_NS_PER_MS));
        n->stats.fsyncs++;
        n->dirty = false;
        for (size_t i = 0; i < n->ngroups; i++) {
            nd_group *g = n->groups[i];
            if (!g->rep.persist_seq)
                continue;
            px_event ev = {.kind = PX_EV_PERSISTED, .seq = g->rep.persist_seq};
            g->rep.persist_seq = 0;
            nd_step(n, g, &ev, &err);
        }
    }
    if (n->dirty || n->fatal)
        return; /* never send ahead of what is durable */
    /* Once a second every peer gets a frame even when no group has anything to
     * say to it: that is the node-pair heartbeat behind `status` up/down. */
    int64_t now = mr_monotonic_ns();
    bool ping = n->initialized && now - n->last_ping > MR_NS_PER_S;
    tt_status clock_status = tt_status_now(n->clock);
    int64_t clock_eps = tt_interval_epsilon(tt_now(n->clock));
    if (ping)
        n->last_ping = now;
    for (px_node_id to = 1; to <= PX_MAX_NODE_ID; to++) {
        nd_outq *q = &n->out[to];
        if (!q->count && !(ping && n->peers[to].id && to != n->self))
            continue;
        if (to == n->self || (n->partitioned & (1ull << to))) {
            q->len = q->count = 0;
            continue;
        }
        /* Every group's messages to this peer, in as few frames as fit the limit. */
        size_t off = 0;
        do {
            uint32_t count;
            size_t end = nd_bundle_cut(q->buf, q->len, off, ND_PX_FRAME_MAX, &count);
            if (end == off && q->len)
                break; /* cannot happen: nd_queue_send frames every item */
            send_bundle(n, to, q, off, end, count, clock_status, clock_eps);
            off = end;
        } while (off < q->len);
        q->len = q->count = 0;
    }
}

static void on_prepare(uv_prepare_t *h)
{
    nd_flush(h->data);
}

static void on_check(uv_check_t *h)
{
    nd_flush(h->data);
}

static void on_tick(uv_timer_t *h)
{
    nd_node *n = h->data;
    bool healthy = tt_healthy(n->clock);
    int64_t now = mr_monotonic_ns();
    if (n->last_tick && now - n->last_tick > 60 * MR_NS_PER_MS) /* the loop was busy */
        MR_DEBUG("node", "tick late: %lld ms since the last",
                 (long long)((now - n->last_tick) / MR_NS_PER_MS));
    n->last_tick = now;
    if (n->initialized)
        nd_start_new_groups(n);
    for (size_t i = 0; i < n->ngroups; i++) {
        nd_group *g = n->groups[i];
        mr_err err;
        px_status st;
        px_node_status(g->px, &st);
        px_node_set_eligible(g->px, healthy);
        if (!healthy && st.state == PX_LEADER) {
            /* An unhealthy clock cannot vouch for timestamps: give the lease up. */
            MR_WARN("node", "group=%llu clock unhealthy: abdicating", (unsigned long long)g->id);
            px_event ab = {.kind = PX_EV_ABDICATE};
            nd_step(n, g, &ab, &err);
        }
        px_event ev = {.kind = PX_EV_TICK};
        nd_step(n, g, &ev, &err);
        px_node_status(g->px, &st);
        if (st.state == PX_LEADER && g->rep.last_state != PX_LEADER) {
            n->stats.lease_acquired++;
            g->lead.inflight = 0;
            g->lead.ready = false;
            g->lead.asked = 0; /* nd_txn_tick proposes the term's first SAFE record */
            MR_INFO("node", "group=%llu leadership acquired ballot=%llu.%u",
                    (unsigned long long)g->id, (unsigned long long)st.ballot.round, st.ballot.node);
        } else if (st.state != PX_LEADER && g->rep.last_state == PX_LEADER) {
            n->stats.lease_lost++;
            g->lead.inflight = 0;
            MR_INFO("node", "group=%llu leadership lost state=%s ballot=%llu.%u",
                    (unsigned long long)g->id, px_state_name(st.state),
                    (unsigned long long)st.ballot.round, st.ballot.node);
            nd_txn_leadership_lost(n, g);
            nd_split_reset(g);
        }
        if (st.state == PX_CANDIDATE && g->rep.last_state != PX_CANDIDATE)
            MR_INFO("node", "group=%llu campaigning ballot=%llu.%u", (unsigned long long)g->id,
                    (unsigned long long)st.ballot.round, st.ballot.node);
        g->rep.last_state = st.state;
        nd_txn_tick(n, g);
        nd_split_tick(n, g);
    }
    /* Proposals whose leadership went away never apply here: fail them. */
    for (size_t i = 0; i < n->npending;) {
        if (n->pending[i].deadline < now) {
            n->stats.proposals_failed++;
            nd_reply_error(n, n->pending[i].reply_to, MERIDIAN__ERROR_CODE__UNAVAILABLE,
                           "proposal not applied in time");
            n->pending[i] = n->pending[--n->npending];
        } else {
            i++;
        }
    }
}

void nd_loop_start(nd_node *n, uv_loop_t *loop)
{
    uv_timer_init(loop, &n->tick);
    uv_prepare_init(loop, &n->prep);
    uv_check_init(loop, &n->check);
    n->tick.data = n->prep.data = n->check.data = n;
    uv_timer_start(&n->tick, on_tick, ND_TICK_MS, ND_TICK_MS);
    uv_prepare_start(&n->prep, on_prepare);
    uv_check_start(&n->check, on_check);
}

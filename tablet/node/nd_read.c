/* Snapshot reads at a timestamp on any replica, and safe time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "coordinator/co.h"
#include "tablet/node/nd_int.h"
#include "tablet/node/nd_peer.h"
#include "tablet/node/nd_txn_int.h"
#include "tablet/node/nd_validate.h"
#include "tablet/txn/tx.h"

static void on_read_timer(uv_timer_t *h);
static int64_t read_need(nd_node *n, nd_group *g, tt_interval now, int64_t ts, bool bounded);

void nd_on_read_timer_closed(uv_handle_t *h)
{
    free(h);
}

void nd_snapwait_free(nd_snapwait *w)
{
    if (w->has_result)
        nd_enc_free(w->result);
    free(w->key);
    free(w->end);
    free(w);
}

/* Safe time (Spanner §4.1.3): t_safe = min(t_paxos_safe, t_tm_safe), where
 * t_paxos_safe is the largest applied timestamp and t_tm_safe is one below the
 * smallest prepare timestamp of an undecided transaction: it may still commit
 * at any s >= its prepare timestamp. */
static int64_t tm_safe(const nd_group *g)
{
    int64_t t = TX_TS_INF;
    for (const nd_prepared *p = g->txn.prepared; p; p = p->next)
        if (p->ts - 1 < t)
            t = p->ts - 1;
    return t;
}

/* t_paxos_safe: the largest applied timestamp, or the leader's promise once
 * this replica applied every slot the leader had assigned when it made it. */
static int64_t paxos_safe(const nd_group *g)
{
    return g->read.grant_ts > g->read.safe_ts && g->sm.slot >= g->read.grant_slot ? g->read.grant_ts
                                                                                  : g->read.safe_ts;
}

int64_t nd_safe_time(const nd_group *g)
{
    return tx_safe_time(paxos_safe(g), tm_safe(g));
}

/* Does g hold key, or every key of the scan [key, end) (elen 0: to +infinity)? */
bool nd_span_in_range(const nd_group *g, const void *key, size_t klen, bool scan, const void *end,
                      size_t elen)
{
    if (!nd_in_range(g, key, klen))
        return false;
    if (!scan || !g->range_end.len)
        return true;
    return elen && mr_bytes_cmp(end, elen, g->range_end.p, g->range_end.len) <= 0;
}

void nd_reply_wrong_range(nd_node *n, net_reply_to to, const nd_group *g, const void *key,
                          size_t klen)
{
    char msg[600], k[120], a[120], b[120];
    mr_bytes_text(key, klen, k, sizeof k);
    snprintf(msg, sizeof msg, "group %llu%s holds [\"%s\", \"%s\"), not \"%s\"",
             (unsigned long long)g->id, g->id == ND_META_GROUP ? " (meta)" : "",
             mr_bytes_text(g->range_start.p, g->range_start.len, a, sizeof a),
             mr_bytes_text(g->range_end.p, g->range_end.len, b, sizeof b), k);
    nd_send_reply(n, to,
                  nd_enc_error(MERIDIAN__ERROR_CODE__WRONG_RANGE, msg, false, NULL,
                               nd_group_of_key(n, key, klen)));
}

/* A scan's reply is one page: at most `limit` rows and `budget` bytes (at least one row);
 * the first key left out is where the client resumes. Rows are copied into the arena (the
 * store's versions are the callback's only). */
typedef struct scan_acc {
    pr_arena *arena;
    Meridian__Row **rows;
    size_t n, cap, limit, bytes, budget;
    bool more;
    ProtobufCBinaryData resume;
} scan_acc;

#define SCAN_PAGE_FULL 0x5ca7 /* scan_row's stop value (not an MR_E* code) */

static int scan_row(void *arg, const mv_version *v)
{
    scan_acc *a = arg;
    /* A row's encoding: its key, value and timestamp with their tags and lengths. */
    size_t z = 32 + v->key_len + v->len;
    if (a->n && (a->n >= a->limit || a->bytes + z > a->budget)) {
        a->more = true;
        a->resume.len = v->key_len;
        a->resume.data = pr_arena_dup(a->arena, v->key, v->key_len);
        return a->resume.data ? SCAN_PAGE_FULL : MR_ENOMEM; /* never a silently short scan */
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        Meridian__Row **nr = pr_arena_alloc(a->arena, cap * sizeof *nr);
        if (!nr)
            return MR_ENOMEM;
        if (a->n)
            memcpy(nr, a->rows, a->n * sizeof *nr);
        a->rows = nr;
        a->cap = cap;
    }
    Meridian__Row *row = pr_arena_alloc(a->arena, sizeof *row);
    void *k = pr_arena_dup(a->arena, v->key, v->key_len);
    void *val = pr_arena_dup(a->arena, v->value, v->len);
    if (!row || !k || !val)
        return MR_ENOMEM;
    *row = (Meridian__Row)MERIDIAN__ROW__INIT;
    row->key = (ProtobufCBinaryData){.len = v->key_len, .data = k};
    row->value = (ProtobufCBinaryData){.len = v->len, .data = val};
    row->version_ts = v->ts;
    a->rows[a->n++] = row;
    a->bytes += z;
    return 0;
}

/* *vis (optional): the newest timestamp the answer depends on: a point read's
 * version (or tombstone); a scan's newest deciding version, the tombstones it
 * skipped included (mv_scan_opts.newest), 0 when nothing decided a key. Only
 * those commits' waits can still be running: anything else at or below ts is
 * either applied (and so among them) or ruled out by the safe time. A scan
 * answers one page (see scan_acc): {rows, more, resume?}. */
nd_enc nd_read_at(nd_group *g, const void *key, size_t klen, bool scan, const void *end,
                  size_t elen, long limit, int64_t ts, int64_t *vis)
{
    if (vis)
        *vis = ts;
    if (!scan)
        return nd_read_key(g, key, klen, ts, true, vis);
    mr_err err;
    mr_err_clear(&err);
    pr_arena arena;
    pr_arena_init(&arena);
    size_t budget = nd_reply_max() / 2 < ND_SCAN_BYTES ? nd_reply_max() / 2 : ND_SCAN_BYTES;
    scan_acc a = {.arena = &arena,
                  .limit = limit > 0 && limit < ND_SCAN_ROWS ? (size_t)limit : ND_SCAN_ROWS,
                  .budget = budget};
    /* Client keys start at "\x01": below live the system records. */
    mv_scan_opts so = {.start = klen ? key : "\x01",
                       .start_len = klen ? klen : 1,
                       .end = elen ? end : NULL,
                       .end_len = elen,
                       .ts = ts,
                       .newest = vis};
    if (vis)
        *vis = 0;
    uint64_t count = 0;
    int rc = mv_scan(g->mv, &so, scan_row, &a, &count, &err);
    nd_enc e;
    if (rc != MR_OK && rc != SCAN_PAGE_FULL) {
        e = nd_enc_error(nd_code_of_mr(rc),
                         rc == MR_ENOMEM && !*mr_err_msg(&err) ? "out of memory" : mr_err_msg(&err),
                         false, NULL, 0);
    } else {
        Meridian__ReadReply r = MERIDIAN__READ_REPLY__INIT;
        r.has_read_ts = true;
        r.read_ts = ts;
        r.n_rows = a.n;
        r.rows = a.rows;
        r.has_more = true;
        r.more = a.more;
        if (a.more) {
            r.has_resume = true;
            r.resume = a.resume;
        }
        e = nd_enc_body(MERIDIAN__REPLY__BODY_READ, &r.base);
    }
    pr_arena_free(&arena);
    return e;
}

/* A read at ts may be served once the replica applied every slot up to
 * `need` (ts itself, or at a leader that promised to stamp later writes above
 * ts: the largest stamp it had assigned) and no prepared transaction may
 * still commit at or below ts. */
static bool snap_ready(const nd_group *g, int64_t ts, int64_t need)
{
    return need <= paxos_safe(g) && ts <= tm_safe(g);
}

/* Answers whose newest timestamp has not certainly passed (tx_read_visible)
 * wait on a timer, at most about 2 epsilon. */
static void arm_read_timer(nd_node *n, nd_group *g)
{
    int64_t wait = INT64_MAX;
    for (nd_snapwait *w = g->read.snapwaits; w; w = w->next) {
        int64_t d = w->has_result ? tt_wait_ns(n->clock, w->vis)
                    : w->ahead    ? w->ts - tt_now(n->clock).latest
                                  : 0;
        if (d > 0 && d < wait)
            wait = d;
    }
    if (wait == INT64_MAX || wait > ND_SNAPWAIT_MAX)
        return; /* nothing waits on time alone; apply and the tick serve the rest */
    if (!g->read.timer) {
        g->read.timer = calloc(1, sizeof *g->read.timer);
        if (!g->read.timer)
            return;
        uv_timer_init(n->loop, &g->read.timer->h);
        g->read.timer->n = n;
        g->read.timer->gid = g->id;
    }
    uv_timer_start(&g->read.timer->h, on_read_timer,
                   (uint64_t)((wait + MR_NS_PER_MS - 1) / MR_NS_PER_MS), 0);
}

void nd_serve_snapwaits(nd_node *n, nd_group *g, bool expire)
{
    if (n->fatal)
        return; /* a slot failed to apply (g->sm.slot is past it): serve nothing more */
    int64_t now = mr_monotonic_ns();
    for (nd_snapwait **p = &g->read.snapwaits; *p;) {
        nd_snapwait *w = *p;
        tt_interval tnow = tt_now(n->clock);
        if (w->ahead && w->ts <= tnow.latest) {
            w->ahead = false;
            w->need = read_need(n, g, tnow, w->ts, false);
        }
        if (!w->ahead && !w->has_result && snap_ready(g, w->ts, w->need)) {
            w->result = nd_read_at(g, w->key, w->klen, w->limit > 0, w->end, w->elen, w->limit,
                                   w->ts, &w->vis);
            w->has_result = true;
        }
        if (w->has_result && tx_read_visible(tnow, w->vis)) {
            nd_send_reply(n, w->reply_to, w->result);
            w->has_result = false;
        } else if (!w->has_result && expire && now > w->deadline) {
            char msg[160];
            snprintf(msg, sizeof msg, "replica's safe time %lld is behind the read at %lld",
                     (long long)nd_safe_time(g), (long long)w->ts);
            nd_send_reply(n, w->reply_to,
                          nd_enc_error(MERIDIAN__ERROR_CODE__BEHIND, msg, true, NULL, 0));
        } else {
            p = &w->next;
            continue;
        }
        *p = w->next;
        nd_snapwait_free(w);
    }
}

static void on_read_timer(uv_timer_t *h)
{
    nd_read_timer *rt = (nd_read_timer *)h;
    nd_group *g = nd_find_group(rt->n, rt->gid);
    if (!g)
        return;
    nd_serve_snapwaits(rt->n, g, false);
    arm_read_timer(rt->n, g);
}

void nd_propose_safe(nd_node *n, nd_group *g)
{
    mr_err err;
    (void)nd_propose_raw(n, g, 0, ND_OP_SAFE, NULL, 0, &err); /* retried when still idle */
}

/* A follower with a strong read waiting asks the leader for a fresh SAFE
 * record (at most every ND_SAFE_ASK), instead of waiting for the idle one. */
#define ND_SAFE_ASK (2 * MR_NS_PER_MS)

void nd_ask_for_safe_time(nd_node *n, nd_group *g, bool answered)
{
    int64_t now = mr_monotonic_ns();
    if (!answered && now - g->read.safe_asked < ND_SAFE_ASK)
        return;
    px_status st;
    px_node_status(g->px, &st);
    if (!st.leader || st.leader > PX_MAX_NODE_ID || st.leader == n->self ||
        !n->peers[st.leader].addr[0])
        return;
    g->read.safe_asked = now;
    Meridian__SafeRequest r;
    meridian__safe_request__init(&r);
    r.group = g->id;
    r.node = n->self;
    uint8_t *buf;
    size_t len;
    mr_err err;
    if (nd_peer_encode(&r.base, &buf, &len, &err) != MR_OK)
        return; /* out of memory: asked again with the next read */
    net_transport_send(n->tr, n->peers[st.leader].addr, ND_MSG_SAFE_REQ, buf, (uint32_t)len, &err);
    free(buf);
}

/* A follower's request (SafeRequest: the group, its node id). The leader
 * answers with a promise instead of a write (MinNextTS, Spanner §4.2.1): every
 * slot it assigns from now on is stamped above TT.now().latest, so a follower
 * that has applied through the last slot assigned so far may serve reads up to
 * that timestamp (ND_MSG_SAFE_GRANT: SafeGrant, the group, ts and slot). */
void nd_txn_on_safe_request(nd_node *n, const net_message *m)
{
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__SafeRequest *r = (const Meridian__SafeRequest *)nd_peer_receive(n, m, &a);
    nd_group *g = r ? nd_find_group(n, r->group) : NULL;
    px_node_id to = r ? r->node : 0;
    pr_arena_free(&a);
    if (!g || !nd_leads_with_log(n, g))
        return;
    tt_interval now = tt_now(n->clock);
    px_status st;
    px_node_status(g->px, &st);
    mr_err err;
    if (to >= 1 && to <= PX_MAX_NODE_ID && n->peers[to].addr[0] &&
        px_node_promise(g->px, now, now.latest, &err) == MR_OK) {
        Meridian__SafeGrant gr;
        meridian__safe_grant__init(&gr);
        gr.group = g->id;
        gr.ts = now.latest;
        /* The follower must have applied every slot that may hold data below
         * the promise: up to the last one with transactional records when
         * none is in flight (SAFE and register slots do not count), else
         * everything assigned. */
        uint64_t slot = st.next_slot ? st.next_slot - 1 : 0;
        if (g->lead.inflight == 0 && g->read.last_data_slot < slot)
            slot = g->read.last_data_slot;
        gr.slot = slot;
        uint8_t *buf;
        size_t len;
        if (nd_peer_encode(&gr.base, &buf, &len, &err) == MR_OK) {
            net_transport_send(n->tr, n->peers[to].addr, ND_MSG_SAFE_GRANT, buf, (uint32_t)len,
                               &err);
            free(buf);
        }
        return;
    }
    /* One SAFE record answers every follower that asked in the meantime. */
    if (mr_monotonic_ns() - g->lead.last_propose > ND_SAFE_ASK / 2)
        nd_propose_safe(n, g);
}

void nd_txn_on_safe_grant(nd_node *n, const net_message *m)
{
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__SafeGrant *gr = (const Meridian__SafeGrant *)nd_peer_receive(n, m, &a);
    if (!gr) {
        pr_arena_free(&a);
        return;
    }
    nd_group *g = nd_find_group(n, gr->group);
    int64_t ts = gr->ts;
    uint64_t slot = gr->slot;
    pr_arena_free(&a);
    if (!g || ts <= g->read.grant_ts)
        return;
    g->read.grant_ts = ts;
    g->read.grant_slot = slot;
    nd_serve_snapwaits(n, g, false);
    /* Reads that came after the question need a later promise: ask again at
     * once (one question in flight at a time, so no flood). */
    for (nd_snapwait *w = g->read.snapwaits; w; w = w->next)
        if (w->ts > ts && !w->ahead) {
            nd_ask_for_safe_time(n, g, true);
            break;
        }
}

/* What a snapshot read at ts must wait for besides time (see snap_ready): a leader
 * promises to stamp every later write above ts (MinNextTS), so it needs only what it already
 * assigned (st.last_ts: the log, not its promises) applied, not a new write. It promises
 * nothing beyond TT.now().latest (a read further ahead waits until then): a promise pushes
 * every later commit's timestamp, and so its commit wait, up to it. A follower asks the leader
 * not to make it wait. */
static int64_t read_need(nd_node *n, nd_group *g, tt_interval now, int64_t ts, bool bounded)
{
    px_status st;
    px_node_status(g->px, &st);
    mr_err perr;
    if (ts > paxos_safe(g) && ts <= now.latest && nd_leads_with_log(n, g) &&
        px_node_promise(g->px, now, ts, &perr) == MR_OK)
        return st.last_ts < ts ? st.last_ts : ts;
    if (ts > paxos_safe(g) && !bounded)
        nd_ask_for_safe_time(n, g, false);
    return ts;
}

void nd_on_snapread(nd_node *n, const net_message *m, const Meridian__SnapReadRequest *o)
{
    nd_snap_req rq;
    mr_err verr;
    if (nd_valid_snapread(o, &rq, &verr) != MR_OK)
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID, mr_err_msg(&verr));
    long limit = (long)rq.limit;
    bool scan = limit > 0;
    nd_group *g = nd_find_group(n, rq.group);
    if (!g)
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__NO_GROUP,
                              "this node holds no replica of the group");
    /* The cluster's own records (system keys) are readable by its own tools, at the meta
     * group; clients are refused them (nd_valid_snapread). */
    if (rq.system && (!m->peer_is_node || g->id != ND_META_GROUP))
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__REFUSED,
                              "a system read is for the cluster's own tools (a node "
                              "certificate), at the meta group (1)");
    if (!nd_span_in_range(g, rq.key, rq.klen, scan, rq.end, rq.elen))
        return nd_reply_wrong_range(n, m->reply_to, g, rq.key, rq.klen);
    tt_interval now = tt_now(n->clock);
    int64_t ts;
    if (rq.mode == ND_READ_AT) {
        if (nd_valid_read_ts(rq.ts, now.latest, &verr) != MR_OK)
            return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID, mr_err_msg(&verr));
        ts = rq.ts;
    } else if (rq.mode == ND_READ_EXACT) {
        ts = now.latest - rq.staleness;
    } else if (rq.mode == ND_READ_BOUNDED) {
        /* Bounded staleness: this replica's safe time, no waiting, if fresh enough. */
        int64_t safe = nd_safe_time(g);
        if (safe < now.latest - rq.staleness) {
            char msg[160];
            snprintf(msg, sizeof msg, "replica's safe time is %.3f s old",
                     (double)(now.latest - safe) / 1e9);
            return nd_send_reply(n, m->reply_to,
                                 nd_enc_error(MERIDIAN__ERROR_CODE__BEHIND, msg, true, NULL, 0));
        }
        ts = safe;
    } else {
        /* Strong: s_read = TT.now().latest, so the read sees everything
         * committed before it began, and its timestamp can serve the
         * transaction's reads at other groups too. */
        ts = now.latest;
    }
    /* A read ahead of this node's clock (a timestamp from another node's, or a client's)
     * waits until TT.now().latest reaches it; only then may a leader promise it. */
    bool ahead = ts > now.latest;
    int64_t need = ahead ? ts : read_need(n, g, now, ts, rq.mode == ND_READ_BOUNDED);
    /* MERIDIAN_TEST_BREAK=no-safe-wait (negative control): serve at once. */
    nd_enc result = {0};
    bool has_result = false;
    int64_t vis = 0;
    if ((!ahead && snap_ready(g, ts, need)) || nd_test_break(n, ND_BREAK_NO_SAFE_WAIT)) {
        result = nd_read_at(g, rq.key, rq.klen, scan, rq.end, rq.elen, limit, ts, &vis);
        has_result = true;
        if (tx_read_visible(now, vis) || nd_test_break(n, ND_BREAK_NO_SAFE_WAIT))
            return nd_send_reply(n, m->reply_to, result);
    }
    nd_snapwait *w = calloc(1, sizeof *w);
    if (!w || !(w->key = malloc(rq.klen + 1)) || !(w->end = malloc(rq.elen + 1))) {
        if (w)
            nd_snapwait_free(w);
        if (has_result)
            nd_enc_free(result);
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__NO_MEMORY, "out of memory");
    }
    if (rq.klen)
        memcpy(w->key, rq.key, rq.klen);
    if (rq.elen)
        memcpy(w->end, rq.end, rq.elen);
    w->klen = rq.klen;
    w->elen = rq.elen;
    w->reply_to = m->reply_to;
    w->ts = ts;
    w->need = need;
    w->ahead = ahead;
    w->result = result;
    w->has_result = has_result;
    w->vis = vis;
    w->deadline = mr_monotonic_ns() + (ahead ? ts - now.latest : 0) + ND_SNAPWAIT_MAX;
    w->limit = limit;
    w->next = g->read.snapwaits;
    g->read.snapwaits = w;
    arm_read_timer(n, g);
}

void nd_txn_applied(nd_node *n, nd_group *g)
{
    nd_serve_snapwaits(n, g, false);
}

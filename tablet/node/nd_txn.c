/* Transactions on a node's tablets (Spanner §4.1-4.2, one group at a time):
 *
 * - Read-write transactions run at the group's leader: reads take shared
 *   locks and see the latest committed version; writes are buffered by the
 *   client and sent with COMMIT, which takes exclusive locks (wound-wait, see
 *   tablet/lock/tl.h), proposes a commit record through Paxos, and — once it
 *   is chosen at timestamp s (the slot's timestamp, assigned by the leader
 *   inside its lease, max(TT.now().latest, last + 1)) and applied — waits
 *   until TT.after(s) (commit wait, mostly overlapped with replication),
 *   then releases the locks and answers s.
 * - Reads without locks at any replica: a snapshot read at t is served once
 *   the replica's safe time (the largest applied timestamp: every later write
 *   gets a larger one) reaches t. Strong reads use t = TT.now().latest;
 *   exact staleness D reads at TT.now().latest - D; bounded staleness D reads
 *   at the replica's safe time without waiting, if that is no older than D.
 *   An idle leader proposes an empty SAFE record every ND_SAFE_IDLE so that
 *   followers' safe time keeps up.
 *
 * Requests are JSON (ND_MSG_TXN, ND_MSG_SNAPREAD); keys and values are
 * strings for now. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "tablet/node/nd_int.h"

#define ND_SAFE_IDLE    (250 * MR_NS_PER_MS)
#define ND_TXN_IDLE     (10 * MR_NS_PER_S) /* a client that vanished */
#define ND_SNAPWAIT_MAX (2 * MR_NS_PER_S)

typedef enum { TXN_IDLE = 0, TXN_READ_WAIT, TXN_LOCKING, TXN_COMMITTING, TXN_WAITING } txn_state;

struct nd_txn {
    uint64_t id;
    int64_t prio;
    int64_t last_active;
    txn_state state;
    bool wounded;
    net_reply_to reply_to; /* the request being served, if any */
    bool has_reply;
    uint8_t *key; /* a parked read (NUL-terminated) */
    size_t klen;
    uint8_t *end; /* a parked scan's end (NUL-terminated), or NULL */
    long limit;
    uint8_t *body; /* the commit record, while its locks are taken */
    size_t blen;
    uint32_t locks_pending;
    uint32_t nreads;   /* reads served under locks at this leader */
    int64_t wait_from; /* monotonic ns when commit wait began (after apply) */
    int64_t commit_ts;
    uv_timer_t *timer; /* commit wait */
    nd_group *g;
    nd_node *n;
    nd_txn *next;
};

struct nd_snapwait {
    net_reply_to reply_to;
    int64_t ts;
    int64_t deadline;
    char *key, *end;
    long limit;
    nd_snapwait *next;
};

/* ---- opening the tablet of a group ---- */

int nd_txn_group_open(nd_node *n, nd_group *g, mr_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/g%llu.mv", n->data_dir, (unsigned long long)g->id);
    int rc = mv_open(path, NULL, &g->mv, err);
    if (rc)
        return mr_err_wrap(err, "open %s", path);
    g->locks = tl_new();
    if (!g->locks)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    return MR_OK;
}

static void txn_free(nd_txn *t)
{
    free(t->key);
    free(t->end);
    free(t->body);
    free(t);
}

static void on_timer_closed(uv_handle_t *h)
{
    nd_txn *t = h->data;
    free(h);
    if (t)
        txn_free(t);
}

/* Unlinks and frees t (after its timer, if any, has closed). */
static void txn_drop(nd_group *g, nd_txn *t)
{
    for (nd_txn **p = &g->txns; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    if (t->timer) {
        t->timer->data = t;
        uv_close((uv_handle_t *)t->timer, on_timer_closed);
    } else {
        txn_free(t);
    }
}

static void snapwait_free(nd_snapwait *w)
{
    free(w->key);
    free(w->end);
    free(w);
}

void nd_txn_group_close(nd_node *n, nd_group *g)
{
    while (g->txns) {
        nd_txn *t = g->txns;
        g->txns = t->next;
        if (t->timer) {
            t->timer->data = NULL;
            uv_close((uv_handle_t *)t->timer, on_timer_closed);
        }
        txn_free(t);
    }
    while (g->snapwaits) {
        nd_snapwait *w = g->snapwaits;
        g->snapwaits = w->next;
        snapwait_free(w);
    }
    tl_free(g->locks);
    g->locks = NULL;
    mv_close(g->mv);
    g->mv = NULL;
}

/* ---- helpers ---- */

static nd_txn *txn_find(nd_group *g, uint64_t id)
{
    for (nd_txn *t = g->txns; t; t = t->next)
        if (t->id == id)
            return t;
    return NULL;
}

static void txn_reply(nd_node *n, nd_txn *t, json_t *o)
{
    if (t->has_reply) {
        nd_reply_json(n, t->reply_to, o);
        t->has_reply = false;
    } else {
        json_decref(o);
    }
}

/* Answers t's request with an "invalid" error (a client mistake). */
static void txn_invalid(nd_node *n, nd_txn *t, const char *msg)
{
    txn_reply(n, t, json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "invalid", "message", msg));
}

static json_t *aborted_json(const char *why)
{
    return json_pack("{s:b, s:s, s:s, s:b}", "ok", 0, "error", "aborted", "message", why,
                     "retryable", 1);
}

/* Aborts t here: answers its request, releases its locks, forgets it. */
static void txn_abort(nd_node *n, nd_group *g, nd_txn *t, const char *why, tl_out *out);

static void handle_out(nd_node *n, nd_group *g, tl_out *out);

/* The version of key visible at ts: {ok, found, value, version_ts} and, for
 * snapshot reads, the read timestamp; or the store's error (e.g. a read below
 * the version horizon). */
static json_t *read_key(nd_group *g, const void *key, size_t klen, int64_t ts, bool with_ts)
{
    mv_version v;
    mr_err err;
    json_t *o;
    int rc = mv_get(g->mv, key, klen, ts, &v, &err);
    if (rc == MR_ENOTFOUND || (rc == MR_OK && v.deleted)) {
        if (rc == MR_OK)
            free((void *)v.value);
        o = json_pack("{s:b, s:b, s:n}", "ok", 1, "found", 0, "value");
    } else if (rc != MR_OK) {
        return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", mr_strerror(rc), "message",
                         mr_err_msg(&err));
    } else {
        o = json_pack("{s:b, s:b, s:s%, s:I}", "ok", 1, "found", 1, "value", (const char *)v.value,
                      v.len, "version_ts", (json_int_t)v.ts);
        free((void *)v.value);
    }
    if (with_ts)
        json_object_set_new(o, "read_ts", json_integer(ts));
    return o;
}

/* Under a transaction's locks: the latest committed version. */
static json_t *read_latest(nd_group *g, const uint8_t *key, size_t klen)
{
    return read_key(g, key, klen, MV_TS_MAX, false);
}

static json_t *read_at(nd_group *g, const char *key, const char *end, long limit, int64_t ts);

/* A read or scan of a transaction, under its locks: the latest committed versions. */
static json_t *txn_read(nd_group *g, nd_txn *t)
{
    if (t->end)
        return read_at(g, (const char *)t->key, (const char *)t->end, t->limit, MV_TS_MAX);
    return read_latest(g, t->key, t->klen);
}

/* Proposes t's commit record through Paxos (its locks are all held). From
 * here on t can no longer be wounded: its exclusive locks must stay until the
 * record is applied and commit wait is over (tl_prepare). */
static void txn_propose(nd_node *n, nd_group *g, nd_txn *t)
{
    mr_err perr;
    if (tl_prepare(g->locks, t->id, &perr) != MR_OK)
        return txn_abort(n, g, t, mr_err_msg(&perr), NULL);
    mr_err err;
    if (nd_propose_raw(n, g, 0, ND_OP_TXN, t->body, t->blen, &err) != MR_OK) {
        char why[300];
        snprintf(why, sizeof why, "commit not proposed: %s", mr_err_msg(&err));
        return txn_abort(n, g, t, why, NULL);
    }
    t->state = TXN_COMMITTING;
}

static void txn_abort(nd_node *n, nd_group *g, nd_txn *t, const char *why, tl_out *out)
{
    txn_reply(n, t, aborted_json(why));
    tl_out local = {0};
    tl_release(g->locks, t->id, out ? out : &local);
    if (!out) {
        handle_out(n, g, &local);
        tl_out_free(&local);
    }
    txn_drop(g, t);
}

/* Wounds and grants reported by the lock table. */
static void handle_out(nd_node *n, nd_group *g, tl_out *out)
{
    for (size_t i = 0; i < out->nwounded; i++) {
        nd_txn *t = txn_find(g, out->wounded[i]);
        if (t && t->state != TXN_COMMITTING && t->state != TXN_WAITING) {
            t->wounded = true;
            if (t->has_reply) {
                /* A parked request learns it now; the client retries the transaction. */
                txn_reply(n, t, aborted_json("wounded by an older transaction"));
                t->state = TXN_IDLE;
            }
        }
    }
    out->nwounded = 0;
    /* Grants may cascade (handling one can release more): take them in turn. */
    while (out->ngranted) {
        tl_grant gr = out->granted[--out->ngranted];
        nd_txn *t = txn_find(g, gr.txn);
        if (!t)
            continue;
        if (t->state == TXN_READ_WAIT) {
            t->state = TXN_IDLE;
            txn_reply(n, t, txn_read(g, t));
        } else if (t->state == TXN_LOCKING && t->locks_pending > 0 && --t->locks_pending == 0) {
            txn_propose(n, g, t);
        }
    }
}

/* ---- the write path ---- */

/* Commit record: u64 transaction id, u32 nwrites, then per write u8 op
 * (1 put, 2 delete), u32 key length, key, u32 value length, value. */
static int encode_writes(uint64_t txn, json_t *writes, uint8_t **out, size_t *len, mr_err *err)
{
    size_t cap = 12, i;
    json_t *w;
    json_array_foreach(writes, i, w)
    {
        const char *k = json_string_value(json_object_get(w, "key"));
        json_t *v = json_object_get(w, "value");
        bool del = json_is_true(json_object_get(w, "delete"));
        if (!k || !*k || (!del && !json_is_string(v)))
            return mr_errf(err, MR_EINVAL, "write %zu needs a key and a value (or delete)", i);
        cap +=
            9 + json_string_length(json_object_get(w, "key")) + (del ? 0 : json_string_length(v));
    }
    uint8_t *b = malloc(cap), *p = b;
    if (!b)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    put64(p, txn);
    put32(p + 8, (uint32_t)json_array_size(writes));
    p += 12;
    json_array_foreach(writes, i, w)
    {
        json_t *k = json_object_get(w, "key"), *v = json_object_get(w, "value");
        bool del = json_is_true(json_object_get(w, "delete"));
        size_t kl = json_string_length(k), vl = del ? 0 : json_string_length(v);
        *p++ = del ? MV_DELETE : MV_PUT;
        put32(p, (uint32_t)kl);
        memcpy(p + 4, json_string_value(k), kl);
        p += 4 + kl;
        put32(p, (uint32_t)vl);
        if (vl)
            memcpy(p + 4, json_string_value(v), vl);
        p += 4 + vl;
    }
    *out = b;
    *len = (size_t)(p - b);
    return MR_OK;
}

/* Decodes a commit body into writes borrowing from `b`; *w is malloc'd. */
static int decode_writes(const uint8_t *b, size_t len, mv_write **w, size_t *n)
{
    if (len < 4)
        return -1;
    uint32_t cnt = get32(b);
    if (cnt > len / 9 + 1)
        return -1;
    mv_write *ws = calloc(cnt ? cnt : 1, sizeof *ws);
    if (!ws)
        return -1;
    size_t off = 4;
    for (uint32_t i = 0; i < cnt; i++) {
        if (off + 5 > len)
            goto bad;
        ws[i].op = b[off] == MV_DELETE ? MV_DELETE : MV_PUT;
        uint32_t kl = get32(b + off + 1);
        off += 5;
        if (kl > len - off || off + kl + 4 > len)
            goto bad;
        ws[i].key = b + off;
        ws[i].key_len = kl;
        off += kl;
        uint32_t vl = get32(b + off);
        off += 4;
        if (vl > len - off)
            goto bad;
        ws[i].value = b + off;
        ws[i].len = vl;
        off += vl;
    }
    *w = ws;
    *n = cnt;
    return 0;
bad:
    free(ws);
    return -1;
}

static void on_commit_wait(uv_timer_t *h);
static void commit_done(nd_node *n, nd_group *g, nd_txn *t);

/* After the commit record applied at ts: wait until TT.after(ts), then release. */
static void txn_commit_wait(nd_node *n, nd_txn *t)
{
    t->wait_from = mr_monotonic_ns();
    int64_t wait = tt_wait_ns(n->clock, t->commit_ts);
    /* Negative control for the tests: MERIDIAN_TEST_BREAK=no-commit-wait
     * answers before TT.after(s), which a lying clock within the bound turns
     * into stale reads elsewhere. */
    if (wait <= 0 || nd_test_break("no-commit-wait"))
        return commit_done(n, t->g, t);
    if (!t->timer) {
        t->timer = malloc(sizeof *t->timer);
        if (!t->timer)
            return commit_done(n, t->g, t); /* cannot wait without a timer: spin-free fallback */
        uv_timer_init(n->loop, t->timer);
    }
    t->timer->data = t;
    t->state = TXN_WAITING;
    uv_timer_start(t->timer, on_commit_wait, (uint64_t)((wait + MR_NS_PER_MS - 1) / MR_NS_PER_MS),
                   0);
}

static void commit_done(nd_node *n, nd_group *g, nd_txn *t)
{
    n->stats.proposals++;
    /* commit_wait_ns: what commit wait still cost after the record applied
     * (the rest of it overlapped replication). */
    txn_reply(n, t,
              json_pack("{s:b, s:I, s:I, s:I}", "ok", 1, "ts", (json_int_t)t->commit_ts, "group",
                        (json_int_t)g->id, "commit_wait_ns",
                        (json_int_t)(t->wait_from ? mr_monotonic_ns() - t->wait_from : 0)));
    tl_out out = {0};
    tl_release(g->locks, t->id, &out);
    txn_drop(g, t);
    handle_out(n, g, &out);
    tl_out_free(&out);
}

static void on_commit_wait(uv_timer_t *h)
{
    nd_txn *t = h->data;
    if (!tt_after(t->n->clock, t->commit_ts)) {
        uv_timer_start(h, on_commit_wait, 1, 0); /* the bound grew: a little more */
        return;
    }
    commit_done(t->n, t->g, t);
}

/* Every replica applies a slot's commit records to its MVCC store; the
 * leader that proposed them then runs commit wait for each. */
void nd_txn_apply_slot(nd_node *n, nd_group *g, uint64_t slot, int64_t ts, const uint8_t **recs,
                       const uint32_t *lens, size_t nrec)
{
    mv_txn *txns = calloc(nrec ? nrec : 1, sizeof *txns);
    mv_write **ws = calloc(nrec ? nrec : 1, sizeof *ws);
    size_t nt = 0;
    for (size_t i = 0; i < nrec && txns && ws; i++) {
        size_t nw;
        if (lens[i] < 8 || decode_writes(recs[i] + 8, lens[i] - 8, &ws[nt], &nw) != 0) {
            MR_ERROR("node", "group=%llu slot=%llu: malformed commit record skipped",
                     (unsigned long long)g->id, (unsigned long long)slot);
            continue;
        }
        txns[nt] = (mv_txn){.commit_ts = ts, .w = ws[nt], .n = nw};
        nt++;
    }
    mr_err err;
    if (txns && ws && nt) {
        int rc = mv_apply_txns(g->mv, slot, txns, nt, &err);
        if (rc != MR_OK && rc != MR_EEXIST)
            MR_ERROR("node", "group=%llu slot=%llu: apply failed: %s", (unsigned long long)g->id,
                     (unsigned long long)slot, mr_err_msg(&err));
    }
    for (size_t i = 0; i < nt; i++)
        free(ws[i]);
    free(ws);
    free(txns);
    if (ts > g->safe_ts)
        g->safe_ts = ts;
    /* Our own commits: start commit wait (mostly over already). */
    for (size_t i = 0; i < nrec; i++) {
        if (lens[i] < 8)
            continue;
        nd_txn *t = txn_find(g, get64(recs[i]));
        if (t && t->state == TXN_COMMITTING) {
            t->commit_ts = ts;
            txn_commit_wait(n, t);
        }
    }
}

/* ---- reads at a timestamp (any replica) ---- */

typedef struct scan_acc {
    json_t *rows;
} scan_acc;

static int scan_row(void *arg, const mv_version *v)
{
    scan_acc *a = arg;
    json_array_append_new(a->rows, json_pack("{s:s%, s:s%, s:I}", "key", (const char *)v->key,
                                             v->key_len, "value", (const char *)v->value, v->len,
                                             "version_ts", (json_int_t)v->ts));
    return 0;
}

static json_t *read_at(nd_group *g, const char *key, const char *end, long limit, int64_t ts)
{
    mr_err err;
    if (end || limit > 0) {
        scan_acc a = {json_array()};
        mv_scan_opts so = {.start = key,
                           .start_len = strlen(key),
                           .end = end,
                           .end_len = end ? strlen(end) : 0,
                           .ts = ts,
                           .limit = limit > 0 ? (uint64_t)limit : 0};
        uint64_t count = 0;
        int rc = mv_scan(g->mv, &so, scan_row, &a, &count, &err);
        if (rc != MR_OK) {
            json_decref(a.rows);
            return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", mr_strerror(rc), "message",
                             mr_err_msg(&err));
        }
        return json_pack("{s:b, s:I, s:o}", "ok", 1, "read_ts", (json_int_t)ts, "rows", a.rows);
    }
    return read_key(g, key, strlen(key), ts, true);
}

static void serve_snapwaits(nd_node *n, nd_group *g, bool expire)
{
    int64_t now = mr_monotonic_ns();
    for (nd_snapwait **p = &g->snapwaits; *p;) {
        nd_snapwait *w = *p;
        if (w->ts <= g->safe_ts) {
            nd_reply_json(n, w->reply_to, read_at(g, w->key, w->end, w->limit, w->ts));
        } else if (expire && now > w->deadline) {
            char msg[160];
            snprintf(msg, sizeof msg, "replica's safe time %lld is behind the read at %lld",
                     (long long)g->safe_ts, (long long)w->ts);
            nd_reply_json(n, w->reply_to,
                          json_pack("{s:b, s:s, s:s, s:b}", "ok", 0, "error", "behind", "message",
                                    msg, "retryable", 1));
        } else {
            p = &w->next;
            continue;
        }
        *p = w->next;
        snapwait_free(w);
    }
}

/* This node leads g with a valid lease and has applied everything its
 * predecessors chose. */
static bool leads_with_log(nd_node *n, nd_group *g)
{
    px_status st;
    px_node_status(g->px, &st);
    return st.state == PX_LEADER && g->last_state == PX_LEADER &&
           px_node_lease_valid(g->px, tt_now(n->clock)) && g->sm.slot + 1 >= g->lead_from;
}

static void propose_safe(nd_node *n, nd_group *g)
{
    mr_err err;
    (void)nd_propose_raw(n, g, 0, ND_OP_SAFE, NULL, 0, &err); /* retried when still idle */
}

/* A follower with a strong read waiting asks the leader for a fresh SAFE
 * record (at most every ND_SAFE_ASK), instead of waiting for the idle one. */
#define ND_SAFE_ASK (2 * MR_NS_PER_MS)
static void ask_for_safe_time(nd_node *n, nd_group *g)
{
    int64_t now = mr_monotonic_ns();
    if (now - g->safe_asked < ND_SAFE_ASK)
        return;
    px_status st;
    px_node_status(g->px, &st);
    if (!st.leader || st.leader > PX_MAX_NODE_ID || st.leader == n->self ||
        !n->peers[st.leader].addr[0])
        return;
    g->safe_asked = now;
    uint8_t msg[8];
    put64(msg, g->id);
    mr_err err;
    net_transport_send(n->tr, n->peers[st.leader].addr, ND_MSG_SAFE_REQ, msg, sizeof msg, &err);
}

void nd_txn_on_safe_request(nd_node *n, const net_message *m)
{
    if (m->len != 8)
        return;
    nd_group *g = nd_find_group(n, get64(m->payload));
    if (!g || !leads_with_log(n, g))
        return;
    /* One SAFE record answers every follower that asked in the meantime. */
    if (mr_monotonic_ns() - g->last_propose > ND_SAFE_ASK / 2)
        propose_safe(n, g);
}

static void on_snapread(nd_node *n, const net_message *m, json_t *o)
{
    json_int_t gid = json_integer_value(json_object_get(o, "group"));
    const char *key = json_string_value(json_object_get(o, "key"));
    const char *end = json_string_value(json_object_get(o, "end"));
    long limit = (long)json_integer_value(json_object_get(o, "limit"));
    nd_group *g = nd_find_group(n, (uint64_t)gid);
    if (!g || !key)
        return nd_reply_error(n, m->reply_to, !g ? "no_group" : "invalid",
                              !g ? "this node holds no replica of the group" : "want a key");
    tt_interval now = tt_now(n->clock);
    int64_t ts;
    json_t *at = json_object_get(o, "ts"), *bounded = json_object_get(o, "max_staleness_ns"),
           *exact = json_object_get(o, "exact_staleness_ns");
    if (json_is_integer(at)) {
        ts = (int64_t)json_integer_value(at);
    } else if (json_is_integer(exact)) {
        ts = now.latest - (int64_t)json_integer_value(exact);
    } else if (json_is_integer(bounded)) {
        /* Bounded staleness: this replica's safe time, no waiting, if fresh enough. */
        if (g->safe_ts < now.latest - (int64_t)json_integer_value(bounded)) {
            char msg[160];
            snprintf(msg, sizeof msg, "replica's safe time is %.3f s old",
                     (double)(now.latest - g->safe_ts) / 1e9);
            return nd_reply_json(n, m->reply_to,
                                 json_pack("{s:b, s:s, s:s, s:b}", "ok", 0, "error", "behind",
                                           "message", msg, "retryable", 1));
        }
        ts = g->safe_ts;
    } else if (leads_with_log(n, g)) {
        /* Strong read at a leader that has applied its predecessors' log:
         * LastTS (Spanner §4.2.2). Every acknowledged write is applied here and
         * has a timestamp <= the last applied one; later writes get larger. */
        ts = g->safe_ts;
    } else {
        ts = now.latest;         /* strong, at a follower: wait for safe time ... */
        ask_for_safe_time(n, g); /* ... and ask the leader not to let it wait long */
    }
    /* MERIDIAN_TEST_BREAK=no-safe-wait (negative control): serve at once. */
    if (ts <= g->safe_ts || nd_test_break("no-safe-wait"))
        return nd_reply_json(n, m->reply_to, read_at(g, key, end, limit, ts));
    nd_snapwait *w = calloc(1, sizeof *w);
    if (!w)
        return nd_reply_error(n, m->reply_to, "nomem", "out of memory");
    w->reply_to = m->reply_to;
    w->ts = ts;
    w->deadline = mr_monotonic_ns() + ND_SNAPWAIT_MAX;
    w->key = strdup(key);
    w->end = end ? strdup(end) : NULL;
    w->limit = limit;
    w->next = g->snapwaits;
    g->snapwaits = w;
}

/* ---- read-write transactions (leader) ---- */

static void on_txn(nd_node *n, const net_message *m, json_t *o)
{
    json_int_t gid = json_integer_value(json_object_get(o, "group"));
    json_t *jid = json_object_get(o, "txn"), *jprio = json_object_get(o, "prio");
    const char *op = json_string_value(json_object_get(o, "op"));
    nd_group *g = nd_find_group(n, (uint64_t)gid);
    if (!g)
        return nd_reply_error(n, m->reply_to, "no_group",
                              "this node holds no replica of the group");
    if (!json_is_integer(jid) || !json_is_integer(jprio) || !op)
        return nd_reply_error(n, m->reply_to, "invalid", "want {group, txn, prio, op, ...}");
    px_status st;
    px_node_status(g->px, &st);
    if (st.state != PX_LEADER || !px_node_lease_valid(g->px, tt_now(n->clock))) {
        const char *leader =
            st.leader && st.leader <= PX_MAX_NODE_ID ? n->peers[st.leader].addr : "";
        return nd_reply_json(n, m->reply_to,
                             json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "error", "not_leader",
                                       "message", "not the leader of this group", "leader",
                                       leader));
    }
    /* A new leader first applies what its predecessors chose: until then its
     * MVCC store may miss committed writes that no lock here protects. */
    if (g->last_state != PX_LEADER || g->sm.slot + 1 < g->lead_from)
        return nd_reply_json(n, m->reply_to,
                             json_pack("{s:b, s:s, s:s, s:b}", "ok", 0, "error", "aborted",
                                       "message", "new leader still applying its predecessors' log",
                                       "retryable", 1));
    uint64_t id = (uint64_t)json_integer_value(jid);
    int64_t prio = (int64_t)json_integer_value(jprio);
    nd_txn *t = txn_find(g, id);
    /* Reads take locks at the leader that served them. A commit for a
     * transaction that read elsewhere (a previous leader, or before this
     * leader's term) has lost its read locks: abort it. */
    json_int_t nreads = json_integer_value(json_object_get(o, "nreads"));
    if (strcmp(op, "commit") == 0 && nreads > 0 && (!t || t->nreads != (uint32_t)nreads))
        return nd_reply_json(n, m->reply_to,
                             aborted_json("the reads' locks were lost (leadership moved)"));
    if (t && t->has_reply)
        return nd_reply_error(n, m->reply_to, "busy", "the transaction has a request in flight");
    if (strcmp(op, "abort") == 0) {
        if (t) {
            t->reply_to = m->reply_to;
            t->has_reply = true;
            if (t->state == TXN_COMMITTING || t->state == TXN_WAITING)
                return nd_reply_error(n, m->reply_to, "committing", "too late to abort");
            txn_reply(n, t, json_pack("{s:b}", "ok", 1));
            txn_abort(n, g, t, "aborted by the client", NULL);
        } else {
            tl_out out = {0};
            tl_release(g->locks, id, &out);
            handle_out(n, g, &out);
            tl_out_free(&out);
            nd_reply_json(n, m->reply_to, json_pack("{s:b}", "ok", 1));
        }
        return;
    }
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t)
            return nd_reply_error(n, m->reply_to, "nomem", "out of memory");
        t->id = id;
        t->prio = prio;
        t->g = g;
        t->n = n;
        t->next = g->txns;
        g->txns = t;
    }
    t->last_active = mr_monotonic_ns();
    t->reply_to = m->reply_to;
    t->has_reply = true;
    if (t->wounded || tl_state(g->locks, id) == TL_WOUNDED_STATE)
        return txn_abort(n, g, t, "wounded by an older transaction", NULL);
    if (t->state != TXN_IDLE)
        return txn_invalid(n, t, "the transaction is committing");
    tl_out out = {0};
    mr_err err;
    if (strcmp(op, "read") == 0) {
        json_t *k = json_object_get(o, "key");
        if (!json_is_string(k) || json_string_length(k) == 0) {
            txn_invalid(n, t, "read needs a key");
            return;
        }
        free(t->key);
        free(t->end);
        t->end = NULL;
        t->klen = json_string_length(k);
        t->key = malloc(t->klen + 1);
        memcpy(t->key, json_string_value(k), t->klen + 1);
        /* With "end": a scan of [key, end) under a shared range lock, so no
         * other transaction can insert into the range (no phantoms). */
        json_t *e = json_object_get(o, "end");
        if (json_is_string(e)) {
            t->end = (uint8_t *)strdup(json_string_value(e));
            t->limit = (long)json_integer_value(json_object_get(o, "limit"));
            if (t->limit <= 0)
                t->limit = 1000;
        }
        tl_lock lk = {.mode = TL_SHARED,
                      .range = t->end != NULL,
                      .start = t->key,
                      .start_len = t->klen,
                      .end = t->end,
                      .end_len = t->end ? strlen((char *)t->end) : 0};
        uint64_t req;
        /* MERIDIAN_TEST_BREAK=no-read-locks (negative control): read unlocked. */
        int r = nd_test_break("no-read-locks")
                    ? TL_GRANTED
                    : tl_acquire(g->locks, id, prio, &lk, &req, &out, &err);
        t->nreads++;
        if (r == TL_GRANTED) {
            txn_reply(n, t, txn_read(g, t));
        } else if (r == TL_WAIT) {
            t->state = TXN_READ_WAIT;
        } else if (r == TL_WOUNDED) {
            txn_abort(n, g, t, "wounded by an older transaction", &out);
        } else {
            txn_invalid(n, t, mr_err_msg(&err));
        }
    } else if (strcmp(op, "commit") == 0) {
        json_t *writes = json_object_get(o, "writes");
        if (!json_is_array(writes) ||
            encode_writes(id, writes, &t->body, &t->blen, &err) != MR_OK) {
            txn_invalid(n, t,
                        json_is_array(writes) ? mr_err_msg(&err) : "commit needs writes: [...]");
        } else {
            t->state = TXN_LOCKING;
            t->locks_pending = 0;
            size_t i;
            json_t *w;
            bool dead = false;
            json_array_foreach(writes, i, w)
            {
                json_t *k = json_object_get(w, "key");
                tl_lock lk = {.mode = TL_EXCLUSIVE,
                              .start = (const uint8_t *)json_string_value(k),
                              .start_len = json_string_length(k)};
                uint64_t req;
                int r = tl_acquire(g->locks, id, prio, &lk, &req, &out, &err);
                if (r == TL_WAIT) {
                    t->locks_pending++;
                } else if (r != TL_GRANTED) {
                    dead = true;
                    break;
                }
            }
            if (dead)
                txn_abort(n, g, t, "wounded by an older transaction", &out);
            else if (t->locks_pending == 0)
                txn_propose(n, g, t);
        }
    } else {
        txn_invalid(n, t, "op must be read, commit or abort");
    }
    handle_out(n, g, &out);
    tl_out_free(&out);
}

void nd_txn_on_message(nd_node *n, const net_message *m)
{
    json_error_t je;
    json_t *o = json_loadb((const char *)m->payload, m->len, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return nd_reply_error(n, m->reply_to, "invalid", "request is not a JSON object");
    }
    if (m->type == ND_MSG_SNAPREAD)
        on_snapread(n, m, o);
    else
        on_txn(n, m, o);
    json_decref(o);
}

/* ---- time passing ---- */

/* The meta group records the cluster: node/<id> -> {addr, zone, region} and
 * group/<id> -> {kind, replicas}, written once by its first leader from the
 * bootstrap description, as an ordinary transaction through its log. */
static void record_cluster(nd_node *n, nd_group *g)
{
    g->meta_checked = true;
    mv_version v;
    mr_err err;
    int rc = mv_get(g->mv, "node/1", 6, MV_TS_MAX, &v, &err);
    if (rc == MR_OK) {
        free((void *)v.value);
        return; /* already recorded */
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/cluster.json", n->data_dir);
    json_error_t je;
    json_t *desc = json_load_file(path, 0, &je);
    if (!desc)
        return;
    json_t *writes = json_array();
    size_t i;
    json_t *e;
    static const char *const kinds[][2] = {{"nodes", "node"}, {"groups", "group"}};
    for (int k = 0; k < 2; k++)
        json_array_foreach(json_object_get(desc, kinds[k][0]), i, e)
        {
            char key[32];
            snprintf(key, sizeof key, "%s/%lld", kinds[k][1],
                     (long long)json_integer_value(json_object_get(e, "id")));
            char *val = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
            json_array_append_new(writes, json_pack("{s:s, s:s}", "key", key, "value", val));
            free(val);
        }
    json_decref(desc);
    nd_txn *t = calloc(1, sizeof *t);
    /* reserved id: no client id has bit 62 set and this group */
    if (!t || encode_writes((1ull << 62) | g->id, writes, &t->body, &t->blen, &err) != MR_OK) {
        free(t);
        json_decref(writes);
        return;
    }
    t->id = (1ull << 62) | g->id;
    t->prio = INT64_MIN + 1; /* older than any client transaction */
    t->g = g;
    t->n = n;
    t->next = g->txns;
    g->txns = t;
    t->state = TXN_LOCKING;
    tl_out out = {0};
    json_array_foreach(writes, i, e)
    {
        json_t *k = json_object_get(e, "key");
        tl_lock lk = {.mode = TL_EXCLUSIVE,
                      .start = (const uint8_t *)json_string_value(k),
                      .start_len = json_string_length(k)};
        uint64_t req;
        if (tl_acquire(g->locks, t->id, t->prio, &lk, &req, &out, &err) == TL_WAIT)
            t->locks_pending++;
    }
    json_decref(writes);
    if (t->locks_pending == 0)
        txn_propose(n, g, t);
    handle_out(n, g, &out);
    tl_out_free(&out);
    MR_INFO("node", "meta group: recording the cluster's nodes and groups");
}

/* Old versions go once no read may need them: every replica collects, a
 * bounded step every ND_GC_EVERY, below TT.now().earliest - retention (reads
 * below that horizon fail with MR_ESTALE, never a wrong answer). */
#define ND_GC_EVERY (5 * MR_NS_PER_S)
static void gc_step(nd_node *n, nd_group *g, int64_t now)
{
    if (now - g->last_gc < ND_GC_EVERY)
        return;
    g->last_gc = now;
    /* Never above what this replica applied: a lagging replica must still
     * apply the entries it has not seen, whose timestamps are above it. */
    int64_t horizon = tt_now(n->clock).earliest - n->retention_ns;
    if (horizon > g->safe_ts)
        horizon = g->safe_ts;
    if (horizon <= mv_horizon(g->mv))
        return;
    mv_gc_result res;
    mr_err err;
    if (mv_gc(g->mv, horizon, 20000, &res, &err) != MR_OK)
        MR_WARN("node", "group=%llu gc: %s", (unsigned long long)g->id, mr_err_msg(&err));
}

void nd_txn_tick(nd_node *n, nd_group *g)
{
    int64_t now = mr_monotonic_ns();
    serve_snapwaits(n, g, true);
    gc_step(n, g, now);
    px_status st;
    px_node_status(g->px, &st);
    if (st.state != PX_LEADER)
        return;
    /* Transactions whose client vanished never hold locks for ever. */
    for (nd_txn *t = g->txns, *next; t; t = next) {
        next = t->next;
        if (t->state == TXN_IDLE && now - t->last_active > ND_TXN_IDLE)
            txn_abort(n, g, t, "the client went silent", NULL);
    }
    /* An idle leader moves safe time forward so followers can serve fresh reads. */
    if (now - g->last_propose > ND_SAFE_IDLE && px_node_lease_valid(g->px, tt_now(n->clock)))
        propose_safe(n, g);
    if (g->id == ND_META_GROUP && !g->meta_checked && leads_with_log(n, g))
        record_cluster(n, g);
}

void nd_txn_voided(nd_node *n, nd_group *g, uint64_t id)
{
    nd_txn *t = txn_find(g, id);
    if (t && t->state == TXN_COMMITTING)
        txn_abort(n, g, t, "the commit record was voided (it would have gone back in time)", NULL);
}

void nd_txn_applied(nd_node *n, nd_group *g)
{
    serve_snapwaits(n, g, false);
}

void nd_txn_leadership_lost(nd_node *n, nd_group *g)
{
    /* Locks live only at the leader. A transaction whose commit record was
     * proposed may still commit under the next leader: its outcome is unknown
     * here, never "aborted". */
    for (nd_txn **p = &g->txns; *p;) {
        nd_txn *t = *p;
        if (t->state == TXN_WAITING) {
            /* Chosen and applied: only commit wait remains, which needs no lease. */
            p = &t->next;
            continue;
        }
        if (t->state == TXN_COMMITTING)
            txn_reply(n, t,
                      json_pack("{s:b, s:s, s:s, s:b}", "ok", 0, "error", "unknown", "message",
                                "leadership lost while committing: the outcome is unknown",
                                "retryable", 0));
        else
            txn_reply(n, t, aborted_json("leadership moved"));
        *p = t->next;
        if (t->timer) {
            t->timer->data = NULL;
            uv_close((uv_handle_t *)t->timer, on_timer_closed);
        }
        txn_free(t);
    }
    tl_free(g->locks);
    g->locks = tl_new();
}

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
#include "coordinator/co.h"
#include "tablet/txn/tx.h"
#include "tablet/node/nd_int.h"
#include "tablet/node/nd_validate.h"

#define ND_SAFE_IDLE    (250 * MR_NS_PER_MS)
#define ND_TXN_IDLE     (10 * MR_NS_PER_S) /* a client that vanished */
#define ND_SNAPWAIT_MAX (2 * MR_NS_PER_S)

#define ND_VOTE_TIMEOUT  (5 * MR_NS_PER_S)    /* coordinator: votes must come by then */
#define ND_QUERY_EVERY   (1 * MR_NS_PER_S)    /* participant: ask about a decision */
#define ND_DELIVER_EVERY (500 * MR_NS_PER_MS) /* coordinator: resend an unacked commit */

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
static bool txn_sealed(txn_state s)
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
    /* Two-phase commit. */
    uint64_t coord;    /* the coordinator group; 0 = a single-group transaction */
    co_votes *co;      /* at the coordinator: the participants and their votes */
    int64_t commit_at; /* monotonic ns the commit request came */
    uint8_t *spans;    /* the read locks taken here: per span u32 klen, key, u32 elen (or
                        * UINT32_MAX for a point read), end; carried by PREPARE */
    size_t spans_len, spans_cap;
    nd_group *g;
    nd_node *n;
    nd_txn *next;
};

struct nd_snapwait {
    net_reply_to reply_to;
    int64_t ts;
    int64_t need;   /* served once safe_ts reaches it (see snap_ready) */
    bool ahead;     /* ts is still ahead of TT.now().latest: need is not known yet */
    json_t *result; /* the answer, held until TT.after(vis) */
    int64_t vis;
    int64_t deadline;
    char *key, *end;
    long limit;
    nd_snapwait *next;
};

struct nd_read_timer {
    uv_timer_t h; /* first: the handle's address is the struct's */
    nd_node *n;
    uint64_t gid;
};

static void on_read_timer_closed(uv_handle_t *h)
{
    free(h);
}

static int load_prepared(nd_group *g, mr_err *err);
static void count_decisions(nd_group *g);
static void prepared_clear(nd_group *g);
static void votes_clear(nd_group *g);
static void deliveries_clear(nd_group *g);

/* ---- opening the tablet of a group ---- */

/* A replica's later timestamps exceed every commit timestamp its store holds
 * (see nd_txn_apply_slot): after a restart the replay skips the DECIDE records
 * the store already applied, and a snapshot brings writes at timestamps above
 * its slots', so both raise the floor from the store. */
static int raise_floor_from_store(nd_group *g, mr_err *err)
{
    int64_t top;
    int rc = mv_max_ts(g->mv, &top, err);
    if (rc)
        return mr_err_wrap(err, "group %llu", (unsigned long long)g->id);
    px_node_raise_ts_floor(g->px, top);
    return MR_OK;
}

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
    rc = load_prepared(g, err);
    if (rc)
        return rc;
    count_decisions(g);
    return raise_floor_from_store(g, err);
}

static void txn_free(nd_txn *t)
{
    free(t->co);
    free(t->spans);
    free(t->key);
    free(t->end);
    free(t->body);
    free(t);
}

/* A participant's acknowledgement that it logged the decision. */
static json_t *ack_json(uint64_t txn, uint64_t coord, uint64_t from)
{
    return json_pack("{s:I, s:I, s:I, s:b}", "txn", (json_int_t)txn, "group", (json_int_t)coord,
                     "from", (json_int_t)from, "ack", 1);
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

static void handle_out(nd_node *n, nd_group *g, tl_out *out);

/* t is over here (committed, or its decision applied): its locks go, and
 * whoever waited for them is granted. */
static void txn_finish(nd_node *n, nd_group *g, nd_txn *t)
{
    tl_out out = {0};
    tl_release(g->locks, t->id, &out);
    txn_drop(g, t);
    handle_out(n, g, &out);
    tl_out_free(&out);
}

static void snapwait_free(nd_snapwait *w)
{
    json_decref(w->result);
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
    prepared_clear(g);
    votes_clear(g);
    deliveries_clear(g);
    free(g->forget_ready);
    g->forget_ready = NULL;
    g->nforget_ready = g->cap_forget_ready = 0;
    if (g->read_timer) {
        uv_close((uv_handle_t *)&g->read_timer->h, on_read_timer_closed);
        g->read_timer = NULL;
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
static json_t *read_key(nd_group *g, const void *key, size_t klen, int64_t ts, bool with_ts,
                        int64_t *vis)
{
    mv_version v;
    mr_err err;
    json_t *o;
    int rc = mv_get(g->mv, key, klen, ts, &v, &err);
    if (vis)
        *vis = rc == MR_OK ? v.ts : 0; /* a tombstone's timestamp counts too */
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
    return read_key(g, key, klen, MV_TS_MAX, false, NULL);
}

static json_t *read_at(nd_group *g, const char *key, const char *end, long limit, int64_t ts,
                       int64_t *vis);

/* A read or scan of a transaction, under its locks: the latest committed versions. */
static json_t *txn_read(nd_group *g, nd_txn *t)
{
    if (t->end)
        return read_at(g, (const char *)t->key, (const char *)t->end, t->limit, MV_TS_MAX, NULL);
    return read_latest(g, t->key, t->klen);
}

/* Two-phase commit helpers (defined below). */
static bool px_is_leader(const nd_group *g);
static void send_vote(nd_node *n, nd_group *g, uint64_t txn, uint64_t coord, bool ok, int64_t ts);
static void send_decisions(nd_node *n, nd_group *g, uint64_t txn, const co_votes *co, bool commit,
                           int64_t ts);

/* Appends [u64 txn] then parts of a prefix and the writes of t->body. */
static uint8_t *frame_2pc(const nd_txn *t, const uint8_t *mid, size_t mlen, size_t *len)
{
    size_t wl = t->blen - 8; /* t->body: [u64 txn][u32 nwrites][writes] */
    uint8_t *b = malloc(8 + mlen + wl);
    if (!b)
        return NULL;
    put64(b, t->id);
    if (mlen)
        memcpy(b + 8, mid, mlen);
    memcpy(b + 8 + mlen, t->body + 8, wl);
    *len = 8 + mlen + wl;
    return b;
}

/* t holds every lock it asked for. Single group: propose its commit record.
 * Participant of a 2PC: propose PREPARE (its writes and read locks, so a new
 * leader can take them again). Coordinator: wait for every vote, then
 * propose COMMIT2 above every prepare timestamp. From the proposal on t can
 * no longer be wounded (tl_prepare): its locks stay until the record applied
 * and commit wait is over, or the decision is in. */
static void txn_locked(nd_node *n, nd_group *g, nd_txn *t)
{
    if (t->co) {
        co_verdict v = co_verdict_of(t->co);
        if (v == CO_ABORT)
            return txn_abort(n, g, t, "a participant could not prepare", NULL);
        if (v == CO_WAITING) {
            t->state = TXN_VOTING;
            return;
        }
    }
    mr_err err;
    int prc = tl_prepare(g->locks, t->id, &err);
    if (prc != MR_OK && prc != MR_ENOTFOUND) /* not found: it holds no lock here */
        return txn_abort(n, g, t, mr_err_msg(&err), NULL);
    uint8_t kind = ND_OP_TXN;
    const uint8_t *body = t->body;
    size_t blen = t->blen;
    uint8_t *framed = NULL;
    if (t->co) {
        /* s > every prepare timestamp (MinNextTS), and >= TT.now().latest:
         * the slot's own stamp. */
        if (px_node_promise(g->px, tt_now(n->clock), t->co->max_prepare_ts, &err) != MR_OK) {
            char why[300];
            snprintf(why, sizeof why, "cannot commit above the prepare timestamps: %s",
                     mr_err_msg(&err));
            return txn_abort(n, g, t, why, NULL);
        }
        uint8_t mid[4 + 8 * CO_MAX_PARTS];
        put32(mid, t->co->nparts);
        for (uint32_t i = 0; i < t->co->nparts; i++)
            put64(mid + 4 + 8 * i, t->co->parts[i]);
        framed = frame_2pc(t, mid, 4 + 8 * (size_t)t->co->nparts, &blen);
        kind = ND_OP_COMMIT2;
    } else if (t->coord) {
        uint8_t *mid = malloc(12 + t->spans_len);
        if (mid) {
            put64(mid, t->coord);
            put32(mid + 8, (uint32_t)t->spans_len);
            if (t->spans_len)
                memcpy(mid + 12, t->spans, t->spans_len);
            framed = frame_2pc(t, mid, 12 + t->spans_len, &blen);
            free(mid);
        }
        kind = ND_OP_PREPARE;
    }
    if (kind != ND_OP_TXN) {
        if (!framed)
            return txn_abort(n, g, t, "out of memory", NULL);
        body = framed;
    }
    int rc = nd_propose_raw(n, g, 0, kind, body, blen, &err);
    free(framed);
    if (rc != MR_OK) {
        char why[300];
        snprintf(why, sizeof why, "commit not proposed: %s", mr_err_msg(&err));
        if (rc == MR_EINVAL) /* over the log's entry size: retrying cannot help */
            txn_reply(n, t,
                      json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "too_large", "message", why));
        return txn_abort(n, g, t, why, NULL);
    }
    t->state = kind == ND_OP_PREPARE ? TXN_PREPARING : TXN_COMMITTING;
}

static void txn_abort(nd_node *n, nd_group *g, nd_txn *t, const char *why, tl_out *out)
{
    txn_reply(n, t, aborted_json(why));
    /* The other side of a two-phase commit hears of it now rather than by
     * timeout: a participant votes no, a coordinator tells everyone. */
    if (t->co)
        send_decisions(n, g, t->id, t->co, false, 0);
    else if (t->coord && t->coord != g->id)
        send_vote(n, g, t->id, t->coord, false, 0);
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
        if (!t || txn_sealed(t->state))
            continue;
        if (t->coord && (t->state == TXN_LOCKING || t->state == TXN_VOTING)) {
            /* A two-phase commit cannot wait for the client to hear of it. */
            txn_abort(n, g, t, "wounded by an older transaction", out);
            continue;
        }
        t->wounded = true;
        if (t->has_reply) {
            /* A parked request learns it now; the client retries the transaction. */
            txn_reply(n, t, aborted_json("wounded by an older transaction"));
            t->state = TXN_IDLE;
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
            txn_locked(n, g, t);
        }
    }
}

/* ---- the write path ---- */

/* Commit: t asks for an exclusive lock on every key it writes ({key, ...}
 * objects) and is LOCKING until locks_pending reaches 0. False if it was
 * wounded or refused on the way (abort it). */
static bool lock_writes(nd_group *g, nd_txn *t, json_t *writes, tl_out *out)
{
    t->state = TXN_LOCKING;
    t->locks_pending = 0;
    size_t i;
    json_t *w;
    json_array_foreach(writes, i, w)
    {
        json_t *k = json_object_get(w, "key");
        tl_lock lk = {.mode = TL_EXCLUSIVE,
                      .start = (const uint8_t *)json_string_value(k),
                      .start_len = json_string_length(k)};
        uint64_t req;
        mr_err err;
        int r = tl_acquire(g->locks, t->id, t->prio, &lk, &req, out, &err);
        if (r == TL_WAIT)
            t->locks_pending++;
        else if (r != TL_GRANTED)
            return false;
    }
    return true;
}

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
        size_t kl = json_string_length(json_object_get(w, "key"));
        size_t vl = del ? 0 : json_string_length(v);
        /* (client writes passed nd_valid_txn; the node's own must fit the store too) */
        if (kl > MV_MAX_KEY || vl > MV_MAX_VALUE)
            return mr_errf(err, MR_EINVAL,
                           "write %zu: a key of %zu or a value of %zu bytes is "
                           "over the store's limits",
                           i, kl, vl);
        cap += 9 + kl + vl;
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

/* Decodes a commit body into writes borrowing from `b`; *w is malloc'd. MR_EINVAL for a
 * malformed body, MR_ENOMEM. */
static int decode_writes(const uint8_t *b, size_t len, mv_write **w, size_t *n)
{
    if (len < 4)
        return MR_EINVAL;
    uint32_t cnt = get32(b);
    if (cnt > len / 9 + 1)
        return MR_EINVAL;
    mv_write *ws = calloc(cnt ? cnt : 1, sizeof *ws);
    if (!ws)
        return MR_ENOMEM;
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
    return MR_OK;
bad:
    free(ws);
    return MR_EINVAL;
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
    if (wait <= 0 || nd_test_break(n, ND_BREAK_NO_COMMIT_WAIT))
        return commit_done(n, t->g, t);
    t->state = TXN_WAITING;
    if (!t->timer) {
        t->timer = malloc(sizeof *t->timer);
        if (!t->timer)
            return; /* no timer: the tick ends the wait (commit_wait_ticks) */
        uv_timer_init(n->loop, t->timer);
    }
    t->timer->data = t;
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
    /* The coordinator tells the participants only now, after commit wait
     * (Spanner §4.2.1): they then apply at s and release their locks. */
    if (t->co)
        send_decisions(n, g, t->id, t->co, true, t->commit_ts);
    txn_finish(n, g, t);
}

/* Commit waits that could not get a timer end on the tick, never early. */
static void commit_wait_ticks(nd_node *n, nd_group *g)
{
    for (;;) { /* from the top each time: finishing one may end others */
        nd_txn *t = g->txns;
        while (t && !(t->state == TXN_WAITING && !t->timer && tt_after(n->clock, t->commit_ts)))
            t = t->next;
        if (!t)
            return;
        commit_done(n, g, t);
    }
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

/* ---- two-phase commit state (every replica) ---- */

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
    bool confirm; /* asked again before the decision is collected (forget_step) */
    nd_delivery *next;
};

/* A 2PC message for a group this node hosts, delivered from the loop. */
struct nd_local {
    uint8_t type;
    char *text;
    nd_local *next;
};

/* System records in a group's MVCC store live under keys no client can
 * write (client keys are NUL-free, these start with NUL): "\0p/<txn>" a
 * prepared transaction, "\0d/<txn>" a coordinator's decision. */
#define SYS_KEY_LEN 19
static void sys_key(char *k, char kind, uint64_t txn)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)txn);
    k[0] = 0;
    k[1] = kind;
    k[2] = '/';
    memcpy(k + 3, hex, 16);
}

static nd_prepared *prepared_find(nd_group *g, uint64_t txn)
{
    for (nd_prepared *p = g->prepared; p; p = p->next)
        if (p->txn == txn)
            return p;
    return NULL;
}

/* The writes of a prepared record (a malloc'd array borrowing from p->val). MR_EINVAL for a
 * malformed record, MR_ENOMEM. */
static int prepared_writes(const nd_prepared *p, mv_write **w, size_t *nw)
{
    if (p->len < 20)
        return MR_EINVAL;
    uint32_t slen = get32(p->val + 16);
    if (slen > p->len - 20)
        return MR_EINVAL;
    return decode_writes(p->val + 20 + slen, p->len - 20 - slen, w, nw);
}

/* MR_EINVAL for a malformed record, MR_ENOMEM. */
static int prepared_add(nd_group *g, uint64_t txn, const uint8_t *val, size_t len)
{
    if (len < 20)
        return MR_EINVAL;
    nd_prepared *p = calloc(1, sizeof *p);
    if (!p || !(p->val = malloc(len))) {
        free(p);
        return MR_ENOMEM;
    }
    memcpy(p->val, val, len);
    p->len = len;
    p->txn = txn;
    p->ts = (int64_t)get64(val);
    p->coord = get64(val + 8);
    mv_write *w;
    size_t nw;
    int rc = prepared_writes(p, &w, &nw);
    if (rc != MR_OK) {
        free(p->val);
        free(p);
        return rc;
    }
    free(w);
    p->next = g->prepared;
    g->prepared = p;
    return MR_OK;
}

static void prepared_remove(nd_group *g, uint64_t txn)
{
    for (nd_prepared **pp = &g->prepared; *pp; pp = &(*pp)->next)
        if ((*pp)->txn == txn) {
            nd_prepared *p = *pp;
            *pp = p->next;
            free(p->val);
            free(p);
            return;
        }
}

size_t nd_txn_prepared_count(const nd_group *g)
{
    size_t c = 0;
    for (const nd_prepared *p = g->prepared; p; p = p->next)
        c++;
    return c;
}

static void prepared_clear(nd_group *g)
{
    while (g->prepared) {
        nd_prepared *p = g->prepared;
        g->prepared = p->next;
        free(p->val);
        free(p);
    }
}

/* Safe time (Spanner §4.1.3): t_safe = min(t_paxos_safe, t_tm_safe), where
 * t_paxos_safe is the largest applied timestamp and t_tm_safe is one below the
 * smallest prepare timestamp of an undecided transaction: it may still commit
 * at any s >= its prepare timestamp. */
static int64_t tm_safe(const nd_group *g)
{
    int64_t t = TX_TS_INF;
    for (const nd_prepared *p = g->prepared; p; p = p->next)
        if (p->ts - 1 < t)
            t = p->ts - 1;
    return t;
}

/* t_paxos_safe: the largest applied timestamp, or the leader's promise once
 * this replica applied every slot the leader had assigned when it made it. */
static int64_t paxos_safe(const nd_group *g)
{
    return g->grant_ts > g->safe_ts && g->sm.slot >= g->grant_slot ? g->grant_ts : g->safe_ts;
}

static int64_t safe_time(const nd_group *g)
{
    return tx_safe_time(paxos_safe(g), tm_safe(g));
}

static int load_prepared_row(void *arg, const mv_version *v)
{
    nd_group *g = arg;
    if (v->key_len != SYS_KEY_LEN || v->deleted)
        return 0;
    char hex[17];
    memcpy(hex, (const char *)v->key + 3, 16);
    hex[16] = 0;
    int rc = prepared_add(g, strtoull(hex, NULL, 16), v->value, v->len);
    if (rc == MR_EINVAL)
        MR_ERROR("node", "group=%llu: malformed prepared record %s skipped",
                 (unsigned long long)g->id, hex);
    return rc == MR_ENOMEM ? MR_ENOMEM : 0;
}

/* Rebuilds the prepared list from the store (at open, after a snapshot). A replica that
 * missed one would serve reads its prepare timestamp still holds back: an error here must
 * stop the replica. */
static int load_prepared(nd_group *g, mr_err *err)
{
    prepared_clear(g);
    g->prepared_locked = false;
    char start[3] = {0, 'p', '/'}, end[3] = {0, 'p', '0'};
    mv_scan_opts so = {.start = start, .start_len = 3, .end = end, .end_len = 3, .ts = MV_TS_MAX};
    uint64_t count;
    int rc = mv_scan(g->mv, &so, load_prepared_row, g, &count, err);
    if (rc == MR_ENOMEM)
        mr_errf(err, MR_ENOMEM, "out of memory");
    if (rc != MR_OK)
        return mr_err_wrap(err, "group %llu: loading prepared transactions",
                           (unsigned long long)g->id);
    return MR_OK;
}

/* The coordinator's decision about txn, if one is logged. */
static bool decision_lookup(nd_group *g, uint64_t txn, co_decision *d)
{
    char k[SYS_KEY_LEN];
    sys_key(k, 'd', txn);
    mv_version v;
    mr_err err;
    if (mv_get(g->mv, k, SYS_KEY_LEN, MV_TS_MAX, &v, &err) != MR_OK)
        return false;
    bool ok = !v.deleted && co_decision_decode(v.value, v.len, d, &err) == MR_OK;
    free((void *)v.value);
    return ok;
}

/* Was a decision about txn made and collected since (its row is a tombstone until MVCC GC
 * removes it)? No second decision is ever logged for such a transaction. */
static bool decision_forgotten(nd_group *g, uint64_t txn)
{
    char k[SYS_KEY_LEN];
    sys_key(k, 'd', txn);
    mv_version v;
    mr_err err;
    int rc = mv_get(g->mv, k, SYS_KEY_LEN, MV_TS_MAX, &v, &err);
    if (rc == MR_OK)
        free((void *)v.value);
    return rc == MR_ENOTFOUND && v.deleted;
}

/* Was a decision about txn ever logged here (kept, or collected since)? One read. */
static bool decision_made(nd_group *g, uint64_t txn)
{
    char k[SYS_KEY_LEN];
    sys_key(k, 'd', txn);
    mv_version v;
    mr_err err;
    int rc = mv_get(g->mv, k, SYS_KEY_LEN, MV_TS_MAX, &v, &err);
    if (rc == MR_OK)
        free((void *)v.value);
    return rc == MR_OK || (rc == MR_ENOTFOUND && v.deleted);
}

/* ---- applying the log ---- */

/* What applying one record asks of this node once the slot is stored. */
typedef struct rec_effect {
    uint8_t kind;
    uint64_t txn;
    bool skipped;   /* a record that changed nothing (a decision already made, ...) */
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

static void acc_sys(apply_acc *a, size_t i, char kind, uint64_t txn, int64_t ts, uint8_t *val,
                    size_t len)
{
    char *k = (char *)a->keys + i * SYS_KEY_LEN;
    sys_key(k, kind, txn);
    a->sys[i] = (mv_write){
        .op = val ? MV_PUT : MV_DELETE, .key = k, .key_len = SYS_KEY_LEN, .value = val, .len = len};
    a->bufs[i] = val;
    a->txns[a->nt++] = (mv_txn){.commit_ts = ts, .w = &a->sys[i], .n = 1};
}

/* Does every write fall in g's range? A record proposed before a split but
 * chosen after it may not: it is then skipped (aborted) on every replica,
 * never applied in part. The meta group has no range: its keys are its own. */
static bool writes_fit(const nd_group *g, const mv_write *w, size_t nw)
{
    for (size_t i = 0; g->range_start && i < nw; i++)
        if (!nd_in_range(g, w[i].key, w[i].key_len))
            return false;
    return true;
}

/* Can every replica store txn's writes at ts? The same verdict everywhere: it depends only
 * on the record, the range and the store's own input checks (mv_check_txn), so a record that
 * fails is skipped on every replica and never takes the rest of its slot down. */
static int writes_storable(const nd_group *g, uint64_t txn, const mv_write *w, size_t nw,
                           int64_t ts)
{
    if (!writes_fit(g, w, nw))
        return MR_EINVAL;
    mv_txn t = {.commit_ts = ts, .w = w, .n = nw};
    mr_err err;
    if (mv_check_txn(g->mv, &t, &err) != MR_OK) {
        MR_WARN("node", "group=%llu txn=%llu: its writes cannot be stored, skipped: %s",
                (unsigned long long)g->id, (unsigned long long)txn, mr_err_msg(&err));
        return MR_EINVAL;
    }
    return MR_OK;
}

/* A record's writes into the slot's batch at ts. MR_EINVAL: they cannot be stored (skip the
 * record, on every replica alike); MR_ENOMEM. */
static int acc_writes(const nd_group *g, apply_acc *a, uint64_t txn, const uint8_t *b, size_t len,
                      int64_t ts)
{
    mv_write *w;
    size_t nw;
    int rc = decode_writes(b, len, &w, &nw);
    if (rc == MR_OK && (rc = writes_storable(g, txn, w, nw, ts)) != MR_OK)
        free(w);
    if (rc != MR_OK)
        return rc;
    a->owned[a->nowned++] = w;
    a->txns[a->nt++] = (mv_txn){.commit_ts = ts, .w = w, .n = nw};
    return MR_OK;
}

static bool decided_in(const rec_effect *fx, size_t n, uint64_t txn)
{
    for (size_t i = 0; i < n; i++)
        if (!fx[i].skipped && fx[i].txn == txn &&
            (fx[i].kind == ND_OP_TXN || fx[i].kind == ND_OP_COMMIT2 || fx[i].kind == ND_OP_ABORT2))
            return true;
    return false;
}

/* The writes of a PREPARE body ([txn][coord][u32 slen][spans][writes]) can be stored at ts
 * (they will be at the commit timestamp, above it, in the same range: a split waits until
 * nothing is prepared). MR_EINVAL, MR_ENOMEM as acc_writes. */
static int prepare_fits(const nd_group *g, uint64_t txn, const uint8_t *b, size_t bl, int64_t ts)
{
    uint32_t slen = get32(b + 16);
    if (slen > bl - 20)
        return MR_EINVAL;
    mv_write *w;
    size_t nw;
    int rc = decode_writes(b + 20 + slen, bl - 20 - slen, &w, &nw);
    if (rc == MR_OK) {
        rc = writes_storable(g, txn, w, nw, ts);
        free(w);
    }
    return rc;
}

static bool stage_forget(nd_group *g, apply_acc *a, rec_effect *fx, size_t i, int64_t ts,
                         const uint8_t *b, size_t bl);

/* One record into the slot's MVCC batch. Deterministic on every replica: it
 * depends only on the store and the records before it; a record that cannot be
 * applied is skipped (fx->skipped) everywhere alike. MR_OK, or MR_ENOMEM: then
 * this replica cannot go on (skipping here alone would make it diverge). */
static int stage_record(nd_group *g, apply_acc *a, rec_effect *fx, size_t i, int64_t ts,
                        const uint8_t *r, size_t len)
{
    const uint8_t *b = r + 1;
    size_t bl = len - 1;
    int rc;
    fx[i].kind = r[0];
    fx[i].txn = get64(b);
    switch (r[0]) {
    case ND_OP_TXN: {
        /* A single-group commit is its own decision, logged like a
         * coordinator's so that {op: status} answers it truly; an ABORT2
         * logged first (a status question about it) wins. */
        if (decision_made(g, fx[i].txn) || decided_in(fx, i, fx[i].txn)) {
            fx[i].skipped = true;
            break;
        }
        uint8_t *val = malloc(CO_DECISION_MAX);
        if (!val)
            return MR_ENOMEM;
        if ((rc = acc_writes(g, a, fx[i].txn, b + 8, bl - 8, ts)) != MR_OK) {
            free(val);
            if (rc == MR_ENOMEM)
                return rc;
            fx[i].skipped = true;
            break;
        }
        co_decision d = {.commit = true, .ts = ts};
        acc_sys(a, i, 'd', fx[i].txn, ts, val, co_decision_encode(&d, val));
        break;
    }
    case ND_OP_PREPARE: { /* [txn][coord][u32 slen][spans][writes] -> [ts][coord]... */
        if (bl < 20 || prepared_find(g, fx[i].txn)) {
            fx[i].skipped = true;
            break;
        }
        if ((rc = prepare_fits(g, fx[i].txn, b, bl, ts)) != MR_OK) {
            if (rc == MR_ENOMEM)
                return rc;
            fx[i].skipped = true;
            break;
        }
        uint8_t *val = malloc(bl);
        if (!val)
            return MR_ENOMEM;
        put64(val, (uint64_t)ts);
        memcpy(val + 8, b + 8, bl - 8);
        fx[i].prep_val = val;
        fx[i].prep_len = bl;
        acc_sys(a, i, 'p', fx[i].txn, ts, val, bl);
        a->bufs[i] = NULL; /* owned by fx until the list takes a copy */
        break;
    }
    case ND_OP_DECIDE: { /* [txn][u8 commit][i64 s] */
        nd_prepared *p = prepared_find(g, fx[i].txn);
        if (bl < 17 || !p) {
            fx[i].skipped = true;
            break;
        }
        fx[i].coord = p->coord;
        fx[i].d.commit = b[8] == 1;
        fx[i].d.ts = (int64_t)get64(b + 9);
        if (fx[i].d.commit) {
            mv_write *w = NULL;
            size_t nw = 0;
            if ((rc = prepared_writes(p, &w, &nw)) == MR_OK &&
                (rc = writes_storable(g, fx[i].txn, w, nw, fx[i].d.ts)) != MR_OK)
                free(w);
            if (rc == MR_ENOMEM)
                return rc;
            if (rc != MR_OK) {
                /* PREPARE checked these writes: the record must have been damaged. Keep it
                 * prepared rather than decide it without its writes. */
                MR_ERROR("node", "group=%llu txn=%llu: prepared writes cannot be applied",
                         (unsigned long long)g->id, (unsigned long long)fx[i].txn);
                fx[i].skipped = true;
                break;
            }
            a->owned[a->nowned++] = w;
            a->txns[a->nt++] = (mv_txn){.commit_ts = fx[i].d.ts, .w = w, .n = nw};
        }
        acc_sys(a, i, 'p', fx[i].txn, ts, NULL, 0);
        break;
    }
    case ND_OP_COMMIT2:
    case ND_OP_ABORT2: {
        /* The first decision logged for a transaction wins, also once collected. */
        if (decision_made(g, fx[i].txn) || decided_in(fx, i, fx[i].txn)) {
            fx[i].skipped = true;
            break;
        }
        co_decision d = {.commit = r[0] == ND_OP_COMMIT2, .ts = ts};
        if (d.commit) {
            uint32_t np = bl >= 12 ? get32(b + 8) : 0;
            if (bl < 12 || np > CO_MAX_PARTS || bl < 12 + 8 * (size_t)np) {
                fx[i].skipped = true;
                break;
            }
            if ((rc = acc_writes(g, a, fx[i].txn, b + 12 + 8 * np, bl - 12 - 8 * np, ts)) !=
                MR_OK) {
                if (rc == MR_ENOMEM)
                    return rc;
                fx[i].skipped = true;
                break;
            }
            d.nparts = np;
            for (uint32_t k = 0; k < np; k++)
                d.parts[k] = get64(b + 12 + 8 * k);
        }
        uint8_t *val = malloc(CO_DECISION_MAX);
        if (!val)
            return MR_ENOMEM;
        fx[i].d = d;
        acc_sys(a, i, 'd', fx[i].txn, ts, val, co_decision_encode(&d, val));
        break;
    }
    case ND_OP_FORGET:
        fx[i].skipped = !stage_forget(g, a, fx, i, ts, b, bl);
        break;
    default:
        fx[i].skipped = true;
    }
    return MR_OK;
}

static void txn_commit_wait(nd_node *n, nd_txn *t);
static void lock_prepared(nd_node *n, nd_group *g);
static bool leads_with_log(nd_node *n, nd_group *g);

/* What the leader does once a slot's records are stored. */
static void react(nd_node *n, nd_group *g, const rec_effect *fx, int64_t ts)
{
    nd_txn *t = txn_find(g, fx->txn);
    switch (fx->kind) {
    case ND_OP_TXN:
    case ND_OP_COMMIT2: /* a decision record: commit wait, or abort if one came first */
        if (t && t->state == TXN_COMMITTING) {
            if (fx->skipped)
                return txn_abort(n, g, t,
                                 "aborted: the transaction was already decided, a split "
                                 "moved its keys, or its writes cannot be stored",
                                 NULL);
            t->commit_ts = ts;
            txn_commit_wait(n, t);
        }
        break;
    case ND_OP_PREPARE:
        if (t && t->state == TXN_PREPARING && fx->skipped && !prepared_find(g, t->id))
            return txn_abort(n, g, t, "the tablet split: its keys moved; retry", NULL);
        if (t && t->state == TXN_PREPARING) {
            t->state = TXN_PREPARED;
            t->commit_ts = ts;
            txn_reply(n, t,
                      json_pack("{s:b, s:b, s:I, s:I}", "ok", 1, "prepared", 1, "ts",
                                (json_int_t)ts, "group", (json_int_t)g->id));
            send_vote(n, g, t->id, t->coord, true, ts);
            nd_prepared *p = prepared_find(g, t->id);
            if (p)
                p->last_query = mr_monotonic_ns();
        }
        break;
    case ND_OP_DECIDE:
        if (t && fx->skipped && prepared_find(g, fx->txn)) { /* still prepared: keep its locks */
            if (t->state == TXN_DECIDING)
                t->state = TXN_PREPARED;
            break;
        }
        if (t)
            txn_finish(n, g, t);
        if (!fx->skipped && px_is_leader(g))
            nd_send_to_group(n, fx->coord, ND_MSG_DECISION, ack_json(fx->txn, fx->coord, g->id));
        break;
    case ND_OP_ABORT2:
        if (t && !fx->skipped && !txn_sealed(t->state))
            txn_abort(n, g, t, "aborted: the coordinator decided so", NULL);
        break;
    }
}

static void decisions_applied(nd_group *g, const rec_effect *fx, size_t nrec);

/* Every replica applies a slot's transactional records to its MVCC store in
 * one SQLite transaction; the leader then reacts to its own (commit wait,
 * votes, lock releases). */
void nd_txn_apply_slot(nd_node *n, nd_group *g, uint64_t slot, int64_t ts, const uint8_t **recs,
                       const uint32_t *lens, size_t nrec)
{
    if (n->fatal)
        return; /* stopping: nothing more is applied, nor acknowledged */
    size_t cap = nrec ? 2 * nrec : 1;
    apply_acc a = {.txns = calloc(cap, sizeof(mv_txn)),
                   .owned = calloc(cap, sizeof(mv_write *)),
                   .keys = calloc(cap, SYS_KEY_LEN),
                   .sys = calloc(cap, sizeof(mv_write)),
                   .bufs = calloc(cap, sizeof(uint8_t *))};
    rec_effect *fx = calloc(cap, sizeof *fx);
    if (!a.txns || !a.owned || !a.keys || !a.sys || !a.bufs || !fx) {
        /* a replica that skips a slot diverges: stop instead */
        mr_err e;
        mr_errf(&e, MR_ENOMEM, "group %llu slot %llu: out of memory", (unsigned long long)g->id,
                (unsigned long long)slot);
        nd_fatal(n, "applying a slot", &e);
        goto out;
    }
    mr_err err;
    for (size_t i = 0; i < nrec; i++) {
        if (lens[i] < 9) {
            fx[i].skipped = true;
            continue;
        }
        if (stage_record(g, &a, fx, i, ts, recs[i], lens[i]) != MR_OK) {
            mr_errf(&err, MR_ENOMEM, "group %llu slot %llu: out of memory",
                    (unsigned long long)g->id, (unsigned long long)slot);
            nd_fatal(n, "applying a slot", &err);
            goto out;
        }
        if (fx[i].skipped && recs[i][0] == ND_OP_TXN)
            MR_DEBUG("node",
                     "group=%llu slot=%llu: commit record skipped (decided before, keys "
                     "outside the range, or malformed)",
                     (unsigned long long)g->id, (unsigned long long)slot);
    }
    int arc = MR_OK;
    if (a.nt) {
        arc = mv_apply_txns(g->mv, slot, a.txns, a.nt, &err);
        if (arc != MR_OK && arc != MR_EEXIST) {
            /* Every transaction passed the store's input checks (stage_record), so the
             * store failed (I/O, corruption, a full disk): nothing of the slot may be
             * acknowledged, nor the replica go on past it. */
            mr_err_wrap(&err, "group %llu slot %llu", (unsigned long long)g->id,
                        (unsigned long long)slot);
            nd_fatal(n, "applying a slot", &err);
            goto out;
        }
    }
    if (arc == MR_OK) /* not a replay: the decision rows changed as staged */
        decisions_applied(g, fx, nrec);
    /* The in-memory view of the prepared transactions follows the store. */
    for (size_t i = 0; i < nrec; i++) {
        if (fx[i].skipped)
            continue;
        if (fx[i].kind == ND_OP_PREPARE &&
            prepared_add(g, fx[i].txn, fx[i].prep_val, fx[i].prep_len) != MR_OK) {
            /* (stage_record checked the record: only memory can fail) A replica missing a
             * prepared transaction would serve reads its prepare timestamp holds back. */
            mr_errf(&err, MR_ENOMEM, "group %llu slot %llu: out of memory",
                    (unsigned long long)g->id, (unsigned long long)slot);
            nd_fatal(n, "applying a slot", &err);
            goto out;
        } else if (fx[i].kind == ND_OP_DECIDE) {
            prepared_remove(g, fx[i].txn);
        }
    }
    /* Spanner keeps each group's Paxos write timestamps monotonic (§4.1.2): a
     * DECIDE applies its writes at the coordinator's s, above this slot's stamp,
     * so every later stamp of this group must exceed s -- on every replica, so
     * that a successor does too. Otherwise a participant whose clock is behind
     * the coordinator's would stamp its next write of a key below s (a version
     * order against the lock order), and only commit wait would hide it.
     * Raised before react releases the locks. */
    int64_t top = ts;
    for (size_t i = 0; i < a.nt; i++)
        if (a.txns[i].commit_ts > top)
            top = a.txns[i].commit_ts;
    if (top > ts && !nd_test_break(n, ND_BREAK_NO_TS_FLOOR))
        px_node_raise_ts_floor(g->px, top);
    if (ts > g->safe_ts)
        g->safe_ts = ts;
    for (size_t i = 0; i < nrec; i++)
        if (lens[i] >= 9)
            react(n, g, &fx[i], ts);
    if (g->prepared && leads_with_log(n, g))
        lock_prepared(n, g);
out:
    for (size_t i = 0; i < a.nowned; i++)
        free(a.owned[i]);
    for (size_t i = 0; a.bufs && i < nrec; i++)
        free(a.bufs[i]);
    for (size_t i = 0; fx && i < nrec; i++) {
        free(fx[i].prep_val);
        free(fx[i].forgot);
    }
    free(a.txns);
    free(a.owned);
    free(a.keys);
    free(a.sys);
    free(a.bufs);
    free(fx);
}

/* ---- two-phase commit messages ---- */

static bool px_is_leader(const nd_group *g)
{
    px_status st;
    px_node_status(g->px, &st);
    return st.state == PX_LEADER;
}

/* One-way JSON message to every replica of group gid (only its leader acts);
 * a replica on this node gets it from the loop, not from inside this call. */
void nd_send_to_group(nd_node *n, uint64_t gid, uint8_t type, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return;
    const px_config *c = nd_group_replicas(n, gid);
    if (c) {
        for (uint32_t k = 0; k < c->n; k++) {
            px_node_id id = c->nodes[k];
            if (id == n->self) {
                nd_local *l = malloc(sizeof *l);
                if (!l || !(l->text = strdup(text))) {
                    free(l);
                    continue;
                }
                l->type = type;
                l->next = NULL;
                if (n->local_tail)
                    n->local_tail->next = l;
                else
                    n->local = l;
                n->local_tail = l;
            } else if (id <= PX_MAX_NODE_ID && n->peers[id].addr[0]) {
                mr_err err;
                net_transport_send(n->tr, n->peers[id].addr, type, text, (uint32_t)strlen(text),
                                   &err);
            }
        }
    }
    free(text);
}

bool nd_txn_run_local(nd_node *n)
{
    nd_local *l = n->local;
    if (!l)
        return false;
    n->local = n->local_tail = NULL;
    while (l) {
        nd_local *next = l->next;
        net_message m = {.type = l->type,
                         .len = (uint32_t)strlen(l->text),
                         .payload = (const uint8_t *)l->text,
                         .peer = "local",
                         .peer_name = "",
                         .peer_is_node = 1};
        if (n->closing || n->fatal)
            ;
        else if (m.type == ND_MSG_SPLIT)
            nd_split_on_message(n, &m);
        else
            nd_txn_on_2pc(n, &m);
        free(l->text);
        free(l);
        l = next;
    }
    return true;
}

void nd_txn_free_local(nd_node *n)
{
    while (n->local) {
        nd_local *l = n->local;
        n->local = l->next;
        free(l->text);
        free(l);
    }
    n->local_tail = NULL;
}

static void send_vote(nd_node *n, nd_group *g, uint64_t txn, uint64_t coord, bool ok, int64_t ts)
{
    nd_send_to_group(n, coord, ND_MSG_PREPARED,
                     json_pack("{s:I, s:I, s:I, s:b, s:I}", "txn", (json_int_t)txn, "group",
                               (json_int_t)coord, "from", (json_int_t)g->id, "ok", ok, "ts",
                               (json_int_t)ts));
}

static json_t *decision_json(uint64_t txn, uint64_t to, uint64_t coord, bool commit, int64_t ts)
{
    return json_pack("{s:I, s:I, s:I, s:b, s:I}", "txn", (json_int_t)txn, "group", (json_int_t)to,
                     "coord", (json_int_t)coord, "commit", commit, "ts", (json_int_t)ts);
}

/* The decision to every participant but the coordinator itself. A commit is
 * resent until acknowledged (nd_txn_tick); an abort goes once: a prepared
 * participant that misses it asks (ND_MSG_TXN_QUERY). */
static void send_decisions(nd_node *n, nd_group *g, uint64_t txn, const co_votes *co, bool commit,
                           int64_t ts)
{
    for (uint32_t i = 0; i < co->nparts; i++)
        if (co->parts[i] != g->id)
            nd_send_to_group(n, co->parts[i], ND_MSG_DECISION,
                             decision_json(txn, co->parts[i], g->id, commit, ts));
    if (!commit)
        return;
    nd_delivery *d = calloc(1, sizeof *d);
    if (!d)
        return;
    d->txn = txn;
    d->d.commit = true;
    d->d.ts = ts;
    d->d.nparts = co->nparts;
    memcpy(d->d.parts, co->parts, sizeof co->parts);
    for (uint32_t i = 0; i < co->nparts; i++)
        if (co->parts[i] == g->id)
            d->acked |= 1ull << i;
    d->next_send = mr_monotonic_ns() + ND_DELIVER_EVERY;
    d->next = g->delivering;
    g->delivering = d;
}

static void deliveries_clear(nd_group *g)
{
    while (g->delivering) {
        nd_delivery *d = g->delivering;
        g->delivering = d->next;
        free(d);
    }
}

static void votes_clear(nd_group *g)
{
    while (g->votes) {
        nd_vote *v = g->votes;
        g->votes = v->next;
        free(v);
    }
}

/* Coordinator leader: logs "aborted" as txn's decision (a no-op if one is
 * logged already: the first decision wins). */
static void propose_abort2(nd_node *n, nd_group *g, uint64_t txn)
{
    mr_err err;
    uint8_t body[8];
    put64(body, txn);
    (void)nd_propose_raw(n, g, 0, ND_OP_ABORT2, body, sizeof body, &err); /* asked again later */
}

static void forget_ready_add(nd_group *g, uint64_t txn);

/* Coordinator leader: a participant acknowledged the commit decision. */
static void on_ack(nd_group *g, uint64_t txn, uint64_t from)
{
    for (nd_delivery **pd = &g->delivering; *pd; pd = &(*pd)->next) {
        nd_delivery *d = *pd;
        if (d->txn != txn)
            continue;
        for (uint32_t i = 0; i < d->d.nparts; i++)
            if (d->d.parts[i] == from)
                d->acked |= 1ull << i;
        if (d->acked == (1ull << d->d.nparts) - 1) {
            *pd = d->next;
            if (d->confirm)
                forget_ready_add(g, d->txn);
            free(d);
        }
        return;
    }
}

/* Coordinator leader: a participant's vote (or its repeated question, which
 * carries the same vote). */
static void on_vote(nd_node *n, nd_group *g, uint64_t txn, uint64_t from, bool ok, int64_t ts,
                    bool query)
{
    co_decision d;
    if (decision_lookup(g, txn, &d)) {
        nd_send_to_group(n, from, ND_MSG_DECISION, decision_json(txn, from, g->id, d.commit, d.ts));
        return;
    }
    nd_txn *t = txn_find(g, txn);
    if (t && t->co) {
        co_verdict v = co_vote(t->co, from, ok, ts);
        if (v == CO_ABORT && !txn_sealed(t->state))
            txn_abort(n, g, t, "a participant could not prepare", NULL);
        else if (v == CO_COMMIT && t->state == TXN_VOTING)
            txn_locked(n, g, t);
        return;
    }
    if (query && decision_forgotten(g, txn)) {
        /* A collected decision. A commit is collected only once every
         * participant acknowledged it (forget_step), and a participant asks
         * only while prepared: so this one was an abort (or the question is
         * an old one, from before the participant decided: then it is
         * ignored there). */
        nd_send_to_group(n, from, ND_MSG_DECISION, decision_json(txn, from, g->id, false, 0));
        return;
    }
    if (query) {
        /* Asked again and this leader knows nothing of it: the client's commit
         * never reached it, or a previous leader lost it. Abort for good
         * (the first decision logged wins), then answer the next question. */
        propose_abort2(n, g, txn);
        return;
    }
    /* Before the client's commit: keep it (bounded) until the commit comes. */
    size_t count = 0;
    for (nd_vote *v = g->votes; v; v = v->next)
        count++;
    nd_vote *v = count < 4096 ? calloc(1, sizeof *v) : NULL;
    if (!v)
        return;
    *v = (nd_vote){txn, from, ok, ts, mr_monotonic_ns(), g->votes};
    g->votes = v;
}

/* Participant leader: the coordinator's decision. */
static void on_decision(nd_node *n, nd_group *g, uint64_t txn, uint64_t coord, bool commit,
                        int64_t ts)
{
    nd_prepared *p = prepared_find(g, txn);
    nd_txn *t = txn_find(g, txn);
    if (p) {
        if (t && t->state == TXN_DECIDING)
            return; /* logging it already */
        uint8_t body[17];
        put64(body, txn);
        body[8] = commit ? 1 : 0;
        put64(body + 9, (uint64_t)ts);
        mr_err err;
        if (nd_propose_raw(n, g, 0, ND_OP_DECIDE, body, sizeof body, &err) == MR_OK && t)
            t->state = TXN_DECIDING;
        return;
    }
    if (t && !commit && !txn_sealed(t->state))
        txn_abort(n, g, t, "aborted: the coordinator decided so", NULL);
    if (commit) /* not prepared here, so already decided and logged: say so */
        nd_send_to_group(n, coord, ND_MSG_DECISION, ack_json(txn, coord, g->id));
}

void nd_txn_on_2pc(nd_node *n, const net_message *m)
{
    json_error_t je;
    json_t *o = json_loadb((const char *)m->payload, m->len, 0, &je);
    json_t *jt = json_object_get(o, "txn"), *jg = json_object_get(o, "group");
    nd_group *g = json_is_integer(jg) ? nd_find_group(n, (uint64_t)json_integer_value(jg)) : NULL;
    if (!json_is_integer(jt) || !g || !leads_with_log(n, g)) {
        json_decref(o);
        return; /* not for a leader here (or malformed): the sender retries elsewhere */
    }
    lock_prepared(n, g);
    uint64_t txn = (uint64_t)json_integer_value(jt);
    uint64_t from = (uint64_t)json_integer_value(json_object_get(o, "from"));
    int64_t ts = (int64_t)json_integer_value(json_object_get(o, "ts"));
    if (m->type == ND_MSG_PREPARED)
        on_vote(n, g, txn, from, json_is_true(json_object_get(o, "ok")), ts, false);
    else if (m->type == ND_MSG_TXN_QUERY)
        on_vote(n, g, txn, from, true, ts, true);
    else if (json_is_true(json_object_get(o, "ack")))
        on_ack(g, txn, from);
    else
        on_decision(n, g, txn, (uint64_t)json_integer_value(json_object_get(o, "coord")),
                    json_is_true(json_object_get(o, "commit")), ts);
    json_decref(o);
}

/* A new leader takes the locks of the prepared transactions it inherited
 * (from the log: writes exclusive, reads shared) before serving anyone, and
 * asks their coordinators for the outcome. */
static void lock_prepared(nd_node *n, nd_group *g)
{
    if (!g->locks)
        return;
    for (nd_prepared *p = g->prepared; p; p = p->next) {
        if (txn_find(g, p->txn))
            continue;
        nd_txn *t = calloc(1, sizeof *t);
        mv_write *w = NULL;
        size_t nw = 0;
        int rc = t ? prepared_writes(p, &w, &nw) : MR_ENOMEM;
        if (rc != MR_OK) {
            free(t);
            if (rc == MR_EINVAL)
                continue; /* (checked when it was applied: cannot happen) */
            /* Serving without its locks would let others overwrite what it may commit. */
            mr_err err;
            mr_errf(&err, MR_ENOMEM, "group %llu: out of memory", (unsigned long long)g->id);
            return nd_fatal(n, "taking a prepared transaction's locks", &err);
        }
        t->id = p->txn;
        t->prio = INT64_MIN + 2; /* prepared: older than anyone, and never wounded */
        t->coord = p->coord;
        t->commit_ts = p->ts;
        t->state = TXN_PREPARED;
        t->g = g;
        t->n = n;
        t->last_active = mr_monotonic_ns();
        t->next = g->txns;
        g->txns = t;
        tl_out out = {0};
        mr_err err;
        uint64_t req;
        for (size_t i = 0; i < nw; i++) {
            tl_lock lk = {.mode = TL_EXCLUSIVE, .start = w[i].key, .start_len = w[i].key_len};
            tl_acquire(g->locks, t->id, t->prio, &lk, &req, &out, &err);
        }
        uint32_t slen = get32(p->val + 16);
        const uint8_t *s = p->val + 20, *end = s + slen;
        while (end - s >= 8) {
            uint32_t kl = get32(s);
            if (kl > (size_t)(end - s) - 8)
                break;
            const uint8_t *k = s + 4;
            uint32_t el = get32(s + 4 + kl);
            s += 8 + kl;
            bool point = el == UINT32_MAX;
            if (!point && el > (size_t)(end - s))
                break;
            tl_lock lk = {.mode = TL_SHARED,
                          .range = !point,
                          .start = k,
                          .start_len = kl,
                          .end = point || el == 0 ? NULL : s,
                          .end_len = point ? 0 : el};
            tl_acquire(g->locks, t->id, t->prio, &lk, &req, &out, &err);
            s += point ? 0 : el;
        }
        free(w);
        if (tl_prepare(g->locks, t->id, &err) != MR_OK && tl_known(g->locks, t->id))
            MR_ERROR("node", "group=%llu txn=%llu: prepared locks not all granted: %s",
                     (unsigned long long)g->id, (unsigned long long)t->id, mr_err_msg(&err));
        handle_out(n, g, &out);
        tl_out_free(&out);
        p->last_query = 0; /* ask now */
    }
    g->prepared_locked = true;
}

/* Records a read lock taken here, for PREPARE. False without memory. */
static bool txn_note_span(nd_txn *t, const uint8_t *key, size_t klen, const uint8_t *end)
{
    size_t elen = end ? strlen((const char *)end) : 0;
    size_t need = t->spans_len + 8 + klen + elen;
    if (need > t->spans_cap) {
        size_t cap = need * 2;
        uint8_t *b = realloc(t->spans, cap);
        if (!b)
            return false;
        t->spans = b;
        t->spans_cap = cap;
    }
    uint8_t *p = t->spans + t->spans_len;
    put32(p, (uint32_t)klen);
    memcpy(p + 4, key, klen);
    put32(p + 4 + klen, end ? (uint32_t)elen : UINT32_MAX);
    if (elen)
        memcpy(p + 8 + klen, end, elen);
    t->spans_len = need;
    return true;
}

/* A participant prepares only for a coordinator that exists and lists it: a
 * prepared transaction asks its coordinator until it learns the outcome, so a
 * bad one would hold its locks for ever. */
static bool coordinator_known(const nd_node *n, uint64_t coord, uint64_t self, json_t *jparts)
{
    bool listed_coord = false, listed_self = false;
    size_t i;
    json_t *v;
    json_array_foreach(jparts, i, v)
    {
        listed_coord |= json_is_integer(v) && (uint64_t)json_integer_value(v) == coord;
        listed_self |= json_is_integer(v) && (uint64_t)json_integer_value(v) == self;
    }
    bool data_group = false;
    for (size_t k = 0; k < n->nranges; k++)
        data_group |= n->ranges[k].group == coord;
    return coord && listed_coord && listed_self && data_group;
}

/* The coordinator refuses a commit before it took the participant list: it
 * tells every participant now, so a prepared one does not hold its locks until
 * it asks. */
static void refuse_2pc(nd_node *n, nd_group *g, uint64_t txn, json_t *jparts)
{
    size_t i;
    json_t *v;
    json_array_foreach(jparts, i, v)
    {
        uint64_t to = (uint64_t)json_integer_value(v);
        if (to && to != g->id)
            nd_send_to_group(n, to, ND_MSG_DECISION, decision_json(txn, to, g->id, false, 0));
    }
}

/* The coordinator's leader takes the client's commit: the participant list,
 * and the votes that came first. */
static int coordinate(nd_group *g, nd_txn *t, json_t *jparts, mr_err *err)
{
    uint64_t parts[CO_MAX_PARTS];
    size_t np = json_array_size(jparts);
    if (np > CO_MAX_PARTS)
        return mr_errf(err, MR_EINVAL, "at most %d participant groups", CO_MAX_PARTS);
    for (size_t i = 0; i < np; i++) {
        json_t *v = json_array_get(jparts, i);
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return mr_errf(err, MR_EINVAL, "participants must be group ids");
        parts[i] = (uint64_t)json_integer_value(v);
    }
    free(t->co);
    t->co = malloc(sizeof *t->co);
    if (!t->co)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    int rc = co_init(t->co, g->id, parts, np, err);
    if (rc != MR_OK) {
        free(t->co);
        t->co = NULL;
        return rc;
    }
    for (nd_vote **pv = &g->votes; *pv;) {
        nd_vote *v = *pv;
        if (v->txn == t->id) {
            co_vote(t->co, v->from, v->ok, v->ts);
            *pv = v->next;
            free(v);
        } else {
            pv = &v->next;
        }
    }
    return MR_OK;
}

static bool status_forgotten(nd_node *n, nd_group *g, uint64_t txn, int64_t prio);

/* ND_MSG_TXN {op: "status"} at the coordinator group's leader. prio: the
 * transaction's start time as the client gave it (0 when it gave none). */
static void on_status(nd_node *n, const net_message *m, nd_group *g, uint64_t txn, int64_t prio)
{
    co_decision d;
    if (decision_lookup(g, txn, &d))
        return nd_reply_json(n, m->reply_to,
                             d.commit ? json_pack("{s:b, s:s, s:I}", "ok", 1, "state", "committed",
                                                  "ts", (json_int_t)d.ts)
                                      : json_pack("{s:b, s:s}", "ok", 1, "state", "aborted"));
    nd_txn *t = txn_find(g, txn);
    if (!t && status_forgotten(n, g, txn, prio))
        return nd_reply_json(
            n, m->reply_to,
            json_pack("{s:b, s:s, s:s, s:b}", "ok", 0, "error", "forgotten", "message",
                      "the outcome of this transaction is no longer kept (--decision-retention): "
                      "it cannot be told",
                      "retryable", 0));
    if (!t || (!t->co && t->state == TXN_IDLE)) {
        /* Unknown here (or never committed): make "aborted" the decision. */
        if (t)
            txn_abort(n, g, t, "aborted: the client asked for its status", NULL);
        propose_abort2(n, g, txn);
    }
    nd_reply_json(n, m->reply_to, json_pack("{s:b, s:s}", "ok", 1, "state", "pending"));
}

/* ---- the range a group holds ---- */

/* Does g hold key, or every key of the scan [key, end) ("" = to +infinity)? */
static bool span_in_range(const nd_group *g, const char *key, size_t klen, const char *end)
{
    if (!nd_in_range(g, key, klen))
        return false;
    if (!end || !*g->range_end)
        return true;
    return *end && strcmp(end, g->range_end) <= 0;
}

static void reply_wrong_range(nd_node *n, net_reply_to to, const nd_group *g, const char *key)
{
    char msg[400];
    if (g->range_start)
        snprintf(msg, sizeof msg, "group %llu holds [\"%.100s\", \"%.100s\"), not \"%.100s\"",
                 (unsigned long long)g->id, g->range_start, g->range_end, key);
    else
        snprintf(msg, sizeof msg, "group %llu (meta) holds no user keys",
                 (unsigned long long)g->id);
    nd_reply_json(n, to,
                  json_pack("{s:b, s:s, s:s, s:I}", "ok", 0, "error", "wrong_range", "message", msg,
                            "owner", (json_int_t)nd_group_of_key(n, key, strlen(key))));
}

/* ---- reads at a timestamp (any replica) ---- */

/* A scan's reply is one page: at most `limit` rows and `budget` bytes (at least one row);
 * the first key left out is where the client resumes. */
typedef struct scan_acc {
    json_t *rows;
    size_t n, limit, bytes, budget;
    json_t *resume;
} scan_acc;

#define SCAN_PAGE_FULL 0x5ca7 /* scan_row's stop value (not an MR_E* code) */

/* An upper bound on a string's bytes in the reply: JSON escapes control characters, quotes
 * and backslashes, at most 6 bytes each. */
static size_t json_str_bound(const uint8_t *p, size_t len)
{
    size_t z = 2;
    for (size_t i = 0; i < len; i++)
        z += p[i] < 0x20 || p[i] == '"' || p[i] == '\\' ? 6 : 1;
    return z;
}

static int scan_row(void *arg, const mv_version *v)
{
    scan_acc *a = arg;
    size_t z = 48 + json_str_bound(v->key, v->key_len) + json_str_bound(v->value, v->len);
    if (a->n && (a->n >= a->limit || a->bytes + z > a->budget)) {
        a->resume = json_stringn((const char *)v->key, v->key_len);
        return a->resume ? SCAN_PAGE_FULL : MR_ENOMEM; /* never a silently short scan */
    }
    json_t *row = json_pack("{s:s%, s:s%, s:I}", "key", (const char *)v->key, v->key_len, "value",
                            (const char *)v->value, v->len, "version_ts", (json_int_t)v->ts);
    if (!row || json_array_append_new(a->rows, row) != 0)
        return MR_ENOMEM;
    a->n++;
    a->bytes += z;
    return 0;
}

/* *vis (optional): the newest timestamp the answer depends on. A point read
 * depends on its version (or tombstone); a scan, whose skipped tombstones are
 * not reported, on the read timestamp itself. A scan answers one page (see
 * scan_acc): {rows, more, resume?}. */
static json_t *read_at(nd_group *g, const char *key, const char *end, long limit, int64_t ts,
                       int64_t *vis)
{
    if (vis)
        *vis = ts;
    mr_err err;
    mr_err_clear(&err);
    if (end || limit > 0) {
        size_t budget = nd_reply_max() / 2 < ND_SCAN_BYTES ? nd_reply_max() / 2 : ND_SCAN_BYTES;
        scan_acc a = {.rows = json_array(),
                      .limit = limit > 0 && limit < ND_SCAN_ROWS ? (size_t)limit : ND_SCAN_ROWS,
                      .budget = budget};
        /* Client keys start at "\x01": below live the system records. */
        mv_scan_opts so = {.start = *key ? key : "\x01",
                           .start_len = *key ? strlen(key) : 1,
                           .end = end,
                           .end_len = end ? strlen(end) : 0,
                           .ts = ts};
        uint64_t count = 0;
        int rc = a.rows ? mv_scan(g->mv, &so, scan_row, &a, &count, &err) : MR_ENOMEM;
        if (rc != MR_OK && rc != SCAN_PAGE_FULL) {
            json_decref(a.rows);
            json_decref(a.resume);
            return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", mr_strerror(rc), "message",
                             rc == MR_ENOMEM && !*mr_err_msg(&err) ? "out of memory"
                                                                   : mr_err_msg(&err));
        }
        json_t *o = json_pack("{s:b, s:I, s:o, s:b}", "ok", 1, "read_ts", (json_int_t)ts, "rows",
                              a.rows, "more", a.resume != NULL);
        if (o && a.resume)
            json_object_set_new(o, "resume", a.resume);
        else
            json_decref(a.resume);
        return o;
    }
    return read_key(g, key, strlen(key), ts, true, vis);
}

/* A read at ts may be served once the replica applied every slot up to
 * `need` (ts itself, or at a leader that promised to stamp later writes above
 * ts: the largest stamp it had assigned) and no prepared transaction may
 * still commit at or below ts. */
static bool snap_ready(const nd_group *g, int64_t ts, int64_t need)
{
    return need <= paxos_safe(g) && ts <= tm_safe(g);
}

static void on_read_timer(uv_timer_t *h);
static void serve_snapwaits(nd_node *n, nd_group *g, bool expire);
static int64_t read_need(nd_node *n, nd_group *g, tt_interval now, int64_t ts, bool bounded);

/* Answers whose newest timestamp has not certainly passed (tx_read_visible)
 * wait on a timer, at most about 2 epsilon. */
static void arm_read_timer(nd_node *n, nd_group *g)
{
    int64_t wait = INT64_MAX;
    for (nd_snapwait *w = g->snapwaits; w; w = w->next) {
        int64_t d = w->result  ? tt_wait_ns(n->clock, w->vis)
                    : w->ahead ? w->ts - tt_now(n->clock).latest
                               : 0;
        if (d > 0 && d < wait)
            wait = d;
    }
    if (wait == INT64_MAX || wait > ND_SNAPWAIT_MAX)
        return; /* nothing waits on time alone; apply and the tick serve the rest */
    if (!g->read_timer) {
        g->read_timer = calloc(1, sizeof *g->read_timer);
        if (!g->read_timer)
            return;
        uv_timer_init(n->loop, &g->read_timer->h);
        g->read_timer->n = n;
        g->read_timer->gid = g->id;
    }
    uv_timer_start(&g->read_timer->h, on_read_timer,
                   (uint64_t)((wait + MR_NS_PER_MS - 1) / MR_NS_PER_MS), 0);
}

static void serve_snapwaits(nd_node *n, nd_group *g, bool expire)
{
    if (n->fatal)
        return; /* a slot failed to apply (g->sm.slot is past it): serve nothing more */
    int64_t now = mr_monotonic_ns();
    for (nd_snapwait **p = &g->snapwaits; *p;) {
        nd_snapwait *w = *p;
        tt_interval tnow = tt_now(n->clock);
        if (w->ahead && w->ts <= tnow.latest) {
            w->ahead = false;
            w->need = read_need(n, g, tnow, w->ts, false);
        }
        if (!w->ahead && !w->result && snap_ready(g, w->ts, w->need))
            w->result = read_at(g, w->key, w->end, w->limit, w->ts, &w->vis);
        if (w->result && tx_read_visible(tnow, w->vis)) {
            nd_reply_json(n, w->reply_to, w->result);
            w->result = NULL;
        } else if (!w->result && expire && now > w->deadline) {
            char msg[160];
            snprintf(msg, sizeof msg, "replica's safe time %lld is behind the read at %lld",
                     (long long)safe_time(g), (long long)w->ts);
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

static void on_read_timer(uv_timer_t *h)
{
    nd_read_timer *rt = (nd_read_timer *)h;
    nd_group *g = nd_find_group(rt->n, rt->gid);
    if (!g)
        return;
    serve_snapwaits(rt->n, g, false);
    arm_read_timer(rt->n, g);
}

/* This node leads g with a valid lease and has applied everything its
 * predecessors chose. */
static bool leads_with_log(nd_node *n, nd_group *g)
{
    px_status st;
    px_node_status(g->px, &st);
    return st.state == PX_LEADER && g->last_state == PX_LEADER &&
           px_node_lease_valid(g->px, tt_now(n->clock)) && g->lead_ready;
}

static void propose_safe(nd_node *n, nd_group *g)
{
    mr_err err;
    (void)nd_propose_raw(n, g, 0, ND_OP_SAFE, NULL, 0, &err); /* retried when still idle */
}

/* A follower with a strong read waiting asks the leader for a fresh SAFE
 * record (at most every ND_SAFE_ASK), instead of waiting for the idle one. */
#define ND_SAFE_ASK (2 * MR_NS_PER_MS)
static void ask_for_safe_time(nd_node *n, nd_group *g, bool answered)
{
    int64_t now = mr_monotonic_ns();
    if (!answered && now - g->safe_asked < ND_SAFE_ASK)
        return;
    px_status st;
    px_node_status(g->px, &st);
    if (!st.leader || st.leader > PX_MAX_NODE_ID || st.leader == n->self ||
        !n->peers[st.leader].addr[0])
        return;
    g->safe_asked = now;
    uint8_t msg[12];
    put64(msg, g->id);
    put32(msg + 8, n->self);
    mr_err err;
    net_transport_send(n->tr, n->peers[st.leader].addr, ND_MSG_SAFE_REQ, msg, sizeof msg, &err);
}

/* A follower's request: [u64 group][u32 its node id]. The leader answers with
 * a promise instead of a write (MinNextTS, Spanner §4.2.1): every slot it
 * assigns from now on is stamped above TT.now().latest, so a follower that has
 * applied through the last slot assigned so far may serve reads up to that
 * timestamp (ND_MSG_SAFE_GRANT: [u64 group][i64 ts][u64 slot]). */
void nd_txn_on_safe_request(nd_node *n, const net_message *m)
{
    if (m->len != 8 && m->len != 12)
        return;
    nd_group *g = nd_find_group(n, get64(m->payload));
    if (!g || !leads_with_log(n, g))
        return;
    px_node_id to = m->len == 12 ? get32(m->payload + 8) : 0;
    tt_interval now = tt_now(n->clock);
    px_status st;
    px_node_status(g->px, &st);
    mr_err err;
    if (to >= 1 && to <= PX_MAX_NODE_ID && n->peers[to].addr[0] &&
        px_node_promise(g->px, now, now.latest, &err) == MR_OK) {
        uint8_t msg[24];
        put64(msg, g->id);
        put64(msg + 8, (uint64_t)now.latest);
        /* The follower must have applied every slot that may hold data below
         * the promise: up to the last one with transactional records when
         * none is in flight (SAFE and register slots do not count), else
         * everything assigned. */
        uint64_t slot = st.next_slot ? st.next_slot - 1 : 0;
        if (g->data_inflight == 0 && g->last_data_slot < slot)
            slot = g->last_data_slot;
        put64(msg + 16, slot);
        net_transport_send(n->tr, n->peers[to].addr, ND_MSG_SAFE_GRANT, msg, sizeof msg, &err);
        return;
    }
    /* One SAFE record answers every follower that asked in the meantime. */
    if (mr_monotonic_ns() - g->last_propose > ND_SAFE_ASK / 2)
        propose_safe(n, g);
}

void nd_txn_on_safe_grant(nd_node *n, const net_message *m)
{
    if (m->len != 24)
        return;
    nd_group *g = nd_find_group(n, get64(m->payload));
    if (!g)
        return;
    int64_t ts = (int64_t)get64(m->payload + 8);
    uint64_t slot = get64(m->payload + 16);
    if (ts <= g->grant_ts)
        return;
    g->grant_ts = ts;
    g->grant_slot = slot;
    serve_snapwaits(n, g, false);
    /* Reads that came after the question need a later promise: ask again at
     * once (one question in flight at a time, so no flood). */
    for (nd_snapwait *w = g->snapwaits; w; w = w->next)
        if (w->ts > ts && !w->ahead) {
            ask_for_safe_time(n, g, true);
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
    if (ts > paxos_safe(g) && ts <= now.latest && leads_with_log(n, g) &&
        px_node_promise(g->px, now, ts, &perr) == MR_OK)
        return st.last_ts < ts ? st.last_ts : ts;
    if (ts > paxos_safe(g) && !bounded)
        ask_for_safe_time(n, g, false);
    return ts;
}

static void on_snapread(nd_node *n, const net_message *m, json_t *o)
{
    nd_snap_req rq;
    mr_err verr;
    if (nd_valid_snapread(o, &rq, &verr) != MR_OK)
        return nd_reply_error(n, m->reply_to, "invalid", mr_err_msg(&verr));
    const char *key = rq.key, *end = rq.end;
    long limit = (long)rq.limit;
    nd_group *g = nd_find_group(n, rq.group);
    if (!g)
        return nd_reply_error(n, m->reply_to, "no_group",
                              "this node holds no replica of the group");
    /* The meta group's records are readable for inspection; data groups
     * answer only for their range. */
    if (g->id != ND_META_GROUP && !span_in_range(g, key, strlen(key), end))
        return reply_wrong_range(n, m->reply_to, g, key);
    tt_interval now = tt_now(n->clock);
    int64_t ts;
    if (rq.mode == ND_READ_AT) {
        if (nd_valid_read_ts(rq.ts, now.latest, &verr) != MR_OK)
            return nd_reply_error(n, m->reply_to, "invalid", mr_err_msg(&verr));
        ts = rq.ts;
    } else if (rq.mode == ND_READ_EXACT) {
        ts = now.latest - rq.staleness;
    } else if (rq.mode == ND_READ_BOUNDED) {
        /* Bounded staleness: this replica's safe time, no waiting, if fresh enough. */
        int64_t safe = safe_time(g);
        if (safe < now.latest - rq.staleness) {
            char msg[160];
            snprintf(msg, sizeof msg, "replica's safe time is %.3f s old",
                     (double)(now.latest - safe) / 1e9);
            return nd_reply_json(n, m->reply_to,
                                 json_pack("{s:b, s:s, s:s, s:b}", "ok", 0, "error", "behind",
                                           "message", msg, "retryable", 1));
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
    json_t *result = NULL;
    int64_t vis = 0;
    if ((!ahead && snap_ready(g, ts, need)) || nd_test_break(n, ND_BREAK_NO_SAFE_WAIT)) {
        result = read_at(g, key, end, limit, ts, &vis);
        if (tx_read_visible(now, vis) || nd_test_break(n, ND_BREAK_NO_SAFE_WAIT))
            return nd_reply_json(n, m->reply_to, result);
    }
    nd_snapwait *w = calloc(1, sizeof *w);
    if (!w || !(w->key = strdup(key)) || (end && !(w->end = strdup(end)))) {
        if (w)
            snapwait_free(w);
        json_decref(result);
        return nd_reply_error(n, m->reply_to, "nomem", "out of memory");
    }
    w->reply_to = m->reply_to;
    w->ts = ts;
    w->need = need;
    w->ahead = ahead;
    w->result = result;
    w->vis = vis;
    w->deadline = mr_monotonic_ns() + (ahead ? ts - now.latest : 0) + ND_SNAPWAIT_MAX;
    w->limit = limit;
    w->next = g->snapwaits;
    g->snapwaits = w;
    arm_read_timer(n, g);
}

/* ---- read-write transactions (leader) ---- */

static void on_txn(nd_node *n, const net_message *m, json_t *o)
{
    /* Every field checked before anything here acts on it (nd_validate.h): ids outside the
     * cluster's own, ages within the client window, keys and values every replica can store. */
    nd_txn_req rq;
    mr_err err;
    if (nd_valid_txn(o, mr_realtime_ns(), &rq, &err) != MR_OK)
        return nd_reply_error(n, m->reply_to, "invalid", mr_err_msg(&err));
    nd_group *g = nd_find_group(n, rq.group);
    if (!g)
        return nd_reply_error(n, m->reply_to, "no_group",
                              "this node holds no replica of the group");
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
    if (g->last_state != PX_LEADER || !g->lead_ready)
        return nd_reply_json(n, m->reply_to,
                             json_pack("{s:b, s:s, s:s, s:b}", "ok", 0, "error", "aborted",
                                       "message", "new leader still applying its predecessors' log",
                                       "retryable", 1));
    uint64_t id = rq.txn;
    int64_t prio = rq.prio;
    /* Inherited prepared transactions hold their locks before anyone is served. */
    if (!g->prepared_locked)
        lock_prepared(n, g);
    if (n->fatal)
        return;
    if (rq.op == ND_TXN_STATUS)
        return on_status(n, m, g, id, rq.prio);
    nd_txn *t = txn_find(g, id);
    /* A commit spanning groups (two-phase commit) names its coordinator. */
    bool commit = rq.op == ND_TXN_COMMIT;
    json_t *jparts = rq.participants;
    uint64_t coord = commit && json_array_size(jparts) > 1 ? rq.coordinator : 0;
    if (commit && json_array_size(jparts) > 1 && !coordinator_known(n, coord, g->id, jparts))
        return nd_reply_error(n, m->reply_to, "invalid",
                              "a commit with several participants needs a coordinator: a data "
                              "group among them, this one included");
    /* Reads take locks at the leader that served them. A commit for a
     * transaction that read elsewhere (a previous leader, or before this
     * leader's term) has lost its read locks: abort it. */
    if (commit && rq.nreads > 0 && (!t || t->nreads != rq.nreads)) {
        if (coord && coord != g->id)
            send_vote(n, g, id, coord, false, 0);
        else if (coord == g->id)
            refuse_2pc(n, g, id, jparts);
        return nd_reply_json(n, m->reply_to,
                             aborted_json("the reads' locks were lost (leadership moved)"));
    }
    if (t && t->has_reply)
        return nd_reply_error(n, m->reply_to, "busy", "the transaction has a request in flight");
    if (commit && coord && coord != g->id && prepared_find(g, id))
        return nd_reply_json(n, m->reply_to,
                             json_pack("{s:b, s:b, s:I, s:I}", "ok", 1, "prepared", 1, "ts",
                                       (json_int_t)prepared_find(g, id)->ts, "group",
                                       (json_int_t)g->id));
    co_decision dec;
    if (commit && coord == g->id && decision_lookup(g, id, &dec))
        return nd_reply_json(n, m->reply_to,
                             dec.commit ? json_pack("{s:b, s:I, s:I}", "ok", 1, "ts",
                                                    (json_int_t)dec.ts, "group", (json_int_t)g->id)
                                        : aborted_json("the transaction was aborted"));
    /* A tablet about to split takes no new transactions (nd_split.c): the
     * running ones end first, so none holds locks across the split. */
    if (!t && g->split_state >= ND_SPLIT_BARRIER && rq.op != ND_TXN_ABORT) {
        if (commit && coord && coord != g->id)
            send_vote(n, g, id, coord, false, 0);
        else if (commit && coord == g->id)
            refuse_2pc(n, g, id, jparts);
        return nd_reply_json(n, m->reply_to, aborted_json("the tablet is splitting; retry"));
    }
    if (rq.op == ND_TXN_ABORT) {
        if (t) {
            if (txn_sealed(t->state))
                return nd_reply_error(n, m->reply_to, "committing", "too late to abort");
            t->reply_to = m->reply_to;
            t->has_reply = true;
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
    if (coord && !txn_sealed(t->state))
        t->coord = coord;
    if (t->wounded || tl_state(g->locks, id) == TL_WOUNDED_STATE) {
        if (coord == g->id)
            refuse_2pc(n, g, id, jparts);
        return txn_abort(n, g, t, "wounded by an older transaction", NULL);
    }
    if (t->state != TXN_IDLE)
        return txn_invalid(n, t, "the transaction is committing");
    tl_out out = {0};
    if (rq.op == ND_TXN_READ) {
        if (!span_in_range(g, rq.key, rq.klen, rq.end)) {
            t->has_reply = false;
            return reply_wrong_range(n, m->reply_to, g, rq.key);
        }
        free(t->key);
        free(t->end);
        t->klen = rq.klen;
        t->key = malloc(t->klen + 1);
        /* With "end": a scan of [key, end) ("" = to the end of the range)
         * under a shared range lock, so no other transaction can insert into
         * the range (no phantoms). */
        t->end = rq.end ? (uint8_t *)strdup(rq.end) : NULL;
        t->limit = (long)rq.limit;
        if (!t->key || (rq.end && !t->end)) {
            free(t->key);
            free(t->end);
            t->key = t->end = NULL;
            t->klen = 0;
            return txn_reply(n, t,
                             json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "nomem", "message",
                                       "out of memory"));
        }
        memcpy(t->key, rq.key, t->klen + 1);
        tl_lock lk = {.mode = TL_SHARED,
                      .range = t->end != NULL,
                      .start = t->key,
                      .start_len = t->klen,
                      .end = t->end && *t->end ? t->end : NULL,
                      .end_len = t->end ? strlen((char *)t->end) : 0};
        uint64_t req;
        /* MERIDIAN_TEST_BREAK=no-read-locks (negative control): read unlocked. */
        int r = nd_test_break(n, ND_BREAK_NO_READ_LOCKS)
                    ? TL_GRANTED
                    : tl_acquire(g->locks, id, prio, &lk, &req, &out, &err);
        t->nreads++;
        /* A read lock PREPARE does not carry would not be taken again by a new leader. */
        if ((r == TL_GRANTED || r == TL_WAIT) && !txn_note_span(t, t->key, t->klen, t->end)) {
            txn_abort(n, g, t, "out of memory", &out);
        } else if (r == TL_GRANTED) {
            txn_reply(n, t, txn_read(g, t));
        } else if (r == TL_WAIT) {
            t->state = TXN_READ_WAIT;
        } else if (r == TL_WOUNDED) {
            txn_abort(n, g, t, "wounded by an older transaction", &out);
        } else {
            txn_invalid(n, t, mr_err_msg(&err));
        }
    } else {
        json_t *writes = rq.writes;
        size_t wi;
        json_t *wr;
        json_array_foreach(writes, wi, wr)
        {
            json_t *k = json_object_get(wr, "key");
            if (!nd_in_range(g, json_string_value(k), json_string_length(k))) {
                t->has_reply = false;
                return reply_wrong_range(n, m->reply_to, g, json_string_value(k));
            }
        }
        free(t->body);
        t->body = NULL;
        if (encode_writes(id, writes, &t->body, &t->blen, &err) != MR_OK) {
            txn_invalid(n, t, mr_err_msg(&err));
        } else if (coord == g->id && coordinate(g, t, jparts, &err) != MR_OK) {
            txn_invalid(n, t, mr_err_msg(&err));
        } else {
            t->commit_at = mr_monotonic_ns();
            if (!lock_writes(g, t, writes, &out))
                txn_abort(n, g, t, "wounded by an older transaction", &out);
            else if (t->locks_pending == 0)
                txn_locked(n, g, t);
        }
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

/* ---- collecting decisions ----
 *
 * A decision row ("\0d/<txn>": a single-group commit, a coordinator's COMMIT2 or ABORT2) is
 * what answers {op: status} and a prepared participant's question. It cannot be kept for ever
 * (one row per transaction), so it is collected once nobody may still ask:
 *
 * - a participant asks only while prepared, so an abort, or a single-group commit (no
 *   participants), may go once the retention R (--decision-retention) has passed since it was
 *   made; a two-phase commit only after every participant acknowledged it after that (its
 *   leader asks again: forget_step confirms it like a first delivery), so none is prepared;
 * - a client asks after it lost a commit's answer: libmeridian for at most its timeout, the
 *   CLI for a few seconds. R (default 10 min) is far longer.
 *
 * The leader proposes FORGET [cutoff = TT.now().earliest - R][txn ids]; every replica deletes
 * (writes a tombstone over) each listed decision still there and made at or before the cutoff,
 * so every replica forgets the same rows at the same slot. MVCC GC removes the tombstone and
 * the row after --retention. Until then the tombstone says "decided, then forgotten": no second
 * decision is logged for it (stage_record), a status question gets "forgotten", a prepared
 * participant's question gets "aborted" (only an abort can leave one prepared). Afterwards the
 * transaction is unknown again; a status question then aborts it only when its prio (start
 * time) is less than R/2 old, so its decision, made after it started, cannot have been
 * collected yet (R/2 is left for a client clock running ahead); an older or prio-less
 * question gets "forgotten". A participant partitioned away for longer than R plus
 * --retention asks about an abort (commits wait for it): logging ABORT2 again is the truth. */
#define ND_FORGET_EVERY (250 * MR_NS_PER_MS) /* a collection step */
#define ND_FORGET_SCAN  1024                 /* decision rows looked at per step, at least */
#define ND_FORGET_MAX   4096                 /* decisions per FORGET record */
#define ND_CONFIRM_MAX  1024                 /* commit decisions being confirmed at once */

static int count_row(void *arg, const mv_version *v)
{
    (void)arg;
    (void)v;
    return 0;
}

/* The live decision rows, counted at open and after a snapshot (then kept by applies). */
static void count_decisions(nd_group *g)
{
    char start[3] = {0, 'd', '/'}, end[3] = {0, 'd', '0'};
    mv_scan_opts so = {.start = start, .start_len = 3, .end = end, .end_len = 3, .ts = MV_TS_MAX};
    uint64_t count = 0;
    mr_err err;
    if (mv_scan(g->mv, &so, count_row, NULL, &count, &err) != MR_OK)
        MR_ERROR("node", "group=%llu: cannot count decisions: %s", (unsigned long long)g->id,
                 mr_err_msg(&err));
    g->decisions = count;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Does an earlier FORGET record of the slot delete txn's decision? */
static bool forgot_in(const rec_effect *fx, size_t n, uint64_t txn)
{
    for (size_t i = 0; i < n; i++)
        if (fx[i].kind == ND_OP_FORGET && !fx[i].skipped &&
            bsearch(&txn, fx[i].forgot, fx[i].nforgot, sizeof txn, cmp_u64))
            return true;
    return false;
}

/* FORGET [u64 0][i64 cutoff][u32 n][n x u64 txn] into the slot's batch: a tombstone at ts for
 * every listed decision still live and made at or before cutoff. False: nothing to do. */
static bool stage_forget(nd_group *g, apply_acc *a, rec_effect *fx, size_t i, int64_t ts,
                         const uint8_t *b, size_t bl)
{
    if (bl < 20)
        return false;
    int64_t cutoff = (int64_t)get64(b + 8);
    uint32_t cnt = get32(b + 16);
    if (cnt == 0 || cnt > ND_FORGET_MAX || bl != 20 + 8 * (size_t)cnt || cutoff >= ts)
        return false;
    uint64_t *ids = malloc(cnt * sizeof *ids);
    mv_write *w = calloc(cnt, sizeof *w);
    char *keys = malloc((size_t)cnt * SYS_KEY_LEN);
    size_t m = 0;
    if (ids && w && keys) {
        for (uint32_t k = 0; k < cnt; k++)
            ids[k] = get64(b + 20 + 8 * (size_t)k);
        qsort(ids, cnt, sizeof *ids, cmp_u64);
        for (uint32_t k = 0; k < cnt; k++) {
            uint64_t txn = ids[k];
            co_decision d;
            if ((m && ids[m - 1] == txn) || !decision_lookup(g, txn, &d) || d.ts > cutoff ||
                forgot_in(fx, i, txn))
                continue;
            ids[m] = txn;
            sys_key(keys + m * SYS_KEY_LEN, 'd', txn);
            w[m] =
                (mv_write){.op = MV_DELETE, .key = keys + m * SYS_KEY_LEN, .key_len = SYS_KEY_LEN};
            m++;
        }
    }
    if (m == 0) {
        free(ids);
        free(w);
        free(keys);
        return false;
    }
    a->owned[a->nowned++] = w;
    a->bufs[i] = (uint8_t *)keys;
    a->txns[a->nt++] = (mv_txn){.commit_ts = ts, .w = w, .n = m};
    fx[i].forgot = ids;
    fx[i].nforgot = m;
    return true;
}

/* The slot's records are in the store (not a replay): the decision rows they added or removed. */
static void decisions_applied(nd_group *g, const rec_effect *fx, size_t nrec)
{
    for (size_t i = 0; i < nrec; i++) {
        if (fx[i].skipped)
            continue;
        if (fx[i].kind == ND_OP_TXN || fx[i].kind == ND_OP_COMMIT2 || fx[i].kind == ND_OP_ABORT2)
            g->decisions++;
        else if (fx[i].kind == ND_OP_FORGET) {
            g->decisions -= fx[i].nforgot < g->decisions ? fx[i].nforgot : g->decisions;
            g->forgotten += fx[i].nforgot;
        }
    }
}

/* Coordinator leader: every participant acknowledged txn's commit again (a confirmation). */
static void forget_ready_add(nd_group *g, uint64_t txn)
{
    if (g->nforget_ready == g->cap_forget_ready) {
        size_t cap = g->cap_forget_ready ? 2 * g->cap_forget_ready : 256;
        uint64_t *p = cap <= 4 * ND_CONFIRM_MAX ? realloc(g->forget_ready, cap * sizeof *p) : NULL;
        if (!p)
            return; /* confirmed again on a later pass */
        g->forget_ready = p;
        g->cap_forget_ready = cap;
    }
    g->forget_ready[g->nforget_ready++] = txn;
}

/* A status question about a transaction this leader does not know: was its decision (if any)
 * possibly collected? See the top of this section. */
static bool status_forgotten(nd_node *n, nd_group *g, uint64_t txn, int64_t prio)
{
    if (decision_forgotten(g, txn))
        return true;
    if (prio == 0)
        return true; /* no start time: it cannot be told from a collected one */
    return prio < tt_now(n->clock).earliest - n->decision_retention_ns / 2;
}

/* Coordinator leader: asks every other participant to acknowledge txn's commit again (as a
 * first delivery does: resent until acknowledged, or given up and asked on a later pass). */
static bool confirm_decision(nd_node *n, nd_group *g, uint64_t txn, const co_decision *d,
                             int64_t now)
{
    for (nd_delivery *x = g->delivering; x; x = x->next)
        if (x->txn == txn)
            return false; /* being delivered, or confirmed already */
    nd_delivery *x = calloc(1, sizeof *x);
    if (!x)
        return false;
    x->txn = txn;
    x->d = *d;
    x->confirm = true;
    for (uint32_t i = 0; i < d->nparts; i++) {
        if (d->parts[i] == g->id)
            x->acked |= 1ull << i;
        else
            nd_send_to_group(n, d->parts[i], ND_MSG_DECISION,
                             decision_json(txn, d->parts[i], g->id, true, d->ts));
    }
    x->next_send = now + ND_DELIVER_EVERY;
    x->next = g->delivering;
    g->delivering = x;
    return true;
}

typedef struct forget_scan {
    nd_node *n;
    nd_group *g;
    int64_t cutoff, now;
    uint64_t *ids; /* decisions to collect now */
    size_t nids, cap;
    size_t confirming; /* confirmations in flight */
    uint64_t last;     /* the last txn looked at */
} forget_scan;

static int forget_row(void *arg, const mv_version *v)
{
    forget_scan *f = arg;
    if (v->key_len != SYS_KEY_LEN)
        return 0;
    char hex[17];
    memcpy(hex, (const char *)v->key + 3, 16);
    hex[16] = 0;
    uint64_t txn = strtoull(hex, NULL, 16);
    f->last = txn;
    co_decision d;
    mr_err err;
    if (co_decision_decode(v->value, v->len, &d, &err) != MR_OK || d.ts > f->cutoff)
        return 0;
    if (!d.commit || d.nparts == 0) {
        if (f->nids < f->cap) /* the step's budget: never more rows than that */
            f->ids[f->nids++] = txn;
    } else if (f->confirming < ND_CONFIRM_MAX && confirm_decision(f->n, f->g, txn, &d, f->now)) {
        f->confirming++;
    }
    return 0;
}

/* Coordinator leader, every ND_FORGET_EVERY: looks at the next decision rows (a cursor over the
 * txn ids, so a pass over them all takes at most 16 steps, 4 s: a decision goes at most that
 * long after its retention), and proposes FORGET for those past the retention that nobody can
 * ask about any more. */
static void forget_step(nd_node *n, nd_group *g, int64_t now)
{
    if (now - g->last_forget < ND_FORGET_EVERY || g->split_state != ND_SPLIT_IDLE)
        return;
    g->last_forget = now;
    if (!g->decisions && !g->nforget_ready)
        return;
    uint64_t budget = g->decisions / 16 > ND_FORGET_SCAN ? g->decisions / 16 : ND_FORGET_SCAN;
    forget_scan f = {.n = n,
                     .g = g,
                     .cutoff = tt_now(n->clock).earliest - n->decision_retention_ns,
                     .now = now,
                     .cap = budget};
    for (nd_delivery *x = g->delivering; x; x = x->next)
        f.confirming += x->confirm;
    f.ids = malloc((budget + g->nforget_ready) * sizeof *f.ids);
    if (!f.ids)
        return;
    char start[SYS_KEY_LEN], end[3] = {0, 'd', '0'};
    sys_key(start, 'd', g->forget_cursor);
    mv_scan_opts so = {.start = start,
                       .start_len = SYS_KEY_LEN,
                       .end = end,
                       .end_len = 3,
                       .ts = MV_TS_MAX,
                       .limit = budget};
    uint64_t seen = 0;
    mr_err err;
    if (mv_scan(g->mv, &so, forget_row, &f, &seen, &err) != MR_OK) {
        MR_WARN("node", "group=%llu: collecting decisions: %s", (unsigned long long)g->id,
                mr_err_msg(&err));
        seen = 0;
    }
    /* Start over after the last row (or the largest id). */
    g->forget_cursor = seen < budget || f.last == UINT64_MAX ? 0 : f.last + 1;
    if (g->nforget_ready)
        memcpy(f.ids + f.nids, g->forget_ready, g->nforget_ready * sizeof *f.ids);
    f.nids += g->nforget_ready;
    g->nforget_ready = 0;
    for (size_t off = 0; off < f.nids; off += ND_FORGET_MAX) {
        size_t cnt = f.nids - off < ND_FORGET_MAX ? f.nids - off : ND_FORGET_MAX;
        uint8_t *body = malloc(20 + 8 * cnt);
        if (!body)
            break;
        put64(body, 0);
        put64(body + 8, (uint64_t)f.cutoff);
        put32(body + 16, (uint32_t)cnt);
        for (size_t k = 0; k < cnt; k++)
            put64(body + 20 + 8 * k, f.ids[off + k]);
        (void)nd_propose_raw(n, g, 0, ND_OP_FORGET, body, 20 + 8 * cnt, &err); /* next pass */
        free(body);
    }
    free(f.ids);
}

void nd_txn_store_json(nd_group *g, json_t *ge)
{
    json_object_set_new(ge, "decisions", json_integer((json_int_t)g->decisions));
    json_object_set_new(ge, "forgotten", json_integer((json_int_t)g->forgotten));
    mv_size all, data;
    mv_page_stats ps;
    mr_err err;
    mv_size_estimate(g->mv, &all);
    if (mv_size_data(g->mv, &data, &err) == MR_OK) {
        json_object_set_new(ge, "system_versions",
                            json_integer((json_int_t)(all.versions - data.versions)));
        json_object_set_new(ge, "system_bytes", json_integer((json_int_t)(all.bytes - data.bytes)));
    }
    if (mv_pages(g->mv, &ps, &err) == MR_OK) {
        json_object_set_new(ge, "pages", json_integer((json_int_t)ps.pages));
        json_object_set_new(ge, "free_pages", json_integer((json_int_t)ps.free_pages));
        json_object_set_new(ge, "page_size", json_integer((json_int_t)ps.page_size));
    }
}

void nd_txn_store_metrics(nd_node *n, nd_text *t)
{
    nd_text_printf(t, "# HELP meridian_group_decision_rows Transaction decisions kept (status "
                      "answers), per group.\n# TYPE meridian_group_decision_rows gauge\n");
    for (size_t i = 0; i < n->ngroups; i++)
        nd_text_printf(t, "meridian_group_decision_rows{group=\"%llu\"} %llu\n",
                       (unsigned long long)n->groups[i]->id,
                       (unsigned long long)n->groups[i]->decisions);
    nd_text_printf(t, "# HELP meridian_group_decisions_forgotten_total Decisions collected past "
                      "--decision-retention.\n"
                      "# TYPE meridian_group_decisions_forgotten_total counter\n");
    for (size_t i = 0; i < n->ngroups; i++)
        nd_text_printf(t, "meridian_group_decisions_forgotten_total{group=\"%llu\"} %llu\n",
                       (unsigned long long)n->groups[i]->id,
                       (unsigned long long)n->groups[i]->forgotten);
    nd_text_printf(t, "# HELP meridian_group_store_bytes Bytes of the tablet's SQLite file in "
                      "use (pages less free pages).\n# TYPE meridian_group_store_bytes gauge\n");
    for (size_t i = 0; i < n->ngroups; i++) {
        mv_page_stats ps;
        mr_err err;
        if (mv_pages(n->groups[i]->mv, &ps, &err) == MR_OK)
            nd_text_printf(t, "meridian_group_store_bytes{group=\"%llu\"} %lld\n",
                           (unsigned long long)n->groups[i]->id,
                           (long long)((ps.pages - ps.free_pages) * ps.page_size));
    }
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
    /* a system id: no client's has bit 62 set (nd_validate.h) */
    if (nd_txn_system_write(n, g, ND_TXN_SYSTEM | g->id, writes) == MR_OK)
        MR_INFO("node", "meta group: recording the cluster's nodes and groups");
    json_decref(writes);
}

int nd_txn_system_write(nd_node *n, nd_group *g, uint64_t id, json_t *writes)
{
    if (!(id & ND_TXN_SYSTEM))
        return MR_EINVAL; /* a client's id */
    mr_err err;
    nd_txn *t = calloc(1, sizeof *t);
    if (!t || encode_writes(id, writes, &t->body, &t->blen, &err) != MR_OK) {
        free(t);
        return MR_EINVAL;
    }
    t->id = id;
    t->prio = INT64_MIN + 1; /* older than any client transaction */
    t->g = g;
    t->n = n;
    t->next = g->txns;
    g->txns = t;
    tl_out out = {0};
    lock_writes(g, t, writes, &out); /* the oldest transaction there is: never wounded */
    if (t->locks_pending == 0)
        txn_locked(n, g, t);
    handle_out(n, g, &out);
    tl_out_free(&out);
    return MR_OK;
}

bool nd_txn_leads(nd_node *n, nd_group *g)
{
    return leads_with_log(n, g);
}

bool nd_txn_known(nd_group *g, uint64_t id)
{
    return txn_find(g, id) != NULL;
}

void nd_txn_abort_open(nd_node *n, nd_group *g, const char *why)
{
    /* From the top each time: an abort's lock releases may end others. */
    for (;;) {
        nd_txn *t = g->txns;
        while (t && (txn_sealed(t->state) || t->prio == INT64_MIN + 1))
            t = t->next;
        if (!t)
            return;
        txn_abort(n, g, t, why, NULL);
    }
}

/* Old versions go once no read may need them: every replica collects, a
 * bounded step every ND_GC_EVERY, below TT.now().earliest - retention (reads
 * below that horizon fail with MR_ESTALE, never a wrong answer). A step that
 * did not finish its pass is followed by the next one after ND_GC_AGAIN, so
 * collection keeps up with writes (ND_GC_STEP versions per ND_GC_AGAIN, 100k/s)
 * instead of falling behind at 4k/s, while never holding the loop long. */
#define ND_GC_EVERY (5 * MR_NS_PER_S)
#define ND_GC_AGAIN (100 * MR_NS_PER_MS)
#define ND_GC_STEP  10000
static void gc_step(nd_node *n, nd_group *g, int64_t now)
{
    if (now - g->last_gc < (g->gc_busy ? ND_GC_AGAIN : ND_GC_EVERY))
        return;
    g->last_gc = now;
    /* Never above what this replica applied: a lagging replica must still
     * apply the entries it has not seen, whose timestamps are above it. */
    int64_t horizon = tx_gc_horizon(tt_now(n->clock), n->retention_ns, safe_time(g));
    if (horizon <= mv_horizon(g->mv))
        return;
    mv_gc_result res;
    mr_err err;
    g->gc_busy = false;
    if (mv_gc(g->mv, horizon, ND_GC_STEP, &res, &err) != MR_OK)
        MR_WARN("node", "group=%llu gc: %s", (unsigned long long)g->id, mr_err_msg(&err));
    else
        g->gc_busy = !res.pass_done;
}

static void forget_step(nd_node *n, nd_group *g, int64_t now);

/* The leader's periodic two-phase commit duties: ask about prepared
 * transactions without a decision, resend unacknowledged commit decisions,
 * forget early votes whose commit never came. */
static void tick_2pc(nd_node *n, nd_group *g, int64_t now)
{
    if (!g->prepared_locked)
        lock_prepared(n, g);
    for (nd_prepared *p = g->prepared; p; p = p->next) {
        nd_txn *t = txn_find(g, p->txn);
        if ((t && t->state == TXN_DECIDING) || now - p->last_query < ND_QUERY_EVERY)
            continue;
        p->last_query = now;
        nd_send_to_group(n, p->coord, ND_MSG_TXN_QUERY,
                         json_pack("{s:I, s:I, s:I, s:I}", "txn", (json_int_t)p->txn, "group",
                                   (json_int_t)p->coord, "from", (json_int_t)g->id, "ts",
                                   (json_int_t)p->ts));
    }
    for (nd_delivery **pd = &g->delivering; *pd;) {
        nd_delivery *d = *pd;
        if (now < d->next_send) {
            pd = &d->next;
            continue;
        }
        if (++d->tries > 20) { /* the participants will ask */
            *pd = d->next;
            free(d);
            continue;
        }
        d->next_send = now + ND_DELIVER_EVERY;
        for (uint32_t i = 0; i < d->d.nparts; i++)
            if (!(d->acked & (1ull << i)))
                nd_send_to_group(n, d->d.parts[i], ND_MSG_DECISION,
                                 decision_json(d->txn, d->d.parts[i], g->id, true, d->d.ts));
        pd = &d->next;
    }
    for (nd_vote **pv = &g->votes; *pv;) {
        nd_vote *v = *pv;
        if (now - v->at > 30 * MR_NS_PER_S) {
            *pv = v->next;
            free(v);
        } else {
            pv = &v->next;
        }
    }
}

void nd_txn_tick(nd_node *n, nd_group *g)
{
    int64_t now = mr_monotonic_ns();
    serve_snapwaits(n, g, true);
    if (g->snapwaits)
        ask_for_safe_time(n, g, false); /* in case a question or its answer was lost */
    commit_wait_ticks(n, g);
    gc_step(n, g, now);
    px_status st;
    px_node_status(g->px, &st);
    if (st.state != PX_LEADER)
        return;
    /* Transactions whose client vanished never hold locks for ever, nor does
     * a two-phase commit whose votes do not come. */
    for (nd_txn *t = g->txns, *next; t; t = next) {
        next = t->next;
        if (t->state == TXN_IDLE && now - t->last_active > ND_TXN_IDLE)
            txn_abort(n, g, t, "the client went silent", NULL);
        else if (t->coord && (t->state == TXN_LOCKING || t->state == TXN_VOTING) &&
                 now - t->commit_at > ND_VOTE_TIMEOUT)
            txn_abort(n, g, t, "two-phase commit timed out waiting for the participants", NULL);
    }
    if (leads_with_log(n, g)) {
        forget_step(n, g, now);
        tick_2pc(n, g, now);
    }
    /* A new leader settles its predecessors' log with a record of its own
     * (see nd_group.lead_ready), retried if it was lost or voided. */
    if (!g->lead_ready && now - g->lead_asked > 100 * MR_NS_PER_MS &&
        px_node_lease_valid(g->px, tt_now(n->clock))) {
        mr_err err;
        g->lead_asked = now;
        g->lead_seq = ++n->next_seq;
        (void)nd_propose_raw(n, g, g->lead_seq, ND_OP_SAFE, NULL, 0, &err);
    }
    /* An idle leader moves safe time forward so followers can serve fresh reads. */
    if (now - g->last_propose > ND_SAFE_IDLE && px_node_lease_valid(g->px, tt_now(n->clock)))
        propose_safe(n, g);
    if (g->id == ND_META_GROUP && !g->meta_checked && leads_with_log(n, g))
        record_cluster(n, g);
}

void nd_txn_voided(nd_node *n, nd_group *g, uint8_t kind, uint64_t id)
{
    nd_txn *t = txn_find(g, id);
    if (!t)
        return;
    if ((kind == ND_OP_TXN || kind == ND_OP_COMMIT2) && t->state == TXN_COMMITTING)
        txn_abort(n, g, t, "the commit record was voided (it would have gone back in time)", NULL);
    else if (kind == ND_OP_PREPARE && t->state == TXN_PREPARING)
        txn_abort(n, g, t, "the prepare record was voided (it would have gone back in time)", NULL);
    else if (kind == ND_OP_DECIDE && t->state == TXN_DECIDING)
        t->state = TXN_PREPARED; /* the coordinator resends, or we ask again */
}

void nd_txn_reloaded(nd_node *n, nd_group *g)
{
    mr_err err;
    if (load_prepared(g, &err) != MR_OK)
        nd_fatal(n, "reloading a tablet", &err);
    count_decisions(g);
    if (raise_floor_from_store(g, &err) != MR_OK)
        nd_fatal(n, "loading a snapshot", &err);
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
        if (t->state == TXN_COMMITTING || t->state == TXN_PREPARING)
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
    g->prepared_locked = false;
    votes_clear(g);
    deliveries_clear(g);
    g->nforget_ready = 0; /* the next leader asks again */
    g->forget_cursor = 0;
}

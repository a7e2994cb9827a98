/* Transactions (Spanner §4.1-4.2 from the client's side; the requests are
 * TxnRequest and SnapReadRequest of proto/meridian.proto):
 *
 * - Read-write: reads go to the leader of the key's group and take shared
 *   locks there; writes wait in the write buffer (read back by later reads);
 *   commit sends each group its writes and the number of reads it served
 *   (a leader that lost the read locks aborts), in one request when one group
 *   is involved, else to every participant leader at once for two-phase
 *   commit, the coordinator's answer being the outcome.
 * - Read-only: snapshot reads without locks. The first read picks the
 *   timestamp (strong: the leader's; staleness: the replica's), every later
 *   read, at any group, carries it.
 *
 * A read whose fate is uncertain (no answer) fails the transaction: the
 * leader may have counted it, and a commit with a count the leader does not
 * share would be refused anyway. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "client/mer_int.h"
#include "common/mr_log.h"
#include "common/mr_util.h"
#include "net/frame.h"

/* Scans start here when asked from the first key: no client key is empty or
 * starts with byte 0, so none sorts before it. */
#define MER_KEY_BOTTOM "\x01"
/* Transaction ids a client may choose: 1..2^62-1 (TxnRequest.txn; larger ids
 * are the cluster's own). */
#define MER_TXN_ID_MAX ((1ull << 62) - 1)
/* Attempts of one read or commit when the range map turns out stale. */
#define MER_REROUTES 4
/* read_once for a scan page: the map was stale and is refreshed; split the
 * rest of the scan over the new ranges (internal, never returned to users). */
#define MER_REROUTE (-1)

/* ---- the handle ---- */

static bool txn_ok(const meridian_txn *t)
{
    return t && t->magic == MER_TXN_MAGIC && t->db;
}

/* A group said t was wounded there (mer_txn_wounded): the failure every later call of t,
 * and the read or commit its own abort ended, reports. */
static int wounded_fail(meridian_txn *t)
{
    return mer_fail(t->db, MERIDIAN_ABORTED, "wounded by an older transaction (group %llu said so)",
                    (unsigned long long)t->wounded_at);
}

/* The state check at the top of every operation on t. */
static int txn_usable(meridian_txn *t)
{
    if (!txn_ok(t))
        return MERIDIAN_INVALID;
    mer_clear(t->db);
    if (t->state == MER_TXN_DONE)
        return mer_fail(t->db, MERIDIAN_INVALID, "the transaction is finished");
    if (t->state == MER_TXN_FAILED)
        return mer_fail(t->db, t->failed_code, "the transaction failed earlier (%s); roll it back",
                        meridian_errstr(t->failed_code));
    if (!t->ro && t->db->tr) {
        /* A notice that came since the last call (mer_txn_wounded) ends t here. */
        uv_run(&t->db->loop, UV_RUN_NOWAIT);
        if (t->wounded_at) {
            t->state = MER_TXN_FAILED;
            t->failed_code = MERIDIAN_ABORTED;
            return wounded_fail(t);
        }
    }
    return MERIDIAN_OK;
}

/* Marks t failed with code (the message is already set) and returns code. */
static int txn_fail(meridian_txn *t, int code)
{
    if (!t->ro && code != MERIDIAN_NOTFOUND && code != MERIDIAN_INVALID) {
        t->state = MER_TXN_FAILED;
        t->failed_code = code;
    }
    return code;
}

static void txn_free(meridian_txn *t)
{
    for (meridian_txn **p = &t->db->txns; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    t->magic = 0;
    t->db->open_txns--;
    mer_wbuf_free(&t->wb);
    free(t->groups);
    free(t);
}

static uint64_t random_id(meridian *db)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
        id = mer_rand(db);
    id &= MER_TXN_ID_MAX; /* ids above are the cluster's own */
    return id ? id : 1;
}

static int txn_new(meridian *db, bool ro, meridian_txn **out)
{
    meridian_txn *t = calloc(1, sizeof *t);
    if (!t)
        return mer_fail(db, MERIDIAN_NOMEM, "out of memory");
    t->db = db;
    t->magic = MER_TXN_MAGIC;
    t->ro = ro;
    t->id = random_id(db);
    db->open_txns++;
    if (!ro) {
        t->next = db->txns;
        db->txns = t;
    }
    *out = t;
    return MERIDIAN_OK;
}

int mer_begin_prio(meridian *db, int64_t prio, meridian_txn **out)
{
    int rc = txn_new(db, false, out);
    if (rc == MERIDIAN_OK)
        (*out)->prio = prio;
    return rc;
}

int meridian_begin(meridian *db, meridian_txn **out)
{
    if (out)
        *out = NULL;
    if (!db || !out)
        return db ? mer_fail(db, MERIDIAN_INVALID, "meridian_begin: out is NULL")
                  : MERIDIAN_INVALID;
    mer_clear(db);
    /* Age under wound-wait: the start time, older wins. */
    return mer_begin_prio(db, mr_realtime_ns(), out);
}

int meridian_begin_aged(meridian *db, int64_t age, meridian_txn **out)
{
    if (out)
        *out = NULL;
    if (!db || !out)
        return db ? mer_fail(db, MERIDIAN_INVALID, "meridian_begin_aged: out is NULL")
                  : MERIDIAN_INVALID;
    mer_clear(db);
    if (age < 0)
        return mer_fail(db, MERIDIAN_INVALID, "meridian_begin_aged: negative age %lld",
                        (long long)age);
    return mer_begin_prio(db, age ? age : mr_realtime_ns(), out);
}

int64_t meridian_txn_age(const meridian_txn *t)
{
    return txn_ok(t) && !t->ro ? t->prio : 0;
}

int meridian_begin_ro(meridian *db, meridian_bound bound, int64_t ns, meridian_txn **out)
{
    if (out)
        *out = NULL;
    if (!db || !out)
        return db ? mer_fail(db, MERIDIAN_INVALID, "meridian_begin_ro: out is NULL")
                  : MERIDIAN_INVALID;
    mer_clear(db);
    if ((unsigned)bound > MERIDIAN_AT_TIMESTAMP)
        return mer_fail(db, MERIDIAN_INVALID, "meridian_begin_ro: unknown bound %d", (int)bound);
    if (ns < 0 || (bound == MERIDIAN_AT_TIMESTAMP && ns == 0))
        return mer_fail(db, MERIDIAN_INVALID, "meridian_begin_ro: bad ns %lld", (long long)ns);
    int rc = txn_new(db, true, out);
    if (rc == MERIDIAN_OK) {
        (*out)->bound = bound;
        (*out)->bound_ns = ns;
        if (bound == MERIDIAN_AT_TIMESTAMP)
            (*out)->read_ts = ns;
    }
    return rc;
}

int64_t meridian_read_ts(const meridian_txn *t)
{
    return txn_ok(t) ? t->read_ts : 0;
}

uint64_t meridian_txn_id(const meridian_txn *t)
{
    return txn_ok(t) && t->state != MER_TXN_DONE ? t->id : 0;
}

/* The transaction's record of a group (created when add). */
static mer_tgroup *tgroup(meridian_txn *t, uint64_t gid, bool add)
{
    for (size_t i = 0; i < t->ngroups; i++)
        if (t->groups[i].gid == gid)
            return &t->groups[i];
    if (!add)
        return NULL;
    if (t->ngroups == t->capgroups) {
        size_t cap = t->capgroups ? 2 * t->capgroups : 4;
        mer_tgroup *ng = realloc(t->groups, cap * sizeof *ng);
        if (!ng)
            return NULL;
        t->groups = ng;
        t->capgroups = cap;
    }
    t->groups[t->ngroups] = (mer_tgroup){.gid = gid};
    return &t->groups[t->ngroups++];
}

/* Forgets group gid if the transaction neither read nor wrote there. */
static void tgroup_drop(meridian_txn *t, uint64_t gid)
{
    for (size_t i = 0; i < t->ngroups; i++)
        if (t->groups[i].gid == gid && !t->groups[i].nreads && !t->groups[i].wrote) {
            t->groups[i] = t->groups[--t->ngroups];
            return;
        }
}

/* Checks a key or a value argument; sets the message. */
static int check_arg(meridian *db, const void *p, size_t len, bool is_key)
{
    char why[96];
    if (mer_check_bytes(p, len, is_key, why, sizeof why) != MERIDIAN_OK)
        return mer_fail(db, MERIDIAN_INVALID, "%s", why);
    return MERIDIAN_OK;
}

static ProtobufCBinaryData bin(const void *p, size_t len)
{
    return (ProtobufCBinaryData){.len = len, .data = (uint8_t *)(uintptr_t)p};
}

/* The range map, fetched now if the connection never got one (its open
 * failed, or the cluster was down then). */
static int ensure_map(meridian *db)
{
    return db->map.nranges ? MERIDIAN_OK : mer_refresh_map(db);
}

/* ---- reads ---- */

/* The fields every request of read-write transaction t at group gid carries. */
static Meridian__TxnRequest txn_request(const meridian_txn *t, uint64_t gid,
                                        Meridian__TxnRequest__Op op)
{
    Meridian__TxnRequest r = MERIDIAN__TXN_REQUEST__INIT;
    r.group = gid;
    r.txn = t->id;
    r.has_prio = true;
    r.prio = t->prio;
    r.op = op;
    return r;
}

/* The read of key (or, scan, the page of [key, end) of at most limit rows; elen 0: to the
 * range's end) as this transaction sends it to group gid: under locks, or at its snapshot. */
static int read_request(meridian_txn *t, mer_call *c, uint64_t gid, const void *key, size_t klen,
                        bool scan, const void *end, size_t elen, size_t limit, bool for_update)
{
    if (!t->ro) {
        Meridian__TxnRequest r = txn_request(t, gid, MERIDIAN__TXN_REQUEST__OP__READ);
        r.has_key = true;
        r.key = bin(key, klen);
        /* The leader answers a read still waiting for its lock before we give up on it. */
        r.has_wait_ms = true;
        r.wait_ms = (uint32_t)(t->db->timeout_ms < 3600 * 1000 ? t->db->timeout_ms : 3600 * 1000);
        if (for_update)
            r.has_for_update = r.for_update = true;
        if (scan) {
            r.has_end = true; /* empty: to the end of the range */
            r.end = bin(end, elen);
            r.has_limit = true;
            r.limit = (uint32_t)limit;
        }
        c->op = "read";
        c->txn = t->id;
        return mer_call_set_request(c, &r.base);
    }
    Meridian__SnapReadRequest r = MERIDIAN__SNAP_READ_REQUEST__INIT;
    r.group = gid;
    r.key = bin(key, klen);
    if (scan) {
        r.has_scan = r.scan = true;
        if (elen) {
            r.has_end = true;
            r.end = bin(end, elen);
        }
        r.has_limit = true;
        r.limit = (uint32_t)limit;
    }
    if (t->read_ts) {
        r.bound_case = MERIDIAN__SNAP_READ_REQUEST__BOUND_TS;
        r.ts = t->read_ts;
    } else if (t->bound == MERIDIAN_EXACT_STALENESS) {
        r.bound_case = MERIDIAN__SNAP_READ_REQUEST__BOUND_EXACT_STALENESS_NS;
        r.exact_staleness_ns = t->bound_ns;
    } else if (t->bound == MERIDIAN_MAX_STALENESS) {
        r.bound_case = MERIDIAN__SNAP_READ_REQUEST__BOUND_MAX_STALENESS_NS;
        r.max_staleness_ns = t->bound_ns;
    } /* strong without a timestamp yet: the leader picks it */
    c->op = "snapread";
    return mer_call_set_request(c, &r.base);
}

/* How a read of group gid is routed for this transaction. */
static void read_route(meridian_txn *t, mer_call *c, uint64_t gid)
{
    c->group = gid;
    c->rot = (unsigned)mer_rand(t->db);
    if (!t->ro) {
        c->type = MERIDIAN__MSG_TYPE__MSG_TXN;
        c->flags = MER_CALL_LEADER;
        return;
    }
    c->type = MERIDIAN__MSG_TYPE__MSG_SNAPREAD;
    c->flags = MER_CALL_RESEND | MER_CALL_BEHIND;
    /* Strong reads go to leaders (their safe time is current) unless the
     * connection spreads them (strong_any_replica: a follower waits for its
     * safe time); the rest to any replica, spreading the load. Bounded
     * staleness asks each replica once and never waits. */
    if (t->bound == MERIDIAN_STRONG && !t->db->strong_any)
        c->flags |= MER_CALL_LEADER;
    if (t->bound == MERIDIAN_MAX_STALENESS && !t->read_ts)
        c->max_rounds = 1;
}

/* Sends one read (a point read or a page of a scan) to the group holding key,
 * rerouting on a stale map. On MERIDIAN_OK c->reply->read is the node's answer (the caller
 * frees c with mer_call_free, whatever the result). */
static int read_once(meridian_txn *t, const void *key, size_t klen, bool scan, const void *end,
                     size_t elen, size_t limit, uint64_t gid_hint, bool for_update, mer_call *c)
{
    meridian *db = t->db;
    int rc = ensure_map(db);
    if (rc != MERIDIAN_OK)
        return txn_fail(t, rc);
    for (int attempt = 0;; attempt++) {
        uint64_t gid = gid_hint;
        if (!gid)
            gid = mer_rmap_group_of(&db->map, key, klen);
        read_route(t, c, gid);
        if (read_request(t, c, gid, key, klen, scan, end, elen, limit, for_update) != MR_OK)
            return txn_fail(t, mer_fail(db, MERIDIAN_NOMEM, "out of memory"));
        /* A locking read joins the transaction's groups before it is sent: if its answer
         * never comes, the rollback still tells that group, whose leader may have parked it
         * (docs/goodput.md 2.3). */
        bool joined = !t->ro && !tgroup(t, gid, false);
        if (!t->ro && !tgroup(t, gid, true))
            return txn_fail(t, mer_fail(db, MERIDIAN_NOMEM, "out of memory"));
        mer_calls_run(db, c, 1);
        if (c->rc != MR_OK)
            return txn_fail(t, mer_fail(db, MERIDIAN_UNAVAILABLE, "read of group %llu: %s",
                                        (unsigned long long)gid, c->why));
        if (joined && c->reply->error)
            tgroup_drop(t, gid); /* answered: nothing of it waits there */
        if (!c->reply->error && c->reply->body_case != MERIDIAN__REPLY__BODY_READ)
            return txn_fail(t, mer_fail(db, MERIDIAN_ERROR,
                                        "read of group %llu: %s answered without a read",
                                        (unsigned long long)gid, c->addr));
        if (!c->reply->error) {
            if (!t->ro) {
                mer_tgroup *tg = tgroup(t, gid, true);
                if (!tg)
                    return txn_fail(t, mer_fail(db, MERIDIAN_NOMEM, "out of memory"));
                tg->nreads++;
            } else if (!t->read_ts) {
                t->read_ts = c->reply->read->read_ts;
            }
            return MERIDIAN_OK;
        }
        Meridian__ErrorCode e = c->reply->error->code;
        bool stale_map =
            e == MERIDIAN__ERROR_CODE__WRONG_RANGE || e == MERIDIAN__ERROR_CODE__NO_GROUP;
        int code = mer_code_of_error(e);
        if (t->ro && e == MERIDIAN__ERROR_CODE__BEHIND)
            code = t->bound == MERIDIAN_MAX_STALENESS ? MERIDIAN_STALE : MERIDIAN_UNAVAILABLE;
        if (code == MERIDIAN_ABORTED && t->wounded_at) /* (its abort, mer_txn_wounded) */
            wounded_fail(t);
        else
            mer_fail(db, code, "read of group %llu: %s", (unsigned long long)gid, c->why);
        if (stale_map && attempt + 1 < MER_REROUTES) {
            if ((rc = mer_refresh_map(db)) != MERIDIAN_OK)
                return txn_fail(t, rc);
            if (gid_hint) /* a scan: its caller splits the range anew */
                return MER_REROUTE;
            continue;
        }
        return txn_fail(t, code);
    }
}

static int copy_out(meridian *db, const void *s, size_t len, void **val, size_t *vlen)
{
    *vlen = len;
    *val = NULL;
    if (len == 0)
        return MERIDIAN_OK;
    char *v = malloc(len + 1);
    if (!v)
        return mer_fail(db, MERIDIAN_NOMEM, "out of memory");
    memcpy(v, s, len);
    v[len] = '\0';
    *val = v;
    return MERIDIAN_OK;
}

static int get_read(meridian_txn *t, const void *key, size_t klen, void **val, size_t *vlen,
                    int64_t *version_ts, bool for_update);

int meridian_get(meridian_txn *t, const void *key, size_t klen, void **val, size_t *vlen)
{
    return meridian_get_version(t, key, klen, val, vlen, NULL);
}

int meridian_get_for_update(meridian_txn *t, const void *key, size_t klen, void **val, size_t *vlen)
{
    if (txn_ok(t) && t->ro)
        return mer_fail(t->db, MERIDIAN_INVALID,
                        "meridian_get_for_update: a read-only transaction takes no locks");
    return get_read(t, key, klen, val, vlen, NULL, true);
}

int meridian_get_version(meridian_txn *t, const void *key, size_t klen, void **val, size_t *vlen,
                         int64_t *version_ts)
{
    return get_read(t, key, klen, val, vlen, version_ts, false);
}

/* meridian_get_version, for_update: under an exclusive lock. */
static int get_read(meridian_txn *t, const void *key, size_t klen, void **val, size_t *vlen,
                    int64_t *version_ts, bool for_update)
{
    if (version_ts)
        *version_ts = 0;
    int rc = txn_usable(t);
    if (rc != MERIDIAN_OK)
        return rc;
    if (!val || !vlen)
        return mer_fail(t->db, MERIDIAN_INVALID, "meridian_get: val and vlen are required");
    *val = NULL;
    *vlen = 0;
    if ((rc = check_arg(t->db, key, klen, true)) != MERIDIAN_OK)
        return rc;
    const mer_write *w = mer_wbuf_get(&t->wb, key, klen);
    if (w) /* the transaction's own write */
        return w->val ? copy_out(t->db, w->val, w->vlen, val, vlen)
                      : mer_fail(t->db, MERIDIAN_NOTFOUND, "not found (deleted here)");
    mer_call c = {0};
    rc = read_once(t, key, klen, false, NULL, 0, 0, 0, for_update, &c);
    if (rc == MERIDIAN_OK) {
        const Meridian__ReadReply *r = c.reply->read;
        mer_clear(t->db); /* whatever was retried on the way, this read worked */
        if (!r->found || !r->has_value) {
            rc = mer_fail(t->db, MERIDIAN_NOTFOUND, "not found");
        } else {
            rc = copy_out(t->db, r->value.data, r->value.len, val, vlen);
            if (rc == MERIDIAN_OK && version_ts)
                *version_ts = r->version_ts;
        }
    }
    mer_call_free(&c);
    return rc;
}

/* ---- writes ---- */

static int buffer_write(meridian_txn *t, const void *key, size_t klen, const void *val, size_t vlen,
                        bool del)
{
    int rc = txn_usable(t);
    if (rc != MERIDIAN_OK)
        return rc;
    if (t->ro)
        return mer_fail(t->db, MERIDIAN_INVALID, "a read-only transaction cannot write");
    if ((rc = check_arg(t->db, key, klen, true)) != MERIDIAN_OK ||
        (!del && (rc = check_arg(t->db, val, vlen, false)) != MERIDIAN_OK))
        return rc;
    if (mer_wbuf_set(&t->wb, key, klen, del ? NULL : (val ? val : ""), vlen) != MR_OK)
        rc = mer_fail(t->db, MERIDIAN_NOMEM, "out of memory");
    return rc;
}

int meridian_put(meridian_txn *t, const void *key, size_t klen, const void *val, size_t vlen)
{
    return buffer_write(t, key, klen, val, vlen, false);
}

int meridian_delete(meridian_txn *t, const void *key, size_t klen)
{
    return buffer_write(t, key, klen, NULL, 0, true);
}

/* ---- scans ---- */

typedef struct scan_state {
    meridian_txn *t;
    size_t limit, emitted;
    meridian_row_fn fn;
    void *arg;
    bool stop;
} scan_state;

static void emit(scan_state *s, const void *k, size_t klen, const void *v, size_t vlen)
{
    if (s->stop)
        return;
    s->emitted++;
    if (s->fn(s->arg, k, klen, v, vlen) != 0 || (s->limit && s->emitted >= s->limit))
        s->stop = true;
}

/* Emits a page of rows merged with the buffered writes from *wi up to hi (inclusive when
 * hi_incl; hi NULL: every buffered write left). */
static void merge_page(scan_state *s, Meridian__Row *const *rows, size_t nrows, size_t *wi,
                       const mer_bytes *hi, bool hi_incl)
{
    const mer_wbuf *b = &s->t->wb;
    size_t ri = 0;
    for (;;) {
        const mer_write *w = NULL;
        if (*wi < b->n) {
            const mer_write *x = &b->w[*wi];
            int c = hi ? mr_bytes_cmp(x->key, x->klen, hi->p, hi->len) : -1;
            if (c < 0 || (c == 0 && hi_incl))
                w = x;
        }
        const Meridian__Row *row = ri < nrows ? rows[ri] : NULL;
        if (!w && !row)
            return;
        int c = !w ? 1 : !row ? -1 : mr_bytes_cmp(w->key, w->klen, row->key.data, row->key.len);
        if (c <= 0) { /* our own write wins over the stored version */
            if (w->val)
                emit(s, w->key, w->klen, w->val, w->vlen);
            (*wi)++;
            ri += c == 0;
        } else {
            emit(s, row->key.data, row->key.len, row->value.data ? row->value.data : (uint8_t *)"",
                 row->value.len);
            ri++;
        }
        if (s->stop)
            return;
    }
}

/* Replaces *b with a copy of len bytes at p followed by `extra` zero bytes. */
static int bytes_set(mer_bytes *b, const void *p, size_t len, size_t extra)
{
    uint8_t *n = malloc(len + extra + 1);
    if (!n)
        return MR_ENOMEM;
    if (len)
        memcpy(n, p, len);
    memset(n + len, 0, extra + 1);
    free(b->p);
    b->p = n;
    b->len = len + extra;
    return MR_OK;
}

/* Scans [cur, chunk_end) at group gid, page by page (chunk_end empty: +inf). On MER_REROUTE,
 * *resume is where the scan must go on. */
static int scan_chunk(scan_state *s, uint64_t gid, const mer_bytes *cur, const mer_bytes *chunk_end,
                      mer_bytes *resume)
{
    meridian_txn *t = s->t;
    size_t wi = mer_wbuf_lower_bound(&t->wb, cur->p, cur->len);
    mer_bytes pos = {0};
    if (bytes_set(&pos, cur->p, cur->len, 0) != MR_OK)
        return mer_fail(t->db, MERIDIAN_NOMEM, "out of memory");
    int rc = MERIDIAN_OK;
    while (!s->stop) {
        size_t page = MER_SCAN_PAGE;
        if (s->limit && s->limit - s->emitted < page)
            page = s->limit - s->emitted;
        mer_call c = {0};
        rc = read_once(t, pos.p, pos.len, true, chunk_end->p, chunk_end->len, page, gid, false, &c);
        if (rc == MER_REROUTE) {
            mer_call_free(&c);
            *resume = pos;
            return rc;
        }
        if (rc != MERIDIAN_OK) {
            mer_call_free(&c);
            break;
        }
        const Meridian__ReadReply *r = c.reply->read;
        size_t n = r->n_rows;
        /* A page ends at the node's row or byte budget: it says `more` and the key to resume
         * from. */
        bool last = r->has_more ? !r->more : n < page;
        if (n == 0)
            last = true;
        mer_bytes lastkey = {0};
        if (!last)
            lastkey = (mer_bytes){.p = r->rows[n - 1]->key.data, .len = r->rows[n - 1]->key.len};
        merge_page(s, r->rows, n, &wi, last ? (chunk_end->len ? chunk_end : NULL) : &lastkey,
                   !last);
        if (!last && !s->stop) {
            /* The next page starts at the resume key, else just after the last key: key +
             * byte 0 is the smallest key above it. */
            int brc = r->has_resume ? bytes_set(&pos, r->resume.data, r->resume.len, 0)
                                    : bytes_set(&pos, lastkey.p, lastkey.len, 1);
            if (brc != MR_OK) {
                mer_call_free(&c);
                rc = mer_fail(t->db, MERIDIAN_NOMEM, "out of memory");
                break;
            }
        }
        mer_call_free(&c);
        if (last)
            break;
    }
    free(pos.p);
    return rc;
}

int meridian_scan(meridian_txn *t, const void *start, size_t slen, const void *end, size_t elen,
                  size_t limit, meridian_row_fn fn, void *arg)
{
    int rc = txn_usable(t);
    if (rc != MERIDIAN_OK)
        return rc;
    if (!fn)
        return mer_fail(t->db, MERIDIAN_INVALID, "meridian_scan: fn is NULL");
    if (!end)
        elen = 0;
    if ((slen && (rc = check_arg(t->db, start, slen, true)) != MERIDIAN_OK) ||
        (elen && (rc = check_arg(t->db, end, elen, true)) != MERIDIAN_OK))
        return rc;
    if ((rc = ensure_map(t->db)) != MERIDIAN_OK)
        return txn_fail(t, rc);
    mer_bytes cur = {0}, to = {0};
    if (bytes_set(&cur, slen ? start : MER_KEY_BOTTOM, slen ? slen : 1, 0) != MR_OK ||
        bytes_set(&to, end, elen, 0) != MR_OK) {
        free(cur.p);
        free(to.p);
        return mer_fail(t->db, MERIDIAN_NOMEM, "out of memory");
    }
    scan_state s = {.t = t, .limit = limit, .fn = fn, .arg = arg};
    /* Range by range, in key order: [cur, min(range end, to)) at the range's group. */
    int reroutes = 0;
    while (rc == MERIDIAN_OK && !s.stop &&
           (!to.len || mr_bytes_cmp(cur.p, cur.len, to.p, to.len) < 0)) {
        const mer_range *r = mer_rmap_find(&t->db->map, cur.p, cur.len);
        uint64_t gid = t->db->map.groups[r->group].id;
        bool to_first =
            to.len && (!r->end.len || mr_bytes_cmp(to.p, to.len, r->end.p, r->end.len) <= 0);
        const mer_bytes *ce = to_first ? &to : &r->end;
        mer_bytes chunk_end = {0};
        if (bytes_set(&chunk_end, ce->p, ce->len, 0) != MR_OK) {
            rc = mer_fail(t->db, MERIDIAN_NOMEM, "out of memory");
            break;
        }
        mer_bytes resume = {0};
        rc = scan_chunk(&s, gid, &cur, &chunk_end, &resume);
        free(cur.p);
        if (rc == MER_REROUTE) { /* the map changed under the scan: go on from there */
            free(chunk_end.p);
            cur = resume;
            rc = ++reroutes < MER_REROUTES ? MERIDIAN_OK : txn_fail(t, MERIDIAN_UNAVAILABLE);
            continue;
        }
        cur = chunk_end;
        if (!cur.len)
            break; /* that was the last range */
    }
    free(cur.p);
    free(to.p);
    if (rc == MERIDIAN_OK)
        mer_clear(t->db);
    return rc;
}

/* ---- commit and rollback ---- */

/* A request of t at group gid that carries no keys: abort or status. */
static int plain_request(meridian_txn *t, mer_call *c, uint64_t gid, Meridian__TxnRequest__Op op)
{
    Meridian__TxnRequest r = txn_request(t, gid, op);
    c->op = op == MERIDIAN__TXN_REQUEST__OP__ABORT ? "abort" : "status";
    c->txn = t->id;
    return mer_call_set_request(c, &r.base);
}

static void ignore_answer(net_transport *tr, int status, const mr_err *err, const net_message *resp,
                          void *ud)
{
    (void)tr, (void)status, (void)err, (void)resp, (void)ud;
}

void mer_txn_wounded(meridian *db, uint64_t txn, uint64_t gid, const char *why)
{
    meridian_txn *t = db->txns;
    while (t && t->id != txn)
        t = t->next;
    if (!t || t->state != MER_TXN_ACTIVE || t->wounded_at)
        return;
    t->wounded_at = gid ? gid : 1;
    MR_DEBUG("client", "txn=%llu wounded at group %llu: %s", (unsigned long long)txn,
             (unsigned long long)gid, why);
    /* Its other groups hear it now: a read parked there is answered (aborted) and its locks
     * there go, rather than after its commit made every one of them prepare. One try, no
     * answer awaited (the rollback sends aborts again, and locks of a silent transaction
     * expire anyway). */
    int64_t now = mr_monotonic_ns();
    for (size_t i = 0; i < t->ngroups; i++) {
        if (t->groups[i].gid == gid)
            continue;
        const char *to[1];
        if (mer_rmap_candidates(&db->map, t->groups[i].gid, true, 0, now, to, 1) != 1)
            continue;
        Meridian__TxnRequest r = txn_request(t, t->groups[i].gid, MERIDIAN__TXN_REQUEST__OP__ABORT);
        uint8_t *buf;
        size_t len;
        mr_err err;
        if (pr_encode(&r.base, NET_FRAME_DEFAULT_MAX, &buf, &len, &err) != MR_OK)
            continue;
        (void)net_transport_request(db->tr, to[0], MERIDIAN__MSG_TYPE__MSG_TXN, buf, (uint32_t)len,
                                    (uint64_t)db->timeout_ms, ignore_answer, NULL, NULL, &err);
        free(buf);
    }
}

/* Sends abort to every group t touched (releasing its locks there); the
 * answers do not matter: locks of vanished clients expire anyway. */
static void send_aborts(meridian_txn *t)
{
    if (t->ro || t->ngroups == 0)
        return;
    mer_call *calls = calloc(t->ngroups, sizeof *calls);
    if (!calls)
        return;
    bool ok = true;
    for (size_t i = 0; i < t->ngroups; i++) {
        calls[i] = (mer_call){.type = MERIDIAN__MSG_TYPE__MSG_TXN,
                              .group = t->groups[i].gid,
                              .flags = MER_CALL_LEADER | MER_CALL_RESEND};
        ok &= plain_request(t, &calls[i], t->groups[i].gid, MERIDIAN__TXN_REQUEST__OP__ABORT) ==
              MR_OK;
    }
    if (ok)
        mer_calls_run(t->db, calls, t->ngroups);
    for (size_t i = 0; i < t->ngroups; i++)
        mer_call_free(&calls[i]);
    free(calls);
}

typedef enum {
    STATUS_COMMITTED,
    STATUS_ABORTED,
    STATUS_PENDING,
    STATUS_UNSUPPORTED,
    STATUS_FORGOTTEN
} txn_status;

/* What a status answer says (nothing of the reply is used after this). */
static txn_status status_of(const mer_call *c, int64_t *at)
{
    if (c->rc != MR_OK)
        return STATUS_PENDING; /* no answer: ask again */
    if (c->reply->body_case == MERIDIAN__REPLY__BODY_TXN_STATUS) {
        const Meridian__TxnStatusReply *r = c->reply->txn_status;
        *at = r->has_ts ? r->ts : 0;
        if (r->state == MERIDIAN__TXN_STATUS_REPLY__STATE__COMMITTED)
            return STATUS_COMMITTED;
        if (r->state == MERIDIAN__TXN_STATUS_REPLY__STATE__ABORTED)
            return STATUS_ABORTED;
        return STATUS_PENDING;
    }
    /* A node that does not know op "status" cannot tell, however often asked; nor can one
     * that collected the decision (past its --decision-retention). */
    Meridian__ErrorCode e = pr_reply_code(c->reply);
    if (e == MERIDIAN__ERROR_CODE__FORGOTTEN)
        return STATUS_FORGOTTEN;
    return mer_code_of_error(e) == MERIDIAN_INVALID ? STATUS_UNSUPPORTED : STATUS_PENDING;
}

/* Asks the coordinator group how transaction t ended (TxnRequest op STATUS; a
 * transaction it never heard of is aborted for good first), until it knows
 * or the connection's timeout (at least 2 s) has passed. */
static int resolve_status(meridian_txn *t, uint64_t coord, int64_t *ts, const char *why)
{
    meridian *db = t->db;
    char last[MR_ERRMSG_MAX];
    snprintf(last, sizeof last, "%s", why);
    int64_t budget = db->timeout_ms > 2000 ? db->timeout_ms : 2000;
    int64_t until = mr_monotonic_ns() + budget * MR_NS_PER_MS;
    for (unsigned attempt = 0; attempt < 3 || mr_monotonic_ns() < until; attempt++) {
        if (attempt) {
            int64_t ms = mer_backoff_ms(attempt - 1, 50, 1000, mer_rand(db));
            struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
            nanosleep(&d, NULL);
        }
        mer_call c = {.type = MERIDIAN__MSG_TYPE__MSG_TXN,
                      .group = coord,
                      .flags = MER_CALL_LEADER | MER_CALL_RESEND};
        if (plain_request(t, &c, coord, MERIDIAN__TXN_REQUEST__OP__STATUS) != MR_OK) {
            mer_call_free(&c);
            return mer_fail(db, MERIDIAN_UNKNOWN, "commit outcome unknown: out of memory");
        }
        mer_calls_run(db, &c, 1);
        int64_t at = 0;
        txn_status st = status_of(&c, &at);
        if (st != STATUS_COMMITTED && st != STATUS_ABORTED)
            snprintf(last, sizeof last, "%s", c.rc == MR_OK && !c.why[0] ? "pending" : c.why);
        mer_call_free(&c);
        if (st == STATUS_COMMITTED) {
            if (ts)
                *ts = at;
            mer_clear(db);
            return MERIDIAN_OK;
        }
        if (st == STATUS_ABORTED)
            return mer_fail(db, MERIDIAN_ABORTED, "aborted (learned from the coordinator group)");
        if (st == STATUS_UNSUPPORTED || st == STATUS_FORGOTTEN)
            break;
    }
    return mer_fail(db, MERIDIAN_UNKNOWN, "commit outcome unknown: %s", last);
}

/* The commit request of group tg, with its share of the writes. MR_OK, MR_ENOMEM. */
static int commit_request(meridian_txn *t, const mer_tgroup *tg, uint64_t coord, uint64_t *parts,
                          size_t nparts, mer_call *c)
{
    const mer_rmap *m = &t->db->map;
    size_t nw = 0;
    Meridian__Write *w = calloc(t->wb.n ? t->wb.n : 1, sizeof *w);
    Meridian__Write **pw = calloc(t->wb.n ? t->wb.n : 1, sizeof *pw);
    if (!w || !pw) {
        free(w);
        free(pw);
        return MR_ENOMEM;
    }
    for (size_t i = 0; i < t->wb.n; i++) {
        const mer_write *x = &t->wb.w[i];
        if (mer_rmap_group_of(m, x->key, x->klen) != tg->gid)
            continue;
        w[nw] = (Meridian__Write)MERIDIAN__WRITE__INIT;
        w[nw].key = bin(x->key, x->klen);
        if (x->val) { /* a put; no value: a delete */
            w[nw].has_value = true;
            w[nw].value = bin(x->val, x->vlen);
        }
        pw[nw] = &w[nw];
        nw++;
    }
    Meridian__TxnRequest r = txn_request(t, tg->gid, MERIDIAN__TXN_REQUEST__OP__COMMIT);
    r.n_writes = nw;
    r.writes = pw;
    r.has_nreads = true;
    r.nreads = tg->nreads;
    /* The deadline binds where the commit timestamp is decided: the one group, or the
     * coordinator. */
    if (t->commit_before && (nparts <= 1 || tg->gid == coord)) {
        r.has_commit_before = true;
        r.commit_before = t->commit_before;
    }
    if (nparts > 1) {
        r.has_coordinator = true;
        r.coordinator = coord;
        r.n_participants = nparts;
        r.participants = parts;
    }
    c->op = "commit";
    c->txn = t->id;
    int rc = mer_call_set_request(c, &r.base);
    free(w);
    free(pw);
    return rc;
}

/* Every group written joins the groups read; returns false without memory. */
static bool collect_participants(meridian_txn *t)
{
    const mer_rmap *m = &t->db->map;
    for (size_t i = 0; i < t->wb.n; i++) {
        mer_tgroup *tg = tgroup(t, mer_rmap_group_of(m, t->wb.w[i].key, t->wb.w[i].klen), true);
        if (!tg)
            return false;
        tg->wrote = true;
    }
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Two-phase commit (or a plain commit when one group is involved): the
 * coordinator is the smallest group written (the smallest read if none). */
static int commit_groups(meridian_txn *t, int64_t *ts, int64_t *wait_ns)
{
    meridian *db = t->db;
    size_t n = t->ngroups;
    uint64_t *parts = calloc(n, sizeof *parts);
    mer_call *calls = calloc(n, sizeof *calls);
    if (!parts || !calls) {
        free(parts);
        free(calls);
        return mer_fail(db, MERIDIAN_NOMEM, "out of memory");
    }
    uint64_t coord = 0;
    for (size_t i = 0; i < n; i++) {
        parts[i] = t->groups[i].gid;
        if (t->groups[i].wrote && (!coord || parts[i] < coord))
            coord = parts[i];
    }
    qsort(parts, n, sizeof *parts, cmp_u64);
    if (!coord)
        coord = parts[0];
    size_t ci = 0;
    int rc = MERIDIAN_OK;
    for (size_t i = 0; i < n; i++) {
        /* Only not_leader answers (nothing done) are followed: a commit is
         * never sent twice. */
        calls[i] = (mer_call){.type = MERIDIAN__MSG_TYPE__MSG_TXN,
                              .group = t->groups[i].gid,
                              .flags = MER_CALL_LEADER};
        if (commit_request(t, &t->groups[i], coord, parts, n, &calls[i]) != MR_OK) {
            rc = mer_fail(db, MERIDIAN_NOMEM, "out of memory");
        } else if (rc == MERIDIAN_OK && calls[i].req_len > NET_FRAME_DEFAULT_MAX) {
            /* A request over the frame limit could not be sent: refuse it here, as nothing
             * committed (the node refuses, too_large, a commit record over its log's entry
             * size). */
            rc = mer_fail(db, MERIDIAN_INVALID,
                          "the transaction's writes at group %llu take %zu bytes, over the "
                          "%u-byte request limit",
                          (unsigned long long)t->groups[i].gid, calls[i].req_len,
                          NET_FRAME_DEFAULT_MAX);
        }
        if (t->groups[i].gid == coord)
            ci = i;
    }
    if (rc == MERIDIAN_OK)
        mer_calls_run(db, calls, n);
    mer_call *c = &calls[ci];
    /* Test-only (MERIDIAN_TEST_LOSE_COMMIT_ANSWERS): the coordinator's answer is dropped as if
     * the connection broke after the commit went out, whatever it said. */
    bool dropped = rc == MERIDIAN_OK && c->rc == MR_OK && db->lose_commit_pct &&
                   mer_rand(db) % 100 < db->lose_commit_pct;
    bool stale_map = false;
    mer_call *too_large = NULL; /* a participant's writes over the log's entry size */
    for (size_t i = 0; rc == MERIDIAN_OK && i < n; i++) {
        stale_map |= mer_call_error(&calls[i], MERIDIAN__ERROR_CODE__WRONG_RANGE) ||
                     mer_call_error(&calls[i], MERIDIAN__ERROR_CODE__NO_GROUP);
        if (mer_call_error(&calls[i], MERIDIAN__ERROR_CODE__TOO_LARGE))
            too_large = &calls[i];
    }
    if (rc != MERIDIAN_OK) {
        /* nothing was sent */
    } else if (dropped) {
        rc = resolve_status(t, coord, ts,
                            "the commit's answer was dropped (MERIDIAN_TEST_LOSE_COMMIT_ANSWERS)");
    } else if (c->rc != MR_OK) {
        /* The commit may or may not have arrived: ask. */
        rc = resolve_status(t, coord, ts, c->why);
    } else if (c->reply->body_case == MERIDIAN__REPLY__BODY_COMMIT) {
        if (ts)
            *ts = c->reply->commit->ts;
        if (c->reply->commit->has_commit_wait_ns && c->reply->commit->commit_wait_ns > 0)
            *wait_ns = c->reply->commit->commit_wait_ns;
    } else if (!c->reply->error) {
        rc = resolve_status(t, coord, ts, "the commit's answer carries no outcome");
    } else {
        rc = mer_code_of_error(c->reply->error->code);
        if (rc == MERIDIAN_UNKNOWN)
            rc = resolve_status(t, coord, ts, c->why);
        else if (too_large) /* it voted no: aborted for good, a retry fails alike */
            rc = mer_fail(db, MERIDIAN_ERROR, "commit: %s", too_large->why);
        else if (stale_map || rc == MERIDIAN_UNAVAILABLE)
            rc = mer_fail(db, MERIDIAN_ABORTED, "commit refused: %s", c->why);
        else
            mer_fail(db, rc, "commit: %s", c->why);
    }
    for (size_t i = 0; i < n; i++)
        mer_call_free(&calls[i]);
    free(calls);
    free(parts);
    if (stale_map)
        (void)mer_refresh_map(db);
    return rc;
}

int mer_commit(meridian_txn *t, int64_t *ts)
{
    if (ts)
        *ts = 0;
    int rc = txn_usable(t);
    if (rc == MERIDIAN_INVALID && (!txn_ok(t) || t->state == MER_TXN_DONE))
        return rc; /* not ours to free */
    meridian *db = t->db;
    int64_t wait_ns = 0;
    if (rc != MERIDIAN_OK) {
        send_aborts(t);
    } else if (t->ro) {
        if (ts)
            *ts = t->read_ts;
    } else if (t->wb.n && (rc = ensure_map(t->db)) != MERIDIAN_OK) {
        send_aborts(t);
    } else if (!collect_participants(t)) {
        rc = mer_fail(t->db, MERIDIAN_NOMEM, "out of memory");
        send_aborts(t);
    } else if (t->ngroups > 0) {
        rc = commit_groups(t, ts, &wait_ns);
        if (rc == MERIDIAN_ABORTED && t->wounded_at) /* its own abort answered (a notice) */
            wounded_fail(t);
        if (rc == MERIDIAN_ABORTED)
            send_aborts(t);
    }
    t->state = MER_TXN_DONE;
    txn_free(t);
    if (rc == MERIDIAN_OK) {
        db->commit_wait_ns = wait_ns;
        mer_clear(db);
    }
    return rc;
}

int meridian_set_commit_before(meridian_txn *t, int64_t ts)
{
    int rc = txn_usable(t);
    if (rc != MERIDIAN_OK)
        return rc;
    if (t->ro)
        return mer_fail(t->db, MERIDIAN_INVALID,
                        "a commit deadline is for read-write transactions (a read-only one "
                        "commits nothing)");
    if (ts < 0)
        return mer_fail(t->db, MERIDIAN_INVALID,
                        "commit deadline %lld: a timestamp in ns since the epoch, or 0 for none",
                        (long long)ts);
    t->commit_before = ts;
    return MERIDIAN_OK;
}

int64_t meridian_commit_wait_ns(const meridian *db)
{
    return db ? db->commit_wait_ns : 0;
}

void mer_rollback(meridian_txn *t)
{
    if (!txn_ok(t) || t->state == MER_TXN_DONE)
        return;
    send_aborts(t);
    t->state = MER_TXN_DONE;
    txn_free(t);
}

int meridian_commit(meridian_txn *t, int64_t *ts)
{
    if (txn_ok(t) && t->in_run) {
        if (ts)
            *ts = 0;
        return mer_fail(t->db, MERIDIAN_INVALID,
                        "meridian_run commits its transaction: return MERIDIAN_OK instead");
    }
    return mer_commit(t, ts);
}

void meridian_rollback(meridian_txn *t)
{
    if (txn_ok(t) && t->in_run) {
        mer_fail(t->db, MERIDIAN_INVALID,
                 "meridian_run rolls back its transaction: return an error code instead");
        return;
    }
    mer_rollback(t);
}

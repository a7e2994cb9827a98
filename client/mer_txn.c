/* Transactions (Spanner §4.1-4.2 from the client's side; the requests are
 * those of tablet/node/nd.h, "Transactions"):
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
#include "common/mr_util.h"
#include "net/frame.h"
#include "tablet/node/nd.h"

/* Scans start here when asked from the first key: no key is empty or starts
 * with NUL, so nothing sorts before it. */
#define MER_KEY_BOTTOM "\x01"
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
    id &= ND_TXN_CLIENT_MAX; /* ids above are the cluster's own (nd.h) */
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

/* A NUL-terminated copy of a checked key or value. */
static int copy_checked(meridian *db, const void *p, size_t len, bool is_key, char **out)
{
    char why[96];
    if (mer_check_bytes(p, len, is_key, why, sizeof why) != MERIDIAN_OK)
        return mer_fail(db, MERIDIAN_INVALID, "%s", why);
    char *s = malloc(len + 1);
    if (!s)
        return mer_fail(db, MERIDIAN_NOMEM, "out of memory");
    if (len)
        memcpy(s, p, len);
    s[len] = '\0';
    *out = s;
    return MERIDIAN_OK;
}

/* The range map, fetched now if the connection never got one (its open
 * failed, or the cluster was down then). */
static int ensure_map(meridian *db)
{
    return db->map.nranges ? MERIDIAN_OK : mer_refresh_map(db);
}

/* ---- reads ---- */

/* A read request for key (or [key, end) with a page limit) as this
 * transaction sends it: under locks, or at its snapshot. */
static json_t *read_request(meridian_txn *t, const char *key, const char *end, size_t limit)
{
    json_t *req = json_object();
    if (!req)
        return NULL;
    json_object_set_new(req, "key", json_string(key));
    if (end)
        json_object_set_new(req, "end", json_string(end));
    if (limit)
        json_object_set_new(req, "limit", json_integer((json_int_t)limit));
    if (!t->ro) {
        json_object_set_new(req, "txn", json_integer((json_int_t)t->id));
        json_object_set_new(req, "prio", json_integer((json_int_t)t->prio));
        json_object_set_new(req, "op", json_string("read"));
    } else if (t->read_ts) {
        json_object_set_new(req, "ts", json_integer((json_int_t)t->read_ts));
    } else if (t->bound == MERIDIAN_EXACT_STALENESS) {
        json_object_set_new(req, "exact_staleness_ns", json_integer((json_int_t)t->bound_ns));
    } else if (t->bound == MERIDIAN_MAX_STALENESS) {
        json_object_set_new(req, "max_staleness_ns", json_integer((json_int_t)t->bound_ns));
    } /* strong without a timestamp yet: the leader picks it */
    return req;
}

/* How a read of group gid is routed for this transaction. */
static void read_route(meridian_txn *t, mer_call *c, uint64_t gid)
{
    c->group = gid;
    c->rot = (unsigned)mer_rand(t->db);
    if (!t->ro) {
        c->type = ND_MSG_TXN;
        c->flags = MER_CALL_LEADER;
        return;
    }
    c->type = ND_MSG_SNAPREAD;
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
 * rerouting on a stale map. On MERIDIAN_OK *reply is the node's ok answer. */
static int read_once(meridian_txn *t, const char *key, const char *end, size_t limit,
                     uint64_t gid_hint, json_t **reply)
{
    meridian *db = t->db;
    int rc = ensure_map(db);
    if (rc != MERIDIAN_OK)
        return txn_fail(t, rc);
    for (int attempt = 0;; attempt++) {
        uint64_t gid = gid_hint;
        if (!gid)
            gid = db->map.groups[mer_rmap_find(&db->map, key)->group].id;
        mer_call c = {0};
        read_route(t, &c, gid);
        c.req = read_request(t, key, end, limit);
        if (!c.req)
            return txn_fail(t, mer_fail(db, MERIDIAN_NOMEM, "out of memory"));
        mer_calls_run(db, &c, 1);
        json_decref(c.req);
        if (c.rc != MR_OK)
            return txn_fail(t, mer_fail(db, MERIDIAN_UNAVAILABLE, "read of group %llu: %s",
                                        (unsigned long long)gid, c.why));
        if (json_is_true(json_object_get(c.reply, "ok"))) {
            if (!t->ro) {
                mer_tgroup *tg = tgroup(t, gid, true);
                if (!tg) {
                    json_decref(c.reply);
                    return txn_fail(t, mer_fail(db, MERIDIAN_NOMEM, "out of memory"));
                }
                tg->nreads++;
            } else if (!t->read_ts) {
                t->read_ts = (int64_t)json_integer_value(json_object_get(c.reply, "read_ts"));
            }
            *reply = c.reply;
            return MERIDIAN_OK;
        }
        const char *e = json_string_value(json_object_get(c.reply, "error"));
        bool stale_map = e && (!strcmp(e, "wrong_range") || !strcmp(e, "no_group"));
        int code = mer_code_of_error(e);
        if (t->ro && e && !strcmp(e, "behind"))
            code = t->bound == MERIDIAN_MAX_STALENESS ? MERIDIAN_STALE : MERIDIAN_UNAVAILABLE;
        mer_fail(db, code, "read of group %llu: %s", (unsigned long long)gid, c.why);
        json_decref(c.reply);
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

static int copy_out(meridian *db, const char *s, size_t len, void **val, size_t *vlen)
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

int meridian_get(meridian_txn *t, const void *key, size_t klen, void **val, size_t *vlen)
{
    return meridian_get_version(t, key, klen, val, vlen, NULL);
}

int meridian_get_version(meridian_txn *t, const void *key, size_t klen, void **val, size_t *vlen,
                         int64_t *version_ts)
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
    char *k;
    if ((rc = copy_checked(t->db, key, klen, true, &k)) != MERIDIAN_OK)
        return rc;
    const mer_write *w = mer_wbuf_get(&t->wb, k);
    if (w) { /* the transaction's own write */
        free(k);
        return w->val ? copy_out(t->db, w->val, w->vlen, val, vlen)
                      : mer_fail(t->db, MERIDIAN_NOTFOUND, "not found (deleted here)");
    }
    json_t *reply = NULL;
    rc = read_once(t, k, NULL, 0, 0, &reply);
    free(k);
    if (rc != MERIDIAN_OK)
        return rc;
    json_t *v = json_object_get(reply, "value");
    mer_clear(t->db); /* whatever was retried on the way, this read worked */
    if (!json_is_true(json_object_get(reply, "found")) || !json_is_string(v)) {
        rc = mer_fail(t->db, MERIDIAN_NOTFOUND, "not found");
    } else {
        rc = copy_out(t->db, json_string_value(v), json_string_length(v), val, vlen);
        if (rc == MERIDIAN_OK && version_ts)
            *version_ts = (int64_t)json_integer_value(json_object_get(reply, "version_ts"));
    }
    json_decref(reply);
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
    char *k = NULL, *v = NULL;
    if ((rc = copy_checked(t->db, key, klen, true, &k)) != MERIDIAN_OK ||
        (!del && (rc = copy_checked(t->db, val, vlen, false, &v)) != MERIDIAN_OK)) {
        free(k);
        return rc;
    }
    if (mer_wbuf_set(&t->wb, k, del ? NULL : v, vlen) != MR_OK)
        rc = mer_fail(t->db, MERIDIAN_NOMEM, "out of memory");
    free(k);
    free(v);
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

static void emit(scan_state *s, const char *k, size_t klen, const char *v, size_t vlen)
{
    if (s->stop)
        return;
    s->emitted++;
    if (s->fn(s->arg, k, klen, v, vlen) != 0 || (s->limit && s->emitted >= s->limit))
        s->stop = true;
}

/* Emits a page of rows merged with the buffered writes in [*wi, up to hi]
 * (hi inclusive; NULL = every buffered write below chunk_end, "" = none). */
static void merge_page(scan_state *s, json_t *rows, size_t *wi, const char *hi, bool hi_incl)
{
    const mer_wbuf *b = &s->t->wb;
    size_t ri = 0, nrows = json_array_size(rows);
    for (;;) {
        const mer_write *w = NULL;
        if (*wi < b->n) {
            int c = *hi ? strcmp(b->w[*wi].key, hi) : -1;
            if (c < 0 || (c == 0 && hi_incl))
                w = &b->w[*wi];
        }
        json_t *row = ri < nrows ? json_array_get(rows, ri) : NULL;
        json_t *rk = row ? json_object_get(row, "key") : NULL;
        if (!w && !rk)
            return;
        int c = !w ? 1 : !rk ? -1 : strcmp(w->key, json_string_value(rk));
        if (c <= 0) { /* our own write wins over the stored version */
            if (w->val)
                emit(s, w->key, strlen(w->key), w->val, w->vlen);
            (*wi)++;
            ri += c == 0;
        } else {
            json_t *rv = json_object_get(row, "value");
            emit(s, json_string_value(rk), json_string_length(rk), json_string_value(rv) ?: "",
                 json_string_length(rv));
            ri++;
        }
        if (s->stop)
            return;
    }
}

/* Scans [cur, chunk_end) at group gid, page by page. chunk_end "" = +inf.
 * On MER_REROUTE, *resume (malloc'd) is where the scan must go on. */
static int scan_chunk(scan_state *s, uint64_t gid, char *cur, const char *chunk_end, char **resume)
{
    meridian_txn *t = s->t;
    size_t wi = mer_wbuf_lower_bound(&t->wb, cur);
    char *pos = strdup(cur);
    if (!pos)
        return mer_fail(t->db, MERIDIAN_NOMEM, "out of memory");
    int rc = MERIDIAN_OK;
    while (!s->stop) {
        size_t page = MER_SCAN_PAGE;
        if (s->limit && s->limit - s->emitted < page)
            page = s->limit - s->emitted;
        /* To +infinity: a locked scan says end "" (to the end of the range),
         * a snapshot scan gives no end (with a limit it runs on). */
        const char *end = *chunk_end ? chunk_end : t->ro ? NULL : "";
        json_t *reply = NULL;
        rc = read_once(t, pos, end, page, gid, &reply);
        if (rc == MER_REROUTE) {
            *resume = pos;
            return rc;
        }
        if (rc != MERIDIAN_OK)
            break;
        json_t *rows = json_object_get(reply, "rows");
        size_t n = json_array_size(rows);
        /* A page ends at the node's row or byte budget: it says `more` and
         * the key to resume from. */
        const char *from = json_string_value(json_object_get(reply, "resume"));
        bool last = json_object_get(reply, "more") ? !json_is_true(json_object_get(reply, "more"))
                                                   : n < page;
        if (n == 0)
            last = true;
        const char *hi =
            last ? chunk_end
                 : json_string_value(json_object_get(json_array_get(rows, n - 1), "key"));
        merge_page(s, rows, &wi, hi ? hi : "", !last);
        if (!last && !s->stop) {
            /* The next page starts at the resume key, else just after the
             * last key: key + "\x01" is the smallest key above it (keys hold
             * no NUL). */
            size_t hl = strlen(from ? from : hi);
            char *next = malloc(hl + 2);
            if (!next) {
                json_decref(reply);
                rc = mer_fail(t->db, MERIDIAN_NOMEM, "out of memory");
                break;
            }
            memcpy(next, from ? from : hi, hl);
            memcpy(next + hl, from ? "" : MER_KEY_BOTTOM, from ? 1 : 2);
            free(pos);
            pos = next;
        }
        json_decref(reply);
        if (last)
            break;
    }
    free(pos);
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
    char *from = NULL, *to = NULL;
    if (slen && (rc = copy_checked(t->db, start, slen, true, &from)) != MERIDIAN_OK)
        return rc;
    if (end && elen && (rc = copy_checked(t->db, end, elen, true, &to)) != MERIDIAN_OK) {
        free(from);
        return rc;
    }
    if (!from && !(from = strdup(MER_KEY_BOTTOM))) {
        free(to);
        return mer_fail(t->db, MERIDIAN_NOMEM, "out of memory");
    }
    if ((rc = ensure_map(t->db)) != MERIDIAN_OK) {
        free(from);
        free(to);
        return txn_fail(t, rc);
    }
    scan_state s = {.t = t, .limit = limit, .fn = fn, .arg = arg};
    /* Range by range, in key order: [cur, min(range end, to)) at the range's group. */
    char *cur = from;
    int reroutes = 0;
    while (rc == MERIDIAN_OK && !s.stop && (!to || strcmp(cur, to) < 0)) {
        const mer_range *r = mer_rmap_find(&t->db->map, cur);
        uint64_t gid = t->db->map.groups[r->group].id;
        bool to_first = to && (!*r->end || strcmp(to, r->end) <= 0);
        char *chunk_end = strdup(to_first ? to : r->end);
        if (!chunk_end) {
            rc = mer_fail(t->db, MERIDIAN_NOMEM, "out of memory");
            break;
        }
        char *resume = NULL;
        rc = scan_chunk(&s, gid, cur, chunk_end, &resume);
        free(cur);
        if (rc == MER_REROUTE) { /* the map changed under the scan: go on from there */
            free(chunk_end);
            cur = resume;
            rc = ++reroutes < MER_REROUTES ? MERIDIAN_OK : txn_fail(t, MERIDIAN_UNAVAILABLE);
            continue;
        }
        cur = chunk_end;
        if (!*cur)
            break; /* that was the last range */
    }
    free(cur);
    free(to);
    if (rc == MERIDIAN_OK)
        mer_clear(t->db);
    return rc;
}

/* ---- commit and rollback ---- */

/* Sends abort to every group t touched (releasing its locks there); the
 * answers do not matter: locks of vanished clients expire anyway. */
static void send_aborts(meridian_txn *t)
{
    if (t->ro || t->ngroups == 0)
        return;
    mer_call *calls = calloc(t->ngroups, sizeof *calls);
    if (!calls)
        return;
    for (size_t i = 0; i < t->ngroups; i++) {
        calls[i] = (mer_call){.type = ND_MSG_TXN,
                              .group = t->groups[i].gid,
                              .flags = MER_CALL_LEADER | MER_CALL_RESEND};
        calls[i].req = json_pack("{s:I, s:I, s:s}", "txn", (json_int_t)t->id, "prio",
                                 (json_int_t)t->prio, "op", "abort");
    }
    mer_calls_run(t->db, calls, t->ngroups);
    for (size_t i = 0; i < t->ngroups; i++) {
        json_decref(calls[i].req);
        json_decref(calls[i].reply);
    }
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
    const char *state = json_string_value(json_object_get(c->reply, "state"));
    if (json_is_true(json_object_get(c->reply, "ok")) && state) {
        *at = (int64_t)json_integer_value(json_object_get(c->reply, "ts"));
        if (strcmp(state, "committed") == 0)
            return STATUS_COMMITTED;
        if (strcmp(state, "aborted") == 0)
            return STATUS_ABORTED;
        return STATUS_PENDING;
    }
    /* A node that does not know op "status" cannot tell, however often asked; nor can one
     * that collected the decision (past its --decision-retention). */
    const char *e = json_string_value(json_object_get(c->reply, "error"));
    if (e && strcmp(e, "forgotten") == 0)
        return STATUS_FORGOTTEN;
    return mer_code_of_error(e) == MERIDIAN_INVALID ? STATUS_UNSUPPORTED : STATUS_PENDING;
}

/* Asks the coordinator group how transaction t ended (nd.h: op "status"; a
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
        mer_call c = {.type = ND_MSG_TXN,
                      .group = coord,
                      .flags = MER_CALL_LEADER | MER_CALL_RESEND,
                      .req = json_pack("{s:I, s:I, s:s}", "txn", (json_int_t)t->id, "prio",
                                       (json_int_t)t->prio, "op", "status")};
        mer_calls_run(db, &c, 1);
        json_decref(c.req);
        int64_t at = 0;
        txn_status st = status_of(&c, &at);
        if (st != STATUS_COMMITTED && st != STATUS_ABORTED)
            snprintf(last, sizeof last, "%s", c.rc == MR_OK && !c.why[0] ? "pending" : c.why);
        json_decref(c.reply);
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

/* The commit request of group tg, with its share of the writes. */
static json_t *commit_request(meridian_txn *t, const mer_tgroup *tg, uint64_t coord,
                              const uint64_t *parts, size_t nparts)
{
    json_t *writes = json_array();
    const mer_rmap *m = &t->db->map;
    for (size_t i = 0; writes && i < t->wb.n; i++) {
        const mer_write *w = &t->wb.w[i];
        if (m->groups[mer_rmap_find(m, w->key)->group].id != tg->gid)
            continue;
        if (json_array_append_new(
                writes, w->val ? json_pack("{s:s, s:s%}", "key", w->key, "value", w->val, w->vlen)
                               : json_pack("{s:s, s:b}", "key", w->key, "delete", 1)) != 0) {
            json_decref(writes); /* never a commit missing a write */
            return NULL;
        }
    }
    json_t *req = json_pack("{s:I, s:I, s:s, s:o, s:I}", "txn", (json_int_t)t->id, "prio",
                            (json_int_t)t->prio, "op", "commit", "writes", writes, "nreads",
                            (json_int_t)tg->nreads);
    if (req && nparts > 1) {
        json_t *p = json_array();
        for (size_t i = 0; i < nparts; i++)
            json_array_append_new(p, json_integer((json_int_t)parts[i]));
        json_object_set_new(req, "coordinator", json_integer((json_int_t)coord));
        json_object_set_new(req, "participants", p);
    }
    return req;
}

/* Every group written joins the groups read; returns false without memory. */
static bool collect_participants(meridian_txn *t)
{
    const mer_rmap *m = &t->db->map;
    for (size_t i = 0; i < t->wb.n; i++) {
        mer_tgroup *tg = tgroup(t, m->groups[mer_rmap_find(m, t->wb.w[i].key)->group].id, true);
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
static int commit_groups(meridian_txn *t, int64_t *ts)
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
        calls[i] =
            (mer_call){.type = ND_MSG_TXN, .group = t->groups[i].gid, .flags = MER_CALL_LEADER};
        calls[i].req = commit_request(t, &t->groups[i], coord, parts, n);
        if (!calls[i].req) {
            rc = mer_fail(db, MERIDIAN_NOMEM, "out of memory");
        } else if (rc == MERIDIAN_OK) {
            /* A request over the frame limit could not be sent: refuse it
             * here, as nothing committed (the node refuses, too_large, a
             * commit record over its log's entry size). */
            char *text = json_dumps(calls[i].req, JSON_COMPACT);
            size_t len = text ? strlen(text) : 0;
            free(text);
            if (!text)
                rc = mer_fail(db, MERIDIAN_NOMEM, "out of memory");
            else if (len > NET_FRAME_DEFAULT_MAX)
                rc = mer_fail(db, MERIDIAN_INVALID,
                              "the transaction's writes at group %llu take %zu bytes, over the "
                              "%u-byte request limit",
                              (unsigned long long)t->groups[i].gid, len, NET_FRAME_DEFAULT_MAX);
        }
        if (t->groups[i].gid == coord)
            ci = i;
    }
    if (rc == MERIDIAN_OK)
        mer_calls_run(db, calls, n);
    mer_call *c = &calls[ci];
    bool stale_map = false;
    mer_call *too_large = NULL; /* a participant's writes over the log's entry size */
    for (size_t i = 0; rc == MERIDIAN_OK && i < n; i++) {
        const char *e = json_string_value(json_object_get(calls[i].reply, "error"));
        stale_map |= e && (!strcmp(e, "wrong_range") || !strcmp(e, "no_group"));
        if (e && !strcmp(e, "too_large"))
            too_large = &calls[i];
    }
    if (rc != MERIDIAN_OK) {
        /* nothing was sent */
    } else if (c->rc != MR_OK) {
        /* The commit may or may not have arrived: ask. */
        rc = resolve_status(t, coord, ts, c->why);
    } else if (json_is_true(json_object_get(c->reply, "ok"))) {
        if (ts)
            *ts = (int64_t)json_integer_value(json_object_get(c->reply, "ts"));
    } else {
        const char *e = json_string_value(json_object_get(c->reply, "error"));
        rc = mer_code_of_error(e);
        if (rc == MERIDIAN_UNKNOWN)
            rc = resolve_status(t, coord, ts, c->why);
        else if (too_large) /* it voted no: aborted for good, a retry fails alike */
            rc = mer_fail(db, MERIDIAN_ERROR, "commit: %s", too_large->why);
        else if (stale_map || rc == MERIDIAN_UNAVAILABLE)
            rc = mer_fail(db, MERIDIAN_ABORTED, "commit refused: %s", c->why);
        else
            mer_fail(db, rc, "commit: %s", c->why);
    }
    for (size_t i = 0; i < n; i++) {
        json_decref(calls[i].req);
        json_decref(calls[i].reply);
    }
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
        rc = commit_groups(t, ts);
        if (rc == MERIDIAN_ABORTED)
            send_aborts(t);
    }
    t->state = MER_TXN_DONE;
    txn_free(t);
    if (rc == MERIDIAN_OK)
        mer_clear(db);
    return rc;
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

/* sql/sq_txn.c: a session's transaction over libmeridian.
 *
 * The session begins a transaction lazily, at the first virtual-table access
 * that needs one, and learns the catalog version at its timestamp: inside the
 * session's schema lease window without a read (sq_lease.c: a read-only
 * transaction's first read checks its timestamp, a read-write one commits
 * with a deadline), else by reading it first: under a shared lock in a
 * read-write transaction (a DDL commit, which writes the version, then waits
 * for it or wounds it), at the read timestamp in a read-only one. A version
 * other than the session's cached one fails the access with SQ_PEND_SCHEMA:
 * the session reloads the catalog through the same transaction and runs the
 * statement again.
 *
 * Writes go to the session's write buffer (sq_wbuf.h) and reach libmeridian
 * only at commit; reads merge the buffer over the store. */
#include <stdlib.h>
#include <string.h>

#include "common/mr_util.h"
#include "sql/sq_int.h"

static sq_txn *txn_new(msql *s, meridian_txn *t, int rw)
{
    sq_txn *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->refs = 1;
    x->t = t;
    x->rw = rw;
    x->serial = ++s->serial;
    return x;
}

void sq_txn_ref(sq_txn *x)
{
    x->refs++;
}

void sq_txn_unref(sq_txn *x)
{
    if (x && --x->refs == 0) {
        if (x->t) /* cannot happen: the session ends a transaction before its last unref */
            meridian_rollback(x->t);
        free(x);
    }
}

int sq_txn_begin(msql *s, int rw, meridian_bound bound, int64_t ns)
{
    meridian_txn *t = NULL;
    int rc = rw ? meridian_begin(s->db, &t) : meridian_begin_ro(s->db, bound, ns, &t);
    if (rc != MERIDIAN_OK)
        return sq_fail_meridian(s, rc, rw ? "begin" : "begin read-only");
    sq_txn *x = txn_new(s, t, rw);
    if (!x) {
        meridian_rollback(t);
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    }
    s->tx = x;
    sq_wbuf_clear(s->wb);
    s->stmt_mark = 0;
    return SQLITE_OK;
}

static void clear_savepoints(msql *s)
{
    for (int i = 0; i < s->nsp; i++)
        free(s->sp[i].name);
    s->nsp = 0;
}

void sq_txn_abandon(msql *s)
{
    sq_txn *x = s->tx;
    s->tx = NULL;
    if (x) {
        if (x->t)
            meridian_rollback(x->t);
        x->t = NULL;
        sq_txn_unref(x);
    }
    sq_wbuf_clear(s->wb);
    s->stmt_mark = 0;
    clear_savepoints(s);
}

int sq_txn_read_version(msql *s, sq_txn *x, int64_t *v)
{
    sq_ver r;
    *v = 0;
    if (sq_ver_read(s, x->t, &r))
        return SQLITE_ERROR;
    *v = r.v;
    return SQLITE_OK;
}

int sq_txn_check_version(msql *s, sq_txn *x)
{
    int64_t v;
    if (sq_txn_read_version(s, x, &v))
        return SQLITE_ERROR;
    if (v != s->cat.version)
        return sq_fail(s, SQ_PEND_SCHEMA,
                       "schema changed (catalog version %lld, this session had %lld)", (long long)v,
                       (long long)s->cat.version);
    return SQLITE_OK;
}

sq_txn *sq_txn_get(msql *s, int rw)
{
    if (!s->tx) {
        int rc;
        if (s->explicit_txn)
            rc = sq_txn_begin(s, !s->explicit_ro, s->bound, s->bound_ns);
        else if (s->autocommit_ro)
            rc = sq_txn_begin(s, 0, MERIDIAN_STRONG, 0);
        else {
            sq_fail(s, MSQL_ERROR, "internal: no transaction for an autocommit write");
            return NULL;
        }
        if (rc)
            return NULL;
    }
    sq_txn *x = s->tx;
    if (!x->t) {
        sq_fail(s, MSQL_ERROR, "the transaction has ended");
        return NULL;
    }
    if (rw && !x->rw) {
        sq_fail(s, MSQL_ERROR, "cannot write in a read-only transaction");
        return NULL;
    }
    if (!x->checked && sq_lease_begin(s, x))
        x->checked = 1; /* the schema lease stands in for the version read */
    if (!x->checked) {
        if (sq_txn_check_version(s, x))
            return NULL;
        x->checked = 1;
    }
    return x;
}

int sq_read(msql *s, sq_txn *x, const uint8_t *key, size_t klen, uint8_t **val, size_t *vlen)
{
    sq_went e;
    if (klen > MERIDIAN_KEY_MAX)
        return SQLITE_NOTFOUND; /* no stored key is that long */
    if (x->rw && sq_wbuf_get(s->wb, key, klen, &e)) {
        if (e.del)
            return SQLITE_NOTFOUND;
        uint8_t *p = malloc(e.vlen ? e.vlen : 1);
        if (!p)
            return sq_fail(s, MSQL_NOMEM, "out of memory");
        memcpy(p, e.val, e.vlen);
        *val = p;
        *vlen = e.vlen;
        return 0;
    }
    void *v = NULL;
    size_t n = 0;
    int rc = meridian_get(x->t, key, klen, &v, &n);
    if ((rc == MERIDIAN_OK || rc == MERIDIAN_NOTFOUND) && x->lease_check && sq_lease_check(s, x)) {
        meridian_free(v); /* read under a schema that may not be the one at its timestamp */
        return SQLITE_ERROR;
    }
    if (rc == MERIDIAN_NOTFOUND)
        return SQLITE_NOTFOUND;
    if (rc != MERIDIAN_OK)
        return sq_fail_meridian(s, rc, "read");
    s->rows_read++;
    uint8_t *p = malloc(n ? n : 1);
    if (!p) {
        meridian_free(v);
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    }
    if (n)
        memcpy(p, v, n);
    meridian_free(v);
    *val = p;
    *vlen = n;
    return 0;
}

typedef struct scan_arg {
    msql *s;
    sq_txn *x;
    sq_row_cb fn;
    void *arg;
    int stopped;
    int unchecked; /* stopped at the first row: its timestamp is outside the window */
} scan_arg;

static int scan_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    scan_arg *a = arg;
    if (a->x->lease_check) {
        /* no row goes on before the schema is known to be the one at the
         * transaction's timestamp */
        int64_t ts = meridian_read_ts(a->x->t);
        if (ts >= a->x->win_lo && ts < a->x->win_hi) {
            a->x->lease_check = 0;
        } else {
            a->unchecked = 1;
            return 1;
        }
    }
    a->s->rows_read++;
    if (a->fn(a->arg, key, klen, val, vlen)) {
        a->stopped = 1;
        return 1;
    }
    return 0;
}

int sq_scan_store(msql *s, sq_txn *x, const uint8_t *start, size_t slen, const uint8_t *end,
                  size_t elen, size_t limit, sq_row_cb fn, void *arg)
{
    scan_arg a = {s, x, fn, arg, 0, 0};
    /* Bounds longer than any key: with T the first MERIDIAN_KEY_MAX bytes,
     * the keys >= start are those >= succ(T), and the keys < end those
     * < succ(T) (no stored key extends T). */
    uint8_t sb[MERIDIAN_KEY_MAX], eb[MERIDIAN_KEY_MAX];
    if (slen > MERIDIAN_KEY_MAX) {
        if (!sq_key_succ(start, MERIDIAN_KEY_MAX, sb, &slen))
            return SQLITE_OK; /* nothing can be above */
        start = sb;
    }
    if (end && elen > MERIDIAN_KEY_MAX) {
        if (!sq_key_succ(end, MERIDIAN_KEY_MAX, eb, &elen))
            end = NULL;
        else
            end = eb;
    }
    int rc = meridian_scan(x->t, start, slen, end, end ? elen : 0, limit, scan_cb, &a);
    if (rc != MERIDIAN_OK)
        return sq_fail_meridian(s, rc, "scan");
    if (x->lease_check) {
        /* the first row's timestamp was outside the window (or no row came):
         * read the version at it; the same schema lets the scan run again */
        if (sq_lease_check(s, x))
            return SQLITE_ERROR;
        if (a.unchecked) {
            a.unchecked = 0;
            rc = meridian_scan(x->t, start, slen, end, end ? elen : 0, limit, scan_cb, &a);
            if (rc != MERIDIAN_OK)
                return sq_fail_meridian(s, rc, "scan");
        }
    }
    return SQLITE_OK;
}

/* sq_scan_merged: pages of the store merged with the buffer. */
typedef struct page {
    uint8_t **k, **v;
    size_t *kl, *vl;
    size_t n, cap;
} page;

static void page_clear(page *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->k[i]);
        free(p->v[i]);
    }
    p->n = 0;
}

static int page_add(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    page *p = arg;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        uint8_t **nk = realloc(p->k, cap * sizeof *nk);
        if (nk)
            p->k = nk;
        uint8_t **nv = realloc(p->v, cap * sizeof *nv);
        if (nv)
            p->v = nv;
        size_t *nkl = realloc(p->kl, cap * sizeof *nkl);
        if (nkl)
            p->kl = nkl;
        size_t *nvl = realloc(p->vl, cap * sizeof *nvl);
        if (nvl)
            p->vl = nvl;
        if (!nk || !nv || !nkl || !nvl)
            return 1;
        p->cap = cap;
    }
    uint8_t *ck = malloc(kl ? kl : 1), *cv = malloc(vl ? vl : 1);
    if (!ck || !cv) {
        free(ck);
        free(cv);
        return 1;
    }
    memcpy(ck, k, kl);
    if (vl)
        memcpy(cv, v, vl);
    p->k[p->n] = ck;
    p->v[p->n] = cv;
    p->kl[p->n] = kl;
    p->vl[p->n] = vl;
    p->n++;
    return 0;
}

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (al < bl ? -1 : al > bl);
}

int sq_scan_merged(msql *s, sq_txn *x, const uint8_t *start, size_t slen, const uint8_t *end,
                   size_t elen, sq_row_cb fn, void *arg)
{
    enum { PAGE = 1000 };
    page pg = {0};
    sq_buf from = {0};
    int rc = SQLITE_OK, done = 0;
    if (sq_buf_put(&from, start, slen)) {
        rc = sq_fail(s, MSQL_NOMEM, "out of memory");
        goto out;
    }
    /* pos: the last key handed out (strict lower bound); none at first. */
    sq_buf pos = {0};
    int have_pos = 0;
    while (!done) {
        page_clear(&pg);
        rc = sq_scan_store(s, x, from.p, from.len, end, elen, PAGE, page_add, &pg);
        if (rc)
            break;
        int last_page = pg.n < PAGE;
        /* Merge buffer entries up to the page's last key (or to end). */
        size_t i = 0;
        for (;;) {
            sq_went e;
            int hb = x->rw && sq_wbuf_seek(s->wb, have_pos ? pos.p : start,
                                           have_pos ? pos.len : slen, have_pos, &e);
            if (hb && end && key_cmp(e.key, e.klen, end, elen) >= 0)
                hb = 0;
            if (hb && !last_page && pg.n &&
                key_cmp(e.key, e.klen, pg.k[pg.n - 1], pg.kl[pg.n - 1]) > 0)
                hb = 0; /* beyond this page: the next one may hold smaller store keys */
            int hs = i < pg.n;
            if (!hb && !hs)
                break;
            const uint8_t *k, *v;
            size_t kl, vl;
            int live;
            if (hb && (!hs || key_cmp(e.key, e.klen, pg.k[i], pg.kl[i]) <= 0)) {
                if (hs && key_cmp(e.key, e.klen, pg.k[i], pg.kl[i]) == 0)
                    i++;
                k = e.key, kl = e.klen, v = e.val, vl = e.vlen, live = !e.del;
            } else {
                k = pg.k[i], kl = pg.kl[i], v = pg.v[i], vl = pg.vl[i], live = 1;
                i++;
            }
            pos.len = 0;
            if (sq_buf_put(&pos, k, kl)) {
                rc = sq_fail(s, MSQL_NOMEM, "out of memory");
                goto out2;
            }
            have_pos = 1;
            if (live && fn(arg, k, kl, v, vl)) {
                done = 1;
                break;
            }
        }
        if (last_page)
            break;
        /* The next page starts just after the page's last key. */
        from.len = 0;
        if (sq_buf_put(&from, pg.k[pg.n - 1], pg.kl[pg.n - 1]) || sq_buf_put(&from, "", 1)) {
            rc = sq_fail(s, MSQL_NOMEM, "out of memory");
            break;
        }
        from.p[from.len - 1] = 0x00;
    }
out2:
    sq_buf_free(&pos);
out:
    page_clear(&pg);
    free(pg.k);
    free(pg.v);
    free(pg.kl);
    free(pg.vl);
    sq_buf_free(&from);
    return rc;
}

int sq_txn_put(msql *s, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    if (sq_wbuf_set(s->wb, key, klen, val, vlen, 0))
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    return SQLITE_OK;
}

int sq_txn_del(msql *s, const uint8_t *key, size_t klen)
{
    if (sq_wbuf_set(s->wb, key, klen, NULL, 0, 1))
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    return SQLITE_OK;
}

int sq_txn_flush(msql *s)
{
    sq_txn *x = s->tx;
    sq_went e;
    int have = sq_wbuf_seek(s->wb, NULL, 0, 0, &e);
    sq_buf k = {0};
    while (have) {
        int rc = e.del ? meridian_delete(x->t, e.key, e.klen)
                       : meridian_put(x->t, e.key, e.klen, e.val, e.vlen);
        if (rc != MERIDIAN_OK) {
            sq_buf_free(&k);
            return sq_fail_meridian(s, rc, "write");
        }
        k.len = 0;
        if (sq_buf_put(&k, e.key, e.klen)) {
            sq_buf_free(&k);
            return sq_fail(s, MSQL_NOMEM, "out of memory");
        }
        have = sq_wbuf_seek(s->wb, k.p, k.len, 1, &e);
    }
    sq_buf_free(&k);
    return SQLITE_OK;
}

int sq_txn_commit(msql *s)
{
    sq_txn *x = s->tx;
    if (!x) {
        clear_savepoints(s);
        return MSQL_OK;
    }
    int code = MSQL_OK;
    if (x->rw && (sq_lease_commit(s, x) || sq_txn_flush(s))) {
        code = s->pending ? s->pending : MSQL_ERROR;
        sq_txn_abandon(s);
        return code;
    }
    uint64_t id = meridian_txn_id(x->t);
    int rw = x->rw;
    int64_t ts = 0;
    int rc = meridian_commit(x->t, &ts);
    if (rc == MERIDIAN_ABORTED && x->deadline_set) {
        /* maybe past the deadline: the next transaction learns a new window */
        s->win_v = -1;
        s->refresh_after = 0;
    }
    x->t = NULL;
    s->tx = NULL;
    sq_txn_unref(x);
    sq_wbuf_clear(s->wb);
    s->stmt_mark = 0;
    clear_savepoints(s);
    if (rw)
        s->last_txn_id = id;
    if (rc == MERIDIAN_OK) {
        if (ts > 0 && rw) {
            s->commit_ts = ts;
            s->commit_wait_ns = meridian_commit_wait_ns(s->db);
        }
        return MSQL_OK;
    }
    if (rc == MERIDIAN_UNKNOWN) {
        sq_fail(s, MSQL_UNKNOWN,
                "commit outcome unknown for transaction %llu: it may have committed "
                "(`meridian op status %llu` tells): %s",
                (unsigned long long)id, (unsigned long long)id, meridian_errmsg(s->db));
        return MSQL_UNKNOWN;
    }
    sq_fail_meridian(s, rc, "commit");
    return s->pending ? s->pending : MSQL_ERROR;
}

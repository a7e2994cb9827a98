/* Range scans at a timestamp: one primary-key walk per scan, newest visible version per key.
 *
 * The forward walk reads (key ASC, ts DESC), so the first version of a key with ts <= t is the
 * one to return and the rest of the key is skipped. Stepping over skipped versions is cheaper
 * than a seek while they are few; past MV_SKIP_SEEK of them on one key (a hot key with a long
 * history, or a read far in the past) the walk re-seeks instead: a point lookup for the visible
 * version and a restart of the walk just past the key (key || 0x00 is the smallest greater key),
 * so the cost stays near O(keys * log n) however many versions a key has. */
#include "tablet/mvcc/mv_int.h"

#include <stdlib.h>
#include <string.h>

#define MV_SKIP_SEEK 8

typedef struct scan {
    mv_store *s;
    const mv_scan_opts *o;
    const void *lo, *hi; /* effective bounds; hi_len 0 = unbounded */
    size_t lo_len, hi_len;
    mv_scan_fn fn;
    void *arg;
    uint64_t n;
    int ret;     /* the callback's nonzero verdict, returned by mv_scan */
    int code;    /* MR_ECORRUPT when a version failed its checksum */
    mv_buf cur;  /* the current key */
    mv_buf seek; /* re-seek position */
    mv_buf val;  /* reverse walk: the candidate's value */
    mr_err *err;
} scan;

static sqlite3_stmt *start_walk(scan *c, int id_b, int id_u, const void *from, size_t from_len)
{
    sqlite3_stmt *st = c->s->st[c->hi_len ? id_b : id_u];
    sqlite3_reset(st);
    mv_bind_blob(st, 1, from, from_len);
    if (c->hi_len)
        mv_bind_blob(st, 2, c->hi, c->hi_len);
    return st;
}

/* Checks the version that decides a key (value or tombstone) and counts it in opts->newest;
 * 1 to stop on a bad checksum. */
static int bad(scan *c, const void *key, size_t klen, int64_t ts, int tomb, const void *v,
               size_t vlen, int64_t crc)
{
    if (c->o->newest && ts > *c->o->newest)
        *c->o->newest = ts;
    c->code = mv_check_crc(c->s, key, klen, ts, tomb, v, vlen, crc, c->err);
    return c->code != 0;
}

/* Delivers one visible version after checking it; 1 when the walk must stop (a bad checksum,
 * the callback said so, kept in c->ret, or the limit is reached). */
static int emit(scan *c, const void *key, size_t klen, int64_t ts, const void *v, size_t vlen,
                int64_t crc)
{
    static const char empty[1];
    if (bad(c, key, klen, ts, 0, v, vlen, crc))
        return 1;
    /* SQLite gives NULL for a 0-byte blob; callers get a valid pointer for every value. */
    mv_version mv = {
        .key = key, .key_len = klen, .value = (void *)(v ? v : empty), .len = vlen, .ts = ts};
    c->ret = c->fn(c->arg, &mv);
    c->n++;
    return c->ret || (c->o->limit && c->n >= c->o->limit);
}

/* The visible version of c->cur by a point lookup; emits it. */
static int lookup_emit(scan *c, int *stop)
{
    sqlite3_stmt *g = c->s->st[ST_GET];
    mv_bind_blob(g, 1, c->cur.p, c->cur.len);
    sqlite3_bind_int64(g, 2, c->o->ts);
    int rc = sqlite3_step(g);
    int r = 0;
    if (rc == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(g, 0), crc = sqlite3_column_int64(g, 2);
        const void *v = sqlite3_column_blob(g, 1);
        size_t vlen = (size_t)sqlite3_column_bytes(g, 1);
        if (sqlite3_column_type(g, 1) != SQLITE_NULL)
            r = emit(c, c->cur.p, c->cur.len, ts, v, vlen, crc);
        else
            r = bad(c, c->cur.p, c->cur.len, ts, 1, NULL, 0, crc);
        rc = SQLITE_DONE;
    }
    sqlite3_reset(g);
    if (rc != SQLITE_DONE)
        return mv_sqlerr(c->s, rc, c->err, "scan: seeking a key's version");
    *stop = r;
    return 0;
}

static int walk_forward(scan *c, int *stop)
{
    sqlite3_stmt *st = start_walk(c, ST_SCAN_B, ST_SCAN_U, c->lo, c->lo_len);
    int have = 0, decided = 0, skipped = 0, rc;
    const int64_t t = c->o->ts;
    *stop = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *k = sqlite3_column_blob(st, 0);
        size_t klen = (size_t)sqlite3_column_bytes(st, 0);
        int64_t ts = sqlite3_column_int64(st, 1);
        if (!have || mv_keycmp(k, klen, c->cur.p, c->cur.len) != 0) {
            if (mv_buf_set(&c->cur, k, klen))
                goto nomem;
            have = 1;
            decided = skipped = 0;
        }
        if (!decided && ts <= t) {
            decided = 1;
            int64_t crc = sqlite3_column_int64(st, 3);
            int r = sqlite3_column_type(st, 2) != SQLITE_NULL
                        ? emit(c, k, klen, ts, sqlite3_column_blob(st, 2),
                               (size_t)sqlite3_column_bytes(st, 2), crc)
                        : bad(c, k, klen, ts, 1, NULL, 0, crc);
            if (r) {
                *stop = r;
                break;
            }
            continue;
        }
        if (++skipped <= MV_SKIP_SEEK)
            continue;
        /* Many versions on this key: seek instead of stepping through them. */
        if (!decided) {
            int r = lookup_emit(c, stop);
            if (r) {
                sqlite3_reset(st);
                return r;
            }
            if (*stop)
                break;
        }
        if (mv_buf_succ(&c->seek, c->cur.p, c->cur.len))
            goto nomem;
        if (c->hi_len && mv_keycmp(c->seek.p, c->seek.len, c->hi, c->hi_len) >= 0) {
            rc = SQLITE_DONE;
            break;
        }
        st = start_walk(c, ST_SCAN_B, ST_SCAN_U, c->seek.p, c->seek.len);
        have = 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return mv_sqlerr(c->s, rc, c->err, "scanning at %lld", (long long)t);
    return 0;
nomem:
    sqlite3_reset(st);
    return mr_errf(c->err, MR_ENOMEM, "mvcc: out of memory scanning");
}

/* Backwards the primary key yields each key's versions oldest first: the visible one is the
 * last with ts <= t, known only when the key ends, so it is copied until then. */
static int walk_reverse(scan *c, int *stop)
{
    sqlite3_stmt *st = start_walk(c, ST_RSCAN_B, ST_RSCAN_U, c->lo, c->lo_len);
    int have = 0, cand = 0, cand_tomb = 0, rc, r = 0;
    int64_t cand_ts = 0, cand_crc = 0;
    const int64_t t = c->o->ts;
    *stop = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *k = sqlite3_column_blob(st, 0);
        size_t klen = (size_t)sqlite3_column_bytes(st, 0);
        int64_t ts = sqlite3_column_int64(st, 1);
        if (!have || mv_keycmp(k, klen, c->cur.p, c->cur.len) != 0) {
            if (cand && (r = cand_tomb ? bad(c, c->cur.p, c->cur.len, cand_ts, 1, NULL, 0, cand_crc)
                                       : emit(c, c->cur.p, c->cur.len, cand_ts, c->val.p,
                                              c->val.len, cand_crc)) != 0)
                break;
            if (mv_buf_set(&c->cur, k, klen))
                goto nomem;
            have = 1;
            cand = 0;
        }
        if (ts > t)
            continue;
        cand = 1;
        cand_ts = ts;
        cand_tomb = sqlite3_column_type(st, 2) == SQLITE_NULL;
        cand_crc = sqlite3_column_int64(st, 3);
        if (!cand_tomb &&
            mv_buf_set(&c->val, sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2)))
            goto nomem;
    }
    if (rc == SQLITE_DONE && cand)
        r = cand_tomb ? bad(c, c->cur.p, c->cur.len, cand_ts, 1, NULL, 0, cand_crc)
                      : emit(c, c->cur.p, c->cur.len, cand_ts, c->val.p, c->val.len, cand_crc);
    sqlite3_reset(st);
    *stop = r;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return mv_sqlerr(c->s, rc, c->err, "scanning backwards at %lld", (long long)t);
    return 0;
nomem:
    sqlite3_reset(st);
    return mr_errf(c->err, MR_ENOMEM, "mvcc: out of memory scanning");
}

int mv_scan(mv_store *s, const mv_scan_opts *o, mv_scan_fn fn, void *arg, uint64_t *count,
            mr_err *err)
{
    if (count)
        *count = 0;
    if (!s || !o || !fn)
        return mr_errf(err, MR_EINVAL, "mvcc: scan needs a store, options and a callback");
    int code = 0;
    if (o->start_len)
        code = mv_check_key(o->start, o->start_len, "scan start", err);
    if (!code && o->end_len)
        code = mv_check_key(o->end, o->end_len, "scan end", err);
    if (!code)
        code = mv_check_read_ts(s, o->ts, err);
    if (code)
        return code;
    scan c = {.s = s, .o = o, .fn = fn, .arg = arg, .err = err};
    /* Bounds default to the tablet's range; explicit ones must lie inside it (a scan reaching
     * past the tablet is a routing error, not an empty answer). */
    c.lo = o->start_len ? o->start : s->r_start;
    c.lo_len = o->start_len ? o->start_len : s->r_start_len;
    c.hi = o->end_len ? o->end : s->r_end;
    c.hi_len = o->end_len ? o->end_len : s->r_end_len;
    if (o->start_len && !mv_in_range(s, o->start, o->start_len))
        return mr_errf(err, MR_EINVAL, "mvcc %s: scan start is outside the tablet's range",
                       s->path);
    if (o->end_len && s->r_end_len && mv_keycmp(o->end, o->end_len, s->r_end, s->r_end_len) > 0)
        return mr_errf(err, MR_EINVAL, "mvcc %s: scan end is past the tablet's range", s->path);
    if (c.hi_len && mv_keycmp(c.lo, c.lo_len, c.hi, c.hi_len) >= 0)
        return 0; /* empty range */
    int stop = 0;
    code = o->reverse ? walk_reverse(&c, &stop) : walk_forward(&c, &stop);
    mv_buf_free(&c.cur);
    mv_buf_free(&c.seek);
    mv_buf_free(&c.val);
    if (count)
        *count = c.n;
    if (code)
        return code;
    return c.code ? c.code : c.ret;
}

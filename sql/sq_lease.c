/* sql/sq_lease.c: F1-style schema leases (F1, "Online, Asynchronous Schema
 * Change in F1", VLDB 2013, section 3: a schema is valid for a lease).
 *
 * The catalog version record 0x01 0x01 holds "<V> <lease_ms>", or
 * "<V> <lease_ms> pending <nonce>" while a schema change waits out the lease
 * (legacy "<V>": lease 0, leases off). A session that read the record, with no
 * marker, at timestamp t0 in a read at EXACT_STALENESS 0 knows the *window*
 * [c_V, t0 + lease) in which V is certainly the schema (c_V: the record's
 * commit timestamp): a schema change first writes its marker (committed at
 * m > t0, or the session would have seen it), waits until every later commit
 * is above m + lease, and commits V+1 after that, so V+1's commit c > m +
 * lease > t0 + lease.
 *
 * What the window buys:
 *  - a read-only transaction reads no version first: after its first read, if
 *    its timestamp T is in the window the cached catalog is the schema at T;
 *    otherwise it reads the version at T (the path without a window);
 *  - a read-write transaction reads no version either, and commits with the
 *    deadline meridian_set_commit_before(L) (so at a timestamp inside the
 *    window) or not at all; at COMMIT with less than a quarter of the lease
 *    left by the session's clock (a commit may take that long) it reads the
 *    version under its shared lock instead (no deadline).
 *
 * Refreshes: when a transaction begins and the window is over by the
 * session's clock (read-only) or has less than a quarter of the lease left
 * (read-write), at most one per three quarters of a lease; a version other
 * than the cached one allows the next at once (the statement reloads through
 * its own transaction first).
 *
 * The DDL side (sq_ddl.c) uses sq_lease_mark/_wait/_unmark here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/mr_util.h"
#include "sql/sq_int.h"

/* ---- the version record ---- */

int sq_ver_parse(const void *val, size_t n, sq_ver *out)
{
    memset(out, 0, sizeof *out);
    char buf[96];
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, val, n);
    buf[n] = 0;
    char *p = buf, *end;
    long long v = strtoll(p, &end, 10);
    if (end == p || v < 0)
        return -1;
    out->v = v;
    if (*end == 0)
        return 0; /* legacy "<V>": leases off */
    if (*end != ' ')
        return -1;
    p = end + 1;
    long long l = strtoll(p, &end, 10);
    if (end == p || l < 0 || l > SQ_LEASE_MAX_MS)
        return -1;
    out->lease_ms = l;
    if (*end == 0)
        return 0;
    if (strncmp(end, " pending ", 9) != 0)
        return -1;
    p = end + 9;
    unsigned long long nonce = strtoull(p, &end, 10);
    if (end == p || *end || nonce == 0)
        return -1;
    out->nonce = nonce;
    return 0;
}

void sq_ver_format(const sq_ver *r, char *buf, size_t n)
{
    if (r->nonce)
        snprintf(buf, n, "%lld %lld pending %llu", (long long)r->v, (long long)r->lease_ms,
                 (unsigned long long)r->nonce);
    else
        snprintf(buf, n, "%lld %lld", (long long)r->v, (long long)r->lease_ms);
}

int sq_ver_read(msql *s, meridian_txn *t, sq_ver *out)
{
    uint8_t key[2] = {SQ_PFX_CATALOG, SQ_CAT_VERSION};
    void *val = NULL;
    size_t vlen = 0;
    int64_t ts = 0;
    memset(out, 0, sizeof *out);
    out->missing = 1;
    int rc = meridian_get_version(t, key, sizeof key, &val, &vlen, &ts);
    if (rc == MERIDIAN_NOTFOUND)
        return SQLITE_OK; /* a new catalog: version 0, nobody holds a window on it */
    if (rc != MERIDIAN_OK)
        return sq_fail_meridian(s, rc, "reading the catalog version");
    int bad = sq_ver_parse(val, vlen, out);
    meridian_free(val);
    if (bad)
        return sq_fail(s, MSQL_ERROR, "the catalog version key holds garbage");
    out->ts = ts;
    if (out->lease_ms != s->lease_ms) {
        s->lease_ms = out->lease_ms; /* the setting changed: a refresh may pay again */
        s->refresh_after = 0;
    }
    return SQLITE_OK;
}

/* ---- the session's window ---- */

static void window_clear(msql *s)
{
    s->win_v = -1;
    s->win_lo = s->win_hi = s->win_mono_end = 0;
}

int sq_lease_refresh(msql *s, int may_load)
{
    int64_t started = mr_monotonic_ns();
    meridian_txn *t = NULL;
    /* Not STRONG: a strong read may use an old timestamp (the groups' last
     * commit), which would make the window short or over already. */
    int rc = meridian_begin_ro(s->db, MERIDIAN_EXACT_STALENESS, 0, &t);
    if (rc != MERIDIAN_OK)
        return sq_fail_meridian(s, rc, "reading the catalog");
    sq_txn x = {.refs = 1, .t = t, .rw = 0, .checked = 1};
    sq_ver r;
    rc = sq_ver_read(s, t, &r);
    int64_t t0 = meridian_read_ts(t);
    s->refreshes++;
    if (!rc && r.v != s->cat.version) {
        if (may_load) {
            rc = sq_cat_load(s, &x, r.v);
        } else {
            /* inside a statement the catalog cannot be swapped: the
             * transaction reads the version and the statement reruns */
            meridian_rollback(t);
            window_clear(s);
            s->refresh_after = 0;
            return SQLITE_OK;
        }
    }
    meridian_rollback(t);
    if (rc) {
        window_clear(s);
        return rc;
    }
    int64_t lease_ns = r.lease_ms * MR_NS_PER_MS;
    if (r.nonce == 0 && r.lease_ms > 0 && t0 > 0 && !r.missing) {
        s->win_v = r.v;
        s->win_lo = r.ts;
        s->win_hi = t0 + lease_ns;
        /* the lease ends no sooner than lease after the refresh began (t0 is
         * the leader's clock's latest bound when it read, which came after) */
        s->win_mono_end = started + lease_ns;
    } else {
        window_clear(s);
    }
    /* the next refresh when a quarter of the lease is left (a pending marker
     * stays about a lease) */
    s->refresh_after = r.lease_ms > 0 ? started + lease_ns - lease_ns / 4 : INT64_MAX;
    return SQLITE_OK;
}

static int window_for_catalog(const msql *s)
{
    return s->win_v >= 0 && s->win_v == s->cat.version;
}

/* Is the window usable for the cached catalog with at least min_left ns left
 * by the session's clock? When not, refreshes (without loading) if one is
 * due. A read-only transaction (min_left 0) may still use a window the clock
 * says is over: its timestamp is checked anyway. */
static int window_ok(msql *s, int64_t min_left)
{
    int64_t now = mr_monotonic_ns();
    if (window_for_catalog(s) && now + min_left < s->win_mono_end)
        return 1;
    if (!(s->test_flags & MSQL_TEST_NO_REFRESH) && s->lease_ms > 0 && now >= s->refresh_after) {
        s->pending = 0;
        if (sq_lease_refresh(s, 0) != SQLITE_OK)
            s->pending = 0; /* not the statement's failure: it reads the version instead */
        now = mr_monotonic_ns();
        if (window_for_catalog(s) && now + min_left < s->win_mono_end)
            return 1;
    }
    return min_left == 0 && window_for_catalog(s);
}

int sq_lease_begin(msql *s, sq_txn *x)
{
    if (s->test_flags & MSQL_TEST_NO_LEASE)
        return 0;
    if (!x->rw) {
        if (!window_ok(s, 0))
            return 0;
        x->lease_check = 1; /* the check comes with the first read (sq_lease_check) */
        x->win_lo = s->win_lo;
        x->win_hi = s->win_hi;
        return 1;
    }
    /* read-write: it must commit before the window ends; with less than a
     * quarter of the lease left, a refresh first */
    int64_t quarter = s->lease_ms * MR_NS_PER_MS / 4;
    if (!window_ok(s, (s->test_flags & MSQL_TEST_NO_DEADLINE) ? 0 : quarter + 1))
        return 0;
    x->lease_v = s->win_v;
    x->deadline = s->win_hi;
    x->deadline_mono = s->win_mono_end;
    x->commit_margin = quarter;
    return 1;
}

int sq_lease_commit(msql *s, sq_txn *x)
{
    if (!x->rw || !x->deadline || (s->test_flags & MSQL_TEST_NO_DEADLINE))
        return SQLITE_OK;
    if (s->cat.version != x->lease_v)
        return sq_fail(s, MSQL_RETRY,
                       "retryable: schema changed during the transaction (catalog version %lld, "
                       "it began with %lld)",
                       (long long)s->cat.version, (long long)x->lease_v);
    if (mr_monotonic_ns() + x->commit_margin >= x->deadline_mono) {
        /* the lease is (nearly) over by the session's clock, too late for a
         * commit to make it: what a transaction without a window does, the
         * version read under the shared lock; no deadline */
        s->lease_fallbacks++;
        int64_t v;
        if (sq_txn_read_version(s, x, &v))
            return SQLITE_ERROR;
        if (v != s->cat.version)
            return sq_fail(s, MSQL_RETRY,
                           "retryable: schema changed (catalog version %lld, this transaction "
                           "ran with %lld)",
                           (long long)v, (long long)s->cat.version);
        return SQLITE_OK;
    }
    int rc = meridian_set_commit_before(x->t, x->deadline);
    if (rc != MERIDIAN_OK)
        return sq_fail_meridian(s, rc, "setting the commit deadline");
    x->deadline_set = 1;
    return SQLITE_OK;
}

int sq_lease_check(msql *s, sq_txn *x)
{
    if (!x->lease_check)
        return SQLITE_OK;
    int64_t ts = meridian_read_ts(x->t);
    if (ts == 0)
        return SQLITE_OK; /* no timestamp yet: the read failed; the next one checks */
    x->lease_check = 0;
    if (ts >= x->win_lo && ts < x->win_hi)
        return SQLITE_OK; /* the cached catalog is the schema at ts */
    s->lease_fallbacks++;
    /* beyond the window: what the read-only transaction reads without one */
    return sq_txn_check_version(s, x);
}

/* ---- schema changes (sq_ddl.c) ---- */

uint64_t sq_lease_nonce(void)
{
    uint64_t n = 0;
    while (n == 0) {
        if (getrandom(&n, sizeof n, 0) != (ssize_t)sizeof n)
            n = (uint64_t)mr_monotonic_ns() ^ ((uint64_t)mr_realtime_ns() << 17);
        n &= 0x7fffffffffffffffULL;
    }
    return n;
}

void sq_lease_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec d = {ms / 1000, (ms % 1000) * MR_NS_PER_MS};
    while (nanosleep(&d, &d) != 0)
        ;
}

int sq_lease_wait(msql *s, int64_t m, int64_t lease_ms, uint64_t nonce, int *ours)
{
    *ours = 0;
    sq_lease_sleep_ms(lease_ms);
    meridian_txn *t = NULL;
    /* The node waits until its clock passes m + lease: every commit after
     * this read is above it. */
    int rc = meridian_begin_ro(s->db, MERIDIAN_AT_TIMESTAMP, m + lease_ms * MR_NS_PER_MS + 1, &t);
    if (rc != MERIDIAN_OK)
        return sq_fail_meridian(s, rc, "waiting out the schema lease");
    sq_ver r;
    rc = sq_ver_read(s, t, &r);
    meridian_rollback(t);
    if (rc)
        return rc;
    *ours = r.nonce == nonce;
    return SQLITE_OK;
}

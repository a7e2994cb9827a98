/* tests/sql/fake_meridian.c: a test double of libmeridian in memory (see
 * fake_meridian.h for what it models and what it does not).
 *
 * The store is one sorted array of keys, each with its versions oldest first;
 * a version is (commit ts, value) or a deletion. A transaction's writes are a
 * sorted array too. Scans walk both by binary search from the last key
 * returned, so a callback may write into the transaction it scans. */
#include "tests/sql/fake_meridian.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TXN_MAGIC      0x66616b65u /* "fake" */
#define RUN_DEFAULT_MS 30000

typedef struct fm_version {
    int64_t ts;
    uint8_t *val; /* NULL for a deletion, or when vlen is 0 */
    size_t vlen;
    bool del;
} fm_version;

typedef struct fm_key {
    uint8_t *key;
    size_t klen;
    fm_version *v; /* oldest first */
    size_t nv, cap;
} fm_key;

/* A buffered write (also the shape of a key in the scans' merge). */
typedef struct fm_write {
    uint8_t *key;
    size_t klen;
    uint8_t *val;
    size_t vlen;
    bool del;
} fm_write;

struct meridian {
    char errmsg[512];
};

enum { TXN_ACTIVE, TXN_FAILED };

struct meridian_txn {
    unsigned magic;
    meridian *db;
    bool ro, in_run, did_read;
    int state, failed_code;
    meridian_bound bound;
    int64_t bound_ns, read_ts;
    uint64_t id;
    fm_write *w;
    size_t nw, wcap;
    int64_t commit_before; /* meridian_set_commit_before; 0: none */
};

static struct {
    fm_key *keys;
    size_t n, cap;
    int64_t last_ts;
    uint64_t next_id;
    int commit_code, commit_times;
    bool commit_applied;
    int read_code, read_times;
    fake_meridian_stats stats;
} fm;

/* ---- errors ---- */

static void clear(meridian *db)
{
    db->errmsg[0] = '\0';
}

static int fail(meridian *db, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(meridian *db, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

const char *meridian_errstr(int rc)
{
    static const char *const names[] = {
        [MERIDIAN_OK] = "ok",
        [MERIDIAN_ERROR] = "error",
        [MERIDIAN_NOTFOUND] = "not found",
        [MERIDIAN_ABORTED] = "aborted",
        [MERIDIAN_UNAVAILABLE] = "unavailable",
        [MERIDIAN_UNKNOWN] = "outcome unknown",
        [MERIDIAN_STALE] = "stale",
        [MERIDIAN_INVALID] = "invalid",
        [MERIDIAN_NOMEM] = "out of memory",
        [MERIDIAN_TIMEOUT] = "timed out",
    };
    if (rc < 0 || rc >= (int)(sizeof names / sizeof names[0]))
        return "unknown code";
    return names[rc];
}

const char *meridian_errmsg(const meridian *db)
{
    return db ? db->errmsg : "no connection";
}

void meridian_free(void *p)
{
    free(p);
}

/* ---- checks ---- */

static int check(const void *p, size_t len, bool is_key, char *why, size_t whylen)
{
    const char *what = is_key ? "key" : "value";
    char buf[96] = "";
    int rc = MERIDIAN_INVALID;
    if (is_key && len == 0)
        snprintf(buf, sizeof buf, "key empty");
    else if (len > (is_key ? (size_t)MERIDIAN_KEY_MAX : (size_t)MERIDIAN_VALUE_MAX))
        snprintf(buf, sizeof buf, "%s of %zu bytes, over the %s limit", what, len,
                 is_key ? "4096-byte" : "1 MiB");
    else if (len && !p)
        snprintf(buf, sizeof buf, "%s NULL", what);
    else if (is_key && ((const uint8_t *)p)[0] == 0x00)
        snprintf(buf, sizeof buf, "key byte 0: 0x00 starts the system's keys");
    else
        rc = MERIDIAN_OK;
    if (why && whylen)
        snprintf(why, whylen, "%s", buf);
    return rc;
}

int meridian_check_key(const void *key, size_t klen, char *why, size_t whylen)
{
    return check(key, klen, true, why, whylen);
}

int meridian_check_value(const void *val, size_t vlen, char *why, size_t whylen)
{
    return check(val, vlen, false, why, whylen);
}

/* ---- byte strings ---- */

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return (alen > blen) - (alen < blen);
}

/* A malloc'd copy with a NUL after the bytes (the library's values carry one too). */
static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *d = malloc(n + 1);
    if (d) {
        if (n)
            memcpy(d, p, n);
        d[n] = 0;
    }
    return d;
}

/* ---- the store ---- */

/* The first key >= (k, klen) (> when strict). */
static size_t store_lower(const uint8_t *k, size_t klen, bool strict)
{
    size_t lo = 0, hi = fm.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(fm.keys[mid].key, fm.keys[mid].klen, k, klen);
        if (c < 0 || (strict && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The version of e visible at ts, or NULL (none, or a deletion). */
static const fm_version *visible(const fm_key *e, int64_t ts)
{
    for (size_t i = e->nv; i-- > 0;)
        if (e->v[i].ts <= ts)
            return e->v[i].del ? NULL : &e->v[i];
    return NULL;
}

/* Adds a version of w at ts; 0 or -1 (out of memory, nothing changed). */
static int store_apply(const fm_write *w, int64_t ts)
{
    size_t i = store_lower(w->key, w->klen, false);
    if (i == fm.n || key_cmp(fm.keys[i].key, fm.keys[i].klen, w->key, w->klen) != 0) {
        if (w->del)
            return 0; /* deleting a key never written: nothing to record */
        if (fm.n == fm.cap) {
            size_t cap = fm.cap ? 2 * fm.cap : 64;
            fm_key *k = realloc(fm.keys, cap * sizeof *k);
            if (!k)
                return -1;
            fm.keys = k;
            fm.cap = cap;
        }
        uint8_t *key = dup_bytes(w->key, w->klen);
        if (!key)
            return -1;
        memmove(fm.keys + i + 1, fm.keys + i, (fm.n - i) * sizeof *fm.keys);
        fm.keys[i] = (fm_key){.key = key, .klen = w->klen};
        fm.n++;
    }
    fm_key *e = &fm.keys[i];
    if (e->nv == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 2;
        fm_version *v = realloc(e->v, cap * sizeof *v);
        if (!v)
            return -1;
        e->v = v;
        e->cap = cap;
    }
    uint8_t *val = NULL;
    if (!w->del && w->vlen && !(val = dup_bytes(w->val, w->vlen)))
        return -1;
    e->v[e->nv++] = (fm_version){.ts = ts, .val = val, .vlen = w->vlen, .del = w->del};
    return 0;
}

static void store_free(void)
{
    for (size_t i = 0; i < fm.n; i++) {
        for (size_t j = 0; j < fm.keys[i].nv; j++)
            free(fm.keys[i].v[j].val);
        free(fm.keys[i].v);
        free(fm.keys[i].key);
    }
    free(fm.keys);
    fm.keys = NULL;
    fm.n = fm.cap = 0;
}

static int64_t realtime_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* A new timestamp, after every one handed out before. */
static int64_t next_ts(void)
{
    int64_t now = realtime_ns();
    fm.last_ts = now > fm.last_ts ? now : fm.last_ts + 1;
    return fm.last_ts;
}

/* ---- hooks ---- */

void fake_meridian_reset(void)
{
    store_free();
    uint64_t open = fm.stats.open_txns;
    memset(&fm, 0, sizeof fm);
    fm.stats.open_txns = open;
}

void fake_meridian_fail_commit(int code, int times, bool applied)
{
    fm.commit_code = code;
    fm.commit_times = times > 0 ? times : 0;
    fm.commit_applied = applied;
}

void fake_meridian_fail_read(int code, int times)
{
    fm.read_code = code;
    fm.read_times = times > 0 ? times : 0;
}

fake_meridian_stats fake_meridian_stats_get(void)
{
    return fm.stats;
}

void fake_meridian_stats_reset(void)
{
    uint64_t open = fm.stats.open_txns;
    memset(&fm.stats, 0, sizeof fm.stats);
    fm.stats.open_txns = open;
}

size_t fake_meridian_live_keys(void)
{
    size_t n = 0;
    for (size_t i = 0; i < fm.n; i++)
        n += visible(&fm.keys[i], INT64_MAX) != NULL;
    return n;
}

int64_t fake_meridian_last_ts(void)
{
    return fm.last_ts;
}

/* ---- connections ---- */

int meridian_open(const meridian_options *opts, meridian **out)
{
    if (!out)
        return MERIDIAN_INVALID;
    meridian *db = calloc(1, sizeof *db);
    *out = db;
    if (!db)
        return MERIDIAN_NOMEM;
    if (!opts)
        return fail(db, MERIDIAN_INVALID, "no options");
    if (!opts->addrs || !*opts->addrs)
        return fail(db, MERIDIAN_INVALID, "options: addrs is empty");
    if (opts->timeout_ms < 0)
        return fail(db, MERIDIAN_INVALID, "options: timeout_ms is negative");
    return MERIDIAN_OK;
}

void meridian_close(meridian *db)
{
    free(db);
}

/* ---- transactions ---- */

static bool txn_ok(const meridian_txn *t)
{
    return t && t->magic == TXN_MAGIC && t->db;
}

static int txn_usable(meridian_txn *t)
{
    if (!txn_ok(t))
        return MERIDIAN_INVALID;
    clear(t->db);
    if (t->state == TXN_FAILED)
        return fail(t->db, t->failed_code, "the transaction failed earlier (%s); roll it back",
                    meridian_errstr(t->failed_code));
    return MERIDIAN_OK;
}

/* A read-write transaction is doomed by a failure other than "not found" and
 * misuse, as in the library. */
static int txn_fail(meridian_txn *t, int code)
{
    if (!t->ro && code != MERIDIAN_NOTFOUND && code != MERIDIAN_INVALID) {
        t->state = TXN_FAILED;
        t->failed_code = code;
    }
    return code;
}

static void txn_free(meridian_txn *t)
{
    for (size_t i = 0; i < t->nw; i++) {
        free(t->w[i].key);
        free(t->w[i].val);
    }
    free(t->w);
    t->magic = 0;
    fm.stats.open_txns--;
    free(t);
}

static int txn_new(meridian *db, bool ro, meridian_txn **out)
{
    meridian_txn *t = calloc(1, sizeof *t);
    if (!t)
        return fail(db, MERIDIAN_NOMEM, "out of memory");
    t->magic = TXN_MAGIC;
    t->db = db;
    t->ro = ro;
    t->id = ++fm.next_id;
    fm.stats.open_txns++;
    if (ro)
        fm.stats.begins_ro++;
    else
        fm.stats.begins++;
    *out = t;
    return MERIDIAN_OK;
}

int meridian_begin(meridian *db, meridian_txn **out)
{
    if (out)
        *out = NULL;
    if (!db || !out)
        return db ? fail(db, MERIDIAN_INVALID, "meridian_begin: out is NULL") : MERIDIAN_INVALID;
    clear(db);
    return txn_new(db, false, out);
}

int meridian_begin_ro(meridian *db, meridian_bound bound, int64_t ns, meridian_txn **out)
{
    if (out)
        *out = NULL;
    if (!db || !out)
        return db ? fail(db, MERIDIAN_INVALID, "meridian_begin_ro: out is NULL") : MERIDIAN_INVALID;
    clear(db);
    if ((unsigned)bound > MERIDIAN_AT_TIMESTAMP)
        return fail(db, MERIDIAN_INVALID, "meridian_begin_ro: unknown bound %d", (int)bound);
    if (ns < 0 || (bound == MERIDIAN_AT_TIMESTAMP && ns == 0))
        return fail(db, MERIDIAN_INVALID, "meridian_begin_ro: bad ns %lld", (long long)ns);
    int rc = txn_new(db, true, out);
    if (rc == MERIDIAN_OK) {
        (*out)->bound = bound;
        (*out)->bound_ns = ns;
        if (bound == MERIDIAN_AT_TIMESTAMP) {
            (*out)->read_ts = ns;
            if (ns > fm.last_ts) /* later commits come after it, as safe time would ensure */
                fm.last_ts = ns;
        }
    }
    return rc;
}

int64_t meridian_read_ts(const meridian_txn *t)
{
    return txn_ok(t) ? t->read_ts : 0;
}

uint64_t meridian_txn_id(const meridian_txn *t)
{
    return txn_ok(t) ? t->id : 0;
}

/* The timestamp reads of t see: a read-write transaction the latest commit;
 * a read-only one the timestamp its first read fixed. */
static int64_t read_at(meridian_txn *t)
{
    if (!t->ro)
        return INT64_MAX;
    if (!t->read_ts) {
        if (t->bound == MERIDIAN_EXACT_STALENESS) {
            int64_t now = next_ts();
            t->read_ts = now - t->bound_ns > 0 ? now - t->bound_ns : 1;
        } else {
            t->read_ts = next_ts();
        }
    }
    return t->read_ts;
}

/* The read hook: a failure to inject, or MERIDIAN_OK. */
static int read_hook(meridian_txn *t, const char *what)
{
    if (fm.read_times == 0)
        return MERIDIAN_OK;
    fm.read_times--;
    return txn_fail(t, fail(t->db, fm.read_code, "%s: failed by the test hook (%s)", what,
                            meridian_errstr(fm.read_code)));
}

/* The first buffered write >= (k, klen) (> when strict). */
static size_t wbuf_lower(const meridian_txn *t, const uint8_t *k, size_t klen, bool strict)
{
    size_t lo = 0, hi = t->nw;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(t->w[mid].key, t->w[mid].klen, k, klen);
        if (c < 0 || (strict && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int copy_out(meridian *db, const uint8_t *v, size_t vlen, void **val, size_t *out_len)
{
    *out_len = vlen;
    *val = NULL;
    if (vlen == 0)
        return MERIDIAN_OK;
    if (!(*val = dup_bytes(v, vlen)))
        return fail(db, MERIDIAN_NOMEM, "out of memory");
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
        return fail(t->db, MERIDIAN_INVALID, "meridian_get: val and vlen are required");
    *val = NULL;
    *vlen = 0;
    char why[96];
    if (check(key, klen, true, why, sizeof why) != MERIDIAN_OK)
        return fail(t->db, MERIDIAN_INVALID, "%s", why);
    if ((rc = read_hook(t, "meridian_get")) != MERIDIAN_OK)
        return rc;
    fm.stats.gets++;
    t->did_read = true;
    size_t wi = wbuf_lower(t, key, klen, false);
    if (wi < t->nw && key_cmp(t->w[wi].key, t->w[wi].klen, key, klen) == 0) {
        if (t->w[wi].del)
            return fail(t->db, MERIDIAN_NOTFOUND, "not found (deleted here)");
        fm.stats.rows++;
        return copy_out(t->db, t->w[wi].val, t->w[wi].vlen, val, vlen);
    }
    int64_t ts = read_at(t);
    size_t i = store_lower(key, klen, false);
    const fm_version *v = NULL;
    if (i < fm.n && key_cmp(fm.keys[i].key, fm.keys[i].klen, key, klen) == 0)
        v = visible(&fm.keys[i], ts);
    if (!v)
        return fail(t->db, MERIDIAN_NOTFOUND, "not found");
    fm.stats.rows++;
    if (version_ts)
        *version_ts = v->ts;
    return copy_out(t->db, v->val, v->vlen, val, vlen);
}

static int buffer_write(meridian_txn *t, const void *key, size_t klen, const void *val, size_t vlen,
                        bool del)
{
    int rc = txn_usable(t);
    if (rc != MERIDIAN_OK)
        return rc;
    if (t->ro)
        return fail(t->db, MERIDIAN_INVALID, "a read-only transaction cannot write");
    char why[96];
    if (check(key, klen, true, why, sizeof why) != MERIDIAN_OK ||
        (!del && check(val, vlen, false, why, sizeof why) != MERIDIAN_OK))
        return fail(t->db, MERIDIAN_INVALID, "%s", why);
    uint8_t *v = NULL;
    if (!del && vlen && !(v = dup_bytes(val, vlen)))
        return fail(t->db, MERIDIAN_NOMEM, "out of memory");
    size_t i = wbuf_lower(t, key, klen, false);
    if (i < t->nw && key_cmp(t->w[i].key, t->w[i].klen, key, klen) == 0) {
        free(t->w[i].val);
    } else {
        if (t->nw == t->wcap) {
            size_t cap = t->wcap ? 2 * t->wcap : 8;
            fm_write *w = realloc(t->w, cap * sizeof *w);
            if (!w) {
                free(v);
                return fail(t->db, MERIDIAN_NOMEM, "out of memory");
            }
            t->w = w;
            t->wcap = cap;
        }
        uint8_t *k = dup_bytes(key, klen);
        if (!k) {
            free(v);
            return fail(t->db, MERIDIAN_NOMEM, "out of memory");
        }
        memmove(t->w + i + 1, t->w + i, (t->nw - i) * sizeof *t->w);
        t->w[i] = (fm_write){.key = k, .klen = klen};
        t->nw++;
    }
    t->w[i].val = v;
    t->w[i].vlen = del ? 0 : vlen;
    t->w[i].del = del;
    if (del)
        fm.stats.deletes++;
    else
        fm.stats.puts++;
    return MERIDIAN_OK;
}

int meridian_put(meridian_txn *t, const void *key, size_t klen, const void *val, size_t vlen)
{
    return buffer_write(t, key, klen, val, vlen, false);
}

int meridian_delete(meridian_txn *t, const void *key, size_t klen)
{
    return buffer_write(t, key, klen, NULL, 0, true);
}

int meridian_scan(meridian_txn *t, const void *start, size_t slen, const void *end, size_t elen,
                  size_t limit, meridian_row_fn fn, void *arg)
{
    int rc = txn_usable(t);
    if (rc != MERIDIAN_OK)
        return rc;
    if (!fn)
        return fail(t->db, MERIDIAN_INVALID, "meridian_scan: fn is NULL");
    char why[96];
    if ((slen && check(start, slen, true, why, sizeof why) != MERIDIAN_OK) ||
        (end && elen && check(end, elen, true, why, sizeof why) != MERIDIAN_OK))
        return fail(t->db, MERIDIAN_INVALID, "%s", why);
    if ((rc = read_hook(t, "meridian_scan")) != MERIDIAN_OK)
        return rc;
    fm.stats.scans++;
    t->did_read = true;
    int64_t ts = read_at(t);
    if (!end)
        elen = 0;
    /* The last key handed out; the next one is the smallest key after it in
     * the store (visible) or the write buffer, recomputed each time. */
    uint8_t *last = NULL;
    size_t last_len = 0, emitted = 0;
    const uint8_t *from = slen ? start : (const uint8_t *)"";
    size_t from_len = slen;
    for (;;) {
        const uint8_t *k = last ? last : from;
        size_t klen = last ? last_len : from_len;
        size_t si = store_lower(k, klen, last != NULL);
        const fm_version *sv = NULL;
        while (si < fm.n && !(sv = visible(&fm.keys[si], ts)))
            si++;
        size_t wi = wbuf_lower(t, k, klen, last != NULL);
        const fm_write *w = wi < t->nw ? &t->w[wi] : NULL;
        const uint8_t *key, *val;
        size_t key_len, val_len;
        bool live;
        int c = !sv ? 1 : !w ? -1 : key_cmp(fm.keys[si].key, fm.keys[si].klen, w->key, w->klen);
        if (!sv && !w)
            break;
        if (c < 0) {
            key = fm.keys[si].key, key_len = fm.keys[si].klen;
            val = sv->val, val_len = sv->vlen, live = true;
        } else { /* the transaction's own write wins over the store's version */
            key = w->key, key_len = w->klen;
            val = w->val, val_len = w->vlen, live = !w->del;
        }
        if (elen && key_cmp(key, key_len, end, elen) >= 0)
            break;
        uint8_t *kc = dup_bytes(key, key_len);
        uint8_t *vc = live ? dup_bytes(val ? val : (const uint8_t *)"", val_len) : NULL;
        if (!kc || (live && !vc)) {
            free(kc);
            free(vc);
            rc = fail(t->db, MERIDIAN_NOMEM, "out of memory");
            break;
        }
        free(last);
        last = kc;
        last_len = key_len;
        if (!live)
            continue;
        fm.stats.rows++;
        emitted++;
        int stop = fn(arg, kc, key_len, vc, val_len);
        free(vc);
        if (stop || (limit && emitted >= limit))
            break;
    }
    free(last);
    return rc;
}

/* ---- commit and rollback ---- */

static int commit(meridian_txn *t, int64_t *ts)
{
    if (ts)
        *ts = 0;
    int rc = txn_usable(t);
    if (!txn_ok(t))
        return rc; /* not ours to free */
    meridian *db = t->db;
    if (rc != MERIDIAN_OK) {
        /* failed earlier: nothing applied */
    } else if (t->ro) {
        if (ts)
            *ts = t->read_ts;
    } else if (t->nw || t->did_read) {
        if (fm.commit_times > 0) {
            fm.commit_times--;
            rc = fm.commit_code;
            fm.stats.failed_commits++;
            bool apply = rc == MERIDIAN_UNKNOWN && fm.commit_applied;
            fail(db, rc, "commit: failed by the test hook (%s%s)", meridian_errstr(rc),
                 rc == MERIDIAN_UNKNOWN ? (apply ? ", applied" : ", not applied") : "");
            if (apply) {
                int64_t at = next_ts();
                for (size_t i = 0; i < t->nw; i++)
                    if (store_apply(&t->w[i], at) != 0)
                        rc = fail(db, MERIDIAN_NOMEM, "out of memory applying the commit");
                if (t->nw)
                    fm.stats.commits++;
            }
        } else {
            int64_t at = next_ts();
            bool late = t->commit_before && at >= t->commit_before;
            if (late) {
                /* the timestamp is used up, as a leader's would be; nothing applied */
                fm.stats.deadline_aborts++;
                rc = fail(db, MERIDIAN_ABORTED, "commit: commit deadline passed");
            }
            /* Running out of memory part way would leave a commit half applied:
             * reported as MERIDIAN_NOMEM, which no test survives anyway. */
            for (size_t i = 0; i < t->nw && rc == MERIDIAN_OK; i++)
                if (store_apply(&t->w[i], at) != 0)
                    rc = fail(db, MERIDIAN_NOMEM, "out of memory applying the commit");
            if (rc == MERIDIAN_OK && ts)
                *ts = at;
            if (!late && t->nw)
                fm.stats.commits++;
        }
    }
    txn_free(t);
    if (rc == MERIDIAN_OK)
        clear(db);
    return rc;
}

int meridian_commit(meridian_txn *t, int64_t *ts)
{
    if (txn_ok(t) && t->in_run) {
        if (ts)
            *ts = 0;
        return fail(t->db, MERIDIAN_INVALID,
                    "meridian_run commits its transaction: return MERIDIAN_OK instead");
    }
    return commit(t, ts);
}

int meridian_set_commit_before(meridian_txn *t, int64_t ts)
{
    int rc = txn_usable(t);
    if (rc != MERIDIAN_OK)
        return rc;
    if (t->ro)
        return fail(t->db, MERIDIAN_INVALID, "a commit deadline is for read-write transactions");
    if (ts < 0)
        return fail(t->db, MERIDIAN_INVALID, "commit deadline %lld: negative", (long long)ts);
    t->commit_before = ts;
    return MERIDIAN_OK;
}

int64_t meridian_commit_wait_ns(const meridian *db)
{
    (void)db;
    return 0; /* no clock uncertainty here: nothing to wait for */
}

static void rollback(meridian_txn *t)
{
    fm.stats.rollbacks++;
    txn_free(t);
}

void meridian_rollback(meridian_txn *t)
{
    if (!txn_ok(t))
        return;
    if (t->in_run) {
        fail(t->db, MERIDIAN_INVALID,
             "meridian_run rolls back its transaction: return an error code instead");
        return;
    }
    rollback(t);
}

/* ---- the retrying runner ---- */

static int64_t monotonic_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int meridian_run(meridian *db, int64_t deadline_ms, meridian_txn_fn fn, void *arg, int64_t *ts)
{
    if (ts)
        *ts = 0;
    if (!db)
        return MERIDIAN_INVALID;
    clear(db);
    if (!fn || deadline_ms < 0)
        return fail(db, MERIDIAN_INVALID, "meridian_run: %s",
                    fn ? "negative deadline" : "fn is NULL");
    int64_t end = monotonic_ms() + (deadline_ms ? deadline_ms : RUN_DEFAULT_MS);
    for (unsigned attempt = 1;; attempt++) {
        meridian_txn *t;
        int rc = txn_new(db, false, &t);
        if (rc != MERIDIAN_OK)
            return rc;
        t->in_run = true;
        fm.stats.run_attempts++;
        rc = fn(t, arg);
        if (rc == MERIDIAN_OK) {
            rc = commit(t, ts);
        } else {
            char msg[sizeof db->errmsg];
            memcpy(msg, db->errmsg, sizeof msg);
            rollback(t);
            memcpy(db->errmsg, msg, sizeof msg);
        }
        if (rc != MERIDIAN_ABORTED && rc != MERIDIAN_UNAVAILABLE)
            return rc;
        if (monotonic_ms() + 1 > end) {
            char last[sizeof db->errmsg];
            memcpy(last, db->errmsg, sizeof last);
            return fail(db, MERIDIAN_TIMEOUT,
                        "meridian_run: gave up after %u attempts; last: %s: %.400s", attempt,
                        meridian_errstr(rc), last);
        }
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
}

/* Garbage collection of versions below the horizon, in bounded, resumable steps.
 *
 * A read at t >= H sees, per key, the newest version <= t. Every version older than the newest
 * one <= H is shadowed by it for all such reads; that newest one is needed only if it is a value
 * (a tombstone reads exactly like no version at all). So per key, walking versions newest first:
 * keep those > H, keep the first <= H unless it is a tombstone, drop the rest.
 *
 * Each step reads up to a budget of versions with one primary-key walk, collects the victims,
 * then deletes them and saves the raised horizon and the cursor (key, last timestamp looked at)
 * in one transaction, so a crash between steps loses nothing but progress. Resuming inside a
 * key: if the cursor's timestamp is <= H, the version there was at or below H, so the newest
 * version <= H is at or above it and everything after it is garbage; otherwise the walk simply
 * goes on looking for it. Keeping a version longer than needed is always safe; deleting one
 * early is not when it is a tombstone with older versions left behind it (see keystate), so a
 * key's tombstone is carried across steps and deleted in the step that finishes the key. */
#include "tablet/mvcc/mv_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct victim {
    unsigned char *key;
    size_t klen;
    int64_t ts;
    int tomb;
    uint64_t bytes;
} victim;

typedef struct collect {
    victim *v;
    size_t n, cap;
    uint64_t examined;
} collect;

static int add_victim(collect *c, const void *key, size_t klen, int64_t ts, int tomb, uint64_t vlen)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        victim *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return MR_ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    unsigned char *k = malloc(klen);
    if (!k)
        return MR_ENOMEM;
    memcpy(k, key, klen);
    c->v[c->n++] = (victim){k, klen, ts, tomb, klen + vlen + MV_VERSION_OVERHEAD};
    return 0;
}

static void free_collect(collect *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].key);
    free(c->v);
}

/* Per-key state of the walk. A tombstone that is the newest version <= H may go only together
 * with every older version of its key: deleted alone, it would let an older value show through
 * to reads between the steps. So it is held as `pending` and becomes a victim only when the walk
 * sees the end of its key within the same step. */
typedef struct keystate {
    int passed; /* the newest version <= H has been seen */
    int pending;
    int64_t pend_ts;
    uint64_t pend_len;
} keystate;

static int visit(collect *c, keystate *ks, const void *key, size_t klen, int64_t ts, int tomb,
                 uint64_t vlen, int64_t h)
{
    c->examined++;
    if (ks->passed)
        return add_victim(c, key, klen, ts, tomb, vlen);
    if (ts <= h) {
        ks->passed = 1;
        if (tomb) {
            ks->pending = 1;
            ks->pend_ts = ts;
            ks->pend_len = vlen;
        }
    }
    return 0;
}

/* The walk saw the last version of `key`: its pending tombstone can go. */
static int key_end(collect *c, keystate *ks, const void *key, size_t klen)
{
    int code = ks->pending ? add_victim(c, key, klen, ks->pend_ts, 1, ks->pend_len) : 0;
    memset(ks, 0, sizeof *ks);
    return code;
}

/* One bounded step: collects victims from the cursor on; sets the next cursor in *next
 * (next->len 0 = start over) and *done at the end of the keys. */
static int gc_collect(mv_store *s, int64_t h, uint64_t budget, collect *c, mv_buf *next,
                      int *next_has_ts, int64_t *next_ts, keystate *carry, int *done, mr_err *err)
{
    int rc = SQLITE_DONE, code = 0;
    mv_buf cur = {0};
    int64_t last_ts = 0;
    *done = 0;
    *next_has_ts = 0;
    memset(carry, 0, sizeof *carry);
    if (s->gc_has_ts) {
        /* Finish the key the previous step stopped inside. */
        keystate ks = {.passed = s->gc_ts <= h, .pending = s->gc_pend, .pend_ts = s->gc_pend_ts};
        sqlite3_stmt *st = s->st[ST_GC_REST];
        mv_bind_blob(st, 1, s->gc_key, s->gc_key_len);
        sqlite3_bind_int64(st, 2, s->gc_ts);
        last_ts = s->gc_ts;
        while (c->examined < budget && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            last_ts = sqlite3_column_int64(st, 0);
            code = visit(c, &ks, s->gc_key, s->gc_key_len, last_ts, sqlite3_column_int(st, 1),
                         (uint64_t)sqlite3_column_int64(st, 2), h);
            if (code)
                break;
        }
        sqlite3_reset(st);
        if (!code && rc == SQLITE_DONE)
            code = key_end(c, &ks, s->gc_key, s->gc_key_len);
        if (code)
            return mr_errf(err, MR_ENOMEM, "mvcc: out of memory in GC");
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return mv_sqlerr(s, rc, err, "GC: reading versions");
        if (mv_buf_set(next, s->gc_key, s->gc_key_len))
            return mr_errf(err, MR_ENOMEM, "mvcc: out of memory in GC");
        if (rc == SQLITE_ROW) { /* budget spent inside the key */
            *next_has_ts = 1;
            *next_ts = last_ts;
            *carry = ks;
            return 0;
        }
        /* The key is done: go on from its successor, key || 0x00. */
        if (mv_buf_succ(next, s->gc_key, s->gc_key_len))
            return mr_errf(err, MR_ENOMEM, "mvcc: out of memory in GC");
    } else if (mv_buf_set(next, s->gc_key, s->gc_key_len)) {
        return mr_errf(err, MR_ENOMEM, "mvcc: out of memory in GC");
    }
    sqlite3_stmt *st = s->st[ST_GC_SCAN];
    mv_bind_blob(st, 1, next->p, next->len);
    keystate ks = {0};
    int have = 0;
    for (;;) {
        if (c->examined >= budget) {
            rc = SQLITE_ROW;
            break;
        }
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        const void *k = sqlite3_column_blob(st, 0);
        size_t klen = (size_t)sqlite3_column_bytes(st, 0);
        if (!have || mv_keycmp(k, klen, cur.p, cur.len) != 0) {
            if ((have && key_end(c, &ks, cur.p, cur.len)) || mv_buf_set(&cur, k, klen)) {
                code = MR_ENOMEM;
                break;
            }
            have = 1;
        }
        last_ts = sqlite3_column_int64(st, 1);
        code = visit(c, &ks, k, klen, last_ts, sqlite3_column_int(st, 2),
                     (uint64_t)sqlite3_column_int64(st, 3), h);
        if (code)
            break;
    }
    sqlite3_reset(st);
    if (!code && rc == SQLITE_DONE && have && key_end(c, &ks, cur.p, cur.len))
        code = MR_ENOMEM;
    if (!code && rc == SQLITE_ROW && have) { /* budget spent: resume inside `cur` */
        if (mv_buf_set(next, cur.p, cur.len))
            code = MR_ENOMEM;
        *next_has_ts = 1;
        *next_ts = last_ts;
        *carry = ks;
    } else if (!code && rc == SQLITE_DONE) {
        next->len = 0;
        *done = 1;
    }
    mv_buf_free(&cur);
    if (code)
        return mr_errf(err, MR_ENOMEM, "mvcc: out of memory in GC");
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return mv_sqlerr(s, rc, err, "GC: walking versions");
    return 0;
}

static int gc_step(mv_store *s, int64_t h, uint64_t budget, mv_gc_result *res, mr_err *err)
{
    collect c = {0};
    mv_buf next = {0};
    int next_has_ts = 0, done = 0;
    int64_t next_ts = 0;
    keystate carry;
    int code = gc_collect(s, h, budget, &c, &next, &next_has_ts, &next_ts, &carry, &done, err);
    mv_size size = s->size;
    uint64_t bytes = 0;
    if (!code)
        code = mv_begin(s, err);
    if (!code) {
        sqlite3_stmt *st = s->st[ST_DELETE];
        for (size_t i = 0; i < c.n && !code; i++) {
            mv_bind_blob(st, 1, c.v[i].key, c.v[i].klen);
            sqlite3_bind_int64(st, 2, c.v[i].ts);
            int rc = sqlite3_step(st);
            sqlite3_reset(st);
            if (rc != SQLITE_DONE)
                code = mv_sqlerr(s, rc, err, "GC: deleting a version");
            else if (sqlite3_changes(s->db) == 1) {
                size.versions--;
                size.tombstones -= (uint64_t)c.v[i].tomb;
                size.bytes -= c.v[i].bytes;
                bytes += c.v[i].bytes;
            }
        }
        if (!code)
            code =
                mv_save_state(s, s->applied, h, &size, next.p, next.len, next_has_ts, next_ts, err);
        if (!code)
            code = mv_commit(s, err);
        if (code)
            mv_rollback(s);
    }
    if (!code) {
        s->horizon = h;
        s->size = size;
        if (mv_set_gc_cursor(s, next.p, next.len, next_has_ts, next_ts))
            code = mr_errf(err, MR_ENOMEM, "mvcc: out of memory in GC");
        else if (next_has_ts && carry.pending) {
            s->gc_pend = 1;
            s->gc_pend_ts = carry.pend_ts;
        }
        res->examined += c.examined;
        res->deleted += c.n;
        res->bytes += bytes;
        res->pass_done = done;
    }
    free_collect(&c);
    mv_buf_free(&next);
    return code;
}

int mv_gc(mv_store *s, int64_t horizon, uint64_t max_rows, mv_gc_result *res, mr_err *err)
{
    mv_gc_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    if (!s)
        return mr_errf(err, MR_EINVAL, "mvcc: GC of a NULL store");
    if (horizon < 0)
        return mr_errf(err, MR_EINVAL, "mvcc: GC horizon %lld is negative", (long long)horizon);
    int64_t h = horizon > s->horizon ? horizon : s->horizon;
    int code;
    if (max_rows)
        code = gc_step(s, h, max_rows, res, err);
    else if (mv_set_gc_cursor(s, NULL, 0, 0, 0))
        code = mr_errf(err, MR_ENOMEM, "mvcc: out of memory in GC");
    else
        /* Unbounded: one whole pass from the first key, in steps so memory stays bounded. */
        do
            code = gc_step(s, h, 65536, res, err);
        while (!code && !res->pass_done);
    if (code)
        return mv_wrap(err, code, "GC to horizon %lld", (long long)h);
    return 0;
}

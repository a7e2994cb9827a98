/* sql/sq_write.c: the rows a statement writes (xUpdate, sq_vtab.c).
 *
 * Every row inserted or updated goes through its table's scratch twin
 * (sq_check.c: DEFAULT, affinity, STRICT, NOT NULL, CHECK); then, checks
 * before writes: the primary key and UNIQUE indexes against the store (with
 * the statement's conflict mode: IGNORE skips, REPLACE deletes the other rows,
 * ROLLBACK ends the transaction; UPSERT's ON CONFLICT takes its own road), an
 * interleaved row's parent, a parent's children (ON DELETE CASCADE deletes
 * them, NO ACTION refuses); then the row, its index entries and its triggers
 * (sq_trigger.c), and RETURNING (sq_dml.c). All writes go to the
 * transaction's buffer. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sql/sq_int.h"
#include "sql/sq_row.h"

static uint8_t *dupbytes(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

static void free_vals(sqlite3_value **v, int n)
{
    for (int i = 0; i < n; i++) {
        sqlite3_value_free(v[i]);
        v[i] = NULL;
    }
}

static int int_value(msql *s, int64_t i, sqlite3_value **out)
{
    sqlite3_stmt *st = NULL;
    *out = NULL;
    int rc = sqlite3_prepare_v2(s->scratch, "SELECT ?1", -1, &st, NULL);
    if (rc)
        return sq_fail_sqlite(s, s->scratch, rc);
    sqlite3_bind_int64(st, 1, i);
    if (sqlite3_step(st) == SQLITE_ROW)
        *out = sqlite3_value_dup(sqlite3_column_value(st, 0));
    sqlite3_finalize(st);
    return *out ? SQLITE_OK : sq_fail(s, MSQL_NOMEM, "out of memory");
}

static int constraint(msql *s, int onconf, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int constraint(msql *s, int onconf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    sq_fail(s, MSQL_ERROR, "%s", m ? m : "constraint failed");
    sqlite3_free(m);
    if (onconf == SQLITE_ROLLBACK)
        s->rollback_all = 1;
    return SQLITE_CONSTRAINT;
}

static int pk_conflict(msql *s, sq_table *t, int onconf)
{
    sqlite3_str *q = sqlite3_str_new(NULL);
    for (int i = 0; i < t->npk; i++)
        sqlite3_str_appendf(q, "%s%s.%s", i ? ", " : "", t->name, t->cols[t->pk[i]].name);
    char *cols = sqlite3_str_finish(q);
    int rc = constraint(s, onconf, "UNIQUE constraint failed: %s", cols ? cols : t->name);
    sqlite3_free(cols);
    return rc;
}

static int index_conflict(msql *s, sq_index *ix, int onconf)
{
    sqlite3_str *q = sqlite3_str_new(NULL);
    for (int i = 0; i < ix->ncol; i++)
        sqlite3_str_appendf(q, "%s%s.%s", i ? ", " : "", ix->tab->name,
                            ix->tab->cols[ix->cols[i]].name);
    char *cols = sqlite3_str_finish(q);
    int rc = constraint(s, onconf, "UNIQUE constraint failed: %s", cols ? cols : ix->name);
    sqlite3_free(cols);
    return rc;
}

/* Writes (del = 0) or deletes (del = 1) the index entries of a row. */
static int index_entries(msql *s, sq_table *t, sqlite3_value **v, const uint8_t *key, size_t kl,
                         int del)
{
    for (int i = 0; i < t->nidx; i++) {
        sq_buf e = {0};
        int rc = sq_index_entry(s, t->idx[i], v, key, kl, &e);
        if (!rc)
            rc = del ? sq_txn_del(s, e.p, e.len) : sq_txn_put(s, e.p, e.len, key, kl);
        sq_buf_free(&e);
        if (rc)
            return rc;
    }
    return SQLITE_OK;
}

typedef struct kv {
    uint8_t *k, *v;
    size_t kl, vl;
} kv;

typedef struct collect {
    kv *a;
    int n, cap, oom, limit;
} collect;

static int collect_cb(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    collect *c = arg;
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        kv *a = realloc(c->a, (size_t)cap * sizeof *a);
        if (!a) {
            c->oom = 1;
            return 1;
        }
        c->a = a;
        c->cap = cap;
    }
    kv *e = &c->a[c->n];
    e->k = dupbytes(k, kl);
    e->v = dupbytes(v, vl);
    e->kl = kl;
    e->vl = vl;
    if (!e->k || !e->v) {
        free(e->k);
        free(e->v);
        c->oom = 1;
        return 1;
    }
    c->n++;
    return c->limit && c->n >= c->limit;
}

static void collect_free(collect *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->a[i].k);
        free(c->a[i].v);
    }
    free(c->a);
}

/* The rows of child table ch under the parent row key k (limit 0: all). */
static int child_rows(msql *s, sq_txn *x, sq_table *ch, const uint8_t *k, size_t kl, int limit,
                      collect *out)
{
    sq_buf p = {0};
    uint8_t sep = SQ_KEY_INTERLEAVE;
    uint8_t end[4200];
    size_t el = 0;
    int rc = SQLITE_OK;
    if (sq_buf_put(&p, k, kl) || sq_buf_put(&p, &sep, 1) || sq_key_append_int(&p, ch->id, 0) ||
        p.len > sizeof end)
        rc = sq_fail(s, MSQL_NOMEM, "out of memory");
    if (!rc && !sq_key_succ(p.p, p.len, end, &el))
        rc = sq_fail(s, MSQL_ERROR, "internal: no key past a child range");
    out->limit = limit;
    if (!rc)
        rc = sq_scan_merged(s, x, p.p, p.len, end, el, collect_cb, out);
    if (!rc && out->oom)
        rc = sq_fail(s, MSQL_NOMEM, "out of memory");
    sq_buf_free(&p);
    return rc;
}

/* Is table d a descendant of a through ON DELETE CASCADE links only? */
static int cascades_from(sq_table *d, sq_table *a)
{
    for (sq_table *p = d; p && p != a; p = p->parent)
        if (!p->cascade)
            return 0;
    return 1;
}

/* Deletes the row (key k, stored value v) of t: its interleaved children
 * (ON DELETE CASCADE: all of them; otherwise their presence is an error),
 * its index entries, the row. Checks first, writes after. */
static int delete_row(msql *s, sq_txn *x, sq_table *t, const uint8_t *k, size_t kl,
                      const uint8_t *v, size_t vl, int onconf)
{
    collect doomed = {0};
    int rc = SQLITE_OK;
    for (int i = 0; i < t->nchildren && !rc; i++) {
        sq_table *ch = t->children[i];
        collect rows = {0};
        rc = child_rows(s, x, ch, k, kl, ch->cascade ? 0 : 1, &rows);
        if (!rc && rows.n && !ch->cascade)
            rc = constraint(s, onconf,
                            "FOREIGN KEY constraint failed: %s has rows in "
                            "interleaved table %s (not ON DELETE CASCADE)",
                            t->name, ch->name);
        for (int j = 0; !rc && j < rows.n; j++) {
            int64_t tid;
            sq_table *d = sq_row_table_id(rows.a[j].v, rows.a[j].vl, &tid) == SQLITE_OK
                              ? sq_cat_table_id(s, tid)
                              : NULL;
            if (d && !cascades_from(d, ch))
                rc = constraint(s, onconf,
                                "FOREIGN KEY constraint failed: %s has rows in "
                                "interleaved table %s (not ON DELETE CASCADE)",
                                d->parent ? d->parent->name : t->name, d->name);
        }
        if (!rc) {
            /* keep them for the writes below */
            for (int j = 0; j < rows.n; j++) {
                if (collect_cb(&doomed, rows.a[j].k, rows.a[j].kl, rows.a[j].v, rows.a[j].vl)) {
                    rc = sq_fail(s, MSQL_NOMEM, "out of memory");
                    break;
                }
            }
        }
        collect_free(&rows);
    }
    sqlite3_value *vals[t->ncol > 0 ? t->ncol : 1];
    if (!rc)
        rc = sq_row_values(s, t, v, vl, vals);
    if (rc) {
        collect_free(&doomed);
        return rc;
    }
    for (int j = 0; j < doomed.n && !rc; j++) {
        int64_t tid;
        sq_table *d = sq_row_table_id(doomed.a[j].v, doomed.a[j].vl, &tid) == SQLITE_OK
                          ? sq_cat_table_id(s, tid)
                          : NULL;
        if (d && d->nidx) {
            sqlite3_value *dv[d->ncol > 0 ? d->ncol : 1];
            rc = sq_row_values(s, d, doomed.a[j].v, doomed.a[j].vl, dv);
            if (!rc) {
                rc = index_entries(s, d, dv, doomed.a[j].k, doomed.a[j].kl, 1);
                free_vals(dv, d->ncol);
            }
        }
        if (!rc)
            rc = sq_txn_del(s, doomed.a[j].k, doomed.a[j].kl);
    }
    if (!rc)
        rc = index_entries(s, t, vals, k, kl, 1);
    if (!rc)
        rc = sq_txn_del(s, k, kl);
    free_vals(vals, t->ncol);
    collect_free(&doomed);
    return rc;
}

/* Which columns the running INSERT names (1 per column); the rest get their DEFAULT. */
static void given_columns(msql *s, sq_table *t, char *given)
{
    const sq_dml *in = s->dml;
    memset(given, 1, (size_t)t->ncol);
    if (!in || in->kind != 'I' || !in->table || sqlite3_stricmp(in->table, t->name) != 0)
        return;
    if (in->default_values) {
        memset(given, 0, (size_t)t->ncol);
        return;
    }
    if (!in->cols)
        return;
    memset(given, 0, (size_t)t->ncol);
    for (int j = 0; j < in->ncols; j++)
        for (int i = 0; i < t->ncol; i++)
            if (sqlite3_stricmp(in->cols[j], t->cols[i].name) == 0)
                given[i] = 1;
}

/* Checks the unique indexes of t for a row (new values v, key k); conflicting
 * rows (other than k itself) go to *victims (REPLACE) or fail. */
/* The running INSERT's ON CONFLICT clause, if it is about table t. */
static const sq_dml *upsert_of(msql *s, const sq_table *t)
{
    const sq_dml *d = s->dml;
    if (!d || d->kind != 'I' || !d->upsert || !d->table || sqlite3_stricmp(d->table, t->name) != 0)
        return NULL;
    return d;
}

/* Does the ON CONFLICT target name exactly these columns (any when it has none)? */
static int target_is(const sq_dml *d, const sq_table *t, const int *cols, int n)
{
    if (!d->target)
        return 1;
    if (d->ntarget != n)
        return 0;
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int j = 0; j < d->ntarget && !found; j++)
            found = sqlite3_stricmp(d->target[j], t->cols[cols[i]].name) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

#define SQ_UPSERT_HIT 1000 /* unique_checks: the row of *hit conflicts on the UPSERT's target */

/* k: the row's key; old (oldl): the key it had, when an UPDATE moves it
 * (its own entries are no conflict). */
static int unique_checks(msql *s, sq_txn *x, sq_table *t, sqlite3_value **v, const uint8_t *k,
                         size_t kl, const uint8_t *old, size_t oldl, int onconf, collect *victims,
                         sq_buf *hit)
{
    const sq_dml *ups = hit ? upsert_of(s, t) : NULL;
    for (int i = 0; i < t->nidx; i++) {
        sq_index *ix = t->idx[i];
        if (!ix->unique)
            continue;
        int hasnull = 0;
        for (int j = 0; j < ix->ncol; j++)
            hasnull |= sqlite3_value_type(v[ix->cols[j]]) == SQLITE_NULL;
        if (hasnull)
            continue; /* NULLs are distinct */
        sq_buf e = {0};
        int rc = sq_index_entry(s, ix, v, k, kl, &e);
        uint8_t *rk = NULL;
        size_t rkl = 0;
        if (!rc)
            rc = sq_read(s, x, e.p, e.len, &rk, &rkl);
        sq_buf_free(&e);
        if (rc == SQLITE_NOTFOUND)
            continue;
        if (rc)
            return rc;
        int same = (rkl == kl && memcmp(rk, k, kl) == 0) ||
                   (old && rkl == oldl && memcmp(rk, old, oldl) == 0);
        if (!same && ups && target_is(ups, t, ix->cols, ix->ncol)) {
            hit->len = 0;
            rc = sq_buf_put(hit, rk, rkl) ? sq_fail(s, MSQL_NOMEM, "out of memory") : SQ_UPSERT_HIT;
            free(rk);
            return rc;
        }
        if (!same) {
            if (onconf != SQLITE_REPLACE) {
                free(rk);
                return index_conflict(s, ix, onconf);
            }
            uint8_t *rv = NULL;
            size_t rvl = 0;
            rc = sq_read(s, x, rk, rkl, &rv, &rvl);
            if (rc == SQLITE_OK) {
                if (collect_cb(victims, rk, rkl, rv, rvl))
                    rc = sq_fail(s, MSQL_NOMEM, "out of memory");
                free(rv);
            } else if (rc == SQLITE_NOTFOUND) {
                rc = SQLITE_OK;
            }
        }
        free(rk);
        if (rc)
            return rc;
    }
    return SQLITE_OK;
}

/* The parent row of a child row must exist. */
static int parent_check(msql *s, sq_txn *x, sq_table *t, sqlite3_value **v, int onconf)
{
    if (!t->parent)
        return SQLITE_OK;
    sq_table *p = t->parent;
    sqlite3_value *pv[p->npk > 0 ? p->npk : 1];
    for (int i = 0; i < p->npk; i++)
        pv[i] = v[t->pk[i]];
    sq_buf b = {0};
    int rc = sq_key_prefix(s, p, pv, p->npk, &b);
    uint8_t *val = NULL;
    size_t vl = 0;
    if (!rc)
        rc = sq_read(s, x, b.p, b.len, &val, &vl);
    sq_buf_free(&b);
    free(val);
    if (rc == SQLITE_NOTFOUND)
        return constraint(s, onconf,
                          "FOREIGN KEY constraint failed: no row in %s (the parent "
                          "%s is interleaved in) for this key",
                          p->name, t->name);
    return rc;
}

static int same_key(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    return al == bl && memcmp(a, b, al) == 0;
}

static int write_row(msql *s, sq_table *t, sqlite3_value **v, const uint8_t *k, size_t kl)
{
    sq_buf b = {0};
    int rc = sq_row_encode(&b, t->id, t->ncol, v);
    if (rc)
        rc = sq_fail(s, MSQL_NOMEM, "out of memory");
    for (int i = 0; !rc && i < t->nidx; i++) {
        sq_buf e = {0};
        rc = sq_index_entry(s, t->idx[i], v, k, kl, &e);
        if (!rc && e.len > MERIDIAN_KEY_MAX)
            rc = sq_fail(s, MSQL_ERROR,
                         "entry of index %s of %llu bytes once encoded: over Meridian's %d-byte "
                         "key limit",
                         t->idx[i]->name, (unsigned long long)e.len, MERIDIAN_KEY_MAX);
        sq_buf_free(&e);
    }
    if (!rc && b.len > MERIDIAN_VALUE_MAX)
        rc = sq_fail(s, MSQL_ERROR, "row of %llu bytes: over Meridian's %d-byte value limit",
                     (unsigned long long)b.len, MERIDIAN_VALUE_MAX);
    if (!rc && kl > MERIDIAN_KEY_MAX)
        rc = sq_fail(s, MSQL_ERROR,
                     "primary key of %zu bytes once encoded: over Meridian's "
                     "%d-byte key limit",
                     kl, MERIDIAN_KEY_MAX);
    if (!rc)
        rc = sq_txn_put(s, k, kl, b.p, b.len);
    if (!rc)
        rc = index_entries(s, t, v, k, kl, 0);
    sq_buf_free(&b);
    return rc;
}

static int do_update_vals(msql *s, sq_table *t, sq_txn *x, const uint8_t *ok, size_t okl,
                          sqlite3_value **in, int onconf, sq_buf *written);

/* UPSERT: the proposed row (values v) conflicts with the row at key ck on the
 * clause's target: DO NOTHING, or DO UPDATE that row with excluded = v. */
static int do_upsert(msql *s, sq_table *t, sq_txn *x, const sq_dml *d, const uint8_t *ck,
                     size_t ckl, sqlite3_value **v, sq_buf *written)
{
    if (d->upsert == SQ_UPSERT_NOTHING)
        return SQLITE_OK;
    sqlite3_stmt *u = d->ups;
    if (!u || sqlite3_column_count(u) != t->ncol + 1)
        return sq_fail(s, SQ_PEND_SCHEMA, "schema changed");
    sqlite3_bind_blob64(u, 1, ck, ckl, SQLITE_TRANSIENT);
    for (int i = 0; i < t->ncol; i++)
        sqlite3_bind_value(u, i + 2, v[i]);
    int rc = sqlite3_step(u);
    int n = t->ncol;
    sqlite3_value *nv[n > 0 ? n : 1];
    int have = 0, go = 0;
    if (rc == SQLITE_ROW) {
        have = 1;
        for (int i = 0; i < n; i++)
            if (!(nv[i] = sqlite3_value_dup(sqlite3_column_value(u, i))))
                have = -1;
        sqlite3_value *w = sqlite3_column_value(u, n);
        go = sqlite3_value_type(w) != SQLITE_NULL && sqlite3_value_double(w) != 0.0;
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    } else {
        rc = sq_fail(s, MSQL_ERROR, "%s", sqlite3_errmsg(s->conn));
    }
    sqlite3_reset(u);
    sqlite3_clear_bindings(u);
    if (have < 0)
        rc = sq_fail(s, MSQL_NOMEM, "out of memory");
    if (!rc && have > 0 && go)
        rc = do_update_vals(s, t, x, ck, ckl, nv, SQLITE_ABORT, written);
    if (have)
        for (int i = 0; i < n; i++)
            sqlite3_value_free(nv[i]);
    return rc;
}

static int do_insert(msql *s, sq_table *t, sq_txn *x, sqlite3_value **argv, int onconf,
                     sq_buf *written)
{
    int n = t->ncol;
    char given[n > 0 ? n : 1];
    sqlite3_value *in[n > 0 ? n : 1], *out[n > 0 ? n : 1], *alias = NULL;
    given_columns(s, t, given);
    for (int i = 0; i < n; i++)
        in[i] = argv[2 + i];
    int rc = SQLITE_OK;
    if (t->rowid_alias) {
        int pc = t->pk[0];
        if (!given[pc] || sqlite3_value_type(in[pc]) == SQLITE_NULL) {
            int64_t id;
            rc = sq_next_alias(s, x, t, &id);
            if (!rc)
                rc = int_value(s, id, &alias);
            if (rc)
                return rc;
            in[pc] = alias;
            given[pc] = 1;
        }
    }
    rc = sq_check_row(s, t, in, given, out);
    if (rc) {
        sqlite3_value_free(alias);
        if (rc == SQLITE_CONSTRAINT && onconf == SQLITE_ROLLBACK)
            s->rollback_all = 1;
        return rc;
    }
    sq_buf k = {0};
    int64_t uid = 0;
    const sq_dml *ups = upsert_of(s, t);
    sq_buf hit = {0};
    collect victims = {0};
    uint8_t *old = NULL;
    size_t oldl = 0;
    int exists = 0;
    if (t->ntriggers) {
        rc = sq_trigger_fire(s, t, 'B', 'I', NULL, out);
        if (rc == SQ_TRIGGER_IGNORE) {
            rc = SQLITE_OK;
            goto done;
        }
        if (rc)
            goto done;
    }
    int needs = sq_key_needs_uid(t, out);
    if (needs)
        rc = sq_next_rowid(s, t, &uid);
    if (!rc)
        rc = sq_key_of_row(s, t, out, uid, &k);
    if (!rc && k.len > MERIDIAN_KEY_MAX)
        rc = sq_fail(s, MSQL_ERROR,
                     "primary key of %llu bytes once encoded: over Meridian's %d-byte key limit",
                     (unsigned long long)k.len, MERIDIAN_KEY_MAX);
    if (!rc && !needs) {
        rc = sq_read(s, x, k.p, k.len, &old, &oldl);
        if (rc == SQLITE_OK)
            exists = 1;
        else if (rc == SQLITE_NOTFOUND)
            rc = SQLITE_OK;
    }
    if (!rc && exists && ups && target_is(ups, t, t->pk, t->npk)) {
        rc = do_upsert(s, t, x, ups, k.p, k.len, out, written);
        goto done;
    }
    if (!rc && exists && onconf != SQLITE_REPLACE)
        rc = pk_conflict(s, t, onconf);
    if (!rc)
        rc = parent_check(s, x, t, out, onconf);
    if (!rc)
        rc = unique_checks(s, x, t, out, k.p, k.len, NULL, 0, onconf, &victims, &hit);
    if (rc == SQ_UPSERT_HIT) {
        rc = do_upsert(s, t, x, ups, hit.p, hit.len, out, written);
        goto done;
    }
    /* Checks done: now the writes. */
    for (int i = 0; !rc && i < victims.n; i++)
        if (!same_key(victims.a[i].k, victims.a[i].kl, k.p, k.len))
            rc = delete_row(s, x, t, victims.a[i].k, victims.a[i].kl, victims.a[i].v,
                            victims.a[i].vl, onconf);
    if (!rc && exists) {
        /* REPLACE of the same key: the old row's index entries go; its
         * interleaved children stay (as they would in SQLite without foreign keys). */
        sqlite3_value *ov[n > 0 ? n : 1];
        rc = sq_row_values(s, t, old, oldl, ov);
        if (!rc) {
            rc = index_entries(s, t, ov, k.p, k.len, 1);
            free_vals(ov, n);
        }
    }
    if (!rc)
        rc = write_row(s, t, out, k.p, k.len);
    if (!rc && t->rowid_alias)
        rc = sq_note_alias(s, x, t, sqlite3_value_int64(out[t->pk[0]]), alias != NULL);
    if (!rc) {
        written->len = 0;
        if (sq_buf_put(written, k.p, k.len))
            rc = sq_fail(s, MSQL_NOMEM, "out of memory");
    }
    if (!rc && t->ntriggers) {
        rc = sq_trigger_fire(s, t, 'A', 'I', NULL, out);
        if (rc == SQ_TRIGGER_IGNORE)
            rc = SQLITE_OK;
    }
done:
    sqlite3_value_free(alias);
    sq_buf_free(&hit);
    collect_free(&victims);
    free(old);
    sq_buf_free(&k);
    free_vals(out, n);
    return rc;
}

static int do_update_vals(msql *s, sq_table *t, sq_txn *x, const uint8_t *ok, size_t okl,
                          sqlite3_value **in, int onconf, sq_buf *written)
{
    int n = t->ncol;
    uint8_t *oldv = NULL;
    size_t oldvl = 0;
    int rc = sq_read(s, x, ok, okl, &oldv, &oldvl);
    if (rc == SQLITE_NOTFOUND)
        return SQLITE_OK; /* gone already (an earlier row of this statement replaced it) */
    if (rc)
        return rc;
    sqlite3_value *out[n > 0 ? n : 1], *ov[n > 0 ? n : 1];
    rc = sq_row_values(s, t, oldv, oldvl, ov);
    if (rc) {
        free(oldv);
        return rc;
    }
    rc = sq_check_row(s, t, in, NULL, out);
    if (rc) {
        if (rc == SQLITE_CONSTRAINT && onconf == SQLITE_ROLLBACK)
            s->rollback_all = 1;
        free_vals(ov, n);
        free(oldv);
        return rc;
    }
    if (t->ntriggers) {
        rc = sq_trigger_fire(s, t, 'B', 'U', ov, out);
        if (rc) {
            if (rc == SQ_TRIGGER_IGNORE)
                rc = SQLITE_OK;
            free_vals(out, n);
            free_vals(ov, n);
            free(oldv);
            return rc;
        }
    }
    sq_buf k = {0};
    if (t->hidden_rowid) {
        if (sq_buf_put(&k, ok, okl))
            rc = sq_fail(s, MSQL_NOMEM, "out of memory");
    } else {
        sqlite3_value *pv[t->npk];
        for (int i = 0; i < t->npk; i++)
            pv[i] = out[t->pk[i]];
        rc = sq_key_prefix(s, t, pv, t->npk, &k);
        if (!rc && sq_key_needs_uid(t, out)) {
            if (okl > k.len && memcmp(ok, k.p, k.len) == 0) {
                k.len = 0;
                if (sq_buf_put(&k, ok, okl))
                    rc = sq_fail(s, MSQL_NOMEM, "out of memory");
            } else {
                int64_t uid;
                rc = sq_next_rowid(s, t, &uid);
                if (!rc && sq_key_append_int(&k, uid, 0))
                    rc = sq_fail(s, MSQL_NOMEM, "out of memory");
            }
        }
    }
    if (!rc && k.len > MERIDIAN_KEY_MAX)
        rc = sq_fail(s, MSQL_ERROR,
                     "primary key of %llu bytes once encoded: over Meridian's %d-byte key limit",
                     (unsigned long long)k.len, MERIDIAN_KEY_MAX);
    int moved = !rc && !same_key(k.p, k.len, ok, okl);
    collect victims = {0};
    if (moved && !sq_key_needs_uid(t, out)) {
        uint8_t *cv = NULL;
        size_t cvl = 0;
        rc = sq_read(s, x, k.p, k.len, &cv, &cvl);
        if (rc == SQLITE_OK) {
            if (onconf != SQLITE_REPLACE)
                rc = pk_conflict(s, t, onconf);
            else if (collect_cb(&victims, k.p, k.len, cv, cvl))
                rc = sq_fail(s, MSQL_NOMEM, "out of memory");
        } else if (rc == SQLITE_NOTFOUND) {
            rc = SQLITE_OK;
        }
        free(cv);
    }
    if (moved && !rc)
        rc = parent_check(s, x, t, out, onconf);
    for (int i = 0; moved && !rc && i < t->nchildren; i++) {
        collect rows = {0};
        rc = child_rows(s, x, t->children[i], ok, okl, 1, &rows);
        if (!rc && rows.n)
            rc = constraint(s, onconf,
                            "FOREIGN KEY constraint failed: the primary key of a %s "
                            "row with rows in interleaved table %s cannot change",
                            t->name, t->children[i]->name);
        collect_free(&rows);
    }
    if (!rc)
        rc = unique_checks(s, x, t, out, k.p, k.len, ok, okl, onconf, &victims, NULL);
    /* Writes. */
    for (int i = 0; !rc && i < victims.n; i++)
        if (!same_key(victims.a[i].k, victims.a[i].kl, ok, okl))
            rc = delete_row(s, x, t, victims.a[i].k, victims.a[i].kl, victims.a[i].v,
                            victims.a[i].vl, onconf);
    if (!rc)
        rc = index_entries(s, t, ov, ok, okl, 1);
    if (!rc && moved)
        rc = sq_txn_del(s, ok, okl);
    if (!rc)
        rc = write_row(s, t, out, k.p, k.len);
    if (!rc && t->rowid_alias)
        rc = sq_note_alias(s, x, t, sqlite3_value_int64(out[t->pk[0]]), 0);
    if (!rc) {
        written->len = 0;
        if (sq_buf_put(written, k.p, k.len))
            rc = sq_fail(s, MSQL_NOMEM, "out of memory");
    }
    if (!rc && t->ntriggers) {
        rc = sq_trigger_fire(s, t, 'A', 'U', ov, out);
        if (rc == SQ_TRIGGER_IGNORE)
            rc = SQLITE_OK;
    }
    collect_free(&victims);
    sq_buf_free(&k);
    free_vals(out, n);
    free_vals(ov, n);
    free(oldv);
    return rc;
}

/* DELETE of a row of a table with triggers: BEFORE, the delete, AFTER. */
static int delete_with_triggers(msql *s, sq_table *t, sq_txn *x, const uint8_t *k, size_t kl,
                                const uint8_t *val, size_t vl, int onconf)
{
    int n = t->ncol;
    sqlite3_value *ov[n > 0 ? n : 1];
    int rc = sq_row_values(s, t, val, vl, ov);
    if (rc)
        return rc;
    rc = sq_trigger_fire(s, t, 'B', 'D', ov, NULL);
    if (rc == SQ_TRIGGER_IGNORE) {
        free_vals(ov, n);
        return SQLITE_OK;
    }
    if (!rc) {
        /* the BEFORE trigger may have changed or deleted the row */
        uint8_t *cur = NULL;
        size_t cl = 0;
        rc = sq_read(s, x, k, kl, &cur, &cl);
        if (rc == SQLITE_OK)
            rc = delete_row(s, x, t, k, kl, cur, cl, onconf);
        else if (rc == SQLITE_NOTFOUND)
            rc = SQLITE_OK;
        free(cur);
    }
    if (!rc) {
        rc = sq_trigger_fire(s, t, 'A', 'D', ov, NULL);
        if (rc == SQ_TRIGGER_IGNORE)
            rc = SQLITE_OK;
    }
    free_vals(ov, n);
    return rc;
}

/* One xUpdate: argc 1 deletes the row at key argv[0]; argv[0] NULL inserts
 * argv[2..]; else updates the row at key argv[0] to argv[2..]. SQLite codes,
 * the session's failure set. */
int sq_update(msql *s, sq_table *t, sq_txn *x, int argc, sqlite3_value **argv)
{
    int onconf = sqlite3_vtab_on_conflict(s->conn);
    const sq_dml *d = s->dml;
    int returning = d && d->ret && d->table && sqlite3_stricmp(d->table, t->name) == 0;
    sq_buf written = {0};
    int rc;
    if (argc == 1) {
        const uint8_t *k = sqlite3_value_blob(argv[0]);
        size_t kl = (size_t)sqlite3_value_bytes(argv[0]);
        uint8_t *val = NULL;
        size_t vl = 0;
        rc = sq_read(s, x, k, kl, &val, &vl);
        if (rc == SQLITE_OK && returning)
            rc = sq_dml_return(s, d, k, kl); /* the row as it was */
        if (rc == SQLITE_OK && t->ntriggers)
            rc = delete_with_triggers(s, t, x, k, kl, val, vl, onconf);
        else if (rc == SQLITE_OK)
            rc = delete_row(s, x, t, k, kl, val, vl, onconf);
        else if (rc == SQLITE_NOTFOUND)
            rc = SQLITE_OK;
        free(val);
    } else if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        rc = do_insert(s, t, x, argv, onconf, &written);
    } else {
        rc = do_update_vals(s, t, x, sqlite3_value_blob(argv[0]),
                            (size_t)sqlite3_value_bytes(argv[0]), argv + 2, onconf, &written);
    }
    if (!rc && returning && written.len)
        rc = sq_dml_return(s, d, written.p, written.len); /* the row as written */
    sq_buf_free(&written);
    return rc;
}

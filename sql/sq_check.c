/* sql/sq_check.c: a row's values through SQLite's own rules, and the keys
 * they make.
 *
 * SQLite accepts NOT NULL, DEFAULT, CHECK and STRICT in a virtual table's
 * declaration but enforces none of them, and hands xUpdate raw values (no
 * affinity). So every row written goes through the table's twin in the
 * session's scratch database (a real table made from the same CREATE TABLE):
 * INSERT ... RETURNING * applies DEFAULT to the columns the statement left
 * out, the affinity, STRICT typing, NOT NULL and CHECK, with SQLite's own
 * messages; the row is then deleted again (the twin stays empty). The
 * returned values are what is stored and encoded into keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql/sq_int.h"
#include "sql/sq_row.h"

char sq_affinity_of(const char *decl, int strict)
{
    /* SQLite's rules (datatype3.html, 3.1), in order. */
    if (!decl || !*decl)
        return 'b';
    if (strict && strcasecmp(decl, "ANY") == 0)
        return 'b';
    char up[256];
    size_t n = strlen(decl);
    if (n >= sizeof up)
        n = sizeof up - 1;
    for (size_t i = 0; i < n; i++)
        up[i] = (char)((decl[i] >= 'a' && decl[i] <= 'z') ? decl[i] - 32 : decl[i]);
    up[n] = 0;
    if (strstr(up, "INT"))
        return 'i';
    if (strstr(up, "CHAR") || strstr(up, "CLOB") || strstr(up, "TEXT"))
        return 't';
    if (strstr(up, "BLOB"))
        return 'b';
    if (strstr(up, "REAL") || strstr(up, "FLOA") || strstr(up, "DOUB"))
        return 'r';
    return 'n';
}

static sqlite3_stmt *check_stmt(msql *s, sq_table *t, const char *given)
{
    char mask[t->ncol + 1];
    int any = 0;
    for (int i = 0; i < t->ncol; i++) {
        mask[i] = given && !given[i] ? '0' : '1';
        any |= mask[i] == '1';
    }
    mask[t->ncol] = 0;
    for (int i = 0; i < t->nchk; i++)
        if (strcmp(t->chk[i].mask, mask) == 0)
            return t->chk[i].st;
    sqlite3_str *q = sqlite3_str_new(s->scratch);
    char *qt = sq_quote(t->name);
    sqlite3_str_appendf(q, "INSERT INTO main.%s", qt);
    sqlite3_free(qt);
    if (!any) {
        sqlite3_str_appendall(q, " DEFAULT VALUES");
    } else {
        int n = 0;
        sqlite3_str_appendall(q, "(");
        for (int i = 0; i < t->ncol; i++)
            if (mask[i] == '1') {
                char *c = sq_quote(t->cols[i].name);
                sqlite3_str_appendf(q, "%s%s", n++ ? "," : "", c);
                sqlite3_free(c);
            }
        sqlite3_str_appendall(q, ") VALUES(");
        for (int i = 0; i < n; i++)
            sqlite3_str_appendf(q, "%s?%d", i ? "," : "", i + 1);
        sqlite3_str_appendall(q, ")");
    }
    char *sql = sqlite3_str_finish(q);
    if (!sql) {
        sq_fail(s, MSQL_NOMEM, "out of memory");
        return NULL;
    }
    sqlite3_stmt *st = NULL;
    s->internal++;
    int rc = sqlite3_prepare_v3(s->scratch, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    s->internal--;
    sqlite3_free(sql);
    if (rc) {
        sq_fail_sqlite(s, s->scratch, rc);
        return NULL;
    }
    sq_chk *c = realloc(t->chk, (size_t)(t->nchk + 1) * sizeof *c);
    char *m = strdup(mask);
    if (!c || !m) {
        if (c)
            t->chk = c;
        free(m);
        sqlite3_finalize(st);
        sq_fail(s, MSQL_NOMEM, "out of memory");
        return NULL;
    }
    t->chk = c;
    t->chk[t->nchk].mask = m;
    t->chk[t->nchk].st = st;
    t->nchk++;
    return st;
}

void sq_check_free(sq_table *t)
{
    for (int i = 0; i < t->nchk; i++) {
        free(t->chk[i].mask);
        sqlite3_finalize(t->chk[i].st);
    }
    free(t->chk);
    t->chk = NULL;
    t->nchk = 0;
    sqlite3_finalize(t->st_clear);
    sqlite3_finalize(t->st_read);
    sqlite3_finalize(t->st_vals);
    t->st_clear = t->st_read = t->st_vals = NULL;
}

int sq_check_row(msql *s, sq_table *t, sqlite3_value **in, const char *given, sqlite3_value **out)
{
    for (int i = 0; i < t->ncol; i++)
        out[i] = NULL;
    sqlite3_stmt *st = check_stmt(s, t, given);
    if (!st)
        return SQLITE_ERROR;
    if (!t->st_clear) {
        /* The row is read back from the twin, not taken from RETURNING: SQLite
         * 3.40 hands RETURNING's values through a table that gives them the
         * wrong column's REAL affinity; a read gives what SQLite stored. */
        char *qt = sq_quote(t->name);
        char *del = sqlite3_mprintf("DELETE FROM main.%s", qt);
        char *sel = sqlite3_mprintf("SELECT * FROM main.%s", qt);
        sqlite3_free(qt);
        int rc = del && sel ? sqlite3_prepare_v3(s->scratch, del, -1, SQLITE_PREPARE_PERSISTENT,
                                                 &t->st_clear, NULL)
                            : SQLITE_NOMEM;
        if (!rc)
            rc = sqlite3_prepare_v3(s->scratch, sel, -1, SQLITE_PREPARE_PERSISTENT, &t->st_read,
                                    NULL);
        sqlite3_free(del);
        sqlite3_free(sel);
        if (rc)
            return rc == SQLITE_NOMEM ? sq_fail(s, MSQL_NOMEM, "out of memory")
                                      : sq_fail_sqlite(s, s->scratch, rc);
    }
    int p = 0;
    for (int i = 0; i < t->ncol; i++)
        if (!given || given[i])
            sqlite3_bind_value(st, ++p, in[i]);
    int rc = sqlite3_step(st);
    int err = rc == SQLITE_DONE ? SQLITE_OK : rc;
    if (err && err != SQLITE_NOMEM)
        sq_fail_sqlite(s, s->scratch, err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!err) {
        rc = sqlite3_step(t->st_read);
        if (rc == SQLITE_ROW) {
            for (int i = 0; i < t->ncol; i++) {
                out[i] = sqlite3_value_dup(sqlite3_column_value(t->st_read, i));
                if (!out[i])
                    err = SQLITE_NOMEM;
            }
        } else {
            err = rc == SQLITE_NOMEM ? SQLITE_NOMEM : SQLITE_ERROR;
            if (err != SQLITE_NOMEM)
                sq_fail(s, MSQL_ERROR, "internal: the scratch row is gone");
        }
        sqlite3_reset(t->st_read);
    }
    sqlite3_step(t->st_clear);
    sqlite3_reset(t->st_clear);
    if (err) {
        for (int i = 0; i < t->ncol; i++) {
            sqlite3_value_free(out[i]);
            out[i] = NULL;
        }
        if (err == SQLITE_NOMEM)
            return sq_fail(s, MSQL_NOMEM, "out of memory");
        return err & 0xFF;
    }
    return SQLITE_OK;
}

int sq_row_values(msql *s, sq_table *t, const uint8_t *val, size_t vlen, sqlite3_value **out)
{
    for (int i = 0; i < t->ncol; i++)
        out[i] = NULL;
    if (!t->st_vals) {
        sqlite3_str *q = sqlite3_str_new(s->scratch);
        sqlite3_str_appendall(q, "SELECT ");
        for (int i = 0; i < t->ncol; i++)
            sqlite3_str_appendf(q, "%s?%d", i ? "," : "", i + 1);
        char *sql = sqlite3_str_finish(q);
        int rc = sql ? sqlite3_prepare_v3(s->scratch, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                          &t->st_vals, NULL)
                     : SQLITE_NOMEM;
        sqlite3_free(sql);
        if (rc)
            return rc == SQLITE_NOMEM ? sq_fail(s, MSQL_NOMEM, "out of memory")
                                      : sq_fail_sqlite(s, s->scratch, rc);
    }
    sq_row r;
    const char *why = NULL;
    int rc = sq_row_parse(val, vlen, &r, &why);
    if (rc == SQLITE_NOMEM)
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    if (rc)
        return sq_fail(s, MSQL_ERROR, "table %s: %s", t->name, why);
    for (int i = 0; i < t->ncol; i++)
        if (i >= r.ncol && t->cols[i].dflt) /* added after the row was written */
            sqlite3_bind_value(t->st_vals, i + 1, t->cols[i].dflt);
        else
            sq_row_bind(&r, i, t->st_vals, i + 1);
    sq_row_clear(&r);
    rc = sqlite3_step(t->st_vals);
    if (rc == SQLITE_ROW) {
        rc = SQLITE_OK;
        for (int i = 0; i < t->ncol; i++) {
            out[i] = sqlite3_value_dup(sqlite3_column_value(t->st_vals, i));
            if (!out[i])
                rc = SQLITE_NOMEM;
        }
    }
    sqlite3_reset(t->st_vals);
    sqlite3_clear_bindings(t->st_vals);
    if (rc) {
        for (int i = 0; i < t->ncol; i++) {
            sqlite3_value_free(out[i]);
            out[i] = NULL;
        }
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    }
    return SQLITE_OK;
}

int sq_key_needs_uid(sq_table *t, sqlite3_value **v)
{
    if (t->hidden_rowid)
        return 1;
    if (!t->nullable_pk)
        return 0;
    for (int i = 0; i < t->npk; i++)
        if (sqlite3_value_type(v[t->pk[i]]) == SQLITE_NULL)
            return 1;
    return 0;
}

/* The chain of tables from the root down to t. */
static int chain(sq_table *t, sq_table **out, int max)
{
    int n = 0;
    for (sq_table *p = t; p && n < max; p = p->parent)
        n++;
    int i = n;
    for (sq_table *p = t; p && i > 0; p = p->parent)
        out[--i] = p;
    return n;
}

int sq_key_prefix(msql *s, sq_table *t, sqlite3_value **v, int m, sq_buf *b)
{
    sq_table *lv[64] = {0};
    int n = chain(t, lv, 64);
    if (sq_buf_put(b, lv[0]->pfx, lv[0]->pfxlen))
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    int col = 0;
    for (int l = 0; l < n; l++) {
        if (l > 0) {
            if (col < lv[l - 1]->npk || m < lv[l - 1]->npk)
                break;
            uint8_t sep = SQ_KEY_INTERLEAVE;
            if (sq_buf_put(b, &sep, 1) || sq_key_append_int(b, lv[l]->id, 0))
                return sq_fail(s, MSQL_NOMEM, "out of memory");
        }
        for (; col < lv[l]->npk && col < m; col++) {
            /* t's key columns in order: the ancestors' come first, with their
             * directions (the CREATE TABLE check makes them agree). */
            if (sq_key_append(b, v[col], t->pkdesc[col]))
                return sq_fail(s, MSQL_NOMEM, "out of memory");
        }
        if (col < lv[l]->npk)
            break;
    }
    return SQLITE_OK;
}

int sq_key_of_row(msql *s, sq_table *t, sqlite3_value **v, int64_t uid, sq_buf *b)
{
    if (t->hidden_rowid) {
        if (sq_buf_put(b, t->pfx, t->pfxlen) || sq_key_append_int(b, uid, 0))
            return sq_fail(s, MSQL_NOMEM, "out of memory");
        return SQLITE_OK;
    }
    sqlite3_value *pv[t->npk > 0 ? t->npk : 1];
    for (int i = 0; i < t->npk; i++)
        pv[i] = v[t->pk[i]];
    int rc = sq_key_prefix(s, t, pv, t->npk, b);
    if (rc)
        return rc;
    if (sq_key_needs_uid(t, v) && sq_key_append_int(b, uid, 0))
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    return SQLITE_OK;
}

int sq_index_entry(msql *s, sq_index *ix, sqlite3_value **v, const uint8_t *rowkey,
                   size_t rowkeylen, sq_buf *key)
{
    if (sq_buf_put(key, ix->pfx, ix->pfxlen))
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    int hasnull = 0;
    for (int i = 0; i < ix->ncol; i++) {
        sqlite3_value *x = v[ix->cols[i]];
        hasnull |= sqlite3_value_type(x) == SQLITE_NULL;
        if (sq_key_append(key, x, ix->desc[i]))
            return sq_fail(s, MSQL_NOMEM, "out of memory");
    }
    /* A non-unique entry, or a unique one with a NULL (NULLs are distinct),
     * ends with the row's key, so that entries never collide. The row key
     * starts with 0x02, which no value encoding does. */
    if ((!ix->unique || hasnull) && sq_buf_put(key, rowkey, rowkeylen))
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    return SQLITE_OK;
}

sqlite3_value *sq_affinity(msql *s, sqlite3_value *v, char aff)
{
    int type = sqlite3_value_type(v);
    if (aff == 't' && (type == SQLITE_INTEGER || type == SQLITE_FLOAT)) {
        /* TEXT affinity renders a number as SQLite's CAST does. */
        sqlite3_value *out = NULL;
        sqlite3_bind_value(s->st_cast_text, 1, v);
        if (sqlite3_step(s->st_cast_text) == SQLITE_ROW)
            out = sqlite3_value_dup(sqlite3_column_value(s->st_cast_text, 0));
        sqlite3_reset(s->st_cast_text);
        sqlite3_clear_bindings(s->st_cast_text);
        return out;
    }
    sqlite3_value *out = sqlite3_value_dup(v);
    if (out && (aff == 'i' || aff == 'r' || aff == 'n') && type == SQLITE_TEXT)
        sqlite3_value_numeric_type(out); /* numeric affinity, as SQLite applies it */
    return out;
}

/* ---- row ids ---- */

typedef struct block_arg {
    msql *s;
    sq_table *t;
    int64_t first;
} block_arg;

static int take_block(meridian_txn *t, void *arg)
{
    block_arg *a = arg;
    sq_buf k = {0};
    if (sq_cat_id_key(&k, SQ_CAT_ROWID, a->t->id))
        return MERIDIAN_NOMEM;
    void *val = NULL;
    size_t vlen = 0;
    int rc = meridian_get(t, k.p, k.len, &val, &vlen);
    int64_t last = 0;
    if (rc == MERIDIAN_OK) {
        char buf[32];
        if (vlen < sizeof buf) {
            memcpy(buf, val, vlen);
            buf[vlen] = 0;
            last = strtoll(buf, NULL, 10);
        }
        meridian_free(val);
    } else if (rc != MERIDIAN_NOTFOUND) {
        sq_buf_free(&k);
        return rc;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)(last + SQ_ROWID_BLOCK));
    rc = meridian_put(t, k.p, k.len, buf, (size_t)n);
    sq_buf_free(&k);
    a->first = last + 1;
    return rc;
}

int sq_next_rowid(msql *s, sq_table *t, int64_t *id)
{
    if (t->rowid_next >= t->rowid_end) {
        /* A block of ids from the store, in a transaction of its own, so that
         * sessions inserting into one table do not contend on the counter for
         * longer than this. */
        block_arg a = {s, t, 0};
        int rc = meridian_run(s->db, s->retry_ms, take_block, &a, NULL);
        if (rc != MERIDIAN_OK)
            return sq_fail_meridian(s, rc, "taking a block of row ids");
        t->rowid_next = a.first;
        t->rowid_end = a.first + SQ_ROWID_BLOCK;
    }
    *id = t->rowid_next++;
    return SQLITE_OK;
}

typedef struct max_arg {
    msql *s;
    sq_table *t;
    int64_t max;
    int found, bad;
} max_arg;

static int max_cb(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    max_arg *a = arg;
    int64_t tid;
    if (sq_row_table_id(v, vl, &tid) || tid != a->t->id)
        return 0; /* an interleaved child's row */
    sq_row r;
    const char *why;
    if (sq_row_parse(v, vl, &r, &why)) {
        a->bad = 1;
        return 1;
    }
    /* The alias column holds an integer (SQLite refuses anything else). */
    int64_t x = 0;
    int col = a->t->pk[0];
    if (col < r.ncol && r.p[r.off[col]] == 1) {
        uint64_t z = 0;
        sq_get_varint(r.p + r.off[col] + 1, r.n - r.off[col] - 1, &z);
        x = (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
        if (!a->found || x > a->max)
            a->max = x;
        a->found = 1;
    }
    sq_row_clear(&r);
    return 0;
}

int sq_next_alias(msql *s, sq_txn *x, sq_table *t, int64_t *id)
{
    if (t->alias_serial != x->serial) {
        /* max + 1 as SQLite computes it, from a high-water mark in the
         * catalog and the rows above it (explicit inserts do not move the
         * mark, so the rows past it are read: under lock in this transaction,
         * so no other one can slip a row in). Rows deleted below the mark are
         * not reused (SQLite would reuse the max after deleting it). */
        sq_buf k = {0};
        if (sq_cat_id_key(&k, SQ_CAT_ALIAS, t->id))
            return sq_fail(s, MSQL_NOMEM, "out of memory");
        uint8_t *val = NULL;
        size_t vlen = 0;
        int rc = sq_read(s, x, k.p, k.len, &val, &vlen);
        sq_buf_free(&k);
        if (rc != SQLITE_OK && rc != SQLITE_NOTFOUND)
            return rc;
        int64_t mark = 0;
        if (rc == 0) {
            char buf[32];
            if (vlen < sizeof buf) {
                memcpy(buf, val, vlen);
                buf[vlen] = 0;
                mark = strtoll(buf, NULL, 10);
            }
            free(val);
        }
        sqlite3_value *mv[1];
        sqlite3_stmt *st = NULL;
        /* The first key past the mark: the alias value mark + 1. */
        rc = sqlite3_prepare_v2(s->scratch, "SELECT ?1", -1, &st, NULL);
        if (rc)
            return sq_fail_sqlite(s, s->scratch, rc);
        sqlite3_bind_int64(st, 1, mark + 1);
        sqlite3_step(st);
        mv[0] = sqlite3_column_value(st, 0);
        sq_buf start = {0};
        rc = sq_key_prefix(s, t, mv, 1, &start);
        sqlite3_finalize(st);
        uint8_t end[32];
        size_t elen = 0;
        max_arg a = {s, t, mark, 0, 0};
        if (!rc && !sq_key_succ(t->pfx, t->pfxlen, end, &elen))
            rc = sq_fail(s, MSQL_ERROR, "internal: no key past the table");
        if (!rc)
            rc = sq_scan_merged(s, x, start.p, start.len, end, elen, max_cb, &a);
        sq_buf_free(&start);
        if (rc)
            return rc;
        if (a.bad)
            return sq_fail(s, MSQL_ERROR, "table %s: a malformed row", t->name);
        t->alias_serial = x->serial;
        t->alias_next = (a.found && a.max > mark ? a.max : mark) + 1;
    }
    if (t->alias_next == INT64_MAX)
        return sq_fail(s, MSQL_ERROR, "database or disk is full");
    *id = t->alias_next; /* taken only when the row is written (sq_note_alias) */
    return SQLITE_OK;
}

int sq_note_alias(msql *s, sq_txn *x, sq_table *t, int64_t id, int assigned)
{
    if (t->alias_serial == x->serial && id >= t->alias_next && id < INT64_MAX)
        t->alias_next = id + 1;
    if (!assigned)
        return SQLITE_OK;
    /* Move the mark (written at commit with the rest). */
    sq_buf k = {0};
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)id);
    int rc = sq_cat_id_key(&k, SQ_CAT_ALIAS, t->id)
                 ? sq_fail(s, MSQL_NOMEM, "out of memory")
                 : sq_txn_put(s, k.p, k.len, (uint8_t *)buf, (size_t)n);
    sq_buf_free(&k);
    return rc;
}

/* sql/sq_show.c: SHOW TABLETS FOR TABLE t.
 *
 * The tablets (key ranges and the Paxos groups holding them, with their
 * leaders and replicas, from libmeridian's range map) that overlap the table's
 * key range, then each of its indexes'. For an interleaved table that range is
 * its root table's (its rows live in the directories of its ancestors' rows).
 * A tablet boundary inside the object's range is shown as the key tuple it
 * falls at, decoded ((5, 'abc')); boundaries outside as "-inf"/"+inf" or
 * "(start of t)"/"(end of t)". */
#include <stdlib.h>
#include <string.h>

#include "sql/sq_int.h"

/* meridian_key_value(key, offset, desc): the key's value at byte offset, as
 * sq_key_decode gives it; the bytes it took are left in the session. */
static void fn_key_value(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    msql *s = sqlite3_user_data(ctx);
    (void)argc;
    const uint8_t *p = sqlite3_value_blob(argv[0]);
    int n = sqlite3_value_bytes(argv[0]);
    int off = sqlite3_value_int(argv[1]);
    size_t used = 0;
    s->key_used = 0;
    if (!p || off < 0 || off >= n) {
        sqlite3_result_null(ctx);
        return;
    }
    if (sq_key_decode(p + off, (size_t)(n - off), sqlite3_value_int(argv[2]), ctx, &used) ==
        SQLITE_OK)
        s->key_used = used;
    else
        sqlite3_result_null(ctx);
}

int sq_show_register(msql *s)
{
    return sqlite3_create_function(s->conn, "meridian_key_value", 3, SQLITE_UTF8, s, fn_key_value,
                                   NULL, NULL);
}

static int cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (al < bl ? -1 : al > bl);
}

/* The text of boundary key k of a tablet seen from an object whose keys start
 * with pfx and hold ncol values (directions desc). sqlite3_mprintf'd. */
static char *render(msql *s, sqlite3_stmt *val, const uint8_t *k, size_t kl, const uint8_t *pfx,
                    size_t pl, int ncol, const int *desc, const char *name, int is_end)
{
    if (kl == 0)
        return sqlite3_mprintf("%s", is_end ? "+inf" : "-inf");
    if (kl < pl || memcmp(k, pfx, pl) != 0)
        return sqlite3_mprintf("(%s of %s)", cmp(k, kl, pfx, pl) < 0 ? "start" : "end", name);
    sqlite3_str *q = sqlite3_str_new(NULL);
    sqlite3_str_appendall(q, "(");
    size_t off = pl;
    int i = 0;
    for (; i < ncol && off < kl; i++) {
        sqlite3_bind_blob64(val, 1, k, kl, SQLITE_STATIC);
        sqlite3_bind_int64(val, 2, (sqlite3_int64)off);
        sqlite3_bind_int(val, 3, desc[i]);
        const char *text = NULL;
        if (sqlite3_step(val) == SQLITE_ROW)
            text = (const char *)sqlite3_column_text(val, 0);
        sqlite3_str_appendf(q, "%s%s", i ? ", " : "", text ? text : "?");
        sqlite3_reset(val);
        if (!s->key_used)
            break;
        off += s->key_used;
    }
    sqlite3_str_appendall(q, off < kl ? (i ? ", ...)" : "...)") : ")");
    return sqlite3_str_finish(q);
}

/* Appends the tablets of one object to the statement's rows via add. */
typedef int (*row_fn)(void *arg, sqlite3_stmt *row);

static int object_rows(msql *s, sqlite3_stmt *val, sqlite3_stmt *row, const char *label,
                       const char *name, const uint8_t *pfx, size_t pl, int ncol, const int *desc,
                       row_fn add, void *arg)
{
    uint8_t end[64];
    size_t el = 0;
    if (!sq_key_succ(pfx, pl, end, &el))
        return sq_fail(s, MSQL_ERROR, "internal: no key past %s", name);
    meridian_range *r = NULL;
    size_t n = 0;
    int rc = meridian_ranges(s->db, pfx, pl, end, el, 1, &r, &n);
    if (rc != MERIDIAN_OK)
        return sq_fail_meridian(s, rc, "the range map");
    rc = SQLITE_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        char *a = render(s, val, r[i].start, r[i].slen, pfx, pl, ncol, desc, name, 0);
        char *b = render(s, val, r[i].end, r[i].elen, pfx, pl, ncol, desc, name, 1);
        sqlite3_str *reps = sqlite3_str_new(NULL);
        for (size_t j = 0; j < r[i].nreplicas; j++)
            sqlite3_str_appendf(reps, "%s%s", j ? "," : "", r[i].replicas[j]);
        char *rp = sqlite3_str_finish(reps);
        sqlite3_bind_text(row, 1, label, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(row, 2, a ? a : "?", -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(row, 3, b ? b : "?", -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(row, 4, (sqlite3_int64)r[i].group);
        sqlite3_bind_text(row, 5, r[i].leader, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(row, 6, rp ? rp : "", -1, SQLITE_TRANSIENT);
        if (sqlite3_step(row) == SQLITE_ROW)
            rc = add(arg, row);
        else
            rc = sq_fail(s, MSQL_ERROR, "%s", sqlite3_errmsg(s->conn));
        sqlite3_reset(row);
        sqlite3_free(a);
        sqlite3_free(b);
        sqlite3_free(rp);
    }
    meridian_free_ranges(r, n);
    return rc;
}

int sq_show_tablets(msql *s, const char *table, int (*add)(void *arg, sqlite3_stmt *row), void *arg)
{
    sq_table *t = sq_cat_table(s, table);
    if (!t)
        return sq_fail(s, MSQL_ERROR, "no such table: %s", table);
    sqlite3_stmt *val = NULL, *row = NULL;
    s->internal++;
    int rc =
        sqlite3_prepare_v2(s->conn, "SELECT quote(meridian_key_value(?1, ?2, ?3))", -1, &val, NULL);
    if (!rc)
        rc = sqlite3_prepare_v2(s->conn, "SELECT ?1, ?2, ?3, ?4, ?5, ?6", -1, &row, NULL);
    s->internal--;
    if (rc) {
        sqlite3_finalize(val);
        return sq_fail_sqlite(s, s->conn, rc);
    }
    /* the table: its root's directories */
    sq_table *root = t;
    while (root->parent)
        root = root->parent;
    char *label = root == t ? sqlite3_mprintf("%s", t->name)
                            : sqlite3_mprintf("%s (in %s's directories)", t->name, root->name);
    int zero[1] = {0};
    rc = object_rows(s, val, row, label ? label : t->name, root->name, root->pfx, root->pfxlen,
                     root->hidden_rowid ? 1 : root->npk, root->hidden_rowid ? zero : root->pkdesc,
                     add, arg);
    sqlite3_free(label);
    for (int i = 0; !rc && i < t->nidx; i++) {
        sq_index *ix = t->idx[i];
        char *il = sqlite3_mprintf("%s (index %s)", t->name, ix->name);
        rc = object_rows(s, val, row, il ? il : ix->name, ix->name, ix->pfx, ix->pfxlen, ix->ncol,
                         ix->desc, add, arg);
        sqlite3_free(il);
    }
    sqlite3_finalize(val);
    sqlite3_finalize(row);
    return rc;
}

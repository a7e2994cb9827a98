/* sql/sq_catalog.c: the SQL catalog, stored under 0x01 keys, and the session
 * objects made from it.
 *
 * A descriptor per table, view and index (JSON: its CREATE text as the user
 * wrote it, the text SQLite accepts, ids, the interleave parent) lives at
 * 0x01 0x03 + its lower-case name; 0x01 0x01 holds the catalog version record,
 * which every DDL transaction bumps and transactions read when the schema
 * lease does not stand in (sq_lease.c). The columns, types,
 * key and collations are not stored: they are what SQLite makes of the CREATE
 * text, read back with PRAGMA table_xinfo/index_list/index_xinfo from the
 * session's scratch database, where every table is replayed as a real table.
 *
 * Loading (sq_cat_rebuild) replaces every session object: virtual tables and
 * views in the session's connection, real tables in the scratch database, and
 * the rows of temp.meridian_schema (type, name, tbl_name, sql: the
 * sqlite_schema of the cluster). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql/sq_int.h"

size_t sq_cat_key(uint8_t *out, int kind)
{
    out[0] = SQ_PFX_CATALOG;
    out[1] = (uint8_t)kind;
    return 2;
}

int sq_cat_desc_key(sq_buf *b, const char *name)
{
    uint8_t k[2];
    sq_cat_key(k, SQ_CAT_DESC);
    if (sq_buf_put(b, k, 2))
        return SQLITE_NOMEM;
    for (const char *p = name; *p; p++) {
        uint8_t c = (uint8_t)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
        if (sq_buf_put(b, &c, 1))
            return SQLITE_NOMEM;
    }
    return SQLITE_OK;
}

int sq_cat_id_key(sq_buf *b, int kind, int64_t id)
{
    uint8_t k[2];
    sq_cat_key(k, kind);
    if (sq_buf_put(b, k, 2) || sq_key_append_int(b, id, 0))
        return SQLITE_NOMEM;
    return SQLITE_OK;
}

int sq_key_succ(const uint8_t *p, size_t n, uint8_t *out, size_t *outlen)
{
    while (n > 0 && p[n - 1] == 0xFF)
        n--;
    if (n == 0)
        return 0;
    if (out != p)
        memcpy(out, p, n);
    out[n - 1]++;
    *outlen = n;
    return 1;
}

/* ---- lookups ---- */

sq_table *sq_cat_table(msql *s, const char *name)
{
    for (int i = 0; i < s->cat.ntables; i++)
        if (sqlite3_stricmp(s->cat.tables[i]->name, name) == 0)
            return s->cat.tables[i];
    return NULL;
}

sq_table *sq_cat_table_id(msql *s, int64_t id)
{
    for (int i = 0; i < s->cat.ntables; i++)
        if (s->cat.tables[i]->id == id)
            return s->cat.tables[i];
    return NULL;
}

sq_view *sq_cat_view(msql *s, const char *name)
{
    for (int i = 0; i < s->cat.nviews; i++)
        if (sqlite3_stricmp(s->cat.views[i]->name, name) == 0)
            return s->cat.views[i];
    return NULL;
}

sq_trigger *sq_cat_trigger(msql *s, const char *name)
{
    for (int i = 0; i < s->cat.ntriggers; i++)
        if (sqlite3_stricmp(s->cat.triggers[i]->name, name) == 0)
            return s->cat.triggers[i];
    return NULL;
}

sq_index *sq_cat_index(msql *s, const char *name)
{
    for (int i = 0; i < s->cat.nindexes; i++)
        if (sqlite3_stricmp(s->cat.indexes[i]->name, name) == 0)
            return s->cat.indexes[i];
    return NULL;
}

/* ---- freeing ---- */

static void index_free(sq_index *ix)
{
    if (!ix)
        return;
    free(ix->name);
    free(ix->sql);
    free(ix->cols);
    free(ix->desc);
    free(ix);
}

static void table_free(sq_table *t)
{
    if (!t)
        return;
    sq_check_free(t);
    free(t->name);
    free(t->sql);
    free(t->create);
    for (int i = 0; i < t->ncol; i++) {
        free(t->cols[i].name);
        free(t->cols[i].decl);
        free(t->cols[i].coll);
        free(t->cols[i].dflt_text);
        sqlite3_value_free(t->cols[i].dflt);
    }
    free(t->cols);
    free(t->pk);
    free(t->pkdesc);
    free(t->children);
    free(t->idx);
    free(t->triggers);
    free(t);
}

/* Frees the objects made from the descriptors (not the descriptors). */
static void objects_free(msql *s)
{
    sq_cat *c = &s->cat;
    for (int i = 0; i < c->ntables; i++)
        table_free(c->tables[i]);
    free(c->tables);
    c->tables = NULL;
    c->ntables = 0;
    for (int i = 0; i < c->nviews; i++) {
        free(c->views[i]->name);
        free(c->views[i]->sql);
        free(c->views[i]);
    }
    free(c->views);
    c->views = NULL;
    c->nviews = 0;
    for (int i = 0; i < c->nindexes; i++)
        index_free(c->indexes[i]);
    free(c->indexes);
    c->indexes = NULL;
    c->nindexes = 0;
    for (int i = 0; i < c->ntriggers; i++)
        sq_trigger_free(c->triggers[i]);
    free(c->triggers);
    c->triggers = NULL;
    c->ntriggers = 0;
}

static void desc_free(msql *s)
{
    for (int i = 0; i < s->cat.ndesc; i++) {
        free(s->cat.desc[i].key);
        free(s->cat.desc[i].json);
    }
    free(s->cat.desc);
    s->cat.desc = NULL;
    s->cat.ndesc = 0;
}

void sq_cat_free(msql *s)
{
    objects_free(s);
    desc_free(s);
}

/* ---- loading ---- */

typedef struct load_arg {
    sq_desc *d;
    int n, cap, oom;
} load_arg;

static int load_cb(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    load_arg *a = arg;
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 16;
        sq_desc *d = realloc(a->d, (size_t)cap * sizeof *d);
        if (!d) {
            a->oom = 1;
            return 1;
        }
        a->d = d;
        a->cap = cap;
    }
    char *key = malloc(kl - 2 + 1), *json = malloc(vl + 1);
    if (!key || !json) {
        free(key);
        free(json);
        a->oom = 1;
        return 1;
    }
    memcpy(key, (const uint8_t *)k + 2, kl - 2);
    key[kl - 2] = 0;
    memcpy(json, v, vl);
    json[vl] = 0;
    a->d[a->n].key = key;
    a->d[a->n].json = json;
    a->n++;
    return 0;
}

int sq_cat_load(msql *s, sq_txn *x, int64_t version)
{
    uint8_t start[2], end[2];
    sq_cat_key(start, SQ_CAT_DESC);
    sq_cat_key(end, SQ_CAT_DESC + 1);
    load_arg a = {0};
    int rc = meridian_scan(x->t, start, 2, end, 2, 0, load_cb, &a);
    if (rc != MERIDIAN_OK || a.oom) {
        for (int i = 0; i < a.n; i++) {
            free(a.d[i].key);
            free(a.d[i].json);
        }
        free(a.d);
        if (a.oom)
            return sq_fail(s, MSQL_NOMEM, "out of memory");
        return sq_fail_meridian(s, rc, "reading the catalog");
    }
    /* The session's virtual tables cannot be replaced under a running
     * statement (SQLite: "database table is locked"). */
    for (sqlite3_stmt *p = sqlite3_next_stmt(s->conn, NULL); p; p = sqlite3_next_stmt(s->conn, p))
        if (sqlite3_stmt_busy(p)) {
            for (int i = 0; i < a.n; i++) {
                free(a.d[i].key);
                free(a.d[i].json);
            }
            free(a.d);
            return sq_fail(s, MSQL_RETRY,
                           "retryable: the schema changed while another statement of this "
                           "session is still running: finish or finalize it, then run this "
                           "again");
        }
    desc_free(s);
    s->cat.desc = a.d;
    s->cat.ndesc = a.n;
    rc = sq_cat_rebuild(s);
    /* A failed rebuild leaves no version: the next transaction loads again. */
    s->cat.version = rc ? -1 : version;
    return rc;
}

int sq_cat_refresh(msql *s)
{
    return sq_lease_refresh(s, 1);
}

/* ---- describing a table of the scratch database ---- */

static char *xstrdup(const char *p)
{
    return strdup(p ? p : "");
}

/* Runs a one-row-per-result pragma on the scratch db: fn per row. */
static int pragma_rows(msql *s, const char *sql, int (*fn)(void *, sqlite3_stmt *), void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->scratch, sql, -1, &st, NULL);
    if (rc)
        return sq_fail_sqlite(s, s->scratch, rc);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((rc = fn(arg, st)) != SQLITE_OK)
            break;
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    else if (rc != SQLITE_OK)
        sq_fail_sqlite(s, s->scratch, rc);
    sqlite3_finalize(st);
    return rc;
}

typedef struct col_arg {
    msql *s;
    sq_table *t;
    int generated;
} col_arg;

static int col_cb(void *arg, sqlite3_stmt *st)
{
    col_arg *a = arg;
    sq_table *t = a->t;
    if (sqlite3_column_int(st, 6) != 0) {
        a->generated = 1;
        return SQLITE_OK;
    }
    sq_col *c = realloc(t->cols, (size_t)(t->ncol + 1) * sizeof *c);
    if (!c)
        return SQLITE_NOMEM;
    t->cols = c;
    c = &t->cols[t->ncol];
    memset(c, 0, sizeof *c);
    t->ncol++;
    c->name = xstrdup((const char *)sqlite3_column_text(st, 1));
    c->decl = xstrdup((const char *)sqlite3_column_text(st, 2));
    c->notnull = sqlite3_column_int(st, 3);
    c->pk = sqlite3_column_int(st, 5);
    if (sqlite3_column_type(st, 4) != SQLITE_NULL &&
        !(c->dflt_text = strdup((const char *)sqlite3_column_text(st, 4))))
        return SQLITE_NOMEM;
    const char *type = NULL, *coll = NULL;
    int nn, pk, ai;
    if (sqlite3_table_column_metadata(a->s->scratch, "main", t->name, c->name, &type, &coll, &nn,
                                      &pk, &ai) == SQLITE_OK)
        c->coll = xstrdup(coll ? coll : "BINARY");
    else
        c->coll = xstrdup("BINARY");
    if (!c->name || !c->decl || !c->coll)
        return SQLITE_NOMEM;
    return SQLITE_OK;
}

typedef struct idxl_arg {
    char *pk_index; /* origin 'pk' */
    char **uniq;    /* origin 'u' */
    int nuniq;
    int partial;
} idxl_arg;

static int idxl_cb(void *arg, sqlite3_stmt *st)
{
    idxl_arg *a = arg;
    const char *name = (const char *)sqlite3_column_text(st, 1);
    const char *origin = (const char *)sqlite3_column_text(st, 3);
    if (!name || !origin)
        return SQLITE_OK;
    if (strcmp(origin, "pk") == 0) {
        free(a->pk_index);
        a->pk_index = strdup(name);
        return a->pk_index ? SQLITE_OK : SQLITE_NOMEM;
    }
    if (strcmp(origin, "u") == 0) {
        char **u = realloc(a->uniq, (size_t)(a->nuniq + 1) * sizeof *u);
        if (!u)
            return SQLITE_NOMEM;
        a->uniq = u;
        if (!(a->uniq[a->nuniq] = strdup(name)))
            return SQLITE_NOMEM;
        a->nuniq++;
    }
    return SQLITE_OK;
}

typedef struct xinfo_arg {
    int *cols, *desc;
    char **coll;
    int n, cap, expr;
} xinfo_arg;

static int xinfo_cb(void *arg, sqlite3_stmt *st)
{
    xinfo_arg *a = arg;
    if (!sqlite3_column_int(st, 5)) /* key = 0: the row's own key columns */
        return SQLITE_OK;
    int cid = sqlite3_column_int(st, 1);
    if (cid < 0) {
        a->expr = 1; /* -2: an expression; -1: the rowid */
        return SQLITE_OK;
    }
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 8;
        int *c = realloc(a->cols, (size_t)cap * sizeof *c);
        if (c)
            a->cols = c;
        int *d = realloc(a->desc, (size_t)cap * sizeof *d);
        if (d)
            a->desc = d;
        char **co = realloc(a->coll, (size_t)cap * sizeof *co);
        if (co)
            a->coll = co;
        if (!c || !d || !co)
            return SQLITE_NOMEM;
        a->cap = cap;
    }
    a->cols[a->n] = cid;
    a->desc[a->n] = sqlite3_column_int(st, 3);
    a->coll[a->n] = xstrdup((const char *)sqlite3_column_text(st, 4));
    if (!a->coll[a->n])
        return SQLITE_NOMEM;
    a->n++;
    return SQLITE_OK;
}

static void xinfo_free(xinfo_arg *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->coll[i]);
    free(a->cols);
    free(a->desc);
    free(a->coll);
}

static int index_columns(msql *s, const char *index, xinfo_arg *out)
{
    char *q = sq_quote(index);
    char *sql = sqlite3_mprintf("PRAGMA main.index_xinfo(%s)", q);
    sqlite3_free(q);
    if (!sql)
        return SQLITE_NOMEM;
    int rc = pragma_rows(s, sql, xinfo_cb, out);
    sqlite3_free(sql);
    return rc;
}

static int flags_cb(void *arg, sqlite3_stmt *st)
{
    sq_table *t = arg;
    t->without_rowid = sqlite3_column_int(st, 0);
    t->strict = sqlite3_column_int(st, 1);
    return SQLITE_OK;
}

/* The description of scratch table `name` (created just before), or NULL
 * with the session's failure set. why_unsupported: Meridian refuses it. */
sq_table *sq_cat_describe(msql *s, const char *name);
sq_table *sq_cat_describe(msql *s, const char *name)
{
    sq_table *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name))) {
        free(t);
        sq_fail(s, MSQL_NOMEM, "out of memory");
        return NULL;
    }
    char *q = sq_quote(name);
    char *lit = sqlite3_mprintf("%Q", name);
    char *sql1 = sqlite3_mprintf("PRAGMA main.table_xinfo(%s)", q);
    char *sql2 = sqlite3_mprintf("SELECT wr, strict FROM pragma_table_list WHERE schema='main' AND "
                                 "name=%s",
                                 lit);
    char *sql3 = sqlite3_mprintf("PRAGMA main.index_list(%s)", q);
    sqlite3_free(q);
    sqlite3_free(lit);
    col_arg ca = {s, t, 0};
    idxl_arg ia = {0};
    xinfo_arg xa = {0};
    int rc = (!sql1 || !sql2 || !sql3) ? SQLITE_NOMEM : SQLITE_OK;
    if (!rc)
        rc = pragma_rows(s, sql1, col_cb, &ca);
    if (!rc)
        rc = pragma_rows(s, sql2, flags_cb, t);
    if (!rc)
        rc = pragma_rows(s, sql3, idxl_cb, &ia);
    sqlite3_free(sql1);
    sqlite3_free(sql2);
    sqlite3_free(sql3);
    if (!rc && ca.generated)
        rc = sq_fail(s, MSQL_ERROR, "table %s: generated columns are not supported", name);
    for (int i = 0; !rc && i < t->ncol; i++) {
        t->cols[i].aff = sq_affinity_of(t->cols[i].decl, t->strict);
        if (t->cols[i].dflt_text) {
            /* A constant DEFAULT's value, as the column stores it (ADD COLUMN
             * allows only constants; others are evaluated per row on insert). */
            /* REAL affinity makes an integer a real, as a read of a REAL column does */
            char *dq = sqlite3_mprintf(t->cols[i].aff == 'r'
                                           ? "SELECT CASE WHEN typeof(x) = 'integer' THEN "
                                             "CAST(x AS REAL) ELSE x END FROM (SELECT (%s) AS x)"
                                           : "SELECT %s",
                                       t->cols[i].dflt_text);
            sqlite3_stmt *st = NULL;
            if (dq && sqlite3_prepare_v2(s->scratch, dq, -1, &st, NULL) == SQLITE_OK &&
                sqlite3_step(st) == SQLITE_ROW)
                t->cols[i].dflt = sq_affinity(s, sqlite3_column_value(st, 0), t->cols[i].aff);
            sqlite3_finalize(st);
            sqlite3_free(dq);
        }
        if (sqlite3_stricmp(t->cols[i].name, SQ_KEYCOL) == 0)
            rc =
                sq_fail(s, MSQL_ERROR, "table %s: the column name %s is reserved", name, SQ_KEYCOL);
        if (t->cols[i].pk > t->npk)
            t->npk = t->cols[i].pk;
    }
    if (!rc && t->npk > 0) {
        t->pk = calloc((size_t)t->npk, sizeof *t->pk);
        t->pkdesc = calloc((size_t)t->npk, sizeof *t->pkdesc);
        if (!t->pk || !t->pkdesc)
            rc = SQLITE_NOMEM;
        for (int i = 0; !rc && i < t->ncol; i++)
            if (t->cols[i].pk)
                t->pk[t->cols[i].pk - 1] = i;
        if (!rc && ia.pk_index) {
            rc = index_columns(s, ia.pk_index, &xa);
            for (int i = 0; !rc && i < xa.n && i < t->npk; i++)
                t->pkdesc[i] = xa.desc[i];
        }
        if (!rc && !t->without_rowid && !ia.pk_index && t->npk == 1)
            t->rowid_alias = 1;
        if (!rc && !t->without_rowid && !t->rowid_alias)
            t->nullable_pk = 1;
        for (int i = 0; !rc && i < t->npk; i++)
            if (sqlite3_stricmp(t->cols[t->pk[i]].coll, "BINARY") != 0)
                rc = sq_fail(s, MSQL_ERROR,
                             "table %s: primary key column %s has collation %s: Meridian keys "
                             "order as BINARY, so key columns must use it",
                             name, t->cols[t->pk[i]].name, t->cols[t->pk[i]].coll);
    }
    if (!rc && t->npk == 0)
        t->hidden_rowid = 1;
    xinfo_free(&xa);
    free(ia.pk_index);
    for (int i = 0; i < ia.nuniq; i++)
        free(ia.uniq[i]);
    free(ia.uniq);
    if (rc) {
        if (rc == SQLITE_NOMEM)
            sq_fail(s, MSQL_NOMEM, "out of memory");
        table_free(t);
        return NULL;
    }
    return t;
}

/* The UNIQUE constraints' own indexes of scratch table t, in index_list
 * order: names malloc'd into *out. */
int sq_cat_unique_indexes(msql *s, const char *table, char ***out, int *n);
int sq_cat_unique_indexes(msql *s, const char *table, char ***out, int *n)
{
    char *q = sq_quote(table);
    char *sql = sqlite3_mprintf("PRAGMA main.index_list(%s)", q);
    sqlite3_free(q);
    idxl_arg ia = {0};
    int rc = sql ? pragma_rows(s, sql, idxl_cb, &ia) : SQLITE_NOMEM;
    sqlite3_free(sql);
    free(ia.pk_index);
    *out = ia.uniq;
    *n = ia.nuniq;
    return rc;
}

/* Builds an index object for scratch index `name` on t. */
sq_index *sq_cat_describe_index(msql *s, sq_table *t, const char *name, int64_t id, int unique,
                                const char *sql);
sq_index *sq_cat_describe_index(msql *s, sq_table *t, const char *name, int64_t id, int unique,
                                const char *sql)
{
    xinfo_arg xa = {0};
    int rc = index_columns(s, name, &xa);
    if (rc) {
        xinfo_free(&xa);
        return NULL;
    }
    if (xa.expr || xa.n == 0) {
        xinfo_free(&xa);
        sq_fail(s, MSQL_ERROR, "index %s: indexes on expressions are not supported", name);
        return NULL;
    }
    for (int i = 0; i < xa.n; i++)
        if (sqlite3_stricmp(xa.coll[i], "BINARY") != 0) {
            sq_fail(s, MSQL_ERROR,
                    "index %s: column %s has collation %s: Meridian keys order as BINARY, so "
                    "indexed columns must use it",
                    name, t->cols[xa.cols[i]].name, xa.coll[i]);
            xinfo_free(&xa);
            return NULL;
        }
    sq_index *ix = calloc(1, sizeof *ix);
    if (!ix) {
        xinfo_free(&xa);
        sq_fail(s, MSQL_NOMEM, "out of memory");
        return NULL;
    }
    ix->name = strdup(name);
    ix->sql = sql ? strdup(sql) : NULL;
    ix->id = id;
    ix->tab = t;
    ix->unique = unique;
    ix->ncol = xa.n;
    ix->cols = xa.cols;
    ix->desc = xa.desc;
    xa.cols = xa.desc = NULL;
    for (int i = 0; i < xa.n; i++)
        free(xa.coll[i]);
    free(xa.coll);
    sq_buf b = {0};
    uint8_t p = SQ_PFX_DATA;
    if (!ix->name || (sql && !ix->sql) || sq_buf_put(&b, &p, 1) || sq_key_append_int(&b, id, 0) ||
        b.len > sizeof ix->pfx) {
        sq_buf_free(&b);
        index_free(ix);
        sq_fail(s, MSQL_NOMEM, "out of memory");
        return NULL;
    }
    memcpy(ix->pfx, b.p, b.len);
    ix->pfxlen = b.len;
    sq_buf_free(&b);
    return ix;
}

/* ---- rebuilding the session's objects ---- */

static int open_scratch(msql *s)
{
    sqlite3_finalize(s->st_cast_text);
    s->st_cast_text = NULL;
    if (s->scratch) {
        sqlite3_close(s->scratch);
        s->scratch = NULL;
    }
    int rc =
        sqlite3_open_v2(":memory:", &s->scratch,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc) {
        sqlite3_close(s->scratch);
        s->scratch = NULL;
        return sq_fail(s, MSQL_NOMEM, "cannot open the scratch database");
    }
    sqlite3_extended_result_codes(s->scratch, 0);
    rc = sqlite3_prepare_v3(s->scratch, "SELECT CAST(?1 AS TEXT)", -1, SQLITE_PREPARE_PERSISTENT,
                            &s->st_cast_text, NULL);
    if (rc)
        return sq_fail_sqlite(s, s->scratch, rc);
    return SQLITE_OK;
}

static int push_table(sq_cat *c, sq_table *t)
{
    sq_table **p = realloc(c->tables, (size_t)(c->ntables + 1) * sizeof *p);
    if (!p)
        return SQLITE_NOMEM;
    c->tables = p;
    c->tables[c->ntables++] = t;
    return SQLITE_OK;
}

static int push_index(sq_cat *c, sq_index *ix)
{
    sq_index **p = realloc(c->indexes, (size_t)(c->nindexes + 1) * sizeof *p);
    if (!p)
        return SQLITE_NOMEM;
    c->indexes = p;
    c->indexes[c->nindexes++] = ix;
    sq_table *t = ix->tab;
    sq_index **q = realloc(t->idx, (size_t)(t->nidx + 1) * sizeof *q);
    if (!q)
        return SQLITE_NOMEM;
    t->idx = q;
    t->idx[t->nidx++] = ix;
    return SQLITE_OK;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = json_integer_value(json_object_get(*(json_t *const *)a, "id"));
    int64_t y = json_integer_value(json_object_get(*(json_t *const *)b, "id"));
    return x < y ? -1 : x > y;
}

/* Drops the session's virtual tables and views, and meridian_schema's rows. */
static int drop_session_objects(msql *s)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = NULL;
    /* What the session's connection has, whatever the catalog said. */
    rc = sqlite3_prepare_v2(s->conn,
                            "SELECT type, name FROM main.sqlite_schema WHERE type IN "
                            "('view','table') ORDER BY type = 'table'",
                            -1, &st, NULL);
    if (rc)
        return sq_fail_sqlite(s, s->conn, rc);
    char **names = NULL;
    int *isview = NULL, n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        char **nn = realloc(names, (size_t)(n + 1) * sizeof *nn);
        int *iv = realloc(isview, (size_t)(n + 1) * sizeof *iv);
        if (nn)
            names = nn;
        if (iv)
            isview = iv;
        if (!nn || !iv || !(names[n] = strdup((const char *)sqlite3_column_text(st, 1)))) {
            rc = SQLITE_NOMEM;
            break;
        }
        isview[n] = strcmp((const char *)sqlite3_column_text(st, 0), "view") == 0;
        n++;
    }
    sqlite3_finalize(st);
    for (int i = 0; i < n; i++) {
        if (!rc) {
            char *q = sq_quote(names[i]);
            char *sql = sqlite3_mprintf("DROP %s main.%s", isview[i] ? "VIEW" : "TABLE", q);
            sqlite3_free(q);
            rc = sql ? sq_exec_internal(s, s->conn, sql) : SQLITE_NOMEM;
            sqlite3_free(sql);
        }
        free(names[i]);
    }
    free(names);
    free(isview);
    if (!rc)
        rc = sq_exec_internal(s, s->conn, "DELETE FROM temp.meridian_schema");
    if (rc == SQLITE_NOMEM)
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    return rc;
}

static int schema_row(msql *s, const char *type, const char *name, const char *tbl, const char *sql)
{
    char *q = sqlite3_mprintf("INSERT INTO temp.meridian_schema VALUES(%Q,%Q,%Q,%Q)", type, name,
                              tbl, sql);
    if (!q)
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    int rc = sq_exec_internal(s, s->conn, q);
    sqlite3_free(q);
    return rc;
}

/* Makes the objects of one table descriptor. */
static int build_table(msql *s, json_t *j)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *create = json_string_value(json_object_get(j, "create"));
    const char *sql = json_string_value(json_object_get(j, "sql"));
    json_int_t id = json_integer_value(json_object_get(j, "id"));
    if (!name || !create || !sql || id <= 0)
        return sq_fail(s, MSQL_ERROR, "catalog: a malformed table descriptor");
    int rc = sq_exec_internal(s, s->scratch, create);
    if (rc)
        return rc;
    sq_table *t = sq_cat_describe(s, name);
    if (!t)
        return SQLITE_ERROR;
    t->id = id;
    t->sql = strdup(sql);
    t->create = strdup(create);
    t->parent_id = json_integer_value(json_object_get(j, "parent"));
    t->cascade = json_is_true(json_object_get(j, "cascade"));
    sq_buf b = {0};
    uint8_t p = SQ_PFX_DATA;
    int64_t root = id;
    if (t->parent_id) {
        sq_table *par = sq_cat_table_id(s, t->parent_id);
        if (!par) {
            table_free(t);
            return sq_fail(s, MSQL_ERROR, "catalog: table %s: its parent (id %lld) is missing",
                           name, (long long)t->parent_id);
        }
        t->parent = par;
        sq_table **ch = realloc(par->children, (size_t)(par->nchildren + 1) * sizeof *ch);
        if (!ch) {
            table_free(t);
            return sq_fail(s, MSQL_NOMEM, "out of memory");
        }
        par->children = ch;
        par->children[par->nchildren++] = t;
        for (sq_table *a = par; a; a = a->parent)
            root = a->id;
    }
    if (!t->sql || !t->create || sq_buf_put(&b, &p, 1) || sq_key_append_int(&b, root, 0) ||
        b.len > sizeof t->pfx || push_table(&s->cat, t)) {
        sq_buf_free(&b);
        table_free(t);
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    }
    memcpy(t->pfx, b.p, b.len);
    t->pfxlen = b.len;
    sq_buf_free(&b);
    /* The UNIQUE constraints' indexes, with the ids the descriptor gave them. */
    char **un = NULL;
    int nu = 0;
    rc = sq_cat_unique_indexes(s, name, &un, &nu);
    json_t *uids = json_object_get(j, "unique_ids");
    for (int i = 0; i < nu; i++) {
        if (!rc) {
            json_int_t uid = json_integer_value(json_array_get(uids, (size_t)i));
            if (uid <= 0) {
                rc = sq_fail(s, MSQL_ERROR, "catalog: table %s: no id for its index %s", name,
                             un[i]);
            } else {
                sq_index *ix = sq_cat_describe_index(s, t, un[i], uid, 1, NULL);
                if (!ix)
                    rc = SQLITE_ERROR;
                else if (push_index(&s->cat, ix)) {
                    index_free(ix);
                    rc = sq_fail(s, MSQL_NOMEM, "out of memory");
                }
            }
        }
        free(un[i]);
    }
    free(un);
    if (rc)
        return rc;
    char *qn = sq_quote(name);
    char *vt =
        sqlite3_mprintf("CREATE VIRTUAL TABLE main.%s USING meridian(%lld)", qn, (long long)id);
    sqlite3_free(qn);
    rc = vt ? sq_exec_internal(s, s->conn, vt) : sq_fail(s, MSQL_NOMEM, "out of memory");
    sqlite3_free(vt);
    if (!rc)
        rc = schema_row(s, "table", name, name, sql);
    return rc;
}

static int build_index(msql *s, json_t *j)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *sql = json_string_value(json_object_get(j, "sql"));
    const char *tname = json_string_value(json_object_get(j, "table"));
    json_int_t id = json_integer_value(json_object_get(j, "id"));
    if (!name || !sql || !tname || id <= 0)
        return sq_fail(s, MSQL_ERROR, "catalog: a malformed index descriptor");
    sq_table *t = sq_cat_table(s, tname);
    if (!t)
        return sq_fail(s, MSQL_ERROR, "catalog: index %s: no table %s", name, tname);
    int rc = sq_exec_internal(s, s->scratch, sql);
    if (rc)
        return rc;
    sq_index *ix =
        sq_cat_describe_index(s, t, name, id, json_is_true(json_object_get(j, "unique")), sql);
    if (!ix)
        return SQLITE_ERROR;
    if (push_index(&s->cat, ix)) {
        index_free(ix);
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    }
    return schema_row(s, "index", name, t->name, sql);
}

static int build_view(msql *s, json_t *j)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *sql = json_string_value(json_object_get(j, "sql"));
    if (!name || !sql)
        return sq_fail(s, MSQL_ERROR, "catalog: a malformed view descriptor");
    sq_view *v = calloc(1, sizeof *v);
    sq_view **vs = realloc(s->cat.views, (size_t)(s->cat.nviews + 1) * sizeof *vs);
    if (vs)
        s->cat.views = vs;
    if (!v || !vs || !(v->name = strdup(name)) || !(v->sql = strdup(sql))) {
        if (v) {
            free(v->name);
            free(v);
        }
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    }
    s->cat.views[s->cat.nviews++] = v;
    /* A view whose tables were dropped since stays in the catalog, as in
     * SQLite; it fails when used. */
    s->internal++;
    sqlite3_exec(s->scratch, sql, NULL, NULL, NULL);
    sqlite3_exec(s->conn, sql, NULL, NULL, NULL);
    s->internal--;
    return schema_row(s, "view", name, name, sql);
}

/* A trigger: a table's is the session's to fire; a view's is SQLite's own. */
static int build_trigger(msql *s, json_t *j)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *sql = json_string_value(json_object_get(j, "sql"));
    const char *tname = json_string_value(json_object_get(j, "table"));
    if (!name || !sql || !tname)
        return sq_fail(s, MSQL_ERROR, "catalog: a malformed trigger descriptor");
    sq_table *t = sq_cat_table(s, tname);
    if (!t && !sq_cat_view(s, tname))
        return sq_fail(s, MSQL_ERROR, "catalog: trigger %s: no table or view %s", name, tname);
    sq_trigger *g = NULL;
    int rc = sq_trigger_parse(sql, t, &g);
    if (rc)
        return sq_fail(s, rc == SQLITE_NOMEM ? MSQL_NOMEM : MSQL_ERROR,
                       "catalog: trigger %s: cannot read its text", name);
    g->id = json_integer_value(json_object_get(j, "id"));
    sq_trigger **all = realloc(s->cat.triggers, (size_t)(s->cat.ntriggers + 1) * sizeof *all);
    if (!all) {
        sq_trigger_free(g);
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    }
    s->cat.triggers = all;
    s->cat.triggers[s->cat.ntriggers++] = g;
    if (t) {
        sq_trigger **tt = realloc(t->triggers, (size_t)(t->ntriggers + 1) * sizeof *tt);
        if (!tt)
            return sq_fail(s, MSQL_NOMEM, "out of memory");
        t->triggers = tt;
        t->triggers[t->ntriggers++] = g;
    } else if (sq_exec_internal(s, s->conn, sql)) {
        return SQLITE_ERROR;
    }
    return schema_row(s, "trigger", name, tname, sql);
}

int sq_cat_rebuild(msql *s)
{
    int rc = drop_session_objects(s);
    if (rc)
        return rc;
    objects_free(s);
    s->cat.gen++;
    rc = open_scratch(s);
    if (rc)
        return rc;
    /* Parse every descriptor; tables by id (a parent before its children),
     * then indexes, then views. */
    json_t **js = calloc((size_t)s->cat.ndesc + 1, sizeof *js);
    if (!js)
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    int n = 0;
    for (int i = 0; i < s->cat.ndesc; i++) {
        json_error_t e;
        json_t *j = json_loads(s->cat.desc[i].json, 0, &e);
        if (!j || !json_is_object(j)) {
            json_decref(j);
            rc = sq_fail(s, MSQL_ERROR, "catalog: descriptor %s is not a JSON object",
                         s->cat.desc[i].key);
            break;
        }
        js[n++] = j;
    }
    if (!rc)
        qsort(js, (size_t)n, sizeof *js, cmp_id);
    static const char *order[] = {"table", "index", "view", "trigger"};
    for (int pass = 0; pass < 4 && !rc; pass++)
        for (int i = 0; i < n && !rc; i++) {
            const char *type = json_string_value(json_object_get(js[i], "type"));
            if (!type || strcmp(type, order[pass]) != 0)
                continue;
            rc = pass == 0   ? build_table(s, js[i])
                 : pass == 1 ? build_index(s, js[i])
                 : pass == 2 ? build_view(s, js[i])
                             : build_trigger(s, js[i]);
        }
    for (int i = 0; i < n; i++)
        json_decref(js[i]);
    free(js);
    return rc;
}

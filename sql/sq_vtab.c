/* sql/sq_vtab.c: the `meridian` virtual table module.
 *
 * Each table of the catalog is declared to SQLite as
 *   CREATE TABLE x(<columns with their types and collations>,
 *                  meridian_key__ BLOB HIDDEN PRIMARY KEY) WITHOUT ROWID
 * (a WITHOUT ROWID virtual table with xUpdate may have only one PRIMARY KEY
 * column: the hidden one holds the row's encoded key, and DELETE/UPDATE hand
 * it back as argv[0]).
 *
 * Planning (xBestIndex): equality, IS, IS NULL and IN on a prefix of the
 * primary key or of an index, then one range (>, >=, <, <=) on the next
 * column, become key ranges; costs count round trips; ORDER BY on the key is
 * consumed; LIMIT sizes the first page. Values reach xFilter without the
 * column's affinity (sql-notes.md): they are converted here, and since the key
 * encoding orders across types as SQLite compares, a converted bound is exact.
 * Only BINARY comparisons are pushed. A plan is kept per virtual table and
 * named by idxNum; idxStr says it in words for EXPLAIN QUERY PLAN
 * ("key: a=? AND b>?", "index t_b: b IN (...)").
 *
 * Cursors merge the store's pages with the transaction's write buffer; xUpdate
 * is sq_write.c's. */
#include <stdlib.h>
#include <string.h>

#include "sql/sq_int.h"
#include "sql/sq_row.h"

enum { EQ_EQ = 0, EQ_IS = 1, EQ_ISNULL = 2, EQ_IN = 3 };
enum { OP_NONE = 0, OP_GT, OP_GE, OP_LT, OP_LE };
#define PLAN_MAXEQ  16
#define PLAN_PK     -1
#define PLAN_KEYCOL -2
#define PLAN_MAXIN  100000 /* IN values handled at once; more and the rest fall back */

typedef struct sq_plan {
    int index; /* PLAN_PK, PLAN_KEYCOL, or t->idx[index] */
    int neq;
    struct {
        int kind;
        int cond;  /* TEXT/BLOB column, right side not a constant: push only safe values */
        int argv;  /* 1-based, 0 for IS NULL */
        int inall; /* an IN list handed over whole (sqlite3_vtab_in) */
    } eq[PLAN_MAXEQ];
    int lo_op, lo_argv, hi_op, hi_argv;
    int limit_argv, offset_argv;
} sq_plan;

typedef struct sq_vt {
    sqlite3_vtab base;
    msql *s;
    sq_table *t;
    int64_t gen; /* the catalog generation this table belongs to */
    sq_plan *plans;
    int nplans;
} sq_vt;

typedef struct rng {
    uint8_t *s, *e;
    size_t sl, el;
    int has_end, point;
} rng;

typedef struct sq_cur {
    sqlite3_vtab_cursor base;
    sq_txn *x;
    rng *r;
    int nr, ri;
    int index; /* PLAN_* or an index slot */
    /* the store's current page of range ri */
    uint8_t **pk, **pv;
    size_t *pkl, *pvl;
    size_t pn, pcap, pi;
    int page_last, range_started, point_done;
    sq_buf from, pos;
    int have_pos;
    size_t batch;
    /* the current row */
    sq_buf ck, cv;
    sq_row row;
    int parsed;
    int eof;
} sq_cur;

static msql *vt_session(sqlite3_vtab *v)
{
    return ((sq_vt *)v)->s;
}

/* Moves the session's message into the vtab's (SQLite shows it). */
static int vt_err(sqlite3_vtab *v, int rc)
{
    msql *s = vt_session(v);
    sqlite3_free(v->zErrMsg);
    v->zErrMsg = sqlite3_mprintf("%s", s->msg ? s->msg : "error");
    return rc ? rc : SQLITE_ERROR;
}

static int vt_stale(sq_vt *vt)
{
    if (vt->gen == vt->s->cat.gen)
        return 0;
    sq_fail(vt->s, SQ_PEND_SCHEMA, "schema changed");
    return 1;
}

/* ---- connect ---- */

static int vt_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                      char **err)
{
    msql *s = aux;
    if (argc < 4) {
        *err = sqlite3_mprintf("meridian tables are made by CREATE TABLE");
        return SQLITE_ERROR;
    }
    sq_table *t = sq_cat_table_id(s, strtoll(argv[3], NULL, 10));
    if (!t) {
        *err = sqlite3_mprintf("no table with id %s in the catalog", argv[3]);
        return SQLITE_ERROR;
    }
    sqlite3_str *q = sqlite3_str_new(db);
    sqlite3_str_appendall(q, "CREATE TABLE x(");
    for (int i = 0; i < t->ncol; i++) {
        sq_col *c = &t->cols[i];
        char *n = sq_quote(c->name);
        /* STRICT's ANY has no affinity: declare no type. */
        int notype = t->strict && sqlite3_stricmp(c->decl, "ANY") == 0;
        sqlite3_str_appendf(q, "%s %s", n, notype ? "" : c->decl);
        sqlite3_free(n);
        if (sqlite3_stricmp(c->coll, "BINARY") != 0) {
            char *cn = sq_quote(c->coll);
            sqlite3_str_appendf(q, " COLLATE %s", cn);
            sqlite3_free(cn);
        }
        sqlite3_str_appendall(q, ", ");
    }
    sqlite3_str_appendall(q, SQ_KEYCOL " BLOB HIDDEN PRIMARY KEY) WITHOUT ROWID");
    char *sql = sqlite3_str_finish(q);
    if (!sql)
        return SQLITE_NOMEM;
    int rc = sqlite3_declare_vtab(db, sql);
    sqlite3_free(sql);
    if (rc) {
        *err = sqlite3_mprintf("table %s: %s", t->name, sqlite3_errmsg(db));
        return rc;
    }
    sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
    sq_vt *vt = sqlite3_malloc(sizeof *vt);
    if (!vt)
        return SQLITE_NOMEM;
    memset(vt, 0, sizeof *vt);
    vt->s = s;
    vt->t = t;
    vt->gen = s->cat.gen;
    *out = &vt->base;
    return SQLITE_OK;
}

static int vt_disconnect(sqlite3_vtab *v)
{
    sq_vt *vt = (sq_vt *)v;
    sqlite3_free(vt->plans);
    sqlite3_free(vt);
    return SQLITE_OK;
}

/* ---- planning ---- */

static const char *op_text(int op)
{
    switch (op) {
    case OP_GT:
        return ">";
    case OP_GE:
        return ">=";
    case OP_LT:
        return "<";
    case OP_LE:
        return "<=";
    }
    return "?";
}

static int range_op(unsigned char op)
{
    switch (op) {
    case SQLITE_INDEX_CONSTRAINT_GT:
        return OP_GT;
    case SQLITE_INDEX_CONSTRAINT_GE:
        return OP_GE;
    case SQLITE_INDEX_CONSTRAINT_LT:
        return OP_LT;
    case SQLITE_INDEX_CONSTRAINT_LE:
        return OP_LE;
    }
    return OP_NONE;
}

/* A column's affinity; the hidden key column's is BLOB. */
static char col_aff(const sq_table *t, int col)
{
    return col >= 0 && col < t->ncol ? t->cols[col].aff : 'b';
}

static int is_binary(sqlite3_index_info *info, int i)
{
    const char *c = sqlite3_vtab_collation(info, i);
    return !c || sqlite3_stricmp(c, "BINARY") == 0;
}

/* A candidate plan over key columns cols[0..n) (directions desc), with its cost. */
typedef struct cand {
    sq_plan p;
    int cons[PLAN_MAXEQ + 4]; /* constraint index per argv - 1 */
    int omit[PLAN_MAXEQ + 4];
    int inall[PLAN_MAXEQ + 4]; /* sqlite3_vtab_in(.., 1) for this argv */
    int nargv;
    double rows, cost;
    int unique, ordered, perin;
} cand;

static void plan_columns(sq_vt *vt, sqlite3_index_info *info, int index, const int *cols,
                         const int *desc, int n, int unique, cand *c)
{
    sq_table *t = vt->t;
    memset(c, 0, sizeof *c);
    c->p.index = index;
    int inall_used = 0;
    int j = 0;
    int prefix_exact = 1; /* every pushed constraint so far omitted */
    for (; j < n && j < PLAN_MAXEQ; j++) {
        int col = cols[j], best = -1, kind = 0;
        char caff = col_aff(t, col);
        for (int i = 0; i < info->nConstraint; i++) {
            const struct sqlite3_index_constraint *k = &info->aConstraint[i];
            if (!k->usable || k->iColumn != col || !is_binary(info, i))
                continue;
            if (k->op == SQLITE_INDEX_CONSTRAINT_EQ) {
                int in = sqlite3_vtab_in(info, i, -1);
                /* An IN is taken only when it can be omitted: SQLite rechecks
                 * a virtual table's IN with no affinity ('05' against 5 from
                 * an INTEGER column fails), where a real table would compare
                 * numerically. So not on TEXT/BLOB columns, nor after a
                 * constraint that is not exact. */
                if (in && (caff == 't' || caff == 'b' || !prefix_exact))
                    continue;
                if (best < 0 || (kind == EQ_IN && !in)) {
                    best = i;
                    kind = in ? EQ_IN : EQ_EQ;
                }
            } else if (k->op == SQLITE_INDEX_CONSTRAINT_IS && best < 0) {
                best = i;
                kind = EQ_IS;
            } else if (k->op == SQLITE_INDEX_CONSTRAINT_ISNULL && best < 0) {
                best = i;
                kind = EQ_ISNULL;
            }
        }
        if (best < 0)
            break;
        char aff = col_aff(t, col);
        sqlite3_value *rhs = NULL;
        int known = kind == EQ_ISNULL || sqlite3_vtab_rhs_value(info, best, &rhs) == SQLITE_OK;
        int cond = (aff == 't' || aff == 'b') && !known;
        int inall = 0;
        if (kind == EQ_IN) {
            if (!inall_used && aff != 't' && aff != 'b') {
                inall_used = inall = 1; /* the whole list at once, in key order */
            } else {
                c->perin = 1; /* SQLite feeds this IN one value per xFilter */
            }
        }
        c->p.eq[j].kind = kind;
        c->p.eq[j].cond = cond;
        c->p.eq[j].inall = inall;
        if (kind != EQ_ISNULL) {
            c->cons[c->nargv] = best;
            c->omit[c->nargv] = prefix_exact && !cond;
            c->inall[c->nargv] = inall;
            c->p.eq[j].argv = ++c->nargv;
        }
        /* IS NULL takes no argument; SQLite checks it again itself. */
        if (cond)
            prefix_exact = 0;
    }
    c->p.neq = j;
    if (j < n) {
        int col = cols[j];
        char aff = col_aff(t, col);
        for (int i = 0; i < info->nConstraint; i++) {
            const struct sqlite3_index_constraint *k = &info->aConstraint[i];
            int op = range_op(k->op);
            if (!k->usable || k->iColumn != col || !op || !is_binary(info, i))
                continue;
            sqlite3_value *rhs = NULL;
            int known = sqlite3_vtab_rhs_value(info, i, &rhs) == SQLITE_OK;
            if ((aff == 't' || aff == 'b') && !known)
                continue;
            if ((op == OP_GT || op == OP_GE) && !c->p.lo_op) {
                c->p.lo_op = op;
                c->cons[c->nargv] = i;
                c->omit[c->nargv] = prefix_exact;
                c->p.lo_argv = ++c->nargv;
            } else if ((op == OP_LT || op == OP_LE) && !c->p.hi_op) {
                c->p.hi_op = op;
                c->cons[c->nargv] = i;
                c->omit[c->nargv] = prefix_exact;
                c->p.hi_argv = ++c->nargv;
            }
        }
    }
    for (int i = 0; i < info->nConstraint; i++) {
        const struct sqlite3_index_constraint *k = &info->aConstraint[i];
        if (!k->usable)
            continue;
        if (k->op == SQLITE_INDEX_CONSTRAINT_LIMIT && !c->p.limit_argv) {
            c->cons[c->nargv] = i;
            c->p.limit_argv = ++c->nargv;
        } else if (k->op == SQLITE_INDEX_CONSTRAINT_OFFSET && !c->p.offset_argv) {
            c->cons[c->nargv] = i;
            c->p.offset_argv = ++c->nargv;
        }
    }
    /* Cost: round trips first (a scan's pages, a lookup per index entry),
     * rows second. Without statistics: a million rows, an equality on a key
     * column leaves ten (as SQLite guesses for an index), an IN list a
     * hundred, each range bound a quarter. */
    double rows = 1e6;
    int all_eq = j == n;
    for (int i = 0; i < j; i++)
        rows /= c->p.eq[i].kind == EQ_IN ? 1e4 : 1e5;
    if (c->p.lo_op)
        rows /= 4;
    if (c->p.hi_op)
        rows /= 4;
    int point = all_eq && unique;
    for (int i = 0; i < j && point; i++)
        if (c->p.eq[i].kind == EQ_ISNULL || c->p.eq[i].kind == EQ_IN)
            point = 0;
    if (point)
        rows = 1;
    if (rows < 1)
        rows = 1;
    double trips;
    if (index == PLAN_PK || index == PLAN_KEYCOL)
        trips = point ? 1 : 1 + rows / 1000.0;
    else
        trips = 1 + rows / 1000.0 + rows; /* each entry's row is one more read */
    c->rows = rows;
    c->cost = trips * 1000.0 + rows;
    c->unique = point && !c->perin;
    /* ORDER BY consumed: the terms follow the key's columns and directions
     * (columns fixed by = may appear anywhere or be skipped). */
    c->ordered = 0;
    if (info->nOrderBy > 0 && !c->perin && n > 0) {
        int pos = 0, ok = 1;
        for (int o = 0; o < info->nOrderBy && ok; o++) {
            int col = info->aOrderBy[o].iColumn, d = info->aOrderBy[o].desc;
            for (;;) {
                if (pos < n && cols[pos] == col) {
                    int fixed = pos < j && c->p.eq[pos].kind != EQ_IN;
                    if (!fixed && d != desc[pos])
                        ok = 0;
                    pos++;
                    break;
                }
                if (pos < j && c->p.eq[pos].kind != EQ_IN) {
                    pos++; /* a fixed column need not be named */
                    continue;
                }
                /* a column fixed earlier named again is fine */
                int seen = 0;
                for (int q = 0; q < pos && q < j; q++)
                    if (cols[q] == col && c->p.eq[q].kind != EQ_IN)
                        seen = 1;
                if (!seen)
                    ok = 0;
                break;
            }
        }
        c->ordered = ok;
    }
}

static int plan_add(sq_vt *vt, const sq_plan *p)
{
    for (int i = 0; i < vt->nplans; i++)
        if (memcmp(&vt->plans[i], p, sizeof *p) == 0)
            return i;
    sq_plan *np = sqlite3_realloc64(vt->plans, (sqlite3_uint64)(vt->nplans + 1) * sizeof *np);
    if (!np)
        return -1;
    vt->plans = np;
    vt->plans[vt->nplans] = *p;
    return vt->nplans++;
}

static char *plan_text(sq_vt *vt, const cand *c, const int *cols)
{
    sq_table *t = vt->t;
    sqlite3_str *q = sqlite3_str_new(NULL);
    if (c->p.index == PLAN_KEYCOL)
        sqlite3_str_appendall(q, "key: " SQ_KEYCOL "=?");
    else if (c->p.index == PLAN_PK)
        sqlite3_str_appendall(q, "key");
    else
        sqlite3_str_appendf(q, "index %s", t->idx[c->p.index]->name);
    int terms = 0;
    if (c->p.index != PLAN_KEYCOL) {
        for (int j = 0; j < c->p.neq; j++) {
            const char *name = t->cols[cols[j]].name;
            sqlite3_str_appendf(q, "%s%s", terms++ ? " AND " : ": ", name);
            switch (c->p.eq[j].kind) {
            case EQ_EQ:
                sqlite3_str_appendall(q, "=?");
                break;
            case EQ_IS:
                sqlite3_str_appendall(q, " IS ?");
                break;
            case EQ_ISNULL:
                sqlite3_str_appendall(q, " IS NULL");
                break;
            default:
                sqlite3_str_appendall(q, c->perin ? "=? (each IN value)" : " IN (...)");
            }
        }
        if (c->p.lo_op || c->p.hi_op) {
            const char *name = t->cols[cols[c->p.neq]].name;
            if (c->p.lo_op)
                sqlite3_str_appendf(q, "%s%s%s?", terms++ ? " AND " : ": ", name,
                                    op_text(c->p.lo_op));
            if (c->p.hi_op)
                sqlite3_str_appendf(q, "%s%s%s?", terms++ ? " AND " : ": ", name,
                                    op_text(c->p.hi_op));
        }
        if (!terms)
            sqlite3_str_appendall(q, t->hidden_rowid || c->p.index != PLAN_PK ? " (full scan)"
                                                                              : " (full scan)");
    }
    if (c->p.limit_argv)
        sqlite3_str_appendall(q, c->p.offset_argv ? " LIMIT ? OFFSET ?" : " LIMIT ?");
    return sqlite3_str_finish(q);
}

static int vt_best_index(sqlite3_vtab *v, sqlite3_index_info *info)
{
    sq_vt *vt = (sq_vt *)v;
    sq_table *t = vt->t;
    if (vt_stale(vt))
        return vt_err(v, SQLITE_ERROR);
    cand best, c;
    const int *best_cols = NULL;
    /* The primary key (none for a hidden row id: a full scan, or a point on
     * the hidden key column). */
    int pkcols[PLAN_MAXEQ], pkn = t->npk < PLAN_MAXEQ ? t->npk : PLAN_MAXEQ;
    for (int i = 0; i < pkn; i++)
        pkcols[i] = t->pk[i];
    plan_columns(vt, info, PLAN_PK, pkcols, t->pkdesc, t->hidden_rowid ? 0 : pkn,
                 !t->hidden_rowid && t->npk <= PLAN_MAXEQ, &best);
    best_cols = pkcols;
    int keycol[1] = {t->ncol}, zero[1] = {0};
    plan_columns(vt, info, PLAN_KEYCOL, keycol, zero, 1, 1, &c);
    if (c.p.neq == 1 && c.p.eq[0].kind == EQ_EQ && c.cost < best.cost) {
        c.p.lo_op = c.p.hi_op = 0;
        c.nargv = 1;
        c.p.limit_argv = c.p.offset_argv = 0;
        c.omit[0] = 1;
        best = c;
        best_cols = keycol;
    }
    for (int k = 0; k < t->nidx; k++) {
        sq_index *ix = t->idx[k];
        plan_columns(vt, info, k, ix->cols, ix->desc, ix->ncol, ix->unique, &c);
        if (c.p.neq == 0 && !c.p.lo_op && !c.p.hi_op)
            continue; /* an index is worth it only for its constraints */
        if (c.cost < best.cost) {
            best = c;
            best_cols = ix->cols;
        }
    }
    int id = plan_add(vt, &best.p);
    if (id < 0)
        return SQLITE_NOMEM;
    for (int a = 0; a < best.nargv; a++) {
        int i = best.cons[a];
        if (i < 0)
            continue;
        info->aConstraintUsage[i].argvIndex = a + 1;
        info->aConstraintUsage[i].omit = (unsigned char)best.omit[a];
        if (best.inall[a])
            sqlite3_vtab_in(info, i, 1);
    }
    info->idxNum = id;
    info->idxStr = plan_text(vt, &best, best_cols);
    info->needToFreeIdxStr = 1;
    info->estimatedRows = (sqlite3_int64)best.rows;
    info->estimatedCost = best.cost;
    if (best.unique)
        info->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
    info->orderByConsumed = best.ordered;
    return SQLITE_OK;
}

/* ---- cursors ---- */

static int vt_open(sqlite3_vtab *v, sqlite3_vtab_cursor **out)
{
    sq_cur *c = sqlite3_malloc(sizeof *c);
    if (!c)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    *out = &c->base;
    return SQLITE_OK;
}

static void page_clear(sq_cur *c)
{
    for (size_t i = 0; i < c->pn; i++) {
        free(c->pk[i]);
        free(c->pv[i]);
    }
    c->pn = c->pi = 0;
}

static void ranges_clear(sq_cur *c)
{
    for (int i = 0; i < c->nr; i++) {
        free(c->r[i].s);
        free(c->r[i].e);
    }
    free(c->r);
    c->r = NULL;
    c->nr = c->ri = 0;
}

static void cur_reset(sq_cur *c)
{
    page_clear(c);
    ranges_clear(c);
    if (c->parsed)
        sq_row_clear(&c->row);
    c->parsed = 0;
    c->ck.len = c->cv.len = 0;
    c->from.len = c->pos.len = 0;
    c->have_pos = c->range_started = c->point_done = c->page_last = 0;
    c->eof = 1;
    if (c->x) {
        sq_txn_unref(c->x);
        c->x = NULL;
    }
}

static int vt_close(sqlite3_vtab_cursor *cur)
{
    sq_cur *c = (sq_cur *)cur;
    cur_reset(c);
    free(c->pk);
    free(c->pv);
    free(c->pkl);
    free(c->pvl);
    sq_buf_free(&c->from);
    sq_buf_free(&c->pos);
    sq_buf_free(&c->ck);
    sq_buf_free(&c->cv);
    sqlite3_free(c);
    return SQLITE_OK;
}

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int r = n ? memcmp(a, b, n) : 0;
    return r ? r : (al < bl ? -1 : al > bl);
}

static int rng_cmp(const void *a, const void *b)
{
    const rng *x = a, *y = b;
    return key_cmp(x->s, x->sl, y->s, y->sl);
}

static uint8_t *dupbytes(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

/* Adds [s, e) (e NULL: no end) to the cursor's ranges. */
static int add_range(sq_cur *c, const uint8_t *s, size_t sl, const uint8_t *e, size_t el, int point)
{
    if (e && key_cmp(s, sl, e, el) >= 0)
        return SQLITE_OK; /* empty */
    rng *r = realloc(c->r, (size_t)(c->nr + 1) * sizeof *r);
    if (!r)
        return SQLITE_NOMEM;
    c->r = r;
    rng *x = &c->r[c->nr];
    memset(x, 0, sizeof *x);
    x->s = dupbytes(s, sl);
    x->sl = sl;
    x->has_end = e != NULL;
    x->e = e ? dupbytes(e, el) : NULL;
    x->el = el;
    x->point = point;
    if (!x->s || (e && !x->e)) {
        free(x->s);
        free(x->e);
        return SQLITE_NOMEM;
    }
    c->nr++;
    return SQLITE_OK;
}

typedef struct fctx {
    sq_vt *vt;
    sq_cur *c;
    const sq_plan *p;
    const int *cols, *desc;
    int ncols, unique;
    sqlite3_value **argv;
    sqlite3_value *vals[PLAN_MAXEQ]; /* the current tuple */
    int neq;                         /* how many eq columns are pushed (after truncation) */
    sqlite3_value *lo, *hi;
} fctx;

static int append_vals(fctx *f, sq_buf *b, int m)
{
    msql *s = f->vt->s;
    if (f->p->index == PLAN_PK)
        return sq_key_prefix(s, f->vt->t, f->vals, m, b);
    sq_index *ix = f->vt->t->idx[f->p->index];
    if (sq_buf_put(b, ix->pfx, ix->pfxlen))
        return SQLITE_NOMEM;
    for (int i = 0; i < m; i++)
        if (sq_key_append(b, f->vals[i], f->desc[i]))
            return SQLITE_NOMEM;
    return SQLITE_OK;
}

/* The ranges of one tuple of equality values (and the range bounds). */
static int tuple_ranges(fctx *f)
{
    sq_table *t = f->vt->t;
    msql *s = f->vt->s;
    sq_buf p = {0}, a = {0}, z = {0};
    int rc = append_vals(f, &p, f->neq);
    if (rc)
        goto out;
    int point = f->p->index == PLAN_PK && f->neq == t->npk && !t->hidden_rowid && !f->p->lo_op &&
                !f->p->hi_op;
    if (point && t->nullable_pk)
        for (int i = 0; i < f->neq; i++)
            if (sqlite3_value_type(f->vals[i]) == SQLITE_NULL)
                point = 0; /* NULL keys carry a row id suffix: a prefix scan */
    if (point) {
        rc = add_range(f->c, p.p, p.len, NULL, 0, 1);
        goto out;
    }
    uint8_t endb[4200];
    size_t endl = 0;
    /* start: the prefix; end: past every key with it */
    if ((rc = sq_buf_put(&a, p.p, p.len)))
        goto out;
    int has_end = sq_key_succ(p.p, p.len, endb, &endl);
    if (has_end && (rc = sq_buf_put(&z, endb, endl)))
        goto out;
    if ((f->lo || f->hi) && f->neq < f->ncols) {
        int d = f->desc[f->neq];
        /* A range never holds NULL: start past NULL (ASC) or end before it (DESC). */
        sq_buf nb = {0};
        if ((rc = sq_buf_put(&nb, p.p, p.len)) || (rc = sq_key_append(&nb, s->null_value, d))) {
            sq_buf_free(&nb);
            goto out;
        }
        if (!d) {
            size_t l;
            if (sq_key_succ(nb.p, nb.len, endb, &l)) {
                a.len = 0;
                rc = sq_buf_put(&a, endb, l);
            }
        } else {
            z.len = 0;
            has_end = 1;
            rc = sq_buf_put(&z, nb.p, nb.len);
        }
        sq_buf_free(&nb);
        if (rc)
            goto out;
        for (int side = 0; side < 2; side++) {
            sqlite3_value *v = side ? f->hi : f->lo;
            int op = side ? f->p->hi_op : f->p->lo_op;
            if (!v)
                continue;
            sq_buf kb = {0};
            if ((rc = sq_buf_put(&kb, p.p, p.len)) || (rc = sq_key_append(&kb, v, d))) {
                sq_buf_free(&kb);
                goto out;
            }
            /* Which end of the keys does this bound move? lower bounds of an
             * ASC column and upper bounds of a DESC one move the start. */
            int lower = (op == OP_GT || op == OP_GE);
            int moves_start = lower != d;
            int inclusive = (op == OP_GE || op == OP_LE);
            size_t l = kb.len;
            const uint8_t *bp = kb.p;
            /* start = k (inclusive) or succ(k); end = succ(k) (inclusive) or k */
            int use_succ = moves_start ? !inclusive : inclusive;
            if (use_succ) {
                if (!sq_key_succ(kb.p, kb.len, endb, &l)) {
                    sq_buf_free(&kb);
                    goto empty;
                }
                bp = endb;
            }
            if (moves_start) {
                if (key_cmp(bp, l, a.p, a.len) > 0) {
                    a.len = 0;
                    rc = sq_buf_put(&a, bp, l);
                }
            } else if (!has_end || key_cmp(bp, l, z.p, z.len) < 0) {
                z.len = 0;
                has_end = 1;
                rc = sq_buf_put(&z, bp, l);
            }
            sq_buf_free(&kb);
            if (rc)
                goto out;
        }
    }
    rc = add_range(f->c, a.p, a.len, has_end ? z.p : NULL, z.len, 0);
    goto out;
empty:
    rc = SQLITE_OK;
out:
    sq_buf_free(&p);
    sq_buf_free(&a);
    sq_buf_free(&z);
    return rc;
}

/* Is value v safe to push for a conditional (TEXT/BLOB, unknown right side)
 * column? A text or blob right side compares bytewise with a TEXT column
 * whatever its affinity; a number might compare after numeric conversion of
 * the column's text ('05' = 5), so it is left to SQLite. */
static int cond_ok(sqlite3_value *v, char aff)
{
    int ty = sqlite3_value_type(v);
    if (aff == 't')
        return ty == SQLITE_TEXT || ty == SQLITE_BLOB;
    return ty == SQLITE_BLOB;
}

static void fctx_free(fctx *f)
{
    for (int i = 0; i < PLAN_MAXEQ; i++)
        sqlite3_value_free(f->vals[i]);
    sqlite3_value_free(f->lo);
    sqlite3_value_free(f->hi);
}

static int fetch_page(sq_vt *vt, sq_cur *c);

static int cur_step(sq_vt *vt, sq_cur *c);

static int vt_filter(sqlite3_vtab_cursor *cur, int idxNum, const char *idxStr, int argc,
                     sqlite3_value **argv)
{
    sq_cur *c = (sq_cur *)cur;
    sq_vt *vt = (sq_vt *)cur->pVtab;
    msql *s = vt->s;
    sq_table *t = vt->t;
    cur_reset(c);
    if (vt_stale(vt))
        return vt_err(cur->pVtab, SQLITE_ERROR);
    if (idxNum < 0 || idxNum >= vt->nplans)
        return SQLITE_ERROR;
    sq_txn *x = sq_txn_get(s, 0);
    if (!x)
        return vt_err(cur->pVtab, SQLITE_ERROR);
    sq_txn_ref(x);
    c->x = x;
    const sq_plan *p = &vt->plans[idxNum];
    c->index = p->index;
    c->batch = 256;
    if (p->limit_argv && p->limit_argv <= argc) {
        sqlite3_int64 lim = sqlite3_value_int64(argv[p->limit_argv - 1]);
        if (p->offset_argv && p->offset_argv <= argc)
            lim += sqlite3_value_int64(argv[p->offset_argv - 1]);
        c->batch = lim < 16 ? 16 : lim > 4096 ? 4096 : (size_t)lim;
    }
    int rc = SQLITE_OK;
    if (p->index == PLAN_KEYCOL) {
        if (argc >= 1 && sqlite3_value_type(argv[0]) == SQLITE_BLOB && sqlite3_value_bytes(argv[0]))
            rc = add_range(c, sqlite3_value_blob(argv[0]), (size_t)sqlite3_value_bytes(argv[0]),
                           NULL, 0, 1);
        if (rc)
            return SQLITE_NOMEM;
        c->eof = 0;
        rc = cur_step(vt, c);
        return rc ? vt_err(cur->pVtab, rc) : SQLITE_OK;
    }
    fctx f = {0};
    f.vt = vt;
    f.c = c;
    f.p = p;
    if (p->index == PLAN_PK) {
        f.cols = t->pk;
        f.desc = t->pkdesc;
        f.ncols = t->hidden_rowid ? 0 : t->npk;
    } else {
        sq_index *ix = t->idx[p->index];
        f.cols = ix->cols;
        f.desc = ix->desc;
        f.ncols = ix->ncol;
    }
    f.argv = argv;
    int empty = 0, inpos = -1;
    f.neq = p->neq;
    for (int j = 0; j < p->neq; j++) {
        char aff = col_aff(t, f.cols[j]);
        int kind = p->eq[j].kind;
        if (kind == EQ_ISNULL) {
            f.vals[j] = sqlite3_value_dup(s->null_value);
            if (!f.vals[j])
                rc = SQLITE_NOMEM;
            continue;
        }
        sqlite3_value *a = argv[p->eq[j].argv - 1];
        if (kind == EQ_IN && p->eq[j].inall) {
            inpos = j; /* the whole list: expanded below */
            continue;
        }
        if (p->eq[j].cond && !cond_ok(a, aff)) {
            f.neq = j; /* SQLite checks this and the rest itself (not omitted) */
            break;
        }
        f.vals[j] = sq_affinity(s, a, aff);
        if (!f.vals[j]) {
            rc = SQLITE_NOMEM;
            break;
        }
        if (kind == EQ_EQ && sqlite3_value_type(f.vals[j]) == SQLITE_NULL)
            empty = 1; /* = NULL is never true */
    }
    if (!rc && !empty && f.neq == p->neq && f.neq < f.ncols) {
        char aff = col_aff(t, f.cols[f.neq]);
        if (p->lo_op) {
            f.lo = sq_affinity(s, argv[p->lo_argv - 1], aff);
            if (!f.lo)
                rc = SQLITE_NOMEM;
            else if (sqlite3_value_type(f.lo) == SQLITE_NULL)
                empty = 1;
        }
        if (!rc && p->hi_op) {
            f.hi = sq_affinity(s, argv[p->hi_argv - 1], aff);
            if (!f.hi)
                rc = SQLITE_NOMEM;
            else if (sqlite3_value_type(f.hi) == SQLITE_NULL)
                empty = 1;
        }
    }
    if (!rc && !empty) {
        if (inpos >= 0 && inpos < f.neq) {
            char aff = col_aff(t, f.cols[inpos]);
            sqlite3_value *a = argv[p->eq[inpos].argv - 1], *v = NULL;
            int n = 0;
            for (int r = sqlite3_vtab_in_first(a, &v); r == SQLITE_OK && !rc;
                 r = sqlite3_vtab_in_next(a, &v)) {
                if (!v || sqlite3_value_type(v) == SQLITE_NULL)
                    continue;
                sqlite3_value_free(f.vals[inpos]);
                f.vals[inpos] = sq_affinity(s, v, aff);
                if (!f.vals[inpos]) {
                    rc = SQLITE_NOMEM;
                    break;
                }
                rc = tuple_ranges(&f);
                n++;
            }
        } else {
            rc = tuple_ranges(&f);
        }
    }
    fctx_free(&f);
    if (rc)
        return rc == SQLITE_NOMEM ? SQLITE_NOMEM : vt_err(cur->pVtab, rc);
    /* Key order, duplicates (IN (1, 1)) once. */
    if (c->nr > 1) {
        qsort(c->r, (size_t)c->nr, sizeof *c->r, rng_cmp);
        int w = 0;
        for (int i = 0; i < c->nr; i++) {
            if (w > 0 && key_cmp(c->r[w - 1].s, c->r[w - 1].sl, c->r[i].s, c->r[i].sl) == 0) {
                free(c->r[i].s);
                free(c->r[i].e);
                continue;
            }
            c->r[w++] = c->r[i];
        }
        c->nr = w;
    }
    c->eof = 0;
    rc = cur_step(vt, c);
    return rc ? vt_err(cur->pVtab, rc) : SQLITE_OK;
}

static int page_add(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    sq_cur *c = arg;
    if (c->pn == c->pcap) {
        size_t cap = c->pcap ? c->pcap * 2 : 64;
        uint8_t **a = realloc(c->pk, cap * sizeof *a);
        if (a)
            c->pk = a;
        uint8_t **b = realloc(c->pv, cap * sizeof *b);
        if (b)
            c->pv = b;
        size_t *d = realloc(c->pkl, cap * sizeof *d);
        if (d)
            c->pkl = d;
        size_t *e = realloc(c->pvl, cap * sizeof *e);
        if (e)
            c->pvl = e;
        if (!a || !b || !d || !e)
            return 1;
        c->pcap = cap;
    }
    uint8_t *ck = dupbytes(k, kl), *cv = dupbytes(v, vl);
    if (!ck || !cv) {
        free(ck);
        free(cv);
        return 1;
    }
    c->pk[c->pn] = ck;
    c->pv[c->pn] = cv;
    c->pkl[c->pn] = kl;
    c->pvl[c->pn] = vl;
    c->pn++;
    return 0;
}

static int fetch_page(sq_vt *vt, sq_cur *c)
{
    rng *r = &c->r[c->ri];
    page_clear(c);
    size_t want = c->batch;
    int rc = sq_scan_store(vt->s, c->x, c->from.p, c->from.len, r->has_end ? r->e : NULL, r->el,
                           want, page_add, c);
    if (rc)
        return rc;
    if (c->pn < want && c->pcap < want && c->pn != want) {
        /* fewer rows than asked: the range is done (or memory ran out) */
    }
    c->page_last = c->pn < want;
    if (c->batch < 4096)
        c->batch *= 4;
    if (c->pn > 0) {
        c->from.len = 0;
        uint8_t z = 0;
        if (sq_buf_put(&c->from, c->pk[c->pn - 1], c->pkl[c->pn - 1]) ||
            sq_buf_put(&c->from, &z, 1))
            return sq_fail(vt->s, MSQL_NOMEM, "out of memory");
    }
    return SQLITE_OK;
}

static void next_range(sq_cur *c)
{
    page_clear(c);
    c->ri++;
    c->range_started = 0;
    c->point_done = 0;
    c->page_last = 0;
    c->have_pos = 0;
}

/* Makes (k, v) the current row if it is one of t's rows (for an index scan:
 * v is the row's key, read now). 1 if it is, 0 to skip, or -error. */
static int take_row(sq_vt *vt, sq_cur *c, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    msql *s = vt->s;
    uint8_t *rv = NULL;
    size_t rvl = 0;
    if (c->index >= 0) {
        int rc = sq_read(s, c->x, v, vl, &rv, &rvl);
        if (rc == SQLITE_NOTFOUND)
            return 0;
        if (rc)
            return -rc;
        k = v, kl = vl;
        v = rv, vl = rvl;
    }
    int64_t tid;
    int belongs = sq_row_table_id(v, vl, &tid) == SQLITE_OK && tid == vt->t->id;
    int rc = 0;
    if (belongs) {
        if (c->parsed)
            sq_row_clear(&c->row);
        c->parsed = 0;
        c->ck.len = c->cv.len = 0;
        if (sq_buf_put(&c->ck, k, kl) || sq_buf_put(&c->cv, v, vl))
            rc = -sq_fail(s, MSQL_NOMEM, "out of memory");
        else
            rc = 1;
    }
    free(rv);
    return rc;
}

static int cur_step(sq_vt *vt, sq_cur *c)
{
    msql *s = vt->s;
    for (;;) {
        if (c->ri >= c->nr) {
            c->eof = 1;
            return SQLITE_OK;
        }
        rng *r = &c->r[c->ri];
        if (r->point) {
            if (c->point_done) {
                next_range(c);
                continue;
            }
            c->point_done = 1;
            uint8_t *val = NULL;
            size_t vlen = 0;
            int rc = sq_read(s, c->x, r->s, r->sl, &val, &vlen);
            if (rc == SQLITE_NOTFOUND)
                continue;
            if (rc)
                return rc;
            int took = take_row(vt, c, r->s, r->sl, val, vlen);
            free(val);
            if (took < 0)
                return -took;
            if (took)
                return SQLITE_OK;
            continue;
        }
        if (!c->range_started) {
            c->from.len = 0;
            if (sq_buf_put(&c->from, r->s, r->sl))
                return sq_fail(s, MSQL_NOMEM, "out of memory");
            c->have_pos = 0;
            c->page_last = 0;
            page_clear(c);
            c->range_started = 1;
        }
        if (c->pi >= c->pn && !c->page_last) {
            int rc = fetch_page(vt, c);
            if (rc)
                return rc;
        }
        sq_went e;
        int hb = 0;
        if (c->x->rw) {
            hb = c->have_pos ? sq_wbuf_seek(s->wb, c->pos.p, c->pos.len, 1, &e)
                             : sq_wbuf_seek(s->wb, r->s, r->sl, 0, &e);
            if (hb && r->has_end && key_cmp(e.key, e.klen, r->e, r->el) >= 0)
                hb = 0;
            if (hb && !c->page_last && c->pn > 0 &&
                key_cmp(e.key, e.klen, c->pk[c->pn - 1], c->pkl[c->pn - 1]) > 0)
                hb = 0; /* past this page: the next page may hold smaller keys */
        }
        int hs = c->pi < c->pn;
        if (!hb && !hs) {
            if (c->page_last) {
                next_range(c);
                continue;
            }
            int rc = fetch_page(vt, c); /* cannot happen: a full page has rows */
            if (rc)
                return rc;
            continue;
        }
        const uint8_t *k, *v;
        size_t kl, vl;
        int live = 1;
        if (hb && (!hs || key_cmp(e.key, e.klen, c->pk[c->pi], c->pkl[c->pi]) <= 0)) {
            if (hs && key_cmp(e.key, e.klen, c->pk[c->pi], c->pkl[c->pi]) == 0)
                c->pi++;
            k = e.key, kl = e.klen, v = e.val, vl = e.vlen, live = !e.del;
        } else {
            k = c->pk[c->pi], kl = c->pkl[c->pi], v = c->pv[c->pi], vl = c->pvl[c->pi];
            c->pi++;
        }
        c->pos.len = 0;
        if (sq_buf_put(&c->pos, k, kl))
            return sq_fail(s, MSQL_NOMEM, "out of memory");
        c->have_pos = 1;
        if (!live)
            continue;
        /* k and v may point into the buffer: take_row copies them first. */
        int took = take_row(vt, c, k, kl, v, vl);
        if (took < 0)
            return -took;
        if (took)
            return SQLITE_OK;
    }
}

static int vt_next(sqlite3_vtab_cursor *cur)
{
    sq_cur *c = (sq_cur *)cur;
    int rc = cur_step((sq_vt *)cur->pVtab, c);
    return rc ? vt_err(cur->pVtab, rc) : SQLITE_OK;
}

static int vt_eof(sqlite3_vtab_cursor *cur)
{
    return ((sq_cur *)cur)->eof;
}

static int vt_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i)
{
    sq_cur *c = (sq_cur *)cur;
    sq_vt *vt = (sq_vt *)cur->pVtab;
    if (i == vt->t->ncol) {
        sqlite3_result_blob64(ctx, c->ck.p, c->ck.len, SQLITE_TRANSIENT);
        return SQLITE_OK;
    }
    if (!c->parsed) {
        const char *why = NULL;
        int rc = sq_row_parse(c->cv.p, c->cv.len, &c->row, &why);
        if (rc == SQLITE_NOMEM)
            return SQLITE_NOMEM;
        if (rc) {
            sq_fail(vt->s, MSQL_ERROR, "table %s: %s", vt->t->name, why);
            return vt_err(cur->pVtab, SQLITE_CORRUPT);
        }
        c->parsed = 1;
    }
    if (i >= c->row.ncol && vt->t->cols[i].dflt) { /* added after the row was written */
        sqlite3_result_value(ctx, vt->t->cols[i].dflt);
        return SQLITE_OK;
    }
    return sq_row_result(&c->row, i, ctx);
}

static int vt_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    (void)cur;
    *rowid = 0; /* WITHOUT ROWID: SQLite does not ask */
    return SQLITE_OK;
}

/* ---- writes: sq_write.c ---- */

static int vt_update(sqlite3_vtab *v, int argc, sqlite3_value **argv, sqlite3_int64 *rowid)
{
    sq_vt *vt = (sq_vt *)v;
    msql *s = vt->s;
    (void)rowid;
    if (vt_stale(vt))
        return vt_err(v, SQLITE_ERROR);
    sq_txn *x = sq_txn_get(s, 1);
    if (!x)
        return vt_err(v, SQLITE_ERROR);
    int rc = sq_update(s, vt->t, x, argc, argv);
    if (rc == SQLITE_NOMEM)
        return SQLITE_NOMEM;
    return rc ? vt_err(v, rc) : SQLITE_OK;
}

/* ---- SQLite's transaction hooks ----
 * The session never lets SQLite see BEGIN/COMMIT (sq_session.c): every
 * statement is an autocommit statement to SQLite. So xBegin..xCommit bracket
 * one statement: xRollback undoes that statement's writes in the buffer (a
 * failed statement), xCommit keeps them (OR FAIL keeps the rows before the
 * failure); the transaction's commit is the session's. */

static int vt_begin(sqlite3_vtab *v)
{
    sq_vt *vt = (sq_vt *)v;
    if (vt_stale(vt))
        return vt_err(v, SQLITE_ERROR);
    if (!sq_txn_get(vt->s, 1))
        return vt_err(v, SQLITE_ERROR);
    return SQLITE_OK;
}

static int vt_sync(sqlite3_vtab *v)
{
    (void)v;
    return SQLITE_OK;
}

static int vt_commit(sqlite3_vtab *v)
{
    vt_session(v)->stmt_kept = 1;
    return SQLITE_OK;
}

static int vt_rollback(sqlite3_vtab *v)
{
    msql *s = vt_session(v);
    if (((sq_vt *)v)->gen == s->cat.gen)
        ((sq_vt *)v)->t->alias_serial = 0; /* max + 1 again from what is left */
    if (s->tx && s->tx->rw)
        sq_wbuf_rollback(s->wb, s->stmt_mark);
    return SQLITE_OK;
}

/* Statements run inside another one (trigger bodies, UPSERT) get SQLite's
 * statement savepoints: xSavepoint(n) before a multi-row one, xRollbackTo(n)
 * and xRelease(n) when it fails. Every table gets each call: they are
 * idempotent. */
static int vt_savepoint(sqlite3_vtab *v, int n)
{
    msql *s = vt_session(v);
    if (n >= 0 && n < SQ_MAX_SQLITE_SP && s->tx && s->tx->rw)
        s->sqlite_sp[n] = sq_wbuf_mark(s->wb);
    return SQLITE_OK;
}

static int vt_rollback_to(sqlite3_vtab *v, int n)
{
    msql *s = vt_session(v);
    if (n >= 0 && n < SQ_MAX_SQLITE_SP && s->tx && s->tx->rw &&
        s->sqlite_sp[n] <= sq_wbuf_mark(s->wb))
        sq_wbuf_rollback(s->wb, s->sqlite_sp[n]);
    return SQLITE_OK;
}

static int vt_release(sqlite3_vtab *v, int n)
{
    (void)v;
    (void)n;
    return SQLITE_OK;
}

static int vt_rename(sqlite3_vtab *v, const char *name)
{
    (void)name;
    sqlite3_free(v->zErrMsg);
    v->zErrMsg = sqlite3_mprintf("ALTER TABLE ... RENAME is not supported");
    return SQLITE_ERROR;
}

static sqlite3_module meridian_module = {
    .iVersion = 3,
    .xCreate = vt_connect,
    .xConnect = vt_connect,
    .xBestIndex = vt_best_index,
    .xDisconnect = vt_disconnect,
    .xDestroy = vt_disconnect, /* dropping a session's table drops no data: DDL does */
    .xOpen = vt_open,
    .xClose = vt_close,
    .xFilter = vt_filter,
    .xNext = vt_next,
    .xEof = vt_eof,
    .xColumn = vt_column,
    .xRowid = vt_rowid,
    .xUpdate = vt_update,
    .xBegin = vt_begin,
    .xSync = vt_sync,
    .xCommit = vt_commit,
    .xRollback = vt_rollback,
    .xRename = vt_rename,
    .xSavepoint = vt_savepoint,
    .xRelease = vt_release,
    .xRollbackTo = vt_rollback_to,
};

int sq_vtab_register(msql *s)
{
    return sqlite3_create_module(s->conn, "meridian", &meridian_module, s);
}

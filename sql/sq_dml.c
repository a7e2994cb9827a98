/* sql/sq_dml.c: what the session reads in INSERT, UPDATE and DELETE.
 *
 * SQLite hands a virtual table's xUpdate the values of every column, with no
 * way to tell a column the INSERT left out (which should get its DEFAULT) from
 * an explicit NULL, so the session reads the INSERT's column list itself.
 * SQLite also refuses UPSERT and RETURNING (on UPDATE and DELETE; on INSERT it
 * would return the values before Meridian applied defaults, affinity and row
 * ids) on virtual tables: the session takes those clauses out of the text it
 * gives SQLite and carries them out in xUpdate (sq_vtab.c) with statements of
 * its own over the same table:
 *   ON CONFLICT [(cols)] DO UPDATE SET c = e, ... [WHERE w]  becomes
 *     SELECT <each column: its new value or itself>, <w or 1> FROM t
 *     WHERE meridian_key__ = ?1        (excluded.c_i read as ?(i + 2)),
 *   run on the conflicting row;
 *   RETURNING list  becomes  SELECT list FROM t WHERE meridian_key__ = ?1,
 *   run on each row written (after the write) or deleted (before it). */
#include <stdlib.h>
#include <string.h>

#include "sql/sq_int.h"
#include "sql/sq_lex.h"

void sq_dml_free(sq_dml *d)
{
    free(d->table);
    free(d->alias);
    for (int i = 0; i < d->ncols; i++)
        free(d->cols[i]);
    free(d->cols);
    for (int i = 0; i < d->ntarget; i++)
        free(d->target[i]);
    free(d->target);
    free(d->set_text);
    free(d->upd_where);
    free(d->ret_text);
    sqlite3_finalize(d->ups);
    sqlite3_finalize(d->ret);
    memset(d, 0, sizeof *d);
}

static char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static int push_name(char ***list, int *n, char *name)
{
    if (!name)
        return -1;
    char **l = realloc(*list, (size_t)(*n + 1) * sizeof *l);
    if (!l) {
        free(name);
        return -1;
    }
    *list = l;
    l[(*n)++] = name;
    return 0;
}

static int err_at(msql *s, const char *sql, const sq_tok *t, const char *msg)
{
    free(s->errmsg);
    char *m = t->type == SQ_TK_EOF ? NULL : sqlite3_mprintf("%s near \"%.*s\"", msg, t->n, t->p);
    s->errmsg = strdup(m ? m : msg);
    sqlite3_free(m);
    s->erroff = t->type == SQ_TK_EOF ? -1 : (int)(t->p - sql);
    return MSQL_ERROR;
}

/* [schema.]name [AS alias] at p: fills d->table and d->alias; returns the
 * position after them, or NULL. */
static const char *target(const char *p, const char *end, sq_dml *d)
{
    sq_tok t, n;
    p = sq_lex(p, end, &t);
    char *name = sq_tok_name(&t);
    if (!name)
        return NULL;
    const char *q = sq_lex(p, end, &n);
    if (sq_tok_punct(&n, '.')) {
        free(name);
        p = sq_lex(q, end, &t);
        name = sq_tok_name(&t);
        if (!name)
            return NULL;
        q = sq_lex(p, end, &n);
    }
    d->table = name;
    if (sq_tok_is(&n, "AS")) {
        q = sq_lex(q, end, &t);
        d->alias = sq_tok_name(&t);
        return q;
    }
    return p;
}

/* The INSERT's column list after the target, if any. */
static void insert_columns(const char *p, const char *end, sq_dml *d)
{
    sq_tok t;
    p = sq_lex(p, end, &t);
    if (sq_tok_is(&t, "DEFAULT")) {
        d->default_values = 1;
        return;
    }
    if (!sq_tok_punct(&t, '('))
        return;
    for (;;) {
        p = sq_lex(p, end, &t);
        if (t.type != SQ_TK_WORD && t.type != SQ_TK_QNAME)
            break;
        if (push_name(&d->cols, &d->ncols, sq_tok_name(&t)))
            break;
        p = sq_lex(p, end, &t);
        if (!sq_tok_punct(&t, ','))
            break;
    }
    if (!sq_tok_punct(&t, ')') || d->ncols == 0) {
        /* a parenthesized SELECT, or something SQLite will refuse: every column given */
        for (int i = 0; i < d->ncols; i++)
            free(d->cols[i]);
        free(d->cols);
        d->cols = NULL;
        d->ncols = 0;
    }
}

/* UPDATE's SET columns (for triggers' UPDATE OF): names before '=' at depth 0,
 * and the names of a (a, b) = (...) row value. */
static void set_columns(const char *p, const char *end, sq_dml *d)
{
    sq_tok t;
    do
        p = sq_lex(p, end, &t);
    while (t.type != SQ_TK_EOF && !sq_tok_is(&t, "SET"));
    for (;;) {
        p = sq_lex(p, end, &t);
        if (sq_tok_punct(&t, '(')) {
            for (;;) {
                p = sq_lex(p, end, &t);
                if (t.type != SQ_TK_WORD && t.type != SQ_TK_QNAME)
                    break;
                push_name(&d->cols, &d->ncols, sq_tok_name(&t));
                p = sq_lex(p, end, &t);
                if (!sq_tok_punct(&t, ','))
                    break;
            }
        } else if (t.type == SQ_TK_WORD || t.type == SQ_TK_QNAME) {
            push_name(&d->cols, &d->ncols, sq_tok_name(&t));
        } else {
            return;
        }
        /* past '=' and the expression, to a comma at depth 0 */
        int depth = 0;
        for (;;) {
            p = sq_lex(p, end, &t);
            if (t.type == SQ_TK_EOF || t.type == SQ_TK_BAD || sq_tok_punct(&t, ';'))
                return;
            if (sq_tok_punct(&t, '('))
                depth++;
            else if (sq_tok_punct(&t, ')'))
                depth--;
            else if (depth == 0 && sq_tok_punct(&t, ','))
                break;
            else if (depth == 0 && (sq_tok_is(&t, "FROM") || sq_tok_is(&t, "WHERE") ||
                                    sq_tok_is(&t, "RETURNING") || sq_tok_is(&t, "ORDER") ||
                                    sq_tok_is(&t, "LIMIT")))
                return;
        }
    }
}

/* ON CONFLICT [(cols) [WHERE e]] DO NOTHING | DO UPDATE SET ... [WHERE ...],
 * [start, end) without the leading ON. */
static int parse_upsert(msql *s, const char *sql, const char *p, const char *end, sq_dml *d)
{
    sq_tok t;
    if (d->upsert)
        return err_at(s, sql, &(sq_tok){SQ_TK_WORD, p, 2},
                      "more than one ON CONFLICT clause is not supported");
    p = sq_lex(p, end, &t); /* CONFLICT */
    p = sq_lex(p, end, &t);
    if (sq_tok_punct(&t, '(')) {
        for (;;) {
            p = sq_lex(p, end, &t);
            if (t.type != SQ_TK_WORD && t.type != SQ_TK_QNAME)
                return err_at(s, sql, &t, "ON CONFLICT takes a list of column names");
            if (push_name(&d->target, &d->ntarget, sq_tok_name(&t)))
                return MSQL_NOMEM;
            p = sq_lex(p, end, &t);
            if (sq_tok_is(&t, "COLLATE") || sq_tok_is(&t, "ASC") || sq_tok_is(&t, "DESC"))
                return err_at(s, sql, &t, "ON CONFLICT takes a list of column names");
            if (sq_tok_punct(&t, ')'))
                break;
            if (!sq_tok_punct(&t, ','))
                return err_at(s, sql, &t, "syntax error");
        }
        p = sq_lex(p, end, &t);
        if (sq_tok_is(&t, "WHERE"))
            return err_at(s, sql, &t, "ON CONFLICT targets on partial indexes are not supported");
    }
    if (!sq_tok_is(&t, "DO"))
        return err_at(s, sql, &t, "syntax error");
    p = sq_lex(p, end, &t);
    if (sq_tok_is(&t, "NOTHING")) {
        d->upsert = SQ_UPSERT_NOTHING;
        p = sq_lex(p, end, &t);
        if (t.type != SQ_TK_EOF)
            return err_at(s, sql, &t, "syntax error");
        return MSQL_OK;
    }
    if (!sq_tok_is(&t, "UPDATE"))
        return err_at(s, sql, &t, "syntax error");
    p = sq_lex(p, end, &t);
    if (!sq_tok_is(&t, "SET"))
        return err_at(s, sql, &t, "syntax error");
    d->upsert = SQ_UPSERT_UPDATE;
    /* the assignments run to a WHERE at depth 0 */
    const char *a = p, *w = NULL;
    int depth = 0;
    for (;;) {
        const char *before = p;
        p = sq_lex(p, end, &t);
        if (t.type == SQ_TK_EOF)
            break;
        if (t.type == SQ_TK_BAD)
            return err_at(s, sql, &t, "unrecognized token");
        if (sq_tok_punct(&t, '('))
            depth++;
        else if (sq_tok_punct(&t, ')'))
            depth--;
        else if (depth == 0 && sq_tok_is(&t, "WHERE")) {
            w = before;
            break;
        }
    }
    d->set_text = dupn(a, (size_t)((w ? w : end) - a));
    if (w) {
        sq_lex(w, end, &t); /* WHERE */
        d->upd_where = dupn(t.p + t.n, (size_t)(end - (t.p + t.n)));
    }
    return d->set_text && (!w || d->upd_where) ? MSQL_OK : MSQL_NOMEM;
}

int sq_dml_parse(msql *s, const char *sql, const char *start, const char *end, sq_dml *d,
                 char **rewritten, const char **tail)
{
    *rewritten = NULL;
    sq_tok t;
    const char *p = start;
    int depth = 0;
    /* past a WITH clause, to the verb */
    for (;;) {
        p = sq_lex(p, end, &t);
        if (t.type == SQ_TK_EOF || t.type == SQ_TK_BAD || sq_tok_punct(&t, ';'))
            return MSQL_OK;
        if (sq_tok_punct(&t, '('))
            depth++;
        else if (sq_tok_punct(&t, ')'))
            depth--;
        else if (depth == 0 && (sq_tok_is(&t, "INSERT") || sq_tok_is(&t, "REPLACE"))) {
            d->kind = 'I';
            break;
        } else if (depth == 0 && sq_tok_is(&t, "UPDATE")) {
            d->kind = 'U';
            break;
        } else if (depth == 0 && sq_tok_is(&t, "DELETE")) {
            d->kind = 'D';
            break;
        } else if (depth == 0 && (sq_tok_is(&t, "SELECT") || sq_tok_is(&t, "VALUES")))
            return MSQL_OK;
    }
    if (d->kind == 'I') {
        p = sq_lex(p, end, &t);
        if (sq_tok_is(&t, "OR"))
            p = sq_lex(sq_lex(p, end, &t), end, &t);
        if (!sq_tok_is(&t, "INTO"))
            return MSQL_OK; /* SQLite will say */
        p = target(p, end, d);
        if (!p)
            return MSQL_OK;
        insert_columns(p, end, d);
    } else if (d->kind == 'U') {
        const char *q = sq_lex(p, end, &t);
        if (sq_tok_is(&t, "OR"))
            p = sq_lex(q, end, &t); /* the conflict mode */
        p = target(p, end, d);
        if (p)
            set_columns(p, end, d);
    } else {
        p = sq_lex(p, end, &t);
        if (!sq_tok_is(&t, "FROM"))
            return MSQL_OK;
        p = target(p, end, d);
    }
    if (!p)
        return MSQL_OK;
    /* the clauses to take out: ON CONFLICT ... and RETURNING ..., at depth 0 */
    const char *on = NULL, *ret = NULL, *stmt_end = end;
    depth = 0;
    for (;;) {
        const char *before = p;
        p = sq_lex(p, end, &t);
        if (t.type == SQ_TK_EOF || sq_tok_punct(&t, ';')) {
            stmt_end = t.type == SQ_TK_EOF ? end : before;
            *tail = p;
            break;
        }
        if (sq_tok_punct(&t, '('))
            depth++;
        else if (sq_tok_punct(&t, ')'))
            depth--;
        else if (depth == 0 && d->kind == 'I' && !on && !ret && sq_tok_is(&t, "ON")) {
            sq_tok n;
            sq_lex(p, end, &n);
            if (sq_tok_is(&n, "CONFLICT"))
                on = t.p;
        } else if (depth == 0 && !ret && sq_tok_is(&t, "RETURNING")) {
            ret = t.p;
        }
    }
    if (!on && !ret)
        return MSQL_OK;
    int rc = MSQL_OK;
    if (on) {
        const char *on_end = ret ? ret : stmt_end;
        /* Several ON CONFLICT clauses follow one another: the first is ours,
         * a second is refused by parse_upsert's single-clause rule. */
        const char *q = on + 2, *next = NULL;
        int dd = 0;
        for (;;) {
            q = sq_lex(q, on_end, &t);
            if (t.type == SQ_TK_EOF)
                break;
            if (sq_tok_punct(&t, '('))
                dd++;
            else if (sq_tok_punct(&t, ')'))
                dd--;
            else if (dd == 0 && sq_tok_is(&t, "ON")) {
                sq_tok n;
                sq_lex(q, on_end, &n);
                if (sq_tok_is(&n, "CONFLICT")) {
                    next = t.p;
                    break;
                }
            }
        }
        rc = parse_upsert(s, sql, on + 2, next ? next : on_end, d);
        if (rc == MSQL_OK && next)
            rc = parse_upsert(s, sql, next + 2, on_end, d);
        if (rc != MSQL_OK)
            return rc;
    }
    if (ret) {
        sq_lex(ret, stmt_end, &t);
        d->ret_text = dupn(t.p + t.n, (size_t)(stmt_end - (t.p + t.n)));
        if (!d->ret_text)
            return MSQL_NOMEM;
    }
    const char *cut = on ? on : ret;
    *rewritten = dupn(start, (size_t)(cut - start));
    return *rewritten ? MSQL_OK : MSQL_NOMEM;
}

/* Copies expr, reading excluded.<column i> as ?(i + 2). */
static void put_expr(sqlite3_str *q, const char *e, const sq_table *t)
{
    const char *end = e + strlen(e), *p = e, *copied = e;
    sq_tok a;
    for (;;) {
        p = sq_lex(p, end, &a);
        if (a.type == SQ_TK_EOF)
            break;
        if (!sq_tok_is(&a, "excluded"))
            continue;
        sq_tok dot, name;
        const char *p2 = sq_lex(p, end, &dot);
        if (!sq_tok_punct(&dot, '.'))
            continue;
        const char *p3 = sq_lex(p2, end, &name);
        char *n = sq_tok_name(&name);
        int col = -1;
        for (int i = 0; n && i < t->ncol; i++)
            if (sqlite3_stricmp(t->cols[i].name, n) == 0)
                col = i;
        free(n);
        if (col < 0)
            continue; /* SQLite will name the unknown column */
        sqlite3_str_append(q, copied, (int)(a.p - copied));
        sqlite3_str_appendf(q, "?%d", col + 2);
        copied = p = p3;
    }
    sqlite3_str_appendall(q, copied);
}

static int prepare_internal(msql *s, char *sql, sqlite3_stmt **out)
{
    if (!sql)
        return MSQL_NOMEM;
    s->internal++;
    int rc = sqlite3_prepare_v3(s->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    s->internal--;
    sqlite3_free(sql);
    if (rc) {
        free(s->errmsg);
        s->errmsg = strdup(sqlite3_errmsg(s->conn));
        s->erroff = -1;
        return rc == SQLITE_NOMEM ? MSQL_NOMEM : MSQL_ERROR;
    }
    return MSQL_OK;
}

int sq_dml_prepare(msql *s, sq_dml *d)
{
    if (!d->upsert && !d->ret_text)
        return MSQL_OK;
    sq_table *t = d->table ? sq_cat_table(s, d->table) : NULL;
    if (!t) {
        free(s->errmsg);
        s->errmsg = strdup(d->table ? "UPSERT and RETURNING need one of Meridian's tables"
                                    : "no target table");
        s->erroff = -1;
        return MSQL_ERROR;
    }
    char *qt = sq_quote(t->name);
    char *qa = d->alias ? sq_quote(d->alias) : NULL;
    char *from = sqlite3_mprintf("FROM main.%s%s%s WHERE " SQ_KEYCOL " = ?1", qt, qa ? " AS " : "",
                                 qa ? qa : "");
    sqlite3_free(qt);
    sqlite3_free(qa);
    if (!from)
        return MSQL_NOMEM;
    int rc = MSQL_OK;
    if (d->upsert == SQ_UPSERT_UPDATE) {
        /* SET c = e, ...: each assignment at depth-0 commas */
        char **exprs = calloc((size_t)t->ncol, sizeof *exprs);
        const char *p = d->set_text, *end = p + strlen(p);
        sq_tok tk;
        while (!rc && exprs) {
            p = sq_lex(p, end, &tk);
            if (tk.type == SQ_TK_EOF)
                break;
            char *name = sq_tok_name(&tk);
            int col = -1;
            for (int i = 0; name && i < t->ncol; i++)
                if (sqlite3_stricmp(t->cols[i].name, name) == 0)
                    col = i;
            if (!name || col < 0) {
                rc = err_at(s, d->set_text, &tk,
                            sq_tok_punct(&tk, '(') ? "row values in DO UPDATE SET are not supported"
                                                   : "no such column");
                free(name);
                break;
            }
            free(name);
            p = sq_lex(p, end, &tk);
            if (!sq_tok_punct(&tk, '=')) {
                rc = err_at(s, d->set_text, &tk, "syntax error");
                break;
            }
            const char *e = p;
            int depth = 0;
            const char *stop = end;
            for (;;) {
                const char *before = p;
                p = sq_lex(p, end, &tk);
                if (tk.type == SQ_TK_EOF)
                    break;
                if (sq_tok_punct(&tk, '('))
                    depth++;
                else if (sq_tok_punct(&tk, ')'))
                    depth--;
                else if (depth == 0 && sq_tok_punct(&tk, ',')) {
                    stop = before;
                    break;
                }
            }
            free(exprs[col]);
            exprs[col] = dupn(e, (size_t)(stop - e));
        }
        if (!exprs)
            rc = MSQL_NOMEM;
        if (!rc) {
            sqlite3_str *q = sqlite3_str_new(s->conn);
            sqlite3_str_appendall(q, "SELECT ");
            for (int i = 0; i < t->ncol; i++) {
                if (i)
                    sqlite3_str_appendall(q, ", ");
                if (exprs[i]) {
                    sqlite3_str_appendall(q, "(");
                    put_expr(q, exprs[i], t);
                    sqlite3_str_appendall(q, ")");
                } else {
                    char *c = sq_quote(t->cols[i].name);
                    sqlite3_str_appendall(q, c);
                    sqlite3_free(c);
                }
            }
            sqlite3_str_appendall(q, ", ");
            if (d->upd_where) {
                sqlite3_str_appendall(q, "(");
                put_expr(q, d->upd_where, t);
                sqlite3_str_appendall(q, ")");
            } else {
                sqlite3_str_appendall(q, "1");
            }
            sqlite3_str_appendf(q, " %s", from);
            rc = prepare_internal(s, sqlite3_str_finish(q), &d->ups);
        }
        for (int i = 0; exprs && i < t->ncol; i++)
            free(exprs[i]);
        free(exprs);
    }
    if (!rc && d->ret_text)
        rc = prepare_internal(s, sqlite3_mprintf("SELECT %s %s", d->ret_text, from), &d->ret);
    sqlite3_free(from);
    return rc;
}

int sq_dml_return(msql *s, const sq_dml *d, const uint8_t *key, size_t klen)
{
    if (!d->ret || !d->emit)
        return SQLITE_OK;
    sqlite3_bind_blob64(d->ret, 1, key, klen, SQLITE_STATIC);
    int rc = sqlite3_step(d->ret);
    int out = SQLITE_OK;
    if (rc == SQLITE_ROW)
        out = d->emit(d->emit_arg, d->ret);
    else if (rc != SQLITE_DONE)
        out = sq_fail(s, MSQL_ERROR, "RETURNING: %s", sqlite3_errmsg(s->conn));
    sqlite3_reset(d->ret);
    sqlite3_clear_bindings(d->ret);
    return out;
}

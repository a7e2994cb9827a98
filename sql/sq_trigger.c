/* sql/sq_trigger.c: triggers on Meridian's tables.
 *
 * SQLite refuses triggers on virtual tables (INSTEAD OF triggers on views are
 * allowed, and are created natively in each session: their bodies write the
 * virtual tables like any statement). BEFORE and AFTER row triggers on tables
 * are the session's: xUpdate (sq_vtab.c) calls sq_trigger_fire around each row
 * it inserts, updates or deletes, and the trigger's WHEN and body statements
 * run on the session's connection, nested in the statement that fired them
 * (their writes join its transaction and its undo marks). In the stored text,
 * NEW.c_i and OLD.c_i are read as parameters ?(i + 1) and ?(ncol + i + 1), and
 * RAISE(kind[, msg]) as meridian_raise('kind'[, msg]) (SQLite allows RAISE only
 * in its own trigger programs). Triggers do not fire themselves (SQLite's
 * default, recursive_triggers off); triggers of one event fire newest first. */
#include <stdlib.h>
#include <string.h>

#include "sql/sq_int.h"
#include "sql/sq_lex.h"

void sq_trigger_free(sq_trigger *g)
{
    if (!g)
        return;
    free(g->name);
    free(g->table);
    free(g->sql);
    for (int i = 0; i < g->nof; i++)
        free(g->of[i]);
    free(g->of);
    free(g->when);
    for (int i = 0; i < g->nbody; i++) {
        free(g->body[i]);
        sqlite3_finalize(g->st[i]);
        sq_dml_free(&g->bdml[i]);
    }
    free(g->body);
    free(g->st);
    free(g->bdml);
    sqlite3_finalize(g->when_st);
    free(g);
}

/* Copies [p, end) reading NEW.c / OLD.c as parameters and RAISE as meridian_raise. */
static char *rewrite(const char *p, const char *end, const sq_table *t)
{
    sqlite3_str *q = sqlite3_str_new(NULL);
    const char *copied = p;
    sq_tok a;
    for (;;) {
        const char *at = p;
        p = sq_lex(p, end, &a);
        (void)at;
        if (a.type == SQ_TK_EOF)
            break;
        if (sq_tok_is(&a, "RAISE")) {
            sq_tok open, kind;
            const char *p2 = sq_lex(p, end, &open);
            const char *p3 = sq_lex(p2, end, &kind);
            if (sq_tok_punct(&open, '(') && kind.type == SQ_TK_WORD) {
                sqlite3_str_append(q, copied, (int)(a.p - copied));
                sqlite3_str_appendf(q, "meridian_raise('%.*s'", kind.n, kind.p);
                copied = p = p3;
            }
            continue;
        }
        int isnew = sq_tok_is(&a, "NEW"), isold = sq_tok_is(&a, "OLD");
        if ((!isnew && !isold) || !t)
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
            continue; /* SQLite will name it */
        sqlite3_str_append(q, copied, (int)(a.p - copied));
        sqlite3_str_appendf(q, "?%d", isnew ? col + 1 : t->ncol + col + 1);
        copied = p = p3;
    }
    sqlite3_str_append(q, copied, (int)(end - copied));
    char *r = sqlite3_str_finish(q);
    char *out = r ? strdup(r) : NULL;
    sqlite3_free(r);
    return out;
}

int sq_trigger_parse(const char *sql, const sq_table *t, sq_trigger **out)
{
    *out = NULL;
    sq_trigger *g = calloc(1, sizeof *g);
    if (!g)
        return SQLITE_NOMEM;
    const char *end = sql + strlen(sql), *p = sql;
    sq_tok k;
    g->timing = 'B';
    /* CREATE TRIGGER [IF NOT EXISTS] [main.]name */
    do
        p = sq_lex(p, end, &k);
    while (k.type != SQ_TK_EOF && !sq_tok_is(&k, "TRIGGER"));
    p = sq_lex(p, end, &k);
    if (sq_tok_is(&k, "IF")) {
        p = sq_lex(sq_lex(p, end, &k), end, &k); /* NOT EXISTS */
        p = sq_lex(p, end, &k);
    }
    char *name = sq_tok_name(&k);
    const char *q = sq_lex(p, end, &k);
    if (sq_tok_punct(&k, '.')) {
        free(name);
        p = sq_lex(q, end, &k);
        name = sq_tok_name(&k);
        q = sq_lex(p, end, &k);
    }
    g->name = name;
    p = q;
    /* timing, event, OF cols, ON table */
    for (; k.type != SQ_TK_EOF; p = sq_lex(p, end, &k)) {
        if (sq_tok_is(&k, "BEFORE"))
            g->timing = 'B';
        else if (sq_tok_is(&k, "AFTER"))
            g->timing = 'A';
        else if (sq_tok_is(&k, "INSTEAD")) {
            g->timing = 'I';
            p = sq_lex(p, end, &k); /* OF */
        } else if (sq_tok_is(&k, "INSERT"))
            g->event = 'I';
        else if (sq_tok_is(&k, "DELETE"))
            g->event = 'D';
        else if (sq_tok_is(&k, "UPDATE"))
            g->event = 'U';
        else if (sq_tok_is(&k, "OF") && g->event == 'U') {
            for (;;) {
                p = sq_lex(p, end, &k);
                char *c = sq_tok_name(&k);
                char **l = c ? realloc(g->of, (size_t)(g->nof + 1) * sizeof *l) : NULL;
                if (!l) {
                    free(c);
                    break;
                }
                g->of = l;
                g->of[g->nof++] = c;
                q = sq_lex(p, end, &k);
                if (!sq_tok_punct(&k, ','))
                    break;
                p = q;
            }
        } else if (sq_tok_is(&k, "ON")) {
            p = sq_lex(p, end, &k);
            char *tn = sq_tok_name(&k);
            q = sq_lex(p, end, &k);
            if (sq_tok_punct(&k, '.')) {
                free(tn);
                p = sq_lex(q, end, &k);
                tn = sq_tok_name(&k);
            }
            g->table = tn;
            break;
        }
    }
    /* [FOR EACH ROW] [WHEN expr] BEGIN body END */
    const char *when = NULL, *begin = NULL;
    for (;;) {
        const char *before = p;
        p = sq_lex(p, end, &k);
        if (k.type == SQ_TK_EOF)
            break;
        if (sq_tok_is(&k, "WHEN") && !when)
            when = p;
        if (sq_tok_is(&k, "BEGIN")) {
            if (when)
                g->when = rewrite(when, before, t);
            begin = p;
            break;
        }
    }
    /* the body ends at the last END */
    const char *last_end = NULL;
    for (const char *r = begin; r;) {
        r = sq_lex(r, end, &k);
        if (k.type == SQ_TK_EOF)
            break;
        if (sq_tok_is(&k, "END"))
            last_end = k.p;
    }
    if (!g->name || !g->table || !g->event || !begin || !last_end || (when && !g->when)) {
        sq_trigger_free(g);
        return SQLITE_ERROR;
    }
    /* statements at ';' */
    const char *s0 = begin, *r = begin;
    for (;;) {
        const char *before = r;
        r = sq_lex(r, last_end, &k);
        if (k.type == SQ_TK_EOF || sq_tok_punct(&k, ';')) {
            const char *stop = k.type == SQ_TK_EOF ? last_end : before;
            sq_tok first;
            sq_lex(s0, stop, &first);
            if (first.type != SQ_TK_EOF) {
                char **b = realloc(g->body, (size_t)(g->nbody + 1) * sizeof *b);
                if (!b) {
                    sq_trigger_free(g);
                    return SQLITE_NOMEM;
                }
                g->body = b;
                g->body[g->nbody] = rewrite(s0, stop, t);
                if (!g->body[g->nbody]) {
                    sq_trigger_free(g);
                    return SQLITE_NOMEM;
                }
                g->nbody++;
            }
            if (k.type == SQ_TK_EOF)
                break;
            s0 = r;
        }
    }
    g->st = calloc((size_t)g->nbody + 1, sizeof *g->st);
    g->bdml = calloc((size_t)g->nbody + 1, sizeof *g->bdml);
    g->sql = strdup(sql);
    if (!g->st || !g->bdml || !g->sql) {
        sq_trigger_free(g);
        return SQLITE_NOMEM;
    }
    *out = g;
    return SQLITE_OK;
}

static void fn_raise(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    msql *s = sqlite3_user_data(ctx);
    const char *kind = (const char *)sqlite3_value_text(argv[0]);
    if (kind && sqlite3_stricmp(kind, "IGNORE") == 0) {
        s->raise_ignore = 1;
        sqlite3_result_null(ctx);
        return;
    }
    if (kind && sqlite3_stricmp(kind, "ROLLBACK") == 0)
        s->rollback_all = 1;
    const char *msg = argc > 1 ? (const char *)sqlite3_value_text(argv[1]) : NULL;
    sqlite3_result_error(ctx, msg ? msg : "RAISE", -1);
}

int sq_trigger_register(msql *s)
{
    int rc =
        sqlite3_create_function(s->conn, "meridian_raise", 1, SQLITE_UTF8, s, fn_raise, NULL, NULL);
    if (!rc)
        rc = sqlite3_create_function(s->conn, "meridian_raise", 2, SQLITE_UTF8, s, fn_raise, NULL,
                                     NULL);
    return rc;
}

static void bind_row(sqlite3_stmt *st, const sq_table *t, sqlite3_value **oldv,
                     sqlite3_value **newv)
{
    int n = sqlite3_bind_parameter_count(st);
    for (int i = 1; i <= n; i++) {
        int col = i - 1;
        sqlite3_value *v = NULL;
        if (col < t->ncol)
            v = newv ? newv[col] : NULL;
        else if (col < 2 * t->ncol)
            v = oldv ? oldv[col - t->ncol] : NULL;
        if (v)
            sqlite3_bind_value(st, i, v);
        else
            sqlite3_bind_null(st, i);
    }
}

static int prepare(msql *s, const char *sql, sqlite3_stmt **out)
{
    s->internal++;
    int rc = sqlite3_prepare_v3(s->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    s->internal--;
    if (rc)
        return sq_fail(s, rc == SQLITE_NOMEM ? MSQL_NOMEM : MSQL_ERROR, "%s",
                       sqlite3_errmsg(s->conn));
    return SQLITE_OK;
}

/* Prepares a trigger's statements on first use. */
static int load(msql *s, sq_trigger *g)
{
    if (g->loaded)
        return SQLITE_OK;
    if (g->when) {
        char *w = sqlite3_mprintf("SELECT (%s)", g->when);
        int rc = w ? prepare(s, w, &g->when_st) : SQLITE_NOMEM;
        sqlite3_free(w);
        if (rc)
            return rc;
    }
    for (int i = 0; i < g->nbody; i++) {
        char *rewritten = NULL;
        const char *tail = NULL;
        const char *text = g->body[i];
        if (sq_dml_parse(s, text, text, text + strlen(text), &g->bdml[i], &rewritten, &tail) !=
            MSQL_OK)
            return sq_fail(s, MSQL_ERROR, "trigger %s: %s", g->name,
                           s->errmsg ? s->errmsg : "cannot read its statement");
        int rc = prepare(s, rewritten ? rewritten : text, &g->st[i]);
        free(rewritten);
        if (!rc && sq_dml_prepare(s, &g->bdml[i]) != MSQL_OK)
            rc = sq_fail(s, MSQL_ERROR, "trigger %s: %s", g->name, s->errmsg ? s->errmsg : "");
        if (rc)
            return rc;
    }
    g->loaded = 1;
    return SQLITE_OK;
}

/* Does the running UPDATE name one of the trigger's OF columns? */
static int update_of(msql *s, const sq_trigger *g, const sq_table *t)
{
    if (!g->nof)
        return 1;
    const sq_dml *d = s->dml;
    if (!d || d->kind != 'U' || !d->table || sqlite3_stricmp(d->table, t->name) != 0)
        return 1; /* an UPDATE we did not read (a view's trigger, UPSERT): fire */
    for (int i = 0; i < g->nof; i++)
        for (int j = 0; j < d->ncols; j++)
            if (sqlite3_stricmp(g->of[i], d->cols[j]) == 0)
                return 1;
    return 0;
}

int sq_trigger_fire(msql *s, sq_table *t, int timing, int event, sqlite3_value **oldv,
                    sqlite3_value **newv)
{
    for (int i = t->ntriggers - 1; i >= 0; i--) {
        sq_trigger *g = t->triggers[i];
        if (g->timing != timing || g->event != event || g->active)
            continue;
        if (event == 'U' && !update_of(s, g, t))
            continue;
        int rc = load(s, g);
        if (rc)
            return rc;
        if (g->when_st) {
            bind_row(g->when_st, t, oldv, newv);
            int r = sqlite3_step(g->when_st);
            int go = 0;
            if (r == SQLITE_ROW) {
                sqlite3_value *w = sqlite3_column_value(g->when_st, 0);
                go = sqlite3_value_type(w) != SQLITE_NULL && sqlite3_value_double(w) != 0.0;
                r = SQLITE_OK;
            } else if (r == SQLITE_DONE) {
                r = SQLITE_OK;
            } else {
                sq_fail(s, MSQL_ERROR, "%s", sqlite3_errmsg(s->conn));
            }
            sqlite3_reset(g->when_st);
            sqlite3_clear_bindings(g->when_st);
            if (r)
                return SQLITE_ERROR;
            if (!go)
                continue;
        }
        g->active = 1;
        const sq_dml *saved = s->dml;
        int ignored = 0;
        rc = SQLITE_OK;
        for (int b = 0; b < g->nbody && !rc && !ignored; b++) {
            sqlite3_stmt *st = g->st[b];
            bind_row(st, t, oldv, newv);
            s->dml = &g->bdml[b];
            s->raise_ignore = 0;
            int r;
            while ((r = sqlite3_step(st)) == SQLITE_ROW)
                if (s->raise_ignore)
                    break;
            if (s->raise_ignore)
                ignored = 1;
            else if (r != SQLITE_DONE) {
                if (s->pending && s->pending != SQ_PEND_SCHEMA && s->msg)
                    rc = SQLITE_ERROR; /* the store's failure, already recorded */
                else
                    rc = sq_fail(s, r == SQLITE_NOMEM ? MSQL_NOMEM : MSQL_ERROR, "%s",
                                 sqlite3_errmsg(s->conn));
            }
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
        }
        s->dml = saved;
        s->raise_ignore = 0;
        g->active = 0;
        if (rc)
            return rc;
        if (ignored)
            return SQ_TRIGGER_IGNORE;
    }
    return SQLITE_OK;
}

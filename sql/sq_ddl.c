/* sql/sq_ddl.c: schema changes.
 *
 * CREATE TABLE/VIEW/[UNIQUE] INDEX, DROP TABLE/VIEW/INDEX run as read-write
 * transactions of their own (meridian_run): read the catalog version (and
 * reload the catalog if it moved), replay the statement on the session's
 * scratch database inside a savepoint (SQLite's own checks and messages: "table
 * t already exists", "no such column", positions), write the descriptor and the
 * new version, commit; then every session notices the version and reloads.
 * Under a schema lease the change first marks the version record and waits
 * the lease out (sq_ddl_run; sql/README.md, "Schema leases"). SET CLUSTER
 * SETTING schema_lease is a schema change too.
 * CREATE INDEX writes the entries of the rows already there in the same
 * transaction (and fails on duplicates for UNIQUE). DROP removes the
 * descriptors in the transaction and the rows afterwards, in batches of their
 * own (the ids are never reused, so leftovers are invisible).
 *
 * INTERLEAVE IN PARENT p [ON DELETE CASCADE | ON DELETE NO ACTION] is
 * Meridian's: it is cut off the CREATE TABLE text before SQLite sees it. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_util.h"
#include "sql/sq_int.h"
#include "sql/sq_lex.h"
#include "sql/sq_row.h"

enum {
    D_CREATE_TABLE,
    D_CREATE_VIEW,
    D_CREATE_INDEX,
    D_DROP_TABLE,
    D_DROP_VIEW,
    D_DROP_INDEX,
    D_CREATE_TRIGGER,
    D_DROP_TRIGGER,
    D_ALTER,
    D_SET_LEASE,
    D_NOOP
};

struct sq_ddl {
    int op;
    char *text;   /* the statement as written (no trailing ';') */
    char *create; /* what SQLite runs (INTERLEAVE removed) */
    char *name;
    int if_exists; /* IF EXISTS / IF NOT EXISTS */
    char *parent;
    int cascade;
    int alter;        /* 'A' ADD COLUMN, 'C' RENAME COLUMN, 'T' RENAME TO */
    char *col_old;    /* RENAME COLUMN's */
    char *new_name;   /* RENAME TO's */
    int64_t lease_ms; /* SET CLUSTER SETTING schema_lease's */
};

/* In sq_catalog.c. */
sq_table *sq_cat_describe(msql *s, const char *name);
int sq_cat_unique_indexes(msql *s, const char *table, char ***out, int *n);
sq_index *sq_cat_describe_index(msql *s, sq_table *t, const char *name, int64_t id, int unique,
                                const char *sql);
int sq_cat_refresh(msql *s);

void sq_ddl_free(sq_ddl *d)
{
    if (!d)
        return;
    free(d->text);
    free(d->create);
    free(d->name);
    free(d->parent);
    free(d->col_old);
    free(d->new_name);
    free(d);
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

static int syntax(msql *s, const char *sql, const sq_tok *t, int *rc)
{
    sq_fail(s, MSQL_ERROR, "%s", "");
    free(s->errmsg);
    if (t->type == SQ_TK_EOF) {
        s->errmsg = strdup("incomplete input");
        s->erroff = -1;
    } else {
        char *m = sqlite3_mprintf("near \"%.*s\": syntax error", t->n, t->p);
        s->errmsg = strdup(m ? m : "syntax error");
        sqlite3_free(m);
        s->erroff = (int)(t->p - sql);
    }
    *rc = MSQL_ERROR;
    return 0;
}

static sq_ddl *refuse(msql *s, int off, int *rc, const char *msg)
{
    free(s->errmsg);
    s->errmsg = strdup(msg);
    s->erroff = off;
    *rc = MSQL_ERROR;
    return NULL;
}

/* Checks text with SQLite (the scratch database holds every table): syntax,
 * unknown columns, names in use. */
static int validate(msql *s, const char *text, int len, const char **tail, int *rc)
{
    sqlite3_stmt *st = NULL;
    s->internal++;
    int r = sqlite3_prepare_v2(s->scratch, text, len, &st, tail);
    s->internal--;
    int empty = r == SQLITE_OK && !st;
    sqlite3_finalize(st);
    if (r || empty) {
        free(s->errmsg);
        s->errmsg = strdup(empty ? "incomplete input" : sqlite3_errmsg(s->scratch));
        s->erroff = empty ? -1 : sqlite3_error_offset(s->scratch);
        *rc = r == SQLITE_NOMEM ? MSQL_NOMEM : MSQL_ERROR;
        return -1;
    }
    return 0;
}

/* [IF [NOT] EXISTS] [main.]name; returns the position after, or NULL. */
static const char *read_name(msql *s, const char *sql, const char *p, const char *end, int not,
                             sq_ddl *d, int *rc)
{
    sq_tok t;
    const char *q = sq_lex(p, end, &t);
    if (sq_tok_is(&t, "IF")) {
        q = sq_lex(q, end, &t);
        if (not ) {
            if (!sq_tok_is(&t, "NOT"))
                return syntax(s, sql, &t, rc), NULL;
            q = sq_lex(q, end, &t);
        }
        if (!sq_tok_is(&t, "EXISTS"))
            return syntax(s, sql, &t, rc), NULL;
        d->if_exists = 1;
        p = q;
        q = sq_lex(p, end, &t);
    }
    char *name = sq_tok_name(&t);
    if (!name)
        return syntax(s, sql, &t, rc), NULL;
    sq_tok t2;
    const char *r = sq_lex(q, end, &t2);
    if (sq_tok_punct(&t2, '.')) {
        if (sqlite3_stricmp(name, "main") != 0) {
            free(name);
            refuse(s, (int)(t.p - sql), rc, "Meridian's tables live in schema main");
            return NULL;
        }
        free(name);
        q = sq_lex(r, end, &t);
        name = sq_tok_name(&t);
        if (!name)
            return syntax(s, sql, &t, rc), NULL;
    }
    d->name = name;
    return q;
}

/* CREATE TABLE: finds and removes "[,] INTERLEAVE IN PARENT p [ON DELETE
 * CASCADE | NO ACTION]" after the column list. */
static int cut_interleave(msql *s, const char *sql, const char *p, const char *end, sq_ddl *d,
                          const char **stmt_end, int *rc)
{
    sq_tok t;
    /* to the column list */
    for (;;) {
        p = sq_lex(p, end, &t);
        if (t.type == SQ_TK_EOF || sq_tok_punct(&t, ';')) {
            /* no column list: SQLite will say what is wrong */
            *stmt_end = t.p;
            d->create = dupn(sql, (size_t)(t.p - sql));
            return d->create ? 0 : -1;
        }
        if (sq_tok_is(&t, "AS")) {
            refuse(s, (int)(t.p - sql), rc, "CREATE TABLE ... AS SELECT is not supported");
            return -1;
        }
        if (sq_tok_punct(&t, '('))
            break;
    }
    p = sq_lex_skip_group(p, end);
    if (!p) {
        free(s->errmsg);
        s->errmsg = strdup("incomplete input");
        s->erroff = -1;
        *rc = MSQL_ERROR;
        return -1;
    }
    const char *cut = NULL, *last_end = p;
    for (;;) {
        const char *before = p;
        p = sq_lex(p, end, &t);
        if (t.type == SQ_TK_EOF || sq_tok_punct(&t, ';')) {
            *stmt_end = t.p;
            break;
        }
        if (sq_tok_punct(&t, ',')) {
            sq_tok n;
            sq_lex(p, end, &n);
            if (sq_tok_is(&n, "INTERLEAVE")) {
                cut = before;
                continue;
            }
        }
        if (sq_tok_is(&t, "INTERLEAVE")) {
            if (!cut)
                cut = before;
            p = sq_lex(p, end, &t);
            if (!sq_tok_is(&t, "IN"))
                return syntax(s, sql, &t, rc), -1;
            p = sq_lex(p, end, &t);
            if (!sq_tok_is(&t, "PARENT"))
                return syntax(s, sql, &t, rc), -1;
            p = sq_lex(p, end, &t);
            d->parent = sq_tok_name(&t);
            if (!d->parent)
                return syntax(s, sql, &t, rc), -1;
            const char *q = sq_lex(p, end, &t);
            if (sq_tok_is(&t, "ON")) {
                q = sq_lex(q, end, &t);
                if (!sq_tok_is(&t, "DELETE"))
                    return syntax(s, sql, &t, rc), -1;
                q = sq_lex(q, end, &t);
                if (sq_tok_is(&t, "CASCADE")) {
                    d->cascade = 1;
                } else if (sq_tok_is(&t, "NO")) {
                    q = sq_lex(q, end, &t);
                    if (!sq_tok_is(&t, "ACTION"))
                        return syntax(s, sql, &t, rc), -1;
                } else {
                    return syntax(s, sql, &t, rc), -1;
                }
                p = q;
            }
            sq_lex(p, end, &t);
            if (t.type != SQ_TK_EOF && !sq_tok_punct(&t, ';'))
                return syntax(s, sql, &t, rc), -1;
            continue;
        }
        if (cut)
            return syntax(s, sql, &t, rc), -1; /* table options go before INTERLEAVE */
        last_end = p;
    }
    (void)last_end;
    size_t n = (size_t)((cut ? cut : *stmt_end) - sql);
    d->create = dupn(sql, n);
    return d->create ? 0 : -1;
}

sq_ddl *sq_ddl_prepare(msql *s, const char *sql, int len, const char **tail, int *rc)
{
    const char *end = sql + len;
    sq_ddl *d = calloc(1, sizeof *d);
    if (!d) {
        *rc = MSQL_NOMEM;
        return NULL;
    }
    *rc = MSQL_OK;
    sq_tok t;
    const char *p = sq_lex(sql, end, &t);
    int create = sq_tok_is(&t, "CREATE"), drop = sq_tok_is(&t, "DROP");
    const char *stmt_end = NULL;
    if (sq_tok_is(&t, "SET")) {
        /* SET CLUSTER SETTING schema_lease = 'duration' (a schema change: it
         * waits out the old lease and bumps the version) */
        d->op = D_SET_LEASE;
        p = sq_lex(p, end, &t);
        if (sq_tok_is(&t, "CLUSTER"))
            p = sq_lex(p, end, &t);
        else
            goto set_syntax;
        if (!sq_tok_is(&t, "SETTING"))
            goto set_syntax;
        p = sq_lex(p, end, &t);
        if (!sq_tok_is(&t, "schema_lease")) {
            int off = (int)(t.p - sql);
            if (t.type == SQ_TK_EOF)
                goto set_syntax;
            sq_ddl_free(d);
            return refuse(s, off, rc, "unknown cluster setting (there is one: schema_lease)");
        }
        p = sq_lex(p, end, &t);
        if (!sq_tok_punct(&t, '=') && !sq_tok_is(&t, "TO"))
            goto set_syntax;
        p = sq_lex(p, end, &t);
        char *dur = sq_tok_string(&t);
        if (!dur)
            goto set_syntax;
        int64_t ns = 0;
        int bad = strcmp(dur, "0") != 0 && (mr_parse_duration(dur, &ns) != 0 || ns < 0);
        free(dur);
        if (bad || ns > SQ_LEASE_MAX_MS * 1000000LL || (ns > 0 && ns < 1000000)) {
            int off = (int)(t.p - sql);
            sq_ddl_free(d);
            return refuse(s, off, rc,
                          "bad schema_lease: a duration from '1ms' to '60s' such as '250ms', or "
                          "'0' (leases off)");
        }
        d->lease_ms = ns / 1000000;
        stmt_end = t.p + t.n;
        p = sq_lex(p, end, &t);
        if (t.type != SQ_TK_EOF && !sq_tok_punct(&t, ';'))
            goto set_syntax;
        d->text = dupn(sql, (size_t)(stmt_end - sql));
        if (!d->text) {
            sq_ddl_free(d);
            *rc = MSQL_NOMEM;
            return NULL;
        }
        *tail = p;
        return d;
    set_syntax:
        syntax(s, sql, &t, rc);
        sq_ddl_free(d);
        return NULL;
    }
    if (sq_tok_is(&t, "ALTER")) {
        /* ALTER TABLE t ADD [COLUMN] def | RENAME [COLUMN] a TO b | RENAME TO u */
        d->op = D_ALTER;
        p = sq_lex(p, end, &t);
        if (!sq_tok_is(&t, "TABLE")) {
            syntax(s, sql, &t, rc);
            sq_ddl_free(d);
            return NULL;
        }
        const char *q = read_name(s, sql, p, end, 0, d, rc);
        if (!q) {
            sq_ddl_free(d);
            return NULL;
        }
        q = sq_lex(q, end, &t);
        if (sq_tok_is(&t, "ADD")) {
            d->alter = 'A';
        } else if (sq_tok_is(&t, "RENAME")) {
            q = sq_lex(q, end, &t);
            if (sq_tok_is(&t, "TO")) {
                d->alter = 'T';
                q = sq_lex(q, end, &t);
                d->new_name = sq_tok_name(&t);
            } else {
                d->alter = 'C';
                if (sq_tok_is(&t, "COLUMN"))
                    q = sq_lex(q, end, &t);
                d->col_old = sq_tok_name(&t);
            }
            if (!d->new_name && !d->col_old) {
                syntax(s, sql, &t, rc);
                sq_ddl_free(d);
                return NULL;
            }
        } else if (sq_tok_is(&t, "DROP")) {
            int off = (int)(t.p - sql);
            sq_ddl_free(d);
            return refuse(s, off, rc, "ALTER TABLE ... DROP COLUMN is not supported");
        } else {
            syntax(s, sql, &t, rc);
            sq_ddl_free(d);
            return NULL;
        }
        for (;;) {
            q = sq_lex(q, end, &t);
            if (t.type == SQ_TK_EOF || sq_tok_punct(&t, ';'))
                break;
        }
        stmt_end = t.type == SQ_TK_EOF ? end : t.p;
        d->create = dupn(sql, (size_t)(stmt_end - sql));
        size_t n = (size_t)(stmt_end - sql);
        while (n > 0 && (sql[n - 1] == ' ' || sql[n - 1] == '\n' || sql[n - 1] == '\t' ||
                         sql[n - 1] == '\r'))
            n--;
        d->text = dupn(sql, n);
        const char *vt = NULL;
        if (!d->create || !d->text || validate(s, d->create, -1, &vt, rc)) {
            if (!*rc)
                *rc = MSQL_NOMEM;
            sq_ddl_free(d);
            return NULL;
        }
        *tail = sq_tok_punct(&t, ';') ? t.p + 1 : stmt_end;
        return d;
    }
    if (sq_tok_is(&t, "REINDEX")) {
        /* Meridian's indexes are written with their rows: nothing to rebuild. */
        sq_tok last;
        const char *q = sql;
        for (;;) {
            q = sq_lex(q, end, &last);
            if (last.type == SQ_TK_EOF || sq_tok_punct(&last, ';'))
                break;
        }
        d->op = D_NOOP;
        *tail = q;
        return d;
    }
    p = sq_lex(p, end, &t);
    if (sq_tok_is(&t, "TEMP") || sq_tok_is(&t, "TEMPORARY")) {
        sq_ddl_free(d);
        return refuse(s, (int)(t.p - sql), rc, "TEMP tables, views and triggers are not supported");
    }
    int unique = 0;
    if (create && sq_tok_is(&t, "UNIQUE")) {
        unique = 1;
        p = sq_lex(p, end, &t);
    }
    const char *after = NULL;
    if (sq_tok_is(&t, "TABLE") && !unique) {
        d->op = create ? D_CREATE_TABLE : D_DROP_TABLE;
        after = read_name(s, sql, p, end, create, d, rc);
    } else if (sq_tok_is(&t, "VIEW") && !unique) {
        d->op = create ? D_CREATE_VIEW : D_DROP_VIEW;
        after = read_name(s, sql, p, end, create, d, rc);
    } else if (sq_tok_is(&t, "INDEX")) {
        d->op = create ? D_CREATE_INDEX : D_DROP_INDEX;
        after = read_name(s, sql, p, end, create, d, rc);
    } else if (sq_tok_is(&t, "TRIGGER") && !unique) {
        d->op = create ? D_CREATE_TRIGGER : D_DROP_TRIGGER;
        after = read_name(s, sql, p, end, create, d, rc);
        if (after && create) {
            /* A trigger's body holds ';': SQLite finds where it ends. */
            const char *vt = NULL;
            if (validate(s, sql, (int)(end - sql), &vt, rc)) {
                sq_ddl_free(d);
                return NULL;
            }
            const char *e = vt;
            while (e > sql && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\t' || e[-1] == '\r'))
                e--;
            if (e > sql && e[-1] == ';')
                e--;
            d->create = d->text = NULL;
            d->text = dupn(sql, (size_t)(e - sql));
            d->create = dupn(sql, (size_t)(e - sql));
            *tail = vt;
            if (!d->text || !d->create) {
                sq_ddl_free(d);
                *rc = MSQL_NOMEM;
                return NULL;
            }
            return d;
        }
    } else if (sq_tok_is(&t, "VIRTUAL")) {
        sq_ddl_free(d);
        return refuse(s, (int)(t.p - sql), rc,
                      "virtual tables are Meridian's own: use CREATE TABLE");
    } else {
        syntax(s, sql, &t, rc);
        sq_ddl_free(d);
        return NULL;
    }
    (void)drop;
    if (!after) {
        sq_ddl_free(d);
        return NULL;
    }
    if (d->op == D_CREATE_TABLE) {
        if (cut_interleave(s, sql, after, end, d, &stmt_end, rc)) {
            sq_ddl_free(d);
            if (!*rc)
                *rc = MSQL_NOMEM;
            return NULL;
        }
    } else {
        const char *q = after;
        for (;;) {
            const char *before = q;
            q = sq_lex(q, end, &t);
            if (t.type == SQ_TK_EOF || sq_tok_punct(&t, ';')) {
                stmt_end = t.type == SQ_TK_EOF ? end : t.p;
                (void)before;
                break;
            }
        }
        d->create = dupn(sql, (size_t)(stmt_end - sql));
    }
    /* the text up to the end, trimmed */
    size_t n = (size_t)(stmt_end - sql);
    while (n > 0 &&
           (sql[n - 1] == ' ' || sql[n - 1] == '\n' || sql[n - 1] == '\t' || sql[n - 1] == '\r'))
        n--;
    d->text = dupn(sql, n);
    if (!d->text || !d->create) {
        sq_ddl_free(d);
        *rc = MSQL_NOMEM;
        return NULL;
    }
    const char *vt = NULL;
    if (d->op != D_DROP_TRIGGER && validate(s, d->create, -1, &vt, rc)) {
        sq_ddl_free(d);
        return NULL;
    }
    if (d->op == D_CREATE_INDEX) {
        /* A partial index's WHERE: not supported. */
        const char *q = d->create;
        int depth = 0;
        for (;;) {
            q = sq_lex(q, d->create + strlen(d->create), &t);
            if (t.type == SQ_TK_EOF)
                break;
            if (sq_tok_punct(&t, '('))
                depth++;
            else if (sq_tok_punct(&t, ')'))
                depth--;
            else if (depth == 0 && sq_tok_is(&t, "WHERE")) {
                int off = (int)(t.p - d->create);
                sq_ddl_free(d);
                return refuse(s, off, rc, "partial indexes are not supported");
            }
        }
    }
    sq_lex(stmt_end, end, &t);
    *tail = sq_tok_punct(&t, ';') ? t.p + 1 : stmt_end;
    return d;
}

/* ---- running ---- */

typedef struct ddl_run {
    msql *s;
    sq_ddl *d;
    int code; /* an MSQL_* code of a failure found in fn */
    char *msg;
    int changed;        /* the catalog changed (not an IF [NOT] EXISTS no-op) */
    int64_t purge_id;   /* rows to delete after the commit: a table or index id */
    int64_t purge_root; /* its root table's id (for an interleaved table) */
    int purge_index;
    /* the schema lease: the record (a) read and the marker it wrote (nonce
     * 0: none, leases off); restart: the record is not that any more */
    sq_ver rec;
    uint64_t nonce;
    int restart;
} ddl_run;

static int fn_fail(ddl_run *r, int code, const char *msg)
{
    r->code = code;
    free(r->msg);
    r->msg = strdup(msg ? msg : "error");
    return code == MSQL_RETRY         ? MERIDIAN_ABORTED
           : code == MSQL_UNAVAILABLE ? MERIDIAN_UNAVAILABLE
           : code == MSQL_NOMEM       ? MERIDIAN_NOMEM
                                      : MERIDIAN_ERROR;
}

/* fn_fail with a formatted message (SQLite's printf: %s of NULL prints nothing). */
static int fn_failf(ddl_run *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    int rc = fn_fail(r, code, m);
    sqlite3_free(m);
    return rc;
}

static int fn_fail_session(ddl_run *r)
{
    msql *s = r->s;
    return fn_fail(r, s->pending && s->pending != SQ_PEND_SCHEMA ? s->pending : MSQL_ERROR, s->msg);
}

static int put_text(meridian_txn *t, const uint8_t *k, size_t kl, const char *v)
{
    return meridian_put(t, k, kl, v, strlen(v));
}

static int read_int(meridian_txn *t, const uint8_t *k, size_t kl, int64_t *out)
{
    void *v = NULL;
    size_t n = 0;
    *out = 0;
    int rc = meridian_get(t, k, kl, &v, &n);
    if (rc == MERIDIAN_NOTFOUND)
        return MERIDIAN_OK;
    if (rc != MERIDIAN_OK)
        return rc;
    char buf[32];
    if (n < sizeof buf) {
        memcpy(buf, v, n);
        buf[n] = 0;
        *out = strtoll(buf, NULL, 10);
    }
    meridian_free(v);
    return MERIDIAN_OK;
}

/* Takes n fresh ids from the catalog's counter. */
static int take_ids(meridian_txn *t, int n, int64_t *first)
{
    uint8_t k[2];
    sq_cat_key(k, SQ_CAT_NEXTID);
    int64_t last;
    int rc = read_int(t, k, 2, &last);
    if (rc != MERIDIAN_OK)
        return rc;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)(last + n));
    *first = last + 1;
    return put_text(t, k, 2, buf);
}

static int put_desc(meridian_txn *t, const char *name, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    sq_buf k = {0};
    int rc = text && !sq_cat_desc_key(&k, name) ? put_text(t, k.p, k.len, text) : MERIDIAN_NOMEM;
    free(text);
    sq_buf_free(&k);
    return rc;
}

static int del_desc(meridian_txn *t, const char *name)
{
    sq_buf k = {0};
    int rc = sq_cat_desc_key(&k, name) ? MERIDIAN_NOMEM : meridian_delete(t, k.p, k.len);
    sq_buf_free(&k);
    return rc;
}

/* Runs sql on the scratch database inside a savepoint that is rolled back
 * by scratch_undo: SQLite's own validation of a schema change. */
static int scratch_try(msql *s, const char *sql)
{
    int rc = sq_exec_internal(s, s->scratch, "SAVEPOINT meridian_ddl");
    if (rc)
        return rc;
    rc = sq_exec_internal(s, s->scratch, sql);
    return rc;
}

static void scratch_undo(msql *s)
{
    char *m = s->msg ? strdup(s->msg) : NULL;
    int pend = s->pending;
    s->internal++;
    sqlite3_exec(s->scratch, "ROLLBACK TO meridian_ddl; RELEASE meridian_ddl", NULL, NULL, NULL);
    s->internal--;
    if (m) {
        sqlite3_free(s->msg);
        s->msg = sqlite3_mprintf("%s", m);
        free(m);
    }
    s->pending = pend;
}

static int check_interleave(msql *s, sq_table *t, sq_table *p)
{
    if (p->hidden_rowid)
        return sq_fail(s, MSQL_ERROR, "table %s: cannot interleave in %s, which has no PRIMARY KEY",
                       t->name, p->name);
    int depth = 0;
    for (sq_table *a = p; a; a = a->parent)
        depth++;
    if (depth >= 32)
        return sq_fail(s, MSQL_ERROR, "table %s: interleaving is at most 32 levels deep", t->name);
    int ok = t->npk > p->npk;
    for (int i = 0; ok && i < p->npk; i++) {
        sq_col *a = &t->cols[t->pk[i]], *b = &p->cols[p->pk[i]];
        ok = sqlite3_stricmp(a->name, b->name) == 0 && a->aff == b->aff &&
             t->pkdesc[i] == p->pkdesc[i];
    }
    if (!ok) {
        sqlite3_str *q = sqlite3_str_new(NULL);
        for (int i = 0; i < p->npk; i++)
            sqlite3_str_appendf(q, "%s%s%s", i ? ", " : "", p->cols[p->pk[i]].name,
                                p->pkdesc[i] ? " DESC" : "");
        char *cols = sqlite3_str_finish(q);
        sq_fail(s, MSQL_ERROR,
                "table %s: INTERLEAVE IN PARENT %s needs a primary key that begins with %s's "
                "(%s: same names, types and directions) and has more columns",
                t->name, p->name, p->name, cols ? cols : "");
        sqlite3_free(cols);
        return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

static void free_table_shell(sq_table *t);

static int create_table(ddl_run *r, meridian_txn *mt)
{
    msql *s = r->s;
    sq_ddl *d = r->d;
    if (d->if_exists && (sq_cat_table(s, d->name) || sq_cat_view(s, d->name)))
        return MERIDIAN_OK;
    if (scratch_try(s, d->create)) {
        scratch_undo(s);
        return fn_fail_session(r);
    }
    sq_table *t = sq_cat_describe(s, d->name);
    sq_table *p = NULL;
    char **un = NULL;
    int nu = 0, rc = t ? SQLITE_OK : SQLITE_ERROR;
    if (!rc && d->parent) {
        p = sq_cat_table(s, d->parent);
        if (!p)
            rc = sq_fail(s, MSQL_ERROR, "INTERLEAVE IN PARENT: no such table: %s", d->parent);
        else
            rc = check_interleave(s, t, p);
    }
    if (!rc)
        rc = sq_cat_unique_indexes(s, d->name, &un, &nu);
    for (int i = 0; !rc && i < nu; i++) {
        /* UNIQUE columns must order as their keys do. */
        sq_index *ix = sq_cat_describe_index(s, t, un[i], 1, 1, NULL);
        if (!ix)
            rc = SQLITE_ERROR;
        else {
            free(ix->name);
            free(ix->sql);
            free(ix->cols);
            free(ix->desc);
            free(ix);
        }
    }
    if (t)
        free_table_shell(t);
    scratch_undo(s);
    if (rc) {
        for (int i = 0; i < nu; i++)
            free(un[i]);
        free(un);
        return fn_fail_session(r);
    }
    int64_t first;
    int mrc = take_ids(mt, 1 + nu, &first);
    json_t *j = json_object();
    json_t *ids = json_array();
    for (int i = 0; i < nu; i++) {
        json_array_append_new(ids, json_integer(first + 1 + i));
        free(un[i]);
    }
    free(un);
    json_object_set_new(j, "type", json_string("table"));
    json_object_set_new(j, "name", json_string(d->name));
    json_object_set_new(j, "id", json_integer(first));
    json_object_set_new(j, "sql", json_string(d->text));
    json_object_set_new(j, "create", json_string(d->create));
    json_object_set_new(j, "unique_ids", ids);
    if (p) {
        json_object_set_new(j, "parent", json_integer(p->id));
        json_object_set_new(j, "cascade", json_boolean(d->cascade));
    }
    if (mrc == MERIDIAN_OK)
        mrc = put_desc(mt, d->name, j);
    json_decref(j);
    if (mrc != MERIDIAN_OK) {
        sq_fail_meridian(s, mrc, "writing the catalog");
        return fn_fail_session(r);
    }
    r->changed = 1;
    return MERIDIAN_OK;
}

/* sq_cat_describe's table without its catalog links (a check's by-product). */
static void free_table_shell(sq_table *t)
{
    sq_check_free(t);
    free(t->name);
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
    free(t);
}

static int create_view(ddl_run *r, meridian_txn *mt)
{
    msql *s = r->s;
    sq_ddl *d = r->d;
    if (d->if_exists && (sq_cat_table(s, d->name) || sq_cat_view(s, d->name)))
        return MERIDIAN_OK;
    int rc = scratch_try(s, d->create);
    if (!rc) {
        /* the view must also make sense over the session's tables */
        char *q = sq_quote(d->name);
        char *sql = sqlite3_mprintf("SELECT * FROM main.%s LIMIT 0", q);
        sqlite3_free(q);
        sqlite3_stmt *st = NULL;
        s->internal++;
        rc = sql ? sqlite3_prepare_v2(s->scratch, sql, -1, &st, NULL) : SQLITE_NOMEM;
        s->internal--;
        if (rc)
            sq_fail_sqlite(s, s->scratch, rc);
        sqlite3_finalize(st);
        sqlite3_free(sql);
    }
    scratch_undo(s);
    if (rc)
        return fn_fail_session(r);
    json_t *j = json_object();
    json_object_set_new(j, "type", json_string("view"));
    json_object_set_new(j, "name", json_string(d->name));
    json_object_set_new(j, "sql", json_string(d->text));
    int mrc = put_desc(mt, d->name, j);
    json_decref(j);
    if (mrc != MERIDIAN_OK) {
        sq_fail_meridian(s, mrc, "writing the catalog");
        return fn_fail_session(r);
    }
    r->changed = 1;
    return MERIDIAN_OK;
}

typedef struct build_arg {
    msql *s;
    sq_txn *x;
    sq_table *t;
    sq_index *ix;
    int rc;
} build_arg;

static int build_cb(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    build_arg *a = arg;
    msql *s = a->s;
    int64_t tid;
    if (sq_row_table_id(v, vl, &tid) || tid != a->t->id)
        return 0;
    sqlite3_value *vals[a->t->ncol > 0 ? a->t->ncol : 1];
    int rc = sq_row_values(s, a->t, v, vl, vals);
    if (rc) {
        a->rc = rc;
        return 1;
    }
    sq_buf e = {0};
    rc = sq_index_entry(s, a->ix, vals, k, kl, &e);
    int hasnull = 0;
    for (int i = 0; i < a->ix->ncol; i++)
        hasnull |= sqlite3_value_type(vals[a->ix->cols[i]]) == SQLITE_NULL;
    if (!rc && a->ix->unique && !hasnull) {
        uint8_t *old = NULL;
        size_t ol = 0;
        int r = sq_read(s, a->x, e.p, e.len, &old, &ol);
        free(old);
        if (r == SQLITE_OK) {
            sqlite3_str *q = sqlite3_str_new(NULL);
            for (int i = 0; i < a->ix->ncol; i++)
                sqlite3_str_appendf(q, "%s%s.%s", i ? ", " : "", a->t->name,
                                    a->t->cols[a->ix->cols[i]].name);
            char *cols = sqlite3_str_finish(q);
            rc = sq_fail(s, MSQL_ERROR, "UNIQUE constraint failed: %s", cols ? cols : "");
            sqlite3_free(cols);
        } else if (r != SQLITE_NOTFOUND) {
            rc = r;
        }
    }
    if (!rc)
        rc = sq_txn_put(s, e.p, e.len, k, kl);
    sq_buf_free(&e);
    for (int i = 0; i < a->t->ncol; i++)
        sqlite3_value_free(vals[i]);
    if (rc) {
        a->rc = rc;
        return 1;
    }
    return 0;
}

static int create_index(ddl_run *r, meridian_txn *mt, sq_txn *x)
{
    msql *s = r->s;
    sq_ddl *d = r->d;
    if (d->if_exists && sq_cat_index(s, d->name))
        return MERIDIAN_OK;
    if (scratch_try(s, d->create)) {
        scratch_undo(s);
        return fn_fail_session(r);
    }
    /* The table, its columns, uniqueness: from SQLite. */
    char *lit = sqlite3_mprintf("%Q", d->name);
    char *sql =
        sqlite3_mprintf("SELECT tbl_name, (SELECT \"unique\" FROM pragma_index_list(tbl_name) "
                        "WHERE name = %s) FROM main.sqlite_schema WHERE type = 'index' AND "
                        "name = %s",
                        lit, lit);
    sqlite3_free(lit);
    sqlite3_stmt *st = NULL;
    char *tname = NULL;
    int unique = 0;
    s->internal++;
    int rc = sql ? sqlite3_prepare_v2(s->scratch, sql, -1, &st, NULL) : SQLITE_NOMEM;
    s->internal--;
    sqlite3_free(sql);
    if (!rc && sqlite3_step(st) == SQLITE_ROW) {
        tname = strdup((const char *)sqlite3_column_text(st, 0));
        unique = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    sq_table *t = tname ? sq_cat_table(s, tname) : NULL;
    free(tname);
    sq_index *ix = t ? sq_cat_describe_index(s, t, d->name, 1, unique, d->text) : NULL;
    scratch_undo(s);
    if (!ix) {
        if (!t)
            sq_fail(s, MSQL_ERROR, "CREATE INDEX: the index's table is not one of the catalog's");
        return fn_fail_session(r);
    }
    int64_t id;
    int mrc = take_ids(mt, 1, &id);
    if (mrc != MERIDIAN_OK) {
        free(ix->name);
        free(ix->sql);
        free(ix->cols);
        free(ix->desc);
        free(ix);
        sq_fail_meridian(s, mrc, "writing the catalog");
        return fn_fail_session(r);
    }
    /* Entries for the rows already there, in this transaction. */
    ix->id = id;
    sq_buf pb = {0};
    uint8_t pfx = SQ_PFX_DATA;
    sq_buf_put(&pb, &pfx, 1);
    sq_key_append_int(&pb, id, 0);
    memcpy(ix->pfx, pb.p, pb.len);
    ix->pfxlen = pb.len;
    sq_buf_free(&pb);
    uint8_t end[32];
    size_t el = 0;
    sq_key_succ(t->pfx, t->pfxlen, end, &el);
    build_arg a = {s, x, t, ix, 0};
    rc = sq_scan_merged(s, x, t->pfx, t->pfxlen, end, el, build_cb, &a);
    if (!rc)
        rc = a.rc;
    free(ix->name);
    free(ix->sql);
    free(ix->cols);
    free(ix->desc);
    free(ix);
    if (rc)
        return fn_fail_session(r);
    json_t *j = json_object();
    json_object_set_new(j, "type", json_string("index"));
    json_object_set_new(j, "name", json_string(d->name));
    json_object_set_new(j, "id", json_integer(id));
    json_object_set_new(j, "table", json_string(t->name));
    json_object_set_new(j, "sql", json_string(d->text));
    json_object_set_new(j, "unique", json_boolean(unique));
    mrc = put_desc(mt, d->name, j);
    json_decref(j);
    if (mrc != MERIDIAN_OK) {
        sq_fail_meridian(s, mrc, "writing the catalog");
        return fn_fail_session(r);
    }
    r->changed = 1;
    return MERIDIAN_OK;
}

static int drop_triggers_on(msql *s, meridian_txn *mt, const char *name);

static int drop_object(ddl_run *r, meridian_txn *mt)
{
    msql *s = r->s;
    sq_ddl *d = r->d;
    sq_table *t = d->op == D_DROP_TABLE ? sq_cat_table(s, d->name) : NULL;
    sq_view *v = d->op == D_DROP_VIEW ? sq_cat_view(s, d->name) : NULL;
    sq_index *ix = d->op == D_DROP_INDEX ? sq_cat_index(s, d->name) : NULL;
    if (d->if_exists && !t && !v && !ix && !(d->op == D_DROP_TABLE && sq_cat_view(s, d->name)) &&
        !(d->op == D_DROP_VIEW && sq_cat_table(s, d->name)))
        return MERIDIAN_OK;
    if (ix && !ix->sql)
        return fn_fail(r, MSQL_ERROR,
                       "index associated with UNIQUE or PRIMARY KEY constraint cannot be dropped");
    if (t && t->nchildren) {
        return fn_failf(r, MSQL_ERROR, "cannot drop table %s: table %s is interleaved in it",
                        t->name, t->children[0]->name);
    }
    /* SQLite's messages for the rest ("no such table", "use DROP VIEW ..."). */
    if (scratch_try(s, d->create)) {
        scratch_undo(s);
        return fn_fail_session(r);
    }
    scratch_undo(s);
    int mrc = t || v ? drop_triggers_on(s, mt, t ? t->name : v->name) : MERIDIAN_OK;
    if (mrc != MERIDIAN_OK) {
        /* reported below */
    } else if (t) {
        mrc = del_desc(mt, t->name);
        for (int i = 0; i < t->nidx && mrc == MERIDIAN_OK; i++)
            if (t->idx[i]->sql)
                mrc = del_desc(mt, t->idx[i]->name);
        r->purge_id = t->id;
        sq_table *root = t;
        while (root->parent)
            root = root->parent;
        r->purge_root = root->id;
    } else if (v) {
        mrc = del_desc(mt, v->name);
    } else if (ix) {
        mrc = del_desc(mt, ix->name);
        r->purge_id = ix->id;
        r->purge_index = 1;
    }
    if (mrc != MERIDIAN_OK) {
        sq_fail_meridian(s, mrc, "writing the catalog");
        return fn_fail_session(r);
    }
    r->changed = 1;
    return MERIDIAN_OK;
}

static int create_trigger(ddl_run *r, meridian_txn *mt)
{
    msql *s = r->s;
    sq_ddl *d = r->d;
    if (d->if_exists && sq_cat_trigger(s, d->name))
        return MERIDIAN_OK;
    if (sq_cat_trigger(s, d->name)) {
        return fn_failf(r, MSQL_ERROR, "trigger %s already exists", d->name);
    }
    /* SQLite's checks on the twin (BEFORE on a view, unknown columns in UPDATE
     * OF, ...); triggers are not kept there (they would fire on row checks). */
    if (scratch_try(s, d->create)) {
        scratch_undo(s);
        return fn_fail_session(r);
    }
    scratch_undo(s);
    sq_trigger *g = NULL;
    if (sq_trigger_parse(d->create, NULL, &g) != SQLITE_OK)
        return fn_fail(r, MSQL_ERROR, "cannot read the trigger");
    sq_table *t = sq_cat_table(s, g->table);
    sq_view *v = t ? NULL : sq_cat_view(s, g->table);
    char *tname = strdup(t ? t->name : v ? v->name : g->table);
    sq_trigger_free(g);
    if (!tname)
        return fn_fail(r, MSQL_NOMEM, "out of memory");
    if (!t && !v) {
        int rc = fn_failf(r, MSQL_ERROR, "no such table: %s", tname);
        free(tname);
        return rc;
    }
    int64_t id;
    int mrc = take_ids(mt, 1, &id);
    json_t *j = json_object();
    json_object_set_new(j, "type", json_string("trigger"));
    json_object_set_new(j, "name", json_string(d->name));
    json_object_set_new(j, "id", json_integer(id));
    json_object_set_new(j, "table", json_string(tname));
    json_object_set_new(j, "sql", json_string(d->text));
    free(tname);
    if (mrc == MERIDIAN_OK)
        mrc = put_desc(mt, d->name, j);
    json_decref(j);
    if (mrc != MERIDIAN_OK) {
        sq_fail_meridian(s, mrc, "writing the catalog");
        return fn_fail_session(r);
    }
    r->changed = 1;
    return MERIDIAN_OK;
}

static int drop_trigger(ddl_run *r, meridian_txn *mt)
{
    msql *s = r->s;
    sq_trigger *g = sq_cat_trigger(s, r->d->name);
    if (!g) {
        if (r->d->if_exists)
            return MERIDIAN_OK;
        return fn_failf(r, MSQL_ERROR, "no such trigger: %s", r->d->name);
    }
    int mrc = del_desc(mt, g->name);
    if (mrc != MERIDIAN_OK) {
        sq_fail_meridian(s, mrc, "writing the catalog");
        return fn_fail_session(r);
    }
    r->changed = 1;
    return MERIDIAN_OK;
}

/* Deletes the descriptors of the triggers on table or view `name`. */
static int drop_triggers_on(msql *s, meridian_txn *mt, const char *name)
{
    for (int i = 0; i < s->cat.ntriggers; i++)
        if (sqlite3_stricmp(s->cat.triggers[i]->table, name) == 0) {
            int rc = del_desc(mt, s->cat.triggers[i]->name);
            if (rc != MERIDIAN_OK)
                return rc;
        }
    return MERIDIAN_OK;
}

typedef struct first_row {
    int64_t tid;
    uint8_t *v;
    size_t vl;
} first_row;

static int first_row_cb(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    first_row *f = arg;
    int64_t tid;
    (void)k, (void)kl;
    if (sq_row_table_id(v, vl, &tid) || tid != f->tid)
        return 0;
    f->v = malloc(vl ? vl : 1);
    if (f->v) {
        memcpy(f->v, v, vl);
        f->vl = vl;
    }
    return 1;
}

/* ADD COLUMN on a table with rows: SQLite checks the new column against the
 * rows it has (NOT NULL without a default, a non-constant default, CHECK), so
 * one of the table's rows goes into the twin first. (SQLite checks every row;
 * this checks one.) */
static int twin_row(msql *s, sq_txn *x, sq_table *t)
{
    uint8_t end[32];
    size_t el = 0;
    sq_key_succ(t->pfx, t->pfxlen, end, &el);
    first_row f = {t->id, NULL, 0};
    int rc = sq_scan_merged(s, x, t->pfx, t->pfxlen, end, el, first_row_cb, &f);
    if (rc || !f.v) {
        free(f.v);
        return rc;
    }
    sqlite3_value *vals[t->ncol > 0 ? t->ncol : 1];
    rc = sq_row_values(s, t, f.v, f.vl, vals);
    free(f.v);
    if (rc)
        return rc;
    sqlite3_str *q = sqlite3_str_new(s->scratch);
    char *qt = sq_quote(t->name);
    sqlite3_str_appendf(q, "INSERT INTO main.%s VALUES(", qt);
    sqlite3_free(qt);
    for (int i = 0; i < t->ncol; i++)
        sqlite3_str_appendf(q, "%s?%d", i ? "," : "", i + 1);
    sqlite3_str_appendall(q, ")");
    char *sql = sqlite3_str_finish(q);
    sqlite3_stmt *st = NULL;
    s->internal++;
    rc = sql ? sqlite3_prepare_v2(s->scratch, sql, -1, &st, NULL) : SQLITE_NOMEM;
    s->internal--;
    sqlite3_free(sql);
    for (int i = 0; !rc && i < t->ncol; i++)
        sqlite3_bind_value(st, i + 1, vals[i]);
    if (!rc && sqlite3_step(st) != SQLITE_DONE)
        rc = sq_fail_sqlite(s, s->scratch, SQLITE_ERROR);
    sqlite3_finalize(st);
    for (int i = 0; i < t->ncol; i++)
        sqlite3_value_free(vals[i]);
    return rc;
}

/* ALTER TABLE: SQLite rewrites the schema on the scratch database (with the
 * triggers put there for the occasion, so RENAME reaches their bodies too),
 * and every descriptor whose text changed is written back. Rows keep their
 * bytes: columns are stored by position, a table's id (its key prefix) does
 * not change with its name, and rows written before ADD COLUMN read the new
 * column's default. */
static int alter_table(ddl_run *r, meridian_txn *mt, sq_txn *x)
{
    msql *s = r->s;
    sq_ddl *d = r->d;
    sq_table *t = sq_cat_table(s, d->name);
    if (t && d->alter == 'C' && (t->parent || t->nchildren))
        for (int i = 0; i < t->npk; i++)
            if (sqlite3_stricmp(t->cols[t->pk[i]].name, d->col_old) == 0)
                return fn_fail(r, MSQL_ERROR,
                               "cannot rename a primary key column of an interleaved table (a "
                               "child's key columns are named as its parent's)");
    if (sq_exec_internal(s, s->scratch, "SAVEPOINT meridian_ddl"))
        return fn_fail_session(r);
    if (t && d->alter == 'A' && twin_row(s, x, t)) {
        scratch_undo(s);
        return fn_fail_session(r);
    }
    for (int i = 0; i < s->cat.ntriggers; i++) {
        s->internal++;
        sqlite3_exec(s->scratch, s->cat.triggers[i]->sql, NULL, NULL, NULL);
        s->internal--;
    }
    if (sq_exec_internal(s, s->scratch, d->create)) {
        scratch_undo(s);
        return fn_fail_session(r);
    }
    if (!t) {
        scratch_undo(s);
        return fn_fail(r, MSQL_ERROR, "ALTER TABLE needs one of Meridian's tables");
    }
    sqlite3_stmt *look = NULL;
    s->internal++;
    int rc = sqlite3_prepare_v2(s->scratch,
                                "SELECT sql, tbl_name FROM main.sqlite_schema WHERE type = ?1 AND "
                                "name = ?2 COLLATE NOCASE",
                                -1, &look, NULL);
    s->internal--;
    int mrc = MERIDIAN_OK;
    for (int i = 0; !rc && mrc == MERIDIAN_OK && i < s->cat.ndesc; i++) {
        json_t *j = json_loads(s->cat.desc[i].json, 0, NULL);
        const char *type = json_string_value(json_object_get(j, "type"));
        const char *name = json_string_value(json_object_get(j, "name"));
        if (!type || !name) {
            json_decref(j);
            continue;
        }
        int renamed =
            d->alter == 'T' && strcmp(type, "table") == 0 && sqlite3_stricmp(name, d->name) == 0;
        char *old_name = strdup(name);
        const char *now = renamed ? d->new_name : name;
        sqlite3_bind_text(look, 1, type, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(look, 2, now, -1, SQLITE_TRANSIENT);
        int changed = renamed;
        if (sqlite3_step(look) == SQLITE_ROW && sqlite3_column_type(look, 0) != SQLITE_NULL) {
            const char *nsql = (const char *)sqlite3_column_text(look, 0);
            const char *ntbl = (const char *)sqlite3_column_text(look, 1);
            if (strcmp(type, "table") == 0) {
                const char *oc = json_string_value(json_object_get(j, "create"));
                const char *os = json_string_value(json_object_get(j, "sql"));
                if (oc && os && strcmp(oc, nsql) != 0) {
                    /* keep what followed the SQLite part (INTERLEAVE IN PARENT ...) */
                    size_t ol = strlen(oc);
                    char *ns = sqlite3_mprintf("%s%s", nsql, strlen(os) >= ol ? os + ol : "");
                    json_object_set_new(j, "create", json_string(nsql));
                    json_object_set_new(j, "sql", json_string(ns ? ns : nsql));
                    sqlite3_free(ns);
                    changed = 1;
                }
                if (renamed)
                    json_object_set_new(j, "name", json_string(d->new_name));
            } else {
                const char *os = json_string_value(json_object_get(j, "sql"));
                const char *otbl = json_string_value(json_object_get(j, "table"));
                if (os && strcmp(os, nsql) != 0) {
                    json_object_set_new(j, "sql", json_string(nsql));
                    changed = 1;
                }
                if (otbl && ntbl && strcmp(otbl, ntbl) != 0) {
                    json_object_set_new(j, "table", json_string(ntbl));
                    changed = 1;
                }
            }
        }
        sqlite3_reset(look);
        if (changed) {
            if (renamed)
                mrc = del_desc(mt, old_name);
            if (mrc == MERIDIAN_OK)
                mrc = put_desc(mt, now, j);
        }
        free(old_name);
        json_decref(j);
    }
    sqlite3_finalize(look);
    scratch_undo(s);
    if (rc)
        return fn_fail(r, MSQL_ERROR, "cannot read the altered schema");
    if (mrc != MERIDIAN_OK) {
        sq_fail_meridian(s, mrc, "writing the catalog");
        return fn_fail_session(r);
    }
    r->changed = 1;
    return MERIDIAN_OK;
}

static int ddl_fn(meridian_txn *mt, void *arg)
{
    ddl_run *r = arg;
    msql *s = r->s;
    r->changed = 0;
    r->purge_id = r->purge_root = 0;
    r->purge_index = 0;
    s->pending = 0;
    sq_txn x = {.refs = 1, .t = mt, .rw = 1, .checked = 1, .serial = ++s->serial};
    sq_ver cur;
    if (sq_ver_read(s, mt, &cur))
        return fn_fail_session(r);
    /* (c): the record must be exactly our marker (with leases off: still
     * off, and no marker), else another schema change came between */
    if (r->nonce ? cur.nonce != r->nonce || cur.v != r->rec.v || cur.lease_ms != r->rec.lease_ms
                 : cur.nonce != 0 || cur.lease_ms != 0) {
        r->restart = 1;
        return fn_fail(r, MSQL_RETRY, "another schema change came between");
    }
    int64_t v = cur.v;
    if (v != s->cat.version && sq_cat_load(s, &x, v))
        return fn_fail_session(r);
    sq_wbuf_clear(s->wb);
    sq_txn *saved = s->tx;
    s->tx = &x;
    int rc;
    switch (r->d->op) {
    case D_CREATE_TABLE:
        rc = create_table(r, mt);
        break;
    case D_CREATE_VIEW:
        rc = create_view(r, mt);
        break;
    case D_CREATE_INDEX:
        rc = create_index(r, mt, &x);
        break;
    case D_CREATE_TRIGGER:
        rc = create_trigger(r, mt);
        break;
    case D_DROP_TRIGGER:
        rc = drop_trigger(r, mt);
        break;
    case D_ALTER:
        rc = alter_table(r, mt, &x);
        break;
    case D_SET_LEASE:
        rc = MERIDIAN_OK;
        r->changed = 1;
        break;
    default:
        rc = drop_object(r, mt);
    }
    if (rc == MERIDIAN_OK && sq_txn_flush(s))
        rc = fn_fail_session(r);
    s->tx = saved;
    sq_wbuf_clear(s->wb);
    if (rc == MERIDIAN_OK && (r->changed || r->nonce)) {
        /* the new version (or, for a change that changed nothing, the same
         * one) with the marker cleared */
        uint8_t k[2];
        sq_cat_key(k, SQ_CAT_VERSION);
        sq_ver nv = {.v = r->changed ? v + 1 : v,
                     .lease_ms = r->d->op == D_SET_LEASE ? r->d->lease_ms
                                 : cur.missing           ? SQ_LEASE_DEFAULT_MS
                                                         : cur.lease_ms};
        char buf[96];
        sq_ver_format(&nv, buf, sizeof buf);
        rc = put_text(mt, k, 2, buf);
        if (rc != MERIDIAN_OK) {
            sq_fail_meridian(s, rc, "writing the catalog version");
            rc = fn_fail_session(r);
        }
    }
    return rc;
}

/* Deletes what a dropped table or index left, in batches of their own
 * (leftovers after a failure are invisible: their ids are never reused). */
typedef struct purge_arg {
    sq_buf from, last;
    const uint8_t *end;
    size_t el;
    int64_t only_table; /* 0: every key of the range; else rows of this table */
    int got, rc;
    meridian_txn *t;
} purge_arg;

static int purge_cb(void *arg, const void *k, size_t kl, const void *v, size_t vl)
{
    purge_arg *a = arg;
    a->got++;
    a->last.len = 0;
    if (sq_buf_put(&a->last, k, kl)) {
        a->rc = MERIDIAN_NOMEM;
        return 1;
    }
    int64_t tid;
    if (a->only_table && (sq_row_table_id(v, vl, &tid) || tid != a->only_table))
        return 0;
    a->rc = meridian_delete(a->t, k, kl);
    return a->rc != MERIDIAN_OK;
}

static int purge_fn(meridian_txn *t, void *arg)
{
    purge_arg *a = arg;
    a->got = 0;
    a->rc = MERIDIAN_OK;
    a->t = t;
    int rc = meridian_scan(t, a->from.p, a->from.len, a->end, a->el, 1000, purge_cb, a);
    return rc != MERIDIAN_OK ? rc : a->rc;
}

static void purge(msql *s, int64_t prefix_id, int64_t only_table)
{
    purge_arg a = {0};
    uint8_t p = SQ_PFX_DATA, end[32];
    if (sq_buf_put(&a.from, &p, 1) || sq_key_append_int(&a.from, prefix_id, 0) ||
        !sq_key_succ(a.from.p, a.from.len, end, &a.el))
        goto out;
    a.end = end;
    a.only_table = only_table;
    for (;;) {
        if (meridian_run(s->db, s->retry_ms, purge_fn, &a, NULL) != MERIDIAN_OK)
            break;
        if (a.got < 1000)
            break;
        uint8_t z = 0;
        a.from.len = 0;
        if (sq_buf_put(&a.from, a.last.p, a.last.len) || sq_buf_put(&a.from, &z, 1))
            break;
    }
out:
    sq_buf_free(&a.from);
    sq_buf_free(&a.last);
}

/* (a) of a schema change under a lease: the marker "<V> <lease> pending
 * <nonce>", written over the record read under its lock. Another change's
 * marker is left alone (foreign) unless take_over (its change died). */
typedef struct mark_arg {
    msql *s;
    uint64_t nonce;
    int take_over;
    sq_ver rec;       /* what was read */
    uint64_t foreign; /* another change's marker found (nothing written) */
    int written;
} mark_arg;

static int mark_fn(meridian_txn *t, void *arg)
{
    mark_arg *a = arg;
    a->foreign = 0;
    a->written = 0;
    if (sq_ver_read(a->s, t, &a->rec))
        return MERIDIAN_ERROR;
    if (a->rec.lease_ms == 0)
        return MERIDIAN_OK; /* leases off (or a new catalog): no window to wait out */
    if (a->rec.nonce && !a->take_over) {
        a->foreign = a->rec.nonce;
        return MERIDIAN_OK;
    }
    sq_ver m = a->rec;
    m.nonce = a->nonce;
    char buf[96];
    sq_ver_format(&m, buf, sizeof buf);
    uint8_t k[2];
    sq_cat_key(k, SQ_CAT_VERSION);
    int rc = put_text(t, k, 2, buf);
    if (rc == MERIDIAN_OK)
        a->written = 1;
    return rc;
}

/* After a failure past (a): the record back to "<V> <lease>" if it still holds
 * our marker (best effort: a marker left behind costs sessions a version read
 * per transaction until the next schema change clears it). */
static int unmark_fn(meridian_txn *t, void *arg)
{
    mark_arg *a = arg;
    sq_ver cur;
    if (sq_ver_read(a->s, t, &cur))
        return MERIDIAN_ERROR;
    if (cur.nonce != a->nonce)
        return MERIDIAN_OK;
    cur.nonce = 0;
    char buf[96];
    sq_ver_format(&cur, buf, sizeof buf);
    uint8_t k[2];
    sq_cat_key(k, SQ_CAT_VERSION);
    return put_text(t, k, 2, buf);
}

/* A random pause of up to ms (contending schema changes spread out). */
static void jitter_ms(int64_t ms)
{
    if (ms > 0)
        sq_lease_sleep_ms((int64_t)(sq_lease_nonce() % (uint64_t)ms) + 1);
}

/* A failure of meridian_run (rc) as the session's code and message. */
static int run_failed(msql *s, int rc, const char *msg)
{
    int code;
    if (msg && (rc == MERIDIAN_ERROR || rc == MERIDIAN_NOMEM))
        code = MSQL_ERROR;
    else if (rc == MERIDIAN_UNKNOWN)
        code = MSQL_UNKNOWN;
    else if (rc == MERIDIAN_TIMEOUT || rc == MERIDIAN_UNAVAILABLE)
        code = strstr(meridian_errmsg(s->db), "last: aborted") ? MSQL_RETRY : MSQL_UNAVAILABLE;
    else if (rc == MERIDIAN_ABORTED)
        code = MSQL_RETRY;
    else
        code = MSQL_ERROR;
    const char *m =
        msg && (rc == MERIDIAN_ERROR || rc == MERIDIAN_NOMEM) ? msg : meridian_errmsg(s->db);
    free(s->errmsg);
    s->errmsg = strdup(code == MSQL_UNKNOWN ? "commit outcome unknown for a schema change: it "
                                              "may have been applied"
                                            : m);
    s->erroff = -1;
    return code;
}

/* A schema change (sql/README.md, "Schema leases"): (a) the marker, (b) the
 * wait until every later commit is above its timestamp + the lease, with the
 * marker still ours, (c) the change itself, which requires the marker and
 * clears it. Leases off: (c) alone, as before leases. */
int sq_ddl_run(msql *s, sq_ddl *d)
{
    if (d->op == D_NOOP)
        return MSQL_OK;
    ddl_run r = {s, d, 0, NULL, 0, 0, 0, 0, {0}, 0, 0};
    int64_t give_up = mr_monotonic_ns() + (int64_t)s->retry_ms * MR_NS_PER_MS;
    uint64_t seen_foreign = 0;
    int64_t foreign_since = 0;
    int rc;
    for (;;) {
        s->pending = 0;
        sqlite3_free(s->msg); /* run_failed tells mark_fn's own failure by it */
        s->msg = NULL;
        mark_arg ma = {s, sq_lease_nonce(), 0, {0}, 0, 0};
        int64_t m = 0;
        rc = meridian_run(s->db, s->retry_ms, mark_fn, &ma, &m);
        if (rc == MERIDIAN_OK && ma.foreign) {
            /* another change is waiting out the lease: let it finish; take its
             * place when its marker stays well past a lease (it died) */
            int64_t now = mr_monotonic_ns();
            if (ma.foreign != seen_foreign) {
                seen_foreign = ma.foreign;
                foreign_since = now;
            }
            int64_t lease_ns = ma.rec.lease_ms * MR_NS_PER_MS;
            if (now - foreign_since > 3 * lease_ns + 100 * MR_NS_PER_MS) {
                ma.take_over = 1;
                rc = meridian_run(s->db, s->retry_ms, mark_fn, &ma, &m);
            } else {
                if (now > give_up) {
                    free(s->errmsg);
                    s->errmsg = strdup("retryable: another schema change is in progress");
                    s->erroff = -1;
                    return MSQL_RETRY;
                }
                sq_lease_sleep_ms(ma.rec.lease_ms / 2);
                jitter_ms(ma.rec.lease_ms / 2 + 1);
                continue;
            }
        }
        if (rc != MERIDIAN_OK) {
            int code = run_failed(s, rc, s->msg);
            sq_cat_refresh(s);
            return code;
        }
        r.rec = ma.rec;
        r.nonce = ma.written ? ma.nonce : 0;
        if (r.nonce) {
            int ours = 0;
            if (sq_lease_wait(s, m, ma.rec.lease_ms, ma.nonce, &ours)) {
                int code = s->pending && s->pending != SQ_PEND_SCHEMA ? s->pending : MSQL_ERROR;
                free(s->errmsg);
                s->errmsg = strdup(s->msg ? s->msg : "waiting out the schema lease failed");
                s->erroff = -1;
                meridian_run(s->db, s->retry_ms, unmark_fn, &ma, NULL);
                return code;
            }
            if (!ours) {
                /* (b) another change replaced our marker: start again */
                if (mr_monotonic_ns() > give_up) {
                    free(s->errmsg);
                    s->errmsg = strdup("retryable: another schema change is in progress");
                    s->erroff = -1;
                    return MSQL_RETRY;
                }
                jitter_ms(ma.rec.lease_ms);
                continue;
            }
        }
        r.restart = 0;
        rc = meridian_run(s->db, s->retry_ms, ddl_fn, &r, NULL);
        if (r.restart && mr_monotonic_ns() <= give_up) {
            free(r.msg);
            r.msg = NULL;
            r.code = 0;
            jitter_ms(ma.rec.lease_ms);
            continue;
        }
        if (rc != MERIDIAN_OK) {
            int code = run_failed(s, rc, r.msg);
            if (r.msg && (rc == MERIDIAN_ERROR || rc == MERIDIAN_NOMEM) && r.code)
                code = r.code;
            free(r.msg);
            if (r.nonce) {
                char *keep = s->errmsg;
                s->errmsg = NULL;
                meridian_run(s->db, s->retry_ms, unmark_fn, &ma, NULL);
                free(s->errmsg);
                s->errmsg = keep;
            }
            /* the scratch database may hold the catalog the failed attempt read */
            sq_cat_refresh(s);
            return code;
        }
        break;
    }
    free(r.msg);
    int64_t pid = r.purge_id, proot = r.purge_root;
    int pidx = r.purge_index;
    /* Load what was committed. */
    if (sq_cat_refresh(s)) {
        free(s->errmsg);
        s->errmsg = strdup(s->msg ? s->msg : "reloading the catalog failed");
        return s->pending && s->pending != SQ_PEND_SCHEMA ? s->pending : MSQL_ERROR;
    }
    if (pid && pidx)
        purge(s, pid, 0);
    else if (pid && proot == pid)
        purge(s, pid, 0);
    else if (pid)
        purge(s, proot, pid);
    return MSQL_OK;
}

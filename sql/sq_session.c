/* sql/sq_session.c: the msql_* API (sql.h): statements and transactions.
 *
 * SQLite never sees a transaction statement: BEGIN, COMMIT, ROLLBACK,
 * SAVEPOINT, RELEASE and ROLLBACK TO are recognised (by SQLite's parser, via
 * the authorizer's SQLITE_TRANSACTION/SQLITE_SAVEPOINT, or by keyword for
 * BEGIN READ ONLY/READ WRITE, which SQLite does not know) and carried out
 * here, so to SQLite every statement is an autocommit one. That is what
 * sql-notes.md asks for: read-only transactions are invisible to virtual
 * tables, and the commit, whose failure (retryable, or outcome unknown) has no
 * SQLite code, is the session's. Each statement's writes are bracketed by the
 * virtual tables' xBegin/xCommit/xRollback (sq_vtab.c), which keeps or undoes
 * them in the write buffer; savepoints are marks in that buffer.
 *
 * Autocommit: a read-only statement reads in its own strong read-only
 * transaction; any other runs inside meridian_run (so a retryable abort is
 * retried with the first attempt's age) to completion, its rows (RETURNING)
 * buffered, and commits before the first row is handed out.
 *
 * DDL (CREATE/DROP/ALTER) goes to sq_ddl.c; SHOW statements become queries
 * of temp.meridian_schema. */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mr_util.h"
#include "sql/sq_int.h"
#include "sql/sq_lex.h"

enum { K_SQL, K_TXN, K_DDL, K_SHOW };
enum { TX_BEGIN, TX_COMMIT, TX_ROLLBACK, TX_SAVEPOINT, TX_RELEASE, TX_ROLLBACK_TO };

struct msql_stmt {
    msql *s;
    int kind;
    sqlite3_stmt *st;
    /* K_TXN */
    int txop;
    char *spname;
    int ro;
    meridian_bound bound;
    int64_t ns;
    /* K_DDL */
    sq_ddl *ddl;
    /* SHOW TABLETS FOR TABLE tablets */
    char *tablets;
    int setting; /* SHOW CLUSTER SETTING schema_lease */
    /* K_SQL */
    sq_dml dml;
    int started, finished;
    int64_t deadline; /* msql_set_statement_timeout's, for this run */
    sq_txn *rotx;     /* an autocommit read's own transaction */
    int returned;     /* rows handed out */
    /* rows of an autocommit write, buffered while it ran */
    sqlite3_value **rows;
    int nrows, caprows, ncols, rowi, buffered;
    int cur; /* the buffered row being shown + 1 */
};

/* ---- errors ---- */

int sq_fail(msql *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    sqlite3_free(s->msg);
    s->msg = m;
    if (code != MSQL_ERROR)
        s->pending = code;
    return code == MSQL_NOMEM ? SQLITE_NOMEM : SQLITE_ERROR;
}

int sq_fail_meridian(msql *s, int rc, const char *what)
{
    int code;
    switch (rc) {
    case MERIDIAN_ABORTED:
        code = MSQL_RETRY;
        break;
    case MERIDIAN_UNAVAILABLE:
    case MERIDIAN_TIMEOUT:
        code = MSQL_UNAVAILABLE;
        break;
    case MERIDIAN_UNKNOWN:
        code = MSQL_UNKNOWN;
        break;
    case MERIDIAN_NOMEM:
        code = MSQL_NOMEM;
        break;
    default:
        code = MSQL_ERROR;
    }
    const char *m = meridian_errmsg(s->db);
    const char *name = meridian_errstr(rc);
    if (m && *m && strncmp(m, name, strlen(name)) == 0)
        return sq_fail(s, code, "%s: %s", what, m); /* the message names the code itself */
    return sq_fail(s, code, "%s: %s%s%s", what, name, m && *m ? ": " : "", m ? m : "");
}

int sq_fail_sqlite(msql *s, sqlite3 *db, int rc)
{
    if (rc == SQLITE_NOMEM) {
        sq_fail(s, MSQL_NOMEM, "out of memory");
        return rc;
    }
    sq_fail(s, MSQL_ERROR, "%s", sqlite3_errmsg(db));
    return rc;
}

static int set_error(msql *s, int code, int offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int set_error(msql *s, int code, int offset, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    free(s->errmsg);
    s->errmsg = strdup(m ? m : "out of memory");
    sqlite3_free(m);
    s->erroff = offset;
    return code;
}

/* The error of a lower layer (s->pending, s->msg) as the session's. */
static int take_error(msql *s, int fallback)
{
    int code = s->pending && s->pending != SQ_PEND_SCHEMA ? s->pending : fallback;
    set_error(s, code, -1, "%s", s->msg ? s->msg : "error");
    return code;
}

static void clear_error(msql *s)
{
    free(s->errmsg);
    s->errmsg = NULL;
    s->erroff = -1;
    s->pending = 0;
    sqlite3_free(s->msg);
    s->msg = NULL;
}

const char *msql_errmsg(const msql *s)
{
    return s && s->errmsg ? s->errmsg : "";
}

int msql_error_offset(const msql *s)
{
    return s ? s->erroff : -1;
}

int msql_in_transaction(const msql *s)
{
    return s && s->explicit_txn;
}

int64_t msql_commit_ts(const msql *s)
{
    return s ? s->commit_ts : 0;
}

int64_t msql_commit_wait_ns(const msql *s)
{
    return s ? s->commit_wait_ns : 0;
}

uint64_t msql_last_txn_id(const msql *s)
{
    return s ? s->last_txn_id : 0;
}

uint64_t msql_rows_read(const msql *s)
{
    return s ? s->rows_read : 0;
}

void msql_set_retry_deadline(msql *s, int ms)
{
    if (s && ms >= 0)
        s->retry_ms = ms;
}

void msql_set_statement_timeout(msql *s, int ms)
{
    if (s && ms >= 0)
        s->stmt_timeout_ms = ms;
}

void msql_test_flags(msql *s, int flags)
{
    if (s)
        s->test_flags = flags;
}

void msql_lease_stats(const msql *s, uint64_t *refreshes, uint64_t *fallbacks)
{
    if (refreshes)
        *refreshes = s ? s->refreshes : 0;
    if (fallbacks)
        *fallbacks = s ? s->lease_fallbacks : 0;
}

void msql_interrupt(msql *s)
{
    if (s && s->conn)
        sqlite3_interrupt(s->conn);
}

/* SQLite's progress handler: non-zero stops the statement (SQLITE_INTERRUPT). */
static int progress(void *arg)
{
    msql *s = arg;
    return s->stmt_deadline && mr_monotonic_ns() > s->stmt_deadline;
}

/* ---- helpers ---- */

char *sq_lower(const char *name)
{
    char *p = strdup(name);
    for (char *q = p; q && *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q += 32;
    return p;
}

char *sq_quote(const char *name)
{
    return sqlite3_mprintf("\"%w\"", name);
}

int sq_exec_internal(msql *s, sqlite3 *db, const char *sql)
{
    s->internal++;
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    s->internal--;
    if (rc) {
        if (rc == SQLITE_NOMEM)
            sq_fail(s, MSQL_NOMEM, "out of memory");
        else
            sq_fail(s, MSQL_ERROR, "%s", err ? err : sqlite3_errmsg(db));
    }
    sqlite3_free(err);
    return rc;
}

/* What the authorizer saw while one statement was prepared. */
typedef struct auth_info {
    int txn, savepoint, ddl;
    char *op;   /* BEGIN, COMMIT, ROLLBACK, RELEASE */
    char *name; /* savepoint name */
} auth_info;

static int authorizer(void *arg, int op, const char *a, const char *b, const char *db,
                      const char *trig)
{
    msql *s = arg;
    (void)trig;
    if (s->internal)
        return SQLITE_OK;
    auth_info *ai = s->auth; /* set by prepare_sql while preparing */
    switch (op) {
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
        if (ai) {
            if (op == SQLITE_TRANSACTION)
                ai->txn = 1;
            else
                ai->savepoint = 1;
            free(ai->op);
            ai->op = a ? strdup(a) : NULL;
            free(ai->name);
            ai->name = (op == SQLITE_SAVEPOINT && b) ? strdup(b) : NULL;
        }
        return SQLITE_OK;
    case SQLITE_CREATE_INDEX:
    case SQLITE_CREATE_TABLE:
    case SQLITE_CREATE_TEMP_INDEX:
    case SQLITE_CREATE_TEMP_TABLE:
    case SQLITE_CREATE_TEMP_TRIGGER:
    case SQLITE_CREATE_TEMP_VIEW:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_CREATE_VIEW:
    case SQLITE_DROP_INDEX:
    case SQLITE_DROP_TABLE:
    case SQLITE_DROP_TEMP_INDEX:
    case SQLITE_DROP_TEMP_TABLE:
    case SQLITE_DROP_TEMP_TRIGGER:
    case SQLITE_DROP_TEMP_VIEW:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_DROP_VIEW:
    case SQLITE_ALTER_TABLE:
    case SQLITE_CREATE_VTABLE:
    case SQLITE_DROP_VTABLE:
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
    case SQLITE_REINDEX:
    case SQLITE_ANALYZE:
        if (ai)
            ai->ddl = 1;
        return SQLITE_DENY;
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
        if (db && strcmp(db, "temp") == 0 && a && sqlite3_stricmp(a, "meridian_schema") == 0)
            return SQLITE_DENY;
        return SQLITE_OK;
    default:
        return SQLITE_OK;
    }
}

static void fn_commit_ts(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    msql *s = sqlite3_user_data(ctx);
    if (s->commit_ts)
        sqlite3_result_int64(ctx, s->commit_ts);
    else
        sqlite3_result_null(ctx);
}

int msql_open(meridian *db, msql **out)
{
    *out = NULL;
    if (!db)
        return MSQL_ERROR;
    msql *s = calloc(1, sizeof *s);
    if (!s)
        return MSQL_NOMEM;
    *out = s;
    s->db = db;
    s->erroff = -1;
    s->retry_ms = 30000;
    s->cat.version = -1;
    s->win_v = -1;
    s->wb = sq_wbuf_new();
    int rc =
        sqlite3_open_v2(":memory:", &s->conn,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc || !s->wb) {
        set_error(s, MSQL_NOMEM, -1, "cannot open the session's database");
        return MSQL_NOMEM;
    }
    sqlite3_extended_result_codes(s->conn, 0);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->conn, "SELECT NULL", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        s->null_value = sqlite3_value_dup(sqlite3_column_value(st, 0));
    sqlite3_finalize(st);
    rc = sq_vtab_register(s);
    if (!rc)
        rc = sqlite3_create_function(s->conn, "meridian_commit_ts", 0, SQLITE_UTF8, s, fn_commit_ts,
                                     NULL, NULL);
    if (!rc)
        rc = sq_trigger_register(s);
    if (!rc)
        rc = sq_show_register(s);
    if (!rc)
        rc = sq_exec_internal(s, s->conn,
                              "CREATE TEMP TABLE meridian_schema(type TEXT, name TEXT, "
                              "tbl_name TEXT, sql TEXT)");
    if (rc || !s->null_value) {
        set_error(s, MSQL_NOMEM, -1, "cannot set up the session");
        return MSQL_NOMEM;
    }
    sqlite3_set_authorizer(s->conn, authorizer, s);
    sqlite3_progress_handler(s->conn, 1000, progress, s);
    /* An empty catalog until the store says otherwise. */
    if (sq_cat_rebuild(s))
        return take_error(s, MSQL_ERROR);
    if (sq_cat_refresh(s)) {
        int code = take_error(s, MSQL_ERROR);
        return code;
    }
    return MSQL_OK;
}

void msql_close(msql *s)
{
    if (!s)
        return;
    sq_txn_abandon(s);
    if (s->conn)
        sqlite3_close_v2(s->conn);
    sq_cat_free(s);
    sqlite3_finalize(s->st_cast_text);
    if (s->scratch)
        sqlite3_close(s->scratch);
    sqlite3_value_free(s->null_value);
    sq_wbuf_free(s->wb);
    free(s->sp);
    free(s->errmsg);
    sqlite3_free(s->msg);
    free(s);
}

/* ---- preparing ---- */

static msql_stmt *stmt_new(msql *s, int kind)
{
    msql_stmt *st = calloc(1, sizeof *st);
    if (st) {
        st->s = s;
        st->kind = kind;
    }
    return st;
}

/* BEGIN [TRANSACTION] READ ONLY [WITH STRONG | WITH EXACT STALENESS 'd' |
 * WITH MAX STALENESS 'd' | AS OF TIMESTAMP n] | BEGIN [TRANSACTION] READ WRITE */
static int parse_begin(msql *s, const char *sql, const char *p, const char *end, msql_stmt *st,
                       const char **tail)
{
    sq_tok t;
    p = sq_lex(p, end, &t); /* BEGIN */
    p = sq_lex(p, end, &t);
    if (sq_tok_is(&t, "TRANSACTION"))
        p = sq_lex(p, end, &t);
    /* t is READ */
    p = sq_lex(p, end, &t);
    st->txop = TX_BEGIN;
    st->bound = MERIDIAN_STRONG;
    if (sq_tok_is(&t, "WRITE")) {
        st->ro = 0;
        p = sq_lex(p, end, &t);
    } else if (sq_tok_is(&t, "ONLY")) {
        st->ro = 1;
        p = sq_lex(p, end, &t);
        if (sq_tok_is(&t, "WITH")) {
            p = sq_lex(p, end, &t);
            if (sq_tok_is(&t, "STRONG")) {
                p = sq_lex(p, end, &t);
            } else if (sq_tok_is(&t, "EXACT") || sq_tok_is(&t, "MAX")) {
                st->bound =
                    sq_tok_is(&t, "EXACT") ? MERIDIAN_EXACT_STALENESS : MERIDIAN_MAX_STALENESS;
                p = sq_lex(p, end, &t);
                if (!sq_tok_is(&t, "STALENESS"))
                    goto syntax;
                p = sq_lex(p, end, &t);
                char *d = sq_tok_string(&t);
                if (!d)
                    goto syntax;
                int64_t ns;
                int bad = mr_parse_duration(d, &ns) != 0 || ns < 0;
                free(d);
                if (bad)
                    return set_error(s, MSQL_ERROR, (int)(t.p - sql),
                                     "bad staleness %.*s: a duration such as '10s' or '250ms'", t.n,
                                     t.p);
                st->ns = ns;
                p = sq_lex(p, end, &t);
            } else {
                goto syntax;
            }
        } else if (sq_tok_is(&t, "AS")) {
            p = sq_lex(p, end, &t);
            if (!sq_tok_is(&t, "OF"))
                goto syntax;
            p = sq_lex(p, end, &t);
            if (!sq_tok_is(&t, "TIMESTAMP"))
                goto syntax;
            p = sq_lex(p, end, &t);
            long long n;
            char num[32];
            if (t.type != SQ_TK_NUMBER || t.n >= (int)sizeof num)
                goto syntax;
            memcpy(num, t.p, (size_t)t.n);
            num[t.n] = 0;
            if (mr_parse_int(num, 1, INT64_MAX, &n) != 0)
                return set_error(s, MSQL_ERROR, (int)(t.p - sql),
                                 "bad timestamp %s: nanoseconds since the epoch", num);
            st->bound = MERIDIAN_AT_TIMESTAMP;
            st->ns = n;
            p = sq_lex(p, end, &t);
        }
    } else {
        goto syntax;
    }
    if (t.type != SQ_TK_EOF && !sq_tok_punct(&t, ';'))
        goto syntax;
    *tail = p;
    return MSQL_OK;
syntax:
    if (t.type == SQ_TK_EOF)
        return set_error(s, MSQL_ERROR, -1, "incomplete input");
    return set_error(s, MSQL_ERROR, (int)(t.p - sql), "near \"%.*s\": syntax error", t.n, t.p);
}

/* SHOW reads the session's catalog: bring it up to date first. A statement of
 * the session still running keeps the catalog as it is (SHOW shows that). */
static int show_refresh(msql *s)
{
    if (sq_cat_refresh(s) == SQLITE_OK)
        return MSQL_OK;
    if (s->pending == MSQL_RETRY) {
        s->pending = 0;
        return MSQL_OK;
    }
    return take_error(s, MSQL_ERROR);
}

static int parse_show(msql *s, const char *sql, const char *p, const char *end, msql_stmt *st,
                      const char **tail)
{
    sq_tok t;
    int rc0 = show_refresh(s);
    if (rc0 != MSQL_OK)
        return rc0;
    p = sq_lex(p, end, &t); /* SHOW */
    p = sq_lex(p, end, &t);
    const char *q = NULL;
    char *name = NULL;
    if (sq_tok_is(&t, "TABLES") || sq_tok_is(&t, "VIEWS")) {
        q = sq_tok_is(&t, "TABLES")
                ? "SELECT name AS \"Table\" FROM temp.meridian_schema WHERE type = 'table' "
                  "ORDER BY name"
                : "SELECT name AS \"View\" FROM temp.meridian_schema WHERE type = 'view' "
                  "ORDER BY name";
        p = sq_lex(p, end, &t);
    } else if (sq_tok_is(&t, "CREATE")) {
        p = sq_lex(p, end, &t);
        int view = sq_tok_is(&t, "VIEW");
        if (!view && !sq_tok_is(&t, "TABLE"))
            goto syntax;
        p = sq_lex(p, end, &t);
        name = sq_tok_name(&t);
        if (!name)
            goto syntax;
        if (view ? !sq_cat_view(s, name) : !sq_cat_table(s, name) && !sq_cat_view(s, name)) {
            int off = (int)(t.p - sql);
            set_error(s, MSQL_ERROR, off, "no such %s: %s", view ? "view" : "table", name);
            free(name);
            return MSQL_ERROR;
        }
        q = view ? "SELECT name AS \"View\", sql AS \"Create View\" FROM temp.meridian_schema "
                   "WHERE type = 'view' AND name = ?1 COLLATE NOCASE"
                 : "SELECT name AS \"Table\", sql AS \"Create Table\" FROM temp.meridian_schema "
                   "WHERE type IN ('table', 'view') AND name = ?1 COLLATE NOCASE";
        p = sq_lex(p, end, &t);
    } else if (sq_tok_is(&t, "INDEXES") || sq_tok_is(&t, "INDEX")) {
        p = sq_lex(p, end, &t);
        if (!sq_tok_is(&t, "FROM") && !sq_tok_is(&t, "ON"))
            goto syntax;
        p = sq_lex(p, end, &t);
        name = sq_tok_name(&t);
        if (!name)
            goto syntax;
        if (!sq_cat_table(s, name)) {
            set_error(s, MSQL_ERROR, (int)(t.p - sql), "no such table: %s", name);
            free(name);
            return MSQL_ERROR;
        }
        q = "SELECT name AS \"Index\", sql AS \"Create Index\" FROM temp.meridian_schema "
            "WHERE type = 'index' AND tbl_name = ?1 COLLATE NOCASE ORDER BY name";
        p = sq_lex(p, end, &t);
    } else if (sq_tok_is(&t, "CLUSTER")) {
        p = sq_lex(p, end, &t);
        if (!sq_tok_is(&t, "SETTING"))
            goto syntax;
        p = sq_lex(p, end, &t);
        if (!sq_tok_is(&t, "schema_lease")) {
            if (t.type == SQ_TK_EOF)
                goto syntax;
            return set_error(s, MSQL_ERROR, (int)(t.p - sql),
                             "unknown cluster setting %.*s (there is one: schema_lease)", t.n, t.p);
        }
        st->setting = 1;
        q = "SELECT NULL AS schema_lease";
        p = sq_lex(p, end, &t);
    } else if (sq_tok_is(&t, "TABLETS")) {
        p = sq_lex(p, end, &t);
        if (!sq_tok_is(&t, "FOR"))
            goto syntax;
        p = sq_lex(p, end, &t);
        if (!sq_tok_is(&t, "TABLE"))
            goto syntax;
        p = sq_lex(p, end, &t);
        name = sq_tok_name(&t);
        if (!name)
            goto syntax;
        if (!sq_cat_table(s, name)) {
            set_error(s, MSQL_ERROR, (int)(t.p - sql), "no such table: %s", name);
            free(name);
            return MSQL_ERROR;
        }
        st->tablets = name;
        name = NULL;
        q = "SELECT NULL AS \"Object\", NULL AS \"Start\", NULL AS \"End\", NULL AS "
            "\"Group\", NULL AS \"Leader\", NULL AS \"Replicas\"";
        p = sq_lex(p, end, &t);
    } else {
        goto syntax;
    }
    if (t.type != SQ_TK_EOF && !sq_tok_punct(&t, ';')) {
        free(name);
        goto syntax;
    }
    s->internal++;
    int rc = sqlite3_prepare_v2(s->conn, q, -1, &st->st, NULL);
    s->internal--;
    if (!rc && name)
        sqlite3_bind_text(st->st, 1, name, -1, SQLITE_TRANSIENT);
    free(name);
    if (rc)
        return set_error(s, MSQL_ERROR, -1, "%s", sqlite3_errmsg(s->conn));
    *tail = p;
    return MSQL_OK;
syntax:
    if (t.type == SQ_TK_EOF)
        return set_error(s, MSQL_ERROR, -1, "incomplete input");
    return set_error(s, MSQL_ERROR, (int)(t.p - sql), "near \"%.*s\": syntax error", t.n, t.p);
}

static int is_missing_object(const char *msg)
{
    return strncmp(msg, "no such table", 13) == 0 || strncmp(msg, "no such view", 12) == 0;
}

/* 1 if text (NULL: none) holds a parameter token. */
static int has_param(const char *text)
{
    if (!text)
        return 0;
    const char *p = text, *end = text + strlen(text);
    sq_tok t;
    do {
        p = sq_lex(p, end, &t);
        if (t.type == SQ_TK_PARAM)
            return 1;
    } while (t.type != SQ_TK_EOF && t.type != SQ_TK_BAD);
    return 0;
}

static int prepare_sql(msql *s, const char *sql, const char *start, const char *end, msql_stmt *st,
                       const char **tail)
{
    auth_info ai = {0};
    char *rewritten = NULL;
    const char *orig_tail = end;
    int drc = sq_dml_parse(s, sql, start, end, &st->dml, &rewritten, &orig_tail);
    if (drc != MSQL_OK)
        return drc;
    const char *text = rewritten ? rewritten : start;
    const char *text_end = rewritten ? rewritten + strlen(rewritten) : end;
    for (int attempt = 0;; attempt++) {
        memset(&ai, 0, sizeof ai);
        s->auth = &ai;
        const char *t = NULL;
        int rc = sqlite3_prepare_v3(s->conn, text, (int)(text_end - text), 0, &st->st, &t);
        s->auth = NULL;
        if (rc == SQLITE_OK) {
            *tail = rewritten ? orig_tail : t;
            break;
        }
        int off = sqlite3_error_offset(s->conn);
        const char *m = sqlite3_errmsg(s->conn);
        if (attempt == 0 && is_missing_object(m)) {
            /* Maybe another session created it since we loaded the catalog. */
            int64_t before = s->cat.version;
            if (sq_cat_refresh(s) == SQLITE_OK && s->cat.version != before) {
                free(ai.op);
                free(ai.name);
                continue;
            }
            if (s->pending && s->pending != SQ_PEND_SCHEMA && s->msg) {
                /* the catalog could not be loaded (unavailable, a busy statement) */
                int code = set_error(s, s->pending, -1, "%s", s->msg);
                free(ai.op);
                free(ai.name);
                free(rewritten);
                return code;
            }
            s->pending = 0;
            m = sqlite3_errmsg(s->conn);
            /* the refresh ran statements: prepare again for the message */
            sqlite3_stmt *again = NULL;
            sqlite3_prepare_v3(s->conn, text, (int)(text_end - text), 0, &again, NULL);
            sqlite3_finalize(again);
            m = sqlite3_errmsg(s->conn);
            off = sqlite3_error_offset(s->conn);
        }
        if (ai.ddl && strstr(m, "not authorized"))
            set_error(s, MSQL_ERROR, -1, "this statement is not supported in a Meridian session");
        else
            set_error(s, rc == SQLITE_NOMEM ? MSQL_NOMEM : MSQL_ERROR,
                      off >= 0 ? (int)(start - sql) + off : -1, "%s", m);
        free(ai.op);
        free(ai.name);
        free(rewritten);
        return s->errmsg ? (rc == SQLITE_NOMEM ? MSQL_NOMEM : MSQL_ERROR) : MSQL_ERROR;
    }
    free(rewritten);
    if (ai.txn || ai.savepoint) {
        st->kind = K_TXN;
        const char *op = ai.op ? ai.op : "";
        if (ai.txn)
            st->txop = strcmp(op, "BEGIN") == 0    ? TX_BEGIN
                       : strcmp(op, "COMMIT") == 0 ? TX_COMMIT
                                                   : TX_ROLLBACK;
        else
            st->txop = strcmp(op, "BEGIN") == 0     ? TX_SAVEPOINT
                       : strcmp(op, "RELEASE") == 0 ? TX_RELEASE
                                                    : TX_ROLLBACK_TO;
        st->spname = ai.name;
        ai.name = NULL;
        st->ro = 0;
        sqlite3_finalize(st->st);
        st->st = NULL;
    } else if (st->st) {
        if (has_param(st->dml.set_text) || has_param(st->dml.upd_where) ||
            has_param(st->dml.ret_text)) {
            /* the session runs these clauses as statements of its own (sq_dml.c), whose
             * parameters are the row's key and the excluded values */
            free(ai.op);
            free(ai.name);
            return set_error(s, MSQL_ERROR, -1,
                             "parameters are not supported in ON CONFLICT DO UPDATE or RETURNING "
                             "(bind them in the statement's other clauses)");
        }
        int r = sq_dml_prepare(s, &st->dml);
        if (r != MSQL_OK) {
            free(ai.op);
            free(ai.name);
            return r;
        }
    }
    free(ai.op);
    free(ai.name);
    return MSQL_OK;
}

int msql_prepare(msql *s, const char *sql, int len, msql_stmt **out, const char **tail)
{
    *out = NULL;
    if (!s || !sql)
        return MSQL_ERROR;
    clear_error(s);
    const char *end = sql + (len < 0 ? (int)strlen(sql) : len);
    sq_tok t1, t2, t3;
    const char *p = sq_lex(sql, end, &t1);
    const char *dummy;
    if (!tail)
        tail = &dummy;
    /* blanks, comments and lone semicolons */
    while (sq_tok_punct(&t1, ';'))
        p = sq_lex(p, end, &t1);
    if (t1.type == SQ_TK_EOF) {
        *tail = end;
        return MSQL_OK;
    }
    const char *start = t1.p;
    sq_lex(sq_lex(p, end, &t2), end, &t3);
    msql_stmt *st = stmt_new(s, K_SQL);
    if (!st)
        return set_error(s, MSQL_NOMEM, -1, "out of memory");
    int rc;
    if (sq_tok_is(&t1, "BEGIN") &&
        (sq_tok_is(&t2, "READ") || (sq_tok_is(&t2, "TRANSACTION") && sq_tok_is(&t3, "READ")))) {
        st->kind = K_TXN;
        rc = parse_begin(s, sql, start, end, st, tail);
    } else if (sq_tok_is(&t1, "SHOW")) {
        st->kind = K_SHOW;
        rc = parse_show(s, sql, start, end, st, tail);
    } else if (sq_tok_is(&t1, "CREATE") || sq_tok_is(&t1, "DROP") || sq_tok_is(&t1, "ALTER") ||
               sq_tok_is(&t1, "REINDEX") || (sq_tok_is(&t1, "SET") && sq_tok_is(&t2, "CLUSTER"))) {
        st->kind = K_DDL;
        int r = MSQL_OK;
        st->ddl = sq_ddl_prepare(s, start, (int)(end - start), tail, &r);
        if (!st->ddl && r == MSQL_ERROR && s->errmsg && strncmp(s->errmsg, "no such ", 8) == 0) {
            /* Maybe another session made it since we loaded the catalog. */
            int64_t before = s->cat.version;
            if (sq_cat_refresh(s) == SQLITE_OK && s->cat.version != before) {
                r = MSQL_OK;
                st->ddl = sq_ddl_prepare(s, start, (int)(end - start), tail, &r);
            }
        }
        if (st->ddl) {
            rc = MSQL_OK;
        } else {
            rc = r ? r : MSQL_ERROR;
            if (s->erroff >= 0)
                s->erroff += (int)(start - sql);
        }
    } else {
        rc = prepare_sql(s, sql, start, end, st, tail);
    }
    if (rc != MSQL_OK) {
        msql_finalize(st);
        return rc;
    }
    *out = st;
    return MSQL_OK;
}

/* ---- stepping ---- */

static void rows_free(msql_stmt *st)
{
    for (int i = 0; i < st->nrows * st->ncols; i++)
        sqlite3_value_free(st->rows[i]);
    free(st->rows);
    st->rows = NULL;
    st->nrows = st->caprows = st->rowi = st->cur = 0;
    st->buffered = 0;
}

static int rows_add_from(msql_stmt *st, sqlite3_stmt *src)
{
    int n = st->ncols;
    if (st->nrows == st->caprows) {
        int cap = st->caprows ? st->caprows * 2 : 16;
        sqlite3_value **r = realloc(st->rows, (size_t)cap * (size_t)(n ? n : 1) * sizeof *r);
        if (!r)
            return SQLITE_NOMEM;
        st->rows = r;
        st->caprows = cap;
    }
    for (int i = 0; i < n; i++) {
        sqlite3_value *v = sqlite3_value_dup(sqlite3_column_value(src, i));
        if (!v) {
            for (int j = 0; j < i; j++)
                sqlite3_value_free(st->rows[st->nrows * n + j]);
            return SQLITE_NOMEM;
        }
        st->rows[st->nrows * n + i] = v;
    }
    st->nrows++;
    return SQLITE_OK;
}

static int rows_add(msql_stmt *st)
{
    return rows_add_from(st, st->st);
}

/* RETURNING's rows, as the virtual table writes them (sq_dml_return). */
static int emit_row(void *arg, sqlite3_stmt *row)
{
    msql_stmt *st = arg;
    if (rows_add_from(st, row))
        return sq_fail(st->s, MSQL_NOMEM, "out of memory");
    return SQLITE_OK;
}

/* The statement's result columns: RETURNING's, else SQLite's. */
static sqlite3_stmt *result_stmt(msql_stmt *st)
{
    return st->dml.ret ? st->dml.ret : st->st;
}

static void end_ro(msql_stmt *st)
{
    if (st->rotx) {
        if (st->rotx->t)
            meridian_rollback(st->rotx->t);
        st->rotx->t = NULL;
        sq_txn_unref(st->rotx);
        st->rotx = NULL;
    }
}

/* After a failed sqlite3_step: the session's code, message, and the
 * transaction's fate. */
static int step_error(msql_stmt *st, int rc)
{
    msql *s = st->s;
    int code = rc == SQLITE_NOMEM ? MSQL_NOMEM : MSQL_ERROR;
    if (s->pending && s->pending != SQ_PEND_SCHEMA)
        code = s->pending;
    /* a failed catalog reload says why itself; anything else as SQLite tells it */
    set_error(s, code, -1, "%s", s->use_msg && s->msg ? s->msg : sqlite3_errmsg(s->conn));
    s->use_msg = 0;
    if (s->explicit_txn && (code == MSQL_RETRY || code == MSQL_UNAVAILABLE ||
                            code == MSQL_UNKNOWN || s->rollback_all)) {
        /* the transaction is over: libmeridian doomed it, or OR ROLLBACK */
        sq_txn_abandon(s);
        s->explicit_txn = 0;
    }
    return code;
}

static int reload_through(msql *s, sq_txn *x)
{
    int64_t v;
    int rc = sq_txn_read_version(s, x, &v);
    if (!rc)
        rc = sq_cat_load(s, x, v);
    if (!rc)
        x->checked = 1;
    return rc;
}

/* One sqlite3_step of a statement that reads or writes through s->tx,
 * reloading the catalog and starting over (at most a few times) when the
 * transaction's first read finds a newer one and no row was returned yet. */
static int step_once(msql_stmt *st)
{
    msql *s = st->s;
    for (int attempt = 0;; attempt++) {
        s->pending = 0;
        s->stmt_kept = 0;
        s->rollback_all = 0;
        if (s->tx && s->tx->rw)
            s->stmt_mark = sq_wbuf_mark(s->wb);
        s->dml = &st->dml;
        s->stmt_deadline = st->deadline;
        int rc = sqlite3_step(st->st);
        s->stmt_deadline = 0;
        s->dml = NULL;
        if (rc == SQLITE_INTERRUPT && st->deadline && mr_monotonic_ns() > st->deadline) {
            sq_fail(s, MSQL_ERROR, "interrupted: the statement ran over %d ms", s->stmt_timeout_ms);
            s->use_msg = 1;
        }
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            return rc;
        if (s->pending == SQ_PEND_SCHEMA && st->returned == 0 && attempt < 3 && s->tx && s->tx->t) {
            sqlite3_reset(st->st);
            if (reload_through(s, s->tx) == SQLITE_OK)
                continue;
            s->use_msg = 1;
        }
        return rc;
    }
}

typedef struct run_arg {
    msql_stmt *st;
    int attempts;
    int deadline_used; /* the last attempt committed with the lease's deadline */
    int sql_error;     /* the statement failed (not the store) */
    int deferred;      /* OR FAIL: rows kept and committed, the error reported after */
    int code;
    char *msg;
} run_arg;

static int run_fn(meridian_txn *t, void *arg)
{
    run_arg *a = arg;
    msql_stmt *st = a->st;
    msql *s = st->s;
    sq_txn *x = calloc(1, sizeof *x);
    if (!x)
        return MERIDIAN_NOMEM;
    x->refs = 1;
    x->t = t;
    x->rw = 1;
    x->serial = ++s->serial;
    if (a->attempts++ > 0 && a->deadline_used && !(s->test_flags & MSQL_TEST_NO_REFRESH)) {
        /* the last attempt may have missed its deadline: a window further on */
        s->pending = 0;
        if (sq_lease_refresh(s, 0) != SQLITE_OK)
            s->pending = 0;
    }
    a->deadline_used = 0;
    s->tx = x;
    s->last_txn_id = meridian_txn_id(t);
    sq_wbuf_clear(s->wb);
    s->stmt_mark = 0;
    rows_free(st);
    st->ncols = sqlite3_column_count(result_stmt(st));
    st->dml.emit = emit_row;
    st->dml.emit_arg = st;
    a->sql_error = a->deferred = 0;
    free(a->msg);
    a->msg = NULL;
    sqlite3_reset(st->st);
    int rc;
    for (;;) {
        rc = step_once(st);
        if (rc != SQLITE_ROW)
            break;
        if (rows_add(st)) {
            rc = SQLITE_NOMEM;
            sq_fail(s, MSQL_NOMEM, "out of memory");
            break;
        }
    }
    int out = MERIDIAN_OK;
    if (rc != SQLITE_DONE) {
        int code = rc == SQLITE_NOMEM ? MSQL_NOMEM : MSQL_ERROR;
        if (s->pending && s->pending != SQ_PEND_SCHEMA)
            code = s->pending;
        a->code = code;
        a->msg = strdup(s->use_msg && s->msg ? s->msg : sqlite3_errmsg(s->conn));
        s->use_msg = 0;
        sqlite3_reset(st->st);
        if (code == MSQL_RETRY)
            out = MERIDIAN_ABORTED;
        else if (code == MSQL_UNAVAILABLE)
            out = MERIDIAN_UNAVAILABLE;
        else if (s->stmt_kept && code == MSQL_ERROR)
            a->deferred = 1; /* OR FAIL: SQLite kept the rows before the failure */
        else {
            a->sql_error = 1;
            out = MERIDIAN_ERROR;
        }
    } else {
        sqlite3_reset(st->st);
    }
    if (out == MERIDIAN_OK && (sq_lease_commit(s, x) || sq_txn_flush(s))) {
        a->code = s->pending ? s->pending : MSQL_ERROR;
        free(a->msg);
        a->msg = strdup(s->msg ? s->msg : "write failed");
        out = a->code == MSQL_RETRY         ? MERIDIAN_ABORTED
              : a->code == MSQL_UNAVAILABLE ? MERIDIAN_UNAVAILABLE
                                            : MERIDIAN_ERROR;
        a->sql_error = out == MERIDIAN_ERROR;
    }
    a->deadline_used = x->deadline_set;
    s->tx = NULL;
    x->t = NULL; /* meridian_run commits or rolls it back */
    sq_txn_unref(x);
    sq_wbuf_clear(s->wb);
    return out;
}

static int step_autocommit_write(msql_stmt *st)
{
    msql *s = st->s;
    run_arg a = {st, 0, 0, 0, 0, 0, NULL};
    int64_t ts = 0;
    s->in_run = 1;
    int rc = meridian_run(s->db, s->retry_ms, run_fn, &a, &ts);
    s->in_run = 0;
    st->buffered = 1;
    int code;
    if (rc == MERIDIAN_OK) {
        if (ts > 0) {
            s->commit_ts = ts;
            s->commit_wait_ns = meridian_commit_wait_ns(s->db);
        }
        if (a.deferred) {
            code = set_error(s, a.code, -1, "%s", a.msg ? a.msg : "error");
            free(a.msg);
            rows_free(st);
            st->buffered = 1;
            return code;
        }
        free(a.msg);
        return MSQL_OK;
    }
    rows_free(st);
    st->buffered = 1;
    if (a.sql_error) {
        code = set_error(s, a.code ? a.code : MSQL_ERROR, -1, "%s", a.msg ? a.msg : "error");
    } else if (rc == MERIDIAN_UNKNOWN) {
        code = set_error(s, MSQL_UNKNOWN, -1,
                         "commit outcome unknown for transaction %llu: it may have committed "
                         "(`meridian op status %llu` tells): %s",
                         (unsigned long long)s->last_txn_id, (unsigned long long)s->last_txn_id,
                         meridian_errmsg(s->db));
    } else if (rc == MERIDIAN_TIMEOUT) {
        const char *m = meridian_errmsg(s->db);
        int unavail = strstr(m, "last: unavailable") != NULL;
        code = set_error(s, unavail ? MSQL_UNAVAILABLE : MSQL_RETRY, -1, "%s%s",
                         unavail ? "" : "retryable: ", m);
    } else if (rc == MERIDIAN_ABORTED) {
        code = set_error(s, MSQL_RETRY, -1, "retryable: %s", meridian_errmsg(s->db));
    } else if (rc == MERIDIAN_UNAVAILABLE) {
        code = set_error(s, MSQL_UNAVAILABLE, -1, "%s", meridian_errmsg(s->db));
    } else if (rc == MERIDIAN_NOMEM) {
        code = set_error(s, MSQL_NOMEM, -1, "out of memory");
    } else {
        code = set_error(s, MSQL_ERROR, -1, "%s%s%s", a.msg ? a.msg : "", a.msg ? ": " : "",
                         meridian_errmsg(s->db));
    }
    free(a.msg);
    return code;
}

/* SHOW CLUSTER SETTING schema_lease: the record's lease, read now (a new
 * catalog: the lease its first schema change writes). */
static int show_setting(msql_stmt *st)
{
    msql *s = st->s;
    meridian_txn *t = NULL;
    int rc = meridian_begin_ro(s->db, MERIDIAN_STRONG, 0, &t);
    if (rc != MERIDIAN_OK)
        return sq_fail_meridian(s, rc, "reading the catalog version");
    sq_ver r;
    rc = sq_ver_read(s, t, &r);
    meridian_rollback(t);
    if (rc)
        return rc;
    int64_t ms = r.missing ? SQ_LEASE_DEFAULT_MS : r.lease_ms;
    char *text = ms == 0          ? sqlite3_mprintf("0")
                 : ms % 1000 == 0 ? sqlite3_mprintf("%llds", (long long)(ms / 1000))
                                  : sqlite3_mprintf("%lldms", (long long)ms);
    sqlite3_stmt *row = NULL;
    s->internal++;
    rc = text ? sqlite3_prepare_v2(s->conn, "SELECT ?1", -1, &row, NULL) : SQLITE_NOMEM;
    s->internal--;
    if (!rc)
        rc = sqlite3_bind_text(row, 1, text, -1, SQLITE_TRANSIENT);
    if (!rc && sqlite3_step(row) == SQLITE_ROW)
        rc = emit_row(st, row);
    else if (!rc)
        rc = sq_fail_sqlite(s, s->conn, sqlite3_errcode(s->conn));
    sqlite3_finalize(row);
    sqlite3_free(text);
    if (rc == SQLITE_NOMEM)
        return sq_fail(s, MSQL_NOMEM, "out of memory");
    return rc;
}

static int find_savepoint(msql *s, const char *name)
{
    for (int i = s->nsp - 1; i >= 0; i--)
        if (sqlite3_stricmp(s->sp[i].name, name) == 0)
            return i;
    return -1;
}

static void pop_savepoints(msql *s, int keep)
{
    while (s->nsp > keep)
        free(s->sp[--s->nsp].name);
}

static int run_txn(msql_stmt *st)
{
    msql *s = st->s;
    switch (st->txop) {
    case TX_BEGIN:
        if (s->explicit_txn)
            return set_error(s, MSQL_ERROR, -1, "cannot start a transaction within a transaction");
        s->explicit_txn = 1;
        s->explicit_ro = st->ro;
        s->bound = st->bound;
        s->bound_ns = st->ns;
        s->by_savepoint = 0;
        return MSQL_DONE;
    case TX_COMMIT:
    case TX_ROLLBACK:
        if (!s->explicit_txn)
            return set_error(s, MSQL_ERROR, -1, "cannot %s - no transaction is active",
                             st->txop == TX_COMMIT ? "commit" : "rollback");
        s->explicit_txn = 0;
        if (st->txop == TX_ROLLBACK) {
            sq_txn_abandon(s);
            return MSQL_DONE;
        } else {
            s->pending = 0;
            int code = sq_txn_commit(s);
            if (code != MSQL_OK)
                return take_error(s, code);
            return MSQL_DONE;
        }
    case TX_SAVEPOINT: {
        if (!s->explicit_txn) {
            s->explicit_txn = 1;
            s->explicit_ro = 0;
            s->by_savepoint = 1;
        }
        sq_savepoint *sp = realloc(s->sp, (size_t)(s->nsp + 1) * sizeof *sp);
        char *name = strdup(st->spname ? st->spname : "");
        if (!sp || !name) {
            free(name);
            if (sp)
                s->sp = sp;
            return set_error(s, MSQL_NOMEM, -1, "out of memory");
        }
        s->sp = sp;
        s->sp[s->nsp].name = name;
        s->sp[s->nsp].mark = s->tx && s->tx->rw ? sq_wbuf_mark(s->wb) : 0;
        s->nsp++;
        return MSQL_DONE;
    }
    case TX_RELEASE:
    case TX_ROLLBACK_TO: {
        int i = s->explicit_txn ? find_savepoint(s, st->spname ? st->spname : "") : -1;
        if (i < 0)
            return set_error(s, MSQL_ERROR, -1, "no such savepoint: %s",
                             st->spname ? st->spname : "");
        if (st->txop == TX_ROLLBACK_TO) {
            if (s->tx && s->tx->rw)
                sq_wbuf_rollback(s->wb, s->sp[i].mark);
            pop_savepoints(s, i + 1);
            return MSQL_DONE;
        }
        pop_savepoints(s, i);
        if (s->nsp == 0 && s->by_savepoint) {
            s->explicit_txn = 0;
            s->pending = 0;
            int code = sq_txn_commit(s);
            if (code != MSQL_OK)
                return take_error(s, code);
        }
        return MSQL_DONE;
    }
    }
    return MSQL_DONE;
}

int msql_step(msql_stmt *st)
{
    if (!st)
        return MSQL_ERROR;
    msql *s = st->s;
    clear_error(s);
    if (st->kind == K_TXN) {
        if (st->finished)
            return MSQL_DONE;
        st->finished = 1;
        int code = run_txn(st);
        return code;
    }
    if (st->kind == K_DDL) {
        if (st->finished)
            return MSQL_DONE;
        st->finished = 1;
        if (s->explicit_txn)
            return set_error(s, MSQL_ERROR, -1,
                             "schema changes run in transactions of their own: COMMIT or "
                             "ROLLBACK first");
        int code = sq_ddl_run(s, st->ddl);
        return code == MSQL_OK ? MSQL_DONE : code;
    }
    if (st->finished) {
        /* stepping again after DONE or an error runs the statement again, as SQLite does:
         * from the start, as after msql_reset (bindings kept) */
        msql_reset(st);
    }
    if (st->kind == K_SHOW && !st->started && !st->buffered) {
        int rc0 = show_refresh(s);
        if (rc0 != MSQL_OK)
            return rc0;
    }
    if (st->setting && !st->buffered) {
        rows_free(st);
        st->ncols = 1;
        s->pending = 0;
        if (show_setting(st) != SQLITE_OK) {
            rows_free(st);
            return take_error(s, MSQL_ERROR);
        }
        st->buffered = 1;
    }
    if (st->tablets && !st->buffered) {
        rows_free(st);
        st->ncols = 6;
        s->pending = 0;
        if (sq_show_tablets(s, st->tablets, emit_row, st) != SQLITE_OK) {
            rows_free(st);
            return take_error(s, MSQL_ERROR);
        }
        st->buffered = 1;
    }
    if (st->buffered) {
        if (st->cur < st->nrows) {
            st->cur++;
            st->returned++;
            return MSQL_ROW;
        }
        st->finished = 1;
        return MSQL_DONE;
    }
    if (!st->started) {
        st->started = 1;
        st->deadline =
            s->stmt_timeout_ms ? mr_monotonic_ns() + s->stmt_timeout_ms * MR_NS_PER_MS : 0;
        int ro = sqlite3_stmt_readonly(st->st);
        if (st->kind == K_SQL && !ro && !s->explicit_txn) {
            int code = step_autocommit_write(st);
            if (code != MSQL_OK) {
                st->finished = 1; /* over: a next step runs it again */
                return code;
            }
            return msql_step(st);
        }
        if (!ro && s->explicit_txn && s->explicit_ro)
            return set_error(s, MSQL_ERROR, -1, "cannot write in a read-only transaction");
    }
    int rc;
    if (s->explicit_txn && st->dml.ret) {
        /* RETURNING inside BEGIN: run the statement through, then hand out its rows */
        rows_free(st);
        st->ncols = sqlite3_column_count(st->dml.ret);
        st->dml.emit = emit_row;
        st->dml.emit_arg = st;
        while ((rc = step_once(st)) == SQLITE_ROW)
            ;
        st->dml.emit = NULL;
        if (rc == SQLITE_DONE) {
            st->buffered = 1;
            return msql_step(st);
        }
        rows_free(st);
    } else if (s->explicit_txn || st->kind == K_SHOW) {
        rc = step_once(st);
    } else {
        /* An autocommit read in a read-only transaction of its own; while it
         * has returned no row, a leader moving or a node lost is retried in a
         * new one (with backoff, until the retry deadline), as writes are. */
        int64_t give_up = 0;
        for (int attempt = 0;; attempt++) {
            s->autocommit_ro = 1;
            s->tx = st->rotx;
            rc = step_once(st);
            st->rotx = s->tx;
            s->tx = NULL;
            s->autocommit_ro = 0;
            if (rc == SQLITE_ROW || rc == SQLITE_DONE || st->returned > 0 ||
                (s->pending != MSQL_UNAVAILABLE && s->pending != MSQL_RETRY) || s->use_msg)
                break;
            int64_t now = mr_monotonic_ns();
            if (!give_up)
                give_up = now + (int64_t)s->retry_ms * MR_NS_PER_MS;
            int64_t pause = (int64_t)(5 << (attempt < 7 ? attempt : 7)) * MR_NS_PER_MS;
            if (now + pause > give_up)
                break;
            sqlite3_reset(st->st);
            end_ro(st);
            struct timespec d = {pause / MR_NS_PER_S, pause % MR_NS_PER_S};
            nanosleep(&d, NULL);
        }
    }
    if (rc == SQLITE_ROW) {
        st->returned++;
        return MSQL_ROW;
    }
    st->finished = 1;
    end_ro(st);
    if (rc == SQLITE_DONE)
        return MSQL_DONE;
    int code = step_error(st, rc);
    sqlite3_reset(st->st);
    return code;
}

/* ---- parameters and reuse ---- */

/* The SQLite statement that takes st's parameters, or NULL (with the error set) when st has
 * none to take. */
static sqlite3_stmt *bind_target(msql_stmt *st, int i)
{
    if (!st)
        return NULL;
    msql *s = st->s;
    clear_error(s);
    if (st->kind != K_SQL || !st->st) {
        set_error(s, MSQL_ERROR, -1,
                  "%s statements take no parameters (parameter %d): only statements SQLite runs "
                  "do",
                  st->kind == K_SHOW  ? "SHOW"
                  : st->kind == K_TXN ? "transaction"
                                      : "schema change",
                  i);
        return NULL;
    }
    if (st->started && !st->finished) {
        set_error(s, MSQL_ERROR, -1,
                  "cannot bind a statement that is running: msql_reset it first");
        return NULL;
    }
    if (st->finished)
        msql_reset(st); /* its next step runs it from the start anyway */
    return st->st;
}

static int bind_result(msql_stmt *st, int rc)
{
    if (rc == SQLITE_OK)
        return MSQL_OK;
    if (rc == SQLITE_NOMEM)
        return set_error(st->s, MSQL_NOMEM, -1, "out of memory");
    return set_error(st->s, MSQL_ERROR, -1, "%s", sqlite3_errmsg(st->s->conn));
}

int msql_bind_parameter_count(msql_stmt *st)
{
    return st && st->kind == K_SQL && st->st ? sqlite3_bind_parameter_count(st->st) : 0;
}

int msql_bind_parameter_index(msql_stmt *st, const char *name)
{
    return st && name && st->kind == K_SQL && st->st ? sqlite3_bind_parameter_index(st->st, name)
                                                     : 0;
}

int msql_bind_int64(msql_stmt *st, int i, int64_t v)
{
    sqlite3_stmt *t = bind_target(st, i);
    return t ? bind_result(st, sqlite3_bind_int64(t, i, v)) : MSQL_ERROR;
}

int msql_bind_double(msql_stmt *st, int i, double v)
{
    sqlite3_stmt *t = bind_target(st, i);
    return t ? bind_result(st, sqlite3_bind_double(t, i, v)) : MSQL_ERROR;
}

int msql_bind_text(msql_stmt *st, int i, const char *text, int len)
{
    sqlite3_stmt *t = bind_target(st, i);
    if (!t)
        return MSQL_ERROR;
    if (!text)
        return bind_result(st, sqlite3_bind_null(t, i));
    return bind_result(st, sqlite3_bind_text(t, i, text, len, SQLITE_TRANSIENT));
}

int msql_bind_blob(msql_stmt *st, int i, const void *data, int len)
{
    sqlite3_stmt *t = bind_target(st, i);
    if (!t)
        return MSQL_ERROR;
    if (len < 0)
        return set_error(st->s, MSQL_ERROR, -1, "blob length %d is negative", len);
    if (!data && len > 0)
        return set_error(st->s, MSQL_ERROR, -1, "blob of %d bytes with no data", len);
    if (!data)
        return bind_result(st, sqlite3_bind_zeroblob(t, i, 0));
    return bind_result(st, sqlite3_bind_blob(t, i, data, len, SQLITE_TRANSIENT));
}

int msql_bind_null(msql_stmt *st, int i)
{
    sqlite3_stmt *t = bind_target(st, i);
    return t ? bind_result(st, sqlite3_bind_null(t, i)) : MSQL_ERROR;
}

int msql_clear_bindings(msql_stmt *st)
{
    if (!st)
        return MSQL_ERROR;
    if (st->kind == K_SQL && st->st)
        sqlite3_clear_bindings(st->st);
    return MSQL_OK;
}

int msql_reset(msql_stmt *st)
{
    if (!st)
        return MSQL_ERROR;
    /* what msql_step's first call finds on a fresh statement: no snapshot, no rows kept, not
     * started; the transaction state (autocommit or BEGIN, the lease) is the session's and is
     * looked at again when it runs */
    end_ro(st);
    rows_free(st);
    st->started = st->finished = 0;
    st->returned = 0;
    if (st->st)
        sqlite3_reset(st->st);
    return MSQL_OK;
}

int msql_column_count(msql_stmt *st)
{
    return st && st->st ? sqlite3_column_count(result_stmt(st)) : 0;
}

const char *msql_column_name(msql_stmt *st, int i)
{
    return st && st->st ? sqlite3_column_name(result_stmt(st), i) : NULL;
}

sqlite3_value *msql_column_value(msql_stmt *st, int i)
{
    if (!st || !st->st || i < 0 || i >= sqlite3_column_count(result_stmt(st)))
        return NULL;
    if (st->buffered) {
        if (st->cur < 1 || st->cur > st->nrows || i >= st->ncols)
            return NULL;
        return st->rows[(st->cur - 1) * st->ncols + i];
    }
    return sqlite3_column_value(st->st, i);
}

void msql_finalize(msql_stmt *st)
{
    if (!st)
        return;
    end_ro(st);
    rows_free(st);
    sqlite3_finalize(st->st);
    sq_ddl_free(st->ddl);
    free(st->tablets);
    sq_dml_free(&st->dml);
    free(st->spname);
    free(st);
}

int msql_exec(msql *s, const char *sql)
{
    if (!s || !sql)
        return MSQL_ERROR;
    const char *p = sql;
    while (p && *p) {
        msql_stmt *st = NULL;
        const char *tail = NULL;
        int rc = msql_prepare(s, p, -1, &st, &tail);
        if (rc != MSQL_OK) {
            if (s->erroff >= 0)
                s->erroff += (int)(p - sql);
            return rc;
        }
        if (!st)
            break;
        do
            rc = msql_step(st);
        while (rc == MSQL_ROW);
        msql_finalize(st);
        if (rc != MSQL_DONE)
            return rc;
        p = tail;
    }
    clear_error(s);
    return MSQL_OK;
}

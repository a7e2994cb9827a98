/* The SQL shell at run time (sql_shell.h): statements are read from -e, -f, stdin or a
 * terminal (libedit: history in ~/.meridian_history, completion of table and column names,
 * multi-line statements ending in ';'), split as sqlite3 splits them (sqlite3_complete), run
 * one at a time through the session and printed by sql_fmt. Errors go to stderr as sqlite3
 * words them, "Error: near line N: message"; the exit status says what kind of failure
 * happened. */
#include "cmd/sql_shell.h"

#include <ctype.h>
#include <errno.h>
#include <histedit.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "common/mr_util.h"

/* ---- the shell's state ---- */

typedef struct colcache {
    char *table;
    char **cols;
    int ncols;
} colcache;

typedef struct shell {
    msql *s;
    sf_opts fmt;
    bool cont;        /* --continue-on-error */
    bool timing;      /* \timing */
    int status;       /* exit status so far */
    bool halt;        /* a script failed: run nothing more */
    bool quit;        /* \q */
    int depth;        /* \i nesting */
    bool quiet_empty; /* no "(0 rows)" at the terminal (\d's indexes) */
    const volatile sig_atomic_t *stop;
    /* interactive */
    EditLine *el;
    FILE *tty_out; /* where libedit writes: stdout, or stderr when stdout is not a terminal */
    History *hist;
    char hist_path[4096];
    const char *pending; /* the statement being typed (for completion), or NULL */
    char **tables;       /* completion: names of tables, NULL until loaded */
    int ntables;
    colcache *cols;
    int ncols;
} shell;

static volatile sig_atomic_t sh_sigint;

static void on_sigint(int sig)
{
    (void)sig;
    sh_sigint = 1;
}

static bool stopped(const shell *sh)
{
    return sh->stop && *sh->stop;
}

/* One source of lines: a terminal (libedit), a file or stdin, or the text of -e. */
typedef struct reader {
    const char *name; /* for messages */
    bool tty;         /* the interactive terminal */
    FILE *f;
    const char *text; /* -e */
    size_t pos;
    int line; /* lines read so far */
} reader;

/* The exit status of a failure (cmd_sql.h's precedence: unknown, unavailable, error). */
static void note_failure(shell *sh, int rc)
{
    int st = rc == MSQL_UNKNOWN       ? CMD_EXIT_UNKNOWN
             : rc == MSQL_UNAVAILABLE ? CMD_EXIT_UNAVAILABLE
                                      : CMD_EXIT_FAIL;
    static const int rank[] = {
        [0] = 0, [CMD_EXIT_FAIL] = 1, [CMD_EXIT_UNAVAILABLE] = 2, [CMD_EXIT_UNKNOWN] = 3};
    if (rank[st] > rank[sh->status])
        sh->status = st;
}

/* "Error: near line N: " in scripts, "Error: " at the terminal, then the message. */
static void error_at(const reader *rd, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void error_at(const reader *rd, int line, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    if (rd->tty || line <= 0)
        fprintf(stderr, "Error: ");
    else
        fprintf(stderr, "Error: near line %d: ", line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Shows where in the statement an error points: up to 78 bytes of it around the offset,
 * blanks as spaces, and a caret under the spot (as the sqlite3 shell does). */
static void error_context(const char *stmt, int offset)
{
    if (offset < 0 || (size_t)offset > strlen(stmt))
        return;
    const char *from = stmt;
    while (offset > 50) { /* keep the spot within sight, on a character boundary */
        from++;
        offset--;
        while (((unsigned char)*from & 0xc0) == 0x80) {
            from++;
            offset--;
        }
    }
    size_t len = strlen(from);
    if (len > 78) {
        len = 78;
        while (len && ((unsigned char)from[len] & 0xc0) == 0x80)
            len--;
    }
    while (len && isspace((unsigned char)from[len - 1]))
        len--;
    fputs("  ", stderr);
    for (size_t i = 0; i < len; i++)
        fputc(isspace((unsigned char)from[i]) ? ' ' : from[i], stderr);
    fprintf(stderr, "\n  %*s^--- error here\n", offset, "");
}

/* ---- statements ---- */

/* Skips blanks and comments. */
static const char *skip_blank(const char *p)
{
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (p[0] == '-' && p[1] == '-') {
            p += strcspn(p, "\n");
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            if (!end)
                return p; /* an open comment: not blank */
            p = end + 2;
        } else {
            return p;
        }
    }
}

/* The end of the statement starting at p: just past the ';' that completes it, or the end
 * of the text. */
static const char *statement_end(const char *p)
{
    size_t n = strlen(p);
    char *copy = malloc(n + 1);
    if (!copy)
        return p + n;
    for (size_t i = 0; i < n; i++) {
        copy[i] = p[i];
        if (p[i] != ';')
            continue;
        copy[i + 1] = '\0';
        if (sqlite3_complete(copy)) {
            free(copy);
            return p + i + 1;
        }
    }
    free(copy);
    return p + n;
}

static bool starts_with_word(const char *p, const char *word)
{
    size_t n = strlen(word);
    return strncasecmp(p, word, n) == 0 && !isalnum((unsigned char)p[n]) && p[n] != '_';
}

static void forget_names(shell *sh)
{
    for (int i = 0; i < sh->ntables; i++)
        free(sh->tables[i]);
    free(sh->tables);
    sh->tables = NULL;
    sh->ntables = 0;
    for (int i = 0; i < sh->ncols; i++) {
        free(sh->cols[i].table);
        for (int k = 0; k < sh->cols[i].ncols; k++)
            free(sh->cols[i].cols[k]);
        free(sh->cols[i].cols);
    }
    free(sh->cols);
    sh->cols = NULL;
    sh->ncols = 0;
}

/* Runs the statement at sql (its first one); *tail gets where the next one starts (NULL
 * when the statement could not be parsed). Prints its rows; reports a failure. Returns an
 * MSQL_* code: MSQL_OK, or the failure. */
static int run_statement(shell *sh, const reader *rd, const char *sql, int line, const char **tail)
{
    *tail = NULL;
    for (int attempt = 0;; attempt++) {
        int64_t t0 = mr_monotonic_ns(), ts0 = msql_commit_ts(sh->s);
        uint64_t read0 = msql_rows_read(sh->s);
        bool in_txn = msql_in_transaction(sh->s);
        msql_stmt *st = NULL;
        const char *next = NULL;
        int rc = msql_prepare(sh->s, sql, -1, &st, &next);
        if (rc != MSQL_OK) {
            error_at(rd, line, "%s", msql_errmsg(sh->s));
            error_context(sql, msql_error_offset(sh->s));
            *tail = statement_end(sql);
            note_failure(sh, rc);
            return rc;
        }
        *tail = next;
        if (!st)
            return MSQL_OK;
        int ncol = msql_column_count(st);
        sf_result *res = NULL;
        sqlite3_value **vals = NULL;
        if (ncol > 0) {
            const char **names = calloc((size_t)ncol, sizeof *names);
            vals = calloc((size_t)ncol, sizeof *vals);
            if (names && vals) {
                for (int i = 0; i < ncol; i++)
                    names[i] = msql_column_name(st, i);
                res = sf_begin(stdout, &sh->fmt, ncol, names);
            }
            free(names);
            if (!res) {
                free(vals);
                msql_finalize(st);
                error_at(rd, line, "out of memory");
                note_failure(sh, MSQL_NOMEM);
                return MSQL_NOMEM;
            }
        }
        bool cancelled = false, oom = false;
        while ((rc = msql_step(st)) == MSQL_ROW) {
            if (res) {
                for (int i = 0; i < ncol; i++)
                    vals[i] = msql_column_value(st, i);
                if (sf_row(res, vals) != 0) {
                    oom = true;
                    break;
                }
            }
            if (sh_sigint || stopped(sh)) {
                cancelled = true;
                break;
            }
        }
        free(vals);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", msql_errmsg(sh->s));
        int offset = msql_error_offset(sh->s);
        if (rc == MSQL_DONE) {
            int64_t rows = sf_rows(res);
            sf_end(res);
            msql_finalize(st);
            if (rd->tty && res && sh->fmt.format == SF_TABLE && !(rows == 0 && sh->quiet_empty))
                printf("(%lld row%s)\n", (long long)rows, rows == 1 ? "" : "s");
            fflush(stdout);
            if (sh->timing) {
                int64_t ts = msql_commit_ts(sh->s);
                uint64_t nread = msql_rows_read(sh->s) - read0;
                fprintf(stderr, "Time: %.3f ms, %llu row%s read",
                        (double)(mr_monotonic_ns() - t0) / 1e6, (unsigned long long)nread,
                        nread == 1 ? "" : "s");
                if (ts != ts0)
                    fprintf(stderr, ", committed at %lld, commit wait %.3f ms", (long long)ts,
                            (double)msql_commit_wait_ns(sh->s) / 1e6);
                fputc('\n', stderr);
            }
            const char *kw = skip_blank(sql);
            if (starts_with_word(kw, "CREATE") || starts_with_word(kw, "DROP") ||
                starts_with_word(kw, "ALTER"))
                forget_names(sh);
            return MSQL_OK;
        }
        /* A failed statement's rows are not a result: a table not yet printed is dropped;
         * rows a streaming format already wrote stay, closed. */
        bool seen = sf_emitted(res);
        if (sh->fmt.format == SF_TABLE && !sh->fmt.expanded)
            sf_discard(res);
        else
            sf_end(res);
        msql_finalize(st);
        if (cancelled) {
            error_at(rd, line, "interrupted");
            note_failure(sh, MSQL_ERROR);
            return MSQL_ERROR;
        }
        if (oom) {
            error_at(rd, line, "out of memory");
            note_failure(sh, MSQL_NOMEM);
            return MSQL_NOMEM;
        }
        /* At the terminal, an autocommit statement the cluster aborted (and rolled back)
         * is run again, as long as nothing of it was shown. */
        if (rc == MSQL_RETRY && rd->tty && !in_txn && !seen && attempt < 3) {
            fprintf(stderr, "(retryable abort: %s; running it again)\n", msg);
            continue;
        }
        char id[32];
        snprintf(id, sizeof id, "%llu", (unsigned long long)msql_last_txn_id(sh->s));
        switch (rc) {
        case MSQL_RETRY:
            error_at(rd, line,
                     "%s%s (the transaction was rolled back: running it again may succeed)",
                     strstr(msg, "retryable") ? "" : "retryable: ", msg);
            break;
        case MSQL_UNKNOWN: /* never a failure: it may have committed; name it */
            if (strstr(msg, "commit outcome unknown") && strstr(msg, id))
                error_at(rd, line, "%s", msg);
            else
                error_at(rd, line,
                         "commit outcome unknown for transaction %s, it may have committed: %s", id,
                         msg);
            break;
        case MSQL_UNAVAILABLE:
            error_at(rd, line, "cluster unavailable: %s", msg);
            break;
        default:
            error_at(rd, line, "%s", msg);
            error_context(sql, offset);
        }
        note_failure(sh, rc);
        return rc;
    }
}

/* Runs every statement of the complete text sql, whose first line is line `first` of rd.
 * Errors name that line, the one where the pending input began, for every statement of the
 * text (as sqlite3 counts: scripts compared with sqlite3 report the same lines). False when
 * one failed. */
static bool run_sql(shell *sh, const reader *rd, const char *sql, int first)
{
    bool ok = true;
    const char *p = sql;
    while (!stopped(sh) && !sh_sigint) {
        const char *start = skip_blank(p);
        if (!*start)
            break;
        const char *tail;
        if (run_statement(sh, rd, start, first, &tail) != MSQL_OK) {
            ok = false;
            if (!sh->cont && !rd->tty)
                break;
        }
        if (!tail || tail <= start)
            break;
        p = tail;
    }
    return ok;
}

/* ---- completion ---- */

/* The rows of column 0 of sql, malloc'd strings; -1 when it failed. */
static int query_names(shell *sh, const char *sql, char ***out, int *n)
{
    msql_stmt *st = NULL;
    *out = NULL;
    *n = 0;
    if (msql_prepare(sh->s, sql, -1, &st, NULL) != MSQL_OK || !st)
        return -1;
    int rc, cap = 0;
    while ((rc = msql_step(st)) == MSQL_ROW) {
        const unsigned char *t = sqlite3_value_text(msql_column_value(st, 0));
        if (!t)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(*out, (size_t)cap * sizeof *grown);
            if (!grown)
                break;
            *out = grown;
        }
        if (!((*out)[*n] = strdup((const char *)t)))
            break;
        (*n)++;
    }
    msql_finalize(st);
    return 0;
}

/* Loads the table names (once; again after DDL). Never inside a transaction: a read there
 * could abort the user's transaction. */
static void load_tables(shell *sh)
{
    if (sh->tables || msql_in_transaction(sh->s))
        return;
    if (query_names(sh, "SHOW TABLES", &sh->tables, &sh->ntables) != 0 || !sh->tables) {
        free(sh->tables);
        sh->tables = calloc(1, sizeof *sh->tables); /* none: do not ask again before DDL */
        sh->ntables = 0;
    }
}

/* The column names of table t (cached), from its statement's result columns. */
static const colcache *load_columns(shell *sh, const char *t)
{
    for (int i = 0; i < sh->ncols; i++)
        if (strcasecmp(sh->cols[i].table, t) == 0)
            return &sh->cols[i];
    if (msql_in_transaction(sh->s))
        return NULL;
    colcache *grown = realloc(sh->cols, (size_t)(sh->ncols + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    sh->cols = grown;
    colcache *c = &sh->cols[sh->ncols];
    memset(c, 0, sizeof *c);
    if (!(c->table = strdup(t)))
        return NULL;
    sh->ncols++;
    char *sql = sqlite3_mprintf("SELECT * FROM \"%w\"", t);
    msql_stmt *st = NULL;
    if (sql && msql_prepare(sh->s, sql, -1, &st, NULL) == MSQL_OK && st) {
        int n = msql_column_count(st);
        c->cols = calloc((size_t)n + 1, sizeof *c->cols);
        for (int i = 0; c->cols && i < n; i++)
            if ((c->cols[c->ncols] = strdup(msql_column_name(st, i))))
                c->ncols++;
    }
    msql_finalize(st);
    sqlite3_free(sql);
    return c;
}

typedef struct matches {
    char **v;
    int n, cap;
} matches;

static void add_match(matches *m, const char *prefix, size_t plen, const char *cand, bool keyword)
{
    if (strncasecmp(cand, prefix, plen) != 0)
        return;
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->v[i], cand) == 0)
            return;
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 32;
        char **grown = realloc(m->v, (size_t)cap * sizeof *grown);
        if (!grown)
            return;
        m->v = grown;
        m->cap = cap;
    }
    char *c = strdup(cand);
    if (!c)
        return;
    /* A keyword follows the case the user typed. */
    if (keyword && plen && islower((unsigned char)prefix[0]))
        for (char *p = c; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    m->v[m->n++] = c;
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

/* True when the word before `at` (in line) is one a table name follows. */
static bool after_table_keyword(const char *line, const char *at)
{
    const char *end = at;
    while (end > line && isspace((unsigned char)end[-1]))
        end--;
    const char *w = end;
    while (w > line && ident_char(w[-1]))
        w--;
    static const char *const kws[] = {"FROM", "JOIN", "INTO", "UPDATE", "TABLE"};
    for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++)
        if ((size_t)(end - w) == strlen(kws[i]) && strncasecmp(w, kws[i], strlen(kws[i])) == 0)
            return true;
    return false;
}

/* Tab: completes the word before the cursor with a table name, a column of a table named
 * in the statement (or of T in "T.col"), or an SQL keyword; lists the choices when several
 * remain. */
static unsigned char sh_complete(EditLine *el, int ch)
{
    (void)ch;
    shell *sh = NULL;
    el_get(el, EL_CLIENTDATA, &sh);
    const LineInfo *li = el_line(el);
    const char *start = li->cursor;
    while (start > li->buffer && (ident_char(start[-1]) || start[-1] == '.'))
        start--;
    const char *dot = memchr(start, '.', (size_t)(li->cursor - start));
    const char *prefix = dot ? dot + 1 : start;
    size_t plen = (size_t)(li->cursor - prefix);
    matches m = {0};
    load_tables(sh);
    if (dot) {
        char table[256];
        snprintf(table, sizeof table, "%.*s", (int)(dot - start), start);
        const colcache *c = load_columns(sh, table);
        for (int i = 0; c && i < c->ncols; i++)
            add_match(&m, prefix, plen, c->cols[i], false);
    } else if (after_table_keyword(li->buffer, start)) {
        for (int i = 0; i < sh->ntables; i++)
            add_match(&m, prefix, plen, sh->tables[i], false);
    } else {
        for (int i = 0; i < sh->ntables; i++)
            add_match(&m, prefix, plen, sh->tables[i], false);
        /* Columns of the tables this statement names (its earlier lines too); of every
         * table (the first 32) while it names none. */
        bool named = false;
        const char *texts[2] = {sh->pending, li->buffer};
        for (int t = 0; t < 2; t++) {
            const char *p = texts[t];
            size_t len = !p ? 0 : t == 1 ? (size_t)(li->lastchar - li->buffer) : strlen(p);
            for (size_t i = 0; i < len;) {
                size_t j = i;
                while (j < len && ident_char(p[j]))
                    j++;
                for (int k = 0; j > i && k < sh->ntables; k++)
                    if (strlen(sh->tables[k]) == j - i &&
                        strncasecmp(sh->tables[k], p + i, j - i) == 0) {
                        const colcache *c = load_columns(sh, sh->tables[k]);
                        for (int x = 0; c && x < c->ncols; x++)
                            add_match(&m, prefix, plen, c->cols[x], false);
                        named = true;
                    }
                i = j > i ? j : i + 1;
            }
        }
        for (int k = 0; !named && k < sh->ntables && k < 32; k++) {
            const colcache *c = load_columns(sh, sh->tables[k]);
            for (int x = 0; c && x < c->ncols; x++)
                add_match(&m, prefix, plen, c->cols[x], false);
        }
        if (plen)
            for (int i = 0; i < sqlite3_keyword_count(); i++) {
                const char *kw;
                int kwlen;
                char buf[64];
                if (sqlite3_keyword_name(i, &kw, &kwlen) == SQLITE_OK && kwlen < 64) {
                    snprintf(buf, sizeof buf, "%.*s", kwlen, kw);
                    add_match(&m, prefix, plen, buf, true);
                }
            }
    }
    unsigned char ret = CC_ERROR;
    if (m.n == 1) {
        char add[512];
        snprintf(add, sizeof add, "%s ", m.v[0] + plen);
        el_insertstr(el, add);
        ret = CC_REFRESH;
    } else if (m.n > 1) {
        size_t common = strlen(m.v[0]);
        for (int i = 1; i < m.n; i++) {
            size_t k = 0;
            while (k < common && m.v[i][k] &&
                   tolower((unsigned char)m.v[i][k]) == tolower((unsigned char)m.v[0][k]))
                k++;
            common = k;
        }
        if (common > plen) {
            char add[512];
            snprintf(add, sizeof add, "%.*s", (int)(common - plen), m.v[0] + plen);
            el_insertstr(el, add);
            ret = CC_REFRESH;
        } else { /* the choices, under the line, where libedit writes */
            FILE *f = sh->tty_out;
            fputc('\n', f);
            int col = 0;
            for (int i = 0; i < m.n; i++) {
                int w = (int)strlen(m.v[i]) + 2;
                if (col && col + w > 78) {
                    fputc('\n', f);
                    col = 0;
                }
                fprintf(f, "%s  ", m.v[i]);
                col += w;
            }
            fputc('\n', f);
            fflush(f);
            ret = CC_REDISPLAY;
        }
    }
    for (int i = 0; i < m.n; i++)
        free(m.v[i]);
    free(m.v);
    return ret;
}

/* ---- reading lines ---- */

static char *sh_prompt(EditLine *el)
{
    shell *sh = NULL;
    el_get(el, EL_CLIENTDATA, &sh);
    return sh->pending ? "     ...> " : "meridian> ";
}

/* The next line of rd into *buf (with its '\n', NUL-terminated); its length, 0 at the end,
 * -1 when Ctrl-C cancelled the line being typed. */
static ssize_t next_line(shell *sh, reader *rd, char **buf, size_t *cap)
{
    if (rd->tty) {
        int n = 0;
        sh_sigint = 0;
        const char *l = el_gets(sh->el, &n);
        if (!l || n <= 0) /* Ctrl-C (or another signal) interrupts; Ctrl-D ends */
            return n < 0 && errno == EINTR && !stopped(sh) ? -1 : 0;
        if ((size_t)n + 2 > *cap) {
            char *grown = realloc(*buf, (size_t)n + 2);
            if (!grown)
                return 0;
            *buf = grown;
            *cap = (size_t)n + 2;
        }
        memcpy(*buf, l, (size_t)n);
        (*buf)[n] = '\0';
        return n;
    }
    if (rd->f) {
        ssize_t n = getline(buf, cap, rd->f);
        return n < 0 ? 0 : n;
    }
    const char *p = rd->text + rd->pos;
    if (!*p)
        return 0;
    size_t n = strcspn(p, "\n");
    n += p[n] == '\n';
    if (n + 1 > *cap) {
        char *grown = realloc(*buf, n + 1);
        if (!grown)
            return 0;
        *buf = grown;
        *cap = n + 1;
    }
    memcpy(*buf, p, n);
    (*buf)[n] = '\0';
    rd->pos += n;
    return (ssize_t)n;
}

/* ---- backslash commands ---- */

static bool process(shell *sh, reader *rd);

static bool on_off(const char *arg, bool current, bool *out)
{
    if (!*arg)
        *out = !current;
    else if (strcasecmp(arg, "on") == 0)
        *out = true;
    else if (strcasecmp(arg, "off") == 0)
        *out = false;
    else
        return false;
    return true;
}

static void help(void)
{
    printf("Statements end with ';' and may span lines. Commands:\n"
           "  \\?              this help\n"
           "  \\q              quit (so does Ctrl-D)\n"
           "  \\dt             list tables (SHOW TABLES)\n"
           "  \\d [TABLE]      list tables, or show TABLE's definition and indexes\n"
           "  \\timing [on|off] latency, rows read, commit timestamp and wait\n"
           "  \\x [on|off]     expanded output: one block per row (table format)\n"
           "  \\format [F]     show or set the output format: " SF_FORMAT_NAMES "\n"
           "  \\i FILE         run the statements of FILE\n"
           "Transactions: BEGIN; ... COMMIT; (or ROLLBACK;), BEGIN READ ONLY [WITH MAX\n"
           "STALENESS '10s' | WITH EXACT STALENESS '5s' | AS OF TIMESTAMP ns]; other\n"
           "statements commit on their own. SELECT meridian_commit_ts() reads the last\n"
           "commit's timestamp. Tab completes table and column names; Ctrl-C clears the input.\n");
}

/* Runs one backslash command (line without its newline). False when it failed. */
static bool meta(shell *sh, reader *rd, char *line, int lineno)
{
    char *cmd = line + strspn(line, " \t") + 1; /* past the backslash */
    size_t n = strcspn(cmd, " \t");
    char *arg = cmd + n + strspn(cmd + n, " \t");
    cmd[n] = '\0';
    for (char *e = arg + strlen(arg); e > arg && isspace((unsigned char)e[-1]);)
        *--e = '\0';
    bool flag;
    const char *tail;
    if (strcmp(cmd, "q") == 0 || strcmp(cmd, "quit") == 0) {
        sh->quit = true;
        return true;
    }
    if (strcmp(cmd, "?") == 0 || strcmp(cmd, "h") == 0 || strcmp(cmd, "help") == 0) {
        help();
        return true;
    }
    if (strcmp(cmd, "dt") == 0 || (strcmp(cmd, "d") == 0 && !*arg)) {
        if (*arg && strcmp(cmd, "dt") == 0) {
            error_at(rd, lineno, "\\dt takes no argument");
            note_failure(sh, MSQL_ERROR);
            return false;
        }
        return run_statement(sh, rd, "SHOW TABLES", lineno, &tail) == MSQL_OK;
    }
    if (strcmp(cmd, "d") == 0) {
        char *sql = sqlite3_mprintf("SHOW CREATE TABLE %s", arg);
        int rc = sql ? run_statement(sh, rd, sql, lineno, &tail) : MSQL_NOMEM;
        sqlite3_free(sql);
        /* A table's indexes too, when it has any (a view has none to show). */
        char *idx = rc == MSQL_OK ? sqlite3_mprintf("SHOW INDEXES FROM %s", arg) : NULL;
        msql_stmt *st = NULL;
        if (idx && msql_prepare(sh->s, idx, -1, &st, NULL) == MSQL_OK && st) {
            msql_finalize(st);
            sh->quiet_empty = true;
            rc = run_statement(sh, rd, idx, lineno, &tail);
            sh->quiet_empty = false;
        }
        sqlite3_free(idx);
        return rc == MSQL_OK;
    }
    if ((strcmp(cmd, "timing") == 0 || strcmp(cmd, "x") == 0) &&
        !on_off(arg, cmd[0] == 'x' ? sh->fmt.expanded : sh->timing, &flag)) {
        error_at(rd, lineno, "\\%s takes on or off (or nothing, to switch)", cmd);
        note_failure(sh, MSQL_ERROR);
        return false;
    }
    if (strcmp(cmd, "timing") == 0) {
        sh->timing = flag;
        fprintf(stderr, "Timing is %s.\n", flag ? "on" : "off");
        return true;
    }
    if (strcmp(cmd, "x") == 0) {
        sh->fmt.expanded = flag;
        fprintf(stderr, "Expanded display is %s.\n", flag ? "on" : "off");
        return true;
    }
    if (strcmp(cmd, "format") == 0) {
        if (*arg && sf_format_parse(arg, &sh->fmt.format) != 0) {
            error_at(rd, lineno, "\\format %s: use one of %s", arg, SF_FORMAT_NAMES);
            note_failure(sh, MSQL_ERROR);
            return false;
        }
        fprintf(stderr, "Output format is %s.\n", sf_format_name(sh->fmt.format));
        return true;
    }
    if (strcmp(cmd, "i") == 0 || strcmp(cmd, "include") == 0) {
        if (!*arg) {
            error_at(rd, lineno, "\\i needs a file name");
            note_failure(sh, MSQL_ERROR);
            return false;
        }
        if (sh->depth >= 16) {
            error_at(rd, lineno, "\\i %s: nested too deeply", arg);
            note_failure(sh, MSQL_ERROR);
            return false;
        }
        FILE *f = fopen(arg, "r");
        if (!f) {
            error_at(rd, lineno, "\\i %s: %s", arg, strerror(errno));
            note_failure(sh, MSQL_ERROR);
            return false;
        }
        reader sub = {.name = arg, .f = f};
        sh->depth++;
        bool ok = process(sh, &sub);
        sh->depth--;
        fclose(f);
        return ok;
    }
    error_at(rd, lineno, "unknown command \\%s%s%s (\\? lists the commands)", cmd, *arg ? " " : "",
             arg);
    note_failure(sh, MSQL_ERROR);
    return false;
}

/* ---- the loop ---- */

static bool all_blank(const char *s)
{
    return *skip_blank(s) == '\0';
}

/* Adds a typed statement or command to the history, as one line. */
static void remember(shell *sh, const char *text)
{
    if (!sh->hist)
        return;
    char *one = strdup(text);
    if (!one)
        return;
    for (char *p = one; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    for (char *e = one + strlen(one); e > one && isspace((unsigned char)e[-1]);)
        *--e = '\0';
    HistEvent ev;
    if (*one)
        history(sh->hist, &ev, H_ENTER, one);
    free(one);
}

/* Reads rd to its end, running statements as they complete and commands as they come.
 * False when something failed (a script then stops, unless --continue-on-error). */
static bool process(shell *sh, reader *rd)
{
    char *line = NULL, *sql = NULL;
    size_t cap = 0, len = 0, sqlcap = 0;
    int first = 0;
    bool ok = true;
    /* Ctrl-C at the terminal also ends a file run by \i. */
    while (!sh->quit && !sh->halt && !stopped(sh) && !(sh_sigint && !rd->tty)) {
        sh->pending = len ? sql : NULL;
        ssize_t n = next_line(sh, rd, &line, &cap);
        if (n < 0) { /* Ctrl-C: drop what was typed */
            fputc('\n', stdout);
            fflush(stdout);
            len = 0;
            continue;
        }
        if (n == 0)
            break;
        rd->line++;
        if (len == 0) {
            if (all_blank(line))
                continue;
            if (line[strspn(line, " \t")] == '\\') {
                line[strcspn(line, "\r\n")] = '\0';
                if (rd->tty)
                    remember(sh, line);
                if (!meta(sh, rd, line, rd->line)) {
                    ok = false;
                    if (!sh->cont && !rd->tty) {
                        if (!sh->depth || !sh->el)
                            sh->halt = true;
                        break;
                    }
                }
                continue;
            }
            first = rd->line;
        }
        if (len + (size_t)n + 2 > sqlcap) {
            size_t want = 2 * (len + (size_t)n + 2);
            char *grown = realloc(sql, want);
            if (!grown) {
                error_at(rd, rd->line, "out of memory");
                note_failure(sh, MSQL_NOMEM);
                ok = false;
                sh->halt = !rd->tty;
                len = 0;
                continue;
            }
            sql = grown;
            sqlcap = want;
        }
        memcpy(sql + len, line, (size_t)n);
        len += (size_t)n;
        if (sql[len - 1] != '\n')
            sql[len++] = '\n';
        sql[len] = '\0';
        if (!sqlite3_complete(sql))
            continue;
        if (rd->tty)
            remember(sh, sql);
        len = 0;
        sh->pending = NULL;
        if (!run_sql(sh, rd, sql, first)) {
            ok = false;
            if (!sh->cont && !rd->tty) {
                if (!sh->depth || !sh->el)
                    sh->halt = true;
                break;
            }
        }
    }
    /* A last statement without its ';' runs too, as in sqlite3. */
    if (len && !sh->quit && !sh->halt && !stopped(sh) && !all_blank(sql)) {
        if (rd->tty)
            remember(sh, sql);
        if (!run_sql(sh, rd, sql, first)) {
            ok = false;
            if (!sh->cont && (!sh->depth || !sh->el))
                sh->halt = true;
        }
    }
    sh->pending = NULL;
    free(line);
    free(sql);
    return ok;
}

/* The terminal: libedit with history and completion, Ctrl-C clearing the input. */
static void interactive(shell *sh)
{
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old); /* no SA_RESTART: a read in libedit returns EINTR */
    sh->tty_out = isatty(STDOUT_FILENO) ? stdout : stderr;
    sh->el = el_init("meridian", stdin, sh->tty_out, stderr);
    sh->hist = history_init();
    if (!sh->el || !sh->hist) {
        fprintf(stderr, "meridian sql: cannot set up line editing\n");
        sh->status = CMD_EXIT_FAIL;
        goto out;
    }
    HistEvent ev;
    history(sh->hist, &ev, H_SETSIZE, 2000);
    history(sh->hist, &ev, H_SETUNIQUE, 1);
    const char *home = getenv("HOME");
    if (home && *home) {
        snprintf(sh->hist_path, sizeof sh->hist_path, "%s/.meridian_history", home);
        history(sh->hist, &ev, H_LOAD, sh->hist_path);
    }
    el_set(sh->el, EL_CLIENTDATA, sh);
    el_set(sh->el, EL_EDITOR, "emacs");
    el_set(sh->el, EL_PROMPT, sh_prompt);
    el_set(sh->el, EL_HIST, history, sh->hist);
    /* The wide call: libedit keeps these strings (the narrow one leaks its copies). */
    el_wset(sh->el, EL_ADDFN, L"meridian-complete", L"complete table and column names",
            sh_complete);
    el_set(sh->el, EL_BIND, "^I", "meridian-complete", NULL);
    el_source(sh->el, NULL); /* ~/.editrc */
    printf("meridian sql: statements end with ';'. \\? for help, \\q to quit.\n");
    reader rd = {.name = "terminal", .tty = true};
    process(sh, &rd);
    if (!sh->quit)
        fputc('\n', stdout);
    if (sh->hist_path[0] && history(sh->hist, &ev, H_SAVE, sh->hist_path) >= 0)
        chmod(sh->hist_path, 0600); /* statements may hold secrets */
out:
    if (sh->el)
        el_end(sh->el);
    if (sh->hist)
        history_end(sh->hist);
    sh->el = NULL;
    sh->hist = NULL;
    sigaction(SIGINT, &old, NULL);
}

int sqlsh_run(msql *s, const sqlsh_opts *o, const volatile sig_atomic_t *stop)
{
    shell sh = {.s = s, .fmt = o->fmt, .cont = o->continue_on_error, .stop = stop};
    sh_sigint = 0;
    if (o->ninputs == 0 && isatty(STDIN_FILENO)) {
        interactive(&sh);
        forget_names(&sh);
        /* At the terminal every error was seen as it happened. */
        return stopped(&sh) ? CMD_EXIT_FAIL : CMD_EXIT_OK;
    }
    if (o->ninputs == 0) {
        reader rd = {.name = "stdin", .f = stdin};
        process(&sh, &rd);
    }
    for (int i = 0; i < o->ninputs && !sh.halt && !sh.quit && !stopped(&sh); i++) {
        reader rd = {.name = o->inputs[i].file ? o->inputs[i].arg : "-e"};
        if (!o->inputs[i].file) {
            rd.text = o->inputs[i].arg;
        } else if (strcmp(o->inputs[i].arg, "-") == 0) {
            rd.f = stdin;
        } else if (!(rd.f = fopen(o->inputs[i].arg, "r"))) {
            fprintf(stderr, "Error: cannot read %s: %s\n", o->inputs[i].arg, strerror(errno));
            note_failure(&sh, MSQL_ERROR);
            if (!sh.cont)
                break;
            continue;
        }
        process(&sh, &rd);
        if (rd.f && rd.f != stdin)
            fclose(rd.f);
    }
    forget_names(&sh);
    fflush(stdout);
    if (ferror(stdout) && sh.status == 0) {
        fprintf(stderr, "meridian sql: cannot write the results: %s\n", strerror(errno));
        sh.status = CMD_EXIT_FAIL;
    }
    if (stopped(&sh) && sh.status == 0)
        sh.status = CMD_EXIT_FAIL;
    return sh.status;
}

/* sql/sql.h: a Meridian SQL session (the engine behind `meridian sql`).
 *
 * A session is an in-memory SQLite connection whose tables are virtual tables
 * over the distributed store, reached through libmeridian only. SQLite parses,
 * plans and evaluates; the session owns transactions (SQLite fires no
 * virtual-table hook for read-only ones, see ../shared/sql-notes.md):
 *  - autocommit statements run as lock-free strong snapshot reads when
 *    read-only, and as read-write transactions (committed when the statement
 *    ends) otherwise;
 *  - BEGIN [READ WRITE] ... COMMIT | ROLLBACK;
 *  - BEGIN READ ONLY [WITH STRONG | WITH EXACT STALENESS 'dur' |
 *    WITH MAX STALENESS 'dur' | AS OF TIMESTAMP ns];
 *  - SELECT meridian_commit_ts() reads the last commit's timestamp.
 * Meridian's own statements (SHOW TABLES, SHOW CREATE TABLE t, SHOW TABLETS
 * FOR TABLE t, CREATE TABLE ... INTERLEAVE IN PARENT p) are prepared here too
 * and return rows like any query.
 *
 * Threads: one session is used by one thread at a time (as its meridian *). */
#ifndef SQL_SQL_H
#define SQL_SQL_H

#include <sqlite3.h>
#include <stdint.h>

#include "meridian.h"

typedef struct msql msql;
typedef struct msql_stmt msql_stmt;

/* Result codes. Every failure leaves a message in msql_errmsg. */
enum {
    MSQL_OK = 0,
    MSQL_ERROR = 1,       /* an SQL error: syntax, unknown table, constraint, type, misuse;
                           * the statement changed nothing (inside BEGIN the transaction
                           * stays open, as in SQLite) */
    MSQL_RETRY = 2,       /* a retryable abort (wounded, leader moved, schema changed): the
                           * whole transaction was rolled back; running it again may succeed */
    MSQL_UNKNOWN = 3,     /* a commit's outcome could not be learned: it may have committed */
    MSQL_UNAVAILABLE = 4, /* the cluster could not be reached in time */
    MSQL_NOMEM = 5,
    MSQL_ROW = 100, /* msql_step: a row is ready */
    MSQL_DONE = 101 /* msql_step: the statement finished */
};

/* Opens a session over db (not owned: close the session before db) and loads
 * the catalog. On failure *out is still set (unless MSQL_NOMEM before
 * anything) so msql_errmsg can tell why: close it. */
int msql_open(meridian *db, msql **out);
/* Closes a session; an open transaction is rolled back. Finalize its
 * statements first. */
void msql_close(msql *s);

/* Prepares the first statement of sql (len bytes, or -1 up to the NUL). *st
 * is NULL when sql holds only blanks or comments; *tail (optional) points
 * past the statement. MSQL_OK or MSQL_ERROR (message and offset set). */
int msql_prepare(msql *s, const char *sql, int len, msql_stmt **st, const char **tail);
/* Runs a prepared statement one row at a time: MSQL_ROW, MSQL_DONE, or an
 * error code. An autocommit statement commits before it returns MSQL_DONE. Stepping a statement
 * that finished (DONE or an error) runs it again from the start, as after msql_reset
 * (transaction statements and schema changes run again only after msql_reset). */
int msql_step(msql_stmt *st);
int msql_column_count(msql_stmt *st);
const char *msql_column_name(msql_stmt *st, int i);
/* The value of column i of the current row, valid until the next step. */
sqlite3_value *msql_column_value(msql_stmt *st, int i);
/* Bound parameters, as SQLite's sqlite3_bind_* (1-based index; ?, ?N, :name, @name, $name;
 * a parameter left unbound is NULL). A value stays bound across msql_reset until bound again
 * or msql_clear_bindings. Text and blobs are copied. Only statements SQLite runs take
 * parameters: SHOW, BEGIN/COMMIT/SAVEPOINT and schema changes have none (the count is 0 and a
 * bind fails); binding a statement that has returned a row and not finished is refused (reset
 * it first; a finished one may be bound). MSQL_OK, or MSQL_ERROR with SQLite's message ("column
 * index out of range") / MSQL_NOMEM. */
int msql_bind_parameter_count(msql_stmt *st);
/* The index of the parameter called name (with its ?, :, @ or $), 0 if none. */
int msql_bind_parameter_index(msql_stmt *st, const char *name);
int msql_bind_int64(msql_stmt *st, int i, int64_t v);
int msql_bind_double(msql_stmt *st, int i, double v);
int msql_bind_text(msql_stmt *st, int i, const char *text, int len); /* len -1: up to the NUL */
int msql_bind_blob(msql_stmt *st, int i, const void *data, int len);
int msql_bind_null(msql_stmt *st, int i);
int msql_clear_bindings(msql_stmt *st);
/* Makes st ready to run again from the start, with the same plan and bindings, as a freshly
 * prepared statement (sqlite3_reset): its rows not yet read are dropped; an autocommit read's
 * snapshot is released (the next run reads a new one); inside BEGIN the writes of runs already
 * done stay in the transaction. A plan made before a schema change is remade by SQLite when the
 * session's catalog moves on (as its own statements are on SQLITE_SCHEMA). MSQL_OK (st NULL:
 * MSQL_ERROR). */
int msql_reset(msql_stmt *st);
/* Frees st (NULL is fine). */
void msql_finalize(msql_stmt *st);

/* Runs every statement of sql, discarding rows: for scripts and loading. */
int msql_exec(msql *s, const char *sql);

/* The last failure's message ("" after success), and the byte offset in the
 * prepared text it points at (-1 when none). */
const char *msql_errmsg(const msql *s);
int msql_error_offset(const msql *s);
/* 1 inside BEGIN ... COMMIT/ROLLBACK. */
int msql_in_transaction(const msql *s);
/* The last committed transaction: its commit timestamp (ns since the epoch,
 * 0 if none yet) and its id (for a MSQL_UNKNOWN: `meridian op status`). */
int64_t msql_commit_ts(const msql *s);
/* The commit wait of the session's last read-write commit (ns the leader held its answer until
 * TrueTime said the commit timestamp had passed; 0 when the outcome was learned afterwards). */
int64_t msql_commit_wait_ns(const msql *s);
uint64_t msql_last_txn_id(const msql *s);

/* Rows the session has fetched from the store so far (table rows and index
 * entries; the catalog's own reads are not counted): a point query reads one. */
uint64_t msql_rows_read(const msql *s);
/* How long an autocommit write (or a schema change) keeps retrying retryable
 * aborts and unavailability before it gives up (ms; default 30000). */
void msql_set_retry_deadline(msql *s, int ms);
/* Statements running longer than ms (0: no limit, the default) stop with
 * MSQL_ERROR ("interrupted: ..."), changing nothing: SQLite checks the time as
 * it runs (a wait on the cluster is bounded by its own timeouts). */
void msql_set_statement_timeout(msql *s, int ms);
/* Tests only: switch parts of the schema lease off (sql/README.md, "Schema
 * leases") to show what each guards. NO_REFRESH: never refresh the window on
 * the session's clock (only the timestamp checks stand); NO_LEASE: no window
 * (every transaction reads the version, as with leases off); NO_DEADLINE:
 * read-write transactions use the window without a commit deadline and without
 * the fallback read at COMMIT (unsafe: the negative control). */
enum { MSQL_TEST_NO_REFRESH = 1, MSQL_TEST_NO_LEASE = 2, MSQL_TEST_NO_DEADLINE = 4 };
void msql_test_flags(msql *s, int flags);
/* How often the session read the version record to learn its window, and how
 * often a read-only transaction fell outside it (and read the version). */
void msql_lease_stats(const msql *s, uint64_t *refreshes, uint64_t *fallbacks);
/* Stops the statement s is running (MSQL_ERROR "interrupted"), as Ctrl-C in a
 * shell: callable from another thread or a signal handler's thread. */
void msql_interrupt(msql *s);

#endif

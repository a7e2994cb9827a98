/* sql/sq_int.h: the engine's internal types, shared by its modules.
 *
 *   sq_session.c  the msql_* API: classifying statements, BEGIN/COMMIT/
 *                 SAVEPOINT, autocommit, error codes
 *   sq_txn.c      a session's transaction: lazy begin, the catalog version
 *                 check, reads merged with the write buffer, commit
 *   sq_lease.c    schema leases: the window that stands in for the version read
 *   sq_catalog.c  descriptors under 0x01 keys, loading them into the session
 *                 (virtual tables, views, the scratch database, meridian_schema)
 *   sq_ddl.c      CREATE/DROP TABLE/VIEW/INDEX as read-write transactions
 *   sq_vtab.c     the `meridian` virtual table module: planning, cursors
 *   sq_write.c    xUpdate: the rows a statement writes
 *   sq_dml.c, sq_trigger.c, sq_show.c  UPSERT/RETURNING, triggers, SHOW TABLETS
 *   sq_check.c    a row's values through SQLite's own rules (scratch tables), keys,
 *                 index entries, row ids
 *   sq_row.c, sq_wbuf.c, sq_lex.c  row values, the write buffer, the tokenizer
 *
 * Key space (the first byte): 0x00 the cluster's; 0x01 the SQL catalog;
 * 0x02 rows and index entries:
 *   0x01 0x01                      catalog version record: "<V> <lease_ms> [pending <nonce>]"
 *   0x01 0x02                      the last table/index id handed out
 *   0x01 0x03 name (lower case)    a descriptor (JSON) of a table, view or index
 *   0x01 0x04 int(table id)        the highest INTEGER PRIMARY KEY handed out
 *   0x01 0x05 int(table id)        the hidden row ids handed out (in blocks)
 *   0x02 int(table id) pk...       a row (value: sq_row.h)
 *   0x02 int(parent id) ppk... 0xFF int(child id) ck...   an interleaved row
 *   0x02 int(index id) cols... [pk...]                    an index entry (value: row key)
 */
#ifndef SQL_SQ_INT_H
#define SQL_SQ_INT_H

#include <sqlite3.h>
#include <stdint.h>

#include "meridian.h"
#include "sql/sq_key.h"
#include "sql/sq_wbuf.h"
#include "sql/sql.h"

#define SQ_PFX_CATALOG 0x01
#define SQ_PFX_DATA    0x02
#define SQ_CAT_VERSION 0x01
#define SQ_CAT_NEXTID  0x02
#define SQ_CAT_DESC    0x03
#define SQ_CAT_ALIAS   0x04
#define SQ_CAT_ROWID   0x05

/* The name of the hidden column that holds a row's encoded key. */
#define SQ_KEYCOL "meridian_key__"
/* Hidden row ids are taken from the store in blocks of this many. */
#define SQ_ROWID_BLOCK 1024

#define SQ_MAX_SQLITE_SP 64

/* Internal pending states beside the MSQL_* codes (sq_session.c reads them). */
enum { SQ_PEND_SCHEMA = 1000 };

typedef struct sq_col {
    char *name;
    char *decl; /* the declared type ("" if none) */
    char aff;   /* 'i' INTEGER, 'r' REAL, 'n' NUMERIC, 't' TEXT, 'b' BLOB (none) */
    char *coll; /* collation name: "BINARY", "NOCASE", "RTRIM" */
    int notnull;
    int pk;              /* position in the primary key, 1-based; 0 if not in it */
    char *dflt_text;     /* the DEFAULT expression as SQLite keeps it (NULL: none) */
    sqlite3_value *dflt; /* its value when constant: what rows written before the column
                          * was added (ALTER TABLE ADD COLUMN) read */
} sq_col;

typedef struct sq_table sq_table;
typedef struct sq_dml sq_dml;

/* A row trigger on a table (sq_trigger.c). */
typedef struct sq_trigger {
    char *name, *table, *sql;
    int64_t id; /* creation order */
    int timing; /* 'B' BEFORE, 'A' AFTER, 'I' INSTEAD OF */
    int event;  /* 'I' INSERT, 'U' UPDATE, 'D' DELETE */
    char **of;  /* UPDATE OF columns */
    int nof;
    char *when;  /* WHEN, with NEW/OLD as parameters */
    char **body; /* the statements, likewise */
    int nbody;
    sq_dml *bdml; /* what the session reads in each (INSERT column lists) */
    sqlite3_stmt **st, *when_st;
    int loaded, active;
} sq_trigger;

typedef struct sq_index {
    char *name;
    int64_t id;
    sq_table *tab;
    char *sql; /* CREATE INDEX text (NULL for a UNIQUE constraint's own index) */
    int unique;
    int ncol;
    int *cols; /* table column per index column */
    int *desc;
    uint8_t pfx[16]; /* 0x02 int(id) */
    size_t pfxlen;
} sq_index;

/* A cached scratch statement validating rows for one set of given columns. */
typedef struct sq_chk {
    char *mask; /* '1'/'0' per column */
    sqlite3_stmt *st;
} sq_chk;

struct sq_table {
    char *name;
    int64_t id;
    char *sql;    /* as the user wrote it (SHOW CREATE TABLE) */
    char *create; /* what the scratch database replays (INTERLEAVE clause removed) */
    int ncol;
    sq_col *cols;
    int npk;
    int *pk;          /* the column at each primary key position */
    int *pkdesc;      /* 1 for a DESC key column */
    int rowid_alias;  /* an INTEGER PRIMARY KEY of a rowid table */
    int hidden_rowid; /* no PRIMARY KEY: the key is a hidden row id */
    int nullable_pk;  /* a rowid table's PRIMARY KEY (not an alias): NULLs allowed */
    int without_rowid, strict;
    int64_t parent_id;
    sq_table *parent;
    int cascade;
    sq_table **children;
    int nchildren;
    sq_index **idx;
    int nidx;
    sq_trigger **triggers; /* BEFORE/AFTER row triggers, oldest first */
    int ntriggers;
    uint8_t pfx[16]; /* 0x02 int(root id): the root directory's prefix */
    size_t pfxlen;
    /* scratch statements */
    sq_chk *chk;
    int nchk;
    sqlite3_stmt *st_clear; /* DELETE FROM the twin */
    sqlite3_stmt *st_read;  /* SELECT * FROM the twin */
    sqlite3_stmt *st_vals;  /* SELECT ?1, ..., ?ncol: values from a stored row */
    /* INTEGER PRIMARY KEY assignment: valid in transaction alias_serial */
    uint64_t alias_serial;
    int64_t alias_next;
    /* hidden row ids: [rowid_next, rowid_end) is this session's block */
    int64_t rowid_next, rowid_end;
};

typedef struct sq_view {
    char *name;
    char *sql;
} sq_view;

/* A raw descriptor as stored (JSON text), keyed by its lower-case name. */
typedef struct sq_desc {
    char *key; /* lower-case name */
    char *json;
} sq_desc;

typedef struct sq_cat {
    int64_t version;
    int64_t gen; /* bumped at every rebuild: stale virtual tables notice */
    sq_desc *desc;
    int ndesc;
    sq_table **tables;
    int ntables;
    sq_view **views;
    int nviews;
    sq_index **indexes; /* every index (UNIQUE constraints' too) */
    int nindexes;
    sq_trigger **triggers; /* every trigger (views' too) */
    int ntriggers;
} sq_cat;

/* A transaction of the session, shared by the cursors reading through it. */
typedef struct sq_txn {
    int refs;
    meridian_txn *t; /* NULL once finished */
    int rw;
    int checked; /* the catalog version was read, or the schema lease stands in */
    uint64_t serial;
    /* the schema lease (sq_lease.c): a read-only transaction's timestamp is
     * still to be checked against the window [win_lo, win_hi) (lease_check);
     * a read-write one commits before deadline (0: none, it read the version) */
    int lease_check;
    int64_t win_lo, win_hi;
    int64_t deadline, deadline_mono; /* L, and when the session's clock says it passed */
    int64_t lease_v;                 /* the catalog version the window was for */
    int64_t commit_margin;           /* less left at COMMIT: the version read instead */
    int deadline_set;                /* the commit went with meridian_set_commit_before */
} sq_txn;

/* The catalog version record 0x01 0x01: "<V> <lease_ms> [pending <nonce>]"
 * (legacy "<V>": lease 0). */
typedef struct sq_ver {
    int64_t v;
    int64_t lease_ms;
    uint64_t nonce; /* a schema change's marker (0: none) */
    int64_t ts;     /* the record's commit timestamp (0: not read at one) */
    int missing;    /* no record: a new catalog */
} sq_ver;

#define SQ_LEASE_DEFAULT_MS 1000  /* a new catalog's schema_lease */
#define SQ_LEASE_MAX_MS     60000 /* every schema change waits this long at most */

typedef struct sq_savepoint {
    char *name;
    size_t mark;
} sq_savepoint;

/* A DML statement as the session reads it (sq_dml.c): its target, an
 * INSERT's column list (columns left out get their DEFAULT), and the clauses
 * SQLite refuses on virtual tables, which the session removes from the text
 * and carries out itself: ON CONFLICT (UPSERT) and RETURNING. */
enum { SQ_UPSERT_NOTHING = 1, SQ_UPSERT_UPDATE = 2 };

struct sq_dml {
    int kind;    /* 0 (not DML), 'I' INSERT/REPLACE, 'U' UPDATE, 'D' DELETE */
    char *table; /* the target */
    char *alias;
    char **cols; /* INSERT's column list (NULL: every column given); UPDATE's SET columns */
    int ncols;
    int default_values;
    /* ON CONFLICT [(target)] DO NOTHING | DO UPDATE SET ... [WHERE ...] */
    int upsert;
    char **target; /* the conflict target's columns (NULL: any uniqueness conflict) */
    int ntarget;
    char *set_text, *upd_where; /* DO UPDATE's assignments and WHERE, as written */
    sqlite3_stmt *ups;          /* SELECT <every column's new value>, <WHERE> FROM t WHERE key = ?1,
                                 * excluded.c_i as ?(i + 2) */
    /* RETURNING */
    char *ret_text;
    sqlite3_stmt *ret; /* SELECT <returning list> FROM t WHERE key = ?1 */
    /* where RETURNING's rows go while the statement runs (sq_session.c) */
    int (*emit)(void *arg, sqlite3_stmt *row);
    void *emit_arg;
};

struct msql {
    meridian *db;
    sqlite3 *conn;    /* the session's connection: virtual tables and views */
    sqlite3 *scratch; /* real tables mirroring the catalog: validation */
    sq_cat cat;
    sqlite3_stmt *st_cast_text; /* SELECT CAST(?1 AS TEXT) on scratch */
    sqlite3_value *null_value;

    /* transaction state */
    int explicit_txn; /* inside BEGIN ... COMMIT/ROLLBACK */
    int explicit_ro;
    meridian_bound bound;
    int64_t bound_ns;
    int by_savepoint;  /* the transaction was opened by SAVEPOINT */
    sq_txn *tx;        /* the transaction vtab methods use now (NULL: none yet) */
    int autocommit_ro; /* the running statement is an autocommit read */
    int in_run;        /* inside meridian_run for an autocommit write */
    sq_wbuf *wb;
    size_t stmt_mark;
    size_t sqlite_sp[SQ_MAX_SQLITE_SP]; /* SQLite's statement savepoints (nested statements) */
    sq_savepoint *sp;
    int nsp;
    uint64_t serial;
    const sq_dml *dml; /* the running statement's, or NULL */
    int stmt_kept;     /* SQLite kept the failed statement's rows (OR FAIL) */
    int raise_ignore;  /* a trigger ran RAISE(IGNORE) */
    int use_msg;       /* the statement's failure is told by s->msg (reload, timeout), not SQLite */
    size_t key_used;   /* meridian_key_value(): the bytes the last value took */
    int rollback_all;  /* an OR ROLLBACK conflict: end the whole transaction */

    /* errors */
    int pending; /* MSQL_RETRY, MSQL_UNAVAILABLE, MSQL_UNKNOWN, MSQL_NOMEM, SQ_PEND_SCHEMA */
    char *msg;   /* sqlite3_mprintf'd: the lower layers' message */
    char *errmsg;
    int erroff;
    int internal; /* the session runs its own SQL: the authorizer lets it */
    void *auth;   /* what the authorizer notes while a statement is prepared */

    int64_t commit_ts;
    int64_t commit_wait_ns; /* the last commit's wait (msql_commit_wait_ns) */
    uint64_t last_txn_id;
    uint64_t rows_read;
    int retry_ms;        /* meridian_run's deadline for autocommit writes */
    int stmt_timeout_ms; /* msql_set_statement_timeout (0: none) */
    /* the schema lease (sq_lease.c): [win_lo, win_hi) is when catalog version
     * win_v is certainly the schema (win_v -1: no window) */
    int64_t lease_ms; /* the setting as last read (0: leases off) */
    int64_t win_v, win_lo, win_hi;
    int64_t win_mono_end;  /* monotonic ns when win_hi has passed at the latest */
    int64_t refresh_after; /* monotonic ns: no refresh before (one per lease) */
    uint64_t refreshes, lease_fallbacks;
    int test_flags;        /* msql_test_flags */
    int64_t stmt_deadline; /* monotonic ns when the running statement is stopped (0: never) */
};

/* ---- sq_session.c ---- */
/* Records a lower layer's failure: code is MSQL_* (or SQ_PEND_SCHEMA), the
 * message printf-style. Returns SQLITE_ERROR (SQLITE_NOMEM for MSQL_NOMEM). */
int sq_fail(msql *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Maps a libmeridian failure (rc != OK/NOTFOUND) onto the session: the code
 * and "what: meridian's message". Returns SQLITE_ERROR or SQLITE_NOMEM. */
int sq_fail_meridian(msql *s, int rc, const char *what);
/* Sets s->msg from SQLite's message on db. Returns rc. */
int sq_fail_sqlite(msql *s, sqlite3 *db, int rc);
/* Runs internal SQL on db (the authorizer lets it). SQLite's code. */
int sq_exec_internal(msql *s, sqlite3 *db, const char *sql);
char *sq_lower(const char *name); /* malloc'd ASCII lower case */
/* Quotes a name as "x" (doubling quotes), sqlite3_mprintf'd. */
char *sq_quote(const char *name);

/* ---- sq_txn.c ---- */
/* The transaction for a vtab method (rw = 1: it will write), begun lazily and
 * checked against the catalog version. NULL with the session's failure set
 * (SQ_PEND_SCHEMA: the catalog changed; reload and run the statement again). */
sq_txn *sq_txn_get(msql *s, int rw);
void sq_txn_ref(sq_txn *x);
void sq_txn_unref(sq_txn *x);
/* Begins s->tx: read-write, or read-only at s->bound. */
int sq_txn_begin(msql *s, int rw, meridian_bound bound, int64_t ns);
/* Ends s->tx without committing (rollback); clears the write buffer and savepoints. */
void sq_txn_abandon(msql *s);
/* Sends the write buffer to libmeridian (before a commit). 0 or SQLITE_ERROR. */
int sq_txn_flush(msql *s);
/* Commits s->tx: flush, meridian_commit; sets commit_ts/last_txn_id. An MSQL_* code. */
int sq_txn_commit(msql *s);
/* Reads the catalog version through x into *v (0 if none). 0 or SQLITE_ERROR. */
int sq_txn_read_version(msql *s, sq_txn *x, int64_t *v);
/* Reads the catalog version through x: SQLITE_OK when it is the session's, else the failure
 * (SQ_PEND_SCHEMA when it moved: the statement reloads and reruns). */
int sq_txn_check_version(msql *s, sq_txn *x);

/* Reads key through x merged with the write buffer: SQLITE_OK found (*val
 * malloc'd, free with free()), SQLITE_NOTFOUND, or an SQLite error code
 * (the session's failure set). */
int sq_read(msql *s, sq_txn *x, const uint8_t *key, size_t klen, uint8_t **val, size_t *vlen);
/* Store rows of [start, end) (end NULL: to the end), at most limit, in order:
 * not merged with the buffer (cursors merge). fn returns non-zero to stop.
 * 0 or an SQLite error. */
typedef int (*sq_row_cb)(void *arg, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl);
int sq_scan_store(msql *s, sq_txn *x, const uint8_t *start, size_t slen, const uint8_t *end,
                  size_t elen, size_t limit, sq_row_cb fn, void *arg);
/* Every row of [start, end) merged with the buffer, in key order. */
int sq_scan_merged(msql *s, sq_txn *x, const uint8_t *start, size_t slen, const uint8_t *end,
                   size_t elen, sq_row_cb fn, void *arg);
/* Buffered writes (the transaction must be read-write). 0 or SQLITE_NOMEM. */
int sq_txn_put(msql *s, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);
int sq_txn_del(msql *s, const uint8_t *key, size_t klen);

/* ---- sq_lease.c ---- */
/* Parses / formats a version record. 0 or -1 (garbage). */
int sq_ver_parse(const void *val, size_t n, sq_ver *out);
void sq_ver_format(const sq_ver *r, char *buf, size_t n);
/* Reads the record through t (a read-write transaction: under its shared
 * lock), with its commit timestamp; notes the lease setting in s. */
int sq_ver_read(msql *s, meridian_txn *t, sq_ver *out);
/* Learns the window: reads the record at EXACT_STALENESS 0; a version other
 * than the cached one loads the catalog (may_load) or leaves no window. */
int sq_lease_refresh(msql *s, int may_load);
/* Can x skip reading the version (the window stands in)? 1: yes (x set up
 * for sq_lease_check / the commit deadline), 0: read it. */
int sq_lease_begin(msql *s, sq_txn *x);
/* After x's first store read: its timestamp in the window, or the version
 * read at it (SQ_PEND_SCHEMA when it differs). 0 or SQLITE_ERROR. */
int sq_lease_check(msql *s, sq_txn *x);
/* A schema change's nonce (random, non-zero) and its wait: sleeps lease_ms,
 * then reads the record at m + lease + 1 (*ours: it still holds nonce). */
/* Before committing read-write x: the deadline, or (less than a quarter of
 * the lease left by the session's clock) the version read under x's lock. 0 or SQLITE_ERROR
 * (MSQL_RETRY when the schema changed). */
int sq_lease_commit(msql *s, sq_txn *x);
uint64_t sq_lease_nonce(void);
void sq_lease_sleep_ms(int64_t ms);
int sq_lease_wait(msql *s, int64_t m, int64_t lease_ms, uint64_t nonce, int *ours);

/* ---- sq_catalog.c ---- */
/* Loads the catalog through x (every descriptor) and rebuilds the session's
 * objects. SQLite/session error codes. */
int sq_cat_load(msql *s, sq_txn *x, int64_t version);
/* Loads the catalog if the store's version differs from the session's, and
 * learns the schema lease's window (sq_lease_refresh). */
int sq_cat_refresh(msql *s);
/* Rebuilds the session's objects from s->cat.desc. */
int sq_cat_rebuild(msql *s);
void sq_cat_free(msql *s);
sq_table *sq_cat_table(msql *s, const char *name);
sq_table *sq_cat_table_id(msql *s, int64_t id);
sq_view *sq_cat_view(msql *s, const char *name);
sq_index *sq_cat_index(msql *s, const char *name);
sq_trigger *sq_cat_trigger(msql *s, const char *name);
/* Catalog keys. */
size_t sq_cat_key(uint8_t *out, int kind);
int sq_cat_desc_key(sq_buf *b, const char *name);
int sq_cat_id_key(sq_buf *b, int kind, int64_t id);
/* The smallest key above every key starting with p (false: none: all 0xFF). */
int sq_key_succ(const uint8_t *p, size_t n, uint8_t *out, size_t *outlen);

/* ---- sq_ddl.c ---- */
typedef struct sq_ddl sq_ddl;
/* Parses/validates DDL text at prepare time: NULL + message if it is not
 * (then s->errmsg/erroff are set), else a plan run by sq_ddl_run. */
sq_ddl *sq_ddl_prepare(msql *s, const char *sql, int len, const char **tail, int *rc);
int sq_ddl_run(msql *s, sq_ddl *d); /* an MSQL_* code */
void sq_ddl_free(sq_ddl *d);

/* ---- sq_dml.c ---- */
/* Reads the DML statement at start (up to end) of sql: *rewritten (malloc'd)
 * is the text for SQLite when clauses were taken out, else NULL, and then
 * *tail is where the statement ends in sql (past its ';'). MSQL_OK, or an
 * MSQL_* code with the session's error (errmsg, erroff) set. */
int sq_dml_parse(msql *s, const char *sql, const char *start, const char *end, sq_dml *d,
                 char **rewritten, const char **tail);
/* Prepares the UPSERT and RETURNING statements once the target is known to
 * SQLite. MSQL_OK or MSQL_ERROR (session error set). */
int sq_dml_prepare(msql *s, sq_dml *d);
void sq_dml_free(sq_dml *d);
/* RETURNING: evaluates the list for the row at key (now) and emits it. */
int sq_dml_return(msql *s, const sq_dml *d, const uint8_t *key, size_t klen);

/* ---- sq_trigger.c ---- */
#define SQ_TRIGGER_IGNORE 1001 /* sq_trigger_fire: RAISE(IGNORE): skip the row */
/* Reads a CREATE TRIGGER text (SQLite accepted it) for table t (NULL: a
 * view's, kept as text). SQLite codes. */
int sq_trigger_parse(const char *sql, const sq_table *t, sq_trigger **out);
void sq_trigger_free(sq_trigger *g);
/* Fires t's triggers of (timing, event) for one row (oldv/newv: its values,
 * NULL where there are none). SQLITE_OK, SQ_TRIGGER_IGNORE, or an error with
 * the session's failure set. */
int sq_trigger_fire(msql *s, sq_table *t, int timing, int event, sqlite3_value **oldv,
                    sqlite3_value **newv);
/* meridian_raise() on the session's connection. */
int sq_trigger_register(msql *s);

/* ---- sq_show.c ---- */
/* SHOW TABLETS FOR TABLE table: one row per tablet (object, start, end,
 * group, leader, replicas) through add. SQLite codes, session failure set. */
int sq_show_tablets(msql *s, const char *table, int (*add)(void *arg, sqlite3_stmt *row),
                    void *arg);
/* meridian_key_value() on the session's connection. */
int sq_show_register(msql *s);

/* ---- sq_write.c ---- */
/* One xUpdate of table t in transaction x (SQLite's argc/argv). SQLite codes,
 * the session's failure set. */
int sq_update(msql *s, sq_table *t, sq_txn *x, int argc, sqlite3_value **argv);

/* ---- sq_vtab.c ---- */
int sq_vtab_register(msql *s);

/* ---- sq_check.c ---- */
/* Runs n = t->ncol values (given[i] = 0: column left out, take its DEFAULT)
 * through the scratch table: affinity, STRICT, NOT NULL, CHECK, DEFAULT.
 * out[i] are new values (sqlite3_value_free each). SQLITE_OK or SQLite's
 * code (CONSTRAINT, MISMATCH, ...) with s->msg set. */
int sq_check_row(msql *s, sq_table *t, sqlite3_value **in, const char *given, sqlite3_value **out);
/* Values of a stored row: out[i] for every column (sqlite3_value_free each). */
int sq_row_values(msql *s, sq_table *t, const uint8_t *val, size_t vlen, sqlite3_value **out);
/* The key of a row with values v (converted). uid: the hidden suffix for a
 * hidden row id or a NULL in a nullable primary key (ignored otherwise). */
int sq_key_of_row(msql *s, sq_table *t, sqlite3_value **v, int64_t uid, sq_buf *b);
/* Does this row need the hidden suffix? */
int sq_key_needs_uid(sq_table *t, sqlite3_value **v);
/* The key prefix for the first m primary key values v (m <= npk): the root
 * prefix, the encoded values and, where m ends a level whose child is t or an
 * ancestor of t, 0xFF + that child's id. */
int sq_key_prefix(msql *s, sq_table *t, sqlite3_value **v, int m, sq_buf *b);
/* The index entry of a row (key and value). */
int sq_index_entry(msql *s, sq_index *ix, sqlite3_value **v, const uint8_t *rowkey,
                   size_t rowkeylen, sq_buf *key);
/* A value under a column's affinity (for key bounds): new value, or NULL on no memory. */
sqlite3_value *sq_affinity(msql *s, sqlite3_value *v, char aff);
/* The next hidden row id of t (blocks taken from the store). 0 or SQLITE_ERROR. */
int sq_next_rowid(msql *s, sq_table *t, int64_t *id);
/* The INTEGER PRIMARY KEY a NULL would get now (max + 1, as SQLite). */
int sq_next_alias(msql *s, sq_txn *x, sq_table *t, int64_t *id);
/* A row with INTEGER PRIMARY KEY id was written (assigned: by sq_next_alias):
 * keeps max + 1 right, and moves the stored mark for assigned ids. */
int sq_note_alias(msql *s, sq_txn *x, sq_table *t, int64_t id, int assigned);
void sq_check_free(sq_table *t);
char sq_affinity_of(const char *decl, int strict);

#endif

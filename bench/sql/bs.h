/* bench-sql: the interface between the driver (bench_sql.c: sessions, timing, checks, the
 * table) and the systems it measures: Meridian's SQL engine (msql sessions over libmeridian),
 * raw libmeridian (the same keys through meridian_get/put), PostgreSQL (SERIALIZABLE, a private
 * server) and SQLite (a WAL file database, synchronous=FULL). Every system holds the same
 * schema and data:
 *
 *   owners   (id INTEGER PRIMARY KEY, name TEXT)                     nowners rows
 *   accounts (id INTEGER PRIMARY KEY, owner INTEGER, balance INTEGER, name TEXT)  naccounts rows,
 *            owner = id % nowners, balance = 1000, name = 'account-<id>'
 *   ins      (id INTEGER PRIMARY KEY, owner INTEGER, balance INTEGER, name TEXT)  empty; inserts
 *
 * and runs the same statements (bs_case). */
#ifndef BS_H
#define BS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"

typedef enum {
    BS_SELECT = 0, /* SELECT balance, name FROM accounts WHERE id = a            -> 1 row */
    BS_INSERT,     /* INSERT INTO ins VALUES (a, 0, 1000, 'ins-<a>')               -> 0 rows */
    BS_UPDATE,     /* UPDATE accounts SET balance = balance + 1 WHERE id = a      -> 0 rows */
    BS_SCAN,       /* SELECT id, balance FROM accounts WHERE id >= a AND id < a + 100 -> 100 */
    BS_JOIN,       /* SELECT a.id, o.name FROM accounts a JOIN owners o ON o.id = a.owner
                    * WHERE a.id >= a AND a.id < a + 10                         -> 10 rows */
    BS_CASES
} bs_case;

#define BS_SCAN_ROWS 100
#define BS_JOIN_ROWS 10

extern const char *const bs_case_names[BS_CASES];
/* Each case's statement in SQLite's dialect with its one parameter as ?1 (meridian-sql and
 * sqlite prepare these; PostgreSQL's client its own, with $1). */
extern const char *const bs_case_sql[BS_CASES];

/* The SQL text of case k with argument a (for systems without bind parameters). */
void bs_sql(bs_case k, int64_t a, char *buf, size_t len);

typedef struct bs_data {
    int64_t naccounts;
    int nowners;
} bs_data;

/* One operation's result: rows returned, and on failure a message. */
typedef struct bs_result {
    int64_t rows;
    bool unknown; /* a write whose outcome is unknown (it may have committed) */
    char msg[240];
} bs_result;

/* A system under test. Calls on one client come from one thread; different clients from
 * different threads at once. */
typedef struct bs_system {
    const char *name;
    bool cases[BS_CASES]; /* which cases it runs */
    /* Creates the schema and loads the data (once per run). */
    int (*load)(void *sys, const bs_data *d, mr_err *err);
    int (*open)(void *sys, void **client, mr_err *err);
    /* Runs case k with argument a: MR_OK with r->rows, else an error with r->msg. */
    int (*op)(void *client, bs_case k, int64_t a, bs_result *r);
    /* The checks: rows of ins with id in [lo, hi), and sum(balance) of accounts. */
    int (*count_ins)(void *sys, int64_t lo, int64_t hi, int64_t *n, mr_err *err);
    int (*sum_balance)(void *sys, int64_t *sum, mr_err *err);
    void (*close)(void *client);
    void *sys;
} bs_system;

/* Meridian: a cluster of `nodes` nodes (one data group, every range on `nodes` replicas)
 * started by the launcher from the meridian binary; two systems over it: "meridian-sql" and
 * "meridian-kv" (raw libmeridian on the very keys the SQL rows live at). */
typedef struct bs_meridian bs_meridian;
/* schema_lease: the SQL catalog's schema_lease the statements run with ("1s"; "0": leases off,
 * every transaction reads the catalog version first). prepare: meridian-sql prepares each
 * statement once per client and binds its argument (false: prepares the text every time). */
int bs_meridian_start(const char *bin, int nodes, const char *keep_dir, int64_t timeout_ms,
                      const char *schema_lease, bool prepare, bs_meridian **out, mr_err *err);
void bs_meridian_systems(bs_meridian *m, bs_system *sql, bs_system *kv);
const char *bs_meridian_dir(const bs_meridian *m);
void bs_meridian_stop(bs_meridian *m);

/* SQLite: a file database in a temporary directory, WAL, synchronous=FULL, busy timeout 30 s
 * (one writer at a time, as SQLite allows). */
int bs_sqlite_start(bs_system *sys, mr_err *err);
void bs_sqlite_stop(bs_system *sys);

#ifdef BS_HAVE_PG
/* PostgreSQL: a private server (bench/pg_server.h), each connection SERIALIZABLE. */
int bs_pg_start(const char *bindir, int max_connections, bs_system *sys, mr_err *err);
void bs_pg_stop(bs_system *sys);
#endif

#endif

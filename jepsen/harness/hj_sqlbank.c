/* The sql-bank workload: Jepsen's bank test through Meridian's SQL engine (sql/sql.h). Setup
 * creates `accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)` with N accounts of 100
 * each, all through SQL, then splits the table's key range at account boundaries (the keys the
 * engine writes, sq_key.h) so that the accounts live in different tablets and groups. Each
 * client thread runs one msql session over its own libmeridian connection:
 *   transfer  BEGIN; SELECT id, balance ... WHERE id IN (from, to); UPDATE (from); UPDATE (to);
 *             COMMIT (refused, nothing written, when it would overdraw);
 *   read      SELECT id, balance FROM accounts, a strong snapshot: autocommit, or inside
 *             BEGIN READ ONLY ... COMMIT (each half the time).
 * Recorded in the bank history format and judged by jepsen/bank.c (total conserved, no
 * negative balance, every account in every read).
 *
 * `sql-bank-autocommit` is a broken variant for a negative control: each transfer is two
 * autocommit UPDATEs, so a read between them sees money in flight (a wrong total). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jepsen/bank.h"
#include "jepsen/harness/hj_txn.h"
#include "tablet/node/nd.h"
#include "sql/sq_key.h"
#include "sql/sql.h"

#define SB_ACCOUNTS 5
#define SB_OPENING  100
#define SB_ATTEMPTS 3

/* The run's accounts and the table's id (one run per process): the checker and the split
 * nemesis need them, set when the workload starts. */
static int sb_accounts_for_check = SB_ACCOUNTS;
static int64_t sb_table_id = -1;

typedef struct sqlbank {
    hj_client_env env;
    int accounts;
    bool autocommit; /* the broken variant */
    msql **sess;     /* per worker, over its connection */
    hj_txn_pool *pool;
} sqlbank;

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The key of account `id`'s row: 0x02, the table's id, the INTEGER PRIMARY KEY (sq_key.h).
 * 0 or -1 (no memory). */
static int account_key(int64_t table, long long id, sq_buf *k)
{
    uint8_t p = 0x02;
    if (sq_buf_put(k, &p, 1) || sq_key_append_int(k, table, 0))
        return -1;
    return id >= 0 && sq_key_append_int(k, id, 0) ? -1 : 0;
}

/* The split nemesis's key for account id (hj_nemesis.h): {"hex": "..."}. */
int hj_sqlbank_split_key(long long id, char *json, size_t jlen, char *label, size_t llen)
{
    if (sb_table_id < 0)
        return -1;
    sq_buf k = {0};
    if (account_key(sb_table_id, id, &k) != 0) {
        sq_buf_free(&k);
        return -1;
    }
    size_t n = (size_t)snprintf(json, jlen, "{\"key\":{\"hex\":\"");
    for (size_t i = 0; i < k.len && n + 3 < jlen; i++)
        n += (size_t)snprintf(json + n, jlen - n, "%02x", k.p[i]);
    if (n + 4 > jlen) {
        sq_buf_free(&k);
        return -1;
    }
    snprintf(json + n, jlen - n, "\"}}");
    snprintf(label, llen, "accounts(%lld)", id);
    sq_buf_free(&k);
    return 0;
}

/* The table's id from its catalog descriptor (`01 03 name`, JSON with "id"), or -1. */
static int64_t table_id(meridian *db, const char *name)
{
    meridian_txn *t = NULL;
    if (meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t) != MERIDIAN_OK)
        return -1;
    char key[64] = {0x01, 0x03};
    size_t n = strlen(name);
    memcpy(key + 2, name, n);
    void *v = NULL;
    size_t vl = 0;
    int64_t id = -1;
    if (meridian_get(t, key, n + 2, &v, &vl) == MERIDIAN_OK) {
        json_t *j = json_loadb(v, vl, 0, NULL);
        json_t *jid = json_object_get(j, "id");
        if (json_is_integer(jid))
            id = (int64_t)json_integer_value(jid);
        json_decref(j);
    }
    meridian_free(v);
    meridian_rollback(t);
    return id;
}

/* Runs one statement, its single row's first two columns into a and b (when given).
 * Returns the msql code (MSQL_OK once done). */
static int query2(msql *s, const char *sql, long long *a, long long *b)
{
    msql_stmt *st = NULL;
    int rc = msql_prepare(s, sql, -1, &st, NULL);
    if (rc != MSQL_OK)
        return rc;
    while ((rc = msql_step(st)) == MSQL_ROW) {
        if (a)
            *a = sqlite3_value_int64(msql_column_value(st, 0));
        if (b && msql_column_count(st) > 1)
            *b = sqlite3_value_int64(msql_column_value(st, 1));
    }
    msql_finalize(st);
    return rc == MSQL_DONE ? MSQL_OK : rc;
}

/* Splits at account id's key: each node is asked until the leader takes it. */
static bool split_at_account(const hj_client_env *env, long long id, mr_err *err)
{
    char json[256], label[64];
    if (hj_sqlbank_split_key(id, json, sizeof json, label, sizeof label) != 0) {
        mr_errf(err, MR_ENOMEM, "split key for account %lld", id);
        return false;
    }
    const hj_cluster *c = env->cluster;
    for (int attempt = 0; attempt < 40 && !hj_interrupted; attempt++) {
        int i = attempt % c->n;
        json_t *r = NULL;
        if (hj_rpc(c->tls, c->nodes[i].addr, ND_MSG_SPLIT_AT, json, 3000, &r, err) != MR_OK)
            continue;
        const char *e = json_string_value(json_object_get(r, "error"));
        bool done = json_is_true(json_object_get(r, "ok")) || (e && strcmp(e, "boundary") == 0);
        json_decref(r);
        if (done)
            return true;
        if (i == c->n - 1)
            nap(300);
    }
    mr_errf(err, MR_EUNAVAIL, "no leader took the split at %s", label);
    return false;
}

/* Waits until the table's range is cut into `want` ranges, each with a known leader. */
static bool tablets_ready(meridian *db, int want, char *groups, size_t glen)
{
    sq_buf s = {0}, e = {0};
    if (account_key(sb_table_id, -1, &s) || account_key(sb_table_id + 1, -1, &e)) {
        sq_buf_free(&s);
        sq_buf_free(&e);
        return false;
    }
    bool ok = false;
    for (int attempt = 0; attempt < 150 && !ok && !hj_interrupted; attempt++) {
        meridian_range *rr = NULL;
        size_t nr = 0;
        if (meridian_ranges(db, s.p, s.len, e.p, e.len, 1, &rr, &nr) == MERIDIAN_OK &&
            nr == (size_t)want) {
            ok = true;
            size_t off = 0;
            groups[0] = '\0';
            for (size_t i = 0; i < nr; i++) {
                ok &= rr[i].leader && rr[i].leader[0];
                if (off < glen)
                    off += (size_t)snprintf(groups + off, glen - off, "%s%llu", i ? ", " : "",
                                            (unsigned long long)rr[i].group);
            }
        }
        meridian_free_ranges(rr, nr);
        if (!ok)
            nap(200);
    }
    sq_buf_free(&s);
    sq_buf_free(&e);
    return ok;
}

static int sqlbank_setup(void *wl, meridian *db, mr_err *err)
{
    sqlbank *b = wl;
    msql *s = NULL;
    int rc = msql_open(db, &s);
    if (rc != MSQL_OK) {
        mr_errf(err, MR_EUNAVAIL, "msql_open: %s", s ? msql_errmsg(s) : "out of memory");
        msql_close(s);
        return MR_EUNAVAIL;
    }
    /* The table: DDL retries retryable aborts itself; an unknown outcome is settled by
     * looking for the descriptor. */
    for (int attempt = 0; attempt < 10 && !hj_interrupted; attempt++) {
        rc = msql_exec(s, "CREATE TABLE accounts(id INTEGER PRIMARY KEY, "
                          "balance INTEGER NOT NULL)");
        if (rc == MSQL_OK || table_id(db, "accounts") >= 0)
            break;
        nap(500);
    }
    sb_table_id = table_id(db, "accounts");
    if (sb_table_id < 0) {
        mr_errf(err, MR_EUNAVAIL, "CREATE TABLE accounts: %s", msql_errmsg(s));
        msql_close(s);
        return MR_EUNAVAIL;
    }
    /* The opening balances, 100 accounts per statement (a transaction each): OR IGNORE makes
     * a statement run again after an unknown outcome or a failure harmless; the count and the
     * sum say whether they all committed. */
    char sql[2048];
    long long count = -1, total = -1;
    for (int attempt = 0; attempt < 10 && !hj_interrupted; attempt++) {
        for (int first = 0; first < b->accounts; first += 100) {
            size_t n = (size_t)snprintf(sql, sizeof sql,
                                        "INSERT OR IGNORE INTO accounts(id, balance) VALUES ");
            for (int i = first; i < b->accounts && i < first + 100; i++)
                n += (size_t)snprintf(sql + n, sizeof sql - n, "%s(%d, %d)", i > first ? ", " : "",
                                      i, SB_OPENING);
            if (msql_exec(s, sql) != MSQL_OK)
                break;
        }
        if (query2(s, "SELECT count(*), coalesce(sum(balance), 0) FROM accounts", &count, &total) ==
                MSQL_OK &&
            count == b->accounts)
            break;
        nap(500);
    }
    if (count != b->accounts || total != (long long)b->accounts * SB_OPENING) {
        mr_errf(err, MR_EUNAVAIL, "opening balances: %lld accounts holding %lld (%s)", count, total,
                msql_errmsg(s));
        msql_close(s);
        return MR_EUNAVAIL;
    }
    msql_close(s);
    /* Spread the accounts over the groups: cut the table at account boundaries (0..N-1 in
     * `keys` tablets, at least two). */
    int parts = b->env.keys > 1 ? b->env.keys : 2;
    if (parts > b->accounts)
        parts = b->accounts;
    int made = 1;
    long long last = 0;
    for (int p = 1; p < parts; p++) {
        long long at = (long long)p * b->accounts / parts;
        if (at <= last)
            continue;
        if (!split_at_account(&b->env, at, err))
            return mr_err_wrap(err, "splitting accounts");
        last = at;
        made++;
    }
    char groups[128];
    if (!tablets_ready(db, made, groups, sizeof groups))
        return mr_errf(err, MR_EUNAVAIL,
                       "the accounts table did not come to %d tablets with leaders", made);
    printf("sql-bank: table accounts (id %lld), %d accounts in %d tablets of groups %s\n",
           (long long)sb_table_id, b->accounts, made, groups);
    fflush(stdout);
    return MR_OK;
}

/* The worker's session, opened over its connection on demand; NULL when neither can be had
 * now. */
static msql *session(sqlbank *b, hj_txn_worker *w)
{
    if (b->sess[w->index])
        return b->sess[w->index];
    meridian *db = hj_txn_db(w);
    if (!db)
        return NULL;
    msql *s = NULL;
    int rc = msql_open(db, &s);
    if (rc != MSQL_OK) {
        hj_txn_note(w, "msql_open: %s", s ? msql_errmsg(s) : "out of memory");
        msql_close(s);
        nap(200);
        return NULL;
    }
    b->sess[w->index] = s;
    return s;
}

static void sqlbank_closing(void *wl, hj_txn_worker *w)
{
    sqlbank *b = wl;
    msql_close(b->sess[w->index]);
    b->sess[w->index] = NULL;
}

static void sql_log(hj_txn_worker *w, msql *s, const char *what, int rc)
{
    static const char *const names[] = {"ok",      "sql error",   "retry",
                                        "unknown", "unavailable", "nomem"};
    hj_txn_note(w, "%s: %s: %s", what, rc >= 0 && rc <= MSQL_NOMEM ? names[rc] : "unexpected",
                msql_errmsg(s));
}

/* Leaves no transaction open after a failure before COMMIT. */
static void abandon(msql *s)
{
    if (msql_in_transaction(s))
        msql_exec(s, "ROLLBACK");
}

/* The outcome of a COMMIT's code: ok, fail when certainly not committed (a retryable abort:
 * the whole transaction was rolled back), info otherwise (it may have). */
static jp_type commit_outcome(int rc)
{
    return rc == MSQL_OK ? JP_OK : rc == MSQL_RETRY ? JP_FAIL : JP_INFO;
}

static void do_transfer(sqlbank *b, hj_txn_worker *w)
{
    int from = (int)hj_rng_below(&w->rng, (uint64_t)b->accounts);
    int to = (int)hj_rng_below(&w->rng, (uint64_t)b->accounts - 1);
    to += to >= from;
    long long amount = hj_rng_range(&w->rng, 1, 5);
    json_t *v = json_pack("{s:i, s:i, s:I}", "from", from, "to", to, "amount", (json_int_t)amount);
    hj_txn_invoke(w, "transfer", json_incref(v));
    msql *s = session(b, w);
    if (!s) {
        hj_txn_complete(w, JP_FAIL, "transfer", v);
        return;
    }
    char sql[256];
    if (b->autocommit) {
        /* Broken on purpose: a read, then the debit and the credit as two autocommit
         * transactions; the first commits before the second runs. */
        long long fb = -1;
        snprintf(sql, sizeof sql, "SELECT balance, 0 FROM accounts WHERE id = %d", from);
        int rc = query2(s, sql, &fb, NULL);
        if (rc != MSQL_OK || fb < amount) {
            if (rc != MSQL_OK)
                sql_log(w, s, "transfer read", rc);
            hj_txn_complete(w, JP_FAIL, "transfer", v);
            return;
        }
        snprintf(sql, sizeof sql, "UPDATE accounts SET balance = balance - %lld WHERE id = %d",
                 amount, from);
        rc = msql_exec(s, sql);
        if (rc != MSQL_OK) {
            sql_log(w, s, "transfer debit", rc);
            hj_txn_complete(w, rc == MSQL_RETRY || rc == MSQL_ERROR ? JP_FAIL : JP_INFO, "transfer",
                            v);
            return;
        }
        snprintf(sql, sizeof sql, "UPDATE accounts SET balance = balance + %lld WHERE id = %d",
                 amount, to);
        rc = msql_exec(s, sql);
        if (rc != MSQL_OK)
            sql_log(w, s, "transfer credit", rc);
        /* Once the debit committed the transfer is at least partly done: never fail. */
        hj_txn_complete(w, rc == MSQL_OK ? JP_OK : JP_INFO, "transfer", v);
        return;
    }
    for (int attempt = 0; attempt < SB_ATTEMPTS; attempt++) {
        int rc = msql_exec(s, "BEGIN");
        long long fb = -1, tb = -1;
        if (rc == MSQL_OK) {
            msql_stmt *st = NULL;
            snprintf(sql, sizeof sql, "SELECT id, balance FROM accounts WHERE id IN (%d, %d)", from,
                     to);
            rc = msql_prepare(s, sql, -1, &st, NULL);
            while (rc == MSQL_OK && (rc = msql_step(st)) == MSQL_ROW) {
                long long id = sqlite3_value_int64(msql_column_value(st, 0));
                long long bal = sqlite3_value_int64(msql_column_value(st, 1));
                if (id == from)
                    fb = bal;
                else if (id == to)
                    tb = bal;
                rc = MSQL_OK;
            }
            if (rc == MSQL_DONE)
                rc = MSQL_OK;
            msql_finalize(st);
        }
        if (rc == MSQL_OK && (fb < 0 || tb < 0)) {
            /* an account missing: the checker will say so from the reads; nothing written */
            sql_log(w, s, "transfer: an account is missing", rc);
            abandon(s);
            hj_txn_complete(w, JP_FAIL, "transfer", v);
            return;
        }
        if (rc == MSQL_OK && fb < amount) {
            abandon(s); /* would overdraw: refused, nothing written */
            hj_txn_complete(w, JP_FAIL, "transfer", v);
            return;
        }
        if (rc == MSQL_OK) {
            snprintf(sql, sizeof sql,
                     "UPDATE accounts SET balance = %lld WHERE id = %d; "
                     "UPDATE accounts SET balance = %lld WHERE id = %d",
                     fb - amount, from, tb + amount, to);
            rc = msql_exec(s, sql);
        }
        if (rc != MSQL_OK) {
            /* Before COMMIT nothing was sent for commit: fail, or try again when the engine
             * says the transaction can be run again. */
            sql_log(w, s, "transfer before commit", rc);
            abandon(s);
            if ((rc == MSQL_RETRY || rc == MSQL_UNAVAILABLE) && !hj_txn_stopping(w))
                continue;
            hj_txn_complete(w, JP_FAIL, "transfer", v);
            return;
        }
        /* The commit's answer is final: an operation is never committed twice. */
        rc = msql_exec(s, "COMMIT");
        if (rc != MSQL_OK) {
            sql_log(w, s, "transfer commit", rc);
            abandon(s);
        }
        hj_txn_complete(w, commit_outcome(rc), "transfer", v);
        return;
    }
    hj_txn_complete(w, JP_FAIL, "transfer", v);
}

/* Every account in one strong snapshot: half the reads an autocommit SELECT, half the same
 * SELECT inside BEGIN READ ONLY ... COMMIT (the engine's two read-only paths). */
static void do_read(sqlbank *b, hj_txn_worker *w)
{
    hj_txn_invoke(w, "read", NULL);
    msql *s = session(b, w);
    if (!s) {
        hj_txn_complete(w, JP_FAIL, "read", NULL);
        return;
    }
    bool explicit_txn = hj_rng_below(&w->rng, 2) == 0;
    json_t *bal = json_object();
    msql_stmt *st = NULL;
    int rc = explicit_txn ? msql_exec(s, "BEGIN READ ONLY") : MSQL_OK;
    if (rc == MSQL_OK)
        rc = msql_prepare(s, "SELECT id, balance FROM accounts", -1, &st, NULL);
    while (rc == MSQL_OK && (rc = msql_step(st)) == MSQL_ROW) {
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)sqlite3_value_int64(msql_column_value(st, 0)));
        sqlite3_value *bv = msql_column_value(st, 1);
        /* a balance that is not an integer is the checker's to report */
        json_object_set_new(
            bal, id,
            sqlite3_value_type(bv) == SQLITE_INTEGER
                ? json_integer((json_int_t)sqlite3_value_int64(bv))
                : json_string(sqlite3_value_type(bv) == SQLITE_NULL ? "NULL" : "not an integer"));
        rc = MSQL_OK;
    }
    msql_finalize(st);
    if (rc == MSQL_DONE && explicit_txn)
        rc = msql_exec(s, "COMMIT");
    else if (rc == MSQL_DONE)
        rc = MSQL_OK;
    if (rc != MSQL_OK) {
        sql_log(w, s, explicit_txn ? "read (BEGIN READ ONLY)" : "read", rc);
        abandon(s);
        json_decref(bal);
        hj_txn_complete(w, JP_FAIL, "read", NULL);
    } else {
        hj_txn_complete(w, JP_OK, "read", bal);
    }
}

static void sqlbank_step(void *wl, hj_txn_worker *w)
{
    if (hj_rng_below(&w->rng, 2) == 0)
        do_transfer(wl, w);
    else
        do_read(wl, w);
}

static void sqlbank_free(void *state)
{
    sqlbank *b = state;
    if (!b)
        return;
    hj_txn_pool_free(b->pool); /* closes the sessions first (the closing hook) */
    free(b->sess);
    free(b);
}

static int start(const hj_client_env *env, void **state, bool autocommit, mr_err *err)
{
    sqlbank *b = calloc(1, sizeof *b);
    if (!b || !(b->sess = calloc((size_t)(env->concurrency > 0 ? env->concurrency : 1),
                                 sizeof *b->sess))) {
        free(b);
        *state = NULL;
        return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    b->env = *env;
    b->autocommit = autocommit;
    b->accounts = env->objects >= 2 ? env->objects : SB_ACCOUNTS;
    sb_accounts_for_check = b->accounts;
    hj_txn_workload tw = {
        .setup = sqlbank_setup, .step = sqlbank_step, .closing = sqlbank_closing, .wl = b};
    int rc = hj_txn_pool_start(env, &tw, &b->pool, err);
    *state = b;
    return rc;
}

static int sqlbank_start(const hj_client_env *env, void **state, mr_err *err)
{
    return start(env, state, false, err);
}

static int sqlbank_autocommit_start(const hj_client_env *env, void **state, mr_err *err)
{
    return start(env, state, true, err);
}

static void sqlbank_stop(void *state, void (*on_done)(void *ud), void *ud)
{
    sqlbank *b = state;
    hj_txn_pool_stop(b->pool, on_done, ud);
}

static int sqlbank_check(const jp_history *h, jp_result *r, mr_err *err)
{
    return hj_bank_check_accounts(h, sb_accounts_for_check, SB_OPENING, r, err);
}

const hj_workload hj_sqlbank_workload = {
    .name = "sql-bank",
    .model = "bank",
    .start = sqlbank_start,
    .stop = sqlbank_stop,
    .free_state = sqlbank_free,
    .check = sqlbank_check,
};

const hj_workload hj_sqlbank_autocommit_workload = {
    .name = "sql-bank-autocommit",
    .model = "bank",
    .start = sqlbank_autocommit_start,
    .stop = sqlbank_stop,
    .free_state = sqlbank_free,
    .check = sqlbank_check,
};

/* The bank workload (Jepsen's bank test) over libmeridian: N accounts ("r<range>/bank/<i>",
 * spread over the data groups) open with 100 each; transfers move 1..5 between two accounts in
 * a read-write transaction (read both, refuse to overdraw, write both); reads scan the whole
 * table (every range) in one strong read-only transaction. Judged by jepsen/bank.c with the known
 * total and accounts: a lost update (two transfers reading the same balance) or a torn snapshot
 * shows as a wrong total or a negative balance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jepsen/bank.h"
#include "jepsen/harness/hj_txn.h"

#define BANK_ACCOUNTS 5 /* few: transfers must contend (the no-read-locks control needs it) */
#define BANK_OPENING  100
#define BANK_ATTEMPTS 3

/* The checker needs the accounts and the total, which the history alone does not give: the
 * run's, set when the workload starts (one run per process). */
static int bank_accounts_for_check = BANK_ACCOUNTS;

typedef struct bank {
    hj_client_env env;
    int accounts;
    hj_txn_pool *pool;
} bank;

static int bank_setup(void *wl, meridian *db, mr_err *err)
{
    bank *b = wl;
    int rc = MERIDIAN_ABORTED;
    for (int attempt = 0; attempt < 50 && rc != MERIDIAN_OK && !hj_interrupted; attempt++) {
        meridian_txn *t;
        if ((rc = meridian_begin(db, &t)) != MERIDIAN_OK)
            continue;
        for (int i = 0; i < b->accounts && rc == MERIDIAN_OK; i++) {
            char key[64], val[16];
            hj_txn_key(&b->env, "bank", i, key, sizeof key);
            snprintf(val, sizeof val, "%d", BANK_OPENING);
            rc = meridian_put(t, key, strlen(key), val, strlen(val));
        }
        if (rc == MERIDIAN_OK)
            rc = meridian_commit(t, NULL);
        else
            meridian_rollback(t);
        if (rc == MERIDIAN_UNKNOWN)
            break; /* it may have committed: reading back settles it below */
    }
    if (rc != MERIDIAN_OK && rc != MERIDIAN_UNKNOWN)
        return mr_errf(err, MR_EUNAVAIL, "opening balances: %s: %s", meridian_errstr(rc),
                       meridian_errmsg(db));
    /* Confirm (also after an unknown outcome), at the leaders under locks: a
     * follower-side negative control (no-safe-wait) must not spoil the setup. */
    meridian_txn *t;
    if ((rc = meridian_begin(db, &t)) != MERIDIAN_OK)
        return mr_errf(err, MR_EUNAVAIL, "reading the opening balances: %s: %s",
                       meridian_errstr(rc), meridian_errmsg(db));
    for (int i = 0; i < b->accounts && rc == MERIDIAN_OK; i++) {
        char key[64];
        void *v;
        size_t vlen;
        hj_txn_key(&b->env, "bank", i, key, sizeof key);
        rc = meridian_get(t, key, strlen(key), &v, &vlen);
        if (rc == MERIDIAN_OK)
            meridian_free(v);
    }
    meridian_rollback(t);
    if (rc != MERIDIAN_OK)
        return mr_errf(err, MR_EUNAVAIL, "reading the opening balances: %s: %s",
                       meridian_errstr(rc), meridian_errmsg(db));
    return MR_OK;
}

/* A balance, read for update (a transfer writes both accounts it reads: the exclusive lock at
 * once); -1 with *rc set when the read failed; NOTFOUND reads as missing (-2). */
static long long read_balance(meridian_txn *t, const hj_client_env *env, int acct, int *rc)
{
    char key[64];
    void *v;
    size_t vlen;
    hj_txn_key(env, "bank", acct, key, sizeof key);
    *rc = meridian_get_for_update(t, key, strlen(key), &v, &vlen);
    if (*rc == MERIDIAN_NOTFOUND)
        return -2;
    if (*rc != MERIDIAN_OK)
        return -1;
    char buf[32];
    size_t n = vlen < sizeof buf - 1 ? vlen : sizeof buf - 1;
    memcpy(buf, v ? v : "", n);
    buf[n] = '\0';
    meridian_free(v);
    return strtoll(buf, NULL, 10);
}

static void do_transfer(bank *b, hj_txn_worker *w)
{
    int from = (int)hj_rng_below(&w->rng, (uint64_t)b->accounts);
    int to = (int)hj_rng_below(&w->rng, (uint64_t)b->accounts - 1);
    to += to >= from;
    long long amount = hj_rng_range(&w->rng, 1, 5);
    json_t *v = json_pack("{s:i, s:i, s:I}", "from", from, "to", to, "amount", (json_int_t)amount);
    hj_txn_invoke(w, "transfer", json_incref(v));
    meridian *db = hj_txn_db(w);
    if (!db) {
        hj_txn_complete(w, JP_FAIL, "transfer", v);
        return;
    }
    int rc = MERIDIAN_ABORTED;
    int64_t age = 0; /* retries keep the first attempt's age, after a backoff */
    for (int attempt = 0; attempt < BANK_ATTEMPTS; attempt++) {
        meridian_txn *t;
        if (attempt && !hj_txn_backoff(w, (unsigned)attempt - 1))
            break;
        if ((rc = meridian_begin_aged(db, age, &t)) != MERIDIAN_OK)
            break;
        age = meridian_txn_age(t);
        long long fb = read_balance(t, &b->env, from, &rc);
        long long tb = rc == MERIDIAN_OK ? read_balance(t, &b->env, to, &rc) : 0;
        if (rc == MERIDIAN_OK && fb < amount) {
            meridian_rollback(t); /* would overdraw: refused, nothing written */
            hj_txn_complete(w, JP_FAIL, "transfer", v);
            return;
        }
        if (rc == MERIDIAN_OK) {
            char key[64], val[32];
            hj_txn_key(&b->env, "bank", from, key, sizeof key);
            snprintf(val, sizeof val, "%lld", fb - amount);
            rc = meridian_put(t, key, strlen(key), val, strlen(val));
            if (rc == MERIDIAN_OK) {
                hj_txn_key(&b->env, "bank", to, key, sizeof key);
                snprintf(val, sizeof val, "%lld", tb + amount);
                rc = meridian_put(t, key, strlen(key), val, strlen(val));
            }
        }
        if (rc != MERIDIAN_OK) {
            hj_txn_log(w, "transfer read", rc, db);
            meridian_rollback(t); /* before commit: nothing committed */
            if (hj_txn_retryable(rc) && !hj_txn_stopping(w))
                continue;
            break;
        }
        /* The commit's answer is final: an operation is never committed twice. */
        rc = meridian_commit(t, NULL);
        if (rc != MERIDIAN_OK)
            hj_txn_log(w, "transfer commit", rc, db);
        hj_txn_complete(w, hj_txn_commit_outcome(rc), "transfer", v);
        return;
    }
    hj_txn_complete(w, JP_FAIL, "transfer", v);
}

/* One row of the table scan: account "r<range>/bank/<id>" -> balance. */
static int on_account(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    json_t *bal = arg;
    const char *k = key;
    const char *slash = memrchr(k, '/', klen);
    char id[32], v[32];
    size_t off = slash ? (size_t)(slash - k) + 1 : 0;
    size_t n = klen - off < sizeof id - 1 ? klen - off : sizeof id - 1;
    memcpy(id, k + off, n);
    id[n] = '\0';
    n = vlen < sizeof v - 1 ? vlen : sizeof v - 1;
    memcpy(v, val ? val : "", n);
    v[n] = '\0';
    json_object_set_new(bal, id, json_integer(strtoll(v, NULL, 10)));
    return 0;
}

/* The whole table in one strong read-only transaction: a scan of every range's accounts (an
 * account missing or unexpected is the checker's to report). */
static void do_read(bank *b, hj_txn_worker *w)
{
    hj_txn_invoke(w, "read", NULL);
    meridian *db = hj_txn_db(w);
    meridian_txn *t;
    int rc = db ? meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t) : MERIDIAN_UNAVAILABLE;
    if (rc != MERIDIAN_OK) {
        hj_txn_complete(w, JP_FAIL, "read", NULL);
        return;
    }
    json_t *bal = json_object();
    int groups = b->env.keys > 0 ? b->env.keys : 1;
    for (int r = 0; r < groups && rc == MERIDIAN_OK; r++) {
        char start[64], end[64];
        hj_txn_range(r, "bank", start, end, sizeof start);
        rc = meridian_scan(t, start, strlen(start), end, strlen(end), 0, on_account, bal);
    }
    meridian_rollback(t);
    if (rc != MERIDIAN_OK) {
        hj_txn_log(w, "read", rc, db);
        json_decref(bal);
        hj_txn_complete(w, JP_FAIL, "read", NULL);
    } else {
        hj_txn_complete(w, JP_OK, "read", bal);
    }
}

static void bank_step(void *wl, hj_txn_worker *w)
{
    if (hj_rng_below(&w->rng, 2) == 0)
        do_transfer(wl, w);
    else
        do_read(wl, w);
}

static void bank_free(void *state)
{
    bank *b = state;
    if (!b)
        return;
    hj_txn_pool_free(b->pool);
    free(b);
}

static int bank_start(const hj_client_env *env, void **state, mr_err *err)
{
    bank *b = calloc(1, sizeof *b);
    if (!b)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    b->env = *env;
    b->accounts = env->objects >= 2 ? env->objects : BANK_ACCOUNTS;
    bank_accounts_for_check = b->accounts;
    hj_txn_workload tw = {.setup = bank_setup, .step = bank_step, .wl = b};
    int rc = hj_txn_pool_start(env, &tw, &b->pool, err);
    *state = b;
    return rc;
}

static void bank_stop(void *state, void (*on_done)(void *ud), void *ud)
{
    bank *b = state;
    hj_txn_pool_stop(b->pool, on_done, ud);
}

int hj_bank_check_accounts(const jp_history *h, int n, int64_t opening, jp_result *r, mr_err *err)
{
    const char **names = calloc((size_t)n, sizeof *names);
    char(*buf)[16] = calloc((size_t)n, sizeof *buf);
    if (!names || !buf) {
        free(names);
        free(buf);
        jp_result_init(r, "bank");
        return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        snprintf(buf[i], sizeof buf[i], "%d", i);
        names[i] = buf[i];
    }
    jp_bank_opts o = {
        .has_total = 1, .total = (int64_t)n * opening, .accounts = names, .naccounts = (size_t)n};
    int rc = jp_check_bank(h, &o, r, err);
    free(names);
    free(buf);
    return rc;
}

static int bank_check(const jp_history *h, jp_result *r, mr_err *err)
{
    return hj_bank_check_accounts(h, bank_accounts_for_check, BANK_OPENING, r, err);
}

const hj_workload hj_bank_workload = {
    .name = "bank",
    .model = "bank",
    .start = bank_start,
    .stop = bank_stop,
    .free_state = bank_free,
    .check = bank_check,
};

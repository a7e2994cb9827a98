/* The list-append workload (Elle's) over libmeridian: transactions of 1-4 micro-ops on a few
 * keys in use at once, each an append of a unique integer or a read. A key's value is its list,
 * comma-separated ("3,8,12"); an append is a read-modify-write inside a read-write
 * transaction (a locked read, then a put of the longer list). Transactions of reads only run
 * as strong read-only transactions (lock-free snapshot reads). Keys are retired after
 * APPEND_LIMIT appends and replaced by fresh ones, so lists stay short; key ids spread over the
 * data groups' ranges ("r<range>/la/<id>"). Judged by jepsen/elle.c against strict
 * serializability. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jepsen/elle.h"
#include "jepsen/harness/hj_txn.h"

#define APPEND_KEYS     5  /* keys in use at once (few: transactions must contend) */
#define APPEND_LIMIT    64 /* appends per key before it is retired */
#define APPEND_MAX_OPS  4
#define APPEND_ATTEMPTS 5 /* before commit; retried with backoff, keeping their age */

typedef struct append {
    hj_client_env env;
    hj_txn_pool *pool;
    pthread_mutex_t mu; /* guards the fields below */
    int nkeys;
    long long *active; /* key ids in use */
    int *appends;      /* appends handed out per active slot */
    long long next_key, next_value;
} append;

typedef struct mop {
    bool is_append;
    long long key, value;
    json_t *read; /* the list read (ok), owned */
} mop;

/* Parses "3,8,12" into a JSON array (a token that is not an integer stays a string, for the
 * checker to reject as a garbage read). */
static json_t *parse_list(const char *s, size_t len)
{
    json_t *a = json_array();
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        char tok[32];
        size_t n = j - i < sizeof tok - 1 ? j - i : sizeof tok - 1;
        memcpy(tok, s + i, n);
        tok[n] = '\0';
        char *end;
        long long v = strtoll(tok, &end, 10);
        json_array_append_new(a, n && !*end ? json_integer(v) : json_string(tok));
        i = j + 1;
    }
    return a;
}

static json_t *mops_json(const mop *m, int n, bool with_reads)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(
            a, m[i].is_append
                   ? json_pack("[s, I, I]", "append", (json_int_t)m[i].key, (json_int_t)m[i].value)
                   : json_pack("[s, I, O]", "r", (json_int_t)m[i].key,
                               with_reads && m[i].read ? m[i].read : json_null()));
    return a;
}

/* Reads key's list: MERIDIAN_OK with *out (an array; [] when absent). *raw gets the text. An
 * append's read is for update (the exclusive lock its write needs, at once). */
static int read_list(append *ap, meridian_txn *t, long long key, bool for_update, json_t **out,
                     char **raw, size_t *rawlen)
{
    char k[64];
    hj_txn_key(&ap->env, "la", key, k, sizeof k);
    void *v = NULL;
    size_t vlen = 0;
    int rc = for_update ? meridian_get_for_update(t, k, strlen(k), &v, &vlen)
                        : meridian_get(t, k, strlen(k), &v, &vlen);
    if (rc == MERIDIAN_NOTFOUND) {
        rc = MERIDIAN_OK;
        vlen = 0;
    }
    if (rc != MERIDIAN_OK)
        return rc;
    if (out)
        *out = parse_list(v ? v : "", vlen);
    if (raw) {
        *raw = v;
        *rawlen = vlen;
    } else {
        meridian_free(v);
    }
    return MERIDIAN_OK;
}

/* One attempt of the transaction: MERIDIAN_OK once committed (reads filled), else the code;
 * *committing tells whether the failure came from the commit itself. */
static int run_txn(append *ap, meridian *db, mop *m, int n, bool read_only, int64_t *age,
                   bool *committing)
{
    *committing = false;
    for (int i = 0; i < n; i++) {
        json_decref(m[i].read);
        m[i].read = NULL;
    }
    meridian_txn *t;
    /* A retry keeps the first attempt's age (*age, 0 before it). */
    int rc = read_only ? meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t)
                       : meridian_begin_aged(db, *age, &t);
    if (rc != MERIDIAN_OK)
        return rc;
    if (!read_only)
        *age = meridian_txn_age(t);
    for (int i = 0; i < n && rc == MERIDIAN_OK; i++) {
        if (!m[i].is_append) {
            rc = read_list(ap, t, m[i].key, false, &m[i].read, NULL, NULL);
            continue;
        }
        char *raw = NULL;
        size_t rawlen = 0;
        if ((rc = read_list(ap, t, m[i].key, true, NULL, &raw, &rawlen)) != MERIDIAN_OK)
            break;
        char *nv = malloc(rawlen + 32);
        if (!nv) {
            meridian_free(raw);
            rc = MERIDIAN_NOMEM;
            break;
        }
        int nl = snprintf(nv, rawlen + 32, "%.*s%s%lld", (int)rawlen, raw ? raw : "",
                          rawlen ? "," : "", m[i].value);
        meridian_free(raw);
        char k[64];
        hj_txn_key(&ap->env, "la", m[i].key, k, sizeof k);
        rc = meridian_put(t, k, strlen(k), nv, (size_t)nl);
        free(nv);
    }
    if (rc != MERIDIAN_OK) {
        meridian_rollback(t);
        return rc;
    }
    if (read_only) {
        meridian_rollback(t); /* a read-only transaction has nothing to commit */
        return MERIDIAN_OK;
    }
    *committing = true;
    return meridian_commit(t, NULL);
}

static void append_step(void *wl, hj_txn_worker *w)
{
    append *ap = wl;
    mop m[APPEND_MAX_OPS] = {0};
    int n = 1 + (int)hj_rng_below(&w->rng, APPEND_MAX_OPS);
    bool read_only = true;
    pthread_mutex_lock(&ap->mu);
    for (int i = 0; i < n; i++) {
        int slot = (int)hj_rng_below(&w->rng, (uint64_t)ap->nkeys);
        m[i] = (mop){.is_append = hj_rng_below(&w->rng, 2) == 0, .key = ap->active[slot]};
        if (m[i].is_append) {
            read_only = false;
            m[i].value = ap->next_value++;
            if (++ap->appends[slot] >= APPEND_LIMIT) {
                ap->active[slot] = ap->next_key++;
                ap->appends[slot] = 0;
            }
        }
    }
    pthread_mutex_unlock(&ap->mu);
    hj_txn_invoke(w, "txn", mops_json(m, n, false));
    meridian *db = hj_txn_db(w);
    jp_type outcome = JP_FAIL;
    int64_t age = 0;
    for (int attempt = 0; db && attempt < APPEND_ATTEMPTS; attempt++) {
        if (attempt && !hj_txn_backoff(w, (unsigned)attempt - 1))
            break;
        bool committing;
        int rc = run_txn(ap, db, m, n, read_only, &age, &committing);
        if (rc == MERIDIAN_OK) {
            outcome = JP_OK;
            break;
        }
        hj_txn_log(w, committing ? "txn commit" : "txn", rc, db);
        /* A failure before commit left nothing behind: try again. The commit's answer is
         * final (an operation is never committed twice: a commit reported aborted that did
         * commit shows as G1a, not as a duplicate). */
        outcome = committing ? hj_txn_commit_outcome(rc) : JP_FAIL;
        if (committing || !hj_txn_retryable(rc) || hj_txn_stopping(w))
            break;
    }
    hj_txn_complete(w, outcome, "txn", mops_json(m, n, outcome == JP_OK));
    for (int i = 0; i < n; i++)
        json_decref(m[i].read);
}

static void append_free(void *state)
{
    append *ap = state;
    if (!ap)
        return;
    hj_txn_pool_free(ap->pool);
    pthread_mutex_destroy(&ap->mu);
    free(ap->active);
    free(ap->appends);
    free(ap);
}

static int append_start(const hj_client_env *env, void **state, mr_err *err)
{
    append *ap = calloc(1, sizeof *ap);
    if (!ap)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    ap->env = *env;
    pthread_mutex_init(&ap->mu, NULL);
    ap->nkeys = env->objects >= 1 ? env->objects : APPEND_KEYS;
    ap->active = calloc((size_t)ap->nkeys, sizeof *ap->active);
    ap->appends = calloc((size_t)ap->nkeys, sizeof *ap->appends);
    if (!ap->active || !ap->appends) {
        append_free(ap);
        return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    for (int i = 0; i < ap->nkeys; i++)
        ap->active[i] = i;
    ap->next_key = ap->nkeys;
    ap->next_value = 1;
    hj_txn_workload tw = {.step = append_step, .wl = ap};
    int rc = hj_txn_pool_start(env, &tw, &ap->pool, err);
    *state = ap;
    return rc;
}

static void append_stop(void *state, void (*on_done)(void *ud), void *ud)
{
    append *ap = state;
    hj_txn_pool_stop(ap->pool, on_done, ud);
}

static int append_check(const jp_history *h, jp_result *r, mr_err *err)
{
    return jp_check_list_append(h, NULL, r, err);
}

/* The ranges of the keys its micro-ops name ([f, key, value]). */
static uint64_t append_op_groups(const jp_op *invoke, int ranges)
{
    uint64_t m = 0;
    size_t i;
    json_t *micro;
    json_array_foreach(invoke->value, i, micro)
    {
        json_t *k = json_array_get(micro, 1);
        if (json_is_integer(k))
            m |= hj_key_group((long long)json_integer_value(k), ranges);
    }
    return m;
}

const hj_workload hj_append_workload = {
    .name = "list-append",
    .model = "list-append",
    .start = append_start,
    .stop = append_stop,
    .free_state = append_free,
    .check = append_check,
    .op_groups = append_op_groups,
};

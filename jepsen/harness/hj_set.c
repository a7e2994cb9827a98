/* The set workload (Jepsen's set test) over libmeridian: each add inserts a unique integer V as
 * its own key "r<range>/set/V" (range = V mod the data groups) through meridian_run, the
 * retrying runner; a tenth of the operations, and one final read per worker once the clients
 * stop (the cluster healed), read the whole set in one strong read-only transaction that scans
 * every range. Judged by jepsen/set.c: an acknowledged add missing from the final read is
 * lost, a value never added (or whose add failed) is unexpected.
 *
 * With more workers than ranges, each worker but the last adds only to range (its index mod
 * the ranges), and the last one does the reads: a group whose leader a fault hit then stalls
 * only its own workers, so the other groups' commits show whether they kept serving (the
 * per-group availability, jepsen/avail.h). Otherwise every worker adds anywhere and reads a
 * tenth of the time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jepsen/harness/hj_txn.h"
#include "jepsen/set.h"

#define SET_FINAL_ATTEMPTS 10

typedef struct set_wl {
    hj_client_env env;
    hj_txn_pool *pool;
    atomic_llong next_value;
    int ranges;
    bool pinned;                         /* workers pinned to ranges (above) */
    atomic_llong next_in[HJ_MAX_GROUPS]; /* pinned: the next value of each range, / ranges */
} set_wl;

typedef struct add_arg {
    set_wl *s;
    long long v;
} add_arg;

static int add_fn(meridian_txn *t, void *arg)
{
    add_arg *a = arg;
    char key[64];
    hj_txn_key(&a->s->env, "set", a->v, key, sizeof key);
    return meridian_put(t, key, strlen(key), "1", 1);
}

static void do_add(set_wl *s, hj_txn_worker *w)
{
    int r = w->index % s->ranges;
    add_arg a = {s, s->pinned ? atomic_fetch_add(&s->next_in[r], 1) * s->ranges + r
                              : atomic_fetch_add(&s->next_value, 1)};
    hj_txn_invoke(w, "add", json_integer(a.v));
    meridian *db = hj_txn_db(w);
    if (!db) {
        hj_txn_complete(w, JP_FAIL, "add", json_integer(a.v));
        return;
    }
    int rc = meridian_run(db, (int64_t)s->env.op_timeout_ms, add_fn, &a, NULL);
    /* meridian_run retries aborted and unavailable attempts itself; what it gives up on
     * (timeout, unknown, error) may have committed, except plain misuse. */
    jp_type o = rc == MERIDIAN_OK ? JP_OK : rc == MERIDIAN_INVALID ? JP_FAIL : JP_INFO;
    if (rc != MERIDIAN_OK)
        hj_txn_log(w, "add", rc, db);
    hj_txn_complete(w, o, "add", json_integer(a.v));
}

typedef struct scan_acc {
    json_t *vals;
} scan_acc;

static int on_row(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    scan_acc *acc = arg;
    const char *k = key;
    const char *slash = memrchr(k, '/', klen);
    char buf[32];
    size_t off = slash ? (size_t)(slash - k) + 1 : 0;
    size_t n = klen - off < sizeof buf - 1 ? klen - off : sizeof buf - 1;
    memcpy(buf, k + off, n);
    buf[n] = '\0';
    char *end;
    long long v = strtoll(buf, &end, 10);
    json_array_append_new(acc->vals, n && !*end ? json_integer(v) : json_string(buf));
    return 0;
}

/* One read of the whole set; true when recorded ok. */
static bool do_read(set_wl *s, hj_txn_worker *w)
{
    hj_txn_invoke(w, "read", NULL);
    meridian *db = hj_txn_db(w);
    meridian_txn *t;
    int rc = db ? meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t) : MERIDIAN_UNAVAILABLE;
    if (rc != MERIDIAN_OK) {
        hj_txn_complete(w, JP_FAIL, "read", NULL);
        return false;
    }
    scan_acc acc = {json_array()};
    int groups = s->env.keys > 0 ? s->env.keys : 1;
    for (int r = 0; r < groups && rc == MERIDIAN_OK; r++) {
        char start[64], end[64];
        hj_txn_range(r, "set", start, end, sizeof start);
        rc = meridian_scan(t, start, strlen(start), end, strlen(end), 0, on_row, &acc);
    }
    meridian_rollback(t);
    if (rc != MERIDIAN_OK) {
        hj_txn_log(w, "read", rc, db);
        json_decref(acc.vals);
        hj_txn_complete(w, JP_FAIL, "read", NULL);
        return false;
    }
    hj_txn_complete(w, JP_OK, "read", acc.vals);
    return true;
}

static void set_step(void *wl, hj_txn_worker *w)
{
    set_wl *s = wl;
    bool read = s->pinned ? w->index == s->env.concurrency - 1 : hj_rng_below(&w->rng, 10) == 0;
    if (read)
        do_read(s, w);
    else
        do_add(s, w);
}

/* The final read: every worker reads once the clients stop (retrying a failed read). */
static void set_finish(void *wl, hj_txn_worker *w)
{
    for (int k = 0; k < SET_FINAL_ATTEMPTS && !hj_interrupted; k++)
        if (do_read(wl, w))
            break;
}

static void set_free(void *state)
{
    set_wl *s = state;
    if (!s)
        return;
    hj_txn_pool_free(s->pool);
    free(s);
}

static int set_start(const hj_client_env *env, void **state, mr_err *err)
{
    set_wl *s = calloc(1, sizeof *s);
    if (!s)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    s->env = *env;
    atomic_init(&s->next_value, 1);
    s->ranges = env->keys > 0 && env->keys <= HJ_MAX_GROUPS ? env->keys : 1;
    s->pinned = env->concurrency > s->ranges;
    for (int r = 0; r < HJ_MAX_GROUPS; r++)
        atomic_init(&s->next_in[r], 1);
    hj_txn_workload tw = {.step = set_step, .finish = set_finish, .wl = s};
    int rc = hj_txn_pool_start(env, &tw, &s->pool, err);
    *state = s;
    return rc;
}

static void set_stop(void *state, void (*on_done)(void *ud), void *ud)
{
    set_wl *s = state;
    hj_txn_pool_stop(s->pool, on_done, ud);
}

static int set_check(const jp_history *h, jp_result *r, mr_err *err)
{
    return jp_check_set(h, r, err);
}

/* An add commits at its value's range. A read (a strong snapshot of every range) counts for
 * no group: the per-group figures are about commits, and a new leader serves reads before
 * writes can reach it. */
static uint64_t set_op_groups(const jp_op *invoke, int ranges)
{
    if (strcmp(invoke->f, "add") == 0 && json_is_integer(invoke->value))
        return hj_key_group((long long)json_integer_value(invoke->value), ranges);
    return 0;
}

const hj_workload hj_set_workload = {
    .name = "set",
    .model = "set",
    .start = set_start,
    .stop = set_stop,
    .free_state = set_free,
    .check = set_check,
    .op_groups = set_op_groups,
};

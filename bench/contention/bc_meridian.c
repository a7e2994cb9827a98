/* bench-contention's Meridian: a local cluster started by the launcher (launch/cluster.h: K
 * `meridian start` processes, mutual TLS, lease 1 s, a fixed 1 ms clock bound, G data groups
 * split at r01, r02, ... as the harness does) and one libmeridian connection per client
 * thread, each transaction through meridian_run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/contention/bc.h"
#include "launch/cluster.h"
#include "meridian.h"

typedef struct mer_sys {
    lc_cluster cl;
    bool keep;
    int groups;
    int64_t timeout_ms;
} mer_sys;

struct bc_client {
    mer_sys *s;
    meridian *db;
};

/* libmeridian's messages (client/mer_txn.c, tablet/node/nd_txn.c), by what they mean here. */
static bc_reason classify(const char *msg)
{
    if (!msg || !*msg)
        return BC_R_UNKNOWN;
    if (strstr(msg, "wounded"))
        return BC_R_WOUND;
    if (strstr(msg, "could not prepare") || strstr(msg, "two-phase commit timed out") ||
        strstr(msg, "participant"))
        return BC_R_PREPARE;
    /* A commit whose answer did not come in time is resolved at the coordinator group: an
     * abort learned that way is a timeout's. */
    if (strstr(msg, "timed out") || strstr(msg, "timeout") || strstr(msg, "learned from"))
        return BC_R_TIMEOUT;
    if (strstr(msg, "leader") || strstr(msg, "unavailable") || strstr(msg, "splitting"))
        return BC_R_LEADER;
    return BC_R_OTHER;
}

void bc_meridian_key(const bc_system *sys, int cell, int id, char *buf, size_t len)
{
    const mer_sys *s = sys->sys;
    snprintf(buf, len, "r%02d/c%d/%d", id % s->groups, cell, id);
}

static int open_db(mer_sys *s, meridian **db, mr_err *err)
{
    meridian_options o = {
        .addrs = s->cl.addrs, .certs_dir = s->cl.client_certs, .timeout_ms = s->timeout_ms};
    *db = NULL;
    int rc = meridian_open(&o, db);
    if (rc != MERIDIAN_OK) {
        mr_errf(err, MR_EUNAVAIL, "meridian_open: %s: %s", meridian_errstr(rc),
                *db ? meridian_errmsg(*db) : "");
        if (*db)
            meridian_close(*db);
        *db = NULL;
        return MR_EUNAVAIL;
    }
    return MR_OK;
}

typedef struct put_all {
    const char *const *keys;
    int n;
} put_all;

static int put_empty(meridian_txn *t, void *arg)
{
    const put_all *p = arg;
    for (int i = 0; i < p->n; i++) {
        int rc = meridian_put(t, p->keys[i], strlen(p->keys[i]), "", 0);
        if (rc != MERIDIAN_OK)
            return rc;
    }
    return MERIDIAN_OK;
}

static int mer_prepare(void *sys, const char *const *keys, int nkeys, mr_err *err)
{
    mer_sys *s = sys;
    meridian *db;
    int rc = open_db(s, &db, err);
    if (rc != MR_OK)
        return rc;
    /* In batches: one transaction per 50 keys keeps every commit small. */
    for (int i = 0; i < nkeys && rc == MR_OK; i += 50) {
        put_all p = {keys + i, nkeys - i < 50 ? nkeys - i : 50};
        int mrc = meridian_run(db, 30000, put_empty, &p, NULL);
        if (mrc != MERIDIAN_OK)
            rc = mr_errf(err, MR_EIO, "creating the keys: %s: %s", meridian_errstr(mrc),
                         meridian_errmsg(db));
    }
    meridian_close(db);
    return rc;
}

static int mer_open(void *sys, bc_client **out, mr_err *err)
{
    bc_client *c = calloc(1, sizeof *c);
    if (!c)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    c->s = sys;
    int rc = open_db(c->s, &c->db, err);
    if (rc != MR_OK) {
        free(c);
        return rc;
    }
    *out = c;
    return MR_OK;
}

typedef struct attempt_ctx {
    bc_client *c;
    const bc_txn *t;
    bc_outcome *o;
} attempt_ctx;

/* Reads key's list: MERIDIAN_OK with *v (may be NULL) and *len; a missing key is empty. */
static int read_list(meridian_txn *t, const char *key, void **v, size_t *len)
{
    int rc = meridian_get(t, key, strlen(key), v, len);
    if (rc == MERIDIAN_NOTFOUND) {
        *v = NULL;
        *len = 0;
        return MERIDIAN_OK;
    }
    return rc;
}

/* One attempt, called by meridian_run. When it is not the first, the connection's message is
 * still the previous attempt's failure (meridian_run keeps it across the rollback and begins
 * the next attempt without a call that clears it): that is the reason counted. */
static int attempt(meridian_txn *txn, void *arg)
{
    attempt_ctx *a = arg;
    if (a->o->attempts++ > 0)
        a->o->reasons[classify(meridian_errmsg(a->c->db))]++;
    void *v[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    int rc = read_list(txn, a->t->keys[0], &v[0], &len[0]);
    if (rc == MERIDIAN_OK)
        rc = read_list(txn, a->t->keys[1], &v[1], &len[1]);
    for (int i = 0; i < a->t->nappend && rc == MERIDIAN_OK; i++) {
        char *nv = bc_append(v[i], len[i], a->t->token);
        rc = nv ? meridian_put(txn, a->t->keys[i], strlen(a->t->keys[i]), nv, strlen(nv))
                : MERIDIAN_NOMEM;
        free(nv);
    }
    meridian_free(v[0]);
    meridian_free(v[1]);
    return rc;
}

static int mer_run(bc_client *c, const bc_txn *t, int64_t deadline_ms, bc_outcome *o)
{
    memset(o, 0, sizeof *o);
    attempt_ctx a = {c, t, o};
    int rc = meridian_run(c->db, deadline_ms, attempt, &a, NULL);
    if (rc == MERIDIAN_OK)
        return MR_OK;
    /* The last attempt's failure (meridian_run's TIMEOUT message ends with it). */
    o->reasons[classify(meridian_errmsg(c->db))]++;
    snprintf(o->last_error, sizeof o->last_error, "%s: %s", meridian_errstr(rc),
             meridian_errmsg(c->db));
    if (rc == MERIDIAN_UNKNOWN || rc == MERIDIAN_ERROR) {
        /* A connection that lost an answer is replaced, as the harness does. */
        meridian_close(c->db);
        mr_err err;
        if (open_db(c->s, &c->db, &err) != MR_OK)
            c->db = NULL;
    }
    return MR_EABORTED;
}

static void mer_close(bc_client *c)
{
    if (!c)
        return;
    if (c->db)
        meridian_close(c->db);
    free(c);
}

int bc_meridian_start(const bc_meridian_opts *o, bc_system *sys, mr_err *err)
{
    if (o->dir && mkdir(o->dir, 0755) != 0 && errno != EEXIST)
        return mr_errf(err, MR_EIO, "cannot make %s: %s", o->dir, strerror(errno));
    mer_sys *s = calloc(1, sizeof *s);
    if (!s)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    s->groups = o->groups;
    s->timeout_ms = o->timeout_ms;
    s->keep = o->dir != NULL;
    lc_opts lo = {.bin = o->bin,
                  .dir = o->dir,
                  .prefix = "meridian-contention",
                  .nodes = o->nodes,
                  .client_dir = true,
                  .lease = o->lease,
                  .clock = "fixed:1ms",
                  .clock_cap = "10ms"};
    char split[LC_MAX_NODES * 64 + 400] = "";
    for (int r = 1; r < o->groups && strlen(split) + 8 < sizeof split; r++)
        snprintf(split + strlen(split), sizeof split - strlen(split), "%sr%02d", r > 1 ? "," : "",
                 r);
    int leader[64];
    int ngroups = o->groups + 2 < 64 ? o->groups + 2 : 64;
    int rc = lc_setup(&s->cl, &lo, err);
    if (rc == MR_OK)
        rc = lc_start_all(&s->cl, err);
    if (rc == MR_OK)
        rc = lc_wait_up(&s->cl, 30000, err);
    if (rc == MR_OK)
        rc = lc_init(&s->cl, o->groups, 0, split, err);
    if (rc == MR_OK)
        rc = lc_wait_leaders(&s->cl, leader, ngroups, 30000, err);
    if (rc != MR_OK) {
        mr_err_wrap(err, "the meridian cluster");
        lc_destroy(&s->cl, s->keep);
        free(s);
        return rc;
    }
    *sys = (bc_system){.name = "meridian",
                       .prepare = mer_prepare,
                       .open = mer_open,
                       .run = mer_run,
                       .close = mer_close,
                       .sys = s};
    return MR_OK;
}

const char *bc_meridian_dir(const bc_system *sys)
{
    return ((const mer_sys *)sys->sys)->cl.dir;
}

void bc_meridian_stop(bc_system *sys)
{
    mer_sys *s = sys->sys;
    if (!s)
        return;
    lc_destroy(&s->cl, s->keep);
    free(s);
    sys->sys = NULL;
}

/* Worker threads over libmeridian for the transactional workloads. See hj_txn.h. */
#include "jepsen/harness/hj_txn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mr_log.h"
#include "common/mr_util.h"

struct hj_txn_pool {
    hj_client_env env;
    FILE *log; /* clients.log; NULL if it cannot be written */
    pthread_mutex_t log_mu;
    hj_txn_workload tw;
    hj_txn_worker *w;
    int nstarted;
    atomic_bool stopping;
    atomic_int running; /* workers not yet exited */
    uv_async_t exited;  /* the last worker to exit wakes the loop */
    bool async_open;
    void (*on_done)(void *ud);
    void *ud;
};

const hj_client_env *hj_txn_env(const hj_txn_worker *w)
{
    return &w->pool->env;
}

bool hj_txn_stopping(const hj_txn_worker *w)
{
    return atomic_load(&w->pool->stopping) || hj_interrupted;
}

static void nap_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int hj_txn_open(const hj_client_env *env, meridian **db, mr_err *err)
{
    /* The no-safe-wait control breaks what followers do: strong reads must
     * reach them to show it. */
    meridian_options o = {.addrs = env->cluster->addrs,
                          .certs_dir = env->cluster->client_certs,
                          .timeout_ms = (int64_t)env->op_timeout_ms,
                          .strong_any_replica =
                              env->reads_anywhere ||
                              (env->breaks && strstr(env->breaks, "no-safe-wait"))};
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

meridian *hj_txn_db(hj_txn_worker *w)
{
    if (!w->db) {
        mr_err err;
        if (hj_txn_open(&w->pool->env, &w->db, &err) != MR_OK) {
            MR_DEBUG("jepsen", "worker %d: %s", w->index, mr_err_msg(&err));
            nap_ms(200);
        }
    }
    return w->db;
}

void hj_txn_invoke(hj_txn_worker *w, const char *f, json_t *value)
{
    hj_record(w->pool->env.run, w->process, JP_INVOKE, f, NULL, value);
}

void hj_txn_complete(hj_txn_worker *w, jp_type type, const char *f, json_t *value)
{
    hj_record(w->pool->env.run, w->process, type, f, NULL, value);
    if (type == JP_INFO) {
        w->process += w->pool->env.concurrency; /* retired, as Jepsen does */
        if (w->db) {
            if (w->pool->tw.closing)
                w->pool->tw.closing(w->pool->tw.wl, w);
            meridian_close(w->db);
            w->db = NULL;
        }
    }
}

void hj_txn_log(hj_txn_worker *w, const char *what, int rc, meridian *db)
{
    hj_txn_pool *p = w->pool;
    if (!p->log)
        return;
    pthread_mutex_lock(&p->log_mu);
    fprintf(p->log, "%9.3f process %lld %s: %s: %s\n", (double)hj_elapsed(p->env.run) / 1e9,
            (long long)w->process, what, meridian_errstr(rc), db ? meridian_errmsg(db) : "");
    fflush(p->log);
    pthread_mutex_unlock(&p->log_mu);
}

void hj_txn_note(hj_txn_worker *w, const char *fmt, ...)
{
    hj_txn_pool *p = w->pool;
    if (!p->log)
        return;
    pthread_mutex_lock(&p->log_mu);
    fprintf(p->log, "%9.3f process %lld ", (double)hj_elapsed(p->env.run) / 1e9,
            (long long)w->process);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->log, fmt, ap);
    va_end(ap);
    fputc('\n', p->log);
    fflush(p->log);
    pthread_mutex_unlock(&p->log_mu);
}

jp_type hj_txn_commit_outcome(int rc)
{
    switch (rc) {
    case MERIDIAN_OK:
        return JP_OK;
    case MERIDIAN_ABORTED:
    case MERIDIAN_INVALID:
        return JP_FAIL;
    default: /* unknown, unavailable, timeout, error, nomem: it may have committed */
        return JP_INFO;
    }
}

bool hj_txn_retryable(int rc)
{
    return rc == MERIDIAN_ABORTED || rc == MERIDIAN_UNAVAILABLE;
}

void hj_txn_key(const hj_client_env *env, const char *kind, long long id, char *buf, size_t len)
{
    int groups = env->keys > 0 ? env->keys : 1;
    snprintf(buf, len, "r%02d/%s/%lld", (int)(id % groups), kind, id);
}

void hj_txn_range(int r, const char *kind, char *start, char *end, size_t len)
{
    /* '0' follows '/': [rNN/kind/, rNN/kind0) holds exactly rNN/kind/... */
    snprintf(start, len, "r%02d/%s/", r, kind);
    snprintf(end, len, "r%02d/%s0", r, kind);
}

bool hj_txn_pause(hj_txn_worker *w)
{
    /* uniform in [0, 2 * C / R] seconds, slept in slices so that stop is noticed */
    const hj_client_env *env = &w->pool->env;
    double mean_ms = 1000.0 * env->concurrency / env->rate;
    int64_t ms = hj_rng_range(&w->rng, 0, (int64_t)(2 * mean_ms));
    while (ms > 0 && !hj_txn_stopping(w)) {
        int64_t slice = ms < 50 ? ms : 50;
        nap_ms(slice);
        ms -= slice;
    }
    return !hj_txn_stopping(w);
}

bool hj_txn_backoff(hj_txn_worker *w, unsigned attempt)
{
    int64_t d = 5;
    for (unsigned i = 0; i < attempt && d < 1000; i++)
        d *= 2;
    if (d > 1000)
        d = 1000;
    int64_t ms = d - d / 2 + hj_rng_range(&w->rng, 0, d / 2);
    while (ms > 0 && !hj_txn_stopping(w)) {
        int64_t slice = ms < 50 ? ms : 50;
        nap_ms(slice);
        ms -= slice;
    }
    return !hj_txn_stopping(w);
}

static void *worker_main(void *arg)
{
    hj_txn_worker *w = arg;
    hj_txn_pool *p = w->pool;
    /* Start staggered over one pause, as the register clients do. */
    if (hj_txn_pause(w))
        while (!hj_txn_stopping(w)) {
            p->tw.step(p->tw.wl, w);
            if (!hj_txn_pause(w))
                break;
        }
    if (p->tw.finish && !hj_interrupted)
        p->tw.finish(p->tw.wl, w);
    if (w->db) {
        if (p->tw.closing)
            p->tw.closing(p->tw.wl, w);
        meridian_close(w->db);
        w->db = NULL;
    }
    if (atomic_fetch_sub(&p->running, 1) == 1)
        uv_async_send(&p->exited);
    return NULL;
}

static void on_async_closed(uv_handle_t *h)
{
    hj_txn_pool *p = h->data;
    p->async_open = false;
    if (p->on_done) {
        void (*cb)(void *) = p->on_done;
        p->on_done = NULL;
        cb(p->ud);
    }
}

static void join_all(hj_txn_pool *p)
{
    for (int i = 0; i < p->nstarted; i++)
        if (p->w[i].started) {
            pthread_join(p->w[i].th, NULL);
            p->w[i].started = false;
        }
}

static void on_exited(uv_async_t *h)
{
    hj_txn_pool *p = h->data;
    if (atomic_load(&p->running) > 0 || !atomic_load(&p->stopping))
        return;
    join_all(p);
    if (p->async_open && !uv_is_closing((uv_handle_t *)&p->exited))
        uv_close((uv_handle_t *)&p->exited, on_async_closed);
}

int hj_txn_pool_start(const hj_client_env *env, const hj_txn_workload *tw, hj_txn_pool **out,
                      mr_err *err)
{
    hj_txn_pool *p = calloc(1, sizeof *p);
    if (!p)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    p->env = *env;
    p->tw = *tw;
    pthread_mutex_init(&p->log_mu, NULL);
    char path[HJ_PATH + 32];
    snprintf(path, sizeof path, "%s/clients.log", env->cluster->dir);
    p->log = fopen(path, "a");
    atomic_init(&p->stopping, false);
    atomic_init(&p->running, 0);
    p->w = calloc((size_t)env->concurrency, sizeof *p->w);
    if (!p->w) {
        hj_txn_pool_free(p);
        return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    if (tw->setup) {
        meridian *db = NULL;
        int rc = hj_txn_open(env, &db, err);
        if (rc == MR_OK) {
            rc = tw->setup(tw->wl, db, err);
            meridian_close(db);
        }
        if (rc != MR_OK) {
            hj_txn_pool_free(p);
            return mr_err_wrap(err, "workload setup");
        }
    }
    uv_async_init(env->loop, &p->exited, on_exited);
    p->exited.data = p;
    p->async_open = true;
    for (int i = 0; i < env->concurrency; i++) {
        hj_txn_worker *w = &p->w[i];
        w->pool = p;
        w->index = i;
        w->process = i;
        w->rng.s = env->seed * 1000003u + (uint64_t)i;
        atomic_fetch_add(&p->running, 1);
        if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
            atomic_fetch_sub(&p->running, 1);
            mr_errf(err, MR_EIO, "cannot start worker thread %d", i);
            atomic_store(&p->stopping, true);
            join_all(p);
            /* The caller's loop closes the handle; then it frees the state. */
            uv_close((uv_handle_t *)&p->exited, on_async_closed);
            *out = p;
            return MR_EIO;
        }
        w->started = true;
        p->nstarted = i + 1;
    }
    *out = p;
    return MR_OK;
}

void hj_txn_pool_stop(hj_txn_pool *p, void (*on_done)(void *ud), void *ud)
{
    if (atomic_load(&p->stopping) && p->on_done)
        return;
    p->on_done = on_done;
    p->ud = ud;
    atomic_store(&p->stopping, true);
    if (atomic_load(&p->running) == 0)
        uv_async_send(&p->exited);
}

void hj_txn_pool_free(hj_txn_pool *p)
{
    if (!p)
        return;
    atomic_store(&p->stopping, true);
    join_all(p);
    for (int i = 0; i < p->nstarted; i++)
        if (p->w[i].db) {
            if (p->tw.closing)
                p->tw.closing(p->tw.wl, &p->w[i]);
            meridian_close(p->w[i].db);
        }
    if (p->log)
        fclose(p->log);
    pthread_mutex_destroy(&p->log_mu);
    free(p->w);
    free(p);
}

/* The TrueTime clock service: a source sampled in the background about once
 * a second, published through a seqlock so tt_now() never blocks.
 *
 * now() = [real - B, real + B] with B = bound_at_sample + drift * elapsed,
 * elapsed measured on CLOCK_MONOTONIC_COARSE plus its resolution (coarse may
 * lag by up to one tick, and the bound must never be under-estimated). */
#include <errno.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "truetime/tt_sources.h"

#define TT_BOUND_INF (INT64_MAX / 4)

/* Seqlock-published state: single writer (under c->mu), lock-free readers. */
typedef struct tt_pub {
    _Atomic uint64_t seq;
    _Atomic int64_t bound_ns;    /* bound at sample time */
    _Atomic int64_t mono_ns;     /* CLOCK_MONOTONIC at sample time */
    _Atomic int status;          /* tt_status of the sample */
    _Atomic int64_t fresh_until; /* mono time after which the sample is stale */
} tt_pub;

struct tt_clock {
    tt_source_kind kind;
    char spec[160];
    tt_config cfg;
    int64_t fixed_bound_ns;
    int64_t coarse_res_ns;
    tt_chrony *chrony;
    tt_pub pub;
    _Atomic int64_t fault_offset_ns;
    _Atomic bool fault_unhealthy;

    pthread_mutex_t mu; /* guards last, the source and the writer side of pub */
    tt_sample last;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stopping;
};

void tt_config_default(tt_config *cfg)
{
    cfg->drift_ppb = 200000; /* 200 ppm, as Spanner assumes */
    cfg->cap_ns = 10 * MR_NS_PER_MS;
    cfg->poll_interval_ns = MR_NS_PER_S;
    cfg->stale_min_ns = 2 * MR_NS_PER_S;
    cfg->timeout_ns = 250 * MR_NS_PER_MS;
}

static void publish(tt_clock *c, int64_t bound, int64_t mono, tt_status st, int64_t fresh_until)
{
    uint64_t s = atomic_load_explicit(&c->pub.seq, memory_order_relaxed);
    atomic_store_explicit(&c->pub.seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&c->pub.bound_ns, bound, memory_order_relaxed);
    atomic_store_explicit(&c->pub.mono_ns, mono, memory_order_relaxed);
    atomic_store_explicit(&c->pub.status, (int)st, memory_order_relaxed);
    atomic_store_explicit(&c->pub.fresh_until, fresh_until, memory_order_relaxed);
    atomic_store_explicit(&c->pub.seq, s + 2, memory_order_release);
}

typedef struct pub_view {
    int64_t bound_ns, mono_ns, fresh_until;
    tt_status status;
} pub_view;

static pub_view read_pub(const tt_clock *c)
{
    pub_view v;
    tt_pub *p = (tt_pub *)&c->pub;
    for (;;) {
        uint64_t s1 = atomic_load_explicit(&p->seq, memory_order_acquire);
        if (s1 & 1)
            continue;
        v.bound_ns = atomic_load_explicit(&p->bound_ns, memory_order_relaxed);
        v.mono_ns = atomic_load_explicit(&p->mono_ns, memory_order_relaxed);
        v.status = (tt_status)atomic_load_explicit(&p->status, memory_order_relaxed);
        v.fresh_until = atomic_load_explicit(&p->fresh_until, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&p->seq, memory_order_relaxed) == s1)
            return v;
    }
}

static int64_t coarse_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * MR_NS_PER_S + ts.tv_nsec;
}

/* Judges a chrony sample: unsynchronized, no reference, stale, or over the cap. */
static void judge_chrony(const tt_config *cfg, tt_sample *s)
{
    int64_t age = s->real_ns - s->ref_time_ns;
    int64_t stale_after = (int64_t)(4.0 * s->update_interval_s * 1e9);
    if (stale_after < cfg->stale_min_ns)
        stale_after = cfg->stale_min_ns;
    char b1[32], b2[32];
    if (s->leap_status == 3) {
        s->status = TT_UNHEALTHY;
        snprintf(s->reason, sizeof s->reason, "chronyd reports leap status unsynchronized");
    } else if (s->ref_id == 0) {
        s->status = TT_UNHEALTHY;
        snprintf(s->reason, sizeof s->reason, "chronyd has no reference (reference id 0)");
    } else if (s->bound_ns > cfg->cap_ns) {
        s->status = TT_UNHEALTHY;
        snprintf(s->reason, sizeof s->reason, "bound %s over the cap %s",
                 mr_format_duration(s->bound_ns, b1, sizeof b1),
                 mr_format_duration(cfg->cap_ns, b2, sizeof b2));
    } else if (age > stale_after) {
        /* chronyd keeps "Normal" after losing its sources; only age and dispersion tell. */
        s->status = TT_FREE_RUNNING;
        snprintf(
            s->reason, sizeof s->reason, "chronyd last updated the clock %s ago (stale after %s)",
            mr_format_duration(age, b1, sizeof b1), mr_format_duration(stale_after, b2, sizeof b2));
    } else {
        s->status = TT_SYNCHRONIZED;
        s->reason[0] = '\0';
    }
}

static void take_sample(tt_clock *c, tt_sample *s)
{
    memset(s, 0, sizeof *s);
    mr_err err;
    mr_err_clear(&err);
    s->mono_ns = mr_monotonic_ns();
    s->real_ns = mr_realtime_ns();
    int rc = MR_OK;
    switch (c->kind) {
    case TT_SRC_FIXED:
        s->bound_ns = c->fixed_bound_ns;
        s->status = c->fixed_bound_ns > c->cfg.cap_ns ? TT_UNHEALTHY : TT_SYNCHRONIZED;
        if (s->status == TT_UNHEALTHY)
            snprintf(s->reason, sizeof s->reason, "declared bound over the cap");
        break;
    case TT_SRC_KERNEL:
        rc = tt_kernel_sample(s, &err);
        if (rc == MR_OK && s->status == TT_SYNCHRONIZED && s->bound_ns > c->cfg.cap_ns) {
            s->status = TT_UNHEALTHY;
            snprintf(s->reason, sizeof s->reason, "kernel maxerror over the cap");
        }
        break;
    case TT_SRC_CHRONY:
        rc = tt_chrony_tracking(c->chrony, c->cfg.timeout_ns, s, &err);
        /* Take the time after the reply: the sample describes that moment. */
        s->mono_ns = mr_monotonic_ns();
        s->real_ns = mr_realtime_ns();
        if (rc == MR_OK) {
            s->bound_ns =
                tt_chrony_bound_ns(s->correction_s, s->root_delay_s, s->root_dispersion_s);
            judge_chrony(&c->cfg, s);
        }
        break;
    }
    if (rc != MR_OK) {
        s->valid = false;
        s->status = TT_UNHEALTHY;
        s->bound_ns = TT_BOUND_INF;
        snprintf(s->reason, sizeof s->reason, "%s", mr_err_msg(&err));
    } else {
        s->valid = true;
    }
}

tt_status tt_clock_poll(tt_clock *c)
{
    tt_sample s;
    take_sample(c, &s);
    pthread_mutex_lock(&c->mu);
    tt_status old = c->last.status;
    bool had_valid = c->last.valid;
    if (s.valid) {
        /* A source sample stays fresh for a few poll periods; past that the
         * poller is stuck and the clock degrades without a new publish. */
        int64_t fresh_until = s.mono_ns + 3 * c->cfg.poll_interval_ns + c->cfg.timeout_ns;
        publish(c, s.bound_ns, s.mono_ns, s.status, fresh_until);
        c->last = s;
    } else if (had_valid) {
        /* Keep extrapolating from the last good sample (free running), but
         * record why this poll failed. The bound keeps growing by drift. */
        pub_view v = read_pub(c);
        publish(c, v.bound_ns, v.mono_ns, TT_UNHEALTHY, v.fresh_until);
        c->last.status = TT_UNHEALTHY;
        snprintf(c->last.reason, sizeof c->last.reason, "%s", s.reason);
    } else {
        publish(c, TT_BOUND_INF, s.mono_ns, TT_UNHEALTHY, 0);
        c->last = s;
    }
    tt_status now = c->last.status;
    pthread_mutex_unlock(&c->mu);
    if (now != old)
        mr_log(now == TT_SYNCHRONIZED ? MR_LOG_INFO : MR_LOG_WARN, "tt",
               "clock status changed from=%s to=%s source=%s reason=\"%s\"", tt_status_name(old),
               tt_status_name(now), c->spec, s.reason);
    return now;
}

static int parse_spec(tt_clock *c, const char *spec, mr_err *err)
{
    if (!spec || !*spec)
        return mr_errf(err, MR_EINVAL,
                       "empty clock spec (want chrony:SOCKET, kernel or fixed:DURATION)");
    snprintf(c->spec, sizeof c->spec, "%s", spec);
    if (strncmp(spec, "chrony:", 7) == 0) {
        c->kind = TT_SRC_CHRONY;
        int rc = tt_chrony_open(spec + 7, &c->chrony, err);
        if (rc)
            return mr_err_wrap(err, "clock spec '%s'", spec);
        return MR_OK;
    }
    if (strcmp(spec, "kernel") == 0) {
        c->kind = TT_SRC_KERNEL;
        return MR_OK;
    }
    if (strncmp(spec, "fixed:", 6) == 0) {
        c->kind = TT_SRC_FIXED;
        if (mr_parse_duration(spec + 6, &c->fixed_bound_ns) != 0 || c->fixed_bound_ns < 0)
            return mr_errf(err, MR_EINVAL,
                           "clock spec '%s': '%s' is not a non-negative duration like 1ms", spec,
                           spec + 6);
        return MR_OK;
    }
    return mr_errf(err, MR_EINVAL,
                   "unknown clock spec '%s' (want chrony:SOCKET, kernel or fixed:DURATION)", spec);
}

static void *poller(void *arg)
{
    tt_clock *c = arg;
    pthread_mutex_lock(&c->stop_mu);
    while (!c->stopping) {
        pthread_mutex_unlock(&c->stop_mu);
        tt_clock_poll(c);
        pthread_mutex_lock(&c->stop_mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t ns = until.tv_nsec + c->cfg.poll_interval_ns;
        until.tv_sec += ns / MR_NS_PER_S;
        until.tv_nsec = ns % MR_NS_PER_S;
        while (!c->stopping &&
               pthread_cond_timedwait(&c->stop_cv, &c->stop_mu, &until) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&c->stop_mu);
    return NULL;
}

static int open_clock(const char *spec, const tt_config *cfg, bool background, tt_clock **out,
                      mr_err *err)
{
    tt_clock *c = calloc(1, sizeof *c);
    if (!c)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    if (cfg)
        c->cfg = *cfg;
    else
        tt_config_default(&c->cfg);
    if (c->cfg.drift_ppb < 0 || c->cfg.cap_ns <= 0 || c->cfg.poll_interval_ns <= 0 ||
        c->cfg.timeout_ns <= 0) {
        free(c);
        return mr_errf(err, MR_EINVAL, "clock configuration out of range");
    }
    struct timespec res;
    clock_getres(CLOCK_MONOTONIC_COARSE, &res);
    c->coarse_res_ns = (int64_t)res.tv_sec * MR_NS_PER_S + res.tv_nsec;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->stop_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->stop_cv, &ca);
    pthread_condattr_destroy(&ca);
    publish(c, TT_BOUND_INF, mr_monotonic_ns(), TT_UNKNOWN, 0);

    int rc = parse_spec(c, spec, err);
    const char *env = getenv("MERIDIAN_CLOCK_OFFSET");
    int64_t off = 0;
    if (rc == MR_OK && env && *env && mr_parse_duration(env, &off) != 0)
        rc = mr_errf(err, MR_EINVAL, "MERIDIAN_CLOCK_OFFSET='%s' is not a duration like 5ms", env);
    if (rc) {
        tt_clock_close(c);
        return rc;
    }
    if (off)
        MR_WARN("tt", "fault hook: clock reading offset by %lld ns (MERIDIAN_CLOCK_OFFSET)",
                (long long)off);
    atomic_store(&c->fault_offset_ns, off);
    const char *unh = getenv("MERIDIAN_CLOCK_UNHEALTHY");
    if (unh && strcmp(unh, "1") == 0)
        tt_set_fault_unhealthy(c, true);
    tt_clock_poll(c);
    if (background) {
        if (pthread_create(&c->thread, NULL, poller, c) != 0) {
            tt_clock_close(c);
            return mr_errf(err, MR_EIO, "cannot start the clock poller thread");
        }
        c->thread_started = true;
    }
    *out = c;
    return MR_OK;
}

int tt_clock_open(const char *spec, const tt_config *cfg, tt_clock **out, mr_err *err)
{
    return open_clock(spec, cfg, true, out, err);
}

int tt_clock_open_manual(const char *spec, const tt_config *cfg, tt_clock **out, mr_err *err)
{
    return open_clock(spec, cfg, false, out, err);
}

void tt_clock_close(tt_clock *c)
{
    if (!c)
        return;
    if (c->thread_started) {
        pthread_mutex_lock(&c->stop_mu);
        c->stopping = true;
        pthread_cond_signal(&c->stop_cv);
        pthread_mutex_unlock(&c->stop_mu);
        pthread_join(c->thread, NULL);
    }
    tt_chrony_close(c->chrony);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->stop_mu);
    pthread_cond_destroy(&c->stop_cv);
    free(c);
}

static int64_t current_bound(const tt_clock *c, const pub_view *v)
{
    int64_t elapsed = coarse_mono_ns() - v->mono_ns + c->coarse_res_ns;
    return tt_bound_grow(v->bound_ns, elapsed, c->cfg.drift_ppb);
}

tt_interval tt_now(const tt_clock *c)
{
    pub_view v = read_pub(c);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t real = (int64_t)ts.tv_sec * MR_NS_PER_S + ts.tv_nsec +
                   atomic_load_explicit(&c->fault_offset_ns, memory_order_relaxed);
    int64_t b = current_bound(c, &v);
    return (tt_interval){real - b, real + b};
}

bool tt_after(const tt_clock *c, int64_t t)
{
    return tt_interval_after(tt_now(c), t);
}

bool tt_before(const tt_clock *c, int64_t t)
{
    return tt_interval_before(tt_now(c), t);
}

tt_status tt_status_now(const tt_clock *c)
{
    if (atomic_load_explicit(&((tt_clock *)c)->fault_unhealthy, memory_order_relaxed))
        return TT_UNHEALTHY;
    pub_view v = read_pub(c);
    if (v.status != TT_SYNCHRONIZED)
        return v.status;
    if (mr_monotonic_ns() > v.fresh_until)
        return TT_FREE_RUNNING; /* the poller has not refreshed the sample */
    if (current_bound(c, &v) > c->cfg.cap_ns)
        return TT_UNHEALTHY;
    return TT_SYNCHRONIZED;
}

void tt_last_sample(const tt_clock *c, tt_sample *out)
{
    tt_clock *m = (tt_clock *)c;
    pthread_mutex_lock(&m->mu);
    *out = m->last;
    pthread_mutex_unlock(&m->mu);
}

tt_source_kind tt_source(const tt_clock *c)
{
    return c->kind;
}

const char *tt_source_spec(const tt_clock *c)
{
    return c->spec;
}

int64_t tt_wait_ns(const tt_clock *c, int64_t t)
{
    tt_interval now = tt_now(c);
    return tt_interval_after(now, t) ? 0 : t - now.earliest + 1;
}

/* Below this gap the waiter spins instead of sleeping: a sleep's wake-up
 * latency (timer slack plus scheduling, ~50-150 us) would dominate. */
#define TT_SPIN_NS (150 * MR_NS_PER_US)

tt_interval tt_wait_until_after(const tt_clock *c, int64_t t)
{
    /* The default 50 us timer slack of this thread would add to every commit wait. */
    static _Thread_local bool slack_set;
    if (!slack_set) {
        prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
        slack_set = true;
    }
    for (;;) {
        tt_interval now = tt_now(c);
        if (tt_interval_after(now, t))
            return now;
        /* earliest advances at the rate of real time (the bound only grows, slowly),
         * so sleeping the gap lands just past it; loop for the drift remainder. */
        int64_t gap = t - now.earliest + 1;
        if (gap <= TT_SPIN_NS)
            continue; /* spin: at most TT_SPIN_NS of CPU per commit wait */
        gap -= TT_SPIN_NS;
        struct timespec d = {.tv_sec = gap / MR_NS_PER_S, .tv_nsec = gap % MR_NS_PER_S};
        while (clock_nanosleep(CLOCK_MONOTONIC, 0, &d, &d) == EINTR) {
        }
    }
}

void tt_set_fault_offset(tt_clock *c, int64_t offset_ns)
{
    atomic_store(&c->fault_offset_ns, offset_ns);
    MR_WARN("tt", "fault hook: clock reading offset set to %lld ns", (long long)offset_ns);
}

void tt_set_fault_unhealthy(tt_clock *c, bool unhealthy)
{
    atomic_store(&c->fault_unhealthy, unhealthy);
    MR_WARN("tt", "fault hook: clock declared %s", unhealthy ? "unhealthy" : "healthy again");
}

bool tt_fault_unhealthy(const tt_clock *c)
{
    return atomic_load(&((tt_clock *)c)->fault_unhealthy);
}

int64_t tt_fault_offset(const tt_clock *c)
{
    return atomic_load(&((tt_clock *)c)->fault_offset_ns);
}

void tt_clock_publish_raw(tt_clock *c, int64_t bound_ns, int64_t mono_ns, tt_status st,
                          int64_t fresh_until)
{
    pthread_mutex_lock(&c->mu);
    publish(c, bound_ns, mono_ns, st, fresh_until);
    pthread_mutex_unlock(&c->mu);
}

void tt_clock_read_raw(const tt_clock *c, int64_t *bound_ns, int64_t *mono_ns, tt_status *st,
                       int64_t *fresh_until)
{
    pub_view v = read_pub(c);
    *bound_ns = v.bound_ns;
    *mono_ns = v.mono_ns;
    *st = v.status;
    *fresh_until = v.fresh_until;
}

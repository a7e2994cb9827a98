/* TrueTime: a bounded-uncertainty clock. now() returns an interval
 * [earliest, latest] (ns since the Unix epoch) that contains true time,
 * with the bound taken from the clock source's own error accounting (chrony's
 * tracking data, the kernel's maxerror, or a declared fixed bound) and grown
 * by a maximum drift rate for the time since the sample (Spanner §3). */
#ifndef TT_H
#define TT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/mr_err.h"

/* ---- Pure arithmetic: no I/O, usable by the deterministic cores. ---- */

typedef struct tt_interval {
    int64_t earliest; /* ns since epoch */
    int64_t latest;   /* ns since epoch */
} tt_interval;

/* TT.after(t): t has definitely passed, i.e. t < earliest. */
static inline bool tt_interval_after(tt_interval now, int64_t t)
{
    return t < now.earliest;
}

/* TT.before(t): t has definitely not arrived, i.e. t > latest. */
static inline bool tt_interval_before(tt_interval now, int64_t t)
{
    return t > now.latest;
}

/* Half-width of the interval (the ε of the Spanner paper). */
static inline int64_t tt_interval_epsilon(tt_interval now)
{
    return (now.latest - now.earliest) / 2;
}

/* Bound at a time `elapsed_ns` after a sample whose bound was `bound_ns`,
 * assuming the local oscillator drifts by at most `drift_ppb` parts per
 * billion: bound + ceil(elapsed * drift). Saturates instead of overflowing. */
int64_t tt_bound_grow(int64_t bound_ns, int64_t elapsed_ns, int64_t drift_ppb);

/* The chrony/ClockBound bound at sample time, in ns:
 * |correction| + root_delay/2 + root_dispersion (arguments in seconds). */
int64_t tt_chrony_bound_ns(double correction_s, double root_delay_s, double root_dispersion_s);

/* ---- The clock service. ---- */

typedef enum {
    TT_UNKNOWN = 0,  /* no sample yet */
    TT_SYNCHRONIZED, /* fresh sample, bound under the cap: safe to lead */
    TT_FREE_RUNNING, /* sample stale, bound extrapolated by drift: readable, not healthy */
    TT_UNHEALTHY,    /* source says unsynchronized, errors, or bound over the cap */
} tt_status;

const char *tt_status_name(tt_status s);

typedef enum { TT_SRC_FIXED, TT_SRC_CHRONY, TT_SRC_KERNEL } tt_source_kind;

/* One reading of the source, with the details behind the bound. */
typedef struct tt_sample {
    bool valid;       /* the source answered with usable data */
    int64_t mono_ns;  /* CLOCK_MONOTONIC when the sample was taken */
    int64_t real_ns;  /* CLOCK_REALTIME when the sample was taken */
    int64_t bound_ns; /* bound at sample time */
    tt_status status; /* the source's own verdict at sample time */
    char reason[160]; /* why the status is what it is ("" when synchronized) */
    /* chrony tracking details (zero for other sources) */
    uint32_t ref_id;
    char ref_name[64]; /* reference id as text ("127.0.0.1", "LOCL", ...) */
    int stratum;
    int leap_status;     /* 0 normal, 1 insert, 2 delete, 3 unsynchronized */
    int64_t ref_time_ns; /* when chronyd last updated its clock estimate */
    double correction_s, last_offset_s, rms_offset_s, freq_ppm, resid_freq_ppm, skew_ppm;
    double root_delay_s, root_dispersion_s, update_interval_s;
    /* kernel details */
    int64_t maxerror_ns, esterror_ns;
    int kernel_state;
} tt_sample;

typedef struct tt_config {
    int64_t drift_ppb;        /* max oscillator drift, default 200 ppm = 200000 ppb */
    int64_t cap_ns;           /* bound above which the clock is unhealthy; default 10 ms */
    int64_t poll_interval_ns; /* background poll period; default 1 s */
    int64_t stale_min_ns;     /* a chrony sample older than max(this, 4 update intervals) is stale;
                                 default 2 s */
    int64_t timeout_ns;       /* per-request timeout to chronyd; default 250 ms */
} tt_config;

void tt_config_default(tt_config *cfg);

typedef struct tt_clock tt_clock;

/* Parses SPEC ("chrony:/run/chrony/chronyd.sock", "kernel", "fixed:1ms"), takes a
 * first sample synchronously and starts the background poller. The fault offset
 * starts from $MERIDIAN_CLOCK_OFFSET when set (e.g. "5ms", "-2ms").
 * Returns 0 and *out (free with tt_clock_close), or an error code with err set.
 * A source that answers badly still opens (status unhealthy/unknown): only a bad SPEC fails. */
int tt_clock_open(const char *spec, const tt_config *cfg, tt_clock **out, mr_err *err);

/* Like tt_clock_open but with no background thread: the caller polls with tt_clock_poll. */
int tt_clock_open_manual(const char *spec, const tt_config *cfg, tt_clock **out, mr_err *err);

void tt_clock_close(tt_clock *c);

/* Takes one sample now and publishes it. Returns the sample's status. */
tt_status tt_clock_poll(tt_clock *c);

/* Lock-free: one seqlock read and two vDSO clock reads. Never blocks. */
tt_interval tt_now(const tt_clock *c);
bool tt_after(const tt_clock *c, int64_t t);
bool tt_before(const tt_clock *c, int64_t t);

/* The current status (a stale sample degrades it without a new poll). */
tt_status tt_status_now(const tt_clock *c);
static inline bool tt_healthy(const tt_clock *c)
{
    return tt_status_now(c) == TT_SYNCHRONIZED;
}

/* Copy of the latest sample (takes a mutex; for display, not the hot path). */
void tt_last_sample(const tt_clock *c, tt_sample *out);
tt_source_kind tt_source(const tt_clock *c);
const char *tt_source_spec(const tt_clock *c);

/* Commit wait: nanoseconds still to wait until TT.after(t) (0 if it holds now). */
int64_t tt_wait_ns(const tt_clock *c, int64_t t);
/* Blocks until TT.after(t). Returns the interval observed when it returned. */
tt_interval tt_wait_until_after(const tt_clock *c, int64_t t);

/* Test-only fault hook: a lying clock. Adds offset_ns to this process's
 * reading of the system clock without widening the bound. */
void tt_set_fault_offset(tt_clock *c, int64_t offset_ns);
int64_t tt_fault_offset(const tt_clock *c);

/* Test-only fault hook: declare the clock unhealthy (a failed source) until
 * cleared; the interval keeps its honest width. Also $MERIDIAN_CLOCK_UNHEALTHY=1. */
void tt_set_fault_unhealthy(tt_clock *c, bool unhealthy);
bool tt_fault_unhealthy(const tt_clock *c);

#endif

/* The run context: the locked history recorder and the seeded RNG. */
#include "jepsen/harness/hj_run.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/mr_log.h"
#include "common/mr_util.h"

volatile sig_atomic_t hj_interrupted = 0;

void hj_run_init(hj_run *r)
{
    jp_history_init(&r->hist);
    pthread_mutex_init(&r->mu, NULL);
    r->t0 = mr_monotonic_ns();
    r->t0_wall = mr_realtime_ns();
    r->record_errs = 0;
    mr_err_clear(&r->first_err);
}

void hj_run_free(hj_run *r)
{
    jp_history_free(&r->hist);
    pthread_mutex_destroy(&r->mu);
}

int64_t hj_elapsed(const hj_run *r)
{
    return mr_monotonic_ns() - r->t0;
}

void hj_record(hj_run *r, int64_t process, jp_type type, const char *f, const json_t *key,
               json_t *value)
{
    mr_err err;
    pthread_mutex_lock(&r->mu);
    /* The time is taken under the lock, so times never go backwards along the history. */
    int rc = jp_history_record(&r->hist, process, type, f, key, value, hj_elapsed(r), &err);
    if (rc != MR_OK) {
        if (r->record_errs++ == 0)
            r->first_err = err;
        MR_ERROR("jepsen", "history refused an operation: %s", mr_err_msg(&err));
    } else if (process == JP_NEMESIS) {
        /* Faults are few: show them as they happen. */
        char *v = json_dumps(r->hist.ops[r->hist.n - 1].value, JSON_COMPACT | JSON_ENCODE_ANY);
        printf("  %7.2f s  nemesis %s %s\n", (double)hj_elapsed(r) / 1e9, f, v ? v : "");
        fflush(stdout);
        free(v);
    }
    pthread_mutex_unlock(&r->mu);
}

void hj_split_at(int groups, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (int r = 1; r < groups && off < len; r++)
        off += (size_t)snprintf(buf + off, len - off, "%sr%02d", r > 1 ? "," : "", r);
}

uint64_t hj_rng_next(hj_rng *g)
{
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t hj_rng_below(hj_rng *g, uint64_t n)
{
    return hj_rng_next(g) % n;
}

int64_t hj_rng_range(hj_rng *g, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t)hj_rng_below(g, (uint64_t)(hi - lo) + 1);
}

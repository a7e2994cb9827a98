/* What every system of bench-contention shares: the list append and the runner's backoff. */
#include <stdlib.h>
#include <string.h>

#include "bench/contention/bc.h"

const char *const bc_reason_names[BC_REASONS] = {"wound_or_serialization", "prepare", "timeout",
                                                 "leader_or_deadlock",     "other",   "unknown"};

char *bc_append(const char *old, size_t len, const char *token)
{
    /* Drop the oldest tokens while the list holds BC_KEEP already. */
    size_t start = 0, commas = 0;
    for (size_t i = 0; i < len; i++)
        commas += old[i] == ',';
    size_t tokens = len ? commas + 1 : 0;
    for (; tokens >= BC_KEEP && start < len; tokens--) {
        const char *c = memchr(old + start, ',', len - start);
        start = c ? (size_t)(c - old) + 1 : len;
    }
    size_t keep = len - start, tl = strlen(token);
    char *v = malloc(keep + 1 + tl + 1);
    if (!v)
        return NULL;
    if (keep)
        memcpy(v, old + start, keep);
    size_t off = keep;
    if (keep)
        v[off++] = ',';
    memcpy(v + off, token, tl + 1);
    return v;
}

int64_t bc_backoff_ms(unsigned attempt, uint64_t r)
{
    /* client/mer_run.c: MER_RUN_BASE_MS 20, MER_RUN_CAP_MS 1000, mer_backoff_ms. */
    int64_t d = 20;
    for (unsigned i = 0; i < attempt && d < 1000; i++)
        d *= 2;
    if (d > 1000)
        d = 1000;
    int64_t half = d / 2;
    return d - half + (half > 0 ? (int64_t)(r % (uint64_t)(half + 1)) : 0);
}

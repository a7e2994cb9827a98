/* tests/sql/fake_ranges.c: meridian_ranges for the in-memory libmeridian (a
 * test double, beside fake_meridian.c): one range holding every key, group 1,
 * led by the connection's own (fake) address. */
#include <stdlib.h>
#include <string.h>

#include "meridian.h"

void meridian_free_ranges(meridian_range *r, size_t n)
{
    if (!r)
        return;
    for (size_t i = 0; i < n; i++) {
        free(r[i].start);
        free(r[i].end);
        free(r[i].leader);
        for (size_t j = 0; j < r[i].nreplicas; j++)
            free(r[i].replicas[j]);
        free(r[i].replicas);
    }
    free(r);
}

int meridian_ranges(meridian *db, const void *start, size_t slen, const void *end, size_t elen,
                    int refresh, meridian_range **out, size_t *n)
{
    (void)start, (void)slen, (void)end, (void)elen, (void)refresh;
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!db || !out || !n)
        return MERIDIAN_INVALID;
    meridian_range *r = calloc(1, sizeof *r);
    if (!r)
        return MERIDIAN_NOMEM;
    r->start = malloc(1);
    r->end = malloc(1);
    r->group = 1;
    r->leader = strdup("fake:1");
    r->replicas = calloc(1, sizeof *r->replicas);
    if (r->replicas)
        r->replicas[0] = strdup("fake:1");
    r->nreplicas = 1;
    if (!r->start || !r->end || !r->leader || !r->replicas || !r->replicas[0]) {
        meridian_free_ranges(r, 1);
        return MERIDIAN_NOMEM;
    }
    *out = r;
    *n = 1;
    return MERIDIAN_OK;
}

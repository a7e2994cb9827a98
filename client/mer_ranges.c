/* meridian_ranges: the range map as the connection knows it, for tools that
 * show where data lives (`SHOW TABLETS` in the SQL engine). */
#include <stdlib.h>
#include <string.h>

#include "client/mer_int.h"

static int cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : (al < bl ? -1 : al > bl);
}

static const char *node_addr(const mer_rmap *m, uint32_t id)
{
    for (size_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].id == id)
            return m->nodes[i].addr;
    return "";
}

static void *dup_bytes(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

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
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!db)
        return MERIDIAN_INVALID;
    mer_clear(db);
    if (!out || !n || (slen && !start) || (elen && !end))
        return mer_fail(db, MERIDIAN_INVALID, "meridian_ranges: bad arguments");
    if (refresh || !db->map.nranges) {
        int rc = mer_refresh_map(db);
        if (rc != MERIDIAN_OK)
            return rc;
    }
    const mer_rmap *m = &db->map;
    meridian_range *r = calloc(m->nranges ? m->nranges : 1, sizeof *r);
    if (!r)
        return mer_fail(db, MERIDIAN_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < m->nranges; i++) {
        const mer_range *x = &m->ranges[i];
        /* overlaps [start, end)? */
        if (x->end.len && slen && cmp(x->end.p, x->end.len, start, slen) <= 0)
            continue;
        if (end && elen && cmp(x->start.p, x->start.len, end, elen) >= 0)
            continue;
        const mer_group *g = &m->groups[x->group];
        meridian_range *o = &r[k++];
        o->start = dup_bytes(x->start.p, x->start.len);
        o->slen = x->start.len;
        o->end = dup_bytes(x->end.p, x->end.len);
        o->elen = x->end.len;
        o->group = g->id;
        o->leader = strdup(g->leader ? g->leader : "");
        o->replicas = calloc(g->nreplicas ? g->nreplicas : 1, sizeof *o->replicas);
        int bad = !o->start || !o->end || !o->leader || !o->replicas;
        for (size_t j = 0; !bad && j < g->nreplicas; j++) {
            o->replicas[j] = strdup(node_addr(m, g->replicas[j]));
            bad = !o->replicas[j];
            o->nreplicas++;
        }
        if (bad) {
            meridian_free_ranges(r, k);
            return mer_fail(db, MERIDIAN_NOMEM, "out of memory");
        }
    }
    *out = r;
    *n = k;
    return MERIDIAN_OK;
}

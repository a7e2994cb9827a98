/* The client's range map (key range -> group -> replicas and leader hint) and
 * the order in which routing tries a group's replicas. Pure: no I/O, so the
 * unit tests drive it directly. The map comes from MSG_RANGES (a RangeMap,
 * proto/meridian.proto). Keys are byte strings, ordered as bytes. */
#include <stdlib.h>
#include <string.h>

#include "client/mer_int.h"
#include "common/mr_util.h"

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

void mer_rmap_free(mer_rmap *m)
{
    for (size_t i = 0; i < m->nranges; i++) {
        free(m->ranges[i].start.p);
        free(m->ranges[i].end.p);
    }
    for (size_t i = 0; i < m->ngroups; i++) {
        free(m->groups[i].replicas);
        free(m->groups[i].leader);
    }
    for (size_t i = 0; i < m->nnodes; i++) {
        free(m->nodes[i].addr);
        free(m->nodes[i].zone);
    }
    free(m->ranges);
    free(m->groups);
    free(m->nodes);
    memset(m, 0, sizeof *m);
}

void mer_rmap_replace(mer_rmap *dst, mer_rmap *src)
{
    for (size_t i = 0; i < src->nnodes; i++) {
        mer_node *old = mer_rmap_node_at(dst, src->nodes[i].addr, false);
        if (old) {
            src->nodes[i].down_until = old->down_until;
            src->nodes[i].proven = old->proven;
            src->nodes[i].failed = old->failed;
        }
    }
    mer_rmap_free(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
}

static mer_node *add_node(mer_rmap *m, uint32_t id, const char *addr, const char *zone)
{
    mer_node *nn = realloc(m->nodes, (m->nnodes + 1) * sizeof *nn);
    if (!nn)
        return NULL;
    m->nodes = nn;
    mer_node *n = &m->nodes[m->nnodes];
    memset(n, 0, sizeof *n);
    n->id = id;
    n->addr = strdup(addr);
    n->zone = dup_or_empty(zone);
    if (!n->addr || !n->zone) {
        free(n->addr);
        free(n->zone);
        return NULL;
    }
    m->nnodes++;
    return n;
}

static mer_group *add_group(mer_rmap *m, uint64_t gid)
{
    mer_group *ng = realloc(m->groups, (m->ngroups + 1) * sizeof *ng);
    if (!ng)
        return NULL;
    m->groups = ng;
    mer_group *g = &m->groups[m->ngroups];
    memset(g, 0, sizeof *g);
    g->id = gid;
    g->leader = strdup("");
    if (!g->leader)
        return NULL;
    m->ngroups++;
    return g;
}

static int bytes_copy(mer_bytes *out, const ProtobufCBinaryData *b)
{
    out->len = b->len;
    out->p = malloc(b->len ? b->len : 1);
    if (!out->p)
        return MR_ENOMEM;
    if (b->len)
        memcpy(out->p, b->data, b->len);
    return MR_OK;
}

static int add_range(mer_rmap *m, const ProtobufCBinaryData *start, const ProtobufCBinaryData *end,
                     size_t gidx)
{
    mer_range *nr = realloc(m->ranges, (m->nranges + 1) * sizeof *nr);
    if (!nr)
        return MR_ENOMEM;
    m->ranges = nr;
    mer_range *r = &m->ranges[m->nranges];
    memset(r, 0, sizeof *r);
    r->group = gidx;
    if (bytes_copy(&r->start, start) != MR_OK || bytes_copy(&r->end, end) != MR_OK) {
        free(r->start.p);
        free(r->end.p);
        return MR_ENOMEM;
    }
    m->nranges++;
    return MR_OK;
}

static int add_replica(mer_group *g, uint32_t id)
{
    for (size_t i = 0; i < g->nreplicas; i++)
        if (g->replicas[i] == id)
            return MR_OK;
    uint32_t *nr = realloc(g->replicas, (g->nreplicas + 1) * sizeof *nr);
    if (!nr)
        return MR_ENOMEM;
    g->replicas = nr;
    g->replicas[g->nreplicas++] = id;
    return MR_OK;
}

static const mer_node *node_by_id(const mer_rmap *m, uint32_t id)
{
    for (size_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].id == id)
            return &m->nodes[i];
    return NULL;
}

static int parse_nodes(mer_rmap *m, const Meridian__RangeMap *r, mr_err *err)
{
    if (r->n_nodes == 0)
        return mr_errf(err, MR_EPROTO, "range map without nodes");
    for (size_t i = 0; i < r->n_nodes; i++) {
        const Meridian__NodeInfo *n = r->nodes[i];
        if (n->id == 0 || !n->addr[0])
            return mr_errf(err, MR_EPROTO, "range map: node %zu lacks an id or address", i);
        if (!add_node(m, n->id, n->addr, n->zone))
            return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    return MR_OK;
}

static int parse_range(mer_rmap *m, size_t i, const Meridian__Range *r, const mer_bytes *prev_end,
                       mr_err *err)
{
    if (r->group == 0)
        return mr_errf(err, MR_EPROTO, "range map: range %zu lacks a group", i);
    /* Contiguous from "" to +infinity: each range starts where the last ended. */
    if (mr_bytes_cmp(r->start.data, r->start.len, prev_end->p, prev_end->len) != 0 ||
        (r->end.len && mr_bytes_cmp(r->start.data, r->start.len, r->end.data, r->end.len) >= 0))
        return mr_errf(err, MR_EPROTO, "range map: range %zu is out of order", i);
    mer_group *g = mer_rmap_group(m, r->group);
    if (!g && !(g = add_group(m, r->group)))
        return mr_errf(err, MR_ENOMEM, "out of memory");
    for (size_t k = 0; k < r->n_replicas; k++) {
        uint32_t id = r->replicas[k];
        if (!node_by_id(m, id))
            return mr_errf(err, MR_EPROTO, "range map: group %llu names unknown node %u",
                           (unsigned long long)r->group, id);
        if (add_replica(g, id) != MR_OK)
            return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    if (g->nreplicas == 0)
        return mr_errf(err, MR_EPROTO, "range map: group %llu has no replicas",
                       (unsigned long long)r->group);
    if (r->leader && *r->leader)
        mer_rmap_set_leader(m, r->group, r->leader);
    if (add_range(m, &r->start, &r->end, (size_t)(g - m->groups)) != MR_OK)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    return MR_OK;
}

int mer_rmap_from_reply(mer_rmap *m, const Meridian__RangeMap *reply, mr_err *err)
{
    memset(m, 0, sizeof *m);
    int rc = parse_nodes(m, reply, err);
    if (rc == MR_OK && reply->n_ranges == 0)
        rc = mr_errf(err, MR_EPROTO, "range map without ranges");
    static const mer_bytes first = {.p = (uint8_t *)"", .len = 0};
    for (size_t i = 0; rc == MR_OK && i < reply->n_ranges; i++)
        rc = parse_range(m, i, reply->ranges[i], i ? &m->ranges[i - 1].end : &first, err);
    if (rc == MR_OK && m->ranges[m->nranges - 1].end.len)
        rc = mr_errf(err, MR_EPROTO, "range map does not reach +infinity");
    if (rc != MR_OK)
        mer_rmap_free(m);
    return rc;
}

int mer_seeds_check(const char *addrs, mr_err *err)
{
    char *list = strdup(addrs ? addrs : "");
    if (!list)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    int n = 0, rc = MR_OK;
    for (char *save = NULL, *a = strtok_r(list, ", ", &save); a && rc == MR_OK;
         a = strtok_r(NULL, ", ", &save), n++) {
        char host[256];
        int port;
        if (mr_parse_hostport(a, host, sizeof host, &port) != 0)
            rc = mr_errf(err, MR_EINVAL, "\"%s\" is not host:port", a);
    }
    free(list);
    if (rc == MR_OK && n == 0)
        rc = mr_errf(err, MR_EINVAL, "no node addresses");
    return rc;
}

const mer_range *mer_rmap_find(const mer_rmap *m, const void *key, size_t klen)
{
    /* The last range whose start is <= key (the first starts at ""). */
    size_t lo = 0, hi = m->nranges;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (mr_bytes_cmp(m->ranges[mid].start.p, m->ranges[mid].start.len, key, klen) <= 0)
            lo = mid;
        else
            hi = mid;
    }
    return m->nranges ? &m->ranges[lo] : NULL;
}

uint64_t mer_rmap_group_of(const mer_rmap *m, const void *key, size_t klen)
{
    return m->groups[mer_rmap_find(m, key, klen)->group].id;
}

mer_group *mer_rmap_group(const mer_rmap *m, uint64_t gid)
{
    for (size_t i = 0; i < m->ngroups; i++)
        if (m->groups[i].id == gid)
            return &m->groups[i];
    return NULL;
}

mer_node *mer_rmap_node_at(mer_rmap *m, const char *addr, bool add)
{
    for (size_t i = 0; i < m->nnodes; i++)
        if (strcmp(m->nodes[i].addr, addr) == 0)
            return &m->nodes[i];
    return add ? add_node(m, 0, addr, "") : NULL;
}

void mer_rmap_set_leader(mer_rmap *m, uint64_t gid, const char *addr)
{
    mer_group *g = mer_rmap_group(m, gid);
    char *copy = strdup(addr ? addr : "");
    if (!g || !copy) {
        free(copy);
        return;
    }
    free(g->leader);
    g->leader = copy;
    if (!*addr)
        return;
    mer_rmap_node_at(m, addr, true); /* so it can be marked down */
}

void mer_rmap_mark_down(mer_rmap *m, const char *addr, int64_t until)
{
    mer_node *n = mer_rmap_node_at(m, addr, true);
    if (n) {
        n->down_until = until;
        n->proven = 0; /* its connection is suspect: probe it before trusting it again */
        n->failed = true;
    }
}

static bool is_down(const mer_rmap *m, const char *addr, int64_t now)
{
    for (size_t i = 0; i < m->nnodes; i++)
        if (strcmp(m->nodes[i].addr, addr) == 0)
            return m->nodes[i].down_until > now;
    return false;
}

static size_t push_unique(const char **out, size_t n, size_t cap, const char *a)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(out[i], a) == 0)
            return n;
    if (n < cap)
        out[n++] = a;
    return n;
}

size_t mer_rmap_candidates(const mer_rmap *m, uint64_t gid, bool leader_first, unsigned rot,
                           int64_t now, const char **out, size_t cap)
{
    const mer_group *g = mer_rmap_group(m, gid);
    if (!g)
        return 0;
    const char *all[64];
    size_t n = 0;
    if (leader_first && *g->leader)
        n = push_unique(all, n, 64, g->leader);
    for (size_t i = 0; i < g->nreplicas; i++) {
        const mer_node *node = node_by_id(m, g->replicas[(i + rot) % g->nreplicas]);
        if (node)
            n = push_unique(all, n, 64, node->addr);
    }
    /* Only the nodes not marked down, in order; those marked down only when
     * every one is (then someone must be tried). */
    size_t k = 0;
    for (int pass = 0; pass < 2 && k == 0; pass++)
        for (size_t i = 0; i < n && k < cap; i++)
            if (is_down(m, all[i], now) == (pass == 1))
                out[k++] = all[i];
    return k;
}

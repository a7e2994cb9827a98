/* The client's range map (key range -> group -> replicas and leader hint) and
 * the order in which routing tries a group's replicas. Pure: no I/O, so the
 * unit tests drive it directly. The map comes from ND_MSG_RANGES (see the
 * "Range map" comment in tablet/node/nd.h). */
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
        free(m->ranges[i].start);
        free(m->ranges[i].end);
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

static int add_range(mer_rmap *m, const char *start, const char *end, size_t gidx)
{
    mer_range *nr = realloc(m->ranges, (m->nranges + 1) * sizeof *nr);
    if (!nr)
        return MR_ENOMEM;
    m->ranges = nr;
    mer_range *r = &m->ranges[m->nranges];
    r->start = strdup(start);
    r->end = strdup(end);
    r->group = gidx;
    if (!r->start || !r->end) {
        free(r->start);
        free(r->end);
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

static int parse_nodes(mer_rmap *m, const json_t *nodes, mr_err *err)
{
    size_t i;
    const json_t *n;
    if (!json_is_array(nodes) || json_array_size(nodes) == 0)
        return mr_errf(err, MR_EPROTO, "range map without nodes");
    json_array_foreach(nodes, i, n)
    {
        json_int_t id = json_integer_value(json_object_get(n, "id"));
        const char *addr = json_string_value(json_object_get(n, "addr"));
        if (id <= 0 || id > UINT32_MAX || !addr || !*addr)
            return mr_errf(err, MR_EPROTO, "range map: node %zu lacks an id or address", i);
        if (!add_node(m, (uint32_t)id, addr, json_string_value(json_object_get(n, "zone"))))
            return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    return MR_OK;
}

static int parse_range(mer_rmap *m, size_t i, const json_t *r, const char *prev_end, mr_err *err)
{
    const char *start = json_string_value(json_object_get(r, "start"));
    const char *end = json_string_value(json_object_get(r, "end"));
    json_int_t gid = json_integer_value(json_object_get(r, "group"));
    if (!start || !end || gid <= 0)
        return mr_errf(err, MR_EPROTO, "range map: range %zu lacks start, end or group", i);
    /* Contiguous from "" to +infinity: each range starts where the last ended. */
    if (strcmp(start, prev_end) != 0 || (*end && strcmp(start, end) >= 0))
        return mr_errf(err, MR_EPROTO, "range map: range %zu [%s, %s) is out of order", i, start,
                       end);
    mer_group *g = mer_rmap_group(m, (uint64_t)gid);
    if (!g && !(g = add_group(m, (uint64_t)gid)))
        return mr_errf(err, MR_ENOMEM, "out of memory");
    size_t k;
    const json_t *rep;
    json_array_foreach(json_object_get(r, "replicas"), k, rep)
    {
        json_int_t id = json_integer_value(rep);
        if (!node_by_id(m, (uint32_t)id))
            return mr_errf(err, MR_EPROTO, "range map: group %lld names unknown node %lld",
                           (long long)gid, (long long)id);
        if (add_replica(g, (uint32_t)id) != MR_OK)
            return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    if (g->nreplicas == 0)
        return mr_errf(err, MR_EPROTO, "range map: group %lld has no replicas", (long long)gid);
    const char *leader = json_string_value(json_object_get(r, "leader"));
    if (leader && *leader)
        mer_rmap_set_leader(m, (uint64_t)gid, leader);
    if (add_range(m, start, end, (size_t)(g - m->groups)) != MR_OK)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    return MR_OK;
}

int mer_rmap_from_json(mer_rmap *m, const json_t *reply, mr_err *err)
{
    memset(m, 0, sizeof *m);
    int rc = parse_nodes(m, json_object_get(reply, "nodes"), err);
    const json_t *ranges = json_object_get(reply, "ranges");
    if (rc == MR_OK && (!json_is_array(ranges) || json_array_size(ranges) == 0))
        rc = mr_errf(err, MR_EPROTO, "range map without ranges");
    size_t i;
    const json_t *r;
    json_array_foreach(ranges, i, r)
    {
        if (rc != MR_OK)
            break;
        rc = parse_range(m, i, r, i ? m->ranges[i - 1].end : "", err);
    }
    if (rc == MR_OK && *m->ranges[m->nranges - 1].end)
        rc = mr_errf(err, MR_EPROTO, "range map ends at \"%s\", not +infinity",
                     m->ranges[m->nranges - 1].end);
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

const mer_range *mer_rmap_find(const mer_rmap *m, const char *key)
{
    /* The last range whose start is <= key (the first starts at ""). */
    size_t lo = 0, hi = m->nranges;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(m->ranges[mid].start, key) <= 0)
            lo = mid;
        else
            hi = mid;
    }
    return m->nranges ? &m->ranges[lo] : NULL;
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

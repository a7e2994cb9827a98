/* The range map: which data group holds which keys, and where its replicas are. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "net/transport.h"
#include "tablet/logstore/ls_paxos.h"
#include "tablet/node/nd_http.h"
#include "tablet/node/nd_metrics.h"
#include "tablet/paxos/px.h"
#include "truetime/tt.h"

#include "tablet/node/nd_int.h"
#include "tablet/node/nd_validate.h"

int nd_config_from_json(json_t *arr, px_config *c, mr_err *err)
{
    memset(c, 0, sizeof *c);
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > PX_MAX_NODES)
        return mr_errf(err, MR_EINVAL, "group replicas must be a non-empty array of node ids");
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_integer(v))
            return mr_errf(err, MR_EINVAL, "replica %zu is not a node id", i);
        c->nodes[c->n++] = (px_node_id)json_integer_value(v);
    }
    return px_config_validate(c, err);
}

int nd_bytes_set(nd_bytes *b, const void *p, size_t len)
{
    uint8_t *n = malloc(len ? len : 1);
    if (!n)
        return MR_ENOMEM;
    if (len)
        memcpy(n, p, len);
    free(b->p);
    b->p = n;
    b->len = len;
    return MR_OK;
}

void nd_bytes_free(nd_bytes *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
}

/* key is below end (an empty end is +infinity). */
static bool below_end(const void *key, size_t klen, const nd_bytes *end)
{
    return !end->len || mr_bytes_cmp(key, klen, end->p, end->len) < 0;
}

static bool in_span(const void *key, size_t klen, const nd_bytes *start, const nd_bytes *end)
{
    return mr_bytes_cmp(key, klen, start->p, start->len) >= 0 && below_end(key, klen, end);
}

bool nd_in_range(const nd_group *g, const void *key, size_t klen)
{
    return g->has_range && in_span(key, klen, &g->range_start, &g->range_end);
}

bool nd_key_splits(const nd_bytes *start, const nd_bytes *end, const void *key, size_t klen)
{
    return mr_bytes_cmp(key, klen, start->p, start->len) > 0 && below_end(key, klen, end);
}

uint64_t nd_group_of_key(const nd_node *n, const void *key, size_t klen)
{
    for (size_t i = 0; i < n->nranges; i++) {
        const nd_range *r = &n->ranges[i];
        if (in_span(key, klen, &r->start, &r->end))
            return r->group;
    }
    return 0;
}

const px_config *nd_group_replicas(const nd_node *n, uint64_t gid)
{
    if (gid == ND_META_GROUP)
        return n->meta_replicas.n ? &n->meta_replicas : NULL;
    for (size_t i = 0; i < n->nranges; i++)
        if (n->ranges[i].group == gid)
            return &n->ranges[i].replicas;
    return NULL;
}

void nd_range_free(nd_node *n)
{
    for (size_t i = 0; i < n->nranges; i++) {
        nd_bytes_free(&n->ranges[i].start);
        nd_bytes_free(&n->ranges[i].end);
    }
    free(n->ranges);
    n->ranges = NULL;
    n->nranges = 0;
}

static int range_cmp(const void *a, const void *b)
{
    const nd_range *x = a, *y = b;
    return mr_bytes_cmp(x->start.p, x->start.len, y->start.p, y->start.len);
}

json_t *nd_key_json(const void *p, size_t len)
{
    char *h = malloc(2 * len + 1);
    if (!h)
        return NULL;
    mr_hex_encode(p, len, h);
    json_t *o = json_string(h);
    free(h);
    return o;
}

int nd_key_from_json(const json_t *v, nd_bytes *out)
{
    const char *s = json_string_value(v);
    size_t n = s ? json_string_length(v) : 0;
    if (!s || n % 2 || n / 2 > ND_KEY_MAX)
        return MR_EINVAL;
    uint8_t buf[ND_KEY_MAX];
    if (mr_hex_decode(s, n, buf) != 0)
        return MR_EINVAL;
    return nd_bytes_set(out, buf, n / 2);
}

/* The groups' ranges from the cluster description's groups (cluster.json: keys in hex): the
 * meta group's ["", ND_META_END), then the data groups', sorted, contiguous, to +infinity. */
int nd_range_load(nd_node *n, json_t *groups, mr_err *err)
{
    nd_range_free(n);
    n->ranges = calloc(json_array_size(groups) + 1, sizeof *n->ranges);
    if (!n->ranges)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    size_t i;
    json_t *v;
    bool meta = false;
    json_array_foreach(groups, i, v)
    {
        const char *kind = json_string_value(json_object_get(v, "kind"));
        bool is_meta = kind && strcmp(kind, "meta") == 0;
        if (!kind || (!is_meta && strcmp(kind, "data") != 0))
            continue;
        nd_range *r = &n->ranges[n->nranges++];
        r->group = (uint64_t)json_integer_value(json_object_get(v, "id"));
        r->floor_ts = (int64_t)json_integer_value(json_object_get(v, "floor_ts"));
        r->parent = (uint64_t)json_integer_value(json_object_get(v, "parent"));
        r->absent = json_is_true(json_object_get(v, "absent_here"));
        if (nd_key_from_json(json_object_get(v, "start"), &r->start) != MR_OK ||
            nd_key_from_json(json_object_get(v, "end"), &r->end) != MR_OK ||
            nd_config_from_json(json_object_get(v, "replicas"), &r->replicas, err) != MR_OK) {
            nd_range_free(n);
            return mr_errf(err, MR_ECORRUPT,
                           "group entry %zu: bad range (start and end in hex) or replicas", i);
        }
        if (is_meta && (meta || r->group != ND_META_GROUP || r->start.len != 0 ||
                        mr_bytes_cmp(r->end.p, r->end.len, ND_META_END, ND_META_END_LEN) != 0)) {
            nd_range_free(n);
            return mr_errf(err, MR_ECORRUPT,
                           "group entry %zu: the meta group must be group %d, once, holding "
                           "[\"\", \"\\x02\")",
                           i, ND_META_GROUP);
        }
        meta |= is_meta;
    }
    if (!meta) {
        nd_range_free(n);
        return mr_errf(err, MR_ECORRUPT, "the cluster description has no meta group");
    }
    qsort(n->ranges, n->nranges, sizeof *n->ranges, range_cmp);
    for (size_t k = 0; k < n->nranges; k++) {
        const nd_bytes *want = k == 0 ? NULL : &n->ranges[k - 1].end;
        const nd_range *r = &n->ranges[k];
        bool starts = want ? mr_bytes_cmp(r->start.p, r->start.len, want->p, want->len) == 0
                           : r->start.len == 0;
        if (!starts || (k + 1 == n->nranges && r->end.len)) {
            nd_range_free(n);
            return mr_errf(err, MR_ECORRUPT, "the groups' ranges do not tile the key space");
        }
    }
    return MR_OK;
}

/* ND_MSG_RANGES: the range map with leader hints (known for groups hosted here). */
void nd_range_on_request(nd_node *n, const net_message *m)
{
    pr_arena a;
    pr_arena_init(&a);
    Meridian__RangeMap map = MERIDIAN__RANGE_MAP__INIT;
    Meridian__Range *ranges = pr_arena_alloc(&a, (n->nranges + 1) * sizeof *ranges);
    Meridian__Range **pranges = pr_arena_alloc(&a, (n->nranges + 1) * sizeof *pranges);
    Meridian__NodeInfo *nodes = pr_arena_alloc(&a, (PX_MAX_NODE_ID + 1) * sizeof *nodes);
    Meridian__NodeInfo **pnodes = pr_arena_alloc(&a, (PX_MAX_NODE_ID + 1) * sizeof *pnodes);
    if (!ranges || !pranges || !nodes || !pnodes) {
        pr_arena_free(&a);
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__NO_MEMORY, "out of memory");
    }
    for (size_t i = 0; i < n->nranges; i++) {
        nd_range *r = &n->ranges[i];
        Meridian__Range *e = &ranges[i];
        *e = (Meridian__Range)MERIDIAN__RANGE__INIT;
        e->start = nd_bytes_bin(&r->start);
        e->end = nd_bytes_bin(&r->end);
        e->group = r->group;
        e->n_replicas = r->replicas.n;
        e->replicas = r->replicas.nodes;
        e->leader = "";
        nd_group *g = nd_find_group(n, r->group);
        if (g) {
            px_status st;
            px_node_status(g->px, &st);
            if (st.leader && st.leader <= PX_MAX_NODE_ID)
                e->leader = n->peers[st.leader].addr;
        }
        pranges[i] = e;
    }
    map.n_ranges = n->nranges;
    map.ranges = pranges;
    for (int id = 1; id <= PX_MAX_NODE_ID; id++) {
        if (!n->peers[id].addr[0])
            continue;
        Meridian__NodeInfo *e = &nodes[map.n_nodes];
        *e = (Meridian__NodeInfo)MERIDIAN__NODE_INFO__INIT;
        e->id = (uint32_t)id;
        e->addr = n->peers[id].addr;
        e->zone = n->peers[id].zone;
        e->region = n->peers[id].region;
        pnodes[map.n_nodes++] = e;
    }
    map.nodes = pnodes;
    nd_reply_body(n, m->reply_to, MERIDIAN__REPLY__BODY_RANGES, &map.base);
    pr_arena_free(&a);
}

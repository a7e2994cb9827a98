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

/* Byte order of NUL-free strings, with "" as +infinity when `inf`. */
static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static bool below_end(const char *key, size_t klen, const char *end)
{
    return !*end || key_cmp(key, klen, end, strlen(end)) < 0;
}

bool nd_in_range(const nd_group *g, const char *key, size_t klen)
{
    return g->range_start && key_cmp(key, klen, g->range_start, strlen(g->range_start)) >= 0 &&
           below_end(key, klen, g->range_end);
}

bool nd_key_splits(const char *start, const char *end, const char *key)
{
    return strcmp(key, start) > 0 && below_end(key, strlen(key), end);
}

uint64_t nd_group_of_key(const nd_node *n, const char *key, size_t klen)
{
    for (size_t i = 0; i < n->nranges; i++) {
        const nd_range *r = &n->ranges[i];
        if (key_cmp(key, klen, r->start, strlen(r->start)) >= 0 && below_end(key, klen, r->end))
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
        free(n->ranges[i].start);
        free(n->ranges[i].end);
    }
    free(n->ranges);
    n->ranges = NULL;
    n->nranges = 0;
}

static int range_cmp(const void *a, const void *b)
{
    const nd_range *x = a, *y = b;
    return key_cmp(x->start, strlen(x->start), y->start, strlen(y->start));
}

/* The data groups' ranges from the cluster description: sorted, contiguous,
 * from "" to +infinity. A description from before ranges existed (no
 * "start") gives its first data group everything. */
int nd_range_load(nd_node *n, json_t *groups, mr_err *err)
{
    nd_range_free(n);
    n->ranges = calloc(json_array_size(groups) + 1, sizeof *n->ranges);
    if (!n->ranges)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    size_t i;
    json_t *v;
    bool legacy = false;
    json_array_foreach(groups, i, v)
    {
        const char *kind = json_string_value(json_object_get(v, "kind"));
        if (!kind || strcmp(kind, "data") != 0)
            continue;
        const char *s = json_string_value(json_object_get(v, "start"));
        const char *e = json_string_value(json_object_get(v, "end"));
        if (!s && (legacy || n->nranges == 0)) {
            legacy = true;
            s = n->nranges == 0 ? "" : NULL;
            e = "";
        }
        if (!s || !e)
            continue; /* legacy: later data groups hold no keys */
        nd_range *r = &n->ranges[n->nranges++];
        r->group = (uint64_t)json_integer_value(json_object_get(v, "id"));
        r->floor_ts = (int64_t)json_integer_value(json_object_get(v, "floor_ts"));
        r->parent = (uint64_t)json_integer_value(json_object_get(v, "parent"));
        r->absent = json_is_true(json_object_get(v, "absent_here"));
        r->start = strdup(s);
        r->end = strdup(e);
        if (!r->start || !r->end ||
            nd_config_from_json(json_object_get(v, "replicas"), &r->replicas, err) != MR_OK) {
            nd_range_free(n);
            return mr_errf(err, MR_ECORRUPT, "group entry %zu: bad range or replicas", i);
        }
    }
    qsort(n->ranges, n->nranges, sizeof *n->ranges, range_cmp);
    for (size_t k = 0; k < n->nranges; k++) {
        const char *want = k == 0 ? "" : n->ranges[k - 1].end;
        if (strcmp(n->ranges[k].start, want) != 0 || (k + 1 == n->nranges && *n->ranges[k].end)) {
            nd_range_free(n);
            return mr_errf(err, MR_ECORRUPT, "the data groups' ranges do not tile the key space");
        }
    }
    return MR_OK;
}

/* ND_MSG_RANGES: the range map with leader hints (known for groups hosted here). */
void nd_range_on_request(nd_node *n, const net_message *m)
{
    json_t *ranges = json_array(), *nodes = json_array();
    for (size_t i = 0; i < n->nranges; i++) {
        const nd_range *r = &n->ranges[i];
        json_t *reps = json_array();
        for (uint32_t k = 0; k < r->replicas.n; k++)
            json_array_append_new(reps, json_integer(r->replicas.nodes[k]));
        const char *leader = "";
        nd_group *g = nd_find_group(n, r->group);
        if (g) {
            px_status st;
            px_node_status(g->px, &st);
            if (st.leader && st.leader <= PX_MAX_NODE_ID)
                leader = n->peers[st.leader].addr;
        }
        json_array_append_new(ranges, json_pack("{s:s, s:s, s:I, s:o, s:s}", "start", r->start,
                                                "end", r->end, "group", (json_int_t)r->group,
                                                "replicas", reps, "leader", leader));
    }
    for (int id = 1; id <= PX_MAX_NODE_ID; id++)
        if (n->peers[id].addr[0])
            json_array_append_new(nodes, json_pack("{s:i, s:s, s:s, s:s}", "id", id, "addr",
                                                   n->peers[id].addr, "zone", n->peers[id].zone,
                                                   "region", n->peers[id].region));
    nd_reply_json(n, m->reply_to,
                  json_pack("{s:b, s:o, s:o}", "ok", 1, "ranges", ranges, "nodes", nodes));
}

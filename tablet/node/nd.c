/* A Meridian node (see nd.h): replicas of many Paxos groups on one loop. */
#include "tablet/node/nd.h"

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

/* ---- small helpers ---- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Process-wide: read_at sizes scan pages from it without a node at hand. A
 * test switch (MERIDIAN_TEST_REPLY_MAX) lowers it when a node opens. */
static uint32_t reply_max = NET_FRAME_DEFAULT_MAX;

uint32_t nd_reply_max(void)
{
    return reply_max;
}

void nd_reply_json(nd_node *n, net_reply_to to, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    size_t len = s ? strlen(s) : 0;
    if (!s || len > nd_reply_max()) {
        /* The client hears why instead of waiting out its timeout. */
        char msg[160];
        if (s)
            snprintf(msg, sizeof msg, "the reply takes %zu bytes, over the %u-byte frame limit",
                     len, nd_reply_max());
        else
            snprintf(msg, sizeof msg, "the reply could not be encoded (out of memory)");
        MR_WARN("node", "reply refused: %s", msg);
        free(s);
        json_t *e = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", len ? "too_large" : "nomem",
                              "message", msg);
        s = e ? json_dumps(e, JSON_COMPACT) : NULL;
        json_decref(e);
        if (!s)
            return;
        len = strlen(s);
    }
    mr_err err;
    if (net_transport_reply(n->tr, to, ND_MSG_REPLY, s, (uint32_t)len, &err) != MR_OK)
        MR_WARN("node", "reply dropped: %s", mr_err_msg(&err));
    free(s);
}

void nd_reply_error(nd_node *n, net_reply_to to, const char *code, const char *msg)
{
    nd_reply_json(n, to, json_pack("{s:b, s:s, s:s}", "ok", 0, "error", code, "message", msg));
}

/* Groups are kept sorted by id (the cluster description lists them in order). */
nd_group *nd_find_group(nd_node *n, uint64_t id)
{
    size_t lo = 0, hi = n->ngroups;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (n->groups[mid]->id == id)
            return n->groups[mid];
        if (n->groups[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- cluster description (DATA/cluster.json) ---- */

static int write_file_atomic(const char *path, const char *text, mr_err *err)
{
    char tmp[4200];
    if (strlen(path) > sizeof tmp - 8)
        return mr_errf(err, MR_EINVAL, "path too long: %s", path);
    memcpy(tmp, path, strlen(path));
    memcpy(tmp + strlen(path), ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return mr_errf(err, MR_EIO, "create %s: %s", tmp, strerror(errno));
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    if (w != (ssize_t)len || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return mr_errf(err, e == ENOSPC ? MR_EFULL : MR_EIO, "write %s: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0)
        return mr_errf(err, MR_EIO, "rename %s: %s", tmp, strerror(errno));
    /* The rename is durable only once the directory is. */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return MR_OK;
}

static int group_config_from_json(json_t *arr, px_config *c, mr_err *err)
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

static int start_group(nd_node *n, uint64_t gid, const px_config *config, int64_t floor,
                       mr_err *err);

/* ---- the range map ---- */

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

static void free_ranges(nd_node *n)
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
static int load_ranges(nd_node *n, json_t *groups, mr_err *err)
{
    free_ranges(n);
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
            group_config_from_json(json_object_get(v, "replicas"), &r->replicas, err) != MR_OK) {
            free_ranges(n);
            return mr_errf(err, MR_ECORRUPT, "group entry %zu: bad range or replicas", i);
        }
    }
    qsort(n->ranges, n->nranges, sizeof *n->ranges, range_cmp);
    for (size_t k = 0; k < n->nranges; k++) {
        const char *want = k == 0 ? "" : n->ranges[k - 1].end;
        if (strcmp(n->ranges[k].start, want) != 0 || (k + 1 == n->nranges && *n->ranges[k].end)) {
            free_ranges(n);
            return mr_errf(err, MR_ECORRUPT, "the data groups' ranges do not tile the key space");
        }
    }
    return MR_OK;
}

/* ND_MSG_RANGES: the range map with leader hints (known for groups hosted here). */
static void on_ranges(nd_node *n, const net_message *m)
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

/* Applies a cluster description: nodes and groups. */
static int load_cluster(nd_node *n, json_t *desc, mr_err *err)
{
    const char *cid = json_string_value(json_object_get(desc, "cluster"));
    json_t *self = json_object_get(desc, "self");
    json_t *nodes = json_object_get(desc, "nodes");
    json_t *groups = json_object_get(desc, "groups");
    if (!cid || !json_is_integer(self) || !json_is_array(nodes) || !json_is_array(groups))
        return mr_errf(err, MR_ECORRUPT, "cluster description lacks cluster/self/nodes/groups");
    snprintf(n->cluster_id, sizeof n->cluster_id, "%s", cid);
    n->self = (px_node_id)json_integer_value(self);
    if (n->self < 1 || n->self > PX_MAX_NODE_ID)
        return mr_errf(err, MR_ECORRUPT, "node id %u out of range", n->self);
    size_t i;
    json_t *v;
    json_array_foreach(nodes, i, v)
    {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        const char *addr = json_string_value(json_object_get(v, "addr"));
        if (id < 1 || id > PX_MAX_NODE_ID || !addr)
            return mr_errf(err, MR_ECORRUPT, "node entry %zu malformed", i);
        nd_peer *p = &n->peers[id];
        p->id = (px_node_id)id;
        snprintf(p->addr, sizeof p->addr, "%s", addr);
        snprintf(p->zone, sizeof p->zone, "%s",
                 json_string_value(json_object_get(v, "zone")) ?: "");
        snprintf(p->region, sizeof p->region, "%s",
                 json_string_value(json_object_get(v, "region")) ?: "");
    }
    if (load_ranges(n, groups, err) != MR_OK)
        return MR_ECORRUPT;
    json_array_foreach(groups, i, v)
    {
        json_int_t gid = json_integer_value(json_object_get(v, "id"));
        px_config c;
        if (gid < 1 || group_config_from_json(json_object_get(v, "replicas"), &c, err) != MR_OK)
            return mr_err_wrap(err, "group entry %zu", i);
        const char *kind = json_string_value(json_object_get(v, "kind"));
        if (kind && strcmp(kind, "meta") == 0)
            n->meta_replicas = c;
        if (!px_config_has(&c, n->self) || nd_find_group(n, (uint64_t)gid) ||
            json_is_true(json_object_get(v, "absent_here")))
            continue; /* (a split replayed while starting its parent may have started it) */
        int64_t floor = (int64_t)json_integer_value(json_object_get(v, "floor_ts"));
        if (start_group(n, (uint64_t)gid, &c, floor, err) != MR_OK)
            return mr_err_wrap(err, "group %lld", (long long)gid);
    }
    n->initialized = true;
    return MR_OK;
}

/* ---- splits in the cluster description ---- */

/* Records a split of `parent` at `key` into DATA/cluster.json (the parent's
 * entry ends at key; a new entry for `child` holds [key, the parent's old end)
 * on the parent's replicas, above `floor`), then reloads the range map. Done
 * by every replica of the parent when it applies the split, and by the other
 * nodes when told. Idempotent: a description that already has the child is
 * left alone. absent: this node is one of the child's replicas but has no copy
 * of its data (it missed the split): it does not start it. */
int nd_cluster_record_split(nd_node *n, uint64_t parent, const char *key, uint64_t child,
                            int64_t floor, bool absent, mr_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/cluster.json", n->data_dir);
    json_error_t je;
    json_t *desc = json_load_file(path, 0, &je);
    json_t *groups = json_object_get(desc, "groups");
    if (!json_is_array(groups)) {
        json_decref(desc);
        return mr_errf(err, MR_ECORRUPT, "%s: %s", path, desc ? "no groups" : je.text);
    }
    size_t i;
    json_t *v, *pe = NULL;
    json_array_foreach(groups, i, v)
    {
        uint64_t id = (uint64_t)json_integer_value(json_object_get(v, "id"));
        if (id == child) {
            json_decref(desc);
            return MR_OK; /* recorded already */
        }
        if (id == parent)
            pe = v;
    }
    const char *end = json_string_value(json_object_get(pe, "end"));
    const char *start = json_string_value(json_object_get(pe, "start"));
    if (!pe || !end || !start || !nd_key_splits(start, end, key)) {
        json_decref(desc);
        return mr_errf(err, MR_EINVAL, "split of group %llu at '%s' does not fit its range",
                       (unsigned long long)parent, key);
    }
    json_t *ce = json_pack("{s:I, s:s, s:O, s:s, s:s, s:I, s:I}", "id", (json_int_t)child, "kind",
                           "data", "replicas", json_object_get(pe, "replicas"), "start", key, "end",
                           end, "parent", (json_int_t)parent, "floor_ts", (json_int_t)floor);
    if (absent)
        json_object_set_new(ce, "absent_here", json_true());
    json_object_set_new(pe, "end", json_string(key));
    json_array_append_new(groups, ce);
    char *text = json_dumps(desc, JSON_INDENT(2));
    int rc = text ? write_file_atomic(path, text, err) : mr_errf(err, MR_ENOMEM, "out of memory");
    free(text);
    if (rc == MR_OK)
        rc = load_ranges(n, groups, err);
    json_decref(desc);
    if (rc != MR_OK)
        return rc;
    nd_group *g = nd_find_group(n, parent);
    char *ne = strdup(key);
    if (g && ne) {
        free(g->range_end);
        g->range_end = ne;
    } else {
        free(ne);
    }
    MR_INFO("node", "group=%llu split at '%s': group %llu holds the keys from there",
            (unsigned long long)parent, key, (unsigned long long)child);
    return MR_OK;
}

/* Starts the replicas the range map gives this node but it does not run yet
 * (groups split off a parent here): from the loop, never inside an apply. */
static void start_new_groups(nd_node *n)
{
    for (size_t i = 0; i < n->nranges; i++) {
        const nd_range *r = &n->ranges[i];
        if (!px_config_has(&r->replicas, n->self) || r->absent || nd_find_group(n, r->group))
            continue;
        /* Starting replays the group's log, which may split it and reload the
         * map under us: copy what is needed, then look from the top again. */
        px_config replicas = r->replicas;
        uint64_t gid = r->group;
        int64_t floor = r->floor_ts;
        mr_err err;
        if (start_group(n, gid, &replicas, floor, &err) != MR_OK) {
            nd_fatal(n, "starting a split-off group", &err);
            return;
        }
        i = (size_t)-1;
    }
}

/* ---- the state machine ---- */

static void reg_set(nd_chain *sm, const uint8_t *v, uint32_t len)
{
    uint8_t *c = malloc(len ? len : 1);
    if (!c)
        return; /* the replica would diverge: refuse loudly rather than silently */
    memcpy(c, v, len);
    free(sm->reg);
    sm->reg = c;
    sm->reg_len = len;
    sm->reg_set = true;
}

static json_t *reg_json(const nd_chain *sm)
{
    return sm->reg_set ? json_stringn((const char *)sm->reg, sm->reg_len) : json_null();
}

/* Applies one proposal's register operation; returns the fields for the
 * proposer's reply (value read, cas outcome), or NULL for none. */
static json_t *reg_apply(nd_chain *sm, const uint8_t *p, uint32_t plen)
{
    if (plen < ND_PROP_HDR)
        return NULL;
    uint8_t op = p[12];
    const uint8_t *b = p + ND_PROP_HDR;
    uint32_t blen = plen - ND_PROP_HDR;
    switch (op) {
    case ND_OP_WRITE:
        reg_set(sm, b, blen);
        return json_object();
    case ND_OP_READ:
        return json_pack("{s:o}", "value", reg_json(sm));
    case ND_OP_CAS: {
        if (blen < 4 || get32(b) > blen - 4)
            return json_pack("{s:b}", "cas", 0);
        uint32_t elen = get32(b);
        bool match = sm->reg_set && sm->reg_len == elen && memcmp(sm->reg, b + 4, elen) == 0;
        if (match)
            reg_set(sm, b + 4 + elen, blen - 4 - elen);
        return json_pack("{s:b}", "cas", match);
    }
    default:
        return NULL;
    }
}

static void sm_apply(nd_node *n, nd_group *g, const px_entry *e)
{
    if (n->fatal)
        return; /* stopping (an apply failed): apply and acknowledge nothing more */
    g->sm.slot = e->slot;
    if (e->kind != PX_ENTRY_DATA)
        return;
    uint32_t off = 0, plen;
    const uint8_t *p;
    int r;
    /* Commit records of the slot are applied together (the MVCC store records
     * one applied slot per transaction of SQLite). */
    enum { MAX_RECS = 256 };
    const uint8_t *recs[MAX_RECS];
    uint32_t lens[MAX_RECS];
    size_t nrec = 0;
    const uint8_t *split = NULL; /* a SPLIT record: takes effect at the end of the slot */
    uint32_t split_len = 0;
    while ((r = px_batch_next(e->data, e->len, &off, &p, &plen)) == 1) {
        if (plen >= ND_PROP_HDR && p[12] == ND_OP_SPLIT) {
            if (!split) {
                split = p;
                split_len = plen;
            }
            continue;
        }
        if (plen >= ND_PROP_HDR && p[12] == ND_OP_SAFE) {
            if (get32(p) == n->self && g->lead_seq && get64(p + 4) == g->lead_seq)
                g->lead_ready = true; /* this term's own record: predecessors are settled */
            continue;                 /* otherwise only moves safe time */
        }
        if (plen >= ND_PROP_HDR + 8 && nd_op_is_txn(p[12])) {
            g->last_data_slot = e->slot;
            if (get32(p) == n->self && g->data_inflight)
                g->data_inflight--;
            if (nrec < MAX_RECS) {
                recs[nrec] = p + 12;
                lens[nrec++] = plen - 12;
            } else {
                MR_ERROR("node", "group=%llu slot=%llu: more than %d commit records in a slot",
                         (unsigned long long)g->id, (unsigned long long)e->slot, MAX_RECS);
            }
            continue;
        }
        g->sm.count++;
        g->sm.last_ts = e->ts;
        g->sm.hash = fnv1a(g->sm.hash ^ (uint64_t)e->ts, p, plen);
        json_t *result = reg_apply(&g->sm, p, plen);
        /* Answer the client whose proposal this is, if it waits here. */
        if (plen < 12 || get32(p) != n->self) {
            json_decref(result);
            continue;
        }
        uint64_t seq = get64(p + 4);
        for (size_t i = 0; i < n->npending; i++) {
            if (n->pending[i].group == g->id && n->pending[i].seq == seq) {
                nd_hist_observe(&n->stats.proposal_latency,
                                mr_monotonic_ns() - n->pending[i].start);
                n->stats.proposals++;
                json_t *rep = json_pack("{s:b, s:I, s:I, s:I}", "ok", 1, "group", (json_int_t)g->id,
                                        "slot", (json_int_t)e->slot, "ts", (json_int_t)e->ts);
                if (result)
                    json_object_update(rep, result);
                nd_reply_json(n, n->pending[i].reply_to, rep);
                n->pending[i] = n->pending[--n->npending];
                break;
            }
        }
        json_decref(result);
    }
    if (r < 0)
        MR_ERROR("node", "group=%llu slot=%llu holds a malformed batch", (unsigned long long)g->id,
                 (unsigned long long)e->slot);
    nd_txn_apply_slot(n, g, e->slot, e->ts, recs, lens, nrec);
    if (n->fatal)
        return; /* the slot did not apply: serve no read that would depend on it */
    if (split)
        nd_split_apply(n, g, e->slot, e->ts, split, split_len);
    nd_txn_applied(n, g);
}

/* A chosen entry applied as a no-op everywhere (a resurrected value whose
 * timestamp would go backwards, see px.h): its proposals did not happen, so
 * their clients here hear so and may retry. */
static void sm_void(nd_node *n, nd_group *g, const px_entry *e)
{
    g->sm.slot = e->slot;
    if (e->kind != PX_ENTRY_DATA)
        return;
    uint32_t off = 0, plen;
    const uint8_t *p;
    while (px_batch_next(e->data, e->len, &off, &p, &plen) == 1) {
        if (plen < ND_PROP_HDR || get32(p) != n->self)
            continue;
        if (p[12] == ND_OP_SPLIT) {
            nd_split_voided(n, g);
            continue;
        }
        if (nd_op_is_txn(p[12]) && plen >= ND_PROP_HDR + 8) {
            if (g->data_inflight)
                g->data_inflight--;
            nd_txn_voided(n, g, p[12], get64(p + ND_PROP_HDR));
            continue;
        }
        uint64_t seq = get64(p + 4);
        for (size_t i = 0; i < n->npending; i++)
            if (n->pending[i].group == g->id && n->pending[i].seq == seq) {
                nd_reply_json(n, n->pending[i].reply_to,
                              json_pack("{s:b, s:s, s:s, s:b}", "ok", 0, "error", "voided",
                                        "message", "the proposal was voided; retry", "retryable",
                                        1));
                n->pending[i] = n->pending[--n->npending];
                break;
            }
    }
    nd_txn_applied(n, g);
}

typedef struct snap_buf {
    uint8_t *p;
    size_t len, cap;
} snap_buf;

static int snap_sink(void *arg, const void *buf, size_t len)
{
    snap_buf *b = arg;
    if (b->len + len > b->cap) {
        size_t cap = b->cap * 2 > b->len + len ? b->cap * 2 : b->len + len;
        if (cap > UINT32_MAX)
            return -1; /* px snapshots are one buffer of at most 4 GiB */
        uint8_t *np = realloc(b->p, cap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, buf, len);
    b->len += len;
    return 0;
}

/* The groups split off g, in the order of their splits (their ids grow), for
 * its snapshots: u32 count, then per child u64 id, i64 floor, u32 key length,
 * the key where it starts. */
static int children_sink(nd_node *n, const nd_group *g, snap_buf *b)
{
    uint32_t count = 0;
    for (size_t i = 0; i < n->nranges; i++)
        count += n->ranges[i].parent == g->id;
    uint8_t hdr[20];
    put32(hdr, count);
    if (snap_sink(b, hdr, 4) != 0)
        return -1;
    uint64_t last = 0;
    for (uint32_t k = 0; k < count; k++) {
        const nd_range *next = NULL;
        for (size_t i = 0; i < n->nranges; i++) {
            const nd_range *r = &n->ranges[i];
            if (r->parent == g->id && r->group > last && (!next || r->group < next->group))
                next = r;
        }
        if (!next)
            return -1;
        last = next->group;
        put64(hdr, next->group);
        put64(hdr + 8, (uint64_t)next->floor_ts);
        put32(hdr + 16, (uint32_t)strlen(next->start));
        if (snap_sink(b, hdr, 20) != 0 || snap_sink(b, next->start, strlen(next->start)) != 0)
            return -1;
    }
    return 0;
}

/* A replica that caught up on g by snapshot past splits it never applied
 * learns of them here: the map (so that its range checks and answers are
 * right) records the children, absent here (it has no copy of their data;
 * the other replicas serve them). */
static int learn_children(nd_node *n, nd_group *g, const uint8_t *p, size_t len)
{
    if (len < 4)
        return -1;
    uint32_t count = get32(p);
    size_t off = 4;
    for (uint32_t k = 0; k < count; k++) {
        if (len - off < 20 || get32(p + off + 16) > len - off - 20)
            return -1;
        uint64_t child = get64(p + off);
        int64_t floor = (int64_t)get64(p + off + 8);
        uint32_t klen = get32(p + off + 16);
        char *key = strndup((const char *)p + off + 20, klen);
        off += 20 + klen;
        if (!key)
            return -1;
        bool known = false;
        for (size_t i = 0; i < n->nranges; i++)
            known |= n->ranges[i].group == child;
        mr_err err;
        if (!known) {
            MR_WARN("node",
                    "group=%llu: caught up past its split at '%s' (group %llu): this node "
                    "has no copy of the new group's data and does not serve it",
                    (unsigned long long)g->id, key, (unsigned long long)child);
            if (nd_cluster_record_split(n, g->id, key, child, floor, true, &err) != MR_OK) {
                MR_ERROR("node", "group=%llu: %s", (unsigned long long)g->id, mr_err_msg(&err));
                free(key);
                return -1;
            }
        }
        free(key);
    }
    return off == len ? 0 : -1;
}

/* Snapshot: count, last_ts, hash, slot (u64 each), then u8 set, u32 len, the
 * register's bytes; then the tablet: i64 safe time, u64 length, the MVCC
 * store's snapshot (tablet/mvcc/mv_snap.c); then the groups split off it
 * (children_sink). Returns a malloc'd buffer (caller frees) and its length. */
static uint8_t *sm_snapshot(nd_node *n, const nd_group *g, uint32_t *len)
{
    size_t chain = 32 + 5 + g->sm.reg_len;
    snap_buf b = {malloc(chain + 16 + 4096), chain + 16, chain + 16 + 4096};
    mr_err err;
    if (!b.p || mv_snapshot_write(g->mv, MV_SNAP_ALL, snap_sink, &b, &err) != MR_OK) {
        MR_ERROR("node", "group=%llu: cannot snapshot the tablet: %s", (unsigned long long)g->id,
                 b.p ? mr_err_msg(&err) : "out of memory");
        free(b.p);
        return NULL;
    }
    size_t tablet_end = b.len;
    if (children_sink(n, g, &b) != 0) {
        MR_ERROR("node", "group=%llu: cannot snapshot the tablet: out of memory",
                 (unsigned long long)g->id);
        free(b.p);
        return NULL;
    }
    uint8_t *out = b.p;
    *len = (uint32_t)b.len;
    put64(out + chain, (uint64_t)g->safe_ts);
    put64(out + chain + 8, tablet_end - chain - 16);
    put64(out, g->sm.count);
    put64(out + 8, (uint64_t)g->sm.last_ts);
    put64(out + 16, g->sm.hash);
    put64(out + 24, g->sm.slot);
    out[32] = g->sm.reg_set;
    put32(out + 33, g->sm.reg_len);
    if (g->sm.reg_len)
        memcpy(out + 37, g->sm.reg, g->sm.reg_len);
    return out;
}

static int sm_install(nd_node *n, nd_group *g, const uint8_t *snap, uint32_t len)
{
    if (len < 37 || get32(snap + 33) > len - 37)
        return -1;
    size_t chain = 37 + get32(snap + 33);
    if (len != chain) {
        if (len - chain < 16 || get64(snap + chain + 8) > len - chain - 16)
            return -1;
        size_t tlen = get64(snap + chain + 8), rest = len - chain - 16 - tlen;
        mr_err err;
        if (mv_snapshot_load(g->mv, snap + chain + 16, tlen, &err) != MR_OK) {
            MR_ERROR("node", "group=%llu: tablet snapshot refused: %s", (unsigned long long)g->id,
                     mr_err_msg(&err));
            return -1;
        }
        int64_t safe = (int64_t)get64(snap + chain);
        if (safe > g->safe_ts)
            g->safe_ts = safe;
        nd_txn_reloaded(n, g);
        if (rest && learn_children(n, g, snap + chain + 16 + tlen, rest) != 0)
            return -1;
    }
    g->sm.count = get64(snap);
    g->sm.last_ts = (int64_t)get64(snap + 8);
    g->sm.hash = get64(snap + 16);
    g->sm.slot = get64(snap + 24);
    free(g->sm.reg);
    g->sm.reg = NULL;
    g->sm.reg_len = 0;
    g->sm.reg_set = false;
    if (snap[32])
        reg_set(&g->sm, snap + 37, (uint32_t)chain - 37);
    return 0;
}

/* ---- driving the core ---- */

void nd_fatal(nd_node *n, const char *what, const mr_err *err)
{
    /* A persist that cannot be stored breaks the order the core relies on: the
     * safe reaction is to stop this process, losing only what was not durable. */
    MR_ERROR("node", "fatal: %s: %s; stopping", what, mr_err_msg(err));
    n->fatal = true;
    uv_stop(n->loop);
}

size_t nd_bundle_cut(const uint8_t *buf, size_t len, size_t off, size_t max_payload,
                     uint32_t *count)
{
    size_t end = off;
    *count = 0;
    while (len - end >= 4) {
        size_t z = 4 + (size_t)get32(buf + end);
        if (z > len - end || (*count && ND_PX_HDR + (end - off) + z > max_payload))
            break;
        end += z;
        (*count)++;
    }
    return end;
}

static void queue_send(nd_node *n, px_node_id to, const px_msg *m)
{
    if (to < 1 || to > PX_MAX_NODE_ID || !n->peers[to].addr[0])
        return;
    uint8_t *buf;
    size_t len;
    mr_err err;
    if (px_msg_encode(m, &buf, &len, &err) != MR_OK) {
        MR_ERROR("node", "cannot encode %s: %s", px_msg_type_name(m->type), mr_err_msg(&err));
        return;
    }
    if (ND_PX_HDR + 4 + len > ND_PX_FRAME_MAX) {
        /* The core caps its messages well below this (px_options.max_msg_bytes). */
        MR_ERROR("node", "%s of %zu bytes to node %u does not fit a frame: dropped",
                 px_msg_type_name(m->type), len, to);
        free(buf);
        return;
    }
    nd_outq *q = &n->out[to];
    if (q->len + len + 4 > q->cap) {
        size_t cap = (q->len + len + 4) * 2;
        uint8_t *nb = realloc(q->buf, cap);
        if (!nb) {
            free(buf);
            return; /* dropped: Paxos tolerates message loss */
        }
        q->buf = nb;
        q->cap = cap;
    }
    put32(q->buf + q->len, (uint32_t)len);
    memcpy(q->buf + q->len + 4, buf, len);
    q->len += len + 4;
    q->count++;
    free(buf);
}

/* Handles one batch of actions from group g's core. */
static void handle_batch(nd_node *n, nd_group *g, const px_batch *b)
{
    if (b->n == 0)
        return;
    mr_err err;
    if (b->persist_seq) {
        if (ls_px_stage(n->store, g->id, b->actions, b->n, &err) != MR_OK) {
            nd_fatal(n, "staging Paxos state", &err);
            return;
        }
        n->dirty = true;
        g->persist_seq = b->persist_seq;
    }
    for (size_t i = 0; i < b->n; i++) {
        const px_action *a = &b->actions[i];
        switch (a->kind) {
        case PX_ACT_SEND:
            queue_send(n, a->to, &a->msg);
            break;
        case PX_ACT_APPLY:
            if (a->voided)
                sm_void(n, g, &a->entry);
            else
                sm_apply(n, g, &a->entry);
            break;
        case PX_ACT_TAKE_SNAPSHOT:
            g->want_snapshot = true;
            g->snapshot_slot = a->slot;
            break;
        case PX_ACT_INSTALL_SNAPSHOT:
            MR_INFO("node", "group=%llu installing a snapshot of %u bytes",
                    (unsigned long long)g->id, a->snap_len);
            if (sm_install(n, g, a->snap, a->snap_len) != 0) {
                /* Going on would leave this replica's tablet behind its log:
                 * stop; a restart asks for the snapshot again. */
                mr_err e;
                mr_errf(&e, MR_ECORRUPT,
                        "group %llu: a snapshot of %u bytes could not be installed",
                        (unsigned long long)g->id, a->snap_len);
                nd_fatal(n, "installing a snapshot", &e);
            }
            break;
        case PX_ACT_PERSIST:
            break;
        }
    }
}

struct nd_deferred {
    uint8_t *prop;
    uint32_t len;
    nd_deferred *next;
};

/* Proposals made while the group's action batch is being handled (an apply
 * that releases locks lets the next transaction propose): the batch lives in
 * the core until the next call into it, so they wait until it is done. */
static void run_deferred(nd_node *n, nd_group *g)
{
    while (g->deferred && !n->fatal && !g->in_batch) {
        nd_deferred *d = g->deferred;
        g->deferred = d->next;
        if (!g->deferred)
            g->deferred_tail = NULL;
        px_event ev = {.kind = PX_EV_PROPOSE, .data = d->prop, .len = d->len};
        mr_err err;
        if (nd_step(n, g, &ev, &err) != MR_OK && d->len >= ND_PROP_HDR + 8 &&
            nd_op_is_txn(d->prop[12])) {
            if (g->data_inflight)
                g->data_inflight--;
            nd_txn_voided(n, g, d->prop[12], get64(d->prop + ND_PROP_HDR));
        }
        free(d->prop);
        free(d);
    }
}

static void free_deferred(nd_group *g)
{
    while (g->deferred) {
        nd_deferred *d = g->deferred;
        g->deferred = d->next;
        free(d->prop);
        free(d);
    }
    g->deferred_tail = NULL;
}

int nd_step(nd_node *n, nd_group *g, const px_event *ev, mr_err *err)
{
    px_batch b;
    int rc = px_step(g->px, tt_now(n->clock), ev, &b, err);
    g->in_batch++;
    handle_batch(n, g, &b);
    g->in_batch--;
    /* The batch is only valid until the next call into this core. */
    while (g->want_snapshot && !n->fatal) {
        g->want_snapshot = false;
        uint32_t slen;
        uint8_t *snap = sm_snapshot(n, g, &slen);
        if (!snap)
            break;
        px_event sev = {.kind = PX_EV_SNAPSHOT, .data = snap, .len = slen, .slot = g->sm.slot};
        MR_DEBUG("node", "group=%llu snapshot at slot %llu: %u bytes", (unsigned long long)g->id,
                 (unsigned long long)g->sm.slot, slen);
        mr_err e2;
        px_batch b2;
        if (px_step(g->px, tt_now(n->clock), &sev, &b2, &e2) != MR_OK)
            MR_WARN("node", "group=%llu snapshot refused: %s", (unsigned long long)g->id,
                    mr_err_msg(&e2));
        free(snap); /* the core copied it */
        g->in_batch++;
        handle_batch(n, g, &b2);
        g->in_batch--;
    }
    run_deferred(n, g);
    return rc;
}

/* Starts this node's replica of group gid. floor: the group was split off
 * another at that timestamp, and every timestamp it assigns exceeds it. */
static int start_group(nd_node *n, uint64_t gid, const px_config *config, int64_t floor,
                       mr_err *err)
{
    if (nd_find_group(n, gid))
        return mr_errf(err, MR_ECORRUPT, "group %llu is listed twice", (unsigned long long)gid);
    /* Groups are reached by pointer from transactions and timers: each lives
     * at a fixed address; the array of pointers may move. */
    nd_group **ng = realloc(n->groups, (n->ngroups + 1) * sizeof *ng);
    if (!ng)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    n->groups = ng;
    nd_group *g = calloc(1, sizeof *g);
    if (!g)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    g->id = gid;
    g->config = *config;
    for (size_t i = 0; i < n->nranges; i++)
        if (n->ranges[i].group == gid) {
            g->range_start = strdup(n->ranges[i].start);
            g->range_end = strdup(n->ranges[i].end);
            if (!g->range_start || !g->range_end) {
                free(g->range_start);
                free(g->range_end);
                free(g);
                return mr_errf(err, MR_ENOMEM, "out of memory");
            }
        }
    g->sm.hash = 1469598103934665603ull;
    /* A split-off group's store is complete through its floor, and every
     * write it will take is stamped above: reads at or below are safe. */
    g->safe_ts = floor;
    px_options o;
    px_options_default(&o);
    o.group = gid;
    o.self = n->self;
    o.config = *config;
    if (n->lease_ns)
        o.lease_ns = n->lease_ns;
    o.snapshot_every = 1000;
    /* Test-only: compact the log sooner, so catch-up by snapshot is exercised. */
    if (n->test.snapshot_every) {
        o.snapshot_every = n->test.snapshot_every;
        o.log_keep = o.alpha; /* the least the core accepts */
    }
    /* Test-only: small Paxos messages, so snapshots travel in many chunks and
     * catch-up in many LEARNs without megabytes of data. */
    if (n->test.px_msg_max)
        o.max_msg_bytes = n->test.px_msg_max;
    o.seed = (uint64_t)mr_monotonic_ns() ^ (gid << 32) ^ n->self;
    o.ts_floor = floor;
    int rc = px_node_create(&o, &g->px, err);
    if (rc == MR_OK) {
        rc = nd_txn_group_open(n, g, err);
        if (rc == MR_OK) {
            ls_px_state st;
            rc = ls_px_load(n->store, gid, &st, err);
            if (rc == MR_OK) {
                rc = px_node_restore(g->px, &st.d, err);
                ls_px_state_free(&st);
            }
        }
        if (rc) {
            px_node_destroy(g->px);
            nd_txn_group_close(n, g);
        }
    }
    if (rc) {
        free(g->range_start);
        free(g->range_end);
        free(g);
        return rc;
    }
    /* Kept sorted by id (nd_find_group): split-off groups may start out of order. */
    size_t at = n->ngroups;
    while (at > 0 && n->groups[at - 1]->id > gid)
        at--;
    memmove(n->groups + at + 1, n->groups + at, (n->ngroups - at) * sizeof *n->groups);
    n->groups[at] = g;
    n->ngroups++;
    px_batch b;
    rc = px_node_start(g->px, tt_now(n->clock), &b, err);
    if (rc)
        return rc;
    handle_batch(n, g, &b);
    MR_INFO("node", "replica started group=%llu self=%u replicas=%u applied=%llu",
            (unsigned long long)gid, n->self, config->n, (unsigned long long)g->sm.slot);
    return MR_OK;
}

/* Makes staged persists durable (one fsync for every group), tells each core,
 * then sends the queued messages: one frame per peer. */
static void flush(nd_node *n)
{
    for (int round = 0; round < 8 && nd_txn_run_local(n); round++)
        ;
    for (int round = 0; n->dirty && round < 8 && !n->fatal; round++) {
        mr_err err;
        int64_t t0 = mr_monotonic_ns();
        if (ls_sync(n->store, &err) != MR_OK) {
            nd_fatal(n, "syncing the Paxos log", &err);
            return;
        }
        nd_hist_observe(&n->stats.fsync_latency, mr_monotonic_ns() - t0);
        n->stats.fsyncs++;
        n->dirty = false;
        for (size_t i = 0; i < n->ngroups; i++) {
            nd_group *g = n->groups[i];
            if (!g->persist_seq)
                continue;
            px_event ev = {.kind = PX_EV_PERSISTED, .seq = g->persist_seq};
            g->persist_seq = 0;
            nd_step(n, g, &ev, &err);
        }
    }
    if (n->dirty || n->fatal)
        return; /* never send ahead of what is durable */
    /* Once a second every peer gets a frame even when no group has anything to
     * say to it: that is the node-pair heartbeat behind `status` up/down. */
    int64_t now = mr_monotonic_ns();
    bool ping = n->initialized && now - n->last_ping > MR_NS_PER_S;
    tt_status clock_status = tt_status_now(n->clock);
    int64_t clock_eps = tt_interval_epsilon(tt_now(n->clock));
    if (ping)
        n->last_ping = now;
    for (px_node_id to = 1; to <= PX_MAX_NODE_ID; to++) {
        nd_outq *q = &n->out[to];
        if (!q->count && !(ping && n->peers[to].id && to != n->self))
            continue;
        if (to == n->self || (n->partitioned & (1ull << to))) {
            q->len = q->count = 0;
            continue;
        }
        /* Every group's messages to this peer, in as few frames as fit the limit. */
        size_t off = 0;
        do {
            uint32_t count;
            size_t end = nd_bundle_cut(q->buf, q->len, off, ND_PX_FRAME_MAX, &count);
            if (end == off && q->len)
                break; /* cannot happen: queue_send frames every item */
            size_t total = ND_PX_HDR + (end - off);
            uint8_t *frame = malloc(total);
            if (frame) {
                put32(frame, n->self);
                put32(frame + 4, count);
                frame[8] = (uint8_t)clock_status;
                put64(frame + 9, (uint64_t)clock_eps);
                n->stats.px_out += count;
                if (end > off)
                    memcpy(frame + ND_PX_HDR, q->buf + off, end - off);
                mr_err err;
                if (net_transport_send(n->tr, n->peers[to].addr, ND_MSG_PX, frame, (uint32_t)total,
                                       &err) != MR_OK)
                    MR_DEBUG("node", "to node %u: %s", to, mr_err_msg(&err));
                free(frame);
            }
            off = end;
        } while (off < q->len);
        q->len = q->count = 0;
    }
}

static void on_prepare(uv_prepare_t *h)
{
    flush(h->data);
}

static void on_check(uv_check_t *h)
{
    flush(h->data);
}

static void on_tick(uv_timer_t *h)
{
    nd_node *n = h->data;
    bool healthy = tt_healthy(n->clock);
    int64_t now = mr_monotonic_ns();
    if (n->initialized)
        start_new_groups(n);
    for (size_t i = 0; i < n->ngroups; i++) {
        nd_group *g = n->groups[i];
        mr_err err;
        px_status st;
        px_node_status(g->px, &st);
        px_node_set_eligible(g->px, healthy);
        if (!healthy && st.state == PX_LEADER) {
            /* An unhealthy clock cannot vouch for timestamps: give the lease up. */
            MR_WARN("node", "group=%llu clock unhealthy: abdicating", (unsigned long long)g->id);
            px_event ab = {.kind = PX_EV_ABDICATE};
            nd_step(n, g, &ab, &err);
        }
        px_event ev = {.kind = PX_EV_TICK};
        nd_step(n, g, &ev, &err);
        px_node_status(g->px, &st);
        if (st.state == PX_LEADER && g->last_state != PX_LEADER) {
            n->stats.lease_acquired++;
            g->data_inflight = 0;
            g->lead_ready = false;
            g->lead_asked = 0; /* nd_txn_tick proposes the term's first SAFE record */
            MR_INFO("node", "group=%llu leadership acquired ballot=%llu.%u",
                    (unsigned long long)g->id, (unsigned long long)st.ballot.round, st.ballot.node);
        } else if (st.state != PX_LEADER && g->last_state == PX_LEADER) {
            n->stats.lease_lost++;
            g->data_inflight = 0;
            MR_INFO("node", "group=%llu leadership lost state=%s", (unsigned long long)g->id,
                    px_state_name(st.state));
            nd_txn_leadership_lost(n, g);
            nd_split_reset(g);
        }
        g->last_state = st.state;
        nd_txn_tick(n, g);
        nd_split_tick(n, g);
    }
    /* Proposals whose leadership went away never apply here: fail them. */
    for (size_t i = 0; i < n->npending;) {
        if (n->pending[i].deadline < now) {
            n->stats.proposals_failed++;
            nd_reply_error(n, n->pending[i].reply_to, "timeout", "proposal not applied in time");
            n->pending[i] = n->pending[--n->npending];
        } else {
            i++;
        }
    }
}

/* ---- messages ---- */

static void on_px(nd_node *n, const net_message *m)
{
    if (m->len < ND_PX_HDR)
        return;
    px_node_id from = get32(m->payload);
    uint32_t count = get32(m->payload + 4);
    if (from < 1 || from > PX_MAX_NODE_ID)
        return;
    if (n->partitioned & (1ull << from))
        return;
    n->peers[from].last_seen = mr_monotonic_ns();
    n->peers[from].clock_status = m->payload[8];
    n->peers[from].clock_eps = (int64_t)get64(m->payload + 9);
    n->stats.px_in += count;
    size_t off = ND_PX_HDR;
    for (uint32_t i = 0; i < count; i++) {
        if (off + 4 > m->len)
            break;
        uint32_t len = get32(m->payload + off);
        off += 4;
        if (len > m->len - off)
            break;
        px_msg msg;
        mr_err err;
        if (px_msg_decode(m->payload + off, len, &msg, &err) == MR_OK) {
            nd_group *g = nd_find_group(n, msg.group);
            if (g) {
                px_event ev = {.kind = PX_EV_RECEIVE, .msg = &msg};
                if (nd_step(n, g, &ev, &err) != MR_OK)
                    MR_DEBUG("node", "group=%llu rejected %s from %u: %s",
                             (unsigned long long)msg.group, px_msg_type_name(msg.type), from,
                             mr_err_msg(&err));
            }
            px_msg_free(&msg);
        } else {
            n->stats.malformed++;
            MR_WARN("node", "malformed Paxos message from node %u: %s", from, mr_err_msg(&err));
        }
        off += len;
    }
}

int nd_propose_raw(nd_node *n, nd_group *g, uint64_t seq, uint8_t kind, const uint8_t *body,
                   size_t blen, mr_err *err)
{
    uint8_t *prop = malloc(ND_PROP_HDR + blen);
    if (!prop)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    put32(prop, n->self);
    put64(prop + 4, seq);
    prop[12] = kind;
    if (blen)
        memcpy(prop + ND_PROP_HDR, body, blen);
    if (nd_op_is_txn(kind))
        g->data_inflight++;
    if (g->in_batch) { /* see run_deferred */
        nd_deferred *d = malloc(sizeof *d);
        if (!d) {
            free(prop);
            if (nd_op_is_txn(kind))
                g->data_inflight--;
            return mr_errf(err, MR_ENOMEM, "out of memory");
        }
        *d = (nd_deferred){prop, (uint32_t)(ND_PROP_HDR + blen), NULL};
        if (g->deferred_tail)
            g->deferred_tail->next = d;
        else
            g->deferred = d;
        g->deferred_tail = d;
        g->last_propose = mr_monotonic_ns();
        return MR_OK;
    }
    px_event ev = {.kind = PX_EV_PROPOSE, .data = prop, .len = (uint32_t)(ND_PROP_HDR + blen)};
    int rc = nd_step(n, g, &ev, err);
    free(prop);
    if (rc == MR_OK)
        g->last_propose = mr_monotonic_ns();
    else if (nd_op_is_txn(kind) && g->data_inflight)
        g->data_inflight--;
    return rc;
}

/* Proposes [node][seq][kind][body] to group gid; the client is answered when
 * the proposal is applied here (sm_apply), or now with the reason it cannot be. */
void nd_propose_op(nd_node *n, const net_message *m, uint64_t gid, uint8_t kind,
                   const uint8_t *body, size_t blen)
{
    nd_group *g = nd_find_group(n, gid);
    if (!g)
        return nd_reply_error(n, m->reply_to, "no_group",
                              "this node holds no replica of the group");
    uint64_t seq = ++n->next_seq;
    mr_err err;
    int rc = nd_propose_raw(n, g, seq, kind, body, blen, &err);
    if (rc != MR_OK) {
        px_status st;
        px_node_status(g->px, &st);
        const char *leader =
            st.leader && st.leader <= PX_MAX_NODE_ID ? n->peers[st.leader].addr : "";
        nd_reply_json(n, m->reply_to,
                      json_pack("{s:b, s:s, s:s, s:s}", "ok", 0, "error",
                                rc == MR_ENOTLEADER ? "not_leader" : mr_strerror(rc), "message",
                                mr_err_msg(&err), "leader", leader));
        return;
    }
    if (n->npending == n->cap_pending) {
        size_t cap = n->cap_pending ? 2 * n->cap_pending : 64;
        nd_pending *p = realloc(n->pending, cap * sizeof *p);
        if (!p)
            return nd_reply_error(n, m->reply_to, "nomem", "out of memory");
        n->pending = p;
        n->cap_pending = cap;
    }
    int64_t now = mr_monotonic_ns();
    n->pending[n->npending++] = (nd_pending){gid, seq, m->reply_to, now, now + ND_PROPOSE_TIMEOUT};
}

static void on_propose(nd_node *n, const net_message *m)
{
    uint64_t gid;
    mr_err err;
    if (nd_valid_propose(m->payload, m->len, &gid, &err) != MR_OK)
        return nd_reply_error(n, m->reply_to, "invalid", mr_err_msg(&err));
    nd_propose_op(n, m, gid, ND_OP_OPAQUE, m->payload + 8, m->len - 8);
}

/* Register operations through the log: {"group", "op": read|write|cas,
 * "value", "expected"}. With MERIDIAN_TEST_BREAK=stale-reads (a negative
 * control for the consistency harness) any replica answers reads from its own
 * state at once, without the log or a lease: stale under partitions. */
static void on_register(nd_node *n, const net_message *m)
{
    json_error_t je;
    json_t *o = json_loadb((const char *)m->payload, m->len, 0, &je);
    nd_reg_req rq;
    mr_err err;
    if (nd_valid_register(o, &rq, &err) != MR_OK) {
        json_decref(o);
        return nd_reply_error(n, m->reply_to, "invalid", mr_err_msg(&err));
    }
    json_int_t gid = (json_int_t)rq.group;
    const char *op = rq.op;
    json_t *val = rq.value, *exp = rq.expected;
    if (strcmp(op, "read") == 0) {
        nd_group *g = nd_find_group(n, (uint64_t)gid);
        if (g && nd_test_break(n, ND_BREAK_STALE_READS)) {
            nd_reply_json(
                n, m->reply_to,
                json_pack("{s:b, s:I, s:o}", "ok", 1, "group", gid, "value", reg_json(&g->sm)));
        } else {
            nd_propose_op(n, m, (uint64_t)gid, ND_OP_READ, NULL, 0);
        }
    } else if (strcmp(op, "write") == 0 && json_is_string(val)) {
        nd_propose_op(n, m, (uint64_t)gid, ND_OP_WRITE, (const uint8_t *)json_string_value(val),
                      json_string_length(val));
    } else if (strcmp(op, "cas") == 0 && json_is_string(val) && json_is_string(exp)) {
        size_t el = json_string_length(exp), vl = json_string_length(val);
        uint8_t *b = malloc(4 + el + vl);
        if (b) {
            put32(b, (uint32_t)el);
            memcpy(b + 4, json_string_value(exp), el);
            memcpy(b + 4 + el, json_string_value(val), vl);
            nd_propose_op(n, m, (uint64_t)gid, ND_OP_CAS, b, 4 + el + vl);
            free(b);
        } else {
            nd_reply_error(n, m->reply_to, "nomem", "out of memory");
        }
    } else {
        nd_reply_error(n, m->reply_to, "invalid",
                       "op must be read, write (value) or cas (expected, value)");
    }
    json_decref(o);
}

static json_t *status_json(nd_node *n)
{
    tt_interval iv = tt_now(n->clock);
    int64_t now = mr_monotonic_ns();
    json_t *nodes = json_array();
    for (px_node_id id = 1; id <= PX_MAX_NODE_ID; id++) {
        nd_peer *p = &n->peers[id];
        if (!p->id)
            continue;
        bool up = id == n->self || (p->last_seen && now - p->last_seen < 3 * MR_NS_PER_S);
        tt_status cs = id == n->self ? tt_status_now(n->clock) : (tt_status)p->clock_status;
        int64_t eps = id == n->self ? tt_interval_epsilon(iv) : p->clock_eps;
        if (id != n->self && !p->last_seen)
            cs = TT_UNKNOWN;
        json_array_append_new(nodes, json_pack("{s:i, s:s, s:s, s:s, s:b, s:s, s:I}", "id", (int)id,
                                               "addr", p->addr, "zone", p->zone, "region",
                                               p->region, "up", up, "clock", tt_status_name(cs),
                                               "epsilon_ns", (json_int_t)eps));
    }
    json_t *groups = json_array();
    for (size_t i = 0; i < n->ngroups; i++) {
        nd_group *g = n->groups[i];
        px_status st;
        px_node_status(g->px, &st);
        json_t *reps = json_array();
        for (uint32_t k = 0; k < g->config.n; k++)
            json_array_append_new(reps, json_integer(g->config.nodes[k]));
        int64_t lease_left = 0;
        if (st.state == PX_LEADER && st.lease_valid && st.lease_end > iv.latest)
            lease_left = st.lease_end - iv.latest;
        char hash[20];
        snprintf(hash, sizeof hash, "%016llx", (unsigned long long)g->sm.hash);
        json_array_append_new(
            groups,
            json_pack("{s:I, s:o, s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:s}", "id", (json_int_t)g->id,
                      "replicas", reps, "state", px_state_name(st.state), "leader", (int)st.leader,
                      "lease_left_ns", (json_int_t)lease_left, "commit", (json_int_t)st.commit,
                      "applied", (json_int_t)g->sm.slot, "count", (json_int_t)g->sm.count,
                      "last_ts", (json_int_t)g->sm.last_ts, "hash", hash));
        json_t *ge = json_array_get(groups, json_array_size(groups) - 1);
        json_object_set_new(ge, "prepared", json_integer((json_int_t)nd_txn_prepared_count(g)));
        nd_txn_store_json(g, ge);
        if (g->range_start) {
            json_object_set_new(ge, "start", json_string(g->range_start));
            json_object_set_new(ge, "end", json_string(g->range_end));
            mv_size sz;
            mv_size_estimate(g->mv, &sz);
            json_object_set_new(ge, "bytes", json_integer((json_int_t)sz.bytes));
            json_object_set_new(ge, "versions", json_integer((json_int_t)sz.versions));
        }
    }
    return json_pack("{s:b, s:s, s:i, s:s, s:s, s:s, s:{s:s, s:I}, s:o, s:o, s:o}", "initialized",
                     n->initialized, "cluster", n->cluster_id, "self", (int)n->self, "addr",
                     n->advertise, "zone", n->zone, "region", n->region, "clock", "status",
                     tt_status_name(tt_status_now(n->clock)), "epsilon_ns",
                     (json_int_t)tt_interval_epsilon(iv), "nodes", nodes, "groups", groups,
                     "test_switches", nd_test_switches_json(&n->test));
}

/* -- bootstrap -- */

static int bootstrap_here(nd_node *n, json_t *desc, mr_err *err)
{
    if (n->initialized)
        return mr_errf(err, MR_EEXIST, "node is already part of cluster %s", n->cluster_id);
    char *text = json_dumps(desc, JSON_INDENT(2));
    char path[4200];
    snprintf(path, sizeof path, "%s/cluster.json", n->data_dir);
    int rc = text ? write_file_atomic(path, text, err) : mr_errf(err, MR_ENOMEM, "out of memory");
    free(text);
    if (rc)
        return rc;
    rc = load_cluster(n, desc, err);
    if (rc == MR_OK)
        MR_INFO("node", "bootstrapped cluster=%s self=%u groups=%zu", n->cluster_id, n->self,
                n->ngroups);
    return rc;
}

static void on_bootstrap(nd_node *n, const net_message *m)
{
    json_error_t je;
    json_t *desc = json_loadb((const char *)m->payload, m->len, 0, &je);
    mr_err err;
    if (!desc)
        return nd_reply_error(n, m->reply_to, "invalid", "bootstrap description is not JSON");
    int rc = bootstrap_here(n, desc, &err);
    json_decref(desc);
    if (rc)
        return nd_reply_error(n, m->reply_to, rc == MR_EEXIST ? "exists" : "failed",
                              mr_err_msg(&err));
    nd_reply_json(n, m->reply_to, json_pack("{s:b}", "ok", 1));
}

typedef struct init_call {
    nd_node *n;
    size_t index;
} init_call;

static void init_finish(nd_node *n);

static void init_send_bootstraps(nd_node *n);

static void on_info_reply(net_transport *t, int status, const mr_err *err, const net_message *resp,
                          void *ud)
{
    init_call *c = ud;
    nd_node *n = c->n;
    json_t *entry = json_array_get(n->init_nodes, c->index);
    free(c);
    if (status == MR_OK && resp) {
        json_error_t je;
        json_t *o = json_loadb((const char *)resp->payload, resp->len, 0, &je);
        if (o) {
            json_object_set(entry, "zone", json_object_get(o, "zone"));
            json_object_set(entry, "region", json_object_get(o, "region"));
            json_object_set(entry, "initialized", json_object_get(o, "initialized"));
            json_object_set_new(entry, "answered", json_true());
            json_decref(o);
        }
    } else {
        json_object_set_new(entry, "error", json_string(err ? mr_err_msg(err) : "no answer"));
    }
    if (--n->init_waiting == 0)
        init_send_bootstraps(n);
}

static void on_bootstrap_reply(net_transport *t, int status, const mr_err *err,
                               const net_message *resp, void *ud)
{
    init_call *c = ud;
    nd_node *n = c->n;
    json_t *entry = json_array_get(n->init_nodes, c->index);
    free(c);
    bool ok = false;
    if (status == MR_OK && resp) {
        json_error_t je;
        json_t *o = json_loadb((const char *)resp->payload, resp->len, 0, &je);
        ok = o && json_is_true(json_object_get(o, "ok"));
        if (!ok && o)
            json_object_set(entry, "error", json_object_get(o, "message"));
        json_decref(o);
    } else {
        json_object_set_new(entry, "error", json_string(err ? mr_err_msg(err) : "no answer"));
    }
    json_object_set_new(entry, "bootstrapped", json_boolean(ok));
    if (--n->init_waiting == 0)
        init_finish(n);
}

static json_t *cluster_description(nd_node *n)
{
    /* Node ids follow the order of the join list. The meta group lives on the
     * first ND_MAX_REPLICAS nodes; data group k (k = 0, 1, ...) on three nodes
     * starting at node k mod N, so replicas spread over the cluster. */
    char cid[64];
    snprintf(cid, sizeof cid, "%016llx%08x", (unsigned long long)mr_realtime_ns(),
             (unsigned)getpid());
    json_t *nodes = json_array(), *reps = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(n->init_nodes, i, e)
    {
        json_array_append_new(nodes, json_pack("{s:i, s:O, s:O, s:O}", "id", (int)i + 1, "addr",
                                               json_object_get(e, "addr"), "zone",
                                               json_object_get(e, "zone"), "region",
                                               json_object_get(e, "region")));
        if (i < ND_MAX_REPLICAS)
            json_array_append_new(reps, json_integer((json_int_t)i + 1));
    }
    json_t *groups = json_array();
    json_array_append_new(groups, json_pack("{s:i, s:s, s:o}", "id", ND_META_GROUP, "kind", "meta",
                                            "replicas", reps));
    size_t nn = json_array_size(n->init_nodes);
    size_t want = (size_t)n->init_replicas;
    size_t per = nn < want ? nn : want;
    for (int k = 0; k < n->init_data_groups; k++) {
        json_t *r = json_array();
        for (size_t j = 0; j < per; j++)
            json_array_append_new(r, json_integer((json_int_t)(((size_t)k + j) % nn) + 1));
        const char *start = k == 0 ? "" : json_string_value(json_array_get(n->init_split, k - 1));
        const char *end =
            k + 1 == n->init_data_groups ? "" : json_string_value(json_array_get(n->init_split, k));
        json_array_append_new(groups,
                              json_pack("{s:i, s:s, s:o, s:s, s:s}", "id", ND_DATA_GROUP + k,
                                        "kind", "data", "replicas", r, "start", start, "end", end));
    }
    return json_pack("{s:s, s:o, s:o}", "cluster", cid, "nodes", nodes, "groups", groups);
}

static void init_send_bootstraps(nd_node *n)
{
    size_t i;
    json_t *e;
    json_array_foreach(n->init_nodes, i, e)
    {
        if (!json_is_true(json_object_get(e, "answered"))) {
            char msg[512];
            snprintf(msg, sizeof msg, "node %s did not answer: %s",
                     json_string_value(json_object_get(e, "addr")),
                     json_string_value(json_object_get(e, "error")) ?: "no answer");
            nd_reply_error(n, n->init_reply, "unreachable", msg);
            goto done;
        }
        if (json_is_true(json_object_get(e, "initialized"))) {
            char msg[512];
            snprintf(msg, sizeof msg, "node %s already belongs to a cluster: refusing to init",
                     json_string_value(json_object_get(e, "addr")));
            nd_reply_error(n, n->init_reply, "exists", msg);
            goto done;
        }
    }
    json_t *desc = cluster_description(n);
    n->init_waiting = json_array_size(n->init_nodes);
    json_array_foreach(n->init_nodes, i, e)
    {
        json_object_set_new(desc, "self", json_integer((json_int_t)i + 1));
        char *text = json_dumps(desc, JSON_COMPACT);
        init_call *c = malloc(sizeof *c);
        *c = (init_call){n, i};
        mr_err err;
        if (net_transport_request(n->tr, json_string_value(json_object_get(e, "addr")),
                                  ND_MSG_BOOTSTRAP, text, (uint32_t)strlen(text), 10000,
                                  on_bootstrap_reply, c, NULL, &err) != MR_OK) {
            free(c);
            json_object_set_new(e, "error", json_string(mr_err_msg(&err)));
            n->init_waiting--;
        }
        free(text);
    }
    json_decref(desc);
    if (n->init_waiting == 0)
        init_finish(n);
    return;
done:
    json_decref(n->init_nodes);
    n->init_nodes = NULL;
    n->init_running = false;
}

static void init_finish(nd_node *n)
{
    size_t i;
    json_t *e;
    bool all = true;
    json_array_foreach(n->init_nodes, i, e) all =
        all && json_is_true(json_object_get(e, "bootstrapped"));
    if (all)
        nd_reply_json(n, n->init_reply,
                      json_pack("{s:b, s:s, s:O}", "ok", 1, "cluster", n->cluster_id, "nodes",
                                n->init_nodes));
    else
        nd_reply_json(n, n->init_reply,
                      json_pack("{s:b, s:s, s:s, s:O}", "ok", 0, "error", "partial", "message",
                                "some nodes were not bootstrapped", "nodes", n->init_nodes));
    json_decref(n->init_nodes);
    n->init_nodes = NULL;
    n->init_running = false;
}

/* Default boundaries for N data groups: evenly over the digits and letters
 * ('0'..'z'), one character each up to 75 groups, two beyond. */
static json_t *default_split(int groups)
{
    json_t *a = json_array();
    const int span = 'z' + 1 - '0';
    for (int i = 1; i < groups; i++) {
        char key[3] = {0};
        if (groups <= span) {
            key[0] = (char)('0' + i * span / groups);
        } else {
            long v = (long)i * span * span / groups;
            key[0] = (char)('0' + v / span);
            key[1] = (char)('0' + v % span);
        }
        json_array_append_new(a, json_string(key));
    }
    return a;
}

static void on_init(nd_node *n, const net_message *m)
{
    if (n->initialized) {
        char msg[160];
        snprintf(msg, sizeof msg, "cluster %s is already initialized", n->cluster_id);
        return nd_reply_error(n, m->reply_to, "exists", msg);
    }
    if (n->init_running)
        return nd_reply_error(n, m->reply_to, "busy", "an init is already running");
    json_error_t je;
    json_t *req = json_loadb((const char *)m->payload, m->len, 0, &je);
    nd_init_req rq;
    mr_err err;
    if (nd_valid_init(req, 5000, PX_MAX_NODES, &rq, &err) != MR_OK) {
        json_decref(req);
        return nd_reply_error(n, m->reply_to, "invalid", mr_err_msg(&err));
    }
    n->init_data_groups = rq.data_groups;
    n->init_replicas = rq.replicas;
    json_decref(n->init_split);
    nd_txn_free_local(n);
    n->init_split = rq.split_at ? json_incref(rq.split_at) : default_split(n->init_data_groups);
    json_decref(req);
    if (!n->init_split)
        return nd_reply_error(n, m->reply_to, "nomem", "out of memory");
    /* The node list: this node first, then the join list in order, without duplicates. */
    n->init_nodes = json_array();
    json_array_append_new(n->init_nodes, json_pack("{s:s}", "addr", n->advertise));
    if (n->join) {
        char *list = strdup(n->join), *save = NULL;
        for (char *a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
            bool dup = false;
            size_t i;
            json_t *e;
            json_array_foreach(n->init_nodes, i, e) dup =
                dup || strcmp(json_string_value(json_object_get(e, "addr")), a) == 0;
            if (!dup)
                json_array_append_new(n->init_nodes, json_pack("{s:s}", "addr", a));
        }
        free(list);
    }
    if (json_array_size(n->init_nodes) > PX_MAX_NODE_ID) {
        json_decref(n->init_nodes);
        n->init_nodes = NULL;
        return nd_reply_error(n, m->reply_to, "invalid", "too many nodes in --join");
    }
    n->init_running = true;
    n->init_reply = m->reply_to;
    n->init_waiting = json_array_size(n->init_nodes);
    size_t i;
    json_t *e;
    json_array_foreach(n->init_nodes, i, e)
    {
        init_call *c = malloc(sizeof *c);
        if (c)
            *c = (init_call){n, i};
        else
            mr_errf(&err, MR_ENOMEM, "out of memory");
        if (!c ||
            net_transport_request(n->tr, json_string_value(json_object_get(e, "addr")), ND_MSG_INFO,
                                  "{}", 2, 5000, on_info_reply, c, NULL, &err) != MR_OK) {
            free(c);
            json_object_set_new(e, "error", json_string(mr_err_msg(&err)));
            if (--n->init_waiting == 0)
                init_send_bootstraps(n);
        }
    }
}

/* Test-only fault injection (the consistency harness's clock nemesis): a lying
 * clock offset and a declared-unhealthy clock. Off unless the operator opts in. */
static void on_fault(nd_node *n, const net_message *m)
{
    if (!n->test.faults)
        return nd_reply_error(
            n, m->reply_to, "refused",
            "fault injection is off (start the node with MERIDIAN_TEST_FAULTS=1)");
    json_error_t je;
    json_t *o = json_loadb((const char *)m->payload, m->len, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return nd_reply_error(n, m->reply_to, "invalid", "fault request is not a JSON object");
    }
    json_t *off = json_object_get(o, "clock_offset_ns");
    json_t *unh = json_object_get(o, "clock_unhealthy");
    json_t *part = json_object_get(o, "partition");
    if ((off && !json_is_integer(off)) || (unh && !json_is_boolean(unh)) ||
        (part && !json_is_array(part))) {
        json_decref(o);
        return nd_reply_error(n, m->reply_to, "invalid",
                              "clock_offset_ns must be an integer, clock_unhealthy a boolean, "
                              "partition an array of node ids");
    }
    if (part) {
        /* Cut this node off from the listed nodes (both directions, as seen from
         * here; the harness tells both sides). An empty array heals. */
        uint64_t mask = 0;
        size_t k;
        json_t *v;
        json_array_foreach(part, k, v)
        {
            json_int_t id = json_integer_value(v);
            if (id >= 1 && id <= PX_MAX_NODE_ID && id != n->self)
                mask |= 1ull << id;
        }
        n->partitioned = mask;
        MR_WARN("node", "fault hook: partitioned from mask=%#llx", (unsigned long long)mask);
    }
    if (off)
        tt_set_fault_offset(n->clock, (int64_t)json_integer_value(off));
    if (unh)
        tt_set_fault_unhealthy(n->clock, json_is_true(unh));
    json_decref(o);
    json_t *cut = json_array();
    for (int id = 1; id <= PX_MAX_NODE_ID; id++)
        if (n->partitioned & (1ull << id))
            json_array_append_new(cut, json_integer(id));
    nd_reply_json(n, m->reply_to,
                  json_pack("{s:b, s:I, s:b, s:s, s:o}", "ok", 1, "clock_offset_ns",
                            (json_int_t)tt_fault_offset(n->clock), "clock_unhealthy",
                            tt_fault_unhealthy(n->clock), "clock_status",
                            tt_status_name(tt_status_now(n->clock)), "partition", cut));
}

/* Message types only cluster nodes may send: replication, cluster formation,
 * two-phase commit and split traffic. A client certificate (clientAuth only)
 * may ask, propose and read status, never speak these. */
static bool node_only(uint8_t type)
{
    return type == ND_MSG_PX || type == ND_MSG_BOOTSTRAP || type == ND_MSG_PREPARED ||
           type == ND_MSG_DECISION || type == ND_MSG_TXN_QUERY || type == ND_MSG_SAFE_REQ ||
           type == ND_MSG_SAFE_GRANT || type == ND_MSG_SPLIT;
}

/* Message types that mean nothing before `meridian init`: requests are told
 * so, one-way messages dropped. */
static bool needs_cluster(uint8_t type)
{
    switch (type) {
    case ND_MSG_PROPOSE:
    case ND_MSG_RANGES:
    case ND_MSG_SPLIT_AT:
    case ND_MSG_TXN:
    case ND_MSG_SNAPREAD:
    case ND_MSG_REGISTER:
    case ND_MSG_SAFE_REQ:
    case ND_MSG_SAFE_GRANT:
    case ND_MSG_SPLIT:
    case ND_MSG_PREPARED:
    case ND_MSG_DECISION:
    case ND_MSG_TXN_QUERY:
        return true;
    default:
        return false;
    }
}

static void on_message(net_transport *t, const net_message *m, void *ud)
{
    nd_node *n = ud;
    if (n->closing || n->fatal)
        return;
    if (node_only(m->type) && !m->peer_is_node) {
        n->stats.refused++;
        MR_WARN("node", "refused message type %u from non-node peer %s (%s)", m->type, m->peer,
                m->peer_name);
        if (m->reply_to.req_id)
            nd_reply_error(n, m->reply_to, "forbidden", "only cluster nodes may send this");
        return;
    }
    if (needs_cluster(m->type) && !n->initialized) {
        if (m->reply_to.req_id)
            nd_reply_error(n, m->reply_to, "uninitialized", "run meridian init first");
        return;
    }
    switch (m->type) {
    case ND_MSG_PX:
        on_px(n, m);
        break;
    case ND_MSG_INFO:
        nd_reply_json(n, m->reply_to,
                      json_pack("{s:s, s:s, s:s, s:b, s:s}", "addr", n->advertise, "zone", n->zone,
                                "region", n->region, "initialized", n->initialized, "cluster",
                                n->cluster_id));
        break;
    case ND_MSG_INIT:
        on_init(n, m);
        break;
    case ND_MSG_BOOTSTRAP:
        on_bootstrap(n, m);
        break;
    case ND_MSG_PROPOSE:
        on_propose(n, m);
        break;
    case ND_MSG_STATUS:
        nd_reply_json(n, m->reply_to, status_json(n));
        break;
    case ND_MSG_RANGES:
        on_ranges(n, m);
        break;
    case ND_MSG_SAFE_REQ:
        nd_txn_on_safe_request(n, m);
        break;
    case ND_MSG_SAFE_GRANT:
        nd_txn_on_safe_grant(n, m);
        break;
    case ND_MSG_SPLIT:
        nd_split_on_message(n, m);
        break;
    case ND_MSG_SPLIT_AT:
        nd_split_on_request(n, m);
        break;
    case ND_MSG_PREPARED:
    case ND_MSG_DECISION:
    case ND_MSG_TXN_QUERY:
        nd_txn_on_2pc(n, m);
        break;
    case ND_MSG_TXN:
    case ND_MSG_SNAPREAD:
        nd_txn_on_message(n, m);
        break;
    case ND_MSG_FAULT:
        on_fault(n, m);
        break;
    case ND_MSG_REGISTER:
        on_register(n, m);
        break;
    default:
        MR_WARN("node", "unknown message type %u from %s", m->type, m->peer);
        if (m->reply_to.req_id)
            nd_reply_error(n, m->reply_to, "invalid", "unknown message type");
    }
}

/* ---- /metrics and /healthz ---- */

static int http_handler(void *ud, const char *path, nd_text *t, const char **ctype)
{
    nd_node *n = ud;
    tt_status cs = tt_status_now(n->clock);
    if (strcmp(path, "/healthz") == 0) {
        if (n->fatal) {
            nd_text_printf(t, "stopping after a fatal storage error\n");
            return 503;
        }
        if (cs != TT_SYNCHRONIZED) {
            nd_text_printf(t, "clock %s: this node will not lead\n", tt_status_name(cs));
            return 503;
        }
        nd_text_printf(t, "ok\n");
        return 200;
    }
    if (strcmp(path, "/metrics") != 0) {
        nd_text_printf(t, "not found: try /metrics or /healthz\n");
        return 404;
    }
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    const nd_stats *s = &n->stats;
    tt_interval iv = tt_now(n->clock);
    net_transport_stats ts;
    net_transport_get_stats(n->tr, &ts);
    nd_text_printf(t,
                   "# HELP meridian_proposals_total Proposals applied for clients of this node.\n"
                   "# TYPE meridian_proposals_total counter\nmeridian_proposals_total %llu\n"
                   "# HELP meridian_proposals_failed_total Proposals that timed out here.\n"
                   "# TYPE meridian_proposals_failed_total counter\n"
                   "meridian_proposals_failed_total %llu\n",
                   (unsigned long long)s->proposals, (unsigned long long)s->proposals_failed);
    nd_hist_render(t, "meridian_proposal_latency_seconds",
                   "From a client's proposal to its application on this node.", "",
                   &s->proposal_latency);
    nd_text_printf(t,
                   "# HELP meridian_fsyncs_total Group commits of the Paxos log.\n"
                   "# TYPE meridian_fsyncs_total counter\nmeridian_fsyncs_total %llu\n",
                   (unsigned long long)s->fsyncs);
    nd_hist_render(t, "meridian_fsync_seconds", "Duration of one Paxos log group commit.", "",
                   &s->fsync_latency);
    nd_text_printf(
        t,
        "# HELP meridian_lease_changes_total Leader leases acquired and lost by this node.\n"
        "# TYPE meridian_lease_changes_total counter\n"
        "meridian_lease_changes_total{change=\"acquired\"} %llu\n"
        "meridian_lease_changes_total{change=\"lost\"} %llu\n"
        "# HELP meridian_paxos_messages_total Paxos messages by direction.\n"
        "# TYPE meridian_paxos_messages_total counter\n"
        "meridian_paxos_messages_total{dir=\"in\"} %llu\n"
        "meridian_paxos_messages_total{dir=\"out\"} %llu\n"
        "meridian_paxos_messages_total{dir=\"malformed\"} %llu\n"
        "meridian_paxos_messages_total{dir=\"refused\"} %llu\n"
        "# HELP meridian_clock_epsilon_seconds Half-width of the TrueTime interval.\n"
        "# TYPE meridian_clock_epsilon_seconds gauge\nmeridian_clock_epsilon_seconds %.9f\n"
        "# HELP meridian_clock_synchronized 1 when the clock may be trusted to lead.\n"
        "# TYPE meridian_clock_synchronized gauge\nmeridian_clock_synchronized %d\n"
        "# HELP meridian_connections Open peer connections.\n"
        "# TYPE meridian_connections gauge\nmeridian_connections %zu\n"
        "# HELP meridian_connections_opened_total Connections that completed a handshake.\n"
        "# TYPE meridian_connections_opened_total counter\n"
        "meridian_connections_opened_total %llu\n"
        "# HELP meridian_connections_failed_total Connections closed with an error.\n"
        "# TYPE meridian_connections_failed_total counter\n"
        "meridian_connections_failed_total %llu\n",
        (unsigned long long)s->lease_acquired, (unsigned long long)s->lease_lost,
        (unsigned long long)s->px_in, (unsigned long long)s->px_out,
        (unsigned long long)s->malformed, (unsigned long long)s->refused,
        (double)tt_interval_epsilon(iv) / 1e9, cs == TT_SYNCHRONIZED, ts.conns,
        (unsigned long long)ts.conns_opened, (unsigned long long)ts.conns_failed);
    nd_text_printf(t, "# HELP meridian_group_leader 1 when this node leads the group.\n"
                      "# TYPE meridian_group_leader gauge\n");
    for (size_t i = 0; i < n->ngroups; i++) {
        px_status st;
        px_node_status(n->groups[i]->px, &st);
        nd_text_printf(t, "meridian_group_leader{group=\"%llu\"} %d\n",
                       (unsigned long long)n->groups[i]->id, st.state == PX_LEADER);
    }
    nd_txn_store_metrics(n, t);
    nd_text_printf(t, "# HELP meridian_group_applied_slot Last slot applied by the replica.\n"
                      "# TYPE meridian_group_applied_slot gauge\n");
    for (size_t i = 0; i < n->ngroups; i++)
        nd_text_printf(t, "meridian_group_applied_slot{group=\"%llu\"} %llu\n",
                       (unsigned long long)n->groups[i]->id,
                       (unsigned long long)n->groups[i]->sm.slot);
    const char *sw[16];
    size_t nsw = nd_test_switches_names(&n->test, sw, 16);
    nd_text_printf(t, "# HELP meridian_test_switch 1 for each test switch this node honours "
                      "(unsafe: tests only).\n"
                      "# TYPE meridian_test_switch gauge\n");
    for (size_t i = 0; i < nsw && i < 16; i++)
        nd_text_printf(t, "meridian_test_switch{name=\"%s\"} 1\n", sw[i]);
    return 200;
}

/* ---- open / close ---- */

int nd_port(const nd_node *n)
{
    return net_transport_port(n->tr);
}

static void free_node(nd_node *n)
{
    for (size_t i = 0; i < n->ngroups; i++) {
        nd_txn_group_close(n, n->groups[i]);
        px_node_destroy(n->groups[i]->px);
        free(n->groups[i]->sm.reg);
        free_deferred(n->groups[i]);
        free(n->groups[i]->range_start);
        free(n->groups[i]->range_end);
        free(n->groups[i]->split_key);
        free(n->groups[i]);
    }
    free(n->groups);
    free_ranges(n);
    for (int i = 0; i <= PX_MAX_NODE_ID; i++)
        free(n->out[i].buf);
    free(n->pending);
    json_decref(n->init_nodes);
    json_decref(n->init_split);
    ls_close(n->store);
    tt_clock_close(n->clock);
    net_tls_ctx_free(n->tls);
    free(n->data_dir);
    free(n->listen);
    free(n->advertise);
    free(n->zone);
    free(n->region);
    free(n->join);
    free(n->clock_spec);
    void (*cb)(void *) = n->on_closed;
    void *ud = n->closed_ud;
    free(n);
    if (cb)
        cb(ud);
}

static void on_handle_closed(uv_handle_t *h)
{
    nd_node *n = h->data;
    if (--n->handles_open == 0 && !n->tr)
        free_node(n);
}

static void on_transport_closed(void *ud)
{
    nd_node *n = ud;
    n->tr = NULL;
    if (n->handles_open == 0)
        free_node(n);
}

void nd_close(nd_node *n, void (*on_closed)(void *ud), void *ud)
{
    if (!n || n->closing)
        return;
    n->closing = true;
    n->on_closed = on_closed;
    n->closed_ud = ud;
    if (!n->fatal) {
        /* Hand leases over where possible: abdicate, and send the releases out. */
        for (size_t i = 0; i < n->ngroups; i++) {
            px_status st;
            px_node_status(n->groups[i]->px, &st);
            if (st.state == PX_LEADER) {
                px_event ab = {.kind = PX_EV_ABDICATE};
                mr_err err;
                nd_step(n, n->groups[i], &ab, &err);
            }
        }
        flush(n);
    }
    /* Fail proposals still waiting. */
    for (size_t i = 0; i < n->npending; i++)
        nd_reply_error(n, n->pending[i].reply_to, "shutdown", "node is shutting down");
    n->npending = 0;
    nd_http_stop(n->http);
    n->http = NULL;
    n->handles_open = 3;
    uv_close((uv_handle_t *)&n->tick, on_handle_closed);
    uv_close((uv_handle_t *)&n->prep, on_handle_closed);
    uv_close((uv_handle_t *)&n->check, on_handle_closed);
    net_transport_close(n->tr, on_transport_closed, n);
}

int nd_open(uv_loop_t *loop, const nd_config *cfg, nd_node **out, mr_err *err)
{
    if (!cfg->data_dir || !cfg->listen || !cfg->zone)
        return mr_errf(err, MR_EINVAL, "--data, --listen and --zone are required");
    if (!cfg->insecure && !cfg->certs_dir)
        return mr_errf(err, MR_EINVAL, "give --certs DIR, or --insecure for local experiments");
    nd_test_switches test;
    int rc = nd_test_switches_load(&test, err);
    if (rc)
        return rc;
    nd_node *n = calloc(1, sizeof *n);
    if (!n)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    n->test = test;
    if (test.reply_max)
        reply_max = test.reply_max;
    const char *sw[16];
    size_t nsw = nd_test_switches_names(&test, sw, 16);
    for (size_t i = 0; i < nsw && i < 16; i++)
        MR_WARN("node", "TEST SWITCH ON: %s (unsafe; for tests only, shown in status and /metrics)",
                sw[i]);
    n->loop = loop;
    n->data_dir = xstrdup(cfg->data_dir);
    n->listen = xstrdup(cfg->listen);
    n->advertise = xstrdup(cfg->advertise ? cfg->advertise : cfg->listen);
    n->zone = xstrdup(cfg->zone);
    n->region = xstrdup(cfg->region ? cfg->region : "");
    n->join = xstrdup(cfg->join);
    n->clock_spec = xstrdup(cfg->clock_spec ? cfg->clock_spec : "fixed:1ms");
    n->lease_ns = cfg->lease_ns;
    n->retention_ns = cfg->retention_ns > 0 ? cfg->retention_ns : MV_DEFAULT_RETENTION_NS;
    n->split_bytes = cfg->split_bytes > 0 ? cfg->split_bytes : ND_DEFAULT_SPLIT_BYTES;
    n->decision_retention_ns =
        cfg->decision_retention_ns > 0 ? cfg->decision_retention_ns : ND_DEFAULT_DECISION_RETENTION;
    if (mkdir(n->data_dir, 0750) != 0 && errno != EEXIST) {
        rc = mr_errf(err, MR_EIO, "create data directory %s: %s", n->data_dir, strerror(errno));
        goto fail;
    }
    tt_config tcfg;
    tt_config_default(&tcfg);
    if (cfg->clock_cap_ns > 0)
        tcfg.cap_ns = cfg->clock_cap_ns;
    rc = tt_clock_open(n->clock_spec, &tcfg, &n->clock, err);
    if (rc)
        goto fail;
    char path[4200];
    snprintf(path, sizeof path, "%s/paxos.db", n->data_dir);
    rc = ls_open(path, NULL, &n->store, err);
    if (rc) {
        mr_err_wrap(err, "open %s", path);
        goto fail;
    }
    if (!cfg->insecure) {
        rc = net_tls_ctx_load_dir(cfg->certs_dir, "node", &n->tls, err);
        if (rc) {
            mr_err_wrap(err, "load certificates from %s", cfg->certs_dir);
            goto fail;
        }
    }
    net_transport_config tc = {.loop = loop,
                               .tls = n->tls,
                               .listen = n->listen,
                               .advertise = n->advertise,
                               .on_message = on_message,
                               .ud = n};
    rc = net_transport_new(&tc, &n->tr, err);
    if (rc)
        goto fail;
    snprintf(path, sizeof path, "%s/cluster.json", n->data_dir);
    json_error_t je;
    json_t *desc = json_load_file(path, 0, &je);
    if (desc) {
        rc = load_cluster(n, desc, err);
        json_decref(desc);
        if (rc) {
            mr_err_wrap(err, "%s", path);
            net_transport_close(n->tr, NULL, NULL);
            n->tr = NULL;
            goto fail;
        }
    } else if (access(path, F_OK) == 0) {
        rc = mr_errf(err, MR_ECORRUPT, "%s: %s (line %d)", path, je.text, je.line);
        net_transport_close(n->tr, NULL, NULL);
        n->tr = NULL;
        goto fail;
    }
    if (cfg->http) {
        rc = nd_http_start(loop, cfg->http, http_handler, n, &n->http, err);
        if (rc) {
            net_transport_close(n->tr, NULL, NULL);
            n->tr = NULL;
            goto fail;
        }
    }
    uv_timer_init(loop, &n->tick);
    uv_prepare_init(loop, &n->prep);
    uv_check_init(loop, &n->check);
    n->tick.data = n->prep.data = n->check.data = n;
    uv_timer_start(&n->tick, on_tick, ND_TICK_MS, ND_TICK_MS);
    uv_prepare_start(&n->prep, on_prepare);
    uv_check_start(&n->check, on_check);
    *out = n;
    return MR_OK;
fail:
    free_node(n);
    return rc;
}

/* Cluster formation: DATA/cluster.json, meridian init (INFO, BOOTSTRAP) and recorded splits. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
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
#include "tablet/node/nd_peer.h"
#include "tablet/node/nd_validate.h"

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

/* Applies a cluster description: nodes and groups. */
int nd_cluster_load(nd_node *n, json_t *desc, mr_err *err)
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
    if (nd_range_load(n, groups, err) != MR_OK)
        return MR_ECORRUPT;
    json_array_foreach(groups, i, v)
    {
        json_int_t gid = json_integer_value(json_object_get(v, "id"));
        px_config c;
        if (gid < 1 || nd_config_from_json(json_object_get(v, "replicas"), &c, err) != MR_OK)
            return mr_err_wrap(err, "group entry %zu", i);
        const char *kind = json_string_value(json_object_get(v, "kind"));
        if (kind && strcmp(kind, "meta") == 0)
            n->meta_replicas = c;
        if (!px_config_has(&c, n->self) || nd_find_group(n, (uint64_t)gid) ||
            json_is_true(json_object_get(v, "absent_here")))
            continue; /* (a split replayed while starting its parent may have started it) */
        int64_t floor = (int64_t)json_integer_value(json_object_get(v, "floor_ts"));
        if (nd_start_group(n, (uint64_t)gid, &c, floor, err) != MR_OK)
            return mr_err_wrap(err, "group %lld", (long long)gid);
    }
    n->initialized = true;
    return MR_OK;
}

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
        rc = nd_range_load(n, groups, err);
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
    rc = nd_cluster_load(n, desc, err);
    if (rc == MR_OK)
        MR_INFO("node", "bootstrapped cluster=%s self=%u groups=%zu", n->cluster_id, n->self,
                n->ngroups);
    return rc;
}

/* A range boundary (bytes) as DATA/cluster.json keeps it: a JSON string.
 * NULL when it holds a NUL, is over the key limit or is not UTF-8 (client
 * keys are UTF-8 without NUL, nd_validate.h), or when out of memory. */
static json_t *key_json(ProtobufCBinaryData b)
{
    if (b.len > MV_MAX_KEY || (b.len && memchr(b.data, 0, b.len)))
        return NULL;
    return json_stringn(b.len ? (const char *)b.data : "", b.len);
}

/* A group kind as its lowercase schema name ("meta", "data"), or its number
 * when this version does not know it. */
static json_t *kind_json(Meridian__GroupKind kind)
{
    const ProtobufCEnumValue *ev =
        protobuf_c_enum_descriptor_get_value(&meridian__group_kind__descriptor, (int)kind);
    if (!ev)
        return json_integer((json_int_t)kind);
    char buf[64];
    size_t k = 0;
    for (; ev->name[k] && k + 1 < sizeof buf; k++)
        buf[k] = (char)tolower((unsigned char)ev->name[k]);
    buf[k] = '\0';
    return json_string(buf);
}

/* Sets o[name] to v (taken); false when v is NULL. */
static bool set_new(json_t *o, const char *name, json_t *v)
{
    return v && json_object_set_new(o, name, v) == 0;
}

/* A bootstrap's ClusterDescription as DATA/cluster.json records it (which
 * nd_cluster_load reads): field names as in the schema, the group kind as a
 * lowercase name, absent optional fields left out. NULL when a range
 * boundary cannot be a key, or when out of memory. */
static json_t *description_json(const Meridian__ClusterDescription *d)
{
    json_t *desc = json_object(), *nodes = json_array(), *groups = json_array();
    bool ok = desc && nodes && groups && set_new(desc, "cluster", json_string(d->cluster)) &&
              json_object_set(desc, "nodes", nodes) == 0 &&
              json_object_set(desc, "groups", groups) == 0;
    for (size_t i = 0; ok && i < d->n_nodes; i++) {
        const Meridian__NodeInfo *ni = d->nodes[i];
        json_t *e = json_object();
        ok = e && json_array_append_new(nodes, e) == 0 && set_new(e, "id", json_integer(ni->id)) &&
             set_new(e, "addr", json_string(ni->addr)) &&
             (!ni->zone || set_new(e, "zone", json_string(ni->zone))) &&
             (!ni->region || set_new(e, "region", json_string(ni->region)));
    }
    for (size_t i = 0; ok && i < d->n_groups; i++) {
        const Meridian__GroupInfo *gi = d->groups[i];
        json_t *reps = json_array();
        for (size_t k = 0; reps && k < gi->n_replicas; k++)
            if (json_array_append_new(reps, json_integer(gi->replicas[k])) != 0) {
                json_decref(reps);
                reps = NULL;
            }
        json_t *e = json_object();
        ok = e && json_array_append_new(groups, e) == 0 && gi->id <= INT64_MAX &&
             set_new(e, "id", json_integer((json_int_t)gi->id)) &&
             set_new(e, "kind", kind_json(gi->kind));
        if (!ok) {
            json_decref(reps);
            break;
        }
        ok = set_new(e, "replicas", reps) &&
             (!gi->has_start || set_new(e, "start", key_json(gi->start))) &&
             (!gi->has_end || set_new(e, "end", key_json(gi->end))) &&
             (!gi->has_floor_ts || set_new(e, "floor_ts", json_integer(gi->floor_ts))) &&
             (!gi->has_absent_here || set_new(e, "absent_here", json_boolean(gi->absent_here)));
    }
    ok = ok && (!d->has_self || set_new(desc, "self", json_integer(d->self)));
    json_decref(nodes);
    json_decref(groups);
    if (!ok) {
        json_decref(desc);
        return NULL;
    }
    return desc;
}

void nd_cluster_on_bootstrap(nd_node *n, const net_message *m)
{
    /* A ClusterDescription on the wire, kept in DATA/cluster.json. */
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__ClusterDescription *pm =
        (const Meridian__ClusterDescription *)nd_peer_receive(n, m, &a);
    json_t *desc = pm ? description_json(pm) : NULL;
    pr_arena_free(&a);
    mr_err err;
    if (!desc) {
        const char *why = pm ? "a range boundary that is not a key, or out of memory"
                             : "bootstrap is not a ClusterDescription";
        if (pm) {
            mr_errf(&err, MR_EPROTO, "%s", why);
            nd_peer_malformed(n, m, &err);
        }
        return nd_reply_error(n, m->reply_to, "invalid", why);
    }
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

/* A bytes field holding a C string (borrowed). */
static ProtobufCBinaryData str_bytes(const char *s)
{
    return (ProtobufCBinaryData){.len = strlen(s), .data = (uint8_t *)(uintptr_t)s};
}

/* The cluster's description, allocated from a (strings borrowed from
 * n->init_nodes and n->init_split); NULL when out of memory. */
static Meridian__ClusterDescription *cluster_description(nd_node *n, pr_arena *a)
{
    /* Node ids follow the order of the join list. The meta group lives on the
     * first ND_MAX_REPLICAS nodes; data group k (k = 0, 1, ...) on three nodes
     * starting at node k mod N, so replicas spread over the cluster. */
    char cid[64];
    snprintf(cid, sizeof cid, "%016llx%08x", (unsigned long long)mr_realtime_ns(),
             (unsigned)getpid());
    size_t nn = json_array_size(n->init_nodes);
    size_t ng = 1 + (size_t)n->init_data_groups;
    Meridian__ClusterDescription *d = pr_arena_alloc(a, sizeof *d);
    Meridian__NodeInfo *nodes = pr_arena_alloc(a, nn * sizeof *nodes + 1);
    Meridian__NodeInfo **pnodes = pr_arena_alloc(a, nn * sizeof *pnodes + 1);
    Meridian__GroupInfo *groups = pr_arena_alloc(a, ng * sizeof *groups);
    Meridian__GroupInfo **pgroups = pr_arena_alloc(a, ng * sizeof *pgroups);
    uint32_t *meta = pr_arena_alloc(a, ND_MAX_REPLICAS * sizeof *meta);
    size_t want = (size_t)n->init_replicas;
    size_t per = nn < want ? nn : want;
    uint32_t *reps = pr_arena_alloc(a, (size_t)n->init_data_groups * per * sizeof *reps + 1);
    char *c = pr_arena_dup(a, cid, strlen(cid) + 1);
    if (!d || !nodes || !pnodes || !groups || !pgroups || !meta || !reps || !c)
        return NULL;
    *d = (Meridian__ClusterDescription)MERIDIAN__CLUSTER_DESCRIPTION__INIT;
    d->cluster = c;
    d->n_nodes = nn;
    d->nodes = pnodes;
    d->n_groups = ng;
    d->groups = pgroups;
    size_t i;
    json_t *e;
    json_array_foreach(n->init_nodes, i, e)
    {
        nodes[i] = (Meridian__NodeInfo)MERIDIAN__NODE_INFO__INIT;
        nodes[i].id = (uint32_t)i + 1;
        nodes[i].addr = (char *)(uintptr_t)json_string_value(json_object_get(e, "addr"));
        nodes[i].zone = (char *)(uintptr_t)json_string_value(json_object_get(e, "zone"));
        nodes[i].region = (char *)(uintptr_t)json_string_value(json_object_get(e, "region"));
        pnodes[i] = &nodes[i];
    }
    groups[0] = (Meridian__GroupInfo)MERIDIAN__GROUP_INFO__INIT;
    groups[0].id = ND_META_GROUP;
    groups[0].kind = MERIDIAN__GROUP_KIND__META;
    groups[0].n_replicas = nn < ND_MAX_REPLICAS ? nn : ND_MAX_REPLICAS;
    groups[0].replicas = meta;
    for (size_t k = 0; k < groups[0].n_replicas; k++)
        meta[k] = (uint32_t)k + 1;
    pgroups[0] = &groups[0];
    for (int k = 0; k < n->init_data_groups; k++) {
        Meridian__GroupInfo *g = &groups[k + 1];
        *g = (Meridian__GroupInfo)MERIDIAN__GROUP_INFO__INIT;
        g->id = ND_DATA_GROUP + (uint64_t)k;
        g->kind = MERIDIAN__GROUP_KIND__DATA;
        g->n_replicas = per;
        g->replicas = reps + (size_t)k * per;
        for (size_t j = 0; j < per; j++)
            g->replicas[j] = (uint32_t)(((size_t)k + j) % nn) + 1;
        const char *start = k == 0 ? "" : json_string_value(json_array_get(n->init_split, k - 1));
        const char *end =
            k + 1 == n->init_data_groups ? "" : json_string_value(json_array_get(n->init_split, k));
        if (!start || !end)
            return NULL;
        g->has_start = g->has_end = true;
        g->start = str_bytes(start);
        g->end = str_bytes(end);
        pgroups[k + 1] = g;
    }
    return d;
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
    pr_arena a;
    pr_arena_init(&a);
    Meridian__ClusterDescription *desc = cluster_description(n, &a);
    n->init_waiting = json_array_size(n->init_nodes);
    json_array_foreach(n->init_nodes, i, e)
    {
        uint8_t *buf = NULL;
        size_t len = 0;
        init_call *c = malloc(sizeof *c);
        mr_err err;
        if (c && desc)
            *c = (init_call){n, i};
        else
            mr_errf(&err, MR_ENOMEM, "out of memory");
        if (desc) {
            desc->has_self = true;
            desc->self = (uint32_t)i + 1;
        }
        if (!c || !desc || nd_peer_encode(&desc->base, &buf, &len, &err) != MR_OK ||
            net_transport_request(n->tr, json_string_value(json_object_get(e, "addr")),
                                  ND_MSG_BOOTSTRAP, buf, (uint32_t)len, 10000, on_bootstrap_reply,
                                  c, NULL, &err) != MR_OK) {
            free(c);
            json_object_set_new(e, "error", json_string(mr_err_msg(&err)));
            n->init_waiting--;
        }
        free(buf);
    }
    pr_arena_free(&a);
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

void nd_cluster_on_init(nd_node *n, const net_message *m)
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

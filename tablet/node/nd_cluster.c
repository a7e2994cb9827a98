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
#include "proto/pr_msg.h"
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

/* DATA/cluster.json's format. 3: the meta group holds ["", "\x02") (its records of the
 * cluster under system keys, "\0node/<id>", and the SQL catalog) and the data groups tile
 * ["\x02", +infinity); keys in hex. 2 (keys in hex, the meta group holding no range and its
 * records under text keys, "node/<id>", inside the first data group's range) and 1 (keys as
 * text) are refused (no deployed users), never misread: both the map and the meta group's
 * store would be read wrong. */
#define ND_CLUSTER_FORMAT 3

/* Applies a cluster description: nodes and groups. */
int nd_cluster_load(nd_node *n, json_t *desc, mr_err *err)
{
    json_int_t format = json_integer_value(json_object_get(desc, "format"));
    if (format != ND_CLUSTER_FORMAT) {
        static const char *const what[] = {
            [1] = "keys as text",
            [2] = "the meta group without a key range, its records under text keys"};
        return mr_errf(err, MR_ECORRUPT,
                       "cluster description of format %lld (%s); this version reads format %d "
                       "(keys in hex, the meta group holding [\"\", \"\\x02\") with the "
                       "cluster's records and the SQL catalog): initialize the cluster anew "
                       "(stop every node, empty their data directories, meridian init)",
                       format ? (long long)format : 1LL,
                       format == 2 || format == 0 || format == 1 ? what[format ? format : 1]
                                                                 : "unknown",
                       ND_CLUSTER_FORMAT);
    }
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
int nd_cluster_record_split(nd_node *n, uint64_t parent, const void *key, size_t klen,
                            uint64_t child, int64_t floor, bool absent, mr_err *err)
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
    nd_bytes start = {0}, end = {0};
    char text[200];
    mr_bytes_text(key, klen, text, sizeof text);
    if (!pe || nd_key_from_json(json_object_get(pe, "start"), &start) != MR_OK ||
        nd_key_from_json(json_object_get(pe, "end"), &end) != MR_OK ||
        !nd_key_splits(&start, &end, key, klen)) {
        json_decref(desc);
        nd_bytes_free(&start);
        nd_bytes_free(&end);
        return mr_errf(err, MR_EINVAL, "split of group %llu at '%s' does not fit its range",
                       (unsigned long long)parent, text);
    }
    json_t *ce = json_pack("{s:I, s:s, s:O, s:o, s:O, s:I, s:I}", "id", (json_int_t)child, "kind",
                           "data", "replicas", json_object_get(pe, "replicas"), "start",
                           nd_key_json(key, klen), "end", json_object_get(pe, "end"), "parent",
                           (json_int_t)parent, "floor_ts", (json_int_t)floor);
    nd_bytes_free(&start);
    nd_bytes_free(&end);
    if (!ce) {
        json_decref(desc);
        return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    if (absent)
        json_object_set_new(ce, "absent_here", json_true());
    json_object_set_new(pe, "end", nd_key_json(key, klen));
    json_array_append_new(groups, ce);
    char *out = json_dumps(desc, JSON_INDENT(2));
    int rc = out ? write_file_atomic(path, out, err) : mr_errf(err, MR_ENOMEM, "out of memory");
    free(out);
    if (rc == MR_OK)
        rc = nd_range_load(n, groups, err);
    json_decref(desc);
    if (rc != MR_OK)
        return rc;
    nd_group *g = nd_find_group(n, parent);
    if (g && nd_bytes_set(&g->range_end, key, klen) != MR_OK)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    MR_INFO("node", "group=%llu split at '%s': group %llu holds the keys from there",
            (unsigned long long)parent, text, (unsigned long long)child);
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

/* A range boundary (bytes) as DATA/cluster.json keeps it: hex digits. NULL when it is over
 * the key limit, or when out of memory. */
static json_t *key_json(ProtobufCBinaryData b)
{
    if (b.len > ND_KEY_MAX)
        return NULL;
    return nd_key_json(b.data, b.len);
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
 * nd_cluster_load reads): its format (ND_CLUSTER_FORMAT), field names as in the schema, the
 * group kind as a lowercase name, keys in hex, absent optional fields left out. NULL when a
 * range boundary cannot be a key, or when out of memory. */
static json_t *description_json(const Meridian__ClusterDescription *d)
{
    json_t *desc = json_object(), *nodes = json_array(), *groups = json_array();
    bool ok = desc && nodes && groups && set_new(desc, "format", json_integer(ND_CLUSTER_FORMAT)) &&
              set_new(desc, "cluster", json_string(d->cluster)) &&
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
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID, why);
    }
    int rc = bootstrap_here(n, desc, &err);
    json_decref(desc);
    if (rc)
        return nd_reply_error(n, m->reply_to,
                              rc == MR_EEXIST ? MERIDIAN__ERROR_CODE__EXISTS
                                              : MERIDIAN__ERROR_CODE__INTERNAL,
                              mr_err_msg(&err));
    nd_reply_ack(n, m->reply_to);
}

typedef struct init_call {
    nd_node *n;
    size_t index;
} init_call;

void nd_cluster_init_free(nd_node *n)
{
    free(n->init_nodes);
    n->init_nodes = NULL;
    n->ninit_nodes = 0;
    for (int k = 0; n->init_split && k + 1 < n->init_data_groups; k++)
        free(n->init_split[k].data);
    free(n->init_split);
    n->init_split = NULL;
}

static void init_finish(nd_node *n);

static void init_send_bootstraps(nd_node *n);

/* A reply to one of the INIT's requests, decoded into a; NULL with why in e->error. */
static const Meridian__Reply *init_answer(nd_init_node *e, int status, const mr_err *err,
                                          const net_message *resp, pr_arena *a)
{
    mr_err derr;
    const Meridian__Reply *r = NULL;
    if (status == MR_OK && resp && !(r = pr_reply_decode(a, resp->payload, resp->len, &derr)))
        snprintf(e->error, sizeof e->error, "%s", mr_err_msg(&derr));
    else if (status != MR_OK || !resp)
        snprintf(e->error, sizeof e->error, "%s", err ? mr_err_msg(err) : "no answer");
    else if (r->error)
        snprintf(e->error, sizeof e->error, "%s: %s", pr_error_name(r->error->code),
                 pr_reply_message(r));
    return r && !r->error ? r : NULL;
}

static void on_info_reply(net_transport *t, int status, const mr_err *err, const net_message *resp,
                          void *ud)
{
    (void)t;
    init_call *c = ud;
    nd_node *n = c->n;
    nd_init_node *e = &n->init_nodes[c->index];
    free(c);
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__Reply *r = init_answer(e, status, err, resp, &a);
    if (r && r->body_case == MERIDIAN__REPLY__BODY_INFO) {
        const Meridian__InfoReply *info = r->info;
        snprintf(e->zone, sizeof e->zone, "%s", info->zone ? info->zone : "");
        snprintf(e->region, sizeof e->region, "%s", info->region ? info->region : "");
        e->initialized = info->initialized;
        e->proto_version = info->proto_version;
        e->answered = true;
    } else if (r) {
        snprintf(e->error, sizeof e->error, "its INFO answer is not an InfoReply");
    }
    pr_arena_free(&a);
    if (--n->init_waiting == 0)
        init_send_bootstraps(n);
}

static void on_bootstrap_reply(net_transport *t, int status, const mr_err *err,
                               const net_message *resp, void *ud)
{
    (void)t;
    init_call *c = ud;
    nd_node *n = c->n;
    nd_init_node *e = &n->init_nodes[c->index];
    free(c);
    pr_arena a;
    pr_arena_init(&a);
    e->bootstrapped = init_answer(e, status, err, resp, &a) != NULL;
    pr_arena_free(&a);
    if (--n->init_waiting == 0)
        init_finish(n);
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
    size_t nn = n->ninit_nodes;
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
    for (size_t i = 0; i < nn; i++) {
        nodes[i] = (Meridian__NodeInfo)MERIDIAN__NODE_INFO__INIT;
        nodes[i].id = (uint32_t)i + 1;
        nodes[i].addr = n->init_nodes[i].addr;
        nodes[i].zone = n->init_nodes[i].zone;
        nodes[i].region = n->init_nodes[i].region;
        pnodes[i] = &nodes[i];
    }
    groups[0] = (Meridian__GroupInfo)MERIDIAN__GROUP_INFO__INIT;
    groups[0].id = ND_META_GROUP;
    groups[0].kind = MERIDIAN__GROUP_KIND__META;
    groups[0].n_replicas = nn < ND_MAX_REPLICAS ? nn : ND_MAX_REPLICAS;
    groups[0].replicas = meta;
    /* ["", "\x02"): the cluster's records (system keys) and the SQL catalog (0x01...). */
    groups[0].has_start = groups[0].has_end = true;
    groups[0].start = (ProtobufCBinaryData){0};
    groups[0].end =
        (ProtobufCBinaryData){.len = ND_META_END_LEN, .data = (uint8_t *)(uintptr_t)ND_META_END};
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
        g->has_start = g->has_end = true;
        g->start = k == 0 ? groups[0].end : n->init_split[k - 1];
        g->end = k + 1 == n->init_data_groups ? (ProtobufCBinaryData){0} : n->init_split[k];
        pgroups[k + 1] = g;
    }
    return d;
}

/* Every node answered INFO: refuses the init if one did not, belongs to a cluster or speaks
 * another protocol version; else sends each its BOOTSTRAP. */
static void init_send_bootstraps(nd_node *n)
{
    for (size_t i = 0; i < n->ninit_nodes; i++) {
        const nd_init_node *e = &n->init_nodes[i];
        char msg[512];
        Meridian__ErrorCode code = MERIDIAN__ERROR_CODE__ERROR_UNSPECIFIED;
        if (!e->answered) {
            code = MERIDIAN__ERROR_CODE__UNAVAILABLE;
            snprintf(msg, sizeof msg, "node %s did not answer: %s", e->addr,
                     e->error[0] ? e->error : "no answer");
        } else if (e->initialized) {
            code = MERIDIAN__ERROR_CODE__EXISTS;
            snprintf(msg, sizeof msg, "node %s already belongs to a cluster: refusing to init",
                     e->addr);
        } else if (e->proto_version != MERIDIAN__PROTO_VERSION__PROTO_VERSION) {
            code = MERIDIAN__ERROR_CODE__INVALID;
            snprintf(msg, sizeof msg,
                     "node %s speaks protocol version %u, this one %d: refusing to init", e->addr,
                     e->proto_version, MERIDIAN__PROTO_VERSION__PROTO_VERSION);
        }
        if (code) {
            nd_reply_error(n, n->init_reply, code, msg);
            n->init_running = false;
            nd_cluster_init_free(n);
            return;
        }
    }
    pr_arena a;
    pr_arena_init(&a);
    Meridian__ClusterDescription *desc = cluster_description(n, &a);
    n->init_waiting = n->ninit_nodes;
    for (size_t i = 0; i < n->ninit_nodes; i++) {
        nd_init_node *e = &n->init_nodes[i];
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
            net_transport_request(n->tr, e->addr, ND_MSG_BOOTSTRAP, buf, (uint32_t)len, 10000,
                                  on_bootstrap_reply, c, NULL, &err) != MR_OK) {
            free(c);
            snprintf(e->error, sizeof e->error, "%s", mr_err_msg(&err));
            n->init_waiting--;
        }
        free(buf);
    }
    pr_arena_free(&a);
    if (n->init_waiting == 0)
        init_finish(n);
}

static void init_finish(nd_node *n)
{
    char msg[1024] = "";
    size_t off = 0;
    for (size_t i = 0; i < n->ninit_nodes; i++) {
        const nd_init_node *e = &n->init_nodes[i];
        if (!e->bootstrapped && off < sizeof msg)
            off += (size_t)snprintf(msg + off, sizeof msg - off, "%s%s: %s", off ? "; " : "",
                                    e->addr, e->error[0] ? e->error : "not bootstrapped");
    }
    if (msg[0]) {
        char full[1200];
        snprintf(full, sizeof full, "some nodes were not bootstrapped: %s", msg);
        nd_reply_error(n, n->init_reply, MERIDIAN__ERROR_CODE__INTERNAL, full);
    } else {
        Meridian__InitReply r = MERIDIAN__INIT_REPLY__INIT;
        Meridian__NodeInfo *nodes = calloc(n->ninit_nodes, sizeof *nodes);
        Meridian__NodeInfo **pnodes = calloc(n->ninit_nodes, sizeof *pnodes);
        if (nodes && pnodes) {
            for (size_t i = 0; i < n->ninit_nodes; i++) {
                nodes[i] = (Meridian__NodeInfo)MERIDIAN__NODE_INFO__INIT;
                nodes[i].id = (uint32_t)i + 1;
                nodes[i].addr = n->init_nodes[i].addr;
                nodes[i].zone = n->init_nodes[i].zone;
                nodes[i].region = n->init_nodes[i].region;
                pnodes[i] = &nodes[i];
            }
            r.n_nodes = n->ninit_nodes;
            r.nodes = pnodes;
        }
        r.cluster = n->cluster_id;
        nd_reply_body(n, n->init_reply, MERIDIAN__REPLY__BODY_INIT, &r.base);
        free(nodes);
        free(pnodes);
    }
    n->init_running = false;
    nd_cluster_init_free(n);
}

/* Default boundaries for N data groups: evenly over the digits and letters
 * ('0'..'z'), one character each up to 75 groups, two beyond. */
static int default_split(nd_node *n, int groups)
{
    const int span = 'z' + 1 - '0';
    for (int i = 1; i < groups; i++) {
        uint8_t *key = malloc(2);
        if (!key)
            return MR_ENOMEM;
        size_t len = 1;
        if (groups <= span) {
            key[0] = (uint8_t)('0' + i * span / groups);
        } else {
            long v = (long)i * span * span / groups;
            key[0] = (uint8_t)('0' + v / span);
            key[1] = (uint8_t)('0' + v % span);
            len = 2;
        }
        n->init_split[i - 1] = (ProtobufCBinaryData){.len = len, .data = key};
    }
    return MR_OK;
}

/* The data groups' boundaries of an INIT: the request's, or the default ones. */
static int init_boundaries(nd_node *n, const nd_init_req *rq)
{
    n->init_split = calloc((size_t)rq->data_groups, sizeof *n->init_split);
    if (!n->init_split)
        return MR_ENOMEM;
    if (!rq->nsplit)
        return default_split(n, rq->data_groups);
    for (size_t i = 0; i < rq->nsplit; i++) {
        uint8_t *k = malloc(rq->split_at[i].len);
        if (!k)
            return MR_ENOMEM;
        memcpy(k, rq->split_at[i].data, rq->split_at[i].len);
        n->init_split[i] = (ProtobufCBinaryData){.len = rq->split_at[i].len, .data = k};
    }
    return MR_OK;
}

/* Appends addr to the INIT's node list unless it is there already. */
static bool init_add_node(nd_node *n, const char *addr)
{
    for (size_t i = 0; i < n->ninit_nodes; i++)
        if (strcmp(n->init_nodes[i].addr, addr) == 0)
            return true;
    if (n->ninit_nodes >= PX_MAX_NODE_ID)
        return false;
    nd_init_node *e = &n->init_nodes[n->ninit_nodes++];
    memset(e, 0, sizeof *e);
    snprintf(e->addr, sizeof e->addr, "%s", addr);
    return true;
}

void nd_cluster_on_init(nd_node *n, const net_message *m)
{
    if (n->initialized) {
        char msg[160];
        snprintf(msg, sizeof msg, "cluster %s is already initialized", n->cluster_id);
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__EXISTS, msg);
    }
    if (n->init_running)
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__BUSY,
                              "an init is already running");
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    const Meridian__InitRequest *req =
        (const Meridian__InitRequest *)nd_request_decode(m, &a, &err);
    nd_init_req rq;
    if (!req || nd_valid_init(req, 5000, PX_MAX_NODES, &rq, &err) != MR_OK) {
        nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID, mr_err_msg(&err));
        pr_arena_free(&a);
        return;
    }
    nd_cluster_init_free(n);
    nd_txn_free_local(n);
    n->init_data_groups = rq.data_groups;
    n->init_replicas = rq.replicas;
    int brc = init_boundaries(n, &rq);
    pr_arena_free(&a);
    n->init_nodes = calloc(PX_MAX_NODE_ID, sizeof *n->init_nodes);
    if (brc != MR_OK || !n->init_nodes) {
        nd_cluster_init_free(n);
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__NO_MEMORY, "out of memory");
    }
    /* The node list: this node first, then the join list in order, without duplicates. */
    bool fits = init_add_node(n, n->advertise);
    if (n->join) {
        char *list = strdup(n->join), *save = NULL;
        for (char *p = list ? strtok_r(list, ",", &save) : NULL; p && fits;
             p = strtok_r(NULL, ",", &save))
            fits = init_add_node(n, p);
        free(list);
    }
    if (!fits) {
        nd_cluster_init_free(n);
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__INVALID,
                              "too many nodes in --join");
    }
    n->init_running = true;
    n->init_reply = m->reply_to;
    n->init_waiting = n->ninit_nodes;
    Meridian__Empty empty = MERIDIAN__EMPTY__INIT;
    uint8_t *ebuf = NULL;
    size_t elen = 0;
    if (pr_encode(&empty.base, 0, &ebuf, &elen, &err) != MR_OK)
        ebuf = NULL;
    for (size_t i = 0; i < n->ninit_nodes; i++) {
        nd_init_node *e = &n->init_nodes[i];
        init_call *c = malloc(sizeof *c);
        if (c && ebuf)
            *c = (init_call){n, i};
        else
            mr_errf(&err, MR_ENOMEM, "out of memory");
        if (!c || !ebuf ||
            net_transport_request(n->tr, e->addr, ND_MSG_INFO, ebuf, (uint32_t)elen, 5000,
                                  on_info_reply, c, NULL, &err) != MR_OK) {
            free(c);
            snprintf(e->error, sizeof e->error, "%s", mr_err_msg(&err));
            if (--n->init_waiting == 0)
                init_send_bootstraps(n);
        }
    }
    free(ebuf);
}

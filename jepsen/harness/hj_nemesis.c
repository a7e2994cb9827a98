/* The nemesis thread: seeded fault schedule, injection and healing. See hj_nemesis.h. */
#include "jepsen/harness/hj_nemesis.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "tablet/node/nd.h"

static const char *const kind_names[HJ_NEM_KINDS] = {"kill",        "pause", "partition",   "clock",
                                                     "fast-leader", "split", "lying-leader"};

struct hj_nemesis {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool finish, exit; /* guarded by mu */
    hj_cluster *c;
    hj_run *r;
    hj_nemesis_opts o;
    hj_rng rng;
    net_tls_ctx *tls; /* this thread's own client context */
    int counts[HJ_NEM_KINDS];
    int crashes;
    /* the fault in progress, for healing */
    int kind; /* bit index, -1: none */
    int nodes[HJ_MAX_NODES];
    int nnodes;
};

const char *hj_nemesis_kind_name(int bit)
{
    return bit >= 0 && bit < HJ_NEM_KINDS ? kind_names[bit] : "?";
}

int hj_nemesis_parse(const char *list, unsigned *kinds, mr_err *err)
{
    *kinds = 0;
    if (strcmp(list, "none") == 0 || !*list)
        return 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int b = 0; b < HJ_NEM_KINDS; b++)
            if (strcmp(t, kind_names[b]) == 0)
                found = b;
        if (found < 0) {
            mr_errf(err, MR_EINVAL,
                    "unknown nemesis '%s' (kill, pause, partition, clock, fast-leader, split, "
                    "lying-leader, none)",
                    t);
            return -1;
        }
        *kinds |= 1u << found;
    }
    return 0;
}

/* Waits up to ns or until finish is asked; true when asked. */
static bool wait_or_finish(hj_nemesis *n, int64_t ns)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    int64_t t = (int64_t)until.tv_sec * MR_NS_PER_S + until.tv_nsec + ns;
    until.tv_sec = (time_t)(t / MR_NS_PER_S);
    until.tv_nsec = (long)(t % MR_NS_PER_S);
    pthread_mutex_lock(&n->mu);
    while (!n->finish && !hj_interrupted) {
        if (pthread_cond_timedwait(&n->cv, &n->mu, &until) == ETIMEDOUT)
            break;
    }
    bool f = n->finish || hj_interrupted;
    pthread_mutex_unlock(&n->mu);
    return f;
}

/* The fault RPC to node i, retried a few times (a node may be busy restarting). */
static int fault(hj_nemesis *n, int i, const char *json)
{
    mr_err err;
    for (int attempt = 0; attempt < 3; attempt++) {
        json_t *r = NULL;
        int rc = hj_rpc(n->tls, n->c->nodes[i].addr, ND_MSG_FAULT, json, 3000, &r, &err);
        bool ok = rc == MR_OK && json_is_true(json_object_get(r, "ok"));
        if (rc == MR_OK && !ok)
            mr_errf(&err, MR_EPROTO, "refused: %s",
                    json_string_value(json_object_get(r, "message")) ?: "?");
        json_decref(r);
        if (ok)
            return 0;
    }
    MR_WARN("jepsen", "fault RPC to node %d (%s) failed: %s", i + 1, json, mr_err_msg(&err));
    return -1;
}

static json_t *ids_json(const int *idx, int n)
{
    json_t *a = json_array();
    for (int k = 0; k < n; k++)
        json_array_append_new(a, json_integer(idx[k] + 1));
    return a;
}

static void shuffle(hj_nemesis *n, int *a, int len)
{
    for (int i = len - 1; i > 0; i--) {
        int j = (int)hj_rng_below(&n->rng, (uint64_t)i + 1);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Cuts each node k from the nodes cut[k][0..ncut[k]) (netns: k's namespace drops their
 * packets; else the fault RPC tells k to drop their Paxos frames). */
static int apply_cuts(hj_nemesis *n, int cut[][HJ_MAX_NODES], const int *ncut, int total)
{
    int errors = 0;
    for (int k = 0; k < total; k++) {
        if (n->c->netns) {
            errors += hj_net_cut(n->c, k, cut[k], ncut[k]) != 0;
            continue;
        }
        char json[256];
        size_t off = (size_t)snprintf(json, sizeof json, "{\"set_partition\":true,\"partition\":[");
        for (int m = 0; m < ncut[k]; m++)
            off += (size_t)snprintf(json + off, sizeof json - off, "%s%d", m ? "," : "",
                                    cut[k][m] + 1);
        snprintf(json + off, sizeof json - off, "]}");
        errors += fault(n, k, json) != 0;
    }
    return errors;
}

/* Cuts nodes order[0..split) from order[split..total). */
static int apply_partition(hj_nemesis *n, const int *order, int split, int total)
{
    int cut[HJ_MAX_NODES][HJ_MAX_NODES], ncut[HJ_MAX_NODES] = {0};
    for (int k = 0; k < total; k++)
        for (int m = 0; m < total; m++)
            if ((k < split) != (m < split))
                cut[order[k]][ncut[order[k]]++] = order[m];
    return apply_cuts(n, cut, ncut, total);
}

/* Majorities ring: the nodes in a random ring, each reaching only itself and its two
 * neighbours, so every node sees a majority (of 4 or more) but no two see the same one. */
static int apply_ring(hj_nemesis *n, const int *order, int total)
{
    int cut[HJ_MAX_NODES][HJ_MAX_NODES], ncut[HJ_MAX_NODES] = {0};
    for (int k = 0; k < total; k++)
        for (int m = 0; m < total; m++) {
            int d = k > m ? k - m : m - k;
            if (d > 1 && d < total - 1)
                cut[order[k]][ncut[order[k]]++] = order[m];
        }
    return apply_cuts(n, cut, ncut, total);
}

/* Every group's leader (node index, -1: none known); the number of groups. */
static int leaders(hj_nemesis *n, int *leader)
{
    hj_cluster *c = n->c;
    int ng = c->groups + 2 < HJ_MAX_GROUPS + 2 ? c->groups + 2 : HJ_MAX_GROUPS + 2;
    for (int g = 0; g < ng; g++)
        leader[g] = -1;
    for (int i = 0; i < c->n; i++) {
        mr_err err;
        hj_node_leads(c, n->tls, i, leader, ng, &err);
    }
    return ng;
}

/* Before a fault, for the per-group availability (jepsen/avail.h): every group's leader (node
 * index, -1: none known) and replicas (a mask of node indexes), from each node's status. */
typedef struct survey {
    int ng;
    int leader[HJ_MAX_GROUPS + 2];
    uint64_t replicas[HJ_MAX_GROUPS + 2];
} survey;

static void take_survey(hj_nemesis *n, survey *s)
{
    hj_cluster *c = n->c;
    s->ng = c->groups + 2 < HJ_MAX_GROUPS + 2 ? c->groups + 2 : HJ_MAX_GROUPS + 2;
    for (int g = 0; g < s->ng; g++) {
        s->leader[g] = -1;
        s->replicas[g] = 0;
    }
    for (int i = 0; i < c->n; i++) {
        json_t *st = NULL;
        mr_err err;
        if (hj_rpc(n->tls, c->nodes[i].addr, ND_MSG_STATUS, "{}", 1000, &st, &err) != MR_OK)
            continue;
        size_t k, r;
        json_t *g, *rep;
        json_array_foreach(json_object_get(st, "groups"), k, g)
        {
            json_int_t id = json_integer_value(json_object_get(g, "id"));
            if (id < 0 || id >= s->ng)
                continue;
            const char *state = json_string_value(json_object_get(g, "state"));
            if (state && strcmp(state, "leader") == 0 &&
                json_integer_value(json_object_get(g, "lease_left_ns")) > 0)
                s->leader[id] = i;
            json_array_foreach(json_object_get(g, "replicas"), r, rep)
            {
                json_int_t node = json_integer_value(rep); /* node ids are index + 1 */
                if (node >= 1 && node <= c->n)
                    s->replicas[id] |= 1ull << (node - 1);
            }
        }
        json_decref(st);
    }
}

/* Records the survey in the fault's start event: "leaders" {group: node id},
 * "affected_groups", the data groups whose leader cannot reach a majority of the group's
 * replicas once the fault is in while another replica can (a new leader is to be elected),
 * and "unavailable_groups", those where no replica can (down until the heal). reach[i]: the
 * nodes node i reaches, itself included; a dead or paused node reaches nothing. */
static void record_affected(const survey *s, const uint64_t *reach, json_t *v)
{
    json_t *leaders = json_object(), *affected = json_array(), *unavailable = json_array();
    for (int g = 1; g < s->ng; g++) {
        int l = s->leader[g];
        int total = __builtin_popcountll(s->replicas[g]);
        if (g < 2 || total == 0)
            continue;
        /* Can any replica still reach a majority of the group's replicas? */
        bool majority = false;
        for (int i = 0; i < HJ_MAX_NODES && i < 64; i++)
            if ((s->replicas[g] >> i) & 1)
                majority |= 2 * __builtin_popcountll(s->replicas[g] & reach[i]) > total;
        if (!majority) {
            json_array_append_new(unavailable, json_integer(g));
        } else if (l >= 0 && 2 * __builtin_popcountll(s->replicas[g] & reach[l]) <= total) {
            json_array_append_new(affected, json_integer(g));
        }
    }
    for (int g = 1; g < s->ng; g++)
        if (s->leader[g] >= 0) {
            char id[16];
            snprintf(id, sizeof id, "%d", g);
            json_object_set_new(leaders, id, json_integer(s->leader[g] + 1));
        }
    json_object_set_new(v, "leaders", leaders);
    json_object_set_new(v, "affected_groups", affected);
    json_object_set_new(v, "unavailable_groups", unavailable);
}

/* The node leading a random data group, or -1. */
static int some_leader(hj_nemesis *n, int *group)
{
    int leader[HJ_MAX_GROUPS + 2];
    int ng = leaders(n, leader);
    *group = 2 + (int)hj_rng_below(&n->rng, (uint64_t)(ng - 2));
    return leader[*group];
}

/* The leader of the first data group, or -1: libmeridian makes the lowest group a
 * transaction writes its coordinator, so a lying clock there stamps the most commits. */
static int first_leader(hj_nemesis *n, int *group)
{
    int leader[HJ_MAX_GROUPS + 2];
    leaders(n, leader);
    *group = 2;
    return leader[2];
}

/* The fast-leader fault needs honest leaders beside the fast one: when one node
 * leads every data group (a chance of one in nine with three nodes and three
 * groups), its clock is declared unhealthy for a moment (fault RPC), which
 * makes it hand its leases over, until the groups are led from two nodes or
 * more. Returns the node that was moved away from, or -1. */
static int spread_leaders(hj_nemesis *n)
{
    hj_cluster *c = n->c;
    int leader[HJ_MAX_GROUPS + 2];
    int moved = -1;
    for (int attempt = 0; attempt < 4 && c->n > 1 && c->groups > 1; attempt++) {
        int ng = leaders(n, leader);
        int first = leader[2];
        bool one = first >= 0;
        for (int g = 3; g < ng; g++)
            one &= leader[g] == first;
        if (!one)
            break;
        moved = first;
        fault(n, first, "{\"clock_unhealthy\":true}");
        for (int waited = 0; waited < 30; waited++) { /* until it gave up its leases */
            wait_or_finish(n, 200 * MR_NS_PER_MS);
            leaders(n, leader);
            bool gone = true;
            for (int g = 2; g < ng; g++)
                gone &= leader[g] != first;
            if (gone)
                break;
        }
        fault(n, first, "{\"clock_unhealthy\":false}");
        for (int waited = 0; waited < 30; waited++) { /* until every group leads again */
            wait_or_finish(n, 200 * MR_NS_PER_MS);
            leaders(n, leader);
            bool all = true;
            for (int g = 2; g < ng; g++)
                all &= leader[g] >= 0;
            if (all)
                break;
        }
    }
    return moved;
}

/* Splits the tablet holding a random workload key at that key: each node is asked
 * (ND_MSG_SPLIT_AT) until the leader of the key's group takes it. */
static void split_tablet(hj_nemesis *n, json_t *v)
{
    hj_cluster *c = n->c;
    int ids = n->o.split_ids > 1 ? n->o.split_ids : 2;
    long long id = 1 + (long long)hj_rng_below(&n->rng, (uint64_t)ids - 1);
    int groups = c->groups > 0 ? c->groups : 1;
    char key[96], json[256];
    if (n->o.split_key) {
        if (n->o.split_key(id, json, sizeof json, key, sizeof key) != 0) {
            json_object_set_new(v, "outcome", json_string("no key to split at"));
            return;
        }
    } else {
        snprintf(key, sizeof key, "r%02d/%s/%lld", (int)(id % groups), n->o.split_kind ?: "k", id);
        snprintf(json, sizeof json, "{\"key\":\"%s\"}", key);
    }
    json_object_set_new(v, "key", json_string(key));
    const char *outcome = "no leader took it";
    for (int attempt = 0; attempt < 3 * c->n; attempt++) {
        int i = attempt % c->n;
        json_t *r = NULL;
        mr_err err;
        if (hj_rpc(n->tls, c->nodes[i].addr, ND_MSG_SPLIT_AT, json, 3000, &r, &err) != MR_OK)
            continue;
        const char *e = json_string_value(json_object_get(r, "error"));
        if (json_is_true(json_object_get(r, "ok"))) {
            json_object_set(v, "group", json_object_get(r, "group"));
            outcome = "splitting";
        } else if (e && strcmp(e, "boundary") == 0) {
            outcome = "already a boundary";
        } else if (e && strcmp(e, "busy") == 0) {
            outcome = "busy";
        }
        bool done = !e || strcmp(e, "not_leader") != 0;
        json_decref(r);
        if (done)
            break;
        if (i == c->n - 1)
            wait_or_finish(n, 300 * MR_NS_PER_MS); /* no leader yet: a moment */
    }
    json_object_set_new(v, "outcome", json_string(outcome));
}

/* How many data groups the range map at any node has (-1: no answer). */
static int count_groups(hj_nemesis *n)
{
    for (int i = 0; i < n->c->n; i++) {
        json_t *r = NULL;
        mr_err err;
        if (hj_rpc(n->tls, n->c->nodes[i].addr, ND_MSG_RANGES, "{}", 3000, &r, &err) != MR_OK)
            continue;
        int k = 0;
        size_t j;
        json_t *e;
        json_array_foreach(json_object_get(r, "ranges"), j, e) /* all but the meta group's */
            k += json_integer_value(json_object_get(e, "group")) != 1;
        json_decref(r);
        if (k > 0)
            return k;
    }
    return -1;
}

static void start_fault(hj_nemesis *n, int kind)
{
    hj_cluster *c = n->c;
    int order[HJ_MAX_NODES];
    for (int i = 0; i < c->n; i++)
        order[i] = i;
    shuffle(n, order, c->n);
    json_t *v = json_object();
    n->kind = kind;
    n->nnodes = 0;
    /* Who leads what before the fault, and whom each node reaches once it is in (all by
     * default: a clock offset within the bound or a split cuts nobody off). */
    survey sv = {0};
    bool surveyed = (1u << kind) &
                    (HJ_NEM_KILL | HJ_NEM_PAUSE | HJ_NEM_PARTITION | HJ_NEM_CLOCK | HJ_NEM_SPLIT);
    uint64_t reach[HJ_MAX_NODES], down = 0; /* down: killed or paused */
    for (int i = 0; i < c->n; i++)
        reach[i] = (c->n < 64 ? 1ull << c->n : 0) - 1;
    if (surveyed)
        take_survey(n, &sv);
    /* The start event is recorded once the fault is in (its value says how); injecting takes
     * a moment (nftables in every namespace), so when it began is recorded too. */
    json_object_set_new(v, "inject_ns", json_integer(hj_elapsed(n->r)));
    switch (1u << kind) {
    case HJ_NEM_KILL: {
        int k = c->n >= 3 && hj_rng_below(&n->rng, 4) == 0 ? 2 : 1;
        for (int m = 0; m < k; m++) {
            n->nodes[n->nnodes++] = order[m];
            down |= 1ull << order[m];
            hj_node_kill(c, order[m]);
        }
        json_object_set_new(v, "nodes", ids_json(n->nodes, n->nnodes));
        break;
    }
    case HJ_NEM_PAUSE:
        n->nodes[n->nnodes++] = order[0];
        down |= 1ull << order[0];
        hj_node_pause(c, order[0], true);
        json_object_set_new(v, "nodes", ids_json(n->nodes, 1));
        break;
    case HJ_NEM_PARTITION: {
        /* random halves, one random node alone, a data group's leader alone, or (4 nodes
         * or more) a majorities ring */
        int mode = (int)hj_rng_below(&n->rng, c->n >= 4 ? 4 : 3);
        static const char *const modes[] = {"random-halves", "isolate-one", "isolate-leader",
                                            "majorities-ring"};
        int errors, split = mode == 0 ? c->n / 2 : 1;
        if (split < 1)
            split = 1;
        if (mode == 2) {
            int g, l = some_leader(n, &g);
            for (int i = 0; l >= 0 && i < c->n; i++)
                if (order[i] == l) { /* the leader first: it is the side cut off */
                    order[i] = order[0];
                    order[0] = l;
                }
            json_object_set_new(v, "group", json_integer(g));
        }
        for (int k = 0; k < c->n; k++) {
            reach[order[k]] = 0;
            for (int m = 0; m < c->n; m++) {
                int d = k > m ? k - m : m - k;
                bool same = mode == 3 ? d <= 1 || d == c->n - 1 : (k < split) == (m < split);
                if (same)
                    reach[order[k]] |= 1ull << order[m];
            }
        }
        if (mode == 3) {
            errors = apply_ring(n, order, c->n);
            json_object_set_new(v, "ring", ids_json(order, c->n));
        } else {
            errors = apply_partition(n, order, split, c->n);
            json_t *sides = json_array();
            json_array_append_new(sides, ids_json(order, split));
            json_array_append_new(sides, ids_json(order + split, c->n - split));
            json_object_set_new(v, "sides", sides);
        }
        json_object_set_new(v, "mode", json_string(modes[mode]));
        json_object_set_new(v, "by", json_string(c->netns ? "nftables" : "fault-rpc"));
        if (errors)
            json_object_set_new(v, "rpc_errors", json_integer(errors));
        break;
    }
    case HJ_NEM_CLOCK: {
        int k = 1 + (int)hj_rng_below(&n->rng, (uint64_t)c->n);
        json_t *offs = json_object();
        for (int m = 0; m < k; m++) {
            int64_t off = hj_rng_range(&n->rng, -c->epsilon_ns, c->epsilon_ns);
            char json[96], id[16];
            snprintf(json, sizeof json, "{\"clock_offset_ns\":%lld}", (long long)off);
            snprintf(id, sizeof id, "%d", order[m] + 1);
            if (fault(n, order[m], json) == 0)
                json_object_set_new(offs, id, json_integer(off));
            n->nodes[n->nnodes++] = order[m];
        }
        json_object_set_new(v, "offsets_ns", offs);
        json_object_set_new(v, "epsilon_ns", json_integer(c->epsilon_ns));
        break;
    }
    case HJ_NEM_FAST_LEADER:
    case HJ_NEM_LYING_LEADER: {
        /* The leader of one random data group: the other groups' leaders, where they live on
         * other nodes, stay honest, so a read-only transaction may take its timestamp from an
         * honest leader and then read the fast one's group. */
        int spread = spread_leaders(n);
        if (spread >= 0)
            json_object_set_new(v, "moved_leases_from", json_integer(spread + 1));
        int g, l = (1u << kind) == HJ_NEM_FAST_LEADER ? some_leader(n, &g) : first_leader(n, &g);
        int64_t off =
            (1u << kind) == HJ_NEM_FAST_LEADER ? c->epsilon_ns * 95 / 100 : c->epsilon_ns * 16;
        json_t *offs = json_object();
        if (l >= 0) {
            char json[96], id[16];
            snprintf(json, sizeof json, "{\"clock_offset_ns\":%lld}", (long long)off);
            snprintf(id, sizeof id, "%d", l + 1);
            if (fault(n, l, json) == 0)
                json_object_set_new(offs, id, json_integer(off));
            n->nodes[n->nnodes++] = l;
        }
        json_object_set_new(v, "group", json_integer(g));
        json_object_set_new(v, "offsets_ns", offs);
        json_object_set_new(v, "epsilon_ns", json_integer(c->epsilon_ns));
        break;
    }
    case HJ_NEM_SPLIT:
        split_tablet(n, v);
        break;
    }
    for (int i = 0; i < c->n; i++)
        reach[i] = (down >> i) & 1 ? 0 : reach[i] & ~down;
    if (surveyed)
        record_affected(&sv, reach, v);
    n->counts[kind]++;
    char f[32];
    snprintf(f, sizeof f, "start-%s", kind_names[kind]);
    hj_record(n->r, JP_NEMESIS, JP_INFO, f, NULL, v);
}

static void heal_fault(hj_nemesis *n)
{
    if (n->kind < 0)
        return;
    hj_cluster *c = n->c;
    json_t *v = json_object();
    switch (1u << n->kind) {
    case HJ_NEM_KILL:
        for (int m = 0; m < n->nnodes; m++) {
            mr_err err;
            if (hj_node_start(c, n->nodes[m], &err) != MR_OK)
                MR_ERROR("jepsen", "%s", mr_err_msg(&err));
        }
        json_object_set_new(v, "restarted", ids_json(n->nodes, n->nnodes));
        break;
    case HJ_NEM_PAUSE:
        for (int m = 0; m < n->nnodes; m++)
            hj_node_pause(c, n->nodes[m], false);
        json_object_set_new(v, "resumed", ids_json(n->nodes, n->nnodes));
        break;
    case HJ_NEM_PARTITION: {
        int errors = 0;
        for (int i = 0; i < c->n; i++)
            errors += (c->netns ? hj_net_cut(c, i, NULL, 0)
                                : fault(n, i, "{\"set_partition\":true}")) != 0;
        json_object_set_new(v, "healed", json_true());
        if (errors)
            json_object_set_new(v, "rpc_errors", json_integer(errors));
        break;
    }
    case HJ_NEM_CLOCK:
    case HJ_NEM_FAST_LEADER:
    case HJ_NEM_LYING_LEADER:
        for (int m = 0; m < n->nnodes; m++)
            fault(n, n->nodes[m], "{\"clock_offset_ns\":0}");
        json_object_set_new(v, "reset", ids_json(n->nodes, n->nnodes));
        break;
    case HJ_NEM_SPLIT:
        json_object_set_new(v, "data_groups", json_integer(count_groups(n)));
        break;
    }
    char f[32];
    snprintf(f, sizeof f, "stop-%s", kind_names[n->kind]);
    hj_record(n->r, JP_NEMESIS, JP_INFO, f, NULL, v);
    n->kind = -1;
}

/* Nodes that exited without the nemesis killing them are a finding: record and restart. */
static void check_crashes(hj_nemesis *n)
{
    for (int i = 0; i < n->c->n; i++) {
        if (n->kind >= 0 && (1u << n->kind) == HJ_NEM_KILL) {
            bool killed = false;
            for (int m = 0; m < n->nnodes; m++)
                killed |= n->nodes[m] == i;
            if (killed)
                continue;
        }
        if (!hj_node_alive(n->c, i)) {
            n->crashes++;
            hj_record(n->r, JP_NEMESIS, JP_INFO, "node-crashed", NULL,
                      json_pack("{s:i, s:i}", "node", i + 1, "status", n->c->nodes[i].last_status));
            mr_err err;
            if (hj_node_start(n->c, i, &err) != MR_OK)
                MR_ERROR("jepsen", "%s", mr_err_msg(&err));
        }
    }
}

static void heal_all(hj_nemesis *n)
{
    heal_fault(n);
    check_crashes(n);
    hj_cluster *c = n->c;
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].paused)
            hj_node_pause(c, i, false);
    if (c->netns && (n->o.kinds & HJ_NEM_PARTITION))
        for (int i = 0; i < c->n; i++)
            hj_net_cut(c, i, NULL, 0);
    if (n->o.kinds & (HJ_NEM_PARTITION | HJ_NEM_CLOCK | HJ_NEM_FAST_LEADER | HJ_NEM_LYING_LEADER))
        for (int i = 0; i < c->n; i++)
            fault(n, i, "{\"set_partition\":true, \"clock_offset_ns\":0}");
    hj_record(n->r, JP_NEMESIS, JP_INFO, "heal-all", NULL, NULL);
}

static void *nemesis_main(void *arg)
{
    hj_nemesis *n = arg;
    int kinds[HJ_NEM_KINDS], nk = 0;
    for (int b = 0; b < HJ_NEM_KINDS; b++)
        if (n->o.kinds & (1u << b))
            kinds[nk++] = b;
    /* Rounds: every enabled kind once per round, in a seeded random order, so that a short
     * run still sees each of them. */
    int round[HJ_NEM_KINDS], pos = nk;
    while (nk > 0) {
        if (wait_or_finish(n, hj_rng_range(&n->rng, n->o.rest_min_ns, n->o.rest_max_ns)))
            break;
        pthread_mutex_lock(&n->mu);
        bool late = n->finish; /* asked while the rest ran out: inject nothing more */
        pthread_mutex_unlock(&n->mu);
        if (late)
            break;
        check_crashes(n);
        if (pos == nk) {
            memcpy(round, kinds, sizeof round);
            shuffle(n, round, nk);
            pos = 0;
        }
        start_fault(n, round[pos++]);
        bool fin = wait_or_finish(n, hj_rng_range(&n->rng, n->o.hold_min_ns, n->o.hold_max_ns));
        heal_fault(n);
        if (fin)
            break;
    }
    if (nk == 0)
        while (!wait_or_finish(n, MR_NS_PER_S)) {
        }
    pthread_mutex_lock(&n->mu);
    bool torn_down = n->exit; /* freed without finish: the cluster is gone, heal nothing */
    pthread_mutex_unlock(&n->mu);
    if (!torn_down)
        heal_all(n);
    if (n->o.on_healed)
        n->o.on_healed(n->o.ud);
    pthread_mutex_lock(&n->mu);
    while (!n->exit)
        pthread_cond_wait(&n->cv, &n->mu);
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

int hj_nemesis_start(hj_cluster *c, hj_run *r, const hj_nemesis_opts *o, hj_nemesis **out,
                     mr_err *err)
{
    hj_nemesis *n = calloc(1, sizeof *n);
    if (!n)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    n->c = c;
    n->r = r;
    n->o = *o;
    n->rng.s = o->seed;
    n->kind = -1;
    int rc = net_tls_ctx_load_dir(c->certs, "client.root", &n->tls, err);
    if (rc != MR_OK) {
        free(n);
        return rc;
    }
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->cv, NULL);
    if (pthread_create(&n->th, NULL, nemesis_main, n) != 0) {
        net_tls_ctx_free(n->tls);
        pthread_mutex_destroy(&n->mu);
        pthread_cond_destroy(&n->cv);
        free(n);
        return mr_errf(err, MR_EIO, "cannot start the nemesis thread");
    }
    *out = n;
    return MR_OK;
}

void hj_nemesis_finish(hj_nemesis *n)
{
    pthread_mutex_lock(&n->mu);
    n->finish = true;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

int hj_nemesis_count(const hj_nemesis *n, int bit)
{
    return n->counts[bit];
}

int hj_nemesis_crashes(const hj_nemesis *n)
{
    return n->crashes;
}

void hj_nemesis_free(hj_nemesis *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->finish = n->exit = true;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
    pthread_join(n->th, NULL);
    net_tls_ctx_free(n->tls);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->cv);
    free(n);
}

/* Status and HTTP: the status reply, /metrics and /healthz. */
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

/* The status document (StatusReply.document, what `meridian status --json` prints): JSON for a
 * person, so it may grow without a schema change.
 *   initialized, cluster, self, addr, zone, region
 *   clock: {status, epsilon_ns}             this node's TrueTime clock
 *   nodes: [{id, addr, zone, region, up, clock, epsilon_ns}]   as this node sees them
 *   groups: [{id, replicas, state, leader, lease_left_ns, timers {lease_ns, heartbeat_ns,
 *             election_ns, election_jitter_ns}, commit, applied, count, last_ts,
 *             hash, prepared, txn: {queries, late_aborts, pushes, pushed, push_waits, notices,
 * wait_timeouts, deadline_aborts} (counters since start, nd_int.h nd_group_txn), decisions,
 * forgotten, system_versions, system_bytes, pages, free_pages, page_size, and for data groups
 * start, end (text, unprintable bytes as \xNN), start_hex, end_hex (exact), bytes, versions}]
 *   test_switches: [names]                  the test switches this node honours (nd_test.h) */
json_t *nd_status_json(nd_node *n)
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
        const px_options *po = px_node_options(g->px);
        json_object_set_new(
            ge, "timers",
            json_pack("{s:I, s:I, s:I, s:I}", "lease_ns", (json_int_t)po->lease_ns, "heartbeat_ns",
                      (json_int_t)po->heartbeat_ns, "election_ns", (json_int_t)po->election_ns,
                      "election_jitter_ns",
                      (json_int_t)(po->jitter_ns ? po->jitter_ns : po->election_ns)));
        json_object_set_new(ge, "prepared", json_integer((json_int_t)nd_txn_prepared_count(g)));
        json_object_set_new(
            ge, "txn",
            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "queries",
                      (json_int_t)g->txn.queries, "late_aborts", (json_int_t)g->txn.late_aborts,
                      "pushes", (json_int_t)g->txn.pushes, "pushed", (json_int_t)g->txn.pushed,
                      "push_waits", (json_int_t)g->txn.push_waits, "notices",
                      (json_int_t)g->txn.notices, "wait_timeouts", (json_int_t)g->txn.wait_timeouts,
                      "deadline_aborts", (json_int_t)g->txn.deadline_aborts));
        nd_txn_store_json(g, ge);
        if (g->has_range) {
            /* Keys as the person reading status best sees them: text, bytes outside printable
             * ASCII as \xNN; and exactly, in hex. */
            char text[2 * ND_KEY_MAX + 8];
            mr_bytes_text(g->range_start.p, g->range_start.len, text, sizeof text);
            json_object_set_new(ge, "start", json_string(text));
            mr_bytes_text(g->range_end.p, g->range_end.len, text, sizeof text);
            json_object_set_new(ge, "end", json_string(text));
            json_object_set_new(ge, "start_hex", nd_key_json(g->range_start.p, g->range_start.len));
            json_object_set_new(ge, "end_hex", nd_key_json(g->range_end.p, g->range_end.len));
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

void nd_status_on_request(nd_node *n, const net_message *m)
{
    json_t *doc = nd_status_json(n);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text)
        return nd_reply_error(n, m->reply_to, MERIDIAN__ERROR_CODE__NO_MEMORY, "out of memory");
    Meridian__StatusReply r = MERIDIAN__STATUS_REPLY__INIT;
    r.initialized = n->initialized;
    r.document = text;
    nd_reply_body(n, m->reply_to, MERIDIAN__REPLY__BODY_STATUS, &r.base);
    free(text);
}

int nd_status_http(void *ud, const char *path, nd_text *t, const char **ctype)
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

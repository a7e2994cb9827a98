/* Opening and closing a node: its configuration, resources and teardown (see nd.h). */
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

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

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
        nd_free_deferred(n->groups[i]);
        nd_bytes_free(&n->groups[i]->range_start);
        nd_bytes_free(&n->groups[i]->range_end);
        nd_bytes_free(&n->groups[i]->split.key);
        free(n->groups[i]);
    }
    free(n->groups);
    nd_range_free(n);
    for (int i = 0; i <= PX_MAX_NODE_ID; i++)
        free(n->out[i].buf);
    free(n->pending);
    nd_cluster_init_free(n);
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
        nd_flush(n);
    }
    /* Fail proposals still waiting. */
    for (size_t i = 0; i < n->npending; i++)
        nd_reply_error(n, n->pending[i].reply_to, MERIDIAN__ERROR_CODE__UNAVAILABLE,
                       "node is shutting down");
    n->npending = 0;
    nd_http_stop(n->http);
    n->http = NULL;
    n->handles_open = 3;
    uv_close((uv_handle_t *)&n->tick, on_handle_closed);
    uv_close((uv_handle_t *)&n->prep, on_handle_closed);
    uv_close((uv_handle_t *)&n->check, on_handle_closed);
    net_transport_close(n->tr, on_transport_closed, n);
}

/* nd_open, step 1: the settings, from cfg and the test switches. */
static void open_settings(nd_node *n, uv_loop_t *loop, const nd_config *cfg,
                          const nd_test_switches *test)
{
    n->test = *test;
    if (test->reply_max)
        nd_reply_set_max(test->reply_max);
    const char *sw[16];
    size_t nsw = nd_test_switches_names(test, sw, 16);
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
}

/* nd_open, step 2: the data directory, the clock, the log store, the certificates. */
static int open_resources(nd_node *n, const nd_config *cfg, mr_err *err)
{
    if (mkdir(n->data_dir, 0750) != 0 && errno != EEXIST)
        return mr_errf(err, MR_EIO, "create data directory %s: %s", n->data_dir, strerror(errno));
    tt_config tcfg;
    tt_config_default(&tcfg);
    if (cfg->clock_cap_ns > 0)
        tcfg.cap_ns = cfg->clock_cap_ns;
    int rc = tt_clock_open(n->clock_spec, &tcfg, &n->clock, err);
    if (rc)
        return rc;
    char path[4200];
    snprintf(path, sizeof path, "%s/paxos.db", n->data_dir);
    rc = ls_open(path, NULL, &n->store, err);
    if (rc) {
        mr_err_wrap(err, "open %s", path);
        return rc;
    }
    if (!cfg->insecure) {
        rc = net_tls_ctx_load_dir(cfg->certs_dir, "node", &n->tls, err);
        if (rc) {
            mr_err_wrap(err, "load certificates from %s", cfg->certs_dir);
            return rc;
        }
    }
    return MR_OK;
}

/* nd_open, step 3: DATA/cluster.json, if the node was initialized (its replicas start). */
static int open_cluster(nd_node *n, mr_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/cluster.json", n->data_dir);
    json_error_t je;
    json_t *desc = json_load_file(path, 0, &je);
    if (desc) {
        int rc = nd_cluster_load(n, desc, err);
        json_decref(desc);
        if (rc)
            mr_err_wrap(err, "%s", path);
        return rc;
    }
    if (access(path, F_OK) == 0)
        return mr_errf(err, MR_ECORRUPT, "%s: %s (line %d)", path, je.text, je.line);
    return MR_OK;
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
    open_settings(n, loop, cfg, &test);
    rc = open_resources(n, cfg, err);
    if (rc)
        goto fail;
    net_transport_config tc = {.loop = loop,
                               .tls = n->tls,
                               .listen = n->listen,
                               .advertise = n->advertise,
                               .on_message = nd_dispatch,
                               .ud = n};
    rc = net_transport_new(&tc, &n->tr, err);
    if (rc)
        goto fail;
    rc = open_cluster(n, err);
    if (rc == MR_OK && cfg->http)
        rc = nd_http_start(loop, cfg->http, nd_status_http, n, &n->http, err);
    if (rc) {
        net_transport_close(n->tr, NULL, NULL);
        n->tr = NULL;
        goto fail;
    }
    nd_loop_start(n, loop);
    *out = n;
    return MR_OK;
fail:
    free_node(n);
    return rc;
}

/* The cluster launcher (see cluster.h). */
#include "launch/cluster.h"

#include "proto/pr_json.h"
#include "proto/pr_msg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "launch/proc.h"
#include "net/oneshot.h"
#include "tablet/node/nd.h"

extern char **environ;

static int node_no(const lc_cluster *c, int i)
{
    return c->o.one_based ? i + 1 : i;
}

static bool stopped(const lc_cluster *c)
{
    return c->o.stop && *c->o.stop;
}

/* ---- certificates ---- */

static int run_meridian(lc_cluster *c, char *const argv[], int timeout_ms, const char *what,
                        mr_err *err)
{
    int rc = proc_run_logged(argv, c->setup_log, timeout_ms, NULL, c->o.stop);
    if (rc != 0)
        return mr_errf(err, MR_EIO, "meridian %s failed (status %d); see %s", what, rc,
                       c->setup_log);
    return MR_OK;
}

static int cert(lc_cluster *c, const char *what, const char *opt, const char *arg, mr_err *err)
{
    char *argv[] = {c->bin,   "cert",      (char *)what, "--certs-dir",
                    c->certs, (char *)opt, (char *)arg,  NULL};
    char name[64];
    snprintf(name, sizeof name, "cert %s", what);
    return run_meridian(c, argv, 60000, name, err);
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return -1;
    FILE *out = fopen(to, "wb");
    if (!out) {
        fclose(in);
        return -1;
    }
    char buf[4096];
    size_t k;
    int rc = 0;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, k, out) != k)
            rc = -1;
    fclose(in);
    if (fclose(out) != 0)
        rc = -1;
    chmod(to, 0600);
    return rc;
}

/* The CA, one node certificate for every address, client.root; certs/lib when asked. */
static int make_certs(lc_cluster *c, mr_err *err)
{
    char hosts[LC_MAX_NODES * 24 + 32] = "127.0.0.1,localhost";
    size_t off = strlen(hosts);
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->nodes[i].ip, "127.0.0.1") != 0)
            off += (size_t)snprintf(hosts + off, sizeof hosts - off, ",%s", c->nodes[i].ip);
    int rc;
    if ((rc = cert(c, "create-ca", NULL, NULL, err)) ||
        (rc = cert(c, "create-node", "--host", hosts, err)) ||
        (rc = cert(c, "create-client", "--user", "root", err)))
        return rc;
    if ((rc = net_tls_ctx_load_dir(c->certs, "client.root", &c->tls, err)) != MR_OK)
        return mr_err_wrap(err, "client certificate");
    if (!c->o.client_dir)
        return MR_OK;
    /* libmeridian reads ca.crt, client.crt and client.key from one directory. */
    char from[LC_PATH + 64], to[LC_PATH + 64];
    mkdir(c->client_certs, 0700);
    static const char *const files[][2] = {
        {"ca.crt", "ca.crt"}, {"client.root.crt", "client.crt"}, {"client.root.key", "client.key"}};
    for (size_t k = 0; k < 3; k++) {
        snprintf(from, sizeof from, "%s/%s", c->certs, files[k][0]);
        snprintf(to, sizeof to, "%s/%s", c->client_certs, files[k][1]);
        if (copy_file(from, to) != 0)
            return mr_errf(err, MR_EIO, "cannot copy %s to %s", from, to);
    }
    return MR_OK;
}

/* ---- setup ---- */

int lc_setup(lc_cluster *c, const lc_opts *o, mr_err *err)
{
    memset(c, 0, sizeof *c);
    c->o = *o;
    for (int i = 0; i < LC_MAX_NODES; i++) {
        c->nodes[i].pid = -1;
        c->nodes[i].last_status = -1;
    }
    const char *bin = o->bin ? o->bin : proc_meridian_bin();
    if (!bin)
        return mr_errf(err, MR_EINVAL, "no meridian binary ($MERIDIAN_BIN is not set)");
    if (o->nodes < 1 || o->nodes > LC_MAX_NODES)
        return mr_errf(err, MR_EINVAL, "%d nodes: 1..%d", o->nodes, LC_MAX_NODES);
    snprintf(c->bin, sizeof c->bin, "%s", bin);
    c->n = o->nodes;
    if (o->dir) {
        snprintf(c->dir, sizeof c->dir, "%s", o->dir);
    } else {
        if (tmpdir_make(c->dir, sizeof c->dir, o->prefix ? o->prefix : "meridian-cluster") != 0)
            return mr_errf(err, MR_EIO, "cannot make a temporary directory: %s", strerror(errno));
        c->made_dir = true;
    }
    snprintf(c->certs, sizeof c->certs, "%s/certs", c->dir);
    snprintf(c->client_certs, sizeof c->client_certs, "%s/certs/lib", c->dir);
    snprintf(c->setup_log, sizeof c->setup_log, "%s/setup.log", c->dir);

    int ports[LC_MAX_NODES + 1];
    if (free_ports(ports, c->n + 1) != 0)
        return mr_errf(err, MR_EIO, "no free ports on 127.0.0.1: %s", strerror(errno));
    if (o->http)
        c->http_port = ports[c->n];
    size_t off = 0;
    for (int i = 0; i < c->n; i++) {
        lc_node *nd = &c->nodes[i];
        const char *ip = o->ips[i] ? o->ips[i] : "127.0.0.1";
        snprintf(nd->ip, sizeof nd->ip, "%s", ip);
        snprintf(nd->ns, sizeof nd->ns, "%s", o->ns[i] ? o->ns[i] : "");
        nd->port = o->ips[i] ? o->fixed_port : ports[i];
        snprintf(nd->addr, sizeof nd->addr, "%s:%d", ip, nd->port);
        snprintf(nd->data, sizeof nd->data, "%s/n%d", c->dir, node_no(c, i));
        snprintf(nd->log, sizeof nd->log, "%s/n%d.log", c->dir, node_no(c, i));
        off +=
            (size_t)snprintf(c->join + off, sizeof c->join - off, "%s%s", i ? "," : "", nd->addr);
    }
    memcpy(c->addrs, c->join, sizeof c->addrs);

    if (!o->insecure) {
        int rc = make_certs(c, err);
        if (rc != MR_OK)
            return rc;
    }
    if (o->chrony) {
        if (chrony_pair_start(&c->chrony, 0.0) != 0)
            return mr_errf(err, MR_EIO, "cannot start the chronyd pair");
        c->chrony_running = true;
        snprintf(c->chrony_clock, sizeof c->chrony_clock, "chrony:%s", c->chrony.node_sock);
        if (chrony_pair_wait_sync(&c->chrony, 30000) != 0)
            return mr_errf(err, MR_ETIMEDOUT, "the private chronyd never synchronized");
    }
    return MR_OK;
}

/* ---- processes ---- */

/* environ with c->o.env applied; NULL-terminated, caller frees the array (not the strings,
 * which are borrowed). NULL when out of memory. */
static char **node_env(const lc_cluster *c)
{
    size_t n = 0, extra = 0;
    while (environ[n])
        n++;
    for (const char *const *e = c->o.env; e && *e; e++)
        extra++;
    char **envp = calloc(n + extra + 1, sizeof *envp);
    if (!envp)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (const char *const *e = c->o.env; e && *e && !replaced; e++) {
            size_t len = strcspn(*e, "=");
            replaced = strncmp(environ[i], *e, len) == 0 && environ[i][len] == '=';
        }
        if (!replaced)
            envp[k++] = environ[i];
    }
    for (const char *const *e = c->o.env; e && *e; e++)
        if (strchr(*e, '='))
            envp[k++] = (char *)*e;
    return envp;
}

/* Appends `flag value` to argv when value is set. */
static void arg(char **argv, size_t *k, const char *flag, const char *value)
{
    if (value) {
        argv[(*k)++] = (char *)flag;
        argv[(*k)++] = (char *)value;
    }
}

int lc_node_start(lc_cluster *c, int i, mr_err *err)
{
    lc_node *nd = &c->nodes[i];
    char zone[24], http[40];
    if (c->o.zones[i])
        snprintf(zone, sizeof zone, "%s", c->o.zones[i]);
    else if (c->o.one_based)
        snprintf(zone, sizeof zone, "zone-%d", i + 1);
    else
        snprintf(zone, sizeof zone, "zone%c", 'a' + i);
    snprintf(http, sizeof http, "127.0.0.1:%d", c->http_port);
    const char *clock = c->o.chrony ? c->chrony_clock : c->o.clock;
    char *argv[40];
    size_t k = 0;
    argv[k++] = c->bin;
    argv[k++] = "start";
    arg(argv, &k, "--data", nd->data);
    arg(argv, &k, "--listen", nd->addr);
    arg(argv, &k, "--zone", zone);
    arg(argv, &k, "--region", c->o.region);
    arg(argv, &k, "--join", c->join);
    if (c->o.insecure)
        argv[k++] = "--insecure";
    else
        arg(argv, &k, "--certs", c->certs);
    arg(argv, &k, "--lease", c->o.lease);
    arg(argv, &k, "--retention", c->o.retention);
    arg(argv, &k, "--decision-retention", c->o.decision_retention);
    arg(argv, &k, "--clock", clock);
    arg(argv, &k, "--clock-cap", c->o.clock_cap);
    arg(argv, &k, "--split-size", c->o.split_size);
    if (i == 0 && c->o.http)
        arg(argv, &k, "--http", http);
    argv[k] = NULL;
    FILE *lf = fopen(nd->log, "a");
    if (lf) {
        fprintf(lf, "==== starting node %d (start #%d)\n", node_no(c, i), nd->starts + 1);
        fclose(lf);
    }
    char **envp = node_env(c);
    if (!envp)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    nd->pid = proc_spawn_in(argv, envp, nd->log, nd->ns);
    int e = errno;
    free(envp);
    if (nd->pid < 0)
        return mr_errf(err, MR_EIO, "cannot start node %d (%s): %s", node_no(c, i), c->bin,
                       strerror(e));
    nd->starts++;
    nd->paused = false;
    return MR_OK;
}

int lc_start_all(lc_cluster *c, mr_err *err)
{
    for (int i = 0; i < c->n; i++) {
        int rc = lc_node_start(c, i, err);
        if (rc != MR_OK)
            return rc;
    }
    return MR_OK;
}

void lc_node_kill(lc_cluster *c, int i)
{
    lc_node *nd = &c->nodes[i];
    if (nd->pid <= 0)
        return;
    kill(nd->pid, SIGKILL);
    int st;
    if (waitpid(nd->pid, &st, 0) == nd->pid)
        nd->last_status = st;
    nd->pid = -1;
    nd->paused = false;
}

bool lc_node_term(lc_cluster *c, int i, int timeout_ms)
{
    lc_node *nd = &c->nodes[i];
    if (nd->pid <= 0)
        return false;
    if (nd->paused)
        kill(nd->pid, SIGCONT);
    kill(nd->pid, SIGTERM);
    int st = -1;
    bool exited = false;
    for (int waited = 0; !exited; waited += 100) {
        if (waitpid(nd->pid, &st, WNOHANG) == nd->pid)
            exited = true;
        else if (waited >= timeout_ms)
            break;
        else
            sleep_ms(100);
    }
    if (!exited) {
        lc_node_kill(c, i);
        return false;
    }
    nd->last_status = st;
    nd->pid = -1;
    nd->paused = false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

void lc_node_pause(lc_cluster *c, int i, bool pause)
{
    lc_node *nd = &c->nodes[i];
    if (nd->pid <= 0)
        return;
    kill(nd->pid, pause ? SIGSTOP : SIGCONT);
    nd->paused = pause;
}

bool lc_node_alive(lc_cluster *c, int i)
{
    lc_node *nd = &c->nodes[i];
    if (nd->pid <= 0)
        return false;
    int st;
    if (waitpid(nd->pid, &st, WNOHANG) == nd->pid) {
        nd->last_status = st;
        MR_WARN("launch", "node %d exited on its own (status %d); see %s", node_no(c, i), st,
                nd->log);
        nd->pid = -1;
        return false;
    }
    return true;
}

void lc_stop_all(lc_cluster *c, int timeout_ms)
{
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].pid > 0) {
            kill(c->nodes[i].pid, SIGCONT);
            kill(c->nodes[i].pid, SIGTERM);
        }
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        bool any = false;
        for (int i = 0; i < c->n; i++) {
            lc_node *nd = &c->nodes[i];
            int st;
            if (nd->pid > 0 && waitpid(nd->pid, &st, WNOHANG) == nd->pid) {
                nd->last_status = st;
                nd->pid = -1;
            }
            any |= nd->pid > 0;
        }
        if (!any)
            break;
        sleep_ms(50);
    }
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].pid > 0) {
            MR_WARN("launch", "node %d did not stop on SIGTERM: SIGKILL", node_no(c, i));
            lc_node_kill(c, i);
        }
}

void lc_destroy(lc_cluster *c, bool keep)
{
    lc_stop_all(c, 10000);
    if (c->chrony_running) {
        chrony_pair_stop(&c->chrony);
        c->chrony_running = false;
    }
    if (c->tls) {
        net_tls_ctx_free(c->tls);
        c->tls = NULL;
    }
    if (c->made_dir && !keep && !getenv("MERIDIAN_KEEP_TMP"))
        tmpdir_remove(c->dir);
    c->made_dir = false;
}

/* ---- init and waits ---- */

int lc_rpc(net_tls_ctx *tls, const char *addr, uint8_t type, const char *json, uint64_t timeout_ms,
           json_t **reply, mr_err *err)
{
    *reply = NULL;
    uint8_t *req;
    size_t len;
    int rc = pr_request_from_text(type, json, &req, &len, err);
    if (rc != MR_OK)
        return mr_err_wrap(err, "request %s", json);
    uint8_t *resp;
    uint32_t rlen;
    rc =
        net_oneshot(tls, addr, 0, NULL, 0, type, req, (uint32_t)len, timeout_ms, &resp, &rlen, err);
    free(req);
    if (rc != MR_OK)
        return rc;
    pr_arena a;
    pr_arena_init(&a);
    const Meridian__Reply *r = pr_reply_decode(&a, resp, rlen, err);
    free(resp);
    *reply = r ? pr_reply_view(r) : NULL;
    pr_arena_free(&a);
    if (!r)
        return mr_err_wrap(err, "%s", addr);
    return *reply ? MR_OK : mr_errf(err, MR_ENOMEM, "out of memory");
}

int lc_wait_up(lc_cluster *c, int timeout_ms, mr_err *err)
{
    int64_t deadline = mr_monotonic_ns() + (int64_t)timeout_ms * MR_NS_PER_MS;
    for (int i = 0; i < c->n; i++) {
        for (;;) {
            json_t *r = NULL;
            mr_err e2;
            mr_err_clear(&e2);
            if (lc_rpc(c->tls, c->nodes[i].addr, ND_MSG_INFO, "{}", 2000, &r, &e2) == MR_OK) {
                json_decref(r);
                break;
            }
            if (!lc_node_alive(c, i))
                return mr_errf(err, MR_EIO, "node %d exited during startup; see %s", node_no(c, i),
                               c->nodes[i].log);
            if (stopped(c) || mr_monotonic_ns() > deadline)
                return mr_errf(err, MR_ETIMEDOUT, "node %d (%s) does not answer: %s", node_no(c, i),
                               c->nodes[i].addr, mr_err_msg(&e2));
            sleep_ms(100);
        }
    }
    return MR_OK;
}

int lc_init(lc_cluster *c, int data_groups, int replicas, const char *split_at, mr_err *err)
{
    char groups[16], nrep[16];
    snprintf(groups, sizeof groups, "%d", data_groups);
    snprintf(nrep, sizeof nrep, "%d", replicas);
    char *argv[16];
    size_t k = 0;
    argv[k++] = c->bin;
    argv[k++] = "init";
    argv[k++] = "--host";
    argv[k++] = c->nodes[0].addr;
    if (c->o.insecure) {
        argv[k++] = "--insecure";
    } else {
        argv[k++] = "--certs";
        argv[k++] = c->certs;
    }
    argv[k++] = "--data-groups";
    argv[k++] = groups;
    if (replicas > 0) {
        argv[k++] = "--replicas";
        argv[k++] = nrep;
    }
    if (split_at && *split_at) {
        argv[k++] = "--split-at";
        argv[k++] = (char *)split_at;
    }
    argv[k] = NULL;
    return run_meridian(c, argv, 90000, "init", err);
}

int lc_node_leads(lc_cluster *c, net_tls_ctx *tls, int i, int *leader, int ngroups, mr_err *err)
{
    json_t *st;
    int rc = lc_rpc(tls ? tls : c->tls, c->nodes[i].addr, ND_MSG_STATUS, "{}", 3000, &st, err);
    if (rc != MR_OK)
        return rc;
    size_t k;
    json_t *g;
    json_array_foreach(json_object_get(st, "groups"), k, g)
    {
        json_int_t id = json_integer_value(json_object_get(g, "id"));
        const char *state = json_string_value(json_object_get(g, "state"));
        if (id >= 0 && id < ngroups && state && strcmp(state, "leader") == 0 &&
            json_integer_value(json_object_get(g, "lease_left_ns")) > 0)
            leader[id] = i;
    }
    json_decref(st);
    return MR_OK;
}

int lc_wait_leaders(lc_cluster *c, int *leader, int ngroups, int timeout_ms, mr_err *err)
{
    int64_t deadline = mr_monotonic_ns() + (int64_t)timeout_ms * MR_NS_PER_MS;
    for (;;) {
        for (int g = 0; g < ngroups; g++)
            leader[g] = -1;
        for (int i = 0; i < c->n; i++) {
            mr_err e2;
            if (c->nodes[i].pid > 0)
                lc_node_leads(c, NULL, i, leader, ngroups, &e2);
        }
        int missing = 0;
        for (int g = 1; g < ngroups; g++)
            missing += leader[g] < 0;
        if (!missing)
            return MR_OK;
        if (stopped(c) || mr_monotonic_ns() > deadline)
            return mr_errf(err, MR_ETIMEDOUT, "%d of %d groups have no leader after %d s", missing,
                           ngroups - 1, timeout_ms / 1000);
        sleep_ms(200);
    }
}

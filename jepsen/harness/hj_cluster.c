/* A real Meridian cluster for the harness: network namespaces (or loopback) and partitions
 * around the cluster launcher (launch/cluster.h). See hj_cluster.h. */
#include "jepsen/harness/hj_cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "jepsen/harness/hj_run.h"
#include "launch/proc.h"

extern char **environ;

static void net_teardown(hj_cluster *c);

/* ---- processes (the launcher's) ---- */

/* Runs argv to completion in namespace ns (NULL: ours); an interruptible command is killed
 * on SIGINT (teardown commands are not). */
static int run_cmd(char *const argv[], const char *log_path, int timeout_ms, const char *ns,
                   bool interruptible)
{
    return proc_run_logged(argv, log_path, timeout_ms, ns, interruptible ? &hj_interrupted : NULL);
}

int hj_run_cmd(char *const argv[], const char *log_path, int timeout_ms)
{
    return run_cmd(argv, log_path, timeout_ms, NULL, true);
}

int hj_node_start(hj_cluster *c, int i, mr_err *err)
{
    return lc_node_start(&c->lc, i, err);
}

void hj_node_kill(hj_cluster *c, int i)
{
    lc_node_kill(&c->lc, i);
}

void hj_node_pause(hj_cluster *c, int i, bool pause)
{
    lc_node_pause(&c->lc, i, pause);
}

bool hj_node_alive(hj_cluster *c, int i)
{
    return lc_node_alive(&c->lc, i);
}

void hj_cluster_teardown(hj_cluster *c)
{
    lc_stop_all(&c->lc, 10000);
    net_teardown(c);
    lc_destroy(&c->lc, true);
    c->tls = NULL;
}

/* ---- network namespaces ---- */

static bool find_tool(const char *name, char *out, size_t len)
{
    static const char *const dirs[] = {"/usr/sbin", "/sbin", "/usr/bin", "/bin"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(out, len, "%s/%s", dirs[i], name);
        if (access(out, X_OK) == 0)
            return true;
    }
    out[0] = '\0';
    return false;
}

/* `ip ARGS...` in our namespace, logged to setup.log; exit status or -1. */
static int ip_cmd(hj_cluster *c, bool interruptible, const char *a0, const char *a1, const char *a2,
                  const char *a3, const char *a4, const char *a5, const char *a6, const char *a7)
{
    char log[HJ_PATH + 16];
    snprintf(log, sizeof log, "%s/setup.log", c->dir);
    char *argv[] = {c->ip_bin,  (char *)a0, (char *)a1, (char *)a2, (char *)a3,
                    (char *)a4, (char *)a5, (char *)a6, (char *)a7, NULL};
    return run_cmd(argv, log, 20000, NULL, interruptible);
}

/* True when some interface of this namespace already has an address in 10.a.b.0/24. */
static bool subnet_taken(int a, int b)
{
    struct ifaddrs *ifs, *i;
    if (getifaddrs(&ifs) != 0)
        return true;
    bool taken = false;
    for (i = ifs; i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
            uint32_t x = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
            taken |= (x >> 8) == ((10u << 16) | ((uint32_t)a << 8) | (uint32_t)b);
        }
    freeifaddrs(ifs);
    return taken;
}

/* Removes, by name, the veths, namespaces and bridge this harness made. Never interrupted. */
static void net_teardown(hj_cluster *c)
{
    for (int i = 0; i < c->n; i++) {
        char veth[24];
        snprintf(veth, sizeof veth, "mj%dh%d", (int)getpid(), i + 1);
        if (c->veth_made[i]) {
            ip_cmd(c, false, "link", "del", veth, NULL, NULL, NULL, NULL, NULL);
            c->veth_made[i] = false;
        }
        if (c->ns_made[i]) {
            ip_cmd(c, false, "netns", "del", c->ns[i], NULL, NULL, NULL, NULL, NULL);
            c->ns_made[i] = false;
        }
    }
    if (c->bridge_made) {
        ip_cmd(c, false, "link", "del", c->bridge, NULL, NULL, NULL, NULL, NULL);
        c->bridge_made = false;
    }
    if (c->reaper_pid > 0) {
        /* Everything is gone: the reaper may go without doing anything. */
        ssize_t w = write(c->reaper_fd, "x", 1);
        (void)w;
        close(c->reaper_fd);
        waitpid(c->reaper_pid, NULL, 0);
        c->reaper_pid = 0;
        c->reaper_fd = -1;
    }
}

/* Why namespaces cannot be used here, or NULL when they can (root, ip, nft, unshare -n). */
static const char *netns_unavailable(hj_cluster *c)
{
    static char why[160];
    if (geteuid() != 0)
        return "not root";
    if (!find_tool("ip", c->ip_bin, sizeof c->ip_bin))
        return "no `ip` (apt-get install iproute2)";
    if (!find_tool("nft", c->nft_bin, sizeof c->nft_bin))
        return "no `nft` (apt-get install nftables)";
    char unshare[64];
    if (!find_tool("unshare", unshare, sizeof unshare))
        return "no `unshare` (util-linux)";
    char log[HJ_PATH + 16];
    snprintf(log, sizeof log, "%s/setup.log", c->dir);
    char *argv[] = {unshare, "-n", "true", NULL};
    int rc = run_cmd(argv, log, 10000, NULL, true);
    if (rc != 0) {
        snprintf(why, sizeof why, "`unshare -n true` failed (status %d)", rc);
        return why;
    }
    return NULL;
}

/* The reaper: a child in its own process group that waits on a pipe. The harness writes one
 * byte once its teardown removed everything; if the pipe closes without it (the harness
 * crashed, was killed, or aborted under a sanitizer), the reaper removes the veths,
 * namespaces and bridge by their names (they carry the harness's pid), so nothing is left
 * behind even then. Forked while the harness has one thread. */
static void reaper_main(const hj_cluster *c, int pid, int fd)
{
    setpgid(0, 0);
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    char b;
    ssize_t r;
    while ((r = read(fd, &b, 1)) < 0 && errno == EINTR) {
    }
    if (r == 1)
        _exit(0); /* torn down properly */
    char names[3 * HJ_MAX_NODES + 1][24];
    const char *kinds[3 * HJ_MAX_NODES + 1];
    int k = 0;
    for (int i = 0; i < c->n; i++) {
        snprintf(names[k], sizeof names[k], "mj%dh%d", pid, i + 1);
        kinds[k++] = "link";
        snprintf(names[k], sizeof names[k], "mj%dn%d", pid, i + 1);
        kinds[k++] = "netns";
    }
    snprintf(names[k], sizeof names[k], "mjb%d", pid);
    kinds[k++] = "link";
    for (int j = 0; j < k; j++) {
        pid_t ch = fork();
        if (ch == 0) {
            int nul = open("/dev/null", O_RDWR);
            if (nul >= 0) {
                dup2(nul, 1);
                dup2(nul, 2);
            }
            char *argv[] = {(char *)c->ip_bin, (char *)kinds[j], "del", names[j], NULL};
            execve(argv[0], argv, environ);
            _exit(127);
        }
        if (ch > 0)
            waitpid(ch, NULL, 0);
    }
    _exit(0);
}

static int start_reaper(hj_cluster *c)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    int pid = (int)getpid();
    pid_t ch = fork();
    if (ch < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (ch == 0) {
        close(p[1]);
        reaper_main(c, pid, p[0]);
    }
    close(p[0]);
    c->reaper_fd = p[1];
    c->reaper_pid = ch;
    return 0;
}

/* The bridge, then per node a namespace and a veth pair with 10.A.B.(i+1)/24 inside. */
static int net_setup(hj_cluster *c, mr_err *err)
{
    int pid = (int)getpid();
    if (start_reaper(c) != 0)
        return mr_errf(err, MR_EIO, "cannot start the namespace reaper: %s", strerror(errno));
    int a = 0, b = 0;
    for (int t = 0; t < 64 && !a; t++) {
        int ta = 160 + (pid / 256 + t) % 64, tb = (pid + t) % 256;
        if (!subnet_taken(ta, tb))
            a = ta, b = tb;
    }
    if (!a)
        return mr_errf(err, MR_EIO, "no free 10.x.y.0/24 subnet");
    char net[16], host[28];
    snprintf(net, sizeof net, "10.%d.%d", a & 255, b & 255);
    snprintf(host, sizeof host, "%s.254/24", net);
    snprintf(c->bridge, sizeof c->bridge, "mjb%d", pid);
    if (ip_cmd(c, true, "link", "add", c->bridge, "type", "bridge", NULL, NULL, NULL) != 0)
        return mr_errf(err, MR_EIO, "cannot make bridge %s", c->bridge);
    c->bridge_made = true;
    if (ip_cmd(c, true, "addr", "add", host, "dev", c->bridge, NULL, NULL, NULL) != 0 ||
        ip_cmd(c, true, "link", "set", c->bridge, "up", NULL, NULL, NULL, NULL) != 0)
        return mr_errf(err, MR_EIO, "cannot configure bridge %s", c->bridge);
    for (int i = 0; i < c->n; i++) {
        char *ns = c->ns[i], *ip = c->ip[i];
        char hv[24], pv[24], addr[32];
        snprintf(ns, sizeof c->ns[i], "mj%dn%d", pid, i + 1);
        snprintf(hv, sizeof hv, "mj%dh%d", pid, i + 1);
        snprintf(pv, sizeof pv, "mj%dp%d", pid, i + 1);
        snprintf(ip, sizeof c->ip[i], "%s.%d", net, (i + 1) & 255);
        snprintf(addr, sizeof addr, "%s/24", ip);
        if (ip_cmd(c, true, "netns", "add", ns, NULL, NULL, NULL, NULL, NULL) != 0)
            return mr_errf(err, MR_EIO, "cannot make network namespace %s", ns);
        c->ns_made[i] = true;
        if (ip_cmd(c, true, "link", "add", hv, "type", "veth", "peer", "name", pv) != 0)
            return mr_errf(err, MR_EIO, "cannot make veth pair %s/%s", hv, pv);
        c->veth_made[i] = true;
        if (ip_cmd(c, true, "link", "set", hv, "master", c->bridge, "up", NULL, NULL) != 0 ||
            ip_cmd(c, true, "link", "set", pv, "netns", ns, NULL, NULL, NULL) != 0 ||
            ip_cmd(c, true, "-n", ns, "addr", "add", addr, "dev", pv, NULL) != 0 ||
            ip_cmd(c, true, "-n", ns, "link", "set", pv, "up", NULL, NULL) != 0 ||
            ip_cmd(c, true, "-n", ns, "link", "set", "lo", "up", NULL, NULL) != 0)
            return mr_errf(err, MR_EIO, "cannot configure %s in %s", pv, ns);
    }
    return MR_OK;
}

int hj_net_cut(hj_cluster *c, int i, const int *peers, int n)
{
    if (!c->netns)
        return -1;
    char path[HJ_PATH + 32], log[HJ_PATH + 16];
    snprintf(path, sizeof path, "%s/nft-n%d.rules", c->dir, i + 1);
    snprintf(log, sizeof log, "%s/nft.log", c->dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    /* The namespace is ours alone: its whole ruleset is this partition. */
    fprintf(f, "flush ruleset\n");
    if (n > 0) {
        char set[HJ_MAX_NODES * 20] = "";
        size_t off = 0;
        for (int k = 0; k < n; k++)
            off += (size_t)snprintf(set + off, sizeof set - off, "%s%s", k ? ", " : "",
                                    c->nodes[peers[k]].ip);
        fprintf(f,
                "table inet meridian_jepsen {\n"
                "  chain input { type filter hook input priority 0; policy accept; "
                "ip saddr { %s } drop; }\n"
                "  chain output { type filter hook output priority 0; policy accept; "
                "ip daddr { %s } drop; }\n"
                "}\n",
                set, set);
    }
    fclose(f);
    char *argv[] = {c->nft_bin, "-f", path, NULL};
    int rc = run_cmd(argv, log, 10000, c->nodes[i].ns, false);
    if (rc != 0)
        MR_WARN("jepsen", "nft in %s failed (status %d); see %s", c->nodes[i].ns, rc, log);
    return rc == 0 ? 0 : -1;
}

/* ---- blocking RPC ---- */

int hj_rpc(net_tls_ctx *tls, const char *addr, uint8_t type, const char *json, uint64_t timeout_ms,
           json_t **reply, mr_err *err)
{
    return lc_rpc(tls, addr, type, json, timeout_ms, reply, err);
}

int hj_node_leads(hj_cluster *c, net_tls_ctx *tls, int i, int *leader, int ngroups, mr_err *err)
{
    return lc_node_leads(&c->lc, tls, i, leader, ngroups, err);
}

/* ---- setup ---- */

int hj_cluster_setup(hj_cluster *c, const hj_cluster_opts *o, int *leader, mr_err *err)
{
    memset(c, 0, sizeof *c);
    c->certs = c->lc.certs;
    c->client_certs = c->lc.client_certs;
    c->addrs = c->lc.addrs;
    c->nodes = c->lc.nodes;
    snprintf(c->dir, sizeof c->dir, "%s", o->dir);
    c->n = o->nodes;
    c->groups = o->groups;
    snprintf(c->breaks, sizeof c->breaks, "%s", o->breaks ? o->breaks : "");
    snprintf(c->split_at, sizeof c->split_at, "%s", o->split_at ? o->split_at : "");
    c->epsilon_ns = o->clock_bound_ns > 0 ? o->clock_bound_ns : MR_NS_PER_MS;
    snprintf(c->clock_spec, sizeof c->clock_spec, "fixed:%lldus",
             (long long)(c->epsilon_ns / 1000));
    /* The cap must admit the declared bound (plus drift growth between samples). */
    int64_t cap = c->epsilon_ns * 4 > 10 * MR_NS_PER_MS ? c->epsilon_ns * 4 : 10 * MR_NS_PER_MS;
    snprintf(c->clock_cap, sizeof c->clock_cap, "%lldus", (long long)(cap / 1000));
    if (o->retention_ns > 0)
        snprintf(c->retention, sizeof c->retention, "%lldms",
                 (long long)(o->retention_ns / MR_NS_PER_MS));
    /* Our own switches never leak into the nodes: only the fault RPC and the break asked. */
    snprintf(c->break_env, sizeof c->break_env, "MERIDIAN_TEST_BREAK%s%s", c->breaks[0] ? "=" : "",
             c->breaks);
    c->env[0] = "MERIDIAN_TEST_FAULTS=1";
    c->env[1] = c->break_env;
    c->env[2] = "MERIDIAN_CLOCK_OFFSET";
    c->env[3] = NULL;

    /* The network: namespaces when asked or possible, else loopback. */
    if (o->net != HJ_NET_LOOPBACK) {
        const char *why = netns_unavailable(c);
        mr_err nerr;
        mr_err_clear(&nerr);
        if (!why && net_setup(c, &nerr) == MR_OK) {
            c->netns = true;
        } else {
            if (!why)
                why = mr_err_msg(&nerr);
            net_teardown(c);
            if (o->net == HJ_NET_NETNS)
                return mr_errf(err, MR_EIO, "network namespaces are not available: %s", why);
            snprintf(c->net_notice, sizeof c->net_notice,
                     "network namespaces not available (%s): falling back to loopback", why);
        }
    }

    lc_opts lo = {.bin = o->bin,
                  .dir = c->dir,
                  .nodes = c->n,
                  .one_based = true,
                  .fixed_port = 7100,
                  .client_dir = true,
                  .region = "local",
                  .lease = "1s",
                  .clock = c->clock_spec,
                  .clock_cap = c->clock_cap,
                  .retention = c->retention[0] ? c->retention : NULL,
                  .decision_retention = c->retention[0] ? c->retention : NULL,
                  .env = c->env,
                  .stop = &hj_interrupted};
    for (int i = 0; c->netns && i < c->n; i++) {
        lo.ips[i] = c->ip[i];
        lo.ns[i] = c->ns[i];
    }
    int rc;
    if ((rc = lc_setup(&c->lc, &lo, err)) != MR_OK)
        return rc;
    c->tls = c->lc.tls;
    if ((rc = lc_start_all(&c->lc, err)) != MR_OK ||
        (rc = lc_wait_up(&c->lc, 60000, err)) != MR_OK ||
        (rc = lc_init(&c->lc, c->groups, 0, c->split_at, err)) != MR_OK)
        return rc;
    /* Every group (meta 1, data 2..groups+1) has a leader with a lease. */
    return lc_wait_leaders(&c->lc, leader, c->groups + 2, 60000, err);
}

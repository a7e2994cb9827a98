/* A real Meridian cluster for the harness: network namespaces (or loopback), certificates,
 * processes, init, leaders, partitions and blocking RPCs. See hj_cluster.h. */
#include "jepsen/harness/hj_cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "jepsen/harness/hj_run.h"
#include "net/oneshot.h"
#include "net/transport.h"
#include "tablet/node/nd.h"

extern char **environ;

static void net_teardown(hj_cluster *c);

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- processes ---- */

/* fork + exec with output appended to log_path, in a new process group, killed when the
 * calling thread dies, inside the network namespace `ns` when given (the child joins it with
 * setns before exec). Everything the child touches is prepared before fork (the harness is
 * multithreaded: only async-signal-safe calls between fork and exec). */
static pid_t spawn(char *const argv[], char *const envp[], const char *log_path, const char *ns)
{
    int nsfd = -1;
    if (ns && *ns) {
        char path[64];
        snprintf(path, sizeof path, "/run/netns/%s", ns);
        if ((nsfd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
            return -1;
    }
    int fd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    if (log_path && fd < 0) {
        if (nsfd >= 0)
            close(nsfd);
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) != 0)
            _exit(126);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execve(argv[0], argv, envp ? envp : environ);
        _exit(127);
    }
    if (fd >= 0)
        close(fd);
    if (nsfd >= 0)
        close(nsfd);
    return pid;
}

/* Runs argv to completion in namespace ns (NULL: ours); an interruptible command is killed
 * on SIGINT (teardown commands are not). */
static int run_cmd(char *const argv[], const char *log_path, int timeout_ms, const char *ns,
                   bool interruptible)
{
    if (log_path) {
        FILE *lf = fopen(log_path, "a");
        if (lf) {
            fprintf(lf, "$%s", ns && *ns ? " [netns " : "");
            if (ns && *ns)
                fprintf(lf, "%s]", ns);
            for (int i = 0; argv[i]; i++)
                fprintf(lf, " %s", argv[i]);
            fprintf(lf, "\n");
            fclose(lf);
        }
    }
    pid_t pid = spawn(argv, NULL, log_path, ns);
    if (pid < 0)
        return -1;
    int status = 0;
    for (int waited = 0;; waited += 20) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (waited >= timeout_ms || (interruptible && hj_interrupted)) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        nap_ms(20);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int hj_run_cmd(char *const argv[], const char *log_path, int timeout_ms)
{
    return run_cmd(argv, log_path, timeout_ms, NULL, true);
}

static int free_ports(int *ports, int n)
{
    int fds[HJ_MAX_NODES];
    int rc = 0, opened = 0;
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0) {
            rc = -1;
            break;
        }
        opened++;
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        if (bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0) {
            rc = -1;
            break;
        }
        ports[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    return rc;
}

int hj_node_start(hj_cluster *c, int i, mr_err *err)
{
    hj_node *nd = &c->nodes[i];
    char zone[24];
    snprintf(zone, sizeof zone, "zone-%d", i + 1);
    char *argv[] = {c->bin,        "start",      "--data",   nd->data, "--listen", nd->addr,
                    "--zone",      zone,         "--region", "local",  "--join",   c->join,
                    "--certs",     c->certs,     "--lease",  "1s",     "--clock",  c->clock_spec,
                    "--clock-cap", c->clock_cap, NULL};
    char *args[sizeof argv / sizeof *argv + 4];
    size_t k = 0;
    for (; argv[k]; k++)
        args[k] = argv[k];
    if (c->retention[0]) {
        args[k++] = "--retention";
        args[k++] = c->retention;
        args[k++] = "--decision-retention";
        args[k++] = c->retention;
    }
    args[k] = NULL;
    FILE *lf = fopen(nd->log, "a");
    if (lf) {
        fprintf(lf, "==== meridian-jepsen: starting node %d (start #%d)\n", i + 1, nd->starts + 1);
        fclose(lf);
    }
    nd->pid = spawn(args, c->envp, nd->log, c->netns ? nd->ns : NULL);
    if (nd->pid < 0)
        return mr_errf(err, MR_EIO, "cannot start node %d (%s): %s", i + 1, c->bin,
                       strerror(errno));
    nd->starts++;
    nd->paused = false;
    return MR_OK;
}

void hj_node_kill(hj_cluster *c, int i)
{
    hj_node *nd = &c->nodes[i];
    if (nd->pid <= 0)
        return;
    kill(nd->pid, SIGKILL);
    int st;
    if (waitpid(nd->pid, &st, 0) == nd->pid)
        nd->last_status = st;
    nd->pid = -1;
    nd->paused = false;
}

void hj_node_pause(hj_cluster *c, int i, bool pause)
{
    hj_node *nd = &c->nodes[i];
    if (nd->pid <= 0)
        return;
    kill(nd->pid, pause ? SIGSTOP : SIGCONT);
    nd->paused = pause;
}

bool hj_node_alive(hj_cluster *c, int i)
{
    hj_node *nd = &c->nodes[i];
    if (nd->pid <= 0)
        return false;
    int st;
    if (waitpid(nd->pid, &st, WNOHANG) == nd->pid) {
        nd->last_status = st;
        MR_WARN("jepsen", "node %d exited on its own (status %d); see %s", i + 1, st, nd->log);
        nd->pid = -1;
        return false;
    }
    return true;
}

void hj_cluster_teardown(hj_cluster *c)
{
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].pid > 0) {
            kill(c->nodes[i].pid, SIGCONT);
            kill(c->nodes[i].pid, SIGTERM);
        }
    for (int waited = 0; waited < 10000; waited += 50) {
        bool any = false;
        for (int i = 0; i < c->n; i++) {
            hj_node *nd = &c->nodes[i];
            int st;
            if (nd->pid > 0 && waitpid(nd->pid, &st, WNOHANG) == nd->pid) {
                nd->last_status = st;
                nd->pid = -1;
            }
            any |= nd->pid > 0;
        }
        if (!any)
            break;
        nap_ms(50);
    }
    for (int i = 0; i < c->n; i++)
        if (c->nodes[i].pid > 0) {
            MR_WARN("jepsen", "node %d did not stop on SIGTERM: SIGKILL", i + 1);
            hj_node_kill(c, i);
        }
    net_teardown(c);
    if (c->envp) {
        for (char **e = c->envp; *e; e++)
            free(*e);
        free(c->envp);
        c->envp = NULL;
    }
    if (c->tls) {
        net_tls_ctx_free(c->tls);
        c->tls = NULL;
    }
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
        hj_node *nd = &c->nodes[i];
        char veth[24];
        snprintf(veth, sizeof veth, "mj%dh%d", (int)getpid(), i + 1);
        if (nd->veth_made) {
            ip_cmd(c, false, "link", "del", veth, NULL, NULL, NULL, NULL, NULL);
            nd->veth_made = false;
        }
        if (nd->ns_made) {
            ip_cmd(c, false, "netns", "del", nd->ns, NULL, NULL, NULL, NULL, NULL);
            nd->ns_made = false;
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
        hj_node *nd = &c->nodes[i];
        char hv[24], pv[24], addr[32];
        snprintf(nd->ns, sizeof nd->ns, "mj%dn%d", pid, i + 1);
        snprintf(hv, sizeof hv, "mj%dh%d", pid, i + 1);
        snprintf(pv, sizeof pv, "mj%dp%d", pid, i + 1);
        snprintf(nd->ip, sizeof nd->ip, "%s.%d", net, (i + 1) & 255);
        snprintf(addr, sizeof addr, "%s/24", nd->ip);
        if (ip_cmd(c, true, "netns", "add", nd->ns, NULL, NULL, NULL, NULL, NULL) != 0)
            return mr_errf(err, MR_EIO, "cannot make network namespace %s", nd->ns);
        nd->ns_made = true;
        if (ip_cmd(c, true, "link", "add", hv, "type", "veth", "peer", "name", pv) != 0)
            return mr_errf(err, MR_EIO, "cannot make veth pair %s/%s", hv, pv);
        nd->veth_made = true;
        if (ip_cmd(c, true, "link", "set", hv, "master", c->bridge, "up", NULL, NULL) != 0 ||
            ip_cmd(c, true, "link", "set", pv, "netns", nd->ns, NULL, NULL, NULL) != 0 ||
            ip_cmd(c, true, "-n", nd->ns, "addr", "add", addr, "dev", pv, NULL) != 0 ||
            ip_cmd(c, true, "-n", nd->ns, "link", "set", pv, "up", NULL, NULL) != 0 ||
            ip_cmd(c, true, "-n", nd->ns, "link", "set", "lo", "up", NULL, NULL) != 0)
            return mr_errf(err, MR_EIO, "cannot configure %s in %s", pv, nd->ns);
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

/* environ without our switches, plus MERIDIAN_TEST_FAULTS=1 (and the break). */
static int make_env(hj_cluster *c)
{
    size_t n = 0;
    while (environ[n])
        n++;
    c->envp = calloc(n + 3, sizeof *c->envp);
    if (!c->envp)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "MERIDIAN_TEST_FAULTS=", 21) == 0 ||
            strncmp(environ[i], "MERIDIAN_TEST_BREAK=", 20) == 0 ||
            strncmp(environ[i], "MERIDIAN_CLOCK_OFFSET=", 22) == 0)
            continue;
        if (!(c->envp[k++] = strdup(environ[i])))
            return -1;
    }
    if (!(c->envp[k++] = strdup("MERIDIAN_TEST_FAULTS=1")))
        return -1;
    if (c->breaks[0]) {
        char b[160];
        snprintf(b, sizeof b, "MERIDIAN_TEST_BREAK=%s", c->breaks);
        if (!(c->envp[k++] = strdup(b)))
            return -1;
    }
    return 0;
}

/* ---- blocking RPC ---- */

int hj_rpc(net_tls_ctx *tls, const char *addr, uint8_t type, const char *json, uint64_t timeout_ms,
           json_t **reply, mr_err *err)
{
    *reply = NULL;
    uint8_t *resp;
    uint32_t rlen;
    int rc = net_oneshot(tls, addr, 0, NULL, 0, type, json, (uint32_t)strlen(json), timeout_ms,
                         &resp, &rlen, err);
    if (rc != MR_OK)
        return rc;
    json_error_t je;
    *reply = json_loadb((const char *)resp, rlen, 0, &je);
    free(resp);
    if (!*reply)
        return mr_errf(err, MR_EPROTO, "reply is not JSON: %s", je.text);
    return MR_OK;
}

int hj_node_leads(hj_cluster *c, net_tls_ctx *tls, int i, int *leader, int ngroups, mr_err *err)
{
    json_t *st;
    int rc = hj_rpc(tls, c->nodes[i].addr, ND_MSG_STATUS, "{}", 3000, &st, err);
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

/* ---- setup ---- */

static int cert(hj_cluster *c, const char *what, const char *opt, const char *arg, mr_err *err)
{
    char log[HJ_PATH + 16];
    snprintf(log, sizeof log, "%s/setup.log", c->dir);
    char *argv[] = {c->bin,   "cert",      (char *)what, "--certs-dir",
                    c->certs, (char *)opt, (char *)arg,  NULL};
    int rc = hj_run_cmd(argv, log, 60000);
    if (rc != 0)
        return mr_errf(err, MR_EIO, "meridian cert %s failed (status %d); see %s", what, rc, log);
    return MR_OK;
}

int hj_cluster_setup(hj_cluster *c, const hj_cluster_opts *o, int *leader, mr_err *err)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < HJ_MAX_NODES; i++) {
        c->nodes[i].pid = -1;
        c->nodes[i].last_status = -1;
    }
    snprintf(c->bin, sizeof c->bin, "%s", o->bin);
    snprintf(c->dir, sizeof c->dir, "%s", o->dir);
    snprintf(c->certs, sizeof c->certs, "%s/certs", o->dir);
    snprintf(c->client_certs, sizeof c->client_certs, "%s/certs/lib", o->dir);
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
    if (make_env(c) != 0)
        return mr_errf(err, MR_ENOMEM, "out of memory");

    int rc;
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
            for (int i = 0; i < c->n; i++)
                c->nodes[i].ns[0] = '\0';
            if (o->net == HJ_NET_NETNS)
                return mr_errf(err, MR_EIO, "network namespaces are not available: %s", why);
            snprintf(c->net_notice, sizeof c->net_notice,
                     "network namespaces not available (%s): falling back to loopback", why);
        }
    }
    int ports[HJ_MAX_NODES];
    if (!c->netns && free_ports(ports, c->n) != 0)
        return mr_errf(err, MR_EIO, "no free ports on 127.0.0.1: %s", strerror(errno));
    char hosts[HJ_MAX_NODES * 20 + 32] = "127.0.0.1,localhost";
    size_t off = 0, aoff = 0, hoff = strlen(hosts);
    for (int i = 0; i < c->n; i++) {
        hj_node *nd = &c->nodes[i];
        if (c->netns) {
            nd->port = 7100;
            hoff += (size_t)snprintf(hosts + hoff, sizeof hosts - hoff, ",%s", nd->ip);
        } else {
            nd->port = ports[i];
            snprintf(nd->ip, sizeof nd->ip, "127.0.0.1");
        }
        snprintf(nd->addr, sizeof nd->addr, "%s:%d", nd->ip, nd->port);
        snprintf(nd->data, sizeof nd->data, "%s/n%d", c->dir, i + 1);
        snprintf(nd->log, sizeof nd->log, "%s/n%d.log", c->dir, i + 1);
        off +=
            (size_t)snprintf(c->join + off, sizeof c->join - off, "%s%s", i ? "," : "", nd->addr);
        aoff += (size_t)snprintf(c->addrs + aoff, sizeof c->addrs - aoff, "%s%s", i ? "," : "",
                                 nd->addr);
    }

    if ((rc = cert(c, "create-ca", NULL, NULL, err)) ||
        (rc = cert(c, "create-node", "--host", hosts, err)) ||
        (rc = cert(c, "create-client", "--user", "root", err)))
        return rc;
    if ((rc = net_tls_ctx_load_dir(c->certs, "client.root", &c->tls, err)) != MR_OK)
        return mr_err_wrap(err, "client certificate");
    /* libmeridian reads ca.crt, client.crt and client.key from one directory. */
    char from[HJ_PATH + 64], to[HJ_PATH + 64];
    mkdir(c->client_certs, 0700);
    static const char *const files[][2] = {
        {"ca.crt", "ca.crt"}, {"client.root.crt", "client.crt"}, {"client.root.key", "client.key"}};
    for (size_t k = 0; k < 3; k++) {
        snprintf(from, sizeof from, "%s/%s", c->certs, files[k][0]);
        snprintf(to, sizeof to, "%s/%s", c->client_certs, files[k][1]);
        if (copy_file(from, to) != 0)
            return mr_errf(err, MR_EIO, "cannot copy %s to %s", from, to);
    }

    for (int i = 0; i < c->n; i++)
        if ((rc = hj_node_start(c, i, err)) != MR_OK)
            return rc;

    /* Every node answers INFO before init (init needs all of them). */
    int64_t deadline = mr_monotonic_ns() + 60 * MR_NS_PER_S;
    for (int i = 0; i < c->n; i++) {
        for (;;) {
            json_t *r = NULL;
            mr_err e2;
            if (hj_rpc(c->tls, c->nodes[i].addr, ND_MSG_INFO, "{}", 2000, &r, &e2) == MR_OK) {
                json_decref(r);
                break;
            }
            if (!hj_node_alive(c, i))
                return mr_errf(err, MR_EIO, "node %d exited during startup; see %s", i + 1,
                               c->nodes[i].log);
            if (hj_interrupted || mr_monotonic_ns() > deadline)
                return mr_errf(err, MR_ETIMEDOUT, "node %d (%s) does not answer: %s", i + 1,
                               c->nodes[i].addr, mr_err_msg(&e2));
            nap_ms(100);
        }
    }

    char host[40], groups[16], log[HJ_PATH + 16];
    snprintf(host, sizeof host, "%s", c->nodes[0].addr);
    snprintf(groups, sizeof groups, "%d", c->groups);
    snprintf(log, sizeof log, "%s/setup.log", c->dir);
    char *argv[] = {c->bin,          "init", "--host",     host,        "--certs", c->certs,
                    "--data-groups", groups, "--split-at", c->split_at, NULL};
    if (!c->split_at[0])
        argv[8] = NULL;
    rc = hj_run_cmd(argv, log, 90000);
    if (rc != 0)
        return mr_errf(err, MR_EIO, "meridian init failed (status %d); see %s", rc, log);

    /* Every group has a leader with a lease. */
    int ng = c->groups + 2;
    deadline = mr_monotonic_ns() + 60 * MR_NS_PER_S;
    for (;;) {
        for (int g = 0; g < ng; g++)
            leader[g] = -1;
        for (int i = 0; i < c->n; i++) {
            mr_err e2;
            hj_node_leads(c, c->tls, i, leader, ng, &e2);
        }
        int missing = 0;
        for (int g = 1; g < ng; g++)
            missing += leader[g] < 0;
        if (!missing)
            return MR_OK;
        if (hj_interrupted || mr_monotonic_ns() > deadline)
            return mr_errf(err, MR_ETIMEDOUT, "%d of %d groups have no leader after 60 s", missing,
                           ng - 1);
        nap_ms(200);
    }
}

/* A real Meridian cluster on loopback for the harness: certificates, processes, init,
 * leaders, and blocking RPCs. See hj_cluster.h. */
#include "jepsen/harness/hj_cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
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

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- processes ---- */

/* fork + exec with output appended to log_path, in a new process group, killed when the
 * calling thread dies. Everything the child touches is prepared before fork (the harness
 * is multithreaded: only async-signal-safe calls between fork and exec). */
static pid_t spawn(char *const argv[], char *const envp[], const char *log_path)
{
    int fd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
    if (log_path && fd < 0)
        return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
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
    return pid;
}

int hj_run_cmd(char *const argv[], const char *log_path, int timeout_ms)
{
    pid_t pid = spawn(argv, NULL, log_path);
    if (pid < 0)
        return -1;
    int status = 0;
    for (int waited = 0;; waited += 20) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (waited >= timeout_ms || hj_interrupted) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        nap_ms(20);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
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
    char listen[32], zone[16];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", nd->port);
    snprintf(zone, sizeof zone, "zone-%d", i + 1);
    char *argv[] = {c->bin,   "start",   "--data",      nd->data,   "--listen",
                    listen,   "--zone",  zone,          "--region", "local",
                    "--join", c->join,   "--certs",     c->certs,   "--lease",
                    "1s",     "--clock", c->clock_spec, NULL};
    FILE *lf = fopen(nd->log, "a");
    if (lf) {
        fprintf(lf, "==== meridian-jepsen: starting node %d (start #%d)\n", i + 1, nd->starts + 1);
        fclose(lf);
    }
    nd->pid = spawn(argv, c->envp, nd->log);
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
    if (c->stale_reads && !(c->envp[k++] = strdup("MERIDIAN_TEST_BREAK=stale-reads")))
        return -1;
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
    c->n = o->nodes;
    c->groups = o->groups;
    c->stale_reads = o->stale_reads;
    c->epsilon_ns = MR_NS_PER_MS;
    snprintf(c->clock_spec, sizeof c->clock_spec, "fixed:1ms");
    if (make_env(c) != 0)
        return mr_errf(err, MR_ENOMEM, "out of memory");

    int rc;
    if ((rc = cert(c, "create-ca", NULL, NULL, err)) ||
        (rc = cert(c, "create-node", "--host", "127.0.0.1,localhost", err)) ||
        (rc = cert(c, "create-client", "--user", "root", err)))
        return rc;
    if ((rc = net_tls_ctx_load_dir(c->certs, "client.root", &c->tls, err)) != MR_OK)
        return mr_err_wrap(err, "client certificate");

    int ports[HJ_MAX_NODES];
    if (free_ports(ports, c->n) != 0)
        return mr_errf(err, MR_EIO, "no free ports on 127.0.0.1: %s", strerror(errno));
    size_t off = 0;
    for (int i = 0; i < c->n; i++) {
        hj_node *nd = &c->nodes[i];
        nd->port = ports[i];
        snprintf(nd->addr, sizeof nd->addr, "127.0.0.1:%d", ports[i]);
        snprintf(nd->data, sizeof nd->data, "%s/n%d", c->dir, i + 1);
        snprintf(nd->log, sizeof nd->log, "%s/n%d.log", c->dir, i + 1);
        off +=
            (size_t)snprintf(c->join + off, sizeof c->join - off, "%s%s", i ? "," : "", nd->addr);
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
    char *argv[] = {c->bin,   "init",          "--host", host, "--certs",
                    c->certs, "--data-groups", groups,   NULL};
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

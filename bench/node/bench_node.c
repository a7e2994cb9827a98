/* Benchmark: replicated proposals per second and latency through a real
 * three-node cluster on loopback (separate `meridian start` processes, mutual
 * TLS or --insecure), one group or spread over both groups, with a pipelined
 * client holding `--concurrency` proposals in flight.
 *
 * Usage: bench-node --meridian PATH [--proposals N] [--concurrency C] [--insecure]
 *                   [--groups N] [--size BYTES]
 * --groups N creates N data groups (three replicas each, spread over the nodes)
 * and sends the proposals round-robin to their leaders. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "net/transport.h"
#include "tablet/node/nd.h"

#define NNODES 3

static const char *meridian;
static char dir[128], certs[256], addrs[NNODES][64];
static pid_t pids[NNODES];
static bool insecure;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int run(char *const argv[])
{
    pid_t p = fork();
    if (p == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- the load client ---- */

typedef struct load {
    uv_loop_t *loop;
    net_transport *tr;
    const char **leader; /* by group id; data groups are 2..groups+1 */
    int groups;
    long total, sent, done, failed;
    int inflight, concurrency;
    size_t size;
    int64_t *lat;
    uint8_t *payload;
} load;

typedef struct req {
    load *l;
    int64_t start;
} req;

static void issue(load *l);

static void on_resp(net_transport *t, int status, const mr_err *err, const net_message *resp,
                    void *ud)
{
    req *r = ud;
    load *l = r->l;
    bool ok = false;
    if (status == MR_OK) {
        json_error_t je;
        json_t *o = json_loadb((const char *)resp->payload, resp->len, 0, &je);
        ok = o && json_is_true(json_object_get(o, "ok"));
        if (!ok && o && l->failed == 0)
            fprintf(stderr, "first failure: %s: %s\n",
                    json_string_value(json_object_get(o, "error")),
                    json_string_value(json_object_get(o, "message")));
        json_decref(o);
    } else if (l->failed == 0) {
        fprintf(stderr, "first failure: %s\n", mr_err_msg(err));
    }
    if (ok)
        l->lat[l->done++] = mr_monotonic_ns() - r->start;
    else
        l->failed++;
    l->inflight--;
    free(r);
    issue(l);
}

static void issue(load *l)
{
    while (l->inflight < l->concurrency && l->sent < l->total) {
        int g = 2 + (int)(l->sent % l->groups);
        uint64_t gid = (uint64_t)g;
        memcpy(l->payload, &gid, 8);
        req *r = malloc(sizeof *r);
        r->l = l;
        r->start = mr_monotonic_ns();
        mr_err err;
        if (net_transport_request(l->tr, l->leader[g], ND_MSG_PROPOSE, l->payload,
                                  (uint32_t)(8 + l->size), 30000, on_resp, r, NULL,
                                  &err) != MR_OK) {
            free(r);
            l->failed++;
            l->sent++;
            continue;
        }
        l->sent++;
        l->inflight++;
    }
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Finds each group's leader through `meridian status --json`. */
static int find_leaders(const char **leader, int groups)
{
    for (int tries = 0; tries < 120; tries++) {
        int found = 0;
        for (int i = 0; i < NNODES; i++) {
            char cmd[1024];
            snprintf(cmd, sizeof cmd, "%s status --host %s %s%s --json 2>/dev/null", meridian,
                     addrs[i], insecure ? "--insecure" : "--certs ", insecure ? "" : certs);
            FILE *f = popen(cmd, "r");
            static char buf[1 << 22];
            size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
            if (f)
                pclose(f);
            buf[n] = '\0';
            json_error_t je;
            json_t *o = json_loads(buf, 0, &je);
            size_t k;
            json_t *g;
            json_array_foreach(json_object_get(o, "groups"), k, g)
            {
                int gid = (int)json_integer_value(json_object_get(g, "id"));
                if (gid >= 2 && gid <= groups + 1 &&
                    strcmp(json_string_value(json_object_get(g, "state")), "leader") == 0 &&
                    json_integer_value(json_object_get(g, "lease_left_ns")) > 0) {
                    leader[gid] = addrs[i];
                }
            }
            json_decref(o);
        }
        for (int g = 2; g <= groups + 1; g++)
            found += leader[g] != NULL;
        if (found == groups)
            return 0;
        usleep(250000);
    }
    return -1;
}

static void on_closed(void *ud)
{
    *(bool *)ud = true;
}

static void stop_nodes(void)
{
    for (int i = 0; i < NNODES; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            waitpid(pids[i], NULL, 0);
        }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
    long total = 20000;
    int concurrency = 64, groups = 1;
    size_t size = 64;
    static const struct option opts[] = {{"meridian", required_argument, NULL, 'm'},
                                         {"proposals", required_argument, NULL, 'n'},
                                         {"concurrency", required_argument, NULL, 'c'},
                                         {"groups", required_argument, NULL, 'g'},
                                         {"size", required_argument, NULL, 's'},
                                         {"insecure", no_argument, NULL, 'i'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            meridian = optarg;
            break;
        case 'n':
            total = atol(optarg);
            break;
        case 'c':
            concurrency = atoi(optarg);
            break;
        case 'g':
            groups = atoi(optarg);
            break;
        case 's':
            size = (size_t)atol(optarg);
            break;
        case 'i':
            insecure = true;
            break;
        default:
            fprintf(stderr, "usage: bench-node --meridian PATH [--proposals N] "
                            "[--concurrency C] [--groups N] [--size B] [--insecure]\n");
            return 2;
        }
    }
    if (!meridian || total <= 0 || concurrency <= 0 || groups < 1 || groups > 10000 ||
        size > 1 << 20) {
        fprintf(stderr, "bench-node: --meridian is required; counts must be positive, "
                        "--groups in 1..10000\n");
        return 2;
    }
    mr_log_set_level(MR_LOG_ERROR);
    snprintf(dir, sizeof dir, "/tmp/meridian-bench.XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    snprintf(certs, sizeof certs, "%s/certs", dir);
    if (!insecure) {
        char *a[] = {(char *)meridian, "cert", "create-ca", "--certs-dir", certs, NULL};
        char *b[] = {(char *)meridian, "cert",      "create-node", "--certs-dir", certs,
                     "--host",         "127.0.0.1", NULL};
        char *c[] = {(char *)meridian, "cert", "create-client", "--certs-dir", certs, "--user",
                     "root",           NULL};
        if (run(a) || run(b) || run(c)) {
            fprintf(stderr, "bench-node: cannot create certificates\n");
            return 1;
        }
    }
    char join[256] = "";
    for (int i = 0; i < NNODES; i++) {
        snprintf(addrs[i], sizeof addrs[i], "127.0.0.1:%d", free_port());
        strcat(join, i ? "," : "");
        strcat(join, addrs[i]);
    }
    for (int i = 0; i < NNODES; i++) {
        char data[256], zone[16];
        snprintf(data, sizeof data, "%s/n%d", dir, i);
        snprintf(zone, sizeof zone, "z%d", i);
        char *av[] = {(char *)meridian,
                      "start",
                      "--data",
                      data,
                      "--listen",
                      addrs[i],
                      "--zone",
                      zone,
                      "--join",
                      join,
                      insecure ? "--insecure" : "--certs",
                      insecure ? NULL : certs,
                      NULL};
        pids[i] = fork();
        if (pids[i] == 0) {
            setenv("MERIDIAN_LOG", "error", 1);
            execv(meridian, av);
            _exit(127);
        }
    }
    usleep(500000);
    char ngroups[16];
    snprintf(ngroups, sizeof ngroups, "%d", groups);
    char *init[] = {(char *)meridian,
                    "init",
                    "--host",
                    addrs[0],
                    "--data-groups",
                    ngroups,
                    insecure ? "--insecure" : "--certs",
                    insecure ? NULL : certs,
                    NULL};
    if (run(init) != 0) {
        fprintf(stderr, "bench-node: init failed\n");
        stop_nodes();
        return 1;
    }
    load l = {.groups = groups, .total = total, .concurrency = concurrency, .size = size};
    l.leader = calloc((size_t)groups + 2, sizeof *l.leader);
    if (find_leaders(l.leader, groups) != 0) {
        fprintf(stderr, "bench-node: no leaders\n");
        stop_nodes();
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    net_tls_ctx *tls = NULL;
    mr_err err;
    if (!insecure && net_tls_ctx_load_dir(certs, "client.root", &tls, &err) != MR_OK) {
        fprintf(stderr, "bench-node: %s\n", mr_err_msg(&err));
        stop_nodes();
        return 1;
    }
    net_transport_config tc = {.loop = &loop, .tls = tls};
    if (net_transport_new(&tc, &l.tr, &err) != MR_OK) {
        fprintf(stderr, "bench-node: %s\n", mr_err_msg(&err));
        stop_nodes();
        return 1;
    }
    l.lat = calloc((size_t)total, sizeof *l.lat);
    l.payload = calloc(1, 8 + size);
    memset(l.payload + 8, 'x', size);
    int64_t t0 = mr_monotonic_ns();
    issue(&l);
    while (l.done + l.failed < l.total && uv_run(&loop, UV_RUN_ONCE)) {
    }
    int64_t el = mr_monotonic_ns() - t0;
    qsort(l.lat, (size_t)l.done, sizeof *l.lat, cmp64);
    printf("transport %-8s groups %d  concurrency %-4d size %zu B  proposals %ld (failed %ld)\n",
           insecure ? "plain" : "TLS", groups, concurrency, size, l.done, l.failed);
    if (l.done)
        printf("  %.0f proposals/s   latency p50 %.3f ms   p99 %.3f ms\n",
               (double)l.done / ((double)el / 1e9), (double)l.lat[l.done / 2] / 1e6,
               (double)l.lat[l.done * 99 / 100] / 1e6);
    bool closed = false;
    net_transport_close(l.tr, on_closed, &closed);
    while (!closed && uv_run(&loop, UV_RUN_ONCE)) {
    }
    uv_loop_close(&loop);
    net_tls_ctx_free(tls);
    free(l.lat);
    free(l.leader);
    free(l.payload);
    stop_nodes();
    return l.failed ? 1 : 0;
}

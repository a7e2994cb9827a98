/* A private chronyd pair for tests and clusters (see chronyd.h). */
#include "launch/chronyd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch/proc.h"
#include "truetime/tt.h"

const char *chronyd_path(void)
{
    static const char *const candidates[] = {"/usr/sbin/chronyd", "/sbin/chronyd",
                                             "/usr/local/sbin/chronyd"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    return NULL;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static pid_t start_daemon(const char *dir, const char *name, const char *conf)
{
    char conf_path[300], log_path[300];
    snprintf(conf_path, sizeof conf_path, "%s/%s.conf", dir, name);
    snprintf(log_path, sizeof log_path, "%s/%s.log", dir, name);
    if (write_file(conf_path, conf) != 0)
        return -1;
    /* -x: never touch the system clock; -d: foreground, log to stderr (our log file). */
    char *argv[] = {(char *)chronyd_path(), "-x", "-d", "-f", conf_path, NULL};
    return proc_spawn(argv, log_path);
}

static int wait_socket(const char *path, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            return 0;
        sleep_ms(20);
    }
    return -1;
}

int chrony_pair_start(chrony_pair *p, double node_offset_s)
{
    memset(p, 0, sizeof *p);
    p->upstream = p->node = -1;
    if (!chronyd_path()) {
        fprintf(stderr, "chronyd is not installed (apt-get install chrony)\n");
        return -1;
    }
    if (tmpdir_make(p->dir, sizeof p->dir, "meridian-chrony") != 0) {
        fprintf(stderr, "cannot make a temporary directory\n");
        return -1;
    }
    p->port = free_port(SOCK_DGRAM);
    /* Each chronyd creates its socket directory itself (owned by _chrony,
     * 0750): one directory each, or the second to start finds the first's
     * directory under another owner and disables its command socket. */
    snprintf(p->upstream_sock, sizeof p->upstream_sock, "%s/sock-upstream/upstream.sock", p->dir);
    snprintf(p->node_sock, sizeof p->node_sock, "%s/sock-node/node.sock", p->dir);
    char conf[2048];
    snprintf(conf, sizeof conf,
             "local stratum 8\nport %d\nbindaddress 127.0.0.1\nallow 127.0.0.1\ncmdport 0\n"
             "bindcmdaddress %s\npidfile %s/upstream.pid\n",
             p->port, p->upstream_sock, p->dir);
    p->upstream = start_daemon(p->dir, "upstream", conf);
    char offset[64] = "";
    if (node_offset_s != 0.0)
        snprintf(offset, sizeof offset, " offset %.6f", node_offset_s);
    snprintf(conf, sizeof conf,
             "server 127.0.0.1 port %d iburst minpoll -4 maxpoll -4%s\nport 0\ncmdport 0\n"
             "bindcmdaddress %s\npidfile %s/node.pid\n",
             p->port, offset, p->node_sock, p->dir);
    p->node = start_daemon(p->dir, "node", conf);
    if (p->upstream < 0 || p->node < 0 || wait_socket(p->node_sock, 10000) != 0 ||
        wait_socket(p->upstream_sock, 10000) != 0) {
        fprintf(stderr, "chronyd did not open its command sockets; logs in %s\n", p->dir);
        char cmd[400];
        snprintf(cmd, sizeof cmd, "cat %s/*.log >&2", p->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "(no logs)\n");
        chrony_pair_stop(p);
        return -1;
    }
    return 0;
}

int chrony_pair_wait_sync(const chrony_pair *p, int timeout_ms)
{
    char spec[320];
    snprintf(spec, sizeof spec, "chrony:%s", p->node_sock);
    tt_clock *c;
    mr_err err;
    if (tt_clock_open_manual(spec, NULL, &c, &err) != MR_OK)
        return -1;
    int rc = -1;
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        if (tt_clock_poll(c) == TT_SYNCHRONIZED) {
            rc = 0;
            break;
        }
        sleep_ms(100);
    }
    tt_clock_close(c);
    return rc;
}

void chrony_pair_stop_upstream(chrony_pair *p)
{
    proc_stop(p->upstream, SIGTERM, 5000);
    p->upstream = -1;
}

void chrony_pair_stop(chrony_pair *p)
{
    proc_stop(p->node, SIGTERM, 5000);
    proc_stop(p->upstream, SIGTERM, 5000);
    p->node = p->upstream = -1;
    if (getenv("MERIDIAN_KEEP_TMP") == NULL)
        tmpdir_remove(p->dir);
}

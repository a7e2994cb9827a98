/* Process control for integration tests (see proc.h). */
#include "launch/proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int free_port(int socktype)
{
    int fd = socket(AF_INET, socktype, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

int free_ports(int *ports, int n)
{
    int fds[64];
    int rc = 0, opened = 0;
    if (n > 64)
        return -1;
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

void sleep_ms(int ms)
{
    struct timespec d = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {
    }
}

pid_t proc_spawn_in(char *const argv[], char *const envp[], const char *log_path, const char *ns)
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
        if (envp)
            execvpe(argv[0], argv, envp);
        else
            execvp(argv[0], argv);
        _exit(127);
    }
    if (fd >= 0)
        close(fd);
    if (nsfd >= 0)
        close(nsfd);
    return pid;
}

pid_t proc_spawn(char *const argv[], const char *log_path)
{
    return proc_spawn_in(argv, NULL, log_path, NULL);
}

int proc_run_logged(char *const argv[], const char *log_path, int timeout_ms, const char *ns,
                    const volatile sig_atomic_t *stop)
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
    pid_t pid = proc_spawn_in(argv, NULL, log_path, ns);
    if (pid < 0)
        return -1;
    int status = 0;
    for (int waited = 0;; waited += 20) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (waited >= timeout_ms || (stop && *stop)) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        sleep_ms(20);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct {
    char *data;
    size_t len, cap;
} sbuf;

static void sbuf_read(sbuf *b, int fd, int *open_flag)
{
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n <= 0) {
        if (n == 0 || errno != EINTR)
            *open_flag = 0;
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->data = realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, tmp, (size_t)n);
    b->len += (size_t)n;
    b->data[b->len] = '\0';
}

int proc_run(char *const argv[], int timeout_ms, char **out, char **err_out)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    sbuf bo = {calloc(1, 1), 0, 1}, be = {calloc(1, 1), 0, 1};
    int oo = 1, eo = 1;
    int64_t deadline = now_ms() + timeout_ms;
    bool killed = false;
    while (oo || eo) {
        int left = (int)(deadline - now_ms());
        if (left <= 0) {
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        struct pollfd p[2] = {{.fd = oo ? po[0] : -1, .events = POLLIN},
                              {.fd = eo ? pe[0] : -1, .events = POLLIN}};
        int n = poll(p, 2, left);
        if (n < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            sbuf_read(&bo, po[0], &oo);
        if (p[1].revents)
            sbuf_read(&be, pe[0], &eo);
    }
    close(po[0]);
    close(pe[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (out)
        *out = bo.data;
    else
        free(bo.data);
    if (err_out)
        *err_out = be.data;
    else
        free(be.data);
    if (killed || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

void proc_stop(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return;
    kill(pid, sig);
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD))
            return;
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return;
        }
        sleep_ms(10);
    }
}

const char *proc_meridian_bin(void)
{
    const char *b = getenv("MERIDIAN_BIN");
    return b && *b ? b : NULL;
}

int tmpdir_make(char *buf, size_t len, const char *prefix)
{
    snprintf(buf, len, "/tmp/%s.XXXXXX", prefix);
    if (!mkdtemp(buf))
        return -1;
    return chmod(buf, 0755);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tmpdir_remove(const char *path)
{
    if (path && *path)
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

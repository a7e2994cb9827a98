/* Test fixture for the net tests (see net_fixture.h). */
#include "tests/net/net_fixture.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mr_err.h"
#include "net/cert.h"

int fx_tempdir(char *dir)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, 256, "%s/mr-net-XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

void fx_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_type == DT_DIR)
            fx_rmdir(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

int fx_make_pki(const char *dir)
{
    mr_err err;
    mr_err_clear(&err);
    net_cert_opts o = {.dir = dir};
    if (net_cert_create_ca(&o, &err) ||
        net_cert_create_node(&o, NULL, "127.0.0.1,localhost", &err) ||
        net_cert_create_node(&o, "elsewhere", "10.9.9.9", &err) ||
        net_cert_create_client(&o, "alice", &err)) {
        fprintf(stderr, "fx_make_pki: %s\n", mr_err_msg(&err));
        return -1;
    }
    return 0;
}

net_tls_ctx *fx_tls_mixed(const char *ca_dir, const char *cert_dir, const char *name)
{
    char ca[512], crt[512], key[512];
    snprintf(ca, sizeof ca, "%s/ca.crt", ca_dir);
    snprintf(crt, sizeof crt, "%s/%s.crt", cert_dir, name ? name : "");
    snprintf(key, sizeof key, "%s/%s.key", cert_dir, name ? name : "");
    net_tls_config cfg = {
        .ca_file = ca, .cert_file = name ? crt : NULL, .key_file = name ? key : NULL};
    net_tls_ctx *ctx;
    mr_err err;
    mr_err_clear(&err);
    if (net_tls_ctx_new(&cfg, &ctx, &err)) {
        fprintf(stderr, "fx_tls: %s\n", mr_err_msg(&err));
        return NULL;
    }
    return ctx;
}

net_tls_ctx *fx_tls(const char *dir, const char *name)
{
    return fx_tls_mixed(dir, dir, name);
}

static void on_limit(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

static void on_timer_closed(uv_handle_t *h)
{
    *(int *)h->data = 2;
}

int fx_run_until(uv_loop_t *loop, const int *flag, unsigned limit_ms)
{
    int expired = 0;
    uv_timer_t timer;
    uv_timer_init(loop, &timer);
    timer.data = &expired;
    uv_timer_start(&timer, on_limit, limit_ms, 0);
    while (!*flag && !expired)
        uv_run(loop, UV_RUN_ONCE);
    int ok = *flag != 0;
    /* The timer lives on this stack frame: wait for its close callback. */
    expired = 0;
    uv_close((uv_handle_t *)&timer, on_timer_closed);
    while (expired != 2)
        uv_run(loop, UV_RUN_ONCE);
    return ok ? 0 : -1;
}

void fx_run_for(uv_loop_t *loop, unsigned ms)
{
    int never = 0;
    fx_run_until(loop, &never, ms);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int fx_loop_finish(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    int r = uv_loop_close(loop);
    if (r == UV_EBUSY) {
        fprintf(stderr, "fx_loop_finish: handles left open; closing them\n");
        uv_walk(loop, close_walk, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
    }
    return r;
}

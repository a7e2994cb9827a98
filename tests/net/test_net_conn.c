/* net/conn and net/tls over real sockets on 127.0.0.1: mutual TLS round trips,
 * every way a peer can fail authentication, and a malformed frame or a stalled
 * handshake closing only its own connection. */
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "net/conn.h"
#include "tests/net/net_fixture.h"
#include "tests/test.h"

#define LIMIT_MS         10000 /* safety net for a hung test, not a timing assertion */
#define MAX_SERVER_CONNS 8

typedef struct server {
    uv_tcp_t lis;
    net_conn_opts opts;
    int port;
    int opened, closed, frames;
    int last_code;
    char last_msg[MR_ERRMSG_MAX];
    char peer_name[128];
    net_conn *conns[MAX_SERVER_CONNS];
} server;

typedef struct client {
    net_conn *c;
    int opened, closed, got;
    int code;
    char msg[MR_ERRMSG_MAX];
    char resp[64];
    uint32_t resp_len;
    uint64_t resp_sum;
    char peer_name[128];
    uint32_t send_len; /* payload size sent on open; 0 = "ping" */
    int send_on_open;
} client;

/* ---- Server: echoes every request back as a response. ---- */

static void srv_open(net_conn *c, void *ud)
{
    server *s = ud;
    s->opened++;
    snprintf(s->peer_name, sizeof s->peer_name, "%s", net_conn_peer_name(c));
}

static void srv_frame(net_conn *c, const net_frame *f, void *ud)
{
    server *s = ud;
    s->frames++;
    net_frame r = *f;
    r.flags = NET_FRAME_RESPONSE;
    net_conn_send(c, &r, NULL);
}

static void srv_close(net_conn *c, const mr_err *why, void *ud)
{
    server *s = ud;
    s->closed++;
    s->last_code = why->code;
    snprintf(s->last_msg, sizeof s->last_msg, "%s", mr_err_msg(why));
    for (int i = 0; i < MAX_SERVER_CONNS; i++)
        if (s->conns[i] == c)
            s->conns[i] = NULL;
}

static const net_conn_cbs srv_cbs = {srv_open, srv_frame, srv_close};

static void srv_accept(uv_stream_t *lis, int status)
{
    server *s = lis->data;
    net_conn *c;
    if (status < 0 || net_conn_accept(lis, &s->opts, &srv_cbs, s, &c, NULL) != MR_OK)
        return;
    for (int i = 0; i < MAX_SERVER_CONNS; i++)
        if (!s->conns[i]) {
            s->conns[i] = c;
            return;
        }
    net_conn_close(c, MR_EFULL, "test server full");
}

static int server_start(uv_loop_t *loop, server *s, net_tls_ctx *tls)
{
    memset(s, 0, sizeof *s);
    s->opts.tls = tls;
    s->opts.open_timeout_ms = 30000;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(loop, &s->lis);
    s->lis.data = s;
    if (uv_tcp_bind(&s->lis, (struct sockaddr *)&sa, 0) ||
        uv_listen((uv_stream_t *)&s->lis, 16, srv_accept))
        return -1;
    int len = sizeof sa;
    uv_tcp_getsockname(&s->lis, (struct sockaddr *)&sa, &len);
    s->port = ntohs(sa.sin_port);
    return 0;
}

static void server_stop(server *s)
{
    for (int i = 0; i < MAX_SERVER_CONNS; i++)
        if (s->conns[i])
            net_conn_close(s->conns[i], MR_OK, "test over");
    uv_close((uv_handle_t *)&s->lis, NULL);
}

/* ---- Client: sends one request when open, records the response. ---- */

static void cli_send(client *cl)
{
    static uint8_t big[1 << 20];
    if (big[1] == 0)
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = (uint8_t)(i * 131 + (i >> 11));
    net_frame f = {.type = 7, .req_id = 1, .len = 4, .payload = (const uint8_t *)"ping"};
    if (cl->send_len) {
        f.len = cl->send_len;
        f.payload = big;
    }
    net_conn_send(cl->c, &f, NULL);
}

static void cli_open(net_conn *c, void *ud)
{
    client *cl = ud;
    cl->opened++;
    snprintf(cl->peer_name, sizeof cl->peer_name, "%s", net_conn_peer_name(c));
    if (cl->send_on_open)
        cli_send(cl);
}

static void cli_frame(net_conn *c, const net_frame *f, void *ud)
{
    client *cl = ud;
    cl->got++;
    cl->resp_len = f->len;
    cl->resp_sum = 0;
    for (uint32_t i = 0; i < f->len; i++)
        cl->resp_sum = cl->resp_sum * 31 + f->payload[i];
    size_t n = f->len < sizeof cl->resp - 1 ? f->len : sizeof cl->resp - 1;
    memcpy(cl->resp, f->payload, n);
    cl->resp[n] = '\0';
}

static void cli_close(net_conn *c, const mr_err *why, void *ud)
{
    client *cl = ud;
    cl->closed++;
    cl->code = why->code;
    snprintf(cl->msg, sizeof cl->msg, "%s", mr_err_msg(why));
    cl->c = NULL;
}

static const net_conn_cbs cli_cbs = {cli_open, cli_frame, cli_close};

static int client_start_host(uv_loop_t *loop, client *cl, net_tls_ctx *tls, const char *host,
                             int port)
{
    memset(cl, 0, sizeof *cl);
    cl->send_on_open = 1;
    char addr[300];
    snprintf(addr, sizeof addr, "%s:%d", host, port);
    net_conn_opts o = {.tls = tls, .open_timeout_ms = 30000};
    return net_conn_connect(loop, &o, addr, &cli_cbs, cl, &cl->c, NULL);
}

static int client_start(uv_loop_t *loop, client *cl, net_tls_ctx *tls, int port)
{
    return client_start_host(loop, cl, tls, "127.0.0.1", port);
}
/* Each test gets fresh certificates and a fresh loop. */
typedef struct world {
    uv_loop_t loop;
    char dir[256];  /* the cluster CA and its certificates */
    char dir2[256]; /* another CA with its own "node" certificate */
} world;

static int world_init(world *w)
{
    uv_loop_init(&w->loop);
    w->dir2[0] = '\0';
    if (fx_tempdir(w->dir) || fx_make_pki(w->dir))
        return -1;
    if (fx_tempdir(w->dir2) || fx_make_pki(w->dir2))
        return -1;
    return 0;
}

static int world_done(world *w)
{
    int r = fx_loop_finish(&w->loop);
    fx_rmdir(w->dir);
    if (w->dir2[0])
        fx_rmdir(w->dir2);
    return r;
}

TEST(tls_mutual_round_trip)
{
    world w;
    CHECK(world_init(&w) == 0);
    net_tls_ctx *stls = fx_tls(w.dir, "node"), *ctls = fx_tls(w.dir, "client.alice");
    CHECK(stls && ctls);
    server s;
    client cl;
    CHECK(server_start(&w.loop, &s, stls) == 0);
    CHECK(client_start(&w.loop, &cl, ctls, s.port) == MR_OK);
    CHECK(fx_run_until(&w.loop, &cl.got, LIMIT_MS) == 0);
    CHECK_STR(cl.resp, "ping");
    CHECK_STR(cl.peer_name, "node"); /* the server proved it holds node.key */
    CHECK_STR(s.peer_name, "alice"); /* and the client proved it holds alice's */
    net_conn_close(cl.c, MR_OK, "done");
    CHECK(fx_run_until(&w.loop, &s.closed, LIMIT_MS) == 0);
    CHECK_EQ(cl.code, MR_OK);
    CHECK_EQ(s.last_code, MR_EUNAVAIL); /* the server saw the peer go */
    server_stop(&s);
    CHECK_EQ(world_done(&w), 0);
    net_tls_ctx_free(stls);
    net_tls_ctx_free(ctls);
}

/* By name: resolved asynchronously, sent as SNI, and matched against the
 * certificate's DNS SubjectAltName. */
TEST(tls_dial_by_name)
{
    world w;
    CHECK(world_init(&w) == 0);
    net_tls_ctx *stls = fx_tls(w.dir, "node"), *ctls = fx_tls(w.dir, "node");
    CHECK(stls && ctls);
    server s;
    client cl;
    CHECK(server_start(&w.loop, &s, stls) == 0);
    CHECK(client_start_host(&w.loop, &cl, ctls, "localhost", s.port) == MR_OK);
    CHECK(fx_run_until(&w.loop, &cl.got, LIMIT_MS) == 0);
    CHECK_STR(cl.resp, "ping");
    net_conn_close(cl.c, MR_OK, "done");
    server_stop(&s);
    CHECK_EQ(world_done(&w), 0);
    net_tls_ctx_free(stls);
    net_tls_ctx_free(ctls);
}

/* A 1 MiB frame crosses many TLS records and socket reads both ways. */
TEST(tls_large_frame_round_trip)
{
    world w;
    CHECK(world_init(&w) == 0);
    net_tls_ctx *stls = fx_tls(w.dir, "node"), *ctls = fx_tls(w.dir, "node");
    server s;
    client cl;
    CHECK(server_start(&w.loop, &s, stls) == 0);
    CHECK(client_start(&w.loop, &cl, ctls, s.port) == MR_OK);
    cl.send_len = 1 << 20;
    CHECK(fx_run_until(&w.loop, &cl.got, LIMIT_MS) == 0);
    CHECK_EQ(cl.resp_len, 1 << 20);
    uint64_t want = 0;
    for (uint32_t i = 0; i < (1u << 20); i++)
        want = want * 31 + (uint8_t)(i * 131 + (i >> 11));
    CHECK(cl.resp_sum == want);
    net_conn_close(cl.c, MR_OK, "done");
    server_stop(&s);
    CHECK_EQ(world_done(&w), 0);
    net_tls_ctx_free(stls);
    net_tls_ctx_free(ctls);
}

/* A frame over the write-queue bound is refused at once, and the connection
 * stays usable. */
TEST(write_queue_bound)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server s;
    client cl;
    CHECK(server_start(&loop, &s, NULL) == 0);
    memset(&cl, 0, sizeof cl);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", s.port);
    net_conn_opts o = {.max_write_queue = 64};
    CHECK(net_conn_connect(&loop, &o, addr, &cli_cbs, &cl, &cl.c, NULL) == MR_OK);
    CHECK(fx_run_until(&loop, &cl.opened, LIMIT_MS) == 0);
    static uint8_t payload[100];
    net_frame f = {.type = 7, .req_id = 1, .len = sizeof payload, .payload = payload};
    mr_err err;
    CHECK_EQ(net_conn_send(cl.c, &f, &err), MR_EFULL);
    CHECK(strstr(err.msg, "write queue"));
    f.len = 10;
    CHECK_EQ(net_conn_send(cl.c, &f, &err), MR_OK);
    CHECK(fx_run_until(&loop, &cl.got, LIMIT_MS) == 0);
    CHECK_EQ(cl.resp_len, 10);
    CHECK(net_conn_is_open(cl.c)); /* refusing a frame did not hurt the connection */
    f.type = 0;
    CHECK_EQ(net_conn_send(cl.c, &f, NULL), MR_EINVAL);
    net_conn_close(cl.c, MR_OK, "done");
    server_stop(&s);
    CHECK_EQ(fx_loop_finish(&loop), 0);
}

/* Runs one refused handshake: returns with server and client both closed. */
static void refused(world *w, net_tls_ctx *stls, net_tls_ctx *ctls, server *s, client *cl)
{
    server_start(&w->loop, s, stls);
    client_start(&w->loop, cl, ctls, s->port);
    fx_run_until(&w->loop, &cl->closed, LIMIT_MS);
    fx_run_until(&w->loop, &s->closed, LIMIT_MS);
    server_stop(s);
}

TEST(tls_client_cert_from_other_ca_refused)
{
    world w;
    CHECK(world_init(&w) == 0);
    /* Trusts our CA, but its own certificate comes from the other one. */
    net_tls_ctx *stls = fx_tls(w.dir, "node"), *ctls = fx_tls_mixed(w.dir, w.dir2, "node");
    CHECK(stls && ctls);
    server s;
    client cl;
    refused(&w, stls, ctls, &s, &cl);
    CHECK_EQ(s.opened, 0);
    CHECK_EQ(s.frames, 0);
    CHECK_EQ(s.closed, 1);
    CHECK_EQ(s.last_code, MR_EPROTO);
    CHECKF(strstr(s.last_msg, "certificate"), "server said: %s", s.last_msg);
    CHECK_EQ(cl.got, 0);
    CHECK_EQ(cl.closed, 1);
    CHECK(cl.code != MR_OK);
    CHECK_EQ(world_done(&w), 0);
    net_tls_ctx_free(stls);
    net_tls_ctx_free(ctls);
}

TEST(tls_server_cert_from_other_ca_refused)
{
    world w;
    CHECK(world_init(&w) == 0);
    net_tls_ctx *stls = fx_tls_mixed(w.dir, w.dir2, "node"), *ctls = fx_tls(w.dir, "node");
    CHECK(stls && ctls);
    server s;
    client cl;
    refused(&w, stls, ctls, &s, &cl);
    CHECK_EQ(cl.opened, 0);
    CHECK_EQ(cl.got, 0);
    CHECK_EQ(cl.code, MR_EPROTO);
    CHECKF(strstr(cl.msg, "certificate rejected"), "client said: %s", cl.msg);
    CHECK_EQ(s.opened, 0);
    CHECK_EQ(s.frames, 0);
    CHECK_EQ(world_done(&w), 0);
    net_tls_ctx_free(stls);
    net_tls_ctx_free(ctls);
}

TEST(tls_client_without_cert_refused)
{
    world w;
    CHECK(world_init(&w) == 0);
    net_tls_ctx *stls = fx_tls(w.dir, "node"), *ctls = fx_tls(w.dir, NULL);
    CHECK(stls && ctls);
    server s;
    client cl;
    refused(&w, stls, ctls, &s, &cl);
    CHECK_EQ(s.opened, 0);
    CHECK_EQ(s.frames, 0);
    CHECK_EQ(s.last_code, MR_EPROTO);
    CHECKF(strstr(s.last_msg, "certificate"), "server said: %s", s.last_msg);
    CHECK_EQ(cl.got, 0);
    CHECK(cl.code != MR_OK);
    CHECK_EQ(world_done(&w), 0);
    net_tls_ctx_free(stls);
    net_tls_ctx_free(ctls);
}

TEST(tls_server_name_mismatch_refused)
{
    world w;
    CHECK(world_init(&w) == 0);
    /* A valid certificate of our CA, but for 10.9.9.9, not the 127.0.0.1 we dialled. */
    net_tls_ctx *stls = fx_tls(w.dir, "elsewhere"), *ctls = fx_tls(w.dir, "node");
    CHECK(stls && ctls);
    server s;
    client cl;
    refused(&w, stls, ctls, &s, &cl);
    CHECK_EQ(cl.opened, 0);
    CHECK_EQ(cl.code, MR_EPROTO);
    CHECKF(strstr(cl.msg, "IP address mismatch"), "client said: %s", cl.msg);
    CHECK_EQ(s.opened, 0);
    CHECK_EQ(world_done(&w), 0);
    net_tls_ctx_free(stls);
    net_tls_ctx_free(ctls);
}

TEST(plaintext_client_to_tls_server_refused)
{
    world w;
    CHECK(world_init(&w) == 0);
    net_tls_ctx *stls = fx_tls(w.dir, "node");
    server s;
    client cl;
    refused(&w, stls, NULL, &s, &cl);
    CHECK_EQ(cl.opened, 1); /* plain TCP opens at once, then its frame is refused */
    CHECK_EQ(cl.got, 0);
    CHECK_EQ(s.opened, 0);
    CHECK_EQ(s.frames, 0);
    CHECK_EQ(s.last_code, MR_EPROTO);
    CHECK_EQ(world_done(&w), 0);
    net_tls_ctx_free(stls);
}

/* An oversize frame (a malformed one for this server) inside a healthy TLS
 * session closes that session; a second session carries on. */
TEST(tls_malformed_frame_closes_only_its_conn)
{
    world w;
    CHECK(world_init(&w) == 0);
    net_tls_ctx *stls = fx_tls(w.dir, "node"), *ctls = fx_tls(w.dir, "node");
    server s;
    client good, bad;
    CHECK(server_start(&w.loop, &s, stls) == 0);
    s.opts.max_frame = 1024;
    CHECK(client_start(&w.loop, &good, ctls, s.port) == MR_OK);
    CHECK(fx_run_until(&w.loop, &good.got, LIMIT_MS) == 0);
    CHECK(client_start(&w.loop, &bad, ctls, s.port) == MR_OK);
    bad.send_len = 4096;
    CHECK(fx_run_until(&w.loop, &bad.closed, LIMIT_MS) == 0);
    CHECK(fx_run_until(&w.loop, &s.closed, LIMIT_MS) == 0);
    CHECK_EQ(s.last_code, MR_EPROTO);
    CHECKF(strstr(s.last_msg, "exceeds the maximum of 1024"), "server said: %s", s.last_msg);
    CHECK_EQ(bad.got, 0);
    /* The good connection is still open and still answered. */
    CHECK(good.c && net_conn_is_open(good.c));
    good.got = 0;
    cli_send(&good);
    CHECK(fx_run_until(&w.loop, &good.got, LIMIT_MS) == 0);
    CHECK_STR(good.resp, "ping");
    CHECK_EQ(s.closed, 1);
    net_conn_close(good.c, MR_OK, "done");
    server_stop(&s);
    CHECK_EQ(world_done(&w), 0);
    net_tls_ctx_free(stls);
    net_tls_ctx_free(ctls);
}

/* ---- Raw sockets: garbage and silence. ---- */

typedef struct raw {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    const char *send; /* NULL: say nothing */
    int eof;
    char buf[256];
} raw;

static void raw_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    raw *r = h->data;
    *b = uv_buf_init(r->buf, sizeof r->buf);
}

static void raw_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    raw *r = st->data;
    if (n < 0)
        r->eof = 1;
}

static void raw_connected(uv_connect_t *req, int status)
{
    raw *r = req->data;
    if (status < 0) {
        r->eof = 1;
        return;
    }
    uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read);
    if (r->send) {
        uv_buf_t b = uv_buf_init((char *)r->send, (unsigned)strlen(r->send));
        uv_write(&r->wreq, (uv_stream_t *)&r->tcp, &b, 1, NULL);
    }
}

static void raw_start(uv_loop_t *loop, raw *r, int port, const char *send)
{
    memset(r, 0, sizeof *r);
    r->send = send;
    uv_tcp_init(loop, &r->tcp);
    r->tcp.data = r;
    r->creq.data = r;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", port, &sa);
    uv_tcp_connect(&r->creq, &r->tcp, (struct sockaddr *)&sa, raw_connected);
}

TEST(plain_garbage_closes_only_its_conn)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server s;
    client good;
    raw junk;
    CHECK(server_start(&loop, &s, NULL) == 0);
    CHECK(client_start(&loop, &good, NULL, s.port) == MR_OK);
    CHECK(fx_run_until(&loop, &good.got, LIMIT_MS) == 0);
    raw_start(&loop, &junk, s.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(fx_run_until(&loop, &junk.eof, LIMIT_MS) == 0);
    CHECK_EQ(s.closed, 1);
    CHECK_EQ(s.last_code, MR_EPROTO);
    CHECKF(strstr(s.last_msg, "bad frame magic"), "server said: %s", s.last_msg);
    good.got = 0;
    cli_send(&good);
    CHECK(fx_run_until(&loop, &good.got, LIMIT_MS) == 0);
    CHECK_STR(good.resp, "ping");
    uv_close((uv_handle_t *)&junk.tcp, NULL);
    net_conn_close(good.c, MR_OK, "done");
    server_stop(&s);
    CHECK_EQ(fx_loop_finish(&loop), 0);
}

TEST(tls_silent_peer_times_out)
{
    world w;
    CHECK(world_init(&w) == 0);
    net_tls_ctx *stls = fx_tls(w.dir, "node");
    server s;
    raw quiet;
    CHECK(server_start(&w.loop, &s, stls) == 0);
    s.opts.open_timeout_ms = 100;
    raw_start(&w.loop, &quiet, s.port, NULL);
    CHECK(fx_run_until(&w.loop, &s.closed, LIMIT_MS) == 0);
    CHECK_EQ(s.last_code, MR_ETIMEDOUT);
    CHECK(fx_run_until(&w.loop, &quiet.eof, LIMIT_MS) == 0);
    uv_close((uv_handle_t *)&quiet.tcp, NULL);
    server_stop(&s);
    CHECK_EQ(world_done(&w), 0);
    net_tls_ctx_free(stls);
}

TEST(connect_refused_reports_unavailable)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    server s;
    client cl;
    /* Bind a port, close it: nothing listens there now. */
    CHECK(server_start(&loop, &s, NULL) == 0);
    int port = s.port;
    server_stop(&s);
    fx_run_for(&loop, 10);
    CHECK(client_start(&loop, &cl, NULL, port) == MR_OK);
    CHECK(fx_run_until(&loop, &cl.closed, LIMIT_MS) == 0);
    CHECK_EQ(cl.opened, 0);
    CHECK_EQ(cl.code, MR_EUNAVAIL);
    mr_err err;
    net_conn *c;
    net_conn_opts o = {0};
    CHECK_EQ(net_conn_connect(&loop, &o, "no-port", &cli_cbs, &cl, &c, &err), MR_EINVAL);
    CHECK_EQ(fx_loop_finish(&loop), 0);
}

int main(int argc, char **argv)
{
    /* The refusals log warnings by design; keep test output readable. */
    if (!getenv("MERIDIAN_LOG"))
        mr_log_set_level(MR_LOG_ERROR);
    static const test_case cases[] = {
        TEST_CASE(tls_mutual_round_trip),
        TEST_CASE(tls_dial_by_name),
        TEST_CASE(tls_large_frame_round_trip),
        TEST_CASE(write_queue_bound),
        TEST_CASE(tls_client_cert_from_other_ca_refused),
        TEST_CASE(tls_server_cert_from_other_ca_refused),
        TEST_CASE(tls_client_without_cert_refused),
        TEST_CASE(tls_server_name_mismatch_refused),
        TEST_CASE(plaintext_client_to_tls_server_refused),
        TEST_CASE(tls_malformed_frame_closes_only_its_conn),
        TEST_CASE(plain_garbage_closes_only_its_conn),
        TEST_CASE(tls_silent_peer_times_out),
        TEST_CASE(connect_refused_reports_unavailable),
    };
    return test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}

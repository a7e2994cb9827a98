/* net/transport over real TLS on 127.0.0.1: request/response, one connection per
 * peer, timeouts, a malformed frame isolated to its connection, reconnect with
 * backoff after the server restarts, bounded queues, and close. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "net/buf.h"
#include "net/conn.h"
#include "net/transport.h"
#include "tests/net/net_fixture.h"
#include "tests/test.h"

#define LIMIT_MS 20000 /* safety net for a hung test, not a timing assertion */
#define LONG_MS  30000 /* a request timeout that only a hung test reaches */

enum { T_ECHO = 1, T_SILENT = 2, T_NOTE = 3, T_ECHOED = 4 };

typedef struct node {
    net_transport *t;
    int notes;
    int requests;
    char last_peer_name[128];
    int last_peer_is_node;
    net_reply_to last_to; /* where the last request came from */
    int closed;
} node;

/* Server side: upper-cases T_ECHO requests, swallows T_SILENT, counts T_NOTE. */
static void on_message(net_transport *t, const net_message *m, void *ud)
{
    node *n = ud;
    snprintf(n->last_peer_name, sizeof n->last_peer_name, "%s", m->peer_name);
    n->last_peer_is_node = m->peer_is_node;
    n->last_to = m->reply_to;
    if (m->type == T_NOTE) {
        n->notes++;
        return;
    }
    n->requests++;
    if (m->type != T_ECHO)
        return;
    char up[256];
    uint32_t len = m->len < sizeof up ? m->len : (uint32_t)sizeof up;
    for (uint32_t i = 0; i < len; i++)
        up[i] = (char)toupper(m->payload[i]);
    net_transport_reply(t, m->reply_to, T_ECHOED, up, len, NULL);
}

static void on_closed(void *ud)
{
    ((node *)ud)->closed = 1;
}

static size_t next_max_conns;   /* max_conns for the next node_start, then reset */
static uint64_t next_idle_ms;   /* idle_ms for the next node_start, then reset */
static uint64_t next_answer_ms; /* answer_ms for the next node_start, then reset */

static int node_start(uv_loop_t *loop, node *n, net_tls_ctx *tls, const char *listen,
                      uint32_t max_frame)
{
    memset(n, 0, sizeof *n);
    net_transport_config cfg = {
        .loop = loop,
        .tls = tls,
        .listen = listen,
        .max_frame = max_frame,
        .backoff_min_ms = 10,
        .backoff_max_ms = 100,
        .seed = 42,
        .on_message = on_message,
        .ud = n,
        .max_conns = next_max_conns,
        .idle_ms = next_idle_ms,
        .answer_ms = next_answer_ms,
    };
    next_max_conns = 0;
    next_idle_ms = 0;
    next_answer_ms = 0;
    mr_err err;
    mr_err_clear(&err);
    int rc = net_transport_new(&cfg, &n->t, &err);
    if (rc)
        fprintf(stderr, "node_start: %s\n", mr_err_msg(&err));
    return rc;
}

static int node_stop(uv_loop_t *loop, node *n)
{
    net_transport_close(n->t, on_closed, n);
    return fx_run_until(loop, &n->closed, LIMIT_MS);
}

typedef struct call {
    int done;
    int status;
    char msg[MR_ERRMSG_MAX];
    char resp[256];
    uint8_t type;
} call;

static void on_response(net_transport *t, int status, const mr_err *err, const net_message *resp,
                        void *ud)
{
    call *c = ud;
    c->done++;
    c->status = status;
    snprintf(c->msg, sizeof c->msg, "%s", status ? mr_err_msg(err) : "");
    if (resp) {
        size_t n = resp->len < sizeof c->resp - 1 ? resp->len : sizeof c->resp - 1;
        memcpy(c->resp, resp->payload, n);
        c->resp[n] = '\0';
        c->type = resp->type;
    }
}

static int request(node *n, const char *peer, uint8_t type, const char *payload,
                   uint64_t timeout_ms, call *c)
{
    memset(c, 0, sizeof *c);
    return net_transport_request(n->t, peer, type, payload, (uint32_t)strlen(payload), timeout_ms,
                                 on_response, c, NULL, NULL);
}

typedef struct world {
    uv_loop_t loop;
    char dir[256];
    net_tls_ctx *tls;
} world;

static int world_init(world *w)
{
    uv_loop_init(&w->loop);
    w->tls = NULL;
    if (fx_tempdir(w->dir) || fx_make_pki(w->dir))
        return -1;
    w->tls = fx_tls(w->dir, "node");
    return w->tls ? 0 : -1;
}

static int world_done(world *w)
{
    int r = fx_loop_finish(&w->loop);
    net_tls_ctx_free(w->tls);
    fx_rmdir(w->dir);
    return r;
}

static void addr_of(const node *n, char *buf, size_t len)
{
    snprintf(buf, len, "127.0.0.1:%d", net_transport_port(n->t));
}

TEST(transport_round_trip_one_conn_per_peer)
{
    world w;
    CHECK(world_init(&w) == 0);
    node srv, cli;
    char addr[64];
    CHECK(node_start(&w.loop, &srv, w.tls, "127.0.0.1:0", 0) == 0);
    CHECK(node_start(&w.loop, &cli, w.tls, NULL, 0) == 0);
    addr_of(&srv, addr, sizeof addr);

    call c;
    CHECK(request(&cli, addr, T_ECHO, "hello", LONG_MS, &c) == MR_OK);
    CHECK_EQ(c.done, 0); /* never from inside net_transport_request */
    CHECK(fx_run_until(&w.loop, &c.done, LIMIT_MS) == 0);
    CHECK_EQ(c.status, MR_OK);
    CHECK_STR(c.resp, "HELLO");
    CHECK_EQ(c.type, T_ECHOED);
    CHECK_STR(srv.last_peer_name, "node");
    CHECK_EQ(srv.last_peer_is_node, 1);

    /* Many requests and one-way notes, all on the one connection. */
    static call many[200];
    for (int i = 0; i < 200; i++) {
        char p[32];
        snprintf(p, sizeof p, "r%d", i);
        CHECK(request(&cli, addr, T_ECHO, p, LONG_MS, &many[i]) == MR_OK);
        CHECK(net_transport_send(cli.t, addr, T_NOTE, "n", 1, NULL) == MR_OK);
    }
    for (int i = 0; i < 200; i++) {
        CHECK(fx_run_until(&w.loop, &many[i].done, LIMIT_MS) == 0);
        char want[32];
        snprintf(want, sizeof want, "R%d", i);
        CHECK_STR(many[i].resp, want);
    }
    CHECK_EQ(srv.notes, 200);
    net_transport_stats ss, cs;
    net_transport_get_stats(srv.t, &ss);
    net_transport_get_stats(cli.t, &cs);
    CHECK_EQ(ss.conns, 1);
    CHECK_EQ(cs.dials, 1);
    CHECK_EQ(cs.requests, 0);

    CHECK(node_stop(&w.loop, &cli) == 0);
    CHECK(node_stop(&w.loop, &srv) == 0);
    CHECK_EQ(world_done(&w), 0);
}

/* A server's one-way notice to a client on the connection a request came in on (how a
 * leader tells a client its transaction was wounded): it arrives as a message, not as a
 * response, and fails once that connection is gone. */
TEST(transport_notify_on_the_requests_connection)
{
    world w;
    CHECK(world_init(&w) == 0);
    node srv, cli;
    char addr[64];
    CHECK(node_start(&w.loop, &srv, w.tls, "127.0.0.1:0", 0) == 0);
    CHECK(node_start(&w.loop, &cli, w.tls, NULL, 0) == 0);
    addr_of(&srv, addr, sizeof addr);
    call c;
    CHECK(request(&cli, addr, T_SILENT, "x", 300, &c) == MR_OK);
    CHECK(fx_run_until(&w.loop, &srv.requests, LIMIT_MS) == 0);
    net_reply_to to = srv.last_to;
    CHECK(to.conn_id != 0);
    mr_err err;
    CHECK_EQ(net_transport_notify(srv.t, to, 0, "n", 1, &err), MR_EINVAL);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(net_transport_notify(srv.t, to, T_NOTE, "n", 1, &err), MR_OK);
    int never = 0;
    for (int i = 0; i < LIMIT_MS / 10 && cli.notes < 3; i++)
        fx_run_until(&w.loop, &never, 10);
    CHECK(fx_run_until(&w.loop, &c.done, LIMIT_MS) == 0);
    CHECK_EQ(cli.notes, 3);
    CHECK_EQ(c.done, 1); /* the silent request timed out: a notice is no answer */
    CHECK_EQ(c.status, MR_ETIMEDOUT);
    CHECK(node_stop(&w.loop, &cli) == 0);
    int gone = 0;
    for (int i = 0; i < 200 && !gone; i++) { /* until the server sees the close */
        gone = net_transport_notify(srv.t, to, T_NOTE, "n", 1, &err) == MR_EUNAVAIL;
        if (!gone)
            fx_run_until(&w.loop, &never, 10);
    }
    CHECK(gone);
    CHECK(node_stop(&w.loop, &srv) == 0);
    CHECK_EQ(world_done(&w), 0);
}

TEST(transport_request_timeout)
{
    world w;
    CHECK(world_init(&w) == 0);
    node srv, cli;
    char addr[64];
    CHECK(node_start(&w.loop, &srv, w.tls, "127.0.0.1:0", 0) == 0);
    CHECK(node_start(&w.loop, &cli, w.tls, NULL, 0) == 0);
    addr_of(&srv, addr, sizeof addr);
    call first, c, later;
    /* Connect first, so the short timeout below is about the answer alone. */
    CHECK(request(&cli, addr, T_ECHO, "hi", LONG_MS, &first) == MR_OK);
    CHECK(fx_run_until(&w.loop, &first.done, LIMIT_MS) == 0);
    CHECK(request(&cli, addr, T_SILENT, "anyone?", 100, &c) == MR_OK);
    CHECK(fx_run_until(&w.loop, &c.done, LIMIT_MS) == 0);
    CHECK_EQ(c.done, 1);
    CHECK_EQ(c.status, MR_ETIMEDOUT);
    CHECKF(strstr(c.msg, "timed out"), "got: %s", c.msg);
    /* It was delivered; the peer just never answered. */
    for (int i = 0; i < 1000 && srv.requests < 2; i++)
        fx_run_for(&w.loop, 5);
    CHECK_EQ(srv.requests, 2);
    /* A timeout does not break the connection. */
    CHECK(request(&cli, addr, T_ECHO, "still there", LONG_MS, &later) == MR_OK);
    CHECK(fx_run_until(&w.loop, &later.done, LIMIT_MS) == 0);
    CHECK_STR(later.resp, "STILL THERE");
    net_transport_stats cs;
    net_transport_get_stats(cli.t, &cs);
    CHECK_EQ(cs.timeouts, 1);
    CHECK_EQ(cs.dials, 1);
    CHECK(node_stop(&w.loop, &cli) == 0);
    CHECK(node_stop(&w.loop, &srv) == 0);
    CHECK_EQ(w.loop.active_handles, 0);
    CHECK_EQ(world_done(&w), 0);
}

TEST(transport_malformed_frame_isolated)
{
    world w;
    CHECK(world_init(&w) == 0);
    node srv, good, bad;
    char addr[64];
    CHECK(node_start(&w.loop, &srv, w.tls, "127.0.0.1:0", 1024) == 0);
    CHECK(node_start(&w.loop, &good, w.tls, NULL, 0) == 0);
    CHECK(node_start(&w.loop, &bad, w.tls, NULL, 0) == 0);
    addr_of(&srv, addr, sizeof addr);
    call g1, b1, g2;
    CHECK(request(&good, addr, T_ECHO, "a", LONG_MS, &g1) == MR_OK);
    CHECK(fx_run_until(&w.loop, &g1.done, LIMIT_MS) == 0);
    CHECK_EQ(g1.status, MR_OK);
    /* 4 KiB is a valid frame for the sender, a malformed one for this server. */
    static char big[4097];
    memset(big, 'x', 4096);
    CHECK(request(&bad, addr, T_ECHO, big, LONG_MS, &b1) == MR_OK);
    CHECK(fx_run_until(&w.loop, &b1.done, LIMIT_MS) == 0);
    CHECK_EQ(b1.status, MR_EUNAVAIL);
    CHECKF(strstr(b1.msg, "lost"), "got: %s", b1.msg);
    CHECK_EQ(srv.requests, 1);
    CHECK(request(&good, addr, T_ECHO, "b", LONG_MS, &g2) == MR_OK);
    CHECK(fx_run_until(&w.loop, &g2.done, LIMIT_MS) == 0);
    CHECK_EQ(g2.status, MR_OK);
    CHECK_STR(g2.resp, "B");
    net_transport_stats ss, gs;
    net_transport_get_stats(srv.t, &ss);
    net_transport_get_stats(good.t, &gs);
    CHECK_EQ(ss.conns_failed, 1);
    CHECK_EQ(gs.dials, 1); /* the good client never lost its connection */
    CHECK(node_stop(&w.loop, &good) == 0);
    CHECK(node_stop(&w.loop, &bad) == 0);
    CHECK(node_stop(&w.loop, &srv) == 0);
    CHECK_EQ(world_done(&w), 0);
}

TEST(transport_reconnects_after_server_restart)
{
    world w;
    CHECK(world_init(&w) == 0);
    node srv, cli;
    char addr[64];
    CHECK(node_start(&w.loop, &srv, w.tls, "127.0.0.1:0", 0) == 0);
    CHECK(node_start(&w.loop, &cli, w.tls, NULL, 0) == 0);
    addr_of(&srv, addr, sizeof addr);
    call c1, c2;
    CHECK(request(&cli, addr, T_ECHO, "before", LONG_MS, &c1) == MR_OK);
    CHECK(fx_run_until(&w.loop, &c1.done, LIMIT_MS) == 0);
    CHECK_STR(c1.resp, "BEFORE");

    CHECK(node_stop(&w.loop, &srv) == 0);
    /* While the server is down the request waits; dials fail and back off. */
    CHECK(request(&cli, addr, T_ECHO, "after", 20000, &c2) == MR_OK);
    net_transport_stats cs;
    for (int i = 0; i < 1000; i++) {
        net_transport_get_stats(cli.t, &cs);
        if (cs.dials >= 4)
            break;
        fx_run_for(&w.loop, 10);
    }
    CHECK(cs.dials >= 4);
    CHECK_EQ(c2.done, 0);

    CHECK(node_start(&w.loop, &srv, w.tls, addr, 0) == 0);
    CHECK(fx_run_until(&w.loop, &c2.done, LIMIT_MS) == 0);
    CHECK_EQ(c2.status, MR_OK);
    CHECK_STR(c2.resp, "AFTER");
    CHECK(node_stop(&w.loop, &cli) == 0);
    CHECK(node_stop(&w.loop, &srv) == 0);
    CHECK_EQ(world_done(&w), 0);
}

TEST(transport_queue_bound_and_dead_peer)
{
    world w;
    CHECK(world_init(&w) == 0);
    node dead, cli;
    char addr[64];
    /* A port that was just freed: nothing listens, every dial is refused. */
    CHECK(node_start(&w.loop, &dead, w.tls, "127.0.0.1:0", 0) == 0);
    addr_of(&dead, addr, sizeof addr);
    CHECK(node_stop(&w.loop, &dead) == 0);

    memset(&cli, 0, sizeof cli);
    net_transport_config cfg = {.loop = &w.loop,
                                .tls = w.tls,
                                .max_pending = 2,
                                .backoff_min_ms = 10,
                                .backoff_max_ms = 50,
                                .on_message = on_message,
                                .ud = &cli};
    CHECK(net_transport_new(&cfg, &cli.t, NULL) == MR_OK);
    call c;
    mr_err err;
    CHECK(request(&cli, addr, T_ECHO, "x", 200, &c) == MR_OK);
    CHECK(net_transport_send(cli.t, addr, T_NOTE, "y", 1, NULL) == MR_OK);
    CHECK_EQ(net_transport_send(cli.t, addr, T_NOTE, "z", 1, &err), MR_EFULL);
    CHECKF(strstr(err.msg, "full"), "got: %s", err.msg);
    CHECK(fx_run_until(&w.loop, &c.done, LIMIT_MS) == 0);
    CHECK_EQ(c.status, MR_ETIMEDOUT);
    /* The timed-out request left the queue: there is room again. */
    CHECK_EQ(net_transport_send(cli.t, addr, T_NOTE, "z", 1, &err), MR_OK);
    CHECK_EQ(net_transport_send(cli.t, addr, T_NOTE, "z", 1, &err), MR_EFULL);
    net_transport_stats cs;
    net_transport_get_stats(cli.t, &cs);
    CHECK(cs.dials >= 1);
    CHECK_EQ(cs.conns_opened, 0);

    /* Bad arguments are refused at once, with no callback. */
    CHECK_EQ(request(&cli, "nonsense", T_ECHO, "x", 100, &c), MR_EINVAL);
    CHECK_EQ(net_transport_send(cli.t, addr, 0, "x", 1, NULL), MR_EINVAL);
    CHECK_EQ(request(&cli, addr, T_ECHO, "x", 0, &c), MR_EINVAL);
    net_reply_to none = {0, 0};
    CHECK_EQ(net_transport_reply(cli.t, none, T_ECHO, "x", 1, NULL), MR_EINVAL);
    CHECK(node_stop(&w.loop, &cli) == 0);

    node bad;
    memset(&bad, 0, sizeof bad);
    cfg.listen = "not-an-ip:1";
    CHECK_EQ(net_transport_new(&cfg, &bad.t, &err), MR_EINVAL);
    cfg.listen = NULL;
    cfg.advertise = "no port";
    CHECK_EQ(net_transport_new(&cfg, &bad.t, &err), MR_EINVAL);
    /* A port in use: the error comes back, the handles close with the loop. */
    node first;
    CHECK(node_start(&w.loop, &first, w.tls, "127.0.0.1:0", 0) == 0);
    addr_of(&first, addr, sizeof addr);
    cfg.listen = addr;
    cfg.advertise = NULL;
    CHECK_EQ(net_transport_new(&cfg, &bad.t, &err), MR_EIO);
    CHECKF(strstr(err.msg, "cannot listen"), "got: %s", err.msg);
    CHECK(node_stop(&w.loop, &first) == 0);
    CHECK_EQ(world_done(&w), 0);
}

static int all_done(call *calls, int n)
{
    for (int i = 0; i < n; i++)
        if (!calls[i].done)
            return 0;
    return 1;
}

static size_t conns_of(node *n)
{
    net_transport_stats st;
    net_transport_get_stats(n->t, &st);
    return st.conns;
}

TEST(transport_one_conn_per_node_pair)
{
    world w;
    CHECK(world_init(&w) == 0);
    node a, b;
    char aaddr[64], baddr[64];
    CHECK(node_start(&w.loop, &a, w.tls, "127.0.0.1:0", 0) == 0);
    CHECK(node_start(&w.loop, &b, w.tls, "127.0.0.1:0", 0) == 0);
    addr_of(&a, aaddr, sizeof aaddr);
    addr_of(&b, baddr, sizeof baddr);

    /* A dials B; B answers A's later requests to it on that same connection. */
    call c1, c2;
    CHECK(request(&a, baddr, T_ECHO, "to b", LONG_MS, &c1) == MR_OK);
    CHECK(fx_run_until(&w.loop, &c1.done, LIMIT_MS) == 0);
    CHECK_EQ(c1.status, MR_OK);
    CHECK(request(&b, aaddr, T_ECHO, "to a", LONG_MS, &c2) == MR_OK);
    CHECK(fx_run_until(&w.loop, &c2.done, LIMIT_MS) == 0);
    CHECK_EQ(c2.status, MR_OK);
    CHECK_STR(c2.resp, "TO A");
    net_transport_stats as, bs;
    net_transport_get_stats(a.t, &as);
    net_transport_get_stats(b.t, &bs);
    CHECK_EQ(as.dials, 1);
    CHECK_EQ(bs.dials, 0);
    CHECK_EQ(bs.adopted, 1);
    CHECK_EQ(as.conns, 1);
    CHECK_EQ(bs.conns, 1);
    CHECK(node_stop(&w.loop, &a) == 0);
    CHECK(node_stop(&w.loop, &b) == 0);

    /* Both dial at once: every request is answered, then one connection remains. */
    CHECK(node_start(&w.loop, &a, w.tls, "127.0.0.1:0", 0) == 0);
    CHECK(node_start(&w.loop, &b, w.tls, "127.0.0.1:0", 0) == 0);
    addr_of(&a, aaddr, sizeof aaddr);
    addr_of(&b, baddr, sizeof baddr);
    static call ab[20], ba[20];
    for (int i = 0; i < 20; i++) {
        CHECK(request(&a, baddr, T_ECHO, "x", LONG_MS, &ab[i]) == MR_OK);
        CHECK(request(&b, aaddr, T_ECHO, "y", LONG_MS, &ba[i]) == MR_OK);
    }
    for (int i = 0; i < 1000 && !(all_done(ab, 20) && all_done(ba, 20)); i++)
        fx_run_for(&w.loop, 5);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(ab[i].status, MR_OK);
        CHECK_EQ(ba[i].status, MR_OK);
    }
    for (int i = 0; i < 1000 && (conns_of(&a) != 1 || conns_of(&b) != 1); i++)
        fx_run_for(&w.loop, 5);
    CHECK_EQ(conns_of(&a), 1);
    CHECK_EQ(conns_of(&b), 1);
    /* And it carries traffic both ways, with no further dialling. */
    net_transport_get_stats(a.t, &as);
    net_transport_get_stats(b.t, &bs);
    uint64_t dials = as.dials + bs.dials;
    CHECK_EQ(dials, 2); /* both dialled: the race really happened */
    CHECK(request(&a, baddr, T_ECHO, "again", LONG_MS, &c1) == MR_OK);
    CHECK(request(&b, aaddr, T_ECHO, "again", LONG_MS, &c2) == MR_OK);
    CHECK(fx_run_until(&w.loop, &c1.done, LIMIT_MS) == 0);
    CHECK(fx_run_until(&w.loop, &c2.done, LIMIT_MS) == 0);
    CHECK_EQ(c1.status, MR_OK);
    CHECK_EQ(c2.status, MR_OK);
    net_transport_get_stats(a.t, &as);
    net_transport_get_stats(b.t, &bs);
    CHECK_EQ(as.dials + bs.dials, dials);
    CHECK_EQ(conns_of(&a), 1);
    CHECK(node_stop(&w.loop, &a) == 0);
    CHECK(node_stop(&w.loop, &b) == 0);
    CHECK_EQ(world_done(&w), 0);
}

/* A cluster certificate that does not name the address a HELLO claims (here a
 * client certificate) must not capture traffic meant for that address. */
TEST(transport_hello_needs_matching_certificate)
{
    world w;
    CHECK(world_init(&w) == 0);
    net_tls_ctx *alice = fx_tls(w.dir, "client.alice");
    CHECK(alice);
    node srv, liar;
    char saddr[64], laddr[64];
    CHECK(node_start(&w.loop, &srv, w.tls, "127.0.0.1:0", 0) == 0);
    CHECK(node_start(&w.loop, &liar, alice, "127.0.0.1:0", 0) == 0);
    addr_of(&srv, saddr, sizeof saddr);
    addr_of(&liar, laddr, sizeof laddr);
    call c1, c2;
    CHECK(request(&liar, saddr, T_ECHO, "hi", LONG_MS, &c1) == MR_OK);
    CHECK(fx_run_until(&w.loop, &c1.done, LIMIT_MS) == 0);
    CHECK_EQ(c1.status, MR_OK); /* it may talk to us as a client */
    CHECK_STR(srv.last_peer_name, "alice");
    CHECK_EQ(srv.last_peer_is_node, 0); /* and the node layer can tell */
    net_transport_stats ss;
    net_transport_get_stats(srv.t, &ss);
    CHECK_EQ(ss.hello_refused, 1);
    CHECK_EQ(ss.adopted, 0);
    /* Our message to its claimed address dials it (and fails verification). */
    CHECK(request(&srv, laddr, T_ECHO, "secret", 300, &c2) == MR_OK);
    CHECK(fx_run_until(&w.loop, &c2.done, LIMIT_MS) == 0);
    CHECK(c2.status != MR_OK);
    CHECK_EQ(liar.requests, 0);
    net_transport_get_stats(srv.t, &ss);
    CHECK(ss.dials >= 1);
    CHECK(node_stop(&w.loop, &liar) == 0);
    CHECK(node_stop(&w.loop, &srv) == 0);
    CHECK_EQ(world_done(&w), 0);
    net_tls_ctx_free(alice);
}

/* A hand-driven dialler speaking the transport's wire protocol directly. */
typedef struct hand {
    net_conn *c;
    const char *claim; /* address its HELLO claims */
    uint8_t ctl_type;  /* control type to send (1 = HELLO) */
    int garbage;       /* send an undecodable HELLO payload */
    int silent;        /* ignore everything received (a peer behind a partition) */
    int opened, closed, requests;
    int code;
} hand;

static void hand_open(net_conn *c, void *ud)
{
    hand *h = ud;
    h->opened = 1;
    net_wbuf w;
    net_wbuf_init(&w, 0);
    if (h->garbage)
        net_wbuf_u8(&w, 0xff); /* a varint length that never ends */
    else
        net_wbuf_str(&w, h->claim);
    net_frame f = {
        .type = h->ctl_type, .flags = NET_FRAME_CONTROL, .len = (uint32_t)w.len, .payload = w.data};
    net_conn_send(c, &f, NULL);
    net_wbuf_free(&w);
}

static void hand_frame(net_conn *c, const net_frame *f, void *ud)
{
    hand *h = ud;
    if (h->silent)
        return;
    h->requests++;
    net_frame r = {.type = T_ECHOED,
                   .flags = NET_FRAME_RESPONSE,
                   .req_id = f->req_id,
                   .len = f->len,
                   .payload = f->payload};
    net_conn_send(c, &r, NULL);
}

static void hand_close(net_conn *c, const mr_err *why, void *ud)
{
    hand *h = ud;
    h->closed = 1;
    h->code = why->code;
    h->c = NULL;
}

static const net_conn_cbs hand_cbs = {hand_open, hand_frame, hand_close};

static int hand_dial(uv_loop_t *loop, hand *h, net_tls_ctx *tls, const char *to, const char *claim)
{
    memset(h, 0, sizeof *h);
    h->claim = claim;
    h->ctl_type = 1;
    net_conn_opts o = {.tls = tls};
    return net_conn_connect(loop, &o, to, &hand_cbs, h, &h->c, NULL);
}

static uint64_t adopted_of(node *n)
{
    net_transport_stats st;
    net_transport_get_stats(n->t, &st);
    return st.adopted;
}

/* A peer that dials again has given its old connection up: the new one replaces
 * the adopted one. Malformed HELLOs and unknown control messages close only
 * their own connection. */
TEST(transport_redial_supersedes_and_bad_control)
{
    world w;
    CHECK(world_init(&w) == 0);
    node b;
    char baddr[64];
    const char *claim = "127.0.0.1:1"; /* the node certificate names 127.0.0.1 */
    CHECK(node_start(&w.loop, &b, w.tls, "127.0.0.1:0", 0) == 0);
    addr_of(&b, baddr, sizeof baddr);
    hand h1, h2, bad1, bad2;
    CHECK(hand_dial(&w.loop, &h1, w.tls, baddr, claim) == MR_OK);
    for (int i = 0; i < 2000 && adopted_of(&b) < 1; i++)
        fx_run_for(&w.loop, 5);
    CHECK_EQ(adopted_of(&b), 1);
    call c1, c2;
    CHECK(request(&b, claim, T_ECHO, "one", LONG_MS, &c1) == MR_OK);
    CHECK(fx_run_until(&w.loop, &c1.done, LIMIT_MS) == 0);
    CHECK_EQ(c1.status, MR_OK);
    CHECK_EQ(h1.requests, 1);

    CHECK(hand_dial(&w.loop, &h2, w.tls, baddr, claim) == MR_OK);
    CHECK(fx_run_until(&w.loop, &h1.closed, LIMIT_MS) == 0); /* retired */
    CHECK_EQ(adopted_of(&b), 2);
    CHECK(request(&b, claim, T_ECHO, "two", LONG_MS, &c2) == MR_OK);
    CHECK(fx_run_until(&w.loop, &c2.done, LIMIT_MS) == 0);
    CHECK_EQ(c2.status, MR_OK);
    CHECK_EQ(h2.requests, 1);

    CHECK(hand_dial(&w.loop, &bad1, w.tls, baddr, claim) == MR_OK);
    bad1.garbage = 1;
    CHECK(hand_dial(&w.loop, &bad2, w.tls, baddr, claim) == MR_OK);
    bad2.ctl_type = 77;
    CHECK(fx_run_until(&w.loop, &bad1.closed, LIMIT_MS) == 0);
    CHECK(fx_run_until(&w.loop, &bad2.closed, LIMIT_MS) == 0);
    CHECK_EQ(h2.closed, 0); /* the adopted connection is untouched */
    net_transport_stats st;
    net_transport_get_stats(b.t, &st);
    CHECK_EQ(st.dials, 0);
    CHECK_EQ(st.adopted, 2);
    net_conn_close(h2.c, MR_OK, "done");
    CHECK(node_stop(&w.loop, &b) == 0);
    CHECK_EQ(world_done(&w), 0);
}

/* Past max_conns, accepted connections are closed at once; the others live on. */
TEST(transport_max_conns)
{
    world w;
    CHECK(world_init(&w) == 0);
    node srv, c1, c2;
    char addr[64];
    next_max_conns = 1;
    CHECK(node_start(&w.loop, &srv, w.tls, "127.0.0.1:0", 0) == 0);
    CHECK(node_start(&w.loop, &c1, w.tls, NULL, 0) == 0);
    CHECK(node_start(&w.loop, &c2, w.tls, NULL, 0) == 0);
    addr_of(&srv, addr, sizeof addr);
    call a, b, a2;
    CHECK(request(&c1, addr, T_ECHO, "first", LONG_MS, &a) == MR_OK);
    CHECK(fx_run_until(&w.loop, &a.done, LIMIT_MS) == 0);
    CHECK_EQ(a.status, MR_OK);
    CHECK(request(&c2, addr, T_ECHO, "second", 500, &b) == MR_OK);
    CHECK(fx_run_until(&w.loop, &b.done, LIMIT_MS) == 0);
    CHECK(b.status != MR_OK);
    net_transport_stats ss;
    net_transport_get_stats(srv.t, &ss);
    CHECK(ss.refused >= 1);
    CHECK(request(&c1, addr, T_ECHO, "again", LONG_MS, &a2) == MR_OK);
    CHECK(fx_run_until(&w.loop, &a2.done, LIMIT_MS) == 0);
    CHECK_EQ(a2.status, MR_OK);
    CHECK(node_stop(&w.loop, &c2) == 0);
    CHECK(node_stop(&w.loop, &c1) == 0);
    CHECK(node_stop(&w.loop, &srv) == 0);
    CHECK_EQ(world_done(&w), 0);
}

/* A peer that goes silent (no reset: a partition, a dead host) is closed after
 * idle_ms; a quiet but live connection is kept alive by PING/PONG. */
TEST(transport_idle_detection)
{
    world w;
    CHECK(world_init(&w) == 0);
    node srv, cli;
    char addr[64];
    next_idle_ms = 200;
    CHECK(node_start(&w.loop, &srv, w.tls, "127.0.0.1:0", 0) == 0);
    addr_of(&srv, addr, sizeof addr);
    hand mute;
    CHECK(hand_dial(&w.loop, &mute, w.tls, addr, "127.0.0.1:1") == MR_OK);
    mute.silent = 1;
    CHECK(fx_run_until(&w.loop, &mute.closed, LIMIT_MS) == 0);
    net_transport_stats ss;
    net_transport_get_stats(srv.t, &ss);
    CHECK(ss.pings >= 1);
    CHECK_EQ(ss.conns_failed, 1);
    CHECK(node_stop(&w.loop, &srv) == 0);

    /* Generous idle_ms: only a multi-second stall of the whole process could
     * make this live connection look dead. */
    next_idle_ms = 3000;
    CHECK(node_start(&w.loop, &srv, w.tls, "127.0.0.1:0", 0) == 0);
    next_idle_ms = 3000;
    CHECK(node_start(&w.loop, &cli, w.tls, NULL, 0) == 0);
    addr_of(&srv, addr, sizeof addr);
    call c;
    CHECK(request(&cli, addr, T_ECHO, "x", LONG_MS, &c) == MR_OK);
    CHECK(fx_run_until(&w.loop, &c.done, LIMIT_MS) == 0);
    fx_run_for(&w.loop, 2500);
    net_transport_stats cs;
    net_transport_get_stats(cli.t, &cs);
    net_transport_get_stats(srv.t, &ss);
    CHECK(cs.pings + ss.pings >= 1);
    CHECK_EQ(cs.conns_failed + ss.conns_failed, 0);
    CHECK_EQ(cs.conns, 1);
    CHECK(node_stop(&w.loop, &cli) == 0);
    CHECK(node_stop(&w.loop, &srv) == 0);
    CHECK_EQ(world_done(&w), 0);
}

/* Runs two loops in turn (a server in another process, in effect) until *flag is set. */
static int run2_until(uv_loop_t *a, uv_loop_t *b, const int *flag, unsigned limit_ms)
{
    for (unsigned waited = 0; !*flag; waited += 10) {
        if (waited > limit_ms)
            return -1;
        fx_run_for(a, 5);
        fx_run_for(b, 5);
    }
    return 0;
}

/* answer_ms: a peer that stops (its process is not running: here its loop is not run, while
 * its kernel still takes the bytes) fails the requests waiting on it with MR_EUNAVAIL in about
 * 2 x answer_ms, not at their timeout; a live peer that is slow to answer is not cut off, it
 * answers the PING. */
TEST(transport_answer_liveness)
{
    world w;
    CHECK(world_init(&w) == 0);
    uv_loop_t sloop;
    uv_loop_init(&sloop);
    node srv, cli;
    char addr[64];
    CHECK(node_start(&sloop, &srv, w.tls, "127.0.0.1:0", 0) == 0);
    next_answer_ms = 100;
    CHECK(node_start(&w.loop, &cli, w.tls, NULL, 0) == 0);
    addr_of(&srv, addr, sizeof addr);
    call c;
    CHECK(request(&cli, addr, T_ECHO, "up", LONG_MS, &c) == MR_OK);
    CHECK(run2_until(&w.loop, &sloop, &c.done, LIMIT_MS) == 0);
    CHECK_EQ(c.status, MR_OK);

    /* Live but slow: T_SILENT is never answered, the PINGs are; the request times out. */
    call slow;
    CHECK(request(&cli, addr, T_SILENT, "slow", 600, &slow) == MR_OK);
    CHECK(run2_until(&w.loop, &sloop, &slow.done, LIMIT_MS) == 0);
    CHECK_EQ(slow.status, MR_ETIMEDOUT);
    net_transport_stats cs;
    net_transport_get_stats(cli.t, &cs);
    CHECKF(cs.pings >= 1, "no PING went out while the request waited");
    CHECK_EQ(cs.conns_failed, 0);

    /* Stopped: only the client's loop runs. The request gets MR_EUNAVAIL long before its
     * timeout (20 s; the bound below is 10x what it takes, for a loaded machine). */
    call stopped;
    uint64_t t0 = uv_now(&w.loop);
    CHECK(request(&cli, addr, T_ECHO, "anyone?", LIMIT_MS, &stopped) == MR_OK);
    CHECK(fx_run_until(&w.loop, &stopped.done, LIMIT_MS) == 0);
    uint64_t took = uv_now(&w.loop) - t0;
    CHECKF(stopped.status == MR_EUNAVAIL, "status %d (%s)", stopped.status, stopped.msg);
    CHECKF(took < 3000, "a stopped peer took %llu ms to notice", (unsigned long long)took);

    /* The server runs again: a new connection serves. */
    call again;
    CHECK(request(&cli, addr, T_ECHO, "back", LONG_MS, &again) == MR_OK);
    CHECK(run2_until(&w.loop, &sloop, &again.done, LIMIT_MS) == 0);
    CHECK_EQ(again.status, MR_OK);
    CHECK(node_stop(&w.loop, &cli) == 0);
    net_transport_close(srv.t, on_closed, &srv);
    CHECK(run2_until(&w.loop, &sloop, &srv.closed, LIMIT_MS) == 0);
    CHECK_EQ(fx_loop_finish(&sloop), 0);
    CHECK_EQ(world_done(&w), 0);
}

/* fail_unreachable (libmeridian's setting): a request to a peer whose dial is refused (a killed
 * node) fails with MR_EUNAVAIL when the dial fails, not at its timeout, so a client asks another
 * node (issue 19: status questions waited 1.25 s for a dead leader), and a request after failed
 * dials dials at once rather than after the backoff. Without it a request waits for the redial
 * (transport_reconnects_after_server_restart). Once the peer listens again, requests reach it. */
TEST(transport_fail_unreachable)
{
    world w;
    CHECK(world_init(&w) == 0);
    node dead, cli;
    char addr[64];
    CHECK(node_start(&w.loop, &dead, w.tls, "127.0.0.1:0", 0) == 0);
    addr_of(&dead, addr, sizeof addr);
    CHECK(node_stop(&w.loop, &dead) == 0);
    memset(&cli, 0, sizeof cli);
    net_transport_config cfg = {.loop = &w.loop,
                                .tls = w.tls,
                                .backoff_min_ms = 8000, /* longer than the bound below */
                                .backoff_max_ms = 16000,
                                .fail_unreachable = 1,
                                .on_message = on_message,
                                .ud = &cli};
    CHECK(net_transport_new(&cfg, &cli.t, NULL) == MR_OK);
    call c[3];
    uint64_t t0 = uv_now(&w.loop);
    CHECK(request(&cli, addr, T_ECHO, "a", LIMIT_MS, &c[0]) == MR_OK);
    CHECK(request(&cli, addr, T_ECHO, "b", LIMIT_MS, &c[1]) == MR_OK);
    CHECK(fx_run_until(&w.loop, &c[1].done, LIMIT_MS) == 0);
    uint64_t took = uv_now(&w.loop) - t0;
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(c[i].done, 1);
        CHECKF(c[i].status == MR_EUNAVAIL, "status %d (%s)", c[i].status, c[i].msg);
        CHECKF(strstr(c[i].msg, "cannot reach"), "got: %s", c[i].msg);
    }
    /* A refused dial takes milliseconds; the timeout was 20 s (the bound allows for load). */
    CHECKF(took < 3000, "a refused dial took %llu ms to fail its requests",
           (unsigned long long)took);
    net_transport_stats cs;
    net_transport_get_stats(cli.t, &cs);
    CHECK_EQ(cs.timeouts, 0);
    CHECK_EQ(cs.requests, 0);
    /* Another request after failed dials is not held back by the backoff either. */
    for (int k = 0; k < 3; k++) {
        t0 = uv_now(&w.loop);
        CHECK(request(&cli, addr, T_ECHO, "c", LIMIT_MS, &c[0]) == MR_OK);
        CHECK(fx_run_until(&w.loop, &c[0].done, LIMIT_MS) == 0);
        CHECK_EQ(c[0].status, MR_EUNAVAIL);
        CHECKF(uv_now(&w.loop) - t0 < 3000, "took %llu ms",
               (unsigned long long)(uv_now(&w.loop) - t0));
    }

    /* The peer comes back on the same address: the next request reaches it. */
    CHECK(node_start(&w.loop, &dead, w.tls, addr, 0) == 0);
    CHECK(request(&cli, addr, T_ECHO, "back", LIMIT_MS, &c[2]) == MR_OK);
    CHECK(fx_run_until(&w.loop, &c[2].done, LIMIT_MS) == 0);
    CHECK_EQ(c[2].status, MR_OK);
    CHECK_STR(c[2].resp, "BACK");
    CHECK(node_stop(&w.loop, &cli) == 0);
    CHECK(node_stop(&w.loop, &dead) == 0);
    CHECK_EQ(world_done(&w), 0);
}

/* Plain TCP (--insecure) with many connections: every reply finds its own. */
TEST(transport_insecure_many_connections)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    enum { N = 150 };
    static node srv, cli[N];
    static call c[N];
    char addr[64];
    CHECK(node_start(&loop, &srv, NULL, "127.0.0.1:0", 0) == 0);
    addr_of(&srv, addr, sizeof addr);
    for (int i = 0; i < N; i++) {
        char p[16];
        snprintf(p, sizeof p, "c%d", i);
        CHECK(node_start(&loop, &cli[i], NULL, NULL, 0) == 0);
        CHECK(request(&cli[i], addr, T_ECHO, p, LONG_MS, &c[i]) == MR_OK);
    }
    for (int i = 0; i < N; i++) {
        CHECK(fx_run_until(&loop, &c[i].done, LIMIT_MS) == 0);
        char want[16];
        snprintf(want, sizeof want, "C%d", i);
        CHECK_STR(c[i].resp, want);
    }
    net_transport_stats ss;
    net_transport_get_stats(srv.t, &ss);
    CHECK_EQ(ss.conns, N);
    CHECK_STR(srv.last_peer_name, "");
    CHECK_EQ(srv.last_peer_is_node, 1); /* insecure: nothing to tell them apart */
    for (int i = 0; i < N; i++)
        CHECK(node_stop(&loop, &cli[i]) == 0);
    CHECK(node_stop(&loop, &srv) == 0);
    CHECK_EQ(fx_loop_finish(&loop), 0);
}

/* Closing the transport right after sending (a node handing over its leases on
 * SIGTERM) still delivers what was sent. */
TEST(transport_close_flushes_sent_frames)
{
    world w;
    CHECK(world_init(&w) == 0);
    node srv, cli;
    char addr[64];
    CHECK(node_start(&w.loop, &srv, w.tls, "127.0.0.1:0", 0) == 0);
    CHECK(node_start(&w.loop, &cli, w.tls, NULL, 0) == 0);
    addr_of(&srv, addr, sizeof addr);
    call c;
    CHECK(request(&cli, addr, T_ECHO, "connect", LONG_MS, &c) == MR_OK);
    CHECK(fx_run_until(&w.loop, &c.done, LIMIT_MS) == 0);
    static char big[2000];
    memset(big, 'n', sizeof big);
    for (int i = 0; i < 300; i++)
        CHECK(net_transport_send(cli.t, addr, T_NOTE, big, sizeof big, NULL) == MR_OK);
    net_transport_close(cli.t, on_closed, &cli);
    CHECK(fx_run_until(&w.loop, &cli.closed, LIMIT_MS) == 0);
    for (int i = 0; i < 1000 && srv.notes < 300; i++)
        fx_run_for(&w.loop, 5);
    CHECK_EQ(srv.notes, 300);
    CHECK(node_stop(&w.loop, &srv) == 0);
    CHECK_EQ(world_done(&w), 0);
}

static int closing_reentry_status;
static void on_response_reenter(net_transport *t, int status, const mr_err *err,
                                const net_message *resp, void *ud)
{
    on_response(t, status, err, resp, ud);
    /* A callback run by close may try again: it must be refused, not crash. */
    closing_reentry_status =
        net_transport_request(t, "127.0.0.1:1", T_ECHO, "x", 1, 100, on_response, ud, NULL, NULL);
}

TEST(transport_close_fails_pending_requests)
{
    world w;
    CHECK(world_init(&w) == 0);
    node srv, cli;
    char addr[64];
    CHECK(node_start(&w.loop, &srv, w.tls, "127.0.0.1:0", 0) == 0);
    CHECK(node_start(&w.loop, &cli, w.tls, NULL, 0) == 0);
    addr_of(&srv, addr, sizeof addr);
    call c;
    memset(&c, 0, sizeof c);
    CHECK(net_transport_request(cli.t, addr, T_SILENT, "x", 1, 60000, on_response_reenter, &c, NULL,
                                NULL) == MR_OK);
    for (int i = 0; i < 1000 && srv.requests == 0; i++)
        fx_run_for(&w.loop, 5);
    CHECK_EQ(srv.requests, 1);
    net_transport_close(cli.t, on_closed, &cli);
    CHECK_EQ(c.done, 1);
    CHECK_EQ(c.status, MR_EUNAVAIL);
    CHECK_EQ(closing_reentry_status, MR_EUNAVAIL);
    CHECK(fx_run_until(&w.loop, &cli.closed, LIMIT_MS) == 0);
    CHECK(node_stop(&w.loop, &srv) == 0);
    CHECK_EQ(world_done(&w), 0);
}

/* The first failure callback closes the transport while the lost connection
 * still has requests: those are failed by the close, each exactly once. */
static node *closer_node;
static void on_response_close(net_transport *t, int status, const mr_err *err,
                              const net_message *resp, void *ud)
{
    on_response(t, status, err, resp, ud);
    if (!closer_node->closed)
        net_transport_close(t, on_closed, closer_node);
}

TEST(transport_callback_may_close_transport)
{
    world w;
    CHECK(world_init(&w) == 0);
    node srv, cli;
    char addr[64];
    CHECK(node_start(&w.loop, &srv, w.tls, "127.0.0.1:0", 0) == 0);
    CHECK(node_start(&w.loop, &cli, w.tls, NULL, 0) == 0);
    addr_of(&srv, addr, sizeof addr);
    closer_node = &cli;
    static call c[3];
    memset(c, 0, sizeof c);
    for (int i = 0; i < 3; i++)
        CHECK(net_transport_request(cli.t, addr, T_SILENT, "x", 1, 60000, on_response_close, &c[i],
                                    NULL, NULL) == MR_OK);
    for (int i = 0; i < 1000 && srv.requests < 3; i++)
        fx_run_for(&w.loop, 5);
    CHECK_EQ(srv.requests, 3);
    CHECK(node_stop(&w.loop, &srv) == 0); /* the client's connection drops */
    CHECK(fx_run_until(&w.loop, &cli.closed, LIMIT_MS) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(c[i].done, 1);
        CHECK_EQ(c[i].status, MR_EUNAVAIL);
    }
    CHECK_EQ(world_done(&w), 0);
}

int main(int argc, char **argv)
{
    if (!getenv("MERIDIAN_LOG"))
        mr_log_set_level(MR_LOG_ERROR);
    static const test_case cases[] = {
        TEST_CASE(transport_round_trip_one_conn_per_peer),
        TEST_CASE(transport_one_conn_per_node_pair),
        TEST_CASE(transport_hello_needs_matching_certificate),
        TEST_CASE(transport_redial_supersedes_and_bad_control),
        TEST_CASE(transport_request_timeout),
        TEST_CASE(transport_notify_on_the_requests_connection),
        TEST_CASE(transport_malformed_frame_isolated),
        TEST_CASE(transport_reconnects_after_server_restart),
        TEST_CASE(transport_queue_bound_and_dead_peer),
        TEST_CASE(transport_close_fails_pending_requests),
        TEST_CASE(transport_max_conns),
        TEST_CASE(transport_idle_detection),
        TEST_CASE(transport_answer_liveness),
        TEST_CASE(transport_fail_unreachable),
        TEST_CASE(transport_insecure_many_connections),
        TEST_CASE(transport_close_flushes_sent_frames),
        TEST_CASE(transport_callback_may_close_transport),
    };
    return test_run(argc, argv, cases, (int)(sizeof cases / sizeof cases[0]));
}

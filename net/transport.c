/* Listener, per-peer outgoing connections, request ids and timeouts (see transport.h). */
#include "net/transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_log.h"
#include "common/mr_util.h"
#include "net/buf.h"
#include "net/conn.h"

#define DEFAULT_MAX_PENDING 4096
#define DEFAULT_MAX_CONNS   4096
#define DEFAULT_IDLE_MS     10000
#define DEFAULT_BACKOFF_MIN 50
#define DEFAULT_BACKOFF_MAX 5000

enum { P_IDLE, P_CONNECTING, P_OPEN, P_BACKOFF };

/* Control messages (frames flagged NET_FRAME_CONTROL), the transport's own. */
enum {
    /* Sent first by a dialler that listens: "I am <advertise address>", so the
     * accepting side can use this connection for its own messages too. */
    CTL_HELLO = 1,
    /* Liveness on a quiet connection: PING asks for a PONG. A peer cut off
     * without a reset (a partition, a dead host) is noticed within idle_ms
     * instead of after TCP's retransmission timeout of many minutes. */
    CTL_PING = 2,
    CTL_PONG = 3,
};

typedef struct qframe { /* a frame waiting for its peer's connection */
    struct qframe *next;
    net_frame f;
    uint8_t payload[]; /* f.payload points here */
} qframe;

typedef struct tconn tconn;
typedef struct req req;

typedef struct peer {
    struct peer *next;
    net_transport *t;
    char addr[300];
    int state;
    unsigned attempts; /* failed dials since the last open connection */
    tconn *conn;       /* the connection for this peer (dialled or adopted) */
    uv_timer_t timer;  /* backoff; closed with the transport */
    qframe *qhead, *qtail;
    size_t qlen;
    req *reqs; /* requests to this peer in flight (doubly linked via pprev/pnext) */
} peer;

struct tconn { /* the transport's view of one net_conn */
    tconn *prev, *next;
    tconn *hnext; /* id hash chain: replies find their connection by id */
    net_transport *t;
    net_conn *c;
    uint64_t id;
    peer *p;             /* the peer it serves or served; NULL: accepted, not adopted */
    size_t inflight;     /* requests sent on it and not yet finished */
    int retiring;        /* a duplicate: close once inflight reaches zero */
    int dialed;          /* we dialled it (else accepted) */
    int opened;          /* its handshake completed */
    uint64_t last_rx;    /* uv_now when a frame last arrived (or the connection opened) */
    int pinged;          /* a PING is out since last_rx */
    uint64_t busy_since; /* uv_now when inflight last went from 0 to 1 */
};

struct req {
    uint64_t id;
    req *hnext;         /* hash chain */
    req *dprev, *dnext; /* deadline order */
    req *pprev, *pnext; /* per peer */
    peer *p;
    tconn *conn; /* the connection it was sent on; NULL while queued. Every request
                  * on a connection is finished before that connection is freed. */
    uint64_t deadline;
    net_response_cb cb;
    void *ud;
};

struct net_transport {
    net_transport_config cfg;
    uv_loop_t *loop;
    net_conn_opts copts;
    uv_tcp_t listener;
    int listening;
    uv_timer_t deadline_timer;
    uv_timer_t idle_timer; /* repeating; unreferenced, so it never holds the loop alone */
    uint64_t last_tick;    /* uv_now of its last run (0: none yet) */
    int live;              /* handles and connections still to close before t can be freed */
    int closing;
    char advertise[300]; /* how peers reach us; "" = we do not listen or cannot say */
    void (*on_closed)(void *ud);
    void *closed_ud;
    peer *peers;
    tconn *conns;
    uint64_t next_conn_id;
    size_t accepted_live; /* accepted connections not yet closed */
    tconn **cbuckets;     /* connections by id (power-of-two size, chained) */
    size_t ncbuckets;
    uint64_t next_req_id;
    req **buckets;
    size_t nbuckets, nreqs;
    req *dhead, *dtail;
    uint64_t rng;
    net_transport_stats st;
};

static void peer_dial(peer *p);
static void maybe_freed(net_transport *t);
static void on_deadline(uv_timer_t *timer);

/* ---- Requests: a hash by id, a deadline-ordered list, a list per peer. ---- */

static size_t bucket_of(const net_transport *t, uint64_t id)
{
    return (size_t)(id * 0x9E3779B97F4A7C15ull >> 32) & (t->nbuckets - 1);
}

static size_t cbucket_of(const net_transport *t, uint64_t id)
{
    return (size_t)(id * 0x9E3779B97F4A7C15ull >> 32) & (t->ncbuckets - 1);
}

static tconn *tconn_find(const net_transport *t, uint64_t id)
{
    for (tconn *tc = t->cbuckets[cbucket_of(t, id)]; tc; tc = tc->hnext)
        if (tc->id == id)
            return tc;
    return NULL;
}

static int hash_grow(net_transport *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : 256;
    req **b = calloc(n, sizeof *b);
    if (!b)
        return MR_ENOMEM;
    req **old = t->buckets;
    size_t oldn = t->nbuckets;
    t->buckets = b;
    t->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        for (req *r = old[i], *next; r; r = next) {
            next = r->hnext;
            size_t k = bucket_of(t, r->id);
            r->hnext = b[k];
            b[k] = r;
        }
    }
    free(old);
    return MR_OK;
}

static req *req_find(net_transport *t, uint64_t id)
{
    if (!t->nbuckets)
        return NULL;
    for (req *r = t->buckets[bucket_of(t, id)]; r; r = r->hnext)
        if (r->id == id)
            return r;
    return NULL;
}

static void deadline_arm(net_transport *t)
{
    if (!t->dhead) {
        uv_timer_stop(&t->deadline_timer);
        return;
    }
    uint64_t now = uv_now(t->loop);
    uint64_t d = t->dhead->deadline;
    uv_timer_start(&t->deadline_timer, on_deadline, d > now ? d - now : 0, 0);
}

/* Unlinks r from the hash, the deadline list and its peer's list (the caller frees it). */
static void req_unlink(net_transport *t, req *r)
{
    req **pp = &t->buckets[bucket_of(t, r->id)];
    while (*pp != r)
        pp = &(*pp)->hnext;
    *pp = r->hnext;
    t->nreqs--;
    int was_head = t->dhead == r;
    if (r->dprev)
        r->dprev->dnext = r->dnext;
    else
        t->dhead = r->dnext;
    if (r->dnext)
        r->dnext->dprev = r->dprev;
    else
        t->dtail = r->dprev;
    if (r->pprev)
        r->pprev->pnext = r->pnext;
    else
        r->p->reqs = r->pnext;
    if (r->pnext)
        r->pnext->pprev = r->pprev;
    if (was_head && !t->closing)
        deadline_arm(t);
    tconn *tc = r->conn;
    if (tc && --tc->inflight == 0 && tc->retiring)
        net_conn_close(tc->c, MR_OK, "duplicate connection retired");
}

static void req_sent(req *r, tconn *tc)
{
    r->conn = tc;
    if (tc->inflight++ == 0) {
        /* The loop's clock may be stale (a client runs its loop only inside calls). */
        uv_update_time(tc->t->loop);
        tc->busy_since = uv_now(tc->t->loop);
    }
}

/* A request that finishes (times out) before it was sent leaves the queue, so
 * dead requests do not hold a dead peer's queue full. Linear, but only in that
 * case, and the queue is bounded. */
static void unqueue(peer *p, uint64_t req_id)
{
    for (qframe **qq = &p->qhead, *prev = NULL; *qq; prev = *qq, qq = &(*qq)->next) {
        qframe *q = *qq;
        if (q->f.req_id != req_id)
            continue;
        *qq = q->next;
        if (p->qtail == q)
            p->qtail = prev;
        p->qlen--;
        free(q);
        return;
    }
}

static void req_complete(net_transport *t, req *r, int status, const mr_err *err,
                         const net_message *resp)
{
    if (!r->conn)
        unqueue(r->p, r->id);
    req_unlink(t, r);
    net_response_cb cb = r->cb;
    void *ud = r->ud;
    free(r);
    cb(t, status, err, resp, ud);
}

static void req_fail(net_transport *t, req *r, int code, const char *fmt, const char *a,
                     const char *b)
{
    mr_err e;
    mr_errf(&e, code, fmt, a, b);
    req_complete(t, r, code, &e, NULL);
}

static void on_deadline(uv_timer_t *timer)
{
    net_transport *t = timer->data;
    uint64_t now = uv_now(t->loop);
    /* Re-read the head each time: a callback may add or finish requests. */
    while (!t->closing && t->dhead && t->dhead->deadline <= now) {
        req *r = t->dhead;
        t->st.timeouts++;
        char id[32];
        snprintf(id, sizeof id, "%llu", (unsigned long long)r->id);
        req_fail(t, r, MR_ETIMEDOUT, "request %s to %s timed out", id, r->p->addr);
    }
    if (!t->closing)
        deadline_arm(t);
}

static req *req_new(net_transport *t, peer *p, uint64_t timeout_ms, net_response_cb cb, void *ud)
{
    if (t->nreqs >= t->nbuckets && hash_grow(t))
        return NULL;
    req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->id = ++t->next_req_id;
    r->p = p;
    r->cb = cb;
    r->ud = ud;
    r->deadline = uv_now(t->loop) + timeout_ms;
    size_t k = bucket_of(t, r->id);
    r->hnext = t->buckets[k];
    t->buckets[k] = r;
    t->nreqs++;
    /* Timeouts are mostly equal, so the right place is usually the tail. */
    req *after = t->dtail;
    while (after && after->deadline > r->deadline)
        after = after->dprev;
    r->dprev = after;
    r->dnext = after ? after->dnext : t->dhead;
    if (r->dnext)
        r->dnext->dprev = r;
    else
        t->dtail = r;
    if (after)
        after->dnext = r;
    else
        t->dhead = r;
    r->pnext = p->reqs;
    if (p->reqs)
        p->reqs->pprev = r;
    p->reqs = r;
    if (t->dhead == r)
        deadline_arm(t);
    return r;
}

/* ---- Peers ---- */

static uint64_t rng_next(net_transport *t)
{
    /* xorshift64*: jitter only needs to decorrelate peers, not be secret. */
    t->rng ^= t->rng >> 12;
    t->rng ^= t->rng << 25;
    t->rng ^= t->rng >> 27;
    return t->rng * 0x2545F4914F6CDD1Dull;
}

/* Exponential backoff with "equal jitter": half fixed, half random, so a
 * restarted node is not hit by every peer in the same millisecond. */
static uint64_t backoff_ms(net_transport *t, unsigned attempts)
{
    uint64_t d = t->cfg.backoff_min_ms;
    for (unsigned i = 1; i < attempts && d < t->cfg.backoff_max_ms; i++)
        d *= 2;
    if (d > t->cfg.backoff_max_ms)
        d = t->cfg.backoff_max_ms;
    return d / 2 + rng_next(t) % (d / 2 + 1);
}

static void on_backoff(uv_timer_t *timer)
{
    peer *p = timer->data;
    if (p->state == P_BACKOFF)
        peer_dial(p);
}

static void peer_schedule(peer *p)
{
    net_transport *t = p->t;
    p->state = P_BACKOFF;
    uint64_t d = backoff_ms(t, ++p->attempts);
    MR_DEBUG("net", "redial peer=%s in_ms=%llu attempt=%u", p->addr, (unsigned long long)d,
             p->attempts);
    uv_timer_start(&p->timer, on_backoff, d, 0);
}

static peer *peer_get(net_transport *t, const char *addr, mr_err *err)
{
    for (peer *p = t->peers; p; p = p->next)
        if (strcmp(p->addr, addr) == 0)
            return p;
    char host[256];
    int port;
    if (strlen(addr) >= sizeof((peer *)0)->addr ||
        mr_parse_hostport(addr, host, sizeof host, &port) != 0 || port == 0) {
        mr_errf(err, MR_EINVAL, "bad peer address '%s' (want HOST:PORT)", addr);
        return NULL;
    }
    peer *p = calloc(1, sizeof *p);
    if (!p) {
        mr_errf(err, MR_ENOMEM, "out of memory");
        return NULL;
    }
    p->t = t;
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    uv_timer_init(t->loop, &p->timer);
    p->timer.data = p;
    t->live++;
    p->next = t->peers;
    t->peers = p;
    return p;
}

static int peer_enqueue(peer *p, const net_frame *f, mr_err *err)
{
    net_transport *t = p->t;
    if (p->qlen >= t->cfg.max_pending)
        return mr_errf(err, MR_EFULL, "send queue to %s full (%zu frames waiting)", p->addr,
                       p->qlen);
    if (f->len > t->copts.max_frame)
        return mr_errf(err, MR_EINVAL, "frame of %u bytes exceeds the maximum of %u", f->len,
                       t->copts.max_frame);
    qframe *q = malloc(sizeof *q + f->len);
    if (!q)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    q->next = NULL;
    q->f = *f;
    if (f->len)
        memcpy(q->payload, f->payload, f->len);
    q->f.payload = q->payload;
    if (p->qtail)
        p->qtail->next = q;
    else
        p->qhead = q;
    p->qtail = q;
    p->qlen++;
    return MR_OK;
}

static void peer_drop_queue(peer *p)
{
    for (qframe *q = p->qhead, *n; q; q = n) {
        n = q->next;
        free(q);
    }
    p->qhead = p->qtail = NULL;
    p->qlen = 0;
}

/* The connection opened: send what waited, in order. */
static void peer_flush(peer *p)
{
    net_transport *t =
        p->t; /* A connection that fails meanwhile leaves the rest queued for the redial. */
    while (p->qhead && p->state == P_OPEN && !t->closing && net_conn_is_open(p->conn->c)) {
        qframe *q = p->qhead;
        p->qhead = q->next;
        if (!p->qhead)
            p->qtail = NULL;
        p->qlen--;
        req *r = NULL;
        if (q->f.req_id) {
            r = req_find(t, q->f.req_id);
            if (!r) { /* timed out while waiting: do not bother the peer */
                free(q);
                continue;
            }
        }
        mr_err e;
        mr_err_clear(&e);
        if (net_conn_send(p->conn->c, &q->f, &e) == MR_OK) {
            if (r)
                req_sent(r, p->conn);
        } else if (r) {
            req_complete(t, r, e.code, &e, NULL);
        }
        free(q);
    }
}

/* ---- Connections ---- */

static void on_hello(tconn *tc, const net_frame *f);

static void dispatch(tconn *tc, const net_frame *f)
{
    net_transport *t = tc->t;
    if (f->flags & NET_FRAME_CONTROL) {
        if (f->type == CTL_HELLO && !(f->flags & NET_FRAME_RESPONSE)) {
            on_hello(tc, f);
        } else if (f->type == CTL_PING && f->len == 0) {
            net_frame pong = {.type = CTL_PONG, .flags = NET_FRAME_CONTROL};
            net_conn_send(tc->c, &pong, NULL); /* a full queue: the peer will see silence */
        } else if (f->type != CTL_PONG || f->len != 0) {
            net_conn_close(tc->c, MR_EPROTO, "unknown control message %u", f->type);
        }
        return;
    }
    net_message m = {
        .type = f->type,
        .len = f->len,
        .payload = f->payload,
        .peer = net_conn_peer(tc->c),
        .peer_name = net_conn_peer_name(tc->c),
        .peer_is_node = net_conn_peer_is_node(tc->c),
        .reply_to = {.conn_id = tc->id, .req_id = f->req_id},
    };
    if (f->flags & NET_FRAME_RESPONSE) {
        req *r = req_find(t, f->req_id);
        /* Only the connection that carried a request may answer it. */
        if (!r || r->conn != tc) {
            MR_DEBUG("net", "dropping response to unknown request id=%llu peer=%s",
                     (unsigned long long)f->req_id, m.peer);
            return;
        }
        m.reply_to.req_id = 0;
        req_complete(t, r, MR_OK, NULL, &m);
        return;
    }
    if (t->cfg.on_message)
        t->cfg.on_message(t, &m, t->cfg.ud);
}

/* Makes tc the connection for p: it is open, so what waits for p goes out now. */
static void peer_adopt(peer *p, tconn *tc)
{
    tc->p = p;
    p->conn = tc;
    p->state = P_OPEN;
    p->attempts = 0;
    uv_timer_stop(&p->timer);
    tc->t->st.adopted++;
    MR_DEBUG("net", "adopted connection peer=%s from=%s", p->addr, net_conn_peer(tc->c));
    peer_flush(p);
}

/* A dialler says who it is. If we have no connection to it, its connection
 * becomes ours for that peer too: one connection per pair of nodes. If both
 * dialled at once, both keep the connection dialled by the smaller address;
 * the other is retired once the requests on it are answered. */
static void on_hello(tconn *tc, const net_frame *f)
{
    net_transport *t = tc->t;
    char addr[300], host[256];
    int port;
    net_rbuf r;
    net_rbuf_init(&r, f->payload, f->len);
    net_rbuf_str(&r, addr, sizeof addr);
    net_rbuf_expect_end(&r);
    if (net_rbuf_failed(&r) || mr_parse_hostport(addr, host, sizeof host, &port) != 0) {
        net_conn_close(tc->c, MR_EPROTO, "malformed HELLO");
        return;
    }
    if (tc->p) /* only a dialler says hello, and only once */
        return;
    /* Under TLS the peer must prove the address is its own, or any holder of a
     * cluster certificate could intercept another node's traffic. */
    if (!net_conn_peer_has_host(tc->c, host)) {
        t->st.hello_refused++;
        MR_WARN("net",
                "peer=%s name=%s claims address %s that its certificate does not name; "
                "its connection is not used for our messages",
                net_conn_peer(tc->c), net_conn_peer_name(tc->c), addr);
        return;
    }
    if (strcmp(addr, t->advertise) == 0)
        return; /* ourselves */
    mr_err e;
    peer *p = peer_get(t, addr, &e);
    if (!p)
        return;
    tconn *mine = p->conn;
    if (mine) {
        /* A connection we dialled: the one dialled by the smaller address wins,
         * and the peer, deciding the same way, retires its duplicate. One the peer
         * dialled before: it dialled again, so it has given the old one up. */
        if (mine->dialed && (!t->advertise[0] || strcmp(t->advertise, addr) < 0))
            return;
        /* Frames still queued for p were never sent: they go on the adopted one. */
        mine->retiring = 1;
        if (mine->inflight == 0)
            net_conn_close(mine->c, MR_OK, "duplicate connection retired");
    }
    peer_adopt(p, tc);
}

static void tc_on_frame(net_conn *c, const net_frame *f, void *ud)
{
    tconn *tc = ud;
    tc->last_rx = uv_now(tc->t->loop);
    tc->pinged = 0;
    if (!tc->t->closing)
        dispatch(tc, f);
}

static uint64_t tick_ms(const net_transport *t)
{
    uint64_t tick = t->cfg.idle_ms / 4;
    if (t->cfg.answer_ms && t->cfg.answer_ms / 4 < tick)
        tick = t->cfg.answer_ms / 4;
    return tick ? tick : 1;
}

/* Every tick: ping connections quiet for idle_ms/2, close those quiet for idle_ms.
 * Any frame counts as a sign of life, so busy connections never ping. With
 * answer_ms, the same for connections whose requests wait for an answer. */
static void on_idle_tick(uv_timer_t *timer)
{
    net_transport *t = timer->data;
    uint64_t now = uv_now(t->loop), idle = t->cfg.idle_ms, answer = t->cfg.answer_ms;
    /* Late (the process was stopped or starved, or a client's loop was not running):
     * frames may be waiting unread, so ping but close nothing this time. */
    bool late = t->last_tick && now - t->last_tick > 2 * tick_ms(t);
    t->last_tick = now;
    for (tconn *tc = t->conns; tc; tc = tc->next) {
        if (!net_conn_is_open(tc->c))
            continue;
        uint64_t quiet = now - tc->last_rx;
        uint64_t since = tc->busy_since > tc->last_rx ? tc->busy_since : tc->last_rx;
        uint64_t unanswered = answer && tc->inflight && now > since ? now - since : 0;
        if (!late && answer && unanswered >= 2 * answer) {
            net_conn_close(tc->c, MR_EUNAVAIL, "peer answered nothing for %llu ms",
                           (unsigned long long)unanswered);
        } else if (answer && unanswered >= answer && !tc->pinged) {
            net_frame ping = {.type = CTL_PING, .flags = NET_FRAME_CONTROL};
            tc->pinged = 1;
            t->st.pings++;
            net_conn_send(tc->c, &ping, NULL);
        } else if (!late && quiet >= idle) {
            net_conn_close(tc->c, MR_ETIMEDOUT, "peer silent for %llu ms",
                           (unsigned long long)quiet);
        } else if (quiet >= idle / 2 && !tc->pinged) {
            net_frame ping = {.type = CTL_PING, .flags = NET_FRAME_CONTROL};
            tc->pinged = 1;
            t->st.pings++;
            net_conn_send(tc->c, &ping, NULL);
        }
    }
}

static void tc_on_open(net_conn *c, void *ud)
{
    tconn *tc = ud;
    net_transport *t = tc->t;
    t->st.conns_opened++;
    tc->opened = 1;
    tc->last_rx = uv_now(t->loop);
    if (tc->p && tc->p->conn == tc) {
        tc->p->state = P_OPEN;
        tc->p->attempts = 0;
        MR_INFO("net", "connected peer=%s name=%s", tc->p->addr, net_conn_peer_name(c));
        if (t->advertise[0]) {
            /* First on the wire, so it precedes every request on this connection. */ net_wbuf w;
            net_wbuf_init(&w, 0);
            net_wbuf_str(&w, t->advertise);
            net_frame hello = {.type = CTL_HELLO,
                               .flags = NET_FRAME_CONTROL,
                               .len = (uint32_t)w.len,
                               .payload = w.data};
            mr_err e;
            mr_err_clear(&e);
            int rc = net_wbuf_failed(&w) ? mr_errf(&e, MR_ENOMEM, "out of memory")
                                         : net_conn_send(c, &hello, &e);
            net_wbuf_free(&w);
            if (rc) {
                /* Its close callback redials if anything is waiting. */
                net_conn_close(c, rc, "cannot send HELLO: %s", mr_err_msg(&e));
                return;
            }
        }
        peer_flush(tc->p);
    }
}

static void tc_on_close(net_conn *c, const mr_err *why, void *ud)
{
    tconn *tc = ud;
    net_transport *t = tc->t;
    if (why->code != MR_OK)
        t->st.conns_failed++;
    if (!tc->dialed)
        t->accepted_live--;
    tconn **hp = &t->cbuckets[cbucket_of(t, tc->id)];
    while (*hp != tc)
        hp = &(*hp)->hnext;
    *hp = tc->hnext;
    if (tc->prev)
        tc->prev->next = tc->next;
    else
        t->conns = tc->next;
    if (tc->next)
        tc->next->prev = tc->prev;
    t->st.conns--;
    peer *p = tc->p;
    if (p) {
        int was_current = p->conn == tc;
        if (was_current) {
            p->conn = NULL;
            p->state = P_IDLE;
        }
        /* Requests already sent on this connection will never be answered.
         * (Callbacks may add requests: they go to the head, never this connection.) */
        for (req *r = p->reqs, *next; r; r = next) {
            next = r->pnext;
            if (r->conn != tc)
                continue;
            req_fail(t, r, MR_EUNAVAIL, "connection to %s lost: %s", p->addr, mr_err_msg(why));
            /* A callback that closed the transport has failed (and freed) the rest. */
            if (t->closing)
                break;
        }
        /* A dial that failed: nobody listens there now (a killed node refuses at once).
         * A client would rather ask another node than wait for the redial until its
         * request times out (issue 19: status questions sat 1.25 s queued for a dead
         * leader while its group's new one was up). */
        if (was_current && tc->dialed && !tc->opened && t->cfg.fail_unreachable) {
            /* From the head again after each callback (it may finish or add requests);
             * only those queued before now, so one a callback adds waits for the redial. */
            uint64_t upto = t->next_req_id;
            for (req *r = p->reqs; r && !t->closing;) {
                if (r->conn || r->id > upto) {
                    r = r->pnext;
                    continue;
                }
                req_fail(t, r, MR_EUNAVAIL, "cannot reach %s: %s", p->addr, mr_err_msg(why));
                r = p->reqs;
            }
        }
        /* Callbacks above may have dialled again already. */
        if (was_current && !t->closing && p->state == P_IDLE && p->qhead)
            peer_schedule(p);
    }
    free(tc);
    t->live--;
    maybe_freed(t);
}

static const net_conn_cbs tc_cbs = {
    .on_open = tc_on_open,
    .on_frame = tc_on_frame,
    .on_close = tc_on_close,
};

static tconn *tconn_new(net_transport *t, peer *p)
{
    tconn *tc = calloc(1, sizeof *tc);
    if (!tc)
        return NULL;
    tc->t = t;
    tc->p = p;
    tc->dialed = p != NULL;
    tc->id = ++t->next_conn_id;
    return tc;
}

/* Doubles the id hash when it is as full as it is wide. Failing to grow only
 * makes chains longer. */
static void conns_grow(net_transport *t)
{
    size_t n = t->ncbuckets * 2;
    tconn **b = calloc(n, sizeof *b);
    if (!b)
        return;
    tconn **old = t->cbuckets;
    size_t oldn = t->ncbuckets;
    t->cbuckets = b;
    t->ncbuckets = n;
    for (size_t i = 0; i < oldn; i++)
        for (tconn *tc = old[i], *next; tc; tc = next) {
            next = tc->hnext;
            size_t k = cbucket_of(t, tc->id);
            tc->hnext = b[k];
            b[k] = tc;
        }
    free(old);
}

static void tconn_link(net_transport *t, tconn *tc)
{
    if (t->st.conns >= t->ncbuckets)
        conns_grow(t);
    size_t k = cbucket_of(t, tc->id);
    tc->hnext = t->cbuckets[k];
    t->cbuckets[k] = tc;
    tc->next = t->conns;
    if (t->conns)
        t->conns->prev = tc;
    t->conns = tc;
    t->st.conns++;
    t->live++;
}

static void peer_dial(peer *p)
{
    net_transport *t = p->t;
    mr_err e;
    mr_err_clear(&e);
    tconn *tc = tconn_new(t, p);
    if (!tc) {
        peer_schedule(p);
        return;
    }
    p->state = P_CONNECTING;
    p->conn = tc;
    t->st.dials++;
    net_conn *c;
    if (net_conn_connect(t->loop, &t->copts, p->addr, &tc_cbs, tc, &c, &e) != MR_OK) {
        MR_WARN("net", "cannot dial peer=%s reason=\"%s\"", p->addr, mr_err_msg(&e));
        free(tc);
        p->conn = NULL;
        peer_schedule(p);
        return;
    }
    tc->c = c;
    tconn_link(t, tc);
}

static void on_connection(uv_stream_t *server, int status)
{
    net_transport *t = server->data;
    if (t->closing)
        return;
    if (status < 0) {
        MR_WARN("net", "accept failed reason=\"%s\"", uv_strerror(status));
        return;
    }
    tconn *tc = tconn_new(t, NULL);
    if (!tc)
        return;
    mr_err e;
    mr_err_clear(&e);
    net_conn *c;
    if (net_conn_accept(server, &t->copts, &tc_cbs, tc, &c, &e) != MR_OK) {
        MR_WARN("net", "accept failed reason=\"%s\"", mr_err_msg(&e));
        free(tc);
        return;
    }
    tc->c = c;
    tconn_link(t, tc);
    /* Accepted (so the backlog drains) but refused: a flood of connections,
     * authenticated or not, must not exhaust descriptors or memory. */
    if (++t->accepted_live > t->cfg.max_conns) {
        t->st.refused++;
        net_conn_close(c, MR_EFULL, "too many connections (%zu)", t->cfg.max_conns);
    }
}

/* ---- Public API ---- */

int net_transport_new(const net_transport_config *cfg, net_transport **out, mr_err *err)
{
    *out = NULL;
    if (!cfg->loop)
        return mr_errf(err, MR_EINVAL, "transport needs a loop");
    /* Check every argument before any libuv handle exists, so these errors
     * leave nothing behind. */
    char host[256];
    int port = 0;
    struct sockaddr_storage ss;
    if (cfg->listen && (mr_parse_hostport(cfg->listen, host, sizeof host, &port) != 0 ||
                        (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
                         uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)))
        return mr_errf(err, MR_EINVAL, "bad listen address '%s' (want IP:PORT)", cfg->listen);
    if (cfg->advertise) {
        char h[256];
        int p;
        if (strlen(cfg->advertise) >= sizeof((net_transport *)0)->advertise ||
            mr_parse_hostport(cfg->advertise, h, sizeof h, &p) != 0 || p == 0)
            return mr_errf(err, MR_EINVAL, "bad advertise address '%s' (want HOST:PORT)",
                           cfg->advertise);
    }
    net_transport *t = calloc(1, sizeof *t);
    if (!t)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    t->cfg = *cfg;
    /* The caller's strings are not kept. */
    t->cfg.listen = NULL;
    t->cfg.advertise = NULL;
    t->loop = cfg->loop;
    if (!t->cfg.max_pending)
        t->cfg.max_pending = DEFAULT_MAX_PENDING;
    if (!t->cfg.max_conns)
        t->cfg.max_conns = DEFAULT_MAX_CONNS;
    if (!t->cfg.idle_ms)
        t->cfg.idle_ms = DEFAULT_IDLE_MS;
    if (!t->cfg.backoff_min_ms)
        t->cfg.backoff_min_ms = DEFAULT_BACKOFF_MIN;
    if (!t->cfg.backoff_max_ms)
        t->cfg.backoff_max_ms = DEFAULT_BACKOFF_MAX;
    if (t->cfg.backoff_max_ms < t->cfg.backoff_min_ms)
        t->cfg.backoff_max_ms = t->cfg.backoff_min_ms;
    t->rng = cfg->seed ? cfg->seed : (uint64_t)mr_monotonic_ns() | 1;
    t->copts = (net_conn_opts){
        .tls = cfg->tls,
        .max_frame = cfg->max_frame ? cfg->max_frame : NET_FRAME_DEFAULT_MAX,
        .max_write_queue = cfg->max_write_queue,
        .open_timeout_ms = cfg->open_timeout_ms,
    };
    if (t->copts.max_frame > NET_FRAME_LIMIT)
        t->copts.max_frame = NET_FRAME_LIMIT;
    if (cfg->advertise)
        snprintf(t->advertise, sizeof t->advertise, "%s", cfg->advertise);
    t->ncbuckets = 64;
    t->cbuckets = calloc(t->ncbuckets, sizeof *t->cbuckets);
    if (!t->cbuckets || hash_grow(t)) {
        free(t->cbuckets);
        free(t);
        return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    uv_timer_init(t->loop, &t->deadline_timer);
    t->deadline_timer.data = t;
    uv_timer_init(t->loop, &t->idle_timer);
    t->idle_timer.data = t;
    uint64_t tick = tick_ms(t);
    uv_timer_start(&t->idle_timer, on_idle_tick, tick, tick);
    uv_unref((uv_handle_t *)&t->idle_timer);
    t->live = 2;
    if (cfg->listen) {
        int r = uv_tcp_init(t->loop, &t->listener);
        if (r == 0) {
            t->listener.data = t;
            t->listening = 1;
            t->live++;
            if ((r = uv_tcp_bind(&t->listener, (struct sockaddr *)&ss, 0)) == 0)
                r = uv_listen((uv_stream_t *)&t->listener, 128, on_connection);
        }
        if (r != 0) {
            /* Handles exist: they close through the loop, which frees t. */
            net_transport_close(t, NULL, NULL);
            return mr_errf(err, MR_EIO, "cannot listen on %s: %s", cfg->listen, uv_strerror(r));
        }
        /* Port 0 asks the kernel for a port: advertise the one we got. */
        if (!cfg->advertise && strcmp(host, "0.0.0.0") != 0 && strcmp(host, "::") != 0)
            snprintf(t->advertise, sizeof t->advertise, strchr(host, ':') ? "[%s]:%d" : "%s:%d",
                     host, net_transport_port(t));
    }
    *out = t;
    return MR_OK;
}

int net_transport_port(const net_transport *t)
{
    if (!t->listening)
        return -1;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&t->listener, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Sends now when the peer's connection is open, else queues and dials. */
static int peer_send(peer *p, const net_frame *f, req *r, mr_err *err)
{ /* Straight out only behind nothing queued, so frames keep their order. */
    if (p->state == P_OPEN && !p->qhead && net_conn_is_open(p->conn->c)) {
        int rc = net_conn_send(p->conn->c, f, err);
        if (rc == MR_OK && r)
            req_sent(r, p->conn);
        return rc;
    }
    /* Not open, or open but closing (its close callback will redial): wait. */
    int rc = peer_enqueue(p, f, err);
    if (rc)
        return rc;
    if (p->state == P_IDLE) {
        /* With fail_unreachable a request is never held back by the backoff: its dial
         * answers at once whether the peer is there (the caller paces its own retries). */
        if (p->attempts == 0 || (r && p->t->cfg.fail_unreachable))
            peer_dial(p);
        else
            peer_schedule(p);
    }
    return MR_OK;
}

int net_transport_send(net_transport *t, const char *peer_addr, uint8_t type, const void *payload,
                       uint32_t len, mr_err *err)
{
    if (t->closing)
        return mr_errf(err, MR_EUNAVAIL, "transport closing");
    if (type == 0)
        return mr_errf(err, MR_EINVAL, "message type 0");
    peer *p = peer_get(t, peer_addr, err);
    if (!p)
        return err ? err->code : MR_EINVAL;
    net_frame f = {.type = type, .len = len, .payload = payload};
    return peer_send(p, &f, NULL, err);
}

int net_transport_request(net_transport *t, const char *peer_addr, uint8_t type,
                          const void *payload, uint32_t len, uint64_t timeout_ms,
                          net_response_cb cb, void *ud, uint64_t *req_id, mr_err *err)
{
    if (t->closing)
        return mr_errf(err, MR_EUNAVAIL, "transport closing");
    if (type == 0 || !cb || timeout_ms == 0)
        return mr_errf(err, MR_EINVAL, "request needs a type, a callback and a timeout");
    peer *p = peer_get(t, peer_addr, err);
    if (!p)
        return err ? err->code : MR_EINVAL;
    req *r = req_new(t, p, timeout_ms, cb, ud);
    if (!r)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    net_frame f = {.type = type, .req_id = r->id, .len = len, .payload = payload};
    int rc = peer_send(p, &f, r, err);
    if (rc) {
        req_unlink(t, r);
        free(r);
        return rc;
    }
    if (req_id)
        *req_id = r->id;
    return MR_OK;
}

int net_transport_reply(net_transport *t, net_reply_to to, uint8_t type, const void *payload,
                        uint32_t len, mr_err *err)
{
    if (to.req_id == 0)
        return mr_errf(err, MR_EINVAL, "a one-way message cannot be answered");
    if (type == 0)
        return mr_errf(err, MR_EINVAL, "message type 0");
    tconn *tc = tconn_find(t, to.conn_id);
    if (tc) {
        net_frame f = {.type = type,
                       .flags = NET_FRAME_RESPONSE,
                       .req_id = to.req_id,
                       .len = len,
                       .payload = payload};
        return net_conn_send(tc->c, &f, err);
    }
    return mr_errf(err, MR_EUNAVAIL, "the requester's connection is gone");
}

int net_transport_notify(net_transport *t, net_reply_to to, uint8_t type, const void *payload,
                         uint32_t len, mr_err *err)
{
    if (type == 0)
        return mr_errf(err, MR_EINVAL, "message type 0");
    tconn *tc = tconn_find(t, to.conn_id);
    if (!tc)
        return mr_errf(err, MR_EUNAVAIL, "the connection is gone");
    net_frame f = {.type = type, .len = len, .payload = payload};
    return net_conn_send(tc->c, &f, err);
}

static void on_handle_closed(uv_handle_t *h)
{
    net_transport *t = h->data;
    t->live--;
    maybe_freed(t);
}

static void on_peer_timer_closed(uv_handle_t *h)
{
    peer *p = h->data;
    net_transport *t = p->t;
    t->live--;
    maybe_freed(t);
}

static void maybe_freed(net_transport *t)
{
    if (!t->closing || t->live > 0)
        return;
    for (peer *p = t->peers, *n; p; p = n) {
        n = p->next;
        free(p);
    }
    free(t->buckets);
    free(t->cbuckets);
    void (*cb)(void *) = t->on_closed;
    void *ud = t->closed_ud;
    free(t);
    if (cb)
        cb(ud);
}

void net_transport_close(net_transport *t, void (*on_closed)(void *ud), void *ud)
{
    if (t->closing)
        return;
    t->closing = 1;
    t->on_closed = on_closed;
    t->closed_ud = ud;
    if (t->listening)
        uv_close((uv_handle_t *)&t->listener, on_handle_closed);
    for (tconn *tc = t->conns; tc; tc = tc->next)
        net_conn_close(tc->c, MR_OK, "transport closing");
    for (peer *p = t->peers; p; p = p->next) {
        peer_drop_queue(p);
        p->state = P_IDLE;
        uv_close((uv_handle_t *)&p->timer, on_peer_timer_closed);
    }
    while (t->dhead)
        req_fail(t, t->dhead, MR_EUNAVAIL, "transport closing%s%s", "", "");
    uv_close((uv_handle_t *)&t->deadline_timer, on_handle_closed);
    uv_close((uv_handle_t *)&t->idle_timer, on_handle_closed);
}

void net_transport_get_stats(const net_transport *t, net_transport_stats *s)
{
    *s = t->st;
    s->requests = t->nreqs;
}

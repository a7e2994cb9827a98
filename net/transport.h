/* The node transport: one listener plus outgoing connections keyed by peer
 * address ("host:port"), requests with ids, timeouts and bounded queues.
 *
 * - One connection per pair of nodes carries every message between them,
 *   whatever group it is for. A node that listens says HELLO with its
 *   advertised address first on every connection it dials; the accepting node
 *   then uses that connection for its own messages to that address instead of
 *   dialling back (under TLS only if the dialler's certificate names that
 *   address). If both dial at once, both keep the connection dialled by the
 *   smaller address and retire the other once the requests on it are answered.
 *   Replies always travel back on the connection the request came in on.
 *   Peers are keyed by their address string exactly as given or advertised.
 * - Frames for a peer whose connection is not open wait in a bounded per-peer
 *   queue (MR_EFULL past the bound) while the transport dials; a failed or lost
 *   connection is redialled with exponential backoff and jitter while anything
 *   waits for that peer.
 * - A request's callback runs exactly once: with the response, MR_ETIMEDOUT
 *   when no response came in time, MR_EUNAVAIL when the connection carrying it
 *   was lost or the transport closed (or, with fail_unreachable, when a dial to
 *   its peer failed while it waited). Never from inside net_transport_request.
 *   A request that times out while still queued leaves the queue; one-way
 *   messages wait until sent or the queue bound refuses more.
 * - A connection on which nothing arrives for idle_ms is closed (a PING goes
 *   out at half of it; any frame counts), so a peer behind a partition or on a
 *   dead host is noticed without waiting minutes for TCP to give up.
 * - With answer_ms, a connection carrying requests on which nothing arrived
 *   for answer_ms (since the later of its last frame and its first request
 *   outstanding) gets a PING, and is closed when nothing arrives for another
 *   answer_ms: its requests fail with MR_EUNAVAIL. A live peer answers the PING
 *   however long its requests take; a stopped one (SIGSTOP, a hung host) is
 *   noticed in about 2 x answer_ms instead of at the requests' timeouts. A tick
 *   that runs late (the process itself was stopped or starved) closes nothing:
 *   what arrived meanwhile is read first.
 * - The transport knows nothing of what the messages mean: types 1..255 and
 *   payloads belong to the layers above (net/buf.h encodes them).
 * - Single-threaded: call everything from the loop's thread. */
#ifndef NET_TRANSPORT_H
#define NET_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/mr_err.h"
#include "net/tls.h"

typedef struct net_transport net_transport;

/* Where a reply goes: the connection a request came in on, and its id. */
typedef struct net_reply_to {
    uint64_t conn_id;
    uint64_t req_id; /* 0: a one-way message, nothing to reply to */
} net_reply_to;

typedef struct net_message {
    uint8_t type;
    uint32_t len;
    const uint8_t *payload; /* borrowed: valid only during the callback */
    const char *peer;       /* the connection's remote "host:port" */
    const char *peer_name;  /* the peer certificate's common name; "" when insecure */
    int peer_is_node;       /* a node certificate (not a client's); 1 when insecure */
    net_reply_to reply_to;
} net_message;

typedef struct net_transport_config {
    uv_loop_t *loop;
    net_tls_ctx *tls;         /* NULL = plain TCP (--insecure); borrowed, outlives t */
    const char *listen;       /* "ip:port" to accept on (port 0: any), NULL: dial only */
    const char *advertise;    /* "host:port" peers dial us at; NULL: the bound listen
                               * address unless it is a wildcard (then no HELLO) */
    uint32_t max_frame;       /* 0 = NET_FRAME_DEFAULT_MAX */
    size_t max_write_queue;   /* per connection, bytes; 0 = 64 MiB */
    size_t max_pending;       /* frames waiting per peer while not connected; 0 = 4096 */
    size_t max_conns;         /* accepted connections alive at once; 0 = 4096 */
    uint64_t idle_ms;         /* a connection silent this long is closed (a PING goes out
                               * at half of it); 0 = 10 s */
    uint64_t answer_ms;       /* liveness of connections with requests out (above); 0 = off */
    int fail_unreachable;     /* a dial that fails (refused, no route, handshake) fails the
                               * requests queued for that peer at once with MR_EUNAVAIL, instead
                               * of leaving them queued for the redial until their timeout;
                               * one-way messages stay queued. For clients, which can ask another
                               * node; 0 = off */
    uint64_t open_timeout_ms; /* connect + handshake; 0 = 10 s */
    uint64_t backoff_min_ms;  /* first redial delay; 0 = 50 ms */
    uint64_t backoff_max_ms;  /* ceiling; 0 = 5 s */
    uint64_t seed;            /* jitter; 0 = seeded from the clock */
    /* A request or one-way message from a peer. */
    void (*on_message)(net_transport *t, const net_message *m, void *ud);
    void *ud;
} net_transport_config;

/* status MR_OK with resp, or an error with err (resp NULL). */
typedef void (*net_response_cb)(net_transport *t, int status, const mr_err *err,
                                const net_message *resp, void *ud);

/* Starts listening if cfg->listen is set. *out is freed by net_transport_close.
 * Bad arguments fail at once and leave nothing behind; a failure to bind or
 * listen leaves libuv handles closing on the loop (they free themselves): run
 * the loop before uv_loop_close. */
int net_transport_new(const net_transport_config *cfg, net_transport **out, mr_err *err);

/* The port the listener is bound to (useful with port 0), or -1. */
int net_transport_port(const net_transport *t);

/* A one-way message to peer ("host:port"); payload is copied. */
int net_transport_send(net_transport *t, const char *peer, uint8_t type, const void *payload,
                       uint32_t len, mr_err *err);

/* A request; cb(…, ud) runs exactly once if this returns MR_OK, never if not.
 * *req_id (optional) gets the id. timeout_ms must be > 0. */
int net_transport_request(net_transport *t, const char *peer, uint8_t type, const void *payload,
                          uint32_t len, uint64_t timeout_ms, net_response_cb cb, void *ud,
                          uint64_t *req_id, mr_err *err);

/* Answers a request. MR_EUNAVAIL if its connection has gone meanwhile. */
int net_transport_reply(net_transport *t, net_reply_to to, uint8_t type, const void *payload,
                        uint32_t len, mr_err *err);

/* A one-way message on the connection that request `to` came in on (to.req_id is not
 * used): a server's notice to a client that dialled it. MR_EUNAVAIL if the connection has
 * gone meanwhile. */
int net_transport_notify(net_transport *t, net_reply_to to, uint8_t type, const void *payload,
                         uint32_t len, mr_err *err);

/* Closes the listener and every connection, fails every pending request with
 * MR_EUNAVAIL (their callbacks run inside this call), and once every libuv
 * handle has closed, calls on_closed(ud) and frees t. */
void net_transport_close(net_transport *t, void (*on_closed)(void *ud), void *ud);

/* Introspection for tests and metrics. */
typedef struct net_transport_stats {
    uint64_t conns_opened;  /* connections that completed their handshake */
    uint64_t conns_failed;  /* connections closed with an error */
    uint64_t dials;         /* outgoing connection attempts */
    uint64_t timeouts;      /* requests that timed out */
    uint64_t adopted;       /* accepted connections adopted after a HELLO */
    uint64_t refused;       /* accepted connections closed at once: over max_conns */
    uint64_t pings;         /* PINGs sent on quiet connections */
    uint64_t hello_refused; /* HELLOs whose certificate did not name the address */
    size_t conns;           /* connections alive now */
    size_t requests;        /* requests in flight now */
} net_transport_stats;
void net_transport_get_stats(const net_transport *t, net_transport_stats *s);

#endif

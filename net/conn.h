/* A connection that carries whole frames, over plain TCP (--insecure) or TLS.
 *
 * The difference between the two lives behind a small vtable, net_conn_type
 * (after redis's ConnectionType): how bytes from the socket become plaintext and
 * how plaintext becomes bytes for the socket. The rest (libuv handles, the frame
 * decoder, the write bound, timeouts, close) is shared.
 *
 * Life cycle: connect or accept -> [handshake] -> open -> closing -> closed.
 * Once net_conn_connect/net_conn_accept returns MR_OK, on_close is called exactly
 * once, after every libuv handle of the connection has closed; the connection is
 * freed right after on_close returns (never before: libuv's rule). A malformed
 * frame, a failed handshake, a write error or a timeout closes only this * connection, logs the
 * reason (mod=net) and reports it to on_close.
 *
 * Writes: a frame sent while none is in flight goes to the socket at once;
 * frames sent meanwhile are gathered and leave together when that write
 * completes, so a burst costs one TLS record and one system call. */
#ifndef NET_CONN_H
#define NET_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/mr_err.h"
#include "net/frame.h"
#include "net/tls.h"

typedef struct net_conn net_conn;

typedef struct net_conn_opts {
    net_tls_ctx *tls;         /* NULL = plain TCP; borrowed, must outlive the connection */
    uint32_t max_frame;       /* largest payload accepted; 0 = NET_FRAME_DEFAULT_MAX */
    size_t max_write_queue;   /* bytes accepted but not yet written to the socket; 0 = 64 MiB */
    uint64_t open_timeout_ms; /* connect + handshake must finish in time; 0 = 10 s */
} net_conn_opts;

typedef struct net_conn_cbs {
    /* The connection is open (TLS: handshake done, peer verified); frames may flow. */
    void (*on_open)(net_conn *c, void *ud);
    /* One whole frame; f->payload is valid only during the call. */
    void (*on_frame)(net_conn *c, const net_frame *f, void *ud);
    /* Closed: why->code is MR_OK after a local net_conn_close without an error. */
    void (*on_close)(net_conn *c, const mr_err *why, void *ud);
} net_conn_cbs;

/* Dials "host:port" (an IP address or a name, resolved asynchronously). TLS
 * clients check the server certificate names `host`. */
int net_conn_connect(uv_loop_t *loop, const net_conn_opts *opts, const char *hostport,
                     const net_conn_cbs *cbs, void *ud, net_conn **out, mr_err *err);

/* Accepts a pending connection from a listening stream (call from its connection callback). */
int net_conn_accept(uv_stream_t *server, const net_conn_opts *opts, const net_conn_cbs *cbs,
                    void *ud, net_conn **out, mr_err *err);

/* Queues a frame (copied; the caller keeps f->payload). MR_EUNAVAIL unless open,
 * MR_EFULL when the write queue bound would be exceeded, MR_EINVAL for a bad frame. */
int net_conn_send(net_conn *c, const net_frame *f, mr_err *err);

/* Starts closing (idempotent); nothing is received after it. code MR_OK is an
 * orderly close: frames already sent still reach the socket (waiting at most
 * 2 s) before the TCP FIN; logged at debug. Any other code drops them at once
 * and is logged with the reason (MR_EUNAVAIL at info, the rest at warn). */
void net_conn_close(net_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int net_conn_is_open(const net_conn *c);
/* "host:port" of the other end. */
const char *net_conn_peer(const net_conn *c);
/* The peer certificate's common name under TLS, "" otherwise. */
const char *net_conn_peer_name(const net_conn *c);
/* Whether the peer authenticated as a node (TLS: a node certificate) rather
 * than a client. Plain TCP proves nothing and answers 1 (--insecure). */
int net_conn_peer_is_node(const net_conn *c);
/* Whether the peer proved it may use the name host: under TLS its verified
 * certificate names host; plain TCP proves nothing and answers 1 (--insecure). */
int net_conn_peer_has_host(const net_conn *c, const char *host);
size_t net_conn_write_queue(const net_conn *c);
void *net_conn_user(const net_conn *c);
void net_conn_set_user(net_conn *c, void *ud);

/* ---- The seam: a connection type. ---- */

typedef struct net_conn_type {
    const char *name;
    /* Per-connection set-up after the socket exists (TLS: a session). */
    int (*init)(net_conn *c, int is_client, const char *host, mr_err *err);
    /* The TCP connection is up: open at once, or begin a handshake. */
    int (*start)(net_conn *c, mr_err *err);
    /* Bytes read from the socket. */
    int (*on_bytes)(net_conn *c, const uint8_t *data, size_t n, mr_err *err);
    /* Plaintext to send, in order. */
    int (*write)(net_conn *c, const uv_buf_t *bufs, unsigned nbufs, mr_err *err);
    const char *(*peer_name)(const net_conn *c);
    int (*peer_has_host)(const net_conn *c, const char *host);
    int (*peer_is_node)(const net_conn *c);
    void (*free)(net_conn *c);
} net_conn_type;

extern const net_conn_type net_conn_type_tcp;
extern const net_conn_type net_conn_type_tls;

/* For connection types: hand socket bytes to the socket (buf is malloc'ed and
 * now owned by the connection), deliver plaintext to the frame decoder, and
 * declare the connection open. */
int net_conn_raw_write(net_conn *c, uint8_t *buf, size_t len, mr_err *err);
int net_conn_deliver(net_conn *c, const uint8_t *data, size_t n, mr_err *err);
void net_conn_opened(net_conn *c);
void *net_conn_impl(const net_conn *c);
void net_conn_set_impl(net_conn *c, void *impl);
net_tls_ctx *net_conn_tls_ctx(const net_conn *c);

#endif

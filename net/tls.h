/* TLS 1.3 with mutual authentication as a pure byte engine: OpenSSL runs over a
 * pair of memory BIOs, so this module does no I/O and knows nothing of libuv.
 * net/conn.c feeds it the ciphertext a socket delivered and writes out the
 * ciphertext it produces. Both ends present a certificate signed by the cluster
 * CA and verify the other's; a server refuses a client without a certificate
 * (SSL_VERIFY_FAIL_IF_NO_PEER_CERT); nothing older than TLS 1.3 is spoken. */
#ifndef NET_TLS_H
#define NET_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "common/mr_err.h"

typedef struct net_tls_ctx net_tls_ctx;
typedef struct net_tls net_tls;

typedef struct net_tls_config {
    const char *ca_file;   /* PEM CA certificate(s) peers must chain to; required */
    const char *cert_file; /* our certificate (chain); NULL = present none */
    const char *key_file;  /* its private key; required with cert_file */
} net_tls_config;

/* Builds a context usable for both ends (nodes both dial and accept).
 * *out is owned by the caller: net_tls_ctx_free after every net_tls made from it. */
int net_tls_ctx_new(const net_tls_config *cfg, net_tls_ctx **out, mr_err *err);
/* <dir>/ca.crt, <dir>/<name>.crt and <dir>/<name>.key (see net/cert.h). */
int net_tls_ctx_load_dir(const char *dir, const char *name, net_tls_ctx **out, mr_err *err);
void net_tls_ctx_free(net_tls_ctx *ctx);

/* One TLS session. A client given `expect_host` (an IP address or DNS name)
 * also checks that the server's certificate names it (SubjectAltName).
 * *out is owned by the caller (net_tls_free). */
int net_tls_new(net_tls_ctx *ctx, int is_client, const char *expect_host, net_tls **out,
                mr_err *err);
void net_tls_free(net_tls *t);

/* Hands ciphertext received from the peer to the engine. */
int net_tls_feed(net_tls *t, const void *data, size_t len, mr_err *err);

/* Advances the handshake. Returns MR_OK when it is complete, NET_TLS_AGAIN when
 * more bytes from the peer are needed (send what net_tls_take_out has first),
 * or an error (MR_EPROTO, with the verification failure in err). */
#define NET_TLS_AGAIN (-1)
int net_tls_handshake(net_tls *t, mr_err *err);
int net_tls_handshake_done(const net_tls *t);

/* Decrypts into buf. Returns MR_OK with *n > 0, MR_OK with *n == 0 when it needs
 * more ciphertext, MR_EUNAVAIL when the peer closed the session, or an error. */
int net_tls_read(net_tls *t, void *buf, size_t cap, size_t *n, mr_err *err);

/* Encrypts len bytes (all of them: the memory BIO grows). */
int net_tls_write(net_tls *t, const void *data, size_t len, mr_err *err);

/* Ciphertext waiting to go to the peer: a malloc'ed buffer the caller frees, or
 * NULL with *len == 0 when there is none. */
uint8_t *net_tls_take_out(net_tls *t, size_t *len);

/* Queues a close_notify alert (then send net_tls_take_out). */
void net_tls_shutdown(net_tls *t);

/* 1 if the verified peer certificate names host (an IP address or DNS name)
 * in its SubjectAltName, else 0. */
int net_tls_peer_has_host(const net_tls *t, const char *host);

/* 1 if the peer's verified certificate may serve as a TLS server (a node
 * certificate; client certificates are clientAuth only), else 0. */
int net_tls_peer_is_node(const net_tls *t);

/* The peer certificate's common name after the handshake ("" if none). */
const char *net_tls_peer_name(const net_tls *t);

#endif

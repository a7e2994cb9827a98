/* OpenSSL TLS 1.3 over memory BIOs (see tls.h). */
#include "net/tls.h"

#include "common/mr_log.h"
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct net_tls_ctx {
    SSL_CTX *ssl_ctx;
};

struct net_tls {
    SSL *ssl;
    BIO *rbio; /* ciphertext from the peer; owned by ssl */
    BIO *wbio; /* ciphertext to the peer; owned by ssl */
    int done;
    int peer_node; /* the peer certificate allows TLS server use: a node's */
    char peer_name[128];
};

/* The first queued OpenSSL error as text, appended to what; clears the queue. */
static int ossl_err(mr_err *err, int code, const char *what)
{
    char buf[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return mr_errf(err, code, "%s%s%s", what, e ? ": " : "", buf);
}

int net_tls_ctx_new(const net_tls_config *cfg, net_tls_ctx **out, mr_err *err)
{
    *out = NULL;
    if (!cfg->ca_file)
        return mr_errf(err, MR_EINVAL, "TLS needs a CA certificate");
    if (!cfg->cert_file != !cfg->key_file)
        return mr_errf(err, MR_EINVAL, "TLS needs both a certificate and its key");
    ERR_clear_error();
    SSL_CTX *c = SSL_CTX_new(TLS_method());
    if (!c)
        return ossl_err(err, MR_ENOMEM, "SSL_CTX_new");
    int rc = MR_OK;
    /* TLS 1.3 only: no downgrade, no legacy renegotiation, forward secrecy. */
    if (!SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION)) {
        rc = ossl_err(err, MR_EIO, "cannot require TLS 1.3");
        goto fail;
    }
    /* Mutual authentication: verify the peer always; as a server, refuse a
     * client that presents no certificate at all. */
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    if (!SSL_CTX_load_verify_locations(c, cfg->ca_file, NULL)) {
        rc = ossl_err(err, MR_EINVAL, "cannot load CA certificate");
        mr_err_wrap(err, "%s", cfg->ca_file);
        goto fail;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
    if (names)
        SSL_CTX_set_client_CA_list(c, names); /* takes ownership */
    if (cfg->cert_file) {
        if (!SSL_CTX_use_certificate_chain_file(c, cfg->cert_file)) {
            rc = ossl_err(err, MR_EINVAL, "cannot load certificate");
            mr_err_wrap(err, "%s", cfg->cert_file);
            goto fail;
        }
        if (!SSL_CTX_use_PrivateKey_file(c, cfg->key_file, SSL_FILETYPE_PEM)) {
            rc = ossl_err(err, MR_EINVAL, "cannot load private key");
            mr_err_wrap(err, "%s", cfg->key_file);
            goto fail;
        }
        struct stat st;
        if (stat(cfg->key_file, &st) == 0 && (st.st_mode & 077))
            MR_WARN("net", "private key %s is accessible to other users (mode %04o); chmod 600 it",
                    cfg->key_file, (unsigned)(st.st_mode & 07777));
        if (!SSL_CTX_check_private_key(c)) {
            rc = ossl_err(err, MR_EINVAL, "key does not match certificate");
            mr_err_wrap(err, "%s", cfg->key_file);
            goto fail;
        }
    }
    /* Connections are long-lived node-to-node links: resumption buys nothing,
     * and no tickets means no post-handshake traffic to account for. */
    SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    net_tls_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        rc = mr_errf(err, MR_ENOMEM, "out of memory");
        goto fail;
    }
    ctx->ssl_ctx = c;
    *out = ctx;
    return MR_OK;
fail:
    SSL_CTX_free(c);
    return rc;
}

int net_tls_ctx_load_dir(const char *dir, const char *name, net_tls_ctx **out, mr_err *err)
{
    char ca[4096], crt[4096], key[4096];
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    snprintf(crt, sizeof crt, "%s/%s.crt", dir, name);
    snprintf(key, sizeof key, "%s/%s.key", dir, name);
    net_tls_config cfg = {.ca_file = ca, .cert_file = crt, .key_file = key};
    return net_tls_ctx_new(&cfg, out, err);
}

void net_tls_ctx_free(net_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

int net_tls_new(net_tls_ctx *ctx, int is_client, const char *expect_host, net_tls **out,
                mr_err *err)
{
    *out = NULL;
    net_tls *t = calloc(1, sizeof *t);
    if (!t)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ssl_ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        return ossl_err(err, MR_ENOMEM, "SSL_new");
    }
    /* An empty memory BIO reports "retry", not EOF, so reads say WANT_READ. */
    BIO_set_mem_eof_return(t->rbio, -1);
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (is_client) {
        SSL_set_connect_state(t->ssl);
        if (expect_host && *expect_host) {
            unsigned char addr[16];
            int ok;
            if (inet_pton(AF_INET, expect_host, addr) == 1 ||
                inet_pton(AF_INET6, expect_host, addr) == 1) {
                ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), expect_host);
            } else {
                ok = SSL_set1_host(t->ssl, expect_host) &&
                     SSL_set_tlsext_host_name(t->ssl, expect_host);
            }
            if (!ok) {
                net_tls_free(t);
                return ossl_err(err, MR_EINVAL, "cannot set the expected peer name");
            }
        }
    } else {
        SSL_set_accept_state(t->ssl);
    }
    *out = t;
    return MR_OK;
}

void net_tls_free(net_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees both BIOs */
    free(t);
}

int net_tls_feed(net_tls *t, const void *data, size_t len, mr_err *err)
{
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int n = BIO_write(t->rbio, data, chunk);
        if (n <= 0)
            return ossl_err(err, MR_ENOMEM, "BIO_write");
        data = (const uint8_t *)data + n;
        len -= (size_t)n;
    }
    return MR_OK;
}

/* Why the handshake failed, in words a user can act on. */
static int handshake_error(net_tls *t, int ssl_err, mr_err *err)
{
    long vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK) {
        ERR_clear_error();
        return mr_errf(err, MR_EPROTO, "peer certificate rejected: %s",
                       X509_verify_cert_error_string(vr));
    }
    if (ssl_err == SSL_ERROR_SSL)
        return ossl_err(err, MR_EPROTO, "TLS handshake failed");
    ERR_clear_error();
    return mr_errf(err, MR_EPROTO, "TLS handshake failed (SSL error %d)", ssl_err);
}

int net_tls_handshake(net_tls *t, mr_err *err)
{
    if (t->done)
        return MR_OK;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->done = 1;
        X509 *peer = SSL_get1_peer_certificate(t->ssl);
        if (peer) {
            X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, t->peer_name,
                                      sizeof t->peer_name);
            /* Node certificates carry serverAuth, client certificates only
             * clientAuth (net/cert.c); no EKU at all means no restriction. */
            t->peer_node = (X509_get_extended_key_usage(peer) & XKU_SSL_SERVER) != 0;
            X509_free(peer);
        }
        return MR_OK;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return NET_TLS_AGAIN;
    return handshake_error(t, e, err);
}

int net_tls_handshake_done(const net_tls *t)
{
    return t->done;
}

int net_tls_read(net_tls *t, void *buf, size_t cap, size_t *n, mr_err *err)
{
    *n = 0;
    ERR_clear_error();
    int chunk = cap > (1u << 30) ? (1 << 30) : (int)cap;
    int r = SSL_read(t->ssl, buf, chunk);
    if (r > 0) {
        *n = (size_t)r;
        return MR_OK;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return MR_OK;
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return mr_errf(err, MR_EUNAVAIL, "peer closed the TLS session");
    }
    /* In TLS 1.3 a server's rejection of our certificate arrives only now, as an
     * alert after our side of the handshake had finished. */
    return ossl_err(err, MR_EPROTO, "TLS read failed");
}

int net_tls_write(net_tls *t, const void *data, size_t len, mr_err *err)
{
    ERR_clear_error();
    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int r = SSL_write(t->ssl, data, chunk);
        if (r <= 0)
            return ossl_err(err, MR_EIO, "TLS write failed");
        data = (const uint8_t *)data + r;
        len -= (size_t)r;
    }
    return MR_OK;
}

uint8_t *net_tls_take_out(net_tls *t, size_t *len)
{
    *len = 0;
    size_t pending = BIO_ctrl_pending(t->wbio);
    if (pending == 0)
        return NULL;
    uint8_t *buf = malloc(pending);
    if (!buf)
        return NULL; /* left in the BIO; the next call retries */
    int n = BIO_read(t->wbio, buf, (int)pending);
    if (n <= 0) {
        free(buf);
        return NULL;
    }
    *len = (size_t)n;
    return buf;
}

void net_tls_shutdown(net_tls *t)
{
    if (t->done) {
        ERR_clear_error();
        SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
}

int net_tls_peer_has_host(const net_tls *t, const char *host)
{
    if (!t->done || !host || !*host)
        return 0;
    X509 *peer = SSL_get1_peer_certificate(t->ssl);
    if (!peer)
        return 0;
    unsigned char addr[16];
    int ok;
    if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1)
        ok = X509_check_ip_asc(peer, host, 0) == 1;
    else
        ok = X509_check_host(peer, host, 0, 0, NULL) == 1;
    X509_free(peer);
    ERR_clear_error();
    return ok;
}

int net_tls_peer_is_node(const net_tls *t)
{
    return t->done && t->peer_node;
}

const char *net_tls_peer_name(const net_tls *t)
{
    return t->peer_name;
}

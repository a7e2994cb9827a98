/* CA, node and client certificates with OpenSSL's EVP/X509 API (see cert.h). */
#include "net/cert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define ORG "Meridian"

/* Appends OpenSSL's queued error (if any) to a message; clears the queue. */
static int ossl_err(mr_err *err, int code, const char *what)
{
    char buf[256] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return mr_errf(err, code, "%s%s%s", what, e ? ": " : "", buf);
}

int net_cert_valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 64 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

/* RFC 1123 host name, optionally with a leading "*." wildcard label. */
static int valid_dns(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    if (strncmp(s, "*.", 2) == 0)
        s += 2;
    size_t label = 0;
    for (const char *p = s;; p++) {
        if (*p == '.' || *p == '\0') {
            if (label == 0 || label > 63 || p[-1] == '-')
                return 0;
            if (*p == '\0')
                return 1;
            label = 0;
            continue;
        }
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return 0;
        if (label == 0 && c == '-')
            return 0;
        label++;
    }
}

/* Turns "127.0.0.1,localhost" into "IP:127.0.0.1,DNS:localhost" (caller frees). */
static int san_from_hosts(const char *hosts, char **out, mr_err *err)
{
    *out = NULL;
    if (!hosts || !*hosts)
        return mr_errf(err, MR_EINVAL, "at least one host is required");
    size_t cap = strlen(hosts) * 2 + 64;
    char *san = calloc(1, cap);
    char *copy = strdup(hosts);
    if (!san || !copy) {
        free(san);
        free(copy);
        return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    int count = 0, rc = MR_OK;
    char *save = NULL;
    /* strtok_r would skip empty entries; a user's "a,,b" deserves an error. */
    for (char *h = copy;; h = save) {
        char *comma = strchr(h, ',');
        save = comma ? comma + 1 : NULL;
        if (comma)
            *comma = '\0';
        unsigned char addr[16];
        const char *kind;
        if (*h == '\0') {
            rc = mr_errf(err, MR_EINVAL, "empty host in '%s'", hosts);
            break;
        }
        if (inet_pton(AF_INET, h, addr) == 1 || inet_pton(AF_INET6, h, addr) == 1)
            kind = "IP";
        else if (valid_dns(h))
            kind = "DNS";
        else {
            rc = mr_errf(err, MR_EINVAL, "'%s' is neither an IP address nor a DNS name", h);
            break;
        }
        if (++count > NET_CERT_MAX_HOSTS) {
            rc = mr_errf(err, MR_EINVAL, "more than %d hosts", NET_CERT_MAX_HOSTS);
            break;
        }
        size_t used = strlen(san);
        snprintf(san + used, cap - used, "%s%s:%s", used ? "," : "", kind, h);
        if (!save)
            break;
    }
    free(copy);
    if (rc) {
        free(san);
        return rc;
    }
    *out = san;
    return MR_OK;
}

static int ensure_dir(const char *dir, mr_err *err)
{
    if (!dir || !*dir)
        return mr_errf(err, MR_EINVAL, "no certs directory given");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return mr_errf(err, MR_EIO, "cannot create %s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return mr_errf(err, MR_EINVAL, "%s is not a directory", dir);
    return MR_OK;
}

static int refuse_existing(const char *path, int overwrite, mr_err *err)
{
    if (!overwrite && access(path, F_OK) == 0)
        return mr_errf(err, MR_EEXIST,
                       "%s already exists; refusing to overwrite it (use --overwrite)", path);
    return MR_OK;
}

/* Writes a PEM object to path via path.tmp + fsync, with the given mode, then
 * renames it into place, or, when not overwriting, hard-links it: link() fails
 * if path appeared meanwhile, so an existing key is never replaced by a race. */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert, int overwrite,
                     mr_err *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return mr_errf(err, MR_EINVAL, "path too long: %s", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return mr_errf(err, MR_EIO, "cannot create %s: %s", tmp, strerror(errno));
    /* The umask may have narrowed it; a key must be exactly 0600, a cert readable. */
    fchmod(fd, mode);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return mr_errf(err, MR_EIO, "fdopen %s: %s", tmp, strerror(errno));
    }
    int ok =
        key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
    if (ok && fflush(f) != 0)
        ok = 0;
    if (ok && fsync(fileno(f)) != 0)
        ok = 0;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        unlink(tmp);
        return ossl_err(err, MR_EIO, "cannot write PEM file");
    }
    if (!overwrite) {
        int r = link(tmp, path), e = errno;
        unlink(tmp);
        if (r != 0 && e == EEXIST)
            return mr_errf(err, MR_EEXIST,
                           "%s already exists; refusing to overwrite it (use --overwrite)", path);
        if (r != 0)
            return mr_errf(err, MR_EIO, "link %s: %s", path, strerror(e));
        return MR_OK;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return mr_errf(err, MR_EIO, "rename %s: %s", path, strerror(e));
    }
    return MR_OK;
}

static EVP_PKEY *new_key(mr_err *err)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    if (!k)
        ossl_err(err, MR_EIO, "EC P-256 key generation failed");
    return k;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value, mr_err *err)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return ossl_err(err, MR_EINVAL, "bad certificate extension");
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? MR_OK : ossl_err(err, MR_EIO, "X509_add_ext");
}

/* A certificate for `key` named cn, not yet signed; issuer NULL = self-signed. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, X509 *issuer, int days, mr_err *err)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    if (!x || !name || RAND_bytes(serial, sizeof serial) != 1)
        goto fail;
    serial[0] &= 0x7f; /* positive, as RFC 5280 requires */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto fail;
    if (!X509_set_version(x, 2) || !X509_set_pubkey(x, key))
        goto fail;
    /* Back-date an hour so a peer whose clock is a little behind still accepts it. */
    if (!X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400))
        goto fail;
    if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)ORG, -1, -1,
                                    0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_set_subject_name(x, name))
        goto fail;
    if (!X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name))
        goto fail;
    BN_free(bn);
    X509_NAME_free(name);
    return x;
fail:
    ossl_err(err, MR_EIO, "cannot build certificate");
    BN_free(bn);
    X509_NAME_free(name);
    X509_free(x);
    return NULL;
}

int net_cert_create_ca(const net_cert_opts *o, mr_err *err)
{
    char kpath[4096], cpath[4096];
    int rc = ensure_dir(o->dir, err);
    if (rc)
        return rc;
    snprintf(kpath, sizeof kpath, "%s/ca.key", o->dir);
    snprintf(cpath, sizeof cpath, "%s/ca.crt", o->dir);
    if ((rc = refuse_existing(kpath, o->overwrite, err)) ||
        (rc = refuse_existing(cpath, o->overwrite, err)))
        return rc;
    EVP_PKEY *key = new_key(err);
    if (!key)
        return err ? err->code : MR_EIO;
    X509 *x = new_cert(key, "Meridian CA", NULL, o->days ? o->days : NET_CERT_CA_DAYS, err);
    rc = x ? MR_OK : MR_EIO;
    if (!rc)
        rc = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE", err);
    if (!rc)
        rc = add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign", err);
    if (!rc)
        rc = add_ext(x, x, NID_subject_key_identifier, "hash", err);
    if (!rc && !X509_sign(x, key, EVP_sha256()))
        rc = ossl_err(err, MR_EIO, "signing the CA certificate");
    if (!rc)
        rc = write_pem(kpath, 0600, key, NULL, o->overwrite, err);
    if (!rc)
        rc = write_pem(cpath, 0644, NULL, x, o->overwrite, err);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* Loads the CA certificate and key from the certs directory and checks they match. */
static int load_ca(const net_cert_opts *o, X509 **ca, EVP_PKEY **cakey, mr_err *err)
{
    char kpath[4096], cpath[4096];
    snprintf(cpath, sizeof cpath, "%s/ca.crt", o->dir);
    if (o->ca_key)
        snprintf(kpath, sizeof kpath, "%s", o->ca_key);
    else
        snprintf(kpath, sizeof kpath, "%s/ca.key", o->dir);
    *ca = NULL;
    *cakey = NULL;
    FILE *f = fopen(cpath, "r");
    if (!f)
        return mr_errf(err, MR_ENOTFOUND,
                       "cannot open CA certificate %s: %s (run 'meridian cert create-ca' first)",
                       cpath, strerror(errno));
    *ca = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!*ca)
        return ossl_err(err, MR_ECORRUPT, "cannot parse CA certificate");
    f = fopen(kpath, "r");
    if (!f) {
        X509_free(*ca);
        *ca = NULL;
        return mr_errf(err, MR_ENOTFOUND, "cannot open CA key %s: %s", kpath, strerror(errno));
    }
    *cakey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!*cakey || !X509_check_private_key(*ca, *cakey)) {
        X509_free(*ca);
        EVP_PKEY_free(*cakey);
        *ca = NULL;
        *cakey = NULL;
        return ossl_err(err, MR_ECORRUPT, "CA key is unreadable or does not match ca.crt");
    }
    return MR_OK;
}

/* Shared by node and client certificates: file base `base`, common name cn,
 * extended key usage eku, optional SubjectAltName san. */
static int create_leaf(const net_cert_opts *o, const char *base, const char *cn, const char *eku,
                       const char *san, mr_err *err)
{
    char kpath[4096], cpath[4096];
    int rc = ensure_dir(o->dir, err);
    if (rc)
        return rc;
    snprintf(kpath, sizeof kpath, "%s/%s.key", o->dir, base);
    snprintf(cpath, sizeof cpath, "%s/%s.crt", o->dir, base);
    if ((rc = refuse_existing(kpath, o->overwrite, err)) ||
        (rc = refuse_existing(cpath, o->overwrite, err)))
        return rc;
    X509 *ca;
    EVP_PKEY *cakey;
    if ((rc = load_ca(o, &ca, &cakey, err)))
        return rc;
    EVP_PKEY *key = new_key(err);
    X509 *x = key ? new_cert(key, cn, ca, o->days ? o->days : NET_CERT_LEAF_DAYS, err) : NULL;
    rc = x ? MR_OK : (err ? err->code : MR_EIO);
    if (!rc)
        rc = add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE", err);
    if (!rc)
        rc = add_ext(x, ca, NID_key_usage, "critical,digitalSignature", err);
    if (!rc)
        rc = add_ext(x, ca, NID_ext_key_usage, eku, err);
    if (!rc)
        rc = add_ext(x, ca, NID_subject_key_identifier, "hash", err);
    if (!rc)
        rc = add_ext(x, ca, NID_authority_key_identifier, "keyid:always", err);
    if (!rc && san)
        rc = add_ext(x, ca, NID_subject_alt_name, san, err);
    if (!rc && !X509_sign(x, cakey, EVP_sha256()))
        rc = ossl_err(err, MR_EIO, "signing the certificate");
    if (!rc)
        rc = write_pem(kpath, 0600, key, NULL, o->overwrite, err);
    if (!rc)
        rc = write_pem(cpath, 0644, NULL, x, o->overwrite, err);
    X509_free(x);
    EVP_PKEY_free(key);
    X509_free(ca);
    EVP_PKEY_free(cakey);
    return rc;
}

int net_cert_create_node(const net_cert_opts *o, const char *name, const char *hosts, mr_err *err)
{
    if (!name)
        name = "node";
    if (!net_cert_valid_name(name))
        return mr_errf(err, MR_EINVAL, "bad node name '%s' (letters, digits, '_', '.', '-')", name);
    if (strncmp(name, "ca", 3) == 0 || strncmp(name, "client.", 7) == 0)
        return mr_errf(err, MR_EINVAL, "node name '%s' is reserved", name);
    char *san;
    int rc = san_from_hosts(hosts, &san, err);
    if (rc)
        return rc;
    /* Nodes dial each other, so a node certificate serves both ends of TLS. */
    rc = create_leaf(o, name, name, "serverAuth,clientAuth", san, err);
    free(san);
    return rc;
}

int net_cert_create_client(const net_cert_opts *o, const char *user, mr_err *err)
{
    if (!net_cert_valid_name(user))
        return mr_errf(err, MR_EINVAL, "bad user name '%s' (letters, digits, '_', '.', '-')",
                       user ? user : "");
    char base[80];
    snprintf(base, sizeof base, "client.%s", user);
    return create_leaf(o, base, user, "clientAuth", NULL, err);
}

/* `meridian cert` as users run it: the built binary ($MERIDIAN_BIN) makes a CA,
 * node and client certificates in a temporary directory; the test loads them
 * with OpenSSL and checks modes, names, usages and signatures, the refusal to
 * overwrite, and exit status 2 for every kind of bad argument. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "net/tls.h"
#include "tests/net/net_fixture.h"
#include "tests/test.h"

/* The cases run in order and build on each other (CA, then nodes, then clients). */
static char tmp[256];   /* scratch: captured output */
static char certs[512]; /* tmp/certs: created by the first command */
static char out[8192];  /* stdout + stderr of the last command */

/* Runs $MERIDIAN_BIN with a NULL-terminated argument list; returns the exit status. */
static int run(const char *arg0, ...)
{
    const char *bin = getenv("MERIDIAN_BIN");
    if (!bin)
        return -1;
    const char *argv[32];
    int n = 0;
    argv[n++] = bin;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a && n < 31; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/out.txt", tmp);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    FILE *f = fopen(path, "r");
    size_t got = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[got] = '\0';
    if (f)
        fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int file_mode(const char *name)
{
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", certs, name);
    return stat(p, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static X509 *load_cert(const char *name)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", certs, name);
    FILE *f = fopen(p, "r");
    if (!f)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static EVP_PKEY *load_key(const char *name)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", certs, name);
    FILE *f = fopen(p, "r");
    if (!f)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

static size_t read_file(const char *name, char *buf, size_t cap)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", certs, name);
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(buf, 1, cap, f) : 0;
    if (f)
        fclose(f);
    return n;
}

static int cn_is(X509 *x, const char *want)
{
    char cn[128] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    return strcmp(cn, want) == 0;
}

TEST(cli_help_and_setup)
{
    CHECKF(getenv("MERIDIAN_BIN"), "MERIDIAN_BIN is not set (run under ctest)");
    CHECK(fx_tempdir(tmp) == 0);
    snprintf(certs, sizeof certs, "%s/certs", tmp);
    CHECK_EQ(run("cert", "--help", NULL), 0);
    CHECK(strstr(out, "create-node"));
    CHECK_EQ(run("cert", "create-node", "--help", NULL), 0);
    CHECK(strstr(out, "--host"));
}

TEST(cli_create_ca)
{
    CHECK_EQ(run("cert", "create-ca", "--certs-dir", certs, NULL), 0);
    CHECK_EQ(file_mode("ca.key"), 0600);
    CHECK_EQ(file_mode("ca.crt"), 0644);
    X509 *ca = load_cert("ca.crt");
    EVP_PKEY *key = load_key("ca.key");
    CHECK(ca && key);
    CHECK_EQ(X509_check_ca(ca), 1);
    CHECK_EQ(X509_check_private_key(ca, key), 1);
    CHECK_EQ(X509_verify(ca, key), 1); /* self-signed */
    CHECK_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
    X509_free(ca);
    EVP_PKEY_free(key);

    /* A second run must not touch the existing key. */
    char before[4096], after[4096];
    size_t nb = read_file("ca.key", before, sizeof before);
    CHECK_EQ(run("cert", "create-ca", "--certs-dir", certs, NULL), 1);
    CHECKF(strstr(out, "refusing to overwrite"), "output: %s", out);
    size_t na = read_file("ca.key", after, sizeof after);
    CHECK(nb == na && memcmp(before, after, nb) == 0);
}

TEST(cli_create_node)
{
    CHECK_EQ(
        run("cert", "create-node", "--certs-dir", certs, "--host", "127.0.0.1,localhost,::1", NULL),
        0);
    CHECK_EQ(file_mode("node.key"), 0600);
    CHECK_EQ(file_mode("node.crt"), 0644);
    X509 *ca = load_cert("ca.crt"), *x = load_cert("node.crt");
    EVP_PKEY *key = load_key("node.key");
    CHECK(ca && x && key);
    CHECK_EQ(X509_verify(x, X509_get0_pubkey(ca)), 1); /* signed by the CA */
    CHECK_EQ(X509_check_private_key(x, key), 1);
    CHECK_EQ(X509_check_ca(x), 0);
    CHECK(cn_is(x, "node"));
    /* SubjectAltNames: exactly what --host said. */
    CHECK_EQ(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    CHECK_EQ(X509_check_ip_asc(x, "::1", 0), 1);
    CHECK_EQ(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    CHECK(X509_check_ip_asc(x, "10.0.0.1", 0) != 1);
    CHECK(X509_check_host(x, "example.com", 0, 0, NULL) != 1);
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    CHECK(sans);
    CHECK_EQ(sk_GENERAL_NAME_num(sans), 3);
    GENERAL_NAMES_free(sans);
    /* Nodes both accept and dial: server and client usage. */
    uint32_t xku = X509_get_extended_key_usage(x);
    CHECK(xku & XKU_SSL_SERVER);
    CHECK(xku & XKU_SSL_CLIENT);
    X509_free(ca);
    X509_free(x);
    EVP_PKEY_free(key);

    /* The files load as a TLS identity. */
    net_tls_ctx *ctx;
    CHECK_EQ(net_tls_ctx_load_dir(certs, "node", &ctx, NULL), MR_OK);
    net_tls_ctx_free(ctx);

    /* Refuse to overwrite; --overwrite replaces the key. */
    char before[4096], after[4096];
    size_t nb = read_file("node.key", before, sizeof before);
    CHECK_EQ(run("cert", "create-node", "--certs-dir", certs, "--host", "127.0.0.1", NULL), 1);
    CHECKF(strstr(out, "refusing to overwrite"), "output: %s", out);
    size_t na = read_file("node.key", after, sizeof after);
    CHECK(nb == na && memcmp(before, after, nb) == 0);
    CHECK_EQ(run("cert", "create-node", "--certs-dir", certs, "--host", "127.0.0.1", "--overwrite",
                 NULL),
             0);
    na = read_file("node.key", after, sizeof after);
    CHECK(nb != na || memcmp(before, after, nb) != 0);
    CHECK_EQ(file_mode("node.key"), 0600);

    /* A second node in the same directory under its own name. */
    CHECK_EQ(run("cert", "create-node", "--certs-dir=" /* the = form too */, NULL), 2);
    char dirarg[600];
    snprintf(dirarg, sizeof dirarg, "--certs-dir=%s", certs);
    CHECK_EQ(run("cert", "create-node", dirarg, "--host", "10.1.2.3", "--name", "n2", NULL), 0);
    x = load_cert("n2.crt");
    CHECK(x);
    CHECK(cn_is(x, "n2"));
    CHECK_EQ(X509_check_ip_asc(x, "10.1.2.3", 0), 1);
    X509_free(x);
    CHECK_EQ(file_mode("n2.key"), 0600);
}

TEST(cli_create_client)
{
    CHECK_EQ(run("cert", "create-client", "--certs-dir", certs, "--user", "alice", NULL), 0);
    CHECK_EQ(file_mode("client.alice.key"), 0600);
    X509 *ca = load_cert("ca.crt"), *x = load_cert("client.alice.crt");
    CHECK(ca && x);
    CHECK_EQ(X509_verify(x, X509_get0_pubkey(ca)), 1);
    CHECK(cn_is(x, "alice"));
    uint32_t xku = X509_get_extended_key_usage(x);
    CHECK(xku & XKU_SSL_CLIENT);
    CHECK(!(xku & XKU_SSL_SERVER));
    X509_free(ca);
    X509_free(x);
}

TEST(cli_bad_arguments_exit_2)
{
    char nodir[600];
    snprintf(nodir, sizeof nodir, "%s/empty", tmp);
    CHECK_EQ(run("cert", NULL), 2);
    CHECK_EQ(run("cert", "frobnicate", NULL), 2);
    CHECK_EQ(run("cert", "create-ca", NULL), 2);
    CHECK_EQ(run("cert", "create-ca", "--certs-dir", NULL), 2);
    CHECK_EQ(run("cert", "create-ca", "--certs-dir", certs, "--bogus", NULL), 2);
    CHECK_EQ(run("cert", "create-ca", "--certs-dir", certs, "--days", "soon", NULL), 2);
    CHECK_EQ(run("cert", "create-ca", "--certs-dir", certs, "--days", "0", NULL), 2);
    CHECK_EQ(run("cert", "create-ca", "--certs-dir", certs, "--host", "1.2.3.4", NULL), 2);
    CHECK_EQ(run("cert", "create-node", "--certs-dir", certs, NULL), 2);
    CHECK(strstr(out, "--host"));
    CHECK_EQ(run("cert", "create-node", "--certs-dir", certs, "--host", "bad host", "--name", "n3",
                 NULL),
             2);
    CHECKF(strstr(out, "neither an IP address nor a DNS name"), "output: %s", out);
    CHECK_EQ(run("cert", "create-node", "--certs-dir", certs, "--host", "1.2.3.4,,x", "--name",
                 "n3", NULL),
             2);
    CHECK_EQ(
        run("cert", "create-node", "--certs-dir", certs, "--host", "x", "--name", "../evil", NULL),
        2);
    CHECK_EQ(run("cert", "create-client", "--certs-dir", certs, NULL), 2);
    CHECK_EQ(run("cert", "create-client", "--certs-dir", certs, "--user", "a/b", NULL), 2);
    CHECK_EQ(file_mode("n3.key"), -1); /* refused commands write nothing */
    /* Not a usage error but a failure: no CA to sign with. */
    CHECK_EQ(run("cert", "create-node", "--certs-dir", nodir, "--host", "127.0.0.1", NULL), 1);
    CHECKF(strstr(out, "create-ca"), "output: %s", out);
    fx_rmdir(tmp);
}

TEST_MAIN(TEST_CASE(cli_help_and_setup), TEST_CASE(cli_create_ca), TEST_CASE(cli_create_node),
          TEST_CASE(cli_create_client), TEST_CASE(cli_bad_arguments_exit_2))

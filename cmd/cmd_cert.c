/* meridian cert: make the cluster CA, node and client certificates (net/cert.h). */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "common/mr_util.h"
#include "net/cert.h"

static const char *const usage_text =
    "usage: meridian cert create-ca     --certs-dir DIR [--days N] [--overwrite]\n"
    "       meridian cert create-node   --certs-dir DIR --host H[,H...] [--name N]\n"
    "                                   [--ca-key FILE] [--days N] [--overwrite]\n"
    "       meridian cert create-client --certs-dir DIR --user NAME\n"
    "                                   [--ca-key FILE] [--days N] [--overwrite]\n"
    "\n"
    "Makes EC P-256 keys and X.509 certificates for mutual TLS between nodes and clients.\n"
    "\n"
    "  create-ca      ca.key and ca.crt: the cluster CA (keep ca.key off the nodes if you can)\n"
    "  create-node    N.key and N.crt signed by the CA; the certificate names every --host\n"
    "                 (IP addresses and DNS names peers use to reach the node) and serves\n"
    "                 both as TLS server and client certificate. N defaults to 'node'.\n"
    "  create-client  client.NAME.key and client.NAME.crt for the user NAME\n"
    "\n"
    "options:\n"
    "  --certs-dir DIR  where certificates live (created 0700 if missing); holds ca.crt\n"
    "  --host LIST      comma-separated IP addresses and DNS names (create-node)\n"
    "  --name N         file name and common name of a node certificate (default node)\n"
    "  --user NAME      user name of a client certificate (create-client)\n"
    "  --ca-key FILE    CA key to sign with (default DIR/ca.key)\n"
    "  --days N         validity (default 3650 for the CA, 1825 otherwise)\n"
    "  --overwrite      replace existing files (otherwise existing keys are never touched)\n"
    "\n"
    "Keys are written with mode 0600, certificates 0644.\n";

int cmd_cert(int argc, char **argv)
{
    const char *sub = "cert";
    if (argc < 2)
        return cmd_usage_error(sub, "missing action: create-ca, create-node or create-client");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return CMD_EXIT_OK;
    }
    const char *action = argv[1];
    enum { CA, NODE, CLIENT } kind;
    if (strcmp(action, "create-ca") == 0)
        kind = CA;
    else if (strcmp(action, "create-node") == 0)
        kind = NODE;
    else if (strcmp(action, "create-client") == 0)
        kind = CLIENT;
    else
        return cmd_usage_error(sub,
                               "unknown action '%s' (want create-ca, create-node or "
                               "create-client)",
                               action);

    const char *dir = NULL, *hosts = NULL, *name = NULL, *user = NULL, *ca_key = NULL;
    long long days = 0;
    int overwrite = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return CMD_EXIT_OK;
        }
        if (strcmp(a, "--overwrite") == 0) {
            overwrite = 1;
            continue;
        }
        /* Options with a value: "--opt VALUE" or "--opt=VALUE". */
        static const char *const with_value[] = {"--certs-dir", "--host",   "--name",
                                                 "--user",      "--ca-key", "--days"};
        const char *val = NULL, *opt = NULL;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) {
            size_t n = strlen(with_value[k]);
            if (strncmp(a, with_value[k], n) != 0)
                continue;
            if (a[n] == '\0') {
                if (i + 1 >= argc)
                    return cmd_usage_error(sub, "%s needs a value", a);
                opt = with_value[k];
                val = argv[++i];
            } else if (a[n] == '=') {
                opt = with_value[k];
                val = a + n + 1;
            }
            break;
        }
        if (!opt)
            return cmd_usage_error(sub, "unknown option '%s'", a);
        if (strcmp(opt, "--certs-dir") == 0)
            dir = val;
        else if (strcmp(opt, "--host") == 0)
            hosts = val;
        else if (strcmp(opt, "--name") == 0)
            name = val;
        else if (strcmp(opt, "--user") == 0)
            user = val;
        else if (strcmp(opt, "--ca-key") == 0)
            ca_key = val;
        else if (mr_parse_int(val, 1, 36500, &days) != 0)
            return cmd_usage_error(sub, "--days wants a whole number of days in 1..36500, not '%s'",
                                   val);
    }
    if (!dir || !*dir)
        return cmd_usage_error(sub, "%s needs --certs-dir DIR", action);
    if (kind == CA && (hosts || name || user || ca_key))
        return cmd_usage_error(sub, "create-ca takes only --certs-dir, --days and --overwrite");
    if (kind == NODE && (!hosts || !*hosts))
        return cmd_usage_error(sub, "create-node needs --host H[,H...]");
    if (kind == NODE && user)
        return cmd_usage_error(sub, "create-node takes no --user (did you mean create-client?)");
    if (kind == NODE && name && !net_cert_valid_name(name))
        return cmd_usage_error(sub, "bad --name '%s' (letters, digits, '_', '.', '-')", name);
    if (kind == CLIENT && (!user || !net_cert_valid_name(user)))
        return cmd_usage_error(sub,
                               user ? "bad --user '%s' (letters, digits, '_', '.', '-')"
                                    : "create-client needs --user NAME%s",
                               user ? user : "");
    if (kind == CLIENT && (hosts || name))
        return cmd_usage_error(sub, "create-client takes no --host or --name");

    net_cert_opts o = {.dir = dir, .days = (int)days, .overwrite = overwrite, .ca_key = ca_key};
    mr_err err;
    mr_err_clear(&err);
    int rc;
    const char *made;
    char files[600];
    if (kind == CA) {
        rc = net_cert_create_ca(&o, &err);
        snprintf(files, sizeof files, "%s/ca.crt and %s/ca.key", dir, dir);
        made = "CA";
    } else if (kind == NODE) {
        rc = net_cert_create_node(&o, name, hosts, &err);
        /* A bad --host is the user's argument, not a run-time failure. */
        if (rc == MR_EINVAL)
            return cmd_usage_error(sub, "%s", mr_err_msg(&err));
        snprintf(files, sizeof files, "%s/%s.crt and %s/%s.key (hosts %s)", dir,
                 name ? name : "node", dir, name ? name : "node", hosts);
        made = "node certificate";
    } else {
        rc = net_cert_create_client(&o, user, &err);
        snprintf(files, sizeof files, "%s/client.%s.crt and %s/client.%s.key", dir, user, dir,
                 user);
        made = "client certificate";
    }
    if (rc)
        return cmd_fail(sub, "%s: %s", action, mr_err_msg(&err));
    printf("created %s: %s\n", made, files);
    return CMD_EXIT_OK;
}

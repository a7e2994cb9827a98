/* Cluster certificates made with OpenSSL's API: a CA (EC P-256 key and a
 * self-signed certificate), node certificates that carry the node's DNS names
 * and IP addresses as SubjectAltNames (usable as TLS server and client), and
 * client certificates that name a user. Files in the certs directory:
 *
 *   ca.crt  ca.key                   the cluster CA
 *   <name>.crt  <name>.key           a node (name defaults to "node")
 *   client.<user>.crt  client.<user>.key
 *
 * Certificates are PEM, mode 0644; keys are PEM PKCS#8, mode 0600. Each file is
 * written to a temporary name and renamed, so a crash never leaves half a key. */
#ifndef NET_CERT_H
#define NET_CERT_H

#include "common/mr_err.h"

#define NET_CERT_CA_DAYS   3650
#define NET_CERT_LEAF_DAYS 1825
/* At most this many --host entries on a node certificate. */
#define NET_CERT_MAX_HOSTS 64

typedef struct net_cert_opts {
    const char *dir;    /* certs directory; created (0700) if missing */
    int days;           /* validity; 0 = the default for the kind */
    int overwrite;      /* replace existing files instead of refusing */
    const char *ca_key; /* CA key file; NULL = <dir>/ca.key */
} net_cert_opts;

/* Creates ca.key and ca.crt. MR_EEXIST if either exists and !overwrite. */
int net_cert_create_ca(const net_cert_opts *o, mr_err *err);

/* Creates <name>.key/.crt signed by the CA in dir. `hosts` is a comma-separated
 * list of IP addresses and DNS names (each checked); name NULL = "node". */
int net_cert_create_node(const net_cert_opts *o, const char *name, const char *hosts, mr_err *err);

/* Creates client.<user>.key/.crt signed by the CA; the user is the common name. */
int net_cert_create_client(const net_cert_opts *o, const char *user, mr_err *err);

/* Checks a file-name component: 1..64 chars of [A-Za-z0-9_.-], not starting with '.'. */
int net_cert_valid_name(const char *s);

#endif

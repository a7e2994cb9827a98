/* `meridian kv`: the low-level key-value command (like etcdctl), a thin
 * client of libmeridian (include/meridian.h) and nothing else: the library
 * routes every key to its group, follows leaders, retries, runs two-phase
 * commit across groups and learns lost outcomes. This file parses the
 * command line, refuses what the library would refuse (its own checks,
 * before connecting) and prints. Keys and values are strings. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/cmd_rpc.h"
#include "common/mr_util.h"
#include "meridian.h"

static void kv_usage(FILE *f)
{
    fprintf(
        f,
        "usage: meridian kv get KEY            [--at TS | --max-staleness DUR | --exact-staleness "
        "DUR]\n"
        "       meridian kv scan START [END]   [--limit N] [--at TS | ...]   (every row unless\n"
        "                                      --limit: page by page, at one timestamp)\n"
        "       meridian kv put KEY VALUE\n"
        "       meridian kv del KEY\n"
        "       meridian kv txn OP [OP ...]    OP: get KEY | put KEY VALUE | del KEY\n"
        "common: [--host H[,H...]] [--certs DIR [--user U] | --insecure] [--timeout DUR] "
        "[--json]\n\n"
        "Every command goes through libmeridian, which routes each key to the data\n"
        "group holding it (from the range map of any node given with --host) and\n"
        "follows the groups' leaders. put, del and txn run one read-write transaction:\n"
        "reads take shared locks at the leaders and see the transaction's own earlier\n"
        "writes, writes commit together, by two-phase commit when they span groups,\n"
        "and the answer comes after commit wait with the one commit timestamp.\n"
        "Aborted (retryable) transactions are retried for up to 30 s (or twice\n"
        "--timeout). get and scan are lock-free read-only transactions: strong by\n"
        "default (at the leaders), at a timestamp (--at), exactly DUR in the past\n"
        "(--exact-staleness), or at most DUR old from the nearest replica, without\n"
        "waiting (--max-staleness). Keys are 1..%d bytes, values up to %d bytes,\n"
        "both UTF-8. --group N is accepted for old scripts and ignored.\n\n"
        "Exit status: 0 done; 1 failed (nothing committed); 2 usage error or refused\n"
        "input (nothing sent); 3 the commit's outcome is unknown: the transaction\n"
        "(named by its id) may have committed.\n",
        MERIDIAN_KEY_MAX, MERIDIAN_VALUE_MAX);
}

typedef struct kv_args {
    long long limit;
    long long at;
    int64_t max_stale, exact_stale;
    bool have_group, have_max, have_exact;
} kv_args;

/* The kv-only options (cmd_client_opts parses them with the common ones). */
static int kv_set_group(void *arg, const char *v)
{
    long long g;
    if (mr_parse_int(v, 1, INT64_MAX, &g) != 0)
        return cmd_usage_error("kv", "--group needs a positive integer");
    ((kv_args *)arg)->have_group = true;
    return CMD_EXIT_OK;
}

static int kv_set_limit(void *arg, const char *v)
{
    if (mr_parse_int(v, 1, 1000000, &((kv_args *)arg)->limit) != 0)
        return cmd_usage_error("kv", "--limit needs an integer in 1..1000000");
    return CMD_EXIT_OK;
}

static int kv_set_at(void *arg, const char *v)
{
    if (mr_parse_int(v, 1, INT64_MAX, &((kv_args *)arg)->at) != 0)
        return cmd_usage_error("kv", "--at needs a timestamp (ns since the epoch)");
    return CMD_EXIT_OK;
}

static int kv_staleness(const char *opt, const char *v, int64_t *out, bool *have)
{
    if (mr_parse_duration(v, out) != 0 || *out < 0)
        return cmd_usage_error("kv", "%s needs a duration like 5s", opt);
    *have = true;
    return CMD_EXIT_OK;
}

static int kv_set_max(void *arg, const char *v)
{
    kv_args *a = arg;
    return kv_staleness("--max-staleness", v, &a->max_stale, &a->have_max);
}

static int kv_set_exact(void *arg, const char *v)
{
    kv_args *a = arg;
    return kv_staleness("--exact-staleness", v, &a->exact_stale, &a->have_exact);
}

/* Prints a JSON value on one line and releases it (NULL: out of memory). */
static int print_json(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        return cmd_fail("kv", "out of memory");
    puts(s);
    free(s);
    return CMD_EXIT_OK;
}

/* A failure of the library: "meridian kv: <code>: <message>" (or, with
 * --json, {ok: false, error, message} on stdout); exit 1. */
static int kv_failed(meridian *db, int rc, bool json)
{
    const char *msg = db ? meridian_errmsg(db) : "";
    if (json)
        print_json(
            json_pack("{s:b, s:s, s:s}", "ok", 0, "error", meridian_errstr(rc), "message", msg));
    else
        fprintf(stderr, "meridian kv: %s%s%s\n", meridian_errstr(rc), *msg ? ": " : "", msg);
    return CMD_EXIT_FAIL;
}

/* Refuses (usage error, exit 2) a key or value the library would refuse,
 * with libmeridian's own check; what (may be NULL) says which argument.
 * (argv strings hold no NUL.) */
static int kv_check(const char *what, const char *s, bool is_key)
{
    char why[128];
    size_t len = strlen(s);
    int rc = is_key ? meridian_check_key(s, len, why, sizeof why)
                    : meridian_check_value(s, len, why, sizeof why);
    if (rc == MERIDIAN_OK)
        return CMD_EXIT_OK;
    return cmd_usage_error("kv", "%s%s%s%s", what ? what : "", what ? ": " : "", why,
                           strstr(why, "UTF-8") ? " (keys and values are UTF-8 strings)" : "");
}

/* ---- reads: read-only transactions ---- */

static int kv_begin_ro(meridian *db, const kv_args *a, meridian_txn **t)
{
    if (a->at)
        return meridian_begin_ro(db, MERIDIAN_AT_TIMESTAMP, a->at, t);
    if (a->have_max)
        return meridian_begin_ro(db, MERIDIAN_MAX_STALENESS, a->max_stale, t);
    if (a->have_exact)
        return meridian_begin_ro(db, MERIDIAN_EXACT_STALENESS, a->exact_stale, t);
    return meridian_begin_ro(db, MERIDIAN_STRONG, 0, t);
}

static int do_get(meridian *db, const kv_args *a, bool json, const char *key)
{
    meridian_txn *t;
    int rc = kv_begin_ro(db, a, &t);
    if (rc != MERIDIAN_OK)
        return kv_failed(db, rc, json);
    void *v = NULL;
    size_t vlen = 0;
    int64_t written = 0;
    rc = meridian_get_version(t, key, strlen(key), &v, &vlen, &written);
    long long ts = meridian_read_ts(t);
    meridian_rollback(t); /* read-only: nothing to release */
    int st = CMD_EXIT_OK;
    if (rc == MERIDIAN_OK) {
        if (json)
            st = print_json(json_pack("{s:b, s:b, s:s, s:s%, s:I, s:I}", "ok", 1, "found", 1, "key",
                                      key, "value", v ? (const char *)v : "", vlen, "read_ts",
                                      (json_int_t)ts, "version_ts", (json_int_t)written));
        else {
            printf("%.*s\n", (int)vlen, v ? (const char *)v : "");
            fprintf(stderr, "(read at %lld, written at %lld)\n", ts, (long long)written);
        }
    } else if (rc == MERIDIAN_NOTFOUND) {
        if (json) {
            st = print_json(json_pack("{s:b, s:b, s:s, s:I}", "ok", 1, "found", 0, "key", key,
                                      "read_ts", (json_int_t)ts));
        } else {
            fprintf(stderr, "(not found; read at %lld)\n", ts);
            st = CMD_EXIT_FAIL;
        }
    } else {
        st = kv_failed(db, rc, json);
    }
    meridian_free(v);
    return st;
}

typedef struct scan_out {
    bool json;
    json_t *rows; /* --json: every row, printed once at the end */
    long long n;
    bool oom;
} scan_out;

static int scan_row(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    scan_out *s = arg;
    s->n++;
    if (!s->json) {
        printf("%.*s\t%.*s\n", (int)klen, (const char *)key, (int)vlen, (const char *)val);
        return 0;
    }
    json_t *row = json_pack("{s:s%, s:s%}", "key", (const char *)key, klen, "value",
                            vlen ? (const char *)val : "", vlen);
    if (!row || json_array_append_new(s->rows, row) != 0) {
        s->oom = true;
        return 1;
    }
    return 0;
}

static int do_scan(meridian *db, const kv_args *a, bool json, const char *start, const char *end)
{
    scan_out s = {.json = json, .rows = json ? json_array() : NULL};
    if (json && !s.rows)
        return cmd_fail("kv", "out of memory");
    meridian_txn *t;
    int rc = kv_begin_ro(db, a, &t);
    if (rc != MERIDIAN_OK) {
        json_decref(s.rows);
        return kv_failed(db, rc, json);
    }
    /* One snapshot: the library reads every page, of every group, at the
     * first page's timestamp. */
    rc = meridian_scan(t, start, strlen(start), end, end ? strlen(end) : 0, (size_t)a->limit,
                       scan_row, &s);
    long long ts = meridian_read_ts(t);
    meridian_rollback(t);
    int st;
    if (s.oom)
        st = cmd_fail("kv", "out of memory");
    else if (rc != MERIDIAN_OK)
        st = kv_failed(db, rc, json);
    else if (json)
        st = print_json(
            json_pack("{s:b, s:I, s:O}", "ok", 1, "read_ts", (json_int_t)ts, "rows", s.rows));
    else {
        fprintf(stderr, "(%lld rows, read at %lld)\n", s.n, ts);
        st = CMD_EXIT_OK;
    }
    json_decref(s.rows);
    return st;
}

/* ---- writes: one read-write transaction ---- */

typedef struct kv_op {
    char kind; /* 'g', 'p', 'd' */
    const char *key, *val;
} kv_op;

typedef struct kv_txn {
    kv_op *ops;
    int nops;
    json_t *reads; /* key -> value or null, in the order of the gets (this attempt's) */
    uint64_t id;   /* the last attempt's transaction id */
} kv_txn;

/* The transaction body, run (and rerun on retryable aborts) by meridian_run. */
static int txn_body(meridian_txn *t, void *arg)
{
    kv_txn *x = arg;
    x->id = meridian_txn_id(t);
    json_object_clear(x->reads);
    for (int i = 0; i < x->nops; i++) {
        const kv_op *op = &x->ops[i];
        size_t klen = strlen(op->key);
        int rc;
        if (op->kind == 'p') {
            rc = meridian_put(t, op->key, klen, op->val, strlen(op->val));
        } else if (op->kind == 'd') {
            rc = meridian_delete(t, op->key, klen);
        } else {
            void *v = NULL;
            size_t vlen = 0;
            rc = meridian_get(t, op->key, klen, &v, &vlen);
            json_t *jv = rc == MERIDIAN_OK         ? json_stringn(v ? v : "", vlen)
                         : rc == MERIDIAN_NOTFOUND ? json_null()
                                                   : NULL;
            meridian_free(v);
            if (rc == MERIDIAN_OK || rc == MERIDIAN_NOTFOUND) {
                if (!jv || json_object_set_new(x->reads, op->key, jv) != 0)
                    return MERIDIAN_NOMEM;
                rc = MERIDIAN_OK;
            }
        }
        if (rc != MERIDIAN_OK)
            return rc;
    }
    return MERIDIAN_OK;
}

/* Parses the operations of put, del or txn into ops (checked: every key and
 * value passes libmeridian's check). CMD_EXIT_OK or a usage error. */
static int parse_ops(char **pos, int npos, kv_op *ops, int *nops)
{
    const char *verb = pos[0];
    int n = 0, rc;
    if (strcmp(verb, "put") == 0 || strcmp(verb, "del") == 0) {
        bool put = verb[0] == 'p';
        if (npos != (put ? 3 : 2))
            return cmd_usage_error("kv", put ? "put takes KEY VALUE" : "del takes one KEY");
        if ((rc = kv_check(NULL, pos[1], true)) != CMD_EXIT_OK ||
            (put && (rc = kv_check(NULL, pos[2], false)) != CMD_EXIT_OK))
            return rc;
        ops[n++] = (kv_op){put ? 'p' : 'd', pos[1], put ? pos[2] : NULL};
    } else {
        for (int i = 1; i < npos;) {
            const char *op = pos[i++];
            if (strcmp(op, "put") == 0 && i + 1 < npos) {
                if ((rc = kv_check(NULL, pos[i], true)) != CMD_EXIT_OK ||
                    (rc = kv_check(NULL, pos[i + 1], false)) != CMD_EXIT_OK)
                    return rc;
                ops[n++] = (kv_op){'p', pos[i], pos[i + 1]};
                i += 2;
            } else if ((strcmp(op, "get") == 0 || strcmp(op, "del") == 0) && i < npos) {
                if ((rc = kv_check(NULL, pos[i], true)) != CMD_EXIT_OK)
                    return rc;
                ops[n++] = (kv_op){op[0], pos[i++], NULL};
            } else {
                return cmd_usage_error("kv", "txn takes: get KEY | put KEY VALUE | del KEY, ...");
            }
        }
        if (n == 0)
            return cmd_usage_error("kv", "txn needs at least one operation");
    }
    *nops = n;
    return CMD_EXIT_OK;
}

static int do_txn(meridian *db, const cmd_conn_opts *o, bool json, kv_op *ops, int nops)
{
    kv_txn x = {.ops = ops, .nops = nops, .reads = json_object()};
    if (!x.reads)
        return cmd_fail("kv", "out of memory");
    int64_t deadline = o->timeout_ms > 15000 ? 2 * (int64_t)o->timeout_ms : 30000;
    int64_t ts = 0;
    int rc = meridian_run(db, deadline, txn_body, &x, &ts);
    int st = CMD_EXIT_OK;
    if (rc == MERIDIAN_OK) {
        if (json) {
            st = print_json(
                json_pack("{s:b, s:I, s:O}", "ok", 1, "ts", (json_int_t)ts, "reads", x.reads));
        } else {
            const char *k;
            json_t *v;
            json_object_foreach(x.reads, k, v)
                printf("%s = %s\n", k, json_is_string(v) ? json_string_value(v) : "(not found)");
            printf("committed at %lld\n", (long long)ts);
        }
    } else if (rc == MERIDIAN_UNKNOWN) {
        /* It may have committed: never call this a failure or retry it. */
        const char *msg = meridian_errmsg(db);
        if (json)
            print_json(json_pack("{s:b, s:s, s:I, s:s}", "ok", 0, "error", "unknown", "txn",
                                 (json_int_t)x.id, "message", msg));
        fprintf(stderr,
                "meridian kv: transaction %llu: outcome unknown, it may have committed "
                "(read the keys to see): %s\n",
                (unsigned long long)x.id, msg);
        st = CMD_EXIT_UNKNOWN;
    } else {
        st = kv_failed(db, rc, json);
    }
    json_decref(x.reads);
    return st;
}

int cmd_kv(int argc, char **argv)
{
    kv_args a = {0};
    static const cmd_extra_opt extra[] = {
        {"group", kv_set_group},       {"limit", kv_set_limit},           {"at", kv_set_at},
        {"max-staleness", kv_set_max}, {"exact-staleness", kv_set_exact}, {NULL, NULL}};
    cmd_conn_opts o = {.host_list = true};
    bool json = false;
    char **pos = NULL;
    int npos = 0;
    int rc = cmd_client_opts("kv", argc, argv, &o, &json, kv_usage, &pos, &npos, extra, &a);
    if (rc)
        return rc < 0 ? CMD_EXIT_OK : rc;
    if ((a.at != 0) + a.have_max + a.have_exact > 1)
        return cmd_usage_error("kv",
                               "--at, --max-staleness and --exact-staleness exclude each other");
    if (npos < 1)
        return cmd_usage_error("kv", "give a subcommand: get, scan, put, del or txn");

    /* Everything is checked before anything is sent. */
    const char *sub = pos[0];
    bool get = strcmp(sub, "get") == 0, scan = strcmp(sub, "scan") == 0;
    kv_op *ops = NULL;
    int nops = 0;
    if (get || scan) {
        if (npos < 2 || npos > (scan ? 3 : 2))
            return cmd_usage_error("kv", scan ? "scan takes START [END]" : "get takes one KEY");
        /* A scan's bounds may be empty: "" is the first key, or no end. */
        for (int i = 1; i < npos; i++)
            if ((!scan || *pos[i]) &&
                (rc = kv_check(i == 2 ? "scan end" : NULL, pos[i], true)) != CMD_EXIT_OK)
                return rc;
    } else if (strcmp(sub, "put") == 0 || strcmp(sub, "del") == 0 || strcmp(sub, "txn") == 0) {
        if (!(ops = calloc((size_t)npos, sizeof *ops)))
            return cmd_fail("kv", "out of memory");
        if ((rc = parse_ops(pos, npos, ops, &nops)) != CMD_EXIT_OK) {
            free(ops);
            return rc;
        }
    } else {
        return cmd_usage_error("kv", "unknown subcommand '%s' (get, scan, put, del, txn)", sub);
    }
    if (a.have_group)
        fprintf(stderr, "meridian kv: --group is ignored: every key goes to the group that "
                        "holds it\n");

    meridian_options mo = {.addrs = o.host,
                           .certs_dir = o.insecure ? NULL : o.certs_dir,
                           .user = o.user,
                           .insecure = o.insecure,
                           .timeout_ms = (int64_t)o.timeout_ms};
    meridian *db = NULL;
    rc = meridian_open(&mo, &db);
    if (rc != MERIDIAN_OK) { /* db, when set, says why */
        rc = kv_failed(db, rc, json);
        meridian_close(db);
        free(ops);
        return rc;
    }
    if (get)
        rc = do_get(db, &a, json, pos[1]);
    else if (scan)
        rc = do_scan(db, &a, json, pos[1], npos == 3 && *pos[2] ? pos[2] : NULL);
    else
        rc = do_txn(db, &o, json, ops, nops);
    meridian_close(db);
    free(ops);
    return rc;
}

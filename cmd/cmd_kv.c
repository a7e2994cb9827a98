/* `meridian kv`: the low-level key-value command (like etcdctl), a thin
 * client of libmeridian (include/meridian.h) and nothing else: the library
 * routes every key to its group, follows leaders, retries, runs two-phase
 * commit across groups and learns lost outcomes. This file parses the
 * command line, refuses what the library would refuse (its own checks,
 * before connecting) and prints. Keys and values are byte strings: given as
 * text (or, with --hex, as hex digits) and printed as text with every byte
 * that is neither printable ASCII nor part of valid UTF-8 escaped as \xNN
 * (or, with --hex, in hex). */
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
        "[--json] [--hex]\n\n"
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
        "waiting (--max-staleness). Keys are 1..%d bytes whose first is not 0,\n"
        "values up to %d bytes, both any bytes: given as text, or with --hex as hex\n"
        "digits (keys, values and scan bounds alike); printed as text with bytes that\n"
        "are not printable escaped as \\xNN (a backslash as \\\\), or with --hex in hex.\n"
        "--json prints keys and values as JSON strings, or {\"hex\": ...} when they are\n"
        "not UTF-8 (with --hex: hex strings). --group N is accepted for old scripts and\n"
        "ignored.\n\n"
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
    bool hex; /* --hex: keys and values in hex, given and printed */
} kv_args;

/* A key or value from the command line: its bytes (p malloc'd). */
typedef struct kv_bytes {
    uint8_t *p;
    size_t len;
} kv_bytes;

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

/* An argument as bytes: the text itself, or with --hex its hex digits decoded. A usage error
 * (exit 2) for hex that is not. */
static int kv_arg(const kv_args *a, const char *what, const char *s, kv_bytes *out)
{
    size_t n = strlen(s);
    out->p = malloc(n + 1);
    if (!out->p)
        return cmd_fail("kv", "out of memory");
    if (!a->hex) {
        memcpy(out->p, s, n + 1);
        out->len = n;
        return CMD_EXIT_OK;
    }
    if (mr_hex_decode(s, n, out->p) != 0) {
        free(out->p);
        out->p = NULL;
        return cmd_usage_error("kv", "%s '%.40s' is not hex (--hex: two hex digits a byte)",
                               what ? what : "argument", s);
    }
    out->len = n / 2;
    return CMD_EXIT_OK;
}

/* Refuses (usage error, exit 2) a key or value the library would refuse,
 * with libmeridian's own check; what (may be NULL) says which argument. */
static int kv_check(const char *what, const kv_bytes *b, bool is_key)
{
    char why[128];
    int rc = is_key ? meridian_check_key(b->p, b->len, why, sizeof why)
                    : meridian_check_value(b->p, b->len, why, sizeof why);
    if (rc == MERIDIAN_OK)
        return CMD_EXIT_OK;
    return cmd_usage_error("kv", "%s%s%s", what ? what : "", what ? ": " : "", why);
}

/* Prints len bytes: in hex, or as text with every byte that is neither printable ASCII nor part
 * of valid UTF-8 (and the backslash) escaped. */
static void print_bytes(FILE *f, const void *p, size_t len, bool hex)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < len;) {
        if (hex) {
            fprintf(f, "%02x", s[i++]);
            continue;
        }
        size_t n = s[i] >= 0x80 ? mr_utf8_seq(s + i, len - i) : 0;
        if (n > 1) {
            fwrite(s + i, 1, n, f);
            i += n;
        } else if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\') {
            fputc(s[i++], f);
        } else if (s[i] == '\\') {
            fputs("\\\\", f);
            i++;
        } else {
            fprintf(f, "\\x%02x", s[i++]);
        }
    }
}

/* The printed form of len bytes as a malloc'd string (NULL: out of memory). */
static char *bytes_text(const void *p, size_t len, bool hex)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    print_bytes(f, p, len, hex);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* len bytes as JSON: with --hex a hex string; else a string when they are UTF-8, or
 * {"hex": ...} (the wire protocol's JSON mapping). NULL when out of memory. */
static json_t *bytes_json(const void *p, size_t len, bool hex)
{
    if (!hex && mr_utf8_valid(p, len))
        return json_stringn(len ? p : "", len);
    char *h = malloc(2 * len + 1);
    if (!h)
        return NULL;
    mr_hex_encode(p, len, h);
    json_t *o = hex ? json_string(h) : json_pack("{s:s}", "hex", h);
    free(h);
    return o;
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

static int do_get(meridian *db, const kv_args *a, bool json, const kv_bytes *key)
{
    meridian_txn *t;
    int rc = kv_begin_ro(db, a, &t);
    if (rc != MERIDIAN_OK)
        return kv_failed(db, rc, json);
    void *v = NULL;
    size_t vlen = 0;
    int64_t written = 0;
    rc = meridian_get_version(t, key->p, key->len, &v, &vlen, &written);
    long long ts = meridian_read_ts(t);
    meridian_rollback(t); /* read-only: nothing to release */
    int st = CMD_EXIT_OK;
    if (rc == MERIDIAN_OK) {
        if (json)
            st = print_json(json_pack("{s:b, s:b, s:o, s:o, s:I, s:I}", "ok", 1, "found", 1, "key",
                                      bytes_json(key->p, key->len, a->hex), "value",
                                      bytes_json(v, vlen, a->hex), "read_ts", (json_int_t)ts,
                                      "version_ts", (json_int_t)written));
        else {
            print_bytes(stdout, v, vlen, a->hex);
            putchar('\n');
            fprintf(stderr, "(read at %lld, written at %lld)\n", ts, (long long)written);
        }
    } else if (rc == MERIDIAN_NOTFOUND) {
        if (json) {
            st = print_json(json_pack("{s:b, s:b, s:o, s:I}", "ok", 1, "found", 0, "key",
                                      bytes_json(key->p, key->len, a->hex), "read_ts",
                                      (json_int_t)ts));
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
    bool json, hex;
    json_t *rows; /* --json: every row, printed once at the end */
    long long n;
    bool oom;
} scan_out;

static int scan_row(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    scan_out *s = arg;
    s->n++;
    if (!s->json) {
        print_bytes(stdout, key, klen, s->hex);
        putchar('\t');
        print_bytes(stdout, val, vlen, s->hex);
        putchar('\n');
        return 0;
    }
    json_t *row = json_pack("{s:o, s:o}", "key", bytes_json(key, klen, s->hex), "value",
                            bytes_json(val, vlen, s->hex));
    if (!row || json_array_append_new(s->rows, row) != 0) {
        s->oom = true;
        return 1;
    }
    return 0;
}

static int do_scan(meridian *db, const kv_args *a, bool json, const kv_bytes *start,
                   const kv_bytes *end)
{
    scan_out s = {.json = json, .hex = a->hex, .rows = json ? json_array() : NULL};
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
    rc = meridian_scan(t, start->p, start->len, end ? end->p : NULL, end ? end->len : 0,
                       (size_t)a->limit, scan_row, &s);
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
    kv_bytes key, val;
} kv_op;

typedef struct kv_txn {
    kv_op *ops;
    int nops;
    bool hex;
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
        int rc;
        if (op->kind == 'p') {
            rc = meridian_put(t, op->key.p, op->key.len, op->val.p, op->val.len);
        } else if (op->kind == 'd') {
            rc = meridian_delete(t, op->key.p, op->key.len);
        } else {
            void *v = NULL;
            size_t vlen = 0;
            rc = meridian_get(t, op->key.p, op->key.len, &v, &vlen);
            /* reads: the key's printed form -> the value (JSON), or null */
            json_t *jv = rc == MERIDIAN_OK         ? bytes_json(v, vlen, x->hex)
                         : rc == MERIDIAN_NOTFOUND ? json_null()
                                                   : NULL;
            meridian_free(v);
            if (rc == MERIDIAN_OK || rc == MERIDIAN_NOTFOUND) {
                char *k = bytes_text(op->key.p, op->key.len, x->hex);
                int src = k && jv ? json_object_set_new(x->reads, k, jv) : -1;
                if (src != 0 && !k)
                    json_decref(jv);
                free(k);
                if (src != 0)
                    return MERIDIAN_NOMEM;
                rc = MERIDIAN_OK;
            }
        }
        if (rc != MERIDIAN_OK)
            return rc;
    }
    return MERIDIAN_OK;
}

/* One operation's key (and value) from the command line, checked as the library checks them. */
static int op_of(const kv_args *a, char kind, const char *key, const char *val, kv_op *op)
{
    *op = (kv_op){.kind = kind};
    int rc = kv_arg(a, "key", key, &op->key);
    if (rc == CMD_EXIT_OK)
        rc = kv_check(NULL, &op->key, true);
    if (rc == CMD_EXIT_OK && val && (rc = kv_arg(a, "value", val, &op->val)) == CMD_EXIT_OK)
        rc = kv_check(NULL, &op->val, false);
    return rc;
}

static void ops_free(kv_op *ops, int n)
{
    for (int i = 0; ops && i < n; i++) {
        free(ops[i].key.p);
        free(ops[i].val.p);
    }
    free(ops);
}

/* Parses the operations of put, del or txn into ops (checked: every key and
 * value passes libmeridian's check). CMD_EXIT_OK or a usage error; *nops counts the ops
 * filled, to free either way. */
static int parse_ops(const kv_args *a, char **pos, int npos, kv_op *ops, int *nops)
{
    const char *verb = pos[0];
    int rc = CMD_EXIT_OK;
    *nops = 0;
    if (strcmp(verb, "put") == 0 || strcmp(verb, "del") == 0) {
        bool put = verb[0] == 'p';
        if (npos != (put ? 3 : 2))
            return cmd_usage_error("kv", put ? "put takes KEY VALUE" : "del takes one KEY");
        rc = op_of(a, put ? 'p' : 'd', pos[1], put ? pos[2] : NULL, &ops[(*nops)++]);
    } else {
        for (int i = 1; i < npos && rc == CMD_EXIT_OK;) {
            const char *op = pos[i++];
            if (strcmp(op, "put") == 0 && i + 1 < npos) {
                rc = op_of(a, 'p', pos[i], pos[i + 1], &ops[(*nops)++]);
                i += 2;
            } else if ((strcmp(op, "get") == 0 || strcmp(op, "del") == 0) && i < npos) {
                rc = op_of(a, op[0], pos[i++], NULL, &ops[(*nops)++]);
            } else {
                return cmd_usage_error("kv", "txn takes: get KEY | put KEY VALUE | del KEY, ...");
            }
        }
        if (rc == CMD_EXIT_OK && *nops == 0)
            return cmd_usage_error("kv", "txn needs at least one operation");
    }
    return rc;
}

/* Bytes given as hex digits, printed as text (escaped). */
static void print_hex_escaped(const char *h)
{
    size_t n = h ? strlen(h) : 0;
    uint8_t *b = malloc(n / 2 + 1);
    if (b && mr_hex_decode(h, n, b) == 0)
        print_bytes(stdout, b, n / 2, false);
    free(b);
}

static int do_txn(meridian *db, const cmd_conn_opts *o, const kv_args *a, bool json, kv_op *ops,
                  int nops)
{
    kv_txn x = {.ops = ops, .nops = nops, .hex = a->hex, .reads = json_object()};
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
            {
                printf("%s = ", k);
                if (json_is_null(v))
                    fputs("(not found)", stdout);
                else if (json_is_string(v))
                    print_bytes(stdout, json_string_value(v), json_string_length(v), false);
                else /* not UTF-8: {"hex": ...}, printed escaped */
                    print_hex_escaped(json_string_value(json_object_get(v, "hex")));
                putchar('\n');
            }
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

/* Takes --hex (a flag the common option parser does not know) out of argv. */
static bool take_hex(int *argc, char **argv)
{
    bool hex = false;
    int k = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--hex") == 0)
            hex = true;
        else
            argv[k++] = argv[i];
    }
    argv[k] = NULL;
    *argc = k;
    return hex;
}

int cmd_kv(int argc, char **argv)
{
    kv_args a = {0};
    a.hex = take_hex(&argc, argv);
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
    kv_bytes bounds[2] = {{0}, {0}};
    if (get || scan) {
        if (npos < 2 || npos > (scan ? 3 : 2))
            return cmd_usage_error("kv", scan ? "scan takes START [END]" : "get takes one KEY");
        /* A scan's bounds may be empty: "" is the first key, or no end. */
        for (int i = 1; i < npos && rc == CMD_EXIT_OK; i++) {
            const char *what = i == 2 ? "scan end" : scan ? "scan start" : "key";
            rc = kv_arg(&a, what, pos[i], &bounds[i - 1]);
            if (rc == CMD_EXIT_OK && (!scan || bounds[i - 1].len))
                rc = kv_check(i == 2 ? "scan end" : NULL, &bounds[i - 1], true);
        }
    } else if (strcmp(sub, "put") == 0 || strcmp(sub, "del") == 0 || strcmp(sub, "txn") == 0) {
        if (!(ops = calloc((size_t)npos, sizeof *ops)))
            return cmd_fail("kv", "out of memory");
        rc = parse_ops(&a, pos, npos, ops, &nops);
    } else {
        return cmd_usage_error("kv", "unknown subcommand '%s' (get, scan, put, del, txn)", sub);
    }
    if (rc != CMD_EXIT_OK) {
        ops_free(ops, nops);
        free(bounds[0].p);
        free(bounds[1].p);
        return rc;
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
    } else if (get) {
        rc = do_get(db, &a, json, &bounds[0]);
    } else if (scan) {
        rc = do_scan(db, &a, json, &bounds[0], npos == 3 && bounds[1].len ? &bounds[1] : NULL);
    } else {
        rc = do_txn(db, &o, &a, json, ops, nops);
    }
    meridian_close(db);
    ops_free(ops, nops);
    free(bounds[0].p);
    free(bounds[1].p);
    return rc;
}

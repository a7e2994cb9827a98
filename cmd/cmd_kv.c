/* `meridian kv`: the low-level key-value interface to one Paxos group's
 * tablet (like etcdctl): read-write transactions at the group's leader,
 * lock-free snapshot reads at any replica. Keys and values are strings. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cmd/cmd.h"
#include "cmd/cmd_rpc.h"
#include "common/mr_log.h"
#include "common/mr_util.h"
#include "tablet/node/nd.h"

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
        "common: [--group N] [--host HOST:PORT] [--certs DIR [--user U] | --insecure] [--json]\n\n"
        "put, del and txn run a read-write transaction at the group's leader (the\n"
        "node at --host, or the leader it names): reads take shared locks, writes\n"
        "commit with exclusive locks through Paxos, and the answer comes after commit\n"
        "wait, with the commit timestamp. Wounded (retryable) transactions are retried.\n"
        "get and scan are lock-free snapshot reads at the replica at --host: strong by\n"
        "default (at TT.now().latest, waiting for the replica's safe time), at a\n"
        "timestamp (--at), exactly DUR in the past (--exact-staleness), or at the\n"
        "replica's safe time if no older than DUR (--max-staleness, no waiting).\n"
        "Without --group the command goes to the data group whose range holds its\n"
        "keys (from the cluster's range map); a kv command runs in one group, so keys\n"
        "of several groups need --group per group, or libmeridian for a transaction\n"
        "across groups (see examples/bank.c).\n");
}

typedef struct kv_args {
    long long group, limit;
    const char *at;
    int64_t max_stale, exact_stale;
    bool have_max, have_exact;
} kv_args;

/* The kv-only options (cmd_client_opts parses them with the common ones). */
static int kv_set_group(void *arg, const char *v)
{
    if (mr_parse_int(v, 1, INT64_MAX, &((kv_args *)arg)->group) != 0)
        return cmd_usage_error("kv", "--group needs a positive integer");
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
    long long ts;
    if (mr_parse_int(v, 1, INT64_MAX, &ts) != 0)
        return cmd_usage_error("kv", "--at needs a timestamp (ns since the epoch)");
    ((kv_args *)arg)->at = v;
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

static void print_reply(json_t *r)
{
    char *s = json_dumps(r, JSON_COMPACT);
    puts(s);
    free(s);
}

static int fail_reply(json_t *r)
{
    fprintf(stderr, "meridian kv: %s: %s\n",
            json_string_value(json_object_get(r, "error")) ?: "error",
            json_string_value(json_object_get(r, "message")) ?: "");
    return CMD_EXIT_FAIL;
}

static json_t *kv_resolve(cmd_conn_opts *o, long long group, uint64_t id, int64_t prio);

/* What the nodes (and libmeridian, client/mer_int.h) take: keys of 1..4096
 * bytes, values up to 1 MiB, both valid UTF-8 without NUL. */
#define KV_KEY_MAX   4096
#define KV_VALUE_MAX (1024 * 1024)

/* The length of the UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    if (!k || k > n || (k == 2 && c < 0xc2) || (k == 4 && c > 0xf4))
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((k == 3 && c == 0xe0 && s[1] < 0xa0) || (k == 3 && c == 0xed && s[1] >= 0xa0) ||
        (k == 4 && c == 0xf0 && s[1] < 0x90) || (k == 4 && c == 0xf4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate, above U+10FFFF */
    return k;
}

/* Refuses (usage error, exit 2) an argument the nodes could not store: a
 * key (what: "key", empty allowed for scan bounds with may_be_empty) or a
 * value, that is not UTF-8 or is empty or too long. (argv strings hold no
 * NUL: a NUL ends the argument.) */
static int kv_check_arg(const char *what, const char *s, bool is_key, bool may_be_empty)
{
    size_t len = strlen(s);
    if (is_key && !len && !may_be_empty)
        return cmd_usage_error("kv", "%s: a key cannot be empty", what);
    if (len > (is_key ? KV_KEY_MAX : KV_VALUE_MAX))
        return cmd_usage_error("kv", "%s of %zu bytes: at most %d", what, len,
                               is_key ? KV_KEY_MAX : KV_VALUE_MAX);
    for (size_t i = 0; i < len;) {
        size_t k = utf8_len((const unsigned char *)s + i, len - i);
        if (!k)
            return cmd_usage_error("kv",
                                   "%s: byte %zu is not valid UTF-8 (keys and values are "
                                   "UTF-8 strings)",
                                   what, i);
        i += k;
    }
    return CMD_EXIT_OK;
}

/* Checks every key and value of the command's operands (pos[0] the verb). */
static int kv_check_args(char **pos, int npos)
{
    const char *verb = pos[0];
    bool scan = strcmp(verb, "scan") == 0, txn = strcmp(verb, "txn") == 0;
    for (int i = 1; i < npos; i++) {
        int rc;
        if (!txn) {
            bool value = strcmp(verb, "put") == 0 && i == 2;
            rc = kv_check_arg(value ? "value" : i == 2 ? "end key" : "key", pos[i], !value, scan);
        } else if (strcmp(pos[i], "put") == 0 && i + 2 < npos) {
            if ((rc = kv_check_arg("key", pos[i + 1], true, false)) == CMD_EXIT_OK)
                rc = kv_check_arg("value", pos[i + 2], false, false);
            i += 2;
        } else if ((strcmp(pos[i], "get") == 0 || strcmp(pos[i], "del") == 0) && i + 1 < npos) {
            rc = kv_check_arg("key", pos[++i], true, false);
        } else {
            continue; /* do_txn explains the misuse */
        }
        if (rc != CMD_EXIT_OK)
            return rc;
    }
    return CMD_EXIT_OK;
}

/* One snapshot read request (a point read, or one page of a scan from key). */
static json_t *read_request(const kv_args *a, const char *key, const char *end, bool scan,
                            long long limit, int64_t ts)
{
    json_t *req = json_pack("{s:I, s:s}", "group", (json_int_t)a->group, "key", key);
    if (!req)
        return NULL;
    int bad = 0;
    if (scan && end)
        bad |= json_object_set_new(req, "end", json_string(end));
    if (scan)
        bad |= json_object_set_new(req, "limit", json_integer(limit));
    if (ts)
        bad |= json_object_set_new(req, "ts", json_integer(ts));
    else if (a->at)
        bad |= json_object_set_new(req, "ts", json_integer(strtoll(a->at, NULL, 10)));
    else if (a->have_max)
        bad |= json_object_set_new(req, "max_staleness_ns", json_integer(a->max_stale));
    else if (a->have_exact)
        bad |= json_object_set_new(req, "exact_staleness_ns", json_integer(a->exact_stale));
    if (bad) {
        json_decref(req);
        return NULL;
    }
    return req;
}

static int do_read(cmd_conn_opts *o, const kv_args *a, bool json, char **pos, int npos, bool scan)
{
    if (npos < 2 || npos > (scan ? 3 : 2))
        return cmd_usage_error("kv", scan ? "scan takes START [END]" : "get takes one KEY");
    /* A scan goes page by page (the node answers at most ND_SCAN_ROWS rows
     * or about ND_SCAN_BYTES per reply, with `more` and the `resume` key),
     * every page at the first one's timestamp: one consistent snapshot. */
    const char *end = npos == 3 ? pos[2] : NULL;
    char *key = strdup(pos[1]);
    json_t *all = json ? json_array() : NULL; /* --json: every row, printed once */
    long long total = 0, want = a->limit;     /* 0: every row */
    int64_t ts = 0;
    int st = CMD_EXIT_OK;
    json_t *r = NULL;
    if (!key || (json && !all)) {
        free(key);
        json_decref(all);
        return cmd_fail("kv", "out of memory");
    }
    for (;;) {
        long long page = want && want - total < ND_SCAN_ROWS ? want - total : ND_SCAN_ROWS;
        json_t *req = read_request(a, key, end, scan, page, ts);
        char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
        json_decref(req);
        if (!text) {
            st = cmd_fail("kv", "out of memory");
            break;
        }
        mr_err err;
        mr_err_clear(&err);
        /* A snapshot read is served by the replica asked: no leader hops. */
        int rc = cmd_rpc(o, ND_MSG_SNAPREAD, text, (uint32_t)strlen(text), &r, &err);
        free(text);
        if (rc != MR_OK) {
            st = cmd_fail("kv", "%s", mr_err_msg(&err));
            break;
        }
        if (!json_is_true(json_object_get(r, "ok"))) {
            if (json)
                print_reply(r);
            st = json ? CMD_EXIT_FAIL : fail_reply(r);
            break;
        }
        if (!scan) {
            if (json) {
                print_reply(r);
            } else if (json_is_true(json_object_get(r, "found"))) {
                printf("%s\n", json_string_value(json_object_get(r, "value")));
                fprintf(stderr, "(read at %lld, written at %lld)\n",
                        json_integer_value(json_object_get(r, "read_ts")),
                        json_integer_value(json_object_get(r, "version_ts")));
            } else {
                fprintf(stderr, "(not found; read at %lld)\n",
                        json_integer_value(json_object_get(r, "read_ts")));
                st = CMD_EXIT_FAIL;
            }
            break;
        }
        ts = json_integer_value(json_object_get(r, "read_ts"));
        size_t i;
        json_t *row;
        json_array_foreach(json_object_get(r, "rows"), i, row)
        {
            if (json)
                json_array_append(all, row);
            else
                printf("%s\t%s\n", json_string_value(json_object_get(row, "key")),
                       json_string_value(json_object_get(row, "value")));
            total++;
        }
        const char *resume = json_string_value(json_object_get(r, "resume"));
        if (!json_is_true(json_object_get(r, "more")) || !resume || (want && total >= want))
            break;
        free(key);
        if (!(key = strdup(resume))) {
            st = cmd_fail("kv", "out of memory");
            break;
        }
        json_decref(r);
        r = NULL;
    }
    if (scan && st == CMD_EXIT_OK) {
        if (json) {
            json_t *out =
                json_pack("{s:b, s:I, s:O}", "ok", 1, "read_ts", (json_int_t)ts, "rows", all);
            if (out)
                print_reply(out);
            else
                st = cmd_fail("kv", "out of memory");
            json_decref(out);
        } else {
            fprintf(stderr, "(%lld rows, read at %lld)\n", total, (long long)ts);
        }
    }
    json_decref(all);
    json_decref(r);
    free(key);
    return st;
}

static int do_txn(cmd_conn_opts *o, const kv_args *a, bool json, char **pos, int npos)
{
    /* Ops: "put K V", "del K", "get K" (txn), or the put/del shorthands. */
    json_t *writes = json_array(), *reads = json_array();
    json_t *buffered = json_object(); /* gets answered by the transaction's own writes */
    const char *verb = pos[0];
    const char *bad = NULL;
    /* Every argument was checked (kv_check_args): a failure to build the
     * request here is memory, and nothing is sent without every operation. */
    bool oom = !writes || !reads || !buffered;
    if (strcmp(verb, "put") == 0) {
        if (npos != 3)
            bad = "put takes KEY VALUE";
        else
            oom |= json_array_append_new(
                       writes, json_pack("{s:s, s:s}", "key", pos[1], "value", pos[2])) != 0;
    } else if (strcmp(verb, "del") == 0) {
        if (npos != 2)
            bad = "del takes one KEY";
        else
            oom |= json_array_append_new(writes,
                                         json_pack("{s:s, s:b}", "key", pos[1], "delete", 1)) != 0;
    } else {
        for (int i = 1; i < npos && !bad;) {
            const char *op = pos[i++];
            if (strcmp(op, "put") == 0 && i + 1 < npos) {
                oom |= json_array_append_new(writes, json_pack("{s:s, s:s}", "key", pos[i], "value",
                                                               pos[i + 1])) != 0;
                i += 2;
            } else if (strcmp(op, "del") == 0 && i < npos) {
                oom |= json_array_append_new(
                           writes, json_pack("{s:s, s:b}", "key", pos[i++], "delete", 1)) != 0;
            } else if (strcmp(op, "get") == 0 && i < npos) {
                /* A transaction sees its own buffered writes: the last one wins. */
                json_t *mine = NULL;
                size_t k;
                json_t *w;
                json_array_foreach(writes, k,
                                   w) if (strcmp(json_string_value(json_object_get(w, "key")),
                                                 pos[i]) == 0) mine = w;
                if (mine)
                    oom |= json_object_set(buffered, pos[i],
                                           json_is_true(json_object_get(mine, "delete"))
                                               ? json_null()
                                               : json_object_get(mine, "value")) != 0;
                else
                    oom |= json_array_append_new(reads, json_string(pos[i])) != 0;
                i++;
            } else {
                bad = "txn takes: get KEY | put KEY VALUE | del KEY, ...";
            }
        }
        if (!bad && json_array_size(reads) + json_array_size(writes) == 0)
            bad = "txn needs at least one operation";
    }
    if (bad || oom) {
        json_decref(writes);
        json_decref(reads);
        json_decref(buffered);
        return bad ? cmd_usage_error("kv", "%s", bad) : cmd_fail("kv", "out of memory");
    }
    uint64_t id;
    if (getrandom(&id, sizeof id, 0) != (ssize_t)sizeof id)
        id = (uint64_t)mr_monotonic_ns();
    id &= ND_TXN_CLIENT_MAX;         /* ids above are the cluster's own (nd.h) */
    int64_t prio = mr_realtime_ns(); /* age: older transactions win (wound-wait) */
    for (int attempt = 0; attempt < 8; attempt++) {
        json_t *results = json_object();
        json_object_update(results, buffered);
        json_t *r = NULL;
        mr_err err;
        mr_err_clear(&err);
        bool retry = false, failed = false;
        size_t k;
        json_t *key;
        json_array_foreach(reads, k, key)
        {
            json_t *req =
                json_pack("{s:I, s:I, s:I, s:s, s:O}", "group", (json_int_t)a->group, "txn",
                          (json_int_t)id, "prio", (json_int_t)prio, "op", "read", "key", key);
            int rc = req ? cmd_rpc_leader(o, ND_MSG_TXN, req, &r, &err)
                         : mr_errf(&err, MR_ENOMEM, "out of memory");
            json_decref(req);
            if (rc != MR_OK) {
                json_decref(results);
                json_decref(writes);
                json_decref(reads);
                json_decref(buffered);
                return cmd_fail("kv", "%s", mr_err_msg(&err));
            }
            if (!json_is_true(json_object_get(r, "ok"))) {
                retry = json_is_true(json_object_get(r, "retryable"));
                failed = true;
                break;
            }
            json_t *v = json_object_get(r, "value");
            json_object_set(results, json_string_value(key), v ? v : json_null());
            json_decref(r);
            r = NULL;
        }
        if (!failed) {
            json_t *req = json_pack("{s:I, s:I, s:I, s:s, s:O, s:I}", "group", (json_int_t)a->group,
                                    "txn", (json_int_t)id, "prio", (json_int_t)prio, "op", "commit",
                                    "writes", writes, "nreads", (json_int_t)json_array_size(reads));
            if (!req) {
                json_decref(results);
                json_decref(writes);
                json_decref(reads);
                json_decref(buffered);
                return cmd_fail("kv", "out of memory (nothing was sent)");
            }
            int rc = cmd_rpc_leader(o, ND_MSG_TXN, req, &r, &err);
            json_decref(req);
            const char *e = rc == MR_OK ? json_string_value(json_object_get(r, "error")) : NULL;
            if (rc != MR_OK || (e && strcmp(e, "unknown") == 0)) {
                /* The answer was lost: the group's log knows how it ended. */
                json_decref(r);
                r = kv_resolve(o, a->group, id, prio);
            }
            if (!r) {
                json_decref(results);
                json_decref(writes);
                json_decref(reads);
                json_decref(buffered);
                return cmd_fail("kv", "%s (the outcome is unknown)",
                                rc != MR_OK ? mr_err_msg(&err)
                                            : "no answer to the status question");
            }
            if (!json_is_true(json_object_get(r, "ok"))) {
                retry = json_is_true(json_object_get(r, "retryable"));
                failed = true;
            }
        }
        if (failed && retry) {
            json_decref(r);
            json_decref(results);
            struct timespec d = {0, (long)(10000000L << (attempt < 5 ? attempt : 5))};
            nanosleep(&d, NULL);
            id = (id * 6364136223846793005ull + 1442695040888963407ull) & ND_TXN_CLIENT_MAX;
            continue; /* a new transaction id; the age is kept so it eventually wins */
        }
        int st;
        if (json) {
            json_object_set(r, "reads", results);
            print_reply(r);
            st = failed ? CMD_EXIT_FAIL : CMD_EXIT_OK;
        } else if (failed) {
            st = fail_reply(r);
        } else {
            const char *rk;
            json_t *rv;
            json_object_foreach(results, rk, rv)
                printf("%s = %s\n", rk, json_is_string(rv) ? json_string_value(rv) : "(not found)");
            printf("committed at %lld\n", json_integer_value(json_object_get(r, "ts")));
            st = CMD_EXIT_OK;
        }
        json_decref(r);
        json_decref(results);
        json_decref(writes);
        json_decref(reads);
        json_decref(buffered);
        return st;
    }
    json_decref(writes);
    json_decref(reads);
    json_decref(buffered);
    return cmd_fail("kv", "transaction aborted 8 times (contention); giving up");
}

/* Asks the group how transaction id ended ({op: status}, a few seconds at
 * most; prio, its start time, tells the node it is recent enough to abort if
 * unknown): a commit reply ({ok, ts}), an abort ({ok: false, retryable}), or
 * NULL when it cannot tell ("forgotten" ends the questions at once). */
static json_t *kv_resolve(cmd_conn_opts *o, long long group, uint64_t id, int64_t prio)
{
    for (int tries = 0; tries < 30; tries++) {
        json_t *req = json_pack("{s:I, s:I, s:I, s:s}", "group", (json_int_t)group, "txn",
                                (json_int_t)id, "prio", (json_int_t)prio, "op", "status");
        json_t *r = NULL;
        mr_err err;
        int rc = req ? cmd_rpc_leader(o, ND_MSG_TXN, req, &r, &err) : MR_ENOMEM;
        json_decref(req);
        const char *state = rc == MR_OK ? json_string_value(json_object_get(r, "state")) : NULL;
        json_t *out = NULL;
        const char *e = rc == MR_OK ? json_string_value(json_object_get(r, "error")) : NULL;
        if (e && strcmp(e, "forgotten") == 0) {
            json_decref(r);
            return NULL;
        }
        if (state && strcmp(state, "committed") == 0)
            out = json_pack("{s:b, s:O}", "ok", 1, "ts", json_object_get(r, "ts"));
        else if (state && strcmp(state, "aborted") == 0)
            out = json_pack("{s:b, s:s, s:s, s:b}", "ok", 0, "error", "aborted", "message",
                            "the transaction did not commit", "retryable", 1);
        json_decref(r);
        if (out)
            return out;
        struct timespec d = {0, 200 * 1000000L};
        nanosleep(&d, NULL);
    }
    return NULL;
}

/* The data group holding every key of the command, from the range map at
 * --host: CMD_EXIT_OK with a->group set, or a failure explained. */
static int kv_route(cmd_conn_opts *o, kv_args *a, char **pos, int npos)
{
    const char *keys[256];
    int nk = 0;
    bool txn = strcmp(pos[0], "txn") == 0;
    for (int i = 1; i < npos && nk < 256; i++) {
        if (!txn) {
            if (i == 1 || (pos[0][0] == 's' && i == 2))
                keys[nk++] = pos[i];
            continue;
        }
        if (strcmp(pos[i], "get") == 0 || strcmp(pos[i], "del") == 0 ||
            strcmp(pos[i], "put") == 0) {
            if (i + 1 < npos)
                keys[nk++] = pos[i + 1];
            i += strcmp(pos[i], "put") == 0 ? 2 : 1;
        }
    }
    if (nk == 0)
        return CMD_EXIT_OK; /* the usage error comes later, with its message */
    json_t *r = NULL;
    mr_err err;
    if (cmd_rpc(o, ND_MSG_RANGES, "{}", 2, &r, &err) != MR_OK)
        return cmd_fail("kv", "reading the range map: %s", mr_err_msg(&err));
    if (!json_is_true(json_object_get(r, "ok"))) {
        int rc = fail_reply(r);
        json_decref(r);
        return rc;
    }
    long long first = 0;
    bool scan_end = pos[0][0] == 's' && nk == 2;
    for (int k = 0; k < nk; k++) {
        size_t i;
        json_t *e;
        long long owner = 0;
        json_array_foreach(json_object_get(r, "ranges"), i, e)
        {
            const char *s = json_string_value(json_object_get(e, "start")) ?: "";
            const char *en = json_string_value(json_object_get(e, "end")) ?: "";
            /* a scan's end is exclusive: it belongs with the range it closes */
            bool last = k == 1 && scan_end;
            if ((last ? strcmp(keys[k], s) > 0 : strcmp(keys[k], s) >= 0) &&
                (!*en || (last ? strcmp(keys[k], en) <= 0 : strcmp(keys[k], en) < 0)))
                owner = json_integer_value(json_object_get(e, "group"));
        }
        if (k == 0)
            first = owner;
        else if (owner != first) {
            json_decref(r);
            return cmd_fail("kv",
                            "'%s' is in data group %lld but '%s' in group %lld: a kv command runs "
                            "in one group (give --group, or use libmeridian for a transaction "
                            "across groups)",
                            keys[0], first, keys[k], owner);
        }
    }
    json_decref(r);
    if (!first)
        return cmd_fail("kv", "no data group holds '%s'", keys[0]);
    a->group = first;
    return CMD_EXIT_OK;
}

int cmd_kv(int argc, char **argv)
{
    kv_args a = {0};
    static const cmd_extra_opt extra[] = {
        {"group", kv_set_group},       {"limit", kv_set_limit},           {"at", kv_set_at},
        {"max-staleness", kv_set_max}, {"exact-staleness", kv_set_exact}, {NULL, NULL}};
    cmd_conn_opts o = {0};
    bool json = false;
    char **pos = NULL;
    int npos = 0;
    int rc = cmd_client_opts("kv", argc, argv, &o, &json, kv_usage, &pos, &npos, extra, &a);
    if (rc)
        return rc < 0 ? CMD_EXIT_OK : rc;
    if ((a.at != NULL) + a.have_max + a.have_exact > 1)
        return cmd_usage_error("kv",
                               "--at, --max-staleness and --exact-staleness exclude each other");
    if (npos < 1)
        return cmd_usage_error("kv", "give a subcommand: get, scan, put, del or txn");
    const char *sub = pos[0];
    if ((rc = kv_check_args(pos, npos)) != CMD_EXIT_OK)
        return rc;
    if (!a.group && (rc = kv_route(&o, &a, pos, npos)) != CMD_EXIT_OK)
        return rc;
    if (strcmp(sub, "get") == 0 || strcmp(sub, "scan") == 0)
        rc = do_read(&o, &a, json, pos, npos, sub[0] == 's');
    else if (strcmp(sub, "put") == 0 || strcmp(sub, "del") == 0 || strcmp(sub, "txn") == 0)
        rc = do_txn(&o, &a, json, pos, npos);
    else
        rc = cmd_usage_error("kv", "unknown subcommand '%s' (get, scan, put, del, txn)", sub);
    return rc;
}

/* `meridian kv` when a commit's outcome cannot be learned: a scripted fake
 * node answers the commit "unknown" and the status question "forgotten"
 * (nothing can tell any more). The command must not call that a failure or
 * retry it: exit 3, a message naming the transaction (the id the node was
 * sent), the commit sent once. A commit refused for good is exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablet/node/nd.h"
#include "tests/support/fake_node.h"
#include "launch/proc.h"
#include "tests/test.h"

typedef struct script {
    const char *commit_error; /* the commit's answer */
} script;

static json_t *answer(fake_node *f, uint8_t type, const json_t *req)
{
    script *s = f->ud;
    if (type == ND_MSG_RANGES)
        return json_pack("{s:b, s:[{s:s, s:s, s:i, s:[i], s:s}], s:[{s:i, s:s, s:s}]}", "ok", 1,
                         "ranges", "start", "", "end", "", "group", 2, "replicas", 1, "leader",
                         f->addr, "nodes", "id", 1, "addr", f->addr, "zone", "a");
    const char *op = json_string_value(json_object_get(req, "op")) ?: "";
    if (!strcmp(op, "read"))
        return json_pack("{s:b, s:b, s:s, s:i}", "ok", 1, "found", 1, "value", "old", "version_ts",
                         5);
    if (!strcmp(op, "commit"))
        return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", s->commit_error, "message",
                         "scripted");
    if (!strcmp(op, "status"))
        return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", "forgotten", "message",
                         "the decision was collected");
    return json_pack("{s:b}", "ok", 1); /* abort */
}

static int kv_at(fake_node *f, char **out, char **err, const char *a1, const char *a2,
                 const char *a3, const char *a4)
{
    char *argv[] = {(char *)proc_meridian_bin(),
                    "kv",
                    "--insecure",
                    "--timeout=1s",
                    "--host",
                    f->addr,
                    (char *)a1,
                    (char *)a2,
                    (char *)a3,
                    (char *)a4,
                    NULL};
    return proc_run(argv, 20000, out, err);
}

TEST(unknown_outcome_exits_3_and_names_the_transaction)
{
    script s = {.commit_error = "unknown"};
    fake_node f;
    fake_start(&f, answer, &s);
    char *out = NULL, *err = NULL;
    int st = kv_at(&f, &out, &err, "txn", "get", "k", "put");
    CHECK_EQ(st, 2); /* "put" without KEY VALUE: refused, nothing sent */
    free(out);
    free(err);
    json_t *sent = fake_sent(&f, ND_MSG_TXN, NULL);
    CHECK_EQ(json_array_size(sent), 0);
    json_decref(sent);

    out = err = NULL;
    st = kv_at(&f, &out, &err, "put", "k", "v", NULL);
    json_t *commits = fake_sent(&f, ND_MSG_TXN, "commit");
    size_t ncommits = json_array_size(commits);
    char want[64];
    snprintf(want, sizeof want, "transaction %lld: outcome unknown",
             (long long)json_integer_value(json_object_get(json_array_get(commits, 0), "txn")));
    json_decref(commits);
    bool named = st == 3 && err && strstr(err, want) && !strstr(out ? out : "", "committed");
    if (!named)
        fprintf(stderr, "  exit %d, want '%s', stderr: %s\n", st, want, err ? err : "");
    free(out);
    free(err);
    CHECK(named);
    CHECK_EQ(ncommits, 1); /* never sent twice */

    /* --json says it on stdout too. */
    out = err = NULL;
    st = kv_at(&f, &out, &err, "txn", "get", "k", "--json");
    /* a transaction that only read commits too (its read locks must have held) */
    json_t *r = out ? json_loads(out, 0, NULL) : NULL;
    bool j = st == 3 && r && !json_is_true(json_object_get(r, "ok")) &&
             !strcmp(json_string_value(json_object_get(r, "error")) ?: "", "unknown") &&
             json_integer_value(json_object_get(r, "txn")) > 0;
    if (!j)
        fprintf(stderr, "  --json: exit %d: %s %s\n", st, out ? out : "", err ? err : "");
    json_decref(r);
    free(out);
    free(err);
    CHECK(j);

    /* Refused for good (not retryable): exit 1, nothing unknown about it. */
    s.commit_error = "too_large";
    out = err = NULL;
    st = kv_at(&f, &out, &err, "put", "k", "v", NULL);
    bool failed = st == 1 && err && strstr(err, "too_large") && !strstr(err, "unknown");
    if (!failed)
        fprintf(stderr, "  too_large: exit %d: %s\n", st, err ? err : "");
    free(out);
    free(err);
    CHECK(failed);
    fake_stop(&f);
}

TEST_MAIN(TEST_CASE(unknown_outcome_exits_3_and_names_the_transaction))

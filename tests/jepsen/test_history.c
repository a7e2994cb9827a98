/* The history model: JSON-lines parsing with line-numbered errors, pairing of invokes with
 * completions, retirement after info, JSON-lines and EDN writing, and garbage input. */
#include <stdlib.h>
#include <unistd.h>

#include "jepsen/bank.h"
#include "jepsen/elle.h"
#include "jepsen/history.h"
#include "jepsen/linear.h"
#include "jepsen/set.h"
#include "tests/test.h"

static const char *good =
    "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"x\",\"value\":1,\"time\":10}\n"
    "\n"
    "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start-partition\",\"value\":\"halves\"}\n"
    "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"x\",\"value\":null,\"time\":20}\n"
    "{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"x\",\"value\":1,\"time\":30}\n"
    "{\"process\":1,\"type\":\"info\",\"f\":\"read\",\"key\":\"x\",\"value\":null,\"time\":40}\n"
    "{\"index\":5,\"process\":2,\"type\":\"invoke\",\"f\":\"txn\",\"value\":[[\"append\",3,4],"
    "[\"r\",3,null]]}\n"
    "{\"process\":2,\"type\":\"fail\",\"f\":\"txn\",\"value\":[[\"append\",3,4],[\"r\",3,null]]}\n"
    "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"x\",\"value\":2}\n";

TEST(parse_and_pair)
{
    jp_history h;
    jp_history_init(&h);
    mr_err err;
    CHECKF(jp_history_parse_string(&h, good, &err) == MR_OK, "%s", mr_err_msg(&err));
    CHECK_EQ(h.n, 8);
    CHECK_EQ(h.ops[0].line, 1);
    CHECK_EQ(h.ops[1].line, 3);
    CHECK_EQ(h.ops[1].process, JP_NEMESIS);
    CHECK_EQ(h.ops[1].pair, JP_NONE);
    CHECK_EQ(h.ops[0].pair, 3);
    CHECK_EQ(h.ops[3].pair, 0);
    CHECK_EQ(h.ops[2].pair, 4);
    CHECK_EQ(jp_outcome(&h, 0), JP_OK);
    CHECK_EQ(jp_outcome(&h, 2), JP_INFO);
    CHECK_EQ(jp_outcome(&h, 5), JP_FAIL);
    CHECK_EQ(jp_outcome(&h, 7), JP_INFO); /* never completed */
    CHECK_EQ(jp_report_index(&h, 0), 3);
    CHECK_EQ(jp_report_index(&h, 7), 7);
    CHECK_EQ(h.ops[0].time, 10);
    CHECK_EQ(h.ops[5].time, -1);
    CHECK(json_is_null(h.ops[7].value) == 0);
    CHECK_STR(h.ops[1].f, "start-partition");
    jp_history_free(&h);
}

TEST(jsonl_round_trip_and_edn)
{
    jp_history h, back;
    jp_history_init(&h);
    jp_history_init(&back);
    mr_err err;
    CHECK(jp_history_parse_string(&h, good, &err) == MR_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(jp_history_write_jsonl(&h, f, &err) == MR_OK);
    fclose(f);
    CHECKF(jp_history_parse_string(&back, buf, &err) == MR_OK, "%s", mr_err_msg(&err));
    CHECK_EQ(back.n, h.n);
    for (size_t i = 0; i < h.n; i++) {
        CHECK(json_equal(back.ops[i].value, h.ops[i].value));
        CHECK_EQ(back.ops[i].pair, h.ops[i].pair);
        CHECK_EQ(json_integer_value(json_object_get(back.ops[i].obj, "index")), (long long)i);
    }
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    CHECK(jp_history_write_edn(&h, f, &err) == MR_OK);
    fclose(f);
    CHECKF(strstr(buf, "{:index 0, :type :invoke, :process 0, :f :write, :value [\"x\" 1], "
                       ":time 10}\n"),
           "%s", buf);
    CHECK(strstr(buf, ":process :nemesis, :f :start-partition, :value \"halves\"}"));
    CHECK(strstr(buf, ":f :txn, :value [[:append 3 4] [:r 3 nil]]}"));
    CHECK(strstr(buf, ":type :fail"));
    free(buf);
    jp_history_free(&h);
    jp_history_free(&back);
}

TEST(malformed_lines_rejected_with_line_numbers)
{
    static const char *bad[][2] = {
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"w\"", "line 1: invalid JSON"},
        {"[1,2]", "JSON object"},
        {"{\"process\":0,\"f\":\"w\"}", "missing \"type\""},
        {"{\"process\":0,\"type\":\"done\",\"f\":\"w\"}", "not done"},
        {"{\"process\":-1,\"type\":\"invoke\",\"f\":\"w\"}", "\"process\""},
        {"{\"process\":\"alice\",\"type\":\"invoke\",\"f\":\"w\"}", "\"process\""},
        {"{\"process\":0,\"type\":\"invoke\"}", "missing \"f\""},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"w\",\"time\":\"now\"}", "\"time\""},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"w\",\"index\":3}", "position 0"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"w\",\"key\":[1]}", "\"key\""},
        {"{\"process\":0,\"type\":\"ok\",\"f\":\"w\"}", "no pending invoke"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"w\"}\n"
         "{\"process\":0,\"type\":\"invoke\",\"f\":\"w\"}",
         "line 2: process 0 invokes while its operation at line 1"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"w\"}\n\n"
         "{\"process\":0,\"type\":\"ok\",\"f\":\"r\"}",
         "line 3: completion f \"r\" differs"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"w\",\"key\":1}\n"
         "{\"process\":0,\"type\":\"ok\",\"f\":\"w\",\"key\":2}",
         "key differs"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"w\"}\n"
         "{\"process\":0,\"type\":\"info\",\"f\":\"w\"}\n"
         "{\"process\":0,\"type\":\"invoke\",\"f\":\"w\"}",
         "line 3: process 0 invokes after an info completion"},
        {"{\"process\":0,\"type\":\"invoke\",\"f\":\"w\",\"f\":\"r\"}", "duplicate"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        jp_history h;
        jp_history_init(&h);
        mr_err err;
        mr_err_clear(&err);
        int rc = jp_history_parse_string(&h, bad[i][0], &err);
        jp_history_free(&h);
        CHECKF(rc == MR_EINVAL, "case %zu accepted", i);
        CHECKF(strstr(mr_err_msg(&err), bad[i][1]) && strstr(mr_err_msg(&err), "line "),
               "case %zu: \"%s\" lacks \"%s\"", i, mr_err_msg(&err), bad[i][1]);
    }
}

TEST(file_read_and_nul_bytes)
{
    char path[] = "/tmp/jp_hist_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"process\":0,\"type\":\"invoke\",\"f\":\"w\"}\n", f);
    fwrite("{\"process\":0,\0\"type\"}\n", 1, 23, f);
    fclose(f);
    jp_history h;
    jp_history_init(&h);
    mr_err err;
    int rc = jp_history_load(&h, path, &err);
    jp_history_free(&h);
    unlink(path);
    CHECK_EQ(rc, MR_EINVAL);
    CHECKF(strstr(mr_err_msg(&err), "line 2: contains a NUL byte") &&
               strstr(mr_err_msg(&err), path),
           "%s", mr_err_msg(&err));
    jp_history_init(&h);
    CHECK_EQ(jp_history_load(&h, "/nonexistent/history.jsonl", &err), MR_EIO);
    jp_history_free(&h);
}

TEST(garbage_never_crashes)
{
    /* seeded random bytes and random JSON-ish fragments: an error or a history, no crash */
    static const char *frags[] = {
        "{",  "}",         "[",          "]",           "\"process\"", ":",       "0",
        ",",  "\"type\"",  "\"invoke\"", "\"ok\"",      "\"f\"",       "\"txn\"", "null",
        "\n", "\"value\"", "-1",         "\"nemesis\"", "\\",          "\"",      "1e999"};
    uint64_t s = 12345;
    for (int round = 0; round < 400; round++) {
        char buf[256];
        size_t n = 0;
        while (n < sizeof buf - 16) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            if (round % 2) {
                buf[n++] = (char)(s >> 56 ? (s >> 56) : 1);
            } else {
                const char *fr = frags[(s >> 33) % (sizeof frags / sizeof frags[0])];
                size_t l = strlen(fr);
                memcpy(buf + n, fr, l);
                n += l;
            }
        }
        buf[n] = '\0';
        jp_history h;
        jp_history_init(&h);
        mr_err err;
        int rc = jp_history_parse_string(&h, buf, &err);
        CHECK(rc == MR_OK || (rc == MR_EINVAL && strstr(mr_err_msg(&err), "line ")));
        jp_history_free(&h);
    }
}

TEST(record_from_parts)
{
    jp_history h;
    jp_history_init(&h);
    mr_err err;
    json_t *key = json_string("k");
    CHECK(jp_history_record(&h, 4, JP_INVOKE, "write", key, json_integer(9), 100, &err) == MR_OK);
    CHECK(jp_history_record(&h, JP_NEMESIS, JP_INFO, "kill", NULL, json_string("n1"), -1, &err) ==
          MR_OK);
    CHECK(jp_history_record(&h, 4, JP_OK, "write", key, json_integer(9), 200, &err) == MR_OK);
    /* the same checks as parsed lines: a completion with nothing pending */
    CHECK(jp_history_record(&h, 4, JP_OK, "write", key, NULL, 300, &err) == MR_EINVAL);
    CHECK(strstr(mr_err_msg(&err), "no pending invoke"));
    json_decref(key);
    CHECK_EQ(h.n, 3);
    CHECK_EQ(h.ops[0].pair, 2);
    CHECK_EQ(h.ops[1].process, JP_NEMESIS);
    CHECK_EQ(h.ops[2].time, 200);
    CHECK_STR(json_string_value(h.ops[2].key), "k");
    CHECK_EQ(json_integer_value(h.ops[2].value), 9);
    CHECK(json_is_null(h.ops[1].key ? h.ops[1].key : json_null()));
    jp_history_free(&h);
}

/* A random JSON value of a random shape: what a buggy harness might write. */
static json_t *odd_value(uint64_t *s, int depth)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    int kind = (int)((*s >> 33) % (depth > 2 ? 5 : 8));
    static const char *strs[] = {"append", "r", "x", "from", "to", "amount", "0", ""};
    switch (kind) {
    case 0:
        return json_null();
    case 1:
        if ((*s >> 20) % 7 == 0) /* extremes: no overflow anywhere on adversarial numbers */
            return json_integer((*s >> 24) % 2 ? INT64_MAX : INT64_MIN);
        return json_integer((json_int_t)((*s >> 40) % 5) - 1);
    case 2:
        return json_string(strs[(*s >> 20) % 8]);
    case 3:
        return json_real(0.5);
    case 4:
        return json_true();
    case 5:
    case 6: {
        json_t *a = json_array();
        int n = (int)((*s >> 12) % 4);
        for (int i = 0; i < n; i++)
            json_array_append_new(a, odd_value(s, depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        int n = (int)((*s >> 12) % 3);
        for (int i = 0; i < n; i++)
            json_object_set_new(o, strs[(*s >> (8 + i)) % 8], odd_value(s, depth + 1));
        return o;
    }
    }
}

TEST(checkers_never_crash_on_odd_values)
{
    /* well-paired histories whose values have random shapes: every checker must either judge
     * them or reject them with a line-numbered message */
    static const char *fs[] = {"read", "write", "cas", "txn", "transfer", "add"};
    uint64_t s = 99;
    for (int round = 0; round < 300; round++) {
        jp_history h;
        jp_history_init(&h);
        mr_err err;
        for (int i = 0; i < 6; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            const char *f = fs[(s >> 33) % 6];
            json_t *key = (s >> 13) % 2 ? odd_value(&s, 2) : NULL;
            if (key && !json_is_string(key) && !json_is_integer(key)) {
                json_decref(key);
                key = NULL;
            }
            int rc = jp_history_record(&h, i, JP_INVOKE, f, key, odd_value(&s, 0), i, &err);
            rc |= jp_history_record(&h, i, (s >> 50) % 4 ? JP_OK : JP_INFO, f, key,
                                    odd_value(&s, 0), i, &err);
            json_decref(key);
            CHECKF(rc == MR_OK, "%s", mr_err_msg(&err));
        }
        for (int model = 0; model < 4; model++) {
            jp_result r;
            mr_err_clear(&err);
            int rc = model == 0   ? jp_check_register(&h, NULL, &r, &err)
                     : model == 1 ? jp_check_list_append(&h, NULL, &r, &err)
                     : model == 2 ? jp_check_bank(&h, NULL, &r, &err)
                                  : jp_check_set(&h, &r, &err);
            jp_result_free(&r);
            CHECKF(rc == MR_OK || (rc == MR_EINVAL && strstr(mr_err_msg(&err), "line ")),
                   "model %d: rc %d: %s", model, rc, mr_err_msg(&err));
        }
        jp_history_free(&h);
    }
}

TEST_MAIN(TEST_CASE(parse_and_pair), TEST_CASE(record_from_parts),
          TEST_CASE(jsonl_round_trip_and_edn),
          TEST_CASE(malformed_lines_rejected_with_line_numbers), TEST_CASE(file_read_and_nul_bytes),
          TEST_CASE(garbage_never_crashes), TEST_CASE(checkers_never_crash_on_odd_values))

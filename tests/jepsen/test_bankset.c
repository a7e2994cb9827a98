/* The bank and set checkers: hand-made histories for each anomaly, and seeded random histories
 * from a real bank and a real set plus mutations that must fail. */
#include <stdlib.h>

#include "jepsen/bank.h"
#include "jepsen/set.h"
#include "tests/jepsen/gen.h"
#include "tests/jepsen/hist_util.h"
#include "tests/test.h"

static jp_history h;
static jp_result r;

static void reset(void)
{
    jp_history_free(&h);
    jp_history_init(&h);
    jp_result_free(&r);
}

#define OP(p, f, inv, t, v)                                                                        \
    do {                                                                                           \
        CHECK(ev(&h, p, "invoke", f, NULL, inv) == 0);                                             \
        CHECK(ev(&h, p, t, f, NULL, v) == 0);                                                      \
    } while (0)
#define XFER(a, b, n) "{\"from\":\"" a "\",\"to\":\"" b "\",\"amount\":" #n "}"

static jp_validity bank(const jp_bank_opts *o)
{
    mr_err err;
    jp_result_free(&r);
    if (jp_check_bank(&h, o, &r, &err) != MR_OK) {
        fprintf(stderr, "%s\n", mr_err_msg(&err));
        return (jp_validity)-1;
    }
    return r.valid;
}

static jp_validity set(void)
{
    mr_err err;
    jp_result_free(&r);
    if (jp_check_set(&h, &r, &err) != MR_OK) {
        fprintf(stderr, "%s\n", mr_err_msg(&err));
        return (jp_validity)-1;
    }
    return r.valid;
}

TEST(bank_valid_and_wrong_total)
{
    reset();
    const char *accts[] = {"a", "b"};
    jp_bank_opts o = {.has_total = 1, .total = 20, .accounts = accts, .naccounts = 2};
    OP(0, "read", "null", "ok", "{\"a\":10,\"b\":10}");
    OP(1, "transfer", XFER("a", "b", 3), "ok", XFER("a", "b", 3));
    OP(0, "read", "null", "ok", "{\"a\":7,\"b\":13}");
    OP(1, "transfer", XFER("b", "a", 30), "fail", XFER("b", "a", 30));
    CHECK_EQ(bank(&o), JP_VALID);
    OP(0, "read", "null", "ok", "{\"a\":7,\"b\":10}"); /* saw the debit, not the credit */
    CHECK_EQ(bank(&o), JP_INVALID);
    CHECK(names_are(&r, "wrong-total", NULL));
    size_t ops[1] = {9};
    CHECK(anomaly_ops(&r, "wrong-total", 1, ops));
    /* without a given total, the common one is inferred and the odd read still stands out */
    CHECK_EQ(bank(NULL), JP_INVALID);
    CHECK(names_are(&r, "wrong-total", NULL));
    CHECK(r.notes && strstr(r.notes, "inferred as 20"));
    reset();
}

TEST(bank_negative_missing_unexpected)
{
    reset();
    const char *accts[] = {"a", "b"};
    jp_bank_opts o = {.has_total = 1, .total = 20, .accounts = accts, .naccounts = 2};
    OP(0, "read", "null", "ok", "{\"a\":-5,\"b\":25}");
    CHECK_EQ(bank(&o), JP_INVALID);
    CHECK(names_are(&r, "negative-balance", NULL));
    o.allow_negative = 1;
    CHECK_EQ(bank(&o), JP_VALID);
    o.allow_negative = 0;
    reset();
    OP(0, "read", "null", "ok", "{\"a\":20}");
    CHECK_EQ(bank(&o), JP_INVALID);
    CHECK(names_are(&r, "missing-account", NULL));
    reset();
    OP(0, "read", "null", "ok", "{\"a\":10,\"b\":10,\"c\":0}");
    CHECK_EQ(bank(&o), JP_INVALID);
    CHECK(names_are(&r, "unexpected-account", NULL));
    reset();
    OP(0, "read", "null", "info", "null");
    CHECK_EQ(bank(&o), JP_UNKNOWN);
    reset();
    OP(0, "read", "null", "ok", "{\"a\":9223372036854775807,\"b\":1}");
    mr_err oerr;
    CHECK_EQ(jp_check_bank(&h, &o, &r, &oerr), MR_EINVAL);
    CHECK(strstr(mr_err_msg(&oerr), "line 2: bank read: the balances add up past 64 bits"));
    reset();
    CHECK(ev(&h, 0, "invoke", "transfer", NULL, "{\"from\":\"a\"}") == 0);
    mr_err err;
    CHECK_EQ(jp_check_bank(&h, &o, &r, &err), MR_EINVAL);
    CHECK(strstr(mr_err_msg(&err), "transfer"));
    reset();
}

TEST(bank_random_valid_and_mutated)
{
    int tried = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        reset();
        gen_opts go = {.model = GEN_BANK,
                       .seed = seed,
                       .nops = 200,
                       .nprocs = 5,
                       .nkeys = 4,
                       .p_fail = 5,
                       .p_info = 5};
        gen_out g;
        CHECK(gen_history(&go, &h, &g) == 0);
        jp_bank_opts o = {.has_total = 1, .total = g.bank_total};
        gen_out_free(&g);
        CHECK_EQ(bank(&o), JP_VALID);
        /* move one unit out of thin air in one read */
        for (size_t i = 0; i < h.n; i++) {
            if (h.ops[i].type != JP_OK || strcmp(h.ops[i].f, "read") != 0)
                continue;
            json_t *o2 = json_deep_copy(h.ops[i].obj);
            json_t *bal = json_object_get(json_object_get(o2, "value"), "0");
            json_integer_set(bal, json_integer_value(bal) + 1);
            jp_history m;
            jp_history_init(&m);
            CHECK(gen_clone_with(&h, &m, i, o2) == 0);
            jp_result mr;
            mr_err err;
            CHECK(jp_check_bank(&m, &o, &mr, &err) == MR_OK);
            CHECK_EQ(mr.valid, JP_INVALID);
            CHECK_EQ(jp_result_count(&mr, "wrong-total"), 1);
            jp_result_free(&mr);
            jp_history_free(&m);
            tried++;
            break;
        }
    }
    CHECK(tried >= 15);
    reset();
}

TEST(set_valid_lost_unexpected_duplicated)
{
    reset();
    OP(0, "add", "1", "ok", "1");
    OP(1, "add", "2", "info", "2"); /* may or may not be there */
    OP(2, "add", "3", "fail", "3"); /* must not be there */
    CHECK(ev(&h, 0, "invoke", "add", NULL, "4") == 0);
    OP(3, "read", "null", "ok", "[1,2]");
    CHECK(ev(&h, 0, "ok", "add", NULL, "4") == 0); /* concurrent with the final read */
    CHECK_EQ(set(), JP_VALID);
    CHECK(r.notes && strstr(r.notes, "1 indeterminate adds recovered"));
    OP(4, "read", "null", "ok", "[2,1,4]");
    CHECK_EQ(set(), JP_VALID);
    OP(5, "read", "null", "ok", "[2,4]"); /* 1 was acknowledged long before: lost */
    CHECK_EQ(set(), JP_INVALID);
    CHECK(names_are(&r, "lost", NULL));
    size_t ops[2] = {1, 13};
    CHECK(anomaly_ops(&r, "lost", 2, ops));
    OP(5, "read", "null", "ok", "[1,4,3,9,4]");
    CHECK_EQ(set(), JP_INVALID);
    CHECK(names_are(&r, "unexpected", "duplicated", NULL));
    CHECK_EQ(jp_result_count(&r, "unexpected"), 2); /* 3 failed, 9 never added */
    reset();
    OP(0, "add", "1", "ok", "1");
    CHECK_EQ(set(), JP_UNKNOWN); /* no read */
    reset();
}

TEST(set_random_valid_and_mutated)
{
    int tried = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        reset();
        gen_opts go = {
            .model = GEN_SET, .seed = seed, .nops = 150, .nprocs = 5, .p_fail = 5, .p_info = 5};
        gen_out g;
        CHECK(gen_history(&go, &h, &g) == 0);
        gen_out_free(&g);
        CHECK_EQ(set(), JP_VALID);
        /* drop one acknowledged element from the final read (the last op) */
        size_t last = h.n - 1;
        json_t *o2 = json_deep_copy(h.ops[last].obj);
        json_t *l = json_object_get(o2, "value");
        size_t victim = JP_NONE;
        for (size_t i = 0; i < json_array_size(l) && victim == JP_NONE; i++)
            for (size_t k = 0; k < h.n; k++)
                if (h.ops[k].type == JP_OK && strcmp(h.ops[k].f, "add") == 0 &&
                    json_equal(h.ops[k].value, json_array_get(l, i)))
                    victim = i;
        if (victim == JP_NONE) {
            json_decref(o2);
            continue;
        }
        json_array_remove(l, victim);
        jp_history m;
        jp_history_init(&m);
        CHECK(gen_clone_with(&h, &m, last, o2) == 0);
        jp_result mr;
        mr_err err;
        CHECK(jp_check_set(&m, &mr, &err) == MR_OK);
        CHECK_EQ(mr.valid, JP_INVALID);
        CHECK_EQ(jp_result_count(&mr, "lost"), 1);
        jp_result_free(&mr);
        jp_history_free(&m);
        tried++;
    }
    CHECK(tried >= 15);
    reset();
}

TEST(cleanup)
{
    reset();
}

TEST_MAIN(TEST_CASE(bank_valid_and_wrong_total), TEST_CASE(bank_negative_missing_unexpected),
          TEST_CASE(bank_random_valid_and_mutated), TEST_CASE(set_valid_lost_unexpected_duplicated),
          TEST_CASE(set_random_valid_and_mutated), TEST_CASE(cleanup))

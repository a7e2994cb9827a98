/* Bank checker (see bank.h). */
#include "jepsen/bank.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int account_text(const json_t *a, char *buf, size_t len)
{
    if (!json_is_string(a) && !json_is_integer(a))
        return -1;
    jp_key_text(a, buf, len);
    return 0;
}

typedef struct tot {
    int64_t total;
    size_t count;
} tot;

int jp_check_bank(const jp_history *h, const jp_bank_opts *opts, jp_result *r, mr_err *err)
{
    jp_result_init(r, "bank");
    jp_bank_opts none = {0};
    if (!opts)
        opts = &none;
    json_t *accounts = json_object(); /* the set of accounts */
    if (!accounts)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    int rc = MR_OK;
    for (size_t i = 0; i < opts->naccounts; i++)
        json_object_set_new(accounts, opts->accounts[i], json_true());

    /* pass 1: validate and collect accounts */
    size_t reads = 0;
    for (size_t i = 0; i < h->n && rc == MR_OK; i++) {
        const jp_op *op = &h->ops[i];
        if (op->type != JP_INVOKE || op->process == JP_NEMESIS)
            continue;
        r->ops_checked++;
        char a[300], b[300];
        if (strcmp(op->f, "transfer") == 0) {
            json_t *v = op->value;
            if (!json_is_object(v) || account_text(json_object_get(v, "from"), a, sizeof a) < 0 ||
                account_text(json_object_get(v, "to"), b, sizeof b) < 0 ||
                !json_is_integer(json_object_get(v, "amount")))
                rc = mr_errf(err, MR_EINVAL,
                             "line %ld: bank transfer: value must be {\"from\": account, \"to\": "
                             "account, \"amount\": integer}",
                             op->line);
            else if (!opts->accounts) {
                json_object_set_new(accounts, a, json_true());
                json_object_set_new(accounts, b, json_true());
            }
        } else if (strcmp(op->f, "read") == 0) {
            if (jp_outcome(h, i) != JP_OK)
                continue;
            const jp_op *cp = &h->ops[op->pair];
            const char *k;
            json_t *x;
            if (!json_is_object(cp->value)) {
                rc = mr_errf(err, MR_EINVAL,
                             "line %ld: bank read: the ok value must be an object {account: "
                             "balance}",
                             cp->line);
                break;
            }
            int64_t sum = 0;
            json_object_foreach(cp->value, k, x)
            {
                if (json_is_integer(x) &&
                    __builtin_add_overflow(sum, json_integer_value(x), &sum)) {
                    rc = mr_errf(err, MR_EINVAL,
                                 "line %ld: bank read: the balances add up past 64 bits", cp->line);
                    break;
                }
                if (!json_is_integer(x)) {
                    rc = mr_errf(err, MR_EINVAL,
                                 "line %ld: bank read: balance of account %s is not an integer",
                                 cp->line, k);
                    break;
                }
                if (!opts->accounts)
                    json_object_set_new(accounts, k, json_true());
            }
            reads++;
        } else {
            rc = mr_errf(err, MR_EINVAL,
                         "line %ld: bank model: unknown f \"%s\" (expected transfer or read)",
                         op->line, op->f);
        }
    }
    if (rc != MR_OK) {
        r->valid = JP_UNKNOWN;
        json_decref(accounts);
        return rc;
    }

    /* the total: given, or the most common total among reads that see every account */
    int64_t total = opts->total;
    if (!opts->has_total) {
        tot *t = calloc(reads ? reads : 1, sizeof *t);
        size_t nt = 0, complete = 0;
        for (size_t i = 0; t && i < h->n; i++) {
            const jp_op *op = &h->ops[i];
            if (op->type != JP_INVOKE || op->process == JP_NEMESIS || strcmp(op->f, "read") != 0 ||
                jp_outcome(h, i) != JP_OK)
                continue;
            const json_t *v = h->ops[op->pair].value;
            if (json_object_size(v) != json_object_size(accounts))
                continue;
            int64_t sum = 0;
            const char *k;
            json_t *x;
            json_object_foreach((json_t *)v, k, x) sum += json_integer_value(x);
            size_t j = 0;
            while (j < nt && t[j].total != sum)
                j++;
            if (j == nt)
                t[nt++] = (tot){sum, 0};
            t[j].count++;
            complete++;
        }
        size_t best = 0;
        for (size_t j = 1; j < nt; j++)
            if (t && t[j].count > t[best].count)
                best = j;
        if (nt) {
            total = t[best].total;
            jp_result_note(r,
                           "total inferred as %" PRId64 " (the total of %zu of %zu complete "
                           "reads); pass the real total to catch reads that all agree on a "
                           "wrong one",
                           total, t[best].count, complete);
        }
        free(t);
        if (!nt) {
            if (reads)
                jp_result_note(r, "no read saw every account; total not inferred");
            total = INT64_MIN;
        }
    }

    /* pass 2: every ok read */
    for (size_t i = 0; i < h->n; i++) {
        const jp_op *op = &h->ops[i];
        if (op->type != JP_INVOKE || op->process == JP_NEMESIS || strcmp(op->f, "read") != 0 ||
            jp_outcome(h, i) != JP_OK)
            continue;
        size_t rep = op->pair;
        json_t *v = h->ops[op->pair].value;
        const char *k;
        json_t *x;
        int64_t sum = 0;
        int complete = 1;
        json_object_foreach(accounts, k, x)
        {
            if (!json_object_get(v, k)) {
                jp_result_add(r, "missing-account", &rep, 1,
                              "op %zu's read does not show account %s", rep, k);
                complete = 0;
                break;
            }
        }
        json_object_foreach(v, k, x)
        {
            int64_t bal = json_integer_value(x);
            sum += bal;
            if (!json_object_get(accounts, k)) {
                jp_result_add(r, "unexpected-account", &rep, 1,
                              "op %zu's read shows account %s, which is not one of the bank's", rep,
                              k);
                complete = 0;
            }
            if (bal < 0 && !opts->allow_negative)
                jp_result_add(r, "negative-balance", &rep, 1,
                              "op %zu read account %s with balance %" PRId64, rep, k, bal);
        }
        if (complete && total != INT64_MIN && sum != total)
            jp_result_add(r, "wrong-total", &rep, 1,
                          "op %zu's read sums to %" PRId64 ", not the conserved total %" PRId64,
                          rep, sum, total);
    }
    if (reads == 0 && r->valid == JP_VALID)
        jp_result_unknown(r, "no read completed ok: nothing to check");
    json_decref(accounts);
    return MR_OK;
}

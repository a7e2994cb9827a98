/* The bank workload's checker (Jepsen's bank test): transfers move money between accounts
 * inside transactions, and snapshot reads of every account must always see the same total
 * (transfers conserve money), no negative balance, and every account.
 *
 * History values: f "transfer" value {"from": A, "to": B, "amount": N} (accounts are strings
 * or integers); f "read" ok value {"A": balance, ...} (an object keyed by account). */
#ifndef JP_BANK_H
#define JP_BANK_H

#include <stdint.h>

#include "common/mr_err.h"
#include "jepsen/history.h"
#include "jepsen/result.h"

typedef struct jp_bank_opts {
    int has_total;
    int64_t total;         /* the conserved total; inferred from the reads when !has_total */
    const char **accounts; /* every account's name (integers as decimal text); NULL: inferred
                              as the union of accounts in reads and transfers */
    size_t naccounts;
    int allow_negative; /* negative balances are legal in this workload */
} jp_bank_opts;

/* Fills r (initialized here; the caller frees it). Returns 0 or MR_EINVAL (line-numbered). */
int jp_check_bank(const jp_history *h, const jp_bank_opts *opts, jp_result *r, mr_err *err);

#endif

/* meridian-check: checks a recorded history (JSON lines) against a consistency model and
 * prints the verdict. Exit status: 0 valid, 1 invalid, 2 unknown or a usage/input error. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mr_err.h"
#include "common/mr_util.h"
#include "jepsen/bank.h"
#include "jepsen/elle.h"
#include "jepsen/history.h"
#include "jepsen/linear.h"
#include "jepsen/result.h"
#include "jepsen/set.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: meridian-check --model register|list-append|bank|set [options] HISTORY.jsonl\n"
            "\n"
            "Checks a history of operations (JSON lines; see jepsen/README.md; \"-\" reads\n"
            "standard input) and prints a summary: operations checked, anomalies found and\n"
            "the operations involved.\n"
            "\n"
            "options:\n"
            "  --model M          register     linearizable registers (read, write, cas), per key\n"
            "                     list-append  Elle-style transactions, strict serializability\n"
            "                     bank         conserved total, no negative balances\n"
            "                     set          lost, unexpected and duplicated elements\n"
            "  --json             print the results as JSON instead of the text summary\n"
            "  --json-out FILE    also write the results as JSON to FILE\n"
            "  --edn FILE         also write the history as Jepsen-style EDN to FILE\n"
            "  --max-each N       anomalies shown per name in the summary (default 5)\n"
            "  --total N          bank: the conserved total (default: inferred from reads)\n"
            "  --accounts A,B,..  bank: every account (default: those seen in the history)\n"
            "  --allow-negative   bank: negative balances are legal\n"
            "  --max-cache-mb N   register: search cache per key before answering unknown\n"
            "                     (default 512)\n"
            "  --search-budget N  list-append: edge relaxations per cycle-class search in a\n"
            "                     component (default 2000000)\n"
            "  --help             this text\n"
            "\n"
            "exit status: 0 valid, 1 invalid, 2 unknown, or bad arguments or history\n");
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "meridian-check: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'meridian-check --help'.\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *path = NULL, *json_out = NULL, *edn_out = NULL;
    const char *accounts_arg = NULL;
    int json = 0;
    long long max_each = 5;
    jp_bank_opts bank = {0};
    jp_linear_opts lin = {0};
    jp_elle_opts elle = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_next = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--allow-negative") == 0) {
            bank.allow_negative = 1;
        } else if (strcmp(a, "--model") == 0 || strcmp(a, "--json-out") == 0 ||
                   strcmp(a, "--edn") == 0 || strcmp(a, "--max-each") == 0 ||
                   strcmp(a, "--total") == 0 || strcmp(a, "--accounts") == 0 ||
                   strcmp(a, "--max-cache-mb") == 0 || strcmp(a, "--search-budget") == 0) {
            if (!has_next)
                return usage_error("%s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--model") == 0)
                model = v;
            else if (strcmp(a, "--json-out") == 0)
                json_out = v;
            else if (strcmp(a, "--edn") == 0)
                edn_out = v;
            else if (strcmp(a, "--accounts") == 0)
                accounts_arg = v;
            else if (strcmp(a, "--max-each") == 0) {
                if (mr_parse_int(v, 0, 1000000, &max_each) < 0)
                    return usage_error("--max-each: not a count: %s", v);
            } else if (strcmp(a, "--max-cache-mb") == 0) {
                long long mb;
                if (mr_parse_int(v, 1, 1LL << 20, &mb) < 0)
                    return usage_error("--max-cache-mb: not a size in MiB (1..1048576): %s", v);
                lin.max_cache_bytes = (size_t)mb << 20;
            } else if (strcmp(a, "--search-budget") == 0) {
                long long b;
                if (mr_parse_int(v, 1, 1LL << 40, &b) < 0)
                    return usage_error("--search-budget: not a positive count: %s", v);
                elle.search_budget = (size_t)b;
            } else {
                long long t;
                if (mr_parse_int(v, -(1LL << 62), 1LL << 62, &t) < 0)
                    return usage_error("--total: not an integer: %s", v);
                bank.total = t;
                bank.has_total = 1;
            }
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option %s", a);
        } else if (path) {
            return usage_error("one history file only (extra argument %s)", a);
        } else {
            path = a;
        }
    }
    if (!model)
        return usage_error("%s", "--model is required (register, list-append, bank or set)");
    if (strcmp(model, "register") != 0 && strcmp(model, "list-append") != 0 &&
        strcmp(model, "bank") != 0 && strcmp(model, "set") != 0)
        return usage_error("unknown model %s (register, list-append, bank or set)", model);
    if (!path)
        return usage_error("%s", "a history file is required");

    char *accounts_buf = NULL;
    const char **accounts = NULL;
    if (accounts_arg) {
        accounts_buf = strdup(accounts_arg);
        size_t n = 1;
        for (const char *p = accounts_arg; *p; p++)
            n += *p == ',';
        accounts = calloc(n, sizeof *accounts);
        if (!accounts_buf || !accounts) {
            fprintf(stderr, "meridian-check: out of memory\n");
            return 2;
        }
        n = 0;
        char *save = NULL;
        for (char *tok = strtok_r(accounts_buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            accounts[n++] = tok;
        bank.accounts = accounts;
        bank.naccounts = n;
    }

    int status = 2;
    mr_err err;
    mr_err_clear(&err);
    jp_history h;
    jp_history_init(&h);
    jp_result r;
    jp_result_init(&r, model);
    int lrc =
        strcmp(path, "-") == 0 ? jp_history_read(&h, stdin, &err) : jp_history_load(&h, path, &err);
    if (lrc != MR_OK) {
        fprintf(stderr, "meridian-check: malformed history: %s\n", mr_err_msg(&err));
        goto out;
    }
    if (edn_out) {
        FILE *f = fopen(edn_out, "w");
        if (!f || jp_history_write_edn(&h, f, &err) != MR_OK || fclose(f) != 0) {
            fprintf(stderr, "meridian-check: cannot write %s: %s\n", edn_out,
                    err.code ? mr_err_msg(&err) : strerror(errno));
            goto out;
        }
    }
    int rc;
    if (strcmp(model, "register") == 0)
        rc = jp_check_register(&h, &lin, &r, &err);
    else if (strcmp(model, "list-append") == 0)
        rc = jp_check_list_append(&h, &elle, &r, &err);
    else if (strcmp(model, "bank") == 0)
        rc = jp_check_bank(&h, &bank, &r, &err);
    else
        rc = jp_check_set(&h, &r, &err);
    if (rc != MR_OK) {
        fprintf(stderr, "meridian-check: malformed history: %s: %s\n", path, mr_err_msg(&err));
        goto out;
    }
    json_t *j = NULL;
    if (json || json_out) {
        j = jp_result_to_json(&r);
        if (!j) {
            fprintf(stderr, "meridian-check: out of memory\n");
            goto out;
        }
    }
    if (json) {
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
    } else {
        printf("history: %s (%zu operations)\n", path, h.n);
        jp_result_print(&r, stdout, (size_t)max_each);
    }
    if (json_out && json_dump_file(j, json_out, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
        fprintf(stderr, "meridian-check: cannot write %s\n", json_out);
        json_decref(j);
        goto out;
    }
    json_decref(j);
    status = r.valid == JP_VALID ? 0 : r.valid == JP_INVALID ? 1 : 2;
out:
    jp_result_free(&r);
    jp_history_free(&h);
    free(accounts);
    free(accounts_buf);
    return status;
}

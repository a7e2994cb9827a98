/* bank: money moves between accounts in read-write transactions, and a
 * strong read-only transaction checks at the end that none was created or
 * lost. A small program against libmeridian, as an application would write
 * it: one connection per thread, meridian_run for every transfer.
 *
 *   bank --addrs 127.0.0.1:7101,127.0.0.1:7102 --certs certs --accounts 10 \
 *        --transfers 100 --threads 4
 *
 * Exit status: 0 the total is conserved, 1 it is not (or a balance went
 * negative), 2 bad usage, 3 the cluster could not be used. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meridian.h"

typedef struct bank_opts {
    const char *addrs, *certs, *prefix;
    int insecure, accounts, transfers, threads, spread;
    long long initial;
    unsigned seed;
} bank_opts;

typedef struct worker {
    const bank_opts *o;
    pthread_t tid;
    unsigned seed;
    int committed, skipped, failed, unknown;
} worker;

typedef struct transfer {
    const bank_opts *o;
    int from, to;
    long long amount;
    int moved; /* set by the callback: 0 when the source had too little */
} transfer;

static void usage(FILE *f)
{
    fprintf(f, "usage: bank --addrs HOST:PORT[,...] (--certs DIR | --insecure)\n"
               "            [--accounts N] [--initial N] [--transfers N] [--threads N]\n"
               "            [--prefix P] [--seed N] [--spread]\n"
               "Opens N accounts of --initial each (keys P/acctNNNN; with --spread\n"
               "L-P/acctNNNN, L a letter a..z by account, so the accounts span the key\n"
               "space and transfers become two-phase commits), runs --transfers\n"
               "random transfers per thread (each thread its own connection, each\n"
               "transfer a read-write transaction through meridian_run), then sums every\n"
               "account in a strong read-only transaction. Exits 0 when the total is\n"
               "conserved and no balance is negative, 1 otherwise.\n");
}

static int parse_args(int argc, char **argv, bank_opts *o)
{
    *o = (bank_opts){
        .prefix = "bank", .accounts = 10, .initial = 100, .transfers = 50, .threads = 2, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--insecure")) {
            o->insecure = 1;
            continue;
        } else if (!strcmp(a, "--spread")) {
            o->spread = 1;
            continue;
        } else if (!v) {
            fprintf(stderr, "bank: %s needs a value (or is unknown)\n", a);
            return -1;
        }
        i++;
        char *end = NULL;
        long long n = strtoll(v, &end, 10);
        bool num = *v && end && !*end && n >= 0;
        if (!strcmp(a, "--addrs"))
            o->addrs = v;
        else if (!strcmp(a, "--certs"))
            o->certs = v;
        else if (!strcmp(a, "--prefix"))
            o->prefix = v;
        else if (!strcmp(a, "--accounts") && num && n >= 2 && n <= 10000)
            o->accounts = (int)n;
        else if (!strcmp(a, "--initial") && num && n <= 1000000000)
            o->initial = n;
        else if (!strcmp(a, "--transfers") && num && n <= 1000000)
            o->transfers = (int)n;
        else if (!strcmp(a, "--threads") && num && n >= 1 && n <= 64)
            o->threads = (int)n;
        else if (!strcmp(a, "--seed") && num)
            o->seed = (unsigned)n;
        else {
            fprintf(stderr, "bank: bad option %s %s\n", a, v);
            return -1;
        }
    }
    if (!o->addrs || (!o->certs && !o->insecure)) {
        fprintf(stderr, "bank: give --addrs and --certs DIR (or --insecure)\n");
        return -1;
    }
    return 0;
}

static int open_conn(const bank_opts *o, meridian **db)
{
    meridian_options mo = {.addrs = o->addrs, .certs_dir = o->certs, .insecure = o->insecure};
    int rc = meridian_open(&mo, db);
    if (rc != MERIDIAN_OK) {
        fprintf(stderr, "bank: open %s: %s: %s\n", o->addrs, meridian_errstr(rc),
                meridian_errmsg(*db));
        meridian_close(*db);
        *db = NULL;
    }
    return rc;
}

static void account_key(const bank_opts *o, int i, char *buf, size_t len)
{
    if (o->spread)
        snprintf(buf, len, "%c-%s/acct%04d", 'a' + i * 26 / o->accounts, o->prefix, i);
    else
        snprintf(buf, len, "%s/acct%04d", o->prefix, i);
}

static int open_accounts(meridian_txn *t, void *arg)
{
    const bank_opts *o = arg;
    char k[128], v[32];
    snprintf(v, sizeof v, "%lld", o->initial);
    for (int i = 0; i < o->accounts; i++) {
        account_key(o, i, k, sizeof k);
        int rc = meridian_put(t, k, strlen(k), v, strlen(v));
        if (rc != MERIDIAN_OK)
            return rc;
    }
    return MERIDIAN_OK;
}

static int read_balance(meridian_txn *t, const bank_opts *o, int i, long long *out)
{
    char k[128];
    account_key(o, i, k, sizeof k);
    void *v;
    size_t vlen;
    int rc = meridian_get(t, k, strlen(k), &v, &vlen);
    if (rc == MERIDIAN_OK) {
        *out = v ? strtoll(v, NULL, 10) : 0;
        meridian_free(v);
    }
    return rc;
}

static int write_balance(meridian_txn *t, const bank_opts *o, int i, long long bal)
{
    char k[128], v[32];
    account_key(o, i, k, sizeof k);
    snprintf(v, sizeof v, "%lld", bal);
    return meridian_put(t, k, strlen(k), v, strlen(v));
}

/* The transaction body: meridian_run may call it several times. */
static int do_transfer(meridian_txn *t, void *arg)
{
    transfer *x = arg;
    long long a, b;
    int rc = read_balance(t, x->o, x->from, &a);
    if (rc == MERIDIAN_OK)
        rc = read_balance(t, x->o, x->to, &b);
    if (rc != MERIDIAN_OK)
        return rc;
    x->moved = a >= x->amount;
    if (!x->moved)
        return MERIDIAN_OK; /* commits the reads only */
    rc = write_balance(t, x->o, x->from, a - x->amount);
    return rc == MERIDIAN_OK ? write_balance(t, x->o, x->to, b + x->amount) : rc;
}

static void *work(void *arg)
{
    worker *w = arg;
    const bank_opts *o = w->o;
    meridian *db;
    if (open_conn(o, &db) != MERIDIAN_OK) {
        w->failed = o->transfers;
        return NULL;
    }
    for (int k = 0; k < o->transfers; k++) {
        transfer x = {.o = o,
                      .from = (int)(rand_r(&w->seed) % (unsigned)o->accounts),
                      .to = (int)(rand_r(&w->seed) % (unsigned)o->accounts),
                      .amount = 1 + rand_r(&w->seed) % 20};
        if (x.from == x.to)
            x.to = (x.to + 1) % o->accounts;
        int rc = meridian_run(db, 30000, do_transfer, &x, NULL);
        if (rc == MERIDIAN_OK) {
            w->committed += x.moved;
            w->skipped += !x.moved;
        } else if (rc == MERIDIAN_UNKNOWN) {
            w->unknown++; /* committed or not: either way the total holds */
        } else {
            w->failed++;
            fprintf(stderr, "bank: transfer %d -> %d: %s: %s\n", x.from, x.to, meridian_errstr(rc),
                    meridian_errmsg(db));
        }
    }
    meridian_close(db);
    return NULL;
}

typedef struct audit {
    const bank_opts *o;
    char mark[128]; /* what every account key contains */
    long long total;
    int rows, negative;
} audit;

static int audit_row(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    audit *a = arg;
    size_t ml = strlen(a->mark);
    bool mine = false;
    for (size_t i = 0; !mine && i + ml <= klen; i++)
        mine = memcmp((const char *)key + i, a->mark, ml) == 0;
    if (!mine)
        return 0;
    char buf[32];
    snprintf(buf, sizeof buf, "%.*s", (int)(vlen < 31 ? vlen : 31), (const char *)val);
    long long v = strtoll(buf, NULL, 10);
    a->total += v;
    a->negative += v < 0;
    a->rows++;
    return 0;
}

/* Sums every account at one timestamp (a strong read-only transaction; with
 * --spread a scan of the whole key space, across every group). */
static int check_total(meridian *db, const bank_opts *o, audit *a, int64_t *at)
{
    char start[128], end[128];
    snprintf(start, sizeof start, "%s/", o->prefix);
    snprintf(end, sizeof end, "%s0", o->prefix); /* '0' follows '/' */
    meridian_txn *t;
    int rc = meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t);
    if (rc != MERIDIAN_OK)
        return rc;
    *a = (audit){.o = o};
    snprintf(a->mark, sizeof a->mark, "%s%s/acct", o->spread ? "-" : "", o->prefix);
    if (o->spread)
        rc = meridian_scan(t, NULL, 0, NULL, 0, 0, audit_row, a);
    else
        rc = meridian_scan(t, start, strlen(start), end, strlen(end), 0, audit_row, a);
    *at = meridian_read_ts(t);
    int crc = meridian_commit(t, NULL);
    return rc != MERIDIAN_OK ? rc : crc;
}

int main(int argc, char **argv)
{
    bank_opts o;
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    meridian *db;
    if (open_conn(&o, &db) != MERIDIAN_OK)
        return 3;
    int64_t ts;
    int rc = meridian_run(db, 30000, open_accounts, &o, &ts);
    if (rc != MERIDIAN_OK) {
        fprintf(stderr, "bank: opening accounts: %s: %s\n", meridian_errstr(rc),
                meridian_errmsg(db));
        meridian_close(db);
        return 3;
    }
    printf("opened %d accounts of %lld at %lld\n", o.accounts, o.initial, (long long)ts);
    worker *ws = calloc((size_t)o.threads, sizeof *ws);
    int started = 0;
    for (int i = 0; ws && i < o.threads; i++) {
        ws[i] = (worker){.o = &o, .seed = o.seed * 7919u + (unsigned)i};
        started += pthread_create(&ws[i].tid, NULL, work, &ws[i]) == 0;
    }
    int committed = 0, skipped = 0, failed = 0, unknown = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(ws[i].tid, NULL);
        committed += ws[i].committed;
        skipped += ws[i].skipped;
        failed += ws[i].failed;
        unknown += ws[i].unknown;
    }
    free(ws);
    audit a;
    int64_t at = 0;
    rc = check_total(db, &o, &a, &at);
    meridian_close(db);
    printf("transfers: %d committed, %d skipped (too little money), %d failed, %d unknown\n",
           committed, skipped, failed, unknown);
    if (rc != MERIDIAN_OK) {
        fprintf(stderr, "bank: audit failed: %s\n", meridian_errstr(rc));
        return 3;
    }
    long long want = o.initial * o.accounts;
    printf("audit at %lld: %d accounts, total %lld (expected %lld), %d negative\n", (long long)at,
           a.rows, a.total, want, a.negative);
    if (a.rows != o.accounts || a.total != want || a.negative) {
        printf("VIOLATION: money was created or lost\n");
        return 1;
    }
    printf("ok: total conserved\n");
    return started == o.threads && committed + skipped > 0 ? 0 : 3;
}

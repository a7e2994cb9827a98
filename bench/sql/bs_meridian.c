/* bench-sql's Meridian: a local cluster started by the launcher (launch/cluster.h: `nodes`
 * `meridian start` processes, mutual TLS, lease 1 s, a fixed 1 ms clock bound, one data group
 * on every node) and two systems over it, each client its own meridian* connection:
 *  - meridian-sql: an msql session (sql/sql.h) per client, which prepares the five statements
 *    once (parameter ?1, as the SQLite and PostgreSQL clients do) and for each operation
 *    resets one, binds its argument and steps it; with prepare off (bench-sql --no-prepare)
 *    each operation prepares the statement's text with the argument in it, steps it and
 *    finalizes it, as before the session had bind parameters;
 *  - meridian-kv: the same rows through libmeridian directly: a point select is a strong
 *    read-only transaction with one meridian_get of the row's key (what the SQL session's
 *    autocommit read does), a point insert a meridian_run with one meridian_put (what its
 *    autocommit write does) of a key of table ins_kv (ins's twin) holding a row value the
 *    engine wrote; a 100-row scan a strong read-only transaction with one meridian_scan of
 *    the rows' key range. The keys are the engine's own (0x02 int(table id) int(id),
 *    sql/README.md): the table ids are read from the catalog, and load checks that a
 *    computed key finds its row. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench/sql/bs.h"
#include "launch/cluster.h"
#include "meridian.h"
#include "sql/sq_key.h"
#include "sql/sql.h"

#define LOAD_BATCH 200 /* rows per INSERT statement while loading */

struct bs_meridian {
    lc_cluster cl;
    bool keep, loaded;
    int64_t timeout_ms;
    char schema_lease[32];
    bool prepare; /* meridian-sql prepares each statement once per client and binds */
    meridian *db; /* the driver's own connection and session: load and checks */
    msql *s;
    uint8_t accounts_pfx[16], inskv_pfx[16]; /* 0x02 int(table id) */
    size_t accounts_len, inskv_len;
    void *tmpl; /* a row value of ins_kv the engine wrote (raw inserts write it) */
    size_t tmpl_len;
};

typedef struct sql_client {
    bs_meridian *m;
    meridian *db;
    msql *s;
    msql_stmt *st[BS_CASES]; /* prepared once (prepare on) */
} sql_client;

static int open_db(bs_meridian *m, meridian **db, mr_err *err)
{
    meridian_options o = {
        .addrs = m->cl.addrs, .certs_dir = m->cl.client_certs, .timeout_ms = m->timeout_ms};
    *db = NULL;
    int rc = meridian_open(&o, db);
    if (rc != MERIDIAN_OK) {
        mr_errf(err, MR_EUNAVAIL, "meridian_open: %s: %s", meridian_errstr(rc),
                *db ? meridian_errmsg(*db) : "");
        if (*db)
            meridian_close(*db);
        *db = NULL;
        return MR_EUNAVAIL;
    }
    return MR_OK;
}

static int open_session(bs_meridian *m, meridian **db, msql **s, mr_err *err)
{
    int rc = open_db(m, db, err);
    if (rc != MR_OK)
        return rc;
    int src = msql_open(*db, s);
    if (src != MSQL_OK) {
        mr_errf(err, MR_EIO, "msql_open: %s", *s ? msql_errmsg(*s) : "out of memory");
        if (*s)
            msql_close(*s);
        meridian_close(*db);
        *s = NULL;
        *db = NULL;
        return MR_EIO;
    }
    return MR_OK;
}

static int exec_sql(bs_meridian *m, const char *sql, mr_err *err)
{
    int rc = msql_exec(m->s, sql);
    if (rc != MSQL_OK)
        return mr_errf(err, MR_EIO, "%.80s...: %s", sql, msql_errmsg(m->s));
    return MR_OK;
}

/* One integer from a query of the driver's session. */
static int query_int(bs_meridian *m, const char *sql, int64_t *out, mr_err *err)
{
    msql_stmt *st = NULL;
    int rc = msql_prepare(m->s, sql, -1, &st, NULL);
    if (rc == MSQL_OK && !st)
        rc = MSQL_ERROR;
    if (rc == MSQL_OK) {
        rc = msql_step(st);
        if (rc == MSQL_ROW) {
            *out = sqlite3_value_int64(msql_column_value(st, 0));
            rc = msql_step(st) == MSQL_DONE ? MSQL_OK : MSQL_ERROR;
        } else if (rc == MSQL_DONE) {
            rc = MSQL_ERROR;
        }
    }
    msql_finalize(st);
    if (rc != MSQL_OK)
        return mr_errf(err, MR_EIO, "%s: %s", sql, msql_errmsg(m->s));
    return MR_OK;
}

/* The table's row prefix 0x02 int(id), its id read from its catalog descriptor (0x01 0x03
 * name: JSON with "id"). */
static int table_prefix(bs_meridian *m, const char *name, uint8_t *pfx, size_t *len, mr_err *err)
{
    char key[64];
    key[0] = 0x01;
    key[1] = 0x03;
    size_t kl = 2 + (size_t)snprintf(key + 2, sizeof key - 2, "%s", name);
    meridian_txn *t = NULL;
    void *v = NULL;
    size_t vl = 0;
    int rc = meridian_begin_ro(m->db, MERIDIAN_STRONG, 0, &t);
    if (rc == MERIDIAN_OK)
        rc = meridian_get(t, key, kl, &v, &vl);
    if (t)
        (void)meridian_commit(t, NULL);
    if (rc != MERIDIAN_OK)
        return mr_errf(err, MR_EIO, "reading the descriptor of %s: %s: %s", name,
                       meridian_errstr(rc), meridian_errmsg(m->db));
    json_error_t je;
    json_t *j = json_loadb(v, vl, 0, &je);
    meridian_free(v);
    json_t *id = j ? json_object_get(j, "id") : NULL;
    if (!json_is_integer(id)) {
        json_decref(j);
        return mr_errf(err, MR_EIO, "the descriptor of %s has no id", name);
    }
    sq_buf b = {0};
    uint8_t data = 0x02;
    int brc = sq_buf_put(&b, &data, 1) || sq_key_append_int(&b, json_integer_value(id), 0);
    json_decref(j);
    if (brc || b.len > 16) {
        sq_buf_free(&b);
        return mr_errf(err, MR_EIO, "encoding the prefix of %s", name);
    }
    memcpy(pfx, b.p, b.len);
    *len = b.len;
    sq_buf_free(&b);
    return MR_OK;
}

/* pfx followed by int(id): the key of the row whose INTEGER PRIMARY KEY is id. */
static int row_key(const uint8_t *pfx, size_t plen, int64_t id, uint8_t *key, size_t *klen)
{
    sq_buf b = {0};
    int rc = sq_buf_put(&b, pfx, plen) || sq_key_append_int(&b, id, 0);
    if (rc || b.len > 40) {
        sq_buf_free(&b);
        return MERIDIAN_NOMEM;
    }
    memcpy(key, b.p, b.len);
    *klen = b.len;
    sq_buf_free(&b);
    return MERIDIAN_OK;
}

/* A strong read of one key: MERIDIAN_OK (found), MERIDIAN_NOTFOUND, or an error. *val
 * (optional) gets the value. */
static int kv_get(meridian *db, const uint8_t *key, size_t klen, void **val, size_t *vlen)
{
    meridian_txn *t = NULL;
    void *v = NULL;
    size_t vl = 0;
    int rc = meridian_begin_ro(db, MERIDIAN_STRONG, 0, &t);
    if (rc == MERIDIAN_OK)
        rc = meridian_get(t, key, klen, &v, &vl);
    if (t) {
        int crc = meridian_commit(t, NULL);
        if (rc == MERIDIAN_OK || rc == MERIDIAN_NOTFOUND)
            rc = crc == MERIDIAN_OK ? rc : crc;
    }
    if (rc == MERIDIAN_OK && val) {
        *val = v;
        *vlen = vl;
    } else {
        meridian_free(v);
    }
    return rc;
}

static int mer_load(void *sys, const bs_data *d, mr_err *err)
{
    bs_meridian *m = sys;
    if (m->loaded)
        return MR_OK;
    /* each schema change waits out the schema lease: the tables are made under
     * a short one; the statements run with --schema-lease (1 s, the default) */
    int rc = exec_sql(m,
                      "SET CLUSTER SETTING schema_lease = '10ms';"
                      "CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT);"
                      "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner INTEGER, "
                      "balance INTEGER, name TEXT);"
                      "CREATE TABLE ins (id INTEGER PRIMARY KEY, owner INTEGER, balance INTEGER, "
                      "name TEXT);"
                      "CREATE TABLE ins_kv (id INTEGER PRIMARY KEY, owner INTEGER, "
                      "balance INTEGER, name TEXT);",
                      err);
    char set[96];
    snprintf(set, sizeof set, "SET CLUSTER SETTING schema_lease = '%s'", m->schema_lease);
    if (rc == MR_OK)
        rc = exec_sql(m, set, err);
    size_t cap = (size_t)LOAD_BATCH * 64 + 128;
    char *sql = malloc(cap);
    if (!sql)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    for (int64_t i = 0; rc == MR_OK && i < d->nowners; i += LOAD_BATCH) {
        size_t off = (size_t)snprintf(sql, cap, "INSERT INTO owners VALUES ");
        for (int64_t k = i; k < i + LOAD_BATCH && k < d->nowners; k++)
            off += (size_t)snprintf(sql + off, cap - off, "%s(%lld, 'owner-%lld')",
                                    k > i ? "," : "", (long long)k, (long long)k);
        rc = exec_sql(m, sql, err);
    }
    for (int64_t i = 0; rc == MR_OK && i < d->naccounts; i += LOAD_BATCH) {
        size_t off = (size_t)snprintf(sql, cap, "INSERT INTO accounts VALUES ");
        for (int64_t k = i; k < i + LOAD_BATCH && k < d->naccounts; k++)
            off += (size_t)snprintf(sql + off, cap - off, "%s(%lld, %lld, 1000, 'account-%lld')",
                                    k > i ? "," : "", (long long)k, (long long)(k % d->nowners),
                                    (long long)k);
        rc = exec_sql(m, sql, err);
    }
    free(sql);
    /* The raw system's keys and its row value. */
    if (rc == MR_OK)
        rc = exec_sql(m, "INSERT INTO ins_kv VALUES (-1, 0, 1000, 'ins--1')", err);
    if (rc == MR_OK)
        rc = table_prefix(m, "accounts", m->accounts_pfx, &m->accounts_len, err);
    if (rc == MR_OK)
        rc = table_prefix(m, "ins_kv", m->inskv_pfx, &m->inskv_len, err);
    uint8_t key[64];
    size_t kl = 0;
    if (rc == MR_OK) {
        row_key(m->inskv_pfx, m->inskv_len, -1, key, &kl);
        int grc = kv_get(m->db, key, kl, &m->tmpl, &m->tmpl_len);
        if (grc != MERIDIAN_OK)
            rc = mr_errf(err, MR_EIO, "ins_kv's row -1 is not at the key computed for it: %s",
                         meridian_errstr(grc));
    }
    if (rc == MR_OK) {
        row_key(m->accounts_pfx, m->accounts_len, d->naccounts - 1, key, &kl);
        int grc = kv_get(m->db, key, kl, NULL, NULL);
        row_key(m->accounts_pfx, m->accounts_len, d->naccounts, key, &kl);
        int grc2 = kv_get(m->db, key, kl, NULL, NULL);
        if (grc != MERIDIAN_OK || grc2 != MERIDIAN_NOTFOUND)
            rc =
                mr_errf(err, MR_EIO, "the computed keys of accounts do not match its rows (%s, %s)",
                        meridian_errstr(grc), meridian_errstr(grc2));
    }
    m->loaded = rc == MR_OK;
    return rc;
}

static void sql_close(void *client);

static int sql_open(void *sys, void **out, mr_err *err)
{
    sql_client *c = calloc(1, sizeof *c);
    if (!c)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    c->m = sys;
    int rc = open_session(c->m, &c->db, &c->s, err);
    if (rc != MR_OK) {
        free(c);
        return rc;
    }
    for (int k = 0; c->m->prepare && k < BS_CASES; k++) {
        if (msql_prepare(c->s, bs_case_sql[k], -1, &c->st[k], NULL) != MSQL_OK || !c->st[k]) {
            rc = mr_errf(err, MR_EIO, "preparing %s: %s", bs_case_sql[k], msql_errmsg(c->s));
            sql_close(c);
            return rc;
        }
    }
    *out = c;
    return MR_OK;
}

static int sql_op(void *client, bs_case k, int64_t a, bs_result *r)
{
    sql_client *c = client;
    msql_stmt *st = NULL;
    r->rows = 0;
    int rc;
    if (c->st[k]) {
        st = c->st[k];
        rc = msql_reset(st);
        if (rc == MSQL_OK)
            rc = msql_bind_int64(st, 1, a);
    } else {
        char sql[256];
        bs_sql(k, a, sql, sizeof sql);
        rc = msql_prepare(c->s, sql, -1, &st, NULL);
        if (rc == MSQL_OK && !st)
            rc = MSQL_ERROR;
    }
    if (rc == MSQL_OK) {
        while ((rc = msql_step(st)) == MSQL_ROW)
            r->rows++;
        if (rc == MSQL_DONE)
            rc = MSQL_OK;
    }
    if (st != c->st[k])
        msql_finalize(st);
    if (rc == MSQL_OK)
        return MR_OK;
    r->unknown = rc == MSQL_UNKNOWN;
    snprintf(r->msg, sizeof r->msg, "%s", msql_errmsg(c->s));
    return rc == MSQL_RETRY ? MR_EABORTED : MR_EIO;
}

static void sql_close(void *client)
{
    sql_client *c = client;
    if (!c)
        return;
    for (int k = 0; k < BS_CASES; k++)
        msql_finalize(c->st[k]);
    msql_close(c->s);
    meridian_close(c->db);
    free(c);
}

static int mer_count_ins(void *sys, const char *table, int64_t lo, int64_t hi, int64_t *n,
                         mr_err *err)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE id >= %lld AND id < %lld", table,
             (long long)lo, (long long)hi);
    return query_int(sys, sql, n, err);
}

static int sql_count_ins(void *sys, int64_t lo, int64_t hi, int64_t *n, mr_err *err)
{
    return mer_count_ins(sys, "ins", lo, hi, n, err);
}

static int kv_count_ins(void *sys, int64_t lo, int64_t hi, int64_t *n, mr_err *err)
{
    return mer_count_ins(sys, "ins_kv", lo, hi, n, err);
}

static int mer_sum(void *sys, int64_t *sum, mr_err *err)
{
    return query_int(sys, "SELECT sum(balance) FROM accounts", sum, err);
}

typedef struct kv_client {
    bs_meridian *m;
    meridian *db;
} kv_client;

static int kv_open(void *sys, void **out, mr_err *err)
{
    kv_client *c = calloc(1, sizeof *c);
    if (!c)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    c->m = sys;
    int rc = open_db(c->m, &c->db, err);
    if (rc != MR_OK) {
        free(c);
        return rc;
    }
    *out = c;
    return MR_OK;
}

typedef struct put_one {
    const uint8_t *key;
    size_t klen;
    const void *val;
    size_t vlen;
} put_one;

static int put_fn(meridian_txn *t, void *arg)
{
    const put_one *p = arg;
    return meridian_put(t, p->key, p->klen, p->val, p->vlen);
}

static int count_row(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key;
    (void)klen;
    (void)val;
    (void)vlen;
    ++*(int64_t *)arg;
    return 0;
}

static int kv_op(void *client, bs_case k, int64_t a, bs_result *r)
{
    kv_client *c = client;
    uint8_t key[64];
    size_t kl = 0;
    int rc;
    r->rows = 0;
    if (k == BS_SELECT) {
        row_key(c->m->accounts_pfx, c->m->accounts_len, a, key, &kl);
        void *v = NULL;
        size_t vl = 0;
        rc = kv_get(c->db, key, kl, &v, &vl);
        meridian_free(v);
        if (rc == MERIDIAN_OK)
            r->rows = 1;
        if (rc == MERIDIAN_NOTFOUND)
            rc = MERIDIAN_OK;
    } else if (k == BS_INSERT) {
        row_key(c->m->inskv_pfx, c->m->inskv_len, a, key, &kl);
        put_one p = {key, kl, c->m->tmpl, c->m->tmpl_len};
        rc = meridian_run(c->db, 30000, put_fn, &p, NULL); /* the SQL autocommit's deadline */
    } else if (k == BS_SCAN) {
        uint8_t end[64];
        size_t el = 0;
        row_key(c->m->accounts_pfx, c->m->accounts_len, a, key, &kl);
        row_key(c->m->accounts_pfx, c->m->accounts_len, a + BS_SCAN_ROWS, end, &el);
        meridian_txn *t = NULL;
        rc = meridian_begin_ro(c->db, MERIDIAN_STRONG, 0, &t);
        if (rc == MERIDIAN_OK)
            rc = meridian_scan(t, key, kl, end, el, 0, count_row, &r->rows);
        if (t) {
            int crc = meridian_commit(t, NULL);
            rc = rc == MERIDIAN_OK ? crc : rc;
        }
    } else {
        snprintf(r->msg, sizeof r->msg, "meridian-kv does not run %s", bs_case_names[k]);
        return MR_EINVAL;
    }
    if (rc == MERIDIAN_OK)
        return MR_OK;
    r->unknown = rc == MERIDIAN_UNKNOWN;
    snprintf(r->msg, sizeof r->msg, "%s: %s", meridian_errstr(rc), meridian_errmsg(c->db));
    return MR_EIO;
}

static void kv_close(void *client)
{
    kv_client *c = client;
    if (!c)
        return;
    meridian_close(c->db);
    free(c);
}

int bs_meridian_start(const char *bin, int nodes, const char *keep_dir, int64_t timeout_ms,
                      const char *schema_lease, bool prepare, bs_meridian **out, mr_err *err)
{
    if (keep_dir && mkdir(keep_dir, 0755) != 0 && errno != EEXIST)
        return mr_errf(err, MR_EIO, "cannot make %s: %s", keep_dir, strerror(errno));
    bs_meridian *m = calloc(1, sizeof *m);
    if (!m)
        return mr_errf(err, MR_ENOMEM, "out of memory");
    m->keep = keep_dir != NULL;
    m->timeout_ms = timeout_ms;
    m->prepare = prepare;
    snprintf(m->schema_lease, sizeof m->schema_lease, "%s", schema_lease ? schema_lease : "1s");
    lc_opts lo = {.bin = bin,
                  .dir = keep_dir,
                  .prefix = "meridian-sqlbench",
                  .nodes = nodes,
                  .client_dir = true,
                  .lease = "1s",
                  .clock = "fixed:1ms",
                  .clock_cap = "10ms"};
    int leader[3];
    int rc = lc_setup(&m->cl, &lo, err);
    if (rc == MR_OK)
        rc = lc_start_all(&m->cl, err);
    if (rc == MR_OK)
        rc = lc_wait_up(&m->cl, 30000, err);
    if (rc == MR_OK)
        rc = lc_init(&m->cl, 1, 0, NULL, err);
    if (rc == MR_OK)
        rc = lc_wait_leaders(&m->cl, leader, 2, 30000, err);
    if (rc == MR_OK)
        rc = open_session(m, &m->db, &m->s, err);
    if (rc != MR_OK) {
        mr_err_wrap(err, "the meridian cluster");
        lc_destroy(&m->cl, m->keep);
        free(m);
        return rc;
    }
    *out = m;
    return MR_OK;
}

void bs_meridian_systems(bs_meridian *m, bs_system *sql, bs_system *kv)
{
    *sql = (bs_system){.name = "meridian-sql",
                       .cases = {true, true, true, true, true},
                       .load = mer_load,
                       .open = sql_open,
                       .op = sql_op,
                       .count_ins = sql_count_ins,
                       .sum_balance = mer_sum,
                       .close = sql_close,
                       .sys = m};
    *kv = (bs_system){.name = "meridian-kv",
                      .cases = {[BS_SELECT] = true, [BS_INSERT] = true, [BS_SCAN] = true},
                      .load = mer_load,
                      .open = kv_open,
                      .op = kv_op,
                      .count_ins = kv_count_ins,
                      .sum_balance = mer_sum,
                      .close = kv_close,
                      .sys = m};
}

const char *bs_meridian_dir(const bs_meridian *m)
{
    return m->cl.dir;
}

void bs_meridian_stop(bs_meridian *m)
{
    if (!m)
        return;
    if (m->s)
        msql_close(m->s);
    if (m->db)
        meridian_close(m->db);
    meridian_free(m->tmpl);
    lc_destroy(&m->cl, m->keep);
    free(m);
}

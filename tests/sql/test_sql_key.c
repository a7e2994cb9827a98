/* The SQL key encoding (sql/sq_key.h) against SQLite itself: for random and
 * edge values, single and as 2-3 column tuples in ASC and DESC, the sign of
 * memcmp of the encodings must equal the sign of SQLite's comparison (computed
 * by an in-memory sqlite3: `?1 IS ?2`, `?1 < ?2` and an ORDER BY), decoding must
 * give back an equal value of the expected type whose encoding is the same
 * bytes, no encoding may start with 0x00 or 0xFF, and garbage must be refused
 * (or, when accepted, be a canonical encoding). The seed is printed; set
 * SQ_KEY_SEED to replay one. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sql/sq_key.h"
#include "tests/test.h"

static sqlite3 *db;
static sqlite3_stmt *st_value, *st_cmp, *st_dec;
static uint64_t rng;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static unsigned below(unsigned n)
{
    return (unsigned)(next() % n);
}

/* kdec(blob, desc): sq_key_decode of the whole blob, an error unless it uses every byte. */
static void fn_kdec(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const uint8_t *p = sqlite3_value_blob(argv[0]);
    size_t n = (size_t)sqlite3_value_bytes(argv[0]), used = 0;
    int rc = sq_key_decode(p ? p : (const uint8_t *)"", n, sqlite3_value_int(argv[1]), ctx, &used);
    if (rc != 0)
        sqlite3_result_error_code(ctx, rc);
    else if (used != n)
        sqlite3_result_error(ctx, "kdec: trailing bytes", -1);
}

static void teardown(void)
{
    sqlite3_finalize(st_value);
    sqlite3_finalize(st_cmp);
    sqlite3_finalize(st_dec);
    sqlite3_close(db);
    db = NULL;
}

static int setup(void)
{
    if (db)
        return 0;
    const char *env = getenv("SQ_KEY_SEED");
    rng = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
    if (!rng)
        rng = 1;
    printf("seed %" PRIu64 " (SQ_KEY_SEED=%" PRIu64 " replays it)\n", rng, rng);
    atexit(teardown);
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_create_function(db, "kdec", 2, SQLITE_UTF8, NULL, fn_kdec, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT ?1", -1, &st_value, NULL) != SQLITE_OK ||
        /* equal?, less? (NULL when either is NULL), and which sorts first in SQLite's sorter */
        sqlite3_prepare_v2(db,
                           "SELECT ?1 IS ?2, ?1 < ?2, (SELECT k FROM (SELECT 1 AS k, ?1 AS x "
                           "UNION ALL SELECT 2, ?2) ORDER BY x, k LIMIT 1)",
                           -1, &st_cmp, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT kdec(?1, ?2)", -1, &st_dec, NULL) != SQLITE_OK) {
        fprintf(stderr, "setup: %s\n", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

/* ---- values ---- */

/* A value made by SQLite from a binding (so NaN becomes NULL as SQLite makes it). */
typedef enum { V_NULL, V_INT, V_REAL, V_TEXT, V_BLOB } vkind;

static sqlite3_value *make(vkind k, int64_t i, double d, const uint8_t *s, int n)
{
    switch (k) {
    case V_INT:
        sqlite3_bind_int64(st_value, 1, i);
        break;
    case V_REAL:
        sqlite3_bind_double(st_value, 1, d);
        break;
    case V_TEXT:
        sqlite3_bind_text(st_value, 1, (const char *)s, n, SQLITE_TRANSIENT);
        break;
    case V_BLOB:
        sqlite3_bind_blob(st_value, 1, n ? (const void *)s : "", n, SQLITE_TRANSIENT);
        break;
    default:
        sqlite3_bind_null(st_value, 1);
    }
    sqlite3_value *v = NULL;
    if (sqlite3_step(st_value) == SQLITE_ROW)
        v = sqlite3_value_dup(sqlite3_column_value(st_value, 0));
    sqlite3_reset(st_value);
    sqlite3_clear_bindings(st_value);
    return v;
}

static const int64_t edge_ints[] = {0,
                                    1,
                                    -1,
                                    2,
                                    100,
                                    -100,
                                    INT64_MAX,
                                    INT64_MAX - 1,
                                    INT64_MAX - 1023,
                                    INT64_MAX - 1024,
                                    INT64_MIN,
                                    INT64_MIN + 1,
                                    INT64_MIN + 1024,
                                    (INT64_C(1) << 53),
                                    (INT64_C(1) << 53) + 1,
                                    (INT64_C(1) << 53) - 1,
                                    (INT64_C(1) << 53) + 2,
                                    (INT64_C(1) << 53) + 3,
                                    -(INT64_C(1) << 53),
                                    -(INT64_C(1) << 53) + 1,
                                    -(INT64_C(1) << 53) - 1,
                                    -(INT64_C(1) << 53) - 3,
                                    (INT64_C(1) << 62),
                                    (INT64_C(1) << 62) + 511,
                                    (INT64_C(1) << 62) - 1,
                                    -(INT64_C(1) << 62) - 1};

static const double edge_reals[] = {0.0,
                                    -0.0,
                                    INFINITY,
                                    -INFINITY,
                                    0.5,
                                    -0.5,
                                    1.0,
                                    -1.0,
                                    1.5,
                                    9007199254740992.0,
                                    9007199254740994.0,
                                    -9007199254740992.0,
                                    9223372036854775808.0,
                                    -9223372036854775808.0,
                                    9223372036854774784.0,
                                    4611686018427387904.0,
                                    DBL_MAX,
                                    -DBL_MAX,
                                    DBL_MIN,
                                    -DBL_MIN,
                                    5e-324,
                                    -5e-324,
                                    1e300,
                                    -1e-300,
                                    NAN};

static const uint8_t alphabet[] = {0x00, 0x01, 0x02, 'a', 'b', 0x7F, 0x80, 0xFE, 0xFF};

static double random_real(void)
{
    switch (below(4)) {
    case 0: { /* any bits (NaN becomes NULL through SQLite) */
        uint64_t u = next();
        double d;
        memcpy(&d, &u, sizeof d);
        return d;
    }
    case 1:
        return (double)(int64_t)(next() >> below(64)) * (below(2) ? 1 : -1);
    case 2:
        return (double)(int)below(20) - 10 + (below(2) ? 0.5 : 0.0);
    default:
        return edge_reals[below(sizeof edge_reals / sizeof edge_reals[0])];
    }
}

static int64_t random_int(void)
{
    switch (below(4)) {
    case 0:
        return (int64_t)next();
    case 1:
        return (int64_t)(next() >> (1 + below(63))) * (below(2) ? 1 : -1);
    case 2:
        return (int64_t)below(21) - 10;
    default:
        return edge_ints[below(sizeof edge_ints / sizeof edge_ints[0])];
    }
}

static sqlite3_value *random_value(void)
{
    uint8_t s[8];
    int n = (int)below(7);
    for (int i = 0; i < n; i++)
        s[i] = alphabet[below(sizeof alphabet)];
    switch (below(10)) {
    case 0:
        return make(V_NULL, 0, 0, NULL, 0);
    case 1:
    case 2:
        return make(V_INT, random_int(), 0, NULL, 0);
    case 3:
    case 4:
        return make(V_REAL, 0, random_real(), NULL, 0);
    case 5:
    case 6:
        return make(V_TEXT, 0, 0, s, n);
    default:
        return make(V_BLOB, 0, 0, s, n);
    }
}

/* A value near v: the same number as the other type, one more or less, the same
 * bytes as the other type, or one byte longer/shorter; often equal to v. */
static sqlite3_value *near_value(sqlite3_value *v)
{
    int t = sqlite3_value_type(v);
    if (t == SQLITE_INTEGER) {
        int64_t i = sqlite3_value_int64(v);
        switch (below(3)) {
        case 0:
            return make(V_REAL, 0, (double)i, NULL, 0);
        case 1:
            return make(V_INT, i + (i < INT64_MAX ? 1 : 0), 0, NULL, 0);
        default:
            return make(V_INT, i - (i > INT64_MIN ? 1 : 0), 0, NULL, 0);
        }
    }
    if (t == SQLITE_FLOAT) {
        double d = sqlite3_value_double(v);
        switch (below(3)) {
        case 0:
            if (d >= -9223372036854775808.0 && d < 9223372036854775808.0)
                return make(V_INT, (int64_t)d, 0, NULL, 0);
            return make(V_REAL, 0, -d, NULL, 0);
        case 1:
            return make(V_REAL, 0, nextafter(d, INFINITY), NULL, 0);
        default:
            return make(V_REAL, 0, nextafter(d, -INFINITY), NULL, 0);
        }
    }
    if (t == SQLITE_TEXT || t == SQLITE_BLOB) {
        uint8_t s[16];
        const uint8_t *p = sqlite3_value_blob(v);
        int n = sqlite3_value_bytes(v);
        if (n >= (int)sizeof s)
            n = (int)sizeof s - 1;
        memcpy(s, p ? p : (const uint8_t *)"", (size_t)n);
        vkind k = t == SQLITE_TEXT ? V_TEXT : V_BLOB;
        switch (below(4)) {
        case 0:
            return make(k == V_TEXT ? V_BLOB : V_TEXT, 0, 0, s, n);
        case 1:
            if (n + 1 >= (int)sizeof s)
                return make(k, 0, 0, s, n);
            s[n] = alphabet[below(sizeof alphabet)];
            return make(k, 0, 0, s, n + 1);
        case 2:
            return make(k, 0, 0, s, n > 0 ? n - 1 : 0);
        default:
            return make(k, 0, 0, s, n);
        }
    }
    return random_value();
}

static char *describe(sqlite3_value *v, char *buf, size_t len)
{
    switch (sqlite3_value_type(v)) {
    case SQLITE_NULL:
        snprintf(buf, len, "NULL");
        break;
    case SQLITE_INTEGER:
        snprintf(buf, len, "%" PRId64, (int64_t)sqlite3_value_int64(v));
        break;
    case SQLITE_FLOAT:
        snprintf(buf, len, "%.17g (real)", sqlite3_value_double(v));
        break;
    default: {
        const uint8_t *p = sqlite3_value_blob(v);
        int n = sqlite3_value_bytes(v);
        size_t o = (size_t)snprintf(buf, len, "%s x'",
                                    sqlite3_value_type(v) == SQLITE_TEXT ? "text" : "blob");
        for (int i = 0; i < n && o + 4 < len; i++)
            o += (size_t)snprintf(buf + o, len - o, "%02x", p[i]);
        snprintf(buf + o, len - o, "'");
    }
    }
    return buf;
}

/* ---- the oracle ---- */

/* SQLite's comparison of a and b: -1, 0 or 1 (-2 when the statement failed or
 * SQLite disagrees with itself). */
static int sqlite_cmp(sqlite3_value *a, sqlite3_value *b)
{
    sqlite3_bind_value(st_cmp, 1, a);
    sqlite3_bind_value(st_cmp, 2, b);
    int r = -2;
    if (sqlite3_step(st_cmp) == SQLITE_ROW) {
        int eq = sqlite3_column_int(st_cmp, 0);
        int first = sqlite3_column_int(st_cmp, 2);
        r = eq ? 0 : first == 1 ? -1 : 1;
        if (sqlite3_column_type(st_cmp, 1) != SQLITE_NULL && !eq &&
            sqlite3_column_int(st_cmp, 1) != (r < 0))
            r = -2;
    }
    sqlite3_reset(st_cmp);
    return r;
}

static int sign(int c)
{
    return (c > 0) - (c < 0);
}

static int bytes_cmp(const sq_buf *a, const sq_buf *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->p, b->p, n);
    if (c == 0)
        c = (a->len > b->len) - (a->len < b->len);
    return sign(c);
}

static int encode(sq_buf *b, sqlite3_value *v, int desc)
{
    return sq_key_append(b, v, desc);
}

/* Checks one value: first byte, decoding, type, equality and canonical re-encoding.
 * Returns 0 or a message in msg. */
static int check_value(sqlite3_value *v, int desc, char *msg, size_t len)
{
    char d1[128];
    sq_buf b = {0}, b2 = {0};
    int rc = encode(&b, v, desc);
    if (rc != 0) {
        snprintf(msg, len, "encode %s: rc %d", describe(v, d1, sizeof d1), rc);
        goto out;
    }
    rc = -1;
    if (b.len == 0 || b.p[0] == 0x00 || b.p[0] == SQ_KEY_INTERLEAVE) {
        snprintf(msg, len, "%s %s encodes to a reserved first byte", describe(v, d1, sizeof d1),
                 desc ? "DESC" : "ASC");
        goto out;
    }
    sqlite3_bind_blob(st_dec, 1, b.p, (int)b.len, SQLITE_STATIC);
    sqlite3_bind_int(st_dec, 2, desc);
    if (sqlite3_step(st_dec) != SQLITE_ROW) {
        snprintf(msg, len, "decode %s: %s", describe(v, d1, sizeof d1), sqlite3_errmsg(db));
        goto reset;
    }
    sqlite3_value *got = sqlite3_column_value(st_dec, 0);
    int want = sqlite3_value_type(v);
    if (want == SQLITE_FLOAT) {
        double d = sqlite3_value_double(v);
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == floor(d))
            want = SQLITE_INTEGER;
    }
    char d2[128];
    if (sqlite3_value_type(got) != want || sqlite_cmp(got, v) != 0) {
        snprintf(msg, len, "%s decodes to %s (type %d, want %d)", describe(v, d1, sizeof d1),
                 describe(got, d2, sizeof d2), sqlite3_value_type(got), want);
        goto reset;
    }
    if (encode(&b2, got, desc) != 0 || bytes_cmp(&b, &b2) != 0) {
        snprintf(msg, len, "%s re-encodes differently after decoding", describe(v, d1, sizeof d1));
        goto reset;
    }
    rc = 0;
reset:
    sqlite3_reset(st_dec);
out:
    sq_buf_free(&b);
    sq_buf_free(&b2);
    return rc;
}

/* ---- tests ---- */

TEST(pairs_match_sqlite)
{
    CHECK(setup() == 0);
    for (int iter = 0; iter < 40000; iter++) {
        sqlite3_value *a = random_value();
        sqlite3_value *b = below(2) ? near_value(a) : random_value();
        CHECK(a && b);
        int want = sqlite_cmp(a, b);
        char da[128], db_[128], msg[400];
        int bad = 0;
        if (want == -2) {
            snprintf(msg, sizeof msg, "SQLite's comparisons disagree: %s vs %s",
                     describe(a, da, sizeof da), describe(b, db_, sizeof db_));
            bad = 1;
        }
        for (int desc = 0; desc < 2 && !bad; desc++) {
            sq_buf ea = {0}, eb = {0};
            int rc = encode(&ea, a, desc) | encode(&eb, b, desc);
            int got = rc == 0 ? bytes_cmp(&ea, &eb) : -2;
            sq_buf_free(&ea);
            sq_buf_free(&eb);
            if (got != (desc ? -want : want)) {
                snprintf(msg, sizeof msg, "%s vs %s %s: memcmp sign %d, SQLite %d",
                         describe(a, da, sizeof da), describe(b, db_, sizeof db_),
                         desc ? "DESC" : "ASC", got, desc ? -want : want);
                bad = 1;
            } else if (check_value(a, desc, msg, sizeof msg) != 0 ||
                       check_value(b, desc, msg, sizeof msg) != 0) {
                bad = 1;
            }
        }
        sqlite3_value_free(a);
        sqlite3_value_free(b);
        CHECKF(!bad, "iteration %d: %s", iter, msg);
    }
}

/* The cases the brief names, spelled out so a failure reads plainly. */
TEST(edges)
{
    CHECK(setup() == 0);
    struct {
        vkind ka;
        int64_t ia;
        double da;
        vkind kb;
        int64_t ib;
        double db_;
        int want; /* sign of a vs b */
    } cases[] = {
        {V_INT, (INT64_C(1) << 53) + 1, 0, V_REAL, 0, 9007199254740992.0, 1},
        {V_INT, (INT64_C(1) << 53), 0, V_REAL, 0, 9007199254740992.0, 0},
        {V_INT, INT64_MAX, 0, V_REAL, 0, 9223372036854775808.0, -1},
        {V_INT, INT64_MAX, 0, V_REAL, 0, 9223372036854774784.0, 1},
        {V_INT, INT64_MIN, 0, V_REAL, 0, -9223372036854775808.0, 0},
        {V_INT, INT64_MIN + 1, 0, V_REAL, 0, -9223372036854775808.0, 1},
        {V_INT, 0, 0, V_REAL, 0, -0.0, 0},
        {V_REAL, 0, -0.0, V_REAL, 0, 0.0, 0},
        {V_REAL, 0, -INFINITY, V_INT, INT64_MIN, 0, -1},
        {V_REAL, 0, INFINITY, V_INT, INT64_MAX, 0, 1},
        {V_NULL, 0, 0, V_REAL, 0, -INFINITY, -1},
        {V_REAL, 0, NAN, V_NULL, 0, 0, 0}, /* SQLite stores NaN as NULL */
        {V_INT, 3, 0, V_REAL, 0, 3.5, -1},
        {V_INT, -3, 0, V_REAL, 0, -2.5, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sqlite3_value *a = make(cases[i].ka, cases[i].ia, cases[i].da, NULL, 0);
        sqlite3_value *b = make(cases[i].kb, cases[i].ib, cases[i].db_, NULL, 0);
        sq_buf ea = {0}, eb = {0};
        int ok = a && b && encode(&ea, a, 0) == 0 && encode(&eb, b, 0) == 0;
        int got = ok ? bytes_cmp(&ea, &eb) : -2, oracle = ok ? sqlite_cmp(a, b) : -2;
        sq_buf_free(&ea);
        sq_buf_free(&eb);
        sqlite3_value_free(a);
        sqlite3_value_free(b);
        CHECKF(got == cases[i].want && oracle == cases[i].want,
               "case %zu: memcmp %d, SQLite %d, expected %d", i, got, oracle, cases[i].want);
    }
    /* Strings: empty < NUL < NUL NUL < "\x01"; every text < every blob; a prefix first. */
    struct {
        vkind k;
        const char *s;
        int n;
    } order[] = {{V_TEXT, "", 0},         {V_TEXT, "\0", 1},   {V_TEXT, "\0\0", 2},
                 {V_TEXT, "\0\xff", 2},   {V_TEXT, "\x01", 1}, {V_TEXT, "a", 1},
                 {V_TEXT, "a\0", 2},      {V_TEXT, "ab", 2},   {V_TEXT, "\xff", 1},
                 {V_TEXT, "\xff\xff", 2}, {V_BLOB, "", 0},     {V_BLOB, "\0", 1},
                 {V_BLOB, "\x01", 1},     {V_BLOB, "\xff", 1}};
    size_t n = sizeof order / sizeof order[0];
    for (size_t i = 0; i + 1 < n; i++) {
        sqlite3_value *a = make(order[i].k, 0, 0, (const uint8_t *)order[i].s, order[i].n);
        sqlite3_value *b =
            make(order[i + 1].k, 0, 0, (const uint8_t *)order[i + 1].s, order[i + 1].n);
        sq_buf ea = {0}, eb = {0};
        int ok = a && b && encode(&ea, a, 0) == 0 && encode(&eb, b, 0) == 0;
        int got = ok ? bytes_cmp(&ea, &eb) : -2, oracle = ok ? sqlite_cmp(a, b) : -2;
        sq_buf_free(&ea);
        sq_buf_free(&eb);
        sqlite3_value_free(a);
        sqlite3_value_free(b);
        CHECKF(got == -1 && oracle == -1, "string %zu vs %zu: memcmp %d, SQLite %d", i, i + 1, got,
               oracle);
    }
}

/* Tuples of 2-3 columns with mixed directions: memcmp of the concatenated
 * encodings is the column-by-column comparison. */
TEST(tuples_match_sqlite)
{
    CHECK(setup() == 0);
    for (int iter = 0; iter < 15000; iter++) {
        int ncol = 2 + (int)below(2);
        int dirs[3];
        sqlite3_value *a[3], *b[3];
        for (int c = 0; c < ncol; c++) {
            dirs[c] = (int)below(2);
            a[c] = random_value();
            /* mostly equal leading columns, so later columns decide */
            b[c] = below(4) ? near_value(a[c]) : random_value();
        }
        sq_buf ea = {0}, eb = {0};
        int want = 0, rc = 0;
        for (int c = 0; c < ncol; c++) {
            int s = sqlite_cmp(a[c], b[c]);
            if (s == -2)
                rc = -1;
            if (want == 0)
                want = dirs[c] ? -s : s;
            rc |= encode(&ea, a[c], dirs[c]) | encode(&eb, b[c], dirs[c]);
        }
        int got = rc == 0 ? bytes_cmp(&ea, &eb) : -2;
        char msg[600] = "";
        if (got != want) {
            size_t o = 0;
            for (int c = 0; c < ncol; c++) {
                char x[128], y[128];
                o += (size_t)snprintf(msg + o, sizeof msg - o, "[%s vs %s %s] ",
                                      describe(a[c], x, sizeof x), describe(b[c], y, sizeof y),
                                      dirs[c] ? "DESC" : "ASC");
            }
        }
        /* and every column decodes from its place in the tuple */
        size_t off = 0;
        for (int c = 0; c < ncol && got == want && rc == 0; c++) {
            sq_buf one = {0};
            rc = encode(&one, a[c], dirs[c]);
            if (rc == 0 && (off + one.len > ea.len || memcmp(ea.p + off, one.p, one.len) != 0))
                rc = -1;
            off += one.len;
            sq_buf_free(&one);
        }
        for (int c = 0; c < ncol; c++) {
            sqlite3_value_free(a[c]);
            sqlite3_value_free(b[c]);
        }
        sq_buf_free(&ea);
        sq_buf_free(&eb);
        CHECKF(got == want, "iteration %d: memcmp %d, SQLite %d: %s", iter, got, want, msg);
        CHECK(rc == 0 && off > 0);
    }
}

/* Rows sorted by SQLite's ORDER BY a, b DESC, c come out in memcmp order of their keys,
 * and rows SQLite groups together have equal keys. */
TEST(order_by_matches)
{
    CHECK(setup() == 0);
    CHECK(sqlite3_exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, a, b, c)", NULL, NULL, NULL) ==
          SQLITE_OK);
    sqlite3_stmt *ins, *sel;
    CHECK(sqlite3_prepare_v2(db, "INSERT INTO t(a, b, c) VALUES (?1, ?2, ?3)", -1, &ins, NULL) ==
          SQLITE_OK);
    /* Each column draws from a small pool of values and their neighbours (3 and 3.0,
     * 'a' and x'61', ...), so rows repeat, also across storage classes. */
    sqlite3_value *pool[3][4];
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 4; k++)
            pool[c][k] = random_value();
    int failed = 0;
    for (int i = 0; i < 3000 && !failed; i++) {
        for (int c = 0; c < 3; c++) {
            sqlite3_value *p = pool[c][below(4)];
            sqlite3_value *v = below(6) == 0 ? near_value(p) : NULL;
            sqlite3_bind_value(ins, c + 1, v ? v : p);
            sqlite3_value_free(v);
        }
        failed = sqlite3_step(ins) != SQLITE_DONE;
        sqlite3_reset(ins);
    }
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < 4; k++)
            sqlite3_value_free(pool[c][k]);
    sqlite3_finalize(ins);
    CHECK(!failed);
    CHECK(sqlite3_prepare_v2(db, "SELECT a, b, c FROM t ORDER BY a, b DESC, c", -1, &sel, NULL) ==
          SQLITE_OK);
    sq_buf last = {0};
    int n = 0, bad = 0;
    while (!bad && sqlite3_step(sel) == SQLITE_ROW) {
        sq_buf k = {0};
        for (int c = 0; c < 3; c++)
            bad |= encode(&k, sqlite3_column_value(sel, c), c == 1);
        if (n > 0 && bytes_cmp(&last, &k) > 0)
            bad = 2;
        sq_buf_free(&last);
        last = k;
        n++;
    }
    sq_buf_free(&last);
    sqlite3_finalize(sel);
    CHECKF(!bad, "row %d is out of order (%d)", n, bad);
    CHECK_EQ(n, 3000);
    /* Equal keys exactly where SQLite's GROUP BY sees one group. */
    CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM (SELECT 1 FROM t GROUP BY a, b, c)", -1,
                             &sel, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(sel) == SQLITE_ROW);
    int groups = sqlite3_column_int(sel, 0);
    sqlite3_finalize(sel);
    CHECK(sqlite3_prepare_v2(db, "SELECT a, b, c FROM t ORDER BY a, b DESC, c", -1, &sel, NULL) ==
          SQLITE_OK);
    sq_buf prevk = {0};
    int distinct = 0;
    while (sqlite3_step(sel) == SQLITE_ROW) {
        sq_buf k = {0};
        for (int c = 0; c < 3; c++)
            encode(&k, sqlite3_column_value(sel, c), c == 1);
        if (distinct == 0 || bytes_cmp(&prevk, &k) != 0)
            distinct++;
        sq_buf_free(&prevk);
        prevk = k;
    }
    sq_buf_free(&prevk);
    sqlite3_finalize(sel);
    CHECK(sqlite3_exec(db, "DROP TABLE t", NULL, NULL, NULL) == SQLITE_OK);
    CHECK_EQ(distinct, groups);
    CHECK(groups > 20); /* the generator made both duplicates and distinct rows */
    CHECK(groups < 2000);
}

TEST(ints)
{
    CHECK(setup() == 0);
    for (int iter = 0; iter < 20000; iter++) {
        int64_t i = random_int();
        for (int desc = 0; desc < 2; desc++) {
            sq_buf a = {0}, b = {0};
            sqlite3_value *v = make(V_INT, i, 0, NULL, 0);
            CHECK(v);
            int rc = sq_key_append_int(&a, i, desc) | encode(&b, v, desc);
            sqlite3_value_free(v);
            int same = rc == 0 && bytes_cmp(&a, &b) == 0;
            int64_t out = 0;
            size_t used = 0;
            int drc = rc == 0 ? sq_key_decode_int(a.p, a.len, desc, &out, &used) : -1;
            size_t len = a.len;
            sq_buf_free(&a);
            sq_buf_free(&b);
            CHECKF(same, "%" PRId64 ": sq_key_append_int differs from sq_key_append", i);
            CHECKF(drc == 0 && out == i && used == len, "%" PRId64 " decodes to %" PRId64, i, out);
        }
    }
    /* A real, text or truncated number is not an integer. */
    sq_buf b = {0};
    sqlite3_value *half = make(V_REAL, 0, 2.5, NULL, 0);
    sqlite3_value *text = make(V_TEXT, 0, 0, (const uint8_t *)"7", 1);
    CHECK(half && text);
    int rc = encode(&b, half, 0);
    size_t l1 = b.len;
    rc |= encode(&b, text, 0);
    sqlite3_value_free(half);
    sqlite3_value_free(text);
    int64_t out;
    size_t used;
    int r1 = sq_key_decode_int(b.p, l1, 0, &out, &used);
    int r2 = sq_key_decode_int(b.p + l1, b.len - l1, 0, &out, &used);
    int r3 = sq_key_decode_int(b.p, l1 - 1, 0, &out, &used);
    int r4 = sq_key_decode_int(b.p, l1, 1, &out, &used); /* read with the wrong direction */
    sq_buf_free(&b);
    CHECK_EQ(rc, 0);
    CHECK_EQ(r1, SQLITE_CORRUPT);
    CHECK_EQ(r2, SQLITE_CORRUPT);
    CHECK_EQ(r3, SQLITE_CORRUPT);
    CHECK_EQ(r4, SQLITE_CORRUPT);
}

/* Garbage and truncations are refused; whatever is accepted is canonical (it
 * re-encodes to the bytes it was read from). */
TEST(decode_garbage)
{
    CHECK(setup() == 0);
    int accepted = 0, refused = 0;
    for (int iter = 0; iter < 30000; iter++) {
        uint8_t p[24];
        size_t n = below(sizeof p + 1);
        int desc = (int)below(2);
        if (below(2)) { /* a valid encoding, mutated or cut */
            sqlite3_value *v = random_value();
            sq_buf b = {0};
            CHECK(v && encode(&b, v, desc) == 0);
            sqlite3_value_free(v);
            n = b.len < sizeof p ? b.len : sizeof p;
            memcpy(p, b.p, n);
            sq_buf_free(&b);
            if (below(2) && n > 0)
                n = below((unsigned)n);
            else if (n > 0)
                p[below((unsigned)n)] ^= (uint8_t)(1u << below(8));
        } else {
            for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)next();
            if (n > 0 && below(2))
                p[0] = desc ? (uint8_t)~0x15 : 0x15; /* a number's tag */
        }
        /* kdec refuses trailing bytes: find the prefix that decodes, if any */
        int ok = 0;
        for (size_t len = 1; len <= n && !ok; len++) {
            sqlite3_bind_blob(st_dec, 1, p, (int)len, SQLITE_STATIC);
            sqlite3_bind_int(st_dec, 2, desc);
            if (sqlite3_step(st_dec) == SQLITE_ROW) {
                ok = 1;
                sq_buf b = {0};
                int rc = encode(&b, sqlite3_column_value(st_dec, 0), desc);
                int same = rc == 0 && b.len == len && memcmp(b.p, p, len) == 0;
                sq_buf_free(&b);
                sqlite3_reset(st_dec);
                CHECKF(same, "iteration %d: accepted bytes are not canonical", iter);
            }
            sqlite3_reset(st_dec);
        }
        accepted += ok;
        refused += !ok;
    }
    CHECK(accepted > 1000 && refused > 1000);
}

TEST(buffer)
{
    sq_buf b = {0};
    for (int i = 0; i < 1000; i++)
        CHECK(sq_buf_put(&b, "abc", 3) == 0);
    CHECK_EQ(b.len, 3000);
    CHECK(memcmp(b.p + 2997, "abc", 3) == 0);
    CHECK(sq_buf_put(&b, NULL, 0) == 0);
    sq_buf_free(&b);
    CHECK(b.p == NULL && b.len == 0 && b.cap == 0);
    sq_buf_free(&b); /* twice is fine */
}

TEST_MAIN(TEST_CASE(pairs_match_sqlite), TEST_CASE(edges), TEST_CASE(tuples_match_sqlite),
          TEST_CASE(order_by_matches), TEST_CASE(ints), TEST_CASE(decode_garbage),
          TEST_CASE(buffer))

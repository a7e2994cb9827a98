/* sql/sq_row.c: encoding and decoding of stored rows (format in sq_row.h). */
#include "sql/sq_row.h"

#include <stdlib.h>
#include <string.h>

#include "common/mr_codec.h"

enum { TAG_NULL = 0, TAG_INT = 1, TAG_REAL = 2, TAG_TEXT = 3, TAG_BLOB = 4 };

int sq_put_varint(sq_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    int n = 0;
    do {
        uint8_t c = v & 0x7F;
        v >>= 7;
        tmp[n++] = c | (v ? 0x80 : 0);
    } while (v);
    return sq_buf_put(b, tmp, (size_t)n);
}

size_t sq_get_varint(const uint8_t *p, size_t n, uint64_t *v)
{
    uint64_t r = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        if (i == 9 && p[i] > 1)
            return 0; /* more than 64 bits */
        r |= (uint64_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

int sq_row_encode(sq_buf *b, int64_t table_id, int n, sqlite3_value **v)
{
    uint8_t ver = SQ_ROW_VERSION;
    int rc = sq_buf_put(b, &ver, 1);
    if (!rc)
        rc = sq_put_varint(b, (uint64_t)table_id);
    if (!rc)
        rc = sq_put_varint(b, (uint64_t)n);
    for (int i = 0; i < n && !rc; i++) {
        uint8_t tag;
        switch (sqlite3_value_type(v[i])) {
        case SQLITE_INTEGER: {
            int64_t x = sqlite3_value_int64(v[i]);
            tag = TAG_INT;
            rc = sq_buf_put(b, &tag, 1);
            if (!rc)
                rc = sq_put_varint(b, ((uint64_t)x << 1) ^ (uint64_t)(x >> 63));
            break;
        }
        case SQLITE_FLOAT: {
            double d = sqlite3_value_double(v[i]);
            uint64_t u;
            memcpy(&u, &d, 8);
            uint8_t be[9];
            be[0] = TAG_REAL;
            mr_put_u64(be + 1, u);
            rc = sq_buf_put(b, be, 9);
            break;
        }
        case SQLITE_TEXT:
        case SQLITE_BLOB: {
            int isblob = sqlite3_value_type(v[i]) == SQLITE_BLOB;
            const void *p =
                isblob ? sqlite3_value_blob(v[i]) : (const void *)sqlite3_value_text(v[i]);
            int len = sqlite3_value_bytes(v[i]);
            if (!p && len > 0)
                return SQLITE_NOMEM;
            tag = isblob ? TAG_BLOB : TAG_TEXT;
            rc = sq_buf_put(b, &tag, 1);
            if (!rc)
                rc = sq_put_varint(b, (uint64_t)len);
            if (!rc && len)
                rc = sq_buf_put(b, p, (size_t)len);
            break;
        }
        default:
            tag = TAG_NULL;
            rc = sq_buf_put(b, &tag, 1);
        }
    }
    return rc ? SQLITE_NOMEM : SQLITE_OK;
}

static int header(const uint8_t *p, size_t n, int64_t *id, uint64_t *ncol, size_t *used,
                  const char **why)
{
    if (n < 1 || p[0] != SQ_ROW_VERSION) {
        *why = n < 1 ? "empty row value" : "row value of an unknown format version";
        return SQLITE_CORRUPT;
    }
    uint64_t tid;
    size_t a = sq_get_varint(p + 1, n - 1, &tid);
    size_t c = a ? sq_get_varint(p + 1 + a, n - 1 - a, ncol) : 0;
    if (!a || !c || tid > INT64_MAX) {
        *why = "malformed row header";
        return SQLITE_CORRUPT;
    }
    *id = (int64_t)tid;
    *used = 1 + a + c;
    return SQLITE_OK;
}

int sq_row_table_id(const uint8_t *p, size_t n, int64_t *id)
{
    uint64_t ncol;
    size_t used;
    const char *why;
    return header(p, n, id, &ncol, &used, &why);
}

int sq_row_parse(const uint8_t *p, size_t n, sq_row *r, const char **why)
{
    memset(r, 0, sizeof *r);
    uint64_t ncol;
    size_t at;
    int rc = header(p, n, &r->table_id, &ncol, &at, why);
    if (rc)
        return rc;
    if (ncol > 32767) {
        *why = "row with too many columns";
        return SQLITE_CORRUPT;
    }
    r->off = malloc((ncol ? ncol : 1) * sizeof *r->off);
    if (!r->off)
        return SQLITE_NOMEM;
    for (uint64_t i = 0; i < ncol; i++) {
        if (at >= n)
            goto bad;
        r->off[i] = at;
        uint8_t tag = p[at++];
        uint64_t x;
        size_t u;
        switch (tag) {
        case TAG_NULL:
            break;
        case TAG_INT:
            if (!(u = sq_get_varint(p + at, n - at, &x)))
                goto bad;
            at += u;
            break;
        case TAG_REAL:
            if (n - at < 8)
                goto bad;
            at += 8;
            break;
        case TAG_TEXT:
        case TAG_BLOB:
            if (!(u = sq_get_varint(p + at, n - at, &x)) || x > n - at - u)
                goto bad;
            at += u + x;
            break;
        default:
            goto bad;
        }
    }
    if (at != n)
        goto bad;
    r->p = p;
    r->n = n;
    r->ncol = (int)ncol;
    return SQLITE_OK;
bad:
    free(r->off);
    r->off = NULL;
    *why = "malformed row value";
    return SQLITE_CORRUPT;
}

void sq_row_clear(sq_row *r)
{
    free(r->off);
    r->off = NULL;
}

/* Column i's tag, its data and length (for text/blob) or its integer. */
static int column(const sq_row *r, int i, int64_t *iv, double *dv, const uint8_t **data,
                  size_t *len)
{
    if (i < 0 || i >= r->ncol)
        return TAG_NULL;
    const uint8_t *p = r->p + r->off[i];
    size_t left = r->n - r->off[i] - 1;
    uint64_t x = 0;
    size_t u;
    switch (p[0]) {
    case TAG_INT:
        sq_get_varint(p + 1, left, &x);
        *iv = (int64_t)(x >> 1) ^ -(int64_t)(x & 1);
        return TAG_INT;
    case TAG_REAL: {
        uint64_t bits = mr_get_u64(p + 1);
        memcpy(dv, &bits, 8);
        return TAG_REAL;
    }
    case TAG_TEXT:
    case TAG_BLOB:
        u = sq_get_varint(p + 1, left, &x);
        *data = p + 1 + u;
        *len = (size_t)x;
        return p[0];
    default:
        return TAG_NULL;
    }
}

int sq_row_result(const sq_row *r, int i, sqlite3_context *ctx)
{
    int64_t iv = 0;
    double dv = 0;
    const uint8_t *d = NULL;
    size_t len = 0;
    switch (column(r, i, &iv, &dv, &d, &len)) {
    case TAG_INT:
        sqlite3_result_int64(ctx, iv);
        break;
    case TAG_REAL:
        sqlite3_result_double(ctx, dv);
        break;
    case TAG_TEXT:
        sqlite3_result_text64(ctx, (const char *)d, len, SQLITE_TRANSIENT, SQLITE_UTF8);
        break;
    case TAG_BLOB:
        sqlite3_result_blob64(ctx, d, len, SQLITE_TRANSIENT);
        break;
    default:
        sqlite3_result_null(ctx);
    }
    return SQLITE_OK;
}

int sq_row_bind(const sq_row *r, int i, sqlite3_stmt *st, int param)
{
    int64_t iv = 0;
    double dv = 0;
    const uint8_t *d = NULL;
    size_t len = 0;
    switch (column(r, i, &iv, &dv, &d, &len)) {
    case TAG_INT:
        return sqlite3_bind_int64(st, param, iv);
    case TAG_REAL:
        return sqlite3_bind_double(st, param, dv);
    case TAG_TEXT:
        return sqlite3_bind_text64(st, param, (const char *)d, len, SQLITE_TRANSIENT, SQLITE_UTF8);
    case TAG_BLOB:
        return sqlite3_bind_blob64(st, param, d, len, SQLITE_TRANSIENT);
    default:
        return sqlite3_bind_null(st, param);
    }
}

/* sql/sq_key.c: the order-preserving key encoding of SQL values (sq_key.h).
 *
 * Ascending form of one value (DESC: every byte of it inverted):
 *   NULL    0x05
 *   number  0x15, D (8 bytes), R (1 or 2 bytes)
 *   TEXT    0x25, escaped bytes, 0x00 0x01
 *   BLOB    0x35, escaped bytes, 0x00 0x01
 * The tags order NULL < numbers < TEXT < BLOB as SQLite does; none of them, nor
 * their inversions, is 0x00 (system keys) or 0xFF (SQ_KEY_INTERLEAVE).
 *
 * Numbers: SQLite compares an INTEGER and a REAL by exact value, so a number is
 * written as d, the largest double <= the value, then r = value - d, a
 * non-negative integer (0 for a REAL; below d's ulp, at most 2^11, for an
 * INTEGER beyond 2^53). D is d's IEEE bits with the sign bit set for d >= 0 and
 * all bits inverted for d < 0, so D orders as d; -0.0 is written as 0.0. R is
 * 0x00 for r = 0, else 0x01 + (r >> 8) followed by r & 0xFF: R orders as r.
 * Equal values get equal bytes whatever their storage class, so 3 and 3.0 share
 * an encoding and decoding returns an INTEGER for every integral value within
 * int64, a REAL otherwise.
 *
 * Text and blobs: 0x00 is escaped as 0x00 0xFF and the end is 0x00 0x01, so a
 * prefix sorts first and the terminator keeps a tuple's next column from
 * taking part in the comparison. */
#include "sql/sq_key.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { TAG_NULL = 0x05, TAG_NUM = 0x15, TAG_TEXT = 0x25, TAG_BLOB = 0x35 };

#define ESC_NUL 0xFF /* after 0x00: the byte 0x00 */
#define ESC_END 0x01 /* after 0x00: the end of the string */
#define TWO53   9007199254740992.0
#define TWO63   9223372036854775808.0

void sq_buf_free(sq_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static int buf_reserve(sq_buf *b, size_t n)
{
    if (n <= b->cap - b->len)
        return 0;
    if (n > SIZE_MAX / 2 - b->len)
        return SQLITE_NOMEM;
    size_t cap = b->cap ? b->cap : 32;
    while (cap < b->len + n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return SQLITE_NOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int sq_buf_put(sq_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (buf_reserve(b, n) != 0)
        return SQLITE_NOMEM;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int put_byte(sq_buf *b, uint8_t c)
{
    return sq_buf_put(b, &c, 1);
}

/* ---- numbers ---- */

static uint64_t double_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bits_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* d (not NaN, not -0.0) and r as described at the top. */
static int put_number(sq_buf *b, double d, unsigned r)
{
    uint64_t u = double_bits(d);
    u = (u >> 63) ? ~u : (u | (UINT64_C(1) << 63));
    uint8_t out[11];
    size_t n = 0;
    out[n++] = TAG_NUM;
    for (int i = 7; i >= 0; i--)
        out[n++] = (uint8_t)(u >> (8 * i));
    if (r == 0) {
        out[n++] = 0x00;
    } else {
        out[n++] = (uint8_t)(0x01 + (r >> 8));
        out[n++] = (uint8_t)(r & 0xFF);
    }
    return sq_buf_put(b, out, n);
}

static int put_real(sq_buf *b, double d)
{
    if (d == 0)
        d = 0.0; /* -0.0 == 0.0 */
    return put_number(b, d, 0);
}

/* The largest double <= i, and the remainder. */
static int put_int(sq_buf *b, int64_t i)
{
    double d = (double)i; /* round to nearest: within one ulp of i */
    if (d >= TWO63 || (int64_t)d > i)
        d = nextafter(d, -INFINITY);
    /* d is now integral and in [-2^63, 2^63): exact as an int64. */
    uint64_t r = (uint64_t)i - (uint64_t)(int64_t)d;
    return put_number(b, d, (unsigned)r);
}

/* ---- strings ---- */

static int put_escaped(sq_buf *b, uint8_t tag, const uint8_t *s, size_t n)
{
    /* Worst case: every byte escaped, plus tag and terminator. */
    if (n > (SIZE_MAX - 3) / 2 || buf_reserve(b, 2 * n + 3) != 0)
        return SQLITE_NOMEM;
    uint8_t *o = b->p + b->len;
    *o++ = tag;
    for (size_t i = 0; i < n; i++) {
        *o++ = s[i];
        if (s[i] == 0x00)
            *o++ = ESC_NUL;
    }
    *o++ = 0x00;
    *o++ = ESC_END;
    b->len = (size_t)(o - b->p);
    return 0;
}

/* ---- appending ---- */

static void invert_from(sq_buf *b, size_t from)
{
    for (size_t i = from; i < b->len; i++)
        b->p[i] = (uint8_t)~b->p[i];
}

int sq_key_append(sq_buf *b, sqlite3_value *v, int desc)
{
    size_t from = b->len;
    int rc;
    switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
        rc = put_int(b, sqlite3_value_int64(v));
        break;
    case SQLITE_FLOAT: {
        double d = sqlite3_value_double(v);
        /* SQLite stores NaN as NULL; a NaN that got here anyway is NULL too. */
        rc = isnan(d) ? put_byte(b, TAG_NULL) : put_real(b, d);
        break;
    }
    case SQLITE_TEXT: {
        const unsigned char *s = sqlite3_value_text(v);
        if (!s)
            return SQLITE_NOMEM;
        rc = put_escaped(b, TAG_TEXT, s, (size_t)sqlite3_value_bytes(v));
        break;
    }
    case SQLITE_BLOB: {
        const void *p = sqlite3_value_blob(v);
        int n = sqlite3_value_bytes(v);
        if (!p && n > 0)
            return SQLITE_NOMEM;
        rc = put_escaped(b, TAG_BLOB, p, (size_t)n);
        break;
    }
    default:
        rc = put_byte(b, TAG_NULL);
        break;
    }
    if (rc == 0 && desc)
        invert_from(b, from);
    return rc;
}

int sq_key_append_int(sq_buf *b, int64_t i, int desc)
{
    size_t from = b->len;
    int rc = put_int(b, i);
    if (rc == 0 && desc)
        invert_from(b, from);
    return rc;
}

/* ---- decoding ---- */

/* The byte at p[i], un-inverted for DESC. */
static uint8_t at(const uint8_t *p, size_t i, int desc)
{
    return desc ? (uint8_t)~p[i] : p[i];
}

typedef struct num {
    int is_int;
    int64_t i;
    double d;
} num;

/* Decodes a number's D and R (p just past the tag) and checks that they are the
 * canonical encoding of one value, so that decoding and re-encoding gives the
 * same bytes. */
static int decode_number(const uint8_t *p, size_t n, int desc, num *out, size_t *used)
{
    if (n < 9)
        return SQLITE_CORRUPT;
    uint64_t u = 0;
    for (size_t i = 0; i < 8; i++)
        u = (u << 8) | at(p, i, desc);
    u = (u >> 63) ? (u & ~(UINT64_C(1) << 63)) : ~u;
    if (u == (UINT64_C(1) << 63))
        return SQLITE_CORRUPT; /* -0.0 is written as 0.0 */
    double d = bits_double(u);
    if (isnan(d))
        return SQLITE_CORRUPT;
    uint8_t r0 = at(p, 8, desc);
    unsigned r = 0;
    size_t len = 9;
    if (r0 != 0x00) {
        if (r0 > 0x08 || n < 10)
            return SQLITE_CORRUPT;
        r = ((unsigned)(r0 - 0x01) << 8) | at(p, 9, desc);
        len = 10;
        if (r == 0)
            return SQLITE_CORRUPT;
    }
    int integral = d >= -TWO63 && d < TWO63 && d == floor(d);
    if (r > 0) {
        /* Only an integer beyond 2^53 has a remainder, below the gap to the next double. */
        if (!integral || fabs(d) < TWO53 || (double)r >= nextafter(d, INFINITY) - d)
            return SQLITE_CORRUPT;
        int64_t base = (int64_t)d;
        if (base > INT64_MAX - (int64_t)r)
            return SQLITE_CORRUPT;
        out->is_int = 1;
        out->i = base + (int64_t)r;
    } else if (integral) {
        out->is_int = 1;
        out->i = (int64_t)d;
    } else {
        out->is_int = 0;
        out->d = d;
    }
    *used = len;
    return 0;
}

/* Unescapes a string (p just past the tag) into a malloc'd buffer (*out, NUL-terminated,
 * *outlen bytes before the NUL). */
static int decode_escaped(const uint8_t *p, size_t n, int desc, uint8_t **out, size_t *outlen,
                          size_t *used)
{
    size_t len = 0, i = 0;
    for (;; i++) { /* first pass: validate and measure */
        if (i + 1 >= n)
            return SQLITE_CORRUPT;
        if (at(p, i, desc) != 0x00) {
            len++;
            continue;
        }
        uint8_t e = at(p, i + 1, desc);
        if (e == ESC_END)
            break;
        if (e != ESC_NUL)
            return SQLITE_CORRUPT;
        len++;
        i++;
    }
    uint8_t *s = sqlite3_malloc64(len + 1);
    if (!s)
        return SQLITE_NOMEM;
    size_t o = 0;
    for (size_t j = 0; j < i; j++) {
        uint8_t c = at(p, j, desc);
        s[o++] = c;
        if (c == 0x00)
            j++; /* skip the escape */
    }
    s[o] = '\0';
    *out = s;
    *outlen = len;
    *used = i + 2;
    return 0;
}

int sq_key_decode(const uint8_t *p, size_t n, int desc, sqlite3_context *ctx, size_t *used)
{
    if (n < 1)
        return SQLITE_CORRUPT;
    size_t len;
    int rc;
    switch (at(p, 0, desc)) {
    case TAG_NULL:
        sqlite3_result_null(ctx);
        *used = 1;
        return 0;
    case TAG_NUM: {
        num v;
        if ((rc = decode_number(p + 1, n - 1, desc, &v, &len)) != 0)
            return rc;
        if (v.is_int)
            sqlite3_result_int64(ctx, v.i);
        else
            sqlite3_result_double(ctx, v.d);
        *used = 1 + len;
        return 0;
    }
    case TAG_TEXT:
    case TAG_BLOB: {
        uint8_t *s;
        size_t slen;
        if ((rc = decode_escaped(p + 1, n - 1, desc, &s, &slen, &len)) != 0)
            return rc;
        if (slen > INT32_MAX) {
            sqlite3_free(s);
            return SQLITE_TOOBIG;
        }
        if (at(p, 0, desc) == TAG_TEXT)
            sqlite3_result_text(ctx, (const char *)s, (int)slen, sqlite3_free);
        else
            sqlite3_result_blob(ctx, s, (int)slen, sqlite3_free);
        *used = 1 + len;
        return 0;
    }
    default:
        return SQLITE_CORRUPT;
    }
}

int sq_key_decode_int(const uint8_t *p, size_t n, int desc, int64_t *out, size_t *used)
{
    if (n < 1 || at(p, 0, desc) != TAG_NUM)
        return SQLITE_CORRUPT;
    num v;
    size_t len;
    int rc = decode_number(p + 1, n - 1, desc, &v, &len);
    if (rc != 0)
        return rc;
    if (!v.is_int)
        return SQLITE_CORRUPT;
    *out = v.i;
    *used = 1 + len;
    return 0;
}

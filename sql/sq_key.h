/* sql/sq_key.h: the order-preserving key encoding of SQL values.
 *
 * Each value is encoded so that memcmp order of the encodings equals SQLite's
 * comparison of the values under BINARY collation (NULL < INTEGER/REAL by
 * numeric value < TEXT by bytes < BLOB by bytes; -0.0 and 0.0 equal; integers
 * and reals compare exactly, 2^53+1 > 2^53 as a real), per column ASC or DESC
 * (DESC inverts the encoding: NULLs last). A sequence of encoded values
 * compares as the tuple does, column by column. No encoding starts with the
 * byte SQ_KEY_INTERLEAVE, which separates a parent's key from its
 * interleaved children's.
 *
 * Pure: no I/O, no libmeridian; uses SQLite's value types only. */
#ifndef SQL_SQ_KEY_H
#define SQL_SQ_KEY_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define SQ_KEY_INTERLEAVE 0xFF

/* A growable byte buffer (owned by the caller; sq_buf_free releases it). */
typedef struct sq_buf {
    uint8_t *p;
    size_t len, cap;
} sq_buf;

void sq_buf_free(sq_buf *b);
int sq_buf_put(sq_buf *b, const void *p, size_t n); /* 0 or SQLITE_NOMEM */

/* Appends v's encoding (desc: 1 for a DESC column). 0 or SQLITE_NOMEM. */
int sq_key_append(sq_buf *b, sqlite3_value *v, int desc);
/* Appends an integer's encoding (table ids, hidden row ids): the same bytes as
 * sq_key_append of that INTEGER value. */
int sq_key_append_int(sq_buf *b, int64_t i, int desc);

/* Decodes the value at p (n bytes left) into ctx's result (NULL, integer,
 * real, text or blob as encoded); *used = bytes consumed. 0, or
 * SQLITE_CORRUPT when p is not a valid encoding (ctx untouched), or
 * SQLITE_NOMEM. Equal values share one encoding whatever their storage class
 * (3 and 3.0), so a number comes back as an INTEGER when it is integral and
 * within int64, else as a REAL: apply the column's affinity to get its class
 * back. Only canonical encodings are accepted: a decoded value re-encodes to
 * exactly the bytes it was read from. */
int sq_key_decode(const uint8_t *p, size_t n, int desc, sqlite3_context *ctx, size_t *used);
/* Decodes an integer written by sq_key_append_int. 0 or SQLITE_CORRUPT. */
int sq_key_decode_int(const uint8_t *p, size_t n, int desc, int64_t *out, size_t *used);

#endif

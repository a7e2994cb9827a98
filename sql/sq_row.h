/* sql/sq_row.h: the stored value of a SQL row.
 *
 * Format 1 (every field a LEB128 varint unless said otherwise):
 *   0x01 (the format's version), the table id, the column count n, then per
 *   column a tag byte and its data: 0 NULL; 1 INTEGER (zigzag varint);
 *   2 REAL (8 bytes, IEEE 754 big-endian); 3 TEXT and 4 BLOB (length, bytes).
 * The table id lets a scan of a directory (a parent row and its interleaved
 * children share one key range) tell the rows of one table from its
 * children's without parsing keys. The column count lets a table that gained
 * columns (ALTER TABLE ADD COLUMN) read old rows: missing columns read as
 * their default. Values are stored as SQLite holds them after the column's
 * affinity was applied. A reader refuses another version by name. */
#ifndef SQL_SQ_ROW_H
#define SQL_SQ_ROW_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "sql/sq_key.h"

#define SQ_ROW_VERSION 1

/* Appends the encoding of a row of table_id with n values. 0 or SQLITE_NOMEM. */
int sq_row_encode(sq_buf *b, int64_t table_id, int n, sqlite3_value **v);

/* A parsed row: where each column's tag starts. */
typedef struct sq_row {
    int64_t table_id;
    int ncol;
    const uint8_t *p; /* the encoding (borrowed) */
    size_t n;
    size_t *off; /* ncol offsets into p (malloc'd by sq_row_parse) */
} sq_row;

/* Parses an encoding. 0, SQLITE_CORRUPT (with a reason in *why, static),
 * or SQLITE_NOMEM. Free with sq_row_clear. */
int sq_row_parse(const uint8_t *p, size_t n, sq_row *r, const char **why);
void sq_row_clear(sq_row *r);
/* Just the table id (cheap: scans filter on it). 0 or SQLITE_CORRUPT. */
int sq_row_table_id(const uint8_t *p, size_t n, int64_t *id);

/* Column i as a function result / a bound parameter. i >= ncol gives NULL
 * (the caller applies a default first if it has one). 0 or an SQLite code. */
int sq_row_result(const sq_row *r, int i, sqlite3_context *ctx);
int sq_row_bind(const sq_row *r, int i, sqlite3_stmt *st, int param);

/* LEB128 helpers, shared with the catalog's small records. */
int sq_put_varint(sq_buf *b, uint64_t v);
/* Reads a varint at p (n bytes left): bytes used, or 0 if malformed. */
size_t sq_get_varint(const uint8_t *p, size_t n, uint64_t *v);

#endif

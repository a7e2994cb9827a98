/* sql/sq_wbuf.h: a transaction's write buffer, with savepoints.
 *
 * Every write of a SQL transaction (rows and index entries) lands here first
 * and reaches libmeridian only at commit (sq_txn_commit), so that a failed
 * statement, ROLLBACK TO a savepoint, or a conflict found half-way through a
 * multi-row statement can be undone: libmeridian's own buffer has no
 * savepoints. A sorted map of byte-string keys to a value or a tombstone
 * (reads merge it over the store, in key order), plus an undo log: a mark is
 * a position in the log, and rolling back to a mark replays the log
 * backwards. */
#ifndef SQL_SQ_WBUF_H
#define SQL_SQ_WBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct sq_wbuf sq_wbuf;

/* One entry, borrowed from the buffer: valid until its next change. */
typedef struct sq_went {
    const uint8_t *key;
    size_t klen;
    const uint8_t *val; /* NULL for a tombstone */
    size_t vlen;
    int del; /* 1: a tombstone (the key is deleted by this transaction) */
} sq_went;

sq_wbuf *sq_wbuf_new(void); /* NULL on no memory */
void sq_wbuf_free(sq_wbuf *w);
/* Drops every entry and the undo log. */
void sq_wbuf_clear(sq_wbuf *w);

/* Sets key to val (del = 0) or to a tombstone (del = 1). 0, or -1 on no
 * memory (then nothing changed). */
int sq_wbuf_set(sq_wbuf *w, const void *key, size_t klen, const void *val, size_t vlen, int del);

/* 1 and *e if key has an entry, else 0. */
int sq_wbuf_get(const sq_wbuf *w, const void *key, size_t klen, sq_went *e);
/* The first entry whose key is >= key (> key when strict); key NULL means
 * from the start. 1 and *e, or 0 when there is none. */
int sq_wbuf_seek(const sq_wbuf *w, const void *key, size_t klen, int strict, sq_went *e);

/* The number of entries (tombstones included) and their bytes. */
size_t sq_wbuf_count(const sq_wbuf *w);
size_t sq_wbuf_bytes(const sq_wbuf *w);

/* A savepoint: the current position in the undo log. */
size_t sq_wbuf_mark(const sq_wbuf *w);
/* Undoes every change made after mark (a mark taken earlier). */
void sq_wbuf_rollback(sq_wbuf *w, size_t mark);

#endif

/* SQLite result codes as Meridian error codes, for the modules that store
 * in SQLite (the Paxos log store, the MVCC store). Header-only. */
#ifndef MR_SQLITE_H
#define MR_SQLITE_H

#include <sqlite3.h>

#include "common/mr_err.h"

static inline int mr_sqlite_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return MR_EFULL;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return MR_ECORRUPT;
    case SQLITE_NOMEM:
        return MR_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return MR_EUNAVAIL;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
        return MR_EINVAL;
    default:
        return MR_EIO;
    }
}

#endif

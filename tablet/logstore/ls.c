/* The durable Paxos log in SQLite: schema, cached statements, group commit
 * and per-record CRC32C (see ls.h for the durability contract). */
#include "tablet/logstore/ls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/mr_sqlite.h"
#include "common/mr_log.h"
#include "common/mr_codec.h"
#include "common/mr_crc32c.h"

/* 'MRLS' in the SQLite header, so another program's database is refused. */
#define LS_APP_ID 0x4d524c53
/* PRAGMA user_version. 2: every integer big-endian (the record CRCs' headers, the snapshot
 * metadata, the node's records inside entries); a store of another version is refused. */
#define LS_FORMAT    2
#define LS_WAL_LIMIT (64LL * 1024 * 1024)

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_PUT_ENTRY,
    ST_GET_ENTRY,
    ST_SCAN,
    ST_DEL_ENTRIES_UPTO,
    ST_GET_GROUP,
    ST_SET_PROMISE,
    ST_SET_CHOSEN,
    ST_PUT_META,
    ST_GET_META,
    ST_LIST_META,
    ST_PUT_CONFIG,
    ST_LIST_CONFIG,
    ST_DEL_CONFIGS_BEFORE,
    ST_GET_SNAP,
    ST_PUT_SNAP,
    ST_LIST_GROUPS,
    ST_DROP_GROUP,
    ST_DROP_ENTRIES,
    ST_DROP_META,
    ST_DROP_CONFIGS,
    ST_DROP_SNAP,
    ST_COUNT
};

static const char *const sql_text[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PUT_ENTRY] =
        "INSERT OR REPLACE INTO ls_entry(grp, slot, b_round, b_node, ts, kind, val, crc) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_GET_ENTRY] = "SELECT slot, b_round, b_node, ts, kind, val, crc FROM ls_entry "
                     "WHERE grp = ?1 AND slot = ?2",
    [ST_SCAN] = "SELECT slot, b_round, b_node, ts, kind, val, crc FROM ls_entry "
                "WHERE grp = ?1 AND slot >= ?2 AND slot <= ?3 ORDER BY slot",
    [ST_DEL_ENTRIES_UPTO] = "DELETE FROM ls_entry WHERE grp = ?1 AND slot <= ?2",
    [ST_GET_GROUP] = "SELECT p_round, p_node, p_crc, chosen, c_crc FROM ls_group WHERE grp = ?1",
    [ST_SET_PROMISE] = "INSERT INTO ls_group(grp, p_round, p_node, p_crc) VALUES(?1, ?2, ?3, ?4) "
                       "ON CONFLICT(grp) DO UPDATE SET p_round = excluded.p_round, "
                       "p_node = excluded.p_node, p_crc = excluded.p_crc",
    [ST_SET_CHOSEN] = "INSERT INTO ls_group(grp, chosen, c_crc) VALUES(?1, ?2, ?3) "
                      "ON CONFLICT(grp) DO UPDATE SET chosen = excluded.chosen, "
                      "c_crc = excluded.c_crc",
    [ST_PUT_META] = "INSERT OR REPLACE INTO ls_meta(grp, key, val, crc) VALUES(?1, ?2, ?3, ?4)",
    [ST_GET_META] = "SELECT val, crc FROM ls_meta WHERE grp = ?1 AND key = ?2",
    [ST_LIST_META] = "SELECT key, val, crc FROM ls_meta WHERE grp = ?1 ORDER BY key",
    [ST_PUT_CONFIG] = "INSERT OR REPLACE INTO ls_config(grp, slot, val, crc) "
                      "VALUES(?1, ?2, ?3, ?4)",
    [ST_LIST_CONFIG] = "SELECT slot, val, crc FROM ls_config WHERE grp = ?1 ORDER BY slot",
    [ST_DEL_CONFIGS_BEFORE] = "DELETE FROM ls_config WHERE grp = ?1 AND slot < "
                              "(SELECT max(slot) FROM ls_config WHERE grp = ?1 AND slot <= ?2)",
    [ST_GET_SNAP] = "SELECT last_slot, meta, val, crc FROM ls_snapshot WHERE grp = ?1",
    [ST_PUT_SNAP] = "INSERT OR REPLACE INTO ls_snapshot(grp, last_slot, meta, val, crc) "
                    "VALUES(?1, ?2, ?3, ?4, ?5)",
    [ST_LIST_GROUPS] = "SELECT grp FROM ls_group UNION SELECT grp FROM ls_entry "
                       "UNION SELECT grp FROM ls_meta UNION SELECT grp FROM ls_config "
                       "UNION SELECT grp FROM ls_snapshot ORDER BY 1",
    [ST_DROP_GROUP] = "DELETE FROM ls_group WHERE grp = ?1",
    [ST_DROP_ENTRIES] = "DELETE FROM ls_entry WHERE grp = ?1",
    [ST_DROP_META] = "DELETE FROM ls_meta WHERE grp = ?1",
    [ST_DROP_CONFIGS] = "DELETE FROM ls_config WHERE grp = ?1",
    [ST_DROP_SNAP] = "DELETE FROM ls_snapshot WHERE grp = ?1",
};

/* Tables keyed by (group, ...). Integers are SQLite's signed 64 bits: group
 * ids are stored as their bit pattern, slots and ballots are range-checked.
 * Entries are WITHOUT ROWID so the primary key is the only b-tree written
 * per accept; snapshots are large, so they stay in a rowid table. */
static const char schema_sql[] =
    "CREATE TABLE ls_group(grp INTEGER PRIMARY KEY, p_round INTEGER, p_node INTEGER,"
    " p_crc INTEGER, chosen INTEGER, c_crc INTEGER);"
    "CREATE TABLE ls_entry(grp INTEGER NOT NULL, slot INTEGER NOT NULL,"
    " b_round INTEGER NOT NULL, b_node INTEGER NOT NULL, ts INTEGER NOT NULL,"
    " kind INTEGER NOT NULL, val BLOB NOT NULL, crc INTEGER NOT NULL, PRIMARY KEY(grp, slot)) "
    "WITHOUT ROWID;"
    "CREATE TABLE ls_meta(grp INTEGER NOT NULL, key TEXT NOT NULL, val BLOB NOT NULL,"
    " crc INTEGER NOT NULL, PRIMARY KEY(grp, key)) WITHOUT ROWID;"
    "CREATE TABLE ls_config(grp INTEGER NOT NULL, slot INTEGER NOT NULL, val BLOB NOT NULL,"
    " crc INTEGER NOT NULL, PRIMARY KEY(grp, slot)) WITHOUT ROWID;"
    "CREATE TABLE ls_snapshot(grp INTEGER PRIMARY KEY, last_slot INTEGER NOT NULL,"
    " meta BLOB NOT NULL, val BLOB NOT NULL, crc INTEGER NOT NULL);";

struct ls_store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[ST_COUNT];
    int in_txn;       /* BEGIN done, COMMIT pending */
    uint64_t pending; /* writes staged since the last sync */
    int batch_code;   /* nonzero: a staged write failed and the batch was rolled back */
    char batch_msg[MR_ERRMSG_MAX];
    int broken; /* a commit failed in a way that leaves its outcome unknown */
};

/* ---- Errors ---- */

/* Wraps SQLite's own message with what we were doing and which file. */
static int sqlerr(ls_store *s, int rc, mr_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int sqlerr(ls_store *s, int rc, mr_err *err, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    int code = mr_sqlite_code(rc);
    const char *hint = "";
    if (code == MR_EFULL)
        hint = "; the disk or the store's size quota is full";
    else if (code == MR_EUNAVAIL)
        hint = "; is the store open in another process or handle?";
    return mr_errf(err, code, "logstore %s: %s: %s (%s)%s", s->path, what,
                   s->db ? sqlite3_errmsg(s->db) : "", sqlite3_errstr(rc), hint);
}

static int corrupt(ls_store *s, mr_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int corrupt(ls_store *s, mr_err *err, const char *fmt, ...)
{
    char what[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    MR_ERROR("ls", "corrupt record path=%s what=\"%s\"", s->path, what);
    return mr_errf(err, MR_ECORRUPT, "logstore %s: %s; refusing to serve it", s->path, what);
}

/* ---- Checksums: each record's CRC covers its key, every field and the value,
 * so a flipped byte anywhere or a row moved to another slot is caught. ---- */

static uint32_t rec_crc(char tag, const uint64_t *f, int nf, const void *a, size_t alen,
                        const void *v, size_t vlen)
{
    unsigned char hdr[1 + 8 * 8];
    int n = 0;
    hdr[n++] = (unsigned char)tag;
    for (int i = 0; i < nf; i++, n += 8)
        mr_put_u64(hdr + n, f[i]);
    uint32_t c = mr_crc32c(0, hdr, (size_t)n);
    if (alen)
        c = mr_crc32c(c, a, alen);
    if (vlen)
        c = mr_crc32c(c, v, vlen);
    return c;
}

static uint32_t entry_crc(uint64_t group, const ls_entry *e)
{
    uint64_t f[7] = {group,           e->slot, e->ballot.round, e->ballot.node,
                     (uint64_t)e->ts, e->kind, e->len};
    return rec_crc('E', f, 7, NULL, 0, e->value, e->len);
}

static uint32_t promise_crc(uint64_t group, ls_ballot b)
{
    uint64_t f[3] = {group, b.round, b.node};
    return rec_crc('P', f, 3, NULL, 0, NULL, 0);
}

static uint32_t chosen_crc(uint64_t group, uint64_t chosen)
{
    uint64_t f[2] = {group, chosen};
    return rec_crc('C', f, 2, NULL, 0, NULL, 0);
}

static uint32_t meta_crc(uint64_t group, const char *key, size_t klen, const void *v, size_t len)
{
    uint64_t f[3] = {group, klen, len};
    return rec_crc('M', f, 3, key, klen, v, len);
}

static uint32_t config_crc(uint64_t group, uint64_t slot, const void *v, size_t len)
{
    uint64_t f[3] = {group, slot, len};
    return rec_crc('G', f, 3, NULL, 0, v, len);
}

static uint32_t snap_crc(uint64_t group, uint64_t slot, const void *m, size_t mlen, const void *v,
                         size_t len)
{
    uint64_t f[4] = {group, slot, mlen, len};
    return rec_crc('S', f, 4, m, mlen, v, len);
}

/* ---- Statement helpers ---- */

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static void bind_u64(sqlite3_stmt *st, int i, uint64_t v)
{
    sqlite3_bind_int64(st, i, (sqlite3_int64)v);
}

/* SQLite binds a NULL pointer as SQL NULL; an empty blob needs a non-NULL one. */
static void bind_blob(sqlite3_stmt *st, int i, const void *v, size_t len)
{
    sqlite3_bind_blob64(st, i, len ? v : "", len, SQLITE_STATIC);
}

static uint64_t col_u64(sqlite3_stmt *st, int i)
{
    return (uint64_t)sqlite3_column_int64(st, i);
}

static const void *col_blob(sqlite3_stmt *st, int i, size_t *len)
{
    const void *p = sqlite3_column_blob(st, i);
    *len = (size_t)sqlite3_column_bytes(st, i);
    return p ? p : "";
}

static int check_open(ls_store *s, mr_err *err)
{
    if (!s)
        return mr_errf(err, MR_EINVAL, "logstore: NULL store");
    if (s->broken)
        return mr_errf(err, MR_EIO,
                       "logstore %s: an earlier commit failed with its outcome unknown; "
                       "close and reopen the store to recover from the WAL",
                       s->path);
    return 0;
}

static int check_value(const void *v, size_t len, const char *what, mr_err *err)
{
    if (len && !v)
        return mr_errf(err, MR_EINVAL, "logstore: %s of %zu bytes with a NULL pointer", what, len);
    if (len > LS_MAX_VALUE)
        return mr_errf(err, MR_EINVAL, "logstore: %s of %zu bytes exceeds the %u-byte limit", what,
                       len, LS_MAX_VALUE);
    return 0;
}

static int check_slot(uint64_t slot, const char *what, mr_err *err)
{
    if (slot > LS_MAX_SLOT)
        return mr_errf(err, MR_EINVAL, "logstore: %s %llu is out of range (max %lld)", what,
                       (unsigned long long)slot, (long long)INT64_MAX);
    return 0;
}

static int check_ballot(ls_ballot b, mr_err *err)
{
    if (b.round > LS_MAX_SLOT || b.node > LS_MAX_SLOT)
        return mr_errf(err, MR_EINVAL, "logstore: ballot (%llu, %llu) is out of range",
                       (unsigned long long)b.round, (unsigned long long)b.node);
    return 0;
}

/* ---- Batches (group commit) ---- */

/* Starts the batch's transaction on the first staged write. */
static int begin_write(ls_store *s, mr_err *err)
{
    int rc = check_open(s, err);
    if (rc)
        return rc;
    if (s->batch_code)
        return mr_errf(err, s->batch_code,
                       "logstore %s: this batch already failed and was rolled back (%s); "
                       "call ls_sync() or ls_rollback() before writing again",
                       s->path, s->batch_msg);
    if (s->in_txn)
        return 0;
    sqlite3_stmt *st = s->st[ST_BEGIN];
    rc = sqlite3_step(st);
    done(st);
    if (rc != SQLITE_DONE)
        return sqlerr(s, rc, err, "begin batch");
    s->in_txn = 1;
    return 0;
}

/* A staged write failed inside the batch: SQLite may already have rolled
 * back (SQLITE_FULL does), and a partial batch must never be committed, so
 * the whole batch goes. The failure is reported again by the next ls_sync(),
 * so a caller that only checks ls_sync() still learns nothing was saved. */
static int write_failed(ls_store *s, int rc, mr_err *err, const char *what)
{
    mr_err mine; /* the message is kept for ls_sync() even when the caller passed no err */
    int code = sqlerr(s, rc, &mine, "%s", what);
    if (err)
        *err = mine;
    uint64_t lost = s->pending;
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->in_txn = 0;
    s->pending = 0;
    s->batch_code = code;
    snprintf(s->batch_msg, sizeof s->batch_msg, "%s", mr_err_msg(&mine));
    if (err)
        mr_err_wrap(err, "batch rolled back (%llu staged writes discarded, synced state intact)",
                    (unsigned long long)lost);
    MR_WARN("ls", "batch rolled back path=%s lost=%llu code=%s", s->path, (unsigned long long)lost,
            mr_strerror(code));
    return code;
}

/* Runs a bound write statement inside the batch. */
static int run_write(ls_store *s, sqlite3_stmt *st, const char *what, mr_err *err)
{
    int rc = sqlite3_step(st);
    done(st);
    if (rc != SQLITE_DONE)
        return write_failed(s, rc, err, what);
    return 0;
}

int ls_sync(ls_store *s, mr_err *err)
{
    int rc = check_open(s, err);
    if (rc)
        return rc;
    if (s->batch_code) {
        int code = s->batch_code;
        mr_errf(err, code, "%s", s->batch_msg);
        mr_err_wrap(err, "logstore %s: sync: the batch was rolled back, nothing in it is durable",
                    s->path);
        s->batch_code = 0;
        s->batch_msg[0] = '\0';
        return code;
    }
    if (!s->in_txn)
        return 0;
    sqlite3_stmt *st = s->st[ST_COMMIT];
    rc = sqlite3_step(st);
    done(st);
    if (rc == SQLITE_DONE) {
        s->in_txn = 0;
        s->pending = 0;
        return 0;
    }
    uint64_t lost = s->pending;
    int code = sqlerr(s, rc, err, "commit of %llu staged writes", (unsigned long long)lost);
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->in_txn = 0;
    s->pending = 0;
    /* Out of space is found when writing the WAL, frame by frame, before the
     * commit frame and its fsync: the batch simply did not happen. Any other
     * failure (a failed fsync, an I/O error, no memory half-way) may have
     * left part of it on disk, and after a failed fsync the kernel may have
     * dropped the dirty pages: this handle can no longer tell what is
     * durable. Only reopening (WAL recovery from what is on disk) can. */
    if (code != MR_EFULL && code != MR_EUNAVAIL)
        s->broken = 1;
    MR_ERROR("ls", "commit failed path=%s writes=%llu code=%s", s->path, (unsigned long long)lost,
             mr_strerror(code));
    if (err)
        mr_err_wrap(err, "not durable");
    return code;
}

void ls_rollback(ls_store *s)
{
    if (!s)
        return;
    if (s->in_txn && !sqlite3_get_autocommit(s->db)) {
        sqlite3_stmt *st = s->st[ST_ROLLBACK];
        sqlite3_step(st);
        done(st);
    }
    s->in_txn = 0;
    s->pending = 0;
    s->batch_code = 0;
    s->batch_msg[0] = '\0';
}

uint64_t ls_pending(const ls_store *s)
{
    return s ? s->pending : 0;
}

/* ---- Open and close ---- */

static int exec_sql(ls_store *s, const char *sql, mr_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    sqlite3_free(msg);
    if (rc != SQLITE_OK)
        return sqlerr(s, rc, err, "%.80s", sql);
    return 0;
}

static int pragma_int(ls_store *s, const char *sql, int64_t *out, mr_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sqlerr(s, rc, err, "%s", sql);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sqlerr(s, rc, err, "%s", sql);
    return 0;
}

/* A new file's directory entry must reach the disk too, or a power loss can
 * make the whole store vanish after we acknowledged writes to it. SQLite
 * syncs the directory for the WAL it creates, not for the main file. */
static int sync_parent_dir(ls_store *s, mr_err *err)
{
    char *dir = strdup(s->path);
    if (!dir)
        return mr_errf(err, MR_ENOMEM, "logstore: out of memory");
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash == dir)
        d = "/";
    else if (slash) {
        *slash = '\0';
        d = dir;
    }
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0 || fsync(fd) != 0)
        rc = mr_errf(err, MR_EIO, "logstore %s: fsync of directory %s: %s", s->path, d,
                     strerror(errno));
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

static int setup_schema(ls_store *s, mr_err *err)
{
    int64_t app = 0, version = 0, tables = 0;
    int rc = exec_sql(s, "BEGIN IMMEDIATE", err);
    if (rc)
        return rc;
    if ((rc = pragma_int(s, "PRAGMA application_id", &app, err)) ||
        (rc = pragma_int(s, "PRAGMA user_version", &version, err)) ||
        (rc = pragma_int(s, "SELECT count(*) FROM sqlite_schema", &tables, err)))
        goto fail;
    if (app == 0 && version == 0 && tables == 0) {
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA application_id = %d; PRAGMA user_version = %d;",
                 LS_APP_ID, LS_FORMAT);
        if ((rc = exec_sql(s, schema_sql, err)) || (rc = exec_sql(s, sql, err)))
            goto fail;
    } else if (app != LS_APP_ID) {
        rc = mr_errf(err, MR_EINVAL, "logstore %s: not a Meridian log store (application_id %lld)",
                     s->path, (long long)app);
        goto fail;
    } else if (version != LS_FORMAT) {
        rc =
            mr_errf(err, MR_EINVAL, "logstore %s: format version %lld, this build reads version %d",
                    s->path, (long long)version, LS_FORMAT);
        goto fail;
    }
    return exec_sql(s, "COMMIT", err);
fail:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int ls_open(const char *path, const ls_options *opt, ls_store **out, mr_err *err)
{
    if (!path || !*path || !out)
        return mr_errf(err, MR_EINVAL, "logstore: open needs a path and an out pointer");
    *out = NULL;
    if (opt && opt->max_bytes < 0)
        return mr_errf(err, MR_EINVAL, "logstore %s: negative max_bytes", path);
    ls_store *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return mr_errf(err, MR_ENOMEM, "logstore: out of memory");
    }
    struct stat sb;
    int created = stat(path, &sb) != 0;
    int rc = sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = sqlerr(s, rc, err, "open");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* EXCLUSIVE before WAL: the file is locked for as long as we hold it (two
     * replicas sharing one log would be a disaster), and the WAL index lives
     * in our heap instead of a shared-memory file. FULL: see ls.h. */
    if ((rc = exec_sql(s, "PRAGMA locking_mode = EXCLUSIVE", err)))
        goto fail;
    {
        sqlite3_stmt *st;
        rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
        if (rc == SQLITE_OK) {
            rc = sqlite3_step(st);
            int wal =
                rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
            sqlite3_finalize(st);
            if (rc == SQLITE_ROW && !wal) {
                rc = mr_errf(err, MR_EIO, "logstore %s: SQLite refused WAL mode", path);
                goto fail;
            }
            if (rc == SQLITE_ROW)
                rc = SQLITE_OK;
        }
        if (rc != SQLITE_OK) {
            sqlerr(s, rc, err, "enter WAL mode");
            rc = mr_sqlite_code(rc);
            goto fail;
        }
    }
    char sql[128];
    snprintf(sql, sizeof sql, "PRAGMA synchronous = FULL; PRAGMA journal_size_limit = %lld;",
             LS_WAL_LIMIT);
    if ((rc = exec_sql(s, sql, err)))
        goto fail;
    int64_t sync_level = -1;
    if ((rc = pragma_int(s, "PRAGMA synchronous", &sync_level, err)))
        goto fail;
    if (sync_level != 2) {
        rc = mr_errf(err, MR_EIO, "logstore %s: synchronous is %lld, not FULL", path,
                     (long long)sync_level);
        goto fail;
    }
    if ((rc = setup_schema(s, err)))
        goto fail;
    if (opt && opt->max_bytes > 0) {
        int64_t page = 0, pages;
        if ((rc = pragma_int(s, "PRAGMA page_size", &page, err)))
            goto fail;
        pages = opt->max_bytes / (page > 0 ? page : 4096);
        snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)(pages ? pages : 1));
        int64_t got = 0;
        if ((rc = pragma_int(s, sql, &got, err)))
            goto fail;
    }
    if (created && (rc = sync_parent_dir(s, err)))
        goto fail;
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            sqlerr(s, rc, err, "prepare \"%.60s\"", sql_text[i]);
            rc = mr_sqlite_code(rc);
            goto fail;
        }
    }
    *out = s;
    return 0;
fail:
    if (!rc)
        rc = err ? err->code : MR_EIO;
    if (err)
        mr_err_wrap(err, "open");
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
    return rc;
}

void ls_close(ls_store *s)
{
    if (!s)
        return;
    if (s->in_txn && s->pending)
        MR_WARN("ls", "closing with unsynced writes path=%s discarded=%llu", s->path,
                (unsigned long long)s->pending);
    if (s->in_txn && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    if (sqlite3_close(s->db) != SQLITE_OK)
        MR_WARN("ls", "close failed path=%s err=\"%s\"", s->path, sqlite3_errmsg(s->db));
    free(s->path);
    free(s);
}

/* ---- Hard state ---- */

/* Reads the group row: promise and chosen point, each verified. */
static int get_group(ls_store *s, uint64_t group, int *has_promise, ls_ballot *promised,
                     uint64_t *chosen, mr_err *err)
{
    sqlite3_stmt *st = s->st[ST_GET_GROUP];
    bind_u64(st, 1, group);
    *has_promise = 0;
    *promised = (ls_ballot){0, 0};
    *chosen = 0;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        done(st);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        done(st);
        return sqlerr(s, rc, err, "read hard state of group %llu", (unsigned long long)group);
    }
    if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
        ls_ballot b = {col_u64(st, 0), col_u64(st, 1)};
        uint32_t want = (uint32_t)col_u64(st, 2);
        if (want != promise_crc(group, b)) {
            done(st);
            return corrupt(s, err, "promise of group %llu failed its checksum",
                           (unsigned long long)group);
        }
        *has_promise = 1;
        *promised = b;
    }
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
        uint64_t c = col_u64(st, 3);
        if ((uint32_t)col_u64(st, 4) != chosen_crc(group, c)) {
            done(st);
            return corrupt(s, err, "chosen point of group %llu failed its checksum",
                           (unsigned long long)group);
        }
        *chosen = c;
    }
    done(st);
    return 0;
}

static int ballot_less(ls_ballot a, ls_ballot b)
{
    return a.round < b.round || (a.round == b.round && a.node < b.node);
}

int ls_set_promise(ls_store *s, uint64_t group, ls_ballot promised, mr_err *err)
{
    int rc = check_open(s, err);
    if (rc || (rc = check_ballot(promised, err)))
        return rc;
    int has;
    ls_ballot old;
    uint64_t chosen;
    if ((rc = get_group(s, group, &has, &old, &chosen, err)))
        return rc;
    /* An acceptor's promise only grows (Paxos phase 1b); a smaller one is a caller bug. */
    if (has && ballot_less(promised, old))
        return mr_errf(err, MR_EINVAL,
                       "logstore: promise (%llu, %llu) of group %llu is below the stored "
                       "(%llu, %llu)",
                       (unsigned long long)promised.round, (unsigned long long)promised.node,
                       (unsigned long long)group, (unsigned long long)old.round,
                       (unsigned long long)old.node);
    if ((rc = begin_write(s, err)))
        return rc;
    sqlite3_stmt *st = s->st[ST_SET_PROMISE];
    bind_u64(st, 1, group);
    bind_u64(st, 2, promised.round);
    bind_u64(st, 3, promised.node);
    sqlite3_bind_int64(st, 4, promise_crc(group, promised));
    if ((rc = run_write(s, st, "write promise", err)))
        return rc;
    s->pending++;
    return 0;
}

int ls_set_chosen(ls_store *s, uint64_t group, uint64_t chosen, mr_err *err)
{
    int rc = check_open(s, err);
    if (rc || (rc = check_slot(chosen, "chosen point", err)))
        return rc;
    int has;
    ls_ballot b;
    uint64_t old;
    if ((rc = get_group(s, group, &has, &b, &old, err)))
        return rc;
    if (chosen < old)
        return mr_errf(
            err, MR_EINVAL, "logstore: chosen point %llu of group %llu is below the stored %llu",
            (unsigned long long)chosen, (unsigned long long)group, (unsigned long long)old);
    if (chosen == old && old != 0)
        return 0;
    if ((rc = begin_write(s, err)))
        return rc;
    sqlite3_stmt *st = s->st[ST_SET_CHOSEN];
    bind_u64(st, 1, group);
    bind_u64(st, 2, chosen);
    sqlite3_bind_int64(st, 3, chosen_crc(group, chosen));
    if ((rc = run_write(s, st, "write chosen point", err)))
        return rc;
    s->pending++;
    return 0;
}

static int check_key(const char *key, mr_err *err)
{
    if (!key || !*key)
        return mr_errf(err, MR_EINVAL, "logstore: empty metadata key");
    if (strlen(key) > LS_MAX_KEYLEN)
        return mr_errf(err, MR_EINVAL, "logstore: metadata key longer than %d bytes",
                       LS_MAX_KEYLEN);
    return 0;
}

int ls_put_meta(ls_store *s, uint64_t group, const char *key, const void *value, size_t len,
                mr_err *err)
{
    int rc = check_open(s, err);
    if (rc || (rc = check_key(key, err)) || (rc = check_value(value, len, "metadata", err)) ||
        (rc = begin_write(s, err)))
        return rc;
    size_t klen = strlen(key);
    sqlite3_stmt *st = s->st[ST_PUT_META];
    bind_u64(st, 1, group);
    sqlite3_bind_text(st, 2, key, (int)klen, SQLITE_STATIC);
    bind_blob(st, 3, value, len);
    sqlite3_bind_int64(st, 4, meta_crc(group, key, klen, value, len));
    if ((rc = run_write(s, st, "write metadata", err)))
        return rc;
    s->pending++;
    return 0;
}

int ls_get_meta(ls_store *s, uint64_t group, const char *key, void **value, size_t *len,
                mr_err *err)
{
    int rc = check_open(s, err);
    if (rc || (rc = check_key(key, err)))
        return rc;
    if (!value || !len)
        return mr_errf(err, MR_EINVAL, "logstore: get_meta needs output pointers");
    size_t klen = strlen(key);
    sqlite3_stmt *st = s->st[ST_GET_META];
    bind_u64(st, 1, group);
    sqlite3_bind_text(st, 2, key, (int)klen, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        done(st);
        return mr_errf(err, MR_ENOTFOUND, "logstore: no metadata \"%s\" for group %llu", key,
                       (unsigned long long)group);
    }
    if (rc != SQLITE_ROW) {
        done(st);
        return sqlerr(s, rc, err, "read metadata \"%s\"", key);
    }
    size_t n;
    const void *p = col_blob(st, 0, &n);
    if ((uint32_t)col_u64(st, 1) != meta_crc(group, key, klen, p, n)) {
        done(st);
        return corrupt(s, err, "metadata \"%s\" of group %llu failed its checksum", key,
                       (unsigned long long)group);
    }
    void *copy = malloc(n ? n : 1);
    if (!copy) {
        done(st);
        return mr_errf(err, MR_ENOMEM, "logstore: out of memory");
    }
    memcpy(copy, p, n);
    done(st);
    *value = copy;
    *len = n;
    return 0;
}

/* ---- Entries ---- */

/* The group's snapshot slot, or -1 with no snapshot; the blob is not read. */
static int snap_slot(ls_store *s, uint64_t group, int64_t *slot, mr_err *err)
{
    sqlite3_stmt *st = s->st[ST_GET_SNAP];
    bind_u64(st, 1, group);
    int rc = sqlite3_step(st);
    *slot = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sqlerr(s, rc, err, "read snapshot of group %llu", (unsigned long long)group);
    return 0;
}

static int check_entry(const ls_entry *e, mr_err *err)
{
    int rc;
    if (!e)
        return mr_errf(err, MR_EINVAL, "logstore: NULL entry");
    if ((rc = check_slot(e->slot, "slot", err)) || (rc = check_ballot(e->ballot, err)) ||
        (rc = check_value(e->value, e->len, "entry value", err)))
        return rc;
    return 0;
}

static int put_one(ls_store *s, uint64_t group, const ls_entry *e, mr_err *err)
{
    sqlite3_stmt *st = s->st[ST_PUT_ENTRY];
    bind_u64(st, 1, group);
    bind_u64(st, 2, e->slot);
    bind_u64(st, 3, e->ballot.round);
    bind_u64(st, 4, e->ballot.node);
    sqlite3_bind_int64(st, 5, e->ts);
    sqlite3_bind_int64(st, 6, e->kind);
    bind_blob(st, 7, e->value, e->len);
    sqlite3_bind_int64(st, 8, entry_crc(group, e));
    int rc = run_write(s, st, "write entry", err);
    if (rc)
        return rc;
    s->pending++;
    return 0;
}

int ls_put_entry(ls_store *s, uint64_t group, const ls_entry *e, mr_err *err)
{
    return ls_put_entries(s, group, e, 1, err);
}

int ls_put_entries(ls_store *s, uint64_t group, const ls_entry *e, size_t n, mr_err *err)
{
    int rc = check_open(s, err);
    if (rc)
        return rc;
    if (n && !e)
        return mr_errf(err, MR_EINVAL, "logstore: NULL entries");
    /* Validate all first, so a bad entry rejects the call without staging half of it. */
    for (size_t i = 0; i < n; i++)
        if ((rc = check_entry(&e[i], err)))
            return rc;
    if (!n)
        return 0;
    if ((rc = begin_write(s, err)))
        return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = put_one(s, group, &e[i], err)))
            return rc;
    return 0;
}

/* Reads and verifies the entry at the statement's current row. */
static int row_entry(ls_store *s, sqlite3_stmt *st, uint64_t group, ls_entry *e, mr_err *err)
{
    e->slot = col_u64(st, 0);
    e->ballot.round = col_u64(st, 1);
    e->ballot.node = col_u64(st, 2);
    e->ts = sqlite3_column_int64(st, 3);
    e->kind = (uint32_t)col_u64(st, 4);
    e->value = col_blob(st, 5, &e->len);
    uint32_t stored = (uint32_t)col_u64(st, 6);
    uint32_t computed = entry_crc(group, e);
    if (stored != computed)
        return corrupt(s, err,
                       "entry at slot %llu of group %llu failed its checksum (stored %08x, "
                       "computed %08x)",
                       (unsigned long long)e->slot, (unsigned long long)group, stored, computed);
    return 0;
}

int ls_get_entry(ls_store *s, uint64_t group, uint64_t slot, ls_entry *out, mr_err *err)
{
    int rc = check_open(s, err);
    if (rc || (rc = check_slot(slot, "slot", err)))
        return rc;
    if (!out)
        return mr_errf(err, MR_EINVAL, "logstore: get_entry needs an output entry");
    sqlite3_stmt *st = s->st[ST_GET_ENTRY];
    bind_u64(st, 1, group);
    bind_u64(st, 2, slot);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        done(st);
        return mr_errf(err, MR_ENOTFOUND, "logstore: no entry at slot %llu of group %llu",
                       (unsigned long long)slot, (unsigned long long)group);
    }
    if (rc != SQLITE_ROW) {
        done(st);
        return sqlerr(s, rc, err, "read entry %llu", (unsigned long long)slot);
    }
    ls_entry e;
    if ((rc = row_entry(s, st, group, &e, err))) {
        done(st);
        return rc;
    }
    void *copy = malloc(e.len ? e.len : 1);
    if (!copy) {
        done(st);
        return mr_errf(err, MR_ENOMEM, "logstore: out of memory");
    }
    memcpy(copy, e.value, e.len);
    done(st);
    e.value = copy;
    *out = e;
    return 0;
}

int ls_scan(ls_store *s, uint64_t group, uint64_t from, uint64_t to, ls_entry_fn fn, void *arg,
            mr_err *err)
{
    int rc = check_open(s, err);
    if (rc)
        return rc;
    if (!fn)
        return mr_errf(err, MR_EINVAL, "logstore: scan needs a callback");
    if (from > LS_MAX_SLOT || from > to)
        return 0;
    if (to > LS_MAX_SLOT)
        to = LS_MAX_SLOT;
    sqlite3_stmt *st = s->st[ST_SCAN];
    if (sqlite3_stmt_busy(st))
        return mr_errf(err, MR_EINVAL, "logstore: ls_scan called from inside a scan");
    bind_u64(st, 1, group);
    bind_u64(st, 2, from);
    bind_u64(st, 3, to);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ls_entry e;
        int r = row_entry(s, st, group, &e, err);
        if (!r)
            r = fn(arg, &e);
        if (r) {
            done(st);
            return r;
        }
    }
    done(st);
    if (rc != SQLITE_DONE)
        return sqlerr(s, rc, err, "scan group %llu", (unsigned long long)group);
    return 0;
}

/* Growable copy of a scan, turned into one allocation at the end. */
typedef struct range_buf {
    ls_entry *e;
    size_t n, cap;
    unsigned char *bytes;
    size_t used, bcap;
} range_buf;

static int range_add(void *arg, const ls_entry *e)
{
    range_buf *b = arg;
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        ls_entry *ne = realloc(b->e, cap * sizeof *ne);
        if (!ne)
            return MR_ENOMEM;
        b->e = ne;
        b->cap = cap;
    }
    if (b->used + e->len > b->bcap) {
        size_t cap = b->bcap ? 2 * b->bcap : 4096;
        while (cap < b->used + e->len)
            cap *= 2;
        unsigned char *nb = realloc(b->bytes, cap);
        if (!nb)
            return MR_ENOMEM;
        b->bytes = nb;
        b->bcap = cap;
    }
    b->e[b->n] = *e;
    b->e[b->n].value = (const void *)(uintptr_t)b->used; /* an offset until the end */
    if (e->len)
        memcpy(b->bytes + b->used, e->value, e->len);
    b->used += e->len;
    b->n++;
    return 0;
}

int ls_read_range(ls_store *s, uint64_t group, uint64_t from, uint64_t to, ls_entry **out,
                  size_t *n, mr_err *err)
{
    if (!out || !n)
        return mr_errf(err, MR_EINVAL, "logstore: read_range needs output pointers");
    *out = NULL;
    *n = 0;
    range_buf b = {0};
    int rc = ls_scan(s, group, from, to, range_add, &b, err);
    if (rc == MR_ENOMEM && err && err->code != MR_ENOMEM)
        mr_errf(err, MR_ENOMEM, "logstore: out of memory reading a range");
    ls_entry *res = NULL;
    if (!rc && b.n) {
        size_t head = b.n * sizeof *res;
        res = malloc(head + b.used);
        if (!res)
            rc = mr_errf(err, MR_ENOMEM, "logstore: out of memory reading a range");
    }
    if (!rc && res) {
        unsigned char *vals = (unsigned char *)res + b.n * sizeof *res;
        if (b.used)
            memcpy(vals, b.bytes, b.used);
        for (size_t i = 0; i < b.n; i++) {
            res[i] = b.e[i];
            res[i].value = vals + (uintptr_t)b.e[i].value;
        }
        *out = res;
        *n = b.n;
    }
    free(b.e);
    free(b.bytes);
    return rc;
}

/* ---- Configurations, snapshots, truncation ---- */

int ls_put_config(ls_store *s, uint64_t group, uint64_t slot, const void *value, size_t len,
                  mr_err *err)
{
    int rc = check_open(s, err);
    if (rc || (rc = check_slot(slot, "config slot", err)) ||
        (rc = check_value(value, len, "configuration", err)) || (rc = begin_write(s, err)))
        return rc;
    sqlite3_stmt *st = s->st[ST_PUT_CONFIG];
    bind_u64(st, 1, group);
    bind_u64(st, 2, slot);
    bind_blob(st, 3, value, len);
    sqlite3_bind_int64(st, 4, config_crc(group, slot, value, len));
    if ((rc = run_write(s, st, "write configuration", err)))
        return rc;
    s->pending++;
    return 0;
}

int ls_install_snapshot(ls_store *s, uint64_t group, uint64_t last_slot, const void *meta,
                        size_t meta_len, const void *data, size_t len, mr_err *err)
{
    int rc = check_open(s, err);
    if (rc || (rc = check_slot(last_slot, "snapshot slot", err)) ||
        (rc = check_value(meta, meta_len, "snapshot metadata", err)) ||
        (rc = check_value(data, len, "snapshot", err)))
        return rc;
    int64_t old;
    if ((rc = snap_slot(s, group, &old, err)))
        return rc;
    /* An older snapshot after a truncation would silently lose the slots in
     * between: the log no longer has them. */
    if (old > (int64_t)last_slot)
        return mr_errf(err, MR_EINVAL,
                       "logstore: snapshot at slot %llu of group %llu is older than the stored "
                       "one at %lld",
                       (unsigned long long)last_slot, (unsigned long long)group, (long long)old);
    if ((rc = begin_write(s, err)))
        return rc;
    sqlite3_stmt *st = s->st[ST_PUT_SNAP];
    bind_u64(st, 1, group);
    bind_u64(st, 2, last_slot);
    bind_blob(st, 3, meta, meta_len);
    bind_blob(st, 4, data, len);
    sqlite3_bind_int64(st, 5, snap_crc(group, last_slot, meta, meta_len, data, len));
    if ((rc = run_write(s, st, "write snapshot", err)))
        return rc;
    s->pending++;
    return 0;
}

int ls_truncate_prefix(ls_store *s, uint64_t group, uint64_t upto, mr_err *err)
{
    int rc = check_open(s, err);
    if (rc || (rc = check_slot(upto, "truncation point", err)))
        return rc;
    int64_t snap;
    if ((rc = snap_slot(s, group, &snap, err)))
        return rc;
    if (snap < (int64_t)upto)
        return mr_errf(err, MR_EINVAL,
                       "logstore: cannot truncate group %llu up to slot %llu: its snapshot "
                       "covers only up to %lld",
                       (unsigned long long)group, (unsigned long long)upto, (long long)snap);
    if ((rc = begin_write(s, err)))
        return rc;
    sqlite3_stmt *st = s->st[ST_DEL_ENTRIES_UPTO];
    bind_u64(st, 1, group);
    bind_u64(st, 2, upto);
    if ((rc = run_write(s, st, "truncate entries", err)))
        return rc;
    st = s->st[ST_DEL_CONFIGS_BEFORE];
    bind_u64(st, 1, group);
    bind_u64(st, 2, upto);
    if ((rc = run_write(s, st, "truncate configurations", err)))
        return rc;
    s->pending++;
    return 0;
}

int ls_drop_group(ls_store *s, uint64_t group, mr_err *err)
{
    int rc = check_open(s, err);
    if (rc || (rc = begin_write(s, err)))
        return rc;
    static const int drops[] = {ST_DROP_GROUP, ST_DROP_ENTRIES, ST_DROP_META, ST_DROP_CONFIGS,
                                ST_DROP_SNAP};
    for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
        sqlite3_stmt *st = s->st[drops[i]];
        bind_u64(st, 1, group);
        if ((rc = run_write(s, st, "drop group", err)))
            return rc;
    }
    s->pending++;
    return 0;
}

/* ---- Restart ---- */

void ls_group_state_free(ls_group_state *st)
{
    if (!st)
        return;
    free(st->snap);
    free(st->snap_meta);
    free(st->entries);
    for (size_t i = 0; i < st->n_configs; i++)
        free(st->configs[i].value);
    free(st->configs);
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->meta);
    memset(st, 0, sizeof *st);
}

static void *dup_bytes(const void *p, size_t n)
{
    void *c = malloc(n ? n : 1);
    if (c && n)
        memcpy(c, p, n);
    return c;
}

static int load_snapshot(ls_store *s, uint64_t group, ls_group_state *g, mr_err *err)
{
    sqlite3_stmt *st = s->st[ST_GET_SNAP];
    bind_u64(st, 1, group);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        uint64_t slot = col_u64(st, 0);
        size_t mn, n;
        const void *m = col_blob(st, 1, &mn);
        const void *p = col_blob(st, 2, &n);
        uint32_t stored = (uint32_t)col_u64(st, 3);
        if (stored != snap_crc(group, slot, m, mn, p, n)) {
            done(st);
            return corrupt(s, err, "snapshot at slot %llu of group %llu failed its checksum",
                           (unsigned long long)slot, (unsigned long long)group);
        }
        if (!(g->snap = dup_bytes(p, n)) || !(g->snap_meta = dup_bytes(m, mn))) {
            done(st);
            return mr_errf(err, MR_ENOMEM, "logstore: out of memory loading a snapshot");
        }
        g->has_snapshot = 1;
        g->snap_slot = slot;
        g->snap_len = n;
        g->snap_meta_len = mn;
        rc = SQLITE_DONE;
    }
    done(st);
    if (rc != SQLITE_DONE)
        return sqlerr(s, rc, err, "read snapshot of group %llu", (unsigned long long)group);
    return 0;
}

static int load_configs(ls_store *s, uint64_t group, ls_group_state *g, mr_err *err)
{
    sqlite3_stmt *st = s->st[ST_LIST_CONFIG];
    bind_u64(st, 1, group);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t slot = col_u64(st, 0);
        size_t n;
        const void *p = col_blob(st, 1, &n);
        if ((uint32_t)col_u64(st, 2) != config_crc(group, slot, p, n)) {
            done(st);
            return corrupt(s, err, "configuration at slot %llu of group %llu failed its checksum",
                           (unsigned long long)slot, (unsigned long long)group);
        }
        if (g->n_configs == cap) {
            cap = cap ? 2 * cap : 4;
            ls_config *nc = realloc(g->configs, cap * sizeof *nc);
            if (!nc) {
                done(st);
                return mr_errf(err, MR_ENOMEM, "logstore: out of memory");
            }
            g->configs = nc;
        }
        void *v = dup_bytes(p, n);
        if (!v) {
            done(st);
            return mr_errf(err, MR_ENOMEM, "logstore: out of memory");
        }
        g->configs[g->n_configs++] = (ls_config){slot, v, n};
    }
    done(st);
    if (rc != SQLITE_DONE)
        return sqlerr(s, rc, err, "read configurations of group %llu", (unsigned long long)group);
    return 0;
}

static int load_meta(ls_store *s, uint64_t group, ls_group_state *g, mr_err *err)
{
    sqlite3_stmt *st = s->st[ST_LIST_META];
    bind_u64(st, 1, group);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 0);
        size_t klen = (size_t)sqlite3_column_bytes(st, 0);
        size_t n;
        const void *p = col_blob(st, 1, &n);
        if (!key || (uint32_t)col_u64(st, 2) != meta_crc(group, key, klen, p, n)) {
            /* Report before the reset frees the key. */
            rc = corrupt(s, err, "metadata \"%.*s\" of group %llu failed its checksum",
                         key ? (int)(klen < 64 ? klen : 64) : 1, key ? key : "?",
                         (unsigned long long)group);
            done(st);
            return rc;
        }
        if (g->n_meta == cap) {
            cap = cap ? 2 * cap : 4;
            ls_meta *nm = realloc(g->meta, cap * sizeof *nm);
            if (!nm) {
                done(st);
                return mr_errf(err, MR_ENOMEM, "logstore: out of memory");
            }
            g->meta = nm;
        }
        char *k = strndup(key, klen);
        void *v = dup_bytes(p, n);
        if (!k || !v) {
            free(k);
            free(v);
            done(st);
            return mr_errf(err, MR_ENOMEM, "logstore: out of memory");
        }
        g->meta[g->n_meta++] = (ls_meta){k, v, n};
    }
    done(st);
    if (rc != SQLITE_DONE)
        return sqlerr(s, rc, err, "read metadata of group %llu", (unsigned long long)group);
    return 0;
}

int ls_load_group(ls_store *s, uint64_t group, ls_group_state *out, mr_err *err)
{
    int rc = check_open(s, err);
    if (rc)
        return rc;
    if (!out)
        return mr_errf(err, MR_EINVAL, "logstore: load_group needs an output");
    memset(out, 0, sizeof *out);
    ls_group_state g = {.group = group};
    if ((rc = get_group(s, group, &g.has_promise, &g.promised, &g.chosen, err)) ||
        (rc = load_snapshot(s, group, &g, err)) ||
        (rc = ls_read_range(s, group, 0, LS_MAX_SLOT, &g.entries, &g.n_entries, err)) ||
        (rc = load_configs(s, group, &g, err)) || (rc = load_meta(s, group, &g, err)))
        goto fail;
    *out = g;
    return 0;
fail:
    ls_group_state_free(&g);
    if (err)
        mr_err_wrap(err, "load group %llu", (unsigned long long)group);
    return rc;
}

int ls_list_groups(ls_store *s, uint64_t **groups, size_t *n, mr_err *err)
{
    int rc = check_open(s, err);
    if (rc)
        return rc;
    if (!groups || !n)
        return mr_errf(err, MR_EINVAL, "logstore: list_groups needs output pointers");
    *groups = NULL;
    *n = 0;
    uint64_t *g = NULL;
    size_t cnt = 0, cap = 0;
    sqlite3_stmt *st = s->st[ST_LIST_GROUPS];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? 2 * cap : 8;
            uint64_t *ng = realloc(g, cap * sizeof *ng);
            if (!ng) {
                done(st);
                free(g);
                return mr_errf(err, MR_ENOMEM, "logstore: out of memory");
            }
            g = ng;
        }
        g[cnt++] = col_u64(st, 0);
    }
    done(st);
    if (rc != SQLITE_DONE) {
        free(g);
        return sqlerr(s, rc, err, "list groups");
    }
    *groups = g;
    *n = cnt;
    return 0;
}

int ls_verify(ls_store *s, mr_err *err)
{
    int rc = check_open(s, err);
    if (rc)
        return rc;
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(s->db, "PRAGMA integrity_check(1)", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return sqlerr(s, rc, err, "integrity check");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
        rc = corrupt(s, err, "SQLite integrity check: %s", sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        return rc;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return sqlerr(s, rc, err, "integrity check");
    uint64_t *groups;
    size_t n;
    if ((rc = ls_list_groups(s, &groups, &n, err)))
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        /* Loading a group verifies every one of its records. */
        ls_group_state g;
        rc = ls_load_group(s, groups[i], &g, err);
        ls_group_state_free(&g);
    }
    free(groups);
    return rc;
}

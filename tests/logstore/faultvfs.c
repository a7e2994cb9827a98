/* Fault-injecting SQLite VFS (see faultvfs.h): every file method forwards to
 * the real "unix" file, with counters and failure switches on write and sync. */
#include "tests/logstore/faultvfs.h"

#include <sqlite3.h>
#include <string.h>

faultvfs_state faultvfs;

typedef struct fv_file {
    sqlite3_file base;
    sqlite3_file *real;
} fv_file;

static sqlite3_vfs *orig;
static sqlite3_vfs shim;

#define REAL(f) (((fv_file *)(f))->real)

static int fv_close(sqlite3_file *f)
{
    sqlite3_file *r = REAL(f);
    int rc = r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
    sqlite3_free(r);
    return rc;
}

static int fv_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
    return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int fv_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
    faultvfs.writes++;
    if (faultvfs.fail_writes)
        return SQLITE_FULL;
    return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int fv_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int fv_sync(sqlite3_file *f, int flags)
{
    faultvfs.syncs++;
    if (faultvfs.fail_syncs)
        return SQLITE_IOERR_FSYNC;
    if (faultvfs.skip_syncs)
        return SQLITE_OK;
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int fv_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int fv_lock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xLock(REAL(f), l);
}

static int fv_unlock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), l);
}

static int fv_check_lock(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int fv_fcntl(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int fv_sector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int fv_caps(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int fv_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, pp);
}

static int fv_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void fv_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int fv_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int fv_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}

static int fv_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods fv_io = {
    3,           fv_close,       fv_read,       fv_write, fv_truncate, fv_sync, fv_size,
    fv_lock,     fv_unlock,      fv_check_lock, fv_fcntl, fv_sector,   fv_caps, fv_shm_map,
    fv_shm_lock, fv_shm_barrier, fv_shm_unmap,  fv_fetch, fv_unfetch,
};

static int fv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    fv_file *ff = (fv_file *)f;
    ff->base.pMethods = NULL;
    ff->real = sqlite3_malloc(orig->szOsFile);
    if (!ff->real)
        return SQLITE_NOMEM;
    memset(ff->real, 0, (size_t)orig->szOsFile);
    int rc = orig->xOpen(orig, name, ff->real, flags, out);
    if (rc != SQLITE_OK) {
        if (ff->real->pMethods)
            ff->real->pMethods->xClose(ff->real);
        sqlite3_free(ff->real);
        ff->real = NULL;
        return rc;
    }
    ff->base.pMethods = &fv_io;
    return SQLITE_OK;
}

int faultvfs_install(void)
{
    if (orig)
        return 0;
    orig = sqlite3_vfs_find(NULL);
    if (!orig)
        return -1;
    /* Every VFS method but xOpen works unchanged on the copy. */
    shim = *orig;
    shim.zName = "faultvfs";
    shim.szOsFile = (int)sizeof(fv_file);
    shim.pNext = NULL;
    shim.xOpen = fv_open;
    return sqlite3_vfs_register(&shim, 1) == SQLITE_OK ? 0 : -1;
}

void faultvfs_uninstall(void)
{
    if (!orig)
        return;
    sqlite3_vfs_unregister(&shim);
    sqlite3_vfs_register(orig, 1);
    orig = NULL;
    memset(&faultvfs, 0, sizeof faultvfs);
}

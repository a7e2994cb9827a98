/* A SQLite VFS shim for the log-store tests: counts fsyncs and injects a full
 * disk or a failing fsync, the way SQLite's own tests fail OS calls (os.c). */
#ifndef LS_FAULTVFS_H
#define LS_FAULTVFS_H

/* Counters and switches; reset them freely between steps. */
typedef struct faultvfs_state {
    long syncs;      /* xSync calls on any file */
    long writes;     /* xWrite calls on any file */
    int fail_writes; /* nonzero: every xWrite fails with SQLITE_FULL (ENOSPC) */
    int fail_syncs;  /* nonzero: every xSync fails with SQLITE_IOERR_FSYNC */
    int skip_syncs;  /* nonzero: xSync succeeds without syncing (tests not about durability) */
} faultvfs_state;

extern faultvfs_state faultvfs;

/* Installs the shim as SQLite's default VFS (over "unix"). 0 or -1. */
int faultvfs_install(void);
/* Restores the previous default. */
void faultvfs_uninstall(void);

#endif

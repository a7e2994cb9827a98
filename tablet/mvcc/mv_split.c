/* Split-key choice: the directory boundary nearest the middle of the live data (design.md,
 * "Tablets split by size, never inside a directory unless the directory alone is too big").
 *
 * Between consecutive visible keys a < b, with directory prefixes P = prefix(a) and
 * Q = prefix(b), the boundary is a directory boundary when a does not start with Q and b does not
 * start with P. The split key is then Q itself: every key below Q lacks the prefix Q (a key
 * x with Q <= x < b must start with Q), and every key starting with P sorts below b, so no
 * directory has keys on both sides. Inside an oversized directory any key boundary may serve,
 * and the split key is b. */
#include "tablet/mvcc/mv_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What walk_fn returns to end the walk early: above every MR_E* code, so never mistaken for an
 * error of the scan itself. */
#define SPLIT_DONE (MR_ECODE_MAX + 1)

typedef struct cand {
    int ok;
    mv_buf key;
    uint64_t cum; /* live bytes strictly below the split */
} cand;

typedef struct split {
    const mv_split_opts *o;
    uint64_t total, cum;
    mv_buf prev;      /* previous key */
    size_t prev_plen; /* its prefix length */
    int have_prev;
    cand dir_left, dir_right;     /* last directory boundary <= half, first one past it */
    cand inner_left, inner_right; /* the same for any key boundary */
    int nomem;
} split;

static size_t prefix_len(const mv_split_opts *o, const void *key, size_t len)
{
    if (!o->prefix)
        return len;
    size_t p = o->prefix(o->prefix_arg, key, len);
    return p == 0 || p > len ? len : p; /* a nonsensical answer makes the key its own directory */
}

static int starts_with(const void *k, size_t klen, const void *p, size_t plen)
{
    return klen >= plen && memcmp(k, p, plen) == 0;
}

static int sum_fn(void *arg, const mv_version *v)
{
    *(uint64_t *)arg += v->key_len + v->len;
    return 0;
}

static void offer(split *sp, cand *left, cand *right, const void *key, size_t klen)
{
    /* 2*cum vs total compares with the middle without rounding. */
    cand *c = 2 * sp->cum <= sp->total ? left : (right->ok ? NULL : right);
    if (!c)
        return;
    if (mv_buf_set(&c->key, key, klen))
        sp->nomem = 1;
    c->ok = 1;
    c->cum = sp->cum;
}

static int walk_fn(void *arg, const mv_version *v)
{
    split *sp = arg;
    size_t plen = prefix_len(sp->o, v->key, v->key_len);
    if (sp->have_prev) {
        offer(sp, &sp->inner_left, &sp->inner_right, v->key, v->key_len);
        if (!starts_with(sp->prev.p, sp->prev.len, v->key, plen) &&
            !starts_with(v->key, v->key_len, sp->prev.p, sp->prev_plen))
            offer(sp, &sp->dir_left, &sp->dir_right, v->key, plen);
    }
    if (mv_buf_set(&sp->prev, v->key, v->key_len))
        sp->nomem = 1;
    sp->prev_plen = plen;
    sp->have_prev = 1;
    sp->cum += v->key_len + v->len;
    if (sp->nomem)
        return MR_ENOMEM;
    return sp->dir_right.ok ? SPLIT_DONE
                            : 0; /* nothing past the first boundary beyond the middle */
}

static uint64_t dist(const split *sp, const cand *c)
{
    uint64_t a = 2 * c->cum, b = sp->total;
    return a > b ? a - b : b - a;
}

int mv_split_key(mv_store *s, const mv_split_opts *o, void **key, size_t *key_len, mr_err *err)
{
    if (!s || !o || !key || !key_len)
        return mr_errf(err, MR_EINVAL, "mvcc: split_key needs a store, options and outputs");
    *key = NULL;
    *key_len = 0;
    split sp = {.o = o};
    mv_scan_opts so = {.ts = o->ts};
    if (!s->r_start_len) { /* system keys are not the range's data */
        so.start = "\x01";
        so.start_len = 1;
    }
    int code = mv_scan(s, &so, sum_fn, &sp.total, NULL, err);
    if (code)
        return mv_wrap(err, code, "split: sizing");
    code = mv_scan(s, &so, walk_fn, &sp, NULL, err);
    if (code == SPLIT_DONE)
        code = 0;
    if (code == MR_ENOMEM)
        code = mr_errf(err, MR_ENOMEM, "mvcc: out of memory choosing a split key");
    const cand *best = NULL;
    if (!code) {
        uint64_t lo = sp.dir_left.ok ? sp.dir_left.cum : 0;
        uint64_t hi = sp.dir_right.ok ? sp.dir_right.cum : sp.total;
        const cand *c[4] = {&sp.dir_left, &sp.dir_right, NULL, NULL};
        if (o->max_dir_bytes && hi - lo > o->max_dir_bytes) {
            c[2] = &sp.inner_left;
            c[3] = &sp.inner_right;
        }
        for (int i = 0; i < 4; i++)
            if (c[i] && c[i]->ok && (!best || dist(&sp, c[i]) < dist(&sp, best)))
                best = c[i];
        if (!best)
            code = mr_errf(err, MR_ENOTFOUND, "mvcc %s: no split point (%llu live bytes at %lld%s)",
                           s->path, (unsigned long long)sp.total, (long long)o->ts,
                           sp.have_prev ? ", one directory or one key" : ", no keys");
    }
    if (!code) {
        *key = malloc(best->key.len);
        if (!*key)
            code = mr_errf(err, MR_ENOMEM, "mvcc: out of memory");
        else {
            memcpy(*key, best->key.p, best->key.len);
            *key_len = best->key.len;
        }
    }
    mv_buf_free(&sp.prev);
    mv_buf_free(&sp.dir_left.key);
    mv_buf_free(&sp.dir_right.key);
    mv_buf_free(&sp.inner_left.key);
    mv_buf_free(&sp.inner_right.key);
    return code;
}

int mv_size_data(mv_store *s, mv_size *out, mr_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT count(*), ifnull(sum(val IS NULL), 0), ifnull(sum(length(key)"
                                " + ifnull(length(val), 0)), 0) FROM mv_version WHERE key < x'01'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return mv_sqlerr(s, rc, err, "counting the system keys");
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return mv_sqlerr(s, rc, err, "counting the system keys");
    }
    uint64_t n = (uint64_t)sqlite3_column_int64(st, 0);
    uint64_t tombs = (uint64_t)sqlite3_column_int64(st, 1);
    uint64_t bytes = (uint64_t)sqlite3_column_int64(st, 2) + n * MV_VERSION_OVERHEAD;
    sqlite3_finalize(st);
    *out = s->size;
    out->versions -= n < out->versions ? n : out->versions;
    out->tombstones -= tombs < out->tombstones ? tombs : out->tombstones;
    out->bytes -= bytes < out->bytes ? bytes : out->bytes;
    return 0;
}

/* ---- Splitting a store in two ---- */

static int fsync_dir_of(const char *path)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes the child's file: this store's snapshot loaded into a fresh store at a temporary
 * path, cut to [key, end) with applied slot 0, checkpointed, closed, renamed into place. */
static int write_child(mv_store *s, const char *path, const void *key, size_t key_len,
                       mr_err *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return mr_errf(err, MR_ENOMEM, "mvcc: out of memory");
    static const char *const sfx[] = {"", "-wal", "-shm"};
    void *snap = NULL;
    size_t snap_len = 0;
    mv_store *c = NULL;
    int code = mv_snapshot_mem(s, MV_SNAP_ALL, key, key_len, &snap, &snap_len, err);
    for (int i = 0; !code && i < 3; i++) {
        snprintf(tmp, plen + 16, "%s.split%s", path, sfx[i]);
        if (unlink(tmp) != 0 && errno != ENOENT)
            code = mr_errf(err, MR_EIO, "mvcc: remove %s: %s", tmp, strerror(errno));
    }
    snprintf(tmp, plen + 16, "%s.split", path);
    if (!code)
        code = mv_open(tmp, NULL, &c, err);
    if (!code)
        code = mv_snapshot_load(c, snap, snap_len, err);
    free(snap);
    /* The snapshot holds [key, end) only (the parent's system keys, its
     * transactions' records, stay with it); the child starts its own log. */
    if (!code)
        code = mv_range_txn(c, 0, key, key_len, s->r_end, s->r_end_len, err);
    if (!code)
        code = mv_sync(c, err);
    mv_close(c);
    /* A WAL left beside the new file, or beside an old one at `path`, would be replayed into it
     * on the next open. */
    for (int i = 1; !code && i < 3; i++) {
        char *w = malloc(plen + 8);
        if (!w) {
            code = mr_errf(err, MR_ENOMEM, "mvcc: out of memory");
            break;
        }
        snprintf(w, plen + 8, "%s%s", path, sfx[i]);
        if (unlink(w) != 0 && errno != ENOENT)
            code = mr_errf(err, MR_EIO, "mvcc: remove %s: %s", w, strerror(errno));
        free(w);
    }
    if (!code && rename(tmp, path) != 0)
        code = mr_errf(err, MR_EIO, "mvcc: rename %s: %s", tmp, strerror(errno));
    if (!code && fsync_dir_of(path) != 0)
        code = mr_errf(err, MR_EIO, "mvcc: fsync the directory of %s: %s", path, strerror(errno));
    if (code)
        unlink(tmp);
    free(tmp);
    return code;
}

int mv_split(mv_store *s, uint64_t slot, const char *child_path, const void *key, size_t key_len,
             mr_err *err)
{
    if (!s || !child_path)
        return mr_errf(err, MR_EINVAL, "mvcc: split needs a store and a child path");
    if (mv_check_key(key, key_len, "split key", err))
        return MR_EINVAL;
    if (slot == 0 || slot > (uint64_t)INT64_MAX)
        return mr_errf(err, MR_EINVAL, "mvcc: slot %llu is out of range [1, 2^63-1]",
                       (unsigned long long)slot);
    if (s->r_end_len && mv_keycmp(s->r_end, s->r_end_len, key, key_len) == 0)
        return mr_errf(err, MR_EEXIST, "mvcc %s: already split at this key", s->path);
    if (slot < s->applied)
        return mr_errf(err, MR_EEXIST, "mvcc %s: slot %llu already applied (applied through %llu)",
                       s->path, (unsigned long long)slot, (unsigned long long)s->applied);
    if ((s->r_start_len && mv_keycmp(key, key_len, s->r_start, s->r_start_len) <= 0) ||
        !mv_in_range(s, key, key_len))
        return mr_errf(err, MR_EINVAL, "mvcc: the split key is not strictly inside the range");
    int code = write_child(s, child_path, key, key_len, err);
    if (code)
        return mv_wrap(err, code, "writing the split-off tablet %s", child_path);
    /* The range is freed and replaced by mv_range_txn: keep our own copy of the start. */
    unsigned char *start = NULL;
    size_t start_len = s->r_start_len;
    if (start_len && !(start = malloc(start_len)))
        return mr_errf(err, MR_ENOMEM, "mvcc: out of memory");
    if (start_len)
        memcpy(start, s->r_start, start_len);
    code = mv_range_txn(s, slot, start, start_len, key, key_len, err);
    free(start);
    if (!code)
        code = mv_sync(s, err);
    return code;
}

/* Error codes and growing error messages (see mr_err.h). */
#include "common/mr_err.h"

#include <stdio.h>
#include <string.h>

static const char *const names[MR_ECODE_MAX] = {
    [MR_OK] = "ok",
    [MR_EINVAL] = "invalid argument",
    [MR_EIO] = "I/O error",
    [MR_ETIMEDOUT] = "timed out",
    [MR_ENOMEM] = "out of memory",
    [MR_ECORRUPT] = "data corrupted",
    [MR_EPROTO] = "protocol error",
    [MR_EUNAVAIL] = "unavailable",
    [MR_ENOTLEADER] = "not leader",
    [MR_EABORTED] = "aborted",
    [MR_ENOTFOUND] = "not found",
    [MR_ESTALE] = "below the version horizon",
    [MR_EEXIST] = "already exists",
    [MR_EFULL] = "no space",
};

const char *mr_strerror(int code)
{
    if (code < 0 || code >= MR_ECODE_MAX || !names[code])
        return "unknown error";
    return names[code];
}

void mr_err_clear(mr_err *e)
{
    if (e) {
        e->code = MR_OK;
        e->msg[0] = '\0';
    }
}

int mr_verrf(mr_err *e, int code, const char *fmt, va_list ap)
{
    if (e) {
        e->code = code;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    }
    return code;
}

int mr_errf(mr_err *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    mr_verrf(e, code, fmt, ap);
    va_end(ap);
    return code;
}

int mr_err_wrap(mr_err *e, const char *fmt, ...)
{
    if (!e)
        return MR_EINVAL;
    char ctx[MR_ERRMSG_MAX];
    char old[MR_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    memcpy(old, mr_err_msg(e), sizeof old);
    old[sizeof old - 1] = '\0';
    char both[2 * MR_ERRMSG_MAX + 2];
    snprintf(both, sizeof both, "%s: %s", ctx, old);
    memcpy(e->msg, both, sizeof e->msg - 1);
    e->msg[sizeof e->msg - 1] = '\0';
    return e->code;
}

const char *mr_err_msg(const mr_err *e)
{
    if (!e)
        return "";
    return e->msg[0] ? e->msg : mr_strerror(e->code);
}

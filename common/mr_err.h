/* Errors as values: an int code (0 = success) plus a message that each layer
 * wraps with its own context on the way up, so users see what failed and why. */
#ifndef MR_ERR_H
#define MR_ERR_H

#include <stdarg.h>

enum {
    MR_OK = 0,
    MR_EINVAL,    /* bad argument or input */
    MR_EIO,       /* I/O or system call failure */
    MR_ETIMEDOUT, /* no answer in time */
    MR_ENOMEM,    /* out of memory */
    MR_ECORRUPT,  /* stored or received data failed a check */
    MR_EPROTO,    /* peer broke the protocol */
    MR_EUNAVAIL,  /* service not available (unhealthy clock, no leader, ...) */
    MR_ENOTLEADER,
    MR_EABORTED, /* transaction aborted; retryable */
    MR_ENOTFOUND,
    MR_ESTALE, /* read below the garbage-collection horizon */
    MR_EEXIST,
    MR_EFULL, /* disk or queue full */
    MR_ECODE_MAX
};

#define MR_ERRMSG_MAX 512

typedef struct mr_err {
    int code;
    char msg[MR_ERRMSG_MAX];
} mr_err;

/* Static name of an error code, e.g. "timed out". Never NULL. */
const char *mr_strerror(int code);

/* Reset to success. `e` may be NULL in every function here. */
void mr_err_clear(mr_err *e);

/* Set code and message (printf-style). Returns code, so callers can
 * `return mr_errf(err, MR_EINVAL, "bad port %s", s);`. */
int mr_errf(mr_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int mr_verrf(mr_err *e, int code, const char *fmt, va_list ap);

/* Prefix the existing message with context: "context: old message".
 * Keeps the code. Returns the code. */
int mr_err_wrap(mr_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message, or the code's name when no message was set. */
const char *mr_err_msg(const mr_err *e);

#endif

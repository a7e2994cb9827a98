/* Result codes, the connection's error message, and the checks every
 * argument passes before anything is sent. Pure (no I/O). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/mer_int.h"
#include "common/mr_util.h"

const char *meridian_errstr(int rc)
{
    switch (rc) {
    case MERIDIAN_OK:
        return "ok";
    case MERIDIAN_ERROR:
        return "error";
    case MERIDIAN_NOTFOUND:
        return "not found";
    case MERIDIAN_ABORTED:
        return "aborted";
    case MERIDIAN_UNAVAILABLE:
        return "unavailable";
    case MERIDIAN_UNKNOWN:
        return "outcome unknown";
    case MERIDIAN_STALE:
        return "stale";
    case MERIDIAN_INVALID:
        return "invalid";
    case MERIDIAN_NOMEM:
        return "out of memory";
    case MERIDIAN_TIMEOUT:
        return "timed out";
    default:
        return "unknown code";
    }
}

const char *meridian_errmsg(const meridian *db)
{
    return db ? db->errmsg : "no connection";
}

void meridian_free(void *p)
{
    free(p);
}

void mer_clear(meridian *db)
{
    db->errmsg[0] = '\0';
}

int mer_fail(meridian *db, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof db->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* The node's error strings (tablet/node/nd.h, "Errors"), by what a client can
 * do about them. Routing errors (not_leader, wrong_range, no_group, behind)
 * only surface here once the engine's retries ran out. */
int mer_code_of_error(const char *error)
{
    static const struct {
        const char *error;
        int code;
    } map[] = {
        {"aborted", MERIDIAN_ABORTED},
        {"busy", MERIDIAN_ABORTED}, /* an earlier request of the transaction is still there */
        {"wrong_range", MERIDIAN_ABORTED},
        {"unknown", MERIDIAN_UNKNOWN},
        {"not_leader", MERIDIAN_UNAVAILABLE},
        {"no_group", MERIDIAN_UNAVAILABLE},
        {"uninitialized", MERIDIAN_UNAVAILABLE},
        {"shutdown", MERIDIAN_UNAVAILABLE},
        {"timeout", MERIDIAN_UNAVAILABLE},
        {"unavailable", MERIDIAN_UNAVAILABLE},
        {"behind", MERIDIAN_UNAVAILABLE},
        {"below the version horizon", MERIDIAN_STALE},
        {"invalid", MERIDIAN_INVALID},
        {"too_large", MERIDIAN_ERROR}, /* an answer or commit record over the size limits */
        {"nomem", MERIDIAN_ERROR},     /* the node's memory, not ours */
    };
    for (size_t i = 0; error && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].error, error) == 0)
            return map[i].code;
    return MERIDIAN_ERROR;
}

int mer_code_of_mr(int mr)
{
    switch (mr) {
    case MR_OK:
        return MERIDIAN_OK;
    case MR_ENOMEM:
        return MERIDIAN_NOMEM;
    case MR_EINVAL:
        return MERIDIAN_INVALID;
    case MR_ETIMEDOUT:
    case MR_EUNAVAIL:
    case MR_ENOTLEADER:
        return MERIDIAN_UNAVAILABLE;
    case MR_EABORTED:
        return MERIDIAN_ABORTED;
    case MR_ENOTFOUND:
        return MERIDIAN_NOTFOUND;
    case MR_ESTALE:
        return MERIDIAN_STALE;
    default:
        return MERIDIAN_ERROR;
    }
}

int mer_check_bytes(const void *p, size_t len, bool is_key, char *why, size_t whylen)
{
    const char *what = is_key ? "key" : "value";
    if (is_key && len == 0) {
        snprintf(why, whylen, "key empty");
        return MERIDIAN_INVALID;
    }
    if (len > (is_key ? (size_t)MER_KEY_MAX : (size_t)MER_VALUE_MAX)) {
        snprintf(why, whylen, "%s of %zu bytes, over the %s limit", what, len,
                 is_key ? "4096-byte" : "1 MiB");
        return MERIDIAN_INVALID;
    }
    const char *bad = len && !p ? "NULL" : NULL;
    if (bad) {
        snprintf(why, whylen, "%s %s", what, bad);
        return MERIDIAN_INVALID;
    }
    const unsigned char *s = p;
    for (size_t i = 0; i < len;) {
        size_t n = s[i] ? mr_utf8_seq(s + i, len - i) : 0;
        if (n == 0) {
            snprintf(why, whylen, "%s byte %zu: %s", what, i,
                     s[i] ? "not valid UTF-8" : "a NUL byte");
            return MERIDIAN_INVALID;
        }
        i += n;
    }
    return MERIDIAN_OK;
}

int meridian_check_key(const void *key, size_t klen, char *why, size_t whylen)
{
    char buf[96];
    int rc = mer_check_bytes(key, klen, true, buf, sizeof buf);
    if (why && whylen)
        snprintf(why, whylen, "%s", rc == MERIDIAN_OK ? "" : buf);
    return rc;
}

int meridian_check_value(const void *val, size_t vlen, char *why, size_t whylen)
{
    char buf[96];
    int rc = mer_check_bytes(val, vlen, false, buf, sizeof buf);
    if (why && whylen)
        snprintf(why, whylen, "%s", rc == MERIDIAN_OK ? "" : buf);
    return rc;
}

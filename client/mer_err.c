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

/* The node's error codes (proto/meridian.proto, ErrorCode), by what a client can
 * do about them. Routing errors (not_leader, wrong_range, no_group, behind)
 * only surface here once the engine's retries ran out. */
int mer_code_of_error(Meridian__ErrorCode code)
{
    switch (code) {
    case MERIDIAN__ERROR_CODE__ABORTED:
    case MERIDIAN__ERROR_CODE__BUSY: /* an earlier request of the transaction is still there */
    case MERIDIAN__ERROR_CODE__WRONG_RANGE:
    case MERIDIAN__ERROR_CODE__VOIDED:
        return MERIDIAN_ABORTED;
    case MERIDIAN__ERROR_CODE__UNKNOWN:
        return MERIDIAN_UNKNOWN;
    case MERIDIAN__ERROR_CODE__NOT_LEADER:
    case MERIDIAN__ERROR_CODE__NO_GROUP:
    case MERIDIAN__ERROR_CODE__NOT_INITIALIZED:
    case MERIDIAN__ERROR_CODE__UNAVAILABLE:
    case MERIDIAN__ERROR_CODE__BEHIND:
        return MERIDIAN_UNAVAILABLE;
    case MERIDIAN__ERROR_CODE__STALE:
        return MERIDIAN_STALE;
    case MERIDIAN__ERROR_CODE__INVALID:
        return MERIDIAN_INVALID;
    default: /* too_large (an answer or commit record over the size limits), the node's memory
              * (not ours), forgotten, internal, ... */
        return MERIDIAN_ERROR;
    }
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
    if (len && !p) {
        snprintf(why, whylen, "%s NULL", what);
        return MERIDIAN_INVALID;
    }
    /* Keys whose first byte is 0 are the cluster's own (its tablets' records). */
    if (is_key && ((const unsigned char *)p)[0] == 0) {
        snprintf(why, whylen, "key starts with byte 0 (reserved for the cluster's own keys)");
        return MERIDIAN_INVALID;
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

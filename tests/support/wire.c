/* The wire protocol for tests (see wire.h). */
#include "tests/support/wire.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pr_json.h"
#include "proto/pr_msg.h"

int tw_request(uint8_t type, const char *json, uint8_t **out, size_t *len)
{
    mr_err err;
    if (pr_request_from_text(type, json, out, len, &err) != MR_OK) {
        fprintf(stderr, "test request of type %u is not one: %s: %s\n", type, mr_err_msg(&err),
                json);
        return -1;
    }
    return 0;
}

json_t *tw_reply_view(const void *buf, size_t len)
{
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    const Meridian__Reply *r = pr_reply_decode(&a, buf, len, &err);
    json_t *v = r ? pr_reply_view(r) : NULL;
    pr_arena_free(&a);
    return v;
}

json_t *tw_request_view(uint8_t type, const void *buf, size_t len)
{
    const ProtobufCMessageDescriptor *d = pr_request_descriptor(type);
    if (!d)
        return NULL;
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    const ProtobufCMessage *m = pr_decode(d, &a, buf, len, &err);
    json_t *v = m ? pr_to_json(m) : NULL;
    pr_arena_free(&a);
    return v;
}

/* The error code named (lowercase) in a view, or 0. */
static Meridian__ErrorCode code_named(const char *name)
{
    const ProtobufCEnumDescriptor *d = &meridian__error_code__descriptor;
    for (unsigned i = 0; name && i < d->n_values; i++) {
        const char *s = d->values[i].name;
        size_t k = 0;
        while (s[k] && name[k] && tolower((unsigned char)s[k]) == name[k])
            k++;
        if (!s[k] && !name[k])
            return (Meridian__ErrorCode)d->values[i].value;
    }
    return MERIDIAN__ERROR_CODE__ERROR_UNSPECIFIED;
}

/* The body a successful answer to a request of type (and op) carries. */
static Meridian__Reply__BodyCase body_of(uint8_t type, const json_t *req)
{
    const char *op = json_string_value(json_object_get(req, "op"));
    switch (type) {
    case MERIDIAN__MSG_TYPE__MSG_INFO:
        return MERIDIAN__REPLY__BODY_INFO;
    case MERIDIAN__MSG_TYPE__MSG_INIT:
        return MERIDIAN__REPLY__BODY_INIT;
    case MERIDIAN__MSG_TYPE__MSG_PROPOSE:
        return MERIDIAN__REPLY__BODY_PROPOSE;
    case MERIDIAN__MSG_TYPE__MSG_STATUS:
        return MERIDIAN__REPLY__BODY_STATUS;
    case MERIDIAN__MSG_TYPE__MSG_REGISTER:
        return MERIDIAN__REPLY__BODY_REGISTER;
    case MERIDIAN__MSG_TYPE__MSG_SNAPREAD:
        return MERIDIAN__REPLY__BODY_READ;
    case MERIDIAN__MSG_TYPE__MSG_RANGES:
        return MERIDIAN__REPLY__BODY_RANGES;
    case MERIDIAN__MSG_TYPE__MSG_SPLIT_AT:
        return MERIDIAN__REPLY__BODY_SPLIT_AT;
    case MERIDIAN__MSG_TYPE__MSG_FAULT:
        return MERIDIAN__REPLY__BODY_FAULT;
    case MERIDIAN__MSG_TYPE__MSG_TXN:
        if (op && !strcmp(op, "read"))
            return MERIDIAN__REPLY__BODY_READ;
        if (op && !strcmp(op, "commit"))
            return MERIDIAN__REPLY__BODY_COMMIT;
        if (op && !strcmp(op, "status"))
            return MERIDIAN__REPLY__BODY_TXN_STATUS;
        return MERIDIAN__REPLY__BODY_ACK;
    default:
        return MERIDIAN__REPLY__BODY_ACK;
    }
}

int tw_reply(uint8_t type, const json_t *req, const json_t *view, uint8_t **out, size_t *len)
{
    pr_arena a;
    pr_arena_init(&a);
    mr_err err;
    mr_err_clear(&err);
    Meridian__Reply r = MERIDIAN__REPLY__INIT;
    Meridian__Error e = MERIDIAN__ERROR__INIT;
    int rc = -1;
    if (!json_is_true(json_object_get(view, "ok"))) {
        e.code = code_named(json_string_value(json_object_get(view, "error")));
        if (!e.code) {
            fprintf(stderr, "fake reply: no such error code: %s\n",
                    json_string_value(json_object_get(view, "error")));
            goto done;
        }
        e.message = (char *)json_string_value(json_object_get(view, "message"));
        json_t *v = json_object_get(view, "retryable");
        e.has_retryable = v != NULL;
        e.retryable = json_is_true(v);
        e.leader = (char *)json_string_value(json_object_get(view, "leader"));
        v = json_object_get(view, "owner");
        e.has_owner = v != NULL;
        e.owner = (uint64_t)json_integer_value(v);
        r.error = &e;
    } else {
        r.body_case = body_of(type, req);
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(&meridian__reply__descriptor, r.body_case);
        json_t *body = json_deep_copy(view);
        json_object_del(body, "ok");
        ProtobufCMessage *m = pr_from_json(f->descriptor, body, &a, &err);
        json_decref(body);
        if (!m) {
            fprintf(stderr, "fake reply: not a %s: %s\n",
                    ((const ProtobufCMessageDescriptor *)f->descriptor)->short_name,
                    mr_err_msg(&err));
            goto done;
        }
        *(ProtobufCMessage **)((char *)&r + f->offset) = m;
    }
    if (pr_encode(&r.base, 0, out, len, &err) == MR_OK)
        rc = 0;
    else
        fprintf(stderr, "fake reply: %s\n", mr_err_msg(&err));
done:
    pr_arena_free(&a);
    return rc;
}

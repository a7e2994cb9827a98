/* Test support: the wire protocol (proto/meridian.proto) as the tests write and read it. Tests
 * build requests from hand-written JSON in the schema's JSON mapping (proto/pr_json.h: field
 * names as in the .proto, enums in lower case, bytes as strings or {"hex": ...}) and read every
 * reply through its JSON view: {"ok": true, ...the body's fields} or {"ok": false, "error":
 * "<code>", "message", "retryable", "leader", "owner"}. On the wire everything is binary. */
#ifndef TEST_WIRE_H
#define TEST_WIRE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The request of `type` written as JSON, encoded (*out malloc'd). 0, or -1 with the reason on
 * stderr (a test's own mistake: the text is not such a request). */
int tw_request(uint8_t type, const char *json, uint8_t **out, size_t *len);

/* A REPLY frame's payload as its JSON view (a new reference), or NULL when it is not a Reply. */
json_t *tw_reply_view(const void *buf, size_t len);

/* A request of `type` as its JSON mapping (a new reference), or NULL when it does not decode. */
json_t *tw_request_view(uint8_t type, const void *buf, size_t len);

/* The Reply a scripted fake node sends for `view` (the JSON view, as tw_reply_view gives it),
 * answering a request of `type` whose view is req (its op picks the body of a TXN answer).
 * 0, or -1 with the reason on stderr. */
int tw_reply(uint8_t type, const json_t *req, const json_t *view, uint8_t **out, size_t *len);

#endif

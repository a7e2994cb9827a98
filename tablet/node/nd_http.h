/* A minimal HTTP/1.0 responder on the node's loop for /metrics and /healthz:
 * GET only, one request per connection, bounded request size, then close.
 * Operators scrape it on a private address; it serves nothing else. */
#ifndef ND_HTTP_H
#define ND_HTTP_H

#include <uv.h>

#include "common/mr_err.h"
#include "tablet/node/nd_metrics.h"

typedef struct nd_http nd_http;

/* Fills `body` for `path` and returns the HTTP status (200, 404, 503). */
typedef int (*nd_http_handler)(void *ud, const char *path, nd_text *body,
                               const char **content_type);

int nd_http_start(uv_loop_t *loop, const char *hostport, nd_http_handler h, void *ud, nd_http **out,
                  mr_err *err);
/* Closes the listener and every open connection; frees once they are closed. */
void nd_http_stop(nd_http *s);

#endif

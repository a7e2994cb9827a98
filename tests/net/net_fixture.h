/* Shared by the net tests: temporary certificate directories and a libuv loop
 * driven until a condition holds (with a generous safety limit, never a timing
 * assertion), then torn down leak-free. */
#ifndef NET_FIXTURE_H
#define NET_FIXTURE_H

#include <uv.h>

#include "net/tls.h"

/* mkdtemp under $TMPDIR (or /tmp); returns 0 or -1. dir must hold 256 bytes. */
int fx_tempdir(char *dir);
/* rm -r of a directory made by fx_tempdir. */
void fx_rmdir(const char *dir);

/* A CA in dir plus node certificate "node" for 127.0.0.1/localhost, node
 * certificate "elsewhere" naming only 10.9.9.9, and client certificate "alice".
 * Returns 0 or -1 (message printed). */
int fx_make_pki(const char *dir);
/* TLS context from dir: CA ca.crt, certificate <name>.crt/.key; name NULL = no certificate. */
net_tls_ctx *fx_tls(const char *dir, const char *name);
/* TLS context trusting ca_dir's CA but presenting cert_dir's <name> certificate. */
net_tls_ctx *fx_tls_mixed(const char *ca_dir, const char *cert_dir, const char *name);

/* Runs the loop until *flag is nonzero or limit_ms pass (then returns -1). */
int fx_run_until(uv_loop_t *loop, const int *flag, unsigned limit_ms);
/* Runs the loop for about ms milliseconds. */
void fx_run_for(uv_loop_t *loop, unsigned ms);
/* Runs the loop until it has nothing left, closing stray handles if it must,
 * then uv_loop_close. Returns uv_loop_close's result (0 = everything closed). */
int fx_loop_finish(uv_loop_t *loop);

#endif

/* Clock sources behind tt_clock: each takes one sample (internal header). */
#ifndef TT_SOURCES_H
#define TT_SOURCES_H

#include "truetime/tt.h"

/* chronyd's command socket. tt_chrony_open never contacts chronyd; a missing
 * daemon shows up as a failed sample. Free with tt_chrony_close. */
typedef struct tt_chrony tt_chrony;
int tt_chrony_open(const char *socket_path, tt_chrony **out, mr_err *err);
void tt_chrony_close(tt_chrony *c);
/* Sends one tracking request and waits up to timeout_ns for the reply. Fills the
 * chrony fields of *out (not the status). */
int tt_chrony_tracking(tt_chrony *c, int64_t timeout_ns, tt_sample *out, mr_err *err);

/* adjtimex(2): fills maxerror/esterror/kernel_state and bound; sets status to
 * TT_UNHEALTHY with a reason when the kernel says STA_UNSYNC. */
int tt_kernel_sample(tt_sample *out, mr_err *err);

/* Test hooks (internal): publish raw values through the seqlock, and read them
 * back in one consistent snapshot. */
void tt_clock_publish_raw(tt_clock *c, int64_t bound_ns, int64_t mono_ns, tt_status st,
                          int64_t fresh_until);
void tt_clock_read_raw(const tt_clock *c, int64_t *bound_ns, int64_t *mono_ns, tt_status *st,
                       int64_t *fresh_until);

#endif

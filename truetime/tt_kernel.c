/* The kernel's own error accounting (adjtimex): maxerror is the bound,
 * STA_UNSYNC means nobody disciplines the clock. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/timex.h>

#include "truetime/tt_sources.h"

int tt_kernel_sample(tt_sample *out, mr_err *err)
{
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    int state = adjtimex(&tx);
    if (state < 0)
        return mr_errf(err, MR_EIO, "adjtimex: %s", strerror(errno));
    out->kernel_state = state;
    out->maxerror_ns = (int64_t)tx.maxerror * 1000;
    out->esterror_ns = (int64_t)tx.esterror * 1000;
    out->bound_ns = out->maxerror_ns;
    if ((tx.status & STA_UNSYNC) || state == TIME_ERROR) {
        out->status = TT_UNHEALTHY;
        snprintf(out->reason, sizeof out->reason,
                 "kernel clock is not synchronized (STA_UNSYNC); chronyd -x or no NTP daemon "
                 "never marks it synchronized");
    } else {
        out->status = TT_SYNCHRONIZED;
    }
    return MR_OK;
}

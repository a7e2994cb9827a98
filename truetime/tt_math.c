/* Pure TrueTime arithmetic (no I/O): bound growth and the chrony bound. */
#include <math.h>

#include "truetime/tt.h"

#define TT_BOUND_MAX (INT64_MAX / 4)

int64_t tt_bound_grow(int64_t bound_ns, int64_t elapsed_ns, int64_t drift_ppb)
{
    if (bound_ns >= TT_BOUND_MAX)
        return TT_BOUND_MAX;
    if (elapsed_ns <= 0 || drift_ppb <= 0)
        return bound_ns;
    /* ceil(elapsed * drift / 1e9) without overflow: split elapsed into whole
     * seconds and the remainder. A drift under 1e9 ppb (100%) keeps each part small. */
    int64_t secs = elapsed_ns / 1000000000;
    int64_t rem = elapsed_ns % 1000000000;
    if (drift_ppb > 1000000000)
        drift_ppb = 1000000000;
    if (secs > (TT_BOUND_MAX - bound_ns) / (drift_ppb + 1))
        return TT_BOUND_MAX;
    int64_t grow = secs * drift_ppb + (rem * drift_ppb + 999999999) / 1000000000;
    if (grow > TT_BOUND_MAX - bound_ns)
        return TT_BOUND_MAX;
    return bound_ns + grow;
}

int64_t tt_chrony_bound_ns(double correction_s, double root_delay_s, double root_dispersion_s)
{
    /* ClockBound's bound: |correction| + root_delay/2 + root_dispersion. Values are
     * taken in absolute value so a malformed negative field can only widen it. */
    double b = fabs(correction_s) + fabs(root_delay_s) / 2.0 + fabs(root_dispersion_s);
    if (!isfinite(b) || b * 1e9 >= (double)TT_BOUND_MAX)
        return TT_BOUND_MAX;
    return (int64_t)ceil(b * 1e9);
}

const char *tt_status_name(tt_status s)
{
    switch (s) {
    case TT_SYNCHRONIZED:
        return "synchronized";
    case TT_FREE_RUNNING:
        return "free_running";
    case TT_UNHEALTHY:
        return "unhealthy";
    case TT_UNKNOWN:
        break;
    }
    return "unknown";
}

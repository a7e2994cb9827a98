/* Built by install_test.sh outside the tree, against an installed
 * libmeridian found with pkg-config: only <meridian.h> and the library. */
#include <meridian.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    if (strcmp(meridian_errstr(MERIDIAN_ABORTED), "aborted") != 0)
        return 1;
    /* Nobody listens on port 1: the open fails, and says why. */
    meridian_options o = {.addrs = "127.0.0.1:1", .insecure = 1, .timeout_ms = 200};
    meridian *db = NULL;
    int rc = meridian_open(&o, &db);
    printf("libmeridian %s: open: %s: %s\n", MERIDIAN_VERSION, meridian_errstr(rc),
           meridian_errmsg(db));
    meridian_close(db);
    return rc == MERIDIAN_UNAVAILABLE ? 0 : 1;
}

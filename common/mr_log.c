/* Structured, levelled logging to stderr (see mr_log.h). */
#include "common/mr_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = -1;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int mr_log_parse_level(const char *s)
{
    for (int i = 0; i <= MR_LOG_OFF; i++)
        if (s && strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

mr_log_level mr_log_get_level(void)
{
    int l = atomic_load(&log_level);
    if (l < 0) {
        l = mr_log_parse_level(getenv("MERIDIAN_LOG"));
        if (l < 0)
            l = MR_LOG_INFO;
        atomic_store(&log_level, l);
    }
    return (mr_log_level)l;
}

void mr_log_set_level(mr_log_level level)
{
    atomic_store(&log_level, (int)level);
}

void mr_log(mr_log_level level, const char *mod, const char *fmt, ...)
{
    if (level < mr_log_get_level() || level >= MR_LOG_OFF)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s mod=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], mod);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 2, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len =
        (size_t)n +
        ((size_t)m < sizeof line - (size_t)n - 2 ? (size_t)m : sizeof line - (size_t)n - 3);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

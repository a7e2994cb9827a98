/* Structured logs with levels: one line per event on stderr,
 * `ts=2026-11-23T10:00:00.123Z level=info mod=tt what happened key=value ...`:
 * the message text first, then its fields as key=value (quote values with spaces). */
#ifndef MR_LOG_H
#define MR_LOG_H

typedef enum { MR_LOG_DEBUG, MR_LOG_INFO, MR_LOG_WARN, MR_LOG_ERROR, MR_LOG_OFF } mr_log_level;

/* Messages below `level` are dropped. Default: info, or MERIDIAN_LOG=debug|info|warn|error|off. */
void mr_log_set_level(mr_log_level level);
mr_log_level mr_log_get_level(void);
/* Parses "debug", "info", ...; returns -1 for anything else. */
int mr_log_parse_level(const char *s);

/* `fmt` yields the message text followed by its " key=value" fields. Thread-safe (one write per
 * line). */
void mr_log(mr_log_level level, const char *mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define MR_DEBUG(mod, ...) mr_log(MR_LOG_DEBUG, mod, __VA_ARGS__)
#define MR_INFO(mod, ...)  mr_log(MR_LOG_INFO, mod, __VA_ARGS__)
#define MR_WARN(mod, ...)  mr_log(MR_LOG_WARN, mod, __VA_ARGS__)
#define MR_ERROR(mod, ...) mr_log(MR_LOG_ERROR, mod, __VA_ARGS__)

#endif

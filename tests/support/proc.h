/* Test support: start and stop real processes, temporary directories. */
#ifndef TEST_PROC_H
#define TEST_PROC_H

#include <stdint.h>
#include <sys/types.h>

/* Starts argv[0] (searched in PATH) with stdout/stderr appended to log_path
 * (or inherited when NULL). Returns the pid, or -1. */
pid_t proc_spawn(char *const argv[], const char *log_path);

/* Runs argv to completion (at most timeout_ms, then SIGKILL), capturing stdout
 * into a malloc'd string (*out; caller frees) and stderr into *err_out when
 * non-NULL. Returns the exit status (0-255), or -1 when it could not run or was killed. */
int proc_run(char *const argv[], int timeout_ms, char **out, char **err_out);

/* Sends sig to pid and waits up to timeout_ms for it to exit (then SIGKILL). */
void proc_stop(pid_t pid, int sig, int timeout_ms);

/* Path of the meridian binary: $MERIDIAN_BIN (set by ctest). NULL when unset. */
const char *proc_meridian_bin(void);

/* Creates a fresh temporary directory readable and traversable by others
 * (chronyd runs as _chrony); writes its path into buf. 0 or -1. */
int tmpdir_make(char *buf, size_t len, const char *prefix);
/* Removes a directory tree. */
void tmpdir_remove(const char *path);

/* A free port on 127.0.0.1 for SOCK_STREAM or SOCK_DGRAM (bound, then
 * released: another process could take it in between), or -1. */
int free_port(int socktype);

/* Sleeps for ms milliseconds. */
void sleep_ms(int ms);

#endif

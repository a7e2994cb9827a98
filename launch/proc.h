/* Processes for the launcher, the tests and the benchmarks: start, run to completion and stop
 * real processes; free ports; temporary directories. */
#ifndef LAUNCH_PROC_H
#define LAUNCH_PROC_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

/* Starts argv[0] (searched in PATH) with stdout/stderr appended to log_path (or inherited
 * when NULL) and stdin from /dev/null, with the environment envp (NULL: ours), inside the
 * network namespace /run/netns/NS when ns is non-empty. The child gets a process group of its
 * own (a terminal's Ctrl-C reaches only us) and PR_SET_PDEATHSIG=SIGKILL, bound to the calling
 * thread: it dies with that thread even if we crash. Everything the child touches is prepared
 * before fork (only async-signal-safe calls between fork and exec: callers may be
 * multithreaded). Returns the pid, or -1. */
pid_t proc_spawn_in(char *const argv[], char *const envp[], const char *log_path, const char *ns);
/* proc_spawn_in(argv, NULL, log_path, NULL). */
pid_t proc_spawn(char *const argv[], const char *log_path);

/* Runs argv to completion in namespace ns (NULL or "": ours), its command line and output
 * appended to log_path (NULL: inherited); killed after timeout_ms, or as soon as *stop is set
 * when stop is non-NULL. Returns the exit status, or -1. */
int proc_run_logged(char *const argv[], const char *log_path, int timeout_ms, const char *ns,
                    const volatile sig_atomic_t *stop);

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
/* n distinct free TCP ports on 127.0.0.1 (all bound at once, then released). 0 or -1. */
int free_ports(int *ports, int n);

/* Sleeps for ms milliseconds. */
void sleep_ms(int ms);

#endif

/* A private pair of real chronyd daemons on loopback, never
 * touching the system clock (-x): an upstream serving its local clock
 * (`local stratum 8`) and a node that synchronizes to it once per 1/16 s.
 * Sockets, pid files and logs live in a fresh temporary directory. */
#ifndef LAUNCH_CHRONYD_H
#define LAUNCH_CHRONYD_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct chrony_pair {
    char dir[200];
    char node_sock[300]; /* the node's command socket: use "chrony:" + this */
    char upstream_sock[300];
    pid_t upstream, node;
    int port;
} chrony_pair;

/* Path of the chronyd binary, or NULL when it is not installed. */
const char *chronyd_path(void);

/* Starts both daemons; the node's server line gets `offset OFFSET_S` when it is
 * non-zero (the node then believes its clock is that far off). Waits until the
 * node's command socket answers. Returns 0, or -1 with a message on stderr. */
int chrony_pair_start(chrony_pair *p, double node_offset_s);

/* Waits up to timeout_ms until the node reports synchronized through TrueTime. 0 or -1. */
int chrony_pair_wait_sync(const chrony_pair *p, int timeout_ms);

/* Stops the upstream daemon only (the node loses its source). */
void chrony_pair_stop_upstream(chrony_pair *p);

/* Stops both daemons (by PID) and removes the directory. */
void chrony_pair_stop(chrony_pair *p);

#endif

/* The history model shared by the checkers, the simulator and the cluster harness.
 *
 * As in Jepsen, a history is a sequence of operations in real-time order: every client
 * operation is an `invoke` by a process followed later by its completion from the same
 * process: `ok` (it happened), `fail` (it certainly did not happen) or `info` (unknown:
 * it may have happened at any time after its invocation, or never; the process is then
 * retired and never invokes again). An invoke with no completion by the end of the history
 * counts as info. Nemesis operations (process "nemesis") are recorded for the record and
 * ignored by the checkers.
 *
 * Each operation keeps its JSON object; the checkers interpret `value` per model and report
 * operations by their index (0-based position in the history). See jepsen/README.md for the
 * JSON-lines schema. */
#ifndef JP_HISTORY_H
#define JP_HISTORY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/mr_err.h"

#define JP_NONE    ((size_t)-1)
#define JP_NEMESIS (-1LL)

typedef enum { JP_INVOKE, JP_OK, JP_FAIL, JP_INFO } jp_type;

typedef struct jp_op {
    size_t index;    /* position in the history */
    long line;       /* source line (1-based); for an op built in memory, index + 1 (its
                        line in the file jp_history_write_jsonl writes) */
    int64_t process; /* >= 0, or JP_NEMESIS */
    jp_type type;
    const char *f; /* points into obj */
    json_t *key;   /* borrowed from obj; NULL when absent */
    json_t *value; /* borrowed from obj; json null when absent */
    int64_t time;  /* nanoseconds, informational; -1 when absent */
    size_t pair;   /* the matching completion (for an invoke) or invoke (for a
                      completion); JP_NONE for nemesis ops and unfinished invokes */
    json_t *obj;   /* the whole operation; one reference owned by the history */
} jp_op;

typedef struct jp_history {
    jp_op *ops;
    size_t n, cap;
    /* per-process pairing state: open-addressed map process -> state */
    int64_t *pkeys;
    size_t *pvals;
    size_t pcap, pcount;
} jp_history;

/* An empty history. Free with jp_history_free. */
void jp_history_init(jp_history *h);
void jp_history_free(jp_history *h);

/* Appends one operation, checking its shape and its pairing with the process's pending
 * invoke. Steals the reference to `obj` in every case (it is freed on error). `line` is
 * used in error messages (0: index + 1). Returns 0 or an MR_E* code with a message in err. */
int jp_history_add(jp_history *h, json_t *obj, long line, mr_err *err);

/* Records one operation from its parts, for the simulator and the harness (one writer at a
 * time: the history takes no lock). `process` is >= 0 or JP_NEMESIS; `key` may be NULL (it is
 * copied, the caller keeps its reference); `value` is stolen (NULL: null); `time` < 0 omits
 * it. Same checks and return values as jp_history_add. */
int jp_history_record(jp_history *h, int64_t process, jp_type type, const char *f,
                      const json_t *key, json_t *value, int64_t time, mr_err *err);

/* Parses one JSON line and appends it. Blank lines are the caller's business. */
int jp_history_add_line(jp_history *h, const char *text, long line, mr_err *err);

/* Reads JSON lines (blank lines skipped) into h, which must be freshly initialized.
 * On error h holds the operations read so far (still to be freed by the caller). */
int jp_history_read(jp_history *h, FILE *in, mr_err *err);
int jp_history_parse_string(jp_history *h, const char *text, mr_err *err);
int jp_history_load(jp_history *h, const char *path, mr_err *err);

/* Writes the history as JSON lines (each line the op's object with "index" set). */
int jp_history_write_jsonl(const jp_history *h, FILE *out, mr_err *err);

/* Writes the history as Jepsen-style EDN, one map per line, so that Knossos and Elle can
 * check it elsewhere: {:index 0, :process 3, :type :invoke, :f :txn, :value [[:append 1 2]]
 * , :time 12}. Strings in value become EDN strings, except a micro-op's function name
 * (first element of a vector inside a txn value), which becomes a keyword. */
int jp_history_write_edn(const jp_history *h, FILE *out, mr_err *err);

/* The operation that carries the outcome of invoke `i`: its completion, or the invoke
 * itself when it never completed. Type of the outcome: JP_OK/FAIL/INFO (an unfinished
 * invoke yields JP_INFO). */
jp_type jp_outcome(const jp_history *h, size_t i);

/* The index to report for the client operation whose invoke is `i`: its completion's
 * index when there is one, else `i`. */
size_t jp_report_index(const jp_history *h, size_t i);

/* "invoke", "ok", "fail", "info". */
const char *jp_type_name(jp_type t);

/* Keys are JSON strings or integers; this renders one into buf as text ("x", "12"). */
const char *jp_key_text(const json_t *key, char *buf, size_t len);

#endif

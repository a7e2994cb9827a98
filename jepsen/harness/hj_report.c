/* The run directory's outputs: history, results, summary, latency plot. See hj_report.h. */
#include "jepsen/harness/hj_report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/mr_util.h"
#include "jepsen/avail.h"

enum { F_READ, F_WRITE, F_CAS, F_TXN, F_TRANSFER, F_ADD, F_OTHER, NF };
static const char *const f_names[NF] = {"read", "write", "cas", "txn", "transfer", "add", "other"};

static int f_index(const char *f)
{
    for (int i = 0; i < F_OTHER; i++)
        if (strcmp(f, f_names[i]) == 0)
            return i;
    return F_OTHER;
}

static FILE *open_out(const char *dir, const char *name, char *path, size_t len, mr_err *err)
{
    snprintf(path, len, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        mr_errf(err, MR_EIO, "cannot write %s: %s", path, strerror(errno));
    return f;
}

/* Per key: ok / fail / info counts and the anomalies touching it. */
static json_t *per_key(const jp_history *h, const jp_result *r)
{
    json_t *keys = json_object();
    for (size_t i = 0; i < h->n; i++) {
        const jp_op *op = &h->ops[i];
        if (op->process == JP_NEMESIS || op->type != JP_INVOKE || !op->key)
            continue;
        char kb[64];
        const char *k = jp_key_text(op->key, kb, sizeof kb);
        json_t *o = json_object_get(keys, k);
        if (!o) {
            o = json_pack(
                "{s:I, s:i, s:i, s:i, s:i, s:[]}", "group",
                (json_int_t)(json_is_integer(op->key) ? json_integer_value(op->key) + 2 : -1), "ok",
                0, "fail", 0, "info", 0, "anomaly_count", 0, "anomalies");
            json_object_set_new(keys, k, o);
        }
        const char *t = jp_type_name(jp_outcome(h, i));
        json_object_set_new(o, t, json_integer(json_integer_value(json_object_get(o, t)) + 1));
    }
    for (size_t a = 0; a < r->n; a++) {
        const jp_anomaly *an = &r->anomalies[a];
        if (!an->nops || an->ops[0] >= h->n || !h->ops[an->ops[0]].key)
            continue;
        char kb[64];
        json_t *o = json_object_get(keys, jp_key_text(h->ops[an->ops[0]].key, kb, sizeof kb));
        if (!o)
            continue;
        json_array_append_new(json_object_get(o, "anomalies"), json_string(an->name));
        json_object_set_new(
            o, "anomaly_count",
            json_integer(json_integer_value(json_object_get(o, "anomaly_count")) + 1));
    }
    json_t *v;
    const char *k;
    json_object_foreach(keys, k, v)
    {
        json_object_set_new(v, "valid",
                            json_integer_value(json_object_get(v, "anomaly_count")) ? json_false()
                            : r->valid == JP_VALID                                  ? json_true()
                                                   : json_string(jp_validity_name(r->valid)));
    }
    return keys;
}

/* Every anomaly with the full operations it names (at most 40 each). */
static json_t *anomaly_ops(const jp_history *h, const jp_result *r)
{
    json_t *a = json_array();
    for (size_t i = 0; i < r->n; i++) {
        json_t *ops = json_array();
        for (size_t k = 0; k < r->anomalies[i].nops && k < 40; k++) {
            size_t idx = r->anomalies[i].ops[k];
            if (idx < h->n) {
                json_t *o = json_deep_copy(h->ops[idx].obj);
                json_object_set_new(o, "index", json_integer((json_int_t)idx));
                json_array_append_new(ops, o);
            }
        }
        json_array_append_new(a, json_pack("{s:s, s:s, s:o}", "name", r->anomalies[i].name,
                                           "detail", r->anomalies[i].detail, "ops", ops));
    }
    return a;
}

static bool find_gnuplot(char *path, size_t len)
{
    const char *p = getenv("PATH");
    if (!p)
        p = "/usr/bin:/bin";
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", p);
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(path, len, "%s/gnuplot", d);
        if (access(path, X_OK) == 0)
            return true;
    }
    return false;
}

static const char *fault_color(const char *kind)
{
    if (strcmp(kind, "kill") == 0)
        return "#f4a0a0";
    if (strcmp(kind, "pause") == 0)
        return "#a0c8f4";
    if (strcmp(kind, "partition") == 0)
        return "#f4d890";
    return "#b8e0b0"; /* clock */
}

/* latency.dat + latency.gp, then gnuplot. Returns a one-line status for the summary. */
static void plot(const hj_report_info *info, const jp_history *h, char *status, size_t slen)
{
    char gp[1200], dat[1200];
    if (!find_gnuplot(gp, sizeof gp)) {
        snprintf(status, slen,
                 "latency.png skipped: gnuplot is not installed (apt-get install "
                 "gnuplot-nox)");
        return;
    }
    snprintf(dat, sizeof dat, "%s/latency.dat", info->dir);
    FILE *d = fopen(dat, "w");
    if (!d) {
        snprintf(status, slen, "latency.png skipped: cannot write latency.dat");
        return;
    }
    fprintf(d, "# invoke_s latency_ms outcome(0 ok, 1 fail, 2 info) f\n");
    size_t points = 0;
    int64_t end = 0;
    for (size_t i = 0; i < h->n; i++) {
        const jp_op *op = &h->ops[i];
        if (op->time > end)
            end = op->time;
        if (op->process == JP_NEMESIS || op->type != JP_INVOKE || op->pair == JP_NONE)
            continue;
        const jp_op *c = &h->ops[op->pair];
        int t = c->type == JP_OK ? 0 : c->type == JP_FAIL ? 1 : 2;
        fprintf(d, "%.4f %.3f %d %s\n", (double)op->time / 1e9,
                (double)(c->time - op->time) / 1e6 + 0.001, t, op->f);
        points++;
    }
    fclose(d);
    char script[1200];
    snprintf(script, sizeof script, "%s/latency.gp", info->dir);
    FILE *s = fopen(script, "w");
    if (!s) {
        snprintf(status, slen, "latency.png skipped: cannot write latency.gp");
        return;
    }
    fprintf(s,
            "set terminal png size 1400,600\nset output '%s/latency.png'\n"
            "set title '%s, %d nodes, %d keys, seed %llu: latency by invocation time (shaded: "
            "faults)' noenhanced\n"
            "set xlabel 'time since start (s)'\nset ylabel 'latency (ms)'\nset logscale y\n"
            "set key outside right\nset xrange [0:%.1f]\n",
            info->dir, info->workload->name, info->nodes, info->keys,
            (unsigned long long)info->seed, (double)end / 1e9 + 0.5);
    /* Fault windows: start-X .. stop-X (or the end). */
    int obj = 1;
    for (size_t i = 0; i < h->n; i++) {
        const jp_op *op = &h->ops[i];
        if (op->process != JP_NEMESIS || strncmp(op->f, "start-", 6) != 0)
            continue;
        const char *kind = op->f + 6;
        int64_t stop = end;
        for (size_t k = i + 1; k < h->n; k++)
            if (h->ops[k].process == JP_NEMESIS && strncmp(h->ops[k].f, "stop-", 5) == 0 &&
                strcmp(h->ops[k].f + 5, kind) == 0) {
                stop = h->ops[k].time;
                break;
            }
        fprintf(s,
                "set object %d rect from first %.3f, graph 0 to first %.3f, graph 1 fc rgb '%s' "
                "fs solid 0.5 noborder behind\n"
                "set label %d '%s' at first %.3f, graph 0.97 font ',9'\n",
                obj, (double)op->time / 1e9, (double)stop / 1e9, fault_color(kind), obj, kind,
                (double)op->time / 1e9);
        obj++;
    }
    if (points == 0)
        fprintf(s, "plot 1/0 title 'no operations'\n");
    else
        fprintf(s,
                "plot '%s' using 1:($3==0?$2:1/0) with points pt 7 ps 0.5 lc rgb '#2060c0' title "
                "'ok', \\\n  '' using 1:($3==1?$2:1/0) with points pt 5 ps 0.6 lc rgb '#e08000' "
                "title 'fail', \\\n  '' using 1:($3==2?$2:1/0) with points pt 9 ps 0.8 lc rgb "
                "'#c00000' title 'info'\n",
                dat);
    fclose(s);
    char log[1200];
    snprintf(log, sizeof log, "%s/gnuplot.log", info->dir);
    char *argv[] = {gp, script, NULL};
    int rc = hj_run_cmd(argv, log, 60000);
    if (rc == 0)
        snprintf(status, slen, "latency.png written (%zu operations, %d fault windows)", points,
                 obj - 1);
    else
        snprintf(status, slen, "latency.png failed: gnuplot exited %d (see gnuplot.log)", rc);
}

/* The store check's lines of the summary (long-suite.sh reads the "store:" ones). */
static void print_store(FILE *m, json_t *st)
{
    json_t *end = json_object_get(st, "at_end"), *last = json_object_get(st, "settled");
    fprintf(m,
            "store:       at the end of the load: at most %lld decision rows and %lld system "
            "versions per data-group replica; %.2f MiB of pages in use, files %.2f MiB (all "
            "stores of all nodes)\n",
            (long long)json_integer_value(json_object_get(end, "max_decisions")),
            (long long)json_integer_value(json_object_get(end, "max_system_versions")),
            (double)json_integer_value(json_object_get(end, "used_bytes")) / (1 << 20),
            (double)json_integer_value(json_object_get(end, "file_bytes")) / (1 << 20));
    if (json_is_true(json_object_get(st, "bounded")))
        fprintf(m,
                "store:       bounded: every replica back to 0 decision rows and 0 system "
                "versions %.0f s after the load (%.2f MiB in use)\n",
                json_real_value(json_object_get(st, "waited_s")),
                (double)json_integer_value(json_object_get(last, "used_bytes")) / (1 << 20));
    else
        fprintf(m,
                "store:       NOT BOUNDED: %.0f s after the load a replica still keeps %lld "
                "decision rows, %lld system versions (results.json \"store\")\n",
                json_real_value(json_object_get(st, "waited_s")),
                (long long)json_integer_value(json_object_get(last, "max_decisions")),
                (long long)json_integer_value(json_object_get(last, "max_system_versions")));
}

/* jp_avail_groups_fn over the workload's op_groups. */
static uint64_t op_groups(const jp_op *invoke, void *ud)
{
    const hj_report_info *info = ud;
    return info->workload->op_groups(invoke, info->keys > 0 ? info->keys : 1);
}

int hj_report_write(const hj_report_info *info, const jp_history *h, jp_validity *verdict,
                    mr_err *err)
{
    char path[1200];
    int rc = MR_OK;
    *verdict = JP_UNKNOWN;

    FILE *f = open_out(info->dir, "history.jsonl", path, sizeof path, err);
    if (!f)
        return err->code;
    rc = jp_history_write_jsonl(h, f, err);
    fclose(f);
    if (rc)
        return rc;
    if (!(f = open_out(info->dir, "history.edn", path, sizeof path, err)))
        return err->code;
    rc = jp_history_write_edn(h, f, err);
    fclose(f);
    if (rc)
        return rc;

    /* The checker. */
    jp_result r;
    mr_err cerr;
    mr_err_clear(&cerr);
    int64_t c0 = mr_monotonic_ns();
    int crc = info->workload->check(h, &r, &cerr);
    double check_s = (double)(mr_monotonic_ns() - c0) / 1e9;
    if (crc != MR_OK) {
        jp_result_free(&r);
        jp_result_init(&r, info->workload->model);
        jp_result_unknown(&r, "checker error: %s", mr_err_msg(&cerr));
    }
    if (info->record_errs)
        jp_result_unknown(&r, "the harness recorded %d malformed operations (a harness bug)",
                          info->record_errs);
    if (info->interrupted)
        jp_result_note(&r, "interrupted: the run was cut short");
    *verdict = r.valid;

    json_t *res = jp_result_to_json(&r);
    json_t *out = json_pack("{s:s, s:o, s:o, s:o, s:o}", "workload", info->workload->name, "valid",
                            r.valid == JP_VALID     ? json_true()
                            : r.valid == JP_INVALID ? json_false()
                                                    : json_string("unknown"),
                            "checker", res ? res : json_null(), "keys", per_key(h, &r),
                            "anomaly_ops", anomaly_ops(h, &r));
    if (out && info->store)
        json_object_set(out, "store", info->store);
    /* Availability from the history's times (jepsen/avail.h): whether the run was usable. */
    jp_avail av;
    mr_err aerr;
    int arc = info->workload->op_groups
                  ? jp_avail_measure_groups(h, op_groups, (void *)info, &av, &aerr)
                  : jp_avail_measure(h, &av, &aerr);
    if (out)
        json_object_set_new(out, "availability",
                            arc == MR_OK ? jp_avail_to_json(&av)
                                         : json_pack("{s:s}", "error", mr_err_msg(&aerr)));
    snprintf(path, sizeof path, "%s/results.json", info->dir);
    if (!out || json_dump_file(out, path, JSON_INDENT(2)) != 0)
        rc = mr_errf(err, MR_EIO, "cannot write %s", path);
    json_decref(out);

    /* Counts by function and outcome. */
    size_t counts[NF][4] = {{0}};
    size_t invoked = 0;
    for (size_t i = 0; i < h->n; i++) {
        const jp_op *op = &h->ops[i];
        if (op->process == JP_NEMESIS || op->type != JP_INVOKE)
            continue;
        invoked++;
        counts[f_index(op->f)][jp_outcome(h, i)]++;
    }

    char plot_status[300];
    plot(info, h, plot_status, sizeof plot_status);

    char *text = NULL;
    size_t tlen = 0;
    FILE *m = open_memstream(&text, &tlen);
    if (!m) {
        jp_avail_free(&av);
        jp_result_free(&r);
        return mr_errf(err, MR_ENOMEM, "out of memory");
    }
    const hj_cluster *cl = info->cluster;
    fprintf(m, "meridian-jepsen: %s workload on %d nodes, %s\n", info->workload->name, info->nodes,
            cl && cl->netns ? "each in its own network namespace on a bridge (partitions by "
                              "nftables)"
                            : "on 127.0.0.1 (loopback; partitions by the nodes' test-only fault "
                              "RPC)");
    if (cl && cl->net_notice[0])
        fprintf(m, "notice:      %s\n", cl->net_notice);
    if (cl)
        fprintf(m, "cluster:     %d data groups%s%s, clock %s, nodes %s\n", cl->groups,
                cl->split_at[0] ? " split at " : "", cl->split_at, cl->clock_spec, cl->addrs);
    fprintf(m, "command:     %s\n", info->cmdline);
    fprintf(m, "seed:        %llu\n", (unsigned long long)info->seed);
    time_t start = (time_t)(info->start_wall_ns / MR_NS_PER_S);
    struct tm tm;
    char when[40] = "?";
    if (gmtime_r(&start, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    fprintf(m, "started:     %s (history times: harness monotonic ns since then)\n", when);
    fprintf(m,
            "schedule:    %d s with faults, then %d s quiet; %d processes at about %.0f ops/s "
            "over %d groups\n",
            info->time_s, info->quiet_s, info->concurrency, info->rate, info->keys);
    if (info->breaks && *info->breaks)
        fprintf(m, "NEGATIVE CONTROL: the nodes run with MERIDIAN_TEST_BREAK=%s\n", info->breaks);
    if (info->interrupted)
        fprintf(m, "INTERRUPTED before the end of the schedule\n");
    fprintf(m, "\noperations:  %zu invoked\n", invoked);
    fprintf(m, "  %-8s %8s %8s %8s\n", "f", "ok", "fail", "info");
    for (int k = 0; k < NF; k++)
        if (counts[k][JP_OK] + counts[k][JP_FAIL] + counts[k][JP_INFO])
            fprintf(m, "  %-8s %8zu %8zu %8zu\n", f_names[k], counts[k][JP_OK], counts[k][JP_FAIL],
                    counts[k][JP_INFO]);
    fprintf(m, "\nfaults:     ");
    int total = 0;
    for (int b = 0; b < HJ_NEM_KINDS; b++)
        if (info->kinds & (1u << b)) {
            fprintf(m, " %s %d", hj_nemesis_kind_name(b), info->fault_counts[b]);
            total += info->fault_counts[b];
        }
    fprintf(m, "%s (%d injected)\n", info->kinds ? "" : " none", total);
    fprintf(m, "crashes:     %d node exit(s) not caused by the nemesis\n", info->crashes);
    if (info->cluster) {
        fprintf(m, "nodes:      ");
        for (int i = 0; i < info->cluster->n; i++) {
            const hj_node *nd = &info->cluster->nodes[i];
            int st = nd->last_status;
            if (st >= 0 && WIFEXITED(st))
                fprintf(m, " n%d started %dx, exit %d;", i + 1, nd->starts, WEXITSTATUS(st));
            else if (st >= 0 && WIFSIGNALED(st))
                fprintf(m, " n%d started %dx, signal %d;", i + 1, nd->starts, WTERMSIG(st));
            else
                fprintf(m, " n%d started %dx;", i + 1, nd->starts);
        }
        fprintf(m, " logs n<i>.log\n");
    }
    if (info->store)
        print_store(m, info->store);
    if (arc == MR_OK)
        jp_avail_print(&av, m);
    else
        fprintf(m, "availability: not measured: %s\n", mr_err_msg(&aerr));
    jp_avail_free(&av);
    fprintf(m, "\nchecker (%s, %.2f s):\n", info->workload->model, check_s);
    jp_result_print(&r, m, 5);
    fprintf(m, "\n%s\n", plot_status);
    fprintf(m, "verdict: %s\n", jp_validity_name(r.valid));
    fclose(m);

    fputs(text, stdout);
    snprintf(path, sizeof path, "%s/summary.txt", info->dir);
    FILE *sf = fopen(path, "w");
    if (sf) {
        fputs(text, sf);
        fclose(sf);
    } else {
        rc = mr_errf(err, MR_EIO, "cannot write %s", path);
    }
    free(text);
    jp_result_free(&r);
    return rc;
}

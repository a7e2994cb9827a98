/* `meridian clock`: show the TrueTime interval and the source behind it. */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "common/mr_log.h"
#include "common/mr_util.h"
#include "truetime/tt.h"

#define DEFAULT_CLOCK "chrony:/run/chrony/chronyd.sock"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: meridian clock [--clock SPEC] [--json] [--watch] [--interval DUR] [--count N]\n"
        "                      [--drift-ppm N] [--cap DUR] [--fault-offset DUR]\n\n"
        "Prints the TrueTime interval [earliest, latest] this node would use, its\n"
        "half-width epsilon, the clock status and the source's details.\n\n"
        "  --clock SPEC        chrony:SOCKET (chronyd's command socket), kernel (adjtimex)\n"
        "                      or fixed:DURATION (a declared bound); default %s\n"
        "  --json              one JSON object per sample\n"
        "  --watch             keep sampling every --interval until interrupted\n"
        "  --interval DUR      time between samples with --watch (default 1s)\n"
        "  --count N           stop after N samples (implies --watch when N > 1)\n"
        "  --drift-ppm N       maximum oscillator drift assumed between samples (default 200)\n"
        "  --cap DUR           bound above which the clock is unhealthy (default 10ms)\n"
        "  --fault-offset DUR  test only: offset this process's clock reading (a lying\n"
        "                      clock) without widening the bound; also $MERIDIAN_CLOCK_OFFSET\n\n"
        "Exit status: 0 when the last sample is synchronized, 1 otherwise, 2 on bad usage.\n",
        DEFAULT_CLOCK);
}

static void fmt_time(int64_t ns, char *buf, size_t len)
{
    time_t s = (time_t)(ns / MR_NS_PER_S);
    int64_t frac = ns % MR_NS_PER_S;
    if (frac < 0) {
        frac += MR_NS_PER_S;
        s -= 1;
    }
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)frac);
}

static int64_t sec_to_ns(double s)
{
    return (int64_t)(s * 1e9);
}

static void print_json(const tt_clock *c, tt_interval iv, int64_t system_ns, tt_status st,
                       const tt_sample *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "earliest_ns", json_integer(iv.earliest));
    json_object_set_new(o, "latest_ns", json_integer(iv.latest));
    json_object_set_new(o, "epsilon_ns", json_integer(tt_interval_epsilon(iv)));
    json_object_set_new(o, "system_ns", json_integer(system_ns));
    json_object_set_new(o, "status", json_string(tt_status_name(st)));
    json_object_set_new(o, "reason", json_string(s->reason));
    json_object_set_new(o, "source", json_string(tt_source_spec(c)));
    json_object_set_new(o, "sample_age_ns", json_integer(mr_monotonic_ns() - s->mono_ns));
    json_object_set_new(o, "sample_bound_ns", json_integer(s->bound_ns));
    json_object_set_new(o, "fault_offset_ns", json_integer(tt_fault_offset(c)));
    if (tt_source(c) == TT_SRC_CHRONY && s->valid) {
        json_object_set_new(o, "reference", json_string(s->ref_name));
        json_object_set_new(o, "stratum", json_integer(s->stratum));
        json_object_set_new(o, "leap_status", json_integer(s->leap_status));
        json_object_set_new(o, "correction_ns", json_integer(sec_to_ns(s->correction_s)));
        json_object_set_new(o, "root_delay_ns", json_integer(sec_to_ns(s->root_delay_s)));
        json_object_set_new(o, "root_dispersion_ns", json_integer(sec_to_ns(s->root_dispersion_s)));
        json_object_set_new(o, "update_interval_ns", json_integer(sec_to_ns(s->update_interval_s)));
        json_object_set_new(o, "reference_age_ns", json_integer(s->real_ns - s->ref_time_ns));
        json_object_set_new(o, "freq_ppm", json_real(s->freq_ppm));
        json_object_set_new(o, "skew_ppm", json_real(s->skew_ppm));
    } else if (tt_source(c) == TT_SRC_KERNEL && s->valid) {
        json_object_set_new(o, "maxerror_ns", json_integer(s->maxerror_ns));
        json_object_set_new(o, "esterror_ns", json_integer(s->esterror_ns));
        json_object_set_new(o, "kernel_state", json_integer(s->kernel_state));
    }
    char *text = json_dumps(o, JSON_COMPACT);
    if (text) {
        puts(text);
        free(text);
    }
    json_decref(o);
}

static void print_text(const tt_clock *c, tt_interval iv, tt_status st, const tt_sample *s)
{
    char a[48], b[48], d1[32], d2[32], d3[32], d4[32];
    fmt_time(iv.earliest, a, sizeof a);
    fmt_time(iv.latest, b, sizeof b);
    printf("source          %s\n", tt_source_spec(c));
    printf("status          %s%s%s\n", tt_status_name(st), s->reason[0] ? ": " : "", s->reason);
    if (iv.latest - iv.earliest >= INT64_MAX / 4) {
        printf("interval        unbounded (no usable sample)\n");
        return;
    }
    printf("earliest        %s  (%lld)\n", a, (long long)iv.earliest);
    printf("latest          %s  (%lld)\n", b, (long long)iv.latest);
    printf("epsilon         %s\n", mr_format_duration(tt_interval_epsilon(iv), d1, sizeof d1));
    printf("sample age      %s\n",
           mr_format_duration(mr_monotonic_ns() - s->mono_ns, d1, sizeof d1));
    if (tt_source(c) == TT_SRC_CHRONY && s->valid) {
        printf("reference       %s (stratum %d, leap status %d)\n", s->ref_name, s->stratum,
               s->leap_status);
        printf("correction      %s   root delay %s   root dispersion %s\n",
               mr_format_duration(sec_to_ns(s->correction_s), d1, sizeof d1),
               mr_format_duration(sec_to_ns(s->root_delay_s), d2, sizeof d2),
               mr_format_duration(sec_to_ns(s->root_dispersion_s), d3, sizeof d3));
        printf("last update     %s ago (interval %s)\n",
               mr_format_duration(s->real_ns - s->ref_time_ns, d1, sizeof d1),
               mr_format_duration(sec_to_ns(s->update_interval_s), d4, sizeof d4));
    } else if (tt_source(c) == TT_SRC_KERNEL && s->valid) {
        printf("kernel          maxerror %s  esterror %s  state %d\n",
               mr_format_duration(s->maxerror_ns, d1, sizeof d1),
               mr_format_duration(s->esterror_ns, d2, sizeof d2), s->kernel_state);
    }
    if (tt_fault_offset(c))
        printf("fault offset    %s (test hook: this reading lies)\n",
               mr_format_duration(tt_fault_offset(c), d1, sizeof d1));
}

static void print_line(tt_interval iv, tt_status st, const tt_sample *s)
{
    char t[48], e[32], d[32];
    fmt_time(iv.earliest + tt_interval_epsilon(iv), t, sizeof t);
    printf("%s  %-12s  eps=%-10s  ref=%s  corr=%s%s%s\n", t, tt_status_name(st),
           mr_format_duration(tt_interval_epsilon(iv), e, sizeof e),
           s->ref_name[0] ? s->ref_name : "-",
           mr_format_duration(sec_to_ns(s->correction_s), d, sizeof d), s->reason[0] ? "  " : "",
           s->reason);
    fflush(stdout);
}

int cmd_clock(int argc, char **argv)
{
    static const struct option opts[] = {
        {"clock", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
        {"watch", no_argument, NULL, 'w'},       {"interval", required_argument, NULL, 'i'},
        {"count", required_argument, NULL, 'n'}, {"drift-ppm", required_argument, NULL, 'd'},
        {"cap", required_argument, NULL, 'C'},   {"fault-offset", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    const char *spec = DEFAULT_CLOCK;
    bool json = false, watch = false, have_offset = false;
    int64_t interval = MR_NS_PER_S, offset = 0;
    long long count = 1, v;
    tt_config cfg;
    tt_config_default(&cfg);
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            spec = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'w':
            watch = true;
            break;
        case 'i':
            if (mr_parse_duration(optarg, &interval) != 0 || interval < MR_NS_PER_MS)
                return cmd_usage_error("clock", "--interval '%s' is not a duration of at least 1ms",
                                       optarg);
            break;
        case 'n':
            if (mr_parse_int(optarg, 1, 1000000000, &count) != 0)
                return cmd_usage_error("clock", "--count '%s' is not a positive integer", optarg);
            if (count > 1)
                watch = true;
            break;
        case 'd':
            if (mr_parse_int(optarg, 0, 1000000, &v) != 0)
                return cmd_usage_error("clock", "--drift-ppm '%s' is not an integer in 0..1000000",
                                       optarg);
            cfg.drift_ppb = v * 1000;
            break;
        case 'C':
            if (mr_parse_duration(optarg, &cfg.cap_ns) != 0 || cfg.cap_ns <= 0)
                return cmd_usage_error("clock", "--cap '%s' is not a positive duration", optarg);
            break;
        case 'o':
            if (mr_parse_duration(optarg, &offset) != 0)
                return cmd_usage_error("clock", "--fault-offset '%s' is not a duration like 5ms",
                                       optarg);
            have_offset = true;
            break;
        case 'h':
            usage(stdout);
            return CMD_EXIT_OK;
        case ':':
            return cmd_usage_error("clock", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cmd_usage_error("clock", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cmd_usage_error("clock", "unexpected argument '%s'", argv[optind]);
    if (watch && count == 1)
        count = -1; /* until interrupted */

    /* The output already says what the clock is doing; keep stderr for errors. */
    if (!getenv("MERIDIAN_LOG"))
        mr_log_set_level(MR_LOG_ERROR);
    mr_err err;
    mr_err_clear(&err);
    tt_clock *c;
    if (tt_clock_open_manual(spec, &cfg, &c, &err) != MR_OK)
        return cmd_usage_error("clock", "%s", mr_err_msg(&err));
    if (have_offset)
        tt_set_fault_offset(c, offset);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    tt_status st = TT_UNKNOWN;
    for (long long i = 0; !interrupted && (count < 0 || i < count); i++) {
        if (i > 0) {
            struct timespec d = {.tv_sec = interval / MR_NS_PER_S,
                                 .tv_nsec = interval % MR_NS_PER_S};
            if (nanosleep(&d, NULL) != 0 && interrupted)
                break;
            tt_clock_poll(c);
        }
        tt_sample s;
        tt_last_sample(c, &s);
        int64_t system_ns = mr_realtime_ns();
        tt_interval iv = tt_now(c);
        st = tt_status_now(c);
        if (json)
            print_json(c, iv, system_ns, st, &s);
        else if (watch)
            print_line(iv, st, &s);
        else
            print_text(c, iv, st, &s);
    }
    tt_clock_close(c);
    return st == TT_SYNCHRONIZED ? CMD_EXIT_OK : CMD_EXIT_FAIL;
}

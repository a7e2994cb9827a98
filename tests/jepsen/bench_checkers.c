/* Times the checkers on seeded generated histories (valid ones, and list-append with half the
 * reads made stale: one big dependency component). Not a test: run it by hand,
 *   bench_jepsen_checkers [OPS]
 * and read the ops/s it prints. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "jepsen/elle.h"
#include "jepsen/linear.h"
#include "tests/jepsen/gen.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Truncates `pct` percent of the reads to a random shorter prefix (a store with no isolation). */
static int degrade(const jp_history *src, int pct, jp_history *dst)
{
    uint64_t s = 1;
    mr_err err;
    for (size_t i = 0; i < src->n; i++) {
        json_t *o = json_deep_copy(src->ops[i].obj);
        json_object_del(o, "index");
        if (src->ops[i].type == JP_OK) {
            size_t j;
            json_t *mo;
            json_array_foreach(json_object_get(o, "value"), j, mo)
            {
                json_t *l = json_array_get(mo, 2);
                if (!json_is_array(l) || !json_array_size(l) || (int)(gen_rand(&s) % 100) >= pct)
                    continue;
                size_t keep = gen_rand(&s) % json_array_size(l);
                while (json_array_size(l) > keep)
                    json_array_remove(l, json_array_size(l) - 1);
            }
        }
        if (jp_history_add(dst, o, 0, &err) != MR_OK)
            return -1;
    }
    return 0;
}

static void run(const char *what, gen_model model, int nops, int nprocs, int nkeys, int degrade_pct)
{
    gen_opts o = {.model = model,
                  .seed = 42,
                  .nops = nops,
                  .nprocs = nprocs,
                  .nkeys = nkeys,
                  .p_fail = 5,
                  .p_info = 5};
    jp_history h, d;
    jp_history_init(&h);
    jp_history_init(&d);
    gen_out g;
    if (gen_history(&o, &h, &g) < 0 || (degrade_pct && degrade(&h, degrade_pct, &d) < 0)) {
        fprintf(stderr, "generation failed\n");
        exit(1);
    }
    gen_out_free(&g);
    jp_result r;
    mr_err err;
    double t0 = now();
    int rc = model == GEN_REGISTER ? jp_check_register(degrade_pct ? &d : &h, NULL, &r, &err)
                                   : jp_check_list_append(degrade_pct ? &d : &h, NULL, &r, &err);
    double dt = now() - t0;
    if (rc != MR_OK) {
        fprintf(stderr, "%s: %s\n", what, mr_err_msg(&err));
        exit(1);
    }
    printf("%-44s %7d ops %8.1f ms %10.0f ops/s  %s, %zu anomalies\n", what, nops, dt * 1e3,
           nops / dt, jp_validity_name(r.valid), r.n);
    jp_result_free(&r);
    jp_history_free(&h);
    jp_history_free(&d);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    if (n <= 0) {
        fprintf(stderr, "usage: bench_jepsen_checkers [OPS]\n");
        return 2;
    }
    run("register, 10 processes, 5 keys", GEN_REGISTER, n, 10, 5, 0);
    run("register, 20 processes, 1 key", GEN_REGISTER, n, 20, 1, 0);
    run("list-append, 10 processes, 20 keys", GEN_LIST_APPEND, n, 10, 20, 0);
    run("list-append, 10 processes, 20 keys, 50% stale", GEN_LIST_APPEND, n, 10, 20, 50);
    return 0;
}

/* Unit and property tests of the wound-wait lock table (tablet/lock). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tablet/lock/tl.h"
#include "tests/test.h"

static tl_lock point(tl_mode m, const char *k)
{
    return (tl_lock){
        .mode = m, .range = false, .start = (const uint8_t *)k, .start_len = strlen(k)};
}

static tl_lock range(tl_mode m, const char *s, const char *e)
{
    return (tl_lock){.mode = m,
                     .range = true,
                     .start = (const uint8_t *)s,
                     .start_len = strlen(s),
                     .end = (const uint8_t *)e,
                     .end_len = e ? strlen(e) : 0};
}

static int acq(tl_table *t, uint64_t txn, int64_t prio, tl_lock lk, uint64_t *req, tl_out *o)
{
    mr_err e;
    uint64_t dummy;
    return tl_acquire(t, txn, prio, &lk, req ? req : &dummy, o, &e);
}

static bool granted_has(const tl_out *o, uint64_t txn, uint64_t req)
{
    for (size_t i = 0; i < o->ngranted; i++)
        if (o->granted[i].txn == txn && o->granted[i].req == req)
            return true;
    return false;
}

TEST(shared_compatible_exclusive_conflicts)
{
    tl_table *t = tl_new();
    tl_out o = {0};
    mr_err e;
    CHECK_EQ(acq(t, 1, 10, point(TL_SHARED, "a"), NULL, &o), TL_GRANTED);
    CHECK_EQ(acq(t, 2, 20, point(TL_SHARED, "a"), NULL, &o), TL_GRANTED);
    /* Younger writer waits for the older reader. */
    uint64_t r3;
    CHECK_EQ(acq(t, 3, 30, point(TL_EXCLUSIVE, "a"), &r3, &o), TL_WAIT);
    CHECK_EQ(o.nwounded, 0);
    CHECK_EQ(acq(t, 3, 30, point(TL_EXCLUSIVE, "b"), NULL, &o), TL_GRANTED);
    CHECK_EQ(tl_check(t, &e), MR_OK);
    tl_release(t, 1, &o);
    CHECK_EQ(o.ngranted, 0); /* still held shared by 2 */
    tl_release(t, 2, &o);
    CHECK_EQ(o.ngranted, 1);
    CHECK(granted_has(&o, 3, r3));
    CHECK_EQ(tl_held(t, 3), 2);
    CHECK_EQ(tl_check(t, &e), MR_OK);
    tl_out_free(&o);
    tl_free(t);
}

TEST(older_wounds_younger_holder)
{
    tl_table *t = tl_new();
    tl_out o = {0};
    mr_err e;
    CHECK_EQ(acq(t, 7, 70, point(TL_EXCLUSIVE, "k"), NULL, &o), TL_GRANTED);
    CHECK_EQ(acq(t, 7, 70, point(TL_EXCLUSIVE, "m"), NULL, &o), TL_GRANTED);
    CHECK_EQ(acq(t, 2, 20, point(TL_SHARED, "k"), NULL, &o), TL_GRANTED);
    CHECK_EQ(o.nwounded, 1);
    CHECK_EQ(o.wounded[0], 7);
    CHECK_EQ(tl_state(t, 7), TL_WOUNDED_STATE);
    CHECK_EQ(tl_held(t, 7), 0); /* all of its locks went at once */
    /* The wounded transaction learns it on its next call and cannot prepare. */
    CHECK_EQ(acq(t, 7, 70, point(TL_SHARED, "z"), NULL, &o), TL_WOUNDED);
    CHECK_EQ(tl_prepare(t, 7, &e), MR_EABORTED);
    tl_release(t, 7, &o);
    CHECK(!tl_known(t, 7));
    CHECK_EQ(tl_check(t, &e), MR_OK);
    tl_out_free(&o);
    tl_free(t);
}

TEST(prepared_holder_is_not_wounded)
{
    tl_table *t = tl_new();
    tl_out o = {0};
    mr_err e;
    CHECK_EQ(acq(t, 9, 90, point(TL_EXCLUSIVE, "k"), NULL, &o), TL_GRANTED);
    CHECK_EQ(tl_prepare(t, 9, &e), MR_OK);
    uint64_t r;
    CHECK_EQ(acq(t, 1, 10, point(TL_EXCLUSIVE, "k"), &r, &o), TL_WAIT);
    CHECK_EQ(o.nwounded, 0);
    CHECK_EQ(tl_state(t, 9), TL_PREPARED);
    /* A prepared transaction takes no more locks. */
    CHECK(acq(t, 9, 90, point(TL_SHARED, "q"), NULL, &o) < 0);
    CHECK_EQ(tl_check(t, &e), MR_OK);
    tl_release(t, 9, &o);
    CHECK(granted_has(&o, 1, r));
    tl_out_free(&o);
    tl_free(t);
}

TEST(ranges_protect_against_phantoms)
{
    tl_table *t = tl_new();
    tl_out o = {0};
    mr_err e;
    CHECK_EQ(acq(t, 1, 10, range(TL_SHARED, "b", "d"), NULL, &o), TL_GRANTED);
    CHECK_EQ(acq(t, 2, 20, point(TL_EXCLUSIVE, "c"), NULL, &o), TL_WAIT);    /* inside */
    CHECK_EQ(acq(t, 3, 30, point(TL_EXCLUSIVE, "b"), NULL, &o), TL_WAIT);    /* start inclusive */
    CHECK_EQ(acq(t, 4, 40, point(TL_EXCLUSIVE, "d"), NULL, &o), TL_GRANTED); /* end exclusive */
    CHECK_EQ(acq(t, 5, 50, point(TL_EXCLUSIVE, "a"), NULL, &o), TL_GRANTED);
    CHECK_EQ(acq(t, 6, 60, range(TL_EXCLUSIVE, "cc", "zz"), NULL, &o), TL_WAIT);
    /* [x, inf) would overtake 6's older waiting [cc, zz): it waits; [zz, inf) does not overlap. */
    CHECK_EQ(acq(t, 7, 75, range(TL_SHARED, "x", NULL), NULL, &o), TL_WAIT);
    CHECK_EQ(acq(t, 8, 80, range(TL_SHARED, "zz", NULL), NULL, &o), TL_GRANTED);
    CHECK_EQ(acq(t, 11, 110, range(TL_EXCLUSIVE, "e", NULL), NULL, &o), TL_WAIT);
    CHECK_EQ(tl_check(t, &e), MR_OK);
    uint64_t dummy;
    tl_lock bad = range(TL_SHARED, "m", "c");
    CHECK_EQ(tl_acquire(t, 12, 120, &bad, &dummy, &o, &e), -MR_EINVAL);
    CHECK(strstr(mr_err_msg(&e), "empty lock range") != NULL);
    bad = (tl_lock){.mode = 7};
    CHECK_EQ(tl_acquire(t, 12, 120, &bad, &dummy, &o, &e), -MR_EINVAL);
    tl_out_free(&o);
    tl_free(t);
}

TEST(reentrant_and_upgrade)
{
    tl_table *t = tl_new();
    tl_out o = {0};
    mr_err e;
    uint64_t r1, r2;
    CHECK_EQ(acq(t, 5, 50, range(TL_EXCLUSIVE, "a", "z"), &r1, &o), TL_GRANTED);
    CHECK_EQ(acq(t, 5, 50, point(TL_SHARED, "k"), &r2, &o), TL_GRANTED);
    CHECK_EQ(r1, r2); /* covered by its own range lock: no new request */
    CHECK_EQ(tl_count(t), 1);
    /* Upgrade S -> X while an older reader holds S: the younger upgrader waits. */
    CHECK_EQ(acq(t, 1, 10, point(TL_SHARED, "zz"), NULL, &o), TL_GRANTED);
    CHECK_EQ(acq(t, 6, 60, point(TL_SHARED, "zz"), NULL, &o), TL_GRANTED);
    CHECK_EQ(acq(t, 6, 60, point(TL_EXCLUSIVE, "zz"), NULL, &o), TL_WAIT);
    /* An older upgrader wounds the younger reader. */
    CHECK_EQ(acq(t, 1, 10, point(TL_EXCLUSIVE, "zz"), NULL, &o), TL_GRANTED);
    CHECK_EQ(o.nwounded, 1);
    CHECK_EQ(o.wounded[0], 6);
    CHECK_EQ(tl_check(t, &e), MR_OK);
    /* Re-registering with another age is refused. */
    CHECK(acq(t, 1, 11, point(TL_SHARED, "q"), NULL, &o) < 0);
    tl_out_free(&o);
    tl_free(t);
}

TEST(waiters_granted_oldest_first)
{
    tl_table *t = tl_new();
    tl_out o = {0};
    mr_err e;
    CHECK_EQ(acq(t, 1, 10, point(TL_EXCLUSIVE, "k"), NULL, &o), TL_GRANTED);
    CHECK_EQ(tl_prepare(t, 1, &e), MR_OK);
    uint64_t r30, r20;
    CHECK_EQ(acq(t, 3, 30, point(TL_EXCLUSIVE, "k"), &r30, &o), TL_WAIT);
    CHECK_EQ(acq(t, 2, 20, point(TL_EXCLUSIVE, "k"), &r20, &o), TL_WAIT);
    /* A younger shared request does not overtake the older waiters. */
    CHECK_EQ(acq(t, 4, 40, point(TL_SHARED, "k"), NULL, &o), TL_WAIT);
    tl_out_reset(&o);
    tl_release(t, 1, &o);
    CHECK_EQ(o.ngranted, 1);
    CHECK(granted_has(&o, 2, r20));
    tl_out_reset(&o);
    tl_release(t, 2, &o);
    CHECK(granted_has(&o, 3, r30));
    CHECK_EQ(tl_check(t, &e), MR_OK);
    tl_out_free(&o);
    tl_free(t);
}

TEST(prepare_rules)
{
    tl_table *t = tl_new();
    tl_out o = {0};
    mr_err e;
    CHECK_EQ(acq(t, 1, 10, point(TL_EXCLUSIVE, "a"), NULL, &o), TL_GRANTED);
    CHECK_EQ(acq(t, 2, 20, point(TL_EXCLUSIVE, "a"), NULL, &o), TL_WAIT);
    CHECK_EQ(tl_prepare(t, 2, &e), MR_EINVAL); /* still waiting */
    CHECK(strstr(mr_err_msg(&e), "still waits") != NULL);
    CHECK_EQ(tl_prepare(t, 99, &e), MR_ENOTFOUND);
    CHECK_EQ(tl_check(t, &e), MR_OK);
    tl_out_free(&o);
    tl_free(t);
}

/* Property test: random transactions acquire random point and range locks,
 * prepare, commit or abort; after every step the invariants hold, and every
 * transaction eventually finishes (no deadlock): when all remaining
 * transactions wait, wound-wait guarantees that can't be. */
/* Runs the workload; returns the first invariant or liveness violation found
 * (0 = none), with its description in msg. */
static int random_workload(tl_mutant mutant, char *msg, size_t msglen)
{
    srand(12345);
    const char *keys[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    for (int round = 0; round < 40; round++) {
        tl_table *t = tl_new();
        tl_set_mutant(t, mutant);
        tl_out o = {0};
        mr_err e;
        int bad = 0;
        enum { NT = 12 };
        int64_t prio[NT];
        int done[NT] = {0}, prepared[NT] = {0}, ops[NT] = {0};
        for (int i = 0; i < NT; i++)
            prio[i] = rand() % 1000;
        int finished = 0;
        for (int step = 0; step < 5000 && finished < NT; step++) {
            int i = rand() % NT;
            uint64_t id = (uint64_t)i + 1;
            if (done[i])
                continue;
            tl_out_reset(&o);
            if (tl_state(t, id) == TL_WOUNDED_STATE) {
                tl_release(t, id, &o); /* abort */
                done[i] = 1;
                finished++;
            } else if (tl_waiting(t, id) > 0) {
                continue; /* blocked: cannot act */
            } else if (prepared[i] || ops[i] >= 4) {
                if (!prepared[i] && tl_known(t, id)) {
                    if (tl_prepare(t, id, &e) != MR_OK) {
                        snprintf(msg, msglen, "prepare failed: %s", mr_err_msg(&e));
                        bad = 1;
                        break;
                    }
                    prepared[i] = 1;
                    continue;
                }
                tl_release(t, id, &o); /* commit */
                done[i] = 1;
                finished++;
            } else {
                tl_mode m = rand() % 2 ? TL_SHARED : TL_EXCLUSIVE;
                tl_lock lk;
                if (rand() % 4 == 0) {
                    int a = rand() % 7;
                    int b = a + 1 + rand() % (8 - a - 1 + 1);
                    lk = range(m, keys[a], b >= 8 ? NULL : keys[b]);
                } else {
                    lk = point(m, keys[rand() % 8]);
                }
                int rc = acq(t, id, prio[i], lk, NULL, &o);
                if (rc != TL_GRANTED && rc != TL_WAIT) {
                    snprintf(msg, msglen, "acquire returned %d", rc);
                    bad = 1;
                    break;
                }
                ops[i]++;
            }
            if (tl_check(t, &e) != MR_OK) {
                snprintf(msg, msglen, "round %d step %d: %s", round, step, mr_err_msg(&e));
                bad = 1;
                break;
            }
            /* Liveness: someone not done can always move. */
            bool can_move = finished == NT;
            for (int j = 0; j < NT && !can_move; j++)
                if (!done[j] && (tl_waiting(t, (uint64_t)j + 1) == 0 ||
                                 tl_state(t, (uint64_t)j + 1) == TL_WOUNDED_STATE))
                    can_move = true;
            if (!can_move) {
                snprintf(msg, msglen, "round %d step %d: every live transaction waits (deadlock)",
                         round, step);
                bad = 1;
                break;
            }
        }
        if (!bad && finished != NT) {
            snprintf(msg, msglen, "round %d: only %d of %d finished", round, finished, NT);
            bad = 1;
        }
        if (!bad && tl_count(t) != 0) {
            snprintf(msg, msglen, "round %d: %zu requests left", round, tl_count(t));
            bad = 1;
        }
        tl_out_free(&o);
        tl_free(t);
        if (bad)
            return 1;
    }
    return 0;
}

TEST(random_workload_keeps_invariants)
{
    char msg[256] = "";
    CHECKF(random_workload(TL_CORRECT, msg, sizeof msg) == 0, "%s", msg);
}

/* Negative controls: the same workload must expose each broken variant. */
TEST(mutant_no_wound_is_caught)
{
    char msg[256] = "";
    CHECK(random_workload(TL_MUTANT_NO_WOUND, msg, sizeof msg) == 1);
    printf("  caught: %s\n", msg);
}

TEST(mutant_ignore_ranges_is_caught)
{
    char msg[256] = "";
    CHECK(random_workload(TL_MUTANT_IGNORE_RANGES, msg, sizeof msg) == 1);
    CHECK(strstr(msg, "conflicting") != NULL);
    printf("  caught: %s\n", msg);
}

/* A push names a younger prepared holder an older request waits for, once per call; an older
 * holder, or a younger active one (wounded instead), is not pushed. */
TEST(waiting_for_younger_prepared_holder_pushes_it)
{
    tl_table *t = tl_new();
    tl_out o = {0};
    mr_err e;
    CHECK_EQ(acq(t, 9, 90, point(TL_EXCLUSIVE, "k"), NULL, &o), TL_GRANTED);
    CHECK_EQ(acq(t, 9, 90, point(TL_EXCLUSIVE, "q"), NULL, &o), TL_GRANTED);
    CHECK_EQ(tl_prepare(t, 9, &e), MR_OK);
    CHECK_EQ(acq(t, 1, 10, range(TL_SHARED, "a", "z"), NULL, &o), TL_WAIT);
    CHECK_EQ(o.npushed, 1u);
    CHECK(o.npushed == 1 && o.pushed[0] == 9);
    CHECK_EQ(o.nwounded, 0u);
    /* While that request waits, every call that looks at it says so again. */
    tl_out_reset(&o);
    CHECK_EQ(acq(t, 30, 300, point(TL_SHARED, "q"), NULL, &o), TL_WAIT);
    CHECK(o.npushed == 1 && o.pushed[0] == 9);
    tl_release(t, 1, &o);
    tl_release(t, 30, &o);
    /* A younger request waits for it without pushing. */
    tl_out_reset(&o);
    CHECK_EQ(acq(t, 20, 200, point(TL_SHARED, "k"), NULL, &o), TL_WAIT);
    CHECK_EQ(o.npushed, 0u);
    CHECK_EQ(tl_check(t, &e), MR_OK);
    tl_release(t, 9, &o);
    tl_release(t, 20, &o);
    CHECK_EQ(tl_count(t), 0u);
    tl_out_free(&o);
    tl_free(t);
}

/* Two-phase commit over several lock tables (groups): each transaction reads, then takes its
 * exclusive locks group by group, each group marking it prepared once its locks there are
 * granted (a participant), and commits once prepared everywhere (the coordinator's decision).
 * Wound-wait keeps each table acyclic, but a transaction prepared at one group and waiting at
 * another can close a cycle across tables. Acting on tl_out.pushed as the coordinator does
 * (abort the pushed transaction unless it is decided) must leave no deadlock; without pushes
 * (mutant) the same workload deadlocks. */
static int cross_group_workload(tl_mutant mutant, char *msg, size_t msglen)
{
    srand(777);
    enum { NG = 3, NT = 10, NK = 3, MAXR = 3, MAXW = 3 };
    const char *keys[NK] = {"a", "b", "c"};
    int deadlocks = 0;
    for (int round = 0; round < 300; round++) {
        tl_table *tab[NG];
        for (int g = 0; g < NG; g++) {
            tab[g] = tl_new();
            tl_set_mutant(tab[g], mutant);
        }
        tl_out o = {0};
        mr_err e;
        struct {
            int64_t prio;
            int nr, nw, rdone;
            int rg[MAXR], rk[MAXR], wg[MAXW], wk[MAXW];
            bool issued[NG], prepared[NG], part[NG];
            bool done, abort, committing;
        } x[NT];
        memset(x, 0, sizeof x);
        for (int i = 0; i < NT; i++) {
            x[i].prio = rand() % 1000;
            x[i].nr = rand() % (MAXR + 1);
            x[i].nw = 1 + rand() % MAXW;
            for (int k = 0; k < x[i].nr; k++) {
                x[i].rg[k] = rand() % NG;
                x[i].rk[k] = rand() % NK;
                x[i].part[x[i].rg[k]] = true;
            }
            for (int k = 0; k < x[i].nw; k++) {
                x[i].wg[k] = rand() % NG;
                x[i].wk[k] = rand() % NK;
                x[i].part[x[i].wg[k]] = true;
            }
        }
        int finished = 0, bad = 0;
        for (int step = 0; step < 20000 && finished < NT && !bad; step++) {
            /* What the last calls reported: wounded transactions abort, pushed ones too
             * unless decided (prepared everywhere). */
            for (size_t k = 0; k < o.nwounded; k++)
                x[o.wounded[k] - 1].abort = true;
            for (size_t k = 0; k < o.npushed; k++)
                if (!x[o.pushed[k] - 1].committing)
                    x[o.pushed[k] - 1].abort = true;
            tl_out_reset(&o);
            /* Who can move: an abort, a participant whose locks are in, a transaction waiting
             * nowhere. */
            int movable[NT * (NG + 1)], nm = 0;
            for (int i = 0; i < NT; i++) {
                if (x[i].done)
                    continue;
                uint64_t id = (uint64_t)i + 1;
                bool waits = false;
                for (int g = 0; g < NG; g++) {
                    waits |= tl_waiting(tab[g], id) > 0;
                    if (x[i].issued[g] && !x[i].prepared[g] && tl_waiting(tab[g], id) == 0)
                        movable[nm++] = i * (NG + 1) + 1 + g;
                }
                if (x[i].abort || !waits)
                    movable[nm++] = i * (NG + 1);
            }
            if (nm == 0) {
                snprintf(msg, msglen, "round %d step %d: every live transaction waits", round,
                         step);
                deadlocks++;
                bad = 1;
                break;
            }
            int pick = movable[rand() % nm];
            int i = pick / (NG + 1), g = pick % (NG + 1) - 1;
            uint64_t id = (uint64_t)i + 1;
            if (x[i].abort) {
                for (int h = 0; h < NG; h++)
                    tl_release(tab[h], id, &o);
                x[i].done = true;
                finished++;
            } else if (g >= 0) {
                /* A participant prepares (its locks there are granted). */
                if (tl_known(tab[g], id) && tl_prepare(tab[g], id, &e) != MR_OK) {
                    snprintf(msg, msglen, "prepare: %s", mr_err_msg(&e));
                    bad = 1;
                }
                x[i].prepared[g] = true;
                bool all = true;
                for (int h = 0; h < NG; h++)
                    all &= !x[i].part[h] || x[i].prepared[h];
                x[i].committing = all;
            } else if (x[i].committing) {
                for (int h = 0; h < NG; h++) /* decided: commit everywhere */
                    tl_release(tab[h], id, &o);
                x[i].done = true;
                finished++;
            } else if (x[i].rdone < x[i].nr) {
                int k = x[i].rdone++;
                if (acq(tab[x[i].rg[k]], id, x[i].prio, point(TL_SHARED, keys[x[i].rk[k]]), NULL,
                        &o) < 0) {
                    snprintf(msg, msglen, "read refused");
                    bad = 1;
                }
            } else {
                /* The commit reaches the next participant that has not had it. */
                int h = 0;
                while (h < NG && (!x[i].part[h] || x[i].issued[h]))
                    h++;
                if (h < NG) {
                    x[i].issued[h] = true;
                    for (int k = 0; k < x[i].nw; k++)
                        if (x[i].wg[k] == h &&
                            acq(tab[h], id, x[i].prio, point(TL_EXCLUSIVE, keys[x[i].wk[k]]), NULL,
                                &o) < 0) {
                            snprintf(msg, msglen, "write refused");
                            bad = 1;
                        }
                }
            }
            for (int h = 0; h < NG && !bad; h++)
                if (tl_check(tab[h], &e) != MR_OK) {
                    snprintf(msg, msglen, "round %d group %d: %s", round, h, mr_err_msg(&e));
                    bad = 2;
                }
        }
        if (!bad && finished != NT) {
            snprintf(msg, msglen, "round %d: only %d of %d finished", round, finished, NT);
            bad = 2;
        }
        tl_out_free(&o);
        for (int g = 0; g < NG; g++)
            tl_free(tab[g]);
        if (bad)
            return bad;
    }
    return 0;
}

TEST(pushes_leave_no_deadlock_across_groups)
{
    char msg[256] = "";
    CHECKF(cross_group_workload(TL_CORRECT, msg, sizeof msg) == 0, "%s", msg);
}

TEST(mutant_no_push_deadlocks_across_groups)
{
    char msg[256] = "";
    CHECK(cross_group_workload(TL_MUTANT_NO_PUSH, msg, sizeof msg) == 1);
    CHECK(strstr(msg, "every live transaction waits") != NULL);
    printf("  caught: %s\n", msg);
}

TEST_MAIN(TEST_CASE(shared_compatible_exclusive_conflicts), TEST_CASE(older_wounds_younger_holder),
          TEST_CASE(prepared_holder_is_not_wounded), TEST_CASE(ranges_protect_against_phantoms),
          TEST_CASE(reentrant_and_upgrade), TEST_CASE(waiters_granted_oldest_first),
          TEST_CASE(prepare_rules), TEST_CASE(random_workload_keeps_invariants),
          TEST_CASE(mutant_no_wound_is_caught), TEST_CASE(mutant_ignore_ranges_is_caught),
          TEST_CASE(waiting_for_younger_prepared_holder_pushes_it),
          TEST_CASE(pushes_leave_no_deadlock_across_groups),
          TEST_CASE(mutant_no_push_deadlocks_across_groups))

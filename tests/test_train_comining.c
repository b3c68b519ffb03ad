/* test_train_comining.c: the Co-Mining selection (comining.h) on hand-made loss vectors:
 * the drop-rate schedule and keep count, the four sets on a worked example, ties, r = 0,
 * k = 1, a batch of one, NaN losses, odd sizes against a naive O(n^2) reference, and for
 * every mode and re-weighting the per-sample forms and weights METHOD.md prescribes
 * (sum of weights 1 for a non-empty update set, w on C in the `weight` form). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/comining.h"
#include "comine/core.h"
#include "comine/loss.h"
#include "fixture.h"

#define MAXN 64

typedef struct result {
    uint8_t form_a[MAXN], form_b[MAXN], noisy[MAXN];
    float weight_a[MAXN], weight_b[MAXN];
    comine_sets sets;
} result;

static void run(result *r, const float *la, const float *lb, const uint8_t *truth, int n, float drop,
                comine_mode mode, comine_reweight rw, float w)
{
    comine_select_cfg cfg = {.mode = mode, .reweight = rw, .w = w};
    memset(r, 0xAB, sizeof *r); /* garbage: everything the function owns must be written */
    /* scratch of exactly the stated size, garbage-filled, so that ASan sees any overrun */
    size_t bytes = comine_select_scratch_bytes(n);
    void *scratch = comine_malloc(bytes);
    memset(scratch, 0xCD, bytes);
    comine_selection sel = {.plan_a = {r->form_a, r->weight_a}, .plan_b = {r->form_b, r->weight_b}, .noisy = r->noisy};
    comine_select(&sel, la, lb, truth, n, drop, &cfg, scratch);
    r->sets = sel.sets;
    free(scratch);
}

/* "in" as a bit string over the batch, for messages */
static const char *mask_str(const uint8_t *m, int n)
{
    static char buf[4][MAXN + 1];
    static int k = 0;
    char *b = buf[k++ % 4];
    for (int i = 0; i < n; i++) b[i] = m[i] ? '1' : '0';
    b[n] = 0;
    return b;
}

/* Naive small-loss set: rank by counting (smaller loss, NaN last, ties lower index). */
static void naive_small(uint8_t *in, const float *l, int n, int k)
{
    for (int i = 0; i < n; i++) {
        int rank = 0;
        for (int j = 0; j < n; j++) {
            bool ni = isnan(l[i]), nj = isnan(l[j]);
            bool before = ni != nj ? ni : (!ni && l[j] != l[i]) ? l[j] < l[i] : j < i;
            rank += j != i && before;
        }
        in[i] = rank < k;
    }
}

/* Expected answer of one peer from the membership of each sample in its update set
 * (0 = out, 1 = plain, 2 = C re-weighted) under comining.h's contract. */
static void expect_peer(uint8_t *form, float *weight, const uint8_t *use, int n, uint8_t clean_form, float clean_w)
{
    int size = 0;
    for (int i = 0; i < n; i++) size += use[i] != 0;
    for (int i = 0; i < n; i++) {
        form[i] = use[i] == 2 ? clean_form : COMINE_FORM_ARCFACE;
        weight[i] = use[i] ? (use[i] == 2 ? clean_w : 1.0f) / (float)size : 0.0f;
    }
}

static int compare_peer(const char *what, const uint8_t *form, const float *weight, const uint8_t *eform,
                        const float *eweight, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (form[i] != eform[i] || fabsf(weight[i] - eweight[i]) > 1e-6f * fmaxf(1.0f, fabsf(eweight[i]))) {
            if (!bad) printf("FAIL %s: sample %d: form %d weight %.7g, expected form %d weight %.7g\n", what, i, form[i],
                             weight[i], eform[i], eweight[i]);
            bad++;
        }
    }
    if (bad) fx_fail_count++;
    return bad == 0;
}

/* Check every mode and re-weighting on one loss pair against the naive reference. */
static int check_all_modes(const char *what, const float *la, const float *lb, const uint8_t *truth, int n, float drop)
{
    int k = comine_keep_count(n, drop), ok = 1;
    uint8_t ga[MAXN], gb[MAXN], use_a[MAXN], use_b[MAXN], ef_a[MAXN], ef_b[MAXN], en[MAXN];
    float ew_a[MAXN], ew_b[MAXN];
    naive_small(ga, la, n, k);
    naive_small(gb, lb, n, k);
    int nc = 0, nxa = 0, nxb = 0, nn = 0;
    for (int i = 0; i < n; i++) {
        nc += ga[i] && gb[i];
        nxa += gb[i] && !ga[i];
        nxb += ga[i] && !gb[i];
        en[i] = !ga[i] && !gb[i];
        nn += en[i];
    }
    char name[160];
    for (int mode = 0; mode <= COMINE_MODE_ORACLE; mode++)
        for (int rw = 0; rw <= COMINE_REWEIGHT_MV; rw++) {
            if (mode != COMINE_MODE_COMINING && rw > 0) continue;
            const float w = 2.5f;
            result r;
            run(&r, la, lb, truth, n, drop, (comine_mode)mode, (comine_reweight)rw, w);
            snprintf(name, sizeof name, "%s mode %s%s%s", what, comine_mode_name((comine_mode)mode),
                     mode == COMINE_MODE_COMINING ? "/" : "", mode == COMINE_MODE_COMINING ? comine_reweight_name(rw) : "");
            uint8_t clean_form = COMINE_FORM_ARCFACE;
            float clean_w = 1.0f;
            bool two = comine_mode_two_peers((comine_mode)mode);
            for (int i = 0; i < n; i++) {
                switch (mode) {
                case COMINE_MODE_ARCFACE: use_a[i] = 1; break;
                case COMINE_MODE_ORACLE: use_a[i] = !truth[i]; break;
                case COMINE_MODE_SELF: use_a[i] = ga[i]; use_b[i] = gb[i]; break;
                case COMINE_MODE_NLD: use_a[i] = use_b[i] = !en[i]; break;
                case COMINE_MODE_COTEACH: use_a[i] = gb[i]; use_b[i] = ga[i]; break;
                case COMINE_MODE_COMINING:
                    use_a[i] = ga[i] && gb[i] ? 2 : gb[i];
                    use_b[i] = ga[i] && gb[i] ? 2 : ga[i];
                    break;
                }
            }
            if (mode == COMINE_MODE_COMINING) {
                if (rw == COMINE_REWEIGHT_MARGIN) clean_form = COMINE_FORM_MARGIN;
                if (rw == COMINE_REWEIGHT_WEIGHT) clean_w = w;
                if (rw == COMINE_REWEIGHT_MV) clean_form = COMINE_FORM_MV;
            }
            expect_peer(ef_a, ew_a, use_a, n, clean_form, clean_w);
            char pn[200];
            snprintf(pn, sizeof pn, "%s peer A", name);
            ok &= compare_peer(pn, r.form_a, r.weight_a, ef_a, ew_a, n);
            if (two) {
                expect_peer(ef_b, ew_b, use_b, n, clean_form, clean_w);
                snprintf(pn, sizeof pn, "%s peer B", name);
                ok &= compare_peer(pn, r.form_b, r.weight_b, ef_b, ew_b, n);
            } else {
                /* one-peer modes leave B's arrays untouched */
                uint8_t garbage[sizeof r.weight_b];
                memset(garbage, 0xAB, sizeof garbage);
                int untouched = !memcmp(r.form_b, garbage, (size_t)n) && !memcmp(r.weight_b, garbage, (size_t)n * 4);
                FX_EXPECT(untouched, "%s wrote peer B's arrays", name);
                ok &= untouched;
            }
            /* votes */
            bool detects = comine_mode_detects((comine_mode)mode);
            int votes_ok = 1;
            for (int i = 0; i < n; i++) votes_ok &= r.noisy[i] == (detects ? en[i] : 0);
            FX_EXPECT(votes_ok, "%s: votes %s, expected %s", name, mask_str(r.noisy, n),
                      detects ? mask_str(en, n) : "none");
            ok &= votes_ok;
            /* set sizes */
            if (two) {
                int sets_ok = r.sets.n == n && r.sets.keep == k && r.sets.n_clean == nc && r.sets.n_exchanged_a == nxa &&
                              r.sets.n_exchanged_b == nxb && r.sets.n_noisy == nn;
                FX_EXPECT(sets_ok, "%s: sets n %d keep %d C %d XA %d XB %d N %d, expected %d %d %d %d %d %d", name,
                          r.sets.n, r.sets.keep, r.sets.n_clean, r.sets.n_exchanged_a, r.sets.n_exchanged_b,
                          r.sets.n_noisy, n, k, nc, nxa, nxb, nn);
                ok &= sets_ok;
            }
            /* sum of weights: 1, or (w |C| + |X|) / |C u X| in the weight form; 0 when empty */
            for (int peer = 0; peer < (two ? 2 : 1); peer++) {
                const float *wt = peer ? r.weight_b : r.weight_a;
                const uint8_t *use = peer ? use_b : use_a;
                double sum = 0, want = 0;
                int size = 0, in_c = 0;
                for (int i = 0; i < n; i++) {
                    sum += wt[i];
                    size += use[i] != 0;
                    in_c += use[i] == 2;
                }
                if (size) want = (clean_w * in_c + (size - in_c)) / (double)size;
                FX_EXPECT(fabs(sum - want) < 1e-5, "%s peer %c: sum of weights %.7f, expected %.7f", name, "AB"[peer],
                          sum, want);
                if (fabs(sum - want) >= 1e-5) ok = 0;
            }
        }
    return ok;
}

static void test_schedule(void)
{
    struct { int e; float tau; int tk; float r; } cases[] = {
        {0, 0.2f, 5, 0.0f}, {1, 0.2f, 5, 0.04f}, {2, 0.4f, 5, 0.16f}, {5, 0.2f, 5, 0.2f}, {9, 0.4f, 5, 0.4f},
        {0, 0.3f, 0, 0.3f}, {3, 0.3f, -1, 0.3f},
    };
    int ok = 1;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float r = comine_drop_rate(cases[c].e, cases[c].tau, cases[c].tk);
        if (fabsf(r - cases[c].r) > 1e-6f) {
            printf("FAIL drop_rate(%d, %g, %d) = %g, expected %g\n", cases[c].e, cases[c].tau, cases[c].tk, r, cases[c].r);
            ok = 0;
        }
    }
    struct { int n; float r; int k; } keeps[] = {
        {64, 0.2f, 51}, {64, 0.0f, 64}, {10, 0.25f, 8}, {10, 0.35f, 7}, {7, 0.4f, 4}, {3, 1.0f, 1}, {1, 0.4f, 1},
        {1, 0.9f, 1}, {5, 0.95f, 1}, {2, 0.0f, 2},
    };
    for (size_t c = 0; c < sizeof keeps / sizeof keeps[0]; c++) {
        int k = comine_keep_count(keeps[c].n, keeps[c].r);
        if (k != keeps[c].k) {
            printf("FAIL keep_count(%d, %g) = %d, expected %d\n", keeps[c].n, keeps[c].r, k, keeps[c].k);
            ok = 0;
        }
    }
    if (!ok) fx_fail_count++;
    printf("%s drop rate r(e) = tau min(e/Tk, 1) on 7 cases, k = round((1-r)n) in [1, n] on 10 cases\n",
           ok ? "ok  " : "FAIL");

    struct { comine_reweight_schedule s; int e, tk; float share; } shares[] = {
        {COMINE_RW_ALWAYS, 0, 5, 1.0f},  {COMINE_RW_ALWAYS, 9, 5, 1.0f},  {COMINE_RW_FROM_TK, 0, 5, 0.0f},
        {COMINE_RW_FROM_TK, 4, 5, 0.0f}, {COMINE_RW_FROM_TK, 5, 5, 1.0f}, {COMINE_RW_FROM_TK, 3, 0, 1.0f},
        {COMINE_RW_RAMP, 0, 4, 0.0f},    {COMINE_RW_RAMP, 1, 4, 0.25f},   {COMINE_RW_RAMP, 3, 4, 0.75f},
        {COMINE_RW_RAMP, 6, 4, 1.0f},    {COMINE_RW_RAMP, 2, 0, 1.0f},
    };
    int ok_share = 1;
    for (size_t c = 0; c < sizeof shares / sizeof shares[0]; c++) {
        float v = comine_reweight_share(shares[c].s, shares[c].e, shares[c].tk);
        if (fabsf(v - shares[c].share) > 1e-6f) {
            printf("FAIL reweight_share(%s, %d, %d) = %g, expected %g\n", comine_reweight_schedule_name(shares[c].s),
                   shares[c].e, shares[c].tk, v, shares[c].share);
            ok_share = 0;
        }
    }
    if (!ok_share) fx_fail_count++;
    printf("%s re-weighting share: always 1, from-tk 0 before tk, ramp min(e/Tk, 1), on 11 cases\n",
           ok_share ? "ok  " : "FAIL");
}

static void test_names(void)
{
    int ok = 1;
    for (int m = 0; m <= COMINE_MODE_ORACLE; m++) {
        comine_mode back;
        ok &= comine_mode_parse(comine_mode_name((comine_mode)m), &back) && back == (comine_mode)m;
    }
    for (int r = 0; r <= COMINE_REWEIGHT_MV; r++) {
        comine_reweight back;
        ok &= comine_reweight_parse(comine_reweight_name((comine_reweight)r), &back) && back == (comine_reweight)r;
    }
    comine_mode m;
    comine_reweight rw;
    ok &= !comine_mode_parse("co-mining", &m) && !comine_mode_parse("", &m) && !comine_mode_parse(NULL, &m);
    ok &= !comine_reweight_parse("margins", &rw) && !comine_reweight_parse("", &rw);
    for (int r = 0; r <= COMINE_RW_RAMP; r++) {
        comine_reweight_schedule back;
        ok &= comine_reweight_schedule_parse(comine_reweight_schedule_name((comine_reweight_schedule)r), &back) &&
              back == (comine_reweight_schedule)r;
    }
    comine_reweight_schedule sch;
    ok &= !comine_reweight_schedule_parse("fromtk", &sch) && !comine_reweight_schedule_parse(NULL, &sch);
    ok &= !strcmp(comine_mode_name(COMINE_MODE_COTEACH), "coteach") && !strcmp(comine_reweight_name(COMINE_REWEIGHT_MV), "mv");
    ok &= comine_mode_two_peers(COMINE_MODE_COMINING) && !comine_mode_two_peers(COMINE_MODE_ORACLE) &&
          !comine_mode_two_peers(COMINE_MODE_ARCFACE) && comine_mode_detects(COMINE_MODE_NLD) &&
          !comine_mode_detects(COMINE_MODE_ARCFACE) && !comine_mode_detects(COMINE_MODE_ORACLE);
    FX_EXPECT(ok, "mode / re-weighting names");
    printf("%s names and parsers of the 6 modes and 3 re-weightings\n", ok ? "ok  " : "FAIL");
}

/* The worked example: n = 8, r = 0.5 -> k = 4.
 *   lA = .1 .9 .3 .8 .2 .5 .7 .4 -> GA = {0,4,2,7}
 *   lB = .2 .1 .9 .7 .3 .4 .8 .6 -> GB = {1,0,4,5}
 *   C = {0,4}, XA = {1,5}, XB = {2,7}, N = {3,6} */
static void test_worked_example(void)
{
    const float la[8] = {.1f, .9f, .3f, .8f, .2f, .5f, .7f, .4f};
    const float lb[8] = {.2f, .1f, .9f, .7f, .3f, .4f, .8f, .6f};
    result r;
    run(&r, la, lb, NULL, 8, 0.5f, COMINE_MODE_COMINING, COMINE_REWEIGHT_MARGIN, 2.0f);
    const uint8_t noisy[8] = {0, 0, 0, 1, 0, 0, 1, 0};
    const uint8_t fa[8] = {1, 0, 0, 0, 1, 0, 0, 0}, fb[8] = {1, 0, 0, 0, 1, 0, 0, 0};
    const float wa[8] = {.25f, .25f, 0, 0, .25f, .25f, 0, 0}, wb[8] = {.25f, 0, .25f, 0, .25f, 0, 0, .25f};
    int ok = r.sets.keep == 4 && r.sets.n_clean == 2 && r.sets.n_exchanged_a == 2 && r.sets.n_exchanged_b == 2 &&
             r.sets.n_noisy == 2 && !memcmp(r.noisy, noisy, 8);
    ok &= compare_peer("worked example comining/margin peer A", r.form_a, r.weight_a, fa, wa, 8);
    ok &= compare_peer("worked example comining/margin peer B", r.form_b, r.weight_b, fb, wb, 8);
    /* weight form: C counts w = 2 */
    run(&r, la, lb, NULL, 8, 0.5f, COMINE_MODE_COMINING, COMINE_REWEIGHT_WEIGHT, 2.0f);
    const uint8_t f0[8] = {0};
    const float wa2[8] = {.5f, .25f, 0, 0, .5f, .25f, 0, 0}, wb2[8] = {.5f, 0, .25f, 0, .5f, 0, 0, .25f};
    ok &= compare_peer("worked example comining/weight peer A", r.form_a, r.weight_a, f0, wa2, 8);
    ok &= compare_peer("worked example comining/weight peer B", r.form_b, r.weight_b, f0, wb2, 8);
    /* coteach: A on GB, B on GA; self: A on GA; nld: both on everything but {3, 6} */
    run(&r, la, lb, NULL, 8, 0.5f, COMINE_MODE_COTEACH, 0, 1.0f);
    const float gbw[8] = {.25f, .25f, 0, 0, .25f, .25f, 0, 0}, gaw[8] = {.25f, 0, .25f, 0, .25f, 0, 0, .25f};
    ok &= compare_peer("worked example coteach peer A", r.form_a, r.weight_a, f0, gbw, 8);
    ok &= compare_peer("worked example coteach peer B", r.form_b, r.weight_b, f0, gaw, 8);
    run(&r, la, lb, NULL, 8, 0.5f, COMINE_MODE_SELF, 0, 1.0f);
    ok &= compare_peer("worked example self peer A", r.form_a, r.weight_a, f0, gaw, 8);
    ok &= compare_peer("worked example self peer B", r.form_b, r.weight_b, f0, gbw, 8);
    run(&r, la, lb, NULL, 8, 0.5f, COMINE_MODE_NLD, 0, 1.0f);
    const float nw[8] = {1 / 6.f, 1 / 6.f, 1 / 6.f, 0, 1 / 6.f, 1 / 6.f, 0, 1 / 6.f};
    ok &= compare_peer("worked example nld peer A", r.form_a, r.weight_a, f0, nw, 8);
    ok &= compare_peer("worked example nld peer B", r.form_b, r.weight_b, f0, nw, 8);
    FX_EXPECT(ok, "worked example: keep %d C %d XA %d XB %d N %d votes %s", r.sets.keep, r.sets.n_clean,
              r.sets.n_exchanged_a, r.sets.n_exchanged_b, r.sets.n_noisy, mask_str(r.noisy, 8));
    printf("%s worked example n=8 r=0.5: C={0,4} XA={1,5} XB={2,7} N={3,6}; weights of comining "
           "(margin, weight), coteach, self, nld\n", ok ? "ok  " : "FAIL");
    check_all_modes("worked example", la, lb, (const uint8_t[8]){0, 0, 0, 1, 0, 0, 1, 0}, 8, 0.5f);
}

static void test_edges(void)
{
    int fails = fx_fail_count;
    /* ties: all equal -> the first k; partial ties break to the lower index */
    const float eq[6] = {1, 1, 1, 1, 1, 1};
    result r;
    run(&r, eq, eq, NULL, 6, 0.5f, COMINE_MODE_COMINING, COMINE_REWEIGHT_MARGIN, 1.0f);
    const uint8_t none[6] = {0, 0, 0, 1, 1, 1};
    FX_EXPECT(r.sets.n_clean == 3 && !memcmp(r.noisy, none, 6), "all-equal ties: C %d votes %s", r.sets.n_clean,
              mask_str(r.noisy, 6));
    const float ta[5] = {2, 1, 2, 1, 2}, tb[5] = {0, 3, 0, 3, 0};
    run(&r, ta, tb, NULL, 5, 0.4f, COMINE_MODE_COMINING, COMINE_REWEIGHT_MARGIN, 1.0f); /* k = 3 */
    /* GA = {1,3,0}, GB = {0,2,4} -> C = {0}, XA = {2,4}, XB = {1,3}, N = {} */
    FX_EXPECT(r.sets.keep == 3 && r.sets.n_clean == 1 && r.sets.n_exchanged_a == 2 && r.sets.n_exchanged_b == 2 &&
                  r.sets.n_noisy == 0 && r.form_a[0] == COMINE_FORM_MARGIN && r.weight_a[2] > 0 && r.weight_a[1] == 0,
              "partial ties: keep %d C %d XA %d XB %d", r.sets.keep, r.sets.n_clean, r.sets.n_exchanged_a,
              r.sets.n_exchanged_b);
    check_all_modes("ties (all equal)", eq, eq, (const uint8_t[6]){0}, 6, 0.5f);
    check_all_modes("ties (partial)", ta, tb, (const uint8_t[5]){1, 0, 0, 1, 0}, 5, 0.4f);

    /* r = 0: everything kept, all in C, no votes */
    const float la[7] = {3, 1, 4, 1, 5, 9, 2}, lb[7] = {2, 7, 1, 8, 2, 8, 1};
    run(&r, la, lb, NULL, 7, 0.0f, COMINE_MODE_COMINING, COMINE_REWEIGHT_MV, 1.0f);
    int all_c = r.sets.n_clean == 7 && r.sets.n_noisy == 0;
    for (int i = 0; i < 7; i++)
        all_c &= !r.noisy[i] && r.form_a[i] == COMINE_FORM_MV && r.form_b[i] == COMINE_FORM_MV &&
                 fabsf(r.weight_a[i] - 1 / 7.f) < 1e-7f && fabsf(r.weight_b[i] - 1 / 7.f) < 1e-7f;
    FX_EXPECT(all_c, "r = 0: everything should be in C with weight 1/7 and no votes");
    check_all_modes("r = 0", la, lb, (const uint8_t[7]){0}, 7, 0.0f);

    /* k = 1: GA = argmin lA = {1} (ties 1 and 3 -> 1), GB = argmin lB = {2} (ties 2 and 6 -> 2) */
    run(&r, la, lb, NULL, 7, 0.9f, COMINE_MODE_COMINING, COMINE_REWEIGHT_WEIGHT, 3.0f);
    FX_EXPECT(r.sets.keep == 1 && r.sets.n_clean == 0 && r.weight_a[2] == 1.0f && r.weight_b[1] == 1.0f &&
                  r.sets.n_noisy == 5 && r.noisy[0] && !r.noisy[1] && !r.noisy[2],
              "k = 1: keep %d C %d wA[2] %g wB[1] %g N %d", r.sets.keep, r.sets.n_clean, r.weight_a[2], r.weight_b[1],
              r.sets.n_noisy);
    check_all_modes("k = 1", la, lb, (const uint8_t[7]){1, 1, 1, 1, 1, 1, 1}, 7, 0.9f);

    /* a batch of one: always kept, in C */
    const float one_a[1] = {5}, one_b[1] = {0.5f};
    run(&r, one_a, one_b, NULL, 1, 0.4f, COMINE_MODE_COMINING, COMINE_REWEIGHT_WEIGHT, 2.0f);
    FX_EXPECT(r.sets.keep == 1 && r.sets.n_clean == 1 && r.weight_a[0] == 2.0f && r.weight_b[0] == 2.0f && !r.noisy[0],
              "batch of one: keep %d C %d wA %g", r.sets.keep, r.sets.n_clean, r.weight_a[0]);
    check_all_modes("batch of one", one_a, one_b, (const uint8_t[1]){0}, 1, 0.4f);
    check_all_modes("batch of one, noisy truth", one_a, one_b, (const uint8_t[1]){1}, 1, 0.4f);

    /* oracle with no clean sample: no update */
    run(&r, la, NULL, (const uint8_t[7]){1, 1, 1, 1, 1, 1, 1}, 7, 0.2f, COMINE_MODE_ORACLE, 0, 1.0f);
    int zeros = 1;
    for (int i = 0; i < 7; i++) zeros &= r.weight_a[i] == 0.0f && !r.noisy[i];
    FX_EXPECT(zeros, "oracle without clean samples must give all weights 0");

    /* NaN losses rank last: a NaN sample is never kept while finite ones remain */
    const float na[4] = {NAN, 1, 2, 3}, nb[4] = {1, NAN, 2, 3};
    run(&r, na, nb, NULL, 4, 0.5f, COMINE_MODE_COMINING, COMINE_REWEIGHT_MARGIN, 1.0f); /* k = 2 */
    FX_EXPECT(r.weight_b[0] == 0 && r.weight_a[1] == 0 && r.sets.n_clean == 1 && r.noisy[3] && !r.noisy[2],
              "NaN losses: C %d votes %s", r.sets.n_clean, mask_str(r.noisy, 4));
    printf("%s ties, r = 0, k = 1, a batch of one, oracle without clean samples, NaN losses\n",
           fx_fail_count == fails ? "ok  " : "FAIL");
}

static void test_random_sizes(void)
{
    comine_rng rng;
    comine_rng_seed(&rng, 5, COMINE_STREAM_EVAL);
    int cases = 0, ok = 1;
    for (int n = 1; n <= MAXN; n += (n < 20 ? 1 : 7))
        for (int rep = 0; rep < 6; rep++) {
            float la[MAXN], lb[MAXN];
            uint8_t truth[MAXN];
            for (int i = 0; i < n; i++) {
                /* coarse values so that ties are frequent */
                la[i] = (float)comine_rng_below(&rng, rep < 3 ? 4 : 1000) * 0.25f;
                lb[i] = (float)comine_rng_below(&rng, rep < 3 ? 4 : 1000) * 0.25f;
                truth[i] = comine_rng_uniform(&rng) < 0.4f;
            }
            float drop = comine_drop_rate(rep, 0.4f + 0.1f * (rep % 3), 4);
            char what[64];
            snprintf(what, sizeof what, "random n=%d rep=%d", n, rep);
            ok &= check_all_modes(what, la, lb, truth, n, drop);
            cases++;
        }
    printf("%s %d random batches (n = 1..64, odd sizes, many ties) x 8 mode/re-weightings vs a naive reference\n",
           ok ? "ok  " : "FAIL", cases);
}

static void test_collapse_alarm(void)
{
    /* the trap: both means below -0.5; anything else is not a collapse */
    int mark = fx_fail_count;
    FX_EXPECT(comine_collapsed(-0.9, -0.95), "collapse at (-0.9, -0.95) not detected");
    FX_EXPECT(comine_collapsed(-0.51, -0.6), "collapse at (-0.51, -0.6) not detected");
    FX_EXPECT(!comine_collapsed(0.3, -0.9), "a learning peer (0.3, -0.9) flagged");
    FX_EXPECT(!comine_collapsed(-0.9, -0.4), "(-0.9, -0.4) flagged");
    FX_EXPECT(!comine_collapsed(0.0, 0.0), "a fresh peer (0, 0) flagged");
    FX_SUMMARY(mark, "collapse alarm: (-0.9,-0.95) and (-0.51,-0.6) collapse; (0.3,-0.9), (-0.9,-0.4), (0,0) do not\n");
}

int main(void)
{
    test_collapse_alarm();
    test_schedule();
    test_names();
    test_worked_example();
    test_edges();
    test_random_sizes();
    return fx_finish("test_train_comining");
}

/* test_eval_dedup.c: duplicate identities (comine/dedup.h): the blocked top-k search against a
 * brute-force search (several tile sides, one that does not divide n, one larger than n), ties
 * to the lower index, padding when there are fewer labels than k; candidate pairs (each pair
 * once, sorted); the threshold rule on known numbers; planted duplicates found exactly by the
 * default rule (threshold and mutual nearest neighbours); the merge map; precision / recall;
 * put_block's lengths; centring; comine_dedup_find (the whole rule in one call) against the
 * steps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/core.h"
#include "comine/dedup.h"
#include "fixture.h"

static void random_unit_rows(float *x, int n, int d, comine_rng *rng)
{
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int c = 0; c < d; c++) {
            x[(size_t)i * d + c] = comine_rng_normal(rng);
            ss += (double)x[(size_t)i * d + c] * x[(size_t)i * d + c];
        }
        for (int c = 0; c < d; c++) x[(size_t)i * d + c] /= (float)sqrt(ss);
    }
}

/* Brute force: for each row, the k best other rows by a double-precision dot product. */
static void brute_topk(int *nbr, double *sim, const float *x, int n, int d, int k)
{
    for (int i = 0; i < n; i++) {
        for (int t = 0; t < k; t++) {
            nbr[i * k + t] = -1;
            sim[i * k + t] = -INFINITY;
        }
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            double v = 0;
            for (int c = 0; c < d; c++) v += (double)x[(size_t)i * d + c] * x[(size_t)j * d + c];
            if (!(v > sim[i * k + k - 1])) continue;
            int p = k - 1;
            while (p > 0 && sim[i * k + p - 1] < v) {
                sim[i * k + p] = sim[i * k + p - 1];
                nbr[i * k + p] = nbr[i * k + p - 1];
                p--;
            }
            sim[i * k + p] = v;
            nbr[i * k + p] = j;
        }
    }
}

static void check_topk(const char *what, int n, int d, int k, int block)
{
    comine_rng rng;
    comine_rng_seed(&rng, 100 + n + block, 1);
    float *x = malloc(sizeof(float) * (size_t)n * d);
    random_unit_rows(x, n, d, &rng);
    int *nbr = malloc(sizeof(int) * (size_t)n * k), *ref = malloc(sizeof(int) * (size_t)n * k);
    float *sim = malloc(sizeof(float) * (size_t)n * k);
    double *ref_sim = malloc(sizeof(double) * (size_t)n * k);
    comine_status st = comine_dedup_topk(nbr, sim, x, n, d, k, block);
    FX_EXPECT(st == COMINE_OK, "%s: %s", what, comine_last_error());
    brute_topk(ref, ref_sim, x, n, d, k);
    double max_err = 0;
    int wrong = 0, unsorted = 0;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < k; t++) {
            double e = fabs(sim[i * k + t] - ref_sim[i * k + t]);
            if (e > max_err) max_err = e;
            /* an index may differ only where two scores are within float rounding */
            if (nbr[i * k + t] != ref[i * k + t]) {
                bool near = (t + 1 < k && fabs(ref_sim[i * k + t] - ref_sim[i * k + t + 1]) < 1e-5) ||
                            (t > 0 && fabs(ref_sim[i * k + t] - ref_sim[i * k + t - 1]) < 1e-5);
                if (!near) wrong++;
            }
            if (t > 0 && sim[i * k + t] > sim[i * k + t - 1]) unsorted++;
            if (nbr[i * k + t] == i) wrong++;
        }
    printf("%-44s n %4d d %3d k %2d block %4d: max |score - brute| %.2e, %d wrong, %d unsorted\n", what, n, d, k,
           block, max_err, wrong, unsorted);
    FX_EXPECT(max_err < 1e-5 && wrong == 0 && unsorted == 0, "%s: top-k differs from brute force", what);
    free(x);
    free(nbr);
    free(ref);
    free(sim);
    free(ref_sim);
}

int main(void)
{
    /* ---- the search ---- */
    check_topk("top-k, one tile", 200, 16, 5, 256);
    check_topk("top-k, tiles of 64", 300, 16, 5, 64);
    check_topk("top-k, tiles of 37 (not dividing n)", 301, 24, 7, 37);
    check_topk("top-k, tiles of 16, k 1", 150, 8, 1, 16);

    {
        /* ties: rows 0, 3 and 5 identical; row 0's list must be 3 then 5, row 5's 0 then 3 */
        float x[6 * 4] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0};
        int nbr[6 * 2];
        float sim[6 * 2];
        FX_EXPECT(comine_dedup_topk(nbr, sim, x, 6, 4, 2, 2) == COMINE_OK, "ties: %s", comine_last_error());
        FX_EXPECT(nbr[0] == 3 && nbr[1] == 5 && nbr[10] == 0 && nbr[11] == 3 && nbr[6] == 0 && nbr[7] == 5,
                  "ties go to the lower index: row 0 -> %d %d, row 3 -> %d %d, row 5 -> %d %d", nbr[0], nbr[1],
                  nbr[6], nbr[7], nbr[10], nbr[11]);
        printf("ties: row 0 -> %d %d, row 3 -> %d %d, row 5 -> %d %d\n", nbr[0], nbr[1], nbr[6], nbr[7], nbr[10],
               nbr[11]);
        /* fewer labels than k: padding */
        int nb3[3 * 4];
        float s3[3 * 4];
        FX_EXPECT(comine_dedup_topk(nb3, s3, x, 3, 4, 4, 0) == COMINE_OK, "padding: %s", comine_last_error());
        FX_EXPECT(nb3[2] == -1 && nb3[3] == -1 && isinf(s3[2]) && s3[2] < 0 && nb3[0] >= 0 && nb3[1] >= 0,
                  "3 labels, k 4: two entries and two pads (%d %d %d %d)", nb3[0], nb3[1], nb3[2], nb3[3]);
        FX_EXPECT(comine_dedup_topk(nb3, s3, x, 0, 4, 4, 0) != COMINE_OK, "n 0 accepted");
        FX_EXPECT(comine_dedup_topk(nb3, s3, x, 3, 4, 0, 0) != COMINE_OK, "k 0 accepted");
    }

    /* ---- planted duplicates: 400 labels, 40 of them near copies of others ---- */
    {
        int n = 400, d = 64, k = 5, dup = 40;
        comine_rng rng;
        comine_rng_seed(&rng, 7, 2);
        float *x = malloc(sizeof(float) * (size_t)n * d);
        random_unit_rows(x, n, d, &rng);
        int *truth = malloc(sizeof(int) * 2 * dup);
        for (int j = 0; j < dup; j++) {
            int a = 3 * j, b = n - 1 - 2 * j; /* label b is label a plus a little noise */
            for (int c = 0; c < d; c++) x[(size_t)b * d + c] = x[(size_t)a * d + c] + 0.08f * comine_rng_normal(&rng);
            truth[2 * j] = b; /* either order */
            truth[2 * j + 1] = a;
        }
        float *xn = malloc(sizeof(float) * (size_t)n * d);
        comine_dedup_put_block(xn, n, d, 0, x, d, 1.0f);
        int *nbr = malloc(sizeof(int) * (size_t)n * k);
        float *sim = malloc(sizeof(float) * (size_t)n * k);
        FX_EXPECT(comine_dedup_topk(nbr, sim, xn, n, d, k, 128) == COMINE_OK, "planted: %s", comine_last_error());
        comine_dedup_pair *cand;
        int nc = comine_dedup_candidates(&cand, nbr, sim, n, k);
        int bad_order = 0, repeated = 0;
        for (int p = 0; p < nc; p++) {
            if (cand[p].a >= cand[p].b) bad_order++;
            if (p && cand[p].score > cand[p - 1].score) bad_order++;
            for (int q = 0; q < p; q++)
                if (cand[q].a == cand[p].a && cand[q].b == cand[p].b) repeated++;
        }
        FX_EXPECT(nc >= n * k / 2 && nc <= n * k && bad_order == 0 && repeated == 0,
                  "candidates: %d pairs, %d out of order, %d repeated", nc, bad_order, repeated);
        comine_dedup_rule rule;
        double thr = comine_dedup_threshold(sim, n, k, COMINE_DEDUP_K_SIGMA, &rule);
        uint8_t *is_dup = malloc((size_t)nc);
        int found = comine_dedup_select(is_dup, cand, nc, nbr, k, thr, true);
        comine_dedup_pair *dups = malloc(sizeof *dups * (size_t)(found ? found : 1));
        for (int p = 0, m = 0; p < nc; p++)
            if (is_dup[p]) dups[m++] = cand[p];
        int above = 0, mutual_top = 0;
        for (int p = 0; p < nc; p++) above += cand[p].score > thr;
        for (int p = 0; p < nc; p++)
            if (is_dup[p]) mutual_top += nbr[cand[p].a * k] == cand[p].b && nbr[cand[p].b * k] == cand[p].a;
        FX_EXPECT(mutual_top == found && found <= above, "select: %d selected, %d mutual, %d above", found, mutual_top,
                  above);
        comine_dedup_eval e;
        comine_dedup_evaluate(&e, dups, found, truth, dup);
        printf("planted: %d candidates, nearest median %.3f sigma %.3f threshold %.3f, %d above it, %d also mutual "
               "nearest: precision %.3f recall %.3f\n", nc, rule.median, rule.sigma, thr, above, found, e.precision,
               e.recall);
        /* random vectors have a Gaussian-like bulk: the default rule (2 sigma) lets a rare mutual pair
         * of strangers through; 4 sigma separates the planted twins exactly */
        FX_EXPECT(e.precision >= 0.95 && e.recall == 1.0, "planted duplicates, default rule: P %.3f R %.3f",
                  e.precision, e.recall);
        /* the whole rule in one call: the same pairs in the same order */
        comine_dedup_pair *one;
        int n_one, same = 0;
        comine_dedup_rule rule_one;
        FX_EXPECT(comine_dedup_find(&one, &n_one, xn, n, d, k, COMINE_DEDUP_K_SIGMA, NAN, true, 128, &rule_one) ==
                      COMINE_OK, "dedup_find: %s", comine_last_error());
        for (int p = 0; p < n_one && p < found; p++)
            same += one[p].a == dups[p].a && one[p].b == dups[p].b && one[p].score == dups[p].score;
        FX_EXPECT(n_one == found && same == found && rule_one.threshold == thr,
                  "dedup_find: %d pairs (%d the same) against %d step by step", n_one, same, found);
        free(one);
        FX_EXPECT(comine_dedup_find(&one, &n_one, xn, n, d, k, COMINE_DEDUP_K_SIGMA, 2.0, true, 128, NULL) == COMINE_OK &&
                      n_one == 0, "dedup_find with --threshold 2 (above every cosine): %d pairs", n_one);
        free(one);
        printf("%s dedup_find: the step-by-step rule's %d pairs, in order; a fixed threshold overrides it\n",
               n_one == 0 && same == found ? "ok  " : "FAIL", found);
        thr = comine_dedup_threshold(sim, n, k, 4.0, &rule);
        found = comine_dedup_select(is_dup, cand, nc, nbr, k, thr, true);
        for (int p = 0, m = 0; p < nc; p++)
            if (is_dup[p]) dups[m++] = cand[p];
        comine_dedup_evaluate(&e, dups, found, truth, dup);
        printf("planted, 4 sigma: threshold %.3f, %d found: precision %.3f recall %.3f\n", thr, found, e.precision,
               e.recall);
        FX_EXPECT(e.precision == 1.0 && e.recall == 1.0 && e.tp == dup, "planted duplicates, 4 sigma: P %.3f R %.3f",
                  e.precision, e.recall);
        /* merge: the 40 pairs become 40 groups, 360 labels */
        int *map = malloc(sizeof(int) * (size_t)n);
        int groups = comine_dedup_merge_map(map, n, dups, found);
        FX_EXPECT(groups == n - dup && map[0] == 0 && map[n - 1] == 0, "merge: %d groups (want %d), map[399] %d",
                  groups, n - dup, map[n - 1]);
        free(map);
        free(dups);
        free(is_dup);
        free(cand);
        free(x);
        free(xn);
        free(nbr);
        free(sim);
        free(truth);
    }

    /* ---- the threshold rule on known numbers ---- */
    {
        float sim[5 * 2] = {0.1f, 0, 0.2f, 0, 0.3f, 0, 0.4f, 0, 0.9f, 0};
        comine_dedup_rule r;
        double t = comine_dedup_threshold(sim, 5, 2, 4.0, &r);
        /* median 0.3; |s - 0.3| = .2 .1 0 .1 .6 -> MAD 0.1; sigma 0.14826; 0.3 + 4 x 0.14826 */
        FX_EXPECT(fabs(r.median - 0.3) < 1e-6 && fabs(r.sigma - 0.14826) < 1e-6 && fabs(t - 0.89304) < 1e-5,
                  "threshold: median %g sigma %g threshold %g", r.median, r.sigma, t);
        sim[2] = -INFINITY; /* a label without neighbours is ignored */
        comine_dedup_threshold(sim, 5, 2, 4.0, &r);
        FX_EXPECT(r.n == 4 && fabs(r.median - 0.35) < 1e-6, "threshold with a pad: n %d median %g", r.n, r.median);
        printf("threshold rule: median 0.3, sigma 0.14826, threshold %.5f\n", t);
    }

    /* ---- merge map and evaluation ---- */
    {
        comine_dedup_pair p[3] = {{5, 7, 0.9f}, {3, 5, 0.8f}, {1, 2, 0.7f}};
        int map[8];
        int g = comine_dedup_merge_map(map, 8, p, 3);
        int want[8] = {0, 1, 1, 2, 3, 2, 4, 2};
        FX_EXPECT(g == 5 && !memcmp(map, want, sizeof want), "merge map: %d groups, %d %d %d %d %d %d %d %d", g,
                  map[0], map[1], map[2], map[3], map[4], map[5], map[6], map[7]);
        int truth[6] = {7, 5, 1, 2, 0, 4};
        comine_dedup_eval e;
        comine_dedup_evaluate(&e, p, 3, truth, 3);
        FX_EXPECT(e.tp == 2 && fabs(e.precision - 2.0 / 3) < 1e-12 && fabs(e.recall - 2.0 / 3) < 1e-12,
                  "evaluate: tp %d P %g R %g", e.tp, e.precision, e.recall);
        comine_dedup_evaluate(&e, p, 0, truth, 3);
        FX_EXPECT(e.tp == 0 && e.precision == 0 && e.recall == 0, "evaluate with nothing found");
        printf("merge map and evaluation: ok\n");
    }

    /* ---- put_block: two blocks of length sqrt(1/2) make the inner product the mean cosine ---- */
    {
        float a[2 * 3] = {3, 4, 0, 0, 0, 0}, b[2 * 2] = {1, 1, 0, 2};
        float x[2 * 5];
        comine_dedup_put_block(x, 2, 5, 0, a, 3, (float)sqrt(0.5));
        comine_dedup_put_block(x, 2, 5, 3, b, 2, (float)sqrt(0.5));
        double n0 = 0;
        for (int c = 0; c < 5; c++) n0 += x[c] * x[c];
        FX_EXPECT(fabs(n0 - 1) < 1e-6 && x[5] == 0 && x[6] == 0 && fabs(x[9] - sqrt(0.5)) < 1e-6,
                  "put_block: |row 0| %g, zero row kept, row 1 = (0 0 0 0 %g)", sqrt(n0), x[9]);
    }

    /* ---- centring: rows made unit, the mean row subtracted, zero rows kept ---- */
    {
        float r[3 * 2] = {2, 0, 0, 3, 0, 0};
        comine_dedup_center_rows(r, 3, 2);
        /* unit rows (1,0) (0,1), mean of the two non-zero rows (0.5, 0.5) */
        FX_EXPECT(fabs(r[0] - 0.5f) < 1e-6 && fabs(r[1] + 0.5f) < 1e-6 && fabs(r[2] + 0.5f) < 1e-6 &&
                  fabs(r[3] - 0.5f) < 1e-6 && r[4] == 0 && r[5] == 0, "center_rows: %g %g / %g %g / %g %g", r[0],
                  r[1], r[2], r[3], r[4], r[5]);
    }
    return fx_finish("test_eval_dedup");
}

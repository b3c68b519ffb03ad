/* test_eval_dedup_ratio.c: the size-corrected duplicate score (comine/dedup.h, "ratio"): the
 * trim's choice (the floor(frac c) lowest cosines of each label of c >= 3 kept samples, ties to
 * the lower index, samples outside the keep mask never dropped); the ratio vectors against a
 * float64 brute force over every pair of samples (the mean cross-label cosine over the square
 * root of the two shrunk within-label cosines, the median of the labels of >= 6 samples), for
 * several shrinks, a zero row for an empty label, and the shrink's effect on a small label. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/core.h"
#include "comine/dedup.h"
#include "fixture.h"

#define D 16
#define K 9

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double dot(const float *a, const float *b, int d)
{
    double s = 0;
    for (int c = 0; c < d; c++) s += (double)a[c] * b[c];
    return s;
}

/* The score of every label pair, by brute force in float64 from the samples themselves. */
static void brute_ratio(double *r, double *ws, const float *e, const int *label, int n, double shrink)
{
    double within[K] = {0}, cross[K * K] = {0};
    int count[K] = {0};
    for (int i = 0; i < n; i++) count[label[i]]++;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double c = dot(e + (size_t)i * D, e + (size_t)j * D, D);
            cross[label[i] * K + label[j]] += c;
            if (i != j && label[i] == label[j]) within[label[i]] += c;
        }
    double big[K];
    int m = 0;
    for (int c = 0; c < K; c++) {
        within[c] = count[c] >= 2 ? within[c] / (count[c] * (count[c] - 1.0)) : 0;
        if (count[c] >= 6) big[m++] = within[c];
    }
    qsort(big, (size_t)m, sizeof(double), cmp_double);
    double med = m % 2 ? big[m / 2] : 0.5 * (big[m / 2 - 1] + big[m / 2]);
    for (int c = 0; c < K; c++) {
        double pairs = count[c] * (count[c] - 1.0) / 2;
        ws[c] = (pairs * within[c] + shrink * med) / (pairs + shrink);
        if (ws[c] < 1e-3) ws[c] = 1e-3;
    }
    for (int a = 0; a < K; a++)
        for (int b = 0; b < K; b++)
            r[a * K + b] = count[a] && count[b] ? cross[a * K + b] / ((double)count[a] * count[b]) / sqrt(ws[a] * ws[b])
                                                : 0;
}

static void check_ratio(double shrink)
{
    /* labels of 0, 1, 2, 3, 5, 6, 7, 8 and 12 samples: each a person (a random direction) plus noise */
    static const int sizes[K] = {0, 1, 2, 3, 5, 6, 7, 8, 12};
    int n = 0;
    for (int c = 0; c < K; c++) n += sizes[c];
    float *e = malloc(sizeof(float) * (size_t)n * D), base[K][D];
    int *label = malloc(sizeof(int) * (size_t)n);
    comine_rng rng;
    comine_rng_seed(&rng, 11, 3);
    for (int c = 0; c < K; c++)
        for (int k = 0; k < D; k++) base[c][k] = comine_rng_normal(&rng);
    for (int c = 0, i = 0; c < K; c++)
        for (int t = 0; t < sizes[c]; t++, i++) {
            double ss = 0;
            for (int k = 0; k < D; k++) {
                e[(size_t)i * D + k] = base[c][k] + (0.6f + 0.1f * c) * comine_rng_normal(&rng);
                ss += (double)e[(size_t)i * D + k] * e[(size_t)i * D + k];
            }
            for (int k = 0; k < D; k++) e[(size_t)i * D + k] /= (float)sqrt(ss);
            label[i] = c;
        }
    double sums[K * D] = {0}, ws[K], ref_ws[K], ref[K * K];
    int count[K] = {0};
    for (int i = 0; i < n; i++) {
        count[label[i]]++;
        for (int k = 0; k < D; k++) sums[label[i] * D + k] += e[(size_t)i * D + k];
    }
    float vec[K * D];
    float len = 0.7f;
    comine_dedup_ratio_vectors(vec, sums, count, K, D, shrink, len, ws);
    brute_ratio(ref, ref_ws, e, label, n, shrink);
    /* float32 rows: the products' rounding is ~1e-7 relative.  The float32 unit samples have
     * squared lengths 1 +- D x 2^-24, which |sum|^2 - n takes for 1: within-label cosines off
     * by up to ~1e-6 / (n - 1) */
    double worst = 0, worst_ws = 0;
    for (int a = 0; a < K; a++) {
        worst_ws = fmax(worst_ws, fabs(ws[a] - ref_ws[a]));
        for (int b = 0; b < K; b++) {
            double got = dot(vec + a * D, vec + b * D, D) / ((double)len * len);
            worst = fmax(worst, fabs(got - ref[a * K + b]) / (1e-6 + fabs(ref[a * K + b])));
        }
    }
    int zero = 1;
    for (int k = 0; k < D; k++) zero &= vec[k] == 0;
    FX_EXPECT(worst < 2e-5, "ratio vectors, shrink %g: worst relative error %.3g against float64", shrink, worst);
    FX_EXPECT(worst_ws < 1e-6, "shrunk within-label cosines, shrink %g: worst error %.3g", shrink, worst_ws);
    FX_EXPECT(zero, "a label without samples is a zero row");
    printf("%s ratio vectors, shrink %-3g: worst relative error %.2g, within %.2g\n",
           worst < 2e-5 && worst_ws < 1e-6 && zero ? "ok  " : "FAIL", shrink, worst, worst_ws);
    free(label);
    free(e);
}

int main(void)
{
    /* ---- the trim ---- */
    {
        int mark = fx_fail_count;
        /* label 0: 5 samples (drop 1; cosines 0.1 tie: the lower index), label 1: 2 (none),
         * label 2: 9 (drop 1: sample 10); with sample 10 outside the keep mask, 8 kept, drop 1:
         * sample 8 */
        const int label[16] = {0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2};
        const float cosine[16] = {0.5f, 0.1f, 0.9f, 0.1f, 0.7f, -0.5f, 0.2f,
                                  0.8f, 0.3f, 0.6f, 0.2f, 0.9f, 0.4f, 0.7f, 0.5f, 0.35f};
        uint8_t drop[16], keep[16];
        int n = comine_dedup_trim_select(drop, cosine, label, NULL, 16, 3, 0.2);
        int others = 0;
        for (int i = 0; i < 16; i++) others += drop[i] && i != 1 && i != 10;
        FX_EXPECT(n == 2 && drop[1] && drop[10] && !others, "trim 0.2: %d dropped (want 2: samples 1 and 10)", n);
        memset(keep, 1, sizeof keep);
        keep[10] = 0; /* label 2's lowest is not a candidate: its next lowest goes (sample 8) */
        n = comine_dedup_trim_select(drop, cosine, label, keep, 16, 3, 0.2);
        FX_EXPECT(n == 2 && drop[1] && drop[8] && !drop[10] && !drop[15], "trim with a keep mask: %d dropped", n);
        n = comine_dedup_trim_select(drop, cosine, label, NULL, 16, 3, 0.0);
        int any = 0;
        for (int i = 0; i < 16; i++) any |= drop[i];
        FX_EXPECT(n == 0 && !any, "trim 0: nothing dropped");
        n = comine_dedup_trim_select(drop, cosine, label, NULL, 16, 3, 0.5);
        FX_EXPECT(n == 2 + 0 + 4 && drop[1] && drop[3] && !drop[0] && drop[10] && drop[8] && drop[15] && drop[12] &&
                      !drop[14],
                  "trim 0.5: %d dropped (want 6: 1 and 3, none of label 1, 10 8 15 12)", n);
        FX_SUMMARY(mark, "trim: the lowest cosines of each label of >= 3 samples, ties to the lower index\n");
    }

    /* ---- the ratio vectors against float64 ---- */
    check_ratio(0.0);
    check_ratio(1.0);
    check_ratio(COMINE_DEDUP_SHRINK);
    check_ratio(50.0);
    {
        /* the shrink moves a small label's within-label cosine towards the median, not a large one's */
        double sums[2 * 2] = {1, 0, 0, 0}, ws0[2], ws3[2];
        int count[2] = {2, 0};
        float v[4];
        /* two unit samples at cosine -1 + 2 x 0: |sum|^2 = 1 -> within (1 - 2) / 2 = -0.5 */
        comine_dedup_ratio_vectors(v, sums, count, 2, 2, 0.0, 1.0f, ws0);
        comine_dedup_ratio_vectors(v, sums, count, 2, 2, 3.0, 1.0f, ws3);
        /* no label of >= 6: the median of those of >= 2 (-0.5 itself) -> floor 1e-3 either way */
        FX_EXPECT(ws0[0] == 1e-3 && ws3[0] == 1e-3, "a negative within-label cosine floors at 1e-3 (%g %g)", ws0[0],
                  ws3[0]);
    }
    return fx_finish("test_eval_dedup_ratio");
}

/* bench_dedup.c: the duplicate-identity search (comine_dedup_topk) at scale: N random unit
 * vectors of size D (default 10^5 x 512, the label vectors of a large data set), the top-k
 * other labels of every label; prints the search time, the GFLOP/s of its products (each
 * tile once: N^2 D flops for the upper triangle of tiles, i.e. half of the full N x N product),
 * the peak resident memory against the vectors' own size and a N x N matrix's, and checks the
 * lists of a sample of rows against a brute-force search.  With P planted duplicate pairs
 * (a row plus Gaussian noise of half its norm: cosine about 0.89) it also reports the threshold rule's
 * precision and recall on them.
 * Usage: bench_dedup [N (100000)] [D (512)] [K (5)] [BLOCK (2048)] [THREADS (0 = default)] [P (0)]
 *                    [K_SIGMA (the default rule's)] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/backend.h"
#include "comine/core.h"
#include "comine/dedup.h"

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    int d = argc > 2 ? atoi(argv[2]) : 512;
    int k = argc > 3 ? atoi(argv[3]) : 5;
    int block = argc > 4 ? atoi(argv[4]) : 2048;
    int threads = argc > 5 ? atoi(argv[5]) : 0;
    int planted = argc > 6 ? atoi(argv[6]) : 0;
    double k_sigma = argc > 7 ? atof(argv[7]) : COMINE_DEDUP_K_SIGMA;
    if (n < 2 || d < 1 || k < 1 || block < 1 || planted < 0 || 2 * planted > n) {
        fprintf(stderr, "usage: bench_dedup [N] [D] [K] [BLOCK] [THREADS] [P] [K_SIGMA]\n");
        return 2;
    }
    comine_backend_set_threads(comine_backend_cpu(), threads);
    size_t rss0 = comine_peak_rss_bytes();
    float *x = comine_malloc(sizeof(float) * (size_t)n * d);
    comine_rng rng;
    comine_rng_seed(&rng, 1, COMINE_STREAM_EVAL);
    for (size_t i = 0; i < (size_t)n * d; i++) x[i] = comine_rng_normal(&rng);
    /* planted pairs: row n - 1 - j is row j plus noise */
    for (int j = 0; j < planted; j++)
        for (int c = 0; c < d; c++)
            x[(size_t)(n - 1 - j) * d + c] = x[(size_t)j * d + c] + 0.5f * comine_rng_normal(&rng);
    comine_dedup_put_block(x, n, d, 0, x, d, 1.0f);
    int *nbr = comine_malloc(sizeof(int) * (size_t)n * k);
    float *sim = comine_malloc(sizeof(float) * (size_t)n * k);
    size_t rss1 = comine_peak_rss_bytes();
    double t0 = comine_now();
    if (comine_dedup_topk(nbr, sim, x, n, d, k, block) != COMINE_OK) {
        fprintf(stderr, "bench_dedup: %s\n", comine_last_error());
        return 1;
    }
    double dt = comine_now() - t0;
    size_t rss2 = comine_peak_rss_bytes();
    double flops = (double)n * n * d; /* half of 2 n^2 d: each tile pair once (plus the diagonal tiles) */
    printf("dedup search: %d labels x %d floats, top-%d, tiles of %d, %d threads: %.2f s, %.1f GFLOP/s\n", n, d, k,
           block, comine_num_threads(), dt, flops / dt * 1e-9);
    printf("peak RSS: %.1f MiB before the vectors, %.1f MiB with vectors + lists (%.1f MiB of vectors), %.1f MiB "
           "after the search; a %d x %d float matrix would be %.1f MiB\n", rss0 / 1048576.0, rss1 / 1048576.0,
           (double)n * d * 4 / 1048576.0, rss2 / 1048576.0, n, n, (double)n * n * 4 / 1048576.0);
    /* brute force on a sample of rows */
    int rows = n < 64 ? n : 64, wrong = 0;
    double max_err = 0;
    double *best = comine_malloc(sizeof(double) * (size_t)k);
    int *best_j = comine_malloc(sizeof(int) * (size_t)k);
    for (int r = 0; r < rows; r++) {
        int i = (int)((long)r * (n - 1) / (rows > 1 ? rows - 1 : 1));
        for (int t = 0; t < k; t++) {
            best[t] = -INFINITY;
            best_j[t] = -1;
        }
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            double v = 0;
            for (int c = 0; c < d; c++) v += (double)x[(size_t)i * d + c] * x[(size_t)j * d + c];
            if (!(v > best[k - 1])) continue;
            int p = k - 1;
            while (p > 0 && best[p - 1] < v) {
                best[p] = best[p - 1];
                best_j[p] = best_j[p - 1];
                p--;
            }
            best[p] = v;
            best_j[p] = j;
        }
        for (int t = 0; t < k; t++) {
            double e = fabs(best[t] - sim[(size_t)i * k + t]);
            if (e > max_err) max_err = e;
            if (best_j[t] != nbr[(size_t)i * k + t] && e > 1e-5) wrong++;
        }
    }
    printf("check: %d rows against brute force: max |score error| %.2e, %d wrong entries\n", rows, max_err, wrong);
    if (planted) {
        comine_dedup_pair *cand;
        int nc = comine_dedup_candidates(&cand, nbr, sim, n, k);
        comine_dedup_rule rule;
        double thr = comine_dedup_threshold(sim, n, k, k_sigma, &rule);
        uint8_t *is_dup = comine_malloc((size_t)(nc ? nc : 1));
        int found = comine_dedup_select(is_dup, cand, nc, nbr, k, thr, true);
        comine_dedup_pair *dups = comine_malloc(sizeof *dups * (size_t)(found ? found : 1));
        for (int p = 0, m = 0; p < nc; p++)
            if (is_dup[p]) dups[m++] = cand[p];
        int *truth = comine_malloc(sizeof(int) * 2 * (size_t)planted);
        for (int j = 0; j < planted; j++) {
            truth[2 * j] = j;
            truth[2 * j + 1] = n - 1 - j;
        }
        comine_dedup_eval e;
        comine_dedup_evaluate(&e, dups, found, truth, planted);
        printf("planted %d pairs, %g sigma: nearest median %.4f sigma %.4f threshold %.4f; %d found (above it, "
               "mutual nearest), precision %.4f recall %.4f\n", planted, k_sigma, rule.median, rule.sigma, thr, found, e.precision, e.recall);
        free(truth);
        free(dups);
        free(is_dup);
        free(cand);
    }
    free(best);
    free(best_j);
    free(x);
    free(nbr);
    free(sim);
    return wrong ? 1 : 0;
}

/* bench_eval.c: the eval forward (what `comine eval`, `embed` and `clean` run) with the batch
 * split over the threads (comine_model_set_eval_split) against without it, alternated in one
 * process on the same weights (a model per setting, so that each keeps its own kernels) and
 * images: images/s of every round for each setting, their medians, and the largest
 * difference between each setting's embeddings and the unsplit ones (relative to the
 * largest element).
 * Usage: bench_eval [NET (mobilefacenet)] [BATCH (32)] [THREADS (0 = default)] [ROUNDS (5)]
 *                   [BATCHES per round (8)] [SPLIT images, comma-separated, or auto (auto)]
 *                   [INPUT (112)] [WIDTH (1)] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/backend.h"
#include "comine/core.h"
#include "comine/model.h"

enum { MAX_SETTINGS = 8 };

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *net = argc > 1 ? argv[1] : "mobilefacenet";
    int batch = argc > 2 ? atoi(argv[2]) : 32;
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    int rounds = argc > 4 ? atoi(argv[4]) : 5;
    int batches = argc > 5 ? atoi(argv[5]) : 8;
    const char *splits = argc > 6 ? argv[6] : "auto";
    int input = argc > 7 ? atoi(argv[7]) : 112;
    double width = argc > 8 ? atof(argv[8]) : 1.0;
    int setting[MAX_SETTINGS + 1] = {0}; /* setting 0: no split */
    int n_set = 1;
    for (const char *p = splits; *p && n_set <= MAX_SETTINGS; n_set++) {
        setting[n_set] = strncmp(p, "auto", 4) ? atoi(p) : COMINE_EVAL_SPLIT_AUTO;
        p = strchr(p, ',');
        if (!p) {
            n_set++;
            break;
        }
        p++;
    }
    comine_arch arch;
    if (batch < 1 || rounds < 1 || rounds > 100 || batches < 1 || comine_arch_default(&arch, net) != COMINE_OK) {
        fprintf(stderr, "usage: bench_eval [NET] [BATCH] [THREADS] [ROUNDS] [BATCHES] [SPLIT,...] [INPUT] [WIDTH]\n");
        return 2;
    }
    arch.input = input;
    arch.width = (float)width;
    for (int s = 1; s < n_set; s++)
        if (setting[s] < 1 && setting[s] != COMINE_EVAL_SPLIT_AUTO) {
            fprintf(stderr, "bench_eval: split sizes must be >= 1\n");
            return 2;
        }
    const comine_backend *be = comine_backend_cpu();
    comine_backend_set_threads(be, threads);
    comine_model *m[MAX_SETTINGS + 1];
    for (int k = 0; k < n_set; k++) {
        if (comine_model_create(&m[k], &arch, be, batch) != COMINE_OK) {
            fprintf(stderr, "bench_eval: %s\n", comine_last_error());
            return 1;
        }
        if (k == 0) comine_model_init(m[0], 1);
        else comine_model_copy_state(m[k], m[0]);
        comine_model_set_eval_split(m[k], setting[k]);
    }
    size_t px = (size_t)batch * input * input * 3;
    float *images = comine_malloc(px * sizeof(float));
    comine_rng rng;
    comine_rng_seed(&rng, 2, COMINE_STREAM_EVAL);
    for (size_t i = 0; i < px; i++) images[i] = comine_rng_normal(&rng);
    size_t n_emb = (size_t)batch * arch.emb_dim;
    float *emb[MAX_SETTINGS + 1];
    double rate[MAX_SETTINGS + 1][100];
    for (int s = 0; s < n_set; s++) {
        emb[s] = comine_malloc(n_emb * sizeof(float));
        comine_model_forward(m[s], emb[s], images, batch, false, NULL); /* plans, folding, warm-up */
    }
    printf("%s @%d width %g, batch %d, %d threads, %d rounds of %d batches per setting, alternated\n", net, input,
           width, batch, comine_num_threads(), rounds, batches);
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < n_set; k++) {
            int s = (r % 2) ? n_set - 1 - k : k; /* who goes first alternates */
            double t0 = comine_now();
            for (int b = 0; b < batches; b++) comine_model_forward(m[s], emb[s], images, batch, false, NULL);
            rate[s][r] = (double)batch * batches / (comine_now() - t0);
        }
    float top = 0.0f;
    for (size_t i = 0; i < n_emb; i++) top = fmaxf(top, fabsf(emb[0][i]));
    double median[MAX_SETTINGS + 1];
    for (int s = 0; s < n_set; s++) {
        double sorted[100];
        memcpy(sorted, rate[s], sizeof(double) * (size_t)rounds);
        qsort(sorted, (size_t)rounds, sizeof(double), cmp_double);
        median[s] = rounds % 2 ? sorted[rounds / 2] : 0.5 * (sorted[rounds / 2 - 1] + sorted[rounds / 2]);
    }
    for (int s = 0; s < n_set; s++) {
        if (s == 0) printf("no split      ");
        else if (setting[s] == COMINE_EVAL_SPLIT_AUTO) printf("split auto %-2d ", comine_model_eval_split_images(m[s]));
        else printf("split by %-4d ", setting[s]);
        for (int r = 0; r < rounds; r++) printf(" %7.1f", rate[s][r]);
        double diff = 0.0;
        for (size_t i = 0; i < n_emb; i++) diff = fmax(diff, fabs((double)emb[s][i] - emb[0][i]));
        printf("  median %.1f images/s (%.3fx), embeddings differ by %.2g of the largest\n", median[s],
               median[s] / median[0], top > 0 ? diff / top : diff);
    }
    for (int s = 0; s < n_set; s++) {
        free(emb[s]);
        comine_model_free(m[s]);
    }
    free(images);
    return 0;
}

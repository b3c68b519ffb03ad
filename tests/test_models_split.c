/* test_models_split.c: the eval forward split over the threads (comine_model_set_eval_split)
 * against the unsplit one, for iresnet18 (width 0.25, input 64) and MobileFaceNet with BN
 * statistics from training forwards, on 2 and 3 threads, for batches that do and do not
 * divide among the threads and into the split's groups of images (1, 3, 8, more than the
 * batch, and the automatic group, which must be 8 images for iresnet18 x0.25 @64 and 4 for
 * MobileFaceNet @112: the largest activation per image is 0.26 and 1.6 MB).
 * - Each image's embedding against the unsplit forward's: the split runs other kernels for
 *   other batch sizes, so the two agree to rounding, as the folded and plain forwards of
 *   test_models_fold: cosine >= 1 - 1e-6, max |diff| of the normalised embeddings <= 1e-4.
 * - The split forward repeated 12 times gives the same bits every time: the threads run
 *   different ops at once, and any memory two of them shared would show here.
 * - The thread count after a split forward is the one before.
 *   (Without OpenMP there is one thread and no split: the checks then hold trivially.)
 * - A training step after split eval forwards gives the same gradients, bit for bit, as one
 *   after none: the split leaves nothing behind that training reads. */
#include <math.h>
#include <string.h>

#include "comine/backend.h"
#include "comine/model.h"
#include "fixture.h"

static double worst_cos_gap, worst_diff;

/* a against the reference b (N, D): true when they agree to rounding. */
static bool close_to(const float *a, const float *b, int N, int D, const char *what)
{
    double gap = 0, diff = 0;
    bool finite = true;
    for (int n = 0; n < N; n++) {
        const float *x = a + (size_t)n * D, *y = b + (size_t)n * D;
        double xx = 0, yy = 0, xy = 0;
        for (int k = 0; k < D; k++) {
            finite = finite && isfinite(x[k]) && isfinite(y[k]);
            xx += (double)x[k] * x[k];
            yy += (double)y[k] * y[k];
            xy += (double)x[k] * y[k];
        }
        if (!(xx > 0 && yy > 0)) return false;
        gap = fmax(gap, 1.0 - xy / sqrt(xx * yy));
        for (int k = 0; k < D; k++) diff = fmax(diff, fabs(x[k] / sqrt(xx) - y[k] / sqrt(yy)));
    }
    worst_cos_gap = fmax(worst_cos_gap, gap);
    worst_diff = fmax(worst_diff, diff);
    bool ok = finite && gap <= 1e-6 && diff <= 1e-4;
    if (!ok) printf("FAIL %s: 1 - cos %.3g, max|diff| normalised %.3g\n", what, gap, diff);
    return ok;
}

static void check_arch(const char *name, float width, int input, int max_batch, int auto_group)
{
    const comine_backend *be = comine_backend_cpu();
    comine_arch arch;
    COMINE_ASSERT(comine_arch_default(&arch, name) == COMINE_OK);
    arch.width = width;
    arch.input = input;
    comine_model *m, *twin;
    COMINE_ASSERT(comine_model_create(&m, &arch, be, max_batch) == COMINE_OK);
    COMINE_ASSERT(comine_model_create(&twin, &arch, be, max_batch) == COMINE_OK);
    comine_model_init(m, 5);
    FX_EXPECT(comine_model_eval_split_images(m) == auto_group, "%s: the automatic group is %d images, expected %d",
              name, comine_model_eval_split_images(m), auto_group);
    comine_model_set_eval_split(m, 0);
    FX_EXPECT(comine_model_eval_split_images(m) == 0, "%s: no split set, but groups of %d", name,
              comine_model_eval_split_images(m));
    comine_rng rng;
    comine_rng_seed(&rng, 12, COMINE_STREAM_SYNTH);
    size_t per = (size_t)input * input * 3;
    int D = arch.emb_dim;
    size_t n_emb = (size_t)max_batch * D;
    float *images = malloc(max_batch * per * sizeof(float)), *R = malloc(n_emb * sizeof(float));
    float *ref = malloc(n_emb * sizeof(float)), *first = malloc(n_emb * sizeof(float));
    float *emb = malloc(n_emb * sizeof(float));
    for (size_t k = 0; k < max_batch * per; k++) images[k] = 2 * comine_rng_uniform(&rng) - 1;
    for (size_t k = 0; k < n_emb; k++) R[k] = 2 * comine_rng_uniform(&rng) - 1;
    for (int s = 0; s < 6; s++) comine_model_forward(m, emb, images, max_batch, true, NULL);
    comine_model_copy_state(twin, m);

    const int threads[] = {2, 3};
    const int groups[] = {1, 3, 8, 64, COMINE_EVAL_SPLIT_AUTO};
    const int batches[] = {max_batch, max_batch - 2, 5, 3, 2, 1}; /* 2 and 1: no split on 3 threads, or any */
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        comine_backend_set_threads(be, threads[t]);
        int before = comine_num_threads(); /* 1 in a build without OpenMP: no split */
        for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
            int N = batches[b];
            comine_model_set_eval_split(m, 0);
            comine_model_forward(m, ref, images, N, false, NULL);
            for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
                char what[160];
                snprintf(what, sizeof what, "%s, %d threads, batch %d, groups of %d", name, threads[t], N,
                         groups[g] > 0 ? groups[g] : auto_group);
                comine_model_set_eval_split(m, groups[g]);
                comine_model_forward(m, first, images, N, false, NULL);
                FX_EXPECT(close_to(first, ref, N, D, what), "%s: split against unsplit", what);
                FX_EXPECT(comine_num_threads() == before, "%s: %d threads after the split forward, %d before", what,
                          comine_num_threads(), before);
                int differ = 0;
                for (int r = 0; r < 12; r++) {
                    comine_model_forward(m, emb, images, N, false, NULL);
                    differ += memcmp(emb, first, (size_t)N * D * sizeof(float)) != 0;
                }
                FX_EXPECT(differ == 0, "%s: %d of 12 repeats differ from the first", what, differ);
            }
        }
    }
    comine_model_set_eval_split(m, COMINE_EVAL_SPLIT_DEFAULT);

    /* a training step after the split eval forwards against one after none */
    comine_backend_set_threads(be, 2);
    comine_model *both[2] = {m, twin};
    float *grads[2];
    for (int k = 0; k < 2; k++) {
        comine_model_zero_grad(both[k]);
        comine_model_forward(both[k], emb, images, max_batch, true, NULL);
        comine_model_backward(both[k], R, max_batch);
        grads[k] = comine_model_grads(both[k]);
    }
    FX_EXPECT(memcmp(grads[0], grads[1], comine_model_num_params(m) * sizeof(float)) == 0,
              "%s: the gradients of a training step after split eval forwards differ", name);
    printf("ok   %s\n", name);
    free(images);
    free(R);
    free(ref);
    free(first);
    free(emb);
    comine_model_free(m);
    comine_model_free(twin);
}

int main(void)
{
    check_arch("iresnet18", 0.25f, 64, 13, 8);
    check_arch("mobilefacenet", 1.0f, 112, 11, 4);
    printf("     worst 1 - cos %.3g, worst max|diff| of normalised embeddings %.3g\n", worst_cos_gap, worst_diff);
    return fx_finish("test_models_split");
}

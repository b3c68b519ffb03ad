/* test_models_fold.c: the eval forward with batch norms folded into the convolutions before
 * them against the plain eval forward (comine_model_set_fold_bn false), for iresnet18 (width
 * 0.25, input 64) and MobileFaceNet, with random BN running statistics, gammas and betas.
 * Compared per image on the L2-normalised embeddings: cosine >= 1 - 1e-6 and max |diff| <=
 * 1e-4; the raw embeddings' max |diff| relative to their max |value| is printed too.  Then
 * the folded weights must follow every change (no stale fold): after a training forward
 * (running statistics move), a backward and SGD step (parameters move), a write through
 * comine_model_buffers, and comine_model_copy_state from another model. */
#include <math.h>
#include <string.h>

#include "comine/model.h"
#include "comine/optim.h"
#include "fixture.h"

static double worst_cos_gap, worst_diff;

/* Random BN statistics and affine parameters around those of a few training forwards
 * (what training leaves, not init's 0 / 1; far-off statistics blow the activations up). */
static void perturb_bn(comine_model *m, comine_rng *rng)
{
    float *params = comine_model_params(m), *bufs = comine_model_buffers(m);
    for (int i = 0; i < comine_model_num_buffer_tensors(m); i++) {
        const comine_tensor_info *ti = comine_model_buffer_tensor(m, i);
        size_t len = strlen(ti->name);
        bool is_mean = len > 13 && !strcmp(ti->name + len - 13, ".running_mean");
        bool is_var = len > 12 && !strcmp(ti->name + len - 12, ".running_var");
        if (!is_mean && !is_var) continue;
        for (size_t k = 0; k < ti->size; k++)
            bufs[ti->offset + k] = is_mean ? bufs[ti->offset + k] + 0.1f * (2 * comine_rng_uniform(rng) - 1)
                                           : bufs[ti->offset + k] * (0.8f + 0.45f * comine_rng_uniform(rng));
        if (!is_mean) continue;
        char name[200];
        const char *suffix[2] = {"weight", "bias"};
        for (int s = 0; s < 2; s++) {
            snprintf(name, sizeof name, "%.*s.%s", (int)(len - 13), ti->name, suffix[s]);
            bool is_buf;
            int t = comine_model_find_tensor(m, name, &is_buf);
            COMINE_ASSERT(t >= 0);
            if (is_buf) continue; /* the fixed embedding BN weight stays 1 */
            const comine_tensor_info *pi = comine_model_tensor(m, t);
            for (size_t k = 0; k < pi->size; k++)
                params[pi->offset + k] =
                    s == 0 ? 0.8f + 0.4f * comine_rng_uniform(rng) : 0.1f * (2 * comine_rng_uniform(rng) - 1);
        }
    }
}

/* Folded and plain eval forwards of the same images; true when they agree. */
static bool compare(comine_model *m, const float *images, int N, const char *what)
{
    int D = comine_model_arch(m)->emb_dim;
    float *fold = malloc((size_t)N * D * sizeof(float)), *plain = malloc((size_t)N * D * sizeof(float));
    comine_model_set_fold_bn(m, true);
    comine_model_forward(m, fold, images, N, false, NULL);
    comine_model_set_fold_bn(m, false);
    comine_model_forward(m, plain, images, N, false, NULL);
    comine_model_set_fold_bn(m, true);
    double gap = 0, diff = 0, raw = 0, scale = 0;
    bool finite = true;
    for (size_t k = 0; k < (size_t)N * D; k++) finite = finite && isfinite(fold[k]) && isfinite(plain[k]);
    for (int n = 0; n < N; n++) {
        const float *a = fold + (size_t)n * D, *b = plain + (size_t)n * D;
        double aa = 0, bb = 0, ab = 0;
        for (int k = 0; k < D; k++) {
            aa += (double)a[k] * a[k];
            bb += (double)b[k] * b[k];
            ab += (double)a[k] * b[k];
            raw = fmax(raw, fabs((double)a[k] - b[k]));
            scale = fmax(scale, fabs((double)b[k]));
        }
        gap = fmax(gap, 1.0 - ab / sqrt(aa * bb));
        for (int k = 0; k < D; k++) diff = fmax(diff, fabs(a[k] / sqrt(aa) - b[k] / sqrt(bb)));
    }
    bool ok = finite && scale > 0 && gap <= 1e-6 && diff <= 1e-4;
    printf("%s %-44s 1 - cos %.3g, max|diff| normalised %.3g, raw %.3g (of max %.3g)\n", ok ? "ok  " : "FAIL", what,
           gap, diff, raw, scale);
    worst_cos_gap = fmax(worst_cos_gap, gap);
    worst_diff = fmax(worst_diff, diff);
    free(fold);
    free(plain);
    return ok;
}

static void check_arch(const char *name, float width, int input, int N)
{
    const comine_backend *be = comine_backend_cpu();
    comine_arch arch;
    COMINE_ASSERT(comine_arch_default(&arch, name) == COMINE_OK);
    arch.width = width;
    arch.input = input;
    comine_model *m, *other;
    COMINE_ASSERT(comine_model_create(&m, &arch, be, N) == COMINE_OK);
    COMINE_ASSERT(comine_model_create(&other, &arch, be, N) == COMINE_OK);
    comine_model_init(m, 5);
    comine_model_init(other, 6);
    comine_rng rng;
    comine_rng_seed(&rng, 11, COMINE_STREAM_SYNTH);
    size_t per = (size_t)input * input * 3;
    int D = arch.emb_dim;
    float *images = malloc(N * per * sizeof(float)), *emb = malloc((size_t)N * D * sizeof(float));
    float *R = malloc((size_t)N * D * sizeof(float)), *before = malloc((size_t)N * D * sizeof(float));
    for (size_t k = 0; k < N * per; k++) images[k] = 2 * comine_rng_uniform(&rng) - 1;
    for (size_t k = 0; k < (size_t)N * D; k++) R[k] = 2 * comine_rng_uniform(&rng) - 1;
    for (int s = 0; s < 10; s++) {
        comine_model_forward(m, emb, images, N, true, NULL);
        comine_model_forward(other, emb, images, N, true, NULL);
    }
    perturb_bn(m, &rng);
    perturb_bn(other, &rng);
    char what[120];

    snprintf(what, sizeof what, "%s random BN", name);
    FX_EXPECT(compare(m, images, N, what), "%s", what);
    comine_model_forward(m, before, images, N, false, NULL);

    /* a training step: running statistics and parameters change */
    comine_model_zero_grad(m);
    comine_model_forward(m, emb, images, N, true, NULL);
    comine_model_backward(m, R, N);
    size_t np = comine_model_num_params(m);
    float *momentum = calloc(np, sizeof(float));
    comine_sgd_step(be, comine_model_params(m), momentum, comine_model_grads(m), np, 1e-3f, 0.9f, 5e-4f);
    comine_model_forward(m, emb, images, N, false, NULL);
    FX_EXPECT(memcmp(emb, before, (size_t)N * D * sizeof(float)) != 0, "%s: the step changed nothing", name);
    snprintf(what, sizeof what, "%s after train forward+backward+SGD", name);
    FX_EXPECT(compare(m, images, N, what), "%s", what);

    /* a training forward alone (only the running statistics move) */
    comine_model_forward(m, emb, images, N, true, NULL);
    snprintf(what, sizeof what, "%s after a training forward", name);
    FX_EXPECT(compare(m, images, N, what), "%s", what);

    /* buffers written from outside (as a peer restores its BN statistics) */
    float *bufs = comine_model_buffers(m);
    for (int i = 0; i < comine_model_num_buffer_tensors(m); i++) {
        const comine_tensor_info *ti = comine_model_buffer_tensor(m, i);
        if (strstr(ti->name, ".running_var"))
            for (size_t k = 0; k < ti->size; k++) bufs[ti->offset + k] *= 1.5f;
    }
    snprintf(what, sizeof what, "%s after writing the buffers", name);
    FX_EXPECT(compare(m, images, N, what), "%s", what);

    comine_model_copy_state(m, other);
    snprintf(what, sizeof what, "%s after copy_state", name);
    FX_EXPECT(compare(m, images, N, what), "%s", what);

    free(momentum);
    free(images);
    free(emb);
    free(R);
    free(before);
    comine_model_free(m);
    comine_model_free(other);
}

int main(void)
{
    check_arch("iresnet18", 0.25f, 64, 4);
    check_arch("mobilefacenet", 1.0f, 112, 2);
    printf("     worst 1 - cos %.3g, worst max|diff| of normalised embeddings %.3g\n", worst_cos_gap, worst_diff);
    return fx_finish("test_models_fold");
}

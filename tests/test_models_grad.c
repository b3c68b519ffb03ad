/* test_models_grad.c: finite-difference check of comine_model_backward on a tiny iresnet18
 * (width 0.125, input 32, batch 4) WITH dropout 0.3, the path the PyTorch fixtures do not
 * cover (insightface's dropout is 0).  Loss = sum(emb * R) for a fixed R; the dropout RNG is
 * reseeded before every forward so that every evaluation uses the same mask.  Checked: a few
 * entries of several tensors (stem conv, BN, PReLU, shortcut and stage convs, fc weight,
 * embedding BN bias) with central differences, |analytic - numeric| <= 5e-3 + 5e-2 |numeric|; also that the fixed
 * embedding BN weight gets no gradient (it is a buffer) and that an eval forward ignores
 * dropout (two eval forwards give the same bits). */
#include <math.h>
#include <string.h>

#include "comine/model.h"
#include "fixture.h"

#define N 4

static comine_model *m;
static float images[N * 32 * 32 * 3], R[N * 512], emb[N * 512];

static double loss_at(void)
{
    comine_rng rng;
    comine_rng_seed(&rng, 99, COMINE_STREAM_DROPOUT);
    comine_model_forward(m, emb, images, N, true, &rng);
    double s = 0;
    for (int k = 0; k < N * 512; k++) s += (double)emb[k] * R[k];
    return s;
}

int main(void)
{
    const comine_backend *be = comine_backend_cpu();
    comine_arch arch;
    COMINE_ASSERT(comine_arch_default(&arch, "iresnet18") == COMINE_OK);
    arch.width = 0.125f;
    arch.input = 32;
    arch.dropout = 0.3f;
    if (comine_model_create(&m, &arch, be, N) != COMINE_OK) {
        printf("FAIL: create: %s\n", comine_last_error());
        return 1;
    }
    comine_model_init(m, 21);
    comine_rng rng;
    comine_rng_seed(&rng, 4, COMINE_STREAM_SYNTH);
    for (size_t k = 0; k < sizeof images / sizeof images[0]; k++) images[k] = 2 * comine_rng_uniform(&rng) - 1;
    for (size_t k = 0; k < sizeof R / sizeof R[0]; k++) R[k] = 2 * comine_rng_uniform(&rng) - 1;

    comine_model_zero_grad(m);
    loss_at();
    comine_model_backward(m, R, N);
    float *p = comine_model_params(m), *g = comine_model_grads(m);
    size_t np = comine_model_num_params(m);
    float *analytic = malloc(np * sizeof(float));
    memcpy(analytic, g, np * sizeof(float));

    const char *names[] = {"conv1.weight", "bn1.weight", "layer1.0.prelu.weight", "layer2.0.downsample.0.weight",
                           "layer3.1.bn3.weight", "layer4.1.conv2.weight", "bn2.weight", "fc.weight", "features.bias"};
    int checked = 0;
    for (size_t t = 0; t < sizeof names / sizeof names[0]; t++) {
        bool is_buf;
        int i = comine_model_find_tensor(m, names[t], &is_buf);
        FX_EXPECT(i >= 0 && !is_buf, "no parameter %s", names[t]);
        if (i < 0 || is_buf) continue;
        const comine_tensor_info *ti = comine_model_tensor(m, i);
        double worst = 0;
        int ok = 1;
        for (int j = 0; j < 3; j++) {
            size_t k = ti->offset + (size_t)j * 7919 % ti->size;
            float keep = p[k];
            double eps = 1e-3 * fmax(1.0, fabs(keep));
            p[k] = (float)(keep + eps);
            double lp = loss_at();
            p[k] = (float)(keep - eps);
            double lm = loss_at();
            p[k] = keep;
            double num = (lp - lm) / (double)((float)(keep + eps) - (float)(keep - eps));
            double err = fabs(analytic[k] - num);
            if (getenv("VERBOSE")) printf("  %s[%zu] analytic %g numeric %g\n", names[t], k - ti->offset, analytic[k], num);
            if (err > 5e-3 + 5e-2 * fabs(num)) ok = 0;
            worst = fmax(worst, err);
            checked++;
        }
        printf("%s %-32s max|analytic - numeric| = %.3g\n", ok ? "ok  " : "FAIL", names[t], worst);
        FX_EXPECT(ok, "gradient of %s", names[t]);
    }
    bool is_buf;
    FX_EXPECT(comine_model_find_tensor(m, "features.weight", &is_buf) >= 0 && is_buf,
              "features.weight must be a buffer (not trained)");
    float e1[N * 512], e2[N * 512];
    comine_model_forward(m, e1, images, N, false, NULL);
    comine_model_forward(m, e2, images, N, false, NULL);
    FX_EXPECT(!memcmp(e1, e2, sizeof e1), "eval forward must not depend on dropout");
    printf("     %d entries checked by central differences; eval forward deterministic\n", checked);
    free(analytic);
    comine_model_free(m);
    return fx_finish("test_models_grad");
}

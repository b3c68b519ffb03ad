/* test_models_ref.c: the backbones against PyTorch (tests/ref/gen_models.py): iresnet18 at
 * width 0.125, input 32, batch 4, and MobileFaceNet at 112, batch 4.  The weights, images
 * and head weight come from the generator the script uses (gen below: FNV-1a of the name,
 * splitmix64 of the element's index in PyTorch's layout), written into comine's buffer
 * through the tensor table (iresnet's fc.weight columns permuted from (C, H, W) to comine's
 * NHWC (H, W, C) flatten order).  Compared: the eval and training embeddings, the ArcFace
 * loss (s 32, m 0.5, easy margin) per sample and its mean, every parameter gradient, and
 * after 3 SGD steps (lr 0.1, momentum 0.9, wd 5e-4) the loss, every parameter and every
 * running statistic.  Tensors of more than 32 elements are compared through 3 normalised
 * random projections and the L2 norm; tolerances are atol + rtol * |ref| per tensor. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "comine/loss.h"
#include "comine/model.h"
#include "comine/optim.h"
#include "fixture.h"

/* ---- the generator shared with gen_models.py --------------------------------------------- */
static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 0x100000001B3ull;
    }
    return h;
}

static double gen_at(uint64_t h, uint64_t k) /* k: 0-based element index */
{
    uint64_t z = h + (k + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return 2.0 * ((double)(z >> 11) * 0x1.0p-53) - 1.0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

typedef struct ref_case {
    const char *fixture;
    const char *arch;
    float width;
    int input, N;
    double emb_tol, loss_tol, grad_tol, step_tol;
} ref_case;

/* PyTorch flat index of element k of a comine tensor (only iresnet's fc.weight differs). */
static size_t torch_index(const comine_model *m, const comine_tensor_info *ti, size_t k)
{
    if (strcmp(ti->name, "fc.weight")) return k;
    int s = comine_model_arch(m)->input / 16, HW = s * s;
    size_t IN = (size_t)ti->shape[1], C = IN / (size_t)HW;
    size_t o = k / IN, j = k % IN, hw = j / C, c = j % C;
    return o * IN + c * (size_t)HW + hw;
}

static void fill_params(comine_model *m)
{
    float *p = comine_model_params(m);
    for (int i = 0; i < comine_model_num_tensors(m); i++) {
        const comine_tensor_info *ti = comine_model_tensor(m, i);
        uint64_t h = fnv1a64(ti->name);
        double a = 0;
        if (ti->ndim == 4) a = sqrt(6.0 / ((double)ti->shape[1] * ti->shape[2] * ti->shape[3]));
        else if (ti->ndim == 2) a = 1.0 / sqrt((double)ti->shape[1]);
        for (size_t k = 0; k < ti->size; k++) {
            double u = gen_at(h, torch_index(m, ti, k)), v;
            if (ti->ndim >= 2) v = u * a;
            else if (ends_with(ti->name, ".bias")) v = 0.1 * u;
            else v = 0.75 + 0.25 * u;
            p[ti->offset + k] = (float)v;
        }
    }
}

static const fx_tensor *find(const fx_file *f, const char *key, const char *name)
{
    char full[256];
    snprintf(full, sizeof full, "%s.%s", key, name);
    for (int i = 0; i < f->count; i++)
        if (!strcmp(f->t[i].name, full)) return &f->t[i];
    return NULL;
}

/* Compares a comine tensor with the fixture's whole tensor (key.name) or its projections
 * (keyproj.name).  Returns 0 when the fixture has neither. */
static int compare_tensor(const fx_file *f, const char *key, const comine_model *m, const comine_tensor_info *ti,
                          const float *data, double tol)
{
    float *t = malloc(ti->size * sizeof(float));
    for (size_t k = 0; k < ti->size; k++) t[torch_index(m, ti, k)] = data[k];
    char what[256], pkey[64];
    snprintf(what, sizeof what, "%s %s", key, ti->name);
    snprintf(pkey, sizeof pkey, "%sproj", key);
    const fx_tensor *whole = find(f, key, ti->name), *proj = find(f, pkey, ti->name);
    int found = 1;
    if (whole) {
        FX_EXPECT(whole->size == ti->size, "%s: size %zu vs %zu", what, ti->size, whole->size);
        if (whole->size == ti->size) {
            double mx = 0;
            for (size_t k = 0; k < ti->size; k++) mx = fmax(mx, fabs(whole->data[k]));
            fx_check(what, t, whole->data, ti->size, tol * (mx + 1e-3), tol);
        }
    } else if (proj && proj->size == 4) {
        float got[4];
        double norm = 0;
        for (size_t k = 0; k < ti->size; k++) norm += (double)t[k] * t[k];
        got[3] = (float)sqrt(norm);
        for (int j = 0; j < 3; j++) {
            char pn[200];
            snprintf(pn, sizeof pn, "%s#p%d", ti->name, j + 1);
            uint64_t h = fnv1a64(pn);
            double dot = 0, pp = 0;
            for (size_t k = 0; k < ti->size; k++) {
                double pv = gen_at(h, k);
                dot += pv * t[k];
                pp += pv * pv;
            }
            got[j] = (float)(dot / sqrt(pp));
        }
        snprintf(what, sizeof what, "%s %s (proj)", key, ti->name);
        fx_check(what, got, proj->data, 4, tol * (proj->data[3] + 1e-3), tol);
    } else {
        found = 0;
    }
    free(t);
    return found;
}

static void run_case(const ref_case *rc, const comine_backend *be)
{
    printf("== %s (width %g, input %d, batch %d) vs %s\n", rc->arch, (double)rc->width, rc->input, rc->N,
           rc->fixture);
    fx_file f;
    if (fx_load(&f, fx_path(rc->fixture))) {
        fx_fail_count++;
        return;
    }
    comine_arch arch;
    COMINE_ASSERT(comine_arch_default(&arch, rc->arch) == COMINE_OK);
    arch.width = rc->width;
    arch.input = rc->input;
    comine_model *m;
    if (comine_model_create(&m, &arch, be, rc->N + 1) != COMINE_OK) { /* N < max_batch on purpose */
        printf("FAIL: create: %s\n", comine_last_error());
        fx_fail_count++;
        fx_free(&f);
        return;
    }
    fill_params(m);
    const int N = rc->N, S = rc->input, D = arch.emb_dim, K = 10;
    float *images = malloc((size_t)N * S * S * 3 * sizeof(float));
    uint64_t hin = fnv1a64("input");
    for (int n = 0; n < N; n++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                for (int c = 0; c < 3; c++)
                    images[(((size_t)n * S + y) * S + x) * 3 + c] =
                        (float)gen_at(hin, (((size_t)n * 3 + c) * S + y) * S + x);
    float *head = malloc((size_t)K * D * sizeof(float));
    uint64_t hh = fnv1a64("head.weight");
    for (size_t k = 0; k < (size_t)K * D; k++) head[k] = (float)gen_at(hh, k);
    const fx_tensor *lab = fx_get(&f, "labels");
    int labels[64];
    for (int i = 0; i < N; i++) labels[i] = lab ? (int)lab->data[i] : 0;

    float *emb = malloc((size_t)N * D * sizeof(float)), *demb = malloc((size_t)N * D * sizeof(float));
    float *dhead = calloc((size_t)K * D, sizeof(float));
    float loss[64], weights[64];
    for (int i = 0; i < N; i++) weights[i] = 1.0f / N;
    comine_arcface_cfg cfg;
    comine_arcface_cfg_default(&cfg);
    cfg.s = 32.0f;
    cfg.m = 0.5f;
    cfg.fallback = COMINE_FALLBACK_EASY;
    comine_arcface headl;
    comine_arcface_init(&headl, be, D, K, N);

    comine_model_forward(m, emb, images, N, false, NULL);
    const fx_tensor *t;
    if ((t = fx_get(&f, "emb_eval"))) fx_check("embedding (eval)", emb, t->data, t->size, rc->emb_tol, rc->emb_tol);

    size_t np = comine_model_num_params(m);
    float *momentum = comine_backend_alloc(be, np);
    double t0 = comine_now();
    for (int step = 0; step < 4; step++) {
        comine_model_zero_grad(m);
        comine_model_forward(m, emb, images, N, true, NULL);
        comine_arcface_forward(&headl, emb, head, N);
        comine_arcface_loss(&headl, loss, labels, NULL, N, &cfg);
        float mean = 0;
        for (int i = 0; i < N; i++) mean += loss[i] / N;
        if (step == 0 || step == 3) {
            const char *kl = step ? "loss_after3" : "loss", *km = step ? "loss_mean_after3" : "loss_mean";
            if (step == 0 && (t = fx_get(&f, "emb")))
                fx_check("embedding (train)", emb, t->data, t->size, rc->emb_tol, rc->emb_tol);
            double tol = step ? rc->step_tol : rc->loss_tol;
            if ((t = fx_get(&f, kl))) fx_check(kl, loss, t->data, (size_t)N, tol, tol);
            if ((t = fx_get(&f, km))) fx_check(km, &mean, t->data, 1, tol, tol);
        }
        if (step == 3) break;
        memset(demb, 0, (size_t)N * D * sizeof(float));
        comine_arcface_backward(&headl, demb, dhead, emb, head, labels, NULL, weights, N, &cfg);
        comine_model_backward(m, demb, N);
        if (step == 0) {
            int compared = 0;
            for (int i = 0; i < comine_model_num_tensors(m); i++) {
                const comine_tensor_info *ti = comine_model_tensor(m, i);
                int ok = compare_tensor(&f, "grad", m, ti, comine_model_grads(m) + ti->offset, rc->grad_tol);
                FX_EXPECT(ok, "fixture has no gradient of %s", ti->name);
                compared += ok;
            }
            printf("     %d parameter gradients compared\n", compared);
        }
        comine_sgd_step(be, comine_model_params(m), momentum, comine_model_grads(m), np, 0.1f, 0.9f, 5e-4f);
    }
    printf("     4 forwards, 3 backwards and steps: %.2f s\n", comine_now() - t0);
    int compared = 0;
    for (int i = 0; i < comine_model_num_tensors(m); i++) {
        const comine_tensor_info *ti = comine_model_tensor(m, i);
        int ok = compare_tensor(&f, "param3", m, ti, comine_model_params(m) + ti->offset, rc->step_tol);
        FX_EXPECT(ok, "fixture has no parameter %s", ti->name);
        compared += ok;
    }
    for (int i = 0; i < comine_model_num_buffer_tensors(m); i++) {
        const comine_tensor_info *ti = comine_model_buffer_tensor(m, i);
        const float *data = comine_model_buffers(m) + ti->offset;
        int ok = compare_tensor(&f, "buffer3", m, ti, data, rc->step_tol) ||
                 compare_tensor(&f, "param3", m, ti, data, rc->step_tol);
        FX_EXPECT(ok, "fixture has no buffer %s", ti->name);
        compared += ok;
    }
    printf("     %d parameters and buffers compared after 3 steps\n", compared);

    comine_backend_free(be, momentum);
    comine_arcface_free(&headl);
    comine_model_free(m);
    free(images);
    free(head);
    free(emb);
    free(demb);
    free(dhead);
    fx_free(&f);
}

int main(void)
{
    const comine_backend *be = comine_backend_cpu();
    const ref_case cases[] = {
        {"models_iresnet18.bin", "iresnet18", 0.125f, 32, 4, 2e-4, 1e-4, 2e-3, 2e-3},
        {"models_mbf.bin", "mobilefacenet", 1.0f, 112, 4, 2e-4, 1e-4, 2e-3, 2e-3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], be);
    return fx_finish("test_models_ref");
}

/* test_models_ref.c: the backbones against PyTorch (tests/ref/gen_models.py): iresnet18 at
 * width 0.125, input 32, batch 4, and MobileFaceNet at 112, batch 4.  The weights, images
 * and head weight come from the generator the script uses (gen below: FNV-1a of the name,
 * splitmix64 of the element's index in PyTorch's layout), or from the fixture's init.<name>
 * (MobileFaceNet's PReLU slopes, all 1: see gen_models.py), written into comine's buffer
 * through the tensor table (iresnet's fc.weight columns permuted from (C, H, W) to comine's
 * NHWC (H, W, C) flatten order).  Compared, every element of: the eval and training
 * embeddings, the ArcFace loss (s 32, m 0.5, easy margin) per sample and its mean, every
 * parameter gradient, and after 3 SGD steps (lr 0.01, momentum 0.9, wd 5e-4) the loss, every
 * parameter and every running statistic.  The reference is PyTorch in float64 (the exact
 * result, rounded once to float32).
 *
 * Tolerance: an element passes when |got - ref| <= tol * eps * (scale + |ref|), eps = 2^-23,
 * that is atol = tol * eps * scale and rtol = tol * eps.  scale is what fp32 rounding errs in
 * proportion to: for a gradient element, a sum of products over the batch and positions, the
 * sum of the products' magnitudes (gradterms: the sum itself may cancel to nothing, as the
 * gradient of a batch-norm bias followed by a convolution and a batch norm does); for a
 * parameter after the steps, the same for the three gradients as the steps weigh them
 * (stepterms; |ref| covers the parameter's own rounding); for a running statistic, the
 * larger of its magnitude and that of what it averages (bufterms); for embeddings and losses,
 * the tensor's max |ref|.  tol = 16 * depth, depth the number of weight layers on the
 * longest path (iresnet18: conv1, 16 block convolutions, fc = 18; MobileFaceNet: 2 convolution
 * blocks, 15 depthwise blocks of 3, conv_sep, the GDC's convolution and linear = 50): each
 * layer is a reduction, a batch norm and an activation, each a few roundings relative to its
 * inputs' scale, in the forward and again in the backward pass; 16 eps per layer covers them
 * with room (iresnet18: tol 288, measured at most 45 eps * scale; MobileFaceNet: tol 800,
 * measured at most 174).  A 1% error put into each gradient in turn must fail the comparison
 * wherever it is at least twice the tolerance: a tensor whose gradient is below 1-2% of its
 * summed terms (a cancelled one) cannot show it. */
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

/* PyTorch flat index of element k of a comine tensor (only iresnet's fc.weight differs). */
static size_t torch_index(const comine_model *m, const comine_tensor_info *ti, size_t k)
{
    if (strcmp(ti->name, "fc.weight")) return k;
    int s = comine_model_arch(m)->input / 16, HW = s * s;
    size_t IN = (size_t)ti->shape[1], C = IN / (size_t)HW;
    size_t o = k / IN, j = k % IN, hw = j / C, c = j % C;
    return o * IN + c * (size_t)HW + hw;
}

static const fx_tensor *find(const fx_file *f, const char *key, const char *name)
{
    char full[256];
    snprintf(full, sizeof full, "%s.%s", key, name);
    for (int i = 0; i < f->count; i++)
        if (!strcmp(f->t[i].name, full)) return &f->t[i];
    return NULL;
}

/* gen_models.py's values: init.<name> where the fixture gives them, else the rule of gen_param. */
static void fill_params(comine_model *m, const fx_file *f)
{
    float *p = comine_model_params(m);
    for (int i = 0; i < comine_model_num_tensors(m); i++) {
        const comine_tensor_info *ti = comine_model_tensor(m, i);
        const fx_tensor *init = find(f, "init", ti->name);
        if (init && init->size == ti->size) {
            for (size_t k = 0; k < ti->size; k++) p[ti->offset + k] = init->data[torch_index(m, ti, k)];
            continue;
        }
        FX_EXPECT(!init, "init.%s: %zu values for %zu elements", ti->name, init ? init->size : 0, ti->size);
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

#define EPS32 0x1.0p-23

typedef struct ref_case {
    const char *fixture;
    const char *arch;
    float width;
    int input, N;
    int depth; /* weight layers on the longest path: tol = 16 * depth (see the top) */
} ref_case;

typedef struct comparison {
    double max_abs, max_ratio; /* max |got - ref|, max |got - ref| / (atol + rtol * |ref|) */
    bool ok;
} comparison;

static comparison compare_all(const float *got, const float *ref, size_t n, double atol, double rtol)
{
    comparison c = {0, 0, true};
    for (size_t k = 0; k < n; k++) {
        double d = fabs((double)got[k] - (double)ref[k]), lim = atol + rtol * fabs((double)ref[k]);
        double ratio = lim > 0 ? d / lim : (d > 0 ? INFINITY : 0);
        if (!(d <= lim)) c.ok = false; /* catches NaN */
        if (!(d <= c.max_abs)) c.max_abs = d;
        if (!(ratio <= c.max_ratio)) c.max_ratio = ratio;
    }
    return c;
}

static double max_abs(const float *x, size_t n)
{
    double m = 0;
    for (size_t k = 0; k < n; k++) m = fmax(m, fabs((double)x[k]));
    return m;
}

/* The largest error seen, per kind of tensor, in units of eps * scale and of the tolerance. */
typedef struct worst {
    double eps_units, ratio;
} worst;

/* Compares got with every element of ref (tol * eps * (scale + |ref|)) and prints one line:
 * the max error, the same in units of eps * scale, and the max of error / tolerance (the
 * relative excess: above 1 fails). */
static void report(const char *what, const float *got, const fx_tensor *ref, size_t n, double scale, double tol,
                   worst *w)
{
    if (ref->size != n) {
        printf("FAIL %s: %zu elements, the fixture has %zu\n", what, n, ref->size);
        fx_fail_count++;
        return;
    }
    comparison c = compare_all(got, ref->data, n, tol * EPS32 * scale, tol * EPS32);
    double units = scale > 0 ? c.max_abs / (EPS32 * scale) : (c.max_abs > 0 ? INFINITY : 0);
    printf("%s %-52s n=%-7zu max|err| %-9.3g = %7.1f eps*scale, err/tol %.3g\n", c.ok ? "ok  " : "FAIL", what, n,
           c.max_abs, units, c.max_ratio);
    if (!c.ok) fx_fail_count++;
    if (!(units <= w->eps_units)) w->eps_units = units;
    if (!(c.max_ratio <= w->ratio)) w->ratio = c.max_ratio;
}

/* comine's tensor in PyTorch's layout (a new buffer). */
static float *to_torch(const comine_model *m, const comine_tensor_info *ti, const float *data)
{
    float *t = malloc(ti->size * sizeof(float));
    for (size_t k = 0; k < ti->size; k++) t[torch_index(m, ti, k)] = data[k];
    return t;
}

/* A scalar of the fixture (gradterms, stepterms, bufterms), -1 when absent. */
static double scalar(const fx_file *f, const char *key, const char *name)
{
    const fx_tensor *t = find(f, key, name);
    return t && t->size == 1 ? (double)t->data[0] : -1;
}

/* The scale of a comine tensor's comparison with the fixture's key.name (key grad, param3
 * or buffer3); see the top.  -1 when the fixture lacks what it needs. */
static double scale_of(const fx_file *f, const char *key, const fx_tensor *ref, const char *name)
{
    if (!strcmp(key, "grad")) return scalar(f, "gradterms", name);
    if (!strcmp(key, "param3")) return fmax(0, scalar(f, "stepterms", name)); /* none: not trained */
    return fmax(max_abs(ref->data, ref->size), scalar(f, "bufterms", name));
}

/* Compares a comine tensor with the fixture's key.name.  Returns 0 when the fixture lacks it. */
static int compare_tensor(const fx_file *f, const char *key, const comine_model *m, const comine_tensor_info *ti,
                          const float *data, double tol, worst *w)
{
    const fx_tensor *ref = find(f, key, ti->name);
    if (!ref) return 0;
    char what[256];
    snprintf(what, sizeof what, "%s.%s", key, ti->name);
    double scale = scale_of(f, key, ref, ti->name);
    if (scale < 0) {
        printf("FAIL %s: the fixture has no scale for it\n", what);
        fx_fail_count++;
        return 1;
    }
    float *got = to_torch(m, ti, data);
    report(what, got, ref, ti->size, scale, tol, w);
    free(got);
    return 1;
}

/* The gradient comparison once more after a 1% error is put into the gradient (got * 1.01).
 * *must: the error is at least twice the tolerance at the largest reference element, so that
 * it must fail; returns 1 when it fails, *ratio its max err/tol. */
static int planted_caught(const fx_file *f, const comine_model *m, const comine_tensor_info *ti, const float *grad,
                          double tol, bool *must, double *ratio)
{
    const fx_tensor *ref = find(f, "grad", ti->name);
    double scale = scalar(f, "gradterms", ti->name);
    *must = false;
    *ratio = 0;
    if (!ref || scale < 0 || ref->size != ti->size) return 0;
    double big = max_abs(ref->data, ref->size);
    *must = 0.01 * big >= 2 * tol * EPS32 * (scale + big);
    float *got = to_torch(m, ti, grad);
    for (size_t k = 0; k < ti->size; k++) got[k] *= 1.01f;
    comparison c = compare_all(got, ref->data, ti->size, tol * EPS32 * scale, tol * EPS32);
    free(got);
    *ratio = c.max_ratio;
    return !c.ok;
}

static void compare_vector(const char *what, const float *got, const fx_tensor *ref, size_t n, double tol, worst *w)
{
    if (ref) report(what, got, ref, n, max_abs(ref->data, ref->size), tol, w);
}

static void run_case(const ref_case *rc, const comine_backend *be)
{
    const double tol = 16.0 * rc->depth;
    printf("== %s (width %g, input %d, batch %d) vs %s: tol %g eps (16 x depth %d)\n", rc->arch, (double)rc->width,
           rc->input, rc->N, rc->fixture, tol, rc->depth);
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
    fill_params(m, &f);
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

    worst w_fwd = {0, 0}, w_grad = {0, 0}, w_step = {0, 0};
    comine_model_forward(m, emb, images, N, false, NULL);
    compare_vector("emb_eval", emb, fx_get(&f, "emb_eval"), (size_t)N * D, tol, &w_fwd);

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
            worst *w = step ? &w_step : &w_fwd;
            if (step == 0) compare_vector("emb", emb, fx_get(&f, "emb"), (size_t)N * D, tol, w);
            compare_vector(kl, loss, fx_get(&f, kl), (size_t)N, tol, w);
            compare_vector(km, &mean, fx_get(&f, km), 1, tol, w);
        }
        if (step == 3) break;
        memset(demb, 0, (size_t)N * D * sizeof(float));
        comine_arcface_backward(&headl, demb, dhead, emb, head, labels, NULL, weights, N, &cfg);
        comine_model_backward(m, demb, N);
        if (step == 0) {
            int compared = 0, must = 0, caught = 0, caught_must = 0;
            double weakest = INFINITY;
            const char *weakest_name = "-";
            for (int i = 0; i < comine_model_num_tensors(m); i++) {
                const comine_tensor_info *ti = comine_model_tensor(m, i);
                const float *grad = comine_model_grads(m) + ti->offset;
                int ok = compare_tensor(&f, "grad", m, ti, grad, tol, &w_grad);
                FX_EXPECT(ok, "fixture has no gradient of %s", ti->name);
                if (!ok) continue;
                compared++;
                bool must_fail;
                double ratio;
                int hit = planted_caught(&f, m, ti, grad, tol, &must_fail, &ratio);
                caught += hit;
                if (!must_fail) continue;
                must++;
                caught_must += hit;
                if (!hit) printf("FAIL a 1%% error in grad.%s passes the comparison (err/tol %.3g)\n", ti->name, ratio);
                if (ratio < weakest) weakest = ratio, weakest_name = ti->name;
            }
            printf("     %d parameter gradients compared element by element\n", compared);
            printf("%s planted 1%% error (each gradient times 1.01 in turn): fails the comparison in %d of the %d "
                   "gradients where it is >= 2x the tolerance (least err/tol %.3g, grad.%s), and in %d of the %d "
                   "others (cancelled sums)\n",
                   caught_must == must ? "ok  " : "FAIL", caught_must, must, weakest, weakest_name, caught - caught_must,
                   compared - must);
            if (caught_must != must || must == 0) fx_fail_count++;
        }
        comine_sgd_step(be, comine_model_params(m), momentum, comine_model_grads(m), np, 0.01f, 0.9f, 5e-4f);
    }
    printf("     4 forwards, 3 backwards and steps: %.2f s\n", comine_now() - t0);
    int compared = 0;
    for (int i = 0; i < comine_model_num_tensors(m); i++) {
        const comine_tensor_info *ti = comine_model_tensor(m, i);
        int ok = compare_tensor(&f, "param3", m, ti, comine_model_params(m) + ti->offset, tol, &w_step);
        FX_EXPECT(ok, "fixture has no parameter %s", ti->name);
        compared += ok;
    }
    for (int i = 0; i < comine_model_num_buffer_tensors(m); i++) {
        const comine_tensor_info *ti = comine_model_buffer_tensor(m, i);
        const float *data = comine_model_buffers(m) + ti->offset;
        int ok = compare_tensor(&f, "buffer3", m, ti, data, tol, &w_step) ||
                 compare_tensor(&f, "param3", m, ti, data, tol, &w_step);
        FX_EXPECT(ok, "fixture has no buffer %s", ti->name);
        compared += ok;
    }
    printf("     %d parameters and buffers compared element by element after 3 steps\n", compared);
    printf("     %s, tol %g eps: max error in eps * scale (err/tol): embeddings and losses %.1f (%.3g), first "
           "gradients %.1f (%.3g), after 3 steps %.1f (%.3g)\n",
           rc->arch, tol, w_fwd.eps_units, w_fwd.ratio, w_grad.eps_units, w_grad.ratio, w_step.eps_units, w_step.ratio);

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
        {"models_iresnet18.bin", "iresnet18", 0.125f, 32, 4, 18},
        {"models_mbf.bin", "mobilefacenet", 1.0f, 112, 4, 50},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], be);
    return fx_finish("test_models_ref");
}

/* test_backend_cuda.c: every entry of the CUDA backend's table against the CPU backend's on
 * the same random inputs (ggml's test-backend-ops): memory and copies, the finiteness check,
 * gemm (all transposes, leading dimensions, beta, K = 0), convolutions of iresnet's and
 * MobileFaceNet's kinds (dense 3x3 and 1x1 at strides 1 and 2, the 3-channel stem, depthwise
 * 3x3 at strides 1 and 2, 2-channel groups, the 7x7 global depthwise) forward and every
 * backward (accumulating into prefilled outputs and overwriting), batch norm (training, eval,
 * apply, backward both ways), PReLU, ReLU, bias, column sums, dropout (the same mask from the
 * same rng), the element-wise sums, SGD, and the ArcFace head's kernels under the three
 * forms and both fallbacks, with the sub-center entries.  Each kernel gets the same inputs on both devices (the CPU's
 * intermediate results are uploaded), so that a difference is that kernel's.
 *
 * Tolerances: a sum of L products of terms bounded by 1 differs by at most ~L eps between two
 * summation orders; convolutions get 16 L eps (cuDNN may run Winograd or FFT-free tiled
 * algorithms), reductions in double and element-wise kernels (written to round as cpu.c)
 * 2 eps relative.  Exits 77 (skipped) when built without CUDA or when no CUDA device is
 * present. */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_impl.h"
#include "fixture.h"
#ifdef COMINE_HAVE_CUDA
#include "backend/cuda/cuda.h"
#endif

#ifndef COMINE_HAVE_CUDA
int main(void)
{
    printf("skipped: comine is built without CUDA (configure with -DCOMINE_CUDA=ON)\n");
    return FX_SKIPPED;
}
#else

#define EPS ((double)FLT_EPSILON)
#define ELEM_RTOL (2 * EPS)

static const comine_backend *cpu, *gpu;
static comine_rng rng;

static float *rnd(size_t n, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * comine_rng_uniform(&rng);
    return x;
}

/* device copies of host data */
static float *on(const comine_backend *be, const float *host, size_t n)
{
    float *d = comine_backend_alloc(be, n);
    comine_backend_upload(be, d, host, n);
    return d;
}

static void *on_bytes(const comine_backend *be, const void *host, size_t bytes)
{
    void *d = comine_backend_alloc_bytes(be, bytes);
    comine_backend_upload_bytes(be, d, host, bytes);
    return d;
}

static float *host_of(const comine_backend *be, const float *dev, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof(float));
    comine_backend_download(be, h, dev, n);
    return h;
}

/* download the GPU and CPU versions of a buffer and compare them */
static void cmp(const char *what, const float *dev_gpu, const float *dev_cpu, size_t n, double atol, double rtol)
{
    float *g = host_of(gpu, dev_gpu, n), *c = host_of(cpu, dev_cpu, n);
    fx_check(what, g, c, n, atol, rtol);
    free(g);
    free(c);
}

/* a buffer on both devices with the same contents */
typedef struct pair {
    float *g, *c;
    size_t n;
} pair;

static pair both(const float *host, size_t n)
{
    return (pair){on(gpu, host, n), on(cpu, host, n), n};
}

static pair both_rnd(size_t n, float lo, float hi)
{
    float *h = rnd(n, lo, hi);
    pair p = both(h, n);
    free(h);
    return p;
}

static void pair_free(pair *p)
{
    comine_backend_free(gpu, p->g);
    comine_backend_free(cpu, p->c);
}

/* ---- memory, finiteness, gemm -------------------------------------------------------- */

static void test_memory(void)
{
    int mark = fx_fail_count;
    size_t n = 100003;
    float *h = rnd(n, -3, 3);
    float *d = comine_backend_alloc(gpu, n), *z = host_of(gpu, d, n);
    size_t nonzero = 0;
    for (size_t i = 0; i < n; i++) nonzero += z[i] != 0.0f;
    FX_EXPECT(nonzero == 0, "alloc is zero-filled (%zu nonzero)", nonzero);
    comine_backend_upload(gpu, d, h, n);
    float *d2 = comine_backend_alloc(gpu, n);
    comine_backend_copy(gpu, d2, d, n);
    float *back = host_of(gpu, d2, n);
    FX_EXPECT(!memcmp(back, h, n * sizeof(float)), "upload, copy, download round trip is exact");
    comine_backend_zero(gpu, d2, n / 2);
    free(back);
    back = host_of(gpu, d2, n);
    FX_EXPECT(back[n / 2 - 1] == 0.0f && back[n / 2] == h[n / 2], "zero clears exactly n floats");
    const float *staged = comine_backend_stage_input(gpu, d2, h, n);
    free(back);
    back = host_of(gpu, staged, n);
    FX_EXPECT(!memcmp(back, h, n * sizeof(float)), "stage_input gives device memory with the host data");
    uint8_t bytes[37], bytes_back[37];
    for (int i = 0; i < 37; i++) bytes[i] = (uint8_t)(i * 7 + 1);
    void *db = on_bytes(gpu, bytes, sizeof bytes);
    comine_backend_download_bytes(gpu, bytes_back, db, sizeof bytes);
    FX_EXPECT(!memcmp(bytes, bytes_back, sizeof bytes), "byte buffers round trip");
    comine_backend_free_bytes(gpu, db);

    FX_EXPECT(comine_backend_all_finite(gpu, d, n), "all_finite: finite data");
    float bad[3] = {NAN, INFINITY, -INFINITY};
    size_t where[3] = {0, n / 3, n - 1};
    for (int k = 0; k < 3; k++) {
        comine_backend_upload(gpu, d + where[k], &bad[k], 1);
        FX_EXPECT(!comine_backend_all_finite(gpu, d, n), "all_finite finds %g at %zu", (double)bad[k], where[k]);
        comine_backend_upload(gpu, d + where[k], &h[where[k]], 1);
    }
    FX_EXPECT(comine_backend_all_finite(gpu, d, n), "all_finite: finite again");
    comine_backend_free(gpu, d);
    comine_backend_free(gpu, d2);
    free(h);
    free(z);
    free(back);
    FX_SUMMARY(mark, "memory: alloc, upload, download, copy, zero, stage_input, bytes, all_finite\n");
}

static void test_gemm(void)
{
    const int M = 37, N = 53, K = 71;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int bk = 0; bk < 2; bk++) {
                float beta = bk ? 0.3f : 0.0f;
                int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
                pair A = both_rnd((size_t)(ta ? K : M) * lda, -1, 1), B = both_rnd((size_t)(tb ? N : K) * ldb, -1, 1);
                pair C = both_rnd((size_t)M * ldc, -1, 1);
                gpu->gemm(ta, tb, M, N, K, 0.7f, A.g, lda, B.g, ldb, beta, C.g, ldc);
                cpu->gemm(ta, tb, M, N, K, 0.7f, A.c, lda, B.c, ldb, beta, C.c, ldc);
                char what[64];
                snprintf(what, sizeof what, "gemm ta=%d tb=%d beta=%.1f", ta, tb, (double)beta);
                cmp(what, C.g, C.c, C.n, 2 * K * EPS, 0);
                pair_free(&A), pair_free(&B), pair_free(&C);
            }
    pair C = both_rnd((size_t)M * N, -1, 1);
    gpu->gemm(0, 0, M, N, 0, 1.0f, C.g, N, C.g, N, 0.5f, C.g, N);
    cpu->gemm(0, 0, M, N, 0, 1.0f, C.c, N, C.c, N, 0.5f, C.c, N);
    cmp("gemm K=0 (C = beta C)", C.g, C.c, C.n, 0, ELEM_RTOL);
    pair_free(&C);
}

/* ---- convolutions -------------------------------------------------------------------- */

typedef struct conv_case {
    const char *name;
    int C, H, OC, K, stride, pad, groups;
    bool bias;
} conv_case;

static void test_conv(const conv_case *cc)
{
    comine_conv_geom g = {.C = cc->C, .H = cc->H, .W = cc->K == 7 ? cc->H : cc->H + 1, .OC = cc->OC, .KH = cc->K, .KW = cc->K,
                          .stride = cc->stride, .pad = cc->pad, .groups = cc->groups, .has_bias = cc->bias};
    g.OH = (g.H + 2 * g.pad - g.KH) / g.stride + 1;
    g.OW = (g.W + 2 * g.pad - g.KW) / g.stride + 1;
    void *pg = gpu->conv_plan_create(&g), *pc = cpu->conv_plan_create(&g);
    int Cg = g.C / g.groups;
    size_t nw = (size_t)g.OC * Cg * g.KH * g.KW;
    double l_fwd = (double)Cg * g.KH * g.KW, l_bwd = (double)(g.OC / g.groups) * g.KH * g.KW;
    for (int N = 3; N >= 2; N--) { /* two batch sizes: two entries of each plan */
        size_t nin = (size_t)N * g.H * g.W * g.C, nout = (size_t)N * g.OH * g.OW * g.OC;
        double l_w = (double)N * g.OH * g.OW;
        pair in = both_rnd(nin, -1, 1), w = both_rnd(nw, -1, 1), b = both_rnd((size_t)g.OC, -1, 1);
        pair out = both_rnd(nout, -1, 1), dout = both_rnd(nout, -1, 1);
        pair dinp = both_rnd(nin, -1, 1), dw = both_rnd(nw, -1, 1), db = both_rnd((size_t)g.OC, -1, 1);
        char what[96];
        gpu->conv_forward(pg, out.g, in.g, w.g, cc->bias ? b.g : NULL, N);
        cpu->conv_forward(pc, out.c, in.c, w.c, cc->bias ? b.c : NULL, N);
        snprintf(what, sizeof what, "conv %s N=%d forward", cc->name, N);
        cmp(what, out.g, out.c, nout, 16 * l_fwd * EPS + 1e-6, 0);
        gpu->conv_backward_data(pg, dinp.g, dout.g, w.g, N);
        cpu->conv_backward_data(pc, dinp.c, dout.c, w.c, N);
        snprintf(what, sizeof what, "conv %s N=%d backward data (+=)", cc->name, N);
        cmp(what, dinp.g, dinp.c, nin, 16 * l_bwd * EPS + 1e-6, 0);
        gpu->conv_backward_data_write(pg, dinp.g, dout.g, w.g, N);
        cpu->conv_backward_data_write(pc, dinp.c, dout.c, w.c, N);
        snprintf(what, sizeof what, "conv %s N=%d backward data (=)", cc->name, N);
        cmp(what, dinp.g, dinp.c, nin, 16 * l_bwd * EPS + 1e-6, 0);
        gpu->conv_backward_weights(pg, dw.g, cc->bias ? db.g : NULL, dout.g, in.g, N);
        cpu->conv_backward_weights(pc, dw.c, cc->bias ? db.c : NULL, dout.c, in.c, N);
        snprintf(what, sizeof what, "conv %s N=%d backward weights (+=)", cc->name, N);
        cmp(what, dw.g, dw.c, nw, 16 * l_w * EPS + 1e-6, 0);
        if (cc->bias) {
            snprintf(what, sizeof what, "conv %s N=%d backward bias (+=)", cc->name, N);
            cmp(what, db.g, db.c, (size_t)g.OC, 4 * l_w * EPS, 0);
        }
        pair_free(&in), pair_free(&w), pair_free(&b), pair_free(&out), pair_free(&dout);
        pair_free(&dinp), pair_free(&dw), pair_free(&db);
    }
    gpu->conv_plan_free(pg);
    cpu->conv_plan_free(pc);
}

/* ---- batch norm and the per-channel kernels ------------------------------------------ */

static void test_batchnorm(size_t rows, int C, bool affine)
{
    pair in = both_rnd(rows * C, 4, 6); /* |mean| >> std: the shifted sums matter */
    pair gamma = both_rnd((size_t)C, 0.5f, 1.5f), beta = both_rnd((size_t)C, -1, 1);
    pair out = both_rnd(rows * C, -1, 1), mean = both_rnd((size_t)C, 0, 0), rstd = both_rnd((size_t)C, 0, 0);
    pair rmean = both_rnd((size_t)C, -1, 1), rvar = both_rnd((size_t)C, 0.5f, 2);
    const float *gg = affine ? gamma.g : NULL, *gc = affine ? gamma.c : NULL;
    const float *bg = affine ? beta.g : NULL, *bc = affine ? beta.c : NULL;
    char what[96];
    const char *tag = affine ? "affine" : "plain";
    gpu->batchnorm_forward(out.g, mean.g, rstd.g, rmean.g, rvar.g, in.g, gg, bg, rows, C, true, 0.1f, 1e-5f);
    cpu->batchnorm_forward(out.c, mean.c, rstd.c, rmean.c, rvar.c, in.c, gc, bc, rows, C, true, 0.1f, 1e-5f);
    snprintf(what, sizeof what, "batchnorm %s training forward: out", tag);
    cmp(what, out.g, out.c, out.n, 1e-5, 1e-5);
    snprintf(what, sizeof what, "batchnorm %s: saved mean, rstd", tag);
    cmp(what, mean.g, mean.c, (size_t)C, 0, 1e-6);
    cmp(what, rstd.g, rstd.c, (size_t)C, 0, 1e-5);
    snprintf(what, sizeof what, "batchnorm %s: running mean, var", tag);
    cmp(what, rmean.g, rmean.c, (size_t)C, 1e-6, 1e-6);
    cmp(what, rvar.g, rvar.c, (size_t)C, 1e-6, 1e-5);
    pair again = both_rnd(rows * C, 0, 0);
    gpu->batchnorm_apply(again.g, in.g, mean.g, rstd.g, gg, bg, rows, C);
    snprintf(what, sizeof what, "batchnorm %s apply = the training output (GPU, bit for bit)", tag);
    float *a = host_of(gpu, again.g, again.n), *o = host_of(gpu, out.g, out.n);
    fx_check(what, a, o, out.n, 0, 0);
    free(a), free(o);
    /* eval on the same running statistics */
    gpu->batchnorm_forward(out.g, NULL, NULL, rmean.g, rvar.g, in.g, gg, bg, rows, C, false, 0.1f, 1e-5f);
    cpu->batchnorm_forward(out.c, NULL, NULL, rmean.c, rvar.c, in.c, gc, bc, rows, C, false, 0.1f, 1e-5f);
    snprintf(what, sizeof what, "batchnorm %s eval forward", tag);
    cmp(what, out.g, out.c, out.n, 1e-5, 1e-5);
    /* backward on the CPU's saved statistics */
    float *hm = host_of(cpu, mean.c, (size_t)C), *hr = host_of(cpu, rstd.c, (size_t)C);
    comine_backend_upload(gpu, mean.g, hm, (size_t)C);
    comine_backend_upload(gpu, rstd.g, hr, (size_t)C);
    free(hm), free(hr);
    pair dout = both_rnd(rows * C, -1, 1), dinp = both_rnd(rows * C, -1, 1);
    pair dgamma = both_rnd((size_t)C, -1, 1), dbeta = both_rnd((size_t)C, -1, 1);
    for (int write = 0; write < 2; write++) {
        if (write) {
            gpu->batchnorm_backward_write(dinp.g, dgamma.g, dbeta.g, dout.g, in.g, mean.g, rstd.g, gg, rows, C);
            cpu->batchnorm_backward_write(dinp.c, dgamma.c, dbeta.c, dout.c, in.c, mean.c, rstd.c, gc, rows, C);
        } else {
            gpu->batchnorm_backward(dinp.g, dgamma.g, dbeta.g, dout.g, in.g, mean.g, rstd.g, gg, rows, C);
            cpu->batchnorm_backward(dinp.c, dgamma.c, dbeta.c, dout.c, in.c, mean.c, rstd.c, gc, rows, C);
        }
        snprintf(what, sizeof what, "batchnorm %s backward (%s): dinp", tag, write ? "=" : "+=");
        cmp(what, dinp.g, dinp.c, dinp.n, 1e-5, 1e-5);
        snprintf(what, sizeof what, "batchnorm %s backward (%s): dgamma, dbeta", tag, write ? "=" : "+=");
        cmp(what, dgamma.g, dgamma.c, (size_t)C, rows * 4 * EPS, 1e-6);
        cmp(what, dbeta.g, dbeta.c, (size_t)C, rows * 4 * EPS, 1e-6);
    }
    pair_free(&in), pair_free(&gamma), pair_free(&beta), pair_free(&out), pair_free(&mean), pair_free(&rstd);
    pair_free(&rmean), pair_free(&rvar), pair_free(&again), pair_free(&dout), pair_free(&dinp);
    pair_free(&dgamma), pair_free(&dbeta);
}

static void test_channels(size_t rows, int C)
{
    size_t n = rows * C;
    pair in = both_rnd(n, -1, 1), alpha = both_rnd((size_t)C, 0, 0.5f), out = both_rnd(n, -1, 1);
    pair dout = both_rnd(n, -1, 1), dinp = both_rnd(n, -1, 1), dalpha = both_rnd((size_t)C, -1, 1);
    gpu->prelu_forward(out.g, in.g, alpha.g, rows, C);
    cpu->prelu_forward(out.c, in.c, alpha.c, rows, C);
    cmp("prelu forward", out.g, out.c, n, 0, ELEM_RTOL);
    gpu->prelu_backward(dinp.g, dalpha.g, dout.g, in.g, alpha.g, rows, C);
    cpu->prelu_backward(dinp.c, dalpha.c, dout.c, in.c, alpha.c, rows, C);
    cmp("prelu backward (+=): dinp", dinp.g, dinp.c, n, 0, ELEM_RTOL);
    cmp("prelu backward (+=): dalpha", dalpha.g, dalpha.c, (size_t)C, rows * 4 * EPS, 0);
    gpu->prelu_backward_write(dinp.g, dalpha.g, dout.g, in.g, alpha.g, rows, C);
    cpu->prelu_backward_write(dinp.c, dalpha.c, dout.c, in.c, alpha.c, rows, C);
    cmp("prelu backward (=): dinp", dinp.g, dinp.c, n, 0, ELEM_RTOL);
    cmp("prelu backward (=): dalpha", dalpha.g, dalpha.c, (size_t)C, rows * 4 * EPS, 0);
    gpu->prelu_backward(dinp.g, NULL, dout.g, in.g, alpha.g, rows, C);
    cpu->prelu_backward(dinp.c, NULL, dout.c, in.c, alpha.c, rows, C);
    cmp("prelu backward, no dalpha", dinp.g, dinp.c, n, 0, ELEM_RTOL);
    gpu->relu_forward(out.g, in.g, n);
    cpu->relu_forward(out.c, in.c, n);
    cmp("relu forward", out.g, out.c, n, 0, 0);
    gpu->relu_backward(dinp.g, dout.g, in.g, n);
    cpu->relu_backward(dinp.c, dout.c, in.c, n);
    cmp("relu backward (+=)", dinp.g, dinp.c, n, 0, ELEM_RTOL);
    gpu->add_bias(out.g, alpha.g, rows, C);
    cpu->add_bias(out.c, alpha.c, rows, C);
    cmp("add_bias", out.g, out.c, n, 0, ELEM_RTOL);
    gpu->accumulate_colsum(dalpha.g, dout.g, rows, C);
    cpu->accumulate_colsum(dalpha.c, dout.c, rows, C);
    cmp("accumulate_colsum (+=)", dalpha.g, dalpha.c, (size_t)C, rows * 2 * EPS, 0);
    gpu->add(out.g, in.g, dout.g, n);
    cpu->add(out.c, in.c, dout.c, n);
    cmp("add", out.g, out.c, n, 0, ELEM_RTOL);
    gpu->accumulate(out.g, in.g, n);
    cpu->accumulate(out.c, in.c, n);
    cmp("accumulate", out.g, out.c, n, 0, ELEM_RTOL);
    pair_free(&in), pair_free(&alpha), pair_free(&out), pair_free(&dout), pair_free(&dinp), pair_free(&dalpha);
}

static void test_dropout(size_t n)
{
    pair in = both_rnd(n, -1, 1), out = both_rnd(n, -1, 1), dinp = both_rnd(n, -1, 1), dout = both_rnd(n, -1, 1);
    uint8_t *zeros = calloc(n, 1);
    uint8_t *mg = on_bytes(gpu, zeros, n), *mc = on_bytes(cpu, zeros, n);
    const float ps[4] = {0.4f, 0.0f, 1.0f, 0.4f};
    for (int k = 0; k < 4; k++) {
        bool training = k < 3;
        comine_rng rg, rc;
        comine_rng_seed(&rg, 11, (uint64_t)k), comine_rng_seed(&rc, 11, (uint64_t)k);
        gpu->dropout_forward(out.g, mg, in.g, n, ps[k], training, &rg);
        cpu->dropout_forward(out.c, mc, in.c, n, ps[k], training, &rc);
        char what[80];
        snprintf(what, sizeof what, "dropout p=%.1f %s forward", (double)ps[k], training ? "training" : "eval");
        cmp(what, out.g, out.c, n, 0, ELEM_RTOL);
        if (!training) continue;
        uint8_t *hg = malloc(n), *hc = malloc(n);
        comine_backend_download_bytes(gpu, hg, mg, n);
        comine_backend_download_bytes(cpu, hc, mc, n);
        FX_EXPECT(!memcmp(hg, hc, n), "dropout p=%.1f: the same mask on both devices", (double)ps[k]);
        free(hg), free(hc);
        gpu->dropout_backward(dinp.g, dout.g, mg, n, ps[k]);
        cpu->dropout_backward(dinp.c, dout.c, mc, n, ps[k]);
        snprintf(what, sizeof what, "dropout p=%.1f backward (+=)", (double)ps[k]);
        cmp(what, dinp.g, dinp.c, n, 0, ELEM_RTOL);
    }
    comine_backend_free_bytes(gpu, mg), comine_backend_free_bytes(cpu, mc), free(zeros);
    pair_free(&in), pair_free(&out), pair_free(&dinp), pair_free(&dout);
}

static void test_sgd(size_t n)
{
    pair p = both_rnd(n, -1, 1), m = both_rnd(n, -1, 1), g = both_rnd(n, -1, 1);
    for (int step = 0; step < 3; step++) {
        gpu->sgd_step(p.g, m.g, g.g, n, 0.1f, 0.9f, 5e-4f);
        cpu->sgd_step(p.c, m.c, g.c, n, 0.1f, 0.9f, 5e-4f);
    }
    cmp("sgd with momentum: params", p.g, p.c, n, 0, ELEM_RTOL);
    cmp("sgd with momentum: momentum", m.g, m.c, n, 0, ELEM_RTOL);
    gpu->sgd_step(p.g, NULL, g.g, n, 0.1f, 0.0f, 5e-4f);
    cpu->sgd_step(p.c, NULL, g.c, n, 0.1f, 0.0f, 5e-4f);
    cmp("sgd without momentum", p.g, p.c, n, 0, ELEM_RTOL);
    pair_free(&p), pair_free(&m), pair_free(&g);
}

/* ---- the ArcFace head ---------------------------------------------------------------- */

/* One head of D, K classes, N samples (row 0 of the embeddings and row 1 of the weights are
 * zero: the eps branches), under each form and fallback; each kernel gets the CPU's inputs. */
static void test_arcface(int N, int K, int D, comine_fallback fallback, bool forms)
{
    comine_arcface_cfg cfg = {.s = 64.0f, .m = 0.5f, .fallback = fallback, .dm = 0.2f, .t = 1.2f};
    char tag[64], what[128];
    snprintf(tag, sizeof tag, "arcface N=%d K=%d %s%s", N, K, fallback == COMINE_FALLBACK_EASY ? "easy" : "insightface",
             forms ? " 3 forms" : "");
    float *emb = rnd((size_t)N * D, -1, 1), *w = rnd((size_t)K * D, -0.1f, 0.1f);
    memset(emb, 0, (size_t)D * sizeof(float));
    memset(w + D, 0, (size_t)D * sizeof(float));
    int *labels = malloc((size_t)N * sizeof(int)), *active = malloc((size_t)N * sizeof(int));
    uint8_t *form = malloc((size_t)N);
    float *weight = malloc((size_t)N * sizeof(float));
    int na = 0;
    for (int i = 0; i < N; i++) {
        labels[i] = (int)comine_rng_below(&rng, (uint32_t)K);
        form[i] = (uint8_t)(i % 3);
        weight[i] = i % 4 == 3 ? 0.0f : 0.5f + comine_rng_uniform(&rng);
        if (weight[i] != 0.0f) active[na++] = i;
    }
    /* some samples close to their class: large cosines, the margin and mv branches */
    for (int i = 1; i < N; i += 2)
        for (int d = 0; d < D; d++) emb[(size_t)i * D + d] = w[(size_t)labels[i] * D + d] * 10 + 0.1f * emb[(size_t)i * D + d];
    pair e = both(emb, (size_t)N * D), wt = both(w, (size_t)K * D);
    pair eh = both_rnd((size_t)N * D, 0, 0), en = both_rnd((size_t)N, 0, 0), ei = both_rnd((size_t)N, 0, 0);
    pair wh = both_rnd((size_t)K * D, 0, 0), wn = both_rnd((size_t)K, 0, 0), wi = both_rnd((size_t)K, 0, 0);
    gpu->l2_normalize_rows(eh.g, en.g, ei.g, e.g, N, D);
    cpu->l2_normalize_rows(eh.c, en.c, ei.c, e.c, N, D);
    gpu->l2_normalize_rows(wh.g, wn.g, NULL, wt.g, K, D);
    cpu->l2_normalize_rows(wh.c, wn.c, NULL, wt.c, K, D);
    gpu->l2_normalize_rows(wh.g, wn.g, wi.g, wt.g, K, D);
    cpu->l2_normalize_rows(wh.c, wn.c, wi.c, wt.c, K, D);
    snprintf(what, sizeof what, "%s: l2_normalize_rows", tag);
    cmp(what, eh.g, eh.c, eh.n, 0, 4 * EPS);
    cmp(what, en.g, en.c, en.n, 0, 4 * EPS);
    cmp(what, ei.g, ei.c, ei.n, 0, 4 * EPS);
    cmp(what, wh.g, wh.c, wh.n, 0, 4 * EPS);
    cmp(what, wn.g, wn.c, wn.n, 0, 4 * EPS);
    cmp(what, wi.g, wi.c, wi.n, 0, 4 * EPS);
    /* the cosines of the CPU on both devices */
    pair cosm = both_rnd((size_t)N * K, 0, 0);
    cpu->gemm(0, 1, N, K, D, 1.0f, eh.c, D, wh.c, D, 0.0f, cosm.c, K);
    float *hcos = host_of(cpu, cosm.c, cosm.n);
    comine_backend_upload(gpu, cosm.g, hcos, cosm.n);
    float *h;
    h = host_of(cpu, eh.c, eh.n), comine_backend_upload(gpu, eh.g, h, eh.n), free(h);
    h = host_of(cpu, wi.c, wi.n), comine_backend_upload(gpu, wi.g, h, wi.n), free(h);
    h = host_of(cpu, wh.c, wh.n), comine_backend_upload(gpu, wh.g, h, wh.n), free(h);
    h = host_of(cpu, wn.c, wn.n), comine_backend_upload(gpu, wn.g, h, wn.n), free(h);
    h = host_of(cpu, en.c, en.n), comine_backend_upload(gpu, en.g, h, en.n), free(h);
    int *lab_g = on_bytes(gpu, labels, (size_t)N * sizeof(int)), *lab_c = on_bytes(cpu, labels, (size_t)N * sizeof(int));
    int *act_g = on_bytes(gpu, active, (size_t)N * sizeof(int)), *act_c = on_bytes(cpu, active, (size_t)N * sizeof(int));
    uint8_t *form_g = forms ? on_bytes(gpu, form, (size_t)N) : NULL, *form_c = forms ? on_bytes(cpu, form, (size_t)N) : NULL;
    pair sw = both(weight, (size_t)N);
    pair loss = both_rnd((size_t)N, 0, 0), ct = both_rnd((size_t)N, 0, 0), pt = both_rnd((size_t)N, 0, 0);
    uint8_t *cor_g = comine_backend_alloc_bytes(gpu, (size_t)N), *cor_c = comine_backend_alloc_bytes(cpu, (size_t)N);
    gpu->arcface_loss(loss.g, ct.g, pt.g, cor_g, cosm.g, lab_g, form_g, N, K, &cfg);
    cpu->arcface_loss(loss.c, ct.c, pt.c, cor_c, cosm.c, lab_c, form_c, N, K, &cfg);
    snprintf(what, sizeof what, "%s: loss, cos_target, p_target", tag);
    cmp(what, loss.g, loss.c, loss.n, 1e-6, 1e-5);
    cmp(what, ct.g, ct.c, ct.n, 0, 0);
    cmp(what, pt.g, pt.c, pt.n, 1e-7, 1e-5);
    uint8_t *hg = malloc((size_t)N), *hc = malloc((size_t)N);
    comine_backend_download_bytes(gpu, hg, cor_g, (size_t)N);
    comine_backend_download_bytes(cpu, hc, cor_c, (size_t)N);
    FX_EXPECT(!memcmp(hg, hc, (size_t)N), "%s: the same correct flags", tag);
    free(hg), free(hc);
    double mt_g, mn_g, mt_c, mn_c;
    gpu->arcface_cos_stats(&mt_g, &mn_g, cosm.g, lab_g, N, K);
    cpu->arcface_cos_stats(&mt_c, &mn_c, cosm.c, lab_c, N, K);
    FX_EXPECT(fabs(mt_g - mt_c) <= 1e-9 && fabs(mn_g - mn_c) <= 1e-9, "%s: cos_stats %.12g %.12g vs %.12g %.12g", tag,
              mt_g, mn_g, mt_c, mn_c);
    /* backward */
    pair dcos = both_rnd((size_t)N * K, 0, 0), rc = both_rnd((size_t)N, 0, 0), eha = both_rnd((size_t)N * D, 0, 0);
    gpu->arcface_dcos(dcos.g, rc.g, eha.g, cosm.g, eh.g, wi.g, act_g, na, lab_g, form_g, sw.g, K, D, &cfg);
    cpu->arcface_dcos(dcos.c, rc.c, eha.c, cosm.c, eh.c, wi.c, act_c, na, lab_c, form_c, sw.c, K, D, &cfg);
    snprintf(what, sizeof what, "%s: dcos, row_coef, emb_hat_active", tag);
    cmp(what, dcos.g, dcos.c, (size_t)na * K, 1e-6, 1e-5);
    cmp(what, rc.g, rc.c, (size_t)na, 1e-5, 1e-5);
    cmp(what, eha.g, eha.c, (size_t)na * D, 0, 0);
    h = host_of(cpu, dcos.c, dcos.n), comine_backend_upload(gpu, dcos.g, h, dcos.n), free(h);
    h = host_of(cpu, rc.c, rc.n), comine_backend_upload(gpu, rc.g, h, rc.n), free(h);
    pair cc = both_rnd((size_t)K, 0, 0);
    gpu->arcface_col_coef(cc.g, dcos.g, cosm.g, act_g, na, K);
    cpu->arcface_col_coef(cc.c, dcos.c, cosm.c, act_c, na, K);
    snprintf(what, sizeof what, "%s: col_coef", tag);
    cmp(what, cc.g, cc.c, cc.n, 1e-6, 1e-5);
    h = host_of(cpu, cc.c, cc.n), comine_backend_upload(gpu, cc.g, h, cc.n), free(h);
    pair dh = both_rnd((size_t)N * D, -1, 1), de = both_rnd((size_t)N * D, -1, 1), dw = both_rnd((size_t)K * D, -1, 1);
    gpu->arcface_demb(de.g, dh.g, eh.g, en.g, rc.g, act_g, na, D);
    cpu->arcface_demb(de.c, dh.c, eh.c, en.c, rc.c, act_c, na, D);
    snprintf(what, sizeof what, "%s: demb (+=)", tag);
    cmp(what, de.g, de.c, de.n, 0, ELEM_RTOL);
    gpu->arcface_dweight(dw.g, wh.g, wn.g, cc.g, K, D);
    cpu->arcface_dweight(dw.c, wh.c, wn.c, cc.c, K, D);
    snprintf(what, sizeof what, "%s: dweight (-=)", tag);
    cmp(what, dw.g, dw.c, dw.n, 0, ELEM_RTOL);
    pair *ps[] = {&e, &wt, &eh, &en, &ei, &wh, &wn, &wi, &cosm, &sw, &loss, &ct, &pt, &dcos, &rc, &eha, &cc, &dh, &de, &dw};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) pair_free(ps[i]);
    comine_backend_free_bytes(gpu, lab_g), comine_backend_free_bytes(cpu, lab_c);
    comine_backend_free_bytes(gpu, act_g), comine_backend_free_bytes(cpu, act_c);
    comine_backend_free_bytes(gpu, form_g), comine_backend_free_bytes(cpu, form_c);
    comine_backend_free_bytes(gpu, cor_g), comine_backend_free_bytes(cpu, cor_c);
    free(emb), free(w), free(labels), free(active), free(form), free(weight), free(hcos);
}

/* Sub-center ArcFace: the class max (ties take the lowest sub-centre, a NaN stops the scan)
 * and the scatter of the gradient back, exact on both devices. */
static void test_subcenter(int N, int K, int S)
{
    size_t nks = (size_t)N * K * S;
    float *cs = rnd(nks, -1, 1);
    cs[5 * S + 1] = NAN;                                              /* row 0, class 5 */
    cs[(size_t)K * S + 3 * S] = cs[(size_t)K * S + 3 * S + 1] = 2.0f; /* row 1, class 3: a tie */
    pair sub = both(cs, nks), cosm = both_rnd((size_t)N * K, 0, 0);
    int *arg_g = comine_backend_alloc_bytes(gpu, (size_t)N * K * sizeof(int));
    int *arg_c = comine_backend_alloc_bytes(cpu, (size_t)N * K * sizeof(int));
    gpu->subcenter_max(cosm.g, arg_g, sub.g, N, K, S);
    cpu->subcenter_max(cosm.c, arg_c, sub.c, N, K, S);
    float *hg = host_of(gpu, cosm.g, cosm.n), *hc = host_of(cpu, cosm.c, cosm.n);
    FX_EXPECT(!memcmp(hg, hc, cosm.n * sizeof(float)), "subcenter_max: the same class cosines (NaN included)");
    free(hg), free(hc);
    int *ag = malloc((size_t)N * K * sizeof(int)), *ac = malloc((size_t)N * K * sizeof(int));
    comine_backend_download_bytes(gpu, ag, arg_g, (size_t)N * K * sizeof(int));
    comine_backend_download_bytes(cpu, ac, arg_c, (size_t)N * K * sizeof(int));
    FX_EXPECT(!memcmp(ag, ac, (size_t)N * K * sizeof(int)), "subcenter_max: the same arg-max sub-centres");
    free(ag), free(ac);
    int active[64], na = 0;
    for (int i = 0; i < N && na < 64; i += 2) active[na++] = i;
    int *act_g = on_bytes(gpu, active, (size_t)na * sizeof(int)), *act_c = on_bytes(cpu, active, (size_t)na * sizeof(int));
    pair dcos = both_rnd((size_t)na * K, -1, 1), winv = both_rnd((size_t)K * S, 0.5f, 2);
    pair out = both_rnd((size_t)na * K * S, -1, 1);
    gpu->subcenter_scatter(out.g, dcos.g, arg_g, act_g, winv.g, na, K, S);
    cpu->subcenter_scatter(out.c, dcos.c, arg_c, act_c, winv.c, na, K, S);
    cmp("subcenter_scatter (every element written)", out.g, out.c, out.n, 0, ELEM_RTOL);
    pair_free(&sub), pair_free(&cosm), pair_free(&dcos), pair_free(&winv), pair_free(&out);
    comine_backend_free_bytes(gpu, arg_g), comine_backend_free_bytes(cpu, arg_c);
    comine_backend_free_bytes(gpu, act_g), comine_backend_free_bytes(cpu, act_c);
    free(cs);
}

static void test_arcface_all(void)
{
    if (gpu->subcenter_max && gpu->subcenter_scatter) test_subcenter(9, 50, 3);
    test_arcface(9, 1000, 50, COMINE_FALLBACK_EASY, true);
    test_arcface(9, 1000, 50, COMINE_FALLBACK_INSIGHTFACE, true);
    test_arcface(12, 7, 16, COMINE_FALLBACK_INSIGHTFACE, false);
    test_arcface(5, 3001, 512, COMINE_FALLBACK_EASY, true);
}

int main(void)
{
    char why[256] = "";
    if (comine_cuda_device_count(why, sizeof why) == 0) {
        printf("skipped: no CUDA device (%s)\n", why);
        return FX_SKIPPED;
    }
    cpu = comine_backend_cpu();
    if (comine_backend_for_device(&gpu, "cuda") != COMINE_OK) {
        printf("FAIL: %s\n", comine_last_error());
        return 1;
    }
    printf("comparing %s with %s\n", comine_backend_name(gpu), comine_backend_name(cpu));
    comine_rng_seed(&rng, 2024, 0);
    test_memory();
    test_gemm();
    static const conv_case convs[] = {
        {"stem 3x3 s1 3->16", 3, 14, 16, 3, 1, 1, 1, false},
        {"dense 3x3 s1 16->16 bias", 16, 12, 16, 3, 1, 1, 1, true},
        {"dense 3x3 s2 16->32", 16, 12, 32, 3, 2, 1, 1, false},
        {"1x1 s1 32->64 bias", 32, 9, 64, 1, 1, 0, 1, true},
        {"1x1 s2 downsample 16->32", 16, 12, 32, 1, 2, 0, 1, false},
        {"depthwise 3x3 s1 64", 64, 10, 64, 3, 1, 1, 64, false},
        {"depthwise 3x3 s2 64", 64, 11, 64, 3, 2, 1, 64, false},
        {"grouped 3x3 s1 2ch/group 32", 32, 10, 32, 3, 1, 1, 16, false},
        {"grouped 3x3 s2 2ch/group 32", 32, 10, 32, 3, 2, 1, 16, false},
        {"global depthwise 7x7 128", 128, 7, 128, 7, 1, 0, 128, false},
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) test_conv(&convs[i]);
    test_batchnorm(3 * 14 * 15, 40, true);
    test_batchnorm(5000, 7, false);
    test_channels(3 * 14 * 15, 40);
    test_dropout(100003);
    test_sgd(100003);
    test_arcface_all();
    return fx_finish("test_backend_cuda");
}

#endif

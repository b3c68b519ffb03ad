/* test_nn_fused.c: the eval convolution with an epilogue (comine_conv2d_forward_fused:
 * out = prelu(conv(x) + b) + residual) against PyTorch (tests/fixtures/nn_fused.bin, made in
 * float64 by tests/ref/gen_nn_fused.py) and against the unfused path (conv, then PReLU, then
 * add: the same backend's conv_forward, prelu_forward and add; also what a backend without a
 * fused entry runs).  Every epilogue (none, PReLU, residual, both), weights reordered per
 * call (weight_version 0) and kept by the plan (nonzero), two batch sizes per plan; then the
 * kept weights must follow a new version or a new pointer (no stale copy).  Where the
 * backend applies a PReLU to the input inside the conv (depthwise layers on AVX-512 and on
 * AVX2; ctest runs this test again with COMINE_CPU_LEVEL=3 for the AVX2 kernels), that
 * too, against PyTorch and against a PReLU pass before the unfused path; and it must be
 * fused exactly where expected.  Where the 1x1 kernel runs (AVX-512), its outputs must be
 * the bits of its summation order in scalar code.
 * Tolerances: each output is a sum of C/groups * K * K products of O(1) values, rounded
 * in float32 in an order that differs between kernels: atol 2e-5, rtol 1e-5 against
 * float64 PyTorch, and fused against unfused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_impl.h"
#include "comine/nn.h"
#include "core/cpu_dispatch.h"
#include "fixture.h"

#define ATOL 2e-5
#define RTOL 1e-5

static const comine_backend *be;

static const fx_tensor *get(const fx_file *f, const char *prefix, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", prefix, name);
    return fx_get(f, key);
}

static float *dev_copy(const fx_tensor *t)
{
    float *p = comine_backend_alloc(be, t->size);
    comine_backend_upload(be, p, t->data, t->size);
    return p;
}

/* The unfused reference on the backend: conv, then PReLU, then the residual add. */
static void unfused(comine_conv2d *l, float *out, const float *x, const float *w, const float *b, const float *alpha,
                    const float *res, int N)
{
    comine_conv2d_forward(l, out, x, w, b, N);
    size_t rows = (size_t)N * l->OH * l->OW;
    if (alpha) comine_prelu_forward(be, out, out, alpha, rows, l->OC);
    if (res) comine_add_forward(be, out, out, res, rows * (size_t)l->OC);
}

/* Where the input PReLU must be fused: the CPU backend's depthwise kernel (AVX-512 with
 * channels a multiple of 16, AVX2 with a multiple of 8), not a backend without a fused
 * forward. */
static bool expect_input_prelu(const comine_conv2d *l)
{
    bool depthwise = l->groups == l->C && l->OC == l->C && l->groups > 1;
    int level = 1;
#ifdef COMINE_CPU_X86
    level = comine_cpu_x86_level();
#endif
    bool kernel = level >= 4 ? l->C % 16 == 0 : level == 3 && l->C % 8 == 0;
    return depthwise && kernel && be->conv_forward_fused != NULL && be == comine_backend_cpu();
}

/* Where the CPU backend's 1x1 kernel must run (AVX-512, output channels a multiple of 32),
 * which sums bias first, then the channels in order, one rounding per multiply-add */
static bool expect_1x1_kernel(const comine_conv2d *l)
{
    int level = 1;
#ifdef COMINE_CPU_X86
    level = comine_cpu_x86_level();
#endif
    const char *nhwc = getenv("COMINE_CONV_NHWC");
    bool geometry = l->groups == 1 && l->KH == 1 && l->KW == 1 && l->stride == 1 && l->pad == 0 && l->OC % 32 == 0;
    return geometry && level >= 4 && !(nhwc && *nhwc && strcmp(nhwc, "0")) && be->conv_forward_fused != NULL &&
           be == comine_backend_cpu();
}

/* That order in scalar code: bias, fmaf over the channels, PReLU, residual */
static void conv1x1_fmaf(float *out, const float *x, const float *w, const float *b, const float *alpha,
                         const float *res, size_t pixels, int C, int OC)
{
    for (size_t p = 0; p < pixels; p++)
        for (int oc = 0; oc < OC; oc++) {
            float v = b ? b[oc] : 0.0f;
            for (int c = 0; c < C; c++) v = fmaf(x[p * C + c], w[(size_t)oc * C + c], v);
            if (v <= 0.0f) v *= alpha[oc];
            out[p * OC + oc] = v + res[p * OC + oc];
        }
}

/* The depthwise kernel over enough rows for every thread (4 images, 64 channels, 16 x 14),
 * input PReLU, PReLU and residual, against a PReLU pass and the unfused path, on random
 * data (the same rounding argument as the fixtures') */
static void dw_threads_case(void)
{
    const int N = 4, C = 64, H = 16, W = 14;
    comine_conv2d l;
    comine_conv2d_init(&l, be, C, H, W, C, 3, 3, 1, 1, C, true);
    if (!comine_conv2d_fuses_input_prelu(&l)) {
        printf("-- dw threads: the input PReLU is not fused on this CPU, skipped\n");
        comine_conv2d_free(&l);
        return;
    }
    size_t n_x = (size_t)N * H * W * C, n_w = (size_t)C * 9;
    float *host = malloc(n_x * sizeof(float)), *host_ref = malloc(n_x * sizeof(float));
    comine_rng rng;
    comine_rng_seed(&rng, 7, COMINE_STREAM_INIT);
    float *bufs[7];
    size_t sizes[7] = {n_x, n_w, (size_t)C, (size_t)C, (size_t)C, n_x, n_x};
    for (int b = 0; b < 7; b++) {
        bufs[b] = comine_backend_alloc(be, sizes[b] > n_x ? sizes[b] : n_x);
        bool slopes = b == 3 || b == 4; /* in [-0.1, 0.4), as the fixtures' */
        for (size_t i = 0; i < sizes[b]; i++) host[i] = slopes ? 0.5f * comine_rng_uniform(&rng) - 0.1f : comine_rng_normal(&rng);
        comine_backend_upload(be, bufs[b], host, sizes[b]);
    }
    float *x = bufs[0], *w = bufs[1], *bias = bufs[2], *al_in = bufs[3], *al = bufs[4], *res = bufs[5], *x_in = bufs[6];
    float *out = comine_backend_alloc(be, n_x), *ref = comine_backend_alloc(be, n_x);
    l.weight_version = 77;
    comine_conv2d_forward_fused_in(&l, out, x, al_in, w, bias, al, res, N);
    comine_prelu_forward(be, x_in, x, al_in, n_x / (size_t)C, C);
    unfused(&l, ref, x_in, w, bias, al, res, N);
    comine_backend_download(be, host, out, n_x);
    comine_backend_download(be, host_ref, ref, n_x);
    printf("-- dw threads: N=%d C=%d %dx%d, %d thread(s)\n", N, C, H, W, comine_num_threads());
    fx_check("dw threads: input PReLU, PReLU, residual vs unfused", host, host_ref, n_x, ATOL, RTOL);
    for (int b = 0; b < 7; b++) comine_backend_free(be, bufs[b]);
    comine_backend_free(be, out);
    comine_backend_free(be, ref);
    free(host);
    free(host_ref);
    comine_conv2d_free(&l);
}

static void test_case(const fx_file *f, const char *name)
{
    const fx_tensor *meta = get(f, name, "meta");
    if (!meta) {
        FX_EXPECT(0, "%s: missing from the fixture", name);
        return;
    }
    int v[10];
    for (int i = 0; i < 10; i++) v[i] = (int)meta->data[i];
    int N = v[0], C = v[1], H = v[2], W = v[3], OC = v[4], K = v[5], s = v[6], p = v[7], g = v[8], bias = v[9];
    const fx_tensor *x = get(f, name, "x"), *w = get(f, name, "w"), *al = get(f, name, "alpha"),
                    *res = get(f, name, "res");
    const fx_tensor *b = bias ? get(f, name, "b") : NULL;
    const fx_tensor *refs[4] = {get(f, name, "out"), get(f, name, "out_prelu"), get(f, name, "out_res"),
                                get(f, name, "out_both")};
    if (!x || !w || !al || !res || (bias && !b) || !refs[0] || !refs[1] || !refs[2] || !refs[3]) {
        FX_EXPECT(0, "%s: tensors missing from the fixture", name);
        return;
    }
    comine_conv2d l;
    comine_conv2d_init(&l, be, C, H, W, OC, K, K, s, p, g, bias != 0);
    printf("-- %s: N=%d C=%d %dx%d -> OC=%d %dx%d, k%d s%d p%d groups %d%s\n", name, N, C, H, W, OC, l.OH, l.OW, K, s,
           p, g, bias ? " bias" : "");
    size_t n_out = refs[0]->size, per_image = n_out / (size_t)N;
    FX_EXPECT(n_out == (size_t)N * l.OH * l.OW * OC, "%s: output size", name);
    float *dx = dev_copy(x), *dw = dev_copy(w), *db = b ? dev_copy(b) : NULL, *dal = dev_copy(al), *dres = dev_copy(res);
    float *out = comine_backend_alloc(be, n_out), *ref = comine_backend_alloc(be, n_out);
    float *host = malloc(n_out * sizeof(float)), *host_ref = malloc(n_out * sizeof(float));
    const char *what[4] = {"conv", "conv+prelu", "conv+residual", "conv+prelu+residual"};
    char label[160];
    for (int version = 0; version < 2; version++) {
        l.weight_version = version ? 1000 + (uint64_t)version : 0;
        for (int e = 0; e < 4; e++) {
            const float *a = e & 1 ? dal : NULL, *r = e & 2 ? dres : NULL;
            /* a batch of one first (another cached entry of the plan), then the whole batch */
            comine_conv2d_forward_fused(&l, out, dx, dw, db, a, r, 1);
            comine_backend_download(be, host, out, per_image);
            snprintf(label, sizeof label, "%s %s N=1 v%d", name, what[e], version);
            fx_check(label, host, refs[e]->data, per_image, ATOL, RTOL);
            comine_conv2d_forward_fused(&l, out, dx, dw, db, a, r, N);
            comine_backend_download(be, host, out, n_out);
            snprintf(label, sizeof label, "%s %s vs PyTorch v%d", name, what[e], version);
            fx_check(label, host, refs[e]->data, n_out, ATOL, RTOL);
            unfused(&l, ref, dx, dw, db, a, r, N);
            comine_backend_download(be, host_ref, ref, n_out);
            snprintf(label, sizeof label, "%s %s vs unfused v%d", name, what[e], version);
            fx_check(label, host, host_ref, n_out, ATOL, RTOL);
        }
    }
    /* where the 1x1 kernel runs, its order exactly (which also shows that it ran) */
    if (expect_1x1_kernel(&l)) {
        l.weight_version = 2000;
        comine_conv2d_forward_fused(&l, out, dx, dw, db, dal, dres, N);
        comine_backend_download(be, host, out, n_out);
        conv1x1_fmaf(host_ref, x->data, w->data, b ? b->data : NULL, al->data, res->data, n_out / (size_t)OC, C, OC);
        size_t differ = 0;
        for (size_t i = 0; i < n_out; i++) differ += memcmp(&host[i], &host_ref[i], sizeof(float)) != 0;
        FX_EXPECT(differ == 0, "%s: 1x1 kernel: %zu of %zu outputs differ from its order in scalar code", name, differ,
                  n_out);
        printf("   1x1 kernel: %zu outputs the same bits as its order in scalar code\n", n_out);
    }
    /* a PReLU on the input inside the conv, where the backend says it does one: against
     * PyTorch and against a PReLU pass before the unfused path */
    bool fuses = comine_conv2d_fuses_input_prelu(&l);
    FX_EXPECT(fuses == expect_input_prelu(&l), "%s: input PReLU fused %d, expected %d", name, fuses,
              expect_input_prelu(&l));
    const fx_tensor *al_in = get(f, name, "alpha_in"), *ref_in = get(f, name, "out_in"),
                    *ref_in_both = get(f, name, "out_in_both");
    if (fuses && al_in && ref_in && ref_in_both) {
        float *dal_in = dev_copy(al_in), *x_in = comine_backend_alloc(be, x->size);
        comine_prelu_forward(be, x_in, dx, dal_in, x->size / (size_t)C, C);
        for (int version = 0; version < 2; version++) {
            l.weight_version = version ? 3000 : 0;
            for (int e = 0; e < 2; e++) {
                const float *a = e ? dal : NULL, *r = e ? dres : NULL;
                comine_conv2d_forward_fused_in(&l, out, dx, dal_in, dw, db, a, r, N);
                comine_backend_download(be, host, out, n_out);
                snprintf(label, sizeof label, "%s input PReLU%s vs PyTorch v%d", name, e ? ", PReLU, residual" : "",
                         version);
                fx_check(label, host, (e ? ref_in_both : ref_in)->data, n_out, ATOL, RTOL);
                unfused(&l, ref, x_in, dw, db, a, r, N);
                comine_backend_download(be, host_ref, ref, n_out);
                snprintf(label, sizeof label, "%s input PReLU%s vs unfused v%d", name, e ? ", PReLU, residual" : "",
                         version);
                fx_check(label, host, host_ref, n_out, ATOL, RTOL);
            }
        }
        comine_backend_free(be, dal_in);
        comine_backend_free(be, x_in);
    } else if (fuses) {
        FX_EXPECT(0, "%s: input PReLU tensors missing from the fixture", name);
    }
    /* kept weights must follow: the weights scaled by 2 under a new version, then the
     * original ones again from another buffer under that same version */
    l.weight_version = 5000;
    comine_conv2d_forward_fused(&l, out, dx, dw, db, NULL, NULL, N);
    float *w2 = malloc(w->size * sizeof(float));
    for (size_t i = 0; i < w->size; i++) w2[i] = 2.0f * w->data[i];
    comine_backend_upload(be, dw, w2, w->size);
    l.weight_version = 5001;
    comine_conv2d_forward_fused(&l, out, dx, dw, db, NULL, NULL, N);
    unfused(&l, ref, dx, dw, db, NULL, NULL, N);
    comine_backend_download(be, host, out, n_out);
    comine_backend_download(be, host_ref, ref, n_out);
    snprintf(label, sizeof label, "%s new version: new weights", name);
    fx_check(label, host, host_ref, n_out, 2 * ATOL, RTOL);
    float *dw_again = dev_copy(w);
    comine_conv2d_forward_fused(&l, out, dx, dw_again, db, NULL, NULL, N);
    comine_backend_download(be, host, out, n_out);
    snprintf(label, sizeof label, "%s new pointer: its weights", name);
    fx_check(label, host, refs[0]->data, n_out, ATOL, RTOL);
    comine_conv2d_forward_fused(&l, out, dx, dw_again, db, NULL, NULL, 0); /* N = 0: nothing */
    free(w2);
    free(host);
    free(host_ref);
    comine_backend_free(be, dx);
    comine_backend_free(be, dw);
    comine_backend_free(be, dw_again);
    if (db) comine_backend_free(be, db);
    comine_backend_free(be, dal);
    comine_backend_free(be, dres);
    comine_backend_free(be, out);
    comine_backend_free(be, ref);
    comine_conv2d_free(&l);
}

int main(void)
{
    const char *cases[] = {"pairs3x3", "pairs3x3_s2", "pairs3x3_wide", "pairs3x3_many", "dense1x1",    "dense3x3",
                           "dw3x3_s2", "dw3x3",       "dw7x7_gdc",     "dw3x3_s2_odd",  "rgb3x3_s2",   "rgb3x3_wide",
                           "dw3x3_c24", "dense3x3_wide", "dense3x3_s2", "dense1x1_panels", "dense1x1_chunks",
                           "rgb3x3_c16", "rgb3x3_c16_nopad", "rgb3x3_c32_s2", "dense3x3_c16_wf4",
                           "dense3x3_c16_nobias"};
    fx_file f;
    if (fx_load(&f, fx_path("nn_fused.bin"))) return 1;
    be = comine_backend_cpu();
    int level = 1;
#ifdef COMINE_CPU_X86
    level = comine_cpu_x86_level();
#endif
    printf("backend: %s, %d thread(s), x86 kernel level %d\n", comine_backend_name(be), comine_num_threads(), level);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_case(&f, cases[i]);
    dw_threads_case();
    /* a backend without the fused entry: nn.h's conv, PReLU and add in sequence */
    comine_backend plain = *comine_backend_cpu();
    plain.conv_forward_fused = NULL;
    be = &plain;
    printf("backend without a fused forward:\n");
    test_case(&f, "dense3x3");
    test_case(&f, "pairs3x3");
    test_case(&f, "dw3x3");
    fx_free(&f);
    return fx_finish("test_nn_fused");
}

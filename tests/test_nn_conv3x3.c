/* test_nn_conv3x3.c: the dense 3x3 convolutions that the CPU backend runs on blocked
 * activations on AVX-512: stride 1 through oneDNN's Winograd kernels (cpu_conv_wino.c), the
 * weight gradient of stride 2 through the blocked direct kernel (cpu_conv_blocked.c).
 * Forward, input gradient (written and accumulated), weight and bias gradients, against
 * float64 sums computed here, by the default path and with NHWC only (COMINE_CONV_NHWC=1),
 * on shapes that take the blocked paths and on shapes left to the NHWC kernels (fewer than
 * 32 channels, or 64 for stride 2; images smaller than one 4x4 tile), which must give the
 * same bits both ways.  Winograd's bits differ from NHWC's in every pass (else it was not
 * taken); the stride-2 weight gradient runs the same oneDNN kernel on either layout, and
 * its bits came out the same here (printed, not required).
 * The eval forward (comine_conv2d_forward_fused) too, against the same sums: on AVX-512,
 * stride 1 with 16 to 128 channels takes cpu_conv_wf4.c's F(4x4, 3x3), whose bits must
 * differ from NHWC's (up to 23 eps S measured, at 4x4 images); there, with a per-channel
 * affine map on the input inside it (comine_conv2d_forward_fused_affine: an eval batch norm
 * handed over), the bits of the plain eval forward of the mapped input.
 * Without AVX-512, stride 1 with 32 channels or more takes cpu_conv_wf2.c's F(2x2, 3x3) in
 * the forward and the input gradient instead (bits differ from NHWC's there, not in the
 * weight gradient); every other shape the NHWC kernels, the same bits both ways.
 * Tolerance: each result is a sum of products; with S the sum of their absolute values,
 * |got - exact| <= 64 eps S + 1e-30 (eps = 2^-24).  A direct kernel's error is at most
 * (terms) eps S, in practice a small multiple of eps S (the order of additions); the
 * Winograd transforms add and subtract sums of up to 36 terms with coefficients up to 8, so
 * their error is larger.  Measured here (the figures are printed): direct up to 6 eps S,
 * Winograd up to 14.5 (input gradient at 7x7; weight gradient up to 8).  One product
 * missing or counted twice is an error of about S / (C K K) >= S / 576 at these sizes,
 * 2^24 / 576 > 400 times the bound. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_impl.h"
#include "comine/nn.h"
#include "core/cpu_dispatch.h"
#include "fixture.h"

#define FACTOR 64.0
#define EPS32 5.9604644775390625e-08

static int N, C, H, W, OC, S, OH, OW;
enum { K = 3 };

static uint64_t rng = 88172645463325252ull;
static float uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *x, *wt, *bias, *dy;
static double *y_ref, *y_abs, *dx_ref, *dx_abs, *dw_ref, *dw_abs, *db_ref, *db_abs;

/* the exact sums and the sums of |products| (NHWC activations, weights (OC, C, K, K), stride
 * S, padding 1) */
static void reference(void)
{
    for (int n = 0; n < N; n++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int o = 0; o < OC; o++) {
                    size_t yi = (((size_t)n * OH + oh) * OW + ow) * OC + o;
                    double s = bias[o], a = fabs(bias[o]);
                    for (int kh = 0; kh < K; kh++)
                        for (int kw = 0; kw < K; kw++) {
                            int ih = oh * S + kh - 1, iw = ow * S + kw - 1;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                            for (int c = 0; c < C; c++) {
                                size_t xi = (((size_t)n * H + ih) * W + iw) * C + c;
                                size_t wi = (((size_t)o * C + c) * K + kh) * K + kw;
                                double p = (double)x[xi] * wt[wi], q = (double)dy[yi] * wt[wi];
                                double r = (double)dy[yi] * x[xi];
                                s += p, a += fabs(p);
                                dx_ref[xi] += q, dx_abs[xi] += fabs(q);
                                dw_ref[wi] += r, dw_abs[wi] += fabs(r);
                            }
                        }
                    y_ref[yi] = s, y_abs[yi] = a;
                    db_ref[o] += dy[yi], db_abs[o] += fabs(dy[yi]);
                }
}

/* got - offset against ref within FACTOR eps S; returns the largest |err| / (eps S) */
static double check(const char *what, const float *got, float offset, const double *ref, const double *abs_sum,
                    size_t n)
{
    double worst = 0;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - offset - ref[i]);
        double bound = FACTOR * EPS32 * (abs_sum[i] + fabs(offset)) + 1e-30;
        double r = err / (EPS32 * (abs_sum[i] + fabs(offset)) + 1e-30);
        if (r > worst) worst = r;
        if (err > bound && bad++ == 0) first = i;
    }
    if (bad) {
        printf("FAIL %-44s %zu of %zu beyond %.0f eps S (first [%zu]: %.9g vs %.9g)\n", what, bad, n, FACTOR, first,
               (double)got[first] - offset, ref[first]);
        fx_fail_count++;
    } else {
        printf("ok   %-44s n=%-6zu max |err| = %.2f eps S\n", what, n, worst);
    }
    return worst;
}

/* one path (NHWC only where nhwc, else the default): its results into y, dx, dw, and the
 * eval forward's (comine_conv2d_forward_fused with the bias, weights kept by the plan) into ye */
static void run_path(bool nhwc, float *y, float *dx, float *dw, float *ye)
{
    setenv("COMINE_CONV_NHWC", nhwc ? "1" : "0", 1);
    const comine_backend *be = comine_backend_cpu();
    comine_conv2d l;
    comine_conv2d_init(&l, be, C, H, W, OC, K, K, S, 1, 1, true);
    const size_t nx = (size_t)N * H * W * C, ny = (size_t)N * OH * OW * OC, nw = (size_t)OC * C * K * K;
    float *db = malloc(OC * sizeof *db);
    char what[96];
    const char *name = nhwc ? "COMINE_CONV_NHWC=1" : "default";
    comine_conv2d_forward(&l, y, x, wt, bias, N);
    snprintf(what, sizeof what, "%s forward", name);
    check(what, y, 0, y_ref, y_abs, ny);
    l.weight_version = 1;
    for (int rep = 0; rep < 2; rep++) { /* the second with the weights the plan kept */
        comine_conv2d_forward_fused(&l, ye, x, wt, bias, NULL, NULL, N);
        snprintf(what, sizeof what, "%s eval forward%s", name, rep ? " (kept weights)" : "");
        check(what, ye, 0, y_ref, y_abs, ny);
    }
    if (!nhwc && comine_conv2d_fuses_input_affine(&l)) {
        /* an affine map on the input inside it (an eval batch norm handed over): the same
         * bits as the plain eval forward of fmaf(x, scale, shift), the padding zero */
        size_t n_in = (size_t)N * H * W * C;
        float *sc = malloc(C * sizeof *sc), *sh = malloc(C * sizeof *sh), *xs = malloc(n_in * sizeof *xs);
        float *ya = malloc(ny * sizeof *ya), *yp = malloc(ny * sizeof *yp);
        for (int c = 0; c < C; c++) sc[c] = 0.5f + 0.75f * (uniform() + 1.0f), sh[c] = uniform();
        for (size_t i = 0; i < n_in; i++) xs[i] = fmaf(x[i], sc[i % C], sh[i % C]);
        comine_conv2d_forward_fused(&l, yp, xs, wt, bias, NULL, NULL, N);
        comine_conv2d_forward_fused_affine(&l, ya, x, sc, sh, wt, bias, NULL, NULL, N);
        FX_EXPECT(memcmp(ya, yp, ny * sizeof *ya) == 0, "eval forward with the input's affine map: the bits of the "
                  "plain eval forward of fmaf(x, scale, shift)");
        free(sc), free(sh), free(xs), free(ya), free(yp);
    }
    l.weight_version = 0;
    /* accumulated onto 0.5 (input) and -0.25 (weights), 1 (bias) */
    for (size_t i = 0; i < nx; i++) dx[i] = 0.5f;
    for (size_t i = 0; i < nw; i++) dw[i] = -0.25f;
    for (int i = 0; i < OC; i++) db[i] = 1.0f;
    comine_conv2d_backward(&l, dx, dw, db, dy, x, wt, N);
    snprintf(what, sizeof what, "%s dinp (accumulated onto 0.5)", name);
    check(what, dx, 0.5f, dx_ref, dx_abs, nx);
    snprintf(what, sizeof what, "%s dweight (accumulated onto -0.25)", name);
    check(what, dw, -0.25f, dw_ref, dw_abs, nw);
    snprintf(what, sizeof what, "%s dbias (accumulated onto 1)", name);
    check(what, db, 1.0f, db_ref, db_abs, OC);
    /* written: dinp overwritten, whatever it held */
    float *dx2 = malloc(nx * sizeof *dx2);
    for (size_t i = 0; i < nx; i++) dx2[i] = 1e30f;
    for (size_t i = 0; i < nw; i++) dw[i] = 0;
    comine_conv2d_backward_overwrite(&l, dx2, dw, NULL, dy, x, wt, N);
    snprintf(what, sizeof what, "%s dinp (written)", name);
    check(what, dx2, 0, dx_ref, dx_abs, nx);
    snprintf(what, sizeof what, "%s dweight (onto 0, no dbias)", name);
    check(what, dw, 0, dw_ref, dw_abs, nw);
    /* each pass alone (the backend's separate entries, where the two together take one) */
    for (size_t i = 0; i < nx; i++) dx2[i] = 0.5f;
    comine_conv2d_backward(&l, dx2, NULL, NULL, dy, x, wt, N);
    snprintf(what, sizeof what, "%s dinp alone (accumulated onto 0.5)", name);
    check(what, dx2, 0.5f, dx_ref, dx_abs, nx);
    float *dw2 = malloc(nw * sizeof *dw2);
    for (size_t i = 0; i < nw; i++) dw2[i] = -0.25f;
    for (int i = 0; i < OC; i++) db[i] = 1.0f;
    comine_conv2d_backward(&l, NULL, dw2, db, dy, x, wt, N);
    snprintf(what, sizeof what, "%s dweight alone (accumulated onto -0.25)", name);
    check(what, dw2, -0.25f, dw_ref, dw_abs, nw);
    snprintf(what, sizeof what, "%s dbias alone (accumulated onto 1)", name);
    check(what, db, 1.0f, db_ref, db_abs, OC);
    free(dw2);
    free(dx2);
    free(db);
    comine_conv2d_free(&l);
}

static float *random_floats(size_t n)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = uniform();
    return p;
}

/* one shape: both paths against the float64 sums; on AVX-512 the default's bits must differ
 * from NHWC's in every pass where the shape takes Winograd (blocked, stride 1), and be the
 * same where it takes no blocked path */
static void test_shape(int n, int c, int h, int w, int oc, int stride, bool blocked)
{
    N = n, C = c, H = h, W = w, OC = oc, S = stride;
    OH = (H + 2 - K) / S + 1, OW = (W + 2 - K) / S + 1;
    printf("-- N=%d C=%d %dx%d -> OC=%d %dx%d, 3x3 stride %d padding 1, bias\n", N, C, H, W, OC, OH, OW, S);
    const size_t nx = (size_t)N * H * W * C, ny = (size_t)N * OH * OW * OC, nw = (size_t)OC * C * K * K;
    x = random_floats(nx), wt = random_floats(nw), bias = random_floats((size_t)OC), dy = random_floats(ny);
    y_ref = calloc(ny, sizeof(double)), y_abs = calloc(ny, sizeof(double));
    dx_ref = calloc(nx, sizeof(double)), dx_abs = calloc(nx, sizeof(double));
    dw_ref = calloc(nw, sizeof(double)), dw_abs = calloc(nw, sizeof(double));
    db_ref = calloc((size_t)OC, sizeof(double)), db_abs = calloc((size_t)OC, sizeof(double));
    reference();
    float *y_b = malloc(ny * sizeof *y_b), *y_n = malloc(ny * sizeof *y_n);
    float *ye_b = malloc(ny * sizeof *ye_b), *ye_n = malloc(ny * sizeof *ye_n);
    float *dx_b = malloc(nx * sizeof *dx_b), *dx_n = malloc(nx * sizeof *dx_n);
    float *dw_b = malloc(nw * sizeof *dw_b), *dw_n = malloc(nw * sizeof *dw_n);
    run_path(false, y_b, dx_b, dw_b, ye_b);
    run_path(true, y_n, dx_n, dw_n, ye_n);
    int level = 1;
#ifdef COMINE_CPU_X86
    level = comine_cpu_x86_level();
#endif
    bool avx512 = level >= 4;
    /* without AVX-512, cpu_conv_wf2.c's F(2x2, 3x3) runs the forward and the input gradient */
    bool wf2 = !avx512 && S == 1 && C >= 32 && OC >= 32 && H >= 2 && W >= 2;
    bool y_differ = memcmp(y_b, y_n, ny * sizeof *y_b) != 0, dx_differ = memcmp(dx_b, dx_n, nx * sizeof *dx_b) != 0;
    bool dw_differ = memcmp(dw_b, dw_n, nw * sizeof *dw_b) != 0;
    if (avx512 && blocked && S == 1)
        FX_EXPECT(y_differ && dx_differ && dw_differ, "AVX-512: Winograd's bits must differ from NHWC's in every pass");
    else if (avx512 && blocked)
        printf("     stride 2: the blocked weight gradient's bits %s NHWC's\n", dw_differ ? "differ from" : "are");
    else if (avx512)
        FX_EXPECT(!y_differ && !dx_differ && !dw_differ, "a shape the NHWC kernels run: both paths, the same bits");
    else if (wf2)
        FX_EXPECT(y_differ && dx_differ && !dw_differ, "no AVX-512: F(2x2, 3x3)'s forward and input gradient differ "
                  "from NHWC's bits, the weight gradient (NHWC's kernel) does not");
    else
        FX_EXPECT(!y_differ && !dx_differ && !dw_differ, "no AVX-512, a shape the NHWC kernels run: the same bits");
    /* on AVX-512, stride 1, 16 to 128 channels (multiples of 16), images of 4x4 or more: the
     * eval forward is cpu_conv_wf4.c's F(4x4, 3x3) */
    bool wf4 = avx512 && S == 1 && C % 16 == 0 && OC % 16 == 0 && C <= 128 && OC <= 128 && OH >= 4 && OW >= 4;
    bool ye_differ = memcmp(ye_b, ye_n, ny * sizeof *ye_b) != 0;
    if (wf4)
        FX_EXPECT(ye_differ, "AVX-512: F(4x4, 3x3)'s eval forward must differ from NHWC's bits");
    void *bufs[] = {x,      wt,     bias,   dy,     y_ref, y_abs, dx_ref, dx_abs, dw_ref, dw_abs,
                    db_ref, db_abs, y_b,    y_n,    dx_b,  dx_n,  dw_b,   dw_n,   ye_b,   ye_n};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
}

int main(void)
{
    test_shape(3, 32, 10, 11, 48, 1, true); /* edge tiles in both directions */
    test_shape(16, 32, 4, 4, 32, 1, true);  /* one tile */
    test_shape(16, 64, 7, 7, 32, 1, true);  /* iresnet's last stage at 112x112 */
    test_shape(4, 64, 13, 14, 64, 2, true); /* odd and even sizes, stride 2 */
    test_shape(2, 128, 8, 8, 96, 2, true);
    /* NHWC: smaller than one tile (iresnet's last stage at 32x32), 16 channels, stride 2 below 64 */
    test_shape(8, 64, 2, 2, 64, 1, false);
    test_shape(4, 16, 8, 8, 32, 1, false);
    /* 16 channels in: the eval forward by F(4x4, 3x3) on AVX-512; edge tiles, 16 and 48
     * output channels (panels of 32 and 16), more tiles than one chunk, and the smallest image */
    test_shape(3, 16, 10, 13, 16, 1, false);
    test_shape(2, 16, 9, 7, 48, 1, false);
    test_shape(2, 16, 64, 40, 16, 1, false);
    test_shape(1, 16, 4, 4, 32, 1, false);
    test_shape(2, 144, 6, 5, 32, 1, true); /* more than 128 channels: oneDNN's Winograd */
    test_shape(4, 32, 12, 12, 64, 2, false);
    return fx_finish("test_nn_conv3x3");
}

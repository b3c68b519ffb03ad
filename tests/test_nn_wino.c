/* test_nn_wino.c: the dense 3x3 stride-1 convolutions that the CPU backend runs through
 * oneDNN's Winograd kernels on AVX-512 (cpu_conv_wino.c): forward, input gradient (written
 * and accumulated) and weight and bias gradients, against float64 sums computed here, by
 * the default path and with the direct kernels (COMINE_WINOGRAD=0), on shapes that take
 * Winograd (the paths must then differ, else it was not taken) and on shapes left to the
 * direct kernels (fewer than 32 channels, images smaller than one 4x4 tile: the same bits).
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
#include "fixture.h"

#define FACTOR 64.0
#define EPS32 5.9604644775390625e-08

static int N, C, H, W, OC;
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

/* the exact sums and the sums of |products| (NHWC activations, weights (OC, C, K, K), padding 1) */
static void reference(void)
{
    for (int n = 0; n < N; n++)
        for (int oh = 0; oh < H; oh++)
            for (int ow = 0; ow < W; ow++)
                for (int o = 0; o < OC; o++) {
                    size_t yi = (((size_t)n * H + oh) * W + ow) * OC + o;
                    double s = bias[o], a = fabs(bias[o]);
                    for (int kh = 0; kh < K; kh++)
                        for (int kw = 0; kw < K; kw++) {
                            int ih = oh + kh - 1, iw = ow + kw - 1;
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

/* one path (Winograd where wino, else the direct kernels): its results into y, dx */
static void run_path(bool wino, float *y, float *dx)
{
    setenv("COMINE_WINOGRAD", wino ? "1" : "0", 1);
    const comine_backend *be = comine_backend_cpu();
    comine_conv2d l;
    comine_conv2d_init(&l, be, C, H, W, OC, K, K, 1, 1, 1, true);
    const size_t nx = (size_t)N * H * W * C, ny = (size_t)N * H * W * OC, nw = (size_t)OC * C * K * K;
    float *dw = malloc(nw * sizeof *dw), *db = malloc(OC * sizeof *db);
    char what[96];
    const char *name = wino ? "default" : "COMINE_WINOGRAD=0";
    comine_conv2d_forward(&l, y, x, wt, bias, N);
    snprintf(what, sizeof what, "%s forward", name);
    check(what, y, 0, y_ref, y_abs, ny);
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
    free(dx2);
    free(dw);
    free(db);
    comine_conv2d_free(&l);
}

static float *random_floats(size_t n)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = uniform();
    return p;
}

/* one shape: both paths against the float64 sums; on AVX-512 the paths must differ where
 * the shape takes Winograd (wino), and be the same where it does not */
static void test_shape(int n, int c, int h, int w, int oc, bool wino)
{
    N = n, C = c, H = h, W = w, OC = oc;
    printf("-- N=%d C=%d %dx%d -> OC=%d, 3x3 stride 1 padding 1, bias\n", N, C, H, W, OC);
    const size_t nx = (size_t)N * H * W * C, ny = (size_t)N * H * W * OC, nw = (size_t)OC * C * K * K;
    x = random_floats(nx), wt = random_floats(nw), bias = random_floats((size_t)OC), dy = random_floats(ny);
    y_ref = calloc(ny, sizeof(double)), y_abs = calloc(ny, sizeof(double));
    dx_ref = calloc(nx, sizeof(double)), dx_abs = calloc(nx, sizeof(double));
    dw_ref = calloc(nw, sizeof(double)), dw_abs = calloc(nw, sizeof(double));
    db_ref = calloc((size_t)OC, sizeof(double)), db_abs = calloc((size_t)OC, sizeof(double));
    reference();
    float *y_w = malloc(ny * sizeof *y_w), *y_d = malloc(ny * sizeof *y_d);
    float *dx_w = malloc(nx * sizeof *dx_w), *dx_d = malloc(nx * sizeof *dx_d);
    run_path(true, y_w, dx_w);
    run_path(false, y_d, dx_d);
    bool avx512 = false;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f");
#endif
    bool differ = memcmp(y_w, y_d, ny * sizeof *y_w) != 0 && memcmp(dx_w, dx_d, nx * sizeof *dx_w) != 0;
    if (avx512 && wino)
        FX_EXPECT(differ, "AVX-512: the Winograd path's forward and input gradient must differ from the direct ones");
    else if (avx512)
        FX_EXPECT(!differ, "a shape the direct kernels run: both paths must give the same bits");
    else
        printf("     no AVX-512: both paths are the direct kernels (%s)\n", differ ? "differ" : "identical");
    void *bufs[] = {x,      wt,     bias,   dy,     y_ref, y_abs, dx_ref, dx_abs,
                    dw_ref, dw_abs, db_ref, db_abs, y_w,   y_d,   dx_w,   dx_d};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
}

int main(void)
{
    test_shape(3, 32, 10, 11, 48, true); /* edge tiles in both directions */
    test_shape(16, 32, 4, 4, 32, true);  /* one tile */
    test_shape(16, 64, 7, 7, 32, true);  /* iresnet's last stage at 112x112 */
    /* the direct kernels: smaller than one tile (iresnet's last stage at 32x32), 16 channels */
    test_shape(8, 64, 2, 2, 64, false);
    test_shape(4, 16, 8, 8, 32, false);
    return fx_finish("test_nn_wino");
}

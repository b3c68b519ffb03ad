/* bench_conv.c: throughput of comine_conv2d forward and backward (data + weights) on
 * the CPU backend, for iresnet's typical 3x3 64->64 conv at 56x56 (or sizes given on
 * the command line: N C H W OC K stride pad groups reps), and of the eval forward with a
 * folded bias and a PReLU epilogue (the eval forward's conv-BN-PReLU unit), and, where the
 * backend applies a PReLU to the input inside the conv (depthwise layers), that against a
 * PReLU pass before it.  Prints GFLOP/s. */
#include <stdio.h>
#include <stdlib.h>

#include "comine/nn.h"

int main(int argc, char **argv)
{
    int v[10] = {32, 64, 56, 56, 64, 3, 1, 1, 1, 5};
    for (int i = 1; i < argc && i <= 10; i++) v[i - 1] = atoi(argv[i]);
    int N = v[0], C = v[1], H = v[2], W = v[3], OC = v[4], K = v[5], s = v[6], p = v[7], g = v[8], reps = v[9];
    const comine_backend *be = comine_backend_cpu();
    comine_conv2d l;
    comine_conv2d_init(&l, be, C, H, W, OC, K, K, s, p, g, false);
    comine_conv2d lf; /* the eval forward's folded conv: a bias, then PReLU */
    comine_conv2d_init(&lf, be, C, H, W, OC, K, K, s, p, g, true);
    lf.weight_version = 1;
    size_t n_in = (size_t)N * H * W * C, n_out = (size_t)N * l.OH * l.OW * OC, n_w = (size_t)OC * (C / g) * K * K;
    float *in = comine_backend_alloc(be, n_in), *out = comine_backend_alloc(be, n_out);
    float *w = comine_backend_alloc(be, n_w), *dw = comine_backend_alloc(be, n_w);
    float *din = comine_backend_alloc(be, n_in), *dout = comine_backend_alloc(be, n_out);
    float *bias = comine_backend_alloc(be, (size_t)OC), *alpha = comine_backend_alloc(be, (size_t)OC);
    comine_rng rng;
    comine_rng_seed(&rng, 1, COMINE_STREAM_INIT);
    for (size_t i = 0; i < n_in; i++) in[i] = comine_rng_normal(&rng);
    for (size_t i = 0; i < n_out; i++) dout[i] = comine_rng_normal(&rng);
    for (size_t i = 0; i < n_w; i++) w[i] = 0.05f * comine_rng_normal(&rng);
    for (int i = 0; i < OC; i++) {
        bias[i] = 0.1f * comine_rng_normal(&rng);
        alpha[i] = 0.25f;
    }
    double flops = 2.0 * N * l.OH * l.OW * OC * (C / g) * K * K;
    comine_conv2d_forward(&l, out, in, w, NULL, N); /* plans */
    comine_conv2d_backward(&l, din, dw, NULL, dout, in, w, N);
    double t0 = comine_now();
    for (int r = 0; r < reps; r++) comine_conv2d_forward(&l, out, in, w, NULL, N);
    double t1 = comine_now();
    for (int r = 0; r < reps; r++) comine_conv2d_backward(&l, din, NULL, NULL, dout, in, w, N);
    double t2 = comine_now();
    for (int r = 0; r < reps; r++) comine_conv2d_backward(&l, NULL, dw, NULL, dout, in, w, N);
    double t3 = comine_now();
    comine_conv2d_forward_fused(&lf, out, in, w, bias, alpha, NULL, N);
    double t4 = comine_now();
    for (int r = 0; r < reps; r++) comine_conv2d_forward_fused(&lf, out, in, w, bias, alpha, NULL, N);
    double t5 = comine_now();
    /* the input PReLU: a pass of its own, or inside the conv where the backend fuses it */
    double t_pass = 0, t_in = 0;
    float *pre = comine_backend_alloc(be, n_in), *alpha_in = comine_backend_alloc(be, (size_t)C);
    for (int i = 0; i < C; i++) alpha_in[i] = 0.25f;
    comine_prelu_forward(be, pre, in, alpha_in, n_in / (size_t)C, C);
    double t6 = comine_now();
    for (int r = 0; r < reps; r++) comine_prelu_forward(be, pre, in, alpha_in, n_in / (size_t)C, C);
    t_pass = comine_now() - t6;
    bool fuses_in = comine_conv2d_fuses_input_prelu(&lf);
    if (fuses_in) {
        comine_conv2d_forward_fused_in(&lf, out, in, alpha_in, w, bias, alpha, NULL, N);
        double t7 = comine_now();
        for (int r = 0; r < reps; r++) comine_conv2d_forward_fused_in(&lf, out, in, alpha_in, w, bias, alpha, NULL, N);
        t_in = comine_now() - t7;
    }
    printf("conv %dx%d %d->%d %dx%d s%d groups %d, batch %d, %d thread(s): %.2f GFLOP per pass\n", K, K, C, OC, H, W, s,
           g, N, comine_num_threads(), flops * 1e-9);
    printf("forward          %7.1f ms  %6.1f GFLOP/s\n", 1e3 * (t1 - t0) / reps, flops * reps / (t1 - t0) * 1e-9);
    printf("backward data    %7.1f ms  %6.1f GFLOP/s\n", 1e3 * (t2 - t1) / reps, flops * reps / (t2 - t1) * 1e-9);
    printf("backward weights %7.1f ms  %6.1f GFLOP/s\n", 1e3 * (t3 - t2) / reps, flops * reps / (t3 - t2) * 1e-9);
    printf("eval + PReLU     %7.3f ms  %6.1f GFLOP/s\n", 1e3 * (t5 - t4) / reps, flops * reps / (t5 - t4) * 1e-9);
    printf("PReLU pass (in)  %7.3f ms\n", 1e3 * t_pass / reps);
    if (fuses_in)
        printf("eval, PReLU in and out %7.3f ms (against %.3f ms for the PReLU pass and eval + PReLU)\n",
               1e3 * t_in / reps, 1e3 * (t_pass + t5 - t4) / reps);
    comine_backend_free(be, pre);
    comine_backend_free(be, alpha_in);
    comine_conv2d_free(&l);
    comine_conv2d_free(&lf);
    float *bufs[] = {in, out, w, dw, din, dout, bias, alpha};
    for (int i = 0; i < 8; i++) comine_backend_free(be, bufs[i]);
    return 0;
}

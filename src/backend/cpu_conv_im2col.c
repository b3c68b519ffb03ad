/* cpu_conv_im2col.c: the eval forward of dense 3x3 stride-2 convolutions (iresnet's first
 * convolution of each stage) as one matrix product per chunk of output pixels, for CPUs
 * without AVX-512, where oneDNN 2.6 runs them on NHWC at 30-45% of the FMA peak:
 *   out = prelu(conv(in, weight) + bias, alpha) + residual
 * A chunk of P output pixels (consecutive in NHWC order) gathers its 3x3 windows into a
 * P x 9C matrix (zeros for the padding; with stride 2 that is 9/4 of the input's size in
 * all), multiplied by the (9C, OC) weights (kept while the caller's pointer and version
 * stay the same) straight into the output rows, where the epilogue runs while they are in
 * the cache.  Sums in OpenBLAS's order, over (kh, kw, c). */
#include "backend/cpu_conv_impl.h"
#include "core/cpu_dispatch.h"

#include <string.h>
#ifdef COMINE_HAVE_OPENMP
#include <omp.h>
#endif

enum { IM2COL_MIN_CHANNELS = 32, IM2COL_PIXELS_MIN = 64, IM2COL_PIXELS_MAX = 512 };
/* a chunk's gathered windows, in floats (1 MiB) */
#define IM2COL_CHUNK_FLOATS (256 * 1024)

bool comine_cpu_conv_im2col_supported(const comine_conv_geom *g)
{
    bool geometry = g->groups == 1 && g->KH == 3 && g->KW == 3 && g->stride == 2 && g->C >= IM2COL_MIN_CHANNELS &&
                    g->OC >= IM2COL_MIN_CHANNELS;
    if (!geometry || comine_cpu_conv_nhwc_only()) return false;
#ifdef COMINE_CPU_X86
    return comine_cpu_x86_level() < 4; /* AVX-512: oneDNN's direct kernel is fast there */
#else
    return true;
#endif
}

/* wt[(kh 3 + kw) C + c][oc] = weight[oc][c][kh][kw] */
static void rearrange_weights(float *wt, const float *weight, int C, int OC)
{
    for (int oc = 0; oc < OC; oc++)
        for (int c = 0; c < C; c++)
            for (int k = 0; k < 9; k++) wt[((size_t)k * C + c) * OC + oc] = weight[((size_t)oc * C + c) * 9 + k];
}

/* the windows of output pixels p0 .. p0 + P (flattened n, oy, ox) into A (P, 9C) */
static void gather(float *restrict A, const comine_conv_geom *g, const float *in, long p0, int P)
{
    const int C = g->C, S = g->stride;
    const size_t row = (size_t)9 * C;
    for (int t = 0; t < P; t++) {
        long pix = p0 + t;
        int n = (int)(pix / ((long)g->OH * g->OW)), r = (int)(pix % ((long)g->OH * g->OW));
        int y0 = (r / g->OW) * S - g->pad, x0 = (r % g->OW) * S - g->pad;
        float *a = A + (size_t)t * row;
        for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++) {
                int y = y0 + kh, x = x0 + kw;
                float *dst = a + (size_t)(kh * 3 + kw) * C;
                if (y < 0 || y >= g->H || x < 0 || x >= g->W)
                    memset(dst, 0, sizeof(float) * (size_t)C);
                else
                    memcpy(dst, in + (((size_t)n * g->H + y) * g->W + x) * C, sizeof(float) * (size_t)C);
            }
    }
}

/* rows (P, OC) of out: + bias, PReLU, + residual (each may be NULL) */
COMINE_CPU_CLONES
static void epilogue_rows(float *out, const float *bias, const float *alpha, const float *residual, int P, int OC)
{
    for (int t = 0; t < P; t++) {
        float *y = out + (size_t)t * OC;
        if (bias)
            for (int oc = 0; oc < OC; oc++) y[oc] += bias[oc];
        if (alpha)
            for (int oc = 0; oc < OC; oc++) {
                float v = y[oc], pos = v > 0.0f ? v : 0.0f, neg = v > 0.0f ? 0.0f : v;
                y[oc] = pos + alpha[oc] * neg;
            }
        if (residual)
            for (int oc = 0; oc < OC; oc++) y[oc] += residual[(size_t)t * OC + oc];
    }
}

void comine_cpu_conv_im2col_forward(conv_plan *p, float *out, const float *in, const float *weight,
                                    uint64_t weight_version, const float *bias, const float *alpha,
                                    const float *residual, int N)
{
    const comine_conv_geom *g = &p->g;
    const int C = g->C, OC = g->OC;
    float *wt = comine_cpu_plan_weights(p, weight, weight_version, (size_t)9 * C * OC);
    if (wt) rearrange_weights(wt, weight, C, OC);
    wt = p->own_w;
    const long pixels = (long)N * g->OH * g->OW;
    int P = IM2COL_CHUNK_FLOATS / (9 * C);
    P = P < IM2COL_PIXELS_MIN ? IM2COL_PIXELS_MIN : P > IM2COL_PIXELS_MAX ? IM2COL_PIXELS_MAX : P;
    const long chunks = (pixels + P - 1) / P;
#ifdef COMINE_HAVE_OPENMP
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (threads > chunks) threads = (int)chunks;
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
    {
        float *A = comine_cpu_thread_buf(CPU_BUF_OWN_CONV, (size_t)P * 9 * C);
        int t = 0, nt = 1;
#ifdef COMINE_HAVE_OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        for (long k = chunks * t / nt; k < chunks * (t + 1) / nt; k++) {
            long p0 = k * P;
            int cnt = (int)(pixels - p0 < P ? pixels - p0 : P);
            gather(A, g, in, p0, cnt);
            float *y = out + (size_t)p0 * OC;
            comine_cpu_gemm(0, 0, cnt, OC, 9 * C, 1.0f, A, 9 * C, wt, OC, 0.0f, y, OC);
            epilogue_rows(y, bias, alpha, residual ? residual + (size_t)p0 * OC : NULL, cnt, OC);
        }
    }
}

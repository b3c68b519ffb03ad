/* cpu_conv_wf2.c: dense 3x3 stride-1 convolutions with padding 1 (iresnet's) by Winograd's
 * F(2x2, 3x3), for CPUs where oneDNN has no Winograd kernel (those without AVX-512;
 * cpu_conv_wino.c runs oneDNN's on the others).  The forward, eval and training, with the
 * epilogue applied in the output transform:
 *   out = prelu(conv(in, weight) + bias, alpha) + residual
 * and the input gradient, which is the same convolution of the output gradient with the
 * weights' in and out channels swapped and the kernel turned by 180 degrees.  (The weight
 * gradient stays oneDNN's.)
 * Each 4x4 input tile (stride 2, NHWC) becomes 16 vectors of C values, V = B^T d B; the 16
 * products M[xi] = V[xi] U[xi] (tiles x C times C x OC, U = G g G^T the transformed weights,
 * kept while the caller's pointer and version stay the same) are OpenBLAS sgemm calls, and
 * each tile's 2x2 outputs are A^T M A.  2.25 times fewer multiplications than the direct
 * convolution; the transforms are passes over the channels that the compiler vectorises
 * (COMINE_CPU_CLONES).  The threads take chunks of tiles, small enough that a chunk's V and
 * M stay in the caches.
 * Rounding: the transforms add and subtract up to 4 values (and halve, exactly) before the
 * products, so each output carries a few more roundings than the direct sum's: tests
 * compare it at the same tolerance as the other kernels (test_nn_fused). */
#include "backend/cpu_conv_impl.h"
#include "core/cpu_dispatch.h"

#include <stdlib.h>
#include <string.h>
#ifdef COMINE_HAVE_OPENMP
#include <omp.h>
#endif

/* Below this many channels the transforms and the small products cost more than they save */
enum { WF2_MIN_CHANNELS = 32, WF2_TILES_MIN = 128, WF2_TILES_MAX = 2048 };
/* a chunk's V and M together, in floats (1 MiB) */
#define WF2_CHUNK_FLOATS (1024 * 1024)

bool comine_cpu_conv_wf2_supported(const comine_conv_geom *g)
{
    bool geometry = g->groups == 1 && g->KH == 3 && g->KW == 3 && g->stride == 1 && g->pad == 1 &&
                    g->C >= WF2_MIN_CHANNELS && g->OC >= WF2_MIN_CHANNELS && g->OH >= 2 && g->OW >= 2;
    if (!geometry || comine_cpu_conv_nhwc_only()) return false;
#ifdef COMINE_CPU_X86
    return comine_cpu_x86_level() < 4; /* AVX-512: oneDNN's Winograd (cpu_conv_wino.c) */
#else
    return true;
#endif
}

/* U[xi][c][oc] = (G g G^T)[xi] for g = weight[oc][c] (3x3), G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1];
 * flipped: the weights of the transposed convolution (backward data: in and out channels
 * swapped, the kernel turned by 180 degrees), U[xi][oc][c] from weight[oc][c] reversed */
static void transform_weights(float *U, const float *weight, int C, int OC, bool flipped)
{
    for (int oc = 0; oc < OC; oc++)
        for (int c = 0; c < C; c++) {
            const float *w = weight + ((size_t)oc * C + c) * 9;
            float k[9];
            for (int j = 0; j < 9; j++) k[j] = flipped ? w[8 - j] : w[j];
            float t[4][3]; /* G g */
            for (int j = 0; j < 3; j++) {
                t[0][j] = k[j];
                t[1][j] = 0.5f * (k[j] + k[3 + j] + k[6 + j]);
                t[2][j] = 0.5f * (k[j] - k[3 + j] + k[6 + j]);
                t[3][j] = k[6 + j];
            }
            size_t in = flipped ? (size_t)oc : (size_t)c, out = flipped ? (size_t)c : (size_t)oc;
            size_t n_in = flipped ? (size_t)OC : (size_t)C, n_out = flipped ? (size_t)C : (size_t)OC;
            for (int i = 0; i < 4; i++) {
                float u[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]), 0.5f * (t[i][0] - t[i][1] + t[i][2]),
                              t[i][2]};
                for (int j = 0; j < 4; j++) U[((size_t)(4 * i + j) * n_in + in) * n_out + out] = u[j];
            }
        }
}

typedef struct wf2_job {
    const comine_conv_geom *g;
    float *out;
    const float *in, *U, *bias, *alpha, *residual, *zero;
    bool residual_given;
    int TH, TW;
} wf2_job;

/* V[t][xi][c] = (B^T d B)[xi] of tiles t0 .. t0 + T, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] */
COMINE_CPU_CLONES
static void input_transform(const wf2_job *j, float *restrict V, long t0, int T)
{
    const comine_conv_geom *g = j->g;
    const int C = g->C, H = g->H, W = g->W;
    (void)T;
    for (int t = 0; t < T; t++) {
        long tile = t0 + t;
        int n = (int)(tile / ((long)j->TH * j->TW)), r = (int)(tile % ((long)j->TH * j->TW));
        int y0 = 2 * (r / j->TW) - 1, x0 = 2 * (r % j->TW) - 1;
        const float *d[16];
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                int y = y0 + a, x = x0 + b;
                d[4 * a + b] = y < 0 || y >= H || x < 0 || x >= W ? j->zero : j->in + (((size_t)n * H + y) * W + x) * C;
            }
        float *v = V + (size_t)t * 16 * C;
        const size_t plane = (size_t)C;
        for (int c = 0; c < C; c++) {
            float s[4][4]; /* B^T d: rows */
            for (int b = 0; b < 4; b++) {
                s[0][b] = d[b][c] - d[8 + b][c];
                s[1][b] = d[4 + b][c] + d[8 + b][c];
                s[2][b] = d[8 + b][c] - d[4 + b][c];
                s[3][b] = d[4 + b][c] - d[12 + b][c];
            }
            for (int a = 0; a < 4; a++) {
                v[(size_t)(4 * a + 0) * plane + c] = s[a][0] - s[a][2];
                v[(size_t)(4 * a + 1) * plane + c] = s[a][1] + s[a][2];
                v[(size_t)(4 * a + 2) * plane + c] = s[a][2] - s[a][1];
                v[(size_t)(4 * a + 3) * plane + c] = s[a][1] - s[a][3];
            }
        }
    }
}

/* out's 2x2 pixels of tiles t0 .. t0 + T = A^T M A, A^T = [1 1 1 0; 0 1 -1 -1], then bias,
 * PReLU and residual (j's bias, alpha and residual never NULL here: zeros, ones and zeros
 * stand in, which leave the values as they are); a pixel outside the image goes to `spill` */
COMINE_CPU_CLONES
static void output_transform(const wf2_job *j, const float *restrict M, long t0, int T, float *spill)
{
    const comine_conv_geom *g = j->g;
    const int OC = g->OC, OH = g->OH, OW = g->OW;
    const size_t plane = (size_t)OC;
    const float *restrict bias = j->bias, *restrict alpha = j->alpha;
    for (int t = 0; t < T; t++) {
        long tile = t0 + t;
        int n = (int)(tile / ((long)j->TH * j->TW)), r = (int)(tile % ((long)j->TH * j->TW));
        int y0 = 2 * (r / j->TW), x0 = 2 * (r % j->TW);
        float *y[4];
        const float *res[4];
        for (int k = 0; k < 4; k++) {
            int yy = y0 + k / 2, xx = x0 + k % 2;
            bool in = yy < OH && xx < OW;
            size_t o = (((size_t)n * OH + yy) * OW + xx) * OC;
            y[k] = in ? j->out + o : spill;
            res[k] = in && j->residual_given ? j->residual + o : j->zero;
        }
        const float *m = M + (size_t)t * 16 * OC;
        float *restrict y0p = y[0], *restrict y1p = y[1], *restrict y2p = y[2], *restrict y3p = y[3];
        for (int oc = 0; oc < OC; oc++) {
            float r0[4], r1[4]; /* rows of A^T M */
            for (int q = 0; q < 4; q++) {
                const float *col = m + (size_t)q * plane + oc;
                float m0 = col[0], m1 = col[4 * plane], m2 = col[8 * plane], m3 = col[12 * plane];
                r0[q] = m0 + m1 + m2;
                r1[q] = m1 - m2 - m3;
            }
            float v[4] = {r0[0] + r0[1] + r0[2], r0[1] - r0[2] - r0[3], r1[0] + r1[1] + r1[2], r1[1] - r1[2] - r1[3]};
            for (int k = 0; k < 4; k++) {
                float x = v[k] + bias[oc];
                float pos = x > 0.0f ? x : 0.0f, neg = x > 0.0f ? 0.0f : x;
                v[k] = pos + alpha[oc] * neg + res[k][oc];
            }
            y0p[oc] = v[0];
            y1p[oc] = v[1];
            y2p[oc] = v[2];
            y3p[oc] = v[3];
        }
    }
}

/* the convolution of geometry g (3x3, stride 1, pad 1) with transformed weights U */
static void wf2_run(const comine_conv_geom *g, float *out, const float *in, const float *U, const float *bias,
                    const float *alpha, const float *residual, int N)
{
    const int C = g->C, OC = g->OC;
    wf2_job job = {g, out, in, U, bias, alpha, residual, NULL, residual != NULL, (g->OH + 1) / 2, (g->OW + 1) / 2};
    const long tiles = (long)N * job.TH * job.TW;
    int T = WF2_CHUNK_FLOATS / (16 * (C + OC));
    T = T < WF2_TILES_MIN ? WF2_TILES_MIN : T > WF2_TILES_MAX ? WF2_TILES_MAX : T;
    const long chunks = (tiles + T - 1) / T;
#ifdef COMINE_HAVE_OPENMP
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (threads > chunks) threads = (int)chunks;
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
    {
        /* V, M, then zeros (max(C, OC)), ones (OC) and a spill row (OC) */
        int CM = C > OC ? C : OC;
        float *buf = comine_cpu_thread_buf(CPU_BUF_OWN_CONV, (size_t)16 * T * (C + OC) + (size_t)CM + 2 * (size_t)OC);
        float *V = buf, *M = buf + (size_t)16 * T * C, *zero = M + (size_t)16 * T * OC, *ones = zero + CM;
        float *spill = ones + OC;
        memset(zero, 0, sizeof(float) * (size_t)CM);
        for (int c = 0; c < OC; c++) ones[c] = 1.0f;
        wf2_job mine = job;
        mine.zero = zero;
        if (!mine.bias) mine.bias = zero;
        if (!mine.alpha) mine.alpha = ones;
        int t = 0, nt = 1;
#ifdef COMINE_HAVE_OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        for (long k = chunks * t / nt; k < chunks * (t + 1) / nt; k++) {
            long t0 = k * T;
            int cnt = (int)(tiles - t0 < T ? tiles - t0 : T);
            input_transform(&mine, V, t0, cnt);
            for (int xi = 0; xi < 16; xi++)
                comine_cpu_gemm(0, 0, cnt, OC, C, 1.0f, V + (size_t)xi * C, 16 * C, mine.U + (size_t)xi * C * OC, OC,
                                0.0f, M + (size_t)xi * OC, 16 * OC);
            output_transform(&mine, M, t0, cnt, spill);
        }
    }
}

void comine_cpu_conv_wf2_forward(conv_plan *p, float *out, const float *in, const float *weight,
                                 uint64_t weight_version, const float *bias, const float *alpha,
                                 const float *residual, int N)
{
    const comine_conv_geom *g = &p->g;
    float *U = comine_cpu_plan_weights(p, weight, weight_version, (size_t)16 * g->C * g->OC);
    if (U) transform_weights(U, weight, g->C, g->OC, false);
    wf2_run(g, out, in, p->own_w, bias, alpha, residual, N);
}

void comine_cpu_conv_wf2_backward_data(conv_plan *p, float *dinp, const float *dout, const float *weight, int N)
{
    comine_conv_geom t = p->g; /* the transposed convolution: OC -> C channels, the same size */
    t.C = p->g.OC;
    t.OC = p->g.C;
    t.H = p->g.OH;
    t.W = p->g.OW;
    t.OH = p->g.H;
    t.OW = p->g.W;
    t.has_bias = false;
    float *U = comine_cpu_plan_weights(p, NULL, 0, (size_t)16 * t.C * t.OC);
    transform_weights(U, weight, p->g.C, p->g.OC, true);
    wf2_run(&t, dinp, dout, U, NULL, NULL, NULL, N);
}

/* cpu_conv_wf4.c: the eval forward of dense 3x3 stride-1 convolutions with padding 1, 16
 * to 128 channels in and out (multiples of 16), by Winograd's F(4x4, 3x3) on AVX-512, with
 * the epilogue applied in the output transform:
 *   out = prelu(conv(in, weight) + bias, alpha) + residual
 * It replaces oneDNN's kernels there: at 16 channels oneDNN runs them direct (its Winograd
 * kernel's blocked layout costs more in reorders than it saves: cpu_conv_wino.c), from 32
 * on its Winograd kernel between reorders and a separate epilogue pass.  Measured one
 * thread, 8 images, eval with bias and PReLU (bench_conv), ms, oneDNN -> this kernel:
 * 16 -> 16 at 64x64 0.92 -> 0.59, 16 -> 32 at 32x32 0.43 -> 0.20, 32 -> 32 at 16x16
 * 0.14 -> 0.07, 64 -> 128 at 8x8 0.16 -> 0.12; 2 images, 64 at 56x56 1.0-1.3 -> 0.65,
 * 128 at 28x28 0.76 -> 0.60-0.65.  Above 128 channels the transformed weights (36 C OC
 * floats) outgrow the caches: 256 at 14x14 gained (0.91-1.07 -> 0.80-0.82), at 8x8 and
 * 4x4 it came out either way, and 512 at 7x7 lost (2.9 -> 3.2-4.1).
 * Each 6x6 input tile (stride 4, NHWC, 16 channels to a vector) becomes 36 vectors per 16
 * channels, V = B^T d B; the 36 products M[xi] = V[xi] U[xi] (tiles x C times C x OC, U =
 * G g G^T the transformed weights, kept while the caller's pointer and version stay the
 * same) run in register tiles of 12 tiles by 32 (or 16) output channels, each input
 * channel's value broadcast from memory; each tile's 4x4 outputs are A^T M A.  4 times
 * fewer multiplications in the products than the direct convolution's, and the
 * transformed tiles 2.25 times the input's size (F(2x2, 3x3)'s: 4 times).
 * The interpolation points are 0, 1, -1, 1/2, -2 and infinity, not the usual 0, +-1, +-2:
 * their transforms have coefficients up to 2.5 instead of 5 and 8 (in the output
 * transform, 8 and 1/8), which halves the largest rounding error (12 against 25 times eps
 * times the sum of the products' magnitudes, 16 channels, measured in float32 against
 * float64 over random tiles); test_nn_conv3x3 bounds it at 64 (measured there: up to 23,
 * at 4x4 images, where padding makes most of a tile).
 * Every tile's outputs come from the same operations in the same order wherever the tile
 * lies and whatever the batch or thread: a given image's outputs do not depend on the
 * batch it is in.  COMINE_CONV_NHWC=1 turns the path off (oneDNN's direct kernel). */
#include "backend/cpu_conv_impl.h"
#include "core/cpu_dispatch.h"

#include <stdlib.h>
#include <string.h>
#ifdef COMINE_HAVE_OPENMP
#include <omp.h>
#endif
#ifdef COMINE_CPU_X86
#include <immintrin.h>
#endif

/* 16 channels per vector; a register tile of 12 tiles by 2 vectors of output channels */
enum { LANES = 16, ROWS = 12, XI = 36, MAX_CHANNELS = 128 };
/* a chunk's V and M together, in floats (512 KiB: the L2 cache) */
#define CHUNK_FLOATS (128 * 1024)

bool comine_cpu_conv_wf4_supported(const comine_conv_geom *g)
{
    bool geometry = g->groups == 1 && g->KH == 3 && g->KW == 3 && g->stride == 1 && g->pad == 1 &&
                    g->C % LANES == 0 && g->OC % LANES == 0 && g->C <= MAX_CHANNELS && g->OC <= MAX_CHANNELS &&
                    g->OH >= 4 && g->OW >= 4;
    if (!geometry || comine_cpu_conv_nhwc_only()) return false;
#ifdef COMINE_CPU_X86
    return comine_cpu_x86_level() >= 4;
#else
    return false;
#endif
}

#ifdef COMINE_CPU_X86
/* U[xi][c][oc] = (G g G^T)[xi] for g = weight[oc][c] (3x3), in double, then rounded;
 * G's rows: the points 0, 1, -1, 1/2, -2 (p^k over the product of p - q for the other
 * points q), then infinity */
static void transform_weights(float *U, const float *weight, int C, int OC)
{
    static const double G[6][3] = {{1.0, 0.0, 0.0},
                                   {1.0 / 3, 1.0 / 3, 1.0 / 3},
                                   {-1.0 / 3, 1.0 / 3, -1.0 / 3},
                                   {-16.0 / 15, -8.0 / 15, -4.0 / 15},
                                   {1.0 / 15, -2.0 / 15, 4.0 / 15},
                                   {0.0, 0.0, 1.0}};
    for (int oc = 0; oc < OC; oc++)
        for (int c = 0; c < C; c++) {
            const float *w = weight + ((size_t)oc * C + c) * 9;
            double t[6][3]; /* G g */
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 3; j++) t[i][j] = G[i][0] * w[j] + G[i][1] * w[3 + j] + G[i][2] * w[6 + j];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) {
                    double u = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
                    U[((size_t)(6 * i + j) * C + c) * OC + oc] = (float)u;
                }
        }
}

/* B^T applied to d0 .. d5 (B^T's rows: 1 -3/2 -2 3/2 1 0; 0 -1 1/2 5/2 1 0; 0 1 -5/2 1/2 1 0;
 * 0 -2 -1 2 1 0; 0 1/2 -1 -1/2 1 0; 0 1 -3/2 -2 3/2 1) */
#define WF4_BT(d0, d1, d2, d3, d4, d5, t0, t1, t2, t3, t4, t5)                                                      \
    {                                                                                                                \
        const __m512 s13 = _mm512_sub_ps(d3, d1), e42 = _mm512_sub_ps(d4, d2);                                       \
        t0 = _mm512_fmadd_ps(c1_5, s13, _mm512_fmadd_ps(cm2, d2, _mm512_add_ps(d0, d4)));                            \
        t1 = _mm512_fmadd_ps(c2_5, d3, _mm512_fmadd_ps(c0_5, d2, _mm512_sub_ps(d4, d1)));                            \
        t2 = _mm512_fmadd_ps(c0_5, d3, _mm512_fmadd_ps(cm2_5, d2, _mm512_add_ps(d4, d1)));                           \
        t3 = _mm512_fmadd_ps(c2, s13, e42);                                                                          \
        t4 = _mm512_fmadd_ps(cm0_5, s13, e42);                                                                       \
        t5 = _mm512_fmadd_ps(c1_5, e42, _mm512_fmadd_ps(cm2, d3, _mm512_add_ps(d1, d5)));                            \
    }

/* A^T applied to m0 .. m5 (A^T's rows: 1 1 1 1 1 0; 0 1 -1 1/2 -2 0; 0 1 1 1/4 4 0;
 * 0 1 -1 1/8 -8 1) */
#define WF4_AT(m0, m1, m2, m3, m4, m5, y0, y1, y2, y3)                                                               \
    {                                                                                                                \
        const __m512 p = _mm512_add_ps(m1, m2), q = _mm512_sub_ps(m1, m2);                                           \
        y0 = _mm512_add_ps(_mm512_add_ps(m0, p), _mm512_add_ps(m3, m4));                                             \
        y1 = _mm512_fmadd_ps(cm2, m4, _mm512_fmadd_ps(c0_5, m3, q));                                                 \
        y2 = _mm512_fmadd_ps(c4, m4, _mm512_fmadd_ps(c0_25, m3, p));                                                 \
        y3 = _mm512_fmadd_ps(cm8, m4, _mm512_fmadd_ps(c0_125, m3, _mm512_add_ps(q, m5)));                            \
    }

typedef struct wf4_job {
    const comine_conv_geom *g;
    float *out;
    const float *in, *in_scale, *in_shift, *U, *bias, *alpha, *residual;
    int TH, TW;
} wf4_job;

/* V[t][xi][c] = (B^T d B)[xi] of tiles t0 .. t0 + T, 16 channels at a time */
__attribute__((noinline, target("avx512f,fma"))) static void input_transform(const wf4_job *j, float *restrict V,
                                                                             long t0, int T)
{
    const comine_conv_geom *g = j->g;
    const int C = g->C, H = g->H, W = g->W;
    const __m512 c0_5 = _mm512_set1_ps(0.5f), cm0_5 = _mm512_set1_ps(-0.5f), c1_5 = _mm512_set1_ps(1.5f);
    const __m512 c2 = _mm512_set1_ps(2.0f), cm2 = _mm512_set1_ps(-2.0f), c2_5 = _mm512_set1_ps(2.5f);
    const __m512 cm2_5 = _mm512_set1_ps(-2.5f);
    for (int t = 0; t < T; t++) {
        long tile = t0 + t;
        int n = (int)(tile / ((long)j->TH * j->TW)), r = (int)(tile % ((long)j->TH * j->TW));
        int y0 = 4 * (r / j->TW) - 1, x0 = 4 * (r % j->TW) - 1;
        const float *row[6];
        for (int a = 0; a < 6; a++) {
            int y = y0 + a;
            row[a] = y < 0 || y >= H ? NULL : j->in + ((size_t)n * H + y) * W * C;
        }
        for (int cb = 0; cb < C; cb += LANES) {
            const __m512 sc = j->in_scale ? _mm512_loadu_ps(j->in_scale + cb) : _mm512_setzero_ps();
            const __m512 sh = j->in_scale ? _mm512_loadu_ps(j->in_shift + cb) : _mm512_setzero_ps();
            __m512 s[6][6]; /* B^T d, column by column */
            for (int b = 0; b < 6; b++) {
                int x = x0 + b;
                bool col = x >= 0 && x < W;
                __m512 d[6];
                for (int a = 0; a < 6; a++) {
                    d[a] = col && row[a] ? _mm512_loadu_ps(row[a] + (size_t)x * C + cb) : _mm512_setzero_ps();
                    if (j->in_scale && col && row[a]) d[a] = _mm512_fmadd_ps(d[a], sc, sh);
                }
                WF4_BT(d[0], d[1], d[2], d[3], d[4], d[5], s[0][b], s[1][b], s[2][b], s[3][b], s[4][b], s[5][b]);
            }
            float *v = V + (size_t)t * XI * C + cb;
            for (int a = 0; a < 6; a++) {
                __m512 u[6];
                WF4_BT(s[a][0], s[a][1], s[a][2], s[a][3], s[a][4], s[a][5], u[0], u[1], u[2], u[3], u[4], u[5]);
                for (int k = 0; k < 6; k++) _mm512_storeu_ps(v + (size_t)(6 * a + k) * C, u[k]);
            }
        }
    }
}

/* out's 4x4 pixels of tiles t0 .. t0 + T = A^T M A, then bias, PReLU (x <= 0: alpha x) and
 * residual; a pixel outside the image goes to `spill` */
__attribute__((noinline, target("avx512f,fma"))) static void output_transform(const wf4_job *j,
                                                                              const float *restrict M, long t0,
                                                                              int T, float *spill)
{
    const comine_conv_geom *g = j->g;
    const int OC = g->OC, OH = g->OH, OW = g->OW;
    const __m512 zero = _mm512_setzero_ps(), c0_5 = _mm512_set1_ps(0.5f), c0_25 = _mm512_set1_ps(0.25f);
    const __m512 c0_125 = _mm512_set1_ps(0.125f), cm2 = _mm512_set1_ps(-2.0f), c4 = _mm512_set1_ps(4.0f);
    const __m512 cm8 = _mm512_set1_ps(-8.0f);
    for (int t = 0; t < T; t++) {
        long tile = t0 + t;
        int n = (int)(tile / ((long)j->TH * j->TW)), r = (int)(tile % ((long)j->TH * j->TW));
        int y0 = 4 * (r / j->TW), x0 = 4 * (r % j->TW);
        float *y[16];
        const float *res[16];
        for (int k = 0; k < 16; k++) {
            int yy = y0 + k / 4, xx = x0 + k % 4;
            bool in = yy < OH && xx < OW;
            size_t o = (((size_t)n * OH + yy) * OW + xx) * OC;
            y[k] = in ? j->out + o : spill;
            res[k] = in && j->residual ? j->residual + o : NULL;
        }
        const float *m = M + (size_t)t * XI * OC;
        for (int oc = 0; oc < OC; oc += LANES) {
            __m512 rr[4][6]; /* A^T M, column by column */
            for (int b = 0; b < 6; b++) {
                __m512 c[6];
                for (int a = 0; a < 6; a++) c[a] = _mm512_loadu_ps(m + (size_t)(6 * a + b) * OC + oc);
                WF4_AT(c[0], c[1], c[2], c[3], c[4], c[5], rr[0][b], rr[1][b], rr[2][b], rr[3][b]);
            }
            const __m512 bias = j->bias ? _mm512_loadu_ps(j->bias + oc) : zero;
            const __m512 alpha = j->alpha ? _mm512_loadu_ps(j->alpha + oc) : zero;
            for (int i = 0; i < 4; i++) {
                __m512 v[4];
                WF4_AT(rr[i][0], rr[i][1], rr[i][2], rr[i][3], rr[i][4], rr[i][5], v[0], v[1], v[2], v[3]);
                for (int k = 0; k < 4; k++) {
                    __m512 x = _mm512_add_ps(v[k], bias);
                    if (j->alpha) x = _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, zero, _CMP_LE_OQ), x, alpha);
                    if (res[4 * i + k]) x = _mm512_add_ps(x, _mm512_loadu_ps(res[4 * i + k] + oc));
                    _mm512_storeu_ps(y[4 * i + k] + oc, x);
                }
            }
        }
    }
}

/* M's rows 0 .. R of columns o .. o + 16 B: M[t][o..] = sum over c, in channel order, of
 * V[t][c] U[c][o..], one rounding per multiply-add (R and B constants: the accumulators
 * stay in registers) */
__attribute__((always_inline, target("avx512f,fma"))) static inline void
product_tile(const float *restrict V, size_t ldv, const float *restrict U, int C, int OC, int o, float *restrict M,
             size_t ldm, const int R, const int B)
{
    __m512 acc[ROWS][2];
#pragma GCC unroll 12
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int b = 0; b < B; b++) acc[r][b] = _mm512_setzero_ps();
    const float *u = U + o;
    for (int c = 0; c < C; c++, u += OC) {
        __m512 w[2];
#pragma GCC unroll 2
        for (int b = 0; b < B; b++) w[b] = _mm512_loadu_ps(u + LANES * b);
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            const __m512 v = _mm512_set1_ps(V[(size_t)r * ldv + c]);
#pragma GCC unroll 2
            for (int b = 0; b < B; b++) acc[r][b] = _mm512_fmadd_ps(v, w[b], acc[r][b]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int b = 0; b < B; b++) _mm512_storeu_ps(M + (size_t)r * ldm + o + LANES * b, acc[r][b]);
}

#define WF4_PRODUCT(NAME, R, B)                                                                                     \
    __attribute__((noinline, target("avx512f,fma"))) static void NAME(const float *V, size_t ldv, const float *U,    \
                                                                      int C, int OC, int o, float *M, size_t ldm)    \
    {                                                                                                                \
        product_tile(V, ldv, U, C, OC, o, M, ldm, R, B);                                                             \
    }
WF4_PRODUCT(product12x2, ROWS, 2)
WF4_PRODUCT(product4x2, 4, 2)
WF4_PRODUCT(product1x2, 1, 2)
WF4_PRODUCT(product12x1, ROWS, 1)
WF4_PRODUCT(product4x1, 4, 1)
WF4_PRODUCT(product1x1, 1, 1)

/* M = V U for `cnt` tiles (V: cnt x C, rows ldv apart; U: C x OC; M: rows ldm apart): the
 * tiles in register tiles of 12, 4 and 1, the columns in panels of 32 and 16 */
static void product(int cnt, int C, int OC, const float *V, size_t ldv, const float *U, float *M, size_t ldm)
{
    for (int o = 0; o < OC;) {
        bool two = OC - o >= 2 * LANES;
        int t = 0;
        for (; t + ROWS <= cnt; t += ROWS)
            (two ? product12x2 : product12x1)(V + (size_t)t * ldv, ldv, U, C, OC, o, M + (size_t)t * ldm, ldm);
        for (; t + 4 <= cnt; t += 4)
            (two ? product4x2 : product4x1)(V + (size_t)t * ldv, ldv, U, C, OC, o, M + (size_t)t * ldm, ldm);
        for (; t < cnt; t++)
            (two ? product1x2 : product1x1)(V + (size_t)t * ldv, ldv, U, C, OC, o, M + (size_t)t * ldm, ldm);
        o += two ? 2 * LANES : LANES;
    }
}

void comine_cpu_conv_wf4_forward(conv_plan *p, float *out, const float *in, const float *in_scale,
                                 const float *in_shift, const float *weight, uint64_t weight_version,
                                 const float *bias, const float *alpha, const float *residual, int N)
{
    const comine_conv_geom *g = &p->g;
    COMINE_ASSERT(!in_scale == !in_shift);
    const int C = g->C, OC = g->OC;
    float *Unew = comine_cpu_plan_weights(p, weight, weight_version, (size_t)XI * C * OC);
    if (Unew) transform_weights(Unew, weight, C, OC);
    wf4_job job = {g, out, in, in_scale, in_shift, p->own_w, bias, alpha, residual, (g->OH + 3) / 4, (g->OW + 3) / 4};
    const long tiles = (long)N * job.TH * job.TW;
    /* as many tiles as fit the L2 cache, but at least as many as make a chunk's V and M
     * outweigh U, which every chunk reads again (128 -> 128 channels at 28x28, 2 images:
     * 0.76-0.79 -> 0.60-0.65 ms) */
    int T = CHUNK_FLOATS / (XI * (C + OC));
    if (T < C * OC / (C + OC)) T = C * OC / (C + OC);
    if (T < ROWS) T = ROWS;
    const long chunks = (tiles + T - 1) / T;
#ifdef COMINE_HAVE_OPENMP
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (threads > chunks) threads = (int)chunks;
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
    {
        /* V, M, then a spill row (OC) */
        float *buf = comine_cpu_thread_buf(CPU_BUF_OWN_CONV, (size_t)XI * T * (C + OC) + (size_t)OC);
        float *V = buf, *M = buf + (size_t)XI * T * C, *spill = M + (size_t)XI * T * OC;
        int t = 0, nt = 1;
#ifdef COMINE_HAVE_OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        for (long k = chunks * t / nt; k < chunks * (t + 1) / nt; k++) {
            long t0 = k * T;
            int cnt = (int)(tiles - t0 < T ? tiles - t0 : T);
            input_transform(&job, V, t0, cnt);
            for (int xi = 0; xi < XI; xi++)
                product(cnt, C, OC, V + (size_t)xi * C, (size_t)XI * C, job.U + (size_t)xi * C * OC,
                        M + (size_t)xi * OC, (size_t)XI * OC);
            output_transform(&job, M, t0, cnt, spill);
        }
    }
}
#else
void comine_cpu_conv_wf4_forward(conv_plan *p, float *out, const float *in, const float *in_scale,
                                 const float *in_shift, const float *weight, uint64_t weight_version,
                                 const float *bias, const float *alpha, const float *residual, int N)
{
    (void)p, (void)out, (void)in, (void)in_scale, (void)in_shift, (void)weight, (void)weight_version, (void)bias;
    (void)alpha, (void)residual;
    (void)N;
    COMINE_ASSERT(!"comine_cpu_conv_wf4_forward: AVX-512 only");
}
#endif

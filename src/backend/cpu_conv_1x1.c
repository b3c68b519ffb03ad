/* cpu_conv_1x1.c: the eval forward of dense 1x1 stride-1 convolutions (MobileFaceNet's
 * expanding and projecting layers) on AVX-512 CPUs, epilogue included:
 *   out = prelu(conv(in, weight) + bias, alpha) + residual
 * In NHWC a 1x1 convolution is the product of the (pixels, C) input and the (C, OC)
 * weights.  The weights are kept in panels of 32 output channels, wp[panel][c][32] (while
 * the caller's pointer and version stay the same).  A tile of 12 pixels times one panel
 * keeps its 24 accumulator vectors in registers over all C input channels: per channel two
 * weight vectors and 12 broadcast input values, 24 multiply-adds.  Bias, PReLU and residual
 * are applied to the accumulators before the one store.  The pixels go by chunks whose
 * input rows fit in L2 (about 256 KiB), every panel over a chunk before the next chunk, so
 * that the input is read from memory once and the panels from L2; the threads share the
 * (chunk, panel) pairs in that order.  Each input row is prefetched 4 lines ahead (twelve
 * streams are more than the hardware prefetcher follows).
 * In MobileFaceNet's eval forward on a Zen 5 core (FMA peak 228-255 GFLOP/s) oneDNN 2.6's
 * brgconv_1x1 ran these layers at 146-195 GFLOP/s, and the forward is 13% faster with this
 * kernel (docs/PERFORMANCE_ZEN5.md).
 * Every output is bias, then the C products added in channel order, one rounding per
 * multiply-add (fmaf), whatever the chunk, tile or thread: a split forward gives the same
 * bits as an unsplit one.  Where it runs: AVX-512, output channels a multiple of 32;
 * elsewhere oneDNN. */
#include "backend/cpu_conv_impl.h"
#include "core/cpu_dispatch.h"

#ifdef COMINE_HAVE_OPENMP
#include <omp.h>
#endif
#ifdef COMINE_CPU_X86
#include <immintrin.h>
#endif

enum { PANEL = 32, TILE = 12 };
/* a chunk's input rows, in floats (256 KiB) */
#define CHUNK_FLOATS (64 * 1024)

bool comine_cpu_conv_1x1_supported(const comine_conv_geom *g)
{
    bool geometry = g->groups == 1 && g->KH == 1 && g->KW == 1 && g->stride == 1 && g->pad == 0 &&
                    g->OC % PANEL == 0 && g->C >= 1;
    if (!geometry || comine_cpu_conv_nhwc_only()) return false;
#ifdef COMINE_CPU_X86
    return comine_cpu_x86_level() >= 4;
#else
    return false;
#endif
}

#ifdef COMINE_CPU_X86
/* what a tile needs besides its rows */
typedef struct k1_job {
    int C, OC;
    const float *wp, *bias, *alpha, *residual;
    float *out;
    const float *in;
} k1_job;

/* rows r (a list of 12, 4 or 1) of panel `pan`, from pixel p on */
#define K1_ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define K1_ROWS4(X) X(0) X(1) X(2) X(3)
#define K1_ROWS1(X) X(0)

#define K1_DECL(r)                                                                                                   \
    __m512 lo##r = b0, hi##r = b1;                                                                                   \
    const float *x##r = in + (size_t)(r) * C;
#define K1_PREFETCH(r) _mm_prefetch((const char *)(x##r + c + 64), _MM_HINT_T0);
#define K1_STEP(r)                                                                                                   \
    {                                                                                                                \
        const __m512 a = _mm512_set1_ps(x##r[c]);                                                                    \
        lo##r = _mm512_fmadd_ps(a, w0, lo##r);                                                                       \
        hi##r = _mm512_fmadd_ps(a, w1, hi##r);                                                                       \
    }
#define K1_STORE(r)                                                                                                  \
    {                                                                                                                \
        float *y = out + (size_t)(r) * OC;                                                                           \
        if (alpha) {                                                                                                 \
            lo##r = _mm512_mask_mul_ps(lo##r, _mm512_cmp_ps_mask(lo##r, zero, _CMP_LE_OQ), lo##r, al0);              \
            hi##r = _mm512_mask_mul_ps(hi##r, _mm512_cmp_ps_mask(hi##r, zero, _CMP_LE_OQ), hi##r, al1);              \
        }                                                                                                            \
        if (res) {                                                                                                   \
            lo##r = _mm512_add_ps(lo##r, _mm512_loadu_ps(res + (size_t)(r) * OC));                                   \
            hi##r = _mm512_add_ps(hi##r, _mm512_loadu_ps(res + (size_t)(r) * OC + 16));                              \
        }                                                                                                            \
        _mm512_storeu_ps(y, lo##r);                                                                                  \
        _mm512_storeu_ps(y + 16, hi##r);                                                                             \
    }

#define K1_TILE(NAME, ROWS)                                                                                          \
    __attribute__((noinline, target("avx512f"))) static void NAME(const k1_job *j, long p, int pan)                  \
    {                                                                                                                \
        const int C = j->C, OC = j->OC, o = PANEL * pan;                                                             \
        const float *restrict in = j->in + (size_t)p * C;                                                            \
        const float *restrict w = j->wp + (size_t)pan * C * PANEL;                                                   \
        float *restrict out = j->out + (size_t)p * OC + o;                                                           \
        const float *res = j->residual ? j->residual + (size_t)p * OC + o : NULL;                                    \
        const float *alpha = j->alpha;                                                                               \
        const __m512 zero = _mm512_setzero_ps();                                                                     \
        const __m512 b0 = j->bias ? _mm512_loadu_ps(j->bias + o) : zero;                                             \
        const __m512 b1 = j->bias ? _mm512_loadu_ps(j->bias + o + 16) : zero;                                        \
        ROWS(K1_DECL)                                                                                                \
        for (int c = 0; c < C; c++) {                                                                                \
            const __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16);                                      \
            w += PANEL;                                                                                              \
            if ((c & 15) == 0) { ROWS(K1_PREFETCH) }                                                                 \
            ROWS(K1_STEP)                                                                                            \
        }                                                                                                            \
        const __m512 al0 = alpha ? _mm512_loadu_ps(alpha + o) : zero;                                                \
        const __m512 al1 = alpha ? _mm512_loadu_ps(alpha + o + 16) : zero;                                           \
        ROWS(K1_STORE)                                                                                               \
    }

K1_TILE(tile12, K1_ROWS12)
K1_TILE(tile4, K1_ROWS4)
K1_TILE(tile1, K1_ROWS1)

/* pixels [p0, p1) of panel pan */
static void chunk(const k1_job *j, long p0, long p1, int pan)
{
    long p = p0;
    for (; p + TILE <= p1; p += TILE) tile12(j, p, pan);
    for (; p + 4 <= p1; p += 4) tile4(j, p, pan);
    for (; p < p1; p++) tile1(j, p, pan);
}

/* wp[panel][c][k] = weight[panel 32 + k][c] */
static void pack_weights(float *wp, const float *weight, int C, int OC)
{
    for (int oc = 0; oc < OC; oc++)
        for (int c = 0; c < C; c++)
            wp[((size_t)(oc / PANEL) * C + c) * PANEL + oc % PANEL] = weight[(size_t)oc * C + c];
}
#endif

void comine_cpu_conv_1x1_forward(conv_plan *p, float *out, const float *in, const float *weight,
                                 uint64_t weight_version, const float *bias, const float *alpha,
                                 const float *residual, int N)
{
#ifdef COMINE_CPU_X86
    const comine_conv_geom *g = &p->g;
    const int C = g->C, OC = g->OC;
    float *wp = comine_cpu_plan_weights(p, weight, weight_version, (size_t)C * OC);
    if (wp) pack_weights(wp, weight, C, OC);
    const k1_job job = {.C = C, .OC = OC, .wp = p->own_w, .bias = bias, .alpha = alpha, .residual = residual,
                        .out = out, .in = in};
    const long pixels = (long)N * g->OH * g->OW;
    long P = CHUNK_FLOATS / C / TILE * TILE;
    if (P < TILE) P = TILE;
    const long panels = OC / PANEL, items = (pixels + P - 1) / P * panels; /* chunk-major */
#ifdef COMINE_HAVE_OPENMP
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (threads > items) threads = (int)items;
#pragma omp parallel num_threads(threads) if (threads > 1)
#endif
    {
        int t = 0, nt = 1;
#ifdef COMINE_HAVE_OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        for (long i = items * t / nt; i < items * (t + 1) / nt; i++) {
            long k = i / panels, p1 = (k + 1) * P < pixels ? (k + 1) * P : pixels;
            chunk(&job, k * P, p1, (int)(i % panels));
        }
    }
#else
    (void)p, (void)out, (void)in, (void)weight, (void)weight_version, (void)bias, (void)alpha, (void)residual, (void)N;
    COMINE_ASSERT(!"cpu_conv_1x1: no x86 kernel in this build");
#endif
}

/* bench_fma.c: this machine's fp32 FMA peak, measured: each of T threads runs 12 independent
 * chains of vector fused multiply-adds (AVX-512 when the build targets it, else AVX2 + FMA,
 * else scalar), and the rate is FLOPs (2 per lane per FMA) over the wall time.  The figure
 * that a convolution or sgemm GFLOP/s should be read against: OpenBLAS's sgemm does not reach
 * it on every CPU, so a convolution can beat sgemm without beating the hardware.
 * Usage: bench_fma [THREADS (default 2)] [SECONDS (default 0.5)] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "comine/core.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#define LANES 16
typedef __m512 vec;
#define VSET(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VFIRST(v) _mm512_cvtss_f32(v)
#define ISA "AVX-512"
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LANES 8
typedef __m256 vec;
#define VSET(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VFIRST(v) _mm256_cvtss_f32(v)
#define ISA "AVX2+FMA"
#else
#include <math.h>
#define LANES 1
typedef float vec;
#define VSET(x) (x)
#define VFMA(a, b, c) fmaf(a, b, c)
#define VFIRST(v) (v)
#define ISA "scalar"
#endif

#define CHAINS 12
#define INNER 1000000L

typedef struct job {
    long rounds;
    float sink;
} job;

static void *run(void *arg)
{
    job *j = arg;
    vec a[CHAINS], b = VSET(0.999999f), c = VSET(1e-7f);
    for (int i = 0; i < CHAINS; i++) a[i] = VSET((float)i);
    for (long r = 0; r < j->rounds; r++)
        for (long k = 0; k < INNER; k++) {
#pragma GCC unroll 12
            for (int i = 0; i < CHAINS; i++) a[i] = VFMA(a[i], b, c);
        }
    float s = 0.0f;
    for (int i = 0; i < CHAINS; i++) s += VFIRST(a[i]);
    j->sink = s;
    return NULL;
}

/* wall seconds for `rounds` rounds on each of `threads` threads */
static double timed(int threads, long rounds)
{
    pthread_t tid[64];
    job jobs[64];
    double t0 = comine_now();
    for (int t = 0; t < threads; t++) {
        jobs[t].rounds = rounds;
        if (pthread_create(&tid[t], NULL, run, &jobs[t]) != 0) {
            fprintf(stderr, "bench_fma: cannot start thread %d\n", t);
            exit(1);
        }
    }
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    return comine_now() - t0;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    double seconds = argc > 2 ? atof(argv[2]) : 0.5;
    if (threads < 1 || threads > 64 || !(seconds > 0)) {
        fprintf(stderr, "usage: bench_fma [THREADS 1..64] [SECONDS > 0]\n");
        return 2;
    }
    const double flop_per_round = 2.0 * LANES * CHAINS * (double)INNER;
    double t1 = timed(1, 1);                      /* calibrate and warm up */
    long rounds = (long)(seconds / (t1 > 1e-6 ? t1 : 1e-6)) + 1;
    double best = 0.0;
    for (int rep = 0; rep < 3; rep++) {
        double t = timed(threads, rounds);
        double gf = flop_per_round * rounds * threads / t * 1e-9;
        if (gf > best) best = gf;
    }
    printf("fp32 FMA peak (%s, %d thread%s): %.1f GFLOP/s (%.1f per thread), best of 3\n", ISA, threads,
           threads == 1 ? "" : "s", best, best / threads);
    printf("RESULT fma_gflops=%.1f threads=%d\n", best, threads);
    return 0;
}

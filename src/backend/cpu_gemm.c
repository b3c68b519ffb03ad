/* cpu_gemm.c: the CPU backend's matrix product, C = alpha op(A) op(B) + beta C (row-major):
 * OpenBLAS's sgemm on one thread per call, the product split over comine's OpenMP threads
 * by blocks of C's columns (or rows, when C has more rows than columns).
 *
 * OpenBLAS is kept on one thread of its own.  The pthreads build that Debian ships keeps
 * its worker threads spinning in sched_yield for about 2^28 cycles after every call, on
 * the cores where OpenMP's threads then run the convolutions and the element-wise kernels.
 * With one pool of threads there is nothing to spin against: the eval forward of
 * MobileFaceNet (whose one product is its linear layer) got 2-4% faster, iresnet18 w0.25's
 * 15-24%, dedup's search 1.5x (docs/PERFORMANCE.md, "One pool of threads").
 *
 * Each element of C is computed by one thread, by one OpenBLAS call on the block that holds
 * it; the blocks are fixed by the shape and the thread count, so the result does not vary
 * from run to run. */
#include "backend/cpu.h"

#include <cblas.h>

#ifdef COMINE_HAVE_OPENMP
#include <omp.h>
#endif

/* Products of fewer multiply-adds than this run on the calling thread (about 20 us) */
#define SPLIT_MIN_MACS (1 << 20)
/* Block edges are multiples of this many rows or columns (OpenBLAS's AVX-512 tile) */
enum { BLOCK_ALIGN = 16 };

static void sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

/* OpenBLAS on one thread, once per process (and again if something else changed it).  A
 * build without OpenMP has no threads of its own to split a product over: OpenBLAS keeps
 * its threads there (cpu.c's set_threads sets their number). */
static void blas_one_thread(void)
{
#ifdef COMINE_HAVE_OPENMP
    if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
#endif
}

void comine_cpu_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M == 0 || N == 0) return;
    if (K == 0) { /* C = beta * C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    blas_one_thread();
    int threads = 1;
#ifdef COMINE_HAVE_OPENMP
    if (!omp_in_parallel()) threads = omp_get_max_threads();
#endif
    bool by_cols = N >= M;
    int dim = by_cols ? N : M;
    int step = (dim + threads - 1) / threads;
    step = (step + BLOCK_ALIGN - 1) / BLOCK_ALIGN * BLOCK_ALIGN;
    int blocks = (dim + step - 1) / step;
    if (blocks < 2 || (double)M * N * K < SPLIT_MIN_MACS) {
        sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(blocks)
#endif
    for (int b = 0; b < blocks; b++) {
        int lo = b * step, n = dim - lo < step ? dim - lo : step;
        if (by_cols) /* columns lo.. of op(B) and C */
            sgemm(trans_a, trans_b, M, n, K, alpha, A, lda, trans_b ? B + (size_t)lo * ldb : B + lo, ldb, beta,
                  C + lo, ldc);
        else /* rows lo.. of op(A) and C */
            sgemm(trans_a, trans_b, n, N, K, alpha, trans_a ? A + lo : A + (size_t)lo * lda, lda, B, ldb, beta,
                  C + (size_t)lo * ldc, ldc);
    }
}

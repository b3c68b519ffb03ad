/* cuda_gemm.c: the CUDA backend's row-major matrix product through cuBLAS (column-major):
 * a row-major C (M, N) is a column-major C^T (N, M), so C^T = op(B)^T op(A)^T is one
 * cublasSgemm with the operands swapped and the same leading dimensions.  fp32 math
 * (CUBLAS_DEFAULT_MATH, set on the handle in cuda_backend.c: no TF32). */
#include "backend/cuda/cuda_impl.h"

/* row-major C (M, N) = alpha * op(A) @ op(B) + beta * C */
void comine_cuda_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M == 0 || N == 0) return;
    comine_cuda_ctx *c = comine_cuda_ctx_get();
    if (K == 0) { /* C = beta * C, as cpu.c */
        if (beta == 0.0f)
            CUDA_CHECK(cudaMemset2D(C, (size_t)ldc * sizeof(float), 0, (size_t)N * sizeof(float), (size_t)M));
        else if (beta != 1.0f)
            for (int i = 0; i < M; i++) CUBLAS_CHECK(cublasSscal(c->blas, N, &beta, C + (size_t)i * ldc, 1));
        return;
    }
    CUBLAS_CHECK(cublasSgemm(c->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M,
                             K, &alpha, B, ldb, A, lda, &beta, C, ldc));
}

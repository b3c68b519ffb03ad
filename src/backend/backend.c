/* backend.c: backend.h's public functions, dispatched through the backend's function
 * table (backend_impl.h), so that callers never see which device runs. */
#include "backend/backend_impl.h"

const char *comine_backend_name(const comine_backend *be) { return be->name; }

void comine_backend_set_threads(const comine_backend *be, int n) { be->set_threads(n); }

float *comine_backend_alloc(const comine_backend *be, size_t n_floats) { return be->alloc(n_floats); }

void comine_backend_free(const comine_backend *be, float *p)
{
    if (p) be->free(p);
}

void comine_backend_zero(const comine_backend *be, float *p, size_t n_floats)
{
    if (n_floats) be->zero(p, n_floats);
}

void comine_backend_upload(const comine_backend *be, float *dst_dev, const float *src_host, size_t n_floats)
{
    if (n_floats) be->upload(dst_dev, src_host, n_floats);
}

void comine_backend_download(const comine_backend *be, float *dst_host, const float *src_dev, size_t n_floats)
{
    if (n_floats) be->download(dst_host, src_dev, n_floats);
}

void comine_backend_gemm(const comine_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    COMINE_ASSERT(M >= 0 && N >= 0 && K >= 0);
    be->gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

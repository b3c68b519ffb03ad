/* backend.c: backend.h's public functions, dispatched through the backend's function
 * table (backend_impl.h), so that callers never see which device runs. */
#include "backend/backend_impl.h"
#ifdef COMINE_HAVE_CUDA
#include "backend/cuda/cuda.h"
#endif

#include <string.h>

const char *comine_backend_name(const comine_backend *be) { return be->name; }

void comine_backend_set_threads(const comine_backend *be, int n) { be->set_threads(n); }

int comine_backend_split_parts(const comine_backend *be)
{
    int n = be->split_parts ? be->split_parts() : 1;
    return n > 1 ? n : 1;
}

void comine_backend_run_split(const comine_backend *be, int parts, void (*fn)(void *ctx, int part), void *ctx)
{
    COMINE_ASSERT(parts >= 1);
    if (parts == 1 || !be->run_split) {
        for (int p = 0; p < parts; p++) fn(ctx, p);
        return;
    }
    be->run_split(parts, fn, ctx);
}

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

void comine_backend_copy(const comine_backend *be, float *dst_dev, const float *src_dev, size_t n_floats)
{
    if (n_floats) be->copy(dst_dev, src_dev, n_floats);
}

void *comine_backend_alloc_bytes(const comine_backend *be, size_t bytes) { return be->alloc_bytes(bytes); }

void comine_backend_free_bytes(const comine_backend *be, void *p)
{
    if (p) be->free_bytes(p);
}

void comine_backend_upload_bytes(const comine_backend *be, void *dst_dev, const void *src_host, size_t bytes)
{
    if (bytes) be->upload_bytes(dst_dev, src_host, bytes);
}

void comine_backend_download_bytes(const comine_backend *be, void *dst_host, const void *src_dev, size_t bytes)
{
    if (bytes) be->download_bytes(dst_host, src_dev, bytes);
}

bool comine_backend_all_finite(const comine_backend *be, const float *x, size_t n)
{
    return n == 0 || be->all_finite(x, n);
}

/* "auto" (and NULL) is the CPU until the CUDA backend has passed its tests on a GPU
 * (docs/GPU.md); then it becomes cuda:0 when a CUDA device is present. */
comine_status comine_backend_for_device(const comine_backend **be, const char *device)
{
    *be = NULL;
    if (!device || !strcmp(device, "auto") || !strcmp(device, "cpu")) {
        *be = comine_backend_cpu();
        return COMINE_OK;
    }
    if (!strncmp(device, "cuda", 4) && (device[4] == 0 || device[4] == ':')) {
#ifndef COMINE_HAVE_CUDA
        return comine_fail(COMINE_ERR_ARG, "device %s: this comine is built without CUDA (the devices are: cpu)",
                           device);
#else
        int n = 0;
        if (device[4] == ':') {
            const char *p = device + 5;
            if (*p < '0' || *p > '9')
                return comine_fail(COMINE_ERR_ARG, "device %s: expected cuda or cuda:N with N a device number",
                                   device);
            while (*p >= '0' && *p <= '9' && n < 100000) n = n * 10 + (*p++ - '0');
            if (*p)
                return comine_fail(COMINE_ERR_ARG, "device %s: expected cuda or cuda:N with N a device number",
                                   device);
        }
        return comine_backend_cuda(be, n);
#endif
    }
#ifdef COMINE_HAVE_CUDA
    return comine_fail(COMINE_ERR_ARG, "device %s: unknown (the devices are: cpu, cuda, cuda:N)", device);
#else
    return comine_fail(COMINE_ERR_ARG, "device %s: unknown (the devices are: cpu)", device);
#endif
}

const float *comine_backend_stage_input(const comine_backend *be, float *scratch_dev, const float *src_host,
                                        size_t n_floats)
{
    return be->stage_input(scratch_dev, src_host, n_floats);
}

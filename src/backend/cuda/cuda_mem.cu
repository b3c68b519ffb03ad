/* cuda_mem.cu: the CUDA backend's memory entries (cudaMalloc, never managed memory;
 * zero-filled like the CPU's), the copies between host and device (synchronous cudaMemcpy:
 * a download returns finished results), the finiteness reduction (one flag comes back) and
 * the weight-layout transposes of cuda_conv.c. */
#include "backend/cuda/cuda_impl.h"

#include <math.h>

extern "C" float *comine_cuda_alloc(size_t n_floats)
{
    comine_cuda_ctx_get();
    void *p = NULL;
    size_t bytes = (n_floats ? n_floats : 1) * sizeof(float);
    CUDA_CHECK(cudaMalloc(&p, bytes));
    CUDA_CHECK(cudaMemset(p, 0, bytes));
    return (float *)p;
}

extern "C" void comine_cuda_free(float *p)
{
    if (p) CUDA_CHECK(cudaFree(p));
}

extern "C" void comine_cuda_zero(float *p, size_t n_floats)
{
    if (n_floats) CUDA_CHECK(cudaMemset(p, 0, n_floats * sizeof(float)));
}

extern "C" void comine_cuda_upload(float *dst_dev, const float *src_host, size_t n_floats)
{
    if (n_floats) CUDA_CHECK(cudaMemcpy(dst_dev, src_host, n_floats * sizeof(float), cudaMemcpyHostToDevice));
}

extern "C" void comine_cuda_download(float *dst_host, const float *src_dev, size_t n_floats)
{
    if (n_floats) CUDA_CHECK(cudaMemcpy(dst_host, src_dev, n_floats * sizeof(float), cudaMemcpyDeviceToHost));
}

extern "C" void comine_cuda_copy(float *dst_dev, const float *src_dev, size_t n_floats)
{
    if (n_floats && dst_dev != src_dev)
        CUDA_CHECK(cudaMemcpy(dst_dev, src_dev, n_floats * sizeof(float), cudaMemcpyDeviceToDevice));
}

extern "C" const float *comine_cuda_stage_input(float *scratch_dev, const float *src_host, size_t n_floats)
{
    comine_cuda_upload(scratch_dev, src_host, n_floats);
    return scratch_dev;
}

extern "C" void *comine_cuda_alloc_bytes(size_t bytes)
{
    comine_cuda_ctx_get();
    void *p = NULL;
    size_t b = bytes ? (bytes + 3) / 4 * 4 : 4;
    CUDA_CHECK(cudaMalloc(&p, b));
    CUDA_CHECK(cudaMemset(p, 0, b));
    return p;
}

extern "C" void comine_cuda_free_bytes(void *p)
{
    if (p) CUDA_CHECK(cudaFree(p));
}

extern "C" void comine_cuda_upload_bytes(void *dst_dev, const void *src_host, size_t bytes)
{
    if (bytes) CUDA_CHECK(cudaMemcpy(dst_dev, src_host, bytes, cudaMemcpyHostToDevice));
}

extern "C" void comine_cuda_download_bytes(void *dst_host, const void *src_dev, size_t bytes)
{
    if (bytes) CUDA_CHECK(cudaMemcpy(dst_host, src_dev, bytes, cudaMemcpyDeviceToHost));
}

/* ---- finiteness ---------------------------------------------------------------------- */

/* *bad = 1 when some element is NaN or infinite (any thread may write it: the same value). */
static __global__ void nonfinite_kernel(int *bad, const float *x, size_t n)
{
    bool found = false;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        if (!isfinite(x[i])) found = true;
    if (__syncthreads_or(found) && threadIdx.x == 0) *bad = 1;
}

extern "C" bool comine_cuda_all_finite(const float *x, size_t n)
{
    if (n == 0) return true;
    comine_cuda_ctx *c = comine_cuda_ctx_get();
    int *flag = (int *)comine_cuda_scratch(c, 1, 1); /* one int in slot 1 */
    CUDA_CHECK(cudaMemset(flag, 0, sizeof(int)));
    unsigned blocks = comine_cuda_blocks(n, 256);
    if (blocks > 4096) blocks = 4096;
    nonfinite_kernel<<<blocks, 256>>>(flag, x, n);
    CUDA_LAUNCH_CHECK("nonfinite_kernel");
    int bad = 0;
    CUDA_CHECK(cudaMemcpy(&bad, flag, sizeof(int), cudaMemcpyDeviceToHost));
    return bad == 0;
}

/* ---- weight layouts ------------------------------------------------------------------ */

/* dst (OC, KHW, Cg) = src (OC, Cg, KHW) */
static __global__ void oihw_to_ohwi_kernel(float *dst, const float *src, int OC, int Cg, int KHW)
{
    size_t n = (size_t)OC * Cg * KHW;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int k = (int)(i % KHW);
        size_t t = i / KHW;
        int c = (int)(t % Cg);
        size_t o = t / Cg;
        dst[(o * KHW + k) * Cg + c] = src[i];
    }
}

/* dst (OC, Cg, KHW) += src (OC, KHW, Cg) */
static __global__ void ohwi_accumulate_oihw_kernel(float *dst, const float *src, int OC, int Cg, int KHW)
{
    size_t n = (size_t)OC * Cg * KHW;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int k = (int)(i % KHW);
        size_t t = i / KHW;
        int c = (int)(t % Cg);
        size_t o = t / Cg;
        dst[i] += src[(o * KHW + k) * Cg + c];
    }
}

extern "C" void comine_cuda_oihw_to_ohwi(float *dst, const float *src, int OC, int Cg, int KHW)
{
    size_t n = (size_t)OC * Cg * KHW;
    if (n == 0) return;
    oihw_to_ohwi_kernel<<<comine_cuda_blocks(n, 256), 256>>>(dst, src, OC, Cg, KHW);
    CUDA_LAUNCH_CHECK("oihw_to_ohwi_kernel");
}

extern "C" void comine_cuda_ohwi_accumulate_oihw(float *dst, const float *src, int OC, int Cg, int KHW)
{
    size_t n = (size_t)OC * Cg * KHW;
    if (n == 0) return;
    ohwi_accumulate_oihw_kernel<<<comine_cuda_blocks(n, 256), 256>>>(dst, src, OC, Cg, KHW);
    CUDA_LAUNCH_CHECK("ohwi_accumulate_oihw_kernel");
}

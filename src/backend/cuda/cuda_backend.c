/* cuda_backend.c: the CUDA backend's table, the binding of a device to the process, the
 * per-thread context (cuBLAS and cuDNN handles, workspaces) and the error reports (the
 * policy is in cuda_impl.h: print the failed call and abort).  Kernels are in cuda_mem.cu,
 * cuda_nn.cu and cuda_arcface.cu, matrix products in cuda_gemm.c, convolutions in
 * cuda_conv.c.  conv_forward_fused is NULL: the layers run conv_forward, prelu_forward and
 * add instead. */
#include "backend/cuda/cuda.h"
#include "backend/cuda/cuda_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bound_device = -1; /* the process's device once bound */
static char backend_name[256];
static _Thread_local comine_cuda_ctx thread_ctx = {.device = -1};
static _Thread_local bool sync_checked, sync_each;

void comine_cuda_fail(const char *library, const char *error, const char *call, const char *file, int line)
{
    char dev[16] = "cuda";
    if (bound_device >= 0) snprintf(dev, sizeof dev, "cuda:%d", bound_device);
    fprintf(stderr, "comine: %s error on %s at %s:%d: %s failed: %s\n", library, dev, file, line, call,
            error ? error : "(no message)");
    fflush(stderr);
    abort();
}

const char *comine_cublas_error_string(cublasStatus_t st)
{
    switch (st) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
    }
    return "unknown cuBLAS status";
}

void comine_cuda_launch_check(const char *kernel, const char *file, int line)
{
    cudaError_t err = cudaGetLastError();
    if (err == cudaSuccess && !sync_checked) {
        const char *s = getenv("COMINE_CUDA_SYNC");
        sync_each = s && s[0] && strcmp(s, "0") != 0;
        sync_checked = true;
    }
    if (err == cudaSuccess && sync_each) err = cudaDeviceSynchronize();
    if (err != cudaSuccess) comine_cuda_fail("CUDA", cudaGetErrorString(err), kernel, file, line);
}

unsigned comine_cuda_blocks(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535u * 16u) b = 65535u * 16u; /* kernels loop with a grid stride beyond this */
    return (unsigned)b;
}

comine_cuda_ctx *comine_cuda_ctx_get(void)
{
    comine_cuda_ctx *c = &thread_ctx;
    if (c->device == bound_device) return c;
    COMINE_ASSERT(bound_device >= 0); /* entries run only on a bound backend */
    CUDA_CHECK(cudaSetDevice(bound_device));
    if (!c->blas) {
        CUBLAS_CHECK(cublasCreate(&c->blas));
        /* fp32 products in fp32 (no TF32 tensor cores): results comparable with the CPU */
        CUBLAS_CHECK(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
        CUBLAS_CHECK(cublasSetStream(c->blas, 0));
    }
    if (!c->dnn) {
        CUDNN_CHECK(cudnnCreate(&c->dnn));
        CUDNN_CHECK(cudnnSetStream(c->dnn, 0));
    }
    c->device = bound_device;
    return c;
}

void *comine_cuda_workspace(comine_cuda_ctx *c, size_t bytes)
{
    if (bytes <= c->workspace_bytes) return c->workspace;
    if (c->workspace) CUDA_CHECK(cudaFree(c->workspace)); /* cudaFree waits for the work queued on it */
    c->workspace = NULL;
    CUDA_CHECK(cudaMalloc(&c->workspace, bytes));
    c->workspace_bytes = bytes;
    return c->workspace;
}

float *comine_cuda_scratch(comine_cuda_ctx *c, int slot, size_t n)
{
    float **p = slot ? &c->scratch2 : &c->scratch;
    size_t *cap = slot ? &c->scratch2_floats : &c->scratch_floats;
    if (n <= *cap) return *p;
    if (*p) CUDA_CHECK(cudaFree(*p));
    *p = NULL;
    CUDA_CHECK(cudaMalloc((void **)p, n * sizeof(float)));
    *cap = n;
    return *p;
}

/* ---- entries made of host logic around kernels ---------------------------------------- */

static void cuda_set_threads(int n) { (void)n; }

/* The mask is drawn on the host from the same comine_rng stream as the CPU backend's (one
 * uniform per element, in order), then uploaded: both backends drop the same elements. */
static void cuda_dropout_forward(float *out, uint8_t *mask, const float *in, size_t n, float p, bool training,
                                 comine_rng *rng)
{
    if (n == 0) return;
    if (!training || p <= 0.0f) {
        comine_cuda_copy(out, in, n);
        if (training && mask) CUDA_CHECK(cudaMemset(mask, 1, n));
        return;
    }
    COMINE_ASSERT(mask != NULL && rng != NULL);
    if (p >= 1.0f) {
        comine_cuda_zero(out, n);
        CUDA_CHECK(cudaMemset(mask, 0, n));
        return;
    }
    uint8_t *host = comine_malloc(n);
    for (size_t i = 0; i < n; i++) host[i] = comine_rng_uniform(rng) >= p;
    comine_cuda_upload_bytes(mask, host, n);
    free(host);
    comine_cuda_dropout_apply(out, in, mask, n, 1.0f / (1.0f - p));
}

static comine_backend cuda_backend = {
    .name = "cuda",
    .set_threads = cuda_set_threads,
    .alloc = comine_cuda_alloc,
    .free = comine_cuda_free,
    .zero = comine_cuda_zero,
    .upload = comine_cuda_upload,
    .download = comine_cuda_download,
    .copy = comine_cuda_copy,
    .stage_input = comine_cuda_stage_input,
    .alloc_bytes = comine_cuda_alloc_bytes,
    .free_bytes = comine_cuda_free_bytes,
    .upload_bytes = comine_cuda_upload_bytes,
    .download_bytes = comine_cuda_download_bytes,
    .all_finite = comine_cuda_all_finite,
    .gemm = comine_cuda_gemm,
    .conv_plan_create = comine_cuda_conv_plan_create,
    .conv_plan_free = comine_cuda_conv_plan_free,
    .conv_forward = comine_cuda_conv_forward,
    .conv_forward_fused = NULL,
    .conv_backward_data = comine_cuda_conv_backward_data,
    .conv_backward_data_write = comine_cuda_conv_backward_data_write,
    .conv_backward_weights = comine_cuda_conv_backward_weights,
    .batchnorm_forward = comine_cuda_batchnorm_forward,
    .batchnorm_apply = comine_cuda_batchnorm_apply,
    .batchnorm_backward = comine_cuda_batchnorm_backward,
    .batchnorm_backward_write = comine_cuda_batchnorm_backward_write,
    .prelu_forward = comine_cuda_prelu_forward,
    .prelu_backward = comine_cuda_prelu_backward,
    .prelu_backward_write = comine_cuda_prelu_backward_write,
    .relu_forward = comine_cuda_relu_forward,
    .relu_backward = comine_cuda_relu_backward,
    .add_bias = comine_cuda_add_bias,
    .accumulate_colsum = comine_cuda_accumulate_colsum,
    .dropout_forward = cuda_dropout_forward,
    .dropout_backward = comine_cuda_dropout_backward,
    .add = comine_cuda_add,
    .accumulate = comine_cuda_accumulate,
    .l2_normalize_rows = comine_cuda_l2_normalize_rows,
    .arcface_loss = comine_cuda_arcface_loss,
    .arcface_cos_stats = comine_cuda_arcface_cos_stats,
    .arcface_dcos = comine_cuda_arcface_dcos,
    .arcface_col_coef = comine_cuda_arcface_col_coef,
    .arcface_demb = comine_cuda_arcface_demb,
    .arcface_dweight = comine_cuda_arcface_dweight,
    .subcenter_max = comine_cuda_subcenter_max,
    .subcenter_scatter = comine_cuda_subcenter_scatter,
    .sgd_step = comine_cuda_sgd_step,
};

/* ---- devices ------------------------------------------------------------------------- */

int comine_cuda_device_count(char *why, size_t why_size)
{
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
        if (why && why_size) snprintf(why, why_size, "%s", cudaGetErrorString(err));
        (void)cudaGetLastError(); /* clear it */
        return 0;
    }
    if (n == 0 && why && why_size) snprintf(why, why_size, "the driver reports no device");
    return n;
}

comine_status comine_cuda_device_describe(int device, char *line, size_t line_size)
{
    struct cudaDeviceProp prop;
    cudaError_t err = cudaGetDeviceProperties(&prop, device);
    if (err != cudaSuccess)
        return comine_fail(COMINE_ERR_ARG, "cuda:%d: %s", device, cudaGetErrorString(err));
    snprintf(line, line_size, "%s, %.1f GiB, compute capability %d.%d, %d multiprocessors", prop.name,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), prop.major, prop.minor,
             prop.multiProcessorCount);
    return COMINE_OK;
}

void comine_cuda_versions(char *line, size_t line_size)
{
    size_t dnn = cudnnGetVersion();
    int rt = 0, drv = 0;
    (void)cudaRuntimeGetVersion(&rt);
    (void)cudaDriverGetVersion(&drv);
    char driver[32] = "none";
    if (drv > 0) snprintf(driver, sizeof driver, "%d.%d", drv / 1000, (drv % 1000) / 10);
    snprintf(line, line_size, "cuDNN %zu.%zu.%zu, cuBLAS %d.%d.%d, runtime %d.%d, driver %s", dnn / 10000,
             (dnn % 10000) / 100, dnn % 100, CUBLAS_VER_MAJOR, CUBLAS_VER_MINOR, CUBLAS_VER_PATCH, rt / 1000,
             (rt % 1000) / 10, driver);
}

comine_status comine_backend_cuda(const comine_backend **be, int device)
{
    *be = NULL;
    char why[256] = "";
    int n = comine_cuda_device_count(why, sizeof why);
    if (n == 0) return comine_fail(COMINE_ERR_ARG, "device cuda:%d: no CUDA device found (%s)", device, why);
    if (device < 0 || device >= n)
        return comine_fail(COMINE_ERR_ARG, "device cuda:%d: out of range (this machine has %d CUDA device(s): cuda:0 to cuda:%d)",
                           device, n, n - 1);
    if (bound_device >= 0 && bound_device != device)
        return comine_fail(COMINE_ERR_ARG, "device cuda:%d: this process already uses cuda:%d (one device per process)",
                           device, bound_device);
    if (bound_device < 0) {
        cudaError_t err = cudaSetDevice(device);
        if (err != cudaSuccess)
            return comine_fail(COMINE_ERR_ARG, "device cuda:%d: cannot start the CUDA runtime: %s", device,
                               cudaGetErrorString(err));
        char line[192] = "";
        if (comine_cuda_device_describe(device, line, sizeof line) != COMINE_OK) return COMINE_ERR_ARG;
        snprintf(backend_name, sizeof backend_name, "cuda:%d (%s; cuDNN, cuBLAS)", device, line);
        cuda_backend.name = backend_name;
        bound_device = device;
    }
    (void)comine_cuda_ctx_get();
    *be = &cuda_backend;
    return COMINE_OK;
}

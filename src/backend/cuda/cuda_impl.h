/* cuda_impl.h: what the CUDA backend's files share (never included outside
 * src/backend/cuda/): the checked-call macros, the per-thread context (device, cuBLAS and
 * cuDNN handles, convolution workspace) and every entry of the table that cuda_backend.c
 * fills.  Compiles as C (the .c files, gcc) and as CUDA C++ (the .cu files, nvcc).
 *
 * Assumptions: one CUDA device per process (the entries of a backend table take no context,
 * so the device is process state: comine_backend_cuda binds it once); all work is queued
 * on the legacy default stream, so that the host sees results after a download (cudaMemcpy
 * synchronises) and kernels run in call order; memory comes from cudaMalloc, never managed
 * memory.
 *
 * Error policy: every CUDA runtime, cuBLAS and cuDNN call goes through CUDA_CHECK,
 * CUBLAS_CHECK or CUDNN_CHECK.  The table's entries return void and a failed device call
 * leaves device memory in an unknown state, so a failure prints one line naming the call,
 * the error string, the device, the file and the line, and aborts the process (as the CPU
 * backend does on a oneDNN failure; an out-of-memory included).  A kernel launch is checked
 * with cudaGetLastError; errors raised while a kernel runs surface at the next checked
 * call (set COMINE_CUDA_SYNC=1 in the environment to synchronise after every launch and
 * report such an error at the kernel that raised it). */
#ifndef COMINE_BACKEND_CUDA_IMPL_H
#define COMINE_BACKEND_CUDA_IMPL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "backend/backend_impl.h"

/* Report a failed call (library "CUDA", "cuBLAS" or "cuDNN") and abort. */
void comine_cuda_fail(const char *library, const char *error, const char *call, const char *file, int line);
const char *comine_cublas_error_string(cublasStatus_t st);

#define CUDA_CHECK(call) \
    do { \
        cudaError_t cuda_check_err_ = (call); \
        if (cuda_check_err_ != cudaSuccess) \
            comine_cuda_fail("CUDA", cudaGetErrorString(cuda_check_err_), #call, __FILE__, __LINE__); \
    } while (0)
#define CUBLAS_CHECK(call) \
    do { \
        cublasStatus_t cublas_check_st_ = (call); \
        if (cublas_check_st_ != CUBLAS_STATUS_SUCCESS) \
            comine_cuda_fail("cuBLAS", comine_cublas_error_string(cublas_check_st_), #call, __FILE__, __LINE__); \
    } while (0)
#define CUDNN_CHECK(call) \
    do { \
        cudnnStatus_t cudnn_check_st_ = (call); \
        if (cudnn_check_st_ != CUDNN_STATUS_SUCCESS) \
            comine_cuda_fail("cuDNN", cudnnGetErrorString(cudnn_check_st_), #call, __FILE__, __LINE__); \
    } while (0)
/* after a kernel launch */
void comine_cuda_launch_check(const char *kernel, const char *file, int line);
#define CUDA_LAUNCH_CHECK(kernel) comine_cuda_launch_check(kernel, __FILE__, __LINE__)

/* The calling thread's context, made on first use (cudaSetDevice on the bound device). */
typedef struct comine_cuda_ctx {
    int device;
    cublasHandle_t blas;
    cudnnHandle_t dnn;
    void *workspace; /* cuDNN's, grown to the largest asked for */
    size_t workspace_bytes;
    float *scratch; /* convolution weights in cuDNN's layout, grown */
    size_t scratch_floats;
    float *scratch2;
    size_t scratch2_floats;
} comine_cuda_ctx;

comine_cuda_ctx *comine_cuda_ctx_get(void);
void *comine_cuda_workspace(comine_cuda_ctx *c, size_t bytes);
/* slot 0 or 1 of the context's float scratch, at least n floats */
float *comine_cuda_scratch(comine_cuda_ctx *c, int slot, size_t n);
/* 1D launch geometry: blocks of `threads` covering n items, capped */
unsigned comine_cuda_blocks(size_t n, unsigned threads);

/* ---- cuda_mem.cu ---- */
float *comine_cuda_alloc(size_t n_floats);
void comine_cuda_free(float *p);
void comine_cuda_zero(float *p, size_t n_floats);
void comine_cuda_upload(float *dst_dev, const float *src_host, size_t n_floats);
void comine_cuda_download(float *dst_host, const float *src_dev, size_t n_floats);
void comine_cuda_copy(float *dst_dev, const float *src_dev, size_t n_floats);
const float *comine_cuda_stage_input(float *scratch_dev, const float *src_host, size_t n_floats);
void *comine_cuda_alloc_bytes(size_t bytes);
void comine_cuda_free_bytes(void *p);
void comine_cuda_upload_bytes(void *dst_dev, const void *src_host, size_t bytes);
void comine_cuda_download_bytes(void *dst_host, const void *src_dev, size_t bytes);
bool comine_cuda_all_finite(const float *x, size_t n);
/* weight layouts: dst (OC, KH, KW, Cg) = src (OC, Cg, KH, KW); and dst (OC, Cg, KH, KW) +=
 * src (OC, KH, KW, Cg) */
void comine_cuda_oihw_to_ohwi(float *dst, const float *src, int OC, int Cg, int KHW);
void comine_cuda_ohwi_accumulate_oihw(float *dst, const float *src, int OC, int Cg, int KHW);

/* ---- cuda_gemm.c ---- */
void comine_cuda_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc);

/* ---- cuda_conv.c ---- */
void *comine_cuda_conv_plan_create(const comine_conv_geom *g);
void comine_cuda_conv_plan_free(void *plan);
void comine_cuda_conv_forward(void *plan, float *out, const float *in, const float *weight, const float *bias, int N);
void comine_cuda_conv_backward_data(void *plan, float *dinp, const float *dout, const float *weight, int N);
void comine_cuda_conv_backward_data_write(void *plan, float *dinp, const float *dout, const float *weight, int N);
void comine_cuda_conv_backward_weights(void *plan, float *dweight, float *dbias, const float *dout, const float *in,
                                       int N);

/* ---- cuda_nn.cu ---- */
void comine_cuda_batchnorm_forward(float *out, float *save_mean, float *save_rstd, float *running_mean,
                                   float *running_var, const float *in, const float *gamma, const float *beta,
                                   size_t rows, int C, bool training, float momentum, float eps);
void comine_cuda_batchnorm_apply(float *out, const float *in, const float *save_mean, const float *save_rstd,
                                 const float *gamma, const float *beta, size_t rows, int C);
void comine_cuda_batchnorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *in,
                                    const float *save_mean, const float *save_rstd, const float *gamma, size_t rows,
                                    int C);
void comine_cuda_batchnorm_backward_write(float *dinp, float *dgamma, float *dbeta, const float *dout,
                                          const float *in, const float *save_mean, const float *save_rstd,
                                          const float *gamma, size_t rows, int C);
void comine_cuda_prelu_forward(float *out, const float *in, const float *alpha, size_t rows, int C);
void comine_cuda_prelu_backward(float *dinp, float *dalpha, const float *dout, const float *in, const float *alpha,
                                size_t rows, int C);
void comine_cuda_prelu_backward_write(float *dinp, float *dalpha, const float *dout, const float *in,
                                      const float *alpha, size_t rows, int C);
void comine_cuda_relu_forward(float *out, const float *in, size_t n);
void comine_cuda_relu_backward(float *dinp, const float *dout, const float *in, size_t n);
void comine_cuda_add_bias(float *out, const float *bias, size_t rows, int C);
void comine_cuda_accumulate_colsum(float *dst, const float *src, size_t rows, int C);
void comine_cuda_dropout_apply(float *out, const float *in, const uint8_t *mask, size_t n, float scale);
void comine_cuda_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p);
void comine_cuda_add(float *out, const float *a, const float *b, size_t n);
void comine_cuda_accumulate(float *dst, const float *src, size_t n);
void comine_cuda_sgd_step(float *params, float *momentum_buf, const float *grads, size_t n, float lr, float momentum,
                          float weight_decay);

/* ---- cuda_arcface.cu ---- */
void comine_cuda_l2_normalize_rows(float *out, float *norm, float *inv_norm, const float *in, int rows, int D);
void comine_cuda_arcface_loss(float *loss, float *cos_target, float *p_target, uint8_t *correct, const float *cos,
                              const int *labels, const uint8_t *form, int N, int K, const comine_arcface_cfg *cfg);
void comine_cuda_arcface_cos_stats(double *mean_target, double *mean_negative, const float *cos, const int *labels,
                                   int N, int K);
void comine_cuda_arcface_dcos(float *dcos, float *row_coef, float *emb_hat_active, const float *cos,
                              const float *emb_hat, const float *w_inv_norm, const int *active, int na,
                              const int *labels, const uint8_t *form, const float *sample_weight, int K, int D,
                              const comine_arcface_cfg *cfg);
void comine_cuda_arcface_col_coef(float *col_coef, const float *dcos, const float *cos, const int *active, int na,
                                  int K);
void comine_cuda_arcface_demb(float *demb, const float *demb_hat, const float *emb_hat, const float *emb_norm,
                              const float *row_coef, const int *active, int na, int D);
void comine_cuda_arcface_dweight(float *dweight, const float *w_hat, const float *w_norm, const float *col_coef,
                                 int K, int D);
void comine_cuda_subcenter_max(float *cos, int *arg, const float *cos_sub, int N, int K, int S);
void comine_cuda_subcenter_scatter(float *dcos_sub, const float *dcos, const int *arg, const int *active,
                                   const float *w_inv_norm, int na, int K, int S);

#ifdef __cplusplus
}
#endif

#endif

/* backend.h: the one interface between comine's layers and a device.  A backend is a
 * table of function pointers (memory, convolution plans, element-wise and reduction
 * kernels, matrix products); nn.h's layers call through it, so models, loss and trainer
 * exist once for every device.  The CPU backend uses oneDNN for convolutions, OpenBLAS
 * for matrix products (on one thread per call, the products split over comine's OpenMP
 * threads: a build with OpenMP sets OpenBLAS to one thread for the whole process) and
 * OpenMP for the rest. */
#ifndef COMINE_BACKEND_H
#define COMINE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "comine/core.h"

typedef struct comine_backend comine_backend; /* defined in src/backend/backend_impl.h */

const comine_backend *comine_backend_cpu(void);
/* The backend of a device name: "cpu"; "cuda" or "cuda:N" when comine is built with CUDA;
 * NULL or "auto": the best available.  COMINE_ERR_ARG (message names the device) otherwise. */
comine_status comine_backend_for_device(const comine_backend **be, const char *device);
const char *comine_backend_name(const comine_backend *be);
/* Threads for this backend's kernels; n <= 0 keeps the default. */
void comine_backend_set_threads(const comine_backend *be, int n);

/* Device memory (on the CPU: 64-byte aligned host memory, zero-filled).  Code outside
 * src/backend/ reads and writes device memory only through these calls and the kernels. */
float *comine_backend_alloc(const comine_backend *be, size_t n_floats);
void comine_backend_free(const comine_backend *be, float *p);
void comine_backend_zero(const comine_backend *be, float *p, size_t n_floats);
void comine_backend_upload(const comine_backend *be, float *dst_dev, const float *src_host, size_t n_floats);
void comine_backend_download(const comine_backend *be, float *dst_host, const float *src_dev, size_t n_floats);
void comine_backend_copy(const comine_backend *be, float *dst_dev, const float *src_dev, size_t n_floats);
/* Host data (n floats) as device memory for a kernel to read: the host memory itself where
 * the device reads host memory (the CPU: no copy), else scratch_dev after an upload. */
const float *comine_backend_stage_input(const comine_backend *be, float *scratch_dev, const float *src_host,
                                        size_t n_floats);
/* Untyped device memory (labels, masks, indices), zero-filled. */
void *comine_backend_alloc_bytes(const comine_backend *be, size_t bytes);
void comine_backend_free_bytes(const comine_backend *be, void *p);
void comine_backend_upload_bytes(const comine_backend *be, void *dst_dev, const void *src_host, size_t bytes);
void comine_backend_download_bytes(const comine_backend *be, void *dst_host, const void *src_dev, size_t bytes);
/* True when no element of x (n floats of device memory) is NaN or infinite. */
bool comine_backend_all_finite(const comine_backend *be, const float *x, size_t n);

/* Row-major single-precision matrix product on device memory:
 * C (M, N) = alpha * op(A) @ op(B) + beta * C, op = transpose when trans_* is nonzero;
 * A is (M, K) or (K, M) when transposed, B is (K, N) or (N, K); leading dimensions as BLAS. */
void comine_backend_gemm(const comine_backend *be, int trans_a, int trans_b, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Work split over the compute threads: how many parts can run at once, each on a thread of
 * its own whose kernels run on that thread alone (1: the backend does not split), and
 * fn(ctx, part) run for every part in [0, parts) at once (parts <= that number). */
int comine_backend_split_parts(const comine_backend *be);
void comine_backend_run_split(const comine_backend *be, int parts, void (*fn)(void *ctx, int part), void *ctx);

#endif

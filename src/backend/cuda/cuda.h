/* cuda.h: the CUDA backend as backend.c and `comine info` see it (plain C, no CUDA header):
 * binding a device and describing the devices present.  Declared only when comine is built
 * with CUDA (COMINE_HAVE_CUDA); docs/GPU.md says what the backend does. */
#ifndef COMINE_BACKEND_CUDA_H
#define COMINE_BACKEND_CUDA_H

#include <stddef.h>

#include "comine/backend.h"
#include "comine/core.h"

/* The CUDA backend on device `device` (cuda:N).  One device per process: the first call binds
 * it, a later call for another device fails.  COMINE_ERR_ARG with a message when no CUDA
 * device is present ("no CUDA device found"), when `device` is out of range or when the
 * runtime cannot start. */
comine_status comine_backend_cuda(const comine_backend **be, int device);

/* CUDA devices present (0 when none or when the driver cannot be loaded; then `why`, when
 * not NULL, gets the runtime's reason). */
int comine_cuda_device_count(char *why, size_t why_size);

/* One line about device `device`: "NVIDIA H200, 139.8 GiB, compute capability 9.0". */
comine_status comine_cuda_device_describe(int device, char *line, size_t line_size);

/* The cuDNN and cuBLAS versions in use, e.g. "cuDNN 9.19.0, cuBLAS 13.0.0, runtime 13.0". */
void comine_cuda_versions(char *line, size_t line_size);

#endif

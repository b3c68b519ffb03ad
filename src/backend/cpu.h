/* cpu.h: what the CPU backend's files share: the oneDNN convolution plans of
 * cpu_conv.c (entries of the table in cpu.c) and the vectorised accumulate. */
#ifndef COMINE_BACKEND_CPU_H
#define COMINE_BACKEND_CPU_H

#include "backend/backend_impl.h"

void *comine_cpu_conv_plan_create(const comine_conv_geom *g);
void comine_cpu_conv_plan_free(void *plan);
void comine_cpu_conv_forward(void *plan, float *out, const float *in, const float *weight, const float *bias, int N);
void comine_cpu_conv_backward_data(void *plan, float *dinp, const float *dout, const float *weight, int N);
void comine_cpu_conv_backward_data_write(void *plan, float *dinp, const float *dout, const float *weight, int N);
void comine_cpu_conv_backward_weights(void *plan, float *dweight, float *dbias, const float *dout, const float *in,
                                      int N);

/* dst += src (OpenMP, vectorised) */
void comine_cpu_accumulate(float *dst, const float *src, size_t n);

#endif

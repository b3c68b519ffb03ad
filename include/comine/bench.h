/* bench.h: how fast comine trains and infers on this machine, on synthetic input.
 *
 * A benchmark builds one network (mode arcface) or two peers (mode comining) with
 * ArcFace heads, then times whole training steps as the trainer runs them (forward,
 * ArcFace, for comining the selection of comining.h, backward, SGD on backbone and head)
 * and eval forwards (embeddings), after warm-up steps that create the convolution plans.
 * Figures are medians over the timed steps.  FLOPs are counted analytically: 2 x MACs of
 * the convolutions and linear layers (comine_model_flops), backward = 2 x forward, plus
 * the head's matrix products (2 B K D forward, twice that backward).
 *
 * Under mpirun (dist.h, P ranks) the step is the data-parallel one of step.h: batch is the
 * global batch, each rank runs its slice; the figures are rank 0's, except peak_rss_mb (the
 * largest rank's) and the bytes each rank hands to the collectives per step. */
#ifndef COMINE_BENCH_H
#define COMINE_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comine/core.h"
#include "comine/model.h"

typedef struct comine_bench_cfg {
    comine_arch arch;
    int batch;      /* images per step */
    int classes;    /* ArcFace classes (K) */
    bool comining;  /* two peers and the selection; else one network, plain ArcFace */
    int steps;      /* timed training steps (and timed inference batches) */
    int warmup;     /* untimed steps before (>= 1: the first step creates the plans) */
    int threads;    /* compute threads (0 = the default) */
    const char *device; /* backend device (NULL = the best available; backend.h) */
    uint64_t seed;
    float sample_rate;  /* Partial FC (partial_fc.h): (0, 1], 1 = every class */
} comine_bench_cfg;

typedef struct comine_bench_result {
    size_t num_params;          /* one backbone's trainable parameters */
    double flops_per_image;     /* forward, one backbone */
    double train_flops_per_step;
    double train_step_s;        /* median seconds per training step */
    double train_step_min_s, train_step_max_s;
    double train_step_cpu_s;    /* median CPU seconds (all threads) per training step */
    double infer_batch_s;       /* median seconds per eval forward of a batch */
    double train_images_per_s;  /* batch / train_step_s */
    double infer_images_per_s;  /* batch / infer_batch_s */
    double gflops;              /* train_flops_per_step / train_step_s / 1e9 */
    double infer_gflops;
    double peak_rss_mb;         /* peak resident memory of the process (MiB); the largest rank's */
    int ranks;                  /* P */
    double bytes_sent_per_step; /* bytes one rank gives to the collectives per training step */
    int threads;
    const char *backend;        /* the backend's name */
} comine_bench_result;

void comine_bench_cfg_default(comine_bench_cfg *cfg);
/* COMINE_ERR_ARG for bad sizes (message names the field). */
comine_status comine_bench_run(const comine_bench_cfg *cfg, comine_bench_result *res);
/* The backend's single-precision matrix product rate (GFLOP/s): the median of `reps`
 * square products of size n, after one untimed product. */
double comine_bench_sgemm_gflops(int n, int reps);

#endif

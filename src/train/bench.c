/* bench.c: `comine bench` as a library call (bench.h): times training steps and eval
 * forwards of one network or two Co-Mining peers on synthetic images and labels.
 *
 * The timed step is the trainer's: comine_train_step (step.h), with both peers reading the
 * same batch.  Nothing is allocated inside the timed loop. */
#include "comine/bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comine/backend.h"
#include "comine/comining.h"
#include "comine/dist.h"
#include "comine/loss.h"
#include "comine/optim.h"
#include "train/step.h"

#define BENCH_LR 0.01f
#define BENCH_MOMENTUM 0.9f
#define BENCH_WEIGHT_DECAY 5e-4f
#define BENCH_DROP_RATE 0.2f

void comine_bench_cfg_default(comine_bench_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    comine_arch_default(&cfg->arch, "iresnet18");
    cfg->batch = 32;
    cfg->classes = 10575;
    cfg->steps = 10;
    cfg->warmup = 2;
    cfg->seed = 1;
    cfg->sample_rate = 1.0f;
}

/* CPU seconds of the whole process (all threads): a figure that load on the machine
 * disturbs far less than wall time. */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

comine_status comine_bench_run(const comine_bench_cfg *cfg, comine_bench_result *res)
{
    memset(res, 0, sizeof *res);
    comine_status st = comine_arch_check(&cfg->arch);
    if (st != COMINE_OK) return st;
    if (cfg->batch < 1) return comine_fail(COMINE_ERR_ARG, "bench: batch must be >= 1 (got %d)", cfg->batch);
    if (cfg->classes < 2) return comine_fail(COMINE_ERR_ARG, "bench: classes must be >= 2 (got %d)", cfg->classes);
    if (cfg->steps < 1) return comine_fail(COMINE_ERR_ARG, "bench: steps must be >= 1 (got %d)", cfg->steps);
    if (cfg->warmup < 1) return comine_fail(COMINE_ERR_ARG, "bench: warmup must be >= 1 (got %d)", cfg->warmup);
    const comine_backend *be;
    st = comine_backend_for_device(&be, cfg->device);
    if (st != COMINE_OK) return st;
    comine_backend_set_threads(be, cfg->threads);
    if (comine_dist_size() > 1 && be != comine_backend_cpu())
        return comine_fail(COMINE_ERR_ARG, "bench: multi-process runs (%d ranks) use the cpu backend only",
                           comine_dist_size());
    res->backend = comine_backend_name(be);
    const int B = cfg->batch, K = cfg->classes, S = cfg->arch.input, n_peers = cfg->comining ? 2 : 1;

    comine_peers peers;
    st = comine_peers_create_sampled(&peers, be, &cfg->arch, n_peers, cfg->classes, 1, cfg->batch, cfg->seed,
                                     cfg->sample_rate);
    if (st != COMINE_OK) return st;
    /* synthetic batch: normalised pixels in [-1, 1), uniform labels */
    size_t n_pix = (size_t)B * S * S * 3;
    float *images = comine_malloc(n_pix * sizeof(float));
    int *labels = comine_malloc((size_t)B * sizeof(int));
    comine_rng rng;
    comine_rng_seed(&rng, cfg->seed, COMINE_STREAM_SYNTH);
    for (size_t i = 0; i < n_pix; i++) images[i] = 2.0f * comine_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < B; i++) labels[i] = (int)comine_rng_below(&rng, (uint32_t)K);
    comine_select_cfg sel = {.mode = cfg->comining ? COMINE_MODE_COMINING : COMINE_MODE_ARCFACE,
                             .reweight = COMINE_REWEIGHT_MARGIN, .w = 1.0f};
    comine_arcface_cfg head_cfg;
    comine_arcface_cfg_default(&head_cfg);
    comine_step_input in = {.images = images, .labels = labels, .n = B, .drop_rate = BENCH_DROP_RATE,
                            .lr = BENCH_LR, .momentum = BENCH_MOMENTUM, .weight_decay = BENCH_WEIGHT_DECAY};
    comine_step_result step;

    double *times = comine_malloc(2 * (size_t)cfg->steps * sizeof(double)), *cpu = times + cfg->steps;
    for (int s = 0; s < cfg->warmup; s++) {
        in.step = s;
        comine_train_step(&step, &peers, &in, &sel, &head_cfg);
    }
    double bytes0 = comine_dist_bytes_sent();
    for (int s = 0; s < cfg->steps; s++) {
        in.step = cfg->warmup + s;
        double t0 = comine_now(), c0 = cpu_seconds();
        comine_train_step(&step, &peers, &in, &sel, &head_cfg);
        times[s] = comine_now() - t0;
        cpu[s] = cpu_seconds() - c0;
    }
    res->bytes_sent_per_step = (comine_dist_bytes_sent() - bytes0) / cfg->steps;
    res->train_step_cpu_s = median(cpu, cfg->steps);
    res->train_step_s = median(times, cfg->steps);
    res->train_step_min_s = times[0];
    res->train_step_max_s = times[cfg->steps - 1];

    /* inference: eval forwards of one network (embeddings) */
    comine_peer *A = &peers.peer[0];
    const float *dev_images = comine_backend_stage_input(be, peers.images, images, n_pix);
    comine_model_forward(A->model, A->emb, dev_images, B, false, NULL);
    for (int s = 0; s < cfg->steps; s++) {
        double t0 = comine_now();
        comine_model_forward(A->model, A->emb, dev_images, B, false, NULL);
        times[s] = comine_now() - t0;
    }
    res->infer_batch_s = median(times, cfg->steps);

    double D = cfg->arch.emb_dim;
    res->num_params = comine_model_num_params(A->model);
    res->flops_per_image = comine_model_flops(A->model);
    const double K_step = peers.sampled ? peers.pfc.count : K; /* Partial FC: the head's classes of a step */
    res->train_flops_per_step = n_peers * (3.0 * res->flops_per_image * B + 6.0 * B * K_step * D);
    res->train_images_per_s = B / res->train_step_s;
    res->infer_images_per_s = B / res->infer_batch_s;
    res->gflops = res->train_flops_per_step / res->train_step_s * 1e-9;
    res->infer_gflops = res->flops_per_image * B / res->infer_batch_s * 1e-9;
    float rss = (float)((double)comine_peak_rss_bytes() / (1024.0 * 1024.0));
    comine_dist_allreduce_max_f32(&rss, 1);
    res->peak_rss_mb = rss;
    res->ranks = comine_dist_size();
    res->threads = comine_num_threads();

    free(times);
    free(images);
    free(labels);
    comine_peers_free(&peers);
    return COMINE_OK;
}

double comine_bench_sgemm_gflops(int n, int reps)
{
    COMINE_ASSERT(n >= 1 && reps >= 1);
    const comine_backend *be = comine_backend_cpu();
    size_t nn = (size_t)n * n;
    float *a = comine_backend_alloc(be, nn), *b = comine_backend_alloc(be, nn), *c = comine_backend_alloc(be, nn);
    float *host = comine_malloc(nn * sizeof(float));
    comine_rng rng;
    comine_rng_seed(&rng, 7, COMINE_STREAM_SYNTH);
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < nn; i++) host[i] = comine_rng_uniform(&rng) - 0.5f;
        comine_backend_upload(be, k == 0 ? a : b, host, nn);
    }
    free(host);
    double *times = comine_malloc((size_t)reps * sizeof(double));
    comine_backend_gemm(be, 0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    for (int r = 0; r < reps; r++) {
        double t0 = comine_now();
        comine_backend_gemm(be, 0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        times[r] = comine_now() - t0;
    }
    double t = median(times, reps);
    free(times);
    comine_backend_free(be, a);
    comine_backend_free(be, b);
    comine_backend_free(be, c);
    return 2.0 * (double)n * n * n / t * 1e-9;
}

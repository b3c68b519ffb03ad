/* cmd_bench.c: `comine bench`: training and inference speed of a network on this machine,
 * on synthetic input (bench.h): images/s, achieved GFLOP/s (analytic FLOPs) and peak
 * resident memory; --json prints one object for scripts (bench/run.sh). */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "comine/bench.h"
#include "comine/core.h"
#include "comine/dist.h"
#include "comine/model.h"

const char comine_cmd_bench_summary[] = "measure training and inference speed on synthetic input";

int comine_cmd_bench(int argc, char **argv)
{
    const char *net, *mode, *device;
    double width, sample_rate;
    int input, batch, classes, steps, warmup, threads, sgemm_n;
    bool json;
    cli_opt opts[] = {
        {"net", ARG_STR, &net, "iresnet18", "network: iresnet18|34|50|100, mobilefacenet", NULL, 0, 0, false},
        {"width", ARG_FLOAT, &width, "1", "iresnet channel multiplier", NULL, 0.01, 4, false},
        {"input", ARG_INT, &input, "112", "input size S (images S x S)", NULL, 16, 448, false},
        {"batch", ARG_INT, &batch, "32", "images per step", NULL, 1, 4096, false},
        {"classes", ARG_INT, &classes, "10575", "ArcFace classes", NULL, 2, 10000000, false},
        {"sample-rate", ARG_FLOAT, &sample_rate, "1", "Partial FC: each step's softmax over the batch's classes and "
         "this fraction of the others, in (0, 1] (1 = every class)", NULL, 0, 0, false},
        {"mode", ARG_CHOICE, &mode, "arcface", "arcface: one network; comining: two peers and the selection",
         "arcface|comining", 0, 0, false},
        {"steps", ARG_INT, &steps, "10", "timed steps (training, then inference batches)", NULL, 1, 100000, false},
        {"warmup-steps", ARG_INT, &warmup, "2", "untimed steps first", NULL, 1, 1000, false},
        {"device", ARG_STR, &device, NULL, "compute device: cpu, cuda or cuda:N (default: the best available)", NULL,
         0, 0, false},
        {"threads", ARG_INT, &threads, "0", "compute threads (0 = the default)", NULL, 0, 4096, false},
        {"sgemm", ARG_INT, &sgemm_n, "0", "also measure the sgemm rate on N x N matrices (0 = no)", NULL, 0, 8192,
         false},
        {"json", ARG_FLAG, &json, NULL, "print one JSON object", NULL, 0, 0, false},
        {"warmup", ARG_ALIAS, NULL, "warmup-steps"},
        {0},
    };
    int rc = cli_parse("bench", comine_cmd_bench_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;

    comine_bench_cfg cfg;
    comine_bench_cfg_default(&cfg);
    if (strlen(net) >= sizeof cfg.arch.name) return cli_error("bench", "option --net: unknown network '%s'", net);
    comine_status st = comine_arch_default(&cfg.arch, net);
    if (st != COMINE_OK) return cli_error("bench", "option --net: %s", comine_last_error());
    cfg.arch.width = (float)width;
    cfg.arch.input = input;
    st = comine_arch_check(&cfg.arch);
    if (st != COMINE_OK) return cli_error("bench", "options --net/--width/--input: %s", comine_last_error());
    cfg.batch = batch;
    cfg.classes = classes;
    if (!(sample_rate > 0 && sample_rate <= 1))
        return cli_error("bench", "option --sample-rate: %g is not in (0, 1] (the fraction of the classes in each "
                                  "step's softmax)", sample_rate);
    cfg.sample_rate = (float)sample_rate;
    cfg.comining = !strcmp(mode, "comining");
    cfg.steps = steps;
    cfg.warmup = warmup;
    cfg.threads = threads;
    cfg.device = device;

    /* under mpirun: the data-parallel step; rank 0 prints */
    if (comine_dist_init() != COMINE_OK) return cli_error("bench", "%s", comine_last_error());
    comine_bench_result r;
    st = comine_bench_run(&cfg, &r);
    if (st != COMINE_OK && comine_dist_size() > 1) comine_dist_abort("comine bench: %s", comine_last_error());
    if (st != COMINE_OK) {
        fprintf(stderr, "comine bench: %s\n", comine_last_error());
        return 1;
    }
    double sgemm = sgemm_n > 0 ? comine_bench_sgemm_gflops(sgemm_n, 5) : 0.0;
    comine_dist_finalize();
    if (comine_dist_rank() != 0) return 0;
    if (json) {
        printf("{\"net\": \"%s\", \"width\": %g, \"input\": %d, \"batch\": %d, \"classes\": %d, \"mode\": \"%s\", "
               "\"backend\": \"%s\", \"threads\": %d, \"steps\": %d, \"params\": %zu, \"gflop_per_image\": %.6f, "
               "\"train_step_s\": %.6f, \"train_step_min_s\": %.6f, \"train_step_max_s\": %.6f, "
               "\"train_step_cpu_s\": %.6f, "
               "\"infer_batch_s\": %.6f, \"train_images_per_s\": %.3f, \"infer_images_per_s\": %.3f, "
               "\"gflops\": %.3f, \"infer_gflops\": %.3f, \"peak_rss_mb\": %.1f, \"sample_rate\": %g",
               cfg.arch.name, (double)cfg.arch.width, cfg.arch.input, batch, classes, mode, r.backend, r.threads,
               steps, r.num_params, r.flops_per_image * 1e-9, r.train_step_s, r.train_step_min_s, r.train_step_max_s,
               r.train_step_cpu_s, r.infer_batch_s, r.train_images_per_s, r.infer_images_per_s, r.gflops,
               r.infer_gflops, r.peak_rss_mb, sample_rate);
        if (sgemm_n > 0) printf(", \"sgemm_gflops\": %.3f", sgemm);
        printf(", \"ranks\": %d, \"bytes_sent_per_step\": %.0f}\n", r.ranks, r.bytes_sent_per_step);
        return 0;
    }
    printf("%s width %g, %dx%d, batch %d, %d classes (sample rate %g), mode %s, %s, %d thread(s)\n", cfg.arch.name,
           (double)cfg.arch.width, cfg.arch.input, cfg.arch.input, batch, classes, sample_rate, mode, r.backend,
           r.threads);
    printf("parameters (one network): %zu, forward %.3f GFLOP/image\n", r.num_params, r.flops_per_image * 1e-9);
    printf("training:  %8.1f images/s  (step %.1f ms median, %.1f..%.1f over %d steps)  %.1f GFLOP/s\n",
           r.train_images_per_s, 1e3 * r.train_step_s, 1e3 * r.train_step_min_s, 1e3 * r.train_step_max_s, steps,
           r.gflops);
    printf("inference: %8.1f images/s  (batch %.1f ms median)  %.1f GFLOP/s\n", r.infer_images_per_s,
           1e3 * r.infer_batch_s, r.infer_gflops);
    printf("peak memory: %.1f MiB%s\n", r.peak_rss_mb, r.ranks > 1 ? " (the largest rank)" : "");
    if (r.ranks > 1)
        printf("ranks: %d, each handing %.1f MB per step to the collectives\n", r.ranks, r.bytes_sent_per_step * 1e-6);
    if (sgemm_n > 0)
        printf("sgemm %dx%d: %.1f GFLOP/s; training reaches %.0f%% of it\n", sgemm_n, sgemm_n, sgemm,
               100.0 * r.gflops / sgemm);
    return 0;
}

/* cmd_estimate.c: `comine estimate`: the noise rate (tau) of a data set (comine/estimate.h).
 *   --data D --out DIR      by cross-fitting: a network trained on each half of every label's
 *                           samples ranks the other half against its head (comine_tau_crossfit);
 *                           the way to estimate the rate of a data set no network has seen
 *   --run RUN [--epoch E]   from the run's cos_epoch<E>.csv: each sample's cos(theta_y) under
 *                           both peers; default E: the end of the warm-up (the run's --tk - 1),
 *                           else the earliest table the run wrote
 *   --model M [--model M2] --data D
 *                           from a model (or two) and a data set.  A model file holds the
 *                           backbone only, not the ArcFace head of its run, so each label's
 *                           centre is the mean of its samples' normalised embeddings without
 *                           the sample itself (leave-one-out); cos(theta_y) is the cosine to
 *                           that centre and a sample is outside its label when another label's
 *                           centre is nearer.
 * With a model or a checkpoint, also each sample's rank p-value (its label's place among the
 * others) and Storey's estimate on them (`rank`: the estimate with --model).
 * Prints every estimator and the chosen estimate; with truth flags (the table's truth column,
 * or the data set's), the true rate and the error.  --json: one JSON object instead. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "comine/backend.h"
#include "comine/core.h"
#include "comine/data.h"
#include "comine/dist.h"
#include "comine/estimate.h"
#include "comine/eval.h"
#include "comine/model.h"
#include "comine/run_files.h"
#include "comine/run_heads.h"
#include "comine/trainer.h"

const char comine_cmd_estimate_summary[] =
    "estimate the noise rate (tau) of a data set: by cross-fitting, or from a run, models or a checkpoint";

/* The integer value of `name` in RUN/args.txt (one argument per line, or name=value); -1
 * when absent. */
static int run_int_arg(const char *run, const char *name)
{
    char *path = comine_path_join(run, "args.txt");
    uint8_t *data = NULL;
    size_t size;
    comine_status st = comine_read_file(path, &data, &size);
    free(path);
    if (st != COMINE_OK) return -1;
    int found = -1;
    size_t nl = strlen(name);
    char *p = (char *)data, *prev = NULL;
    while (p && *p && found < 0) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        if (prev && !strcmp(prev, name)) found = atoi(p);
        else if (!strncmp(p, name, nl) && p[nl] == '=') found = atoi(p + nl + 1);
        prev = p;
        p = e ? e + 1 : NULL;
    }
    free(data);
    return found;
}

/* cos(theta_y) of every sample and whether another label's centre is nearer (the peer places
 * it outside its label).  emb (n, D) normalised rows; cos and outside are (n, 2), column `col`
 * written.  head (K, D): the run's ArcFace head; NULL: each label's centre is the mean of its
 * samples' embeddings, the sample itself left out of its own label's centre. */
static void centre_cosines(float *cos, uint8_t *outside, float *pval, comine_rank_null *nl, int col,
                           const float *emb, const comine_dataset *ds, int D, const float *head)
{
    int n = ds->n, K = ds->num_classes;
    float *sum = comine_alloc_floats((size_t)K * D);
    memset(sum, 0, sizeof(float) * (size_t)K * D);
    int *count = comine_calloc((size_t)K, sizeof(int)), *size = comine_calloc((size_t)K, sizeof(int));
    for (int i = 0; i < n; i++) {
        int y = ds->samples[i].label;
        count[y]++;
        size[y]++;
        for (int c = 0; c < D; c++) sum[(size_t)y * D + c] += emb[(size_t)i * D + c];
    }
    float *full = comine_alloc_floats((size_t)K); /* a row's scores for the null law */
    int null_every = (n + COMINE_RANK_NULL_ROWS - 1) / COMINE_RANK_NULL_ROWS;
    const float *rows = head ? head : sum;
    float *unit = comine_alloc_floats((size_t)K * D); /* each label's centre direction */
    for (int j = 0; j < K; j++) {
        double ss = 0;
        for (int c = 0; c < D; c++) ss += (double)rows[(size_t)j * D + c] * rows[(size_t)j * D + c];
        float inv = ss > 0 ? (float)(1 / sqrt(ss)) : 0.f;
        for (int c = 0; c < D; c++) unit[(size_t)j * D + c] = rows[(size_t)j * D + c] * inv;
        if (head) count[j] = 1; /* every head row is a centre */
    }
    enum { CHUNK = 256 };
    float *dots = comine_alloc_floats((size_t)CHUNK * K);
    for (int i0 = 0; i0 < n; i0 += CHUNK) {
        int m = n - i0 < CHUNK ? n - i0 : CHUNK;
        /* dots (m, K) = emb[i0 ..] unit^T */
        comine_backend_gemm(comine_backend_cpu(), 0, 1, m, K, D, 1.0f, emb + (size_t)i0 * D, D, unit, D, 0.0f, dots,
                            K);
        for (int t = 0; t < m; t++) {
            int i = i0 + t, y = ds->samples[i].label;
            double own = dots[(size_t)t * K + y];
            if (!head) { /* the own label's centre without the sample */
                const float *e = emb + (size_t)i * D, *s = sum + (size_t)y * D;
                double dot = 0, ss = 0;
                for (int c = 0; c < D; c++) {
                    double v = (double)s[c] - e[c];
                    dot += v * e[c];
                    ss += v * v;
                }
                own = count[y] > 1 && ss > 1e-12 ? dot / sqrt(ss) : NAN;
            }
            float best = -INFINITY;
            int above = 0, ties = 0, others = 0;
            for (int j = 0; j < K; j++) {
                if (j == y || count[j] == 0) continue;
                float d = dots[(size_t)t * K + j];
                if (d > best) best = d;
                others++;
                above += d > own;
                ties += d == own;
            }
            cos[2 * (size_t)i + col] = (float)own;
            outside[2 * (size_t)i + col] = isfinite(own) && best > own;
            pval[2 * (size_t)i + col] = isfinite(own) && others > 0 ? (float)((above + 0.5 * ties) / others) : NAN;
            if (isfinite(own) && i % null_every == 0) { /* the sample moved to another label */
                for (int j = 0; j < K; j++) full[j] = count[j] ? dots[(size_t)t * K + j] : NAN;
                full[y] = head || count[y] > 1 ? (float)own : NAN;
                comine_rank_null_add(nl, full, K, y, size);
            }
        }
    }
    comine_free_floats(full);
    free(size);
    comine_free_floats(dots);
    comine_free_floats(unit);
    comine_free_floats(sum);
    free(count);
}

static void json_num(FILE *fp, const char *key, double v, bool comma)
{
    if (isfinite(v)) fprintf(fp, "\"%s\": %.6g%s", key, v, comma ? ", " : "");
    else fprintf(fp, "\"%s\": null%s", key, comma ? ", " : "");
}

static void json_str(FILE *fp, const char *key, const char *s, bool comma)
{
    fprintf(fp, "\"%s\": \"", key);
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', fp);
        if ((unsigned char)*p < 0x20) fprintf(fp, "\\u%04x", *p);
        else fputc(*p, fp);
    }
    fprintf(fp, "\"%s", comma ? ", " : "");
}

/* --samples: index,path,label,p,truth per sample (p empty where it was not ranked). */
static comine_status write_pvalues(const char *path, const comine_dataset *ds, const float *p)
{
    size_t cap = 64 + (size_t)ds->n * 64, len = 0;
    char *buf = comine_malloc(cap);
    len += (size_t)snprintf(buf, cap, "index,path,label,p,truth\n");
    for (int i = 0; i < ds->n; i++) {
        const char *name = comine_dataset_sample_name(ds, i);
        size_t need = strlen(name) + 64;
        if (len + need > cap) {
            cap = 2 * cap + need;
            buf = comine_realloc(buf, cap);
        }
        len += (size_t)snprintf(buf + len, cap - len, "%d,%s,%d,", i, name, ds->samples[i].label);
        if (isfinite(p[i])) len += (size_t)snprintf(buf + len, cap - len, "%.6f", p[i]);
        len += (size_t)snprintf(buf + len, cap - len, ",%d\n", ds->samples[i].truth);
    }
    comine_status st = comine_write_file_atomic(path, buf, len);
    free(buf);
    return st;
}

/* `comine estimate --data D --out DIR`: comine_tau_crossfit with train's settings for the rest. */
static int crossfit(const char *data, const char *root, const char *out, const char *net, double width, int input,
                    int emb_dim, const comine_crossfit_opts *o, int batch, double lr, double scale, double m,
                    unsigned long long seed,
                    int threads, int decode_threads, bool json, const char *samples_path, const char *init,
                    bool arch_given)
{
    if (!out) return cli_error("estimate", "option --out: cross-fitting needs a folder for its runs");
    comine_train_cfg cfg;
    comine_train_cfg_default(&cfg);
    if (init && !arch_given) { /* the network of the model the folds start from */
        comine_model *im = NULL;
        if (comine_model_load(&im, init, comine_backend_cpu(), 1) != COMINE_OK)
            return cli_error("estimate", "option --init: %s", comine_last_error());
        cfg.arch = *comine_model_arch(im);
        comine_model_free(im);
    } else {
        if (comine_arch_default(&cfg.arch, net) != COMINE_OK)
            return cli_error("estimate", "%s", comine_last_error());
        cfg.arch.width = (float)width;
        cfg.arch.input = input;
        cfg.arch.emb_dim = emb_dim;
    }
    cfg.init[0] = init;
    if (comine_arch_check(&cfg.arch) != COMINE_OK) return cli_error("estimate", "%s", comine_last_error());
    cfg.data = data;
    cfg.root = root;
    cfg.batch = batch;
    cfg.lr.base_lr = lr;
    cfg.head.s = (float)scale;
    cfg.head.m = (float)m;
    cfg.seed = seed;
    cfg.threads = threads;
    cfg.loader_threads = decode_threads;
    cfg.quiet = json;
    double tau, lambda;
    int n;
    /* under mpirun: every rank trains each fold's network data-parallel, rank 0 ranks and
     * reports */
    if (comine_dist_init() != COMINE_OK) return cli_error("estimate", "%s", comine_last_error());
    comine_dataset *ds = NULL;
    comine_dataset_opts dopts = {.root = root};
    comine_status st = comine_dataset_open(&ds, data, &dopts);
    float *pv = st == COMINE_OK ? comine_alloc_floats((size_t)(ds->n > 0 ? ds->n : 1)) : NULL;
    if (st == COMINE_OK) st = comine_tau_crossfit(&tau, &lambda, &n, pv, &cfg, o, out);
    bool report = comine_dist_rank() == 0; /* rank 0 alone holds the p-values */
    if (st == COMINE_OK && samples_path && report) st = write_pvalues(samples_path, ds, pv);
    double true_rate = NAN;
    if (st == COMINE_OK && ds->has_truth) { /* the true rate, where the data set carries it */
        int noisy = 0;
        for (int i = 0; i < ds->n; i++) noisy += comine_truth_noisy(ds->samples[i].truth);
        true_rate = ds->n ? (double)noisy / ds->n : NAN;
    }
    comine_free_floats(pv);
    comine_dataset_free(ds);
    if (st != COMINE_OK && comine_dist_size() > 1) comine_dist_abort("comine estimate: %s", comine_last_error());
    comine_dist_finalize();
    if (st != COMINE_OK) {
        fprintf(stderr, "comine estimate: %s\n", comine_last_error());
        return 1;
    }
    if (!report) return 0;
    if (json) {
        printf("{");
        json_str(stdout, "source", data, true);
        printf("\"samples\": %d, ", n);
        json_num(stdout, "tau_estimate", tau, true);
        json_str(stdout, "method", "crossfit", true);
        json_num(stdout, "lambda", lambda, true);
        printf("\"epochs\": %d, \"rounds\": %d, \"folds\": %d, \"by_image\": %g, ", o->epochs, o->rounds, o->folds,
               o->by_image);
        json_num(stdout, "true_rate", true_rate, true);
        json_num(stdout, "error", tau - true_rate, false);
        printf("}\n");
    } else {
        printf("noise-rate estimate of %s by cross-fitting (%s, %d folds, %d epochs per fold's network, %d round%s): "
               "%d samples ranked; wrong labels taken as %g on images at random\n", data, cfg.arch.name, o->folds,
               o->epochs, o->rounds, o->rounds > 1 ? "s" : "", n, o->by_image);
        printf("tau estimate: %.4f (crossfit; Storey's lambda %.2f)\n", tau, lambda);
        if (isfinite(true_rate)) printf("true noise rate: %.4f; error %+.4f\n", true_rate, tau - true_rate);
    }
    return 0;
}

int comine_cmd_estimate(int argc, char **argv)
{
    const char *run, *model_a, *model_b, *data, *root, *checkpoint, *out, *net, *samples_path, *init;
    int epoch, batch, decode_threads, epochs, rounds, folds, input, emb_dim, threads;
    double width, m, scale, lr, by_image;
    unsigned long long seed;
    bool json;
    cli_opt opts[] = {
        {"run", ARG_STR, &run, NULL, "training run folder: reads cos_epoch<E>.csv (both peers' cos(theta_y))", NULL, 0,
         0, false},
        {"epoch", ARG_INT, &epoch, "-1", "with --run: the table's epoch (0-based; -1 = the end of the warm-up, the "
         "run's --tk - 1, else the earliest table)", NULL, -1, 1000000, false},
        {"model", ARG_STR, &model_a, NULL, "model file (with --data; `--model M2` again for the second peer): a network that has not "
         "trained on these labels; a finished run's own peers give back the drop rate it trained with, not the noise", NULL, 0,
         0, false},
        {"model2", ARG_STR, &model_b, NULL, "second peer's model", NULL, 0, 0, false},
        {"checkpoint", ARG_STR, &checkpoint, NULL, "a run's checkpoint.bin (with --data): both peers' networks and "
         "their ArcFace heads, as the checkpoint resumes (a run stopped at the end of the warm-up: its state then)",
         NULL, 0, 0, false},
        {"data", ARG_STR, &data, NULL, "data set (folder, list or RecordIO): for --model or --checkpoint, or alone: "
         "cross-fitting (a network trained on all but one fold of every label's samples ranks that fold; needs "
         "--out)", NULL, 0, 0, false},
        {"out", ARG_STR, &out, NULL, "cross-fitting: folder of the folds' runs (half1, half2 with 2 folds, else "
         "fold1 ...; resumed when there)", NULL, 0, 0, false},
        {"samples", ARG_STR, &samples_path, NULL, "cross-fitting: write each sample's rank p-value (index,path,label,"
         "p,truth; a p near 1: its label is no better than a random one)", NULL, 0, 0, false},
        {"init", ARG_STR, &init, NULL, "cross-fitting: a model file every fold's network starts from (a face model "
         "trained on other people, as train --init; its network unless --net, --width, --input or --emb-dim is "
         "given)", NULL, 0, 0, false},
        {"net", ARG_STR, &net, "iresnet18", "cross-fitting: network (as train --net)", NULL, 0, 0, false},
        {"width", ARG_FLOAT, &width, "1", "cross-fitting: channel width multiplier", NULL, 0.01, 16, false},
        {"input", ARG_INT, &input, "112", "cross-fitting: input size", NULL, 8, 4096, false},
        {"emb-dim", ARG_INT, &emb_dim, "512", "cross-fitting: embedding size", NULL, 2, 65536, false},
        {"epochs", ARG_INT, &epochs, "8", "cross-fitting: epochs of each fold's network (mode arcface)", NULL, 1,
         100000, false},
        {"folds", ARG_INT, &folds, "2", "cross-fitting: folds each label's samples are split into (one network per "
         "fold, trained on the others)", NULL, 2, COMINE_CROSSFIT_FOLDS_MAX, false},
        {"rounds", ARG_INT, &rounds, "1", "cross-fitting: rounds (each after the first trains without the samples "
         "the last ranked most suspicious)", NULL, 1, 9, false},
        {"by-image", ARG_FLOAT, &by_image, "0.5", "the rank estimate (cross-fitting, --model, --checkpoint): the "
         "share of the wrong labels taken to have fallen on images at random, each image equally likely (the rest "
         "on labels at random, each label equally likely); sets the law a wrong label's rank follows "
         "(docs/CROSSFIT.md)", NULL, 0, 1, false},
        {"lr", ARG_FLOAT, &lr, "0.1", "cross-fitting: learning rate (cosine schedule, 1 warm-up epoch)", NULL, 1e-9,
         100, false},
        {"s", ARG_FLOAT, &scale, "64", "cross-fitting: ArcFace scale", NULL, 1, 1024, false},
        {"m", ARG_FLOAT, &m, "0.5", "cross-fitting: ArcFace margin", NULL, 0, 1.5, false},
        {"seed", ARG_U64, &seed, "1", "cross-fitting: seed of the folds and the networks", NULL, 0, 0, false},
        {"threads", ARG_INT, &threads, "0", "cross-fitting: compute threads (0 = all cores)", NULL, 0, 4096, false},
        {"root", ARG_STR, &root, NULL, "list files: folder the paths are relative to", NULL, 0, 0, false},
        {"batch", ARG_INT, &batch, "64", "images per forward (cross-fitting: also the training batch)", NULL, 1, 4096,
         false},
        {"decode-threads", ARG_INT, &decode_threads, "4", "image decoding threads", NULL, 1, 64, false},
        {"json", ARG_FLAG, &json, "0", "print one JSON object", NULL, 0, 0, false},
        {0},
    };
    /* `--model A --model B`: the second --model becomes --model2 */
    char **args = comine_malloc((size_t)(argc + 1) * sizeof(char *));
    int seen = 0;
    for (int i = 0; i < argc; i++) {
        args[i] = argv[i];
        if (i > 0 && !strcmp(argv[i], "--model") && seen++ == 1) args[i] = "--model2";
    }
    args[argc] = NULL;
    int rc = cli_parse("estimate", comine_cmd_estimate_summary, opts, argc, args);
    free(args);
    if (rc) return rc == 1 ? 0 : rc;
    if (seen > 2) return cli_error("estimate", "option --model: at most two models (the two peers)");
    if ((run != NULL) + (model_a != NULL) + (checkpoint != NULL) > 1)
        return cli_error("estimate", "option --run: give one of --run, --model or --checkpoint");
    if (!run && !model_a && !checkpoint && !data)
        return cli_error("estimate", "option --data: give a data set (with --out: cross-fitting), a run folder, a "
                         "model and --data, or a checkpoint and --data");
    static const char *const crossfit_only[] = {"out",    "samples", "init", "net", "width", "input", "emb-dim",
                                                "epochs", "rounds",  "folds", "lr", "s", "m", "seed", "threads"};
    if (run && cli_given(opts, "by-image"))
        return cli_error("estimate", "option --by-image: for the rank estimate (cross-fitting, --model or "
                         "--checkpoint; a run's cos tables have no ranks)");
    for (size_t k = 0; (run || model_a || checkpoint) && k < sizeof crossfit_only / sizeof *crossfit_only; k++)
        if (cli_given(opts, crossfit_only[k]))
            return cli_error("estimate", "option --%s: only for cross-fitting (--data without --run, --model or "
                             "--checkpoint)", crossfit_only[k]);
    if (!run && !model_a && !checkpoint) {
        comine_crossfit_opts o = {.folds = folds, .epochs = epochs, .rounds = rounds, .by_image = by_image};
        bool arch_given = cli_given(opts, "net") || cli_given(opts, "width") || cli_given(opts, "input") ||
                          cli_given(opts, "emb-dim");
        return crossfit(data, root, out, net, width, input, emb_dim, &o, batch, lr, scale, m, seed, threads,
                        decode_threads, json, samples_path, init, arch_given);
    }
    if ((model_a || checkpoint) && !data)
        return cli_error("estimate", "option --data: needed with --%s (the images to embed)",
                         model_a ? "model" : "checkpoint");
    if (model_b && !model_a) return cli_error("estimate", "option --model2: give --model first");
    if (!run && cli_given(opts, "epoch")) return cli_error("estimate", "option --epoch: only with --run");

    int status = 1, n = 0, n_peers = 0;
    comine_rank_null nulls[2];
    memset(nulls, 0, sizeof nulls);
    float *cos = NULL;
    uint8_t *outside = NULL;
    float *pval = NULL;
    int8_t *truth = NULL;
    char *source = NULL;
    comine_cos_table *table = NULL;
    comine_dataset *ds = NULL;
    comine_model *models[2] = {NULL, NULL};
    float *emb = NULL;
    comine_run_heads heads;
    memset(&heads, 0, sizeof heads);
    comine_status st = COMINE_OK;

    if (run) {
        if (!comine_path_is_dir(run)) {
            status = cli_error("estimate", "option --run: %s is not a folder", run);
            goto done;
        }
        if (epoch < 0) {
            int tk = run_int_arg(run, "--tk");
            if (tk < 1) tk = 5; /* the trainer's default */
            char name[64];
            snprintf(name, sizeof name, COMINE_RUN_COS_FORMAT, tk - 1);
            char *p = comine_path_join(run, name);
            if (comine_path_exists(p)) epoch = tk - 1;
            free(p);
            for (int e = 0; e < 100000 && epoch < 0; e++) {
                snprintf(name, sizeof name, COMINE_RUN_COS_FORMAT, e);
                p = comine_path_join(run, name);
                if (comine_path_exists(p)) epoch = e;
                free(p);
            }
            if (epoch < 0) {
                status = cli_error("estimate", "option --run: %s has no cos_epoch<E>.csv (the trainer writes one at "
                                   "the end of the warm-up: has the run reached it?)", run);
                goto done;
            }
        }
        char name[64];
        snprintf(name, sizeof name, COMINE_RUN_COS_FORMAT, epoch);
        source = comine_path_join(run, name);
        if (!comine_path_exists(source)) {
            status = cli_error("estimate", "option --epoch: %s does not exist (tables are written at the end of the "
                               "warm-up and at the last epoch)", source);
            goto done;
        }
        if ((st = comine_cos_load(&table, source))) goto fail;
        n = table->n;
        n_peers = table->has_b ? 2 : 1;
        cos = comine_alloc_floats((size_t)(n ? n : 1) * 2);
        truth = comine_malloc((size_t)(n ? n : 1));
        for (int i = 0; i < n; i++) {
            cos[2 * (size_t)i] = (float)table->cos_a[i];
            cos[2 * (size_t)i + 1] = (float)table->cos_b[i];
            truth[i] = (int8_t)table->truth[i];
        }
    } else {
        const comine_backend *be = comine_backend_cpu();
        comine_dataset_opts dopts = {.root = root};
        if ((st = comine_dataset_open(&ds, data, &dopts))) goto fail;
        if (ds->n == 0) {
            status = cli_error("estimate", "%s: the data set is empty (no images)", data);
            goto done;
        }
        if (ds->num_classes < 2) {
            status = cli_error("estimate", "%s: %d identity; the centres need at least 2", data, ds->num_classes);
            goto done;
        }
        n = ds->n;
        const char *paths[2] = {model_a, model_b};
        if (checkpoint) {
            if ((st = comine_run_heads_load(&heads, checkpoint))) goto fail;
            if (heads.K != ds->num_classes) {
                status = cli_error("estimate", "%s holds heads of %d classes but %s has %d labels: another run's data",
                                   checkpoint, heads.K, data, ds->num_classes);
                goto done;
            }
            if ((st = comine_run_peer_models_load(models, &n_peers, checkpoint, be, 2 * batch))) goto fail;
            paths[0] = paths[1] = checkpoint;
        } else {
            n_peers = model_b ? 2 : 1;
            for (int k = 0; k < n_peers; k++)
                if ((st = comine_model_load(&models[k], paths[k], be, 2 * batch))) goto fail;
        }
        if (n_peers == 2 && comine_model_arch(models[1])->emb_dim != comine_model_arch(models[0])->emb_dim) {
            status = cli_error("estimate", "%s and %s embed in %d and %d dimensions: two peers need equal ones",
                               model_a, model_b, comine_model_arch(models[0])->emb_dim,
                               comine_model_arch(models[1])->emb_dim);
            goto done;
        }
        int D = comine_model_arch(models[0])->emb_dim;
        cos = comine_alloc_floats((size_t)n * 2);
        outside = comine_calloc((size_t)n * 2, 1);
        pval = comine_alloc_floats((size_t)n * 2);
        emb = comine_alloc_floats((size_t)n * D);
        for (int k = 0; k < n_peers; k++) {
            if (!json) fprintf(stderr, "embedding %d images with %s%s\n", n, paths[k], checkpoint ? (k ? " (peer B)" : " (peer A)") : "");
            if ((st = comine_embed_dataset(emb, &models[k], 1, ds, batch, decode_threads, NULL))) goto fail;
            centre_cosines(cos, outside, pval, &nulls[k], k, emb, ds, D, checkpoint ? heads.weight[k] : NULL);
        }
        truth = comine_malloc((size_t)n);
        for (int i = 0; i < n; i++) truth[i] = ds->has_truth ? ds->samples[i].truth : -1;
        source = comine_strdup(data);
    }
    if (n == 0) {
        status = cli_error("estimate", "%s: no samples", source);
        goto done;
    }

    comine_tau_estimate e;
    if ((st = comine_estimate_tau(&e, cos, n, n_peers, outside))) goto fail;
    double rank = NAN, rank_lambda = NAN;
    double tail[2 * COMINE_STOREY_GRID];
    for (int k = 0; k < 2; k++) comine_rank_null_tail(tail + k * COMINE_STOREY_GRID, &nulls[k], by_image);
    if (pval && (st = comine_tau_storey(&rank, &rank_lambda, pval, n, n_peers, tail, 1))) goto fail;
    if (isfinite(rank) && model_a) { /* a network that has not trained on these labels: the rank estimate */
        e.tau = rank < 0 ? 0 : rank > 0.95 ? 0.95 : rank;
        e.method = COMINE_TAU_RANK;
    }
    /* the true rate over the samples the estimate used */
    int known = 0, noisy = 0, used = 0;
    for (int i = 0; i < n; i++) {
        bool seen = isfinite(cos[2 * (size_t)i]) && (n_peers == 1 || isfinite(cos[2 * (size_t)i + 1]));
        if (!seen) continue;
        used++;
        if (truth[i] >= 0) {
            known++;
            noisy += comine_truth_noisy(truth[i]);
        }
    }
    double true_rate = known == used && known > 0 ? (double)noisy / known : NAN;

    if (json) {
        printf("{");
        json_str(stdout, "source", source, true);
        if (run) printf("\"epoch\": %d, ", epoch);
        printf("\"samples\": %d, \"peers\": %d, ", e.n, n_peers);
        json_num(stdout, "tau_estimate", e.tau, true);
        json_str(stdout, "method", comine_tau_method_name(e.method), true);
        json_num(stdout, "mixture", e.mixture, true);
        json_num(stdout, "beta", e.beta, true);
        json_num(stdout, "mirror", e.mirror, true);
        json_num(stdout, "outside", e.outside, true);
        json_num(stdout, "rank", rank, true);
        json_num(stdout, "rank_lambda", rank_lambda, true);
        if (pval) printf("\"by_image\": %g, ", by_image);
        json_num(stdout, "mixture_mean_low", e.gauss.mean[0], true);
        json_num(stdout, "mixture_sd_low", e.gauss.sd[0], true);
        json_num(stdout, "mixture_mean_high", e.gauss.mean[1], true);
        json_num(stdout, "mixture_sd_high", e.gauss.sd[1], true);
        json_num(stdout, "mode", e.mode, true);
        json_num(stdout, "true_rate", true_rate, true);
        json_num(stdout, "error", e.tau - true_rate, false);
        printf("}\n");
    } else {
        printf("noise-rate estimate from %s", source);
        if (run) printf(" (epoch %d)", epoch);
        printf(": %d samples, %d peer%s\n", e.n, n_peers, n_peers > 1 ? "s" : "");
        if (checkpoint) printf("  centres: the ArcFace heads of %s (epoch %d)\n", checkpoint, heads.epoch);
        else if (!run) printf("  centres: leave-one-out mean embeddings of each label (model files hold no ArcFace head)\n");
        printf("  mixture  %.4f  two Gaussians on the peers' mean cos(theta_y): low N(%.3f, %.3f^2) weight %.3f, "
               "high N(%.3f, %.3f^2)\n", e.mixture, e.gauss.mean[0], e.gauss.sd[0], e.gauss.weight[0],
               e.gauss.mean[1], e.gauss.sd[1]);
        printf("  beta     %.4f  two Beta laws on (cos + 1) / 2: low mean %.3f, high mean %.3f\n", e.beta,
               e.beta_fit.mean[0], e.beta_fit.mean[1]);
        printf("  mirror   %.4f  1 - 2 x the share above the mode (%.3f)\n", e.mirror, e.mode);
        if (outside) printf("  outside  %.4f  share that every peer places outside its label\n", e.outside);
        else printf("  outside  -       (needs each peer's argmax: give --model and --data)\n");
        if (isfinite(rank))
            printf("  rank     %.4f  Storey's estimate on the rank p-values of the labels (lambda %.2f)%s\n", rank,
                   rank_lambda, checkpoint ? "; the run's own heads have fitted its wrong labels: too low" : "");
        printf("tau estimate: %.4f (%s)\n", e.tau, comine_tau_method_name(e.method));
        if (isfinite(true_rate))
            printf("true noise rate: %.4f (%d of %d samples flagged by the truth); error %+.4f\n", true_rate, noisy,
                   known, e.tau - true_rate);
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, "comine estimate: %s\n", comine_last_error());
    status = 1;
done:
    comine_cos_free(table);
    comine_run_heads_free(&heads);
    comine_dataset_free(ds);
    for (int k = 0; k < 2; k++)
        if (models[k]) comine_model_free(models[k]);
    comine_free_floats(emb);
    comine_free_floats(cos);
    free(outside);
    comine_free_floats(pval);
    free(truth);
    free(source);
    return status;
}

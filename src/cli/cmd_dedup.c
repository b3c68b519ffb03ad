/* cmd_dedup.c: `comine dedup`: find identities that carry two labels (one person under two
 * labels, as when two data sets are merged).  Each label gets a vector: the size-corrected
 * ratio vector of its samples under each model (comine/dedup.h; the default), their mean
 * embedding (all of them, or the trusted ones: those RUN/noise.csv does not flag), its class
 * centre in both peers' ArcFace heads (RUN/checkpoint.bin), or centre and mean; blocks of the
 * models' / peers' spaces side by side, so a score is the mean of their scores.  A blocked
 * top-k search lists each label's nearest labels; a pair is a duplicate when its score is above
 * the threshold (automatic: median + k_sigma x MAD-sigma of the nearest-other-label
 * similarities; or --threshold) and the two labels are each other's nearest.  The pairs are
 * written as CSV, optionally every candidate (--all), and the list relabelled with one label
 * per group (--merge).  With known pairs (--truth, or DATA.duplicates.tsv from
 * `comine corrupt --duplicate`) it prints precision and recall. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/json_out.h"
#include "comine/backend.h"
#include "comine/core.h"
#include "comine/data.h"
#include "comine/dedup.h"
#include "comine/estimate.h"
#include "comine/eval.h"
#include "comine/model.h"
#include "comine/noise.h"
#include "comine/run_files.h"
#include "comine/run_heads.h"

const char comine_cmd_dedup_summary[] = "find identities that carry two labels (duplicates) and merge them";

typedef enum { SCORE_CENTRES, SCORE_MEANS, SCORE_BOTH, SCORE_RATIO } score_kind;

static bool is_list_file(const char *path)
{
    return path && !comine_path_is_dir(path) && !strstr(path, ".rec") && !strstr(path, ".idx");
}

int comine_cmd_dedup(int argc, char **argv)
{
    const char *means_of, *run, *model_a, *model_b, *data, *root, *out, *merge, *truth_path, *classes_path, *score_name;
    double threshold, k_sigma, trim;
    int top_k, block, batch, threads, decode_threads, show, memory_mb;
    bool all, center, mutual, json, have_eval = false;
    comine_dedup_eval e = {0};
    FILE *txt = stdout; /* the text report: stderr under --json */
    cli_opt opts[] = {
        {"run", ARG_STR, &run, NULL, "training run folder: heads from checkpoint.bin, trusted samples from noise.csv, "
         "models peer_a/peer_b.model (before the run writes them: the networks held in checkpoint.bin)", NULL, 0, 0, false},
        {"model", ARG_STR, &model_a, NULL, "model file for the label vectors (without --run: with --data; also "
         "`--model M2` again for a second model, whose scores are averaged with the first's)", NULL, 0, 0, false},
        {"model2", ARG_STR, &model_b, NULL, "second model", NULL, 0, 0, false},
        {"data", ARG_STR, &data, NULL, "the data set (default with --run: the run's --data)", NULL, 0, 0, false},
        {"root", ARG_STR, &root, NULL, "list files: folder the paths are relative to", NULL, 0, 0, false},
        {"out", ARG_STR, &out, NULL, "pairs CSV: label_a,label_b,score,name_a,name_b,count_a,count_b", NULL, 0, 0,
         true},
        {"score", ARG_CHOICE, &score_name, "ratio", "label vectors: ratio (the mean cosine between the two labels' "
         "samples over their within-label cosines, corrected for small labels), means (cosine of the mean "
         "embeddings), centres (both peers' class centres), both (centres and means, the average of the two "
         "cosines); without --run: ratio or means", "ratio|means|centres|both", 0, 0, false},
        {"trim", ARG_FLOAT, &trim, "0.2", "--score ratio: each label of >= 3 samples drops this share of its samples "
         "least like its mean first (0: none)", NULL, 0, 0.9, false},
        {"memory", ARG_INT, &memory_mb, "2048", "--score ratio: MiB the embeddings may take in memory (one pass over "
         "the images; above it, three passes)", NULL, 0, 1 << 30, false},
        {"means-of", ARG_CHOICE, &means_of, "all", "the samples a label's vector (ratio or mean) uses (with --run: "
         "trusted = those noise.csv does not flag)", "all|trusted", 0, 0, false},
        {"threshold", ARG_FLOAT, &threshold, NULL, "a pair is a duplicate when its score > this (default: "
         "automatic, median + k-sigma x sigma of the nearest-other-label similarities)", NULL, -100, 100, false},
        {"k-sigma", ARG_FLOAT, &k_sigma, NULL, "automatic threshold: robust standard deviations above the median "
         "(default: 1.5 with --score ratio, 2 with the cosine scores)", NULL, 0, 100, false},
        {"mutual", ARG_FLAG, &mutual, "1", "a duplicate pair must also be each other's nearest label (--mutual=0: "
         "the threshold alone)", NULL, 0, 0, false},
        {"top-k", ARG_INT, &top_k, "5", "neighbours listed per label (the candidates)", NULL, 1, 1000, false},
        {"center", ARG_FLAG, &center, "0", "subtract the mean label vector of each block before the cosines",
         NULL, 0, 0, false},
        {"all", ARG_FLAG, &all, "0", "write every candidate pair, with a duplicate 0/1 column", NULL, 0, 0, false},
        {"merge", ARG_STR, &merge, NULL, "write the list relabelled: one label per group of duplicates "
         "(path<TAB>label[<TAB>truth])", NULL, 0, 0, false},
        {"truth", ARG_STR, &truth_path, NULL, "known pairs (label_a<TAB>label_b): print precision and recall "
         "(default: DATA.duplicates.tsv when it exists)", NULL, 0, 0, false},
        {"classes", ARG_STR, &classes_path, NULL, "label<TAB>name file (default: RUN/classes.tsv, DATA.classes.tsv, "
         "the folders' names)", NULL, 0, 0, false},
        {"block", ARG_INT, &block, "2048", "search tile side (memory: 2 x block^2 floats)", NULL, 16, 65536, false},
        {"batch", ARG_INT, &batch, "64", "images per forward", NULL, 1, 4096, false},
        {"threads", ARG_INT, &threads, "0", "compute threads (0 = all cores)", NULL, 0, 4096, false},
        {"json", ARG_FLAG, &json, NULL, "print one JSON object (the rule, the counts, the pairs found, precision and "
         "recall against known pairs); the text goes to stderr"},
        {"decode-threads", ARG_INT, &decode_threads, "4", "image decoding threads", NULL, 1, 64, false},
        {"show", ARG_INT, &show, "10", "pairs to print", NULL, 0, 1000000, false},
        {0},
    };
    /* `--model A --model B`: the second --model becomes --model2 */
    char **args = comine_malloc((size_t)(argc + 1) * sizeof(char *));
    char *renamed = NULL;
    int seen = 0;
    for (int i = 0; i < argc; i++) {
        args[i] = argv[i];
        if (i == 0) continue;
        if (!strcmp(argv[i], "--model")) {
            if (seen++ == 1) args[i] = "--model2";
        } else if (!strncmp(argv[i], "--model=", 8) && seen++ == 1) {
            size_t n = strlen(argv[i]) + 2;
            renamed = comine_malloc(n);
            snprintf(renamed, n, "--model2=%s", argv[i] + 8);
            args[i] = renamed;
        }
    }
    args[argc] = NULL;
    int rc = cli_parse("dedup", comine_cmd_dedup_summary, opts, argc, args);
    free(args);
    if (!rc && seen > 2) rc = cli_error("dedup", "option --model: at most two models (an ensemble of two)");
    if (!rc && !run && !model_a) rc = cli_error("dedup", "option --run or --model: give a run folder, or a model "
                                                "and --data");
    if (!rc && !run && !data) rc = cli_error("dedup", "option --data: needed with --model (the images to embed)");
    if (!rc && model_b && !model_a) rc = cli_error("dedup", "option --model2: give --model first");
    if (!rc && json) txt = stderr;
    score_kind kind = !strcmp(score_name, "centres") ? SCORE_CENTRES
                      : !strcmp(score_name, "both")  ? SCORE_BOTH
                      : !strcmp(score_name, "means") ? SCORE_MEANS
                                                     : SCORE_RATIO;
    if (!rc && !run && (kind == SCORE_CENTRES || kind == SCORE_BOTH))
        rc = cli_error("dedup", "option --score: %s needs the class centres of a run (--run)", score_name);
    if (!rc && center && kind == SCORE_RATIO)
        rc = cli_error("dedup", "option --center: for --score means, centres or both (ratio scores are not cosines)");
    if (!rc && !cli_given(opts, "threshold")) threshold = NAN;
    if (!rc && !cli_given(opts, "k-sigma"))
        k_sigma = kind == SCORE_RATIO ? COMINE_DEDUP_K_SIGMA_RATIO : COMINE_DEDUP_K_SIGMA;
    if (!rc) rc = cli_check_out_file("dedup", "out", out);
    if (!rc) rc = cli_check_out_file("dedup", "merge", merge);
    if (rc) {
        free(renamed);
        return rc == 1 ? 0 : rc;
    }

    const comine_backend *be = comine_backend_cpu();
    comine_backend_set_threads(be, threads);
    comine_status st = COMINE_OK;
    int status = 1, K = 0, n = 0, n_models = 0, n_pairs = 0, n_truth = 0, n_cand = 0;
    char *data_path = NULL, *root_path = NULL, *ckpt = NULL, *noise_path = NULL, *tmp = NULL;
    char *peer_paths[2] = {NULL, NULL};
    comine_run_heads heads = {0};
    comine_noise_table *noise = NULL;
    comine_dataset *ds = NULL;
    comine_model *models[2] = {NULL, NULL};
    comine_sample *own = NULL; /* samples from noise.csv when the data set is not opened */
    const comine_sample *samples = NULL;
    char **names = NULL;
    int *count = NULL, *nbr = NULL, *truth = NULL, *used = NULL, *new_label = NULL;
    uint8_t *trusted = NULL, *fallback = NULL;
    float *x = NULL, *sim = NULL, *means = NULL;
    comine_dedup_pair *cand = NULL, *dups = NULL;
    uint8_t *is_dup = NULL;
    bool need_means = kind != SCORE_CENTRES, models_from_checkpoint = false;

    /* ---- the run: heads, noise.csv, models ---- */
    if (run) {
        if (!comine_path_is_dir(run)) {
            status = cli_error("dedup", "option --run: %s is not a folder", run);
            goto done;
        }
        if (kind == SCORE_CENTRES || kind == SCORE_BOTH) {
            ckpt = comine_path_join(run, COMINE_RUN_CHECKPOINT);
            if (!comine_path_exists(ckpt)) {
                status = cli_error("dedup", "option --run: %s has no %s, so no class centres (heads); use --score "
                                   "means (mean embeddings of the labels' samples)", run, COMINE_RUN_CHECKPOINT);
                goto done;
            }
            if ((st = comine_run_heads_load(&heads, ckpt))) goto fail;
        }
        noise_path = comine_path_join(run, COMINE_RUN_NOISE);
        if (comine_path_exists(noise_path)) {
            if ((st = comine_noise_load(&noise, noise_path))) goto fail;
        } else if (need_means && !strcmp(means_of, "trusted")) {
            comine_warn("dedup: %s has no %s: every sample counts as trusted", run, COMINE_RUN_NOISE);
        }
        if (!model_a && need_means) {
            peer_paths[0] = comine_path_join(run, "peer_a.model");
            peer_paths[1] = comine_path_join(run, "peer_b.model");
            if (!comine_path_exists(peer_paths[0])) {
                /* a run still training (or stopped): the networks of its checkpoint */
                free(peer_paths[0]);
                free(peer_paths[1]);
                peer_paths[1] = NULL;
                peer_paths[0] = comine_path_join(run, COMINE_RUN_CHECKPOINT);
                if (!comine_path_exists(peer_paths[0])) {
                    status = cli_error("dedup", "option --run: %s has neither peer_a.model nor %s (the run has not "
                                       "finished an epoch?)", run, COMINE_RUN_CHECKPOINT);
                    goto done;
                }
                models_from_checkpoint = true;
            }
        }
        data_path = data ? comine_strdup(data) : cli_run_arg(run, "data");
        root_path = root ? comine_strdup(root) : cli_run_arg(run, "root");
    } else {
        data_path = comine_strdup(data);
        root_path = root ? comine_strdup(root) : NULL;
    }
    if (model_a) {
        peer_paths[0] = comine_strdup(model_a);
        if (model_b) peer_paths[1] = comine_strdup(model_b);
    }

    /* ---- the samples: the data set, or noise.csv's rows when only centres are needed ---- */
    bool need_data = need_means || merge;
    if (!data_path && (need_data || !noise)) {
        status = cli_error("dedup", "option --data: %s/args.txt names no data set; give --data", run);
        goto done;
    }
    if (data_path) {
        comine_dataset_opts dopts = {.root = root_path};
        st = comine_dataset_open(&ds, data_path, &dopts);
        if (st && need_data) {
            tmp = comine_strdup(comine_last_error());
            status = cli_error("dedup", "%s%s", tmp, data ? "" : " (the run's --data; give --data to point at it)");
            goto done;
        }
        st = COMINE_OK;
    }
    if (!ds && !noise) {
        status = cli_error("dedup", "option --data: %s cannot be opened and %s has no %s to read the samples from; "
                           "give --data", data_path, run, COMINE_RUN_NOISE);
        goto done;
    }
    if (ds) {
        samples = ds->samples;
        n = ds->n;
        K = ds->num_classes;
        if (noise && noise->n != n) {
            status = cli_error("dedup", "%s has %d rows but %s has %d samples: not the run's data set", noise_path,
                               noise->n, data_path, n);
            goto done;
        }
        for (int i = 0; noise && i < n; i++)
            if (noise->rows[i].label != samples[i].label) {
                status = cli_error("dedup", "%s: sample %d has label %d, %s says %d: not the run's data set",
                                   data_path, i, samples[i].label, noise_path, noise->rows[i].label);
                goto done;
            }
    } else {
        n = noise->n;
        own = comine_calloc((size_t)(n ? n : 1), sizeof(comine_sample));
        for (int i = 0; i < n; i++) {
            own[i].path = noise->rows[i].path;
            own[i].label = noise->rows[i].label;
            own[i].truth = (int8_t)noise->rows[i].truth;
            own[i].rec_offset = -1;
            if (own[i].label + 1 > K) K = own[i].label + 1;
        }
        samples = own;
    }
    if (n == 0) {
        status = cli_error("dedup", "%s: the data set is empty (no images)", data_path ? data_path : noise_path);
        goto done;
    }
    if (K < 2) {
        status = cli_error("dedup", "%s: %d identity; duplicates need at least 2", data_path ? data_path : noise_path,
                           K);
        goto done;
    }
    if (heads.K && heads.K != K) {
        status = cli_error("dedup", "%s holds heads of %d classes but the data set has %d labels: another run or "
                           "another data set", ckpt, heads.K, K);
        goto done;
    }
    if (heads.K && heads.samples != (uint64_t)n) {
        status = cli_error("dedup", "%s was trained on %llu samples but the data set has %d", ckpt,
                           (unsigned long long)heads.samples, n);
        goto done;
    }
    if (merge && ds && ds->kind == COMINE_DATASET_RECORDIO) {
        status = cli_error("dedup", "option --merge: %s is RecordIO; a merged list needs image files", data_path);
        goto done;
    }

    /* ---- names and counts ---- */
    count = comine_calloc((size_t)K, sizeof(int));
    for (int i = 0; i < n; i++) count[samples[i].label]++;
    {
        char *cls = classes_path ? comine_strdup(classes_path) : NULL;
        if (!cls && run) {
            cls = comine_path_join(run, "classes.tsv");
            if (!comine_path_exists(cls)) {
                free(cls);
                cls = NULL;
            }
        }
        if (!cls && data_path && is_list_file(data_path)) {
            size_t len = strlen(data_path) + 16;
            cls = comine_malloc(len);
            snprintf(cls, len, "%s.classes.tsv", data_path);
            if (!comine_path_exists(cls)) {
                free(cls);
                cls = NULL;
            }
        }
        if (cls) {
            st = comine_classes_load(cls, K, &names);
            free(cls);
            if (st) goto fail;
        } else if (ds && ds->class_names) {
            names = comine_malloc(sizeof(char *) * (size_t)K);
            for (int c = 0; c < K; c++) names[c] = comine_strdup(ds->class_names[c]);
        } else {
            names = comine_label_names_from_paths(samples, n, K);
        }
    }

    /* ---- models ---- */
    if (need_means) {
        if (models_from_checkpoint) {
            if ((st = comine_run_peer_models_load(models, &n_models, peer_paths[0], be, 2 * batch))) goto fail;
            fprintf(txt, "models: the %d peer%s held in %s (the run has written no peer_a.model yet)\n", n_models,
                   n_models > 1 ? "s" : "", peer_paths[0]);
        } else {
            n_models = peer_paths[1] && (model_b || comine_path_exists(peer_paths[1])) ? 2 : 1;
            for (int m = 0; m < n_models; m++)
                if ((st = comine_model_load(&models[m], peer_paths[m], be, 2 * batch))) goto fail;
        }
        const comine_arch *a0 = comine_model_arch(models[0]);
        if (n_models == 2) {
            const comine_arch *a1 = comine_model_arch(models[1]);
            if (a1->emb_dim != a0->emb_dim || a1->input != a0->input) {
                status = cli_error("dedup", "%s and %s are of different sizes (embedding %d vs %d, input %d vs %d): "
                                   "two models need equal ones", peer_paths[0], peer_paths[1], a0->emb_dim,
                                   a1->emb_dim, a0->input, a1->input);
                goto done;
            }
        }
        if (heads.K && !model_a && (a0->emb_dim != heads.D || strcmp(a0->name, heads.arch.name) ||
                                    a0->input != heads.arch.input || a0->width != heads.arch.width)) {
            status = cli_error("dedup", "%s (%s width %g input %d, embedding %d) is not the network of %s (%s width %g "
                               "input %d, embedding %d)", peer_paths[0], a0->name, a0->width, a0->input, a0->emb_dim,
                               ckpt, heads.arch.name, heads.arch.width, heads.arch.input, heads.D);
            goto done;
        }
    }

    /* ---- label vectors ---- */
    int P = heads.n_peers, Dm = need_means ? comine_model_arch(models[0])->emb_dim : 0, De = n_models * Dm;
    int dc = kind == SCORE_CENTRES || kind == SCORE_BOTH ? P * heads.D : 0, dim = dc + De;
    x = malloc(sizeof(float) * (size_t)K * dim);
    if (!x) {
        st = comine_fail(COMINE_ERR_NOMEM, "dedup: no memory for %d label vectors of %d floats", K, dim);
        goto fail;
    }
    float len_centre = 1.0f, len_mean = 1.0f;
    if (dc && De) {
        len_centre = (float)sqrt(0.5 / P);
        len_mean = (float)sqrt(0.5);
    } else if (dc) {
        len_centre = (float)sqrt(1.0 / P);
    }
    for (int p = 0; p < P && dc; p++) {
        if (center) comine_dedup_center_rows(heads.weight[p], K, heads.D);
        comine_dedup_put_block(x, K, dim, p * heads.D, heads.weight[p], heads.D, len_centre);
    }
    int trusted_n = 0, fallback_n = 0;
    if (De) {
        /* each model's means in its own space, side by side: the score is the mean of their cosines */
        double t0 = comine_now();
        bool only_trusted = !strcmp(means_of, "trusted") && noise;
        trusted = comine_malloc((size_t)n);
        for (int i = 0; i < n; i++) {
            trusted[i] = !only_trusted || !noise->rows[i].flagged;
            trusted_n += trusted[i];
        }
        means = comine_alloc_floats((size_t)K * Dm);
        used = comine_malloc(sizeof(int) * (size_t)K);
        fallback = comine_calloc((size_t)K, 1);
        int dropped = 0;
        bool one_pass = true;
        for (int m = 0; m < n_models; m++) {
            float len = len_mean / (float)sqrt((double)n_models);
            if (kind == SCORE_RATIO) {
                /* unnormalised rows: the inner product of two is the mean of the models' ratio scores */
                if ((st = comine_dedup_label_ratio(means, used, &dropped, &one_pass, &models[m], 1, ds, trusted, trim,
                                                   COMINE_DEDUP_SHRINK, len, (size_t)memory_mb << 20, batch,
                                                   decode_threads)))
                    goto fail;
                for (int c = 0; c < K; c++)
                    memcpy(x + (size_t)c * dim + dc + m * Dm, means + (size_t)c * Dm, sizeof(float) * (size_t)Dm);
                continue;
            }
            if ((st = comine_dedup_label_means(means, used, fallback, &models[m], 1, ds, trusted, batch,
                                               decode_threads)))
                goto fail;
            if (center) comine_dedup_center_rows(means, K, Dm);
            comine_dedup_put_block(x, K, dim, dc + m * Dm, means, Dm, len);
        }
        if (kind == SCORE_RATIO) { /* the labels without a trusted sample use all theirs */
            for (int i = 0; i < n; i++) fallback[samples[i].label] |= trusted[i];
            for (int c = 0; c < K; c++) fallback[c] = count[c] > 0 && !fallback[c];
        }
        for (int c = 0; c < K; c++) fallback_n += fallback[c];
        const char *what = kind == SCORE_RATIO ? "ratio scores" : "mean embeddings";
        if (only_trusted)
            fprintf(txt, "%s of the trusted samples: %d of %d samples, %d labels without one use all theirs", what,
                    trusted_n, n, fallback_n);
        else
            fprintf(txt, "%s of all %d samples", what, n);
        if (kind == SCORE_RATIO)
            fprintf(txt, "; %d samples least like their label's mean left out (--trim %g; %s)", dropped, trim,
                    one_pass ? "one pass over the images" : "three passes: the embeddings exceed --memory");
        fprintf(txt, " (%d model%s, %.1f s)\n", n_models, n_models > 1 ? "s" : "", comine_now() - t0);
    }

    /* ---- search, candidates, threshold ---- */
    double t0 = comine_now();
    nbr = comine_malloc(sizeof(int) * (size_t)K * top_k);
    sim = comine_malloc(sizeof(float) * (size_t)K * top_k);
    if ((st = comine_dedup_topk(nbr, sim, x, K, dim, top_k, block))) goto fail;
    double search_s = comine_now() - t0;
    n_cand = comine_dedup_candidates(&cand, nbr, sim, K, top_k);
    comine_dedup_rule rule;
    double thr_auto = comine_dedup_threshold(sim, K, top_k, k_sigma, &rule);
    double thr = isfinite(threshold) ? threshold : thr_auto;
    is_dup = comine_malloc((size_t)(n_cand ? n_cand : 1));
    n_pairs = comine_dedup_select(is_dup, cand, n_cand, nbr, top_k, thr, mutual);
    dups = comine_malloc(sizeof(comine_dedup_pair) * (size_t)(n_pairs ? n_pairs : 1));
    for (int p = 0, m = 0; p < n_cand; p++)
        if (is_dup[p]) dups[m++] = cand[p];
    const char *kind_name = kind == SCORE_CENTRES ? "centres"
                            : kind == SCORE_MEANS ? "means"
                            : kind == SCORE_RATIO ? "ratio"
                                                  : "both";
    const char *kind_text = kind == SCORE_CENTRES ? "class centres"
                            : kind == SCORE_MEANS ? "mean embeddings"
                            : kind == SCORE_RATIO ? "ratio vectors"
                                                  : "centres + means";
    fprintf(txt, "%d labels, %d samples; vectors: %s (%d floats); top-%d search %.2f s; %d candidate pairs\n", K, n,
           kind_text, dim, top_k, search_s, n_cand);
    fprintf(txt, "nearest-other-label similarity: median %.4f, sigma %.4f (1.4826 MAD); automatic threshold %.4f "
           "(median + %g sigma)%s\n", rule.median, rule.sigma, thr_auto, k_sigma,
           isfinite(threshold) ? "" : " used");
    if (isfinite(threshold)) fprintf(txt, "threshold %.4f (--threshold)\n", thr);
    fprintf(txt, "%d pairs judged duplicate (score > %.4f%s)\n", n_pairs, thr,
           mutual ? ", each label the other's nearest" : "");

    /* ---- outputs ---- */
    comine_atomic_file af;
    if ((st = comine_atomic_open(&af, out))) goto fail;
    fprintf(af.fp, "label_a,label_b,score,name_a,name_b,count_a,count_b%s\n", all ? ",duplicate" : "");
    for (int p = 0; p < (all ? n_cand : n_pairs); p++) {
        const comine_dedup_pair *q = all ? &cand[p] : &dups[p];
        fprintf(af.fp, "%d,%d,%.6f,", q->a, q->b, q->score);
        comine_csv_field(af.fp, names[q->a]);
        fputc(',', af.fp);
        comine_csv_field(af.fp, names[q->b]);
        fprintf(af.fp, ",%d,%d", count[q->a], count[q->b]);
        if (all) fprintf(af.fp, ",%d", is_dup[p]);
        fputc('\n', af.fp);
    }
    if ((st = comine_atomic_commit(&af))) goto fail;
    int shown = show < n_pairs ? show : n_pairs;
    if (shown) fprintf(txt, "%7s %7s %8s  %s\n", "label_a", "label_b", "score", "names (counts)");
    for (int p = 0; p < shown; p++)
        fprintf(txt, "%7d %7d %8.4f  %s (%d) = %s (%d)\n", dups[p].a, dups[p].b, dups[p].score, names[dups[p].a],
               count[dups[p].a], names[dups[p].b], count[dups[p].b]);
    fprintf(txt, "pairs: %s%s\n", out, all ? " (every candidate, with the duplicate column)" : "");
    if (merge) {
        new_label = comine_malloc(sizeof(int) * (size_t)K);
        int groups = comine_dedup_merge_map(new_label, K, dups, n_pairs);
        comine_sample *m = comine_malloc(sizeof(comine_sample) * (size_t)n);
        for (int i = 0; i < n; i++) {
            m[i] = samples[i];
            m[i].label = new_label[samples[i].label];
        }
        st = comine_list_write(merge, m, n);
        free(m);
        if (st) goto fail;
        fprintf(txt, "merged list: %s (%d labels -> %d)\n", merge, K, groups);
    }
    /* ---- against known pairs ---- */
    {
        char *tp = truth_path ? comine_strdup(truth_path) : NULL;
        if (!tp && data_path && is_list_file(data_path)) {
            size_t len = strlen(data_path) + 20;
            tp = comine_malloc(len);
            snprintf(tp, len, "%s.duplicates.tsv", data_path);
            if (!comine_path_exists(tp)) {
                free(tp);
                tp = NULL;
            }
        }
        if (tp) {
            st = comine_duplicates_load(tp, &truth, &n_truth);
            if (st) {
                free(tp);
                goto fail;
            }
            for (int i = 0; i < 2 * n_truth; i++)
                if (truth[i] >= K) {
                    status = cli_error("dedup", "%s: label %d is not a label of the data set (%d labels)", tp,
                                       truth[i], K);
                    free(tp);
                    goto done;
                }
            comine_dedup_evaluate(&e, dups, n_pairs, truth, n_truth);
            have_eval = true;
            fprintf(txt, "against %s (%d true pairs): precision %.4f recall %.4f F1 %.4f (TP %d FP %d FN %d)\n", tp,
                   e.truth, e.precision, e.recall, e.f1, e.tp, e.found - e.tp, e.truth - e.tp);
            free(tp);
        }
    }
    if (json) {
        printf("{\"labels\": %d, \"samples\": %d, \"vectors\": \"%s\", \"candidates\": %d, \"median\": ", K, n,
               kind_name, n_cand);
        cli_json_num(stdout, rule.median);
        printf(", \"sigma\": ");
        cli_json_num(stdout, rule.sigma);
        printf(", \"threshold\": ");
        cli_json_num(stdout, thr);
        printf(", \"automatic\": %s, \"mutual\": %s, \"duplicates\": %d, \"out\": ", isfinite(threshold) ? "false" : "true",
               mutual ? "true" : "false", n_pairs);
        cli_json_str(stdout, out);
        printf(", \"pairs\": [");
        for (int p = 0; p < n_pairs; p++) {
            printf("%s{\"label_a\": %d, \"label_b\": %d, \"score\": ", p ? ", " : "", dups[p].a, dups[p].b);
            cli_json_num(stdout, dups[p].score);
            printf(", \"name_a\": ");
            cli_json_str(stdout, names[dups[p].a]);
            printf(", \"name_b\": ");
            cli_json_str(stdout, names[dups[p].b]);
            printf("}");
        }
        printf("], \"truth\": ");
        if (have_eval) {
            printf("{\"pairs\": %d, \"precision\": ", e.truth);
            cli_json_num(stdout, e.precision);
            printf(", \"recall\": ");
            cli_json_num(stdout, e.recall);
            printf(", \"f1\": ");
            cli_json_num(stdout, e.f1);
            printf(", \"tp\": %d}", e.tp);
        } else {
            printf("null");
        }
        printf("}\n");
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, "comine dedup: %s\n", comine_last_error());
    status = 1;
done:
    free(renamed);
    free(tmp);
    free(data_path);
    free(root_path);
    free(ckpt);
    free(noise_path);
    free(peer_paths[0]);
    free(peer_paths[1]);
    comine_run_heads_free(&heads);
    free(own);
    comine_noise_free(noise);
    for (int m = 0; m < 2; m++)
        if (models[m]) comine_model_free(models[m]);
    comine_dataset_free(ds);
    comine_names_free(names, K);
    free(count);
    free(nbr);
    free(sim);
    free(truth);
    free(used);
    free(new_label);
    free(trusted);
    free(fallback);
    free(x);
    comine_free_floats(means);
    free(cand);
    free(dups);
    free(is_dup);
    return status;
}

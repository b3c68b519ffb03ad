/* cmd_eval.c: `comine eval`: face verification of one model (or the ensemble of two) on a
 * pairs file or an insightface .bin: flip-test embeddings, cosine scores, the k-fold accuracy
 * protocol, ROC AUC and TAR at FAR 1e-2 / 1e-3 (and at the FARs of --far); text or one JSON
 * object; optional per-pair scores file, ROC table (--roc) and ROC chart (--plot). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "comine/backend.h"
#include "comine/core.h"
#include "comine/eval.h"
#include "comine/model.h"

const char comine_cmd_eval_summary[] =
    "face verification of a model (or two, as an ensemble) on a pairs file or a .bin";

static void json_num(const char *key, double v, bool last)
{
    if (isfinite(v)) printf("\"%s\": %.10g%s", key, v, last ? "" : ", ");
    else printf("\"%s\": null%s", key, last ? "" : ", ");
}

static void text_num(const char *what, double v, double scale, const char *unit)
{
    if (isfinite(v)) printf("%-18s %.4f%s\n", what, v * scale, unit);
    else printf("%-18s n/a\n", what);
}

int comine_cmd_eval(int argc, char **argv)
{
    const char *model_a, *model_b, *pairs_file, *bin_file, *root, *scores_file, *far_list, *roc_file, *plot_file;
    const char *device;
    int folds, batch, threads, decode_threads;
    bool json, quiet;
    cli_opt opts[] = {
        {"model", ARG_STR, &model_a, NULL, "model file", NULL, 0, 0, true},
        {"model2", ARG_STR, &model_b, NULL, "second model: evaluate the ensemble (also `--model M2` again)", NULL, 0,
         0, false},
        {"pairs", ARG_STR, &pairs_file, NULL, "pairs file (LFW `N` / `F N` format, or pathA<TAB>pathB<TAB>same); "
         "this or --bin", NULL, 0, 0, false},
        {"bin", ARG_STR, &bin_file, NULL, "insightface verification set (lfw.bin, cfp_fp.bin, agedb_30.bin: a pickle "
         "of images and issame; fold k = the k-th contiguous part of the pairs); this or --pairs", NULL, 0, 0, false},
        {"root", ARG_STR, &root, NULL, "image root (LFW pairs: Name/Name_000n.jpg under it; lists: default the list's "
         "folder)", NULL, 0, 0, false},
        {"folds", ARG_INT, &folds, "10", "folds for `N` files, lists and .bin (`F N` files use their F)", NULL, 1,
         COMINE_VERIFY_MAX_FOLDS, false},
        {"json", ARG_FLAG, &json, NULL, "print one JSON object", NULL, 0, 0, false},
        {"scores", ARG_STR, &scores_file, NULL, "write pathA<TAB>pathB<TAB>score<TAB>same per pair", NULL, 0, 0, false},
        {"far", ARG_STR, &far_list, NULL, "also report TAR at these FARs, comma-separated (e.g. 1e-6,1e-5,1e-4,1e-3; "
         "JSON keys tar_far_1e-4 ...; n/a or null when there are fewer than 1/FAR mismatched pairs)", NULL, 0, 0, false},
        {"roc", ARG_STR, &roc_file, NULL, "write the ROC: threshold<TAB>far<TAB>tar per distinct score, with a header",
         NULL, 0, 0, false},
        {"plot", ARG_STR, &plot_file, NULL, "draw the ROC (TAR against a log FAR axis) as a PNG (needs PLplot)", NULL, 0,
         0, false},
        {"batch", ARG_INT, &batch, "64", "images per forward (each is run with its mirror)", NULL, 1, 4096, false},
        {"threads", ARG_INT, &threads, "0", "compute threads (0 = all cores)", NULL, 0, 4096, false},
        {"decode-threads", ARG_INT, &decode_threads, "4", "image decoding threads", NULL, 1, 64, false},
        {"device", ARG_STR, &device, NULL, "compute device: cpu, cuda or cuda:N (default: the best available)"},
        {"quiet", ARG_FLAG, &quiet, NULL, "no progress lines (--json has none either)"},
        {0},
    };
    /* `--model A --model B` (or --model=B): the second --model becomes --model2 */
    char **args = comine_malloc((size_t)(argc + 1) * sizeof(char *));
    char *renamed = NULL;  /* a rewritten argument: parsed options may point into it, so it lives to the end */
    int seen = 0;
    for (int i = 0; i < argc; i++) {
        args[i] = argv[i];
        if (i == 0) continue;
        if (!strcmp(argv[i], "--model")) {
            if (seen++ == 1) args[i] = "--model2";
        } else if (!strncmp(argv[i], "--model=", 8)) {
            if (seen++ == 1) {
                size_t n = strlen(argv[i]) + 2;
                renamed = comine_malloc(n);
                snprintf(renamed, n, "--model2=%s", argv[i] + 8);
                args[i] = renamed;
            }
        }
    }
    args[argc] = NULL;
    int rc = cli_parse("eval", comine_cmd_eval_summary, opts, argc, args);
    free(args);
    if (!rc && seen > 2) rc = cli_error("eval", "option --model: at most two models (an ensemble of two)");
    if (!rc && !pairs_file == !bin_file) rc = cli_error("eval", "option --pairs or --bin: give one of them");
    if (!rc && bin_file && root)
        rc = cli_error("eval", "option --root: a .bin holds its images (--root goes with --pairs)");
    double fars[COMINE_MAX_FARS + 2];
    int n_fars = 0;
    if (!rc && far_list && comine_far_list_parse(fars, &n_fars, far_list, "option --far"))
        rc = cli_error("eval", "%s", comine_last_error());
    if (!rc && plot_file && !comine_report_have_plots())
        rc = cli_error("eval", "option --plot: plots are unavailable: comine was built without PLplot, or PLplot has "
                       "no pngcairo driver (Debian: plplot-driver-cairo); --roc writes the curve as text");
    if (!rc) rc = cli_check_out_file("eval", "roc", roc_file);
    if (!rc) rc = cli_check_out_file("eval", "plot", plot_file);
    if (rc) {
        free(renamed);
        return rc == 1 ? 0 : rc;
    }
    /* the FARs reported: 1e-2 and 1e-3 always (their own keys), then those of --far */
    int n_extra = n_fars;
    double *extra = fars;
    double tars[COMINE_MAX_FARS];

    const comine_backend *be;
    if (comine_backend_for_device(&be, device)) {
        fprintf(stderr, "comine eval: %s\n", comine_last_error());
        return 2;
    }
    comine_backend_set_threads(be, threads);
    if (!quiet && !json) comine_embed_set_progress("comine eval"); /* --json: one object, nothing else */
    comine_pairs *pairs = NULL;
    comine_binset *set = NULL;
    comine_model *models[2] = {NULL, NULL};
    int n_models = model_b ? 2 : 1;
    float *scores = NULL;
    comine_verify_result res;
    comine_status st;
    const char *source = bin_file ? bin_file : pairs_file;
    int n_pairs, n_images;
    if (bin_file) {
        st = comine_binset_load(&set, bin_file);
        if (st) goto done;
        if (!cli_given(opts, "folds") && folds > set->n) folds = set->n;  /* as lists: min(10, pairs) */
        if (folds > set->n) {
            st = comine_fail(COMINE_ERR_ARG, "%s: --folds %d is more than the %d pairs", bin_file, folds, set->n);
            goto done;
        }
        n_pairs = set->n;
        n_images = 2 * set->n;
    } else {
        st = comine_pairs_load(&pairs, pairs_file, root);
        if (st) goto done;
        if (!pairs->file_folds && folds != pairs->folds) {  /* `F N` files keep their own folds */
            if (folds > pairs->n) {
                st = comine_fail(COMINE_ERR_ARG, "%s: --folds %d is more than the %d pairs", pairs_file, folds,
                                 pairs->n);
                goto done;
            }
            pairs->folds = folds;
            comine_kfold_assign(pairs->fold, pairs->n, folds);
        }
        n_pairs = pairs->n;
        n_images = pairs->n_images;
    }
    for (int m = 0; m < n_models; m++) {
        st = comine_model_load(&models[m], m ? model_b : model_a, be, 2 * batch);
        if (st) goto done;
    }
    scores = comine_malloc((size_t)n_pairs * sizeof(float));
    if (set) st = comine_verify_binset(&res, models, n_models, set, folds, batch, decode_threads, scores);
    else st = comine_verify_models_threads(&res, models, n_models, pairs, batch, decode_threads, scores);
    if (st) goto done;
    for (int f = 0; f < n_extra; f++) {  /* 1e-2 and 1e-3 are in res already */
        if (extra[f] == 1e-2 || extra[f] == 1e-3) {
            memmove(&extra[f], &extra[f + 1], (size_t)(n_extra - f - 1) * sizeof *extra);
            n_extra--;
            f--;
        }
    }
    comine_tar_at_fars(tars, extra, n_extra, scores, set ? set->same : pairs->same, n_pairs);
    if (roc_file || plot_file) {
        comine_roc_point *roc = NULL;
        int n_roc = comine_roc_curve(&roc, scores, set ? set->same : pairs->same, n_pairs);
        if (n_roc == 0) {
            st = comine_fail(COMINE_ERR_ARG, "%s: a ROC needs both matched and mismatched pairs", source);
            goto done;
        }
        if (roc_file) st = comine_roc_write(roc_file, roc, n_roc);
        if (!st && plot_file) {
            const comine_roc_point *curves[1] = {roc};
            char title[512];
            const char *base = strrchr(source, '/');
            snprintf(title, sizeof title, "ROC: %s (%d pairs)", base ? base + 1 : source, n_pairs);
            st = comine_plot_roc(plot_file, curves, &n_roc, NULL, 1, title);
        }
        free(roc);
        if (st) goto done;
    }
    if (scores_file) {
        comine_atomic_file af;
        if ((st = comine_atomic_open(&af, scores_file))) goto done;
        for (int i = 0; i < n_pairs; i++) {
            if (set)
                fprintf(af.fp, "%s[%d]\t%s[%d]\t%.9g\t%d\n", bin_file, 2 * i, bin_file, 2 * i + 1, scores[i],
                        set->same[i]);
            else
                fprintf(af.fp, "%s\t%s\t%.9g\t%d\n", pairs->images[pairs->a[i]], pairs->images[pairs->b[i]],
                        scores[i], pairs->same[i]);
        }
        if ((st = comine_atomic_commit(&af))) goto done;
    }
    if (json) {
        printf("{");
        json_num("accuracy", res.accuracy, false);
        json_num("accuracy_std", res.accuracy_std, false);
        json_num("auc", res.auc, false);
        json_num("tar_far_1e-2", res.tar_far_1e2, false);
        json_num("tar_far_1e-3", res.tar_far_1e3, false);
        for (int f = 0; f < n_extra; f++) {
            char key[64], text[32];
            comine_far_text(text, sizeof text, extra[f]);
            snprintf(key, sizeof key, "tar_far_%s", text);
            json_num(key, tars[f], false);
        }
        printf("\"pairs\": %d, \"folds\": %d, \"images\": %d, ", res.pairs, res.folds, n_images);
        json_num("threshold", res.threshold, false);
        json_num("embed_images_per_s", res.embed_images_per_s, false);
        json_num("seconds", res.seconds, true);
        printf("}\n");
    } else {
        printf("%s: %d pairs, %d folds, %d images, %s\n", source, res.pairs, res.folds, n_images,
               n_models == 2 ? "ensemble of 2 models" : "1 model");
        printf("%-18s %.2f%% +- %.2f%%\n", "accuracy", 100 * res.accuracy, 100 * res.accuracy_std);
        text_num("AUC", res.auc, 1, "");
        text_num("TAR@FAR=1e-2", res.tar_far_1e2, 100, "%");
        text_num("TAR@FAR=1e-3", res.tar_far_1e3, 100, "%");
        for (int f = 0; f < n_extra; f++) {
            char what[64], text[32];
            comine_far_text(text, sizeof text, extra[f]);
            snprintf(what, sizeof what, "TAR@FAR=%s", text);
            text_num(what, tars[f], 100, "%");
        }
        printf("%-18s %.4f\n", "threshold (cos)", res.threshold);
        printf("%-18s %.1f images/s (flip test), %.2f s in all\n", "embedding", res.embed_images_per_s, res.seconds);
        if (roc_file) printf("ROC: %s\n", roc_file);
        if (plot_file) printf("ROC plot: %s\n", plot_file);
    }
done:
    if (st) fprintf(stderr, "comine eval: %s\n", comine_last_error());
    free(scores);
    for (int m = 0; m < 2; m++)
        if (models[m]) comine_model_free(models[m]);
    comine_pairs_free(pairs);
    comine_binset_free(set);
    free(renamed);
    return st ? 1 : 0;
}

/* cmd_eval.c: `comine eval`: face verification of one model (or the ensemble of two) on a
 * pairs file or an insightface .bin: flip-test embeddings, cosine scores, the k-fold accuracy
 * protocol, ROC AUC and TAR at FAR 1e-2 / 1e-3; text or one JSON object; optional per-pair
 * scores file. */
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
    const char *model_a, *model_b, *pairs_file, *bin_file, *root, *scores_file;
    int folds, batch, threads, decode_threads;
    bool json;
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
        {"batch", ARG_INT, &batch, "64", "images per forward (each is run with its mirror)", NULL, 1, 4096, false},
        {"threads", ARG_INT, &threads, "0", "compute threads (0 = the default)", NULL, 0, 4096, false},
        {"decode-threads", ARG_INT, &decode_threads, "4", "image decoding threads", NULL, 1, 64, false},
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
    if (rc) {
        free(renamed);
        return rc == 1 ? 0 : rc;
    }

    const comine_backend *be = comine_backend_cpu();
    comine_backend_set_threads(be, threads);
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
        printf("%-18s %.4f\n", "threshold (cos)", res.threshold);
        printf("%-18s %.1f images/s (flip test), %.2f s in all\n", "embedding", res.embed_images_per_s, res.seconds);
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

/* test_eval_metrics.c: verification metrics (k-fold accuracy, std, AUC, TAR at FAR) against
 * hand-computed values and against tests/ref/verify_ref.py (an independent numpy version) on
 * random scores, with and without ties; the contiguous KFold split; detection P/R/F1/AP.
 * Without numpy for /usr/bin/python3 the numpy comparison is skipped (exit 77 when the rest
 * passes). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/eval.h"
#include "fixture.h"

static bool have_numpy(void)
{
    return system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
}

/* Value of "key": in a one-line JSON object; NAN for null, -1e300 when missing. */
static double json_num(const char *js, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(js, pat);
    if (!p) return -1e300;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (!strncmp(p, "null", 4)) return NAN;
    return strtod(p, NULL);
}

static void same_or_both_nan(const char *what, double got, double ref)
{
    bool ok = (isnan(got) && isnan(ref)) || fabs(got - ref) <= 1e-6;
    printf("%s %-34s comine %.9f  numpy %.9f\n", ok ? "ok  " : "FAIL", what, got, ref);
    if (!ok) fx_fail_count++;
}

static void compare_with_numpy(const char *name, const float *s, const uint8_t *same, const int *fold, int n,
                               int folds)
{
    comine_verify_result r;
    comine_verify_scores(&r, s, same, fold, n, folds);
    char path[256];
    snprintf(path, sizeof path, "test_eval_metrics_%s.tsv", name);
    FILE *fp = fopen(path, "w");
    FX_EXPECT(fp, "cannot write %s", path);
    if (!fp) return;
    int *own = NULL;
    if (!fold) {
        own = malloc((size_t)n * sizeof(int));
        comine_kfold_assign(own, n, folds);
    }
    for (int i = 0; i < n; i++) fprintf(fp, "%.9g\t%d\t%d\n", s[i], same[i], fold ? fold[i] : own[i]);
    fclose(fp);
    free(own);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/verify_ref.py %s", COMINE_SOURCE_DIR, path);
    FILE *pp = popen(cmd, "r");
    static char js[65536];
    size_t got = pp ? fread(js, 1, sizeof js - 1, pp) : 0;
    js[got] = 0;
    int rc = pp ? pclose(pp) : -1;
    FX_EXPECT(rc == 0 && got > 0, "%s: verify_ref.py failed", name);
    if (rc != 0) return;
    printf("-- %s: %d pairs, %d folds (accuracy %.4f +- %.4f, AUC %.4f)\n", name, n, folds, r.accuracy,
           r.accuracy_std, r.auc);
    same_or_both_nan("accuracy", r.accuracy, json_num(js, "accuracy"));
    same_or_both_nan("accuracy_std", r.accuracy_std, json_num(js, "accuracy_std"));
    same_or_both_nan("auc", r.auc, json_num(js, "auc"));
    same_or_both_nan("tar_far_1e-2", r.tar_far_1e2, json_num(js, "tar_far_1e-2"));
    same_or_both_nan("tar_far_1e-3", r.tar_far_1e3, json_num(js, "tar_far_1e-3"));
    /* held-out accuracies, in order */
    const char *p = strstr(js, "\"folds\": [");
    FX_EXPECT(p, "no folds in the reference output");
    if (!p) return;
    p += strlen("\"folds\": [");
    double max_err = 0;
    for (int f = 0; f < folds; f++) {
        char *e;
        double v = strtod(p, &e);
        max_err = fmax(max_err, fabs(v - r.fold_accuracy[f]));
        p = e + 1;
    }
    printf("%s %-34s max|err| %.3g\n", max_err <= 1e-9 ? "ok  " : "FAIL", "fold accuracies", max_err);
    if (max_err > 1e-9) fx_fail_count++;
}

static void random_case(const char *name, int n, int folds, bool blocks, bool ties, bool single_set, uint64_t seed)
{
    comine_rng rng;
    comine_rng_seed(&rng, seed, COMINE_STREAM_EVAL);
    float *s = malloc((size_t)n * sizeof(float));
    uint8_t *same = malloc((size_t)n);
    int *fold = blocks ? malloc((size_t)n * sizeof(int)) : NULL;
    int per_fold = n / folds;
    for (int i = 0; i < n; i++) {
        if (blocks) {
            fold[i] = i / per_fold;
            same[i] = (i % per_fold) < per_fold / 2;     /* LFW's `F N`: N matched then N mismatched */
        } else if (single_set) {
            same[i] = i < n / 2;                         /* LFW's `N`: all matched first */
        } else {
            same[i] = comine_rng_uniform(&rng) < 0.5f;
        }
        float v = (same[i] ? 0.45f : 0.12f) + 0.18f * comine_rng_normal(&rng);
        if (ties) v = roundf(v * 50.f) / 50.f;
        s[i] = v;
    }
    compare_with_numpy(name, s, same, fold, n, folds);
    free(s);
    free(same);
    free(fold);
}

int main(void)
{
    /* KFold(shuffle=False) sizes */
    int fold[1005];
    comine_kfold_assign(fold, 1005, 10);
    FX_EXPECT(fold[0] == 0 && fold[100] == 0 && fold[101] == 1 && fold[504] == 4 && fold[505] == 5 &&
                  fold[604] == 5 && fold[605] == 6 && fold[1004] == 9,
              "kfold split of 1005 into 10 is not 5 x 101 then 5 x 100");
    printf("     kfold: 1005 items -> folds of 101 x5, 100 x5\n");

    /* hand-computed: positives {0.9, 0.5, 0.3}, negatives {0.5, 0.2, 0.1, 0.0}
     * AUC = (4 + 3.5 + 3) / 12 (0.5 ties with one negative) */
    {
        float s[] = {0.9f, 0.5f, 0.3f, 0.5f, 0.2f, 0.1f, 0.0f};
        uint8_t y[] = {1, 1, 1, 0, 0, 0, 0};
        double auc = comine_roc_auc(s, y, 7);
        FX_EXPECT(fabs(auc - 10.5 / 12) < 1e-12, "AUC %.12f, expected %.12f", auc, 10.5 / 12);
        printf("     hand AUC %.6f (expected %.6f)\n", auc, 10.5 / 12);
        /* folds = 1: threshold on the set itself: best is between 0.2 and 0.3 -> 6 of 7 right */
        comine_verify_result r;
        comine_verify_scores(&r, s, y, NULL, 7, 1);
        FX_EXPECT(fabs(r.accuracy - 6.0 / 7) < 1e-12 && fabs(r.threshold - 0.25) < 1e-6,
                  "single-fold accuracy %.6f threshold %.6f, expected %.6f at 0.25", r.accuracy, r.threshold, 6.0 / 7);
        printf("     hand accuracy %.6f at threshold %.4f\n", r.accuracy, r.threshold);
        FX_EXPECT(isnan(r.tar_far_1e2) && isnan(r.tar_far_1e3), "TAR should be n/a with 4 negatives");
    }
    /* TAR at FAR: 200 negatives 0..199 / 1000, positives 0.1965 and 0.5: k = 2, t = 0.197,
     * the third largest negative; TAR = 0.5 (only 0.5 is above). */
    {
        float s[202];
        uint8_t y[202];
        for (int i = 0; i < 200; i++) { s[i] = i / 1000.f; y[i] = 0; }
        s[200] = 0.1965f; y[200] = 1;
        s[201] = 0.5f; y[201] = 1;
        double tar = comine_tar_at_far(s, y, 202, 1e-2);
        FX_EXPECT(fabs(tar - 0.5) < 1e-12, "TAR@1e-2 %.6f expected 0.5 (t = 0.197)", tar);
        printf("     hand TAR@FAR=1e-2 %.3f\n", tar);
    }

    /* detection P/R/F1/AP by hand: scores 0.9(n) 0.8(c) 0.6(n) 0.5(c) 0.5(n) 0.1(n) 0.0(c), unknown 0.7
     * threshold 0.5: flagged 0.9 0.8 0.6 0.5 0.5 -> TP 3 FP 2 FN 1: P 0.6 R 0.75 F1 2/3
     * AP: steps at 0.9 (R .25 P 1), 0.8 (R .25), 0.6 (R .5, P 2/3), 0.5 group (R .75, P 3/5), 0.1 (R 1, P 4/6)
     * = .25 + .25 * 2/3 + .25 * 3/5 + .25 * 4/6 */
    {
        double sc[] = {0.9, 0.8, 0.6, 0.5, 0.5, 0.1, 0.0, 0.7};
        int tr[] = {1, 0, 2, 0, 1, 1, 0, -1};
        comine_detection d;
        comine_detection_eval(&d, sc, tr, 8, 0.5);
        double ap = 0.25 + 0.25 * 2.0 / 3 + 0.25 * 3.0 / 5 + 0.25 * 4.0 / 6;
        FX_EXPECT(d.tp == 3 && d.fp == 2 && d.fn == 1 && d.tn == 1, "counts %d %d %d %d", d.tp, d.fp, d.fn, d.tn);
        FX_EXPECT(fabs(d.precision - 0.6) < 1e-12 && fabs(d.recall - 0.75) < 1e-12 && fabs(d.f1 - 2.0 / 3) < 1e-12,
                  "P %.6f R %.6f F1 %.6f", d.precision, d.recall, d.f1);
        FX_EXPECT(fabs(d.average_precision - ap) < 1e-12, "AP %.9f expected %.9f", d.average_precision, ap);
        printf("     detection P %.4f R %.4f F1 %.4f AP %.6f (hand %.6f)\n", d.precision, d.recall, d.f1,
               d.average_precision, ap);
    }

    if (!have_numpy()) {
        FX_SKIP("the numpy reference (no /usr/bin/python3 with numpy; Debian: apt-get install python3-numpy)");
        return fx_finish("test_eval_metrics");
    }
    random_case("lfw_10x300", 6000, 10, true, false, false, 1);
    random_case("single_set_ties", 1000, 10, false, true, true, 2);
    random_case("list_2200_ties", 2200, 10, false, true, false, 3);
    random_case("small_5folds", 57, 5, false, false, false, 4);
    return fx_finish("test_eval_metrics");
}

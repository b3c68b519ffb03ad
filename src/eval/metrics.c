/* metrics.c: verification metrics on similarity scores (k-fold accuracy with thresholds
 * chosen on the other folds, ROC AUC, TAR at fixed FAR) and noise-detection metrics
 * (precision / recall / F1 at a threshold, average precision of the ranking); TAR at any list
 * of FARs (also from only the largest impostor scores, for identification) and the ROC curve
 * with its tab-separated file.
 * Pure functions of arrays; tests/ref/verify_ref.py is an independent numpy version. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/eval.h"

typedef struct scored { double s; int pos; int idx; } scored;

static int cmp_scored_asc(const void *x, const void *y)
{
    const scored *a = x, *b = y;
    if (a->s < b->s) return -1;
    if (a->s > b->s) return 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

/* Threshold of best accuracy on v[0..m) (sorted ascending): see eval.h for the rule. */
static double best_threshold(const scored *v, int m)
{
    int n_pos = 0;
    for (int i = 0; i < m; i++) n_pos += v[i].pos;
    /* threshold below everything: all predicted same */
    int correct = n_pos, best = correct;
    double best_t = v[0].s - 1.0;
    int i = 0;
    while (i < m) {
        int j = i;
        while (j < m && v[j].s == v[i].s) {
            correct += v[j].pos ? -1 : 1;   /* now predicted different */
            j++;
        }
        double t = j < m ? (v[i].s + v[j].s) / 2.0 : v[i].s + 1.0;
        if (correct > best) {
            best = correct;
            best_t = t;
        }
        i = j;
    }
    return best_t;
}

double comine_roc_auc(const float *scores, const uint8_t *positive, int n)
{
    scored *v = comine_malloc((size_t)(n ? n : 1) * sizeof *v);
    long n_pos = 0, n_neg = 0;
    for (int i = 0; i < n; i++) {
        v[i].s = scores[i];
        v[i].pos = positive[i] ? 1 : 0;
        v[i].idx = i;
        n_pos += v[i].pos;
    }
    n_neg = n - n_pos;
    qsort(v, (size_t)n, sizeof *v, cmp_scored_asc);
    /* Mann-Whitney: for each positive, negatives below it + half the tied negatives. */
    double sum = 0;
    long neg_below = 0;
    int i = 0;
    while (i < n) {
        int j = i;
        long pos_g = 0, neg_g = 0;
        while (j < n && v[j].s == v[i].s) {
            if (v[j].pos) pos_g++; else neg_g++;
            j++;
        }
        sum += (double)pos_g * ((double)neg_below + 0.5 * (double)neg_g);
        neg_below += neg_g;
        i = j;
    }
    free(v);
    if (n_pos == 0 || n_neg == 0) return NAN;
    return sum / ((double)n_pos * (double)n_neg);
}

static int cmp_double_desc(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a < b) - (a > b);
}

double comine_tar_at_far(const float *scores, const uint8_t *same, int n, double far)
{
    int n_neg = 0, n_pos = 0;
    for (int i = 0; i < n; i++) {
        if (same[i]) n_pos++; else n_neg++;
    }
    long k = (long)floor(far * (double)n_neg);
    if (k < 1 || n_pos == 0) return NAN;
    double *neg = comine_malloc((size_t)n_neg * sizeof(double));
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!same[i]) neg[m++] = scores[i];
    qsort(neg, (size_t)n_neg, sizeof(double), cmp_double_desc);
    double t = k < n_neg ? neg[k] : -INFINITY;
    free(neg);
    int hit = 0;
    for (int i = 0; i < n; i++)
        if (same[i] && (double)scores[i] > t) hit++;
    return (double)hit / n_pos;
}

/* ---- TAR at chosen FARs ---- */
comine_status comine_far_list_parse(double *fars, int *n_fars, const char *text, const char *what)
{
    *n_fars = 0;
    if (!text || !*text) return comine_fail(COMINE_ERR_ARG, "%s: an empty list of FARs", what);
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[64];
        double v;
        if (len == 0 || len >= sizeof item)
            return comine_fail(COMINE_ERR_ARG, "%s: '%s': an empty or overlong item in the list", what, text);
        memcpy(item, p, len);
        item[len] = 0;
        if (!comine_parse_double(item, &v) || !(v > 0 && v < 1))
            return comine_fail(COMINE_ERR_ARG, "%s: '%s' is not a false accept rate in (0, 1)", what, item);
        bool seen = false;
        for (int i = 0; i < *n_fars; i++) seen |= fars[i] == v;
        if (!seen) {
            if (*n_fars == COMINE_MAX_FARS)
                return comine_fail(COMINE_ERR_ARG, "%s: more than %d FARs", what, COMINE_MAX_FARS);
            fars[(*n_fars)++] = v;
        }
        if (!comma) break;
        p = comma + 1;
    }
    return COMINE_OK;
}

void comine_far_text(char *buf, size_t size, double far)
{
    int e = (int)floor(log10(far));
    double m = far / pow(10.0, e);
    if (m >= 9.9999995) {  /* 1e-4 computed as 9.99999e-5 */
        m /= 10;
        e++;
    }
    char mant[32];
    snprintf(mant, sizeof mant, "%.6g", m);
    snprintf(buf, size, "%se%d", mant, e);
}

int64_t comine_far_top_needed(double max_far, int64_t n_neg)
{
    int64_t k = (int64_t)floor(max_far * (double)n_neg) + 1;
    return k < n_neg ? k : n_neg;
}

void comine_tar_at_fars_top(double *tar, const double *fars, int n_fars, const float *pos, int64_t n_pos,
                            const float *top_neg, int64_t n_top, int64_t n_neg)
{
    for (int f = 0; f < n_fars; f++) {
        int64_t k = (int64_t)floor(fars[f] * (double)n_neg);
        if (k < 1 || n_pos == 0 || (k >= n_top && n_top < n_neg)) {
            tar[f] = NAN;
            continue;
        }
        double t = k < n_top ? top_neg[k] : -INFINITY;
        int64_t hit = 0;
        for (int64_t i = 0; i < n_pos; i++) hit += (double)pos[i] > t;
        tar[f] = (double)hit / (double)n_pos;
    }
}

static int cmp_float_desc(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a < b) - (a > b);
}

void comine_tar_at_fars(double *tar, const double *fars, int n_fars, const float *scores, const uint8_t *same, int n)
{
    int n_pos = 0;
    for (int i = 0; i < n; i++) n_pos += same[i] != 0;
    float *pos = comine_malloc((size_t)(n_pos ? n_pos : 1) * sizeof(float));
    float *neg = comine_malloc((size_t)(n - n_pos ? n - n_pos : 1) * sizeof(float));
    int np = 0, nn = 0;
    for (int i = 0; i < n; i++) {
        if (same[i]) pos[np++] = scores[i];
        else neg[nn++] = scores[i];
    }
    qsort(neg, (size_t)nn, sizeof(float), cmp_float_desc);
    comine_tar_at_fars_top(tar, fars, n_fars, pos, np, neg, nn, nn);
    free(pos);
    free(neg);
}

/* ---- the ROC curve ---- */
int comine_roc_curve(comine_roc_point **out, const float *scores, const uint8_t *same, int n)
{
    *out = NULL;
    long n_pos = 0;
    for (int i = 0; i < n; i++) n_pos += same[i] != 0;
    long n_neg = n - n_pos;
    if (n_pos == 0 || n_neg == 0) return 0;
    scored *v = comine_malloc((size_t)n * sizeof *v);
    for (int i = 0; i < n; i++) {
        v[i].s = scores[i];
        v[i].pos = same[i] != 0;
        v[i].idx = i;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_scored_asc);
    comine_roc_point *roc = comine_malloc((size_t)(n + 1) * sizeof *roc);
    int m = 0;
    long tp = 0, fp = 0;  /* pairs with a score above the current threshold */
    int i = n - 1;
    while (i >= 0) {
        double t = v[i].s;
        roc[m++] = (comine_roc_point){t, (double)fp / n_neg, (double)tp / n_pos};
        while (i >= 0 && v[i].s == t) {
            if (v[i].pos) tp++; else fp++;
            i--;
        }
    }
    roc[m++] = (comine_roc_point){v[0].s - 1.0, 1.0, 1.0};
    free(v);
    *out = roc;
    return m;
}

comine_status comine_roc_write(const char *path, const comine_roc_point *roc, int n)
{
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st) return st;
    fprintf(af.fp, "threshold\tfar\ttar\n");
    for (int i = 0; i < n; i++) fprintf(af.fp, "%.9g\t%.9g\t%.9g\n", roc[i].threshold, roc[i].far, roc[i].tar);
    return comine_atomic_commit(&af);
}

comine_status comine_roc_load(comine_roc_point **out, int *n, const char *path)
{
    *out = NULL;
    *n = 0;
    uint8_t *data;
    size_t size;
    comine_status st = comine_read_file(path, &data, &size);
    if (st) return st;
    char *p = (char *)data, *end = p + size;
    int line = 0, cap = 0, m = 0;
    comine_roc_point *roc = NULL;
    bool header = false;
    while (p < end && !st) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
        line++;
        if (e > p && e[-1] == '\r') e[-1] = 0;
        *e = 0;
        char *text = p;
        p = nl ? nl + 1 : end;
        if (!*text || *text == '#') continue;
        if (!header) {
            if (strcmp(text, "threshold\tfar\ttar"))
                st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected the header threshold<TAB>far<TAB>tar (a ROC "
                                 "written by comine eval --roc)", path, line);
            header = true;
            continue;
        }
        char *f[3] = {text, NULL, NULL};
        int nf = 1;
        for (char *q = text; (q = strchr(q, '\t')); nf++) {
            *q++ = 0;
            if (nf < 3) f[nf] = q;
        }
        double t, far, tar;
        if (nf != 3 || !comine_parse_double(f[0], &t) || !comine_parse_double(f[1], &far) ||
            !comine_parse_double(f[2], &tar) || far < 0 || far > 1 || tar < 0 || tar > 1) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected threshold<TAB>far<TAB>tar with far and tar in [0, 1]",
                             path, line);
            break;
        }
        if (m == cap) roc = comine_realloc(roc, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *roc);
        roc[m++] = (comine_roc_point){t, far, tar};
    }
    free(data);
    if (!st && m == 0) st = comine_fail(COMINE_ERR_FORMAT, "%s: no ROC points", path);
    if (st) {
        free(roc);
        return st;
    }
    *out = roc;
    *n = m;
    return COMINE_OK;
}

void comine_verify_scores(comine_verify_result *res, const float *scores, const uint8_t *same, const int *fold,
                          int n, int folds)
{
    COMINE_ASSERT(n >= 1 && folds >= 1 && folds <= COMINE_VERIFY_MAX_FOLDS && folds <= n);
    memset(res, 0, sizeof *res);
    int *own_fold = NULL;
    if (!fold) {
        own_fold = comine_malloc((size_t)n * sizeof(int));
        comine_kfold_assign(own_fold, n, folds);
        fold = own_fold;
    }
    res->pairs = n;
    res->folds = folds;
    scored *v = comine_malloc((size_t)n * sizeof *v);
    double sum = 0, sum_t = 0;
    int used = 0;
    for (int f = 0; f < folds; f++) {
        int m = 0, test_n = 0;
        for (int i = 0; i < n; i++) {
            COMINE_ASSERT(fold[i] >= 0 && fold[i] < folds);
            if (fold[i] == f) test_n++;
            if (folds == 1 || fold[i] != f) {
                v[m].s = scores[i];
                v[m].pos = same[i] ? 1 : 0;
                v[m].idx = i;
                m++;
            }
        }
        COMINE_ASSERT(test_n > 0 && m > 0);
        qsort(v, (size_t)m, sizeof *v, cmp_scored_asc);
        double t = best_threshold(v, m);
        int correct = 0;
        for (int i = 0; i < n; i++)
            if (fold[i] == f) correct += (((double)scores[i] > t) == (same[i] != 0));
        res->fold_accuracy[f] = (double)correct / test_n;
        sum += res->fold_accuracy[f];
        sum_t += t;
        used++;
    }
    res->accuracy = sum / used;
    res->threshold = sum_t / used;
    double var = 0;
    for (int f = 0; f < folds; f++) var += (res->fold_accuracy[f] - res->accuracy) * (res->fold_accuracy[f] - res->accuracy);
    res->accuracy_std = sqrt(var / used);
    res->auc = comine_roc_auc(scores, same, n);
    res->tar_far_1e2 = comine_tar_at_far(scores, same, n, 1e-2);
    res->tar_far_1e3 = comine_tar_at_far(scores, same, n, 1e-3);
    free(v);
    free(own_fold);
}

/* ---- noise detection ---- */
/* order (n) of indices by score descending, ties by position ascending (a stable merge sort). */
static void rank_desc(int *order, const double *score, int n)
{
    for (int i = 0; i < n; i++) order[i] = i;
    int *tmp = comine_malloc((size_t)(n ? n : 1) * sizeof(int));
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = score[order[j]] > score[order[i]] ? order[j++] : order[i++];
            while (i < mid) tmp[k++] = order[i++];
            while (j < hi) tmp[k++] = order[j++];
        }
        memcpy(order, tmp, (size_t)n * sizeof(int));
    }
    free(tmp);
}

void comine_detection_eval(comine_detection *d, const double *score, const int *truth, int n, double threshold)
{
    memset(d, 0, sizeof *d);
    int m = 0;
    double *s = comine_malloc((size_t)(n ? n : 1) * sizeof(double));
    int *pos = comine_malloc((size_t)(n ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) {
        if (truth[i] < 0) continue;
        bool noisy = truth[i] > 0, flagged = score[i] >= threshold;
        if (flagged && noisy) d->tp++;
        else if (flagged) d->fp++;
        else if (noisy) d->fn++;
        else d->tn++;
        s[m] = score[i];
        pos[m++] = noisy;
    }
    comine_detection_figures(d->tp, d->fp, d->fn, &d->precision, &d->recall, &d->f1);
    int n_pos = d->tp + d->fn;
    if (n_pos > 0) {
        int *order = comine_malloc((size_t)(m ? m : 1) * sizeof(int));
        rank_desc(order, s, m);
        int tp = 0, fp = 0, i = 0;
        double ap = 0, r_prev = 0;
        while (i < m) {
            int j = i;
            while (j < m && s[order[j]] == s[order[i]]) {
                if (pos[order[j]]) tp++; else fp++;
                j++;
            }
            double r = (double)tp / n_pos, p = (double)tp / (tp + fp);
            ap += (r - r_prev) * p;
            r_prev = r;
            i = j;
        }
        d->average_precision = ap;
        free(order);
    }
    free(s);
    free(pos);
}

void comine_noise_rank(int *order, const comine_noise_table *t)
{
    double *s = comine_malloc((size_t)(t->n ? t->n : 1) * sizeof(double));
    for (int i = 0; i < t->n; i++) s[i] = t->rows[i].score;
    rank_desc(order, s, t->n);
    free(s);
}

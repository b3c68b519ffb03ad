/* tau_crossfit.c: the noise rate of a data set by cross-fitting (comine/estimate.h,
 * comine_tau_crossfit).  A network trained on a data set fits its wrong labels too, so it
 * cannot tell which of them are wrong (docs/NOISE_RATE.md); one trained on the other folds
 * of each label's samples has never seen them.
 * One short run in mode arcface per fold, on every fold but that one, ranks that fold's
 * samples against its ArcFace head; Storey's estimate over all of them.  Each further round
 * trains the networks again without the samples the last round ranked most suspicious (the
 * estimated share): where a label's training folds were mostly wrong, the first network
 * could not learn that label and its right held-out faces ranked like wrong ones. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/backend.h"
#include "comine/core.h"
#include "comine/data.h"
#include "comine/dist.h"
#include "comine/estimate.h"
#include "comine/eval.h"
#include "comine/model.h"
#include "comine/run_heads.h"
#include "comine/trainer.h"

/* fold[i] in 0 .. folds - 1: each label's samples shuffled with the seed, the t-th of its c
 * samples in fold t * folds / c (with 2 folds: the first ceil(c / 2) in fold 0).  Returns the
 * labels that have samples in at least two folds. */
static int split_folds(uint8_t *fold, const comine_dataset *ds, uint64_t seed, int folds)
{
    int K = ds->num_classes, n = ds->n;
    int *count = comine_calloc((size_t)K + 1, sizeof(int)), *start = comine_calloc((size_t)K + 1, sizeof(int));
    for (int i = 0; i < n; i++) count[ds->samples[i].label]++;
    for (int j = 0; j < K; j++) start[j + 1] = start[j] + count[j];
    int *order = comine_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1)), *fill = comine_calloc((size_t)K, sizeof(int));
    for (int i = 0; i < n; i++) {
        int y = ds->samples[i].label;
        order[start[y] + fill[y]++] = i;
    }
    comine_rng rng;
    comine_rng_seed(&rng, seed, 0xc705f17);
    int both = 0;
    for (int j = 0; j < K; j++) {
        comine_rng_shuffle_int(&rng, order + start[j], (size_t)count[j]);
        for (int t = 0; t < count[j]; t++)
            fold[order[start[j] + t]] = (uint8_t)((int64_t)t * folds / count[j]);
        both += count[j] >= 2;
    }
    free(order);
    free(fill);
    free(start);
    free(count);
    return both;
}

/* The run of one fold: mode arcface, no drop, nothing that needs the labels clean. */
static void fold_cfg(comine_train_cfg *cfg, const comine_train_cfg *base, int epochs, const char *out,
                     const uint8_t *subset)
{
    *cfg = *base;
    cfg->out = out;
    cfg->subset = subset;
    cfg->select.mode = COMINE_MODE_ARCFACE;
    cfg->head.subcenters = 1;
    cfg->epochs = epochs;
    cfg->lr.total_epochs = 0;
    cfg->tau = 0;
    cfg->tau_auto = false;
    cfg->tk = 0;
    cfg->merge_duplicates = false;
    cfg->subcenter_drop = 0;
    cfg->val = NULL;
    cfg->val_every = 0;
    cfg->checkpoint_every = 0;
    cfg->resume = true; /* a run that finished is read back, one that stopped continues */
    cfg->inject_nan_step = 0;
    cfg->bn_groups = 1;
}

/* Rank 0: the p-values of the samples of fold `test` against the network and head of the
 * run trained on the samples flagged in `trained_on`; p (n, 2), column 0 written at the
 * samples' own indices (NAN for a label the network did not train on). */
static comine_status rank_fold(float *p, comine_rank_null *nl, const comine_train_cfg *base, const char *run,
                               const uint8_t *fold, int test, const uint8_t *trained_on)
{
    comine_dataset *ds = NULL;
    comine_dataset_opts dopts = {.root = base->root};
    comine_status st = comine_dataset_open(&ds, base->data, &dopts);
    if (st != COMINE_OK) return st;
    int n = ds->n;
    uint8_t *keep = comine_malloc((size_t)n);
    int *index = comine_malloc(sizeof(int) * (size_t)n), *labels_all = comine_malloc(sizeof(int) * (size_t)n);
    int m = 0;
    for (int i = 0; i < n; i++) {
        keep[i] = fold[i] == test;
        labels_all[i] = ds->samples[i].label;
        if (keep[i]) index[m++] = i;
    }
    comine_dataset_keep(ds, keep);
    char *model_path = comine_path_join(run, "peer_a.model"), *ckpt = comine_path_join(run, "checkpoint.bin");
    comine_run_heads heads;
    memset(&heads, 0, sizeof heads);
    comine_model *model = NULL;
    float *emb = NULL, *hp = NULL;
    int *labels = NULL;
    const comine_backend *be = NULL;
    st = comine_backend_for_device(&be, base->device);
    if (st == COMINE_OK) st = comine_run_heads_load(&heads, ckpt);
    if (st == COMINE_OK) st = comine_model_load(&model, model_path, be, 2 * base->batch);
    if (st == COMINE_OK && m > 0) {
        int D = comine_model_arch(model)->emb_dim;
        if (D != heads.D) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s: embeds in %d dimensions, its run's head in %d", model_path, D,
                             heads.D);
        } else {
            if (!base->quiet && comine_dist_rank() == 0)
                comine_progress("cross-fitting: ranking the %d samples of fold %d against %s", m, test + 1, run);
            emb = comine_alloc_floats((size_t)m * D);
            int decode = base->loader_threads > 0 ? base->loader_threads : 1;
            st = comine_embed_dataset(emb, &model, 1, ds, base->batch, decode, NULL);
        }
        if (st == COMINE_OK) {
            labels = comine_malloc(sizeof(int) * (size_t)m);
            for (int t = 0; t < m; t++) labels[t] = ds->samples[t].label;
            /* a label the network never trained on (all its samples in this fold) has no centre:
             * its head row is the initial random one */
            int *trained = comine_calloc((size_t)heads.K, sizeof(int));
            for (int i = 0; i < n; i++)
                if (trained_on[i] && labels_all[i] >= 0 && labels_all[i] < heads.K) trained[labels_all[i]]++;
            for (int j = 0; j < heads.K; j++)
                if (!trained[j]) memset(heads.weight[0] + (size_t)j * D, 0, sizeof(float) * (size_t)D);
            free(trained);
            hp = comine_alloc_floats((size_t)m);
            comine_label_pvalues(hp, NULL, 1, emb, labels, m, D, heads.weight[0], heads.K, true, nl);
            for (int t = 0; t < m; t++) p[2 * (size_t)index[t]] = hp[t];
        }
    }
    comine_free_floats(hp);
    free(labels);
    comine_free_floats(emb);
    if (model) comine_model_free(model);
    comine_run_heads_free(&heads);
    free(ckpt);
    free(model_path);
    free(labels_all);
    free(index);
    free(keep);
    comine_dataset_free(ds);
    return st;
}

/* drop[i] = 1 for the ceil(tau m) ranked samples (m: those with a p-value) of largest p-value,
 * ties in index order; tau capped at SUSPECTS_MAX, so that both halves keep samples */
#define SUSPECTS_MAX 0.9
typedef struct ranked {
    float p;
    int i;
} ranked;

static int by_pvalue_desc(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    return x->p > y->p ? -1 : x->p < y->p ? 1 : (x->i > y->i) - (x->i < y->i);
}

static void suspects(uint8_t *drop, const float *p, int n, double tau)
{
    ranked *order = comine_malloc(sizeof(ranked) * (size_t)(n > 0 ? n : 1));
    int m = 0;
    for (int i = 0; i < n; i++) {
        drop[i] = 0;
        if (isfinite(p[2 * (size_t)i])) order[m++] = (ranked){p[2 * (size_t)i], i};
    }
    qsort(order, (size_t)m, sizeof *order, by_pvalue_desc);
    int k = (int)ceil((tau < SUSPECTS_MAX ? tau : SUSPECTS_MAX) * m - 1e-9);
    for (int t = 0; t < k && t < m; t++) drop[order[t].i] = 1;
    free(order);
}

/* Network h of a round: with 2 folds, the run that trains on fold h and ranks fold 1 - h
 * (dir/half<h+1>); with more, the run that trains on every fold but h and ranks fold h
 * (dir/fold<h+1>). */
static int ranked_fold(int h, int folds)
{
    return folds == 2 ? 1 - h : h;
}

static char *run_dir(const char *dir, int h, int folds)
{
    char name[32];
    snprintf(name, sizeof name, "%s%d", folds == 2 ? "half" : "fold", h + 1);
    return comine_path_join(dir, name);
}

/* Rank 0: one round's p-values (p, column 0) from the runs of `runs`; where a label's network
 * of this round trained on none of its samples, the previous round's (prev) stand */
static comine_status rank_round(float *p, comine_rank_null *nl, const float *prev, const comine_train_cfg *base,
                                char *const *runs, const uint8_t *fold, uint8_t *const *keep, int n, int folds)
{
    comine_status st = COMINE_OK;
    for (size_t i = 0; i < (size_t)n * 2; i++) p[i] = NAN;
    for (int h = 0; h < folds && st == COMINE_OK; h++)
        st = rank_fold(p, nl, base, runs[h], fold, ranked_fold(h, folds), keep[h]);
    if (prev)
        for (int i = 0; i < n; i++)
            if (!isfinite(p[2 * (size_t)i])) p[2 * (size_t)i] = prev[2 * (size_t)i];
    return st;
}

static void free_all(uint8_t **keep, char **runs, int folds)
{
    for (int h = 0; h < folds; h++) {
        free(keep[h]);
        free(runs[h]);
    }
}

/* One round: trains the networks (every rank), then rank 0 ranks, estimates and picks the
 * next round's suspects; the others receive res and drop.  res: tau, lambda, samples ranked,
 * failed. */
static comine_status crossfit_round(double *res, float *p, float *prev, uint8_t *drop, const comine_train_cfg *base,
                                    const comine_crossfit_opts *o, const uint8_t *fold, int n, int r,
                                    const char *dir)
{
    uint8_t *keep[COMINE_CROSSFIT_FOLDS_MAX] = {0};
    char *runs[COMINE_CROSSFIT_FOLDS_MAX] = {0}, name[32];
    snprintf(name, sizeof name, "round%d", r + 1);
    char *round_dir = r > 0 ? comine_path_join(dir, name) : NULL;
    comine_status st = COMINE_OK;
    for (int h = 0; h < o->folds && st == COMINE_OK; h++) {
        runs[h] = run_dir(r > 0 ? round_dir : dir, h, o->folds);
        keep[h] = comine_malloc((size_t)(n > 0 ? n : 1));
        int test = ranked_fold(h, o->folds);
        for (int i = 0; i < n; i++) keep[h][i] = fold[i] != test && !drop[i];
        comine_train_cfg cfg;
        fold_cfg(&cfg, base, o->epochs, runs[h], keep[h]);
        if (!base->quiet && comine_dist_rank() == 0)
            comine_progress("cross-fitting, round %d of %d: network %d of %d, trained on every fold of each label's "
                            "samples but fold %d (mode arcface, %d epochs, %s)", r + 1, o->rounds, h + 1, o->folds,
                            test + 1, o->epochs, runs[h]);
        comine_train_summary sum;
        st = comine_train(&cfg, &sum);
    }
    if (st == COMINE_OK) {
        if (comine_dist_rank() == 0) {
            comine_rank_null nl;
            memset(&nl, 0, sizeof nl);
            st = rank_round(p, &nl, r > 0 ? prev : NULL, base, runs, fold, keep, n, o->folds);
            int m = 0;
            for (int i = 0; i < n; i++) m += isfinite(p[2 * (size_t)i]);
            double tail[COMINE_STOREY_GRID];
            comine_rank_null_tail(tail, &nl, o->by_image);
            if (st == COMINE_OK && !base->quiet && nl.rows > 0)
                comine_progress("cross-fitting: a wrong label's p-value is above 0.8 with probability %.3f (%.3f "
                                "where wrong samples fall on labels at random, %.3f on images at random: %.0f "
                                "samples moved to every other label)", tail[15], 0.2, nl.above[15] / nl.rows, nl.rows);
            if (st == COMINE_OK) st = comine_tau_storey(&res[0], &res[1], p, n, 1, tail, base->seed);
            if (st == COMINE_OK && !base->quiet && o->rounds > 1)
                comine_progress("cross-fitting, round %d of %d: noise rate %.3f (Storey's lambda %.2f)", r + 1,
                                o->rounds, res[0], res[1]);
            if (st == COMINE_OK && r + 1 < o->rounds) suspects(drop, p, n, res[0]);
            memcpy(prev, p, sizeof(float) * (size_t)n * 2);
            res[2] = m;
            res[3] = st != COMINE_OK;
        }
        if (comine_dist_size() > 1) {
            comine_dist_broadcast(res, sizeof(double) * 4, 0);
            if (r + 1 < o->rounds && res[3] == 0) comine_dist_broadcast(drop, (size_t)n, 0);
        }
        if (st == COMINE_OK && res[3] != 0) st = comine_fail(COMINE_ERR_ARG, "cross-fitting failed on rank 0");
    }
    free_all(keep, runs, o->folds);
    free(round_dir);
    return st;
}

void comine_crossfit_opts_default(comine_crossfit_opts *o)
{
    o->folds = 2;
    o->epochs = 8;
    o->rounds = 1;
    o->by_image = 0.5;
}

comine_status comine_tau_crossfit(double *tau, double *lambda, int *n_out, float *pvalues,
                                  const comine_train_cfg *base, const comine_crossfit_opts *o, const char *dir)
{
    *tau = NAN;
    if (lambda) *lambda = NAN;
    if (n_out) *n_out = 0;
    if (o->epochs < 1) return comine_fail(COMINE_ERR_ARG, "cross-fitting: %d epochs (at least 1)", o->epochs);
    if (o->rounds < 1 || o->rounds > 9)
        return comine_fail(COMINE_ERR_ARG, "cross-fitting: %d rounds (1 to 9)", o->rounds);
    if (o->folds < 2 || o->folds > COMINE_CROSSFIT_FOLDS_MAX)
        return comine_fail(COMINE_ERR_ARG, "cross-fitting: %d folds (2 to %d)", o->folds, COMINE_CROSSFIT_FOLDS_MAX);
    if (!(o->by_image >= 0 && o->by_image <= 1))
        return comine_fail(COMINE_ERR_ARG, "cross-fitting: the share of wrong labels on images at random is %g "
                           "(0 to 1)", o->by_image);
    comine_dataset *ds = NULL;
    comine_dataset_opts dopts = {.root = base->root};
    comine_status st = comine_dataset_open(&ds, base->data, &dopts);
    if (st != COMINE_OK) return st;
    int n = ds->n;
    uint8_t *fold = comine_malloc((size_t)(n > 0 ? n : 1));
    int both = n > 0 ? split_folds(fold, ds, base->seed, o->folds) : 0;
    comine_dataset_free(ds);
    if (both < 2) {
        free(fold);
        return comine_fail(COMINE_ERR_ARG, "%s: %d labels with 2 samples or more; estimating the noise rate by "
                           "cross-fitting needs at least 2", base->data, both);
    }
    if ((st = comine_mkdirs(dir)) != COMINE_OK) {
        free(fold);
        return st;
    }
    uint8_t *drop = comine_calloc((size_t)(n > 0 ? n : 1), 1);
    float *p = comine_alloc_floats((size_t)n * 2), *prev = comine_alloc_floats((size_t)n * 2);
    double res[4] = {NAN, NAN, 0, 0}; /* tau, lambda, samples, failed */
    for (int r = 0; r < o->rounds && st == COMINE_OK; r++)
        st = crossfit_round(res, p, prev, drop, base, o, fold, n, r, dir);
    if (st == COMINE_OK && pvalues && comine_dist_rank() == 0)
        for (int i = 0; i < n; i++) pvalues[i] = p[2 * (size_t)i];
    if (st == COMINE_OK) {
        *tau = res[0];
        if (lambda) *lambda = res[1];
        if (n_out) *n_out = (int)res[2];
    }
    comine_free_floats(prev);
    comine_free_floats(p);
    free(drop);
    free(fold);
    return st;
}

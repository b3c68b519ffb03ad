/* tau_crossfit.c: the noise rate of a data set by cross-fitting (comine/estimate.h,
 * comine_tau_crossfit).  A network trained on a data set fits its wrong labels too, so it
 * cannot tell which of them are wrong (docs/EXPERIMENTS.md, "Duplicate identities and the
 * noise rate"); one trained on the other half of each label's samples has never seen them.
 * Two short runs in mode arcface, one per half, each ranking the other half's samples
 * against its ArcFace head; Storey's estimate over all of them.  Each further round trains
 * the two networks again without the samples the last round ranked most suspicious (the
 * estimated share of each half): where a label's training half was mostly wrong, the first
 * network could not learn that label and its right held-out faces ranked like wrong ones. */
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

/* half[i] = 0 or 1: each label's samples shuffled with the seed, the first ceil(count / 2)
 * in half 0.  Returns the labels that have samples in both halves. */
static int split_halves(uint8_t *half, const comine_dataset *ds, uint64_t seed)
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
        int first = (count[j] + 1) / 2;
        for (int t = 0; t < count[j]; t++) half[order[start[j] + t]] = t >= first;
        both += count[j] >= 2;
    }
    free(order);
    free(fill);
    free(start);
    free(count);
    return both;
}

/* The run that trains on half h: mode arcface, no drop, nothing that needs the labels clean. */
static void half_cfg(comine_train_cfg *cfg, const comine_train_cfg *base, int epochs, const char *out,
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
    cfg->resume = true; /* a half that finished is read back, one that stopped continues */
    cfg->inject_nan_step = 0;
    cfg->bn_groups = 1;
}

/* Rank 0: the p-values of the samples of half `test` against the network and head of the
 * run trained on the samples flagged in `trained_on`; p (n, 2), column 0 written at the
 * samples' own indices (NAN for a label the network did not train on). */
static comine_status rank_half(float *p, const comine_train_cfg *base, const char *run, const uint8_t *half, int test,
                               const uint8_t *trained_on)
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
        keep[i] = half[i] == test;
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
                comine_progress("cross-fitting: ranking the %d samples of half %d against %s", m, test + 1, run);
            emb = comine_alloc_floats((size_t)m * D);
            int decode = base->loader_threads > 0 ? base->loader_threads : 1;
            st = comine_embed_dataset(emb, &model, 1, ds, base->batch, decode, NULL);
        }
        if (st == COMINE_OK) {
            labels = comine_malloc(sizeof(int) * (size_t)m);
            for (int t = 0; t < m; t++) labels[t] = ds->samples[t].label;
            /* a label the network never trained on (all its samples in this half) has no centre:
             * its head row is the initial random one */
            int *trained = comine_calloc((size_t)heads.K, sizeof(int));
            for (int i = 0; i < n; i++)
                if (trained_on[i] && labels_all[i] >= 0 && labels_all[i] < heads.K) trained[labels_all[i]]++;
            for (int j = 0; j < heads.K; j++)
                if (!trained[j]) memset(heads.weight[0] + (size_t)j * D, 0, sizeof(float) * (size_t)D);
            free(trained);
            hp = comine_alloc_floats((size_t)m);
            comine_label_pvalues(hp, NULL, 1, emb, labels, m, D, heads.weight[0], heads.K, true);
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

/* Rank 0: one round's p-values (p, column 0) from the two runs of `runs`; where a label's
 * network of this round trained on none of its samples, the previous round's (prev) stand */
static comine_status rank_round(float *p, const float *prev, const comine_train_cfg *base, char *const *runs,
                                const uint8_t *half, uint8_t *const *keep, int n)
{
    comine_status st = COMINE_OK;
    for (size_t i = 0; i < (size_t)n * 2; i++) p[i] = NAN;
    for (int h = 0; h < 2 && st == COMINE_OK; h++) st = rank_half(p, base, runs[h], half, 1 - h, keep[h]);
    if (prev)
        for (int i = 0; i < n; i++)
            if (!isfinite(p[2 * (size_t)i])) p[2 * (size_t)i] = prev[2 * (size_t)i];
    return st;
}

comine_status comine_tau_crossfit(double *tau, double *lambda, int *n_out, float *pvalues,
                                  const comine_train_cfg *base, int epochs, int rounds, const char *dir)
{
    *tau = NAN;
    if (lambda) *lambda = NAN;
    if (n_out) *n_out = 0;
    if (epochs < 1) return comine_fail(COMINE_ERR_ARG, "cross-fitting: %d epochs (at least 1)", epochs);
    if (rounds < 1 || rounds > 9) return comine_fail(COMINE_ERR_ARG, "cross-fitting: %d rounds (1 to 9)", rounds);
    comine_dataset *ds = NULL;
    comine_dataset_opts dopts = {.root = base->root};
    comine_status st = comine_dataset_open(&ds, base->data, &dopts);
    if (st != COMINE_OK) return st;
    int n = ds->n;
    uint8_t *half = comine_malloc((size_t)(n > 0 ? n : 1));
    int both = n > 0 ? split_halves(half, ds, base->seed) : 0;
    comine_dataset_free(ds);
    if (both < 2) {
        free(half);
        return comine_fail(COMINE_ERR_ARG, "%s: %d labels with 2 samples or more; estimating the noise rate by "
                           "cross-fitting needs at least 2", base->data, both);
    }
    if ((st = comine_mkdirs(dir)) != COMINE_OK) {
        free(half);
        return st;
    }
    uint8_t *keep[2] = {comine_malloc((size_t)n), comine_malloc((size_t)n)}, *drop = comine_calloc((size_t)n, 1);
    float *p = comine_alloc_floats((size_t)n * 2), *prev = comine_alloc_floats((size_t)n * 2);
    double res[4] = {NAN, NAN, 0, 0}; /* tau, lambda, samples, failed */
    for (int r = 0; r < rounds && st == COMINE_OK; r++) {
        char name[32], *round_dir = NULL, *runs[2];
        if (r > 0) snprintf(name, sizeof name, "round%d", r + 1);
        if (r > 0) round_dir = comine_path_join(dir, name);
        for (int h = 0; h < 2; h++) runs[h] = comine_path_join(r > 0 ? round_dir : dir, h ? "half2" : "half1");
        for (int h = 0; h < 2 && st == COMINE_OK; h++) {
            for (int i = 0; i < n; i++) keep[h][i] = half[i] == h && !drop[i];
            comine_train_cfg cfg;
            half_cfg(&cfg, base, epochs, runs[h], keep[h]);
            if (!base->quiet && comine_dist_rank() == 0)
                comine_progress("cross-fitting, round %d of %d: training on half %d of each label's samples (mode "
                                "arcface, %d epochs, %s)", r + 1, rounds, h + 1, epochs, runs[h]);
            comine_train_summary sum;
            st = comine_train(&cfg, &sum);
        }
        /* rank 0 ranks and estimates; the others receive the result and the next round's
         * suspects (training failed on every rank or on none) */
        if (st == COMINE_OK) {
            if (comine_dist_rank() == 0) {
                st = rank_round(p, r > 0 ? prev : NULL, base, runs, half, keep, n);
                int m = 0;
                for (int i = 0; i < n; i++) m += isfinite(p[2 * (size_t)i]);
                if (st == COMINE_OK) st = comine_tau_storey(&res[0], &res[1], p, n, 1, base->seed);
                if (st == COMINE_OK && !base->quiet && rounds > 1)
                    comine_progress("cross-fitting, round %d of %d: noise rate %.3f (Storey's lambda %.2f)", r + 1,
                                    rounds, res[0], res[1]);
                if (st == COMINE_OK && r + 1 < rounds) suspects(drop, p, n, res[0]);
                memcpy(prev, p, sizeof(float) * (size_t)n * 2);
                res[2] = m;
                res[3] = st != COMINE_OK;
            }
            if (comine_dist_size() > 1) {
                comine_dist_broadcast(res, sizeof res, 0);
                if (r + 1 < rounds && res[3] == 0) comine_dist_broadcast(drop, (size_t)n, 0);
            }
            if (st == COMINE_OK && res[3] != 0) st = comine_fail(COMINE_ERR_ARG, "cross-fitting failed on rank 0");
        }
        free(runs[0]);
        free(runs[1]);
        free(round_dir);
    }
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
    free(keep[0]);
    free(keep[1]);
    free(half);
    return st;
}

/* trainer_merge.c: `train --merge-duplicates` (trainer_impl.h).  At the end of the warm-up the
 * labels that are one person are found as `comine dedup` finds them (the mean embedding of each
 * label under both peers, the top-k search, the automatic threshold, mutual nearest labels),
 * then merged: each peer's ArcFace head keeps one centre per group (merge.h), the samples are
 * relabelled, and the votes of the merged labels' samples restart.  RUN/merge_map.tsv keeps
 * the map (old label TAB new label) so that a resumed run relabels its data before it reads a
 * checkpoint written after the merge; RUN/duplicates.csv lists the pairs found. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/dedup.h"
#include "comine/dist.h"
#include "comine/merge.h"
#include "train/trainer_impl.h"

#define MERGE_MAP "merge_map.tsv"
#define MERGE_PAIRS "duplicates.csv"
#define MERGE_TOP_K 5
#define MERGE_K_SIGMA COMINE_DEDUP_K_SIGMA

static comine_status write_map(const trainer *t, const int *new_label, int K)
{
    char *path = comine_path_join(t->cfg->out, MERGE_MAP);
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    free(path);
    if (st != COMINE_OK) return st;
    fprintf(af.fp, "old_label\tnew_label\n");
    for (int c = 0; c < K; c++) fprintf(af.fp, "%d\t%d\n", c, new_label[c]);
    return comine_atomic_commit(&af);
}

static comine_status write_pairs(const trainer *t, const comine_dedup_pair *pairs, int n, char **names)
{
    char *path = comine_path_join(t->cfg->out, MERGE_PAIRS);
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    free(path);
    if (st != COMINE_OK) return st;
    fprintf(af.fp, "label_a,label_b,score,name_a,name_b\n");
    for (int i = 0; i < n; i++)
        fprintf(af.fp, "%d,%d,%.6f,%s,%s\n", pairs[i].a, pairs[i].b, pairs[i].score, names ? names[pairs[i].a] : "",
                names ? names[pairs[i].b] : "");
    return comine_atomic_commit(&af);
}

comine_status comine_trainer_merge(trainer *t)
{
    const comine_train_cfg *cfg = t->cfg;
    const int K = t->K, n_models = t->peers.n;
    const int D = comine_model_arch(t->peers.peer[0].model)->emb_dim, dim = n_models * D;
    double t0 = comine_now();
    float *x = comine_calloc((size_t)K * dim, sizeof(float));
    float *means = comine_calloc((size_t)K * D, sizeof(float));
    comine_status st = COMINE_OK;
    for (int m = 0; m < n_models && st == COMINE_OK; m++) {
        comine_model *model = t->peers.peer[m].model;
        st = comine_dedup_label_means(means, NULL, NULL, &model, 1, t->ds, NULL, cfg->batch,
                                      cfg->loader_threads > 0 ? cfg->loader_threads : 1);
        if (st == COMINE_OK)
            comine_dedup_put_block(x, K, dim, m * D, means, D, 1.0f / (float)sqrt((double)n_models));
    }
    free(means);
    comine_dedup_pair *pairs = NULL;
    int n_pairs = 0;
    comine_dedup_rule rule;
    if (st == COMINE_OK)
        st = comine_dedup_find(&pairs, &n_pairs, x, K, dim, MERGE_TOP_K < K ? MERGE_TOP_K : K - 1 > 0 ? K - 1 : 1,
                               MERGE_K_SIGMA, cfg->merge_threshold, true, 0, &rule);
    free(x);
    if (st != COMINE_OK) {
        free(pairs);
        return comine_fail(st, "--merge-duplicates: %s", comine_last_error());
    }
    const double threshold = isfinite(cfg->merge_threshold) ? cfg->merge_threshold : rule.threshold;
    int *new_label = comine_malloc(sizeof(int) * (size_t)K);
    const int K_new = comine_dedup_merge_map(new_label, K, pairs, n_pairs);
    const bool writer = comine_dist_rank() == 0;
    if (writer) st = write_pairs(t, pairs, n_pairs, t->ds->class_names);
    if (st == COMINE_OK && K_new < K) {
        for (int k = 0; k < t->peers.n && st == COMINE_OK; k++) {
            comine_peer *p = &t->peers.peer[k];
            size_t kd = (size_t)K * p->head.D, kd_new = (size_t)K_new * p->head.D;
            float *w = comine_malloc(sizeof(float) * kd), *mom = comine_malloc(sizeof(float) * kd);
            float *w_new = comine_malloc(sizeof(float) * kd_new), *mom_new = comine_malloc(sizeof(float) * kd_new);
            comine_backend_download(t->be, w, p->head_weight, kd);
            comine_backend_download(t->be, mom, p->head_momentum, kd);
            comine_merge_head(w_new, mom_new, w, mom, new_label, K, p->head.D, K_new);
            st = comine_peer_replace_head(p, K_new, 1, w_new, mom_new);
            free(w);
            free(mom);
            free(w_new);
            free(mom_new);
        }
        if (st == COMINE_OK) st = comine_merge_relabel(t->ds, new_label, K, K_new);
        int restarted = 0;
        if (st == COMINE_OK) {
            int *group = comine_malloc(sizeof(int) * (size_t)K_new);
            comine_merge_group_sizes(group, new_label, K, K_new);
            restarted = comine_merge_reset_votes(t->votes, t->rounds, t->ds, group);
            free(group);
            t->K = K_new;
        }
        if (st == COMINE_OK && writer) st = write_map(t, new_label, K);
        if (st == COMINE_OK && writer && t->ds->class_names) {
            char *path = comine_path_join(cfg->out, "classes.tsv");
            st = comine_dataset_write_classes(t->ds, path);
            free(path);
        }
        if (st == COMINE_OK && writer)
            comine_progress("--merge-duplicates: %d pairs of labels judged one person (similarity above %.4f%s, "
                            "mutual nearest); %d labels become %d; the votes of %d samples restart (%.1f s; %s/%s)",
                            n_pairs, threshold, isfinite(cfg->merge_threshold) ? ", --merge-threshold" : " by the "
                            "automatic rule", K, K_new, restarted, comine_now() - t0, cfg->out, MERGE_PAIRS);
    } else if (st == COMINE_OK && writer) {
        comine_progress("--merge-duplicates: no duplicate labels found (similarity threshold %.4f; %.1f s)",
                        threshold, comine_now() - t0);
    }
    free(pairs);
    free(new_label);
    return st;
}

/* The first bytes of checkpoint.bin: "CMCK", u32 version, u32 peers, u32 classes. */
static int checkpoint_classes(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    unsigned char h[16];
    size_t got = fread(h, 1, sizeof h, fp);
    fclose(fp);
    if (got != sizeof h || memcmp(h, "CMCK", 4)) return -1;
    return (int)((uint32_t)h[12] | (uint32_t)h[13] << 8 | (uint32_t)h[14] << 16 | (uint32_t)h[15] << 24);
}

comine_status comine_trainer_merge_restore(trainer *t)
{
    const comine_train_cfg *cfg = t->cfg;
    char *map_path = comine_path_join(cfg->out, MERGE_MAP), *ckpt = comine_path_join(cfg->out, "checkpoint.bin");
    comine_status st = COMINE_OK;
    int K = t->ds->num_classes, K_ckpt = checkpoint_classes(ckpt);
    if (comine_path_exists(map_path) && K_ckpt > 0 && K_ckpt != K) {
        /* the checkpoint was written after the merge: relabel as it was */
        uint8_t *data = NULL;
        size_t size = 0;
        st = comine_read_file(map_path, &data, &size);
        int *new_label = comine_malloc(sizeof(int) * (size_t)K);
        int seen = 0, K_new = 0, line = 1;
        char *p = st == COMINE_OK ? strchr((char *)data, '\n') : NULL;
        while (st == COMINE_OK && p && p[1]) {
            int old, nl;
            line++;
            if (sscanf(p + 1, "%d\t%d", &old, &nl) != 2 || old != seen || seen >= K || nl < 0) {
                st = comine_fail(COMINE_ERR_FORMAT, "%s: line %d: expected \"%d<TAB>new label\"", map_path, line, seen);
                break;
            }
            new_label[seen++] = nl;
            if (nl + 1 > K_new) K_new = nl + 1;
            p = strchr(p + 1, '\n');
        }
        if (st == COMINE_OK && seen != K)
            st = comine_fail(COMINE_ERR_FORMAT, "%s: %d labels, the data set has %d", map_path, seen, K);
        if (st == COMINE_OK && K_new != K_ckpt)
            st = comine_fail(COMINE_ERR_FORMAT, "%s: maps onto %d labels, the checkpoint holds %d", map_path, K_new,
                             K_ckpt);
        if (st == COMINE_OK) st = comine_merge_check_map(new_label, K, K_new);
        if (st == COMINE_OK) st = comine_merge_relabel(t->ds, new_label, K, K_new);
        free(new_label);
        free(data);
    }
    free(map_path);
    free(ckpt);
    return st;
}

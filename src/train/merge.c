/* merge.c: duplicate identities merged inside a run (see comine/merge.h): the label map of
 * one pair, its check, the heads' rows merged (normalised mean of the members' directions,
 * momentum restarted), the data set relabelled and the merged samples' votes restarted. */
#include "comine/merge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int comine_merge_pair_map(int *new_label, int K, int a, int b)
{
    COMINE_ASSERT(a >= 0 && a < K && b >= 0 && b < K && a != b);
    int keep = a < b ? a : b, gone = a < b ? b : a;
    for (int j = 0; j < K; j++) new_label[j] = j < gone ? j : j - 1;
    new_label[gone] = new_label[keep];
    return K - 1;
}

comine_status comine_merge_check_map(const int *new_label, int K, int K_new)
{
    if (K_new < 1 || K_new > K) return comine_fail(COMINE_ERR_ARG, "merge: %d labels onto %d", K, K_new);
    uint8_t *used = comine_calloc((size_t)K_new, 1);
    comine_status st = COMINE_OK;
    for (int j = 0; j < K && st == COMINE_OK; j++) {
        if (new_label[j] < 0 || new_label[j] >= K_new)
            st = comine_fail(COMINE_ERR_ARG, "merge: label %d maps to %d, outside 0 .. %d", j, new_label[j], K_new - 1);
        else used[new_label[j]] = 1;
    }
    for (int g = 0; g < K_new && st == COMINE_OK; g++)
        if (!used[g]) st = comine_fail(COMINE_ERR_ARG, "merge: no label maps to group %d of %d", g, K_new);
    free(used);
    return st;
}

void comine_merge_group_sizes(int *group_size, const int *new_label, int K, int K_new)
{
    memset(group_size, 0, sizeof(int) * (size_t)K_new);
    for (int j = 0; j < K; j++) group_size[new_label[j]]++;
}

void comine_merge_head(float *weight_out, float *momentum_out, const float *weight, const float *momentum,
                       const int *new_label, int K, int D, int K_new)
{
    int *size = comine_malloc(sizeof(int) * (size_t)K_new);
    comine_merge_group_sizes(size, new_label, K, K_new);
    double *dir = comine_calloc((size_t)K_new * D, sizeof(double));
    double *norm = comine_calloc((size_t)K_new, sizeof(double));
    for (int j = 0; j < K; j++) {
        int g = new_label[j];
        const float *w = weight + (size_t)j * D;
        if (size[g] == 1) { /* unchanged */
            memcpy(weight_out + (size_t)g * D, w, sizeof(float) * (size_t)D);
            if (momentum_out)
                memcpy(momentum_out + (size_t)g * D, momentum + (size_t)j * D, sizeof(float) * (size_t)D);
            continue;
        }
        double ss = 0;
        for (int c = 0; c < D; c++) ss += (double)w[c] * w[c];
        double len = sqrt(ss);
        norm[g] += len;
        if (len > 0)
            for (int c = 0; c < D; c++) dir[(size_t)g * D + c] += w[c] / len;
    }
    for (int g = 0; g < K_new; g++) {
        if (size[g] == 1) continue;
        double *d = dir + (size_t)g * D, ss = 0;
        for (int c = 0; c < D; c++) ss += d[c] * d[c];
        double scale = ss > 0 ? (norm[g] / size[g]) / sqrt(ss) : 0;
        for (int c = 0; c < D; c++) weight_out[(size_t)g * D + c] = (float)(d[c] * scale);
        if (momentum_out) memset(momentum_out + (size_t)g * D, 0, sizeof(float) * (size_t)D);
    }
    free(norm);
    free(dir);
    free(size);
}

comine_status comine_merge_relabel(comine_dataset *ds, const int *new_label, int K, int K_new)
{
    if (ds->num_classes != K)
        return comine_fail(COMINE_ERR_ARG, "%s: %d labels, but the merge map is of %d", ds->source, ds->num_classes,
                           K);
    comine_status st = comine_merge_check_map(new_label, K, K_new);
    if (st != COMINE_OK) return st;
    for (int i = 0; i < ds->n; i++) ds->samples[i].label = new_label[ds->samples[i].label];
    if (ds->class_names) {
        char **names = comine_calloc((size_t)K_new, sizeof(char *));
        for (int j = 0; j < K; j++) {
            int g = new_label[j];
            if (!names[g]) names[g] = ds->class_names[j]; /* the group's smallest label */
            else free(ds->class_names[j]);
        }
        free(ds->class_names);
        ds->class_names = names;
    }
    ds->num_classes = K_new;
    return COMINE_OK;
}

int comine_merge_reset_votes(int32_t *votes, int32_t *rounds, const comine_dataset *ds, const int *group_size)
{
    int reset = 0;
    for (int i = 0; i < ds->n; i++)
        if (group_size[ds->samples[i].label] > 1) {
            votes[i] = 0;
            rounds[i] = 0;
            reset++;
        }
    return reset;
}

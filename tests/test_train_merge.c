/* test_train_merge.c: duplicate identities merged inside a run (comine/merge.h): the map of
 * one pair (the larger label's gap closed), the map check, the heads' rows (a merged centre is
 * the normalised mean of the members' directions at their mean norm, its momentum zero, every
 * other row and momentum copied bit for bit), a map of a union of groups
 * (comine_dedup_merge_map), the data set relabelled (class names of each group's smallest
 * label) and the merged samples' votes restarted. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/core.h"
#include "comine/data.h"
#include "comine/dedup.h"
#include "comine/merge.h"
#include "fixture.h"

int main(void)
{
    enum { K = 6, D = 5 };
    /* ---- the map of one pair ---- */
    int map[K];
    int kn = comine_merge_pair_map(map, K, 4, 1);
    int want[K] = {0, 1, 2, 3, 1, 4};
    FX_EXPECT(kn == K - 1, "pair map: %d groups", kn);
    FX_EXPECT(!memcmp(map, want, sizeof want), "pair map (4 into 1): %d %d %d %d %d %d", map[0], map[1], map[2],
              map[3], map[4], map[5]);
    FX_EXPECT(comine_merge_check_map(map, K, kn) == COMINE_OK, "a good map is accepted");
    int gap[K] = {0, 1, 2, 3, 4, 4};
    FX_EXPECT(comine_merge_check_map(gap, K, 6) != COMINE_OK, "a map that leaves group 5 empty is refused");
    int out_of[K] = {0, 1, 2, 3, 7, 4};
    FX_EXPECT(comine_merge_check_map(out_of, K, 5) != COMINE_OK, "a label mapped outside is refused");
    printf("%s pair map 4 -> 1: 0 1 2 3 1 4; bad maps refused\n", fx_fail_count ? "FAIL" : "ok  ");

    /* ---- heads ---- */
    comine_rng rng;
    comine_rng_seed(&rng, 7, 0);
    float w[K * D], mom[K * D], w2[K * D], mom2[K * D];
    for (int i = 0; i < K * D; i++) {
        w[i] = comine_rng_normal(&rng) * (1 + i / D);   /* rows of different norms */
        mom[i] = comine_rng_normal(&rng);
    }
    int mark = fx_fail_count;
    memset(w2, 0xff, sizeof w2);
    memset(mom2, 0xff, sizeof mom2);
    comine_merge_head(w2, mom2, w, mom, map, K, D, kn);
    /* untouched rows: 0, 2, 3 -> 0, 2, 3; 5 -> 4 */
    int src[] = {0, 2, 3, 5}, dst[] = {0, 2, 3, 4};
    for (int t = 0; t < 4; t++) {
        FX_EXPECT(!memcmp(w2 + dst[t] * D, w + src[t] * D, sizeof(float) * D), "row %d copied to %d", src[t], dst[t]);
        FX_EXPECT(!memcmp(mom2 + dst[t] * D, mom + src[t] * D, sizeof(float) * D), "momentum %d copied", src[t]);
    }
    /* merged row 1 = unit(u1 + u4) * (|w1| + |w4|) / 2 */
    float ref[D];
    double n1 = 0, n4 = 0, ss = 0;
    for (int c = 0; c < D; c++) {
        n1 += (double)w[D + c] * w[D + c];
        n4 += (double)w[4 * D + c] * w[4 * D + c];
    }
    n1 = sqrt(n1);
    n4 = sqrt(n4);
    double sum[D];
    for (int c = 0; c < D; c++) {
        sum[c] = w[D + c] / n1 + w[4 * D + c] / n4;
        ss += sum[c] * sum[c];
    }
    for (int c = 0; c < D; c++) ref[c] = (float)(sum[c] / sqrt(ss) * (n1 + n4) / 2);
    fx_check("merged centre (normalised mean, mean norm)", w2 + D, ref, D, 1e-6, 1e-5);
    float zero[D] = {0};
    fx_check("merged momentum restarts at zero", mom2 + D, zero, D, 0, 0);
    /* the merged direction sits between the two: equal cosine to both */
    double ca = 0, cb = 0, nm = 0;
    for (int c = 0; c < D; c++) {
        ca += w2[D + c] * (w[D + c] / n1);
        cb += w2[D + c] * (w[4 * D + c] / n4);
        nm += (double)w2[D + c] * w2[D + c];
    }
    FX_EXPECT(fabs(ca - cb) < 1e-5 * sqrt(nm), "merged centre equidistant: cos %.6f vs %.6f", ca / sqrt(nm),
              cb / sqrt(nm));
    comine_merge_head(w2, NULL, w, NULL, map, K, D, kn); /* without momentum */
    fx_check("merged centre without momentum arrays", w2 + D, ref, D, 1e-6, 1e-5);
    FX_SUMMARY(mark, "heads: 4 rows copied bit for bit, the merged row and its momentum\n");

    /* ---- a union of pairs (dedup's map): {0, 3, 5} and {1, 2}, 4 alone ---- */
    mark = fx_fail_count;
    comine_dedup_pair pairs[] = {{0, 3, 0.9f}, {3, 5, 0.8f}, {1, 2, 0.7f}};
    int gmap[K];
    int groups = comine_dedup_merge_map(gmap, K, pairs, 3);
    FX_EXPECT(groups == 3, "groups %d", groups);
    FX_EXPECT(comine_merge_check_map(gmap, K, groups) == COMINE_OK, "dedup's map passes the check");
    float w3[3 * D];
    comine_merge_head(w3, NULL, w, NULL, gmap, K, D, groups);
    double s3[D] = {0}, nsum = 0, s3n = 0;
    int members[] = {0, 3, 5};
    for (int t = 0; t < 3; t++) {
        double nn = 0;
        for (int c = 0; c < D; c++) nn += (double)w[members[t] * D + c] * w[members[t] * D + c];
        nn = sqrt(nn);
        nsum += nn;
        for (int c = 0; c < D; c++) s3[c] += w[members[t] * D + c] / nn;
    }
    for (int c = 0; c < D; c++) s3n += s3[c] * s3[c];
    for (int c = 0; c < D; c++) ref[c] = (float)(s3[c] / sqrt(s3n) * nsum / 3);
    fx_check("group of three: normalised mean of three", w3, ref, D, 1e-6, 1e-5);
    FX_EXPECT(!memcmp(w3 + 2 * D, w + 4 * D, sizeof(float) * D), "label 4 alone: row copied to group 2");
    FX_SUMMARY(mark, "dedup's union map: 6 labels -> 3 groups, a centre of three\n");

    /* ---- data set relabelled, votes restarted ---- */
    mark = fx_fail_count;
    comine_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.source = "test";
    ds.n = 12;
    ds.num_classes = K;
    ds.samples = calloc(12, sizeof(comine_sample));
    ds.class_names = malloc(sizeof(char *) * K);
    for (int j = 0; j < K; j++) {
        char name[16];
        snprintf(name, sizeof name, "id%d", j);
        ds.class_names[j] = comine_strdup(name);
    }
    for (int i = 0; i < 12; i++) ds.samples[i].label = i % K;
    FX_EXPECT(comine_merge_relabel(&ds, map, K + 1, kn) != COMINE_OK, "a map of another K is refused");
    FX_EXPECT(comine_merge_relabel(&ds, map, K, kn) == COMINE_OK, "relabel");
    FX_EXPECT(ds.num_classes == kn, "num_classes %d", ds.num_classes);
    int bad = 0;
    for (int i = 0; i < 12; i++) bad += ds.samples[i].label != map[i % K];
    FX_EXPECT(bad == 0, "%d samples relabelled wrongly", bad);
    FX_EXPECT(!strcmp(ds.class_names[1], "id1") && !strcmp(ds.class_names[4], "id5"), "names %s %s",
              ds.class_names[1], ds.class_names[4]);
    int size[K];
    comine_merge_group_sizes(size, map, K, kn);
    FX_EXPECT(size[1] == 2 && size[0] == 1 && size[4] == 1, "group sizes %d %d %d", size[0], size[1], size[4]);
    int32_t votes[12], rounds[12];
    for (int i = 0; i < 12; i++) votes[i] = rounds[i] = 3;
    int reset = comine_merge_reset_votes(votes, rounds, &ds, size);
    int wrong = 0;
    for (int i = 0; i < 12; i++) {
        bool merged = i % K == 1 || i % K == 4;
        wrong += merged ? (votes[i] != 0 || rounds[i] != 0) : (votes[i] != 3 || rounds[i] != 3);
    }
    FX_EXPECT(reset == 4 && wrong == 0, "votes restarted: %d (want 4), %d wrong", reset, wrong);
    FX_SUMMARY(mark, "data set relabelled (12 samples, names of the smallest label), 4 samples' votes restarted\n");
    for (int j = 0; j < ds.num_classes; j++) free(ds.class_names[j]);
    free(ds.class_names);
    free(ds.samples);
    return fx_finish("test_train_merge");
}

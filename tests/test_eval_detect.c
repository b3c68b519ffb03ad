/* test_eval_detect.c: the noise report ranked by embeddings (comine/detect.h).  The scores
 * against a direct leave-one-out computation in double (a label without trusted samples, the
 * only sample of a label, trusted and untrusted samples); the verdict (the share of lowest
 * scores, ties to the lower index, unscored samples keeping the votes' verdict); and, with two
 * randomly initialised models on small images, the two-pass scoring over several chunks equal
 * bit for bit whether the embeddings are held or embedded again, and equal to the scores of
 * comine_embed_dataset's embeddings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comine/backend.h"
#include "comine/data.h"
#include "comine/detect.h"
#include "comine/eval.h"
#include "comine/model.h"
#include "fixture.h"

/* Direct computation: for sample i, the sum of the other used samples of its label. */
static void naive_scores(float *score, uint8_t *scored, const float *emb, const int *labels, const uint8_t *trusted,
                         int n, int K, int dim)
{
    int *n_trusted = calloc((size_t)K, sizeof(int));
    for (int i = 0; i < n; i++) n_trusted[labels[i]] += trusted[i] != 0;
    double *r = malloc(sizeof(double) * (size_t)dim);
    for (int i = 0; i < n; i++) {
        memset(r, 0, sizeof(double) * (size_t)dim);
        int members = 0;
        for (int j = 0; j < n; j++) {
            if (j == i || labels[j] != labels[i]) continue;
            if (!trusted[j] && n_trusted[labels[i]] > 0) continue;
            members++;
            for (int c = 0; c < dim; c++) r[c] += emb[(size_t)j * dim + c];
        }
        double dot = 0, nn = 0;
        for (int c = 0; c < dim; c++) {
            dot += r[c] * emb[(size_t)i * dim + c];
            nn += r[c] * r[c];
        }
        scored[i] = members > 0;
        score[i] = members > 0 ? (float)(dot / sqrt(nn)) : 0.f;
    }
    free(r);
    free(n_trusted);
}

static void check_scores(void)
{
    enum { N = 40, K = 7, D = 24 };
    comine_rng rng;
    comine_rng_seed(&rng, 3, COMINE_STREAM_SYNTH);
    float emb[N * D];
    int labels[N];
    uint8_t trusted[N];
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int c = 0; c < D; c++) {
            emb[i * D + c] = comine_rng_normal(&rng) + (c == i % 5 ? 2.f : 0.f);
            s += (double)emb[i * D + c] * emb[i * D + c];
        }
        for (int c = 0; c < D; c++) emb[i * D + c] = (float)(emb[i * D + c] / sqrt(s));
        labels[i] = i % 5;                       /* labels 0-4: 8 samples each */
        trusted[i] = comine_rng_uniform(&rng) < 0.75f;
    }
    labels[7] = 5;                               /* label 5: one sample, no reference */
    labels[13] = labels[21] = labels[29] = 6;    /* label 6: no trusted sample, all of them count */
    trusted[13] = trusted[21] = trusted[29] = 0;
    trusted[0] = 1;
    trusted[5] = 0;                              /* label 0: trusted and untrusted members */
    float got[N], want[N];
    uint8_t got_scored[N], want_scored[N];
    comine_detect_scores(got, got_scored, emb, labels, trusted, N, K, D);
    naive_scores(want, want_scored, emb, labels, trusted, N, K, D);
    fx_check("scores vs direct leave-one-out", got, want, N, 1e-6, 1e-6);
    bool same = memcmp(got_scored, want_scored, N) == 0 && !got_scored[7] && got_scored[13];
    printf("%s scored flags (the only sample of label 5 unscored; label 6 scored from all its samples)\n",
           same ? "ok  " : "FAIL");
    if (!same) fx_fail_count++;
}

static void expect_flags(const char *what, const uint8_t *flag, const char *want, int n, int count, int want_count)
{
    char got[64];
    for (int i = 0; i < n; i++) got[i] = flag[i] ? '1' : '0';
    got[n] = 0;
    bool ok = !strcmp(got, want) && count == want_count;
    printf("%s %s: %s (%d flagged), want %s (%d)\n", ok ? "ok  " : "FAIL", what, got, count, want, want_count);
    if (!ok) fx_fail_count++;
}

static void check_flags(void)
{
    const float score[7] = {0.5f, 0.1f, 0.1f, 0.9f, 0.3f, 0.f, 0.f};
    const uint8_t scored[7] = {1, 1, 1, 1, 1, 0, 0}, votes[7] = {0, 0, 0, 1, 0, 1, 0};
    uint8_t flag[7];
    int c = comine_detect_flag(flag, score, scored, votes, 7, 0.4);
    expect_flags("rate 0.4 of 5 scored: the 2 lowest, plus the voted unscored", flag, "0110010", 7, c, 3);
    c = comine_detect_flag(flag, score, scored, votes, 7, 0.5);
    expect_flags("rate 0.5: round(2.5) = 3", flag, "0110110", 7, c, 4);
    c = comine_detect_flag(flag, score, scored, NULL, 7, 0.0);
    expect_flags("rate 0, no votes", flag, "0000000", 7, c, 0);
    c = comine_detect_flag(flag, score, scored, votes, 7, 1.0);
    expect_flags("rate 1", flag, "1111110", 7, c, 6);
    const float tie[3] = {0.2f, 0.2f, 0.2f};
    const uint8_t all[3] = {1, 1, 1};
    c = comine_detect_flag(flag, tie, all, NULL, 3, 0.34);
    expect_flags("ties go to the lower index", flag, "100", 3, c, 1);
}

static comine_model *make_model(uint64_t seed)
{
    comine_arch arch;
    COMINE_ASSERT(comine_arch_default(&arch, "iresnet18") == COMINE_OK);
    arch.width = 0.125f;
    arch.input = 32;
    arch.emb_dim = 32;
    comine_model *m;
    COMINE_ASSERT(comine_model_create(&m, &arch, comine_backend_cpu(), 8) == COMINE_OK);
    comine_model_init(m, seed);
    return m;
}

static void check_models(const char *dir)
{
    enum { IDS = 6, PER = 6, SIDE = 32, N = IDS * PER };
    comine_rng rng;
    comine_rng_seed(&rng, 9, COMINE_STREAM_SYNTH);
    char list[300];
    snprintf(list, sizeof list, "%s/images.txt", dir);
    FILE *fp = fopen(list, "w");
    COMINE_ASSERT(fp);
    for (int id = 0; id < IDS; id++) {
        uint8_t base[SIDE * SIDE * 3];
        for (int i = 0; i < SIDE * SIDE * 3; i++) base[i] = (uint8_t)comine_rng_below(&rng, 256);
        for (int k = 0; k < PER; k++) {
            comine_image img = {SIDE, SIDE, malloc(SIDE * SIDE * 3)};
            for (int i = 0; i < SIDE * SIDE * 3; i++) {
                int v = base[i] + (int)comine_rng_below(&rng, 161) - 80;
                img.rgb[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
            char path[300];
            snprintf(path, sizeof path, "%s/%d_%d.png", dir, id, k);
            COMINE_ASSERT(comine_image_save_png(&img, path) == COMINE_OK);
            free(img.rgb);
            /* one image of each identity carries the next identity's label */
            fprintf(fp, "%d_%d.png\t%d\n", id, k, k == 0 ? (id + 1) % IDS : id);
        }
    }
    fclose(fp);
    comine_dataset *ds;
    comine_dataset_opts dopts = {0};
    comine_status st = comine_dataset_open(&ds, list, &dopts);
    FX_EXPECT(!st, "dataset: %s", comine_last_error());
    if (st) return;
    comine_model *models[2] = {make_model(21), make_model(22)};
    int dim = comine_model_arch(models[0])->emb_dim;
    uint8_t trusted[N], scored_h[N], scored_r[N], scored_e[N];
    for (int i = 0; i < N; i++) trusted[i] = i % 7 != 3;
    float held[N], again[N], direct[N];
    /* batch 1: chunks of 16 images, three of them */
    st = comine_detect_scores_models(held, scored_h, models, 2, ds, trusted, 1, 2, (size_t)1 << 30, NULL);
    FX_EXPECT(!st, "scores (held): %s", comine_last_error());
    st = comine_detect_scores_models(again, scored_r, models, 2, ds, trusted, 1, 2, 0, NULL);
    FX_EXPECT(!st, "scores (embedded again): %s", comine_last_error());
    bool same = memcmp(held, again, sizeof held) == 0 && memcmp(scored_h, scored_r, N) == 0;
    printf("%s held embeddings and a second pass give the same scores bit for bit\n", same ? "ok  " : "FAIL");
    if (!same) fx_fail_count++;
    float *emb = comine_alloc_floats((size_t)N * dim);
    FX_EXPECT(!comine_embed_dataset(emb, models, 2, ds, 1, 2, NULL), "embed: %s", comine_last_error());
    int labels[N];
    for (int i = 0; i < N; i++) labels[i] = ds->samples[i].label;
    comine_detect_scores(direct, scored_e, emb, labels, trusted, N, ds->num_classes, dim);
    fx_check("scores from the models vs from comine_embed_dataset", held, direct, N, 1e-6, 0);
    int all_scored = 1;
    for (int i = 0; i < N; i++) all_scored &= scored_h[i];
    FX_EXPECT(all_scored, "every sample has a reference here");
    comine_free_floats(emb);
    comine_model_free(models[0]);
    comine_model_free(models[1]);
    comine_dataset_free(ds);
}

int main(void)
{
    comine_set_num_threads(1);
    char dir[256];
    snprintf(dir, sizeof dir, "test_eval_detect_tmp.%d", (int)getpid());
    comine_mkdirs(dir);
    check_scores();
    check_flags();
    check_models(dir);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return fx_fail_count ? 1 : 0;
}

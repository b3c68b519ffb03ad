/* test_loss_pfc.c: Partial FC (partial_fc.h).
 *  1. the draw: every positive class in it, max(n_pos, floor(R K)) classes, ascending and
 *     distinct, labels mapped to their positions; the same (seed, step, labels) give the same
 *     classes (what every rank and a resumed run compute), another step other classes; each
 *     negative drawn about (count - n_pos) / (K - n_pos) of the steps; R = 1 keeps every class;
 *     a rate outside (0, 1] refused.
 *  2. the sampled head, sharded: P shards (P = 1, 2, 3, run in one process and combined as the
 *     ranks' all-reduces would), each gathering its sampled rows into a block (a head of 1 class
 *     grown by comine_arcface_set_classes), against one full head over the same sampled rows:
 *     per-sample losses, cos th_y, p_y, d emb and d weight (scattered back to the K rows; the
 *     rows not drawn get nothing), for every form and both fallbacks; also a draw that leaves
 *     shards without any class.  Tolerance atol + rtol |ref|. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/loss.h"
#include "comine/partial_fc.h"
#include "fixture.h"

enum { N = 9, K = 61, D = 16 };

static int compare(const char *what, const float *got, const float *ref, size_t n, double atol, double rtol)
{
    double worst = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]);
        if (e > worst) worst = e;
        if (!(e <= atol + rtol * fabs(ref[i]))) bad = 1;
    }
    printf("%s %s: max error %.3g\n", bad ? "FAIL" : "ok  ", what, worst);
    return bad;
}

static int check(const char *what, int ok)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    return !ok;
}

static int test_draw(void)
{
    int fails = 0;
    const int labels[N] = {3, 17, 3, 60, 0, 41, 17, 22, 59}; /* 7 distinct */
    const int n_pos = 7;
    comine_pfc a, b;
    COMINE_ASSERT(comine_pfc_init(&a, K, 0.3f, 42, N) == COMINE_OK);
    COMINE_ASSERT(comine_pfc_init(&b, K, 0.3f, 42, 2 * N) == COMINE_OK);
    comine_pfc_draw(&a, labels, N, 5);
    char what[160];
    snprintf(what, sizeof what, "K %d R 0.3: %d classes drawn (max(%d positives, floor(0.3 K) = 18))", K, a.count,
             n_pos);
    fails += check(what, a.count == 18 && comine_pfc_count(K, 0.3f, n_pos) == 18);
    int ascending = 1, positives = 1, mapped = 1;
    for (int i = 1; i < a.count; i++) ascending &= a.classes[i] > a.classes[i - 1];
    for (int i = 0; i < N; i++) {
        int p = a.labels[i];
        mapped &= p >= 0 && p < a.count && a.classes[p] == labels[i];
    }
    for (int i = 0; i < N; i++) {
        int found = 0;
        for (int j = 0; j < a.count; j++) found |= a.classes[j] == labels[i];
        positives &= found;
    }
    fails += check("the classes are ascending and distinct", ascending);
    fails += check("every positive class is drawn", positives);
    fails += check("each label is mapped to its class's position", mapped);
    comine_pfc_draw(&b, labels, N, 5);
    fails += check("the same (seed, step, labels) draw the same classes (every rank, a resumed run)",
                   b.count == a.count && !memcmp(a.classes, b.classes, (size_t)a.count * sizeof(int)));
    comine_pfc_draw(&b, labels, N, 6);
    fails += check("the next step draws other classes",
                   b.count == a.count && memcmp(a.classes, b.classes, (size_t)a.count * sizeof(int)) != 0);
    /* each negative class drawn with probability (count - n_pos) / (K - n_pos) = 11 / 54 */
    enum { STEPS = 4000 };
    int hits[K] = {0};
    for (int s = 0; s < STEPS; s++) {
        comine_pfc_draw(&a, labels, N, (uint64_t)s);
        for (int j = 0; j < a.count; j++) hits[a.classes[j]]++;
    }
    const double p = 11.0 / 54.0, sd = sqrt(STEPS * p * (1 - p));
    double worst = 0;
    int pos_always = 1;
    for (int c = 0; c < K; c++) {
        int is_pos = 0;
        for (int i = 0; i < N; i++) is_pos |= labels[i] == c;
        if (is_pos) {
            pos_always &= hits[c] == STEPS;
            continue;
        }
        double z = fabs(hits[c] - STEPS * p) / sd;
        if (z > worst) worst = z;
    }
    snprintf(what, sizeof what, "over %d steps each negative drawn %.3f of the time (largest deviation %.2f sd < 5)",
             STEPS, p, worst);
    fails += check(what, worst < 5.0 && pos_always);
    comine_pfc_free(&a);
    comine_pfc_free(&b);
    /* fewer sampled than positives: the positives alone; R = 1: every class */
    COMINE_ASSERT(comine_pfc_init(&a, K, 0.05f, 1, N) == COMINE_OK);
    comine_pfc_draw(&a, labels, N, 0);
    fails += check("floor(R K) below the positives: the positives alone", a.count == n_pos);
    comine_pfc_free(&a);
    COMINE_ASSERT(comine_pfc_init(&a, K, 1.0f, 1, N) == COMINE_OK);
    comine_pfc_draw(&a, labels, N, 0);
    fails += check("R = 1: every class", a.count == K && a.classes[K - 1] == K - 1);
    comine_pfc_free(&a);
    const float bad[] = {0.0f, -0.5f, 1.5f, NAN};
    for (int i = 0; i < 4; i++) {
        comine_status st = comine_pfc_init(&a, K, bad[i], 1, N);
        snprintf(what, sizeof what, "rate %g refused: %s", (double)bad[i], comine_last_error());
        fails += check(what, st == COMINE_ERR_ARG && strstr(comine_last_error(), "(0, 1]") != NULL);
    }
    return fails;
}

/* The sampled head over P shards against the full head over the sampled rows, for one draw. */
static int test_head(const char *name, const float *emb, const float *weight, const int *labels,
                     const uint8_t *forms, const float *sample_weight, float rate, const comine_arcface_cfg *cfg)
{
    const comine_backend *be = comine_backend_cpu();
    int fails = 0;
    comine_pfc pfc;
    COMINE_ASSERT(comine_pfc_init(&pfc, K, rate, 9, N) == COMINE_OK);
    comine_pfc_draw(&pfc, labels, N, 3);
    const int Ks = pfc.count;
    const int *pos = pfc.labels;
    /* the reference: one head of the Ks sampled rows, labels as positions */
    float *block = comine_calloc((size_t)Ks * D, sizeof(float)), *dblock = comine_calloc((size_t)Ks * D, sizeof(float));
    comine_pfc_gather(block, weight, pfc.classes, Ks, 0, D);
    comine_arcface full;
    comine_arcface_init(&full, be, D, Ks, N);
    float loss[N], demb[N * D] = {0};
    comine_arcface_forward(&full, emb, block, N);
    comine_arcface_loss(&full, loss, pos, forms, N, cfg);
    comine_arcface_backward(&full, demb, dblock, emb, block, pos, forms, sample_weight, N, cfg);
    float *dweight = comine_calloc((size_t)K * D, sizeof(float));
    comine_pfc_scatter(dweight, dblock, pfc.classes, Ks, 0, D);
    for (int P = 1; P <= 3; P++) {
        comine_arcface shard[3];
        float *rows[3], *drows[3], *sdweight = comine_calloc((size_t)K * D, sizeof(float));
        int lo[4], pos_lo[3], pos_hi[3];
        float target_cos[N] = {0}, max_cos[N], part_cos[N], part_max[N], sloss[N], sdemb[N * D] = {0};
        double zmax[N], neg_sum[N] = {0}, neg_cos[N] = {0}, part_z[N], part_s[N], part_c[N];
        for (int r = 0; r <= P; r++) lo[r] = K * r / P;
        int empty = 0;
        for (int r = 0; r < P; r++) {
            comine_pfc_range(&pfc, lo[r], lo[r + 1], &pos_lo[r], &pos_hi[r]);
            const int n = pos_hi[r] - pos_lo[r];
            empty += n == 0;
            rows[r] = comine_calloc((size_t)(n > 0 ? n : 1) * D, sizeof(float));
            drows[r] = comine_calloc((size_t)(n > 0 ? n : 1) * D, sizeof(float));
            /* the shard holds rows [lo, hi) of the head; it gathers its drawn ones */
            comine_pfc_gather(rows[r], weight + (size_t)lo[r] * D, pfc.classes + pos_lo[r], n, lo[r], D);
            comine_arcface_init(&shard[r], be, D, 1, N);
            comine_arcface_set_classes(&shard[r], n);
            comine_arcface_forward(&shard[r], emb, rows[r], N);
            comine_arcface_shard_target(&shard[r], part_cos, pos, pos_lo[r], N);
            for (int i = 0; i < N; i++) target_cos[i] += part_cos[i];
        }
        for (int r = 0; r < P; r++) {
            comine_arcface_shard_max(&shard[r], part_z, part_max, target_cos, pos, forms, pos_lo[r], N, cfg);
            for (int i = 0; i < N; i++) {
                zmax[i] = r == 0 || part_z[i] > zmax[i] ? part_z[i] : zmax[i];
                max_cos[i] = r == 0 || part_max[i] > max_cos[i] ? part_max[i] : max_cos[i];
            }
        }
        for (int r = 0; r < P; r++) {
            comine_arcface_shard_sum(&shard[r], part_s, part_c, zmax, target_cos, pos, forms, pos_lo[r], N, cfg);
            for (int i = 0; i < N; i++) {
                neg_sum[i] += part_s[i];
                neg_cos[i] += part_c[i];
            }
        }
        for (int r = 0; r < P; r++) {
            comine_arcface_shard_loss(&shard[r], sloss, target_cos, zmax, neg_sum, max_cos, forms, N, cfg);
            comine_arcface_shard_backward(&shard[r], sdemb, drows[r], rows[r], pos, forms, sample_weight, target_cos,
                                          zmax, neg_sum, pos_lo[r], N, cfg);
            comine_pfc_scatter(sdweight + (size_t)lo[r] * D, drows[r], pfc.classes + pos_lo[r],
                               pos_hi[r] - pos_lo[r], lo[r], D);
        }
        char what[160];
        int at = snprintf(what, sizeof what, "%s P=%d (%d of %d classes drawn, %d shard(s) empty): ", name, P, Ks, K,
                          empty);
        snprintf(what + at, sizeof what - at, "loss");
        fails += compare(what, sloss, loss, N, 1e-5, 1e-5);
        snprintf(what + at, sizeof what - at, "cos_y");
        fails += compare(what, shard[0].cos_target, full.cos_target, N, 1e-6, 0);
        snprintf(what + at, sizeof what - at, "p_y");
        fails += compare(what, shard[P - 1].p_target, full.p_target, N, 1e-5, 1e-5);
        snprintf(what + at, sizeof what - at, "d emb");
        fails += compare(what, sdemb, demb, N * D, 1e-5, 1e-4);
        snprintf(what + at, sizeof what - at, "d weight (the K rows; undrawn rows 0)");
        fails += compare(what, sdweight, dweight, (size_t)K * D, 1e-5, 1e-4);
        int same_correct = 1;
        for (int i = 0; i < N; i++) same_correct &= shard[0].correct[i] == full.correct[i];
        snprintf(what + at, sizeof what - at, "correct");
        fails += check(what, same_correct);
        double mt, mn, sn = 0;
        comine_arcface_cos_stats(&full, pos, N, &mt, &mn);
        for (int i = 0; i < N; i++) sn += neg_cos[i] / (Ks - 1);
        snprintf(what + at, sizeof what - at, "mean negative cosine over the drawn classes");
        fails += check(what, fabs(sn / N - mn) <= 1e-6);
        for (int r = 0; r < P; r++) {
            comine_arcface_free(&shard[r]);
            free(rows[r]);
            free(drows[r]);
        }
        free(sdweight);
    }
    /* rows not drawn: no gradient */
    int untouched = 1;
    for (int c = 0, j = 0; c < K; c++) {
        if (j < Ks && pfc.classes[j] == c) {
            j++;
            continue;
        }
        for (int d = 0; d < D; d++) untouched &= dweight[(size_t)c * D + d] == 0.0f;
    }
    fails += check("the rows not drawn have no gradient", untouched);
    comine_arcface_free(&full);
    free(block);
    free(dblock);
    free(dweight);
    comine_pfc_free(&pfc);
    return fails;
}

int main(void)
{
    int fails = test_draw();
    comine_rng rng;
    comine_rng_seed(&rng, 11, COMINE_STREAM_SYNTH);
    float emb[N * D], weight[K * D], sample_weight[N];
    int labels[N], low_labels[N];
    uint8_t form[N];
    for (int i = 0; i < N * D; i++) emb[i] = comine_rng_normal(&rng);
    for (int i = 0; i < K * D; i++) weight[i] = 0.1f * comine_rng_normal(&rng);
    for (int i = 0; i < N; i++) {
        labels[i] = (int)comine_rng_below(&rng, K);
        if (i < 3) labels[i] = i * 21; /* a label on each shard of P = 3 */
        low_labels[i] = i % 5;         /* all on the first shard of P = 2, 3 */
        for (int d = 0; d < D; d++) emb[i * D + d] += 8.0f * weight[labels[i] * D + d] * (i % 2);
        form[i] = (uint8_t)(i % 3);
        sample_weight[i] = i == 4 ? 0.0f : 0.1f + 0.2f * (float)i;
    }
    for (int fb = 0; fb < 2; fb++)
        for (int fm = 0; fm < 4; fm++) { /* all plain, all margin, all mv, mixed */
            comine_arcface_cfg cfg;
            comine_arcface_cfg_default(&cfg);
            cfg.s = 16.0f;
            cfg.fallback = (comine_fallback)fb;
            uint8_t forms[N];
            for (int i = 0; i < N; i++) forms[i] = fm < 3 ? (uint8_t)fm : form[i];
            char name[64];
            snprintf(name, sizeof name, "R 0.4 fallback %d forms %s", fb,
                     fm == 0 ? "plain" : fm == 1 ? "margin" : fm == 2 ? "mv" : "mixed");
            fails += test_head(name, emb, weight, labels, forms, sample_weight, 0.4f, &cfg);
            if (fm == 3) {
                snprintf(name, sizeof name, "R 0.05 positives on one shard, fallback %d", fb);
                fails += test_head(name, emb, weight, low_labels, forms, sample_weight, 0.05f, &cfg);
            }
        }
    printf("%s\n", fails ? "FAIL" : "ok   the sampled sharded head equals one head of the same drawn classes");
    return fails ? 1 : 0;
}

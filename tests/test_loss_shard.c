/* test_loss_shard.c: the class-sharded ArcFace head (loss.h) against the full head.  P shards
 * (P = 1, 2, 3; uneven class ranges, as [r K / P, (r + 1) K / P)) are run in one process and
 * combined here as the ranks' all-reduces would (sum, max); compared with the full head:
 * per-sample losses, cos th_y, p_y, d emb (the shards' sum) and d weight (the shards' rows
 * side by side), for every form (plain, margin, mv; weight as sample weights, zeros
 * included), both fallbacks, and a label on every shard.  Tolerance atol + rtol |ref|. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/loss.h"
#include "fixture.h"

enum { N = 7, K = 23, D = 16 };

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

int main(void)
{
    const comine_backend *be = comine_backend_cpu();
    comine_rng rng;
    comine_rng_seed(&rng, 11, COMINE_STREAM_SYNTH);
    float emb[N * D], weight[K * D], sample_weight[N];
    int labels[N];
    uint8_t form[N];
    for (int i = 0; i < N * D; i++) emb[i] = comine_rng_normal(&rng);
    for (int i = 0; i < K * D; i++) weight[i] = 0.1f * comine_rng_normal(&rng);
    /* embeddings near some class rows, so that targets are large and mv's mask bites */
    for (int i = 0; i < N; i++) {
        labels[i] = (int)comine_rng_below(&rng, K);
        if (i < 3) labels[i] = i * 9; /* one label on each shard of P = 3 */
        for (int d = 0; d < D; d++) emb[i * D + d] += 8.0f * weight[labels[i] * D + d] * (i % 2);
        form[i] = (uint8_t)(i % 3);
        sample_weight[i] = i == 4 ? 0.0f : 0.1f + 0.2f * (float)i;
    }
    int fails = 0;
    for (int fb = 0; fb < 2; fb++)
        for (int fm = 0; fm < 4; fm++) { /* all plain, all margin, all mv, mixed */
            comine_arcface_cfg cfg;
            comine_arcface_cfg_default(&cfg);
            cfg.s = 16.0f;
            cfg.fallback = (comine_fallback)fb;
            uint8_t forms[N];
            for (int i = 0; i < N; i++) forms[i] = fm < 3 ? (uint8_t)fm : form[i];
            /* the full head */
            comine_arcface full;
            comine_arcface_init(&full, be, D, K, N);
            float loss[N], demb[N * D] = {0}, *dweight = comine_calloc(K * D, sizeof(float));
            comine_arcface_forward(&full, emb, weight, N);
            comine_arcface_loss(&full, loss, labels, forms, N, &cfg);
            comine_arcface_backward(&full, demb, dweight, emb, weight, labels, forms, sample_weight, N, &cfg);
            for (int P = 1; P <= 3; P++) {
                comine_arcface shard[3];
                float target_cos[N] = {0}, max_cos[N], part_cos[N], part_max[N];
                double zmax[N], neg_sum[N] = {0}, neg_cos[N] = {0}, part_z[N], part_s[N], part_c[N];
                float sloss[N], sdemb[N * D] = {0}, *sdweight = comine_calloc(K * D, sizeof(float));
                int c0[4];
                for (int r = 0; r <= P; r++) c0[r] = K * r / P;
                for (int r = 0; r < P; r++) {
                    comine_arcface_init(&shard[r], be, D, c0[r + 1] - c0[r], N);
                    comine_arcface_forward(&shard[r], emb, weight + (size_t)c0[r] * D, N);
                    comine_arcface_shard_target(&shard[r], part_cos, labels, c0[r], N);
                    for (int i = 0; i < N; i++) target_cos[i] += part_cos[i];
                }
                for (int r = 0; r < P; r++) {
                    comine_arcface_shard_max(&shard[r], part_z, part_max, target_cos, labels, forms, c0[r], N, &cfg);
                    for (int i = 0; i < N; i++) {
                        zmax[i] = r == 0 || part_z[i] > zmax[i] ? part_z[i] : zmax[i];
                        max_cos[i] = r == 0 || part_max[i] > max_cos[i] ? part_max[i] : max_cos[i];
                    }
                }
                for (int r = 0; r < P; r++) {
                    comine_arcface_shard_sum(&shard[r], part_s, part_c, zmax, target_cos, labels, forms, c0[r], N,
                                             &cfg);
                    for (int i = 0; i < N; i++) {
                        neg_sum[i] += part_s[i];
                        neg_cos[i] += part_c[i];
                    }
                }
                for (int r = 0; r < P; r++) {
                    comine_arcface_shard_loss(&shard[r], sloss, target_cos, zmax, neg_sum, max_cos, forms, N, &cfg);
                    comine_arcface_shard_backward(&shard[r], sdemb, sdweight + (size_t)c0[r] * D,
                                                  weight + (size_t)c0[r] * D, labels, forms, sample_weight, target_cos,
                                                  zmax, neg_sum, c0[r], N, &cfg);
                }
                char what[128];
                snprintf(what, sizeof what, "P=%d fallback %d forms %s: loss", P, fb,
                         fm == 0 ? "plain" : fm == 1 ? "margin" : fm == 2 ? "mv" : "mixed");
                fails += compare(what, sloss, loss, N, 1e-5, 1e-5);
                snprintf(what + strlen(what) - 4, 16, "cos_y");
                fails += compare(what, shard[0].cos_target, full.cos_target, N, 1e-6, 0);
                snprintf(what + strlen(what) - 5, 16, "p_y");
                fails += compare(what, shard[P - 1].p_target, full.p_target, N, 1e-5, 1e-5);
                snprintf(what + strlen(what) - 3, 16, "d emb");
                fails += compare(what, sdemb, demb, N * D, 1e-5, 1e-4);
                snprintf(what + strlen(what) - 5, 16, "d weight");
                fails += compare(what, sdweight, dweight, K * D, 1e-5, 1e-4);
                int same_correct = 1;
                for (int i = 0; i < N; i++) same_correct &= shard[0].correct[i] == full.correct[i];
                if (!same_correct) printf("FAIL P=%d: correct differs\n", P);
                fails += !same_correct;
                double mt, mn;
                comine_arcface_cos_stats(&full, labels, N, &mt, &mn);
                double sn = 0;
                for (int i = 0; i < N; i++) sn += neg_cos[i] / (K - 1);
                if (fabs(sn / N - mn) > 1e-6) {
                    printf("FAIL P=%d: mean negative cosine %.8f vs %.8f\n", P, sn / N, mn);
                    fails++;
                }
                for (int r = 0; r < P; r++) comine_arcface_free(&shard[r]);
                free(sdweight);
            }
            comine_arcface_free(&full);
            free(dweight);
        }
    printf("%s\n", fails ? "FAIL" : "ok   the sharded head equals the full head");
    return fails ? 1 : 0;
}

/* test_train_pfc_step.c: the training step with Partial FC (train/step.h,
 * comine_peers_create_sampled), one process.
 * - A step draws max(n_pos, floor(R K)) classes holding every label of the batch.
 * - Only drawn rows move: after a step the head rows (weights and momentum) of the classes not
 *   drawn are bit-identical to before; every drawn row has moved and has momentum.  A row drawn
 *   at one step and not at the next keeps that step's weights and momentum bit for bit (no
 *   momentum or weight decay applied to it).
 * - A skipped step (NaN loss) changes no head row.
 * - Rate 1 is the plain head: the peers of comine_peers_create_sampled(..., 1) and of
 *   comine_peers_create end two steps with the same bytes.
 * - A rate outside (0, 1] and R < 1 with sub-centres are refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/step.h"

enum { K = 200, B = 8, S = 32 };

static int failures = 0;

static void check(bool ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    failures += !ok;
}

/* Peer k's head weights and momentum (K rows each), copied. */
static float *head_of(const comine_peers *ps, int k)
{
    const comine_peer *p = &ps->peer[k];
    size_t kd = (size_t)K * p->head.D;
    float *h = malloc(2 * kd * sizeof(float));
    memcpy(h, p->head_weight, kd * sizeof(float));
    memcpy(h + kd, p->head_momentum, kd * sizeof(float));
    return h;
}

static bool row_same(const float *a, const float *b, int c, int D)
{
    size_t kd = (size_t)K * D;
    return !memcmp(a + (size_t)c * D, b + (size_t)c * D, D * sizeof(float)) &&
           !memcmp(a + kd + (size_t)c * D, b + kd + (size_t)c * D, D * sizeof(float));
}

static bool drawn(const comine_pfc *pfc, int c)
{
    for (int j = 0; j < pfc->count; j++)
        if (pfc->classes[j] == c) return true;
    return false;
}

int main(void)
{
    const comine_backend *be = comine_backend_cpu();
    comine_arch arch;
    comine_arch_default(&arch, "iresnet18");
    arch.width = 0.125f;
    arch.input = S;
    const int D = arch.emb_dim;
    size_t n_pix = (size_t)B * S * S * 3;
    float *images = malloc(n_pix * sizeof(float));
    int labels[B];
    comine_rng rng;
    comine_rng_seed(&rng, 5, COMINE_STREAM_SYNTH);
    for (size_t i = 0; i < n_pix; i++) images[i] = 2.0f * comine_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < B; i++) labels[i] = (int)comine_rng_below(&rng, K);
    comine_select_cfg sel = {.mode = COMINE_MODE_COMINING, .reweight = COMINE_REWEIGHT_MARGIN, .w = 1.0f};
    comine_arcface_cfg head;
    comine_arcface_cfg_default(&head);
    comine_step_input in = {.images = images, .labels = labels, .n = B, .drop_rate = 0.25f, .lr = 0.05f,
                            .momentum = 0.9f, .weight_decay = 5e-4f, .step = 1};
    comine_step_result res;

    comine_peers ps;
    COMINE_ASSERT(comine_peers_create_sampled(&ps, be, &arch, 2, K, 1, B, 3, 0.1f) == COMINE_OK);
    float *h0[2] = {head_of(&ps, 0), head_of(&ps, 1)};
    comine_train_step(&res, &ps, &in, &sel, &head);
    check(res.applied, "a sampled step is applied");
    bool all_labels = true;
    for (int i = 0; i < B; i++) all_labels &= drawn(&ps.pfc, labels[i]);
    check(ps.pfc.count == 20 && all_labels, "the step drew floor(0.1 K) = 20 classes, every label among them");
    int drawn1[K];
    for (int c = 0; c < K; c++) drawn1[c] = drawn(&ps.pfc, c);
    float *h1[2] = {head_of(&ps, 0), head_of(&ps, 1)};
    bool undrawn_same = true, drawn_moved = true;
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < K; c++) {
            if (!drawn1[c]) {
                undrawn_same &= row_same(h0[k], h1[k], c, D);
                continue;
            }
            const float *m = h1[k] + (size_t)K * D + (size_t)c * D;
            bool moved = memcmp(h0[k] + (size_t)c * D, h1[k] + (size_t)c * D, D * sizeof(float)) != 0, has_m = false;
            for (int d = 0; d < D; d++) has_m |= m[d] != 0.0f;
            drawn_moved &= moved && has_m;
        }
    check(undrawn_same, "step 1: the rows not drawn (weights and momentum) are bit-identical to before");
    check(drawn_moved, "step 1: every drawn row moved and has momentum");

    /* step 2 draws other classes: the rows of step 1 that it leaves out keep step 1's bytes */
    in.step = 2;
    comine_train_step(&res, &ps, &in, &sel, &head);
    float *h2[2] = {head_of(&ps, 0), head_of(&ps, 1)};
    int left_out = 0;
    bool kept = true, undrawn2 = true;
    for (int c = 0; c < K; c++) {
        if (drawn(&ps.pfc, c)) continue;
        for (int k = 0; k < 2; k++) undrawn2 &= row_same(h1[k], h2[k], c, D);
        if (drawn1[c]) {
            left_out++;
            for (int k = 0; k < 2; k++) kept &= row_same(h1[k], h2[k], c, D);
        }
    }
    char what[160];
    snprintf(what, sizeof what, "step 2: the %d rows drawn at step 1 and not at step 2 keep their weights and "
                                "momentum bit for bit", left_out);
    check(res.applied && left_out > 0 && kept && undrawn2, what);

    /* a skipped step changes no head row */
    in.step = 3;
    in.poison_loss = true;
    comine_train_step(&res, &ps, &in, &sel, &head);
    in.poison_loss = false;
    float *h3[2] = {head_of(&ps, 0), head_of(&ps, 1)};
    bool skipped_same = true;
    for (int k = 0; k < 2; k++) skipped_same &= !memcmp(h2[k], h3[k], 2 * (size_t)K * D * sizeof(float));
    check(!res.applied && skipped_same, "a skipped sampled step (NaN loss) leaves the heads bit-identical");
    for (int k = 0; k < 2; k++) {
        free(h0[k]);
        free(h1[k]);
        free(h2[k]);
        free(h3[k]);
    }
    comine_peers_free(&ps);

    /* rate 1: the plain head, the same bytes */
    comine_peers full, plain;
    COMINE_ASSERT(comine_peers_create_sampled(&full, be, &arch, 2, K, 1, B, 3, 1.0f) == COMINE_OK);
    COMINE_ASSERT(comine_peers_create(&plain, be, &arch, 2, K, B, 3) == COMINE_OK);
    check(!full.sampled && full.peer[0].head_grad != NULL, "rate 1 does not sample");
    for (int s = 1; s <= 2; s++) {
        in.step = s;
        comine_train_step(&res, &full, &in, &sel, &head);
        comine_train_step(&res, &plain, &in, &sel, &head);
    }
    bool same = true;
    for (int k = 0; k < 2; k++) {
        const comine_peer *a = &full.peer[k], *b = &plain.peer[k];
        size_t np = comine_model_num_params(a->model), kd = (size_t)K * D;
        same &= !memcmp(comine_model_params(a->model), comine_model_params(b->model), np * sizeof(float)) &&
                !memcmp(a->head_weight, b->head_weight, kd * sizeof(float)) &&
                !memcmp(a->head_momentum, b->head_momentum, kd * sizeof(float));
    }
    check(same, "rate 1: after two steps the same parameters, head and momentum bytes as comine_peers_create");
    comine_peers_free(&full);
    comine_peers_free(&plain);

    comine_peers bad;
    check(comine_peers_create_sampled(&bad, be, &arch, 2, K, 1, B, 3, 0.0f) == COMINE_ERR_ARG &&
              strstr(comine_last_error(), "(0, 1]") != NULL,
          "rate 0 refused");
    check(comine_peers_create_sampled(&bad, be, &arch, 2, K, 1, B, 3, 1.25f) == COMINE_ERR_ARG, "rate 1.25 refused");
    check(comine_peers_create_sampled(&bad, be, &arch, 2, K, 3, B, 3, 0.5f) == COMINE_ERR_ARG &&
              strstr(comine_last_error(), "--subcenters 3") != NULL,
          "rate 0.5 with 3 sub-centres refused");
    printf("     %s\n", comine_last_error());
    free(images);
    printf("%s\n", failures ? "FAIL" : "all checks passed");
    return failures ? 1 : 0;
}

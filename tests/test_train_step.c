/* test_train_step.c: the training step (train/step.h) and the trainer's library defaults.
 * - A skipped step changes nothing: after a step whose loss is poisoned, and after one whose
 *   images hold a NaN (the forward has already written NaN running statistics), every
 *   parameter, batch-norm buffer, momentum and head weight of both peers is bit-identical to
 *   before, and the step says it was not applied.
 * - An applied step moves the parameters and the running statistics, its sets partition
 *   the batch and its objectives are finite; two peer sets built alike step alike.
 * - Mode arcface with a mask of left-out samples (--subcenter-drop) steps bit for bit as mode
 *   oracle with the mask as its truth, and not as the step without the mask.
 * - comine_train_cfg_default gives a working schedule: a run through the library API with
 *   only data, out and a small network set records, every epoch, the cosine learning rate of
 *   a schedule over the whole run (not the floor a zero length would give). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comine/eval.h"
#include "comine/synth.h"
#include "comine/trainer.h"
#include "train/step.h"

enum { K = 10, B = 8, S = 32 };

static int failures = 0;

static void check(bool ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    failures += !ok;
}

/* Every mutable float of the peers, concatenated: parameters, buffers, momentum, head, head momentum. */
static float *snapshot(comine_peers *ps, size_t *n_out)
{
    size_t n = 0;
    for (int k = 0; k < ps->n; k++) {
        comine_peer *p = &ps->peer[k];
        n += 2 * comine_model_num_params(p->model) + comine_model_num_buffers(p->model) +
             2 * (size_t)p->head.K * p->head.D;
    }
    float *s = malloc(n * sizeof(float)), *o = s;
    for (int k = 0; k < ps->n; k++) {
        comine_peer *p = &ps->peer[k];
        size_t np = comine_model_num_params(p->model), nb = comine_model_num_buffers(p->model);
        size_t kd = (size_t)p->head.K * p->head.D;
        comine_backend_download(ps->be, o, comine_model_params(p->model), np), o += np;
        comine_backend_download(ps->be, o, comine_model_buffers(p->model), nb), o += nb;
        comine_backend_download(ps->be, o, p->momentum, np), o += np;
        comine_backend_download(ps->be, o, p->head_weight, kd), o += kd;
        comine_backend_download(ps->be, o, p->head_momentum, kd), o += kd;
    }
    *n_out = n;
    return s;
}

static float *buffers_of_a(comine_peers *ps)
{
    comine_peer *p = &ps->peer[0];
    size_t nb = comine_model_num_buffers(p->model);
    float *b = malloc(nb * sizeof(float));
    comine_backend_download(ps->be, b, comine_model_buffers(p->model), nb);
    return b;
}

static void test_step(void)
{
    const comine_backend *be = comine_backend_cpu();
    comine_arch arch;
    comine_arch_default(&arch, "iresnet18");
    arch.width = 0.125f;
    arch.input = S;
    comine_peers ps, twin;
    COMINE_ASSERT(comine_peers_create(&ps, be, &arch, 2, K, B, 3) == COMINE_OK);
    COMINE_ASSERT(comine_peers_create(&twin, be, &arch, 2, K, B, 3) == COMINE_OK);

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
                            .momentum = 0.9f, .weight_decay = 5e-4f};
    comine_step_result res;

    /* one applied step first, so that momentum is not all zero */
    comine_train_step(&res, &ps, &in, &sel, &head);
    check(res.applied, "a finite step is applied");
    size_t n;
    float *before = snapshot(&ps, &n);

    /* a poisoned loss: the forward ran (running statistics moved), the update must not */
    in.poison_loss = true;
    comine_train_step(&res, &ps, &in, &sel, &head);
    in.poison_loss = false;
    size_t n2;
    float *after = snapshot(&ps, &n2);
    check(!res.applied, "a step with a NaN loss is not applied");
    check(n == n2 && memcmp(before, after, n * sizeof(float)) == 0,
          "after a skipped step (NaN loss) parameters, BN buffers, momentum and head are bit-identical");
    free(after);

    /* a NaN pixel: the forward writes NaN running statistics, which must be undone */
    float saved = images[7];
    images[7] = NAN;
    comine_train_step(&res, &ps, &in, &sel, &head);
    images[7] = saved;
    after = snapshot(&ps, &n2);
    check(!res.applied, "a step with a NaN image is not applied");
    check(memcmp(before, after, n * sizeof(float)) == 0,
          "after a skipped step (NaN image) parameters, BN buffers, momentum and head are bit-identical");
    free(after);

    /* an applied step moves the network and its running statistics */
    size_t nb = comine_model_num_buffers(ps.peer[0].model);
    float *buffers_a = buffers_of_a(&ps);
    comine_train_step(&res, &ps, &in, &sel, &head);
    float *buffers_a_after = buffers_of_a(&ps);
    after = snapshot(&ps, &n2);
    check(res.applied, "the next finite step is applied");
    check(memcmp(before, after, n * sizeof(float)) != 0, "an applied step changes the state");
    check(memcmp(buffers_a, buffers_a_after, nb * sizeof(float)) != 0, "an applied step updates the BN running statistics");
    const comine_sets *s = &res.sets;
    check(s->n == B && s->n_clean + s->n_exchanged_a + s->n_exchanged_b + s->n_noisy == B &&
              s->n_clean + s->n_exchanged_b == s->keep && s->n_clean + s->n_exchanged_a == s->keep,
          "the sets partition the batch: |C| + |XA| + |XB| + |N| = n, |GA| = |GB| = k");
    check(isfinite(res.objective[0]) && isfinite(res.objective[1]), "the objectives are finite");
    int votes = 0;
    for (int i = 0; i < B; i++) votes += ps.noisy[i];
    check(votes == s->n_noisy, "the noise votes are the samples of N");
    free(after);
    free(buffers_a);
    free(buffers_a_after);

    /* the same steps on a twin (same seed): the same state, bit for bit */
    comine_train_step(&res, &twin, &in, &sel, &head);
    comine_train_step(&res, &twin, &in, &sel, &head);
    float *a = snapshot(&ps, &n), *b = snapshot(&twin, &n2);
    check(n == n2 && memcmp(a, b, n * sizeof(float)) == 0,
          "skipped steps leave no trace: a twin that never saw them ends bit-identical");
    free(a);
    free(b);
    free(before);
    free(images);
    comine_peers_free(&ps);
    comine_peers_free(&twin);
}

/* One arcface peer set stepped twice on the batch with `mask` as excluded (or as the oracle's
 * truth when oracle); returns the snapshot. */
static float *two_steps(const float *images, const int *labels, const uint8_t *mask, bool oracle, size_t *n)
{
    comine_arch arch;
    comine_arch_default(&arch, "iresnet18");
    arch.width = 0.125f;
    arch.input = S;
    comine_peers ps;
    COMINE_ASSERT(comine_peers_create(&ps, comine_backend_cpu(), &arch, 1, K, B, 4) == COMINE_OK);
    comine_select_cfg sel = {.mode = oracle ? COMINE_MODE_ORACLE : COMINE_MODE_ARCFACE};
    comine_arcface_cfg head;
    comine_arcface_cfg_default(&head);
    comine_step_input in = {.images = images, .labels = labels, .n = B, .lr = 0.05f, .momentum = 0.9f,
                            .weight_decay = 5e-4f, .truth_noisy = oracle ? mask : NULL,
                            .excluded = oracle ? NULL : mask};
    comine_step_result res;
    for (int i = 0; i < 2; i++) comine_train_step(&res, &ps, &in, &sel, &head);
    float *s = snapshot(&ps, n);
    comine_peers_free(&ps);
    return s;
}

static void test_excluded(void)
{
    size_t n_pix = (size_t)B * S * S * 3;
    float *images = malloc(n_pix * sizeof(float));
    int labels[B];
    comine_rng rng;
    comine_rng_seed(&rng, 6, COMINE_STREAM_SYNTH);
    for (size_t i = 0; i < n_pix; i++) images[i] = 2.0f * comine_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < B; i++) labels[i] = (int)comine_rng_below(&rng, K);
    const uint8_t mask[B] = {0, 1, 0, 0, 1, 1, 0, 0};
    size_t n1, n2, n3;
    float *masked = two_steps(images, labels, mask, false, &n1), *oracle = two_steps(images, labels, mask, true, &n2);
    float *plain = two_steps(images, labels, NULL, false, &n3);
    check(n1 == n2 && memcmp(masked, oracle, n1 * sizeof(float)) == 0,
          "arcface with left-out samples steps bit for bit as oracle with them as its truth");
    check(n1 == n3 && memcmp(masked, plain, n1 * sizeof(float)) != 0, "... and not as arcface without the mask");
    free(masked);
    free(oracle);
    free(plain);
    free(images);
}

static void test_library_defaults(void)
{
    char dir[] = "/tmp/comine_test_step_XXXXXX";
    COMINE_ASSERT(mkdtemp(dir) != NULL);
    char *data = comine_path_join(dir, "faces"), *out = comine_path_join(dir, "run");
    comine_synth_opts so = {.ids = 6, .per_id = 8, .size = S, .seed = 2, .format = COMINE_SYNTH_PNG,
                            .jpeg_quality = 90};
    COMINE_ASSERT(comine_synth_write(data, &so) == COMINE_OK);

    comine_train_cfg cfg;
    comine_train_cfg_default(&cfg);
    cfg.data = data;
    cfg.out = out;
    cfg.arch.width = 0.125f;
    cfg.arch.input = S;
    cfg.epochs = 3;
    cfg.batch = 8;
    cfg.threads = 2;
    cfg.quiet = true;
    comine_train_summary sum;
    comine_status st = comine_train(&cfg, &sum);
    check(st == COMINE_OK, "a run through the library with the default configuration finishes");
    if (st != COMINE_OK) fprintf(stderr, "  %s\n", comine_last_error());

    char *metrics = comine_path_join(out, COMINE_RUN_METRICS);
    comine_jsonl *j = NULL;
    if (st == COMINE_OK && comine_jsonl_load(&j, metrics) == COMINE_OK) {
        /* 48 samples in batches of 8: 6 steps; an epoch's lr is its last step's */
        comine_lr_schedule whole = cfg.lr;
        whole.total_epochs = cfg.epochs;
        bool all = j->n_rows == cfg.epochs;
        for (int e = 0; all && e < j->n_rows; e++) {
            double want = comine_lr_at(&whole, e + 5.0 / 6.0), got = comine_jsonl_get(j, e, "lr");
            printf("  epoch %d: lr %.6g (cosine over %d epochs: %.6g)\n", e, got, cfg.epochs, want);
            all = fabs(got - want) <= 1e-5 * want && got > 0;
        }
        check(all, "every epoch's lr follows the cosine schedule over the run's epochs");
        comine_jsonl_free(j);
    } else {
        check(false, "metrics.jsonl of the library run reads back");
    }
    free(metrics);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    free(data);
    free(out);
}

int main(void)
{
    test_step();
    test_excluded();
    test_library_defaults();
    printf("test_train_step: %d failure%s\n", failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}

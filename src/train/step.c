/* step.c: the training step of step.h, read top to bottom as METHOD.md states it. */
#include "train/step.h"

#include "comine/dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

comine_status comine_peers_create(comine_peers *ps, const comine_backend *be, const comine_arch *arch, int n_peers,
                                  int K, int B, uint64_t seed)
{
    return comine_peers_create_subcenters(ps, be, arch, n_peers, K, 1, B, seed);
}

comine_status comine_peers_create_subcenters(comine_peers *ps, const comine_backend *be, const comine_arch *arch,
                                             int n_peers, int K, int S, int B, uint64_t seed)
{
    return comine_peers_create_sampled(ps, be, arch, n_peers, K, S, B, seed, 1.0f);
}

comine_status comine_peers_create_sampled(comine_peers *ps, const comine_backend *be, const comine_arch *arch,
                                          int n_peers, int K, int S, int B, uint64_t seed, float sample_rate)
{
    COMINE_ASSERT(n_peers == 1 || n_peers == 2);
    COMINE_ASSERT(B >= 1);
    if (S < 1) S = 1;
    memset(ps, 0, sizeof *ps);
    if (!(sample_rate > 0.0f && sample_rate <= 1.0f))
        return comine_fail(COMINE_ERR_ARG, "--sample-rate %g: must be in (0, 1] (the fraction of the classes in "
                                           "each step's softmax; 1 = every class)", (double)sample_rate);
    const bool sampled = sample_rate < 1.0f;
    if (sampled && S > 1)
        return comine_fail(COMINE_ERR_ARG, "--sample-rate %g: not with --subcenters %d (Partial FC samples plain "
                                           "ArcFace heads only)", (double)sample_rate, S);
    if (sampled && be != comine_backend_cpu())
        return comine_fail(COMINE_ERR_ARG, "--sample-rate %g: the sampled head runs on the cpu backend only (this "
                                           "run: %s)", (double)sample_rate, comine_backend_name(be));
    if (sampled && K < comine_dist_size())
        return comine_fail(COMINE_ERR_ARG, "--sample-rate %g: %d classes over %d ranks (Partial FC needs a class "
                                           "per rank at least)", (double)sample_rate, K, comine_dist_size());
    if (S > 1 && comine_dist_size() > 1)
        return comine_fail(COMINE_ERR_ARG, "--subcenters %d: sub-center ArcFace runs in one process only (this run "
                                           "has %d ranks; the class-sharded head has one centre per class)",
                           S, comine_dist_size());
    ps->be = be;
    ps->max_batch = B;
    /* with P ranks, rank r holds classes [r K / P, (r + 1) K / P) of each head (loss.h's sharded
     * head); a head of fewer classes than ranks stays whole on every rank */
    int P = comine_dist_size(), class_lo = 0, class_hi = K;
    if (P > 1 && K >= P) comine_dist_slice(K, comine_dist_rank(), P, &class_lo, &class_hi);
    for (int k = 0; k < n_peers; k++) {
        comine_status st =
            comine_peer_create(&ps->peer[k], be, arch, K, S, B, seed, k, class_lo, class_hi - class_lo, sampled);
        if (st != COMINE_OK) {
            comine_peers_free(ps);
            return st;
        }
        ps->n = k + 1;
    }
    /* the peers run backward one after the other: one gradient scratch serves both */
    if (n_peers == 2) comine_model_share_grad_scratch(ps->peer[1].model, ps->peer[0].model);
    ps->noisy = comine_calloc((size_t)B, 1);
    ps->image_floats = (size_t)arch->input * arch->input * 3;
    ps->images = comine_backend_alloc(be, (size_t)B * ps->image_floats);
    ps->select_scratch = comine_malloc(comine_select_scratch_bytes(B));
    ps->rank = comine_dist_rank();
    ps->ranks = comine_dist_size();
    ps->bn_groups = 1;
    for (int k = 0; k < n_peers; k++) {
        ps->loss_all[k] = comine_calloc((size_t)B, sizeof(float));
        ps->cos_target_all[k] = comine_calloc((size_t)B, sizeof(float));
        ps->correct_all[k] = comine_calloc((size_t)B, 1);
        ps->form_all[k] = comine_calloc((size_t)B, 1);
        ps->weight_all[k] = comine_calloc((size_t)B, sizeof(float));
    }
    if (sampled) {
        COMINE_ASSERT(comine_pfc_init(&ps->pfc, K, sample_rate, seed, B) == COMINE_OK);
        ps->sampled = true;
    }
    return COMINE_OK;
}

void comine_peers_free(comine_peers *ps)
{
    if (!ps->be) return;
    for (int k = 1; k >= 0; k--) /* B borrows A's gradient scratch */
        if (ps->peer[k].model) comine_peer_free(ps->be, &ps->peer[k]);
    free(ps->noisy);
    comine_backend_free(ps->be, ps->images);
    free(ps->select_scratch);
    free(ps->bn_ghost);
    for (int k = 0; k < 2; k++) {
        free(ps->loss_all[k]);
        free(ps->cos_target_all[k]);
        free(ps->correct_all[k]);
        free(ps->form_all[k]);
        free(ps->weight_all[k]);
    }
    if (ps->sampled) comine_pfc_free(&ps->pfc);
    memset(ps, 0, sizeof *ps);
}

/* The global batch's per-sample figures of peer k, gathered from the ranks' slices. */
static void gather_figures(comine_peers *ps, int k, const int *counts)
{
    comine_peer *p = &ps->peer[k];
    comine_dist_allgatherv(ps->loss_all[k], p->loss, counts, sizeof(float));
    comine_dist_allgatherv(ps->cos_target_all[k], p->head.cos_target, counts, sizeof(float));
    comine_dist_allgatherv(ps->correct_all[k], p->head.correct, counts, 1);
}

/* Mean cos th_y and negative cosine of peer k over the global batch. */
static void cos_means(comine_step_result *res, comine_peers *ps, int k, const int *labels, int n_local, int n)
{
    double target = 0, negative = 0;
    if (n_local > 0) comine_arcface_cos_stats(&ps->peer[k].head, labels, n_local, &target, &negative);
    if (ps->ranks == 1) {
        res->cos_target[k] = target;
        res->cos_negative[k] = negative;
        return;
    }
    double sums[2] = {target * n_local, negative * n_local};
    comine_dist_allreduce_sum_f64(sums, 2);
    res->cos_target[k] = sums[0] / n;
    res->cos_negative[k] = sums[1] / n;
}

/* Rank r's rows [lo, hi) of the global batch: the ranks' counts in->rank_rows where the
 * loader cut the batch itself, else the even split. */
static void rank_slice(const comine_step_input *in, int r, int P, int *lo, int *hi)
{
    if (!in->rank_rows) {
        comine_dist_slice(in->n, r, P, lo, hi);
        return;
    }
    *lo = 0;
    for (int q = 0; q < r; q++) *lo += in->rank_rows[q];
    *hi = *lo + in->rank_rows[r];
}

/* The images of the rows [lo, ...) of this rank (in->images holds only them with rank_rows). */
static const float *rank_images(const comine_peers *ps, const comine_step_input *in, int lo)
{
    return in->images + (in->rank_rows ? 0 : (size_t)lo * ps->image_floats);
}

void comine_peers_set_bn_groups(comine_peers *ps, int G)
{
    COMINE_ASSERT(G >= 1 && ps->ranks == 1);
    ps->bn_groups = G;
    free(ps->bn_ghost);
    ps->bn_ghost = G > 1 ? comine_calloc(2 * comine_model_num_buffers(ps->peer[0].model) + 1, sizeof(float)) : NULL;
}

/* The training forward of peer p on n images: embeddings, cosines, plain losses (p->loss). */
static void forward_slice(comine_peer *p, const float *images, const int *labels, int n, const comine_arcface_cfg *head)
{
    comine_model_forward(p->model, p->emb, images, n, true, &p->dropout_rng);
    comine_arcface_forward(&p->head, p->emb, p->head_weight, n);
    comine_arcface_loss(&p->head, p->loss, labels, NULL, n, head);
}

static void select_and_slice_plans(comine_step_result *res, comine_peers *ps, const comine_step_input *in,
                                   const comine_select_cfg *select);

/* The step with ghost batch norm (comine_peers_set_bn_groups): pass 1 forwards every slice
 * from the same running statistics and keeps the mean of their updates; after the selection,
 * pass 2 forwards each slice again (the same batch statistics, so the same activations) and
 * accumulates its gradients, as the ranks' sum would. */
static void train_step_ghost(comine_step_result *res, comine_peers *ps, const comine_step_input *in,
                             const comine_select_cfg *select, const comine_arcface_cfg *head)
{
    const int n = in->n, G = ps->bn_groups;
    const size_t nb = comine_model_num_buffers(ps->peer[0].model);
    for (int k = 0; k < ps->n; k++) {
        comine_peer *p = &ps->peer[k];
        float *buf = comine_model_buffers(p->model), *mean = ps->bn_ghost + (size_t)k * nb;
        comine_backend_copy(ps->be, p->bn_backup, buf, nb);
        memset(mean, 0, nb * sizeof(float));
        double sums[2] = {0, 0};
        for (int g = 0; g < G; g++) {
            int lo, hi;
            comine_dist_slice(n, g, G, &lo, &hi);
            memcpy(buf, p->bn_backup, nb * sizeof(float));
            if (hi > lo) {
                forward_slice(p, in->images + (size_t)lo * ps->image_floats, in->labels + lo, hi - lo, head);
                memcpy(ps->loss_all[k] + lo, p->loss, (size_t)(hi - lo) * sizeof(float));
                memcpy(ps->cos_target_all[k] + lo, p->head.cos_target, (size_t)(hi - lo) * sizeof(float));
                memcpy(ps->correct_all[k] + lo, p->head.correct, (size_t)(hi - lo));
                double target, negative;
                comine_arcface_cos_stats(&p->head, in->labels + lo, hi - lo, &target, &negative);
                sums[0] += target * (hi - lo);
                sums[1] += negative * (hi - lo);
            }
            for (size_t i = 0; i < nb; i++) mean[i] += buf[i];
        }
        for (size_t i = 0; i < nb; i++) mean[i] /= (float)G;
        res->cos_target[k] = sums[0] / n;
        res->cos_negative[k] = sums[1] / n;
    }
    select_and_slice_plans(res, ps, in, select);
    bool finite = true;
    for (int k = 0; k < ps->n; k++) {
        comine_peer *p = &ps->peer[k];
        float *buf = comine_model_buffers(p->model);
        comine_model_zero_grad(p->model);
        comine_backend_zero(ps->be, p->head_grad, comine_peer_head_floats(p));
        double objective = 0;
        for (int g = 0; g < G; g++) {
            int lo, hi;
            comine_dist_slice(n, g, G, &lo, &hi);
            if (hi == lo) continue;
            const int *labels = in->labels + lo;
            memcpy(p->form, ps->form_all[k] + lo, (size_t)(hi - lo));
            memcpy(p->weight, ps->weight_all[k] + lo, (size_t)(hi - lo) * sizeof(float));
            forward_slice(p, in->images + (size_t)lo * ps->image_floats, labels, hi - lo, head);
            objective += comine_peer_objective(p, labels, hi - lo, head);
            comine_backend_zero(ps->be, p->demb, (size_t)(hi - lo) * p->head.D);
            comine_arcface_backward(&p->head, p->demb, p->head_grad, p->emb, p->head_weight, labels, p->form,
                                    p->weight, hi - lo, head);
            comine_model_backward(p->model, p->demb, hi - lo);
        }
        memcpy(buf, ps->bn_ghost + (size_t)k * nb, nb * sizeof(float));
        res->objective[k] = in->poison_loss ? NAN : objective;
        finite = finite && isfinite(res->objective[k]) && comine_peer_grads_finite(p, ps->be);
    }
    if (!finite) {
        for (int k = 0; k < ps->n; k++) comine_peer_restore_bn(&ps->peer[k]);
        res->applied = false;
        return;
    }
    for (int k = 0; k < ps->n; k++) comine_peer_update(&ps->peer[k], ps->be, in->lr, in->momentum, in->weight_decay);
    res->applied = true;
}

/* comine_select on the whole batch (the same on every rank); each rank's slice of the plans
 * goes to its peers' form and weight arrays (the ghost step copies its slices itself). */
static void select_and_slice_plans(comine_step_result *res, comine_peers *ps, const comine_step_input *in,
                                   const comine_select_cfg *select)
{
    const bool two = ps->n == 2;
    comine_selection sel = {.plan_a = {ps->form_all[0], ps->weight_all[0]}, .noisy = ps->noisy};
    if (two) sel.plan_b = (comine_peer_plan){ps->form_all[1], ps->weight_all[1]};
    comine_select_cfg cfg = *select;
    const uint8_t *flags = in->truth_noisy;
    if (in->excluded && cfg.mode == COMINE_MODE_ARCFACE) { /* the oracle's selection, on the left-out samples */
        cfg.mode = COMINE_MODE_ORACLE;
        flags = in->excluded;
    }
    comine_select(&sel, ps->loss_all[0], two ? ps->loss_all[1] : NULL, flags, in->n, in->drop_rate, &cfg,
                  ps->select_scratch);
    res->sets = sel.sets;
    int lo, hi;
    rank_slice(in, ps->rank, ps->ranks, &lo, &hi);
    for (int k = 0; k < ps->n; k++) {
        memcpy(ps->peer[k].form, ps->form_all[k] + lo, (size_t)(hi - lo));
        memcpy(ps->peer[k].weight, ps->weight_all[k] + lo, (size_t)(hi - lo) * sizeof(float));
    }
}

/* The rows' statistics of peer p's sharded head over the ranks, under the forms `form`
 * (NULL: plain ArcFace): cos th_y, each row's largest logit and cosine, the sums of the
 * negatives' exponentials and cosines.  The shard's first class is c0 (Partial FC: labels and
 * c0 are positions in the step's draw). */
static void sharded_rows(comine_peer *p, const int *labels, const uint8_t *form, int n, int c0,
                         const comine_arcface_cfg *head)
{
    comine_arcface_shard_target(&p->head, p->target_cos, labels, c0, n);
    comine_dist_allreduce_sum_f32(p->target_cos, (size_t)n);
    comine_arcface_shard_max(&p->head, p->zmax, p->max_cos, p->target_cos, labels, form, c0, n, head);
    comine_dist_allreduce_max_f64(p->zmax, (size_t)n);
    comine_dist_allreduce_max_f32(p->max_cos, (size_t)n);
    comine_arcface_shard_sum(&p->head, p->neg_sum, p->neg_cos, p->zmax, p->target_cos, labels, form, c0, n, head);
    comine_dist_allreduce_sum_f64(p->neg_sum, (size_t)n);
    comine_dist_allreduce_sum_f64(p->neg_cos, (size_t)n);
}

/* The end of a step: a non-finite one changes nothing (the forward's running statistics are
 * undone); else SGD on backbone and head, and every rank's running statistics become their mean. */
static void finish_step(comine_step_result *res, comine_peers *ps, const comine_step_input *in, bool finite,
                        int n_local)
{
    if (!finite) {
        if (n_local > 0)
            for (int k = 0; k < ps->n; k++) comine_peer_restore_bn(&ps->peer[k]);
        res->applied = false;
        return;
    }
    for (int k = 0; k < ps->n; k++) {
        comine_peer_update(&ps->peer[k], ps->be, in->lr, in->momentum, in->weight_decay);
        comine_peer_average_bn(&ps->peer[k]);
    }
    res->applied = true;
}

/* The backbone forward of peer k in the sharded step: the rank's slice, the embeddings of the
 * whole batch all-gathered into emb_all.  Ghost batch norm (one process): each of the G slices
 * from the same running statistics, their mean kept in bn_ghost. */
static void backbone_forward(comine_peers *ps, int k, const comine_step_input *in, int lo, int n_local,
                             const int *row_counts)
{
    comine_peer *p = &ps->peer[k];
    const int D = p->head.D, G = ps->bn_groups;
    float *buf = comine_model_buffers(p->model);
    const size_t nb = comine_model_num_buffers(p->model);
    if (n_local > 0) comine_backend_copy(ps->be, p->bn_backup, buf, nb);
    if (G > 1) {
        float *mean = ps->bn_ghost + (size_t)k * nb;
        memset(mean, 0, nb * sizeof(float));
        for (int g = 0; g < G; g++) {
            int glo, ghi;
            comine_dist_slice(in->n, g, G, &glo, &ghi);
            memcpy(buf, p->bn_backup, nb * sizeof(float));
            if (ghi > glo)
                comine_model_forward(p->model, p->emb_all + (size_t)glo * D, in->images + (size_t)glo * ps->image_floats,
                                     ghi - glo, true, &p->dropout_rng);
            for (size_t i = 0; i < nb; i++) mean[i] += buf[i];
        }
        for (size_t i = 0; i < nb; i++) mean[i] /= (float)G;
        return;
    }
    if (n_local > 0)
        comine_model_forward(p->model, p->emb, rank_images(ps, in, lo), n_local, true, &p->dropout_rng);
    comine_dist_allgatherv(p->emb_all, p->emb, row_counts, sizeof(float));
}

/* The backbone backward of peer p from demb_all: the rank's slice; ghost batch norm: each
 * slice forwarded again (the same batch statistics) and back-propagated, gradients summed. */
static void backbone_backward(comine_peers *ps, comine_peer *p, const comine_step_input *in, int lo, int n_local)
{
    const int D = p->head.D, G = ps->bn_groups;
    if (G == 1) {
        if (n_local > 0) comine_peer_model_backward(p, p->demb_all + (size_t)lo * D, n_local);
        return;
    }
    for (int g = 0; g < G; g++) {
        int glo, ghi;
        comine_dist_slice(in->n, g, G, &glo, &ghi);
        if (ghi == glo) continue;
        comine_model_forward(p->model, p->emb, in->images + (size_t)glo * ps->image_floats, ghi - glo, true,
                             &p->dropout_rng);
        comine_model_backward(p->model, p->demb_all + (size_t)glo * D, ghi - glo);
    }
}

/* The step with the class-sharded head (P > 1, or Partial FC with any P): the backbone runs on
 * the rank's slice, the head on the all-gathered embeddings of the whole batch, each rank its
 * classes (Partial FC: its classes of the step's draw, gathered into the block); the per-sample
 * losses come out the same on every rank (no gather), the embedding gradients are summed over
 * the ranks and each rank back-propagates its rows. */
static void train_step_sharded(comine_step_result *res, comine_peers *ps, const comine_step_input *in,
                               const comine_select_cfg *select, const comine_arcface_cfg *head)
{
    const int n = in->n, P = ps->ranks, D = ps->peer[0].head.D;
    int lo, hi, row_counts[P];
    for (int r = 0; r < P; r++) {
        rank_slice(in, r, P, &lo, &hi);
        row_counts[r] = (hi - lo) * D;
    }
    rank_slice(in, ps->rank, P, &lo, &hi);
    const int n_local = hi - lo;
    /* the head's classes this step: the shard's, or its part of the draw (labels as positions) */
    const int *labels = in->labels;
    int c0 = ps->peer[0].class_lo, n_classes = ps->peer[0].classes;
    if (ps->sampled) {
        const comine_peer *p0 = &ps->peer[0];
        int pos_hi;
        comine_pfc_draw(&ps->pfc, in->labels, n, (uint64_t)in->step);
        comine_pfc_range(&ps->pfc, p0->class_lo, p0->class_lo + p0->shard_classes, &c0, &pos_hi);
        for (int k = 0; k < ps->n; k++) comine_peer_sample(&ps->peer[k], ps->pfc.classes + c0, pos_hi - c0);
        labels = ps->pfc.labels;
        n_classes = ps->pfc.count;
    }
    for (int k = 0; k < ps->n; k++) {
        comine_peer *p = &ps->peer[k];
        backbone_forward(ps, k, in, lo, n_local, row_counts);
        comine_arcface_forward(&p->head, p->emb_all, ps->sampled ? p->block_weight : p->head_weight, n);
        sharded_rows(p, labels, NULL, n, c0, head);
        comine_arcface_shard_loss(&p->head, ps->loss_all[k], p->target_cos, p->zmax, p->neg_sum, p->max_cos, NULL, n,
                                  head);
        memcpy(ps->cos_target_all[k], p->target_cos, (size_t)n * sizeof(float));
        memcpy(ps->correct_all[k], p->head.correct, (size_t)n);
        double target = 0, negative = 0;
        for (int i = 0; i < n; i++) {
            target += p->target_cos[i];
            if (n_classes > 1) negative += p->neg_cos[i] / (n_classes - 1);
        }
        res->cos_target[k] = target / n;
        res->cos_negative[k] = negative / n;
    }
    select_and_slice_plans(res, ps, in, select);
    bool finite = true;
    for (int k = 0; k < ps->n; k++) {
        comine_peer *p = &ps->peer[k];
        sharded_rows(p, labels, ps->form_all[k], n, c0, head);
        comine_arcface_shard_loss(&p->head, p->train_loss, p->target_cos, p->zmax, p->neg_sum, p->max_cos,
                                  ps->form_all[k], n, head);
        double objective = 0;
        for (int i = 0; i < n; i++)
            if (ps->weight_all[k][i] != 0.0f) objective += (double)ps->weight_all[k][i] * p->train_loss[i];
        res->objective[k] = in->poison_loss ? NAN : objective;
        finite = finite && isfinite(res->objective[k]);
    }
    for (int k = 0; k < ps->n && finite; k++) {
        comine_peer *p = &ps->peer[k];
        float *dweight = ps->sampled ? p->block_grad : p->head_grad;
        comine_model_zero_grad(p->model);
        comine_backend_zero(ps->be, dweight, (size_t)p->head.K * D);
        comine_backend_zero(ps->be, p->demb_all, (size_t)n * D);
        comine_arcface_shard_backward(&p->head, p->demb_all, dweight, ps->sampled ? p->block_weight : p->head_weight,
                                      labels, ps->form_all[k], ps->weight_all[k], p->target_cos, p->zmax, p->neg_sum,
                                      c0, n, head);
        comine_dist_allreduce_sum_f32(p->demb_all, (size_t)n * D);
        backbone_backward(ps, p, in, lo, n_local);
        comine_peer_allreduce_grads(p); /* the backbone's; each rank keeps its head rows' */
        int bad = !comine_peer_grads_finite(p, ps->be);
        comine_dist_allreduce_max_i32(&bad, 1);
        finite = !bad;
    }
    if (ps->bn_groups > 1) /* ghost batch norm: the running statistics are the slices' mean */
        for (int k = 0; k < ps->n; k++) {
            comine_peer *p = &ps->peer[k];
            const size_t nb = comine_model_num_buffers(p->model);
            memcpy(comine_model_buffers(p->model), ps->bn_ghost + (size_t)k * nb, nb * sizeof(float));
        }
    finish_step(res, ps, in, finite, n_local);
}

void comine_train_step(comine_step_result *res, comine_peers *ps, const comine_step_input *in,
                       const comine_select_cfg *select, const comine_arcface_cfg *head)
{
    const int n = in->n, P = ps->ranks;
    COMINE_ASSERT(n >= 1 && n <= ps->max_batch);
    memset(res, 0, sizeof *res);
    if (ps->sampled) {
        train_step_sharded(res, ps, in, select, head);
        return;
    }
    if (ps->bn_groups > 1) {
        train_step_ghost(res, ps, in, select, head);
        return;
    }
    if (ps->peer[0].sharded) {
        train_step_sharded(res, ps, in, select, head);
        return;
    }

    /* this rank's slice of the global batch */
    int lo, hi, counts[P];
    for (int r = 0; r < P; r++) {
        rank_slice(in, r, P, &lo, &hi);
        counts[r] = hi - lo;
    }
    rank_slice(in, ps->rank, P, &lo, &hi);
    const int n_local = hi - lo;
    const int *labels = in->labels + lo;

    /* 1. both peers forward the same images: per-sample plain ArcFace losses, gathered */
    if (n_local > 0) {
        const float *images = comine_backend_stage_input(ps->be, ps->images, rank_images(ps, in, lo),
                                                         (size_t)n_local * ps->image_floats);
        for (int k = 0; k < ps->n; k++) comine_peer_forward(&ps->peer[k], images, labels, n_local, head);
    }
    for (int k = 0; k < ps->n; k++) {
        gather_figures(ps, k, counts);
        cos_means(res, ps, k, labels, n_local, n);
    }

    /* 2. the method on the whole batch, the same on every rank: C, XA, XB, N, and what each
     * peer learns from, in which form; each rank takes its slice of the plans */
    select_and_slice_plans(res, ps, in, select);

    /* 3. each peer's objective under its plan (summed over the ranks' slices) */
    bool finite = true;
    for (int k = 0; k < ps->n; k++) {
        double objective = n_local > 0 ? comine_peer_objective(&ps->peer[k], labels, n_local, head) : 0.0;
        if (P > 1) comine_dist_allreduce_sum_f64(&objective, 1);
        res->objective[k] = in->poison_loss ? NAN : objective;
        finite = finite && isfinite(res->objective[k]);
    }

    /* 4. gradients of the objectives, summed over the ranks, checked finite */
    for (int k = 0; k < ps->n && finite; k++) {
        comine_peer_backward(&ps->peer[k], ps->be, labels, n_local, head);
        comine_peer_allreduce_grads(&ps->peer[k]);
        finite = comine_peer_grads_finite(&ps->peer[k], ps->be);
    }

    /* 5. a non-finite step changes nothing; 6. else SGD on backbone and head */
    finish_step(res, ps, in, finite, n_local);
}

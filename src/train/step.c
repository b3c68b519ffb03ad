/* step.c: the training step of step.h, read top to bottom as METHOD.md states it. */
#include "train/step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

comine_status comine_peers_create(comine_peers *ps, const comine_backend *be, const comine_arch *arch, int n_peers,
                                  int K, int B, uint64_t seed)
{
    COMINE_ASSERT(n_peers == 1 || n_peers == 2);
    COMINE_ASSERT(B >= 1);
    memset(ps, 0, sizeof *ps);
    ps->be = be;
    ps->max_batch = B;
    for (int k = 0; k < n_peers; k++) {
        comine_status st = comine_peer_create(&ps->peer[k], be, arch, K, B, seed, k);
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
    memset(ps, 0, sizeof *ps);
}

void comine_train_step(comine_step_result *res, comine_peers *ps, const comine_step_input *in,
                       const comine_select_cfg *select, const comine_arcface_cfg *head)
{
    const int n = in->n;
    COMINE_ASSERT(n >= 1 && n <= ps->max_batch);
    comine_peer *A = &ps->peer[0], *B = ps->n == 2 ? &ps->peer[1] : NULL;
    memset(res, 0, sizeof *res);

    /* 1. both peers forward the same images: per-sample plain ArcFace losses */
    const float *images = comine_backend_stage_input(ps->be, ps->images, in->images, (size_t)n * ps->image_floats);
    for (int k = 0; k < ps->n; k++) comine_peer_forward(&ps->peer[k], images, in->labels, n, head);

    /* 2. the method: C, XA, XB, N, and what each peer learns from, in which form */
    comine_selection sel = {.plan_a = {A->form, A->weight}, .noisy = ps->noisy};
    if (B) sel.plan_b = (comine_peer_plan){B->form, B->weight};
    comine_select(&sel, A->loss, B ? B->loss : NULL, in->truth_noisy, n, in->drop_rate, select, ps->select_scratch);
    res->sets = sel.sets;

    /* 3. each peer's objective under its plan */
    bool finite = true;
    for (int k = 0; k < ps->n; k++) {
        res->objective[k] = in->poison_loss ? NAN : comine_peer_objective(&ps->peer[k], in->labels, n, head);
        finite = finite && isfinite(res->objective[k]);
    }

    /* 4. gradients of the objectives, checked finite */
    for (int k = 0; k < ps->n && finite; k++) finite = comine_peer_backward(&ps->peer[k], ps->be, in->labels, n, head);

    /* 5. a non-finite step changes nothing: the forward's running statistics are undone */
    if (!finite) {
        for (int k = 0; k < ps->n; k++) comine_peer_restore_bn(&ps->peer[k]);
        res->applied = false;
        return;
    }

    /* 6. SGD on backbone and head */
    for (int k = 0; k < ps->n; k++)
        comine_peer_update(&ps->peer[k], ps->be, in->lr, in->momentum, in->weight_decay);
    res->applied = true;
}

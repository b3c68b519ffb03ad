/* arcface.c: the ArcFace head of loss.h with per-sample losses and the re-weighted forms.
 *
 * cos th_j = <w_j/|w_j|, f/|f|> (F.normalize's eps 1e-12); the target logit is s psi(th_y)
 * with margin m (COMINE_FORM_ARCFACE and COMINE_FORM_MV) or m + dm (COMINE_FORM_MARGIN) and
 * one of two fallbacks (easy margin, insightface's); COMINE_FORM_MV multiplies the negatives
 * that beat the target (cos th_j > psi) by h_j = e^{s(t-1)(cos th_j + 1)}, the selection mask
 * being a constant for the gradient (as torch.where).  loss_i = logsumexp(z_i) - z_iy.
 *
 * This file orders the work; the backend runs it on its device: the two big products (the
 * cosines, and the two backward ones) through comine_backend_gemm, the row-wise parts
 * through the backend's ArcFace entries (backend_impl.h).  Per-sample inputs (labels, forms,
 * weights) are uploaded, per-sample outputs (losses, cos th_y, p_y, correct) downloaded: B
 * numbers each.  Backward only multiplies the rows of samples with nonzero weight, and folds
 * both normalisations in without an extra (K, D) buffer: with
 * g_ij = d(sum_i weight_i loss_i) / d cos_ij and g'_ij = g_ij / |w_j| (what dcos holds),
 *   d/d f_i = (sum_j g'_ij w_j - a_i f^_i) / |f_i|,   a_i = sum_j g_ij cos_ij
 *   d/d w_j =  sum_i g'_ij f^_i - c'_j w^_j,          c'_j = sum_i g'_ij cos_ij
 * (F.normalize's eps: below it a row is only scaled, without the projection).
 *
 * Sub-center ArcFace (S > 1, loss.h): the forward's product gives the (N, K S) sub-centre
 * cosines, the backend's subcenter_max their class maxima (N, K) and arg-max; loss and the
 * class-level dcos read the (N, K) cosines unchanged, and backward scatters dcos to the arg-max
 * sub-centres (subcenter_scatter) before the same two products over the K S rows.  S = 1 runs
 * none of it. */
#include "comine/loss.h"

#include <stdlib.h>
#include <string.h>

#include "backend/backend_impl.h"

void comine_arcface_cfg_default(comine_arcface_cfg *cfg)
{
    cfg->s = 64.0f;
    cfg->m = 0.5f;
    cfg->fallback = COMINE_FALLBACK_EASY;
    cfg->dm = 0.2f;
    cfg->t = 1.2f;
    cfg->subcenters = 1;
}

void comine_arcface_init(comine_arcface *h, const comine_backend *be, int D, int K, int max_N)
{
    COMINE_ASSERT(comine_arcface_init_subcenters(h, be, D, K, 1, max_N) == COMINE_OK);
}

comine_status comine_arcface_init_subcenters(comine_arcface *h, const comine_backend *be, int D, int K, int S,
                                             int max_N)
{
    COMINE_ASSERT(be != NULL && D > 0 && K > 0 && S > 0 && max_N > 0);
    if (S > 1 && (!be->subcenter_max || !be->subcenter_scatter))
        return comine_fail(COMINE_ERR_ARG, "sub-center ArcFace (%d sub-centres per class): the %s backend has no "
                                           "sub-centre kernels",
                           S, be->name);
    memset(h, 0, sizeof *h);
    h->be = be;
    h->D = D;
    h->K = K;
    h->max_K = K;
    h->S = S;
    h->max_N = max_N;
    const size_t rows = (size_t)K * S; /* weight rows */
    size_t n = (size_t)max_N, nd = n * D, kd = rows * D, nk = n * K;
    h->cos_target = comine_alloc_floats(n);
    h->p_target = comine_alloc_floats(n);
    h->correct = comine_calloc(n, 1);
    h->active = comine_calloc(n, sizeof(int));
    h->emb_norm = comine_backend_alloc(be, n);
    h->emb_hat = comine_backend_alloc(be, nd);
    h->w_norm = comine_backend_alloc(be, rows);
    h->w_inv_norm = comine_backend_alloc(be, rows);
    h->w_hat = comine_backend_alloc(be, kd);
    h->cos = comine_backend_alloc(be, nk);
    h->dev_labels = comine_backend_alloc_bytes(be, n * sizeof(int));
    h->dev_active = comine_backend_alloc_bytes(be, n * sizeof(int));
    h->dev_form = comine_backend_alloc_bytes(be, n);
    h->dev_correct = comine_backend_alloc_bytes(be, n);
    h->dev_weight = comine_backend_alloc(be, n);
    h->dev_loss = comine_backend_alloc(be, n);
    h->dev_cos_target = comine_backend_alloc(be, n);
    h->dev_p_target = comine_backend_alloc(be, n);
    h->dcos = comine_backend_alloc(be, nk);
    h->emb_hat_active = comine_backend_alloc(be, nd);
    h->demb_hat = comine_backend_alloc(be, nd);
    h->col_coef = comine_backend_alloc(be, rows);
    h->row_coef = comine_backend_alloc(be, n);
    if (S > 1) {
        h->cos_sub = comine_backend_alloc(be, n * rows);
        h->sub_arg = comine_backend_alloc_bytes(be, nk * sizeof(int));
        h->dcos_sub = comine_backend_alloc(be, n * rows);
        float *ones = comine_malloc((size_t)K * sizeof(float));
        for (int k = 0; k < K; k++) ones[k] = 1.0f;
        h->ones = comine_backend_alloc(be, (size_t)K);
        comine_backend_upload(be, h->ones, ones, (size_t)K);
        free(ones);
    }
    return COMINE_OK;
}

void comine_arcface_free(comine_arcface *h)
{
    if (!h->be) return;
    const comine_backend *be = h->be;
    comine_free_floats(h->cos_target);
    comine_free_floats(h->p_target);
    free(h->correct);
    free(h->active);
    float *dev[] = {h->emb_norm,   h->emb_hat,        h->w_norm,         h->w_inv_norm,   h->w_hat,
                    h->cos,        h->dev_weight,     h->dev_loss,       h->dev_cos_target, h->dev_p_target,
                    h->dcos,       h->emb_hat_active, h->demb_hat,       h->col_coef,     h->row_coef,
                    h->cos_sub,    h->dcos_sub,       h->ones};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i]) comine_backend_free(be, dev[i]);
    if (h->sub_arg) comine_backend_free_bytes(be, h->sub_arg);
    comine_backend_free_bytes(be, h->dev_labels);
    comine_backend_free_bytes(be, h->dev_active);
    comine_backend_free_bytes(be, h->dev_form);
    comine_backend_free_bytes(be, h->dev_correct);
    memset(h, 0, sizeof *h);
}

void comine_arcface_set_classes(comine_arcface *h, int K)
{
    COMINE_ASSERT(K >= 0 && h->S == 1);
    if (K > h->max_K) {
        const comine_backend *be = h->be;
        float **bufs[] = {&h->w_norm, &h->w_inv_norm, &h->col_coef, &h->w_hat, &h->cos, &h->dcos};
        const size_t sizes[] = {1, 1, 1, (size_t)h->D, (size_t)h->max_N, (size_t)h->max_N};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
            comine_backend_free(be, *bufs[i]);
            *bufs[i] = comine_backend_alloc(be, sizes[i] * (size_t)K);
        }
        h->max_K = K;
    }
    h->K = K;
}

void comine_arcface_forward(comine_arcface *h, const float *emb, const float *weight, int N)
{
    COMINE_ASSERT(N >= 1 && N <= h->max_N);
    h->be->l2_normalize_rows(h->emb_hat, h->emb_norm, NULL, emb, N, h->D);
    if (h->K == 0) { /* a shard of Partial FC with no sampled class */
        h->N = N;
        return;
    }
    if (h->S > 1) {
        /* cos_sub (N, K S) = emb_hat @ w_hat (K S, D)^T; cos (N, K) the max of each class */
        const int rows = h->K * h->S;
        h->be->l2_normalize_rows(h->w_hat, h->w_norm, h->w_inv_norm, weight, rows, h->D);
        comine_backend_gemm(h->be, 0, 1, N, rows, h->D, 1.0f, h->emb_hat, h->D, h->w_hat, h->D, 0.0f, h->cos_sub,
                            rows);
        h->be->subcenter_max(h->cos, h->sub_arg, h->cos_sub, N, h->K, h->S);
        h->N = N;
        return;
    }
    h->be->l2_normalize_rows(h->w_hat, h->w_norm, h->w_inv_norm, weight, h->K, h->D);
    /* cos (N, K) = emb_hat (N, D) @ w_hat (K, D)^T */
    comine_backend_gemm(h->be, 0, 1, N, h->K, h->D, 1.0f, h->emb_hat, h->D, h->w_hat, h->D, 0.0f, h->cos, h->K);
    h->N = N;
}

/* cfg's sub-centre count (0 read as 1) is the head's. */
static void check_subcenters(const comine_arcface *h, const comine_arcface_cfg *cfg)
{
    COMINE_ASSERT((cfg->subcenters > 1 ? cfg->subcenters : 1) == h->S);
}

/* The device copies of a batch's labels and (when given) forms; returns the forms' device
 * pointer or NULL. */
static const uint8_t *upload_rows(comine_arcface *h, const int *labels, const uint8_t *form, int N)
{
    comine_backend_upload_bytes(h->be, h->dev_labels, labels, (size_t)N * sizeof(int));
    if (!form) return NULL;
    comine_backend_upload_bytes(h->be, h->dev_form, form, (size_t)N);
    return h->dev_form;
}

void comine_arcface_loss(comine_arcface *h, float *loss, const int *labels, const uint8_t *form, int N,
                         const comine_arcface_cfg *cfg)
{
    COMINE_ASSERT(N >= 1 && N <= h->N);
    check_subcenters(h, cfg);
    const comine_backend *be = h->be;
    const uint8_t *dev_form = upload_rows(h, labels, form, N);
    be->arcface_loss(h->dev_loss, h->dev_cos_target, h->dev_p_target, h->dev_correct, h->cos, h->dev_labels, dev_form,
                     N, h->K, cfg);
    comine_backend_download(be, loss, h->dev_loss, (size_t)N);
    comine_backend_download(be, h->cos_target, h->dev_cos_target, (size_t)N);
    comine_backend_download(be, h->p_target, h->dev_p_target, (size_t)N);
    comine_backend_download_bytes(be, h->correct, h->dev_correct, (size_t)N);
}

/* The backward of a head of S > 1 sub-centres: the class-level dcos (na, K) as for S = 1 but
 * without the / |w| (a w_inv_norm of ones), scattered to each class's arg-max sub-centre with
 * that sub-centre's 1 / |w|: dcos_sub (na, K S); then the S = 1 products over the K S rows.
 * row_coef needs no change: the class cosine is the arg-max sub-centre's. */
static void backward_subcenters(comine_arcface *h, float *demb, float *dweight, const float *weight,
                                const uint8_t *dev_form, int na, const comine_arcface_cfg *cfg)
{
    const comine_backend *be = h->be;
    const int K = h->K, D = h->D, rows = h->K * h->S;
    be->arcface_dcos(h->dcos, h->row_coef, h->emb_hat_active, h->cos, h->emb_hat, h->ones, h->dev_active, na,
                     h->dev_labels, dev_form, h->dev_weight, K, D, cfg);
    be->subcenter_scatter(h->dcos_sub, h->dcos, h->sub_arg, h->dev_active, h->w_inv_norm, na, K, h->S);
    be->arcface_col_coef(h->col_coef, h->dcos_sub, h->cos_sub, h->dev_active, na, rows);
    comine_backend_gemm(be, 0, 0, na, D, rows, 1.0f, h->dcos_sub, rows, weight, D, 0.0f, h->demb_hat, D);
    be->arcface_demb(demb, h->demb_hat, h->emb_hat, h->emb_norm, h->row_coef, h->dev_active, na, D);
    comine_backend_gemm(be, 1, 0, rows, D, na, 1.0f, h->dcos_sub, rows, h->emb_hat_active, D, 1.0f, dweight, D);
    be->arcface_dweight(dweight, h->w_hat, h->w_norm, h->col_coef, rows, D);
}

void comine_arcface_backward(comine_arcface *h, float *demb, float *dweight, const float *emb,
                             const float *weight, const int *labels, const uint8_t *form,
                             const float *sample_weight, int N, const comine_arcface_cfg *cfg)
{
    COMINE_ASSERT(N >= 1 && N <= h->N);
    COMINE_ASSERT(demb != NULL && dweight != NULL && weight != NULL && labels != NULL && sample_weight != NULL);
    check_subcenters(h, cfg);
    (void)emb;
    const comine_backend *be = h->be;
    const int K = h->K, D = h->D;
    int na = 0;
    for (int i = 0; i < N; i++)
        if (sample_weight[i] != 0.0f) h->active[na++] = i;
    if (na == 0) return;
    for (int p = 0; p < na; p++) COMINE_ASSERT(labels[h->active[p]] >= 0 && labels[h->active[p]] < K);
    const uint8_t *dev_form = upload_rows(h, labels, form, N);
    comine_backend_upload(be, h->dev_weight, sample_weight, (size_t)N);
    comine_backend_upload_bytes(be, h->dev_active, h->active, (size_t)na * sizeof(int));

    if (h->S > 1) {
        backward_subcenters(h, demb, dweight, weight, dev_form, na, cfg);
        return;
    }
    /* dcos row p (compact) = g'_j = g_j / max(|w_j|, eps) of sample active[p], one exp per
     * class; row_coef[p] = a_{active[p]} = sum_j g_j cos_j */
    be->arcface_dcos(h->dcos, h->row_coef, h->emb_hat_active, h->cos, h->emb_hat, h->w_inv_norm, h->dev_active, na,
                     h->dev_labels, dev_form, h->dev_weight, K, D, cfg);
    /* c'_j = sum_p g'_pj cos_{active[p], j} = c_j / |w_j| */
    be->arcface_col_coef(h->col_coef, h->dcos, h->cos, h->dev_active, na, K);
    /* sum_j g_j w^_j = sum_j g'_j w_j: demb_hat (na, D) = dcos (na, K) @ weight (K, D);
     * demb_i += (demb_hat - a f^) / |f| */
    comine_backend_gemm(be, 0, 0, na, D, K, 1.0f, h->dcos, K, weight, D, 0.0f, h->demb_hat, D);
    be->arcface_demb(demb, h->demb_hat, h->emb_hat, h->emb_norm, h->row_coef, h->dev_active, na, D);
    /* dweight (K, D) += dcos^T (K, na) @ emb_hat_active (na, D), then - c'_j w^_j */
    comine_backend_gemm(be, 1, 0, K, D, na, 1.0f, h->dcos, K, h->emb_hat_active, D, 1.0f, dweight, D);
    be->arcface_dweight(dweight, h->w_hat, h->w_norm, h->col_coef, K, D);
}

void comine_arcface_cos_stats(const comine_arcface *h, const int *labels, int N, double *mean_target,
                              double *mean_negative)
{
    COMINE_ASSERT(N >= 1 && N <= h->N);
    comine_backend_upload_bytes(h->be, h->dev_labels, labels, (size_t)N * sizeof(int));
    h->be->arcface_cos_stats(mean_target, mean_negative, h->cos, h->dev_labels, N, h->K);
}

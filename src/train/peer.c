/* peer.c: the phases of a training step for one peer network (peer.h). */
#include "train/peer.h"

#include <stdlib.h>
#include <string.h>

#include "comine/dist.h"
#include "comine/optim.h"
#include "comine/partial_fc.h"

/* The all-reduce's bucket: COMINE_PEER_BUCKET floats, or $COMINE_BUCKET_FLOATS. */
static size_t peer_bucket(void)
{
    const char *v = getenv("COMINE_BUCKET_FLOATS");
    if (!v || !*v) return COMINE_PEER_BUCKET;
    char *end = NULL;
    unsigned long long b = strtoull(v, &end, 10);
    if (*end || b < 1 || b > ((size_t)1 << 28)) {
        static bool warned;
        if (!warned && comine_dist_rank() == 0)
            comine_warn("COMINE_BUCKET_FLOATS=%s: not a count of floats in 1..2^28: %zu used", v, COMINE_PEER_BUCKET);
        warned = true;
        return COMINE_PEER_BUCKET;
    }
    return (size_t)b;
}

comine_status comine_peer_create(comine_peer *p, const comine_backend *be, const comine_arch *arch, int K, int S,
                                 int B, uint64_t seed, int k, int class_lo, int head_classes, bool sampled)
{
    COMINE_ASSERT(class_lo >= 0 && head_classes >= 1 && class_lo + head_classes <= K);
    COMINE_ASSERT(S >= 1 && (S == 1 || head_classes == K));
    COMINE_ASSERT(!sampled || (S == 1 && be == comine_backend_cpu()));
    memset(p, 0, sizeof *p);
    p->be = be;
    /* sampled: the head's class-sized buffers hold the step's sampled rows only, grown on demand */
    comine_status st = comine_arcface_init_subcenters(&p->head, be, arch->emb_dim, sampled ? 1 : head_classes, S, B);
    if (st != COMINE_OK) return st;
    st = comine_model_create(&p->model, arch, be, B);
    if (st != COMINE_OK) {
        comine_arcface_free(&p->head);
        return st;
    }
    /* peers are seeded differently: (seed, k) -> the peer's own init and dropout streams */
    uint64_t peer_seed = seed * 1000003ULL + 7919ULL * (uint64_t)(k + 1);
    comine_model_init(p->model, peer_seed);
    int D = arch->emb_dim;
    p->momentum = comine_backend_alloc(be, comine_model_num_params(p->model));
    p->bn_backup = comine_backend_alloc(be, comine_model_num_buffers(p->model) + 1);
    p->class_lo = class_lo;
    p->classes = K;
    p->sharded = head_classes < K;
    p->shard_classes = head_classes;
    p->sampled = sampled;
    size_t kd = (size_t)head_classes * S * D;
    p->head_weight = comine_backend_alloc(be, kd);
    if (!sampled) p->head_grad = comine_backend_alloc(be, kd);
    p->head_momentum = comine_backend_alloc(be, kd);
    /* ArcFace weights ~ normal(0, 0.01), as insightface's PyTorch head; uploaded a piece at a
     * time (no second copy of a head of 10^6 rows) */
    enum { INIT_CHUNK = 1 << 18 };
    float *w = comine_malloc((kd < INIT_CHUNK ? kd : INIT_CHUNK) * sizeof(float));
    comine_rng r;
    comine_rng_seed(&r, peer_seed, COMINE_STREAM_INIT + 1000);
    for (size_t i = 0; i < (size_t)class_lo * D; i++) { /* the rows before the shard: a normal is two draws */
        comine_rng_u64(&r);
        comine_rng_u64(&r);
    }
    for (size_t at = 0; at < kd; at += INIT_CHUNK) {
        size_t len = kd - at < INIT_CHUNK ? kd - at : INIT_CHUNK;
        for (size_t i = 0; i < len; i++) w[i] = 0.01f * comine_rng_normal(&r);
        comine_backend_upload(be, p->head_weight + at, w, len);
    }
    free(w);
    p->emb = comine_backend_alloc(be, (size_t)B * D);
    p->demb = comine_backend_alloc(be, (size_t)B * D);
    p->loss = comine_calloc(B, sizeof(float));
    p->train_loss = comine_calloc(B, sizeof(float));
    p->form = comine_calloc(B, 1);
    p->weight = comine_calloc(B, sizeof(float));
    comine_rng_seed(&p->dropout_rng, peer_seed, COMINE_STREAM_DROPOUT + 16 * (uint64_t)k);
    if (p->sharded || sampled) {
        p->emb_all = comine_backend_alloc(be, (size_t)B * D);
        p->demb_all = comine_backend_alloc(be, (size_t)B * D);
        p->target_cos = comine_calloc(B, sizeof(float));
        p->max_cos = comine_calloc(B, sizeof(float));
        p->zmax = comine_calloc(B, sizeof(double));
        p->neg_sum = comine_calloc(B, sizeof(double));
        p->neg_cos = comine_calloc(B, sizeof(double));
    }
    if (comine_dist_size() > 1) p->buckets = comine_dist_buckets_create(peer_bucket());
    return COMINE_OK;
}

size_t comine_peer_head_floats(const comine_peer *p)
{
    return (size_t)p->shard_classes * p->head.S * p->head.D;
}

void comine_peer_sample(comine_peer *p, const int *classes, int n)
{
    COMINE_ASSERT(p->sampled && n >= 0 && n <= p->shard_classes);
    const comine_backend *be = p->be;
    const int D = p->head.D;
    if (n > p->block_cap || !p->block_weight) {
        /* the rank's share of the draw moves from step to step: 1/32 more room saves regrowing
         * the block and the head's buffers at every new maximum (at least one row: never NULL) */
        const int cap = n + n / 32 > 1 ? n + n / 32 : 1;
        float **bufs[] = {&p->block_weight, &p->block_grad};
        for (int i = 0; i < 2; i++) {
            comine_backend_free(be, *bufs[i]);
            *bufs[i] = comine_backend_alloc(be, (size_t)cap * D);
        }
        p->block_cap = cap;
        comine_arcface_set_classes(&p->head, cap); /* the head's class-sized buffers to the same room */
    }
    p->block_rows = n;
    p->block_classes = classes;
    comine_pfc_gather(p->block_weight, p->head_weight, classes, n, p->class_lo, D);
    comine_arcface_set_classes(&p->head, n);
}

comine_status comine_peer_replace_head(comine_peer *p, int K, int S, const float *weight, const float *momentum)
{
    COMINE_ASSERT(!p->sharded && !p->sampled && K >= 1 && S >= 1);
    const comine_backend *be = p->be;
    const int D = p->head.D, B = p->head.max_N;
    comine_arcface head;
    comine_status st = comine_arcface_init_subcenters(&head, be, D, K, S, B);
    if (st != COMINE_OK) return st;
    comine_arcface_free(&p->head);
    p->head = head;
    comine_backend_free(be, p->head_weight);
    comine_backend_free(be, p->head_grad);
    comine_backend_free(be, p->head_momentum);
    size_t kd = (size_t)K * S * D;
    p->head_weight = comine_backend_alloc(be, kd);
    p->head_grad = comine_backend_alloc(be, kd);
    p->head_momentum = comine_backend_alloc(be, kd);
    comine_backend_upload(be, p->head_weight, weight, kd);
    comine_backend_upload(be, p->head_momentum, momentum, kd);
    p->classes = K;
    p->shard_classes = K;
    p->class_lo = 0;
    return COMINE_OK;
}

void comine_peer_free(const comine_backend *be, comine_peer *p)
{
    if (p->model) comine_model_free(p->model);
    comine_dist_buckets_free(p->buckets);
    comine_arcface_free(&p->head);
    float *bufs[] = {p->momentum,  p->head_weight,  p->head_grad,    p->head_momentum, p->emb,
                     p->demb,      p->bn_backup,    p->emb_all,      p->demb_all,      p->block_weight,
                     p->block_grad};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) comine_backend_free(be, bufs[i]);
    free(p->loss);
    free(p->train_loss);
    free(p->form);
    free(p->weight);
    free(p->target_cos);
    free(p->max_cos);
    free(p->zmax);
    free(p->neg_sum);
    free(p->neg_cos);
    memset(p, 0, sizeof *p);
}

void comine_peer_forward(comine_peer *p, const float *images, const int *labels, int n, const comine_arcface_cfg *cfg)
{
    comine_backend_copy(p->be, p->bn_backup, comine_model_buffers(p->model), comine_model_num_buffers(p->model));
    comine_model_forward(p->model, p->emb, images, n, true, &p->dropout_rng);
    comine_arcface_forward(&p->head, p->emb, p->head_weight, n);
    comine_arcface_loss(&p->head, p->loss, labels, NULL, n, cfg);
}

double comine_peer_objective(comine_peer *p, const int *labels, int n, const comine_arcface_cfg *cfg)
{
    comine_arcface_loss(&p->head, p->train_loss, labels, p->form, n, cfg);
    double objective = 0;
    for (int i = 0; i < n; i++)
        if (p->weight[i] != 0.0f) objective += (double)p->weight[i] * p->train_loss[i];
    return objective;
}

void comine_peer_backward(comine_peer *p, const comine_backend *be, const int *labels, int n,
                          const comine_arcface_cfg *cfg)
{
    size_t kd = comine_peer_head_floats(p);
    comine_model_zero_grad(p->model);
    comine_backend_zero(be, p->head_grad, kd);
    if (n == 0) return;
    comine_backend_zero(be, p->demb, (size_t)n * p->head.D);
    comine_arcface_backward(&p->head, p->demb, p->head_grad, p->emb, p->head_weight, labels, p->form, p->weight, n,
                            cfg);
    comine_peer_model_backward(p, p->demb, n);
}

static void grads_ready(void *ctx, size_t from) { comine_dist_buckets_ready(ctx, from); }

void comine_peer_model_backward(comine_peer *p, const float *demb, int n)
{
    if (!p->buckets) {
        comine_model_backward(p->model, demb, n);
        return;
    }
    COMINE_ASSERT(!p->reducing);
    comine_dist_buckets_begin(p->buckets, comine_model_grads(p->model), comine_model_num_params(p->model));
    p->reducing = true;
    comine_model_backward_notify(p->model, demb, n, grads_ready, p->buckets);
}

/* Multi-process runs use the CPU backend (trainer.c refuses others): device memory is host
 * memory and goes to the collectives as it is. */
void comine_peer_allreduce_grads(comine_peer *p)
{
    if (comine_dist_size() == 1) return;
    if (!p->reducing) /* no backward on this rank (no rows): the same buckets, from here */
        comine_dist_buckets_begin(p->buckets, comine_model_grads(p->model), comine_model_num_params(p->model));
    comine_dist_buckets_finish(p->buckets);
    p->reducing = false;
    if (!p->sharded && !p->sampled) comine_dist_allreduce_sum_f32(p->head_grad, comine_peer_head_floats(p));
}

void comine_peer_average_bn(comine_peer *p)
{
    int P = comine_dist_size();
    if (P == 1) return;
    float *buf = comine_model_buffers(p->model);
    size_t n = comine_model_num_buffers(p->model);
    comine_dist_allreduce_sum_f32(buf, n);
    for (size_t i = 0; i < n; i++) buf[i] /= (float)P;
}

bool comine_peer_grads_finite(const comine_peer *p, const comine_backend *be)
{
    const bool head = p->sampled ? comine_backend_all_finite(be, p->block_grad, (size_t)p->block_rows * p->head.D)
                                 : comine_backend_all_finite(be, p->head_grad, comine_peer_head_floats(p));
    return comine_backend_all_finite(be, comine_model_grads(p->model), comine_model_num_params(p->model)) && head;
}

void comine_peer_restore_bn(comine_peer *p)
{
    comine_backend_copy(p->be, comine_model_buffers(p->model), p->bn_backup, comine_model_num_buffers(p->model));
}

void comine_peer_update(comine_peer *p, const comine_backend *be, float lr, float momentum, float weight_decay)
{
    comine_sgd_step(be, comine_model_params(p->model), p->momentum, comine_model_grads(p->model),
                    comine_model_num_params(p->model), lr, momentum, weight_decay);
    if (!p->sampled) {
        comine_sgd_step(be, p->head_weight, p->head_momentum, p->head_grad, comine_peer_head_floats(p), lr, momentum,
                        weight_decay);
        return;
    }
    /* the same SGD, in place, on the sampled rows only */
    comine_sgd_step_rows(be, p->head_weight, p->head_momentum, p->block_grad, p->block_classes, p->block_rows,
                         p->class_lo, p->head.D, lr, momentum, weight_decay);
}

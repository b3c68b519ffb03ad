/* model.c: a model's life: create (graph, conv plans, memory plan, arenas), free, the
 * insightface initialisation, the accessors of model.h and copying state.
 *
 * Everything is sized at create for max_batch images and allocated through the backend:
 * - parameters: ONE contiguous buffer (gradients mirror it) described by the table;
 * - buffers: BN running statistics and the fixed BN1d weight of the iresnet embedding;
 * - activations and their gradients: two arenas laid out by model_memory.c;
 * - BN saved statistics (2 C floats per BN) and dropout masks (host bytes).
 * The graph comes from model_graph.c; forward, backward and the eval BN folding are in
 * model_exec.c. */
#include "comine/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comine/nn.h"
#include "models/model_impl.h"

/* ---- create and free ------------------------------------------------------------------------ */

comine_status comine_model_create_uninit(comine_model **out, const comine_arch *arch, const comine_backend *be,
                                         int max_batch)
{
    *out = NULL;
    comine_status st = comine_arch_check(arch);
    if (st != COMINE_OK) return st;
    if (max_batch < 1) return comine_fail(COMINE_ERR_ARG, "%s: max_batch must be >= 1 (got %d)", arch->name, max_batch);
    comine_model *m = comine_calloc(1, sizeof *m);
    m->arch = *arch;
    m->be = be;
    m->max_batch = max_batch;
    comine_model_build_graph(m);

    for (int i = 0; i < m->n_ops; i++) {
        model_op *op = &m->ops[i];
        if (op->kind != MODEL_OP_CONV) continue;
        comine_conv2d_init(&op->conv, be, op->C, op->H, op->W, op->OC, op->K, op->K, op->stride, op->pad, op->groups,
                           op->b >= 0);
        COMINE_ASSERT(op->conv.OH == m->values[op->out].H && op->conv.OW == m->values[op->out].W);
    }
    comine_model_plan_memory(m);
    m->fold_bn = true;
    m->eval_split = COMINE_EVAL_SPLIT_DEFAULT;
    m->params = comine_backend_alloc(be, m->params_table.total ? m->params_table.total : 1);
    m->grads = comine_backend_alloc(be, m->params_table.total ? m->params_table.total : 1);
    m->buffers = comine_backend_alloc(be, m->bufs.total ? m->bufs.total : 1);
    m->acts = comine_backend_alloc(be, m->n_acts);
    m->dacts = comine_backend_alloc(be, m->n_dacts ? m->n_dacts : 1);
    m->stats = comine_backend_alloc(be, m->n_stats ? m->n_stats : 1);
    m->masks = m->n_mask ? comine_calloc(m->n_mask * (size_t)max_batch, 1) : NULL;
    *out = m;
    return COMINE_OK;
}

comine_status comine_model_create(comine_model **out, const comine_arch *arch, const comine_backend *be,
                                  int max_batch)
{
    comine_status st = comine_model_create_uninit(out, arch, be, max_batch);
    if (st == COMINE_OK) comine_model_init(*out, 0);
    return st;
}

void comine_model_free(comine_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_ops; i++)
        if (m->ops[i].kind == MODEL_OP_CONV) {
            comine_conv2d_free(&m->ops[i].conv);
            comine_conv2d_free(&m->ops[i].conv_folded);
            for (int p = 0; p < m->ops[i].n_part; p++) comine_conv2d_free(&m->ops[i].conv_part[p]);
            free(m->ops[i].conv_part);
        }
    if (m->folded) comine_backend_free(m->be, m->folded);
    if (m->split_scratch) comine_backend_free(m->be, m->split_scratch);
    comine_backend_free(m->be, m->params);
    comine_backend_free(m->be, m->grads);
    comine_backend_free(m->be, m->buffers);
    comine_backend_free(m->be, m->acts);
    if (!m->dacts_borrowed) comine_backend_free(m->be, m->dacts);
    comine_backend_free(m->be, m->stats);
    free(m->masks);
    comine_model_free_graph(m);
    free(m);
}

/* ---- initialisation ---------------------------------------------------------------------- */

static void init_table(const comine_backend *be, float *dev, const model_table *t, comine_rng *rng)
{
    for (int i = 0; i < t->n; i++) {
        const comine_tensor_info *ti = &t->info[i];
        float *host = comine_malloc(ti->size * sizeof(float));
        double fan_in = t->fan_in[i] > 0 ? t->fan_in[i] : 1;
        for (size_t k = 0; k < ti->size; k++) {
            float v = 0.0f;
            switch (t->init[i]) {
            case MODEL_INIT_KAIMING: v = (float)(sqrt(2.0 / fan_in) * comine_rng_normal(rng)); break;
            case MODEL_INIT_ONE: v = 1.0f; break;
            case MODEL_INIT_ZERO: v = 0.0f; break;
            case MODEL_INIT_PRELU: v = 0.25f; break;
            case MODEL_INIT_LINEAR: v = (float)((2.0 * comine_rng_uniform(rng) - 1.0) / sqrt(fan_in)); break;
            }
            host[k] = v;
        }
        comine_backend_upload(be, dev + ti->offset, host, ti->size);
        free(host);
    }
}

void comine_model_init(comine_model *m, uint64_t seed)
{
    comine_rng rng;
    comine_rng_seed(&rng, seed, COMINE_STREAM_INIT);
    init_table(m->be, m->params, &m->params_table, &rng);
    init_table(m->be, m->buffers, &m->bufs, &rng);
    m->fold_fresh = false;
    comine_model_zero_grad(m);
}

/* ---- accessors ----------------------------------------------------------------------------- */

const comine_arch *comine_model_arch(const comine_model *m) { return &m->arch; }
int comine_model_max_batch(const comine_model *m) { return m->max_batch; }
size_t comine_model_num_params(const comine_model *m) { return m->params_table.total; }
int comine_model_num_tensors(const comine_model *m) { return m->params_table.n; }

const comine_tensor_info *comine_model_tensor(const comine_model *m, int i)
{
    COMINE_ASSERT(i >= 0 && i < m->params_table.n);
    return &m->params_table.info[i];
}

float *comine_model_params(comine_model *m)
{
    m->fold_fresh = false;
    return m->params;
}

float *comine_model_grads(comine_model *m) { return m->grads; }
size_t comine_model_num_buffers(const comine_model *m) { return m->bufs.total; }
float *comine_model_buffers(comine_model *m)
{
    m->fold_fresh = false;
    return m->buffers;
}

int comine_model_num_buffer_tensors(const comine_model *m) { return m->bufs.n; }

const comine_tensor_info *comine_model_buffer_tensor(const comine_model *m, int i)
{
    COMINE_ASSERT(i >= 0 && i < m->bufs.n);
    return &m->bufs.info[i];
}

int comine_model_find_tensor(const comine_model *m, const char *name, bool *is_buffer)
{
    for (int i = 0; i < m->params_table.n; i++)
        if (!strcmp(m->params_table.info[i].name, name)) {
            if (is_buffer) *is_buffer = false;
            return i;
        }
    for (int i = 0; i < m->bufs.n; i++)
        if (!strcmp(m->bufs.info[i].name, name)) {
            if (is_buffer) *is_buffer = true;
            return i;
        }
    return -1;
}

double comine_model_flops(const comine_model *m) { return m->flops; }

size_t comine_model_activation_floats(const comine_model *m) { return m->n_acts + m->n_dacts; }

void comine_model_share_grad_scratch(comine_model *m, comine_model *lender)
{
    COMINE_ASSERT(m->be == lender->be && !lender->dacts_borrowed);
    if (m == lender || m->dacts == lender->dacts || lender->n_dacts < m->n_dacts) return;
    if (!m->dacts_borrowed) comine_backend_free(m->be, m->dacts);
    m->dacts = lender->dacts;
    m->dacts_borrowed = true;
}

void comine_model_set_fold_bn(comine_model *m, bool fold) { m->fold_bn = fold; }
void comine_model_set_eval_split(comine_model *m, int images)
{
    COMINE_ASSERT(images >= 0 || images == COMINE_EVAL_SPLIT_AUTO);
    m->eval_split = images;
}

void comine_model_zero_grad(comine_model *m)
{
    comine_backend_zero(m->be, m->grads, m->params_table.total ? m->params_table.total : 1);
}

/* ---- copying state ------------------------------------------------------------------------- */

void comine_model_copy_state(comine_model *dst, const comine_model *src)
{
    COMINE_ASSERT(!strcmp(dst->arch.name, src->arch.name) && dst->params_table.total == src->params_table.total &&
                  dst->bufs.total == src->bufs.total);
    dst->fold_fresh = false;
    size_t chunk = 1 << 16;
    float *tmp = comine_malloc(chunk * sizeof(float));
    for (int which = 0; which < 2; which++) {
        size_t n = which ? src->bufs.total : src->params_table.total;
        const float *s = which ? src->buffers : src->params;
        float *d = which ? dst->buffers : dst->params;
        for (size_t k = 0; k < n; k += chunk) {
            size_t c = n - k < chunk ? n - k : chunk;
            comine_backend_download(src->be, tmp, s + k, c);
            comine_backend_upload(dst->be, d + k, tmp, c);
        }
    }
    free(tmp);
}

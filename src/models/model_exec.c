/* model_exec.c: running a model: the forward (training or eval), the backward, and the
 * folding of batch norms into convolutions for the eval forward.
 *
 * Assumes a model made by comine_model_create_uninit: the ops in execution order, the conv
 * plans made, every value's place in the activation arena and every gradient's slot decided
 * (model_memory.c), the arenas allocated.  Activations are NHWC; value 0 is the input images
 * and has no gradient.  A training forward keeps what its backward needs (every value but
 * the transient BN outputs, which the backward computes again, the BN saved statistics and
 * the dropout masks); the backward accumulates into the parameter gradients.  An eval
 * forward runs each folded conv with what follows its BN as the conv's epilogue
 * (comine_conv2d_forward_fused): the PReLU that alone reads the BN's output and a residual
 * add, run inside the conv or in one pass after it, or that PReLU handed to the next conv
 * where that one applies it to its input (hand_over_prelus); a BN that alone feeds a conv
 * (not foldable: the conv's padding must stay zero) applied by that conv to its input where
 * its backend can (hand_over_bns); the folded weights carry a
 * version that changes with every folding, so the backend may keep them in its own format
 * meanwhile. */
#include "comine/model.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "comine/nn.h"
#include "models/model_impl.h"

#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f

#define VAL(v) (m->acts + m->values[v].offset)
#define DVAL(v) (m->dacts + m->values[v].grad_offset)
#define PARAM(i) (m->params + m->params_table.info[i].offset)
#define GRAD(i) (m->grads + m->params_table.info[i].offset)
#define BUF(i) (m->buffers + m->bufs.info[i].offset)

/* A number no other folding has used: the folded convs' weight_version (nn.h). */
static uint64_t next_fold_version(void)
{
    static _Atomic uint64_t counter;
    return ++counter;
}

/* How many op inputs read value v. */
static int readers_of(const comine_model *m, int v)
{
    int n = 0;
    for (int i = 0; i < m->n_ops; i++) n += (m->ops[i].in == v) + (m->ops[i].in2 == v);
    return n;
}

/* The epilogue an eval forward runs inside the folded conv ops[i] (BN ops[i + 1] folded):
 * the PReLU that alone reads the BN's output, then a residual add that alone reads what
 * came before it (the other operand, *residual, not sharing the add's memory).  Sets
 * *out_value to the last value the fused conv writes, *prelu_op to the PReLU op or -1,
 * *residual to the add's other operand or -1, and returns the number of ops it replaces
 * after the BN (0, 1 or 2). */
static int eval_epilogue(const comine_model *m, int i, int *out_value, int *prelu_op, int *residual)
{
    int v = m->ops[i + 1].out, used = 0;
    *prelu_op = *residual = -1;
    int k = i + 2;
    if (k < m->n_ops && m->ops[k].kind == MODEL_OP_PRELU && m->ops[k].in == v && readers_of(m, v) == 1) {
        *prelu_op = k++;
        v = m->ops[*prelu_op].out;
        used++;
    }
    if (k < m->n_ops && m->ops[k].kind == MODEL_OP_ADD && m->ops[k].in != m->ops[k].in2 &&
        (m->ops[k].in == v || m->ops[k].in2 == v) && readers_of(m, v) == 1) {
        const model_op *add = &m->ops[k];
        int other = add->in == v ? add->in2 : add->in;
        if (m->values[other].offset != m->values[add->out].offset) {
            *residual = other;
            v = add->out;
            used++;
        }
    }
    *out_value = v;
    return used;
}

/* Where a folded conv's epilogue is a PReLU alone whose output only another folded conv
 * reads, and that conv's backend runs a PReLU on its input inside it (depthwise layers on
 * the CPU), the PReLU is handed over: the first conv writes the PReLU's input into the
 * PReLU's output value and the second applies it while reading.  Needs every folded
 * conv's plan made. */
static void hand_over_prelus(comine_model *m)
{
    for (int i = 0; i < m->n_ops; i++) {
        m->ops[i].in_prelu = -1;
        m->ops[i].hands_prelu = false;
    }
    for (int i = 0; i < m->n_ops; i++) {
        model_op *op = &m->ops[i];
        if (op->kind != MODEL_OP_CONV || op->fold < 0) continue;
        int last, prelu, residual;
        eval_epilogue(m, i, &last, &prelu, &residual);
        if (prelu < 0 || residual >= 0 || readers_of(m, last) != 1) continue;
        for (int j = i + 1; j < m->n_ops; j++) {
            model_op *next = &m->ops[j];
            if (next->in != last && next->in2 != last) continue;
            if (next->kind == MODEL_OP_CONV && next->in == last && next->fold >= 0 &&
                comine_conv2d_fuses_input_prelu(&next->conv_folded)) {
                next->in_prelu = prelu;
                op->hands_prelu = true;
            }
            break;
        }
    }
}

/* Where a BN that is not folded (before a conv: iresnet's first BN of a block) feeds a folded
 * conv alone and that conv's backend applies a per-channel affine map to its input inside
 * it (comine_conv2d_fuses_input_affine), the BN is handed over: the conv reads the BN's input
 * and applies its eval scale and shift (made by fold_batchnorms) while reading, and the BN
 * does not run.  Only where the BN's input is read again after the conv (kept alive, so the
 * conv's output cannot share its memory) and neither value lives in a scratch buffer. */
static void hand_over_bns(comine_model *m)
{
    for (int i = 0; i < m->n_ops; i++) {
        m->ops[i].handed = false;
        m->ops[i].in_bn = -1;
    }
    for (int i = 0; i + 1 < m->n_ops; i++) {
        model_op *bn = &m->ops[i], *conv = &m->ops[i + 1];
        if (bn->kind != MODEL_OP_BN || bn->affine_offset == SIZE_MAX || conv->fold < 0 || conv->in_prelu >= 0 ||
            !comine_conv2d_fuses_input_affine(&conv->conv_folded))
            continue;
        int last, prelu, residual;
        eval_epilogue(m, i + 1, &last, &prelu, &residual);
        bool read_later = false;
        for (int j = i + 2; j < m->n_ops; j++) read_later |= m->ops[j].in == bn->in || m->ops[j].in2 == bn->in;
        if (!read_later || m->values[bn->in].transient || m->values[last].transient ||
            m->values[last].offset == m->values[bn->in].offset || (residual >= 0 && residual == bn->in))
            continue;
        bn->handed = true;
        conv->in_bn = i;
    }
}

/* Rebuilds the folded weights and biases of every conv with a BN folded into it, from the
 * current parameters and running statistics (on the host: a pass over the conv weights). */
static void fold_batchnorms(comine_model *m)
{
    const comine_backend *be = m->be;
    if (!m->folded) m->folded = comine_backend_alloc(be, m->n_folded);
    size_t cap = 0;
    float *host = NULL;
    for (int i = 0; i < m->n_ops; i++) {
        model_op *op = &m->ops[i];
        if (op->kind != MODEL_OP_CONV || op->fold < 0) continue;
        const model_op *bn = &m->ops[op->fold];
        if (!op->conv_folded.plan)
            comine_conv2d_init(&op->conv_folded, be, op->C, op->H, op->W, op->OC, op->K, op->K, op->stride, op->pad,
                               op->groups, true);
        int OC = op->OC;
        size_t n_w = m->params_table.info[op->w].size, per_oc = n_w / (size_t)OC;
        size_t need = n_w + 6 * (size_t)OC; /* weight, folded bias, conv bias, gamma, beta, mean, var */
        if (need > cap) {
            free(host);
            cap = need;
            host = comine_malloc(cap * sizeof(float));
        }
        float *w = host, *bias = w + n_w, *conv_b = bias + OC, *gamma = conv_b + OC, *beta = gamma + OC;
        float *mean = beta + OC, *var = mean + OC;
        comine_backend_download(be, w, PARAM(op->w), n_w);
        if (op->b >= 0) comine_backend_download(be, conv_b, PARAM(op->b), (size_t)OC);
        else memset(conv_b, 0, (size_t)OC * sizeof(float));
        comine_backend_download(be, gamma, bn->fixed_gamma ? BUF(bn->w) : PARAM(bn->w), (size_t)OC);
        comine_backend_download(be, beta, PARAM(bn->b), (size_t)OC);
        comine_backend_download(be, mean, BUF(bn->running_mean), (size_t)OC);
        comine_backend_download(be, var, BUF(bn->running_var), (size_t)OC);
        for (int oc = 0; oc < OC; oc++) {
            double scale = gamma[oc] / sqrt((double)var[oc] + BN_EPS);
            float *row = w + (size_t)oc * per_oc;
            for (size_t k = 0; k < per_oc; k++) row[k] = (float)(row[k] * scale);
            bias[oc] = (float)(beta[oc] + ((double)conv_b[oc] - mean[oc]) * scale);
        }
        comine_backend_upload(be, m->folded + op->fold_offset, w, n_w + (size_t)OC);
        op->conv_folded.weight_version = next_fold_version();
    }
    /* the eval scale and shift of the BNs a conv may apply to its input, as the backends'
     * eval batch norm computes them */
    for (int i = 0; i < m->n_ops; i++) {
        const model_op *bn = &m->ops[i];
        if (bn->kind != MODEL_OP_BN || bn->affine_offset == SIZE_MAX) continue;
        size_t C = (size_t)bn->C;
        if (6 * C > cap) {
            free(host);
            cap = 6 * C;
            host = comine_malloc(cap * sizeof(float));
        }
        float *scale = host, *shift = scale + C, *gamma = shift + C, *beta = gamma + C, *mean = beta + C;
        float *var = mean + C;
        comine_backend_download(be, gamma, bn->fixed_gamma ? BUF(bn->w) : PARAM(bn->w), C);
        comine_backend_download(be, beta, PARAM(bn->b), C);
        comine_backend_download(be, mean, BUF(bn->running_mean), C);
        comine_backend_download(be, var, BUF(bn->running_var), C);
        for (size_t c = 0; c < C; c++) {
            double s = gamma[c] / sqrt((double)var[c] + BN_EPS);
            scale[c] = (float)s;
            shift[c] = (float)(beta[c] - mean[c] * s);
        }
        comine_backend_upload(be, m->folded + bn->affine_offset, host, 2 * C);
    }
    free(host);
    hand_over_prelus(m);
    hand_over_bns(m);
    m->fold_fresh = true;
}

/* Value v of images [at, ..) of the batch: every value's images are contiguous (NHWC), so a
 * share of the batch is a pointer offset.  The transient values of a part of a split forward
 * live in that part's own scratch buffers (priv[0], priv[1]), from their first image: the
 * shared ones hold, at the same moment, another part's values of other sizes. */
static float *value_at(const comine_model *m, int v, int at, float *const *priv)
{
    if (priv && m->values[v].transient) return priv[m->values[v].scratch];
    return VAL(v) + m->values[v].size * (size_t)at;
}

/* The ops [from, to) on images [at, at + N).  part < 0: the model's own plans and scratch
 * buffers; else those of that part of a split eval forward (priv: its scratch buffers). */
static void run_ops(comine_model *m, int from, int to, int at, int N, int part, float *const *priv, bool training,
                    bool fold, comine_rng *dropout_rng)
{
    const comine_backend *be = m->be;
    for (int i = from; i < to; i++) {
        model_op *op = &m->ops[i];
        float *out = value_at(m, op->out, at, priv);
        const float *in = value_at(m, op->in, at, priv);
        size_t rows = (size_t)m->values[op->in].H * m->values[op->in].W * (size_t)N;
        switch (op->kind) {
        case MODEL_OP_CONV:
            if (fold && op->fold >= 0) {
                const float *w = m->folded + op->fold_offset;
                int last, prelu, residual;
                int skip = eval_epilogue(m, i, &last, &prelu, &residual);
                comine_conv2d *l = part < 0 ? &op->conv_folded : &op->conv_part[part];
                float *y = value_at(m, last, at, priv);
                const float *b = w + m->params_table.info[op->w].size;
                const float *alpha = prelu >= 0 && !op->hands_prelu ? PARAM(m->ops[prelu].w) : NULL;
                const float *res = residual >= 0 ? value_at(m, residual, at, priv) : NULL;
                if (op->in_bn >= 0) {
                    const model_op *bn = &m->ops[op->in_bn];
                    const float *affine = m->folded + bn->affine_offset;
                    comine_conv2d_forward_fused_affine(l, y, value_at(m, bn->in, at, priv), affine, affine + bn->C, w,
                                                       b, alpha, res, N);
                } else {
                    comine_conv2d_forward_fused_in(l, y, in, op->in_prelu >= 0 ? PARAM(m->ops[op->in_prelu].w) : NULL,
                                                   w, b, alpha, res, N);
                }
                i += 1 + skip; /* the BN and the epilogue's ops ran inside the conv */
            } else {
                comine_conv2d_forward(part < 0 ? &op->conv : &op->conv_part[part], out, in, PARAM(op->w),
                                      op->b >= 0 ? PARAM(op->b) : NULL, N);
            }
            break;
        case MODEL_OP_BN: {
            if (fold && (op->folded || op->handed)) break;
            float *save_mean = m->stats + op->stats_offset, *save_rstd = save_mean + op->C;
            const float *gamma = op->fixed_gamma ? BUF(op->w) : PARAM(op->w);
            comine_batchnorm_forward(be, out, save_mean, save_rstd, BUF(op->running_mean), BUF(op->running_var), in,
                                     gamma, PARAM(op->b), rows, op->C, training, BN_MOMENTUM, BN_EPS);
            break;
        }
        case MODEL_OP_PRELU: comine_prelu_forward(be, out, in, PARAM(op->w), rows, op->C); break;
        case MODEL_OP_ADD:
            comine_add_forward(be, out, in, value_at(m, op->in2, at, priv), m->values[op->out].size * (size_t)N);
            break;
        case MODEL_OP_DROPOUT:
            COMINE_ASSERT(!training || dropout_rng != NULL);
            comine_dropout_forward(be, out, m->masks + op->mask_offset * (size_t)m->max_batch, in,
                                   m->values[op->in].size * (size_t)N, op->p, training, dropout_rng);
            break;
        case MODEL_OP_LINEAR:
            comine_linear_forward(be, out, in, PARAM(op->w), op->b >= 0 ? PARAM(op->b) : NULL, N, op->IN, op->OUT);
            break;
        }
    }
}

/* Each part but the first keeps its own copy of the folded weights in the kernels' layout:
 * the split runs only while a copy is at most SPLIT_MAX_WEIGHT_BYTES (it pays on networks of
 * small layers; docs/PERFORMANCE.md) and all the copies together at most
 * SPLIT_MAX_COPIES_BYTES (machines of many threads). */
#define SPLIT_MAX_WEIGHT_BYTES ((size_t)32 << 20)
#define SPLIT_MAX_COPIES_BYTES ((size_t)256 << 20)

/* How many parts an eval forward of N images splits into: one per compute thread, or 0 (no
 * split) where that would leave threads idle (fewer images than threads) or cost too much
 * memory. */
static int split_parts_for(const comine_model *m, int N)
{
    int parts = comine_backend_split_parts(m->be);
    size_t copy = m->n_folded * sizeof(float);
    if (parts < 2 || N < parts || copy > SPLIT_MAX_WEIGHT_BYTES || copy * (size_t)(parts - 1) > SPLIT_MAX_COPIES_BYTES)
        return 0;
    return parts;
}

/* COMINE_EVAL_SPLIT_AUTO's group: the largest of SPLIT_GROUP_MAX, ..., 2, 1 images whose
 * largest activation before the first linear op takes at most SPLIT_GROUP_BYTES.  Measured
 * on MobileFaceNet @112 (1.6 MB per image at 56x56): groups of 4 ran 3-4% faster than 8;
 * on iresnet18 x0.25 @64 (0.26 MB): 8 and 16 level, 4 5-12% slower (docs/PERFORMANCE.md). */
#define SPLIT_GROUP_MAX 8
#define SPLIT_GROUP_BYTES ((size_t)8 << 20)

int comine_model_eval_split_images(const comine_model *m)
{
    if (m->eval_split != COMINE_EVAL_SPLIT_AUTO) return m->eval_split;
    size_t largest = 1;
    for (int i = 0; i < m->n_ops && m->ops[i].kind != MODEL_OP_LINEAR; i++) {
        const model_op *op = &m->ops[i];
        if (m->values[op->in].size > largest) largest = m->values[op->in].size;
        if (m->values[op->out].size > largest) largest = m->values[op->out].size;
    }
    int group = SPLIT_GROUP_MAX;
    while (group > 1 && (size_t)group * largest * sizeof(float) > SPLIT_GROUP_BYTES) group /= 2;
    return group;
}

/* The split eval forward: each part takes images [N part / parts, N (part + 1) / parts)
 * through the ops before the first linear one, a group of images at a time (their
 * activations then stay in the caches). */
typedef struct split_job {
    comine_model *m;
    int ops, N, parts, group;
} split_job;

static size_t split_scratch_floats(const comine_model *m, int b, int group)
{
    return (m->scratch_image[b] * (size_t)group + 15) & ~(size_t)15;
}

/* Part 0 runs on the calling thread with the model's own plans and scratch buffers (no
 * other part touches them); part p > 0 with plans conv_part[p - 1] and scratch buffers of
 * its own. */
static void split_part(void *ctx, int part)
{
    const split_job *j = ctx;
    comine_model *m = j->m;
    const int chunk = j->group;
    float *priv[2] = {NULL, NULL};
    if (part > 0) {
        size_t s0 = split_scratch_floats(m, 0, chunk), s1 = split_scratch_floats(m, 1, chunk);
        priv[0] = m->split_scratch + (s0 + s1) * (size_t)(part - 1);
        priv[1] = priv[0] + s0;
    }
    int lo = (int)((long)j->N * part / j->parts), hi = (int)((long)j->N * (part + 1) / j->parts);
    for (int at = lo; at < hi; at += chunk)
        run_ops(m, 0, j->ops, at, hi - at < chunk ? hi - at : chunk, part - 1, part > 0 ? priv : NULL, false, true,
                NULL);
}

/* The ops a split forward runs per part (those before the first linear one: the BLAS
 * matrix products run on the whole batch; a value they read is never transient), after
 * making every part's conv plans and scratch buffers. */
static int split_prepare(comine_model *m, int parts, int group)
{
    int ops = 0;
    while (ops < m->n_ops && m->ops[ops].kind != MODEL_OP_LINEAR) ops++;
    for (int i = ops; i < m->n_ops; i++)
        COMINE_ASSERT(!m->values[m->ops[i].in].transient && (m->ops[i].in2 < 0 || !m->values[m->ops[i].in2].transient));
    int extra = parts - 1; /* part 0 has the model's own plans and scratch buffers */
    for (int i = 0; i < ops; i++) {
        model_op *op = &m->ops[i];
        if (op->kind != MODEL_OP_CONV) continue;
        if (op->n_part < extra) {
            op->conv_part = comine_realloc(op->conv_part, (size_t)extra * sizeof *op->conv_part);
            for (int p = op->n_part; p < extra; p++)
                comine_conv2d_init(&op->conv_part[p], m->be, op->C, op->H, op->W, op->OC, op->K, op->K, op->stride,
                                   op->pad, op->groups, op->fold >= 0 || op->b >= 0);
            op->n_part = extra;
        }
        for (int p = 0; p < extra; p++) op->conv_part[p].weight_version = op->conv_folded.weight_version;
    }
    size_t need = (split_scratch_floats(m, 0, group) + split_scratch_floats(m, 1, group)) * (size_t)extra;
    if (need > m->split_scratch_floats) {
        if (m->split_scratch) comine_backend_free(m->be, m->split_scratch);
        m->split_scratch = comine_backend_alloc(m->be, need);
        m->split_scratch_floats = need;
    }
    return ops;
}

void comine_model_forward(comine_model *m, float *emb, const float *images, int N, bool training,
                          comine_rng *dropout_rng)
{
    COMINE_ASSERT(N >= 1 && N <= m->max_batch);
    const comine_backend *be = m->be;
    bool fold = !training && m->fold_bn && m->n_folded > 0;
    if (training) m->fold_fresh = false; /* the running statistics move */
    else if (fold && !m->fold_fresh) fold_batchnorms(m);
    comine_backend_upload(be, VAL(0), images, m->values[0].size * (size_t)N);
    int group = fold ? comine_model_eval_split_images(m) : 0;
    int parts = group > 0 ? split_parts_for(m, N) : 0;
    int from = 0;
    if (parts > 1) {
        split_job job = {.m = m, .N = N, .parts = parts, .group = group};
        job.ops = split_prepare(m, parts, group);
        comine_backend_run_split(be, parts, split_part, &job);
        from = job.ops;
    }
    run_ops(m, from, m->n_ops, 0, N, -1, NULL, training, fold, dropout_rng);
    comine_backend_download(be, emb, VAL(m->ops[m->n_ops - 1].out), (size_t)m->arch.emb_dim * N);
    m->last_N = N;
    m->last_training = training;
}

/* The gradient offset from which every parameter's gradient is final once ops i.. have run
 * their backward: the lowest offset of their parameters, when every parameter of the ops
 * before i lies below it (the tables are built in forward order); else none yet. */
static size_t grads_final_from(const comine_model *m, int i)
{
    size_t lo = SIZE_MAX, below = 0;
    for (int j = 0; j < m->n_ops; j++) {
        const model_op *op = &m->ops[j];
        int t[2] = {op->kind == MODEL_OP_BN && op->fixed_gamma ? -1 : op->w, op->b};
        if (op->kind == MODEL_OP_ADD || op->kind == MODEL_OP_DROPOUT) continue;
        for (int k = 0; k < 2; k++) {
            if (t[k] < 0) continue;
            const size_t off = m->params_table.info[t[k]].offset, end = off + m->params_table.info[t[k]].size;
            if (j >= i && off < lo) lo = off;
            if (j < i && end > below) below = end;
        }
    }
    const size_t n = m->params_table.total;
    if (lo == SIZE_MAX) lo = n;
    return below <= lo ? lo : n;
}

void comine_model_backward(comine_model *m, const float *demb, int N)
{
    comine_model_backward_notify(m, demb, N, NULL, NULL);
}

void comine_model_backward_notify(comine_model *m, const float *demb, int N, comine_grads_ready_fn ready, void *ctx)
{
    COMINE_ASSERT(m->last_training && m->last_N == N);
    const comine_backend *be = m->be;
    int last = m->ops[m->n_ops - 1].out;
    comine_backend_upload(be, DVAL(last), demb, (size_t)m->arch.emb_dim * N);
    for (int i = m->n_ops - 1; i >= 0; i--) {
        model_op *op = &m->ops[i];
        size_t in_n = m->values[op->in].size * (size_t)N;
        /* convolution, batch norm and PReLU overwrite a gradient they are the first to
         * write (no clearing, no extra pass); the other ops accumulate into a cleared one */
        bool writes = op->zero_in && op->in > 0 &&
                      (op->kind == MODEL_OP_CONV || op->kind == MODEL_OP_BN || op->kind == MODEL_OP_PRELU);
        if (op->zero_in && !writes) comine_backend_zero(be, DVAL(op->in), in_n);
        if (op->in2 >= 0 && op->zero_in2) comine_backend_zero(be, DVAL(op->in2), m->values[op->in2].size * (size_t)N);
        float *dinp = op->in > 0 ? DVAL(op->in) : NULL;
        const float *dout = DVAL(op->out);
        const float *in = VAL(op->in);
        size_t rows = (size_t)m->values[op->in].H * m->values[op->in].W * (size_t)N;
        if (i > 0 && m->ops[i - 1].recompute) {
            const model_op *bn = &m->ops[i - 1];
            COMINE_ASSERT(bn->out == op->in);
            const float *save_mean = m->stats + bn->stats_offset, *save_rstd = save_mean + bn->C;
            comine_batchnorm_apply(be, VAL(bn->out), VAL(bn->in), save_mean, save_rstd,
                                   bn->fixed_gamma ? BUF(bn->w) : PARAM(bn->w), PARAM(bn->b), rows, bn->C);
        }
        switch (op->kind) {
        case MODEL_OP_CONV:
            if (writes)
                comine_conv2d_backward_overwrite(&op->conv, dinp, GRAD(op->w), op->b >= 0 ? GRAD(op->b) : NULL, dout,
                                                 in, PARAM(op->w), N);
            else
                comine_conv2d_backward(&op->conv, dinp, GRAD(op->w), op->b >= 0 ? GRAD(op->b) : NULL, dout, in,
                                       PARAM(op->w), N);
            break;
        case MODEL_OP_BN: {
            const float *save_mean = m->stats + op->stats_offset, *save_rstd = save_mean + op->C;
            const float *gamma = op->fixed_gamma ? BUF(op->w) : PARAM(op->w);
            if (writes)
                comine_batchnorm_backward_overwrite(be, dinp, op->fixed_gamma ? NULL : GRAD(op->w), GRAD(op->b), dout,
                                                    in, save_mean, save_rstd, gamma, rows, op->C);
            else
                comine_batchnorm_backward(be, dinp, op->fixed_gamma ? NULL : GRAD(op->w), GRAD(op->b), dout, in,
                                          save_mean, save_rstd, gamma, rows, op->C);
            break;
        }
        case MODEL_OP_PRELU:
            if (writes) comine_prelu_backward_overwrite(be, dinp, GRAD(op->w), dout, in, PARAM(op->w), rows, op->C);
            else comine_prelu_backward(be, dinp, GRAD(op->w), dout, in, PARAM(op->w), rows, op->C);
            break;
        case MODEL_OP_ADD:
            if (dinp) comine_accumulate(be, dinp, dout, in_n);
            if (op->in2 > 0) comine_accumulate(be, DVAL(op->in2), dout, in_n);
            break;
        case MODEL_OP_DROPOUT:
            if (dinp)
                comine_dropout_backward(be, dinp, dout, m->masks + op->mask_offset * (size_t)m->max_batch, in_n, op->p);
            break;
        case MODEL_OP_LINEAR:
            comine_linear_backward(be, dinp, GRAD(op->w), op->b >= 0 ? GRAD(op->b) : NULL, dout, in, PARAM(op->w), N,
                                   op->IN, op->OUT);
            break;
        }
        if (ready && (op->w >= 0 || op->b >= 0)) ready(ctx, grads_final_from(m, i));
    }
    if (ready) ready(ctx, 0);
}

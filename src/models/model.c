/* model.c: the face embedding backbones as layer graphs over nn.h.
 *
 * A model is a list of values (activations, NHWC, one per layer output) and a list of ops
 * (conv, batch norm, PReLU, residual add, dropout, linear) that read and write them.  The
 * graph builders below (iresnet, MobileFaceNet) follow insightface's modules in
 * registration order, so the tensor table they build carries insightface's state_dict
 * names in state_dict order.  Everything is sized at create for max_batch images:
 * - parameters: ONE contiguous buffer (gradients mirror it) described by the table;
 * - buffers: BN running statistics and the fixed BN1d weight of the iresnet embedding
 *   (requires_grad False in insightface: kept out of the trainable parameters);
 * - activations: every value of a training forward is kept for backward (one arena),
 *   except the output of a BN that only the next op reads (a conv or a PReLU): that one is
 *   written to one of two scratch buffers (alternately) and computed again from the BN's
 *   input and saved statistics just before the reading op's backward;
 *   the eval forward writes into the same arena (it overwrites a pending training forward)
 *   and runs each BN that only reads a conv's output folded into that conv;
 * - gradients of values: slots shared by liveness during backward (a second arena). */
#include "comine/model.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "comine/nn.h"
#include "models/model_impl.h"

#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f

/* ---- architectures ------------------------------------------------------------------- */

static const struct {
    const char *name;
    int layers[4];
} iresnet_variants[] = {
    {"iresnet18", {2, 2, 2, 2}},
    {"iresnet34", {3, 4, 6, 3}},
    {"iresnet50", {3, 4, 14, 3}},
    {"iresnet100", {3, 13, 30, 3}},
};
#define N_IRESNET ((int)(sizeof iresnet_variants / sizeof iresnet_variants[0]))

static int iresnet_index(const char *name)
{
    for (int i = 0; i < N_IRESNET; i++)
        if (!strcmp(name, iresnet_variants[i].name)) return i;
    return -1;
}

static bool is_mobilefacenet(const char *name) { return !strcmp(name, "mobilefacenet"); }

comine_status comine_arch_check(const comine_arch *arch)
{
    if (memchr(arch->name, 0, sizeof arch->name) == NULL)
        return comine_fail(COMINE_ERR_ARG, "architecture name is not terminated");
    bool mbf = is_mobilefacenet(arch->name);
    if (iresnet_index(arch->name) < 0 && !mbf)
        return comine_fail(COMINE_ERR_ARG,
                           "unknown architecture '%s' (iresnet18, iresnet34, iresnet50, iresnet100, mobilefacenet)",
                           arch->name);
    if (!(arch->emb_dim >= 1 && arch->emb_dim <= COMINE_MODEL_MAX_EMB))
        return comine_fail(COMINE_ERR_ARG, "%s: embedding size %d out of range [1, %d]", arch->name, arch->emb_dim,
                           COMINE_MODEL_MAX_EMB);
    if (!(arch->dropout >= 0.0f && arch->dropout < 1.0f))
        return comine_fail(COMINE_ERR_ARG, "%s: dropout %g out of range [0, 1)", arch->name, (double)arch->dropout);
    if (mbf) {
        if (arch->width != 1.0f)
            return comine_fail(COMINE_ERR_ARG, "mobilefacenet: width must be 1 (got %g)", (double)arch->width);
        if (arch->input != 112)
            return comine_fail(COMINE_ERR_ARG, "mobilefacenet: input must be 112 (got %d)", arch->input);
        if (arch->dropout != 0.0f)
            return comine_fail(COMINE_ERR_ARG, "mobilefacenet: has no dropout (got %g)", (double)arch->dropout);
        return COMINE_OK;
    }
    if (!(arch->width > 0.0f && arch->width <= COMINE_MODEL_MAX_WIDTH))
        return comine_fail(COMINE_ERR_ARG, "%s: width %g out of range (0, %g]", arch->name, (double)arch->width,
                           (double)COMINE_MODEL_MAX_WIDTH);
    if (arch->input < 16 || arch->input > 448 || arch->input % 16 != 0)
        return comine_fail(COMINE_ERR_ARG, "%s: input size %d must be a multiple of 16 in [16, 448] (112, 64, 32)",
                           arch->name, arch->input);
    return COMINE_OK;
}

comine_status comine_arch_default(comine_arch *arch, const char *name)
{
    memset(arch, 0, sizeof *arch);
    if (!name || strlen(name) >= sizeof arch->name)
        return comine_fail(COMINE_ERR_ARG, "unknown architecture '%s'", name ? name : "(null)");
    strcpy(arch->name, name);
    arch->width = 1.0f;
    arch->input = 112;
    arch->emb_dim = 512;
    arch->dropout = 0.0f;
    return comine_arch_check(arch);
}

/* Channels of an iresnet stage at width w: round(c * w), at least 1. */
static int scaled_channels(int c, float w)
{
    int v = (int)floor((double)c * (double)w + 0.5);
    return v < 1 ? 1 : v;
}

/* ---- graph building ------------------------------------------------------------------- */

/* Formats a tensor or module name into a NAME_LEN buffer (names are far shorter). */
#define NAME_LEN 160
static void fmt_name(char *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fmt_name(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, NAME_LEN, fmt, ap);
    va_end(ap);
    COMINE_ASSERT(n >= 0 && n < NAME_LEN);
}

static int add_value(comine_model *m, int H, int W, int C)
{
    if (m->n_values == m->cap_values) {
        m->cap_values = m->cap_values ? 2 * m->cap_values : 64;
        m->values = comine_realloc(m->values, (size_t)m->cap_values * sizeof *m->values);
    }
    model_value *v = &m->values[m->n_values];
    memset(v, 0, sizeof *v);
    v->H = H;
    v->W = W;
    v->C = C;
    v->size = (size_t)H * W * C;
    return m->n_values++;
}

static model_op *add_op(comine_model *m, model_op_kind kind)
{
    if (m->n_ops == m->cap_ops) {
        m->cap_ops = m->cap_ops ? 2 * m->cap_ops : 64;
        m->ops = comine_realloc(m->ops, (size_t)m->cap_ops * sizeof *m->ops);
    }
    model_op *op = &m->ops[m->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->in = op->in2 = op->out = -1;
    op->w = op->b = -1;
    op->fold = -1;
    return op;
}

/* Appends a named tensor to the parameter table (buffer = false) or the buffer table. */
static int add_tensor(comine_model *m, bool buffer, const char *prefix, const char *suffix, model_init init,
                      int fan_in, int ndim, int d0, int d1, int d2, int d3)
{
    model_table *t = buffer ? &m->bufs : &m->params_table;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->info = comine_realloc(t->info, (size_t)t->cap * sizeof *t->info);
        t->init = comine_realloc(t->init, (size_t)t->cap * sizeof *t->init);
        t->fan_in = comine_realloc(t->fan_in, (size_t)t->cap * sizeof *t->fan_in);
    }
    char name[NAME_LEN];
    fmt_name(name, "%s.%s", prefix, suffix);
    comine_tensor_info *ti = &t->info[t->n];
    memset(ti, 0, sizeof *ti);
    ti->name = comine_strdup(name);
    ti->ndim = ndim;
    int dims[4] = {d0, d1, d2, d3};
    ti->size = 1;
    for (int i = 0; i < 4; i++) {
        ti->shape[i] = i < ndim ? dims[i] : 0;
        if (i < ndim) ti->size *= (size_t)dims[i];
    }
    ti->offset = t->total;
    t->total += ti->size;
    t->init[t->n] = init;
    t->fan_in[t->n] = fan_in;
    return t->n++;
}

static int g_conv(comine_model *m, const char *prefix, int in, int OC, int K, int stride, int pad, int groups,
                  bool bias)
{
    const model_value *x = &m->values[in];
    COMINE_ASSERT(x->C % groups == 0 && OC % groups == 0);
    int OH = (x->H + 2 * pad - K) / stride + 1, OW = (x->W + 2 * pad - K) / stride + 1;
    COMINE_ASSERT(OH >= 1 && OW >= 1);
    int C = x->C, H = x->H, W = x->W;
    int fan_in = (C / groups) * K * K;
    int w = add_tensor(m, false, prefix, "weight", MODEL_INIT_KAIMING, fan_in, 4, OC, C / groups, K, K);
    int b = bias ? add_tensor(m, false, prefix, "bias", MODEL_INIT_ZERO, fan_in, 1, OC, 0, 0, 0) : -1;
    int out = add_value(m, OH, OW, OC);
    model_op *op = add_op(m, MODEL_OP_CONV);
    op->in = in;
    op->out = out;
    op->w = w;
    op->b = b;
    op->C = C;
    op->H = H;
    op->W = W;
    op->OC = OC;
    op->K = K;
    op->stride = stride;
    op->pad = pad;
    op->groups = groups;
    m->flops += 2.0 * OH * OW * (double)OC * (C / groups) * K * K;
    return out;
}

/* Batch norm over the channels of `in` (2-d or, for H = W = 1, 1-d).  fixed_gamma: the
 * weight is a buffer held at 1 (insightface's embedding BatchNorm1d). */
static int g_bn(comine_model *m, const char *prefix, int in, bool fixed_gamma)
{
    int C = m->values[in].C;
    int out = add_value(m, m->values[in].H, m->values[in].W, C);
    model_op *op = add_op(m, MODEL_OP_BN);
    op->in = in;
    op->out = out;
    op->C = C;
    op->fixed_gamma = fixed_gamma;
    op->w = add_tensor(m, fixed_gamma, prefix, "weight", MODEL_INIT_ONE, 0, 1, C, 0, 0, 0);
    op->b = add_tensor(m, false, prefix, "bias", MODEL_INIT_ZERO, 0, 1, C, 0, 0, 0);
    op->running_mean = add_tensor(m, true, prefix, "running_mean", MODEL_INIT_ZERO, 0, 1, C, 0, 0, 0);
    op->running_var = add_tensor(m, true, prefix, "running_var", MODEL_INIT_ONE, 0, 1, C, 0, 0, 0);
    op->stats_offset = m->n_stats;
    m->n_stats += 2 * (size_t)C;
    return out;
}

static int g_prelu(comine_model *m, const char *prefix, int in)
{
    int C = m->values[in].C;
    int out = add_value(m, m->values[in].H, m->values[in].W, C);
    model_op *op = add_op(m, MODEL_OP_PRELU);
    op->in = in;
    op->out = out;
    op->C = C;
    op->w = add_tensor(m, false, prefix, "weight", MODEL_INIT_PRELU, 0, 1, C, 0, 0, 0);
    return out;
}

static int g_add(comine_model *m, int a, int b)
{
    const model_value *va = &m->values[a], *vb = &m->values[b];
    COMINE_ASSERT(va->H == vb->H && va->W == vb->W && va->C == vb->C);
    int out = add_value(m, va->H, va->W, va->C);
    model_op *op = add_op(m, MODEL_OP_ADD);
    op->in = a;
    op->in2 = b;
    op->out = out;
    return out;
}

static int g_dropout(comine_model *m, int in, float p)
{
    int out = add_value(m, m->values[in].H, m->values[in].W, m->values[in].C);
    model_op *op = add_op(m, MODEL_OP_DROPOUT);
    op->in = in;
    op->out = out;
    op->p = p;
    op->mask_offset = m->n_mask;
    m->n_mask += m->values[in].size;
    return out;
}

/* A linear layer on the flattened value (H, W, C order: NHWC). */
static int g_linear(comine_model *m, const char *prefix, int in, int OUT, bool bias)
{
    int IN = (int)m->values[in].size;
    int out = add_value(m, 1, 1, OUT);
    model_op *op = add_op(m, MODEL_OP_LINEAR);
    op->in = in;
    op->out = out;
    op->IN = IN;
    op->OUT = OUT;
    op->w = add_tensor(m, false, prefix, "weight", MODEL_INIT_LINEAR, IN, 2, OUT, IN, 0, 0);
    op->b = bias ? add_tensor(m, false, prefix, "bias", MODEL_INIT_LINEAR, IN, 1, OUT, 0, 0, 0) : -1;
    m->flops += 2.0 * IN * (double)OUT;
    return out;
}

/* insightface's IResNet: stem, four stages of IBasicBlocks (each stage starts with stride 2
 * and a conv1x1 + BN shortcut), BN2d, dropout, flatten, FC, BatchNorm1d with fixed weight. */
static void build_iresnet(comine_model *m, const int layers[4])
{
    const comine_arch *a = &m->arch;
    char p[NAME_LEN], q[NAME_LEN];
    int x = add_value(m, a->input, a->input, 3);
    int inplanes = scaled_channels(64, a->width);
    x = g_conv(m, "conv1", x, inplanes, 3, 1, 1, 1, false);
    x = g_bn(m, "bn1", x, false);
    x = g_prelu(m, "prelu", x);
    for (int s = 0; s < 4; s++) {
        int planes = scaled_channels(64 << s, a->width);
        for (int b = 0; b < layers[s]; b++) {
            int stride = b == 0 ? 2 : 1;
            fmt_name(p, "layer%d.%d", s + 1, b);
            int in = x;
            fmt_name(q, "%s.bn1", p);
            int y = g_bn(m, q, in, false);
            fmt_name(q, "%s.conv1", p);
            y = g_conv(m, q, y, planes, 3, 1, 1, 1, false);
            fmt_name(q, "%s.bn2", p);
            y = g_bn(m, q, y, false);
            fmt_name(q, "%s.prelu", p);
            y = g_prelu(m, q, y);
            fmt_name(q, "%s.conv2", p);
            y = g_conv(m, q, y, planes, 3, stride, 1, 1, false);
            fmt_name(q, "%s.bn3", p);
            y = g_bn(m, q, y, false);
            int shortcut = in;
            if (stride != 1 || inplanes != planes) {
                fmt_name(q, "%s.downsample.0", p);
                shortcut = g_conv(m, q, in, planes, 1, stride, 0, 1, false);
                fmt_name(q, "%s.downsample.1", p);
                shortcut = g_bn(m, q, shortcut, false);
            }
            x = g_add(m, y, shortcut);
            inplanes = planes;
        }
    }
    x = g_bn(m, "bn2", x, false);
    if (a->dropout > 0.0f) x = g_dropout(m, x, a->dropout);
    x = g_linear(m, "fc", x, a->emb_dim, true);
    g_bn(m, "features", x, true);
}

/* MobileFaceNet pieces, named as insightface's modules (each a Sequential `layers`). */
static int mbf_conv_block(comine_model *m, const char *prefix, int x, int OC, int K, int stride, int pad,
                          int groups, bool prelu)
{
    char q[NAME_LEN];
    fmt_name(q, "%s.layers.0", prefix);
    x = g_conv(m, q, x, OC, K, stride, pad, groups, false);
    fmt_name(q, "%s.layers.1", prefix);
    x = g_bn(m, q, x, false);
    if (prelu) {
        fmt_name(q, "%s.layers.2", prefix);
        x = g_prelu(m, q, x);
    }
    return x;
}

static int mbf_depthwise(comine_model *m, const char *prefix, int x, int out_c, bool residual, int stride,
                         int groups)
{
    char q[NAME_LEN];
    int in = x;
    fmt_name(q, "%s.layers.0", prefix);
    x = mbf_conv_block(m, q, x, groups, 1, 1, 0, 1, true);
    fmt_name(q, "%s.layers.1", prefix);
    x = mbf_conv_block(m, q, x, groups, 3, stride, 1, groups, true);
    fmt_name(q, "%s.layers.2", prefix);
    x = mbf_conv_block(m, q, x, out_c, 1, 1, 0, 1, false);
    return residual ? g_add(m, in, x) : x;
}

static int mbf_residual(comine_model *m, const char *prefix, int x, int c, int num_block, int groups)
{
    char q[NAME_LEN];
    for (int i = 0; i < num_block; i++) {
        fmt_name(q, "%s.layers.%d", prefix, i);
        x = mbf_depthwise(m, q, x, c, true, 1, groups);
    }
    return x;
}

/* insightface's get_mbf: MobileFaceNet(blocks = (1, 4, 6, 2), scale = 2), 112 x 112. */
static void build_mobilefacenet(comine_model *m)
{
    const int scale = 2;
    int x = add_value(m, 112, 112, 3);
    x = mbf_conv_block(m, "layers.0", x, 64 * scale, 3, 2, 1, 1, true);
    x = mbf_conv_block(m, "layers.1", x, 64 * scale, 3, 1, 1, 64, true);
    x = mbf_depthwise(m, "layers.2", x, 64 * scale, false, 2, 128);
    x = mbf_residual(m, "layers.3", x, 64 * scale, 4, 128);
    x = mbf_depthwise(m, "layers.4", x, 128 * scale, false, 2, 256);
    x = mbf_residual(m, "layers.5", x, 128 * scale, 6, 256);
    x = mbf_depthwise(m, "layers.6", x, 128 * scale, false, 2, 512);
    x = mbf_residual(m, "layers.7", x, 128 * scale, 2, 256);
    x = mbf_conv_block(m, "conv_sep", x, 512, 1, 1, 0, 1, true);
    x = mbf_conv_block(m, "features.layers.0", x, 512, m->values[x].H, 1, 0, 512, false);
    x = g_linear(m, "features.layers.2", x, m->arch.emb_dim, false);
    g_bn(m, "features.layers.3", x, false);
}

/* ---- memory planning ------------------------------------------------------------------ */

/* Gradient slots for the values: walking the ops backwards, a value's gradient is live from
 * its first use there (its last consumer in forward order) until its producer has run.
 * Slots are reused greedily (smallest free slot that fits, else grow or add one). */
static void plan_grad_slots(comine_model *m)
{
    int n_slots = 0, cap = 16;
    size_t *slot_size = comine_malloc((size_t)cap * sizeof *slot_size);
    bool *slot_free = comine_malloc((size_t)cap * sizeof *slot_free);
    for (int v = 0; v < m->n_values; v++) m->values[v].grad_slot = -1;
    int last = m->ops[m->n_ops - 1].out;
    for (int oi = m->n_ops; oi >= 0; oi--) {
        /* oi == n_ops: the embedding gradient enters before the last op runs */
        int want[2] = {-1, -1};
        int release = -1;
        if (oi == m->n_ops) {
            want[0] = last;
        } else {
            model_op *op = &m->ops[oi];
            want[0] = op->in;
            want[1] = op->in2;
            release = op->out;
            op->zero_in = op->zero_in2 = false;
        }
        for (int k = 0; k < 2; k++) {
            int v = want[k];
            if (v <= 0 || m->values[v].grad_slot >= 0) continue; /* value 0 = images: no gradient */
            size_t need = m->values[v].size * (size_t)m->max_batch;
            int best = -1, largest = -1;
            for (int s = 0; s < n_slots; s++) {
                if (!slot_free[s]) continue;
                if (slot_size[s] >= need && (best < 0 || slot_size[s] < slot_size[best])) best = s;
                if (largest < 0 || slot_size[s] > slot_size[largest]) largest = s;
            }
            if (best < 0 && largest >= 0) {
                best = largest;
                slot_size[best] = need;
            }
            if (best < 0) {
                if (n_slots == cap) {
                    cap *= 2;
                    slot_size = comine_realloc(slot_size, (size_t)cap * sizeof *slot_size);
                    slot_free = comine_realloc(slot_free, (size_t)cap * sizeof *slot_free);
                }
                best = n_slots++;
                slot_size[best] = need;
            }
            slot_free[best] = false;
            m->values[v].grad_slot = best;
            if (oi < m->n_ops) {
                if (k == 0) m->ops[oi].zero_in = true;
                else m->ops[oi].zero_in2 = true;
            }
        }
        if (release > 0 && m->values[release].grad_slot >= 0) slot_free[m->values[release].grad_slot] = true;
    }
    size_t *slot_off = comine_malloc((size_t)(n_slots ? n_slots : 1) * sizeof *slot_off);
    size_t total = 0;
    for (int s = 0; s < n_slots; s++) {
        slot_off[s] = total;
        total += (slot_size[s] + 15) & ~(size_t)15;
    }
    for (int v = 0; v < m->n_values; v++)
        m->values[v].grad_offset = m->values[v].grad_slot >= 0 ? slot_off[m->values[v].grad_slot] : 0;
    m->n_dacts = total;
    free(slot_size);
    free(slot_free);
    free(slot_off);
}

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
    int ir = iresnet_index(arch->name);
    if (ir >= 0) build_iresnet(m, iresnet_variants[ir].layers);
    else build_mobilefacenet(m);

    for (int i = 0; i < m->n_ops; i++) {
        model_op *op = &m->ops[i];
        if (op->kind != MODEL_OP_CONV) continue;
        comine_conv2d_init(&op->conv, be, op->C, op->H, op->W, op->OC, op->K, op->K, op->stride, op->pad, op->groups,
                           op->b >= 0);
        COMINE_ASSERT(op->conv.OH == m->values[op->out].H && op->conv.OW == m->values[op->out].W);
    }
    /* A residual add writes in place over an operand that nothing else reads: no op's
     * backward reads its own output, and the add's backward reads no input, so that
     * operand (the branch's last BN output) is dead once added. */
    int *uses = comine_calloc((size_t)m->n_values, sizeof *uses);
    int *alias = comine_malloc((size_t)m->n_values * sizeof *alias);
    for (int i = 0; i < m->n_ops; i++) {
        uses[m->ops[i].in]++;
        if (m->ops[i].in2 >= 0) uses[m->ops[i].in2]++;
    }
    /* A BN right after a conv, reading that conv's output and nothing else reading it,
     * folds into the conv in an eval forward (the conv then writes the BN's output). */
    for (int i = 0; i + 1 < m->n_ops; i++) {
        model_op *conv = &m->ops[i], *bn = &m->ops[i + 1];
        if (conv->kind != MODEL_OP_CONV || bn->kind != MODEL_OP_BN || bn->in != conv->out || uses[conv->out] != 1)
            continue;
        COMINE_ASSERT(bn->C == conv->OC);
        conv->fold = i + 1;
        conv->fold_offset = m->n_folded;
        bn->folded = true;
        m->n_folded += (m->params_table.info[conv->w].size + (size_t)conv->OC + 15) & ~(size_t)15;
    }
    m->fold_bn = true;
    for (int v = 0; v < m->n_values; v++) alias[v] = -1;
    for (int i = 0; i < m->n_ops; i++) {
        const model_op *op = &m->ops[i];
        if (op->kind != MODEL_OP_ADD || op->in == op->in2) continue;
        if (op->in > 0 && uses[op->in] == 1 && m->values[op->in].size == m->values[op->out].size)
            alias[op->out] = op->in;
        else if (op->in2 > 0 && uses[op->in2] == 1 && m->values[op->in2].size == m->values[op->out].size)
            alias[op->out] = op->in2;
    }
    /* Transient BN outputs, in op order, alternate between two scratch buffers: an eval
     * forward's folded conv may read one transient value and write the next. */
    int parity = 0;
    size_t scratch[2] = {0, 0};
    for (int i = 0; i + 1 < m->n_ops; i++) {
        model_op *bn = &m->ops[i];
        const model_op *next = &m->ops[i + 1];
        if (bn->kind != MODEL_OP_BN || uses[bn->out] != 1 || next->in != bn->out || next->in2 == bn->out ||
            (next->kind != MODEL_OP_CONV && next->kind != MODEL_OP_PRELU))
            continue;
        model_value *v = &m->values[bn->out];
        bn->recompute = true;
        v->transient = true;
        v->offset = (size_t)parity; /* which scratch buffer, until the arena is laid out */
        size_t need = (v->size * (size_t)max_batch + 15) & ~(size_t)15;
        if (need > scratch[parity]) scratch[parity] = need;
        parity ^= 1;
    }
    size_t total = 0;
    for (int v = 0; v < m->n_values; v++) {
        if (alias[v] >= 0 || m->values[v].transient) continue;
        m->values[v].offset = total;
        total += (m->values[v].size * (size_t)max_batch + 15) & ~(size_t)15;
    }
    for (int v = 0; v < m->n_values; v++) {
        if (alias[v] >= 0) m->values[v].offset = m->values[alias[v]].offset;
        else if (m->values[v].transient) m->values[v].offset = m->values[v].offset ? total + scratch[0] : total;
    }
    free(uses);
    free(alias);
    m->n_acts = total + scratch[0] + scratch[1];
    plan_grad_slots(m);

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

static void free_table(model_table *t);

comine_model *comine_model_plan(const comine_arch *arch)
{
    if (comine_arch_check(arch) != COMINE_OK) return NULL;
    comine_model *m = comine_calloc(1, sizeof *m);
    m->arch = *arch;
    m->max_batch = 1;
    int ir = iresnet_index(arch->name);
    if (ir >= 0) build_iresnet(m, iresnet_variants[ir].layers);
    else build_mobilefacenet(m);
    return m;
}

void comine_model_plan_free(comine_model *m)
{
    if (!m) return;
    free_table(&m->params_table);
    free_table(&m->bufs);
    free(m->values);
    free(m->ops);
    free(m);
}

comine_status comine_model_create(comine_model **out, const comine_arch *arch, const comine_backend *be,
                                  int max_batch)
{
    comine_status st = comine_model_create_uninit(out, arch, be, max_batch);
    if (st == COMINE_OK) comine_model_init(*out, 0);
    return st;
}

static void free_table(model_table *t)
{
    for (int i = 0; i < t->n; i++) free((char *)t->info[i].name);
    free(t->info);
    free(t->init);
    free(t->fan_in);
}

void comine_model_free(comine_model *m)
{
    if (!m) return;
    for (int i = 0; i < m->n_ops; i++)
        if (m->ops[i].kind == MODEL_OP_CONV) {
            comine_conv2d_free(&m->ops[i].conv);
            comine_conv2d_free(&m->ops[i].conv_folded);
        }
    if (m->folded) comine_backend_free(m->be, m->folded);
    comine_backend_free(m->be, m->params);
    comine_backend_free(m->be, m->grads);
    comine_backend_free(m->be, m->buffers);
    comine_backend_free(m->be, m->acts);
    if (!m->dacts_borrowed) comine_backend_free(m->be, m->dacts);
    comine_backend_free(m->be, m->stats);
    free(m->masks);
    free_table(&m->params_table);
    free_table(&m->bufs);
    free(m->values);
    free(m->ops);
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

void comine_model_zero_grad(comine_model *m)
{
    comine_backend_zero(m->be, m->grads, m->params_table.total ? m->params_table.total : 1);
}

/* ---- forward and backward ------------------------------------------------------------- */

#define VAL(v) (m->acts + m->values[v].offset)
#define DVAL(v) (m->dacts + m->values[v].grad_offset)
#define PARAM(i) (m->params + m->params_table.info[i].offset)
#define GRAD(i) (m->grads + m->params_table.info[i].offset)
#define BUF(i) (m->buffers + m->bufs.info[i].offset)

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
    }
    free(host);
    m->fold_fresh = true;
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
    for (int i = 0; i < m->n_ops; i++) {
        model_op *op = &m->ops[i];
        float *out = VAL(op->out);
        const float *in = VAL(op->in);
        size_t rows = (size_t)m->values[op->in].H * m->values[op->in].W * (size_t)N;
        switch (op->kind) {
        case MODEL_OP_CONV:
            if (fold && op->fold >= 0) {
                const float *w = m->folded + op->fold_offset;
                comine_conv2d_forward(&op->conv_folded, VAL(m->ops[op->fold].out), in, w,
                                      w + m->params_table.info[op->w].size, N);
            } else {
                comine_conv2d_forward(&op->conv, out, in, PARAM(op->w), op->b >= 0 ? PARAM(op->b) : NULL, N);
            }
            break;
        case MODEL_OP_BN: {
            if (fold && op->folded) break;
            float *save_mean = m->stats + op->stats_offset, *save_rstd = save_mean + op->C;
            const float *gamma = op->fixed_gamma ? BUF(op->w) : PARAM(op->w);
            comine_batchnorm_forward(be, out, save_mean, save_rstd, BUF(op->running_mean), BUF(op->running_var), in,
                                     gamma, PARAM(op->b), rows, op->C, training, BN_MOMENTUM, BN_EPS);
            break;
        }
        case MODEL_OP_PRELU: comine_prelu_forward(be, out, in, PARAM(op->w), rows, op->C); break;
        case MODEL_OP_ADD: comine_add_forward(be, out, in, VAL(op->in2), m->values[op->out].size * (size_t)N); break;
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
    comine_backend_download(be, emb, VAL(m->ops[m->n_ops - 1].out), (size_t)m->arch.emb_dim * N);
    m->last_N = N;
    m->last_training = training;
}

void comine_model_backward(comine_model *m, const float *demb, int N)
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
    }
}

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

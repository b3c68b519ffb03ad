/* model_graph.c: the face embedding backbones as layer graphs, and the architectures.
 *
 * A model's graph is a list of values (activations, NHWC, one per layer output, sizes per
 * image) and a list of ops (conv, batch norm, PReLU, residual add, dropout, linear) that
 * read and write them.  The builders below (iresnet, MobileFaceNet) follow insightface's
 * modules in registration order, so the tensor tables they build carry insightface's
 * state_dict names in state_dict order: the parameter table (trainable tensors) and the
 * buffer table (BN running statistics and the fixed BN1d weight of the iresnet embedding,
 * requires_grad False in insightface).  Building allocates only the graph and the tables;
 * where each value lives is decided afterwards (model_memory.c), and nothing here touches
 * the backend.  Values are numbered in creation order, value 0 being the input images. */
#include "comine/model.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/model_impl.h"

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
    op->in_prelu = op->in_bn = -1;
    op->affine_offset = SIZE_MAX;
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

void comine_model_build_graph(comine_model *m)
{
    int ir = iresnet_index(m->arch.name);
    if (ir >= 0) build_iresnet(m, iresnet_variants[ir].layers);
    else build_mobilefacenet(m);
}

comine_model *comine_model_plan(const comine_arch *arch)
{
    if (comine_arch_check(arch) != COMINE_OK) return NULL;
    comine_model *m = comine_calloc(1, sizeof *m);
    m->arch = *arch;
    m->max_batch = 1;
    comine_model_build_graph(m);
    return m;
}

static void free_table(model_table *t)
{
    for (int i = 0; i < t->n; i++) free((char *)t->info[i].name);
    free(t->info);
    free(t->init);
    free(t->fan_in);
}

void comine_model_free_graph(comine_model *m)
{
    free_table(&m->params_table);
    free_table(&m->bufs);
    free(m->values);
    free(m->ops);
}

void comine_model_plan_free(comine_model *m)
{
    if (!m) return;
    comine_model_free_graph(m);
    free(m);
}

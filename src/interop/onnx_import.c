/* onnx_import.c: an ONNX iresnet / MobileFaceNet graph into a comine model.
 *
 * The architecture comes from comine's metadata when the file has it, else from the graph:
 * the number of convolutions tells iresnet18/34/50/100 (21, 37, 53, 103) and MobileFaceNet
 * (49) apart; the stem's channels give the width, the input shape (or the fc's input size)
 * the input size, the last linear layer the embedding size.  Then comine's ops are walked in
 * execution order, following the data: each op's ONNX node is the consumer of the ONNX tensor
 * that holds the op's input, of the expected type (Identity and Dropout are looked through).
 * A Conv with a bias where comine has Conv + BatchNorm is a batch norm folded into the
 * convolution (torch.onnx.export in eval mode does that): the weight goes to the convolution
 * and the batch norm becomes y = x + bias (weight 1, mean 0, var 1 - eps).  The linear layer
 * is Gemm (transB 0 or 1) or MatMul after Flatten or Reshape; its columns go from ONNX's
 * (C, H, W) order to comine's (H, W, C).  Shapes are checked for every weight; an initializer
 * that carries one of comine's tensor names must land on that tensor; every compute node of
 * the graph must be used.  Errors name the file, the node (index, type, name), the
 * initializer and comine's tensor. */
#include "comine/onnx.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/model_impl.h"

#define BN_EPS 1e-5f

typedef struct imp {
    const comine_onnx_model *om;
    const char *file;
    comine_model *m;
    float *params, *bufs;  /* host copies being filled */
    bool *set_p, *set_b;   /* which comine tensors got a value */
    bool *used;            /* per ONNX node */
    const char **vname;    /* ONNX tensor holding each comine value */
} imp;

static bool is_op(const comine_onnx_node *nd, const char *type) { return !strcmp(nd->op_type, type); }

static int64_t attr_i(const comine_onnx_node *nd, const char *name, int64_t def);

/* Nodes that pass their first input on unchanged at inference: Identity, Dropout, and a Cast
 * to float (insightface's fp16 models cast before the fc). */
static bool is_passthrough(const comine_onnx_node *nd)
{
    return is_op(nd, "Identity") || is_op(nd, "Dropout") || (is_op(nd, "Cast") && attr_i(nd, "to", 0) == COMINE_ONNX_FLOAT);
}

/* Shape plumbing (of a Flatten done as Reshape): no weights, no effect on the values. */
static bool is_shape_op(const comine_onnx_node *nd)
{
    static const char *ops[] = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Constant", "Cast", "Slice"};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (is_op(nd, ops[k])) return true;
    return false;
}

static comine_status fail_node(const imp *im, int n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static comine_status fail_node(const imp *im, int n, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const comine_onnx_node *nd = &im->om->nodes[n];
    return comine_fail(COMINE_ERR_FORMAT, "%s: node %d (%s '%s'): %s", im->file, n, nd->op_type, nd->name, what);
}

/* A constant: an initializer or the value of a Constant node. */
static const comine_onnx_tensor *constant(const imp *im, const char *name)
{
    if (!name || !name[0]) return NULL;
    const comine_onnx_tensor *t = comine_onnx_find_init(im->om, name);
    if (t) return t;
    for (int i = 0; i < im->om->n_nodes; i++) {
        const comine_onnx_node *nd = &im->om->nodes[i];
        if (is_op(nd, "Constant") && nd->n_outputs > 0 && !strcmp(nd->outputs[0], name))
            for (int k = 0; k < nd->n_attrs; k++)
                if (!strcmp(nd->attrs[k].name, "value") && nd->attrs[k].t) return nd->attrs[k].t;
    }
    return NULL;
}

static const comine_onnx_attr *attr(const comine_onnx_node *nd, const char *name)
{
    for (int k = 0; k < nd->n_attrs; k++)
        if (!strcmp(nd->attrs[k].name, name)) return &nd->attrs[k];
    return NULL;
}

static int64_t attr_i(const comine_onnx_node *nd, const char *name, int64_t def)
{
    const comine_onnx_attr *a = attr(nd, name);
    return a ? a->i : def;
}

static float attr_f(const comine_onnx_node *nd, const char *name, float def)
{
    const comine_onnx_attr *a = attr(nd, name);
    return a ? a->f : def;
}

/* ints attribute all equal to v (absent = v when dflt_ok). */
static bool attr_all(const comine_onnx_node *nd, const char *name, int64_t v, int count, bool dflt_ok)
{
    const comine_onnx_attr *a = attr(nd, name);
    if (!a) return dflt_ok;
    if (a->n_ints != count) return false;
    for (int k = 0; k < a->n_ints; k++)
        if (a->ints[k] != v) return false;
    return true;
}

static void shape_str(char *buf, size_t cap, const int64_t *dims, int ndim)
{
    size_t n = 0;
    buf[0] = 0;
    for (int d = 0; d < ndim && n < cap; d++) n += (size_t)snprintf(buf + n, cap - n, d ? "x%lld" : "%lld", (long long)dims[d]);
    if (ndim == 0) snprintf(buf, cap, "scalar");
}

/* The unused node of the given type (or types, '|'-separated) that reads `name` as its first
 * input, looking through Identity / Dropout; -1 when none. */
static int consumer(imp *im, const char *name, const char *types)
{
    for (int i = 0; i < im->om->n_nodes; i++) {
        const comine_onnx_node *nd = &im->om->nodes[i];
        if (im->used[i] || nd->n_inputs < 1 || strcmp(nd->inputs[0], name) || nd->n_outputs < 1) continue;
        if (is_passthrough(nd)) { /* marked while searching: a cycle of Identities ends */
            im->used[i] = true;
            int j = consumer(im, nd->outputs[0], types);
            if (j >= 0) return j;
            im->used[i] = false;
            continue;
        }
        char buf[64];
        snprintf(buf, sizeof buf, "%s", types);
        for (char *save = NULL, *t = strtok_r(buf, "|", &save); t; t = strtok_r(NULL, "|", &save))
            if (is_op(nd, t)) return i;
    }
    return -1;
}

static comine_status no_consumer(const imp *im, const char *name, const char *types, const char *what)
{
    return comine_fail(COMINE_ERR_FORMAT, "%s: no %s node reads '%s' where comine's %s has %s (not an insightface %s graph?)",
                       im->file, types, name, im->m->arch.name, what, im->m->arch.name);
}

/* Copies the constant at input `k` of node n into comine's tensor (parameter table, or the
 * buffer table when is_buf) after checking its element count (any shape of that many
 * elements: PReLU's (C, 1, 1) and the like) and, where it carries a comine name, the name. */
static comine_status take(imp *im, int n, int k, int tensor, bool is_buf, const char *role)
{
    const comine_onnx_node *nd = &im->om->nodes[n];
    const comine_tensor_info *ti = is_buf ? &im->m->bufs.info[tensor] : &im->m->params_table.info[tensor];
    const comine_onnx_tensor *t = k < nd->n_inputs ? constant(im, nd->inputs[k]) : NULL;
    if (!t || !t->data)
        return fail_node(im, n, "its %s (input %d) is not a float constant, for comine's %s", role, k, ti->name);
    char want[64], got[64];
    int64_t wd[4];
    for (int d = 0; d < ti->ndim; d++) wd[d] = ti->shape[d];
    shape_str(want, sizeof want, wd, ti->ndim);
    shape_str(got, sizeof got, t->dims, t->ndim);
    bool shape_ok = t->n == ti->size;
    if (shape_ok && ti->ndim == 4) /* conv weights: the exact shape */
        shape_ok = t->ndim == 4 && !memcmp(t->dims, wd, sizeof wd);
    if (!shape_ok)
        return fail_node(im, n, "%s '%s' is %s, comine's %s is %s", role, t->name, got, ti->name, want);
    bool other_buf;
    int other = comine_model_find_tensor(im->m, t->name, &other_buf);
    if (other >= 0 && (other != tensor || other_buf != is_buf))
        return fail_node(im, n, "initializer '%s' sits where comine's %s does: the graph's layers are not comine's %s",
                         t->name, ti->name, im->m->arch.name);
    memcpy((is_buf ? im->bufs : im->params) + ti->offset, t->data, ti->size * sizeof(float));
    (is_buf ? im->set_b : im->set_p)[tensor] = true;
    return COMINE_OK;
}

static void set_const(imp *im, int tensor, bool is_buf, float v)
{
    const comine_tensor_info *ti = is_buf ? &im->m->bufs.info[tensor] : &im->m->params_table.info[tensor];
    float *dst = (is_buf ? im->bufs : im->params) + ti->offset;
    for (size_t k = 0; k < ti->size; k++) dst[k] = v;
    (is_buf ? im->set_b : im->set_p)[tensor] = true;
}

static comine_status import_bn(imp *im, const model_op *op);

static comine_status import_conv(imp *im, int *i_op)
{
    comine_model *m = im->m;
    const model_op *op = &m->ops[*i_op];
    const char *x = im->vname[op->in], *wname = m->params_table.info[op->w].name;
    int n = consumer(im, x, "Conv");
    if (n < 0) return no_consumer(im, x, "Conv", wname);
    const comine_onnx_node *nd = &im->om->nodes[n];
    im->used[n] = true;
    if (!attr_all(nd, "strides", op->stride, 2, op->stride == 1) || !attr_all(nd, "pads", op->pad, 4, op->pad == 0) ||
        !attr_all(nd, "dilations", 1, 2, true) || attr_i(nd, "group", 1) != op->groups)
        return fail_node(im, n, "strides, pads, dilations or group differ from comine's %s (stride %d, pad %d, group %d)",
                         wname, op->stride, op->pad, op->groups);
    comine_status st = take(im, n, 1, op->w, false, "weight");
    if (st) return st;
    bool has_bias = nd->n_inputs > 2 && nd->inputs[2][0];
    const model_op *bn = *i_op + 1 < m->n_ops ? &m->ops[*i_op + 1] : NULL;
    bool bn_next = bn && bn->kind == MODEL_OP_BN && bn->in == op->out;
    if (has_bias && op->b >= 0) {
        if ((st = take(im, n, 2, op->b, false, "bias"))) return st;
    } else if (has_bias && bn_next && consumer(im, nd->outputs[0], "BatchNormalization") < 0) {
        /* a batch norm folded into this convolution: BN(x) = x + bias */
        if ((st = take(im, n, 2, bn->b, false, "bias"))) return st;
        set_const(im, bn->w, bn->fixed_gamma, 1.0f);
        set_const(im, bn->running_mean, true, 0.0f);
        set_const(im, bn->running_var, true, 1.0f - BN_EPS);
        im->vname[bn->out] = nd->outputs[0];
        (*i_op)++;
        return COMINE_OK;
    } else if (has_bias && bn_next) { /* a convolution bias before a batch norm: into its mean */
        const comine_onnx_tensor *b = constant(im, nd->inputs[2]);
        if (!b || !b->data || b->n != (size_t)op->OC)
            return fail_node(im, n, "its bias is not a float constant of %d elements", op->OC);
        im->vname[op->out] = nd->outputs[0];
        (*i_op)++;
        if ((st = import_bn(im, bn))) return st;
        float *mean = im->bufs + m->bufs.info[bn->running_mean].offset;
        for (int c = 0; c < op->OC; c++) mean[c] -= b->data[c];
        return COMINE_OK;
    } else if (has_bias) {
        return fail_node(im, n, "has a bias, comine's %s has none", wname);
    } else if (op->b >= 0) {
        set_const(im, op->b, false, 0.0f);
    }
    im->vname[op->out] = nd->outputs[0];
    return COMINE_OK;
}

static comine_status import_bn(imp *im, const model_op *op)
{
    comine_model *m = im->m;
    const char *x = im->vname[op->in], *bname = m->params_table.info[op->b].name;
    int n = consumer(im, x, "BatchNormalization");
    if (n < 0) return no_consumer(im, x, "BatchNormalization", bname);
    const comine_onnx_node *nd = &im->om->nodes[n];
    im->used[n] = true;
    comine_status st;
    if ((st = take(im, n, 1, op->w, op->fixed_gamma, "scale")) || (st = take(im, n, 2, op->b, false, "bias")) ||
        (st = take(im, n, 3, op->running_mean, true, "mean")) || (st = take(im, n, 4, op->running_var, true, "var")))
        return st;
    float eps = attr_f(nd, "epsilon", 1e-5f);
    if (eps != BN_EPS) { /* the same y with comine's epsilon */
        float *var = im->bufs + m->bufs.info[op->running_var].offset;
        for (int c = 0; c < op->C; c++) var[c] += eps - BN_EPS;
    }
    im->vname[op->out] = nd->outputs[0];
    return COMINE_OK;
}

static comine_status import_prelu(imp *im, const model_op *op)
{
    const char *x = im->vname[op->in], *wname = im->m->params_table.info[op->w].name;
    int n = consumer(im, x, "PRelu");
    if (n < 0) return no_consumer(im, x, "PRelu", wname);
    im->used[n] = true;
    const comine_onnx_tensor *t = im->om->nodes[n].n_inputs > 1 ? constant(im, im->om->nodes[n].inputs[1]) : NULL;
    if (t && t->data && t->n == 1) { /* one slope shared by every channel */
        set_const(im, op->w, false, t->data[0]);
    } else {
        comine_status st = take(im, n, 1, op->w, false, "slope");
        if (st) return st;
    }
    im->vname[op->out] = im->om->nodes[n].outputs[0];
    return COMINE_OK;
}

static comine_status import_add(imp *im, const model_op *op)
{
    const char *a = im->vname[op->in], *b = im->vname[op->in2];
    for (int i = 0; i < im->om->n_nodes; i++) {
        const comine_onnx_node *nd = &im->om->nodes[i];
        if (im->used[i] || !is_op(nd, "Add") || nd->n_inputs != 2 || nd->n_outputs < 1) continue;
        if ((!strcmp(nd->inputs[0], a) && !strcmp(nd->inputs[1], b)) ||
            (!strcmp(nd->inputs[0], b) && !strcmp(nd->inputs[1], a))) {
            im->used[i] = true;
            im->vname[op->out] = nd->outputs[0];
            return COMINE_OK;
        }
    }
    return comine_fail(COMINE_ERR_FORMAT, "%s: no Add node of '%s' and '%s' where comine's %s has a residual add",
                       im->file, a, b, im->m->arch.name);
}

static comine_status import_linear(imp *im, const model_op *op)
{
    comine_model *m = im->m;
    const comine_tensor_info *ti = &m->params_table.info[op->w];
    const char *x = im->vname[op->in];
    int n = consumer(im, x, "Flatten|Reshape");
    if (n >= 0) {
        im->used[n] = true;
        if (is_op(&im->om->nodes[n], "Flatten") && attr_i(&im->om->nodes[n], "axis", 1) != 1)
            return fail_node(im, n, "flattens from axis %lld, comine's %s from 1",
                             (long long)attr_i(&im->om->nodes[n], "axis", 1), ti->name);
        x = im->om->nodes[n].outputs[0];
    }
    n = consumer(im, x, "Gemm|MatMul");
    if (n < 0) return no_consumer(im, x, "Gemm or MatMul", ti->name);
    const comine_onnx_node *nd = &im->om->nodes[n];
    im->used[n] = true;
    bool gemm = is_op(nd, "Gemm");
    const comine_onnx_tensor *w = nd->n_inputs > 1 ? constant(im, nd->inputs[1]) : NULL;
    if (!w || !w->data || w->ndim != 2)
        return fail_node(im, n, "its weight is not a 2-d float constant, for comine's %s", ti->name);
    bool trans = gemm && attr_i(nd, "transB", 0);
    if (gemm && attr_i(nd, "transA", 0)) return fail_node(im, n, "transA is set");
    int64_t want[2] = {trans ? op->OUT : op->IN, trans ? op->IN : op->OUT};
    if (w->dims[0] != want[0] || w->dims[1] != want[1]) {
        char g[64], e[64];
        shape_str(g, sizeof g, w->dims, 2);
        shape_str(e, sizeof e, want, 2);
        return fail_node(im, n, "weight '%s' is %s, comine's %s (%d x %d) needs %s here", w->name, g, ti->name, op->OUT,
                         op->IN, e);
    }
    float alpha = gemm ? attr_f(nd, "alpha", 1.0f) : 1.0f, beta = gemm ? attr_f(nd, "beta", 1.0f) : 1.0f;
    const model_value *v = &m->values[op->in];
    int HW = v->H * v->W, C = v->C;
    float *dst = im->params + ti->offset;
    for (int o = 0; o < op->OUT; o++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++) {
                size_t col = (size_t)c * HW + p; /* ONNX (C, H, W) order */
                float val = trans ? w->data[(size_t)o * op->IN + col] : w->data[col * op->OUT + o];
                dst[(size_t)o * op->IN + (size_t)p * C + c] = alpha * val;
            }
    im->set_p[op->w] = true;
    const char *out = nd->outputs[0];
    const comine_onnx_tensor *bias = gemm && nd->n_inputs > 2 ? constant(im, nd->inputs[2]) : NULL;
    if (gemm && nd->n_inputs > 2 && nd->inputs[2][0] && (!bias || !bias->data))
        return fail_node(im, n, "its bias is not a float constant");
    if (!gemm) { /* MatMul, then perhaps Add of a constant bias */
        int a = consumer(im, out, "Add");
        const comine_onnx_node *an = a >= 0 ? &im->om->nodes[a] : NULL;
        if (an && an->n_inputs == 2 && (bias = constant(im, an->inputs[1])) != NULL && bias->data) {
            im->used[a] = true;
            out = an->outputs[0];
        } else {
            bias = NULL;
        }
    }
    if (bias && op->b < 0) return fail_node(im, n, "has a bias, comine's %s has none", ti->name);
    if (bias && bias->n != (size_t)op->OUT)
        return fail_node(im, n, "bias '%s' has %zu elements, comine's %s needs %d", bias->name, bias->n, ti->name, op->OUT);
    if (op->b >= 0) {
        float *b = im->params + m->params_table.info[op->b].offset;
        for (int o = 0; o < op->OUT; o++) b[o] = bias ? beta * bias->data[o] : 0.0f;
        im->set_p[op->b] = true;
    }
    im->vname[op->out] = out;
    return COMINE_OK;
}

/* ---- the architecture ------------------------------------------------------------------- */

static const char *meta(const comine_onnx_model *om, const char *key)
{
    for (int i = 0; i < om->n_meta; i++)
        if (!strcmp(om->meta_keys[i], key)) return om->meta_values[i];
    return NULL;
}

/* A metadata integer; -1 when it is not one (the architecture check refuses it). */
static int meta_int(const char *s)
{
    long v;
    return comine_parse_int(s, &v) && v >= 0 && v < (1 << 24) ? (int)v : -1;
}

static int scaled(int c, double w)
{
    double x = floor((double)c * w + 0.5);
    if (!(x < 1e7)) return 10000000; /* far past any valid width (and NaN) */
    int v = (int)x;
    return v < 1 ? 1 : v;
}

static comine_status detect_arch(const comine_onnx_model *om, const char *file, const char *input, const char *arch_name,
                                 comine_arch *arch)
{
    int n_conv = 0, stem = -1;
    const comine_onnx_tensor *fc = NULL;
    bool fc_trans = false;
    for (int i = 0; i < om->n_nodes; i++) {
        const comine_onnx_node *nd = &om->nodes[i];
        const comine_onnx_tensor *w = nd->n_inputs > 1 ? comine_onnx_find_init(om, nd->inputs[1]) : NULL;
        if (is_op(nd, "Conv")) {
            n_conv++;
            if (nd->n_inputs > 0 && !strcmp(nd->inputs[0], input) && w && w->ndim == 4 && w->dims[0] < 100000)
                stem = (int)w->dims[0];
        } else if ((is_op(nd, "Gemm") || is_op(nd, "MatMul")) && w && w->ndim == 2) {
            fc = w;
            fc_trans = is_op(nd, "Gemm") && attr_i(nd, "transB", 0);
        }
    }
    static const struct { int convs; const char *name; } by_convs[] = {
        {21, "iresnet18"}, {37, "iresnet34"}, {53, "iresnet50"}, {103, "iresnet100"}, {49, "mobilefacenet"}};
    const char *name = arch_name ? arch_name : meta(om, "comine.arch");
    for (size_t k = 0; !name && k < sizeof by_convs / sizeof by_convs[0]; k++)
        if (by_convs[k].convs == n_conv) name = by_convs[k].name;
    if (!name)
        return comine_fail(COMINE_ERR_FORMAT, "%s: %d convolutions: not an iresnet18/34/50/100 (21, 37, 53, 103) or "
                           "MobileFaceNet (49) graph (name the architecture with --arch)", file, n_conv);
    comine_status st = comine_arch_default(arch, name);
    if (st) return st;
    if (!fc) return comine_fail(COMINE_ERR_FORMAT, "%s: no Gemm or MatMul with a constant 2-d weight: no embedding layer", file);
    long IN = (long)(fc_trans ? fc->dims[1] : fc->dims[0]), OUT = (long)(fc_trans ? fc->dims[0] : fc->dims[1]);
    const char *mv;
    arch->emb_dim = (mv = meta(om, "comine.emb_dim")) ? meta_int(mv) : OUT > (1 << 24) ? -1 : (int)OUT;
    if ((mv = meta(om, "comine.dropout"))) arch->dropout = (float)atof(mv);
    if (!strcmp(arch->name, "mobilefacenet")) return comine_arch_check(arch);
    const comine_onnx_value *iv = NULL;
    for (int i = 0; i < om->n_inputs; i++)
        if (!strcmp(om->inputs[i].name, input)) iv = &om->inputs[i];
    int S = iv && iv->ndim == 4 && iv->dims[2] > 0 && iv->dims[2] <= 4096 ? (int)iv->dims[2] : 0;
    if ((mv = meta(om, "comine.input"))) S = meta_int(mv);
    if (S > 4096) S = -1; /* refused by comine_arch_check below */
    double w = stem > 0 ? stem / 64.0 : 1.0;
    if ((mv = meta(om, "comine.width"))) w = atof(mv);
    else if (S >= 16 && IN % ((S / 16) * (S / 16)) == 0) { /* the last stage's channels say it more precisely */
        double w4 = (double)(IN / ((S / 16) * (S / 16))) / 512.0;
        if (scaled(64, w4) == stem && scaled(512, w4) * (S / 16) * (S / 16) == IN) w = w4;
    }
    if (S == 0) { /* from the fc's input: C4 (S / 16)^2 */
        int c4 = scaled(512, w);
        int side = (int)floor(sqrt((double)IN / c4) + 0.5);
        S = 16 * side;
    }
    arch->width = (float)w;
    arch->input = S;
    return comine_arch_check(arch);
}

comine_status comine_onnx_import(comine_model **out, const char *path, const char *arch_name,
                                 const comine_backend *be, int max_batch)
{
    *out = NULL;
    comine_onnx_model *om = NULL;
    comine_status st = comine_onnx_read(&om, path);
    if (st) return st;
    const char *input = NULL;
    for (int i = 0; i < om->n_inputs && !input; i++)
        if (!comine_onnx_find_init(om, om->inputs[i].name)) input = om->inputs[i].name;
    imp im = {.om = om, .file = path};
    comine_arch arch;
    if (!input) st = comine_fail(COMINE_ERR_FORMAT, "%s: the graph has no input (other than its weights)", path);
    else if (om->n_outputs < 1) st = comine_fail(COMINE_ERR_FORMAT, "%s: the graph has no output", path);
    else if ((st = detect_arch(om, path, input, arch_name, &arch)) == COMINE_OK) {
        /* before anything is allocated for it: the file must hold the weights of that model (at
         * least a quarter of its floats: a folded batch norm keeps 1 of its 4 vectors) */
        size_t have = 0;
        for (int i = 0; i < om->n_inits; i++) have += om->inits[i].data ? om->inits[i].n : 0;
        comine_model *plan = comine_model_plan(&arch);
        size_t need = plan ? plan->params_table.total + plan->bufs.total : 0;
        comine_model_plan_free(plan);
        if (have < need / 4)
            st = comine_fail(COMINE_ERR_FORMAT, "%s: %zu weights, far fewer than the %zu of comine's %s (width %g, input %d)",
                             path, have, need, arch.name, (double)arch.width, arch.input);
        else
            st = comine_model_create_uninit(&im.m, &arch, be, max_batch);
    }
    if (st) {
        comine_onnx_free(om);
        return st;
    }
    comine_model *m = im.m;
    im.params = comine_calloc(m->params_table.total + 1, sizeof(float));
    im.bufs = comine_calloc(m->bufs.total + 1, sizeof(float));
    im.set_p = comine_calloc((size_t)m->params_table.n + 1, sizeof(bool));
    im.set_b = comine_calloc((size_t)m->bufs.n + 1, sizeof(bool));
    im.used = comine_calloc((size_t)om->n_nodes + 1, sizeof(bool));
    im.vname = comine_calloc((size_t)m->n_values, sizeof(char *));
    im.vname[0] = input;
    for (int i = 0; !st && i < m->n_ops; i++) {
        const model_op *op = &m->ops[i];
        switch (op->kind) {
        case MODEL_OP_CONV: st = import_conv(&im, &i); break;
        case MODEL_OP_BN: st = import_bn(&im, op); break;
        case MODEL_OP_PRELU: st = import_prelu(&im, op); break;
        case MODEL_OP_ADD: st = import_add(&im, op); break;
        case MODEL_OP_DROPOUT: im.vname[op->out] = im.vname[op->in]; break;
        case MODEL_OP_LINEAR: st = import_linear(&im, op); break;
        }
    }
    for (int i = 0; !st && i < m->params_table.n; i++)
        if (!im.set_p[i]) st = comine_fail(COMINE_ERR_FORMAT, "%s: nothing in the graph gives comine's %s", path,
                                           m->params_table.info[i].name);
    for (int i = 0; !st && i < m->bufs.n; i++)
        if (!im.set_b[i]) st = comine_fail(COMINE_ERR_FORMAT, "%s: nothing in the graph gives comine's %s", path,
                                           m->bufs.info[i].name);
    for (int i = 0; !st && i < om->n_nodes; i++)
        if (!im.used[i] && !is_shape_op(&om->nodes[i]) && !is_passthrough(&om->nodes[i]))
            st = fail_node(&im, i, "is not part of comine's %s (after the layers it has: a different network?)",
                           arch.name);
    if (!st) { /* the graph's output is the embedding, perhaps through Identity / Dropout */
        const char *e = im.vname[m->ops[m->n_ops - 1].out];
        for (int hops = 0; strcmp(e, om->outputs[0].name) && hops <= om->n_nodes; hops++) {
            int j = -1;
            for (int i = 0; i < om->n_nodes && j < 0; i++)
                if (is_passthrough(&om->nodes[i]) && om->nodes[i].n_outputs > 0 && om->nodes[i].n_inputs > 0 &&
                    !strcmp(om->nodes[i].inputs[0], e))
                    j = i;
            if (j < 0) break;
            e = om->nodes[j].outputs[0];
        }
        if (strcmp(e, om->outputs[0].name))
            st = comine_fail(COMINE_ERR_FORMAT, "%s: the graph's output '%s' is not the embedding ('%s')", path,
                             om->outputs[0].name, e);
    }
    if (!st) {
        comine_backend_upload(be, comine_model_params(m), im.params, m->params_table.total);
        comine_backend_upload(be, comine_model_buffers(m), im.bufs, m->bufs.total);
        *out = m;
    } else {
        comine_model_free(m);
    }
    free(im.params);
    free(im.bufs);
    free(im.set_p);
    free(im.set_b);
    free(im.used);
    free(im.vname);
    comine_onnx_free(om);
    return st;
}

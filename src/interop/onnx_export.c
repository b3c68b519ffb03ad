/* onnx_export.c: a comine model's embedding network as an ONNX graph (opset 11).
 *
 * One ONNX node per comine op, in comine's execution order: Conv, BatchNormalization (kept
 * separate, not folded, so that import gives back the identical model), PRelu, Add, and for
 * the linear layer Flatten + Gemm (transB = 1).  Dropout is the identity in an eval forward
 * and is left out.  ONNX is NCHW where comine is NHWC; the only weight this changes is a
 * linear layer that reads a spatial map (the iresnets' fc), whose columns go from comine's
 * (H, W, C) flatten order to ONNX's (C, H, W).  PReLU slopes are (C, 1, 1), as ONNX's
 * broadcasting needs for NCHW.  Every initializer keeps comine's (insightface's) tensor
 * name; the architecture is recorded in the metadata ("comine.arch", ...). */
#include "comine/onnx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/version.h"
#include "models/model_impl.h"

#define BN_EPS 1e-5f

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return comine_strdup(buf);
}

/* The module name of a tensor: its name without the last ".part". */
static char *module_of(const char *tensor)
{
    char *s = comine_strdup(tensor);
    char *dot = strrchr(s, '.');
    if (dot) *dot = 0;
    return s;
}

static comine_onnx_node *add_node(comine_onnx_model *om, int *cap, const char *op_type, char *name)
{
    if (om->n_nodes == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        om->nodes = comine_realloc(om->nodes, (size_t)*cap * sizeof *om->nodes);
    }
    comine_onnx_node *nd = &om->nodes[om->n_nodes++];
    memset(nd, 0, sizeof *nd);
    nd->op_type = comine_strdup(op_type);
    nd->name = name;
    nd->domain = comine_strdup("");
    nd->inputs = comine_calloc(5, sizeof(char *));
    nd->outputs = comine_calloc(1, sizeof(char *));
    nd->attrs = comine_calloc(6, sizeof *nd->attrs);
    return nd;
}

static void add_input(comine_onnx_node *nd, const char *name) { nd->inputs[nd->n_inputs++] = comine_strdup(name); }

static void attr_ints(comine_onnx_node *nd, const char *name, int n, int64_t v0, int64_t v1)
{
    comine_onnx_attr *a = &nd->attrs[nd->n_attrs++];
    a->name = comine_strdup(name);
    a->type = COMINE_ONNX_ATTR_INTS;
    a->n_ints = n;
    a->ints = comine_malloc((size_t)n * sizeof(int64_t));
    for (int k = 0; k < n; k++) a->ints[k] = k % 2 ? v1 : v0;
}

static void attr_int(comine_onnx_node *nd, const char *name, int64_t v)
{
    comine_onnx_attr *a = &nd->attrs[nd->n_attrs++];
    a->name = comine_strdup(name);
    a->type = COMINE_ONNX_ATTR_INT;
    a->i = v;
}

static void attr_float(comine_onnx_node *nd, const char *name, float v)
{
    comine_onnx_attr *a = &nd->attrs[nd->n_attrs++];
    a->name = comine_strdup(name);
    a->type = COMINE_ONNX_ATTR_FLOAT;
    a->f = v;
}

static void add_meta(comine_onnx_model *om, const char *key, char *value)
{
    om->meta_keys = comine_realloc(om->meta_keys, (size_t)(om->n_meta + 1) * sizeof(char *));
    om->meta_values = comine_realloc(om->meta_values, (size_t)(om->n_meta + 1) * sizeof(char *));
    om->meta_keys[om->n_meta] = comine_strdup(key);
    om->meta_values[om->n_meta++] = value;
}

/* The initializer of a comine tensor (borrowing the host copy of its values). */
static void set_init(comine_onnx_tensor *t, const comine_tensor_info *ti, float *host)
{
    t->name = comine_strdup(ti->name);
    t->data_type = COMINE_ONNX_FLOAT;
    t->ndim = ti->ndim;
    for (int d = 0; d < ti->ndim; d++) t->dims[d] = ti->shape[d];
    t->n = ti->size;
    t->data = host + ti->offset;
    t->borrowed = true;
}

comine_status comine_onnx_export(const comine_model *m, const char *path)
{
    const model_table *pt = &m->params_table, *bt = &m->bufs;
    float *params = comine_malloc((pt->total + 1) * sizeof(float));
    float *bufs = comine_malloc((bt->total + 1) * sizeof(float));
    comine_backend_download(m->be, params, m->params, pt->total);
    comine_backend_download(m->be, bufs, m->buffers, bt->total);

    comine_onnx_model *om = comine_calloc(1, sizeof *om);
    om->ir_version = 7;
    om->opset = 11;
    om->producer_name = comine_strdup("comine");
    om->producer_version = comine_strdup(comine_version());
    om->graph_name = comine_strdup(m->arch.name);
    const comine_arch *a = &m->arch;
    add_meta(om, "comine.arch", comine_strdup(a->name));
    add_meta(om, "comine.width", fmt("%.9g", (double)a->width));
    add_meta(om, "comine.input", fmt("%d", a->input));
    add_meta(om, "comine.emb_dim", fmt("%d", a->emb_dim));
    add_meta(om, "comine.dropout", fmt("%.9g", (double)a->dropout));
    add_meta(om, "comine.input_format", comine_strdup("NCHW float32 RGB, (pixel - 127.5) / 128"));
    add_meta(om, "comine.output", comine_strdup("embedding before L2 normalisation"));

    /* initializers: the parameter table, then the buffer table, in table order */
    om->n_inits = pt->n + bt->n;
    om->inits = comine_calloc((size_t)om->n_inits, sizeof *om->inits);
    for (int i = 0; i < pt->n; i++) set_init(&om->inits[i], &pt->info[i], params);
    for (int i = 0; i < bt->n; i++) set_init(&om->inits[pt->n + i], &bt->info[i], bufs);
    float *fc_perm = NULL; /* owned copies of permuted linear weights, freed below */
    int n_perm = 0;
    float **perms = comine_calloc((size_t)m->n_ops + 1, sizeof(float *));

    char **vname = comine_calloc((size_t)m->n_values, sizeof(char *));
    bool *flat = comine_calloc((size_t)m->n_values, sizeof(bool)); /* value is (N, C) in ONNX */
    vname[0] = comine_strdup("data");
    int last = m->ops[m->n_ops - 1].out, cap = 0;
    for (int i = 0; i < m->n_ops; i++) {
        const model_op *op = &m->ops[i];
        const model_value *vin = &m->values[op->in];
        if (op->kind == MODEL_OP_DROPOUT) { /* identity in an eval forward */
            vname[op->out] = comine_strdup(vname[op->in]);
            flat[op->out] = flat[op->in];
            continue;
        }
        vname[op->out] = op->out == last ? comine_strdup("embedding") : fmt("v%d", op->out);
        flat[op->out] = flat[op->in];
        comine_onnx_node *nd;
        const char *wname = op->w >= 0 ? (op->kind == MODEL_OP_BN && op->fixed_gamma ? bt : pt)->info[op->w].name : NULL;
        switch (op->kind) {
        case MODEL_OP_CONV:
            nd = add_node(om, &cap, "Conv", module_of(wname));
            add_input(nd, vname[op->in]);
            add_input(nd, wname);
            if (op->b >= 0) add_input(nd, pt->info[op->b].name);
            attr_ints(nd, "dilations", 2, 1, 1);
            attr_int(nd, "group", op->groups);
            attr_ints(nd, "kernel_shape", 2, op->K, op->K);
            attr_ints(nd, "pads", 4, op->pad, op->pad);
            attr_ints(nd, "strides", 2, op->stride, op->stride);
            break;
        case MODEL_OP_BN:
            nd = add_node(om, &cap, "BatchNormalization", module_of(wname));
            add_input(nd, vname[op->in]);
            add_input(nd, wname);
            add_input(nd, pt->info[op->b].name);
            add_input(nd, bt->info[op->running_mean].name);
            add_input(nd, bt->info[op->running_var].name);
            attr_float(nd, "epsilon", BN_EPS);
            attr_float(nd, "momentum", 0.9f);
            break;
        case MODEL_OP_PRELU: {
            nd = add_node(om, &cap, "PRelu", module_of(wname));
            add_input(nd, vname[op->in]);
            add_input(nd, wname);
            comine_onnx_tensor *t = &om->inits[op->w];
            if (!flat[op->in]) {
                t->ndim = 3;
                t->dims[1] = t->dims[2] = 1;
            }
            break;
        }
        case MODEL_OP_ADD:
            nd = add_node(om, &cap, "Add", fmt("add_%d", op->out));
            add_input(nd, vname[op->in]);
            add_input(nd, vname[op->in2]);
            break;
        case MODEL_OP_LINEAR: {
            char *mod = module_of(wname);
            const char *x = vname[op->in];
            if (!flat[op->in]) {
                nd = add_node(om, &cap, "Flatten", fmt("%s.flatten", mod));
                add_input(nd, x);
                attr_int(nd, "axis", 1);
                nd->outputs[nd->n_outputs++] = fmt("%s.flat", mod);
                x = nd->outputs[0];
            }
            int HW = vin->H * vin->W, C = vin->C;
            if (HW > 1) { /* columns (h, w, c) -> (c, h, w) */
                const float *src = params + pt->info[op->w].offset;
                fc_perm = comine_malloc((size_t)op->OUT * op->IN * sizeof(float));
                for (int o = 0; o < op->OUT; o++)
                    for (int p = 0; p < HW; p++)
                        for (int c = 0; c < C; c++)
                            fc_perm[(size_t)o * op->IN + (size_t)c * HW + p] = src[(size_t)o * op->IN + (size_t)p * C + c];
                om->inits[op->w].data = fc_perm;
                perms[n_perm++] = fc_perm;
            }
            nd = add_node(om, &cap, "Gemm", mod);
            add_input(nd, x);
            add_input(nd, wname);
            if (op->b >= 0) add_input(nd, pt->info[op->b].name);
            attr_float(nd, "alpha", 1.0f);
            attr_float(nd, "beta", 1.0f);
            attr_int(nd, "transB", 1);
            flat[op->out] = true;
            break;
        }
        default: COMINE_ASSERT(!"op kind");
        }
        nd->outputs[nd->n_outputs++] = comine_strdup(vname[op->out]);
    }
    om->n_inputs = om->n_outputs = 1;
    om->inputs = comine_calloc(1, sizeof *om->inputs);
    om->outputs = comine_calloc(1, sizeof *om->outputs);
    comine_onnx_value *in = &om->inputs[0], *out = &om->outputs[0];
    in->name = comine_strdup("data");
    in->elem_type = COMINE_ONNX_FLOAT;
    in->ndim = 4;
    in->dims[0] = -1;
    in->dim_param[0] = comine_strdup("N");
    in->dims[1] = 3;
    in->dims[2] = in->dims[3] = a->input;
    out->name = comine_strdup("embedding");
    out->elem_type = COMINE_ONNX_FLOAT;
    out->ndim = 2;
    out->dims[0] = -1;
    out->dim_param[0] = comine_strdup("N");
    out->dims[1] = a->emb_dim;

    comine_status st = comine_onnx_write(om, path);
    for (int v = 0; v < m->n_values; v++) free(vname[v]);
    free(vname);
    free(flat);
    for (int k = 0; k < n_perm; k++) free(perms[k]);
    free(perms);
    comine_onnx_free(om);
    free(params);
    free(bufs);
    return st;
}

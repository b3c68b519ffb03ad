/* onnx_write.c: the writer of ONNX files: comine_onnx_model to the protobuf wire format.
 *
 * Streams straight into the (atomic) output file: a nested message's length is found by
 * running its writer once in counting mode (which touches no tensor data) before writing it,
 * so no copy of the weights is ever built.  Repeated scalars are written unpacked, as
 * onnx.proto (proto2) declares them; tensor data goes to raw_data, little-endian. */
#include "comine/onnx.h"

#include <stdlib.h>
#include <string.h>

typedef struct pbw {
    FILE *fp;   /* NULL: count only */
    uint64_t n; /* bytes written (or counted) */
} pbw;

typedef void (*pbw_fn)(pbw *w, const void *ctx);

static void w_raw(pbw *w, const void *p, size_t len)
{
    if (w->fp && len) fwrite(p, 1, len, w->fp);
    w->n += len;
}

static void w_varint(pbw *w, uint64_t v)
{
    uint8_t b[10];
    size_t k = 0;
    do {
        b[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) b[k] |= 0x80;
        k++;
    } while (v);
    w_raw(w, b, k);
}

static void w_key(pbw *w, int field, int wt) { w_varint(w, (uint64_t)field << 3 | (uint64_t)wt); }

static void w_int(pbw *w, int field, int64_t v)
{
    w_key(w, field, 0);
    w_varint(w, (uint64_t)v);
}

static void w_bytes(pbw *w, int field, const void *p, size_t len)
{
    w_key(w, field, 2);
    w_varint(w, len);
    w_raw(w, p, len);
}

static void w_str(pbw *w, int field, const char *s)
{
    if (s) w_bytes(w, field, s, strlen(s));
}

static void w_f32(pbw *w, int field, float f)
{
    uint8_t b[4];
    uint32_t u;
    memcpy(&u, &f, 4);
    comine_put_le32(b, u);
    w_key(w, field, 5);
    w_raw(w, b, 4);
}

static void w_msg(pbw *w, int field, pbw_fn fn, const void *ctx)
{
    pbw count = {NULL, 0};
    fn(&count, ctx);
    w_key(w, field, 2);
    w_varint(w, count.n);
    uint64_t before = w->n;
    fn(w, ctx);
    COMINE_ASSERT(w->n - before == count.n);
}

static void w_tensor(pbw *w, const void *ctx)
{
    const comine_onnx_tensor *t = ctx;
    for (int d = 0; d < t->ndim; d++) w_int(w, 1, t->dims[d]);
    w_int(w, 2, t->data_type);
    w_str(w, 8, t->name);
    bool is_float = t->data_type == COMINE_ONNX_FLOAT;
    COMINE_ASSERT(is_float || t->data_type == COMINE_ONNX_INT64);
    size_t esize = is_float ? 4 : 8, len = t->n * esize;
    w_key(w, 9, 2);
    w_varint(w, len);
    if (!w->fp) {
        w->n += len;
        return;
    }
    uint8_t buf[4096];
    for (size_t k = 0; k < t->n;) {
        size_t c = 0;
        for (; k < t->n && c + esize <= sizeof buf; k++, c += esize) {
            if (is_float) {
                uint32_t u;
                memcpy(&u, &t->data[k], 4);
                comine_put_le32(buf + c, u);
            } else {
                comine_put_le64(buf + c, (uint64_t)t->ints[k]);
            }
        }
        w_raw(w, buf, c);
    }
}

static void w_attr(pbw *w, const void *ctx)
{
    const comine_onnx_attr *a = ctx;
    w_str(w, 1, a->name);
    w_int(w, 20, a->type);
    switch (a->type) {
    case COMINE_ONNX_ATTR_FLOAT: w_f32(w, 2, a->f); break;
    case COMINE_ONNX_ATTR_INT: w_int(w, 3, a->i); break;
    case COMINE_ONNX_ATTR_STRING: w_str(w, 4, a->s ? a->s : ""); break;
    case COMINE_ONNX_ATTR_TENSOR: w_msg(w, 5, w_tensor, a->t); break;
    case COMINE_ONNX_ATTR_FLOATS:
        for (int k = 0; k < a->n_floats; k++) w_f32(w, 7, a->floats[k]);
        break;
    case COMINE_ONNX_ATTR_INTS:
        for (int k = 0; k < a->n_ints; k++) w_int(w, 8, a->ints[k]);
        break;
    default: COMINE_ASSERT(!"attribute type");
    }
}

static void w_node(pbw *w, const void *ctx)
{
    const comine_onnx_node *nd = ctx;
    for (int k = 0; k < nd->n_inputs; k++) w_str(w, 1, nd->inputs[k]);
    for (int k = 0; k < nd->n_outputs; k++) w_str(w, 2, nd->outputs[k]);
    w_str(w, 3, nd->name);
    w_str(w, 4, nd->op_type);
    for (int k = 0; k < nd->n_attrs; k++) w_msg(w, 5, w_attr, &nd->attrs[k]);
    if (nd->domain && nd->domain[0]) w_str(w, 7, nd->domain);
}

/* one TensorShapeProto.Dimension */
typedef struct dim_ctx {
    int64_t value;
    const char *param;
} dim_ctx;

static void w_dim(pbw *w, const void *ctx)
{
    const dim_ctx *d = ctx;
    if (d->param) w_str(w, 2, d->param);
    else w_int(w, 1, d->value);
}

static void w_shape(pbw *w, const void *ctx)
{
    const comine_onnx_value *v = ctx;
    for (int d = 0; d < v->ndim; d++) {
        dim_ctx dc = {v->dims[d], v->dim_param[d]};
        w_msg(w, 1, w_dim, &dc);
    }
}

static void w_tensor_type(pbw *w, const void *ctx)
{
    const comine_onnx_value *v = ctx;
    w_int(w, 1, v->elem_type);
    if (v->ndim >= 0) w_msg(w, 2, w_shape, v);
}

static void w_type(pbw *w, const void *ctx) { w_msg(w, 1, w_tensor_type, ctx); }

static void w_value(pbw *w, const void *ctx)
{
    const comine_onnx_value *v = ctx;
    w_str(w, 1, v->name);
    w_msg(w, 2, w_type, v);
}

static void w_graph(pbw *w, const void *ctx)
{
    const comine_onnx_model *om = ctx;
    for (int i = 0; i < om->n_nodes; i++) w_msg(w, 1, w_node, &om->nodes[i]);
    w_str(w, 2, om->graph_name ? om->graph_name : "comine");
    for (int i = 0; i < om->n_inits; i++) w_msg(w, 5, w_tensor, &om->inits[i]);
    for (int i = 0; i < om->n_inputs; i++) w_msg(w, 11, w_value, &om->inputs[i]);
    for (int i = 0; i < om->n_outputs; i++) w_msg(w, 12, w_value, &om->outputs[i]);
}

static void w_opset(pbw *w, const void *ctx) { w_int(w, 2, *(const int64_t *)ctx); }

typedef struct meta_ctx {
    const char *key, *value;
} meta_ctx;

static void w_meta(pbw *w, const void *ctx)
{
    const meta_ctx *m = ctx;
    w_str(w, 1, m->key);
    w_str(w, 2, m->value);
}

static void w_model(pbw *w, const void *ctx)
{
    const comine_onnx_model *om = ctx;
    w_int(w, 1, om->ir_version);
    w_str(w, 2, om->producer_name);
    w_str(w, 3, om->producer_version);
    w_msg(w, 7, w_graph, om);
    w_msg(w, 8, w_opset, &om->opset);
    for (int i = 0; i < om->n_meta; i++) {
        meta_ctx mc = {om->meta_keys[i], om->meta_values[i]};
        w_msg(w, 14, w_meta, &mc);
    }
}

comine_status comine_onnx_write(const comine_onnx_model *om, const char *path)
{
    comine_atomic_file af;
    comine_status st = comine_atomic_open(&af, path);
    if (st) return st;
    pbw w = {af.fp, 0};
    w_model(&w, om);
    return comine_atomic_commit(&af);
}

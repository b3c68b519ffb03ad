/* onnx_read.c: the reader of ONNX files: the protobuf wire format (varints, fixed32/64,
 * length-delimited fields) for the subset of onnx.proto in onnx.h, into comine_onnx_model.
 *
 * Every varint and every length is checked against the end of the enclosing message before
 * it is used; every allocation is bounded by the bytes that describe it (a tensor's elements
 * are allocated only once its data was found to hold exactly dims' product of them).  Errors
 * name the file and the byte offset.  Repeated scalars are read packed or not, as protobuf
 * allows; unknown fields are skipped; groups (wire types 3 and 4) are refused. */
#include "comine/onnx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pb {
    const uint8_t *p, *end;
    const uint8_t *base; /* start of the file: offsets in messages */
    const char *file;
} pb;

typedef struct pb_field {
    uint32_t num;
    int wt;
    uint64_t v;         /* varint, fixed32, fixed64 */
    const uint8_t *ptr; /* length-delimited */
    size_t len;
    size_t at;          /* offset of the field's key */
} pb_field;

#define BAD(c, at, ...) bad_at((c), (at), __VA_ARGS__)

static comine_status bad_at(const pb *c, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static comine_status bad_at(const pb *c, size_t at, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return comine_fail(COMINE_ERR_FORMAT, "%s: byte %zu: %s", c->file, at, what);
}

static size_t off(const pb *c, const uint8_t *p) { return (size_t)(p - c->base); }

static comine_status varint(pb *c, uint64_t *v)
{
    uint64_t r = 0;
    const uint8_t *start = c->p;
    for (int shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end) return BAD(c, off(c, start), "varint runs past the end of its message");
        uint8_t b = *c->p++;
        if (shift == 63 && (b & 0x7e)) return BAD(c, off(c, start), "varint overflows 64 bits");
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return COMINE_OK;
        }
    }
    return BAD(c, off(c, start), "varint longer than 10 bytes");
}

/* The next field of the message, or *done at its end. */
static comine_status next(pb *c, pb_field *f, bool *done)
{
    *done = c->p >= c->end;
    f->ptr = NULL;
    f->len = 0;
    f->v = 0;
    if (*done) return COMINE_OK;
    f->at = off(c, c->p);
    uint64_t key;
    comine_status st = varint(c, &key);
    if (st) return st;
    f->num = (uint32_t)(key >> 3);
    f->wt = (int)(key & 7);
    if (f->num == 0 || key >> 3 > 0x1fffffff) return BAD(c, f->at, "field number %llu out of range",
                                                           (unsigned long long)(key >> 3));
    switch (f->wt) {
    case 0: return varint(c, &f->v);
    case 1:
        if (c->end - c->p < 8) return BAD(c, f->at, "fixed64 field runs past the end of its message");
        f->v = comine_get_le64(c->p);
        c->p += 8;
        return COMINE_OK;
    case 5:
        if (c->end - c->p < 4) return BAD(c, f->at, "fixed32 field runs past the end of its message");
        f->v = comine_get_le32(c->p);
        c->p += 4;
        return COMINE_OK;
    case 2: {
        uint64_t len;
        if ((st = varint(c, &len))) return st;
        if (len > (uint64_t)(c->end - c->p))
            return BAD(c, f->at, "field %u: length %llu runs past the end of its message (%zu bytes left)", f->num,
                       (unsigned long long)len, (size_t)(c->end - c->p));
        f->ptr = c->p;
        f->len = (size_t)len;
        c->p += len;
        return COMINE_OK;
    }
    default: return BAD(c, f->at, "field %u: unsupported wire type %d", f->num, f->wt);
    }
}

/* The cursor over a length-delimited field's bytes (empty for another wire type). */
static pb sub(const pb *c, const pb_field *f)
{
    if (f->wt != 2 || !f->ptr) return (pb){c->p, c->p, c->base, c->file};
    return (pb){f->ptr, f->ptr + f->len, c->base, c->file};
}

static comine_status want(const pb *c, const pb_field *f, int wt, const char *what)
{
    if (f->wt != wt) return BAD(c, f->at, "%s (field %u): wire type %d, expected %d", what, f->num, f->wt, wt);
    return COMINE_OK;
}

static comine_status str(const pb *c, const pb_field *f, char **dst, const char *what)
{
    comine_status st = want(c, f, 2, what);
    if (st) return st;
    free(*dst);
    *dst = comine_malloc(f->len + 1);
    memcpy(*dst, f->ptr, f->len);
    (*dst)[f->len] = 0;
    return COMINE_OK;
}

/* Appends to a growable array of `elem` bytes; returns the new element (zeroed). */
static void *grow(void **arr, int *n, size_t elem)
{
    if ((*n & (*n - 1)) == 0) *arr = comine_realloc(*arr, (size_t)(*n ? 2 * *n : 1) * elem);
    void *e = (char *)*arr + (size_t)*n * elem;
    memset(e, 0, elem);
    (*n)++;
    return e;
}

/* A repeated int64 field (varints, packed or not) appended to (*v, *n). */
static comine_status rep_int(pb *c, const pb_field *f, int64_t **v, int *n, const char *what)
{
    if (f->wt == 0) {
        *(int64_t *)grow((void **)v, n, sizeof **v) = (int64_t)f->v;
        return COMINE_OK;
    }
    comine_status st = want(c, f, 2, what);
    if (st) return st;
    pb s = sub(c, f);
    while (s.p < s.end) {
        uint64_t x = 0;
        if ((st = varint(&s, &x))) return st;
        if (*n >= (1 << 30)) return BAD(c, f->at, "%s: too many values", what);
        *(int64_t *)grow((void **)v, n, sizeof **v) = (int64_t)x;
    }
    return COMINE_OK;
}

static float f32_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* A repeated float field (fixed32, packed or not) appended to (*v, *n). */
static comine_status rep_float(pb *c, const pb_field *f, float **v, int *n, const char *what)
{
    if (f->wt == 5) {
        *(float *)grow((void **)v, n, sizeof **v) = f32_of((uint32_t)f->v);
        return COMINE_OK;
    }
    comine_status st = want(c, f, 2, what);
    if (st) return st;
    if (f->len % 4) return BAD(c, f->at, "%s: packed floats of %zu bytes, not a multiple of 4", what, f->len);
    for (size_t k = 0; k < f->len; k += 4) {
        if (*n >= (1 << 30)) return BAD(c, f->at, "%s: too many values", what);
        *(float *)grow((void **)v, n, sizeof **v) = f32_of(comine_get_le32(f->ptr + k));
    }
    return COMINE_OK;
}

static void free_tensor(comine_onnx_tensor *t)
{
    free(t->name);
    if (!t->borrowed) {
        free(t->data);
        free(t->ints);
    }
}

static comine_status parse_tensor(pb *c, comine_onnx_tensor *t, size_t at)
{
    comine_status st = COMINE_OK;
    int64_t *dims = NULL, *ints = NULL;
    float *floats = NULL;
    int n_dims = 0, n_ints = 0, n_floats = 0;
    double *doubles = NULL;
    int n_doubles = 0;
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    bool have_raw = false;
    t->data_type = 0;
    pb_field f;
    bool done;
    while (!(st = next(c, &f, &done)) && !done) {
        switch (f.num) {
        case 1: st = rep_int(c, &f, &dims, &n_dims, "TensorProto.dims"); break;
        case 2:
            if (!(st = want(c, &f, 0, "TensorProto.data_type"))) t->data_type = (int)f.v;
            break;
        case 4: st = rep_float(c, &f, &floats, &n_floats, "TensorProto.float_data"); break;
        case 5: st = rep_int(c, &f, &ints, &n_ints, "TensorProto.int32_data"); break;
        case 7: st = rep_int(c, &f, &ints, &n_ints, "TensorProto.int64_data"); break;
        case 8: st = str(c, &f, &t->name, "TensorProto.name"); break;
        case 9:
            if (!(st = want(c, &f, 2, "TensorProto.raw_data"))) {
                raw = f.ptr;
                raw_len = f.len;
                have_raw = true;
            }
            break;
        case 10:
            if (f.wt == 1) {
                double d;
                memcpy(&d, &f.v, 8);
                *(double *)grow((void **)&doubles, &n_doubles, sizeof d) = d;
            } else if (!(st = want(c, &f, 2, "TensorProto.double_data"))) {
                if (f.len % 8) st = BAD(c, f.at, "TensorProto.double_data: %zu bytes, not a multiple of 8", f.len);
                for (size_t k = 0; !st && k < f.len; k += 8) {
                    uint64_t u = comine_get_le64(f.ptr + k);
                    double d;
                    memcpy(&d, &u, 8);
                    *(double *)grow((void **)&doubles, &n_doubles, sizeof d) = d;
                }
            }
            break;
        case 13:
        case 14:
            if (f.num == 13 || f.wt != 0 || f.v != 0)
                st = BAD(c, f.at, "tensor '%s': external data is not supported (save the model with its weights inside)",
                         t->name ? t->name : "");
            break;
        default: break;
        }
        if (st) break;
    }
    const char *tn = t->name ? t->name : "";
    if (!st && n_dims > COMINE_ONNX_MAX_DIMS) st = BAD(c, at, "tensor '%s': %d dimensions (at most %d)", tn, n_dims,
                                                       COMINE_ONNX_MAX_DIMS);
    size_t n = 1;
    for (int d = 0; !st && d < n_dims; d++) {
        if (dims[d] < 0 || dims[d] > ((int64_t)1 << 40) || (dims[d] && n > ((size_t)1 << 40) / (size_t)dims[d]))
            st = BAD(c, at, "tensor '%s': dimension %d is %lld", tn, d, (long long)dims[d]);
        else n *= (size_t)dims[d];
    }
    if (!st) {
        t->ndim = n_dims;
        for (int d = 0; d < n_dims; d++) t->dims[d] = dims[d];
        t->n = n;
        int dt = t->data_type;
        size_t esize = dt == COMINE_ONNX_FLOAT || dt == COMINE_ONNX_INT32 ? 4 : dt == COMINE_ONNX_INT64 || dt == COMINE_ONNX_DOUBLE ? 8 : 0;
        size_t have = have_raw ? raw_len / (esize ? esize : 1)
                               : dt == COMINE_ONNX_FLOAT ? (size_t)n_floats
                               : dt == COMINE_ONNX_DOUBLE ? (size_t)n_doubles : (size_t)n_ints;
        if (!esize)
            st = BAD(c, at, "tensor '%s': data type %d is not supported (float, double, int32, int64)", tn, dt);
        else if ((have_raw && raw_len % esize) || have != n)
            st = BAD(c, at, "tensor '%s': its data holds %zu elements, its dimensions %zu", tn, have, n);
    }
    if (!st && (t->data_type == COMINE_ONNX_FLOAT || t->data_type == COMINE_ONNX_DOUBLE)) {
        t->data = comine_malloc(n * sizeof(float) + 1);
        for (size_t k = 0; k < n; k++) {
            if (have_raw && t->data_type == COMINE_ONNX_FLOAT) t->data[k] = f32_of(comine_get_le32(raw + 4 * k));
            else if (have_raw) {
                uint64_t u = comine_get_le64(raw + 8 * k);
                double d;
                memcpy(&d, &u, 8);
                t->data[k] = (float)d;
            } else t->data[k] = t->data_type == COMINE_ONNX_FLOAT ? floats[k] : (float)doubles[k];
        }
    } else if (!st) {
        t->ints = comine_malloc(n * sizeof(int64_t) + 1);
        for (size_t k = 0; k < n; k++) {
            if (!have_raw) t->ints[k] = ints[k];
            else if (t->data_type == COMINE_ONNX_INT32) t->ints[k] = (int32_t)comine_get_le32(raw + 4 * k);
            else t->ints[k] = (int64_t)comine_get_le64(raw + 8 * k);
        }
    }
    if (!st && !t->name) t->name = comine_strdup("");
    free(dims);
    free(ints);
    free(floats);
    free(doubles);
    return st;
}

static comine_status parse_attr(pb *c, comine_onnx_attr *a)
{
    comine_status st;
    pb_field f;
    bool done;
    while (!(st = next(c, &f, &done)) && !done) {
        pb s;
        switch (f.num) {
        case 1: st = str(c, &f, &a->name, "AttributeProto.name"); break;
        case 20: if (!(st = want(c, &f, 0, "AttributeProto.type"))) a->type = (int)f.v; break;
        case 2: if (!(st = want(c, &f, 5, "AttributeProto.f"))) a->f = f32_of((uint32_t)f.v); break;
        case 3: if (!(st = want(c, &f, 0, "AttributeProto.i"))) a->i = (int64_t)f.v; break;
        case 4: st = str(c, &f, &a->s, "AttributeProto.s"); break;
        case 5:
            if ((st = want(c, &f, 2, "AttributeProto.t"))) break;
            if (a->t) {
                free_tensor(a->t);
                free(a->t);
            }
            a->t = comine_calloc(1, sizeof *a->t);
            s = sub(c, &f);
            st = parse_tensor(&s, a->t, f.at);
            break;
        case 7: st = rep_float(c, &f, &a->floats, &a->n_floats, "AttributeProto.floats"); break;
        case 8: st = rep_int(c, &f, &a->ints, &a->n_ints, "AttributeProto.ints"); break;
        default: break;
        }
        if (st) return st;
    }
    if (!st && !a->name) a->name = comine_strdup("");
    return st;
}

static comine_status parse_node(pb *c, comine_onnx_node *nd)
{
    comine_status st;
    pb_field f;
    bool done;
    while (!(st = next(c, &f, &done)) && !done) {
        switch (f.num) {
        case 1: st = str(c, &f, (char **)grow((void **)&nd->inputs, &nd->n_inputs, sizeof(char *)), "NodeProto.input"); break;
        case 2: st = str(c, &f, (char **)grow((void **)&nd->outputs, &nd->n_outputs, sizeof(char *)), "NodeProto.output"); break;
        case 3: st = str(c, &f, &nd->name, "NodeProto.name"); break;
        case 4: st = str(c, &f, &nd->op_type, "NodeProto.op_type"); break;
        case 7: st = str(c, &f, &nd->domain, "NodeProto.domain"); break;
        case 5:
            if (!(st = want(c, &f, 2, "NodeProto.attribute"))) {
                pb s = sub(c, &f);
                st = parse_attr(&s, (comine_onnx_attr *)grow((void **)&nd->attrs, &nd->n_attrs, sizeof *nd->attrs));
            }
            break;
        default: break;
        }
        if (st) return st;
    }
    if (!nd->name) nd->name = comine_strdup("");
    if (!nd->op_type) nd->op_type = comine_strdup("");
    if (!nd->domain) nd->domain = comine_strdup("");
    return st;
}

/* TypeProto.Tensor's shape: TensorShapeProto { repeated Dimension dim = 1 }. */
static comine_status parse_shape(pb *c, comine_onnx_value *v, size_t at)
{
    comine_status st;
    pb_field f, g;
    bool done, d2;
    v->ndim = 0;
    while (!(st = next(c, &f, &done)) && !done) {
        if (f.num != 1) continue;
        if ((st = want(c, &f, 2, "TensorShapeProto.dim"))) return st;
        if (v->ndim >= COMINE_ONNX_MAX_DIMS) return BAD(c, at, "value '%s': more than %d dimensions",
                                                        v->name ? v->name : "", COMINE_ONNX_MAX_DIMS);
        int d = v->ndim++;
        v->dims[d] = -1;
        pb s = sub(c, &f);
        while (!(st = next(&s, &g, &d2)) && !d2) {
            if (g.num == 1 && !(st = want(&s, &g, 0, "Dimension.dim_value"))) v->dims[d] = (int64_t)g.v;
            else if (g.num == 2) st = str(&s, &g, &v->dim_param[d], "Dimension.dim_param");
            if (st) return st;
        }
        if (st) return st;
    }
    return st;
}

static comine_status parse_value(pb *c, comine_onnx_value *v)
{
    comine_status st;
    pb_field f, g, h;
    bool done, d2, d3;
    v->ndim = -1;
    while (!(st = next(c, &f, &done)) && !done) {
        if (f.num == 1) st = str(c, &f, &v->name, "ValueInfoProto.name");
        else if (f.num == 2 && !(st = want(c, &f, 2, "ValueInfoProto.type"))) {
            pb s = sub(c, &f); /* TypeProto */
            while (!(st = next(&s, &g, &d2)) && !d2) {
                if (g.num != 1) continue; /* tensor_type */
                if ((st = want(&s, &g, 2, "TypeProto.tensor_type"))) return st;
                pb t = sub(&s, &g);
                while (!(st = next(&t, &h, &d3)) && !d3) {
                    if (h.num == 1 && !(st = want(&t, &h, 0, "TypeProto.Tensor.elem_type"))) v->elem_type = (int)h.v;
                    else if (h.num == 2 && !(st = want(&t, &h, 2, "TypeProto.Tensor.shape"))) {
                        pb u = sub(&t, &h);
                        st = parse_shape(&u, v, h.at);
                    }
                    if (st) return st;
                }
                if (st) return st;
            }
        }
        if (st) return st;
    }
    if (!v->name) v->name = comine_strdup("");
    return st;
}

static comine_status parse_graph(pb *c, comine_onnx_model *om)
{
    comine_status st;
    pb_field f;
    bool done;
    while (!(st = next(c, &f, &done)) && !done) {
        pb s = sub(c, &f);
        switch (f.num) {
        case 1:
            if (!(st = want(c, &f, 2, "GraphProto.node")))
                st = parse_node(&s, (comine_onnx_node *)grow((void **)&om->nodes, &om->n_nodes, sizeof *om->nodes));
            break;
        case 2: st = str(c, &f, &om->graph_name, "GraphProto.name"); break;
        case 5:
            if (!(st = want(c, &f, 2, "GraphProto.initializer")))
                st = parse_tensor(&s, (comine_onnx_tensor *)grow((void **)&om->inits, &om->n_inits, sizeof *om->inits),
                                  f.at);
            break;
        case 11:
        case 12:
            if (!(st = want(c, &f, 2, f.num == 11 ? "GraphProto.input" : "GraphProto.output"))) {
                comine_onnx_value **arr = f.num == 11 ? &om->inputs : &om->outputs;
                int *n = f.num == 11 ? &om->n_inputs : &om->n_outputs;
                st = parse_value(&s, (comine_onnx_value *)grow((void **)arr, n, sizeof **arr));
            }
            break;
        default: break;
        }
        if (st) return st;
    }
    return st;
}

static comine_status parse_model(pb *c, comine_onnx_model *om)
{
    comine_status st;
    pb_field f, g;
    bool done, d2, have_graph = false;
    while (!(st = next(c, &f, &done)) && !done) {
        pb s = sub(c, &f);
        switch (f.num) {
        case 1: if (!(st = want(c, &f, 0, "ModelProto.ir_version"))) om->ir_version = (int64_t)f.v; break;
        case 2: st = str(c, &f, &om->producer_name, "ModelProto.producer_name"); break;
        case 3: st = str(c, &f, &om->producer_version, "ModelProto.producer_version"); break;
        case 7:
            if ((st = want(c, &f, 2, "ModelProto.graph"))) break;
            if (have_graph) st = BAD(c, f.at, "a second graph");
            else st = parse_graph(&s, om);
            have_graph = true;
            break;
        case 8: {
            if ((st = want(c, &f, 2, "ModelProto.opset_import"))) break;
            char *domain = NULL;
            int64_t version = 0;
            while (!(st = next(&s, &g, &d2)) && !d2) {
                if (g.num == 1) st = str(&s, &g, &domain, "OperatorSetIdProto.domain");
                else if (g.num == 2 && !(st = want(&s, &g, 0, "OperatorSetIdProto.version"))) version = (int64_t)g.v;
                if (st) break;
            }
            if (!st && (!domain || !domain[0] || !strcmp(domain, "ai.onnx"))) om->opset = version;
            free(domain);
            break;
        }
        case 14: {
            if ((st = want(c, &f, 2, "ModelProto.metadata_props"))) break;
            char *key = NULL, *value = NULL;
            while (!(st = next(&s, &g, &d2)) && !d2) {
                if (g.num == 1) st = str(&s, &g, &key, "StringStringEntryProto.key");
                else if (g.num == 2) st = str(&s, &g, &value, "StringStringEntryProto.value");
                if (st) break;
            }
            int n = om->n_meta;
            *(char **)grow((void **)&om->meta_keys, &n, sizeof(char *)) = key ? key : comine_strdup("");
            *(char **)grow((void **)&om->meta_values, &om->n_meta, sizeof(char *)) = value ? value : comine_strdup("");
            break;
        }
        default: break;
        }
        if (st) return st;
    }
    if (!st && !have_graph) st = comine_fail(COMINE_ERR_FORMAT, "%s: no graph (not an ONNX model file?)", c->file);
    return st;
}

comine_status comine_onnx_parse(comine_onnx_model **out, const uint8_t *data, size_t size, const char *name)
{
    *out = NULL;
    comine_onnx_model *om = comine_calloc(1, sizeof *om);
    pb c = {data, data + size, data, name};
    comine_status st = parse_model(&c, om);
    if (st) {
        comine_onnx_free(om);
        return st;
    }
    *out = om;
    return COMINE_OK;
}

comine_status comine_onnx_read(comine_onnx_model **out, const char *path)
{
    uint8_t *data = NULL;
    size_t size = 0;
    *out = NULL;
    comine_status st = comine_read_file(path, &data, &size);
    if (st) return st;
    st = comine_onnx_parse(out, data, size, path);
    free(data);
    return st;
}

void comine_onnx_free(comine_onnx_model *om)
{
    if (!om) return;
    for (int i = 0; i < om->n_nodes; i++) {
        comine_onnx_node *nd = &om->nodes[i];
        free(nd->name);
        free(nd->op_type);
        free(nd->domain);
        for (int k = 0; k < nd->n_inputs; k++) free(nd->inputs[k]);
        for (int k = 0; k < nd->n_outputs; k++) free(nd->outputs[k]);
        free(nd->inputs);
        free(nd->outputs);
        for (int k = 0; k < nd->n_attrs; k++) {
            comine_onnx_attr *a = &nd->attrs[k];
            free(a->name);
            free(a->s);
            free(a->ints);
            free(a->floats);
            if (a->t) free_tensor(a->t);
            free(a->t);
        }
        free(nd->attrs);
    }
    free(om->nodes);
    for (int i = 0; i < om->n_inits; i++) free_tensor(&om->inits[i]);
    free(om->inits);
    for (int w = 0; w < 2; w++) {
        comine_onnx_value *vs = w ? om->outputs : om->inputs;
        int n = w ? om->n_outputs : om->n_inputs;
        for (int i = 0; i < n; i++) {
            free(vs[i].name);
            for (int d = 0; d < COMINE_ONNX_MAX_DIMS; d++) free(vs[i].dim_param[d]);
        }
        free(vs);
    }
    for (int i = 0; i < om->n_meta; i++) {
        free(om->meta_keys[i]);
        free(om->meta_values[i]);
    }
    free(om->meta_keys);
    free(om->meta_values);
    free(om->producer_name);
    free(om->producer_version);
    free(om->graph_name);
    free(om);
}

const comine_onnx_tensor *comine_onnx_find_init(const comine_onnx_model *om, const char *name)
{
    for (int i = 0; i < om->n_inits; i++)
        if (!strcmp(om->inits[i].name, name)) return &om->inits[i];
    return NULL;
}

/* onnx.h: ONNX models out of and into comine (docs/FORMATS.md, "ONNX models").
 *
 * A small reader and writer of the protobuf wire format for the subset of onnx.proto that
 * face embedding networks use (ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto,
 * AttributeProto, OperatorSetIdProto, metadata), the export of a comine model as an ONNX
 * graph, and the import of insightface's iresnet / MobileFaceNet ONNX graphs (as comine
 * writes them, or as torch.onnx.export writes them, batch norms folded into convolutions or
 * not).  No protobuf library: the reader checks every length and varint against the end of
 * its buffer and reports the byte offset of what is wrong. */
#ifndef COMINE_ONNX_H
#define COMINE_ONNX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comine/backend.h"
#include "comine/core.h"
#include "comine/model.h"

#define COMINE_ONNX_MAX_DIMS 8

/* TensorProto.DataType values used here */
enum { COMINE_ONNX_FLOAT = 1, COMINE_ONNX_INT32 = 6, COMINE_ONNX_INT64 = 7, COMINE_ONNX_DOUBLE = 11 };
/* AttributeProto.AttributeType values used here */
enum { COMINE_ONNX_ATTR_FLOAT = 1, COMINE_ONNX_ATTR_INT = 2, COMINE_ONNX_ATTR_STRING = 3,
       COMINE_ONNX_ATTR_TENSOR = 4, COMINE_ONNX_ATTR_FLOATS = 6, COMINE_ONNX_ATTR_INTS = 7 };

/* A tensor: float data for FLOAT and DOUBLE tensors (doubles converted), int64 for the
 * integer types.  `data` / `ints` are owned unless `borrowed` (the writer's view of a model). */
typedef struct comine_onnx_tensor {
    char *name;
    int data_type;
    int ndim;
    int64_t dims[COMINE_ONNX_MAX_DIMS];
    size_t n;       /* elements */
    float *data;    /* (n) for FLOAT / DOUBLE, else NULL */
    int64_t *ints;  /* (n) for INT32 / INT64, else NULL */
    bool borrowed;
} comine_onnx_tensor;

typedef struct comine_onnx_attr {
    char *name;
    int type;
    float f;
    int64_t i;
    char *s;
    int n_ints, n_floats;
    int64_t *ints;
    float *floats;
    comine_onnx_tensor *t; /* ATTR_TENSOR */
} comine_onnx_attr;

typedef struct comine_onnx_node {
    char *name, *op_type, *domain;
    int n_inputs, n_outputs, n_attrs;
    char **inputs, **outputs; /* an empty input name is an omitted optional input */
    comine_onnx_attr *attrs;
} comine_onnx_node;

/* A graph input or output: a float tensor type with a shape; a dimension with dim_param
 * set (a symbolic size such as the batch) has dims[i] = -1. */
typedef struct comine_onnx_value {
    char *name;
    int elem_type;
    int ndim; /* -1: no shape given */
    int64_t dims[COMINE_ONNX_MAX_DIMS];
    char *dim_param[COMINE_ONNX_MAX_DIMS];
} comine_onnx_value;

typedef struct comine_onnx_model {
    int64_t ir_version;
    int64_t opset; /* the default ("" or "ai.onnx") domain's version; 0 when absent */
    char *producer_name, *producer_version, *graph_name;
    int n_nodes, n_inits, n_inputs, n_outputs, n_meta;
    comine_onnx_node *nodes;
    comine_onnx_tensor *inits;
    comine_onnx_value *inputs, *outputs;
    char **meta_keys, **meta_values;
} comine_onnx_model;

/* Parse an ONNX file's bytes (`name` for messages).  Fields outside the subset are skipped;
 * external tensor data, unsupported tensor types and anything malformed are errors naming
 * the byte offset.  Free with comine_onnx_free. */
comine_status comine_onnx_parse(comine_onnx_model **out, const uint8_t *data, size_t size, const char *name);
comine_status comine_onnx_read(comine_onnx_model **out, const char *path);
void comine_onnx_free(comine_onnx_model *om);
/* Serialise (atomically) to path. */
comine_status comine_onnx_write(const comine_onnx_model *om, const char *path);
/* The initializer of that name, or NULL. */
const comine_onnx_tensor *comine_onnx_find_init(const comine_onnx_model *om, const char *name);

/* The embedding network of m as ONNX (opset 11): input "data" (N, 3, S, S) float32, NCHW, RGB,
 * already normalised as comine normalises ((x - 127.5) / 128), N dynamic; output "embedding"
 * (N, emb_dim), the raw embedding before any L2 normalisation.  Batch norms stay separate
 * nodes and every initializer carries comine's (insightface's) tensor name. */
comine_status comine_onnx_export(const comine_model *m, const char *path);
/* An ONNX iresnet18/34/50/100 or MobileFaceNet graph into a new model on `be`.  arch_name
 * NULL: the architecture is recognised from the graph (and comine's metadata when present).
 * Every weight is matched to comine's tensor by the graph's structure and checked by shape
 * (and by name where the initializer has one of comine's names); a mismatch names the
 * node, the initializer and comine's tensor. */
comine_status comine_onnx_import(comine_model **out, const char *path, const char *arch_name,
                                 const comine_backend *be, int max_batch);

#endif

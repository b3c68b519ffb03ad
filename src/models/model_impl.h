/* model_impl.h: the inside of a comine_model, shared by the files of src/models/: the graph
 * builders (model_graph.c), the memory planning (model_memory.c), create / free / init and
 * the accessors (model.c), forward / backward / folding (model_exec.c) and the model file
 * (model_file.c).  Not part of the public API. */
#ifndef COMINE_MODEL_IMPL_H
#define COMINE_MODEL_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comine/model.h"
#include "comine/nn.h"

#define COMINE_MODEL_MAX_EMB 65536
#define COMINE_MODEL_MAX_WIDTH 4.0f

typedef enum {
    MODEL_INIT_KAIMING, /* normal(0, sqrt(2 / fan_in)) */
    MODEL_INIT_ONE,
    MODEL_INIT_ZERO,
    MODEL_INIT_PRELU,   /* 0.25 */
    MODEL_INIT_LINEAR   /* uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), torch.nn.Linear's default */
} model_init;

/* A table of named tensors laid out back to back in one buffer. */
typedef struct model_table {
    int n, cap;
    comine_tensor_info *info;
    model_init *init;
    int *fan_in;
    size_t total; /* floats */
} model_table;

/* One activation: (N, H, W, C) for N <= max_batch. */
typedef struct model_value {
    int H, W, C;
    size_t size;        /* floats per image */
    size_t offset;      /* into the activation arena */
    bool transient;     /* lives in a scratch buffer: see recompute */
    int scratch;        /* transient: which of the two scratch buffers (0 or 1) */
    int grad_slot;      /* -1: no gradient (the input images) */
    size_t grad_offset; /* into the activation-gradient arena */
} model_value;

typedef enum { MODEL_OP_CONV, MODEL_OP_BN, MODEL_OP_PRELU, MODEL_OP_ADD, MODEL_OP_DROPOUT, MODEL_OP_LINEAR } model_op_kind;

typedef struct model_op {
    model_op_kind kind;
    int in, in2, out;   /* values (in2: the second operand of an add) */
    int w, b;           /* tensors: weight / gamma / alpha and bias / beta (-1 none) */
    bool fixed_gamma;   /* BN weight is in the buffer table (not trained) */
    int running_mean, running_var; /* buffer tensors */
    size_t stats_offset;           /* BN's saved mean and inverse std (2 C floats) */
    size_t mask_offset;            /* dropout mask, per image, in bytes */
    float p;
    int C, H, W, OC, K, stride, pad, groups; /* conv */
    int IN, OUT;                               /* linear */
    comine_conv2d conv;
    bool zero_in, zero_in2; /* backward: first write of that input's gradient */
    /* eval batch norm folding (see fold_batchnorms in model_exec.c) */
    int fold;                  /* conv: index of the BN op folded into it, -1 none */
    size_t fold_offset;        /* conv: its folded weight, then bias (OC), in `folded` */
    comine_conv2d conv_folded; /* conv: the same geometry with a bias, made on first use */
    bool folded;               /* BN: runs inside the conv before it in an eval forward */
    /* conv, eval forward: the PReLU op its input goes through inside it (-1 none), and
     * whether its own epilogue's PReLU is left to the conv that alone reads its output
     * (set with the folding: fold_batchnorms in model_exec.c) */
    int in_prelu;
    bool hands_prelu;
    /* A BN (not folded) whose output only the next op, a conv, reads: its eval scale, then
     * shift (2 C floats) at affine_offset in `folded` (SIZE_MAX: none); handed: that conv
     * applies it to its input inside it in an eval forward (the conv's in_bn, else -1) */
    size_t affine_offset;
    bool handed;
    int in_bn;
    /* conv: one plan per part of an eval forward split over the batch (conv_folded's or
     * conv's geometry), n_part of them, made on first use */
    comine_conv2d *conv_part;
    int n_part;
    /* BN whose output only the next op (a conv or a PReLU) reads: the output is not kept
     * for the backward but computed again from the BN's input just before that op's backward */
    bool recompute;
} model_op;

struct comine_model {
    comine_arch arch;
    const comine_backend *be;
    int max_batch;
    model_table params_table, bufs;
    int n_values, cap_values;
    model_value *values;
    int n_ops, cap_ops;
    model_op *ops;
    size_t n_acts, n_dacts, n_stats, n_mask;
    float *params, *grads, *buffers, *acts, *dacts, *stats;
    bool dacts_borrowed; /* dacts belongs to another model (comine_model_share_grad_scratch) */
    uint8_t *masks;
    double flops;
    int last_N;
    bool last_training;
    /* Eval forward with every BN that only reads a conv's output folded into that conv
     * (weights scaled by gamma / sqrt(var + eps), bias beta - mean * that scale).  The
     * folded tensors (n_folded floats, allocated on first use) are rebuilt whenever
     * fold_fresh is false: a training forward, init, copy_state and handing out writable
     * params or buffers clear it. */
    bool fold_bn;
    bool fold_fresh;
    size_t n_folded;
    float *folded;
    /* A folded eval forward on the CPU splits the batch over the threads: each thread runs
     * the ops before the first linear layer on its share of the images, a group at a time,
     * with its own plans; the rest runs on the whole batch (see model_exec.c). */
    int eval_split; /* images per group, COMINE_EVAL_SPLIT_AUTO, or 0: no split */
    /* Floats per image of the two scratch buffers of transient values (the largest value
     * each holds).  The parts of a split forward, which run at different ops at once, each
     * have their own pair (split_scratch: per part, both buffers for a group of images). */
    size_t scratch_image[2];
    float *split_scratch;
    size_t split_scratch_floats;
};

/* Appends the layer graph and the tensor tables of m->arch (checked) to an empty model
 * (model_graph.c). */
void comine_model_build_graph(comine_model *m);
/* Frees what comine_model_build_graph allocated (not m itself). */
void comine_model_free_graph(comine_model *m);
/* Runs the memory-planning passes over a built graph for m->max_batch images: the eval
 * BN folding, in-place adds, transient BN outputs, the activation arena layout and the
 * gradient slots (model_memory.c).  Sets the offsets and the totals n_acts, n_dacts and
 * n_folded; allocates nothing that outlives the call. */
void comine_model_plan_memory(comine_model *m);

/* comine_model_create without the initialisation (parameters zero): for load. */
comine_status comine_model_create_uninit(comine_model **out, const comine_arch *arch, const comine_backend *be,
                                         int max_batch);
/* The layer graph and tensor tables of an architecture, without any arena allocated (what a
 * model file is checked against before the model is created); NULL when the architecture is
 * invalid.  Free with comine_model_plan_free. */
comine_model *comine_model_plan(const comine_arch *arch);
void comine_model_plan_free(comine_model *m);

#endif

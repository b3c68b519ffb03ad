/* model.h: face embedding backbones (insightface's iresnet18/34/50/100 and MobileFaceNet)
 * as layer graphs over nn.h, with every parameter in one contiguous buffer described by a
 * tensor table (the same table drives init, save/load, the optimizer and, later, the
 * allreduce), gradients and momentum mirroring it, and a model file format.
 *
 * Input: images (N, S, S, 3) NHWC float, normalised (x - 127.5) / 128, S = arch.input.
 * Output: embeddings (N, emb_dim), not normalised (the head normalises).
 *
 * Tensor names and shapes are insightface's state_dict ones, except that iresnet's
 * fc.weight columns follow comine's NHWC flatten order (H, W, C), not PyTorch's (C, H, W).
 * The parameter buffer holds the trainable tensors only; the buffer block holds the BN
 * running statistics and iresnet's fixed embedding BN weight.  A created model is
 * initialised with seed 0.  An eval forward reuses the training activations: run it
 * between a training forward and its backward only on another model. */
#ifndef COMINE_MODEL_H
#define COMINE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "comine/backend.h"
#include "comine/core.h"

typedef struct comine_arch {
    char name[32];   /* "iresnet18", "iresnet34", "iresnet50", "iresnet100", "mobilefacenet" */
    float width;     /* channel multiplier for iresnets (1 = insightface's 64-128-256-512) */
    int input;       /* 112 (default), 64 or 32 for the iresnets; 112 for mobilefacenet */
    int emb_dim;     /* 512 */
    float dropout;   /* before the final FC (insightface: 0) */
} comine_arch;

/* Fill an arch with defaults for a name; COMINE_ERR_ARG for an unknown name or bad sizes. */
comine_status comine_arch_default(comine_arch *arch, const char *name);
comine_status comine_arch_check(const comine_arch *arch);

typedef struct comine_tensor_info {
    const char *name;     /* e.g. "layer1.0.conv1.weight" (insightface's names) */
    size_t offset;        /* in floats, into the parameter buffer */
    size_t size;          /* in floats */
    int ndim;
    int shape[4];
} comine_tensor_info;

typedef struct comine_model comine_model;

comine_status comine_model_create(comine_model **out, const comine_arch *arch, const comine_backend *be,
                                  int max_batch);
void comine_model_free(comine_model *m);

/* insightface's PyTorch initialisation, from a seed: Kaiming-normal convolutions
 * (torch.nn.init.kaiming_normal_ defaults: fan_in, gain sqrt(2)), BN weight 1 / bias 0,
 * PReLU 0.25, linear layers as torch.nn.Linear's default; running stats 0 / 1. */
void comine_model_init(comine_model *m, uint64_t seed);

const comine_arch *comine_model_arch(const comine_model *m);
int comine_model_max_batch(const comine_model *m);
size_t comine_model_num_params(const comine_model *m);
int comine_model_num_tensors(const comine_model *m);
const comine_tensor_info *comine_model_tensor(const comine_model *m, int i);
float *comine_model_params(comine_model *m);    /* (num_params) */
float *comine_model_grads(comine_model *m);     /* (num_params), mirrors params */
/* BN running statistics: not parameters, but state that is saved and loaded. */
size_t comine_model_num_buffers(const comine_model *m);
float *comine_model_buffers(comine_model *m);
/* The buffer block is described by its own table (offsets into comine_model_buffers):
 * BN running_mean / running_var, and the iresnets' fixed embedding BN weight
 * ("features.weight", held at 1 and never trained, as requires_grad False in insightface). */
int comine_model_num_buffer_tensors(const comine_model *m);
const comine_tensor_info *comine_model_buffer_tensor(const comine_model *m, int i);
/* Index of a tensor by its name in the parameter table (*is_buffer = false) or the buffer
 * table (*is_buffer = true); -1 when absent.  is_buffer may be NULL. */
int comine_model_find_tensor(const comine_model *m, const char *name, bool *is_buffer);
/* Forward FLOPs per image (2 x MACs of conv and linear layers). */
double comine_model_flops(const comine_model *m);
/* Floats preallocated for activations and their gradients (max_batch images). */
size_t comine_model_activation_floats(const comine_model *m);
/* Let m use `lender`'s activation-gradient arena (the scratch of a backward) instead of its
 * own, which is freed: for networks that never run backward at the same time (the two
 * Co-Mining peers).  Does nothing when lender's arena is smaller.  lender must outlive m. */
void comine_model_share_grad_scratch(comine_model *m, comine_model *lender);

/* emb is (N, emb_dim), images (N, S, S, 3); N <= max_batch.  training = batch-statistics BN,
 * running-stat update, dropout from dropout_rng (may be NULL when dropout is 0). */
void comine_model_forward(comine_model *m, float *emb, const float *images, int N, bool training,
                          comine_rng *dropout_rng);
/* An eval forward folds each batch norm that only reads a convolution's output into that
 * convolution (exact in real arithmetic; a last-bit difference in float).  The folded
 * weights are rebuilt after a training forward, init, copy_state, or a call of
 * comine_model_params or comine_model_buffers: write parameters or buffers through a
 * pointer obtained after the last eval forward.  fold = false: the plain eval forward
 * (on by default). */
void comine_model_set_fold_bn(comine_model *m, bool fold);
/* A folded eval forward on a backend that can (the CPU, with 2 or more threads) splits the
 * batch over the compute threads: each runs the convolutional trunk on its share of the
 * images, `images` at a time (their activations then stay in the caches), on that one
 * thread; the layers from the first linear one on run on the whole batch.  images =
 * COMINE_EVAL_SPLIT_AUTO (the default) picks the group from the network: the largest of 8,
 * 4, 2 and 1 images whose largest activation takes at most 8 MiB (MobileFaceNet @112: 4;
 * iresnet18 x0.25 @64: 8; measured in docs/PERFORMANCE.md).  Each extra thread
 * keeps a copy of the folded weights: no split where a copy exceeds 32 MiB or all of them
 * 256 MiB, nor for a batch of fewer images than threads.  An image's
 * embedding is the same with and without the split up to the last bits (a convolution may
 * pick another kernel for another batch size).  images = 0: no split, the threads share
 * each layer. */
#define COMINE_EVAL_SPLIT_AUTO (-1)
#define COMINE_EVAL_SPLIT_DEFAULT COMINE_EVAL_SPLIT_AUTO
void comine_model_set_eval_split(comine_model *m, int images);
/* The images per group an eval forward's split uses (COMINE_EVAL_SPLIT_AUTO resolved), 0 when
 * it is set not to split; whether a forward splits also depends on the batch and threads. */
int comine_model_eval_split_images(const comine_model *m);
/* After a training forward of the same N: accumulates into the gradient buffer. */
void comine_model_backward(comine_model *m, const float *demb, int N);
/* The same, calling ready(ctx, from) as the backward goes down the network: the gradients
 * [from, num_params) are then final (the last call has from = 0), so that their all-reduce
 * can start while the backward of the layers below still runs. */
typedef void (*comine_grads_ready_fn)(void *ctx, size_t from);
void comine_model_backward_notify(comine_model *m, const float *demb, int N, comine_grads_ready_fn ready, void *ctx);
void comine_model_zero_grad(comine_model *m);

/* Model files: magic, version, architecture, tensor table, parameters, BN buffers, CRC-32.
 * save is atomic; load reports a wrong, truncated or corrupted file clearly. */
comine_status comine_model_save(const comine_model *m, const char *path);
comine_status comine_model_load(comine_model **out, const char *path, const comine_backend *be, int max_batch);
/* The same record inside an open stream (checkpoints embed it); `name` is for messages. */
comine_status comine_model_write(const comine_model *m, FILE *fp);
comine_status comine_model_read(comine_model **out, FILE *fp, const char *name, const comine_backend *be,
                                int max_batch);
/* Copy parameters and buffers from a model of the same architecture. */
void comine_model_copy_state(comine_model *dst, const comine_model *src);

#endif

/* peer.h: one peer network of a training step (backbone, ArcFace head, their optimizer
 * state and per-batch buffers) and the phases of the step for one peer, which step.c
 * composes into the Co-Mining step:
 *   forward (plain per-sample losses) -> comine_select -> objective under the assigned forms
 *   -> backward (with the finiteness check) -> update. */
#ifndef COMINE_TRAIN_PEER_H
#define COMINE_TRAIN_PEER_H

#include <stdbool.h>
#include <stdint.h>

#include "comine/loss.h"
#include "comine/model.h"

typedef struct comine_peer {
    const comine_backend *be; /* every float * below is its memory, except the per-sample host arrays */
    comine_model *model;
    float *momentum;        /* (num_params) */
    comine_arcface head;    /* the whole head, or this rank's shard: head.K classes from class_lo, head.S
                               sub-centres each (S > 1: whole heads only) */
    float *head_weight;     /* (head.K head.S, D) */
    float *head_grad;       /* (head.K head.S, D); NULL when sampled (the block's instead) */
    float *head_momentum;   /* (head.K head.S, D) */
    int class_lo, classes;  /* the first class held and the head's classes (all ranks) */
    bool sharded;           /* the rows held are fewer than classes: the class-sharded head of loss.h over the ranks */
    int shard_classes;      /* the rows held: classes [class_lo, class_lo + shard_classes) */
    /* Partial FC (partial_fc.h): the step's sampled rows of the shard, gathered; head.K = block_rows */
    bool sampled;
    int block_rows, block_cap;
    const int *block_classes;          /* (block_rows) their classes, ascending (the draw's memory) */
    float *block_weight, *block_grad;  /* (block_cap, D): the rows' weights (a copy) and gradients */
    /* sharded head: the global batch's embeddings, their gradients and the rows' statistics */
    float *emb_all, *demb_all;         /* (B, D) */
    float *target_cos, *max_cos;       /* (B) */
    double *zmax, *neg_sum, *neg_cos;  /* (B) */
    float *emb, *demb;      /* (B, D) */
    float *loss;            /* (B) host: plain ArcFace loss, what the selection sees */
    float *train_loss;      /* (B) host: loss under the sample's assigned form */
    uint8_t *form;          /* (B) host */
    float *weight;          /* (B) host */
    float *bn_backup;       /* (num_buffers) running stats before the step (restored on a skipped step) */
    comine_rng dropout_rng;
    /* several ranks: the backbone's gradients all-reduced in buckets during the backward */
    struct comine_dist_buckets *buckets;
    bool reducing;          /* a backward has started them (comine_peer_model_backward) */
} comine_peer;

/* Peer k of a run seeded `seed`: its own initial weights (insightface's init, ArcFace
 * weights normal(0, 0.01)) and dropout stream; K classes of S sub-centres each (1: plain
 * ArcFace), batches of at most B.  The head holds classes [class_lo, class_lo + head_classes)
 * (the whole head: 0, K), their initial rows those of the whole head, whatever the split; with
 * S > 1 the K S rows are drawn as the K rows of S = 1 (the first K of them are the S = 1 head's
 * rows) and the head must be whole. */
comine_status comine_peer_create(comine_peer *p, const comine_backend *be, const comine_arch *arch, int K, int S,
                                 int B, uint64_t seed, int k, int class_lo, int head_classes, bool sampled);
/* Partial FC: the step's rows are the classes (n, ascending, within the shard): their weights
 * gathered into block_weight, the head made one of n classes (CPU backend). */
void comine_peer_sample(comine_peer *p, const int *classes, int n);
/* The whole head (not sharded, not sampled) replaced by one of K classes of S sub-centres
 * holding weight and momentum ((K S, D), host); its gradient buffer is new. */
comine_status comine_peer_replace_head(comine_peer *p, int K, int S, const float *weight, const float *momentum);
/* Floats of the peer's head weights (its rows times D; all rows held, sampled or not). */
size_t comine_peer_head_floats(const comine_peer *p);
void comine_peer_free(const comine_backend *be, comine_peer *p);
/* The backbone's backward of n rows from demb (p->model's last training forward); with
 * several ranks the all-reduce of its gradients starts in buckets of COMINE_PEER_BUCKET floats
 * (or $COMINE_BUCKET_FLOATS) as the backward leaves them final, and comine_peer_allreduce_grads
 * finishes it. */
#define COMINE_PEER_BUCKET ((size_t)1 << 20)
void comine_peer_model_backward(comine_peer *p, const float *demb, int n);
/* Training forward of n images (N, S, S, 3; device memory): saves the BN running stats,
 * then embeddings, cosines and the plain per-sample losses (p->loss, host). */
void comine_peer_forward(comine_peer *p, const float *images, const int *labels, int n, const comine_arcface_cfg *cfg);
/* The peer's loss under its assigned forms and weights (p->form, p->weight). */
double comine_peer_objective(comine_peer *p, const int *labels, int n, const comine_arcface_cfg *cfg);
/* Gradients of that loss (n = 0: zero gradients). */
void comine_peer_backward(comine_peer *p, const comine_backend *be, const int *labels, int n,
                          const comine_arcface_cfg *cfg);
/* Sum the gradients (backbone and head) over the ranks (dist.h; nothing with one rank). */
void comine_peer_allreduce_grads(comine_peer *p);
/* Average the BN running statistics over the ranks. */
void comine_peer_average_bn(comine_peer *p);
/* True when every gradient is finite. */
bool comine_peer_grads_finite(const comine_peer *p, const comine_backend *be);
/* Undo the forward's running-stat update (a skipped step). */
void comine_peer_restore_bn(comine_peer *p);
/* SGD on the backbone and the head (sampled: the drawn rows only, in place, from the block's
 * gradients; the other rows and their momentum are untouched, as Partial FC). */
void comine_peer_update(comine_peer *p, const comine_backend *be, float lr, float momentum, float weight_decay);

#endif

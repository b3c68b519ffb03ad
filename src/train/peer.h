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
    comine_arcface head;
    float *head_weight;     /* (K, D) */
    float *head_grad;       /* (K, D) */
    float *head_momentum;   /* (K, D) */
    float *emb, *demb;      /* (B, D) */
    float *loss;            /* (B) host: plain ArcFace loss, what the selection sees */
    float *train_loss;      /* (B) host: loss under the sample's assigned form */
    uint8_t *form;          /* (B) host */
    float *weight;          /* (B) host */
    float *bn_backup;       /* (num_buffers) running stats before the step (restored on a skipped step) */
    comine_rng dropout_rng;
} comine_peer;

/* Peer k of a run seeded `seed`: its own initial weights (insightface's init, ArcFace
 * weights normal(0, 0.01)) and dropout stream; K classes, batches of at most B. */
comine_status comine_peer_create(comine_peer *p, const comine_backend *be, const comine_arch *arch, int K, int B,
                                 uint64_t seed, int k);
void comine_peer_free(const comine_backend *be, comine_peer *p);
/* Training forward of n images (N, S, S, 3; device memory): saves the BN running stats,
 * then embeddings, cosines and the plain per-sample losses (p->loss, host). */
void comine_peer_forward(comine_peer *p, const float *images, const int *labels, int n, const comine_arcface_cfg *cfg);
/* The peer's loss under its assigned forms and weights (p->form, p->weight). */
double comine_peer_objective(comine_peer *p, const int *labels, int n, const comine_arcface_cfg *cfg);
/* Gradients of that loss; false when a gradient is not finite. */
bool comine_peer_backward(comine_peer *p, const comine_backend *be, const int *labels, int n,
                          const comine_arcface_cfg *cfg);
/* Undo the forward's running-stat update (a skipped step). */
void comine_peer_restore_bn(comine_peer *p);
/* SGD on the backbone and the head. */
void comine_peer_update(comine_peer *p, const comine_backend *be, float lr, float momentum, float weight_decay);

#endif

/* trainer.h: `comine train` as a library call: two peer networks (or one, for the
 * single-network modes) trained on the same mini-batches with the Co-Mining step of
 * comining.h, ArcFace heads, SGD; per-epoch metrics, the noise votes, checkpoints that
 * resume, and the final model files.  What a run writes into its folder:
 *   args.txt          the command line (one argument per line), replayed by --resume
 *   classes.tsv       label -> identity name (folder datasets)
 *   metrics.jsonl     one JSON object per epoch
 *   noise.csv         one row per training sample: votes, rounds, score, flagged, truth
 *   cos_epoch<E>.csv  each sample's cos(theta_y) under both peers (end of warm-up, end)
 *   peer_a.model, peer_b.model   the embedding networks (model.h's format)
 *   checkpoint.bin    everything needed to continue: both peers, heads, momentum, RNGs,
 *                     epoch/step, per-epoch accumulators, votes */
#ifndef COMINE_TRAINER_H
#define COMINE_TRAINER_H

#include <stdbool.h>
#include <stdint.h>

#include "comine/comining.h"
#include "comine/core.h"
#include "comine/data.h"
#include "comine/loss.h"
#include "comine/model.h"
#include "comine/optim.h"

typedef struct comine_train_cfg {
    const char *data;          /* folder, list file or .rec */
    const char *root;          /* list files: folder of the paths (NULL = the list's folder) */
    const char *out;           /* run folder */
    comine_arch arch;
    comine_select_cfg select;  /* mode, re-weighting, w */
    comine_arcface_cfg head;   /* s, m, fallback, dm, t, subcenters */
    int epochs, batch;
    comine_lr_schedule lr;     /* base_lr, warm-up, schedule kind; total_epochs 0 = the run's epochs */
    double momentum, weight_decay;
    float tau;                 /* expected noise rate */
    bool tau_auto;             /* tau estimated before training by cross-fitting (estimate.h,
                                  comine_tau_crossfit: RUN/tau_crossfit/, RUN/tau_estimate.json); `tau` is
                                  ignored */
    int tau_epochs;            /* --tau auto: epochs of each fold's network (8) */
    int tau_folds;             /* --tau auto: folds of each label's samples (comine_tau_crossfit; 2) */
    int tau_rounds;            /* --tau auto: rounds of cross-fitting (comine_tau_crossfit; 1) */
    double tau_by_image;       /* --tau auto: share of wrong labels on images at random (by_image; 0.5) */
    int tk;                    /* warm-up epochs of the drop rate */
    bool merge_duplicates;     /* at the end of epoch tk - 1, merge the labels found to be one person */
    double merge_threshold;    /* their similarity threshold (NAN: dedup's automatic rule) */
    int subcenter_drop;        /* with head.subcenters > 1: after this many epochs each head keeps each class's
                                  dominant sub-centre, and mode arcface leaves out the samples farther than
                                  subcenter_drop_angle from it (0: never) */
    float subcenter_drop_angle; /* degrees (75) */
    float vote_threshold;      /* flagged when votes / rounds >= this (0.5) */
    uint64_t seed;
    const char *device;        /* backend device: "cpu", "cuda", "cuda:N" (NULL = the best available) */
    int threads;               /* compute threads (0 = default) */
    int loader_threads;
    bool flip;
    float jitter;
    bool cache;
    comine_on_bad on_bad;
    int checkpoint_every;      /* steps between checkpoints (0 = epoch ends only) */
    int max_bad_steps;         /* consecutive non-finite steps before stopping */
    const char *init[2];       /* optional: model files the peers' backbones start from (init[1] NULL: both
                                  from init[0]; the heads are new); a resume reads the
                                  checkpoint instead, or starts from these where it has none yet; the
                                  networks of --tau auto's cross-fit start from init[0] */
    const char *val;           /* optional: validation sets, comma-separated (.bin or pairs files), verified at
                                  every epoch end (trainer_val.h) */
    const char *val_root;      /* images of the pairs files (NULL: each file's folder) */
    int val_every;             /* also validate every N global steps (0: epoch ends only) */
    int log_every;             /* steps between progress lines (0 = auto) */
    bool resume;               /* continue from out/checkpoint.bin (from the start when there is none yet) */
    bool quiet;
    /* Testing aid: poison the loss with NaN at global steps inject_nan_step ..
     * inject_nan_step + inject_nan_count - 1 (1 = the run's first step; 0 = never). */
    int64_t inject_nan_step;
    int inject_nan_count;
    /* Ghost batch norm (one process, cpu): each 1/bn_groups of the batch normalised on its own,
     * the one-process reference of a run of bn_groups ranks (step.h); 1 = off. */
    int bn_groups;
    /* Partial FC (partial_fc.h): each step's softmax over the batch's classes and this fraction
     * of the others, in (0, 1]; 1 = every class (the plain head).  Recorded in the checkpoint. */
    float sample_rate;
    /* Optional (one flag per sample of the data set, in its order): train on the samples
     * flagged 1 only (cross-fitting); NULL = all. */
    const uint8_t *subset;
} comine_train_cfg;

/* The defaults of `comine train` (its --help shows these): iresnet18@112, comining with the
 * margin re-weighting, 24 epochs of batch 64, SGD lr 0.1 on a cosine schedule over the run
 * with 1 warm-up epoch, tau 0.2 reached after tk 5 epochs. */
void comine_train_cfg_default(comine_train_cfg *cfg);

/* Summary of a finished run (what the CLI prints at the end). */
typedef struct comine_train_summary {
    int epochs_done;
    int samples;
    int flagged;
    bool has_truth;
    double det_precision, det_recall, det_f1; /* flagged vs truth (has_truth) */
    double seconds;
    double final_loss_a, final_loss_b;
    double val_acc_a, val_acc_b, val_acc_ensemble; /* the first set's, last validation; NAN when none */
    double best_val_acc_a, best_val_acc_b;         /* the best of each peer on the first set (NAN: none) */
    double tau_estimate;                           /* --tau auto: the estimate used (NAN otherwise) */
} comine_train_summary;

/* Runs (or resumes) a training run.  COMINE_ERR_INTERRUPTED after SIGINT/SIGTERM (a
 * checkpoint was written), other errors with comine_last_error(). */
comine_status comine_train(const comine_train_cfg *cfg, comine_train_summary *summary);

#endif

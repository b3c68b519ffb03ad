/* run_heads.h: the ArcFace heads (class centres) of a training run, read out of its
 * checkpoint.bin without touching the run: each peer's head weight W (K x D), row j the centre
 * of label j in that peer's embedding space.  The checkpoint's layout is the one documented at
 * the top of src/train/checkpoint.c (FORMATS.md, `checkpoint.bin`); this reader only reads it. */
#ifndef COMINE_RUN_HEADS_H
#define COMINE_RUN_HEADS_H

#include <stdint.h>

#include "comine/core.h"
#include "comine/model.h"

#define COMINE_RUN_CHECKPOINT "checkpoint.bin"

typedef struct comine_run_heads {
    int n_peers;          /* 1 or 2 */
    int K, D;             /* classes, embedding size */
    uint64_t samples;     /* training samples of the run */
    uint64_t seed;
    int epoch, step;      /* the position the checkpoint resumes at */
    comine_arch arch;     /* the backbone of peer A (both peers share it) */
    float *weight[2];     /* (K, D) per peer; weight[1] is NULL with one peer */
    int subcenters;       /* the heads' sub-centres per class (1: plain ArcFace); with more, weight
                             holds each class's dominant one (run_heads.c: the largest norm) */
    int64_t peers_at;     /* byte offset of peer A's model record in the file */
} comine_run_heads;

/* Reads the heads of a checkpoint file.  Verifies the CRC-32 first (streamed: memory is the
 * heads, not the file), then the magic, version, sizes, each embedded model record
 * (comine_model_read) and that the sizes add up to the file's length.  Errors name the file
 * and what is wrong: missing, not a checkpoint, truncated or corrupted, another version. */
comine_status comine_run_heads_load(comine_run_heads *h, const char *checkpoint_path);
void comine_run_heads_free(comine_run_heads *h);

#endif

/* fuzz_checkpoint.c: libFuzzer harness of the trainer's checkpoint reader
 * (comine_checkpoint_load) against a small two-peer trainer (iresnet18 at width 0.02, input 16,
 * 8-dim embeddings, 3 classes, 5 samples).  The first input byte chooses whether the final
 * CRC is recomputed (odd: yes) so that mutations get past it.  With
 * COMINE_FUZZ_WRITE_SEED=PATH set, writes a valid checkpoint of that trainer and exits. */
#include "fuzz_common.h"

#include "comine/backend.h"
#include "train/trainer_impl.h"

enum { N_SAMPLES = 5, K_CLASSES = 3, EMB = 8, BATCH = 2 };

static trainer T;
static comine_train_cfg CFG;
static comine_dataset DS;

static void setup(void)
{
    comine_train_cfg_default(&CFG);
    comine_arch_default(&CFG.arch, "iresnet18");
    CFG.arch.width = 0.02f;
    CFG.arch.input = 16;
    CFG.arch.emb_dim = EMB;
    CFG.seed = 7;
    DS.n = N_SAMPLES;
    DS.num_classes = K_CLASSES;
    T.cfg = &CFG;
    T.be = comine_backend_cpu();
    T.ds = &DS;
    T.peers.n = 2;
    T.peers.be = T.be;
    T.K = K_CLASSES;
    T.D = EMB;
    T.B = BATCH;
    T.steps_per_epoch = 2;
    for (int k = 0; k < 2; k++) {
        comine_peer *p = &T.peers.peer[k];
        p->be = T.be;
        if (comine_model_create(&p->model, &CFG.arch, T.be, BATCH) != COMINE_OK) abort();
        comine_model_init(p->model, 11 + k);
        p->momentum = comine_calloc(comine_model_num_params(p->model), sizeof(float));
        p->head_weight = comine_calloc(K_CLASSES * EMB, sizeof(float));
        p->head_momentum = comine_calloc(K_CLASSES * EMB, sizeof(float));
        for (int i = 0; i < K_CLASSES * EMB; i++) p->head_weight[i] = 0.01f * (float)(i % 7);
    }
    T.votes = comine_calloc(N_SAMPLES, sizeof(int32_t));
    T.rounds = comine_calloc(N_SAMPLES, sizeof(int32_t));
    T.cos_snapshot = comine_calloc(2 * N_SAMPLES, sizeof(float));
    T.epoch = 1;
    T.step = 1;
    for (int i = 0; i < N_SAMPLES; i++) {
        T.votes[i] = i % 2;
        T.rounds[i] = 2;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    comine_log_set_level(COMINE_LOG_ERROR);
    setup();
    const char *seed = getenv("COMINE_FUZZ_WRITE_SEED");
    if (!seed) return 0;
    if (comine_checkpoint_save(&T, seed) != COMINE_OK) {
        fprintf(stderr, "%s\n", comine_last_error());
        exit(1);
    }
    exit(0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t *copy = comine_malloc(size);
    memcpy(copy, data + 1, size - 1);
    if ((data[0] & 1) && size - 1 >= 8) fz_le32(copy + size - 5, comine_crc32(0, copy, size - 5));
    char *path = fz_write("checkpoint.bin", copy, size - 1);
    free(copy);
    if (comine_checkpoint_load(&T, path) == COMINE_OK) {
        COMINE_ASSERT(T.epoch >= 0 && T.step >= 0 && T.step <= T.steps_per_epoch);
    }
    free(path);
    return 0;
}

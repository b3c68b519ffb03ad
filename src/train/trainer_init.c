/* trainer_init.c: `train --init`: the peers' backbones from pretrained models (fine-tuning);
 * the heads stay new, the classes being the run's. */
#include "train/trainer_impl.h"

#include <string.h>

static comine_status init_backbone(comine_model *peer, const char *path, const comine_backend *be)
{
    comine_model *m = NULL;
    comine_status st = comine_model_load(&m, path, be, 1);
    if (st != COMINE_OK) return comine_fail(st, "--init: %s", comine_last_error());
    const comine_arch *a = comine_model_arch(m), *want = comine_model_arch(peer);
    if (strcmp(a->name, want->name) || a->width != want->width || a->input != want->input ||
        a->emb_dim != want->emb_dim || comine_model_num_params(m) != comine_model_num_params(peer)) {
        st = comine_fail(COMINE_ERR_ARG, "--init %s: the model is %s width %g input %d embedding %d, the run's network "
                         "%s width %g input %d embedding %d (give the model's --net, --width, --input, --emb-dim)",
                         path, a->name, a->width, a->input, a->emb_dim, want->name, want->width, want->input,
                         want->emb_dim);
    } else {
        comine_model_copy_state(peer, m);
    }
    comine_model_free(m);
    return st;
}

comine_status comine_trainer_init_backbones(trainer *t)
{
    const comine_train_cfg *cfg = t->cfg;
    comine_status st = COMINE_OK;
    for (int k = 0; k < t->peers.n && st == COMINE_OK; k++)
        st = init_backbone(t->peers.peer[k].model, cfg->init[k == 1 && cfg->init[1] ? 1 : 0], t->be);
    return st;
}

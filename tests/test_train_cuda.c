/* test_train_cuda.c: three Co-Mining training steps of two iresnet18 peers (width 0.25, 112 x
 * 112, fp32) on the CUDA backend equal the same steps on the CPU backend within tolerances:
 * the same initial networks (same seed), the same batch; after each step the selection's
 * sets are the same and the objectives agree; after the three steps every parameter,
 * batch-norm buffer, momentum and head weight of both peers agrees.  The two backends sum in
 * different orders (cuDNN's algorithms, double-precision block sums), so agreement is
 * within float rounding carried through three steps, not bit-exact.  Exits 77 (skipped) when
 * built without CUDA or when no CUDA device is present. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/trainer.h"
#include "fixture.h"
#include "train/step.h"

#ifndef COMINE_HAVE_CUDA
int main(void)
{
    printf("skipped: comine is built without CUDA (configure with -DCOMINE_CUDA=ON)\n");
    return FX_SKIPPED;
}
#else
#include "backend/cuda/cuda.h"

enum { K = 40, B = 16, S = 112, STEPS = 3 };

/* Every mutable float of the peers, concatenated (as test_train_step.c's snapshot). */
static float *snapshot(comine_peers *ps, size_t *n_out)
{
    size_t n = 0;
    for (int k = 0; k < ps->n; k++) {
        comine_peer *p = &ps->peer[k];
        n += 2 * comine_model_num_params(p->model) + comine_model_num_buffers(p->model) +
             2 * (size_t)p->head.K * p->head.D;
    }
    float *s = malloc(n * sizeof(float)), *o = s;
    for (int k = 0; k < ps->n; k++) {
        comine_peer *p = &ps->peer[k];
        size_t np = comine_model_num_params(p->model), nb = comine_model_num_buffers(p->model);
        size_t kd = (size_t)p->head.K * p->head.D;
        comine_backend_download(ps->be, o, comine_model_params(p->model), np), o += np;
        comine_backend_download(ps->be, o, comine_model_buffers(p->model), nb), o += nb;
        comine_backend_download(ps->be, o, p->momentum, np), o += np;
        comine_backend_download(ps->be, o, p->head_weight, kd), o += kd;
        comine_backend_download(ps->be, o, p->head_momentum, kd), o += kd;
    }
    *n_out = n;
    return s;
}

int main(void)
{
    char why[256] = "";
    if (comine_cuda_device_count(why, sizeof why) == 0) {
        printf("skipped: no CUDA device (%s)\n", why);
        return FX_SKIPPED;
    }
    const comine_backend *cpu = comine_backend_cpu(), *gpu;
    if (comine_backend_for_device(&gpu, "cuda") != COMINE_OK) {
        printf("FAIL: %s\n", comine_last_error());
        return 1;
    }
    comine_arch arch;
    comine_arch_default(&arch, "iresnet18");
    arch.width = 0.25f;
    arch.input = S;
    comine_peers pc, pg;
    COMINE_ASSERT(comine_peers_create(&pc, cpu, &arch, 2, K, B, 3) == COMINE_OK);
    COMINE_ASSERT(comine_peers_create(&pg, gpu, &arch, 2, K, B, 3) == COMINE_OK);
    size_t n0c, n0g;
    float *init_c = snapshot(&pc, &n0c), *init_g = snapshot(&pg, &n0g);
    FX_EXPECT(n0c == n0g && !memcmp(init_c, init_g, n0c * sizeof(float)), "the same initial peers on both devices");
    free(init_c), free(init_g);

    size_t n_pix = (size_t)B * S * S * 3;
    float *images = malloc(n_pix * sizeof(float));
    int labels[B];
    comine_rng rng;
    comine_rng_seed(&rng, 5, 0);
    for (size_t i = 0; i < n_pix; i++) images[i] = 2.0f * comine_rng_uniform(&rng) - 1.0f;
    for (int i = 0; i < B; i++) labels[i] = (int)comine_rng_below(&rng, K);
    comine_select_cfg sel = {.mode = COMINE_MODE_COMINING, .reweight = COMINE_REWEIGHT_MARGIN, .w = 1.0f};
    comine_arcface_cfg head;
    comine_arcface_cfg_default(&head);
    comine_step_input in = {.images = images, .labels = labels, .n = B, .drop_rate = 0.25f, .lr = 0.05f,
                            .momentum = 0.9f, .weight_decay = 5e-4f};
    for (int step = 0; step < STEPS; step++) {
        comine_step_result rc, rg;
        comine_train_step(&rc, &pc, &in, &sel, &head);
        comine_train_step(&rg, &pg, &in, &sel, &head);
        FX_EXPECT(rc.applied && rg.applied, "step %d applied on both devices", step);
        FX_EXPECT(!memcmp(&rc.sets, &rg.sets, sizeof rc.sets), "step %d: the same selection sets", step);
        for (int k = 0; k < 2; k++) {
            float og = (float)rg.objective[k], oc = (float)rc.objective[k];
            char what[64];
            snprintf(what, sizeof what, "step %d peer %c objective", step, "AB"[k]);
            fx_check(what, &og, &oc, 1, 1e-4, 1e-4);
            for (int j = 0; j < B; j++) {
                if (pg.correct_all[k][j] != pc.correct_all[k][j]) {
                    /* an argmax may flip between two nearly equal cosines; report it */
                    printf("note: step %d peer %c sample %d: correct flag differs\n", step, "AB"[k], j);
                }
            }
            snprintf(what, sizeof what, "step %d peer %c per-sample losses", step, "AB"[k]);
            fx_check(what, pg.loss_all[k], pc.loss_all[k], B, 1e-3, 1e-3);
        }
    }
    size_t nc, ng;
    float *sc = snapshot(&pc, &nc), *sg = snapshot(&pg, &ng);
    FX_EXPECT(nc == ng, "the same state size");
    if (nc == ng) fx_check("every parameter, buffer, momentum and head weight after 3 steps", sg, sc, nc, 1e-4, 1e-3);
    free(sc), free(sg), free(images);
    comine_peers_free(&pc);
    comine_peers_free(&pg);
    return fx_finish("test_train_cuda");
}
#endif

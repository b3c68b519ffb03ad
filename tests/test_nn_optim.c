/* test_nn_optim.c: optim.h against PyTorch (tests/fixtures/nn_optim.bin, made by
 * tests/ref/gen_nn.py): three SGD steps with momentum and weight decay, and the
 * learning-rate schedules (constant, step, cosine, each with a linear warm-up) at
 * integer epochs; plus fractional epochs inside the warm-up and past the end.  The row-wise
 * step of Partial FC (comine_sgd_step_rows) against the flat step on the same rows: the same
 * bytes there, the other rows and their momentum untouched. */
#include <stdlib.h>
#include <string.h>

#include "comine/optim.h"
#include "fixture.h"

static void check_schedule(const fx_file *f, const char *name, const comine_lr_schedule *s)
{
    const fx_tensor *ref = fx_get(f, name);
    if (!ref) return;
    float got[64];
    for (size_t e = 0; e < ref->size && e < 64; e++) got[e] = (float)comine_lr_at(s, (double)e);
    char what[96];
    snprintf(what, sizeof what, "%s, epochs 0..%zu", name, ref->size - 1);
    fx_check(what, got, ref->data, ref->size, 1e-7, 1e-5);
}

int main(void)
{
    const comine_backend *be = comine_backend_cpu();
    fx_file f;
    if (fx_load(&f, fx_path("nn_optim.bin"))) return 1;

    const fx_tensor *p0 = fx_get(&f, "sgd.p0");
    if (p0) {
        size_t n = p0->size;
        float *p = comine_backend_alloc(be, n), *buf = comine_backend_alloc(be, n);
        memcpy(p, p0->data, n * sizeof(float));
        for (int step = 0; step < 3; step++) {
            char gname[32], pname[32], what[64];
            snprintf(gname, sizeof gname, "sgd.g%d", step);
            snprintf(pname, sizeof pname, "sgd.p%d", step + 1);
            const fx_tensor *g = fx_get(&f, gname), *ref = fx_get(&f, pname);
            if (!g || !ref) break;
            comine_sgd_step(be, p, buf, g->data, n, 0.1f, 0.9f, 5e-4f);
            snprintf(what, sizeof what, "sgd step %d (lr 0.1, momentum 0.9, wd 5e-4)", step + 1);
            fx_check(what, p, ref->data, n, 1e-6, 1e-6);
        }
        comine_sgd_step(be, p, buf, p0->data, 0, 0.1f, 0.9f, 5e-4f); /* n = 0 is valid */
        comine_backend_free(be, p);
        comine_backend_free(be, buf);
    }

    /* the row-wise step: rows 1, 4, 5 of a (7, 3) block with row0 = 10 (classes 11, 14, 15) */
    {
        enum { R = 7, D = 3, NR = 3 };
        const int rows[NR] = {11, 14, 15};
        float w[R * D], m[R * D], g[NR * D], w_ref[R * D], m_ref[R * D];
        for (int i = 0; i < R * D; i++) {
            w[i] = w_ref[i] = 0.1f * (float)(i - 9);
            m[i] = m_ref[i] = 0.01f * (float)(i % 5);
        }
        for (int i = 0; i < NR * D; i++) g[i] = 0.05f * (float)(i + 1) - 0.3f;
        float w0[R * D], m0[R * D];
        memcpy(w0, w, sizeof w);
        memcpy(m0, m, sizeof m);
        comine_sgd_step_rows(be, w, m, g, rows, NR, 10, D, 0.1f, 0.9f, 5e-4f);
        for (int i = 0; i < NR; i++)
            comine_sgd_step(be, w_ref + (rows[i] - 10) * D, m_ref + (rows[i] - 10) * D, g + i * D, D, 0.1f, 0.9f,
                            5e-4f);
        int mark = fx_fail_count;
        FX_EXPECT(!memcmp(w, w_ref, sizeof w) && !memcmp(m, m_ref, sizeof m),
                  "sgd_step_rows: the flat step's bytes on the rows");
        bool others = true;
        for (int r = 0; r < R; r++)
            if (r != 1 && r != 4 && r != 5) others &= !memcmp(w + r * D, w0 + r * D, D * sizeof(float)) &&
                                                      !memcmp(m + r * D, m0 + r * D, D * sizeof(float));
        FX_EXPECT(others, "sgd_step_rows: the other rows and their momentum untouched");
        FX_EXPECT(memcmp(w + D, w0 + D, D * sizeof(float)) != 0, "sgd_step_rows: a chosen row moved");
        FX_SUMMARY(mark, "sgd_step_rows: rows 11, 14, 15 of a block from row 10 step as the flat step; the rest "
                         "untouched\n");
    }

    comine_lr_schedule s = {.kind = COMINE_LR_CONSTANT, .base_lr = 0.1};
    check_schedule(&f, "lr.constant", &s);
    s = (comine_lr_schedule){.kind = COMINE_LR_STEP, .base_lr = 0.1, .n_milestones = 2, .milestones = {4, 8},
                             .gamma = 0.1};
    check_schedule(&f, "lr.step", &s);
    s.warmup_epochs = 3;
    check_schedule(&f, "lr.step_warmup", &s);
    s = (comine_lr_schedule){.kind = COMINE_LR_COSINE, .base_lr = 0.1, .total_epochs = 11, .min_lr = 0.001};
    check_schedule(&f, "lr.cosine", &s);
    s.warmup_epochs = 2;
    check_schedule(&f, "lr.cosine_warmup", &s);

    /* fractional epochs: the warm-up is linear, the cosine continuous, the end clamps */
    double cos_half = 0.001 + (0.1 - 0.001) * 0.5 * (1 + cos(M_PI * 0.5 / 11));
    int mark = fx_fail_count;
    FX_EXPECT(fabs(comine_lr_at(&s, 0.5) - cos_half * 0.25) < 1e-12, "cosine warm-up at epoch 0.5: %g",
              comine_lr_at(&s, 0.5));
    FX_EXPECT(comine_lr_at(&s, 0.0) == 0.0, "warm-up starts at 0");
    FX_EXPECT(fabs(comine_lr_at(&s, 25.0) - 0.001) < 1e-12, "cosine past total_epochs stays at min_lr: %g",
              comine_lr_at(&s, 25.0));
    FX_SUMMARY(mark, "fractional epochs: warm-up 0.5 -> %.6g, epoch 0 -> %g, epoch 25 -> %g\n", comine_lr_at(&s, 0.5),
               comine_lr_at(&s, 0.0), comine_lr_at(&s, 25.0));
    fx_free(&f);
    return fx_finish("test_nn_optim");
}

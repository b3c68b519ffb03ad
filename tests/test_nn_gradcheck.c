/* test_nn_gradcheck.c: double-sided finite-difference checks of every layer's backward
 * (conv2d in several geometries, batch norm in training mode, PReLU, ReLU, linear,
 * dropout with a fixed mask, add) on small random shapes, with the scalar loss
 * L = sum(out * r) for a fixed random r.  Then the multi-block, multi-threaded paths
 * of the row reductions (batch norm, PReLU, bias gradients) on large shapes against a
 * plain double-precision loop. */
#include <stdlib.h>
#include <string.h>

#include "comine/nn.h"
#include "fixture.h"

static const comine_backend *be;
static comine_rng rng;

typedef enum { L_CONV, L_BN, L_PRELU, L_RELU, L_LINEAR, L_DROPOUT, L_ADD } layer_kind;

typedef struct gc_case {
    layer_kind kind;
    const char *name;
    comine_conv2d conv;
    int N, C, H, W, OUT;
    size_t n_in, n_out;
    float *in, *in2, *w, *b, *r, *out;     /* inputs, params, loss weights, output */
    float *din, *din2, *dw, *db;           /* analytic gradients */
    float *mean, *rstd, *rm, *rv;          /* batch norm */
    uint8_t *mask;
    float p;
} gc_case;

static float *rand_buf(size_t n, float lo_abs)
{
    float *p = comine_backend_alloc(be, n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        float v = comine_rng_normal(&rng);
        if (lo_abs > 0 && fabsf(v) < lo_abs) v = v < 0 ? v - lo_abs : v + lo_abs; /* away from kinks */
        p[i] = v;
    }
    return p;
}

static void forward(gc_case *c)
{
    switch (c->kind) {
    case L_CONV: comine_conv2d_forward(&c->conv, c->out, c->in, c->w, c->b, c->N); break;
    case L_BN:
        comine_batchnorm_forward(be, c->out, c->mean, c->rstd, c->rm, c->rv, c->in, c->w, c->b,
                                 (size_t)c->N * c->H * c->W, c->C, true, 0.1f, 1e-5f);
        break;
    case L_PRELU: comine_prelu_forward(be, c->out, c->in, c->w, (size_t)c->N * c->H * c->W, c->C); break;
    case L_RELU: comine_relu_forward(be, c->out, c->in, c->n_in); break;
    case L_LINEAR: comine_linear_forward(be, c->out, c->in, c->w, c->b, c->N, c->C, c->OUT); break;
    case L_DROPOUT: {
        comine_rng r;
        comine_rng_seed(&r, 99, COMINE_STREAM_DROPOUT); /* the same mask every time */
        comine_dropout_forward(be, c->out, c->mask, c->in, c->n_in, c->p, true, &r);
        break;
    }
    case L_ADD: comine_add_forward(be, c->out, c->in, c->in2, c->n_in); break;
    }
}

static void backward(gc_case *c)
{
    switch (c->kind) {
    case L_CONV: comine_conv2d_backward(&c->conv, c->din, c->dw, c->db, c->r, c->in, c->w, c->N); break;
    case L_BN:
        comine_batchnorm_backward(be, c->din, c->dw, c->db, c->r, c->in, c->mean, c->rstd, c->w,
                                  (size_t)c->N * c->H * c->W, c->C);
        break;
    case L_PRELU: comine_prelu_backward(be, c->din, c->dw, c->r, c->in, c->w, (size_t)c->N * c->H * c->W, c->C); break;
    case L_RELU: comine_relu_backward(be, c->din, c->r, c->in, c->n_in); break;
    case L_LINEAR: comine_linear_backward(be, c->din, c->dw, c->db, c->r, c->in, c->w, c->N, c->C, c->OUT); break;
    case L_DROPOUT: comine_dropout_backward(be, c->din, c->r, c->mask, c->n_in, c->p); break;
    case L_ADD:
        comine_accumulate(be, c->din, c->r, c->n_in);
        comine_accumulate(be, c->din2, c->r, c->n_in);
        break;
    }
}

static double loss(gc_case *c)
{
    forward(c);
    double s = 0;
    for (size_t i = 0; i < c->n_out; i++) s += (double)c->out[i] * c->r[i];
    return s;
}

/* compare the analytic gradient g of x (n values) with central differences */
static void check_param(gc_case *c, const char *pname, float *x, const float *g, size_t n, double h)
{
    enum { MAX_PROBES = 48 };
    size_t m = n < MAX_PROBES ? n : MAX_PROBES;
    float *num = malloc(m * sizeof(float) + 4), *ana = malloc(m * sizeof(float) + 4);
    for (size_t k = 0; k < m; k++) {
        size_t i = n <= MAX_PROBES ? k : comine_rng_below(&rng, (uint32_t)n);
        float x0 = x[i];
        x[i] = x0 + (float)h;
        double lp = loss(c);
        x[i] = x0 - (float)h;
        double lm = loss(c);
        x[i] = x0;
        num[k] = (float)((lp - lm) / (2 * h));
        ana[k] = g[i];
    }
    char what[96];
    snprintf(what, sizeof what, "%s d%s (%zu probes, h=%g)", c->name, pname, m, h);
    fx_check(what, ana, num, m, 2e-3, 1e-2);
    free(num);
    free(ana);
}

static void run_case(gc_case *c)
{
    c->r = rand_buf(c->n_out, 0);
    c->out = comine_backend_alloc(be, c->n_out ? c->n_out : 1);
    loss(c);
    backward(c);
    double h = c->kind == L_BN ? 1e-2 : 2e-2;
    check_param(c, "in", c->in, c->din, c->n_in, h);
    if (c->in2) check_param(c, "in2", c->in2, c->din2, c->n_in, h);
    if (c->kind == L_CONV) {
        check_param(c, "weight", c->w, c->dw, (size_t)c->conv.OC * (c->C / c->conv.groups) * c->conv.KH * c->conv.KW, h);
        if (c->b) check_param(c, "bias", c->b, c->db, c->conv.OC, h);
    } else if (c->kind == L_BN) {
        check_param(c, "gamma", c->w, c->dw, c->C, h);
        check_param(c, "beta", c->b, c->db, c->C, h);
    } else if (c->kind == L_PRELU) {
        check_param(c, "alpha", c->w, c->dw, c->C, h);
    } else if (c->kind == L_LINEAR) {
        check_param(c, "weight", c->w, c->dw, (size_t)c->OUT * c->C, h);
        check_param(c, "bias", c->b, c->db, c->OUT, h);
    }
    float *ptrs[] = {c->in, c->in2, c->w, c->b, c->r, c->out, c->din, c->din2, c->dw, c->db, c->mean, c->rstd, c->rm, c->rv};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) comine_backend_free(be, ptrs[i]);
    free(c->mask);
    if (c->kind == L_CONV) comine_conv2d_free(&c->conv);
}

static void conv_case(const char *name, int N, int C, int H, int W, int OC, int KH, int KW, int s, int p, int g,
                      bool bias)
{
    gc_case c = {.kind = L_CONV, .name = name, .N = N, .C = C, .H = H, .W = W};
    comine_conv2d_init(&c.conv, be, C, H, W, OC, KH, KW, s, p, g, bias);
    c.n_in = (size_t)N * H * W * C;
    c.n_out = (size_t)N * c.conv.OH * c.conv.OW * OC;
    size_t nw = (size_t)OC * (C / g) * KH * KW;
    c.in = rand_buf(c.n_in, 0), c.w = rand_buf(nw, 0), c.b = bias ? rand_buf(OC, 0) : NULL;
    c.din = comine_backend_alloc(be, c.n_in), c.dw = comine_backend_alloc(be, nw);
    c.db = bias ? comine_backend_alloc(be, OC) : NULL;
    run_case(&c);
}

/* the row reductions on large shapes (several blocks, threads) against double loops */
static void large_reductions(void)
{
    const size_t rows = 3000;
    const int C = 37;
    size_t n = rows * C;
    float *x = rand_buf(n, 0), *dy = rand_buf(n, 0), *gamma = rand_buf(C, 0), *beta = rand_buf(C, 0);
    for (size_t i = 0; i < n; i++) x[i] = 50.0f + 3.0f * x[i]; /* a large mean: stability */
    float *out = comine_backend_alloc(be, n), *dx = comine_backend_alloc(be, n);
    float *mean = comine_backend_alloc(be, C), *rstd = comine_backend_alloc(be, C);
    float *rm = comine_backend_alloc(be, C), *rv = comine_backend_alloc(be, C);
    float *dg = comine_backend_alloc(be, C), *dbt = comine_backend_alloc(be, C);
    comine_batchnorm_forward(be, out, mean, rstd, rm, rv, x, gamma, beta, rows, C, true, 0.1f, 1e-5f);
    comine_batchnorm_backward(be, dx, dg, dbt, dy, x, mean, rstd, gamma, rows, C);
    float *ref_out = malloc(n * sizeof(float)), *ref_dx = malloc(n * sizeof(float));
    float *ref_mean = malloc(C * sizeof(float)), *ref_rstd = malloc(C * sizeof(float));
    float *ref_dg = malloc(C * sizeof(float)), *ref_db = malloc(C * sizeof(float));
    for (int c = 0; c < C; c++) {
        double s = 0, v = 0, sdy = 0, sdyx = 0;
        for (size_t r = 0; r < rows; r++) s += x[r * C + c];
        double mu = s / rows;
        for (size_t r = 0; r < rows; r++) v += (x[r * C + c] - mu) * (x[r * C + c] - mu);
        double is = 1.0 / sqrt(v / rows + 1e-5);
        for (size_t r = 0; r < rows; r++) {
            double xh = (x[r * C + c] - mu) * is;
            ref_out[r * C + c] = (float)(xh * gamma[c] + beta[c]);
            sdy += dy[r * C + c];
            sdyx += dy[r * C + c] * xh;
        }
        for (size_t r = 0; r < rows; r++) {
            double xh = (x[r * C + c] - mu) * is;
            ref_dx[r * C + c] = (float)(gamma[c] * is * (dy[r * C + c] - sdy / rows - xh * sdyx / rows));
        }
        ref_mean[c] = (float)mu, ref_rstd[c] = (float)is, ref_dg[c] = (float)sdyx, ref_db[c] = (float)sdy;
    }
    printf("-- large shapes: rows=%zu C=%d (mean 50, std 3)\n", rows, C);
    fx_check("batchnorm mean (large)", mean, ref_mean, C, 1e-5, 1e-6);
    fx_check("batchnorm rstd (large)", rstd, ref_rstd, C, 1e-6, 1e-5);
    fx_check("batchnorm out (large)", out, ref_out, n, 1e-5, 1e-4);
    fx_check("batchnorm dinp (large)", dx, ref_dx, n, 1e-5, 1e-4);
    fx_check("batchnorm dgamma (large)", dg, ref_dg, C, 1e-3, 1e-4);
    fx_check("batchnorm dbeta (large)", dbt, ref_db, C, 1e-3, 1e-4);
    /* PReLU dalpha and colsum */
    float *alpha = rand_buf(C, 0), *da = comine_backend_alloc(be, C), *cs = comine_backend_alloc(be, C);
    memset(dx, 0, n * sizeof(float));
    comine_prelu_backward(be, dx, da, dy, dy, alpha, rows, C); /* input = dy: mixed signs */
    float *ref_da = malloc(C * sizeof(float)), *ref_cs = malloc(C * sizeof(float));
    for (int c = 0; c < C; c++) {
        double s = 0, t = 0;
        for (size_t r = 0; r < rows; r++) {
            float v = dy[r * C + c];
            if (!(v > 0)) s += (double)v * v;
            t += x[r * C + c];
        }
        ref_da[c] = (float)s, ref_cs[c] = (float)t;
    }
    fx_check("prelu dalpha (large)", da, ref_da, C, 1e-3, 1e-5);
    comine_linear_backward(be, NULL, NULL, cs, x, x, x, (int)rows, C, C);
    fx_check("linear dbias = column sums (large)", cs, ref_cs, C, 1e-2, 1e-6);
    float *bufs[] = {x, dy, gamma, beta, out, dx, mean, rstd, rm, rv, dg, dbt, alpha, da, cs};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) comine_backend_free(be, bufs[i]);
    free(ref_out), free(ref_dx), free(ref_mean), free(ref_rstd), free(ref_dg), free(ref_db), free(ref_da), free(ref_cs);
}

int main(void)
{
    be = comine_backend_cpu();
    comine_rng_seed(&rng, 2024, COMINE_STREAM_INIT);
    printf("backend: %s, %d thread(s)\n", comine_backend_name(be), comine_num_threads());
    conv_case("conv 3x3 s1 p1", 2, 3, 5, 5, 4, 3, 3, 1, 1, 1, false);
    conv_case("conv 3x3 s2 p1 bias", 2, 3, 6, 5, 4, 3, 3, 2, 1, 1, true);
    conv_case("conv 1x1 s2", 1, 4, 6, 6, 3, 1, 1, 2, 0, 1, false);
    conv_case("conv 1x3 s1 p1 (non-square kernel)", 2, 2, 4, 5, 3, 1, 3, 1, 1, 1, true);
    conv_case("conv depthwise 3x3 s2", 2, 4, 5, 5, 4, 3, 3, 2, 1, 4, false);
    conv_case("conv GDC 7x7", 2, 3, 7, 7, 3, 7, 7, 1, 0, 3, false);
    conv_case("conv grouped 3x3 (g=2, 2 out/group)", 1, 4, 4, 4, 4, 3, 3, 1, 1, 2, true);
    {
        gc_case c = {.kind = L_BN, .name = "batchnorm (2-d, train)", .N = 3, .C = 4, .H = 2, .W = 3};
        c.n_in = c.n_out = (size_t)3 * 2 * 3 * 4;
        c.in = rand_buf(c.n_in, 0), c.w = rand_buf(4, 0), c.b = rand_buf(4, 0);
        c.din = comine_backend_alloc(be, c.n_in), c.dw = comine_backend_alloc(be, 4), c.db = comine_backend_alloc(be, 4);
        c.mean = comine_backend_alloc(be, 4), c.rstd = comine_backend_alloc(be, 4);
        c.rm = comine_backend_alloc(be, 4), c.rv = comine_backend_alloc(be, 4);
        run_case(&c);
    }
    {
        gc_case c = {.kind = L_BN, .name = "batchnorm (1-d, train)", .N = 5, .C = 6, .H = 1, .W = 1};
        c.n_in = c.n_out = 30;
        c.in = rand_buf(30, 0), c.w = rand_buf(6, 0), c.b = rand_buf(6, 0);
        c.din = comine_backend_alloc(be, 30), c.dw = comine_backend_alloc(be, 6), c.db = comine_backend_alloc(be, 6);
        c.mean = comine_backend_alloc(be, 6), c.rstd = comine_backend_alloc(be, 6);
        c.rm = comine_backend_alloc(be, 6), c.rv = comine_backend_alloc(be, 6);
        run_case(&c);
    }
    {
        gc_case c = {.kind = L_PRELU, .name = "prelu", .N = 2, .C = 5, .H = 2, .W = 2};
        c.n_in = c.n_out = 40;
        c.in = rand_buf(40, 0.1f), c.w = rand_buf(5, 0), c.din = comine_backend_alloc(be, 40);
        c.dw = comine_backend_alloc(be, 5);
        run_case(&c);
    }
    {
        gc_case c = {.kind = L_RELU, .name = "relu", .N = 1, .C = 1, .H = 1, .W = 1};
        c.n_in = c.n_out = 33;
        c.in = rand_buf(33, 0.1f), c.din = comine_backend_alloc(be, 33);
        run_case(&c);
    }
    {
        gc_case c = {.kind = L_LINEAR, .name = "linear", .N = 3, .C = 5, .OUT = 4};
        c.n_in = 15, c.n_out = 12;
        c.in = rand_buf(15, 0), c.w = rand_buf(20, 0), c.b = rand_buf(4, 0);
        c.din = comine_backend_alloc(be, 15), c.dw = comine_backend_alloc(be, 20), c.db = comine_backend_alloc(be, 4);
        run_case(&c);
    }
    {
        gc_case c = {.kind = L_DROPOUT, .name = "dropout p=0.3", .p = 0.3f};
        c.n_in = c.n_out = 40;
        c.in = rand_buf(40, 0), c.din = comine_backend_alloc(be, 40), c.mask = malloc(40);
        run_case(&c);
    }
    {
        gc_case c = {.kind = L_ADD, .name = "add"};
        c.n_in = c.n_out = 20;
        c.in = rand_buf(20, 0), c.in2 = rand_buf(20, 0);
        c.din = comine_backend_alloc(be, 20), c.din2 = comine_backend_alloc(be, 20);
        run_case(&c);
    }
    large_reductions();
    return fx_finish("test_nn_gradcheck");
}

/* cpu_conv_fused.c: the CPU backend's eval convolution with an epilogue,
 * out = prelu(conv(in, weight) + bias, alpha) + residual (backend_impl.h's
 * conv_forward_fused): oneDNN's inference primitive with the epilogue as post-ops where
 * that keeps the plain forward's implementation, else the plain forward and one pass over
 * the output; grouped convolutions with 2 channels per group through cpu_conv_pairs.c's
 * kernel, epilogue included; depthwise ones through cpu_conv_dw.c's, which also applies a
 * PReLU to its input (the epilogue of the layer before, handed over by model_exec.c); a
 * first layer on RGB images (3x3, 3 input channels) through cpu_conv_narrow.c's.
 * Weights given with a nonzero version are reordered into the primitive's format once and
 * kept in the plan (one copy, whatever the batch size) while the caller's pointer and
 * version stay the same, also where the epilogue is a pass apart.
 * Dense 3x3 stride-1 convolutions (iresnet's) with 16 to 128 channels run through
 * cpu_conv_wf4.c's F(4x4, 3x3) on AVX-512, epilogue included; with more, through oneDNN's
 * Winograd kernel (cpu_conv_wino.c) with the weights kept in its transformed format, then
 * the epilogue in a pass of its own.  Measured on one core, batch 32, the direct NHWC kernel against
 * Winograd without its reorders: 64ch 56x56 35.4 -> 18.0 ms, 128ch 28x28 33.0 -> 17.5,
 * 256ch 14x14 31.9 -> 16.4, 512ch 7x7 34.7 -> 14.1.  Without AVX-512 (no Winograd in
 * oneDNN) they run through cpu_conv_wf2.c's F(2x2, 3x3), and the stride-2 ones as matrix
 * products (cpu_conv_im2col.c), epilogues included.  Dense 1x1 stride-1 ones with output
 * channels a multiple of 32 run through cpu_conv_1x1.c's kernel on AVX-512.  This is the
 * eval forward of folded convolutions (model_exec.c). */
#include "backend/cpu_conv_impl.h"
#include "core/cpu_dispatch.h"

#include <stdlib.h>
#include <string.h>

/* out = prelu(out, alpha) + residual in one pass over (rows, C); alpha, residual or NULL */
COMINE_CPU_CLONES
static void epilogue(float *out, const float *alpha, const float *residual, size_t rows, int C)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (rows * (size_t)C > 32768)
#endif
    for (size_t r = 0; r < rows; r++) {
        float *y = out + r * C;
        if (alpha)
            for (int c = 0; c < C; c++) {
                float v = y[c], pos = v > 0.0f ? v : 0.0f, neg = v > 0.0f ? 0.0f : v;
                y[c] = pos + alpha[c] * neg;
            }
        if (residual)
            for (int c = 0; c < C; c++) y[c] += residual[r * C + c];
    }
}

/* The inference primitive of e with post-ops `ops`, or e->fz_apart where the plain forward
 * is the flipped one or oneDNN would run them with another implementation than the plain
 * forward's: 2.6 has only its reference kernel for a PReLU post-op, and swaps brgconv_1x1
 * for jit_1x1 with a residual one, which is slower here than brgconv_1x1 and a separate
 * pass (128 channels 28x28, batch 32, one thread: 8.0 ms against 4.3 + 2-3). */
static void fused_create(conv_plan *p, conv_entry *e, int ops)
{
    const comine_conv_geom *g = &p->g;
    e->fz_ops = ops;
    if (e->fz_wino) return; /* its epilogue is a pass of its own, whatever the ops */
    if (e->fz) dnnl_primitive_destroy(e->fz);
    e->fz = NULL;
    comine_cpu_weight_io_destroy(&e->fz_w);
    e->fz_apart = true;
    if (!e->fz_src) {
        dnnl_dims_t adims = {1, g->OC, 1, 1};
        dnnl_memory_desc_t alpha_md;
        DNNL_CHECK(dnnl_memory_desc_init_by_tag(&alpha_md, 4, adims, dnnl_f32, dnnl_nhwc));
        e->fz_src = comine_cpu_dnnl_memory(&e->src_md, DNNL_MEMORY_NONE);
        e->fz_dst = comine_cpu_dnnl_memory(&e->dst_md, DNNL_MEMORY_NONE);
        e->fz_res = comine_cpu_dnnl_memory(&e->dst_md, DNNL_MEMORY_NONE);
        e->fz_alpha = comine_cpu_dnnl_memory(&alpha_md, DNNL_MEMORY_NONE);
        if (g->has_bias) e->fz_bias = comine_cpu_dnnl_memory(&p->bias_md, DNNL_MEMORY_NONE);
    }
    wino_conv *w = comine_cpu_wino(p, e);
    if (w && comine_cpu_wino_inference_create(p, e, w)) {
        e->fz_wino = true;
        e->fz_apart = false;
        return;
    }
    comine_cpu_conv_forward_create(p, e);
    if (e->flipped) return;
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    DNNL_CHECK(dnnl_post_ops_create(&po));
    if (ops & FUSE_PRELU) DNNL_CHECK(dnnl_post_ops_append_prelu(po, 1 << 1));
    if (ops & FUSE_RESIDUAL) DNNL_CHECK(dnnl_post_ops_append_binary(po, dnnl_binary_add, &e->dst_md));
    DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
    DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    dnnl_memory_desc_t w_any;
    comine_cpu_conv_weight_md(&w_any, g, dnnl_format_tag_any);
    dnnl_convolution_desc_t cd;
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &e->src_md,
                                                  &w_any, g->has_bias ? &p->bias_md : NULL, &e->dst_md, p->strides,
                                                  p->pad_l, p->pad_r));
    dnnl_primitive_desc_t pd = NULL;
    const char *impl = NULL, *plain = NULL;
    if (dnnl_primitive_desc_create(&pd, &cd, attr, comine_cpu_dnnl_engine(), NULL) == dnnl_success) {
        DNNL_CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
        DNNL_CHECK(dnnl_primitive_desc_query(e->fwd_pd, dnnl_query_impl_info_str, 0, &plain));
        if (impl && plain && !strcmp(impl, plain)) {
            DNNL_CHECK(dnnl_primitive_create(&e->fz, pd));
            comine_cpu_weight_io_init(&e->fz_w, &p->user_w_md, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
                                      true);
            e->fz_apart = false;
        }
        dnnl_primitive_desc_destroy(pd);
    }
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
}

/* The weights of w's primitive (the fused one, or the plain forward's where the epilogue is
 * a pass apart): reordered on every call (version 0), or kept in the plan while the
 * caller's pointer and version stay the same. */
static dnnl_memory_t kept_weights(conv_plan *p, weight_io *w, const float *weight, uint64_t version)
{
    if (version == 0 || w->direct) return comine_cpu_weights_in(w, weight);
    const dnnl_memory_desc_t *md;
    DNNL_CHECK(dnnl_memory_get_memory_desc(w->prim, &md));
    bool fresh = p->wcache && p->wcache_src == weight && p->wcache_version == version &&
                 dnnl_memory_desc_equal(&p->wcache_md, md);
    if (!fresh) {
        comine_cpu_grow(&p->wcache, &p->wcache_cap, w->floats);
        DNNL_CHECK(dnnl_memory_set_data_handle(w->user, (void *)weight));
        DNNL_CHECK(dnnl_memory_set_data_handle(w->prim, p->wcache));
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, w->user}, {DNNL_ARG_TO, w->prim}};
        comine_cpu_dnnl_execute(w->reorder, 2, args);
        p->wcache_md = *md;
        p->wcache_src = weight;
        p->wcache_version = version;
    }
    DNNL_CHECK(dnnl_memory_set_data_handle(w->prim, p->wcache));
    return w->prim;
}

bool comine_cpu_conv_fuses_input_prelu(void *plan) { return ((conv_plan *)plan)->dw; }

bool comine_cpu_conv_fuses_input_affine(void *plan) { return ((conv_plan *)plan)->wf4; }

void comine_cpu_conv_forward_fused_affine(void *plan, float *out, const float *in, const float *in_scale,
                                          const float *in_shift, const float *weight, const float *bias,
                                          const float *alpha, const float *residual, int N,
                                          uint64_t weight_version)
{
    conv_plan *p = plan;
    COMINE_ASSERT(p->wf4 && in_scale && in_shift && N >= 0);
    COMINE_ASSERT(!p->g.has_bias || bias != NULL);
    COMINE_ASSERT(residual != out || !residual);
    if (N == 0) return;
    comine_cpu_conv_wf4_forward(p, out, in, in_scale, in_shift, weight, weight_version, p->g.has_bias ? bias : NULL,
                                alpha, residual, N);
}

void comine_cpu_conv_forward_fused(void *plan, float *out, const float *in, const float *in_alpha,
                                   const float *weight, const float *bias, const float *alpha, const float *residual,
                                   int N, uint64_t weight_version)
{
    conv_plan *p = plan;
    const comine_conv_geom *g = &p->g;
    COMINE_ASSERT(N >= 0);
    if (N == 0) return;
    COMINE_ASSERT(!g->has_bias || bias != NULL);
    COMINE_ASSERT(residual != out || !residual);
    if (!g->has_bias) bias = NULL;
    COMINE_ASSERT(!in_alpha || p->dw);
    if (p->dw) {
        comine_cpu_conv_dw_forward(g, out, in, in_alpha, weight, bias, alpha, residual, N);
        return;
    }
    if (p->narrow) {
        comine_cpu_conv_narrow_forward(g, out, in, weight, bias, alpha, residual, N);
        return;
    }
    if (p->pairs) {
        comine_cpu_conv_pairs_forward(g, out, in, weight, bias, alpha, residual, N);
        return;
    }
    if (p->wf4) {
        comine_cpu_conv_wf4_forward(p, out, in, NULL, NULL, weight, weight_version, bias, alpha, residual, N);
        return;
    }
    if (p->wf2) {
        comine_cpu_conv_wf2_forward(p, out, in, weight, weight_version, bias, alpha, residual, N);
        return;
    }
    if (p->im2col) {
        comine_cpu_conv_im2col_forward(p, out, in, weight, weight_version, bias, alpha, residual, N);
        return;
    }
    if (p->k1x1) {
        comine_cpu_conv_1x1_forward(p, out, in, weight, weight_version, bias, alpha, residual, N);
        return;
    }
    int ops = (alpha ? FUSE_PRELU : 0) | (residual ? FUSE_RESIDUAL : 0);
    conv_entry *e = comine_cpu_conv_entry(p, N);
    if (!e->fz_made || e->fz_ops != ops) {
        fused_create(p, e, ops);
        e->fz_made = true;
    }
    if (e->fz_apart) {
        if (e->flipped)
            comine_cpu_conv_forward(plan, out, in, weight, bias, N);
        else
            comine_cpu_conv_forward_run(p, e, out, in, kept_weights(p, &e->fwd_w, weight, weight_version), bias);
        if (ops) epilogue(out, alpha, residual, (size_t)N * g->OH * g->OW, g->OC);
        return;
    }
    dnnl_memory_t wm = kept_weights(p, &e->fz_w, weight, weight_version);
    if (e->fz_wino) {
        comine_cpu_wino_forward(p, e->wino, e->fz, wm, out, in, bias);
        if (ops) epilogue(out, alpha, residual, (size_t)N * g->OH * g->OW, g->OC);
        return;
    }
    DNNL_CHECK(dnnl_memory_set_data_handle(e->fz_src, (void *)in));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->fz_dst, out));
    dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, e->fz_src}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, e->fz_dst}};
    int nargs = 3, post = 0;
    if (bias) {
        DNNL_CHECK(dnnl_memory_set_data_handle(e->fz_bias, (void *)bias));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->fz_bias};
    }
    if (alpha) {
        DNNL_CHECK(dnnl_memory_set_data_handle(e->fz_alpha, (void *)alpha));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(post) | DNNL_ARG_WEIGHTS, e->fz_alpha};
        post++;
    }
    if (residual) {
        DNNL_CHECK(dnnl_memory_set_data_handle(e->fz_res, (void *)residual));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(post) | DNNL_ARG_SRC_1, e->fz_res};
    }
    comine_cpu_dnnl_execute(e->fz, nargs, args);
}

/* cpu_conv_wino.c: the CPU backend's dense 3x3 stride-1 convolutions with padding 1
 * (iresnet's) through oneDNN's Winograd kernels (jit_wino_4x3, F(4x4, 3x3): 2.25 times
 * fewer multiplications; AVX-512 only): the training forward, both backward passes and the
 * eval forward with an epilogue (cpu_conv_fused.c) above 128 channels (up to 128,
 * cpu_conv_wf4.c's own F(4x4, 3x3) runs the eval forward).
 *
 * The kernels work on blocked activations (16 channels innermost), so every pass reorders
 * its NHWC inputs into per-thread scratches (CPU_BUF_WINO_SRC, CPU_BUF_WINO_DST) and its
 * output back (cpu_conv_blocked.c); an input gradient is added into the caller's by the
 * reorder itself (a sum post-op).  The reorders cost far less than they save: on one core, batch 32, the
 * direct kernels run these layers at 113-128 GFLOP/s (the weight pass at 512 channels 7x7:
 * 81), the Winograd ones at 251-306 counted as direct FLOPs (weight pass 236-289), from 32
 * channels and 4x4 images on (below that the direct kernels run them).  The eval
 * forward keeps its weights transformed (oneDNN's Winograd weight format, reordered once
 * while the caller's weights stay the same); training transforms them at every call.
 *
 * Rounding: the transforms add terms of both signs, so the error is a few times the
 * direct kernels' (test_nn_conv3x3, every pass against float64 sums: up to 8.4 eps times the
 * sum of the products' magnitudes, against up to 3.9 for the direct kernels); the models
 * against PyTorch (test_models_ref, test_models_fold) hold with it.  A given image's
 * outputs do not depend on the batch it is in.
 * COMINE_CONV_NHWC=1 in the environment turns the whole path off (the direct kernels). */
#include "backend/cpu_conv_impl.h"

#include <stdlib.h>

static const dnnl_memory_desc_t *query(const_dnnl_primitive_desc_t pd, dnnl_query_t what)
{
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* With fewer channels the reorders outweigh the saving: 2 threads, batch 128, 16 -> 16
 * channels at 64x64, Winograd against direct: forward 18.8 vs 12.8 ms, backward data 17.1
 * vs 16.7, weights 13.2 vs 11.4 (at 32x32: 4.7 / 4.6 / 3.2 vs 3.4 / 3.3 / 3.2); 32 -> 32 at
 * 16x16: 1.9 / 1.9 / 1.8 vs 3.0 / 3.0 / 2.6. */
enum { WINO_MIN_CHANNELS = 32 };
/* Images smaller than one 4x4 output tile run mostly on padding, no faster than the
 * direct kernels, and with a much larger rounding error in the weight gradient (2x2, 64
 * channels, batch 8: beyond 32 eps times the products' magnitudes, test_nn_conv3x3) */
enum { WINO_TILE = 4 };

/* The three training passes of e's geometry, or NULL where oneDNN has no Winograd kernel
 * for them (no AVX-512), the channels are too few or COMINE_CONV_NHWC=1. */
static wino_conv *wino_create(conv_plan *p, conv_entry *e)
{
    const comine_conv_geom *g = &p->g;
    if (comine_cpu_conv_nhwc_only() || g->groups != 1 || g->KH != 3 || g->KW != 3 || g->stride != 1 ||
        g->pad != 1 || g->C < WINO_MIN_CHANNELS || g->OC < WINO_MIN_CHANNELS || g->OH < WINO_TILE ||
        g->OW < WINO_TILE)
        return NULL;
    dnnl_engine_t eng = comine_cpu_dnnl_engine();
    const_dnnl_primitive_attr_t attr = comine_cpu_dnnl_attr();
    const dnnl_memory_desc_t *bias_md = g->has_bias ? &p->bias_md : NULL;
    dnnl_memory_desc_t src_any, dst_any, w_any;
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&src_any, 4, e->src_md.dims, dnnl_f32, dnnl_format_tag_any));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&dst_any, 4, e->dst_md.dims, dnnl_f32, dnnl_format_tag_any));
    comine_cpu_conv_weight_md(&w_any, g, dnnl_format_tag_any);
    dnnl_convolution_desc_t fd, bd, bw;
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_winograd, &src_any,
                                                  &w_any, bias_md, &dst_any, p->strides, p->pad_l, p->pad_r));
    DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_winograd, &src_any, &w_any, &dst_any,
                                                        p->strides, p->pad_l, p->pad_r));
    DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(&bw, dnnl_convolution_winograd, &src_any, &w_any, bias_md,
                                                           &dst_any, p->strides, p->pad_l, p->pad_r));
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL, wpd = NULL;
    bool ok = dnnl_primitive_desc_create(&fpd, &fd, attr, eng, NULL) == dnnl_success &&
              dnnl_primitive_desc_create(&bpd, &bd, attr, eng, fpd) == dnnl_success &&
              dnnl_primitive_desc_create(&wpd, &bw, attr, eng, fpd) == dnnl_success;
    wino_conv *w = NULL;
    if (ok) {
        w = comine_calloc(1, sizeof *w);
        DNNL_CHECK(dnnl_primitive_create(&w->fwd, fpd));
        DNNL_CHECK(dnnl_primitive_create(&w->bwd_data, bpd));
        DNNL_CHECK(dnnl_primitive_create(&w->bwd_weights, wpd));
        comine_cpu_weight_io_init(&w->fwd_w, &p->user_w_md, query(fpd, dnnl_query_weights_md), true);
        comine_cpu_weight_io_init(&w->bd_w, &p->user_w_md, query(bpd, dnnl_query_weights_md), true);
        comine_cpu_weight_io_init(&w->bw_dw, &p->user_w_md, query(wpd, dnnl_query_diff_weights_md), false);
        const dnnl_memory_desc_t *S = &e->src_md, *D = &e->dst_md;
        const int BS = CPU_BUF_WINO_SRC, BD = CPU_BUF_WINO_DST;
        comine_cpu_blocked_io_init(&w->fwd_in, S, query(fpd, dnnl_query_src_md), true, false, BS);
        comine_cpu_blocked_io_init(&w->fwd_out, D, query(fpd, dnnl_query_dst_md), false, false, BD);
        comine_cpu_blocked_io_init(&w->bd_in, D, query(bpd, dnnl_query_diff_dst_md), true, false, BD);
        comine_cpu_blocked_io_init(&w->bd_out, S, query(bpd, dnnl_query_diff_src_md), false, false, BS);
        comine_cpu_blocked_io_init(&w->bd_add, S, query(bpd, dnnl_query_diff_src_md), false, true, BS);
        comine_cpu_blocked_io_init(&w->bw_src, S, query(wpd, dnnl_query_src_md), true, false, BS);
        comine_cpu_blocked_io_init(&w->bw_ddst, D, query(wpd, dnnl_query_diff_dst_md), true, false, BD);
        w->ddst_shared = dnnl_memory_desc_equal(query(bpd, dnnl_query_diff_dst_md), query(wpd, dnnl_query_diff_dst_md));
        if (g->has_bias) {
            w->bias = comine_cpu_dnnl_memory(&p->bias_md, DNNL_MEMORY_NONE);
            w->dbias_buf = comine_alloc_floats((size_t)g->OC);
            w->dbias = comine_cpu_dnnl_memory(&p->bias_md, w->dbias_buf);
        }
        w->fwd_pd = fpd;
        fpd = NULL;
    }
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (bpd) dnnl_primitive_desc_destroy(bpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    return w;
}

wino_conv *comine_cpu_wino(conv_plan *p, conv_entry *e)
{
    if (!e->wino_tried) {
        e->wino = wino_create(p, e);
        e->wino_tried = true;
    }
    return e->wino;
}

bool comine_cpu_wino_inference_create(conv_plan *p, conv_entry *e, wino_conv *w)
{
    const comine_conv_geom *g = &p->g;
    dnnl_memory_desc_t w_any;
    comine_cpu_conv_weight_md(&w_any, g, dnnl_format_tag_any);
    dnnl_convolution_desc_t cd;
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_winograd,
                                                  query(w->fwd_pd, dnnl_query_src_md), &w_any,
                                                  g->has_bias ? &p->bias_md : NULL,
                                                  query(w->fwd_pd, dnnl_query_dst_md), p->strides, p->pad_l,
                                                  p->pad_r));
    dnnl_primitive_desc_t pd;
    if (dnnl_primitive_desc_create(&pd, &cd, comine_cpu_dnnl_attr(), comine_cpu_dnnl_engine(), NULL) != dnnl_success)
        return false;
    DNNL_CHECK(dnnl_primitive_create(&e->fz, pd));
    comine_cpu_weight_io_init(&e->fz_w, &p->user_w_md, query(pd, dnnl_query_weights_md), true);
    dnnl_primitive_desc_destroy(pd);
    return true;
}

void comine_cpu_wino_forward(conv_plan *p, wino_conv *w, dnnl_primitive_t prim, dnnl_memory_t wm, float *out,
                             const float *in, const float *bias)
{
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, comine_cpu_blocked_io_in(&w->fwd_in, in)},
                               {DNNL_ARG_WEIGHTS, wm},
                               {DNNL_ARG_DST, comine_cpu_blocked_io_in(&w->fwd_out, NULL)}};
    int nargs = 3;
    if (p->g.has_bias) {
        DNNL_CHECK(dnnl_memory_set_data_handle(w->bias, (void *)bias));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, w->bias};
    }
    comine_cpu_dnnl_execute(prim, nargs, args);
    comine_cpu_blocked_io_back(&w->fwd_out, out);
}

void comine_cpu_wino_backward_data(wino_conv *w, float *dinp, const float *dout, const float *weight, bool overwrite)
{
    blocked_io *back = overwrite ? &w->bd_out : &w->bd_add;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, comine_cpu_blocked_io_in(&w->bd_in, dout)},
                               {DNNL_ARG_WEIGHTS, comine_cpu_weights_in(&w->bd_w, weight)},
                               {DNNL_ARG_DIFF_SRC, comine_cpu_blocked_io_in(back, NULL)}};
    comine_cpu_dnnl_execute(w->bwd_data, 3, args);
    comine_cpu_blocked_io_back(back, dinp);
}

/* dweight += the weight gradient, dbias += the bias gradient (either NULL to skip), from
 * the blocked input src and output gradient ddst */
static void weights_pass(conv_plan *p, wino_conv *w, float *dweight, float *dbias, dnnl_memory_t src,
                         dnnl_memory_t ddst)
{
    const comine_conv_geom *g = &p->g;
    float *dw_prim = comine_cpu_thread_buf(CPU_BUF_WEIGHTS, w->bw_dw.floats + 16);
    DNNL_CHECK(dnnl_memory_set_data_handle(w->bw_dw.prim, dw_prim));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_WEIGHTS, w->bw_dw.prim}};
    int nargs = 3;
    if (g->has_bias) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, w->dbias};
    comine_cpu_dnnl_execute(w->bwd_weights, nargs, args);
    if (dweight) {
        DNNL_CHECK(dnnl_memory_set_data_handle(w->bw_dw.user, dweight));
        dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, w->bw_dw.prim}, {DNNL_ARG_TO, w->bw_dw.user}};
        comine_cpu_dnnl_execute(w->bw_dw.reorder, 2, rargs);
    }
    if (dbias && g->has_bias)
        for (int c = 0; c < g->OC; c++) dbias[c] += w->dbias_buf[c];
}

void comine_cpu_wino_backward_weights(conv_plan *p, wino_conv *w, float *dweight, float *dbias, const float *dout,
                                      const float *in)
{
    weights_pass(p, w, dweight, dbias, comine_cpu_blocked_io_in(&w->bw_src, in),
                 comine_cpu_blocked_io_in(&w->bw_ddst, dout));
}

void comine_cpu_wino_backward(conv_plan *p, wino_conv *w, float *dinp, bool overwrite, float *dweight, float *dbias,
                              const float *dout, const float *in, const float *weight)
{
    if (!w->ddst_shared) {
        comine_cpu_wino_backward_data(w, dinp, dout, weight, overwrite);
        comine_cpu_wino_backward_weights(p, w, dweight, dbias, dout, in);
        return;
    }
    /* the output gradient, blocked once (CPU_BUF_WINO_DST), read by both passes; the input
     * gradient's buffer (CPU_BUF_WINO_SRC) is free again for the input once written back */
    dnnl_memory_t ddst = comine_cpu_blocked_io_in(&w->bd_in, dout);
    blocked_io *back = overwrite ? &w->bd_out : &w->bd_add;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, ddst},
                               {DNNL_ARG_WEIGHTS, comine_cpu_weights_in(&w->bd_w, weight)},
                               {DNNL_ARG_DIFF_SRC, comine_cpu_blocked_io_in(back, NULL)}};
    comine_cpu_dnnl_execute(w->bwd_data, 3, args);
    comine_cpu_blocked_io_back(back, dinp);
    weights_pass(p, w, dweight, dbias, comine_cpu_blocked_io_in(&w->bw_src, in), ddst);
}

void comine_cpu_wino_free(wino_conv *w)
{
    if (!w) return;
    dnnl_primitive_t prims[] = {w->fwd, w->bwd_data, w->bwd_weights};
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
        if (prims[i]) dnnl_primitive_destroy(prims[i]);
    blocked_io *ios[] = {&w->fwd_in, &w->fwd_out, &w->bd_in, &w->bd_out, &w->bd_add, &w->bw_src, &w->bw_ddst};
    for (size_t i = 0; i < sizeof ios / sizeof ios[0]; i++) comine_cpu_blocked_io_free(ios[i]);
    comine_cpu_weight_io_destroy(&w->fwd_w);
    comine_cpu_weight_io_destroy(&w->bd_w);
    comine_cpu_weight_io_destroy(&w->bw_dw);
    if (w->bias) dnnl_memory_destroy(w->bias);
    if (w->dbias) dnnl_memory_destroy(w->dbias);
    comine_free_floats(w->dbias_buf);
    if (w->fwd_pd) dnnl_primitive_desc_destroy(w->fwd_pd);
    free(w);
}

/* cpu_conv_blocked.c: convolution passes that oneDNN runs faster on blocked activations
 * (16 channels innermost, nChw16c) than on comine's NHWC, with the reorders around them:
 * the helpers that move an activation between the two layouts through per-thread scratches
 * (used by cpu_conv_wino.c's Winograd passes too), and the weight gradient of dense 3x3
 * stride-2 convolutions (iresnet's downsampling layers).
 *
 * oneDNN 2.6's direct weight-gradient kernel runs those layers at 112-174 GFLOP/s on NHWC
 * activations and at 198-215 on blocked ones (2 threads, batch 32, random data: 64
 * channels at 112x112 in, 128 at 56, 256 at 28, 512 at 14); with the two reorders the four
 * layers of iresnet @112 take 161 instead of 197 ms.  Below 64 channels the reorders eat
 * the gain (batch 128, 32 channels at 32x32: 3.80 against 3.48 ms), so those stay NHWC.
 * AVX-512 only (where the layout was measured).  The sums run in another order than the
 * NHWC kernel's: the weight gradients differ by rounding.
 * COMINE_CONV_NHWC=1 in the environment keeps every convolution pass on NHWC activations
 * (neither this nor cpu_conv_wino.c's Winograd): for comparisons. */
#include "backend/cpu_conv_impl.h"
#include "core/cpu_dispatch.h"

#include <stdlib.h>
#include <string.h>

/* the reorder from -> to, adding into `to` (a sum post-op) when add */
static dnnl_primitive_t reorder_create(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, bool add)
{
    dnnl_engine_t eng = comine_cpu_dnnl_engine();
    dnnl_primitive_desc_t pd;
    if (add) {
        dnnl_primitive_attr_t attr;
        dnnl_post_ops_t po;
        DNNL_CHECK(dnnl_primitive_attr_create(&attr));
        DNNL_CHECK(dnnl_post_ops_create(&po));
        DNNL_CHECK(dnnl_post_ops_append_sum(po, 1.0f));
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
        DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
        DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, attr));
        dnnl_post_ops_destroy(po);
        dnnl_primitive_attr_destroy(attr);
    } else {
        DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, comine_cpu_dnnl_attr()));
    }
    dnnl_primitive_t r;
    DNNL_CHECK(dnnl_primitive_create(&r, pd));
    dnnl_primitive_desc_destroy(pd);
    return r;
}

void comine_cpu_blocked_io_init(blocked_io *io, const dnnl_memory_desc_t *user_md,
                                const dnnl_memory_desc_t *blocked_md, bool to_blocked, bool add, int buf)
{
    io->user = comine_cpu_dnnl_memory(user_md, DNNL_MEMORY_NONE);
    io->blocked = comine_cpu_dnnl_memory(blocked_md, DNNL_MEMORY_NONE);
    io->reorder = to_blocked ? reorder_create(user_md, blocked_md, false) : reorder_create(blocked_md, user_md, add);
    io->to_blocked = to_blocked;
    io->floats = dnnl_memory_desc_get_size(blocked_md) / sizeof(float);
    io->buf = buf;
}

void comine_cpu_blocked_io_free(blocked_io *io)
{
    if (io->user) dnnl_memory_destroy(io->user);
    if (io->blocked) dnnl_memory_destroy(io->blocked);
    if (io->reorder) dnnl_primitive_destroy(io->reorder);
}

dnnl_memory_t comine_cpu_blocked_io_in(blocked_io *io, const float *user)
{
    DNNL_CHECK(dnnl_memory_set_data_handle(io->blocked, comine_cpu_thread_buf(io->buf, io->floats)));
    if (io->to_blocked) {
        DNNL_CHECK(dnnl_memory_set_data_handle(io->user, (void *)user));
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, io->user}, {DNNL_ARG_TO, io->blocked}};
        comine_cpu_dnnl_execute(io->reorder, 2, args);
    }
    return io->blocked;
}

void comine_cpu_blocked_io_back(blocked_io *io, float *user)
{
    DNNL_CHECK(dnnl_memory_set_data_handle(io->user, user));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, io->blocked}, {DNNL_ARG_TO, io->user}};
    comine_cpu_dnnl_execute(io->reorder, 2, args);
}


bool comine_cpu_conv_nhwc_only(void)
{
    const char *env = getenv("COMINE_CONV_NHWC");
    return env && strcmp(env, "0") != 0 && env[0] != '\0';
}

/* Below this many channels (in or out) the reorders outweigh the faster kernel (see the top) */
enum { BWW_MIN_CHANNELS = 64 };

static blocked_bww *bww_create(conv_plan *p, conv_entry *e)
{
    const comine_conv_geom *g = &p->g;
    if (g->groups != 1 || g->KH != 3 || g->KW != 3 || g->stride != 2 || g->C < BWW_MIN_CHANNELS ||
        g->OC < BWW_MIN_CHANNELS || comine_cpu_x86_level() < 4 || comine_cpu_conv_nhwc_only())
        return NULL;
    dnnl_engine_t eng = comine_cpu_dnnl_engine();
    const_dnnl_primitive_attr_t attr = comine_cpu_dnnl_attr();
    const dnnl_memory_desc_t *bias_md = g->has_bias ? &p->bias_md : NULL;
    dnnl_memory_desc_t src_any, dst_any, w_any;
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&src_any, 4, e->src_md.dims, dnnl_f32, dnnl_format_tag_any));
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&dst_any, 4, e->dst_md.dims, dnnl_f32, dnnl_format_tag_any));
    comine_cpu_conv_weight_md(&w_any, g, dnnl_format_tag_any);
    dnnl_convolution_desc_t fd, bw;
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &src_any,
                                                  &w_any, bias_md, &dst_any, p->strides, p->pad_l, p->pad_r));
    DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(&bw, dnnl_convolution_direct, &src_any, &w_any, bias_md,
                                                           &dst_any, p->strides, p->pad_l, p->pad_r));
    dnnl_primitive_desc_t fpd = NULL, wpd = NULL;
    blocked_bww *b = NULL;
    if (dnnl_primitive_desc_create(&fpd, &fd, attr, eng, NULL) == dnnl_success &&
        dnnl_primitive_desc_create(&wpd, &bw, attr, eng, fpd) == dnnl_success) {
        const dnnl_memory_desc_t *src_md = dnnl_primitive_desc_query_md(wpd, dnnl_query_src_md, 0);
        const dnnl_memory_desc_t *ddst_md = dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_dst_md, 0);
        b = comine_calloc(1, sizeof *b);
        DNNL_CHECK(dnnl_primitive_create(&b->prim, wpd));
        comine_cpu_weight_io_init(&b->dw, &p->user_w_md,
                                  dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 0), false);
        comine_cpu_blocked_io_init(&b->src, &e->src_md, src_md, true, false, CPU_BUF_WINO_SRC);
        comine_cpu_blocked_io_init(&b->ddst, &e->dst_md, ddst_md, true, false, CPU_BUF_WINO_DST);
        if (g->has_bias) {
            b->dbias_buf = comine_alloc_floats((size_t)g->OC);
            b->dbias = comine_cpu_dnnl_memory(&p->bias_md, b->dbias_buf);
        }
    }
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    return b;
}

blocked_bww *comine_cpu_blocked_bww(conv_plan *p, conv_entry *e)
{
    if (!e->bww_tried) {
        e->bww = bww_create(p, e);
        e->bww_tried = true;
    }
    return e->bww;
}

void comine_cpu_blocked_backward_weights(conv_plan *p, blocked_bww *b, float *dweight, float *dbias,
                                         const float *dout, const float *in)
{
    const comine_conv_geom *g = &p->g;
    float *dw_prim = comine_cpu_thread_buf(CPU_BUF_WEIGHTS, b->dw.floats + 16);
    DNNL_CHECK(dnnl_memory_set_data_handle(b->dw.prim, dw_prim));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, comine_cpu_blocked_io_in(&b->src, in)},
                               {DNNL_ARG_DIFF_DST, comine_cpu_blocked_io_in(&b->ddst, dout)},
                               {DNNL_ARG_DIFF_WEIGHTS, b->dw.prim}};
    int nargs = 3;
    if (g->has_bias) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, b->dbias};
    comine_cpu_dnnl_execute(b->prim, nargs, args);
    if (dweight) {
        DNNL_CHECK(dnnl_memory_set_data_handle(b->dw.user, dweight));
        dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, b->dw.prim}, {DNNL_ARG_TO, b->dw.user}};
        comine_cpu_dnnl_execute(b->dw.reorder, 2, rargs);
    }
    if (dbias && g->has_bias)
        for (int c = 0; c < g->OC; c++) dbias[c] += b->dbias_buf[c];
}

void comine_cpu_blocked_bww_free(blocked_bww *b)
{
    if (!b) return;
    if (b->prim) dnnl_primitive_destroy(b->prim);
    comine_cpu_weight_io_destroy(&b->dw);
    comine_cpu_blocked_io_free(&b->src);
    comine_cpu_blocked_io_free(&b->ddst);
    if (b->dbias) dnnl_memory_destroy(b->dbias);
    comine_free_floats(b->dbias_buf);
    free(b);
}

/* cpu_conv.c: the CPU backend's convolutions through oneDNN's C API (2.x).
 *
 * A plan is one convolution geometry; it caches, per batch size N (a few at a time,
 * least recently used replaced), the forward, backward-data and backward-weights
 * primitives and the reorders between PyTorch's weight layout (OC, C/groups, KH, KW) and
 * the format each primitive prefers, so that a call allocates nothing once its scratch
 * has grown.  Activations are NHWC on both sides (no reorder).  The weights in a
 * primitive's format live only during a call, in a per-thread scratch shared by all
 * plans (grown to the largest weight seen): no plan keeps copies of the network's
 * weights.  Backward accumulates: oneDNN writes the input gradient into a per-thread
 * scratch shared by all plans (grown to the largest input gradient seen), then a
 * vectorised add (or straight into the caller's buffer when asked to overwrite it); the
 * weight gradient is reordered into the caller's buffer with a sum post-op.
 * A stride-1 KxK convolution (K > 1) runs forward as the backward-data pass of the
 * transposed convolution (in and out channels swapped, kernel flipped, padding K-1-pad;
 * a bias is then added in one pass over the output) where oneDNN 2.6's avx2 kernels do
 * that pass faster than the forward: dense 3x3 convolutions in NHWC (measured on one
 * core, batch 32: 64ch 56x56 fwd 68 vs 81 GFLOP/s, 128ch 28x28 47 vs 79, 512ch 7x7 42
 * vs 67) and grouped ones that its forward can only run through the gemm fallback
 * (MobileFaceNet's 3x3 with 2 channels per group: 3.4 vs 9.4).  That layer's forward is
 * now cpu_conv_pairs.c's direct kernel on every CPU (on AVX-512, where oneDNN pads each
 * group to 16 channels: one core, batch 32, 128ch 56x56, 35 -> 15 ms).
 * Where oneDNN has Winograd kernels (AVX-512), dense 3x3 stride-1 convolutions with
 * padding 1 take them for all three passes instead (cpu_conv_wino.c), and the stride-2
 * ones compute their weight gradient on blocked activations (cpu_conv_blocked.c).
 * Elsewhere those stride-1 layers with 32 channels or more run the forward and the input
 * gradient through comine's own F(2x2, 3x3) (cpu_conv_wf2.c).
 * The eval forward with an epilogue (PReLU, residual) and kept weights is in
 * cpu_conv_fused.c; the plan's structure is in cpu_conv_impl.h.
 * A plan is used by one thread at a time; plans may run on several threads at once (a
 * split eval forward gives each thread plans of its own).  So every primitive is made in
 * oneDNN's user scratchpad mode and runs with a scratchpad of the executing thread, and the
 * scratches above are per thread, freed when the thread ends: oneDNN's own (library mode)
 * scratchpad is per thread too, but counted by the thread that makes or frees a primitive,
 * which breaks when those differ. */
#include "backend/cpu_conv_impl.h"
#include "core/cpu_dispatch.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dnnl_engine_t engine;
static dnnl_primitive_attr_t user_attr; /* scratchpad mode user, no post-ops */
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

void comine_cpu_dnnl_check(dnnl_status_t st, const char *what, const char *file, int line)
{
    if (st == dnnl_success) return;
    char msg[256];
    snprintf(msg, sizeof msg, "oneDNN %s failed (status %d)", what, (int)st);
    comine_abort(file, line, msg);
}

dnnl_engine_t comine_cpu_dnnl_engine(void) { return engine; }

static void engine_init(void)
{
    DNNL_CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    DNNL_CHECK(dnnl_primitive_attr_create(&user_attr));
    DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(user_attr, dnnl_scratchpad_mode_user));
}

const_dnnl_primitive_attr_t comine_cpu_dnnl_attr(void)
{
    pthread_once(&engine_once, engine_init);
    return user_attr;
}

/* ---- per-thread buffers ---------------------------------------------------------------- */

/* Every thread that runs a convolution has its own stream and scratch buffers (a split eval
 * forward runs several at once); a thread-exit destructor frees them, so that threads that
 * come and go (an OpenMP pool resized) leave nothing behind. */
typedef struct thread_bufs {
    dnnl_stream_t stream;
    float *buf[CPU_BUF_COUNT];
    size_t cap[CPU_BUF_COUNT];
} thread_bufs;

static _Thread_local thread_bufs tb;
static _Thread_local bool tb_hooked;
static pthread_key_t tb_key;
static pthread_once_t tb_once = PTHREAD_ONCE_INIT;

static void tb_release(void *arg)
{
    thread_bufs *t = arg;
    for (int i = 0; i < CPU_BUF_COUNT; i++) comine_free_floats(t->buf[i]);
    if (t->stream) dnnl_stream_destroy(t->stream);
    memset(t, 0, sizeof *t);
}

static void tb_key_init(void)
{
    if (pthread_key_create(&tb_key, tb_release) != 0) comine_abort(__FILE__, __LINE__, "pthread_key_create failed");
}

static thread_bufs *this_thread(void)
{
    if (!tb_hooked) {
        pthread_once(&tb_once, tb_key_init);
        pthread_setspecific(tb_key, &tb);
        tb_hooked = true;
    }
    return &tb;
}

float *comine_cpu_thread_buf(int which, size_t n)
{
    COMINE_ASSERT(which >= 0 && which < CPU_BUF_COUNT);
    thread_bufs *t = this_thread();
    return comine_cpu_grow(&t->buf[which], &t->cap[which], n);
}



float *comine_cpu_plan_weights(conv_plan *p, const float *weight, uint64_t version, size_t n)
{
    if (version != 0 && p->own_w && p->own_w_src == weight && p->own_w_version == version) return NULL;
    comine_cpu_grow(&p->own_w, &p->own_w_cap, n);
    p->own_w_src = weight;
    p->own_w_version = version;
    return p->own_w;
}

float *comine_cpu_grow(float **buf, size_t *cap, size_t n)
{
    if (n > *cap) {
        comine_free_floats(*buf);
        *cap = n + n / 8;
        *buf = comine_alloc_floats(*cap);
    }
    return *buf;
}

/* The input-gradient and weight scratches of this thread, at least n floats. */
static float *thread_scratch(size_t n) { return comine_cpu_thread_buf(CPU_BUF_GRAD, n); }
static float *thread_wscratch(size_t n) { return comine_cpu_thread_buf(CPU_BUF_WEIGHTS, n + 16); }

/* ---- descriptors ---------------------------------------------------------------------- */

static void act_md(dnnl_memory_desc_t *md, int N, int C, int H, int W)
{
    dnnl_dims_t dims = {N, C, H, W};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_nhwc));
}

void comine_cpu_conv_weight_md(dnnl_memory_desc_t *md, const comine_conv_geom *g, dnnl_format_tag_t tag_any)
{
    if (g->groups == 1) {
        dnnl_dims_t dims = {g->OC, g->C, g->KH, g->KW};
        DNNL_CHECK(dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag_any ? tag_any : dnnl_oihw));
    } else {
        dnnl_dims_t dims = {g->groups, g->OC / g->groups, g->C / g->groups, g->KH, g->KW};
        DNNL_CHECK(dnnl_memory_desc_init_by_tag(md, 5, dims, dnnl_f32, tag_any ? tag_any : dnnl_goihw));
    }
}

static size_t md_floats(const dnnl_memory_desc_t *md) { return dnnl_memory_desc_get_size(md) / sizeof(float); }

dnnl_memory_t comine_cpu_dnnl_memory(const dnnl_memory_desc_t *md, void *handle)
{
    dnnl_memory_t m;
    DNNL_CHECK(dnnl_memory_create(&m, md, engine, handle));
    return m;
}

void comine_cpu_weight_io_init(weight_io *w, const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *prim_md,
                               bool to_prim)
{
    memset(w, 0, sizeof *w);
    w->direct = to_prim && dnnl_memory_desc_equal(user_md, prim_md);
    w->user = comine_cpu_dnnl_memory(user_md, DNNL_MEMORY_NONE);
    if (w->direct) return;
    w->floats = md_floats(prim_md);
    w->prim = comine_cpu_dnnl_memory(prim_md, DNNL_MEMORY_NONE);
    dnnl_primitive_desc_t pd;
    if (to_prim) {
        DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, user_md, engine, prim_md, engine, comine_cpu_dnnl_attr()));
    } else {
        dnnl_primitive_attr_t attr;
        dnnl_post_ops_t po;
        DNNL_CHECK(dnnl_primitive_attr_create(&attr));
        DNNL_CHECK(dnnl_post_ops_create(&po));
        DNNL_CHECK(dnnl_post_ops_append_sum(po, 1.0f));
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
        DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
        DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, prim_md, engine, user_md, engine, attr));
        dnnl_post_ops_destroy(po);
        dnnl_primitive_attr_destroy(attr);
    }
    DNNL_CHECK(dnnl_primitive_create(&w->reorder, pd));
    dnnl_primitive_desc_destroy(pd);
}

void comine_cpu_weight_io_destroy(weight_io *w)
{
    if (w->user) dnnl_memory_destroy(w->user);
    if (w->prim) dnnl_memory_destroy(w->prim);
    if (w->reorder) dnnl_primitive_destroy(w->reorder);
    memset(w, 0, sizeof *w);
}

void comine_cpu_dnnl_execute(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args)
{
    enum { MAX_ARGS = 16 };
    thread_bufs *t = this_thread();
    if (!t->stream) DNNL_CHECK(dnnl_stream_create(&t->stream, engine, dnnl_stream_default_flags));
    const_dnnl_primitive_desc_t pd;
    DNNL_CHECK(dnnl_primitive_get_primitive_desc(p, &pd));
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (bytes == 0) {
        DNNL_CHECK(dnnl_primitive_execute(p, t->stream, nargs, args));
        DNNL_CHECK(dnnl_stream_wait(t->stream));
        return;
    }
    /* the primitive's scratchpad: this thread's (every primitive is made in user mode) */
    COMINE_ASSERT(nargs < MAX_ARGS);
    dnnl_exec_arg_t all[MAX_ARGS];
    memcpy(all, args, (size_t)nargs * sizeof *args);
    dnnl_memory_t spad;
    DNNL_CHECK(dnnl_memory_create(&spad, smd, engine, comine_cpu_thread_buf(CPU_BUF_SCRATCHPAD, (bytes + 3) / 4)));
    all[nargs] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, spad};
    DNNL_CHECK(dnnl_primitive_execute(p, t->stream, nargs + 1, all));
    DNNL_CHECK(dnnl_stream_wait(t->stream));
    dnnl_memory_destroy(spad);
}

/* The memory a primitive reads its weights from, after reordering the caller's. */
dnnl_memory_t comine_cpu_weights_in(weight_io *w, const float *user)
{
    DNNL_CHECK(dnnl_memory_set_data_handle(w->user, (void *)user));
    if (w->direct) return w->user;
    DNNL_CHECK(dnnl_memory_set_data_handle(w->prim, thread_wscratch(w->floats)));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, w->user}, {DNNL_ARG_TO, w->prim}};
    comine_cpu_dnnl_execute(w->reorder, 2, args);
    return w->prim;
}

/* ---- plan ----------------------------------------------------------------------------- */

void *comine_cpu_conv_plan_create(const comine_conv_geom *g)
{
    COMINE_ASSERT(g->C > 0 && g->OC > 0 && g->KH > 0 && g->KW > 0 && g->stride > 0 && g->pad >= 0);
    COMINE_ASSERT(g->groups > 0 && g->C % g->groups == 0 && g->OC % g->groups == 0);
    COMINE_ASSERT(g->OH == (g->H + 2 * g->pad - g->KH) / g->stride + 1 && g->OH > 0);
    COMINE_ASSERT(g->OW == (g->W + 2 * g->pad - g->KW) / g->stride + 1 && g->OW > 0);
    pthread_once(&engine_once, engine_init);
    conv_plan *p = comine_calloc(1, sizeof *p);
    p->g = *g;
    comine_cpu_conv_weight_md(&p->user_w_md, g, dnnl_format_tag_undef);
    dnnl_dims_t bdims = {g->OC};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&p->bias_md, 1, bdims, dnnl_f32, dnnl_x));
    p->strides[0] = p->strides[1] = g->stride;
    p->pad_l[0] = p->pad_l[1] = g->pad;
    /* PyTorch floors the output size; oneDNN wants the right padding that makes it exact
     * (the smallest non-negative one, e.g. 0 for a 1x1 stride-2 conv on an even size) */
    int pr_h = (g->OH - 1) * g->stride + g->KH - g->H - g->pad;
    int pr_w = (g->OW - 1) * g->stride + g->KW - g->W - g->pad;
    p->pad_r[0] = pr_h > 0 ? pr_h : 0;
    p->pad_r[1] = pr_w > 0 ? pr_w : 0;
    p->pairs = comine_cpu_conv_pairs_supported(g);
    p->dw = comine_cpu_conv_dw_supported(g);
    p->narrow = comine_cpu_conv_narrow_supported(g);
    p->wf2 = comine_cpu_conv_wf2_supported(g);
    p->wf4 = comine_cpu_conv_wf4_supported(g);
    p->im2col = comine_cpu_conv_im2col_supported(g);
    p->k1x1 = comine_cpu_conv_1x1_supported(g);
    return p;
}

static void entry_destroy(conv_entry *e)
{
    dnnl_memory_t mems[] = {e->fwd_src, e->fwd_dst, e->fwd_bias, e->bd_dsrc, e->bd_ddst, e->bw_src, e->bw_ddst,
                            e->bw_dbias, e->flip_in, e->flip_out, e->fz_src, e->fz_dst, e->fz_bias, e->fz_alpha,
                            e->fz_res};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    dnnl_primitive_t prims[] = {e->fwd, e->bwd_data, e->bwd_weights, e->fz};
    for (size_t i = 0; i < sizeof prims / sizeof prims[0]; i++)
        if (prims[i]) dnnl_primitive_destroy(prims[i]);
    if (e->fwd_pd) dnnl_primitive_desc_destroy(e->fwd_pd);
    comine_cpu_weight_io_destroy(&e->fwd_w);
    comine_cpu_weight_io_destroy(&e->flip_w);
    comine_cpu_weight_io_destroy(&e->bd_w);
    comine_cpu_weight_io_destroy(&e->bw_dw);
    comine_cpu_weight_io_destroy(&e->fz_w);
    comine_free_floats(e->dbias_buf);
    comine_cpu_wino_free(e->wino);
    comine_cpu_blocked_bww_free(e->bww);
    memset(e, 0, sizeof *e);
}

void comine_cpu_conv_plan_free(void *plan)
{
    conv_plan *p = plan;
    if (!p) return;
    for (int i = 0; i < p->n_entries; i++) entry_destroy(&p->entries[i]);
    comine_free_floats(p->wcache);
    comine_free_floats(p->own_w);
    free(p);
}

/* The entry for batch size N, with its forward descriptor (primitives are made lazily). */
conv_entry *comine_cpu_conv_entry(conv_plan *p, int N)
{
    p->tick++;
    for (int i = 0; i < p->n_entries; i++)
        if (p->entries[i].N == N) {
            p->entries[i].last_use = p->tick;
            return &p->entries[i];
        }
    conv_entry *e;
    if (p->n_entries < MAX_ENTRIES) {
        e = &p->entries[p->n_entries++];
    } else {
        e = &p->entries[0];
        for (int i = 1; i < MAX_ENTRIES; i++)
            if (p->entries[i].last_use < e->last_use) e = &p->entries[i];
        entry_destroy(e);
    }
    const comine_conv_geom *g = &p->g;
    e->N = N;
    e->last_use = p->tick;
    act_md(&e->src_md, N, g->C, g->H, g->W);
    act_md(&e->dst_md, N, g->OC, g->OH, g->OW);
    dnnl_memory_desc_t w_any;
    comine_cpu_conv_weight_md(&w_any, g, dnnl_format_tag_any);
    dnnl_convolution_desc_t cd;
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &e->src_md,
                                                  &w_any, g->has_bias ? &p->bias_md : NULL, &e->dst_md, p->strides,
                                                  p->pad_l, p->pad_r));
    DNNL_CHECK(dnnl_primitive_desc_create(&e->fwd_pd, &cd, comine_cpu_dnnl_attr(), engine, NULL));
    return e;
}

/* The forward of a stride-1 convolution as the backward-data pass of the
 * transposed convolution (see the top): for dense KxK convolutions (K > 1, channels in
 * multiples of 8) that oneDNN runs with its direct avx2 kernel, and for grouped ones it
 * would run through its gemm fallback, when the transposed pass has a direct kernel;
 * false (nothing made) otherwise. */
static bool flipped_forward_create(conv_plan *p, conv_entry *e)
{
    const comine_conv_geom *g = &p->g;
    if (g->stride != 1 || g->KH != g->KW || g->KH < 2 || g->pad > g->KH - 1) return false;
    const char *impl = NULL;
    DNNL_CHECK(dnnl_primitive_desc_query(e->fwd_pd, dnnl_query_impl_info_str, 0, &impl));
    if (!impl) return false;
    bool dense = g->groups == 1 && g->C % 8 == 0 && g->OC % 8 == 0 && !strcmp(impl, "jit:avx2");
    bool grouped_gemm = g->groups > 1 && strstr(impl, "gemm") != NULL;
    if (!dense && !grouped_gemm) return false;
    int G = g->groups, K = g->KH, fp = K - 1 - g->pad;
    dnnl_dims_t wdims = {G, g->C / G, g->OC / G, K, K};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&p->flip_w_md, 5, wdims, dnnl_f32, dnnl_goihw));
    dnnl_memory_desc_t w_any;
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&w_any, 5, wdims, dnnl_f32, dnnl_format_tag_any));
    /* the transposed convolution: src = our output (OC), dst = our input (C) */
    dnnl_dims_t st = {1, 1}, pad = {fp, fp};
    dnnl_convolution_desc_t cd;
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &e->dst_md,
                                                  &w_any, NULL, &e->src_md, st, pad, pad));
    dnnl_primitive_desc_t hint, pd;
    DNNL_CHECK(dnnl_primitive_desc_create(&hint, &cd, NULL, engine, NULL));
    DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &e->dst_md, &w_any,
                                                        &e->src_md, st, pad, pad));
    DNNL_CHECK(dnnl_primitive_desc_create(&pd, &cd, comine_cpu_dnnl_attr(), engine, hint));
    const char *bimpl = NULL;
    DNNL_CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &bimpl));
    bool ok = bimpl && !strstr(bimpl, "gemm") && !strstr(bimpl, "ref");
    if (ok) {
        DNNL_CHECK(dnnl_primitive_create(&e->fwd, pd));
        comine_cpu_weight_io_init(&e->flip_w, &p->flip_w_md, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), true);
        e->flip_in = comine_cpu_dnnl_memory(&e->src_md, DNNL_MEMORY_NONE);
        e->flip_out = comine_cpu_dnnl_memory(&e->dst_md, DNNL_MEMORY_NONE);
        e->flipped = true;
    }
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_desc_destroy(hint);
    return ok;
}

/* out (rows, C) += bias (C) */
COMINE_CPU_CLONES
static void add_bias(float *out, const float *bias, size_t rows, int C)
{
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (rows * (size_t)C > 32768)
#endif
    for (size_t r = 0; r < rows; r++) {
        float *y = out + r * C;
        for (int c = 0; c < C; c++) y[c] += bias[c];
    }
}

/* out (N, OH, OW, OC) = conv(in, weight) + bias through the transposed convolution's
 * backward data; bias (OC) or NULL. */
static void flipped_forward(conv_plan *p, conv_entry *e, float *out, const float *in, const float *weight,
                            const float *bias, int N)
{
    const comine_conv_geom *g = &p->g;
    int G = g->groups, icg = g->C / G, ocg = g->OC / G, K = g->KH;
    size_t n_w = (size_t)g->OC * icg * K * K;
    float *tw = comine_cpu_thread_buf(CPU_BUF_FLIPPED, n_w);
    /* tw[gr][c][o][kh][kw] = weight[gr][o][c][K-1-kh][K-1-kw] */
#ifdef COMINE_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (n_w > 65536)
#endif
    for (int gc = 0; gc < G * icg; gc++) {
        int gr = gc / icg, c = gc % icg;
        for (int o = 0; o < ocg; o++) {
            const float *src = weight + ((((size_t)gr * ocg + o) * icg + c) * K) * K;
            float *dst = tw + ((((size_t)gr * icg + c) * ocg + o) * K) * K;
            for (int k = 0; k < K * K; k++) dst[k] = src[K * K - 1 - k];
        }
    }
    dnnl_memory_t wm = comine_cpu_weights_in(&e->flip_w, tw);
    DNNL_CHECK(dnnl_memory_set_data_handle(e->flip_in, (void *)in));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->flip_out, out));
    dnnl_exec_arg_t args[3] = {
        {DNNL_ARG_DIFF_DST, e->flip_in}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, e->flip_out}};
    comine_cpu_dnnl_execute(e->fwd, 3, args);
    if (bias) add_bias(out, bias, (size_t)N * g->OH * g->OW, g->OC);
}

/* The plain forward's primitive: the flipped one where it is faster (see the top). */
void comine_cpu_conv_forward_create(conv_plan *p, conv_entry *e)
{
    if (e->fwd || flipped_forward_create(p, e)) return;
    DNNL_CHECK(dnnl_primitive_create(&e->fwd, e->fwd_pd));
    comine_cpu_weight_io_init(&e->fwd_w, &p->user_w_md, dnnl_primitive_desc_query_md(e->fwd_pd, dnnl_query_weights_md, 0), true);
    e->fwd_src = comine_cpu_dnnl_memory(&e->src_md, DNNL_MEMORY_NONE);
    e->fwd_dst = comine_cpu_dnnl_memory(&e->dst_md, DNNL_MEMORY_NONE);
    if (p->g.has_bias) e->fwd_bias = comine_cpu_dnnl_memory(&p->bias_md, DNNL_MEMORY_NONE);
}

void comine_cpu_conv_forward(void *plan, float *out, const float *in, const float *weight, const float *bias, int N)
{
    conv_plan *p = plan;
    COMINE_ASSERT(N >= 0);
    if (N == 0) return;
    COMINE_ASSERT(!p->g.has_bias || bias != NULL);
    if (p->pairs) {
        comine_cpu_conv_pairs_forward(&p->g, out, in, weight, p->g.has_bias ? bias : NULL, NULL, NULL, N);
        return;
    }
    if (p->wf2) { /* the weights may have changed since the last call: no version */
        comine_cpu_conv_wf2_forward(p, out, in, weight, 0, p->g.has_bias ? bias : NULL, NULL, NULL, N);
        return;
    }
    conv_entry *e = comine_cpu_conv_entry(p, N);
    wino_conv *w = comine_cpu_wino(p, e);
    if (w) {
        comine_cpu_wino_forward(p, w, w->fwd, comine_cpu_weights_in(&w->fwd_w, weight), out, in, bias);
        return;
    }
    comine_cpu_conv_forward_create(p, e);
    if (e->flipped) {
        flipped_forward(p, e, out, in, weight, p->g.has_bias ? bias : NULL, N);
        return;
    }
    comine_cpu_conv_forward_run(p, e, out, in, comine_cpu_weights_in(&e->fwd_w, weight), bias);
}

void comine_cpu_conv_forward_run(conv_plan *p, conv_entry *e, float *out, const float *in, dnnl_memory_t wm,
                                 const float *bias)
{
    DNNL_CHECK(dnnl_memory_set_data_handle(e->fwd_src, (void *)in));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->fwd_dst, out));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->fwd_src}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, e->fwd_dst}};
    int nargs = 3;
    if (p->g.has_bias) {
        DNNL_CHECK(dnnl_memory_set_data_handle(e->fwd_bias, (void *)bias));
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->fwd_bias};
    }
    comine_cpu_dnnl_execute(e->fwd, nargs, args);
}

/* dinp += (or, overwrite: dinp =) d out / d in */
static void backward_data(conv_plan *p, float *dinp, const float *dout, const float *weight, int N, bool overwrite)
{
    COMINE_ASSERT(N >= 0);
    if (N == 0 || !dinp) return;
    const comine_conv_geom *g = &p->g;
    if (p->wf2) {
        size_t n_in = (size_t)N * g->H * g->W * g->C;
        float *dsrc = overwrite ? dinp : thread_scratch(n_in);
        comine_cpu_conv_wf2_backward_data(p, dsrc, dout, weight, N);
        if (!overwrite) comine_cpu_accumulate(dinp, dsrc, n_in);
        return;
    }
    conv_entry *e = comine_cpu_conv_entry(p, N);
    wino_conv *w = comine_cpu_wino(p, e);
    if (w) {
        comine_cpu_wino_backward_data(w, dinp, dout, weight, overwrite);
        return;
    }
    if (!e->bwd_data) {
        dnnl_memory_desc_t w_any;
        comine_cpu_conv_weight_md(&w_any, g, dnnl_format_tag_any);
        dnnl_convolution_desc_t cd;
        DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &e->src_md, &w_any,
                                                            &e->dst_md, p->strides, p->pad_l, p->pad_r));
        dnnl_primitive_desc_t pd;
        DNNL_CHECK(dnnl_primitive_desc_create(&pd, &cd, comine_cpu_dnnl_attr(), engine, e->fwd_pd));
        DNNL_CHECK(dnnl_primitive_create(&e->bwd_data, pd));
        comine_cpu_weight_io_init(&e->bd_w, &p->user_w_md, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), true);
        dnnl_primitive_desc_destroy(pd);
        e->bd_dsrc = comine_cpu_dnnl_memory(&e->src_md, DNNL_MEMORY_NONE);
        e->bd_ddst = comine_cpu_dnnl_memory(&e->dst_md, DNNL_MEMORY_NONE);
    }
    size_t n_in = (size_t)N * g->H * g->W * g->C;
    float *dsrc = overwrite ? dinp : thread_scratch(n_in);
    dnnl_memory_t wm = comine_cpu_weights_in(&e->bd_w, weight);
    DNNL_CHECK(dnnl_memory_set_data_handle(e->bd_ddst, (void *)dout));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->bd_dsrc, dsrc));
    dnnl_exec_arg_t args[3] = {
        {DNNL_ARG_DIFF_DST, e->bd_ddst}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, e->bd_dsrc}};
    comine_cpu_dnnl_execute(e->bwd_data, 3, args);
    if (!overwrite) comine_cpu_accumulate(dinp, dsrc, n_in);
}

void comine_cpu_conv_backward(void *plan, float *dinp, bool overwrite, float *dweight, float *dbias, const float *dout,
                              const float *in, const float *weight, int N)
{
    conv_plan *p = plan;
    COMINE_ASSERT(N >= 0);
    if (N > 0) {
        wino_conv *w = comine_cpu_wino(p, comine_cpu_conv_entry(p, N));
        if (w) {
            comine_cpu_wino_backward(p, w, dinp, overwrite, dweight, dbias, dout, in, weight);
            return;
        }
    }
    backward_data(p, dinp, dout, weight, N, overwrite);
    comine_cpu_conv_backward_weights(plan, dweight, dbias, dout, in, N);
}

void comine_cpu_conv_backward_data(void *plan, float *dinp, const float *dout, const float *weight, int N)
{
    backward_data(plan, dinp, dout, weight, N, false);
}

void comine_cpu_conv_backward_data_write(void *plan, float *dinp, const float *dout, const float *weight, int N)
{
    backward_data(plan, dinp, dout, weight, N, true);
}

/* The backward-weights descriptor for `cd`.  oneDNN 2.6's jit_1x1 weight pass writes past
 * one of its own buffers for strided 1x1 convolutions whose channels are not multiples
 * of 8 (iresnet's downsample at width 0.0625, seen with valgrind): those take the next
 * implementation instead. */
static dnnl_primitive_desc_t backward_weights_pd(const comine_conv_geom *g, const dnnl_convolution_desc_t *cd,
                                                 const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint)
{
    dnnl_primitive_desc_t pd;
    bool avoid_1x1 = g->KH == 1 && g->KW == 1 && g->stride > 1 && (g->C % 8 != 0 || g->OC % 8 != 0);
    if (!avoid_1x1) {
        DNNL_CHECK(dnnl_primitive_desc_create(&pd, cd, attr, engine, hint));
        return pd;
    }
    dnnl_primitive_desc_iterator_t it;
    DNNL_CHECK(dnnl_primitive_desc_iterator_create(&it, cd, attr, engine, hint));
    for (;;) {
        pd = dnnl_primitive_desc_iterator_fetch(it);
        const char *impl = NULL;
        DNNL_CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
        if (!impl || !strstr(impl, "jit_1x1")) break;
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
        if (dnnl_primitive_desc_iterator_next(it) != dnnl_success) break;
    }
    dnnl_primitive_desc_iterator_destroy(it);
    if (!pd) DNNL_CHECK(dnnl_primitive_desc_create(&pd, cd, attr, engine, hint));
    return pd;
}

void comine_cpu_conv_backward_weights(void *plan, float *dweight, float *dbias, const float *dout, const float *in,
                                      int N)
{
    conv_plan *p = plan;
    COMINE_ASSERT(N >= 0);
    const comine_conv_geom *g = &p->g;
    if (N == 0 || (!dweight && !(dbias && g->has_bias))) return;
    conv_entry *e = comine_cpu_conv_entry(p, N);
    wino_conv *w = comine_cpu_wino(p, e);
    if (w) {
        comine_cpu_wino_backward_weights(p, w, dweight, dbias, dout, in);
        return;
    }
    blocked_bww *b = comine_cpu_blocked_bww(p, e);
    if (b) {
        comine_cpu_blocked_backward_weights(p, b, dweight, dbias, dout, in);
        return;
    }
    if (!e->bwd_weights) {
        dnnl_memory_desc_t w_any;
        comine_cpu_conv_weight_md(&w_any, g, dnnl_format_tag_any);
        dnnl_convolution_desc_t cd;
        DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &e->src_md, &w_any,
                                                               g->has_bias ? &p->bias_md : NULL, &e->dst_md,
                                                               p->strides, p->pad_l, p->pad_r));
        dnnl_primitive_desc_t pd = backward_weights_pd(g, &cd, comine_cpu_dnnl_attr(), e->fwd_pd);
        DNNL_CHECK(dnnl_primitive_create(&e->bwd_weights, pd));
        comine_cpu_weight_io_init(&e->bw_dw, &p->user_w_md, dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 0),
                       false);
        dnnl_primitive_desc_destroy(pd);
        e->bw_src = comine_cpu_dnnl_memory(&e->src_md, DNNL_MEMORY_NONE);
        e->bw_ddst = comine_cpu_dnnl_memory(&e->dst_md, DNNL_MEMORY_NONE);
        if (g->has_bias) {
            e->dbias_buf = comine_alloc_floats((size_t)g->OC);
            e->bw_dbias = comine_cpu_dnnl_memory(&p->bias_md, e->dbias_buf);
        }
    }
    DNNL_CHECK(dnnl_memory_set_data_handle(e->bw_dw.prim, thread_wscratch(e->bw_dw.floats)));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->bw_src, (void *)in));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->bw_ddst, (void *)dout));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->bw_src}, {DNNL_ARG_DIFF_DST, e->bw_ddst},
                               {DNNL_ARG_DIFF_WEIGHTS, e->bw_dw.prim}};
    int nargs = 3;
    if (g->has_bias) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, e->bw_dbias};
    comine_cpu_dnnl_execute(e->bwd_weights, nargs, args);
    if (dweight) {
        DNNL_CHECK(dnnl_memory_set_data_handle(e->bw_dw.user, dweight));
        dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, e->bw_dw.prim}, {DNNL_ARG_TO, e->bw_dw.user}};
        comine_cpu_dnnl_execute(e->bw_dw.reorder, 2, rargs);
    }
    if (dbias && g->has_bias)
        for (int c = 0; c < g->OC; c++) dbias[c] += e->dbias_buf[c];
}

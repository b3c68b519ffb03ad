/* cpu_conv_impl.h: the inside of the CPU backend's convolution plans, shared by
 * cpu_conv.c (plans, the plain forward, the backward passes), cpu_conv_fused.c (the eval
 * forward with an epilogue) and cpu_conv_wino.c (the Winograd passes): the oneDNN objects
 * a plan caches per batch size and the helpers these files call.  Not part of any API. */
#ifndef COMINE_CPU_CONV_IMPL_H
#define COMINE_CPU_CONV_IMPL_H

#include <dnnl.h>
#include <stdint.h>

#include "backend/cpu.h"

enum { MAX_ENTRIES = 4 };
enum { FUSE_PRELU = 1, FUSE_RESIDUAL = 2 };

/* A buffer in a primitive's preferred weight format, filled from (or added into) the
 * caller's plain buffer by a cached reorder; `direct` when the formats agree. */
typedef struct weight_io {
    bool direct;
    dnnl_memory_t user;   /* the caller's plain weights (handle set per call) */
    dnnl_memory_t prim;   /* what the primitive reads or writes (handle: the weight scratch) */
    dnnl_primitive_t reorder;
    size_t floats;        /* size of prim */
} weight_io;

/* An activation between the caller's NHWC tensor and a kernel's blocked one (16 channels
 * innermost), in this thread's buffer `buf` (cpu.h): the reorder to blocked, or back
 * (adding into the caller's tensor where made for that); cpu_conv_blocked.c */
typedef struct blocked_io {
    dnnl_memory_t user, blocked;
    dnnl_primitive_t reorder;
    bool to_blocked;
    size_t floats; /* size of blocked */
    int buf;
} blocked_io;

/* The Winograd passes of one (geometry, batch size): cpu_conv_wino.c */
typedef struct wino_conv {
    dnnl_primitive_desc_t fwd_pd; /* the training forward's: the backward passes' hint */
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    weight_io fwd_w, bd_w, bw_dw;
    blocked_io fwd_in, fwd_out;       /* src -> blocked; blocked dst -> dst */
    blocked_io bd_in, bd_out, bd_add; /* diff dst -> blocked; blocked diff src written / added */
    blocked_io bw_src, bw_ddst;
    bool ddst_shared; /* both backward passes read the output gradient in one layout */
    dnnl_memory_t bias, dbias;
    float *dbias_buf;
} wino_conv;

/* The weight gradient of a stride-2 3x3 convolution on blocked activations:
 * cpu_conv_blocked.c */
typedef struct blocked_bww {
    dnnl_primitive_t prim;
    weight_io dw;
    blocked_io src, ddst;
    dnnl_memory_t dbias;
    float *dbias_buf;
} blocked_bww;

typedef struct conv_entry {
    int N;
    unsigned long last_use;
    dnnl_memory_desc_t src_md, dst_md;
    /* forward */
    dnnl_primitive_desc_t fwd_pd;
    dnnl_primitive_t fwd;
    dnnl_memory_t fwd_src, fwd_dst, fwd_bias;
    weight_io fwd_w;
    /* forward as the transposed convolution's backward data (see the top) */
    bool flipped;
    dnnl_memory_t flip_in, flip_out;
    weight_io flip_w;
    /* backward data */
    dnnl_primitive_t bwd_data;
    dnnl_memory_t bd_dsrc, bd_ddst;
    weight_io bd_w;
    /* backward weights */
    dnnl_primitive_t bwd_weights;
    dnnl_memory_t bw_src, bw_ddst, bw_dbias;
    weight_io bw_dw;
    float *dbias_buf;
    /* forward with an epilogue (comine_cpu_conv_forward_fused): post-ops `fz_ops`
     * (FUSE_PRELU | FUSE_RESIDUAL), or, where oneDNN would pick a slower implementation
     * for them, the plain forward and one epilogue pass (fz_apart) */
    dnnl_primitive_t fz;
    int fz_ops;
    bool fz_made, fz_apart;
    dnnl_memory_t fz_src, fz_dst, fz_bias, fz_alpha, fz_res;
    weight_io fz_w;
    /* fz_wino: fz is the inference Winograd convolution, run between wino's reorders; the
     * epilogue is a separate pass */
    bool fz_wino;
    /* the Winograd passes (cpu_conv_wino.c), made at the first use; NULL where there are none */
    bool wino_tried;
    wino_conv *wino;
    /* the blocked weight gradient (cpu_conv_blocked.c), made at the first use, or NULL */
    bool bww_tried;
    blocked_bww *bww;
} conv_entry;

typedef struct conv_plan {
    comine_conv_geom g;
    dnnl_memory_desc_t user_w_md, bias_md;
    dnnl_memory_desc_t flip_w_md; /* (groups, C/groups, OC/groups, KH, KW): the transposed weights */
    dnnl_dims_t strides, pad_l, pad_r;
    bool pairs; /* forward by cpu_conv_pairs.c's kernel */
    bool dw;    /* eval forward by cpu_conv_dw.c's kernel */
    bool narrow; /* eval forward by cpu_conv_narrow.c's kernel */
    bool wf2;    /* eval forward by cpu_conv_wf2.c's Winograd F(2x2, 3x3) */
    bool wf4;    /* eval forward by cpu_conv_wf4.c's Winograd F(4x4, 3x3) */
    bool im2col; /* eval forward by cpu_conv_im2col.c's matrix products */
    bool k1x1;   /* eval forward by cpu_conv_1x1.c's kernel */
    /* those three kernels' weights in their own layout (comine_cpu_plan_weights) */
    float *own_w;
    size_t own_w_cap;
    const float *own_w_src;
    uint64_t own_w_version;
    /* weights in a fused forward's format, kept while the caller's (pointer, version) stay */
    float *wcache;
    size_t wcache_cap;
    dnnl_memory_desc_t wcache_md;
    const float *wcache_src;
    uint64_t wcache_version;
    unsigned long tick;
    conv_entry entries[MAX_ENTRIES];
    int n_entries;
} conv_plan;

/* aborts naming the call, file and line unless st is dnnl_success */
void comine_cpu_dnnl_check(dnnl_status_t st, const char *what, const char *file, int line);
#define DNNL_CHECK(call) comine_cpu_dnnl_check((call), #call, __FILE__, __LINE__)
dnnl_engine_t comine_cpu_dnnl_engine(void);
/* *buf grown to at least n floats (contents not kept) */
float *comine_cpu_grow(float **buf, size_t *cap, size_t n);
/* The attributes every primitive here is made with (or adds to its own): scratchpad mode
 * user, the scratchpad being the executing thread's (comine_cpu_dnnl_execute), so that
 * primitives may run on any thread, and several at once */
const_dnnl_primitive_attr_t comine_cpu_dnnl_attr(void);
/* weights (OC, C, KH, KW) or (G, OC/G, C/G, KH, KW); tag_any: dnnl_format_tag_any, else plain */
void comine_cpu_conv_weight_md(dnnl_memory_desc_t *md, const comine_conv_geom *g, dnnl_format_tag_t tag_any);
dnnl_memory_t comine_cpu_dnnl_memory(const dnnl_memory_desc_t *md, void *handle);
/* to_prim: user -> primitive format (plain copy); else primitive -> user with a sum post-op */
void comine_cpu_weight_io_init(weight_io *w, const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *prim_md,
                               bool to_prim);
void comine_cpu_weight_io_destroy(weight_io *w);
/* runs p on this thread's stream and waits */
void comine_cpu_dnnl_execute(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args);
/* the memory a primitive reads its weights from, after reordering the caller's */
dnnl_memory_t comine_cpu_weights_in(weight_io *w, const float *user);
/* the entry for batch size N, with its forward descriptor (primitives are made lazily) */
conv_entry *comine_cpu_conv_entry(conv_plan *p, int N);
/* the plain forward's primitive of e (the flipped one where it is faster) */
void comine_cpu_conv_forward_create(conv_plan *p, conv_entry *e);
/* out = conv(in) + bias by e's plain (not flipped) forward primitive with the weights wm */
void comine_cpu_conv_forward_run(conv_plan *p, conv_entry *e, float *out, const float *in, dnnl_memory_t wm,
                                 const float *bias);

/* ---- cpu_conv_blocked.c ---- */
/* COMINE_CONV_NHWC=1 in the environment: every pass on NHWC activations (no Winograd, no
 * blocked weight gradient), for comparisons */
bool comine_cpu_conv_nhwc_only(void);
/* io between the NHWC tensor user_md and a kernel's blocked_md in this thread's buffer buf:
 * to_blocked, or back (add: into the caller's tensor) */
void comine_cpu_blocked_io_init(blocked_io *io, const dnnl_memory_desc_t *user_md,
                                const dnnl_memory_desc_t *blocked_md, bool to_blocked, bool add, int buf);
void comine_cpu_blocked_io_free(blocked_io *io);
/* io's blocked memory on this thread's buffer, filled from `user` when io goes to blocked */
dnnl_memory_t comine_cpu_blocked_io_in(blocked_io *io, const float *user);
/* the blocked result written (or added) into the caller's `user` */
void comine_cpu_blocked_io_back(blocked_io *io, float *user);
/* e's blocked weight gradient, made at the first call: NULL where e's geometry is not a
 * dense 3x3 stride-2 convolution with 64 channels or more on an AVX-512 CPU */
blocked_bww *comine_cpu_blocked_bww(conv_plan *p, conv_entry *e);
/* dweight += d / d weight, dbias += d / d bias (either NULL to skip) */
void comine_cpu_blocked_backward_weights(conv_plan *p, blocked_bww *b, float *dweight, float *dbias,
                                         const float *dout, const float *in);
void comine_cpu_blocked_bww_free(blocked_bww *b);

/* ---- cpu_conv_wino.c ---- */
/* e's Winograd passes, made at the first call: NULL where its geometry is not a dense 3x3
 * stride-1 convolution with padding 1, oneDNN has no Winograd kernel on this CPU, or
 * COMINE_CONV_NHWC=1 */
wino_conv *comine_cpu_wino(conv_plan *p, conv_entry *e);
/* e->fz and e->fz_w: the inference Winograd convolution on w's blocked layouts; false if
 * oneDNN has none */
bool comine_cpu_wino_inference_create(conv_plan *p, conv_entry *e, wino_conv *w);
/* out = conv(in, weights wm) + bias by prim (w->fwd, or the inference e->fz) */
void comine_cpu_wino_forward(conv_plan *p, wino_conv *w, dnnl_primitive_t prim, dnnl_memory_t wm, float *out,
                             const float *in, const float *bias);
/* dinp += d out / d in (overwrite: dinp =) */
void comine_cpu_wino_backward_data(wino_conv *w, float *dinp, const float *dout, const float *weight, bool overwrite);
/* dweight += d / d weight, dbias += d / d bias (either NULL to skip) */
void comine_cpu_wino_backward_weights(conv_plan *p, wino_conv *w, float *dweight, float *dbias, const float *dout,
                                      const float *in);
/* both: the output gradient reordered once (where both passes read it in one layout) */
void comine_cpu_wino_backward(conv_plan *p, wino_conv *w, float *dinp, bool overwrite, float *dweight, float *dbias,
                              const float *dout, const float *in, const float *weight);
void comine_cpu_wino_free(wino_conv *w);

/* p->own_w grown to n floats; returns it where the caller must write the weights in its
 * layout (version 0, or another pointer or version than the kept one), else NULL */
float *comine_cpu_plan_weights(conv_plan *p, const float *weight, uint64_t version, size_t n);

/* cpu_conv_im2col.c: the eval forward of dense 3x3 stride-2 convolutions as matrix products,
 * where oneDNN's direct kernel is slow (no AVX-512), 32 channels or more in and out */
bool comine_cpu_conv_im2col_supported(const comine_conv_geom *g);
void comine_cpu_conv_im2col_forward(conv_plan *p, float *out, const float *in, const float *weight,
                                    uint64_t weight_version, const float *bias, const float *alpha,
                                    const float *residual, int N);

/* cpu_conv_1x1.c: the eval forward of dense 1x1 stride-1 convolutions on AVX-512, output
 * channels a multiple of 32 */
bool comine_cpu_conv_1x1_supported(const comine_conv_geom *g);
void comine_cpu_conv_1x1_forward(conv_plan *p, float *out, const float *in, const float *weight,
                                 uint64_t weight_version, const float *bias, const float *alpha,
                                 const float *residual, int N);

/* cpu_conv_wf2.c: Winograd F(2x2, 3x3) where oneDNN has none (no AVX-512): dense 3x3,
 * stride 1, pad 1, 32 channels or more in and out; the forward (eval and training) and the
 * backward-data pass (dinp = the transposed convolution of dout, overwritten) */
bool comine_cpu_conv_wf2_supported(const comine_conv_geom *g);
void comine_cpu_conv_wf2_forward(conv_plan *p, float *out, const float *in, const float *weight,
                                 uint64_t weight_version, const float *bias, const float *alpha,
                                 const float *residual, int N);
void comine_cpu_conv_wf2_backward_data(conv_plan *p, float *dinp, const float *dout, const float *weight, int N);

/* cpu_conv_wf4.c: the eval forward of dense 3x3 stride-1 pad-1 convolutions with 16 to 128
 * channels in and out (multiples of 16), by Winograd F(4x4, 3x3), on AVX-512 */
bool comine_cpu_conv_wf4_supported(const comine_conv_geom *g);
/* in_scale and in_shift (C, both or neither): the input is in * in_scale + in_shift, the
 * padding zero */
void comine_cpu_conv_wf4_forward(conv_plan *p, float *out, const float *in, const float *in_scale,
                                 const float *in_shift, const float *weight, uint64_t weight_version,
                                 const float *bias, const float *alpha, const float *residual, int N);

#endif

/* cuda_conv.c: the CUDA backend's convolutions through cuDNN 9's convolution API.
 *
 * Activations are NHWC tensors on both sides (no reorder).  The filter is given to cuDNN in
 * its NHWC format, (OC, KH, KW, C/groups), the layout cuDNN's NHWC kernels are made for:
 * comine's weights are (OC, C/groups, KH, KW), the same bytes when KH = KW = 1 or C/groups
 * = 1 (1x1 and depthwise convolutions), otherwise transposed per call into the thread's
 * scratch (a weight is small beside its activations); the weight gradient is computed in
 * that layout and added back transposed (so backward accumulates), or straight into the
 * caller's buffer with beta = 1 when the layouts agree.  Should cuDNN offer no algorithm for
 * a geometry with the filter in NHWC, the plan falls back to the NCHW filter format (comine's
 * layout) beside the NHWC tensors.  Grouped convolutions through
 * cudnnSetConvolutionGroupCount.  The bias is added after the convolution (add_bias) and
 * its gradient is a column sum of dout (accumulate_colsum).  Math is fp32 with FMA
 * (CUDNN_FMA_MATH: no TF32 tensor cores), comparable with the CPU backend.
 *
 * A plan is one geometry; it caches, per batch size N (PLAN_ENTRIES at a time, the least
 * recently used replaced), the tensor descriptors and the algorithm of each pass with its
 * workspace size, chosen once by cuDNN's heuristics (cudnnGet*Algorithm_v7: nothing runs,
 * no buffer is written).  The workspace is the calling thread's, grown to the largest asked
 * for.  A plan is used by one thread at a time. */
#include "backend/cuda/cuda_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PLAN_ENTRIES = 4 };
#define WORKSPACE_LIMIT ((size_t)1 << 30) /* algorithms asking for more are passed over */

typedef struct conv_entry {
    int N; /* 0: unused */
    uint64_t last_use;
    cudnnTensorDescriptor_t x, y;
    bool have_fwd, have_bwd_data, have_bwd_filter;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t fwd_ws, bwd_data_ws, bwd_filter_ws;
} conv_entry;

typedef struct conv_plan {
    comine_conv_geom g;
    int Cg, KHW;
    bool transpose;   /* the weight layouts differ (C/groups > 1 and a kernel larger than 1x1) */
    bool filter_nchw; /* cuDNN reads the filter in NCHW (the fallback of switch_filter_format) */
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    conv_entry e[PLAN_ENTRIES];
    uint64_t clock;
} conv_plan;

void *comine_cuda_conv_plan_create(const comine_conv_geom *g)
{
    COMINE_ASSERT(g->groups >= 1 && g->C % g->groups == 0 && g->OC % g->groups == 0);
    COMINE_ASSERT(g->KH >= 1 && g->KW >= 1 && g->stride >= 1 && g->pad >= 0);
    comine_cuda_ctx_get();
    conv_plan *p = comine_malloc(sizeof *p);
    memset(p, 0, sizeof *p);
    p->g = *g;
    p->Cg = g->C / g->groups;
    p->KHW = g->KH * g->KW;
    p->transpose = p->Cg > 1 && p->KHW > 1;
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, g->OC, p->Cg, g->KH, g->KW));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv, g->pad, g->pad, g->stride, g->stride, 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(p->conv, g->groups));
    CUDNN_CHECK(cudnnSetConvolutionMathType(p->conv, CUDNN_FMA_MATH));
    return p;
}

static void entry_clear(conv_entry *e)
{
    if (e->N) {
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(e->x));
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(e->y));
    }
    memset(e, 0, sizeof *e);
}

void comine_cuda_conv_plan_free(void *plan)
{
    conv_plan *p = plan;
    if (!p) return;
    for (int i = 0; i < PLAN_ENTRIES; i++) entry_clear(&p->e[i]);
    CUDNN_CHECK(cudnnDestroyFilterDescriptor(p->w));
    CUDNN_CHECK(cudnnDestroyConvolutionDescriptor(p->conv));
    free(p);
}

/* The entry of batch size N, made when missing (the least recently used one replaced). */
static conv_entry *plan_entry(conv_plan *p, int N)
{
    conv_entry *e = NULL;
    for (int i = 0; i < PLAN_ENTRIES; i++)
        if (p->e[i].N == N) e = &p->e[i];
    if (!e) {
        e = &p->e[0];
        for (int i = 1; i < PLAN_ENTRIES; i++)
            if (p->e[i].last_use < e->last_use) e = &p->e[i];
        entry_clear(e);
        const comine_conv_geom *g = &p->g;
        CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->x));
        CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->y));
        CUDNN_CHECK(cudnnSetTensor4dDescriptor(e->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, N, g->C, g->H, g->W));
        CUDNN_CHECK(cudnnSetTensor4dDescriptor(e->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, N, g->OC, g->OH, g->OW));
        int on, oc, oh, ow;
        CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(p->conv, e->x, p->w, &on, &oc, &oh, &ow));
        COMINE_ASSERT(on == N && oc == g->OC && oh == g->OH && ow == g->OW); /* the geometry is consistent */
        e->N = N;
    }
    e->last_use = ++p->clock;
    return e;
}

/* pick = the first algorithm of cuDNN's ranking that is supported, keeps fp32 math and fits
 * the workspace limit, else the first supported one that fits; -1 when none. */
#define PICK_ALGO(perf, count, pick)                                                                   \
    do {                                                                                               \
        (pick) = -1;                                                                                   \
        for (int i_ = 0; i_ < (count) && (pick) < 0; i_++)                                             \
            if ((perf)[i_].status == CUDNN_STATUS_SUCCESS && (perf)[i_].memory <= WORKSPACE_LIMIT &&     \
                (perf)[i_].mathType != CUDNN_TENSOR_OP_MATH)                                           \
                (pick) = i_;                                                                           \
        for (int i_ = 0; i_ < (count) && (pick) < 0; i_++)                                             \
            if ((perf)[i_].status == CUDNN_STATUS_SUCCESS && (perf)[i_].memory <= WORKSPACE_LIMIT)      \
                (pick) = i_;                                                                           \
    } while (0)

/* No algorithm takes the filter in NHWC: the plan switches to the NCHW filter format (comine's
 * own weight layout, no transpose), which cuDNN accepts beside NHWC tensors for some
 * algorithms, and every pass of every batch size chooses again.  False when already done. */
static bool switch_filter_format(conv_plan *p)
{
    if (p->filter_nchw) return false;
    const comine_conv_geom *g = &p->g;
    p->filter_nchw = true;
    p->transpose = false;
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, g->OC, p->Cg, g->KH, g->KW));
    for (int i = 0; i < PLAN_ENTRIES; i++) p->e[i].have_fwd = p->e[i].have_bwd_data = p->e[i].have_bwd_filter = false;
    return true;
}

static void no_algorithm(const conv_plan *p, const char *pass, int N)
{
    const comine_conv_geom *g = &p->g;
    char what[256];
    snprintf(what, sizeof what,
             "choosing the %s algorithm of the convolution N=%d C=%d H=%d W=%d OC=%d K=%dx%d stride %d pad %d groups %d",
             pass, N, g->C, g->H, g->W, g->OC, g->KH, g->KW, g->stride, g->pad, g->groups);
    comine_cuda_fail("cuDNN", "no supported algorithm (NHWC and NCHW filter formats tried)", what, __FILE__, __LINE__);
}

static void choose_fwd(comine_cuda_ctx *c, conv_plan *p, conv_entry *e)
{
    while (!e->have_fwd) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int n = 0, pick;
        CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(c->dnn, e->x, p->w, p->conv, e->y,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
        PICK_ALGO(perf, n, pick);
        if (pick >= 0) {
            e->fwd = perf[pick].algo;
            e->fwd_ws = perf[pick].memory;
            e->have_fwd = true;
        } else if (!switch_filter_format(p)) {
            no_algorithm(p, "forward", e->N);
        }
    }
}

static void choose_bwd_data(comine_cuda_ctx *c, conv_plan *p, conv_entry *e)
{
    while (!e->have_bwd_data) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        int n = 0, pick;
        CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(c->dnn, p->w, e->y, p->conv, e->x,
                                                                CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
        PICK_ALGO(perf, n, pick);
        if (pick >= 0) {
            e->bwd_data = perf[pick].algo;
            e->bwd_data_ws = perf[pick].memory;
            e->have_bwd_data = true;
        } else if (!switch_filter_format(p)) {
            no_algorithm(p, "backward-data", e->N);
        }
    }
}

static void choose_bwd_filter(comine_cuda_ctx *c, conv_plan *p, conv_entry *e)
{
    while (!e->have_bwd_filter) {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        int n = 0, pick;
        CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(c->dnn, e->x, e->y, p->conv, p->w,
                                                                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf));
        PICK_ALGO(perf, n, pick);
        if (pick >= 0) {
            e->bwd_filter = perf[pick].algo;
            e->bwd_filter_ws = perf[pick].memory;
            e->have_bwd_filter = true;
        } else if (!switch_filter_format(p)) {
            no_algorithm(p, "backward-filter", e->N);
        }
    }
}

/* The weights in cuDNN's layout: weight itself, or its transpose in the thread's scratch. */
static const float *weights_in(comine_cuda_ctx *c, const conv_plan *p, const float *weight)
{
    if (!p->transpose) return weight;
    float *w = comine_cuda_scratch(c, 0, (size_t)p->g.OC * p->Cg * p->KHW);
    comine_cuda_oihw_to_ohwi(w, weight, p->g.OC, p->Cg, p->KHW);
    return w;
}

/* out (N, OH, OW, OC) = conv(in (N, H, W, C), weight (OC, C/groups, KH, KW)) + bias (OC) */
void comine_cuda_conv_forward(void *plan, float *out, const float *in, const float *weight, const float *bias, int N)
{
    conv_plan *p = plan;
    COMINE_ASSERT(N >= 0);
    if (N == 0) return;
    COMINE_ASSERT(!p->g.has_bias || bias != NULL);
    comine_cuda_ctx *c = comine_cuda_ctx_get();
    conv_entry *e = plan_entry(p, N);
    choose_fwd(c, p, e);
    const float *w = weights_in(c, p, weight);
    void *ws = comine_cuda_workspace(c, e->fwd_ws);
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnConvolutionForward(c->dnn, &one, e->x, in, p->w, w, p->conv, e->fwd, ws, e->fwd_ws, &zero, e->y,
                                        out));
    if (p->g.has_bias) comine_cuda_add_bias(out, bias, (size_t)N * p->g.OH * p->g.OW, p->g.OC);
}

/* dinp (N, H, W, C) += (or, overwrite: =) d out / d in */
static void backward_data(conv_plan *p, float *dinp, const float *dout, const float *weight, int N, bool overwrite)
{
    COMINE_ASSERT(N >= 0);
    if (N == 0 || !dinp) return;
    comine_cuda_ctx *c = comine_cuda_ctx_get();
    conv_entry *e = plan_entry(p, N);
    choose_bwd_data(c, p, e);
    const float *w = weights_in(c, p, weight);
    void *ws = comine_cuda_workspace(c, e->bwd_data_ws);
    const float one = 1.0f, beta = overwrite ? 0.0f : 1.0f;
    CUDNN_CHECK(cudnnConvolutionBackwardData(c->dnn, &one, p->w, w, e->y, dout, p->conv, e->bwd_data, ws,
                                             e->bwd_data_ws, &beta, e->x, dinp));
}

void comine_cuda_conv_backward_data(void *plan, float *dinp, const float *dout, const float *weight, int N)
{
    backward_data(plan, dinp, dout, weight, N, false);
}

void comine_cuda_conv_backward_data_write(void *plan, float *dinp, const float *dout, const float *weight, int N)
{
    backward_data(plan, dinp, dout, weight, N, true);
}

/* dweight (OC, C/groups, KH, KW) += ..., dbias (OC) += sum of dout's rows (either may be NULL) */
void comine_cuda_conv_backward_weights(void *plan, float *dweight, float *dbias, const float *dout, const float *in,
                                       int N)
{
    conv_plan *p = plan;
    COMINE_ASSERT(N >= 0);
    const comine_conv_geom *g = &p->g;
    if (N == 0) return;
    comine_cuda_ctx *c = comine_cuda_ctx_get();
    if (dweight) {
        conv_entry *e = plan_entry(p, N);
        choose_bwd_filter(c, p, e);
        void *ws = comine_cuda_workspace(c, e->bwd_filter_ws);
        const float one = 1.0f, zero = 0.0f;
        if (p->transpose) {
            float *dw = comine_cuda_scratch(c, 1, (size_t)g->OC * p->Cg * p->KHW);
            CUDNN_CHECK(cudnnConvolutionBackwardFilter(c->dnn, &one, e->x, in, e->y, dout, p->conv, e->bwd_filter,
                                                       ws, e->bwd_filter_ws, &zero, p->w, dw));
            comine_cuda_ohwi_accumulate_oihw(dweight, dw, g->OC, p->Cg, p->KHW);
        } else {
            CUDNN_CHECK(cudnnConvolutionBackwardFilter(c->dnn, &one, e->x, in, e->y, dout, p->conv, e->bwd_filter,
                                                       ws, e->bwd_filter_ws, &one, p->w, dweight));
        }
    }
    if (dbias && g->has_bias) comine_cuda_accumulate_colsum(dbias, dout, (size_t)N * g->OH * g->OW, g->OC);
}

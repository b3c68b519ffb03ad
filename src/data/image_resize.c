/* image_resize.c: an image to the network input.  A separable resampler over a source box
 * (area weights when shrinking, bilinear with half-pixel centres when growing), optional
 * mirror, (x - 127.5) / 128; the plain conversion when the image is already at the input size;
 * and the loader's augmentation (flip and crop/scale jitter drawn from the sample's RNG).
 * Assumes a decoded image (h, w, 3) with w, h > 0; touches no shared state. */
#include "comine/data.h"

#include <math.h>
#include <stdlib.h>

/* One axis: output pixel j reads source pixels first[j] .. first[j] + taps - 1 with
 * weights w[j * taps + k].  Shrinking (scale > 1) uses area weights: the overlap of the
 * output pixel's source interval with each source pixel; growing uses bilinear weights at
 * the centre (j + 0.5) * scale - 0.5 (PyTorch's align_corners=False, OpenCV's INTER_LINEAR). */
typedef struct axis_weights {
    int taps;            /* pixels read per output (the same for all) */
    int *first;          /* (dst) first source pixel */
    float *w;            /* (dst, taps) weights, zero where unused */
} axis_weights;

static void axis_set(axis_weights *a, int j, int f, int count, const double *w, int src)
{
    /* Every output reads exactly `taps` pixels: shift the window inside the image, zero-pad. */
    int taps = a->taps, start = f + taps <= src ? f : src - taps;
    float *dst = a->w + (size_t)j * taps;
    for (int k = 0; k < taps; k++) dst[k] = 0;
    for (int k = 0; k < count; k++) dst[f - start + k] = (float)w[k];
    a->first[j] = start;
}

static void axis_build(axis_weights *a, float x0, float len, int src, int dst)
{
    float scale = len / (float)dst;
    int taps = scale > 1.0f ? (int)ceilf(scale) + 1 : 2;
    if (taps > src) taps = src;
    a->taps = taps;
    a->first = comine_malloc(sizeof(int) * dst);
    a->w = comine_calloc((size_t)dst * taps, sizeof(float));
    double *w = comine_malloc(sizeof(double) * (taps + 2));
    for (int j = 0; j < dst; j++) {
        if (scale > 1.0f) {
            double lo = x0 + (double)j * scale, hi = lo + scale;
            if (lo < 0) lo = 0;
            if (hi > src) hi = src;
            if (hi <= lo) { /* a box entirely outside: take the nearest edge pixel */
                w[0] = 1.0;
                axis_set(a, j, lo >= src ? src - 1 : 0, 1, w, src);
                continue;
            }
            int f = (int)floor(lo), l = (int)ceil(hi);
            if (l > src) l = src;
            if (l - f > taps) l = f + taps;
            double total = 0;
            for (int k = f; k < l; k++) {
                double a0 = k > lo ? k : lo, a1 = k + 1 < hi ? k + 1 : hi;
                w[k - f] = a1 > a0 ? a1 - a0 : 0;
                total += w[k - f];
            }
            for (int k = 0; k < l - f; k++) w[k] /= total;
            axis_set(a, j, f, l - f, w, src);
        } else {
            double c = x0 + ((double)j + 0.5) * scale - 0.5;
            if (c < 0) c = 0;
            if (c > src - 1) c = src - 1;
            int f = (int)floor(c);
            double t = c - f;
            if (f >= src - 1) {
                f = src - 1;
                t = 0;
            }
            w[0] = 1.0 - t;
            w[1] = t;
            axis_set(a, j, f, t == 0 ? 1 : 2, w, src);
        }
    }
    free(w);
}

static void axis_free(axis_weights *a)
{
    free(a->first);
    free(a->w);
}

void comine_image_box_to_input(float *out, const comine_image *img, float x0, float y0, float bw, float bh,
                               int size, bool flip)
{
    // out is (size, size, 3); img->rgb is (h, w, 3)
    COMINE_ASSERT(img && img->rgb && img->w > 0 && img->h > 0 && size > 0);
    const int W = img->w, H = img->h;
    if (bw > W) bw = (float)W;
    if (bh > H) bh = (float)H;
    if (bw < 1) bw = 1;
    if (bh < 1) bh = 1;
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x0 + bw > W) x0 = W - bw;
    if (y0 + bh > H) y0 = H - bh;
    const float inv = 1.0f / 128.0f;
    /* The common case (an aligned face already at the input size) is a plain conversion. */
    if (W == size && H == size && x0 == 0 && y0 == 0 && bw == W && bh == H) {
        const float off = 127.5f * inv;
        for (int y = 0; y < size; y++) {
            const uint8_t *restrict src = img->rgb + (size_t)y * W * 3;
            float *restrict dst = out + (size_t)y * size * 3;
            if (!flip) {
                for (int i = 0; i < size * 3; i++) dst[i] = (float)src[i] * inv - off;
            } else if (size > 1024) {
                for (int x = 0; x < size; x++)
                    for (int c = 0; c < 3; c++) dst[3 * x + c] = (float)src[3 * (size - 1 - x) + c] * inv - off;
            } else {
                /* Mirror the bytes first (cheap), then the same vectorised conversion. */
                uint8_t mirrored[3 * 1024];
                for (int x = 0; x < size; x++) {
                    const uint8_t *restrict p = src + 3 * (size - 1 - x);
                    mirrored[3 * x] = p[0];
                    mirrored[3 * x + 1] = p[1];
                    mirrored[3 * x + 2] = p[2];
                }
                for (int i = 0; i < size * 3; i++) dst[i] = (float)mirrored[i] * inv - off;
            }
        }
        return;
    }
    axis_weights ax, ay;
    axis_build(&ax, x0, bw, W, size);
    axis_build(&ay, y0, bh, H, size);
    /* Vertical pass into a (size, W, 3) float buffer over the columns the horizontal pass reads. */
    float *tmp = comine_malloc(sizeof(float) * (size_t)size * W * 3);
    const int tx = ax.taps, ty = ay.taps;
    int cx0 = ax.first[0], cx1 = ax.first[0] + tx;
    for (int j = 0; j < size; j++) {
        if (ax.first[j] < cx0) cx0 = ax.first[j];
        if (ax.first[j] + tx > cx1) cx1 = ax.first[j] + tx;
    }
    for (int y = 0; y < size; y++) {
        float *restrict row = tmp + (size_t)y * W * 3;
        const float *w = ay.w + (size_t)y * ty;
        for (int x = cx0 * 3; x < cx1 * 3; x++) row[x] = 0;
        for (int k = 0; k < ty; k++) {
            const uint8_t *restrict src = img->rgb + (size_t)(ay.first[y] + k) * W * 3;
            const float wk = w[k];
            if (wk == 0) continue;
            for (int x = cx0 * 3; x < cx1 * 3; x++) row[x] += wk * (float)src[x];
        }
    }
    for (int y = 0; y < size; y++) {
        const float *restrict row = tmp + (size_t)y * W * 3;
        float *restrict dst = out + (size_t)y * size * 3;
        for (int x = 0; x < size; x++) {
            int sx = flip ? size - 1 - x : x;
            const float *restrict w = ax.w + (size_t)sx * tx;
            const float *restrict p = row + (size_t)ax.first[sx] * 3;
            float r = 0, g = 0, b = 0;
            for (int k = 0; k < tx; k++) {
                r += w[k] * p[3 * k];
                g += w[k] * p[3 * k + 1];
                b += w[k] * p[3 * k + 2];
            }
            dst[3 * x] = (r - 127.5f) * inv;
            dst[3 * x + 1] = (g - 127.5f) * inv;
            dst[3 * x + 2] = (b - 127.5f) * inv;
        }
    }
    free(tmp);
    axis_free(&ax);
    axis_free(&ay);
}

void comine_image_to_input(float *out, const comine_image *img, int size, bool flip)
{
    comine_image_box_to_input(out, img, 0, 0, (float)img->w, (float)img->h, size, flip);
}

void comine_image_augment_to_input(float *out, const comine_image *img, int size, bool flip, float jitter,
                                   comine_rng *rng)
{
    /* Always four draws: flip, scale, x shift, y shift. */
    bool do_flip = comine_rng_uniform(rng) < 0.5f;
    float us = comine_rng_uniform(rng), ux = comine_rng_uniform(rng), uy = comine_rng_uniform(rng);
    if (jitter <= 0) {
        comine_image_to_input(out, img, size, flip && do_flip);
        return;
    }
    if (jitter > 0.5f) jitter = 0.5f;
    /* Box side in [1 - jitter, 1] of the image, placed uniformly where it fits. */
    float f = 1.0f - jitter * us;
    float bw = f * img->w, bh = f * img->h;
    float x0 = ux * (img->w - bw), y0 = uy * (img->h - bh);
    comine_image_box_to_input(out, img, x0, y0, bw, bh, size, flip && do_flip);
}

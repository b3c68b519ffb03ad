/* synth.c: procedural synthetic faces (see comine/synth.h): the identities, the variations
 * and the renderer.  Every pixel is coloured by painting layers back to front (background,
 * long hair, body, ears, face, hair, features, glasses, occluders); each layer's coverage
 * comes from a signed distance in face units divided by the size of one pixel, which
 * anti-aliases every edge.  Then lighting (a Lambertian ellipsoid head), colour/contrast
 * jitter, Gaussian blur and pixel noise.  Writing data sets is synth_write.c's.
 * Assumes nothing about threads: each image depends only on (seed, identity, image). */
#include "comine/synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ----------------------------------------------------------------- */

static float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }
static float lerpf(float a, float b, float t) { return a + (b - a) * t; }
static float urange(comine_rng *r, float lo, float hi) { return lo + (hi - lo) * comine_rng_uniform(r); }
static float sqf(float x) { return x * x; }
static float maxf(float a, float b) { return a > b ? a : b; }
static float minf(float a, float b) { return a < b ? a : b; }

/* Coverage of a pixel by the region sd < 0, sd and px (one pixel) in the same units. */
static float cover(float sd, float px) { return clampf(0.5f - sd / px, 0.0f, 1.0f); }

/* Approximate signed distance to an axis-aligned ellipse with half-axes (a, b). */
static float sd_ellipse(float x, float y, float a, float b)
{
    float k0 = sqrtf(sqf(x / a) + sqf(y / b));
    float k1 = sqrtf(sqf(x / (a * a)) + sqf(y / (b * b)));
    if (k1 < 1e-6f) return -minf(a, b);
    return k0 * (k0 - 1.0f) / k1;
}

/* Signed distance to the segment (ax, ay)-(bx, by) thickened by r. */
static float sd_capsule(float x, float y, float ax, float ay, float bx, float by, float r)
{
    float px = x - ax, py = y - ay, dx = bx - ax, dy = by - ay;
    float h = clampf((px * dx + py * dy) / (dx * dx + dy * dy + 1e-12f), 0.0f, 1.0f);
    return sqrtf(sqf(px - dx * h) + sqf(py - dy * h)) - r;
}

/* Signed distance to a box with half-sizes (hw, hh) rotated by `angle` about its centre. */
static float sd_box(float x, float y, float hw, float hh, float angle)
{
    float c = cosf(angle), s = sinf(angle);
    float u = fabsf(c * x + s * y) - hw, v = fabsf(-s * x + c * y) - hh;
    float ou = maxf(u, 0.0f), ov = maxf(v, 0.0f);
    return sqrtf(ou * ou + ov * ov) + minf(maxf(u, v), 0.0f);
}

static void paint(float *col, const float *c, float alpha)
{
    for (int k = 0; k < 3; k++) col[k] = lerpf(col[k], c[k], alpha);
}

static void set3(float *dst, float r, float g, float b)
{
    dst[0] = r;
    dst[1] = g;
    dst[2] = b;
}

static void scale3(float *dst, const float *src, float s)
{
    for (int k = 0; k < 3; k++) dst[k] = clampf(src[k] * s, 0.0f, 1.0f);
}

static void jitter3(float *c, comine_rng *r, float amount)
{
    for (int k = 0; k < 3; k++) c[k] = clampf(c[k] + urange(r, -amount, amount), 0.0f, 1.0f);
}

/* splitmix64 finaliser: derives independent seeds for identities and images. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Approximately N(0, 1) pixel noise: the sum of four 16-bit uniforms (Irwin-Hall), one draw. */
static float pixel_noise(comine_rng *r)
{
    uint64_t x = comine_rng_u64(r);
    float s = (float)(x & 0xffff) + (float)((x >> 16) & 0xffff) + (float)((x >> 32) & 0xffff) + (float)(x >> 48);
    return (s * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

/* ---- identities and variations ---------------------------------------------------- */

void comine_synth_identity_random(comine_synth_identity *id, comine_rng *r)
{
    memset(id, 0, sizeof *id);
    id->face_w = urange(r, 0.64f, 0.84f);
    id->jaw = urange(r, 0.62f, 0.98f);

    /* skin: a tone between light and dark, with a hue shift (pinker or more olive) */
    float tone = comine_rng_uniform(r), hue = urange(r, -0.04f, 0.04f);
    set3(id->skin, lerpf(0.96f, 0.34f, tone), lerpf(0.80f, 0.21f, tone) + hue, lerpf(0.68f, 0.13f, tone) - hue);
    jitter3(id->skin, r, 0.03f);

    static const float hair_palette[][3] = {
        {0.07f, 0.06f, 0.05f}, {0.22f, 0.14f, 0.08f}, {0.42f, 0.27f, 0.15f}, {0.80f, 0.66f, 0.42f},
        {0.58f, 0.24f, 0.10f}, {0.55f, 0.55f, 0.55f}, {0.85f, 0.84f, 0.82f}, {0.12f, 0.09f, 0.07f},
    };
    memcpy(id->hair, hair_palette[comine_rng_below(r, 8)], sizeof id->hair);
    jitter3(id->hair, r, 0.05f);
    static const float iris_palette[][3] = {
        {0.30f, 0.17f, 0.08f}, {0.15f, 0.09f, 0.05f}, {0.30f, 0.50f, 0.75f},
        {0.35f, 0.55f, 0.30f}, {0.50f, 0.55f, 0.58f}, {0.50f, 0.38f, 0.18f},
    };
    memcpy(id->iris, iris_palette[comine_rng_below(r, 6)], sizeof id->iris);
    jitter3(id->iris, r, 0.05f);
    set3(id->lip, id->skin[0] * 0.85f + 0.08f, id->skin[1] * 0.55f, id->skin[2] * 0.6f);
    jitter3(id->lip, r, 0.05f);

    id->hair_style = (int)comine_rng_below(r, 8);
    id->hair_style = id->hair_style < 3 ? 0 : id->hair_style < 5 ? 1 : id->hair_style < 7 ? 2 : 3;
    id->hairline = urange(r, -0.78f, -0.45f);
    id->parting = urange(r, -0.45f, 0.45f);
    id->fringe = urange(r, 0.0f, 0.35f);
    id->eye_y = urange(r, -0.18f, 0.02f);
    id->eye_dx = urange(r, 0.24f, 0.37f);
    id->eye_w = urange(r, 0.10f, 0.15f);
    id->eye_h = id->eye_w * urange(r, 0.42f, 0.66f);
    id->brow_dy = urange(r, 0.12f, 0.22f);
    id->brow_thick = urange(r, 0.018f, 0.05f);
    id->brow_tilt = urange(r, -0.25f, 0.25f);
    id->brow_len = urange(r, 0.18f, 0.30f);
    id->nose_len = urange(r, 0.26f, 0.44f);
    id->nose_w = urange(r, 0.08f, 0.17f);
    id->mouth_y = id->eye_y + id->nose_len + urange(r, 0.14f, 0.26f);
    id->mouth_w = urange(r, 0.17f, 0.30f);
    id->lip_thick = urange(r, 0.025f, 0.065f);
    id->ear_size = urange(r, 0.8f, 1.25f);
    uint32_t b = comine_rng_below(r, 10);
    id->beard = b < 6 ? 0 : b < 7 ? 1 : b < 8 ? 2 : 3;
    id->glasses = comine_rng_below(r, 7) == 0;
    static const float frame_palette[][3] = {{0.05f, 0.05f, 0.05f}, {0.55f, 0.45f, 0.20f}, {0.45f, 0.10f, 0.10f},
                                             {0.70f, 0.70f, 0.72f}};
    memcpy(id->glasses_color, frame_palette[comine_rng_below(r, 4)], sizeof id->glasses_color);
    id->mole = comine_rng_below(r, 3) == 0;
    id->mole_x = urange(r, -0.45f, 0.45f) * id->face_w;
    id->mole_y = urange(r, id->eye_y + 0.1f, id->mouth_y + 0.1f);
}

void comine_synth_draw_variation(comine_synth_variation *v, comine_rng *r)
{
    memset(v, 0, sizeof *v);
    v->dx = urange(r, -0.06f, 0.06f);
    v->dy = urange(r, -0.06f, 0.06f);
    v->angle = 0.20f * comine_rng_normal(r);
    v->angle = clampf(v->angle, -0.4f, 0.4f);
    v->scale = urange(r, 0.33f, 0.41f);
    v->yaw = clampf(0.4f * comine_rng_normal(r), -0.9f, 0.9f);
    float a = urange(r, 0.0f, 6.2831853f);
    v->light_x = cosf(a);
    v->light_y = sinf(a) * 0.8f - 0.2f;
    v->light_strength = urange(r, 0.15f, 0.8f);
    v->ambient = urange(r, 0.45f, 0.85f);
    set3(v->light_color, 1.0f, 1.0f, 1.0f);
    jitter3(v->light_color, r, 0.08f);
    v->mouth_open = comine_rng_below(r, 3) == 0 ? urange(r, 0.1f, 1.0f) : 0.0f;
    v->smile = urange(r, -0.3f, 0.7f);
    v->eye_open = comine_rng_below(r, 12) == 0 ? urange(r, 0.1f, 0.4f) : urange(r, 0.65f, 1.0f);
    v->gaze = urange(r, -0.6f, 0.6f);
    v->brow_raise = urange(r, -0.03f, 0.06f);
    float bg = comine_rng_uniform(r);
    set3(v->bg_top, urange(r, 0.1f, 0.9f), urange(r, 0.1f, 0.9f), urange(r, 0.1f, 0.9f));
    for (int k = 0; k < 3; k++) v->bg_bottom[k] = clampf(lerpf(v->bg_top[k], bg, 0.5f) + urange(r, -0.2f, 0.2f), 0, 1);
    set3(v->clothes, urange(r, 0.05f, 0.9f), urange(r, 0.05f, 0.9f), urange(r, 0.05f, 0.9f));
    uint32_t o = comine_rng_below(r, 20);
    v->occluder = o < 13 ? 0 : o < 15 ? 1 : o < 17 ? 2 : o < 18 ? 3 : 4;
    v->occ_x = urange(r, -0.9f, 0.9f);
    v->occ_y = urange(r, -0.2f, 1.1f);
    v->occ_w = urange(r, 0.2f, 0.5f);
    v->occ_h = urange(r, 0.15f, 0.45f);
    v->occ_angle = urange(r, -0.8f, 0.8f);
    set3(v->occ_color, urange(r, 0.05f, 0.95f), urange(r, 0.05f, 0.95f), urange(r, 0.05f, 0.95f));
    v->blur = comine_rng_below(r, 2) ? urange(r, 0.0f, 1.6f) : 0.0f;
    v->noise = urange(r, 0.0f, 0.045f);
    v->contrast = urange(r, 0.75f, 1.2f);
    v->brightness = urange(r, -0.1f, 0.1f);
    for (int k = 0; k < 3; k++) v->cast[k] = urange(r, 0.88f, 1.12f);
}

/* ---- rendering -------------------------------------------------------------------- */

/* Everything the per-pixel painter needs, derived once per image. */
typedef struct scene {
    const comine_synth_identity *id;
    const comine_synth_variation *v;
    float feat_dx;          /* feature shift from the yaw */
    float eye_scale[2];     /* left / right eye size factor (the far one shrinks) */
    float skin_dark[3], hair_dark[3], brow[3], beard[3], sclera[3], pupil[3], mouth_in[3], teeth[3];
    float light[3];         /* normalised light direction */
} scene;

/* Half-width of the face at height y (the jaw narrows below the eyes). */
static float face_halfwidth_scale(const comine_synth_identity *id, float y)
{
    if (y <= 0.0f) return 1.0f;
    return lerpf(1.0f, id->jaw, clampf(y, 0.0f, 1.0f) * clampf(y, 0.0f, 1.0f));
}

static float sd_face(const comine_synth_identity *id, float x, float y)
{
    float s = face_halfwidth_scale(id, y);
    return sd_ellipse(x / s, y, id->face_w, 1.0f) * (0.5f + 0.5f * s);
}

/* Signed distance of the hair that lies over the head (crown, fringe, sides). */
static float sd_hair_front(const comine_synth_identity *id, float x, float y)
{
    float fw = id->face_w;
    float head = sd_ellipse(x, y + 0.06f, fw * 1.10f, 1.08f);
    if (id->hair_style == 3) { /* bald: a band at the sides and the back */
        float band = maxf(fabsf(y + 0.12f) - 0.22f, fw * 0.86f - fabsf(x));
        return maxf(head, band);
    }
    /* the hair line: higher at the temples, lower at the fringe side of the parting */
    float t = x / fw;
    float side = x > id->parting ? 1.0f : -1.0f;
    float line = id->hairline + 0.22f * t * t + id->fringe * (1.0f - clampf(fabsf(x - id->parting) / fw, 0.0f, 1.0f)) *
                 (side > 0 ? 1.0f : 0.35f);
    float crown = maxf(head, y - line);
    float low = id->hair_style == 0 ? -0.15f : id->hair_style == 1 ? 0.35f : 0.85f;
    float sides = maxf(maxf(sd_ellipse(x, y + 0.02f, fw * (id->hair_style == 0 ? 1.07f : 1.16f), 1.12f), y - low),
                        fw * 0.86f - fabsf(x));
    return minf(crown, sides);
}

/* The features inside the face: brows, eyes, glasses, nose, mouth, a mole. */
static void paint_features(const scene *sc, float x, float y, float px, float face, float *col)
{
    const comine_synth_identity *id = sc->id;
    const comine_synth_variation *v = sc->v;
    float fw = id->face_w;
    float mx = sc->feat_dx;
    /* eyes and brows */
    for (int e = 0; e < 2; e++) {
        float s = e == 0 ? -1.0f : 1.0f;
        float es = sc->eye_scale[e];
        float ex = s * id->eye_dx * (1.0f - 0.12f * fabsf(v->yaw)) + mx;
        float ey = id->eye_y;
        /* brow */
        float bx0 = ex - s * id->brow_len * 0.35f, bx1 = ex + s * id->brow_len * 0.65f;
        float by = ey - id->brow_dy - v->brow_raise;
        float brow = sd_capsule(x, y, bx0, by + 0.02f, bx1, by - id->brow_tilt * 0.12f, id->brow_thick * es);
        paint(col, sc->brow, 0.9f * cover(brow, px));
        /* eye white */
        float ew = id->eye_w * es, eh = id->eye_h * es * v->eye_open;
        float eye = sd_ellipse(x - ex, y - ey, ew, maxf(eh, 0.004f));
        float eye_cov = cover(eye, px);
        paint(col, sc->sclera, eye_cov);
        /* iris and pupil, clipped to the eye */
        float ix = ex + v->gaze * ew * 0.35f;
        float ir = id->eye_h * es * 0.95f;
        float iris = sqrtf(sqf(x - ix) + sqf(y - ey)) - ir;
        paint(col, id->iris, cover(maxf(iris, eye), px));
        float pupil = sqrtf(sqf(x - ix) + sqf(y - ey)) - ir * 0.42f;
        paint(col, sc->pupil, cover(maxf(pupil, eye), px));
        float glint = sqrtf(sqf(x - ix - ir * 0.3f) + sqf(y - ey + ir * 0.3f)) - ir * 0.16f;
        float white[3] = {1, 1, 1};
        paint(col, white, 0.8f * cover(maxf(glint, eye), px));
        /* upper lid line */
        float lid = maxf(fabsf(eye) - 0.01f, y - ey);
        paint(col, sc->pupil, 0.75f * cover(lid, px));
        /* glasses frames */
        if (id->glasses) {
            float ring = fabsf(sd_ellipse(x - ex, y - ey, ew * 1.7f, id->eye_h * 2.2f)) - 0.014f;
            float lens = sd_ellipse(x - ex, y - ey, ew * 1.7f, id->eye_h * 2.2f);
            paint(col, id->glasses_color, 0.12f * cover(lens, px));
            paint(col, id->glasses_color, cover(ring, px));
        }
    }
    if (id->glasses) {
        float lx = -id->eye_dx * (1.0f - 0.12f * fabsf(v->yaw)) + mx, rx = -lx + 2 * mx;
        float bridge = sd_capsule(x, y, lx + id->eye_w * 1.6f * sc->eye_scale[0], id->eye_y - 0.02f,
                                  rx - id->eye_w * 1.6f * sc->eye_scale[1], id->eye_y - 0.02f, 0.012f);
        paint(col, id->glasses_color, cover(bridge, px));
        for (int s = -1; s <= 1; s += 2) {
            float ax = s < 0 ? lx - id->eye_w * 1.7f : rx + id->eye_w * 1.7f;
            float arm = sd_capsule(x, y, ax, id->eye_y, s * fw * 0.98f + mx * 0.3f, id->eye_y + 0.06f, 0.012f);
            paint(col, id->glasses_color, cover(arm, px));
        }
    }

    /* nose: a shaded side line, nostrils and a tip */
    float ny0 = id->eye_y + 0.06f, ny1 = id->eye_y + id->nose_len;
    float nside = v->light_x > 0 ? -1.0f : 1.0f;
    float nx = mx * 1.25f;
    float ridge = sd_capsule(x, y, nx + nside * 0.03f, ny0, nx + nside * id->nose_w * 0.55f, ny1 - 0.02f, 0.012f);
    paint(col, sc->skin_dark, 0.45f * cover(ridge, px * 2.5f));
    for (int s = -1; s <= 1; s += 2) {
        float nos = sd_ellipse(x - nx - s * id->nose_w * 0.45f, y - ny1, 0.032f, 0.018f);
        paint(col, sc->mouth_in, 0.55f * cover(nos, px));
    }
    float tip = sd_ellipse(x - nx, y - ny1 + 0.035f, id->nose_w * 0.5f, 0.05f);
    paint(col, sc->skin_dark, 0.18f * cover(-tip, px * 3.0f) * cover(tip - 0.03f, px));

    /* mouth: lips around a curved centre line, dark inside when open */
    float mw = id->mouth_w, t = (x - mx) / mw;
    if (fabsf(t) < 1.2f) {
        float yc = id->mouth_y - v->smile * 0.08f * t * t + v->smile * 0.02f;
        float profile = sqrtf(maxf(1.0f - t * t, 0.0f));
        float open = v->mouth_open * 0.07f * profile;
        float d = fabsf(y - yc);
        float lips = maxf(d - (id->lip_thick * profile + open), fabsf(x - mx) - mw);
        paint(col, id->lip, cover(lips, px));
        float line = maxf(d - maxf(open, 0.006f), fabsf(x - mx) - mw * 0.98f);
        paint(col, sc->mouth_in, cover(line, px));
        if (v->mouth_open > 0.3f) {
            float teeth = maxf(maxf(fabsf(y - (yc - open * 0.55f)) - open * 0.35f, fabsf(x - mx) - mw * 0.6f),
                                d - open);
            paint(col, sc->teeth, cover(teeth, px));
        }
    }
    /* a mole */
    if (id->mole) {
        float mole = sqrtf(sqf(x - id->mole_x - mx * 0.8f) + sqf(y - id->mole_y)) - 0.022f;
        paint(col, sc->mouth_in, 0.8f * cover(maxf(mole, face), px));
    }
}

static void shade_pixel(const scene *sc, float x, float y, float px, float *col)
{
    const comine_synth_identity *id = sc->id;
    const comine_synth_variation *v = sc->v;
    float fw = id->face_w;
    float skin[3];
    memcpy(skin, id->skin, sizeof skin);

    /* long hair behind the head and shoulders */
    if (id->hair_style == 2) {
        float back = sd_ellipse(x, y - 0.35f, fw * 1.42f, 1.45f);
        paint(col, sc->hair_dark, cover(back, px));
    }
    /* body: neck and clothes */
    float neck = sd_box(x, y - 1.15f, fw * 0.45f, 0.55f, 0.0f);
    paint(col, sc->skin_dark, cover(neck, px));
    float body = sd_ellipse(x, y - 2.75f, 2.1f, 1.35f);
    float clothes[3];
    scale3(clothes, v->clothes, 1.0f - 0.15f * clampf(y - 1.4f, 0.0f, 1.0f));
    paint(col, clothes, cover(body, px));
    /* ears */
    float ear_y = id->eye_y + 0.14f;
    for (int s = -1; s <= 1; s += 2) {
        float ex = s * fw * 0.97f + sc->feat_dx * 0.3f;
        float ear = sd_ellipse(x - ex, y - ear_y, 0.11f * id->ear_size, 0.21f * id->ear_size);
        paint(col, skin, cover(ear, px));
        float inner = sd_ellipse(x - ex - s * 0.015f, y - ear_y, 0.05f * id->ear_size, 0.13f * id->ear_size);
        paint(col, sc->skin_dark, 0.5f * cover(inner, px));
    }
    /* the face */
    float face = sd_face(id, x, y);
    float face_cov = cover(face, px);
    paint(col, skin, face_cov);
    /* cheeks */
    for (int s = -1; s <= 1; s += 2) {
        float ch = sd_ellipse(x - s * fw * 0.55f - sc->feat_dx, y - (id->eye_y + 0.3f), 0.16f, 0.11f);
        paint(col, id->lip, 0.12f * cover(ch, 0.12f) * face_cov);
    }

    float mx = sc->feat_dx; /* features shift with the yaw */
    bool near_face = fabsf(x) < fw * 1.25f + 0.1f && y > -1.25f && y < 1.25f;
    /* beard (under the mouth and on the chin) */
    if (id->beard) {
        float sd;
        if (id->beard == 1) {
            sd = sd_ellipse(x - mx, y - (id->mouth_y - id->lip_thick - 0.045f), id->mouth_w * 1.05f, 0.045f);
        } else if (id->beard == 2) {
            sd = maxf(maxf(sd_ellipse(x - mx * 0.8f, y - (id->mouth_y + 0.24f), id->mouth_w * 0.6f, 0.18f), face),
                      id->mouth_y + id->lip_thick + 0.03f - y);
        } else {
            sd = maxf(face, id->mouth_y - 0.17f - y + 0.25f * sqf(x / fw));
        }
        float tex = 0.85f + 0.15f * sinf(90.0f * x + 7.0f * sinf(40.0f * y));
        float c[3];
        scale3(c, sc->beard, tex);
        paint(col, c, 0.9f * cover(sd, px));
    }
    /* hair over the head */
    float hair = sd_hair_front(id, x, y);
    float hair_cov = cover(hair, px);
    if (hair_cov > 0.0f) {
        float tex = 0.82f + 0.18f * sinf(70.0f * (x - id->parting) + 9.0f * sinf(6.0f * y));
        float c[3];
        scale3(c, id->hair, tex);
        float part = fabsf(x - id->parting) - 0.012f;
        if (y < id->hairline + 0.05f && id->hair_style != 3) paint(c, sc->hair_dark, 0.7f * cover(part, px));
        paint(col, c, hair_cov);
    }

    if (near_face) paint_features(sc, x, y, px, face, col);

    /* lighting: a Lambertian ellipsoid over the head, a flat term below it */
    float head_cov = maxf(maxf(face_cov, hair_cov), cover(neck, px));
    float nxn = x / (fw * 1.1f), nyn = (y + 0.05f) / 1.15f;
    float nz = sqrtf(maxf(1.0f - nxn * nxn - nyn * nyn, 0.0f));
    float lambert = maxf(nxn * sc->light[0] + nyn * sc->light[1] + nz * sc->light[2], 0.0f);
    float shade = v->ambient + v->light_strength * lambert;
    for (int k = 0; k < 3; k++) col[k] *= lerpf(1.0f, shade * v->light_color[k], head_cov);

    /* occluders in front of the face */
    switch (v->occluder) {
    case 1:
        paint(col, v->occ_color, cover(sd_box(x - v->occ_x, y - v->occ_y, v->occ_w, v->occ_h, v->occ_angle), px));
        break;
    case 2:
        paint(col, v->occ_color, cover(sd_ellipse(x - v->occ_x, y - v->occ_y, v->occ_w, v->occ_w * 1.2f), px));
        break;
    case 3: {
        float dark[3];
        scale3(dark, v->occ_color, 0.2f);
        for (int s = -1; s <= 1; s += 2) {
            float ex = s * id->eye_dx + mx;
            paint(col, dark, 0.95f * cover(sd_ellipse(x - ex, y - id->eye_y, id->eye_w * 1.9f, id->eye_h * 2.6f), px));
        }
        paint(col, dark, cover(sd_capsule(x, y, mx - id->eye_dx, id->eye_y - 0.04f, mx + id->eye_dx, id->eye_y - 0.04f,
                                          0.018f), px));
        break;
    }
    case 4: {
        float crown = maxf(sd_ellipse(x, y + 0.25f, fw * 1.15f, 0.95f), y - (id->hairline + 0.08f));
        float brim = sd_box(x, y - (id->hairline + 0.06f), fw * 1.45f, 0.045f, 0.0f);
        float c = cover(minf(crown, brim), px);
        paint(col, v->occ_color, c);
        break;
    }
    default:
        break;
    }
}

void comine_synth_render_variation(comine_image *img, const comine_synth_identity *id,
                                   const comine_synth_variation *v, comine_rng *rng)
{
    COMINE_ASSERT(img && img->rgb && img->w > 0 && img->h > 0);
    const int W = img->w, H = img->h;
    const float S = (float)(W < H ? W : H);
    scene sc;
    memset(&sc, 0, sizeof sc);
    sc.id = id;
    sc.v = v;
    sc.feat_dx = 0.16f * v->yaw * id->face_w;
    sc.eye_scale[0] = 1.0f - 0.18f * maxf(v->yaw, 0.0f);
    sc.eye_scale[1] = 1.0f - 0.18f * maxf(-v->yaw, 0.0f);
    scale3(sc.skin_dark, id->skin, 0.78f);
    scale3(sc.hair_dark, id->hair, 0.8f);
    scale3(sc.brow, id->hair, id->hair[0] > 0.5f ? 0.75f : 0.85f);
    scale3(sc.beard, id->hair, 0.9f);
    set3(sc.sclera, 0.93f, 0.91f, 0.88f);
    set3(sc.pupil, 0.04f, 0.03f, 0.03f);
    set3(sc.mouth_in, 0.28f, 0.07f, 0.07f);
    set3(sc.teeth, 0.92f, 0.90f, 0.84f);
    float lz = 0.9f, ln = sqrtf(v->light_x * v->light_x + v->light_y * v->light_y + lz * lz);
    set3(sc.light, v->light_x / ln, v->light_y / ln, lz / ln);

    const float scale = v->scale * S;     /* pixels per face unit */
    const float px = 1.0f / scale;        /* one pixel in face units */
    const float cx = (0.5f + v->dx) * W, cy = (0.46f + v->dy) * H;
    const float ca = cosf(v->angle), sa = sinf(v->angle);
    float *buf = comine_malloc((size_t)W * H * 3 * sizeof(float));
    for (int i = 0; i < H; i++) {
        for (int j = 0; j < W; j++) {
            float u = (j + 0.5f - cx) / scale, w = (i + 0.5f - cy) / scale;
            float x = ca * u + sa * w, y = -sa * u + ca * w;
            float *col = buf + ((size_t)i * W + j) * 3;
            float t = (i + 0.5f) / H, g = 0.9f + 0.2f * (j + 0.5f) / W;
            for (int k = 0; k < 3; k++) col[k] = lerpf(v->bg_top[k], v->bg_bottom[k], t) * g;
            shade_pixel(&sc, x, y, px, col);
        }
    }
    /* Gaussian blur (separable, clamped edges) */
    float sigma = v->blur * S / 112.0f;
    if (sigma > 0.25f) {
        int rad = (int)ceilf(2.5f * sigma);
        float kern[64];
        if (rad > 31) rad = 31;
        float ksum = 0;
        for (int d = -rad; d <= rad; d++) ksum += kern[d + rad] = expf(-0.5f * d * d / (sigma * sigma));
        for (int d = 0; d <= 2 * rad; d++) kern[d] /= ksum;
        float *tmp = comine_malloc((size_t)W * H * 3 * sizeof(float));
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                for (int k = 0; k < 3; k++) {
                    float acc = 0;
                    for (int d = -rad; d <= rad; d++) {
                        int jj = j + d < 0 ? 0 : j + d >= W ? W - 1 : j + d;
                        acc += kern[d + rad] * buf[((size_t)i * W + jj) * 3 + k];
                    }
                    tmp[((size_t)i * W + j) * 3 + k] = acc;
                }
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                for (int k = 0; k < 3; k++) {
                    float acc = 0;
                    for (int d = -rad; d <= rad; d++) {
                        int ii = i + d < 0 ? 0 : i + d >= H ? H - 1 : i + d;
                        acc += kern[d + rad] * tmp[((size_t)ii * W + j) * 3 + k];
                    }
                    buf[((size_t)i * W + j) * 3 + k] = acc;
                }
        free(tmp);
    }
    /* contrast, brightness, colour cast, noise, quantisation */
    for (size_t p = 0; p < (size_t)W * H; p++)
        for (int k = 0; k < 3; k++) {
            float c = ((buf[p * 3 + k] - 0.5f) * v->contrast + 0.5f + v->brightness) * v->cast[k];
            c += v->noise * pixel_noise(rng);
            img->rgb[p * 3 + k] = (uint8_t)lrintf(clampf(c, 0.0f, 1.0f) * 255.0f);
        }
    free(buf);
}

void comine_synth_render(comine_image *img, const comine_synth_identity *id, comine_rng *rng)
{
    comine_synth_variation v;
    comine_synth_draw_variation(&v, rng);
    comine_synth_render_variation(img, id, &v, rng);
}

void comine_synth_identity_of(comine_synth_identity *id, uint64_t seed, int index)
{
    comine_rng r;
    comine_rng_seed(&r, mix64(seed) ^ mix64(0x1d00000000ULL + (uint64_t)index), COMINE_STREAM_SYNTH);
    comine_synth_identity_random(id, &r);
}

void comine_synth_image(comine_image *img, uint64_t seed, int index, int image, int size)
{
    COMINE_ASSERT(size > 0 && index >= 0 && image >= 0);
    comine_synth_identity id;
    comine_synth_identity_of(&id, seed, index);
    comine_rng r;
    comine_rng_seed(&r, mix64(mix64(seed) ^ mix64((uint64_t)index)) ^ mix64(0x1a0000000000ULL + (uint64_t)image),
                    COMINE_STREAM_SYNTH);
    img->w = img->h = size;
    img->rgb = comine_malloc((size_t)size * size * 3);
    comine_synth_render(img, &id, &r);
}

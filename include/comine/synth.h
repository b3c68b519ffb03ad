/* synth.h: comine's own synthetic face identities, the default data on a fresh machine.
 * Each identity has fixed traits (face shape, skin/hair/eye/lip colours, feature geometry,
 * hair style, beard, glasses, a mole); each image of it varies (pose, lighting, expression,
 * background, clothes, occlusion, blur, noise, colour cast).  Rendering is procedural with
 * anti-aliased signed-distance primitives, deterministic from (seed, identity, image) and
 * independent of the thread count. */
#ifndef COMINE_SYNTH_H
#define COMINE_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "comine/core.h"
#include "comine/data.h"

/* Fixed traits of one identity.  Face coordinates: the face ellipse is centred at the origin,
 * its half-height is 1, x to the right, y down (the chin is near y = +1). */
typedef struct comine_synth_identity {
    float face_w;        /* half-width of the face (half-height = 1) */
    float jaw;           /* width of the lower face relative to the upper (narrower chin < 1) */
    float skin[3];       /* RGB in [0, 1] */
    float hair[3];
    float iris[3];
    float lip[3];
    int hair_style;      /* 0 short, 1 medium (covers ears), 2 long (falls behind the shoulders), 3 bald */
    float hairline;      /* y of the hair line at the centre (smaller = higher forehead) */
    float parting;       /* x of the parting, -0.5 .. 0.5 */
    float fringe;        /* fringe depth: how far the hair comes down at the sides of the parting */
    float eye_y, eye_dx; /* eye centre height and half-distance between the eyes */
    float eye_w, eye_h;  /* eye half-width and half-height (fully open) */
    float brow_dy;       /* brow height above the eye centre */
    float brow_thick, brow_tilt, brow_len;
    float nose_len, nose_w;
    float mouth_y, mouth_w, lip_thick;
    float ear_size;
    int beard;           /* 0 none, 1 moustache, 2 goatee, 3 full beard */
    bool glasses;
    float glasses_color[3];
    bool mole;
    float mole_x, mole_y;
} comine_synth_identity;

/* What varies from one image to the next (drawn by comine_synth_draw_variation). */
typedef struct comine_synth_variation {
    float dx, dy;        /* face centre shift, fraction of the image side */
    float angle;         /* in-plane rotation, radians */
    float scale;         /* face half-height, fraction of the image side */
    float yaw;           /* -1 .. 1: features shift towards one side, the far side shrinks */
    float light_x, light_y, light_strength, ambient;
    float light_color[3];
    float mouth_open;    /* 0 .. 1 */
    float smile;         /* -0.3 .. 0.7: mouth corner curvature */
    float eye_open;      /* 0.15 .. 1 */
    float gaze;          /* iris shift, -1 .. 1 */
    float brow_raise;
    float bg_top[3], bg_bottom[3], clothes[3];
    int occluder;        /* 0 none, 1 box, 2 disc (a hand, a cup), 3 sunglasses, 4 hat */
    float occ_x, occ_y, occ_w, occ_h, occ_angle;
    float occ_color[3];
    float blur;          /* Gaussian blur sigma in pixels at 112 px (scaled with the size) */
    float noise;         /* pixel noise standard deviation, in [0, 1] units */
    float contrast, brightness;
    float cast[3];       /* colour cast (white balance) per channel */
} comine_synth_variation;

/* Draw the traits of a new identity. */
void comine_synth_identity_random(comine_synth_identity *id, comine_rng *rng);
/* Draw the variation of a new image. */
void comine_synth_draw_variation(comine_synth_variation *v, comine_rng *rng);
/* Render one image: img->w, img->h and img->rgb (h, w, 3) must be set by the caller.
 * Uses `rng` only for the pixel noise. */
void comine_synth_render_variation(comine_image *img, const comine_synth_identity *id,
                                   const comine_synth_variation *v, comine_rng *rng);
/* Draw a variation from `rng` and render it (the usual entry point). */
void comine_synth_render(comine_image *img, const comine_synth_identity *id, comine_rng *rng);

/* The identity `index` of the data set made from `seed` (the same for any count of identities). */
void comine_synth_identity_of(comine_synth_identity *id, uint64_t seed, int index);
/* Image `image` of identity `index` of the data set made from `seed`, size x size pixels;
 * img->rgb is allocated (free with comine_image_free). */
void comine_synth_image(comine_image *img, uint64_t seed, int index, int image, int size);

/* Name of identity `index`'s folder: "id00042" (buffer of at least 16 bytes). */
void comine_synth_identity_name(char *buf, size_t size, int index);

typedef enum { COMINE_SYNTH_PNG, COMINE_SYNTH_JPEG } comine_synth_format;

typedef struct comine_synth_opts {
    int ids;             /* identities */
    int first_id;        /* index of the first identity (a set of others: first_id past this set's end) */
    int per_id;          /* images per identity */
    int size;            /* image side in pixels (16 .. 1024) */
    uint64_t seed;
    comine_synth_format format;
    int jpeg_quality;    /* 1 .. 100 */
    bool progress;       /* progress lines on stderr */
} comine_synth_opts;

/* Write OUT/<id name>/<nnnn>.png|jpg for every identity and image (a folder data set). */
comine_status comine_synth_write(const char *out_dir, const comine_synth_opts *o);
/* A contact sheet: rows = identities, columns = images (size x size each, 2 px gaps). */
comine_status comine_synth_grid(const char *png_path, uint64_t seed, int ids, int per_id, int size);

#endif

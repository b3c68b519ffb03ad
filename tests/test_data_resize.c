/* test_data_resize.c: comine_image_to_input against PyTorch (tests/ref/gen_data.py):
 * bilinear growth with half-pixel centres (F.interpolate, align_corners=False), its mirror,
 * and area shrinking by integer factors (F.interpolate mode="area"), after (x - 127.5) / 128. */
#include <stdlib.h>

#include "comine/data.h"
#include "fixture.h"

static comine_image image_of(const fx_tensor *t)
{
    comine_image img = {t->dims[1], t->dims[0], malloc(t->size)};
    for (size_t i = 0; i < t->size; i++) img.rgb[i] = (uint8_t)t->data[i];
    return img;
}

int main(void)
{
    fx_file f;
    if (fx_load(&f, fx_path("data_resize.bin")) != 0) return 1;
    const fx_tensor *gs = fx_get(&f, "grow_src"), *g = fx_get(&f, "grow_20"), *gf = fx_get(&f, "grow_20_flip");
    const fx_tensor *ss = fx_get(&f, "shrink_src"), *s = fx_get(&f, "shrink_4");
    if (!gs || !g || !gf || !ss || !s) return fx_finish("test_data_resize");
    comine_image grow = image_of(gs), shrink = image_of(ss);
    float out[20 * 20 * 3];
    comine_image_to_input(out, &grow, 20, false);
    fx_check("bilinear 13x9 -> 20x20 vs torch", out, g->data, g->size, 1e-5, 0);
    comine_image_to_input(out, &grow, 20, true);
    fx_check("bilinear 13x9 -> 20x20 mirrored vs torch", out, gf->data, gf->size, 1e-5, 0);
    comine_image_to_input(out, &shrink, 4, false);
    fx_check("area 8x12 -> 4x4 vs torch (area)", out, s->data, s->size, 1e-5, 0);
    comine_image_free(&grow);
    comine_image_free(&shrink);
    fx_free(&f);
    return fx_finish("test_data_resize");
}

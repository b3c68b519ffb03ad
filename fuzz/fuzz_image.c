/* fuzz_image.c: libFuzzer harness of comine_image_decode (JPEG, PNG, PGM/PPM by content)
 * and the preprocessing that follows it in the loader. */
#include "fuzz_common.h"

#include "comine/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    comine_log_set_level(COMINE_LOG_ERROR);
    comine_image img;
    memset(&img, 0, sizeof img);
    if (comine_image_decode(&img, data, size, "fuzz") == COMINE_OK) {
        COMINE_ASSERT(img.w > 0 && img.h > 0 && img.rgb);
        if ((size_t)img.w * img.h <= 4096 * 4096) {
            float out[16 * 16 * 3];
            comine_image_to_input(out, &img, 16, true);
            comine_rng rng;
            comine_rng_seed(&rng, size, COMINE_STREAM_AUGMENT);
            comine_image_augment_to_input(out, &img, 16, true, 0.2f, &rng);
        }
        comine_image_free(&img);
    }
    (void)comine_image_sniff(data, size);
    return 0;
}

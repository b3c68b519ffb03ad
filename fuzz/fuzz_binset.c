/* fuzz_binset.c: libFuzzer harness of the insightface .bin reader (comine_binset_load: a
 * pickle of (images, issame)).  The input is the file.  An accepted file must be consistent
 * (2n images inside the input or decoded from it, issame 0/1), and comine's writer must
 * round-trip it: written with protocol 2 and 3 and read back, the same images and issame. */
#include "fuzz_common.h"

#include "comine/eval.h"

static bool same_set(const comine_binset *x, const comine_binset *y)
{
    if (x->n != y->n || memcmp(x->same, y->same, (size_t)x->n)) return false;
    for (int i = 0; i < 2 * x->n; i++)
        if (x->image_size[i] != y->image_size[i] ||
            (x->image_size[i] && memcmp(x->image[i], y->image[i], x->image_size[i])))
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *file = fz_write("set.bin", data, size);
    comine_binset *set = NULL;
    if (comine_binset_load(&set, file) == COMINE_OK) {
        COMINE_ASSERT(set->n >= 1 && set->protocol >= 2 && set->protocol <= 5);
        for (int i = 0; i < set->n; i++) COMINE_ASSERT(set->same[i] <= 1);
        for (int i = 0; i < 2 * set->n; i++) {
            COMINE_ASSERT(set->image_offset[i] >= 0 && (size_t)set->image_offset[i] < size);
            COMINE_ASSERT(set->image_size[i] <= size);
            volatile uint8_t sum = 0;  /* every image's bytes are readable */
            for (size_t k = 0; k < set->image_size[i]; k++) sum += set->image[i][k];
            (void)sum;
        }
        char *copy = fz_path("copy.bin");
        for (int protocol = 2; protocol <= 3; protocol++) {
            comine_binset *back = NULL;
            COMINE_ASSERT(comine_binset_write(copy, set, protocol) == COMINE_OK);
            COMINE_ASSERT(comine_binset_load(&back, copy) == COMINE_OK);
            COMINE_ASSERT(back->protocol == protocol && same_set(set, back));
            comine_binset_free(back);
        }
        free(copy);
        comine_binset_free(set);
    } else {
        COMINE_ASSERT(strstr(comine_last_error(), ": byte ") != NULL);
    }
    /* the same bytes from memory */
    uint8_t *mem = malloc(size ? size : 1);
    memcpy(mem, data, size);
    if (comine_binset_parse(&set, mem, size, "mem.bin") == COMINE_OK) comine_binset_free(set);
    free(mem);
    free(file);
    return 0;
}

/* fuzz_pairs.c: libFuzzer harness of comine_pairs_load (LFW `N` / `F N` pairs files and
 * `pathA<TAB>pathB<TAB>same` lists).  The scratch folder holds a small LFW-like tree so that
 * lines can name images that exist. */
#include "fuzz_common.h"

#include "comine/eval.h"

static void make_tree(void)
{
    static int done;
    if (done) return;
    done = 1;
    static const char *dirs[] = {"A", "B"};
    static const char *files[] = {"A/A_0001.jpg", "A/A_0002.jpg", "B/B_0001.jpg", "x.jpg", "y.jpg"};
    for (size_t i = 0; i < 2; i++) {
        char *d = fz_path(dirs[i]);
        comine_mkdirs(d);
        free(d);
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) free(fz_write(files[i], (const uint8_t *)"x", 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    make_tree();
    char *file = fz_write("pairs.txt", data, size);
    for (int with_root = 0; with_root < 2; with_root++) {
        comine_pairs *p = NULL;
        if (comine_pairs_load(&p, file, with_root ? fz_dir() : NULL) == COMINE_OK) {
            COMINE_ASSERT(p->n > 0 && p->folds > 0);
            for (int i = 0; i < p->n; i++) {
                COMINE_ASSERT(p->a[i] >= 0 && p->a[i] < p->n_images && p->b[i] >= 0 && p->b[i] < p->n_images);
                COMINE_ASSERT(p->fold[i] >= 0 && p->fold[i] < p->folds);
            }
            comine_pairs_free(p);
        }
    }
    free(file);
    return 0;
}

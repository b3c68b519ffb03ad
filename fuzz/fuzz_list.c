/* fuzz_list.c: libFuzzer harness of the list-file data sets (comine_dataset_open on a
 * `path<TAB>label[<TAB>flag]` file) and of LFW people files (comine_people_load).  The
 * scratch folder holds a few image files the lists can name. */
#include "fuzz_common.h"

#include "comine/data.h"

static void make_images(void)
{
    static int done;
    if (done) return;
    done = 1;
    static const char *names[] = {"a.jpg", "b.png", "c.pgm", "d/e.jpg", "d/f.jpg"};
    char *d = fz_path("d");
    comine_mkdirs(d);
    free(d);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) free(fz_write(names[i], (const uint8_t *)"P5 1 1 255 x", 12));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    make_images();
    char *list = fz_write("list.txt", data, size);
    comine_dataset *ds = NULL;
    comine_dataset_opts opts = {.root = NULL};
    if (comine_dataset_open(&ds, list, &opts) == COMINE_OK) {
        COMINE_ASSERT(ds->n > 0 && ds->num_classes > 0);
        for (int i = 0; i < ds->n; i++) {
            COMINE_ASSERT(ds->samples[i].label >= 0 && ds->samples[i].label < ds->num_classes);
            uint8_t *bytes;
            size_t n;
            if (comine_dataset_read(ds, i, &bytes, &n) == COMINE_OK) free(bytes);
            (void)comine_dataset_sample_name(ds, i);
        }
    }
    if (ds) comine_dataset_free(ds);
    comine_people people;
    if (comine_people_load(&people, list) == COMINE_OK) comine_people_free(&people);
    free(list);
    return 0;
}

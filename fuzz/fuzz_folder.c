/* fuzz_folder.c: libFuzzer harness of folder data sets (comine_dataset_open on a folder of
 * identity folders) and of the classes.tsv writer.  Each input line `ID/NAME` (or `NAME`)
 * becomes a file (or, ending in '/', a folder) in a fresh tree; NAMEs ending in .pgm hold a
 * 1x1 image, others the line's bytes. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "fuzz_common.h"

#include <ftw.h>
#include <sys/stat.h>

#include "comine/data.h"

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static bool safe_component(const char *s, size_t n)
{
    if (n == 0 || n > 64) return false;
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == 0 || s[i] == '/') return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *root = fz_path("tree");
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    comine_mkdirs(root);
    const char *p = (const char *)data, *end = p + size;
    for (int lines = 0; p < end && lines < 32; lines++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        size_t n = (size_t)(e - p);
        const char *slash = memchr(p, '/', n);
        bool is_dir = n > 0 && p[n - 1] == '/';
        size_t n1 = slash ? (size_t)(slash - p) : n;
        size_t n2 = slash ? n - n1 - 1 - (is_dir ? 1 : 0) : 0;
        bool ok = safe_component(p, n1) && (!slash || is_dir || safe_component(slash + 1, n2)) &&
                  !(slash && !is_dir && memchr(slash + 1, '/', n2));
        if (ok) {
            char rel[160];
            snprintf(rel, sizeof rel, "%.*s", (int)(is_dir ? n1 : n), p);
            char *path = comine_path_join(root, rel);
            if (slash) {
                char *dir = comine_path_dirname(path);
                comine_mkdirs(is_dir ? path : dir);
                free(dir);
            }
            if (!is_dir) {
                FILE *fp = fopen(path, "wb");
                if (fp) {
                    if (n > 4 && !memcmp(p + n - 4, ".pgm", 4)) fputs("P5 1 1 255\nx", fp);
                    else fwrite(p, 1, n, fp);
                    fclose(fp);
                }
            }
            free(path);
        }
        p = nl ? nl + 1 : end;
    }
    comine_dataset *ds = NULL;
    if (comine_dataset_open(&ds, root, NULL) == COMINE_OK) {
        COMINE_ASSERT(ds->n > 0 && ds->num_classes > 0 && ds->class_names);
        for (int i = 0; i < ds->n; i++) {
            COMINE_ASSERT(ds->samples[i].label >= 0 && ds->samples[i].label < ds->num_classes);
            uint8_t *bytes;
            size_t nb;
            if (comine_dataset_read(ds, i, &bytes, &nb) == COMINE_OK) free(bytes);
        }
        char *classes = fz_path("classes.tsv");
        (void)comine_dataset_write_classes(ds, classes);
        free(classes);
    }
    if (ds) comine_dataset_free(ds);
    free(root);
    return 0;
}

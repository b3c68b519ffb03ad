/* cmd_pack.c: `comine pack`: write a folder or list data set as insightface RecordIO
 * (PREFIX.rec, PREFIX.idx and `property` beside them), or a pairs file as an insightface
 * verification set (--bin OUT.bin: a pickle of the pairs' encoded images and issame).
 * Every image is decoded first (unless --no-check) so that a bad file is reported, and
 * skipped or fatal by --on-bad (always fatal for --bin: a pair cannot be left out without
 * moving the folds). */
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "comine/data.h"
#include "comine/eval.h"

const char comine_cmd_pack_summary[] = "pack a data set into insightface RecordIO (.rec/.idx), or pairs into a .bin";

static bool is_jpeg(const uint8_t *d, size_t n) { return n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff; }
static bool is_png(const uint8_t *d, size_t n) { return n >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8); }

/* True when fold_of (n) equals the contiguous split of n into k folds. */
static bool contiguous_folds(const int *fold_of, int n, int k)
{
    if (k < 1 || k > n) return false;
    int *kf = comine_malloc((size_t)n * sizeof(int));
    comine_kfold_assign(kf, n, k);
    bool same = !memcmp(kf, fold_of, (size_t)n * sizeof(int));
    free(kf);
    return same;
}

/* `pack --bin`: the pairs in file order or grouped by fold; JPEG / PNG files copied byte for
 * byte, any other image decoded and re-encoded as JPEG. */
static int pack_bin(const char *bin, const char *pairs_file, const char *root, bool no_check, bool by_fold,
                    int protocol, int quality)
{
    comine_pairs *pairs = NULL;
    if (comine_pairs_load(&pairs, pairs_file, root) != COMINE_OK) {
        fprintf(stderr, "comine pack: %s\n", comine_last_error());
        return 1;
    }
    int n = pairs->n, k = 0;
    int *order = comine_malloc((size_t)n * sizeof(int)), *fold_of = comine_malloc((size_t)n * sizeof(int));
    uint8_t *same = comine_malloc((size_t)n);
    bool *checked = comine_calloc((size_t)pairs->n_images, sizeof(bool));
    if (by_fold) {
        for (int f = 0; f < pairs->folds; f++)
            for (int i = 0; i < n; i++)
                if (pairs->fold[i] == f) order[k++] = i;
    } else {
        for (int i = 0; i < n; i++) order[k++] = i;
    }
    COMINE_ASSERT(k == n);
    comine_binset_writer *w = NULL;
    int copied = 0, encoded = 0;
    size_t bytes = 0;
    comine_status st = comine_binset_writer_open(&w, bin, protocol);
    for (k = 0; k < n && !st; k++) {
        int i = order[k];
        same[k] = pairs->same[i];
        fold_of[k] = pairs->fold[i];
        for (int side = 0; side < 2 && !st; side++) {
            int idx = side ? pairs->b[i] : pairs->a[i];
            const char *path = pairs->images[idx];
            uint8_t *data = NULL, *jpeg = NULL;
            size_t size = 0, jpeg_size = 0;
            comine_image img = {0};
            if ((st = comine_read_file(path, &data, &size))) break;
            bool as_is = is_jpeg(data, size) || is_png(data, size);
            if (!as_is || (!no_check && !checked[idx])) {
                st = comine_image_decode(&img, data, size, path);
                if (st) {
                    char msg[1024];
                    snprintf(msg, sizeof msg, "%s", comine_last_error());
                    st = comine_fail(st, "%s (pair %d of %s)", msg, i + 1, pairs_file);
                }
                checked[idx] = true;
            }
            if (!st && !as_is) st = comine_image_encode_jpeg(&img, quality, &jpeg, &jpeg_size);
            if (!st) st = comine_binset_writer_add(w, as_is ? data : jpeg, as_is ? size : jpeg_size);
            if (!st) {
                bytes += as_is ? size : jpeg_size;
                if (as_is) copied++; else encoded++;
            }
            comine_image_free(&img);
            free(data);
            free(jpeg);
        }
    }
    if (st) comine_binset_writer_abort(w);
    else st = comine_binset_writer_finish(w, same, n);
    if (st) {
        fprintf(stderr, "comine pack: %s\n", comine_last_error());
    } else {
        int n_same = 0;
        for (int i = 0; i < n; i++) n_same += same[i];
        printf("packed %d pairs (%d matched) of %s into %s: %d images, %d copied as JPEG/PNG bytes, %d re-encoded as "
               "JPEG (quality %d), %.1f MB, pickle protocol %d, pairs %s\n", n, n_same,
               pairs_file, bin, 2 * n, copied, encoded, quality, bytes / 1e6, protocol,
               by_fold ? "grouped by fold" : "in file order");
        int folds = n < 10 ? n : 10;
        if (contiguous_folds(fold_of, n, folds))
            printf("its %d contiguous folds (comine eval --bin, insightface) are the pairs file's folds\n", folds);
        else if (pairs->folds != folds && contiguous_folds(fold_of, n, pairs->folds))
            printf("its folds are the pairs file's with comine eval --bin --folds %d (insightface uses 10)\n",
                   pairs->folds);
        else
            comine_warn("the .bin's %d contiguous folds are not the pairs file's %d folds%s: comine eval --bin and "
                        "--pairs may then differ", folds, pairs->folds, by_fold ? "" : " (try --bin-order fold)");
    }
    free(order);
    free(fold_of);
    free(same);
    free(checked);
    comine_pairs_free(pairs);
    return st ? 1 : 0;
}

int comine_cmd_pack(int argc, char **argv)
{
    const char *data = NULL, *out = NULL, *root = NULL, *on_bad = NULL, *bin = NULL, *pairs_file = NULL,
               *bin_order = NULL;
    int bin_protocol = 3, quality = 95;
    bool no_check = false;
    cli_opt opts[] = {
        {"data", ARG_STR, &data, NULL, "data set: a folder of identity folders or a list file (RecordIO output)"},
        {"out", ARG_STR, &out, NULL, "output prefix: writes PREFIX.rec, PREFIX.idx and property beside them"},
        {"root", ARG_STR, &root, NULL, "list files: folder the paths are relative to (default: the list's folder); "
         "--pairs: the image root (required for LFW pairs files)"},
        {"on-bad", ARG_CHOICE, &on_bad, "skip", "an image that does not decode: leave it out, or stop (--bin: always "
         "stop)", "skip|fail"},
        {"no-check", ARG_FLAG, &no_check, NULL, "do not decode the images first (copy the bytes as they are)"},
        {"bin", ARG_STR, &bin, NULL, "write an insightface verification set (OUT.bin, a pickle) from --pairs instead "
         "of RecordIO"},
        {"pairs", ARG_STR, &pairs_file, NULL, "--bin: pairs file (LFW `N` / `F N`, or pathA<TAB>pathB<TAB>same)"},
        {"bin-order", ARG_CHOICE, &bin_order, "fold", "--bin: pairs grouped by the pairs file's folds (then its "
         "contiguous tenths are those folds), or in file order", "fold|file"},
        {"bin-protocol", ARG_INT, &bin_protocol, "3", "--bin: pickle protocol; 3: images as bytes (Python 3); 2: as "
         "Python 2 str, as the distributed files (Python 3 reads them with encoding='bytes')", NULL, 2, 3},
        {"jpeg-quality", ARG_INT, &quality, "95", "--bin: quality of images that are not JPEG or PNG, re-encoded as "
         "JPEG (JPEG / PNG files are copied byte for byte)", NULL, 1, 100},
        {0},
    };
    int rc = cli_parse("pack", comine_cmd_pack_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if (bin) {
        if (data || out) return cli_error("pack", "option --bin: it packs --pairs, not --data / --out");
        if (!pairs_file) return cli_error("pack", "option --pairs is required with --bin");
        if (cli_given(opts, "on-bad") && strcmp(on_bad, "fail"))
            return cli_error("pack", "option --on-bad: --bin cannot leave out an image (its pair and the folds would "
                             "move); a bad image always stops it");
        return pack_bin(bin, pairs_file, root, no_check, !strcmp(bin_order, "fold"), bin_protocol, quality);
    }
    static const char *bin_only[] = {"pairs", "bin-order", "bin-protocol", "jpeg-quality"};
    for (size_t i = 0; i < sizeof bin_only / sizeof bin_only[0]; i++)
        if (cli_given(opts, bin_only[i])) return cli_error("pack", "option --%s goes with --bin", bin_only[i]);
    if (!data) return cli_error("pack", "option --data is required (or --bin with --pairs)");
    if (!out) return cli_error("pack", "option --out is required (or --bin with --pairs)");
    size_t ol = strlen(out);
    if (ol >= 4 && (!strcmp(out + ol - 4, ".rec") || !strcmp(out + ol - 4, ".idx")))
        return cli_error("pack", "option --out: give the prefix without .rec/.idx (got %s)", out);
    comine_dataset_opts dopts = {root};
    comine_dataset *ds;
    if (comine_dataset_open(&ds, data, &dopts) != COMINE_OK) {
        fprintf(stderr, "comine pack: %s\n", comine_last_error());
        return 1;
    }
    if (ds->kind == COMINE_DATASET_RECORDIO) comine_info("re-packing RecordIO %s", data);
    bool *keep = comine_malloc(sizeof(bool) * ds->n);
    int width = 0, height = 0, bad = 0, mixed = 0;
    double t0 = comine_now(), last = t0;
    for (int i = 0; i < ds->n; i++) {
        keep[i] = true;
        if (no_check) continue;
        comine_image img = {0};
        comine_status st = comine_dataset_decode(ds, i, &img);
        if (st != COMINE_OK) {
            fprintf(stderr, "comine pack: bad image: %s\n", comine_last_error());
            if (!strcmp(on_bad, "fail")) {
                free(keep);
                comine_dataset_free(ds);
                return 1;
            }
            keep[i] = false;
            bad++;
            continue;
        }
        if (!width) {
            width = img.w;
            height = img.h;
        } else if (img.w != width || img.h != height) {
            mixed++;
        }
        comine_image_free(&img);
        double now = comine_now();
        if (now - last >= 2.0) {
            double rate = (i + 1) / (now - t0);
            comine_progress("comine pack: checked %d / %d images (%.0f/s, %.0f s left)", i + 1, ds->n, rate,
                            (ds->n - i - 1) / rate);
            last = now;
        }
    }
    if (!width) width = height = 112;
    if (mixed) comine_warn("%d images differ from the first one's size %dx%d (property says %dx%d)", mixed, width, height, width, height);
    comine_pack_stats stats;
    comine_status st = comine_recordio_pack(ds, keep, width, height, out, &stats);
    free(keep);
    if (st != COMINE_OK) {
        fprintf(stderr, "comine pack: %s\n", comine_last_error());
        comine_dataset_free(ds);
        return 1;
    }
    printf("packed %d images of %d identities into %s.rec / %s.idx (%d records split at the magic value)\n",
           stats.images, stats.identities, out, out, stats.split_records);
    if (bad) printf("left out %d bad image(s) (listed above)\n", bad);
    if (ds->num_problems) printf("ignored %d non-image file(s) or empty folder(s) (listed above)\n", ds->num_problems);
    comine_dataset_free(ds);
    return 0;
}

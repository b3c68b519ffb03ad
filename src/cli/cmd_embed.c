/* cmd_embed.c: `comine embed`: flip-test embeddings (L2-normalised) of every image of a data
 * set (folder, list or RecordIO), written as a NumPy .npy float32 (rows, dim) matrix plus
 * FILE.paths.txt with the image of every row; both written atomically. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "comine/backend.h"
#include "comine/core.h"
#include "comine/data.h"
#include "comine/eval.h"
#include "comine/model.h"

const char comine_cmd_embed_summary[] = "write the embeddings of a data set's images as .npy";

int comine_cmd_embed(int argc, char **argv)
{
    const char *model_path, *data, *out, *root, *device;
    int batch, threads, decode_threads;
    bool quiet;
    cli_opt opts[] = {
        {"model", ARG_STR, &model_path, NULL, "model file", NULL, 0, 0, true},
        {"data", ARG_STR, &data, NULL, "images: a folder of identity folders, a list file or a .rec", NULL, 0, 0,
         true},
        {"root", ARG_STR, &root, NULL, "list files: folder the paths are relative to (default: the list's folder)",
         NULL, 0, 0, false},
        {"out", ARG_STR, &out, NULL, "output .npy (and OUT.paths.txt)", NULL, 0, 0, true},
        {"batch", ARG_INT, &batch, "64", "images per forward (each is run with its mirror)", NULL, 1, 4096, false},
        {"threads", ARG_INT, &threads, "0", "compute threads (0 = all cores)", NULL, 0, 4096, false},
        {"decode-threads", ARG_INT, &decode_threads, "4", "image decoding threads", NULL, 1, 64, false},
        {"device", ARG_STR, &device, NULL, "compute device: cpu, cuda or cuda:N (default: the best available)"},
        {"quiet", ARG_FLAG, &quiet, NULL, "no progress lines"},
        {0},
    };
    int rc = cli_parse("embed", comine_cmd_embed_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if ((rc = cli_check_out_file("embed", "out", out))) return rc;

    const comine_backend *be;
    if (comine_backend_for_device(&be, device)) {
        fprintf(stderr, "comine embed: %s\n", comine_last_error());
        return 2;
    }
    comine_backend_set_threads(be, threads);
    if (!quiet) comine_embed_set_progress("comine embed");
    comine_dataset *ds = NULL;
    comine_model *m = NULL;
    float *emb = NULL;
    char *paths_file = NULL;
    comine_dataset_opts dopts = {.root = root};
    comine_status st = comine_dataset_open(&ds, data, &dopts);
    if (st) goto done;
    if (ds->n == 0) {
        st = comine_fail(COMINE_ERR_FORMAT, "%s: no images", data);
        goto done;
    }
    if ((st = comine_model_load(&m, model_path, be, 2 * batch))) goto done;
    int dim = comine_model_arch(m)->emb_dim;
    emb = comine_alloc_floats((size_t)ds->n * dim);
    double ips = 0, t0 = comine_now();
    if ((st = comine_embed_dataset(emb, &m, 1, ds, batch, decode_threads, &ips))) goto done;
    if ((st = comine_npy_write_f32(out, emb, ds->n, dim))) goto done;
    size_t pl = strlen(out) + 16;
    paths_file = comine_malloc(pl);
    snprintf(paths_file, pl, "%s.paths.txt", out);
    comine_atomic_file af;
    if ((st = comine_atomic_open(&af, paths_file))) goto done;
    for (int i = 0; i < ds->n; i++) fprintf(af.fp, "%s\n", ds->samples[i].path);
    if ((st = comine_atomic_commit(&af))) goto done;
    printf("%s: %d x %d float32 embeddings (%.1f images/s, %.2f s); rows: %s\n", out, ds->n, dim, ips,
           comine_now() - t0, paths_file);
done:
    if (st) fprintf(stderr, "comine embed: %s\n", comine_last_error());
    comine_free_floats(emb);
    free(paths_file);
    if (m) comine_model_free(m);
    if (ds) comine_dataset_free(ds);
    return st ? 1 : 0;
}

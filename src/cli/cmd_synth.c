/* cmd_synth.c: `comine synth`: write comine's synthetic face identities as a folder data set
 * (OUT/<id>/<nnnn>.png|jpg), and/or a contact sheet of them (--grid). */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "comine/core.h"
#include "comine/synth.h"

const char comine_cmd_synth_summary[] = "write synthetic face identities as a folder data set";

static const char *strip_prefix(const char *msg)
{
    return strncmp(msg, "synth: ", 7) ? msg : msg + 7;
}

int comine_cmd_synth(int argc, char **argv)
{
    const char *out, *format, *grid;
    int ids, first_id, per_id, size, quality, threads, grid_ids, grid_per_id;
    unsigned long long seed;
    bool quiet;
    cli_opt opts[] = {
        {"out", ARG_STR, &out, NULL, "output folder (one folder per identity)", NULL, 0, 0, false},
        {"ids", ARG_INT, &ids, "100", "identities", NULL, 1, 1000000, false},
        {"first-id", ARG_INT, &first_id, "0", "index of the first identity (another set: start past this one's end)",
         NULL, 0, 99999, false},
        {"per-id", ARG_INT, &per_id, "20", "images per identity", NULL, 1, 100000, false},
        {"size", ARG_INT, &size, "112", "image side in pixels", NULL, 16, 1024, false},
        {"seed", ARG_U64, &seed, "1", "random seed (same seed, same images)", NULL, 0, 0, false},
        {"format", ARG_CHOICE, &format, "png", "image file format", "png|jpg", 0, 0, false},
        {"quality", ARG_INT, &quality, "92", "JPEG quality", NULL, 1, 100, false},
        {"grid", ARG_STR, &grid, NULL, "also write a contact sheet PNG (rows = identities, columns = images)",
         NULL, 0, 0, false},
        {"grid-ids", ARG_INT, &grid_ids, "8", "identities (rows) in the grid", NULL, 1, 256, false},
        {"grid-per-id", ARG_INT, &grid_per_id, "8", "images (columns) in the grid", NULL, 1, 256, false},
        {"threads", ARG_INT, &threads, "0", "threads (0 = all cores); the output does not depend on it", NULL, 0,
         4096, false},
        {"quiet", ARG_FLAG, &quiet, NULL, "no progress output", NULL, 0, 0, false},
        {0},
    };
    int rc = cli_parse("synth", comine_cmd_synth_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if ((rc = cli_check_out_dir("synth", "out", out))) return rc;
    if (!out && !grid) return cli_error("synth", "option --out or --grid is required");
    if (out && !out[0]) return cli_error("synth", "option --out: empty path");
    comine_set_num_threads(threads);
    if (grid) {
        comine_status st = comine_synth_grid(grid, seed, grid_ids, grid_per_id, size);
        if (st != COMINE_OK) {
            fprintf(stderr, "comine synth: %s\n", strip_prefix(comine_last_error()));
            return 1;
        }
        if (!quiet) fprintf(stderr, "synth: grid of %d x %d images written to %s\n", grid_ids, grid_per_id, grid);
    }
    if (!out) return 0;
    comine_synth_opts so = {
        .ids = ids, .first_id = first_id, .per_id = per_id, .size = size, .seed = seed,
        .format = strcmp(format, "jpg") ? COMINE_SYNTH_PNG : COMINE_SYNTH_JPEG,
        .jpeg_quality = quality, .progress = !quiet,
    };
    double t0 = comine_now();
    comine_status st = comine_synth_write(out, &so);
    if (st != COMINE_OK) {
        fprintf(stderr, "comine synth: %s\n", strip_prefix(comine_last_error()));
        return 1;
    }
    printf("synth: %d identities x %d images (%d x %d %s, seed %llu) written to %s in %.1f s\n", ids, per_id, size,
           size, format, seed, out, comine_now() - t0);
    return 0;
}

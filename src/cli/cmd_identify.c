/* cmd_identify.c: `comine identify`: the identification protocol as MegaFace reports it:
 * a gallery folder of identities split into enrolled images and probes (the rule is in
 * eval.h and docs/EVALUATION.md), optional distractors, rank-1 / rank-5 accuracy and TAR at
 * FAR of the probes against the gallery; text or one JSON object; progress on stderr. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "comine/backend.h"
#include "comine/core.h"
#include "comine/eval.h"
#include "comine/model.h"

const char comine_cmd_identify_summary[] =
    "identification (MegaFace-style): rank-1 accuracy and TAR@FAR of probes against a gallery with distractors";

typedef struct progress_state {
    bool quiet;
    double last;
    char what[64];
} progress_state;

/* A line on stderr at most every 2 seconds, and at the end of each stage. */
static void show_progress(void *ctx, const char *what, int64_t done, int64_t total)
{
    progress_state *p = ctx;
    if (p->quiet) return;
    double now = comine_now();
    bool same = !strcmp(p->what, what);
    if (same && done < total && now - p->last < 2.0) return;
    snprintf(p->what, sizeof p->what, "%s", what);
    p->last = now;
    fprintf(stderr, "identify: %s %lld / %lld\n", what, (long long)done, (long long)total);
}

static void json_num(const char *key, double v)
{
    if (isfinite(v)) printf("\"%s\": %.10g, ", key, v);
    else printf("\"%s\": null, ", key);
}

int comine_cmd_identify(int argc, char **argv)
{
    const char *model_path, *gallery, *distractors, *far_list;
    int probe_per_id, max_distractors, batch, threads, decode_threads;
    bool json, quiet;
    cli_opt opts[] = {
        {"model", ARG_STR, &model_path, NULL, "model file", NULL, 0, 0, true},
        {"gallery", ARG_STR, &gallery, NULL, "folder of identity folders (one per person; or a list file): per "
         "identity, the first image (file names sorted bytewise) is enrolled, the next ones are probes", NULL, 0, 0,
         true},
        {"distractors", ARG_STR, &distractors, NULL, "folder of distractor images (searched recursively; people not in "
         "the gallery), added to the gallery", NULL, 0, 0, false},
        {"num-distractors", ARG_INT, &max_distractors, "0", "use the first N distractors in path order (0 = all)",
         NULL, 0, 2147483647, false},
        {"probe-per-id", ARG_INT, &probe_per_id, "0", "probes per identity (0 = every image but the enrolled one)",
         NULL, 0, 1000000, false},
        {"far", ARG_STR, &far_list, "1e-6,1e-5,1e-4,1e-3", "TAR at these FARs over all probe x gallery pairs, "
         "comma-separated (null when there are fewer than 1/FAR impostor pairs)", NULL, 0, 0, false},
        {"json", ARG_FLAG, &json, NULL, "print one JSON object", NULL, 0, 0, false},
        {"quiet", ARG_FLAG, &quiet, NULL, "no progress lines on stderr", NULL, 0, 0, false},
        {"batch", ARG_INT, &batch, "64", "images per forward (each is run with its mirror)", NULL, 1, 4096, false},
        {"threads", ARG_INT, &threads, "0", "compute threads (0 = all cores)", NULL, 0, 4096, false},
        {"decode-threads", ARG_INT, &decode_threads, "4", "image decoding threads", NULL, 1, 64, false},
        {0},
    };
    int rc = cli_parse("identify", comine_cmd_identify_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    comine_identify_opts io = {.gallery = gallery, .distractors = distractors, .probe_per_id = probe_per_id,
                               .max_distractors = max_distractors, .batch = batch, .threads = decode_threads};
    if (comine_far_list_parse(io.fars, &io.n_fars, far_list, "option --far"))
        return cli_error("identify", "%s", comine_last_error());
    progress_state ps = {.quiet = quiet};
    io.progress = show_progress;
    io.progress_ctx = &ps;

    const comine_backend *be = comine_backend_cpu();
    comine_backend_set_threads(be, threads);
    comine_model *m = NULL;
    comine_identify_result res;
    comine_status st = comine_model_load(&m, model_path, be, 2 * batch);
    if (!st) st = comine_identify(&res, &m, 1, &io);
    if (m) comine_model_free(m);
    if (st) {
        fprintf(stderr, "comine identify: %s\n", comine_last_error());
        return 1;
    }
    if (json) {
        printf("{");
        json_num("rank1", res.rank1);
        json_num("rank5", res.rank5);
        for (int f = 0; f < res.n_fars; f++) {
            char key[64], text[32];
            comine_far_text(text, sizeof text, res.fars[f]);
            snprintf(key, sizeof key, "tar_far_%s", text);
            json_num(key, res.tar[f]);
        }
        printf("\"identities\": %d, \"probe_identities\": %d, \"probes\": %d, \"distractors\": %d, \"gallery\": %d, "
               "\"genuine_pairs\": %lld, \"impostor_pairs\": %lld, ", res.identities, res.probe_identities, res.probes,
               res.distractors, res.gallery, (long long)res.genuine_pairs, (long long)res.impostor_pairs);
        json_num("embed_images_per_s", res.embed_images_per_s);
        printf("\"seconds\": %.6g}\n", res.seconds);
        return 0;
    }
    printf("%s: %d identities enrolled, %d probes of %d identities, %d distractors (gallery %d)\n", gallery,
           res.identities, res.probes, res.probe_identities, res.distractors, res.gallery);
    printf("%-18s %.2f%%\n", "rank-1", 100 * res.rank1);
    printf("%-18s %.2f%%\n", "rank-5", 100 * res.rank5);
    for (int f = 0; f < res.n_fars; f++) {
        char what[64], text[32];
        comine_far_text(text, sizeof text, res.fars[f]);
        snprintf(what, sizeof what, "TAR@FAR=%s", text);
        if (isfinite(res.tar[f])) printf("%-18s %.4f%%\n", what, 100 * res.tar[f]);
        else printf("%-18s n/a (%lld impostor pairs)\n", what, (long long)res.impostor_pairs);
    }
    printf("%-18s %lld genuine, %lld impostor\n", "pairs", (long long)res.genuine_pairs,
           (long long)res.impostor_pairs);
    printf("%-18s %.1f images/s (flip test), %.2f s in all\n", "embedding", res.embed_images_per_s, res.seconds);
    return 0;
}

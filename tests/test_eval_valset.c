/* test_eval_valset.c: validation sets for training (valset.h) on synthetic faces and two
 * randomly initialised peers:
 * - a pairs file: peer A's and peer B's results equal comine_verify_models of each alone, and
 *   the pair's equal the ensemble {A, B} (the pair reuses the peers' embeddings);
 * - the same pairs as an insightface .bin (written with comine_binset_writer): the same
 *   per-peer and pair figures as comine_verify_binset with 10 folds;
 * - the set's short name, and the errors: a missing file, a .bin with matched pairs only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comine/backend.h"
#include "comine/eval.h"
#include "comine/model.h"
#include "comine/synth.h"
#include "comine/valset.h"
#include "fixture.h"

static comine_model *make_model(uint64_t seed)
{
    comine_arch arch;
    COMINE_ASSERT(comine_arch_default(&arch, "iresnet18") == COMINE_OK);
    arch.width = 0.125f;
    arch.input = 32;
    arch.emb_dim = 32;
    comine_model *m;
    COMINE_ASSERT(comine_model_create(&m, &arch, comine_backend_cpu(), 8) == COMINE_OK);
    comine_model_init(m, seed);
    return m;
}

static bool same_result(const comine_verify_result *a, const comine_verify_result *b)
{
    return a->accuracy == b->accuracy && a->accuracy_std == b->accuracy_std && a->auc == b->auc;
}

int main(void)
{
    char dir[256], data[300], pairs_path[300], bin_path[300], one_path[300];
    snprintf(dir, sizeof dir, "test_eval_valset_tmp.%d", (int)getpid());
    snprintf(data, sizeof data, "%s/faces", dir);
    snprintf(pairs_path, sizeof pairs_path, "%s/pairs.tsv", dir);
    snprintf(bin_path, sizeof bin_path, "%s/My-Set.v2.bin", dir);
    snprintf(one_path, sizeof one_path, "%s/same_only.bin", dir);
    comine_set_num_threads(1);
    comine_synth_opts so = {.ids = 6, .per_id = 4, .size = 32, .seed = 3, .format = COMINE_SYNTH_PNG, .jpeg_quality = 90};
    FX_EXPECT(!comine_synth_write(data, &so), "synth: %s", comine_last_error());

    /* 20 pairs, 10 matched and 10 mismatched, interleaved, so that every fold has both */
    FILE *fp = fopen(pairs_path, "w");
    COMINE_ASSERT(fp);
    char name_a[16], name_b[16];
    for (int i = 0; i < 20; i++) {
        int ida = i % 6, idb = i % 2 ? (ida + 1 + i % 5) % 6 : ida;
        comine_synth_identity_name(name_a, sizeof name_a, ida);
        comine_synth_identity_name(name_b, sizeof name_b, idb);
        fprintf(fp, "faces/%s/%04d.png\tfaces/%s/%04d.png\t%d\n", name_a, i % 4, name_b, (i + 1) % 4, ida == idb);
    }
    fclose(fp);

    comine_model *peers[2] = {make_model(11), make_model(12)};
    comine_valset *v = NULL;
    FX_EXPECT(!comine_valset_open(&v, pairs_path, NULL), "open pairs: %s", comine_last_error());
    if (!v) return 1;
    FX_EXPECT(!strcmp(v->name, "pairs") && v->n_images > 0 && v->folds == 10, "pairs set: name %s, %d images, %d folds",
              v->name, v->n_images, v->folds);
    comine_verify_result r[3], ra, rb, re;
    int mark = fx_fail_count;
    FX_EXPECT(!comine_valset_verify(r, v, peers, 2, 4, 2), "valset verify: %s", comine_last_error());
    FX_EXPECT(!comine_verify_models_threads(&ra, &peers[0], 1, v->pairs, 4, 2, NULL), "%s", comine_last_error());
    FX_EXPECT(!comine_verify_models_threads(&rb, &peers[1], 1, v->pairs, 4, 2, NULL), "%s", comine_last_error());
    FX_EXPECT(!comine_verify_models_threads(&re, peers, 2, v->pairs, 4, 2, NULL), "%s", comine_last_error());
    FX_EXPECT(same_result(&r[0], &ra), "A: %.6f/%.6f vs %.6f/%.6f", r[0].accuracy, r[0].auc, ra.accuracy, ra.auc);
    FX_EXPECT(same_result(&r[1], &rb), "B: %.6f/%.6f vs %.6f/%.6f", r[1].accuracy, r[1].auc, rb.accuracy, rb.auc);
    FX_EXPECT(same_result(&r[2], &re), "pair: %.6f/%.6f vs ensemble %.6f/%.6f", r[2].accuracy, r[2].auc, re.accuracy,
              re.auc);
    FX_EXPECT(r[0].embed_images_per_s > 0 && r[0].seconds > 0, "timings filled");
    FX_SUMMARY(mark, "pairs file: A, B and the pair equal verify_models of A, of B and of the ensemble {A, B} "
               "(accuracy %.4f %.4f %.4f)\n", r[0].accuracy, r[1].accuracy, r[2].accuracy);

    /* the same pairs as a .bin */
    comine_binset_writer *w;
    FX_EXPECT(!comine_binset_writer_open(&w, bin_path, 3), "writer: %s", comine_last_error());
    for (int i = 0; i < v->pairs->n; i++)
        for (int s = 0; s < 2; s++) {
            uint8_t *bytes;
            size_t size;
            const char *img = v->pairs->images[s ? v->pairs->b[i] : v->pairs->a[i]];
            COMINE_ASSERT(comine_read_file(img, &bytes, &size) == COMINE_OK);
            FX_EXPECT(!comine_binset_writer_add(w, bytes, size), "add: %s", comine_last_error());
            free(bytes);
        }
    FX_EXPECT(!comine_binset_writer_finish(w, v->pairs->same, v->pairs->n), "finish: %s", comine_last_error());
    comine_valset *vb = NULL;
    FX_EXPECT(!comine_valset_open(&vb, bin_path, NULL), "open bin: %s", comine_last_error());
    if (!vb) return 1;
    FX_EXPECT(!strcmp(vb->name, "my_set") && vb->n_images == 2 * v->pairs->n && vb->folds == 10,
              "bin set: name '%s' (want my_set), %d images, %d folds", vb->name, vb->n_images, vb->folds);
    mark = fx_fail_count;
    comine_verify_result rbin[3], xa, xb, xe;
    FX_EXPECT(!comine_valset_verify(rbin, vb, peers, 2, 8, 1), "valset verify bin: %s", comine_last_error());
    FX_EXPECT(!comine_verify_binset(&xa, &peers[0], 1, vb->bin, 10, 8, 1, NULL), "%s", comine_last_error());
    FX_EXPECT(!comine_verify_binset(&xb, &peers[1], 1, vb->bin, 10, 8, 1, NULL), "%s", comine_last_error());
    FX_EXPECT(!comine_verify_binset(&xe, peers, 2, vb->bin, 10, 8, 1, NULL), "%s", comine_last_error());
    FX_EXPECT(same_result(&rbin[0], &xa) && same_result(&rbin[1], &xb) && same_result(&rbin[2], &xe),
              "bin: %.4f %.4f %.4f vs %.4f %.4f %.4f", rbin[0].accuracy, rbin[1].accuracy, rbin[2].accuracy,
              xa.accuracy, xb.accuracy, xe.accuracy);
    comine_verify_result r1[3];
    FX_EXPECT(!comine_valset_verify(r1, vb, peers, 1, 8, 1) && same_result(&r1[0], &xa), "one peer on the .bin");
    FX_SUMMARY(mark, ".bin: A, B and the pair equal verify_binset of A, of B and of the ensemble, 10 folds\n");

    /* errors */
    mark = fx_fail_count;
    comine_valset *bad = NULL;
    char missing[320];
    snprintf(missing, sizeof missing, "%s/nope.bin", dir);
    FX_EXPECT(comine_valset_open(&bad, missing, NULL) && !bad && strstr(comine_last_error(), "nope.bin"),
              "a missing .bin: %s", comine_last_error());
    FX_EXPECT(!comine_binset_writer_open(&w, one_path, 3), "writer: %s", comine_last_error());
    uint8_t *bytes;
    size_t size;
    COMINE_ASSERT(comine_read_file(v->pairs->images[0], &bytes, &size) == COMINE_OK);
    for (int i = 0; i < 4; i++) FX_EXPECT(!comine_binset_writer_add(w, bytes, size), "add");
    free(bytes);
    uint8_t same[2] = {1, 1};
    FX_EXPECT(!comine_binset_writer_finish(w, same, 2), "finish");
    FX_EXPECT(comine_valset_open(&bad, one_path, NULL) && !bad && strstr(comine_last_error(), "same_only.bin") &&
                  strstr(comine_last_error(), "matched and mismatched"),
              "a .bin of matched pairs only: %s", comine_last_error());
    FX_SUMMARY(mark, "errors name the file: a missing .bin, a .bin without mismatched pairs\n");

    comine_valset_free(v);
    comine_valset_free(vb);
    comine_model_free(peers[0]);
    comine_model_free(peers[1]);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) printf("     (could not remove %s)\n", dir);
    printf("test_eval_valset: %s\n", fx_fail_count ? "FAILED" : "all passed");
    return fx_fail_count ? 1 : 0;
}

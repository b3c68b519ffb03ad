/* test_eval_verify.c: verification with real (randomly initialised) models on small
 * synthetic images: the flip-test embedding equals a hand-made one (forward of the image and
 * its mirror, summed, normalised), the ensemble is the normalised sum of the normalised
 * embeddings, evaluating the same model twice gives identical figures, and, when the comine
 * binary is built, `comine eval --json/--scores` and `comine embed` (.npy read by numpy). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comine/backend.h"
#include "comine/data.h"
#include "comine/eval.h"
#include "comine/model.h"
#include "fixture.h"

#define N_ID 5
#define N_PER 3
#define SIDE 40

static char tmp_dir[256];

static comine_model *make_model(uint64_t seed, const char *file)
{
    comine_arch arch;
    COMINE_ASSERT(comine_arch_default(&arch, "iresnet18") == COMINE_OK);
    arch.width = 0.125f;
    arch.input = 32;
    arch.emb_dim = 64;
    comine_model *m;
    comine_status st = comine_model_create(&m, &arch, comine_backend_cpu(), 8);
    if (st) {
        printf("FAIL model create: %s\n", comine_last_error());
        exit(1);
    }
    comine_model_init(m, seed);
    char *p = comine_path_join(tmp_dir, file);
    st = comine_model_save(m, p);
    FX_EXPECT(!st, "model save %s: %s", p, comine_last_error());
    free(p);
    return m;
}

/* Hand-made flip-test embedding of one image file: forward(x), forward(mirror x), sum, normalise. */
static void hand_embedding(float *e, comine_model *m, const char *path)
{
    const comine_arch *a = comine_model_arch(m);
    comine_image img;
    COMINE_ASSERT(comine_image_load(&img, path) == COMINE_OK);
    size_t per = (size_t)a->input * a->input * 3;
    float *in = comine_alloc_floats(2 * per), *out = comine_alloc_floats(2 * (size_t)a->emb_dim);
    comine_image_to_input(in, &img, a->input, false);
    comine_image_to_input(in + per, &img, a->input, true);
    comine_model_forward(m, out, in, 1, false, NULL);
    comine_model_forward(m, out + a->emb_dim, in + per, 1, false, NULL);
    double s = 0;
    for (int k = 0; k < a->emb_dim; k++) {
        e[k] = out[k] + out[a->emb_dim + k];
        s += (double)e[k] * e[k];
    }
    for (int k = 0; k < a->emb_dim; k++) e[k] = (float)(e[k] / sqrt(s));
    comine_image_free(&img);
    comine_free_floats(in);
    comine_free_floats(out);
}

static int run(const char *cmd) { return system(cmd); }

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "test_eval_verify_tmp.%d", (int)getpid());
    comine_mkdirs(tmp_dir);
    comine_set_num_threads(1);
    /* identities: a base pattern each, images = base + noise */
    comine_rng rng;
    comine_rng_seed(&rng, 7, COMINE_STREAM_SYNTH);
    char paths[N_ID * N_PER][300];
    char *list_text = calloc(1, 64 * 1024);
    for (int id = 0; id < N_ID; id++) {
        uint8_t base[SIDE * SIDE * 3];
        for (int i = 0; i < SIDE * SIDE * 3; i++) base[i] = (uint8_t)comine_rng_below(&rng, 256);
        char dir[300];
        snprintf(dir, sizeof dir, "%s/Id_%d", tmp_dir, id);
        comine_mkdirs(dir);
        for (int k = 0; k < N_PER; k++) {
            comine_image img = {SIDE, SIDE, malloc(SIDE * SIDE * 3)};
            for (int i = 0; i < SIDE * SIDE * 3; i++) {
                int v = base[i] + (int)comine_rng_below(&rng, 241) - 120;
                img.rgb[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
            snprintf(paths[id * N_PER + k], sizeof paths[0], "%s/Id_%d/Id_%d_%04d.png", tmp_dir, id, id, k + 1);
            COMINE_ASSERT(comine_image_save_png(&img, paths[id * N_PER + k]) == COMINE_OK);
            free(img.rgb);
            char line[128];
            snprintf(line, sizeof line, "Id_%d/Id_%d_%04d.png\t%d\n", id, id, k + 1, id);
            strcat(list_text, line);
        }
    }
    /* pairs list: matched within identity, mismatched across */
    char pairs_path[300], list_path[300];
    snprintf(pairs_path, sizeof pairs_path, "%s/pairs.tsv", tmp_dir);
    snprintf(list_path, sizeof list_path, "%s/images.txt", tmp_dir);
    FILE *fp = fopen(pairs_path, "w");
    int n_pairs = 0;
    for (int id = 0; id < N_ID; id++)
        for (int k = 1; k < N_PER; k++, n_pairs += 2) {
            fprintf(fp, "Id_%d/Id_%d_0001.png\tId_%d/Id_%d_%04d.png\t1\n", id, id, id, id, k + 1);
            int o = (id + k) % N_ID;
            fprintf(fp, "Id_%d/Id_%d_%04d.png\tId_%d/Id_%d_0002.png\t0\n", id, id, k + 1, o, o);
        }
    fclose(fp);
    fp = fopen(list_path, "w");
    fputs(list_text, fp);
    fclose(fp);
    free(list_text);

    comine_model *ma = make_model(11, "a.model"), *mb = make_model(12, "b.model");
    int dim = comine_model_arch(ma)->emb_dim;

    /* flip-test embeddings (batch 3: uneven last batch, pieces of max_batch 8) vs hand-made */
    const char *plist[N_ID * N_PER];
    for (int i = 0; i < N_ID * N_PER; i++) plist[i] = paths[i];
    float *emb = calloc((size_t)N_ID * N_PER * dim, sizeof(float)), *ens = calloc((size_t)N_ID * N_PER * dim, sizeof(float));
    float *ha = malloc((size_t)dim * sizeof(float)), *hb = malloc((size_t)dim * sizeof(float));
    comine_status st = comine_embed_files(emb, &ma, 1, plist, N_ID * N_PER, 3, 2, NULL);
    FX_EXPECT(!st, "embed: %s", comine_last_error());
    comine_model *both[2] = {ma, mb};
    st = comine_embed_files(ens, both, 2, plist, N_ID * N_PER, 5, 3, NULL);
    FX_EXPECT(!st, "embed ensemble: %s", comine_last_error());
    float *ref = malloc((size_t)N_ID * N_PER * dim * sizeof(float)), *ref_ens = malloc((size_t)N_ID * N_PER * dim * sizeof(float));
    for (int i = 0; i < N_ID * N_PER; i++) {
        hand_embedding(ha, ma, paths[i]);
        hand_embedding(hb, mb, paths[i]);
        double s = 0;
        for (int k = 0; k < dim; k++) {
            ref[(size_t)i * dim + k] = ha[k];
            ref_ens[(size_t)i * dim + k] = ha[k] + hb[k];
            s += (double)(ha[k] + hb[k]) * (ha[k] + hb[k]);
        }
        for (int k = 0; k < dim; k++) ref_ens[(size_t)i * dim + k] = (float)(ref_ens[(size_t)i * dim + k] / sqrt(s));
    }
    fx_check("flip-test embedding vs hand-made", emb, ref, (size_t)N_ID * N_PER * dim, 1e-5, 1e-4);
    fx_check("ensemble embedding vs hand-made", ens, ref_ens, (size_t)N_ID * N_PER * dim, 1e-5, 1e-4);

    /* verification twice: identical figures and scores */
    comine_pairs *pairs;
    st = comine_pairs_load(&pairs, pairs_path, NULL);
    FX_EXPECT(!st, "pairs: %s", comine_last_error());
    if (!st) {
        comine_verify_result r1, r2, r3, re;
        float *s1 = malloc((size_t)pairs->n * sizeof(float)), *s2 = malloc((size_t)pairs->n * sizeof(float));
        float *s3 = malloc((size_t)pairs->n * sizeof(float));
        FX_EXPECT(!comine_verify_models(&r1, &ma, 1, pairs, 4, s1), "verify: %s", comine_last_error());
        FX_EXPECT(!comine_verify_models_threads(&r2, &ma, 1, pairs, 4, 1, s2), "verify: %s", comine_last_error());
        FX_EXPECT(!comine_verify_models_threads(&r3, &ma, 1, pairs, 7, 2, s3), "verify: %s", comine_last_error());
        FX_EXPECT(!comine_verify_models(&re, both, 2, pairs, 4, NULL), "verify ensemble: %s", comine_last_error());
        bool same = memcmp(s1, s2, (size_t)pairs->n * sizeof(float)) == 0 && r1.accuracy == r2.accuracy &&
                    r1.accuracy_std == r2.accuracy_std && r1.auc == r2.auc;
        printf("%s same model twice (decode threads 4 / 1): accuracy %.4f +- %.4f AUC %.4f, scores bitwise %s\n",
               same ? "ok  " : "FAIL", r1.accuracy, r1.accuracy_std, r1.auc, same ? "equal" : "DIFFER");
        if (!same) fx_fail_count++;
        fx_check("scores with batch 7 vs batch 4", s3, s1, (size_t)pairs->n, 1e-5, 0);
        printf("     ensemble: accuracy %.4f AUC %.4f; %d pairs over %d unique images\n", re.accuracy, re.auc,
               pairs->n, pairs->n_images);
        /* the score of pair 0 is the cosine of the hand-made embeddings */
        int a0 = -1, b0 = -1;
        for (int i = 0; i < N_ID * N_PER; i++) {
            if (!strcmp(paths[i], pairs->images[pairs->a[0]])) a0 = i;
            if (!strcmp(paths[i], pairs->images[pairs->b[0]])) b0 = i;
        }
        FX_EXPECT(a0 >= 0 && b0 >= 0, "pair 0 images not found");
        if (a0 >= 0 && b0 >= 0) {
            double dot = 0;
            for (int k = 0; k < dim; k++) dot += (double)ref[(size_t)a0 * dim + k] * ref[(size_t)b0 * dim + k];
            float want = (float)dot;
            fx_check("score of pair 0 = cosine", &s1[0], &want, 1, 1e-5, 0);
        }
        free(s1);
        free(s2);
        free(s3);
        comine_pairs_free(pairs);
    }

    /* the command line, when built */
    if (access(COMINE_BIN, X_OK) == 0) {
        char cmd[4096];
        for (int rep = 0; rep < 2; rep++) {
            snprintf(cmd, sizeof cmd, "%s eval --model %s/a.model --model %s/b.model --pairs %s --json --batch 4 "
                     "--scores %s/scores%d.tsv > %s/eval%d.json", COMINE_BIN, tmp_dir, tmp_dir, pairs_path, tmp_dir,
                     rep, tmp_dir, rep);
            FX_EXPECT(run(cmd) == 0, "comine eval failed: %s", cmd);
        }
        snprintf(cmd, sizeof cmd, "cmp -s %s/scores0.tsv %s/scores1.tsv && "
                 "sed 's/, \"embed_images_per_s.*//' %s/eval0.json > %s/e0 && "
                 "sed 's/, \"embed_images_per_s.*//' %s/eval1.json > %s/e1 && cmp -s %s/e0 %s/e1 && "
                 "grep -q '\"tar_far_1e-3\": null' %s/eval0.json && test $(wc -l < %s/scores0.tsv) -eq %d",
                 tmp_dir, tmp_dir, tmp_dir, tmp_dir, tmp_dir, tmp_dir, tmp_dir, tmp_dir, tmp_dir, tmp_dir, n_pairs);
        int rc = run(cmd);
        FX_EXPECT(rc == 0, "comine eval twice: figures or scores differ, or bad --scores/--json");
        printf("%s comine eval (ensemble) twice: identical JSON figures and --scores files (%d lines)\n",
               rc ? "FAIL" : "ok  ", n_pairs);
        if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0) {
            snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ref/verify_ref.py %s/scores0.tsv > %s/ref.json && "
                     "/usr/bin/python3 -c \"import json; a = json.load(open('%s/eval0.json')); "
                     "b = json.load(open('%s/ref.json')); "
                     "assert all(abs(a[k] - b[k]) < 1e-6 for k in ('accuracy', 'accuracy_std', 'auc')), (a, b)\"",
                     COMINE_SOURCE_DIR, tmp_dir, tmp_dir, tmp_dir, tmp_dir);
            rc = run(cmd);
            FX_EXPECT(rc == 0, "comine eval --json vs verify_ref.py on its --scores");
            printf("%s comine eval --json agrees with verify_ref.py on its --scores file\n", rc ? "FAIL" : "ok  ");
            snprintf(cmd, sizeof cmd, "%s embed --model %s/a.model --data %s --out %s/emb.npy --batch 4 > /dev/null && "
                     "/usr/bin/python3 -c \"import numpy as np; a = np.load('%s/emb.npy'); "
                     "p = open('%s/emb.npy.paths.txt').read().split(); "
                     "assert a.dtype == np.float32 and a.shape == (%d, %d) and len(p) == %d, a.shape; "
                     "assert abs(np.linalg.norm(a, axis=1) - 1).max() < 1e-5\"",
                     COMINE_BIN, tmp_dir, list_path, tmp_dir, tmp_dir, tmp_dir, N_ID * N_PER, dim, N_ID * N_PER);
            rc = run(cmd);
            FX_EXPECT(rc == 0, "comine embed .npy not readable by numpy.load or wrong shape");
            printf("%s comine embed: (%d, %d) float32 .npy of unit rows, read by numpy.load\n", rc ? "FAIL" : "ok  ",
                   N_ID * N_PER, dim);
        } else {
            FX_SKIP("comine eval against verify_ref.py, comine embed read by numpy.load (no /usr/bin/python3 with "
                    "numpy; Debian: apt-get install python3-numpy)");
        }
        snprintf(cmd, sizeof cmd, "%s eval --model %s/a.model --pairs %s/missing.txt 2>&1 | grep -q missing.txt",
                 COMINE_BIN, tmp_dir, tmp_dir);
        FX_EXPECT(run(cmd) == 0, "comine eval on a missing pairs file must name it");
    } else {
        FX_SKIP("command-line checks (no %s: build the comine target)", COMINE_BIN);
    }
    comine_model_free(ma);
    comine_model_free(mb);
    free(emb);
    free(ens);
    free(ref);
    free(ref_ens);
    free(ha);
    free(hb);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmp_dir);
    return fx_finish("test_eval_verify");
}

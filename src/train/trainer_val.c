/* trainer_val.c: validation sets during training (trainer_val.h). */
#include "train/trainer_val.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/model.h"

#define VAL_LOG "val.jsonl"
#define VAL_BEST "best.json"

static void add_field(char *buf, size_t size, size_t *len, const char *key, double v)
{
    if (*len >= size) return;
    int w = isfinite(v) ? snprintf(buf + *len, size - *len, ", \"%s\": %.6g", key, v)
                        : snprintf(buf + *len, size - *len, ", \"%s\": null", key);
    if (w > 0) *len += (size_t)w < size - *len ? (size_t)w : size - *len - 1;
}

/* best.json: {"best_a": x, "step_a": n, "best_b": y, "step_b": m} (missing: none yet) */
static void read_best(comine_valrun *v)
{
    char *path = comine_path_join(v->out, VAL_BEST);
    uint8_t *data = NULL;
    size_t size = 0;
    if (comine_path_exists(path) && comine_read_file(path, &data, &size) == COMINE_OK) {
        static const char *keys[2][2] = {{"\"best_a\":", "\"step_a\":"}, {"\"best_b\":", "\"step_b\":"}};
        for (int k = 0; k < 2; k++) {
            const char *a = strstr((const char *)data, keys[k][0]), *s = strstr((const char *)data, keys[k][1]);
            double acc;
            long long step;
            if (a && s && sscanf(a + strlen(keys[k][0]), "%lf", &acc) == 1 &&
                sscanf(s + strlen(keys[k][1]), "%lld", &step) == 1) {
                v->best[k] = acc;
                v->best_step[k] = step;
            }
        }
    }
    free(data);
    free(path);
}

static comine_status write_best(const comine_valrun *v)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "{\"set\": \"%s\", \"best_a\": %.6f, \"step_a\": %lld, \"best_b\": %.6f, "
                                      "\"step_b\": %lld}\n",
                     v->key[0], v->best[0], (long long)v->best_step[0], v->best[1], (long long)v->best_step[1]);
    char *path = comine_path_join(v->out, VAL_BEST);
    comine_status st = comine_write_file_atomic(path, buf, (size_t)n);
    free(path);
    return st;
}

comine_status comine_valrun_open(comine_valrun *v, const comine_train_cfg *cfg)
{
    memset(v, 0, sizeof *v);
    v->best[0] = v->best[1] = -1;
    v->out = cfg->out;
    v->batch = cfg->batch;
    v->threads = cfg->loader_threads > 0 ? cfg->loader_threads : 1;
    if (!cfg->val || !*cfg->val) return COMINE_OK;
    char *list = comine_strdup(cfg->val);
    int cap = 1;
    for (const char *p = list; *p; p++) cap += *p == ',';
    v->sets = comine_calloc((size_t)cap, sizeof *v->sets);
    v->key = comine_calloc((size_t)cap, sizeof *v->key);
    comine_status st = COMINE_OK;
    char *save = NULL;
    for (char *item = strtok_r(list, ",", &save); item && st == COMINE_OK; item = strtok_r(NULL, ",", &save)) {
        if (!*item) continue;
        st = comine_valset_open(&v->sets[v->n], item, cfg->val_root);
        if (st != COMINE_OK) {
            st = comine_fail(st, "--val: %s", comine_last_error());
            break;
        }
        /* a unique key: the set's name, then _2, _3 ... for repeats */
        const char *name = v->sets[v->n]->name;
        snprintf(v->key[v->n], sizeof v->key[v->n], "%s", name);
        for (int rep = 2;; rep++) {
            bool clash = false;
            for (int j = 0; j < v->n; j++) clash = clash || !strcmp(v->key[j], v->key[v->n]);
            if (!clash) break;
            snprintf(v->key[v->n], sizeof v->key[v->n], "%.50s_%d", name, rep);
        }
        v->n++;
    }
    free(list);
    if (st == COMINE_OK && v->n == 0) st = comine_fail(COMINE_ERR_ARG, "--val '%s': no file named", cfg->val);
    if (st == COMINE_OK && cfg->resume) read_best(v);
    if (st != COMINE_OK) comine_valrun_free(v);
    return st;
}

void comine_valrun_free(comine_valrun *v)
{
    for (int i = 0; i < v->n; i++) comine_valset_free(v->sets[i]);
    free(v->sets);
    free(v->key);
    memset(v, 0, sizeof *v);
}

comine_status comine_valrun_trim(const comine_valrun *v, int64_t global_step)
{
    char *path = comine_path_join(v->out, VAL_LOG);
    comine_status st = COMINE_OK;
    if (!comine_path_exists(path)) {
        free(path);
        return COMINE_OK;
    }
    uint8_t *data = NULL;
    size_t size = 0;
    st = comine_read_file(path, &data, &size);
    comine_atomic_file af;
    if (st == COMINE_OK) st = comine_atomic_open(&af, path);
    if (st == COMINE_OK) {
        char *p = (char *)data;
        while (p && *p) {
            char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            const char *g = strstr(p, "\"global_step\": ");
            long long step;
            if (g && (!nl || g < nl) && sscanf(g + 15, "%lld", &step) == 1 && step <= global_step) {
                fwrite(p, 1, len, af.fp);
                fputc('\n', af.fp);
            }
            p = nl ? nl + 1 : NULL;
        }
        st = comine_atomic_commit(&af);
    }
    free(data);
    free(path);
    return st;
}

static comine_status append_log(const comine_valrun *v, const char *line)
{
    char *path = comine_path_join(v->out, VAL_LOG);
    uint8_t *data = NULL;
    size_t size = 0;
    comine_status st = comine_path_exists(path) ? comine_read_file(path, &data, &size) : COMINE_OK;
    comine_atomic_file af;
    if (st == COMINE_OK) st = comine_atomic_open(&af, path);
    if (st == COMINE_OK) {
        if (size) fwrite(data, 1, size, af.fp);
        fprintf(af.fp, "%s}\n", line);
        st = comine_atomic_commit(&af);
    }
    free(data);
    free(path);
    return st;
}

comine_status comine_valrun_verify(comine_valrun *v, comine_model *const *peers, int n_peers, int epoch, int step,
                                   int64_t global_step, char *json, size_t size, size_t *len,
                                   comine_verify_result res0[3])
{
    static const char *suffix[3] = {"a", "b", "pair"};
    static const char *best_names[2] = {"best_a.model", "best_b.model"};
    char line[4096];
    size_t ll = (size_t)snprintf(line, sizeof line, "{\"epoch\": %d, \"step\": %d, \"global_step\": %lld", epoch, step,
                                 (long long)global_step);
    for (int i = 0; i < v->n; i++) {
        comine_verify_result res[3];
        comine_status st = comine_valset_verify(res, v->sets[i], peers, n_peers, v->batch, v->threads);
        if (st != COMINE_OK) return comine_fail(st, "validation on %s: %s", v->key[i], comine_last_error());
        for (int k = 0; k < 3; k++) {
            char key[96];
            snprintf(key, sizeof key, "val_%s_%s", v->key[i], suffix[k]);
            double acc = k < n_peers || (k == 2 && n_peers == 2) ? res[k].accuracy : NAN;
            add_field(line, sizeof line, &ll, key, acc);
            if (json) add_field(json, size, len, key, acc);
        }
        if (n_peers == 2)
            comine_progress("epoch %d step %d: %s: A %.4f B %.4f A+B %.4f (%.1f s)", epoch + 1, step, v->key[i],
                            res[0].accuracy, res[1].accuracy, res[2].accuracy, res[2].seconds);
        else
            comine_progress("epoch %d step %d: %s: A %.4f (%.1f s)", epoch + 1, step, v->key[i], res[0].accuracy,
                            res[0].seconds);
        if (i > 0) continue;
        memcpy(res0, res, sizeof res);
        bool improved = false;
        for (int k = 0; k < n_peers; k++) {
            if (!(res[k].accuracy > v->best[k])) continue;
            char *path = comine_path_join(v->out, best_names[k]);
            st = comine_model_save(peers[k], path);
            free(path);
            if (st != COMINE_OK) return st;
            v->best[k] = res[k].accuracy;
            v->best_step[k] = global_step;
            improved = true;
        }
        if (improved) {
            st = write_best(v);
            if (st != COMINE_OK) return st;
        }
    }
    if (ll + 2 >= sizeof line) return comine_fail(COMINE_ERR_ARG, "--val: too many validation sets for one line");
    return append_log(v, line);
}

/* fuzz_run_files.c: libFuzzer harness of the readers of a run folder's report files:
 * noise.csv (comine_noise_load), metrics.jsonl (comine_jsonl_load) and cos_epoch<E>.csv
 * (comine_cos_load).  Every input goes through all three. */
#include "fuzz_common.h"

#include <math.h>

#include "comine/eval.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = fz_write("run.txt", data, size);
    comine_noise_table *nt = NULL;
    if (comine_noise_load(&nt, path) == COMINE_OK) {
        int *order = comine_malloc(sizeof(int) * (size_t)(nt->n > 0 ? nt->n : 1));
        comine_noise_rank(order, nt);
        free(order);
        comine_noise_free(nt);
    }
    comine_jsonl *j = NULL;
    if (comine_jsonl_load(&j, path) == COMINE_OK) {
        for (int r = 0; r < j->n_rows; r++)
            for (int k = 0; k < j->n_keys; k++) (void)comine_jsonl_get(j, r, j->keys[k]);
        (void)comine_jsonl_key(j, "epoch");
        comine_jsonl_free(j);
    }
    comine_cos_table *c = NULL;
    if (comine_cos_load(&c, path) == COMINE_OK) comine_cos_free(c);
    free(path);
    return 0;
}

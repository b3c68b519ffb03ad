/* fuzz_model.c: libFuzzer harness of model files (comine_model_load).  The first input byte
 * chooses whether the two CRCs of the record are recomputed before loading (odd: yes), so that
 * mutations reach the architecture record and tensor tables behind the checksums.  With
 * COMINE_FUZZ_WRITE_SEED=PATH set, writes a valid small model file there and exits. */
#include "fuzz_common.h"

#include "comine/backend.h"
#include "comine/model.h"

static void fix_crcs(uint8_t *p, size_t n)
{
    if (n < 24) return;
    uint32_t hbytes = fz_get32(p + 12);
    if ((size_t)hbytes > n - 24) return;
    fz_le32(p + 16 + hbytes, comine_crc32(0, p, 16 + (size_t)hbytes));
    fz_le32(p + n - 4, comine_crc32(0, p, n - 4));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *seed = getenv("COMINE_FUZZ_WRITE_SEED");
    if (!seed) return 0;
    comine_arch arch;
    comine_arch_default(&arch, "iresnet18");
    arch.width = 0.02f;
    arch.input = 16;
    arch.emb_dim = 8;
    comine_model *m = NULL;
    if (comine_model_create(&m, &arch, comine_backend_cpu(), 1) != COMINE_OK ||
        (comine_model_init(m, 1), comine_model_save(m, seed)) != COMINE_OK) {
        fprintf(stderr, "%s\n", comine_last_error());
        exit(1);
    }
    comine_model_free(m);
    exit(0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t *copy = comine_malloc(size);
    memcpy(copy, data + 1, size - 1);
    if (data[0] & 1) fix_crcs(copy, size - 1);
    char *path = fz_write("fuzz.model", copy, size - 1);
    free(copy);
    comine_model *m = NULL;
    if (comine_model_load(&m, path, comine_backend_cpu(), 1) == COMINE_OK) comine_model_free(m);
    free(path);
    return 0;
}

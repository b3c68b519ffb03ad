/* fuzz_onnx.c: libFuzzer harness of the ONNX reader and import (src/interop/): every input is
 * parsed from memory (comine_onnx_parse); one that parses is also written to a file and
 * imported (comine_onnx_import), which walks its graph against comine's layers.  With
 * COMINE_FUZZ_WRITE_SEED=PATH set, writes a small exported iresnet18 there and exits. */
#include "fuzz_common.h"

#include "comine/backend.h"
#include "comine/model.h"
#include "comine/onnx.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *seed = getenv("COMINE_FUZZ_WRITE_SEED");
    if (!seed) return 0;
    comine_arch arch;
    comine_arch_default(&arch, "iresnet18");
    arch.width = 0.02f;
    arch.input = 16;
    arch.emb_dim = 4;
    comine_model *m = NULL;
    if (comine_model_create(&m, &arch, comine_backend_cpu(), 1) != COMINE_OK ||
        (comine_model_init(m, 1), comine_onnx_export(m, seed)) != COMINE_OK) {
        fprintf(stderr, "%s\n", comine_last_error());
        exit(1);
    }
    comine_model_free(m);
    exit(0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    comine_onnx_model *om = NULL;
    if (comine_onnx_parse(&om, data, size, "fuzz.onnx") != COMINE_OK) return 0;
    comine_onnx_free(om);
    char *path = fz_write("fuzz.onnx", data, size);
    comine_model *m = NULL;
    if (comine_onnx_import(&m, path, NULL, comine_backend_cpu(), 1) == COMINE_OK) comine_model_free(m);
    free(path);
    return 0;
}

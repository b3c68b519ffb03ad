/* cmd_import.c: `comine import`: an ONNX iresnet18/34/50/100 or MobileFaceNet (as comine export
 * or insightface's torch2onnx writes it) as a comine model file (docs/FORMATS.md, "ONNX models"). */
#include <stdio.h>

#include "cli/args.h"
#include "comine/backend.h"
#include "comine/core.h"
#include "comine/model.h"
#include "comine/onnx.h"

const char comine_cmd_import_summary[] = "read an ONNX iresnet or MobileFaceNet into a model file";

int comine_cmd_import(int argc, char **argv)
{
    const char *onnx_path, *out, *arch;
    cli_opt opts[] = {
        {"onnx", ARG_STR, &onnx_path, NULL, "input .onnx (weights inside the file)", NULL, 0, 0, true},
        {"out", ARG_STR, &out, NULL, "output model file", NULL, 0, 0, true},
        {"arch", ARG_CHOICE, &arch, NULL, "architecture (default: recognised from the graph)",
         "iresnet18|iresnet34|iresnet50|iresnet100|mobilefacenet", 0, 0, false},
        {0},
    };
    int rc = cli_parse("import", comine_cmd_import_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if ((rc = cli_check_out_file("import", "out", out))) return rc;
    comine_model *m = NULL;
    comine_status st = comine_onnx_import(&m, onnx_path, arch, comine_backend_cpu(), 1);
    if (!st) st = comine_model_save(m, out);
    if (st) {
        fprintf(stderr, "comine import: %s\n", comine_last_error());
    } else {
        const comine_arch *a = comine_model_arch(m);
        printf("%s: %s (width %g, input %d, %d-d), %zu parameters, from %s\n", out, a->name, (double)a->width, a->input,
               a->emb_dim, comine_model_num_params(m), onnx_path);
    }
    if (m) comine_model_free(m);
    return st ? 1 : 0;
}

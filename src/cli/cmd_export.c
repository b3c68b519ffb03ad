/* cmd_export.c: `comine export`: a model's embedding network as an ONNX file (opset 11;
 * input "data" (N, 3, S, S) float32 NCHW RGB normalised (x - 127.5) / 128, output "embedding"
 * (N, emb_dim) before L2 normalisation; docs/FORMATS.md, "ONNX models"). */
#include <stdio.h>

#include "cli/args.h"
#include "comine/backend.h"
#include "comine/core.h"
#include "comine/model.h"
#include "comine/onnx.h"

const char comine_cmd_export_summary[] = "write a model's embedding network as ONNX";

int comine_cmd_export(int argc, char **argv)
{
    const char *model_path, *onnx_path;
    cli_opt opts[] = {
        {"model", ARG_STR, &model_path, NULL, "model file (comine train's peer_a.model, ...)", NULL, 0, 0, true},
        {"onnx", ARG_STR, &onnx_path, NULL, "output .onnx", NULL, 0, 0, true},
        {0},
    };
    int rc = cli_parse("export", comine_cmd_export_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if ((rc = cli_check_out_file("export", "onnx", onnx_path))) return rc;
    comine_model *m = NULL;
    comine_status st = comine_model_load(&m, model_path, comine_backend_cpu(), 1);
    if (!st) st = comine_onnx_export(m, onnx_path);
    if (st) {
        fprintf(stderr, "comine export: %s\n", comine_last_error());
    } else {
        const comine_arch *a = comine_model_arch(m);
        printf("%s: %s (width %g, input %d, %d-d), ONNX opset 11, input \"data\" (N, 3, %d, %d), "
               "output \"embedding\" (N, %d)\n",
               onnx_path, a->name, (double)a->width, a->input, a->emb_dim, a->input, a->input, a->emb_dim);
    }
    if (m) comine_model_free(m);
    return st ? 1 : 0;
}

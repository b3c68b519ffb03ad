/* cmd_report.c: `comine report`: PNG plots and index.html of a training run folder. */
#include <stdio.h>

#include "cli/args.h"
#include "comine/core.h"
#include "comine/eval.h"

const char comine_cmd_report_summary[] = "plot a training run (PNG + index.html)";

int comine_cmd_report(int argc, char **argv)
{
    const char *run_dir, *out;
    cli_opt opts[] = {
        {"run", ARG_STR, &run_dir, NULL, "training run folder (metrics.jsonl, noise.csv, cos_epoch<E>.csv)", NULL, 0, 0,
         true},
        {"out", ARG_STR, &out, NULL, "folder for the PNGs and index.html", NULL, 0, 0, true},
        {0},
    };
    int rc = cli_parse("report", comine_cmd_report_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    int plots = 0;
    comine_status st = comine_report_write(run_dir, out, &plots);
    if (st) {
        fprintf(stderr, "comine report: %s\n", comine_last_error());
        return 1;
    }
    if (!comine_report_have_plots())
        printf("plots are unavailable (comine was built without PLplot, or PLplot has no pngcairo driver: Debian "
               "plplot-driver-cairo); tables written\n");
    else
        printf("%d plot(s) written\n", plots);
    printf("report: %s/index.html\n", out);
    return 0;
}

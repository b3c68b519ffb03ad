/* cmd_report.c: `comine report`: PNG plots and index.html of a training run folder, with a
 * ROC panel of the ROC tables (comine eval --roc) in the folder or given with --roc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "comine/core.h"
#include "comine/eval.h"

const char comine_cmd_report_summary[] = "plot a training run (PNG + index.html)";

int comine_cmd_report(int argc, char **argv)
{
    const char *run_dir, *out, *rocs;
    cli_opt opts[] = {
        {"run", ARG_STR, &run_dir, NULL, "training run folder (metrics.jsonl, noise.csv, cos_epoch<E>.csv)", NULL, 0, 0,
         true},
        {"out", ARG_STR, &out, NULL, "folder for the PNGs and index.html", NULL, 0, 0, true},
        {"roc", ARG_STR, &rocs, NULL, "ROC tables (comine eval --roc OUT.tsv) for the ROC panel, comma-separated; "
         "RUN/roc*.tsv are always included", NULL, 0, 0, false},
        {0},
    };
    int rc = cli_parse("report", comine_cmd_report_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if ((rc = cli_check_out_dir("report", "out", out))) return rc;
    int plots = 0, n_rocs = 0;
    char *list = rocs ? comine_strdup(rocs) : NULL;
    const char *files[COMINE_PLOT_MAX_SERIES + 1];
    for (char *p = list, *next; p; p = next) {
        next = strchr(p, ',');
        if (next) *next++ = 0;
        if (!*p || n_rocs == COMINE_PLOT_MAX_SERIES) {
            const char *why = *p ? "too many ROC tables (at most 8)" : "an empty file name";
            free(list);
            return cli_error("report", "option --roc: %s", why);
        }
        files[n_rocs++] = p;
    }
    comine_status st = comine_report_write_rocs(run_dir, out, files, n_rocs, &plots);
    free(list);
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

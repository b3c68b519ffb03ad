/* cmd_plot.c: `comine plot`: a line chart (PNG) of a tab-separated table, one series per
 * value of a group column, for experiment summaries (accuracy against the noise rate per
 * mode, ...). */
#include <math.h>
#include <stdio.h>

#include "cli/args.h"
#include "comine/core.h"
#include "comine/eval.h"

const char comine_cmd_plot_summary[] = "line chart (PNG) of a tab-separated table";

int comine_cmd_plot(int argc, char **argv)
{
    comine_plot_spec spec;
    double ymin, ymax;
    cli_opt opts[] = {
        {"table", ARG_STR, &spec.table, NULL, "tab-separated table; first line: the column names; '#' lines ignored",
         NULL, 0, 0, true},
        {"x", ARG_STR, &spec.x, NULL, "numeric column for the x axis", NULL, 0, 0, true},
        {"y", ARG_STR, &spec.y, NULL, "numeric column for the y axis", NULL, 0, 0, true},
        {"err", ARG_STR, &spec.err, NULL, "numeric column: error bars y +- err (none when not given)", NULL, 0, 0,
         false},
        {"group", ARG_STR, &spec.group, NULL, "column whose values are the series (at most 8; one series when not "
         "given)", NULL, 0, 0, false},
        {"out", ARG_STR, &spec.out, NULL, "PNG to write", NULL, 0, 0, true},
        {"title", ARG_STR, &spec.title, NULL, "chart title (none when not given)", NULL, 0, 0, false},
        {"xlabel", ARG_STR, &spec.xlabel, NULL, "x axis label (the --x column's name when not given)", NULL, 0, 0,
         false},
        {"ylabel", ARG_STR, &spec.ylabel, NULL, "y axis label (the --y column's name when not given)", NULL, 0, 0,
         false},
        {"ymin", ARG_FLOAT, &ymin, NULL, "bottom of the y axis, with --ymax (from the data when not given)", NULL, 0,
         0, false},
        {"ymax", ARG_FLOAT, &ymax, NULL, "top of the y axis, with --ymin (from the data when not given)", NULL, 0, 0,
         false},
        {0},
    };
    int rc = cli_parse("plot", comine_cmd_plot_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if ((rc = cli_check_out_file("plot", "out", spec.out))) return rc;
    bool has_ymin = cli_given(opts, "ymin"), has_ymax = cli_given(opts, "ymax");
    if (has_ymin != has_ymax)
        return cli_error("plot", "option --%s: give --ymin and --ymax together", has_ymin ? "ymin" : "ymax");
    if (has_ymin && !(ymin < ymax))
        return cli_error("plot", "option --ymax: %g is not above --ymin %g", ymax, ymin);
    spec.ymin = has_ymin ? ymin : NAN;
    spec.ymax = has_ymax ? ymax : NAN;
    comine_status st = comine_plot_table(&spec);
    if (st) {
        fprintf(stderr, "comine plot: %s\n", comine_last_error());
        return 1;
    }
    printf("plot: %s\n", spec.out);
    return 0;
}

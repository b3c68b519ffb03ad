/* plot_impl.h: the PLplot helpers the eval area's charts share (report.c: the run report,
 * plot.c: line charts of a table).  PLplot keeps global state, so a chart is drawn from
 * comine_plot_begin to comine_plot_end with comine_plot_lock held, and only after
 * comine_report_have_plots() said yes.  A chart goes to a temp file that comine_plot_end
 * moves into place.  Everything but the lock exists only with COMINE_HAVE_PLPLOT. */
#ifndef COMINE_EVAL_PLOT_IMPL_H
#define COMINE_EVAL_PLOT_IMPL_H

#include <pthread.h>
#include <stdbool.h>

extern pthread_mutex_t comine_plot_lock;

#ifdef COMINE_HAVE_PLPLOT
#include <plplot.h>

/* cmap0 of every chart: 0 background white, 1 axes black, 7 grey (the grid), and the series
 * colours 2 blue, 3 orange, 4 green, 5 red, 6 purple, 8 cyan, 9 brown, 10 pink, 11 olive. */
enum { COMINE_PLOT_COLORS = 12 };

/* Start a 900 x 560 pngcairo chart written to tmp_path. */
void comine_plot_begin(const char *tmp_path);
/* The viewport, the world range, a grey grid, the black box with ticks and the labels. */
void comine_plot_frame(double xmin, double xmax, double ymin, double ymax, const char *xl, const char *yl,
                       const char *title);
/* A legend of n <= 8 line entries in the top right corner, or the bottom right one when `bottom`. */
void comine_plot_legend(int n, const char *const *labels, const PLINT *colors, bool bottom);
/* plend, then move the finished tmp_path to path; false when no file was made or the move failed. */
bool comine_plot_end(const char *tmp_path, const char *path);
/* Widen [lo, hi] by 5% on each side (a single value: by 10% of it, or 0.5 around 0). */
void comine_plot_range_pad(double *lo, double *hi);
/* Raise the top of the y range so that a legend of n lines sits above the data. */
void comine_plot_legend_room(double lo, double *hi, int n);
#endif

#endif

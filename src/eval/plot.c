/* plot.c: PNG charts with PLplot's C API (pngcairo): the helpers every chart of the eval area
 * uses (plot_impl.h; the run report in report.c is the other user) and comine_plot_table, a
 * line chart of a tab-separated table (one series per value of a group column, optional error
 * bars), for experiment summaries such as accuracy against the noise rate per mode, and
 * comine_plot_roc, ROC curves on a log FAR axis (eval --plot, identify --plot, the report).
 * PLplot keeps global state: one chart is drawn at a time under comine_plot_lock. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comine/eval.h"
#include "eval/plot_impl.h"

pthread_mutex_t comine_plot_lock = PTHREAD_MUTEX_INITIALIZER;

#ifdef COMINE_HAVE_PLPLOT
static int have_pngcairo = -1;  /* unknown until first asked */
#endif

/* Built with PLplot and its pngcairo driver is installed (plinit would otherwise ask for a
 * device on stdin). */
bool comine_report_have_plots(void)
{
#ifdef COMINE_HAVE_PLPLOT
    pthread_mutex_lock(&comine_plot_lock);
    if (have_pngcairo < 0) {
        const char *menu[128], *devs[128];
        const char **pm = menu, **pd = devs;
        int n = 128;
        plgDevs(&pm, &pd, &n);
        have_pngcairo = 0;
        for (int i = 0; i < n; i++)
            if (devs[i] && !strcmp(devs[i], "pngcairo")) have_pngcairo = 1;
    }
    bool ok = have_pngcairo == 1;
    pthread_mutex_unlock(&comine_plot_lock);
    return ok;
#else
    return false;
#endif
}

#ifdef COMINE_HAVE_PLPLOT

void comine_plot_begin(const char *tmp_path)
{
    static const PLINT r[COMINE_PLOT_COLORS] = {255, 0, 31, 255, 44, 214, 148, 127, 23, 140, 227, 188};
    static const PLINT g[COMINE_PLOT_COLORS] = {255, 0, 119, 127, 160, 39, 103, 127, 190, 86, 119, 189};
    static const PLINT b[COMINE_PLOT_COLORS] = {255, 0, 180, 14, 44, 40, 189, 127, 207, 75, 194, 34};
    plsdev("pngcairo");
    plsfnam(tmp_path);
    plspage(0, 0, 900, 560, 0, 0);
    plscmap0(r, g, b, COMINE_PLOT_COLORS);
    plinit();
    plschr(0, 0.9);
}

void comine_plot_frame(double xmin, double xmax, double ymin, double ymax, const char *xl, const char *yl,
                       const char *title)
{
    pladv(0);
    plvpor(0.09, 0.97, 0.11, 0.92);
    plwind(xmin, xmax, ymin, ymax);
    plcol0(7);
    plwidth(0.5);
    plbox("g", 0, 0, "g", 0, 0);
    plcol0(1);
    plwidth(1.0);
    plbox("bcnst", 0, 0, "bcnstv", 0, 0);
    pllab(xl, yl, title);
}

void comine_plot_legend(int n, const char *const *labels, const PLINT *colors, bool bottom)
{
    PLINT opt[8], tcol[8], lsty[8];
    PLFLT lw[8];
    COMINE_ASSERT(n >= 0 && n <= 8);
    for (int i = 0; i < n; i++) {
        opt[i] = PL_LEGEND_LINE;
        tcol[i] = 1;
        lsty[i] = 1;
        lw[i] = 2.0;
    }
    PLFLT w, h;
    pllegend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, PL_POSITION_RIGHT | (bottom ? PL_POSITION_BOTTOM : PL_POSITION_TOP) |
             PL_POSITION_INSIDE, 0.02, 0.02, 0.08, 0, 1, 1, 0, 0, n, opt, 1.0, 0.9, 2.0, 0.0, tcol, labels, NULL,
             NULL, NULL, NULL, colors, lsty, lw, NULL, NULL, NULL, NULL);
}

bool comine_plot_end(const char *tmp_path, const char *path)
{
    plend();
    if (!comine_path_exists(tmp_path)) return false;
    if (rename(tmp_path, path)) {
        unlink(tmp_path);
        return false;
    }
    return true;
}

void comine_plot_range_pad(double *lo, double *hi)
{
    if (!(*hi > *lo)) {
        double c = *lo;
        *lo = c - (fabs(c) > 0 ? 0.1 * fabs(c) : 0.5);
        *hi = c + (fabs(c) > 0 ? 0.1 * fabs(c) : 0.5);
        return;
    }
    double pad = 0.05 * (*hi - *lo);
    *lo -= pad;
    *hi += pad;
}

void comine_plot_legend_room(double lo, double *hi, int n)
{
    double room = 0.06 + 0.055 * n;
    *hi = lo + (*hi - lo) / (1.0 - room);
}
#endif

/* ---- line chart of a table ------------------------------------------------------------ */

typedef struct table_point { double x, y, err; int line; } table_point;

typedef struct table_series {
    char *name;          /* the group column's value ("" without a group column) */
    table_point *points; /* (n) */
    int n, cap;
} table_series;

typedef struct table_chart {
    table_series series[COMINE_PLOT_MAX_SERIES];
    int n_series;
    int n_points;
} table_chart;

static void chart_free(table_chart *c)
{
    for (int s = 0; s < c->n_series; s++) {
        free(c->series[s].name);
        free(c->series[s].points);
    }
}

/* Cut the next line out of [*p, end) (NUL-terminated in place, a trailing '\r' dropped);
 * NULL at the end. */
static char *next_line(char **p, char *end)
{
    if (*p >= end) return NULL;
    char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));
    char *stop = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    *stop = 0;
    if (stop > line && stop[-1] == '\r') stop[-1] = 0;
    return line;
}

static bool line_ignored(const char *line)
{
    while (*line == ' ' || *line == '\t') line++;
    return !*line || *line == '#';
}

/* Split a line at its tabs, in place, surrounding spaces trimmed: fields is (max); returns
 * the field count (when it exceeds max, only the first max are stored). */
static int split_tabs(char *line, char **fields, int max)
{
    int n = 0;
    for (char *f = line;;) {
        char *tab = strchr(f, '\t');
        if (tab) *tab = 0;
        while (*f == ' ') f++;
        char *e = f + strlen(f);
        while (e > f && e[-1] == ' ') *--e = 0;
        if (n < max) fields[n] = f;
        n++;
        if (!tab) return n;
        f = tab + 1;
    }
}

/* The column named `name`; fails naming the file, the header line and the columns there are. */
static comine_status find_column(int *col, const char *path, int header_line, char *const *names, int n_names,
                                 const char *name, const char *option)
{
    *col = -1;
    for (int i = 0; i < n_names; i++) {
        if (strcmp(names[i], name)) continue;
        if (*col >= 0)
            return comine_fail(COMINE_ERR_FORMAT, "%s:%d: column '%s' (%s) appears twice in the header", path,
                               header_line, name, option);
        *col = i;
    }
    if (*col >= 0) return COMINE_OK;
    char list[768];
    size_t len = 0;
    list[0] = 0;
    for (int i = 0; i < n_names && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s'%s'", i ? ", " : "", names[i]);
    return comine_fail(COMINE_ERR_FORMAT, "%s:%d: no column '%s' (%s); the columns are: %s", path, header_line, name,
                       option, list);
}

static comine_status field_number(double *v, const char *path, int line, const char *text, const char *column)
{
    if (comine_parse_double(text, v)) return COMINE_OK;
    return comine_fail(COMINE_ERR_FORMAT, "%s:%d: column '%s': '%s' is not a finite number", path, line, column, text);
}

static void series_add(table_series *s, table_point p)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->points = comine_realloc(s->points, (size_t)s->cap * sizeof *s->points);
    }
    s->points[s->n++] = p;
}

/* Read the table into one series per group value. */
static comine_status read_table(table_chart *c, const comine_plot_spec *spec)
{
    const char *path = spec->table;
    uint8_t *data;
    size_t size;
    comine_status st = comine_read_file(path, &data, &size);
    if (st) return st;
    char *p = (char *)data, *end = p + size, *text;
    int line = 0;
    while ((text = next_line(&p, end))) {
        line++;
        if (!line_ignored(text)) break;
    }
    if (!text) {
        free(data);
        return comine_fail(COMINE_ERR_FORMAT, "%s: empty: no header line of column names", path);
    }
    int header_line = line;
    int n_cols = 1;
    for (const char *t = text; *t; t++) n_cols += *t == '\t';
    char **names = comine_malloc((size_t)n_cols * sizeof *names);
    char **fields = comine_malloc((size_t)n_cols * sizeof *fields);
    split_tabs(text, names, n_cols);
    int cx, cy, cerr = -1, cgroup = -1;
    if ((st = find_column(&cx, path, header_line, names, n_cols, spec->x, "--x")) ||
        (st = find_column(&cy, path, header_line, names, n_cols, spec->y, "--y")) ||
        (spec->err && (st = find_column(&cerr, path, header_line, names, n_cols, spec->err, "--err"))) ||
        (spec->group && (st = find_column(&cgroup, path, header_line, names, n_cols, spec->group, "--group"))))
        goto done;
    while ((text = next_line(&p, end))) {
        line++;
        if (line_ignored(text)) continue;
        int nf = split_tabs(text, fields, n_cols);
        if (nf != n_cols) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: %d tab-separated field%s, the header (line %d) has %d", path,
                             line, nf, nf == 1 ? "" : "s", header_line, n_cols);
            goto done;
        }
        table_point pt = {.err = 0, .line = line};
        if ((st = field_number(&pt.x, path, line, fields[cx], names[cx])) ||
            (st = field_number(&pt.y, path, line, fields[cy], names[cy])) ||
            (cerr >= 0 && (st = field_number(&pt.err, path, line, fields[cerr], names[cerr]))))
            goto done;
        if (pt.err < 0) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: column '%s': %g is negative (an error bar is y +- err)", path,
                             line, names[cerr], pt.err);
            goto done;
        }
        const char *group = cgroup >= 0 ? fields[cgroup] : "";
        int s = 0;
        while (s < c->n_series && strcmp(c->series[s].name, group)) s++;
        if (s == c->n_series) {
            if (s == COMINE_PLOT_MAX_SERIES) {
                st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: column '%s': '%s' would be series %d; at most %d can be "
                                 "drawn", path, line, names[cgroup], group, s + 1, COMINE_PLOT_MAX_SERIES);
                goto done;
            }
            c->series[s].name = comine_strdup(group);
            c->n_series++;
        }
        series_add(&c->series[s], pt);
        c->n_points++;
    }
    if (c->n_points == 0)
        st = comine_fail(COMINE_ERR_FORMAT, "%s: no data rows after the header (line %d)", path, header_line);
done:
    free(names);
    free(fields);
    free(data);
    return st;
}

static int cmp_point(const void *pa, const void *pb)
{
    const table_point *a = pa, *b = pb;
    if (a->x != b->x) return a->x < b->x ? -1 : 1;
    return (a->line > b->line) - (a->line < b->line);
}

#ifdef COMINE_HAVE_PLPLOT
/* A copy of plain text for PLplot, which reads '#' as the start of an escape: '#' -> "##". */
static char *pl_text(const char *s)
{
    size_t n = strlen(s), hashes = 0;
    for (size_t i = 0; i < n; i++) hashes += s[i] == '#';
    char *out = comine_malloc(n + hashes + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        *o++ = s[i];
        if (s[i] == '#') *o++ = '#';
    }
    *o = 0;
    return out;
}

static bool draw_chart(const table_chart *c, const comine_plot_spec *spec, const char *tmp)
{
    /* series colours without the grid's grey (7) */
    static const PLINT colors[COMINE_PLOT_MAX_SERIES] = {2, 3, 4, 5, 6, 8, 9, 10};
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int s = 0; s < c->n_series; s++)
        for (int i = 0; i < c->series[s].n; i++) {
            const table_point *pt = &c->series[s].points[i];
            xmin = fmin(xmin, pt->x);
            xmax = fmax(xmax, pt->x);
            ymin = fmin(ymin, pt->y - pt->err);
            ymax = fmax(ymax, pt->y + pt->err);
        }
    bool legend = spec->group != NULL, bottom = false;
    comine_plot_range_pad(&xmin, &xmax);
    if (isfinite(spec->ymin) && isfinite(spec->ymax)) {
        /* a fixed range: the legend goes to the right corner with fewer points near it */
        double y0 = spec->ymin, y1 = spec->ymax, xr = xmin + 0.6 * (xmax - xmin);
        int top = 0, low = 0;
        for (int s = 0; s < c->n_series; s++)
            for (int i = 0; i < c->series[s].n; i++) {
                const table_point *pt = &c->series[s].points[i];
                if (pt->x < xr) continue;
                top += pt->y > y0 + 0.6 * (y1 - y0);
                low += pt->y < y0 + 0.4 * (y1 - y0);
            }
        bottom = top > low;
        ymin = y0;
        ymax = y1;
    } else {
        comine_plot_range_pad(&ymin, &ymax);
        if (legend) comine_plot_legend_room(ymin, &ymax, c->n_series);
    }
    char *title = pl_text(spec->title ? spec->title : "");
    char *xl = pl_text(spec->xlabel ? spec->xlabel : spec->x);
    char *yl = pl_text(spec->ylabel ? spec->ylabel : spec->y);
    char *labels[COMINE_PLOT_MAX_SERIES];
    int max_n = 1;
    for (int s = 0; s < c->n_series; s++) {
        labels[s] = pl_text(c->series[s].name);
        if (c->series[s].n > max_n) max_n = c->series[s].n;
    }
    PLFLT *x = comine_malloc((size_t)max_n * sizeof(PLFLT)), *y = comine_malloc((size_t)max_n * sizeof(PLFLT));
    PLFLT *lo = comine_malloc((size_t)max_n * sizeof(PLFLT)), *hi = comine_malloc((size_t)max_n * sizeof(PLFLT));

    pthread_mutex_lock(&comine_plot_lock);
    comine_plot_begin(tmp);
    comine_plot_frame(xmin, xmax, ymin, ymax, xl, yl, title);
    for (int s = 0; s < c->n_series; s++) {
        const table_series *ser = &c->series[s];
        for (int i = 0; i < ser->n; i++) {
            x[i] = ser->points[i].x;
            y[i] = ser->points[i].y;
            lo[i] = y[i] - ser->points[i].err;
            hi[i] = y[i] + ser->points[i].err;
        }
        plcol0(colors[s]);
        plwidth(1.5);
        if (spec->err) plerry(ser->n, x, lo, hi);
        plwidth(2.0);
        if (ser->n > 1) plline(ser->n, x, y);
        plpoin(ser->n, x, y, 17);
    }
    plwidth(1.0);
    if (legend) comine_plot_legend(c->n_series, (const char *const *)labels, colors, bottom);
    bool ok = comine_plot_end(tmp, spec->out);
    pthread_mutex_unlock(&comine_plot_lock);

    free(x);
    free(y);
    free(lo);
    free(hi);
    for (int s = 0; s < c->n_series; s++) free(labels[s]);
    free(title);
    free(xl);
    free(yl);
    return ok;
}
#endif

comine_status comine_plot_table(const comine_plot_spec *spec)
{
    if (!spec->table || !spec->x || !spec->y || !spec->out)
        return comine_fail(COMINE_ERR_ARG, "plot: the table, the x and y columns and the output PNG are required");
    bool fixed_y = isfinite(spec->ymin) && isfinite(spec->ymax);
    if (fixed_y && !(spec->ymin < spec->ymax))
        return comine_fail(COMINE_ERR_ARG, "plot: the y range [%g, %g] is empty", spec->ymin, spec->ymax);
    table_chart c = {0};
    comine_status st = read_table(&c, spec);
    if (st) goto done;
    for (int s = 0; s < c.n_series; s++)
        qsort(c.series[s].points, (size_t)c.series[s].n, sizeof(table_point), cmp_point);
    if (!comine_report_have_plots()) {
        st = comine_fail(COMINE_ERR_ARG, "%s: plots are unavailable: comine was built without PLplot, or PLplot has no "
                         "pngcairo driver (Debian: plplot-driver-cairo)", spec->out);
        goto done;
    }
#ifdef COMINE_HAVE_PLPLOT
    /* PLplot exits the process when it cannot open its file: check the folder first */
    char *dir = comine_path_dirname(spec->out);
    st = comine_mkdirs(dir);
    if (!st && access(dir, W_OK))
        st = comine_fail(COMINE_ERR_IO, "%s: the folder %s is not writable", spec->out, dir);
    free(dir);
    if (st) goto done;
    if (comine_path_is_dir(spec->out)) {
        st = comine_fail(COMINE_ERR_IO, "%s: is a folder, not a PNG file name", spec->out);
        goto done;
    }
    size_t tl = strlen(spec->out) + 32;
    char *tmp = comine_malloc(tl);
    snprintf(tmp, tl, "%s.tmp.%d.png", spec->out, (int)getpid());
    if (!draw_chart(&c, spec, tmp))
        st = comine_fail(COMINE_ERR_IO, "%s: PLplot wrote no PNG, or it could not be moved into place", spec->out);
    free(tmp);
#endif
done:
    chart_free(&c);
    return st;
}

/* ---- ROC chart ------------------------------------------------------------------------- */

comine_status comine_plot_roc(const char *png, const comine_roc_point *const *curves, const int *n_points,
                              const char *const *labels, int n_curves, const char *title)
{
    if (n_curves < 1 || n_curves > COMINE_PLOT_MAX_SERIES)
        return comine_fail(COMINE_ERR_ARG, "%s: a ROC chart holds 1 to %d curves, not %d", png,
                           COMINE_PLOT_MAX_SERIES, n_curves);
    double lo = 0;  /* log10 of the smallest FAR above 0 */
    for (int c = 0; c < n_curves; c++)
        for (int i = 0; i < n_points[c]; i++)
            if (curves[c][i].far > 0 && log10(curves[c][i].far) < lo) lo = log10(curves[c][i].far);
    if (lo == 0)
        return comine_fail(COMINE_ERR_ARG, "%s: the ROC has no point with a false accept rate above 0", png);
    if (!comine_report_have_plots())
        return comine_fail(COMINE_ERR_ARG, "%s: plots are unavailable: comine was built without PLplot, or PLplot has no "
                           "pngcairo driver (Debian: plplot-driver-cairo)", png);
#ifdef COMINE_HAVE_PLPLOT
    lo = floor(lo);
    if (lo < -9) lo = -9;
    char *dir = comine_path_dirname(png);
    comine_status st = comine_mkdirs(dir);
    if (!st && access(dir, W_OK)) st = comine_fail(COMINE_ERR_IO, "%s: the folder %s is not writable", png, dir);
    free(dir);
    if (st) return st;
    if (comine_path_is_dir(png)) return comine_fail(COMINE_ERR_IO, "%s: is a folder, not a PNG file name", png);
    static const PLINT colors[COMINE_PLOT_MAX_SERIES] = {2, 3, 4, 5, 6, 8, 9, 10};
    int max_n = 1;
    for (int c = 0; c < n_curves; c++) max_n = n_points[c] > max_n ? n_points[c] : max_n;
    PLFLT *x = comine_malloc((size_t)max_n * sizeof(PLFLT)), *y = comine_malloc((size_t)max_n * sizeof(PLFLT));
    char *pl_labels[COMINE_PLOT_MAX_SERIES];
    for (int c = 0; c < n_curves; c++) pl_labels[c] = pl_text(labels && labels[c] ? labels[c] : "");
    char *pl_title = pl_text(title ? title : "ROC");
    size_t tl = strlen(png) + 32;
    char *tmp = comine_malloc(tl);
    snprintf(tmp, tl, "%s.tmp.%d.png", png, (int)getpid());
    pthread_mutex_lock(&comine_plot_lock);
    comine_plot_begin(tmp);
    pladv(0);
    plvpor(0.09, 0.97, 0.11, 0.92);
    plwind(lo, 0.0, -0.02, 1.02);
    plcol0(7);
    plwidth(0.5);
    plbox("gl", 1, 0, "g", 0, 0);
    plcol0(1);
    plwidth(1.0);
    plbox("bcnstl", 1, 0, "bcnstv", 0, 0);
    pllab("false accept rate (FAR)", "true accept rate (TAR)", pl_title);
    for (int c = 0; c < n_curves; c++) {
        int m = 0;
        for (int i = 0; i < n_points[c]; i++) {
            if (!(curves[c][i].far > 0)) continue;
            double lx = log10(curves[c][i].far);
            if (lx < lo) continue;
            x[m] = lx;
            y[m++] = curves[c][i].tar;
        }
        plcol0(colors[c]);
        plwidth(2.0);
        if (m > 1) plline(m, x, y);
        else if (m == 1) plpoin(1, x, y, 17);
    }
    plwidth(1.0);
    if (labels) comine_plot_legend(n_curves, (const char *const *)pl_labels, colors, true);
    bool ok = comine_plot_end(tmp, png);
    pthread_mutex_unlock(&comine_plot_lock);
    free(tmp);
    free(x);
    free(y);
    free(pl_title);
    for (int c = 0; c < n_curves; c++) free(pl_labels[c]);
    if (!ok) return comine_fail(COMINE_ERR_IO, "%s: PLplot wrote no PNG, or it could not be moved into place", png);
    return COMINE_OK;
#else
    return COMINE_OK;
#endif
}

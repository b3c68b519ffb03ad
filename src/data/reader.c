/* reader.c: what every data set reader (reader_*.c) uses while it fills a data set: the
 * list of open-time problems (things skipped, which the data set is usable without) and the
 * check that labels 0 .. C-1 all have samples.  Assumes ds->reader is set (messages name
 * samples through it); uses nothing of src/data but data_internal.h's declarations. */
#include "data_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void comine_dataset_add_problem(comine_dataset *ds, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ds->problems = comine_realloc(ds->problems, sizeof(char *) * (ds->num_problems + 1));
    ds->problems[ds->num_problems++] = comine_strdup(buf);
}

comine_status comine_dataset_check_gaps(const comine_dataset *ds, const char *source)
{
    if (ds->num_classes <= 0) return COMINE_OK;
    if (ds->num_classes > 4 * ds->n + 4096) {
        /* Fewer samples than labels: gaps for sure; say so without counting to a huge label. */
        int top = 0;
        for (int i = 1; i < ds->n; i++)
            if (ds->samples[i].label > ds->samples[top].label) top = i;
        return comine_fail(COMINE_ERR_FORMAT,
                           "%s: labels must be 0..C-1 without gaps, but the largest label is %d with only %d sample(s) "
                           "(%s)", source, ds->samples[top].label, ds->n, ds->reader->sample_name(ds, top));
    }
    int *seen = comine_calloc(ds->num_classes, sizeof(int));
    for (int i = 0; i < ds->n; i++) seen[ds->samples[i].label]++;
    int missing = 0;
    char buf[512];
    size_t k = 0;
    buf[0] = 0;
    for (int c = 0; c < ds->num_classes; c++) {
        if (seen[c]) continue;
        if (missing < 12 && k < sizeof buf - 32) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", missing ? ", " : "", c);
        missing++;
    }
    free(seen);
    if (!missing) return COMINE_OK;
    return comine_fail(COMINE_ERR_FORMAT,
                       "%s: labels must be 0..%d without gaps, but %d label(s) have no samples: %s%s",
                       source, ds->num_classes - 1, missing, buf, missing > 12 ? ", ..." : "");
}

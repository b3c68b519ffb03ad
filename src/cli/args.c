/* args.c: table-driven option parsing with validation and generated --help. */
#include "cli/args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "comine/core.h"

#define MAX_OPTS 128
static bool given[MAX_OPTS];
static const cli_opt *given_table;

int cli_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "comine %s: ", command);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see: comine %s --help)\n", command);
    va_end(ap);
    return 2;
}

static bool choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    const char *p = choices;
    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0) return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

static int set_value(const char *command, const cli_opt *o, const char *v)
{
    switch (o->type) {
    case ARG_STR:
        *(const char **)o->dst = v;
        return 0;
    case ARG_CHOICE:
        if (!choice_ok(o->choices, v))
            return cli_error(command, "option --%s: '%s' is not one of %s", o->name, v, o->choices);
        *(const char **)o->dst = v;
        return 0;
    case ARG_INT: {
        long x;
        if (!comine_parse_int(v, &x) || x < -2147483647L || x > 2147483647L)
            return cli_error(command, "option --%s: '%s' is not an integer", o->name, v);
        if (o->min < o->max && (x < o->min || x > o->max))
            return cli_error(command, "option --%s: %ld is outside [%g, %g]", o->name, x, o->min, o->max);
        *(int *)o->dst = (int)x;
        return 0;
    }
    case ARG_U64: {
        char *end;
        if (!*v || *v == '-') return cli_error(command, "option --%s: '%s' is not a non-negative integer", o->name, v);
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno == ERANGE) return cli_error(command, "option --%s: '%s' is too large", o->name, v);
        if (*end) return cli_error(command, "option --%s: '%s' is not a non-negative integer", o->name, v);
        *(unsigned long long *)o->dst = x;
        return 0;
    }
    case ARG_FLOAT: {
        double x;
        if (!comine_parse_double(v, &x)) return cli_error(command, "option --%s: '%s' is not a number", o->name, v);
        if (o->min < o->max && (x < o->min || x > o->max))
            return cli_error(command, "option --%s: %g is outside [%g, %g]", o->name, x, o->min, o->max);
        *(double *)o->dst = x;
        return 0;
    }
    case ARG_ALIAS:
        break;
    case ARG_FLAG:
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) *(bool *)o->dst = true;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) *(bool *)o->dst = false;
        else return cli_error(command, "option --%s: '%s' is not a boolean", o->name, v);
        return 0;
    }
    return 2;
}

static int find_option(const cli_opt *opts, int count, const char *name, size_t nlen)
{
    for (int j = 0; j < count; j++)
        if (strlen(opts[j].name) == nlen && !strncmp(opts[j].name, name, nlen)) return j;
    return -1;
}

/* Edit distance (insertions, deletions, substitutions) between a[0..na) and b, capped at 9. */
static int edit_distance(const char *a, size_t na, const char *b)
{
    size_t nb = strlen(b);
    if (na > 40 || nb > 40) return 9;
    int row[41];
    for (size_t j = 0; j <= nb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb] < 9 ? row[nb] : 9;
}

/* The known option nearest to an unknown name: within 2 edits (1 for names of 4 letters or
 * fewer), or the only option the name is a prefix of; NULL when nothing is close. */
static const char *nearest_option(const cli_opt *opts, const char *name, size_t nlen)
{
    const char *best = NULL, *prefix_of = NULL;
    int best_d = 9, prefixes = 0;
    for (const cli_opt *o = opts; o->name; o++) {
        int d = edit_distance(name, nlen, o->name);
        if (d < best_d) best_d = d, best = o->name;
        if (nlen >= 3 && !strncmp(o->name, name, nlen)) prefixes++, prefix_of = o->name;
    }
    if (best && best_d <= (nlen <= 4 ? 1 : 2)) return best;
    return prefixes == 1 ? prefix_of : NULL;
}

void cli_print_help(const char *command, const char *summary, const cli_opt *opts)
{
    printf("usage: comine %s [options]\n%s\n\noptions:\n", command, summary);
    for (const cli_opt *o = opts; o->name; o++) {
        if (o->type == ARG_ALIAS) continue;
        char left[96];
        const char *meta = o->type == ARG_FLAG ? "" : o->type == ARG_CHOICE ? " CHOICE" :
                           o->type == ARG_STR ? " VALUE" : " N";
        snprintf(left, sizeof left, "  --%s%s", o->name, meta);
        printf("%-28s %s", left, o->help ? o->help : "");
        if (o->type == ARG_CHOICE) printf(" (%s)", o->choices);
        if (o->required) printf(" [required]");
        else if (o->def) printf(" [default: %s]", o->def);
        printf("\n");
    }
    printf("  %-26s show this help\n", "--help");
}

int cli_parse(const char *command, const char *summary, cli_opt *opts, int argc, char **argv)
{
    int count = 0;
    for (cli_opt *o = opts; o->name; o++) count++;
    COMINE_ASSERT(count <= MAX_OPTS);
    memset(given, 0, sizeof given);
    given_table = opts;
    for (int i = 0; i < count; i++) {
        cli_opt *o = &opts[i];
        if (o->type == ARG_ALIAS) continue;
        if (o->type == ARG_FLAG) *(bool *)o->dst = false;
        if (o->def) {
            int rc = set_value(command, o, o->def);
            COMINE_ASSERT(rc == 0);
        } else if (o->type == ARG_STR || o->type == ARG_CHOICE) {
            *(const char **)o->dst = NULL;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cli_print_help(command, summary, opts);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) return cli_error(command, "unexpected argument '%s'", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int k = find_option(opts, count, name, nlen);
        if (k < 0) {
            const char *near = nearest_option(opts, name, nlen);
            if (near) return cli_error(command, "unknown option '%.*s' (did you mean --%s?)", (int)(nlen + 2), a, near);
            return cli_error(command, "unknown option '%.*s'", (int)(nlen + 2), a);
        }
        if (opts[k].type == ARG_ALIAS) {
            int target = find_option(opts, count, opts[k].def, strlen(opts[k].def));
            COMINE_ASSERT(target >= 0 && opts[target].type != ARG_ALIAS);
            fprintf(stderr, "comine %s: warning: --%s is now --%s\n", command, opts[k].name, opts[target].name);
            k = target;
        }
        const char *v;
        if (eq) v = eq + 1;
        else if (opts[k].type == ARG_FLAG) v = "1";
        else if (i + 1 < argc) v = argv[++i];
        else return cli_error(command, "option --%s needs a value", opts[k].name);
        int rc = set_value(command, &opts[k], v);
        if (rc) return rc;
        given[k] = true;
    }
    for (int i = 0; i < count; i++)
        if (opts[i].required && !given[i]) return cli_error(command, "option --%s is required", opts[i].name);
    return 0;
}

bool cli_given(const cli_opt *opts, const char *name)
{
    if (opts != given_table) return false;
    for (int i = 0; opts[i].name; i++)
        if (!strcmp(opts[i].name, name)) return given[i];
    return false;
}

int cli_check_out_file(const char *command, const char *option, const char *path)
{
    if (!path) return 0;
    struct stat sb;
    if (!*path) return cli_error(command, "option --%s: an empty path", option);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return cli_error(command, "option --%s: %s is a folder; this option names a file to write (give a file name "
                         "inside it)", option, path);
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        if (stat(dir, &sb) == 0 && !S_ISDIR(sb.st_mode))
            return cli_error(command, "option --%s: %s: %s is not a folder", option, path, dir);
        if (comine_mkdirs(dir) != COMINE_OK)
            return cli_error(command, "option --%s: %s: %s", option, path, comine_last_error());
    }
    return 0;
}

int cli_check_out_dir(const char *command, const char *option, const char *path)
{
    if (!path) return 0;
    struct stat sb;
    if (!*path) return cli_error(command, "option --%s: an empty path", option);
    if (stat(path, &sb) == 0 && !S_ISDIR(sb.st_mode))
        return cli_error(command, "option --%s: %s exists and is not a folder; this option names a folder to fill",
                         option, path);
    return 0;
}

char *cli_run_arg(const char *run_dir, const char *name)
{
    char *path = comine_path_join(run_dir, "args.txt");
    uint8_t *data = NULL;
    size_t size;
    char *value = NULL;
    if (comine_path_exists(path) && comine_read_file(path, &data, &size) == COMINE_OK) {
        char flag[64];
        size_t fl = (size_t)snprintf(flag, sizeof flag, "--%s", name);
        for (char *line = (char *)data; line && *line;) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = 0;
            if (!strcmp(line, flag) && nl && nl[1]) {
                char *v = nl + 1, *e = strchr(v, '\n');
                free(value);
                value = e ? strndup(v, (size_t)(e - v)) : comine_strdup(v);
            } else if (!strncmp(line, flag, fl) && line[fl] == '=') {
                free(value);
                value = comine_strdup(line + fl + 1);
            }
            line = nl ? nl + 1 : NULL;
        }
    }
    free(data);
    free(path);
    return value;
}

/* args.h: the option parser every command uses.  A command lists its options in a
 * table (name, type, destination, default, help); the parser fills defaults, parses
 * `--name value` / `--name=value` / `--flag`, validates types, choices and ranges, and
 * prints `--help` with every default.  Errors name the option and say why; an unknown option
 * gets the nearest known name as a suggestion. */
#ifndef COMINE_CLI_ARGS_H
#define COMINE_CLI_ARGS_H

#include <stdbool.h>

/* ARG_ALIAS: an old name kept for scripts; `def` holds the current option's name.  Giving it
 * sets that option and prints a warning with the new name; --help does not list it. */
typedef enum { ARG_STR, ARG_INT, ARG_FLOAT, ARG_FLAG, ARG_CHOICE, ARG_U64, ARG_ALIAS } cli_arg_type;

typedef struct cli_opt {
    const char *name;    /* without the leading "--" */
    cli_arg_type type;
    void *dst;           /* const char ** (STR, CHOICE), int *, double *, bool *, unsigned long long * */
    const char *def;     /* default as text; NULL = none (the value stays NULL / 0) */
    const char *help;
    const char *choices; /* ARG_CHOICE: "a|b|c" */
    double min, max;     /* ARG_INT / ARG_FLOAT: checked when min < max */
    bool required;
} cli_opt;

/* Returns 0 when parsed, 1 when --help was printed (exit 0), 2 on an error (message printed). */
int cli_parse(const char *command, const char *summary, cli_opt *opts, int argc, char **argv);
void cli_print_help(const char *command, const char *summary, const cli_opt *opts);
/* Print "comine COMMAND: option --NAME: WHY" and return 2 (for checks after parsing). */
int cli_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The output convention of every command: an option that names a file to write (`--out` of
 * clean, corrupt, dedup, embed, import, pairs, plot; --onnx, --roc, --plot, --merge, --out-rec)
 * must not be an existing folder, and its folder is created when missing; one that names a folder the
 * command fills (`--out` of train, synth and report) must not be an existing file (it is created
 * when missing).  Checked before any work: 0, or cli_error's 2 with a message naming the option.
 * path NULL: nothing to check. */
int cli_check_out_file(const char *command, const char *option, const char *path);
int cli_check_out_dir(const char *command, const char *option, const char *path);
/* True when the option was given on the command line (not only its default). */
bool cli_given(const cli_opt *opts, const char *name);
/* The value of `--NAME V` / `--NAME=V` in RUN/args.txt (a run's command line, one argument a
 * line; the last one given wins), malloc'd; NULL when the file or the option is absent. */
char *cli_run_arg(const char *run_dir, const char *name);

#endif

/* fuzz_args.c: libFuzzer harness of the command-line option parser (cli_parse): the input
 * is split at NUL bytes into argv, parsed against a table with every option type. */
#include "fuzz_common.h"

#include "cli/args.h"

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = comine_malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "fuzz";
    for (size_t i = 0; i <= size && argc < MAX_ARGS;) {
        argv[argc++] = buf + i;
        size_t n = strlen(buf + i);
        i += n + 1;
    }
    argv[argc] = NULL;
    const char *s = NULL, *choice = NULL, *req = NULL;
    int n = 0;
    double f = 0;
    bool flag = false, flag2 = false;
    unsigned long long u = 0;
    cli_opt opts[] = {
        {"data", ARG_STR, &s, NULL, "a string"},
        {"mode", ARG_CHOICE, &choice, "comining", "a choice", "arcface|self|comining"},
        {"epochs", ARG_INT, &n, "24", "an integer", NULL, 1, 100000},
        {"lr", ARG_FLOAT, &f, "0.1", "a number", NULL, 1e-9, 100},
        {"flip", ARG_FLAG, &flag, "1", "a flag on by default"},
        {"quiet", ARG_FLAG, &flag2, NULL, "a flag"},
        {"seed", ARG_U64, &u, "1", "a u64"},
        {"need", ARG_STR, &req, NULL, "a required string", NULL, 0, 0, false},
        {0},
    };
    FILE *saved_out = stdout, *saved_err = stderr;
    FILE *null_out = fopen("/dev/null", "w");
    if (null_out) stdout = stderr = null_out;
    int rc = cli_parse("fuzz", "option parser fuzzing", opts, argc, argv);
    if (rc == 0) {
        COMINE_ASSERT(n >= 1 && n <= 100000);
        COMINE_ASSERT(f >= 1e-9 && f <= 100);
        COMINE_ASSERT(choice != NULL);
        (void)cli_given(opts, "lr");
    }
    stdout = saved_out;
    stderr = saved_err;
    if (null_out) fclose(null_out);
    free(buf);
    return 0;
}

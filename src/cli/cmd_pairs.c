/* cmd_pairs.c: `comine pairs`: make a verification pairs list from a labelled data set. */
#include <stdio.h>

#include "cli/args.h"
#include "comine/pairgen.h"

const char comine_cmd_pairs_summary[] = "make matched/mismatched verification pairs from a labelled data set";

int comine_cmd_pairs(int argc, char **argv)
{
    const char *data, *out, *root;
    int n;
    unsigned long long seed;
    cli_opt opts[] = {
        {"data", ARG_STR, &data, NULL, "data set: a folder of identity folders, a list file or a .rec file", NULL, 0, 0, true},
        {"root", ARG_STR, &root, NULL, "list files: folder the paths are relative to"},
        {"out", ARG_STR, &out, NULL, "pairs file to write (pathA<TAB>pathB<TAB>same)", NULL, 0, 0, true},
        {"count", ARG_INT, &n, "300", "matched pairs, and as many mismatched", NULL, 1, 10000000},
        {"pairs", ARG_ALIAS, NULL, "count"},
        {"seed", ARG_U64, &seed, "1", "random seed"},
        {0},
    };
    int rc = cli_parse("pairs", comine_cmd_pairs_summary, opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if ((rc = cli_check_out_file("pairs", "out", out))) return rc;
    comine_dataset *ds;
    comine_dataset_opts dopts = {.root = root};
    if (comine_dataset_open(&ds, data, &dopts) != COMINE_OK) {
        fprintf(stderr, "comine pairs: %s\n", comine_last_error());
        return 1;
    }
    comine_status st = comine_pairs_generate(ds, n, seed, out);
    comine_dataset_free(ds);
    if (st != COMINE_OK) {
        fprintf(stderr, "comine pairs: %s\n", comine_last_error());
        return 1;
    }
    printf("wrote %d matched + %d mismatched pairs to %s\n", n, n, out);
    return 0;
}

/* pairgen.c: seeded matched / mismatched verification pairs from a labelled data set. */
#include "comine/pairgen.h"

#include <stdlib.h>
#include <string.h>

typedef struct pair_key { int a, b; } pair_key;

static int cmp_key(const void *x, const void *y)
{
    const pair_key *p = x, *q = y;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    return (p->b > q->b) - (p->b < q->b);
}

/* Whether (a, b) or (b, a) is among the first n keys (kept sorted by insertion). */
static int seen_insert(pair_key *keys, int *n, int a, int b)
{
    pair_key k = {a < b ? a : b, a < b ? b : a};
    int lo = 0, hi = *n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        int c = cmp_key(&keys[mid], &k);
        if (c == 0) return 1;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    memmove(&keys[lo + 1], &keys[lo], (size_t)(*n - lo) * sizeof *keys);
    keys[lo] = k;
    (*n)++;
    return 0;
}

static const char *relative(const char *path, const char *base)
{
    size_t n = strlen(base);
    while (n > 1 && base[n - 1] == '/') n--;
    if (strncmp(path, base, n) == 0 && path[n] == '/') return path + n + 1;
    return path;
}

comine_status comine_pairs_generate(const comine_dataset *ds, int n_pairs, uint64_t seed, const char *out_path)
{
    if (n_pairs < 1) return comine_fail(COMINE_ERR_ARG, "the number of pairs must be >= 1");
    int K = ds->num_classes;
    /* samples of each identity */
    int *count = comine_calloc(K + 1, sizeof(int));
    for (int i = 0; i < ds->n; i++) count[ds->samples[i].label + 1]++;
    for (int k = 0; k < K; k++) count[k + 1] += count[k];
    int *members = comine_malloc((size_t)ds->n * sizeof(int));
    int *fill = comine_calloc(K, sizeof(int));
    for (int i = 0; i < ds->n; i++) {
        int l = ds->samples[i].label;
        members[count[l] + fill[l]++] = i;
    }
    int *multi = comine_malloc((size_t)K * sizeof(int)), n_multi = 0, n_nonempty = 0;
    long long matched_possible = 0;
    for (int k = 0; k < K; k++) {
        int c = count[k + 1] - count[k];
        if (c >= 2) multi[n_multi++] = k;
        if (c >= 1) n_nonempty++;
        matched_possible += (long long)c * (c - 1) / 2;
    }
    comine_status st = COMINE_OK;
    if (n_multi == 0 || n_nonempty < 2)
        st = comine_fail(COMINE_ERR_ARG, "%s: pairs need 2 identities and one with 2 images", ds->source);
    else if (matched_possible < 2LL * n_pairs)
        st = comine_fail(COMINE_ERR_ARG, "%s: only %lld distinct matched pairs exist; ask for at most %lld",
                         ds->source, matched_possible, matched_possible / 2);
    if (st != COMINE_OK) {
        free(count), free(members), free(fill), free(multi);
        return st;
    }
    comine_rng rng;
    comine_rng_seed(&rng, seed, COMINE_STREAM_EVAL);
    pair_key *seen = comine_malloc((size_t)2 * n_pairs * sizeof *seen);
    int n_seen = 0;
    comine_atomic_file af;
    st = comine_atomic_open(&af, out_path);
    for (int p = 0; st == COMINE_OK && p < 2 * n_pairs; p++) {
        int same = p % 2 == 0, a = 0, b = 0, tries = 0;
        do {
            if (++tries > 1000000) {
                comine_atomic_abort(&af);
                st = comine_fail(COMINE_ERR_ARG, "%s: cannot find %d distinct pairs", ds->source, n_pairs);
                break;
            }
            if (same) {
                int k = multi[comine_rng_below(&rng, (uint32_t)n_multi)];
                int c = count[k + 1] - count[k];
                int i = (int)comine_rng_below(&rng, (uint32_t)c), j = (int)comine_rng_below(&rng, (uint32_t)c - 1);
                if (j >= i) j++;
                a = members[count[k] + i];
                b = members[count[k] + j];
            } else {
                a = (int)comine_rng_below(&rng, (uint32_t)ds->n);
                b = (int)comine_rng_below(&rng, (uint32_t)ds->n);
                if (ds->samples[a].label == ds->samples[b].label) continue;
            }
        } while (seen_insert(seen, &n_seen, a, b));
        if (st != COMINE_OK) break;
        fprintf(af.fp, "%s\t%s\t%d\n", relative(ds->samples[a].path, ds->source),
                relative(ds->samples[b].path, ds->source), same);
    }
    if (st == COMINE_OK) st = comine_atomic_commit(&af);
    free(count), free(members), free(fill), free(multi), free(seen);
    return st;
}

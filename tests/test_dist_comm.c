/* test_dist_comm.c: the communication layer (dist.h).  Run alone it checks the one-rank
 * layer (every collective is a copy or nothing); CTest also runs it under mpiexec with 2 and
 * 3 ranks (test_dist_comm_np2/np3), where each collective is checked against the sums,
 * maxima and gathers computed locally from what each rank is known to hold.  Rank 0 prints. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/dist.h"

static int fails = 0;

static void check(int ok, const char *what)
{
    int bad = !ok;
    comine_dist_allreduce_max_i32(&bad, 1);
    if (comine_dist_rank() == 0) printf("%s %s (ranks %d)\n", bad ? "FAIL" : "ok  ", what, comine_dist_size());
    fails += bad;
}

int main(void)
{
    if (comine_dist_init() != COMINE_OK) {
        fprintf(stderr, "FAIL init: %s\n", comine_last_error());
        return 1;
    }
    const int r = comine_dist_rank(), P = comine_dist_size();

    /* slices: contiguous, in rank order, sizes within one, covering the batch */
    int ok = 1;
    for (int n = 0; n <= 40; n++)
        for (int p = 1; p <= 5; p++) {
            int prev_hi = 0, mn = n, mx = 0;
            for (int q = 0; q < p; q++) {
                int lo, hi;
                comine_dist_slice(n, q, p, &lo, &hi);
                ok = ok && lo == prev_hi && hi >= lo;
                prev_hi = hi;
                if (hi - lo < mn) mn = hi - lo;
                if (hi - lo > mx) mx = hi - lo;
            }
            ok = ok && prev_hi == n && mx - mn <= 1;
        }
    check(ok, "comine_dist_slice: contiguous, rank order, sizes within one, whole batch");

    /* all-reduce sum and max of floats, doubles, ints */
    enum { N = 1000 };
    float f[N];
    double d[N];
    int k[N];
    for (int i = 0; i < N; i++) {
        f[i] = (float)(i % 7) + 0.25f * (float)r;
        d[i] = 1e-3 * i + r;
        k[i] = i * (r + 1);
    }
    comine_dist_allreduce_sum_f32(f, N);
    comine_dist_allreduce_sum_f64(d, N);
    comine_dist_allreduce_max_i32(k, N);
    double max_err = 0;
    ok = 1;
    for (int i = 0; i < N; i++) {
        double want_f = P * (double)(i % 7) + 0.25 * P * (P - 1) / 2.0;
        double want_d = P * 1e-3 * i + P * (P - 1) / 2.0;
        max_err = fmax(max_err, fabs(f[i] - want_f));
        max_err = fmax(max_err, fabs(d[i] - want_d));
        ok = ok && k[i] == i * P;
    }
    check(ok && max_err < 1e-6, "all-reduce sum (float, double) and max (int)");
    float m[3] = {(float)r, -(float)r, 1.5f};
    comine_dist_allreduce_max_f32(m, 3);
    check(m[0] == (float)(P - 1) && m[1] == 0.0f && m[2] == 1.5f, "all-reduce max (float)");

    /* all-gather of uneven slices, from a separate buffer and in place */
    int n = 11, counts[64], lo, hi;
    for (int q = 0; q < P; q++) {
        comine_dist_slice(n, q, P, &lo, &hi);
        counts[q] = hi - lo;
    }
    comine_dist_slice(n, r, P, &lo, &hi);
    float mine[16], all[16], inplace[16];
    for (int i = lo; i < hi; i++) mine[i - lo] = inplace[i] = 10.0f * i + 0.5f;
    comine_dist_allgatherv(all, mine, counts, sizeof(float));
    comine_dist_allgatherv(inplace, inplace + lo, counts, sizeof(float));
    ok = 1;
    for (int i = 0; i < n; i++) ok = ok && all[i] == 10.0f * i + 0.5f && inplace[i] == all[i];
    check(ok, "all-gather of uneven slices (11 samples), copied and in place");
    unsigned char bytes[11], mine_b[11];
    for (int i = lo; i < hi; i++) mine_b[i - lo] = (unsigned char)(3 * i);
    comine_dist_allgatherv(bytes, mine_b, counts, 1);
    ok = 1;
    for (int i = 0; i < n; i++) ok = ok && bytes[i] == (unsigned char)(3 * i);
    check(ok, "all-gather of bytes");

    /* broadcast from the last rank; barrier */
    char msg[32] = "";
    if (r == P - 1) snprintf(msg, sizeof msg, "from rank %d", r);
    comine_dist_broadcast(msg, sizeof msg, P - 1);
    char want[32];
    snprintf(want, sizeof want, "from rank %d", P - 1);
    check(!strcmp(msg, want), "broadcast from the last rank");
    comine_dist_barrier();
    check(P == 1 ? comine_dist_bytes_sent() == 0 : comine_dist_bytes_sent() > 0,
          "bytes handed to the collectives are counted (none with one rank)");

    comine_dist_finalize();
    return fails ? 1 : 0;
}

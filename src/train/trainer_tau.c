/* trainer_tau.c: `train --tau auto` (trainer_impl.h): the noise rate estimated from the two
 * peers once they have learnt the clean faces and before the drop rate grows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/dist.h"
#include "comine/estimate.h"
#include "train/trainer_impl.h"

#define TAU_FILE "tau_estimate.json"
#define TAU_MAX 0.9 /* a larger drop rate leaves too little to train on */

static double num_or_nan(double v) { return isfinite(v) ? v : -1; }

comine_status comine_trainer_tau_estimate(trainer *t)
{
    comine_tau_estimate e;
    comine_status st = comine_estimate_tau(&e, t->cos_snapshot, t->ds->n, t->peers.n, NULL);
    if (st != COMINE_OK) return comine_fail(st, "--tau auto: %s", comine_last_error());
    double tau = e.tau < 0 ? 0 : e.tau > TAU_MAX ? TAU_MAX : e.tau;
    t->tau = (float)tau;
    t->tau_estimate = e.tau;
    if (comine_dist_rank() != 0) return COMINE_OK;
    comine_progress("--tau auto: estimated noise rate %.3f (%s; Beta mixture %.3f, Gaussian mixture %.3f, mirror "
                    "%.3f; %d samples); the drop rate grows to %.3f by epoch %d",
                    e.tau, comine_tau_method_name(e.method), e.beta, e.mixture, e.mirror, e.n, tau,
                    t->cfg->tk > t->epoch + 1 ? t->cfg->tk + 1 : t->epoch + 2);
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "{\"epoch\": %d, \"tau_estimate\": %.6f, \"tau\": %.6f, \"method\": \"%s\", \"beta\": %.6f, "
                     "\"mixture\": %.6f, \"mirror\": %.6f, \"samples\": %d}\n",
                     t->epoch, e.tau, tau, comine_tau_method_name(e.method), num_or_nan(e.beta),
                     num_or_nan(e.mixture), num_or_nan(e.mirror), e.n);
    char *path = comine_path_join(t->cfg->out, TAU_FILE);
    st = comine_write_file_atomic(path, buf, (size_t)n);
    free(path);
    return st;
}

comine_status comine_trainer_tau_restore(trainer *t)
{
    if (!t->cfg->tau_auto || t->epoch < COMINE_TAU_AUTO_EPOCHS) return COMINE_OK;
    char *path = comine_path_join(t->cfg->out, TAU_FILE);
    uint8_t *data = NULL;
    size_t size = 0; /* the data is NUL-terminated */
    comine_status st = comine_read_file(path, &data, &size);
    double est = NAN, tau = NAN;
    if (st == COMINE_OK) {
        const char *a = strstr((const char *)data, "\"tau_estimate\": "), *b = strstr((const char *)data, "\"tau\": ");
        if (!a || !b || sscanf(a + 16, "%lf", &est) != 1 || sscanf(b + 7, "%lf", &tau) != 1 || !(tau >= 0 && tau <= 1))
            st = comine_fail(COMINE_ERR_FORMAT, "%s: not the estimate --tau auto writes", path);
    } else {
        st = comine_fail(st, "--tau auto: the run is past its estimate but %s cannot be read (%s)", path,
                         comine_last_error());
    }
    free(data);
    free(path);
    if (st != COMINE_OK) return st;
    t->tau = (float)tau;
    t->tau_estimate = est;
    return COMINE_OK;
}

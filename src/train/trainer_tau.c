/* trainer_tau.c: `train --tau auto` (trainer_impl.h): the noise rate estimated by
 * cross-fitting before the run starts (comine_tau_crossfit), kept in RUN/tau_estimate.json so
 * that a resumed run drops at the same rate. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comine/dist.h"
#include "comine/estimate.h"
#include "train/trainer_impl.h"

#define TAU_FILE "tau_estimate.json"
#define TAU_DIR "tau_crossfit"
#define TAU_MAX 0.9 /* a larger drop rate leaves too little to train on */

/* The estimate an earlier start of the run wrote: 1 read, 0 none, -1 unreadable (error set). */
static int read_estimate(const char *path, double *est, double *tau)
{
    if (!comine_path_exists(path)) return 0;
    uint8_t *data = NULL;
    size_t size = 0; /* the data is NUL-terminated */
    if (comine_read_file(path, &data, &size) != COMINE_OK) return -1;
    const char *a = strstr((const char *)data, "\"tau_estimate\": "), *b = strstr((const char *)data, "\"tau\": ");
    int ok = a && b && sscanf(a + 16, "%lf", est) == 1 && sscanf(b + 7, "%lf", tau) == 1 && *tau >= 0 && *tau <= 1;
    free(data);
    if (!ok)
        comine_fail(COMINE_ERR_FORMAT, "%s: not the estimate --tau auto writes (delete it to estimate again)", path);
    return ok ? 1 : -1;
}

comine_status comine_trainer_tau_auto(comine_train_cfg *cfg, char *msg, size_t msg_size)
{
    char *path = comine_path_join(cfg->out, TAU_FILE);
    double est = NAN, tau = NAN;
    int found = 0;
    if (comine_dist_rank() == 0) found = read_estimate(path, &est, &tau);
    if (comine_dist_size() > 1) { /* every rank drops at rank 0's rate */
        double msg[3] = {found, est, tau};
        comine_dist_broadcast(msg, sizeof msg, 0);
        found = (int)msg[0], est = msg[1], tau = msg[2];
        if (found < 0 && comine_dist_rank() != 0) comine_fail(COMINE_ERR_FORMAT, "%s: unreadable on rank 0", path);
    }
    comine_status st = found < 0 ? COMINE_ERR_FORMAT : COMINE_OK;
    if (found == 0) {
        char *dir = comine_path_join(cfg->out, TAU_DIR);
        double lambda = NAN;
        int n = 0;
        comine_crossfit_opts o = {.folds = cfg->tau_folds, .epochs = cfg->tau_epochs, .rounds = cfg->tau_rounds,
                                  .by_image = cfg->tau_by_image};
        st = comine_tau_crossfit(&est, &lambda, &n, NULL, cfg, &o, dir);
        free(dir);
        if (st == COMINE_OK) {
            tau = est < 0 ? 0 : est > TAU_MAX ? TAU_MAX : est;
            snprintf(msg, msg_size, "--tau auto: estimated noise rate %.3f (cross-fitted, Storey's lambda %.2f, %d "
                     "samples); the drop rate grows to %.3f", est, lambda, n, tau);
            if (comine_dist_rank() == 0) {
                char buf[256];
                int len = snprintf(buf, sizeof buf,
                                   "{\"tau_estimate\": %.6f, \"tau\": %.6f, \"method\": \"crossfit\", "
                                   "\"lambda\": %.2f, "
                                   "\"samples\": %d, \"epochs\": %d, \"rounds\": %d, \"folds\": %d, "
                                   "\"by_image\": %g}\n",
                                   est, tau, lambda, n, cfg->tau_epochs, cfg->tau_rounds, cfg->tau_folds,
                                   cfg->tau_by_image);
                st = comine_write_file_atomic(path, buf, (size_t)len);
            }
        }
    }
    if (found == 1)
        snprintf(msg, msg_size, "--tau auto: noise rate %.3f read from %s; the drop rate grows to %.3f", est, path,
                 tau);
    free(path);
    if (st != COMINE_OK) return comine_fail(st, "--tau auto: %s", comine_last_error());
    cfg->tau = (float)tau;
    return COMINE_OK;
}

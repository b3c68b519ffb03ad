/* trainer.c: the epoch loop of `comine train`.  Each mini-batch goes through the training
 * step (step.h); around it the trainer keeps what the method's reports need: per-epoch
 * accumulators (losses, sets, cosines, detection counts), the noise votes of every sample,
 * per-epoch metrics, checkpoints, the collapse alarm, the stop after too many non-finite
 * steps in a row and SIGINT/SIGTERM handling.  Assumes the data set fits the head
 * (labels < K).
 *
 * Under a launcher (dist.h, P ranks) every rank runs this loop on the same global batches
 * (the loader's order and augmentation do not depend on P) and the step (step.h) works on
 * the rank's slice; what the trainer keeps (accumulators, votes) is computed from the
 * gathered global figures, so it is the same on every rank.  Rank 0 alone writes the run
 * folder (metrics, noise.csv, checkpoints, models) and prints; a stop request is agreed by
 * all ranks at the end of a step. */
#include "train/trainer_impl.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "comine/dist.h"
#include "comine/eval.h"
#include "train/trainer_val.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

void comine_train_cfg_default(comine_train_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    comine_arch_default(&cfg->arch, "iresnet18");
    cfg->select.mode = COMINE_MODE_COMINING;
    cfg->select.reweight = COMINE_REWEIGHT_MARGIN;
    cfg->select.w = 2.0f;
    comine_arcface_cfg_default(&cfg->head);
    cfg->epochs = 24;
    cfg->batch = 64;
    cfg->lr.kind = COMINE_LR_COSINE;
    cfg->lr.base_lr = 0.1;
    cfg->lr.warmup_epochs = 1;
    cfg->lr.total_epochs = 0; /* the run's epochs */
    cfg->lr.gamma = 0.1;
    cfg->momentum = 0.9;
    cfg->weight_decay = 5e-4;
    cfg->tau = 0.2f;
    cfg->tk = 5;
    cfg->vote_threshold = 0.5f;
    cfg->seed = 1;
    cfg->loader_threads = 2;
    cfg->flip = true;
    cfg->on_bad = COMINE_ON_BAD_SKIP;
    cfg->max_bad_steps = 20;
    cfg->bn_groups = 1;
    cfg->merge_threshold = NAN;
    cfg->sample_rate = 1.0f;
    cfg->tau_epochs = 8;
    cfg->tau_rounds = 1;
    cfg->tau_folds = 2;
    cfg->tau_by_image = 0.5;
    cfg->subcenter_drop_angle = 75.0f;
}

/* ---- set-up and tear-down ------------------------------------------------------------ */

static void trainer_free(trainer *t)
{
    comine_peers_free(&t->peers);
    if (t->loader) comine_loader_free(t->loader);
    if (t->ds) comine_dataset_free(t->ds);
    free(t->votes);
    free(t->rounds);
    free(t->cos_snapshot);
    free(t->truth_noisy);
    free(t->excluded);
    free(t->batch_excluded);
    comine_trainer_batch_free(t);
}

/* --init: a peer's backbone from a model file of the same architecture (its head stays new). */
static comine_status trainer_create(trainer *t, const comine_train_cfg *cfg)
{
    memset(t, 0, sizeof *t);
    t->cfg = cfg;
    comine_status st = comine_backend_for_device(&t->be, cfg->device);
    if (st != COMINE_OK) return st;
    comine_backend_set_threads(t->be, cfg->threads);
    if (comine_dist_size() > 1 && t->be != comine_backend_cpu())
        return comine_fail(COMINE_ERR_ARG, "--device %s: multi-process training (%d ranks) runs on the cpu backend "
                                           "only",
                           cfg->device ? cfg->device : "auto", comine_dist_size());
    comine_dataset_opts dopts = {.root = cfg->root};
    st = comine_dataset_open(&t->ds, cfg->data, &dopts);
    if (st != COMINE_OK) return st;
    if (t->ds->n < 1) return comine_fail(COMINE_ERR_FORMAT, "%s: the data set has no samples", cfg->data);
    if (cfg->subset && comine_dataset_keep(t->ds, cfg->subset) < 1)
        return comine_fail(COMINE_ERR_ARG, "%s: the subset to train on is empty", cfg->data);
    if (cfg->select.mode == COMINE_MODE_ORACLE && !t->ds->has_truth)
        return comine_fail(COMINE_ERR_ARG, "%s: mode oracle needs ground-truth noise flags (a list file with a "
                                           "flag column, as written by comine corrupt)", cfg->data);
    if (cfg->merge_duplicates && comine_dist_size() > 1)
        return comine_fail(COMINE_ERR_ARG, "--merge-duplicates: for one process (the head is sharded over %d ranks)",
                           comine_dist_size());
    if (cfg->merge_duplicates && cfg->head.subcenters > 1)
        return comine_fail(COMINE_ERR_ARG, "--merge-duplicates: not with --subcenters %d (the merge keeps one centre "
                                           "per class)", cfg->head.subcenters);
    if (cfg->merge_duplicates && cfg->sample_rate < 1.0f)
        return comine_fail(COMINE_ERR_ARG, "--merge-duplicates: not with --sample-rate %g (the merge rebuilds a whole "
                                           "head)", (double)cfg->sample_rate);
    if (cfg->merge_duplicates && cfg->resume && (st = comine_trainer_merge_restore(t)) != COMINE_OK) return st;
    if ((st = comine_trainer_subcenter_check(cfg)) != COMINE_OK) return st;
    t->K = t->ds->num_classes;
    t->D = cfg->arch.emb_dim;
    t->B = cfg->batch;
    t->lr = cfg->lr;
    if (t->lr.total_epochs <= 0) t->lr.total_epochs = cfg->epochs;

    comine_loader_opts lo;
    comine_loader_opts_default(&lo);
    lo.batch = cfg->batch;
    lo.input = cfg->arch.input;
    lo.threads = cfg->loader_threads > 0 ? cfg->loader_threads : 1;
    lo.seed = cfg->seed;
    lo.shuffle = true;
    lo.flip = cfg->flip;
    lo.jitter = cfg->jitter;
    lo.drop_last = t->ds->n > cfg->batch;
    lo.cache = cfg->cache;
    lo.on_bad = cfg->on_bad;
    lo.part = comine_dist_rank();
    lo.parts = comine_dist_size();
    st = comine_loader_create(&t->loader, t->ds, &lo);
    if (st != COMINE_OK) return st;
    t->steps_per_epoch = comine_loader_steps_per_epoch(t->loader);

    st = comine_peers_create_sampled(&t->peers, t->be, &cfg->arch, comine_mode_two_peers(cfg->select.mode) ? 2 : 1,
                                     t->K, cfg->head.subcenters, t->B, cfg->seed, cfg->sample_rate);
    if (st != COMINE_OK) return st;
    if (cfg->init[0] && !cfg->resume && (st = comine_trainer_init_backbones(t)) != COMINE_OK) return st;
    if (cfg->bn_groups > 1) {
        if (comine_dist_size() > 1 || t->be != comine_backend_cpu() || cfg->arch.dropout > 0)
            return comine_fail(COMINE_ERR_ARG, "--bn-groups %d: for one process on the cpu backend without dropout "
                                               "(the reference of a multi-process run)", cfg->bn_groups);
        comine_peers_set_bn_groups(&t->peers, cfg->bn_groups);
    }
    t->votes = comine_calloc(t->ds->n, sizeof(int32_t));
    t->rounds = comine_calloc(t->ds->n, sizeof(int32_t));
    t->cos_snapshot = comine_calloc((size_t)t->ds->n * 2, sizeof(float));
    for (size_t i = 0; i < (size_t)t->ds->n * 2; i++) t->cos_snapshot[i] = NAN;
    t->truth_noisy = comine_calloc(t->B, 1);
    t->batch_excluded = comine_calloc(t->B, 1);
    comine_trainer_batch_init(t);
    t->tau = cfg->tau;
    t->tau_estimate = cfg->tau_auto ? cfg->tau : NAN;
    return COMINE_OK;
}

/* ---- one step and its accounting ------------------------------------------------------ */

/* Votes count in the epochs where the drop rate has reached tau (e >= tk); when the run
 * is shorter than the warm-up, its last epoch counts. */
static bool epoch_counts_votes(const comine_train_cfg *cfg, int epoch)
{
    int first = cfg->tk < cfg->epochs ? cfg->tk : cfg->epochs - 1;
    return epoch >= first;
}

/* What the epoch's reports keep of an applied step: each peer's plain losses, training
 * accuracy and cosines, the sets, detection against the truth, the noise votes. */
static void account_step(trainer *t, const comine_batch *b, const comine_step_result *res)
{
    const comine_train_cfg *cfg = t->cfg;
    const int n = b->n;
    epoch_acc *acc = &t->acc;
    const comine_peers *ps = &t->peers; /* the whole batch's figures, gathered by the step */
    for (int k = 0; k < ps->n; k++) {
        double correct = 0, loss = 0;
        for (int i = 0; i < n; i++) {
            correct += ps->correct_all[k][i];
            loss += ps->loss_all[k][i];
            t->cos_snapshot[2 * (size_t)b->indices[i] + k] = ps->cos_target_all[k][i];
        }
        acc->loss[k] += loss / n;
        acc->correct[k] += correct / n;
        acc->cos_target[k] += res->cos_target[k];
        acc->cos_negative[k] += res->cos_negative[k];
        acc->objective[k] += res->objective[k];
    }
    acc->n_clean += res->sets.n_clean;
    acc->n_exchanged_a += res->sets.n_exchanged_a;
    acc->n_exchanged_b += res->sets.n_exchanged_b;
    acc->n_noisy += res->sets.n_noisy;
    const uint8_t *noisy = t->peers.noisy;
    if (t->ds->has_truth && comine_mode_detects(cfg->select.mode)) {
        for (int i = 0; i < n; i++) {
            acc->det_tp += noisy[i] && t->truth_noisy[i];
            acc->det_fp += noisy[i] && !t->truth_noisy[i];
            acc->det_fn += !noisy[i] && t->truth_noisy[i];
        }
    }
    if (epoch_counts_votes(cfg, t->epoch)) {
        for (int i = 0; i < n; i++) {
            t->rounds[b->indices[i]] += 1;
            t->votes[b->indices[i]] += noisy[i];
        }
    }
    acc->batches += 1;
    acc->samples += n;
}

static comine_status train_batch(trainer *t, const comine_batch *b, float drop_rate, double lr)
{
    const comine_train_cfg *cfg = t->cfg;
    for (int i = 0; i < b->n; i++) t->truth_noisy[i] = comine_truth_noisy(b->truth[i]);
    for (int i = 0; i < b->n && t->excluded; i++) t->batch_excluded[i] = t->excluded[b->indices[i]];
    int64_t global_step = (int64_t)t->epoch * t->steps_per_epoch + b->step + 1;
    comine_step_input in = {
        .images = b->images, .rank_rows = t->rank_rows, .labels = b->labels, .truth_noisy = t->truth_noisy,
        .excluded = t->excluded ? t->batch_excluded : NULL, .n = b->n,
        .drop_rate = drop_rate, .lr = (float)lr, .momentum = (float)cfg->momentum,
        .weight_decay = (float)cfg->weight_decay,
        .poison_loss = cfg->inject_nan_step > 0 && global_step >= cfg->inject_nan_step &&
                       global_step < cfg->inject_nan_step + cfg->inject_nan_count,
        .step = global_step,
    };
    const bool writer = comine_dist_rank() == 0;
    if (in.poison_loss && writer)
        comine_warn("epoch %d step %d: --inject-nan: the loss is set to NaN", t->epoch + 1, b->step + 1);
    comine_select_cfg select = cfg->select;
    comine_arcface_cfg head = cfg->head;
    head.subcenters = t->peers.peer[0].head.S; /* 1 after --subcenter-drop */
    const float share = comine_reweight_share(select.schedule, t->epoch, cfg->tk);
    if (share < 1.0f) {
        head.dm *= share;
        head.t = 1.0f + (head.t - 1.0f) * share;
        select.w = 1.0f + (select.w - 1.0f) * share;
    }
    comine_step_result res;
    comine_train_step(&res, &t->peers, &in, &select, &head);
    if (!res.applied) {
        t->acc.skipped_steps += 1;
        t->bad_in_a_row++;
        if (writer)
            comine_warn("epoch %d step %d: non-finite loss or gradient: step skipped (%d in a row)",
                        t->epoch + 1, b->step + 1, t->bad_in_a_row);
        if (t->bad_in_a_row >= cfg->max_bad_steps)
            return comine_fail(COMINE_ERR_NUMERIC,
                               "%d consecutive steps with non-finite loss or gradients (epoch %d step %d): "
                               "training stopped; the last checkpoint in %s is intact; try a lower --lr",
                               t->bad_in_a_row, t->epoch + 1, b->step + 1, cfg->out);
        return COMINE_OK;
    }
    t->bad_in_a_row = 0;
    account_step(t, b, &res);
    return COMINE_OK;
}

/* ---- reporting ------------------------------------------------------------------------- */

static void format_eta(char *buf, size_t size, double seconds)
{
    if (!(seconds >= 0) || seconds > 1e7) {
        snprintf(buf, size, "?");
        return;
    }
    int s = (int)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, size, "%dh%02dm", s / 3600, (s / 60) % 60);
    else if (s >= 60) snprintf(buf, size, "%dm%02ds", s / 60, s % 60);
    else snprintf(buf, size, "%ds", s);
}

static void progress_line(const trainer *t, double images_per_s, double seconds_left)
{
    const epoch_acc *a = &t->acc;
    double nb = a->batches > 0 ? a->batches : 1;
    char eta[32];
    format_eta(eta, sizeof eta, seconds_left);
    if (t->peers.n == 2)
        comine_progress(
                "epoch %d/%d step %d/%d | %.0f img/s | loss A %.3f B %.3f | acc A %.2f B %.2f | "
                "C %.1f XA %.1f XB %.1f N %.1f | left %s",
                t->epoch + 1, t->cfg->epochs, t->step, t->steps_per_epoch, images_per_s, a->loss[0] / nb,
                a->loss[1] / nb, a->correct[0] / nb, a->correct[1] / nb, a->n_clean / nb, a->n_exchanged_a / nb,
                a->n_exchanged_b / nb, a->n_noisy / nb, eta);
    else
        comine_progress("epoch %d/%d step %d/%d | %.0f img/s | loss %.3f | acc %.2f | kept %.1f | left %s",
                t->epoch + 1, t->cfg->epochs, t->step, t->steps_per_epoch, images_per_s, a->loss[0] / nb,
                a->correct[0] / nb, a->n_clean / nb + a->n_exchanged_a / nb, eta);
}

static void json_num(char *buf, size_t size, size_t *len, const char *key, double v)
{
    if (*len >= size) return;
    if (isfinite(v)) *len += (size_t)snprintf(buf + *len, size - *len, ", \"%s\": %.6g", key, v);
    else *len += (size_t)snprintf(buf + *len, size - *len, ", \"%s\": null", key);
}

static void json_bool(char *buf, size_t size, size_t *len, const char *key, bool v)
{
    if (*len < size) *len += (size_t)snprintf(buf + *len, size - *len, ", \"%s\": %s", key, v ? "true" : "false");
}

/* ---- the loop ---------------------------------------------------------------------- */

static comine_status write_models(const trainer *t)
{
    static const char *names[2] = {"peer_a.model", "peer_b.model"};
    if (comine_dist_rank() != 0) return COMINE_OK;
    for (int k = 0; k < t->peers.n; k++) {
        char *path = comine_path_join(t->cfg->out, names[k]);
        comine_status st = comine_model_save(t->peers.peer[k].model, path);
        free(path);
        if (st != COMINE_OK) return st;
    }
    return COMINE_OK;
}

/* Collective: rank 0 writes, the other ranks send it their head rows (checkpoint.c). */
static comine_status save_checkpoint(const trainer *t)
{
    char *path = comine_path_join(t->cfg->out, "checkpoint.bin");
    comine_status st = comine_checkpoint_save(t, path);
    free(path);
    return st;
}

static comine_status end_of_epoch(trainer *t, float drop_rate, double lr, comine_valrun *val,
                                  comine_train_summary *sum)
{
    const comine_train_cfg *cfg = t->cfg;
    const epoch_acc *a = &t->acc;
    double nb = a->batches > 0 ? a->batches : 1;
    const bool writer = comine_dist_rank() == 0; /* the other ranks only keep the summary */
    char line[4096];
    size_t len = (size_t)snprintf(line, sizeof line, "{\"epoch\": %d", t->epoch);
    json_num(line, sizeof line, &len, "ranks", comine_dist_size());
    json_num(line, sizeof line, &len, "classes", t->K);
    if (cfg->sample_rate < 1.0f) json_num(line, sizeof line, &len, "sample_rate", cfg->sample_rate);
    json_num(line, sizeof line, &len, "lr", lr);
    json_num(line, sizeof line, &len, "drop_rate", drop_rate);
    json_num(line, sizeof line, &len, "loss_a", a->loss[0] / nb);
    json_num(line, sizeof line, &len, "loss_b", t->peers.n == 2 ? a->loss[1] / nb : NAN);
    json_num(line, sizeof line, &len, "objective_a", a->objective[0] / nb);
    json_num(line, sizeof line, &len, "objective_b", t->peers.n == 2 ? a->objective[1] / nb : NAN);
    json_num(line, sizeof line, &len, "n_clean", a->n_clean / nb);
    json_num(line, sizeof line, &len, "n_exchanged_a", a->n_exchanged_a / nb);
    json_num(line, sizeof line, &len, "n_exchanged_b", a->n_exchanged_b / nb);
    json_num(line, sizeof line, &len, "n_noisy", a->n_noisy / nb);
    json_num(line, sizeof line, &len, "train_acc_a", a->correct[0] / nb);
    json_num(line, sizeof line, &len, "train_acc_b", t->peers.n == 2 ? a->correct[1] / nb : NAN);
    json_num(line, sizeof line, &len, "cos_target_a", a->cos_target[0] / nb);
    json_num(line, sizeof line, &len, "cos_negative_a", a->cos_negative[0] / nb);
    json_num(line, sizeof line, &len, "cos_target_b", t->peers.n == 2 ? a->cos_target[1] / nb : NAN);
    json_num(line, sizeof line, &len, "cos_negative_b", t->peers.n == 2 ? a->cos_negative[1] / nb : NAN);
    json_num(line, sizeof line, &len, "images_per_s", a->seconds > 0 ? a->samples / a->seconds : 0);
    json_num(line, sizeof line, &len, "seconds", a->seconds);
    json_num(line, sizeof line, &len, "skipped_steps", a->skipped_steps);
    if (t->ds->has_truth && comine_mode_detects(cfg->select.mode)) {
        double p, r, f1;
        comine_detection_figures(a->det_tp, a->det_fp, a->det_fn, &p, &r, &f1);
        json_num(line, sizeof line, &len, "det_precision", p);
        json_num(line, sizeof line, &len, "det_recall", r);
        json_num(line, sizeof line, &len, "det_f1", f1);
    }
    /* the collapse trap of METHOD.md: every cosine driven towards -1 */
    for (int k = 0; k < t->peers.n; k++) {
        bool collapsed = comine_collapsed(a->cos_target[k] / nb, a->cos_negative[k] / nb);
        json_bool(line, sizeof line, &len, k == 0 ? "collapse_a" : "collapse_b", collapsed);
        if (collapsed && writer)
            comine_warn("peer %c has COLLAPSED (mean target cosine %.2f, mean negative cosine %.2f): every cosine "
                        "is going to -1 and the network is not learning. Use %sa smaller --s or a lower --lr (see "
                        "docs/METHOD.md)",
                        'A' + k, a->cos_target[k] / nb, a->cos_negative[k] / nb,
                        t->cfg->head.fallback == COMINE_FALLBACK_INSIGHTFACE ? "--fallback easy, " : "");
    }
    json_num(line, sizeof line, &len, "tau", t->tau);
    if (cfg->tau_auto) json_num(line, sizeof line, &len, "tau_estimate", t->tau_estimate);
    sum->tau_estimate = t->tau_estimate;
    if (val->n > 0 && writer) {
        comine_verify_result res[3];
        comine_model *models[2] = {t->peers.peer[0].model, t->peers.n == 2 ? t->peers.peer[1].model : NULL};
        comine_status st = comine_valrun_verify(val, models, t->peers.n, t->epoch, t->steps_per_epoch,
                                                (int64_t)(t->epoch + 1) * t->steps_per_epoch, line, sizeof line,
                                                &len, res);
        if (st != COMINE_OK) return st;
        json_num(line, sizeof line, &len, "val_acc_a", res[0].accuracy);
        json_num(line, sizeof line, &len, "val_acc_b", t->peers.n == 2 ? res[1].accuracy : NAN);
        json_num(line, sizeof line, &len, "val_acc_ensemble", t->peers.n == 2 ? res[2].accuracy : NAN);
        sum->val_acc_a = res[0].accuracy;
        sum->val_acc_b = t->peers.n == 2 ? res[1].accuracy : NAN;
        sum->val_acc_ensemble = t->peers.n == 2 ? res[2].accuracy : NAN;
        sum->best_val_acc_a = val->best[0];
        sum->best_val_acc_b = t->peers.n == 2 ? val->best[1] : NAN;
    }
    if (len + 2 < sizeof line) {
        line[len++] = '}';
        line[len] = 0;
    }
    sum->final_loss_a = a->loss[0] / nb;
    sum->final_loss_b = t->peers.n == 2 ? a->loss[1] / nb : NAN;
    if (!writer) return COMINE_OK;

    char *metrics = comine_path_join(cfg->out, COMINE_RUN_METRICS);
    comine_status st = comine_metrics_append(metrics, t->epoch, line);
    free(metrics);
    if (st != COMINE_OK) return st;
    char *noise = comine_path_join(cfg->out, COMINE_RUN_NOISE);
    st = comine_noise_write(noise, t->ds, t->votes, t->rounds, cfg->vote_threshold);
    free(noise);
    if (st != COMINE_OK) return st;
    int warm_end = cfg->tk > 0 ? cfg->tk - 1 : 0;
    if (t->epoch == warm_end || t->epoch == cfg->epochs - 1) {
        char name[64];
        snprintf(name, sizeof name, COMINE_RUN_COS_FORMAT, t->epoch);
        char *path = comine_path_join(cfg->out, name);
        st = comine_cos_write(path, t->ds, t->cos_snapshot, t->peers.n);
        free(path);
        if (st != COMINE_OK) return st;
    }
    return COMINE_OK;
}

static comine_status run_epochs(trainer *t, comine_valrun *val, comine_train_summary *sum)
{
    const comine_train_cfg *cfg = t->cfg;
    int log_every = cfg->log_every > 0 ? cfg->log_every : (t->steps_per_epoch + 9) / 10;
    if (log_every < 1) log_every = 1;
    double run_start = comine_now();
    int steps_total_left = (cfg->epochs - t->epoch) * t->steps_per_epoch - t->step;
    int steps_done_here = 0;
    for (; t->epoch < cfg->epochs; t->epoch++) {
        float drop_rate = comine_drop_rate(t->epoch, t->tau, cfg->tk);
        comine_loader_start_epoch(t->loader, t->epoch, t->step);
        double lr = cfg->lr.base_lr;
        for (;;) {
            comine_batch *part = NULL, whole;
            double t0 = comine_now();
            comine_status st = comine_loader_next(t->loader, &part);
            if (st != COMINE_OK) return st;
            if (!part) break;
            comine_trainer_gather_batch(t, part, &whole);
            if (whole.n == 0) { /* every image of the batch was bad (skipped and listed) */
                comine_loader_release(t->loader, part);
                t->step++;
                continue;
            }
            lr = comine_lr_at(&t->lr, t->epoch + (double)t->step / t->steps_per_epoch);
            st = train_batch(t, &whole, drop_rate, lr);
            comine_loader_release(t->loader, part);
            if (st != COMINE_OK) return st;
            t->step++;
            steps_done_here++;
            t->acc.seconds += comine_now() - t0;
            if (comine_dist_rank() == 0 && (t->step % log_every == 0 || t->step == t->steps_per_epoch)) {
                double elapsed = comine_now() - run_start;
                double per_step = elapsed / steps_done_here;
                double ips = t->acc.seconds > 0 ? t->acc.samples / t->acc.seconds : 0;
                progress_line(t, ips, per_step * (steps_total_left - steps_done_here));
            }
            if (comine_dist_size() > 1) { /* every rank stops at the same step */
                int stop = stop_requested;
                comine_dist_allreduce_max_i32(&stop, 1);
                stop_requested = stop;
            }
            if (stop_requested) {
                comine_status cs = save_checkpoint(t);
                if (cs != COMINE_OK) return cs;
                return comine_fail(COMINE_ERR_INTERRUPTED,
                                   "interrupted at epoch %d step %d: checkpoint saved; continue with "
                                   "comine train --resume %s",
                                   t->epoch + 1, t->step, cfg->out);
            }
            int64_t done = (int64_t)t->epoch * t->steps_per_epoch + t->step;
            if (val->n > 0 && cfg->val_every > 0 && done % cfg->val_every == 0 && t->step < t->steps_per_epoch &&
                comine_dist_rank() == 0) {
                comine_verify_result res[3];
                comine_model *models[2] = {t->peers.peer[0].model, t->peers.n == 2 ? t->peers.peer[1].model : NULL};
                comine_status vs = comine_valrun_verify(val, models, t->peers.n, t->epoch, t->step, done, NULL, 0,
                                                        NULL, res);
                if (vs != COMINE_OK) return vs;
            }
            if (cfg->checkpoint_every > 0 && t->step % cfg->checkpoint_every == 0 && t->step < t->steps_per_epoch) {
                comine_status cs = save_checkpoint(t);
                if (cs != COMINE_OK) return cs;
            }
        }
        comine_status st = end_of_epoch(t, drop_rate, lr, val, sum);
        if (st == COMINE_OK && cfg->merge_duplicates && t->epoch == (cfg->tk > 0 ? cfg->tk - 1 : 0))
            st = comine_trainer_merge(t);
        if (st == COMINE_OK && cfg->subcenter_drop > 0 && t->epoch == cfg->subcenter_drop - 1)
            st = comine_trainer_subcenter_drop(t);
        if (st != COMINE_OK) return st;
        /* the next epoch starts clean; the checkpoint says so */
        memset(&t->acc, 0, sizeof t->acc);
        t->step = 0;
        t->epoch++;
        st = save_checkpoint(t);
        t->epoch--;
        if (st != COMINE_OK) return st;
        sum->epochs_done = t->epoch + 1;
    }
    return COMINE_OK;
}

static void final_summary(const trainer *t, comine_train_summary *sum)
{
    const comine_train_cfg *cfg = t->cfg;
    sum->samples = t->ds->n;
    sum->has_truth = t->ds->has_truth;
    double tp = 0, fp = 0, fn = 0;
    int flagged = 0;
    for (int i = 0; i < t->ds->n; i++) {
        bool f = comine_noise_flagged(t->votes[i], t->rounds[i], cfg->vote_threshold);
        bool noisy = comine_truth_noisy(t->ds->samples[i].truth);
        flagged += f;
        tp += f && noisy;
        fp += f && !noisy;
        fn += !f && noisy;
    }
    sum->flagged = flagged;
    comine_detection_figures(tp, fp, fn, &sum->det_precision, &sum->det_recall, &sum->det_f1);
}

comine_status comine_train(const comine_train_cfg *cfg, comine_train_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    sum->val_acc_a = sum->val_acc_b = sum->val_acc_ensemble = NAN;
    sum->best_val_acc_a = sum->best_val_acc_b = sum->tau_estimate = NAN;
    if (cfg->epochs < 1 || cfg->batch < 1) return comine_fail(COMINE_ERR_ARG, "epochs and batch must be >= 1");
    comine_status st = comine_arch_check(&cfg->arch);
    if (st != COMINE_OK) return st;
    st = comine_mkdirs(cfg->out);
    if (st != COMINE_OK) return st;

    double start = comine_now();
    /* --tau auto: the estimate first (two short runs of their own), then the run with it */
    comine_train_cfg run_cfg = *cfg;
    char tau_msg[512] = "";
    if (cfg->tau_auto && (st = comine_trainer_tau_auto(&run_cfg, tau_msg, sizeof tau_msg)) != COMINE_OK) return st;
    cfg = &run_cfg;
    trainer t;
    st = trainer_create(&t, cfg);
    comine_valrun val;
    memset(&val, 0, sizeof val);
    if (st == COMINE_OK) st = comine_valrun_open(&val, cfg);
    const bool writer = comine_dist_rank() == 0; /* rank 0 writes the run folder and prints */
    const bool quiet = cfg->quiet || !writer;
    if (writer) { /* RUN/train.log: the progress lines and messages, with the date and time */
        char *log = comine_path_join(cfg->out, "train.log");
        if (comine_progress_log_open(log) != COMINE_OK) comine_warn("%s", comine_last_error());
        free(log);
        comine_progress_set_quiet(cfg->quiet);
    }
    if (st == COMINE_OK && tau_msg[0] && writer) comine_progress("%s", tau_msg);
    if (st == COMINE_OK && t.ds->class_names && writer) {
        char *path = comine_path_join(cfg->out, "classes.tsv");
        st = comine_dataset_write_classes(t.ds, path);
        free(path);
    }
    char *ckpt = comine_path_join(cfg->out, "checkpoint.bin");
    if (st == COMINE_OK && cfg->resume && writer) comine_run_remove_temporaries(cfg->out);
    if (st == COMINE_OK && cfg->resume && !comine_path_exists(ckpt)) {
        /* stopped before its first checkpoint: nothing to continue, start over (from --init's
         * backbones, where given: create skips them on a resume) */
        if (!quiet) comine_info("%s: no checkpoint yet: starting the run from the beginning", cfg->out);
        if (cfg->init[0]) st = comine_trainer_init_backbones(&t);
        char *metrics = comine_path_join(cfg->out, COMINE_RUN_METRICS);
        if (st == COMINE_OK && writer) st = comine_metrics_trim(metrics, 0);
        free(metrics);
        val.best[0] = val.best[1] = -1;
        if (st == COMINE_OK && writer) st = comine_valrun_trim(&val, 0);
    } else if (st == COMINE_OK && cfg->resume) {
        const bool dropped = comine_trainer_subcenter_dropped(&t, ckpt);
        if (dropped) st = comine_trainer_subcenter_plain_heads(&t);
        if (st == COMINE_OK) st = comine_checkpoint_load(&t, ckpt);
        if (st == COMINE_OK && dropped) st = comine_trainer_subcenter_restore(&t);
        if (st == COMINE_OK) {
            char *metrics = comine_path_join(cfg->out, COMINE_RUN_METRICS);
            if (writer) st = comine_metrics_trim(metrics, t.epoch);
            free(metrics);
            if (st == COMINE_OK && writer) st = comine_valrun_trim(&val, (int64_t)t.epoch * t.steps_per_epoch + t.step);
            if (!quiet)
                comine_info("resuming %s at epoch %d step %d", cfg->out, t.epoch + 1, t.step);
        }
    }
    free(ckpt);
    if (st == COMINE_OK && !quiet) {
        comine_info("%s: %d samples, %d identities%s; mode %s, %d peer%s of %s (%zu parameters, %.2f GFLOP/image); "
                    "%d rank%s",
                    cfg->data, t.ds->n, t.K, t.ds->has_truth ? ", with ground-truth noise flags" : "",
                    comine_mode_name(cfg->select.mode), t.peers.n, t.peers.n == 2 ? "s" : "", cfg->arch.name,
                    comine_model_num_params(t.peers.peer[0].model), comine_model_flops(t.peers.peer[0].model) * 1e-9,
                    comine_dist_size(), comine_dist_size() == 1 ? "" : "s");
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    stop_requested = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    if (st == COMINE_OK) st = run_epochs(&t, &val, sum);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (st == COMINE_OK) st = write_models(&t);
    if (st == COMINE_OK) {
        final_summary(&t, sum);
        sum->epochs_done = cfg->epochs;
    }
    sum->seconds = comine_now() - start;
    comine_valrun_free(&val);
    trainer_free(&t);
    if (st != COMINE_OK && writer) comine_progress("stopped: %s", comine_last_error());
    else if (writer) comine_progress("finished %d epochs in %.1f s", cfg->epochs, sum->seconds);
    comine_progress_log_close();
    comine_progress_set_quiet(false);
    return st;
}

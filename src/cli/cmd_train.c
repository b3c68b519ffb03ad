/* cmd_train.c: `comine train`: parse and validate the options, record them in the run
 * folder (args.txt, replayed by --resume), call comine_train and print the summary. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/json_out.h"
#include "comine/dist.h"
#include "comine/estimate.h"
#include "comine/trainer.h"

const char comine_cmd_train_summary[] = "train one or two peer networks with Co-Mining on noisy labels";

#define MAX_REPLAY_ARGS 256

typedef struct train_args {
    const char *data, *root, *out, *mode, *net, *reweight, *rw_schedule, *fallback, *schedule, *milestones, *on_bad;
    const char *val, *val_root, *resume, *inject_nan, *device, *init, *init2, *tau;
    double sample_rate;
    double subcenter_drop_angle;
    double width, lr, dm, merge_threshold, w, t, s, m, momentum, wd, warmup, gamma, min_lr, dropout, jitter, vote_threshold;
    int input, epochs, batch, tk, threads, loader_threads, emb_dim, checkpoint_every, log_every, max_bad_steps;
    int bn_groups, val_every, subcenters, subcenter_drop, tau_epochs, tau_rounds, tau_folds;
    double tau_by_image;
    unsigned long long seed;
    bool flip, cache, quiet, json, merge_duplicates;
} train_args;

static const char *const schedule_names[] = {[COMINE_LR_CONSTANT] = "constant", [COMINE_LR_STEP] = "step",
                                             [COMINE_LR_COSINE] = "cosine"};
static const char *const fallback_names[] = {[COMINE_FALLBACK_EASY] = "easy",
                                             [COMINE_FALLBACK_INSIGHTFACE] = "insightface"};
static const char *const on_bad_names[] = {[COMINE_ON_BAD_SKIP] = "skip", [COMINE_ON_BAD_FAIL] = "fail"};

static int name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (names[i] && !strcmp(names[i], s)) return i;
    COMINE_ASSERT(!"a choice the parser accepted has no value");
    return 0;
}
#define NAME_INDEX(names, s) name_index(names, (int)(sizeof names / sizeof names[0]), s)

#define DEFAULT_TEXT 40
static void set_default(cli_opt *opts, const char *name, char *text, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_default(cli_opt *opts, const char *name, char *text, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, DEFAULT_TEXT, fmt, ap);
    va_end(ap);
    for (cli_opt *o = opts; o->name; o++)
        if (!strcmp(o->name, name)) {
            o->def = text;
            return;
        }
    COMINE_ASSERT(!"set_default: no such option");
}

/* The defaults --help shows and the parser applies are the library's (comine_train_cfg_default). */
static void library_defaults(cli_opt *opts)
{
    static char text[48][DEFAULT_TEXT];
    int n = 0;
    comine_train_cfg d;
    comine_train_cfg_default(&d);
#define DEFAULT(name, ...) set_default(opts, name, text[n++], __VA_ARGS__)
    DEFAULT("mode", "%s", comine_mode_name(d.select.mode));
    DEFAULT("net", "%s", d.arch.name);
    DEFAULT("width", "%g", d.arch.width);
    DEFAULT("input", "%d", d.arch.input);
    DEFAULT("emb-dim", "%d", d.arch.emb_dim);
    DEFAULT("dropout", "%g", d.arch.dropout);
    DEFAULT("epochs", "%d", d.epochs);
    DEFAULT("batch", "%d", d.batch);
    DEFAULT("lr", "%g", d.lr.base_lr);
    DEFAULT("lr-schedule", "%s", schedule_names[d.lr.kind]);
    DEFAULT("warmup-epochs", "%g", d.lr.warmup_epochs);
    DEFAULT("gamma", "%g", d.lr.gamma);
    DEFAULT("min-lr", "%g", d.lr.min_lr);
    DEFAULT("momentum", "%g", d.momentum);
    DEFAULT("wd", "%g", d.weight_decay);
    DEFAULT("tau", "%g", d.tau);
    DEFAULT("subcenters", "%d", d.head.subcenters > 0 ? d.head.subcenters : 1);
    DEFAULT("subcenter-drop", "%d", d.subcenter_drop);
    DEFAULT("subcenter-drop-angle", "%g", (double)d.subcenter_drop_angle);
    DEFAULT("sample-rate", "%g", (double)d.sample_rate);
    DEFAULT("val-every", "%d", d.val_every);
    DEFAULT("tk", "%d", d.tk);
    DEFAULT("tau-epochs", "%d", d.tau_epochs);
    DEFAULT("tau-rounds", "%d", d.tau_rounds);
    DEFAULT("tau-folds", "%d", d.tau_folds);
    DEFAULT("tau-by-image", "%g", d.tau_by_image);
    DEFAULT("reweight", "%s", comine_reweight_name(d.select.reweight));
    DEFAULT("dm", "%g", d.head.dm);
    DEFAULT("w", "%g", d.select.w);
    DEFAULT("t", "%g", d.head.t);
    DEFAULT("reweight-schedule", "%s", comine_reweight_schedule_name(d.select.schedule));
    DEFAULT("s", "%g", d.head.s);
    DEFAULT("m", "%g", d.head.m);
    DEFAULT("fallback", "%s", fallback_names[d.head.fallback]);
    DEFAULT("vote-threshold", "%g", d.vote_threshold);
    DEFAULT("seed", "%llu", (unsigned long long)d.seed);
    DEFAULT("threads", "%d", d.threads);
    DEFAULT("decode-threads", "%d", d.loader_threads);
    DEFAULT("hflip", "%d", d.flip);
    DEFAULT("jitter", "%g", d.jitter);
    DEFAULT("on-bad", "%s", on_bad_names[d.on_bad]);
    DEFAULT("checkpoint-every", "%d", d.checkpoint_every);
    DEFAULT("max-bad-steps", "%d", d.max_bad_steps);
    DEFAULT("log-every", "%d", d.log_every);
    DEFAULT("bn-groups", "%d", d.bn_groups);
#undef DEFAULT
    COMINE_ASSERT(n <= (int)(sizeof text / sizeof text[0]));
}

static int parse(train_args *a, cli_opt *opts_out[], int argc, char **argv)
{
    static cli_opt opts[] = {
        {"data", ARG_STR, NULL, NULL, "training data: a folder of identity folders, a list file or a .rec file"},
        {"root", ARG_STR, NULL, NULL, "list files: folder the paths are relative to (default: the list's folder)"},
        {"out", ARG_STR, NULL, NULL, "run folder (created)"},
        {"resume", ARG_STR, NULL, NULL, "continue the run in this folder from its checkpoint (other options: only "
         "--threads, --decode-threads, --epochs, --quiet)"},
        {"mode", ARG_CHOICE, NULL, NULL, "method", "arcface|self|nld|coteach|comining|oracle"},
        {"net", ARG_CHOICE, NULL, NULL, "backbone", "iresnet18|iresnet34|iresnet50|iresnet100|mobilefacenet"},
        {"width", ARG_FLOAT, NULL, NULL, "channel width multiplier of the iresnets", NULL, 0.01, 4},
        {"input", ARG_INT, NULL, NULL, "input size (112; 64 or 32 for small iresnets)", NULL, 16, 1024},
        {"emb-dim", ARG_INT, NULL, NULL, "embedding size", NULL, 2, 8192},
        {"dropout", ARG_FLOAT, NULL, NULL, "dropout before the embedding layer", NULL, 0, 0.99},
        {"epochs", ARG_INT, NULL, NULL, "epochs", NULL, 1, 100000},
        {"batch", ARG_INT, NULL, NULL, "mini-batch size", NULL, 1, 65536},
        {"lr", ARG_FLOAT, NULL, NULL, "base learning rate", NULL, 1e-9, 100},
        {"lr-schedule", ARG_CHOICE, NULL, NULL, "learning-rate schedule", "cosine|step|constant"},
        {"warmup-epochs", ARG_FLOAT, NULL, NULL, "linear learning-rate warm-up, epochs", NULL, 0, 1e6},
        {"milestones", ARG_STR, NULL, NULL, "step schedule: epochs where lr *= gamma, comma-separated"},
        {"gamma", ARG_FLOAT, NULL, NULL, "step schedule: factor at each milestone", NULL, 1e-9, 1},
        {"min-lr", ARG_FLOAT, NULL, NULL, "cosine schedule: final learning rate", NULL, 0, 100},
        {"momentum", ARG_FLOAT, NULL, NULL, "SGD momentum", NULL, 0, 0.9999},
        {"wd", ARG_FLOAT, NULL, NULL, "weight decay", NULL, 0, 1},
        {"tau", ARG_STR, NULL, NULL, "expected noise rate: the drop rate after warm-up, or `auto`: estimated before "
         "training by cross-fitting (a network trained on all but one fold of every label's samples ranks that fold; "
         "RUN/tau_crossfit, RUN/tau_estimate.json, tau_estimate in metrics.jsonl)"},
        {"tk", ARG_INT, NULL, NULL, "epochs over which the drop rate grows to tau", NULL, 0, 100000},
        {"tau-epochs", ARG_INT, NULL, NULL, "--tau auto: epochs of each fold's network (mode arcface)", NULL, 1,
         100000},
        {"tau-folds", ARG_INT, NULL, NULL, "--tau auto: folds of each label's samples (one network per fold, trained "
         "on the others)", NULL, 2, COMINE_CROSSFIT_FOLDS_MAX},
        {"tau-rounds", ARG_INT, NULL, NULL, "--tau auto: rounds of cross-fitting (each after the first trains "
         "without the samples the last ranked most suspicious)", NULL, 1, 9},
        {"tau-by-image", ARG_FLOAT, NULL, NULL, "--tau auto: the share of the wrong labels taken to have fallen on "
         "images at random, each image equally likely (the rest on labels at random, each label equally likely); "
         "sets the law a wrong label's rank follows (docs/CROSSFIT.md)", NULL, 0, 1},
        {"reweight", ARG_CHOICE, NULL, NULL, "comining: how the clean set is re-weighted", "margin|weight|mv"},
        {"dm", ARG_FLOAT, NULL, NULL, "margin re-weighting: extra margin", NULL, 0, 1.5},
        {"w", ARG_FLOAT, NULL, NULL, "weight re-weighting: factor (>= 1)", NULL, 1, 1000},
        {"t", ARG_FLOAT, NULL, NULL, "mv re-weighting: t (>= 1)", NULL, 1, 10},
        {"reweight-schedule", ARG_CHOICE, NULL, NULL, "comining: when the re-weighting applies: from the start, from "
         "epoch tk on, or growing with the drop rate (dm, w - 1, t - 1 scaled by min(epoch / tk, 1))",
         "always|from-tk|ramp"},
        {"s", ARG_FLOAT, NULL, NULL, "ArcFace scale", NULL, 1, 1024},
        {"m", ARG_FLOAT, NULL, NULL, "ArcFace additive angular margin", NULL, 0, 1.5},
        {"fallback", ARG_CHOICE, NULL, NULL, "ArcFace past th + m > pi", "easy|insightface"},
        {"vote-threshold", ARG_FLOAT, NULL, NULL, "flag a sample when votes/rounds >= this", NULL, 0, 1},
        {"seed", ARG_U64, NULL, NULL, "random seed (peers, order, augmentation)"},
        {"device", ARG_STR, NULL, NULL, "compute device: cpu, cuda or cuda:N (default: the best available)"},
        {"threads", ARG_INT, NULL, NULL, "compute threads (0 = all cores)", NULL, 0, 4096},
        {"decode-threads", ARG_INT, NULL, NULL, "image decoding threads", NULL, 1, 256},
        {"hflip", ARG_FLAG, NULL, NULL, "augmentation: random horizontal flip (--hflip=0 to disable)"},
        {"jitter", ARG_FLOAT, NULL, NULL, "random crop/scale jitter, fraction of the side", NULL, 0, 0.5},
        {"cache", ARG_FLAG, NULL, NULL, "keep decoded images in memory after the first epoch"},
        {"on-bad", ARG_CHOICE, NULL, NULL, "an image that cannot be decoded: leave it out (counted), or stop", "skip|fail"},
        {"checkpoint-every", ARG_INT, NULL, NULL, "also checkpoint every N steps (0 = epoch ends only)", NULL, 0, 1e9},
        {"max-bad-steps", ARG_INT, NULL, NULL, "stop after this many non-finite steps in a row", NULL, 1, 1e9},
        {"val", ARG_STR, NULL, NULL, "validation sets, comma-separated: insightface .bin files or pairs files; each "
         "peer and the pair verified on each (metrics.jsonl, val.jsonl; best_a/best_b.model by the first set)"},
        {"val-root", ARG_STR, NULL, NULL, "image folder of the pairs files of --val (default: each file's folder)"},
        {"val-every", ARG_INT, NULL, NULL, "also validate every N steps (0 = at the end of each epoch only)", NULL, 0,
         1e9},
        {"merge-duplicates", ARG_FLAG, NULL, NULL, "at the end of the warm-up (epoch tk), merge the labels found to "
         "be one person (as comine dedup; merge_map.tsv, duplicates.csv)"},
        {"merge-threshold", ARG_FLOAT, NULL, NULL, "--merge-duplicates: similarity above which two labels are one "
         "person (default: the automatic rule of comine dedup)", NULL, -1, 1},
        {"subcenters", ARG_INT, NULL, NULL, "sub-center ArcFace: K sub-centres per class (1 = plain ArcFace)", NULL, 1,
         64},
        {"subcenter-drop", ARG_INT, NULL, NULL, "--subcenters: after epoch E each head keeps each class's dominant "
         "sub-centre; mode arcface also leaves out the samples farther than the angle from it (subcenter_dropped.csv; "
         "0 = never)", NULL, 0, 1e6},
        {"subcenter-drop-angle", ARG_FLOAT, NULL, NULL, "--subcenter-drop: the angle in degrees beyond which a sample "
         "is left out", NULL, 0, 180},
        {"sample-rate", ARG_FLOAT, NULL, NULL, "Partial FC: each step's softmax over the batch's classes and this "
         "fraction R of the others, in (0, 1] (1 = every class)", NULL, 0, 0},
        {"log-every", ARG_INT, NULL, NULL, "steps between progress lines (0 = ten per epoch)", NULL, 0, 1e9},
        {"quiet", ARG_FLAG, NULL, NULL, "no progress output"},
        {"inject-nan", ARG_STR, NULL, NULL,
         "testing aid: STEP[:COUNT]: set the loss to NaN at COUNT (1) steps from global step STEP (1 = first)"},
        {"bn-groups", ARG_INT, NULL, NULL,
         "one process, cpu: batch norm per 1/G of the batch, as G ranks of mpirun do (the reference of a G-rank "
         "run; a second forward per step)", NULL, 1, 1024},
        {"json", ARG_FLAG, NULL, NULL, "print the summary as one JSON object"},
        {"init", ARG_STR, NULL, NULL, "start the backbones from this model file (fine-tuning: new heads; "
         "`--init A --init B` for one each; --tau auto's networks start from the first)"},
        {"init2", ARG_STR, NULL, NULL, "peer B's backbone (also `--init B` again)"},
        {"warmup", ARG_ALIAS, NULL, "warmup-epochs"},
        {"loader-threads", ARG_ALIAS, NULL, "decode-threads"},
        {"flip", ARG_ALIAS, NULL, "hflip"},
        {"on-bad-image", ARG_ALIAS, NULL, "on-bad"},
        {"val-pairs", ARG_ALIAS, NULL, "val"},
        {0},
    };
    void *dst[] = {&a->data, &a->root, &a->out, &a->resume, &a->mode, &a->net, &a->width, &a->input, &a->emb_dim,
                   &a->dropout, &a->epochs, &a->batch, &a->lr, &a->schedule, &a->warmup, &a->milestones, &a->gamma,
                   &a->min_lr, &a->momentum, &a->wd, &a->tau, &a->tk, &a->tau_epochs, &a->tau_folds,
                   &a->tau_rounds, &a->tau_by_image, &a->reweight, &a->dm, &a->w, &a->t,
                   &a->rw_schedule, &a->s, &a->m, &a->fallback, &a->vote_threshold, &a->seed, &a->device, &a->threads, &a->loader_threads,
                   &a->flip, &a->jitter, &a->cache, &a->on_bad, &a->checkpoint_every, &a->max_bad_steps,
                   &a->val, &a->val_root, &a->val_every, &a->merge_duplicates, &a->merge_threshold, &a->subcenters,
                   &a->subcenter_drop, &a->subcenter_drop_angle, &a->sample_rate, &a->log_every, &a->quiet, &a->inject_nan, &a->bn_groups,
                   &a->json, &a->init, &a->init2, NULL, NULL, NULL, NULL, NULL};
    _Static_assert(sizeof dst / sizeof dst[0] == sizeof opts / sizeof opts[0] - 1, "one destination per option");
    for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++) opts[i].dst = dst[i];
    a->merge_threshold = NAN; /* no default: the automatic rule */
    library_defaults(opts);
    *opts_out = opts;
    /* `--init A --init B`: the second --init is --init2 */
    static char *args[MAX_REPLAY_ARGS + 64];
    static char renamed[MAX_REPLAY_ARGS + 64][16];
    if (argc > (int)(sizeof args / sizeof args[0]) - 1) return cli_error("train", "too many arguments (%d)", argc);
    int seen = 0;
    for (int i = 0; i < argc; i++) {
        args[i] = argv[i];
        if (!strcmp(argv[i], "--init") && ++seen == 2) {
            snprintf(renamed[i], sizeof renamed[i], "--init2");
            args[i] = renamed[i];
        }
        if (!strncmp(argv[i], "--init=", 7) && ++seen == 2) {
            static char buf[4096];
            snprintf(buf, sizeof buf, "--init2=%s", argv[i] + 7);
            args[i] = buf;
        }
    }
    args[argc] = NULL;
    if (seen > 2) return cli_error("train", "option --init: at most two (one per peer)");
    return cli_parse("train", comine_cmd_train_summary, opts, argc, args);
}

static int parse_milestones(comine_lr_schedule *lr, const char *s)
{
    lr->n_milestones = 0;
    if (!s) return 0;
    char *copy = comine_strdup(s), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        double v;
        if (!comine_parse_double(tok, &v) || v < 0 || lr->n_milestones >= 16) {
            free(copy);
            return cli_error("train", "option --milestones: '%s' is not a list of up to 16 epochs", s);
        }
        lr->milestones[lr->n_milestones++] = v;
    }
    free(copy);
    return 0;
}

/* --inject-nan STEP[:COUNT] */
static int parse_inject_nan(comine_train_cfg *cfg, const char *s)
{
    if (!s) return 0;
    char *copy = comine_strdup(s);
    char *colon = strchr(copy, ':');
    if (colon) *colon = 0;
    long step = 0, count = 1;
    bool ok = comine_parse_int(copy, &step) && step >= 1 && (!colon || comine_parse_int(colon + 1, &count)) &&
              count >= 1 && count <= 1000000000L;
    free(copy);
    if (!ok) return cli_error("train", "option --inject-nan: '%s' is not STEP[:COUNT] with STEP, COUNT >= 1", s);
    cfg->inject_nan_step = step;
    cfg->inject_nan_count = (int)count;
    return 0;
}

static int to_cfg(comine_train_cfg *cfg, const train_args *a)
{
    comine_train_cfg_default(cfg);
    if (comine_arch_default(&cfg->arch, a->net) != COMINE_OK) return cli_error("train", "%s", comine_last_error());
    cfg->arch.width = (float)a->width;
    cfg->arch.input = a->input;
    cfg->arch.emb_dim = a->emb_dim;
    cfg->arch.dropout = (float)a->dropout;
    if (comine_arch_check(&cfg->arch) != COMINE_OK)
        return cli_error("train", "options --net/--width/--input: %s", comine_last_error());
    cfg->data = a->data;
    cfg->root = a->root;
    cfg->out = a->out;
    comine_mode_parse(a->mode, &cfg->select.mode);
    comine_reweight_parse(a->reweight, &cfg->select.reweight);
    comine_reweight_schedule_parse(a->rw_schedule, &cfg->select.schedule);
    cfg->select.w = (float)a->w;
    cfg->head.s = (float)a->s;
    cfg->head.m = (float)a->m;
    cfg->head.dm = (float)a->dm;
    cfg->head.t = (float)a->t;
    cfg->head.fallback = (comine_fallback)NAME_INDEX(fallback_names, a->fallback);
    cfg->epochs = a->epochs;
    cfg->batch = a->batch;
    cfg->lr.kind = (comine_lr_kind)NAME_INDEX(schedule_names, a->schedule);
    cfg->lr.base_lr = a->lr;
    cfg->lr.warmup_epochs = a->warmup;
    cfg->lr.min_lr = a->min_lr;
    cfg->lr.gamma = a->gamma;
    if (parse_milestones(&cfg->lr, a->milestones)) return 2;
    if (parse_inject_nan(cfg, a->inject_nan)) return 2;
    if (cfg->lr.kind == COMINE_LR_STEP && cfg->lr.n_milestones == 0)
        return cli_error("train", "option --lr-schedule step needs --milestones");
    cfg->momentum = a->momentum;
    cfg->weight_decay = a->wd;
    double tau = 0;
    if (a->tau && !strcmp(a->tau, "auto")) {
        cfg->tau_auto = true;
    } else if (!a->tau || !comine_parse_double(a->tau, &tau) || !(tau >= 0 && tau <= 0.99)) {
        return cli_error("train", "option --tau: '%s' is not a rate in [0, 0.99] or `auto`", a->tau ? a->tau : "");
    }
    cfg->tau = (float)tau;
    cfg->tau_epochs = a->tau_epochs;
    cfg->tau_rounds = a->tau_rounds;
    cfg->tau_folds = a->tau_folds;
    cfg->tau_by_image = a->tau_by_image;
    cfg->head.subcenters = a->subcenters;
    cfg->subcenter_drop = a->subcenter_drop;
    cfg->subcenter_drop_angle = (float)a->subcenter_drop_angle;
    if (!(a->sample_rate > 0 && a->sample_rate <= 1))
        return cli_error("train", "option --sample-rate: %g is not in (0, 1] (the fraction of the classes in each "
                                  "step's softmax)", a->sample_rate);
    cfg->sample_rate = (float)a->sample_rate;
    cfg->tk = a->tk;
    cfg->vote_threshold = (float)a->vote_threshold;
    cfg->seed = a->seed;
    cfg->device = a->device;
    cfg->init[0] = a->init;
    cfg->init[1] = a->init2;
    cfg->threads = a->threads;
    cfg->loader_threads = a->loader_threads;
    cfg->flip = a->flip;
    cfg->jitter = (float)a->jitter;
    cfg->cache = a->cache;
    cfg->on_bad = (comine_on_bad)NAME_INDEX(on_bad_names, a->on_bad);
    cfg->checkpoint_every = a->checkpoint_every;
    cfg->max_bad_steps = a->max_bad_steps;
    cfg->val = a->val;
    cfg->val_root = a->val_root;
    cfg->val_every = a->val_every;
    cfg->merge_duplicates = a->merge_duplicates;
    cfg->merge_threshold = a->merge_threshold;
    cfg->log_every = a->log_every;
    cfg->quiet = a->quiet;
    cfg->bn_groups = a->bn_groups;
    if (cfg->lr.min_lr > cfg->lr.base_lr) return cli_error("train", "option --min-lr: above --lr");
    return 0;
}

/* args.txt: the command line of a fresh run, one argument per line. */
static int record_args(const char *out, int argc, char **argv)
{
    if (comine_mkdirs(out) != COMINE_OK) return cli_error("train", "%s", comine_last_error());
    size_t cap = 256, len = 0;
    char *buf = comine_malloc(cap);
    for (int i = 1; i < argc; i++) {
        if (strchr(argv[i], '\n')) {
            free(buf);
            return cli_error("train", "an argument holds a line break: '%s'", argv[i]);
        }
        size_t n = strlen(argv[i]);
        while (len + n + 2 > cap) buf = comine_realloc(buf, cap *= 2);
        memcpy(buf + len, argv[i], n);
        len += n;
        buf[len++] = '\n';
    }
    char *path = comine_path_join(out, "args.txt");
    comine_status st = comine_write_file_atomic(path, buf, len);
    free(path);
    free(buf);
    if (st != COMINE_OK) return cli_error("train", "%s", comine_last_error());
    return 0;
}

static int load_args(const char *run, uint8_t **data, int *argc, char **argv)
{
    char *path = comine_path_join(run, "args.txt");
    size_t size;
    comine_status st = comine_read_file(path, data, &size);
    free(path);
    if (st != COMINE_OK) return cli_error("train", "--resume %s: %s", run, comine_last_error());
    argv[0] = "train";
    int n = 1;
    char *p = (char *)*data;
    while (*p && n < MAX_REPLAY_ARGS - 1) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        argv[n++] = p;
        if (!nl) break;
        p = nl + 1;
    }
    argv[n] = NULL;
    *argc = n;
    return 0;
}

static void json_field(const char *key, double v)
{
    printf(", \"%s\": ", key);
    cli_json_num(stdout, v);
}

/* The summary as one JSON object: what the text says, with null for what does not apply. */
static void print_summary_json(const comine_train_cfg *cfg, const comine_train_summary *s)
{
    bool detects = comine_mode_detects(cfg->select.mode);
    printf("{\"run\": ");
    cli_json_str(stdout, cfg->out);
    printf(", \"mode\": \"%s\", \"net\": \"%s\", \"epochs\": %d", comine_mode_name(cfg->select.mode), cfg->arch.name,
           s->epochs_done);
    json_field("seconds", s->seconds);
    json_field("samples", s->samples);
    json_field("flagged", detects ? s->flagged : NAN);
    json_field("vote_threshold", cfg->vote_threshold);
    json_field("det_precision", detects && s->has_truth ? s->det_precision : NAN);
    json_field("det_recall", detects && s->has_truth ? s->det_recall : NAN);
    json_field("det_f1", detects && s->has_truth ? s->det_f1 : NAN);
    json_field("val_acc_a", s->val_acc_a);
    json_field("val_acc_b", s->val_acc_b);
    json_field("val_acc_ensemble", s->val_acc_ensemble);
    json_field("best_val_acc_a", s->best_val_acc_a);
    json_field("best_val_acc_b", s->best_val_acc_b);
    json_field("tau_estimate", s->tau_estimate);
    printf(", \"models\": [");
    char *a = comine_path_join(cfg->out, "peer_a.model");
    cli_json_str(stdout, a);
    free(a);
    if (comine_mode_two_peers(cfg->select.mode)) {
        char *b = comine_path_join(cfg->out, "peer_b.model");
        printf(", ");
        cli_json_str(stdout, b);
        free(b);
    }
    printf("]}\n");
}

static void print_summary(const comine_train_cfg *cfg, const comine_train_summary *s)
{
    printf("trained %d epochs in %.1f s (%s, %s)\n", s->epochs_done, s->seconds, comine_mode_name(cfg->select.mode),
           cfg->arch.name);
    if (comine_mode_detects(cfg->select.mode)) {
        printf("noise report: %d of %d samples flagged (score >= %.2f): %s/noise.csv\n", s->flagged, s->samples,
               cfg->vote_threshold, cfg->out);
        if (s->has_truth)
            printf("detection against the ground truth: precision %.4f recall %.4f F1 %.4f\n", s->det_precision,
                   s->det_recall, s->det_f1);
    }
    if (isfinite(s->val_acc_a)) {
        printf("validation accuracy: A %.4f", s->val_acc_a);
        if (isfinite(s->val_acc_b)) printf(" B %.4f A+B %.4f", s->val_acc_b, s->val_acc_ensemble);
        printf("\n");
    }
    if (isfinite(s->best_val_acc_a)) {
        printf("best validation accuracy (first set): A %.4f", s->best_val_acc_a);
        if (isfinite(s->best_val_acc_b)) printf(" B %.4f", s->best_val_acc_b);
        printf(": %s/best_a.model%s\n", cfg->out, isfinite(s->best_val_acc_b) ? " and best_b.model" : "");
    }
    if (isfinite(s->tau_estimate)) printf("--tau auto: estimated noise rate %.3f\n", s->tau_estimate);
    printf("models: %s/peer_a.model%s\n", cfg->out, comine_mode_two_peers(cfg->select.mode) ? " and peer_b.model" : "");
}

int comine_cmd_train(int argc, char **argv)
{
    train_args a;
    cli_opt *opts;
    /* past a file-size limit (ulimit -f), writes fail with EFBIG and are reported */
    signal(SIGXFSZ, SIG_IGN);
    int rc = parse(&a, &opts, argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    /* under mpirun / srun: one of P ranks (dist.h); rank 0 writes the run folder */
    if (comine_dist_init() != COMINE_OK) return cli_error("train", "%s", comine_last_error());
    const bool writer = comine_dist_rank() == 0;
    uint8_t *replay = NULL;
    char *replay_argv[MAX_REPLAY_ARGS];
    const char *resume = a.resume;
    if (resume) {
        /* what may change on resume: how it runs, and how long */
        static const char *const may[] = {"resume", "threads", "decode-threads", "epochs", "quiet", "json"};
        for (const cli_opt *o = opts; o->name; o++) {
            bool ok = o->type == ARG_ALIAS;
            for (size_t k = 0; k < sizeof may / sizeof may[0]; k++) ok = ok || !strcmp(o->name, may[k]);
            if (!ok && cli_given(opts, o->name))
                return cli_error("train", "option --%s cannot change on --resume (only --threads, --decode-threads, "
                                 "--epochs and --quiet can)", o->name);
        }
        train_args now = a;
        bool new_threads = cli_given(opts, "threads"), new_decode = cli_given(opts, "decode-threads");
        bool new_epochs = cli_given(opts, "epochs"), new_quiet = cli_given(opts, "quiet");
        bool want_json = now.json;
        if (load_args(resume, &replay, &argc, replay_argv)) return 2;
        rc = parse(&a, &opts, argc, replay_argv);
        if (rc) {
            free(replay);
            return cli_error("train", "--resume %s: its args.txt does not parse", resume);
        }
        a.out = resume;
        const int run_epochs = a.epochs;
        if (new_threads) a.threads = now.threads;
        if (new_decode) a.loader_threads = now.loader_threads;
        if (new_epochs) a.epochs = now.epochs;
        if (new_quiet) a.quiet = now.quiet;
        a.json = want_json;
        if (new_epochs && run_epochs != now.epochs && writer) { /* the new length is the run's from now on */
            char num[16];
            snprintf(num, sizeof num, "%d", now.epochs);
            char *next[MAX_REPLAY_ARGS + 2];
            int n = 0;
            for (; n < argc; n++) next[n] = replay_argv[n];
            next[n++] = "--epochs";
            next[n++] = num;
            if ((rc = record_args(resume, n, next))) {
                free(replay);
                return rc;
            }
        }
    } else {
        if (!a.data) return cli_error("train", "option --data is required");
        if (!a.out) return cli_error("train", "option --out is required");
        if ((rc = cli_check_out_dir("train", "out", a.out))) return rc;
        char *ckpt = comine_path_join(a.out, "checkpoint.bin");
        bool taken = comine_path_exists(ckpt);
        free(ckpt);
        if (taken)
            return cli_error("train", "option --out: %s already holds a run: continue it with --resume %s, or "
                                      "choose another folder", a.out, a.out);
    }
    comine_train_cfg cfg;
    rc = to_cfg(&cfg, &a);
    if (!rc && !resume && writer) rc = record_args(a.out, argc, argv);
    if (rc) {
        free(replay);
        if (comine_dist_size() > 1) comine_dist_abort("comine train: the options are refused");
        return rc;
    }
    comine_dist_barrier(); /* args.txt exists before any rank goes on */
    cfg.resume = resume != NULL;
    comine_train_summary sum;
    comine_status st = comine_train(&cfg, &sum);
    if (st != COMINE_OK && st != COMINE_ERR_INTERRUPTED && comine_dist_size() > 1)
        comine_dist_abort("comine train: %s", comine_last_error()); /* stops the other ranks too */
    if (st != COMINE_OK) {
        if (writer) fprintf(stderr, "comine train: %s\n", comine_last_error());
        free(replay);
        comine_dist_finalize();
        return st == COMINE_ERR_INTERRUPTED ? 130 : 1;
    }
    if (writer && a.json) print_summary_json(&cfg, &sum);
    else if (writer) print_summary(&cfg, &sum);
    free(replay);
    comine_dist_finalize();
    return 0;
}

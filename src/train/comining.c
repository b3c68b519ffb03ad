/* comining.c: the Co-Mining selection of comining.h, a pure function of per-sample losses.
 *
 * Drop rate r(e) = tau min(e / Tk, 1); k = round((1 - r) n) in [1, n]; GA / GB = the k
 * samples of smallest loss under peer A / B (stable: ties keep the lower index first;
 * NaN losses rank last).  C = GA & GB, XA = GB \ GA, XB = GA \ GB, N = the rest.  Each
 * mode of METHOD.md answers a (form, weight) per sample and peer; weights are divided by
 * the size of the peer's update set, and an empty update set gets all weights 0.  Nothing
 * is allocated: the sort indices and set masks live in the caller's scratch. */
#include "comine/comining.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "comine/core.h"
#include "comine/loss.h"

float comine_drop_rate(int epoch, float tau, int tk)
{
    if (tk <= 0) return tau;
    double e = epoch > 0 ? epoch : 0;
    double f = e / tk;
    return (float)(tau * (f < 1.0 ? f : 1.0));
}

float comine_reweight_share(comine_reweight_schedule s, int epoch, int tk)
{
    if (s == COMINE_RW_ALWAYS || tk <= 0) return 1.0f;
    if (s == COMINE_RW_FROM_TK) return epoch >= tk ? 1.0f : 0.0f;
    return comine_drop_rate(epoch, 1.0f, tk);
}

int comine_keep_count(int n, float drop_rate)
{
    COMINE_ASSERT(n >= 1);
    double k = round((1.0 - (double)drop_rate) * n);
    if (!(k >= 1.0)) return 1; /* also NaN */
    if (k > n) return n;
    return (int)k;
}

bool comine_mode_two_peers(comine_mode mode) { return mode != COMINE_MODE_ARCFACE && mode != COMINE_MODE_ORACLE; }

bool comine_mode_detects(comine_mode mode)
{
    return mode == COMINE_MODE_SELF || mode == COMINE_MODE_NLD || mode == COMINE_MODE_COTEACH ||
           mode == COMINE_MODE_COMINING;
}

static const char *const mode_names[] = {"arcface", "self", "nld", "coteach", "comining", "oracle"};
static const char *const reweight_names[] = {"margin", "weight", "mv"};
static const char *const schedule_names[] = {"always", "from-tk", "ramp"};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

bool comine_collapsed(double mean_target_cos, double mean_negative_cos)
{
    return mean_target_cos < -0.5 && mean_negative_cos < -0.5;
}

const char *comine_mode_name(comine_mode mode)
{
    return (int)mode >= 0 && (int)mode < COUNT(mode_names) ? mode_names[mode] : "unknown";
}

bool comine_mode_parse(const char *s, comine_mode *mode)
{
    for (int i = 0; s && i < COUNT(mode_names); i++)
        if (!strcmp(s, mode_names[i])) {
            *mode = (comine_mode)i;
            return true;
        }
    return false;
}

const char *comine_reweight_name(comine_reweight r)
{
    return (int)r >= 0 && (int)r < COUNT(reweight_names) ? reweight_names[r] : "unknown";
}

bool comine_reweight_parse(const char *s, comine_reweight *r)
{
    for (int i = 0; s && i < COUNT(reweight_names); i++)
        if (!strcmp(s, reweight_names[i])) {
            *r = (comine_reweight)i;
            return true;
        }
    return false;
}

/* Order of two samples by loss: smaller first, NaN last, ties by index. */
static bool ranks_before(const float *loss, int a, int b)
{
    float la = loss[a], lb = loss[b];
    bool na = la != la, nb = lb != lb;
    if (na != nb) return nb;
    if (!na && la != lb) return la < lb;
    return a < b;
}

/* Stable bottom-up merge sort of the indices 0..n-1 by loss; in_small[i] = 1 for the
 * `keep` first ones.  O(n log n). */
static void small_loss_set(uint8_t *in_small, const float *loss, int n, int keep, int *idx, int *tmp)
{
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n;
            int a = lo, b = mid, o = lo;
            while (a < mid && b < hi) tmp[o++] = ranks_before(loss, idx[b], idx[a]) ? idx[b++] : idx[a++];
            while (a < mid) tmp[o++] = idx[a++];
            while (b < hi) tmp[o++] = idx[b++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof(int));
    }
    memset(in_small, 0, (size_t)n);
    for (int r = 0; r < keep; r++) in_small[idx[r]] = 1;
}

/* One peer's answer from use[i] (0 = not learned from, 1 = plain, 2 = in C): plain samples
 * get form ARCFACE and weight 1 / |update set|, C's samples clean_form and clean_scale /
 * |update set|; the others weight 0. */
static void assign(comine_peer_plan *plan, const uint8_t *use, uint8_t clean_form, float clean_scale, int n)
{
    int size = 0;
    for (int i = 0; i < n; i++) size += use[i] != 0;
    for (int i = 0; i < n; i++) {
        plan->form[i] = COMINE_FORM_ARCFACE;
        plan->weight[i] = 0.0f;
        if (!use[i] || size == 0) continue;
        bool clean = use[i] == 2;
        if (clean) plan->form[i] = clean_form;
        plan->weight[i] = (float)((clean ? (double)clean_scale : 1.0) / size);
    }
}

/* The scratch: two int index arrays, then the small-loss sets GA, GB and use, one byte each. */
size_t comine_select_scratch_bytes(int n)
{
    COMINE_ASSERT(n >= 1);
    return (size_t)n * (2 * sizeof(int) + 3);
}

void comine_select(comine_selection *sel, const float *loss_a, const float *loss_b, const uint8_t *truth_noisy,
                   int n, float drop_rate, const comine_select_cfg *cfg, void *scratch)
{
    COMINE_ASSERT(n >= 1 && cfg != NULL && scratch != NULL && sel->noisy != NULL);
    comine_sets *sets = &sel->sets;
    uint8_t *noisy = sel->noisy;
    memset(noisy, 0, (size_t)n);
    memset(sets, 0, sizeof *sets);
    sets->n = n;
    int *idx = scratch, *tmp = idx + n;
    uint8_t *ga = (uint8_t *)(tmp + n), *gb = ga + n;
    uint8_t *use = gb + n; /* 0 = not learned from, 1 = plain, 2 = in C (re-weighted under comining) */

    if (!comine_mode_two_peers(cfg->mode)) {
        COMINE_ASSERT(cfg->mode == COMINE_MODE_ARCFACE || truth_noisy != NULL);
        int size = 0;
        for (int i = 0; i < n; i++) {
            use[i] = cfg->mode == COMINE_MODE_ARCFACE || !truth_noisy[i];
            size += use[i];
        }
        assign(&sel->plan_a, use, COMINE_FORM_ARCFACE, 1.0f, n);
        sets->keep = sets->n_clean = size;
        return;
    }

    COMINE_ASSERT(loss_b != NULL && sel->plan_b.form != NULL && sel->plan_b.weight != NULL);
    int keep = comine_keep_count(n, drop_rate);
    small_loss_set(ga, loss_a, n, keep, idx, tmp);
    small_loss_set(gb, loss_b, n, keep, idx, tmp);
    sets->keep = keep;
    for (int i = 0; i < n; i++) {
        sets->n_clean += ga[i] && gb[i];
        sets->n_exchanged_a += gb[i] && !ga[i];
        sets->n_exchanged_b += ga[i] && !gb[i];
        noisy[i] = !ga[i] && !gb[i];
        sets->n_noisy += noisy[i];
    }

    uint8_t clean_form = COMINE_FORM_ARCFACE;
    float clean_scale = 1.0f;
    switch (cfg->mode) {
    case COMINE_MODE_SELF: /* A on GA, B on GB */
        assign(&sel->plan_a, ga, clean_form, clean_scale, n);
        assign(&sel->plan_b, gb, clean_form, clean_scale, n);
        break;
    case COMINE_MODE_NLD: /* both on the batch minus N */
        for (int i = 0; i < n; i++) use[i] = !noisy[i];
        assign(&sel->plan_a, use, clean_form, clean_scale, n);
        assign(&sel->plan_b, use, clean_form, clean_scale, n);
        break;
    case COMINE_MODE_COTEACH: /* A on GB, B on GA */
        assign(&sel->plan_a, gb, clean_form, clean_scale, n);
        assign(&sel->plan_b, ga, clean_form, clean_scale, n);
        break;
    case COMINE_MODE_COMINING: /* A on C~ + XA, B on C~ + XB */
        switch (cfg->reweight) {
        case COMINE_REWEIGHT_MARGIN: clean_form = COMINE_FORM_MARGIN; break;
        case COMINE_REWEIGHT_WEIGHT: clean_scale = cfg->w; break;
        case COMINE_REWEIGHT_MV: clean_form = COMINE_FORM_MV; break;
        default: COMINE_ASSERT(!"unknown re-weighting");
        }
        for (int i = 0; i < n; i++) use[i] = ga[i] && gb[i] ? 2 : gb[i];
        assign(&sel->plan_a, use, clean_form, clean_scale, n);
        for (int i = 0; i < n; i++) use[i] = ga[i] && gb[i] ? 2 : ga[i];
        assign(&sel->plan_b, use, clean_form, clean_scale, n);
        break;
    default: COMINE_ASSERT(!"unknown mode");
    }
    if (!comine_mode_detects(cfg->mode)) memset(noisy, 0, (size_t)n);
}

const char *comine_reweight_schedule_name(comine_reweight_schedule s)
{
    return (int)s >= 0 && (int)s < COUNT(schedule_names) ? schedule_names[s] : "unknown";
}

bool comine_reweight_schedule_parse(const char *s, comine_reweight_schedule *out)
{
    for (int i = 0; s && i < COUNT(schedule_names); i++)
        if (!strcmp(s, schedule_names[i])) {
            *out = (comine_reweight_schedule)i;
            return true;
        }
    return false;
}

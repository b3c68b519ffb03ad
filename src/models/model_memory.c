/* model_memory.c: where every value of a built graph (model_graph.c) lives, decided once at
 * create for max_batch images, before the arenas are allocated.
 *
 * - activations: every value of a training forward is kept for backward (one arena),
 *   except the output of a BN that only the next op reads (a conv or a PReLU): that one is
 *   written to one of two scratch buffers (alternately) and computed again from the BN's
 *   input and saved statistics just before the reading op's backward; a residual add
 *   writes over an operand that nothing else reads.  The eval forward writes into the same
 *   arena (it overwrites a pending training forward) and runs each BN that only reads a
 *   conv's output folded into that conv;
 * - gradients of values: slots shared by liveness during backward (a second arena).
 * Assumes the ops are in execution order and that an op's backward never reads its own
 * output.  Every region is rounded up to 16 floats.  The passes only set offsets, sizes and
 * flags in the graph; comine_model_create_uninit allocates from the totals. */
#include "comine/model.h"

#include <stdint.h>
#include <stdlib.h>

#include "models/model_impl.h"

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* How many op inputs read each value (an add of a value to itself counts twice): the
 * passes below decide from it which values have a single reader.  Caller frees. */
static int *count_readers(const comine_model *m)
{
    int *readers = comine_calloc((size_t)m->n_values, sizeof *readers);
    for (int i = 0; i < m->n_ops; i++) {
        readers[m->ops[i].in]++;
        if (m->ops[i].in2 >= 0) readers[m->ops[i].in2]++;
    }
    return readers;
}

/* Decides which batch norms fold into a conv in an eval forward: a BN right after a conv,
 * reading that conv's output and nothing else reading it (the conv then writes the BN's
 * output).  Sets conv->fold, conv->fold_offset, bn->folded and m->n_folded (the folded
 * weight then bias of each such conv, back to back). */
static void plan_bn_folding(comine_model *m, const int *readers)
{
    for (int i = 0; i + 1 < m->n_ops; i++) {
        model_op *conv = &m->ops[i], *bn = &m->ops[i + 1];
        if (conv->kind != MODEL_OP_CONV || bn->kind != MODEL_OP_BN || bn->in != conv->out || readers[conv->out] != 1)
            continue;
        COMINE_ASSERT(bn->C == conv->OC);
        conv->fold = i + 1;
        conv->fold_offset = m->n_folded;
        bn->folded = true;
        m->n_folded += round16(m->params_table.info[conv->w].size + (size_t)conv->OC);
    }
    /* a BN before a conv (iresnet's first BN of a block) keeps room for its eval scale and
     * shift, which that conv may apply to its input (hand_over_bns in model_exec.c) */
    for (int i = 0; i + 1 < m->n_ops; i++) {
        model_op *bn = &m->ops[i], *conv = &m->ops[i + 1];
        if (bn->kind != MODEL_OP_BN || bn->folded || conv->kind != MODEL_OP_CONV || conv->in != bn->out ||
            readers[bn->out] != 1)
            continue;
        bn->affine_offset = m->n_folded;
        m->n_folded += round16(2 * (size_t)bn->C);
    }
}

/* Decides which residual adds write in place: an add writes over an operand that nothing
 * else reads (the first such operand of the same size), since no op's backward reads its
 * own output and the add's backward reads no input, so that operand (the branch's last BN
 * output) is dead once added.  alias[v] = the value whose memory v shares, -1 none. */
static void plan_inplace_adds(const comine_model *m, const int *readers, int *alias)
{
    for (int v = 0; v < m->n_values; v++) alias[v] = -1;
    for (int i = 0; i < m->n_ops; i++) {
        const model_op *op = &m->ops[i];
        if (op->kind != MODEL_OP_ADD || op->in == op->in2) continue;
        if (op->in > 0 && readers[op->in] == 1 && m->values[op->in].size == m->values[op->out].size)
            alias[op->out] = op->in;
        else if (op->in2 > 0 && readers[op->in2] == 1 && m->values[op->in2].size == m->values[op->out].size)
            alias[op->out] = op->in2;
    }
}

/* Decides which BN outputs are not kept for backward: the output of a BN that only the
 * next op reads, when that op is a conv or a PReLU, is recomputed before that op's backward
 * (bn->recompute, value->transient).  Transient values, in op order, alternate between two
 * scratch buffers (an eval forward's folded conv may read one transient value and write the
 * next): value->offset holds which one (0 or 1) until lay_out_activations, and scratch[k]
 * the size buffer k needs. */
static void plan_transient_bn_outputs(comine_model *m, const int *readers, size_t scratch[2])
{
    int parity = 0;
    scratch[0] = scratch[1] = 0;
    m->scratch_image[0] = m->scratch_image[1] = 0;
    for (int i = 0; i + 1 < m->n_ops; i++) {
        model_op *bn = &m->ops[i];
        const model_op *next = &m->ops[i + 1];
        if (bn->kind != MODEL_OP_BN || readers[bn->out] != 1 || next->in != bn->out || next->in2 == bn->out ||
            (next->kind != MODEL_OP_CONV && next->kind != MODEL_OP_PRELU))
            continue;
        model_value *v = &m->values[bn->out];
        bn->recompute = true;
        v->transient = true;
        v->offset = (size_t)parity;
        v->scratch = parity;
        if (v->size > m->scratch_image[parity]) m->scratch_image[parity] = v->size;
        size_t need = round16(v->size * (size_t)m->max_batch);
        if (need > scratch[parity]) scratch[parity] = need;
        parity ^= 1;
    }
}

/* Decides each value's offset in the activation arena: the kept values back to back in
 * value order, then the two scratch buffers; an aliased value takes its operand's offset, a
 * transient one its scratch buffer's.  Sets m->n_acts. */
static void lay_out_activations(comine_model *m, const int *alias, const size_t scratch[2])
{
    size_t total = 0;
    for (int v = 0; v < m->n_values; v++) {
        if (alias[v] >= 0 || m->values[v].transient) continue;
        m->values[v].offset = total;
        total += round16(m->values[v].size * (size_t)m->max_batch);
    }
    for (int v = 0; v < m->n_values; v++) {
        if (alias[v] >= 0) m->values[v].offset = m->values[alias[v]].offset;
        else if (m->values[v].transient) m->values[v].offset = m->values[v].offset ? total + scratch[0] : total;
    }
    m->n_acts = total + scratch[0] + scratch[1];
}

/* Decides where the gradient of each value lives during backward (value->grad_slot and
 * grad_offset, m->n_dacts) and which op writes an input's gradient first (op->zero_in,
 * zero_in2).  Walking the ops backwards, a value's gradient is live from its first use
 * there (its last consumer in forward order) until its producer has run.  Slots are reused
 * greedily (smallest free slot that fits, else grow the largest free one or add one), then
 * laid out back to back. */
static void plan_grad_slots(comine_model *m)
{
    int n_slots = 0, cap = 16;
    size_t *slot_size = comine_malloc((size_t)cap * sizeof *slot_size);
    bool *slot_free = comine_malloc((size_t)cap * sizeof *slot_free);
    for (int v = 0; v < m->n_values; v++) m->values[v].grad_slot = -1;
    int last = m->ops[m->n_ops - 1].out;
    for (int oi = m->n_ops; oi >= 0; oi--) {
        /* oi == n_ops: the embedding gradient enters before the last op runs */
        int want[2] = {-1, -1};
        int release = -1;
        if (oi == m->n_ops) {
            want[0] = last;
        } else {
            model_op *op = &m->ops[oi];
            want[0] = op->in;
            want[1] = op->in2;
            release = op->out;
            op->zero_in = op->zero_in2 = false;
        }
        for (int k = 0; k < 2; k++) {
            int v = want[k];
            if (v <= 0 || m->values[v].grad_slot >= 0) continue; /* value 0 = images: no gradient */
            size_t need = m->values[v].size * (size_t)m->max_batch;
            int best = -1, largest = -1;
            for (int s = 0; s < n_slots; s++) {
                if (!slot_free[s]) continue;
                if (slot_size[s] >= need && (best < 0 || slot_size[s] < slot_size[best])) best = s;
                if (largest < 0 || slot_size[s] > slot_size[largest]) largest = s;
            }
            if (best < 0 && largest >= 0) {
                best = largest;
                slot_size[best] = need;
            }
            if (best < 0) {
                if (n_slots == cap) {
                    cap *= 2;
                    slot_size = comine_realloc(slot_size, (size_t)cap * sizeof *slot_size);
                    slot_free = comine_realloc(slot_free, (size_t)cap * sizeof *slot_free);
                }
                best = n_slots++;
                slot_size[best] = need;
            }
            slot_free[best] = false;
            m->values[v].grad_slot = best;
            if (oi < m->n_ops) {
                if (k == 0) m->ops[oi].zero_in = true;
                else m->ops[oi].zero_in2 = true;
            }
        }
        if (release > 0 && m->values[release].grad_slot >= 0) slot_free[m->values[release].grad_slot] = true;
    }
    size_t *slot_off = comine_malloc((size_t)(n_slots ? n_slots : 1) * sizeof *slot_off);
    size_t total = 0;
    for (int s = 0; s < n_slots; s++) {
        slot_off[s] = total;
        total += round16(slot_size[s]);
    }
    for (int v = 0; v < m->n_values; v++)
        m->values[v].grad_offset = m->values[v].grad_slot >= 0 ? slot_off[m->values[v].grad_slot] : 0;
    m->n_dacts = total;
    free(slot_size);
    free(slot_free);
    free(slot_off);
}

void comine_model_plan_memory(comine_model *m)
{
    int *readers = count_readers(m);
    int *alias = comine_malloc((size_t)m->n_values * sizeof *alias);
    size_t scratch[2];
    plan_bn_folding(m, readers);
    plan_inplace_adds(m, readers, alias);
    plan_transient_bn_outputs(m, readers, scratch);
    lay_out_activations(m, alias, scratch);
    free(readers);
    free(alias);
    plan_grad_slots(m);
}

/* test_interop_onnx.c: the ONNX reader, writer, export and import (src/interop/).
 * - export -> import of an iresnet18 (width 0.125, input 32, fc over a 2 x 2 map, so the fc
 *   column permutation is exercised) and a MobileFaceNet, with random BN statistics: every
 *   parameter and buffer comes back bit for bit, and the iresnet's embeddings are identical;
 * - without comine's metadata, each of the five architectures recognised from its graph;
 * - the exported graph: opset 11, input "data" (N symbolic, 3, S, S), output "embedding",
 *   initializers under comine's names, PReLU slopes (C, 1, 1);
 * - the wire format: hand-made messages (packed and unpacked repeated fields, float_data,
 *   int64 tensors, unknown fields skipped) and malformed ones (overlong varints, lengths past
 *   the end, groups, data that does not fill the dims, external data) refused with the byte
 *   offset; every prefix of a small exported file and 2000 corrupted copies parse or fail
 *   cleanly (run it under ASan: the CI's sanitizer build);
 * - mismatches named: a swapped pair of initializer names, a missing node, a wrong --arch;
 *   a convolution bias before its batch norm lands in the running mean;
 * - files of other tools (tests/fuzz_corpus/onnx/): torch.onnx.export's iresnet18 with its
 *   batch norms folded imports; an onnx.helper graph that is no face network is refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comine/backend.h"
#include "comine/model.h"
#include "comine/onnx.h"
#include "fixture.h"

static char tmpdir[256];

static char *tmp(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static comine_model *make(const char *name, float width, int input, int emb, uint64_t seed)
{
    comine_arch a;
    comine_arch_default(&a, name);
    a.width = width;
    a.input = input;
    a.emb_dim = emb;
    comine_model *m = NULL;
    if (comine_model_create(&m, &a, comine_backend_cpu(), 4) != COMINE_OK) {
        printf("FAIL create %s: %s\n", name, comine_last_error());
        exit(1);
    }
    comine_model_init(m, seed);
    comine_rng r;
    comine_rng_seed(&r, seed, 99);
    float *b = comine_model_buffers(m), *p = comine_model_params(m);
    for (int i = 0; i < comine_model_num_buffer_tensors(m); i++) {
        const comine_tensor_info *ti = comine_model_buffer_tensor(m, i);
        bool var = strstr(ti->name, "running_var") != NULL, mean = strstr(ti->name, "running_mean") != NULL;
        for (size_t k = 0; k < ti->size; k++)
            if (var) b[ti->offset + k] = 0.5f + comine_rng_uniform(&r);
            else if (mean) b[ti->offset + k] = 0.2f * (comine_rng_uniform(&r) - 0.5f);
    }
    for (int i = 0; i < comine_model_num_tensors(m); i++) { /* BN biases off zero */
        const comine_tensor_info *ti = comine_model_tensor(m, i);
        if (ti->ndim == 1)
            for (size_t k = 0; k < ti->size; k++) p[ti->offset + k] += 0.1f * (comine_rng_uniform(&r) - 0.5f);
    }
    return m;
}

static bool same_state(comine_model *a, comine_model *b)
{
    return comine_model_num_params(a) == comine_model_num_params(b) &&
           comine_model_num_buffers(a) == comine_model_num_buffers(b) &&
           !memcmp(comine_model_params(a), comine_model_params(b), comine_model_num_params(a) * sizeof(float)) &&
           !memcmp(comine_model_buffers(a), comine_model_buffers(b), comine_model_num_buffers(a) * sizeof(float));
}

static void round_trip(const char *name, float width, int input, bool forward)
{
    int mark = fx_fail_count;
    comine_model *m = make(name, width, input, 24, 7), *back = NULL;
    char *path = tmp("rt.onnx");
    FX_EXPECT(comine_onnx_export(m, path) == COMINE_OK, "export: %s", comine_last_error());
    comine_onnx_model *om = NULL;
    FX_EXPECT(comine_onnx_read(&om, path) == COMINE_OK, "read: %s", comine_last_error());
    if (om) {
        FX_EXPECT(om->opset == 11 && om->n_inputs == 1 && om->n_outputs == 1, "opset %lld, %d inputs, %d outputs",
                  (long long)om->opset, om->n_inputs, om->n_outputs);
        const comine_onnx_value *in = &om->inputs[0];
        FX_EXPECT(!strcmp(in->name, "data") && in->ndim == 4 && in->dims[0] == -1 && in->dim_param[0] &&
                      in->dims[1] == 3 && in->dims[2] == input && in->dims[3] == input,
                  "input shape");
        FX_EXPECT(!strcmp(om->outputs[0].name, "embedding") && om->outputs[0].dims[1] == 24, "output");
        FX_EXPECT(om->n_inits == comine_model_num_tensors(m) + comine_model_num_buffer_tensors(m), "%d initializers",
                  om->n_inits);
        for (int i = 0; i < comine_model_num_tensors(m); i++)
            FX_EXPECT(comine_onnx_find_init(om, comine_model_tensor(m, i)->name) != NULL, "no initializer %s",
                      comine_model_tensor(m, i)->name);
        const comine_onnx_tensor *pr = comine_onnx_find_init(om, !strcmp(name, "mobilefacenet") ? "layers.0.layers.2.weight"
                                                                                                 : "prelu.weight");
        FX_EXPECT(pr && pr->ndim == 3 && pr->dims[1] == 1 && pr->dims[2] == 1, "PReLU slope (C, 1, 1)");
        comine_onnx_free(om);
    }
    FX_EXPECT(comine_onnx_import(&back, path, NULL, comine_backend_cpu(), 4) == COMINE_OK, "import: %s",
              comine_last_error());
    if (back) {
        FX_EXPECT(!memcmp(comine_model_arch(back), comine_model_arch(m), sizeof(comine_arch)), "architecture");
        FX_EXPECT(same_state(m, back), "parameters and buffers differ after the round trip");
        if (forward) {
            int S = input, N = 3, D = 24;
            float *x = comine_alloc_floats((size_t)N * S * S * 3), *e1 = comine_alloc_floats((size_t)N * D),
                  *e2 = comine_alloc_floats((size_t)N * D);
            comine_rng r;
            comine_rng_seed(&r, 3, 1);
            for (size_t k = 0; k < (size_t)N * S * S * 3; k++) x[k] = 2 * comine_rng_uniform(&r) - 1;
            comine_model_forward(m, e1, x, N, false, NULL);
            comine_model_forward(back, e2, x, N, false, NULL);
            fx_check("round trip: the same embeddings", e2, e1, (size_t)N * D, 0, 0);
            comine_free_floats(x);
            comine_free_floats(e1);
            comine_free_floats(e2);
        }
        comine_model_free(back);
    }
    comine_model_free(m);
    FX_SUMMARY(mark, "%s (width %g, input %d): export -> import gives every tensor back bit for bit\n", name,
               (double)width, input);
}

/* Without comine's metadata (as torch.onnx.export writes files) the architecture is recognised
 * from the graph alone: the convolution count, the stem's width, the input shape, the fc. */
static void recognise(const char *name, float width, int input)
{
    comine_model *m = make(name, width, input, 8, 11), *back = NULL;
    char *path = tmp("nometa.onnx");
    comine_onnx_model *om = NULL;
    if (comine_onnx_export(m, path) != COMINE_OK || comine_onnx_read(&om, path) != COMINE_OK) {
        FX_EXPECT(0, "%s: export / read: %s", name, comine_last_error());
        comine_model_free(m);
        return;
    }
    for (int i = 0; i < om->n_meta; i++) {
        free(om->meta_keys[i]);
        free(om->meta_values[i]);
    }
    om->n_meta = 0;
    comine_onnx_write(om, path);
    comine_onnx_free(om);
    comine_status st = comine_onnx_import(&back, path, NULL, comine_backend_cpu(), 1);
    bool ok = st == COMINE_OK && !memcmp(comine_model_arch(back), comine_model_arch(m), sizeof(comine_arch)) &&
              same_state(m, back);
    printf("%s %s (width %g, input %d) recognised without metadata%s%s\n", ok ? "ok  " : "FAIL", name, (double)width,
           input, st ? ": " : "", st ? comine_last_error() : "");
    fx_fail_count += !ok;
    if (back) comine_model_free(back);
    comine_model_free(m);
    remove(path);
}

/* parse bytes; expect failure with `needle` in the message (NULL: expect success) */
static void expect_parse(const char *what, const uint8_t *b, size_t n, const char *needle)
{
    comine_onnx_model *om = NULL;
    comine_status st = comine_onnx_parse(&om, b, n, "mem.onnx");
    if (!needle) FX_EXPECT(st == COMINE_OK, "%s: %s", what, comine_last_error());
    else FX_EXPECT(st != COMINE_OK && strstr(comine_last_error(), needle), "%s: status %d, '%s' (wanted '%s')", what, st,
                   st ? comine_last_error() : "", needle);
    if (st == COMINE_OK) printf("ok   %s: parsed\n", what);
    else if (needle && strstr(comine_last_error(), needle)) printf("ok   %s: %s\n", what, comine_last_error());
    comine_onnx_free(om);
}

static void wire_format(void)
{
    /* ModelProto { graph (7) { initializer (5) { dims 2, 3 (packed); data_type 1; name "w";
     * float_data unpacked x 6 } node (1) { input "x" output "y" op_type "Relu" attribute {
     * name "a" ints 1,2 packed type 7 } } }, field 99 (unknown, varint) } */
    uint8_t t[128], g[256], model[300];
    size_t nt = 0, ng = 0, nm = 0;
    t[nt++] = 0x0a, t[nt++] = 2, t[nt++] = 2, t[nt++] = 3;     /* dims packed */
    t[nt++] = 0x10, t[nt++] = 1;                                /* data_type FLOAT */
    t[nt++] = 0x42, t[nt++] = 1, t[nt++] = 'w';                 /* name */
    for (int k = 0; k < 6; k++) {                               /* float_data, fixed32 each */
        float f = (float)k * 0.5f;
        t[nt++] = 0x25;
        memcpy(t + nt, &f, 4);
        nt += 4;
    }
    g[ng++] = 0x2a, g[ng++] = (uint8_t)nt;
    memcpy(g + ng, t, nt), ng += nt;
    const uint8_t node[] = {0x0a, 1, 'x', 0x12, 1, 'y', 0x22, 4, 'R', 'e', 'l', 'u',
                            0x2a, 10, 0x0a, 1, 'a', 0x42, 2, 1, 2, 0xa0, 1, 7};
    g[ng++] = 0x0a, g[ng++] = sizeof node;
    memcpy(g + ng, node, sizeof node), ng += sizeof node;
    model[nm++] = 0x08, model[nm++] = 7;                 /* ir_version */
    model[nm++] = 0x3a, model[nm++] = (uint8_t)ng;       /* graph */
    memcpy(model + nm, g, ng), nm += ng;
    model[nm++] = 0x98, model[nm++] = 0x06, model[nm++] = 5; /* field 99, varint */
    comine_onnx_model *om = NULL;
    int mark = fx_fail_count;
    if (comine_onnx_parse(&om, model, nm, "mem.onnx") == COMINE_OK) {
        const comine_onnx_tensor *w = comine_onnx_find_init(om, "w");
        FX_EXPECT(w && w->ndim == 2 && w->dims[0] == 2 && w->dims[1] == 3 && w->n == 6 && w->data[5] == 2.5f,
                  "float_data tensor");
        FX_EXPECT(om->n_nodes == 1 && !strcmp(om->nodes[0].op_type, "Relu") && om->nodes[0].n_attrs == 1 &&
                      om->nodes[0].attrs[0].n_ints == 2 && om->nodes[0].attrs[0].ints[1] == 2,
                  "node with a packed ints attribute");
        comine_onnx_free(om);
    } else {
        FX_EXPECT(0, "hand-made model: %s", comine_last_error());
    }
    FX_SUMMARY(mark, "hand-made model: packed dims, unpacked float_data, packed ints, unknown field skipped\n");

    const uint8_t overlong[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    expect_parse("varint of 11 bytes", overlong, sizeof overlong, "byte 1: varint");
    const uint8_t past[] = {0x3a, 0x10, 0x0a, 0x00};
    expect_parse("length past the end", past, sizeof past, "byte 0: field 7: length 16 runs past");
    const uint8_t group[] = {0x3b, 0x3c};
    expect_parse("group wire type", group, sizeof group, "unsupported wire type 3");
    const uint8_t nograph[] = {0x08, 0x07};
    expect_parse("no graph", nograph, sizeof nograph, "no graph");
    /* graph { initializer { dims 4, data_type 1, raw_data of 12 bytes } } */
    const uint8_t short_raw[] = {0x3a, 20, 0x2a, 18, 0x08, 4, 0x10, 1, 0x4a, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    expect_parse("raw_data shorter than dims", short_raw, sizeof short_raw, "holds 3 elements, its dimensions 4");
    const uint8_t ext[] = {0x3a, 6, 0x2a, 4, 0x10, 1, 0x70, 1};
    expect_parse("external data", ext, sizeof ext, "external data is not supported");
    const uint8_t negdim[] = {0x3a, 15, 0x2a, 13, 0x08, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x10, 1};
    expect_parse("negative dimension", negdim, sizeof negdim, "dimension 0 is -2");
    const uint8_t zerofield[] = {0x00, 0x01};
    expect_parse("field number 0", zerofield, sizeof zerofield, "field number 0");
}

/* Every prefix of a small exported model, and random corruptions: no crash, no leak. */
static void robustness(void)
{
    comine_model *m = make("iresnet18", 0.02f, 16, 4, 1);
    char *path = tmp("small.onnx");
    uint8_t *data = NULL;
    size_t n = 0;
    FX_EXPECT(comine_onnx_export(m, path) == COMINE_OK && comine_read_file(path, &data, &n) == COMINE_OK, "export");
    comine_model_free(m);
    int mark = fx_fail_count, refused = 0, step = n > 4000 ? (int)(n / 4000) : 1;
    for (size_t k = 0; k < n; k += (size_t)step) {
        comine_onnx_model *om = NULL;
        comine_status st = comine_onnx_parse(&om, data, k, "prefix.onnx");
        if (st) {
            refused++;
            FX_EXPECT(strstr(comine_last_error(), "prefix.onnx") != NULL, "message without the file: %s",
                      comine_last_error());
        }
        comine_onnx_free(om);
    }
    FX_SUMMARY(mark, "%zu prefixes of a %zu-byte export: %d refused with the file named, none crashed\n",
               (n + step - 1) / step, n, refused);
    comine_rng r;
    comine_rng_seed(&r, 5, 1);
    uint8_t *copy = malloc(n);
    int parsed = 0;
    for (int it = 0; it < 2000; it++) {
        memcpy(copy, data, n);
        for (int f = 0; f < 4; f++) copy[comine_rng_below(&r, (uint32_t)n)] = (uint8_t)comine_rng_u64(&r);
        comine_onnx_model *om = NULL;
        if (comine_onnx_parse(&om, copy, n, "corrupt.onnx") == COMINE_OK) parsed++;
        comine_onnx_free(om);
    }
    printf("ok   2000 copies with 4 random bytes each: %d parsed, %d refused, none crashed\n", parsed, 2000 - parsed);
    free(copy);
    free(data);
}

static void import_errors(void)
{
    comine_model *m = make("iresnet18", 0.125f, 32, 16, 2), *back = NULL;
    char *path = tmp("e.onnx"), *bad = tmp("bad.onnx");
    comine_onnx_export(m, path);
    comine_model_free(m);
    comine_onnx_model *om = NULL;
    comine_onnx_read(&om, path);
    if (!om) {
        FX_EXPECT(0, "read: %s", comine_last_error());
        return;
    }
    /* the names of two initializers of one shape swapped, and the node's inputs with them:
     * the same computation, but the names disagree with comine's */
    comine_onnx_tensor *a = NULL, *b = NULL;
    comine_onnx_node *bn = NULL;
    for (int i = 0; i < om->n_inits; i++) {
        if (!strcmp(om->inits[i].name, "layer1.0.bn2.weight")) a = &om->inits[i];
        if (!strcmp(om->inits[i].name, "layer1.0.bn2.bias")) b = &om->inits[i];
    }
    for (int i = 0; i < om->n_nodes; i++)
        if (om->nodes[i].n_inputs > 2 && !strcmp(om->nodes[i].inputs[1], "layer1.0.bn2.weight")) bn = &om->nodes[i];
    if (!a || !b || !bn) {
        FX_EXPECT(0, "layer1.0.bn2 not found in the export");
        comine_onnx_free(om);
        return;
    }
    char *tn = a->name;
    a->name = b->name;
    b->name = tn;
    tn = bn->inputs[1];
    bn->inputs[1] = bn->inputs[2];
    bn->inputs[2] = tn;
    comine_onnx_write(om, bad);
    comine_status st = comine_onnx_import(&back, bad, NULL, comine_backend_cpu(), 1);
    bool ok = st && strstr(comine_last_error(), "'layer1.0.bn2.bias' sits where comine's layer1.0.bn2.weight");
    printf("%s swapped initializer names: %s\n", ok ? "ok  " : "FAIL", comine_last_error());
    fx_fail_count += !ok;
    tn = a->name; /* back as exported */
    a->name = b->name;
    b->name = tn;
    tn = bn->inputs[1];
    bn->inputs[1] = bn->inputs[2];
    bn->inputs[2] = tn;
    /* drop the last node (the embedding's batch norm) */
    om->n_nodes--;
    comine_onnx_write(om, bad);
    om->n_nodes++;
    st = comine_onnx_import(&back, bad, NULL, comine_backend_cpu(), 1);
    ok = st && strstr(comine_last_error(), "features.bias");
    printf("%s missing node: %s\n", ok ? "ok  " : "FAIL", comine_last_error());
    fx_fail_count += !ok;
    /* a bias on the stem convolution, before its BatchNormalization: moved into bn1's mean */
    comine_onnx_node *conv = &om->nodes[0];
    const comine_onnx_tensor *w = comine_onnx_find_init(om, "conv1.weight");
    int OC = w ? (int)w->dims[0] : 0;
    om->inits = realloc(om->inits, (size_t)(om->n_inits + 1) * sizeof *om->inits);
    comine_onnx_tensor *cb = &om->inits[om->n_inits++];
    memset(cb, 0, sizeof *cb);
    cb->name = strdup("conv1.extra_bias");
    cb->data_type = COMINE_ONNX_FLOAT;
    cb->ndim = 1;
    cb->dims[0] = OC;
    cb->n = (size_t)OC;
    cb->data = malloc((size_t)OC * sizeof(float) + 1);
    for (int c = 0; c < OC; c++) cb->data[c] = 0.25f * (float)(c + 1);
    conv->inputs = realloc(conv->inputs, 3 * sizeof(char *));
    conv->inputs[conv->n_inputs++] = strdup("conv1.extra_bias");
    comine_onnx_write(om, bad);
    st = comine_onnx_import(&back, bad, NULL, comine_backend_cpu(), 1);
    ok = st == COMINE_OK && !strcmp(conv->op_type, "Conv");
    if (ok) {
        int v = comine_model_find_tensor(back, "bn1.running_mean", NULL);
        const float *mean = comine_model_buffers(back) + comine_model_buffer_tensor(back, v)->offset;
        const comine_onnx_tensor *ref = comine_onnx_find_init(om, "bn1.running_mean");
        for (int c = 0; c < OC; c++) ok = ok && mean[c] == ref->data[c] - cb->data[c];
        comine_model_free(back);
        back = NULL;
    }
    printf("%s a convolution bias before its batch norm goes into the running mean%s%s\n", ok ? "ok  " : "FAIL",
           st ? ": " : "", st ? comine_last_error() : "");
    fx_fail_count += !ok;
    comine_onnx_free(om);
    st = comine_onnx_import(&back, path, "iresnet34", comine_backend_cpu(), 1);
    ok = st && strstr(comine_last_error(), "iresnet34");
    printf("%s wrong architecture: %s\n", ok ? "ok  " : "FAIL", comine_last_error());
    fx_fail_count += !ok;
    if (back) comine_model_free(back);
}

/* Files made by other tools (tests/fuzz_corpus/onnx/): torch.onnx.export of insightface's
 * iresnet18 (width 0.02, input 16, 4-d; batch norms folded into the convolutions), and a tiny
 * onnx.helper graph that is no face network. */
static void foreign_files(void)
{
    int mark = fx_fail_count;
    comine_model *m = NULL;
    const char *torch = COMINE_SOURCE_DIR "/tests/fuzz_corpus/onnx/torch_iresnet18_w002.onnx";
    comine_status st = comine_onnx_import(&m, torch, NULL, comine_backend_cpu(), 1);
    FX_EXPECT(st == COMINE_OK, "import %s: %s", torch, comine_last_error());
    if (m) {
        const comine_arch *a = comine_model_arch(m);
        FX_EXPECT(!strcmp(a->name, "iresnet18") && a->input == 16 && a->emb_dim == 4, "architecture %s %d %d", a->name,
                  a->input, a->emb_dim);
        bool buf;
        int v = comine_model_find_tensor(m, "layer1.0.bn2.running_var", &buf), g = comine_model_find_tensor(m, "bn1.weight", NULL);
        const float *var = comine_model_buffers(m) + comine_model_buffer_tensor(m, v)->offset;
        FX_EXPECT(buf && var[0] == 1.0f - 1e-5f && comine_model_params(m)[comine_model_tensor(m, g)->offset] == 1.0f,
                  "a folded batch norm becomes weight 1, var 1 - eps");
        comine_model_free(m);
    }
    FX_SUMMARY(mark, "torch.onnx.export's iresnet18 (batch norms folded) imported\n");
    const char *tiny = COMINE_SOURCE_DIR "/tests/fuzz_corpus/onnx/reshape_matmul.onnx";
    st = comine_onnx_import(&m, tiny, NULL, comine_backend_cpu(), 1);
    bool ok = st && strstr(comine_last_error(), "0 convolutions");
    printf("%s not a face network: %s\n", ok ? "ok  " : "FAIL", st ? comine_last_error() : "imported");
    fx_fail_count += !ok;
}

int main(void)
{
    comine_log_set_level(COMINE_LOG_ERROR);
    snprintf(tmpdir, sizeof tmpdir, "%s/test_interop_onnx.%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    comine_mkdirs(tmpdir);
    round_trip("iresnet18", 0.125f, 32, true);
    round_trip("mobilefacenet", 1.0f, 112, false);
    recognise("iresnet18", 0.125f, 32);
    recognise("iresnet34", 0.0625f, 32);
    recognise("iresnet50", 0.0625f, 64);
    recognise("iresnet100", 0.0625f, 32);
    recognise("mobilefacenet", 1.0f, 112);
    wire_format();
    robustness();
    import_errors();
    foreign_files();
    remove(tmp("rt.onnx"));
    remove(tmp("small.onnx"));
    remove(tmp("e.onnx"));
    remove(tmp("bad.onnx"));
    rmdir(tmpdir);
    return fx_finish("test_interop_onnx");
}

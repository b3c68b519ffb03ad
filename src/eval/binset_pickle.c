/* binset_pickle.c: the stack machine that reads the pickle of an insightface verification
 * set (binset.c takes its result apart).  It runs the pickle's opcodes knowing only the values
 * that structure needs (bytes, text, bools, lists, tuples, and the _codecs.encode / bytes
 * callables of Python 3's protocol-2 bytes); anything else is refused at its byte offset.
 * Image bytes are not copied: they point into the caller's data, except the latin-1 text of
 * protocol-2 bytes, decoded into own buffers.  Memory is linear in the number of opcodes
 * (one value per opcode at most, bools take none), which is bounded. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/binset_impl.h"

#define MAX_OPS (1 << 28)

/* Names of every pickle opcode (protocols 0 to 5), for messages. */
static const char *op_name(int op)
{
    switch (op) {
    case '(': return "MARK";            case '.': return "STOP";           case '0': return "POP";
    case '1': return "POP_MARK";        case '2': return "DUP";            case 'F': return "FLOAT";
    case 'I': return "INT";             case 'J': return "BININT";         case 'K': return "BININT1";
    case 'L': return "LONG";            case 'M': return "BININT2";        case 'N': return "NONE";
    case 'P': return "PERSID";          case 'Q': return "BINPERSID";      case 'R': return "REDUCE";
    case 'S': return "STRING";          case 'T': return "BINSTRING";      case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";         case 'X': return "BINUNICODE";     case 'a': return "APPEND";
    case 'b': return "BUILD";           case 'c': return "GLOBAL";         case 'd': return "DICT";
    case '}': return "EMPTY_DICT";      case 'e': return "APPENDS";        case 'g': return "GET";
    case 'h': return "BINGET";          case 'i': return "INST";           case 'j': return "LONG_BINGET";
    case 'l': return "LIST";            case ']': return "EMPTY_LIST";     case 'o': return "OBJ";
    case 'p': return "PUT";             case 'q': return "BINPUT";         case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";         case 't': return "TUPLE";          case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";        case 'G': return "BINFLOAT";       case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";  case 0x80: return "PROTO";         case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";           case 0x83: return "EXT2";          case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";         case 0x86: return "TUPLE2";        case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";        case 0x89: return "NEWFALSE";      case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";          case 0x8c: return "SHORT_BINUNICODE"; case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";      case 0x8f: return "EMPTY_SET";     case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";      case 0x92: return "NEWOBJ_EX";     case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";        case 0x95: return "FRAME";         case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";    case 0x98: return "READONLY_BUFFER";
    default: return NULL;
    }
}


comine_status comine_pk_fail_at(const pk *p, int64_t at, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return comine_fail(COMINE_ERR_FORMAT, "%s: byte %lld: %s", p->name, (long long)at, msg);
}

/* "NAME (0xNN)" of the current opcode. */
static const char *cur_op(const pk *p)
{
    static _Thread_local char buf[48];
    const char *n = op_name(p->op);
    if (n) snprintf(buf, sizeof buf, "%s (0x%02x)", n, p->op);
    else snprintf(buf, sizeof buf, "0x%02x (no pickle opcode)", p->op);
    return buf;
}

static void *grow(void *a, int *cap, int need, size_t elem)
{
    if (need <= *cap) return a;
    int c = *cap ? *cap : 16;
    while (c < need) c = c > (1 << 29) ? need : c * 2;
    *cap = c;
    return comine_realloc(a, (size_t)c * elem);
}

static int new_value(pk *p, value_kind kind)
{
    p->values = grow(p->values, &p->cap_values, p->n_values + 1, sizeof(value));
    value *v = &p->values[p->n_values];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->at = p->op_at;
    v->box = -1;
    return p->n_values++;
}

static int new_box(pk *p, value_kind kind)
{
    p->boxes = grow(p->boxes, &p->cap_boxes, p->n_boxes + 1, sizeof(box));
    memset(&p->boxes[p->n_boxes], 0, sizeof(box));
    int v = new_value(p, kind);
    p->values[v].box = p->n_boxes++;
    return v;
}

static void box_add(pk *p, int b, int item)
{
    box *x = &p->boxes[b];
    x->items = grow(x->items, &x->cap, x->n + 1, sizeof(int));
    x->items[x->n++] = item;
}

static void push(pk *p, int v)
{
    p->stack = grow(p->stack, &p->cap_stack, p->n_stack + 1, sizeof(int));
    p->stack[p->n_stack++] = v;
}

/* Values above the innermost MARK (Python's current stack). */
static int above_mark(const pk *p)
{
    return p->n_stack - (p->n_marks ? p->marks[p->n_marks - 1] : 0);
}

static comine_status need_stack(const pk *p, int k)
{
    if (above_mark(p) >= k) return COMINE_OK;
    return comine_pk_fail_at(p, p->op_at, "%s needs %d value%s on the stack%s, found %d", cur_op(p), k, k == 1 ? "" : "s",
                   p->n_marks ? " above its MARK" : "", above_mark(p));
}

const char *comine_pk_describe(const pk *p, int v)
{
    if (v == V_TRUE || v == V_FALSE) return "a bool";
    switch (p->values[v].kind) {
    case K_BYTES: return "bytes";
    case K_TEXT: return "a text string";
    case K_LIST: return "a list";
    case K_TUPLE: return "a tuple";
    case K_ENCODE: return "the callable _codecs.encode";
    case K_BYTES_TYPE: return "the type bytes";
    }
    return "?";
}

bool comine_pk_is_kind(const pk *p, int v, value_kind k)
{
    return v >= 0 && p->values[v].kind == k;
}

/* Read an n-byte little-endian unsigned operand. */
static comine_status operand(pk *p, int n, uint64_t *out)
{
    if (p->size - p->pos < (size_t)n)
        return comine_pk_fail_at(p, (int64_t)p->size, "the file ends inside the %d-byte operand of %s at byte %lld "
                       "(truncated file?)", n, cur_op(p), (long long)p->op_at);
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p->data[p->pos + i] << (8 * i);
    p->pos += (size_t)n;
    *out = v;
    return COMINE_OK;
}

/* The `len` bytes after the operand. */
static comine_status payload(pk *p, uint64_t len, const char *what, const uint8_t **out)
{
    if (len > p->size - p->pos)
        return comine_pk_fail_at(p, p->op_at, "%s of %llu bytes runs past the end of the file (%llu bytes left after its "
                       "length, expected the whole %s; truncated file?)", cur_op(p), (unsigned long long)len,
                       (unsigned long long)(p->size - p->pos), what);
    *out = p->data + p->pos;
    p->pos += (size_t)len;
    return COMINE_OK;
}

/* ---- memo: u32 key -> value ---------------------------------------------------------------- */
static int *memo_slot(pk *p, uint32_t key, bool insert)
{
    if (insert && (p->memo_n + 1) * 2 > p->memo_slots) {
        size_t ns = p->memo_slots ? p->memo_slots * 2 : 256;
        uint32_t *keys = comine_calloc(ns, sizeof(uint32_t));
        int *vals = comine_malloc(ns * sizeof(int));
        for (size_t i = 0; i < p->memo_slots; i++) {
            if (!p->memo_key[i]) continue;
            size_t h = (p->memo_key[i] * 2654435761u) & (ns - 1);
            while (keys[h]) h = (h + 1) & (ns - 1);
            keys[h] = p->memo_key[i];
            vals[h] = p->memo_val[i];
        }
        free(p->memo_key);
        free(p->memo_val);
        p->memo_key = keys;
        p->memo_val = vals;
        p->memo_slots = ns;
    }
    if (!p->memo_slots) return NULL;
    uint32_t k1 = key + 1;  /* keys are stored + 1; key 0xffffffff is refused by the caller */
    size_t h = (k1 * 2654435761u) & (p->memo_slots - 1);
    while (p->memo_key[h]) {
        if (p->memo_key[h] == k1) return &p->memo_val[h];
        h = (h + 1) & (p->memo_slots - 1);
    }
    if (!insert) return NULL;
    p->memo_key[h] = k1;
    p->memo_n++;
    return &p->memo_val[h];
}

static comine_status memo_put(pk *p, uint64_t key)
{
    if (key >= 0xffffffffu)
        return comine_pk_fail_at(p, p->op_at, "%s: memo key %llu out of range", cur_op(p), (unsigned long long)key);
    comine_status st = need_stack(p, 1);
    if (st) return st;
    *memo_slot(p, (uint32_t)key, true) = p->stack[p->n_stack - 1];
    return COMINE_OK;
}

static comine_status memo_get(pk *p, uint64_t key)
{
    int *v = key < 0xffffffffu ? memo_slot(p, (uint32_t)key, false) : NULL;
    if (!v)
        return comine_pk_fail_at(p, p->op_at, "%s of memo key %llu, which no earlier BINPUT / LONG_BINPUT / MEMOIZE stored",
                       cur_op(p), (unsigned long long)key);
    push(p, *v);
    return COMINE_OK;
}

/* ---- the pieces of Python 3's protocol-2 bytes: _codecs.encode(text, 'latin1') ----------- */
static comine_status global(pk *p, const uint8_t *mod, size_t mod_len, const uint8_t *name, size_t name_len)
{
    char m[64], n[64];
    snprintf(m, sizeof m, "%.*s", (int)(mod_len < 63 ? mod_len : 63), (const char *)mod);
    snprintf(n, sizeof n, "%.*s", (int)(name_len < 63 ? name_len : 63), (const char *)name);
    bool exact = mod_len == strlen(m) && name_len == strlen(n);
    if (exact && !strcmp(m, "_codecs") && !strcmp(n, "encode")) {
        push(p, new_value(p, K_ENCODE));
        return COMINE_OK;
    }
    if (exact && (!strcmp(m, "__builtin__") || !strcmp(m, "builtins")) && !strcmp(n, "bytes")) {
        push(p, new_value(p, K_BYTES_TYPE));
        return COMINE_OK;
    }
    for (char *c = m; *c; c++)
        if ((unsigned char)*c < 32 || (unsigned char)*c > 126) *c = '?';
    for (char *c = n; *c; c++)
        if ((unsigned char)*c < 32 || (unsigned char)*c > 126) *c = '?';
    return comine_pk_fail_at(p, p->op_at, "%s names %s.%s, which is not part of an insightface verification set (expected only "
                   "_codecs.encode or bytes, the bytes of a Python 3 protocol-2 pickle)", cur_op(p), m, n);
}

static bool text_is(const pk *p, int v, const char *s)
{
    return comine_pk_is_kind(p, v, K_TEXT) && p->values[v].len == strlen(s) && !memcmp(p->values[v].data, s, strlen(s));
}

/* UTF-8 text of code points 0..255 -> those bytes. */
static comine_status latin1(pk *p, int text, int *out)
{
    const value *t = &p->values[text];
    uint8_t *buf = comine_malloc(t->len ? t->len : 1);
    size_t n = 0;
    for (uint64_t i = 0; i < t->len;) {
        uint8_t c = t->data[i];
        if (c < 0x80) {
            buf[n++] = c;
            i++;
        } else if ((c == 0xc2 || c == 0xc3) && i + 1 < t->len && (t->data[i + 1] & 0xc0) == 0x80) {
            buf[n++] = (uint8_t)((c & 0x1f) << 6 | (t->data[i + 1] & 0x3f));
            i += 2;
        } else {
            free(buf);
            return comine_pk_fail_at(p, t->at, "the text given to _codecs.encode(..., 'latin1') is not UTF-8 of code points "
                           "0..255 at its byte %llu (expected the latin-1 text of an image's bytes)",
                           (unsigned long long)i);
        }
    }
    p->owned = grow(p->owned, &p->cap_owned, p->n_owned + 1, sizeof(uint8_t *));
    p->owned[p->n_owned++] = buf;
    int64_t at = t->at;
    int v = new_value(p, K_BYTES);  /* may move p->values: t is not used after this */
    p->values[v].data = buf;
    p->values[v].len = n;
    p->values[v].at = at;
    *out = v;
    return COMINE_OK;
}

static comine_status reduce(pk *p)
{
    comine_status st = need_stack(p, 2);
    if (st) return st;
    int args = p->stack[p->n_stack - 1], fn = p->stack[p->n_stack - 2];
    p->n_stack -= 2;
    if (comine_pk_is_kind(p, fn, K_ENCODE) && comine_pk_is_kind(p, args, K_TUPLE)) {
        const box *b = &p->boxes[p->values[args].box];
        if (b->n == 2 && comine_pk_is_kind(p, b->items[0], K_TEXT) &&
            (text_is(p, b->items[1], "latin1") || text_is(p, b->items[1], "latin-1"))) {
            int v = -1;
            if ((st = latin1(p, b->items[0], &v))) return st;
            push(p, v);
            return COMINE_OK;
        }
    }
    if (comine_pk_is_kind(p, fn, K_BYTES_TYPE) && comine_pk_is_kind(p, args, K_TUPLE) && p->boxes[p->values[args].box].n == 0) {
        int v = new_value(p, K_BYTES);
        p->values[v].data = (const uint8_t *)"";
        push(p, v);
        return COMINE_OK;
    }
    return comine_pk_fail_at(p, p->op_at, "%s calls %s with %s; expected _codecs.encode(text, 'latin1') or bytes() "
                   "(Python 3's protocol-2 bytes)", cur_op(p), comine_pk_describe(p, fn), comine_pk_describe(p, args));
}

/* ---- the opcode loop -------------------------------------------------------------------- */
static comine_status text_or_bytes(pk *p, value_kind kind, int len_bytes, const char *what)
{
    uint64_t len = 0;
    const uint8_t *d = NULL;
    comine_status st = operand(p, len_bytes, &len);
    if (st) return st;
    if (p->op == OP_BINSTRING && len > 0x7fffffffu)
        return comine_pk_fail_at(p, p->op_at, "%s with a negative length (expected 0 .. 2^31 - 1)", cur_op(p));
    if ((st = payload(p, len, what, &d))) return st;
    int v = new_value(p, kind);
    p->values[v].data = d;
    p->values[v].len = len;
    push(p, v);
    return COMINE_OK;
}

static comine_status tuple_of(pk *p, int k)
{
    comine_status st = need_stack(p, k);
    if (st) return st;
    int t = new_box(p, K_TUPLE);
    for (int i = p->n_stack - k; i < p->n_stack; i++) box_add(p, p->values[t].box, p->stack[i]);
    p->n_stack -= k;
    push(p, t);
    return COMINE_OK;
}

/* Items above the innermost MARK, the MARK removed: first index and count on the stack. */
static comine_status pop_mark(pk *p, int *first, int *count)
{
    if (!p->n_marks) return comine_pk_fail_at(p, p->op_at, "%s without an open MARK", cur_op(p));
    *first = p->marks[--p->n_marks];
    *count = p->n_stack - *first;
    return COMINE_OK;
}

static comine_status bool_int(pk *p, uint64_t v, int n_bytes)
{
    if (n_bytes == 4 && v >= 0x80000000u) v = (uint64_t)-(int64_t)(0x100000000ULL - v);
    if (v > 1)
        return comine_pk_fail_at(p, p->op_at, "%s %lld: expected a bool (True / False, or 0 / 1) of issame_list", cur_op(p),
                       n_bytes == 4 ? (long long)(int32_t)(uint32_t)v : (long long)v);
    push(p, v ? V_TRUE : V_FALSE);
    return COMINE_OK;
}

comine_status comine_pk_run(pk *p, int *result, int64_t *stop_at)
{
    comine_status st = COMINE_OK;
    if (p->size == 0) return comine_pk_fail_at(p, 0, "empty file (expected a pickle of protocol 2 to 5)");
    if (p->data[0] != OP_PROTO)
        return comine_pk_fail_at(p, 0, "found 0x%02x, expected a pickle starting with PROTO (0x80) and a protocol 2 to 5 (not "
                       "a pickle, or one of protocol 0 / 1)", p->data[0]);
    p->op_at = 0;
    p->op = OP_PROTO;
    if (p->size < 2) return comine_pk_fail_at(p, 1, "the file ends after PROTO (expected the protocol number; truncated file?)");
    p->pos = 2;
    if (p->data[1] < 2 || p->data[1] > 5)
        return comine_pk_fail_at(p, 1, "pickle protocol %d (expected 2 to 5)", p->data[1]);
    uint64_t a = 0;
    for (long ops = 0;; ops++) {
        /* each opcode adds at most one value, stack entry or list item: this bounds them all */
        if (ops > MAX_OPS)
            return comine_pk_fail_at(p, (int64_t)p->pos, "more than %d opcodes (expected an insightface verification set, "
                           "a few per image)", MAX_OPS);
        if (p->pos >= p->size)
            return comine_pk_fail_at(p, (int64_t)p->size, "the file ends before the pickle's STOP opcode (expected more "
                           "opcodes; truncated file?)");
        p->op_at = (int64_t)p->pos;
        p->op = p->data[p->pos++];
        switch (p->op) {
        case OP_FRAME:
            if ((st = operand(p, 8, &a))) return st;
            if (a > p->size - p->pos)
                return comine_pk_fail_at(p, p->op_at, "FRAME of %llu bytes runs past the end of the file (%llu bytes left; "
                               "truncated file?)", (unsigned long long)a, (unsigned long long)(p->size - p->pos));
            break;
        case OP_STOP:
            if (p->n_marks) return comine_pk_fail_at(p, p->op_at, "STOP with a MARK still open (expected a closed structure)");
            if (p->n_stack != 1)
                return comine_pk_fail_at(p, p->op_at, "STOP with %d values on the stack (expected exactly one: the tuple "
                               "(images, issame_list))", p->n_stack);
            *result = p->stack[0];
            *stop_at = p->op_at;
            return COMINE_OK;
        case OP_MARK:
            p->marks = grow(p->marks, &p->cap_marks, p->n_marks + 1, sizeof(int));
            p->marks[p->n_marks++] = p->n_stack;
            break;
        case OP_EMPTY_LIST: push(p, new_box(p, K_LIST)); break;
        case OP_EMPTY_TUPLE: st = tuple_of(p, 0); break;
        case OP_TUPLE1: st = tuple_of(p, 1); break;
        case OP_TUPLE2: st = tuple_of(p, 2); break;
        case OP_TUPLE3: st = tuple_of(p, 3); break;
        case OP_TUPLE:
        case OP_LIST:
        case OP_APPENDS: {
            int first = 0, count = 0;
            if ((st = pop_mark(p, &first, &count))) return st;
            int target;
            if (p->op == OP_APPENDS) {
                if (first - (p->n_marks ? p->marks[p->n_marks - 1] : 0) < 1)
                    return comine_pk_fail_at(p, p->op_at, "APPENDS (0x65) with no list below its MARK (expected a list to "
                                   "extend)");
                target = p->stack[first - 1];
                if (!comine_pk_is_kind(p, target, K_LIST))
                    return comine_pk_fail_at(p, p->op_at, "APPENDS (0x65) to %s (expected a list)", comine_pk_describe(p, target));
            } else {
                target = new_box(p, p->op == OP_LIST ? K_LIST : K_TUPLE);
            }
            for (int i = first; i < first + count; i++) box_add(p, p->values[target].box, p->stack[i]);
            p->n_stack = first;
            if (p->op != OP_APPENDS) push(p, target);
            break;
        }
        case OP_APPEND: {
            if ((st = need_stack(p, 2))) return st;
            int item = p->stack[p->n_stack - 1], target = p->stack[p->n_stack - 2];
            if (!comine_pk_is_kind(p, target, K_LIST))
                return comine_pk_fail_at(p, p->op_at, "APPEND (0x61) to %s (expected a list)", comine_pk_describe(p, target));
            box_add(p, p->values[target].box, item);
            p->n_stack--;
            break;
        }
        case OP_SHORT_BINBYTES: st = text_or_bytes(p, K_BYTES, 1, "image"); break;
        case OP_BINBYTES: st = text_or_bytes(p, K_BYTES, 4, "image"); break;
        case OP_BINBYTES8: st = text_or_bytes(p, K_BYTES, 8, "image"); break;
        case OP_SHORT_BINSTRING: st = text_or_bytes(p, K_BYTES, 1, "image"); break;
        case OP_BINSTRING: st = text_or_bytes(p, K_BYTES, 4, "image"); break;
        case OP_SHORT_BINUNICODE: st = text_or_bytes(p, K_TEXT, 1, "text"); break;
        case OP_BINUNICODE: st = text_or_bytes(p, K_TEXT, 4, "text"); break;
        case OP_BINUNICODE8: st = text_or_bytes(p, K_TEXT, 8, "text"); break;
        case OP_NEWTRUE: push(p, V_TRUE); break;
        case OP_NEWFALSE: push(p, V_FALSE); break;
        case OP_BININT1:
            if (!(st = operand(p, 1, &a))) st = bool_int(p, a, 1);
            break;
        case OP_BININT2:
            if (!(st = operand(p, 2, &a))) st = bool_int(p, a, 2);
            break;
        case OP_BININT:
            if (!(st = operand(p, 4, &a))) st = bool_int(p, a, 4);
            break;
        case OP_BINPUT:
            if (!(st = operand(p, 1, &a))) st = memo_put(p, a);
            break;
        case OP_LONG_BINPUT:
            if (!(st = operand(p, 4, &a))) st = memo_put(p, a);
            break;
        case OP_MEMOIZE: st = memo_put(p, p->memo_n); break;
        case OP_BINGET:
            if (!(st = operand(p, 1, &a))) st = memo_get(p, a);
            break;
        case OP_LONG_BINGET:
            if (!(st = operand(p, 4, &a))) st = memo_get(p, a);
            break;
        case OP_GLOBAL: {
            const uint8_t *line[2];
            size_t len[2];
            for (int k = 0; k < 2; k++) {
                size_t left = p->size - p->pos, lim = left < 256 ? left : 256;
                const uint8_t *nl = memchr(p->data + p->pos, '\n', lim);
                if (!nl)
                    return comine_pk_fail_at(p, p->op_at, "GLOBAL (0x63) without its %s line (expected `module\\nname\\n` of "
                                   "at most 255 characters each)", k ? "name" : "module");
                line[k] = p->data + p->pos;
                len[k] = (size_t)(nl - line[k]);
                p->pos += len[k] + 1;
            }
            st = global(p, line[0], len[0], line[1], len[1]);
            break;
        }
        case OP_STACK_GLOBAL: {
            if ((st = need_stack(p, 2))) return st;
            int name = p->stack[p->n_stack - 1], mod = p->stack[p->n_stack - 2];
            if (!comine_pk_is_kind(p, name, K_TEXT) || !comine_pk_is_kind(p, mod, K_TEXT))
                return comine_pk_fail_at(p, p->op_at, "STACK_GLOBAL (0x93) of %s and %s (expected two text strings)",
                               comine_pk_describe(p, mod), comine_pk_describe(p, name));
            p->n_stack -= 2;
            st = global(p, p->values[mod].data, p->values[mod].len, p->values[name].data, p->values[name].len);
            break;
        }
        case OP_REDUCE: st = reduce(p); break;
        case OP_PROTO:
            return comine_pk_fail_at(p, p->op_at, "PROTO (0x80) again (expected it only at byte 0)");
        default:
            return comine_pk_fail_at(p, p->op_at, "opcode %s is not part of an insightface verification set (expected the "
                           "opcodes of a tuple of a list of bytes and a list of bools)", cur_op(p));
        }
        if (st) return st;
    }
}

void comine_pk_free(pk *p)
{
    for (int i = 0; i < p->n_boxes; i++) free(p->boxes[i].items);
    free(p->boxes);
    free(p->values);
    free(p->stack);
    free(p->marks);
    free(p->memo_key);
    free(p->memo_val);
}

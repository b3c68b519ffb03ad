/* binset_impl.h: the pickle opcodes the .bin reader (binset.c, binset_pickle.c) and writer
 * (binset_write.c) share, and the reader's stack machine. */
#ifndef COMINE_EVAL_BINSET_IMPL_H
#define COMINE_EVAL_BINSET_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comine/core.h"

/* ---- pickle opcodes used here -------------------------------------------------------------- */
enum {
    OP_MARK = '(', OP_STOP = '.', OP_BININT = 'J', OP_BININT1 = 'K', OP_BININT2 = 'M', OP_REDUCE = 'R',
    OP_BINSTRING = 'T', OP_SHORT_BINSTRING = 'U', OP_BINUNICODE = 'X', OP_APPEND = 'a', OP_GLOBAL = 'c',
    OP_APPENDS = 'e', OP_BINGET = 'h', OP_LONG_BINGET = 'j', OP_LIST = 'l', OP_BINPUT = 'q', OP_LONG_BINPUT = 'r',
    OP_TUPLE = 't', OP_EMPTY_LIST = ']', OP_EMPTY_TUPLE = ')', OP_BINBYTES = 'B', OP_SHORT_BINBYTES = 'C',
    OP_PROTO = 0x80, OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87, OP_NEWTRUE = 0x88, OP_NEWFALSE = 0x89,
    OP_SHORT_BINUNICODE = 0x8c, OP_BINUNICODE8 = 0x8d, OP_BINBYTES8 = 0x8e, OP_STACK_GLOBAL = 0x93,
    OP_MEMOIZE = 0x94, OP_FRAME = 0x95,
};

/* ---- the reader's stack machine (binset_pickle.c) ------------------------------------------ */
/* A value is an index into pk.values, or one of these (bools take no storage). */
enum { V_FALSE = -2, V_TRUE = -3 };
typedef enum { K_BYTES, K_TEXT, K_LIST, K_TUPLE, K_ENCODE, K_BYTES_TYPE } value_kind;
typedef struct value {
    value_kind kind;
    const uint8_t *data;   /* bytes / text */
    uint64_t len;
    int box;               /* list / tuple: index into pk.boxes */
    int64_t at;            /* byte offset of the opcode that made it */
} value;
typedef struct box { int *items; int n, cap; } box;

typedef struct pk {
    const char *name;
    const uint8_t *data;
    size_t size, pos;
    int64_t op_at;         /* offset of the opcode being run */
    int op;
    value *values;
    int n_values, cap_values;
    box *boxes;
    int n_boxes, cap_boxes;
    int *stack;
    int n_stack, cap_stack;
    int *marks;            /* stack depth at each open MARK */
    int n_marks, cap_marks;
    uint32_t *memo_key;    /* open addressing: key + 1 (0 = empty) -> memo_val */
    int *memo_val;
    size_t memo_slots, memo_n;
    uint8_t **owned;       /* decoded latin-1 buffers */
    int n_owned, cap_owned;
} pk;

/* Runs the pickle in p (name, data and size set, the rest zero) to its STOP: *result the value
 * left on the stack, *stop_at the STOP's offset.  Errors name p->name and the byte offset. */
comine_status comine_pk_run(pk *p, int *result, int64_t *stop_at);
/* Frees p's values and stacks (not p->owned, the decoded buffers, which the result uses) */
void comine_pk_free(pk *p);
/* A format error at byte `at` of p's data */
comine_status comine_pk_fail_at(const pk *p, int64_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "bytes", "a list", ... for messages */
const char *comine_pk_describe(const pk *p, int v);
bool comine_pk_is_kind(const pk *p, int v, value_kind k);

#endif

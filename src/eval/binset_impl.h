/* binset_impl.h: the pickle opcodes the .bin reader (binset.c) and writer (binset_write.c)
 * share. */
#ifndef COMINE_EVAL_BINSET_IMPL_H
#define COMINE_EVAL_BINSET_IMPL_H

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

#endif

/* error.c: thread-local error messages, status names and always-on assertions. */
#include "comine/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char error_message[1024];

comine_status comine_fail(comine_status code, const char *fmt, ...)
{
    /* formatted apart first: the arguments may quote the previous message (comine_last_error()) */
    char message[sizeof error_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    memcpy(error_message, message, sizeof message);
    return code;
}

const char *comine_last_error(void)
{
    return error_message[0] ? error_message : "no error message";
}

const char *comine_status_name(comine_status s)
{
    switch (s) {
    case COMINE_OK: return "ok";
    case COMINE_ERR_IO: return "I/O error";
    case COMINE_ERR_FORMAT: return "format error";
    case COMINE_ERR_ARG: return "invalid argument";
    case COMINE_ERR_NOMEM: return "out of memory";
    case COMINE_ERR_NUMERIC: return "non-finite numbers";
    case COMINE_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

void comine_abort(const char *file, int line, const char *what)
{
    fprintf(stderr, "comine: internal error at %s:%d: assertion failed: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

/* test_core_error.c: error messages (core.h).  A message that quotes the previous one
 * (comine_fail(st, "context: %s", comine_last_error()), the usual way to add context) keeps
 * both whole; status names; the message is per thread. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "comine/core.h"
#include "fixture.h"

static void expect(const char *what, bool ok)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) fx_fail_count++;
}

static void *other_thread(void *arg)
{
    (void)arg;
    comine_fail(COMINE_ERR_IO, "the other thread's message");
    return NULL;
}

int main(void)
{
    comine_status st = comine_fail(COMINE_ERR_FORMAT, "%s: line %d: bad field", "list.txt", 7);
    expect("comine_fail returns its code", st == COMINE_ERR_FORMAT);
    expect("the message as formatted", !strcmp(comine_last_error(), "list.txt: line 7: bad field"));
    comine_fail(st, "--val: %s", comine_last_error());
    expect("context added in front of the previous message keeps it whole",
           !strcmp(comine_last_error(), "--val: list.txt: line 7: bad field"));
    comine_fail(st, "%s (and %s)", comine_last_error(), comine_last_error());
    expect("the previous message quoted twice",
           !strcmp(comine_last_error(), "--val: list.txt: line 7: bad field (and --val: list.txt: line 7: bad field)"));
    char longer[2000];
    memset(longer, 'x', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    comine_fail(COMINE_ERR_ARG, "%s", longer);
    size_t n = strlen(comine_last_error());
    expect("a message past the buffer is cut, NUL-terminated", n > 500 && n < sizeof longer - 1);
    comine_fail(COMINE_ERR_ARG, "this thread's message");
    pthread_t th;
    pthread_create(&th, NULL, other_thread, NULL);
    pthread_join(th, NULL);
    expect("another thread's failure leaves this thread's message", !strcmp(comine_last_error(), "this thread's message"));
    expect("status names", !strcmp(comine_status_name(COMINE_OK), "ok") &&
                               !strcmp(comine_status_name(COMINE_ERR_IO), "I/O error"));
    return fx_finish("test_core_error");
}

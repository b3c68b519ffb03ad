/* lfw.c: LFW's people files (peopleDevTrain.txt, peopleDevTest.txt): the number of people on
 * the first line, then `Name<TAB>image count` per line.  A count that disagrees with the
 * lines, or a malformed line, is an error naming the file and line.  CRLF endings and blank
 * lines are accepted. */
#include "comine/data.h"

#include <stdlib.h>
#include <string.h>

void comine_people_free(comine_people *p)
{
    if (!p) return;
    for (int i = 0; i < p->n; i++) free(p->names[i]);
    free(p->names);
    free(p->counts);
    memset(p, 0, sizeof *p);
}

comine_status comine_people_load(comine_people *out, const char *path)
{
    memset(out, 0, sizeof *out);
    uint8_t *text;
    size_t size;
    comine_status st = comine_read_file(path, &text, &size);
    if (st != COMINE_OK) return st;
    char *save = NULL;
    long declared = -1;
    int line = 0, cap = 0;
    st = COMINE_OK;
    for (char *s = strtok_r((char *)text, "\n", &save); s; s = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t len = strlen(s);
        if (len && s[len - 1] == '\r') s[--len] = 0;
        if (!len) continue;
        if (declared < 0) {
            if (!comine_parse_int(s, &declared) || declared < 0) {
                st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected the number of people, found '%s'", path, line, s);
                break;
            }
            continue;
        }
        char *tab = strchr(s, '\t');
        long n;
        if (!tab || tab == s || !comine_parse_int(tab + 1, &n) || n < 1) {
            st = comine_fail(COMINE_ERR_FORMAT, "%s:%d: expected `Name<TAB>images` (images >= 1), found '%s'", path,
                             line, s);
            break;
        }
        *tab = 0;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 256;
            out->names = comine_realloc(out->names, sizeof(char *) * cap);
            out->counts = comine_realloc(out->counts, sizeof(int) * cap);
        }
        out->names[out->n] = comine_strdup(s);
        out->counts[out->n++] = (int)n;
    }
    free(text);
    if (st == COMINE_OK && declared < 0) st = comine_fail(COMINE_ERR_FORMAT, "%s: empty people file", path);
    if (st == COMINE_OK && declared != out->n)
        st = comine_fail(COMINE_ERR_FORMAT, "%s: the first line says %ld people, the file lists %d", path, declared,
                         out->n);
    if (st != COMINE_OK) comine_people_free(out);
    return st;
}

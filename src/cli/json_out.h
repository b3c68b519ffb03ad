/* json_out.h: writing JSON from the commands (--json): strings escaped per RFC 8259, and
 * numbers that stay valid JSON (non-finite values become null). */
#ifndef COMINE_CLI_JSON_OUT_H
#define COMINE_CLI_JSON_OUT_H

#include <stdio.h>

/* "s" with quotes, backslashes and control characters escaped (bytes >= 0x80 pass through:
 * comine's text is UTF-8 or the file system's bytes). */
void cli_json_str(FILE *fp, const char *s);
/* %.10g, or null when not finite. */
void cli_json_num(FILE *fp, double v);

#endif

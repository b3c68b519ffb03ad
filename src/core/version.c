/* version.c: the library's version, from CMakeLists.txt's project() (comine/version.h). */
#include "comine/version.h"

const char *comine_version(void) { return COMINE_VERSION_STRING; }

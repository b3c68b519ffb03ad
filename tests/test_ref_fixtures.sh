#!/bin/bash
# test_ref_fixtures.sh: the committed fixtures (tests/fixtures/*.bin) against what their
# generators (tests/ref/gen_*.py) write now, through tests/ref/check_fixtures.py run by
# Debian's python3 (/usr/bin/python3: the first python3 on PATH may not see Debian's
# python3-torch) with 2 threads.  Exit 77 (skipped) without /usr/bin/python3 or PyTorch.
# usage: bash test_ref_fixtures.sh <comine binary> <source dir>
set -u
SRC=${2:?source dir}
if [ ! -x /usr/bin/python3 ]; then
    echo "test_ref_fixtures: skipped: no /usr/bin/python3 (Debian: apt-get install python3-torch)"
    exit 77
fi
exec /usr/bin/python3 "$SRC/tests/ref/check_fixtures.py" --threads 2

#!/usr/bin/env bash
# The README's test command: install everything, lint, check that csrc/'s dependencies point one
# way, run the sanitized C unit tests, fuzz each target briefly, run the data plane's tests against
# its sanitized build, then the whole pytest suite. Arguments go to pytest.
#
# OPTE_FAST_SANITIZED=seeds-only replaces the brief fuzzing and the sanitized data plane (about
# three minutes) with one pass over the committed fuzz seeds; .ci/run sets it on one of its two
# releases to stay within its time budget.
set -euo pipefail
cd "$(dirname "$0")/.."

sanitized=${OPTE_FAST_SANITIZED:-full}
case $sanitized in
    full|seeds-only) ;;
    *) echo "ci/test.sh: OPTE_FAST_SANITIZED='$sanitized': use full or seeds-only" >&2; exit 2 ;;
esac

bash ci/install.sh
.venv/bin/ruff check opte_fast tests bench
python3 ci/c-deps.py
bash ci/c-tests.sh
if [ "$sanitized" = full ]; then
    bash ci/fuzz.sh brief
    bash ci/sanitized-tests.sh
else
    bash ci/fuzz.sh seeds
fi
.venv/bin/python -m pytest -q "$@"

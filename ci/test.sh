#!/usr/bin/env bash
# The README's test command: install everything, lint, run the sanitized C unit tests and the
# sanitized data plane, then the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/install.sh
.venv/bin/ruff check opte_fast tests bench
bash ci/c-tests.sh
bash ci/sanitized-tests.sh
.venv/bin/python -m pytest -q "$@"

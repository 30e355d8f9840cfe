#!/usr/bin/env bash
# The README's test command: install everything, lint, check that csrc/'s dependencies point one
# way, run the sanitized C unit tests and the sanitized data plane, then the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/install.sh
.venv/bin/ruff check opte_fast tests bench
python3 ci/c-deps.py
bash ci/c-tests.sh
bash ci/sanitized-tests.sh
.venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# The README's test command: install everything, run the sanitized C unit tests, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/install.sh
bash ci/c-tests.sh
.venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# Style checks (CI runs them): ruff lint and format for Python (configured in pyproject.toml), clang-format
# for C++/CUDA (.clang-format). Installs ruff and clang-format into the project's environment when missing.
# Fix what it reports with `ruff check --fix . && ruff format .` and `clang-format -i FILES`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python_env.sh
"$PY" -m ruff --version >/dev/null 2>&1 || "$PY" -m pip install -q ruff
CLANG_FORMAT=$(dirname "$PY")/clang-format
if [ ! -x "$CLANG_FORMAT" ]; then
    CLANG_FORMAT=$(command -v clang-format || true)
fi
if [ -z "$CLANG_FORMAT" ]; then
    "$PY" -m pip install -q clang-format
    CLANG_FORMAT=$(dirname "$PY")/clang-format
fi
"$PY" -m ruff check .
"$PY" -m ruff format --check .
git ls-files 'csrc/*.cpp' 'csrc/*.h' 'csrc/*.cu' 'tests/cpp/*.cpp' | xargs "$CLANG_FORMAT" --dry-run -Werror
echo "lint: ruff and clang-format clean"

#!/usr/bin/env bash
# Set up everything ringfence needs on a fresh Debian machine: apt tools for the 7.x VM, the venv with the
# package and its test/vm extras. Idempotent; safe to run again. Used by scripts/demo and scripts/test.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

bash scripts/setup-vm.sh

if [ ! -x "$ROOT/.venv/bin/python" ]; then
  python3 -m venv "$ROOT/.venv"
fi
stamp="$ROOT/.venv/.ringfence-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$ROOT/.venv/bin/pip" install -q --upgrade pip
  "$ROOT/.venv/bin/pip" install -q -e ".[test,vm,prove]"
  touch "$stamp"
fi

# the seccomp profiles Debian's packages ship (ringfence import-seccomp's tests), and libseccomp
PY="$ROOT/.venv/bin/python" bash scripts/setup-profiles.sh

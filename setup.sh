#!/usr/bin/env bash
# One-command set-up: .venv/ at the repo root, the project and its test tools, the Telegram emulator used
# by the tests, the index of data/articles, and one sample answer to show that it all works.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first and pinned: the CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev]"
if command -v npm >/dev/null 2>&1; then
  (cd tests/telegram_emulator && npm ci --silent --no-audit --no-fund)
else
  echo "note: npm not found; the Telegram end-to-end tests will be skipped" >&2
fi
.venv/bin/qabot index
.venv/bin/qabot ask "who backs Ahrar al-Sham?"

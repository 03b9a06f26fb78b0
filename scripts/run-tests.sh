#!/usr/bin/env bash
# Runs every check: ruff, pytest on SQLite, pytest on PostgreSQL, browser tests in Chromium, the mini-program's
# renders and type check in Node (its packages installed from miniprogram_stub/package-lock.json when that changed).
# Outside CI a missing PostgreSQL, Chromium or Node is skipped and said so; with CI=true each is required.
# Tests that need a tool or service the machine lacks (tests/helpers.py missing_tool) likewise fail under
# CI=true and are skipped locally; pytest's -rs lists each skipped test with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
skipped=()

echo "== ruff"
$BIN/ruff check .
$BIN/ruff format --check .

PG_URL="${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
pg_ok=0
if $BIN/python - "$PG_URL" <<'PY' 2>/dev/null; then pg_ok=1; fi
import sys, psycopg
psycopg.connect(sys.argv[1].replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3).close()
PY

CHROMIUM="${CHROMIUM_PATH:-$(command -v chromium || true)}"
if [ -n "$CHROMIUM" ] && [ -x "$CHROMIUM" ]; then
  export CHROMIUM_PATH="$CHROMIUM"
else
  unset CHROMIUM_PATH
  if [ "${CI:-}" = "true" ]; then echo "CI: Chromium is required (apt-get install chromium)"; exit 1; fi
  skipped+=("browser tests: no Chromium (install Debian's chromium package)")
fi
if [ "$pg_ok" = 0 ] && [ "${CI:-}" = "true" ]; then
  echo "CI: PostgreSQL at $PG_URL is required and does not answer"; exit 1
fi

# The mini-program's Node packages, exactly as locked: `npm ci` again only when the lock file changed (the hash
# of the lock it last installed is kept beside the packages); its postinstall builds miniprogram_npm/.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  lock_hash="$(sha256sum miniprogram_stub/package-lock.json | cut -d' ' -f1)"
  stamp=miniprogram_stub/node_modules/.installed-lock-sha256
  if [ ! -d miniprogram_stub/miniprogram_npm ] || [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
    echo "== npm ci in miniprogram_stub/ (package-lock.json changed)"
    (cd miniprogram_stub && npm ci --no-audit --no-fund --loglevel=error)
    echo "$lock_hash" >"$stamp"
  fi
else
  if [ "${CI:-}" = "true" ]; then echo "CI: node and npm are required (apt-get install nodejs npm)"; exit 1; fi
  skipped+=("mini-program tests: no node/npm (install Debian's nodejs and npm packages)")
fi

# The two engines' suites run side by side (much of each is waiting: subprocesses, sockets, the
# browser), the SQLite one into a log shown when both are done; each must pass.
# With both engines, each browser test module runs in one of the two suites (tests/conftest.py, BROWSER_SPLIT): the
# pages are the same on either engine, and the engine's part of every step is tested in both by the other tests.
if [ "$pg_ok" = 1 ]; then export BROWSER_SPLIT=1; fi
sqlite_log="$(mktemp)"
trap 'rm -f "$sqlite_log"' EXIT
echo "== pytest on SQLite (in the background, shown below when done)"
env -u TEST_DATABASE_URL $BIN/python -m pytest -q -rs -p no:cacheprovider --durations=15 >"$sqlite_log" 2>&1 &
sqlite_pid=$!
pg_rc=0
if [ "$pg_ok" = 1 ]; then
  echo "== pytest on PostgreSQL ($PG_URL)"
  TEST_DATABASE_URL="$PG_URL" $BIN/python -m pytest -q -rs -p no:cacheprovider --durations=15 || pg_rc=$?
else
  skipped+=("PostgreSQL suite: nothing answers at $PG_URL (set TEST_DATABASE_URL)")
fi
sqlite_rc=0
wait "$sqlite_pid" || sqlite_rc=$?
echo "== pytest on SQLite"
cat "$sqlite_log"
if [ "$sqlite_rc" != 0 ] || [ "$pg_rc" != 0 ]; then
  echo "== FAILED: SQLite suite exit $sqlite_rc, PostgreSQL suite exit $pg_rc"
  exit 1
fi

if [ ${#skipped[@]} -gt 0 ]; then
  echo "== skipped:"
  for s in "${skipped[@]}"; do echo "   - $s"; done
else
  echo "== nothing skipped"
fi

#!/usr/bin/env bash
# `make run`: the web server, the outbox worker (which delivers WeChat notifications to the local
# sandbox, 模拟微信 at /_wechat/) and the poster batch worker (long batch PDFs) together. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-5000}"
export FLASK_APP=backend
"$BIN/flask" outbox run &
outbox=$!
"$BIN/flask" posters run &
posters=$!
stop_workers() {
  kill "$outbox" "$posters" 2>/dev/null || true
  wait "$outbox" "$posters" 2>/dev/null || true
}
trap stop_workers EXIT INT TERM
# Threads: the WeChat sandbox is served by this same server, so a request that calls WeChat
# needs another free worker or thread to answer it.
"$BIN/gunicorn" --workers 2 --threads 8 --bind "127.0.0.1:$PORT" --access-logfile - 'backend:create_app()'

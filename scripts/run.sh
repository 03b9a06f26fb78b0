#!/usr/bin/env bash
# `make run`: migrate, load the demo county once, print its addresses, then serve the app with the local
# WeChat sandbox (模拟微信) beside it at /_wechat/ (wechat_sandbox/compose.py), the outbox worker (which
# delivers WeChat notifications to the sandbox) and the poster batch worker (long batch PDFs). Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export PORT="${PORT:-5000}"
export FLASK_APP=backend
# Every WeChat call goes to the sandbox at <PUBLIC_BASE_URL>/_wechat/, as the mini-program the sandbox knows
# (wechat_sandbox/config.py). The app refuses this on a PUBLIC_BASE_URL that is not loopback unless
# WECHAT_SANDBOX_STAGING=1 (README, "The local WeChat sandbox").
export WECHAT_SANDBOX=1
export WECHAT_APPID="${WECHAT_APPID:-wx-sandbox-app}"
export WECHAT_SECRET="${WECHAT_SECRET:-sandbox-secret}"
# The service account too (silent OAuth, JS-SDK, subscribe notices to H5 residents), and the push token
# the sandbox signs its pushes with.
export WECHAT_MP_APPID="${WECHAT_MP_APPID:-wx-sandbox-mp}"
export WECHAT_MP_SECRET="${WECHAT_MP_SECRET:-sandbox-mp-secret}"
export WECHAT_PUSH_TOKEN="${WECHAT_PUSH_TOKEN:-sandbox-push-token}"
"$BIN/flask" db upgrade
"$BIN/flask" demo load --if-empty --history
"$BIN/flask" demo urls
"$BIN/flask" outbox run &
outbox=$!
"$BIN/flask" posters run &
posters=$!
stop_workers() {
  kill "$outbox" "$posters" 2>/dev/null || true
  wait "$outbox" "$posters" 2>/dev/null || true
}
trap stop_workers EXIT INT TERM
# Threads (gthread), as the Procfile's web: besides, the sandbox is served by this same server, so a request
# that calls WeChat waits for another thread of it to answer.
"$BIN/gunicorn" --workers 2 --worker-class gthread --threads 8 --bind "127.0.0.1:$PORT" --access-logfile - \
  'wechat_sandbox.compose:create_app()'

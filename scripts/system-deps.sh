#!/usr/bin/env bash
# System packages the project needs besides Python's: the CJK font posters are set in (fonts-noto-cjk),
# and with --test every tool `make test` uses: Chromium for browser tests, poppler-utils to rasterise PDFs,
# Cairo for the SVG rasteriser, Node.js and npm for the mini-program's tests; under CI=true also the PostgreSQL
# and Redis servers (.ci/run starts them; locally their suites are skipped and listed when they do not answer).
# Installs what is missing with apt-get when run as root; otherwise prints the exact command and exits 0, so
# `make run` still works (posters answer 503 until the font is there). With CI=true, anything still missing
# is an error.
set -euo pipefail

packages=(fonts-noto-cjk)
if [ "${1:-}" = "--test" ]; then
  packages+=(chromium poppler-utils libcairo2 nodejs npm)
  [ "${CI:-}" = "true" ] && packages+=(postgresql redis-server)
fi

is_installed() {
  case "$1" in
    # What the tests need is the command; a NodeSource nodejs package brings npm itself, without Debian's npm.
    nodejs) command -v node >/dev/null 2>&1 ;;
    npm) command -v npm >/dev/null 2>&1 ;;
    # The servers, however they came (Debian's metapackage or a versioned postgresql-NN).
    postgresql) command -v pg_ctlcluster >/dev/null 2>&1 && compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null ;;
    redis-server) command -v redis-server >/dev/null 2>&1 ;;
    *) dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" ;;
  esac
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: not a Debian system; install these yourself: ${packages[*]}"
  [ "${CI:-}" = "true" ] && exit 1
  exit 0
fi

missing=()
for package in "${packages[@]}"; do
  is_installed "$package" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system-deps: all present (${packages[*]})"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${missing[*]}; to install, run as root:"
  echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  [ "${CI:-}" = "true" ] && exit 1
  exit 0
fi

echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || echo "system-deps: apt-get update failed; trying with the package lists at hand"
installed=()
failed=()
for package in "${missing[@]}"; do
  # One at a time: a package this release lacks does not keep the others out.
  if apt-get install -y -qq --no-install-recommends "$package" >/dev/null; then
    installed+=("$package")
  else
    failed+=("$package")
  fi
done
[ ${#installed[@]} -gt 0 ] && echo "system-deps: installed ${installed[*]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "system-deps: could not install ${failed[*]} (apt-get install -y --no-install-recommends ${failed[*]})"
  [ "${CI:-}" = "true" ] && exit 1
fi
exit 0

#!/usr/bin/env bash
# System packages the test suite needs, from Debian's archive. Idempotent: installs only what is
# missing. `make test` runs it; CI runs as root. `system-deps.sh hub` installs only what `make hub`
# needs: Node and npm (for JupyterHub's configurable-http-proxy) and acl (setfacl, hub/setup.py). Without root (a student's laptop), it says what
# is missing and carries on: the tests that need those packages then fail with a clear message.
set -euo pipefail
# Debian package -> a command it provides, or a file (a glob) it installs, checked to decide
# whether to install it. PostgreSQL's server programs are not on PATH; the tests run initdb.
declare -A HUB_PACKAGES=(
  [nodejs]=node
  [npm]=npm
  [acl]=setfacl
)
declare -A PACKAGES=(
  [redis-server]=redis-server
  [bubblewrap]=bwrap
  [postgresql]='/usr/lib/postgresql/*/bin/initdb'
  [chromium]=chromium
  [chromium-driver]=chromedriver
)
present() {
  case "$1" in
    /*) compgen -G "$1" >/dev/null ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}
missing=()
for pkg in "${!HUB_PACKAGES[@]}"; do
  present "${HUB_PACKAGES[$pkg]}" || missing+=("$pkg")
done
if [ "${1:-test}" != hub ]; then
  for pkg in "${!PACKAGES[@]}"; do
    present "${PACKAGES[$pkg]}" || missing+=("$pkg")
  done
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${missing[*]}; install them with your package manager (as root: apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# Sourced by scripts/demo and scripts/test: a virtual environment with alertd, its plugins and the test
# tools, and (as root, when missing) the Debian packages of the services the tests talk to.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ALERTD_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_debian_packages() {
  local missing=()
  for spec in "$@"; do
    local pkg="${spec%%:*}" bin="${spec#*:}"
    command -v "$bin" >/dev/null 2>&1 || [ -x "$bin" ] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})"
    return 1
  fi
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

setup_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating the virtual environment in $VENV"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.alertd-installed" inputs
  local manifests=("$ROOT/pyproject.toml")
  for p in "$ROOT"/plugins/*/pyproject.toml; do [ -f "$p" ] && manifests+=("$p"); done
  inputs=$(cat "${manifests[@]}" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$inputs" ]; then
    log "installing alertd and its plugins"
    local plugins=()
    for p in "$ROOT"/plugins/*/; do [ -f "$p/pyproject.toml" ] && plugins+=(-e "$p"); done
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[test]" "${plugins[@]}"
    echo "$inputs" > "$stamp"
  fi
}

wait_for_port() {  # host port seconds
  local deadline=$((SECONDS + $3))
  until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.5
  done
}

ensure_rabbitmq() {
  wait_for_port 127.0.0.1 5672 1 && return 0
  log "starting rabbitmq-server"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_for_port 127.0.0.1 5672 90 || { log "RabbitMQ did not start on 127.0.0.1:5672"; return 1; }
}

#!/usr/bin/env bash
# `make bench`: installs the peers (idempotent, into bench/.work/) and runs bench/bench.py.
#
#   BENCH_DURATION=5      seconds per wrk run (default 5)
#   BENCH_ONLY=smyth,...  run only these servers (smyth, smyth-py, sls)
#   BENCH_SKIP_INSTALL=1  skip the install step (use what is in bench/.work)
#   BENCH_NO_RESULTS=1    do not overwrite bench/RESULTS.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK="$ROOT/bench/.work"
mkdir -p "$WORK"

SMYTH_PY_VERSION=0.7.1
SERVERLESS_VERSION=3.40
SLS_OFFLINE_VERSION=13.10

log() { echo "bench: $*" >&2; }

install() {
    # wrk (Debian package), oha is optional and not required.
    if ! command -v wrk >/dev/null 2>&1; then
        log "installing wrk (apt-get)"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >&2
    fi

    # Python venv with Smyth 0.7.1.
    local venv="$WORK/venv"
    if [ ! -f "$venv/.ready-smyth-$SMYTH_PY_VERSION" ]; then
        log "creating venv with smyth==$SMYTH_PY_VERSION"
        rm -rf "$venv"
        local py=python3.11
        command -v "$py" >/dev/null 2>&1 || py=python3
        "$py" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "smyth==$SMYTH_PY_VERSION"
        touch "$venv/.ready-smyth-$SMYTH_PY_VERSION"
    fi

    # serverless + serverless-offline via npm.
    local node="$WORK/node"
    local stamp="$node/.ready-sls-$SERVERLESS_VERSION-offline-$SLS_OFFLINE_VERSION"
    if [ ! -f "$stamp" ]; then
        log "installing serverless@$SERVERLESS_VERSION serverless-offline@$SLS_OFFLINE_VERSION (npm)"
        mkdir -p "$node"
        [ -f "$node/package.json" ] || echo '{"name":"smyth-bench-peers","private":true}' >"$node/package.json"
        (cd "$node" && npm install --no-audit --no-fund --loglevel=error \
            "serverless@$SERVERLESS_VERSION" "serverless-offline@$SLS_OFFLINE_VERSION") >&2
        touch "$stamp"
    fi
}

if [ "${BENCH_SKIP_INSTALL:-0}" != 1 ]; then
    install
fi

exec "$WORK/venv/bin/python" "$ROOT/bench/bench.py" "$@"

#!/usr/bin/env bash
# Install everything bench/peers.py needs: nginx (target server) and the peer
# load generators (wrk, h2load, hey, autocannon, Locust).  Idempotent.
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

echo "== apt packages"
$SUDO apt-get update -qq
pkgs=(nginx wrk nghttp2-client valgrind)
# hey is packaged in Debian >= 11; building it needs Go + network, so skip if absent.
# (capture first: `grep -q` in a pipe under pipefail would SIGPIPE apt-cache)
hey_policy=$(apt-cache policy hey 2>/dev/null || true)
if grep -q 'Candidate: [0-9]' <<<"$hey_policy"; then
    pkgs+=(hey)
else
    echo "   hey not packaged here; it will be reported as n/a"
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}"
# The packaged nginx service is not needed (peers.py runs its own instance).
$SUDO systemctl disable --now nginx >/dev/null 2>&1 || $SUDO service nginx stop >/dev/null 2>&1 || true

echo "== autocannon (npm, into bench/node_modules)"
if command -v npm >/dev/null; then
    npm install --no-audit --no-fund --loglevel=error
else
    echo "   npm not found; autocannon will be reported as n/a"
fi

echo "== Locust (separate venv bench/.venv-locust)"
PY=${PYTHON:-python3}
if [ ! -x .venv-locust/bin/python ]; then
    "$PY" -m venv .venv-locust
fi
.venv-locust/bin/pip install -q --disable-pip-version-check "locust>=2.20" 2>&1 | grep -v "^WARNING: Location" || true

echo "== done"
for t in nginx wrk h2load hey; do
    printf '   %-10s %s\n' "$t" "$(command -v "$t" || echo missing)"
done
printf '   %-10s %s\n' autocannon "$( [ -x node_modules/.bin/autocannon ] && echo node_modules/.bin/autocannon || echo missing)"
printf '   %-10s %s\n' locust "$( [ -x .venv-locust/bin/locust ] && echo .venv-locust/bin/locust || echo missing)"

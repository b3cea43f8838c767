#!/usr/bin/env bash
# Make sure a Docker engine answers, and that debootstrap is there for offline base images.
# On a Debian-like machine, as root, a missing engine is installed (Debian's docker.io) and
# dockerd is started in the background; anywhere else we stop with what to install.
set -uo pipefail

PYTHON=${PYTHON:-python3}
LOG=${SWE_ENV_DOCKERD_LOG:-/var/log/swe-env-dockerd.log}

engine_answers() {
    "$PYTHON" - <<'PY' >/dev/null 2>&1
import docker
docker.from_env(timeout=5).ping()
PY
}

can_install() { [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; }

apt_install() {
    echo "swe-env setup: installing $* with apt-get"
    if [ ! -f /var/lib/apt/lists/.swe-env-updated ]; then
        apt-get update -qq && touch /var/lib/apt/lists/.swe-env-updated
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v debootstrap >/dev/null && can_install; then
    apt_install debootstrap || echo "swe-env setup: warning: could not install debootstrap (needed only when no base image can be pulled)"
fi

# docker-compose.yml (and tests/test_compose.py) need Compose: v2's `docker compose` or Debian's v1.
if ! command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1 && can_install; then
    apt_install docker-compose || echo "swe-env setup: warning: could not install docker-compose (needed only by docker-compose.yml)"
fi

# The registry tests (tests/build/test_registry.py) push to and pull from a real registry on loopback.
if ! command -v docker-registry >/dev/null && can_install; then
    apt_install docker-registry || echo "swe-env setup: warning: could not install docker-registry (needed only by the registry tests)"
fi

if engine_answers; then
    exit 0
fi

if ! can_install; then
    cat >&2 <<'MSG'
error: no Docker engine answers, and this set-up can only install one on a Debian-like machine as root.
Install Docker (Debian/Ubuntu: `apt-get install docker.io`; elsewhere: Docker Engine or Docker Desktop),
start it, and make sure your user may use it (or set DOCKER_HOST). Then run the command again.
MSG
    exit 1
fi

if ! command -v dockerd >/dev/null; then
    apt_install docker.io || { echo "error: installing docker.io failed" >&2; exit 1; }
fi

echo "swe-env setup: no Docker engine answered; starting dockerd in the background (log: $LOG)"
mkdir -p "$(dirname "$LOG")"
# setsid: the daemon must outlive this make run.
setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &
for _ in $(seq 1 60); do
    if engine_answers; then
        echo "swe-env setup: dockerd is up"
        # Remember that this engine is ours (tests that restart it check this first).
        cp /var/run/docker.pid /run/swe-env-dockerd.pid 2>/dev/null || true
        exit 0
    fi
    sleep 1
done
echo "error: dockerd did not answer within 60 s; see $LOG" >&2
tail -n 5 "$LOG" >&2
exit 1

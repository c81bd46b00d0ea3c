#!/bin/sh
# Install Debian's prometheus package when /usr/bin/prometheus is absent (idempotent: a no-op when present).
# Used by tests/e2e/test_prometheus_server.py. Needs root (or sudo) and apt. The tests start their own prometheus on
# loopback with a temp config and data dir; the package's own service (if an init system starts it) is not used.
# When it cannot be installed: with CI=true the build fails (exit 1); elsewhere the test skips, saying what to install.
set -u
if [ -x /usr/bin/prometheus ]; then
    /usr/bin/prometheus --version 2>&1 | head -n 1
    exit 0
fi
fail() {
    if [ "${CI:-}" = "true" ]; then
        echo "ensure_prometheus: $*; CI=true: the Prometheus test cannot be skipped" >&2
        exit 1
    fi
    echo "ensure_prometheus: $*; its e2e test will be skipped (apt-get install prometheus)" >&2
    exit 0
}
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || fail "apt-get update failed"
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null || fail "apt-get install prometheus failed"
[ -x /usr/bin/prometheus ] || fail "prometheus was installed but /usr/bin/prometheus is missing"
/usr/bin/prometheus --version 2>&1 | head -n 1

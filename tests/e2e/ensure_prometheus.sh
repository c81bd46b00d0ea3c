#!/bin/sh
# Install Debian's prometheus package when /usr/bin/prometheus is absent (idempotent: a no-op when present).
# Used by tests/e2e/test_prometheus_server.py, which is skipped, with its reason, when the binary is missing.
# Needs root (or sudo) and apt. The tests start their own prometheus on loopback with a temp config and data
# dir; the package's own service (if an init system starts it) is not used.
set -eu
if [ -x /usr/bin/prometheus ]; then
    /usr/bin/prometheus --version 2>&1 | head -n 1
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
/usr/bin/prometheus --version 2>&1 | head -n 1

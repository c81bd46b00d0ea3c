#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests (tests/e2e) when /usr/bin/chromium is missing.
# Idempotent and quiet: nothing happens when it is there. When chromium cannot be installed (no apt-get, not root,
# no package lists) it says so; with CI=true that fails the build (exit 1), elsewhere the browser tests then skip
# with the reason.
# Playwright never downloads a browser of its own: the tests launch /usr/bin/chromium.
set -u
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] && exit 0
warn() {
  if [ "${CI:-}" = "true" ]; then echo "ensure_chromium: $*; CI=true: the browser tests cannot be skipped" >&2; exit 1; fi
  echo "ensure_chromium: $*; the browser tests will be skipped" >&2; exit 0
}
command -v apt-get >/dev/null 2>&1 || warn "no apt-get on this machine"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; } || warn "not root and no password-less sudo"
  SUDO="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
# the package lists may be empty or stale on a fresh machine: try as they are, then update once and retry
if ! $SUDO apt-get install -y -qq chromium >/dev/null 2>&1; then
  $SUDO apt-get update -qq >/dev/null 2>&1 || warn "apt-get update failed"
  $SUDO apt-get install -y -qq chromium >/dev/null 2>&1 || warn "apt-get install chromium failed"
fi
[ -x "$CHROMIUM" ] || warn "chromium was installed but $CHROMIUM is missing"

#!/usr/bin/env bash
# Debian packages the test suite uses, installed only when missing.
# Run as root (or with the packages already installed).
set -euo pipefail

# chromium: the browser tests (tests/test_browser.py) drive it with playwright.
# acl: setfacl, with which hubext-local enforces shared-folder access
#   (tests/test_shared_local.py).
# postgresql: the usage ledger's tests start a throwaway server with its
#   initdb and pg_ctl (tests/usage_pg.py), run as the postgres user it creates.
packages=(chromium acl postgresql)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}; install them as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# The headless Chromium that the report tests open reports in: Debian's
# package, installed when missing (as root, as the test cluster's packages are).
#   chromium.sh path    print the browser's path, installing it first if needed
set -euo pipefail
find_browser() { command -v chromium || command -v chromium-browser || true; }
if [[ -z $(find_browser) ]]; then
  [[ $(id -u) == 0 ]] || { echo "chromium.sh: chromium is missing and installing it needs root" >&2; exit 1; }
  command -v apt-get >/dev/null || { echo "chromium.sh: chromium is missing and there is no apt-get" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null 2>&1 || true
  apt-get install -y -q chromium >/tmp/slurmkit-chromium-apt.log 2>&1 || { echo "chromium.sh: apt-get install chromium failed; see /tmp/slurmkit-chromium-apt.log" >&2; exit 1; }
fi
find_browser

#!/usr/bin/env bash
# The dashboard's browser test drives Debian's Chromium and ChromeDriver
# (/usr/bin/chromium, /usr/bin/chromedriver); no test tool downloads a browser.
# Installs them with apt-get when either is missing (needs root, or sudo).
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  exec sudo "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
/usr/bin/chromium --version

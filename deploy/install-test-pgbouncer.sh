#!/usr/bin/env bash
# tests/integration/test_pgbouncer.py runs Debian's PgBouncer (/usr/sbin/pgbouncer) in transaction
# mode in front of the test database, on a port of its own. Installs it with apt-get
# when missing (needs root, or sudo); the packaged service is not used.
set -euo pipefail
if [ -x /usr/sbin/pgbouncer ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  exec sudo "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
# Do not start the packaged service (it would take port 6432): a policy-rc.d that
# refuses, unless the machine has one already.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null
/usr/sbin/pgbouncer --version

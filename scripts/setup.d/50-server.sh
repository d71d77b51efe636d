#!/usr/bin/env bash
# What the MySQL-wire server's tests and benchmark need, idempotently:
#  - Debian's mariadb-client (the `mariadb` CLI) and mariadb-server (the
#    reference server the correctness corpus and the kill benchmark compare
#    against; the test script starts its own instance on 127.0.0.1 with a
#    datadir under /tmp, so the packaged service is never used);
#  - the `openssl` CLI (the TLS tests make a throwaway certificate with it);
#  - a Python venv with pymysql and pytest at $CASCADE_PY_VENV
#    (default $HOME/.cache/cascade-server-venv).
set -euo pipefail

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v mariadb >/dev/null 2>&1 || need+=(mariadb-client)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need+=(mariadb-server)
if [ "${#need[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # The package's postinst would start the system service; nothing here needs it.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

venv="${CASCADE_PY_VENV:-$HOME/.cache/cascade-server-venv}"
if ! "$venv/bin/python" -c 'import pymysql, pytest' >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'pymysql>=1.1,<2' 'pytest>=8,<9'
fi
echo "server test tools: $(mariadb --version | head -c 80); venv $venv"

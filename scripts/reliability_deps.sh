#!/usr/bin/env bash
# What `make reliability` needs beyond .venv: PostgreSQL's initdb/postgres, Debian's chromium, and
# redis-server (the CeleryExecutor's broker). Installs whichever is missing with apt-get (as root, or
# through sudo). The harness starts each itself; the Debian packages' own services are not used.
set -euo pipefail
missing=()
if ! command -v initdb >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  missing+=(postgresql)
fi
if [ ! -x /usr/bin/chromium ]; then
  missing+=(chromium)
fi
if ! command -v redis-server >/dev/null; then
  missing+=(redis-server)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
echo "installing ${missing[*]} with apt-get" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null

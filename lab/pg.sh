#!/usr/bin/env bash
# A local PostgreSQL for the lab's home agents (docs/cluster.md): Debian's postgresql, one throwaway
# cluster in a directory of its own, listening only on a Unix socket there, owned by 'nobody' when run as
# root (PostgreSQL refuses to run as root). Trust authentication on that socket: lab use only.
#   lab/pg.sh up   [DIR=/tmp/mipkey-pg]   initdb (once), start, create database 'mipkey'; prints the store URL
#   lab/pg.sh down [DIR=/tmp/mipkey-pg]   stop and remove the cluster
#   lab/pg.sh url  [DIR=/tmp/mipkey-pg]   print the store URL
set -euo pipefail
cmd=${1:-}; dir=${2:-/tmp/mipkey-pg}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] && [ -x "$bin/initdb" ] || { echo "error: Debian's postgresql is not installed (apt-get install postgresql)" >&2; exit 1; }
as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u nobody -- "$@"; else "$@"; fi; }
url() { echo "postgresql://mipkey@/mipkey?host=$dir"; }
options="-k $dir -c listen_addresses='' -c max_connections=60"

case "$cmd" in
  up)
    if [ ! -d "$dir/data" ]; then
      mkdir -p "$dir"
      [ "$(id -u)" -ne 0 ] || chown nobody "$dir"
      as_owner "$bin/initdb" -D "$dir/data" -U mipkey -A trust -E UTF8 --no-locale >/dev/null
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$options" start >/dev/null
    fi
    "$bin/psql" -h "$dir" -U mipkey -d postgres -qAt -c "SELECT 1 FROM pg_database WHERE datname = 'mipkey'" | grep -q 1 \
      || "$bin/psql" -h "$dir" -U mipkey -d postgres -q -c "CREATE DATABASE mipkey"
    url ;;
  down)
    if [ -d "$dir/data" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
      rm -rf "$dir"
    fi ;;
  url) url ;;
  *) echo "usage: lab/pg.sh up|down|url [DIR]" >&2; exit 2 ;;
esac

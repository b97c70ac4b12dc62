#!/usr/bin/env bash
# Installs mipkey: the published program under PREFIX/lib/mipkey, PREFIX/bin/mipkey on PATH, bash
# completion, a man page, and (unless --no-units) the systemd units, the mipkey user and /etc/mipkey.
# Nothing is enabled or started. docs/operations.md explains the layout and the choices.
#
#   scripts/install.sh [--prefix /usr/local] [--destdir DIR] [--from DIR] [--no-units] [--uninstall]
#
#   --prefix DIR    where bin/, lib/mipkey/ and share/ go (default /usr/local)
#   --destdir DIR   stage everything under DIR (packaging, tests): no user is created, systemd is not told
#   --from DIR      install this already built or published directory (holding the mipkey executable)
#                   instead of running dotnet publish
#   --no-units      leave out the systemd units, the sysusers.d entry, the user and /etc/mipkey
#   --uninstall     remove what an install put there; /etc/mipkey and /var/lib/mipkey (keys, store) stay
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local destdir="" from="" units=1 uninstall=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --destdir) destdir="${2:?--destdir needs a directory}"; shift 2 ;;
    --from) from="${2:?--from needs a directory}"; shift 2 ;;
    --no-units) units=0; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac

root="${destdir%/}"
bin="$root$prefix/bin" lib="$root$prefix/lib/mipkey" share="$root$prefix/share"
unitdir="$root/etc/systemd/system" sysusers="$root/etc/sysusers.d"
systemd_running() { [ -z "$destdir" ] && [ -d /run/systemd/system ]; }

if [ "$uninstall" -eq 1 ]; then
  rm -f "$bin/mipkey" "$share/bash-completion/completions/mipkey" "$share/man/man1/mipkey.1"
  rm -rf "$lib" "$share/doc/mipkey"
  rm -f "$unitdir/mipkey-ha.service" "$unitdir/mipkey-mn@.service" "$sysusers/mipkey.conf"
  if systemd_running; then systemctl daemon-reload; fi
  echo "removed mipkey from $root$prefix (kept /etc/mipkey and /var/lib/mipkey)"
  exit 0
fi

# Framework-dependent (the .NET 10 runtime of the SDK or the aspnetcore-runtime-10.0 package), one directory:
# docs/operations.md, "Install", says why.
if [ -z "$from" ]; then
  source scripts/prereqs.sh
  ensure_dotnet
  case "$(uname -m)" in
    x86_64) rid=linux-x64 ;;
    aarch64) rid=linux-arm64 ;;
    *) echo "install.sh: no .NET runtime identifier for $(uname -m)" >&2; exit 1 ;;
  esac
  from="$(mktemp -d)/publish"
  trap 'rm -rf "$(dirname "$from")"' EXIT
  echo "==> dotnet publish ($rid, framework-dependent) to $from"
  dotnet publish src/MipKeyAgent.Cli/MipKeyAgent.Cli.csproj -c Release -r "$rid" --self-contained false \
    -p:SatelliteResourceLanguages=en --nologo -v q -o "$from" >/dev/null
fi
[ -x "$from/mipkey" ] || { echo "install.sh: $from has no mipkey executable" >&2; exit 1; }

echo "==> $lib, $bin/mipkey"
rm -rf "$lib"
install -d -m 0755 "$lib" "$bin" "$share/bash-completion/completions" "$share/man/man1" "$share/doc/mipkey"
cp -R "$from/." "$lib/"
# Build leftovers a run does not need.
find "$lib" -name '*.pdb' -delete
chmod -R u=rwX,go=rX "$lib"
ln -sfn "../lib/mipkey/mipkey" "$bin/mipkey"

install -m 0644 packaging/completion/mipkey.bash "$share/bash-completion/completions/mipkey"
install -m 0644 docs/operations.md "$share/doc/mipkey/operations.md"
scripts/mipkey-man.sh "$lib/mipkey" > "$share/man/man1/mipkey.1"

if [ "$units" -eq 1 ]; then
  echo "==> $unitdir/mipkey-ha.service, mipkey-mn@.service; user mipkey; /etc/mipkey"
  install -d -m 0755 "$unitdir" "$sysusers"
  for unit in mipkey-ha.service mipkey-mn@.service; do
    sed -e "s#/usr/local/bin/mipkey#$prefix/bin/mipkey#g" -e "s#/usr/local/share/doc#$prefix/share/doc#g" \
      "packaging/systemd/$unit" > "$unitdir/$unit"
    chmod 0644 "$unitdir/$unit"
  done
  install -m 0644 packaging/sysusers.d/mipkey.conf "$sysusers/mipkey.conf"
  if [ -z "$destdir" ]; then
    if ! id mipkey >/dev/null 2>&1; then
      if command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers "$sysusers/mipkey.conf"
      else
        useradd --system --user-group --home-dir /var/lib/mipkey --no-create-home --shell /usr/sbin/nologin mipkey
      fi
    fi
    # The provisioning files (0600) and keys: readable by the mipkey user only.
    install -d -m 0700 -o mipkey -g mipkey /etc/mipkey
    install -d -m 0700 -o mipkey -g mipkey /var/lib/mipkey
  fi
  if systemd_running; then systemctl daemon-reload; fi
fi

echo "installed: $prefix/bin/mipkey ($("$lib/mipkey" --version 2>/dev/null || echo '?'))"

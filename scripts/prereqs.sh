# Sourced by run.sh and test.sh: installs what the project needs on a fresh Debian machine.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_dotnet() {
  if ! command -v dotnet >/dev/null 2>&1; then
    echo "error: the .NET SDK (dotnet, version 10) is required and not on PATH" >&2
    exit 1
  fi
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
}

# libpcap, which SharpPcap loads at run time for capture files (replay, demo) and live interfaces.
libpcap_missing() { ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libpcap\.so\.0\.8'; }

# What `mipkey` itself needs beyond .NET (run.sh): installed only when missing.
ensure_runtime_prereqs() {
  if libpcap_missing; then
    echo "==> installing libpcap0.8"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libpcap0.8 >/dev/null
  fi
}

# Debian packages the conformance tests use as independent oracles. Never skipped:
# a test that needs them fails when they are missing.
ensure_test_prereqs() {
  ensure_dotnet
  local missing=()
  command -v tshark >/dev/null 2>&1 || missing+=(tshark)
  /usr/bin/python3 -c 'import scapy' >/dev/null 2>&1 || missing+=(python3-scapy)
  /usr/bin/python3 -c 'import cryptography' >/dev/null 2>&1 || missing+=(python3-cryptography)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  # The NAT of the client/server lab test (Lab.Tests UdpNatLabTests): an nftables masquerade.
  [ -x /usr/sbin/nft ] || missing+=(nftables)
  # The power-loss test (Lab.Tests/PowerLossTests): an ext4 file system on a loop device.
  [ -x /usr/sbin/mkfs.ext4 ] || [ -x /sbin/mkfs.ext4 ] || missing+=(e2fsprogs)
  [ -x /usr/sbin/losetup ] || [ -x /sbin/losetup ] || missing+=(mount)
  # curl and openssl: independent ETSI GS QKD 014 clients and the lab PKI (lab/pki).
  [ -x /usr/bin/curl ] || missing+=(curl)
  [ -x /usr/bin/openssl ] || missing+=(openssl)
  # A throwaway PostgreSQL cluster for the PostgreSQL store's tests (TestSupport/PostgresCluster) and lab/pg.sh.
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  # systemd-analyze verify/security on the units (Cli.Tests SystemdUnitTests; no running systemd needed), man for the man page.
  command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
  command -v man >/dev/null 2>&1 || missing+=(man-db)
  # libpcap for SharpPcap (capture files, live capture, injection).
  libpcap_missing && missing+=(libpcap0.8)
  # Headless Chromium and its WebDriver for the HTML report and status page tests (Browser.Tests).
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    echo "wireshark-common wireshark-common/install-setuid boolean false" | as_root debconf-set-selections || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

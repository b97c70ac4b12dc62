#!/usr/bin/env bash
# Lab PKI for the QKD node simulator and the ETSI GS QKD 014 client (docs/qkd.md).
#
#   lab/pki/make-pki.sh [OUT_DIR] [SAE_ID ...]
#
# OUT_DIR defaults to lab/pki/out (git-ignored). SAE IDs default to SAE_HA SAE_MN1.
# Idempotent: an existing file is kept, only what is missing is created, so re-running
# after adding an SAE ID only issues that SAE's certificate. Private keys are mode 0600.
#
# Produces (all PEM):
#   ca.crt ca.key                      the lab CA (the bundle both sides trust)
#   kme-a.crt kme-a.key                KME A server certificate (SAN localhost, 127.0.0.1, ::1)
#   kme-b.crt kme-b.key                KME B server certificate (same SANs)
#   kme-c.crt kme-c.key                KME C server certificate (same SANs; the third node of a network)
#   sae-<ID>.crt sae-<ID>.key          SAE client certificate, CN = the SAE ID
#                                      (ETSI GS QKD 014: the KME names the SAE from its certificate)
#   link-kme-a.crt link-kme-a.key      inter-KME link certificate of KME A, CN = link:KME_A
#   link-kme-b.crt link-kme-b.key      inter-KME link certificate of KME B, CN = link:KME_B
#   link-kme-c.crt link-kme-c.key      inter-KME link certificate of KME C, CN = link:KME_C
set -euo pipefail
umask 077

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-"$here/out"}
shift || true
if [ $# -gt 0 ]; then saes=("$@"); else saes=(SAE_HA SAE_MN1); fi

command -v openssl >/dev/null 2>&1 || { echo "error: openssl is required" >&2; exit 1; }
mkdir -p "$out"
cd "$out"

days=3650

new_key() { # $1 = key file; EC P-256 keys: small, fast, accepted by curl, openssl and .NET
  [ -f "$1" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod 0600 "$1"
}

if [ ! -f ca.crt ] || [ ! -f ca.key ]; then
  rm -f ca.crt ca.key
  new_key ca.key
  openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/O=MipKeyAgent Lab/CN=MipKeyAgent Lab CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" -out ca.crt
fi

issue() { # $1 = base name, $2 = CN, $3 = extendedKeyUsage, $4 = subjectAltName (may be empty)
  local base=$1 cn=$2 eku=$3 san=$4
  [ -f "$base.crt" ] && [ -f "$base.key" ] && return 0
  new_key "$base.key"
  local ext
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyAgreement"
    echo "extendedKeyUsage=$eku"
    echo "subjectKeyIdentifier=hash"
    echo "authorityKeyIdentifier=keyid"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } > "$ext"
  openssl req -new -key "$base.key" -subj "/O=MipKeyAgent Lab/CN=$cn" -out "$base.csr"
  openssl x509 -req -in "$base.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days "$days" \
    -extfile "$ext" -out "$base.crt" 2>/dev/null
  rm -f "$base.csr" "$ext"
}

server_san="DNS:localhost,IP:127.0.0.1,IP:::1"
issue kme-a KME_A serverAuth "$server_san"
issue kme-b KME_B serverAuth "$server_san"
issue kme-c KME_C serverAuth "$server_san"
for sae in "${saes[@]}"; do
  case "$sae" in
    *[!A-Za-z0-9_.-]*|"") echo "error: SAE ID '$sae' must be [A-Za-z0-9_.-]+" >&2; exit 1 ;;
  esac
  issue "sae-$sae" "$sae" clientAuth ""
done
# The link certificates authenticate one KME to the other in both roles (the pushing
# node is the TLS client, the receiving node relays sessions back as a client too).
issue link-kme-a "link:KME_A" "clientAuth,serverAuth" "$server_san"
issue link-kme-b "link:KME_B" "clientAuth,serverAuth" "$server_san"
issue link-kme-c "link:KME_C" "clientAuth,serverAuth" "$server_san"

chmod 0644 ./*.crt
chmod 0600 ./*.key
rm -f ca.srl
echo "lab PKI in $out"

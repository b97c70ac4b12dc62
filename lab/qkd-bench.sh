#!/usr/bin/env bash
# Keys per second served by `mipkey qkd-node` (ETSI enc_keys), single and batched requests,
# as a ratio of the configured link key rate. One run: starts a master/slave pair on loopback,
# opens a key-use session at the link rate (so the master generates at that rate), then draws
# keys for DURATION seconds over one keep-alive connection per mode (curl -K with many URLs).
# Usage: lab/qkd-bench.sh [LINK_KEY_RATE=1000] [DURATION=10]     (needs openssl, curl, dotnet)
set -euo pipefail
RATE=${1:-1000}; DURATION=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
repo=$ROOT
# shellcheck source=lab/common.sh
. "$ROOT/lab/common.sh"   # sets $python and $dll (MIPKEY_DLL, else MIPKEY_ARTIFACTS, else the Release build)
DLL=$dll
T=$(mktemp -d); trap 'kill $A $B 2>/dev/null; rm -rf "$T"' EXIT
"$ROOT/lab/pki/make-pki.sh" "$T" SAE_HA SAE_MN1 >/dev/null
dotnet "$DLL" qkd-node --kme-id KME_B --port 18444 --bind 127.0.0.1 --cert "$T/kme-b.crt" --key "$T/kme-b.key" --ca "$T/ca.crt" \
  --sae SAE_MN1 --peer-kme-id KME_A --peer-sae SAE_HA --peer-role slave --link-cert "$T/link-kme-b.crt" --link-key "$T/link-kme-b.key" \
  --log-level Warning >"$T/b.log" 2>&1 & B=$!
dotnet "$DLL" qkd-node --kme-id KME_A --port 18443 --bind 127.0.0.1 --cert "$T/kme-a.crt" --key "$T/kme-a.key" --ca "$T/ca.crt" \
  --sae SAE_HA --peer-kme-id KME_B --peer-sae SAE_MN1 --peer-role master --peer-uri https://127.0.0.1:18444 \
  --link-cert "$T/link-kme-a.crt" --link-key "$T/link-kme-a.key" --link-key-rate "$RATE" --max-key-count 100000 \
  --log-level Warning >"$T/a.log" 2>&1 & A=$!
C=(--silent --cert "$T/sae-SAE_HA.crt" --key "$T/sae-SAE_HA.key" --cacert "$T/ca.crt")
U=https://127.0.0.1:18443/api/v1
for _ in $(seq 100); do curl "${C[@]}" -o /dev/null "$U/keys/SAE_MN1/status" && break; sleep 0.2; done
curl "${C[@]}" -o /dev/null -H 'Content-Type: application/json' -d "{\"peer_SAE_ID\":\"SAE_MN1\",\"throughput\":$RATE}" "$U/sessions"
sleep 1
run() {   # $1 = keys per request; prints keys/s drawn over DURATION
  local n=$1 keys=0 end=$((SECONDS + DURATION)) start=$(date +%s.%N)
  for _ in $(seq 500); do echo "url = \"$U/keys/SAE_MN1/enc_keys?number=$n&size=256\""; echo 'write-out = "\n"'; done >"$T/urls"
  while [ $SECONDS -lt $end ]; do
    got=$(curl "${C[@]}" -K "$T/urls" | grep -o '"key_ID"' | wc -l); keys=$((keys + got))
  done
  "$python" -c "import time,sys; d=time.time()-$start; print(f'{$keys/d:.0f} {$keys/d/$RATE:.3f}')"
}
read -r s1 r1 < <(run 1)
read -r s128 r128 < <(run 128)
printf 'link_key_rate %s keys/s, %s s each\nsingle  (number=1):   %s keys/s = %s x link rate\nbatched (number=128): %s keys/s = %s x link rate\n' \
  "$RATE" "$DURATION" "$s1" "$r1" "$s128" "$r128"

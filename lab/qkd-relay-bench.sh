#!/usr/bin/env bash
# Keys per second end to end through one intermediate node (trusted-node relay) against a direct
# link, in one run on the same nodes. Three `mipkey qkd-node` processes in a line on loopback:
#   KME_A (SAE_HA) --link A-B, A master-- KME_B (SAE_MN1) --link B-C, B master-- KME_C (SAE_MN2)
# SAE_HA's enc_keys toward SAE_MN1 is the direct case (keys from the A-B pool, one assignment
# message to B); toward SAE_MN2 it is the relayed case (A generates, B decrypts and re-encrypts,
# C stores; each hop spends one link key per key plus one per message). A key-use session toward
# SAE_MN2 keeps both links generating at up to LINK_KEY_RATE; before each phase both pools are
# filled to POOL keys, so the phases measure serving and relaying, not how fast the simulated
# links refill. Each mode draws for DURATION seconds over one keep-alive connection (curl -K),
# number=1 then number=128, direct and relayed alternating twice; a relayed key is checked at C.
# Usage: lab/qkd-relay-bench.sh [LINK_KEY_RATE=100000] [DURATION=10] [POOL=200000]     (needs openssl, curl, dotnet)
set -euo pipefail
RATE=${1:-100000}; DURATION=${2:-10}; POOL=${3:-200000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
repo=$ROOT
# shellcheck source=lab/common.sh
. "$ROOT/lab/common.sh"   # sets $python and $dll (MIPKEY_DLL, else MIPKEY_ARTIFACTS, else the Release build)
DLL=$dll
T=$(mktemp -d); A=; B=; C=
trap 'kill $A $B $C 2>/dev/null; rm -rf "$T"' EXIT
"$ROOT/lab/pki/make-pki.sh" "$T" SAE_HA SAE_MN1 SAE_MN2 >/dev/null
common=(--bind 127.0.0.1 --ca "$T/ca.crt" --link-key-rate "$RATE" --max-key-count "$POOL" --max-key-per-request 128 --log-level Warning)
dotnet "$DLL" qkd-node --kme-id KME_C --port 18445 --cert "$T/kme-c.crt" --key "$T/kme-c.key" "${common[@]}" --sae SAE_MN2 \
  --link-cert "$T/link-kme-c.crt" --link-key "$T/link-kme-c.key" \
  --link "KME_B,role=slave,uri=https://127.0.0.1:18444,sae=SAE_MN1" --route "KME_A,via=KME_B,sae=SAE_HA" >"$T/c.log" 2>&1 & C=$!
dotnet "$DLL" qkd-node --kme-id KME_B --port 18444 --cert "$T/kme-b.crt" --key "$T/kme-b.key" "${common[@]}" --sae SAE_MN1 \
  --link-cert "$T/link-kme-b.crt" --link-key "$T/link-kme-b.key" \
  --link "KME_A,role=slave,uri=https://127.0.0.1:18443,sae=SAE_HA" \
  --link "KME_C,role=master,uri=https://127.0.0.1:18445,sae=SAE_MN2" >"$T/b.log" 2>&1 & B=$!
dotnet "$DLL" qkd-node --kme-id KME_A --port 18443 --cert "$T/kme-a.crt" --key "$T/kme-a.key" "${common[@]}" --sae SAE_HA \
  --link-cert "$T/link-kme-a.crt" --link-key "$T/link-kme-a.key" \
  --link "KME_B,role=master,uri=https://127.0.0.1:18444,sae=SAE_MN1" --route "KME_C,via=KME_B,sae=SAE_MN2" >"$T/a.log" 2>&1 & A=$!
HA=(--silent --cert "$T/sae-SAE_HA.crt" --key "$T/sae-SAE_HA.key" --cacert "$T/ca.crt")
MN1=(--silent --cert "$T/sae-SAE_MN1.crt" --key "$T/sae-SAE_MN1.key" --cacert "$T/ca.crt")
MN2=(--silent --cert "$T/sae-SAE_MN2.crt" --key "$T/sae-SAE_MN2.key" --cacert "$T/ca.crt")
U=https://127.0.0.1:18443/api/v1
for _ in $(seq 150); do   # all three listening, and the session A -> C open through B
  opened=$(curl "${HA[@]}" -H 'Content-Type: application/json' -d "{\"peer_SAE_ID\":\"SAE_MN2\",\"throughput\":$RATE}" "$U/sessions" 2>/dev/null || true)
  case "$opened" in *session_ID*) break ;; esac
  sleep 0.2
done
case "$opened" in *session_ID*) ;; *) echo "could not open the session through B: $opened" >&2; exit 1 ;; esac
stored() { "$python" -c "import json,sys; print(json.loads(sys.argv[1])['stored_key_count'])" "$(curl "$@")"; }
full() {  # waits until the pools A-B and B-C each hold POOL keys (at most 120 s)
  local deadline=$((SECONDS + 120))
  while [ $SECONDS -lt $deadline ]; do
    [ "$(stored "${HA[@]}" "$U/keys/SAE_MN1/status")" -ge "$POOL" ] \
      && [ "$(stored "${MN1[@]}" https://127.0.0.1:18444/api/v1/keys/SAE_MN2/status)" -ge "$POOL" ] && return 0
    sleep 0.5
  done
  echo "the pools never filled to $POOL keys" >&2; exit 1
}
run() {   # $1 = slave SAE, $2 = keys per request; prints keys/s drawn over DURATION
  local sae=$1 n=$2 keys=0 end start urls=200
  [ "$n" -gt 1 ] && urls=10
  full
  for _ in $(seq $urls); do echo "url = \"$U/keys/$sae/enc_keys?number=$n&size=256\""; echo 'write-out = "\n"'; done >"$T/urls"
  end=$((SECONDS + DURATION)); start=$(date +%s.%N)
  while [ $SECONDS -lt $end ]; do
    got=$(curl "${HA[@]}" -K "$T/urls" | grep -o '"key_ID"' | wc -l); keys=$((keys + got))
  done
  "$python" -c "import time; print(f'{$keys/(time.time()-$start):.0f}')"
}
# Direct and relayed alternate (twice each, keys/s averaged) so machine load drifts evenly over both.
avg() { "$python" -c "import sys; print(f'{(float(sys.argv[1]) + float(sys.argv[2])) / 2:.0f}')" "$1" "$2"; }
a=$(run SAE_MN1 1); b=$(run SAE_MN2 1); c=$(run SAE_MN1 1); e=$(run SAE_MN2 1); d1=$(avg "$a" "$c"); r1=$(avg "$b" "$e")
a=$(run SAE_MN1 128); b=$(run SAE_MN2 128); c=$(run SAE_MN1 128); e=$(run SAE_MN2 128); d128=$(avg "$a" "$c"); r128=$(avg "$b" "$e")
# One relayed key, fetched at C by SAE_MN2: the same bytes.
enc=$(curl "${HA[@]}" "$U/keys/SAE_MN2/enc_keys?number=1")
id=$("$python" -c "import json,sys; print(json.loads(sys.argv[1])['keys'][0]['key_ID'])" "$enc")
dec=$(curl "${MN2[@]}" "https://127.0.0.1:18445/api/v1/keys/SAE_HA/dec_keys?key_ID=$id")
same=$("$python" -c "import json,sys; a,b=(json.loads(x)['keys'][0]['key'] for x in sys.argv[1:]); print('same key at C' if a==b else 'MISMATCH')" "$enc" "$dec")
printf 'link_key_rate %s keys/s, %s s each; %s\n' "$RATE" "$DURATION" "$same"
"$python" - "$d1" "$r1" "$d128" "$r128" <<'PY'
import sys
d1, r1, d128, r128 = map(float, sys.argv[1:])
print(f"single  (number=1):   direct {d1:.0f} keys/s, relayed via B {r1:.0f} keys/s = {r1/d1:.2f} x direct")
print(f"batched (number=128): direct {d128:.0f} keys/s, relayed via B {r128:.0f} keys/s = {r128/d128:.2f} x direct")
PY

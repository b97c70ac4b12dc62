#!/usr/bin/env bash
# strongSwan IKEv2 CHILD_SA rekeys with PFS (curve25519) beside `mipkey bench process --rekey-interval 1ms`
# (every exchange a rekey), in one run on this machine, with the ratio.
#
# Two charon daemons (Debian's strongswan-charon, installed here with apt-get when missing), each in a network
# namespace of its own (ssa: 2001:db8:5a::1, ssb: 2001:db8:5a::2, a veth pair), ESP in user space through the
# kernel-libipsec plugin (this kernel has no ESP). ssa initiates CONNS IKE_SAs with CHILDREN CHILD_SAs each
# (AES-GCM-128, PFS with curve25519), every CHILD_SA rekeying every 1-2 s, more than charon can serve, so the rate
# measured is charon's capacity. Rekeys counted: the growth of the CHILD_SA unique ids (one per CHILD_SA created)
# over DURATION seconds; CPU per rekey: each charon's utime+stime from /proc/PID/stat over the same window.
# Then `mipkey bench process` as the other ARGS say (default: --nodes 2000 --rekey-interval 1ms), SQLite store.
#
# Usage (root): lab/strongswan-bench.sh [DURATION=20] [-- extra mipkey bench process args, e.g. --volatile]
# Env: CONNS (8), CHILDREN (128), SETUP_SECONDS (120: wait for the CHILD_SAs), LOGLEVEL (0: charon logs in the temporary directory).
set -euo pipefail
DURATION=${1:-20}; shift || true
[ "${1:-}" = "--" ] && shift
CONNS=${CONNS:-8}; CHILDREN=${CHILDREN:-128}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
repo=$ROOT
# shellcheck source=lab/common.sh
. "$ROOT/lab/common.sh"
[ "$(id -u)" = 0 ] || { echo "run as root (network namespaces)" >&2; exit 1; }
if [ ! -x /usr/lib/ipsec/charon ] || ! command -v swanctl >/dev/null || [ ! -f /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ]; then
    apt-get install -y -q strongswan-charon strongswan-swanctl libcharon-extra-plugins >/dev/null
fi

T=$(mktemp -d /tmp/mipkey-strongswan.XXXXXX)
cleanup() {
    for ns in ssa ssb; do
        [ -f "$T/$ns.pid" ] && kill "$(cat "$T/$ns.pid")" 2>/dev/null || true
    done
    sleep 0.5
    ip netns del ssa 2>/dev/null || true
    ip netns del ssb 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

ip netns add ssa; ip netns add ssb
ip link add ssa0 netns ssa type veth peer name ssb0 netns ssb
ip -n ssa addr add 2001:db8:5a::1/64 dev ssa0 nodad; ip -n ssb addr add 2001:db8:5a::2/64 dev ssb0 nodad
for ns in ssa ssb; do ip -n $ns link set lo up; ip -n $ns link set ${ns}0 up; done
# Each CHILD_SA's own addresses are local (kernel-libipsec routes each policy through its TUN device from the local one).
for c in $(seq 1 "$CONNS"); do for k in $(seq 1 "$CHILDREN"); do echo "addr add 2001:db8:5b:$c::$k/128 dev lo nodad"; done; done | ip -n ssa -batch -
for c in $(seq 1 "$CONNS"); do for k in $(seq 1 "$CHILDREN"); do echo "addr add 2001:db8:5c:$c::$k/128 dev lo nodad"; done; done | ip -n ssb -batch -

# One daemon per namespace: its own strongswan.conf (STRONGSWAN_CONF), vici socket and, in the mount namespace
# `ip netns exec` makes, its own /run (pid file).
config() {   # $1 = ns, $2 = local address, $3 = remote address, $4 = initiator (yes/no)
    local ns=$1 me=$2 peer=$3 start=$4
    mkdir -p "$T/$ns"
    cat >"$T/$ns/strongswan.conf" <<EOF
charon {
    load = random nonce aes sha2 hmac kdf gcm openssl pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici
    install_routes = no
    install_virtual_ip = no
    ikesa_table_size = 64
    plugins {
        vici {
            socket = unix://$T/$ns/charon.vici
        }
    }
    filelog {
        bench {
            path = $T/$ns/charon.log
            flush_line = yes
            default = ${LOGLEVEL:-0}
        }
    }
    syslog {
        daemon {
            default = -1
        }
    }
}
EOF
    local other; other=$([ "$ns" = ssa ] && echo ssb || echo ssa)
    {
        echo "connections {"
        for c in $(seq 1 "$CONNS"); do
            printf '  c%s {\n    version = 2\n    local_addrs = %s\n    remote_addrs = %s\n' "$c" "$me" "$peer"
            printf '    proposals = aes128gcm16-prfsha256-curve25519\n    rekey_time = 0\n    reauth_time = 0\n    unique = never\n'
            printf '    local {\n      auth = psk\n      id = %s-%s\n    }\n    remote {\n      auth = psk\n      id = %s-%s\n    }\n' "$ns" "$c" "$other" "$c"
            echo "    children {"
            for k in $(seq 1 "$CHILDREN"); do
                local lts="2001:db8:5b:$c::$k/128" rts="2001:db8:5c:$c::$k/128"
                [ "$ns" = ssa ] || { lts="2001:db8:5c:$c::$k/128"; rts="2001:db8:5b:$c::$k/128"; }
                printf '      s%s {\n        local_ts = %s\n        remote_ts = %s\n' "$k" "$lts" "$rts"
                printf '        esp_proposals = aes128gcm16-curve25519\n        mode = tunnel\n'
                if [ "$start" = yes ]; then
                    printf '        start_action = start\n        rekey_time = 2s\n        rand_time = 1s\n        life_time = 30s\n      }\n'
                else
                    printf '        start_action = none\n        rekey_time = 0\n        life_time = 60s\n      }\n'
                fi
            done
            echo "    }"
            echo "  }"
        done
        echo "}"
        echo "secrets {"
        for c in $(seq 1 "$CONNS"); do
            printf '  ike-%s {\n    id-a = ssa-%s\n    id-b = ssb-%s\n    secret = "mipkey-bench-only-%s"\n  }\n' "$c" "$c" "$c" "$c"
        done
        echo "}"
    } >"$T/$ns/swanctl.conf"
}
config ssa 2001:db8:5a::1 2001:db8:5a::2 yes
config ssb 2001:db8:5a::2 2001:db8:5a::1 no

for ns in ssb ssa; do
    ip netns exec $ns sh -c "mount -t tmpfs tmpfs /run && STRONGSWAN_CONF=$T/$ns/strongswan.conf exec /usr/lib/ipsec/charon" \
        >"$T/$ns/stdout" 2>&1 &
    echo $! >"$T/$ns.pid"
    for _ in $(seq 100); do [ -S "$T/$ns/charon.vici" ] && break; sleep 0.1; done
    [ -S "$T/$ns/charon.vici" ] || { echo "charon in $ns did not start:"; cat "$T/$ns/stdout" "$T/$ns/charon.log"; exit 1; }
    sleep 1   # the vici socket exists before the daemon serves it
done
# The responder first, so the initiator's start_action finds it ready.
# swanctl talks to each daemon over its vici socket (its own plugin list: STRONGSWAN_CONF).
export STRONGSWAN_CONF=$T/ssb/strongswan.conf
for ns in ssb ssa; do
    swanctl --load-creds --uri "unix://$T/$ns/charon.vici" --file "$T/$ns/swanctl.conf" </dev/null >/dev/null 2>&1
    swanctl --load-conns --uri "unix://$T/$ns/charon.vici" --file "$T/$ns/swanctl.conf" </dev/null >/dev/null 2>&1
done

children=$((CONNS * CHILDREN))
installed() { swanctl --list-sas --uri "unix://$T/ssa/charon.vici" 2>/dev/null | grep -c "INSTALLED" || true; }
maxid() { swanctl --list-sas --uri "unix://$T/ssa/charon.vici" 2>/dev/null | sed -n 's/^ *s[0-9]*: #\([0-9]*\),.*/\1/p' | sort -n | tail -1; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for _ in $(seq "${SETUP_SECONDS:-120}"); do [ "$(installed)" -ge "$children" ] && break; sleep 1; done
[ "$(installed)" -gt 0 ] || { echo "no CHILD_SA came up:"; kill "$(cat "$T/ssa.pid")" "$(cat "$T/ssb.pid")"; sleep 1; for f in "$T"/ss?/charon.log; do tail -n 20 "$f"; done; exit 1; }
echo "strongSwan $(/usr/lib/ipsec/charon --version 2>/dev/null | head -1 || dpkg-query -W -f='${Version}' strongswan-charon): $(installed) of $children CHILD_SAs installed ($CONNS IKE_SAs)"
sleep 3   # the first rekeys under way: measure the steady state
pa=$(pgrep -P "$(cat "$T/ssa.pid")" charon || cat "$T/ssa.pid"); pb=$(pgrep -P "$(cat "$T/ssb.pid")" charon || cat "$T/ssb.pid")
hz=$(getconf CLK_TCK)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
id0=$(maxid); ca0=$(cpu "$pa"); cb0=$(cpu "$pb"); t0=$(date +%s.%N)
sleep "$DURATION"
id1=$(maxid); ca1=$(cpu "$pa"); cb1=$(cpu "$pb"); t1=$(date +%s.%N)
ss_rate=$($python -c "print(f'{($id1 - $id0) / ($t1 - $t0):.0f}')")
ss_cpu=$($python -c "n = max($id1 - $id0, 1); print(f'{($ca1 - $ca0) / $hz / n * 1e6:.0f} / {($cb1 - $cb0) / $hz / n * 1e6:.0f}')")
echo "strongSwan: $((id1 - id0)) CHILD_SA rekeys in $DURATION s: $ss_rate rekeys/s, charon CPU per rekey initiator / responder $ss_cpu µs (load $load_before)"
for ns in ssa ssb; do kill "$(cat "$T/$ns.pid")" 2>/dev/null || true; rm -f "$T/$ns.pid"; done
sleep 1

ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(--nodes 2000 --rekey-interval 1ms)
echo "mipkey bench process --duration ${DURATION}s ${ARGS[*]}"
dotnet "$dll" bench process --duration "${DURATION}s" "${ARGS[@]}" --json "$T/mipkey.json" | tee "$T/mipkey.out" | grep -E "closed loop|paced"
mk_rate=$($python -c "import json; r = json.load(open('$T/mipkey.json')); p = r['max_rate']['load']; print(f\"{p['rekeys'] / p['seconds']:.0f}\")")
echo "| strongSwan CHILD_SA rekeys/s (PFS curve25519) | mipkey rekey exchanges/s | ratio |"
echo "|---:|---:|---:|"
echo "| $ss_rate | $mk_rate | $($python -c "print(f'{$mk_rate / max($ss_rate, 1):.1f}x')") |"

#!/usr/bin/env bash
# Records golden captures from the real programs: `mipkey ha` and `mipkey mn` processes in the lab's
# network namespaces (lab/topology.sh), raw sockets, `--capture` on the agent that saw the whole
# scenario, TEST KEYS derived from fixed strings (never use them elsewhere). Each scenario waits for
# conditions read from the agents' status sockets, not for fixed times, and takes seconds.
#
#   sudo lab/record-captures.sh                       # every scenario
#   sudo lab/record-captures.sh lost-ba many-nodes    # some
#
#   startup-rekey        start-up init, then rekeys on the node's 2 s timer (HA's capture)
#   lost-ba              lab/lossy-router.py drops 50 % of HA->MN ESP: lost KEY-DISTs, KEY-RESEND-REQ, resends (HA's capture)
#   ha-restart-store     kill -9 of the HA, restart on its SQLite store: no re-init (the node's capture: one process throughout)
#   ha-restart-volatile  kill -9 of a --volatile HA, restart (IK counters resumed from ha.conf.ik-counters): the node's BUs go unanswered,
#                        it re-initializes (the node's capture)
#   many-nodes           three nodes, the HA's 3 s rekey timer with Binding Refresh Requests (HA's capture)
#   tcpdump              startup-rekey recorded three ways at once: the HA's --capture (raw IPv6), `tcpdump -i any`
#                        in the HA's namespace (Linux cooked v2) and `tcpdump -i <the HA's veth>` (Ethernet); writes
#                        lab-tcpdump.pcap, lab-tcpdump-any.pcap and lab-tcpdump-veth.pcap (tcpdump installed when missing)
#
# Writes captures/lab-NAME.pcap and captures/lab-NAME.conf (the HA provisioning that decrypts it).
# Environment: MK_CAPTURES (output directory, default the repository's captures/), MIPKEY_DLL, MK_PREFIX (default mkrec-).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
out="${MK_CAPTURES:-$repo/captures}"
all=(startup-rekey lost-ba ha-restart-store ha-restart-volatile many-nodes tcpdump)
scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=("${all[@]}")
for s in "${scenarios[@]}"; do
    case " ${all[*]} " in *" $s "*) ;; *) echo "unknown scenario $s (known: ${all[*]})" >&2; exit 2 ;; esac
done
if [ "$(id -u)" -ne 0 ]; then
    echo "run as root (network namespaces, raw sockets): sudo $0 ${scenarios[*]}" >&2
    exit 1
fi

export MK_PREFIX="${MK_PREFIX:-mkrec-}"
P="$MK_PREFIX"
source "$here/common.sh"

work="$(mktemp -d /tmp/mipkey-record.XXXXXX)"
pids=()
stop_all() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    pids=()
}
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    stop_all
    "$here/topology.sh" down
    if [ "$status" -ne 0 ]; then echo "failed; logs kept in $work" >&2; else rm -rf "$work"; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# TEST KEYS: a fixed string's SHA-256, so the committed provisioning decrypts the committed capture.
test_key() { printf 'mipkey lab capture TEST KEY %s' "$1" | sha256sum | cut -d' ' -f1; }

# status SOCKET PYTHON-EXPRESSION over the /status JSON as `s` (prints nothing while the agent does not answer).
status() {
    curl -sf --max-time 5 --unix-socket "$1" http://agent/status 2>/dev/null | "$python" -c '
import json, sys
s = json.load(sys.stdin)
def gen(b, key="highestIssued"):
    v = b.get(key) or ""
    return int(v[1:]) if v.startswith("g") else 0
print(eval(sys.argv[1]))' "$2" 2>/dev/null || true
}

# wait_for WHAT SECONDS SOCKET EXPRESSION: until the expression prints True.
wait_for() {
    local what="$1" seconds="$2" socket="$3" expression="$4" i
    for i in $(seq 1 $((seconds * 5))); do
        [ "$(status "$socket" "$expression")" = True ] && return 0
        sleep 0.2
    done
    echo "timed out waiting for $what; last status: $(curl -sf --unix-socket "$socket" http://agent/status || echo none)" >&2
    return 1
}

write_configs() {
    local scenario="$1" nodes="$2" ha_extra="$3" mn_extra="$4" i key
    umask 077
    {
        printf '# TEST KEYS ONLY: home agent provisioning for captures/lab-%s.pcap, recorded by lab/record-captures.sh\n' "$scenario"
        printf '# (keys: SHA-256 of "mipkey lab capture TEST KEY mnN"). Never use these keys elsewhere.\n'
        printf '# mipkey refuses key files others can read: chmod 600 this file before `mipkey replay`.\n'
        printf '[home-agent]\naddress = 2001:db8:1::1\n%s' "$ha_extra"
        for i in $(seq 1 "$nodes"); do
            key="$(test_key "mn$i")"
            printf '\n[mobile-node mn%d]\nhome-address = 2001:db8:2::%d\ninitialization-key = hex:%s\nspi-mn-to-ha = %d\nspi-ha-to-mn = %d\n' \
                "$i" "$i" "$key" $((998 + 2 * i)) $((999 + 2 * i))
            {
                printf '[mobile-node]\nhome-agent-address = 2001:db8:1::1\nhome-address = 2001:db8:2::%d\ncare-of-address = 2001:db8:%d::1\n' "$i" $((99 + i))
                printf 'initialization-key = hex:%s\nspi-mn-to-ha = %d\nspi-ha-to-mn = %d\n%s' "$key" $((998 + 2 * i)) $((999 + 2 * i)) "$mn_extra"
            } > "$work/mn$i.conf"
        done
    } > "$work/ha.conf"
}

start_ha() { # start_ha EXTRA-ARGS...
    ip netns exec "${P}home" dotnet "$dll" ha -c "$work/ha.conf" -i "${P}h0" --status-socket "$work/ha.sock" "$@" >> "$work/ha.log" 2>&1 &
    ha_pid=$!
    pids+=("$ha_pid")
    wait_for "the HA to start" 60 "$work/ha.sock" 'True'
}

start_mn() { # start_mn I EXTRA-ARGS...
    local i="$1"
    shift
    ip netns exec "${P}fl$i" dotnet "$dll" mn -c "$work/mn$i.conf" -i "${P}f$i" --store "$work/mn$i.db" --status-socket "$work/mn$i.sock" \
        --ping-interval 1s "$@" >> "$work/mn$i.log" 2>&1 &
    pids+=($!)
}

finish() { # finish SCENARIO CAPTURE-FILE: stops everything (captures flushed on SIGTERM), keeps the capture and the provisioning
    stop_all
    "$here/topology.sh" down
    cp "$2" "$out/lab-$1.pcap"
    cp "$work/ha.conf" "$out/lab-$1.conf"
    chmod 644 "$out/lab-$1.pcap" "$out/lab-$1.conf"
    echo "recorded captures/lab-$1.pcap ($(stat -c %s "$out/lab-$1.pcap") octets)"
}

record() {
    local scenario="$1" nodes=1
    [ "$scenario" = many-nodes ] && nodes=3
    rm -f "$work"/*
    MK_NODES="$nodes" "$here/topology.sh" up >/dev/null
    case "$scenario" in
        startup-rekey)
            write_configs "$scenario" 1 "" "rekey-interval = 2s"$'\n'
            start_ha --volatile --capture "$work/cap.pcap"
            start_mn 1
            wait_for "g3 on the HA" 60 "$work/ha.sock" 'gen(s["bindings"][0]) >= 3 if s["bindings"] else False'
            sleep 1.5 # the node's first packets under g3 (its confirmation)
            ;;
        lost-ba)
            write_configs "$scenario" 1 "" "rekey-interval = 2s"$'\n'
            ip netns exec "${P}rtr" "$python" "$here/lossy-router.py" "${P}r0" 0.5 3 "${P}r0" "${P}r1" > "$work/router.log" 2>&1 &
            pids+=($!)
            start_ha --volatile --capture "$work/cap.pcap"
            start_mn 1
            wait_for "a KEY-DIST resend and g3" 90 "$work/ha.sock" \
                'int(s["counters"]["resends"]) >= 1 and gen(s["bindings"][0]) >= 3 if s["bindings"] else False'
            sleep 1.5
            ;;
        ha-restart-store)
            write_configs "$scenario" 1 "" "rekey-interval = 2s"$'\n'
            start_ha --store "$work/ha.db"
            start_mn 1 --capture "$work/cap.pcap"
            wait_for "g2 on the node" 60 "$work/mn1.sock" 'gen(s["bindings"][0]) >= 2 if s["bindings"] else False'
            before="$(status "$work/mn1.sock" 'gen(s["bindings"][0])')"
            kill -KILL "$ha_pid"
            wait "$ha_pid" 2>/dev/null || true
            sleep 1
            start_ha --store "$work/ha.db"
            wait_for "a rekey answered by the restarted HA" 60 "$work/mn1.sock" "gen(s['bindings'][0]) >= $before + 1"
            sleep 1.5
            ;;
        ha-restart-volatile)
            write_configs "$scenario" 1 "" "rekey-interval = 2s"$'\n'"max-retransmissions = 1"$'\n'
            start_ha --volatile
            start_mn 1 --capture "$work/cap.pcap"
            wait_for "g2 on the node" 60 "$work/mn1.sock" 'gen(s["bindings"][0]) >= 2 if s["bindings"] else False'
            kill -KILL "$ha_pid"
            wait "$ha_pid" 2>/dev/null || true
            sleep 1
            start_ha --volatile
            wait_for "the node's re-initialization answered" 60 "$work/ha.sock" 'int(s["counters"]["inits"]) >= 1'
            sleep 1.5
            ;;
        tcpdump)
            command -v tcpdump >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends tcpdump >/dev/null
            write_configs "$scenario" 1 "" "rekey-interval = 2s"$'\n'
            ip netns exec "${P}home" tcpdump -q -i any -y LINUX_SLL2 -w "$work/any.pcap" ip6 > "$work/tcpdump-any.log" 2>&1 &
            pids+=($!)
            ip netns exec "${P}home" tcpdump -q -i "${P}h0" -w "$work/veth.pcap" ip6 > "$work/tcpdump-veth.log" 2>&1 &
            pids+=($!)
            sleep 1 # both tcpdumps listening before the first datagram
            start_ha --volatile --capture "$work/cap.pcap"
            start_mn 1
            wait_for "g3 on the HA" 60 "$work/ha.sock" 'gen(s["bindings"][0]) >= 3 if s["bindings"] else False'
            sleep 1.5
            stop_all
            cp "$work/any.pcap" "$out/lab-tcpdump-any.pcap"
            cp "$work/veth.pcap" "$out/lab-tcpdump-veth.pcap"
            chmod 644 "$out/lab-tcpdump-any.pcap" "$out/lab-tcpdump-veth.pcap"
            ;;
        many-nodes)
            write_configs "$scenario" 3 "rekey-interval = 3s"$'\n'"binding-refresh-request = yes"$'\n' ""
            start_ha --volatile --capture "$work/cap.pcap"
            for i in 1 2 3; do start_mn "$i"; done
            wait_for "g2 for every node" 60 "$work/ha.sock" 'len(s["bindings"]) == 3 and all(gen(b) >= 2 for b in s["bindings"])'
            sleep 1.5
            ;;
    esac
    finish "$scenario" "$work/cap.pcap"
}

for scenario in "${scenarios[@]}"; do
    echo "== $scenario"
    record "$scenario"
done

#!/usr/bin/env bash
# Builds (up), removes (down) or shows (status) the lab topology: a home link with the home
# agent, a router, and one foreign link per mobile node, each in its own network namespace.
#
#   ns mk-home                 ns mk-rtr (forwarding)                  ns mk-fl1
#   HA 2001:db8:1::1 --veth-- 2001:db8:1::ff | 2001:db8:100::ff --veth-- MN1 care-of 2001:db8:100::1
#                                            | 2001:db8:101::ff --veth-- MN2 care-of 2001:db8:101::1 (ns mk-fl2)
#
# Home addresses (2001:db8:2::N) live only inside the tunnel; the agents carry their own ESP
# and Mobility Header code on raw sockets, the kernels know nothing of Mobile IPv6.
# The topology is defined once, in mipkey (`mipkey lab up|down|status`, NamespaceTopology in
# src/MipKeyAgent.Tools/Lab), which the lab tests build too; this script runs that command.
# Idempotent: "up" on a built lab rebuilds it; "down" on a missing lab does nothing.
# Environment: MK_PREFIX (default mk-) names everything; MK_NODES (default 1, at most 9);
# MIPKEY_DLL (a built mipkey.dll; default: the Release build, built when missing).
set -euo pipefail

case "${1:-}" in
    up|down|status) ;;
    *) echo "usage: $0 up|down|status   (env MK_PREFIX=mk- MK_NODES=1)" >&2; exit 2 ;;
esac
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
source "$here/common.sh"
exec dotnet "$dll" lab "$1"

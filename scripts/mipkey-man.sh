#!/usr/bin/env bash
# Writes mipkey(1) in roff to stdout from the program's own --help texts (the top level and each verb), so the
# man page and --help never disagree. Usage: scripts/mipkey-man.sh PATH-TO-MIPKEY > mipkey.1
set -euo pipefail
mipkey="${1:?usage: mipkey-man.sh PATH-TO-MIPKEY}"
# roff: a leading '.' or "'" would be a request, and '\' an escape.
quote() { sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"; }
version=$("$mipkey" --version 2>/dev/null | cut -d+ -f1)
echo ".TH MIPKEY 1 \"\" \"mipkey ${version}\" \"User Commands\""
echo ".SH NAME"
echo "mipkey \\- Mobile IPv6 home agent and mobile node agent with key distribution in Binding Updates and Acknowledgements"
echo ".SH SYNOPSIS"
echo ".B mipkey"
echo ".I verb"
echo "[options]"
echo ".SH DESCRIPTION"
echo ".nf"
"$mipkey" --help | quote
echo ".fi"
for verb in $("$mipkey" --help | sed -n '/^Commands:/,$p' | sed -n 's/^  \([a-z][a-z-]*\) .*/\1/p'); do
  echo ".SH \"MIPKEY ${verb^^}\""
  echo ".nf"
  "$mipkey" "$verb" --help | quote
  echo ".fi"
done
echo ".SH FILES"
echo "/etc/mipkey (provisioning, 0700), /var/lib/mipkey (stores and master keys, 0700), /run/mipkey (status socket)"
echo ".SH SEE ALSO"
echo "systemd.exec(5), capabilities(7), setcap(8); docs/operations.md in share/doc/mipkey"

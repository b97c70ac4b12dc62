#!/usr/bin/env bash
# Runs the main job on its embedded default: no hardware, no root. Extra arguments go to
# `mipkey` (try ./run.sh --help).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/prereqs.sh
ensure_dotnet
ensure_runtime_prereqs
dotnet build src/MipKeyAgent.Cli/MipKeyAgent.Cli.csproj -c Release --nologo -v q >/dev/null
if [ $# -eq 0 ]; then set -- demo; fi
exec dotnet src/MipKeyAgent.Cli/bin/Release/net10.0/mipkey.dll "$@"

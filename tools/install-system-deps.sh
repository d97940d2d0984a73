#!/usr/bin/env bash
# System packages the tests use: Xen's public headers (golden layouts, C peers),
# Xen's own xenstore clients and pyxs (xenstored conformance), a C compiler and
# make/python for node-gyp; dosfstools, mtools, e2fsprogs (file-system oracles),
# curl (HTTP client of the serve tests) and wrk (serve-bench). Idempotent; quiet
# when everything is present.
set -euo pipefail
PKGS=(libxen-dev xenstore-utils python3-pyxs gcc g++ make python3 dosfstools mtools e2fsprogs curl wrk)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi

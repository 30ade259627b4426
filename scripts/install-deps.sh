#!/usr/bin/env bash
# Installs sinfer's build and test dependencies from Debian packages when missing.
# Idempotent and quiet when everything is already there.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libcaf-dev libcpp-httplib-dev libsimdjson-dev
      libspdlog-dev doctest-dev libcli11-dev librocksdb-dev zlib1g-dev openssl ca-certificates chromium
      prometheus  # prometheus: promtool checks the /metrics page in the metrics suite
      clang libclang-rt-14-dev llvm)  # sanitizer build and libFuzzer (libclang_rt.fuzzer); llvm-symbolizer
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

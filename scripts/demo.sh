#!/usr/bin/env bash
# Quick start, command 1: install, build, and run the demo job (embedded in-process models).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
mkdir -p build/demo
cd build/demo
exec ../sinfer run ../../examples/quickstart.json

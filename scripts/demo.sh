#!/usr/bin/env bash
# Quick start, command 1: install, build, and run `sinfer demo` (three models on loopback servers, a failure mid-run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
exec build/sinfer demo --dir build/demo

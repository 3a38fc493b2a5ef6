#!/bin/sh
# Runs the benchmark suite from the repository root; arguments go to
# bench/run (for example --quick, --only direct). See bench/README.md.
set -e
cd "$(dirname "$0")/.."
exec go run ./bench/run "$@"

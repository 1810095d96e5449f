#!/usr/bin/env bash
# setup.sh -- one command from a fresh Debian 12 machine (as root) to a
# built, installed fractal extension and a running demo.
#
#   bash setup.sh            # deps + build + install + demo
#   bash setup.sh --bench    # ... and then the benchmark (bench/run.sh)
#
# Safe to re-run: apt is skipped when every package is already installed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
# shellcheck source=test/deps.sh
source test/deps.sh

RUN_BENCH=0
for arg in "$@"; do
    case "$arg" in
        --bench) RUN_BENCH=1 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done


echo "== [1/4] packages"
fr_install_deps

echo "== [2/4] build"
make -j"$(nproc)" PG_CONFIG="$PG_CONFIG"

echo "== [3/4] install"
fr_as_root make install PG_CONFIG="$PG_CONFIG"

echo "== [4/4] demo"
bash test/demo.sh

if [ "$RUN_BENCH" -eq 1 ]; then
    echo "== benchmark"
    if [ -f bench/run.sh ]; then
        bash bench/run.sh
    else
        echo "bench/run.sh not found; nothing to benchmark" >&2
        exit 1
    fi
fi

echo "setup done."

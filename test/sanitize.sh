#!/usr/bin/env bash
# test/sanitize.sh -- run the pg_regress and isolation suites against a build
# of fractal compiled with UndefinedBehaviorSanitizer.
#
#   bash test/sanitize.sh [--regress "names"] [--isolation "names"]
#
# Not part of test/run_all.sh (CI): it replaces the installed fractal.so
# with the instrumented build while it runs (and reinstalls the normal build
# on exit), and the instrumented server is several times slower.  Run it
# now and then, and after changes to memory handling.
#
# How: the extension is built with -fsanitize=undefined (its shared object
# links libubsan itself; PostgreSQL is not instrumented).  UBSan sees
# misaligned access, signed overflow, bad shifts, out-of-range enum and bool
# loads, null dereferences and the like anywhere in our code, and stops the
# backend at the first report.  Reports are kept in /tmp/fractal-sanitize
# and fail the run.
#
# Not AddressSanitizer: it needs libasan preloaded into the postmaster
# (PostgreSQL is not built with it), and with Debian 12's gcc 12 libasan
# preloaded, "postgres -V" (which initdb runs first) hangs after ASan's
# initialisation (tried 2026-12-07).  ASan would also see little of our
# memory: palloc hands out pieces of large malloc'd blocks.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
REGRESS=$(for f in sql/*.sql; do basename "$f" .sql; done | tr '\n' ' ')
ISOLATION=$(for f in specs/*.spec; do basename "$f" .spec; done | tr '\n' ' ')
while [ $# -gt 0 ]; do
    case "$1" in
        --regress) REGRESS=$2; shift 2 ;;
        --isolation) ISOLATION=$2; shift 2 ;;
        *) echo "usage: $0 [--regress names] [--isolation names]" >&2; exit 2 ;;
    esac
done

# shellcheck source=deps.sh
source test/deps.sh
# shellcheck source=cluster.sh
source test/cluster.sh
LOGDIR=/tmp/fractal-sanitize
rm -rf "$LOGDIR"; mkdir -p "$LOGDIR"; chmod 777 "$LOGDIR"

restore() {
    fr_cluster_cleanup_all
    make -s clean PG_CONFIG=$PG_CONFIG >/dev/null
    make -s PG_CONFIG=$PG_CONFIG >/dev/null
    make -s install PG_CONFIG=$PG_CONFIG >/dev/null
    echo "normal build reinstalled"
}
trap restore EXIT

# 1. the instrumented build, installed
make -s clean PG_CONFIG=$PG_CONFIG >/dev/null
make -s PG_CONFIG=$PG_CONFIG \
    COPT="-fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
ldd fractal.so | grep -q libubsan || { echo "fractal.so is not instrumented" >&2; exit 1; }
make -s install PG_CONFIG=$PG_CONFIG >/dev/null

# 2. a cluster (the postmaster inherits where reports go)
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$LOGDIR/ubsan"
fr_cluster_start sanitize 54689 "shared_preload_libraries = 'fractal'" "autovacuum = off"
export PGHOST PGPORT PGUSER

# 3. the suites (a failure is reported, the reports decide)
rc=0
make installcheck PG_CONFIG=$PG_CONFIG REGRESS="$REGRESS" ISOLATION= TAP_TESTS= || rc=1
if [ -n "$ISOLATION" ]; then
    make installcheck PG_CONFIG=$PG_CONFIG REGRESS= ISOLATION="$ISOLATION" TAP_TESTS= || rc=1
fi

# 4. any sanitizer report fails the run
if compgen -G "$LOGDIR/*" >/dev/null; then
    echo "sanitizer reports:"; ls -l "$LOGDIR"
    head -50 "$LOGDIR"/*
    rc=1
fi
[ $rc -eq 0 ] && echo "sanitize: suites passed, no sanitizer report"
exit $rc

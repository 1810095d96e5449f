#!/usr/bin/env bash
# test/run_all.sh -- THE test command for fractal (.ci/run calls exactly this).
#
#   bash test/run_all.sh
#
# 1. makes sure the build dependencies are installed (apt-get, only if missing)
# 2. builds with warnings as errors and runs `make install`
# 3. starts a throwaway cluster (test/cluster.sh) and runs the pg_regress
#    suite (sql/*.sql) and the isolation suite (specs/*.spec) against it
# 4. runs each TAP test (test/t/*.pl) as the postgres OS user in a copy of
#    the tree (PostgreSQL::Test::Cluster runs initdb itself, which refuses root)
# 5. prints "N passed, M failed" as its last line; exit status 0 only if M=0.
#
# Environment:
#   FRACTAL_TEST_QUICK=1      passed through; tests may use it to do less work
#   PROVE_FLAGS="--verbose"   extra flags for prove
#   FRACTAL_SUITE_TIMEOUT=N   seconds before one suite is killed (default 3600)
#   FRACTAL_TEST_PORT=N       port of the throwaway regress cluster (default 54615)
#
# No sanitizer mode: ASan inside a PostgreSQL extension needs libasan
# LD_PRELOADed into the postmaster, which this script does not attempt.

# shellcheck disable=SC2317  # trap handlers look unreachable to shellcheck
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
# shellcheck source=deps.sh
source test/deps.sh
SUITE_TIMEOUT=${FRACTAL_SUITE_TIMEOUT:-3600}
PORT=${FRACTAL_TEST_PORT:-54615}
export FRACTAL_TEST_QUICK=${FRACTAL_TEST_QUICK:-0}

PASSED=0
FAILED=0
RESULTS=()

banner() { printf '\n==================== %s ====================\n' "$*"; }
pass()   { PASSED=$((PASSED + 1)); RESULTS+=("PASS  $1"); echo "--> PASS: $1"; }
fail()   { FAILED=$((FAILED + 1)); RESULTS+=("FAIL  $1"); echo "--> FAIL: $1"; }

summary() {
    banner "summary"
    local r
    for r in "${RESULTS[@]}"; do
        echo "  $r"
    done
    echo "$PASSED passed, $FAILED failed"
}

finish() {
    if [ "$PASSED" -eq 0 ] && [ "$FAILED" -eq 0 ]; then
        echo "no test suites found (sql/, specs/, test/t/ are empty): counting as failure" >&2
    fi
    summary
    [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
    exit $?
}


# cleanup of everything this script started
TAP_DIR=
cleanup() {
    fr_cluster_cleanup_all 2>/dev/null || true
    stop_tap_leftovers
}
stop_tap_leftovers() {
    # postmasters left behind by a killed/timed-out TAP test (only ours)
    [ -n "$TAP_DIR" ] && [ -d "$TAP_DIR/tmp_check" ] || return 0
    local pidfile
    while IFS= read -r pidfile; do
        fr_pg pg_ctl -D "$(dirname "$pidfile")" -m immediate -w stop >/dev/null 2>&1 || true
    done < <(find "$TAP_DIR/tmp_check" -name postmaster.pid 2>/dev/null)
}

# shellcheck source=test/cluster.sh
source "$REPO/test/cluster.sh"
# Suites run in the background under `timeout` (which puts them in their own
# process group); waiting with `wait` lets INT/TERM reach our trap at once,
# and the trap passes the signal on to the running suite.
CHILD=
run_limited() {
    timeout -k 30 "$SUITE_TIMEOUT" "$@" &
    CHILD=$!
    wait "$CHILD"
    local rc=$?
    CHILD=
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        echo "*** timed out after ${SUITE_TIMEOUT}s (FRACTAL_SUITE_TIMEOUT) ***"
    fi
    return $rc
}
on_signal() {
    echo "interrupted" >&2
    if [ -n "$CHILD" ]; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    fail "interrupted"
    summary
    exit 130
}
trap cleanup EXIT
trap on_signal INT TERM

# ---------------------------------------------------------------- deps
banner "build dependencies"
if ! fr_install_deps; then
    fail "dependencies"
    finish
fi

# ---------------------------------------------------------------- build
banner "build (warnings are errors) + install"
if ! make -j"$(nproc)" PG_CONFIG="$PG_CONFIG"; then
    fail "build"
    finish
fi
if ! fr_as_root make install PG_CONFIG="$PG_CONFIG"; then
    fail "make install"
    finish
fi

# ---------------------------------------------------------------- regress + isolation
shopt -s nullglob
SQL_TESTS=(sql/*.sql)
SPEC_TESTS=(specs/*.spec)
TAP_TESTS=(test/t/*.pl)
shopt -u nullglob

print_diffs() {
    local f=$1
    if [ -s "$f" ]; then
        echo "----- $f (first 2000 lines) -----"
        head -n 2000 "$f"
        echo "----- end of $f -----"
    else
        echo "(no $f)"
    fi
}

print_server_log() {
    if [ -n "${FR_CLUSTER_LOG:-}" ] && [ -s "$FR_CLUSTER_LOG" ]; then
        echo "----- server log (errors, crashes; last 60 matching lines) -----"
        grep -E 'PANIC|FATAL|TRAP|terminated by signal|server process|ERROR' "$FR_CLUSTER_LOG" | tail -n 60 || true
    fi
}

if [ ${#SQL_TESTS[@]} -gt 0 ] || [ ${#SPEC_TESTS[@]} -gt 0 ]; then
    banner "throwaway cluster"
    # preloaded, so the suites exercise the custom WAL records; the TAP
    # tests cover the generic-WAL mode (no preload) as well.  No autovacuum:
    # a worker's snapshot would hold back the xmin horizon and make VACUUM
    # results timing-dependent (the TAP tests run with autovacuum on).
    if ! fr_cluster_start runall "$PORT" "shared_preload_libraries = 'fractal'" "autovacuum = off"; then
        [ ${#SQL_TESTS[@]} -gt 0 ] && fail "regress"
        [ ${#SPEC_TESTS[@]} -gt 0 ] && fail "isolation"
    else
        echo "cluster up: PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER"
        mkdir -p test/out test/out_iso

        if [ ${#SQL_TESTS[@]} -gt 0 ]; then
            banner "regress (${#SQL_TESTS[@]} tests)"
            rm -f test/out/regression.diffs
            if run_limited make installcheck PG_CONFIG="$PG_CONFIG" ISOLATION= TAP_TESTS=; then
                pass "regress"
            else
                print_diffs test/out/regression.diffs
                print_server_log
                fail "regress"
            fi
        else
            echo "no sql/*.sql: regress suite skipped"
        fi

        if [ ${#SPEC_TESTS[@]} -gt 0 ]; then
            banner "isolation (${#SPEC_TESTS[@]} specs)"
            rm -f test/out_iso/regression.diffs
            if run_limited make installcheck PG_CONFIG="$PG_CONFIG" REGRESS= TAP_TESTS=; then
                pass "isolation"
            else
                print_diffs test/out_iso/regression.diffs
                print_server_log
                fail "isolation"
            fi
        else
            echo "no specs/*.spec: isolation suite skipped"
        fi
        fr_cluster_stop runall
    fi
else
    echo "no sql/*.sql and no specs/*.spec: regress and isolation skipped"
fi

# ---------------------------------------------------------------- TAP
if [ ${#TAP_TESTS[@]} -eq 0 ]; then
    banner "TAP"
    echo "no test/t/*.pl files: TAP tests skipped"
else
    banner "TAP (${#TAP_TESTS[@]} files)"
    # PostgreSQL::Test::Cluster runs initdb/postgres as the current user and
    # writes tmp_check/ next to the Makefile, so run in a private copy owned
    # by the user that will run the servers.
    if [ "$(id -u)" -eq 0 ]; then
        TAP_USER=postgres
        TAP_DIR=/tmp/fractal-tap
        AS_TAP_USER=(runuser -u postgres --)
    else
        TAP_USER=$(id -un)
        TAP_DIR=/tmp/fractal-tap-$TAP_USER
        AS_TAP_USER=(env)
    fi
    rm -rf "$TAP_DIR"
    mkdir -p "$TAP_DIR"
    tar -C "$REPO" --exclude=./.git --exclude=./tmp_check --exclude=./bench/results \
        -cf - . | tar -C "$TAP_DIR" -xf -
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres:postgres "$TAP_DIR"
    fi
    echo "running as $TAP_USER in $TAP_DIR"

    for t in "${TAP_TESTS[@]}"; do
        name=$(basename "$t" .pl)
        banner "TAP $t"
        # `make installcheck` with REGRESS/ISOLATION emptied runs only PGXS's
        # prove_installcheck recipe; PROVE_TESTS selects the single file.
        if run_limited "${AS_TAP_USER[@]}" make -C "$TAP_DIR" installcheck \
                PG_CONFIG="$PG_CONFIG" REGRESS= ISOLATION= \
                PROVE_TESTS="$t" PROVE_FLAGS="${PROVE_FLAGS:-}"; then
            pass "tap/$name"
        else
            log="$TAP_DIR/tmp_check/log/regress_log_$name"
            if [ -s "$log" ]; then
                echo "----- $log (last 150 lines) -----"
                tail -n 150 "$log"
                echo "----- end of $log -----"
            fi
            stop_tap_leftovers
            fail "tap/$name"
        fi
    done
    stop_tap_leftovers
fi

# ---------------------------------------------------------------- bench
# The benchmark's quick variant proves the scripts work end to end (tiny
# sizes; no timing is asserted).  Its results go to a scratch directory so
# the committed bench/results stay those of the last full run.
banner "bench/run.sh --quick"
BENCH_OUT=$(mktemp -d /tmp/fractal-bench-quick.XXXXXX)
if run_limited bash bench/run.sh --quick --results "$BENCH_OUT" &&
        grep -q "^status fractal: ok" "$BENCH_OUT"/*/summary.txt; then
    pass "bench-quick"
else
    fail "bench-quick"
fi
rm -rf "$BENCH_OUT"

finish

#!/usr/bin/env bash
# test/valgrind.sh -- run the pg_regress suite against a PostgreSQL server
# running under valgrind memcheck, and report every memcheck error whose
# stack (or origin stack) has a frame in fractal.so.
#
#   bash test/valgrind.sh [--regress "names"] [--strict-wal]
#
# Not part of test/run_all.sh (CI): run it by hand now and then, and after
# changes to memory handling, page layouts or WAL records.  Under memcheck
# the server is 20-50 times slower; the whole suite takes on the order of
# an hour on two cores.  Unlike test/sanitize.sh it builds and installs
# nothing: it checks the fractal.so that is already installed (build it
# with debug info, the PGXS default -g, so reports name source lines).
#
# How: initdb a throwaway cluster in a temp dir (owned by the postgres OS
# user when run as root), start the postmaster itself under
#   valgrind --tool=memcheck --trace-children=yes --track-origins=yes ...
# (directly, not through pg_ctl; every backend is a fork of it, so every
# backend is checked), wait until pg_isready says it accepts connections
# (a minute or more under valgrind), run pg_regress with the options of the
# Makefile's REGRESS_OPTS (output in $LOGDIR/regress, not test/out), stop
# the server with pg_ctl stop -m fast, and read the per-process valgrind
# logs $LOGDIR/vg.<pid>.log.
#
# Suppressions: test/valgrind.supp = PostgreSQL's src/tools/valgrind.supp
# plus entries for server noise with no fractal frame (Debian's postgres is
# not built with USE_VALGRIND).  The upstream file suppresses uninitialised
# bytes in WAL records (padding_XLogRecData_CRC / _write) wholesale, which
# would also hide such bytes in our own WAL records: --strict-wal runs with
# those two entries removed, so that such errors show up, and the origin
# stack tells whose struct the bytes came from.
#
# Result: error records with a fractal frame are printed (grouped, with a
# count) and saved in $LOGDIR/report.txt; the run fails if there is any,
# or if pg_regress fails.  The logs stay in $LOGDIR (default
# /tmp/fractal-valgrind); the cluster is stopped and deleted on exit.
#
# Environment: FRACTAL_VG_PORT (default 54777), FRACTAL_VG_LOGDIR,
# FRACTAL_VG_START_TIMEOUT (seconds to wait for the server, default 600).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PGBIN=/usr/lib/postgresql/15/bin
PGLIB=/usr/lib/postgresql/15/lib
PGXS_DIR=$PGLIB/pgxs
PORT=${FRACTAL_VG_PORT:-54777}
LOGDIR=${FRACTAL_VG_LOGDIR:-/tmp/fractal-valgrind}
START_TIMEOUT=${FRACTAL_VG_START_TIMEOUT:-600}
# the Makefile's REGRESS: sql/*.sql (inputdir is the top of the tree)
REGRESS=$(for f in sql/*.sql; do basename "$f" .sql; done | tr '\n' ' ')
STRICT_WAL=0
while [ $# -gt 0 ]; do
    case "$1" in
        --regress) REGRESS=$2; shift 2 ;;
        --strict-wal) STRICT_WAL=1; shift ;;
        *) echo "usage: $0 [--regress names] [--strict-wal]" >&2; exit 2 ;;
    esac
done

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
[ -f "$PGLIB/fractal.so" ] || { echo "$PGLIB/fractal.so is not installed" >&2; exit 1; }

# 1. log dir (kept) and work dir (deleted on exit)
mkdir -p "$LOGDIR"
rm -rf "$LOGDIR"/vg.*.log "$LOGDIR/server.log" "$LOGDIR/regress" "$LOGDIR/report.txt"
chmod 777 "$LOGDIR"
WORK=$(mktemp -d /tmp/fractal-vg-work.XXXXXX)
chmod 700 "$WORK"
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$WORK"; fi
DATA=$WORK/data
VG_PID=

# shellcheck disable=SC2317  # trap handler looks unreachable to shellcheck
cleanup() {
    if [ -f "$DATA/postmaster.pid" ]; then
        as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 600 stop >/dev/null 2>&1 ||
            as_owner "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w -t 120 stop >/dev/null 2>&1 || true
    fi
    if [ -n "$VG_PID" ]; then
        wait "$VG_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# suppressions, readable by the server's user
SUPP=$WORK/valgrind.supp
if [ $STRICT_WAL -eq 1 ]; then
    # drop the two upstream entries that hide uninitialised bytes in WAL
    awk '/^\{/ { buf = $0; next }
         buf != "" { buf = buf "\n" $0
                     if ($0 ~ /^\}/) { if (buf !~ /padding_XLogRecData_(CRC|write)/) print buf; buf = "" }
                     next }
         { print }' test/valgrind.supp >"$SUPP"
else
    cp test/valgrind.supp "$SUPP"
fi
chmod 644 "$SUPP"

# 2. the cluster
if ! as_owner "$PGBIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --locale=C \
        >"$LOGDIR/initdb.log" 2>&1; then
    echo "initdb failed:" >&2; cat "$LOGDIR/initdb.log" >&2; exit 1
fi

# 3. the postmaster under memcheck, in the background
as_owner valgrind --tool=memcheck --trace-children=yes --track-origins=yes \
    --read-var-info=no --error-limit=no --num-callers=30 \
    --suppressions="$SUPP" --log-file="$LOGDIR/vg.%p.log" \
    "$PGBIN/postgres" -D "$DATA" -p "$PORT" -k "$WORK" \
    -c listen_addresses= -c shared_preload_libraries=fractal \
    -c autovacuum=off -c max_connections=20 -c shared_buffers=64MB -c jit=off \
    -c max_prepared_transactions=10 \
    >"$LOGDIR/server.log" 2>&1 &
VG_PID=$!

echo "waiting for the server under valgrind (port $PORT)..."
start=$SECONDS
until "$PGBIN/pg_isready" -q -h "$WORK" -p "$PORT"; do
    if ! kill -0 "$VG_PID" 2>/dev/null; then
        echo "the server exited; log:" >&2; tail -n 30 "$LOGDIR/server.log" >&2; exit 1
    fi
    if [ $((SECONDS - start)) -gt "$START_TIMEOUT" ]; then
        echo "the server did not accept connections in ${START_TIMEOUT}s" >&2; exit 1
    fi
    sleep 2
done
echo "server ready after $((SECONDS - start))s"

# 4. the suite.  pg_regress directly (what `make installcheck` runs, minus
# its --outputdir inside the tree): REGRESS_OPTS of the Makefile.
export PGHOST=$WORK PGPORT=$PORT PGUSER=postgres
unset PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS
rc=0
start=$SECONDS
# shellcheck disable=SC2086  # REGRESS is a list of names
"$PGXS_DIR/src/test/regress/pg_regress" --inputdir=. --bindir="$PGBIN" \
    --outputdir="$LOGDIR/regress" --load-extension=fractal \
    --dbname=contrib_regression --host="$WORK" --port="$PORT" --user=postgres \
    $REGRESS || rc=1
echo "pg_regress took $((SECONDS - start))s"

# 5. stop the server (the logs are complete once the postmaster is gone)
as_owner "$PGBIN/pg_ctl" -D "$DATA" -m fast -w -t 600 stop >/dev/null ||
    { echo "fast stop failed" >&2; rc=1; }
wait "$VG_PID" 2>/dev/null || true
VG_PID=

# 6. the valgrind logs: records are separated by "==PID== " lines; a record
# is an error when it has "at 0x..." frames; it is ours when a frame (of the
# error or of its origin) is in fractal.so or in our sources.
awk '
function flush(   sig, line, i, f, ours, isErr, inOrigin, hasOrigin, oursStack, oursOrigin) {
    if (nrec == 0) return
    isErr = 0; sig = ""; inOrigin = 0; hasOrigin = 0; oursStack = 0; oursOrigin = 0
    for (i = 1; i <= nrec; i++) {
        line = rec[i]
        if (line ~ /was created by/) { inOrigin = 1; hasOrigin = 1 }
        if (line ~ /^ +(at|by) 0x/) {
            isErr = 1
            if (line ~ /fractal\.so/ || line ~ /\((fractal_am|fr_[a-z0-9_]+)\.[ch]:[0-9]+\)/) {
                if (inOrigin) oursOrigin = 1; else oursStack = 1
            }
            f = line; sub(/^ +(at|by) 0x[0-9A-Fa-f]+: /, "", f)
            sig = sig "\n    " f
        } else {
            sig = sig "\n" line
        }
    }
    # a syscall writing a buffer (WAL, a data page) reports whoever flushed
    # it; whose bytes they are is in the origin stack
    if (rec[1] ~ /^Syscall param/ && hasOrigin) ours = oursOrigin
    else ours = oursStack || oursOrigin
    if (isErr && rec[1] !~ /^(HEAP|LEAK) SUMMARY/) {
        if (ours) {
            if (!(sig in count)) { order[++nsig] = sig; where[sig] = FILENAME }
            count[sig]++; nours++
        } else nother++
    }
    nrec = 0
}
FNR == 1 { flush() }
/^==[0-9]+== ?$/ { flush(); next }
/^==[0-9]+== / { sub(/^==[0-9]+== /, ""); rec[++nrec] = $0; next }
END {
    flush()
    for (i = 1; i <= nsig; i++)
        printf "---- %d x, first in %s%s\n\n", count[order[i]], where[order[i]], order[i]
    printf "valgrind: %d error record(s) with a fractal frame (%d distinct), %d without\n", nours, nsig, nother
    exit (nours > 0)
}' "$LOGDIR"/vg.*.log >"$LOGDIR/report.txt" || rc=1
cat "$LOGDIR/report.txt"
grep -h "ERROR SUMMARY" "$LOGDIR"/vg.*.log |
    awk '{ e += $4; s += $(NF-2) } END { printf "valgrind ERROR SUMMARY total: %d errors, %d suppressed, %d processes\n", e, s, NR }'
[ $rc -eq 0 ] && echo "valgrind: suite passed, no error with a fractal frame"
exit $rc
